// The dashboard: plain JS over the public API, refreshed once per tick (the API's max-age).
"use strict";

const state = {
  markets: [],          // every market from /symbols: {exchange, symbol, price, volume, time}
  picked: [],           // "exchange:symbol" keys on the chart
  metric: "price",
  ranking: [],
  total: 0,
  page: 0,              // the rank table shows PAGE rows at a time, paged by the API
  search: "",           // text in the rank search box: its matches replace the page
  sort: { key: "rank", dir: 1 },
  chart: null,
  timer: null,
};
const $ = (selector) => document.querySelector(selector);
const key = (m) => `${m.exchange}:${m.symbol}`;
const PAGE = 50;
const SUGGESTIONS = 20;
const fmt = (x) => (x == null ? "—" : Number(x).toLocaleString("en-US", { maximumSignificantDigits: 6 }));

async function api(path) {
  const response = await fetch(path, { headers: { Accept: "application/json" } });
  const body = await response.json();
  if (!response.ok) throw new Error(body.detail ? JSON.stringify(body.detail) : response.statusText);
  const maxAge = /max-age=(\d+)/.exec(response.headers.get("Cache-Control") || "");
  return { body, maxAge: maxAge ? Number(maxAge[1]) : null };
}

function setStatus(text) { $("#status").textContent = text; }

// "24 hours", "2 hours", "90 minutes": the span of a window given as two ISO times.
function span(start, end) {
  const minutes = Math.round((Date.parse(end) - Date.parse(start)) / 60000);
  if (minutes % 60 === 0) return minutes === 60 ? "hour" : `${minutes / 60} hours`;
  return minutes === 1 ? "minute" : `${minutes} minutes`;
}

// -- market picker -------------------------------------------------------------------------
// Markets whose "exchange:symbol" holds every word typed, best first: exact, then prefix.
function matching(text, limit) {
  const words = text.trim().toLowerCase().split(/\s+/).filter(Boolean);
  if (!words.length) return [];
  const found = [];
  for (const m of state.markets) {
    const k = key(m);
    if (words.every((w) => k.includes(w))) {
      const score = (m.symbol === words[0] || k === words[0]) ? 0 : m.symbol.startsWith(words[0]) ? 1 : 2;
      found.push([score, k, m]);
    }
  }
  found.sort((a, b) => a[0] - b[0] || (a[1] < b[1] ? -1 : 1));
  return found.slice(0, limit).map((f) => f[2]);
}

// The picker's suggestions: only the markets matching what is typed, however many there are.
function renderOptions() {
  const list = $("#market-list");
  list.replaceChildren(...matching($("#market-search").value, SUGGESTIONS).map((m) => {
    const option = document.createElement("option");
    option.value = key(m);
    option.label = `${m.symbol.toUpperCase()} on ${m.exchange} · ${fmt(m.price)}`;
    return option;
  }));
}

function findMarket(text) {
  const wanted = text.trim().toLowerCase();
  if (!wanted) return null;
  return state.markets.find((m) => key(m) === wanted)
    || state.markets.find((m) => m.symbol === wanted && m.exchange === "bitfinex")
    || state.markets.find((m) => m.symbol === wanted)
    || null;
}

function pick(marketKey) {
  if (!state.picked.includes(marketKey)) state.picked.push(marketKey);
  renderPicked();
  drawChart();
}

function renderPicked() {
  $("#picked").replaceChildren(...state.picked.map((marketKey) => {
    const item = document.createElement("li");
    item.textContent = marketKey;
    const remove = document.createElement("button");
    remove.type = "button";
    remove.textContent = "×";
    remove.setAttribute("aria-label", `Remove ${marketKey} from the chart`);
    remove.addEventListener("click", () => {
      state.picked = state.picked.filter((k) => k !== marketKey);
      renderPicked();
      drawChart();
    });
    item.append(" ", remove);
    return item;
  }));
}

// -- chart ---------------------------------------------------------------------------------
async function drawChart() {
  const box = $("#chart");
  if (!state.picked.length) {
    if (state.chart) { state.chart.destroy(); state.chart = null; }
    box.innerHTML = '<p class="empty">Pick a market to chart its recent history.</p>';
    return;
  }
  const series = await Promise.all(state.picked.map(async (marketKey) => {
    const [exchange, ...rest] = marketKey.split(":");
    const symbol = encodeURIComponent(rest.join(":"));
    const { body } = await api(`/symbols/${symbol}/history?exchange=${exchange}&metric=${state.metric}`);
    return { marketKey, points: body.points, window: span(body.start, body.end) };
  }));
  // The history's default range is the service's rank window: title the chart with it.
  $("#chart-title").textContent = `Last ${series[0].window}`;
  const relative = series.length > 1;
  const times = [...new Set(series.flatMap((s) => s.points.map((p) => Date.parse(p.time) / 1000)))]
    .sort((a, b) => a - b);
  const index = new Map(times.map((t, i) => [t, i]));
  const columns = series.map((s) => {
    const column = new Array(times.length).fill(null);
    const base = s.points.length ? s.points[0].value : 1;
    for (const p of s.points) {
      const value = relative ? (100 * (p.value - base)) / base : p.value;
      column[index.get(Date.parse(p.time) / 1000)] = value;
    }
    return column;
  });
  const palette = ["#0969da", "#cf222e", "#1a7f37", "#8250df", "#bf8700", "#57606a"];
  const label = relative ? "% change" : state.metric;
  const options = {
    width: Math.max(280, box.clientWidth),
    height: 320,
    scales: { x: { time: true } },
    axes: [{}, { label, size: 70 }],
    series: [
      { label: "time" },
      ...series.map((s, i) => ({
        label: s.marketKey, stroke: palette[i % palette.length], width: 1.5, spanGaps: false,
        value: (_, v) => (v == null ? "—" : relative ? `${v.toFixed(2)} %` : fmt(v)),
      })),
    ],
  };
  if (state.chart) state.chart.destroy();
  box.innerHTML = "";
  state.chart = new uPlot(options, [times, ...columns], box);
  box.setAttribute("aria-label",
    `${label} of ${state.picked.join(", ")} over the last ${series[0].window}, ${times.length} ticks`);
}

// -- rank table ----------------------------------------------------------------------------
function renderRank() {
  const { key: sortKey, dir } = state.sort;
  const rows = [...state.ranking].sort((a, b) => {
    const x = sortKey === "market" ? key(a) : a[sortKey];
    const y = sortKey === "market" ? key(b) : b[sortKey];
    return (x < y ? -1 : x > y ? 1 : 0) * dir;
  });
  $("#rank tbody").replaceChildren(...rows.map((r) => {
    const tr = document.createElement("tr");
    const market = document.createElement("button");
    market.className = "market";
    market.type = "button";
    market.textContent = key(r);
    market.title = `Chart ${key(r)}`;
    market.addEventListener("click", () => pick(key(r)));
    const cells = [r.rank ?? "—", market, fmt(r.stdev), fmt(r.mean), r.count];
    cells.forEach((value, i) => {
      const td = document.createElement("td");
      if (i >= 2) td.className = "num";
      td.append(value);
      tr.append(td);
    });
    return tr;
  }));
  for (const th of document.querySelectorAll("#rank th")) {
    const k = th.querySelector("button").dataset.key;
    th.setAttribute("aria-sort", k === sortKey ? (dir > 0 ? "ascending" : "descending") : "none");
  }
}

async function loadRank() {
  const normalize = $("#normalize").checked;
  const note = normalize ? " · stdev ÷ mean" : "";
  if (state.search) {
    // Each match's own rank among all markets (one small cached answer per market).
    const wanted = state.search;
    const matches = matching(wanted, 10);
    const rows = await Promise.all(matches.map(async (m) => {
      const symbol = encodeURIComponent(m.symbol);
      const { body } = await api(`/symbols/${symbol}/rank?exchange=${m.exchange}&normalize=${normalize}`);
      return body;
    }));
    if (wanted !== state.search) return;  // typed on meanwhile
    state.ranking = rows;
    $("#rank-caption").textContent = `${rows.length ? rows.length : "No"} market(s) matching “${wanted}”${note}`;
    $("#rank-pages").hidden = true;
  } else {
    const { body } = await api(`/rank?limit=${PAGE}&offset=${state.page * PAGE}&normalize=${normalize}`);
    state.ranking = body.ranking;
    state.total = body.total;
    const first = body.total ? state.page * PAGE + 1 : 0;
    const last = state.page * PAGE + body.ranking.length;
    $("#rank-caption").textContent = `${body.total} markets · window ${body.window_start} → ${body.window_end}` + note;
    $("#rank-range").textContent = `${first}–${last} of ${body.total}`;
    $("#rank-prev").disabled = state.page === 0;
    $("#rank-next").disabled = last >= body.total;
    $("#rank-pages").hidden = body.total <= PAGE;
  }
  renderRank();
}

// -- alerts --------------------------------------------------------------------------------
async function loadAlerts() {
  const { body } = await api("/alerts?limit=20");
  const list = $("#alerts");
  if (!body.alerts.length) {
    list.innerHTML = '<li class="empty">No alerts yet.</li>';
    return;
  }
  list.replaceChildren(...body.alerts.map((a) => {
    const item = document.createElement("li");
    const ratio = document.createElement("span");
    ratio.className = "ratio";
    ratio.textContent = `${a.ratio.toFixed(2)}×`;
    item.append(`${a.time} ${a.exchange}:${a.symbol} at ${fmt(a.price)} — `, ratio,
      ` its average ${fmt(a.average)} over the ${a.points} points before`);
    return item;
  }));
}

// -- the banner: /status's problems, if any (DynamoDB away, stale data, a worker down) ------
async function loadStatus() {
  const banner = $("#problems");
  try {
    const { body } = await api("/status");
    banner.querySelector("ul").replaceChildren(...body.problems.map((text) => {
      const li = document.createElement("li");
      li.textContent = text;
      return li;
    }));
    banner.hidden = body.problems.length === 0;
  } catch (error) {
    banner.querySelector("ul").replaceChildren(Object.assign(document.createElement("li"), {
      textContent: `the service's status is unavailable: ${error.message}`,
    }));
    banner.hidden = false;
  }
}

// -- refresh -------------------------------------------------------------------------------
async function refresh() {
  clearTimeout(state.timer);
  let wait = 30;
  loadStatus();
  try {
    const { body, maxAge } = await api("/symbols");
    state.markets = body.symbols;
    renderOptions();
    if (!state.picked.length && state.markets.length) {
      const first = findMarket("btcusd") || state.markets[0];
      state.picked.push(key(first));
      renderPicked();
    }
    await Promise.all([loadRank(), loadAlerts(), drawChart()]);
    const newest = state.markets.reduce((t, m) => (m.time > t ? m.time : t), "");
    setStatus(`${state.markets.length} markets · newest tick ${newest || "—"}`);
    if (maxAge != null) wait = Math.max(5, maxAge + 1);
  } catch (error) {
    setStatus(`Could not load data: ${error.message}; retrying`);
    wait = 10;
  }
  state.timer = setTimeout(refresh, wait * 1000);
}

$("#picker").addEventListener("submit", (event) => {
  event.preventDefault();
  const input = $("#market-search");
  const market = findMarket(input.value);
  if (!market) {
    setStatus(`No market called “${input.value}”`);
    return;
  }
  input.value = "";
  pick(key(market));
});
$("#market-search").addEventListener("input", () => renderOptions());
let searching = null;
$("#rank-search").addEventListener("input", (event) => {
  clearTimeout(searching);
  searching = setTimeout(() => {
    state.search = event.target.value.trim().toLowerCase();
    state.page = 0;
    loadRank().catch((error) => setStatus(`Could not search: ${error.message}`));
  }, 120);
});
for (const [id, step] of [["#rank-prev", -1], ["#rank-next", 1]]) {
  $(id).addEventListener("click", () => {
    state.page = Math.max(0, state.page + step);
    loadRank().catch((error) => setStatus(`Could not load the page: ${error.message}`));
  });
}
$("#market-search").addEventListener("change", (event) => {
  const market = state.markets.find((m) => key(m) === event.target.value);
  if (market) { event.target.value = ""; pick(key(market)); }
});
for (const radio of document.querySelectorAll('input[name="metric"]')) {
  radio.addEventListener("change", () => { state.metric = radio.value; drawChart(); });
}
$("#normalize").addEventListener("change", () => { state.page = 0; loadRank(); });
for (const button of document.querySelectorAll("#rank th button")) {
  button.addEventListener("click", () => {
    const k = button.dataset.key;
    state.sort = { key: k, dir: state.sort.key === k ? -state.sort.dir : 1 };
    renderRank();
  });
}
new ResizeObserver(() => {
  if (state.chart) state.chart.setSize({ width: Math.max(280, $("#chart").clientWidth), height: 320 });
}).observe($("#chart"));
refresh();

// The pair view and the assets table (after dashboard.js, whose `api`, `fmt` and `$` it uses).
"use strict";

const pairs = { names: [], pair: null, chart: null, timer: null };
const percent = (x) => (x == null ? "—" : `${(100 * x).toFixed(2)} %`);
const STATUS_WORDS = {
  used: "used",
  outlier: "outlier: left out",
  gross: "gross error: left out",
  stale: "stale: left out",
  no_volume: "no volume: left out",
};

function figure(term, value) {
  const div = document.createElement("div");
  const dt = Object.assign(document.createElement("dt"), { textContent: term });
  const dd = Object.assign(document.createElement("dd"), { textContent: value });
  div.append(dt, dd);
  return div;
}

async function loadPairNames() {
  const { body } = await api("/pairs?limit=1000");
  pairs.names = body.pairs.map((p) => p.pair);
  $("#pair-list").replaceChildren(...body.pairs.map((p) => Object.assign(
    document.createElement("option"), { value: p.pair, label: `${p.pair} · ${p.markets} market(s)` })));
  if (!pairs.pair && pairs.names.length) {
    pairs.pair = pairs.names.includes("btc-usd") ? "btc-usd" : pairs.names[0];
  }
}

async function drawPairChart(detail) {
  const box = $("#pair-chart");
  // The aggregate, and each constituent the board holds (state.markets, from /symbols).
  const held = new Set(state.markets.map((m) => `${m.exchange}:${m.symbol}`));
  const lines = [{ exchange: "all", symbol: detail.pair, label: `${detail.pair} (all markets)` },
    ...detail.constituents.filter((c) => held.has(`${c.exchange}:${c.symbol}`))
      .map((c) => ({ exchange: c.exchange, symbol: c.symbol, label: `${c.exchange}:${c.symbol}` }))];
  const series = await Promise.all(lines.map(async (line) => {
    const symbol = encodeURIComponent(line.symbol);
    const { body } = await api(`/symbols/${symbol}/history?exchange=${line.exchange}&metric=price`);
    return { ...line, points: body.points };
  }));
  const times = [...new Set(series.flatMap((s) => s.points.map((p) => Date.parse(p.time) / 1000)))]
    .sort((a, b) => a - b);
  const index = new Map(times.map((t, i) => [t, i]));
  const columns = series.map((s) => {
    const column = new Array(times.length).fill(null);
    for (const p of s.points) column[index.get(Date.parse(p.time) / 1000)] = p.value;
    return column;
  });
  const palette = ["#1b1f24", "#0969da", "#cf222e", "#1a7f37", "#8250df", "#bf8700", "#57606a"];
  const options = {
    width: Math.max(280, box.clientWidth),
    height: 280,
    scales: { x: { time: true } },
    axes: [{}, { label: `price (${detail.quote})`, size: 80 }],
    series: [{ label: "time" }, ...series.map((s, i) => ({
      label: s.label, stroke: palette[i % palette.length], width: i === 0 ? 2.5 : 1, spanGaps: false,
      value: (_, v) => fmt(v),
    }))],
  };
  if (pairs.chart) pairs.chart.destroy();
  box.innerHTML = "";
  pairs.chart = new uPlot(options, [times, ...columns], box);
  box.setAttribute("aria-label", `Price of ${detail.pair} across markets and of each market, ${times.length} ticks`);
}

function renderPair(detail) {
  $("#pair-title").textContent = `${detail.pair.toUpperCase()} across markets`;
  $("#pair-figures").replaceChildren(
    figure("Price (volume-weighted)", fmt(detail.price)),
    figure("Median", fmt(detail.median)),
    figure(`24 h volume (${detail.base})`, fmt(detail.volume)),
    figure("Markets used", `${detail.markets} of ${detail.markets + detail.excluded}`),
    figure("Dispersion", percent(detail.dispersion)),
    figure("Tick", detail.time),
  );
  $("#constituents-caption").textContent =
    `Outlier beyond ${detail.outlier_percent} % of the others' median (back within ${detail.outlier_percent / 2} %); stale after ${detail.stale_after} s unchanged`;
  $("#constituents tbody").replaceChildren(...detail.constituents.map((c) => {
    const tr = document.createElement("tr");
    tr.className = `status-${c.status}`;
    const cells = [`${c.exchange}:${c.symbol}`, fmt(c.price), fmt(c.volume), percent(c.weight),
      c.deviation == null ? "—" : `${c.deviation >= 0 ? "+" : ""}${percent(c.deviation)}`, STATUS_WORDS[c.status] || c.status];
    cells.forEach((value, i) => {
      const td = document.createElement("td");
      if (i >= 1 && i <= 4) td.className = "num";
      td.textContent = value;
      tr.append(td);
    });
    return tr;
  }));
}

async function loadPair() {
  if (!pairs.pair) return;
  const { body } = await api(`/pairs/${encodeURIComponent(pairs.pair)}`);
  renderPair(body);
  await drawPairChart(body);
}

async function loadAssets() {
  const { body } = await api("/assets?limit=20");
  $("#assets-caption").textContent = `${body.total} assets · figures of ${body.as_of}`;
  $("#assets tbody").replaceChildren(...body.assets.map((a) => {
    const tr = document.createElement("tr");
    [a.asset, fmt(a.price_usd), a.price_via || "—", fmt(a.volume_usd), a.markets].forEach((value, i) => {
      const td = document.createElement("td");
      if (i === 1 || i >= 3) td.className = "num";
      td.textContent = value;
      tr.append(td);
    });
    return tr;
  }));
}

async function refreshPairs() {
  clearTimeout(pairs.timer);
  let wait = 30;
  try {
    // Before the fetcher's first tick there are no figures: say so instead of asking (503).
    const { body: status } = await api("/status");
    if (!status.pairs || status.pairs.age_seconds == null) {
      $("#pair-figures").replaceChildren(figure("Not yet", status.pairs ? status.pairs.detail : "—"));
      pairs.timer = setTimeout(refreshPairs, 10 * 1000);
      return;
    }
    await loadPairNames();
    await Promise.all([loadPair(), loadAssets()]);
  } catch (error) {
    $("#pair-figures").replaceChildren(figure("Not available", error.message));
    wait = 10;
  }
  pairs.timer = setTimeout(refreshPairs, wait * 1000);
}

$("#pair-picker").addEventListener("submit", (event) => {
  event.preventDefault();
  const wanted = $("#pair-search").value.trim().toLowerCase();
  if (!pairs.names.includes(wanted)) {
    $("#pair-help").textContent = `No pair called “${wanted}”: pairs are base-quote, e.g. btc-usd`;
    return;
  }
  pairs.pair = wanted;
  $("#pair-search").value = "";
  loadPair().catch((error) => $("#pair-figures").replaceChildren(figure("Not available", error.message)));
});
new ResizeObserver(() => {
  if (pairs.chart) pairs.chart.setSize({ width: Math.max(280, $("#pair-chart").clientWidth), height: 280 });
}).observe($("#pair-chart"));
refreshPairs();

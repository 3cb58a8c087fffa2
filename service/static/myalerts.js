// "My alerts": a user's channels, rules, alerts and deliveries, behind their API key. The key
// is kept in sessionStorage (this tab only, gone when it closes) and sent as a Bearer token.
"use strict";

const mine = { key: sessionStorage.getItem("tracker-key"), channels: [], rules: [], rule: null };
const FIELDS = {
  webhook: [["url", "https://…"]],
  slack: [["url", "https://hooks.slack.com/services/…"]],
  discord: [["url", "https://discord.com/api/webhooks/…"]],
  telegram: [["bot_token", "123456:ABC…"], ["chat_id", "-100… or @channel"]],
  email: [["to", "you@example.com"]],
  ntfy: [["topic", "my-topic"], ["server", "https://ntfy.sh (optional)"]],
};
const CONDITION_FIELDS = {
  crosses_above: ["level"], crosses_below: ["level"],
  change: ["percent", "window", "direction"],
  average_multiple: ["multiple", "window", "min_points", "direction"],
};

async function me(method, path, body) {
  const response = await fetch(path, {
    method,
    headers: { Accept: "application/json", Authorization: `Bearer ${mine.key}`,
      ...(body === undefined ? {} : { "Content-Type": "application/json" }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const answer = response.status === 204 ? null : await response.json();
  if (!response.ok) {
    const detail = answer && answer.detail;
    const text = Array.isArray(detail)
      ? detail.map((d) => `${(d.loc || []).slice(1).join(".")}: ${d.msg}`).join("; ")
      : detail || response.statusText;
    throw new Error(`${response.status}: ${text}`);
  }
  return answer;
}

function say(text, isError = false) {
  const box = $("#my-message");
  box.textContent = text;
  box.classList.toggle("error", isError);
}

function cell(text) { return Object.assign(document.createElement("td"), { textContent: text }); }
function button(text, onClick) {
  const b = Object.assign(document.createElement("button"), { type: "button", textContent: text });
  b.addEventListener("click", () => onClick().catch((e) => say(e.message, true)));
  return b;
}

function describe(c) {
  if (c.kind === "crosses_above") return `crosses above ${fmt(c.level)}`;
  if (c.kind === "crosses_below") return `crosses below ${fmt(c.level)}`;
  if (c.kind === "change") return `${c.direction} ${fmt(c.percent)} % within ${c.window} s`;
  return `${c.direction} ${fmt(c.multiple)}× its ${c.window} s average`;
}

async function loadMine() {
  if (!mine.key) { $("#my-signed").hidden = true; return; }
  const who = await me("GET", "/me");
  $("#my-user").textContent = `Signed in as ${who.user} (key ${who.key_id}) · ${who.rules}/${who.limits.max_rules} rules, ${who.channels}/${who.limits.max_channels} channels`;
  $("#my-signed").hidden = false;
  mine.channels = (await me("GET", "/me/channels")).channels;
  mine.rules = (await me("GET", "/me/rules")).rules;
  renderChannels();
  renderRules();
  if (mine.rule) await showRule(mine.rule);
}

function renderChannels() {
  $("#my-channels tbody").replaceChildren(...mine.channels.map((c) => {
    const tr = document.createElement("tr");
    tr.dataset.id = c.id;
    const actions = document.createElement("td");
    actions.append(
      button("Test", async () => {
        const r = await me("POST", `/me/channels/${c.id}/test`);
        say(r.delivered ? `Test sent to ${c.name}: delivered (HTTP ${r.status ?? "—"})`
          : `Test to ${c.name} not delivered: ${r.error}`, !r.delivered);
      }),
      button("Delete", async () => { await me("DELETE", `/me/channels/${c.id}`); say(`Deleted ${c.name}`); await loadMine(); }),
    );
    tr.append(cell(c.name), cell(c.kind), cell(c.target),
      cell(c.disabled ? `disabled: ${c.disabled_reason}` : "active"), actions);
    return tr;
  }));
  $("#rule-channels").replaceChildren(...mine.channels.map((c) => {
    const label = document.createElement("label");
    const box = Object.assign(document.createElement("input"), { type: "checkbox", value: c.id, name: "channel" });
    label.append(box, ` ${c.name}`);
    return label;
  }));
}

function renderRules() {
  $("#my-rules tbody").replaceChildren(...mine.rules.map((r) => {
    const tr = document.createElement("tr");
    tr.dataset.id = r.id;
    tr.className = `state-${r.state}`;
    const actions = document.createElement("td");
    actions.append(
      button(r.paused ? "Resume" : "Pause", async () => {
        await me("PATCH", `/me/rules/${r.id}`, { paused: !r.paused });
        say(`${r.paused ? "Resumed" : "Paused"} ${r.name}`);
        await loadMine();
      }),
      button("Alerts", () => showRule(r.id)),
      button("Delete", async () => {
        await me("DELETE", `/me/rules/${r.id}`);
        if (mine.rule === r.id) { mine.rule = null; $("#my-rule-detail").hidden = true; }
        say(`Deleted ${r.name}`);
        await loadMine();
      }),
    );
    tr.append(cell(r.name), cell(`${r.exchange}:${r.symbol} ${r.metric}`), cell(describe(r.condition)),
      cell(r.state), cell(String(r.fired)), cell(r.last_fired ? new Date(r.last_fired).toLocaleString() : "—"), actions);
    return tr;
  }));
}

async function showRule(id) {
  mine.rule = id;
  const rule = mine.rules.find((r) => r.id === id);
  const alerts = (await me("GET", `/me/alerts?rule=${encodeURIComponent(id)}&limit=20`)).alerts;
  const deliveries = (await me("GET", "/me/deliveries?limit=200")).deliveries;
  const names = new Map(mine.channels.map((c) => [c.id, c.name]));
  $("#my-rule-title").textContent = rule ? `Alerts of “${rule.name}”` : "Alerts";
  $("#my-alerts tbody").replaceChildren(...alerts.flatMap((a) => {
    const sent = deliveries.filter((d) => d.alert === a.id);
    return (sent.length ? sent : [null]).map((d) => {
      const tr = document.createElement("tr");
      tr.className = d ? `delivery-${d.status}` : "";
      tr.append(cell(new Date(a.time).toLocaleString()), cell(fmt(a.value)), cell(fmt(a.reference)),
        cell(d ? names.get(d.channel) || d.channel : "—"), cell(d ? d.status : "no channel"),
        cell(d ? String(d.attempts) : "—"), cell(d && d.last_error ? d.last_error : ""));
      return tr;
    });
  }));
  $("#my-alerts-empty").hidden = alerts.length > 0;
  $("#my-rule-detail").hidden = false;
}

function showFields(select, box, fields) {
  const kind = select.value;
  box.replaceChildren(...(fields[kind] || []).map(([name, hint]) => {
    const label = Object.assign(document.createElement("label"), { textContent: `${name} ` });
    label.append(Object.assign(document.createElement("input"), { name, placeholder: hint || name }));
    return label;
  }));
}

function conditionFields() {
  const kind = $("#rule-kind").value;
  const box = $("#rule-condition");
  box.replaceChildren(...CONDITION_FIELDS[kind].map((name) => {
    const label = Object.assign(document.createElement("label"), { textContent: `${name} ` });
    let input;
    if (name === "direction") {
      input = document.createElement("select");
      const choices = kind === "change" ? ["any", "up", "down"] : ["above", "below"];
      input.replaceChildren(...choices.map((c) => Object.assign(document.createElement("option"), { value: c, textContent: c })));
    } else {
      input = Object.assign(document.createElement("input"), { type: "number", step: "any", required: name !== "min_points" });
      if (name === "window") input.value = "3600";
    }
    input.name = name;
    label.append(input);
    return label;
  }));
}

function setupMine() {
  $("#my-key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    mine.key = $("#my-key").value.trim();
    $("#my-key").value = "";
    sessionStorage.setItem("tracker-key", mine.key);
    loadMine().then(() => say("Key accepted: kept in this tab only."))
      .catch((e) => { say(e.message, true); });
  });
  $("#my-forget").addEventListener("click", () => {
    sessionStorage.removeItem("tracker-key");
    mine.key = null;
    $("#my-signed").hidden = true;
    say("Key forgotten.");
  });
  const kind = $("#channel-kind");
  kind.addEventListener("change", () => showFields(kind, $("#channel-fields"), FIELDS));
  showFields(kind, $("#channel-fields"), FIELDS);
  $("#channel-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = new FormData(event.target);
    const body = { name: form.get("name"), kind: form.get("kind") };
    for (const [name] of FIELDS[body.kind]) if (form.get(name)) body[name] = form.get(name);
    try {
      const made = await me("POST", "/me/channels", body);
      say(made.secret ? `Channel ${made.name} added. Its signing secret, shown this once: ${made.secret}`
        : `Channel ${made.name} added.`);
      event.target.reset();
      showFields(kind, $("#channel-fields"), FIELDS);
      await loadMine();
    } catch (e) { say(e.message, true); }
  });
  $("#rule-kind").addEventListener("change", conditionFields);
  conditionFields();
  $("#rule-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = new FormData(event.target);
    const condition = { kind: form.get("condition_kind") };
    for (const name of CONDITION_FIELDS[condition.kind]) {
      const value = form.get(name);
      if (value === null || value === "") continue;
      condition[name] = name === "direction" ? value : Number(value);
    }
    const body = {
      name: form.get("name"), exchange: form.get("exchange"), symbol: form.get("symbol"),
      metric: form.get("metric"), condition, repeat: form.get("repeat"),
      cooldown: Number(form.get("cooldown") || 0), channels: form.getAll("channel"),
    };
    try {
      const made = await me("POST", "/me/rules", body);
      say(`Rule ${made.name} added (${made.state}).`);
      await loadMine();
    } catch (e) { say(e.message, true); }
  });
  loadMine().catch((e) => say(e.message, true));
  setInterval(() => { if (mine.key) loadMine().catch(() => {}); }, 15000);
}

setupMine();

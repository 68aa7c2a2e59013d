// Events: the daemon's `/ws` event stream as readable lines ("Profile work
// created (claude with anthropic, claude-opus-4-8)", "Session t3 ended
// (exit 0)"), newest first, seeded with live.recentEvents() (the daemon's
// own record, `GET /api/events`, merged with what this tab received; when
// that record arrives after the page opened, "@recent" redraws the list). Filterable by type and by text; a pause
// toggle holds new events back (counted) until resumed. Nothing is
// clipped: long values wrap, and each event's data opens as pretty JSON.

import * as live from "../live.js";
import { h, cost, count, duration, field } from "../ui.js";

export const title = "Events";

const KEPT = 1000;

/// Every event type the daemon documents (design.md §5), for the filter;
/// types seen on the stream are added to it.
const TYPES = [
  "ProfileCreated",
  "ProfileUpdated",
  "ProfileDeleted",
  "ProfileStarted",
  "ProfileStopped",
  "AgentDetected",
  "AgentUpdated",
  "RegistrySyncStarted",
  "RegistrySyncProgress",
  "RegistrySyncCompleted",
  "RegistrySyncFailed",
  "ProxyStarted",
  "ProxyStopped",
  "ProxyError",
  "ProxyBudgetWarning",
  "ProxyBudgetExceeded",
  "UsageUpdated",
  "UsageImported",
  "DaemonStarted",
  "DaemonShuttingDown",
  "TerminalSessionCreated",
  "TerminalSessionEnded",
  "TerminalStateChanged",
];

/// The kind of line an event is, for its marker: problems stand out.
const SEVERITY = {
  ProxyError: "fail",
  ProxyBudgetExceeded: "fail",
  RegistrySyncFailed: "fail",
  ProxyBudgetWarning: "warn",
  DaemonShuttingDown: "warn",
};

export async function mount(view) {
  const typeSel = h("select", { name: "type" });
  const text = h("input", { type: "search", name: "q", placeholder: "alias, model, error…", autocomplete: "off" });
  const pause = h("button", { type: "button", "aria-pressed": "false" }, "Pause");
  const clear = h("button", { type: "button" }, "Clear");
  const shown = h("p", { class: "muted events-count", role: "status", "aria-live": "polite" });
  const list = h("ul", { class: "events-list", "aria-label": "Events, newest first" });
  const form = h(
    "form",
    { class: "events-filters", "aria-label": "Filter events" },
    field("Type", typeSel),
    field("Text", text),
    h("div", { class: "row events-buttons" }, pause, clear),
  );
  form.addEventListener("submit", (e) => e.preventDefault());

  view.append(
    h("h1", null, title),
    h("p", { class: "muted" }, "What the daemon announced, its recent events first, then live, newest first. Details open each event's data."),
    form,
    shown,
    list,
  );

  let events = live.recentEvents().reverse(); // newest first
  const seen = new Set(TYPES);
  let paused = false;
  let held = [];

  function fillTypes() {
    const current = typeSel.value;
    for (const e of events) seen.add(e.type);
    const types = [...seen].sort();
    typeSel.replaceChildren(
      h("option", { value: "" }, "All types"),
      ...types.map((t) => h("option", { value: t, selected: t === current }, t)),
    );
    typeSel.value = current;
  }

  function matches(e) {
    if (typeSel.value && e.type !== typeSel.value) return false;
    const q = text.value.trim().toLowerCase();
    if (!q) return true;
    return (e.type + " " + describe(e) + " " + JSON.stringify(e.data ?? null)).toLowerCase().includes(q);
  }

  function render() {
    const rows = events.filter(matches);
    list.replaceChildren(...rows.slice(0, KEPT).map(item));
    updateCount(rows.length);
    if (!rows.length) list.append(h("li", { class: "empty" }, events.length ? "No event matches the filter." : "No event yet: they appear here as they happen."));
  }

  function updateCount(n) {
    const parts = [`${count(n)} of ${count(events.length)} ${events.length === 1 ? "event" : "events"} shown`];
    if (paused) parts.push(`paused: ${count(held.length)} new held back`);
    shown.textContent = parts.join("; ") + ".";
  }

  function add(e) {
    events.unshift(e);
    if (events.length > KEPT) events.length = KEPT;
    if (!seen.has(e.type)) fillTypes();
    if (!matches(e)) {
      updateCount(list.querySelectorAll("li.event").length);
      return;
    }
    const empty = list.querySelector("li.empty");
    if (empty) empty.remove();
    list.prepend(item(e));
    while (list.children.length > KEPT) list.lastChild.remove();
    updateCount(list.querySelectorAll("li.event").length);
  }

  // The daemon's record came in (on each connect): the list starts over
  // from it, minus what a pause still holds back.
  const offRecent = live.on("@recent", () => {
    const waiting = new Set(held.map(key));
    events = live.recentEvents().reverse().filter((e) => !waiting.has(key(e))).slice(0, KEPT);
    fillTypes();
    render();
  });
  const off = live.on("*", (e) => {
    if (paused) {
      held.push(e);
      updateCount(list.querySelectorAll("li.event").length);
    } else add(e);
  });

  pause.addEventListener("click", () => {
    paused = !paused;
    pause.setAttribute("aria-pressed", String(paused));
    pause.textContent = paused ? "Resume" : "Pause";
    if (!paused) {
      const waiting = held;
      held = [];
      for (const e of waiting) add(e);
    }
    updateCount(list.querySelectorAll("li.event").length);
  });
  clear.addEventListener("click", () => {
    events.length = 0;
    held = [];
    render();
  });
  typeSel.addEventListener("change", render);
  text.addEventListener("input", render);

  fillTypes();
  render();
  return () => {
    off();
    offRecent();
  };
}

/// An event's identity, as live.js merges the daemon's record with it.
function key(e) {
  return `${e.timestamp}|${e.type}|${JSON.stringify(e.data)}`;
}

function item(e) {
  const when = e.timestamp ? new Date(e.timestamp) : null;
  const time = when && !Number.isNaN(when.getTime())
    ? h(
        "time",
        { datetime: e.timestamp, title: when.toLocaleString() },
        // The date too for an event of another day (the daemon's record).
        when.toDateString() === new Date().toDateString() ? when.toLocaleTimeString() : when.toLocaleString(),
      )
    : h("span", null, "");
  const kind = SEVERITY[e.type] || "";
  return h(
    "li",
    { class: `event ${kind}` },
    h(
      "div",
      { class: "event-line" },
      time,
      h("span", { class: "event-type" }, e.type),
      kind ? h("span", { class: `state ${kind}` }, h("span", { class: "dot", "aria-hidden": "true" }), kind === "fail" ? "problem" : "warning") : null,
      h("span", { class: "event-text" }, describe(e)),
    ),
    h("details", null, h("summary", null, "Details"), h("pre", null, JSON.stringify(e, null, 2))),
  );
}

/// One readable sentence per event type; an unknown type shows its data.
export function describe(e) {
  const d = e.data && typeof e.data === "object" ? e.data : {};
  const s = (v) => (v === null || v === undefined || v === "" ? "?" : String(v));
  switch (e.type) {
    case "ProfileCreated":
      return `Profile ${s(d.alias)} created (${s(d.agent)} with ${s(d.provider)}, ${s(d.model)})`;
    case "ProfileUpdated":
      return `Profile ${s(d.alias)} updated${d.change ? `: ${d.change}` : ""}`;
    case "ProfileDeleted":
      return `Profile ${s(d.alias)} deleted${d.purged ? ", its home removed" : ", its home kept"}`;
    case "ProfileStarted":
      return `Profile ${s(d.alias)} started (${d.mode === "remote" ? `in terminal session ${s(d.terminal)}` : "a local run"})`;
    case "ProfileStopped":
      return `Profile ${s(d.alias)} stopped (${exit(d)}${typeof d.duration_ms === "number" ? ` after ${duration(d.duration_ms / 1000)}` : ""})`;
    case "AgentDetected":
      return `Agent ${s(d.id)}${d.version ? ` ${d.version}` : ""} found at ${s(d.path)}`;
    case "AgentUpdated":
      return `Agent ${s(d.id)} changed from ${d.previous_version || "unknown"} to ${d.version || "unknown"} (${s(d.path)})`;
    case "RegistrySyncStarted":
      return `Registry sync ${s(d.id)} started from ${s(d.source)}`;
    case "RegistrySyncProgress":
      return `Registry sync ${s(d.id)}: ${count(d.artifacts_done)} of ${count(d.artifacts_total)} artifacts, ${bytes(d.bytes_done)} of ${bytes(d.bytes_total)}`;
    case "RegistrySyncCompleted":
      return d.unchanged
        ? `Registry sync ${s(d.id)} done: commit ${short(d.commit)}, unchanged`
        : `Registry sync ${s(d.id)} done: commit ${short(d.commit)} (${count(d.fetched)} fetched, ${count(d.reused)} reused${d.changes && d.changes.length ? `, ${d.changes.length} changes` : ""})`;
    case "RegistrySyncFailed":
      return `Registry sync ${s(d.id)} failed: ${s(d.error)}`;
    case "ProxyStarted":
      return `Proxy ${s(d.alias)} started on port ${s(d.port)} (pid ${s(d.pid)}${d.restarts ? `, restart ${d.restarts}` : ""})`;
    case "ProxyStopped":
      // "stopped" is the reason of a stop someone asked for.
      return `Proxy ${s(d.alias)} stopped (${!d.reason || d.reason === "stopped" ? "on request" : d.reason}); port ${s(d.port)} freed`;
    case "ProxyError":
      return d.state === "restarting"
        ? `Proxy ${s(d.alias)} failed: ${s(d.error)}; restarting in ${count(d.restart_in_ms)} ms`
        : `Proxy ${s(d.alias)} gave up after ${count(d.restarts)} restarts: ${s(d.error)}`;
    case "ProxyBudgetWarning":
      return `Proxy ${s(d.alias)} has spent ${cost(d.spent_usd)} of its ${s(d.period)} budget of ${cost(d.budget_usd)}`;
    case "ProxyBudgetExceeded":
      return `Proxy ${s(d.alias)} reached its ${s(d.period)} budget: ${cost(d.spent_usd)} of ${cost(d.budget_usd)}; requests are refused (402)`;
    case "UsageUpdated": {
      const priced = d.unpriced_tokens ? `${count(d.unpriced_tokens)} unpriced tokens` : cost(d.cost_usd);
      return `Usage of ${s(d.profile)} (${s(d.model)}): ${signed(d.total_tokens)} tokens, ${priced}${d.messages ? `, ${count(d.messages)} ${d.messages === 1 ? "response" : "responses"}` : ""}`;
    }
    case "UsageImported":
      return `Imported ${count(d.added)} new ${d.added === 1 ? "response" : "responses"} as ${s(d.profile)} from ${count(d.files)} ${d.files === 1 ? "file" : "files"} in ${s(d.dir)}`;
    case "DaemonStarted":
      return `Daemon ${s(d.version)} started (pid ${s(d.pid)})`;
    case "DaemonShuttingDown":
      return `Daemon shutting down${d.reason ? `: ${d.reason}` : ""}`;
    case "TerminalSessionCreated":
      return `Session ${s(d.id)} started: ${s(d.profile)} in ${s(d.working_dir)}${d.sandbox === false || d.sandbox === "none" ? " (no sandbox)" : ""}`;
    case "TerminalSessionEnded":
      return `Session ${s(d.id)} ended (${exit(d)})${d.profile ? `, profile ${d.profile}` : ""}`;
    case "TerminalStateChanged":
      return `Session ${s(d.id)}${d.profile ? ` (${d.profile})` : ""}: ${d.agent_state === "waiting" ? "waiting for you" : d.agent_state === "working" ? "working" : "no state"}`;
    default:
      return e.data === undefined ? e.type : `${e.type}: ${JSON.stringify(e.data)}`;
  }
}

function exit(d) {
  if (typeof d.exit_code === "number") return `exit ${d.exit_code}`;
  if (d.signal) return `signal ${d.signal}`;
  return "exit status unknown";
}

function signed(n) {
  return typeof n === "number" ? `${n >= 0 ? "+" : ""}${n.toLocaleString()}` : "?";
}

function short(commit) {
  return typeof commit === "string" ? commit.slice(0, 12) : "?";
}

function bytes(n) {
  if (typeof n !== "number") return "?";
  if (n < 1024) return `${n} B`;
  if (n < 1048576) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1048576).toFixed(1)} MiB`;
}

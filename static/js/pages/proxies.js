// Proxies: every proxy-enabled profile's proxy as `ringlet proxy status`
// shows it (state, port, pid, uptime, restarts, last error; per target the
// requests, errors, fallbacks and latency; today's and this month's spend
// against the budget as meters), with start, stop and restart, and the
// request log of one proxy, newest first. Live: the Proxy* events reload
// the cards, a budget warning or an exceeded budget is highlighted; no
// event is sent per request, so while the page is open the request log
// and the figures are polled every few seconds (stopped on leaving).

import { api, withQuery } from "../api.js";
import * as live from "../live.js";
import { h, table, section, ago, duration, cost, count, failed, field, select, confirm, state as stateDot, toast } from "../ui.js";

export const title = "Proxies";

const LOG_LINES = 100;
const PAGE_ROWS = 25;
const POLL_MS = 3000;
const STATE_KIND = { running: "running", starting: "waiting", stopping: "waiting", stopped: "stopped", failed: "failed" };

export async function mount(view, ctx) {
  const cards = h("div", { class: "proxy-cards" });
  const others = h("div");
  const alerts = h("div", { class: "proxy-alerts", role: "alert" });
  const logAlias = select("alias", [], "");
  const logFilter = h("input", { type: "search", name: "filter", placeholder: "model, target, status…", autocomplete: "off" });
  const errorsOnly = h("input", { type: "checkbox", name: "errors", id: "proxy-errors-only" });
  const logBox = h("div", { class: "proxy-log" });
  const logStatus = h("p", { class: "muted proxy-log-status", role: "status", "aria-live": "polite" });
  const logForm = h(
    "form",
    { class: "proxy-log-form", "aria-label": "Request log" },
    field("Proxy", logAlias),
    field("Filter", logFilter),
    h("div", { class: "field proxy-check" }, h("span", null, errorsOnly, " ", h("label", { for: "proxy-errors-only" }, "Failures and fallbacks only"))),
  );
  logForm.addEventListener("submit", (e) => e.preventDefault());
  const stopAll = h("button", { type: "button", class: "danger", onclick: () => act("stop-all") }, "Stop all");

  view.append(
    h("h1", null, title),
    alerts,
    h(
      "div",
      { class: "card-head page-tools" },
      h("p", { class: "muted" }, "Each proxy-enabled profile's proxy runs as a child of the daemon; running the profile starts it."),
      stopAll,
    ),
    cards,
    others,
    section("Request log", null, logForm, logStatus, logBox),
  );

  let seq = 0;
  let proxies = [];
  let log = { alias: null, next: null, entries: [] };

  async function loadStatus() {
    const my = ++seq;
    try {
      const [list, profiles] = await Promise.all([
        api("GET", "/api/proxy/status"),
        api("GET", "/api/profiles").catch(() => null),
      ]);
      if (my !== seq) return;
      proxies = Array.isArray(list) ? list : [];
      renderCards(profiles);
    } catch (e) {
      if (my !== seq) return;
      cards.replaceChildren(h("p", { class: "error", role: "alert" }, e.message));
    }
  }

  function renderCards(profiles) {
    // Keep focus on the button that was used, across the re-render.
    const active = document.activeElement;
    const focused = active && cards.contains(active) ? active.dataset.key : null;
    cards.replaceChildren(
      ...(proxies.length
        ? proxies.map(card)
        : [
            h(
              "p",
              { class: "empty" },
              "No profile has its proxy enabled. Enable one on its profile page, or with ",
              h("code", null, "ringlet proxy enable <alias>"),
              ".",
            ),
          ]),
    );
    if (focused) cards.querySelector(`[data-key="${CSS.escape(focused)}"]`)?.focus();
    const list = profiles && Array.isArray(profiles.profiles) ? profiles.profiles : Array.isArray(profiles) ? profiles : [];
    const without = list.filter((p) => !p.proxy).map((p) => p.alias);
    others.replaceChildren(
      without.length
        ? h(
            "p",
            { class: "muted" },
            "Profiles without a proxy: ",
            without.map((a, i) => [i ? ", " : "", h("a", { href: `#/profiles/${encodeURIComponent(a)}` }, a)]),
            ".",
          )
        : "",
    );
    stopAll.disabled = !proxies.some((p) => p.state === "running" || p.state === "starting");
    // The log's proxy list follows the proxies.
    const current = log.alias || ctx.args[0] || (proxies[0] && proxies[0].alias) || "";
    const aliases = proxies.map((p) => p.alias);
    if (current && !aliases.includes(current)) aliases.unshift(current);
    // Rebuilt only when the list changes: a select being used keeps its state.
    if ([...logAlias.options].map((o) => o.value).join("\n") !== aliases.join("\n")) {
      logAlias.replaceChildren(...aliases.map((a) => h("option", { value: a, selected: a === current }, a)));
      logAlias.value = current;
    }
    if (current && log.alias !== current) switchLog(current);
    logForm.hidden = !current;
    if (!current) {
      logBox.replaceChildren(h("p", { class: "empty" }, "No proxy, no requests."));
      logStatus.textContent = "";
    }
  }

  function card(p) {
    const s = p.stats || null;
    const budgetState = s && s.budget_state && s.budget_state !== "ok" ? s.budget_state : null;
    const key = (action) => `${p.alias}:${action}`;
    const running = p.state === "running" || p.state === "starting";
    const label = (verb) => `${verb} the proxy of ${p.alias}`;
    const buttons = h(
      "div",
      { class: "row" },
      h("button", { type: "button", "data-key": key("start"), "aria-label": label("Start"), disabled: running, onclick: () => act("start", p.alias) }, "Start"),
      h("button", { type: "button", "data-key": key("restart"), "aria-label": label("Restart"), disabled: p.state === "stopping", onclick: () => act("restart", p.alias) }, "Restart"),
      h("button", { type: "button", class: "danger", "data-key": key("stop"), "aria-label": label("Stop"), disabled: !running, onclick: () => act("stop", p.alias) }, "Stop"),
    );
    const facts = [
      ["State", stateDot(p.state, STATE_KIND[p.state] || p.state)],
      ["Backend", p.backend],
      ["Port", p.port ? h("code", null, `127.0.0.1:${p.port}`) : "none yet"],
      ["PID", p.pid ?? "–"],
      ["Up", p.uptime_secs !== null && p.uptime_secs !== undefined ? duration(p.uptime_secs) : "–"],
      ["Restarts", count(p.restarts)],
      p.spawn_to_healthy_ms ? ["Start to healthy", `${p.spawn_to_healthy_ms.toFixed(0)} ms`] : null,
      s ? ["Requests", `${count(s.requests)} since start${s.in_flight ? `, ${count(s.in_flight)} in flight` : ""}`] : null,
      s ? ["Last request", s.last_request ? ago(s.last_request) : "none"] : null,
      s && s.unpriced_requests ? ["Unpriced requests", `${count(s.unpriced_requests)} this month (not in the spend)`] : null,
    ].filter(Boolean);
    const head = h(
      "div",
      { class: "card-head" },
      h("h2", null, h("a", { href: `#/profiles/${encodeURIComponent(p.alias)}` }, p.alias)),
      buttons,
    );
    const body = [
      h("dl", { class: "facts" }, facts.map(([k, v]) => h("div", null, h("dt", null, k), h("dd", null, v)))),
      p.last_error ? h("p", { class: "error proxy-error" }, h("strong", null, "Last error: "), p.last_error) : null,
      p.stats_error ? h("p", { class: "muted" }, `Figures unavailable: ${p.stats_error}`) : null,
      budgetState
        ? h(
            "p",
            { class: `proxy-budget-alert ${budgetState}` },
            budgetState === "exceeded"
              ? `Budget reached (${s.budget_period || "a"} limit): requests get HTTP 402 until the period ends.`
              : `Budget warning: 80 % or more of the ${s.budget_period || ""} limit is spent.`,
          )
        : null,
      s ? spend(s) : null,
      s && s.targets && s.targets.length
        ? targets(s.targets, p.alias)
        : s
          ? h("p", { class: "muted" }, "No request since this proxy started.")
          : null,
    ];
    return h(
      "section",
      { class: `card proxy-card${budgetState ? ` budget-${budgetState}` : ""}`, "aria-label": `Proxy of ${p.alias}` },
      head,
      body,
    );
  }

  function spend(s) {
    const meter = (label, spent, limit) => {
      if (!limit) {
        return h("div", { class: "proxy-meter" }, h("span", { class: "meter-label" }, label), h("span", null, `${cost(spent)} (no limit)`));
      }
      const id = `m-${Math.random().toString(36).slice(2, 8)}`;
      const pct = Math.round((spent / limit) * 100);
      return h(
        "div",
        { class: "proxy-meter" },
        h("label", { class: "meter-label", for: id }, label),
        h("meter", { id, min: 0, max: limit, low: limit * 0.8, high: limit * 0.999, optimum: 0, value: Math.min(spent, limit) }, `${pct}%`),
        h("span", null, `${cost(spent)} of ${cost(limit)} (${pct} %)`),
      );
    };
    const b = s.budget || {};
    return h(
      "div",
      { class: "proxy-spend" },
      meter("Spent today", s.spend_today_usd, b.daily_usd),
      meter("This month", s.spend_month_usd, b.monthly_usd),
    );
  }

  function targets(rows, alias) {
    return stacked(table(
      [
        { label: "Target", value: (t) => h("code", null, t.target) },
        { label: "Requests", class: "num", value: (t) => count(t.requests) },
        { label: "Errors", class: "num", value: (t) => (t.errors ? h("span", { class: "error" }, count(t.errors)) : "0") },
        { label: "Fallbacks", class: "num", value: (t) => count(t.fallbacks) },
        { label: "p50", class: "num", value: (t) => ms(t.p50_ms) },
        { label: "p99", class: "num", value: (t) => ms(t.p99_ms) },
        { label: "Spent today", class: "num", value: (t) => cost(t.spend_today_usd) },
      ],
      rows,
      { caption: `Targets of ${alias} since the proxy started` },
    ));
  }

  async function act(action, alias) {
    if (action === "stop-all" && !(await confirm("Stop every proxy? Agents running through them lose their connection until they are started again.", { action: "Stop all", danger: true }))) {
      return;
    }
    const path = action === "stop-all" ? "/api/proxy/stop-all" : `/api/proxy/${encodeURIComponent(alias)}/${action}`;
    try {
      await api("POST", path);
      const done = { start: "started", stop: "stopped", restart: "restarted" }[action];
      toast(action === "stop-all" ? "Every proxy stopped." : `Proxy ${alias}: ${done}.`);
    } catch (e) {
      failed(e);
    } finally {
      loadStatus();
    }
  }

  // --- the request log ----------------------------------------------------

  function switchLog(alias) {
    log = { alias, next: null, entries: [] };
    limit = PAGE_ROWS;
    logBox.replaceChildren(h("p", { class: "loading" }, "Loading…"));
    pollLog();
  }

  let limit = PAGE_ROWS; // rows shown; "Show more" adds PAGE_ROWS
  let logBusy = false;
  async function pollLog() {
    if (!log.alias || logBusy) return;
    logBusy = true;
    const wanted = log.alias;
    try {
      const params = log.next === null ? { lines: LOG_LINES } : { from: log.next };
      const r = await api("GET", withQuery(`/api/proxy/${encodeURIComponent(wanted)}/logs`, params));
      if (log.alias !== wanted) return;
      // The file rotated (the offset went back): read its tail afresh.
      if (log.next !== null && r.next < log.next) {
        log.next = null;
        log.entries = [];
        return;
      }
      const fresh = r.lines.map(parseLine).filter(Boolean);
      const first = log.next === null;
      log.entries = [...fresh.reverse(), ...log.entries].slice(0, 500);
      log.next = r.next;
      const n = log.entries.length;
      logStatus.textContent = `The last ${count(n)} ${n === 1 ? "request" : "requests"}, newest first (updated every few seconds); ${r.path}`;
      if (fresh.length || first) renderLog();
    } catch (e) {
      if (log.alias !== wanted) return;
      logBox.replaceChildren(h("p", { class: "error", role: "alert" }, e.message));
    } finally {
      logBusy = false;
    }
  }

  function renderLog() {
    const text = logFilter.value.trim().toLowerCase();
    const rows = log.entries.filter((e) => {
      const bad = !e.status || e.status >= 400 || (e.attempts && e.attempts.length > 1);
      if (errorsOnly.checked && !bad) return false;
      return !text || e.search.includes(text);
    });
    logBox.replaceChildren(
      stacked(table(
        [
          { label: "Time", class: "nowrap", value: (e) => when(e.ts) },
          { label: "Status", value: (e) => statusCell(e.status) },
          { label: "Model asked", value: (e) => h("code", null, e.model || "") },
          { label: "Rule", value: (e) => e.rule || h("span", { class: "muted" }, "default") },
          { label: "Answered by", value: (e) => (e.target ? h("code", null, e.target) : h("span", { class: "muted" }, "nobody")) },
          { label: "Attempts", value: (e) => attempts(e.attempts) },
          { label: "First byte", class: "num", value: (e) => ms(e.ttfb_ms) },
          { label: "Total", class: "num", value: (e) => ms(e.ms) },
          { label: "Tokens in / out", class: "num", value: (e) => (e.tokens ? `${count(e.tokens.input)} / ${count(e.tokens.output)}` : "–") },
          {
            label: "Cost",
            class: "num",
            value: (e) => (e.cost_usd === null || e.cost_usd === undefined ? (e.tokens ? "unpriced" : "–") : cost(e.cost_usd)),
          },
        ],
        rows.slice(0, limit),
        {
          caption: `Requests through the proxy of ${log.alias}`,
          empty: log.entries.length ? "No request matches the filter." : "No request yet.",
        },
      )),
      rows.length > limit
        ? h(
            "div",
            { class: "row" },
            h("button", { type: "button", onclick: () => ((limit += PAGE_ROWS), renderLog()) }, `Show ${Math.min(PAGE_ROWS, rows.length - limit)} more`),
            h("span", { class: "muted" }, `${count(limit)} of ${count(rows.length)} shown`),
          )
        : "",
    );
  }

  // A filter starts from the newest page again.
  const refilter = () => {
    limit = PAGE_ROWS;
    renderLog();
  };
  logAlias.addEventListener("change", () => switchLog(logAlias.value));
  logFilter.addEventListener("input", refilter);
  errorsOnly.addEventListener("change", refilter);

  // --- live ---------------------------------------------------------------

  let statusTimer = null;
  const reload = () => {
    clearTimeout(statusTimer);
    statusTimer = setTimeout(loadStatus, 300);
  };
  const offs = [
    live.on("ProxyStarted", reload),
    live.on("ProxyStopped", reload),
    live.on("ProxyError", (e) => {
      reload();
      const d = e.data || {};
      if (d.state === "failed") toast(`Proxy ${d.alias} failed: ${d.error}`, "error");
    }),
    live.on("ProxyBudgetWarning", (e) => budgetEvent(e, "warning")),
    live.on("ProxyBudgetExceeded", (e) => budgetEvent(e, "exceeded")),
    live.on("ProfileUpdated", reload),
    live.on("ProfileCreated", reload),
    live.on("ProfileDeleted", reload),
  ];

  function budgetEvent(e, kind) {
    reload();
    const d = e.data || {};
    const text =
      kind === "exceeded"
        ? `Proxy ${d.alias} reached its ${d.period} budget: ${cost(d.spent_usd)} of ${cost(d.budget_usd)}. Requests get HTTP 402 until the period ends.`
        : `Proxy ${d.alias} has spent ${cost(d.spent_usd)} of its ${d.period} budget of ${cost(d.budget_usd)} (80 % or more).`;
    const close = h("button", { type: "button", class: "link", "aria-label": "Dismiss" }, "×");
    const note = h("div", { class: `proxy-budget-alert ${kind}` }, h("span", null, text), close);
    close.addEventListener("click", () => note.remove());
    alerts.append(note);
  }

  // Polling: requests have no event. Every POLL_MS the log; every other
  // round the figures (requests, latency, spend). Skipped while the tab
  // is hidden.
  let round = 0;
  const poll = setInterval(() => {
    if (document.hidden) return;
    pollLog();
    if (++round % 2 === 0) loadStatus();
  }, POLL_MS);

  await loadStatus();
  return () => {
    clearInterval(poll);
    clearTimeout(statusTimer);
    seq++;
    log.alias = null;
    for (const off of offs) off();
  };
}

/// On a phone a table's rows become stacked cards (each cell labelled with
/// its column: `data-label`; app.css `.stack-narrow`), not a table to scroll.
function stacked(el) {
  el.classList.add("stack-narrow");
  return el;
}

function parseLine(line) {
  try {
    const e = JSON.parse(line);
    if (!e || typeof e !== "object" || e.carry) return null;
    const tried = (e.attempts || []).map((a) => `${a.target} ${a.status ?? ""} ${a.error ?? ""}`);
    e.search = [e.model, e.rule, e.target, e.status, e.path, ...tried].join(" ").toLowerCase();
    return e;
  } catch {
    return null;
  }
}

/// The time of a request; its date too when it was not today.
function when(ts) {
  if (!ts) return "";
  const t = new Date(ts);
  const today = t.toDateString() === new Date().toDateString();
  return h("time", { datetime: ts, title: t.toLocaleString() }, today ? t.toLocaleTimeString() : t.toLocaleString());
}

function statusCell(status) {
  if (!status) return h("span", { class: "error" }, "no answer");
  if (status >= 400) return h("span", { class: "error" }, String(status));
  return String(status);
}

function attempts(list) {
  if (!list || !list.length) return h("span", { class: "muted" }, "none (refused before any upstream)");
  if (list.length === 1 && list[0].status && list[0].status < 400) return "1";
  return h(
    "ol",
    { class: "attempts" },
    list.map((a) =>
      h(
        "li",
        null,
        h("code", null, a.target),
        " ",
        a.status ? statusCell(a.status) : h("span", { class: "error" }, a.error || "failed"),
        ` ${ms(a.ms)}`,
      ),
    ),
  );
}

function ms(v) {
  if (typeof v !== "number") return "–";
  return v >= 1000 ? `${(v / 1000).toFixed(2)} s` : `${v.toFixed(v < 10 ? 1 : 0)} ms`;
}

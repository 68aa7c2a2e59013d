// Dashboard: the daemon (version, uptime, ports, pid), the agents
// installed, counts, running sessions with their agent state, proxies,
// today's and this month's spend, and the last events. The first fill is
// one call (GET /api/dashboard); after that each card reloads on its own when an event says its data changed (sessions on
// TerminalSession*, profiles on Profile*, proxies on Proxy*, spend on
// UsageUpdated), so nothing shown is stale; a reconnect remounts the page.

import { api, withQuery, ApiError } from "../api.js";
import * as live from "../live.js";
import { h, cardTable as table, stacked, fill, ago, duration, cost, count, state } from "../ui.js";

export const title = "Dashboard";
const enc = encodeURIComponent;
const EVENTS_SHOWN = 12;

/// A card whose body `load()` fills; errors show in the card, not a toast,
/// so one failing route leaves the rest of the page working.
function card(heading, id, link) {
  const body = h("div", { class: "card-body" }, h("p", { class: "loading" }, "Loading…"));
  const el = h(
    "section",
    { class: "card", "aria-labelledby": `dash-${id}` },
    h("div", { class: "card-head" }, h("h2", { id: `dash-${id}` }, heading), link ? h("a", { href: link[0] }, link[1]) : null),
    body,
  );
  return { el, body };
}

function kv(rows) {
  return h("dl", { class: "kv" }, rows.filter(Boolean).map(([k, v]) => [h("dt", null, k), h("dd", null, v)]));
}

/// One line about an event: its type, then the fields a person looks for.
export function eventSummary(e) {
  const d = e.data && typeof e.data === "object" ? e.data : {};
  const bits = [];
  for (const k of ["alias", "profile", "id", "agent", "model", "agent_state", "state", "exit_code", "port", "error", "message", "commit"]) {
    const v = d[k];
    if (v !== undefined && v !== null && v !== "" && typeof v !== "object") bits.push(`${k} ${v}`);
  }
  if (typeof d.cost_usd === "number") bits.push(cost(d.cost_usd));
  return bits.join(", ");
}

function sessionState(s) {
  const run = state(s.state, s.state === "running" ? "running" : "exited");
  if (s.state !== "running" || !s.agent_state) return run;
  const label = s.agent_state === "waiting" ? "waiting for you" : s.agent_state;
  return h("span", { class: "row" }, run, state(label, s.agent_state));
}

/// How long the cards wait for their first data before they show empty
/// ("Loading…") meanwhile.
const EMPTY_CARDS_AFTER_MS = 250;

export async function mount(view) {
  // Asked for before anything is built: the daemon answers while the page
  // builds its cards.
  const first = api("GET", "/api/dashboard");
  first.catch(() => {}); // seen by loadAll below
  const daemon = card("Daemon", "daemon");
  const counts = card("Counts", "counts");
  const spend = card("Spend", "spend", ["#/usage", "Usage"]);
  const agents = card("Agents", "agents", ["#/agents", "Agents and providers"]);
  const sessions = card("Running sessions", "sessions", ["#/terminals", "Terminals"]);
  const proxies = card("Proxies", "proxies", ["#/proxies", "Proxies"]);
  const events = card("Recent events", "events", ["#/events", "All events"]);
  // The cards go on the page with their data, which the daemon gives in a
  // few milliseconds: laying out empty cards first would only hold that
  // answer back (the browser takes it in on the same thread, after the
  // layout), and a cold load pays for every layout. A slow daemon gets
  // them shown empty after EMPTY_CARDS_AFTER_MS.
  const heading = h("h1", null, title);
  const showCards = () => {
    clearTimeout(emptyCards);
    if (heading.isConnected) return;
    view.append(heading, h("div", { class: "grid" }, daemon.el, counts.el, spend.el, agents.el), sessions.el, proxies.el, events.el);
  };
  const emptyCards = setTimeout(showCards, EMPTY_CARDS_AFTER_MS);

  let status = null;
  let statusAt = 0;
  let sessionList = [];
  let proxyList = [];
  let profileCount = null;
  let stats = null;

  const guard = (target, fn) => async () => {
    try {
      await fn();
    } catch (e) {
      target.body.replaceChildren(h("p", { class: "error" }, e.message));
    }
  };

  const renderDaemon = () => {
    if (!status) return;
    const up = status.uptime_secs + Math.round((Date.now() - statusAt) / 1000);
    daemon.body.replaceChildren(
      kv([
        ["Version", status.version],
        ["Uptime", duration(up)],
        ["HTTP", status.http ? h("code", null, status.http) : h("span", { class: "error" }, status.http_error || "not listening")],
        ["PID", String(status.pid)],
        ["Socket", h("code", { class: "wrap" }, status.socket)],
        ["Connections", `${count(status.http_connections)} HTTP, ${count(status.subscribers)} event streams`],
        ["Idle exit", status.stay_alive ? "never (stay-alive)" : status.idle_timeout_secs ? `after ${duration(status.idle_timeout_secs)} idle` : "no"],
      ]),
    );
  };

  const renderCounts = () => {
    if (!status) return;
    const running = proxyList.filter((p) => p.state === "running").length;
    counts.body.replaceChildren(
      h(
        "ul",
        { class: "stats" },
        h("li", null, h("a", { href: "#/profiles" }, h("span", { class: "stat" }, count(profileCount ?? status.profiles)), " profiles")),
        h("li", null, h("a", { href: "#/terminals" }, h("span", { class: "stat" }, count(status.terminals_running)), " sessions running"), status.terminals_ended ? h("span", { class: "muted" }, ` (${status.terminals_ended} ended)`) : null),
        h("li", null, h("span", { class: "stat" }, count(status.terminal_clients)), " terminal clients"),
        h("li", null, h("a", { href: "#/proxies" }, h("span", { class: "stat" }, `${running}/${proxyList.length}`), " proxies running")),
        stats ? h("li", null, h("span", { class: "stat" }, count(stats.total_runs)), ` runs, ${duration(stats.total_run_secs) || "0 s"} in all`) : null,
      ),
    );
  };

  const showStatus = (data) => {
    status = data;
    statusAt = Date.now();
    renderDaemon();
    renderCounts();
  };

  const showStats = (data) => {
    stats = data;
    renderCounts();
  };

  const showSpend = (today, month) => {
    const line = (label, r) => {
      const t = r.totals || {};
      return h(
        "div",
        { class: "spend-line" },
        h("div", { class: "muted" }, label),
        h("div", { class: "stat" }, cost(t.cost_usd)),
        h("div", { class: "muted" }, `${count(t.total_tokens)} tokens, ${count(t.messages)} messages`),
        t.unpriced_tokens ? h("div", { class: "warn-text" }, `${count(t.unpriced_tokens)} tokens unpriced (${(r.unpriced_models || []).join(", ") || "unknown models"}): not in the cost`) : null,
      );
    };
    spend.body.replaceChildren(h("div", { class: "spend" }, line("Today", today), line(`This month (since ${month.since})`, month)));
  };

  const showAgents = (data) => {
    const list = data.agents || [];
    const installed = list.filter((a) => a.installed);
    agents.body.replaceChildren(
      h("p", null, `${installed.length} of ${list.length} installed`),
      h(
        "ul",
        { class: "plain" },
        list.map((a) =>
          h("li", null, state(`${a.name}${a.version ? ` ${a.version}` : ""}`, a.installed ? "ok" : "stopped"), a.installed ? "" : h("span", { class: "muted" }, " (not installed)")),
        ),
      ),
    );
  };

  const showSessions = (data) => {
    sessionList = data;
    const running = sessionList.filter((s) => s.state === "running");
    const waiting = running.filter((s) => s.agent_state === "waiting").length;
    fill(sessions.body, 
      waiting ? h("p", { class: "warn-text" }, `${waiting} waiting for you`) : null,
      stacked(table(
        [
          { label: "Session", value: (s) => h("a", { href: `#/terminals/${enc(s.id)}` }, s.id) },
          { label: "Profile", value: (s) => h("a", { href: `#/profiles/${enc(s.profile)}` }, s.profile) },
          { label: "State", value: sessionState },
          { label: "Working dir", value: (s) => h("code", { class: "wrap" }, s.working_dir) },
          { label: "Clients", class: "num", value: (s) => String(s.clients) },
          { label: "Started", value: (s) => ago(s.created_at) },
        ],
        running,
        { caption: "Running sessions", empty: "No session running. Start one from a profile or the Terminals page." },
      )),
    );
  };

  const showProxies = (data) => {
    proxyList = data;
    proxies.body.replaceChildren(
      stacked(table(
        [
          { label: "Profile", value: (p) => h("a", { href: `#/profiles/${enc(p.alias)}` }, p.alias) },
          { label: "State", value: (p) => state(p.state, p.state === "running" ? "running" : p.state === "failed" ? "failed" : "stopped") },
          { label: "Port", class: "num", value: (p) => (p.port ? String(p.port) : "") },
          { label: "Uptime", value: (p) => duration(p.uptime_secs) },
          { label: "Last error", value: (p) => (p.last_error ? h("span", { class: "error" }, p.last_error) : "") },
        ],
        proxyList,
        { caption: "Proxies", empty: "No profile routes through a proxy." },
      )),
    );
    renderCounts();
  };

  // Each card reloads from its own route when an event says it changed.
  const loadStatus = guard(daemon, async () => showStatus(await api("GET", "/api/daemon/status")));
  const loadProfiles = guard(counts, async () => {
    const [list, st] = await Promise.all([api("GET", "/api/profiles"), api("GET", "/api/stats")]);
    profileCount = (list.profiles || []).length;
    showStats(st);
  });
  const loadSpend = guard(spend, async () => {
    const [today, month] = await Promise.all([
      api("GET", withQuery("/api/usage", { period: "today" })),
      api("GET", withQuery("/api/usage", { period: "month" })),
    ]);
    showSpend(today, month);
  });
  const loadAgents = guard(agents, async () => showAgents(await api("GET", "/api/agents")));
  const loadSessions = guard(sessions, async () => showSessions(await api("GET", "/api/terminal/sessions")));
  const loadProxies = guard(proxies, async () => showProxies(await api("GET", "/api/proxy/status")));

  /// The first fill: every card from one call (GET /api/dashboard, the
  /// same routes' data in one answer). A part that failed shows its error
  /// in its own card.
  const loadAll = async () => {
    let all;
    try {
      all = await first;
    } catch (e) {
      for (const c of [daemon, counts, spend, agents, sessions, proxies]) c.body.replaceChildren(h("p", { class: "error" }, e.message));
      throw e;
    }
    const errors = all.errors || {};
    const part = (target, names, show) => {
      const failed = names.find((n) => errors[n] !== undefined);
      if (failed) target.body.replaceChildren(h("p", { class: "error" }, errors[failed]));
      else show(...names.map((n) => all[n]));
    };
    part(daemon, ["status"], showStatus);
    part(counts, ["stats"], showStats);
    part(spend, ["usage_today", "usage_month"], showSpend);
    part(agents, ["agents"], showAgents);
    part(sessions, ["sessions"], showSessions);
    part(proxies, ["proxies"], showProxies);
  };

  const renderEvents = () => {
    const list = live.recentEvents().slice(-EVENTS_SHOWN).reverse();
    events.body.replaceChildren(
      list.length
        ? h(
            "ol",
            { class: "events-mini" },
            list.map((e) => h("li", null, ago(e.timestamp), " ", h("strong", null, e.type), " ", h("span", { class: "muted" }, eventSummary(e)))),
          )
        : h("p", { class: "empty" }, live.isConnected() ? "No events yet." : "Waiting for the event stream…"),
    );
  };

  renderEvents();
  try {
    await loadAll();
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) {
      clearTimeout(emptyCards);
      throw e;
    }
  }
  showCards();

  // Coalesce bursts: a scan announces one UsageUpdated per profile and model.
  const timers = new Map();
  const soon = (fn, ms = 250) => () => {
    clearTimeout(timers.get(fn));
    timers.set(fn, setTimeout(fn, ms));
  };
  const status$ = soon(loadStatus);
  const sessions$ = soon(loadSessions);
  const proxies$ = soon(loadProxies);
  const profiles$ = soon(loadProfiles);
  const spend$ = soon(loadSpend, 1000);
  const agents$ = soon(loadAgents);
  const events$ = soon(renderEvents, 100);
  const offs = [
    live.on("*", events$),
    live.on("@recent", events$),
    ...["TerminalSessionCreated", "TerminalSessionEnded", "TerminalStateChanged"].flatMap((t) => [live.on(t, sessions$), live.on(t, status$)]),
    ...["ProfileCreated", "ProfileDeleted"].flatMap((t) => [live.on(t, profiles$), live.on(t, proxies$)]),
    live.on("ProfileUpdated", proxies$),
    live.on("ProfileStopped", profiles$),
    ...["ProxyStarted", "ProxyStopped", "ProxyError"].map((t) => live.on(t, proxies$)),
    ...["UsageUpdated", "UsageImported"].map((t) => live.on(t, spend$)),
    ...["AgentDetected", "AgentUpdated"].map((t) => live.on(t, agents$)),
  ];
  // The daemon's record of events may have arrived while the cards loaded,
  // before the listeners above were there.
  renderEvents();
  // Uptime and "x minutes ago" move on by themselves.
  const tick = setInterval(() => {
    renderDaemon();
    renderEvents();
  }, 15000);
  return () => {
    clearInterval(tick);
    for (const t of timers.values()) clearTimeout(t);
    offs.forEach((off) => off());
  };
}

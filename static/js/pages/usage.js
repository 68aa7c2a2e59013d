// Usage: tokens and cost from the agents' own logs, as `ringlet usage`
// reports them. A period (or custom days) and filters (profile, model,
// agent) choose the records; the page shows the totals (unpriced tokens
// called out, never folded into $0), a daily chart stacked by model (SVG
// built with DOM calls, with a legend and a table as its text
// alternative), cost by profile and by model, CSV/JSON export and the
// import of old Claude Code history. The choices live in the hash
// (`#/usage?period=30d&profile=work`), so a view can be bookmarked. New
// usage (`UsageUpdated`, `UsageImported`) reloads the figures, debounced.

import { api, withQuery } from "../api.js";
import * as live from "../live.js";
import { h, table, section, cost, count, duration, failed, field, select, toast } from "../ui.js";

export const title = "Usage";

const SVG = "http://www.w3.org/2000/svg";
const PERIODS = [
  ["today", "Today"],
  ["yesterday", "Yesterday"],
  ["week", "This week"],
  ["7d", "Last 7 days"],
  ["month", "This month"],
  ["30d", "Last 30 days"],
  ["all", "All time"],
  ["custom", "Custom days…"],
];
const SERIES = 8; // colours in app.css (.series-1 ... .series-8)
const CSV_HEADER =
  "date,profile,model,input_tokens,output_tokens,cache_creation_tokens,cache_creation_1h_tokens,cache_read_tokens,reasoning_tokens,total_tokens,cost_usd,unpriced_tokens,messages,sessions,runs,runtime_secs";

export async function mount(view, ctx) {
  const q = ctx.query;
  const state = {
    period: PERIODS.some(([p]) => p === q.get("period")) ? q.get("period") : "30d",
    since: q.get("since") || "",
    until: q.get("until") || "",
    profile: q.get("profile") || "",
    model: q.get("model") || "",
    agent: q.get("agent") || "",
    timezone: q.get("timezone") || "",
    measure: q.get("measure") === "cost" ? "cost" : "tokens",
  };

  // --- the form ---------------------------------------------------------
  const period = select("period", PERIODS, state.period);
  const since = h("input", { type: "date", name: "since", value: state.since });
  const until = h("input", { type: "date", name: "until", value: state.until });
  const profile = select("profile", [["", "All profiles"]], "");
  const model = select("model", [["", "All models"]], "");
  const agent = select("agent", [["", "All agents"]], "");
  const browserZone = Intl.DateTimeFormat().resolvedOptions().timeZone || "";
  const timezone = select("timezone", [["", "The daemon's"]], "");
  const measure = select("measure", [["tokens", "Tokens"], ["cost", "Cost (priced models)"]], state.measure);
  const customBox = h(
    "div",
    { class: "usage-custom row" },
    field("Since (first day)", since),
    field("Until (last day)", until),
  );
  const form = h(
    "form",
    { class: "usage-filters", "aria-label": "Usage period and filters" },
    field("Period", period),
    customBox,
    field("Profile", profile),
    field("Model", model),
    field("Agent", agent),
    field("Days in time zone", timezone),
  );
  const status = h("p", { class: "muted usage-status", role: "status", "aria-live": "polite" });

  // --- result areas -----------------------------------------------------
  const totalsBox = h("div", { class: "usage-totals" });
  const chartBox = h("div", { class: "usage-chart" });
  const byProfile = h("div", { class: "sr-caption" });
  const byModel = h("div", { class: "sr-caption" });
  const exportCsv = h("button", { type: "button", onclick: () => download("csv") }, "Download CSV");
  const exportJson = h("button", { type: "button", onclick: () => download("json") }, "Download JSON");

  view.append(
    h("h1", null, title),
    section("Period and filters", null, form, status),
    section("Totals", h("div", { class: "row" }, exportCsv, exportJson), totalsBox),
    section("Daily", field("Chart shows", measure), chartBox),
    section("Cost by profile", null, byProfile),
    section("Cost by model", null, byModel),
    importSection(),
  );

  function syncCustom() {
    customBox.hidden = period.value !== "custom";
  }
  syncCustom();

  // The filter lists: profiles and agents from the daemon, models from
  // what the period holds (refreshed with each load).
  const [profiles, agents] = await Promise.all([
    api("GET", "/api/profiles").catch(() => []),
    api("GET", "/api/agents").catch(() => []),
  ]);
  const profileNames = ["(default)", ...listOf(profiles).map((p) => p.alias).filter(Boolean)];
  fillSelect(profile, [["", "All profiles"], ...unique([...profileNames, state.profile]).map((p) => [p, p])], state.profile);
  const agentIds = unique([...listOf(agents).map((a) => a.id).filter(Boolean), "claude", "codex", "opencode", state.agent]);
  fillSelect(agent, [["", "All agents"], ...agentIds.map((a) => [a, a])], state.agent);
  const zones = [["", "The daemon's"]];
  if (browserZone) zones.push([browserZone, `This browser's (${browserZone})`]);
  if (state.timezone && state.timezone !== browserZone) zones.push([state.timezone, state.timezone]);
  fillSelect(timezone, zones, state.timezone);

  let seq = 0;
  let last = null; // {daily, models, profiles, exported}

  async function load() {
    const my = ++seq;
    status.textContent = "Loading…";
    const params = query();
    try {
      const [daily, models, byProf, exported] = await Promise.all([
        api("GET", withQuery("/api/usage/daily", params)),
        api("GET", withQuery("/api/usage/models", params)),
        api("GET", withQuery("/api/usage/profiles", params)),
        api("GET", withQuery("/api/usage/export", params)),
      ]);
      // The model list of the period without the model filter, so another
      // model can be picked.
      const allModels = state.model
        ? await api("GET", withQuery("/api/usage/models", { ...params, model: "" })).catch(() => models)
        : models;
      // Likewise profiles; a deleted profile's usage can be picked too.
      const allProfiles = state.profile
        ? await api("GET", withQuery("/api/usage/profiles", { ...params, profile: "" })).catch(() => byProf)
        : byProf;
      if (my !== seq) return;
      last = { daily, models, profiles: byProf, exported };
      const names = allModels.rows.map((r) => r.model).filter(Boolean);
      fillSelect(model, [["", "All models"], ...unique([...names, state.model]).map((m) => [m, m])], state.model);
      const used = allProfiles.rows.map((r) => r.profile).filter(Boolean);
      fillSelect(profile, [["", "All profiles"], ...unique([...profileNames, ...used, state.profile]).map((p) => [p, p])], state.profile);
      render();
      status.textContent = `${describeRange(daily)}, days in ${daily.timezone}. Prices: ${daily.pricing || "n/a"}.`;
    } catch (e) {
      if (my !== seq) return;
      status.textContent = "";
      status.append(h("span", { class: "error", role: "alert" }, e.message));
    }
  }

  function render() {
    const { daily, models, profiles: byProf, exported } = last;
    totalsBox.replaceChildren(totals(daily));
    drawChart();
    byProfile.replaceChildren(groupTable(byProf, "profile", "Profile", "Cost by profile"));
    byModel.replaceChildren(groupTable(models, "model", "Model", "Cost by model"));
  }

  function query() {
    const custom = state.period === "custom";
    return {
      period: custom ? "all" : state.period,
      since: custom ? state.since : "",
      until: custom ? state.until : "",
      profile: state.profile,
      model: state.model,
      agent: state.agent,
      timezone: state.timezone,
    };
  }

  // The choices go into the address (no reload: replaceState fires no
  // hashchange).
  function remember() {
    const keep = { ...state };
    if (keep.period !== "custom") {
      keep.since = "";
      keep.until = "";
    }
    if (keep.measure === "tokens") keep.measure = "";
    const hash = withQuery("#/usage", keep);
    history.replaceState(null, "", hash);
  }

  form.addEventListener("submit", (e) => e.preventDefault());
  form.addEventListener("change", () => {
    state.period = period.value;
    state.since = since.value;
    state.until = until.value;
    state.profile = profile.value;
    state.model = model.value;
    state.agent = agent.value;
    state.timezone = timezone.value;
    syncCustom();
    remember();
    if (state.period === "custom" && state.since && state.until && state.since > state.until) {
      status.replaceChildren(h("span", { class: "error", role: "alert" }, "The first day is after the last day."));
      return;
    }
    load();
  });
  measure.addEventListener("change", () => {
    state.measure = measure.value;
    remember();
    if (last) drawChart();
  });

  // The chart is drawn for the width it has (text stays legible on a
  // phone), and again when that width changes.
  let drawnWidth = 0;
  function drawChart() {
    drawnWidth = chartBox.clientWidth;
    chartBox.replaceChildren(chart(last.daily, last.exported, state.measure, drawnWidth));
  }
  const resized = new ResizeObserver(() => {
    if (last && Math.abs(chartBox.clientWidth - drawnWidth) > 24) drawChart();
  });
  resized.observe(chartBox);

  async function download(format) {
    const button = format === "csv" ? exportCsv : exportJson;
    const focused = document.activeElement === button;
    button.disabled = true;
    try {
      const report = await api("GET", withQuery("/api/usage/export", query()));
      const text = format === "csv" ? toCsv(report) : JSON.stringify(report, null, 2) + "\n";
      const type = format === "csv" ? "text/csv" : "application/json";
      const name = `ringlet-usage-${report.since || "start"}-to-${report.until || "now"}.${format}`;
      const url = URL.createObjectURL(new Blob([text], { type }));
      const a = h("a", { href: url, download: name, hidden: true });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10000);
      toast(`Saved ${name} (${count(report.rows.length)} rows).`);
    } catch (e) {
      failed(e);
    } finally {
      button.disabled = false;
      // A disabled button loses focus to <body>: give it back.
      if (focused && document.activeElement === document.body) button.focus();
    }
  }

  function importSection() {
    const dirs = h("datalist", { id: "usage-import-dirs" });
    const dir = h("input", { type: "text", name: "dir", autocomplete: "off", spellcheck: "false", list: "usage-import-dirs", placeholder: "/home/you/backup/.claude" });
    // Directory completion from the daemon (`/api/fs/dirs`, dirs under the
    // home); without that route the field is plain text.
    let completing = null;
    let completion = true;
    dir.addEventListener("input", () => {
      clearTimeout(completing);
      if (!completion || !dir.value.startsWith("/") && !dir.value.startsWith("~")) return;
      completing = setTimeout(async () => {
        try {
          const r = await api("GET", withQuery("/api/fs/dirs", { prefix: dir.value }));
          dirs.replaceChildren(...(r && Array.isArray(r.dirs) ? r.dirs : []).map((d) => h("option", { value: d })));
        } catch (e) {
          if (e.status === 404) completion = false;
        }
      }, 250);
    });
    const as = h("input", { type: "text", name: "profile", autocomplete: "off", spellcheck: "false", placeholder: "(default)" });
    const go = h("button", { type: "submit", class: "primary" }, "Import");
    const result = h("div", { class: "usage-import-result", role: "status", "aria-live": "polite" });
    const importForm = h(
      "form",
      null,
      h(
        "p",
        { class: "muted" },
        "Counts a Claude Code config dir's transcripts (projects/**/*.jsonl) into the usage store, once: history already counted is not counted again.",
      ),
      field("Claude config dir (absolute path)", dir, "Empty: the daemon user's ~/.claude (or $CLAUDE_CONFIG_DIR)."),
      dirs,
      field("Count it as profile", as, "Empty: (default), your own use outside profiles."),
      h("div", { class: "row" }, go),
      result,
    );
    importForm.addEventListener("submit", async (e) => {
      e.preventDefault();
      const focused = document.activeElement === go;
      go.disabled = true;
      result.replaceChildren(h("p", { class: "muted" }, "Importing…"));
      const body = {};
      if (dir.value.trim()) body.dir = dir.value.trim();
      if (as.value.trim()) body.profile = as.value.trim();
      try {
        const r = await api("POST", "/api/usage/import-claude", body);
        result.replaceChildren(
          h(
            "p",
            null,
            `Imported ${count(r.added)} new ${r.added === 1 ? "response" : "responses"} as ${r.profile} from ${count(r.files)} ${r.files === 1 ? "file" : "files"} in `,
            h("code", null, r.dir),
            ` (${count(r.found)} billing ${r.found === 1 ? "line" : "lines"} read, repeats and history already counted included).`,
          ),
          skipped(r.skipped) || "",
        );
        load();
      } catch (err) {
        result.replaceChildren(h("p", { class: "error", role: "alert" }, err.message));
      } finally {
        go.disabled = false;
        if (focused && document.activeElement === document.body) go.focus();
      }
    });
    return section("Import old Claude history", null, importForm);
  }

  // Live: new usage reloads the figures, at most once a second.
  let timer = null;
  const soon = () => {
    clearTimeout(timer);
    timer = setTimeout(load, 1000);
  };
  const offs = [live.on("UsageUpdated", soon), live.on("UsageImported", soon)];

  await load();
  return () => {
    seq++;
    clearTimeout(timer);
    resized.disconnect();
    for (const off of offs) off();
  };
}

// --- rendering ------------------------------------------------------------

function totals(r) {
  const t = r.totals;
  const cache5m = Math.max(0, t.cache_creation_tokens - t.cache_creation_1h_tokens);
  const items = [
    ["Cost", costText(t), "usage-cost"],
    ["Total tokens", count(t.total_tokens)],
    ["Input", count(t.input_tokens)],
    ["Output", count(t.output_tokens)],
    ["Cache write 5m", count(cache5m)],
    ["Cache write 1h", count(t.cache_creation_1h_tokens)],
    ["Cache read", count(t.cache_read_tokens)],
    t.reasoning_tokens ? ["Reasoning (information only)", count(t.reasoning_tokens)] : null,
    ["Messages", count(t.messages)],
    ["Sessions", count(t.sessions)],
    ["Runs", count(t.runs)],
    ["Runtime", duration(t.runtime_secs) || "0 s"],
  ].filter(Boolean);
  const unpriced = t.unpriced_tokens
    ? h(
        "p",
        { class: "usage-unpriced", role: "note" },
        h("strong", null, `+ ${count(t.unpriced_tokens)} unpriced tokens`),
        ` are not in the cost: no price is known for ${r.unpriced_models.length === 1 ? "the model" : "the models"} `,
        r.unpriced_models.map((m, i) => [i ? ", " : "", h("code", null, m)]),
        ". Add a price in config.toml ([pricing]) to count them.",
      )
    : null;
  return h(
    "div",
    null,
    h(
      "dl",
      { class: "usage-figures" },
      items.map(([label, value, cls]) => h("div", { class: cls }, h("dt", null, label), h("dd", null, value))),
    ),
    unpriced,
    skipped(r.skipped),
  );
}

function skipped(s) {
  if (!s || (!s.lines && !s.files)) return null;
  return h(
    "details",
    { class: "usage-skipped" },
    h("summary", null, `Skipped: ${count(s.lines)} ${s.lines === 1 ? "line" : "lines"}, ${count(s.files)} ${s.files === 1 ? "file" : "files"}`),
    s.details && s.details.length ? h("ul", null, s.details.map((d) => h("li", null, d))) : h("p", { class: "muted" }, "No reasons recorded."),
  );
}

/// "$1.23", "$1.23 + 4,000 unpriced tokens", or "unpriced" when nothing
/// in it has a price (never "$0.00").
function costText(t) {
  if (t.total_tokens > 0 && t.unpriced_tokens >= t.total_tokens) return `unpriced (${count(t.unpriced_tokens)} tokens)`;
  if (t.unpriced_tokens > 0) return `${cost(t.cost_usd)} + ${count(t.unpriced_tokens)} unpriced tokens`;
  return cost(t.cost_usd);
}

function groupTable(r, key, label, caption) {
  const rows = r.rows.slice().sort((a, b) => b.cost_usd - a.cost_usd || b.total_tokens - a.total_tokens);
  if (rows.length) rows.push({ [key]: "Total", ...r.totals, total: true });
  const cols = [
    { label, value: (x) => (x.total ? h("strong", null, "Total") : x[key] || "") },
    { label: "Cost", class: "num", value: (x) => costText(x) },
    { label: "Input", class: "num", value: (x) => count(x.input_tokens) },
    { label: "Output", class: "num", value: (x) => count(x.output_tokens) },
    { label: "Cache write", class: "num", value: (x) => count(x.cache_creation_tokens) },
    { label: "Cache read", class: "num", value: (x) => count(x.cache_read_tokens) },
    { label: "Total tokens", class: "num", value: (x) => count(x.total_tokens) },
    { label: "Messages", class: "num", value: (x) => count(x.messages) },
    { label: "Sessions", class: "num", value: (x) => count(x.sessions) },
    { label: "Runs", class: "num", value: (x) => count(x.runs) },
  ];
  return stacked(table(cols, rows, { caption, empty: "No usage in this period." }));
}

/// On a phone a table's rows become stacked cards (each cell labelled with
/// its column: `data-label`; app.css `.stack-narrow`), not a table to scroll.
function stacked(el) {
  el.classList.add("stack-narrow");
  return el;
}


/// The stacked daily chart: one bar per day (every day of the range, empty
/// ones included), a segment per model, a legend, and a button that shows
/// the same numbers as a table.
function chart(daily, exported, measure, width) {
  const days = dayList(daily, exported);
  if (!days.length || !exported.rows.length) return h("p", { class: "empty" }, "No usage in this period.");
  const value = (row) => (measure === "cost" ? row.cost_usd || 0 : row.total_tokens || 0);
  // day -> model -> value; models ordered by their share, biggest first.
  // Past SERIES models, the smallest share one segment, "other models", so
  // no two segments share a colour.
  const share = new Map();
  for (const row of exported.rows) share.set(row.model || "?", (share.get(row.model || "?") || 0) + value(row));
  const ranked = [...share.keys()].sort((a, b) => share.get(b) - share.get(a) || a.localeCompare(b));
  const kept = new Set(ranked.length > SERIES ? ranked.slice(0, SERIES - 1) : ranked);
  const other = ranked.length > SERIES ? `${ranked.length - SERIES + 1} other models` : null;
  const byDay = new Map(days.map((d) => [d, new Map()]));
  const modelTotal = new Map();
  for (const row of exported.rows) {
    const m = kept.has(row.model || "?") ? row.model || "?" : other;
    const v = value(row);
    const cell = byDay.get(row.date);
    if (cell) cell.set(m, (cell.get(m) || 0) + v);
    modelTotal.set(m, (modelTotal.get(m) || 0) + v);
  }
  const models = [...modelTotal.keys()].sort((a, b) => (a === other) - (b === other) || modelTotal.get(b) - modelTotal.get(a) || a.localeCompare(b));
  const colour = new Map(models.map((m, i) => [m, `series-${Math.min(i, SERIES - 1) + 1}`]));
  const dayTotals = days.map((d) => [...byDay.get(d).values()].reduce((a, b) => a + b, 0));
  const max = Math.max(...dayTotals, 0);
  const fmt = (v) => (measure === "cost" ? cost(v) : compact(v));
  // The table gives the exact figures the chart rounds.
  const exact = (v) => (measure === "cost" ? cost(v) : count(v));

  // Geometry in viewBox units; the SVG scales to the card's width.
  const W = Math.max(300, Math.round(width || 720));
  const H = W < 500 ? 220 : 260;
  const left = 56;
  const bottom = 28;
  const top = 10;
  const plotW = W - left - 8;
  const plotH = H - top - bottom;
  const step = niceStep(max);
  const yMax = step ? Math.ceil(max / step) * step : 1;
  const y = (v) => top + plotH - (v / yMax) * plotH;
  const slot = plotW / days.length;
  const barW = Math.max(1, Math.min(40, slot * 0.7));

  const svg = svgEl("svg", {
    viewBox: `0 0 ${W} ${H}`,
    class: "usage-svg",
    role: "img",
    "aria-label": `${measure === "cost" ? "Cost" : "Tokens"} per day from ${days[0]} to ${days[days.length - 1]}, stacked by model; the highest day ${fmt(max)}. The table below the chart has the numbers.`,
  });
  // Grid lines and their labels.
  for (let v = 0; step && v <= yMax + step / 2; v += step) {
    svg.append(
      svgEl("line", { x1: left, x2: W - 8, y1: y(v), y2: y(v), class: "grid" }),
      svgText(left - 6, y(v) + 4, fmt(v), "axis end"),
    );
  }
  const labelEvery = Math.ceil(days.length / Math.max(1, Math.floor(plotW / 56)));
  days.forEach((d, i) => {
    const x = left + i * slot + (slot - barW) / 2;
    let base = 0;
    const g = svgEl("g", { class: "bar" });
    for (const m of models) {
      const v = byDay.get(d).get(m) || 0;
      if (v <= 0) continue;
      const rect = svgEl("rect", {
        x,
        y: y(base + v),
        width: barW,
        height: Math.max(0.5, y(base) - y(base + v)),
        class: colour.get(m),
      });
      rect.append(svgEl("title", null, `${d} · ${m}: ${fmt(v)}`));
      g.append(rect);
      base += v;
    }
    const t = svgEl("title", null, `${d}: ${fmt(dayTotals[i])}`);
    g.prepend(t);
    svg.append(g);
    if (i % labelEvery === 0 || i === days.length - 1) {
      if (i === days.length - 1 && i % labelEvery !== 0 && (days.length - 1) % labelEvery < labelEvery / 2) return;
      svg.append(svgText(left + i * slot + slot / 2, H - 8, d.slice(5), "axis mid"));
    }
  });
  svg.append(svgEl("line", { x1: left, x2: W - 8, y1: y(0), y2: y(0), class: "base" }));

  const legend = h(
    "ul",
    { class: "usage-legend", "aria-label": "Models" },
    models.map((m) =>
      h(
        "li",
        null,
        h("span", { class: `swatch ${colour.get(m)}`, "aria-hidden": "true" }),
        h("span", { class: "legend-name" }, m),
        " ",
        h("span", { class: "muted" }, fmt(modelTotal.get(m))),
      ),
    ),
  );

  // The text alternative: a day x model table, hidden until asked for.
  const tableId = `usage-table-${Math.random().toString(36).slice(2, 8)}`;
  const cols = [
    { label: "Day", value: (d) => d },
    ...models.map((m) => ({ label: m, class: "num", value: (d) => exact(byDay.get(d).get(m) || 0) })),
    { label: "Day total", class: "num", value: (d) => exact(dayTotals[days.indexOf(d)]) },
  ];
  const tbl = h("div", { id: tableId, hidden: true }, table(cols, days.slice().reverse(), { caption: `${measure === "cost" ? "Cost" : "Tokens"} per day and model` }));
  const toggle = h("button", { type: "button", "aria-expanded": "false", "aria-controls": tableId }, "Show as a table");
  toggle.addEventListener("click", () => {
    tbl.hidden = !tbl.hidden;
    toggle.setAttribute("aria-expanded", String(!tbl.hidden));
    toggle.textContent = tbl.hidden ? "Show as a table" : "Hide the table";
  });
  const note = measure === "cost" && daily.unpriced_models.length
    ? h("p", { class: "muted" }, `Unpriced models (${daily.unpriced_models.join(", ")}) have no cost to chart; switch to tokens to see them.`)
    : null;
  return h("div", null, h("div", { class: "usage-svg-wrap" }, svg), legend, note, h("div", { class: "row" }, toggle), tbl);
}

/// Every day of the report's range, oldest first. An unbounded range
/// ("all") runs from the first day with usage to the last.
function dayList(daily, exported) {
  const seen = [...daily.rows.map((r) => r.date), ...exported.rows.map((r) => r.date)].filter(Boolean).sort();
  const first = daily.since || seen[0];
  const lastDay = daily.until || seen[seen.length - 1];
  if (!first || !lastDay) return [];
  const out = [];
  let d = new Date(`${first}T00:00:00Z`);
  const end = new Date(`${lastDay}T00:00:00Z`);
  // A range of many years stays drawable: past ~3 years, show days with usage only.
  if ((end - d) / 86400000 > 1100) return unique(seen);
  while (d <= end) {
    out.push(d.toISOString().slice(0, 10));
    d = new Date(d.getTime() + 86400000);
  }
  return out;
}

function describeRange(r) {
  if (!r.since && !r.until) return "All time";
  if (r.since === r.until) return r.since;
  return `${r.since || "the start"} to ${r.until || "today"}`;
}

function niceStep(max) {
  if (!(max > 0)) return 0;
  const raw = max / 4;
  const mag = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * mag >= raw) return m * mag;
  return 10 * mag;
}

function compact(n) {
  return new Intl.NumberFormat(undefined, { notation: "compact", maximumFractionDigits: 1 }).format(n);
}

function svgEl(tag, attrs, text) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, String(v));
  if (text !== undefined) el.textContent = text;
  return el;
}

function svgText(x, y, text, cls) {
  return svgEl("text", { x, y, class: cls }, text);
}

// --- export -----------------------------------------------------------------

/// The export report as `ringlet usage export --format csv` writes it.
function toCsv(r) {
  const field = (s) => (/[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s);
  const decimal = (usd) => {
    const t = usd.toFixed(6).replace(/0+$/, "").replace(/\.$/, "");
    return t === "-0" ? "0" : t;
  };
  const lines = [CSV_HEADER];
  for (const row of r.rows) {
    const unpriced = row.total_tokens > 0 && row.unpriced_tokens >= row.total_tokens;
    lines.push(
      [
        field(row.date || ""),
        field(row.profile || ""),
        field(row.model || ""),
        row.input_tokens,
        row.output_tokens,
        row.cache_creation_tokens,
        row.cache_creation_1h_tokens,
        row.cache_read_tokens,
        row.reasoning_tokens,
        row.total_tokens,
        unpriced ? "" : decimal(row.cost_usd),
        row.unpriced_tokens,
        row.messages,
        row.sessions,
        row.runs,
        row.runtime_secs,
      ].join(","),
    );
  }
  return lines.join("\n") + "\n";
}

// --- small helpers ----------------------------------------------------------

function listOf(x) {
  if (Array.isArray(x)) return x;
  if (x && Array.isArray(x.profiles)) return x.profiles;
  if (x && Array.isArray(x.agents)) return x.agents;
  return [];
}

function unique(xs) {
  return [...new Set(xs.filter((x) => x !== "" && x !== null && x !== undefined))];
}

function fillSelect(sel, options, selected) {
  sel.replaceChildren(
    ...options.map(([value, label]) => h("option", { value, selected: value === selected }, label)),
  );
  sel.value = selected;
}

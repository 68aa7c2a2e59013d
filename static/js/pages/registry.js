// Registry: where agents, providers, scripts, templates and prices come
// from once synced. Shows the status (channel, commit, pin, last sync,
// signature, what the commit overrides), syncs (POST answers 202 with the
// sync's id; progress and the outcome come as RegistrySync* events on /ws,
// matched by that id), pins a ref or clears the pin, rolls back to the
// previous commit, and lists the command-bearing changes and the templates.

import { api } from "../api.js";
import * as live from "../live.js";
import { h, cardTable as table, stacked, fill, section, ago, toast, failed, confirm, field, state, count } from "../ui.js";

export const title = "Registry";

function short(commit) {
  return commit ? commit.slice(0, 12) : "none";
}

function bytes(n) {
  if (typeof n !== "number") return "";
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

function changesTable(changes, caption) {
  return table(
    [
      { label: "Kind", value: (c) => c.kind },
      { label: "Id", value: (c) => h("code", null, c.id) },
      { label: "Field", value: (c) => h("code", null, c.field) },
      { label: "Before", value: (c) => (c.before == null ? h("span", { class: "muted" }, "none") : h("code", { class: "wrap" }, c.before)) },
      { label: "After", value: (c) => (c.after == null ? h("span", { class: "muted" }, "removed") : h("code", { class: "wrap" }, c.after)) },
    ],
    changes || [],
    { caption, showCaption: true, empty: "No command-bearing changes." },
  );
}

/// Where a manifest comes from, short: built-in, the registry commit it was
/// synced in (the full path in the tooltip), or the user's file.
function source(src) {
  if (!src || src === "builtin") return "built-in";
  const m = /\/registry\/commits\/([0-9a-f]{12})[0-9a-f]*\//.exec(src);
  if (m) return h("span", { title: src }, `registry ${m[1]}`);
  return h("code", { class: "wrap" }, src);
}

export async function mount(view) {
  const statusBox = h("div", null, h("p", { class: "loading" }, "Loading…"));
  const changesBox = h("div", null, h("p", { class: "loading" }, "Loading…"));
  const templatesBox = h("div", null, h("p", { class: "loading" }, "Loading…"));

  // Sync.
  const force = h("input", { type: "checkbox", id: "rs-force" });
  const offline = h("input", { type: "checkbox", id: "rs-offline" });
  const channel = h("input", { name: "channel", autocomplete: "off", spellcheck: "false" });
  const from = h("input", { name: "from", autocomplete: "off", spellcheck: "false", placeholder: "/srv/registry or https://…" });
  const syncBtn = h("button", { type: "submit", class: "primary" }, "Sync now");
  const syncErr = h("p", { class: "error form-error", role: "alert" });
  const bar = h("progress", { max: "1", value: "0", "aria-label": "Sync progress" });
  const progressText = h("span", null);
  const progressBox = h("div", { class: "sync-progress", hidden: true }, bar, " ", progressText);
  const syncOut = h("div", { role: "status", "aria-live": "polite" });
  const syncForm = h(
    "form",
    { class: "inline-form", "aria-label": "Sync the registry", novalidate: true },
    h(
      "details",
      null,
      h("summary", null, "Options"),
      h("p", { class: "check" }, force, " ", h("label", { for: "rs-force" }, "Refetch every artifact, even unchanged ones")),
      h("p", { class: "check" }, offline, " ", h("label", { for: "rs-offline" }, "Offline: fetch nothing, report the cached commit")),
      h("div", { class: "form-grid" }, field("Channel (optional)", channel, "Instead of config.toml's [registry] channel"), field("From (optional)", from, "A directory or .tar bundle on the daemon's machine, or a URL, instead of [registry] url")),
    ),
    syncErr,
    h("div", { class: "actions" }, syncBtn),
    progressBox,
    syncOut,
  );

  // Pin and rollback.
  const ref = h("input", { name: "ref", autocomplete: "off", spellcheck: "false" });
  const pinBtn = h("button", { type: "submit", class: "primary" }, "Pin");
  const unpinBtn = h("button", { type: "button" }, "Clear the pin");
  const pinErr = h("p", { class: "error form-error", role: "alert" });
  const pinForm = h(
    "form",
    { class: "inline-form", "aria-label": "Pin the registry", novalidate: true },
    h("div", { class: "form-grid" }, field("Tag, branch or commit", ref, "Syncs fetch this ref until the pin is cleared.")),
    pinErr,
    h("div", { class: "actions" }, unpinBtn, pinBtn),
  );
  const rollbackBtn = h("button", { type: "button", class: "danger" }, "Roll back…");

  view.append(
    h("h1", null, title),
    section("Status", null, statusBox),
    section("Sync", null, syncForm),
    section("Pin and roll back", null, pinForm, h("div", { class: "actions" }, rollbackBtn)),
    section("Changes against the built-ins", null, h("p", { class: "hint" }, "Fields of the current commit that decide what runs or where a key goes (commands, endpoints, hooks, MCP servers)."), changesBox),
    section("Templates", h("a", { href: "#/profiles?new=1" }, "New profile"), templatesBox),
  );

  let view_ = null;
  let syncId = null;
  // Syncs whose end event came before the POST's answer (a fast local one).
  const ended = new Set();

  const showProgress = (p) => {
    if (!p) return;
    progressBox.hidden = false;
    const total = p.artifacts_total || 0;
    bar.max = String(Math.max(total, 1));
    bar.value = String(Math.min(p.artifacts_done || 0, Math.max(total, 1)));
    progressText.textContent = `${count(p.artifacts_done || 0)} of ${count(total)} artifacts, ${bytes(p.bytes_done || 0)}${p.bytes_total ? ` of ${bytes(p.bytes_total)}` : ""}`;
  };

  const loadStatus = async () => {
    const v = await api("GET", "/api/registry");
    view_ = v;
    const rows = [
      ["Commit", v.commit ? h("code", { title: v.commit }, short(v.commit)) : h("span", { class: "muted" }, "none: the built-ins are used")],
      ["Channel", `${v.channel}${v.current_channel && v.current_channel !== v.channel ? ` (current commit: ${v.current_channel})` : ""}`],
      ["URL", v.url ? h("code", { class: "wrap" }, v.url) : h("span", { class: "muted" }, "none set ([registry] url in config.toml)")],
      ["Pinned", v.pin ? h("code", null, v.pin) : "no"],
      ["Signed", v.signed ? state("yes", "ok") : v.allow_unsigned ? state("no (allow_unsigned)", "warn") : state("no", "stopped")],
      ["Auto sync", v.auto_sync],
      ["Last sync", ago(v.last_sync)],
      v.last_error ? ["Last error", h("span", { class: "error" }, v.last_error)] : null,
      v.last_run ? ["Last run here", h("span", null, v.last_run.ok ? state("ok", "ok") : state("failed", "fail"), " ", ago(v.last_run.finished), ` from ${v.last_run.source}`, v.last_run.error ? h("span", { class: "error" }, `: ${v.last_run.error}`) : "")] : null,
      v.running ? ["Running", `sync ${v.running.id} from ${v.running.source}`] : null,
      ["Artifacts", Object.entries(v.counts || {}).map(([k, n]) => `${n} ${k}`).join(", ")],
      ["Overrides", v.overridden?.length ? v.overridden.map((o) => `${o.kind} ${o.id}`).join(", ") : "nothing built in"],
      ["History", v.history?.length ? h("span", null, v.history.map((c, i) => h("code", { title: c }, short(c), i < v.history.length - 1 ? " " : ""))) : "none"],
    ].filter(Boolean);
    statusBox.replaceChildren(h("dl", { class: "kv" }, rows.map(([k, val]) => [h("dt", null, k), h("dd", null, val)])));
    rollbackBtn.disabled = !(v.history && v.history.length > 1) || !!v.running;
    rollbackBtn.title = rollbackBtn.disabled ? "Needs an earlier commit kept in the history" : "";
    unpinBtn.disabled = !v.pin;
    if (v.running) {
      syncId = v.running.id;
      syncBtn.disabled = true;
      showProgress(v.running.progress);
    }
  };

  const loadChanges = async () => {
    const c = await api("GET", "/api/registry/changes");
    changesBox.replaceChildren(changesTable(c.changes, `Changes of ${short(c.commit)}`));
  };

  const loadTemplates = async () => {
    const t = await api("GET", "/api/templates");
    templatesBox.replaceChildren(
      ...(t.warnings || []).map((w) => h("p", { class: "error" }, w)),
      stacked(table(
        [
          { label: "Template", value: (r) => h("code", null, r.name) },
          { label: "Agents", value: (r) => (r.agents || []).join(", ") },
          { label: "Description", value: (r) => r.description || "" },
          {
            label: "Settings",
            value: (r) =>
              h(
                "ul",
                { class: "plain" },
                Object.entries(r.settings || {}).map(([agent, s]) => h("li", null, `${agent}: ${s.provider || "?"}${s.endpoint ? `@${s.endpoint}` : ""}${s.model ? ` / ${s.model}` : ""}`)),
              ),
          },
          { label: "Source", value: (r) => source(r.source) },
        ],
        t.templates || [],
        { caption: "Profile templates", empty: "No templates." },
      )),
    );
  };

  const show = (box) => (e) => box.replaceChildren(h("p", { class: "error" }, e.message));
  const reloadAll = () => Promise.all([loadStatus().catch(show(statusBox)), loadChanges().catch(show(changesBox)), loadTemplates().catch(show(templatesBox))]);

  syncForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    syncErr.textContent = "";
    syncOut.replaceChildren();
    const body = {};
    if (force.checked) body.force = true;
    if (offline.checked) body.offline = true;
    if (channel.value.trim()) body.channel = channel.value.trim();
    if (from.value.trim()) body.from = from.value.trim();
    syncBtn.disabled = true;
    try {
      const started = await api("POST", "/api/registry/sync", Object.keys(body).length ? body : undefined);
      if (ended.has(started.id)) return;
      syncId = started.id;
      showProgress({ artifacts_done: 0, artifacts_total: 0, bytes_done: 0 });
      syncOut.replaceChildren(h("p", null, `Sync ${started.id} started from ${started.source}…`));
    } catch (err) {
      syncErr.textContent = err.message;
      syncBtn.disabled = false;
      syncBtn.focus();
    }
  });

  const mine = (ev) => ev.data && (!syncId || ev.data.id === syncId);
  const offs = [
    live.on("RegistrySyncStarted", (ev) => {
      if (syncId) return;
      // Started elsewhere (the CLI, auto sync): follow it too.
      syncId = ev.data?.id;
      syncBtn.disabled = true;
      showProgress({ artifacts_done: 0, artifacts_total: 0, bytes_done: 0 });
      syncOut.replaceChildren(h("p", null, `Sync ${syncId} started from ${ev.data?.source}…`));
    }),
    live.on("RegistrySyncProgress", (ev) => mine(ev) && showProgress(ev.data)),
    live.on("RegistrySyncCompleted", (ev) => {
      const r = ev.data || {};
      if (r.rollback) {
        reloadAll();
        return;
      }
      if (!mine(ev)) return;
      ended.add(r.id);
      syncId = null;
      syncBtn.disabled = false;
      progressBox.hidden = true;
      fill(syncOut, 
        h("p", null, state("done", "ok"), ` Commit ${short(r.commit)}${r.unchanged ? " (unchanged)" : ""}${r.offline ? " (offline, cached)" : ""}: ${r.fetched} fetched, ${r.reused} reused, ${bytes(r.bytes)}.`),
        ...(r.warnings || []).map((w) => h("p", { class: "warn-text" }, w)),
        r.changes?.length ? changesTable(r.changes, "What this sync changed") : null,
      );
      toast(`Registry synced: ${short(r.commit)}.`);
      reloadAll();
    }),
    live.on("RegistrySyncFailed", (ev) => {
      if (!mine(ev)) return;
      ended.add(ev.data.id);
      syncId = null;
      syncBtn.disabled = false;
      progressBox.hidden = true;
      syncOut.replaceChildren(h("p", { class: "error" }, `Sync failed: ${ev.data.error}`));
      toast(`Registry sync failed: ${ev.data.error}`, "error");
      loadStatus().catch(show(statusBox));
    }),
  ];

  pinForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    pinErr.textContent = "";
    if (!ref.value.trim()) {
      pinErr.textContent = "Type a tag, branch or commit to pin.";
      ref.focus();
      return;
    }
    pinBtn.disabled = true;
    try {
      const r = await api("POST", "/api/registry/pin", { ref: ref.value.trim() });
      toast(`Pinned to ${r.pin}. The next sync fetches it.`);
      ref.value = "";
      await loadStatus();
    } catch (err) {
      pinErr.textContent = err.message;
    } finally {
      pinBtn.disabled = false;
    }
  });
  unpinBtn.addEventListener("click", async () => {
    pinErr.textContent = "";
    unpinBtn.disabled = true;
    try {
      await api("POST", "/api/registry/pin", { clear: true });
      toast("Pin cleared.");
      await loadStatus();
    } catch (err) {
      pinErr.textContent = err.message;
      unpinBtn.disabled = false;
    }
    ref.focus();
  });
  rollbackBtn.addEventListener("click", async () => {
    const prev = view_?.history?.[1];
    if (!(await confirm(`Roll back to the previous commit ${short(prev)}? Agents, providers, scripts and prices come from it until the next sync.`, { action: "Roll back", danger: true }))) {
      rollbackBtn.focus();
      return;
    }
    rollbackBtn.disabled = true;
    try {
      const r = await api("POST", "/api/registry/rollback");
      toast(`Rolled back to ${short(r.commit)}.`);
      syncOut.replaceChildren(r.changes?.length ? changesTable(r.changes, "What the rollback changed") : h("p", null, `Rolled back to ${short(r.commit)}.`));
      await reloadAll();
    } catch (err) {
      failed(err);
      await loadStatus().catch(() => {});
    }
    rollbackBtn.focus();
  });

  await reloadAll();
  return () => offs.forEach((off) => off());
}

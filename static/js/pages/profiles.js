// Profiles: the list (filtered as you type), the create form, and one
// profile's page (#/profiles/<alias>): details, its environment without the
// key, hooks, proxy routing (enable, rules, aliases, budget), start a
// session, delete. Every choice in the create form comes from the daemon
// (agents, providers, templates, models, config.toml's hook sets and MCP
// servers); the key is typed into a password field, sent once in the
// create request and cleared from the form at once, never stored here.

import { api, withQuery } from "../api.js";
import * as live from "../live.js";
import { h, cardTable as table, stacked, fill, section, ago, toast, failed, confirm, field, select, state } from "../ui.js";

export const title = "Profiles";

const enc = encodeURIComponent;

export async function mount(view, ctx) {
  if (ctx.args.length) return mountProfile(view, ctx, ctx.args[0]);
  return mountList(view, ctx);
}

/// Runs `fn` with `button` disabled; shows the daemon's message when it
/// fails (in `errorEl` when given, else a toast). Resolves to fn's value
/// or undefined.
async function act(button, fn, errorEl) {
  if (button) button.disabled = true;
  if (errorEl) errorEl.textContent = "";
  try {
    return await fn();
  } catch (e) {
    if (errorEl) errorEl.textContent = e.message || String(e);
    else failed(e);
    return undefined;
  } finally {
    if (button) button.disabled = false;
  }
}

/// Calls `fn` once, 150 ms after the last of a burst of calls.
function debounce(fn, ms = 150) {
  let t = null;
  const wrapped = () => {
    clearTimeout(t);
    t = setTimeout(fn, ms);
  };
  wrapped.cancel = () => clearTimeout(t);
  return wrapped;
}

function errorBox() {
  return h("p", { class: "error form-error", role: "alert" });
}

function keyState(p) {
  if (p.key_missing) return state("missing", "fail");
  if (p.api_key) return state(`stored (${p.secret || "store"})`, "ok");
  return h("span", { class: "muted" }, "none needed");
}

// ---------------------------------------------------------------------------
// The list

async function mountList(view, ctx) {
  const search = h("input", { type: "search", autocomplete: "off", spellcheck: "false" });
  search.value = ctx.query.get("q") || "";
  const shown = h("p", { class: "muted", role: "status", "aria-live": "polite" });
  const listBox = h("div");
  const warnBox = h("div");
  const createBox = h("div", { id: "profile-create", hidden: true });
  const newBtn = h("button", { type: "button", class: "primary", "aria-expanded": "false", "aria-controls": "profile-create" }, "New profile");
  view.append(
    h("div", { class: "page-head" }, h("h1", { tabindex: "-1" }, title), newBtn),
    h("div", { class: "profiles-tools" }, field("Search profiles", search, "Alias, agent, provider or model")),
    createBox,
    section("All profiles", shown, warnBox, listBox),
  );

  let profiles = [];
  let form = null;
  const openCreate = async (open) => {
    createBox.hidden = !open;
    newBtn.setAttribute("aria-expanded", String(open));
    newBtn.textContent = open ? "Close the form" : "New profile";
    if (open && !form) {
      createBox.replaceChildren(h("p", { class: "loading" }, "Loading the daemon's agents and providers…"));
      try {
        form = await createForm(ctx, () => openCreate(false));
        createBox.replaceChildren(form);
      } catch (e) {
        createBox.replaceChildren(h("p", { class: "error", role: "alert" }, e.message));
        return;
      }
    }
    if (open) createBox.querySelector("input, select")?.focus();
  };
  newBtn.addEventListener("click", () => openCreate(createBox.hidden));

  function render() {
    const q = search.value.trim().toLowerCase();
    const rows = profiles.filter((p) => !q || [p.alias, p.agent, p.provider, p.model, p.endpoint_name].some((v) => v && v.toLowerCase().includes(q)));
    shown.textContent = q ? `${rows.length} of ${profiles.length} shown` : `${profiles.length} profile${profiles.length === 1 ? "" : "s"}`;
    listBox.replaceChildren(
      stacked(table(
        [
          { label: "Alias", value: (p) => h("a", { href: `#/profiles/${enc(p.alias)}` }, p.alias) },
          { label: "Agent", value: (p) => p.agent },
          { label: "Provider", value: (p) => p.provider + (p.endpoint_name && p.endpoint_name !== "default" ? ` @${p.endpoint_name}` : "") },
          { label: "Model", value: (p) => p.model },
          { label: "Key", value: keyState },
          { label: "Proxy", value: (p) => (p.proxy ? "on" : "off") },
          { label: "Runs", class: "num", value: (p) => String(p.runs || 0) },
          { label: "Last used", value: (p) => ago(p.last_used) },
          {
            label: "Actions",
            value: (p) =>
              h(
                "span",
                { class: "row" },
                h("a", { href: `#/terminals?new=1&profile=${enc(p.alias)}`, "aria-label": `Start a session of ${p.alias}` }, "Start"),
                h("button", { type: "button", class: "link danger", "aria-label": `Delete ${p.alias}`, onclick: (e) => deleteProfile(p.alias, e.currentTarget, async () => {
                  await load();
                  search.focus();
                }) }, "Delete"),
              ),
          },
        ],
        rows,
        { caption: "Profiles", empty: profiles.length ? "No profile matches the search." : "No profiles yet: create one with “New profile”." },
      )),
    );
  }

  async function load() {
    const data = await api("GET", "/api/profiles");
    profiles = data.profiles || [];
    warnBox.replaceChildren(...(data.warnings || []).map((w) => h("p", { class: "error" }, w)));
    render();
  }

  search.addEventListener("input", render);
  await load();
  // After a delete on the profile's page, the list's heading takes the focus.
  if (document.activeElement === document.body || !document.activeElement) view.querySelector("h1")?.focus();
  if (ctx.query.get("new") === "1") openCreate(true);
  const reload = debounce(() => load().catch(failed));
  const offs = ["ProfileCreated", "ProfileUpdated", "ProfileDeleted", "ProfileStarted", "ProfileStopped"].map((t) => live.on(t, reload));
  return () => {
    reload.cancel();
    offs.forEach((off) => off());
  };
}

async function deleteProfile(alias, button, after) {
  const yes = await confirm(`Delete the profile “${alias}”? Its key is removed from the secret store.`, {
    action: "Delete",
    danger: true,
    choices: [{ name: "purge", label: "Also remove its home directory (conversations, agent settings): cannot be undone" }],
  });
  if (!yes) {
    button?.focus();
    return false;
  }
  const done = await act(button, () => api("DELETE", withQuery(`/api/profiles/${enc(alias)}`, { purge: yes.choices.purge ? "true" : "" })));
  if (!done) return false;
  const notes = [done.home_removed ? `home ${done.home_removed} removed` : "home kept", ...(done.notices || [])];
  toast(`Profile ${alias} deleted (${notes.join("; ")}).`);
  if (after) await after();
  return true;
}

// ---------------------------------------------------------------------------
// The create form

async function createForm(ctx, close) {
  const [agentsData, providersData, templatesData, choices] = await Promise.all([
    api("GET", "/api/agents"),
    api("GET", "/api/providers"),
    api("GET", "/api/templates"),
    api("GET", "/api/config/choices"),
  ]);
  const agents = agentsData.agents || [];
  const providers = providersData.providers || [];
  const templates = templatesData.templates || [];
  const manifests = new Map(); // agent id -> manifest (provider_types, supports_hooks)
  const modelCache = new Map();
  if (!agents.length) throw new Error("The daemon knows no agents.");

  const firstInstalled = agents.find((a) => a.installed) || agents[0];
  const alias = h("input", { name: "alias", required: true, autocomplete: "off", spellcheck: "false", pattern: "[a-z0-9][a-z0-9_-]{0,63}", maxlength: "64" });
  const agent = select("agent", agents.map((a) => [a.id, `${a.name} (${a.id})${a.installed ? "" : ": not installed"}`]), firstInstalled.id);
  const template = h("select", { name: "template" });
  const provider = h("select", { name: "provider" });
  const endpoint = h("select", { name: "endpoint" });
  const endpointUrl = h("input", { name: "endpoint_url", type: "url", placeholder: "https://…", autocomplete: "off" });
  const endpointUrlField = field("Endpoint URL", endpointUrl);
  endpointUrlField.hidden = true;
  const modelList = h("datalist", { id: "profile-models" });
  const model = h("input", { name: "model", list: "profile-models", autocomplete: "off", spellcheck: "false" });
  const key = h("input", { type: "password", name: "api_key", autocomplete: "off", spellcheck: "false" });
  const keyField = field("API key", key, "Sent once to the daemon, which keeps it in the secret store. It is cleared from this form when sent and never stored in the browser.");
  const permission = select("permission_mode", choices.permission_modes, "ask");
  const proxy = h("input", { type: "checkbox", name: "proxy", id: "pc-proxy" });
  const bare = h("input", { type: "checkbox", name: "bare", id: "pc-bare" });
  const shim = h("input", { type: "checkbox", name: "alias_shim", id: "pc-shim" });
  const script = h("input", { name: "script", autocomplete: "off", spellcheck: "false" });
  const hooksBox = h("div", { class: "checks" });
  const mcpBox = h("div", { class: "checks" });
  const hooksSet = h("fieldset", null, h("legend", null, "Hook sets (config.toml)"), hooksBox);
  const mcpSet = h("fieldset", null, h("legend", null, "MCP servers (config.toml)"), mcpBox);
  const error = errorBox();
  const result = h("div", { class: "create-result", "aria-live": "polite" });
  const preview = h("button", { type: "button" }, "Preview (dry run)");
  const submit = h("button", { type: "submit", class: "primary" }, "Create profile");

  const form = h(
    "form",
    { class: "card create-form", "aria-labelledby": "create-title", novalidate: true },
    h("h2", { id: "create-title" }, "New profile"),
    h(
      "div",
      { class: "form-grid" },
      field("Name (alias)", alias, "Lowercase letters, digits, - and _; it becomes a directory and a command."),
      field("Agent", agent),
      field("Template", template, "Fills provider, endpoint, model, hooks and MCP servers; the fields below override it."),
      field("Provider", provider),
      field("Endpoint", endpoint),
      endpointUrlField,
      h("div", null, field("Model", model, "Blank: the provider's default."), modelList),
      keyField,
      field("Permission mode", permission, "What the agent may do before it asks."),
      field("Script (optional)", script, "A Rhai script by name (claude or claude.rhai); blank: the agent's own."),
    ),
    h("div", { class: "form-grid" }, hooksSet, mcpSet),
    h(
      "fieldset",
      null,
      h("legend", null, "Options"),
      h("p", { class: "check" }, proxy, " ", h("label", { for: "pc-proxy" }, "Route it through its own proxy (rules, aliases, budget)")),
      h("p", { class: "check" }, bare, " ", h("label", { for: "pc-bare" }, "Bare: no hook sets and no MCP servers")),
      h("p", { class: "check" }, shim, " ", h("label", { for: "pc-shim" }, "Install a shell command named after the profile in ~/.local/bin (the notices say if it was not)")),
    ),
    error,
    h("div", { class: "actions" }, h("button", { type: "button", onclick: close }, "Cancel"), preview, submit),
    result,
  );

  // Hook sets and MCP servers: a checkbox each, from config.toml (every one
  // is on by default, as with the CLI). All on sends nothing (the default);
  // otherwise the names picked, or an empty list for none.
  const checks = (kind, items, label) =>
    items.map((x, i) =>
      h("p", { class: "check" }, h("input", { type: "checkbox", id: `pc-${kind}-${i}`, value: x.name, checked: true }), " ", h("label", { for: `pc-${kind}-${i}` }, label(x))),
    );
  const hookSets = choices.hook_sets || [];
  const mcpServers = choices.mcp_servers || [];
  hooksBox.replaceChildren(
    ...(hookSets.length
      ? checks("hooks", hookSets, (x) => [h("strong", null, x.name), " ", h("code", null, x.event || "?"), x.matcher ? ` (${x.matcher})` : ""])
      : [h("p", { class: "muted" }, "config.toml has no hook sets.")]),
  );
  mcpBox.replaceChildren(
    ...(mcpServers.length
      ? checks("mcp", mcpServers, (x) => [h("strong", null, x.name), " ", h("span", { class: "muted" }, x.type === "http" ? x.url || "http" : x.command || "stdio")])
      : [h("p", { class: "muted" }, "config.toml has no MCP servers.")]),
  );
  const picked = (box, total) => {
    if (!total) return null;
    const on = [...box.querySelectorAll("input:checked")].map((i) => i.value);
    return on.length === total ? null : on;
  };
  const pickedHooks = () => picked(hooksBox, hookSets.length);
  const pickedMcp = () => picked(mcpBox, mcpServers.length);

  const manifest = async (id) => {
    if (!manifests.has(id)) {
      try {
        manifests.set(id, (await api("GET", `/api/agents/${enc(id)}`)).manifest || {});
      } catch {
        manifests.set(id, {});
      }
    }
    return manifests.get(id);
  };
  const providerOf = () => providers.find((p) => p.id === provider.value);

  async function fillModels() {
    const p = providerOf();
    if (!p) return;
    let ids = p.models.slice();
    if (!modelCache.has(p.id)) {
      try {
        modelCache.set(p.id, (await api("GET", withQuery("/api/models", { provider: p.id }))).models || []);
      } catch {
        modelCache.set(p.id, []);
      }
    }
    for (const m of modelCache.get(p.id)) if (!ids.includes(m.id)) ids.push(m.id);
    modelList.replaceChildren(...ids.map((id) => h("option", { value: id })));
    model.placeholder = p.default_model || "";
  }

  function fillEndpoints(wanted) {
    const p = providerOf();
    const d = p?.default_endpoint;
    const opts = [["", d ? `Default${d.name === "default" ? "" : `: ${d.name}`} (${d.url})` : "Default"]];
    for (const e of p?.endpoints || []) opts.push([e.name, `${e.name} (${e.url})`]);
    opts.push(["custom", "Custom URL…"]);
    endpoint.replaceChildren(...opts.map(([v, l]) => h("option", { value: v }, l)));
    endpoint.value = opts.some(([v]) => v === wanted) ? wanted : "";
    endpointUrlField.hidden = endpoint.value !== "custom";
  }

  function fillKey() {
    const p = providerOf();
    const needs = p && p.auth_required && p.type !== "self";
    keyField.hidden = !needs;
    if (!needs) key.value = "";
    const hint = keyField.querySelector("small");
    if (hint && p) hint.textContent = `${p.auth_env_key ? `${p.auth_env_key}. ` : ""}Sent once to the daemon, which keeps it in the secret store. It is cleared from this form when sent and never stored in the browser.`;
  }

  async function onProvider(wantedEndpoint) {
    fillEndpoints(wantedEndpoint || "");
    fillKey();
    await fillModels();
  }

  async function onAgent() {
    const m = await manifest(agent.value);
    const types = m.profile?.provider_types;
    const usable = providers.filter((p) => !types || types.includes(p.type));
    const keep = usable.some((p) => p.id === provider.value) ? provider.value : usable[0]?.id;
    provider.replaceChildren(...usable.map((p) => h("option", { value: p.id }, `${p.name} (${p.id})`)));
    if (keep) provider.value = keep;
    const forAgent = templates.filter((t) => (t.agents || []).includes(agent.value));
    template.replaceChildren(h("option", { value: "" }, "None"), ...forAgent.map((t) => h("option", { value: t.name }, `${t.name}: ${t.description || ""}`)));
    hooksSet.disabled = m.supports_hooks === false;
    hooksSet.querySelector(".unsupported")?.remove();
    if (m.supports_hooks === false) hooksSet.append(h("p", { class: "muted unsupported" }, `${agent.value} has no hooks.`));
    await onProvider(endpoint.value);
  }

  template.addEventListener("change", async () => {
    const t = templates.find((x) => x.name === template.value);
    const s = t?.settings?.[agent.value];
    if (!s) return;
    if (s.provider && [...provider.options].some((o) => o.value === s.provider)) provider.value = s.provider;
    await onProvider(s.endpoint || "");
    if (s.model) model.value = s.model;
  });
  agent.addEventListener("change", onAgent);
  provider.addEventListener("change", () => onProvider(""));
  endpoint.addEventListener("change", () => {
    endpointUrlField.hidden = endpoint.value !== "custom";
    if (!endpointUrlField.hidden) endpointUrl.focus();
  });
  bare.addEventListener("change", () => {
    hooksSet.disabled = bare.checked || manifests.get(agent.value)?.supports_hooks === false;
    mcpSet.disabled = bare.checked;
  });

  function request(dryRun) {
    const ep = endpoint.value === "custom" ? endpointUrl.value.trim() : endpoint.value;
    const supportsHooks = manifests.get(agent.value)?.supports_hooks !== false;
    return {
      agent: agent.value,
      alias: alias.value.trim(),
      provider: provider.value,
      endpoint: ep || null,
      model: model.value.trim() || null,
      template: template.value || null,
      hooks: bare.checked || !supportsHooks ? null : pickedHooks(),
      mcp: bare.checked ? null : pickedMcp(),
      bare: bare.checked,
      proxy: proxy.checked,
      permission_mode: permission.value,
      script: script.value.trim() || null,
      alias_shim: shim.checked,
      dry_run: dryRun,
    };
  }

  function check() {
    if (!alias.value.trim()) {
      error.textContent = "Give the profile a name.";
      alias.setAttribute("aria-invalid", "true");
      alias.focus();
      return false;
    }
    alias.removeAttribute("aria-invalid");
    return true;
  }

  preview.addEventListener("click", async () => {
    if (!check()) return;
    // A dry run needs no key: it is not sent.
    const plan = await act(preview, () => api("POST", "/api/profiles", request(true)), error);
    if (!plan) return;
    fill(result, 
      h("h3", null, "Preview: nothing was written"),
      notices(plan.notices),
      table([{ label: "Variable", value: (r) => r[0] }, { label: "Value", value: (r) => h("code", null, r[1]) }], Object.entries(plan.env || {}), { caption: "Environment of a run" }),
      ...(plan.files || []).map((f) => h("details", null, h("summary", null, `${f.path} (${f.mode}${f.merged ? ", merged" : ""})`), h("pre", null, f.content))),
    );
  });

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    if (!check()) return;
    const body = request(false);
    if (!keyField.hidden && key.value) body.api_key = key.value;
    // The key leaves the form as it is sent, whatever the answer.
    key.value = "";
    const created = await act(submit, () => api("POST", "/api/profiles", body), error);
    delete body.api_key;
    if (!created) {
      error.focus?.();
      return;
    }
    toast(`Profile ${created.profile.alias} created.${(created.notices || []).length ? " " + created.notices.join(" ") : ""}`);
    ctx.navigate(`#/profiles/${enc(created.profile.alias)}`);
  });

  agent.value = firstInstalled.id;
  await onAgent();
  return form;
}

function notices(list) {
  if (!list || !list.length) return null;
  return h("ul", { class: "notices" }, list.map((n) => h("li", null, n)));
}

// ---------------------------------------------------------------------------
// One profile

async function mountProfile(view, ctx, alias) {
  const base = `/api/profiles/${enc(alias)}`;
  const heading = h("h1", { tabindex: "-1" }, `Profile ${alias}`);
  view.append(h("p", null, h("a", { href: "#/profiles" }, "← All profiles")), heading);
  let p;
  try {
    p = await api("GET", base);
  } catch (e) {
    view.append(h("p", { class: "error", role: "alert" }, e.message));
    return undefined;
  }
  document.title = `${alias} · Profiles · ringlet`;

  const details = h("div");
  const envBox = h("div", null, h("p", { class: "loading" }, "Rendering the environment…"));
  const hooksBox = h("div");
  const proxyBox = h("div");
  const delBtn = h("button", { type: "button", class: "danger" }, "Delete…");
  const start = h("a", { class: "button primary", href: `#/terminals?new=1&profile=${enc(alias)}` }, "Start a session");
  view.append(
    section("Details", h("div", { class: "row" }, start, delBtn), details),
    section("Environment", null, h("p", { class: "hint" }, "What a run of this profile sets. The key is never shown here: it appears as <redacted>."), envBox),
    section("Hooks", null, hooksBox),
    section("MCP servers", null, mcpTable(p)),
    section("Proxy", h("a", { href: "#/proxies" }, "All proxies"), proxyBox),
  );
  delBtn.addEventListener("click", async () => {
    if (await deleteProfile(alias, delBtn)) ctx.navigate("#/profiles");
  });

  const renderDetails = () => {
    const rows = [
      ["Agent", p.agent],
      ["Provider", p.provider],
      ["Endpoint", p.endpoint ? `${p.endpoint_name || "custom"}: ${p.endpoint}` : "the agent's own login"],
      ["Model", p.model],
      ["API key", keyState(p)],
      ["Permission mode", p.permission_mode],
      ["Home", h("span", null, h("code", null, p.home), p.home_exists ? "" : " (missing)")],
      ["Script", p.script],
      ["Strategy", p.strategy],
      ["Proxy", p.proxy ? "on" : "off"],
      ["Shim", p.alias_shim ? h("code", null, p.alias_shim) : "none"],
      ["Created", ago(p.created_at)],
      ["Last used", ago(p.last_used)],
      ["Runs", String(p.runs || 0)],
    ];
    details.replaceChildren(h("dl", { class: "kv" }, rows.map(([k, v]) => [h("dt", null, k), h("dd", null, v)])));
  };
  renderDetails();

  const loadEnv = async () => {
    try {
      const env = await api("GET", `${base}/env`);
      envBox.replaceChildren(
        table([{ label: "Variable", value: (r) => h("code", null, r[0]) }, { label: "Value", value: (r) => h("code", { class: "wrap" }, r[1]) }], Object.entries(env.env || {}), { caption: "Environment", empty: "No variables." }),
      );
    } catch (e) {
      envBox.replaceChildren(h("p", { class: "error" }, e.message));
    }
  };

  const reloadProfile = async () => {
    p = await api("GET", base);
    renderDetails();
  };

  loadEnv();
  const [, proxyLive] = await Promise.all([hooksSection(base, hooksBox, p), proxySection(base, proxyBox, alias, reloadProfile)]);
  // Arrived here by an action whose button is gone (a create): the
  // heading takes the focus, not the top of the document.
  if (document.activeElement === document.body || !document.activeElement) heading.focus();

  const reload = debounce(() => reloadProfile().then(loadEnv).catch(failed), 300);
  const offs = [
    live.on("ProfileUpdated", (e) => e.data?.alias === alias && reload()),
    ...["ProxyStarted", "ProxyStopped", "ProxyError"].map((t) => live.on(t, (e) => (e.data?.alias === alias || !e.data?.alias) && proxyLive?.())),
    live.on("ProfileDeleted", (e) => {
      if (e.data?.alias === alias) {
        toast(`Profile ${alias} was deleted.`);
        ctx.navigate("#/profiles");
      }
    }),
  ];
  return () => {
    reload.cancel();
    offs.forEach((off) => off());
  };
}

function mcpTable(p) {
  const rows = Object.entries(p.mcp_servers || {});
  return h(
    "div",
    null,
    table(
      [
        { label: "Name", value: (r) => r[0] },
        { label: "Runs", value: (r) => h("code", { class: "wrap" }, r[1].url || [r[1].command, ...(r[1].args || [])].join(" ")) },
      ],
      rows,
      { caption: "MCP servers", empty: "No MCP servers." },
    ),
    h("p", { class: "hint" }, "Chosen when the profile is created (from config.toml or its template)."),
  );
}

async function hooksSection(base, box, p) {
  const listBox = h("div");
  const { hook_events: hookEvents } = await api("GET", "/api/config/choices");
  const event = select("event", hookEvents, "PostToolUse");
  const matcher = h("input", { name: "matcher", autocomplete: "off", spellcheck: "false", placeholder: "Edit|Write" });
  const command = h("input", { name: "command", required: true, autocomplete: "off", spellcheck: "false" });
  const timeout = h("input", { name: "timeout", type: "number", min: "1", step: "1", inputmode: "numeric" });
  const error = errorBox();
  const add = h("button", { type: "submit", class: "primary" }, "Add hook");
  const form = h(
    "form",
    { class: "inline-form", "aria-label": "Add a hook" },
    h("div", { class: "form-grid" }, field("Event", event), field("Matcher (optional)", matcher, "Tool names, a regular expression"), field("Command", command), field("Timeout, seconds (optional)", timeout)),
    error,
    h("div", { class: "actions" }, add),
  );

  const render = (rows) => {
    listBox.replaceChildren(
      table(
        [
          { label: "Event", value: (r) => r.event },
          { label: "#", class: "num", value: (r) => String(r.index) },
          { label: "Matcher", value: (r) => (r.matcher ? h("code", null, r.matcher) : h("span", { class: "muted" }, "any")) },
          { label: "Command", value: (r) => h("code", { class: "wrap" }, r.command) },
          {
            label: "Remove",
            value: (r) =>
              h("button", {
                type: "button",
                class: "link danger",
                "aria-label": `Remove hook ${r.event} ${r.index}: ${r.command}`,
                onclick: async (e) => {
                  const removed = await act(e.currentTarget, () => api("DELETE", `${base}/hooks/${enc(r.event)}/${r.index}`));
                  if (removed) {
                    toast(`Hook removed: ${r.event} ${r.command}`);
                    await load();
                    command.focus();
                  }
                },
              }, "Remove"),
          },
        ],
        rows,
        { caption: "Hooks", empty: "No hooks." },
      ),
    );
  };
  const load = async () => render(await api("GET", `${base}/hooks`));

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const body = { event: event.value, command: command.value.trim() };
    if (matcher.value.trim()) body.matcher = matcher.value.trim();
    if (timeout.value) body.timeout = Number(timeout.value);
    const rows = await act(add, () => api("POST", `${base}/hooks`, body), error);
    if (!rows) return;
    render(rows);
    command.value = "";
    matcher.value = "";
    timeout.value = "";
    toast("Hook added.");
    command.focus();
  });
  const note = p.agent === "claude" || Object.keys(p.hooks || {}).length ? [] : [h("p", { class: "hint" }, "Hooks are Claude Code's; the daemon says so if this agent has none.")];
  // Import and export: Claude Code's own hooks JSON, as `hooks import` and
  // `hooks export` take and print it.
  const io = h("textarea", { name: "hooks_json", rows: "6", spellcheck: "false", autocomplete: "off" });
  const ioErr = errorBox();
  const exportBtn = h("button", { type: "button" }, "Export into the box");
  const importBtn = h("button", { type: "submit" }, "Import (replaces every hook)");
  const ioForm = h(
    "form",
    { class: "inline-form", "aria-label": "Import or export hooks" },
    h("details", null, h("summary", null, "Import or export as JSON"), field("Hooks JSON", io, "Claude Code's schema: {\"hooks\": {\"Stop\": [{\"matcher\": \"\", \"hooks\": [{\"type\": \"command\", \"command\": \"…\"}]}]}}"), ioErr, h("div", { class: "actions" }, exportBtn, importBtn)),
  );
  exportBtn.addEventListener("click", async () => {
    const out = await act(exportBtn, () => api("GET", `${base}/hooks/export`), ioErr);
    if (out === undefined) return;
    io.value = JSON.stringify(out, null, 2);
    io.focus();
  });
  ioForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    ioErr.textContent = "";
    let parsed;
    try {
      parsed = JSON.parse(io.value);
    } catch (err) {
      ioErr.textContent = `Not JSON: ${err.message}`;
      io.focus();
      return;
    }
    if (!(await confirm("Replace every hook of this profile with the ones in the box?", { action: "Import" }))) {
      importBtn.focus();
      return;
    }
    const rows = await act(importBtn, () => api("PUT", `${base}/hooks`, parsed), ioErr);
    if (!rows) return;
    render(rows);
    toast(`Hooks imported: ${rows.length}.`);
    importBtn.focus();
  });
  box.replaceChildren(listBox, ...note, form, ioForm);
  try {
    await load();
  } catch (e) {
    listBox.replaceChildren(h("p", { class: "error" }, e.message));
  }
}

/// Returns the function that reloads the proxy process's state (the page
/// calls it on Proxy* events).
async function proxySection(base, box, alias, reloadProfile) {
  const stateBox = h("div");
  const processBox = h("div", { class: "row proxy-process" });
  const rulesBox = h("div");
  const aliasesBox = h("div");
  const upstreamsBox = h("div");
  const budgetBox = h("div");
  let cfg = null;

  // Enable / disable.
  const port = h("input", { name: "port", type: "number", min: "1", max: "65535", inputmode: "numeric" });
  const enableErr = errorBox();
  const toggle = h("button", { type: "submit", class: "primary" }, "Enable");
  const enableForm = h("form", { class: "inline-form", "aria-label": "Proxy on or off" }, h("div", { class: "form-grid" }, field("Port (optional)", port, "Blank: one is chosen and kept.")), enableErr, h("div", { class: "actions" }, toggle));
  enableForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    const on = !cfg?.enabled;
    const body = on && port.value ? { port: Number(port.value) } : undefined;
    const next = await act(toggle, () => api("POST", `${base}/proxy/${on ? "enable" : "disable"}`, body), enableErr);
    if (!next) return;
    toast(on ? `Proxy enabled for ${alias}: runs go through it.` : `Proxy disabled for ${alias}; its routing is kept.`);
    renderConfig(next);
    reloadProfile().catch(() => {});
    await loadProcess();
    toggle.focus();
  });

  // Rules.
  const rName = h("input", { name: "name", required: true, autocomplete: "off", spellcheck: "false" });
  const rCond = h("input", { name: "condition", required: true, autocomplete: "off", spellcheck: "false", placeholder: "tokens > 100k" });
  const rTarget = h("input", { name: "target", required: true, autocomplete: "off", spellcheck: "false", placeholder: "zai/glm-5.1" });
  const rPrio = h("input", { name: "priority", type: "number", step: "1", value: "0", inputmode: "numeric" });
  const ruleErr = errorBox();
  const ruleAdd = h("button", { type: "submit", class: "primary" }, "Add rule");
  const ruleForm = h(
    "form",
    { class: "inline-form", "aria-label": "Add a rule" },
    h(
      "div",
      { class: "form-grid" },
      field("Rule name", rName),
      field("Condition", rCond, "always, tokens > 60k, thinking, model ~ \"claude-*\", … (see the README)"),
      field("Target", rTarget, "<provider>[@endpoint]/<model>"),
      field("Priority", rPrio, "Higher first; equal ones in the order added."),
    ),
    ruleErr,
    h("div", { class: "actions" }, ruleAdd),
  );
  ruleForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    const body = { name: rName.value.trim(), condition: rCond.value.trim(), target: rTarget.value.trim(), priority: Number(rPrio.value || 0) };
    const rows = await act(ruleAdd, () => api("POST", `${base}/proxy/routes`, body), ruleErr);
    if (!rows) return;
    rName.value = rCond.value = rTarget.value = "";
    rPrio.value = "0";
    toast(`Rule ${body.name} added.`);
    await refresh();
    rName.focus();
  });

  const renderRules = (rules) => {
    const move = async (r, to, button) => {
      const rows = await act(button, () => api("POST", `${base}/proxy/routes/${enc(r.name)}/move`, { priority: to }));
      if (!rows) return;
      await refresh();
      rulesBox.querySelector(`button[data-rule="${CSS.escape(r.name)}"][data-dir="${button.dataset.dir}"]:not(:disabled)`)?.focus() ||
        rulesBox.querySelector(`button[data-rule="${CSS.escape(r.name)}"]`)?.focus();
    };
    rulesBox.replaceChildren(
      table(
        [
          { label: "#", class: "num", value: (r) => String(r.order + 1) },
          { label: "Name", value: (r) => r.name },
          { label: "Condition", value: (r) => h("code", { class: "wrap" }, r.condition) },
          { label: "Target", value: (r) => h("code", null, r.target) },
          { label: "Priority", class: "num", value: (r) => String(r.priority) },
          {
            label: "Actions",
            value: (r) => {
              const i = rules.indexOf(r);
              return h(
                "span",
                { class: "row" },
                h("button", { type: "button", "data-rule": r.name, "data-dir": "up", disabled: i === 0, "aria-label": `Move rule ${r.name} up`, onclick: (e) => move(r, rules[i - 1].priority + 1, e.currentTarget) }, "↑"),
                h("button", { type: "button", "data-rule": r.name, "data-dir": "down", disabled: i === rules.length - 1, "aria-label": `Move rule ${r.name} down`, onclick: (e) => move(r, rules[i + 1].priority - 1, e.currentTarget) }, "↓"),
                h("button", {
                  type: "button",
                  class: "link danger",
                  "aria-label": `Remove rule ${r.name}`,
                  onclick: async (e) => {
                    if (await act(e.currentTarget, () => api("DELETE", `${base}/proxy/routes/${enc(r.name)}`))) {
                      toast(`Rule ${r.name} removed.`);
                      await refresh();
                      rName.focus();
                    }
                  },
                }, "Remove"),
              );
            },
          },
        ],
        rules,
        { caption: "Rules, in the order tried", empty: "No rules: every request goes to the profile's own provider." },
      ),
    );
  };

  // Aliases.
  const aModel = h("input", { name: "model", required: true, autocomplete: "off", spellcheck: "false", placeholder: "fast" });
  const aTarget = h("input", { name: "target", required: true, autocomplete: "off", spellcheck: "false", placeholder: "openrouter/qwen/qwen3-coder" });
  const aliasErr = errorBox();
  const aliasAdd = h("button", { type: "submit", class: "primary" }, "Set alias");
  const aliasForm = h(
    "form",
    { class: "inline-form", "aria-label": "Add a model alias" },
    h("div", { class: "form-grid" }, field("Model asked for", aModel), field("Target", aTarget, "<provider>[@endpoint]/<model>")),
    aliasErr,
    h("div", { class: "actions" }, aliasAdd),
  );
  aliasForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    const body = { model: aModel.value.trim(), target: aTarget.value.trim() };
    if (!(await act(aliasAdd, () => api("POST", `${base}/proxy/aliases`, body), aliasErr))) return;
    aModel.value = aTarget.value = "";
    toast(`Alias ${body.model} set.`);
    await refresh();
    aModel.focus();
  });
  const renderAliases = (rows) => {
    aliasesBox.replaceChildren(
      table(
        [
          { label: "Model asked for", value: (r) => h("code", null, r.model) },
          { label: "Target", value: (r) => h("code", null, r.target) },
          {
            label: "Remove",
            value: (r) =>
              h("button", {
                type: "button",
                class: "link danger",
                "aria-label": `Remove alias ${r.model}`,
                onclick: async (e) => {
                  if (await act(e.currentTarget, () => api("DELETE", withQuery(`${base}/proxy/aliases`, { model: r.model })))) {
                    toast(`Alias ${r.model} removed.`);
                    await refresh();
                    aModel.focus();
                  }
                },
              }, "Remove"),
          },
        ],
        rows,
        { caption: "Model aliases", empty: "No aliases." },
      ),
    );
  };

  // Budget.
  const daily = h("input", { name: "daily_usd", type: "number", min: "0", step: "0.01", inputmode: "decimal" });
  const monthly = h("input", { name: "monthly_usd", type: "number", min: "0", step: "0.01", inputmode: "decimal" });
  const budgetErr = errorBox();
  const budgetSave = h("button", { type: "submit", class: "primary" }, "Save budget");
  const budgetForm = h(
    "form",
    { class: "inline-form", "aria-label": "Budget" },
    h("div", { class: "form-grid" }, field("Daily limit, USD", daily, "Blank: no limit."), field("Monthly limit, USD", monthly, "Blank: no limit.")),
    budgetErr,
    h("div", { class: "actions" }, budgetSave),
  );
  budgetForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    const body = {};
    if (daily.value !== "") body.daily_usd = Number(daily.value);
    if (monthly.value !== "") body.monthly_usd = Number(monthly.value);
    const b = await act(budgetSave, () => api("PUT", `${base}/proxy/budget`, body), budgetErr);
    if (!b) return;
    toast(`Budget saved: ${fmtBudget(b)}.`);
    setBudget(b);
  });
  const setBudget = (b) => {
    daily.value = b?.daily_usd ?? "";
    monthly.value = b?.monthly_usd ?? "";
    budgetBox.replaceChildren(h("p", null, `Now: ${fmtBudget(b)}.`));
  };

  const renderConfig = (c) => {
    cfg = c;
    toggle.textContent = c.enabled ? "Disable" : "Enable";
    toggle.className = c.enabled ? "" : "primary";
    port.closest(".field").hidden = c.enabled;
    stateBox.replaceChildren(
      h(
        "dl",
        { class: "kv" },
        h("dt", null, "Routing"),
        h("dd", null, c.enabled ? state("on", "ok") : state("off", "stopped")),
        h("dt", null, "Port"),
        h("dd", null, c.port ? String(c.port) : "not chosen yet"),
        h("dt", null, "Proxy URL"),
        h("dd", null, c.proxy_url ? h("code", null, c.proxy_url) : "none"),
        h("dt", null, "Default upstream"),
        h("dd", null, c.default_upstream || ""),
      ),
    );
    renderRules(c.rules || []);
    renderAliases(c.aliases || []);
    setBudget(c.budget);
    upstreamsBox.replaceChildren(
      table(
        [
          { label: "Upstream", value: (u) => u.name },
          { label: "URL", value: (u) => h("code", { class: "wrap" }, u.url) },
          { label: "Auth", value: (u) => u.auth },
          { label: "Key", value: (u) => (u.key ? `${u.key.from}${u.key.store ? ` (${u.key.store})` : ""}` : "none") },
          { label: "Problem", value: (u) => (u.problem ? h("span", { class: "error" }, u.problem) : "") },
        ],
        c.upstreams || [],
        { caption: "Upstreams", empty: "No upstreams." },
      ),
    );
  };
  const refresh = async () => {
    renderConfig(await api("GET", `${base}/proxy`));
    await loadProcess();
  };

  // The proxy process: its state, and start / stop (the Proxies page has
  // every proxy, its stats and request log).
  const loadProcess = async () => {
    let info;
    try {
      [info] = await api("GET", `/api/proxy/status/${enc(alias)}`);
    } catch (e) {
      processBox.replaceChildren(h("span", { class: "error" }, e.message));
      return;
    }
    if (!info) {
      processBox.replaceChildren();
      return;
    }
    const running = info.state === "running" || info.state === "starting";
    const kind = info.state === "running" ? "running" : info.state === "failed" ? "failed" : info.state === "starting" ? "waiting" : "stopped";
    const button = h("button", { type: "button", disabled: !cfg?.enabled && !running }, running ? "Stop the proxy" : "Start the proxy");
    button.addEventListener("click", async () => {
      const next = await act(button, () => api("POST", `/api/proxy/${enc(alias)}/${running ? "stop" : "start"}`));
      if (!next) return;
      toast(`Proxy of ${alias}: ${next.state}.`);
      await loadProcess();
      processBox.querySelector("button")?.focus();
    });
    fill(processBox, 
      h("span", null, "Process: "),
      state(info.state, kind),
      info.port && running ? h("span", null, `port ${info.port}`) : null,
      info.last_error ? h("span", { class: "error" }, info.last_error) : null,
      button,
    );
  };

  box.replaceChildren(
    stateBox,
    processBox,
    enableForm,
    h("h3", null, "Rules"),
    rulesBox,
    ruleForm,
    h("h3", null, "Model aliases"),
    aliasesBox,
    aliasForm,
    h("h3", null, "Budget"),
    budgetBox,
    budgetForm,
    h("h3", null, "Upstreams"),
    upstreamsBox,
  );
  try {
    await refresh();
  } catch (e) {
    box.replaceChildren(h("p", { class: "error" }, e.message));
  }
  return () => loadProcess().catch(() => {});
}

function fmtBudget(b) {
  const one = (v) => (typeof v === "number" ? `$${v.toFixed(2)}` : "no limit");
  return `daily ${one(b?.daily_usd)}, monthly ${one(b?.monthly_usd)}`;
}

// Agents and providers: each agent (installed or not, version, path, the
// profiles using it), each provider (type, endpoints, models, and on demand
// the catalog's rows: context window and price), and the provider keys the
// proxies' rules and aliases use for targets of another provider. A key is
// typed into a password field, sent once (PUT) and cleared at once; the
// daemon never sends one back.

import { api } from "../api.js";
import * as live from "../live.js";
import { h, cardTable as table, stacked, section, toast, failed, confirm, field, state, count } from "../ui.js";

export const title = "Agents and providers";
const enc = encodeURIComponent;

function price(v) {
  return typeof v === "number" ? `$${v}` : "";
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
  const agentsBox = h("div", null, h("p", { class: "loading" }, "Loading…"));
  const providersBox = h("div", null, h("p", { class: "loading" }, "Loading…"));
  const keysBox = h("div", null, h("p", { class: "loading" }, "Loading…"));
  view.append(
    h("h1", null, title),
    section("Agents", null, agentsBox),
    section("Providers", null, providersBox),
    section("Provider keys for proxy targets", null, keysBox),
  );

  let providers = [];
  const loadAgents = async () => {
    const [agents, profiles] = await Promise.all([api("GET", "/api/agents"), api("GET", "/api/profiles")]);
    const users = new Map();
    for (const p of profiles.profiles || []) {
      if (!users.has(p.agent)) users.set(p.agent, []);
      users.get(p.agent).push(p.alias);
    }
    agentsBox.replaceChildren(
      ...(agents.warnings || []).map((w) => h("p", { class: "error" }, w)),
      stacked(table(
        [
          { label: "Agent", value: (a) => h("span", null, h("strong", null, a.name), " ", h("code", null, a.id)) },
          { label: "Installed", value: (a) => (a.installed ? state("yes", "ok") : state("no", "stopped")) },
          { label: "Version", value: (a) => a.version || (a.probe_error ? h("span", { class: "warn-text" }, a.probe_error) : "") },
          { label: "Path", value: (a) => (a.path ? h("code", { class: "wrap" }, a.path) : h("span", { class: "muted" }, `${a.binary} not on PATH`)) },
          { label: "Source", value: (a) => source(a.source) },
          {
            label: "Profiles",
            value: (a) => {
              const list = users.get(a.id) || [];
              return list.length ? h("span", { class: "links" }, list.map((alias) => h("a", { href: `#/profiles/${enc(alias)}` }, alias))) : h("span", { class: "muted" }, "none");
            },
          },
        ],
        agents.agents || [],
        { caption: "Agents", empty: "No agents known." },
      )),
    );
  };

  const catalog = async (p, box) => {
    box.replaceChildren(h("p", { class: "loading" }, "Loading the catalog…"));
    try {
      const info = await api("GET", `/api/providers/${enc(p.id)}`);
      box.replaceChildren(
        table(
          [
            { label: "Model", value: (m) => h("span", null, h("code", null, m.id), m.default ? " (default)" : "") },
            { label: "Context", class: "num", value: (m) => count(m.context_window) },
            { label: "In $/Mtok", class: "num", value: (m) => price(m.input_usd_per_mtok) },
            { label: "Out $/Mtok", class: "num", value: (m) => price(m.output_usd_per_mtok) },
            { label: "Aliases", value: (m) => (m.aliases || []).join(", ") },
            { label: "Source", value: (m) => source(m.source) },
          ],
          info.catalog || [],
          { caption: `${p.name}: catalog`, empty: "The catalog has no models of this provider." },
        ),
      );
    } catch (e) {
      box.replaceChildren(h("p", { class: "error" }, e.message));
    }
  };

  const loadProviders = async () => {
    const data = await api("GET", "/api/providers");
    providers = data.providers || [];
    providersBox.replaceChildren(
      ...(data.warnings || []).map((w) => h("p", { class: "error" }, w)),
      stacked(table(
        [
          { label: "Provider", value: (p) => h("span", null, h("strong", null, p.name), " ", h("code", null, p.id)) },
          { label: "Type", value: (p) => p.type },
          {
            label: "Endpoints",
            value: (p) => {
              const eps = p.endpoints.length ? p.endpoints : p.default_endpoint ? [p.default_endpoint] : [];
              if (!eps.length) return h("span", { class: "muted" }, "the agent's own");
              return h("ul", { class: "plain" }, eps.map((e) => h("li", null, `${e.name}${p.default_endpoint?.name === e.name ? " (default)" : ""}: `, h("code", { class: "wrap" }, e.url))));
            },
          },
          { label: "Key", value: (p) => (p.auth_required ? h("code", null, p.auth_env_key || "required") : h("span", { class: "muted" }, "none")) },
          { label: "Models", value: (p) => (p.models.length ? p.models.map((m) => (m === p.default_model ? `${m} (default)` : m)).join(", ") : "") },
          { label: "Source", value: (p) => source(p.source) },
        ],
        providers,
        { caption: "Providers", empty: "No providers known." },
      )),
      h("h3", null, "Catalog"),
      ...providers.map((p) => {
        const box = h("div");
        const d = h("details", { class: "catalog" }, h("summary", null, `${p.name} (${p.id}): models, context windows and prices`), box);
        d.addEventListener("toggle", () => d.open && !box.childElementCount && catalog(p, box));
        return d;
      }),
    );
    fillKeyProviders();
  };

  // Provider keys.
  const listBox = h("div");
  const provider = h("select", { name: "provider" });
  const key = h("input", { type: "password", name: "key", autocomplete: "off", spellcheck: "false", required: true });
  const error = h("p", { class: "error form-error", role: "alert" });
  const save = h("button", { type: "submit", class: "primary" }, "Store key");
  const form = h(
    "form",
    { class: "inline-form", "aria-label": "Store a provider key", novalidate: true },
    h(
      "div",
      { class: "form-grid" },
      field("Provider", provider),
      field("Key", key, "Sent once to the daemon's secret store (as provider.<id>), then cleared here. Replaces a stored one."),
    ),
    error,
    h("div", { class: "actions" }, save),
  );
  function fillKeyProviders() {
    const keep = provider.value;
    const needing = providers.filter((p) => p.auth_required && p.type !== "self");
    provider.replaceChildren(...needing.map((p) => h("option", { value: p.id }, `${p.name} (${p.id})`)));
    if (needing.some((p) => p.id === keep)) provider.value = keep;
  }
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    error.textContent = "";
    if (!key.value) {
      error.textContent = "Type the key first.";
      key.focus();
      return;
    }
    const body = { key: key.value };
    key.value = "";
    save.disabled = true;
    try {
      const r = await api("PUT", `/api/providers/${enc(provider.value)}/key`, body);
      toast(`Key for ${r.provider} stored (${r.store}).${(r.notices || []).length ? " " + r.notices.join(" ") : ""}`);
      await loadKeys();
    } catch (err) {
      error.textContent = err.message;
    } finally {
      body.key = "";
      save.disabled = false;
    }
    key.focus();
  });

  const loadKeys = async () => {
    const rows = await api("GET", "/api/providers/keys");
    listBox.replaceChildren(
      stacked(table(
        [
          { label: "Provider", value: (r) => r.provider },
          { label: "Secret", value: (r) => h("code", null, r.name) },
          { label: "Store", value: (r) => r.store },
          { label: "Used by", value: (r) => (r.used_by.length ? h("span", { class: "links" }, r.used_by.map((a) => h("a", { href: `#/profiles/${enc(a)}` }, a))) : h("span", { class: "muted" }, "no rule or alias yet")) },
          {
            label: "Remove",
            value: (r) =>
              h("button", {
                type: "button",
                class: "link danger",
                "aria-label": `Remove the key of ${r.provider}`,
                onclick: async (e) => {
                  const button = e.currentTarget;
                  const used = r.used_by.length ? ` Proxies of ${r.used_by.join(", ")} route to it and will fail without it.` : "";
                  if (!(await confirm(`Remove the stored key of ${r.provider}?${used}`, { action: "Remove", danger: true }))) {
                    button.focus();
                    return;
                  }
                  button.disabled = true;
                  try {
                    await api("DELETE", `/api/providers/${enc(r.provider)}/key`);
                    toast(`Key of ${r.provider} removed.`);
                    await loadKeys();
                    provider.focus();
                  } catch (err) {
                    failed(err);
                    button.disabled = false;
                  }
                },
              }, "Remove"),
          },
        ],
        rows,
        { caption: "Stored provider keys", empty: "No provider keys stored. A profile's own key serves its own provider; store one here for a rule or alias that targets another provider." },
      )),
    );
  };
  keysBox.replaceChildren(listBox, form);

  const show = (box) => (e) => box.replaceChildren(h("p", { class: "error" }, e.message));
  await Promise.all([loadAgents().catch(show(agentsBox)), loadProviders().catch(show(providersBox)), loadKeys().catch(show(listBox))]);

  let t = null;
  const reload = () => {
    clearTimeout(t);
    t = setTimeout(() => {
      loadAgents().catch(show(agentsBox));
      loadKeys().catch(show(listBox));
    }, 250);
  };
  const offs = ["AgentDetected", "AgentUpdated", "ProfileCreated", "ProfileDeleted", "ProfileUpdated"].map((type) => live.on(type, reload));
  const synced = live.on("RegistrySyncCompleted", () => loadProviders().catch(show(providersBox)));
  return () => {
    clearTimeout(t);
    offs.forEach((off) => off());
    synced();
  };
}

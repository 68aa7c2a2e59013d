// Terminals: the daemon's terminal sessions as tabs, each a live xterm.js
// terminal (js/term/view.js) connected when first shown and kept connected
// while the page is open; a state dot and label per tab (running, exited
// with its code, and the agent's "working" / "waiting for you" when it
// says). Routes: `#/terminals` (the first session), `#/terminals/<id>`,
// `#/terminals?new=1&profile=<alias>` (the new session form, preselected),
// `#/terminals/<id>?solo=1` (that terminal alone, filling the window: what
// "New window" opens). The list follows /ws: TerminalSessionCreated,
// TerminalSessionEnded, TerminalStateChanged.

import { api } from "../api.js";
import * as live from "../live.js";
import { h, failed, confirm, toast } from "../ui.js";
import { TermView, pageTheme } from "../term/view.js";
import { newSessionForm } from "../term/form.js";

export const title = "Terminals";

const byId = (a, b) => (parseInt(a.id.slice(1), 10) || 0) - (parseInt(b.id.slice(1), 10) || 0) || a.id.localeCompare(b.id);

/// What a session's dot and label say.
function stateOf(s) {
  if (s.state !== "running") {
    const code = s.exit_code !== null && s.exit_code !== undefined ? ` ${s.exit_code}` : "";
    return { kind: "exited", text: `exited${code}` };
  }
  if (s.agent_state === "waiting") return { kind: "waiting", text: "waiting for you" };
  if (s.agent_state === "working") return { kind: "working", text: "working" };
  return { kind: "running", text: "running" };
}

export async function mount(view, ctx) {
  const solo = ctx.query.get("solo") === "1";
  const wantNew = ctx.query.get("new") === "1";
  const sessions = new Map(); // id -> info
  const views = new Map(); // id -> TermView
  let active = ctx.args[0] || null;
  let showingForm = wantNew;
  let profiles = null;
  const offs = [];

  view.classList.add("terminals-page");
  if (solo) document.body.classList.add("term-solo");

  const tablist = h("div", { class: "term-tabs", role: "tablist", "aria-label": "Terminal sessions" });
  const newBtn = h("button", { type: "button", class: "primary", onclick: () => openForm() }, "New session");
  const clearBtn = h(
    "button",
    { type: "button", title: "Remove the ended sessions", onclick: () => cleanup() },
    "Clear ended",
  );
  const panel = h("div", { class: "term-panel" });
  if (!solo) {
    view.append(h("div", { class: "term-head" }, h("h1", null, title), h("div", { class: "row" }, newBtn, clearBtn)), tablist);
  } else {
    view.append(h("h1", { class: "term-sr-only" }, `${title}: ${active || ""}`));
  }
  view.append(panel);

  const list = await api("GET", "/api/terminal/sessions");
  for (const s of Array.isArray(list) ? list : list.sessions || []) sessions.set(s.id, s);

  // Live: new, ended and agent-state-changed sessions.
  offs.push(
    live.on("TerminalSessionCreated", (e) => {
      const s = e.data;
      if (!s?.id) return;
      sessions.set(s.id, { ...sessions.get(s.id), ...s });
      render();
    }),
    live.on("TerminalSessionEnded", (e) => {
      const s = e.data;
      if (!s?.id) return;
      sessions.set(s.id, { ...sessions.get(s.id), ...s });
      views.get(s.id)?.setInfo({ state: s.state || "exited", exit_code: s.exit_code });
      render();
    }),
    live.on("TerminalStateChanged", (e) => {
      const s = e.data;
      if (!s?.id || !sessions.has(s.id)) return;
      sessions.get(s.id).agent_state = s.agent_state ?? null;
      views.get(s.id)?.setInfo({ agent_state: s.agent_state ?? null });
      render();
    }),
  );

  // The terminals' colours follow the page's theme (Settings, the system).
  const retheme = () => {
    for (const v of views.values()) v.setTheme(pageTheme());
  };
  const themeObserver = new MutationObserver(retheme);
  themeObserver.observe(document.documentElement, { attributes: true, attributeFilter: ["data-theme"] });
  const media = matchMedia("(prefers-color-scheme: dark)");
  media.addEventListener("change", retheme);

  // The terminal box fills the window's height below it.
  const sizeHost = () => {
    const v = active && views.get(active);
    if (!v || !v.el.isConnected) return;
    const top = v.host.getBoundingClientRect().top + window.scrollY;
    const below = v.hint.offsetHeight + (solo ? 4 : 24);
    v.host.style.height = `${Math.max(solo ? 120 : 240, window.innerHeight - top - below)}px`;
  };
  window.addEventListener("resize", sizeHost);
  // ... and follows whatever above or below it changes height (the
  // header, the tabs, the toolbar, the hint): the box is sized from their
  // layout, which is not final when the page first renders.
  let layoutFrame = 0;
  const relayout = new ResizeObserver(() => {
    cancelAnimationFrame(layoutFrame);
    layoutFrame = requestAnimationFrame(sizeHost);
  });
  const observed = new Set();
  const observeLayout = (v) => {
    for (const el of [document.querySelector("header.top"), view.querySelector(".term-head"), tablist, v.toolbar, v.searchBox, v.hint]) {
      if (el && !observed.has(el)) {
        observed.add(el);
        relayout.observe(el);
      }
    }
  };

  function viewFor(id) {
    let v = views.get(id);
    if (!v) {
      v = new TermView(sessions.get(id), {
        solo,
        onLayout: () => sizeHost(),
        onInfo: (info) => {
          const s = sessions.get(id);
          if (s) Object.assign(s, { state: info.state, exit_code: info.exit_code });
          renderTabs();
        },
        actions: {
          kill: () => kill(id),
          openWindow: () => window.open(`${location.pathname}#/terminals/${encodeURIComponent(id)}?solo=1`, "_blank", "noopener"),
          confirmSignal: (name) => confirm(`Send SIG${name} to session ${id}? Its processes end at once.`, { action: `Send SIG${name}`, danger: true }),
        },
      });
      views.set(id, v);
    }
    return v;
  }

  function select(id, focus = false) {
    showingForm = false;
    active = id;
    const hash = `#/terminals/${encodeURIComponent(id)}${solo ? "?solo=1" : ""}`;
    if (location.hash !== hash) history.replaceState(null, "", hash);
    render();
    if (focus) views.get(id)?.focus();
  }

  async function openForm() {
    showingForm = true;
    render();
  }

  async function kill(id) {
    const yes = await confirm(`Kill session ${id}? Its program and everything it started end.`, { action: "Kill", danger: true });
    if (!yes) return;
    try {
      await api("DELETE", `/api/terminal/sessions/${encodeURIComponent(id)}`);
      toast(`Session ${id} killed.`);
    } catch (e) {
      failed(e);
    }
  }

  async function cleanup() {
    try {
      await api("POST", "/api/terminal/cleanup");
      const fresh = await api("GET", "/api/terminal/sessions");
      const keep = new Set((Array.isArray(fresh) ? fresh : fresh.sessions || []).map((s) => s.id));
      for (const id of [...sessions.keys()]) {
        if (!keep.has(id)) {
          sessions.delete(id);
          views.get(id)?.destroy();
          views.delete(id);
        }
      }
      if (active && !sessions.has(active)) active = null;
      render();
    } catch (e) {
      failed(e);
    }
  }

  // Tabs are updated in place (a live event must not take the focus
  // away from the tab the user is on).
  const tabEls = new Map();
  function renderTabs() {
    if (solo) return;
    const ids = [...sessions.values()].sort(byId).map((s) => s.id);
    for (const [id, el] of tabEls) {
      if (!sessions.has(id)) {
        el.remove();
        tabEls.delete(id);
      }
    }
    ids.forEach((id, i) => {
      const s = sessions.get(id);
      const st = stateOf(s);
      const selected = !showingForm && id === active;
      let el = tabEls.get(id);
      if (!el) {
        el = h(
          "button",
          { type: "button", role: "tab", id: `tab-${id}`, "aria-controls": "term-panel", dataset: { id }, onclick: () => select(id) },
          h("span", { class: "dot", "aria-hidden": "true" }),
          h("span", { class: "term-tab-name" }, `${id} ${s.profile}`),
          h("span", { class: "term-tab-state" }, ""),
        );
        tabEls.set(id, el);
      }
      el.className = `term-tab state ${st.kind}`;
      el.setAttribute("aria-selected", String(selected));
      el.tabIndex = selected || ((showingForm || !active) && i === 0) ? 0 : -1;
      el.lastChild.textContent = st.text;
      if (tablist.children[i] !== el) tablist.insertBefore(el, tablist.children[i] || null);
    });
  }

  // Arrow keys move between tabs (the tabs pattern); Enter/Space select.
  tablist.addEventListener("keydown", (e) => {
    const tabs = [...tablist.querySelectorAll('[role="tab"]')];
    const i = tabs.indexOf(document.activeElement);
    if (i < 0) return;
    let j = null;
    if (e.key === "ArrowRight") j = (i + 1) % tabs.length;
    else if (e.key === "ArrowLeft") j = (i - 1 + tabs.length) % tabs.length;
    else if (e.key === "Home") j = 0;
    else if (e.key === "End") j = tabs.length - 1;
    if (j === null) return;
    e.preventDefault();
    select(tabs[j].dataset.id);
    tabs[j].focus();
  });

  let formEl = null;
  async function renderPanel() {
    if (showingForm) {
      if (!formEl) {
        if (!profiles) {
          try {
            const p = await api("GET", "/api/profiles");
            profiles = p.profiles || p || [];
          } catch (e) {
            failed(e);
            profiles = [];
          }
        }
        formEl = newSessionForm({
          profiles,
          preselect: ctx.query.get("profile"),
          size: guessSize,
          onCreated: (info) => {
            formEl = null;
            sessions.set(info.id, { ...sessions.get(info.id), ...info });
            select(info.id, true);
          },
          onCancel: sessions.size ? () => { formEl = null; showingForm = false; render(); } : null,
        });
      }
      if (!showingForm) return;
      panel.replaceChildren(formEl);
      panel.removeAttribute("role");
      return;
    }
    formEl = null;
    if (!active || !sessions.has(active)) active = [...sessions.values()].sort(byId).map((s) => s.id)[0] || null;
    if (!active) {
      panel.replaceChildren(
        h("div", { class: "card" }, h("p", null, "No terminal sessions."), solo ? null : h("button", { type: "button", class: "primary", onclick: () => openForm() }, "Start one")),
      );
      return;
    }
    const v = viewFor(active);
    panel.setAttribute("role", solo ? "region" : "tabpanel");
    panel.id = "term-panel";
    if (!solo) panel.setAttribute("aria-labelledby", `tab-${active}`);
    else panel.setAttribute("aria-label", `Terminal ${active}`);
    if (panel.firstChild !== v.el || panel.childNodes.length !== 1) panel.replaceChildren(v.el);
    observeLayout(v);
    sizeHost();
    v.show();
  }

  function render() {
    renderTabs();
    renderPanel();
  }

  // The size a new session will likely get: the shown terminal's, or a
  // guess from the page's width.
  function guessSize() {
    const v = active && views.get(active);
    if (v?.term?.cols) return { cols: v.term.cols, rows: v.term.rows };
    const w = Math.max(320, view.clientWidth - 16);
    const hgt = Math.max(240, window.innerHeight - 220);
    return { cols: Math.max(20, Math.min(300, Math.floor(w / 8.5))), rows: Math.max(8, Math.min(100, Math.floor(hgt / 17))) };
  }

  if (active && !sessions.has(active) && !wantNew) {
    toast(`There is no session ${active} (ended and cleared?).`, "error");
    active = null;
  }
  render();
  if (!showingForm && active) setTimeout(() => views.get(active)?.focus(), 0);

  return () => {
    for (const off of offs) off();
    themeObserver.disconnect();
    media.removeEventListener("change", retheme);
    window.removeEventListener("resize", sizeHost);
    relayout.disconnect();
    cancelAnimationFrame(layoutFrame);
    for (const v of views.values()) v.destroy();
    views.clear();
    view.classList.remove("terminals-page");
    document.body.classList.remove("term-solo");
  };
}

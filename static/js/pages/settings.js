// Settings: this browser's choices (theme, the terminal's font size and
// screen-reader mode, kept in localStorage and read by app.js and the
// terminals page), signing out, the daemon's browser sessions (each
// sign-in is one; revoke any), and the licences of the vendored files
// (static/vendor/VERSIONS and LICENSE.*), read next to this module so the
// versioned static paths carry.

import { api, signOut, token } from "../api.js";
import { applySettings } from "../app.js";
import { h, table, section, ago, failed, field, confirm, toast } from "../ui.js";

export const title = "Settings";

const FONT_MIN = 8;
const FONT_MAX = 32;
const FONT_DEFAULT = 14;

export async function mount(view) {
  view.append(
    h("h1", null, title),
    appearance(),
    terminal(),
    account(),
    sessions(),
    licences(),
  );
}

function appearance() {
  const current = localStorage.getItem("ringlet.theme") || "system";
  const choices = [
    ["system", "As the system"],
    ["light", "Light"],
    ["dark", "Dark"],
  ];
  const group = h(
    "fieldset",
    { class: "settings-choices" },
    h("legend", null, "Theme"),
    choices.map(([value, label]) =>
      h(
        "label",
        null,
        h("input", { type: "radio", name: "theme", value, checked: value === current }),
        " ",
        label,
      ),
    ),
  );
  group.addEventListener("change", (e) => {
    const value = e.target.value;
    if (value === "light" || value === "dark") localStorage.setItem("ringlet.theme", value);
    else localStorage.removeItem("ringlet.theme");
    applySettings();
  });
  return section("Appearance", null, group, h("p", { class: "hint" }, "Kept in this browser; other tabs follow."));
}

function terminal() {
  const saved = Number.parseInt(localStorage.getItem("ringlet.fontSize") || "", 10);
  const size = h("input", {
    type: "number",
    name: "fontSize",
    class: "settings-size",
    min: FONT_MIN,
    max: FONT_MAX,
    step: 1,
    inputmode: "numeric",
    value: Number.isFinite(saved) ? saved : FONT_DEFAULT,
  });
  const sample = h("p", { class: "settings-sample", "aria-hidden": "true" }, "$ ringlet terminal list");
  const sizeError = h("p", { class: "error", role: "alert" });
  const showSample = () => {
    sample.style.fontSize = `${size.value}px`;
  };
  showSample();
  size.addEventListener("input", showSample);
  size.addEventListener("change", () => {
    const n = Number.parseInt(size.value, 10);
    if (!Number.isFinite(n) || n < FONT_MIN || n > FONT_MAX) {
      sizeError.textContent = `The size must be a whole number from ${FONT_MIN} to ${FONT_MAX}.`;
      return;
    }
    sizeError.textContent = "";
    if (n === FONT_DEFAULT) localStorage.removeItem("ringlet.fontSize");
    else localStorage.setItem("ringlet.fontSize", String(n));
    toast(`Terminal font size: ${n} px (terminals opened from now on).`);
  });

  const reader = h("input", {
    type: "checkbox",
    name: "screenReader",
    id: "settings-screen-reader",
    checked: localStorage.getItem("ringlet.screenReader") === "1",
  });
  reader.addEventListener("change", () => {
    if (reader.checked) localStorage.setItem("ringlet.screenReader", "1");
    else localStorage.removeItem("ringlet.screenReader");
    toast(`Screen-reader mode ${reader.checked ? "on" : "off"} for terminals opened from now on.`);
  });
  return section(
    "Terminal",
    null,
    field("Font size (px)", size, `From ${FONT_MIN} to ${FONT_MAX}; ${FONT_DEFAULT} by default.`),
    sizeError,
    sample,
    h(
      "div",
      { class: "field" },
      h("span", null, reader, " ", h("label", { for: "settings-screen-reader" }, "Screen-reader mode")),
      h(
        "small",
        { class: "hint" },
        "The terminal keeps an accessible copy of its text for screen readers (slower with fast output).",
      ),
    ),
  );
}

function account() {
  const out = h("button", { type: "button", class: "danger" }, "Sign out");
  out.addEventListener("click", async () => {
    out.disabled = true;
    try {
      await signOut();
    } catch (e) {
      // Signed out here anyway (api.js forgets the token); say why the
      // daemon could not be told.
      failed(e);
    }
  });
  return section(
    "This browser",
    null,
    h("p", null, "Signing out ends this browser's session on the daemon; every tab of this browser is signed out. ", h("code", null, "ringlet ui"), " signs in again."),
    h("div", { class: "row" }, out),
  );
}

function sessions() {
  const box = h("div", { class: "sr-caption" }, h("p", { class: "loading" }, "Loading…"));
  const revokeAll = h("button", { type: "button", class: "danger", hidden: true }, "Revoke all");
  const load = async () => {
    try {
      const reply = await api("GET", "/api/browser-sessions");
      const list = Array.isArray(reply) ? reply : reply && Array.isArray(reply.sessions) ? reply.sessions : [];
      revokeAll.hidden = list.length === 0;
      box.replaceChildren(
        stacked(table(
          [
            { label: "Session", value: (s) => h("span", null, h("code", null, s.id), s.current ? h("strong", null, " (this browser)") : "") },
            { label: "Signed in", value: (s) => ago(s.created_at) },
            { label: "Last used", value: (s) => ago(s.last_used) },
            { label: "Expires", value: (s) => h("time", { datetime: s.expires_at }, new Date(s.expires_at).toLocaleString()) },
            {
              label: "Action",
              value: (s) =>
                h(
                  "button",
                  { type: "button", class: "danger", "aria-label": `Revoke session ${s.id}${s.current ? " (this browser)" : ""}`, onclick: () => revoke(s) },
                  "Revoke",
                ),
            },
          ],
          list,
          { caption: "Browser sessions of this daemon", empty: "No browser session." },
        )),
      );
    } catch (e) {
      box.replaceChildren(
        h(
          "p",
          { class: e.status === 404 ? "muted" : "error", role: e.status === 404 ? null : "alert" },
          e.status === 404
            ? `This daemon cannot list browser sessions (${e.message}). Update ringlet; `
            : `${e.message}. `,
          h("code", null, "ringlet ui --sessions"),
          " lists them in a shell.",
        ),
      );
    }
  };
  const revoke = async (s) => {
    const yes = await confirm(
      s.current
        ? "Revoke this browser's own session? This signs this browser out."
        : `Revoke browser session ${s.id}? That browser is signed out at once.`,
      { action: "Revoke", danger: true },
    );
    if (!yes) return;
    try {
      await api("DELETE", `/api/browser-sessions/${encodeURIComponent(s.id)}`);
      toast(`Session ${s.id} revoked.`);
      if (token()) load();
    } catch (e) {
      failed(e);
    }
  };
  revokeAll.addEventListener("click", async () => {
    const yes = await confirm("Revoke every browser session, this one included? Every browser is signed out.", {
      action: "Revoke all",
      danger: true,
    });
    if (!yes) return;
    try {
      await api("DELETE", "/api/browser-sessions");
      // This browser's token went too: the next call's 401 shows the sign-in.
      load();
    } catch (e) {
      failed(e);
    }
  });
  load();
  return section("Browser sessions", revokeAll, h("p", { class: "hint" }, "Each sign-in through a ", h("code", null, "ringlet ui"), " link is one session, until it expires or is revoked."), box);
}

/// On a phone a table's rows become stacked cards (each cell labelled with
/// its column: `data-label`; app.css `.stack-narrow`), not a table to scroll.
function stacked(el) {
  el.classList.add("stack-narrow");
  return el;
}

function licences() {
  const box = h("div", { class: "sr-caption" }, h("p", { class: "loading" }, "Loading…"));
  const base = new URL("../../vendor/", import.meta.url);
  (async () => {
    try {
      const reply = await fetch(new URL("VERSIONS", base));
      if (!reply.ok) throw new Error(`vendor/VERSIONS: HTTP ${reply.status}`);
      const rows = (await reply.text())
        .split("\n")
        .map((l) => l.trim())
        .filter((l) => l && !l.startsWith("#"))
        .map((l) => {
          const [name, version, integrity, licence] = l.split(/\s+/);
          return { name, version, integrity, licence, short: name.split("/").pop() };
        });
      box.replaceChildren(
        h("p", null, "The web UI is plain files served by the daemon. These were vendored from npm (", h("code", null, "static/vendor/update.sh"), " records them):"),
        table(
          [
            { label: "Package", value: (r) => h("code", null, r.name) },
            { label: "Version", value: (r) => r.version },
            { label: "Licence", value: (r) => r.licence },
          ],
          rows,
          { caption: "Vendored packages" },
        ),
        ...rows.map((r) => licenceText(r, base)),
      );
    } catch (e) {
      box.replaceChildren(h("p", { class: "error", role: "alert" }, `The licences could not be read: ${e.message}.`));
    }
  })();
  return section("Licences", null, box);
}

/// A package's licence text, fetched when its <details> first opens.
function licenceText(r, base) {
  const pre = h("pre", { class: "settings-licence", tabindex: "0", "aria-label": `Licence text of ${r.name}` }, "Loading…");
  const details = h(
    "details",
    null,
    h("summary", null, `Licence of ${r.name} ${r.version} (${r.licence})`),
    h("p", { class: "settings-integrity" }, "npm integrity: ", h("code", null, r.integrity)),
    pre,
  );
  let loaded = false;
  details.addEventListener("toggle", async () => {
    if (!details.open || loaded) return;
    loaded = true;
    try {
      const reply = await fetch(new URL(`LICENSE.${r.short}`, base));
      if (!reply.ok) throw new Error(`HTTP ${reply.status}`);
      pre.textContent = await reply.text();
    } catch (e) {
      loaded = false;
      pre.textContent = `LICENSE.${r.short} could not be read: ${e.message}`;
    }
  });
  return details;
}

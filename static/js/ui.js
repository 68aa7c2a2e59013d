// Small DOM helpers shared by the pages. Everything is built with DOM calls
// and textContent: nothing the daemon or an agent sends is ever parsed as
// HTML.

/// `h("button", {class: "x", onclick: fn}, "text", child)`: an element.
/// Attributes starting with "on" become listeners; `null`/`false` ones are
/// skipped; children may be strings, nodes, arrays or null.
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else if (k === "dataset") Object.assign(el.dataset, v);
    else if (v === true) el.setAttribute(k, "");
    else el.setAttribute(k, String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : String(c));
  }
}

/// A table that scrolls sideways on a narrow screen rather than
/// overflowing it. `columns`: [{label, value: row => text|node, class?}].
export function table(columns, rows, { caption, empty = "Nothing yet." } = {}) {
  if (!rows.length) return h("p", { class: "empty" }, empty);
  return h(
    "div",
    { class: "table-wrap", tabindex: "0", role: "region", "aria-label": caption || "table" },
    h(
      "table",
      null,
      caption ? h("caption", null, caption) : null,
      h("thead", null, h("tr", null, columns.map((c) => h("th", { scope: "col", class: c.class }, c.label)))),
      h(
        "tbody",
        null,
        rows.map((r) => h("tr", null, columns.map((c) => h("td", { class: c.class, "data-label": c.label }, c.value(r))))),
      ),
    ),
  );
}

/// On a phone the table's rows become stacked cards (each cell with its
/// column's name: `data-label`), rather than a table to scroll sideways.
export function stacked(el) {
  el.classList?.add("stack-narrow");
  return el;
}

/// A table inside a card whose heading already says what it is: its
/// caption is for screen readers only (`showCaption` keeps it visible).
export function cardTable(columns, rows, opts = {}) {
  const t = table(columns, rows, opts);
  if (!opts.showCaption) t.querySelector?.("caption")?.classList.add("visually-hidden");
  return t;
}

/// replaceChildren without the "null" text a left-out child would become.
export function fill(el, ...kids) {
  el.replaceChildren(...kids.filter((k) => k !== null && k !== undefined && k !== false));
}

/// A page section with a heading and optional tools beside it.
export function section(title, tools, ...body) {
  return h("section", { class: "card" }, h("div", { class: "card-head" }, h("h2", null, title), tools), ...body);
}

/// "3 minutes ago" (a title attribute keeps the local date and time).
/// Worded here rather than by Intl.RelativeTimeFormat and toLocaleString,
/// as the rest of the page is in English: a page's first use of an Intl
/// formatter loads its locale data, tens of milliseconds (hundreds on a
/// busy machine) that every first paint of the dashboard paid.
export function ago(stamp) {
  if (!stamp) return h("span", null, "never");
  const t = new Date(stamp);
  const s = Math.round((Date.now() - t.getTime()) / 1000);
  let text;
  if (Math.abs(s) < 45) text = s === 0 ? "now" : relative(s, "second");
  else if (Math.abs(s) < 2700) text = relative(Math.round(s / 60), "minute");
  else if (Math.abs(s) < 79200) text = relative(Math.round(s / 3600), "hour");
  else {
    const d = Math.round(s / 86400);
    text = d === 1 ? "yesterday" : d === -1 ? "tomorrow" : relative(d, "day");
  }
  return h("time", { datetime: t.toISOString(), title: localTime(t) }, text);
}

/// `n` units ago (n > 0) or in `-n` units.
function relative(n, unit) {
  const abs = Math.abs(n);
  const units = `${abs} ${unit}${abs === 1 ? "" : "s"}`;
  return n > 0 ? `${units} ago` : `in ${units}`;
}

/// `2026-12-07 15:04:05`, local time.
export function localTime(t) {
  const p = (n) => String(n).padStart(2, "0");
  return `${t.getFullYear()}-${p(t.getMonth() + 1)}-${p(t.getDate())} ${p(t.getHours())}:${p(t.getMinutes())}:${p(t.getSeconds())}`;
}

export function duration(secs) {
  if (secs === null || secs === undefined) return "";
  const s = Math.round(secs);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

export function cost(usd) {
  return typeof usd === "number" ? `$${usd.toFixed(usd !== 0 && Math.abs(usd) < 0.01 ? 4 : 2)}` : "n/a";
}

/// `14,800`: digits grouped by threes (not toLocaleString: see `ago`).
export function count(n) {
  if (typeof n !== "number") return "";
  if (!Number.isFinite(n)) return String(n);
  const [whole, frac] = String(Math.abs(Math.round(n * 1000) / 1000)).split(".");
  const grouped = whole.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  return `${n < 0 ? "-" : ""}${grouped}${frac ? `.${frac}` : ""}`;
}

/// A short-lived message; errors stay until dismissed.
export function toast(message, kind = "info") {
  const box = document.getElementById("toasts");
  const close = h("button", { type: "button", class: "link", "aria-label": "Dismiss" }, "×");
  const el = h("div", { class: `toast ${kind}`, role: kind === "error" ? "alert" : null }, h("span", null, message), close);
  close.addEventListener("click", () => el.remove());
  box.append(el);
  if (kind !== "error") setTimeout(() => el.remove(), 5000);
}

/// Shows an API error from a failed action.
export function failed(e) {
  toast(e && e.message ? e.message : String(e), "error");
}

/// A modal confirm. Resolves true or false. `options.choices`: extra
/// checkboxes [{name, label}], whose values come back in `.choices`.
export function confirm(message, { action = "OK", danger = false, choices = [] } = {}) {
  return new Promise((resolve) => {
    const boxes = choices.map((c) => h("input", { type: "checkbox", id: `c-${c.name}`, name: c.name }));
    const ok = h("button", { type: "submit", class: danger ? "danger" : "primary", value: "ok" }, action);
    const form = h(
      "form",
      { method: "dialog" },
      h("p", null, message),
      choices.map((c, i) => h("p", null, boxes[i], " ", h("label", { for: `c-${c.name}` }, c.label))),
      h("div", { class: "actions" }, h("button", { type: "submit", value: "cancel" }, "Cancel"), ok),
    );
    const dialog = h("dialog", { "aria-label": message }, form);
    document.body.append(dialog);
    dialog.addEventListener("close", () => {
      const yes = dialog.returnValue === "ok";
      const picked = Object.fromEntries(choices.map((c, i) => [c.name, boxes[i].checked]));
      dialog.remove();
      resolve(yes ? Object.assign(new Boolean(true), { choices: picked }) : false);
    });
    dialog.showModal();
    ok.focus();
  });
}

/// A labelled form field. `input` is an element (input, select, textarea);
/// it gets an id for the label if it has none.
let fieldSeq = 0;
export function field(label, input, hint) {
  if (!input.id) input.id = `f${++fieldSeq}`;
  const hintEl = hint ? h("small", { id: `${input.id}-hint`, class: "hint" }, hint) : null;
  if (hintEl) input.setAttribute("aria-describedby", hintEl.id);
  return h("div", { class: "field" }, h("label", { for: input.id }, label), input, hintEl);
}

/// A <select> of `options` ([value, label] pairs or plain values).
export function select(name, options, selected) {
  return h(
    "select",
    { name },
    options.map((o) => {
      const [value, label] = Array.isArray(o) ? o : [o, o];
      return h("option", { value, selected: value === selected }, label);
    }),
  );
}

/// A status dot with its text (never colour alone).
export function state(text, kind) {
  return h("span", { class: `state ${kind || text}` }, h("span", { class: "dot", "aria-hidden": "true" }), text);
}

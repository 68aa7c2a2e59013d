// The new terminal session form: profile, working directory (completed
// from the directories under the home, `GET /api/fs/dirs?prefix=`),
// sandbox on or off, extra bwrap flags, arguments for the agent. It posts
// `POST /api/terminal/sessions` (the daemon's TerminalRequest) and hands
// the new session's info to `onCreated`. A refusal is shown next to the
// form, in the daemon's words.

import { api, withQuery } from "../api.js";
import { h, field } from "../ui.js";

/// Splits arguments like a shell splits words: spaces separate, single
/// and double quotes group, a backslash escapes the next character.
export function splitWords(text) {
  const words = [];
  let word = null;
  let quote = null;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quote) {
      if (c === quote) quote = null;
      else if (c === "\\" && quote === '"' && i + 1 < text.length) word += text[++i];
      else word += c;
    } else if (c === "'" || c === '"') {
      quote = c;
      word = word ?? "";
    } else if (c === "\\" && i + 1 < text.length) {
      word = (word ?? "") + text[++i];
    } else if (/\s/.test(c)) {
      if (word !== null) words.push(word);
      word = null;
    } else {
      word = (word ?? "") + c;
    }
  }
  if (quote) throw new Error(`unclosed ${quote} in the arguments`);
  if (word !== null) words.push(word);
  return words;
}

let listSeq = 0;

/// `profiles`: [{alias, agent}]; `size()`: {cols, rows} the terminal will
/// likely get.
export function newSessionForm({ profiles, preselect, size, onCreated, onCancel }) {
  const listId = `dirs-${++listSeq}`;
  const profile = h(
    "select",
    { name: "profile", required: true },
    profiles.map((p) => h("option", { value: p.alias, selected: p.alias === preselect }, `${p.alias} (${p.agent})`)),
  );
  const dir = h("input", {
    name: "working_dir",
    type: "text",
    list: listId,
    autocomplete: "off",
    spellcheck: "false",
    placeholder: "~/projects/app",
  });
  const dirs = h("datalist", { id: listId });
  const sandbox = h("input", { type: "checkbox", name: "sandbox", checked: true, "aria-describedby": `sb-${listSeq}-hint` });
  const flags = h("input", { name: "bwrap_flags", type: "text", spellcheck: "false", placeholder: "--ro-bind /opt /opt" });
  const args = h("input", { name: "args", type: "text", spellcheck: "false", placeholder: "--resume" });
  const error = h("p", { class: "error", role: "alert" });
  const submit = h("button", { type: "submit", class: "primary" }, "Start");

  // Completion: the directories under the home that start with what is
  // typed, asked a moment after typing stops; the answer to an older
  // prefix is dropped.
  let timer = 0;
  let asked = 0;
  let home = null;
  dir.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(complete, 150);
  });
  dir.addEventListener("focus", () => {
    if (!dirs.children.length) complete();
  });
  async function complete() {
    const seq = ++asked;
    try {
      const reply = await api("GET", withQuery("/api/fs/dirs", { prefix: dir.value || "~/" }));
      if (seq !== asked) return;
      const list = Array.isArray(reply?.dirs) ? reply.dirs : [];
      if (!home && list.length && !dir.value) home = commonParent(list);
      dirs.replaceChildren(...list.map((d) => h("option", { value: d })));
    } catch {
      // No completion (an older daemon, a path outside the home): the
      // field still takes what is typed.
      if (seq === asked) dirs.replaceChildren();
    }
  }

  const toggleFlags = () => {
    flags.disabled = !sandbox.checked;
  };
  sandbox.addEventListener("change", toggleFlags);

  const form = h(
    "form",
    { class: "card term-new", "aria-labelledby": "term-new-title" },
    h("h2", { id: "term-new-title" }, "New session"),
    field("Profile", profile),
    field("Working directory", dir, "Under your home (~); empty: the profile's home with the sandbox, your home without."),
    dirs,
    h(
      "div",
      { class: "field" },
      h("span", { class: "row" }, sandbox, h("label", { for: (sandbox.id = `sb-${listSeq}`) }, "Sandbox (bwrap)")),
      h("small", { class: "hint", id: `sb-${listSeq}-hint` }, "Off runs the agent with your whole account's access."),
    ),
    field("Extra bwrap flags", flags, "Split like shell words, e.g. --ro-bind /opt /opt."),
    field("Arguments", args, "After the profile's own, split like shell words."),
    error,
    h("div", { class: "actions" }, onCancel ? h("button", { type: "button", onclick: onCancel }, "Cancel") : null, submit),
  );

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    error.textContent = "";
    let body;
    try {
      body = { profile: profile.value, sandbox: sandbox.checked, ...size() };
      const wd = dir.value.trim();
      if (wd) body.working_dir = await absolute(wd);
      if (sandbox.checked && flags.value.trim()) body.bwrap_flags = flags.value.trim();
      const words = splitWords(args.value);
      if (words.length) body.args = words;
    } catch (err) {
      error.textContent = err.message;
      return;
    }
    submit.disabled = true;
    try {
      const info = await api("POST", "/api/terminal/sessions", body);
      onCreated(info);
    } catch (err) {
      error.textContent = err.message;
    } finally {
      submit.disabled = false;
    }
  });

  // `~`, `~/x` and a relative `x` (under the home, as the completion
  // takes it) become absolute: the daemon wants an absolute path. The
  // home is learnt from the completions of `~/` (or of `~/.`: a home
  // holds hidden directories when it holds nothing else).
  async function absolute(path) {
    if (path.startsWith("/")) return path;
    if (!home) {
      for (const prefix of ["~/", "~/."]) {
        try {
          const reply = await api("GET", withQuery("/api/fs/dirs", { prefix }));
          home = commonParent(reply?.dirs || []);
        } catch {
          // No completion from this daemon: asked for below.
        }
        if (home) break;
      }
    }
    if (!home) throw new Error("type the working directory as an absolute path (/home/...)");
    if (path === "~") return home;
    if (path.startsWith("~/")) return home + path.slice(1);
    if (path.startsWith("~")) throw new Error("only your own home (~ or ~/...) can be named with ~");
    return `${home}/${path}`;
  }

  setTimeout(() => profile.focus(), 0);
  return form;
}

/// The directory every completion of `~/` is in: the home.
function commonParent(list) {
  if (!list.length) return null;
  const first = list[0].replace(/\/+$/, "");
  const cut = first.lastIndexOf("/");
  return cut > 0 ? first.slice(0, cut) : null;
}

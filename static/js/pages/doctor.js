// Doctor: the checks the daemon can run itself (`GET /api/doctor`: config
// and manifests, agents and their versions, the key store, the sandbox,
// the HTTP port and who holds it, proxies, the registry's age, the
// daemon's version), each with its status (a dot and a word, never colour
// alone), what was found and how to fix it. Checks that need the user's
// own shell (PATH, shims) stay in `ringlet doctor`.

import { api } from "../api.js";
import { h, section, count } from "../ui.js";

export const title = "Doctor";

const WORD = { ok: "ok", warn: "warning", fail: "failed" };
const ORDER = { fail: 0, warn: 1, ok: 2 };

export async function mount(view) {
  const rerun = h("button", { type: "button", class: "primary" }, "Re-run the checks");
  const summary = h("p", { class: "doctor-summary", role: "status", "aria-live": "polite" });
  const list = h("div", { class: "doctor-list" });
  view.append(
    h("h1", null, title),
    h(
      "p",
      { class: "muted" },
      "The checks the daemon can run. Those that need your own shell, such as PATH and the profiles' shims, are in ",
      h("code", null, "ringlet doctor"),
      ".",
    ),
    h("div", { class: "row doctor-tools" }, rerun, summary),
    list,
  );

  let seq = 0;
  async function run() {
    const my = ++seq;
    const focused = document.activeElement === rerun;
    rerun.disabled = true;
    summary.textContent = "Running the checks…";
    try {
      const reply = await api("GET", "/api/doctor");
      if (my !== seq) return;
      const checks = (reply && Array.isArray(reply.checks) ? reply.checks : []).slice();
      // Problems first, then in the daemon's order.
      checks.forEach((c, i) => (c._i = i));
      checks.sort((a, b) => (ORDER[a.status] ?? 1) - (ORDER[b.status] ?? 1) || a._i - b._i);
      const n = (s) => checks.filter((c) => c.status === s).length;
      const [fails, warns] = [n("fail"), n("warn")];
      summary.textContent =
        `${count(checks.length)} checks: ${count(checks.length - fails - warns)} ok, ${count(warns)} ${warns === 1 ? "warning" : "warnings"}, ${count(fails)} failed. ` +
        `Run at ${new Date().toLocaleTimeString()}.`;
      list.replaceChildren(
        checks.length ? h("ul", { class: "doctor-checks", "aria-label": "Checks" }, checks.map(item)) : h("p", { class: "empty" }, "The daemon reported no checks."),
      );
    } catch (e) {
      if (my !== seq) return;
      summary.textContent = "";
      list.replaceChildren(
        section(
          "The checks could not run",
          null,
          h("p", { class: "error", role: "alert" }, e.message),
          e.status === 404
            ? h("p", { class: "muted" }, "This daemon has no doctor route yet (an older ringlet). ", h("code", null, "ringlet doctor"), " runs the checks in a shell.")
            : null,
        ),
      );
    } finally {
      if (my === seq) {
        rerun.disabled = false;
        // A disabled button loses focus to <body>: give it back.
        if (focused && document.activeElement === document.body) rerun.focus();
      }
    }
  }
  rerun.addEventListener("click", run);
  await run();
  return () => {
    seq++;
  };
}

function item(c) {
  const status = WORD[c.status] ? c.status : "warn";
  return h(
    "li",
    { class: `doctor-check ${status}` },
    h(
      "div",
      { class: "doctor-head" },
      h("span", { class: `state ${status}` }, h("span", { class: "dot", "aria-hidden": "true" }), WORD[status] || String(c.status)),
      h("h2", null, c.name || "check"),
    ),
    c.detail ? h("p", { class: "doctor-detail" }, c.detail) : null,
    c.fix ? h("p", { class: "doctor-fix" }, h("strong", null, "Fix: "), c.fix) : null,
  );
}

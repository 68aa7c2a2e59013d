//! The one integration-test binary: every test drives the real `ringlet`
//! binary in its own temporary world (see `util`), one module per area.

// The harness: temp worlds, TestCommand, daemon cleanup.
mod util;

// Parsing, help, version, errors, exit codes, broken pipes, config errors.
mod cli;
// The CLI's conventions: one error prefix, suggestions, the `--` hint, exit
// codes, colour on a terminal only, relative times, runtimes that agree.
mod conventions;
// Auto-start, the start race, stale sockets, idle exit, signals, status/stop.
mod daemon;
// Raw IPC: oversized, malformed and foreign frames, peers, subscriptions.
mod ipc;
// Built-in and user manifests, overrides, broken files, endpoints.
mod manifests;
// Synced registry manifests, scripts and prices really used, without a restart.
mod registry_load;
// Agent detection: caching, hanging probes, the real agents from npm.
mod detect;
// Profiles with fake agents: create, bad input, secrets, scripts, runs, hooks, shims.
mod profiles;
// Built-in scripts x provider types against checked-in expected output.
mod golden;
// The agents' settings files are Ringlet's: planted keys gone, kept records
// kept, the config.toml overlay, the pinned permission mode.
mod render;
// The real agents (Claude Code, Codex, OpenCode) through profiles against mock providers.
mod agents;
// Usage tracking: synthetic Claude Code data, cross-checked against ccusage.
mod usage;
// Usage tracking: every log format in place, the incremental scan, the
// durable store, bad input, imports, live events, report errors.
mod usage_scan;
// Usage from the proxy's request logs for an agent that writes none (Grok CLI).
mod usage_proxy;
// The HTTP API: auth, browser checks, routes, limits, the /ws event stream.
mod http;
// The web UI's files: gzip, versioned URLs and caching, 304, HEAD, the CSP, traversal.
mod web_assets;
// The routes the web UI's pages need: directory completion, signals, doctor.
mod ui_routes;
// `ringlet doctor`: every check, planted plain-file keys, stale shims, a replaced daemon.
mod doctor;
// Terminal sessions: a real PTY over the HTTP API and WebSockets.
mod terminal;
// The web UI in a real browser: Debian's Chromium driven by playwright-core
// (node --test tests/browser/) against a real daemon world.
mod browser;
// The screens the daemon keeps (issue 14): reconnecting to the real agents'
// TUIs against tmux's view, query answers, attach's restore, agent state.
mod terminal_screen;
// The sandbox with the real bwrap: allowlist, work dirs in the home, --bwrap-flags.
mod sandbox;
// Files an agent or a crash can attack: planted links, FIFOs, huge files,
// fixed names, stale temps, kill -9 mid create/delete.
mod files;
// Browser sign-in: session tokens from tickets, revocation, expiry, the port's owner.
mod browser_sessions;
// The red team's attacks on the trust boundaries (issue 11): strangers on the
// HTTP port, hostile sandboxed agents, secrets in the environment.
mod attacks;
// Red-team attacks on items 1, 3 and 15: render races, hard links, files the
// agents load beside the rendered ones, pathological merges, crash intents.
mod attacks_files;
// Attacks on running sessions: stale foreground groups, pid hoppers, a
// killed session helper.
mod attacks_runtime;
// The proxy supervisor: ports held by the daemon, children on fd 3, restarts
// on the same socket, stop/delete/shutdown/daemon death leave nothing.
mod proxy_supervisor;
// The profile side of the proxy: provider keys, rules, aliases, budgets,
// enable and the render through the proxy, with no upstream key in any output.
mod proxy_manage;
// The proxy child (`ringlet proxy serve`) against mock upstreams: streaming, fallback,
// fidelity, local auth, limits, HTTPS, budget, request log, stats.
mod proxy_relay;
// Red team on the proxy's profile side: profile growth, port races, keys in
// error replies, hostile proxy logs under the usage scan.
mod attacks_proxy;
// The external LiteLLM backend: the real LiteLLM carries real Claude Code
// to an OpenAI-format mock (translation), with a fallback.
mod proxy_litellm;
// Red team on the proxy child as a server and relay: strangers filling its
// connections, chunked framing, duplicate model keys, model names.
mod attacks_proxy_relay;
// Red-team attacks on the proxy's lifecycle and its secrets at the process level.
mod attacks_proxy_lifecycle;
// Registry sync (issue 13): local HTTP/HTTPS servers of this repository's
// registry, every failure leaving `current` alone, pins, offline, bundles.
mod registry_sync;
// The registry's offline mechanics: `registry index` builds this repository's
// registry (what `make registry` runs) and refuses trees that are not one.
mod registry_store;
// Profile templates and the model catalog: create --template, layering,
// `profiles templates`, unknown-model warnings, --script, REST.
mod templates;
// Attacks on the registry: hostile sources, a FIFO as --from, a total size
// cap, `current` and state.json tampered by hand.
mod attacks_registry;
// The routes the web UI leans on: recent events, config.toml choices.
mod ui_api;
// Packaging (issue 15): make install/uninstall, the systemd user unit, the .deb.
mod packaging;
// Shell completion (issue 15): the generated scripts in the real bash, fish
// and zsh, live names with and without a daemon, and never starting one.
mod completions;
// The man page (issue 15): generated from the command table, mandoc-lint clean.
mod manpage;
// A new user's first commands (issue 15): checks before the key prompt, a
// forgiving `init`, `profiles delete` and `--purge`, `daemon --stay-alive`
// on a running daemon, shims that survive a moved binary.
mod first_run;

//! The whole command tree of design.md §4 as data: names, arguments, help
//! text, and whether each command is implemented yet. The parser
//! ([`super::parse`]) and the help screens are generated from this one table,
//! so a command cannot exist in one and not the other.
//!
//! A command with `ready: false` is parsed and validated like any other and
//! then fails with `not available in this build` (exit 1: exit 2 means a
//! usage error only).

/// One command or command group.
#[derive(Debug)]
pub struct Cmd {
    pub name: &'static str,
    pub about: &'static str,
    pub args: &'static [Arg],
    pub subs: &'static [Cmd],
    /// Runs when given without a subcommand (e.g. `usage`, `daemon`).
    pub runnable: bool,
    /// Implemented in this release.
    pub ready: bool,
    /// Metavar for extra arguments collected after the positionals (after
    /// `--`), e.g. the agent's own arguments for `profiles run`.
    pub trailing: Option<&'static str>,
    /// Internal (`proxy serve`, which the daemon runs): parsed and run like
    /// any other, never listed in help.
    pub hidden: bool,
    /// Worked examples for `--help`, the man page and the README: each is
    /// (what it does, the command line).
    pub examples: &'static [(&'static str, &'static str)],
}

/// One option or positional argument.
#[derive(Debug)]
pub struct Arg {
    /// Long option name, or the positional's name (shown as `<NAME>`).
    pub name: &'static str,
    pub short: Option<char>,
    pub kind: Kind,
    pub required: bool,
    /// Allowed values, if the set is closed.
    pub choices: &'static [&'static str],
    pub help: &'static str,
    /// Internal (e.g. `--log-file`, set by the CLI when it spawns a daemon).
    pub hidden: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Flag,
    /// An option with a value; the string is its metavar.
    Value(&'static str),
    Positional,
}

const fn group(name: &'static str, about: &'static str, subs: &'static [Cmd]) -> Cmd {
    Cmd {
        name,
        about,
        args: &[],
        subs,
        runnable: false,
        ready: true,
        trailing: None,
        hidden: false,
        examples: &[],
    }
}

const fn cmd(name: &'static str, about: &'static str, args: &'static [Arg]) -> Cmd {
    Cmd {
        name,
        about,
        args,
        subs: &[],
        runnable: true,
        ready: false,
        trailing: None,
        hidden: false,
        examples: &[],
    }
}

/// A command or group with worked examples (see [`Cmd::examples`]).
const fn examples(c: Cmd, examples: &'static [(&'static str, &'static str)]) -> Cmd {
    Cmd { examples, ..c }
}

impl Cmd {
    /// [`examples`] as a method: `group(...).with_examples(&[...])` adds
    /// them without nesting (and re-indenting) the command's definition.
    const fn with_examples(self, examples: &'static [(&'static str, &'static str)]) -> Cmd {
        Cmd { examples, ..self }
    }
}

const fn ready(c: Cmd) -> Cmd {
    Cmd { ready: true, ..c }
}

/// A command that is implemented: `ready(cmd(..))` in one word.
const fn rcmd(name: &'static str, about: &'static str, args: &'static [Arg]) -> Cmd {
    ready(cmd(name, about, args))
}

const fn flag(name: &'static str, help: &'static str) -> Arg {
    Arg { name, short: None, kind: Kind::Flag, required: false, choices: &[], help, hidden: false }
}

const fn opt(name: &'static str, metavar: &'static str, help: &'static str) -> Arg {
    Arg { kind: Kind::Value(metavar), ..flag(name, help) }
}

const fn pos(name: &'static str, help: &'static str) -> Arg {
    Arg { kind: Kind::Positional, required: true, ..flag(name, help) }
}

const fn short(a: Arg, c: char) -> Arg {
    Arg { short: Some(c), ..a }
}

const fn required(a: Arg) -> Arg {
    Arg { required: true, ..a }
}

const fn optional(a: Arg) -> Arg {
    Arg { required: false, ..a }
}

const fn choices(a: Arg, choices: &'static [&'static str]) -> Arg {
    Arg { choices, ..a }
}

const fn hidden(a: Arg) -> Arg {
    Arg { hidden: true, ..a }
}

const PERIODS: &[&str] = &["today", "yesterday", "week", "month", "7d", "30d", "all"];

/// The filters every usage report takes.
macro_rules! usage_filters {
    ($($extra:expr),*) => {
        &[
            choices(opt("period", "PERIOD", "today, yesterday, week, month, 7d, 30d or all"), PERIODS),
            opt("since", "YYYY-MM-DD", "First day to include"),
            opt("until", "YYYY-MM-DD", "Last day to include"),
            opt("profile", "ALIAS", "Only this profile"),
            opt("model", "MODEL", "Only this model"),
            opt("agent", "ID", "Only this agent"),
            opt("timezone", "TZ", "Time zone for days (default: local)"),
            $($extra),*
        ]
    };
}

pub static ROOT: Cmd = Cmd {
    name: "ringlet",
    about: "Run AI coding agents in isolated profiles against any provider",
    args: &[],
    subs: &[
        ready(cmd(
            "init",
            "Set up ringlet: check the daemon, find agents, create a first profile",
            &[
                short(
                    flag("yes", "Accept every default without asking; an existing profile is kept"),
                    'y',
                ),
                flag("no-profile", "Do not create a profile"),
                flag("api-key-stdin", "Read the API key from stdin (first line)"),
                flag("skip-daemon", "Do not start the daemon"),
            ],
        ))
        .with_examples(&[
            ("Set up interactively: daemon, agents, a first profile", "ringlet init"),
            ("Accept every default without asking", "ringlet init -y"),
        ]),
        group(
            "agents",
            "Installed coding agents",
            &[
                ready(cmd("list", "List agents, whether installed, and their versions", &[])),
                ready(cmd(
                    "inspect",
                    "Show an agent's manifest and detection",
                    &[pos("id", "Agent id")],
                )),
            ],
        )
        .with_examples(&[
            ("Installed agents and their versions", "ringlet agents list"),
            ("An agent's manifest and detection details", "ringlet agents inspect claude"),
        ]),
        group(
            "providers",
            "API providers",
            &[
                ready(cmd("list", "List providers with their default endpoints", &[])),
                ready(cmd(
                    "inspect",
                    "Show a provider's endpoints, auth variable and models",
                    &[pos("id", "Provider id")],
                )),
                group(
                    "key",
                    "Provider keys for proxy targets (kept apart from profile keys)",
                    &[
                        rcmd(
                            "set",
                            "Store a provider's key (read from a hidden prompt or stdin)",
                            &[
                                pos("provider", "Provider id"),
                                flag("api-key-stdin", "Read the key from stdin"),
                            ],
                        ),
                        rcmd(
                            "remove",
                            "Remove a provider's key",
                            &[pos("provider", "Provider id")],
                        ),
                        rcmd("list", "List the providers with a stored key (never the key)", &[]),
                    ],
                )
                .with_examples(&[
                    ("Store a key (hidden prompt)", "ringlet providers key set zai"),
                    (
                        "Store a key read from a file",
                        "ringlet providers key set zai --api-key-stdin < key.txt",
                    ),
                    ("Which providers have a key (never the key)", "ringlet providers key list"),
                    ("Remove a key", "ringlet providers key remove zai"),
                ]),
            ],
        )
        .with_examples(&[
            ("Providers with their default endpoints", "ringlet providers list"),
            ("Every endpoint, auth variable and model of one", "ringlet providers inspect minimax"),
            (
                "Store a provider's key for proxy targets (hidden prompt)",
                "ringlet providers key set zai",
            ),
        ]),
        group(
            "profiles",
            "Profiles: an agent, a provider and a model in an isolated home",
            &[
                rcmd(
                    "create",
                    "Create a profile (the API key is read from a prompt, stdin or the provider's variable)",
                    &[
                        pos("agent", "Agent id"),
                        pos("alias", "Profile name: [a-z0-9][a-z0-9_-]{0,63}"),
                        short(opt("provider", "ID", "Provider id (or the template's)"), 'p'),
                        opt("endpoint", "NAME|URL", "Provider endpoint name, or a URL"),
                        opt("model", "MODEL", "Model (default: the provider's)"),
                        opt("hooks", "A,B", "Hook sets from config.toml to install"),
                        opt("mcp", "A,B", "MCP servers from config.toml to install"),
                        flag("bare", "Write no hooks or MCP servers"),
                        flag("proxy", "Route through the profile's proxy"),
                        opt(
                            "template",
                            "NAME",
                            "Profile template: provider, endpoint, model, hooks, MCP servers (flags override)",
                        ),
                        opt("script", "NAME", "Rhai script to render with (default: the agent's)"),
                        opt(
                            "permission-mode",
                            "MODE",
                            "ask (default), accept-edits, plan, auto or bypass",
                        ),
                        flag("dry-run", "Show what would be written; change nothing"),
                        flag("api-key-stdin", "Read the API key from stdin"),
                        flag("no-alias", "Do not install a shell alias"),
                    ],
                )
                .with_examples(&[
                    (
                        "Claude Code with Anthropic; asks for the key (hidden)",
                        "ringlet profiles create claude work -p anthropic",
                    ),
                    (
                        "Any provider the agent speaks, with a model",
                        "ringlet profiles create claude glm -p zai --model glm-5.1",
                    ),
                    (
                        "A named endpoint (or a URL)",
                        "ringlet profiles create claude cn -p minimax --endpoint china",
                    ),
                    (
                        "The key from a file",
                        "ringlet profiles create codex oa -p openai --api-key-stdin < key.txt",
                    ),
                    (
                        "Show the files and environment; write nothing",
                        "ringlet profiles create opencode oc -p openrouter --dry-run",
                    ),
                    (
                        "Provider, endpoint, model and hooks from a template",
                        "ringlet profiles create claude glm2 --template zai-glm",
                    ),
                ]),
                rcmd("list", "List profiles", &[opt("agent", "ID", "Only profiles of this agent")]),
                rcmd(
                    "templates",
                    "List profile templates (built-in, registry, templates.d)",
                    &[opt("agent", "ID", "Only templates for this agent")],
                ),
                rcmd(
                    "inspect",
                    "Show a profile (the key redacted)",
                    &[pos("alias", "Profile name")],
                ),
                rcmd(
                    "delete",
                    "Delete a profile, its key and its shell alias (the home is kept)",
                    &[
                        pos("alias", "Profile name"),
                        flag(
                            "purge",
                            "Also delete its home; asks first on a terminal (with no terminal, \
                             deletes without asking)",
                        ),
                        short(flag("yes", "Do not ask before --purge deletes the home"), 'y'),
                    ],
                ),
                Cmd {
                    trailing: Some("AGENT_ARGS"),
                    ..rcmd(
                        "run",
                        "Run a profile's agent here, or in a daemon terminal with --remote",
                        &[
                            pos("alias", "Profile name"),
                            flag("remote", "Run in a daemon-owned terminal session"),
                            opt("cols", "N", "Terminal width (--remote)"),
                            opt("rows", "N", "Terminal height (--remote)"),
                            flag("no-sandbox", "Run without the sandbox (--remote)"),
                            opt("bwrap-flags", "FLAGS", "Extra bwrap arguments (--remote)"),
                        ],
                    )
                }
                .with_examples(&[
                    (
                        "The profile's agent, here, straight to its prompt",
                        "ringlet profiles run work",
                    ),
                    (
                        "Arguments after -- go to the agent verbatim",
                        "ringlet profiles run work -- -p \"explain this repo\"",
                    ),
                    (
                        "In a daemon-owned terminal session (attach from anywhere)",
                        "ringlet profiles run work --remote",
                    ),
                ]),
                rcmd(
                    "env",
                    "Print shell-safe export lines for eval",
                    &[pos("alias", "Profile name")],
                ),
            ],
        )
        .with_examples(&[
            (
                "Create a profile: Claude Code with Anthropic (asks for the key)",
                "ringlet profiles create claude work -p anthropic",
            ),
            ("Run its agent here", "ringlet profiles run work"),
            (
                "Arguments after -- go to the agent verbatim",
                "ringlet profiles run work -- -p \"explain this repo\"",
            ),
            ("List profiles", "ringlet profiles list"),
            (
                "Delete a profile with its key, shim and home",
                "ringlet profiles delete work --purge",
            ),
        ]),
        group(
            "aliases",
            "Shell shims in ~/.local/bin that run a profile",
            &[
                rcmd("install", "Install a shim for a profile", &[pos("alias", "Profile name")]),
                rcmd("uninstall", "Remove a profile's shim", &[pos("alias", "Profile name")]),
                rcmd("list", "List installed shims", &[]),
            ],
        )
        .with_examples(&[
            ("A shim: typing `work` runs the profile", "ringlet aliases install work"),
            ("The shims installed", "ringlet aliases list"),
            ("Remove a shim", "ringlet aliases uninstall work"),
        ]),
        group(
            "hooks",
            "Claude Code hooks of a profile",
            &[
                rcmd(
                    "add",
                    "Add a hook",
                    &[
                        pos("alias", "Profile name"),
                        pos("event", "Hook event, e.g. Stop or PostToolUse"),
                        pos("command", "Shell command to run"),
                        opt("matcher", "PATTERN", "Tool matcher (default: all)"),
                    ],
                ),
                rcmd("list", "List a profile's hooks", &[pos("alias", "Profile name")]),
                rcmd(
                    "remove",
                    "Remove a hook",
                    &[
                        pos("alias", "Profile name"),
                        pos("event", "Hook event"),
                        pos("index", "Position in `hooks list`"),
                    ],
                ),
                rcmd(
                    "import",
                    "Import hooks from a JSON file",
                    &[pos("alias", "Profile name"), pos("file", "JSON file")],
                ),
                rcmd("export", "Print a profile's hooks as JSON", &[pos("alias", "Profile name")]),
            ],
        )
        .with_examples(&[
            (
                "Notify when Claude Code stops",
                "ringlet hooks add work Stop 'notify-send \"Claude is done\"'",
            ),
            ("A profile's hooks, numbered", "ringlet hooks list work"),
            ("Remove the first Stop hook", "ringlet hooks remove work Stop 1"),
            (
                "Copy hooks to another profile",
                "ringlet hooks export work > hooks.json; ringlet hooks import other hooks.json",
            ),
        ]),
        group(
            "proxy",
            "The routing proxy of a profile",
            &[
                rcmd(
                    "enable",
                    "Route a profile through its proxy (a port is chosen once and kept)",
                    &[pos("alias", "Profile name"), opt("port", "N", "Pin the proxy's port")],
                ),
                Cmd {
                    hidden: true,
                    ..rcmd(
                        "serve",
                        "The proxy process itself (run by the daemon: config on stdin, listener on fd 3)",
                        &[],
                    )
                },
                rcmd(
                    "disable",
                    "Stop routing a profile through its proxy (the routing is kept)",
                    &[pos("alias", "Profile name")],
                ),
                rcmd("start", "Start a profile's proxy", &[pos("alias", "Profile name")]),
                rcmd("stop", "Stop a profile's proxy", &[pos("alias", "Profile name")]),
                rcmd("stop-all", "Stop every proxy", &[]),
                rcmd("restart", "Restart a profile's proxy", &[pos("alias", "Profile name")]),
                rcmd("status", "Show proxy status", &[optional(pos("alias", "Profile name"))]),
                rcmd(
                    "config",
                    "Print a profile's effective routing (keys redacted)",
                    &[pos("alias", "Profile name")],
                ),
                rcmd(
                    "logs",
                    "Print a profile's proxy log",
                    &[
                        pos("alias", "Profile name"),
                        opt("lines", "N", "Last N lines (default 50)"),
                        flag("follow", "Keep printing new requests"),
                    ],
                ),
                group(
                    "route",
                    "Routing rules",
                    &[
                        rcmd(
                            "add",
                            "Add a routing rule",
                            &[
                                pos("alias", "Profile name"),
                                pos("name", "Rule name: [a-z0-9][a-z0-9_-]*"),
                                pos(
                                    "condition",
                                    "always, thinking, tokens > N, tools >= N, model ~ GLOB; \
                                     and, or, not, ( )",
                                ),
                                pos("target", "<provider>[@<endpoint>]/<model>"),
                                opt("priority", "N", "Higher is tried first (default 0)"),
                            ],
                        ),
                        rcmd(
                            "list",
                            "List routing rules in the order they are tried",
                            &[pos("alias", "Profile name")],
                        ),
                        rcmd(
                            "remove",
                            "Remove a routing rule",
                            &[pos("alias", "Profile name"), pos("name", "Rule name")],
                        ),
                        rcmd(
                            "move",
                            "Give a rule a new priority",
                            &[
                                pos("alias", "Profile name"),
                                pos("name", "Rule name"),
                                required(opt("priority", "N", "Higher is tried first")),
                            ],
                        ),
                    ],
                )
                .with_examples(&[
                    (
                        "Long requests to Z.ai",
                        "ringlet proxy route add work long 'tokens > 100000' zai/glm-5.1 --priority 10",
                    ),
                    (
                        "A fallback tried last",
                        "ringlet proxy route add work fallback always zai@china/glm-5.1 --priority -10",
                    ),
                    ("The rules in the order they are tried", "ringlet proxy route list work"),
                    ("Try a rule earlier", "ringlet proxy route move work long --priority 20"),
                ]),
                group(
                    "alias",
                    "Model aliases",
                    &[
                        rcmd(
                            "set",
                            "Map a requested model name to a target",
                            &[
                                pos("alias", "Profile name"),
                                pos("from", "Model name the agent asks for"),
                                pos("to", "<provider>[@<endpoint>]/<model>"),
                            ],
                        ),
                        rcmd("list", "List model aliases", &[pos("alias", "Profile name")]),
                        rcmd(
                            "remove",
                            "Remove a model alias",
                            &[pos("alias", "Profile name"), pos("from", "Model name")],
                        ),
                    ],
                )
                .with_examples(&[
                    (
                        "Send requests for `fast` to GLM",
                        "ringlet proxy alias set work fast zai/glm-5.1",
                    ),
                    ("The model aliases", "ringlet proxy alias list work"),
                ]),
                group(
                    "budget",
                    "Spend limits of a profile's proxy",
                    &[
                        rcmd(
                            "set",
                            "Set the daily and/or monthly limit in USD (`none` removes one)",
                            &[
                                pos("alias", "Profile name"),
                                opt("daily", "USD", "Daily limit"),
                                opt("monthly", "USD", "Monthly limit"),
                            ],
                        ),
                        rcmd("show", "Show the limits", &[pos("alias", "Profile name")]),
                    ],
                )
                .with_examples(&[
                    ("At most $20 a day", "ringlet proxy budget set work --daily 20"),
                    ("Remove the monthly limit", "ringlet proxy budget set work --monthly none"),
                    ("The limits", "ringlet proxy budget show work"),
                ]),
            ],
        )
        .with_examples(&[
            ("Route a profile through its proxy", "ringlet proxy enable work"),
            (
                "Long requests to another provider",
                "ringlet proxy route add work long 'tokens > 100000' zai/glm-5.1 --priority 10",
            ),
            ("The effective routing, keys redacted", "ringlet proxy config work"),
            ("Every proxy's state", "ringlet proxy status"),
            ("Follow a proxy's requests", "ringlet proxy logs work --follow"),
        ]),
        Cmd {
            runnable: true,
            ready: true,
            args: usage_filters!(),
            ..group(
                "usage",
                "Token usage and cost (a summary without a subcommand)",
                &[
                    rcmd("daily", "One row per day", usage_filters!()),
                    rcmd("models", "One row per model", usage_filters!()),
                    rcmd("profiles", "One row per profile", usage_filters!()),
                    rcmd(
                        "export",
                        "One row per day, profile and model",
                        usage_filters!(required(choices(
                            opt("format", "FORMAT", "csv or json"),
                            &["csv", "json"]
                        ))),
                    ),
                    rcmd(
                        "import-claude",
                        "Import existing Claude Code history",
                        &[
                            opt("claude-dir", "DIR", "Claude config dir (default: ~/.claude)"),
                            opt(
                                "profile",
                                "ALIAS",
                                "Attribute it to this profile (default: \"(default)\")",
                            ),
                        ],
                    ),
                ],
            )
        }
        .with_examples(&[
            ("Totals: tokens by kind, cost, sessions, runtime", "ringlet usage"),
            ("One row per day, the last 30 days", "ringlet usage daily --period 30d"),
            ("One row per model, one profile", "ringlet usage models --profile work"),
            ("Day x profile x model as CSV", "ringlet usage export --format csv > usage.csv"),
            (
                "Count old Claude Code history, once",
                "ringlet usage import-claude --claude-dir ~/backup/.claude",
            ),
        ]),
        group(
            "registry",
            "Manifests, scripts, prices and templates that arrive after the binary",
            &[
                Cmd {
                    hidden: true,
                    ..rcmd(
                        "index",
                        "Write registry.json for a registry tree (`make registry` runs it with --repo)",
                        &[
                            pos("dir", "The registry tree"),
                            opt("channel", "C", "The channel to name (default: stable)"),
                            opt(
                                "repo",
                                "DIR",
                                "First assemble this repository's registry into <dir>",
                            ),
                        ],
                    )
                },
                rcmd(
                    "sync",
                    "Fetch the registry from [registry] url, or import a directory or bundle",
                    &[
                        flag("force", "Fetch every artifact, even unchanged ones"),
                        flag("offline", "Use the cache only; touch no network"),
                        opt("channel", "C", "Sync this channel (default: [registry] channel)"),
                        opt("from", "DIR|FILE.tar|URL", "Import from here instead"),
                    ],
                ),
                rcmd(
                    "inspect",
                    "Show channel, commit, pin, last sync, counts and overridden built-ins",
                    &[flag("changes", "List command-bearing changes against the built-ins")],
                ),
                rcmd(
                    "pin",
                    "Pin syncs to a ref: a tag, a branch, or a commit (only that one is accepted)",
                    &[
                        optional(pos("ref", "Tag, branch or commit hash")),
                        flag("clear", "Remove the pin"),
                    ],
                ),
                rcmd("rollback", "Return to the previous commit kept", &[]),
                rcmd(
                    "export",
                    "Write the current commit as one bundle, for `sync --from` elsewhere",
                    &[pos("file", "The bundle to write (.tar)")],
                ),
            ],
        )
        .with_examples(&[
            ("Fetch the registry", "ringlet registry sync"),
            ("Import a directory or bundle instead", "ringlet registry sync --from ./registry.tar"),
            ("Pin syncs to a tag", "ringlet registry pin v1.4"),
            ("Back to the previous commit", "ringlet registry rollback"),
        ]),
        group(
            "terminal",
            "Terminal sessions run by the daemon",
            &[
                rcmd("list", "List sessions", &[]),
                rcmd("info", "Show a session", &[pos("id", "Session id")]),
                rcmd("kill", "End a session's processes", &[pos("id", "Session id")]),
                rcmd(
                    "signal",
                    "Send a signal to a session's processes (INT, TERM, KILL, HUP, QUIT, \
                     WINCH, CONT, STOP)",
                    &[pos("id", "Session id"), pos("signal", "Signal name or number")],
                ),
                rcmd(
                    "attach",
                    "Attach this terminal to a session (Ctrl-] detaches)",
                    &[pos("id", "Session id")],
                ),
            ],
        )
        .with_examples(&[
            ("Sessions, their state, clients and sandbox", "ringlet terminal list"),
            ("This terminal joins a session; Ctrl-] detaches", "ringlet terminal attach t1"),
            ("End a session's processes", "ringlet terminal kill t1"),
        ]),
        Cmd {
            runnable: true,
            args: &[
                flag("stay-alive", "Never exit for idleness"),
                flag("foreground", "Run in this process instead of in the background"),
                hidden(opt("log-file", "PATH", "Log to this file")),
            ],
            ..group(
                "daemon",
                "The background daemon (starts it in the background without a subcommand)",
                &[
                    ready(cmd(
                        "status",
                        "Show whether the daemon runs (exit 3 if not); never starts one",
                        &[],
                    )),
                    ready(cmd(
                        "stop",
                        "Stop the daemon; never starts one",
                        &[flag("force", "End running terminal sessions without asking")],
                    )),
                    rcmd(
                        "token",
                        "Print the HTTP API token",
                        &[flag("rotate", "Replace it with a new one")],
                    ),
                    rcmd(
                        "events",
                        "Show the daemon's recent events (profiles, sessions, proxies, usage...)",
                        &[
                            opt("limit", "N", "At most N events, the newest (default 50)"),
                            opt("type", "TYPES", "Only these event types, comma-separated"),
                        ],
                    ),
                ],
            )
        }
        .with_examples(&[
            ("Whether the daemon runs (exit 3 if not); never starts one", "ringlet daemon status"),
            ("Start in the background, never idle out", "ringlet daemon --stay-alive"),
            ("Run in this terminal, log to stderr", "ringlet daemon --foreground"),
            ("Stop it", "ringlet daemon stop"),
            ("What happened lately", "ringlet daemon events --limit 20"),
        ]),
        group(
            "env",
            "Agent setup tasks",
            &[rcmd(
                "setup",
                "Run an agent's setup task in a profile",
                &[pos("alias", "Profile name"), pos("task", "Task name from the agent manifest")],
            )],
        )
        .with_examples(&[
            ("Run Claude Code's `doctor` task in a profile", "ringlet env setup work doctor"),
        ]),
        examples(
            rcmd("stats", "Profile statistics", &[]),
            &[("Runs, time and cost per profile", "ringlet stats")],
        ),
        rcmd("doctor", "Check setup, keys, sandbox, PATH and shims; say what to fix", &[])
        .with_examples(&[
            ("What works and what to fix", "ringlet doctor"),
            ("The same checks as JSON", "ringlet doctor --json"),
        ]),
        rcmd(
            "ui",
            "Open the web UI with a one-time login link (printed too)",
            &[
                flag("no-open", "Only print the link; do not start a browser"),
                flag("sessions", "List the browsers signed in (browser sessions)"),
                opt("revoke", "ID|all", "Sign a browser session out (or all of them)"),
            ],
        )
        .with_examples(&[
            ("Open the web UI, signed in by a one-time link", "ringlet ui"),
            ("Only print the link", "ringlet ui --no-open"),
            ("The browsers signed in", "ringlet ui --sessions"),
            ("Sign every browser out", "ringlet ui --revoke all"),
        ]),
        rcmd(
            "completions",
            "Print a shell completion script (bash, zsh or fish)",
            &[choices(pos("shell", "Shell"), &["bash", "zsh", "fish"])],
        ),
        Cmd {
            hidden: true,
            ..rcmd("manpage", "Print the man page (roff), generated from this help", &[])
        },
        Cmd {
            hidden: true,
            ..rcmd(
                "__complete",
                "Print live names for shell completion (asks a running daemon, never starts one)",
                &[choices(
                    pos("kind", "What to list"),
                    &["profiles", "agents", "providers", "sessions"],
                )],
            )
        },
    ],
    runnable: false,
    ready: true,
    trailing: None,
    hidden: false,
    examples: &[
        (
            "Create a profile: Claude Code with Anthropic (asks for the key)",
            "ringlet profiles create claude work -p anthropic",
        ),
        ("Run its agent here", "ringlet profiles run work"),
        ("Arguments after -- go to the agent", "ringlet profiles run work -- -p \"explain this repo\""),
        ("Open the web UI", "ringlet ui"),
        ("Token usage and cost per day", "ringlet usage daily --period 30d"),
    ],
};

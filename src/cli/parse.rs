//! Turns `argv` into plain data with lexopt, driven by the command table in
//! [`super::commands`], and renders the help screens from the same table.
//!
//! `-h/--help` and `-V/--version` return as soon as they are seen, before
//! any file, socket or engine is touched. Global options (`--json`,
//! `--log-level`, `--color`) are accepted anywhere.
//!
//! Mistakes are [`UsageError`]s (exit 2), one line each, named after the
//! command they were made in, with the closest known name offered for a
//! mistyped command, option or value ([`crate::suggest`]).

use std::ffi::OsString;
use std::fmt::Write as _;

use super::commands::{Arg, Cmd, Kind, ROOT};
use super::style::Choice;
use crate::logger::Level;
use crate::suggest::closest;

/// The long options every command takes (see [`parse`]).
const GLOBAL_LONGS: &[&str] = &["json", "log-level", "color", "help", "version"];

/// A command-line mistake: reported as `ringlet: <command>: <why>`, exit 2.
#[derive(Debug)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// Options that apply to every command.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Global {
    pub json: bool,
    pub log_level: Option<Level>,
    /// `--color auto|always|never` (applied by `main` before parsing, so
    /// even a usage error is coloured as asked).
    pub color: Choice,
}

/// What the command line asks for.
#[derive(Debug)]
pub enum Parsed {
    Help(String),
    Version,
    Run(Invocation),
}

/// A parsed command: its path in the tree and the arguments it was given.
#[derive(Debug)]
pub struct Invocation {
    pub path: Vec<&'static str>,
    pub cmd: &'static Cmd,
    /// Options in the order given: (long name, value or "" for flags).
    options: Vec<(&'static str, String)>,
    positionals: Vec<String>,
    /// Arguments after `--` for commands with `trailing`; `profiles run`
    /// (profiles issue) passes them to the agent.
    #[cfg_attr(not(test), allow(dead_code))]
    pub trailing: Vec<String>,
}

impl Invocation {
    /// `profiles create`, for messages.
    pub fn name(&self) -> String {
        self.path.join(" ")
    }

    pub fn flag(&self, name: &str) -> bool {
        self.options.iter().any(|(n, _)| *n == name)
    }

    /// The last value given for option `name`.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.options.iter().rev().find(|(n, _)| *n == name).map(|(_, v)| v.as_str())
    }

    /// Option `--name`'s value as a `T`. A value that is not one is a usage
    /// error (exit 2), like any other mistake on the command line, though
    /// found after parsing: `--limit takes a number, not `many``.
    pub fn parsed<T: std::str::FromStr>(
        &self,
        name: &str,
        what: &str,
    ) -> Result<Option<T>, UsageError> {
        self.value(name).map(|v| parsed_value(&format!("--{name}"), v, what)).transpose()
    }

    /// The positional argument declared as `name`.
    pub fn arg(&self, name: &str) -> Option<&str> {
        let index = self
            .cmd
            .args
            .iter()
            .filter(|a| a.kind == Kind::Positional)
            .position(|a| a.name == name)?;
        self.positionals.get(index).map(String::as_str)
    }
}

/// `value` (given as `shown`: `--limit`, `<INDEX>`) as a `T`, or a usage
/// error saying what it takes.
pub fn parsed_value<T: std::str::FromStr>(
    shown: &str,
    value: &str,
    what: &str,
) -> Result<T, UsageError> {
    value.parse().map_err(|_| UsageError(format!("{shown} takes {what}, not `{value}`")))
}

/// Parses the process's own arguments.
pub fn parse_env() -> Result<(Global, Parsed), UsageError> {
    parse(std::env::args_os().skip(1))
}

/// Parses `args` (without the program name).
pub fn parse(args: impl IntoIterator<Item = OsString>) -> Result<(Global, Parsed), UsageError> {
    use lexopt::prelude::*;

    let mut parser = lexopt::Parser::from_args(args);
    let mut global = Global::default();
    let mut cmd: &'static Cmd = &ROOT;
    let mut path: Vec<&'static str> = Vec::new();
    let mut options: Vec<(&'static str, String)> = Vec::new();
    let mut positionals: Vec<String> = Vec::new();
    let mut trailing: Vec<String> = Vec::new();
    let lex = |path: &[&str], e: lexopt::Error| at(path, e.to_string());

    while let Some(arg) = parser.next().map_err(|e| lex(&path, e))? {
        match arg {
            Short('h') | Long("help") => return Ok((global, Parsed::Help(help(&path, cmd)))),
            Short('V') | Long("version") => return Ok((global, Parsed::Version)),
            Long("json") => global.json = true,
            Long("log-level") => {
                let v = parser.value().map_err(|e| lex(&path, e))?;
                let v = v.string().map_err(|e| lex(&path, e))?;
                let level = Level::parse(&v).map_err(|e| at(&path, e.to_string()))?;
                global.log_level = Some(level);
            }
            Long("color") => {
                let v = parser.value().map_err(|e| lex(&path, e))?;
                let v = v.string().map_err(|e| lex(&path, e))?;
                global.color = Choice::parse(&v).ok_or_else(|| {
                    at(&path, not_a_choice("--color", &v, &["auto", "always", "never"]))
                })?;
            }
            Long(_) | Short(_) => {
                let (spec, shown, long) = match arg {
                    Long(name) => {
                        (find_long(cmd, name), format!("--{name}"), Some(name.to_string()))
                    }
                    Short(c) => (find_short(cmd, c), format!("-{c}"), None),
                    Value(_) => unreachable!(),
                };
                let Some(spec) = spec else {
                    if cmd.trailing.is_some() {
                        // `profiles run work -p hi`: the agent's own options.
                        let attached =
                            parser.optional_value().map(|v| v.to_string_lossy().into_owned());
                        let rest: Vec<String> = parser
                            .raw_args()
                            .map(|raw| raw.map(|a| a.to_string_lossy().into_owned()).collect())
                            .unwrap_or_default();
                        let option = match (&long, attached) {
                            (Some(_), Some(v)) => format!("{shown}={v}"),
                            (None, Some(v)) => format!("{shown}{v}"),
                            _ => shown.clone(),
                        };
                        let mut line = vec!["ringlet".to_string()];
                        line.extend(path.iter().map(|p| p.to_string()));
                        line.extend(positionals.iter().cloned());
                        // Ringlet's own options given so far stay before `--`.
                        for (name, value) in &options {
                            line.push(format!("--{name}"));
                            if !value.is_empty() {
                                line.push(value.clone());
                            }
                        }
                        line.push("--".into());
                        line.push(option);
                        line.extend(rest);
                        return Err(at(
                            &path,
                            format!(
                                "unknown option {shown}; the agent's own arguments go after \
                                 `--`: `{}`",
                                line.join(" ")
                            ),
                        ));
                    }
                    let hint = match &long {
                        Some(name) => did_you_mean(closest(name, long_names(cmd)), "--"),
                        None => String::new(),
                    };
                    return Err(at(
                        &path,
                        format!("unknown option {shown}{hint} (see `{} --help`)", full(&path)),
                    ));
                };
                match spec.kind {
                    Kind::Flag => {
                        if parser.optional_value().is_some() {
                            return Err(at(&path, format!("{shown} takes no value")));
                        }
                        options.push((spec.name, String::new()));
                    }
                    Kind::Value(_) => {
                        let v = parser.value().map_err(|e| lex(&path, e))?;
                        let v = v.string().map_err(|e| lex(&path, e))?;
                        if !spec.choices.is_empty() && !spec.choices.contains(&v.as_str()) {
                            return Err(at(&path, not_a_choice(&shown, &v, spec.choices)));
                        }
                        options.push((spec.name, v));
                    }
                    Kind::Positional => unreachable!("positionals are not found as options"),
                }
            }
            Value(v) => {
                let v = v.string().map_err(|e| lex(&path, e))?;
                if positionals.is_empty() && !cmd.subs.is_empty() {
                    if let Some(sub) = cmd.subs.iter().find(|s| s.name == v) {
                        cmd = sub;
                        path.push(sub.name);
                        continue;
                    }
                    if positional_count(cmd) == 0 {
                        let visible = cmd.subs.iter().filter(|s| !s.hidden).map(|s| s.name);
                        let message = match closest(&v, visible.clone()) {
                            Some(name) => {
                                format!("unknown command `{v}`; did you mean `{name}`?")
                            }
                            None => format!(
                                "unknown command `{v}` (one of: {})",
                                visible.collect::<Vec<_>>().join(", ")
                            ),
                        };
                        return Err(at(&path, message));
                    }
                }
                if positionals.len() < positional_count(cmd) {
                    positionals.push(v);
                } else if cmd.trailing.is_some() {
                    trailing.push(v);
                } else {
                    return Err(at(&path, format!("unexpected argument `{v}`")));
                }
            }
        }
    }

    if !cmd.runnable {
        // A bare group (or bare `ringlet`) shows what it contains.
        return Ok((global, Parsed::Help(help(&path, cmd))));
    }
    // Options given before a subcommand must belong to the final command.
    for (name, _) in &options {
        if find_long(cmd, name).is_none() {
            let hint = did_you_mean(closest(name, long_names(cmd)), "--");
            return Err(at(&path, format!("unknown option --{name}{hint}")));
        }
    }
    let declared: Vec<&Arg> = cmd.args.iter().filter(|a| a.kind == Kind::Positional).collect();
    if let Some(missing) = declared.iter().skip(positionals.len()).find(|a| a.required) {
        return Err(at(
            &path,
            format!(
                "missing <{}> (usage: {})",
                missing.name.to_uppercase(),
                usage_line(&path, cmd)
            ),
        ));
    }
    if let Some(missing) = cmd.args.iter().find(|a| {
        a.required && a.kind != Kind::Positional && !options.iter().any(|(n, _)| *n == a.name)
    }) {
        return Err(at(&path, format!("missing required option --{}", missing.name)));
    }
    Ok((global, Parsed::Run(Invocation { path, cmd, options, positionals, trailing })))
}

/// A mistake made in the command at `path`: `profiles create: <why>`, or
/// just `<why>` at the top, where `main`'s `ringlet: ` names the command.
fn at(path: &[&str], why: String) -> UsageError {
    if path.is_empty() { UsageError(why) } else { UsageError(format!("{}: {why}", path.join(" "))) }
}

/// `ringlet profiles create`, for hints.
fn full(path: &[&str]) -> String {
    ["ringlet"].iter().chain(path).copied().collect::<Vec<_>>().join(" ")
}

/// `; did you mean `--force`?`, or nothing.
fn did_you_mean(name: Option<&str>, prefix: &str) -> String {
    name.map(|n| format!("; did you mean `{prefix}{n}`?")).unwrap_or_default()
}

/// `--period must be one of today, ..., not `weak`; did you mean `week`?`
fn not_a_choice(shown: &str, value: &str, choices: &[&str]) -> String {
    let hint = did_you_mean(closest(value, choices.iter().copied()), "");
    format!("{shown} must be one of {}, not `{value}`{hint}", choices.join(", "))
}

/// The long options `cmd` takes, with the global ones, for suggestions.
fn long_names(cmd: &'static Cmd) -> impl Iterator<Item = &'static str> + Clone {
    cmd.args
        .iter()
        .filter(|a| a.kind != Kind::Positional && !a.hidden)
        .map(|a| a.name)
        .chain(GLOBAL_LONGS.iter().copied())
}

fn find_long(cmd: &'static Cmd, name: &str) -> Option<&'static Arg> {
    cmd.args.iter().find(|a| a.kind != Kind::Positional && a.name == name)
}

fn find_short(cmd: &'static Cmd, c: char) -> Option<&'static Arg> {
    cmd.args.iter().find(|a| a.kind != Kind::Positional && a.short == Some(c))
}

fn positional_count(cmd: &Cmd) -> usize {
    cmd.args.iter().filter(|a| a.kind == Kind::Positional).count()
}

fn usage_line(path: &[&str], cmd: &Cmd) -> String {
    let mut line = String::from("ringlet");
    for p in path {
        line.push(' ');
        line.push_str(p);
    }
    if !cmd.subs.is_empty() {
        line.push_str(if cmd.runnable { " [COMMAND]" } else { " <COMMAND>" });
    }
    if cmd.args.iter().any(|a| a.kind != Kind::Positional && !a.hidden) {
        line.push_str(" [OPTIONS]");
    }
    for a in cmd.args.iter().filter(|a| a.kind == Kind::Positional) {
        let name = a.name.to_uppercase();
        line.push_str(&if a.required { format!(" <{name}>") } else { format!(" [{name}]") });
    }
    if let Some(t) = cmd.trailing {
        line.push_str(&format!(" [-- {t}...]"));
    }
    line
}

/// The help screen of the command at `path`.
pub fn help(path: &[&str], cmd: &Cmd) -> String {
    let mut out = String::new();
    let title =
        if path.is_empty() { "ringlet".to_string() } else { format!("ringlet {}", path.join(" ")) };
    let _ = writeln!(out, "{title}: {}", cmd.about);
    if !cmd.ready {
        let _ = writeln!(out, "(not available in this build yet: exits with code 1)");
    }
    let _ = writeln!(out, "\nUsage: {}", usage_line(path, cmd));

    let mut rows: Vec<(String, String)> = Vec::new();
    let section = |out: &mut String, title: &str, rows: &mut Vec<(String, String)>| {
        if rows.is_empty() {
            return;
        }
        let width = rows.iter().map(|(l, _)| l.chars().count()).max().unwrap_or(0);
        let _ = writeln!(out, "\n{title}:");
        for (left, right) in rows.drain(..) {
            let _ = writeln!(out, "  {left:width$}  {right}");
        }
    };
    for sub in cmd.subs.iter().filter(|s| !s.hidden) {
        let pending = if sub.ready || !sub.subs.is_empty() { "" } else { " (not available yet)" };
        rows.push((sub.name.to_string(), format!("{}{pending}", sub.about)));
    }
    section(&mut out, "Commands", &mut rows);
    for a in cmd.args.iter().filter(|a| a.kind == Kind::Positional) {
        rows.push((format!("<{}>", a.name.to_uppercase()), a.help.to_string()));
    }
    section(&mut out, "Arguments", &mut rows);
    for a in cmd.args.iter().filter(|a| a.kind != Kind::Positional && !a.hidden) {
        let short = a.short.map_or("    ".to_string(), |c| format!("-{c}, "));
        let value = match a.kind {
            Kind::Value(m) => format!(" <{m}>"),
            _ => String::new(),
        };
        let req = if a.required { " (required)" } else { "" };
        rows.push((format!("{short}--{}{value}", a.name), format!("{}{req}", a.help)));
    }
    section(&mut out, "Options", &mut rows);
    rows.push(("    --json".into(), "Print machine-readable JSON".into()));
    rows.push(("    --log-level <LEVEL>".into(), "error, warn, info or debug".into()));
    rows.push((
        "    --color <WHEN>".into(),
        "auto (on a terminal, unless NO_COLOR is set), always or never".into(),
    ));
    rows.push(("-h, --help".into(), "Print help".into()));
    if path.is_empty() {
        rows.push(("-V, --version".into(), "Print version".into()));
    }
    section(&mut out, "Global options", &mut rows);
    if !cmd.examples.is_empty() {
        out.push_str("\nExamples:\n");
        for (what, line) in cmd.examples {
            let _ = writeln!(out, "  # {what}\n  $ {line}");
        }
    }
    if path.is_empty() {
        out.push_str(
            "\nEnvironment: RINGLET_CONFIG_DIR, RINGLET_DAEMON_ENDPOINT, RINGLET_LOG, XDG_CONFIG_HOME, XDG_RUNTIME_DIR, NO_COLOR, CLICOLOR_FORCE\n",
        );
        out.push_str(
            "\nExit status: 0 success, 1 failure, 2 usage error, 3 `daemon status` with no daemon; \
             `profiles run` exits with the agent's own code\n",
        );
    }
    out
}

/// The section titles of a help screen.
const SECTIONS: &[&str] = &[
    "Usage",
    "Commands",
    "Arguments",
    "Options",
    "Global options",
    "Examples",
    "Environment",
    "Exit status",
];

/// The help screen for stdout: its section titles (`Usage:`, `Options:`,
/// ...) in the header tone when stdout takes colour. [`help`] itself stays
/// plain, for the man page and completions built from it.
pub fn colour_help(text: &str) -> std::borrow::Cow<'_, str> {
    use super::style::{Tone, out, stdout_coloured};
    if !stdout_coloured() {
        return text.into();
    }
    let mut coloured = String::with_capacity(text.len() + 256);
    for line in text.split_inclusive('\n') {
        let body = line.trim_end_matches('\n');
        let title = body.split_once(':').map(|(t, _)| t).filter(|t| SECTIONS.contains(t));
        match title {
            Some(t) => {
                coloured.push_str(&out(Tone::Header, &format!("{t}:")));
                coloured.push_str(&line[t.len() + 1..]);
            }
            None => coloured.push_str(line),
        }
    }
    coloured.into()
}

/// Every command in the tree with its path, `ringlet` itself (the empty
/// path) first, depth first: what the man page, the completion scripts and
/// the tests walk. Hidden commands, and those under them, only if `hidden`.
pub fn command_paths(hidden: bool) -> Vec<(Vec<&'static str>, &'static Cmd)> {
    type Out = Vec<(Vec<&'static str>, &'static Cmd)>;
    fn walk(cmd: &'static Cmd, path: &mut Vec<&'static str>, hidden: bool, out: &mut Out) {
        out.push((path.clone(), cmd));
        for sub in cmd.subs.iter().filter(|s| hidden || !s.hidden) {
            path.push(sub.name);
            walk(sub, path, hidden, out);
            path.pop();
        }
    }
    let mut out = Vec::new();
    walk(&ROOT, &mut Vec::new(), hidden, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_from(args: &[&str]) -> Result<(Global, Parsed), UsageError> {
        parse(args.iter().map(OsString::from))
    }

    fn run(args: &[&str]) -> Invocation {
        match parse_from(args) {
            Ok((_, Parsed::Run(inv))) => inv,
            Ok((_, other)) => panic!("{args:?} parsed as {other:?}"),
            Err(e) => panic!("{args:?}: {e}"),
        }
    }

    fn err(args: &[&str]) -> String {
        match parse_from(args) {
            Err(e) => e.0,
            Ok(other) => panic!("{args:?} should fail, parsed as {other:?}"),
        }
    }

    #[test]
    fn help_and_version_win_immediately() {
        assert!(matches!(parse_from(&["-V"]).unwrap().1, Parsed::Version));
        assert!(matches!(parse_from(&["--version", "bogus"]).unwrap().1, Parsed::Version));
        let Parsed::Help(h) = parse_from(&["profiles", "create", "--help"]).unwrap().1 else {
            panic!()
        };
        assert!(h.starts_with("ringlet profiles create:"), "{h}");
        assert!(h.contains("-p, --provider <ID>"), "{h}");
        assert!(!h.contains("not implemented yet"), "{h}");
        let Parsed::Help(h) = parse_from(&["registry", "pin", "--help"]).unwrap().1 else {
            panic!()
        };
        assert!(h.contains("--clear") && !h.contains("not implemented yet"), "{h}");
        // Help even when required arguments are missing.
        assert!(matches!(parse_from(&["profiles", "create", "-h"]).unwrap().1, Parsed::Help(_)));
    }

    #[test]
    fn bare_groups_show_their_commands() {
        let Parsed::Help(h) = parse_from(&[]).unwrap().1 else { panic!() };
        assert!(h.contains("profiles") && h.contains("Global options"), "{h}");
        let Parsed::Help(h) = parse_from(&["proxy", "route"]).unwrap().1 else { panic!() };
        assert!(h.contains("Usage: ringlet proxy route <COMMAND>"), "{h}");
    }

    #[test]
    fn globals_anywhere() {
        let (g, _) = parse_from(&["agents", "list", "--json", "--log-level", "debug"]).unwrap();
        assert_eq!(g, Global { json: true, log_level: Some(Level::Debug), ..Global::default() });
        let (g, _) = parse_from(&["--color", "never", "agents", "list"]).unwrap();
        assert_eq!(g.color, Choice::Never);
        let (g, _) = parse_from(&["agents", "list", "--color=always"]).unwrap();
        assert_eq!(g.color, Choice::Always);
        assert!(
            err(&["agents", "list", "--color", "sometimes"]).contains("--color must be one of")
        );
        let (g, _) = parse_from(&["--json", "agents", "list"]).unwrap();
        assert!(g.json);
        assert!(err(&["--log-level", "loud", "agents", "list"]).contains("unknown log level"));
    }

    #[test]
    fn profiles_create_full() {
        let inv = run(&[
            "profiles",
            "create",
            "claude",
            "work",
            "-p",
            "minimax",
            "--endpoint=china",
            "--model",
            "MiniMax-M2.1",
            "--hooks",
            "a,b",
            "--bare",
            "--dry-run",
            "--api-key-stdin",
        ]);
        assert_eq!(inv.name(), "profiles create");
        assert_eq!(inv.arg("agent"), Some("claude"));
        assert_eq!(inv.arg("alias"), Some("work"));
        assert_eq!(inv.value("provider"), Some("minimax"));
        assert_eq!(inv.value("endpoint"), Some("china"));
        assert!(inv.flag("bare") && inv.flag("dry-run") && !inv.flag("proxy"));
        assert!(inv.cmd.ready);
    }

    #[test]
    fn mistakes_are_one_line_errors() {
        assert!(
            err(&["profiles", "create", "claude"]).starts_with("profiles create: missing <ALIAS>")
        );
        assert!(err(&["profiles", "frobnicate"]).contains("unknown command `frobnicate`"));
        assert!(err(&["agents", "list", "--bogus"]).contains("unknown option --bogus"));
        assert!(err(&["agents", "list", "extra"]).contains("unexpected argument `extra`"));
        assert!(err(&["agents", "list", "--json=1"]).contains("--json"));
        assert!(err(&["daemon", "--stay-alive=yes"]).contains("takes no value"));
        assert!(err(&["usage", "--period", "fortnight"]).contains("must be one of today"));
        assert!(err(&["usage", "export"]).contains("missing required option --format"));
        assert!(err(&["profiles", "create", "a", "b", "-p"]).contains("missing argument"));
    }

    #[test]
    fn run_collects_agent_args_after_double_dash() {
        let inv = run(&["profiles", "run", "work", "--remote", "--", "--model", "x", "-p"]);
        assert_eq!(inv.arg("alias"), Some("work"));
        assert!(inv.flag("remote"));
        assert_eq!(inv.trailing, ["--model", "x", "-p"]);
        assert!(err(&["profiles", "run", "work", "--model"]).contains("unknown option --model"));
    }

    #[test]
    fn runnable_groups_and_optional_positionals() {
        let inv = run(&["daemon", "--stay-alive", "--foreground"]);
        assert_eq!(inv.path, ["daemon"]);
        assert!(inv.flag("stay-alive") && inv.flag("foreground"));
        assert_eq!(run(&["daemon", "status"]).path, ["daemon", "status"]);
        assert_eq!(run(&["usage", "--period", "7d"]).value("period"), Some("7d"));
        assert_eq!(run(&["usage", "daily", "--period", "all"]).path, ["usage", "daily"]);
        assert_eq!(run(&["proxy", "status"]).arg("alias"), None);
        assert_eq!(run(&["proxy", "status", "work"]).arg("alias"), Some("work"));
        assert_eq!(run(&["proxy", "route", "list", "w"]).path, ["proxy", "route", "list"]);
    }

    /// Splits an example's command line as a shell would (quotes only; the
    /// examples use no other shell syntax in their arguments), up to a
    /// redirection or a second command.
    fn shell_words(line: &str) -> Vec<String> {
        let mut words = Vec::new();
        let mut word: Option<String> = None;
        let mut quote: Option<char> = None;
        for c in line.chars() {
            match (quote, c) {
                (Some(q), c) if c == q => quote = None,
                (Some(_), c) => word.get_or_insert_default().push(c),
                (None, '\'' | '"') => {
                    quote = Some(c);
                    word.get_or_insert_default();
                }
                (None, '<' | '>' | ';') => break,
                (None, c) if c.is_whitespace() => words.extend(word.take()),
                (None, c) => word.get_or_insert_default().push(c),
            }
        }
        words.extend(word);
        words
    }

    #[test]
    fn every_group_and_main_command_has_examples_that_parse() {
        let main_commands =
            ["init", "profiles create", "profiles run", "usage", "daemon", "doctor", "ui", "stats"];
        for (path, cmd) in command_paths(true) {
            let name = path.join(" ");
            let group = !cmd.subs.is_empty() && !cmd.hidden;
            if group || main_commands.contains(&name.as_str()) {
                assert!(!cmd.examples.is_empty(), "`{name}` has no examples");
                let mut args = path.clone();
                args.push("--help");
                let Parsed::Help(h) = parse_from(&args).unwrap().1 else { panic!() };
                assert!(h.contains("\nExamples:\n  # "), "{name}: {h}");
            }
            for (what, line) in cmd.examples {
                assert!(!what.is_empty() && line.starts_with("ringlet "), "{name}: {line}");
                let words = shell_words(line);
                let args: Vec<&str> = words.iter().skip(1).map(String::as_str).collect();
                match parse_from(&args) {
                    Ok((_, Parsed::Run(_))) => {}
                    other => panic!("{name}: example `{line}` does not run: {other:?}"),
                }
            }
        }
        assert_eq!(shell_words("ringlet a 'b c' \"d\" < f"), ["ringlet", "a", "b c", "d"]);
    }

    #[test]
    fn suggestions_and_the_double_dash_hint() {
        assert_eq!(err(&["profile"]), "unknown command `profile`; did you mean `profiles`?");
        assert_eq!(err(&["agents", "lst"]), "agents: unknown command `lst`; did you mean `list`?");
        assert!(err(&["frob"]).starts_with("unknown command `frob` (one of: init, agents,"));
        assert!(!err(&["frob"]).contains("manpage"), "hidden commands are not offered");
        assert_eq!(
            err(&["daemon", "stop", "--forse"]),
            "daemon stop: unknown option --forse; did you mean `--force`? \
             (see `ringlet daemon stop --help`)"
        );
        assert!(err(&["agents", "list", "--jsno"]).contains("did you mean `--json`?"));
        assert!(err(&["usage", "--period", "weak"]).ends_with("not `weak`; did you mean `week`?"));
        assert_eq!(
            err(&["profiles", "run", "work", "-p", "hi"]),
            "profiles run: unknown option -p; the agent's own arguments go after `--`: \
             `ringlet profiles run work -- -p hi`"
        );
        assert!(
            err(&["profiles", "run", "work", "-pxyz"])
                .ends_with("`ringlet profiles run work -- -pxyz`")
        );
        assert!(
            err(&["profiles", "run", "work", "--remote", "--cols", "90", "-p", "hi"])
                .ends_with("`ringlet profiles run work --remote --cols 90 -- -p hi`")
        );
        assert!(
            err(&["profiles", "run", "work", "--model=a", "b"])
                .ends_with("`ringlet profiles run work -- --model=a b`")
        );
        // Top level: no command to name, so main's `ringlet: ` is the only prefix.
        assert!(err(&["--log-level", "loud"]).starts_with("unknown log level"));
    }

    #[test]
    fn every_command_has_help_and_about() {
        for (path, cmd) in command_paths(true) {
            assert!(!cmd.about.is_empty(), "{path:?}");
            let mut args: Vec<&str> = path.clone();
            args.push("--help");
            match parse_from(&args).unwrap().1 {
                Parsed::Help(h) => assert!(h.contains("Usage: ringlet"), "{path:?}"),
                other => panic!("{path:?}: {other:?}"),
            }
        }
    }
}

//! Turns `argv` into plain data with lexopt, driven by the command table in
//! [`super::commands`], and renders the help screens from the same table.
//!
//! `-h/--help` and `-V/--version` return as soon as they are seen, before
//! any file, socket or engine is touched. Global options (`--json`,
//! `--log-level`) are accepted anywhere.

use std::ffi::OsString;
use std::fmt::Write as _;

use super::commands::{Arg, Cmd, Kind, ROOT};
use crate::logger::Level;

/// A command-line mistake: reported as `ringlet: <command>: <why>`, exit 1.
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
    let here = |path: &[&str]| if path.is_empty() { "ringlet".to_string() } else { path.join(" ") };
    let lex = |path: &[&str], e: lexopt::Error| UsageError(format!("{}: {e}", here(path)));

    while let Some(arg) = parser.next().map_err(|e| lex(&path, e))? {
        match arg {
            Short('h') | Long("help") => return Ok((global, Parsed::Help(help(&path, cmd)))),
            Short('V') | Long("version") => return Ok((global, Parsed::Version)),
            Long("json") => global.json = true,
            Long("log-level") => {
                let v = parser.value().map_err(|e| lex(&path, e))?;
                let v = v.string().map_err(|e| lex(&path, e))?;
                let level =
                    Level::parse(&v).map_err(|e| UsageError(format!("{}: {e}", here(&path))))?;
                global.log_level = Some(level);
            }
            Long(_) | Short(_) => {
                let (spec, shown) = match arg {
                    Long(name) => (find_long(cmd, name), format!("--{name}")),
                    Short(c) => (find_short(cmd, c), format!("-{c}")),
                    Value(_) => unreachable!(),
                };
                let Some(spec) = spec else {
                    return Err(UsageError(format!(
                        "{}: unknown option {shown} (see `{} --help`)",
                        here(&path),
                        ["ringlet"].iter().chain(&path).copied().collect::<Vec<_>>().join(" ")
                    )));
                };
                match spec.kind {
                    Kind::Flag => {
                        if parser.optional_value().is_some() {
                            return Err(UsageError(format!(
                                "{}: {shown} takes no value",
                                here(&path)
                            )));
                        }
                        options.push((spec.name, String::new()));
                    }
                    Kind::Value(_) => {
                        let v = parser.value().map_err(|e| lex(&path, e))?;
                        let v = v.string().map_err(|e| lex(&path, e))?;
                        if !spec.choices.is_empty() && !spec.choices.contains(&v.as_str()) {
                            return Err(UsageError(format!(
                                "{}: {shown} must be one of {}, not `{v}`",
                                here(&path),
                                spec.choices.join(", ")
                            )));
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
                        return Err(UsageError(format!(
                            "{}: unknown command `{v}` (one of: {})",
                            here(&path),
                            cmd.subs.iter().map(|s| s.name).collect::<Vec<_>>().join(", ")
                        )));
                    }
                }
                if positionals.len() < positional_count(cmd) {
                    positionals.push(v);
                } else if cmd.trailing.is_some() {
                    trailing.push(v);
                } else {
                    return Err(UsageError(format!("{}: unexpected argument `{v}`", here(&path))));
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
            return Err(UsageError(format!("{}: unknown option --{name}", here(&path))));
        }
    }
    let declared: Vec<&Arg> = cmd.args.iter().filter(|a| a.kind == Kind::Positional).collect();
    if let Some(missing) = declared.iter().skip(positionals.len()).find(|a| a.required) {
        return Err(UsageError(format!(
            "{}: missing <{}> (usage: {})",
            here(&path),
            missing.name.to_uppercase(),
            usage_line(&path, cmd)
        )));
    }
    if let Some(missing) = cmd.args.iter().find(|a| {
        a.required && a.kind != Kind::Positional && !options.iter().any(|(n, _)| *n == a.name)
    }) {
        return Err(UsageError(format!(
            "{}: missing required option --{}",
            here(&path),
            missing.name
        )));
    }
    Ok((global, Parsed::Run(Invocation { path, cmd, options, positionals, trailing })))
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
        let _ = writeln!(out, "(not implemented yet: parsed and checked, then exits with code 2)");
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
        let pending = if sub.ready || !sub.subs.is_empty() { "" } else { " (not implemented yet)" };
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
            "\nEnvironment: RINGLET_CONFIG_DIR, RINGLET_DAEMON_ENDPOINT, RINGLET_LOG, XDG_CONFIG_HOME, XDG_RUNTIME_DIR\n",
        );
    }
    out
}

/// Every command path in the tree, for tests.
#[cfg(test)]
pub fn all_paths() -> Vec<(Vec<&'static str>, &'static Cmd)> {
    fn walk(
        cmd: &'static Cmd,
        path: &mut Vec<&'static str>,
        out: &mut Vec<(Vec<&'static str>, &'static Cmd)>,
    ) {
        out.push((path.clone(), cmd));
        for sub in cmd.subs {
            path.push(sub.name);
            walk(sub, path, out);
            path.pop();
        }
    }
    let mut out = Vec::new();
    walk(&ROOT, &mut Vec::new(), &mut out);
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
        assert_eq!(g, Global { json: true, log_level: Some(Level::Debug) });
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

    #[test]
    fn every_command_has_help_and_about() {
        for (path, cmd) in all_paths() {
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

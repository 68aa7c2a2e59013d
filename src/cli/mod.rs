//! The client side: parse the command line, route each command to its
//! module (`cli/<group>.rs`, each with `run`-style functions that build a
//! request, send it and render the reply), and the small output helpers they
//! share (tables, JSON, warnings).
//!
//! Output goes through [`Out`], which returns write errors instead of
//! panicking, so `ringlet agents list | head -1` ends quietly.

mod agents;
mod attach;
pub mod commands;
mod completions;
mod daemon;
mod doctor;
mod hooks;
mod init;
mod launch;
mod man;
pub mod parse;
mod profiles;
mod prompt;
mod providers;
mod proxies;
mod proxy;
mod registry;
pub mod style;
mod terminal;
mod ui;
mod usage;

use std::io::{self, Write};

use anyhow::Result;
use serde::Serialize;

pub use parse::{Global, Invocation, Parsed, UsageError};

use crate::paths::Paths;
use crate::protocol::ReportKind;

/// A quiet exit with a given code (the message, if any, was printed already
/// or is carried here), e.g. `daemon status` with no daemon exits 3.
#[derive(Debug)]
pub struct Exit {
    pub code: u8,
    /// Printed as `ringlet: <message>` when present.
    pub message: Option<String>,
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.message.as_deref().unwrap_or("exit"))
    }
}

impl std::error::Error for Exit {}

/// What every command needs: global options and, lazily, the paths.
pub struct Ctx {
    pub global: Global,
}

impl Ctx {
    pub fn paths(&self) -> Result<Paths> {
        Paths::from_env()
    }
}

/// Runs a parsed command.
pub fn run(global: Global, inv: Invocation) -> Result<()> {
    let ctx = Ctx { global };
    if !inv.cmd.ready {
        return Err(not_implemented(&inv));
    }
    let result = match inv.path.as_slice() {
        ["agents", "list"] => agents::list(&ctx),
        ["agents", "inspect"] => agents::inspect(&ctx, inv.arg("id").unwrap_or_default()),
        ["providers", "list"] => providers::list(&ctx),
        ["providers", "inspect"] => providers::inspect(&ctx, inv.arg("id").unwrap_or_default()),
        ["providers", "key", action] => proxy::key(&ctx, &inv, action),
        ["proxy", "enable"] => proxy::enable(&ctx, &inv),
        ["proxy", "disable"] => proxy::disable(&ctx, &inv),
        ["proxy", "config"] => proxy::config(&ctx, &inv),
        ["proxy", "route", action] => proxy::route(&ctx, &inv, action),
        ["proxy", "alias", action] => proxy::alias_cmd(&ctx, &inv, action),
        ["proxy", "budget", action] => proxy::budget(&ctx, &inv, action),
        ["daemon"] => daemon::start(&ctx, &inv),
        ["daemon", "status"] => daemon::status(&ctx),
        ["daemon", "stop"] => daemon::stop(&ctx, &inv),
        ["daemon", "token"] => daemon::token(&ctx, &inv),
        ["daemon", "events"] => daemon::events(&ctx, &inv),
        ["terminal", "list"] => terminal::list(&ctx),
        ["terminal", "info"] => terminal::info(&ctx, inv.arg("id").unwrap_or_default()),
        ["terminal", "kill"] => terminal::kill(&ctx, inv.arg("id").unwrap_or_default()),
        ["terminal", "signal"] => terminal::signal(
            &ctx,
            inv.arg("id").unwrap_or_default(),
            inv.arg("signal").unwrap_or_default(),
        ),
        ["terminal", "attach"] => attach::run(&ctx, inv.arg("id").unwrap_or_default()),
        ["profiles", "create"] => profiles::create(&ctx, &inv),
        ["profiles", "list"] => profiles::list(&ctx, &inv),
        ["profiles", "templates"] => profiles::templates(&ctx, &inv),
        ["profiles", "inspect"] => profiles::inspect(&ctx, inv.arg("alias").unwrap_or_default()),
        ["profiles", "delete"] => profiles::delete(&ctx, &inv),
        ["profiles", "run"] => profiles::run(&ctx, &inv),
        ["profiles", "env"] => profiles::env(&ctx, inv.arg("alias").unwrap_or_default()),
        ["hooks", action] => hooks::hooks(&ctx, &inv, action),
        ["aliases", action] => hooks::aliases(&ctx, &inv, action),
        ["env", "setup"] => profiles::env_setup(&ctx, &inv),
        ["stats"] => profiles::stats(&ctx),
        ["doctor"] => doctor::run(&ctx),
        ["ui"] => ui::run(&ctx, &inv),
        ["init"] => init::run(&ctx, &inv),
        ["usage"] => usage::report(&ctx, &inv, ReportKind::Summary),
        ["usage", "daily"] => usage::report(&ctx, &inv, ReportKind::Daily),
        ["usage", "models"] => usage::report(&ctx, &inv, ReportKind::Models),
        ["usage", "profiles"] => usage::report(&ctx, &inv, ReportKind::Profiles),
        ["usage", "export"] => usage::report(&ctx, &inv, ReportKind::Export),
        ["usage", "import-claude"] => usage::import_claude(&ctx, &inv),
        ["proxy", "start"] => proxies::start(&ctx, inv.arg("alias").unwrap_or_default()),
        ["proxy", "stop"] => proxies::stop(&ctx, inv.arg("alias").unwrap_or_default()),
        ["proxy", "restart"] => proxies::restart(&ctx, inv.arg("alias").unwrap_or_default()),
        ["proxy", "stop-all"] => proxies::stop_all(&ctx),
        ["proxy", "status"] => proxies::status(&ctx, inv.arg("alias")),
        ["proxy", "logs"] => proxies::logs(&ctx, &inv),
        ["proxy", "serve"] => crate::proxy::serve::run(),
        ["registry", "sync"] => registry::sync(&ctx, &inv),
        ["registry", "inspect"] => registry::inspect(&ctx, &inv),
        ["registry", "pin"] => registry::pin(&ctx, &inv),
        ["registry", "rollback"] => registry::rollback(&ctx),
        ["registry", "export"] => registry::export(&ctx, &inv),
        ["registry", "index"] => crate::registry::index::cli(&inv, ctx.global.json),
        ["completions"] => completions::print_script(&inv),
        ["manpage"] => man::print(),
        ["__complete"] => completions::live(&ctx, &inv),
        _ => Err(not_implemented(&inv)),
    };
    // Name the command in every error: `ringlet: <command>: <why>`.
    result.map_err(|e| if e.is::<Exit>() { e } else { e.context(inv.name()) })
}

/// A command in the table that this build does not carry out: a failure
/// (exit 1), never exit 2, which means a usage error.
fn not_implemented(inv: &Invocation) -> anyhow::Error {
    Exit { code: 1, message: Some(format!("{}: not available in this build", inv.name())) }.into()
}

/// Sends `request` (starting the daemon if needed). With `--json` the
/// reply's data is printed to `out` as it came and `None` is returned;
/// otherwise the data decoded for the caller to render.
pub fn fetch<T: serde::de::DeserializeOwned>(
    ctx: &Ctx,
    request: &crate::protocol::Request,
    out: &mut Out,
) -> Result<Option<T>> {
    let data = crate::client::request(&ctx.paths()?, request)?;
    if ctx.global.json {
        out.json(&data)?;
        return Ok(None);
    }
    Ok(Some(serde_json::from_value(data)?))
}

/// Buffered stdout whose errors propagate (a closed pipe ends the command).
pub struct Out {
    inner: io::BufWriter<Stdout>,
}

impl Out {
    pub fn new() -> Out {
        Out { inner: io::BufWriter::new(Stdout(io::stdout().lock())) }
    }

    pub fn line(&mut self, text: impl std::fmt::Display) -> io::Result<()> {
        writeln!(self.inner, "{text}")
    }

    pub fn json<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        // Encoded first, written second: a write error keeps its
        // [`StdoutClosed`] mark (serde_json would wrap it and hide the mark).
        let mut text = serde_json::to_vec_pretty(value)?;
        text.push(b'\n');
        self.inner.write_all(&text)?;
        Ok(())
    }

    pub fn finish(mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// The mark on a write error that means "stdout was closed by its reader"
/// (`ringlet ... | head`): the one broken pipe that ends a command quietly
/// with exit 0. A broken pipe anywhere else (the daemon's socket) is an error.
#[derive(Debug)]
pub struct StdoutClosed;

impl std::fmt::Display for StdoutClosed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("stdout was closed")
    }
}

impl std::error::Error for StdoutClosed {}

impl StdoutClosed {
    /// Marks `e` when it is a broken pipe on stdout.
    pub fn mark(e: io::Error) -> io::Error {
        if e.kind() == io::ErrorKind::BrokenPipe {
            io::Error::new(io::ErrorKind::BrokenPipe, StdoutClosed)
        } else {
            e
        }
    }

    /// Whether `err` is, or was caused by, a marked stdout write error.
    pub fn is_in(err: &anyhow::Error) -> bool {
        err.chain().any(|e| {
            e.is::<StdoutClosed>()
                || e.downcast_ref::<io::Error>()
                    .and_then(io::Error::get_ref)
                    .is_some_and(|inner| inner.is::<StdoutClosed>())
        })
    }
}

/// Locked stdout whose broken-pipe errors carry the [`StdoutClosed`] mark.
pub struct Stdout(pub io::StdoutLock<'static>);

impl Write for Stdout {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf).map_err(StdoutClosed::mark)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush().map_err(StdoutClosed::mark)
    }
}

/// Prints warnings to stderr as `ringlet: warning: ...` (`warning:` in the
/// warning tone on a terminal).
pub fn warn_all(warnings: &[String]) {
    let mut err = io::stderr().lock();
    let label = style::err(style::Tone::Warn, "warning:");
    for w in warnings {
        let _ = writeln!(err, "ringlet: {label} {w}");
    }
}

/// A plain-text table: a header row and left-aligned columns two spaces
/// apart. Empty cells print as `-`; a cell holding an RFC 3339 instant
/// prints as a person reads it ("3 minutes ago", [`crate::time::relative`]),
/// which is what every table with a time wants (`--json` keeps the instant).
/// On a terminal the header row is in the
/// header tone and the cells of a `STATE`, `STATUS` or `INSTALLED` column in the tone of
/// their state ([`style::state_tone`]); the padding is computed on the plain
/// text, so colour never shifts a column.
pub struct Table {
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(header: &[&str]) -> Table {
        Table { rows: vec![header.iter().map(|h| h.to_string()).collect()] }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(
            cells
                .into_iter()
                .map(|c| match c {
                    c if c.is_empty() => "-".into(),
                    c if crate::time::looks_rfc3339(&c) => crate::time::relative(&c),
                    c => c,
                })
                .collect(),
        );
    }

    pub fn write(&self, out: &mut Out) -> io::Result<()> {
        let columns = self.rows.iter().map(Vec::len).max().unwrap_or(0);
        let widths: Vec<usize> = (0..columns)
            .map(|i| {
                self.rows
                    .iter()
                    .filter_map(|r| r.get(i))
                    .map(|c| c.chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let states: Vec<bool> = self.rows[0]
            .iter()
            .map(|h| matches!(h.as_str(), "STATE" | "STATUS" | "INSTALLED"))
            .collect();
        for (r, row) in self.rows.iter().enumerate() {
            let mut line = String::new();
            let last = row.len().saturating_sub(1);
            // The last cell with text: trailing padding is never printed.
            let end = row.iter().rposition(|c| !c.trim().is_empty()).unwrap_or(0);
            for (i, cell) in row.iter().enumerate().take(end + 1) {
                let tone = if r == 0 {
                    None
                } else if states.get(i) == Some(&true) {
                    cell.split_whitespace().next().and_then(style::state_tone)
                } else {
                    None
                };
                match tone {
                    Some(tone) => line.push_str(&style::out(tone, cell)),
                    None => line.push_str(cell),
                }
                if i < last && i < end {
                    let pad = widths[i] - cell.chars().count() + 2;
                    line.extend(std::iter::repeat_n(' ', pad));
                }
            }
            if r == 0 {
                out.line(style::out(style::Tone::Header, line.trim_end()))?;
            } else {
                out.line(line.trim_end())?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_implemented_leaf_is_routed() {
        // A ready command that `run` does not route would answer "not
        // implemented yet" while claiming to be implemented.
        let routed = [
            "agents list",
            "agents inspect",
            "providers list",
            "providers inspect",
            "providers key set",
            "providers key remove",
            "providers key list",
            "proxy enable",
            "proxy disable",
            "proxy config",
            "proxy route add",
            "proxy route list",
            "proxy route remove",
            "proxy route move",
            "proxy alias set",
            "proxy alias list",
            "proxy alias remove",
            "proxy budget set",
            "proxy budget show",
            "daemon",
            "daemon status",
            "daemon stop",
            "daemon token",
            "daemon events",
            "terminal list",
            "terminal info",
            "terminal kill",
            "terminal signal",
            "terminal attach",
            "profiles create",
            "profiles list",
            "profiles templates",
            "profiles inspect",
            "profiles delete",
            "profiles run",
            "profiles env",
            "hooks add",
            "hooks list",
            "hooks remove",
            "hooks import",
            "hooks export",
            "aliases install",
            "aliases uninstall",
            "aliases list",
            "env setup",
            "stats",
            "doctor",
            "ui",
            "init",
            "usage",
            "usage daily",
            "usage models",
            "usage profiles",
            "usage export",
            "usage import-claude",
            "proxy start",
            "proxy stop",
            "proxy restart",
            "proxy stop-all",
            "proxy status",
            "proxy logs",
            "proxy serve",
            "registry sync",
            "registry inspect",
            "registry pin",
            "registry rollback",
            "registry export",
            "registry index",
            "completions",
            "manpage",
            "__complete",
        ];
        for (path, cmd) in parse::command_paths(true) {
            if cmd.ready && cmd.runnable {
                assert!(
                    routed.contains(&path.join(" ").as_str()),
                    "{path:?} is ready but not routed"
                );
            }
        }
    }
}

//! `ringlet`: one binary that is both the shell CLI and the background daemon
//! that manages AI coding agents, their profiles and their usage.
//!
//! This file is the table of contents: the modules, `main`, and the one exit
//! path. `main` parses the command line ([`cli::parse`]); `--help` and
//! `--version` are answered before any file or socket is touched; everything
//! else runs through [`cli::run`], which talks to the daemon ([`client`],
//! [`daemon`]) over the wire protocol ([`protocol`]).

mod catalog;
mod cli;
mod client;
mod config;
mod daemon;
mod detect;
mod doctor;
mod fsutil;
mod logger;
mod manifests;
mod net;
mod paths;
mod profiles;
mod protocol;
mod proxy;
mod registry;
mod scripting;
mod secrets;
mod templates;
mod terminal;
mod time;
mod usage;

use std::io::{self, Write};
use std::process::ExitCode;

use cli::{Exit, Parsed, UsageError};

fn main() -> ExitCode {
    abort_on_panic();
    // Before anything else: a terminal session's helper (hidden; see
    // terminal/helper.rs) starts fast and touches no config or daemon.
    if let Some(code) = terminal::helper::main_if_asked() {
        return code;
    }
    // Debug builds: LiteLLM started as the supervisor would, for the tests.
    #[cfg(debug_assertions)]
    if let Some(code) = proxy::litellm::main_if_asked() {
        return code;
    }
    let json = std::env::args_os().any(|a| a == "--json");
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => report(&err, json),
    }
}

/// A panic is a bug: it is reported as usual (the daemon's stderr is its
/// log) and the process ends there, in every build. Release builds compile
/// with `panic = "abort"` (Cargo.toml: 0.94 MB smaller); this hook makes
/// debug builds, whose tests run the same binary, end the same way instead
/// of unwinding one thread. The daemon's core dumps are off, so an abort
/// leaves no memory image with a key in it.
fn abort_on_panic() {
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        report(info);
        std::process::abort();
    }));
}

fn run() -> anyhow::Result<()> {
    let (global, parsed) = cli::parse::parse_env()?;
    let invocation = match parsed {
        Parsed::Help(text) => {
            return Ok(cli::Stdout(io::stdout().lock()).write_all(text.as_bytes())?);
        }
        Parsed::Version => {
            let mut out = cli::Stdout(io::stdout().lock());
            return Ok(writeln!(out, "ringlet {}", env!("CARGO_PKG_VERSION"))?);
        }
        Parsed::Run(invocation) => invocation,
    };
    if invocation.path == ["daemon"] && invocation.flag("foreground") {
        // Before any thread exists: a daemon never keeps the caller's keys.
        daemon::reexec_with_allowed_env()?;
    }
    // The daemon logs at info by default, the CLI only warnings.
    let default_level =
        if invocation.path == ["daemon"] { logger::Level::Info } else { logger::Level::Warn };
    let env_level = std::env::var("RINGLET_LOG").ok().and_then(|v| logger::Level::parse(&v).ok());
    logger::set_level(global.log_level.or(env_level).unwrap_or(default_level));
    cli::run(global, invocation)
}

/// The one place errors become output: `ringlet: <what>: <why>` on stderr
/// (or an error object on stdout with `--json`) and an exit code. A closed
/// stdout (`ringlet ... | head`) is a normal end, not an error; any other
/// broken pipe (the daemon's socket) is one.
fn report(err: &anyhow::Error, json: bool) -> ExitCode {
    if cli::StdoutClosed::is_in(err) {
        return ExitCode::SUCCESS;
    }
    let (code, kind) = if let Some(exit) = err.downcast_ref::<Exit>() {
        if exit.message.is_none() {
            return ExitCode::from(exit.code);
        }
        (exit.code, if exit.code == 2 { "not_implemented" } else { "error" })
    } else if err.downcast_ref::<UsageError>().is_some() {
        (1, "usage")
    } else if let Some(d) = err.downcast_ref::<client::DaemonError>() {
        (1, d.code.as_str())
    } else {
        (1, "error")
    };
    let message = format!("{err:#}");
    if json {
        let body =
            serde_json::json!({"success": false, "error": {"code": kind, "message": message}});
        let _ = writeln!(io::stdout().lock(), "{body}");
    } else {
        let _ = writeln!(io::stderr().lock(), "ringlet: {message}");
    }
    ExitCode::from(code)
}

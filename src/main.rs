//! `ringlet`: one binary that is both the shell CLI and the background daemon
//! that manages AI coding agents, their profiles and their usage.
//!
//! This file is the table of contents: the modules, `main`, and the one exit
//! path. `main` parses the command line ([`cli::parse`]); `--help` and
//! `--version` are answered before any file or socket is touched; everything
//! else runs through [`cli::run`], which talks to the daemon ([`client`],
//! [`daemon`]) over the wire protocol ([`protocol`]).
//!
//! The process starts at the C `main` below, not at std's: see [`entry`].

// Our own C `main` instead of std's start-up (see `entry`); test builds keep
// the test harness's.
#![cfg_attr(not(test), no_main)]

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
// The system's SQLite, loaded when a database is first opened rather than
// at every start (see the file).
#[cfg(all(
    target_os = "linux",
    target_env = "gnu",
    feature = "sqlite",
    not(feature = "bundled-sqlite")
))]
mod sqlite_lazy;
mod suggest;
mod templates;
mod terminal;
mod time;
mod usage;

use std::io::{self, Write};
use std::process::ExitCode;

use cli::{Exit, Parsed, UsageError};

/// The process's entry point, called by the C runtime as `main`.
///
/// std's own start-up (`lang_start`), which a Rust `fn main` gets, costs
/// about 0.25 ms of a 2 ms `ringlet --help`: to find the main thread's
/// stack guard it reads and parses `/proc/self/maps` (glibc's
/// `pthread_getattr_np`), then maps an alternate signal stack and installs
/// SIGSEGV/SIGBUS handlers whose only job is to print "has overflowed its
/// stack" before dying. This does the parts that matter itself, in
/// [`entry`]; what is left out is that message (a stack overflow still ends
/// the process, by SIGSEGV) and the name `main` in a panic message of the
/// main thread. `std::env::args` needs no start-up on glibc (std reads them
/// from `.init_array`).
#[cfg(not(test))]
#[unsafe(no_mangle)]
pub extern "C" fn main(
    _argc: std::ffi::c_int,
    _argv: *const *const std::ffi::c_char,
) -> std::ffi::c_int {
    entry::init();
    let code = run_main();
    // std flushes stdout at the end of its `main`; so do we (a line-buffered
    // stdout holds at most a partial line, but hold nothing back).
    let _ = io::stdout().flush();
    entry::code(code)
}

/// What std's start-up does that Ringlet needs, done without it.
#[cfg(not(test))]
mod entry {
    use std::ffi::c_int;
    use std::process::ExitCode;

    unsafe extern "C" {
        fn signal(signum: c_int, handler: usize) -> usize;
        fn poll(fds: *mut PollFd, nfds: u64, timeout: c_int) -> c_int;
    }

    #[repr(C)]
    struct PollFd {
        fd: c_int,
        events: i16,
        revents: i16,
    }

    const SIGPIPE: c_int = 13;
    const SIG_IGN: usize = 1;
    const POLLNVAL: i16 = 0x20;

    /// As std does before `main`: stdin, stdout and stderr are open (a
    /// closed one is opened on `/dev/null`, so no file the program opens
    /// later takes its number and receives its output), and SIGPIPE is
    /// ignored (a write to a closed pipe or socket is an EPIPE error, which
    /// the CLI and the daemon handle, rather than death; std gives every
    /// child it spawns the default back).
    pub fn init() {
        let mut fds = [0, 1, 2].map(|fd| PollFd { fd, events: 0, revents: 0 });
        // SAFETY: `fds` is an array of three pollfd structs that outlives
        // the call; a zero timeout never blocks.
        let polled = unsafe { poll(fds.as_mut_ptr(), 3, 0) };
        if polled > 0 {
            for pfd in fds.iter().filter(|p| p.revents & POLLNVAL != 0) {
                // The lowest free descriptor is the one closed: open takes it.
                let null = rustix::fs::open(
                    "/dev/null",
                    rustix::fs::OFlags::RDWR,
                    rustix::fs::Mode::empty(),
                );
                let opened = null.map(std::os::fd::IntoRawFd::into_raw_fd);
                if opened != Ok(pfd.fd) {
                    std::process::abort();
                }
            }
        }
        // SAFETY: SIG_IGN is a valid disposition for SIGPIPE, set before
        // any other thread exists.
        unsafe { signal(SIGPIPE, SIG_IGN) };
    }

    /// The number `code` stands for (std keeps it private to its own
    /// start-up; codes are bytes, so the search is short).
    pub fn code(code: ExitCode) -> c_int {
        (0..=255u8).find(|&n| ExitCode::from(n) == code).map_or(1, c_int::from)
    }
}

/// Everything `main` does, as std's `main` would have.
#[cfg_attr(test, allow(dead_code))]
fn run_main() -> ExitCode {
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
    // Before parsing, so that a usage error is coloured as asked too.
    cli::style::init(color_choice(std::env::args_os().skip(1)));
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
            let text = cli::parse::colour_help(&text);
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

/// `--color` as given (`--color X` or `--color=X`, the last one wins,
/// none after `--`): `auto` when absent or not a choice, which the parser
/// then reports as a usage error.
fn color_choice(args: impl Iterator<Item = std::ffi::OsString>) -> cli::style::Choice {
    let mut choice = cli::style::Choice::Auto;
    let mut args = args.map(|a| a.to_string_lossy().into_owned());
    while let Some(arg) = args.next() {
        let value = match arg.as_str() {
            "--" => break,
            "--color" => args.next(),
            other => other.strip_prefix("--color=").map(String::from),
        };
        if let Some(c) = value.as_deref().and_then(cli::style::Choice::parse) {
            choice = c;
        }
    }
    choice
}

/// The one place errors become output: `ringlet: <what>: <why>` on stderr
/// (or an error object on stdout with `--json`) and an exit code: 2 for a
/// usage error (a mistake on the command line), 1 for any other failure,
/// or the code an [`Exit`] carries (3 from `daemon status` with no daemon,
/// the agent's own from `profiles run`). A closed stdout (`ringlet ... |
/// head`) is a normal end, not an error; any other broken pipe (the
/// daemon's socket) is one.
fn report(err: &anyhow::Error, json: bool) -> ExitCode {
    if cli::StdoutClosed::is_in(err) {
        return ExitCode::SUCCESS;
    }
    let (code, kind) = if let Some(exit) = err.downcast_ref::<Exit>() {
        if exit.message.is_none() {
            return ExitCode::from(exit.code);
        }
        (exit.code, if exit.code == 2 { "usage" } else { "error" })
    } else if err.downcast_ref::<UsageError>().is_some() {
        (2, "usage")
    } else if let Some(d) = err.downcast_ref::<client::DaemonError>() {
        (1, d.code.as_str())
    } else {
        (1, "error")
    };
    let message = one_prefix(&format!("{err:#}"));
    if json {
        let body =
            serde_json::json!({"success": false, "error": {"code": kind, "message": message}});
        let _ = writeln!(io::stdout().lock(), "{body}");
    } else {
        let prefix = cli::style::err(cli::style::Tone::Error, "ringlet:");
        let _ = writeln!(io::stderr().lock(), "{prefix} {message}");
    }
    ExitCode::from(code)
}

/// The message without a `ringlet: ` of its own (an error relayed from the
/// daemon or a child that already named the program): one prefix, printed
/// by [`report`].
fn one_prefix(message: &str) -> String {
    let mut text = message;
    while let Some(rest) = text.strip_prefix("ringlet: ") {
        text = rest;
    }
    text.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_colour_choice_is_read_before_parsing() {
        use cli::style::Choice;
        let choice = |args: &[&str]| color_choice(args.iter().map(Into::into));
        assert_eq!(choice(&[]), Choice::Auto);
        assert_eq!(choice(&["agents", "list", "--color", "always"]), Choice::Always);
        assert_eq!(choice(&["--color=never", "agents"]), Choice::Never);
        assert_eq!(choice(&["--color=never", "--color", "always"]), Choice::Always);
        assert_eq!(choice(&["--color", "purple"]), Choice::Auto);
        assert_eq!(choice(&["profiles", "run", "w", "--", "--color", "always"]), Choice::Auto);
    }

    #[test]
    fn errors_carry_one_prefix() {
        assert_eq!(one_prefix("ringlet: unknown command `x`"), "unknown command `x`");
        assert_eq!(one_prefix("agents: unknown command `x`"), "agents: unknown command `x`");
        assert_eq!(one_prefix("ringlet: ringlet: x"), "x");
    }
}

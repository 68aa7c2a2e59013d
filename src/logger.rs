//! A tiny leveled logger: one line per message on stderr, with a timestamp.
//!
//! The CLI logs to the terminal; a detached daemon first points its stderr at
//! `logs/daemon.log` ([`log_to_file`]), so panics and stray writes land there
//! too. The file is capped: when it grows past [`LOG_CAP_BYTES`] it is
//! renamed to `daemon.log.1` and a fresh one is opened in its place.
//! Nothing here ever formats a secret; callers must not pass one.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU8, Ordering};

use anyhow::{Context, Result, bail};

/// Size at which the daemon log is rotated.
pub const LOG_CAP_BYTES: u64 = 1 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Error = 1,
    Warn = 2,
    Info = 3,
    Debug = 4,
}

impl Level {
    pub fn parse(s: &str) -> Result<Level> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "error" => Level::Error,
            "warn" | "warning" => Level::Warn,
            "info" => Level::Info,
            "debug" | "trace" => Level::Debug,
            _ => bail!("unknown log level `{s}` (expected error, warn, info or debug)"),
        })
    }

    fn name(self) -> &'static str {
        match self {
            Level::Error => "ERROR",
            Level::Warn => "WARN",
            Level::Info => "INFO",
            Level::Debug => "DEBUG",
        }
    }
}

static LEVEL: AtomicU8 = AtomicU8::new(Level::Warn as u8);

/// The log file and how much has been written to it, when logging to a file.
/// Touched by every thread that logs, under the mutex.
static FILE: Mutex<Option<(PathBuf, u64)>> = Mutex::new(None);

pub fn set_level(level: Level) {
    LEVEL.store(level as u8, Ordering::Relaxed);
}

pub fn enabled(level: Level) -> bool {
    level as u8 <= LEVEL.load(Ordering::Relaxed)
}

/// Points stderr at `path` (append, 0600), rotating it first if it is full.
pub fn log_to_file(path: &Path) -> Result<()> {
    if let Some(dir) = path.parent() {
        crate::fsutil::create_private_dir(dir)?;
    }
    let size = reopen(path)?;
    *FILE.lock().unwrap_or_else(|p| p.into_inner()) = Some((path.to_path_buf(), size));
    Ok(())
}

fn reopen(path: &Path) -> Result<u64> {
    if fs::metadata(path).map(|m| m.len() >= LOG_CAP_BYTES).unwrap_or(false) {
        let _ = fs::rename(path, path.with_extension("log.1"));
    }
    // Never through a link: a regular file of ours only.
    let file: File = crate::fsutil::open_private(path, crate::fsutil::Access::Append, 0o600)
        .with_context(|| format!("opening log file {}", path.display()))?;
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    rustix::stdio::dup2_stderr(&file).context("redirecting stderr to the log file")?;
    Ok(size)
}

/// Writes one log line. Use the macros instead.
pub fn write(level: Level, args: std::fmt::Arguments<'_>) {
    let line = format!("{} {:5} {args}\n", crate::time::now_rfc3339(), level.name());
    let mut file = FILE.lock().unwrap_or_else(|p| p.into_inner());
    // Logging must never take the program down, so write errors are ignored.
    let _ = std::io::stderr().write_all(line.as_bytes());
    if let Some((path, size)) = file.as_mut() {
        *size += line.len() as u64;
        if *size >= LOG_CAP_BYTES
            && let Ok(new_size) = reopen(path)
        {
            *size = new_size;
        }
    }
}

#[macro_export]
macro_rules! error {
    ($($arg:tt)*) => {
        if $crate::logger::enabled($crate::logger::Level::Error) {
            $crate::logger::write($crate::logger::Level::Error, format_args!($($arg)*))
        }
    };
}

#[macro_export]
macro_rules! warn {
    ($($arg:tt)*) => {
        if $crate::logger::enabled($crate::logger::Level::Warn) {
            $crate::logger::write($crate::logger::Level::Warn, format_args!($($arg)*))
        }
    };
}

#[macro_export]
macro_rules! info {
    ($($arg:tt)*) => {
        if $crate::logger::enabled($crate::logger::Level::Info) {
            $crate::logger::write($crate::logger::Level::Info, format_args!($($arg)*))
        }
    };
}

#[macro_export]
macro_rules! debug {
    ($($arg:tt)*) => {
        if $crate::logger::enabled($crate::logger::Level::Debug) {
            $crate::logger::write($crate::logger::Level::Debug, format_args!($($arg)*))
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_parse_and_order() {
        assert_eq!(Level::parse("WARN").unwrap(), Level::Warn);
        assert_eq!(Level::parse("debug").unwrap(), Level::Debug);
        assert!(Level::parse("loud").is_err());
        assert!(Level::Error < Level::Debug);
    }
}

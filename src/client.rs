//! The CLI's side of IPC: dial the daemon, start it when nobody answers, send
//! one request and read one reply.
//!
//! Starting is race-free for any number of CLIs: a CLI that finds no daemon
//! takes the spawn lock, dials once more (another CLI may have started one
//! meanwhile), and only then spawns `ringlet daemon --foreground` in a new
//! session. The child prints one line on stdout when it is listening; the
//! CLI waits for that line (or for the child to exit, then reads why from the
//! log), and dials with backoff as a fallback.

use std::fs;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use serde_json::Value;

use crate::paths::Paths;
use crate::protocol::{ErrorCode, PROTOCOL_VERSION, Reply, ReplyFrame, Request, RequestFrame};

/// How long a CLI waits for a daemon it started to answer.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a CLI waits for a reply. Detection probes are bounded by their
/// own timeout, so this only trips on a wedged daemon.
const REPLY_TIMEOUT: Duration = Duration::from_secs(120);

/// An error reply from the daemon, kept typed so `--json` can report its code.
#[derive(Debug)]
pub struct DaemonError {
    pub code: ErrorCode,
    pub message: String,
}

impl std::fmt::Display for DaemonError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for DaemonError {}

/// Sends `request`, starting the daemon first if none answers.
pub fn request(paths: &Paths, request: &Request) -> Result<Value> {
    let stream = connect_or_start(paths, false)?;
    exchange(stream, request)
}

/// Sends `request` only if a daemon is already running; `Ok(None)` if not.
pub fn request_if_running(paths: &Paths, request: &Request) -> Result<Option<Value>> {
    match connect(paths) {
        Ok(stream) => exchange(stream, request).map(Some),
        Err(e) if daemon_absent(&e) => Ok(None),
        Err(e) => Err(e).with_context(|| format!("connecting to {}", paths.socket.display())),
    }
}

/// Dials the daemon once.
pub fn connect(paths: &Paths) -> io::Result<UnixStream> {
    UnixStream::connect(&paths.socket)
}

/// Errors that mean "no daemon is listening" (as opposed to, say, EACCES).
fn daemon_absent(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused)
}

/// Dials the daemon, starting it if nobody answers.
pub fn connect_or_start(paths: &Paths, stay_alive: bool) -> Result<UnixStream> {
    match connect(paths) {
        Ok(stream) => return Ok(stream),
        Err(e) if daemon_absent(&e) => {}
        Err(e) => {
            return Err(e).with_context(|| format!("connecting to {}", paths.socket.display()));
        }
    }
    start_daemon(paths, stay_alive)?;
    dial_with_backoff(paths, START_TIMEOUT)
}

/// What [`start_daemon`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Started {
    /// We spawned it; it is listening.
    Spawned { pid: u32 },
    /// One was running already (or another CLI started it meanwhile).
    AlreadyRunning,
}

/// Starts a detached daemon unless one answers, serialized by the spawn lock.
pub fn start_daemon(paths: &Paths, stay_alive: bool) -> Result<Started> {
    paths.ensure_runtime_dir()?;
    let lock_path = paths.spawn_lock();
    // Never through a link; a regular file of ours only.
    let lock_file =
        crate::fsutil::open_private(&lock_path, crate::fsutil::Access::ReadWrite, 0o600)?;
    let mut lock = fd_lock::RwLock::new(lock_file);
    // Blocks while another CLI is starting the daemon; that CLI gives up
    // within START_TIMEOUT, so this wait is bounded too.
    let _guard = lock.write().context("taking the daemon spawn lock")?;
    if connect(paths).is_ok() {
        return Ok(Started::AlreadyRunning);
    }
    spawn_daemon(paths, stay_alive)
}

fn spawn_daemon(paths: &Paths, stay_alive: bool) -> Result<Started> {
    let log = paths.log_file();
    paths.ensure_config_subdir("logs")?;
    let log_offset = fs::metadata(&log).map(|m| m.len()).unwrap_or(0);
    let exe = std::env::current_exe().context("finding the ringlet executable")?;
    let mut cmd = Command::new(exe);
    cmd.args(["daemon", "--foreground", "--log-file"]).arg(&log);
    if stay_alive {
        cmd.arg("--stay-alive");
    }
    if std::env::var_os("RINGLET_LOG").is_none() {
        cmd.env("RINGLET_LOG", "info");
    }
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::null()).current_dir("/");
    // SAFETY: the closure runs in the forked child before exec and calls
    // only setsid(2), which is async-signal-safe; it touches no locks or
    // allocations of the parent.
    unsafe {
        cmd.pre_exec(|| rustix::process::setsid().map(drop).map_err(io::Error::from));
    }
    let mut child = cmd.spawn().context("spawning the daemon")?;
    let pid = child.id();
    let stdout = child.stdout.take().context("daemon stdout")?;

    // Wait for the ready line on a helper thread, so the wait has a deadline.
    let (tx, rx) = mpsc::channel();
    thread::Builder::new()
        .name("daemon-ready".into())
        .spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        })
        .context("starting the ready-line reader")?;
    let line = rx.recv_timeout(START_TIMEOUT).unwrap_or_default();
    if line.contains(" listening on ") {
        reap_in_background(child);
        return Ok(Started::Spawned { pid });
    }

    // No ready line: the daemon exited (or hung). Another daemon may have won
    // a race we could not see (one started by hand); otherwise say why.
    let status = wait_briefly(&mut child);
    if dial_with_backoff(paths, Duration::from_millis(200)).is_ok() {
        return Ok(Started::AlreadyRunning);
    }
    let why = log_tail(&log, log_offset).unwrap_or_default();
    match status {
        Some(status) if why.is_empty() => bail!("the daemon exited ({status}) before it was ready"),
        Some(_) => bail!("the daemon could not start: {why}"),
        None => {
            let _ = child.kill();
            bail!(
                "the daemon did not become ready within {} s; see {}",
                START_TIMEOUT.as_secs(),
                log.display()
            )
        }
    }
}

/// Waits up to a second for the child to exit.
fn wait_briefly(child: &mut std::process::Child) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + Duration::from_secs(1);
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        thread::sleep(Duration::from_millis(5));
    }
    None
}

/// Collects the daemon's exit status when it ends, so a long-lived CLI never
/// leaves a zombie. Detached on purpose: it ends with the daemon or the CLI.
fn reap_in_background(mut child: std::process::Child) {
    let _ = thread::Builder::new().name("daemon-reaper".into()).spawn(move || child.wait());
}

/// The last error line the daemon logged after `offset`, without its
/// timestamp and level.
fn log_tail(log: &std::path::Path, offset: u64) -> Option<String> {
    // Never through a link: a planted one is itself why the daemon failed.
    let mut file = match crate::fsutil::open_private_read(log) {
        Ok(file) => file?,
        Err(e) => return Some(format!("{e:#}")),
    };
    file.seek(SeekFrom::Start(offset)).ok()?;
    let mut text = String::new();
    file.take(64 * 1024).read_to_string(&mut text).ok()?;
    let line = text
        .lines()
        .rev()
        .find(|l| l.contains(" ERROR "))
        .or_else(|| text.lines().rev().find(|l| !l.trim().is_empty()))?;
    Some(line.split_once(" ERROR ").map_or(line, |(_, msg)| msg).trim().to_string())
}

/// Dials until the daemon answers, sleeping 1, 2, 4 ... 50 ms between tries.
fn dial_with_backoff(paths: &Paths, limit: Duration) -> Result<UnixStream> {
    let deadline = Instant::now() + limit;
    let mut pause = Duration::from_millis(1);
    loop {
        match connect(paths) {
            Ok(stream) => return Ok(stream),
            Err(e) if Instant::now() >= deadline => {
                return Err(e).with_context(|| {
                    format!("the daemon did not answer on {}", paths.socket.display())
                });
            }
            Err(_) => {
                thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(50));
            }
        }
    }
}

/// Writes the request line, half-closes, reads the reply line.
fn exchange(mut stream: UnixStream, request: &Request) -> Result<Value> {
    let frame = RequestFrame { version: PROTOCOL_VERSION, request: request.clone() };
    let mut line = serde_json::to_vec(&frame)?;
    line.push(b'\n');
    stream.write_all(&line).context("sending request to the daemon")?;
    stream.shutdown(std::net::Shutdown::Write).context("sending request to the daemon")?;
    stream.set_read_timeout(Some(REPLY_TIMEOUT))?;
    let mut reply = String::new();
    BufReader::new(stream).read_line(&mut reply).context("reading the daemon's reply")?;
    if reply.is_empty() {
        bail!("the daemon closed the connection without replying");
    }
    decode_reply(&reply)
}

/// Checks the version, then turns the reply into data or a [`DaemonError`].
pub fn decode_reply(line: &str) -> Result<Value> {
    let value: Value =
        serde_json::from_str(line).map_err(|e| anyhow!("malformed reply from the daemon: {e}"))?;
    let version = value.get("version").and_then(Value::as_u64);
    if version != Some(u64::from(PROTOCOL_VERSION)) {
        bail!(
            "the running daemon speaks protocol {}, this ringlet speaks {PROTOCOL_VERSION}; \
             restart it with `ringlet daemon stop`",
            version.map_or("(none)".to_string(), |v| v.to_string())
        );
    }
    let frame: ReplyFrame = serde_json::from_value(value)
        .map_err(|e| anyhow!("malformed reply from the daemon: {e}"))?;
    match frame.reply {
        Reply::Ok { data } => Ok(data),
        Reply::Err { error } => {
            Err(DaemonError { code: error.code, message: error.message }.into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_decode_to_data_or_typed_errors() {
        assert_eq!(decode_reply(r#"{"version":1,"data":[1]}"#).unwrap(), serde_json::json!([1]));
        let err = decode_reply(r#"{"version":1,"error":{"code":"not_found","message":"no x"}}"#)
            .unwrap_err();
        let daemon = err.downcast_ref::<DaemonError>().unwrap();
        assert_eq!((daemon.code, daemon.message.as_str()), (ErrorCode::NotFound, "no x"));
    }

    #[test]
    fn another_protocol_says_restart() {
        let err = decode_reply(r#"{"version":7,"data":null}"#).unwrap_err().to_string();
        assert!(err.contains("protocol 7") && err.contains("ringlet daemon stop"), "{err}");
        assert!(decode_reply("garbage").is_err());
    }
}

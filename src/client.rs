//! The CLI's side of IPC: dial the daemon, start it when nobody answers, send
//! one request and read one reply.
//!
//! Starting is race-free for any number of CLIs: a CLI that finds no daemon
//! takes the spawn lock, dials once more (another CLI may have started one
//! meanwhile), and only then spawns `ringlet daemon --foreground` in a new
//! session. The child prints one line on stdout when it is listening; the
//! CLI waits for that line (or for the child to exit, then reads why from the
//! log), and dials with backoff as a fallback. The daemon gets only the
//! allowlisted part of the CLI's environment (`daemon::allowed_env`).
//!
//! A request the daemon did not read (refused at its connection cap, or a
//! daemon shutting down) is sent again for a few seconds; a broken
//! connection is always an error, never a quiet success.

use std::fs;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::paths::Paths;
use crate::protocol::{ErrorCode, PROTOCOL_VERSION, Reply, ReplyFrame, Request, RequestFrame};

/// How long a CLI waits for a daemon it started to answer. A new daemon may
/// first wait for an exiting one's lock (8 s at most), then for its HTTP port.
const START_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a CLI waits for a reply. Detection probes are bounded by their
/// own timeout, so this only trips on a wedged daemon.
const REPLY_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a refusal for load (or a daemon closing before it read the
/// request) is retried before it is reported.
const BUSY_RETRY: Duration = Duration::from_secs(5);

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
    let reply = send(request, || connect_or_start(paths, false).map(Some), decode_reply)?;
    Ok(reply.unwrap_or_default())
}

/// [`request`], with the reply's data decoded straight into `T`, no
/// [`Value`] in between (`agents list`'s table; each `T` adds a decoder of
/// its own to the binary, so it is not every command's path).
pub fn request_as<T: DeserializeOwned>(paths: &Paths, request: &Request) -> Result<T> {
    let reply = send(request, || connect_or_start(paths, false).map(Some), decode_reply_as::<T>)?;
    reply.context("the daemon sent no reply")
}

/// Sends `request` only if a daemon is already running; `Ok(None)` if not.
pub fn request_if_running(paths: &Paths, request: &Request) -> Result<Option<Value>> {
    let dial = || match connect(paths) {
        Ok(stream) => Ok(Some(stream)),
        Err(e) if daemon_absent(&e) => Ok(None),
        Err(e) => Err(e).with_context(|| format!("connecting to {}", paths.socket.display())),
    };
    send(request, dial, decode_reply)
}

/// Dials with `dial` (`None`: no daemon, and none to start) and exchanges.
///
/// A request the daemon did not read is sent again with backoff for
/// [`BUSY_RETRY`]: a refusal for load ("too many connections" at its
/// connection cap, answered before reading anything), or a connection
/// closed before reading (a daemon shutting down; the next dial waits for a
/// new one). A connection lost after the request was sent is retried only
/// for read-only requests. Any other broken connection is an error, never
/// a silent success.
///
/// The request line is encoded before dialling, so that it follows the
/// connection at once: the daemon thread the connection wakes then finds
/// it already there rather than waiting for it.
fn send<R>(
    request: &Request,
    mut dial: impl FnMut() -> Result<Option<UnixStream>>,
    decode: fn(&str) -> Result<R>,
) -> Result<Option<R>> {
    let frame = RequestFrame { version: PROTOCOL_VERSION, request: request.clone() };
    let mut line = serde_json::to_vec(&frame)?;
    line.push(b'\n');
    let deadline = Instant::now() + BUSY_RETRY;
    let mut pause = Duration::from_millis(10);
    loop {
        let Some(stream) = dial()? else { return Ok(None) };
        let why = match exchange(stream, &line, decode) {
            Ok(value) => return Ok(Some(value)),
            Err(Exchange::Failed(e)) => return Err(e),
            Err(Exchange::Unread(why)) => why,
            Err(Exchange::Lost(why)) if read_only(request) => why,
            Err(Exchange::Lost(why)) => {
                return Err(why.context(
                    "the daemon closed the connection without replying (was it stopped?); \
                     the request may or may not have been carried out",
                ));
            }
        };
        if Instant::now() >= deadline {
            return Err(why);
        }
        thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(200));
    }
}

/// Requests that change nothing, so sending them twice is harmless.
fn read_only(request: &Request) -> bool {
    matches!(
        request,
        Request::Status
            | Request::AgentsList
            | Request::AgentsInspect { .. }
            | Request::ProvidersList
            | Request::ProvidersInspect { .. }
            | Request::ProfilesList { .. }
            | Request::ProfilesInspect { .. }
            | Request::TerminalList
            | Request::TerminalInfo { .. }
            | Request::ProxyConfig { .. }
            | Request::ProxyRouteList { .. }
            | Request::ProxyAliasList { .. }
            | Request::ProxyBudgetShow { .. }
            | Request::ProvidersKeyList
            | Request::RegistryInspect { .. }
            | Request::RegistryChanges
            | Request::ProfilesTemplates { .. }
            | Request::Models { .. }
            | Request::Doctor
            | Request::FsDirs { .. }
    )
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
    // Only the allowlisted variables: a key in the caller's environment
    // (`ANTHROPIC_API_KEY=... ringlet profiles create`) stays out of the
    // daemon's, and so out of everything it starts.
    cmd.env_clear().envs(crate::daemon::allowed_env());
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

/// How [`exchange`] failed.
enum Exchange {
    /// The daemon did not read the request: refused for load, or closed the
    /// connection before reading (shutting down). Safe to send again.
    Unread(anyhow::Error),
    /// The connection broke after the request was sent: it may have been
    /// carried out.
    Lost(anyhow::Error),
    /// A reply (an error reply included) or a local failure: final.
    Failed(anyhow::Error),
}

/// How the daemon's answer at its connection cap begins; it is sent before
/// the request is read (`daemon/ipc.rs`), so retrying is always safe.
const AT_CAPACITY: &str = "too many connections";

/// Writes the request line, half-closes, reads the reply line and decodes
/// it with `decode`.
fn exchange<R>(
    mut stream: UnixStream,
    line: &[u8],
    decode: fn(&str) -> Result<R>,
) -> Result<R, Exchange> {
    // A daemon that refuses the connection has written its answer and closed
    // (EPIPE on this write): the answer is still there to read.
    let sent = stream.write_all(line).and_then(|()| stream.shutdown(std::net::Shutdown::Write));
    stream.set_read_timeout(Some(REPLY_TIMEOUT)).map_err(|e| Exchange::Failed(e.into()))?;
    let mut reply = String::new();
    let read = BufReader::new(stream).read_line(&mut reply);
    if reply.ends_with('\n') {
        return match decode(&reply) {
            Err(e)
                if e.downcast_ref::<DaemonError>()
                    .is_some_and(|d| d.message.starts_with(AT_CAPACITY)) =>
            {
                Err(Exchange::Unread(e.context(format!(
                    "the daemon is at its connection limit and still was after {} s",
                    BUSY_RETRY.as_secs()
                ))))
            }
            other => other.map_err(Exchange::Failed),
        };
    }
    match (sent, read) {
        (Err(e), _) => Err(Exchange::Unread(
            anyhow::Error::new(e)
                .context("the daemon closed the connection before reading the request"),
        )),
        (Ok(()), Err(e))
            if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) =>
        {
            Err(Exchange::Failed(
                anyhow::Error::new(e).context(format!(
                    "the daemon did not reply within {} s",
                    REPLY_TIMEOUT.as_secs()
                )),
            ))
        }
        (Ok(()), Err(e)) => {
            Err(Exchange::Lost(anyhow::Error::new(e).context("reading the daemon's reply")))
        }
        (Ok(()), Ok(_)) => Err(Exchange::Lost(anyhow!("the connection ended before a reply"))),
    }
}

/// An event stream (`Subscribe`) kept open by the CLI: one event per line.
pub struct Events {
    reader: BufReader<UnixStream>,
    /// What arrived of the next line so far (kept across timeouts).
    partial: Vec<u8>,
}

/// What [`Events::next`] found.
#[derive(Debug)]
pub enum Next {
    Event(crate::protocol::EventFrame),
    /// Nothing within the wait.
    Idle,
    /// The daemon ended the stream (it stopped, or dropped a lagging reader).
    Closed,
}

/// Subscribes to `events` (starting the daemon if needed); the stream is
/// open once this returns, so nothing emitted afterwards is missed.
pub fn subscribe(paths: &Paths, events: &[&str]) -> Result<Events> {
    let mut stream = connect_or_start(paths, false)?;
    let request = Request::Subscribe { events: events.iter().map(|e| e.to_string()).collect() };
    let frame = RequestFrame { version: PROTOCOL_VERSION, request };
    let mut line = serde_json::to_vec(&frame)?;
    line.push(b'\n');
    // No half-close: the daemon takes end-of-file for a client that left.
    stream.write_all(&line).context("subscribing to the daemon's events")?;
    stream.set_read_timeout(Some(REPLY_TIMEOUT))?;
    let mut reader = BufReader::new(stream);
    let mut reply = String::new();
    reader.read_line(&mut reply).context("reading the daemon's reply")?;
    decode_reply(&reply)?;
    Ok(Events { reader, partial: Vec::new() })
}

impl Events {
    /// The next event, waiting at most `wait`.
    pub fn next(&mut self, wait: Duration) -> Result<Next> {
        self.reader.get_ref().set_read_timeout(Some(wait.max(Duration::from_millis(1))))?;
        match self.reader.read_until(b'\n', &mut self.partial) {
            Ok(0) => Ok(Next::Closed),
            Ok(_) if self.partial.ends_with(b"\n") => {
                let line = std::mem::take(&mut self.partial);
                let frame = serde_json::from_slice(&line)
                    .map_err(|e| anyhow!("malformed event from the daemon: {e}"))?;
                Ok(Next::Event(frame))
            }
            // The end of the stream after part of a line.
            Ok(_) => Ok(Next::Closed),
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                Ok(Next::Idle)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(Next::Idle),
            Err(_) => Ok(Next::Closed),
        }
    }
}

/// Checks the version, then turns the reply into data or a [`DaemonError`].
pub fn decode_reply(line: &str) -> Result<Value> {
    let value: Value = serde_json::from_slice(line.as_bytes())
        .map_err(|e| anyhow!("malformed reply from the daemon: {e}"))?;
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

/// [`decode_reply`] straight into `T`: one pass over the line into a frame
/// whose `data` is typed. Anything that pass does not take (another
/// protocol version, an error reply, data that is not a `T`, a malformed
/// line) goes through [`decode_reply`], so every failure reads as before.
pub fn decode_reply_as<T: DeserializeOwned>(line: &str) -> Result<T> {
    #[derive(Deserialize)]
    struct Frame<T> {
        version: Option<u64>,
        data: Option<T>,
    }
    if let Ok(Frame { version: Some(v), data: Some(data) }) = serde_json::from_str(line)
        && v == u64::from(PROTOCOL_VERSION)
    {
        return Ok(data);
    }
    Ok(serde_json::from_value(decode_reply(line)?)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_replies_decode_like_values() {
        use crate::protocol::AgentList;
        let good = r#"{"version":2,"data":{"agents":[],"warnings":["w"]}}"#;
        let list: AgentList = decode_reply_as(good).unwrap();
        assert_eq!(list.warnings, ["w"]);
        // Every failure reads as it does through a Value.
        for line in [
            r#"{"version":2,"error":{"code":"not_found","message":"no x"}}"#,
            r#"{"version":7,"data":{"agents":[],"warnings":[]}}"#,
            r#"{"data":{"agents":[],"warnings":[]}}"#,
            r#"{"version":2,"data":{"agents":7}}"#,
            r#"{"version":2,"data":null}"#,
            "garbage",
        ] {
            let typed = decode_reply_as::<AgentList>(line).unwrap_err();
            let value = decode_reply(line)
                .and_then(|v| Ok(serde_json::from_value::<AgentList>(v)?))
                .unwrap_err();
            assert_eq!(format!("{typed:#}"), format!("{value:#}"), "{line}");
            assert_eq!(
                typed.downcast_ref::<DaemonError>().map(|d| d.code),
                value.downcast_ref::<DaemonError>().map(|d| d.code)
            );
        }
    }

    #[test]
    fn replies_decode_to_data_or_typed_errors() {
        assert_eq!(decode_reply(r#"{"version":2,"data":[1]}"#).unwrap(), serde_json::json!([1]));
        let err = decode_reply(r#"{"version":2,"error":{"code":"not_found","message":"no x"}}"#)
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

//! The daemon side of the routing proxy: one `ringlet proxy serve` child per
//! running proxy-enabled profile, spawned, watched and stopped by one
//! long-lived `proxy-supervisor` thread ([`Proxies`], `state.proxies`).
//!
//! - **The port is the daemon's.** The supervisor binds `127.0.0.1:<port>`
//!   itself (SO_REUSEADDR, a large backlog) and keeps the socket for as long
//!   as the proxy is wanted; each child gets it as fd 3. A child that dies is
//!   replaced on the same socket, so an agent's connections wait in the
//!   backlog for the next child instead of being refused. `proxy stop`,
//!   a deleted profile and a proxy that failed for good close it.
//! - **Keys travel on a pipe.** The child's whole config ([`ServeConfig`],
//!   upstream keys included) is written as JSON to its stdin, then closed:
//!   never argv, environment or disk.
//! - **None outlives the daemon.** Every child is spawned from the one
//!   supervisor thread with `PR_SET_PDEATHSIG(SIGKILL)` (which fires when the
//!   spawning *thread* ends, so it must be a thread that lives as long as the
//!   daemon) in a process group of its own, which the daemon kills at
//!   shutdown.
//! - **Health.** `GET /health` right after the spawn (the listener already
//!   listens, so the request waits in the backlog until the child accepts:
//!   its answer is the moment it is ready), then every
//!   [`HEALTH_INTERVAL`] with `GET /ringlet/stats` for activity and budget
//!   events. A child that exits (its pidfd wakes the thread) or misses
//!   [`UNHEALTHY_AFTER`] checks is replaced after a backoff; more than
//!   [`MAX_RESTARTS`] in [`RESTART_WINDOW`] mark the proxy `failed`.
//! - **Stop.** SIGTERM; the child finishes in-flight streams within
//!   [`STOP_GRACE`], then its group gets SIGKILL. A restart for new routing
//!   or keys starts the new child at once on the same socket while the old
//!   one drains the same way.
//! - **Backends.** [`child_command`] is the one place the program is
//!   chosen: the built-in `ringlet proxy serve`, or LiteLLM
//!   (`[proxy] backend`).
//!
//! The thread owns every child; callers (IPC and HTTP threads) send it
//! [`Msg`]s and wait for the answer. It publishes a snapshot of each proxy
//! that `status` reads without waiting for it.

use std::collections::{BTreeMap, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use mio::{Events, Interest, Poll, Token, Waker};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::ServeConfig;
use crate::config::ProxyBackend;
use crate::daemon::State;
use crate::daemon::events::{EventBus, EventKind};

/// How often a healthy child is asked for `/health` and its stats (see
/// [`health_interval`]).
pub const HEALTH_INTERVAL: Duration = Duration::from_secs(3);
/// How long one periodic check may take (at most the interval).
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a new child has to answer its first `/health`.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// The same for LiteLLM, which takes seconds to import (10 s on an idle
/// 2-core machine, 95 s measured under a load of 10).
const LITELLM_START_TIMEOUT: Duration = Duration::from_secs(180);
/// Checks in a row a child may miss before it is replaced.
pub const UNHEALTHY_AFTER: u32 = 3;
/// Unplanned restarts allowed within [`RESTART_WINDOW`]; one more marks the
/// proxy failed.
pub const MAX_RESTARTS: usize = 5;
pub const RESTART_WINDOW: Duration = Duration::from_secs(60);
/// The first restart's delay, doubled for each further one in the window.
const BACKOFF_FIRST: Duration = Duration::from_millis(100);
const BACKOFF_CAP: Duration = Duration::from_secs(5);
/// How long a stopping child may finish in-flight requests before SIGKILL.
pub const STOP_GRACE: Duration = Duration::from_secs(10);
/// The same at daemon shutdown, shorter: `daemon stop` waits for it.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// A proxy that relayed a request within two checks keeps the daemon awake.
fn active_for() -> Duration {
    2 * health_interval() + Duration::from_secs(1)
}
/// How long a caller waits for the supervisor's answer: longer than a
/// start that exhausts its restarts, or a stop's grace.
const REPLY_WAIT: Duration = Duration::from_secs(60);
/// The listen backlog: connections that wait while a child restarts (the
/// kernel caps it at `net.core.somaxconn`).
const BACKLOG: i32 = 1024;

const WAKE: Token = Token(0);

/// [`HEALTH_INTERVAL`]; debug builds take `RINGLET_DEBUG_PROXY_HEALTH_MS`
/// so tests of a hung child and of idle activity take a second, not ten.
fn health_interval() -> Duration {
    #[cfg(debug_assertions)]
    if let Some(ms) =
        std::env::var("RINGLET_DEBUG_PROXY_HEALTH_MS").ok().and_then(|v| v.parse().ok())
    {
        return Duration::from_millis(ms);
    }
    HEALTH_INTERVAL
}

fn probe_timeout() -> Duration {
    PROBE_TIMEOUT.min(health_interval())
}

/// A proxy's state as `proxy status` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProxyState {
    /// Spawned (or waiting out a backoff), not yet answering `/health`.
    Starting,
    Running,
    /// Told to stop, finishing in-flight requests.
    Stopping,
    Stopped,
    /// Restarted too often; `last_error` says why. `proxy start` tries again.
    Failed,
}

impl ProxyState {
    pub fn as_str(self) -> &'static str {
        match self {
            ProxyState::Starting => "starting",
            ProxyState::Running => "running",
            ProxyState::Stopping => "stopping",
            ProxyState::Stopped => "stopped",
            ProxyState::Failed => "failed",
        }
    }
}

/// One proxy, as `proxy status` and the REST API show it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProxyInfo {
    pub alias: String,
    pub state: ProxyState,
    /// `builtin` or `litellm`.
    pub backend: String,
    pub port: Option<u16>,
    pub pid: Option<u32>,
    /// Since the current child answered its first `/health`.
    pub uptime_secs: Option<u64>,
    /// Unplanned restarts (crashes, missed health checks) since `proxy start`.
    pub restarts: u64,
    pub last_error: Option<String>,
    /// Spawn to first healthy answer of the current child, in milliseconds.
    pub spawn_to_healthy_ms: Option<f64>,
    /// The child's `GET /ringlet/stats` (`StatsReply`), while it runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stats: Option<Value>,
    /// Why `stats` is missing although the proxy runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stats_error: Option<String>,
}

impl ProxyInfo {
    fn stopped(alias: &str, port: Option<u16>, backend: &str) -> ProxyInfo {
        ProxyInfo {
            alias: alias.into(),
            state: ProxyState::Stopped,
            backend: backend.into(),
            port,
            pid: None,
            uptime_secs: None,
            restarts: 0,
            last_error: None,
            spawn_to_healthy_ms: None,
            stats: None,
            stats_error: None,
        }
    }
}

/// Which program serves a proxy. The hook for the external backend: the
/// LiteLLM helper's `crate::proxy::litellm` gives its argv, environment and
/// YAML; [`spawn_child`] turns a backend into a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// `ringlet proxy serve`: config on stdin, listener on fd 3.
    Builtin,
    /// The LiteLLM proxy (`[proxy] backend = "litellm"`).
    Litellm,
}

impl Backend {
    fn from_config(backend: ProxyBackend) -> Backend {
        match backend {
            ProxyBackend::Builtin => Backend::Builtin,
            ProxyBackend::Litellm => Backend::Litellm,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Backend::Builtin => "builtin",
            Backend::Litellm => "litellm",
        }
    }
}

/// What a child is started with: built by the caller (it reads profiles and
/// keys), kept by the supervisor to start the same again after a crash.
#[derive(Clone)]
struct Launch {
    config: ServeConfig,
    port: u16,
    backend: Backend,
    /// For the LiteLLM backend: `[proxy] litellm_command`, the API family
    /// of each upstream (by its key in `config.upstreams`), where its YAML
    /// goes, and the daemon's PATH to find `litellm` on.
    litellm_command: Option<String>,
    families: BTreeMap<String, super::Family>,
    runtime_dir: std::path::PathBuf,
    path_var: Option<std::ffi::OsString>,
}

type Answer = Sender<Result<ProxyInfo, String>>;

/// What callers ask of the supervisor thread.
enum Msg {
    /// Start unless running; answered once healthy (or failed).
    Start { launch: Box<Launch>, reply: Answer },
    /// Start a fresh child with this config; the old one drains.
    Restart { launch: Box<Launch>, reply: Answer },
    /// Stop and close the port; `forget` also drops the entry (deleted profile).
    Stop { alias: String, reason: String, forget: bool, reply: Answer },
    /// Stop everything within `grace`; answered when every child is gone.
    StopAll { reason: String, grace: Duration, reply: Sender<Vec<String>> },
    /// A health check's outcome, from a probe thread.
    Probe { alias: String, pid: u32, first: bool, outcome: Result<Option<Stats>, String> },
}

/// What the supervisor publishes of each proxy, for readers that must not
/// wait for the thread.
#[derive(Clone)]
struct Snapshot {
    info: ProxyInfo,
    /// The local token of the running child (for `/ringlet/stats`).
    token: Option<String>,
    /// Providers (target prefixes before any `@`) the child's config names.
    providers: Vec<String>,
    healthy_since: Option<Instant>,
}

struct Shared {
    table: Mutex<BTreeMap<String, Snapshot>>,
    /// The last time any proxy was seen relaying.
    last_relay: Mutex<Option<Instant>>,
}

/// The supervisor, in the daemon's [`State`] as `state.proxies`.
pub struct Proxies {
    tx: Sender<Msg>,
    waker: Arc<Waker>,
    /// The thread's half, taken when it starts.
    parts: Mutex<Option<(Poll, Receiver<Msg>)>>,
    shared: Arc<Shared>,
}

impl Proxies {
    pub fn new() -> Result<Proxies> {
        let poll = Poll::new().context("creating the proxy supervisor's poller")?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKE)?);
        let (tx, rx) = mpsc::channel();
        Ok(Proxies {
            tx,
            waker,
            parts: Mutex::new(Some((poll, rx))),
            shared: Arc::new(Shared {
                table: Mutex::new(BTreeMap::new()),
                last_relay: Mutex::new(None),
            }),
        })
    }

    /// Starts the supervisor thread. It must live as long as the daemon:
    /// the children's PDEATHSIG fires when it ends.
    pub fn spawn_thread(&self, events: Arc<EventBus>) -> Result<()> {
        let Some((poll, rx)) = self.parts.lock().unwrap_or_else(|p| p.into_inner()).take() else {
            bail!("the proxy supervisor runs already");
        };
        let mut sup = Supervisor {
            poll,
            rx,
            tx: self.tx.clone(),
            waker: self.waker.clone(),
            events,
            shared: self.shared.clone(),
            procs: BTreeMap::new(),
            draining: Vec::new(),
            stop_all: Vec::new(),
        };
        thread::Builder::new()
            .name("proxy-supervisor".into())
            .spawn(move || sup.run())
            .context("starting the proxy supervisor thread")?;
        Ok(())
    }

    fn send(&self, msg: Msg) -> Result<()> {
        self.tx.send(msg).map_err(|_| anyhow!("the proxy supervisor has stopped"))?;
        let _ = self.waker.wake();
        Ok(())
    }

    fn ask(&self, make: impl FnOnce(Answer) -> Msg) -> Result<ProxyInfo> {
        let (reply, answer) = mpsc::channel();
        self.send(make(reply))?;
        match answer.recv_timeout(REPLY_WAIT) {
            Ok(r) => r.map_err(|e| anyhow!(e)),
            Err(_) => {
                bail!("the proxy supervisor did not answer within {} s", REPLY_WAIT.as_secs())
            }
        }
    }

    fn snapshot(&self, alias: &str) -> Option<Snapshot> {
        self.shared.table.lock().unwrap_or_else(|p| p.into_inner()).get(alias).cloned()
    }

    /// Starts the profile's proxy unless it runs; returns its port. For a
    /// run of a proxy-enabled profile (local or remote).
    pub fn ensure_running(&self, state: &State, alias: &str) -> Result<u16> {
        if let Some(s) = self.snapshot(alias)
            && s.info.state == ProxyState::Running
            && let Some(port) = s.info.port
        {
            return Ok(port);
        }
        let info = self.start(state, alias)?;
        info.port.ok_or_else(|| anyhow!("proxy of `{alias}` has no port"))
    }

    /// Starts the proxy (a running one is left alone); answers once the
    /// child is healthy, or with why it could not start.
    pub fn start(&self, state: &State, alias: &str) -> Result<ProxyInfo> {
        let launch = Box::new(launch(state, alias)?);
        debug_launch_pause();
        let info = self
            .ask(|reply| Msg::Start { launch, reply })
            .with_context(|| format!("starting the proxy of `{alias}`"))?;
        self.still_wanted(state, alias, info)
    }

    /// After a start: the profile read by [`launch`] may have been deleted
    /// (or its proxy disabled) before the supervisor got the start, whose
    /// stop then came first and found nothing to stop. The delete (disable)
    /// changes the profile before it stops the proxy, so looking again once
    /// the start is done catches every such order: the proxy goes, and its
    /// port with it, instead of running on for a profile that is gone.
    fn still_wanted(&self, state: &State, alias: &str, info: ProxyInfo) -> Result<ProxyInfo> {
        match state.profiles.get(alias) {
            Ok(p) if p.proxy => Ok(info),
            Ok(_) => {
                let name = alias.to_string();
                let reason = "proxy disabled".to_string();
                let _ = self.ask(|reply| Msg::Stop { alias: name, reason, forget: false, reply });
                bail!("profile `{alias}` stopped routing through a proxy while its proxy started")
            }
            Err(e) if e.downcast_ref::<crate::profiles::NotFound>().is_some() => {
                self.forget(alias);
                bail!("profile `{alias}` was deleted while its proxy started")
            }
            // Unreadable for another reason: left to the next command.
            Err(_) => Ok(info),
        }
    }

    /// Replaces the running child with a fresh one (new config, same
    /// socket); the old one finishes its requests. Starts a stopped proxy.
    pub fn restart(&self, state: &State, alias: &str) -> Result<ProxyInfo> {
        let launch = Box::new(launch(state, alias)?);
        debug_launch_pause();
        let info = self
            .ask(|reply| Msg::Restart { launch, reply })
            .with_context(|| format!("restarting the proxy of `{alias}`"))?;
        self.still_wanted(state, alias, info)
    }

    /// Stops the proxy and frees its port.
    pub fn stop(&self, state: &State, alias: &str) -> Result<ProxyInfo> {
        let profile = state.profiles.get(alias)?;
        let alias = alias.to_string();
        let mut info =
            self.ask(|reply| Msg::Stop { alias, reason: "stopped".into(), forget: false, reply })?;
        info.port = info.port.or(profile.routing.port);
        info.backend = Backend::from_config(state.config.proxy.backend).as_str().into();
        Ok(info)
    }

    /// The profile is gone: stop its proxy, free the port, forget it.
    pub fn forget(&self, alias: &str) {
        let alias = alias.to_string();
        let reason = "profile deleted".to_string();
        if let Err(e) = self.ask(|reply| Msg::Stop { alias, reason, forget: true, reply }) {
            crate::warn!("stopping a deleted profile's proxy: {e:#}");
        }
    }

    /// Stops every proxy (the grace of a `proxy stop`); returns their aliases.
    pub fn stop_all(&self) -> Vec<String> {
        self.stop_all_within("stopped", STOP_GRACE)
    }

    /// At daemon shutdown: every child gets SIGTERM, then SIGKILL after
    /// [`SHUTDOWN_GRACE`]; returns when they are gone.
    pub fn shutdown(&self) {
        let stopped = self.stop_all_within("daemon shutdown", SHUTDOWN_GRACE);
        if !stopped.is_empty() {
            crate::info!("stopped proxies: {}", stopped.join(", "));
        }
        // Whatever did not answer in time goes with its whole group (and
        // PDEATHSIG covers a child in the instant the daemon exits).
        let table = self.shared.table.lock().unwrap_or_else(|p| p.into_inner());
        for pid in table.values().filter_map(|s| s.info.pid) {
            signal_group(pid, rustix::process::Signal::KILL);
        }
    }

    fn stop_all_within(&self, reason: &str, grace: Duration) -> Vec<String> {
        let (reply, answer) = mpsc::channel();
        if self.send(Msg::StopAll { reason: reason.into(), grace, reply }).is_err() {
            return Vec::new();
        }
        answer.recv_timeout(grace + Duration::from_secs(5)).unwrap_or_default()
    }

    /// The profile's routing changed: a running proxy restarts with it.
    pub fn reload(&self, state: &State, alias: &str) {
        let running = self.snapshot(alias).is_some_and(|s| is_up(s.info.state));
        if running && let Err(e) = self.restart(state, alias) {
            crate::warn!("proxy {alias}: reloading: {e:#}");
        }
    }

    /// A provider's key changed: every running proxy that relays to it
    /// restarts (the new child gets the new key).
    pub fn key_changed(&self, state: &State, provider: &str) {
        let affected: Vec<String> = {
            let table = self.shared.table.lock().unwrap_or_else(|p| p.into_inner());
            table
                .iter()
                .filter(|(_, s)| is_up(s.info.state) && s.providers.iter().any(|p| p == provider))
                .map(|(alias, _)| alias.clone())
                .collect()
        };
        for alias in affected {
            self.reload(state, &alias);
        }
    }

    /// Every proxy-enabled profile and every proxy the supervisor knows, or
    /// the one of `alias`, with the stats of the running ones.
    pub fn status(&self, state: &State, alias: Option<&str>) -> Result<Vec<ProxyInfo>> {
        let backend = Backend::from_config(state.config.proxy.backend).as_str();
        let mut rows: BTreeMap<String, (ProxyInfo, Option<String>)> = BTreeMap::new();
        match alias {
            Some(alias) => {
                let p = state.profiles.get(alias)?;
                rows.insert(
                    p.alias.clone(),
                    (ProxyInfo::stopped(alias, p.routing.port, backend), None),
                );
            }
            None => {
                for p in state.profiles.list()?.0.into_iter().filter(|p| p.proxy) {
                    let info = ProxyInfo::stopped(&p.alias, p.routing.port, backend);
                    rows.insert(p.alias, (info, None));
                }
            }
        }
        {
            let table = self.shared.table.lock().unwrap_or_else(|p| p.into_inner());
            for (name, snap) in table.iter().filter(|(n, _)| alias.is_none_or(|a| a == *n)) {
                let mut info = snap.info.clone();
                info.uptime_secs = snap.healthy_since.map(|t| t.elapsed().as_secs());
                rows.insert(name.clone(), (info, snap.token.clone()));
            }
        }
        Ok(rows
            .into_values()
            .map(|(mut info, token)| {
                if let (ProxyState::Running, Some(port), Some(token)) =
                    (info.state, info.port, token)
                {
                    match get(port, "/ringlet/stats", Some(&token), PROBE_TIMEOUT) {
                        Ok((200, body)) => match serde_json::from_slice(&body) {
                            Ok(v) => info.stats = Some(v),
                            Err(e) => info.stats_error = Some(format!("bad stats reply: {e}")),
                        },
                        Ok((status, _)) => info.stats_error = Some(format!("stats: HTTP {status}")),
                        Err(e) => info.stats_error = Some(format!("stats: {e:#}")),
                    }
                }
                info
            })
            .collect())
    }

    /// Whether a proxy relayed a request lately (or has one in flight):
    /// daemon activity for the idle timeout.
    pub fn recently_active(&self) -> bool {
        let last = *self.shared.last_relay.lock().unwrap_or_else(|p| p.into_inner());
        last.is_some_and(|t| t.elapsed() < active_for())
    }
}

/// Debug builds: `RINGLET_DEBUG_PROXY_LAUNCH_PAUSE_MS` holds a start
/// between reading the profile and asking the supervisor, so a test can
/// delete or disable the profile in that window.
fn debug_launch_pause() {
    #[cfg(debug_assertions)]
    if let Some(ms) =
        std::env::var("RINGLET_DEBUG_PROXY_LAUNCH_PAUSE_MS").ok().and_then(|v| v.parse().ok())
    {
        thread::sleep(Duration::from_millis(ms));
    }
}

fn is_up(state: ProxyState) -> bool {
    matches!(state, ProxyState::Starting | ProxyState::Running)
}

/// What starting `alias`'s proxy takes: the profile must route through its
/// proxy; a port is chosen (and kept in the profile) if it has none.
fn launch(state: &State, alias: &str) -> Result<Launch> {
    let mut profile = state.profiles.get(alias)?;
    if !profile.proxy {
        bail!(
            "profile `{alias}` does not route through a proxy; `ringlet proxy enable {alias}` first"
        );
    }
    let port = match profile.routing.port {
        Some(port) => port,
        None => {
            // Chosen and written under the store's lock, as `proxy enable`
            // does: no other profile can take the same port meanwhile.
            let catalog = state.catalog();
            let services = state.services(&catalog);
            let (p, port) = state.profiles.update(alias, |p| {
                let port = match p.routing.port {
                    Some(port) => port,
                    None => super::manage::choose_unused_port(&services, alias)?,
                };
                p.routing.port = Some(port);
                Ok(port)
            })?;
            crate::info!("profile {alias}: proxy port {port} chosen");
            profile = p;
            port
        }
    };
    let catalog = state.catalog();
    let config = super::config::serve_config(&state.services(&catalog), &profile)?;
    let families = config
        .upstreams
        .keys()
        .filter_map(|key| {
            let provider = catalog.provider(key.split('@').next().unwrap_or(key))?;
            Some((key.clone(), super::config::family(&provider.manifest).ok()?))
        })
        .collect();
    Ok(Launch {
        config,
        port,
        backend: Backend::from_config(state.config.proxy.backend),
        litellm_command: state.config.proxy.litellm_command.clone(),
        families,
        runtime_dir: state.paths.runtime_dir.clone(),
        path_var: state.path_var.clone(),
    })
}

// ---------------------------------------------------------------------------
// The supervisor thread

/// The part of `StatsReply` (the child's `GET /ringlet/stats`) the
/// supervisor acts on; the rest is passed through to `proxy status`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
struct Stats {
    requests: u64,
    in_flight: u64,
    spend_today_usd: f64,
    spend_month_usd: f64,
    budget: super::Budget,
}

/// One running child.
struct Running {
    child: Child,
    pid: u32,
    /// Readable when the child exits (Linux); `None` elsewhere.
    pidfd: Option<OwnedFd>,
    spawned: Instant,
    healthy_at: Option<Instant>,
    /// A check is in flight (one at a time per child).
    probing: bool,
    next_check: Instant,
    missed: u32,
    /// The child's last stderr line, for the reason it died.
    stderr_tail: Arc<Mutex<String>>,
    /// The thread reading stderr, done at the pipe's end.
    stderr_reader: Option<thread::JoinHandle<()>>,
    /// What to ask it (see [`ChildCommand`]).
    health_path: String,
    stats: bool,
    start_timeout: Duration,
    /// Why the supervisor killed it, when it did.
    killed_for: Option<String>,
    /// Told to stop: SIGKILL at this instant.
    kill_at: Option<Instant>,
    requests_seen: u64,
}

/// One proxy the supervisor knows.
struct Proc {
    alias: String,
    state: ProxyState,
    launch: Launch,
    listener: Option<TcpListener>,
    child: Option<Running>,
    /// Unplanned restarts within the window.
    recent: VecDeque<Instant>,
    restarts: u64,
    last_error: Option<String>,
    /// A backoff: the next spawn is due then.
    respawn_at: Option<Instant>,
    /// Waiting for the proxy to be healthy (or failed).
    start_waiters: Vec<Answer>,
    /// Waiting for the child to be gone.
    stop_waiters: Vec<Answer>,
    stop_reason: String,
    forget: bool,
    /// Budget events sent in the current period: 0 none, 1 warning, 2 exceeded.
    budget_levels: [u8; 2],
}

/// A replaced child finishing its requests.
struct Draining {
    alias: String,
    running: Running,
}

struct Supervisor {
    poll: Poll,
    rx: Receiver<Msg>,
    tx: Sender<Msg>,
    waker: Arc<Waker>,
    events: Arc<EventBus>,
    shared: Arc<Shared>,
    procs: BTreeMap<String, Proc>,
    draining: Vec<Draining>,
    /// `StopAll` callers and what they stopped.
    stop_all: Vec<(Sender<Vec<String>>, Vec<String>)>,
}

impl Supervisor {
    fn run(&mut self) {
        let mut events = Events::with_capacity(64);
        loop {
            let timeout =
                self.next_deadline().map(|at| at.saturating_duration_since(Instant::now()));
            // Without a pidfd (not Linux, or an old kernel) an exit is only
            // noticed by looking.
            let blind = self
                .procs
                .values()
                .filter_map(|p| p.child.as_ref())
                .chain(self.draining.iter().map(|d| &d.running))
                .any(|r| r.pidfd.is_none());
            let timeout = if blind {
                Some(timeout.unwrap_or(Duration::from_millis(50)).min(Duration::from_millis(50)))
            } else {
                timeout
            };
            if let Err(e) = self.poll.poll(&mut events, timeout)
                && e.kind() != std::io::ErrorKind::Interrupted
            {
                crate::error!("proxy supervisor: poll: {e}");
                thread::sleep(Duration::from_millis(50));
            }
            while let Ok(msg) = self.rx.try_recv() {
                self.handle(msg);
            }
            self.reap();
            self.timers();
            // Before answering: `shutdown` reads the pids left after a stop.
            self.publish();
            self.answer_stop_all();
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        let mut at: Option<Instant> = None;
        let mut consider = |t: Instant| at = Some(at.map_or(t, |a| a.min(t)));
        for p in self.procs.values() {
            if let Some(t) = p.respawn_at {
                consider(t);
            }
            if let Some(r) = &p.child {
                if let Some(t) = r.kill_at {
                    consider(t);
                }
                if r.healthy_at.is_some() && !r.probing && r.kill_at.is_none() {
                    consider(r.next_check);
                }
            }
        }
        for d in &self.draining {
            if let Some(t) = d.running.kill_at {
                consider(t);
            }
        }
        at
    }

    fn handle(&mut self, msg: Msg) {
        match msg {
            Msg::Start { launch, reply } => self.start(*launch, reply, false),
            Msg::Restart { launch, reply } => self.start(*launch, reply, true),
            Msg::Stop { alias, reason, forget, reply } => self.stop(&alias, &reason, forget, reply),
            Msg::StopAll { reason, grace, reply } => {
                let aliases: Vec<String> = self.procs.keys().cloned().collect();
                let mut stopped = Vec::new();
                for alias in aliases {
                    if let Some(p) = self.procs.get_mut(&alias)
                        && (p.child.is_some() || p.state != ProxyState::Stopped)
                    {
                        stopped.push(alias.clone());
                        p.stop_reason = reason.clone();
                        self.begin_stop(&alias, grace);
                    }
                }
                for d in &mut self.draining {
                    let deadline = Instant::now() + grace;
                    d.running.kill_at =
                        Some(d.running.kill_at.map_or(deadline, |t| t.min(deadline)));
                }
                self.stop_all.push((reply, stopped));
            }
            Msg::Probe { alias, pid, first, outcome } => self.probed(&alias, pid, first, outcome),
        }
    }

    fn start(&mut self, launch: Launch, reply: Answer, restart: bool) {
        let alias = launch.config.alias.clone();
        let p = self.procs.entry(alias.clone()).or_insert_with(|| Proc {
            alias: alias.clone(),
            state: ProxyState::Stopped,
            launch: launch.clone(),
            listener: None,
            child: None,
            recent: VecDeque::new(),
            restarts: 0,
            last_error: None,
            respawn_at: None,
            start_waiters: Vec::new(),
            stop_waiters: Vec::new(),
            stop_reason: String::new(),
            forget: false,
            budget_levels: [0, 0],
        });
        p.forget = false;
        match p.state {
            ProxyState::Running if !restart => {
                let _ = reply.send(Ok(info_of(p)));
                return;
            }
            ProxyState::Starting if !restart => {
                p.start_waiters.push(reply);
                return;
            }
            _ => {}
        }
        // A port change (the profile pinned another) needs a new socket.
        if p.listener.as_ref().and_then(|l| l.local_addr().ok()).map(|a| a.port())
            != Some(launch.port)
        {
            p.listener = None;
        }
        if p.state != ProxyState::Running && p.state != ProxyState::Starting {
            // A fresh start: the restart budget too.
            p.recent.clear();
            p.restarts = 0;
            p.last_error = None;
        }
        p.launch = launch;
        p.respawn_at = None;
        p.start_waiters.push(reply);
        // A stop in progress is overtaken: its callers hear so now.
        if p.state == ProxyState::Stopping {
            let info = info_of(p);
            for w in p.stop_waiters.drain(..) {
                let _ = w.send(Ok(info.clone()));
            }
        }
        // A running child drains while the new one takes over the socket.
        if let Some(mut old) = p.child.take() {
            signal_group(old.pid, rustix::process::Signal::TERM);
            old.kill_at = Some(Instant::now() + STOP_GRACE);
            self.draining.push(Draining { alias: alias.clone(), running: old });
        }
        self.spawn(&alias);
    }

    /// Spawns the proxy's child on its socket (bound now if need be). A
    /// failure counts as a crash.
    fn spawn(&mut self, alias: &str) {
        let Some(p) = self.procs.get_mut(alias) else { return };
        p.state = ProxyState::Starting;
        p.respawn_at = None;
        let command = match child_command(&p.launch) {
            Ok(c) => c,
            Err(e) => {
                // Nothing a retry could change (a backend not built in).
                self.fail(alias, format!("{e:#}"));
                return;
            }
        };
        if !command.inherit_listener {
            p.listener = None;
        } else if p.listener.is_none() {
            match bind(p.launch.port, alias) {
                Ok(l) => p.listener = Some(l),
                Err(e) => {
                    // The port is not ours to wait for: fail at once.
                    let reason = format!("{e:#}");
                    self.fail(alias, reason);
                    return;
                }
            }
        }
        match spawn_child(command, p.listener.as_ref(), alias) {
            Ok(mut running) => {
                crate::info!(
                    "proxy {alias}: started pid {} on 127.0.0.1:{} ({})",
                    running.pid,
                    p.launch.port,
                    p.launch.backend.as_str()
                );
                if let Some(fd) = &running.pidfd {
                    let raw: RawFd = fd.as_raw_fd();
                    let _ = self.poll.registry().register(
                        &mut mio::unix::SourceFd(&raw),
                        Token(running.pid as usize),
                        Interest::READABLE,
                    );
                }
                running.probing = true;
                let check = Check::first(&running, p.launch.port);
                probe(&self.tx, &self.waker, alias, running.pid, check);
                p.child = Some(running);
            }
            Err(e) => {
                let reason = format!("{e:#}");
                self.crashed(alias, reason);
            }
        }
    }
}

/// One health check of one child.
struct Check {
    port: u16,
    path: String,
    /// The local token, to also ask `/ringlet/stats` (periodic checks of a
    /// child that serves them).
    token: Option<String>,
    /// The first check after a spawn: it waits for the child to be ready.
    first: bool,
    timeout: Duration,
}

impl Check {
    fn first(r: &Running, port: u16) -> Check {
        Check {
            port,
            path: r.health_path.clone(),
            token: None,
            first: true,
            timeout: r.start_timeout,
        }
    }

    fn periodic(r: &Running, port: u16, token: &str) -> Check {
        Check {
            port,
            path: r.health_path.clone(),
            token: r.stats.then(|| token.to_string()),
            first: false,
            timeout: probe_timeout(),
        }
    }
}

/// Starts a check on its own thread, so that a slow child never holds the
/// supervisor up; the outcome comes back as [`Msg::Probe`].
fn probe(tx: &Sender<Msg>, waker: &Arc<Waker>, alias: &str, pid: u32, check: Check) {
    let (tx, waker, alias) = (tx.clone(), waker.clone(), alias.to_string());
    let spawned = thread::Builder::new().name("proxy-probe".into()).spawn(move || {
        let first = check.first;
        let outcome = health(&check).map(|()| match &check.token {
            Some(token) => stats(check.port, token),
            None => None,
        });
        let _ = tx.send(Msg::Probe { alias, pid, first, outcome });
        let _ = waker.wake();
    });
    if let Err(e) = spawned {
        crate::warn!("proxy supervisor: starting a health check: {e}");
    }
}

impl Supervisor {
    fn probed(
        &mut self,
        alias: &str,
        pid: u32,
        first: bool,
        outcome: Result<Option<Stats>, String>,
    ) {
        let Some(p) = self.procs.get_mut(alias) else { return };
        let Some(r) = p.child.as_mut().filter(|r| r.pid == pid) else { return };
        r.probing = false;
        r.next_check = Instant::now() + health_interval();
        if r.kill_at.is_some() {
            return;
        }
        match outcome {
            Ok(stats) => {
                r.missed = 0;
                if let Some(s) = stats {
                    if s.in_flight > 0 || s.requests > r.requests_seen {
                        *self.shared.last_relay.lock().unwrap_or_else(|p| p.into_inner()) =
                            Some(Instant::now());
                    }
                    r.requests_seen = s.requests;
                    budget_events(&self.events, alias, &s, &mut p.budget_levels);
                }
                if first {
                    let now = Instant::now();
                    r.healthy_at = Some(now);
                    let ms = now.duration_since(r.spawned).as_secs_f64() * 1000.0;
                    p.state = ProxyState::Running;
                    crate::info!("proxy {alias}: pid {pid} healthy {ms:.1} ms after its spawn");
                    self.events.emit(
                        EventKind::ProxyStarted,
                        json!({"alias": alias, "port": p.launch.port, "pid": pid,
                               "restarts": p.restarts, "spawn_to_healthy_ms": ms,
                               "backend": p.launch.backend.as_str()}),
                    );
                    let info = info_of(p);
                    for w in p.start_waiters.drain(..) {
                        let _ = w.send(Ok(info.clone()));
                    }
                }
            }
            Err(why) => {
                r.missed += 1;
                crate::warn!("proxy {alias}: health check of pid {pid} failed: {why}");
                if first || r.missed >= UNHEALTHY_AFTER {
                    r.killed_for = Some(if first {
                        format!(
                            "did not answer /health within {} s: {why}",
                            START_TIMEOUT.as_secs()
                        )
                    } else {
                        format!("stopped answering /health ({} checks missed): {why}", r.missed)
                    });
                    signal_group(pid, rustix::process::Signal::KILL);
                }
            }
        }
    }

    fn stop(&mut self, alias: &str, reason: &str, forget: bool, reply: Answer) {
        let Some(p) = self.procs.get_mut(alias) else {
            let _ = reply.send(Ok(ProxyInfo::stopped(alias, None, "builtin")));
            return;
        };
        p.stop_reason = reason.into();
        p.forget |= forget;
        p.stop_waiters.push(reply);
        self.begin_stop(alias, STOP_GRACE);
    }

    /// SIGTERM to the child, SIGKILL after `grace`; a proxy without a child
    /// (backoff, failed) stops at once.
    fn begin_stop(&mut self, alias: &str, grace: Duration) {
        let Some(p) = self.procs.get_mut(alias) else { return };
        p.respawn_at = None;
        for w in p.start_waiters.drain(..) {
            let _ = w.send(Err(format!("the proxy of `{alias}` was stopped while starting")));
        }
        match &mut p.child {
            Some(r) => {
                let deadline = Instant::now() + grace;
                if r.kill_at.is_none() {
                    signal_group(r.pid, rustix::process::Signal::TERM);
                }
                r.kill_at = Some(r.kill_at.map_or(deadline, |t| t.min(deadline)));
                p.state = ProxyState::Stopping;
            }
            None => self.stopped(alias, None),
        }
    }

    /// The child of a stopping proxy is gone (or there was none).
    fn stopped(&mut self, alias: &str, pid: Option<u32>) {
        let Some(p) = self.procs.get_mut(alias) else { return };
        p.listener = None;
        p.child = None;
        let was = p.state;
        p.state = ProxyState::Stopped;
        if pid.is_some() || was != ProxyState::Stopped {
            crate::info!(
                "proxy {alias}: stopped ({}); port {} freed",
                p.stop_reason,
                p.launch.port
            );
            self.events.emit(
                EventKind::ProxyStopped,
                json!({"alias": alias, "port": p.launch.port, "pid": pid, "reason": p.stop_reason}),
            );
        }
        let info = info_of(p);
        for w in p.stop_waiters.drain(..) {
            let _ = w.send(Ok(info.clone()));
        }
        if p.forget {
            self.procs.remove(alias);
            self.shared.table.lock().unwrap_or_else(|p| p.into_inner()).remove(alias);
        }
    }

    /// Collects exited children.
    fn reap(&mut self) {
        let aliases: Vec<String> = self.procs.keys().cloned().collect();
        for alias in aliases {
            let Some(p) = self.procs.get_mut(&alias) else { continue };
            let Some(r) = p.child.as_mut() else { continue };
            let Ok(Some(status)) = r.child.try_wait() else { continue };
            let mut r = p.child.take().expect("checked above");
            self.unwatch(&r);
            // Whatever it left in its group goes with it.
            signal_group(r.pid, rustix::process::Signal::KILL);
            if r.kill_at.is_some() {
                self.stopped(&alias, Some(r.pid));
                continue;
            }
            let mut reason = r.killed_for.take().unwrap_or_else(|| describe_exit(status));
            // Its last words may still be in the pipe: the reader ends at
            // the pipe's end, a moment after the exit (bounded: a
            // grandchild may hold the pipe open).
            if let Some(reader) = r.stderr_reader.take() {
                let until = Instant::now() + Duration::from_millis(200);
                while !reader.is_finished() && Instant::now() < until {
                    thread::sleep(Duration::from_millis(2));
                }
            }
            let tail = r.stderr_tail.lock().unwrap_or_else(|p| p.into_inner()).clone();
            if !tail.is_empty() {
                reason = format!("{reason}: {tail}");
            }
            self.crashed(&alias, reason);
        }
        let mut i = 0;
        while i < self.draining.len() {
            match self.draining[i].running.child.try_wait() {
                Ok(Some(_)) | Err(_) => {
                    let d = self.draining.swap_remove(i);
                    self.unwatch(&d.running);
                    signal_group(d.running.pid, rustix::process::Signal::KILL);
                    crate::info!("proxy {}: replaced pid {} has exited", d.alias, d.running.pid);
                }
                Ok(None) => i += 1,
            }
        }
    }

    fn unwatch(&self, r: &Running) {
        if let Some(fd) = &r.pidfd {
            let raw: RawFd = fd.as_raw_fd();
            let _ = self.poll.registry().deregister(&mut mio::unix::SourceFd(&raw));
        }
    }

    /// An unplanned end: restart after a backoff, or fail after too many.
    fn crashed(&mut self, alias: &str, reason: String) {
        let Some(p) = self.procs.get_mut(alias) else { return };
        let now = Instant::now();
        while p.recent.front().is_some_and(|t| now.duration_since(*t) > RESTART_WINDOW) {
            p.recent.pop_front();
        }
        if p.recent.len() >= MAX_RESTARTS {
            let why = format!(
                "restarted {} times within {} s; last: {reason}",
                p.recent.len(),
                RESTART_WINDOW.as_secs()
            );
            self.fail(alias, why);
            return;
        }
        p.recent.push_back(now);
        p.restarts += 1;
        let delay =
            BACKOFF_FIRST.saturating_mul(1 << (p.recent.len() - 1).min(16)).min(BACKOFF_CAP);
        crate::warn!("proxy {alias}: {reason}; restarting in {} ms", delay.as_millis());
        self.events.emit(
            EventKind::ProxyError,
            json!({"alias": alias, "state": "restarting", "error": reason,
                   "restarts": p.restarts, "restart_in_ms": delay.as_millis() as u64}),
        );
        p.last_error = Some(reason);
        p.state = ProxyState::Starting;
        p.respawn_at = Some(now + delay);
    }

    /// Gives up on a proxy: its port is closed (connections are refused
    /// rather than left waiting) until `proxy start` tries again.
    fn fail(&mut self, alias: &str, reason: String) {
        let Some(p) = self.procs.get_mut(alias) else { return };
        crate::error!("proxy {alias}: failed: {reason}");
        p.state = ProxyState::Failed;
        p.listener = None;
        p.respawn_at = None;
        p.last_error = Some(reason.clone());
        self.events.emit(
            EventKind::ProxyError,
            json!({"alias": alias, "state": "failed", "error": reason, "restarts": p.restarts}),
        );
        for w in p.start_waiters.drain(..) {
            let _ = w.send(Err(format!("the proxy of `{alias}` failed: {reason}")));
        }
        let info = info_of(p);
        for w in p.stop_waiters.drain(..) {
            let _ = w.send(Ok(info.clone()));
        }
    }

    /// Due backoffs, checks and kills.
    fn timers(&mut self) {
        let now = Instant::now();
        let due: Vec<String> = self
            .procs
            .iter()
            .filter(|(_, p)| p.respawn_at.is_some_and(|t| t <= now))
            .map(|(a, _)| a.clone())
            .collect();
        for alias in due {
            self.spawn(&alias);
        }
        let mut checks = Vec::new();
        for (alias, p) in &mut self.procs {
            let Some(r) = p.child.as_mut() else { continue };
            if let Some(t) = r.kill_at {
                if t <= now {
                    crate::warn!("proxy {alias}: pid {} did not stop in time; killing it", r.pid);
                    signal_group(r.pid, rustix::process::Signal::KILL);
                    r.kill_at = Some(now + Duration::from_secs(3600));
                }
                continue;
            }
            if r.healthy_at.is_some() && !r.probing && r.next_check <= now {
                r.probing = true;
                let check = Check::periodic(r, p.launch.port, &p.launch.config.local_token);
                checks.push((alias.clone(), r.pid, check));
            }
        }
        for (alias, pid, check) in checks {
            probe(&self.tx, &self.waker, &alias, pid, check);
        }
        for d in &mut self.draining {
            if d.running.kill_at.is_some_and(|t| t <= now) {
                signal_group(d.running.pid, rustix::process::Signal::KILL);
                d.running.kill_at = Some(now + Duration::from_secs(3600));
            }
        }
    }

    fn answer_stop_all(&mut self) {
        if self.stop_all.is_empty() {
            return;
        }
        let busy = !self.draining.is_empty() || self.procs.values().any(|p| p.child.is_some());
        if !busy {
            for (reply, stopped) in self.stop_all.drain(..) {
                let _ = reply.send(stopped);
            }
        }
    }

    fn publish(&self) {
        let mut table = self.shared.table.lock().unwrap_or_else(|p| p.into_inner());
        for (alias, p) in &self.procs {
            let providers = p
                .launch
                .config
                .upstreams
                .keys()
                .map(|k| k.split('@').next().unwrap_or(k).to_string())
                .collect();
            table.insert(
                alias.clone(),
                Snapshot {
                    info: info_of(p),
                    // Only a child that serves `/ringlet/stats` is asked.
                    token: p
                        .child
                        .as_ref()
                        .filter(|r| r.stats)
                        .map(|_| p.launch.config.local_token.clone()),
                    providers,
                    healthy_since: p.child.as_ref().and_then(|r| r.healthy_at),
                },
            );
        }
    }
}

fn info_of(p: &Proc) -> ProxyInfo {
    let r = p.child.as_ref();
    ProxyInfo {
        alias: p.alias.clone(),
        state: p.state,
        backend: p.launch.backend.as_str().into(),
        port: Some(p.launch.port),
        pid: r.map(|r| r.pid),
        uptime_secs: r.and_then(|r| r.healthy_at).map(|t| t.elapsed().as_secs()),
        restarts: p.restarts,
        last_error: p.last_error.clone(),
        spawn_to_healthy_ms: r
            .and_then(|r| r.healthy_at.map(|h| h.duration_since(r.spawned).as_secs_f64() * 1000.0)),
        stats: None,
        stats_error: None,
    }
}

/// `ProxyBudgetWarning` at 80 % of a budget, `ProxyBudgetExceeded` past it,
/// each once per period (a lower level, as after midnight, re-arms them).
fn budget_events(events: &EventBus, alias: &str, s: &Stats, levels: &mut [u8; 2]) {
    let periods = [
        ("daily", s.budget.daily_usd, s.spend_today_usd),
        ("monthly", s.budget.monthly_usd, s.spend_month_usd),
    ];
    for (i, (period, budget, spent)) in periods.into_iter().enumerate() {
        let level = match budget {
            Some(b) if b > 0.0 && spent >= b => 2,
            Some(b) if b > 0.0 && spent >= 0.8 * b => 1,
            _ => 0,
        };
        if level > levels[i] {
            let kind = if level == 2 {
                EventKind::ProxyBudgetExceeded
            } else {
                EventKind::ProxyBudgetWarning
            };
            events.emit(
                kind,
                json!({"alias": alias, "period": period, "spent_usd": spent, "budget_usd": budget}),
            );
        }
        levels[i] = level;
    }
}

fn describe_exit(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with code {code}"),
        (None, Some(sig)) => format!("killed by signal {sig}"),
        _ => "ended".into(),
    }
}

fn signal_group(pid: u32, sig: rustix::process::Signal) {
    if let Some(pid) = rustix::process::Pid::from_raw(pid as i32) {
        let _ = rustix::process::kill_process_group(pid, sig);
    }
}

/// Binds `127.0.0.1:port` for a proxy: SO_REUSEADDR (a port whose last
/// connections linger in TIME_WAIT is free) and a large backlog.
fn bind(port: u16, alias: &str) -> Result<TcpListener> {
    use rustix::net::{AddressFamily, SocketAddrV4, SocketType};
    let taken = |e: rustix::io::Errno| {
        if e == rustix::io::Errno::ADDRINUSE {
            anyhow!(
                "port {port} (127.0.0.1) is taken by another process; free it, or pin another \
                 one (`ringlet proxy enable {alias} --port N`)"
            )
        } else {
            anyhow!("binding 127.0.0.1:{port}: {e}")
        }
    };
    // CLOEXEC: never inherited by anything but the child it is handed to.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    let fd = rustix::net::socket_with(
        AddressFamily::INET,
        SocketType::STREAM,
        rustix::net::SocketFlags::CLOEXEC,
        None,
    )
    .context("creating the proxy's socket")?;
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let fd = {
        let fd = rustix::net::socket(AddressFamily::INET, SocketType::STREAM, None)
            .context("creating the proxy's socket")?;
        rustix::io::fcntl_setfd(&fd, rustix::io::FdFlags::CLOEXEC)?;
        fd
    };
    rustix::net::sockopt::set_socket_reuseaddr(&fd, true)?;
    rustix::net::bind(&fd, &SocketAddrV4::new(Ipv4Addr::LOCALHOST, port)).map_err(taken)?;
    rustix::net::listen(&fd, BACKLOG).map_err(taken)?;
    Ok(TcpListener::from(fd))
}

/// How a backend's child is started and checked: the one place a backend
/// is chosen. Wiring the LiteLLM backend is filling in its arm of
/// [`child_command`] from `crate::proxy::litellm` (argv, environment with
/// the upstream keys, the YAML written 0600 in the runtime dir).
struct ChildCommand {
    program: std::path::PathBuf,
    args: Vec<String>,
    /// Added to the daemon's (key-free) environment.
    env: Vec<(String, String)>,
    /// Written to the child's stdin, which is then closed.
    stdin: Vec<u8>,
    /// The daemon's listener becomes the child's fd 3; otherwise the child
    /// binds the port itself (and a restart may refuse connections).
    inherit_listener: bool,
    /// An unauthenticated liveness path.
    health_path: String,
    /// The child serves `GET /ringlet/stats` (the built-in proxy).
    stats: bool,
    /// How long a new child has to answer `health_path`.
    start_timeout: Duration,
}

fn child_command(launch: &Launch) -> Result<ChildCommand> {
    // Changed below in debug builds only.
    #[cfg_attr(not(debug_assertions), allow(unused_mut))]
    let mut command = match launch.backend {
        Backend::Builtin => ChildCommand {
            program: crate::terminal::helper::exec_path()?,
            args: vec!["proxy".into(), "serve".into()],
            env: Vec::new(),
            stdin: serde_json::to_vec(&launch.config)?,
            inherit_listener: true,
            health_path: "/health".into(),
            stats: true,
            start_timeout: START_TIMEOUT,
        },
        // LiteLLM: its YAML written 0600 in the runtime dir, the keys only
        // in its environment, uvicorn on the listener (`--fd 3`).
        Backend::Litellm => {
            let l = super::litellm::prepare(
                &launch.config,
                &launch.families,
                &launch.runtime_dir,
                launch.litellm_command.as_deref(),
                launch.path_var.as_deref(),
            )?;
            ChildCommand {
                program: l.program,
                args: l.args,
                env: l.env,
                stdin: Vec::new(),
                inherit_listener: true,
                health_path: super::litellm::HEALTH_PATH.into(),
                stats: false,
                start_timeout: LITELLM_START_TIMEOUT,
            }
        }
    };
    // Tests point the supervisor at a stand-in child (debug builds only).
    #[cfg(debug_assertions)]
    if let Some(exe) = std::env::var_os("RINGLET_DEBUG_PROXY_CHILD") {
        command.program = exe.into();
        command.args.clear();
    }
    Ok(command)
}

/// Spawns one child: the listener as fd 3 (when it takes one), the config
/// on stdin, stderr into the daemon log, its own process group, SIGKILL
/// when the spawning (supervisor) thread ends.
fn spawn_child(
    command: ChildCommand,
    listener: Option<&TcpListener>,
    alias: &str,
) -> Result<Running> {
    let program = &command.program;
    let mut cmd = Command::new(program);
    cmd.args(&command.args)
        .env_clear()
        .envs(crate::daemon::allowed_env())
        .envs(command.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    // -1: no listener to hand on.
    let fd: RawFd = listener.map_or(-1, |l| l.as_raw_fd());
    let parent = rustix::process::getpid();
    // SAFETY: the closure runs in the forked child between fork and exec,
    // so it makes only async-signal-safe system calls (prctl(2), getppid(2),
    // setpgid(2), signal(2), fcntl(2), dup2(2) through rustix, whose errors
    // are errno values turned into `io::Error` without allocating), takes
    // no lock and allocates nothing. `fd` is the daemon's listener, open in
    // the child as in the parent (CLOEXEC: dup2 gives fd 3 without it, and
    // the original closes at exec). The `OwnedFd` for fd 3 is forgotten, so
    // it is never closed here.
    unsafe {
        cmd.pre_exec(move || {
            #[cfg(any(target_os = "linux", target_os = "android"))]
            {
                rustix::process::set_parent_process_death_signal(Some(
                    rustix::process::Signal::KILL,
                ))?;
                // The daemon may have died before the line above: then no
                // signal would ever come.
                if rustix::process::getppid() != Some(parent) {
                    return Err(rustix::io::Errno::SRCH.into());
                }
            }
            let _ = parent;
            rustix::process::setpgid(None, None)?;
            crate::terminal::pty::reset_signal_dispositions();
            if fd < 0 {
                // The child binds its port itself.
            } else if fd == 3 {
                let three = std::os::fd::BorrowedFd::borrow_raw(3);
                rustix::io::fcntl_setfd(three, rustix::io::FdFlags::empty())?;
            } else {
                use std::os::fd::FromRawFd;
                let mut three = OwnedFd::from_raw_fd(3);
                let done = rustix::io::dup2(std::os::fd::BorrowedFd::borrow_raw(fd), &mut three);
                std::mem::forget(three);
                done?;
            }
            Ok(())
        });
    }
    let spawned = Instant::now();
    let mut child =
        cmd.spawn().with_context(|| format!("starting the proxy ({})", program.display()))?;
    let pid = child.id();
    // Also from here, so a signal sent at once finds the group.
    if let Some(p) = rustix::process::Pid::from_raw(pid as i32) {
        let _ = rustix::process::setpgid(Some(p), Some(p));
    }
    // The config, keys included, goes down the pipe from a thread of its
    // own: a child that does not read must not hold the supervisor up.
    let config = command.stdin;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = thread::Builder::new().name("proxy-config".into()).spawn(move || {
            let _ = stdin.write_all(&config);
        });
    }
    let stderr_tail = Arc::new(Mutex::new(String::new()));
    let mut stderr_reader = None;
    if let Some(stderr) = child.stderr.take() {
        let (tail, alias) = (stderr_tail.clone(), alias.to_string());
        stderr_reader = thread::Builder::new()
            .name("proxy-stderr".into())
            .spawn(move || {
                for line in BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
                    let line = line.trim_end();
                    if line.is_empty() {
                        continue;
                    }
                    crate::info!("proxy {alias} [{pid}]: {line}");
                    let mut slot = tail.lock().unwrap_or_else(|p| p.into_inner());
                    *slot = line.chars().take(500).collect();
                }
            })
            .ok();
    }
    #[cfg(any(target_os = "linux", target_os = "android"))]
    let pidfd = rustix::process::Pid::from_raw(pid as i32)
        .and_then(|p| rustix::process::pidfd_open(p, rustix::process::PidfdFlags::empty()).ok());
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let pidfd = None;
    Ok(Running {
        child,
        pid,
        pidfd,
        spawned,
        healthy_at: None,
        probing: false,
        next_check: spawned + health_interval(),
        missed: 0,
        stderr_tail,
        stderr_reader,
        health_path: command.health_path,
        stats: command.stats,
        start_timeout: command.start_timeout,
        killed_for: None,
        kill_at: None,
        requests_seen: 0,
    })
}

// ---------------------------------------------------------------------------
// Talking to a child

/// `GET /health` answered 200.
/// The check's path answered 200. A first check waits for a child that
/// binds its port itself (connection refused until it listens), asking
/// again every few milliseconds; one on an inherited listener is simply
/// answered once the child accepts.
fn health(check: &Check) -> Result<(), String> {
    let deadline = Instant::now() + check.timeout;
    let mut pause = Duration::from_millis(2);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match get(check.port, &check.path, None, left.max(Duration::from_millis(1))) {
            Ok((200, _)) => return Ok(()),
            Ok((status, _)) => return Err(format!("{} answered HTTP {status}", check.path)),
            Err(e) => {
                let refused = e
                    .downcast_ref::<std::io::Error>()
                    .is_some_and(|e| e.kind() == std::io::ErrorKind::ConnectionRefused);
                if !(check.first && refused) || Instant::now() + pause >= deadline {
                    return Err(format!("{e:#}"));
                }
                thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(50));
            }
        }
    }
}

fn stats(port: u16, token: &str) -> Option<Stats> {
    match get(port, "/ringlet/stats", Some(token), probe_timeout()) {
        Ok((200, body)) => serde_json::from_slice(&body).ok(),
        _ => None,
    }
}

/// One `GET` to a child on loopback: `(status, body)`. Plain HTTP/1.1, one
/// request per connection, chunked bodies decoded.
pub fn get(
    port: u16,
    path: &str,
    token: Option<&str>,
    timeout: Duration,
) -> Result<(u16, Vec<u8>)> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut stream = TcpStream::connect_timeout(&addr, timeout)?;
    let deadline = Instant::now() + timeout;
    stream.set_nodelay(true)?;
    let mut head =
        format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n");
    if let Some(token) = token {
        head.push_str(&format!("Authorization: Bearer {token}\r\n"));
    }
    head.push_str("\r\n");
    stream.set_write_timeout(Some(timeout))?;
    stream.write_all(head.as_bytes())?;
    let mut raw = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            bail!("no answer within {} ms", timeout.as_millis());
        }
        stream.set_read_timeout(Some(left))?;
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                bail!("no answer within {} ms", timeout.as_millis())
            }
            Err(e) => return Err(e.into()),
        }
        if raw.len() > 4 << 20 {
            bail!("answer too large");
        }
    }
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| anyhow!("no HTTP answer (connection closed)"))?;
    let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
    let status: u16 = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| anyhow!("not an HTTP answer"))?;
    let mut body = raw[split + 4..].to_vec();
    if head.contains("transfer-encoding: chunked") {
        body = dechunk(&body).ok_or_else(|| anyhow!("bad chunked body"))?;
    }
    Ok((status, body))
}

fn dechunk(mut raw: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let end = raw.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&raw[..end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(raw.get(end + 2..end + 2 + size)?);
        raw = raw.get(end + 2 + size + 2..)?;
    }
}

// ---------------------------------------------------------------------------
// The request log

/// `<config>/proxy/<alias>/requests.jsonl`.
pub fn log_path(config_dir: &std::path::Path, alias: &str) -> std::path::PathBuf {
    config_dir.join("proxy").join(alias).join("requests.jsonl")
}

/// The last `lines` records of the request log, oldest first (the rotated
/// file too: [`super::log::tail`]), or with `from` every whole record
/// written after that byte offset; and the offset to ask from next. A log
/// rotated since (shorter than `from`) is read from its start.
pub fn read_log(
    path: &std::path::Path,
    lines: usize,
    from: Option<u64>,
) -> Result<(Vec<String>, u64)> {
    use std::io::{Seek, SeekFrom};
    let mut file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let dir = path.parent().unwrap_or(path);
            return Ok((super::log::tail(dir, lines)?, 0));
        }
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let len = file.metadata()?.len();
    let start = match from {
        Some(f) if f <= len => f,
        _ => 0,
    };
    file.seek(SeekFrom::Start(start))?;
    let mut text = Vec::new();
    file.take(len - start).read_to_end(&mut text)?;
    // Only whole lines: a line being written is read next time.
    let whole = text.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let next = start + whole as u64;
    if from.is_none() {
        // A line still being written is left for the next read (`next`
        // points before it), so a follower never prints it twice.
        let dir = path.parent().unwrap_or(path);
        let mut out = super::log::tail(dir, lines.saturating_add(1))?;
        let partial = String::from_utf8_lossy(&text[whole..]).trim().to_string();
        if !partial.is_empty() && out.last().is_some_and(|l| l.trim() == partial) {
            out.pop();
        }
        if out.len() > lines {
            out.drain(..out.len() - lines);
        }
        return Ok((out, next));
    }
    let out = String::from_utf8_lossy(&text[..whole])
        .lines()
        // The spend a rotated log carries over is no request.
        .filter(|l| !l.trim().is_empty() && !l.contains("\"carry\":{"))
        .map(str::to_string)
        .collect();
    Ok((out, next))
}

/// Reads the whole of a tiny stream (tests of [`get`]).
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunked_bodies_are_decoded() {
        assert_eq!(dechunk(b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n").unwrap(), b"abcde");
        assert!(dechunk(b"zz\r\n").is_none());
    }

    #[test]
    fn a_taken_port_is_named() {
        let held = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = held.local_addr().unwrap().port();
        let e = bind(port, "w").unwrap_err().to_string();
        assert!(e.contains(&format!("port {port}")) && e.contains("taken"), "{e}");
        drop(held);
        let ours = bind(port, "w").unwrap();
        assert_eq!(ours.local_addr().unwrap().port(), port);
    }

    #[test]
    fn budget_events_fire_once_per_level() {
        let bus = EventBus::default();
        let sub = bus.subscribe(&[]).unwrap();
        let mut levels = [0, 0];
        let mut s = Stats {
            budget: super::super::Budget { daily_usd: Some(10.0), monthly_usd: None },
            ..Stats::default()
        };
        for spent in [1.0, 8.5, 9.0, 10.5, 11.0, 0.5, 8.0] {
            s.spend_today_usd = spent;
            budget_events(&bus, "w", &s, &mut levels);
        }
        let kinds: Vec<String> = sub
            .rx
            .try_iter()
            .map(|l| {
                serde_json::from_str::<Value>(&l).unwrap()["type"].as_str().unwrap().to_string()
            })
            .collect();
        assert_eq!(kinds, ["ProxyBudgetWarning", "ProxyBudgetExceeded", "ProxyBudgetWarning"],);
    }

    #[test]
    fn the_log_tail_and_follow() {
        let dir = std::env::temp_dir().join(format!("ringlet-sup-log-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("requests.jsonl");
        std::fs::write(dir.join("requests.jsonl.1"), "old\n").unwrap();
        std::fs::write(&path, "a\nb\nc\npartial").unwrap();
        let (lines, next) = read_log(&path, 2, None).unwrap();
        assert_eq!(lines, ["b", "c"]);
        assert_eq!(next, 6);
        // The rotated file supplies what the current one lacks.
        assert_eq!(read_log(&path, 10, None).unwrap().0, ["old", "a", "b", "c"]);
        std::fs::write(&path, "a\nb\nc\npartial\n{\"carry\":{}}\nd\n").unwrap();
        let (lines, next2) = read_log(&path, 100, Some(next)).unwrap();
        assert_eq!(lines, ["partial", "d"]);
        // Rotated: shorter than the offset, read from the start.
        std::fs::write(&path, "e\n").unwrap();
        assert_eq!(read_log(&path, 100, Some(next2)).unwrap().0, ["e"]);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

//! The daemon's lifecycle in one place: take the single-instance lock,
//! recover a stale socket, bind, start the threads, serve until told to stop
//! or idle for too long, then shut down cleanly.
//!
//! Threads (each named, each with one concern):
//! - `main`: this file's [`run`]; waits on the [`Ctl`] channel and the idle
//!   timer, and does the shutdown.
//! - `ipc-accept`: a few kept threads, each accepting a connection and serving
//!   it, then the next ([`ipc`]).
//! - `signals`: SIGTERM/SIGINT/SIGHUP become [`Ctl::Shutdown`] ([`signals`]).
//! - `proxy-supervisor`: spawns and watches every routing proxy
//!   ([`crate::proxy::supervisor`]).
//! - `registry-auto` and one `registry-sync` per sync
//!   ([`crate::registry::runner`]).
//!
//! Shared state lives in [`State`]; each field says who touches it.
//!
//! Hygiene: the daemon runs with an allowlisted environment ([`env_allowed`];
//! a daemon started directly re-executes itself with it, see
//! [`reexec_with_allowed_env`]), is not dumpable and never dumps core, so a
//! key the user's shell held never sits in its environment, its children's,
//! or a core file.

mod dirs;
pub mod dispatch;
pub mod events;
pub mod http;
mod ipc;
mod signals;
mod usage;

// What `POST /api/login` signs a web page in with, instead of the token.
pub mod browser;

use std::collections::HashMap;
use std::ffi::OsString;
use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::json;

use crate::config::Config;
use crate::detect::Detector;
use crate::manifests::{self, Catalog};
use crate::paths::Paths;
use crate::profiles::{Services, Store};
use crate::secrets::Secrets;
use crate::usage::tracker::Tracker;
use events::{EventBus, EventKind};

/// How long shutdown waits for in-flight requests to finish.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);
/// How long a starting daemon waits for the lock of one that is exiting
/// (holds the lock, no longer answers on the socket). Its shutdown ends
/// sessions (a 2 s grace each, all at once) and waits [`SHUTDOWN_GRACE`].
const LOCK_WAIT: Duration = Duration::from_secs(8);
/// How long a busy HTTP port is retried: an exiting daemon releases it as
/// its process ends, a moment after its lock.
const HTTP_PORT_RETRY: Duration = Duration::from_secs(5);

/// The daemon's environment: these names, and the [`ENV_PREFIXES`]. What it
/// needs for paths (HOME, XDG_*, RINGLET_*), the keychain (the session bus),
/// the default usage roots (CLAUDE_CONFIG_DIR, CODEX_HOME), locale and time,
/// TLS and proxies for its children, and PATH to find the agents. Keys and
/// anything else of the caller's shell stay out: a run takes the caller's
/// variables from its request, never from the daemon.
const ENV_NAMES: &[&str] = &[
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "LANG",
    "LANGUAGE",
    "TZ",
    "TMPDIR",
    "DBUS_SESSION_BUS_ADDRESS",
    "CLAUDE_CONFIG_DIR",
    "CODEX_HOME",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "HTTPS_PROXY",
    "HTTP_PROXY",
    "NO_PROXY",
    "https_proxy",
    "http_proxy",
    "no_proxy",
];
/// Prefixes of allowed names (see [`ENV_NAMES`]).
const ENV_PREFIXES: &[&str] = &["LC_", "XDG_", "RINGLET_"];

/// Whether the daemon keeps the variable `name`.
pub fn env_allowed(name: &std::ffi::OsStr) -> bool {
    let Some(name) = name.to_str() else { return false };
    ENV_NAMES.contains(&name) || ENV_PREFIXES.iter().any(|p| name.starts_with(p))
}

/// This process's variables that a daemon keeps.
pub fn allowed_env() -> Vec<(OsString, OsString)> {
    std::env::vars_os().filter(|(name, _)| env_allowed(name)).collect()
}

/// For a daemon started directly (`daemon --foreground`, a service unit):
/// its environment is fixed at exec and stays readable in
/// `/proc/<pid>/environ`, so removing a variable in-process is not enough.
/// When anything outside the allowlist is set, the process executes itself
/// again with the allowlisted environment (same pid, same arguments and
/// file descriptors). Called before any thread starts; returns only when
/// nothing needed cleaning.
pub fn reexec_with_allowed_env() -> Result<()> {
    use std::os::unix::process::CommandExt;
    if std::env::vars_os().all(|(name, _)| env_allowed(&name)) {
        return Ok(());
    }
    let mut args = std::env::args_os();
    let arg0 = args.next().unwrap_or_default();
    // /proc/self/exe still works when the binary was replaced on disk.
    let exe = if cfg!(target_os = "linux") {
        PathBuf::from("/proc/self/exe")
    } else {
        std::env::current_exe().context("finding the ringlet executable")?
    };
    let err = std::process::Command::new(exe)
        .arg0(arg0)
        .args(args)
        .env_clear()
        .envs(allowed_env())
        .exec();
    Err(err).context("re-executing the daemon with its allowlisted environment")
}

/// No core file (it would hold keys) and not dumpable: a same-uid process
/// can neither attach to the daemon nor read its memory or environment, and
/// its /proc entry belongs to root. Children get their own dumpable flag
/// back at exec; the core limit of 0 is inherited (agents dump no core).
fn harden() -> Result<()> {
    let none = rustix::process::Rlimit { current: Some(0), maximum: Some(0) };
    rustix::process::setrlimit(rustix::process::Resource::Core, none)
        .context("turning core dumps off")?;
    #[cfg(any(target_os = "linux", target_os = "android"))]
    rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable)
        .context("making the daemon non-dumpable")?;
    Ok(())
}

/// Marks close-on-exec every descriptor above stderr that the daemon was
/// started with (a shell's `7<file`, a terminal's or service manager's
/// leftovers): nothing of its own is open yet, and anything inherited must
/// never reach what it starts, least of all a sandboxed agent (bwrap
/// passes every open descriptor on: one to a file or directory outside the
/// sandbox is a way out) or a proxy holding keys. Marked, not closed, so
/// nothing the process might still hold is pulled from under it.
fn seal_inherited_fds() {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        let Ok(dir) = std::fs::read_dir("/proc/self/fd") else { return };
        let fds: Vec<i32> = dir
            .flatten()
            .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse().ok()))
            .filter(|&fd| fd > 2)
            .collect();
        for fd in fds {
            // SAFETY: only borrowed for fcntl(2); one that is closed by now
            // (the listing's own) just gives EBADF.
            let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
            if let Ok(flags) = rustix::io::fcntl_getfd(fd) {
                let _ = rustix::io::fcntl_setfd(fd, flags | rustix::io::FdFlags::CLOEXEC);
            }
        }
    }
}

/// Binds the HTTP front door's port, retrying a busy one for
/// [`HTTP_PORT_RETRY`]. A port still busy then is logged and kept in
/// [`State::http_error`] for `daemon status` and `doctor`.
pub fn bind_http(state: &State, host: &str, port: u16) -> io::Result<std::net::TcpListener> {
    let deadline = Instant::now() + HTTP_PORT_RETRY;
    let mut waiting = false;
    loop {
        let err = match std::net::TcpListener::bind((host, port)) {
            Ok(listener) => {
                if waiting {
                    crate::info!("HTTP port {host}:{port} is free now");
                }
                if let Ok(handle) = listener.try_clone() {
                    let _ = state.http_listener.set(handle);
                }
                return Ok(listener);
            }
            Err(e) => e,
        };
        let busy = err.kind() == io::ErrorKind::AddrInUse;
        if busy && port != 0 && Instant::now() < deadline {
            if !waiting {
                crate::info!(
                    "HTTP port {host}:{port} is busy; retrying for {} s (a daemon that is exiting may still hold it)",
                    HTTP_PORT_RETRY.as_secs()
                );
                waiting = true;
            }
            std::thread::sleep(Duration::from_millis(50));
            continue;
        }
        let why = if busy {
            // Another user's program there could serve a look-alike page on
            // the web UI's origin: say whose it is (`http::owner`).
            let whose = match http::owner::foreign_uid(port) {
                Some(uid) => format!(
                    " (uid {uid}, not this daemon's user: a page it serves could pose as \
                     Ringlet's web UI; do not sign in there)"
                ),
                None => String::new(),
            };
            format!(
                "{host}:{port} is held by another process{whose} (retried for {} s); \
                 stop it or set [daemon] http_port",
                HTTP_PORT_RETRY.as_secs()
            )
        } else {
            format!("cannot listen on {host}:{port}: {err}")
        };
        crate::error!("HTTP API disabled: {why}");
        let _ = state.http_error.set(why);
        return Err(err);
    }
}

/// Options of `ringlet daemon`.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Never exit for idleness.
    pub stay_alive: bool,
    /// Send the log here instead of stderr (set by the CLI that spawns us).
    pub log_file: Option<PathBuf>,
}

/// Messages to the main thread.
#[derive(Debug)]
pub enum Ctl {
    Shutdown {
        reason: String,
    },
    /// A remote terminal session's agent ended: recorded like the end of a
    /// local run (ProfileStopped, `sessions.jsonl`) by the main thread,
    /// since the session thread has no handle on the whole state.
    RunEnded(crate::protocol::RunEnded),
}

/// Everything the request handlers share.
pub struct State {
    pub paths: Paths,
    pub config: Config,
    /// Never exit for idleness: `Options::stay_alive`, or switched on
    /// later by a `DaemonStayAlive` request (`daemon --stay-alive` while
    /// this daemon runs).
    pub keep_alive: AtomicBool,
    pub started: Instant,
    /// `PATH` as the daemon received it; detection searches it.
    pub path_var: Option<OsString>,
    pub activity: Activity,
    /// Emitted to by handlers and the main thread; read by subscriber threads.
    pub events: Arc<EventBus>,
    /// Requests answered so far (all connection threads increment it).
    pub requests_served: AtomicU64,
    /// The loaded manifests, the registry commit and the fingerprint of the
    /// user dirs they came from; connection threads reload it when a user
    /// file changes or `registry/current` names another commit.
    catalog: Mutex<Option<(CatalogKey, Arc<Catalog>)>>,
    /// The detection cache. Held for a whole detection by the connection
    /// thread running it, so concurrent listings never probe twice.
    pub detector: Mutex<Detector>,
    /// The keychain (opened on first use, then kept) and the file store.
    pub secrets: Secrets,
    /// The profile files; changes serialize on the store's own lock.
    pub profiles: Store,
    /// Local runs in progress (run id -> start): a CLI waiting on its agent
    /// keeps the daemon alive so the end of the run is recorded here.
    pub runs: Mutex<HashMap<String, Instant>>,
    /// Usage store, scanner and prices (loaded on first use).
    pub usage: Tracker,
    /// Set when shutdown begins; background threads (the usage watcher, the
    /// WebSocket connections) stop.
    pub stopping: AtomicBool,
    /// The HTTP bearer token; replaced by `daemon token --rotate` (IPC
    /// thread), read by every HTTP connection thread.
    http_token: RwLock<String>,
    /// Browser login tickets (`ringlet ui`), spent by `POST /api/login`.
    pub tickets: http::auth::Tickets,
    /// The browser sessions those tickets bought (`browser`).
    pub browser: browser::Sessions,
    /// Where the HTTP front door listens, once it does.
    pub http: OnceLock<http::HttpInfo>,
    /// Why it does not, when its port could not be bound.
    pub http_error: OnceLock<String>,
    /// A second handle on the HTTP listening socket, so shutdown can release
    /// the port before the lock (the accept thread owns the listener).
    http_listener: OnceLock<std::net::TcpListener>,
    /// Remote terminal sessions (each one's state is owned by its thread).
    pub terminals: crate::terminal::Registry,
    /// The profiles' routing proxies (owned by the `proxy-supervisor` thread).
    pub proxies: crate::proxy::supervisor::Proxies,
    /// Registry syncs: one at a time, each on its own thread.
    pub registry: Arc<crate::registry::runner::Runner>,
    ctl: Sender<Ctl>,
}

/// What a loaded [`Catalog`] depends on: the registry commit `current`
/// names and the user manifest dirs' fingerprint.
type CatalogKey = (Option<String>, Vec<manifests::Fingerprint>);

impl State {
    /// The current manifests, reloaded only if `agents.d`/`providers.d`
    /// changed or a registry sync (or rollback) switched `current`. A commit
    /// directory never changes once made, so its name stands for its files:
    /// one `readlink`, no walk of the registry.
    pub fn catalog(&self) -> Arc<Catalog> {
        let agents_d = self.paths.agents_d();
        let providers_d = self.paths.providers_d();
        let key = (
            crate::registry::current_commit(&self.paths),
            manifests::dir_fingerprint(&[&agents_d, &providers_d]),
        );
        let mut slot = self.catalog.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((k, catalog)) = slot.as_ref()
            && *k == key
        {
            return catalog.clone();
        }
        let catalog = Arc::new(Catalog::load(&self.paths));
        for w in catalog.agent_warnings.iter().chain(&catalog.provider_warnings) {
            crate::warn!("manifest: {w}");
        }
        *slot = Some((key, catalog.clone()));
        catalog
    }

    /// What the profile operations work with, borrowed from the daemon.
    pub fn services<'a>(&'a self, catalog: &'a Catalog) -> Services<'a> {
        Services {
            paths: &self.paths,
            config: &self.config,
            catalog,
            store: &self.profiles,
            secrets: &self.secrets,
        }
    }

    /// The HTTP API's current token.
    pub fn http_token(&self) -> String {
        self.http_token.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Replaces the HTTP token (file first, then memory).
    pub fn rotate_http_token(&self) -> Result<String> {
        let token = http::auth::rotate(&self.paths.config_dir.join("http_token"))?;
        *self.http_token.write().unwrap_or_else(|p| p.into_inner()) = token.clone();
        Ok(token)
    }

    /// Asks the main thread to shut down.
    pub fn request_shutdown(&self, reason: &str) {
        let _ = self.ctl.send(Ctl::Shutdown { reason: reason.into() });
    }
}

/// What counts as activity for the idle timeout: requests in flight, open
/// subscriptions (and, in later issues, HTTP requests, WebSockets and
/// terminal sessions), and the time of the last one.
pub struct Activity {
    epoch: Instant,
    /// Milliseconds since `epoch` of the last activity.
    last_ms: AtomicU64,
    /// Things going on right now; idle time only counts while this is zero.
    busy: AtomicUsize,
}

impl Activity {
    fn new() -> Activity {
        Activity { epoch: Instant::now(), last_ms: AtomicU64::new(0), busy: AtomicUsize::new(0) }
    }

    pub fn touch(&self) {
        let now = self.epoch.elapsed().as_millis() as u64;
        self.last_ms.fetch_max(now, Ordering::Relaxed);
    }

    /// Marks something as going on until the guard is dropped.
    pub fn busy(&self) -> BusyGuard<'_> {
        self.touch();
        self.busy.fetch_add(1, Ordering::SeqCst);
        BusyGuard(self)
    }

    pub fn in_flight(&self) -> usize {
        self.busy.load(Ordering::SeqCst)
    }

    /// How long nothing has happened, or `None` while something is going on.
    fn idle_for(&self) -> Option<Duration> {
        if self.in_flight() > 0 {
            return None;
        }
        let now = self.epoch.elapsed().as_millis() as u64;
        Some(Duration::from_millis(now.saturating_sub(self.last_ms.load(Ordering::Relaxed))))
    }
}

pub struct BusyGuard<'a>(&'a Activity);

impl Drop for BusyGuard<'_> {
    fn drop(&mut self) {
        self.0.busy.fetch_sub(1, Ordering::SeqCst);
        self.0.touch();
    }
}

/// Runs the daemon in this process until shutdown. A detached daemon also
/// logs a fatal error as an ERROR line, which the CLI that spawned it reports.
pub fn run(paths: Paths, options: Options) -> Result<()> {
    let detached = options.log_file.is_some();
    harden()?;
    seal_inherited_fds();
    if let Some(log) = &options.log_file {
        crate::logger::log_to_file(log)?;
    }
    serve_until_shutdown(paths, options).inspect_err(|e| {
        if detached {
            crate::error!("{e:#}");
        }
    })
}

fn serve_until_shutdown(paths: Paths, options: Options) -> Result<()> {
    let config = Config::load(&paths.config_file()).context("loading config")?;
    let secret_store = Secrets::forced_from_env()?;
    paths.ensure_runtime_dir()?;

    // The lock is held for the daemon's whole life; the kernel releases it
    // when the process dies, however it dies, so it can never go stale.
    let lock_path = paths.daemon_lock();
    // Never through a link; a regular file of ours only.
    let lock_file =
        crate::fsutil::open_private(&lock_path, crate::fsutil::Access::ReadWrite, 0o600)
            .with_context(|| format!("opening lock file {}", lock_path.display()))?;
    let mut lock = fd_lock::RwLock::new(lock_file);
    wait_for_an_exiting_daemon(&mut lock, &paths)?;
    let mut guard = match lock.try_write() {
        Ok(guard) => guard,
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
            bail!("a daemon is already running for {}", paths.socket.display())
        }
        Err(e) => return Err(e).context("locking the daemon lock file"),
    };
    // Record our pid for `daemon status` diagnostics (informational only).
    let _ = guard.set_len(0).and_then(|()| writeln!(*guard, "{}", std::process::id()));

    let listener = ipc::bind(&paths.socket)?;
    let socket_id = std::fs::metadata(&paths.socket).map(|m| (m.dev(), m.ino())).ok();

    crate::fsutil::create_private_dir(&paths.config_dir)?;
    let http_token = http::auth::load_or_create(&paths.config_dir.join("http_token"))?;

    let (ctl_tx, ctl_rx) = mpsc::channel();
    let state = Arc::new(State {
        detector: Mutex::new(Detector::new(paths.detection_cache())),
        secrets: Secrets::new(paths.config_dir.join("secrets"), secret_store),
        profiles: Store::new(paths.config_dir.join("profiles")),
        runs: Mutex::new(HashMap::new()),
        usage: Tracker::new(&paths.config_dir, config.pricing.clone()),
        stopping: AtomicBool::new(false),
        http_token: RwLock::new(http_token),
        tickets: http::auth::Tickets::default(),
        browser: browser::Sessions::load(paths.config_dir.join(browser::FILE_NAME)),
        http: OnceLock::new(),
        http_error: OnceLock::new(),
        http_listener: OnceLock::new(),
        terminals: crate::terminal::Registry::default(),
        proxies: crate::proxy::supervisor::Proxies::new()?,
        registry: Arc::default(),
        paths,
        config,
        keep_alive: AtomicBool::new(options.stay_alive),
        started: Instant::now(),
        path_var: std::env::var_os("PATH"),
        activity: Activity::new(),
        events: Arc::new(EventBus::default()),
        requests_served: AtomicU64::new(0),
        catalog: Mutex::new(None),
        ctl: ctl_tx.clone(),
    });

    // Before any request: finish or roll back what a killed daemon left.
    crate::profiles::recover::at_start(&state.paths, &state.profiles, &state.secrets);
    let checker = state.clone();
    let _ = std::thread::Builder::new().name("profile-check".into()).spawn(move || {
        crate::profiles::recover::check_profiles(&checker.profiles, &checker.secrets)
    });
    signals::spawn_signals(ctl_tx).context("starting the signal thread")?;
    ipc::spawn_accept(listener, state.clone()).context("starting the IPC thread")?;
    usage::spawn_watcher(state.clone()).context("starting the usage watcher")?;
    state.proxies.spawn_thread(state.events.clone())?;
    state.registry.spawn_auto(&state.paths, &state.events);
    if let Some(info) = http::start(&state).context("starting the HTTP API")? {
        let _ = state.http.set(info);
    }
    browser::spawn_expiry(state.clone()).context("starting the browser session expiry")?;

    let pid = std::process::id();
    crate::info!(
        "daemon {} (protocol {}) listening on {} (pid {pid})",
        env!("CARGO_PKG_VERSION"),
        crate::protocol::PROTOCOL_VERSION,
        state.paths.socket.display()
    );
    state.events.emit(
        EventKind::DaemonStarted,
        json!({"pid": pid, "version": env!("CARGO_PKG_VERSION"), "socket": state.paths.socket}),
    );
    announce_ready(&state)?;

    let reason = serve(&state, &ctl_rx);
    shutdown(&state, &ctl_rx, socket_id, &reason);
    // The port before the lock: shutting the listening socket down frees
    // its port for a successor at once (the accept thread, which owns it,
    // sees errors for the moment the process has left). The lock is then
    // released by the kernel as the process ends, with every other
    // descriptor; `daemon stop` waits for that exit.
    if let Some(listener) = state.http_listener.get() {
        let _ = rustix::net::shutdown(listener, rustix::net::Shutdown::Both);
    }
    std::mem::forget(guard);
    std::mem::forget(lock);
    Ok(())
}

/// Waits while the lock is held by a daemon that no longer answers on the
/// socket (it is shutting down, or still starting), up to [`LOCK_WAIT`]. A
/// daemon that answers is live: no wait, the caller reports it.
fn wait_for_an_exiting_daemon(lock: &mut fd_lock::RwLock<File>, paths: &Paths) -> Result<()> {
    let deadline = Instant::now() + LOCK_WAIT;
    let mut waiting = false;
    loop {
        match lock.try_write() {
            Ok(_probe) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e).context("locking the daemon lock file"),
        }
        if std::os::unix::net::UnixStream::connect(&paths.socket).is_ok()
            || Instant::now() >= deadline
        {
            return Ok(());
        }
        if !waiting {
            crate::info!(
                "waiting for the daemon that holds {} to exit",
                paths.daemon_lock().display()
            );
            waiting = true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits for a shutdown request or the idle timeout; returns the reason.
fn serve(state: &State, ctl: &mpsc::Receiver<Ctl>) -> String {
    loop {
        // Read each time: `daemon --stay-alive` may switch it on meanwhile.
        let idle_limit = (!state.keep_alive.load(Ordering::SeqCst))
            .then(|| Duration::from_secs(state.config.daemon.idle_timeout_secs));
        // Wake when the idle deadline could first pass, at least once a
        // second so a deadline moved by activity is noticed promptly.
        let wait = match (idle_limit, state.activity.idle_for()) {
            (Some(limit), Some(idle)) => limit.saturating_sub(idle).min(Duration::from_secs(1)),
            _ => Duration::from_secs(1),
        };
        match ctl.recv_timeout(wait.max(Duration::from_millis(10))) {
            Ok(Ctl::Shutdown { reason }) => return reason,
            Ok(Ctl::RunEnded(ended)) => record_remote_end(state, ended),
            Err(RecvTimeoutError::Disconnected) => return "control channel closed".into(),
            Err(RecvTimeoutError::Timeout) => {
                // Running terminal sessions keep the daemon (and so the
                // agents) alive with no client attached: that is their point.
                // So does a proxy relaying an agent's requests.
                if local_runs_in_progress(state)
                    || state.terminals.any_running()
                    || state.proxies.recently_active()
                    || state.registry.running()
                {
                    state.activity.touch();
                }
                state.terminals.cleanup(crate::terminal::ENDED_TTL);
                if let (Some(limit), Some(idle)) = (idle_limit, state.activity.idle_for())
                    && idle >= limit
                {
                    return format!("idle for {} s", limit.as_secs());
                }
            }
        }
    }
}

/// The end of a remote session's run, recorded as a local run's end is.
fn record_remote_end(state: &State, ended: crate::protocol::RunEnded) {
    let alias = ended.alias.clone();
    let request = crate::protocol::Request::ProfilesRunEnded(ended);
    if let crate::protocol::Reply::Err { error } = dispatch::handle(state, request) {
        crate::warn!("profile {alias}: recording the end of a remote run: {}", error.message);
    }
}

/// Whether a CLI is waiting on an agent it started. A run whose end was
/// never reported (its CLI was killed) stops counting after a day.
fn local_runs_in_progress(state: &State) -> bool {
    const FORGET_AFTER: Duration = Duration::from_secs(24 * 3600);
    let mut runs = state.runs.lock().unwrap_or_else(|p| p.into_inner());
    runs.retain(|_, started| started.elapsed() < FORGET_AFTER);
    !runs.is_empty()
}

/// Announces, lets in-flight requests finish, and removes the socket (only
/// if it is still the one we bound: never a successor's).
fn shutdown(state: &State, ctl: &mpsc::Receiver<Ctl>, socket_id: Option<(u64, u64)>, reason: &str) {
    crate::info!("shutting down: {reason}");
    state.stopping.store(true, Ordering::Relaxed);
    // Every agent's process group ends with the daemon, and each end is
    // recorded before the shutdown is announced.
    state.terminals.shutdown();
    // Then the proxies they talked to (SIGTERM, a grace, SIGKILL).
    state.proxies.shutdown();
    while let Ok(msg) = ctl.try_recv() {
        if let Ctl::RunEnded(ended) = msg {
            record_remote_end(state, ended);
        }
    }
    state.events.emit(EventKind::DaemonShuttingDown, json!({"reason": reason}));
    if let Some(id) = socket_id
        && std::fs::metadata(&state.paths.socket).map(|m| (m.dev(), m.ino())).ok() == Some(id)
    {
        let _ = std::fs::remove_file(&state.paths.socket);
        let _ = std::fs::remove_file(state.paths.rest_socket());
    }
    // Subscriber connections count as busy; they end once they have written
    // the shutdown event, so this waits for them too (bounded).
    let deadline = Instant::now() + SHUTDOWN_GRACE;
    while state.activity.in_flight() > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Tells whoever started us that we are serving: one line on stdout. When
/// stdout is a pipe from a spawning CLI, it is then pointed at /dev/null so a
/// CLI that has gone away can never make a later write fail.
fn announce_ready(state: &State) -> Result<()> {
    let mut out = io::stdout().lock();
    let _ = writeln!(
        out,
        "ringlet daemon listening on {} (pid {})",
        state.paths.socket.display(),
        std::process::id()
    );
    let _ = out.flush();
    let is_pipe = rustix::fs::fstat(&out)
        .map(|st| rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::Fifo)
        .unwrap_or(false);
    if is_pipe {
        let null = File::options().write(true).open("/dev/null").context("opening /dev/null")?;
        rustix::stdio::dup2_stdout(&null).context("detaching stdout")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_environment_allowlist() {
        for name in ["PATH", "HOME", "LC_ALL", "XDG_RUNTIME_DIR", "RINGLET_LOG", "no_proxy", "TZ"] {
            assert!(env_allowed(name.as_ref()), "{name}");
        }
        for name in
            ["ANTHROPIC_API_KEY", "OPENAI_API_KEY", "AWS_SECRET_ACCESS_KEY", "TERM", "PATHX"]
        {
            assert!(!env_allowed(name.as_ref()), "{name}");
        }
    }
}

//! The checks the daemon can run about itself, each with what to do when it
//! fails: served as `GET /api/doctor` (the web UI's Doctor page) and shown by
//! `ringlet doctor` beside the checks only the CLI can make (the sandbox on
//! the user's own PATH, `ringlet` and the shim dir on PATH, stale shims).
//! The checks that need only files ([`config_check`], [`manifests_check`],
//! [`keystore_check`], [`key_files_check`]) are public so that `ringlet
//! doctor` runs the same code when no daemon runs.
//!
//! Every check is cheap and local: files the daemon already reads, its own
//! state, one trial sandbox, one keychain open. None starts anything, and
//! none ever reads a secret: the key files are only listed and `lstat`ed.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::daemon::{State, dispatch};
use crate::manifests::Catalog;
use crate::paths::Paths;
use crate::protocol::Request;
use crate::secrets::{Secrets, StoreKind};

/// Registry copies older than this are called stale (a warning).
const STALE_REGISTRY_DAYS: i64 = 30;

/// One check's outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Check {
    /// A short word: `daemon`, `config`, `agent`, `sandbox`, `proxy`...
    pub name: String,
    pub status: Status,
    /// What was found, one line.
    pub detail: String,
    /// What to do about it, when there is something to do.
    #[serde(default)]
    pub fix: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    /// Works, but something deserves a look; `doctor` still exits 0.
    Warn,
    /// Broken; `doctor` exits 1.
    Fail,
}

impl Status {
    /// The CLI's column, four wide.
    pub fn label(self) -> &'static str {
        match self {
            Status::Ok => "ok  ",
            Status::Warn => "warn",
            Status::Fail => "FAIL",
        }
    }
}

impl Check {
    pub fn new(name: &str, status: Status, detail: impl Into<String>) -> Check {
        Check { name: name.into(), status, detail: detail.into(), fix: None }
    }

    pub fn fix(mut self, fix: impl Into<String>) -> Check {
        self.fix = Some(fix.into());
        self
    }
}

impl Status {
    /// The worse of two outcomes.
    pub fn worst(self, other: Status) -> Status {
        let rank = |s| match s {
            Status::Ok => 0,
            Status::Warn => 1,
            Status::Fail => 2,
        };
        if rank(other) > rank(self) { other } else { self }
    }
}

/// Every check the daemon runs, in the order shown.
pub fn daemon_checks(state: &State) -> Vec<Check> {
    let mut checks =
        vec![daemon(state), config_check(&state.paths), manifests_check(&state.catalog())];
    checks.extend(agents(state));
    checks.extend(keys(state));
    checks.push(sandbox(state));
    checks.push(http(state));
    checks.extend(proxies(state));
    checks.push(registry(state));
    checks
}

fn daemon(state: &State) -> Check {
    let up = state.started.elapsed().as_secs();
    let up = match up {
        s if s < 120 => format!("{s} s"),
        s if s < 7200 => format!("{} min", s / 60),
        s => format!("{} h", s / 3600),
    };
    let detail = format!(
        "ringlet {} (protocol {}), pid {}, up {up}",
        env!("CARGO_PKG_VERSION"),
        crate::protocol::PROTOCOL_VERSION,
        std::process::id()
    );
    // An upgrade (`make install`, a package) replaces the file under a
    // daemon that keeps running the old code until it stops.
    match replaced_binary() {
        Some(exe) => Check::new(
            "daemon",
            Status::Warn,
            format!(
                "{detail}; its binary {exe} was replaced or removed since it started: it still runs the old code"
            ),
        )
        .fix("ringlet daemon stop (the next command starts the installed ringlet)"),
        None => Check::new("daemon", Status::Ok, detail),
    }
}

/// The path this process was started from, when that file has since been
/// removed or replaced (Linux marks the link ` (deleted)`).
fn replaced_binary() -> Option<String> {
    let exe = std::fs::read_link("/proc/self/exe").ok()?;
    let exe = exe.to_string_lossy();
    exe.strip_suffix(" (deleted)").map(str::to_string)
}

/// config.toml as it is on disk now (the daemon keeps what it read at start).
pub fn config_check(paths: &Paths) -> Check {
    let path = paths.config_file();
    match crate::config::Config::load(&path) {
        Ok(_) if path.exists() => {
            Check::new("config", Status::Ok, format!("{} loads", path.display()))
        }
        Ok(_) => Check::new("config", Status::Ok, format!("no {}: the defaults", path.display())),
        Err(e) => Check::new("config", Status::Fail, format!("{e:#}")).fix(format!(
            "fix {}; the daemon keeps the settings it started with until `ringlet daemon stop`",
            path.display()
        )),
    }
}

/// The agent and provider manifests: what loads, and the files that do not.
pub fn manifests_check(catalog: &Catalog) -> Check {
    let warnings: Vec<&String> =
        catalog.agent_warnings.iter().chain(&catalog.provider_warnings).collect();
    let layer = |l| {
        catalog.agents.iter().filter(|a| a.layer == l).count()
            + catalog.providers.iter().filter(|p| p.layer == l).count()
    };
    let registry = layer(crate::manifests::Layer::Registry);
    let user = layer(crate::manifests::Layer::User);
    let detail = format!(
        "{} agents, {} providers ({registry} from the synced registry, {user} from agents.d/providers.d)",
        catalog.agents.len(),
        catalog.providers.len(),
    );
    if warnings.is_empty() {
        return Check::new("manifests", Status::Ok, detail);
    }
    let list: Vec<&str> = warnings.iter().map(|w| w.as_str()).collect();
    Check::new("manifests", Status::Warn, format!("{detail}; not used: {}", list.join("; ")))
        .fix("fix or remove the files named")
}

/// Each agent found, with its version; the missing ones in one line.
fn agents(state: &State) -> Vec<Check> {
    let list = data(state, Request::AgentsList);
    let agents = list["agents"].as_array().cloned().unwrap_or_default();
    let mut checks = Vec::new();
    let mut missing = Vec::new();
    for a in &agents {
        let id = a["id"].as_str().unwrap_or("?");
        if a["installed"] != true {
            missing.push(id.to_string());
            continue;
        }
        let at = a["path"].as_str().unwrap_or("?");
        checks.push(match (a["version"].as_str(), a["probe_error"].as_str()) {
            (Some(v), _) => Check::new("agent", Status::Ok, format!("{id} {v} ({at})")),
            (None, why) => Check::new(
                "agent",
                Status::Warn,
                format!("{id} at {at}: version unknown: {}", why.unwrap_or("no output")),
            )
            .fix(format!("run `{at} --version` to see what it says")),
        });
    }
    if checks.is_empty() {
        checks.push(
            Check::new("agent", Status::Warn, "no agent found on the daemon's PATH")
                .fix("install one (Claude Code, Codex, OpenCode...), then `ringlet daemon stop`"),
        );
    }
    if !missing.is_empty() && checks.iter().any(|c| c.status == Status::Ok) {
        let detail = format!("not found on the daemon's PATH: {}", missing.join(", "));
        checks.push(Check::new("agent", Status::Ok, detail));
    }
    checks
}

/// Where keys go, profiles whose key is gone, and the keys in plain files.
fn keys(state: &State) -> Vec<Check> {
    let in_use = state.secrets.store_in_use();
    let mut checks = vec![keystore_check(&in_use)];
    let list = data(state, Request::ProfilesList { agent: None });
    if let Some(profiles) = list["profiles"].as_array() {
        let missing: Vec<&str> = profiles
            .iter()
            .filter(|p| p["key_missing"] == true)
            .filter_map(|p| p["alias"].as_str())
            .collect();
        checks.push(if missing.is_empty() {
            Check::new(
                "keys",
                Status::Ok,
                format!("{} profile(s), every key stored", profiles.len()),
            )
        } else {
            Check::new(
                "keys",
                Status::Fail,
                format!(
                    "no API key stored for {}: delete the profile and create it again",
                    missing.join(", ")
                ),
            )
            .fix("ringlet profiles delete <alias>, then ringlet profiles create ...")
        });
    }
    checks.push(key_files_check(&state.paths, &in_use));
    checks
}

/// Where a key stored now goes, from [`Secrets::store_in_use`]: the
/// keychain, files by the user's choice (`RINGLET_SECRET_STORE=file`), or
/// files because no keychain answers (a warning: keys then sit in plain
/// files, and the user may not know).
pub fn keystore_check(in_use: &(StoreKind, String)) -> Check {
    let (kind, why) = in_use;
    match (kind, pinned()) {
        (StoreKind::File, None) => Check::new(
            "keystore",
            Status::Warn,
            format!("new keys go to plain files: {why}"),
        )
        .fix(
            "run a Secret Service in your session (GNOME Keyring, KeePassXC) and restart the daemon \
             (`ringlet daemon stop`), or set RINGLET_SECRET_STORE=file to choose files knowingly",
        ),
        _ => Check::new("keystore", Status::Ok, why.clone()),
    }
}

/// What RINGLET_SECRET_STORE pins in this process (an invalid value never
/// gets this far: the daemon refuses to start with one).
fn pinned() -> Option<StoreKind> {
    Secrets::forced_from_env().ok().flatten()
}

/// Every secret kept in a plain file (`<config>/secrets/`), named, with why
/// it is there: the pin of RINGLET_SECRET_STORE (fine: the user chose
/// files), no keychain reachable, or a fallback or a hand-made file while
/// the keychain works (worth moving). A file other users can read is a
/// failure; one no profile uses is a warning. The files are `lstat`ed,
/// never read.
pub fn key_files_check(paths: &Paths, in_use: &(StoreKind, String)) -> Check {
    let dir = paths.config_dir.join("secrets");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Check::new("keyfiles", Status::Ok, "no key in plain files");
    };
    let profiles = crate::profiles::Store::new(paths.config_dir.join("profiles"));
    let mut names: Vec<String> = entries
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        // Temp files of an atomic write in progress start with a dot.
        .filter(|n| !n.starts_with('.'))
        .collect();
    names.sort();
    if names.is_empty() {
        return Check::new("keyfiles", Status::Ok, "no key in plain files");
    }
    let mut status = Status::Ok;
    let mut fixes = Vec::new();
    let mut listed = Vec::new();
    for name in &names {
        let path = dir.join(name);
        let Ok(meta) = std::fs::symlink_metadata(&path) else { continue };
        let mut notes = Vec::new();
        if !meta.file_type().is_file() {
            notes.push("not a regular file: never read".to_string());
            status = status.worst(Status::Warn);
            fixes.push(format!("rm {}", shell_word(&path)));
            listed.push(format!("{name} ({})", notes.join("; ")));
            continue;
        }
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            notes.push(format!("mode {mode:o}, readable by other users"));
            status = status.worst(Status::Fail);
            fixes.push(format!("chmod 600 {}", shell_word(&path)));
        }
        let unused = match crate::secrets::owner(name) {
            crate::secrets::Owner::Profile(alias) => {
                (!profiles.path(alias).exists()).then(|| format!("no profile `{alias}` uses it"))
            }
            crate::secrets::Owner::Proxy(alias) => (!profiles.path(alias).exists())
                .then(|| format!("a proxy token no profile `{alias}` uses")),
            crate::secrets::Owner::Provider(_) => None,
        };
        if let Some(unused) = unused {
            notes.push(unused);
            status = status.worst(Status::Warn);
            fixes.push(format!(
                "rm {} (the daemon also removes it at its next start)",
                shell_word(&path)
            ));
        }
        listed.push(if notes.is_empty() {
            name.clone()
        } else {
            format!("{name} ({})", notes.join("; "))
        });
    }
    let (kind, why) = in_use;
    let why = match (pinned(), kind) {
        (Some(StoreKind::File), _) => "RINGLET_SECRET_STORE=file pins the file store".to_string(),
        (_, StoreKind::File) => why.clone(),
        (_, StoreKind::Keyring) => {
            status = status.worst(Status::Warn);
            fixes.push(
                "move them to the keychain, which works now: `ringlet providers key set <id>` \
                 for a provider key; delete and create a profile again for its key"
                    .into(),
            );
            "left from a time no keychain answered, or written by hand; the keychain works now"
                .to_string()
        }
    };
    let check = Check::new(
        "keyfiles",
        status,
        format!(
            "{} secret(s) in plain files in {}: {}; why: {why}",
            listed.len(),
            dir.display(),
            listed.join(", ")
        ),
    );
    if fixes.is_empty() { check } else { check.fix(fixes.join("; ")) }
}

/// `path` as one shell word, for a fix the user pastes.
pub fn shell_word(path: &Path) -> String {
    let text = path.display().to_string();
    if text.bytes().all(|b| b.is_ascii_alphanumeric() || b"/._-+~".contains(&b)) {
        text
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

/// The sandbox sessions started by the daemon itself (the web UI's) get:
/// bwrap found on the daemon's PATH and proved to work.
fn sandbox(state: &State) -> Check {
    if cfg!(target_os = "macos") {
        let exec = crate::terminal::sandbox::SANDBOX_EXEC;
        return if std::path::Path::new(exec).is_file() {
            Check::new("sandbox", Status::Ok, format!("{exec} is there"))
        } else {
            Check::new("sandbox", Status::Fail, format!("{exec} is missing"))
                .fix("start sessions without the sandbox (--no-sandbox)")
        };
    }
    match crate::terminal::sandbox::check_bwrap(state.path_var.as_deref()) {
        Ok(bwrap) => Check::new(
            "sandbox",
            Status::Ok,
            format!("bwrap works for the daemon ({})", bwrap.display()),
        ),
        Err(e) => Check::new("sandbox", Status::Fail, format!("for the daemon: {e}"))
            .fix("or start sessions without the sandbox (--no-sandbox)"),
    }
}

fn http(state: &State) -> Check {
    match (state.http.get(), state.http_error.get()) {
        // Listening is not enough: another uid on the same port at another
        // loopback address (`[::1]` beside 127.0.0.1) gets the web UI's
        // origin too.
        (Some(info), _) => match crate::daemon::http::owner::check(info.addr.port()) {
            Ok(owner) => Check::new(
                "http",
                Status::Ok,
                format!("listening on http://{}; {owner}", info.addr),
            ),
            Err(foreign) => Check::new("http", Status::Fail, foreign)
                .fix("do not sign in to the web UI until that process is gone"),
        },
        (None, why) => Check::new(
            "http",
            Status::Fail,
            match why {
                Some(why) => format!("not listening: {why}"),
                None => "not listening; the daemon log says why".into(),
            },
        )
        .fix("free the port or set [daemon] http_port in config.toml, then `ringlet daemon stop`"),
    }
}

/// Each proxy's health, as the supervisor sees it.
fn proxies(state: &State) -> Vec<Check> {
    let list = data(state, Request::ProxyStatus { alias: None });
    let Some(proxies) = list.as_array() else { return Vec::new() };
    proxies.iter().map(proxy).collect()
}

fn proxy(p: &Value) -> Check {
    let alias = p["alias"].as_str().unwrap_or("?");
    let port = p["port"].as_u64().map_or("-".to_string(), |p| p.to_string());
    match p["state"].as_str().unwrap_or("?") {
        "running" => match (p["pid"].as_u64(), p["stats_error"].as_str()) {
            (Some(pid), None) => Check::new(
                "proxy",
                Status::Ok,
                format!("{alias}: running on port {port} (pid {pid})"),
            ),
            (_, why) => Check::new(
                "proxy",
                Status::Fail,
                format!("{alias}: running on port {port} but {}", why.unwrap_or("unhealthy")),
            )
            .fix(format!("ringlet proxy restart {alias}")),
        },
        "failed" => Check::new(
            "proxy",
            Status::Fail,
            format!(
                "{alias}: failed: {} (`ringlet proxy start {alias}` tries again)",
                p["last_error"].as_str().unwrap_or("no reason recorded")
            ),
        )
        .fix(format!("ringlet proxy logs {alias}; ringlet proxy start {alias}")),
        "starting" => Check::new(
            "proxy",
            Status::Ok,
            match p["last_error"].as_str() {
                Some(why) => format!("{alias}: restarting on port {port} after: {why}"),
                None => format!("{alias}: starting on port {port}"),
            },
        ),
        other => Check::new("proxy", Status::Ok, format!("{alias}: {other} (port {port})")),
    }
}

/// How old the synced registry is, and how its last sync went.
fn registry(state: &State) -> Check {
    let view = match crate::registry::runner::view(&state.paths, &state.registry, false) {
        Ok(view) => view,
        Err(e) => return Check::new("registry", Status::Fail, format!("{e:#}")),
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let age = view
        .last_sync
        .as_deref()
        .and_then(crate::usage::parse_timestamp_ms)
        .map(|ms| (now - ms).max(0) / 86_400_000);
    let commit = view.commit.as_deref().map(|c| &c[..c.len().min(12)]);
    if let Some(why) = view.last_error.as_deref() {
        return Check::new("registry", Status::Warn, format!("the last sync failed: {why}"))
            .fix("ringlet registry sync (the copy in use stays until one succeeds)");
    }
    match (commit, age) {
        (None, _) => Check::new("registry", Status::Ok, "never synced: the built-in manifests")
            .fix("ringlet registry sync, for newer manifests and prices"),
        (Some(c), Some(days)) if days > STALE_REGISTRY_DAYS => {
            Check::new("registry", Status::Warn, format!("{c}, last synced {days} days ago"))
                .fix("ringlet registry sync")
        }
        (Some(c), Some(days)) => {
            Check::new("registry", Status::Ok, format!("{c}, last synced {days} day(s) ago"))
        }
        (Some(c), None) => Check::new("registry", Status::Ok, format!("{c} (sync time unknown)")),
    }
}

/// A request's data through the one dispatcher (`null` on an error).
fn data(state: &State, request: Request) -> Value {
    match dispatch::handle(state, request) {
        crate::protocol::Reply::Ok { data } => data,
        crate::protocol::Reply::Err { .. } => Value::Null,
    }
}

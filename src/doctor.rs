//! The checks the daemon can run about itself, each with what to do when it
//! fails: served as `GET /api/doctor` (the web UI's Doctor page) and shown by
//! `ringlet doctor` beside the checks only the CLI can make (the sandbox on
//! the user's own PATH; later PATH and shims).
//!
//! Every check is cheap and local: files the daemon already reads, its own
//! state, one trial sandbox, one keychain open. None starts anything.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::daemon::{State, dispatch};
use crate::protocol::Request;
use crate::secrets::StoreKind;

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

/// Every check the daemon runs, in the order shown.
pub fn daemon_checks(state: &State) -> Vec<Check> {
    let mut checks = vec![daemon(state), config(state), manifests(state)];
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
    Check::new(
        "daemon",
        Status::Ok,
        format!(
            "ringlet {} (protocol {}), pid {}, up {up}",
            env!("CARGO_PKG_VERSION"),
            crate::protocol::PROTOCOL_VERSION,
            std::process::id()
        ),
    )
}

/// config.toml as it is on disk now (the daemon keeps what it read at start).
fn config(state: &State) -> Check {
    let path = state.paths.config_file();
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

fn manifests(state: &State) -> Check {
    let catalog = state.catalog();
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

/// Where keys go, and profiles whose key is gone.
fn keys(state: &State) -> Vec<Check> {
    let (kind, why) = state.secrets.store_in_use();
    let store = match kind {
        StoreKind::Keyring => Check::new("keystore", Status::Ok, why),
        StoreKind::File => Check::new("keystore", Status::Ok, why),
    };
    let mut checks = vec![store];
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
    checks
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

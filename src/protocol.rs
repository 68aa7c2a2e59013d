//! The wire protocol shared by the CLI, the IPC server and (in a later issue)
//! the HTTP API: one [`Request`] enum, one [`Reply`], the error codes a caller
//! may match on, and the framing constants.
//!
//! Framing on the Unix socket is one JSON line each way: the client writes a
//! [`RequestFrame`] and a newline and half-closes; the daemon answers with a
//! [`ReplyFrame`] line. `Subscribe` is the one streaming request: after its
//! reply the daemon keeps writing one [`EventFrame`] line per event.
//!
//! Both frames carry [`PROTOCOL_VERSION`]. A daemon refuses a request of
//! another version (except `Shutdown`, so an old daemon can always be stopped
//! by a new CLI), and the CLI refuses a reply of another version; either way
//! the message tells the user to restart the daemon.

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use crate::catalog::{ModelList, ModelView};
pub use crate::daemon::browser::BrowserSession;
use crate::profiles::Profile;
pub use crate::profiles::create::{CreateRequest, Created};
pub use crate::profiles::hooks::HookRow;
pub use crate::profiles::run::{RunEnded, RunPlan};
pub use crate::proxy::supervisor::ProxyInfo;
pub use crate::registry::runner::{RegistryView, SyncReport, SyncRequest, SyncStarted};
pub use crate::templates::TemplateList;
pub use crate::terminal::TerminalRequest;
pub use crate::terminal::session::Info as TerminalInfo;
pub use crate::usage::report::{
    ImportReport, ReportKind, Skipped, UsageQuery, UsageReport, UsageRow, UsageTotals,
};

/// Bumped whenever a request or reply changes shape.
pub const PROTOCOL_VERSION: u32 = 2;

/// Largest request line the daemon reads; anything longer is answered with
/// [`ErrorCode::TooLarge`] and the connection is closed.
pub const MAX_REQUEST_BYTES: usize = 1 << 20;

/// What the client sends: the protocol version and one request.
#[derive(Debug, Serialize, Deserialize)]
pub struct RequestFrame {
    pub version: u32,
    #[serde(with = "wire")]
    pub request: Request,
}

/// Every request the daemon serves. Each variant names the `data` of its
/// successful reply.
///
/// On the wire a request is one object tagged by `type`
/// (`{"type":"agents_inspect","id":"claude"}`); see [`wire`] for why serde
/// derives the externally tagged shape and [`wire`] reshapes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    /// Reply: a [`DaemonStatus`].
    Status,
    /// Reply: `null`; the daemon then shuts down cleanly.
    Shutdown,
    /// Reply: `{"stay_alive": true, "changed": bool}`: a running daemon
    /// stops exiting for idleness (`ringlet daemon --stay-alive` while one
    /// runs); `changed` is false if it already stayed alive.
    DaemonStayAlive,
    /// Reply: `{"token", "path"}`, the HTTP API's bearer token; `rotate`
    /// replaces it first (the old one stops working at once).
    DaemonToken {
        #[serde(default)]
        rotate: bool,
    },
    /// Reply: `{"url", "expires_in_secs"}`: the web UI's address with a
    /// one-time login ticket in its fragment (`ringlet ui`).
    UiTicket,
    /// Reply: an array of [`BrowserSession`], the most recently used
    /// first; the one whose id is `current` (the HTTP caller's own) is
    /// marked.
    BrowserSessionsList {
        #[serde(default)]
        current: Option<String>,
    },
    /// Reply: `{"revoked": 1}`; `not_found` for an unknown id. The
    /// session's WebSockets close.
    BrowserSessionsRevoke { id: String },
    /// Reply: `{"revoked": <count>}`: every browser session ends.
    BrowserSessionsRevokeAll,
    /// Reply: an [`AgentList`]; runs detection (cached) for every agent.
    AgentsList,
    /// Reply: one [`AgentInfo`] with its manifest; `not_found` otherwise.
    AgentsInspect { id: String },
    /// Reply: a [`ProviderList`].
    ProvidersList,
    /// Reply: one [`ProviderInfo`] with its manifest; `not_found` otherwise.
    ProvidersInspect { id: String },
    /// Reply: a [`TemplateList`]: the profile templates, or those for
    /// `agent` (`not_found` for an unknown agent).
    ProfilesTemplates {
        #[serde(default)]
        agent: Option<String>,
    },
    /// Reply: a [`ModelList`]: the model catalog, or one provider's
    /// (`not_found` for a provider neither manifests nor catalog know).
    Models {
        #[serde(default)]
        provider: Option<String>,
    },
    /// Reply: `{"events": [EventFrame...]}`, the last `limit` (default 50,
    /// at most what the daemon keeps) events of the `events` types (all
    /// when empty), oldest first.
    EventsRecent {
        #[serde(default)]
        limit: Option<usize>,
        #[serde(default)]
        events: Vec<String>,
    },
    /// Reply: what a new profile can pick from config.toml, for forms:
    /// `{"hook_sets": [{name, event, matcher}], "mcp_servers": [{name,
    /// type, command|url}], "hook_events": [...], "permission_modes":
    /// [...]}`. No MCP `env` or `headers`: they may hold secrets.
    ConfigChoices,
    /// Reply: `null`, then one [`EventFrame`] line per event until the client
    /// hangs up. An empty `events` list means every event type.
    Subscribe {
        #[serde(default)]
        events: Vec<String>,
    },
    /// Reply: a [`Created`]; `not_found`/`conflict`/`bad_request` otherwise.
    ProfilesCreate(CreateRequest),
    /// Reply: a [`ProfileList`].
    ProfilesList {
        #[serde(default)]
        agent: Option<String>,
    },
    /// Reply: a [`ProfileView`].
    ProfilesInspect { alias: String },
    /// Reply: a [`Deleted`].
    ProfilesDelete {
        alias: String,
        #[serde(default)]
        purge: bool,
    },
    /// Reply: a [`RunPlan`]; the caller runs it and sends `ProfilesRunEnded`.
    ProfilesRun {
        alias: String,
        /// The caller's PATH: the agent is found where the user would find it.
        #[serde(default)]
        path: Option<String>,
        #[serde(default)]
        args: Vec<String>,
    },
    /// Reply: `null`. Records a finished run.
    ProfilesRunEnded(RunEnded),
    /// Reply: a [`ProfileEnv`].
    ProfilesEnv { alias: String },
    /// Reply: an [`AliasInfo`].
    AliasesInstall {
        alias: String,
        #[serde(default)]
        path: Option<String>,
    },
    /// Reply: an [`AliasInfo`].
    AliasesUninstall { alias: String },
    /// Reply: an array of [`AliasInfo`].
    AliasesList,
    /// Reply: the profile's hooks as [`HookRow`]s.
    HooksAdd {
        alias: String,
        event: String,
        command: String,
        #[serde(default)]
        matcher: Option<String>,
        #[serde(default)]
        timeout: Option<u64>,
    },
    /// Reply: an array of [`HookRow`].
    HooksList { alias: String },
    /// Reply: the removed [`HookRow`].
    HooksRemove { alias: String, event: String, index: usize },
    /// Reply: an array of [`HookRow`]; `hooks` replaces the profile's hooks.
    HooksImport { alias: String, hooks: Value },
    /// Reply: `{"hooks": {...}}` in Claude Code's schema.
    HooksExport { alias: String },
    /// Reply: a [`RunPlan`] that runs the agent's setup task in the profile.
    EnvSetup {
        alias: String,
        task: String,
        #[serde(default)]
        path: Option<String>,
    },
    /// Reply: a [`Stats`].
    Stats,
    /// Reply: the new session's [`TerminalInfo`].
    TerminalCreate(TerminalRequest),
    /// Reply: an array of [`TerminalInfo`].
    TerminalList,
    /// Reply: a [`TerminalInfo`]; `not_found` otherwise.
    TerminalInfo { id: String },
    /// Reply: the ended session's [`TerminalInfo`] (with its exit code); the
    /// process group is gone when this returns.
    TerminalKill { id: String },
    /// Reply: `{"removed": [ids]}`: every ended session.
    TerminalCleanup,
    /// Reply: `{"id", "signal"}` (the number sent). Sends one of the
    /// signals the terminal WebSocket allows (`pty::signal_by_name`: a name
    /// such as `INT` or `SIGINT`, or its number) to the session's process
    /// group; `not_found` for an unknown session.
    TerminalSignal { id: String, signal: String },
    /// Reply: `{"dirs": [absolute paths]}`: directories under the home
    /// completing `prefix` (`daemon::dirs`), for the web UI's working
    /// directory field; `bad_request` for a prefix outside the home.
    FsDirs {
        #[serde(default)]
        prefix: String,
    },
    /// Reply: `{"checks": [doctor::Check]}`: the checks the daemon runs
    /// about itself (`ringlet doctor` adds the CLI's own).
    Doctor,
    /// Reply: a [`UsageReport`]. Scans what changed first, so the answer
    /// includes every line an agent has written.
    Usage(UsageQuery),
    /// Reply: an [`ImportReport`]. Counts a Claude config dir's history into
    /// the store (idempotent) and attributes it to `profile` or `(default)`.
    UsageImportClaude {
        #[serde(default)]
        dir: Option<String>,
        #[serde(default)]
        profile: Option<String>,
    },
    /// Reply: the proxy's [`ProxyInfo`] once its child answers `/health`
    /// (a running proxy is left alone).
    ProxyStart { alias: String },
    /// Reply: the stopped proxy's [`ProxyInfo`]; its port is free.
    ProxyStop { alias: String },
    /// Reply: a [`ProxyInfo`]: a fresh child on the same socket.
    ProxyRestart { alias: String },
    /// Reply: `{"stopped": [alias, ...]}`.
    ProxyStopAll,
    /// Reply: an array of [`ProxyInfo`]: every proxy-enabled profile's, or
    /// `alias`'s, with the running ones' stats.
    ProxyStatus {
        #[serde(default)]
        alias: Option<String>,
    },
    /// Reply: a [`ProxyLog`]: the last `lines` (default 50) lines of the
    /// request log, or with `from` (a `next` of an earlier reply) the lines
    /// written since.
    ProxyLogs {
        alias: String,
        #[serde(default)]
        lines: Option<usize>,
        #[serde(default)]
        from: Option<u64>,
    },
    /// Reply: a `proxy::config::ProxyView`. Routes the profile through its
    /// proxy; the port is chosen once and kept, `port` pins one.
    ProxyEnable {
        alias: String,
        #[serde(default)]
        port: Option<u16>,
    },
    /// Reply: a `ProxyView`. The routing (port, rules, aliases, budget) stays.
    ProxyDisable { alias: String },
    /// Reply: a `ProxyView`: the effective routing, keys named, never shown.
    ProxyConfig { alias: String },
    /// Reply: the rules as `proxy::config::RuleRow`s, in the order tried.
    ProxyRouteAdd {
        alias: String,
        name: String,
        condition: String,
        target: String,
        #[serde(default)]
        priority: i64,
    },
    /// Reply: an array of `RuleRow`.
    ProxyRouteList { alias: String },
    /// Reply: an array of `RuleRow`.
    ProxyRouteRemove { alias: String, name: String },
    /// Reply: an array of `RuleRow`.
    ProxyRouteMove { alias: String, name: String, priority: i64 },
    /// Reply: the aliases as `proxy::config::AliasRow`s.
    ProxyAliasSet { alias: String, model: String, target: String },
    /// Reply: an array of `AliasRow`.
    ProxyAliasList { alias: String },
    /// Reply: an array of `AliasRow`.
    ProxyAliasRemove { alias: String, model: String },
    /// Reply: the new `proxy::Budget`. Sets both periods (absent: no limit).
    ProxyBudgetSet {
        alias: String,
        #[serde(default)]
        daily: Option<f64>,
        #[serde(default)]
        monthly: Option<f64>,
    },
    /// Reply: a `proxy::Budget`.
    ProxyBudgetShow { alias: String },
    /// Reply: a `proxy::manage::ProviderKeySet`. Stores the key a target
    /// of that provider needs (`provider.<id>` in the secret store).
    ProvidersKeySet { provider: String, key: crate::proxy::keys::KeyText },
    /// Reply: `{"provider", "used_by"}`.
    ProvidersKeyRemove { provider: String },
    /// Reply: an array of `proxy::manage::ProviderKeyRow` (never a key).
    ProvidersKeyList,
    /// Reply: a [`SyncStarted`]. The sync runs on its own thread; its
    /// `RegistrySync*` events carry the same `id`, `RegistrySyncCompleted`'s
    /// data is a [`SyncReport`].
    RegistrySync(SyncRequest),
    /// Reply: a [`RegistryView`]; `changes` adds the command-bearing changes
    /// against the built-ins.
    RegistryInspect {
        #[serde(default)]
        changes: bool,
    },
    /// Reply: `{"commit", "changes": [...]}`: what the current commit changes
    /// in command-bearing fields against the built-ins.
    RegistryChanges,
    /// Reply: `{"pin", "commit", "current"}`. `reference` absent clears the pin.
    RegistryPin {
        #[serde(default)]
        reference: Option<String>,
    },
    /// Reply: `{"rollback": true, "commit", "previous", "changes"}`.
    RegistryRollback,
    /// Test hook, debug builds only: the handler panics, to prove a panic
    /// is logged and ends the daemon (never a half-served state), and that
    /// the next command starts a fresh one.
    #[cfg(debug_assertions)]
    DebugPanic,
}

/// The request's wire shape, `{"type": <variant>, ..fields}`, made from and
/// into serde's externally tagged `{<variant>: {..fields}}` (or `"<variant>"`
/// for a variant without fields). Why not `#[serde(tag = "type")]`: an
/// internally tagged enum buffers every request in serde's generic `Content`
/// and instantiates each variant's visitor over it, 120 KB of the binary for
/// 55 variants; the externally tagged derive over a `Value` costs a fraction.
pub mod wire {
    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use serde_json::{Map, Value};

    use super::Request;

    /// `{"type": "x", ..}` into `Request`.
    pub fn from_value(value: Value) -> Result<Request, serde_json::Error> {
        let Value::Object(mut fields) = value else {
            return Err(serde_json::Error::custom("a request must be a JSON object"));
        };
        let name = match fields.remove("type") {
            Some(Value::String(name)) => name,
            Some(_) => return Err(serde_json::Error::custom("request `type` must be a string")),
            None => return Err(serde_json::Error::custom("missing field `type`")),
        };
        if fields.is_empty() {
            // A variant without fields is a bare string; a struct variant
            // whose fields all have defaults is an empty object.
            if let Ok(request) = Request::deserialize(Value::String(name.clone())) {
                return Ok(request);
            }
        }
        Request::deserialize(Value::Object(Map::from_iter([(name, Value::Object(fields))])))
    }

    /// `Request` into `{"type": "x", ..}`.
    pub fn to_value(request: &Request) -> Result<Value, serde_json::Error> {
        let (name, fields) = match serde_json::to_value(request)? {
            Value::String(name) => (name, Map::new()),
            Value::Object(outer) => match outer.into_iter().next() {
                Some((name, Value::Object(fields))) => (name, fields),
                _ => return Err(serde_json::Error::custom("request variant is not a struct")),
            },
            _ => return Err(serde_json::Error::custom("request is not an enum variant")),
        };
        let mut tagged = Map::with_capacity(fields.len() + 1);
        tagged.insert("type".into(), Value::String(name));
        tagged.extend(fields);
        Ok(Value::Object(tagged))
    }

    pub fn serialize<S: Serializer>(request: &Request, s: S) -> Result<S::Ok, S::Error> {
        to_value(request).map_err(serde::ser::Error::custom)?.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Request, D::Error> {
        from_value(Value::deserialize(d)?).map_err(D::Error::custom)
    }
}

/// What the daemon answers: the protocol version and either data or an error.
#[derive(Debug, Serialize, Deserialize)]
pub struct ReplyFrame {
    pub version: u32,
    #[serde(flatten)]
    pub reply: Reply,
}

/// The outcome of one request. `data` is one of the `*Info`/`*List` types
/// below, serialized, so the HTTP API can wrap it unchanged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Reply {
    Ok { data: Value },
    Err { error: ErrorReply },
}

impl Reply {
    pub fn ok<T: Serialize>(data: &T) -> Reply {
        match serde_json::to_value(data) {
            Ok(data) => Reply::Ok { data },
            Err(e) => Reply::error(ErrorCode::Internal, format!("encoding reply: {e}")),
        }
    }

    pub fn error(code: ErrorCode, message: impl Into<String>) -> Reply {
        Reply::Err { error: ErrorReply { code, message: message.into() } }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorReply {
    pub code: ErrorCode,
    pub message: String,
}

/// Error codes a caller may match on. The HTTP API maps them to statuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The request line was not a valid request (HTTP 400).
    BadRequest,
    /// The peer is not the daemon's own user (HTTP 403).
    Forbidden,
    /// The named agent, provider or profile does not exist (HTTP 404).
    NotFound,
    /// The request conflicts with current state (HTTP 409).
    Conflict,
    /// The request exceeded [`MAX_REQUEST_BYTES`] (HTTP 413).
    TooLarge,
    /// Client and daemon speak different protocol versions.
    VersionMismatch,
    /// The feature arrives in a later release.
    NotImplemented,
    /// Anything else; the message says what failed (HTTP 500).
    Internal,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::NotFound => "not_found",
            ErrorCode::Conflict => "conflict",
            ErrorCode::TooLarge => "too_large",
            ErrorCode::VersionMismatch => "version_mismatch",
            ErrorCode::NotImplemented => "not_implemented",
            ErrorCode::Internal => "internal",
        }
    }
}

/// One event as it travels to subscribers (IPC `Subscribe` now, `/ws` later).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventFrame {
    #[serde(rename = "type")]
    pub kind: String,
    /// RFC 3339, UTC.
    pub timestamp: String,
    pub data: Value,
}

/// Reply to [`Request::Status`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DaemonStatus {
    pub version: String,
    pub protocol: u32,
    pub pid: u32,
    pub uptime_secs: u64,
    pub socket: String,
    pub config_dir: String,
    pub stay_alive: bool,
    /// `None` when `stay_alive` is set.
    pub idle_timeout_secs: Option<u64>,
    pub requests_served: u64,
    /// Open event streams: IPC subscriptions and `/ws` clients.
    pub subscribers: usize,
    /// The HTTP API's address (`None`: not listening, see the daemon log).
    #[serde(default)]
    pub http: Option<String>,
    /// Why the HTTP API is not listening (its port is held by another
    /// process, say); absent while it listens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_error: Option<String>,
    /// Open HTTP connections, WebSockets included.
    #[serde(default)]
    pub http_connections: usize,
    /// Profiles on disk (broken files not counted).
    #[serde(default)]
    pub profiles: usize,
    /// Terminal sessions whose agent runs, and ended ones not yet removed.
    #[serde(default)]
    pub terminals_running: usize,
    #[serde(default)]
    pub terminals_ended: usize,
    /// Clients attached to terminal sessions, over all sessions.
    #[serde(default)]
    pub terminal_clients: usize,
}

/// Reply to [`Request::AgentsList`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AgentList {
    pub agents: Vec<AgentInfo>,
    /// Broken user manifests, one line each, naming the file and line.
    pub warnings: Vec<String>,
}

/// One agent: what its manifest says and what detection found.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AgentInfo {
    pub id: String,
    pub name: String,
    pub binary: String,
    /// `builtin`, or the path of the user manifest that defined it.
    pub source: String,
    pub installed: bool,
    pub path: Option<String>,
    pub version: Option<String>,
    /// Why the version is unknown (probe timed out, failed, printed nothing).
    pub probe_error: Option<String>,
    /// The manifest's `[detect] files` that exist.
    pub config_files: Vec<String>,
    /// The full manifest; only in `AgentsInspect` replies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest: Option<Value>,
}

/// Reply to [`Request::ProvidersList`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProviderList {
    pub providers: Vec<ProviderInfo>,
    pub warnings: Vec<String>,
}

/// One provider with its endpoints resolved to URLs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProviderInfo {
    pub id: String,
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub source: String,
    /// The endpoint used when a profile names none: `(name, url)`.
    pub default_endpoint: Option<EndpointInfo>,
    pub endpoints: Vec<EndpointInfo>,
    pub auth_env_key: Option<String>,
    pub auth_required: bool,
    pub default_model: Option<String>,
    pub models: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest: Option<Value>,
    /// The catalog's models of this provider (context window, price); only
    /// in `ProvidersInspect` replies.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub catalog: Vec<ModelView>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EndpointInfo {
    pub name: String,
    pub url: String,
}

/// A profile as callers see it: the stored fields, and where the key is
/// kept, never the key.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProfileView {
    #[serde(flatten)]
    pub profile: Profile,
    /// `<redacted>` when a key is stored, `null` when the provider needs none.
    pub api_key: Option<String>,
    /// Whether the profile home exists.
    pub home_exists: bool,
    /// The profile needs a key and its store has none (a crash of an older
    /// version, or the keychain item removed by hand).
    #[serde(default)]
    pub key_missing: bool,
}

/// Reply to [`Request::ProfilesList`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProfileList {
    pub profiles: Vec<ProfileView>,
    /// Profile files that could not be read, one line each.
    pub warnings: Vec<String>,
}

/// Reply to [`Request::ProfilesDelete`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Deleted {
    pub alias: String,
    pub secret_removed: bool,
    pub shim_removed: bool,
    /// The home, when `purge` removed it.
    pub home_removed: Option<String>,
    /// The home, when it is still there (no `purge`, or it could not go).
    #[serde(default)]
    pub home_kept: Option<String>,
    pub notices: Vec<String>,
}

/// Reply to [`Request::ProfilesEnv`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProfileEnv {
    pub alias: String,
    pub env: std::collections::BTreeMap<String, String>,
    /// How long the daemon took to resolve and render the script and write
    /// the files, in milliseconds (the bench reports it).
    pub render_ms: f64,
}

/// One alias shim.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AliasInfo {
    pub alias: String,
    pub path: String,
    /// Whether a profile of that name exists.
    pub profile_exists: bool,
    /// Things the user should know about a shim just installed (its dir is
    /// not on the caller's PATH).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notices: Vec<String>,
}

/// Reply to [`Request::ProxyLogs`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProxyLog {
    pub alias: String,
    pub path: String,
    /// Raw JSON lines, oldest first.
    pub lines: Vec<String>,
    /// The byte offset to pass as `from` for what is written next.
    pub next: u64,
}

/// Reply to [`Request::Stats`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Stats {
    pub profiles: Vec<ProfileStats>,
    pub total_runs: u64,
    pub total_run_secs: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProfileStats {
    pub alias: String,
    pub agent: String,
    pub provider: String,
    pub model: String,
    pub runs: u64,
    pub run_secs: u64,
    pub last_used: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_frame_is_one_tagged_object() {
        let frame = RequestFrame {
            version: PROTOCOL_VERSION,
            request: Request::AgentsInspect { id: "claude".into() },
        };
        let line = serde_json::to_string(&frame).unwrap();
        let want = r#"{"version":2,"request":{"type":"agents_inspect","id":"claude"}}"#;
        let parsed: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(parsed, serde_json::from_str::<Value>(want).unwrap());
        let back: RequestFrame = serde_json::from_str(&line).unwrap();
        assert_eq!(back.request, frame.request);
    }

    #[test]
    fn every_shape_of_variant_crosses_the_wire() {
        let requests = [
            Request::Status,
            Request::DaemonToken { rotate: false },
            Request::DaemonToken { rotate: true },
            Request::Usage(UsageQuery::default()),
            Request::BrowserSessionsList { current: None },
            Request::BrowserSessionsRevoke { id: "0123abcd".into() },
            Request::BrowserSessionsRevokeAll,
        ];
        for request in requests {
            let value = wire::to_value(&request).unwrap();
            assert!(value["type"].is_string(), "{value}");
            assert_eq!(wire::from_value(value).unwrap(), request);
        }
        // Defaults may be left out, as the tests' raw frames do.
        let bare = serde_json::json!({"type": "daemon_token"});
        assert_eq!(wire::from_value(bare).unwrap(), Request::DaemonToken { rotate: false });
        for bad in [
            serde_json::json!({"type": "no_such_thing"}),
            serde_json::json!({"type": 3}),
            serde_json::json!({"id": "x"}),
            serde_json::json!(["status"]),
            serde_json::json!({"type": "status", "extra": 1}),
        ] {
            assert!(wire::from_value(bad.clone()).is_err(), "{bad}");
        }
    }

    #[test]
    fn reply_frame_flattens_data_or_error() {
        let ok = ReplyFrame { version: 2, reply: Reply::ok(&42) };
        assert_eq!(serde_json::to_string(&ok).unwrap(), r#"{"version":2,"data":42}"#);
        let err = ReplyFrame { version: 2, reply: Reply::error(ErrorCode::NotFound, "no") };
        let line = serde_json::to_string(&err).unwrap();
        assert_eq!(line, r#"{"version":2,"error":{"code":"not_found","message":"no"}}"#);
        let back: ReplyFrame = serde_json::from_str(&line).unwrap();
        assert_eq!(back.reply, err.reply);
    }

    #[test]
    fn unknown_request_fields_are_rejected() {
        let bad = r#"{"version":2,"request":{"type":"agents_inspect","id":"x","extra":1}}"#;
        assert!(serde_json::from_str::<RequestFrame>(bad).is_err());
    }
}

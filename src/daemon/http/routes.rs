//! The REST mapping (design.md §5): an HTTP request's method, path, query
//! and body in, one protocol [`Request`] out; and on the way back, the status
//! code of a dispatcher [`Reply`] and the JSON envelope it travels in. Pure
//! functions, no I/O. `rest` reads the request off tiny_http, calls [`route`],
//! serves the result through the shared dispatcher exactly as IPC does, and
//! renders it with [`status_of`], [`envelope_ok`] and [`envelope_error`].
//!
//! No handler logic lives here. Ids, aliases and event names are passed
//! through as the client wrote them and validated by the dispatcher, so the
//! CLI and the HTTP API can never disagree on what is valid. This file owns
//! only what is HTTP's own: which paths exist and which methods they take,
//! percent-decoding (per segment, after splitting, so an encoded `/` can never
//! reach a handler as a separator), query parameters and body shapes.
//!
//! | Method | Path | Request | JSON body |
//! |---|---|---|---|
//! | GET | `/api/agents` | `AgentsList` | |
//! | GET | `/api/agents/{id}` | `AgentsInspect` | |
//! | GET | `/api/providers` | `ProvidersList` | |
//! | GET | `/api/providers/{id}` | `ProvidersInspect` | |
//! | GET | `/api/templates?agent=` | `ProfilesTemplates` | |
//! | GET | `/api/models?provider=` | `Models` | |
//! | GET | `/api/profiles?agent=` | `ProfilesList` | |
//! | POST | `/api/profiles` | `ProfilesCreate` | `CreateRequest` |
//! | GET | `/api/profiles/{alias}` | `ProfilesInspect` | |
//! | DELETE | `/api/profiles/{alias}?purge=true` | `ProfilesDelete` | |
//! | GET | `/api/profiles/{alias}/env` | `ProfilesEnv` | |
//! | GET | `/api/profiles/{alias}/hooks` | `HooksList` | |
//! | POST | `/api/profiles/{alias}/hooks` | `HooksAdd` | `{event, command, matcher?, timeout?}` |
//! | PUT | `/api/profiles/{alias}/hooks` | `HooksImport` | Claude Code's hooks |
//! | GET | `/api/profiles/{alias}/hooks/export` | `HooksExport` | |
//! | DELETE | `/api/profiles/{alias}/hooks/{event}/{index}` | `HooksRemove` | |
//! | GET | `/api/usage` (+ `/daily`, `/models`, `/profiles`, `/export`) | `Usage` | |
//! | POST | `/api/usage/import-claude` | `UsageImportClaude` | optional `{dir?, profile?}` |
//! | GET | `/api/daemon/status` | `Status` | |
//! | POST | `/api/daemon/shutdown` | `Shutdown` | |
//! | GET | `/api/stats` | `Stats` | |
//! | GET / POST | `/api/terminal/sessions` | `TerminalList`; `TerminalCreate` (body: `TerminalRequest`) | |
//! | GET / DELETE | `/api/terminal/sessions/{id}` | `TerminalInfo`; `TerminalKill` | |
//! | POST | `/api/terminal/cleanup` | `TerminalCleanup` | |
//! | POST | `/api/terminal/sessions/{id}/signal` | `TerminalSignal` | `{signal}`: a name (`"INT"`) or number (`2`) |
//! | GET | `/api/fs/dirs?prefix=` | `FsDirs` | |
//! | GET | `/api/doctor` | `Doctor` | |
//! | GET | `/api/proxy/status`, `/api/proxy/status/{alias}` | `ProxyStatus` | |
//! | POST | `/api/proxy/{alias}/{start,stop,restart}` | `ProxyStart`, `ProxyStop`, `ProxyRestart` | |
//! | POST | `/api/proxy/stop-all` | `ProxyStopAll` | |
//! | GET | `/api/proxy/{alias}/logs?lines=N&from=OFFSET` | `ProxyLogs` | |
//! | GET | `/api/profiles/{alias}/proxy` | `ProxyConfig` | |
//! | POST | `/api/profiles/{alias}/proxy/enable` | `ProxyEnable` | optional `{port?}` |
//! | POST | `/api/profiles/{alias}/proxy/disable` | `ProxyDisable` | |
//! | GET / POST | `/api/profiles/{alias}/proxy/routes` | `ProxyRouteList`; `ProxyRouteAdd` | `{name, condition, target, priority?}` |
//! | DELETE | `/api/profiles/{alias}/proxy/routes/{name}` | `ProxyRouteRemove` | |
//! | POST | `/api/profiles/{alias}/proxy/routes/{name}/move` | `ProxyRouteMove` | `{priority}` |
//! | GET / POST | `/api/profiles/{alias}/proxy/aliases` | `ProxyAliasList`; `ProxyAliasSet` | `{model, target}` |
//! | DELETE | `/api/profiles/{alias}/proxy/aliases?model=<m>` | `ProxyAliasRemove` (a model with a `/`) | |
//! | PUT / DELETE | `/api/profiles/{alias}/proxy/aliases/{model}` | `ProxyAliasSet` (`{target}`); `ProxyAliasRemove` | |
//! | GET / PUT | `/api/profiles/{alias}/proxy/budget` | `ProxyBudgetShow`; `ProxyBudgetSet` | `{daily_usd?, monthly_usd?}` (absent: no limit) |
//! | GET | `/api/proxy/config/{alias}` | `ProxyConfig` | |
//! | GET | `/api/providers/keys` | `ProvidersKeyList` (never a key) | |
//! | PUT / DELETE | `/api/providers/{id}/key` | `ProvidersKeySet` (`{key}`); `ProvidersKeyRemove` | |
//! | GET | `/api/registry?changes=true` | `RegistryInspect` | |
//! | POST | `/api/registry/sync` | `RegistrySync` (answers at once, 202, with the sync's id; events follow) | optional `{force?, offline?, channel?, from?}` |
//! | POST | `/api/registry/pin` | `RegistryPin` | `{"ref": "<ref>"}` or `{"clear": true}` |
//! | POST | `/api/registry/rollback` | `RegistryRollback` | |
//! | GET | `/api/registry/changes` | `RegistryChanges` | |
//! | POST | `/api/login` | none: `rest` trades the ticket for a browser session ([`login_ticket`]) | `{ticket}` |
//! | DELETE | `/api/login` | `BrowserSessionsRevoke` of the caller's own session (`rest`) | |
//! | GET | `/api/browser-sessions` | `BrowserSessionsList` (`rest` marks the caller's `current`) | |
//! | DELETE | `/api/browser-sessions` | `BrowserSessionsRevokeAll` | |
//! | DELETE | `/api/browser-sessions/{id}` | `BrowserSessionsRevoke` | |
//!
//! Usage takes the query parameters `period`, `since`, `until`, `profile`,
//! `model`, `agent` and `timezone`, as the CLI's flags; the report kind is
//! the path's. Every other path takes only the parameters shown.
//!
//! Requests that belong to the local CLI (`Subscribe`, `ProfilesRun`,
//! `ProfilesRunEnded`, `EnvSetup`, `Aliases*`, `DaemonToken`, `DebugPanic`)
//! have no path: they need the caller's own terminal, PATH or files, or would
//! hand out the token the caller already holds.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::error::Category;

use crate::protocol::{CreateRequest, ErrorCode, Reply, ReportKind, Request, UsageQuery};

/// An HTTP-level error, answered without reaching the dispatcher: `status`
/// and `code` (the envelope's `kind`) say what class of failure, `message`
/// says what to fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpError {
    pub status: u16,
    /// `bad_request`, `not_found`, `method_not_allowed`, or an error code's.
    pub code: &'static str,
    pub message: String,
}

impl HttpError {
    fn bad_request(message: impl Into<String>) -> HttpError {
        HttpError { status: 400, code: "bad_request", message: message.into() }
    }

    fn not_found(path: &str) -> HttpError {
        HttpError { status: 404, code: "not_found", message: format!("no such path: {path}") }
    }
}

/// Maps an HTTP request to the one [`Request`] the dispatcher serves. `path`
/// is the request target without its query, `query` what followed the `?`
/// (empty when none). Checks run in a fixed order so a client sees the most
/// basic mistake first: a path that does not exist (404), a method the
/// path does not take (405), then a bad query or body (400).
pub fn route(method: &str, path: &str, query: &str, body: &[u8]) -> Result<Request, HttpError> {
    let segments = segments(path)?;
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    let Some(resource) = resource(&segments) else {
        return Err(HttpError::not_found(path));
    };
    let allowed = resource.methods();
    if !allowed.contains(&method) {
        return Err(method_not_allowed(path, method, allowed));
    }
    let mut query = Query::parse(query)?;
    let request = build(resource, path, method, &mut query, body)?;
    // After the build, so the message can list what the path does take.
    query.finish()?;
    Ok(request)
}

/// The status a request's success gets: 201 Created for a POST that makes
/// a new resource (a profile, a terminal session), 202 Accepted for one that
/// starts work that goes on after the answer (a registry sync, whose end
/// the events tell), else 200.
pub fn success_status(request: &Request) -> u16 {
    match request {
        Request::ProfilesCreate(c) if !c.dry_run => 201,
        Request::TerminalCreate(_) => 201,
        Request::RegistrySync(_) => 202,
        _ => 200,
    }
}

/// The HTTP status of a dispatcher reply: `success` (see
/// [`success_status`]) for data, the error code's status otherwise.
pub fn status_of(reply: &Reply, success: u16) -> u16 {
    match reply {
        Reply::Ok { .. } => success,
        // Exhaustive on purpose: a new error code must choose its status.
        Reply::Err { error } => match error.code {
            ErrorCode::BadRequest => 400,
            ErrorCode::Forbidden => 403,
            ErrorCode::NotFound => 404,
            ErrorCode::Conflict => 409,
            ErrorCode::TooLarge => 413,
            // The client sent a frame the daemon does not speak: its fault.
            ErrorCode::VersionMismatch => 400,
            ErrorCode::NotImplemented => 501,
            ErrorCode::Internal => 500,
        },
    }
}

/// `{"success":true,"data":...}`.
pub fn envelope_ok(data: &Value) -> Vec<u8> {
    #[derive(Serialize)]
    struct Envelope<'a> {
        success: bool,
        // Borrowed, so a large report is not copied to be wrapped.
        data: &'a Value,
    }
    serde_json::to_vec(&Envelope { success: true, data })
        .expect("a JSON value with string keys always serializes")
}

/// `{"success":false,"error":{"code":<status>,"kind":"<kind>","message":"..."}}`:
/// `code` is the numeric HTTP status (design.md §5), `kind` the error code
/// string a program can match on (`not_found`, `conflict`, ...).
pub fn envelope_error(status: u16, kind: &str, message: &str) -> Vec<u8> {
    #[derive(Serialize)]
    struct Envelope<'a> {
        success: bool,
        error: Error<'a>,
    }
    #[derive(Serialize)]
    struct Error<'a> {
        code: u16,
        kind: &'a str,
        message: &'a str,
    }
    let envelope = Envelope { success: false, error: Error { code: status, kind, message } };
    serde_json::to_vec(&envelope).expect("numbers and strings always serialize")
}

// ---------------------------------------------------------------------------
// Paths

/// Splits the path on `/`, then percent-decodes each segment: decoding
/// first would let `a%2Fb` become two segments and an alias reach a handler
/// as a path. A decoded `/`, `.` or `..` is refused outright rather than
/// passed on, so no later code that joins an alias onto a directory has to
/// remember to check. An empty segment (`//`, a trailing `/`) names nothing.
fn segments(path: &str) -> Result<Vec<String>, HttpError> {
    let Some(rest) = path.strip_prefix('/') else {
        return Err(HttpError::not_found(path));
    };
    rest.split('/')
        .map(|raw| {
            if raw.is_empty() {
                return Err(HttpError::not_found(path));
            }
            let segment = percent_decode(raw, false)
                .map_err(|why| HttpError::bad_request(format!("path segment `{raw}`: {why}")))?;
            if segment.contains('/') || segment == "." || segment == ".." {
                return Err(HttpError::bad_request(format!(
                    "path segment `{raw}` decodes to `{segment}`, which is not allowed in a name"
                )));
            }
            Ok(segment)
        })
        .collect()
}

/// What a path names. Borrowed from the decoded segments; the owned strings
/// are made only for the request that is built.
#[derive(Debug, Clone, Copy)]
enum Resource<'a> {
    Agents,
    Agent(&'a str),
    Providers,
    Provider(&'a str),
    Profiles,
    Profile(&'a str),
    ProfileEnv(&'a str),
    Hooks(&'a str),
    HooksExport(&'a str),
    Hook { alias: &'a str, event: &'a str, index: &'a str },
    Usage(ReportKind),
    UsageImportClaude,
    DaemonStatus,
    DaemonShutdown,
    Stats,
    BrowserSessions,
    BrowserSession(&'a str),
    TerminalSessions,
    TerminalSession(&'a str),
    TerminalCleanup,
    TerminalSignal(&'a str),
    FsDirs,
    Doctor,
    ProxyStatus(Option<&'a str>),
    ProxyStopAll,
    ProxyAction { alias: &'a str, action: &'a str },
    ProxyLogs(&'a str),
    ProfileProxy(&'a str),
    ProxyEnable(&'a str),
    ProxyDisable(&'a str),
    ProxyRoutes(&'a str),
    ProxyRoute { alias: &'a str, name: &'a str },
    ProxyRouteMove { alias: &'a str, name: &'a str },
    ProxyAliases(&'a str),
    ProxyAlias { alias: &'a str, model: &'a str },
    ProxyBudget(&'a str),
    ProviderKeys,
    ProviderKey(&'a str),
    Registry,
    RegistrySync,
    RegistryPin,
    RegistryRollback,
    RegistryChanges,
    Templates,
    Models,
    Events,
    ConfigChoices,
}

/// The route table. `None`: no such path.
fn resource<'a>(segments: &[&'a str]) -> Option<Resource<'a>> {
    let resource = match segments {
        ["api", "agents"] => Resource::Agents,
        ["api", "agents", id] => Resource::Agent(id),
        ["api", "providers"] => Resource::Providers,
        ["api", "providers", "keys"] => Resource::ProviderKeys,
        ["api", "providers", id] => Resource::Provider(id),
        ["api", "providers", id, "key"] => Resource::ProviderKey(id),
        ["api", "profiles"] => Resource::Profiles,
        ["api", "profiles", alias] => Resource::Profile(alias),
        ["api", "profiles", alias, "env"] => Resource::ProfileEnv(alias),
        ["api", "profiles", alias, "hooks"] => Resource::Hooks(alias),
        ["api", "profiles", alias, "hooks", "export"] => Resource::HooksExport(alias),
        ["api", "profiles", alias, "hooks", event, index] => Resource::Hook { alias, event, index },
        ["api", "profiles", alias, "proxy"] => Resource::ProfileProxy(alias),
        ["api", "profiles", alias, "proxy", "enable"] => Resource::ProxyEnable(alias),
        ["api", "profiles", alias, "proxy", "disable"] => Resource::ProxyDisable(alias),
        ["api", "profiles", alias, "proxy", "routes"] => Resource::ProxyRoutes(alias),
        ["api", "profiles", alias, "proxy", "routes", name] => Resource::ProxyRoute { alias, name },
        ["api", "profiles", alias, "proxy", "routes", name, "move"] => {
            Resource::ProxyRouteMove { alias, name }
        }
        ["api", "profiles", alias, "proxy", "aliases"] => Resource::ProxyAliases(alias),
        ["api", "profiles", alias, "proxy", "aliases", model] => {
            Resource::ProxyAlias { alias, model }
        }
        ["api", "profiles", alias, "proxy", "budget"] => Resource::ProxyBudget(alias),
        ["api", "proxy", "config", alias] => Resource::ProfileProxy(alias),
        ["api", "usage"] => Resource::Usage(ReportKind::Summary),
        ["api", "usage", "daily"] => Resource::Usage(ReportKind::Daily),
        ["api", "usage", "models"] => Resource::Usage(ReportKind::Models),
        ["api", "usage", "profiles"] => Resource::Usage(ReportKind::Profiles),
        ["api", "usage", "export"] => Resource::Usage(ReportKind::Export),
        ["api", "usage", "import-claude"] => Resource::UsageImportClaude,
        ["api", "daemon", "status"] => Resource::DaemonStatus,
        ["api", "daemon", "shutdown"] => Resource::DaemonShutdown,
        ["api", "stats"] => Resource::Stats,
        ["api", "browser-sessions"] => Resource::BrowserSessions,
        ["api", "browser-sessions", id] => Resource::BrowserSession(id),
        ["api", "terminal", "sessions"] => Resource::TerminalSessions,
        ["api", "terminal", "sessions", id] => Resource::TerminalSession(id),
        ["api", "terminal", "cleanup"] => Resource::TerminalCleanup,
        ["api", "terminal", "sessions", id, "signal"] => Resource::TerminalSignal(id),
        ["api", "fs", "dirs"] => Resource::FsDirs,
        ["api", "doctor"] => Resource::Doctor,
        // `status` first: a profile named `status` is shown, not started.
        ["api", "proxy", "status"] => Resource::ProxyStatus(None),
        ["api", "proxy", "status", alias] => Resource::ProxyStatus(Some(alias)),
        ["api", "proxy", "stop-all"] => Resource::ProxyStopAll,
        ["api", "proxy", alias, action @ ("start" | "stop" | "restart")] => {
            Resource::ProxyAction { alias, action }
        }
        ["api", "proxy", alias, "logs"] => Resource::ProxyLogs(alias),
        ["api", "registry"] => Resource::Registry,
        ["api", "registry", "sync"] => Resource::RegistrySync,
        ["api", "registry", "pin"] => Resource::RegistryPin,
        ["api", "registry", "rollback"] => Resource::RegistryRollback,
        ["api", "registry", "changes"] => Resource::RegistryChanges,
        ["api", "templates"] => Resource::Templates,
        ["api", "models"] => Resource::Models,
        ["api", "events"] => Resource::Events,
        ["api", "config", "choices"] => Resource::ConfigChoices,
        _ => return None,
    };
    Some(resource)
}

impl Resource<'_> {
    /// The methods the path takes; [`build`] has one arm for each.
    fn methods(self) -> &'static [&'static str] {
        match self {
            Resource::Agents
            | Resource::Agent(_)
            | Resource::Providers
            | Resource::Provider(_)
            | Resource::ProfileEnv(_)
            | Resource::HooksExport(_)
            | Resource::Usage(_)
            | Resource::DaemonStatus
            | Resource::Stats
            | Resource::ProxyStatus(_)
            | Resource::ProxyLogs(_)
            | Resource::ProfileProxy(_)
            | Resource::ProviderKeys
            | Resource::Registry
            | Resource::RegistryChanges
            | Resource::Templates
            | Resource::Models
            | Resource::Events
            | Resource::ConfigChoices
            | Resource::FsDirs
            | Resource::Doctor => &["GET"],
            Resource::ProxyEnable(_)
            | Resource::ProxyDisable(_)
            | Resource::ProxyRouteMove { .. } => &["POST"],
            Resource::ProxyRoutes(_) => &["GET", "POST"],
            // DELETE with `?model=`: a model name may hold a `/`, which no
            // path segment can carry (an encoded one is refused).
            Resource::ProxyAliases(_) => &["GET", "POST", "DELETE"],
            Resource::ProxyRoute { .. } => &["DELETE"],
            Resource::ProxyAlias { .. } | Resource::ProviderKey(_) => &["PUT", "DELETE"],
            Resource::ProxyBudget(_) => &["GET", "PUT"],
            Resource::BrowserSessions => &["GET", "DELETE"],
            Resource::BrowserSession(_) => &["DELETE"],
            Resource::Profiles => &["GET", "POST"],
            Resource::Profile(_) | Resource::TerminalSession(_) => &["GET", "DELETE"],
            Resource::TerminalSessions => &["GET", "POST"],
            Resource::Hooks(_) => &["GET", "POST", "PUT"],
            Resource::Hook { .. } => &["DELETE"],
            Resource::UsageImportClaude
            | Resource::DaemonShutdown
            | Resource::TerminalCleanup
            | Resource::TerminalSignal(_)
            | Resource::ProxyStopAll
            | Resource::ProxyAction { .. }
            | Resource::RegistrySync
            | Resource::RegistryPin
            | Resource::RegistryRollback => &["POST"],
        }
    }
}

/// Builds the request for a resource and one of its methods. Bodies on
/// paths that take none are ignored, as HTTP gives them no meaning there.
fn build(
    resource: Resource<'_>,
    path: &str,
    method: &str,
    query: &mut Query,
    body: &[u8],
) -> Result<Request, HttpError> {
    let request = match (resource, method) {
        (Resource::Agents, "GET") => Request::AgentsList,
        (Resource::Agent(id), "GET") => Request::AgentsInspect { id: id.into() },
        (Resource::Providers, "GET") => Request::ProvidersList,
        (Resource::Provider(id), "GET") => Request::ProvidersInspect { id: id.into() },
        (Resource::Templates, "GET") => Request::ProfilesTemplates { agent: query.text("agent") },
        (Resource::Models, "GET") => Request::Models { provider: query.text("provider") },
        (Resource::Events, "GET") => Request::EventsRecent {
            limit: query.number("limit")?,
            events: query
                .text("type")
                .map(|t| t.split(',').map(str::to_owned).collect())
                .unwrap_or_default(),
        },
        (Resource::ConfigChoices, "GET") => Request::ConfigChoices,
        (Resource::Profiles, "GET") => Request::ProfilesList { agent: query.text("agent") },
        // The IPC wire form, unchanged: the alias travels in the body.
        (Resource::Profiles, "POST") => {
            Request::ProfilesCreate(json_object::<CreateRequest>(body)?)
        }
        (Resource::Profile(alias), "GET") => Request::ProfilesInspect { alias: alias.into() },
        (Resource::Profile(alias), "DELETE") => {
            Request::ProfilesDelete { alias: alias.into(), purge: query.flag("purge")? }
        }
        (Resource::ProfileEnv(alias), "GET") => Request::ProfilesEnv { alias: alias.into() },
        (Resource::Hooks(alias), "GET") => Request::HooksList { alias: alias.into() },
        (Resource::Hooks(alias), "POST") => {
            let HooksAddBody { event, command, matcher, timeout } = json_object(body)?;
            Request::HooksAdd { alias: alias.into(), event, command, matcher, timeout }
        }
        // Any JSON: the dispatcher checks it against Claude Code's schema,
        // with the same messages the CLI's `hooks import` gets.
        (Resource::Hooks(alias), "PUT") => {
            Request::HooksImport { alias: alias.into(), hooks: json_body(body)? }
        }
        (Resource::HooksExport(alias), "GET") => Request::HooksExport { alias: alias.into() },
        (Resource::Hook { alias, event, index }, "DELETE") => Request::HooksRemove {
            alias: alias.into(),
            event: event.into(),
            index: index
                .parse()
                .map_err(|_| HttpError::bad_request(format!("`{index}` is not a hook number")))?,
        },
        (Resource::Usage(report), "GET") => Request::Usage(UsageQuery {
            report,
            period: query.text("period"),
            since: query.text("since"),
            until: query.text("until"),
            profile: query.text("profile"),
            model: query.text("model"),
            agent: query.text("agent"),
            timezone: query.text("timezone"),
        }),
        (Resource::UsageImportClaude, "POST") => {
            // Every field is optional, so no body means all defaults.
            let ImportClaudeBody { dir, profile } =
                if is_blank(body) { ImportClaudeBody::default() } else { json_object(body)? };
            Request::UsageImportClaude { dir, profile }
        }
        (Resource::DaemonStatus, "GET") => Request::Status,
        (Resource::DaemonShutdown, "POST") => Request::Shutdown,
        (Resource::Stats, "GET") => Request::Stats,
        (Resource::TerminalSessions, "GET") => Request::TerminalList,
        (Resource::TerminalSessions, "POST") => Request::TerminalCreate(json_object(body)?),
        (Resource::TerminalSession(id), "GET") => Request::TerminalInfo { id: id.into() },
        (Resource::TerminalSession(id), "DELETE") => Request::TerminalKill { id: id.into() },
        (Resource::TerminalCleanup, "POST") => Request::TerminalCleanup,
        (Resource::TerminalSignal(id), "POST") => {
            let SignalBody { signal } = json_object(body)?;
            let signal = match signal {
                Value::String(name) => name,
                Value::Number(n) => n.to_string(),
                other => {
                    return Err(HttpError::bad_request(format!(
                        "`signal` is a name (\"INT\") or a number (2), not {other}"
                    )));
                }
            };
            Request::TerminalSignal { id: id.into(), signal }
        }
        // No `text`: an empty prefix is the home itself.
        (Resource::FsDirs, "GET") => {
            Request::FsDirs { prefix: query.take("prefix").unwrap_or_default() }
        }
        (Resource::Doctor, "GET") => Request::Doctor,
        (Resource::ProxyStatus(alias), "GET") => {
            Request::ProxyStatus { alias: alias.map(str::to_string) }
        }
        (Resource::ProxyStopAll, "POST") => Request::ProxyStopAll,
        (Resource::ProxyAction { alias, action }, "POST") => {
            let alias = alias.to_string();
            match action {
                "start" => Request::ProxyStart { alias },
                "stop" => Request::ProxyStop { alias },
                _ => Request::ProxyRestart { alias },
            }
        }
        (Resource::ProxyLogs(alias), "GET") => Request::ProxyLogs {
            alias: alias.into(),
            lines: query.number("lines")?,
            from: query.number("from")?,
        },
        (Resource::ProfileProxy(alias), "GET") => Request::ProxyConfig { alias: alias.into() },
        (Resource::ProxyEnable(alias), "POST") => {
            let EnableBody { port } =
                if is_blank(body) { EnableBody::default() } else { json_object(body)? };
            Request::ProxyEnable { alias: alias.into(), port }
        }
        (Resource::ProxyDisable(alias), "POST") => Request::ProxyDisable { alias: alias.into() },
        (Resource::ProxyRoutes(alias), "GET") => Request::ProxyRouteList { alias: alias.into() },
        (Resource::ProxyRoutes(alias), "POST") => {
            let RouteBody { name, condition, target, priority } = json_object(body)?;
            Request::ProxyRouteAdd { alias: alias.into(), name, condition, target, priority }
        }
        (Resource::ProxyRoute { alias, name }, "DELETE") => {
            Request::ProxyRouteRemove { alias: alias.into(), name: name.into() }
        }
        (Resource::ProxyRouteMove { alias, name }, "POST") => {
            let MoveBody { priority } = json_object(body)?;
            Request::ProxyRouteMove { alias: alias.into(), name: name.into(), priority }
        }
        (Resource::ProxyAliases(alias), "GET") => Request::ProxyAliasList { alias: alias.into() },
        (Resource::ProxyAliases(alias), "POST") => {
            let AliasBody { model, target } = json_object(body)?;
            Request::ProxyAliasSet { alias: alias.into(), model, target }
        }
        (Resource::ProxyAliases(alias), "DELETE") => {
            let Some(model) = query.text("model") else {
                return Err(HttpError::bad_request(
                    "give the model as `?model=<name>` (percent-encoded)",
                ));
            };
            Request::ProxyAliasRemove { alias: alias.into(), model }
        }
        (Resource::ProxyAlias { alias, model }, "PUT") => {
            let TargetBody { target } = json_object(body)?;
            Request::ProxyAliasSet { alias: alias.into(), model: model.into(), target }
        }
        (Resource::ProxyAlias { alias, model }, "DELETE") => {
            Request::ProxyAliasRemove { alias: alias.into(), model: model.into() }
        }
        (Resource::ProxyBudget(alias), "GET") => Request::ProxyBudgetShow { alias: alias.into() },
        (Resource::ProxyBudget(alias), "PUT") => {
            let crate::proxy::Budget { daily_usd, monthly_usd } = json_object(body)?;
            Request::ProxyBudgetSet { alias: alias.into(), daily: daily_usd, monthly: monthly_usd }
        }
        (Resource::ProviderKeys, "GET") => Request::ProvidersKeyList,
        (Resource::ProviderKey(id), "PUT") => {
            let KeyBody { key } = key_body(body)?;
            Request::ProvidersKeySet { provider: id.into(), key }
        }
        (Resource::ProviderKey(id), "DELETE") => {
            Request::ProvidersKeyRemove { provider: id.into() }
        }
        (Resource::Registry, "GET") => Request::RegistryInspect { changes: query.flag("changes")? },
        (Resource::RegistrySync, "POST") => Request::RegistrySync(if is_blank(body) {
            Default::default()
        } else {
            json_object(body)?
        }),
        (Resource::RegistryPin, "POST") => {
            let PinBody { reference, clear } = json_object(body)?;
            if reference.is_some() == clear {
                return Err(HttpError::bad_request(
                    "give either {\"ref\": \"<tag, branch or commit>\"} or {\"clear\": true}",
                ));
            }
            Request::RegistryPin { reference }
        }
        (Resource::RegistryRollback, "POST") => Request::RegistryRollback,
        (Resource::RegistryChanges, "GET") => Request::RegistryChanges,
        (Resource::BrowserSessions, "GET") => Request::BrowserSessionsList { current: None },
        (Resource::BrowserSessions, "DELETE") => Request::BrowserSessionsRevokeAll,
        (Resource::BrowserSession(id), "DELETE") => {
            Request::BrowserSessionsRevoke { id: id.into() }
        }
        // `route` checked the method against `methods`; this arm keeps the
        // two tables honest if they ever drift (a test walks both).
        (resource, method) => return Err(method_not_allowed(path, method, resource.methods())),
    };
    Ok(request)
}

/// `POST /api/login`'s ticket. The one route that needs no token (the
/// ticket stands in for it), so `rest` answers it before the token check.
pub fn login_ticket(method: &str, body: &[u8]) -> Result<String, HttpError> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct LoginBody {
        ticket: String,
    }
    if method != "POST" {
        // DELETE (sign out) needs the bearer and is `rest`'s.
        return Err(method_not_allowed("/api/login", method, &["POST", "DELETE"]));
    }
    Ok(json_object::<LoginBody>(body)?.ticket)
}

fn method_not_allowed(path: &str, method: &str, allowed: &[&str]) -> HttpError {
    HttpError {
        status: 405,
        code: "method_not_allowed",
        message: format!("{path} takes {}, not {method}", allowed.join(", ")),
    }
}

// ---------------------------------------------------------------------------
// Bodies

/// `POST /api/profiles/{alias}/hooks`: the CLI's `hooks add` arguments.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HooksAddBody {
    event: String,
    command: String,
    #[serde(default)]
    matcher: Option<String>,
    #[serde(default)]
    timeout: Option<u64>,
}

/// `POST /api/usage/import-claude`: `dir` must be absolute (the daemon
/// checks), as the daemon's working directory is not the caller's.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ImportClaudeBody {
    #[serde(default)]
    dir: Option<String>,
    #[serde(default)]
    profile: Option<String>,
}

/// `POST /api/profiles/{alias}/proxy/enable`: an optional pinned port.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct EnableBody {
    #[serde(default)]
    port: Option<u16>,
}

/// `POST /api/profiles/{alias}/proxy/routes`: `proxy route add`'s arguments.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RouteBody {
    name: String,
    condition: String,
    target: String,
    #[serde(default)]
    priority: i64,
}

/// `POST /api/terminal/sessions/{id}/signal`: `{"signal": "INT"}` or
/// `{"signal": 2}`, as the terminal WebSocket's `signal` message.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SignalBody {
    signal: Value,
}

/// `POST .../proxy/routes/{name}/move`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MoveBody {
    priority: i64,
}

/// `POST /api/profiles/{alias}/proxy/aliases`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AliasBody {
    model: String,
    target: String,
}

/// `PUT /api/profiles/{alias}/proxy/aliases/{model}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TargetBody {
    target: String,
}

/// `POST /api/registry/pin`: a ref to pin, or `clear`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PinBody {
    #[serde(default, rename = "ref")]
    reference: Option<String>,
    #[serde(default)]
    clear: bool,
}

/// `PUT /api/providers/{id}/key`: the key comes in; it never goes out.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyBody {
    key: crate::proxy::keys::KeyText,
}

/// Parses a required JSON body. serde's message says where and what, and
/// the prefix tells a syntax error from a body of the wrong shape.
fn json_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, HttpError> {
    if is_blank(body) {
        return Err(HttpError::bad_request("a JSON body is required"));
    }
    serde_json::from_slice(body).map_err(|e| {
        HttpError::bad_request(match e.classify() {
            Category::Data => format!("the JSON body has the wrong shape: {e}"),
            Category::Syntax | Category::Eof | Category::Io => {
                format!("the body is not valid JSON: {e}")
            }
        })
    })
}

/// Parses a required JSON object into a struct. Checked by hand because
/// serde's derived structs also accept an array of the fields in order, so
/// `[]` would pass as an all-defaults create; keyed fields only, over HTTP.
/// A bare JSON string is refused before serde sees it: serde's message
/// quotes it (`invalid type: string "sk-..."`), and that string may be a
/// key sent the wrong way (`curl -d '"sk-..."'`).
fn json_object<T: DeserializeOwned>(body: &[u8]) -> Result<T, HttpError> {
    let first = body.trim_ascii_start().first().copied();
    if first == Some(b'"') {
        return Err(HttpError::bad_request("the JSON body must be an object"));
    }
    let parsed = json_body(body)?;
    if first != Some(b'{') {
        return Err(HttpError::bad_request("the JSON body must be an object"));
    }
    Ok(parsed)
}

/// `PUT /api/providers/{id}/key`'s body. serde's messages quote the
/// string they could not place (`invalid type: string "sk-..."`), which
/// here may be the key: none of them is shown.
fn key_body(body: &[u8]) -> Result<KeyBody, HttpError> {
    let shape = || {
        HttpError::bad_request(
            "the body must be a JSON object {\"key\": \"<the key>\"} and nothing else \
             (the parser's message is not shown: it could quote the key)",
        )
    };
    if body.trim_ascii_start().first() != Some(&b'{') {
        return Err(shape());
    }
    serde_json::from_slice(body).map_err(|_| shape())
}

fn is_blank(body: &[u8]) -> bool {
    body.trim_ascii().is_empty()
}

// ---------------------------------------------------------------------------
// Queries

/// A parsed query string: `a=1&b=x%20y`, `+` as a space. A key given twice
/// is an error rather than first-wins or last-wins, because either silent
/// choice would make a client's mistake look like success. Builders take the
/// parameters they know; whatever is left over is an unknown parameter.
#[derive(Debug, Default)]
struct Query {
    pairs: Vec<(String, String)>,
    /// The names builders asked for, for the unknown-parameter message.
    known: Vec<&'static str>,
}

impl Query {
    fn parse(query: &str) -> Result<Query, HttpError> {
        let mut parsed = Query::default();
        // Empty pieces (`a=1&&b=2`, a trailing `&`) carry nothing.
        for piece in query.split('&').filter(|p| !p.is_empty()) {
            let (raw_key, raw_value) = piece.split_once('=').unwrap_or((piece, ""));
            let decode = |raw: &str| {
                percent_decode(raw, true).map_err(|why| {
                    HttpError::bad_request(format!("query parameter `{piece}`: {why}"))
                })
            };
            let (key, value) = (decode(raw_key)?, decode(raw_value)?);
            if key.is_empty() {
                return Err(HttpError::bad_request(format!(
                    "query parameter `{piece}` has no name"
                )));
            }
            if parsed.pairs.iter().any(|(k, _)| *k == key) {
                return Err(HttpError::bad_request(format!(
                    "query parameter `{key}` is given more than once"
                )));
            }
            parsed.pairs.push((key, value));
        }
        Ok(parsed)
    }

    fn take(&mut self, name: &'static str) -> Option<String> {
        self.known.push(name);
        let i = self.pairs.iter().position(|(k, _)| k == name)?;
        Some(self.pairs.remove(i).1)
    }

    /// A text parameter. Empty means absent, as an HTML form sends `agent=`
    /// for a field left blank.
    fn text(&mut self, name: &'static str) -> Option<String> {
        self.take(name).filter(|v| !v.is_empty())
    }

    /// A boolean parameter, absent = false. Anything but `true`/`false`
    /// (or `1`/`0`) is refused: a bare `?purge` must not silently mean
    /// either.
    fn flag(&mut self, name: &'static str) -> Result<bool, HttpError> {
        match self.take(name).as_deref() {
            None | Some("false" | "0") => Ok(false),
            Some("true" | "1") => Ok(true),
            Some(other) => Err(HttpError::bad_request(format!(
                "query parameter `{name}` must be true or false, not `{other}`"
            ))),
        }
    }

    /// A non-negative whole number, absent = `None`.
    fn number<T: std::str::FromStr>(&mut self, name: &'static str) -> Result<Option<T>, HttpError> {
        match self.text(name) {
            None => Ok(None),
            Some(v) => v.parse().map(Some).map_err(|_| {
                HttpError::bad_request(format!(
                    "query parameter `{name}` must be a whole number, not `{v}`"
                ))
            }),
        }
    }

    /// Refuses the first parameter no builder took: a misspelt filter must
    /// not quietly widen a report or skip a purge.
    fn finish(self) -> Result<(), HttpError> {
        let Some((key, _)) = self.pairs.first() else { return Ok(()) };
        let takes = if self.known.is_empty() {
            "this path takes none".to_string()
        } else {
            format!("this path takes {}", self.known.join(", "))
        };
        Err(HttpError::bad_request(format!("unknown query parameter `{key}` ({takes})")))
    }
}

/// Decodes `%XX` escapes (and, in a query, `+` as a space). The result must
/// be UTF-8: every name the dispatcher knows is text.
fn percent_decode(raw: &str, plus_is_space: bool) -> Result<String, String> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = |j: usize| bytes.get(j).and_then(|&b| (b as char).to_digit(16));
                let (Some(hi), Some(lo)) = (hex(i + 1), hex(i + 2)) else {
                    let escape: String = raw[i..].chars().take(3).collect();
                    return Err(format!("`{escape}` is not a %XX escape"));
                };
                // Two hex digits are at most 0xFF.
                out.push((hi * 16 + lo) as u8);
                i += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| "the %XX escapes do not decode to UTF-8".to_string())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::protocol::ErrorReply;

    fn get(path_and_query: &str) -> Result<Request, HttpError> {
        call("GET", path_and_query, b"")
    }

    fn call(method: &str, path_and_query: &str, body: &[u8]) -> Result<Request, HttpError> {
        let (path, query) = path_and_query.split_once('?').unwrap_or((path_and_query, ""));
        route(method, path, query, body)
    }

    /// Asserts an error's status and that its message contains `needle`.
    #[track_caller]
    fn fails(result: Result<Request, HttpError>, status: u16, needle: &str) -> HttpError {
        let e = result.expect_err("expected an HTTP error");
        assert_eq!(e.status, status, "{e:?}");
        assert!(e.message.contains(needle), "{:?} does not contain {needle:?}", e.message);
        let code = match status {
            400 => "bad_request",
            404 => "not_found",
            405 => "method_not_allowed",
            501 => "not_implemented",
            _ => panic!("unexpected status {status}"),
        };
        assert_eq!(e.code, code);
        e
    }

    fn usage(report: ReportKind) -> UsageQuery {
        UsageQuery { report, ..UsageQuery::default() }
    }

    // -- routes ------------------------------------------------------------

    #[test]
    fn agents_and_providers() {
        assert_eq!(get("/api/agents"), Ok(Request::AgentsList));
        assert_eq!(get("/api/agents/claude"), Ok(Request::AgentsInspect { id: "claude".into() }));
        assert_eq!(get("/api/providers"), Ok(Request::ProvidersList));
        assert_eq!(
            get("/api/providers/anthropic"),
            Ok(Request::ProvidersInspect { id: "anthropic".into() })
        );
    }

    #[test]
    fn templates_and_models_take_their_one_filter() {
        assert_eq!(get("/api/templates"), Ok(Request::ProfilesTemplates { agent: None }));
        assert_eq!(
            get("/api/templates?agent=claude"),
            Ok(Request::ProfilesTemplates { agent: Some("claude".into()) })
        );
        assert_eq!(get("/api/models"), Ok(Request::Models { provider: None }));
        assert_eq!(
            get("/api/models?provider=zai"),
            Ok(Request::Models { provider: Some("zai".into()) })
        );
        fails(get("/api/models?agent=x"), 400, "unknown query parameter `agent`");
        fails(call("POST", "/api/templates", b"{}"), 405, "");
    }

    #[test]
    fn profiles_list_with_and_without_agent() {
        assert_eq!(get("/api/profiles"), Ok(Request::ProfilesList { agent: None }));
        assert_eq!(
            get("/api/profiles?agent=codex"),
            Ok(Request::ProfilesList { agent: Some("codex".into()) })
        );
        // A blank form field is no filter.
        assert_eq!(get("/api/profiles?agent="), Ok(Request::ProfilesList { agent: None }));
    }

    #[test]
    fn profiles_create_takes_the_ipc_wire_form() {
        let create = CreateRequest {
            agent: "claude".into(),
            alias: "work".into(),
            provider: "anthropic".into(),
            model: Some("claude-sonnet-4-5".into()),
            hooks: Some(vec!["fmt".into()]),
            api_key: Some("sk-test".into()),
            dry_run: true,
            ..CreateRequest::default()
        };
        let body = serde_json::to_vec(&create).unwrap();
        assert_eq!(call("POST", "/api/profiles", &body), Ok(Request::ProfilesCreate(create)));
        // Omitted fields take their defaults, as on the socket.
        let body = br#"{"agent":"codex","alias":"x","provider":"openai"}"#;
        let Ok(Request::ProfilesCreate(req)) = call("POST", "/api/profiles", body) else {
            panic!("not a create");
        };
        assert_eq!((req.agent.as_str(), req.alias_shim, req.dry_run), ("codex", false, false));
    }

    #[test]
    fn profiles_create_body_errors() {
        fails(call("POST", "/api/profiles", b""), 400, "a JSON body is required");
        fails(call("POST", "/api/profiles", b" \r\n\t"), 400, "a JSON body is required");
        fails(call("POST", "/api/profiles", b"agent=claude"), 400, "not valid JSON");
        fails(call("POST", "/api/profiles", br#"{"agent":"claude""#), 400, "not valid JSON");
        fails(
            call("POST", "/api/profiles", br#"{"agnet":"claude"}"#),
            400,
            "unknown field `agnet`",
        );
        fails(call("POST", "/api/profiles", br#"{"bare":"yes"}"#), 400, "wrong shape");
        fails(call("POST", "/api/profiles", b"[]"), 400, "must be an object");
        let positional = br#"["claude","work","anthropic"]"#;
        fails(call("POST", "/api/profiles", positional), 400, "must be an object");
        fails(call("POST", "/api/profiles", b"null"), 400, "wrong shape");
        fails(call("POST", "/api/profiles", b"{} {}"), 400, "not valid JSON");
    }

    #[test]
    fn profile_inspect_and_delete() {
        assert_eq!(
            get("/api/profiles/work"),
            Ok(Request::ProfilesInspect { alias: "work".into() })
        );
        let delete = |q: &str| call("DELETE", &format!("/api/profiles/work{q}"), b"");
        let deleted = |purge| Ok(Request::ProfilesDelete { alias: "work".into(), purge });
        assert_eq!(delete(""), deleted(false));
        assert_eq!(delete("?purge=true"), deleted(true));
        assert_eq!(delete("?purge=1"), deleted(true));
        assert_eq!(delete("?purge=false"), deleted(false));
        assert_eq!(delete("?purge=0"), deleted(false));
        fails(delete("?purge"), 400, "`purge` must be true or false");
        fails(delete("?purge=yes"), 400, "not `yes`");
        fails(delete("?purge=true&force=1"), 400, "unknown query parameter `force`");
    }

    #[test]
    fn profile_env() {
        assert_eq!(
            get("/api/profiles/work/env"),
            Ok(Request::ProfilesEnv { alias: "work".into() })
        );
    }

    #[test]
    fn hooks_list_export_and_remove() {
        let alias = || "work".to_string();
        assert_eq!(get("/api/profiles/work/hooks"), Ok(Request::HooksList { alias: alias() }));
        assert_eq!(
            get("/api/profiles/work/hooks/export"),
            Ok(Request::HooksExport { alias: alias() })
        );
        assert_eq!(
            call("DELETE", "/api/profiles/work/hooks/PostToolUse/2", b""),
            Ok(Request::HooksRemove { alias: alias(), event: "PostToolUse".into(), index: 2 })
        );
        fails(call("DELETE", "/api/profiles/work/hooks/Stop/two", b""), 400, "`two`");
        fails(call("DELETE", "/api/profiles/work/hooks/Stop/-1", b""), 400, "not a hook number");
        // An event without an index names nothing.
        fails(call("DELETE", "/api/profiles/work/hooks/Stop", b""), 404, "no such path");
    }

    #[test]
    fn hooks_add() {
        let body =
            br#"{"event":"PostToolUse","command":"cargo fmt","matcher":"Edit","timeout":30}"#;
        assert_eq!(
            call("POST", "/api/profiles/work/hooks", body),
            Ok(Request::HooksAdd {
                alias: "work".into(),
                event: "PostToolUse".into(),
                command: "cargo fmt".into(),
                matcher: Some("Edit".into()),
                timeout: Some(30),
            })
        );
        assert_eq!(
            call("POST", "/api/profiles/work/hooks", br#"{"event":"Stop","command":"x"}"#),
            Ok(Request::HooksAdd {
                alias: "work".into(),
                event: "Stop".into(),
                command: "x".into(),
                matcher: None,
                timeout: None,
            })
        );
        let add = |body: &[u8]| call("POST", "/api/profiles/work/hooks", body);
        fails(add(b""), 400, "a JSON body is required");
        fails(add(br#"{"event":"Stop"}"#), 400, "missing field `command`");
        fails(add(br#"["Stop","x"]"#), 400, "must be an object");
        fails(add(br#"{"event":"Stop","command":"x","timeout":-1}"#), 400, "wrong shape");
        fails(add(br#"{"event":"Stop","command":"x","type":"command"}"#), 400, "unknown field");
    }

    #[test]
    fn hooks_import_passes_any_json_to_the_dispatcher() {
        let group = json!({"matcher": "", "hooks": [{"type": "command", "command": "x"}]});
        let hooks = json!({"hooks": {"Stop": [group]}});
        let body = serde_json::to_vec(&hooks).unwrap();
        assert_eq!(
            call("PUT", "/api/profiles/work/hooks", &body),
            Ok(Request::HooksImport { alias: "work".into(), hooks })
        );
        // The schema is the dispatcher's to check, with the CLI's messages.
        assert_eq!(
            call("PUT", "/api/profiles/work/hooks", b"[1]"),
            Ok(Request::HooksImport { alias: "work".into(), hooks: json!([1]) })
        );
        fails(call("PUT", "/api/profiles/work/hooks", b""), 400, "a JSON body is required");
        fails(call("PUT", "/api/profiles/work/hooks", b"{hooks}"), 400, "not valid JSON");
    }

    #[test]
    fn usage_reports_by_path() {
        for (path, report) in [
            ("/api/usage", ReportKind::Summary),
            ("/api/usage/daily", ReportKind::Daily),
            ("/api/usage/models", ReportKind::Models),
            ("/api/usage/profiles", ReportKind::Profiles),
            ("/api/usage/export", ReportKind::Export),
        ] {
            assert_eq!(get(path), Ok(Request::Usage(usage(report))), "{path}");
        }
    }

    #[test]
    fn usage_query_parameters() {
        let q = "period=7d&since=2026-01-01&until=2026-01-31&profile=work&model=claude-sonnet-4-5\
                 &agent=claude&timezone=Europe%2FBerlin";
        assert_eq!(
            get(&format!("/api/usage/daily?{q}")),
            Ok(Request::Usage(UsageQuery {
                report: ReportKind::Daily,
                period: Some("7d".into()),
                since: Some("2026-01-01".into()),
                until: Some("2026-01-31".into()),
                profile: Some("work".into()),
                model: Some("claude-sonnet-4-5".into()),
                agent: Some("claude".into()),
                timezone: Some("Europe/Berlin".into()),
            }))
        );
        // Values are the dispatcher's to validate.
        assert_eq!(
            get("/api/usage?period=fortnight"),
            Ok(Request::Usage(UsageQuery {
                period: Some("fortnight".into()),
                ..usage(ReportKind::Summary)
            }))
        );
        let e = fails(get("/api/usage?perod=7d"), 400, "unknown query parameter `perod`");
        assert!(e.message.contains("period, since, until, profile, model, agent, timezone"));
        // The report kind is the path's, never a parameter.
        fails(get("/api/usage/daily?report=models"), 400, "unknown query parameter `report`");
        fails(get("/api/usage/export?format=csv"), 400, "unknown query parameter `format`");
        fails(get("/api/usage?period=7d&period=30d"), 400, "`period` is given more than once");
    }

    #[test]
    fn usage_import_claude() {
        let import = |body: &[u8]| call("POST", "/api/usage/import-claude", body);
        assert_eq!(import(b""), Ok(Request::UsageImportClaude { dir: None, profile: None }));
        assert_eq!(import(b"{}"), Ok(Request::UsageImportClaude { dir: None, profile: None }));
        assert_eq!(
            import(br#"{"dir":"/home/u/.claude","profile":"work"}"#),
            Ok(Request::UsageImportClaude {
                dir: Some("/home/u/.claude".into()),
                profile: Some("work".into()),
            })
        );
        fails(import(br#"{"claude_dir":"/x"}"#), 400, "unknown field `claude_dir`");
        fails(import(b"/x"), 400, "not valid JSON");
        fails(import(b"[]"), 400, "must be an object");
        fails(call("GET", "/api/usage/import-claude", b""), 405, "takes POST, not GET");
    }

    #[test]
    fn daemon_and_stats() {
        assert_eq!(get("/api/daemon/status"), Ok(Request::Status));
        assert_eq!(call("POST", "/api/daemon/shutdown", b""), Ok(Request::Shutdown));
        // A body where none is taken is ignored, as HTTP gives it no meaning.
        assert_eq!(call("POST", "/api/daemon/shutdown", b"{}"), Ok(Request::Shutdown));
        assert_eq!(get("/api/stats"), Ok(Request::Stats));
        fails(
            get("/api/stats?verbose=1"),
            400,
            "unknown query parameter `verbose` (this path takes none)",
        );
    }

    // -- 404 / 405 / 501 ---------------------------------------------------

    #[test]
    fn unknown_paths_are_404() {
        for path in [
            "/",
            "",
            "api/agents",
            "*",
            "/api",
            "/api/",
            "/api/agents/",
            "/api//agents",
            "/api/agents/claude/extra",
            "/api/profiles/work/nope",
            "/api/profiles/work/hooks/export/extra/more",
            "/api/usage/weekly",
            "/api/daemon",
            "/api/daemon/token",
            "/api/daemon/stop",
            "/agents",
            "/API/agents",
            "/ws",
            "/static/app.js",
        ] {
            fails(get(path), 404, "no such path");
        }
    }

    #[test]
    fn cli_only_requests_have_no_path() {
        for (method, path) in [
            ("GET", "/api/aliases"),
            ("POST", "/api/aliases/work"),
            ("POST", "/api/profiles/work/run"),
            ("POST", "/api/profiles/work/run-ended"),
            ("POST", "/api/profiles/work/env/setup"),
            ("POST", "/api/env/setup"),
            // Streaming events is `/ws`; `/api/events` is the kept record.
            ("GET", "/api/subscribe"),
            ("POST", "/api/debug/panic"),
        ] {
            fails(call(method, path, b"{}"), 404, "no such path");
        }
    }

    /// Every route's methods, and every other method a 405 naming them: the
    /// route table and the builders cannot drift apart.
    #[test]
    fn wrong_methods_are_405_naming_the_allowed_ones() {
        let json_body = br#"{"event":"Stop","command":"x","agent":"a"}"#;
        for (path, allowed) in [
            ("/api/agents", &["GET"][..]),
            ("/api/agents/claude", &["GET"]),
            ("/api/providers", &["GET"]),
            ("/api/providers/openai", &["GET"]),
            ("/api/profiles", &["GET", "POST"]),
            ("/api/profiles/work", &["GET", "DELETE"]),
            ("/api/profiles/work/env", &["GET"]),
            ("/api/profiles/work/hooks", &["GET", "POST", "PUT"]),
            ("/api/profiles/work/hooks/export", &["GET"]),
            ("/api/profiles/work/hooks/Stop/0", &["DELETE"]),
            ("/api/usage", &["GET"]),
            ("/api/usage/daily", &["GET"]),
            ("/api/usage/models", &["GET"]),
            ("/api/usage/profiles", &["GET"]),
            ("/api/usage/export", &["GET"]),
            ("/api/usage/import-claude", &["POST"]),
            ("/api/daemon/status", &["GET"]),
            ("/api/daemon/shutdown", &["POST"]),
            ("/api/stats", &["GET"]),
            ("/api/proxy/status", &["GET"]),
            ("/api/proxy/status/work", &["GET"]),
            ("/api/proxy/stop-all", &["POST"]),
            ("/api/proxy/work/restart", &["POST"]),
            ("/api/proxy/work/logs", &["GET"]),
            ("/api/registry", &["GET"]),
            ("/api/registry/sync", &["POST"]),
            ("/api/registry/pin", &["POST"]),
            ("/api/registry/rollback", &["POST"]),
            ("/api/registry/changes", &["GET"]),
        ] {
            for method in ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "get"] {
                let result = call(method, path, json_body);
                if allowed.contains(&method) {
                    // `{"event","command","agent"}` is the wrong shape for a
                    // create: a 400 proves the builder arm exists.
                    if let Err(e) = &result {
                        assert_eq!(e.status, 400, "{method} {path}: {e:?}");
                    }
                } else {
                    let wanted = format!("{path} takes {}, not {method}", allowed.join(", "));
                    fails(result, 405, &wanted);
                }
            }
        }
    }

    #[test]
    fn the_browser_session_routes() {
        let list = Request::BrowserSessionsList { current: None };
        assert_eq!(get("/api/browser-sessions").unwrap(), list);
        assert_eq!(
            call("DELETE", "/api/browser-sessions", b"").unwrap(),
            Request::BrowserSessionsRevokeAll
        );
        assert_eq!(
            call("DELETE", "/api/browser-sessions/0123abcd", b"").unwrap(),
            Request::BrowserSessionsRevoke { id: "0123abcd".into() }
        );
        fails(call("GET", "/api/browser-sessions/0123abcd", b""), 405, "takes DELETE");
        fails(call("POST", "/api/browser-sessions", b""), 405, "takes GET, DELETE");
        fails(get("/api/browser-sessions?current=x"), 400, "current");
    }

    #[test]
    fn the_registry_routes() {
        assert_eq!(get("/api/registry").unwrap(), Request::RegistryInspect { changes: false });
        assert_eq!(
            get("/api/registry?changes=true").unwrap(),
            Request::RegistryInspect { changes: true }
        );
        assert_eq!(get("/api/registry/changes").unwrap(), Request::RegistryChanges);
        let sync = |body: &[u8]| call("POST", "/api/registry/sync", body);
        assert_eq!(sync(b"").unwrap(), Request::RegistrySync(Default::default()));
        let Request::RegistrySync(req) =
            sync(br#"{"force":true,"channel":"beta","from":"/srv/r.tar"}"#).unwrap()
        else {
            panic!()
        };
        assert!(req.force && !req.offline);
        assert_eq!(
            (req.channel.as_deref(), req.from.as_deref()),
            (Some("beta"), Some("/srv/r.tar"))
        );
        fails(sync(br#"{"forse":true}"#), 400, "forse");
        let pin = |body: &[u8]| call("POST", "/api/registry/pin", body);
        assert_eq!(
            pin(br#"{"ref":"v1"}"#).unwrap(),
            Request::RegistryPin { reference: Some("v1".into()) }
        );
        assert_eq!(pin(br#"{"clear":true}"#).unwrap(), Request::RegistryPin { reference: None });
        fails(pin(b"{}"), 400, "either");
        fails(pin(br#"{"ref":"v1","clear":true}"#), 400, "either");
        fails(pin(b""), 400, "a JSON body is required");
        assert_eq!(call("POST", "/api/registry/rollback", b"").unwrap(), Request::RegistryRollback);
        fails(call("GET", "/api/registry/sync", b""), 405, "takes POST");
        fails(call("POST", "/api/registry", b""), 405, "takes GET");
        fails(get("/api/registry/nope"), 404, "no such path");
    }

    #[test]
    fn built_features_are_routed() {
        // Terminal sessions are built.
        assert_eq!(get("/api/terminal/sessions").unwrap(), Request::TerminalList);
        assert_eq!(
            call("DELETE", "/api/terminal/sessions/t1", b"").unwrap(),
            Request::TerminalKill { id: "t1".into() }
        );
        assert_eq!(call("POST", "/api/terminal/cleanup", b"").unwrap(), Request::TerminalCleanup);
        let create =
            call("POST", "/api/terminal/sessions", br#"{"profile":"p","cols":100}"#).unwrap();
        let Request::TerminalCreate(req) = create else { panic!("{create:?}") };
        assert_eq!((req.profile.as_str(), req.cols, req.rows, req.sandbox), ("p", 100, 24, true));
    }

    #[test]
    fn signal_dirs_and_doctor_routes() {
        let signal = |body: &[u8]| call("POST", "/api/terminal/sessions/t1/signal", body);
        let sent = |name: &str| Request::TerminalSignal { id: "t1".into(), signal: name.into() };
        assert_eq!(signal(br#"{"signal":"INT"}"#), Ok(sent("INT")));
        assert_eq!(signal(br#"{"signal":2}"#), Ok(sent("2")));
        fails(signal(br#"{"signal":[2]}"#), 400, "a name");
        fails(signal(br#"{"sig":2}"#), 400, "unknown field");
        fails(signal(b""), 400, "a JSON body is required");
        fails(call("GET", "/api/terminal/sessions/t1/signal", b""), 405, "POST");
        assert_eq!(get("/api/fs/dirs"), Ok(Request::FsDirs { prefix: String::new() }));
        assert_eq!(
            get("/api/fs/dirs?prefix=%7E%2Fpro"),
            Ok(Request::FsDirs { prefix: "~/pro".into() })
        );
        fails(get("/api/fs/dirs?path=x"), 400, "takes prefix");
        assert_eq!(get("/api/doctor"), Ok(Request::Doctor));
        fails(call("POST", "/api/doctor", b""), 405, "GET");
    }

    #[test]
    fn recent_events_and_config_choices_routes() {
        let recent = |limit, events: &[&str]| Request::EventsRecent {
            limit,
            events: events.iter().map(|e| e.to_string()).collect(),
        };
        assert_eq!(get("/api/events"), Ok(recent(None, &[])));
        assert_eq!(
            get("/api/events?limit=5&type=ProfileCreated,UsageUpdated"),
            Ok(recent(Some(5), &["ProfileCreated", "UsageUpdated"]))
        );
        fails(get("/api/events?limit=many"), 400, "limit");
        fails(call("DELETE", "/api/events", b""), 405, "GET");
        assert_eq!(get("/api/config/choices"), Ok(Request::ConfigChoices));
    }

    #[test]
    fn proxy_lifecycle_routes() {
        let alias = || "work".to_string();
        assert_eq!(get("/api/proxy/status"), Ok(Request::ProxyStatus { alias: None }));
        assert_eq!(
            get("/api/proxy/status/work"),
            Ok(Request::ProxyStatus { alias: Some(alias()) })
        );
        assert_eq!(
            call("POST", "/api/proxy/work/start", b""),
            Ok(Request::ProxyStart { alias: alias() })
        );
        assert_eq!(
            call("POST", "/api/proxy/work/stop", b""),
            Ok(Request::ProxyStop { alias: alias() })
        );
        assert_eq!(
            call("POST", "/api/proxy/work/restart", b""),
            Ok(Request::ProxyRestart { alias: alias() })
        );
        assert_eq!(call("POST", "/api/proxy/stop-all", b""), Ok(Request::ProxyStopAll));
        assert_eq!(
            get("/api/proxy/work/logs?lines=5"),
            Ok(Request::ProxyLogs { alias: alias(), lines: Some(5), from: None })
        );
        assert_eq!(
            get("/api/proxy/work/logs?from=120"),
            Ok(Request::ProxyLogs { alias: alias(), lines: None, from: Some(120) })
        );
        fails(get("/api/proxy/work/logs?lines=-1"), 400, "whole number");
        fails(get("/api/proxy/work/start"), 405, "takes POST");
        fails(call("POST", "/api/proxy/status", b""), 405, "takes GET");
        fails(call("POST", "/api/proxy/work/explode", b""), 404, "no such path");
    }

    #[test]
    fn proxy_routing_and_provider_keys() {
        let alias = || "work".to_string();
        assert_eq!(get("/api/profiles/work/proxy"), Ok(Request::ProxyConfig { alias: alias() }));
        assert_eq!(get("/api/proxy/config/work"), Ok(Request::ProxyConfig { alias: alias() }));
        assert_eq!(
            call("POST", "/api/profiles/work/proxy/enable", b""),
            Ok(Request::ProxyEnable { alias: alias(), port: None })
        );
        assert_eq!(
            call("POST", "/api/profiles/work/proxy/enable", br#"{"port":4100}"#),
            Ok(Request::ProxyEnable { alias: alias(), port: Some(4100) })
        );
        assert_eq!(
            call("POST", "/api/profiles/work/proxy/disable", b""),
            Ok(Request::ProxyDisable { alias: alias() })
        );
        assert_eq!(
            call(
                "POST",
                "/api/profiles/work/proxy/routes",
                br#"{"name":"long","condition":"tokens > 100000","target":"a/b","priority":-3}"#
            ),
            Ok(Request::ProxyRouteAdd {
                alias: alias(),
                name: "long".into(),
                condition: "tokens > 100000".into(),
                target: "a/b".into(),
                priority: -3
            })
        );
        fails(call("POST", "/api/profiles/work/proxy/routes", br#"{"name":"x"}"#), 400, "shape");
        assert_eq!(
            call("DELETE", "/api/profiles/work/proxy/routes/long", b""),
            Ok(Request::ProxyRouteRemove { alias: alias(), name: "long".into() })
        );
        assert_eq!(
            call("POST", "/api/profiles/work/proxy/routes/long/move", br#"{"priority":7}"#),
            Ok(Request::ProxyRouteMove { alias: alias(), name: "long".into(), priority: 7 })
        );
        assert_eq!(
            call("PUT", "/api/profiles/work/proxy/aliases/fast", br#"{"target":"a/b"}"#),
            Ok(Request::ProxyAliasSet {
                alias: alias(),
                model: "fast".into(),
                target: "a/b".into()
            })
        );
        assert_eq!(
            call("PUT", "/api/profiles/work/proxy/budget", br#"{"daily_usd":20.5}"#),
            Ok(Request::ProxyBudgetSet { alias: alias(), daily: Some(20.5), monthly: None })
        );
        assert_eq!(get("/api/providers/keys"), Ok(Request::ProvidersKeyList));
        let set = call("PUT", "/api/providers/openai/key", br#"{"key":"sk-x"}"#).unwrap();
        let Request::ProvidersKeySet { provider, key } = set else { panic!("{set:?}") };
        assert_eq!((provider.as_str(), key.0.as_str()), ("openai", "sk-x"));
        // A key is never read back over HTTP.
        fails(get("/api/providers/openai/key"), 405, "PUT, DELETE");
        fails(get("/api/profiles/work/proxy/nope"), 404, "no such path");
    }

    #[test]
    fn login_takes_a_ticket_by_post() {
        let t = "ab".repeat(32);
        let body = format!(r#"{{"ticket":"{t}"}}"#);
        assert_eq!(login_ticket("POST", body.as_bytes()), Ok(t));
        let e = login_ticket("GET", b"").unwrap_err();
        assert_eq!((e.status, e.message.as_str()), (405, "/api/login takes POST, DELETE, not GET"));
        assert_eq!(login_ticket("POST", b"").unwrap_err().status, 400);
        assert_eq!(login_ticket("POST", br#"{"token":"x"}"#).unwrap_err().status, 400);
        assert_eq!(login_ticket("POST", br#"["x"]"#).unwrap_err().status, 400);
    }

    #[test]
    fn errors_come_in_a_fixed_order() {
        // 404 before 405: the path decides first.
        fails(call("DELETE", "/api/nope", b""), 404, "no such path");
        // 405 before a bad query or body.
        fails(call("PUT", "/api/profiles?x=%zz", b"{"), 405, "takes GET, POST");
        // A repeated parameter is 400 on a path that exists.
        fails(get("/api/registry?x=1&x=2"), 400, "more than once");
        // A bad segment anywhere is 400, even on a path that would not exist.
        fails(get("/api/nope/%2e%2e"), 400, "not allowed in a name");
    }

    // -- decoding ----------------------------------------------------------

    #[test]
    fn segments_are_percent_decoded_one_by_one() {
        assert_eq!(
            get("/api/agents/my%20agent"),
            Ok(Request::AgentsInspect { id: "my agent".into() })
        );
        assert_eq!(get("/api/agents/caf%C3%A9"), Ok(Request::AgentsInspect { id: "café".into() }));
        // `+` is only a space in a query.
        assert_eq!(get("/api/agents/a+b"), Ok(Request::AgentsInspect { id: "a+b".into() }));
        // Encoded route words are the same words.
        assert_eq!(get("/api/%61gents"), Ok(Request::AgentsList));
        // Names are passed through as-is for the dispatcher to judge.
        assert_eq!(
            get("/api/profiles/Work%5C..%00"),
            Ok(Request::ProfilesInspect { alias: "Work\\..\0".into() })
        );
    }

    #[test]
    fn encoded_separators_and_dot_segments_are_400() {
        for path in [
            "/api/profiles/a%2Fb",
            "/api/profiles/a%2fb/env",
            "/api/profiles/%2F",
            "/api/profiles/..%2F..%2Fetc/hooks",
            "/api/profiles/.",
            "/api/profiles/..",
            "/api/profiles/%2E",
            "/api/profiles/%2e%2E",
            "/api/profiles/../hooks",
            "/api/profiles/work/hooks/%2E%2E/0",
            "/api/agents/%2E%2E",
        ] {
            fails(call("DELETE", path, b""), 400, "not allowed in a name");
        }
        // A dot inside a name is fine.
        assert_eq!(get("/api/agents/a.b"), Ok(Request::AgentsInspect { id: "a.b".into() }));
        assert_eq!(get("/api/agents/...").map(|_| ()), Ok(()));
    }

    #[test]
    fn bad_escapes_are_400() {
        fails(get("/api/agents/%zz"), 400, "`%zz` is not a %XX escape");
        fails(get("/api/agents/abc%4"), 400, "`%4` is not a %XX escape");
        fails(get("/api/agents/abc%"), 400, "`%` is not a %XX escape");
        fails(get("/api/agents/%+1"), 400, "is not a %XX escape");
        fails(get("/api/agents/%FF"), 400, "do not decode to UTF-8");
        fails(get("/api/profiles?agent=%G1"), 400, "query parameter `agent=%G1`");
        fails(get("/api/profiles?agent=%C3"), 400, "UTF-8");
        fails(get("/api/profiles?%zz=1"), 400, "not a %XX escape");
    }

    #[test]
    fn query_strings() {
        let list = |q: &str| get(&format!("/api/profiles?{q}"));
        let agent = |a: &str| Ok(Request::ProfilesList { agent: Some(a.into()) });
        assert_eq!(list("agent=x%20y"), agent("x y"));
        assert_eq!(list("agent=x+y"), agent("x y"));
        assert_eq!(list("agent=a%2Bb"), agent("a+b"));
        assert_eq!(list("agent=a=b"), agent("a=b"));
        assert_eq!(list("ag%65nt=codex"), agent("codex"));
        assert_eq!(list("&agent=codex&"), agent("codex"));
        assert_eq!(list("agent=%26%3D"), agent("&="));
        assert_eq!(list(""), Ok(Request::ProfilesList { agent: None }));
        fails(list("agent=a&agent=b"), 400, "`agent` is given more than once");
        fails(list("agent=a&ag%65nt=b"), 400, "`agent` is given more than once");
        fails(list("=codex"), 400, "has no name");
        fails(list("agnet=codex"), 400, "unknown query parameter `agnet` (this path takes agent)");
        fails(get("/api/agents?agent=x"), 400, "this path takes none");
    }

    // -- statuses and envelopes --------------------------------------------

    #[test]
    fn status_of_maps_every_reply() {
        assert_eq!(status_of(&Reply::ok(&json!({"a": 1})), 200), 200);
        assert_eq!(status_of(&Reply::ok(&Value::Null), 201), 201);
        assert_eq!(success_status(&Request::RegistrySync(Default::default())), 202);
        assert_eq!(success_status(&Request::AgentsList), 200);
        for (code, status) in [
            (ErrorCode::BadRequest, 400),
            (ErrorCode::Forbidden, 403),
            (ErrorCode::NotFound, 404),
            (ErrorCode::Conflict, 409),
            (ErrorCode::TooLarge, 413),
            (ErrorCode::VersionMismatch, 400),
            (ErrorCode::NotImplemented, 501),
            (ErrorCode::Internal, 500),
        ] {
            let reply = Reply::Err { error: ErrorReply { code, message: "m".into() } };
            // A failed create is no creation: its error status stands.
            assert_eq!(status_of(&reply, 200), status, "{code:?}");
            assert_eq!(status_of(&reply, 201), status, "{code:?}");
        }
    }

    #[test]
    fn envelope_shapes() {
        let data = json!({"agents": [{"id": "claude"}], "warnings": []});
        let ok: Value = serde_json::from_slice(&envelope_ok(&data)).unwrap();
        assert_eq!(ok, json!({"success": true, "data": data}));
        assert_eq!(envelope_ok(&Value::Null), br#"{"success":true,"data":null}"#);

        let err: Value =
            serde_json::from_slice(&envelope_error(404, "not_found", "no profile `x`")).unwrap();
        assert_eq!(
            err,
            json!({
                "success": false,
                "error": {"code": 404, "kind": "not_found", "message": "no profile `x`"},
            })
        );
        // Messages echo client input: it must come out escaped, still JSON.
        let tricky = "a \"quote\", a \\ and a\nnewline </script>";
        let err: Value =
            serde_json::from_slice(&envelope_error(400, "bad_request", tricky)).unwrap();
        assert_eq!(err["error"]["message"], tricky);
    }

    #[test]
    fn http_errors_render_into_the_envelope() {
        let e = get("/api/nope").unwrap_err();
        let rendered: Value =
            serde_json::from_slice(&envelope_error(e.status, e.code, &e.message)).unwrap();
        assert_eq!(
            rendered,
            json!({
                "success": false,
                "error": {"code": 404, "kind": "not_found", "message": "no such path: /api/nope"},
            })
        );
    }
}

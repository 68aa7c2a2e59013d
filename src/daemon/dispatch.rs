//! `handle(&State, Request) -> Reply`: the only place requests are served.
//! The IPC server and the HTTP API's REST routes both call it, so no
//! handler logic is ever written twice. Handlers are `handle_<request>`.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::events::EventKind;
use super::{State, usage};
use crate::detect::{Change, Detection};
use crate::fsutil::crash_point;
use crate::manifests::{AgentManifest, Catalog, Loaded, ProviderManifest};
use crate::profiles::{
    Conflict, NotFound, Profile, Services, aliases, create, hooks, recover, render, run,
};
use crate::protocol::{
    AgentInfo, AgentList, AliasInfo, DaemonStatus, Deleted, ErrorCode, PROTOCOL_VERSION,
    ProfileEnv, ProfileList, ProfileStats, ProfileView, ProviderInfo, ProviderList, Reply, Request,
    RunEnded, Stats, UsageQuery,
};
use crate::proxy::{config as proxy_config, manage};
use crate::registry::runner as registry;
use crate::usage::store::DEFAULT_PROFILE;

/// Serves one request.
pub fn handle(state: &State, request: Request) -> Reply {
    match request {
        Request::Status => handle_status(state),
        Request::Shutdown => handle_shutdown(state),
        Request::DaemonStayAlive => {
            let changed = !state.keep_alive.swap(true, Ordering::SeqCst);
            if changed {
                crate::info!("staying alive from now on (daemon --stay-alive)");
            }
            Reply::ok(&json!({ "stay_alive": true, "changed": changed }))
        }
        Request::DaemonToken { rotate } => handle_daemon_token(state, rotate),
        Request::UiTicket => handle_ui_ticket(state),
        Request::BrowserSessionsList { current } => {
            Reply::ok(&state.browser.list(current.as_deref()))
        }
        Request::BrowserSessionsRevoke { id } => handle_browser_sessions_revoke(state, Some(&id)),
        Request::BrowserSessionsRevokeAll => handle_browser_sessions_revoke(state, None),
        Request::AgentsList => handle_agents_list(state),
        Request::AgentsInspect { id } => handle_agents_inspect(state, &id),
        Request::ProvidersList => handle_providers_list(state),
        Request::ProvidersInspect { id } => handle_providers_inspect(state, &id),
        Request::ProfilesTemplates { agent } => handle_profiles_templates(state, agent.as_deref()),
        Request::Models { provider } => handle_models(state, provider.as_deref()),
        Request::ProfilesCreate(req) => handle_profiles_create(state, req),
        Request::ProfilesList { agent } => handle_profiles_list(state, agent.as_deref()),
        Request::ProfilesInspect { alias } => handle_profiles_inspect(state, &alias),
        Request::ProfilesDelete { alias, purge } => handle_profiles_delete(state, &alias, purge),
        Request::ProfilesRun { alias, path, args } => {
            handle_profiles_run(state, &alias, path.as_deref(), &args)
        }
        Request::ProfilesRunEnded(ended) => handle_profiles_run_ended(state, &ended),
        Request::ProfilesEnv { alias } => handle_profiles_env(state, &alias),
        Request::AliasesInstall { alias, path } => handle_aliases_install(state, &alias, path),
        Request::AliasesUninstall { alias } => handle_aliases_uninstall(state, &alias),
        Request::AliasesList => handle_aliases_list(state),
        Request::HooksAdd { alias, event, command, matcher, timeout } => {
            update_hooks(state, &alias, "hook added", |h| {
                hooks::add(h, &event, &command, matcher.as_deref().unwrap_or(""), timeout)
                    .map(|()| hooks::list(h))
            })
        }
        Request::HooksList { alias } => {
            result(state.profiles.get(&alias).map(|p| hooks::list(&p.hooks)))
        }
        Request::HooksRemove { alias, event, index } => {
            update_hooks(state, &alias, "hook removed", |h| hooks::remove(h, &event, index))
        }
        Request::HooksImport { alias, hooks: value } => {
            update_hooks(state, &alias, "hooks imported", |h| {
                *h = hooks::import(&value)?;
                Ok(hooks::list(h))
            })
        }
        Request::HooksExport { alias } => {
            result(state.profiles.get(&alias).map(|p| json!({ "hooks": p.hooks })))
        }
        Request::EnvSetup { alias, task, path } => {
            handle_env_setup(state, &alias, &task, path.as_deref())
        }
        Request::Stats => handle_stats(state),
        Request::Usage(query) => handle_usage(state, &query),
        Request::TerminalCreate(req) => handle_terminal_create(state, req),
        Request::TerminalList => Reply::ok(&state.terminals.list()),
        Request::TerminalInfo { id } => result(state.terminals.info(&id)),
        Request::TerminalKill { id } => result(state.terminals.kill(&id)),
        Request::TerminalCleanup => {
            Reply::ok(&json!({ "removed": state.terminals.cleanup(std::time::Duration::ZERO) }))
        }
        Request::TerminalSignal { id, signal } => handle_terminal_signal(state, &id, &signal),
        Request::FsDirs { prefix } => result(
            super::dirs::complete(&state.paths.home, &prefix).map(|dirs| json!({ "dirs": dirs })),
        ),
        Request::Doctor => Reply::ok(&json!({ "checks": crate::doctor::daemon_checks(state) })),
        Request::UsageImportClaude { dir, profile } => {
            handle_usage_import_claude(state, dir.as_deref(), profile.as_deref())
        }
        Request::ProxyStart { alias } => result(state.proxies.start(state, &alias)),
        Request::ProxyStop { alias } => result(state.proxies.stop(state, &alias)),
        Request::ProxyRestart { alias } => result(state.proxies.restart(state, &alias)),
        Request::ProxyStopAll => Reply::ok(&json!({ "stopped": state.proxies.stop_all() })),
        Request::ProxyStatus { alias } => result(state.proxies.status(state, alias.as_deref())),
        Request::ProxyLogs { alias, lines, from } => handle_proxy_logs(state, &alias, lines, from),
        Request::ProxyEnable { alias, port } => {
            // The daemon's own port would be "taken" at every start.
            let http = state.http.get().map(|h| h.addr.port());
            if let Some(p) =
                port.filter(|p| Some(*p) == http || *p == state.config.daemon.http_port)
            {
                return Reply::error(
                    ErrorCode::Conflict,
                    format!("port {p} is the daemon's HTTP API port; choose another"),
                );
            }
            routing_change(state, &alias, "proxy enabled", |s| {
                manage::enable(s, &alias, port).map(|p| proxy_config::view(s, &p))
            })
        }
        Request::ProxyDisable { alias } => routing_change(state, &alias, "proxy disabled", |s| {
            manage::disable(s, &alias).map(|p| proxy_config::view(s, &p))
        }),
        Request::ProxyConfig { alias } => with_services(state, |s| manage::config_view(s, &alias)),
        Request::ProxyRouteAdd { alias, name, condition, target, priority } => {
            let rule = crate::proxy::Rule { name, condition, target, priority };
            routing_change(state, &alias, "proxy rule added", |s| {
                manage::route_add(s, &alias, rule)
            })
        }
        Request::ProxyRouteList { alias } => {
            with_services(state, |s| manage::route_list(s, &alias))
        }
        Request::ProxyRouteRemove { alias, name } => {
            routing_change(state, &alias, "proxy rule removed", |s| {
                manage::route_remove(s, &alias, &name)
            })
        }
        Request::ProxyRouteMove { alias, name, priority } => {
            routing_change(state, &alias, "proxy rule moved", |s| {
                manage::route_move(s, &alias, &name, priority)
            })
        }
        Request::ProxyAliasSet { alias, model, target } => {
            routing_change(state, &alias, "proxy alias set", |s| {
                manage::alias_set(s, &alias, &model, &target)
            })
        }
        Request::ProxyAliasList { alias } => {
            with_services(state, |s| manage::alias_list(s, &alias))
        }
        Request::ProxyAliasRemove { alias, model } => {
            routing_change(state, &alias, "proxy alias removed", |s| {
                manage::alias_remove(s, &alias, &model)
            })
        }
        Request::ProxyBudgetSet { alias, daily, monthly } => {
            let budget = crate::proxy::Budget { daily_usd: daily, monthly_usd: monthly };
            routing_change(state, &alias, "proxy budget set", |s| {
                manage::budget_set(s, &alias, budget)
            })
        }
        Request::ProxyBudgetShow { alias } => {
            with_services(state, |s| manage::budget_show(s, &alias))
        }
        Request::ProvidersKeySet { provider, key } => {
            handle_providers_key_set(state, &provider, &key.0)
        }
        Request::ProvidersKeyRemove { provider } => handle_providers_key_remove(state, &provider),
        Request::ProvidersKeyList => with_services(state, manage::provider_key_list),
        Request::RegistrySync(req) => registry_reply(
            state.registry.start(&state.paths, &state.events, &req).map(|s| json!(s)),
        ),
        Request::RegistryInspect { changes } => {
            result(registry::view(&state.paths, &state.registry, changes))
        }
        Request::RegistryChanges => result(
            registry::view(&state.paths, &state.registry, true)
                .map(|v| json!({"commit": v.commit, "changes": v.changes.unwrap_or_default()})),
        ),
        Request::RegistryPin { reference } => {
            registry_reply(registry::pin(&state.paths, &state.registry, reference.as_deref()))
        }
        Request::RegistryRollback => {
            registry_reply(registry::rollback(&state.paths, &state.registry, &state.events))
        }
        Request::EventsRecent { limit, events } => handle_events_recent(state, limit, &events),
        Request::ConfigChoices => handle_config_choices(state),
        #[cfg(debug_assertions)]
        Request::DebugPanic => panic!("debug_panic requested"),
        Request::Subscribe { .. } => Reply::error(
            ErrorCode::BadRequest,
            "subscribe streams events and is served by the connection, not the dispatcher",
        ),
    }
}

fn handle_events_recent(state: &State, limit: Option<usize>, names: &[String]) -> Reply {
    let mut kinds = Vec::new();
    for name in names {
        match EventKind::parse(name) {
            Some(kind) => kinds.push(kind),
            None => {
                let known = EventKind::ALL.iter().map(|k| k.as_str());
                return not_found("event type", name, known);
            }
        }
    }
    let lines = state.events.recent(limit.unwrap_or(50), &kinds);
    let events: Vec<Value> =
        lines.iter().filter_map(|line| serde_json::from_str(line).ok()).collect();
    Reply::ok(&json!({ "events": events }))
}

fn handle_config_choices(state: &State) -> Reply {
    let text = |v: &toml::Value, key: &str| v.get(key).and_then(|x| x.as_str()).map(str::to_owned);
    let hook_sets: Vec<Value> = state
        .config
        .hooks
        .iter()
        .map(|(name, set)| {
            json!({ "name": name, "event": text(set, "event"), "matcher": text(set, "matcher") })
        })
        .collect();
    let mcp_servers: Vec<Value> = state
        .config
        .mcp_servers
        .iter()
        .map(|(name, server)| {
            let url = text(server, "url");
            let kind = text(server, "type")
                .unwrap_or_else(|| if url.is_some() { "http" } else { "stdio" }.into());
            json!({ "name": name, "type": kind, "command": text(server, "command"), "url": url })
        })
        .collect();
    let modes: Vec<&str> =
        crate::profiles::render::PermissionMode::ALL.iter().map(|m| m.as_str()).collect();
    Reply::ok(&json!({
        "hook_sets": hook_sets,
        "mcp_servers": mcp_servers,
        "hook_events": crate::profiles::hooks::EVENTS,
        "permission_modes": modes,
    }))
}

/// A registry request's reply: a running sync is a conflict, anything
/// else refused a bad request (its message says what to set or give).
fn registry_reply(outcome: Result<Value, registry::Refused>) -> Reply {
    match outcome {
        Ok(data) => Reply::ok(&data),
        Err(registry::Refused::Busy(why)) => Reply::error(ErrorCode::Conflict, why),
        Err(registry::Refused::Bad(e)) => Reply::error(ErrorCode::BadRequest, format!("{e:#}")),
    }
}

fn handle_status(state: &State) -> Reply {
    let terminals = state.terminals.list();
    let running = terminals.iter().filter(|t| t.state == "running").count();
    Reply::ok(&DaemonStatus {
        version: env!("CARGO_PKG_VERSION").into(),
        protocol: PROTOCOL_VERSION,
        pid: std::process::id(),
        uptime_secs: state.started.elapsed().as_secs(),
        socket: state.paths.socket.display().to_string(),
        config_dir: state.paths.config_dir.display().to_string(),
        stay_alive: state.keep_alive.load(Ordering::SeqCst),
        idle_timeout_secs: (!state.keep_alive.load(Ordering::SeqCst))
            .then_some(state.config.daemon.idle_timeout_secs),
        requests_served: state.requests_served.load(Ordering::Relaxed),
        subscribers: state.events.subscriber_count(),
        http: state.http.get().map(|h| h.addr.to_string()),
        http_error: state.http_error.get().cloned(),
        http_connections: state.http.get().map_or(0, |h| h.slots.count()),
        profiles: state.profiles.list().map_or(0, |(profiles, _)| profiles.len()),
        terminals_running: running,
        terminals_ended: terminals.len() - running,
        terminal_clients: terminals.iter().map(|t| t.clients).sum(),
    })
}

fn handle_daemon_token(state: &State, rotate: bool) -> Reply {
    let token = if rotate { state.rotate_http_token() } else { Ok(state.http_token()) };
    if rotate && token.is_ok() {
        // Every browser session ends with it (signed in under the old one).
        if let Err(e) = state.browser.revoke_all() {
            crate::warn!("browser sessions: ended, but not in the file: {e:#}");
        }
        // What the old token opened ends: WebSockets close, kept-alive
        // connections must show the new one.
        if let Some(http) = state.http.get() {
            http.slots.revoke();
        }
    }
    result(
        token.map(
            |token| json!({"token": token, "path": state.paths.config_dir.join("http_token")}),
        ),
    )
}

/// Ends one browser session (`id`) or all; their WebSockets are woken to
/// find their token gone, and close.
fn handle_browser_sessions_revoke(state: &State, id: Option<&str>) -> Reply {
    let revoked = match id {
        Some(id) => match state.browser.revoke(id) {
            Ok(true) => Ok(1),
            Ok(false) => {
                return Reply::error(
                    ErrorCode::NotFound,
                    format!("no browser session {id} (`ringlet ui --sessions` lists them)"),
                );
            }
            Err(e) => Err(e),
        },
        None => state.browser.revoke_all(),
    };
    // Ended in memory even when the file could not be written: close what
    // they opened either way.
    if let Some(http) = state.http.get() {
        http.slots.revoke();
    }
    match revoked {
        Ok(n) => {
            crate::info!("http: {n} browser session(s) revoked");
            Reply::ok(&json!({"revoked": n}))
        }
        Err(e) => Reply::error(
            ErrorCode::Internal,
            format!(
                "revoked until the daemon restarts, but {} could not be written: {e:#}",
                state.browser.path().display()
            ),
        ),
    }
}

fn handle_ui_ticket(state: &State) -> Reply {
    result((|| {
        let Some(info) = state.http.get() else {
            if let Some(why) = state.http_error.get() {
                anyhow::bail!("the daemon's HTTP API is not listening: {why}");
            }
            anyhow::bail!(
                "the daemon's HTTP API is not listening (the daemon log says why; \
                 often the port is taken: set [daemon] http_port)"
            );
        };
        let ticket = state.tickets.issue()?;
        // A wildcard bind is not an address a browser can open.
        let host = match info.addr.ip() {
            ip if ip.is_unspecified() => format!("127.0.0.1:{}", info.addr.port()),
            _ => info.addr.to_string(),
        };
        Ok(json!({"url": format!("http://{host}/#ticket={ticket}"),
                  "expires_in_secs": super::http::auth::TICKET_TTL.as_secs()}))
    })())
}

fn handle_shutdown(state: &State) -> Reply {
    state.request_shutdown("shutdown requested");
    Reply::ok(&Value::Null)
}

fn handle_agents_list(state: &State) -> Reply {
    let catalog = state.catalog();
    let manifests: Vec<&AgentManifest> = catalog.agents.iter().map(|a| &a.manifest).collect();
    let detections = detect(state, &manifests);
    let agents = catalog
        .agents
        .iter()
        .zip(detections)
        .map(|(loaded, d)| agent_info(loaded, d, false))
        .collect();
    Reply::ok(&AgentList { agents, warnings: catalog.agent_warnings.clone() })
}

fn handle_agents_inspect(state: &State, id: &str) -> Reply {
    let catalog = state.catalog();
    let Some(loaded) = catalog.agent(id) else {
        return not_found("agent", id, catalog.agents.iter().map(|a| a.manifest.id.as_str()));
    };
    let detection = detect(state, &[&loaded.manifest]).pop();
    match detection {
        Some(d) => Reply::ok(&agent_info(loaded, d, true)),
        None => Reply::error(ErrorCode::Internal, "detection returned nothing"),
    }
}

fn handle_providers_list(state: &State) -> Reply {
    let catalog = state.catalog();
    let providers = catalog.providers.iter().map(|p| provider_info(p, false)).collect();
    Reply::ok(&ProviderList { providers, warnings: catalog.provider_warnings.clone() })
}

fn handle_providers_inspect(state: &State, id: &str) -> Reply {
    let catalog: std::sync::Arc<Catalog> = state.catalog();
    match catalog.provider(id) {
        Some(p) => {
            let mut info = provider_info(p, true);
            info.catalog = crate::catalog::ModelCatalog::load(&state.paths).views(
                Some(id),
                &catalog,
                &pricing(state),
            );
            Reply::ok(&info)
        }
        None => not_found("provider", id, catalog.providers.iter().map(|p| p.manifest.id.as_str())),
    }
}

/// The prices the usage reports use (the registry's when synced, then
/// config.toml's overrides), for the catalog's views.
fn pricing(state: &State) -> crate::usage::pricing::Pricing {
    crate::usage::pricing::Pricing::load(&state.paths.config_dir, &state.config.pricing).0
}

fn handle_profiles_templates(state: &State, agent: Option<&str>) -> Reply {
    let catalog = state.catalog();
    if let Some(id) = agent
        && catalog.agent(id).is_none()
    {
        return not_found("agent", id, catalog.agents.iter().map(|a| a.manifest.id.as_str()));
    }
    Reply::ok(&crate::templates::Templates::load(&state.paths).list(agent))
}

fn handle_models(state: &State, provider: Option<&str>) -> Reply {
    let catalog = state.catalog();
    let models = crate::catalog::ModelCatalog::load(&state.paths);
    if let Some(id) = provider
        && catalog.provider(id).is_none()
        && !models.providers.contains_key(id)
    {
        return not_found("provider", id, catalog.providers.iter().map(|p| p.manifest.id.as_str()));
    }
    let views = models.views(provider, &catalog, &pricing(state));
    Reply::ok(&crate::protocol::ModelList { models: views, warnings: models.warnings.clone() })
}

/// Runs detection under the detector lock and emits events for changes.
fn detect(state: &State, agents: &[&AgentManifest]) -> Vec<Detection> {
    let timeout = Duration::from_millis(state.config.detect.probe_timeout_ms);
    let (detections, changes) = {
        let mut detector = state.detector.lock().unwrap_or_else(|p| p.into_inner());
        detector.detect(agents, state.path_var.as_deref(), &state.paths.home, timeout)
    };
    for change in changes {
        match change {
            Change::Detected { id, path, version } => {
                crate::info!("detected agent {id} {version:?} at {path}");
                state.events.emit(
                    EventKind::AgentDetected,
                    json!({"id": id, "path": path, "version": version}),
                );
            }
            Change::Updated { id, path, previous_version, version } => {
                crate::info!("agent {id} changed: {previous_version:?} -> {version:?} at {path}");
                state.events.emit(
                    EventKind::AgentUpdated,
                    json!({"id": id, "path": path, "previous_version": previous_version, "version": version}),
                );
            }
        }
    }
    detections
}

fn agent_info(loaded: &Loaded<AgentManifest>, d: Detection, with_manifest: bool) -> AgentInfo {
    let m = &loaded.manifest;
    AgentInfo {
        id: m.id.clone(),
        name: m.name.clone(),
        binary: m.binary.clone(),
        source: loaded.source(),
        installed: d.path.is_some(),
        path: d.path.map(|p| p.display().to_string()),
        version: d.version,
        probe_error: d.probe_error,
        config_files: d.config_files.iter().map(|p| p.display().to_string()).collect(),
        manifest: with_manifest.then(|| serde_json::to_value(m).unwrap_or(Value::Null)),
    }
}

fn provider_info(loaded: &Loaded<ProviderManifest>, with_manifest: bool) -> ProviderInfo {
    let m = &loaded.manifest;
    ProviderInfo {
        id: m.id.clone(),
        name: m.name.clone(),
        kind: m.kind.as_str().into(),
        source: loaded.source(),
        // Manifests are validated on load, so resolution cannot fail here.
        default_endpoint: m.resolve_endpoint(None).ok().flatten(),
        endpoints: m.named_endpoints(),
        auth_env_key: m.auth.env_key.clone().filter(|k| !k.is_empty()),
        auth_required: m.auth.required,
        default_model: m.models.default.clone(),
        models: m.models.available.clone(),
        manifest: with_manifest.then(|| serde_json::to_value(m).unwrap_or(Value::Null)),
        catalog: Vec::new(),
    }
}

fn not_found<'a>(what: &str, id: &str, known: impl Iterator<Item = &'a str>) -> Reply {
    let known: Vec<&str> = known.collect();
    Reply::error(ErrorCode::NotFound, format!("no {what} `{id}` (known: {})", known.join(", ")))
}

// ---------------------------------------------------------------------------
// Proxy: the profile side (routing, keys); the supervisor runs the proxies.

/// Serves a read-only request that needs the profile services.
fn with_services<T: serde::Serialize>(
    state: &State,
    op: impl FnOnce(&Services<'_>) -> anyhow::Result<T>,
) -> Reply {
    let catalog = state.catalog();
    result(op(&state.services(&catalog)))
}

/// Serves a change to a profile's routing: on success subscribers hear
/// `ProfileUpdated` and a running proxy is reloaded with the new routing.
fn routing_change<T: serde::Serialize>(
    state: &State,
    alias: &str,
    change: &str,
    op: impl FnOnce(&Services<'_>) -> anyhow::Result<T>,
) -> Reply {
    let catalog = state.catalog();
    let changed = op(&state.services(&catalog));
    if changed.is_ok() {
        crate::info!("profile {alias}: {change}");
        state.events.emit(EventKind::ProfileUpdated, json!({"alias": alias, "change": change}));
        // A running proxy takes the new routing; after `proxy disable` it
        // stops (the agent no longer talks to it).
        match state.profiles.get(alias) {
            Ok(p) if !p.proxy => {
                if let Err(e) = state.proxies.stop(state, alias) {
                    crate::warn!("proxy {alias}: stopping after disable: {e:#}");
                }
            }
            _ => state.proxies.reload(state, alias),
        }
    }
    result(changed)
}

fn handle_providers_key_set(state: &State, provider: &str, key: &str) -> Reply {
    let catalog = state.catalog();
    let set = manage::provider_key_set(&state.services(&catalog), provider, key);
    if let Ok(set) = &set {
        crate::info!("provider {provider}: key stored in the {:?} store", set.store);
        state.proxies.key_changed(state, provider);
    }
    result(set)
}

fn handle_providers_key_remove(state: &State, provider: &str) -> Reply {
    let catalog = state.catalog();
    let removed = manage::provider_key_remove(&state.services(&catalog), provider);
    if removed.is_ok() {
        crate::info!("provider {provider}: key removed");
        state.proxies.key_changed(state, provider);
    }
    result(removed.map(|used_by| json!({"provider": provider, "used_by": used_by})))
}

// ---------------------------------------------------------------------------
// Profiles

/// Turns a handler result into a reply: `NotFound`/`Conflict` errors keep
/// their codes, every other error is the caller's to fix (`bad_request`),
/// with its whole context chain on one line.
fn result<T: serde::Serialize>(r: anyhow::Result<T>) -> Reply {
    match r {
        Ok(data) => Reply::ok(&data),
        Err(e) => {
            let code = if e.downcast_ref::<NotFound>().is_some() {
                ErrorCode::NotFound
            } else if e.downcast_ref::<Conflict>().is_some() {
                ErrorCode::Conflict
            } else {
                ErrorCode::BadRequest
            };
            Reply::error(code, format!("{e:#}"))
        }
    }
}

fn view(state: &State, profile: Profile) -> ProfileView {
    ProfileView {
        api_key: profile.secret.map(|_| render::REDACTED.to_string()),
        key_missing: recover::key_missing(&state.secrets, &profile.alias, profile.secret),
        home_exists: profile.home.is_dir(),
        profile,
    }
}

fn handle_profiles_create(state: &State, req: create::CreateRequest) -> Reply {
    let catalog = state.catalog();
    let created = create::create(&state.services(&catalog), req);
    if let Ok(c) = &created
        && !c.dry_run
    {
        let p = &c.profile;
        crate::info!("profile {} created ({} with {}, {})", p.alias, p.agent, p.provider, p.model);
        state.events.emit(
            EventKind::ProfileCreated,
            json!({"alias": p.alias, "agent": p.agent, "provider": p.provider, "model": p.model}),
        );
    }
    result(created)
}

fn handle_profiles_list(state: &State, agent: Option<&str>) -> Reply {
    result(state.profiles.list().map(|(profiles, broken)| {
        let profiles: Vec<ProfileView> = profiles
            .into_iter()
            .filter(|p| agent.is_none_or(|a| p.agent == a))
            .map(|p| view(state, p))
            .collect();
        let mut warnings: Vec<String> = broken.into_iter().map(|b| b.error).collect();
        warnings.extend(profiles.iter().filter(|v| v.key_missing).map(|v| {
            format!(
                "profile `{}`: its API key is missing; delete the profile and create it again",
                v.profile.alias
            )
        }));
        ProfileList { profiles, warnings }
    }))
}

fn handle_profiles_inspect(state: &State, alias: &str) -> Reply {
    result(state.profiles.get(alias).map(|p| view(state, p)))
}

fn handle_profiles_delete(state: &State, alias: &str, purge: bool) -> Reply {
    let catalog = state.catalog();
    let deleted = (|| -> anyhow::Result<Deleted> {
        let lock = state.profiles.lock()?;
        let profile = state.profiles.get(alias)?;
        let mut notices = Vec::new();
        // Crash safety (profiles::recover): the intent, then the profile
        // file goes first (the commit point), then the key, shim and home; a
        // daemon killed after the commit finishes the delete at its start.
        let purge_path =
            if purge { purgeable_home(state, &catalog, &profile, &mut notices) } else { None };
        let intent = recover::Intent {
            alias: alias.to_string(),
            secret: profile.secret,
            home: purge_path.clone(),
            shim: true,
        };
        recover::begin(&state.profiles, &lock, recover::Op::Delete, &intent)?;
        crash_point("delete:intent");
        state.profiles.remove(&lock, alias)?;
        crash_point("delete:profile");
        let secret_removed = match profile.secret {
            Some(kind) => match state.secrets.delete(kind, alias) {
                Ok(()) => true,
                Err(e) => {
                    notices.push(format!("{e:#} (removed at the next daemon start)"));
                    false
                }
            },
            None => false,
        };
        if let Err(e) = crate::proxy::keys::remove_local_token(&state.secrets, alias) {
            notices.push(format!(
                "removing the proxy token: {e:#} (removed at the next daemon start)"
            ));
        }
        crash_point("delete:key");
        let shim_removed = match aliases::uninstall(&state.paths.home, alias) {
            Ok(removed) => removed,
            Err(e) => {
                notices.push(format!("{e:#}"));
                false
            }
        };
        let home_removed = purge_path.and_then(|home| remove_home(&home, &mut notices));
        let home_kept = (home_removed.is_none() && profile.home.exists())
            .then(|| profile.home.display().to_string());
        crash_point("delete:home");
        if secret_removed || profile.secret.is_none() {
            recover::finish(&state.profiles, &lock, recover::Op::Delete, alias);
        }
        recover::forget_missing(alias);
        Ok(Deleted {
            alias: alias.to_string(),
            secret_removed,
            shim_removed,
            home_removed,
            home_kept,
            notices,
        })
    })();
    if let Ok(d) = &deleted {
        // Its proxy goes with it, and frees its port.
        state.proxies.forget(alias);
        crate::info!("profile {alias} deleted (purge: {purge})");
        state.events.emit(
            EventKind::ProfileDeleted,
            json!({"alias": alias, "purged": d.home_removed.is_some()}),
        );
    }
    result(deleted)
}

/// The home `--purge` may remove: only where the agent's manifest says homes
/// live, as the path comes from a file on disk, and a tampered `"home": "/"`
/// must not turn `--purge` into `rm -rf /`.
fn purgeable_home(
    state: &State,
    catalog: &Catalog,
    profile: &Profile,
    notices: &mut Vec<String>,
) -> Option<std::path::PathBuf> {
    let expected = catalog.agent(&profile.agent).map(|a| {
        crate::paths::expand_tilde(
            &a.manifest.profile.source_home.replace("{alias}", &profile.alias),
            &state.paths.home,
        )
    });
    if expected.as_deref() != Some(profile.home.as_path()) {
        notices.push(format!(
            "{} is not where {} keeps profile homes; not removed",
            profile.home.display(),
            profile.agent
        ));
        return None;
    }
    Some(profile.home.clone())
}

/// Removes a purged home; `Some(path)` when it was there.
fn remove_home(home: &std::path::Path, notices: &mut Vec<String>) -> Option<String> {
    match std::fs::remove_dir_all(home) {
        Ok(()) => Some(home.display().to_string()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => {
            notices.push(format!("removing {}: {e}", home.display()));
            None
        }
    }
}

/// Refuses an unsandboxed run of `alias` while a sandboxed session of it
/// runs. The render makes the profile's files Ringlet's, but the sandboxed
/// agent can still write the home: watching it, it can put a hook back into
/// `settings.json` the instant the render's rename lands, and the unsandboxed
/// agent would start on it. Another sandboxed session is fine.
fn refuse_beside_sandboxed(state: &State, alias: &str) -> anyhow::Result<()> {
    match state.terminals.running(alias, true) {
        None => Ok(()),
        Some(id) => Err(anyhow::anyhow!(
            "profile `{alias}` has a sandboxed session running (terminal {id}), which can \
             change the profile's files under an unsandboxed run; end it first \
             (`ringlet terminal kill {id}`) or run this one sandboxed (`--remote`)"
        )),
    }
}

/// The converse of [`refuse_beside_sandboxed`]: a sandboxed session of
/// `alias` is refused while an unsandboxed run of it is open (a local run or
/// a `--no-sandbox` session), whose agent may reload what the sandboxed one
/// writes (Claude Code reloads `settings.json` when it changes). A local run
/// whose end was never reported (its CLI was killed) counts for a day.
fn refuse_beside_unsandboxed(state: &State, alias: &str) -> anyhow::Result<()> {
    let open = match state.terminals.running(alias, false) {
        Some(id) => Some(format!("terminal {id}")),
        // Local run ids are `<alias>-<pid>-<n>` (run::prepare).
        None => state
            .runs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .keys()
            .any(|id| id.rsplitn(3, '-').nth(2) == Some(alias))
            .then(|| "a local `profiles run`".to_string()),
    };
    match open {
        None => Ok(()),
        Some(what) => Err(anyhow::anyhow!(
            "profile `{alias}` has an unsandboxed run open ({what}), which may reload files a \
             sandboxed agent could change; end it first, or use another profile"
        )),
    }
}

fn handle_profiles_run(state: &State, alias: &str, path: Option<&str>, args: &[String]) -> Reply {
    let catalog = state.catalog();
    let plan = refuse_beside_sandboxed(state, alias)
        .and_then(|()| ensure_proxy(state, alias))
        .and_then(|()| run::prepare(&state.services(&catalog), alias, path, args));
    if let Ok(plan) = &plan {
        state
            .runs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(plan.run_id.clone(), Instant::now());
        crate::info!("profile {alias}: run {} started", plan.run_id);
        state.events.emit(
            EventKind::ProfileStarted,
            json!({"alias": alias, "run_id": plan.run_id, "mode": "local"}),
        );
    }
    result(plan)
}

/// A run of a proxy-enabled profile needs its proxy: started (and its port
/// chosen, if it has none) before the run plan is rendered.
fn ensure_proxy(state: &State, alias: &str) -> anyhow::Result<()> {
    if state.profiles.get(alias)?.proxy {
        state.proxies.ensure_running(state, alias)?;
    }
    Ok(())
}

fn handle_proxy_logs(state: &State, alias: &str, lines: Option<usize>, from: Option<u64>) -> Reply {
    result((|| {
        state.profiles.get(alias)?;
        let path = crate::proxy::supervisor::log_path(&state.paths.config_dir, alias);
        let (lines, next) = crate::proxy::supervisor::read_log(&path, lines.unwrap_or(50), from)?;
        Ok(crate::protocol::ProxyLog {
            alias: alias.to_string(),
            path: path.display().to_string(),
            lines,
            next,
        })
    })())
}

fn handle_profiles_run_ended(state: &State, ended: &RunEnded) -> Reply {
    state.runs.lock().unwrap_or_else(|p| p.into_inner()).remove(&ended.run_id);
    let catalog = state.catalog();
    let recorded = run::record_end(&state.services(&catalog), ended);
    crate::info!("profile {}: run {} ended ({:?})", ended.alias, ended.run_id, ended.exit_code);
    state.events.emit(
        EventKind::ProfileStopped,
        json!({"alias": ended.alias, "run_id": ended.run_id, "exit_code": ended.exit_code,
               "signal": ended.signal, "duration_ms": ended.duration_ms}),
    );
    result(recorded.map(|_| Value::Null))
}

fn handle_profiles_env(state: &State, alias: &str) -> Reply {
    let catalog = state.catalog();
    let env = refuse_beside_sandboxed(state, alias)
        .and_then(|()| run::env_only(&state.services(&catalog), alias));
    result(env.map(|(p, env, render_ms)| ProfileEnv { alias: p.alias, env, render_ms }))
}

fn handle_aliases_install(state: &State, alias: &str, path: Option<String>) -> Reply {
    result((|| {
        let exe = std::env::current_exe()?;
        state.profiles.get(alias)?;
        let path_var = path.as_deref().map(std::ffi::OsStr::new);
        let shim = aliases::install(&state.paths.home, &exe, alias, path_var)?;
        state.profiles.update(alias, |p| {
            p.alias_shim = Some(shim.clone());
            Ok(())
        })?;
        Ok(AliasInfo {
            alias: alias.to_string(),
            path: shim.display().to_string(),
            profile_exists: true,
            notices: aliases::path_notice(&state.paths.home, alias, path_var).into_iter().collect(),
        })
    })())
}

fn handle_aliases_uninstall(state: &State, alias: &str) -> Reply {
    result((|| {
        let path = aliases::shim_dir(&state.paths.home).join(alias);
        if !aliases::uninstall(&state.paths.home, alias)? {
            return Err(NotFound(format!("no shim {}", path.display())).into());
        }
        let exists = state.profiles.load(alias)?.is_some();
        if exists {
            state.profiles.update(alias, |p| {
                p.alias_shim = None;
                Ok(())
            })?;
        }
        Ok(AliasInfo {
            alias: alias.to_string(),
            path: path.display().to_string(),
            profile_exists: exists,
            notices: Vec::new(),
        })
    })())
}

fn handle_aliases_list(state: &State) -> Reply {
    let list: Vec<AliasInfo> = aliases::list(&state.paths.home)
        .into_iter()
        .map(|(alias, path)| AliasInfo {
            profile_exists: state.profiles.load(&alias).ok().flatten().is_some(),
            alias,
            path: path.display().to_string(),
            notices: Vec::new(),
        })
        .collect();
    Reply::ok(&list)
}

/// Changes a profile's hooks under the store lock and tells subscribers.
fn update_hooks<T: serde::Serialize>(
    state: &State,
    alias: &str,
    what: &str,
    change: impl FnOnce(&mut serde_json::Map<String, Value>) -> anyhow::Result<T>,
) -> Reply {
    let catalog = state.catalog();
    let updated = state.profiles.update(alias, |p| {
        let supports = catalog.agent(&p.agent).is_some_and(|a| a.manifest.supports_hooks);
        if !supports {
            anyhow::bail!("profile `{alias}` runs {}, which has no hooks", p.agent);
        }
        change(&mut p.hooks)
    });
    if updated.is_ok() {
        state.events.emit(EventKind::ProfileUpdated, json!({"alias": alias, "change": what}));
    }
    result(updated.map(|(_, out)| out))
}

fn handle_env_setup(state: &State, alias: &str, task: &str, path: Option<&str>) -> Reply {
    let catalog = state.catalog();
    result((|| {
        let profile = state.profiles.get(alias)?;
        let services = state.services(&catalog);
        let (agent, _) = services.manifests(&profile)?;
        let Some(setup) = agent.setup_tasks.get(task) else {
            let known: Vec<&str> = agent.setup_tasks.keys().map(String::as_str).collect();
            return Err(NotFound(format!(
                "{} has no setup task `{task}` (known: {})",
                agent.name,
                if known.is_empty() { "none".into() } else { known.join(", ") }
            ))
            .into());
        };
        let mut plan = run::prepare(&services, alias, path, &[])?;
        plan.program = "/bin/sh".into();
        plan.args = vec!["-c".into(), setup.command.clone()];
        Ok(plan)
    })())
}

fn handle_stats(state: &State) -> Reply {
    result(state.profiles.list().map(|(profiles, _)| {
        let totals = run::session_totals(&state.paths.config_dir);
        // The total from milliseconds, as the usage reports sum them: whole
        // seconds per profile, summed, would come out short of `usage`.
        let total_run_ms: u64 =
            profiles.iter().filter_map(|p| totals.get(&p.alias)).map(|&(_, ms)| ms).sum();
        let profiles: Vec<ProfileStats> = profiles
            .into_iter()
            .map(|p| {
                let (runs, ms) = totals.get(&p.alias).copied().unwrap_or((p.runs, 0));
                ProfileStats {
                    alias: p.alias,
                    agent: p.agent,
                    provider: p.provider,
                    model: p.model,
                    runs,
                    run_secs: ms / 1000,
                    last_used: p.last_used,
                }
            })
            .collect();
        Stats {
            total_runs: profiles.iter().map(|p| p.runs).sum(),
            total_run_secs: total_run_ms / 1000,
            profiles,
        }
    }))
}

fn handle_usage(state: &State, query: &UsageQuery) -> Reply {
    let runs = run::read_runs(&state.paths.config_dir);
    result(state.usage.report(&usage::roots(state), query, &runs).and_then(|(report, outcome)| {
        usage::announce(state, &outcome);
        unknown_profile(state, query, &report)?;
        Ok(report)
    }))
}

/// `usage --profile nope`: "no profile `nope`" rather than "no usage",
/// when no profile has that name and nothing was ever counted under it (a
/// deleted profile's history, or `(default)` for imports, still reports).
fn unknown_profile(
    state: &State,
    query: &UsageQuery,
    report: &crate::protocol::UsageReport,
) -> anyhow::Result<()> {
    let Some(alias) = query.profile.as_deref() else { return Ok(()) };
    let counted = report.totals.messages > 0 || report.totals.runs > 0;
    if counted || alias == "(default)" {
        return Ok(());
    }
    if crate::profiles::check_alias(alias).is_ok() && state.profiles.load(alias)?.is_some() {
        return Ok(());
    }
    // Cheap, and only when nothing matched: had it ever any usage at all?
    let all_time = UsageQuery {
        profile: Some(alias.to_string()),
        report: crate::protocol::ReportKind::Summary,
        ..UsageQuery::default()
    };
    let (ever, _) = state.usage.report(
        &usage::roots(state),
        &all_time,
        &run::read_runs(&state.paths.config_dir),
    )?;
    if ever.totals.messages > 0 || ever.totals.runs > 0 {
        return Ok(());
    }
    // The store's own "no profile" error, with its suggestion.
    state.profiles.get(alias).map(|_| ())
}

fn handle_usage_import_claude(state: &State, dir: Option<&str>, profile: Option<&str>) -> Reply {
    result((|| {
        let profile = match profile {
            None => DEFAULT_PROFILE.to_string(),
            Some(p) if p == DEFAULT_PROFILE => p.to_string(),
            Some(p) => state.profiles.get(p)?.alias,
        };
        let dir = match dir {
            Some(d) if std::path::Path::new(d).is_absolute() => d.into(),
            Some(d) => anyhow::bail!("--claude-dir must be an absolute path, got '{d}'"),
            None => std::env::var("CLAUDE_CONFIG_DIR")
                .ok()
                .filter(|v| !v.is_empty())
                .map_or_else(|| state.paths.home.join(".claude"), Into::into),
        };
        let (report, outcome) = state.usage.import_claude(&dir, &profile)?;
        usage::announce(state, &outcome);
        state.events.emit(EventKind::UsageImported, json!(report));
        Ok(report)
    })())
}

/// PATH for a session whose creator sent none (a browser) when the daemon
/// has none either.
const DEFAULT_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

fn handle_terminal_signal(state: &State, id: &str, signal: &str) -> Reply {
    let Some(number) = crate::terminal::pty::signal_by_name(signal) else {
        return Reply::error(
            ErrorCode::BadRequest,
            format!(
                "signal `{signal}`: give one of INT, TERM, KILL, HUP, QUIT, WINCH, CONT, STOP \
                 (a name, SIG-prefixed or not, or its number)"
            ),
        );
    };
    let sent = state.terminals.send(id, crate::terminal::session::Ctl::Signal(number));
    result(sent.map(|()| json!({ "id": id, "signal": number })))
}

fn handle_terminal_create(state: &State, req: crate::protocol::TerminalRequest) -> Reply {
    use crate::terminal::{helper, pty, sandbox, session};
    result((|| {
        if req.cols == 0 || req.rows == 0 || req.cols > 1000 || req.rows > 1000 {
            anyhow::bail!("cols and rows must be between 1 and 1000");
        }
        let catalog = state.catalog();
        let services = state.services(&catalog);
        // The creator's PATH (the CLI's); else the daemon's, where detection
        // found the agents a browser is shown; else the system's.
        let path = req.path.clone().unwrap_or_else(|| match &state.path_var {
            Some(p) => p.to_string_lossy().into_owned(),
            None => DEFAULT_PATH.into(),
        });
        if req.sandbox {
            refuse_beside_unsandboxed(state, &req.profile)?;
        } else {
            refuse_beside_sandboxed(state, &req.profile)?;
        }
        ensure_proxy(state, &req.profile)?;
        let plan = run::prepare(&services, &req.profile, Some(&path), &req.args)?;
        let profile = state.profiles.get(&req.profile)?;
        let cwd = match &req.working_dir {
            Some(d) if std::path::Path::new(d).is_absolute() => std::path::PathBuf::from(d),
            Some(d) => anyhow::bail!("working_dir must be an absolute path, got '{d}'"),
            // The sandbox hides the home: start where the agent can see.
            None if req.sandbox => profile.home.clone(),
            None => state.paths.home.clone(),
        };
        if !cwd.is_dir() {
            anyhow::bail!("working_dir {} is not a directory", cwd.display());
        }
        // From scratch, like a local run: the creator's passthrough values,
        // then the profile's own; never the daemon's environment.
        let mut ours: Vec<(std::ffi::OsString, std::ffi::OsString)> = vec![
            ("PATH".into(), path.clone().into()),
            ("HOME".into(), state.paths.home.clone().into()),
            ("TERM".into(), "xterm-256color".into()),
            ("LANG".into(), "C.UTF-8".into()),
        ];
        ours.extend(req.env.iter().map(|(k, v)| (k.into(), v.into())));
        let mut env: Vec<(String, String)> = plan
            .environment(ours.into_iter())
            .into_iter()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .collect();
        let agent = std::path::PathBuf::from(&plan.program);
        // Every session runs its agent through the session helper (Ringlet
        // itself, terminal/helper.rs): in the sandbox, or as the child.
        let (program, args, sandboxed, helper_at) = if req.sandbox {
            let extra_flags = match &req.bwrap_flags {
                Some(f) => sandbox::split_words(f)?,
                None => Vec::new(),
            };
            // What no sandboxed session may see, and the desktop's
            // sockets and variables the profile did not opt in to.
            let allow = state.config.sandbox.allow.get(&req.profile).cloned().unwrap_or_default();
            let mut private = sandbox::Private::find(&state.paths, &env, &allow);
            private.filter_env(&mut env);
            // Other profiles' homes too (a working dir such as
            // `~/.claude-profiles` holds them all): their transcripts and
            // state, and files there that their agents run with their keys.
            let (profiles, _) = state.profiles.list()?;
            for other in
                profiles.iter().filter(|p| p.alias != req.profile && p.home != profile.home)
            {
                private.dirs.push((other.home.clone(), "another profile's home"));
            }
            let spec = sandbox::Spec {
                program: &agent,
                args: &plan.args,
                home: &state.paths.home,
                profile_home: &profile.home,
                work_dir: &cwd,
                home_ro: &state.config.sandbox.home_ro,
                extra_ro: &sandbox::install_dirs(&agent, Some(std::ffi::OsStr::new(&path))),
                extra_flags: &extra_flags,
                private: &private,
                helper: Some(&helper::own_binary()?),
            };
            let (argv, name) = sandbox::wrap(&spec, std::ffi::OsStr::new(&path))?;
            let (first, rest) =
                argv.split_first().ok_or_else(|| anyhow::anyhow!("empty sandbox command"))?;
            // bwrap forks the helper below itself; sandbox-exec execs it.
            let at = if name == "bwrap" { pty::Helper::Below } else { pty::Helper::Leader };
            (std::path::PathBuf::from(first), rest.to_vec(), name, at)
        } else {
            let mut args = vec![helper::SUBCOMMAND.to_string(), "--".to_string()];
            args.push(agent.to_string_lossy().into_owned());
            args.extend(plan.args.iter().cloned());
            (helper::exec_path()?, args, "none", pty::Helper::Leader)
        };
        let (cols, rows, spawn_cwd) = (req.cols, req.rows, cwd.clone());
        let spawn = Box::new(move || {
            pty::Pty::spawn(&pty::Spec {
                program: &program,
                helper: helper_at,
                args: &args,
                env: &env,
                cwd: &spawn_cwd,
                cols,
                rows,
            })
        });
        // A script may put the key in the arguments (`${API_KEY}`); the
        // session's description, which HTTP shows, never carries it.
        let key = services.agent_key(&profile)?.unwrap_or_default();
        let mut command = vec![plan.program.clone()];
        command.extend(plan.args.iter().map(|a| match super::http::holds_key(a, &key) {
            true => crate::profiles::render::REDACTED.to_string(),
            false => a.clone(),
        }));
        let info = session::Info {
            id: state.terminals.next_id(),
            profile: req.profile.clone(),
            command,
            working_dir: cwd.display().to_string(),
            pid: 0,
            cols: req.cols,
            rows: req.rows,
            state: "running".into(),
            exit_code: None,
            sandbox: sandboxed.into(),
            created_at: crate::time::now_rfc3339(),
            ended_at: None,
            clients: 0,
            agent_state: None,
        };
        // The end is announced from the session thread and recorded (like
        // a local run's: ProfileStopped, sessions.jsonl) by the main thread.
        let (events, ctl, started) = (state.events.clone(), state.ctl.clone(), Instant::now());
        let (alias, run_id, started_at) =
            (req.profile.clone(), plan.run_id.clone(), plan.started_at.clone());
        let on_end = Box::new(move |info: &session::Info, exit: pty::Exit| {
            events.emit(EventKind::TerminalSessionEnded, json!(info));
            let (exit_code, signal) = match exit {
                pty::Exit::Code(code) => (Some(code), None),
                pty::Exit::Signal(signal) => (None, Some(signal)),
            };
            let _ = ctl.send(super::Ctl::RunEnded(RunEnded {
                alias: alias.clone(),
                run_id: run_id.clone(),
                started_at: started_at.clone(),
                duration_ms: started.elapsed().as_millis() as u64,
                exit_code,
                signal,
            }));
        });
        let events = state.events.clone();
        let on_state = Box::new(move |info: &session::Info| {
            events.emit(
                EventKind::TerminalStateChanged,
                json!({"id": info.id, "profile": info.profile, "agent_state": info.agent_state}),
            );
        });
        let handle = session::start(
            spawn,
            info,
            state.config.terminal.scrollback_bytes as usize,
            on_end,
            on_state,
        )?;
        let info = state.terminals.insert(handle);
        if !req.sandbox {
            crate::warn!("terminal {}: started without the sandbox (--no-sandbox)", info.id);
        }
        crate::info!(
            "profile {}: run {} started in terminal {}",
            req.profile,
            plan.run_id,
            info.id
        );
        state.events.emit(
            EventKind::ProfileStarted,
            json!({"alias": req.profile, "run_id": plan.run_id, "mode": "remote",
                   "terminal": info.id}),
        );
        state.events.emit(EventKind::TerminalSessionCreated, json!(info));
        Ok(info)
    })())
}

//! `handle(&State, Request) -> Reply`: the only place requests are served.
//! The IPC server calls it now and the HTTP API will call it too, so no
//! handler logic is ever written twice. Handlers are `handle_<request>`.

use std::time::Duration;

use serde_json::{Value, json};

use super::State;
use super::events::EventKind;
use crate::detect::{Change, Detection};
use crate::manifests::{AgentManifest, Catalog, Loaded, ProviderManifest};
use crate::protocol::{
    AgentInfo, AgentList, DaemonStatus, ErrorCode, PROTOCOL_VERSION, ProviderInfo, ProviderList,
    Reply, Request,
};

/// Serves one request.
pub fn handle(state: &State, request: Request) -> Reply {
    match request {
        Request::Status => handle_status(state),
        Request::Shutdown => handle_shutdown(state),
        Request::AgentsList => handle_agents_list(state),
        Request::AgentsInspect { id } => handle_agents_inspect(state, &id),
        Request::ProvidersList => handle_providers_list(state),
        Request::ProvidersInspect { id } => handle_providers_inspect(state, &id),
        #[cfg(debug_assertions)]
        Request::DebugPanic => panic!("debug_panic requested"),
        Request::Subscribe { .. } => Reply::error(
            ErrorCode::BadRequest,
            "subscribe streams events and is served by the connection, not the dispatcher",
        ),
    }
}

fn handle_status(state: &State) -> Reply {
    Reply::ok(&DaemonStatus {
        version: env!("CARGO_PKG_VERSION").into(),
        protocol: PROTOCOL_VERSION,
        pid: std::process::id(),
        uptime_secs: state.started.elapsed().as_secs(),
        socket: state.paths.socket.display().to_string(),
        config_dir: state.paths.config_dir.display().to_string(),
        stay_alive: state.options.stay_alive,
        idle_timeout_secs: (!state.options.stay_alive)
            .then_some(state.config.daemon.idle_timeout_secs),
        requests_served: state.requests_served.load(std::sync::atomic::Ordering::Relaxed),
        subscribers: state.events.subscriber_count(),
    })
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
        Some(p) => Reply::ok(&provider_info(p, true)),
        None => not_found("provider", id, catalog.providers.iter().map(|p| p.manifest.id.as_str())),
    }
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
    }
}

fn not_found<'a>(what: &str, id: &str, known: impl Iterator<Item = &'a str>) -> Reply {
    let known: Vec<&str> = known.collect();
    Reply::error(ErrorCode::NotFound, format!("no {what} `{id}` (known: {})", known.join(", ")))
}

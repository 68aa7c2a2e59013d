//! `ringlet init`: the first-run wizard. It starts the daemon, shows which
//! agents are installed, and creates a first profile: asking for agent,
//! provider and name on a terminal, or with `-y` taking the defaults (the
//! first installed agent; `[defaults] provider` from config.toml, else the
//! first compatible provider whose key variable is set, else the first
//! compatible one).

use anyhow::{Result, bail};

use super::{Ctx, Invocation, profiles, prompt};
use crate::client;
use crate::protocol::{AgentList, CreateRequest, ProviderList, Request};

pub fn run(ctx: &Ctx, inv: &Invocation) -> Result<()> {
    let paths = ctx.paths()?;
    let yes = inv.flag("yes");
    if inv.flag("skip-daemon") {
        println!("daemon: skipped");
    } else {
        let status = client::request(&paths, &Request::Status)?;
        println!("daemon: running (pid {}, {})", status["pid"], paths.socket.display());
    }
    let agents: AgentList = serde_json::from_value(client::request(&paths, &Request::AgentsList)?)?;
    let installed: Vec<_> = agents.agents.iter().filter(|a| a.installed).collect();
    for a in &agents.agents {
        let state =
            if a.installed { a.version.as_deref().unwrap_or("installed") } else { "not installed" };
        println!("agent {:<10} {state}", a.id);
    }
    if inv.flag("no-profile") {
        return Ok(());
    }
    let Some(first) = installed.first() else {
        bail!(
            "no agent is installed; install one (e.g. `npm install -g @anthropic-ai/claude-code`) and run `ringlet init` again"
        );
    };
    let agent_id = if yes { first.id.clone() } else { prompt::ask("Agent", &first.id)? };
    let Some(agent) = agents.agents.iter().find(|a| a.id == agent_id) else {
        bail!("unknown agent `{agent_id}`");
    };
    let types: Vec<String> = agent
        .manifest
        .as_ref()
        .and_then(|m| m["profile"]["provider_types"].as_array().cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|t| t.as_str().map(String::from))
        .collect();
    let types = if types.is_empty() {
        let info = client::request(&paths, &Request::AgentsInspect { id: agent_id.clone() })?;
        info["manifest"]["profile"]["provider_types"]
            .as_array()
            .map(|a| a.iter().filter_map(|t| t.as_str().map(String::from)).collect())
            .unwrap_or_default()
    } else {
        types
    };
    let providers: ProviderList =
        serde_json::from_value(client::request(&paths, &Request::ProvidersList)?)?;
    let compatible: Vec<_> =
        providers.providers.iter().filter(|p| types.contains(&p.kind)).collect();
    let with_key = compatible.iter().find(|p| {
        p.auth_env_key.as_ref().is_some_and(|k| std::env::var(k).is_ok_and(|v| !v.is_empty()))
    });
    let Some(default_provider) = with_key.or(compatible.first()) else {
        bail!("no provider works with {agent_id}");
    };
    let provider = if yes {
        default_provider.id.clone()
    } else {
        let names: Vec<&str> = compatible.iter().map(|p| p.id.as_str()).collect();
        println!("providers for {agent_id}: {}", names.join(", "));
        prompt::ask("Provider", &default_provider.id)?
    };
    let default_alias = format!("{agent_id}-{provider}");
    let alias = if yes { default_alias } else { prompt::ask("Profile name", &default_alias)? };
    let request = CreateRequest {
        agent: agent_id,
        alias,
        provider,
        alias_shim: true,
        path: std::env::var("PATH").ok(),
        ..CreateRequest::default()
    };
    profiles::create_with(ctx, request, false)
}

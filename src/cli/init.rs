//! `ringlet init`: the first-run wizard. It starts the daemon, shows which
//! agents are installed, and creates a first profile.
//!
//! On a terminal it asks for the agent, the provider (or a custom one: its
//! URL and API type, written to `providers.d/<id>.toml`), the endpoint, the
//! model and the profile name. Every question lists its choices and takes
//! the default on an empty line; a typo is answered with why and the
//! question again, never an exit. With `-y` it takes the defaults (the first
//! installed agent; `[defaults] provider` from config.toml when it suits the
//! agent, else the first compatible provider whose key variable is set, else
//! the first compatible one). Running it again is safe: with `-y` an
//! existing profile of the default name is kept, and on a terminal the
//! suggested name is a free one.

use anyhow::{Result, bail};

use super::{Ctx, Invocation, profiles, prompt};
use crate::client;
use crate::paths::Paths;
use crate::protocol::{AgentList, CreateRequest, ProfileList, ProviderInfo, ProviderList, Request};

/// The provider choice that makes a new one.
const CUSTOM: &str = "custom";

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
    for a in &agents.agents {
        let state =
            if a.installed { a.version.as_deref().unwrap_or("installed") } else { "not installed" };
        println!("agent {:<10} {state}", a.id);
    }
    if inv.flag("no-profile") {
        return Ok(());
    }
    let installed: Vec<String> =
        agents.agents.iter().filter(|a| a.installed).map(|a| a.id.clone()).collect();
    let Some(first) = installed.first() else {
        bail!(
            "no agent is installed; install one (e.g. `npm install -g @anthropic-ai/claude-code`) and run `ringlet init` again"
        );
    };
    if !yes && !has_terminal() {
        bail!(
            "there is no terminal to ask on; run `ringlet init -y` to take the defaults \
             (with --api-key-stdin to give the key)"
        );
    }
    let agent_id = if yes { first.clone() } else { prompt::choose("Agent", &installed, first)? };
    let types = provider_types(&paths, &agent_id)?;
    let providers: ProviderList =
        serde_json::from_value(client::request(&paths, &Request::ProvidersList)?)?;
    let compatible: Vec<&ProviderInfo> =
        providers.providers.iter().filter(|p| types.contains(&p.kind)).collect();
    let configured = crate::config::Config::load(&paths.config_file())
        .ok()
        .and_then(|c| c.defaults.provider)
        .filter(|id| compatible.iter().any(|p| &p.id == id));
    let with_key = compatible.iter().find(|p| {
        p.auth_env_key.as_ref().is_some_and(|k| std::env::var(k).is_ok_and(|v| !v.is_empty()))
    });
    let default_provider = match (configured, with_key.or(compatible.first())) {
        (Some(id), _) => id,
        (None, Some(p)) => p.id.clone(),
        (None, None) if yes => bail!("no provider works with {agent_id}"),
        (None, None) => CUSTOM.to_string(),
    };
    let existing = profile_names(&paths)?;

    if yes {
        let alias = format!("{agent_id}-{default_provider}");
        if existing.contains(&alias) {
            println!(
                "profile {alias} exists already: kept (run it with `ringlet profiles run {alias}`)"
            );
            return Ok(());
        }
        let request = CreateRequest {
            agent: agent_id,
            alias,
            provider: default_provider,
            alias_shim: true,
            path: std::env::var("PATH").ok(),
            ..CreateRequest::default()
        };
        return profiles::create_with(ctx, request, inv.flag("api-key-stdin"));
    }

    let mut choices: Vec<String> = compatible.iter().map(|p| p.id.clone()).collect();
    let custom_types: Vec<String> =
        types.iter().filter(|t| t.ends_with("-compatible")).cloned().collect();
    if !custom_types.is_empty() {
        choices.push(CUSTOM.into());
    }
    if choices.is_empty() {
        bail!("no provider works with {agent_id}");
    }
    let picked = prompt::choose("Provider", &choices, &default_provider)?;
    let (provider, endpoint, model) = if picked == CUSTOM {
        let ids: Vec<String> = providers.providers.iter().map(|p| p.id.clone()).collect();
        let (id, model) = custom_provider(&paths, &ids, &custom_types)?;
        (id, None, Some(model))
    } else {
        let info = compatible.iter().find(|p| p.id == picked).expect("picked from the list");
        (picked.clone(), ask_endpoint(info)?, ask_model(info)?)
    };
    let alias = ask_alias(&existing, &format!("{agent_id}-{provider}"))?;
    let request = CreateRequest {
        agent: agent_id,
        alias,
        provider,
        endpoint,
        model,
        alias_shim: true,
        path: std::env::var("PATH").ok(),
        ..CreateRequest::default()
    };
    profiles::create_with(ctx, request, inv.flag("api-key-stdin"))
}

/// Whether questions can be asked: a controlling terminal to open.
fn has_terminal() -> bool {
    std::fs::OpenOptions::new().read(true).write(true).open("/dev/tty").is_ok()
}

/// The provider types `agent_id` speaks.
fn provider_types(paths: &Paths, agent_id: &str) -> Result<Vec<String>> {
    let info = client::request(paths, &Request::AgentsInspect { id: agent_id.into() })?;
    Ok(info["manifest"]["profile"]["provider_types"]
        .as_array()
        .map(|a| a.iter().filter_map(|t| t.as_str().map(String::from)).collect())
        .unwrap_or_default())
}

fn profile_names(paths: &Paths) -> Result<Vec<String>> {
    let list: ProfileList =
        serde_json::from_value(client::request(paths, &Request::ProfilesList { agent: None })?)?;
    Ok(list.profiles.into_iter().map(|v| v.profile.alias).collect())
}

/// The first of `base`, `base-2`, `base-3`... that is not in `taken`.
fn free_name(taken: &[String], base: &str) -> String {
    let mut name = base.to_string();
    let mut n = 2;
    while taken.contains(&name) {
        name = format!("{base}-{n}");
        n += 1;
    }
    name
}

/// The profile name: valid, and not one that exists (the suggestion is a
/// free one, so re-running `init` never collides).
fn ask_alias(existing: &[String], base: &str) -> Result<String> {
    let default = free_name(existing, base);
    let question = if existing.is_empty() {
        "Profile name (lowercase letters, digits, - and _)".to_string()
    } else {
        format!("Profile name (lowercase letters, digits, - and _; taken: {})", existing.join(", "))
    };
    prompt::ask_until(&question, &default, |answer| {
        crate::profiles::check_alias(answer).map_err(|e| format!("{e:#}"))?;
        if existing.iter().any(|e| e == answer) {
            return Err(format!("profile `{answer}` exists already"));
        }
        Ok(answer.to_string())
    })
}

/// The endpoint: one of the provider's named ones or an http(s) URL; `None`
/// for the provider's default (or for the agent's own login).
fn ask_endpoint(info: &ProviderInfo) -> Result<Option<String>> {
    if info.kind == "self" {
        return Ok(None);
    }
    let names: Vec<String> = info.endpoints.iter().map(|e| e.name.clone()).collect();
    let default = info.default_endpoint.as_ref().map(|e| e.name.clone()).unwrap_or_default();
    let listed: Vec<String> =
        info.endpoints.iter().map(|e| format!("{} = {}", e.name, e.url)).collect();
    let question = if listed.is_empty() {
        "Endpoint (an http(s) URL)".to_string()
    } else {
        format!("Endpoint ({}; or an http(s) URL)", listed.join(", "))
    };
    let answer = prompt::ask_until(&question, &default, |answer| {
        if names.iter().any(|n| n == answer) || is_url(answer) {
            Ok(answer.to_string())
        } else if answer.is_empty() {
            Err("an endpoint is needed".into())
        } else {
            let hint = prompt::pick(&names, answer).err().unwrap_or_default();
            Err(format!("not an endpoint name or an http(s) URL: {hint}"))
        }
    })?;
    Ok((answer != default).then_some(answer))
}

/// The model: any name (catalogs lag behind providers), the provider's
/// list shown; `None` for its default.
fn ask_model(info: &ProviderInfo) -> Result<Option<String>> {
    if info.kind == "self" && info.default_model.is_none() {
        return Ok(None);
    }
    let default = info.default_model.clone().unwrap_or_default();
    let question = if info.models.is_empty() {
        "Model".to_string()
    } else {
        format!("Model (known: {})", info.models.join(", "))
    };
    let answer = prompt::ask_until(&question, &default, check_model)?;
    Ok((answer != default).then_some(answer))
}

fn check_model(answer: &str) -> Result<String, String> {
    if answer.is_empty() {
        Err("a model name is needed".into())
    } else if answer.chars().any(|c| c.is_control() || c.is_whitespace()) {
        Err("a model name has no spaces or control characters".into())
    } else {
        Ok(answer.to_string())
    }
}

fn is_url(s: &str) -> bool {
    let rest = s.strip_prefix("https://").or_else(|| s.strip_prefix("http://"));
    rest.is_some_and(|r| {
        !r.is_empty() && !r.starts_with('/') && !r.contains(|c: char| c.is_whitespace() || c == '"')
    })
}

/// Asks for a new provider (id, URL, API type, model) and writes
/// `providers.d/<id>.toml`, which the daemon loads at the next request.
/// Returns its id and model.
fn custom_provider(paths: &Paths, taken: &[String], types: &[String]) -> Result<(String, String)> {
    let id = prompt::ask_until(
        "Name of the new provider (lowercase letters, digits, - and _)",
        &free_name(taken, "custom"),
        |answer| {
            crate::profiles::check_alias(answer)
                .map_err(|e| format!("{e:#}").replace("profile name", "provider name"))?;
            if taken.iter().any(|t| t == answer) {
                return Err(format!("provider `{answer}` exists already"));
            }
            Ok(answer.to_string())
        },
    )?;
    let url = prompt::ask_until("Its base URL (http:// or https://)", "", |answer| {
        if is_url(answer) { Ok(answer.to_string()) } else { Err("not an http(s) URL".into()) }
    })?;
    let kind = prompt::choose("Its API type", types, &types[0])?;
    let model = prompt::ask_until("Its model", "", check_model)?;
    let text = provider_toml(&id, &url, &kind, &model);
    let file = paths.providers_d().join(format!("{id}.toml"));
    // The same check the daemon's loader makes, so what is written loads.
    crate::manifests::ProviderManifest::parse(&file, &text)?;
    if file.exists() {
        bail!("{} exists already; it is left alone", file.display());
    }
    crate::fsutil::write_atomic(&file, text.as_bytes(), 0o600)?;
    println!("provider {id}: written to {}", file.display());
    Ok((id, model))
}

/// A provider manifest; the values are TOML basic strings (JSON string
/// syntax is a subset of them for these characters).
fn provider_toml(id: &str, url: &str, kind: &str, model: &str) -> String {
    let q = |s: &str| serde_json::to_string(s).unwrap_or_default();
    format!(
        "# Written by `ringlet init`.\nid = {}\nname = {}\ntype = {}\n\n[endpoints]\ndefault = {}\n\n\
         [auth]\nenv_key = {}\nprompt = {}\n\n[models]\navailable = [{}]\ndefault = {}\n",
        q(id),
        q(id),
        q(kind),
        q(url),
        q(&format!("{}_API_KEY", id.to_ascii_uppercase().replace('-', "_"))),
        q(&format!("{id} API key")),
        q(model),
        q(model)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_written_provider_loads() {
        let text = provider_toml("mine", "http://127.0.0.1:9/v1", "openai-compatible", "m\"1");
        let m = crate::manifests::ProviderManifest::parse(std::path::Path::new("mine.toml"), &text)
            .unwrap();
        assert_eq!(m.id, "mine");
        assert_eq!(m.models.default.as_deref(), Some("m\"1"));
        assert_eq!(m.resolve_endpoint(None).unwrap().unwrap().url, "http://127.0.0.1:9/v1");
    }

    #[test]
    fn free_names_skip_taken_ones() {
        let taken = vec!["a".to_string(), "a-2".to_string()];
        assert_eq!(free_name(&taken, "a"), "a-3");
        assert_eq!(free_name(&taken, "b"), "b");
    }
}

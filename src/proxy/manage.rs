//! The profile side of the proxy: enable and disable (choosing the port
//! once), rules, model aliases, budgets, and provider keys. Each operation
//! checks everything before it stores anything (a bad target, condition or
//! name changes nothing) and changes the profile under the store's lock.
//! The dispatcher wraps them with events and the supervisor's reload.

use anyhow::{Context, Result, anyhow, bail};
use serde::{Deserialize, Serialize};

use super::config::{self, AliasRow, ProxyView, RuleRow};
use super::{Budget, Rule, keys};
use crate::manifests::ProviderType;
use crate::profiles::{Conflict, NotFound, Profile, Services};
use crate::secrets::StoreKind;

/// Turns the profile's proxy on; `port` pins one, else the kept port, else
/// a free one chosen now and kept. The local token is created here, so a
/// render right after finds it.
pub fn enable(s: &Services<'_>, alias: &str, port: Option<u16>) -> Result<Profile> {
    let profile = s.store.get(alias)?;
    config::profile_family(s, &profile)?;
    if port == Some(0) {
        bail!("--port 0: give a port from 1 to 65535, or none to have one chosen");
    }
    keys::local_token(s.secrets, alias)?;
    // The check of the other profiles' ports and the write are one step
    // under the store's lock: two enables racing for one port (or two
    // chosen ports that happen to be equal) cannot both win.
    let (profile, ()) = s.store.update(alias, |p| {
        if let Some(port) = port {
            check_port_free_among_profiles(s, alias, port)?;
        }
        let chosen = match port.or(p.routing.port) {
            Some(port) => port,
            None => choose_unused_port(s, alias)?,
        };
        p.proxy = true;
        p.routing.port = Some(chosen);
        Ok(())
    })?;
    Ok(profile)
}

/// A free port no other profile has taken (ports are kept per profile even
/// while its proxy is stopped).
pub fn choose_unused_port(s: &Services<'_>, alias: &str) -> Result<u16> {
    let (profiles, _) = s.store.list()?;
    for _ in 0..16 {
        let port = config::choose_port()?;
        if !profiles.iter().any(|p| p.alias != alias && p.routing.port == Some(port)) {
            return Ok(port);
        }
    }
    bail!("could not find a free port for the proxy");
}

/// Whether another profile keeps `port`; call under the store's lock for
/// the answer to hold until the write.
pub fn check_port_free_among_profiles(s: &Services<'_>, alias: &str, port: u16) -> Result<()> {
    let (profiles, _) = s.store.list()?;
    if let Some(other) = profiles.iter().find(|p| p.alias != alias && p.routing.port == Some(port))
    {
        return Err(Conflict(format!(
            "port {port} is the proxy port of profile `{}`; choose another",
            other.alias
        ))
        .into());
    }
    Ok(())
}

/// Turns the proxy off; the routing (port, rules, aliases, budget) stays.
pub fn disable(s: &Services<'_>, alias: &str) -> Result<Profile> {
    let (profile, ()) = s.store.update(alias, |p| {
        p.proxy = false;
        Ok(())
    })?;
    Ok(profile)
}

/// The most rules, and model aliases, one profile keeps: a router tries
/// them in order on every request, and the profile file stays well under
/// the store's 1 MiB (which `Store::save` enforces in any case).
pub const MAX_RULES: usize = 1000;
pub const MAX_ALIASES: usize = 1000;
/// The longest model name an alias maps, and the longest target text:
/// model ids are tens of bytes; a huge one only bloats the profile.
pub const MAX_MODEL_LEN: usize = 256;
pub const MAX_TARGET_LEN: usize = 512;

fn check_target_len(target: &str) -> Result<()> {
    if target.len() > MAX_TARGET_LEN {
        bail!(
            "the target is {} bytes long; a target is at most {MAX_TARGET_LEN} bytes",
            target.len()
        );
    }
    Ok(())
}

/// Rule names: `[a-z0-9][a-z0-9_-]*`, at most 64 characters.
pub fn check_rule_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if !ok {
        bail!(
            "invalid rule name `{}`: it must match [a-z0-9][a-z0-9_-]* (at most 64 characters)",
            name.escape_debug()
        );
    }
    Ok(())
}

/// Parses a condition; the error names the column (1-based), as
/// `bad condition: column 7: ...` (the CLI shows a caret under it).
pub fn check_condition(text: &str) -> Result<()> {
    super::rules::Condition::parse(text).map(|_| ()).map_err(|e| anyhow!("bad condition: {e}"))
}

/// Adds a rule after checking its name, condition and target.
pub fn route_add(s: &Services<'_>, alias: &str, rule: Rule) -> Result<Vec<RuleRow>> {
    check_rule_name(&rule.name)?;
    check_condition(&rule.condition)?;
    check_target_len(&rule.target)?;
    let (profile, ()) = s.store.update(alias, |p| {
        if p.routing.rules.len() >= MAX_RULES {
            bail!(
                "profile `{alias}` has {} rules; a profile keeps at most {MAX_RULES} \
                 (remove some with `ringlet proxy route remove`)",
                p.routing.rules.len()
            );
        }
        if p.routing.rules.iter().any(|r| r.name == rule.name) {
            return Err(Conflict(format!(
                "profile `{alias}` already has a rule `{}` (remove it first, or use \
                 `proxy route move` to change its priority)",
                rule.name
            ))
            .into());
        }
        config::check_target(s, p, &rule.target)?;
        p.routing.rules.push(rule);
        check_backend(s, p)
    })?;
    Ok(config::rule_rows(&profile.routing.rules))
}

/// Removes a rule by name.
pub fn route_remove(s: &Services<'_>, alias: &str, name: &str) -> Result<Vec<RuleRow>> {
    let (profile, ()) = s.store.update(alias, |p| {
        let before = p.routing.rules.len();
        p.routing.rules.retain(|r| r.name != name);
        if p.routing.rules.len() == before {
            return Err(no_rule(alias, name));
        }
        Ok(())
    })?;
    Ok(config::rule_rows(&profile.routing.rules))
}

/// Gives a rule a new priority (its place among equals: where it was added).
pub fn route_move(
    s: &Services<'_>,
    alias: &str,
    name: &str,
    priority: i64,
) -> Result<Vec<RuleRow>> {
    let (profile, ()) = s.store.update(alias, |p| {
        let rule = p
            .routing
            .rules
            .iter_mut()
            .find(|r| r.name == name)
            .ok_or_else(|| no_rule(alias, name))?;
        rule.priority = priority;
        check_backend(s, p)
    })?;
    Ok(config::rule_rows(&profile.routing.rules))
}

/// With `[proxy] backend = "litellm"`, refuses (inside the update, so
/// nothing is stored) a routing LiteLLM cannot express, naming the rule,
/// rather than when the proxy next starts.
fn check_backend(s: &Services<'_>, p: &Profile) -> Result<()> {
    if s.config.proxy.backend != crate::config::ProxyBackend::Litellm {
        return Ok(());
    }
    super::litellm::check_routing(&p.routing.rules, &p.routing.aliases)
        .context("[proxy] backend = \"litellm\" cannot route this")
}

fn no_rule(alias: &str, name: &str) -> anyhow::Error {
    NotFound(format!(
        "profile `{alias}` has no rule `{name}` (see `ringlet proxy route list {alias}`)"
    ))
    .into()
}

pub fn route_list(s: &Services<'_>, alias: &str) -> Result<Vec<RuleRow>> {
    Ok(config::rule_rows(&s.store.get(alias)?.routing.rules))
}

/// Maps a requested model name to a target (replacing an earlier mapping).
pub fn alias_set(
    s: &Services<'_>,
    alias: &str,
    model: &str,
    target: &str,
) -> Result<Vec<AliasRow>> {
    // The length first: the next error quotes the name.
    if model.len() > MAX_MODEL_LEN {
        bail!(
            "the model name is {} bytes long; an alias maps a model name of at most \
             {MAX_MODEL_LEN} bytes",
            model.len()
        );
    }
    if model.trim().is_empty() || model.chars().any(|c| c.is_control() || c.is_whitespace()) {
        bail!("invalid model name `{}`", model.escape_debug());
    }
    check_target_len(target)?;
    let (profile, ()) = s.store.update(alias, |p| {
        if !p.routing.aliases.contains_key(model) && p.routing.aliases.len() >= MAX_ALIASES {
            bail!(
                "profile `{alias}` has {} model aliases; a profile keeps at most {MAX_ALIASES}",
                p.routing.aliases.len()
            );
        }
        config::check_target(s, p, target)?;
        p.routing.aliases.insert(model.to_string(), target.to_string());
        check_backend(s, p)
    })?;
    Ok(config::alias_rows(&profile.routing.aliases))
}

pub fn alias_remove(s: &Services<'_>, alias: &str, model: &str) -> Result<Vec<AliasRow>> {
    let (profile, ()) = s.store.update(alias, |p| {
        p.routing.aliases.remove(model).ok_or_else(|| {
            anyhow::Error::from(NotFound(format!(
                "profile `{alias}` has no model alias `{model}` (see `ringlet proxy alias list {alias}`)"
            )))
        })?;
        Ok(())
    })?;
    Ok(config::alias_rows(&profile.routing.aliases))
}

pub fn alias_list(s: &Services<'_>, alias: &str) -> Result<Vec<AliasRow>> {
    Ok(config::alias_rows(&s.store.get(alias)?.routing.aliases))
}

/// Sets the budget to exactly `budget` (`None`: no limit for that period).
pub fn budget_set(s: &Services<'_>, alias: &str, budget: Budget) -> Result<Budget> {
    for (what, usd) in [("daily", budget.daily_usd), ("monthly", budget.monthly_usd)] {
        if let Some(usd) = usd
            && !(usd.is_finite() && usd >= 0.0)
        {
            bail!("the {what} budget must be a number of USD, 0 or more (got {usd})");
        }
    }
    let (profile, ()) = s.store.update(alias, |p| {
        p.routing.budget = budget;
        Ok(())
    })?;
    Ok(profile.routing.budget)
}

pub fn budget_show(s: &Services<'_>, alias: &str) -> Result<Budget> {
    Ok(s.store.get(alias)?.routing.budget)
}

pub fn config_view(s: &Services<'_>, alias: &str) -> Result<ProxyView> {
    Ok(config::view(s, &s.store.get(alias)?))
}

/// One provider key as `providers key list` shows it (never the key).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProviderKeyRow {
    pub provider: String,
    /// The secret's name: `provider.<id>`.
    pub name: String,
    pub store: StoreKind,
    /// Profiles whose rules or aliases route to this provider with it.
    pub used_by: Vec<String>,
}

/// What `providers key set` did.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProviderKeySet {
    pub provider: String,
    pub name: String,
    pub store: StoreKind,
    pub used_by: Vec<String>,
    pub notices: Vec<String>,
}

fn known_provider<'c>(
    s: &Services<'c>,
    id: &str,
) -> Result<&'c crate::manifests::ProviderManifest> {
    let Some(p) = s.catalog.provider(id) else {
        let known: Vec<&str> = s.catalog.providers.iter().map(|p| p.manifest.id.as_str()).collect();
        return Err(
            NotFound(format!("unknown provider `{id}` (known: {})", known.join(", "))).into()
        );
    };
    if p.manifest.kind == ProviderType::SelfAuth {
        bail!("provider `{id}` uses the agent's own login and takes no API key");
    }
    Ok(&p.manifest)
}

/// The profiles whose proxy uses the stored key of `provider`.
pub fn users_of(s: &Services<'_>, provider: &str) -> Result<Vec<String>> {
    let (profiles, _) = s.store.list()?;
    Ok(profiles
        .into_iter()
        .filter(|p| config::providers_used(p).iter().any(|u| u == provider))
        .map(|p| p.alias)
        .collect())
}

pub fn provider_key_set(s: &Services<'_>, provider: &str, key: &str) -> Result<ProviderKeySet> {
    let manifest = known_provider(s, provider)?;
    let key = keys::check_key(key)?;
    let stored = keys::set_provider_key(s.secrets, &manifest.id, &key)?;
    let mut notices = Vec::new();
    if let Some(reason) = stored.fallback_reason {
        notices.push(format!(
            "{reason}: the key is stored in {}",
            s.secrets.describe(StoreKind::File)
        ));
    }
    Ok(ProviderKeySet {
        provider: manifest.id.clone(),
        name: crate::secrets::provider_name(&manifest.id),
        store: stored.kind,
        used_by: users_of(s, provider)?,
        notices,
    })
}

pub fn provider_key_remove(s: &Services<'_>, provider: &str) -> Result<Vec<String>> {
    let manifest = known_provider(s, provider)?;
    if !keys::remove_provider_key(s.secrets, &manifest.id)? {
        return Err(NotFound(format!("no key is stored for provider `{provider}`")).into());
    }
    users_of(s, provider)
}

pub fn provider_key_list(s: &Services<'_>) -> Result<Vec<ProviderKeyRow>> {
    let (profiles, _) = s.store.list()?;
    let mut rows = Vec::new();
    for p in &s.catalog.providers {
        let id = &p.manifest.id;
        if p.manifest.kind == ProviderType::SelfAuth {
            continue;
        }
        if let Some(store) = keys::provider_key_store(s.secrets, id)? {
            rows.push(ProviderKeyRow {
                provider: id.clone(),
                name: crate::secrets::provider_name(id),
                store,
                used_by: profiles
                    .iter()
                    .filter(|pr| config::providers_used(pr).iter().any(|u| u == id))
                    .map(|pr| pr.alias.clone())
                    .collect(),
            });
        }
    }
    Ok(rows)
}

/// The error when a profile that cannot be proxied is asked to be.
pub fn refuse_self(provider: &crate::manifests::ProviderManifest) -> Result<()> {
    config::family(provider).map(|_| ()).map_err(|e| anyhow!("--proxy: {e:#}"))
}

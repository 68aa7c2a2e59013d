//! From a profile to its proxy: the API family it speaks, the URL its agent
//! is given, the check every target gets when a rule or alias is added
//! (provider, endpoint, family, key), the [`ServeConfig`] a proxy starts
//! with (every upstream resolved, with its key), and [`ProxyView`], what
//! `proxy config` shows (the same resolution, keys named by where they come
//! from, never printed).

use std::collections::BTreeMap;

use anyhow::{Result, anyhow, bail};
use serde::{Deserialize, Serialize};

use super::rules::Target;
use super::{AuthStyle, Budget, Family, Rule, ServeConfig, Upstream, keys};
use crate::manifests::{ProviderManifest, ProviderType};
use crate::profiles::{Profile, Services};
use crate::secrets::StoreKind;

/// The API family a provider serves; `self` (the agent's own login) has no
/// key to relay with and cannot be proxied.
pub fn family(provider: &ProviderManifest) -> Result<Family> {
    match provider.kind {
        ProviderType::Anthropic | ProviderType::AnthropicCompatible => Ok(Family::Anthropic),
        ProviderType::Openai | ProviderType::OpenaiCompatible => Ok(Family::OpenAi),
        ProviderType::SelfAuth => bail!(
            "provider `{}` uses the agent's own login, which cannot go through the proxy \
             (it relays with API keys); use a provider with an API key",
            provider.id
        ),
    }
}

/// How an upstream wants its key: `x-api-key` for api.anthropic.com,
/// `Authorization: Bearer` for everything else (as `scripts/claude.rhai`
/// chooses for the profile's own key).
pub fn auth_style(provider: &ProviderManifest) -> AuthStyle {
    match provider.kind {
        ProviderType::Anthropic => AuthStyle::XApiKey,
        _ => AuthStyle::Bearer,
    }
}

/// The base URL the agent is given: the proxy's root for the Anthropic
/// family (the agent appends `/v1/messages`), its `/v1` for OpenAI (the
/// agent appends `/responses` or `/chat/completions`).
pub fn proxy_url(family: Family, port: u16) -> String {
    match family {
        Family::Anthropic => format!("http://127.0.0.1:{port}"),
        Family::OpenAi => format!("http://127.0.0.1:{port}/v1"),
    }
}

/// The proxy port of a profile whose agent goes through its proxy: enabled
/// and a port chosen (`proxy enable` always chooses one).
pub fn proxied_port(profile: &Profile) -> Option<u16> {
    if profile.proxy { profile.routing.port } else { None }
}

/// A free loopback port, chosen once for a profile and kept: bind
/// `127.0.0.1:0`, read the port, close.
pub fn choose_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0))
        .map_err(|e| anyhow!("choosing a port for the proxy: {e}"))?;
    Ok(listener.local_addr()?.port())
}

/// Where an upstream's key comes from (shown by `proxy config`; the key
/// itself never is).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "from", rename_all = "snake_case")]
pub enum KeySource {
    /// The profile's own key (the target's provider is the profile's).
    Profile { store: StoreKind },
    /// The provider key stored with `providers key set`.
    Provider { store: StoreKind },
    /// The provider needs no key.
    None,
    /// Needed and not stored: the upstream cannot be used.
    Missing,
}

impl KeySource {
    /// One phrase for people: `the profile's key (keychain)`.
    pub fn describe(&self, provider: &str) -> String {
        let store = |s: &StoreKind| match s {
            StoreKind::Keyring => "keychain",
            StoreKind::File => "file store",
        };
        match self {
            KeySource::Profile { store: s } => format!("the profile's key ({})", store(s)),
            KeySource::Provider { store: s } => {
                format!("provider key provider.{provider} ({})", store(s))
            }
            KeySource::None => "none needed".into(),
            KeySource::Missing => {
                format!("MISSING: store one with `ringlet providers key set {provider}`")
            }
        }
    }
}

/// One upstream resolved against the manifests.
struct Resolved {
    url: String,
    auth: AuthStyle,
    source: KeySource,
    key: Option<String>,
}

/// The profile's family, from its provider's manifest.
pub fn profile_family(s: &Services<'_>, profile: &Profile) -> Result<Family> {
    let (_, provider) = s.manifests(profile)?;
    family(provider)
}

/// Resolves `<provider>[@<endpoint>]` for `profile`: the provider exists,
/// the endpoint is one of its manifest's, it speaks the profile's family;
/// the key is read when `read_key` (else only where it is is looked up).
fn resolve(
    s: &Services<'_>,
    profile: &Profile,
    provider_id: &str,
    endpoint: Option<&str>,
    read_key: bool,
) -> Result<Resolved> {
    let Some(provider) = s.catalog.provider(provider_id) else {
        let known: Vec<&str> = s
            .catalog
            .providers
            .iter()
            .filter(|p| p.manifest.kind != ProviderType::SelfAuth)
            .map(|p| p.manifest.id.as_str())
            .collect();
        bail!("unknown provider `{provider_id}` (known: {})", known.join(", "));
    };
    let provider = &provider.manifest;
    let want = profile_family(s, profile)?;
    let have = family(provider)?;
    // The LiteLLM backend translates between the families.
    if have != want && s.config.proxy.backend != crate::config::ProxyBackend::Litellm {
        bail!(
            "provider `{}` speaks the {} API and profile `{}` speaks {}: the built-in proxy \
             does not translate between them",
            provider.id,
            family_name(have),
            profile.alias,
            family_name(want)
        );
    }
    let own = provider.id == profile.provider;
    let url = match endpoint {
        // The profile's own provider with no endpoint named: the profile's
        // endpoint, which may be a custom URL.
        None if own && profile.endpoint.is_some() => profile.endpoint.clone().unwrap_or_default(),
        None => provider.resolve_endpoint(None)?.map(|e| e.url).unwrap_or_default(),
        Some(name) => provider.resolve_endpoint(Some(name))?.map(|e| e.url).unwrap_or_default(),
    };
    if url.is_empty() {
        bail!("provider `{}` has no endpoint to relay to", provider.id);
    }
    let url = url.trim_end_matches('/').to_string();
    let (source, key) = if own {
        match profile.secret {
            // Read even for a check: a key gone from its store is missing.
            Some(kind) => (KeySource::Profile { store: kind }, s.key(profile)?),
            None if provider.auth.required => (KeySource::Missing, None),
            None => (KeySource::None, None),
        }
    } else {
        let found = if read_key {
            s.secrets.find(&crate::secrets::provider_name(&provider.id))?
        } else {
            keys::provider_key_store(s.secrets, &provider.id)?.map(|k| (k, String::new()))
        };
        match found {
            Some((kind, key)) => (KeySource::Provider { store: kind }, Some(key)),
            None if provider.auth.required => (KeySource::Missing, None),
            None => (KeySource::None, None),
        }
    };
    Ok(Resolved { url, auth: auth_style(provider), source, key })
}

fn family_name(family: Family) -> &'static str {
    match family {
        Family::Anthropic => "Anthropic Messages",
        Family::OpenAi => "OpenAI",
    }
}

/// Checks a target for a rule or an alias of `profile`: its syntax, the
/// provider, the endpoint, the family, and that its key is there.
pub fn check_target(s: &Services<'_>, profile: &Profile, target: &str) -> Result<()> {
    let parts = Target::parse(target)?; // its errors name the target
    let resolved = resolve(s, profile, &parts.provider, parts.endpoint.as_deref(), false)
        .map_err(|e| anyhow!("target `{target}`: {e:#}"))?;
    if resolved.source == KeySource::Missing {
        bail!(
            "target `{target}`: no key for provider `{p}`: store one with \
             `ringlet providers key set {p}` first",
            p = parts.provider
        );
    }
    Ok(())
}

/// The rules in the order they are tried: priority, higher first; equal
/// priorities in the order added.
pub fn rules_in_order(rules: &[Rule]) -> Vec<Rule> {
    let mut rules = rules.to_vec();
    rules.sort_by_key(|r| std::cmp::Reverse(r.priority));
    rules
}

/// What a proxy of `profile` starts with: every upstream a rule, an alias
/// or the default names, resolved, each with its key; the local token.
pub fn serve_config(s: &Services<'_>, profile: &Profile) -> Result<ServeConfig> {
    let (agent, provider) = s.manifests(profile)?;
    let family = family(provider)?;
    let mut upstreams = BTreeMap::new();
    let mut add = |what: &str, key: String, provider: &str, endpoint: Option<&str>| -> Result<()> {
        if upstreams.contains_key(&key) {
            return Ok(());
        }
        let r =
            resolve(s, profile, provider, endpoint, true).map_err(|e| anyhow!("{what}: {e:#}"))?;
        if r.source == KeySource::Missing {
            bail!(
                "{what}: no key for provider `{provider}` (`ringlet providers key set {provider}`)"
            );
        }
        upstreams
            .insert(key, Upstream { url: r.url, auth: r.auth, key: r.key.unwrap_or_default() });
        Ok(())
    };
    add("the profile's provider", profile.provider.clone(), &profile.provider, None)?;
    for rule in &profile.routing.rules {
        let t = Target::parse(&rule.target)?;
        add(
            &format!("rule `{}`", rule.name),
            t.upstream_key(),
            &t.provider,
            t.endpoint.as_deref(),
        )?;
    }
    for (model, target) in &profile.routing.aliases {
        let t = Target::parse(target)?;
        add(&format!("alias `{model}`"), t.upstream_key(), &t.provider, t.endpoint.as_deref())?;
    }
    Ok(ServeConfig {
        alias: profile.alias.clone(),
        agent: agent.id.clone(),
        family,
        local_token: keys::local_token(s.secrets, &profile.alias)?,
        rules: profile.routing.rules.clone(),
        aliases: profile.routing.aliases.clone(),
        budget: profile.routing.budget,
        upstreams,
        default_upstream: profile.provider.clone(),
        config_dir: s.paths.config_dir.clone(),
        log_dir: s.paths.config_dir.join("proxy").join(&profile.alias),
        ca_file: s.config.tls.ca_file.clone(),
    })
}

/// The providers whose stored key (`provider.<id>`) a profile's proxy uses:
/// every target's provider but the profile's own.
pub fn providers_used(profile: &Profile) -> Vec<String> {
    let targets =
        profile.routing.rules.iter().map(|r| &r.target).chain(profile.routing.aliases.values());
    let mut out: Vec<String> = targets
        .filter_map(|t| Target::parse(t).ok())
        .map(|t| t.provider)
        .filter(|p| *p != profile.provider)
        .collect();
    out.sort();
    out.dedup();
    out
}

/// One rule as listed: its place in the try order (1 = first).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RuleRow {
    pub order: usize,
    pub name: String,
    pub condition: String,
    pub target: String,
    pub priority: i64,
}

/// The rules of a profile in the order they are tried.
pub fn rule_rows(rules: &[Rule]) -> Vec<RuleRow> {
    rules_in_order(rules)
        .into_iter()
        .enumerate()
        .map(|(i, r)| RuleRow {
            order: i + 1,
            name: r.name,
            condition: r.condition,
            target: r.target,
            priority: r.priority,
        })
        .collect()
}

/// One model alias.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AliasRow {
    pub model: String,
    pub target: String,
}

pub fn alias_rows(aliases: &BTreeMap<String, String>) -> Vec<AliasRow> {
    aliases.iter().map(|(m, t)| AliasRow { model: m.clone(), target: t.clone() }).collect()
}

/// One upstream as `proxy config` shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UpstreamRow {
    /// `<provider>` or `<provider>@<endpoint>`, as targets name it.
    pub name: String,
    pub url: Option<String>,
    pub auth: Option<AuthStyle>,
    pub key: Option<KeySource>,
    /// What is wrong with it (a manifest gone, a key missing).
    pub problem: Option<String>,
}

/// The effective routing of a profile (`proxy config`): keys redacted.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProxyView {
    pub alias: String,
    pub agent: String,
    pub provider: String,
    pub enabled: bool,
    pub family: Option<Family>,
    pub port: Option<u16>,
    /// What the agent is given as its base URL (when enabled).
    pub proxy_url: Option<String>,
    /// Tried in this order; aliases are checked before any rule.
    pub rules: Vec<RuleRow>,
    pub aliases: Vec<AliasRow>,
    pub budget: Budget,
    /// Serves a request no alias or rule matched, with the model asked for.
    pub default_upstream: String,
    pub upstreams: Vec<UpstreamRow>,
}

/// Builds `proxy config`'s view: never fails on a broken upstream, it says
/// what is wrong with it instead.
pub fn view(s: &Services<'_>, profile: &Profile) -> ProxyView {
    let fam = s.manifests(profile).ok().and_then(|(_, p)| family(p).ok());
    let mut names: Vec<String> = vec![profile.provider.clone()];
    let targets =
        profile.routing.rules.iter().map(|r| &r.target).chain(profile.routing.aliases.values());
    for t in targets {
        if let Ok(parts) = Target::parse(t) {
            let key = parts.upstream_key();
            if !names.contains(&key) {
                names.push(key);
            }
        }
    }
    let upstreams = names
        .into_iter()
        .map(|name| {
            let (provider, endpoint) = match name.split_once('@') {
                Some((p, e)) => (p.to_string(), Some(e.to_string())),
                None => (name.clone(), None),
            };
            match resolve(s, profile, &provider, endpoint.as_deref(), false) {
                Ok(r) => UpstreamRow {
                    problem: (r.source == KeySource::Missing).then(|| r.source.describe(&provider)),
                    name,
                    url: Some(r.url),
                    auth: Some(r.auth),
                    key: Some(r.source),
                },
                Err(e) => UpstreamRow {
                    name,
                    url: None,
                    auth: None,
                    key: None,
                    problem: Some(format!("{e:#}")),
                },
            }
        })
        .collect();
    ProxyView {
        alias: profile.alias.clone(),
        agent: profile.agent.clone(),
        provider: profile.provider.clone(),
        enabled: profile.proxy,
        family: fam,
        port: profile.routing.port,
        proxy_url: match (fam, profile.routing.port) {
            (Some(f), Some(port)) => Some(proxy_url(f, port)),
            _ => None,
        },
        rules: rule_rows(&profile.routing.rules),
        aliases: alias_rows(&profile.routing.aliases),
        budget: profile.routing.budget,
        default_upstream: profile.provider.clone(),
        upstreams,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::config::Config;
    use crate::manifests::Catalog;
    use crate::paths::Paths;
    use crate::profiles::Store;
    use crate::secrets::Secrets;

    /// A temp world with the built-in manifests, a file secret store and a
    /// `claude` profile `work` on `anthropic` whose rules and alias name
    /// other providers and endpoints.
    struct World {
        dir: std::path::PathBuf,
        paths: Paths,
        config: Config,
        catalog: Catalog,
        store: Store,
        secrets: Secrets,
    }

    impl World {
        fn new(tag: &str) -> World {
            let dir = std::env::temp_dir()
                .join(format!("ringlet-proxy-config-{tag}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            let paths = Paths {
                home: dir.join("home"),
                config_dir: dir.join("config"),
                runtime_dir: dir.join("run"),
                socket: dir.join("run/sock"),
            };
            World {
                catalog: Catalog::load_layers(&dir.join("none"), None, &dir.join("none")),
                store: Store::new(dir.join("config/profiles")),
                secrets: Secrets::new(dir.join("config/secrets"), Some(StoreKind::File)),
                config: Config::default(),
                paths,
                dir,
            }
        }

        fn services(&self) -> Services<'_> {
            Services {
                paths: &self.paths,
                config: &self.config,
                catalog: &self.catalog,
                store: &self.store,
                secrets: &self.secrets,
            }
        }

        fn profile(&self) -> Profile {
            let text = serde_json::json!({
                "alias": "work", "agent": "claude", "provider": "anthropic",
                "endpoint_name": "default", "endpoint": "https://api.anthropic.com/",
                "model": "claude-opus-4-8", "home": self.dir.join("home/w"),
                "strategy": "config-dir", "script": "claude.rhai", "proxy": true,
                "routing": {"port": 4100, "rules": [
                    {"name": "long", "condition": "tokens > 100000", "target": "zai/glm-5.1", "priority": 5},
                    {"name": "cn", "condition": "always", "target": "zai@china/glm-5.1"},
                    {"name": "own", "condition": "thinking", "target": "anthropic/claude-haiku"}],
                 "aliases": {"fast": "minimax/MiniMax-M2.1"},
                 "budget": {"daily_usd": 20.0}},
                "secret": "file", "created_at": "2026-12-07T00:00:00Z"
            });
            let profile: Profile = serde_json::from_value(text).unwrap();
            let lock = self.store.lock().unwrap();
            self.store.save(&lock, &profile).unwrap();
            profile
        }
    }

    impl Drop for World {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    #[test]
    fn serve_config_resolves_every_upstream_with_its_key() {
        let w = World::new("serve");
        let s = w.services();
        let profile = w.profile();
        w.secrets.set("work", "profile-key").unwrap();
        w.secrets.set("provider.zai", "zai-key").unwrap();
        let err = serve_config(&s, &profile).unwrap_err().to_string();
        assert!(err.contains("alias `fast`") && err.contains("minimax"), "{err}");
        w.secrets.set("provider.minimax", "mm-key").unwrap();

        let c = serve_config(&s, &profile).unwrap();
        assert_eq!((c.alias.as_str(), c.agent.as_str()), ("work", "claude"));
        assert_eq!(c.family, Family::Anthropic);
        assert_eq!(c.default_upstream, "anthropic");
        let names: Vec<&str> = c.upstreams.keys().map(String::as_str).collect();
        assert_eq!(names, ["anthropic", "minimax", "zai", "zai@china"]);
        let up = |k: &str| c.upstreams[k].clone();
        assert_eq!(up("anthropic").url, "https://api.anthropic.com", "no trailing slash");
        assert_eq!(
            (up("anthropic").auth, up("anthropic").key.as_str()),
            (AuthStyle::XApiKey, "profile-key")
        );
        assert_eq!(up("zai").url, "https://api.z.ai/api/anthropic");
        assert_eq!(up("zai@china").url, "https://open.bigmodel.cn/api/anthropic");
        assert_eq!((up("zai").auth, up("zai").key.as_str()), (AuthStyle::Bearer, "zai-key"));
        assert_eq!(up("minimax").key, "mm-key");
        assert_eq!(c.rules.len(), 3);
        assert_eq!(c.budget.daily_usd, Some(20.0));
        assert_eq!(c.log_dir, w.paths.config_dir.join("proxy/work"));
        assert_eq!(c.local_token.len(), 64);
        assert_eq!(serve_config(&s, &profile).unwrap().local_token, c.local_token, "stable");
        // The Debug form (logs) never shows a key.
        let debug = format!("{c:?}");
        for key in ["profile-key", "zai-key", "mm-key"] {
            assert!(!debug.contains(key), "{debug}");
        }
        assert_eq!(providers_used(&profile), ["minimax", "zai"]);

        // The view: every upstream with where its key is, never the key.
        let v = view(&s, &profile);
        assert_eq!(v.proxy_url.as_deref(), Some("http://127.0.0.1:4100"));
        assert_eq!(
            v.rules.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(),
            ["long", "cn", "own"]
        );
        let json = serde_json::to_string(&v).unwrap();
        for key in ["profile-key", "zai-key", "mm-key"] {
            assert!(!json.contains(key), "{json}");
        }
        assert!(v.upstreams.iter().all(|u| u.problem.is_none()), "{json}");
    }

    #[test]
    fn urls_by_family() {
        assert_eq!(proxy_url(Family::Anthropic, 4100), "http://127.0.0.1:4100");
        assert_eq!(proxy_url(Family::OpenAi, 4100), "http://127.0.0.1:4100/v1");
    }

    #[test]
    fn try_order_is_priority_then_insertion() {
        let rule = |name: &str, priority| Rule {
            name: name.into(),
            condition: "always".into(),
            target: "p/m".into(),
            priority,
        };
        let rows =
            rule_rows(&[rule("a", 0), rule("b", 5), rule("c", 0), rule("d", -1), rule("e", 5)]);
        let names: Vec<&str> = rows.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["b", "e", "a", "c", "d"]);
        assert_eq!(rows[0].order, 1);
    }
}

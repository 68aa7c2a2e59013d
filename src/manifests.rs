//! Agent and provider manifests (design.md §6): the built-in TOML files in
//! `manifests/`, embedded in the binary, overridden by id by the user's own
//! files in `agents.d/` and `providers.d/`.
//!
//! Loading never fails as a whole because of one user file: a broken file
//! becomes a warning line ([`Catalog::agent_warnings`]) naming its path and line, and every
//! other manifest still loads. Built-in manifests are checked by unit tests,
//! so a broken one cannot ship.
//!
//! Endpoint resolution lives here too ([`ProviderManifest::resolve_endpoint`]),
//! because every consumer (listing, profile creation, the proxy) must agree
//! on it.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::{Result, anyhow, bail};
use serde::{Deserialize, Serialize};

use crate::config::{line_col, toml_error};
use crate::protocol::EndpointInfo;

/// The built-in agent manifests, by file name.
pub(crate) const BUILTIN_AGENTS: &[(&str, &str)] = &[
    ("claude.toml", include_str!("../manifests/agents/claude.toml")),
    ("codex.toml", include_str!("../manifests/agents/codex.toml")),
    ("opencode.toml", include_str!("../manifests/agents/opencode.toml")),
    ("grok.toml", include_str!("../manifests/agents/grok.toml")),
    ("droid.toml", include_str!("../manifests/agents/droid.toml")),
];

/// The built-in provider manifests, by file name.
pub(crate) const BUILTIN_PROVIDERS: &[(&str, &str)] = &[
    ("anthropic.toml", include_str!("../manifests/providers/anthropic.toml")),
    ("openai.toml", include_str!("../manifests/providers/openai.toml")),
    ("openrouter.toml", include_str!("../manifests/providers/openrouter.toml")),
    ("minimax.toml", include_str!("../manifests/providers/minimax.toml")),
    ("minimax-openai.toml", include_str!("../manifests/providers/minimax-openai.toml")),
    ("zai.toml", include_str!("../manifests/providers/zai.toml")),
    ("zai-openai.toml", include_str!("../manifests/providers/zai-openai.toml")),
    ("self.toml", include_str!("../manifests/providers/self.toml")),
];

/// Everything the daemon knows about agents and providers, in id order.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    pub agents: Vec<Loaded<AgentManifest>>,
    pub providers: Vec<Loaded<ProviderManifest>>,
    /// One line per agent manifest that could not be used, naming file and line.
    pub agent_warnings: Vec<String>,
    /// The same for provider manifests.
    pub provider_warnings: Vec<String>,
}

/// A manifest and where it came from.
#[derive(Debug, Clone)]
pub struct Loaded<T> {
    pub manifest: T,
    /// `None` for built-ins, else the user file.
    pub path: Option<PathBuf>,
}

impl<T> Loaded<T> {
    pub fn source(&self) -> String {
        match &self.path {
            None => "builtin".into(),
            Some(p) => p.display().to_string(),
        }
    }
}

impl Catalog {
    /// Built-ins plus the user's `agents.d/*.toml` and `providers.d/*.toml`.
    pub fn load(agents_d: &Path, providers_d: &Path) -> Catalog {
        let mut agent_warnings = Vec::new();
        let mut provider_warnings = Vec::new();
        let agents = load_kind(BUILTIN_AGENTS, agents_d, AgentManifest::parse, &mut agent_warnings);
        let providers = load_kind(
            BUILTIN_PROVIDERS,
            providers_d,
            ProviderManifest::parse,
            &mut provider_warnings,
        );
        Catalog { agents, providers, agent_warnings, provider_warnings }
    }

    pub fn agent(&self, id: &str) -> Option<&Loaded<AgentManifest>> {
        self.agents.iter().find(|a| a.manifest.id == id)
    }

    pub fn provider(&self, id: &str) -> Option<&Loaded<ProviderManifest>> {
        self.providers.iter().find(|p| p.manifest.id == id)
    }
}

/// One file of a user manifest directory: path, size, mtime.
pub type Fingerprint = (PathBuf, u64, Option<SystemTime>);

/// What the user manifest directories looked like when they were loaded: used
/// by the daemon to reload only when a file was added, removed or changed.
pub fn dir_fingerprint(dirs: &[&Path]) -> Vec<Fingerprint> {
    let mut out = Vec::new();
    for dir in dirs {
        let Ok(entries) = fs::read_dir(dir) else { continue };
        for entry in entries.flatten() {
            let meta = entry.metadata().ok();
            out.push((
                entry.path(),
                meta.as_ref().map_or(0, |m| m.len()),
                meta.and_then(|m| m.modified().ok()),
            ));
        }
    }
    out.sort();
    out
}

trait HasId {
    fn id(&self) -> &str;
}

fn load_kind<T: HasId>(
    builtins: &[(&str, &str)],
    user_dir: &Path,
    parse: fn(&Path, &str) -> Result<T>,
    warnings: &mut Vec<String>,
) -> Vec<Loaded<T>> {
    let mut by_id: BTreeMap<String, Loaded<T>> = BTreeMap::new();
    for (name, text) in builtins {
        // Built-ins are tested; a failure here is a build defect, reported
        // like any other broken file rather than taking the daemon down.
        match parse(Path::new(name), text) {
            Ok(m) => {
                by_id.insert(m.id().to_string(), Loaded { manifest: m, path: None });
            }
            Err(e) => warnings.push(format!("built-in {e}")),
        }
    }
    let mut files: Vec<PathBuf> = match fs::read_dir(user_dir) {
        Ok(entries) => entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect(),
        Err(_) => Vec::new(),
    };
    files.sort();
    for path in files {
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) => {
                warnings.push(format!("{}: {e}; skipped", path.display()));
                continue;
            }
        };
        match parse(&path, &text) {
            Ok(m) => {
                let id = m.id().to_string();
                if let Some(prev) = by_id.get(&id).and_then(|l| l.path.as_ref()) {
                    warnings.push(format!(
                        "{}: id `{id}` is also defined by {}; the later file wins",
                        path.display(),
                        prev.display()
                    ));
                }
                by_id.insert(id, Loaded { manifest: m, path: Some(path) });
            }
            Err(e) => warnings.push(format!("{e}; skipped")),
        }
    }
    by_id.into_values().collect()
}

/// Parses TOML into `T`, with errors as `<path>:<line>:<col>: <message>`.
fn parse_toml<T: serde::de::DeserializeOwned>(path: &Path, text: &str) -> Result<T> {
    toml::from_str(text).map_err(|e| anyhow!("{}", toml_error(path, text, &e)))
}

/// A validation error pointing at the line where `key` is set, if it is.
fn invalid(path: &Path, text: &str, key: &str, why: impl std::fmt::Display) -> anyhow::Error {
    match find_key_line(text, key) {
        Some(line) => anyhow!("{}:{line}: {key}: {why}", path.display()),
        None => anyhow!("{}: {key}: {why}", path.display()),
    }
}

/// The line that sets `section.key` (or a top-level `key`), found by a plain
/// scan: good enough to point a person at the right line.
fn find_key_line(text: &str, dotted: &str) -> Option<usize> {
    let (section, key) = match dotted.rsplit_once('.') {
        Some((s, k)) => (Some(s), k),
        None => (None, dotted),
    };
    let mut current: Option<&str> = None;
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim();
        if let Some(name) = trimmed.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
            current = Some(name.trim());
        } else if current == section
            && trimmed.strip_prefix(key).is_some_and(|rest| rest.trim_start().starts_with('='))
        {
            return Some(line_col(text, offset).0);
        }
        offset += line.len();
    }
    None
}

fn check_id(path: &Path, text: &str, id: &str) -> Result<()> {
    let ok = id.len() <= 64
        && id.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && id.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if !ok {
        return Err(invalid(path, text, "id", format!("`{id}` must match [a-z0-9][a-z0-9_-]*")));
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Agents

/// One agent manifest (`manifests/agents/*.toml`, `agents.d/*.toml`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentManifest {
    pub id: String,
    pub name: String,
    pub binary: String,
    #[serde(default = "default_version_flag")]
    pub version_flag: String,
    #[serde(default)]
    pub supports_hooks: bool,
    #[serde(default)]
    pub detect: AgentDetect,
    pub profile: AgentProfile,
    #[serde(default)]
    pub models: AgentModels,
    #[serde(default)]
    pub hooks: AgentHooks,
    #[serde(default)]
    pub setup_tasks: BTreeMap<String, SetupTask>,
    /// Where the agent logs its token usage, for the usage tracker.
    #[serde(default)]
    pub usage: Option<AgentUsage>,
}

/// The agent's usage logs: which parser reads them and where they are.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentUsage {
    /// The log format: claude, codex or opencode; or proxy, the profile's
    /// proxy request log, for an agent that writes no usage log of its own
    /// (no paths: the log is `<config>/proxy/<alias>/`).
    pub format: crate::usage::Format,
    /// Log dirs inside a profile home, relative to it.
    #[serde(default)]
    pub paths: Vec<String>,
    /// The user's own log dirs, counted as the `(default)` profile. `~/` and
    /// `${VAR:-fallback}` are expanded with the daemon's environment.
    #[serde(default)]
    pub default_paths: Vec<String>,
}

fn default_version_flag() -> String {
    "--version".into()
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentDetect {
    /// Binary names to look for on PATH, in order; empty means `[binary]`.
    #[serde(default)]
    pub commands: Vec<String>,
    /// Files whose presence shows the agent has been used (`~/` allowed).
    #[serde(default)]
    pub files: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentProfile {
    pub strategy: Strategy,
    /// Profile home template; must contain `{alias}`.
    pub source_home: String,
    pub script: String,
    pub provider_types: Vec<ProviderType>,
    /// Variables that point into the profile home, as paths relative to it
    /// (`CLAUDE_CONFIG_DIR = ".claude"`); each directory is created before a
    /// run. `config-dir` profiles need at least one; `home-wrapper` ones get
    /// `HOME` on top.
    #[serde(default)]
    pub config_env: BTreeMap<String, String>,
}

/// How a profile's state is kept apart from the user's own (design.md §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    HomeWrapper,
    ConfigDir,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentModels {
    pub default: Option<String>,
    #[serde(default)]
    pub supported: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentHooks {
    #[serde(default)]
    pub create: Vec<String>,
    #[serde(default)]
    pub delete: Vec<String>,
    #[serde(default)]
    pub pre_run: Vec<String>,
    #[serde(default)]
    pub post_run: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetupTask {
    pub description: String,
    pub command: String,
}

impl HasId for AgentManifest {
    fn id(&self) -> &str {
        &self.id
    }
}

impl AgentManifest {
    pub fn parse(path: &Path, text: &str) -> Result<AgentManifest> {
        let m: AgentManifest = parse_toml(path, text)?;
        check_id(path, text, &m.id)?;
        if m.binary.is_empty() || m.binary.contains('/') {
            return Err(invalid(path, text, "binary", "must be a bare command name"));
        }
        if let Some(bad) = m.detect.commands.iter().find(|c| c.is_empty() || c.contains('/')) {
            return Err(invalid(
                path,
                text,
                "detect.commands",
                format!("`{bad}` is not a bare command name"),
            ));
        }
        if !m.profile.source_home.contains("{alias}") {
            return Err(invalid(path, text, "profile.source_home", "must contain `{alias}`"));
        }
        for (var, dir) in &m.profile.config_env {
            let bad_var = var.is_empty() || var.contains(['=', '\0']) || var == "HOME";
            if bad_var {
                return Err(invalid(
                    path,
                    text,
                    "profile.config_env",
                    format!("`{var}` cannot be set here"),
                ));
            }
            if crate::profiles::relative_path(dir).is_err() {
                return Err(invalid(
                    path,
                    text,
                    "profile.config_env",
                    format!("`{dir}` must be a relative path inside the profile home"),
                ));
            }
        }
        if m.profile.strategy == Strategy::ConfigDir && m.profile.config_env.is_empty() {
            return Err(invalid(
                path,
                text,
                "profile.config_env",
                "a config-dir profile needs at least one variable (e.g. CLAUDE_CONFIG_DIR = \".claude\")",
            ));
        }
        if m.profile.provider_types.is_empty() {
            return Err(invalid(
                path,
                text,
                "profile.provider_types",
                "must name at least one type",
            ));
        }
        if let Some(usage) = &m.usage {
            check_usage(path, text, &m.id, usage)?;
        }
        Ok(m)
    }

    /// The command names detection looks for on PATH.
    pub fn commands(&self) -> Vec<&str> {
        if self.detect.commands.is_empty() {
            vec![self.binary.as_str()]
        } else {
            self.detect.commands.iter().map(String::as_str).collect()
        }
    }
}

/// A log format reads the dirs it is given; `proxy` reads the profile's
/// proxy log and counts it under the agent's own id, which the usage store
/// must know.
fn check_usage(path: &Path, text: &str, id: &str, usage: &AgentUsage) -> Result<()> {
    use crate::usage::{Agent, Format};
    if usage.format != Format::Proxy {
        return Ok(());
    }
    if Agent::from_id(id).is_none() {
        let known: Vec<&str> = Agent::ALL.iter().map(|a| a.id()).collect();
        return Err(invalid(
            path,
            text,
            "usage.format",
            format!(
                "`proxy` counts usage under the agent's id, and `{id}` is not one of {}",
                known.join(", ")
            ),
        ));
    }
    if !usage.paths.is_empty() || !usage.default_paths.is_empty() {
        let key = if usage.paths.is_empty() { "usage.default_paths" } else { "usage.paths" };
        return Err(invalid(
            path,
            text,
            key,
            "`proxy` reads the profile's proxy log (<config>/proxy/<alias>/): no paths",
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Providers

/// The API families a provider speaks; agents list the ones they support.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProviderType {
    Anthropic,
    AnthropicCompatible,
    Openai,
    OpenaiCompatible,
    #[serde(rename = "self")]
    SelfAuth,
}

impl ProviderType {
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderType::Anthropic => "anthropic",
            ProviderType::AnthropicCompatible => "anthropic-compatible",
            ProviderType::Openai => "openai",
            ProviderType::OpenaiCompatible => "openai-compatible",
            ProviderType::SelfAuth => "self",
        }
    }
}

/// One provider manifest (`manifests/providers/*.toml`, `providers.d/*.toml`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderManifest {
    pub id: String,
    pub name: String,
    #[serde(rename = "type")]
    pub kind: ProviderType,
    /// Endpoint name to URL; the key `default` names another endpoint or is
    /// itself a URL.
    #[serde(default)]
    pub endpoints: BTreeMap<String, String>,
    #[serde(default)]
    pub auth: ProviderAuth,
    #[serde(default)]
    pub models: ProviderModels,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderAuth {
    pub env_key: Option<String>,
    pub prompt: Option<String>,
    #[serde(default = "yes")]
    pub required: bool,
}

impl Default for ProviderAuth {
    fn default() -> Self {
        ProviderAuth { env_key: None, prompt: None, required: true }
    }
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderModels {
    #[serde(default)]
    pub available: Vec<String>,
    pub default: Option<String>,
}

impl HasId for ProviderManifest {
    fn id(&self) -> &str {
        &self.id
    }
}

fn is_url(s: &str) -> bool {
    let rest = s.strip_prefix("https://").or_else(|| s.strip_prefix("http://"));
    rest.is_some_and(|r| !r.is_empty() && !r.starts_with('/') && !r.contains(char::is_whitespace))
}

impl ProviderManifest {
    pub fn parse(path: &Path, text: &str) -> Result<ProviderManifest> {
        let m: ProviderManifest = parse_toml(path, text)?;
        check_id(path, text, &m.id)?;
        for (name, value) in &m.endpoints {
            let key = format!("endpoints.{name}");
            if name == "default" {
                if !is_url(value) && !m.endpoints.contains_key(value.as_str()) {
                    return Err(invalid(
                        path,
                        text,
                        &key,
                        format!("`{value}` is neither a URL nor an endpoint name"),
                    ));
                }
            } else if !is_url(value) {
                return Err(invalid(path, text, &key, format!("`{value}` is not an http(s) URL")));
            }
        }
        if m.kind != ProviderType::SelfAuth {
            if m.endpoints.is_empty() {
                return Err(invalid(
                    path,
                    text,
                    "endpoints",
                    "a provider needs at least one endpoint",
                ));
            }
            if m.auth.required && m.auth.env_key.as_deref().is_none_or(str::is_empty) {
                return Err(invalid(
                    path,
                    text,
                    "auth.env_key",
                    "is required when auth.required is true",
                ));
            }
        }
        if let Some(model) = &m.models.default
            && !m.models.available.is_empty()
            && !m.models.available.contains(model)
        {
            return Err(invalid(
                path,
                text,
                "models.default",
                format!("`{model}` is not in models.available"),
            ));
        }
        // The one real resolution rule must succeed for a usable provider.
        m.resolve_endpoint(None).map_err(|e| anyhow!("{}: {e}", path.display()))?;
        Ok(m)
    }

    /// Named endpoints (not `default`), in name order.
    pub fn named_endpoints(&self) -> Vec<EndpointInfo> {
        self.endpoints
            .iter()
            .filter(|(name, _)| name.as_str() != "default")
            .map(|(name, url)| EndpointInfo { name: name.clone(), url: url.clone() })
            .collect()
    }

    /// Resolves the endpoint a profile uses. `requested` may be an endpoint
    /// name or a URL; `None` takes the default: the endpoint `default` names,
    /// the URL `default` holds, or the only endpoint there is. A `self`
    /// provider with no endpoints resolves to `None` (the agent's own).
    pub fn resolve_endpoint(&self, requested: Option<&str>) -> Result<Option<EndpointInfo>> {
        if let Some(req) = requested {
            if is_url(req) {
                return Ok(Some(EndpointInfo { name: "custom".into(), url: req.to_string() }));
            }
            return match self.endpoints.get(req).filter(|_| req != "default") {
                Some(url) => Ok(Some(EndpointInfo { name: req.to_string(), url: url.clone() })),
                None => {
                    let names: Vec<String> =
                        self.named_endpoints().into_iter().map(|e| e.name).collect();
                    bail!(
                        "provider `{}` has no endpoint `{req}` (known: {}; or give an http(s) URL)",
                        self.id,
                        if names.is_empty() { "none".to_string() } else { names.join(", ") }
                    )
                }
            };
        }
        if let Some(default) = self.endpoints.get("default") {
            if is_url(default) {
                return Ok(Some(EndpointInfo { name: "default".into(), url: default.clone() }));
            }
            return self.resolve_endpoint(Some(default));
        }
        let named = self.named_endpoints();
        match named.len() {
            0 if self.kind == ProviderType::SelfAuth => Ok(None),
            1 => Ok(named.into_iter().next()),
            0 => bail!("provider `{}` has no endpoints", self.id),
            _ => bail!(
                "provider `{}` has several endpoints and no `default`; pass --endpoint",
                self.id
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn provider(text: &str) -> Result<ProviderManifest> {
        ProviderManifest::parse(Path::new("p.toml"), text)
    }

    const AGENT: &str = r#"
id = "fake"
name = "Fake"
binary = "fake-agent"
[profile]
strategy = "home-wrapper"
source_home = "~/.fake-profiles/{alias}"
script = "fake.rhai"
provider_types = ["anthropic"]
"#;

    #[test]
    fn every_builtin_manifest_loads_cleanly() {
        let none = Path::new("/nonexistent-ringlet-dir");
        let catalog = Catalog::load(none, none);
        assert!(catalog.agent_warnings.is_empty(), "{:?}", catalog.agent_warnings);
        assert!(catalog.provider_warnings.is_empty(), "{:?}", catalog.provider_warnings);
        let ids: Vec<_> = catalog.agents.iter().map(|a| a.manifest.id.as_str()).collect();
        assert_eq!(ids, ["claude", "codex", "droid", "grok", "opencode"]);
        let ids: Vec<_> = catalog.providers.iter().map(|p| p.manifest.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "anthropic",
                "minimax",
                "minimax-openai",
                "openai",
                "openrouter",
                "self",
                "zai",
                "zai-openai"
            ]
        );
        for agent in &catalog.agents {
            assert_eq!(
                agent.manifest.profile.script,
                format!("{}.rhai", agent.manifest.id),
                "script named after the agent"
            );
        }
    }

    #[test]
    fn builtin_claude_and_codex_use_config_dir() {
        let none = Path::new("/nonexistent-ringlet-dir");
        let catalog = Catalog::load(none, none);
        for id in ["claude", "codex"] {
            assert_eq!(catalog.agent(id).unwrap().manifest.profile.strategy, Strategy::ConfigDir);
        }
    }

    #[test]
    fn every_builtin_provider_resolves_without_flags() {
        let none = Path::new("/nonexistent-ringlet-dir");
        for p in Catalog::load(none, none).providers {
            let ep = p.manifest.resolve_endpoint(None).unwrap();
            assert_eq!(
                ep.is_none(),
                p.manifest.kind == ProviderType::SelfAuth,
                "{}",
                p.manifest.id
            );
        }
    }

    #[test]
    fn default_names_an_endpoint_or_is_a_url() {
        let named = provider(
            "id='m'\nname='M'\ntype='anthropic-compatible'\n[endpoints]\nintl='https://a.example/x'\n\
             cn='https://b.example/x'\ndefault='cn'\n[auth]\nenv_key='K'\n",
        )
        .unwrap();
        assert_eq!(named.resolve_endpoint(None).unwrap().unwrap().url, "https://b.example/x");
        assert_eq!(named.resolve_endpoint(Some("intl")).unwrap().unwrap().name, "intl");
        let custom = named.resolve_endpoint(Some("http://127.0.0.1:9/v1")).unwrap().unwrap();
        assert_eq!(
            (custom.name.as_str(), custom.url.as_str()),
            ("custom", "http://127.0.0.1:9/v1")
        );
        let err = named.resolve_endpoint(Some("mars")).unwrap_err().to_string();
        assert!(err.contains("known: cn, intl"), "{err}");
        assert!(named.resolve_endpoint(Some("default")).is_err());

        let url_only = provider(
            "id='o'\nname='O'\ntype='openai-compatible'\n[endpoints]\ndefault='https://o.example/v1'\n\
             [auth]\nenv_key='K'\n",
        )
        .unwrap();
        let ep = url_only.resolve_endpoint(None).unwrap().unwrap();
        assert_eq!((ep.name.as_str(), ep.url.as_str()), ("default", "https://o.example/v1"));
        assert!(url_only.named_endpoints().is_empty());
    }

    #[test]
    fn single_endpoint_needs_no_default_but_two_do() {
        let one = provider(
            "id='a'\nname='A'\ntype='openai'\n[endpoints]\nonly='https://x.example'\n[auth]\nenv_key='K'\n",
        )
        .unwrap();
        assert_eq!(one.resolve_endpoint(None).unwrap().unwrap().name, "only");
        let err = provider(
            "id='a'\nname='A'\ntype='openai'\n[endpoints]\na='https://x.example'\nb='https://y.example'\n\
             [auth]\nenv_key='K'\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("pass --endpoint"), "{err}");
    }

    #[test]
    fn bad_endpoint_values_name_file_line_and_key() {
        let err = provider(
            "id='a'\nname='A'\ntype='openai'\n[endpoints]\nintl='ftp://x'\n[auth]\nenv_key='K'\n",
        )
        .unwrap_err()
        .to_string();
        assert_eq!(err, "p.toml:5: endpoints.intl: `ftp://x` is not an http(s) URL");
        let err = provider(
            "id='a'\nname='A'\ntype='openai'\n[endpoints]\ndefault='intl'\n[auth]\nenv_key='K'\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("p.toml:5: endpoints.default:"), "{err}");
    }

    #[test]
    fn agent_validation() {
        AgentManifest::parse(Path::new("a.toml"), AGENT).unwrap();
        let bad = AGENT.replace("{alias}", "x");
        let err = AgentManifest::parse(Path::new("a.toml"), &bad).unwrap_err().to_string();
        assert!(err.starts_with("a.toml:7: profile.source_home:"), "{err}");
        let bad = AGENT.replace("\"fake-agent\"", "\"../bin/x\"");
        assert!(AgentManifest::parse(Path::new("a.toml"), &bad).is_err());
        let bad = AGENT.replace("id = \"fake\"", "id = \"Fake One\"");
        let err = AgentManifest::parse(Path::new("a.toml"), &bad).unwrap_err().to_string();
        assert!(err.starts_with("a.toml:2: id:"), "{err}");
        let bad = AGENT.replace("\"anthropic\"]", "\"martian\"]");
        let err = AgentManifest::parse(Path::new("a.toml"), &bad).unwrap_err().to_string();
        assert!(err.starts_with("a.toml:9:"), "{err}");
    }

    /// `proxy` needs an agent id the usage store knows and takes no paths;
    /// the built-in agents that write no usage log declare it.
    #[test]
    fn the_proxy_usage_format_is_for_known_agents_without_paths() {
        let parse = |id: &str, usage: &str| {
            let text =
                format!("{}[usage]\n{usage}\n", AGENT.replace("\"fake\"", &format!("\"{id}\"")));
            AgentManifest::parse(Path::new("a.toml"), &text).map_err(|e| e.to_string())
        };
        let m = parse("grok", "format = \"proxy\"").unwrap();
        assert_eq!(m.usage.unwrap().format, crate::usage::Format::Proxy);
        let err = parse("fake", "format = \"proxy\"").unwrap_err();
        assert!(err.starts_with("a.toml:11: usage.format:") && err.contains("`fake`"), "{err}");
        let err = parse("grok", "format = \"proxy\"\npaths = [\".grok\"]").unwrap_err();
        assert!(err.starts_with("a.toml:12: usage.paths:"), "{err}");
        parse("fake", "format = \"claude\"\npaths = [\".claude/projects\"]").unwrap();

        let none = Path::new("/nonexistent-ringlet-dir");
        let catalog = Catalog::load(none, none);
        for id in ["grok", "droid"] {
            let usage = catalog.agent(id).unwrap().manifest.usage.clone().unwrap();
            assert_eq!(usage.format, crate::usage::Format::Proxy, "{id}");
        }
    }

    #[test]
    fn user_files_override_and_broken_ones_warn() {
        let dir = std::env::temp_dir().join(format!("ringlet-manifests-{}", std::process::id()));
        let agents_d = dir.join("agents.d");
        fs::create_dir_all(&agents_d).unwrap();
        let claude = BUILTIN_AGENTS[0].1.replace("name = \"Claude Code\"", "name = \"My Claude\"");
        fs::write(agents_d.join("claude.toml"), claude).unwrap();
        fs::write(agents_d.join("fake.toml"), AGENT).unwrap();
        fs::write(agents_d.join("broken.toml"), "id = \"x\"\nname = [\n").unwrap();
        fs::write(agents_d.join("notes.txt"), "ignored").unwrap();
        let catalog = Catalog::load(&agents_d, &dir.join("providers.d"));
        let claude = catalog.agent("claude").unwrap();
        assert_eq!(claude.manifest.name, "My Claude");
        assert!(claude.source().ends_with("agents.d/claude.toml"));
        assert!(catalog.agent("fake").is_some());
        assert_eq!(catalog.agents.len(), 6);
        assert_eq!(catalog.agent_warnings.len(), 1, "{:?}", catalog.agent_warnings);
        assert!(
            catalog.agent_warnings[0].contains("broken.toml:2:"),
            "{:?}",
            catalog.agent_warnings
        );
        assert!(catalog.provider_warnings.is_empty());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn key_lines_are_found_within_their_section() {
        let text = "id = 1\n[a]\nx = 1\n[b]\nx = 2\n";
        assert_eq!(find_key_line(text, "b.x"), Some(5));
        assert_eq!(find_key_line(text, "a.x"), Some(3));
        assert_eq!(find_key_line(text, "id"), Some(1));
        assert_eq!(find_key_line(text, "c.x"), None);
    }
}

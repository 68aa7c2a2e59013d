//! Agent and provider manifests (design.md §6): the built-in TOML files in
//! `manifests/`, embedded in the binary, overridden by id by the synced
//! registry's files (`<config>/registry/current/agents/`, `providers/`),
//! which the user's own files in `agents.d/` and `providers.d/` override in
//! turn: built-in < registry < user.
//!
//! Loading never fails as a whole because of one file: a broken synced or
//! user file becomes a warning line ([`Catalog::agent_warnings`]) naming its
//! path and line, and every other manifest still loads. Built-in manifests
//! are checked by unit tests, so a broken one cannot ship.
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

use crate::config::line_col;
use crate::paths::Paths;
use crate::protocol::EndpointInfo;
use crate::registry::{self, Kind};

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

/// Where a manifest came from, lowest precedence first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Layer {
    /// Embedded in the binary.
    Builtin,
    /// The synced registry's current commit.
    Registry,
    /// `agents.d/` or `providers.d/`.
    User,
}

/// A manifest and where it came from.
#[derive(Debug, Clone)]
pub struct Loaded<T> {
    pub manifest: T,
    /// `None` for built-ins, else the synced or user file.
    pub path: Option<PathBuf>,
    pub layer: Layer,
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
    /// Built-ins, then the synced registry's current commit, then the user's
    /// `agents.d/*.toml` and `providers.d/*.toml`; a later layer replaces an
    /// earlier one's manifest of the same id.
    pub fn load(paths: &Paths) -> Catalog {
        let registry = registry::current_dir(paths);
        Catalog::load_layers(&paths.agents_d(), registry.as_deref(), &paths.providers_d())
    }

    /// [`Catalog::load`] from explicit directories; `registry` is a commit
    /// directory (its `agents/` and `providers/`), `None` when none is synced.
    pub fn load_layers(agents_d: &Path, registry: Option<&Path>, providers_d: &Path) -> Catalog {
        let mut agent_warnings = Vec::new();
        let mut provider_warnings = Vec::new();
        let layers = |kind: Kind, user: &Path| {
            let mut dirs = Vec::new();
            if let Some(reg) = registry {
                dirs.push((Layer::Registry, reg.join(kind.dir())));
            }
            dirs.push((Layer::User, user.to_path_buf()));
            dirs
        };
        let agents = load_kind(
            BUILTIN_AGENTS,
            &layers(Kind::Agent, agents_d),
            AgentManifest::parse,
            &mut agent_warnings,
        );
        let providers = load_kind(
            BUILTIN_PROVIDERS,
            &layers(Kind::Provider, providers_d),
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

/// A manifest's id, if the text parses.
type IdOf = fn(&Path, &str) -> Option<String>;

/// The built-ins the current registry commit replaces, for `registry
/// inspect`: agents and providers by id, scripts by file name, and the price
/// table (`litellm-pricing.json`), sorted by kind then name. A synced file
/// byte-for-byte equal to its built-in (a registry made from this binary's
/// own sources) replaces nothing and is not listed. A synced manifest that
/// does not parse is not listed either (it loads as a warning, not an
/// override). Empty when no commit is current.
pub fn overridden_builtins(paths: &Paths) -> Vec<(Kind, String)> {
    let Some(dir) = registry::current_dir(paths) else { return Vec::new() };
    let mut out = Vec::new();
    let agent_id: IdOf = |p, t| AgentManifest::parse(p, t).ok().map(|m| m.id);
    let provider_id: IdOf = |p, t| ProviderManifest::parse(p, t).ok().map(|m| m.id);
    let kinds =
        [(Kind::Agent, BUILTIN_AGENTS, agent_id), (Kind::Provider, BUILTIN_PROVIDERS, provider_id)];
    for (kind, builtins, id_of) in kinds {
        for path in toml_files(&dir.join(kind.dir())) {
            let Ok(text) = fs::read_to_string(&path) else { continue };
            if builtins.iter().any(|(_, b)| *b == text) {
                continue;
            }
            // Built-in files are named after their ids (a unit test checks).
            if let Some(id) = id_of(&path, &text)
                && builtins.iter().any(|(name, _)| name.strip_suffix(".toml") == Some(id.as_str()))
            {
                out.push((kind, id));
            }
        }
    }
    for (name, builtin) in crate::scripting::builtins() {
        let path = registry::artifact_path(&dir, Kind::Script, name);
        if fs::read_to_string(&path).is_ok_and(|text| text != *builtin) {
            out.push((Kind::Script, (*name).to_string()));
        }
    }
    let pricing = dir.join(registry::PRICING_PATH);
    let embedded = crate::usage::pricing::embedded_text();
    // Sizes first: a full LiteLLM table is megabytes and differs in size.
    let differs = match fs::metadata(&pricing) {
        Ok(meta) if meta.len() != embedded.len() as u64 => true,
        Ok(_) => fs::read(&pricing).is_ok_and(|bytes| bytes != embedded.as_bytes()),
        Err(_) => false,
    };
    if differs {
        let name = registry::PRICING_PATH.rsplit('/').next().unwrap_or(registry::PRICING_PATH);
        out.push((Kind::Pricing, name.to_string()));
    }
    out.sort();
    out.dedup();
    out
}

trait HasId {
    fn id(&self) -> &str;
}

fn load_kind<T: HasId>(
    builtins: &[(&str, &str)],
    dirs: &[(Layer, PathBuf)],
    parse: fn(&Path, &str) -> Result<T>,
    warnings: &mut Vec<String>,
) -> Vec<Loaded<T>> {
    let mut by_id: BTreeMap<String, Loaded<T>> = BTreeMap::new();
    for (name, text) in builtins {
        // Built-ins are tested; a failure here is a build defect, reported
        // like any other broken file rather than taking the daemon down.
        match parse(Path::new(name), text) {
            Ok(m) => {
                by_id.insert(
                    m.id().to_string(),
                    Loaded { manifest: m, path: None, layer: Layer::Builtin },
                );
            }
            Err(e) => warnings.push(format!("built-in {e}")),
        }
    }
    for (layer, dir) in dirs {
        for path in toml_files(dir) {
            let text = match read_manifest(&path) {
                Ok(t) => t,
                Err(e) => {
                    warnings.push(format!("{e:#}; skipped"));
                    continue;
                }
            };
            match parse(&path, &text) {
                Ok(m) => {
                    let id = m.id().to_string();
                    // Replacing a lower layer is the point; two files of one
                    // layer with the same id are a mistake worth naming.
                    if let Some(prev) = by_id.get(&id).filter(|l| l.layer == *layer)
                        && let Some(prev) = &prev.path
                    {
                        warnings.push(format!(
                            "{}: id `{id}` is also defined by {}; the later file wins",
                            path.display(),
                            prev.display()
                        ));
                    }
                    by_id.insert(id, Loaded { manifest: m, path: Some(path), layer: *layer });
                }
                Err(e) => warnings.push(format!("{e}; skipped")),
            }
        }
    }
    by_id.into_values().collect()
}

/// The `*.toml` files of `dir`, sorted; none when it does not exist.
pub(crate) fn toml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = match fs::read_dir(dir) {
        Ok(entries) => entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect(),
        Err(_) => Vec::new(),
    };
    files.sort();
    files
}

/// A manifest's text. Links are followed: people keep dotfiles in a
/// repository and link them here; a synced registry holds only the regular
/// files its sync verified.
fn read_manifest(path: &Path) -> Result<String> {
    fs::read_to_string(path).map_err(|e| anyhow!("{}: {e}", path.display()))
}

/// Parses TOML into `T`, with errors as `<path>:<line>:<col>: <message>`.
fn parse_toml<T: serde::de::DeserializeOwned>(path: &Path, text: &str) -> Result<T> {
    crate::config::from_toml(path, text)
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
        let catalog = Catalog::load_layers(none, None, none);
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
        let catalog = Catalog::load_layers(none, None, none);
        for id in ["claude", "codex"] {
            assert_eq!(catalog.agent(id).unwrap().manifest.profile.strategy, Strategy::ConfigDir);
        }
    }

    #[test]
    fn every_builtin_provider_resolves_without_flags() {
        let none = Path::new("/nonexistent-ringlet-dir");
        for p in Catalog::load_layers(none, None, none).providers {
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
        let catalog = Catalog::load_layers(none, None, none);
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
        let catalog = Catalog::load_layers(&agents_d, None, &dir.join("providers.d"));
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

    /// A config dir with commit `c1` current, holding `files`.
    fn registry_world(name: &str, files: &[(&str, &str)]) -> (PathBuf, Paths) {
        let dir =
            std::env::temp_dir().join(format!("ringlet-layers-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let commit = dir.join("registry/commits/c1");
        for (path, text) in files {
            let path = commit.join(path);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, text).unwrap();
        }
        fs::create_dir_all(&commit).unwrap();
        std::os::unix::fs::symlink("commits/c1", dir.join("registry/current")).unwrap();
        let vars = |name: &str| match name {
            "HOME" => Some(dir.clone().into_os_string()),
            "RINGLET_CONFIG_DIR" => Some(dir.clone().into_os_string()),
            _ => None,
        };
        let paths = Paths::from_vars(vars, 0).unwrap();
        (dir, paths)
    }

    #[test]
    fn registry_sits_between_builtins_and_user_files() {
        let synced = |name: &str| {
            BUILTIN_AGENTS[0].1.replace("name = \"Claude Code\"", &format!("name = \"{name}\""))
        };
        let (dir, paths) = registry_world(
            "layers",
            &[
                ("agents/claude.toml", &synced("Synced Claude")),
                ("agents/fake.toml", AGENT),
                ("agents/broken.toml", "id = \"x\"\nname = [\n"),
                ("providers/notes.txt", "ignored"),
            ],
        );
        let catalog = Catalog::load(&paths);
        let claude = catalog.agent("claude").unwrap();
        assert_eq!(
            (claude.manifest.name.as_str(), claude.layer),
            ("Synced Claude", Layer::Registry)
        );
        assert!(claude.source().ends_with("registry/commits/c1/agents/claude.toml"));
        assert_eq!(catalog.agent("fake").unwrap().layer, Layer::Registry);
        assert_eq!(catalog.agent("codex").unwrap().layer, Layer::Builtin);
        assert_eq!(catalog.agent_warnings.len(), 1, "{:?}", catalog.agent_warnings);
        assert!(catalog.agent_warnings[0].contains("commits/c1/agents/broken.toml:2:"));

        // A user file wins over the synced one, silently: that is the order.
        fs::create_dir_all(paths.agents_d()).unwrap();
        fs::write(paths.agents_d().join("claude.toml"), synced("My Claude")).unwrap();
        let catalog = Catalog::load(&paths);
        let claude = catalog.agent("claude").unwrap();
        assert_eq!((claude.manifest.name.as_str(), claude.layer), ("My Claude", Layer::User));
        assert_eq!(catalog.agent_warnings.len(), 1, "{:?}", catalog.agent_warnings);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn overridden_builtins_lists_what_differs_from_the_builtins() {
        let claude = BUILTIN_AGENTS[0].1.replace("name = \"Claude Code\"", "name = \"Synced\"");
        let (dir, paths) = registry_world(
            "overrides",
            &[
                ("agents/claude.toml", &claude),
                // Equal to the built-in: replaces nothing.
                ("agents/codex.toml", BUILTIN_AGENTS[1].1),
                // New, not a built-in.
                ("agents/fake.toml", AGENT),
                // Named after nothing: the id decides.
                ("providers/zz.toml", &BUILTIN_PROVIDERS[1].1.replace("OpenAI\"", "OpenAI 2\"")),
                ("providers/broken.toml", "id = "),
                ("scripts/claude.rhai", "#{}"),
                ("scripts/codex.rhai", crate::scripting::builtins()[1].1),
                ("scripts/other.rhai", "#{}"),
                ("pricing/litellm-pricing.json", "{}"),
            ],
        );
        assert_eq!(BUILTIN_PROVIDERS[1].0, "openai.toml");
        assert_eq!(
            overridden_builtins(&paths),
            [
                (Kind::Agent, "claude".to_string()),
                (Kind::Provider, "openai".to_string()),
                (Kind::Script, "claude.rhai".to_string()),
                (Kind::Pricing, "litellm-pricing.json".to_string()),
            ]
        );
        // The embedded snapshot itself is no override.
        let pricing = dir.join("registry/commits/c1").join(registry::PRICING_PATH);
        fs::write(&pricing, crate::usage::pricing::embedded_text()).unwrap();
        assert_eq!(overridden_builtins(&paths).len(), 3);
        fs::remove_file(dir.join("registry/current")).unwrap();
        assert!(overridden_builtins(&paths).is_empty());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn builtin_files_are_named_after_their_ids() {
        let none = Path::new("/nonexistent-ringlet-dir");
        let catalog = Catalog::load_layers(none, None, none);
        for (name, text) in BUILTIN_AGENTS {
            let m = AgentManifest::parse(Path::new(name), text).unwrap();
            assert_eq!(format!("{}.toml", m.id), *name);
        }
        for (name, text) in BUILTIN_PROVIDERS {
            let m = ProviderManifest::parse(Path::new(name), text).unwrap();
            assert_eq!(format!("{}.toml", m.id), *name);
        }
        assert!(catalog.agents.iter().all(|a| a.layer == Layer::Builtin));
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

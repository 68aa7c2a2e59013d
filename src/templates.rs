//! Profile templates (`templates/<name>.toml`): a named, described set of
//! what `profiles create` asks for (provider, endpoint, model, hooks and MCP
//! servers) for one or more agents, with per-agent overrides:
//!
//! ```toml
//! name = "zai-glm"
//! description = "Z.ai GLM-5.1"
//! agents = ["claude", "codex"]
//! provider = "zai"
//! endpoint = "international"
//! model = "glm-5.1"
//! [hooks.fmt]                 # config.toml's hook-set shape
//! event = "PostToolUse"
//! command = "cargo fmt"
//! [mcp_servers.docs]          # config.toml's MCP-server shape
//! command = "docs-mcp"
//! [agent.codex]               # this agent's values win over the ones above
//! provider = "zai-openai"
//! ```
//!
//! Files layer by name: built-in (`manifests/templates/`, embedded) < the
//! synced registry (`<registry>/current/templates/`) < the user's
//! `<config>/templates.d/`. A broken file is a warning naming file and line.
//! Read when asked (a few small files), so a sync or an edit counts on the
//! next request. [`apply`] is what `profiles create --template` does.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::catalog::{at, line_of, toml_files, valid_id};
use crate::paths::Paths;
use crate::profiles::NotFound;
use crate::profiles::create::CreateRequest;
use crate::profiles::hooks;

/// The built-in templates, by file name (`make registry` ships the same files).
pub const BUILTIN: &[(&str, &str)] = &[
    ("claude-anthropic.toml", include_str!("../manifests/templates/claude-anthropic.toml")),
    ("codex-openai.toml", include_str!("../manifests/templates/codex-openai.toml")),
    ("minimax-m2.toml", include_str!("../manifests/templates/minimax-m2.toml")),
    ("zai-glm.toml", include_str!("../manifests/templates/zai-glm.toml")),
];

/// A template file as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    name: String,
    #[serde(default)]
    description: String,
    agents: Vec<String>,
    provider: Option<String>,
    endpoint: Option<String>,
    model: Option<String>,
    #[serde(default)]
    hooks: toml::Table,
    #[serde(default)]
    mcp_servers: toml::Table,
    /// Per-agent overrides of the fields above.
    #[serde(default)]
    agent: BTreeMap<String, Settings>,
}

/// What a template sets, for all its agents or for one.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    provider: Option<String>,
    endpoint: Option<String>,
    model: Option<String>,
    #[serde(default)]
    hooks: toml::Table,
    #[serde(default)]
    mcp_servers: toml::Table,
}

impl Settings {
    /// `self` with `over`'s values on top; hook sets and servers by name.
    fn merged(&self, over: &Settings) -> Settings {
        let mut out = self.clone();
        out.provider = over.provider.clone().or(out.provider);
        out.endpoint = over.endpoint.clone().or(out.endpoint);
        out.model = over.model.clone().or(out.model);
        out.hooks.extend(over.hooks.clone());
        out.mcp_servers.extend(over.mcp_servers.clone());
        out
    }
}

/// What a template gives one agent, hooks and servers in the profile's
/// shapes (Claude Code's hooks schema, `mcpServers` entries).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ForAgent {
    pub provider: Option<String>,
    pub endpoint: Option<String>,
    pub model: Option<String>,
    pub hooks: Map<String, Value>,
    pub mcp_servers: Map<String, Value>,
}

/// One template as callers see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TemplateInfo {
    pub name: String,
    pub description: String,
    pub agents: Vec<String>,
    /// `builtin`, or the file it came from (in the registry or templates.d).
    pub source: String,
    /// Per agent, what a profile created from it gets.
    pub settings: BTreeMap<String, ForAgent>,
}

/// Reply to `Request::ProfilesTemplates`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TemplateList {
    pub templates: Vec<TemplateInfo>,
    /// Files that could not be used, one line each, naming file and line.
    pub warnings: Vec<String>,
}

/// Every template, by name, and the warnings of the files that failed.
#[derive(Debug, Clone, Default)]
pub struct Templates {
    pub by_name: BTreeMap<String, TemplateInfo>,
    pub warnings: Vec<String>,
}

/// `<config>/templates.d`.
pub fn user_dir(paths: &Paths) -> PathBuf {
    paths.config_dir.join("templates.d")
}

impl Templates {
    /// Built-ins < registry < user, by name.
    pub fn load(paths: &Paths) -> Templates {
        let registry = crate::registry::current_dir(paths).map(|d| d.join("templates"));
        Templates::load_from(registry.as_deref(), &user_dir(paths))
    }

    fn load_from(registry: Option<&Path>, user: &Path) -> Templates {
        let mut out = Templates::default();
        for (name, text) in BUILTIN {
            match parse(Path::new(name), text, "builtin".into()) {
                Ok(t) => {
                    out.by_name.insert(t.name.clone(), t);
                }
                Err(e) => out.warnings.push(format!("built-in {e}")),
            }
        }
        for dir in registry.into_iter().chain([user]) {
            for (path, text) in toml_files(dir, &mut out.warnings) {
                match parse(&path, &text, path.display().to_string()) {
                    Ok(t) => {
                        out.by_name.insert(t.name.clone(), t);
                    }
                    Err(e) => out.warnings.push(format!("{e}; skipped")),
                }
            }
        }
        out
    }

    /// The list a caller sees: every template, or those for `agent`.
    pub fn list(&self, agent: Option<&str>) -> TemplateList {
        let templates = self
            .by_name
            .values()
            .filter(|t| agent.is_none_or(|a| t.agents.iter().any(|x| x == a)))
            .cloned()
            .collect();
        TemplateList { templates, warnings: self.warnings.clone() }
    }
}

fn parse(path: &Path, text: &str, source: String) -> Result<TemplateInfo> {
    let f: File = crate::config::from_toml(path, text)?;
    if !valid_id(&f.name) {
        bail!(at(
            path,
            line_of(text, "name"),
            format_args!("name: `{}` must match [a-z0-9][a-z0-9_-]*", f.name)
        ));
    }
    if f.agents.is_empty() {
        bail!(at(path, line_of(text, "agents"), "agents: name at least one agent"));
    }
    if let Some(bad) = f.agents.iter().find(|a| !valid_id(a)) {
        bail!(at(
            path,
            line_of(text, "agents"),
            format_args!("agents: `{bad}` is not an agent id")
        ));
    }
    if let Some(extra) = f.agent.keys().find(|a| !f.agents.contains(a)) {
        bail!(at(
            path,
            line_of(text, &format!("[agent.{extra}")),
            format_args!("[agent.{extra}]: `{extra}` is not in `agents`")
        ));
    }
    let base = Settings {
        provider: f.provider,
        endpoint: f.endpoint,
        model: f.model,
        hooks: f.hooks,
        mcp_servers: f.mcp_servers,
    };
    let mut settings = BTreeMap::new();
    for agent in &f.agents {
        let s = match f.agent.get(agent) {
            Some(over) => base.merged(over),
            None => base.clone(),
        };
        let section =
            if f.agent.contains_key(agent) { format!("[agent.{agent}]") } else { "".into() };
        // The same checks config.toml's sets get, with this file's name on them.
        let hooks = hooks::from_config(&s.hooks, None).map_err(|e| {
            at(
                path,
                line_of(text, "[hooks").or(line_of(text, &section)),
                format_args!("hooks: {e:#}"),
            )
        })?;
        let mcp_servers = hooks::mcp_from_config(&s.mcp_servers, None).map_err(|e| {
            at(
                path,
                line_of(text, "[mcp_servers").or(line_of(text, &section)),
                format_args!("mcp_servers: {e:#}"),
            )
        })?;
        for (key, value) in
            [("provider", &s.provider), ("model", &s.model), ("endpoint", &s.endpoint)]
        {
            if value
                .as_deref()
                .is_some_and(|v| v.trim().is_empty() || v.chars().any(char::is_control))
            {
                bail!(at(path, line_of(text, key), format_args!("{key}: must not be empty")));
            }
        }
        settings.insert(
            agent.clone(),
            ForAgent {
                provider: s.provider,
                endpoint: s.endpoint,
                model: s.model,
                hooks,
                mcp_servers,
            },
        );
    }
    Ok(TemplateInfo {
        name: f.name,
        description: f.description,
        agents: f.agents,
        source,
        settings,
    })
}

/// `profiles create --template <name>`: fills the request's provider (when
/// none was given), and its endpoint and model (when not given, and only
/// for the template's own provider: another `-p` makes them meaningless);
/// returns the hooks and MCP servers to add. A name that is no template but
/// a script is the old meaning of `template` (before `script`): used as the
/// script, with a notice.
pub fn apply(
    paths: &Paths,
    name: &str,
    req: &mut CreateRequest,
    notices: &mut Vec<String>,
) -> Result<Option<ForAgent>> {
    let templates = Templates::load(paths);
    let Some(template) = templates.by_name.get(name) else {
        let script = format!("{}.rhai", name.trim_end_matches(".rhai"));
        let is_script = crate::scripting::resolve(paths, &script).is_ok();
        if is_script && req.script.is_none() && !req.provider.is_empty() {
            notices.push(format!(
                "`{name}` is a script, not a template: the option that picks a script is now \
                 `--script {name}` (`script` in the API); using it as the script"
            ));
            req.script = Some(name.to_string());
            return Ok(None);
        }
        let known: Vec<&str> = templates.by_name.keys().map(String::as_str).collect();
        let mut hint = if is_script {
            format!("; `{script}` is a script: pass --script {name}")
        } else {
            String::new()
        };
        // It may be in a file that could not be read.
        for w in &templates.warnings {
            hint.push_str(&format!("; {w}"));
        }
        return Err(NotFound(format!(
            "unknown template `{name}` (known: {}){hint}",
            if known.is_empty() { "none".into() } else { known.join(", ") }
        ))
        .into());
    };
    let Some(given) = template.settings.get(&req.agent) else {
        bail!(
            "template `{name}` is for {}, not {}; see `ringlet profiles templates --agent {}`",
            template.agents.join(", "),
            req.agent,
            req.agent
        );
    };
    let given = given.clone();
    if req.provider.is_empty() {
        match &given.provider {
            Some(p) => req.provider = p.clone(),
            None => bail!("template `{name}` names no provider; pass --provider"),
        }
    }
    if given.provider.as_deref() == Some(req.provider.as_str()) {
        if req.endpoint.is_none() {
            req.endpoint = given.endpoint.clone();
        }
        if req.model.is_none() {
            req.model = given.model.clone();
        }
    }
    Ok(Some(given))
}

/// The fields of a template file that decide where a key goes or what runs
/// (for `registry inspect --changes`): provider and endpoint, hook commands,
/// MCP server commands (with their arguments) and URLs, per section, as
/// `(field, value)` pairs in file order of sections.
pub fn command_bearing(path: &Path, text: &str) -> Result<Vec<(String, String)>> {
    let f: File = crate::config::from_toml(path, text)?;
    let base = Settings {
        provider: f.provider,
        endpoint: f.endpoint,
        model: None,
        hooks: f.hooks,
        mcp_servers: f.mcp_servers,
    };
    let mut out = Vec::new();
    let sections = std::iter::once((String::new(), &base))
        .chain(f.agent.iter().map(|(a, s)| (format!("agent.{a}."), s)));
    for (prefix, s) in sections {
        let scalars = [("provider", &s.provider), ("endpoint", &s.endpoint)];
        for (key, value) in scalars {
            if let Some(v) = value {
                out.push((format!("{prefix}{key}"), v.clone()));
            }
        }
        for (name, set) in &s.hooks {
            if let Some(cmd) = set.get("command").and_then(toml::Value::as_str) {
                out.push((format!("{prefix}hooks.{name}.command"), cmd.to_string()));
            }
        }
        for (name, server) in &s.mcp_servers {
            if let Some(cmd) = server.get("command").and_then(toml::Value::as_str) {
                let args: Vec<&str> = server
                    .get("args")
                    .and_then(toml::Value::as_array)
                    .map(|a| a.iter().filter_map(toml::Value::as_str).collect())
                    .unwrap_or_default();
                let line = std::iter::once(cmd).chain(args).collect::<Vec<_>>().join(" ");
                out.push((format!("{prefix}mcp_servers.{name}.command"), line));
            }
            if let Some(url) = server.get("url").and_then(toml::Value::as_str) {
                out.push((format!("{prefix}mcp_servers.{name}.url"), url.to_string()));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtins_load_cleanly_and_name_known_agents_and_providers() {
        let none = Path::new("/nonexistent-ringlet-dir");
        let t = Templates::load_from(None, none);
        assert!(t.warnings.is_empty(), "{:?}", t.warnings);
        let manifests = crate::manifests::Catalog::load_layers(none, None, none);
        for (file, text) in BUILTIN {
            let info = parse(Path::new(file), text, "builtin".into()).unwrap();
            assert_eq!(format!("{}.toml", info.name), *file);
            for (agent, s) in &info.settings {
                let a = manifests.agent(agent).unwrap_or_else(|| panic!("{file}: {agent}"));
                let p = manifests.provider(s.provider.as_deref().unwrap()).unwrap();
                assert!(
                    a.manifest.profile.provider_types.contains(&p.manifest.kind),
                    "{file}: {agent}"
                );
                p.manifest.resolve_endpoint(s.endpoint.as_deref()).unwrap();
            }
        }
    }

    #[test]
    fn per_agent_sections_override_and_bad_files_name_the_line() {
        let good = "name = \"t\"\nagents = [\"claude\", \"codex\"]\nprovider = \"zai\"\nmodel = \"glm-5.1\"\n\
                    [hooks.fmt]\nevent = \"Stop\"\ncommand = \"x\"\n[agent.codex]\nprovider = \"zai-openai\"\n";
        let t = parse(Path::new("t.toml"), good, "x".into()).unwrap();
        assert_eq!(t.settings["claude"].provider.as_deref(), Some("zai"));
        assert_eq!(t.settings["codex"].provider.as_deref(), Some("zai-openai"));
        assert_eq!(t.settings["codex"].model.as_deref(), Some("glm-5.1"));
        assert!(t.settings["claude"].hooks.contains_key("Stop"));

        let err =
            |text: &str| parse(Path::new("t.toml"), text, "x".into()).unwrap_err().to_string();
        let e = err("name = \"t\"\nagents = [\"claude\"]\n[agent.codex]\nmodel = \"m\"\n");
        assert_eq!(e, "t.toml:3: [agent.codex]: `codex` is not in `agents`");
        let e = err(
            "name = \"t\"\nagents = [\"claude\"]\n[hooks.x]\nevent = \"stop\"\ncommand = \"y\"\n",
        );
        assert!(e.starts_with("t.toml:3: hooks:") && e.contains("unknown hook event"), "{e}");
        let e = err("name = \"T T\"\nagents = [\"claude\"]\n");
        assert!(e.starts_with("t.toml:1: name:"), "{e}");
        let e = err("name = \"t\"\nagents = []\n");
        assert!(e.starts_with("t.toml:2: agents:"), "{e}");
        let e = err("name = \"t\"\nagents = [\"claude\"]\nprovder = \"x\"\n");
        assert!(e.starts_with("t.toml:3:"), "{e}");
    }

    #[test]
    fn command_bearing_fields_are_listed_per_section() {
        let text = "name = \"t\"\nagents = [\"claude\", \"codex\"]\nprovider = \"zai\"\n\
                    endpoint = \"https://x.example\"\nmodel = \"m\"\n\
                    [hooks.fmt]\nevent = \"Stop\"\ncommand = \"cargo fmt\"\n\
                    [mcp_servers.docs]\ncommand = \"npx\"\nargs = [\"-y\", \"docs\"]\n\
                    [mcp_servers.web]\nurl = \"http://h/mcp\"\n\
                    [agent.codex]\nprovider = \"zai-openai\"\n";
        let fields = command_bearing(Path::new("t.toml"), text).unwrap();
        let fields: Vec<(&str, &str)> =
            fields.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(
            fields,
            [
                ("provider", "zai"),
                ("endpoint", "https://x.example"),
                ("hooks.fmt.command", "cargo fmt"),
                ("mcp_servers.docs.command", "npx -y docs"),
                ("mcp_servers.web.url", "http://h/mcp"),
                ("agent.codex.provider", "zai-openai"),
            ]
        );
        assert!(command_bearing(Path::new("t.toml"), "name = [").is_err());
    }
}

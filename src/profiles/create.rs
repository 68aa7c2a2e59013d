//! `profiles create`: resolve agent, provider, endpoint, model, hooks and MCP
//! servers; render the script before anything is written (so a broken script
//! or a bad path fails with nothing on disk); then record the intent, write
//! the home, store the key, install the shim and write the profile file last
//! (the commit point). A failure after the first write undoes every earlier
//! step: a failed create leaves nothing behind, and a killed one is rolled
//! back at the next daemon start (`recover`).

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use anyhow::{Result, anyhow, bail};
use serde::{Deserialize, Serialize};

use super::render::{self, FileOut, KeyValue};
use super::{Conflict, NotFound, Profile, Services, aliases, check_alias, hooks, recover};
use crate::fsutil::crash_point;
use crate::manifests::ProviderType;
use crate::paths::expand_tilde;
use crate::secrets::StoreKind;

/// What `profiles create` asks for (the CLI's flags, plus the key it read).
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CreateRequest {
    pub agent: String,
    pub alias: String,
    pub provider: String,
    pub endpoint: Option<String>,
    pub model: Option<String>,
    /// Hook sets from config.toml; `None` = all of them.
    pub hooks: Option<Vec<String>>,
    /// MCP servers from config.toml; `None` = all of them.
    pub mcp: Option<Vec<String>>,
    pub bare: bool,
    pub proxy: bool,
    /// A profile template (`profiles templates`): provider, endpoint, model,
    /// hooks and MCP servers, each overridden by the field given here. A
    /// name that is no template but a script is the old meaning of this
    /// field (see `script`): accepted, with a notice.
    pub template: Option<String>,
    /// The Rhai script to render with (`name` or `name.rhai`); `None` =
    /// the agent's own. (Called `template` before templates existed.)
    pub script: Option<String>,
    pub dry_run: bool,
    pub api_key: Option<String>,
    /// Install the `~/.local/bin/<alias>` shim.
    pub alias_shim: bool,
    /// The CLI's PATH, to refuse a shim that would shadow a command.
    pub path: Option<String>,
    /// `--permission-mode`; `None` = ask.
    pub permission_mode: Option<String>,
}

// Hand-written so the key can never reach a log or a panic message.
impl std::fmt::Debug for CreateRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreateRequest")
            .field("agent", &self.agent)
            .field("alias", &self.alias)
            .field("provider", &self.provider)
            .field("api_key", &self.api_key.as_ref().map(|_| render::REDACTED))
            .finish_non_exhaustive()
    }
}

/// What a create did (or, with `dry_run`, would do).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Created {
    pub profile: Profile,
    pub dry_run: bool,
    pub files: Vec<FileOut>,
    /// Variables a run sets (the key redacted).
    pub env: BTreeMap<String, String>,
    pub args: Vec<String>,
    /// Things the user should know (file store fallback, shim not installed).
    pub notices: Vec<String>,
}

pub fn create(s: &Services<'_>, mut req: CreateRequest) -> Result<Created> {
    check_alias(&req.alias)?;
    let agent = s.catalog.agent(&req.agent).ok_or_else(|| {
        let known: Vec<&str> = s.catalog.agents.iter().map(|a| a.manifest.id.as_str()).collect();
        NotFound(format!("unknown agent `{}` (known: {})", req.agent, known.join(", ")))
    })?;
    // Things the user should know (file store fallback, shim not installed,
    // a model the catalog does not know).
    let mut notices = Vec::new();
    let template = match req.template.clone() {
        Some(name) => crate::templates::apply(s.paths, &name, &mut req, &mut notices)?,
        None => None,
    };
    let provider = s.catalog.provider(&req.provider).ok_or_else(|| {
        let known: Vec<&str> = s.catalog.providers.iter().map(|p| p.manifest.id.as_str()).collect();
        NotFound(format!("unknown provider `{}` (known: {})", req.provider, known.join(", ")))
    })?;
    let (agent, provider) = (&agent.manifest, &provider.manifest);
    if !agent.profile.provider_types.contains(&provider.kind) {
        let types: Vec<&str> = agent.profile.provider_types.iter().map(|t| t.as_str()).collect();
        bail!(
            "{} cannot use provider `{}`: it speaks {}, and {} supports {}",
            agent.name,
            provider.id,
            provider.kind.as_str(),
            agent.id,
            types.join(", ")
        );
    }
    let endpoint = provider.resolve_endpoint(req.endpoint.as_deref())?;
    let model = req
        .model
        .clone()
        .or_else(|| provider.models.default.clone())
        .or_else(|| agent.models.default.clone())
        .ok_or_else(|| {
            anyhow!("provider `{}` names no default model; pass --model", provider.id)
        })?;
    if model.trim().is_empty() || model.chars().any(char::is_control) {
        bail!("invalid model name `{}`", model.escape_debug());
    }
    // Not an error: catalogs lag behind providers, and a typo shows here.
    if let Some(warning) = crate::catalog::ModelCatalog::load(s.paths).check_model(provider, &model)
    {
        notices.push(warning);
    }
    if req.proxy {
        // Before the key is asked for or anything is written.
        crate::proxy::manage::refuse_self(provider)?;
    }
    let permission_mode = match &req.permission_mode {
        Some(mode) => render::PermissionMode::parse(mode)?,
        None => render::PermissionMode::default(),
    };

    let key_needed = provider.kind != ProviderType::SelfAuth && provider.auth.required;
    let key = match (&req.api_key, key_needed) {
        (Some(_), _) if provider.kind == ProviderType::SelfAuth => {
            bail!("provider `{}` uses the agent's own login and takes no API key", provider.id)
        }
        (Some(k), _) => Some(check_key(k)?),
        // A dry run shows the key as <redacted> and stores nothing.
        (None, true) if req.dry_run => None,
        (None, true) => bail!(
            "provider `{}` needs an API key: type it at the prompt, pass --api-key-stdin, or set {}",
            provider.id,
            provider.auth.env_key.as_deref().unwrap_or("its key variable")
        ),
        (None, false) => None,
    };

    let (hooks, mcp_servers) = if req.bare {
        Default::default()
    } else {
        let hooks = hooks::from_config(&s.config.hooks, req.hooks.as_deref())?;
        if !agent.supports_hooks && req.hooks.is_some() && !hooks.is_empty() {
            bail!(
                "{} has no hooks; --hooks works with agents that support them (claude)",
                agent.name
            );
        }
        let mut hooks = if agent.supports_hooks { hooks } else { Default::default() };
        let mut mcp = hooks::mcp_from_config(&s.config.mcp_servers, req.mcp.as_deref())?;
        // The template's come on top of config.toml's: its hooks first, then
        // the user's; an MCP server of the same name is the user's.
        if let Some(t) = &template {
            if agent.supports_hooks {
                let mut merged = t.hooks.clone();
                for (event, groups) in hooks {
                    let into = merged.entry(event).or_insert_with(|| serde_json::json!([]));
                    if let (Some(into), Some(groups)) = (into.as_array_mut(), groups.as_array()) {
                        into.extend(groups.iter().cloned());
                    }
                }
                hooks = merged;
            } else if !t.hooks.is_empty() {
                notices.push(format!(
                    "template `{}` sets hooks, which {} does not support; they are left out",
                    req.template.as_deref().unwrap_or_default(),
                    agent.name
                ));
            }
            for (name, server) in &t.mcp_servers {
                mcp.entry(name.clone()).or_insert_with(|| server.clone());
            }
        }
        (hooks, mcp)
    };
    let script = match &req.script {
        Some(name) if name.ends_with(".rhai") => name.clone(),
        Some(name) => format!("{name}.rhai"),
        None => agent.profile.script.clone(),
    };
    let home =
        expand_tilde(&agent.profile.source_home.replace("{alias}", &req.alias), &s.paths.home);
    let profile = Profile {
        alias: req.alias.clone(),
        agent: agent.id.clone(),
        provider: provider.id.clone(),
        endpoint_name: endpoint.as_ref().map(|e| e.name.clone()),
        endpoint: endpoint.map(|e| e.url),
        model,
        home,
        strategy: agent.profile.strategy,
        script,
        hooks,
        mcp_servers,
        proxy: req.proxy,
        routing: crate::proxy::Routing {
            // Chosen now and kept, so the rendered files and `profiles env`
            // point at the port the proxy will listen on.
            port: if req.proxy {
                Some(crate::proxy::manage::choose_unused_port(s, &req.alias)?)
            } else {
                None
            },
            ..Default::default()
        },
        secret: None,
        alias_shim: None,
        permission_mode,
        created_at: crate::time::now_rfc3339(),
        last_used: None,
        runs: 0,
    };
    if s.store.load(&req.alias)?.is_some() {
        return Err(Conflict(format!("profile `{}` already exists", req.alias)).into());
    }

    // Everything that can fail without side effects happens first.
    let rendered = render::render(s.paths, &profile, agent, provider, s.config)?;
    let mut env = render::isolation_env(&profile, agent);
    let (script_env, args) =
        render::substitute_all(&rendered.env, &rendered.args, KeyValue::Redacted)?;
    env.extend(script_env);
    let files = render::preview_files(&profile.home, &rendered)?;
    let path_var = req.path.as_deref().map(std::ffi::OsStr::new);
    // Not errors: the profile works without either, but the user should know
    // before typing a key (the CLI shows a dry run's notices first).
    if req.path.is_some()
        && super::run::find_agent(&agent.commands(), req.path.as_deref()).is_none()
    {
        notices.push(format!(
            "{} is not installed (no `{}` on your PATH): the profile is created, but running it \
             needs the agent installed (`ringlet agents inspect {}` shows where it is looked for)",
            agent.name,
            agent.commands().join("` or `"),
            agent.id
        ));
    }
    if req.alias_shim {
        match aliases::check(&s.paths.home, &req.alias, path_var) {
            Ok(_) => notices.extend(aliases::path_notice(&s.paths.home, &req.alias, path_var)),
            Err(e) if req.dry_run => {
                notices.push(format!("no shell alias would be installed: {e:#}"))
            }
            // The real install below says why.
            Err(_) => {}
        }
    }
    if req.dry_run {
        return Ok(Created { profile, dry_run: true, files, env, args, notices });
    }

    let lock = s.store.lock()?;
    if s.store.load(&req.alias)?.is_some() {
        return Err(Conflict(format!("profile `{}` already exists", req.alias)).into());
    }
    // The port was chosen before the lock (the render needs it): another
    // profile may have been given the same one since. Refuse, nothing done.
    if let Some(port) = profile.routing.port {
        crate::proxy::manage::check_port_free_among_profiles(s, &req.alias, port)
            .map_err(|e| Conflict(format!("{e:#} (it was just taken: run the command again)")))?;
    }
    let mut undo = Undo {
        s,
        alias: &req.alias,
        secret: None,
        token: false,
        home: None,
        shim: false,
        intent: false,
    };
    let mut profile = profile;
    if !profile.home.exists() {
        undo.home = Some(profile.home.clone());
    }
    // Crash safety (see `recover`): the intent first, then the home, the key
    // and the shim, and the profile file last, as the commit point. A daemon
    // killed before the commit has its leftovers removed at the next start.
    let intent = recover::Intent {
        alias: req.alias.clone(),
        secret: None,
        home: undo.home.clone(),
        shim: req.alias_shim,
    };
    recover::begin(s.store, &lock, recover::Op::Create, &intent)?;
    undo.intent = true;
    crash_point("create:intent");
    render::ensure_home(&profile, agent)?;
    // A proxied agent gets the proxy's local token, never the key.
    let agent_key = if profile.proxy {
        undo.token = true;
        Some(crate::proxy::keys::local_token(s.secrets, &req.alias)?)
    } else {
        key.clone()
    };
    render::write_files(&profile.home, &rendered, agent_key.as_deref())?;
    crash_point("create:home");
    if let Some(key) = &key {
        let stored = s.secrets.set(&req.alias, key)?;
        undo.secret = Some(stored.kind);
        profile.secret = Some(stored.kind);
        if let Some(reason) = stored.fallback_reason {
            notices.push(format!(
                "{reason}: the key is stored in {}",
                s.secrets.describe(StoreKind::File)
            ));
        }
    }
    crash_point("create:key");
    if req.alias_shim {
        let exe = std::env::current_exe()?;
        match aliases::install(
            &s.paths.home,
            &exe,
            &req.alias,
            req.path.as_deref().map(Path::new).map(Path::as_os_str),
        ) {
            Ok(path) => {
                undo.shim = true;
                profile.alias_shim = Some(path);
            }
            Err(e) => notices.push(format!("no shell alias installed: {e:#}")),
        }
    }
    crash_point("create:shim");
    s.store.save(&lock, &profile)?;
    undo.disarm();
    crash_point("create:profile");
    recover::finish(s.store, &lock, recover::Op::Create, &req.alias);
    recover::forget_missing(&req.alias);
    Ok(Created { profile, dry_run: false, files, env, args, notices })
}

/// API keys are printable ASCII without spaces or quotes; anything else is a
/// paste accident (a newline, a smart quote) and would also break the JSON
/// and TOML strings the key is substituted into.
pub(crate) fn check_key(key: &str) -> Result<String> {
    let key = key.trim();
    if key.is_empty() {
        bail!("the API key is empty");
    }
    if let Some(bad) =
        key.chars().find(|c| !c.is_ascii_graphic() || matches!(c, '"' | '\'' | '\\' | '`'))
    {
        bail!(
            "the API key contains {}, which no API key has (a paste accident?)",
            if bad.is_control() || bad.is_whitespace() {
                "a space or control character".to_string()
            } else {
                format!("`{bad}`")
            }
        );
    }
    if key.len() > 4096 {
        bail!("the API key is {} bytes long; that is not an API key", key.len());
    }
    Ok(key.to_string())
}

/// Undoes a half-done create when dropped armed.
struct Undo<'a, 'b> {
    s: &'a Services<'b>,
    alias: &'a str,
    secret: Option<StoreKind>,
    /// Whether a proxy local token may have been created.
    token: bool,
    home: Option<std::path::PathBuf>,
    shim: bool,
    /// Whether the intent file is there to remove.
    intent: bool,
}

impl Undo<'_, '_> {
    fn disarm(&mut self) {
        self.secret = None;
        self.token = false;
        self.home = None;
        self.shim = false;
        self.intent = false;
    }
}

impl Drop for Undo<'_, '_> {
    fn drop(&mut self) {
        if let Some(kind) = self.secret
            && let Err(e) = self.s.secrets.delete(kind, self.alias)
        {
            crate::warn!("undoing create of {}: removing the key: {e:#}", self.alias);
        }
        if self.token
            && let Err(e) = crate::proxy::keys::remove_local_token(self.s.secrets, self.alias)
        {
            crate::warn!("undoing create of {}: removing the proxy token: {e:#}", self.alias);
        }
        if let Some(home) = &self.home
            && let Err(e) = fs::remove_dir_all(home)
        {
            crate::warn!("undoing create of {}: removing {}: {e}", self.alias, home.display());
        }
        if self.shim {
            let _ = aliases::uninstall(&self.s.paths.home, self.alias);
        }
        // Last: with the intent gone, nothing is left to roll back.
        if self.intent {
            recover::abandon(self.s.store, recover::Op::Create, self.alias);
        }
    }
}

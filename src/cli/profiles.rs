//! `ringlet profiles ...`, `stats` and `env setup`: build the request,
//! send it, render the reply. The API key is read here (hidden prompt,
//! `--api-key-stdin`, or the provider's variable), never from argv, and goes
//! to the daemon only inside the create request.

use anyhow::{Result, bail};
use serde_json::Value;

use super::style::{self, Tone};
use super::{Ctx, Exit, Invocation, Out, Table, UsageError, fetch, launch, prompt, warn_all};
use crate::client;
use crate::protocol::{
    CreateRequest, Created, Deleted, ProfileEnv, ProfileList, ProfileView, ProviderInfo, Request,
    RunPlan, Stats, TemplateList,
};

fn list_value(inv: &Invocation, name: &str) -> Option<Vec<String>> {
    inv.value(name)
        .map(|v| v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect())
}

pub fn create(ctx: &Ctx, inv: &Invocation) -> Result<()> {
    let request = CreateRequest {
        agent: inv.arg("agent").unwrap_or_default().into(),
        alias: inv.arg("alias").unwrap_or_default().into(),
        provider: inv.value("provider").unwrap_or_default().into(),
        endpoint: inv.value("endpoint").map(String::from),
        model: inv.value("model").map(String::from),
        hooks: list_value(inv, "hooks"),
        mcp: list_value(inv, "mcp"),
        bare: inv.flag("bare"),
        proxy: inv.flag("proxy"),
        template: inv.value("template").map(String::from),
        script: inv.value("script").map(String::from),
        dry_run: inv.flag("dry-run"),
        api_key: None,
        alias_shim: !inv.flag("no-alias"),
        path: std::env::var("PATH").ok(),
        permission_mode: inv.value("permission-mode").map(String::from),
    };
    // Before the key prompt: a typo must not cost typing the key again.
    // (The daemon checks it too, for every client.)
    if let Some(mode) = &request.permission_mode {
        crate::profiles::render::PermissionMode::parse(mode)?;
    }
    let mut request = request;
    if request.provider.is_empty() {
        if request.template.is_none() {
            return Err(
                UsageError("missing required option --provider (or --template)".into()).into()
            );
        }
        // The template names the provider, whose key is asked for next: a
        // dry run resolves it, and fails (unknown template, another agent's)
        // before anything is typed.
        let probe = CreateRequest { dry_run: true, api_key: None, ..request.clone() };
        let paths = ctx.paths()?;
        let dry: Created =
            serde_json::from_value(client::request(&paths, &Request::ProfilesCreate(probe))?)?;
        request.provider = dry.profile.provider;
    }
    create_with(ctx, request, inv.flag("api-key-stdin"))
}

/// Reads the key the way the provider needs it, sends the create and
/// renders the result (`init` uses it too).
pub fn create_with(ctx: &Ctx, mut request: CreateRequest, key_from_stdin: bool) -> Result<()> {
    let paths = ctx.paths()?;
    let provider_id = request.provider.clone();
    let provider_id = provider_id.as_str();
    let dry_run = request.dry_run;
    let provider: ProviderInfo = serde_json::from_value(client::request(
        &paths,
        &Request::ProvidersInspect { id: provider_id.into() },
    )?)?;
    // Before the key prompt, as the daemon would refuse it after.
    if request.proxy && provider.kind == "self" {
        bail!(
            "--proxy: provider `{}` uses the agent's own login, which cannot go through the \
             proxy (it relays with API keys); use a provider with an API key",
            provider.id
        );
    }
    let needs_key = provider.kind != "self" && provider.auth_required;
    // Notices already shown (by the check before the prompt).
    let mut shown: Vec<String> = Vec::new();
    let api_key = if provider.kind == "self" {
        if key_from_stdin {
            bail!("provider `{}` uses the agent's own login and takes no API key", provider.id);
        }
        None
    } else if key_from_stdin {
        Some(prompt::key_from_stdin()?)
    } else if let Some(key) = provider
        .auth_env_key
        .as_ref()
        .and_then(|var| std::env::var(var).ok())
        .filter(|k| !k.trim().is_empty())
    {
        if !ctx.global.json {
            eprintln!(
                "ringlet: using the key in ${}",
                provider.auth_env_key.as_deref().unwrap_or_default()
            );
        }
        Some(key)
    } else if needs_key && !dry_run {
        // Everything cheap is checked before the key is typed: the daemon
        // validates the request as a dry run (the same code as the real
        // create: name, pairing, existing profile, endpoint, hooks,
        // template, proxy flags, shim), so a typo never costs the key.
        let probe = CreateRequest { dry_run: true, api_key: None, ..request.clone() };
        let dry: Created =
            serde_json::from_value(client::request(&paths, &Request::ProfilesCreate(probe))?)?;
        if !ctx.global.json {
            warn_each(&dry.notices);
        }
        shown = dry.notices;
        let label = provider
            .manifest
            .as_ref()
            .and_then(|m| m["auth"]["prompt"].as_str())
            .map(String::from)
            .unwrap_or_else(|| format!("{} API key", provider.name));
        let var = provider.auth_env_key.as_deref().unwrap_or("the provider's key variable");
        Some(prompt::hidden(&label).map_err(|e| {
            anyhow::anyhow!(
                "provider `{}` needs an API key: {e:#}; pass --api-key-stdin or set {var}",
                provider.id
            )
        })?)
    } else {
        None
    };
    request.api_key = api_key;
    let data = client::request(&paths, &Request::ProfilesCreate(request))?;
    let mut out = Out::new();
    if ctx.global.json {
        out.json(&data)?;
        return Ok(out.finish()?);
    }
    let c: Created = serde_json::from_value(data)?;
    let fresh: Vec<String> = c.notices.iter().filter(|n| !shown.contains(n)).cloned().collect();
    warn_each(&fresh);
    let p = &c.profile;
    if c.dry_run {
        out.line("Dry run: nothing was written.")?;
        out.line(format_args!(
            "Profile {}: {} with {} ({})",
            p.alias, p.agent, p.provider, p.model
        ))?;
    } else {
        out.line(format_args!(
            "Created profile {}: {} with {} ({})",
            p.alias, p.agent, p.provider, p.model
        ))?;
    }
    out.line(format_args!("  home:      {}", p.home.display()))?;
    out.line(format_args!(
        "  endpoint:  {}",
        p.endpoint.as_deref().unwrap_or("- (the agent's own login)")
    ))?;
    if let (true, Some(port)) = (p.proxy, p.routing.port) {
        out.line(format_args!("  proxy:     on, port {port} (the agent talks only to its proxy)"))?;
    }
    out.line(format_args!("  mode:      {} (permission mode)", p.permission_mode.as_str()))?;
    if let Some(kind) = p.secret {
        out.line(format_args!("  key:       stored in the {}", store_name(kind)))?;
    }
    if let Some(shim) = &p.alias_shim {
        out.line(format_args!("  alias:     {}", shim.display()))?;
    }
    if c.dry_run {
        out.line("Files:")?;
        for f in &c.files {
            let merged = if f.merged { ", keeping the agent's records from the file" } else { "" };
            out.line(format_args!("  {} (mode {}{merged})", f.path, f.mode))?;
            for line in f.content.lines() {
                out.line(format_args!("    {line}"))?;
            }
        }
        out.line("Environment of a run:")?;
        for (k, v) in &c.env {
            out.line(format_args!("  {k}={v}"))?;
        }
        if !c.args.is_empty() {
            out.line(format_args!("Arguments: {}", c.args.join(" ")))?;
        }
    } else {
        out.line(format_args!("Run it with: ringlet profiles run {}", p.alias))?;
    }
    Ok(out.finish()?)
}

/// Prints each warning on stderr, `ringlet: warning: ...`, coloured.
pub(super) fn warn_each(warnings: &[String]) {
    for w in warnings {
        warn(w);
    }
}

/// One warning on stderr, coloured on a terminal.
pub(super) fn warn(text: &str) {
    eprintln!("ringlet: {} {text}", style::err(Tone::Warn, "warning:"));
}

fn store_name(kind: crate::secrets::StoreKind) -> &'static str {
    match kind {
        crate::secrets::StoreKind::Keyring => "OS keychain",
        crate::secrets::StoreKind::File => "file store (0600)",
    }
}

pub fn list(ctx: &Ctx, inv: &Invocation) -> Result<()> {
    let agent = inv.value("agent").map(String::from);
    let mut out = Out::new();
    let Some(list) = fetch::<ProfileList>(ctx, &Request::ProfilesList { agent }, &mut out)? else {
        return Ok(out.finish()?);
    };
    warn_all(&list.warnings);
    let mut table = Table::new(&["ALIAS", "AGENT", "PROVIDER", "MODEL", "RUNS", "LAST USED"]);
    for v in &list.profiles {
        let p = &v.profile;
        table.row(vec![
            if v.key_missing { format!("{} (key missing)", p.alias) } else { p.alias.clone() },
            p.agent.clone(),
            p.provider.clone(),
            p.model.clone(),
            p.runs.to_string(),
            p.last_used.clone().unwrap_or_default(),
        ]);
    }
    table.write(&mut out)?;
    Ok(out.finish()?)
}

/// `profiles templates [--agent A]`: one row per template and agent.
pub fn templates(ctx: &Ctx, inv: &Invocation) -> Result<()> {
    let agent = inv.value("agent").map(String::from);
    let mut out = Out::new();
    let request = Request::ProfilesTemplates { agent: agent.clone() };
    let Some(list) = fetch::<TemplateList>(ctx, &request, &mut out)? else {
        return Ok(out.finish()?);
    };
    warn_all(&list.warnings);
    let mut table =
        Table::new(&["NAME", "AGENT", "PROVIDER", "ENDPOINT", "MODEL", "SOURCE", "DESCRIPTION"]);
    for t in &list.templates {
        for (id, s) in &t.settings {
            if agent.as_deref().is_some_and(|a| a != id) {
                continue;
            }
            table.row(vec![
                t.name.clone(),
                id.clone(),
                s.provider.clone().unwrap_or_else(|| "-".into()),
                s.endpoint.clone().unwrap_or_else(|| "-".into()),
                s.model.clone().unwrap_or_else(|| "-".into()),
                t.source.clone(),
                t.description.clone(),
            ]);
        }
    }
    table.write(&mut out)?;
    Ok(out.finish()?)
}

pub fn inspect(ctx: &Ctx, alias: &str) -> Result<()> {
    let mut out = Out::new();
    let Some(v) =
        fetch::<ProfileView>(ctx, &Request::ProfilesInspect { alias: alias.into() }, &mut out)?
    else {
        return Ok(out.finish()?);
    };
    let p = &v.profile;
    out.line(format_args!("{}", p.alias))?;
    out.line(format_args!("  agent:      {}", p.agent))?;
    out.line(format_args!("  provider:   {}", p.provider))?;
    let endpoint = match (&p.endpoint, &p.endpoint_name) {
        (Some(url), Some(name)) => format!("{url} ({name})"),
        (Some(url), None) => url.clone(),
        (None, _) => "- (the agent's own login)".into(),
    };
    out.line(format_args!("  endpoint:   {endpoint}"))?;
    out.line(format_args!("  model:      {}", p.model))?;
    let missing = if v.home_exists { "" } else { " (missing: recreated on the next run)" };
    out.line(format_args!("  home:       {}{missing}", p.home.display()))?;
    out.line(format_args!(
        "  isolation:  {}",
        serde_json::to_value(p.strategy)?.as_str().unwrap_or("")
    ))?;
    out.line(format_args!("  script:     {}", p.script))?;
    out.line(format_args!("  permission: {}", p.permission_mode.as_str()))?;
    let r = &p.routing;
    let routing = format!(
        "{} rule(s), {} alias(es) (`ringlet proxy config {}`)",
        r.rules.len(),
        r.aliases.len(),
        p.alias
    );
    match (p.proxy, r.port) {
        (true, Some(port)) => out.line(format_args!("  proxy:      on, port {port}; {routing}"))?,
        (false, _) if r != &crate::proxy::Routing::default() => {
            out.line(format_args!("  proxy:      off; {routing}"))?
        }
        _ => out.line("  proxy:      off")?,
    }
    match p.secret {
        Some(kind) => {
            out.line(format_args!("  api key:    <redacted> (in the {})", store_name(kind)))?
        }
        None => out.line("  api key:    none")?,
    }
    let hooks: usize = crate::profiles::hooks::list(&p.hooks).len();
    out.line(format_args!("  hooks:      {hooks}"))?;
    let mcp: Vec<&str> = p.mcp_servers.keys().map(String::as_str).collect();
    out.line(format_args!(
        "  mcp:        {}",
        if mcp.is_empty() { "-".into() } else { mcp.join(", ") }
    ))?;
    out.line(format_args!(
        "  alias:      {}",
        p.alias_shim.as_ref().map_or("-".into(), |s| s.display().to_string())
    ))?;
    out.line(format_args!("  created:    {}", p.created_at))?;
    out.line(format_args!("  last used:  {}", p.last_used.as_deref().unwrap_or("never")))?;
    out.line(format_args!("  runs:       {}", p.runs))?;
    Ok(out.finish()?)
}

/// `profiles delete <alias> [--purge] [-y]`: the profile, its key and its
/// shim go; the home stays (it holds the agent's history and settings)
/// unless `--purge`, which on a terminal asks first (`-y` does not; with no
/// terminal nothing is asked and `--purge` is taken as given).
pub fn delete(ctx: &Ctx, inv: &Invocation) -> Result<()> {
    let alias = inv.arg("alias").unwrap_or_default();
    let purge = inv.flag("purge");
    let mut out = Out::new();
    if purge && !inv.flag("yes") && !ctx.global.json && prompt::is_terminal() {
        // The home, to name it in the question (and to fail on a typo first).
        let view: ProfileView = serde_json::from_value(client::request(
            &ctx.paths()?,
            &Request::ProfilesInspect { alias: alias.into() },
        )?)?;
        let home = view.profile.home.display().to_string();
        let answer = if view.home_exists {
            prompt::ask(
                &format!(
                    "Delete profile {alias} and everything in its home {home} (the agent's \
                     history and settings)? (yes/no)"
                ),
                "no",
            )?
        } else {
            "yes".into()
        };
        if !matches!(answer.to_ascii_lowercase().as_str(), "y" | "yes") {
            return Err(Exit {
                code: 1,
                message: Some(
                    "profiles delete: nothing deleted (without --purge the home is kept)".into(),
                ),
            }
            .into());
        }
    }
    let request = Request::ProfilesDelete { alias: alias.into(), purge };
    let Some(d) = fetch::<Deleted>(ctx, &request, &mut out)? else { return Ok(out.finish()?) };
    warn_each(&d.notices);
    out.line(format_args!("Deleted profile {}", d.alias))?;
    if d.secret_removed {
        out.line("  removed its API key")?;
    }
    if d.shim_removed {
        out.line("  removed its shell alias")?;
    }
    if let Some(removed) = &d.home_removed {
        out.line(format_args!("  removed {removed}"))?;
    }
    if let Some(home) = &d.home_kept {
        out.line(format_args!(
            "  kept its home {home} (the agent's history and settings: remove it \
             yourself when no longer needed; --purge removes the home with the profile)"
        ))?;
    }
    Ok(out.finish()?)
}

/// `profiles run`: the daemon prepares, we run the agent here.
pub fn run(ctx: &Ctx, inv: &Invocation) -> Result<()> {
    if inv.flag("remote") {
        return super::terminal::create(ctx, inv);
    }
    let paths = ctx.paths()?;
    let request = Request::ProfilesRun {
        alias: inv.arg("alias").unwrap_or_default().into(),
        path: std::env::var("PATH").ok(),
        args: inv.trailing.clone(),
    };
    launch_plan(&paths, client::request(&paths, &request)?)
}

fn launch_plan(paths: &crate::paths::Paths, data: Value) -> Result<()> {
    let plan: RunPlan = serde_json::from_value(data)?;
    warn_all(&plan.notices);
    let code = launch::run(paths, &plan)?;
    if code != 0 {
        return Err(Exit { code, message: None }.into());
    }
    Ok(())
}

/// `profiles env`: `export NAME='value'` lines for `eval`.
pub fn env(ctx: &Ctx, alias: &str) -> Result<()> {
    let mut out = Out::new();
    let Some(e) =
        fetch::<ProfileEnv>(ctx, &Request::ProfilesEnv { alias: alias.into() }, &mut out)?
    else {
        return Ok(out.finish()?);
    };
    for (k, v) in &e.env {
        out.line(format_args!("export {k}={}", shell_quote(v)))?;
    }
    Ok(out.finish()?)
}

/// Single-quotes `s` for POSIX shells: `'` becomes `'\''`.
pub fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

pub fn env_setup(ctx: &Ctx, inv: &Invocation) -> Result<()> {
    let paths = ctx.paths()?;
    let request = Request::EnvSetup {
        alias: inv.arg("alias").unwrap_or_default().into(),
        task: inv.arg("task").unwrap_or_default().into(),
        path: std::env::var("PATH").ok(),
    };
    launch_plan(&paths, client::request(&paths, &request)?)
}

pub fn stats(ctx: &Ctx) -> Result<()> {
    let mut out = Out::new();
    let Some(s) = fetch::<Stats>(ctx, &Request::Stats, &mut out)? else { return Ok(out.finish()?) };
    let mut table =
        Table::new(&["ALIAS", "AGENT", "PROVIDER", "MODEL", "RUNS", "RUN TIME", "LAST USED"]);
    for p in &s.profiles {
        table.row(vec![
            p.alias.clone(),
            p.agent.clone(),
            p.provider.clone(),
            p.model.clone(),
            p.runs.to_string(),
            duration(p.run_secs),
            p.last_used.clone().unwrap_or_default(),
        ]);
    }
    table.write(&mut out)?;
    out.line(format_args!(
        "{} profiles, {} runs, {} in all",
        s.profiles.len(),
        s.total_runs,
        duration(s.total_run_secs)
    ))?;
    Ok(out.finish()?)
}

/// The same words as `usage` for the same seconds (`5m07s`, `3d04h`).
fn duration(secs: u64) -> String {
    super::usage::duration(secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_survives_the_shell() {
        for value in ["plain", "it's", "a b\tc", "$(rm -rf /)", "`x`", "\\n", "'", ""] {
            let out = std::process::Command::new("sh")
                .arg("-c")
                .arg(format!("printf %s {}", shell_quote(value)))
                .output()
                .unwrap();
            assert_eq!(String::from_utf8(out.stdout).unwrap(), value);
        }
    }
}

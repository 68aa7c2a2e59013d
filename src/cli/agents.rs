//! `ringlet agents list|inspect`: what the daemon detected, as a table or JSON.

use anyhow::Result;

use super::{Ctx, Out, Table, fetch, warn_all};
use crate::protocol::{AgentInfo, AgentList, Request};

pub fn list(ctx: &Ctx) -> Result<()> {
    let mut out = Out::new();
    if ctx.global.json {
        fetch::<AgentList>(ctx, &Request::AgentsList, &mut out)?;
        return Ok(out.finish()?);
    }
    // Decoded straight into its type, no JSON value in between: the table
    // a shell prompt or script asks for most (figure 3). Only here: each
    // type decoded this way costs the binary its own decoder.
    let list: AgentList = crate::client::request_as(&ctx.paths()?, &Request::AgentsList)?;
    warn_all(&list.warnings);
    let mut table = Table::new(&["ID", "NAME", "INSTALLED", "VERSION", "PATH"]);
    for a in &list.agents {
        let version = match (&a.version, &a.probe_error) {
            (Some(v), _) => v.clone(),
            (None, Some(_)) if a.installed => "unknown".into(),
            _ => String::new(),
        };
        table.row(vec![
            a.id.clone(),
            a.name.clone(),
            if a.installed { "yes" } else { "no" }.into(),
            version,
            a.path.clone().unwrap_or_default(),
        ]);
    }
    table.write(&mut out)?;
    Ok(out.finish()?)
}

pub fn inspect(ctx: &Ctx, id: &str) -> Result<()> {
    let mut out = Out::new();
    let Some(a) = fetch::<AgentInfo>(ctx, &Request::AgentsInspect { id: id.into() }, &mut out)?
    else {
        return Ok(out.finish()?);
    };
    let m = a.manifest.clone().unwrap_or_default();
    let field = |path: &[&str]| -> String {
        let mut v = &m;
        for p in path {
            v = &v[*p];
        }
        match v {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Array(items) => items
                .iter()
                .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_string))
                .collect::<Vec<_>>()
                .join(", "),
            serde_json::Value::Null => "-".into(),
            other => other.to_string(),
        }
    };
    out.line(format_args!("{} ({})", a.name, a.id))?;
    out.line(format_args!("  source:          {}", a.source))?;
    out.line(format_args!("  binary:          {}", a.binary))?;
    let installed = super::style::state(if a.installed { "yes" } else { "no" });
    out.line(format_args!("  installed:       {installed}"))?;
    if let Some(p) = &a.path {
        out.line(format_args!("  path:            {p}"))?;
    }
    out.line(format_args!("  version:         {}", a.version.as_deref().unwrap_or("-")))?;
    if let Some(e) = &a.probe_error {
        out.line(format_args!("  probe error:     {e}"))?;
    }
    let files = if a.config_files.is_empty() { "-".to_string() } else { a.config_files.join(", ") };
    out.line(format_args!("  config found:    {files}"))?;
    out.line(format_args!("  strategy:        {}", field(&["profile", "strategy"])))?;
    out.line(format_args!("  profile home:    {}", field(&["profile", "source_home"])))?;
    out.line(format_args!("  script:          {}", field(&["profile", "script"])))?;
    out.line(format_args!("  provider types:  {}", field(&["profile", "provider_types"])))?;
    out.line(format_args!("  default model:   {}", field(&["models", "default"])))?;
    out.line(format_args!("  models:          {}", field(&["models", "supported"])))?;
    out.line(format_args!(
        "  hooks:           {}",
        if m["supports_hooks"] == true { "supported" } else { "no" }
    ))?;
    Ok(out.finish()?)
}

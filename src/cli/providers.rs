//! `ringlet providers list|inspect`: providers with their endpoints resolved.

use anyhow::Result;

use super::{Ctx, Out, Table, fetch, warn_all};
use crate::protocol::{ProviderInfo, ProviderList, Request};

pub fn list(ctx: &Ctx) -> Result<()> {
    let mut out = Out::new();
    let Some(list) = fetch::<ProviderList>(ctx, &Request::ProvidersList, &mut out)? else {
        return Ok(out.finish()?);
    };
    warn_all(&list.warnings);
    let mut table = Table::new(&["ID", "NAME", "TYPE", "ENDPOINT", "AUTH ENV", "DEFAULT MODEL"]);
    for p in &list.providers {
        table.row(vec![
            p.id.clone(),
            p.name.clone(),
            p.kind.clone(),
            p.default_endpoint.as_ref().map(|e| e.url.clone()).unwrap_or_default(),
            p.auth_env_key.clone().unwrap_or_default(),
            p.default_model.clone().unwrap_or_default(),
        ]);
    }
    table.write(&mut out)?;
    Ok(out.finish()?)
}

pub fn inspect(ctx: &Ctx, id: &str) -> Result<()> {
    let mut out = Out::new();
    let Some(p) =
        fetch::<ProviderInfo>(ctx, &Request::ProvidersInspect { id: id.into() }, &mut out)?
    else {
        return Ok(out.finish()?);
    };
    out.line(format_args!("{} ({})", p.name, p.id))?;
    out.line(format_args!("  type:           {}", p.kind))?;
    out.line(format_args!("  source:         {}", p.source))?;
    match &p.default_endpoint {
        Some(e) => out.line(format_args!("  endpoint:       {} ({})", e.url, e.name))?,
        None => out.line("  endpoint:       - (the agent's own)")?,
    }
    let width = p.endpoints.iter().map(|e| e.name.len()).max().unwrap_or(0);
    for e in &p.endpoints {
        out.line(format_args!("    {:<width$}  {}", e.name, e.url))?;
    }
    let auth = match (&p.auth_env_key, p.auth_required) {
        (Some(k), true) => format!("{k} (required)"),
        (Some(k), false) => format!("{k} (optional)"),
        (None, _) => "none".into(),
    };
    out.line(format_args!("  auth env key:   {auth}"))?;
    out.line(format_args!("  default model:  {}", p.default_model.as_deref().unwrap_or("-")))?;
    if p.catalog.is_empty() {
        let models = if p.models.is_empty() { "-".to_string() } else { p.models.join(", ") };
        out.line(format_args!("  models:         {models}"))?;
        return Ok(out.finish()?);
    }
    // The catalog's view: context window and price per million tokens.
    out.line(format_args!("  models:         from the catalog ({})", p.catalog[0].source))?;
    let mut table = Table::new(&["MODEL", "CONTEXT", "INPUT $/MTOK", "OUTPUT $/MTOK", "ALIASES"]);
    for m in &p.catalog {
        let usd = |v: Option<f64>| v.map_or("-".into(), |v| format!("${v:.2}"));
        table.row(vec![
            format!("{}{}", m.id, if m.default { " (default)" } else { "" }),
            m.context_window.map_or("-".into(), |c| c.to_string()),
            usd(m.input_usd_per_mtok),
            usd(m.output_usd_per_mtok),
            m.aliases.join(", "),
        ]);
    }
    table.write(&mut out)?;
    Ok(out.finish()?)
}

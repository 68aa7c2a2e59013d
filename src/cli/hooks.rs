//! `ringlet hooks ...` (Claude Code hooks of a profile) and `ringlet
//! aliases ...` (shell shims): thin request/render pairs.

use anyhow::{Context, Result};

use super::{Ctx, Invocation, Out, Table, fetch};
use crate::protocol::{AliasInfo, HookRow, Request};

fn send(ctx: &Ctx, request: Request) -> Result<(Out, Option<serde_json::Value>)> {
    let mut out = Out::new();
    let data = fetch(ctx, &request, &mut out)?;
    Ok((out, data))
}

fn hook_table(out: &mut Out, rows: &[HookRow]) -> Result<()> {
    let mut table = Table::new(&["EVENT", "#", "MATCHER", "COMMAND"]);
    for r in rows {
        table.row(vec![r.event.clone(), r.index.to_string(), r.matcher.clone(), r.command.clone()]);
    }
    Ok(table.write(out)?)
}

pub fn hooks(ctx: &Ctx, inv: &Invocation, action: &str) -> Result<()> {
    let alias = inv.arg("alias").unwrap_or_default().to_string();
    let request = match action {
        "add" => Request::HooksAdd {
            alias,
            event: inv.arg("event").unwrap_or_default().into(),
            command: inv.arg("command").unwrap_or_default().into(),
            matcher: inv.value("matcher").map(String::from),
            timeout: None,
        },
        "list" => Request::HooksList { alias },
        "remove" => {
            let index = inv.arg("index").unwrap_or_default();
            Request::HooksRemove {
                alias,
                event: inv.arg("event").unwrap_or_default().into(),
                index: super::parse::parsed_value("<INDEX>", index, "a hook number")?,
            }
        }
        "import" => {
            let file = inv.arg("file").unwrap_or_default();
            let text = std::fs::read_to_string(file).with_context(|| format!("reading {file}"))?;
            let hooks = serde_json::from_slice(text.as_bytes())
                .with_context(|| format!("{file} is not valid JSON"))?;
            Request::HooksImport { alias, hooks }
        }
        _ => Request::HooksExport { alias },
    };
    let (mut out, data) = send(ctx, request)?;
    let Some(data) = data else { return Ok(out.finish()?) };
    match action {
        "export" => out.json(&data)?,
        "remove" => {
            let row: HookRow = serde_json::from_value(data)?;
            out.line(format_args!("Removed {} hook {}: {}", row.event, row.index, row.command))?;
        }
        _ => hook_table(&mut out, &serde_json::from_value::<Vec<HookRow>>(data)?)?,
    }
    Ok(out.finish()?)
}

pub fn aliases(ctx: &Ctx, inv: &Invocation, action: &str) -> Result<()> {
    let alias = inv.arg("alias").unwrap_or_default().to_string();
    let request = match action {
        "install" => Request::AliasesInstall { alias, path: std::env::var("PATH").ok() },
        "uninstall" => Request::AliasesUninstall { alias },
        _ => Request::AliasesList,
    };
    let (mut out, data) = send(ctx, request)?;
    let Some(data) = data else { return Ok(out.finish()?) };
    match action {
        "install" => {
            let a: AliasInfo = serde_json::from_value(data)?;
            out.line(format_args!("Installed {} (runs profile {})", a.path, a.alias))?;
            super::warn_all(&a.notices);
        }
        "uninstall" => {
            let a: AliasInfo = serde_json::from_value(data)?;
            out.line(format_args!("Removed {}", a.path))?;
        }
        _ => {
            let list: Vec<AliasInfo> = serde_json::from_value(data)?;
            let mut table = Table::new(&["ALIAS", "SHIM", "PROFILE"]);
            for a in list {
                let state = if a.profile_exists { "ok" } else { "missing" };
                table.row(vec![a.alias, a.path, state.into()]);
            }
            table.write(&mut out)?;
        }
    }
    Ok(out.finish()?)
}

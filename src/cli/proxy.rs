//! `ringlet proxy enable|disable|config|route|alias|budget` (a profile's
//! routing) and `ringlet providers key set|remove|list` (the keys other
//! providers' targets need). Provider keys are read from a hidden prompt
//! or `--api-key-stdin`, never from argv, and travel only to the daemon.

use anyhow::{Context, Result, anyhow, bail};

use super::{Ctx, Invocation, Out, Table, fetch, prompt, warn_all};
use crate::client;
use crate::protocol::{ProviderInfo, Request};
use crate::proxy::Budget;
use crate::proxy::config::{AliasRow, KeySource, ProxyView, RuleRow};
use crate::proxy::keys::KeyText;
use crate::proxy::manage::{ProviderKeyRow, ProviderKeySet};
use crate::secrets::StoreKind;

fn alias(inv: &Invocation) -> String {
    inv.arg("alias").unwrap_or_default().to_string()
}

fn priority(inv: &Invocation) -> Result<Option<i64>> {
    Ok(inv.parsed("priority", "a whole number")?)
}

pub fn enable(ctx: &Ctx, inv: &Invocation) -> Result<()> {
    let port: Option<u16> = inv.parsed("port", "a port (1-65535)")?;
    show_config(ctx, Request::ProxyEnable { alias: alias(inv), port })
}

pub fn disable(ctx: &Ctx, inv: &Invocation) -> Result<()> {
    show_config(ctx, Request::ProxyDisable { alias: alias(inv) })
}

pub fn config(ctx: &Ctx, inv: &Invocation) -> Result<()> {
    show_config(ctx, Request::ProxyConfig { alias: alias(inv) })
}

fn show_config(ctx: &Ctx, request: Request) -> Result<()> {
    let mut out = Out::new();
    let Some(v) = fetch::<ProxyView>(ctx, &request, &mut out)? else {
        return Ok(out.finish()?);
    };
    let state = super::style::state(if v.enabled { "enabled" } else { "disabled (routing kept)" });
    out.line(format_args!("Profile {} ({} with {}): proxy {state}", v.alias, v.agent, v.provider))?;
    let port = v.port.map_or("- (chosen at `proxy enable`)".to_string(), |p| p.to_string());
    out.line(format_args!("  port:       {port}"))?;
    if let Some(url) = &v.proxy_url {
        out.line(format_args!("  proxy URL:  {url}"))?;
    }
    out.line(format_args!("  budget:     {}", budget_text(&v.budget)))?;
    out.line(format_args!(
        "  default:    {} (requests no alias or rule matches, with the model asked for)",
        v.default_upstream
    ))?;
    out.line("Aliases (checked first):")?;
    if v.aliases.is_empty() {
        out.line("  none")?;
    } else {
        alias_table(&mut out, &v.aliases, "  ")?;
    }
    out.line("Rules (tried in this order; the first match wins):")?;
    if v.rules.is_empty() {
        out.line("  none")?;
    } else {
        rule_table(&mut out, &v.rules, "  ")?;
    }
    out.line("Upstreams:")?;
    let mut table = Table::new(&["  NAME", "URL", "AUTH", "KEY"]);
    for u in &v.upstreams {
        let provider = u.name.split('@').next().unwrap_or_default();
        let key = match (&u.key, &u.problem) {
            (Some(KeySource::Missing), _) | (None, _) => {
                format!("PROBLEM: {}", u.problem.clone().unwrap_or_default())
            }
            (Some(k), _) => k.describe(provider),
        };
        table.row(vec![
            format!("  {}", u.name),
            u.url.clone().unwrap_or_default(),
            u.auth
                .map(|a| match a {
                    crate::proxy::AuthStyle::XApiKey => "x-api-key",
                    crate::proxy::AuthStyle::Bearer => "bearer",
                })
                .unwrap_or_default()
                .to_string(),
            key,
        ]);
    }
    table.write(&mut out)?;
    Ok(out.finish()?)
}

fn usd(v: Option<f64>) -> Option<String> {
    v.map(|v| format!("${v:.2}"))
}

fn budget_text(b: &Budget) -> String {
    match (usd(b.daily_usd), usd(b.monthly_usd)) {
        (None, None) => "none".into(),
        (Some(d), None) => format!("{d} a day"),
        (None, Some(m)) => format!("{m} a month"),
        (Some(d), Some(m)) => format!("{d} a day, {m} a month"),
    }
}

fn rule_table(out: &mut Out, rules: &[RuleRow], indent: &str) -> Result<()> {
    let mut table = Table::new(&[&format!("{indent}#"), "NAME", "PRIORITY", "CONDITION", "TARGET"]);
    for r in rules {
        table.row(vec![
            format!("{indent}{}", r.order),
            r.name.clone(),
            r.priority.to_string(),
            r.condition.clone(),
            r.target.clone(),
        ]);
    }
    Ok(table.write(out)?)
}

fn alias_table(out: &mut Out, aliases: &[AliasRow], indent: &str) -> Result<()> {
    let mut table = Table::new(&[&format!("{indent}MODEL"), "TARGET"]);
    for a in aliases {
        table.row(vec![format!("{indent}{}", a.model), a.target.clone()]);
    }
    Ok(table.write(out)?)
}

pub fn route(ctx: &Ctx, inv: &Invocation, action: &str) -> Result<()> {
    let alias = alias(inv);
    let name = || inv.arg("name").unwrap_or_default().to_string();
    let request = match action {
        "add" => Request::ProxyRouteAdd {
            alias,
            name: name(),
            condition: {
                let condition = inv.arg("condition").unwrap_or_default();
                check_condition(condition)?;
                condition.to_string()
            },
            target: inv.arg("target").unwrap_or_default().into(),
            priority: priority(inv)?.unwrap_or(0),
        },
        "remove" => Request::ProxyRouteRemove { alias, name: name() },
        "move" => Request::ProxyRouteMove {
            alias,
            name: name(),
            priority: priority(inv)?.context("--priority N is required")?,
        },
        _ => Request::ProxyRouteList { alias },
    };
    let mut out = Out::new();
    let Some(rows) = fetch::<Vec<RuleRow>>(ctx, &request, &mut out)? else {
        return Ok(out.finish()?);
    };
    if rows.is_empty() {
        out.line("No rules: every request goes to the profile's provider.")?;
    } else {
        rule_table(&mut out, &rows, "")?;
    }
    Ok(out.finish()?)
}

/// Checks the condition here first, so a syntax error is shown with a
/// caret under its column (the daemon checks it again, for every client).
fn check_condition(condition: &str) -> Result<()> {
    match crate::proxy::rules::Condition::parse(condition) {
        Ok(_) => Ok(()),
        Err(e) => bail!("bad condition: {e}\n{}", e.render(condition)),
    }
}

pub fn alias_cmd(ctx: &Ctx, inv: &Invocation, action: &str) -> Result<()> {
    let alias = alias(inv);
    let model = inv.arg("from").unwrap_or_default().to_string();
    let request = match action {
        "set" => Request::ProxyAliasSet {
            alias,
            model,
            target: inv.arg("to").unwrap_or_default().into(),
        },
        "remove" => Request::ProxyAliasRemove { alias, model },
        _ => Request::ProxyAliasList { alias },
    };
    let mut out = Out::new();
    let Some(rows) = fetch::<Vec<AliasRow>>(ctx, &request, &mut out)? else {
        return Ok(out.finish()?);
    };
    if rows.is_empty() {
        out.line("No model aliases.")?;
    } else {
        alias_table(&mut out, &rows, "")?;
    }
    Ok(out.finish()?)
}

/// `--daily USD` / `--monthly USD`; `none` removes that limit.
fn limit(inv: &Invocation, name: &str) -> Result<Option<Option<f64>>> {
    let Some(v) = inv.value(name) else { return Ok(None) };
    if matches!(v, "none" | "off") {
        return Ok(Some(None));
    }
    let usd: f64 = super::parse::parsed_value(
        &format!("--{name}"),
        v.trim_start_matches('$'),
        "an amount in USD (or `none`)",
    )?;
    Ok(Some(Some(usd)))
}

pub fn budget(ctx: &Ctx, inv: &Invocation, action: &str) -> Result<()> {
    let alias = alias(inv);
    let request = if action == "set" {
        let (daily, monthly) = (limit(inv, "daily")?, limit(inv, "monthly")?);
        if daily.is_none() && monthly.is_none() {
            return Err(super::UsageError(
                "give --daily USD, --monthly USD or both (`none` removes a limit)".into(),
            )
            .into());
        }
        // The request sets both periods: a period not given keeps its limit.
        let current: Budget = serde_json::from_value(client::request(
            &ctx.paths()?,
            &Request::ProxyBudgetShow { alias: alias.clone() },
        )?)?;
        Request::ProxyBudgetSet {
            alias,
            daily: daily.unwrap_or(current.daily_usd),
            monthly: monthly.unwrap_or(current.monthly_usd),
        }
    } else {
        Request::ProxyBudgetShow { alias }
    };
    let mut out = Out::new();
    let Some(b) = fetch::<Budget>(ctx, &request, &mut out)? else {
        return Ok(out.finish()?);
    };
    out.line(format_args!("daily:    {}", usd(b.daily_usd).unwrap_or_else(|| "no limit".into())))?;
    out.line(format_args!(
        "monthly:  {}",
        usd(b.monthly_usd).unwrap_or_else(|| "no limit".into())
    ))?;
    Ok(out.finish()?)
}

fn store_name(kind: StoreKind) -> &'static str {
    match kind {
        StoreKind::Keyring => "OS keychain",
        StoreKind::File => "file store (0600)",
    }
}

pub fn key(ctx: &Ctx, inv: &Invocation, action: &str) -> Result<()> {
    let provider = inv.arg("provider").unwrap_or_default().to_string();
    let mut out = Out::new();
    match action {
        "set" => {
            // Before the prompt: a typo must not cost typing the key.
            let info: ProviderInfo = serde_json::from_value(client::request(
                &ctx.paths()?,
                &Request::ProvidersInspect { id: provider.clone() },
            )?)?;
            if info.kind == "self" {
                bail!("provider `{provider}` uses the agent's own login and takes no API key");
            }
            let key = if inv.flag("api-key-stdin") {
                prompt::key_from_stdin()?
            } else {
                let label = info
                    .manifest
                    .as_ref()
                    .and_then(|m| m["auth"]["prompt"].as_str())
                    .map(String::from)
                    .unwrap_or_else(|| format!("{} API key", info.name));
                prompt::hidden(&label).map_err(|e| {
                    anyhow!("{e:#}; pass --api-key-stdin to read the key from stdin")
                })?
            };
            let request = Request::ProvidersKeySet { provider, key: KeyText(key) };
            let Some(set) = fetch::<ProviderKeySet>(ctx, &request, &mut out)? else {
                return Ok(out.finish()?);
            };
            warn_all(&set.notices);
            out.line(format_args!(
                "Stored the key of provider {} ({}) in the {}",
                set.provider,
                set.name,
                store_name(set.store)
            ))?;
            if !set.used_by.is_empty() {
                out.line(format_args!(
                    "  used by the proxies of: {} (running ones restart with it)",
                    set.used_by.join(", ")
                ))?;
            }
        }
        "remove" => {
            let request = Request::ProvidersKeyRemove { provider: provider.clone() };
            let Some(v) = fetch::<serde_json::Value>(ctx, &request, &mut out)? else {
                return Ok(out.finish()?);
            };
            out.line(format_args!("Removed the key of provider {provider}"))?;
            let users: Vec<&str> = v["used_by"]
                .as_array()
                .map(|a| a.iter().filter_map(|u| u.as_str()).collect())
                .unwrap_or_default();
            if !users.is_empty() {
                warn_all(&[format!(
                    "the routing of {} still names provider `{provider}`; those targets fail \
                     until a key is stored again",
                    users.join(", ")
                )]);
            }
        }
        _ => {
            let Some(rows) =
                fetch::<Vec<ProviderKeyRow>>(ctx, &Request::ProvidersKeyList, &mut out)?
            else {
                return Ok(out.finish()?);
            };
            if rows.is_empty() {
                out.line(
                    "No provider keys (store one with `ringlet providers key set <provider>`).",
                )?;
            } else {
                let mut table = Table::new(&["PROVIDER", "SECRET", "STORE", "USED BY"]);
                for r in rows {
                    table.row(vec![
                        r.provider,
                        r.name,
                        store_name(r.store).to_string(),
                        r.used_by.join(", "),
                    ]);
                }
                table.write(&mut out)?;
            }
        }
    }
    Ok(out.finish()?)
}

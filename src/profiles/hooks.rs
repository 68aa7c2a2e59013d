//! Claude Code hooks of a profile, kept in Claude Code's own schema
//! (agents-verified.md §3): `event -> [ { matcher, hooks: [ { type: "command",
//! command, timeout? } ] } ]`. The flat form `event -> [ {type, command} ]`
//! is silently ignored by Claude Code, so everything that enters a profile
//! (hooks add, import, config.toml hook sets) is checked against the nested
//! form here.

use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

/// Hook events Claude Code 2.1 knows. A typo such as `stop` would be
/// accepted by Claude Code and never fire; here it is an error.
pub const EVENTS: &[&str] = &[
    "PreToolUse",
    "PostToolUse",
    "PostToolUseFailure",
    "PermissionRequest",
    "Notification",
    "UserPromptSubmit",
    "Stop",
    "SubagentStart",
    "SubagentStop",
    "PreCompact",
    "SessionStart",
    "SessionEnd",
];

fn check_event(event: &str) -> Result<()> {
    if !EVENTS.contains(&event) {
        bail!("unknown hook event `{event}` (known: {})", EVENTS.join(", "));
    }
    Ok(())
}

/// Adds one command hook to `event`, in the group with the same matcher.
pub fn add(
    hooks: &mut Map<String, Value>,
    event: &str,
    command: &str,
    matcher: &str,
    timeout: Option<u64>,
) -> Result<()> {
    check_event(event)?;
    if command.trim().is_empty() {
        bail!("the hook command is empty");
    }
    let mut hook = json!({ "type": "command", "command": command });
    if let Some(t) = timeout {
        hook["timeout"] = json!(t);
    }
    let groups = hooks.entry(event.to_string()).or_insert_with(|| json!([]));
    let groups = groups.as_array_mut().expect("validated hooks: groups are arrays");
    for group in groups.iter_mut() {
        if group.get("matcher").and_then(Value::as_str).unwrap_or("") == matcher
            && let Some(list) = group.get_mut("hooks").and_then(Value::as_array_mut)
        {
            list.push(hook);
            return Ok(());
        }
    }
    groups.push(json!({ "matcher": matcher, "hooks": [hook] }));
    Ok(())
}

/// One row of `hooks list`: its position (1-based, per event) and command.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HookRow {
    pub event: String,
    pub index: usize,
    pub matcher: String,
    pub command: String,
}

pub fn list(hooks: &Map<String, Value>) -> Vec<HookRow> {
    let mut rows = Vec::new();
    for (event, groups) in hooks {
        let mut index = 0;
        for group in groups.as_array().into_iter().flatten() {
            let matcher = group.get("matcher").and_then(Value::as_str).unwrap_or("").to_string();
            for hook in group.get("hooks").and_then(Value::as_array).into_iter().flatten() {
                index += 1;
                rows.push(HookRow {
                    event: event.clone(),
                    index,
                    matcher: matcher.clone(),
                    command: hook.get("command").and_then(Value::as_str).unwrap_or("").to_string(),
                });
            }
        }
    }
    rows
}

/// Removes the `index`-th (1-based, as `list` numbers them) hook of `event`.
pub fn remove(hooks: &mut Map<String, Value>, event: &str, index: usize) -> Result<HookRow> {
    check_event(event)?;
    let rows: Vec<HookRow> = list(hooks).into_iter().filter(|r| r.event == event).collect();
    let Some(row) = rows.get(index.wrapping_sub(1)).cloned() else {
        return Err(super::NotFound(format!(
            "{event} has {} hook(s); there is no number {index} (see `ringlet hooks list`)",
            rows.len()
        ))
        .into());
    };
    let groups = hooks.get_mut(event).and_then(Value::as_array_mut).expect("listed above");
    let mut seen = 0;
    for group in groups.iter_mut() {
        if let Some(list) = group.get_mut("hooks").and_then(Value::as_array_mut) {
            if index - seen <= list.len() {
                list.remove(index - seen - 1);
                break;
            }
            seen += list.len();
        }
    }
    groups.retain(|g| g.get("hooks").and_then(Value::as_array).is_some_and(|l| !l.is_empty()));
    if groups.is_empty() {
        hooks.remove(event);
    }
    Ok(row)
}

/// Checks and normalizes hooks from a file: `{"hooks": {...}}` (a whole
/// settings.json) or the event map itself.
pub fn import(value: &Value) -> Result<Map<String, Value>> {
    // "hooks" is no event name, so a settings.json and a bare event map
    // cannot be confused.
    let map = value.get("hooks").unwrap_or(value);
    let Some(map) = map.as_object() else {
        bail!("hooks must be a JSON object of events");
    };
    let mut out = Map::new();
    for (event, groups) in map {
        check_event(event)?;
        let Some(groups) = groups.as_array() else {
            bail!("hooks.{event} must be an array of {{matcher, hooks}} groups");
        };
        for (i, group) in groups.iter().enumerate() {
            let where_ = format!("hooks.{event}[{i}]");
            let Some(list) = group.get("hooks").and_then(Value::as_array) else {
                bail!(
                    "{where_} has no \"hooks\" array; Claude Code ignores the flat form, use {{\"matcher\": \"\", \"hooks\": [{{\"type\": \"command\", \"command\": \"...\"}}]}}"
                );
            };
            let matcher = match group.get("matcher") {
                None => "",
                Some(Value::String(m)) => m.as_str(),
                Some(_) => bail!("{where_}.matcher must be a string"),
            };
            for (j, hook) in list.iter().enumerate() {
                let command = hook.get("command").and_then(Value::as_str);
                let kind = hook.get("type").and_then(Value::as_str).unwrap_or("command");
                let (Some(command), "command") = (command, kind) else {
                    bail!(
                        "{where_}.hooks[{j}] must be {{\"type\": \"command\", \"command\": \"...\"}}"
                    );
                };
                let timeout = match hook.get("timeout") {
                    None => None,
                    Some(t) => Some(t.as_u64().ok_or_else(|| {
                        anyhow::anyhow!("{where_}.hooks[{j}].timeout must be a number of seconds")
                    })?),
                };
                add(&mut out, event, command, matcher, timeout)?;
            }
        }
    }
    Ok(out)
}

/// The hook sets of config.toml (`[hooks.<name>] event, command, matcher?,
/// timeout?`) named in `names`, or all of them when `names` is `None`.
pub fn from_config(sets: &toml::Table, names: Option<&[String]>) -> Result<Map<String, Value>> {
    let mut out = Map::new();
    let chosen: Vec<&String> = match names {
        Some(names) => {
            for n in names {
                if !sets.contains_key(n) {
                    let known: Vec<&str> = sets.keys().map(String::as_str).collect();
                    bail!(
                        "no hook set `{n}` in config.toml [hooks] (known: {})",
                        if known.is_empty() { "none".into() } else { known.join(", ") }
                    );
                }
            }
            names.iter().collect()
        }
        None => sets.keys().collect(),
    };
    for name in chosen {
        let set = sets[name.as_str()].as_table().ok_or_else(|| {
            anyhow::anyhow!("config.toml [hooks.{name}] must be a table with event and command")
        })?;
        let get = |k: &str| set.get(k).and_then(|v| v.as_str());
        let (Some(event), Some(command)) = (get("event"), get("command")) else {
            bail!("config.toml [hooks.{name}] needs `event` and `command`");
        };
        if let Some(bad) =
            set.keys().find(|k| !["event", "command", "matcher", "timeout"].contains(&k.as_str()))
        {
            bail!(
                "config.toml [hooks.{name}]: unknown key `{bad}` (event, command, matcher, timeout)"
            );
        }
        let timeout = set.get("timeout").and_then(|v| v.as_integer()).map(|t| t.max(1) as u64);
        add(&mut out, event, command, get("matcher").unwrap_or(""), timeout)
            .map_err(|e| anyhow::anyhow!("config.toml [hooks.{name}]: {e}"))?;
    }
    Ok(out)
}

/// The MCP servers of config.toml named in `names` (all when `None`), in
/// Claude Code's `mcpServers` shape.
pub fn mcp_from_config(
    servers: &toml::Table,
    names: Option<&[String]>,
) -> Result<Map<String, Value>> {
    let mut out = Map::new();
    let chosen: Vec<&String> = match names {
        Some(names) => names.iter().collect(),
        None => servers.keys().collect(),
    };
    for name in chosen {
        let Some(server) = servers.get(name.as_str()) else {
            let known: Vec<&str> = servers.keys().map(String::as_str).collect();
            bail!(
                "no MCP server `{name}` in config.toml [mcp_servers] (known: {})",
                if known.is_empty() { "none".into() } else { known.join(", ") }
            );
        };
        let mut value = serde_json::to_value(server)?;
        let Some(obj) = value.as_object_mut() else {
            bail!("config.toml [mcp_servers.{name}] must be a table");
        };
        let has_command = obj.get("command").is_some_and(Value::is_string);
        let has_url = obj.get("url").is_some_and(Value::is_string);
        if has_command == has_url {
            bail!(
                "config.toml [mcp_servers.{name}] needs either `command` (stdio) or `url` (http)"
            );
        }
        if !obj.contains_key("type") {
            obj.insert("type".into(), json!(if has_command { "stdio" } else { "http" }));
        }
        out.insert(name.clone(), value);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_list_remove() {
        let mut h = Map::new();
        add(&mut h, "Stop", "a", "", None).unwrap();
        add(&mut h, "Stop", "b", "", Some(5)).unwrap();
        add(&mut h, "Stop", "c", "Bash", None).unwrap();
        assert!(add(&mut h, "stop", "x", "", None).is_err());
        assert_eq!(
            Value::Object(h.clone()),
            json!({"Stop": [
                {"matcher": "", "hooks": [{"type": "command", "command": "a"}, {"type": "command", "command": "b", "timeout": 5}]},
                {"matcher": "Bash", "hooks": [{"type": "command", "command": "c"}]}
            ]})
        );
        let rows = list(&h);
        assert_eq!(
            rows.iter().map(|r| (r.index, r.command.as_str())).collect::<Vec<_>>(),
            [(1, "a"), (2, "b"), (3, "c")]
        );
        assert_eq!(remove(&mut h, "Stop", 3).unwrap().command, "c");
        assert_eq!(remove(&mut h, "Stop", 1).unwrap().command, "a");
        assert!(remove(&mut h, "Stop", 2).is_err());
        assert_eq!(remove(&mut h, "Stop", 1).unwrap().command, "b");
        assert!(h.is_empty());
    }

    #[test]
    fn import_checks_schema() {
        let good = json!({"hooks": {"Stop": [{"hooks": [{"type": "command", "command": "x"}]}]}});
        let h = import(&good).unwrap();
        assert_eq!(h["Stop"][0]["matcher"], "");
        assert!(
            import(&json!({"Stop": [{"type": "command", "command": "x"}]}))
                .unwrap_err()
                .to_string()
                .contains("flat form")
        );
        assert!(import(&json!({"Nope": []})).is_err());
        assert!(import(&json!([1])).is_err());
    }

    #[test]
    fn config_sets() {
        let t: toml::Table = toml::from_str(
            "[fmt]\nevent = \"PostToolUse\"\nmatcher = \"Edit\"\ncommand = \"cargo fmt\"\n[bell]\nevent = \"Stop\"\ncommand = \"printf '\\\\a'\"\n",
        )
        .unwrap();
        let all = from_config(&t, None).unwrap();
        assert_eq!(all.len(), 2);
        let one = from_config(&t, Some(&["bell".into()])).unwrap();
        assert_eq!(one.keys().collect::<Vec<_>>(), ["Stop"]);
        assert!(from_config(&t, Some(&["nope".into()])).is_err());
        let m: toml::Table =
            toml::from_str("[fs]\ncommand = \"npx\"\nargs = [\"x\"]\n[web]\nurl = \"http://h/mcp\"\n[bad]\nargs = []\n").unwrap();
        let ok = mcp_from_config(&m, Some(&["fs".into(), "web".into()])).unwrap();
        assert_eq!(ok["fs"]["type"], "stdio");
        assert_eq!(ok["web"]["type"], "http");
        assert!(mcp_from_config(&m, None).is_err());
    }
}

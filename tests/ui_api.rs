//! The routes the web UI's forms and dashboard lean on, through the one
//! dispatcher like every other: the daemon's recent events (a page opened
//! now shows what happened before it; `daemon events` in a shell) and what
//! config.toml offers a new profile (hook sets, MCP servers), with nothing
//! secret in it.

use serde_json::Value;

use crate::util::Env;
use crate::util::http::request;

fn get(env: &Env, path: &str) -> (u16, Value) {
    let (addr, token) = env.http();
    let answer = request(addr, "GET", path, &[("Authorization", &format!("Bearer {token}"))], b"");
    (answer.status, answer.json())
}

#[test]
fn recent_events_are_kept_for_pages_and_the_shell() {
    let env = Env::new("ui-events");
    env.create_profile("claude", "first");
    env.create_profile("claude", "second");

    let (status, body) = get(&env, "/api/events?type=ProfileCreated");
    assert_eq!(status, 200, "{body}");
    let aliases: Vec<&str> = body["data"]["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["data"]["alias"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(aliases, ["first", "second"], "oldest first: {body}");

    let (_, body) = get(&env, "/api/events?type=ProfileCreated&limit=1");
    let events = body["data"]["events"].as_array().unwrap();
    assert_eq!(events.len(), 1, "{body}");
    assert_eq!(events[0]["data"]["alias"], "second", "the newest: {body}");

    let (status, body) = get(&env, "/api/events?type=ProfileCreatd");
    assert_eq!(status, 404, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("ProfileCreated"), "names the known types: {message}");

    let shell = env.cmd(&["daemon", "events", "--type", "ProfileCreated"]).ok();
    let lines: Vec<&str> = shell.lines().collect();
    // A header row (TIME EVENT DATA), then the two events.
    assert_eq!(lines.len(), 3, "{shell}");
    assert!(lines[1].contains("ProfileCreated") && lines[1].contains("\"first\""), "{shell}");

    let json = env.cmd(&["daemon", "events", "--json", "--limit", "1"]).json();
    assert_eq!(json["events"].as_array().map(Vec::len), Some(1), "{json}");
    let (_, stderr) = env.cmd(&["daemon", "events", "--limit", "many"]).code(2);
    assert!(stderr.contains("--limit takes a number"), "{stderr}");
}

#[test]
fn config_choices_list_hook_sets_and_mcp_servers_without_their_secrets() {
    let env = Env::new("ui-choices");
    env.write_config(
        r#"
[hooks.fmt]
event = "PostToolUse"
matcher = "Edit"
command = "cargo fmt"
[mcp_servers.mini]
command = "python3"
args = ["mini.py"]
env = { MINI_TOKEN = "sk-mcp-secret-0123456789" }
[mcp_servers.web]
url = "http://127.0.0.1:9/mcp"
headers = { Authorization = "Bearer sk-mcp-header-secret" }
"#,
    );
    let (status, body) = get(&env, "/api/config/choices");
    assert_eq!(status, 200, "{body}");
    let data = &body["data"];
    assert_eq!(data["hook_sets"][0]["name"], "fmt", "{body}");
    assert_eq!(data["hook_sets"][0]["event"], "PostToolUse", "{body}");
    let servers: Vec<(&str, &str)> = data["mcp_servers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["name"].as_str().unwrap(), s["type"].as_str().unwrap()))
        .collect();
    assert_eq!(servers, [("mini", "stdio"), ("web", "http")], "{body}");
    assert!(data["hook_events"].as_array().unwrap().iter().any(|e| e == "Stop"), "{body}");
    assert!(data["permission_modes"].as_array().unwrap().iter().any(|m| m == "plan"), "{body}");
    let text = body.to_string();
    assert!(!text.contains("sk-mcp"), "no MCP env or header value over HTTP: {text}");

    // A profile made with them shows their variables' names over HTTP, not
    // their values; the CLI (same uid, over IPC) still shows the values.
    env.create_profile("claude", "tools");
    for path in ["/api/profiles/tools", "/api/profiles"] {
        let (status, body) = get(&env, path);
        assert_eq!(status, 200, "{body}");
        let text = body.to_string();
        assert!(!text.contains("sk-mcp"), "{path}: {text}");
        if path == "/api/profiles/tools" {
            let servers = &body["data"]["mcp_servers"];
            assert_eq!(servers["mini"]["env"]["MINI_TOKEN"], "<redacted>", "{body}");
            assert_eq!(servers["web"]["headers"]["Authorization"], "<redacted>", "{body}");
        }
    }
    let local = env.cmd(&["profiles", "inspect", "tools", "--json"]).ok();
    assert!(local.contains("sk-mcp-secret-0123456789"), "{local}");
}

/// The dashboard's one call: each part is what its own route answers, and
/// it needs the token like them.
#[test]
fn the_dashboard_is_its_cards_routes_in_one_answer() {
    let env = Env::new("ui-dashboard");
    env.create_profile("claude", "dash");
    let (status, body) = get(&env, "/api/dashboard");
    assert_eq!(status, 200, "{body}");
    let data = &body["data"];
    assert_eq!(data["errors"], serde_json::json!({}), "{body}");
    for (field, path) in [
        ("stats", "/api/stats"),
        ("usage_today", "/api/usage?period=today"),
        ("usage_month", "/api/usage?period=month"),
        ("agents", "/api/agents"),
        ("sessions", "/api/terminal/sessions"),
        ("proxies", "/api/proxy/status"),
    ] {
        let (_, alone) = get(&env, path);
        assert_eq!(data[field], alone["data"], "{field} against {path}");
    }
    let (_, alone) = get(&env, "/api/daemon/status");
    for key in ["version", "pid", "socket", "http", "profiles"] {
        assert_eq!(data["status"][key], alone["data"][key], "status.{key}: {body}");
    }
    assert_eq!(data["status"]["profiles"], 1, "{body}");

    let (addr, _) = env.http();
    assert_eq!(request(addr, "GET", "/api/dashboard", &[], b"").status, 401);
    let (status, _) = get(&env, "/api/dashboard?period=7d");
    assert_eq!(status, 400);
}

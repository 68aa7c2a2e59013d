//! Manifests as the user sees them: built-ins, overrides by id in
//! `agents.d`/`providers.d`, broken files reported by path and line while
//! everything else loads, and endpoint resolution.

use std::fs;

use crate::util::Env;

const FAKE_AGENT: &str = r#"
id = "fake"
name = "Fake Agent"
binary = "fake-agent"
[profile]
strategy = "home-wrapper"
source_home = "~/.fake-profiles/{alias}"
script = "fake.rhai"
provider_types = ["openai-compatible"]
"#;

/// Creates the user's `agents.d` and `providers.d` and returns them.
fn user_dirs(env: &Env) -> (std::path::PathBuf, std::path::PathBuf) {
    let dirs = (env.config.join("agents.d"), env.config.join("providers.d"));
    fs::create_dir_all(&dirs.0).unwrap();
    fs::create_dir_all(&dirs.1).unwrap();
    dirs
}

/// The ids in a `--json` list reply, in order.
fn ids(reply: &serde_json::Value, key: &str) -> Vec<String> {
    reply[key].as_array().unwrap().iter().map(|a| a["id"].as_str().unwrap().to_string()).collect()
}

/// The built-in manifest files of one kind, by file stem, sorted.
fn builtin_files(kind: &str) -> Vec<String> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("manifests").join(kind);
    let mut stems: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path().file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    stems.sort();
    stems
}

#[test]
fn builtins_are_listed() {
    let env = Env::new("builtins");
    // Every file in manifests/ is embedded and listed, in id order.
    let agents = env.cmd(&["agents", "list", "--json"]).json();
    assert_eq!(ids(&agents, "agents"), builtin_files("agents"));
    assert_eq!(agents["warnings"], serde_json::json!([]));
    let providers = env.cmd(&["providers", "list", "--json"]).json();
    assert_eq!(ids(&providers, "providers"), builtin_files("providers"));
    assert_eq!(providers["providers"].as_array().unwrap().len(), 8);
    let table = env.cmd(&["providers", "list"]).ok();
    assert!(table.starts_with("ID "), "{table}");
    assert!(table.contains("https://api.minimax.io/anthropic"), "{table}");
}

#[test]
fn inspect_shows_endpoints_models_and_auth() {
    let env = Env::new("inspect");
    let p = env.cmd(&["providers", "inspect", "zai", "--json"]).json();
    assert_eq!(p["type"], "anthropic-compatible");
    assert_eq!(p["auth_env_key"], "ZAI_API_KEY");
    assert_eq!(p["default_endpoint"]["name"], "international");
    assert_eq!(p["endpoints"].as_array().unwrap().len(), 2);
    let text = env.cmd(&["providers", "inspect", "openrouter"]).ok();
    assert!(text.contains("https://openrouter.ai/api/v1 (default)"), "{text}");
    let text = env.cmd(&["agents", "inspect", "claude"]).ok();
    assert!(text.contains("config-dir") && text.contains("~/.claude-profiles/{alias}"), "{text}");
    let (_, err) = env.cmd(&["providers", "inspect", "nope"]).code(1);
    assert!(
        err.starts_with("ringlet: providers inspect: no provider `nope` (known: anthropic,"),
        "{err}"
    );
    let (out, _) = env.cmd(&["agents", "inspect", "nope", "--json"]).code(1);
    assert!(out.contains("\"not_found\""), "{out}");
}

#[test]
fn user_manifests_override_builtins_and_add_new_ones() {
    let env = Env::new("override");
    let (agents_d, providers_d) = user_dirs(&env);
    let claude = include_str!("../manifests/agents/claude.toml")
        .replace("\"Claude Code\"", "\"Claude (mine)\"");
    fs::write(agents_d.join("claude.toml"), claude).unwrap();
    fs::write(agents_d.join("fake.toml"), FAKE_AGENT).unwrap();
    fs::write(
        providers_d.join("local.toml"),
        "id = \"local\"\nname = \"Local\"\ntype = \"openai-compatible\"\n\
         [endpoints]\ndefault = \"http://127.0.0.1:4000/v1\"\n[auth]\nrequired = false\n",
    )
    .unwrap();

    let agents = env.cmd(&["agents", "list", "--json"]).json();
    let list = agents["agents"].as_array().unwrap();
    let claude = list.iter().find(|a| a["id"] == "claude").unwrap();
    assert_eq!(claude["name"], "Claude (mine)");
    assert!(claude["source"].as_str().unwrap().ends_with("agents.d/claude.toml"));
    assert!(list.iter().any(|a| a["id"] == "fake" && a["installed"] == false));
    assert_eq!(list.len(), 6);

    // A provider whose only endpoint is a URL works without flags.
    let local = env.cmd(&["providers", "inspect", "local", "--json"]).json();
    assert_eq!(local["default_endpoint"]["url"], "http://127.0.0.1:4000/v1");

    // Changes are picked up by the running daemon without a restart.
    fs::remove_file(agents_d.join("fake.toml")).unwrap();
    let agents = env.cmd(&["agents", "list", "--json"]).json();
    assert_eq!(agents["agents"].as_array().unwrap().len(), 5);
}

#[test]
fn a_broken_user_manifest_warns_with_path_and_line() {
    let env = Env::new("broken");
    let (agents_d, providers_d) = user_dirs(&env);
    fs::write(agents_d.join("bad.toml"), "id = \"bad\"\nname = \"Bad\nbinary = \"x\"\n").unwrap();
    fs::write(agents_d.join("fake.toml"), FAKE_AGENT).unwrap();
    fs::write(
        providers_d.join("typo.toml"),
        "id = \"typo\"\nname = \"Typo\"\ntype = \"openai\"\n[endpoints]\nmain = \"htp://x\"\n[auth]\nenv_key = \"K\"\n",
    )
    .unwrap();

    let (out, err) = env.cmd(&["agents", "list"]).code(0);
    let bad = agents_d.join("bad.toml");
    assert!(err.contains(&format!("ringlet: warning: {}:2:", bad.display())), "{err}");
    assert!(out.contains("fake") && out.contains("claude"), "everything else still loads:\n{out}");

    let json = env.cmd(&["agents", "list", "--json"]).json();
    assert_eq!(json["warnings"].as_array().unwrap().len(), 1);

    let (out, err) = env.cmd(&["providers", "list"]).code(0);
    let typo = providers_d.join("typo.toml");
    assert!(
        err.contains(&format!(
            "{}:5: endpoints.main: `htp://x` is not an http(s) URL",
            typo.display()
        )),
        "{err}"
    );
    assert!(out.contains("anthropic") && !out.contains("typo"), "{out}");
}

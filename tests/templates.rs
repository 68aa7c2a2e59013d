//! Profile templates and the model catalog: `profiles create --template`
//! fills provider, endpoint, model, hooks and MCP servers (flags override),
//! the layering built-in < registry < user, `profiles templates`, the
//! catalog in `providers inspect` and `GET /api/models`, the warning for a
//! model the catalog does not know, and `--script` (the old `--template`).

use std::fs;

use serde_json::{Value, json};

use crate::util::Env;
use crate::util::http::request;

/// `profiles create <agent> <alias> <extra...> --dry-run --json`: nothing is
/// written and no key is needed; the reply's data.
fn dry_create(env: &Env, agent: &str, alias: &str, extra: &[&str]) -> Value {
    let mut args = vec!["profiles", "create", agent, alias];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["--dry-run", "--json", "--no-alias"]);
    env.cmd(&args).json()
}

/// A user template in `templates.d` (hooks and MCP servers included).
const TEAM: &str = r#"
name = "team"
description = "Our Claude Code on Z.ai, with a formatter hook and docs over MCP"
agents = ["claude", "opencode"]
provider = "zai"
endpoint = "china"
model = "glm-4.6"

[hooks.fmt]
event = "PostToolUse"
matcher = "Edit"
command = "cargo fmt"

[mcp_servers.docs]
command = "docs-mcp"
args = ["--stdio"]

[agent.opencode]
model = "glm-5.1"
"#;

fn write_user_template(env: &Env, file: &str, text: &str) {
    let dir = env.config.join("templates.d");
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join(file), text).unwrap();
}

fn names(list: &Value) -> Vec<String> {
    list["templates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_builtin_template_fills_provider_endpoint_and_model() {
    let env = Env::new("tpl-builtin");
    let c = dry_create(&env, "claude", "mm", &["--template", "minimax-m2"]);
    let p = &c["profile"];
    assert_eq!(p["provider"], "minimax", "{c}");
    assert_eq!(p["model"], "MiniMax-M2.1", "{c}");
    assert_eq!(p["endpoint"], "https://api.minimax.io/anthropic", "{c}");
    // The same template, another agent: its per-agent provider.
    let c = dry_create(&env, "codex", "mm2", &["--template", "minimax-m2"]);
    assert_eq!(c["profile"]["provider"], "minimax-openai", "{c}");
    assert_eq!(c["profile"]["endpoint"], "https://api.minimax.io/v1", "{c}");
    // And a real create (a key, files, the profile stored).
    let out = env
        .cmd(&["profiles", "create", "claude", "zz", "--template", "zai-glm", "--no-alias"])
        .env("RINGLET_SECRET_STORE", "file")
        .env("ZAI_API_KEY", crate::util::KEY)
        .ok();
    assert!(out.contains("Created profile zz: claude with zai (glm-5.1)"), "{out}");
    let view = env.cmd(&["profiles", "inspect", "zz", "--json"]).json();
    assert_eq!(view["endpoint"], "https://api.z.ai/api/anthropic", "{view}");
}

#[test]
fn a_template_brings_hooks_and_mcp_servers_and_flags_override_it() {
    let env = Env::new("tpl-override");
    write_user_template(&env, "team.toml", TEAM);
    let c = dry_create(&env, "claude", "t1", &["--template", "team"]);
    let p = &c["profile"];
    assert_eq!((p["provider"].as_str(), p["model"].as_str()), (Some("zai"), Some("glm-4.6")));
    assert_eq!(p["endpoint"], "https://open.bigmodel.cn/api/anthropic", "{c}");
    assert_eq!(p["hooks"]["PostToolUse"][0]["hooks"][0]["command"], "cargo fmt", "{c}");
    assert_eq!(p["hooks"]["PostToolUse"][0]["matcher"], "Edit", "{c}");
    assert_eq!(
        p["mcp_servers"]["docs"],
        json!({"command": "docs-mcp", "args": ["--stdio"], "type": "stdio"})
    );
    // The per-agent section wins for that agent; OpenCode has no hooks, so
    // it gets the MCP server and a notice.
    let c = dry_create(&env, "opencode", "t2", &["--template", "team"]);
    assert_eq!(c["profile"]["model"], "glm-5.1", "{c}");
    assert_eq!(c["profile"]["hooks"], json!({}));
    assert!(c["profile"]["mcp_servers"]["docs"].is_object(), "{c}");
    assert!(c["notices"].to_string().contains("hooks"), "{c}");

    // Flags override: model and endpoint one by one.
    let c = dry_create(
        &env,
        "claude",
        "t3",
        &["--template", "team", "--model", "glm-5.1", "--endpoint", "international"],
    );
    assert_eq!(c["profile"]["model"], "glm-5.1");
    assert_eq!(c["profile"]["endpoint"], "https://api.z.ai/api/anthropic");
    // Another provider drops the template's endpoint and model (they were
    // chosen for its provider), keeps its hooks.
    let c = dry_create(&env, "claude", "t4", &["--template", "team", "-p", "anthropic"]);
    assert_eq!(c["profile"]["provider"], "anthropic");
    assert_eq!(c["profile"]["model"], "claude-opus-4-8");
    assert_eq!(c["profile"]["endpoint"], "https://api.anthropic.com");
    assert!(c["profile"]["hooks"]["PostToolUse"].is_array(), "{c}");
    // --bare: neither hooks nor MCP servers.
    let c = dry_create(&env, "claude", "t5", &["--template", "team", "--bare"]);
    assert_eq!(c["profile"]["hooks"], json!({}));
    assert_eq!(c["profile"]["mcp_servers"], json!({}));

    // config.toml's hooks and servers come on top: the template's hook first,
    // the user's server of the same name wins.
    env.write_config(
        "[hooks.bell]\nevent = \"PostToolUse\"\nmatcher = \"Edit\"\ncommand = \"printf x\"\n\
         [mcp_servers.docs]\nurl = \"http://127.0.0.1:9/mcp\"\n",
    );
    // The daemon reads config.toml when it starts.
    env.cmd(&["daemon", "stop"]).ok();
    let c = dry_create(&env, "claude", "t6", &["--template", "team"]);
    let groups = &c["profile"]["hooks"]["PostToolUse"];
    assert_eq!(groups[0]["hooks"][0]["command"], "cargo fmt", "{c}");
    assert_eq!(groups[1]["hooks"][0]["command"], "printf x", "{c}");
    assert_eq!(c["profile"]["mcp_servers"]["docs"]["url"], "http://127.0.0.1:9/mcp", "{c}");
}

#[test]
fn a_template_for_another_agent_or_an_unknown_one_is_a_clear_error() {
    let env = Env::new("tpl-errors");
    let (_, err) = env
        .cmd(&["profiles", "create", "codex", "x", "--template", "claude-anthropic", "--dry-run"])
        .code(1);
    assert!(err.contains("template `claude-anthropic` is for claude, not codex"), "{err}");
    let (_, err) =
        env.cmd(&["profiles", "create", "claude", "x", "--template", "nope", "--dry-run"]).code(1);
    assert!(err.contains("unknown template `nope`"), "{err}");
    assert!(err.contains("known: claude-anthropic, codex-openai, minimax-m2, zai-glm"), "{err}");
    // Neither a provider nor a template.
    let (_, err) = env.cmd(&["profiles", "create", "claude", "x"]).code(2);
    assert!(err.contains("missing required option --provider"), "{err}");
    // Nothing was created.
    let list = env.cmd(&["profiles", "list", "--json"]).json();
    assert_eq!(list["profiles"], json!([]));
}

#[test]
fn user_templates_override_builtins_and_registry_ones_are_listed() {
    let env = Env::new("tpl-layers");
    let list = env.cmd(&["profiles", "templates", "--json"]).json();
    assert_eq!(names(&list), ["claude-anthropic", "codex-openai", "minimax-m2", "zai-glm"]);
    assert!(list["templates"].as_array().unwrap().iter().all(|t| t["source"] == "builtin"));

    // A registry commit with its own template (made by hand: no sync).
    let commit = env.config.join("registry/commits/abc123");
    fs::create_dir_all(commit.join("templates")).unwrap();
    fs::write(
        commit.join("templates/fleet.toml"),
        "name = \"fleet\"\ndescription = \"From the registry\"\nagents = [\"codex\"]\nprovider = \"openai\"\nmodel = \"gpt-5\"\n",
    )
    .unwrap();
    std::os::unix::fs::symlink("commits/abc123", env.config.join("registry/current")).unwrap();
    // The user's own minimax-m2 wins over the built-in one; a broken file warns.
    write_user_template(
        &env,
        "minimax-m2.toml",
        "name = \"minimax-m2\"\ndescription = \"Mine\"\nagents = [\"claude\"]\nprovider = \"minimax\"\nendpoint = \"china\"\n",
    );
    write_user_template(&env, "broken.toml", "name = \"broken\"\nagents = [\n");

    let list = env.cmd(&["profiles", "templates", "--json"]).json();
    assert_eq!(
        names(&list),
        ["claude-anthropic", "codex-openai", "fleet", "minimax-m2", "zai-glm"]
    );
    let by_name = |n: &str| {
        list["templates"].as_array().unwrap().iter().find(|t| t["name"] == n).unwrap().clone()
    };
    assert!(by_name("fleet")["source"].as_str().unwrap().contains("registry"), "{list}");
    assert_eq!(by_name("minimax-m2")["description"], "Mine");
    assert!(
        by_name("minimax-m2")["source"].as_str().unwrap().ends_with("templates.d/minimax-m2.toml")
    );
    let warnings = list["warnings"].to_string();
    assert!(warnings.contains("broken.toml:2"), "{warnings}");
    // Asked for by name, the broken file is named in the error.
    let (_, err) = env
        .cmd(&["profiles", "create", "claude", "b", "--template", "broken", "--dry-run"])
        .code(1);
    assert!(err.contains("unknown template `broken`") && err.contains("broken.toml:2"), "{err}");

    // --agent filters; the table names the source.
    let list = env.cmd(&["profiles", "templates", "--agent", "codex", "--json"]).json();
    assert_eq!(names(&list), ["codex-openai", "fleet", "zai-glm"]);
    let table = env.cmd(&["profiles", "templates"]).ok();
    assert!(table.starts_with("NAME"), "{table}");
    assert!(table.contains("fleet") && table.contains("From the registry"), "{table}");

    // The overriding user template is the one used.
    let c = dry_create(&env, "claude", "u1", &["--template", "minimax-m2"]);
    assert_eq!(c["profile"]["endpoint"], "https://api.minimaxi.com/anthropic", "{c}");
    let c = dry_create(&env, "codex", "u2", &["--template", "fleet"]);
    assert_eq!(c["profile"]["model"], "gpt-5", "{c}");
}

#[test]
fn an_unknown_model_is_a_warning_naming_the_closest_known_ones() {
    let env = Env::new("tpl-model");
    let out = env
        .cmd(&[
            "profiles",
            "create",
            "claude",
            "m1",
            "-p",
            "minimax",
            "--model",
            "MiniMax-M2.2",
            "--dry-run",
        ])
        .output();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("model `MiniMax-M2.2` is not in the catalog of provider `minimax`"),
        "{stderr}"
    );
    assert!(stderr.contains("closest: MiniMax-M2.1, MiniMax-M2"), "{stderr}");
    // A known model, or one of its aliases, warns about nothing.
    for model in ["claude-sonnet-5", "claude-haiku-4-5-20251001"] {
        let out = env
            .cmd(&[
                "profiles",
                "create",
                "claude",
                "m2",
                "-p",
                "anthropic",
                "--model",
                model,
                "--dry-run",
            ])
            .output();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success() && !stderr.contains("catalog"), "{model}: {stderr}");
    }
    // In --json, the warning is a notice.
    let c = dry_create(&env, "claude", "m3", &["-p", "anthropic", "--model", "claude-sonet-5"]);
    assert!(c["notices"].to_string().contains("closest: claude-sonnet-5"), "{c}");
}

#[test]
fn providers_inspect_shows_the_catalog() {
    let env = Env::new("tpl-inspect");
    let out = env.cmd(&["providers", "inspect", "anthropic"]).ok();
    assert!(out.contains("claude-opus-4-8"), "{out}");
    assert!(out.contains("1000000") || out.contains("1M"), "{out}");
    assert!(out.contains("$5.00"), "input price per Mtok: {out}");
    let info = env.cmd(&["providers", "inspect", "zai", "--json"]).json();
    let glm = info["catalog"].as_array().unwrap().iter().find(|m| m["id"] == "glm-5.1").unwrap();
    assert_eq!(glm["context_window"], 200000, "{info}");
    assert_eq!(glm["pricing_key"], "zai/glm-5.1", "{info}");
    assert!(glm["input_usd_per_mtok"].as_f64().unwrap() > 0.0, "{info}");

    // A user catalog replaces a provider's list.
    let dir = env.config.join("catalog.d");
    fs::create_dir_all(&dir).unwrap();
    fs::write(
        dir.join("zai.toml"),
        "provider = \"zai\"\n[[models]]\nid = \"glm-6\"\ncontext_window = 2000000\n",
    )
    .unwrap();
    let info = env.cmd(&["providers", "inspect", "zai", "--json"]).json();
    let ids: Vec<&str> =
        info["catalog"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["glm-6"], "{info}");
}

#[test]
fn script_selects_the_script_and_the_old_wire_name_still_works() {
    let env = Env::new("tpl-script");
    fs::create_dir_all(env.config.join("scripts")).unwrap();
    let claude = fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/claude.rhai"),
    )
    .unwrap();
    fs::write(env.config.join("scripts/mine.rhai"), claude).unwrap();
    let out = env
        .cmd(&[
            "profiles",
            "create",
            "claude",
            "s1",
            "-p",
            "anthropic",
            "--script",
            "mine",
            "--no-alias",
        ])
        .env("RINGLET_SECRET_STORE", "file")
        .env("ANTHROPIC_API_KEY", crate::util::KEY)
        .output();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let view = env.cmd(&["profiles", "inspect", "s1", "--json"]).json();
    assert_eq!(view["script"], "mine.rhai");
    // It renders at every run (the stored name is resolved again).
    let vars = env.cmd(&["profiles", "env", "s1"]).ok();
    assert!(vars.contains("CLAUDE_CONFIG_DIR="), "{vars}");

    // A client of the old wire form: `template` naming a script.
    let (addr, token) = env.http();
    let auth = format!("Bearer {token}");
    let body = json!({"agent": "claude", "alias": "s2", "provider": "anthropic",
                      "template": "mine", "dry_run": true});
    let a = request(
        addr,
        "POST",
        "/api/profiles",
        &[("Authorization", &auth)],
        body.to_string().as_bytes(),
    );
    let reply = a.json();
    assert_eq!(a.status, 200, "a dry run creates nothing: {reply}");
    assert_eq!(reply["data"]["profile"]["script"], "mine.rhai", "{reply}");
    assert!(reply["data"]["notices"].to_string().contains("script"), "{reply}");
    // The old CLI spelling too, with a warning naming the new one.
    let out = env
        .cmd(&[
            "profiles",
            "create",
            "claude",
            "s3",
            "-p",
            "anthropic",
            "--template",
            "mine",
            "--dry-run",
        ])
        .output();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && err.contains("--script mine"), "{err}");
    // Without a provider it cannot be the old form: the error says what to do.
    let (_, err) =
        env.cmd(&["profiles", "create", "claude", "s4", "--template", "mine", "--dry-run"]).code(1);
    assert!(err.contains("unknown template `mine`") && err.contains("--script mine"), "{err}");
}

#[test]
fn rest_lists_templates_and_models() {
    let env = Env::new("tpl-rest");
    let (addr, token) = env.http();
    let auth = format!("Bearer {token}");
    let get = |path: &str| request(addr, "GET", path, &[("Authorization", &auth)], b"");

    let a = get("/api/templates");
    assert_eq!(a.status, 200);
    let cli = env.cmd(&["profiles", "templates", "--json"]).json();
    assert_eq!(a.json()["data"], cli, "CLI and HTTP agree");
    let a = get("/api/templates?agent=codex");
    assert_eq!(names(&a.json()["data"]), ["codex-openai", "minimax-m2", "zai-glm"]);
    let a = get("/api/templates?agent=martian");
    assert_eq!(a.status, 404, "{}", String::from_utf8_lossy(&a.body));

    let a = get("/api/models?provider=anthropic");
    assert_eq!(a.status, 200);
    let data = a.json()["data"].clone();
    let models = data["models"].as_array().unwrap();
    assert!(models.iter().all(|m| m["provider"] == "anthropic"), "{data}");
    let opus = models.iter().find(|m| m["id"] == "claude-opus-4-8").unwrap();
    assert_eq!(opus["context_window"], 1000000);
    assert_eq!(opus["default"], true);
    let all = get("/api/models").json()["data"].clone();
    let providers: std::collections::BTreeSet<&str> =
        all["models"].as_array().unwrap().iter().map(|m| m["provider"].as_str().unwrap()).collect();
    assert!(providers.contains("openai") && providers.contains("zai"), "{all}");
    let a = get("/api/models?provider=nope");
    assert_eq!(a.status, 404);
    let a = get("/api/models?bogus=1");
    assert_eq!(a.status, 400);
}

//! Synced registry artifacts really used (issue 13, item 6): agent and
//! provider manifests layered built-in < registry < user, synced scripts in
//! the resolution order and confined like local ones, synced prices in the
//! usage reports, and a broken synced manifest as a warning naming file and
//! line. Every test builds its commits by hand (`registry/commits/<x>/` and
//! the relative `current` link, as a sync leaves them), so none needs a
//! sync, and switches `current` under a running daemon: everything takes
//! effect on the next request, with the same daemon.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::util::{Env, KEY, files_under};

/// A commit name as a sync makes them (64 hex digits), from a short tag.
fn commit_name(tag: u8) -> String {
    format!("{tag:02x}").repeat(32)
}

/// Writes commit `tag` with `files` (registry-relative path, text) under
/// `<config>/registry/commits/` and returns its directory. A commit dir
/// never changes once made, so each test makes a new one per change.
fn commit(env: &Env, tag: u8, files: &[(&str, &str)]) -> PathBuf {
    let dir = env.config.join("registry/commits").join(commit_name(tag));
    for (path, text) in files {
        let path = dir.join(path);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }
    fs::create_dir_all(&dir).unwrap();
    dir
}

/// Points `current` at commit `tag` the way a sync does: a fresh relative
/// link renamed over the old one. `None` removes `current`.
fn switch(env: &Env, tag: Option<u8>) {
    let root = env.config.join("registry");
    fs::create_dir_all(&root).unwrap();
    match tag {
        Some(tag) => {
            let next = root.join("current.next");
            let _ = fs::remove_file(&next);
            std::os::unix::fs::symlink(format!("commits/{}", commit_name(tag)), &next).unwrap();
            fs::rename(&next, root.join("current")).unwrap();
        }
        None => {
            let _ = fs::remove_file(root.join("current"));
        }
    }
}

/// Starts the daemon; the test ends by checking the same one still runs.
fn daemon(env: &Env) -> u32 {
    env.start_daemon()
}

fn find<'a>(list: &'a Value, key: &str, id: &str) -> Option<&'a Value> {
    list[key].as_array().unwrap().iter().find(|x| x["id"] == id)
}

fn provider_manifest(id: &str, name: &str, url: &str) -> String {
    format!(
        "id = \"{id}\"\nname = \"{name}\"\ntype = \"anthropic-compatible\"\n\
         [endpoints]\ndefault = \"{url}\"\n[auth]\nenv_key = \"ACME_API_KEY\"\n"
    )
}

fn create(env: &Env, agent: &str, alias: &str, provider: &str) {
    env.cmd(&["profiles", "create", agent, alias, "-p", provider, "--api-key-stdin", "--no-alias"])
        .env("RINGLET_SECRET_STORE", "file")
        .stdin(KEY)
        .ok();
}

#[test]
fn a_synced_provider_is_listed_and_used_by_profiles_created_afterwards() {
    let env = Env::new("regload-provider");
    let pid = daemon(&env);
    let list = env.cmd(&["providers", "list", "--json"]).json();
    assert!(find(&list, "providers", "acme").is_none(), "{list}");

    let a = commit(
        &env,
        1,
        &[("providers/acme.toml", &provider_manifest("acme", "Acme", "https://a.example/v1"))],
    );
    commit(
        &env,
        2,
        &[("providers/acme.toml", &provider_manifest("acme", "Acme", "https://b.example/v1"))],
    );
    switch(&env, Some(1));
    let list = env.cmd(&["providers", "list", "--json"]).json();
    let acme = find(&list, "providers", "acme").unwrap_or_else(|| panic!("no acme: {list}"));
    assert_eq!(acme["default_endpoint"]["url"], "https://a.example/v1");
    assert_eq!(acme["source"], a.join("providers/acme.toml").display().to_string());
    assert_eq!(list["warnings"], serde_json::json!([]));
    create(&env, "claude", "one", "acme");
    let one = env.cmd(&["profiles", "inspect", "one", "--json"]).json();
    assert_eq!(
        (&one["provider"], &one["endpoint"]),
        (&"acme".into(), &"https://a.example/v1".into())
    );

    // Another commit: the next request sees it.
    switch(&env, Some(2));
    create(&env, "claude", "two", "acme");
    let two = env.cmd(&["profiles", "inspect", "two", "--json"]).json();
    assert_eq!(two["endpoint"], "https://b.example/v1");

    // No commit at all: only the built-ins again.
    switch(&env, None);
    let list = env.cmd(&["providers", "list", "--json"]).json();
    assert!(find(&list, "providers", "acme").is_none(), "{list}");
    assert_eq!(env.daemon_pid(), Some(pid), "the same daemon throughout");
}

#[test]
fn a_synced_agent_overrides_a_builtin_and_a_user_file_beats_the_synced_one() {
    let env = Env::new("regload-layers");
    let pid = daemon(&env);
    let claude = include_str!("../manifests/agents/claude.toml")
        .replace("name = \"Claude Code\"", "name = \"Claude (synced)\"");
    let anthropic = include_str!("../manifests/providers/anthropic.toml");
    assert!(anthropic.contains("name = \"Anthropic\""), "the fixture edit below must apply");
    let synced_anthropic =
        anthropic.replace("name = \"Anthropic\"", "name = \"Anthropic (synced)\"");
    let c = commit(
        &env,
        1,
        &[("agents/claude.toml", &claude), ("providers/anthropic.toml", &synced_anthropic)],
    );
    commit(&env, 2, &[("providers/anthropic.toml", &synced_anthropic)]);
    switch(&env, Some(1));

    let agents = env.cmd(&["agents", "list", "--json"]).json();
    let claude = find(&agents, "agents", "claude").unwrap();
    assert_eq!(claude["name"], "Claude (synced)", "{agents}");
    assert_eq!(claude["source"], c.join("agents/claude.toml").display().to_string());
    assert_eq!(agents["agents"].as_array().unwrap().len(), 5, "replaced by id, not added");
    let text = env.cmd(&["agents", "inspect", "claude"]).ok();
    assert!(text.contains("Claude (synced)"), "{text}");

    // providers.d beats the registry, and no warning says so: it is the order.
    let providers_d = env.config.join("providers.d");
    fs::create_dir_all(&providers_d).unwrap();
    let mine = anthropic.replace("name = \"Anthropic\"", "name = \"Anthropic (mine)\"");
    fs::write(providers_d.join("anthropic.toml"), mine).unwrap();
    let list = env.cmd(&["providers", "list", "--json"]).json();
    assert_eq!(find(&list, "providers", "anthropic").unwrap()["name"], "Anthropic (mine)");
    assert_eq!(list["warnings"], serde_json::json!([]));
    fs::remove_file(providers_d.join("anthropic.toml")).unwrap();
    let list = env.cmd(&["providers", "list", "--json"]).json();
    assert_eq!(find(&list, "providers", "anthropic").unwrap()["name"], "Anthropic (synced)");

    // A commit without the agent: the built-in is back.
    switch(&env, Some(2));
    let agents = env.cmd(&["agents", "list", "--json"]).json();
    let claude = find(&agents, "agents", "claude").unwrap();
    assert_eq!((&claude["name"], &claude["source"]), (&"Claude Code".into(), &"builtin".into()));
    assert_eq!(env.daemon_pid(), Some(pid), "the same daemon throughout");
}

/// A fake agent whose manifest names a script only the registry has.
fn synced_script_world(name: &str) -> Env {
    let env = Env::new(name);
    fs::create_dir_all(env.config.join("agents.d")).unwrap();
    fs::write(
        env.config.join("agents.d/fake.toml"),
        r#"
id = "fake"
name = "Fake Agent"
binary = "fake-agent"
[profile]
strategy = "home-wrapper"
source_home = "~/.fake-profiles/{alias}"
script = "synced.rhai"
provider_types = ["anthropic"]
"#,
    )
    .unwrap();
    env
}

fn script_writing(path: &str, text: &str) -> String {
    format!("#{{ files: #{{ \"{path}\": \"{text}\" }} }}\n")
}

#[test]
fn a_synced_script_renders_profiles_and_is_confined_like_a_local_one() {
    let env = synced_script_world("regload-script");
    let pid = daemon(&env);
    let (_, err) = env
        .cmd(&["profiles", "create", "fake", "none", "-p", "anthropic", "--api-key-stdin"])
        .env("RINGLET_SECRET_STORE", "file")
        .stdin(KEY)
        .code(1);
    assert!(err.contains("no script `synced.rhai`"), "{err}");

    commit(&env, 1, &[("scripts/synced.rhai", &script_writing("conf/from.txt", "commit one"))]);
    commit(&env, 2, &[("scripts/synced.rhai", &script_writing("conf/from.txt", "commit two"))]);
    let profiles = env.home.join(".fake-profiles");
    switch(&env, Some(1));
    create(&env, "fake", "one", "anthropic");
    assert_eq!(fs::read_to_string(profiles.join("one/conf/from.txt")).unwrap(), "commit one");
    switch(&env, Some(2));
    create(&env, "fake", "two", "anthropic");
    assert_eq!(fs::read_to_string(profiles.join("two/conf/from.txt")).unwrap(), "commit two");

    // The user's scripts/ beats the registry.
    fs::create_dir_all(env.config.join("scripts")).unwrap();
    fs::write(env.config.join("scripts/synced.rhai"), script_writing("conf/from.txt", "mine"))
        .unwrap();
    create(&env, "fake", "three", "anthropic");
    assert_eq!(fs::read_to_string(profiles.join("three/conf/from.txt")).unwrap(), "mine");
    fs::remove_file(env.config.join("scripts/synced.rhai")).unwrap();

    // A synced script that writes outside the profile home is refused as a
    // local one is, and leaves nothing anywhere.
    let outside = env.root.join("outside");
    fs::create_dir_all(&outside).unwrap();
    let escapes = [
        (script_writing("../escape.txt", "escaped"), "contains `..`"),
        (script_writing("../../../escape.txt", "escaped"), "contains `..`"),
        (script_writing("conf/../../escape.txt", "escaped"), "contains `..`"),
        (script_writing("/tmp/regload-escape.txt", "escaped"), "is absolute"),
        // What a render removes is confined the same way.
        ("#{ remove: [\"../../../outside\"] }".to_string(), "contains `..`"),
        (format!("#{{ remove: [\"{}\"] }}", outside.display()), "is absolute"),
    ];
    for (i, (script, expected)) in escapes.iter().enumerate() {
        let tag = 10 + i as u8;
        let path = script;
        commit(&env, tag, &[("scripts/synced.rhai", script)]);
        switch(&env, Some(tag));
        let (_, err) = env
            .cmd(&["profiles", "create", "fake", "bad", "-p", "anthropic", "--api-key-stdin"])
            .env("RINGLET_SECRET_STORE", "file")
            .stdin(KEY)
            .code(1);
        assert!(err.contains(expected), "{path}: {err}");
        assert!(!profiles.join("bad").exists(), "{path}: a home was left behind");
        assert!(!env.config.join("profiles/bad.json").exists(), "{path}: a profile was left");
    }
    assert!(!Path::new("/tmp/regload-escape.txt").exists());
    assert!(outside.is_dir(), "a synced script removed a directory outside the home");
    let escaped: Vec<PathBuf> = files_under(&env.root)
        .into_iter()
        .filter(|p| p.file_name().is_some_and(|n| n == "escape.txt"))
        .collect();
    assert!(escaped.is_empty(), "written outside the home: {escaped:?}");
    assert_eq!(env.daemon_pid(), Some(pid), "the same daemon throughout");
}

/// One Claude Code message of `model` with 1000 input and 1000 output tokens.
fn claude_log_line(model: &str) -> String {
    serde_json::json!({
        "type": "assistant", "timestamp": "2026-03-02T09:00:03.100Z",
        "sessionId": "5b1f3c7e-0000-4000-8000-00000000aaaa", "uuid": "a1",
        "isSidechain": false, "requestId": "req_1",
        "message": {"id": "msg_regload", "type": "message", "role": "assistant", "model": model,
                    "content": [], "usage": {"input_tokens": 1000, "output_tokens": 1000}}
    })
    .to_string()
        + "\n"
}

fn litellm(model: &str, input: f64, output: f64) -> String {
    serde_json::json!({
        "sample_spec": {"input_cost_per_token": 0.0},
        model: {"input_cost_per_token": input, "output_cost_per_token": output}
    })
    .to_string()
}

fn report(env: &Env) -> Value {
    env.cmd(&["--json", "usage", "--timezone", "UTC"]).json()
}

#[test]
fn a_synced_price_changes_the_next_usage_report() {
    let env = Env::new("regload-pricing");
    let model = "regload-test-model";
    let log = env.home.join(".claude/projects/-home-dev-app/s.jsonl");
    fs::create_dir_all(log.parent().unwrap()).unwrap();
    fs::write(&log, claude_log_line(model)).unwrap();
    // Where the sync used to put prices: not read any more.
    fs::create_dir_all(env.config.join("registry")).unwrap();
    fs::write(env.config.join("registry/litellm-pricing.json"), litellm(model, 1e-3, 1e-3))
        .unwrap();
    let pid = daemon(&env);
    let r = report(&env);
    assert_eq!(r["totals"]["messages"], 1, "{r}");
    assert_eq!(r["unpriced_models"], serde_json::json!([model]), "not in the snapshot: {r}");
    assert_eq!(r["pricing"], "embedded", "{r}");

    commit(&env, 1, &[("pricing/litellm-pricing.json", &litellm(model, 1e-6, 2e-6))]);
    commit(&env, 2, &[("pricing/litellm-pricing.json", &litellm(model, 2e-6, 4e-6))]);
    let r = report(&env);
    assert_eq!(r["unpriced_models"], serde_json::json!([model]), "{r}");

    let cost = |r: &Value| r["totals"]["cost_usd"].as_f64().unwrap_or_else(|| panic!("{r}"));
    switch(&env, Some(1));
    let r = report(&env);
    // 1000 x 1e-6 + 1000 x 2e-6.
    assert!((cost(&r) - 0.003).abs() < 1e-12, "{r}");
    assert_eq!(r["unpriced_models"], serde_json::json!([]), "{r}");
    assert_eq!(r["pricing"], "registry", "{r}");
    switch(&env, Some(2));
    let r = report(&env);
    assert!((cost(&r) - 0.006).abs() < 1e-12, "{r}");
    // A commit without prices: the snapshot again, so unpriced.
    commit(&env, 3, &[("providers/x.toml", &provider_manifest("x", "X", "https://x.example"))]);
    switch(&env, Some(3));
    let r = report(&env);
    assert_eq!(r["unpriced_models"], serde_json::json!([model]), "{r}");
    assert_eq!(env.daemon_pid(), Some(pid), "the same daemon throughout");
}

#[test]
fn a_broken_synced_manifest_is_a_warning_with_file_and_line_and_the_rest_loads() {
    let env = Env::new("regload-broken");
    let pid = daemon(&env);
    let broken = "id = \"broken\"\nname = \"Broken\"\ntype = [\n";
    let bad_endpoint = "id = \"badurl\"\nname = \"Bad URL\"\ntype = \"openai\"\n\
                        [endpoints]\ndefault = \"ftp://nope\"\n[auth]\nenv_key = \"K\"\n";
    let bad_agent = "id = \"bad\"\nname = \"Bad\"\nbinary = \"../x\"\n[profile]\n\
                     strategy = \"home-wrapper\"\nsource_home = \"~/.x/{alias}\"\n\
                     script = \"x.rhai\"\nprovider_types = [\"openai\"]\n";
    let c = commit(
        &env,
        1,
        &[
            ("providers/broken.toml", broken),
            ("providers/badurl.toml", bad_endpoint),
            ("providers/good.toml", &provider_manifest("good", "Good", "https://good.example")),
            ("agents/bad.toml", bad_agent),
        ],
    );
    switch(&env, Some(1));
    let list = env.cmd(&["providers", "list", "--json"]).json();
    let ids: Vec<&str> =
        list["providers"].as_array().unwrap().iter().map(|p| p["id"].as_str().unwrap()).collect();
    assert!(ids.contains(&"good") && ids.contains(&"anthropic"), "{ids:?}");
    assert!(!ids.contains(&"broken") && !ids.contains(&"badurl"), "{ids:?}");
    let warnings: Vec<&str> =
        list["warnings"].as_array().unwrap().iter().map(|w| w.as_str().unwrap()).collect();
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    let file = |name: &str| c.join("providers").join(name).display().to_string();
    assert!(warnings[0].starts_with(&format!("{}:5:", file("badurl.toml"))), "{warnings:?}");
    assert!(warnings[1].starts_with(&format!("{}:3:", file("broken.toml"))), "{warnings:?}");
    let text = env.cmd(&["providers", "list"]).output();
    let stderr = String::from_utf8_lossy(&text.stderr);
    assert!(stderr.contains(&format!("{}:3:", file("broken.toml"))), "{stderr}");

    let agents = env.cmd(&["agents", "list", "--json"]).json();
    assert_eq!(agents["agents"].as_array().unwrap().len(), 5, "every built-in still loads");
    let warning = agents["warnings"][0].as_str().unwrap_or_default();
    assert!(
        warning.starts_with(&format!("{}:3: binary:", c.join("agents/bad.toml").display())),
        "{agents}"
    );
    assert!(env.log_text().contains("broken.toml:3:"), "logged by the daemon too");
    assert_eq!(env.daemon_pid(), Some(pid), "the same daemon throughout");
}

/// A profile's proxy, a long-lived child of its own, prices each request with
/// the table of the commit `current` names at that moment.
#[test]
fn a_running_proxy_prices_with_the_current_commit() {
    use crate::util::upstream::{MockUpstream, ServeChild, anthropic_message};
    let env = Env::new("regload-proxy");
    let model = "regload-proxy-model";
    let up = MockUpstream::always(anthropic_message(model, "ok", 1000, 1000));
    let token = "local-token-0123456789abcdef0123456789abcdef";
    let config = serde_json::json!({
        "alias": "work", "agent": "claude", "family": "anthropic", "local_token": token,
        "rules": [], "aliases": {}, "budget": {},
        "upstreams": {"default": {"url": up.url(), "auth": "x_api_key", "key": "k"}},
        "default_upstream": "default",
        "config_dir": env.config, "log_dir": env.config.join("proxy/work"),
    });
    commit(&env, 1, &[("pricing/litellm-pricing.json", &litellm(model, 1e-6, 2e-6))]);
    commit(&env, 2, &[("pricing/litellm-pricing.json", &litellm(model, 2e-6, 4e-6))]);
    let proxy = ServeChild::start(&env, &config);
    let body = serde_json::json!({"model": model, "max_tokens": 8,
                                  "messages": [{"role": "user", "content": "hi"}]})
    .to_string();
    let auth = [("x-api-key", token), ("anthropic-version", "2023-06-01")];
    let log = env.config.join("proxy/work/requests.jsonl");
    let costs = || -> Vec<Value> {
        let text = fs::read_to_string(&log).unwrap_or_default();
        text.lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap()["cost_usd"].clone())
            .collect()
    };
    let mut expected = Vec::new();
    for (tag, cost) in [(None, Value::Null), (Some(1), 0.003.into()), (Some(2), 0.006.into())] {
        switch(&env, tag);
        let answer = proxy.request("POST", "/v1/messages", &auth, body.as_bytes());
        assert_eq!(answer.status, 200, "{}", answer.text());
        expected.push(cost);
        let n = expected.len();
        assert!(
            crate::util::wait_until(std::time::Duration::from_secs(10), || costs().len() == n),
            "{:?}",
            costs()
        );
    }
    let got = costs();
    assert_eq!(got[0], Value::Null, "unpriced before any commit: {got:?}");
    for (got, want) in got.iter().zip(&expected).skip(1) {
        let (got, want) = (got.as_f64().unwrap(), want.as_f64().unwrap());
        assert!((got - want).abs() < 1e-12, "{got} vs {want}");
    }
}

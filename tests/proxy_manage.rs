//! The profile side of the proxy (issue 12, items 2, 3 and 8): provider
//! keys in a namespace of their own, rules, aliases and budgets checked
//! before anything is stored, `proxy enable` choosing a port, the agent
//! rendered against its proxy with the local token (never an upstream key,
//! in no output), the token's life (stable across restarts, gone with the
//! profile), `create --proxy`, and the same through REST. Real binary and
//! daemon in a temp world, file secret store.

use std::fs;
use std::net::SocketAddr;

use serde_json::{Value, json};

use crate::util::http::{Answer, request};
use crate::util::{Env, KEY, TestCommand, texts_under};

/// A provider key, distinct from the profile key [`KEY`].
const PKEY: &str = "sk-prov-ZYXWVUTSRQPONMLKJIHGFEDCBA9876543210";

/// A `ringlet` command with the file store pinned (whichever command
/// starts the daemon decides its store).
fn r(env: &Env, args: &[&str]) -> TestCommand {
    env.cmd(args).env("RINGLET_SECRET_STORE", "file")
}

fn create(env: &Env, agent: &str, alias: &str, provider: &str, extra: &[&str]) -> String {
    let mut args = vec!["profiles", "create", agent, alias, "-p", provider];
    args.extend_from_slice(&["--api-key-stdin", "--no-alias"]);
    args.extend_from_slice(extra);
    r(env, &args).stdin(KEY).ok()
}

fn set_provider_key(env: &Env, provider: &str, key: &str) -> String {
    r(env, &["providers", "key", "set", provider, "--api-key-stdin"]).stdin(key).ok()
}

fn secret_file(env: &Env, name: &str) -> Option<String> {
    fs::read_to_string(env.config.join("secrets").join(name)).ok()
}

fn profile_json(env: &Env, alias: &str) -> Value {
    let text = fs::read_to_string(env.config.join("profiles").join(format!("{alias}.json")))
        .expect("profile file");
    serde_json::from_str(&text).unwrap()
}

/// Neither key, nor the last 20 characters a script may use, is in `text`.
fn assert_no_key(what: &str, text: &str) {
    for key in [KEY, PKEY] {
        assert!(!text.contains(key), "{what} holds a key:\n{text}");
        assert!(!text.contains(&key[key.len() - 20..]), "{what} holds a key's tail:\n{text}");
    }
}

#[test]
fn provider_keys_live_apart_from_a_profile_named_like_the_provider() {
    let env = Env::new("pm-keys");
    create(&env, "codex", "openai", "openai", &[]);
    let out = set_provider_key(&env, "openai", PKEY);
    assert!(out.contains("provider.openai") && out.contains("file store"), "{out}");
    assert_no_key("key set output", &out);
    assert_eq!(secret_file(&env, "openai").as_deref(), Some(KEY));
    assert_eq!(secret_file(&env, "provider.openai").as_deref(), Some(PKEY));

    let list = r(&env, &["providers", "key", "list"]).ok();
    assert!(list.contains("openai") && list.contains("provider.openai"), "{list}");
    assert_no_key("key list", &list);
    let json = r(&env, &["providers", "key", "list", "--json"]).json();
    assert_eq!(
        json,
        json!([{"provider": "openai", "name": "provider.openai", "store": "file",
                             "used_by": []}])
    );

    // The profile's delete takes its own key only; a restart's orphan sweep
    // leaves the provider key too.
    r(&env, &["profiles", "delete", "openai"]).ok();
    assert_eq!(secret_file(&env, "openai"), None);
    assert_eq!(secret_file(&env, "provider.openai").as_deref(), Some(PKEY));
    r(&env, &["daemon", "stop"]).ok();
    r(&env, &["providers", "key", "list"]).ok();
    assert_eq!(secret_file(&env, "provider.openai").as_deref(), Some(PKEY));

    // A self provider takes no key; an unknown one is not found.
    let (_, err) =
        r(&env, &["providers", "key", "set", "self", "--api-key-stdin"]).stdin("x").code(1);
    assert!(err.contains("own login"), "{err}");
    let (_, err) =
        r(&env, &["providers", "key", "set", "nope", "--api-key-stdin"]).stdin("x").code(1);
    assert!(err.contains("nope"), "{err}");
    // A key never comes from argv: there is no such argument.
    r(&env, &["providers", "key", "set", "openai", PKEY]).code(2);

    r(&env, &["providers", "key", "remove", "openai"]).ok();
    assert_eq!(secret_file(&env, "provider.openai"), None);
    let (_, err) = r(&env, &["providers", "key", "remove", "openai"]).code(1);
    assert!(err.contains("no key"), "{err}");
    assert_eq!(r(&env, &["providers", "key", "list", "--json"]).json(), json!([]));
}

#[test]
fn bad_rules_and_aliases_store_nothing() {
    let env = Env::new("pm-bad");
    create(&env, "claude", "work", "anthropic", &[]);
    let before = profile_json(&env, "work")["routing"].clone();
    let refuse = |args: &[&str], needle: &str| {
        let (_, err) = r(&env, args).code(1);
        assert!(err.contains(needle), "{args:?}: expected `{needle}` in:\n{err}");
        assert_eq!(profile_json(&env, "work")["routing"], before, "{args:?} stored something");
        err
    };
    let add = |name: &'static str, cond: &'static str, target: &'static str| {
        ["proxy", "route", "add", "work", name, cond, target]
    };
    refuse(&add("r1", "always", "nope/model"), "unknown provider `nope`");
    refuse(&add("r1", "always", "zai@mars/glm-5.1"), "no endpoint `mars`");
    refuse(&add("r1", "always", "openai/gpt-5"), "does not translate");
    refuse(&add("r1", "always", "zai/glm-5.1"), "providers key set zai");
    refuse(&add("r1", "always", "zai"), "before the model");
    refuse(&add("Bad", "always", "anthropic/claude"), "invalid rule name");
    refuse(&add("r1", "always", "self/x"), "own login");
    refuse(&["proxy", "alias", "set", "work", "fast", "zai/glm-5.1"], "providers key set zai");
    refuse(&["proxy", "alias", "set", "work", "fast", "openrouter/x/y"], "does not translate");
    refuse(&["proxy", "route", "remove", "work", "none"], "no rule `none`");
    refuse(&["proxy", "alias", "remove", "work", "none"], "no model alias `none`");
    refuse(&["proxy", "budget", "set", "work", "--daily", "-5"], "0 or more");
    refuse(&["proxy", "route", "add", "ghost", "r", "always", "anthropic/c"], "no profile `ghost`");

    // With the key stored the same target is accepted, at a named endpoint.
    set_provider_key(&env, "zai", PKEY);
    r(&env, &["proxy", "route", "add", "work", "r1", "always", "zai@china/glm-5.1"]).ok();
    let (_, err) = r(&env, &add("r1", "thinking", "anthropic/claude-opus-4-8")).code(1);
    assert!(err.contains("already has a rule `r1`"), "{err}");
    assert_eq!(profile_json(&env, "work")["routing"]["rules"].as_array().unwrap().len(), 1);
}

/// With the LiteLLM backend a rule LiteLLM cannot express is refused when it
/// is added, naming the rule, not later when the proxy starts.
#[test]
fn the_litellm_backend_refuses_an_inexpressible_rule_when_it_is_added() {
    let env = Env::new("pm-litellm");
    env.write_config("[proxy]\nbackend = \"litellm\"\n");
    create(&env, "claude", "work", "anthropic", &[]);
    let before = profile_json(&env, "work")["routing"].clone();
    let add = ["proxy", "route", "add", "work", "long", "tokens > 60k", "anthropic/claude-x"];
    let (_, err) = r(&env, &add).code(1);
    assert!(err.contains("litellm") && err.contains("long"), "{err}");
    assert_eq!(profile_json(&env, "work")["routing"], before, "the rule was stored");
    // What LiteLLM can express is taken.
    r(&env, &["proxy", "route", "add", "work", "all", "always", "anthropic/claude-x"]).ok();
    r(&env, &["proxy", "alias", "set", "work", "fast", "anthropic/claude-y"]).ok();
}

#[test]
fn a_bad_condition_points_at_its_column_and_stores_nothing() {
    let env = Env::new("pm-cond");
    create(&env, "claude", "work", "anthropic", &[]);
    let before = profile_json(&env, "work")["routing"].clone();
    for (cond, column) in [("tokens > lots", 10), ("thinking and", 13), ("(always", 8), ("", 1)] {
        let args = ["proxy", "route", "add", "work", "r1", cond, "anthropic/claude"];
        let (_, err) = r(&env, &args).code(1);
        assert!(err.contains(&format!("bad condition: column {column}: ")), "{cond:?}: {err}");
        let caret = format!("\n  {cond}\n  {}^", " ".repeat(column - 1));
        assert!(err.contains(&caret), "{cond:?}: no caret under column {column}:\n{err}");
        assert_eq!(profile_json(&env, "work")["routing"], before, "{cond:?} stored something");
    }
    // Through REST the message names the column too.
    let (addr, token) = env.http();
    let body = json!({"name": "r1", "condition": "tokens > lots", "target": "anthropic/claude"});
    let a = call(addr, &token, "POST", "/api/profiles/work/proxy/routes", &body.to_string());
    assert_eq!(a.status, 400);
    assert!(a.json()["error"]["message"].as_str().unwrap().contains("column 10"));
}

#[test]
fn rules_list_in_try_order_move_and_remove() {
    let env = Env::new("pm-rules");
    create(&env, "claude", "work", "anthropic", &[]);
    let add = |name: &str, prio: &str| {
        r(
            &env,
            &["proxy", "route", "add", "work", name, "always", "anthropic/m", "--priority", prio],
        )
        .ok()
    };
    add("a", "0");
    add("b", "5");
    add("c", "0");
    add("d", "-3");
    let names = |v: Value| -> Vec<String> {
        v.as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap().to_string()).collect()
    };
    let list = || names(r(&env, &["proxy", "route", "list", "work", "--json"]).json());
    assert_eq!(list(), ["b", "a", "c", "d"]);
    let text = r(&env, &["proxy", "route", "list", "work"]).ok();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with('#') && lines[1].starts_with("1  b"), "{text}");

    r(&env, &["proxy", "route", "move", "work", "c", "--priority", "10"]).ok();
    assert_eq!(list(), ["c", "b", "a", "d"]);
    r(&env, &["proxy", "route", "move", "work", "b", "--priority=-10"]).ok();
    assert_eq!(list(), ["c", "a", "d", "b"]);
    r(&env, &["proxy", "route", "move", "work", "a"]).code(2); // --priority is required
    r(&env, &["proxy", "route", "remove", "work", "a"]).ok();
    assert_eq!(list(), ["c", "d", "b"]);
    // Stored in the order added, with the priorities given.
    let stored = profile_json(&env, "work")["routing"]["rules"].clone();
    assert_eq!(names(stored.clone()), ["b", "c", "d"]);
    assert_eq!(stored[0]["priority"], -10);
}

#[test]
fn aliases_and_budgets() {
    let env = Env::new("pm-alias");
    create(&env, "claude", "work", "anthropic", &[]);
    set_provider_key(&env, "minimax", PKEY);
    r(&env, &["proxy", "alias", "set", "work", "fast", "minimax/MiniMax-M2.1"]).ok();
    r(&env, &["proxy", "alias", "set", "work", "big", "anthropic/claude-opus-4-8"]).ok();
    let list = r(&env, &["proxy", "alias", "list", "work", "--json"]).json();
    assert_eq!(
        list,
        json!([{"model": "big", "target": "anthropic/claude-opus-4-8"},
                            {"model": "fast", "target": "minimax/MiniMax-M2.1"}])
    );
    r(&env, &["proxy", "alias", "set", "work", "fast", "anthropic/claude-haiku"]).ok();
    r(&env, &["proxy", "alias", "remove", "work", "big"]).ok();
    let list = r(&env, &["proxy", "alias", "list", "work", "--json"]).json();
    assert_eq!(list, json!([{"model": "fast", "target": "anthropic/claude-haiku"}]));

    let show = || r(&env, &["proxy", "budget", "show", "work", "--json"]).json();
    assert_eq!(show(), json!({"daily_usd": null, "monthly_usd": null}));
    r(&env, &["proxy", "budget", "set", "work", "--daily", "20"]).ok();
    r(&env, &["proxy", "budget", "set", "work", "--monthly", "$150.5"]).ok();
    assert_eq!(show(), json!({"daily_usd": 20.0, "monthly_usd": 150.5}));
    let text = r(&env, &["proxy", "budget", "show", "work"]).ok();
    assert!(text.contains("$20.00") && text.contains("$150.50"), "{text}");
    r(&env, &["proxy", "budget", "set", "work", "--daily", "none"]).ok();
    assert_eq!(show(), json!({"daily_usd": null, "monthly_usd": 150.5}));
    // Neither limit given: a usage error.
    r(&env, &["proxy", "budget", "set", "work"]).code(2);
    assert_eq!(profile_json(&env, "work")["routing"]["budget"]["monthly_usd"], 150.5);
}

#[test]
fn enable_renders_the_agent_against_its_proxy_with_the_local_token() {
    let env = Env::new("pm-enable");
    create(&env, "claude", "work", "anthropic", &[]);
    set_provider_key(&env, "zai", PKEY);
    r(&env, &["proxy", "route", "add", "work", "cheap", "not thinking", "zai/glm-5.1"]).ok();
    let env_of = || -> Vec<String> {
        r(&env, &["profiles", "env", "work"]).ok().lines().map(String::from).collect()
    };
    // Before: the profile's own endpoint and key.
    assert!(env_of().iter().any(|l| l.contains(KEY)));

    let out = r(&env, &["proxy", "enable", "work"]).ok();
    let port = profile_json(&env, "work")["routing"]["port"].as_u64().expect("a port chosen");
    assert!(port > 0 && profile_json(&env, "work")["proxy"] == true);
    let url = format!("http://127.0.0.1:{port}");
    assert!(out.contains(&format!("proxy URL:  {url}")), "{out}");
    let token = secret_file(&env, "proxy.work").expect("a local token");
    assert_eq!(token.len(), 64);
    assert!(token.bytes().all(|b| b.is_ascii_hexdigit()));

    let lines = env_of();
    let text = lines.join("\n");
    assert_no_key("profiles env", &text);
    assert!(text.contains(&format!("ANTHROPIC_BASE_URL='{url}'")), "{text}");
    assert!(text.contains(&format!("ANTHROPIC_API_KEY='{token}'")), "{text}");
    let home = env.home.join(".claude-profiles").join("work");
    let files = texts_under(&home);
    assert!(!files.is_empty(), "nothing rendered in {}", home.display());
    for (path, content) in &files {
        assert_no_key(&path.display().to_string(), content);
    }

    // Every other reply: config (text and JSON), inspect, list.
    let config = r(&env, &["proxy", "config", "work"]).ok();
    assert_no_key("proxy config", &config);
    assert!(!config.contains(&token), "{config}");
    assert!(config.contains("the profile's key (file store)"), "{config}");
    assert!(config.contains("provider key provider.zai (file store)"), "{config}");
    assert!(config.contains("https://api.z.ai/api/anthropic"), "{config}");
    let json = r(&env, &["proxy", "config", "work", "--json"]).json();
    assert_no_key("proxy config --json", &json.to_string());
    assert_eq!(json["proxy_url"], url.as_str());
    assert_eq!(json["rules"][0]["name"], "cheap");
    for args in [&["profiles", "inspect", "work", "--json"][..], &["profiles", "list"]] {
        let out = r(&env, args).ok();
        assert_no_key("profiles inspect/list", &out);
        assert!(!out.contains(&token));
    }

    let inspect = r(&env, &["profiles", "inspect", "work"]).ok();
    assert!(inspect.contains(&format!("  proxy:      on, port {port}; 1 rule(s)")), "{inspect}");

    // Stable across a daemon restart.
    r(&env, &["daemon", "stop"]).ok();
    assert!(env_of().join("\n").contains(&format!("ANTHROPIC_API_KEY='{token}'")));
    assert_eq!(secret_file(&env, "proxy.work").as_deref(), Some(token.as_str()));

    // Disable keeps the routing and the port; the agent talks directly again.
    r(&env, &["proxy", "disable", "work"]).ok();
    let routing = profile_json(&env, "work")["routing"].clone();
    assert_eq!(routing["port"], port);
    assert_eq!(routing["rules"][0]["name"], "cheap");
    let direct = env_of().join("\n");
    assert!(direct.contains(KEY) && !direct.contains(&url), "{direct}");
    r(&env, &["proxy", "enable", "work"]).ok();
    assert_eq!(profile_json(&env, "work")["routing"]["port"], port, "the port is kept");

    // A pinned port; another profile cannot take it.
    create(&env, "claude", "other", "anthropic", &[]);
    let (_, err) = r(&env, &["proxy", "enable", "other", "--port", &port.to_string()]).code(1);
    assert!(err.contains("proxy port of profile `work`"), "{err}");
    // Nor the daemon's own HTTP port.
    let status = r(&env, &["daemon", "status", "--json"]).json();
    let http = status["http"].as_str().unwrap().rsplit(':').next().unwrap().to_string();
    let (_, err) = r(&env, &["proxy", "enable", "other", "--port", &http]).code(1);
    assert!(err.contains("the daemon's HTTP API port"), "{err}");
    r(&env, &["proxy", "enable", "other", "--port", "1"]).ok();
    assert_eq!(profile_json(&env, "other")["routing"]["port"], 1);

    // The delete takes the local token.
    r(&env, &["profiles", "delete", "work"]).ok();
    assert_eq!(secret_file(&env, "proxy.work"), None);
    assert_eq!(secret_file(&env, "provider.zai").as_deref(), Some(PKEY));
}

#[test]
fn every_builtin_script_points_its_agent_at_the_proxy() {
    let env = Env::new("pm-scripts");
    // agent, provider, the base URL the agent must be given
    let cases = [
        ("claude", "zai", ""),
        ("codex", "openai", "/v1"),
        ("opencode", "anthropic", "/v1"),
        ("opencode", "openrouter", "/v1"),
        ("grok", "openai", "/v1"),
        ("droid", "anthropic", ""),
        ("droid", "minimax-openai", "/v1"),
    ];
    for (i, (agent, provider, suffix)) in cases.iter().enumerate() {
        let alias = format!("s{i}");
        let out = create(&env, agent, &alias, provider, &["--proxy"]);
        let port = profile_json(&env, &alias)["routing"]["port"].as_u64().expect("port");
        assert!(out.contains(&format!("port {port}")), "{out}");
        let token = secret_file(&env, &format!("proxy.{alias}")).expect("token at create");
        let exported = r(&env, &["profiles", "env", &alias]).ok();
        assert_no_key(&format!("{agent}/{provider} env"), &exported);
        let home = profile_json(&env, &alias)["home"].as_str().unwrap().to_string();
        let files = texts_under(std::path::Path::new(&home));
        let url = format!("http://127.0.0.1:{port}{suffix}");
        let everything = format!(
            "{exported}\n{}",
            files.iter().map(|(_, c)| c.as_str()).collect::<Vec<_>>().join("\n")
        );
        assert_no_key(&format!("{agent}/{provider} files"), &everything);
        let quoted = [format!("'{url}'"), format!("\"{url}\"")];
        assert!(
            quoted.iter().any(|q| everything.contains(q.as_str())),
            "{agent}/{provider}: {url} not given to the agent:\n{everything}"
        );
        assert!(everything.contains(&token), "{agent}/{provider}: no local token:\n{everything}");
        for upstream in
            ["api.anthropic.com", "api.openai.com", "api.z.ai", "openrouter.ai", "minimax.io"]
        {
            assert!(
                !everything.contains(upstream),
                "{agent}/{provider}: {upstream} leaked:\n{everything}"
            );
        }
    }
}

#[test]
fn create_proxy_refuses_self_before_asking_for_a_key() {
    let env = Env::new("pm-self");
    // No terminal and no stdin: a key prompt would fail with another message.
    let (_, err) =
        r(&env, &["profiles", "create", "claude", "me", "-p", "self", "--proxy", "--no-alias"])
            .code(1);
    assert!(err.contains("own login") && err.contains("proxy"), "{err}");
    assert!(!err.contains("terminal"), "{err}");
    assert!(!env.config.join("profiles").join("me.json").exists());
    // The daemon refuses it too, for any client.
    let (addr, token) = env.http();
    let body = json!({"agent": "claude", "alias": "me", "provider": "self", "proxy": true});
    let a = call(addr, &token, "POST", "/api/profiles", &body.to_string());
    assert_eq!(a.status, 400, "{}", String::from_utf8_lossy(&a.body));
    assert!(a.json()["error"]["message"].as_str().unwrap().contains("own login"));
    // An existing self profile cannot be enabled either.
    r(&env, &["profiles", "create", "claude", "me", "-p", "self", "--no-alias"]).ok();
    let (_, err) = r(&env, &["proxy", "enable", "me"]).code(1);
    assert!(err.contains("own login"), "{err}");
    assert_eq!(profile_json(&env, "me")["proxy"], false);
}

fn call(addr: SocketAddr, token: &str, method: &str, path: &str, body: &str) -> Answer {
    let auth = format!("Bearer {token}");
    request(addr, method, path, &[("Authorization", &auth)], body.as_bytes())
}

#[test]
fn the_same_through_rest() {
    let env = Env::new("pm-rest");
    create(&env, "claude", "work", "anthropic", &[]);
    let (addr, token) = env.http();
    let call = |method: &str, path: &str, body: &str| -> Answer {
        let a = call(addr, &token, method, path, body);
        assert_no_key(&format!("{method} {path}"), &String::from_utf8_lossy(&a.body));
        a
    };
    let ok = |method: &str, path: &str, body: &str| -> Value {
        let a = call(method, path, body);
        assert_eq!(a.status, 200, "{method} {path}: {}", String::from_utf8_lossy(&a.body));
        a.json()["data"].clone()
    };

    let a = call("PUT", "/api/providers/zai/key", &json!({"key": PKEY}).to_string());
    assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
    assert_eq!(secret_file(&env, "provider.zai").as_deref(), Some(PKEY));
    assert_eq!(ok("GET", "/api/providers/keys", "")[0]["name"], "provider.zai");
    assert_eq!(call("GET", "/api/providers/zai/key", "").status, 405);

    let enabled = ok("POST", "/api/profiles/work/proxy/enable", "");
    let port = enabled["port"].as_u64().unwrap();
    assert_eq!(enabled["proxy_url"], format!("http://127.0.0.1:{port}"));

    let rule = |name: &str, target: &str, prio: i64| {
        json!({"name": name, "condition": "thinking", "target": target, "priority": prio})
            .to_string()
    };
    let bad = call("POST", "/api/profiles/work/proxy/routes", &rule("x", "openai/gpt", 0));
    assert_eq!(bad.status, 400);
    assert!(bad.json()["error"]["message"].as_str().unwrap().contains("does not translate"));
    let bad = call("POST", "/api/profiles/work/proxy/routes", &rule("x", "minimax/m", 0));
    assert!(bad.json()["error"]["message"].as_str().unwrap().contains("providers key set minimax"));
    ok("POST", "/api/profiles/work/proxy/routes", &rule("low", "zai/glm-5.1", 0));
    let rows = ok("POST", "/api/profiles/work/proxy/routes", &rule("high", "anthropic/m", 3));
    assert_eq!(rows[0]["name"], "high");
    let dup = call("POST", "/api/profiles/work/proxy/routes", &rule("high", "anthropic/m", 3));
    assert_eq!(dup.status, 409);
    let rows = ok("POST", "/api/profiles/work/proxy/routes/low/move", r#"{"priority":9}"#);
    assert_eq!(rows[0]["name"], "low");
    assert_eq!(ok("GET", "/api/profiles/work/proxy/routes", "")[1]["name"], "high");
    ok("DELETE", "/api/profiles/work/proxy/routes/high", "");
    assert_eq!(call("DELETE", "/api/profiles/work/proxy/routes/high", "").status, 404);

    ok("PUT", "/api/profiles/work/proxy/aliases/fast", r#"{"target":"zai/glm-5.1"}"#);
    ok("POST", "/api/profiles/work/proxy/aliases", r#"{"model":"big","target":"anthropic/o"}"#);
    assert_eq!(ok("GET", "/api/profiles/work/proxy/aliases", "").as_array().unwrap().len(), 2);
    ok("DELETE", "/api/profiles/work/proxy/aliases/big", "");

    let b = ok("PUT", "/api/profiles/work/proxy/budget", r#"{"daily_usd":20}"#);
    assert_eq!(b, json!({"daily_usd": 20.0, "monthly_usd": null}));
    assert_eq!(ok("GET", "/api/profiles/work/proxy/budget", ""), b);

    let view = ok("GET", "/api/proxy/config/work", "");
    assert_eq!(view, ok("GET", "/api/profiles/work/proxy", ""));
    assert_eq!(view["rules"][0]["name"], "low");
    assert_eq!(view["aliases"][0]["model"], "fast");
    assert_eq!(view["budget"]["daily_usd"], 20.0);
    let local = secret_file(&env, "proxy.work").unwrap();
    for path in ["/api/profiles/work/env", "/api/profiles/work", "/api/proxy/config/work"] {
        let body = String::from_utf8_lossy(&call("GET", path, "").body).into_owned();
        assert!(!body.contains(&local), "{path} shows the local token: {body}");
    }

    ok("POST", "/api/profiles/work/proxy/disable", "");
    assert_eq!(profile_json(&env, "work")["proxy"], false);
    ok("DELETE", "/api/providers/zai/key", "");
    assert_eq!(secret_file(&env, "provider.zai"), None);
    // The view says what is wrong now, without failing.
    let view = ok("GET", "/api/proxy/config/work", "");
    let zai = view["upstreams"].as_array().unwrap().iter().find(|u| u["name"] == "zai").unwrap();
    assert!(zai["problem"].as_str().unwrap().contains("providers key set zai"), "{view}");
}

#[test]
fn routing_changes_are_announced() {
    use std::io::{BufReader, Write};
    use std::os::unix::net::UnixStream;
    let env = Env::new("pm-events");
    create(&env, "claude", "work", "anthropic", &[]);
    let stream = UnixStream::connect(env.socket()).unwrap();
    (&stream)
        .write_all(b"{\"version\":2,\"request\":{\"type\":\"subscribe\",\"events\":[\"ProfileUpdated\"]}}\n")
        .unwrap();
    let mut reader = BufReader::new(stream);
    let wait = std::time::Duration::from_secs(10);
    crate::util::read_line_matching(&mut reader, wait, |_| true).expect("ack");
    for (args, change) in [
        (&["proxy", "enable", "work"][..], "proxy enabled"),
        (&["proxy", "route", "add", "work", "a", "always", "anthropic/m"], "proxy rule added"),
        (&["proxy", "route", "move", "work", "a", "--priority", "2"], "proxy rule moved"),
        (&["proxy", "alias", "set", "work", "m", "anthropic/n"], "proxy alias set"),
        (&["proxy", "budget", "set", "work", "--daily", "1"], "proxy budget set"),
        (&["proxy", "disable", "work"], "proxy disabled"),
    ] {
        r(&env, args).ok();
        let line =
            crate::util::read_line_matching(&mut reader, wait, |l| l.contains("ProfileUpdated"))
                .unwrap_or_else(|| panic!("no ProfileUpdated after {args:?}"));
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["data"], json!({"alias": "work", "change": change}), "{args:?}");
    }
}

/// The real Secret Service (tests/with-keyring.sh): a provider key, a
/// profile key and a local token for names that would collide without the
/// namespaces, each its own keychain item. The provider is a user manifest
/// with an id unique to this run, as the keychain is shared.
#[test]
fn keychain_items_are_namespaced() {
    let Some(bus) = crate::util::keychain_bus() else { return };
    let env = Env::new("pm-keychain");
    let id = format!("kc{}", std::process::id());
    let dir = env.config.join("providers.d");
    fs::create_dir_all(&dir).unwrap();
    fs::write(
        dir.join(format!("{id}.toml")),
        format!(
            "id = \"{id}\"\nname = \"KC\"\ntype = \"openai-compatible\"\n\n[endpoints]\n\
             default = \"https://kc.example/v1\"\n\n[auth]\nenv_key = \"KC_API_KEY\"\n\n\
             [models]\ndefault = \"m\"\n"
        ),
    )
    .unwrap();
    let kc = |args: &[&str]| {
        env.cmd(args).env("DBUS_SESSION_BUS_ADDRESS", &bus).env("RINGLET_SECRET_STORE", "keyring")
    };
    let lookup = |name: &str| crate::util::keychain_lookup(&bus, name);
    let (provider, token) = (format!("provider.{id}"), format!("proxy.{id}"));
    kc(&["profiles", "create", "codex", &id, "-p", &id, "--api-key-stdin", "--no-alias"])
        .stdin(KEY)
        .ok();
    kc(&["providers", "key", "set", &id, "--api-key-stdin"]).stdin(PKEY).ok();
    assert_eq!(lookup(&id), KEY);
    assert_eq!(lookup(&provider), PKEY);
    let list = kc(&["providers", "key", "list", "--json"]).json();
    assert_eq!(list[0]["store"], "keyring", "{list}");
    kc(&["proxy", "enable", &id]).ok();
    let local = lookup(&token);
    assert_eq!(local.len(), 64, "the local token is a keychain item");
    let exported = kc(&["profiles", "env", &id]).ok();
    assert!(exported.contains(&local), "{exported}");
    assert_no_key("profiles env", &exported);
    assert!(texts_under(&env.config.join("secrets")).is_empty(), "nothing in the file store");
    kc(&["daemon", "stop"]).ok();
    assert!(kc(&["profiles", "env", &id]).ok().contains(&local), "stable across restarts");

    kc(&["profiles", "delete", &id]).ok();
    assert_eq!(lookup(&id), "");
    assert_eq!(lookup(&token), "", "the delete removes the local token");
    assert_eq!(lookup(&provider), PKEY, "the provider key stays");
    kc(&["providers", "key", "remove", &id]).ok();
    assert_eq!(lookup(&provider), "");
}

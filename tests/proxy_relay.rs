//! The proxy child (`ringlet proxy serve`) run directly, as the daemon runs it (listener on fd 3,
//! config on stdin), against programmable mock upstreams: streaming event by event, the fallback
//! matrix, what is never retried, fidelity of body, path and headers, local auth, the body cap,
//! HTTPS with a test CA, the budget, the request log and the stats.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};

use crate::util::Env;
use crate::util::upstream::{
    Action, Gate, MockUpstream, Reply, ServeChild, anthropic_error, anthropic_message,
    anthropic_stream, dead_url,
};

pub(crate) const TOKEN: &str = "local-token-0123456789abcdef0123456789abcdef";

/// A `ServeConfig` for profile `work` (Claude Code, Anthropic family) whose default upstream is
/// `default` and whose other upstreams are `ups` (key, url, auth style, upstream key).
pub(crate) fn config(
    env: &Env,
    ups: &[(&str, &str, &str, &str)],
    rules: Value,
    budget: Value,
) -> Value {
    let mut upstreams = serde_json::Map::new();
    for (name, url, auth, key) in ups {
        upstreams.insert(name.to_string(), json!({"url": url, "auth": auth, "key": key}));
    }
    json!({
        "alias": "work",
        "agent": "claude",
        "family": "anthropic",
        "local_token": TOKEN,
        "rules": rules,
        "aliases": {},
        "budget": budget,
        "upstreams": upstreams,
        "default_upstream": ups.first().map(|u| u.0).unwrap_or("default"),
        "config_dir": env.config,
        "log_dir": log_dir(env),
    })
}

fn log_dir(env: &Env) -> std::path::PathBuf {
    env.config.join("proxy").join("work")
}

/// `always` rules, in order (the first has the highest priority).
fn chain(targets: &[&str]) -> Value {
    let n = targets.len() as i64;
    Value::Array(
        targets
            .iter()
            .enumerate()
            .map(|(i, t)| {
                json!({"name": format!("r{i}"), "condition": "always", "target": t,
                       "priority": n - i as i64})
            })
            .collect(),
    )
}

fn auth() -> [(&'static str, &'static str); 2] {
    [("x-api-key", TOKEN), ("anthropic-version", "2023-06-01")]
}

fn message(model: &str, stream: bool) -> Vec<u8> {
    json!({"model": model, "max_tokens": 64, "stream": stream,
           "messages": [{"role": "user", "content": "hello"}]})
    .to_string()
    .into_bytes()
}

fn log_lines(env: &Env) -> Vec<Value> {
    let text = std::fs::read_to_string(log_dir(env).join("requests.jsonl")).unwrap_or_default();
    text.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn stats_of(proxy: &ServeChild) -> Value {
    proxy
        .request("GET", "/ringlet/stats", &[("authorization", &format!("Bearer {TOKEN}"))], b"")
        .json()
}

#[test]
fn a_stream_reaches_the_client_event_by_event() {
    let env = Env::new("proxy-stream");
    let events = anthropic_stream("claude-sonnet-4-5", &["one ", "two ", "three"], 11, 7);
    let gate = Gate::new();
    let up =
        MockUpstream::always(Reply::sse(&events).paced(Duration::from_millis(300)).gated(&gate));
    let proxy = ServeChild::start(
        &env,
        &config(&env, &[("default", &up.url(), "x_api_key", "k")], json!([]), json!({})),
    );
    let mut conn = proxy
        .open("POST", "/v1/messages?beta=true", &auth(), &message("claude-sonnet-4-5", true))
        .unwrap();
    let head = conn.head().unwrap();
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-type"), Some("text/event-stream"));
    // The mock sends event i+1 only after the gate opens, and the gate opens only once event
    // i has reached this client: a proxy that held events back would stall here (the client's
    // read times out after 8 s, the mock's gate after 10 s).
    let mut received = String::new();
    for (i, event) in events.iter().enumerate() {
        while !received.contains(event.as_str()) {
            let chunk = conn.chunk().unwrap_or_else(|e| panic!("event {i}: {e}; got {received:?}"));
            let chunk = chunk.unwrap_or_else(|| panic!("the stream ended before event {i}"));
            received.push_str(std::str::from_utf8(&chunk).unwrap());
        }
        gate.open();
    }
    assert_eq!(conn.chunk().unwrap(), None, "the stream ends cleanly");
    assert_eq!(received, events.concat());
    let up_seen = up.requests();
    assert_eq!(up_seen.len(), 1);
    assert_eq!(up_seen[0].query.as_deref(), Some("beta=true"));
    // The log line: tokens from message_start and message_delta, priced.
    assert!(crate::util::wait_until(Duration::from_secs(5), || !log_lines(&env).is_empty()));
    let line = &log_lines(&env)[0];
    assert_eq!(line["stream"], true);
    assert_eq!(line["status"], 200);
    assert_eq!(line["tokens"]["input"], 11);
    assert_eq!(line["tokens"]["output"], 7);
    let expected = 11.0 * 3e-6 + 7.0 * 15e-6;
    assert!((line["cost_usd"].as_f64().unwrap() - expected).abs() < 1e-12, "{line}");
}

#[test]
fn fallback_goes_down_the_chain_each_upstream_with_its_own_key_and_model() {
    let env = Env::new("proxy-fallback");
    let dead = dead_url();
    let e500 = MockUpstream::always(anthropic_error(500, "api_error", "boom"));
    let e429 = MockUpstream::always(anthropic_error(429, "rate_limit_error", "slow down"));
    let e529 = MockUpstream::always(anthropic_error(529, "overloaded_error", "overloaded"));
    let ok = MockUpstream::always(anthropic_message("m-ok", "fine", 5, 3));
    let ups = [
        ("default", dead.as_str(), "x_api_key", "key-default"),
        ("dead", dead.as_str(), "x_api_key", "key-dead"),
        ("u500", &e500.url(), "x_api_key", "key-500"),
        ("u429", &e429.url(), "bearer", "key-429"),
        ("u529", &e529.url(), "x_api_key", "key-529"),
        ("uok", &ok.url(), "bearer", "key-ok"),
    ];
    let rules = chain(&["dead/m-dead", "u500/m-500", "u429/m-429", "u529/m-529", "uok/m-ok"]);
    let proxy = ServeChild::start(&env, &config(&env, &ups, rules, json!({})));
    let answer =
        proxy.request("POST", "/v1/messages", &auth(), &message("claude-sonnet-4-5", false));
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.json()["content"][0]["text"], "fine");
    for (mock, key, bearer, model) in [
        (&e500, "key-500", false, "m-500"),
        (&e429, "key-429", true, "m-429"),
        (&e529, "key-529", false, "m-529"),
        (&ok, "key-ok", true, "m-ok"),
    ] {
        let seen = mock.requests();
        assert_eq!(seen.len(), 1, "{model}: one request each");
        let seen = &seen[0];
        assert_eq!(seen.model().as_deref(), Some(model));
        if bearer {
            assert_eq!(seen.header("authorization"), Some(format!("Bearer {key}").as_str()));
            assert_eq!(seen.header("x-api-key"), None);
        } else {
            assert_eq!(seen.header("x-api-key"), Some(key));
            assert_eq!(seen.header("authorization"), None);
        }
    }
    assert!(crate::util::wait_until(Duration::from_secs(5), || !log_lines(&env).is_empty()));
    let line = &log_lines(&env)[0];
    let statuses: Vec<Value> =
        line["attempts"].as_array().unwrap().iter().map(|a| a["status"].clone()).collect();
    assert_eq!(statuses, [Value::Null, json!(500), json!(429), json!(529), json!(200)], "{line}");
    assert!(line["attempts"][0]["error"].as_str().is_some_and(|e| !e.is_empty()), "{line}");
    assert_eq!(line["target"], "uok/m-ok");
    assert_eq!(line["rule"], "r0");
    // Stats: each failing target counts an error and a fallback.
    let stats = stats_of(&proxy);
    let targets = stats["targets"].as_array().unwrap();
    let of = |t: &str| targets.iter().find(|x| x["target"] == t).unwrap().clone();
    assert_eq!(of("u500/m-500")["fallbacks"], 1);
    assert_eq!(of("dead/m-dead")["errors"], 1);
    assert_eq!(of("uok/m-ok")["errors"], 0);
    assert_eq!(stats["requests"], 1);
    // The stats request itself is not an agent's request in flight.
    assert_eq!(stats["in_flight"], 0, "{stats}");
}

#[test]
fn a_400_or_401_is_the_answer_and_is_not_retried() {
    let env = Env::new("proxy-4xx");
    for status in [400, 401] {
        let bad = MockUpstream::always(anthropic_error(status, "invalid_request_error", "no"));
        let next = MockUpstream::always(anthropic_message("m", "should not be asked", 1, 1));
        let ups =
            [("bad", &bad.url()[..], "x_api_key", "k1"), ("next", &next.url(), "x_api_key", "k2")];
        let proxy =
            ServeChild::start(&env, &config(&env, &ups, chain(&["bad/m", "next/m"]), json!({})));
        let answer = proxy.request("POST", "/v1/messages", &auth(), &message("m", false));
        assert_eq!(answer.status, status);
        assert_eq!(answer.json()["error"]["message"], "no");
        assert!(next.requests().is_empty(), "{status} was retried");
    }
}

#[test]
fn when_every_upstream_fails_the_last_status_or_a_502_comes_back() {
    let env = Env::new("proxy-allfail");
    let e500 = MockUpstream::always(anthropic_error(500, "api_error", "first"));
    let e503 = MockUpstream::always(anthropic_error(503, "api_error", "second"));
    let ups = [("a", &e500.url()[..], "x_api_key", "k"), ("b", &e503.url(), "x_api_key", "k")];
    let proxy = ServeChild::start(&env, &config(&env, &ups, chain(&["a/m", "b/m"]), json!({})));
    let answer = proxy.request("POST", "/v1/messages", &auth(), &message("m", false));
    assert_eq!(answer.status, 503);
    assert_eq!(answer.json()["error"]["message"], "second");
    drop(proxy);

    let (d1, d2) = (dead_url(), dead_url());
    let ups = [("a", &d1[..], "x_api_key", "k"), ("b", &d2[..], "x_api_key", "k")];
    let proxy = ServeChild::start(&env, &config(&env, &ups, chain(&["a/m", "b/m"]), json!({})));
    let answer = proxy.request("POST", "/v1/messages", &auth(), &message("m", false));
    assert_eq!(answer.status, 502);
    let body = answer.json();
    assert_eq!(body["type"], "error");
    assert_eq!(body["error"]["type"], "api_error");
    let text = body["error"]["message"].as_str().unwrap();
    assert!(text.starts_with("ringlet: ") && text.contains("b/m"), "{text}");
}

#[test]
fn a_failure_after_the_first_byte_is_passed_on_not_retried() {
    let env = Env::new("proxy-midstream");
    let events = anthropic_stream("m", &["partial"], 3, 2);
    let broken = MockUpstream::always(Reply::sse(&events).cut_after(events[0].len()));
    let next = MockUpstream::always(anthropic_message("m", "should not be asked", 1, 1));
    let ups = [("a", &broken.url()[..], "x_api_key", "k"), ("b", &next.url(), "x_api_key", "k")];
    let proxy = ServeChild::start(&env, &config(&env, &ups, chain(&["a/m", "b/m"]), json!({})));
    let mut conn = proxy.open("POST", "/v1/messages", &auth(), &message("m", true)).unwrap();
    assert_eq!(conn.head().unwrap().status, 200);
    let first = conn.chunk().unwrap().expect("the first event");
    assert_eq!(String::from_utf8(first).unwrap(), events[0]);
    let end = conn.chunk();
    assert!(end.is_err(), "the cut must reach the client as a broken stream: {end:?}");
    assert!(next.requests().is_empty(), "retried after the first byte");
    assert!(crate::util::wait_until(Duration::from_secs(5), || !log_lines(&env).is_empty()));
    let line = &log_lines(&env)[0];
    assert!(line["attempts"][0]["error"].as_str().unwrap().contains("broke off"), "{line}");
}

#[test]
fn the_upstream_gets_the_same_body_path_and_headers_except_model_and_keys() {
    let env = Env::new("proxy-fidelity");
    let up = MockUpstream::always(anthropic_message("target-model", "ok", 1, 1));
    let ups = [("default", &up.url()[..], "x_api_key", "upstream-key")];
    let proxy =
        ServeChild::start(&env, &config(&env, &ups, chain(&["default/target-model"]), json!({})));
    let sent = json!({
        "model": "claude-opus-4-1", "max_tokens": 1000, "temperature": 0.7,
        "thinking": {"type": "enabled", "budget_tokens": 500},
        "system": [{"type": "text", "text": "be brief", "cache_control": {"type": "ephemeral"}}],
        "tools": [{"name": "Bash", "input_schema": {"type": "object", "properties": {"cmd": {"type": "string"}}}}],
        "messages": [{"role": "user", "content": [{"type": "text", "text": "héllo \u{1F600} \"quoted\""}]}],
        "metadata": {"user_id": "u-1"}
    });
    let headers = [
        ("x-api-key", TOKEN),
        ("anthropic-version", "2023-06-01"),
        ("anthropic-beta", "claude-code-20250219,interleaved-thinking-2025-05-14"),
        ("x-claude-code-session-id", "sess-42"),
        ("x-stainless-retry-count", "0"),
        ("user-agent", "claude-cli/2.1.332 (external, cli)"),
        ("accept-encoding", "gzip, deflate, br"),
        ("connection", "keep-alive, x-hop"),
        ("x-hop", "dropped because Connection names it"),
        ("keep-alive", "timeout=5"),
        ("content-type", "application/json"),
    ];
    let answer =
        proxy.request("POST", "/v1/messages?beta=true", &headers, sent.to_string().as_bytes());
    assert_eq!(answer.status, 200, "{}", answer.text());
    let seen = &up.requests()[0];
    let mut expected = sent.clone();
    expected["model"] = json!("target-model");
    assert_eq!(seen.json(), expected);
    // Byte for byte, in fact: only the model's value was spliced.
    let spliced = sent.to_string().replace("\"claude-opus-4-1\"", "\"target-model\"");
    assert_eq!(String::from_utf8_lossy(&seen.body), spliced);
    assert_eq!(seen.method, "POST");
    assert_eq!(seen.path, "/v1/messages");
    assert_eq!(seen.query.as_deref(), Some("beta=true"));
    for (name, value) in &headers[1..6] {
        assert_eq!(seen.header(name), Some(*value), "{name} passes");
    }
    assert_eq!(seen.header("content-type"), Some("application/json"));
    assert_eq!(seen.header("x-api-key"), Some("upstream-key"));
    for name in ["authorization", "accept-encoding", "x-hop", "keep-alive"] {
        assert_eq!(seen.header(name), None, "{name} must not pass");
    }
    assert!(
        !seen.headers.iter().any(|(_, v)| v.contains(TOKEN)),
        "the local token went upstream: {:?}",
        seen.headers
    );

    // No rule: the default upstream gets the body byte for byte, and a GET passes unchanged.
    drop(proxy);
    let proxy = ServeChild::start(&env, &config(&env, &ups, json!([]), json!({})));
    let raw = b"{\"model\":\"claude-opus-4-1\",  \"max_tokens\": 5, \"messages\":[]}";
    proxy.request("POST", "/v1/messages", &auth(), raw);
    assert_eq!(up.requests()[1].body, raw);
    proxy.request("GET", "/v1/models?limit=5", &auth(), b"");
    let get = &up.requests()[2];
    assert_eq!(
        (get.method.as_str(), get.path.as_str(), get.query.as_deref()),
        ("GET", "/v1/models", Some("limit=5"))
    );
    assert_eq!(get.header("content-length"), None);
}

#[test]
fn an_openai_agent_s_v1_is_the_upstream_s_path_and_its_key_is_a_bearer() {
    let env = Env::new("proxy-openai");
    let up = MockUpstream::always(Reply::json(
        200,
        &json!({"id": "resp_1", "usage": {"input_tokens": 9, "output_tokens": 2}}),
    ));
    let url = format!("{}/api/paas/v4", up.url());
    let mut cfg = config(&env, &[("zai", &url, "bearer", "zai-key")], json!([]), json!({}));
    cfg["family"] = json!("open_ai");
    cfg["agent"] = json!("codex");
    let proxy = ServeChild::start(&env, &cfg);
    let headers =
        [("authorization", &format!("Bearer {TOKEN}")[..]), ("content-type", "application/json")];
    let body = json!({"model": "glm-5.1", "input": "hi", "stream": false}).to_string();
    let answer = proxy.request("POST", "/v1/responses", &headers, body.as_bytes());
    assert_eq!(answer.status, 200, "{}", answer.text());
    let seen = &up.requests()[0];
    assert_eq!(seen.path, "/api/paas/v4/responses");
    assert_eq!(seen.header("authorization"), Some("Bearer zai-key"));
    // A wrong token gets the OpenAI error shape.
    let answer = proxy.request(
        "POST",
        "/v1/responses",
        &[("authorization", "Bearer nope")],
        body.as_bytes(),
    );
    assert_eq!(answer.status, 401);
    assert_eq!(answer.json()["error"]["code"], "invalid_api_key");
}

#[test]
fn a_wrong_or_missing_local_token_gets_401_and_health_needs_none() {
    let env = Env::new("proxy-auth");
    let up = MockUpstream::always(anthropic_message("m", "ok", 1, 1));
    let proxy = ServeChild::start(
        &env,
        &config(&env, &[("default", &up.url(), "x_api_key", "k")], json!([]), json!({})),
    );
    let body = message("m", false);
    for headers in [
        vec![],
        vec![("x-api-key", "wrong")],
        vec![("authorization", "Bearer wrong")],
        vec![("x-api-key", &TOKEN[..TOKEN.len() - 1])],
        vec![("authorization", TOKEN)],
    ] {
        let answer = proxy.request("POST", "/v1/messages", &headers, &body);
        assert_eq!(answer.status, 401, "{headers:?}");
        let error = answer.json();
        assert_eq!(error["type"], "error");
        assert_eq!(error["error"]["type"], "authentication_error");
    }
    assert!(up.requests().is_empty());
    assert_eq!(proxy.request("GET", "/ringlet/stats", &[], b"").status, 401);
    let health = proxy.request("GET", "/health", &[], b"");
    assert_eq!(health.status, 200);
    assert_eq!(health.json(), json!({"ok": true, "alias": "work", "pid": proxy.pid()}));
    // The Bearer form of the right token passes.
    let answer = proxy.request(
        "POST",
        "/v1/messages",
        &[("authorization", &format!("Bearer {TOKEN}"))],
        &body,
    );
    assert_eq!(answer.status, 200);
}

#[test]
fn a_body_over_the_cap_gets_413_in_the_family_shape() {
    let env = Env::new("proxy-cap");
    let up = MockUpstream::always(anthropic_message("m", "ok", 1, 1));
    let proxy = ServeChild::start(
        &env,
        &config(&env, &[("default", &up.url(), "x_api_key", "k")], json!([]), json!({})),
    );
    // Announced over the cap: refused before any of it is read.
    let mut conn = proxy
        .open("POST", "/v1/messages", &[("x-api-key", TOKEN), ("content-length", "33554433")], b"")
        .unwrap();
    let mut answer = conn.head().unwrap();
    answer.body = conn.rest().unwrap();
    assert_eq!(answer.status, 413);
    assert_eq!(answer.json()["error"]["type"], "request_too_large");
    // Chunked, growing past the cap.
    let chunk = vec![b' '; 1 << 20];
    let mut body = Vec::new();
    for _ in 0..33 {
        body.extend(format!("{:x}\r\n", chunk.len()).into_bytes());
        body.extend(&chunk);
        body.extend(b"\r\n");
    }
    let mut conn = proxy
        .open(
            "POST",
            "/v1/messages",
            &[("x-api-key", TOKEN), ("transfer-encoding", "chunked")],
            &body,
        )
        .unwrap();
    assert_eq!(conn.head().unwrap().status, 413);
    assert!(up.requests().is_empty());
}

/// Makes a CA and a certificate for 127.0.0.1 signed by it, with the openssl CLI; `None` when
/// there is no openssl.
pub(crate) fn test_ca(
    dir: &Path,
    name: &str,
) -> Option<(std::path::PathBuf, std::path::PathBuf, std::path::PathBuf)> {
    if Command::new("openssl").arg("version").output().is_err() {
        return None;
    }
    std::fs::create_dir_all(dir).unwrap();
    let p = |f: &str| dir.join(format!("{name}-{f}"));
    let run = |args: &[&str]| {
        let out = Command::new("openssl").args(args).output().unwrap();
        assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    let s = |p: &std::path::PathBuf| p.to_str().unwrap().to_string();
    let (ca_key, ca, key, csr, cert, ext) =
        (p("ca.key"), p("ca.pem"), p("leaf.key"), p("leaf.csr"), p("leaf.pem"), p("ext.cnf"));
    std::fs::write(
        &ext,
        "basicConstraints=CA:FALSE\nsubjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    run(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        &s(&ca_key),
        "-out",
        &s(&ca),
        "-days",
        "2",
        "-subj",
        &format!("/CN=ringlet test CA {name}"),
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    run(&[
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        &s(&key),
        "-out",
        &s(&csr),
        "-subj",
        "/CN=127.0.0.1",
    ]);
    run(&[
        "x509",
        "-req",
        "-in",
        &s(&csr),
        "-CA",
        &s(&ca),
        "-CAkey",
        &s(&ca_key),
        "-CAcreateserial",
        "-out",
        &s(&cert),
        "-days",
        "2",
        "-extfile",
        &s(&ext),
    ]);
    Some((ca, cert, key))
}

#[test]
fn an_https_upstream_is_verified_against_the_ca_file_and_a_wrong_ca_falls_back() {
    let env = Env::new("proxy-https");
    let dir = env.root.join("tls");
    let Some((ca, cert, key)) = test_ca(&dir, "good") else {
        eprintln!("skipped: no openssl CLI to make a test CA");
        return;
    };
    let (other_ca, _, _) = test_ca(&dir, "other").unwrap();
    let secure = MockUpstream::https(&cert, &key, |_| {
        Action::Reply(anthropic_message("m", "over tls", 2, 2))
    });
    let plain = MockUpstream::always(anthropic_message("m", "plain fallback", 1, 1));
    let ups = [
        ("tls", &secure.url()[..], "x_api_key", "tls-key"),
        ("plain", &plain.url(), "x_api_key", "k"),
    ];

    let mut cfg = config(&env, &ups, chain(&["tls/m", "plain/m"]), json!({}));
    cfg["ca_file"] = json!(ca);
    let proxy = ServeChild::start(&env, &cfg);
    let answer = proxy.request("POST", "/v1/messages", &auth(), &message("m", false));
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.json()["content"][0]["text"], "over tls");
    assert_eq!(secure.requests()[0].header("x-api-key"), Some("tls-key"));
    assert!(plain.requests().is_empty());
    // The line is written once the answer is out; the child is killed only after.
    assert!(crate::util::wait_until(Duration::from_secs(5), || log_lines(&env).len() == 1));
    drop(proxy);

    // Trusting another CA: the handshake fails before any byte, and the chain moves on.
    cfg["ca_file"] = json!(other_ca);
    let proxy = ServeChild::start(&env, &cfg);
    let answer = proxy.request("POST", "/v1/messages", &auth(), &message("m", false));
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.json()["content"][0]["text"], "plain fallback");
    assert_eq!(secure.requests().len(), 1, "no request reached the untrusted upstream");
    let two = crate::util::wait_until(Duration::from_secs(5), || log_lines(&env).len() == 2);
    assert!(two, "{:?}", log_lines(&env));
    let line = &log_lines(&env)[1];
    assert_eq!(line["attempts"][0]["status"], Value::Null, "{line}");
}

/// A log record of `cost` dollars made just now.
fn spent(env: &Env, cost: f64) {
    let record = json!({
        "ts": jiff::Timestamp::now().to_string(), "path": "/v1/messages", "rule": null, "model": "m",
        "attempts": [], "status": 200, "target": "default/m", "ttfb_ms": 1.0, "ms": 1.0,
        "tokens": {"input": 1, "output": 1, "cache_read": 0, "cache_write": 0},
        "cost_usd": cost, "stream": false
    });
    let dir = log_dir(env);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("requests.jsonl"), format!("{record}\n")).unwrap();
}

#[test]
fn a_budget_spent_answers_402_with_the_message_and_asks_no_upstream() {
    let env = Env::new("proxy-budget");
    let up = MockUpstream::always(anthropic_message("claude-sonnet-4-5", "ok", 1000, 1000));
    let ups = [("default", &up.url()[..], "x_api_key", "k")];
    spent(&env, 20.04);
    let proxy = ServeChild::start(&env, &config(&env, &ups, json!([]), json!({"daily_usd": 20.0})));
    let answer =
        proxy.request("POST", "/v1/messages", &auth(), &message("claude-sonnet-4-5", false));
    assert_eq!(answer.status, 402);
    assert_eq!(
        answer.json(),
        json!({"type": "error", "error": {"type": "billing_error",
               "message": "ringlet: profile work has spent $20.04 of its $20.00 daily budget"}})
    );
    assert!(up.requests().is_empty());
    let stats = stats_of(&proxy);
    assert_eq!(stats["budget_state"], "exceeded");
    assert_eq!(stats["budget_period"], "daily");
    assert!((stats["spend_today_usd"].as_f64().unwrap() - 20.04).abs() < 1e-9, "{stats}");
    drop(proxy);

    // At 80 %: a warning, and requests pass until the spend reaches the limit.
    spent(&env, 16.5);
    let proxy =
        ServeChild::start(&env, &config(&env, &ups, json!([]), json!({"monthly_usd": 20.0})));
    assert_eq!(stats_of(&proxy)["budget_state"], "warning");
    assert_eq!(stats_of(&proxy)["budget_period"], "monthly");
    let answer =
        proxy.request("POST", "/v1/messages", &auth(), &message("claude-sonnet-4-5", false));
    assert_eq!(answer.status, 200);
    assert_eq!(up.requests().len(), 1);
}

#[test]
fn unpriced_models_log_tokens_and_no_cost_and_stats_count_them() {
    let env = Env::new("proxy-unpriced");
    let up = MockUpstream::always(anthropic_message("mystery-model-9", "ok", 40, 2));
    let proxy = ServeChild::start(
        &env,
        &config(
            &env,
            &[("default", &up.url(), "x_api_key", "k")],
            json!([]),
            json!({"daily_usd": 1.0}),
        ),
    );
    for _ in 0..3 {
        let answer =
            proxy.request("POST", "/v1/messages", &auth(), &message("mystery-model-9", false));
        assert_eq!(answer.status, 200, "unpriced spend never trips the budget");
    }
    assert!(crate::util::wait_until(Duration::from_secs(5), || log_lines(&env).len() == 3));
    let line = &log_lines(&env)[0];
    assert_eq!(line["cost_usd"], Value::Null, "{line}");
    assert_eq!(line["tokens"]["input"], 40);
    let stats = stats_of(&proxy);
    assert_eq!(stats["unpriced_requests"], 3);
    assert_eq!(stats["spend_today_usd"], 0.0);
    assert_eq!(stats["requests"], 3);
    assert_eq!(stats["targets"][0]["target"], "default/mystery-model-9");
    assert_eq!(stats["targets"][0]["requests"], 3);
    assert!(
        stats["targets"][0]["p99_ms"].as_f64().unwrap()
            >= stats["targets"][0]["p50_ms"].as_f64().unwrap()
    );
}

#[test]
fn sigterm_lets_a_stream_under_way_finish_then_exits_0() {
    let env = Env::new("proxy-sigterm");
    let events = anthropic_stream("m", &["a", "b"], 1, 1);
    let gate = Gate::new();
    let up = MockUpstream::always(Reply::sse(&events).gated(&gate));
    let mut proxy = ServeChild::start(
        &env,
        &config(&env, &[("default", &up.url(), "x_api_key", "k")], json!([]), json!({})),
    );
    let mut conn = proxy.open("POST", "/v1/messages", &auth(), &message("m", true)).unwrap();
    assert_eq!(conn.head().unwrap().status, 200);
    assert!(conn.chunk().unwrap().is_some());
    crate::util::kill(proxy.pid(), 15);
    // Still streaming after the signal.
    std::thread::sleep(Duration::from_millis(200));
    assert!(proxy.child.try_wait().unwrap().is_none(), "exited with a stream under way");
    for _ in 1..events.len() {
        gate.open();
    }
    let rest = conn.rest().unwrap();
    assert!(String::from_utf8(rest).unwrap().contains("message_stop"));
    let status = proxy.terminate(Duration::from_secs(15)).expect("the proxy exits");
    assert!(status.success(), "{status:?}");
}

#[test]
fn serve_is_hidden_from_help_and_refuses_to_run_by_hand() {
    let env = Env::new("proxy-hidden");
    let help = env.cmd(&["proxy", "--help"]).ok();
    assert!(help.contains("enable") && !help.contains("serve"), "{help}");
    // No fd 3 listener: a clear error, not a hang on stdin or a panic.
    let (_, stderr) = env.cmd(&["proxy", "serve"]).stdin("{}").code(1);
    assert!(stderr.contains("fd 3"), "{stderr}");
}

#[test]
fn rules_and_aliases_choose_the_upstream_and_the_model() {
    let env = Env::new("proxy-routing");
    let mocks: Vec<MockUpstream> =
        (0..4).map(|_| MockUpstream::always(anthropic_message("m", "ok", 1, 1))).collect();
    let [default, big, think, small] = [&mocks[0], &mocks[1], &mocks[2], &mocks[3]];
    let ups = [
        ("default", &default.url()[..], "x_api_key", "k0"),
        ("big", &big.url(), "x_api_key", "k1"),
        ("think", &think.url(), "x_api_key", "k2"),
        ("small", &small.url(), "bearer", "k3"),
    ];
    let rules = json!([
        {"name": "think", "condition": "thinking and tools >= 1", "target": "think/think-model", "priority": 5},
        {"name": "long", "condition": "tokens > 2000", "target": "big/long-model", "priority": 10},
    ]);
    let mut cfg = config(&env, &ups, rules, json!({}));
    cfg["aliases"] = json!({"fast": "small/small-model"});
    let proxy = ServeChild::start(&env, &cfg);
    let send = |body: Value| {
        let answer = proxy.request("POST", "/v1/messages", &auth(), body.to_string().as_bytes());
        assert_eq!(answer.status, 200, "{}", answer.text());
    };
    let user = |text: &str| json!([{"role": "user", "content": text}]);
    send(json!({"model": "fast", "messages": user("hi")}));
    send(json!({"model": "claude-opus-4-1", "messages": user("hi"),
                "thinking": {"type": "enabled", "budget_tokens": 1024},
                "tools": [{"name": "Bash", "input_schema": {"type": "object"}}]}));
    send(json!({"model": "claude-opus-4-1", "messages": user(&"long text ".repeat(1000))}));
    send(json!({"model": "claude-opus-4-1", "messages": user("hi")}));
    assert_eq!(small.requests()[0].model().as_deref(), Some("small-model"));
    assert_eq!(think.requests()[0].model().as_deref(), Some("think-model"));
    assert_eq!(big.requests()[0].model().as_deref(), Some("long-model"));
    assert_eq!(default.requests()[0].model().as_deref(), Some("claude-opus-4-1"));
    assert!(mocks.iter().all(|m| m.requests().len() == 1));
    assert!(crate::util::wait_until(Duration::from_secs(5), || log_lines(&env).len() == 4));
    let rules: Vec<Value> = log_lines(&env).iter().map(|l| l["rule"].clone()).collect();
    assert_eq!(rules, [json!("alias fast"), json!("think"), json!("long"), Value::Null]);
    let targets: Vec<Value> = log_lines(&env).iter().map(|l| l["target"].clone()).collect();
    assert_eq!(targets[3], "default/claude-opus-4-1");
}

#[test]
fn an_upstream_that_hangs_up_or_cuts_its_head_falls_back() {
    let env = Env::new("proxy-hangup");
    let hangup = MockUpstream::start(|_| Action::Hangup);
    // Headers, then nothing: the body breaks before its first byte.
    let headless = MockUpstream::always(anthropic_message("m", "never", 1, 1).cut_after(0));
    let ok = MockUpstream::always(anthropic_message("m", "third time", 1, 1));
    let ups = [
        ("a", &hangup.url()[..], "x_api_key", "k"),
        ("b", &headless.url(), "x_api_key", "k"),
        ("c", &ok.url(), "x_api_key", "k"),
    ];
    let proxy =
        ServeChild::start(&env, &config(&env, &ups, chain(&["a/m", "b/m", "c/m"]), json!({})));
    let answer = proxy.request("POST", "/v1/messages", &auth(), &message("m", false));
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.json()["content"][0]["text"], "third time");
    assert_eq!((hangup.requests().len(), headless.requests().len()), (1, 1));
    assert!(crate::util::wait_until(Duration::from_secs(5), || !log_lines(&env).is_empty()));
    let line = &log_lines(&env)[0];
    assert_eq!(line["attempts"][1]["status"], 200, "{line}");
    assert!(line["attempts"][1]["error"].as_str().is_some(), "{line}");
}

#[test]
fn https_proxy_and_no_proxy_from_the_environment_are_honoured() {
    let env = Env::new("proxy-forward");
    // The forward proxy tunnels to itself and answers; the upstream's name does not resolve, so
    // only a request through the proxy can succeed.
    let forward = MockUpstream::always(anthropic_message("m", "via the forward proxy", 1, 1));
    let direct = MockUpstream::always(anthropic_message("m", "direct", 1, 1));
    let ups = [
        ("far", "http://upstream.invalid:8080", "x_api_key", "k1"),
        ("near", &direct.url()[..], "x_api_key", "k2"),
    ];
    let proxy_url = forward.url();
    let vars = [("HTTPS_PROXY", proxy_url.as_str()), ("NO_PROXY", "127.0.0.1")];
    let cfg = config(&env, &ups, chain(&["far/m"]), json!({}));
    let proxy = ServeChild::start_with_env(&env, &cfg, &vars);
    let answer = proxy.request("POST", "/v1/messages", &auth(), &message("m", false));
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.json()["content"][0]["text"], "via the forward proxy");
    let seen = forward.requests();
    assert_eq!(seen[0].method, "CONNECT");
    assert_eq!(seen[0].path, "upstream.invalid:8080");
    assert_eq!(seen[1].header("x-api-key"), Some("k1"));
    drop(proxy);
    // NO_PROXY: 127.0.0.1 is reached directly.
    let cfg = config(&env, &ups[1..], json!([]), json!({}));
    let proxy = ServeChild::start_with_env(&env, &cfg, &vars);
    let answer = proxy.request("POST", "/v1/messages", &auth(), &message("m", false));
    assert_eq!(answer.json()["content"][0]["text"], "direct");
    assert_eq!(forward.requests().len(), 2, "NO_PROXY bypasses the forward proxy");
}

#[test]
fn a_chunked_request_body_arrives_whole_and_the_child_dumps_no_core() {
    let env = Env::new("proxy-chunked");
    let up = MockUpstream::always(anthropic_message("m", "ok", 1, 1));
    let cfg = config(&env, &[("default", &up.url(), "x_api_key", "k")], json!([]), json!({}));
    let proxy = ServeChild::start(&env, &cfg);
    let body = message("m", false);
    let (a, b) = body.split_at(10);
    let mut framed = format!("{:x}\r\n", a.len()).into_bytes();
    framed.extend(a);
    framed.extend(format!("\r\n{:x};ext=1\r\n", b.len()).into_bytes());
    framed.extend(b);
    framed.extend(b"\r\n0\r\n\r\n");
    let headers = [("x-api-key", TOKEN), ("transfer-encoding", "chunked")];
    let mut conn = proxy.open("POST", "/v1/messages", &headers, &framed).unwrap();
    assert_eq!(conn.head().unwrap().status, 200);
    assert_eq!(up.requests()[0].body, body);
    // Core dumps off (RLIMIT_CORE 0, soft and hard): the child holds keys.
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", proxy.pid())).unwrap();
    let core = limits.lines().find(|l| l.starts_with("Max core file size")).unwrap();
    assert_eq!(core.split_whitespace().skip(4).take(2).collect::<Vec<_>>(), ["0", "0"], "{core}");
}

//! The REST routes the web UI's pages need beyond the CLI's: directory
//! completion under the home (`GET /api/fs/dirs`), a signal to a terminal
//! session (`POST /api/terminal/sessions/{id}/signal`, and `ringlet terminal
//! signal`), and the daemon's own checks (`GET /api/doctor`, shown by
//! `ringlet doctor` too).

use std::fs;
use std::net::SocketAddr;
use std::os::unix::fs::symlink;

use serde_json::{Value, json};

use crate::terminal::{Term, create, shell_world};
use crate::util::Env;
use crate::util::http::request;

fn call(addr: SocketAddr, token: &str, method: &str, path: &str, body: &Value) -> (u16, Value) {
    let body = if body.is_null() { Vec::new() } else { body.to_string().into_bytes() };
    let answer =
        request(addr, method, path, &[("Authorization", &format!("Bearer {token}"))], &body);
    let json = serde_json::from_slice(&answer.body)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&answer.body)));
    (answer.status, json)
}

fn dirs(addr: SocketAddr, token: &str, prefix: &str) -> (u16, Value) {
    let mut encoded = String::new();
    for b in prefix.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.".contains(&b) {
            encoded.push(b as char);
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    call(addr, token, "GET", &format!("/api/fs/dirs?prefix={encoded}"), &Value::Null)
}

#[test]
fn directories_complete_under_the_home_and_nowhere_else() {
    let env = Env::new("ui-dirs");
    for d in ["projects/ringlet", "projects/web", "pictures", ".config/ringlet"] {
        fs::create_dir_all(env.home.join(d)).unwrap();
    }
    fs::write(env.home.join("projects/readme.txt"), "").unwrap();
    fs::create_dir_all(env.root.join("elsewhere/inside")).unwrap();
    symlink(env.root.join("elsewhere"), env.home.join("projects/out")).unwrap();
    let (addr, token) = env.http();
    let home = env.home.display().to_string();
    let got = |prefix: &str| {
        let (status, reply) = dirs(addr, &token, prefix);
        assert_eq!(status, 200, "{prefix}: {reply}");
        reply["data"]["dirs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    let under = |names: &[&str]| names.iter().map(|n| format!("{home}/{n}")).collect::<Vec<_>>();
    assert_eq!(got("~/p"), under(&["pictures", "projects"]));
    assert_eq!(got("pro"), under(&["projects"]));
    assert_eq!(got("~/projects/"), under(&["projects/ringlet", "projects/web"]));
    assert_eq!(got(&format!("{home}/projects/r")), under(&["projects/ringlet"]));
    assert_eq!(got(""), under(&["pictures", "projects"]));
    assert_eq!(got("~/."), under(&[".config"]));
    assert!(got("~/nothing/here/").is_empty());
    for outside in ["/etc", "/etc/", "~/../", "../../etc", "~/projects/out/", "~root/x"] {
        let (status, reply) = dirs(addr, &token, outside);
        assert_eq!(status, 400, "{outside}: {reply}");
        let message = reply["error"]["message"].as_str().unwrap();
        assert!(message.contains("home"), "{outside}: {message}");
    }
    // The token is needed, as everywhere under /api.
    assert_eq!(request(addr, "GET", "/api/fs/dirs?prefix=~", &[], b"").status, 401);
}

#[test]
fn a_signal_reaches_a_session_over_rest_and_from_the_cli() {
    let env = shell_world("ui-signal");
    let (addr, token) = env.http();
    let script = "trap 'echo got-INT' INT; trap 'echo got-TERM' TERM; trap 'echo got-HUP' HUP; \
                  echo ready; while :; do sleep 0.05; done";
    let id = create(&env, addr, &token, json!({"args": ["-c", script]}))["id"]
        .as_str()
        .unwrap()
        .to_string();
    let mut term = Term::open(addr, &token, &id);
    term.until("ready");
    let path = format!("/api/terminal/sessions/{id}/signal");
    let (status, reply) = call(addr, &token, "POST", &path, &json!({"signal": "INT"}));
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["data"], json!({"id": id, "signal": 2}));
    term.until("got-INT");
    let (status, reply) = call(addr, &token, "POST", &path, &json!({"signal": 15}));
    assert_eq!((status, reply["data"]["signal"].as_i64()), (200, Some(15)), "{reply}");
    term.until("got-TERM");
    let said = env.cmd(&["terminal", "signal", &id, "SIGHUP"]).ok();
    assert!(said.contains(&format!("sent signal 1 to session {id}")), "{said}");
    term.until("got-HUP");

    // Refused: a signal outside the set, a wrong shape, an unknown session.
    for bad in [json!({"signal": "USR1"}), json!({"signal": 10}), json!({"signal": 0})] {
        let (status, reply) = call(addr, &token, "POST", &path, &bad);
        assert_eq!(status, 400, "{bad}: {reply}");
        assert!(reply["error"]["message"].as_str().unwrap().contains("INT, TERM"), "{reply}");
    }
    let (status, _) = call(addr, &token, "POST", &path, &json!({"signal": null}));
    assert_eq!(status, 400);
    let (status, reply) =
        call(addr, &token, "POST", "/api/terminal/sessions/t999/signal", &json!({"signal": "INT"}));
    assert_eq!(status, 404, "{reply}");
    let (out, err) = env.cmd(&["terminal", "signal", "t999", "INT"]).code(1);
    assert!(err.contains("no terminal session t999"), "{out}{err}");
    // Still running: none of those reached it.
    let (_, info) =
        call(addr, &token, "GET", &format!("/api/terminal/sessions/{id}"), &Value::Null);
    assert_eq!(info["data"]["state"], "running", "{info}");
}

#[test]
fn doctor_over_http_and_in_the_cli_agree() {
    let env = Env::new("ui-doctor");
    env.create_profile("claude", "work");
    let (addr, token) = env.http();
    let (status, reply) = call(addr, &token, "GET", "/api/doctor", &Value::Null);
    assert_eq!(status, 200, "{reply}");
    let checks = reply["data"]["checks"].as_array().unwrap().clone();
    let names: Vec<&str> = checks.iter().map(|c| c["name"].as_str().unwrap()).collect();
    for needed in [
        "daemon",
        "config",
        "manifests",
        "agent",
        "keystore",
        "keys",
        "sandbox",
        "http",
        "registry",
    ] {
        assert!(names.contains(&needed), "{needed} in {names:?}");
    }
    for c in &checks {
        assert!(["ok", "warn", "fail"].contains(&c["status"].as_str().unwrap()), "{c}");
        assert!(c["detail"].as_str().is_some_and(|d| !d.is_empty()), "{c}");
        assert!(c.get("fix").is_some(), "every check says its fix (or null): {c}");
    }
    let find = |name: &str| checks.iter().find(|c| c["name"] == name).unwrap().clone();
    let version = env!("CARGO_PKG_VERSION");
    assert!(find("daemon")["detail"].as_str().unwrap().contains(&format!("ringlet {version}")));
    let http = find("http")["detail"].as_str().unwrap().to_string();
    assert!(http.starts_with(&format!("listening on http://{addr}; only your uid")), "{http}");
    assert_eq!(find("keys")["detail"], "1 profile(s), every key stored");
    assert!(find("registry")["detail"].as_str().unwrap().contains("never synced"), "{checks:?}");

    // A broken config.toml is a failure with a fix, over HTTP and in the CLI.
    fs::write(env.config.join("config.toml"), "[daemon\n").unwrap();
    let (_, reply) = call(addr, &token, "GET", "/api/doctor", &Value::Null);
    let config = reply["data"]["checks"].as_array().unwrap().iter().find(|c| c["name"] == "config");
    let config = config.unwrap().clone();
    assert_eq!(config["status"], "fail", "{config}");
    assert!(config["fix"].as_str().unwrap().contains("config.toml"), "{config}");
    let (out, _) = env.cmd(&["doctor"]).code(1);
    assert!(out.contains("FAIL config"), "{out}");
    assert!(out.contains("fix: fix "), "{out}");
    let json = env.cmd(&["--json", "doctor"]).output();
    let json: Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(json["ok"], false);
    let listed = json["checks"].as_array().unwrap();
    assert!(listed.iter().any(|c| c["name"] == "config" && c["status"] == "fail"), "{json}");
    assert!(listed.iter().any(|c| c["name"] == "registry"), "the daemon's checks too: {json}");
    // Only with the token.
    assert_eq!(request(addr, "GET", "/api/doctor", &[], b"").status, 401);
}

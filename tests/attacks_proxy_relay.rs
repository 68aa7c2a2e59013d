//! The red team's attacks on the proxy child as a network server and relay:
//! a stranger of another uid (`setpriv --reuid=65534`) filling its
//! connections, a hostile agent (it holds the local token) abusing chunked
//! framing, duplicate JSON keys and model names. Each test failed on the
//! code it was written against; the fix is named in its comment.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use crate::util::Env;
use crate::util::upstream::{MockUpstream, ServeChild, anthropic_message};

const TOKEN: &str = "local-token-0123456789abcdef0123456789abcdef";

/// A proxy for profile `work` whose one upstream is `up`.
fn proxy(env: &Env, up: &MockUpstream) -> ServeChild {
    let config = json!({
        "alias": "work",
        "agent": "claude",
        "family": "anthropic",
        "local_token": TOKEN,
        "rules": [],
        "aliases": {},
        "budget": {},
        "upstreams": {"default": {"url": up.url(), "auth": "x_api_key", "key": "up-key"}},
        "default_upstream": "default",
        "config_dir": env.config,
        "log_dir": env.config.join("proxy").join("work"),
    });
    ServeChild::start(env, &config)
}

fn auth() -> [(&'static str, &'static str); 2] {
    [("x-api-key", TOKEN), ("anthropic-version", "2023-06-01")]
}

fn message(model: &str) -> Vec<u8> {
    json!({"model": model, "max_tokens": 64, "messages": [{"role": "user", "content": "hi"}]})
        .to_string()
        .into_bytes()
}

/// Holds `count` connections to a port open as `nobody`, idle, and opens a
/// new one whenever one is closed. Prints `ready` once they are all open.
const HOLDER: &str = r#"
import resource, selectors, socket, sys
port, count = int(sys.argv[1]), int(sys.argv[2])
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
sel = selectors.DefaultSelector()
def connect():
    s = socket.socket()
    s.connect(("127.0.0.1", port))
    sel.register(s, selectors.EVENT_READ)
for _ in range(count):
    connect()
print("ready", flush=True)
while True:
    for key, _ in sel.select():
        s = key.fileobj
        try:
            data = s.recv(4096)
        except OSError:
            data = b""
        if not data:
            sel.unregister(s)
            s.close()
            try:
                connect()
            except OSError:
                pass
"#;

/// The holder script run as `nobody`, killed when dropped.
struct Holder(Child);

impl Holder {
    fn start(env: &Env, addr: SocketAddr, count: usize) -> Holder {
        let path = env.root.join("holder.py");
        std::fs::write(&path, HOLDER).unwrap();
        let mut child = Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "/usr/bin/python3"])
            .arg(&path)
            .args([addr.port().to_string(), count.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("starting the holder");
        let mut stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut said = [0u8; 6];
            let _ = stdout.read_exact(&mut said);
            let _ = tx.send(said);
            // Keep the pipe open while it runs.
            let _ = std::io::copy(&mut stdout, &mut std::io::sink());
        });
        let said = rx.recv_timeout(Duration::from_secs(60)).unwrap_or_default();
        let holder = Holder(child);
        assert_eq!(&said, b"ready\n", "the holder did not get going");
        holder
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// 1100 idle connections from another uid (one more than the child's old
/// cap of 1024) must not lock the owner's agent out: connections that have
/// not shown the local token share a small pool, oldest out first, and the
/// owner's connection (its request already sent) is never the one closed.
/// Was: every connection took one of 1024 slots for up to 120 s idle, and
/// the agent got 503 for as long as the stranger kept them. Fix:
/// `serve.rs` admits connections through the front door's `Slots`.
#[test]
fn idle_strangers_of_another_uid_cannot_lock_the_agent_out() {
    let env = Env::new("attack-proxy-conns");
    let up = MockUpstream::always(anthropic_message("m", "fine", 1, 1));
    let proxy = proxy(&env, &up);
    let _holder = Holder::start(&env, proxy.addr, 1100);
    let mut failed = Vec::new();
    for i in 0..20 {
        match proxy.try_request("POST", "/v1/messages", &auth(), &message("m")) {
            Ok(answer) if answer.status == 200 => {}
            Ok(answer) => failed.push(format!("{i}: {} {}", answer.status, answer.text())),
            Err(e) => failed.push(format!("{i}: {e}")),
        }
    }
    assert!(failed.is_empty(), "owner requests that failed: {failed:#?}");
}

/// A chunk size that overflows the body's running length. Was: `len + size`
/// wrapped (a panic in a debug build, in release a size check passed and
/// the child buffered whatever came for a minute). Fix: `serve.rs` adds
/// with `checked_add` and refuses with 413.
#[test]
fn a_chunk_size_that_overflows_is_refused() {
    let env = Env::new("attack-proxy-chunk");
    let up = MockUpstream::always(anthropic_message("m", "fine", 1, 1));
    let proxy = proxy(&env, &up);
    for size in [usize::MAX - 4, usize::MAX, usize::MAX - 1] {
        let mut s = TcpStream::connect(proxy.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let head = format!(
            "POST /v1/messages HTTP/1.1\r\nhost: x\r\nx-api-key: {TOKEN}\r\n\
             transfer-encoding: chunked\r\n\r\n5\r\nhello\r\n{size:x}\r\n"
        );
        s.write_all(head.as_bytes()).unwrap();
        let _ = s.write_all(&[b'a'; 64 * 1024]);
        let mut raw = Vec::new();
        let _ = s.read_to_end(&mut raw);
        let text = String::from_utf8_lossy(&raw);
        assert!(text.starts_with("HTTP/1.1 413 "), "chunk size {size:x}: {text:?}");
    }
    assert!(up.requests().is_empty());
    let health = proxy.request("GET", "/health", &[], b"");
    assert_eq!(health.status, 200);
}

/// Two top-level `model` keys: the router reads the last, an upstream may
/// read the first, so an agent could be routed and priced as one model and
/// served (and billed) as another; with the second spelt `"mod\u0065l"` the
/// proxy's rewrite of the model missed it altogether. Fix: `relay.rs` refuses the body (400)
/// before anything goes upstream.
#[test]
fn a_body_with_two_model_keys_is_refused() {
    let env = Env::new("attack-proxy-dup-model");
    let up = MockUpstream::always(anthropic_message("m", "fine", 1, 1));
    let proxy = proxy(&env, &up);
    let body =
        br#"{"model":"claude-opus-4-1","model":"claude-3-5-haiku","max_tokens":9,"messages":[]}"#;
    let answer = proxy.request("POST", "/v1/messages", &auth(), body);
    assert_eq!(answer.status, 400, "{}", answer.text());
    let error = answer.json();
    assert_eq!(error["error"]["type"], "invalid_request_error");
    assert!(error["error"]["message"].as_str().unwrap().contains("model"), "{error}");
    // The same with the second key spelt with an escape, which a JSON parser decodes.
    let escaped = br#"{"model":"claude-3-5-haiku","mod\u0065l":"claude-opus-4-1","messages":[]}"#;
    let answer = proxy.request("POST", "/v1/messages", &auth(), escaped);
    assert_eq!(answer.status, 400, "{}", answer.text());
    assert!(up.requests().is_empty(), "the upstream saw it");
    // A nested `model` is no duplicate.
    let nested = br#"{"model":"m","metadata":{"model":"x"},"max_tokens":9,"messages":[]}"#;
    assert_eq!(proxy.request("POST", "/v1/messages", &auth(), nested).status, 200);
}

/// Model names the router has never heard of each made a target of their
/// own in the stats (the default upstream labelled with the model), kept
/// for the child's life: an agent sending 300 requests with distinct 64 KiB
/// names grew the child by 20 MB and every `proxy status` reply with it.
/// Fix: `relay.rs` refuses a model name over 256 bytes (400) and keeps at
/// most 64 targets in the stats (the rest counted under one `(others)`).
#[test]
fn model_names_cannot_grow_the_stats_without_bound() {
    let env = Env::new("attack-proxy-models");
    let up = MockUpstream::always(anthropic_message("m", "fine", 1, 1));
    let proxy = proxy(&env, &up);
    let huge = "m".repeat(64 * 1024);
    let answer = proxy.request("POST", "/v1/messages", &auth(), &message(&huge));
    assert_eq!(answer.status, 400, "{}", answer.text());
    assert!(answer.text().contains("model"), "{}", answer.text());
    for i in 0..150 {
        let answer = proxy.request("POST", "/v1/messages", &auth(), &message(&format!("m-{i}")));
        assert_eq!(answer.status, 200);
    }
    let stats = proxy
        .request("GET", "/ringlet/stats", &[("authorization", &format!("Bearer {TOKEN}"))], b"")
        .json();
    let targets = stats["targets"].as_array().unwrap();
    assert!(targets.len() <= 65, "{} targets", targets.len());
    let requests: u64 = targets.iter().map(|t| t["requests"].as_u64().unwrap()).sum();
    assert_eq!(requests, 150, "every request is still counted");
    let log = std::fs::read_to_string(env.config.join("proxy/work/requests.jsonl")).unwrap();
    let longest = log.lines().map(str::len).max().unwrap_or(0);
    assert!(longest < 4096, "a log line of {longest} bytes");
    assert!(log.lines().all(|l| serde_json::from_str::<Value>(l).is_ok()));
}

//! The optional external backend end to end: the real LiteLLM proxy
//! (`litellm[proxy]`, pinned, in the venv tests/setup.sh installs) started
//! the way the supervisor starts it (`ringlet __proxy-litellm-exec`, debug
//! builds: the YAML generated from a profile's routing, keys in the
//! environment, the daemon's listener as fd 3) carries the real Claude
//! Code, which speaks Anthropic Messages, to an OpenAI chat-completions
//! mock: LiteLLM's translation, the one thing the built-in proxy does not
//! do. The first target of the chain answers 500, so the fallback LiteLLM
//! was configured with is exercised too.
//!
//! Then the same through the daemon: `[proxy] backend = "litellm"`, a
//! Claude Code profile whose rules target OpenAI-format providers (allowed
//! with this backend), an inexpressible rule refused at start naming it,
//! `proxy start`, `profiles run -- -p hi`, `proxy stop`.
//!
//! Skipped, with a note, only when the venv is missing and
//! RINGLET_TEST_REQUIRE_LITELLM is unset (`make test` sets it).

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt as _;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::util::{Env, kill, pid_alive, real_agents_dir, wait_until};

/// LiteLLM imports for seconds on an idle machine and for more than a
/// minute on a loaded one (measured: 95 s with the load at 9 on 2 cores).
const START_LIMIT: Duration = Duration::from_secs(300);
/// One `claude -p` through LiteLLM (each request costs LiteLLM seconds
/// when the machine is loaded).
const AGENT_LIMIT: Duration = Duration::from_secs(240);

const REPLY: &str = "Hello from the OpenAI-format mock";
const GOOD_KEY: &str = "sk-openai-good-0123456789abcdef";
const BROKEN_KEY: &str = "sk-openai-broken-0123456789abcdef";

/// The venv tests/setup.sh installs LiteLLM into, if it is there.
fn litellm_venv() -> Option<PathBuf> {
    let venv = match std::env::var_os("RINGLET_TEST_LITELLM_VENV") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(std::env::var_os("HOME").unwrap())
            .join(".cache/ringlet-test/litellm-venv"),
    };
    if venv.join("bin").join("litellm").is_file() {
        return Some(venv);
    }
    assert!(
        std::env::var_os("RINGLET_TEST_REQUIRE_LITELLM").is_none(),
        "RINGLET_TEST_REQUIRE_LITELLM is set but {} has no bin/litellm; run tests/setup.sh",
        venv.display()
    );
    eprintln!("skipped: no LiteLLM venv at {} (tests/setup.sh installs it)", venv.display());
    None
}

/// One request as the mock saw it.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    authorization: Option<String>,
    body: Value,
}

/// A tiny OpenAI chat-completions server: `POST .../chat/completions`
/// answers [`REPLY`] (SSE chunks when `stream` is set, else one JSON
/// body), or 500 when `broken`; `GET .../models` lists nothing. One
/// request per connection (`Connection: close`).
struct OpenAiMock {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl OpenAiMock {
    fn start(broken: bool) -> OpenAiMock {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&seen);
        // Detached: it ends with the test process; each connection is short.
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let log = Arc::clone(&log);
                thread::spawn(move || {
                    let _ = serve(stream, broken, &log);
                });
            }
        });
        OpenAiMock { addr, seen }
    }

    /// The base URL a provider manifest would name (`/v1` included).
    fn url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    fn completions(&self) -> Vec<Seen> {
        let seen = self.seen.lock().unwrap();
        seen.iter()
            .filter(|s| s.method == "POST" && s.path.ends_with("/chat/completions"))
            .cloned()
            .collect()
    }

    fn all(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

fn serve(stream: TcpStream, broken: bool, log: &Mutex<Vec<Seen>>) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut reader = BufReader::new(&stream);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let (method, path) =
        (parts.next().unwrap_or("").to_string(), parts.next().unwrap_or("").to_string());
    let (mut length, mut authorization) = (0usize, None);
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 {
            break;
        }
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            let value = value.trim();
            match name.to_ascii_lowercase().as_str() {
                "content-length" => length = value.parse().unwrap_or(0),
                "authorization" => authorization = Some(value.to_string()),
                _ => {}
            }
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    log.lock().unwrap().push(Seen {
        method: method.clone(),
        path: path.clone(),
        authorization,
        body: body.clone(),
    });

    let mut out = &stream;
    let send = |out: &mut &TcpStream, status: &str, kind: &str, text: &str| {
        let head = format!(
            "HTTP/1.1 {status}\r\ncontent-type: {kind}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
            text.len()
        );
        out.write_all(head.as_bytes())?;
        out.write_all(text.as_bytes())
    };
    if method == "GET" && path.ends_with("/models") {
        send(&mut out, "200 OK", "application/json", r#"{"object":"list","data":[]}"#)?;
    } else if method != "POST" || !path.ends_with("/chat/completions") {
        send(
            &mut out,
            "404 Not Found",
            "application/json",
            r#"{"error":{"message":"mock: no such path"}}"#,
        )?;
    } else if broken {
        let error = r#"{"error":{"message":"mock: broken on purpose","type":"server_error"}}"#;
        send(&mut out, "500 Internal Server Error", "application/json", error)?;
    } else {
        let model = body["model"].as_str().unwrap_or("").to_string();
        let usage = json!({"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18});
        if body["stream"] == json!(true) {
            out.write_all(
                b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\nconnection: close\r\n\r\n",
            )?;
            let chunk = |delta: Value, finish: Value, usage: Option<&Value>| {
                let mut c = json!({"id": "chatcmpl-mock", "object": "chat.completion.chunk",
                    "created": 1, "model": model,
                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]});
                if let Some(usage) = usage {
                    c["usage"] = usage.clone();
                }
                format!("data: {c}\n\n")
            };
            for event in [
                chunk(json!({"role": "assistant", "content": ""}), Value::Null, None),
                chunk(json!({"content": REPLY}), Value::Null, None),
                chunk(json!({}), json!("stop"), Some(&usage)),
                "data: [DONE]\n\n".to_string(),
            ] {
                out.write_all(event.as_bytes())?;
                out.flush()?;
            }
        } else {
            let reply = json!({"id": "chatcmpl-mock", "object": "chat.completion", "created": 1,
                "model": model, "usage": usage,
                "choices": [{"index": 0, "finish_reason": "stop",
                    "message": {"role": "assistant", "content": REPLY}}]});
            send(&mut out, "200 OK", "application/json", &reply.to_string())?;
        }
    }
    let _ = stream.shutdown(Shutdown::Both);
    Ok(())
}

/// Kills the LiteLLM process (SIGTERM, then SIGKILL) when dropped.
struct Proxy {
    child: Child,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let pid = self.child.id();
        kill(pid, 15);
        if !wait_until(Duration::from_secs(15), || {
            !pid_alive(pid) || self.child.try_wait().is_ok_and(|s| s.is_some())
        }) {
            kill(pid, 9);
        }
        let _ = self.child.wait();
    }
}

/// Starts `ringlet __proxy-litellm-exec` in `env` with `input` on stdin and
/// `listener` as its fd 3.
fn start_litellm(env: &Env, input: &Value, listener: &TcpListener, log: &PathBuf) -> Proxy {
    let mut tc = env.cmd(&["__proxy-litellm-exec"]);
    let fd = listener.as_raw_fd();
    tc.cmd
        .stdin(Stdio::piped())
        .stdout(fs::File::create(log).unwrap())
        .stderr(fs::File::create(log.with_extension("err")).unwrap());
    // SAFETY: runs between fork and exec in the child, making only
    // async-signal-safe calls (dup2(2), fcntl(2) through rustix, which do
    // not allocate); `fd` is the test's listener, open in the child too.
    // The OwnedFd for fd 3 is forgotten so it is never closed here.
    unsafe {
        tc.cmd.pre_exec(move || {
            use std::os::fd::{BorrowedFd, FromRawFd, OwnedFd};
            if fd == 3 {
                rustix::io::fcntl_setfd(BorrowedFd::borrow_raw(3), rustix::io::FdFlags::empty())?;
            } else {
                let mut three = OwnedFd::from_raw_fd(3);
                let done = rustix::io::dup2(BorrowedFd::borrow_raw(fd), &mut three);
                std::mem::forget(three);
                done?;
            }
            Ok(())
        });
    }
    let mut child = tc.cmd.spawn().expect("spawning ringlet __proxy-litellm-exec");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input.to_string().as_bytes()).unwrap();
    drop(stdin);
    Proxy { child }
}

/// `GET /health/liveliness` answered 200.
fn alive(addr: SocketAddr) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_secs(1)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let request = "GET /health/liveliness HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n";
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut reply = String::new();
    let _ = stream.read_to_string(&mut reply);
    reply.starts_with("HTTP/1.1 200")
}

fn rss_kib(pid: u32) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[test]
fn real_claude_code_reaches_an_openai_mock_through_litellm() {
    let Some(venv) = litellm_venv() else { return };
    let claude = real_agents_dir().join("node_modules/.bin/claude");
    assert!(claude.is_file(), "{} is missing; run tests/setup.sh", claude.display());
    let test_started = Instant::now();
    let mut env = Env::new("litellm");
    env.extra_path.push(venv.join("bin"));
    let good = OpenAiMock::start(false);
    let broken = OpenAiMock::start(true);

    // The routing a profile would have: claude-* goes first to a provider
    // that fails, then (the next rule's target) to the mock; both speak
    // OpenAI while Claude Code speaks Anthropic.
    let token = "ringlet-local-token-0123456789abcdef0123456789abcdef";
    let input = json!({
        "config": {
            "alias": "work",
            "agent": "claude",
            "family": "anthropic",
            "local_token": token,
            "rules": [
                {"name": "first", "condition": "model ~ claude-*", "target": "broken/gpt-broken", "priority": 1},
                {"name": "second", "condition": "always", "target": "good/gpt-mock", "priority": 0}
            ],
            "aliases": {},
            "budget": {},
            "upstreams": {
                "broken": {"url": broken.url(), "auth": "bearer", "key": BROKEN_KEY},
                "good": {"url": good.url(), "auth": "bearer", "key": GOOD_KEY}
            },
            "default_upstream": "good",
            "config_dir": env.config,
            "log_dir": env.config.join("proxy/work")
        },
        "families": {"broken": "open_ai", "good": "open_ai"}
    });
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let log = env.root.join("litellm.log");
    let started = Instant::now();
    let proxy = start_litellm(&env, &input, &listener, &log);
    let pid = proxy.child.id();
    // The listener is LiteLLM's now; the test's copy closes.
    drop(listener);
    let up = wait_until(START_LIMIT, || alive(addr));
    let tell = || {
        format!(
            "LiteLLM stdout:\n{}\nstderr:\n{}",
            fs::read_to_string(&log).unwrap_or_default(),
            fs::read_to_string(log.with_extension("err")).unwrap_or_default()
        )
    };
    assert!(up, "LiteLLM was not healthy within {START_LIMIT:?}\n{}", tell());
    eprintln!("LiteLLM healthy after {:?}; RSS {:?} KiB", started.elapsed(), rss_kib(pid));

    // The YAML: 0600 in the runtime dir, no key in it; no key in argv.
    let yaml_path = env.run.join("ringlet").join("proxy").join("work.yaml");
    let yaml = fs::read_to_string(&yaml_path).unwrap();
    assert_eq!(fs::metadata(&yaml_path).unwrap().permissions().mode() & 0o777, 0o600);
    let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    let cmdline = String::from_utf8_lossy(&cmdline);
    for secret in [GOOD_KEY, BROKEN_KEY, token] {
        assert!(!yaml.contains(secret), "a key in the YAML:\n{yaml}");
        assert!(!cmdline.contains(secret), "a key in LiteLLM's argv: {cmdline}");
    }
    assert!(yaml.contains("os.environ/RINGLET_KEY_0"), "{yaml}");

    // Real Claude Code, Anthropic Messages at LiteLLM with the local token.
    let claude_home = env.root.join("claude-home");
    fs::create_dir_all(&claude_home).unwrap();
    let mut cmd = Command::new(&claude);
    cmd.args(["-p", "hi"])
        .env_clear()
        .env("HOME", &claude_home)
        .env("CLAUDE_CONFIG_DIR", claude_home.join(".claude"))
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("ANTHROPIC_BASE_URL", format!("http://{addr}"))
        .env("ANTHROPIC_AUTH_TOKEN", token)
        .env("ANTHROPIC_MODEL", "claude-sonnet-4-5")
        .env("ANTHROPIC_SMALL_FAST_MODEL", "claude-haiku-4-5")
        .env("DISABLE_AUTOUPDATER", "1")
        .env("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1")
        .current_dir(&env.root)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let agent_started = Instant::now();
    let mut agent = cmd.spawn().expect("spawning claude");
    let finished = wait_until(AGENT_LIMIT, || agent.try_wait().is_ok_and(|s| s.is_some()));
    if !finished {
        kill(agent.id(), 9);
    }
    let out = agent.wait_with_output().unwrap();
    let (stdout, stderr) =
        (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    eprintln!("claude -p through LiteLLM: {:?}", agent_started.elapsed());
    assert!(
        finished,
        "claude did not finish within {AGENT_LIMIT:?}\nstdout:\n{stdout}\nstderr:\n{stderr}\n{}",
        tell()
    );
    assert!(
        stdout.contains(REPLY),
        "claude did not print the mock's reply (exit {:?})\nstdout:\n{stdout}\nstderr:\n{stderr}\nmock saw: {:#?}\n{}",
        out.status.code(),
        good.all(),
        tell()
    );

    // The fallback: the broken target first, with its own key and model,
    // then the mock with its own; never the local token upstream.
    let tried = broken.completions();
    assert!(!tried.is_empty(), "the first target was never tried: {:#?}", broken.all());
    for seen in &tried {
        assert_eq!(seen.authorization.as_deref(), Some(format!("Bearer {BROKEN_KEY}").as_str()));
        assert_eq!(seen.body["model"], "gpt-broken", "{:?}", seen.body["model"]);
    }
    let answered = good.completions();
    assert!(!answered.is_empty(), "the mock saw no chat completion: {:#?}", good.all());
    for seen in &answered {
        assert_eq!(seen.authorization.as_deref(), Some(format!("Bearer {GOOD_KEY}").as_str()));
        assert_eq!(seen.body["model"], "gpt-mock");
        // Translated: chat-completions messages, not Anthropic's shape.
        assert!(seen.body["messages"].is_array(), "{}", seen.body);
        assert!(
            seen.body.get("max_tokens").is_some()
                || seen.body.get("max_completion_tokens").is_some()
        );
    }
    for seen in good.all().iter().chain(broken.all().iter()) {
        assert!(
            !seen.authorization.as_deref().unwrap_or("").contains(token),
            "the local token went upstream"
        );
    }
    eprintln!("LiteLLM RSS after the run: {:?} KiB", rss_kib(pid));
    drop(proxy);
    assert!(wait_until(Duration::from_secs(15), || !pid_alive(pid)), "LiteLLM outlived its stop");
    eprintln!("litellm test total: {:?}", test_started.elapsed());
}

/// `providers.d/<id>.toml`: a provider of `kind` at `endpoint` serving `model`.
fn provider(env: &Env, id: &str, kind: &str, endpoint: &str, model: &str) {
    let dir = env.config.join("providers.d");
    fs::create_dir_all(&dir).unwrap();
    let text = format!(
        "id = \"{id}\"\nname = \"Mock {id}\"\ntype = \"{kind}\"\n\n[endpoints]\ndefault = \"{endpoint}\"\n\n\
         [auth]\nenv_key = \"{}_KEY\"\n\n[models]\navailable = [\"{model}\"]\ndefault = \"{model}\"\n",
        id.to_uppercase()
    );
    fs::write(dir.join(format!("{id}.toml")), text).unwrap();
}

#[test]
fn the_daemon_runs_litellm_for_a_proxied_claude_profile() {
    let Some(venv) = litellm_venv() else { return };
    let agents = real_agents_dir().join("node_modules/.bin");
    assert!(agents.join("claude").is_file(), "the real agents are missing; run tests/setup.sh");
    let good = OpenAiMock::start(false);
    let broken = OpenAiMock::start(true);
    let mut env = Env::new("litellm-daemon");
    env.extra_path.push(agents);
    let r = |args: &[&str]| env.cmd(args).env("RINGLET_SECRET_STORE", "file");
    env.write_config(&format!(
        "[proxy]\nbackend = \"litellm\"\nlitellm_command = \"{}\"\n",
        venv.join("bin/litellm").display()
    ));
    // The profile's own provider speaks Anthropic (never called here); the
    // targets speak OpenAI chat completions: LiteLLM translates.
    provider(&env, "mockant", "anthropic-compatible", "http://127.0.0.1:9", "claude-sonnet-4-5");
    provider(&env, "oaigood", "openai-compatible", &good.url(), "gpt-mock");
    provider(&env, "oaibroken", "openai-compatible", &broken.url(), "gpt-broken");
    r(&["profiles", "create", "claude", "work", "-p", "mockant", "--api-key-stdin", "--no-alias"])
        .stdin(crate::util::KEY)
        .ok();
    for (p, key) in [("oaigood", GOOD_KEY), ("oaibroken", BROKEN_KEY)] {
        r(&["providers", "key", "set", p, "--api-key-stdin"]).stdin(key).ok();
    }
    let add = |name: &str, cond: &str, target: &str, prio: &str| {
        r(&["proxy", "route", "add", "work", name, cond, target, "--priority", prio]).ok();
    };
    add("first", "model ~ claude-*", "oaibroken/gpt-broken", "1");
    add("second", "always", "oaigood/gpt-mock", "0");
    // Refused for LiteLLM, naming the rule, and nothing runs.
    // A rule LiteLLM cannot express is refused when it is added, naming it.
    let deep = ["proxy", "route", "add", "work", "deep", "thinking", "oaigood/gpt-mock"];
    let (_, err) = r(&deep).code(1);
    assert!(err.contains("rule `deep`") && err.contains("cannot express"), "{err}");
    r(&["proxy", "enable", "work"]).ok();

    let started = Instant::now();
    let out = r(&["proxy", "start", "work", "--json"]).json();
    eprintln!("proxy start (LiteLLM) took {:?}: {out}", started.elapsed());
    let yaml = fs::read_to_string(env.run.join("ringlet/proxy/work.yaml")).unwrap();
    for secret in [GOOD_KEY, BROKEN_KEY, crate::util::KEY] {
        assert!(!yaml.contains(secret), "a key in the YAML:\n{yaml}");
    }
    let ran = r(&["profiles", "run", "work", "--", "-p", "hi"]).ok();
    assert!(
        ran.contains(REPLY),
        "claude did not print the mock's reply:\n{ran}\nmock saw {:#?}",
        good.all()
    );
    assert!(
        broken
            .completions()
            .iter()
            .all(|s| s.authorization.as_deref() == Some(&format!("Bearer {BROKEN_KEY}")[..]))
    );
    assert!(!broken.completions().is_empty(), "the first target was never tried");
    let answered = good.completions();
    assert!(!answered.is_empty());
    for seen in &answered {
        assert_eq!(seen.authorization.as_deref(), Some(format!("Bearer {GOOD_KEY}").as_str()));
        assert_eq!(seen.body["model"], "gpt-mock");
    }
    let pid = out["pid"].as_u64().expect("the running proxy's pid") as u32;
    assert!(pid_alive(pid));
    r(&["proxy", "stop", "work"]).ok();
    assert!(wait_until(Duration::from_secs(20), || !pid_alive(pid)), "LiteLLM outlived proxy stop");
}

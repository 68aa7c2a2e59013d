//! The sandbox around remote sessions, with the real bwrap, for what
//! `terminal::a_sandboxed_session_sees_only_what_it_should` leaves out: a
//! work dir inside the real home next to a hidden sibling project, a custom
//! `[sandbox] home_ro` from config.toml (its entries readable and not
//! writable, the default's gone), `--bwrap-flags` taking effect (quotes and
//! backslashes split like a shell does) and a bad one refused, a work dir
//! that is the home or links to it refused (the agent would lose its
//! writes in the hidden home), an agent installed in the home seeing its
//! `node_modules` tree only, `--no-sandbox` recorded; Ringlet's dirs and
//! the desktop's sockets invisible wherever they sit (issue 11 item 4), and
//! the real agents from a hoisted install running sandboxed (item 5). The
//! shell sessions run one `sh -c` script each and write their findings to a
//! file, so nothing there depends on terminal timing.

use std::fs;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

use crate::util::http::{post_session, request};
use crate::util::{Env, wait_until};

/// A world with a `shell` agent (its binary runs `sh`), whose daemon reads
/// `config` as its config.toml. The profile home is inside the real home
/// (`~/.shell-profiles/sh1`), as profile homes usually are.
fn world(name: &str, config: &str) -> Env {
    crate::terminal::shell_world_with_config(name, config)
}

/// `check NAME CMD...` prints `NAME=yes` when CMD succeeds, else `NAME=no`.
const CHECK: &str = r#"check() { n=$1; shift; if ( "$@" ) >/dev/null 2>&1; then echo "$n=yes"; else echo "$n=no"; fi; }"#;

/// POST /api/terminal/sessions for `sh1` running `sh -c script`.
fn create(env: &Env, addr: SocketAddr, token: &str, script: &str, extra: Value) -> (u16, Value) {
    let mut req = json!({
        "profile": "sh1",
        "sandbox": true,
        "path": env.path_var().to_str().unwrap(),
        "args": ["-c", script],
    });
    req.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    let answer = post_session(addr, token, &req);
    (answer.status, serde_json::from_slice(&answer.body).unwrap_or(Value::Null))
}

/// The script's findings: it ends `$out` with `done`, written inside the
/// sandbox to a path the host sees.
fn findings(out: &Path) -> String {
    let done = wait_until(Duration::from_secs(20), || {
        fs::read_to_string(out).is_ok_and(|t| t.ends_with("done\n"))
    });
    let text = fs::read_to_string(out).unwrap_or_default();
    assert!(done, "the sandboxed script did not finish: {text:?}");
    text
}

fn value<'a>(text: &'a str, name: &str) -> &'a str {
    let prefix = format!("{name}=");
    text.lines().find_map(|l| l.strip_prefix(&prefix)).unwrap_or_else(|| panic!("{name}: {text}"))
}

fn write(path: &Path, text: &str) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
}

#[test]
fn a_work_dir_in_the_home_a_custom_allowlist_and_bwrap_flags() {
    let env = world("sandbox-home-ro", "[sandbox]\nhome_ro = [\".npmrc\", \"~/.config/tool\"]\n");
    let home = &env.home;
    write(&home.join(".npmrc"), "registry=local\n");
    write(&home.join(".config/tool/settings"), "tool settings\n");
    write(&home.join(".gitconfig"), "[user]\n\tname = T\n");
    write(&home.join(".config/git/ignore"), "*.swp\n");
    write(&home.join("src/other/notes"), "another project\n");
    let work = home.join("src/project");
    fs::create_dir_all(&work).unwrap();
    let extra = env.root.join("extra dir");
    write(&extra.join("f"), "from a flag\n");
    // Double quotes around a path with a space, a backslash-escaped space,
    // single quotes keeping `$` literal.
    let flags = format!(
        r#"--ro-bind "{}" /opt/ringlet\ extra --setenv RINGLET_FLAG 'two $words'"#,
        extra.display()
    );
    let script = format!(
        r#"{CHECK}
        out="$PWD/findings"
        # HOME is the profile home (home-wrapper): the real one by path.
        HOME='{home}'
        {{
        echo "pwd=$(pwd)"
        check work_write sh -c 'echo hi > ./w1'
        check npmrc_read grep -q registry=local "$HOME/.npmrc"
        check npmrc_write sh -c 'echo x >> "$HOME/.npmrc"'
        check tool_read grep -q settings "$HOME/.config/tool/settings"
        check tool_write sh -c 'echo x > "$HOME/.config/tool/new"'
        check gitconfig_read cat "$HOME/.gitconfig"
        check git_dir_read cat "$HOME/.config/git/ignore"
        check sibling_read cat "$HOME/src/other/notes"
        check flag_mount grep -q 'from a flag' "/opt/ringlet extra/f"
        echo "flag_env=$RINGLET_FLAG"
        echo done
        }} > "$out.tmp" 2>&1
        mv "$out.tmp" "$out"
        "#,
        home = home.display()
    );
    let (addr, token) = env.http();
    let extra = json!({"working_dir": work.display().to_string(), "bwrap_flags": flags});
    let (status, reply) = create(&env, addr, &token, &script, extra);
    assert_eq!(status, 201, "{reply}");
    assert_eq!(reply["data"]["sandbox"], "bwrap", "{reply}");
    let text = findings(&work.join("findings"));

    assert_eq!(value(&text, "pwd"), work.display().to_string(), "{text}");
    let expect = [
        // A work dir inside the home is not hidden by the home's tmpfs.
        ("work_write", "yes"),
        // The custom allowlist: readable, not writable...
        ("npmrc_read", "yes"),
        ("npmrc_write", "no"),
        ("tool_read", "yes"),
        ("tool_write", "no"),
        // ...and it replaces the default one.
        ("gitconfig_read", "no"),
        ("git_dir_read", "no"),
        // The project next door stays hidden.
        ("sibling_read", "no"),
        // --bwrap-flags were split like a shell would and took effect.
        ("flag_mount", "yes"),
        ("flag_env", "two $words"),
    ];
    for (name, want) in expect {
        assert_eq!(value(&text, name), want, "{name} in\n{text}");
    }
    assert_eq!(fs::read_to_string(work.join("w1")).unwrap(), "hi\n");
    assert_eq!(fs::read_to_string(home.join(".npmrc")).unwrap(), "registry=local\n");
    assert!(!home.join(".config/tool/new").exists());
}

#[test]
fn a_work_dir_at_the_home_or_linking_to_it_is_refused() {
    // Inside, the home is an empty throwaway dir: the agent would work in it
    // and lose everything at exit. Refused with the way out, over HTTP and
    // from the shell (`profiles run --remote` in the home sends it as cwd).
    let env = world("sandbox-home-work", "");
    let link = env.root.join("home-link");
    std::os::unix::fs::symlink(&env.home, &link).unwrap();
    let (addr, token) = env.http();
    for dir in [&env.home, &link] {
        let extra = json!({"working_dir": dir.display().to_string()});
        let (status, reply) = create(&env, addr, &token, "true", extra);
        let message = reply["error"]["message"].as_str().unwrap_or_default();
        assert_eq!(status, 400, "{dir:?}: {reply}");
        assert!(message.contains(&format!("working dir {}", dir.display())), "{message}");
        assert!(message.contains("--no-sandbox"), "{message}");
    }
    let (_, err) = env.cmd(&["profiles", "run", "sh1", "--remote"]).current_dir(&env.home).code(1);
    assert!(err.contains("is your home") && err.contains("--no-sandbox"), "{err}");
    let sessions = env.cmd(&["terminal", "list", "--json"]).json();
    assert_eq!(sessions, json!([]), "nothing was started");
}

#[test]
fn bwrap_flags_are_checked_and_no_sandbox_is_recorded() {
    let env = world("sandbox-cli", "");
    let (out, err) = env
        .cmd(&["profiles", "run", "sh1", "--remote", "--bwrap-flags", "--setenv A 'b", "--json"])
        .code(1);
    let said = format!("{out}{err}");
    assert!(said.contains("unbalanced single quote"), "{said}");

    let info = env
        .cmd(&["profiles", "run", "sh1", "--remote", "--no-sandbox", "--json", "--", "-c", "true"])
        .json();
    assert_eq!(info["sandbox"], "none", "{info}");
    let id = info["id"].as_str().unwrap();
    assert!(
        wait_until(Duration::from_secs(5), || env
            .log_text()
            .contains(&format!("terminal {id}: started without the sandbox"))),
        "{}",
        env.log_text()
    );
    let again = env.cmd(&["terminal", "info", id, "--json"]).json();
    assert_eq!(again["sandbox"], "none", "{again}");
}

#[test]
fn an_agent_installed_in_the_home_sees_its_node_modules_tree_only() {
    // npm with a prefix in the home: the command is a symlink into the
    // package, which reads its own files and its hoisted dependencies (next
    // to it in the same node_modules) at run time. The tree is readable, not
    // writable; the rest of the prefix and of the home stays hidden.
    let mut env = world("sandbox-install", "");
    let prefix = env.home.join(".npm-global");
    let modules = prefix.join("lib/node_modules");
    let package = modules.join("shell-pkg");
    write(&package.join("package.json"), "{\"name\": \"shell-pkg\"}\n");
    write(&package.join("lib/helper.txt"), "helper\n");
    write(&modules.join("@scope/shell-pkg-linux-x64/native.txt"), "native\n");
    write(&prefix.join("etc/npmrc"), "//registry/:_authToken=secret\n");
    let agent = package.join("bin/agent");
    write(&agent, "#!/bin/sh\nexec /bin/sh \"$@\"\n");
    fs::set_permissions(&agent, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    fs::create_dir_all(prefix.join("bin")).unwrap();
    std::os::unix::fs::symlink(
        "../lib/node_modules/shell-pkg/bin/agent",
        prefix.join("bin/shell-agent"),
    )
    .unwrap();
    env.extra_path.push(prefix.join("bin"));
    let work = env.root.join("work");
    fs::create_dir_all(&work).unwrap();
    let script = format!(
        r#"{CHECK}
        {{
        check own_read cat '{package}/lib/helper.txt'
        check own_write sh -c 'echo x > "{package}/lib/new"'
        check hoisted_read cat '{modules}/@scope/shell-pkg-linux-x64/native.txt'
        check hoisted_write sh -c 'echo x > "{modules}/@scope/new"'
        check prefix_rest_read cat '{prefix}/etc/npmrc'
        echo done
        }} > findings.tmp 2>&1
        mv findings.tmp findings
        "#,
        package = package.display(),
        modules = modules.display(),
        prefix = prefix.display()
    );
    let (addr, token) = env.http();
    let extra = json!({"working_dir": work.display().to_string()});
    let (status, reply) = create(&env, addr, &token, &script, extra);
    assert_eq!(status, 201, "{reply}");
    let command = reply["data"]["command"][0].as_str().unwrap_or_default().to_string();
    assert!(command.starts_with(&prefix.display().to_string()), "{reply}");
    let text = findings(&work.join("findings"));
    let expect = [
        ("own_read", "yes"),
        ("own_write", "no"),
        ("hoisted_read", "yes"),
        ("hoisted_write", "no"),
        ("prefix_rest_read", "no"),
    ];
    for (name, want) in expect {
        assert_eq!(value(&text, name), want, "{name} in\n{text}");
    }
}

/// A world laid out like the attack of issue 11: Ringlet's config dir at its
/// default place in the home (`~/.config/ringlet`, under a `[sandbox]
/// home_ro` entry that opens `~/.config`), and no `XDG_RUNTIME_DIR`, so the
/// runtime dir falls back to `$TMPDIR/ringlet-<uid>`, with TMPDIR the work
/// dir: the session's work dir holds the IPC socket, as a session started in
/// `/tmp` did. Two profiles of the `shell` agent: `sh1` opts in to nothing,
/// `sh2` to the ssh agent and the D-Bus session bus.
struct PrivateWorld {
    env: Env,
    work: std::path::PathBuf,
}

impl PrivateWorld {
    fn new(name: &str) -> PrivateWorld {
        let mut env = Env::new(name);
        env.config = env.home.join(".config/ringlet");
        let work = env.root.join("work");
        fs::create_dir_all(&work).unwrap();
        env.write_config(
            "[run]\nenv_passthrough = [\"DBUS_SESSION_BUS_ADDRESS\", \"GPG_AGENT_INFO\"]\n\
             [sandbox]\nhome_ro = [\".config\"]\n\
             [sandbox.allow]\nsh2 = [\"ssh-agent\", \"dbus\"]\n",
        );
        write(
            &env.config.join("agents.d/shell.toml"),
            "id = \"shell\"\nname = \"Shell\"\nbinary = \"shell-agent\"\n[profile]\n\
             strategy = \"home-wrapper\"\nsource_home = \"~/.shell-profiles/{alias}\"\n\
             script = \"shell.rhai\"\nprovider_types = [\"anthropic\"]\n",
        );
        write(
            &env.config.join("scripts/shell.rhai"),
            "#{ files: #{}, env: #{ PS1: \"$ \" }, args: [] }",
        );
        env.fake_agent("shell-agent", "exec /bin/sh \"$@\"");
        PrivateWorld { env, work }
    }

    /// A `ringlet` command without XDG_RUNTIME_DIR and with TMPDIR the work dir.
    fn cmd(&self, args: &[&str]) -> crate::util::TestCommand {
        let mut c = self.env.cmd(args);
        c.cmd.env_remove("XDG_RUNTIME_DIR").env("TMPDIR", &self.work);
        c.env("RINGLET_SECRET_STORE", "file")
    }

    fn runtime_dir(&self) -> std::path::PathBuf {
        self.work.join(format!("ringlet-{}", rustix::process::getuid().as_raw()))
    }
}

impl Drop for PrivateWorld {
    fn drop(&mut self) {
        // The Env's own stop looks in its XDG runtime dir, not this one.
        let _ = self.cmd(&["daemon", "stop", "--force"]).output();
    }
}

/// `perl` connecting to the unix socket `$1`: 0 when something accepts.
const CONNECT: &str =
    r#"perl -MIO::Socket::UNIX -e 'IO::Socket::UNIX->new(Peer => $ARGV[0]) or exit 1'"#;

#[test]
fn the_runtime_and_config_dirs_and_the_desktop_sockets_are_invisible() {
    let w = PrivateWorld::new("sandbox-private");
    let work = &w.work;
    // Sockets where a desktop puts them, all under the work dir: the D-Bus
    // session bus of `dbus-run-session` (a socket right in the temp dir),
    // an ssh agent's `ssh-XXXX/agent.<pid>`, a gpg agent, a Wayland display.
    let dbus = work.join("dbus-Xk3");
    let ssh_dir = work.join("ssh-Qw7");
    let ssh = ssh_dir.join("agent.42");
    let gpg = work.join("gnupg/S.gpg-agent");
    let wayland = work.join("wayland-7");
    fs::create_dir_all(&ssh_dir).unwrap();
    fs::create_dir_all(gpg.parent().unwrap()).unwrap();
    let _listeners: Vec<std::os::unix::net::UnixListener> = [&dbus, &ssh, &gpg, &wayland]
        .iter()
        .map(|p| std::os::unix::net::UnixListener::bind(p).unwrap())
        .collect();
    let dbus_address = format!("unix:path={},guid=0123456789abcdef", dbus.display());
    let desktop = [
        ("DISPLAY", ":99".to_string()),
        ("WAYLAND_DISPLAY", wayland.display().to_string()),
        ("SSH_AUTH_SOCK", ssh.display().to_string()),
        ("DBUS_SESSION_BUS_ADDRESS", dbus_address.clone()),
        ("GPG_AGENT_INFO", format!("{}:0:1", gpg.display())),
    ];
    // The daemon itself runs in that desktop (the keychain needs the bus).
    let mut start = w.cmd(&["daemon"]);
    for (k, v) in &desktop {
        start = start.env(k, v);
    }
    start.ok();
    for alias in ["sh1", "sh2"] {
        w.cmd(&[
            "profiles",
            "create",
            "shell",
            alias,
            "-p",
            "anthropic",
            "--api-key-stdin",
            "--no-alias",
        ])
        .stdin(crate::util::KEY)
        .ok();
    }
    let runtime = w.runtime_dir();
    assert!(runtime.join("ringlet.sock").exists(), "the IPC socket is not under the work dir");
    let token = w.cmd(&["daemon", "token"]).ok().trim().to_string();
    let config = &w.env.config;
    assert!(config.join("http_token").is_file());
    let status = w.cmd(&["daemon", "status", "--json"]).json();
    let addr: SocketAddr = status["http"].as_str().unwrap().parse().unwrap();

    let script = |name: &str| {
        format!(
            r#"{CHECK}
            listed() {{ test -n "$(ls -A "$1" 2>/dev/null)"; }}
            out="$PWD/findings-{name}"
            {{
            check runtime_listed listed '{runtime}'
            check ipc_socket test -S '{runtime}/ringlet.sock'
            check ipc_connect {CONNECT} '{runtime}/ringlet.sock'
            check config_listed listed '{config}'
            check token_read cat '{config}/http_token'
            check dbus_connect {CONNECT} '{dbus}'
            check ssh_connect {CONNECT} '{ssh}'
            check ssh_dir_listed listed '{ssh_dir}'
            check gpg_connect {CONNECT} '{gpg}'
            check wayland_connect {CONNECT} '{wayland}'
            echo "perl=$(command -v perl)"
            echo "env_display=${{DISPLAY-unset}}"
            echo "env_wayland=${{WAYLAND_DISPLAY-unset}}"
            echo "env_ssh=${{SSH_AUTH_SOCK-unset}}"
            echo "env_dbus=${{DBUS_SESSION_BUS_ADDRESS-unset}}"
            echo "env_gpg=${{GPG_AGENT_INFO-unset}}"
            echo done
            }} > "$out.tmp" 2>&1
            mv "$out.tmp" "$out"
            "#,
            runtime = runtime.display(),
            config = config.display(),
            dbus = dbus.display(),
            ssh = ssh.display(),
            ssh_dir = ssh_dir.display(),
            gpg = gpg.display(),
            wayland = wayland.display(),
        )
    };
    let env_json: serde_json::Map<String, Value> =
        desktop.iter().map(|(k, v)| (k.to_string(), json!(v))).collect();
    let mut found = Vec::new();
    for alias in ["sh1", "sh2"] {
        let extra = json!({"profile": alias, "working_dir": work, "env": env_json});
        let (status, reply) = create(&w.env, addr, &token, &script(alias), extra);
        assert_eq!(status, 201, "{reply}");
        assert_eq!(reply["data"]["sandbox"], "bwrap", "{reply}");
        found.push(findings(&work.join(format!("findings-{alias}"))));
    }
    // Nothing of Ringlet's: no socket to start an unsandboxed session
    // through, no token, no config; none of the desktop's sockets or
    // variables unless the profile opted in.
    let hidden = [
        "runtime_listed",
        "ipc_socket",
        "ipc_connect",
        "config_listed",
        "token_read",
        "gpg_connect",
        "wayland_connect",
    ];
    for text in &found {
        for name in hidden {
            assert_eq!(value(text, name), "no", "{name} in\n{text}");
        }
        assert_eq!(value(text, "env_display"), "unset", "{text}");
        assert_eq!(value(text, "env_wayland"), "unset", "{text}");
        assert_eq!(value(text, "env_gpg"), "unset", "{text}");
    }
    let (sh1, sh2) = (&found[0], &found[1]);
    for name in ["dbus_connect", "ssh_connect", "ssh_dir_listed"] {
        assert_eq!(value(sh1, name), "no", "{name} in\n{sh1}");
    }
    assert_eq!(value(sh1, "env_ssh"), "unset", "{sh1}");
    assert_eq!(value(sh1, "env_dbus"), "unset", "{sh1}");
    // sh2 opted in to the ssh agent and the bus: their sockets and
    // variables are there, and nothing more.
    assert_eq!(value(sh2, "dbus_connect"), "yes", "{sh2}");
    assert_eq!(value(sh2, "ssh_connect"), "yes", "{sh2}");
    assert_eq!(value(sh2, "env_ssh"), ssh.display().to_string(), "{sh2}");
    assert_eq!(value(sh2, "env_dbus"), dbus_address, "{sh2}");

    // Working dirs that would show all of it are refused with the reason.
    let dot_config = config.parent().unwrap();
    let refused = [
        (Path::new("/"), "the whole file system"),
        (Path::new("/tmp"), "shared by every program"),
        (config.as_path(), "Ringlet's config dir"),
        (dot_config, "Ringlet's config dir"),
    ];
    for (dir, why) in refused {
        let extra = json!({"working_dir": dir});
        let (status, reply) = create(&w.env, addr, &token, "true", extra);
        let message = reply["error"]["message"].as_str().unwrap_or_default();
        assert_eq!(status, 400, "{dir:?}: {reply}");
        assert!(message.contains(&format!("working dir {}", dir.display())), "{message}");
        assert!(message.contains(why), "{message}");
    }
}

/// The real agents from tests/setup.sh, installed with `npm install
/// --prefix`: one hoisted `node_modules` where Codex's native package
/// (`@openai/codex-linux-x64`) sits next to its launcher's, not inside it.
fn real_agents_bin() -> std::path::PathBuf {
    let bin = crate::util::real_agents_dir().join("node_modules/.bin");
    for agent in ["claude", "codex", "opencode"] {
        assert!(bin.join(agent).is_file(), "{}: run tests/setup.sh", bin.join(agent).display());
    }
    bin
}

/// `providers.d/<id>.toml` for a mock at `endpoint` serving `model`.
fn mock_provider(env: &Env, id: &str, kind: &str, endpoint: &str, env_key: &str, model: &str) {
    write(
        &env.config.join(format!("providers.d/{id}.toml")),
        &format!(
            "id = \"{id}\"\nname = \"Mock {id}\"\ntype = \"{kind}\"\n\n\
             [endpoints]\ndefault = \"{endpoint}\"\n\n[auth]\nenv_key = \"{env_key}\"\n\n\
             [models]\navailable = [\"{model}\"]\ndefault = \"{model}\"\n"
        ),
    );
}

/// Issue 11 item 5: Codex, Claude Code and OpenCode, installed in one
/// hoisted `node_modules`, each run one prompt in a sandboxed remote session
/// (the real bwrap) against a mock provider reached over loopback, all three
/// at once. Before the whole tree was bound, Codex died at start with
/// `Missing optional dependency @openai/codex-linux-x64`.
#[test]
fn real_agents_in_a_hoisted_node_modules_run_sandboxed() {
    use crate::util::mock::MockProvider;
    let reply = "pong from inside the sandbox";
    let anthropic = MockProvider::anthropic(reply);
    let responses = MockProvider::openai_responses(reply);
    let mut env = Env::new("sandbox-real-agents");
    env.extra_path.push(real_agents_bin());
    let work = env.root.join("work");
    fs::create_dir_all(&work).unwrap();
    let oai = format!("{}/v1", responses.url());
    mock_provider(&env, "mockoai", "openai-compatible", &oai, "MOCK_OPENAI_KEY", "mock-codex-1");
    mock_provider(&env, "mockapi", "anthropic", &anthropic.url(), "MOCK_ANT_KEY", "mock-model-1");
    let mock_ant = anthropic.url();
    mock_provider(&env, "mockant", "anthropic-compatible", &mock_ant, "MOCK_KEY", "mock-model-1");
    let runs = [
        ("codex", "cx", "mockoai", vec!["exec", "--skip-git-repo-check", "say pong"]),
        ("claude", "cl", "mockapi", vec!["-p", "say pong"]),
        ("opencode", "oc", "mockant", vec!["run", "say", "pong"]),
    ];
    for (agent, alias, provider, _) in &runs {
        let args = ["profiles", "create", agent, alias, "-p", provider, "--api-key-stdin"];
        let mut args = args.to_vec();
        args.push("--no-alias");
        env.cmd(&args).env("RINGLET_SECRET_STORE", "file").stdin(crate::util::KEY).ok();
    }
    let (addr, token) = env.http();
    let auth = format!("Bearer {token}");
    let mut ids = Vec::new();
    let started = std::time::Instant::now();
    for (_, alias, _, args) in &runs {
        let body = json!({"profile": alias, "cols": 120, "rows": 40, "working_dir": work,
                          "path": env.path_var().to_str().unwrap(), "args": args});
        let answer = post_session(addr, &token, &body);
        let info: Value = serde_json::from_slice(&answer.body).unwrap_or(Value::Null);
        assert_eq!(answer.status, 201, "{alias}: {info}");
        assert_eq!(info["data"]["sandbox"], "bwrap", "{info}");
        ids.push(info["data"]["id"].as_str().unwrap().to_string());
    }
    let info = |id: &str| {
        let path = format!("/api/terminal/sessions/{id}");
        let answer = request(addr, "GET", &path, &[("Authorization", &auth)], b"");
        serde_json::from_slice::<Value>(&answer.body).unwrap_or(Value::Null)["data"].clone()
    };
    for ((agent, ..), id) in runs.iter().zip(&ids) {
        let ended = wait_until(Duration::from_secs(90), || info(id)["state"] != "running");
        eprintln!("{agent}: ended after {:?}", started.elapsed());
        let mut term = crate::terminal::Term::open(addr, &token, id);
        // The late client gets the screen: enough to tell why it failed.
        for _ in 0..10 {
            term.pump();
        }
        let screen = String::from_utf8_lossy(&term.seen).into_owned();
        let last = info(id);
        assert!(ended, "{agent} did not finish within 90 s:\n{screen}");
        assert_eq!(last["exit_code"], 0, "{agent}: {last}\n{screen}");
        assert!(!screen.contains("Missing optional dependency"), "{agent}:\n{screen}");
        if *agent != "opencode" {
            // OpenCode draws its answer with cursor moves; the mock saw it.
            assert!(screen.contains(reply), "{agent}:\n{screen}");
        }
    }
    for (mock, path) in [(&responses, "/v1/responses"), (&anthropic, "/v1/messages")] {
        let seen = mock.requests();
        let prompts = seen
            .iter()
            .filter(|s| s.path.starts_with(path))
            .filter(|s| s.last_user_text.as_deref().is_some_and(|t| t.contains("pong")))
            .count();
        let want = if path == "/v1/messages" { 2 } else { 1 };
        let all: Vec<String> = seen.iter().map(|s| format!("{} {}", s.method, s.path)).collect();
        assert!(prompts >= want, "{path}: {prompts} prompts, want {want}: {all:#?}");
    }
}

//! Packaging (issue 15, items 7 and 8): `make install` and `make uninstall`
//! into a temp prefix, the systemd user unit checked by `systemd-analyze
//! verify` and run the way the user manager runs it, and `make deb` checked
//! by lintian and installed and purged with `dpkg --root` in a scratch root.
//! All from the debug binary, stripped (a release build takes minutes); the
//! host's `/usr` is never written. The tools come from `tests/setup.sh`
//! (systemd, dpkg-dev, lintian).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use crate::util::{BIN, Env, wait_until};

/// The repository: the Makefile and src/dist live here.
const REPO: &str = env!("CARGO_MANIFEST_DIR");

/// `program args...` under `timeout`, so a wedged tool fails the test
/// rather than hang the suite.
fn tool(limit_secs: u32, program: &str) -> Command {
    let mut cmd = Command::new("timeout");
    cmd.arg(limit_secs.to_string()).arg(program).stdin(Stdio::null());
    // The man page's date (and the changelog's) from a fixed time, so a
    // test across midnight compares equal pages.
    cmd.env("SOURCE_DATE_EPOCH", "1780000000");
    cmd
}

/// Runs `cmd`, requires success, returns (stdout, stderr).
fn run(cmd: &mut Command) -> (String, String) {
    let out = cmd.output().unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    assert!(out.status.success(), "{}", describe(cmd, &out));
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn describe(cmd: &Command, out: &Output) -> String {
    format!(
        "command: {cmd:?}\nstatus: {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The debug binary without its symbols (155 MB -> 25 MB), in the world.
fn stripped(env: &Env) -> PathBuf {
    let out = env.root.join("ringlet-stripped");
    run(tool(60, "strip").arg("-o").arg(&out).arg(BIN));
    out
}

/// `make <target> VAR=value...` in the repository, with the test's own
/// environment (cargo and rustup stay found) and `extra` on top.
fn make(target: &str, vars: &[(&str, &Path)], extra: &[(&str, &Path)]) -> (String, String) {
    let mut cmd = tool(300, "make");
    cmd.arg("--no-print-directory").arg("-C").arg(REPO).arg(target);
    for (name, value) in vars {
        let mut arg = std::ffi::OsString::from(format!("{name}="));
        arg.push(value);
        cmd.arg(arg);
    }
    // A test's HOME must not hide cargo and rustup (NOTICE lists the
    // crates with `cargo tree`).
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_default();
    for (var, dir) in [("CARGO_HOME", ".cargo"), ("RUSTUP_HOME", ".rustup")] {
        cmd.env(var, std::env::var_os(var).map_or_else(|| home.join(dir), PathBuf::from));
    }
    for (name, value) in extra {
        cmd.env(name, value);
    }
    run(&mut cmd)
}

/// Every file (not directory) under `dir`, relative, sorted.
fn files_under(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(entries) = fs::read_dir(dir) else { return };
        for entry in entries.flatten() {
            let path = entry.path();
            if entry.file_type().unwrap().is_dir() {
                walk(base, &path, out);
            } else {
                out.push(path.strip_prefix(base).unwrap().to_string_lossy().into_owned());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// `ringlet <args>` as the installed files must hold it.
fn printed(bin: &Path, args: &[&str]) -> String {
    run(tool(30, bin.to_str().unwrap()).args(args)).0
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The unit's `Key=value` lines (comments and sections left out).
fn unit_keys(unit: &str) -> Vec<(String, String)> {
    unit.lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#') && !l.starts_with('['))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

#[test]
fn make_install_puts_every_file_in_its_place_and_uninstall_takes_them_away() {
    let env = Env::new("make-install");
    let bin = stripped(&env);
    // `make install PREFIX=~/.local`, the README's line, with the tilde
    // left for the script (zsh and dash pass it through unexpanded).
    let home = &env.home;
    let vars = [("BIN", bin.as_path()), ("PREFIX", Path::new("~/.local"))];
    make("install", &vars, &[("HOME", home)]);

    let prefix = home.join(".local");
    assert_eq!(
        files_under(&prefix),
        [
            "bin/ringlet",
            "share/bash-completion/completions/ringlet",
            "share/doc/ringlet/LICENSE",
            "share/doc/ringlet/NOTICE",
            "share/fish/vendor_completions.d/ringlet.fish",
            "share/man/man1/ringlet.1",
            // ~/.local/share/systemd/user is on the user manager's search path.
            "share/systemd/user/ringlet.service",
            "share/zsh/site-functions/_ringlet",
        ]
    );
    let installed = prefix.join("bin/ringlet");
    assert_eq!(crate::util::mode(&installed), 0o755);
    assert!(printed(&installed, &["--version"]).starts_with("ringlet "));
    // The man page and completions are what the binary prints.
    let share = prefix.join("share");
    assert_eq!(read(&share.join("man/man1/ringlet.1")), printed(&bin, &["manpage"]));
    for (shell, file) in [
        ("bash", "bash-completion/completions/ringlet"),
        ("zsh", "zsh/site-functions/_ringlet"),
        ("fish", "fish/vendor_completions.d/ringlet.fish"),
    ] {
        assert_eq!(read(&share.join(file)), printed(&bin, &["completions", shell]), "{shell}");
    }
    // The unit names the installed binary.
    let unit = read(&share.join("systemd/user/ringlet.service"));
    let exec = format!("{} daemon --foreground --stay-alive", installed.display());
    assert!(unit_keys(&unit).contains(&("ExecStart".into(), exec)), "{unit}");

    // The licence is Cargo.toml's (MIT); NOTICE names each vendored package
    // with its version and carries its licence text, and lists the crates.
    assert!(read(&Path::new(REPO).join("Cargo.toml")).contains("license = \"MIT\""));
    let license = read(&share.join("doc/ringlet/LICENSE"));
    assert!(
        license.starts_with("MIT License\n") && license.contains("Permission is hereby granted")
    );
    let notice = read(&share.join("doc/ringlet/NOTICE"));
    let vendor = Path::new(REPO).join("static/vendor");
    for line in read(&vendor.join("VERSIONS")).lines().filter(|l| !l.starts_with('#')) {
        let mut words = line.split_whitespace();
        let (package, version) = (words.next().unwrap(), words.next().unwrap());
        assert!(
            notice.contains(&format!("{package} {version} (")),
            "{package} not in NOTICE:\n{notice}"
        );
        let name = package.rsplit('/').next().unwrap();
        assert!(
            notice.contains(&read(&vendor.join(format!("LICENSE.{name}")))),
            "{name}'s licence"
        );
    }
    assert!(notice.contains("\nserde v1.") && notice.contains("\nrhai v1."), "{notice}");

    make("uninstall", &[("PREFIX", Path::new("~/.local"))], &[("HOME", home)]);
    assert_eq!(files_under(&prefix), Vec::<String>::new());
    assert!(!share.join("doc/ringlet").exists(), "its own doc dir goes too");
    assert!(share.join("man/man1").is_dir(), "shared dirs stay");
}

#[test]
fn the_user_unit_passes_systemd_analyze_and_runs_the_daemon_the_cli_dials() {
    let env = Env::new("unit");
    let bin = stripped(&env);
    let prefix = env.root.join("usr");
    make("install", &[("BIN", &bin), ("PREFIX", &prefix)], &[]);
    let unit_path = prefix.join("share/systemd/user/ringlet.service");
    let unit = read(&unit_path);

    // `verify` exits 0 on an unknown key or a bad value, and prints it:
    // any output fails. It runs `man ringlet` for Documentation=, so the
    // installed page must be found.
    let mut verify = tool(60, "systemd-analyze");
    verify
        .args(["verify", "--user"])
        .arg(&unit_path)
        .env("XDG_RUNTIME_DIR", &env.run)
        .env("MANPATH", prefix.join("share/man"));
    let (stdout, stderr) = run(&mut verify);
    assert_eq!((stdout.as_str(), stderr.as_str()), ("", ""), "systemd-analyze verify printed");

    let keys = unit_keys(&unit);
    let value = |key: &str| keys.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
    assert_eq!(value("Restart"), Some("on-failure"));
    // A start that always fails (another daemon holds the lock) ends.
    assert_eq!(value("StartLimitBurst"), Some("3"));
    assert_eq!(value("WantedBy"), Some("default.target"));
    assert!(value("NoNewPrivileges").is_some(), "some hardening is there");
    // Nothing that takes away user namespaces (bwrap), the home (profiles,
    // agents), the session bus (keychain), the network, or Node's JIT; and
    // nothing that moves the socket away from where the CLI dials.
    for forbidden in [
        "RestrictNamespaces",
        "PrivateUsers",
        "ProtectHome",
        "ProtectSystem",
        "PrivateTmp",
        "PrivateDevices",
        "PrivateNetwork",
        "RestrictAddressFamilies",
        "MemoryDenyWriteExecute",
        "SystemCallFilter",
        "CapabilityBoundingSet",
        "UMask",
        "RuntimeDirectory",
    ] {
        assert!(value(forbidden).is_none(), "{forbidden}= in the unit");
    }
    for (key, v) in &keys {
        assert!(
            !(key == "Environment"
                && (v.contains("XDG_RUNTIME_DIR") || v.contains("RINGLET_DAEMON"))),
            "the unit moves the socket: {v}"
        );
    }

    // Run ExecStart as the user manager does: its environment (HOME,
    // XDG_RUNTIME_DIR=/run/user/<uid>, a plain PATH) plus Environment=.
    // The CLI of a login session must find this daemon, not start another.
    let exec = value("ExecStart").unwrap();
    let mut words = exec.split_whitespace();
    let mut daemon = Command::new(words.next().unwrap());
    daemon.args(words).env_clear();
    daemon
        .env("HOME", &env.home)
        .env("XDG_RUNTIME_DIR", &env.run)
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        // Not the real port: tests run side by side.
        .env("RINGLET_HTTP_PORT", "0");
    for (key, v) in keys.iter().filter(|(k, _)| k == "Environment") {
        let (name, val) = v.split_once('=').unwrap_or_else(|| panic!("{key}={v}"));
        daemon.env(name, val);
    }
    let mut child =
        daemon.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let status = || {
        Command::new(BIN)
            .args(["daemon", "status", "--json"])
            .env_clear()
            .env("HOME", &env.home)
            .env("XDG_RUNTIME_DIR", &env.run)
            .env("PATH", "/usr/bin:/bin")
            .output()
            .unwrap()
    };
    let up = wait_until(Duration::from_secs(20), || status().status.success());
    if !up {
        let _ = child.kill();
        panic!("the unit's daemon never answered the CLI: {}", describe(&daemon, &status()));
    }
    let reply: serde_json::Value = serde_json::from_slice(&status().stdout).unwrap();
    assert_eq!(reply["pid"], child.id(), "the CLI reached the unit's daemon: {reply}");
    assert_eq!(reply["idle_timeout_secs"], serde_json::Value::Null, "--stay-alive: {reply}");
    assert_eq!(reply["socket"], env.socket().to_str().unwrap());

    // `systemctl --user stop` sends SIGTERM: a clean exit, status 0, which
    // Restart=on-failure leaves stopped.
    crate::util::kill(child.id(), 15);
    let mut exit = None;
    wait_until(Duration::from_secs(30), || {
        exit = child.try_wait().unwrap();
        exit.is_some()
    });
    let Some(exit) = exit else {
        let _ = child.kill();
        panic!("the daemon did not exit on SIGTERM");
    };
    assert!(exit.success(), "SIGTERM ended the daemon with {exit}");
}

#[test]
fn make_deb_passes_lintian_and_installs_and_purges_in_a_scratch_root() {
    let env = Env::new("deb");
    let bin = stripped(&env);
    let out = env.root.join("out");
    let (stdout, _) = make(
        "deb",
        &[
            ("BIN", &bin),
            ("DEB_OUT", &out),
            // The test's package need not be small, only quick (lintian
            // rejects an uncompressed one).
            ("DEB_COMPRESS", Path::new("gzip")),
            ("DEB_COMPRESS_LEVEL", Path::new("1")),
            ("DEBFULLNAME", Path::new("Ringlet Tests")),
            ("DEBEMAIL", Path::new("tests@ringlet.example.org")),
        ],
        &[],
    );
    let deb = PathBuf::from(stdout.lines().last().unwrap().trim());
    assert!(deb.starts_with(&out) && deb.is_file(), "{stdout}");

    // lintian takes seconds; it runs while the package is installed.
    let lintian = tool(300, "lintian")
        .args(["--fail-on", "error"])
        .arg(&deb)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();

    let field =
        |name: &str| run(tool(30, "dpkg-deb").arg("-f").arg(&deb).arg(name)).0.trim().to_string();
    assert_eq!(field("Package"), "ringlet");
    let version = read(&Path::new(REPO).join("Cargo.toml"))
        .lines()
        .find_map(|l| l.strip_prefix("version = \"").map(|v| v.trim_end_matches('"').to_string()))
        .unwrap();
    assert_eq!(field("Version"), format!("{version}-1"));
    let depends = field("Depends");
    // From dpkg-shlibdeps (versioned), libsqlite3-0 (loaded on first use,
    // so named by deb.sh from its shlibs file), and ca-certificates for
    // HTTPS. No libgcc-s1: the unwinder is linked in (src/build.rs).
    for lib in ["libc6 (>= ", "libsqlite3-0 (>= ", "ca-certificates"] {
        assert!(depends.contains(lib), "Depends: {depends}");
    }
    assert_eq!(field("Recommends"), "bubblewrap");

    // dpkg in a scratch root: its own database, log and files; the
    // libraries it depends on live in the host's database, hence
    // --force-depends. No maintainer scripts run (there are none).
    let root = env.root.join("scratch");
    let admin = root.join("var/lib/dpkg");
    for dir in ["info", "updates", "triggers"] {
        fs::create_dir_all(admin.join(dir)).unwrap();
    }
    fs::write(admin.join("status"), "").unwrap();
    fs::write(admin.join("available"), "").unwrap();
    let host_had_it = Path::new("/usr/bin/ringlet").exists();
    let dpkg = |args: &[&str]| {
        let mut cmd = tool(120, "dpkg");
        cmd.arg(format!("--root={}", root.display()))
            .arg(format!("--log={}", env.root.join("dpkg.log").display()))
            .args(args);
        run(&mut cmd)
    };
    dpkg(&["--force-depends", "--install", deb.to_str().unwrap()]);
    let installed = files_under(&root.join("usr"));
    assert_eq!(
        installed,
        [
            "bin/ringlet",
            "lib/systemd/user/ringlet.service",
            "share/bash-completion/completions/ringlet",
            "share/doc/ringlet/changelog.Debian.gz",
            "share/doc/ringlet/copyright",
            "share/fish/vendor_completions.d/ringlet.fish",
            "share/man/man1/ringlet.1.gz",
            "share/zsh/vendor-completions/_ringlet",
        ]
    );
    let ringlet = root.join("usr/bin/ringlet");
    assert!(printed(&ringlet, &["--version"]).starts_with("ringlet "));
    let unit = read(&root.join("usr/lib/systemd/user/ringlet.service"));
    let exec =
        ("ExecStart".to_string(), "/usr/bin/ringlet daemon --foreground --stay-alive".to_string());
    assert!(unit_keys(&unit).contains(&exec), "{unit}");
    let copyright = read(&root.join("usr/share/doc/ringlet/copyright"));
    assert!(
        copyright.contains("License: MIT") && copyright.contains("xterm.js authors"),
        "{copyright}"
    );
    assert!(copyright.contains("\n serde v1."), "the crates are listed:\n{copyright}");
    let (status, _) = dpkg(&["--status", "ringlet"]);
    assert!(status.contains("Status: install ok installed"), "{status}");

    dpkg(&["--purge", "ringlet"]);
    assert!(!root.join("usr").exists(), "left behind: {:?}", files_under(&root.join("usr")));
    let listed = Command::new("dpkg")
        .arg(format!("--root={}", root.display()))
        .args(["--status", "ringlet"])
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&listed.stdout).contains("install ok installed"));
    assert_eq!(Path::new("/usr/bin/ringlet").exists(), host_had_it, "the host's /usr was touched");

    let lint = lintian.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&lint.stdout),
        String::from_utf8_lossy(&lint.stderr)
    );
    assert!(
        lint.status.success() && !text.lines().any(|l| l.starts_with("E: ")),
        "lintian:\n{text}"
    );
}

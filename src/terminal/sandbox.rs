//! The sandbox around remote terminal sessions: a bubblewrap (`bwrap`)
//! command line on Linux and a `sandbox-exec` profile on macOS.
//!
//! Both give the agent the same world: the system is readable and not
//! writable, the profile home and the working dir are writable, the user's
//! real home is hidden except a short read-only allowlist (`[sandbox] home_ro`
//! in config.toml) and the agent's own install, temp space is private (Linux)
//! or the usual temp dirs (macOS), and the network is shared. Ringlet's
//! config and runtime dirs and the desktop's sockets (session bus, ssh and
//! gpg agents, X11, Wayland) are invisible wherever they sit, and their
//! variables dropped, unless the profile opts in ([`Private`]); working dirs
//! that would expose them are refused ([`check_dirs`]). [`check_bwrap`]
//! proves bwrap works before a session starts and, when it does not, names
//! the cause and the fix; `ringlet doctor` runs the same check. The caller
//! (`daemon/dispatch.rs`) resolves the agent, builds the environment (which
//! passes through bwrap and sandbox-exec unchanged, `HOME` included) and
//! starts the argv on the session's PTY (`pty.rs`).

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::fmt;
use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};

/// What to run in the sandbox and what it may see.
pub struct Spec<'a> {
    /// The agent, absolute (and resolved, so that exec finds it inside).
    pub program: &'a Path,
    pub args: &'a [String],
    /// The user's real home, hidden inside the sandbox.
    pub home: &'a Path,
    /// Writable inside; usually within `home`.
    pub profile_home: &'a Path,
    /// Writable inside, and the agent's current directory.
    pub work_dir: &'a Path,
    /// Read-only inside: paths relative to `home` (`[sandbox] home_ro`).
    pub home_ro: &'a [String],
    /// Read-only inside: the agent's install ([`install_dirs`]: its
    /// `node_modules` tree, the directory of the resolved binary, the
    /// interpreter its launcher names).
    pub extra_ro: &'a [PathBuf],
    /// `--bwrap-flags`, already split ([`split_words`]); appended last.
    pub extra_flags: &'a [String],
    /// Ringlet's own dirs and the desktop's sockets: hidden wherever a bind
    /// would show them, except what the profile opted in to ([`Private`]).
    pub private: &'a Private,
    /// Ringlet's own binary (resolved), to run `program` through the session
    /// helper (`helper.rs`): the sandbox runs `<helper> __session-helper --
    /// program args...`, the binary bound read-only at [`HELPER_PATH`]
    /// (bwrap) or readable where it is (sandbox-exec).
    pub helper: Option<&'a Path>,
}

/// What a profile may opt in to (`[sandbox.allow] <alias> = [...]` in
/// config.toml), with the variables each keeps in the session: without the
/// opt-in they are dropped and their sockets hidden.
pub const OPT_INS: &[(&str, &[&str])] = &[
    ("display", &["DISPLAY", "WAYLAND_DISPLAY", "XAUTHORITY"]),
    ("ssh-agent", &["SSH_AUTH_SOCK"]),
    ("dbus", &["DBUS_SESSION_BUS_ADDRESS"]),
    ("gpg-agent", &["GPG_AGENT_INFO"]),
];

/// Everything a sandboxed session must not reach, found from Ringlet's
/// paths and the environment ([`Private::find`]), and the sockets a profile
/// opted in to.
///
/// The sandbox binds only what the session needs (system dirs, the profile
/// home, the work dir, the install, the allowlist) on a fresh root with its
/// own `/tmp`, so none of this is reachable unless one of those binds holds
/// it: a work dir that holds the runtime dir (no `XDG_RUNTIME_DIR`, socket
/// in `/tmp/ringlet-<uid>/`), an allowlist entry that holds the config dir
/// (`~/.config`), a session bus socket in a project. [`mounts`] covers each
/// such place with an empty tmpfs (a dir) or `/dev/null` (a socket or file)
/// wherever a bind shows it, by real path; [`check_dirs`] refuses a working
/// dir that is one of them or holds the config dir.
#[derive(Debug, Default, Clone)]
pub struct Private {
    /// Ringlet's config dir (`http_token`, keys in the file store, profiles).
    pub config_dir: PathBuf,
    /// Directories, each with what it is (for the refusal's reason).
    pub dirs: Vec<(PathBuf, &'static str)>,
    /// Sockets and files (a tmpfs cannot cover a file).
    pub files: Vec<PathBuf>,
    /// Opted in: bound read-only at their own path (sockets, the X11 socket
    /// dir, the gpg socket dir, the X authority file), never hidden.
    pub shown: Vec<PathBuf>,
    /// Variables the session loses: those of every opt-in not chosen.
    pub drop_vars: Vec<&'static str>,
}

impl Private {
    /// For a session whose environment is `session_env`, of a profile that
    /// opted in to `allow` (names from [`OPT_INS`]). Sockets are looked up
    /// in the session's environment and the daemon's own: either may name
    /// one the other does not.
    pub fn find(
        paths: &crate::paths::Paths,
        session_env: &[(String, String)],
        allow: &[String],
    ) -> Private {
        let var = |name: &str| -> Vec<String> {
            let mut values: Vec<String> = session_env
                .iter()
                .filter(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
                .chain(std::env::var(name).ok())
                .filter(|v| !v.is_empty())
                .collect();
            values.dedup();
            values
        };
        let uid = rustix::process::getuid().as_raw();
        let mut ringlet_files = vec![paths.socket.clone(), paths.daemon_lock()];
        ringlet_files.extend([paths.rest_socket(), paths.spawn_lock()]);
        Private::find_with(&paths.config_dir, &paths.runtime_dir, &ringlet_files, uid, var, allow)
    }

    /// The pure part of [`Private::find`]: `var` gives a variable's values.
    fn find_with(
        config_dir: &Path,
        runtime_dir: &Path,
        ringlet_files: &[PathBuf],
        uid: u32,
        var: impl Fn(&str) -> Vec<String>,
        allow: &[String],
    ) -> Private {
        let allowed = |name: &str| allow.iter().any(|a| a == name);
        let mut p = Private { config_dir: config_dir.to_path_buf(), ..Private::default() };
        p.dirs.push((config_dir.to_path_buf(), "Ringlet's config dir"));
        p.dirs.push((runtime_dir.to_path_buf(), "Ringlet's runtime dir (its IPC socket)"));
        p.files.extend(ringlet_files.iter().cloned());
        // The login session's runtime dir: the session bus (`bus`), Wayland,
        // gpg-agent (`gnupg/`), the keyring, PulseAudio, systemd.
        let what =
            "your login session's runtime dir (D-Bus, Wayland, gpg-agent and keyring sockets)";
        let user_run = PathBuf::from(format!("/run/user/{uid}"));
        for dir in var("XDG_RUNTIME_DIR").into_iter().map(PathBuf::from).chain([user_run.clone()]) {
            if dir.is_absolute() && dir.components().count() >= 3 {
                p.dirs.push((dir, what));
            }
        }
        let runtime_dirs: Vec<PathBuf> = p.dirs[2..].iter().map(|(d, _)| d.clone()).collect();

        // Display: X11's socket dir, Wayland's socket, the X cookie.
        let mut display = vec![PathBuf::from("/tmp/.X11-unix")];
        for name in var("WAYLAND_DISPLAY") {
            let socket = Path::new(&name);
            if socket.is_absolute() {
                display.push(socket.to_path_buf());
            } else {
                display.extend(runtime_dirs.iter().map(|d| d.join(socket)));
            }
        }
        display.extend(var("XAUTHORITY").into_iter().map(PathBuf::from));
        // ssh-agent: the socket, and its dir when it is the agent's own
        // (`/tmp/ssh-XXXX/agent.<pid>`), not a shared one.
        let mut ssh = Vec::new();
        let mut ssh_dirs = Vec::new();
        for sock in var("SSH_AUTH_SOCK").into_iter().map(PathBuf::from) {
            if let Some(dir) = sock.parent().filter(|d| own_dir(d)) {
                ssh_dirs.push(dir.to_path_buf());
            }
            ssh.push(sock);
        }
        // The session bus: every `unix:path=` of the address list. An
        // abstract socket (`unix:abstract=`) has no path to hide: it is
        // reachable while the network namespace is shared.
        let dbus: Vec<PathBuf> =
            var("DBUS_SESSION_BUS_ADDRESS").iter().flat_map(|a| dbus_paths(a)).collect();
        // gpg-agent: `GPG_AGENT_INFO` (`path:pid:1`, gpg 2.0), the socket
        // dir gpg uses (`gpgconf --list-dirs socketdir`: `/run/user/<uid>/
        // gnupg`, else the home dir, `$GNUPGHOME` or `~/.gnupg`).
        let mut gpg: Vec<PathBuf> = var("GPG_AGENT_INFO")
            .iter()
            .filter_map(|v| v.split(':').next().filter(|s| s.starts_with('/')).map(PathBuf::from))
            .collect();
        let mut gpg_dirs: Vec<PathBuf> = runtime_dirs.iter().map(|d| d.join("gnupg")).collect();
        gpg_dirs.extend(var("GNUPGHOME").into_iter().map(PathBuf::from).filter(|d| own_dir(d)));
        gpg.extend(gpg_dirs.iter().cloned());

        for (name, vars) in OPT_INS {
            let (files, dirs): (Vec<PathBuf>, Vec<PathBuf>) = match *name {
                "display" => (display.clone(), Vec::new()),
                "ssh-agent" => (ssh.clone(), ssh_dirs.clone()),
                "dbus" => (dbus.clone(), Vec::new()),
                _ => (gpg.clone(), gpg_dirs.clone()),
            };
            // The dirs stay hidden around the chosen sockets (an ssh agent's
            // dir holds only its socket anyway); a dir that is itself chosen
            // (gpg's socket dir) is shown instead.
            let chosen = allowed(name);
            for dir in &dirs {
                if !(chosen && files.contains(dir)) {
                    p.dirs.push((dir.clone(), AGENT_SOCKET_DIR));
                }
            }
            if chosen {
                p.shown.extend(files);
            } else {
                p.drop_vars.extend(vars.iter().copied());
                p.files.extend(files.into_iter().filter(|f| !dirs.contains(f)));
            }
        }
        // X11's socket dir is a dir: hidden unless shown.
        if !p.shown.iter().any(|f| f == Path::new("/tmp/.X11-unix")) {
            p.files.retain(|f| f != Path::new("/tmp/.X11-unix"));
            p.dirs.push(("/tmp/.X11-unix".into(), "X11's socket dir"));
        }
        p.files.retain(|f| f.is_absolute());
        p.shown.retain(|f| f.is_absolute());
        p
    }

    /// The session's environment without the variables of opt-ins not chosen.
    pub fn filter_env(&self, env: &mut Vec<(String, String)>) {
        env.retain(|(k, _)| !self.drop_vars.contains(&k.as_str()));
    }

    /// Every hidden path, dirs first.
    fn hidden(&self) -> impl Iterator<Item = &Path> {
        self.dirs.iter().map(|(d, _)| d.as_path()).chain(self.files.iter().map(PathBuf::as_path))
    }
}

/// What an ssh or gpg agent's own socket dir is called in [`Private::dirs`].
const AGENT_SOCKET_DIR: &str = "an agent's socket dir";

/// A dir that belongs to one program (an agent's socket dir), not a shared
/// one: hiding it hides nothing else. `/`, `/tmp`-like dirs and the dirs
/// right below the root are shared.
fn own_dir(dir: &Path) -> bool {
    let shared = ["/tmp", "/var/tmp", "/dev/shm"].iter().any(|d| dir == Path::new(d))
        || dir == std::env::temp_dir();
    dir.is_absolute() && dir.components().count() >= 3 && !shared
}

/// The socket paths of a D-Bus address list (`unix:path=/x,guid=...;...`),
/// with `%xx` escapes decoded.
fn dbus_paths(address: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in address.split(';') {
        let Some(params) = entry.strip_prefix("unix:") else { continue };
        for kv in params.split(',') {
            if let Some(path) = kv.strip_prefix("path=") {
                out.push(PathBuf::from(unescape_dbus(path)));
            }
        }
    }
    out
}

fn unescape_dbus(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Where bwrap binds Ringlet's binary for the session helper: a fixed path
/// in the sandbox's own root, the same wherever Ringlet is installed.
pub const HELPER_PATH: &str = "/run/ringlet/helper";

/// `[helper, __session-helper, --]` to put before the program, if any.
fn helper_prefix(helper: Option<&Path>, at: &str) -> Vec<String> {
    helper.map_or_else(Vec::new, |_| {
        vec![at.to_string(), super::helper::SUBCOMMAND.to_string(), "--".to_string()]
    })
}

/// The argv that runs `spec.program` in this platform's sandbox, and the
/// sandbox's name for the session's info: bwrap on Linux (found in
/// `path_var`, outside the working dir and profile home, and proved to
/// work first), sandbox-exec on macOS. A working dir or profile home that
/// would lose the agent's writes is refused ([`check_dirs`]).
pub fn wrap(spec: &Spec, path_var: &OsStr) -> Result<(Vec<String>, &'static str)> {
    check_dirs(spec)?;
    if cfg!(target_os = "macos") {
        if !spec.extra_flags.is_empty() {
            bail!("--bwrap-flags is for bwrap, Linux's sandbox; macOS sessions use sandbox-exec");
        }
        let profile = sandbox_exec_profile(spec)?;
        return Ok((sandbox_exec_argv(&profile, spec), "sandbox-exec"));
    }
    // Never from a dir the agent can write (a project's node_modules/.bin
    // on the user's PATH): a bwrap planted there would run unsandboxed.
    let writable = with_real_paths([spec.work_dir, spec.profile_home].map(Path::to_path_buf));
    let trusted: Vec<PathBuf> = std::env::split_paths(path_var)
        .filter(|dir| {
            let reals = with_real_paths([dir.clone()]);
            !reals.iter().any(|d| writable.iter().any(|w| d.starts_with(w)))
        })
        .collect();
    let trusted = std::env::join_paths(trusted).unwrap_or_default();
    let bwrap = check_bwrap(Some(&trusted))
        .map_err(|e| anyhow::anyhow!("{e} (or run without the sandbox: --no-sandbox)"))?;
    Ok((bwrap_argv(&bwrap, spec), "bwrap"))
}

/// What of an agent's install must be readable inside the sandbox: the
/// directory it was found in, the one its binary really is in (npm links
/// into `node_modules`), that package's root, the whole `node_modules` tree
/// the package lives in, and the interpreter its launcher names.
///
/// The tree, because npm hoists: `npm install --prefix`, nvm, `~/.npm-global`
/// and project installs put a package's dependencies next to it, not inside
/// it (Codex's native binary is the sibling package `@openai/codex-linux-x64`;
/// Droid and Grok likewise). The outermost `node_modules` above the binary
/// (by its real path and as found) is that tree: Node resolves upwards
/// through every `node_modules` on the way. The interpreter: a launcher
/// starting `#!/usr/bin/env node` runs the first `node` in `path_var` (the
/// session's PATH), which under nvm is in the hidden home; its directory and
/// real path are bound like the agent's. Nothing broader: a binary in
/// `~/.local/bin` must not open all of `~/.local`.
pub fn install_dirs(agent: &Path, path_var: Option<&OsStr>) -> Vec<PathBuf> {
    let real = fs::canonicalize(agent).unwrap_or_else(|_| agent.to_path_buf());
    let mut dirs: Vec<PathBuf> =
        [agent.parent(), real.parent()].into_iter().flatten().map(Into::into).collect();
    if let Some(root) = real.ancestors().skip(1).take(4).find(|d| d.join("package.json").is_file())
    {
        dirs.push(root.to_path_buf());
    }
    for path in [agent, real.as_path()] {
        if let Some(tree) =
            path.ancestors().filter(|a| a.file_name() == Some(OsStr::new("node_modules"))).last()
        {
            dirs.push(tree.to_path_buf());
        }
    }
    if let Some(interpreter) = interpreter(&real, path_var) {
        let real = fs::canonicalize(&interpreter).unwrap_or_else(|_| interpreter.clone());
        for path in [interpreter, real] {
            dirs.extend(path.parent().map(Path::to_path_buf));
            dirs.push(path);
        }
    }
    let mut unique = Vec::new();
    for dir in dirs {
        if !unique.contains(&dir) {
            unique.push(dir);
        }
    }
    unique
}

/// The program a script's `#!` line runs: an absolute path as written, or
/// for `env` (`#!/usr/bin/env node`, `#!/usr/bin/env -S node --flag`) the
/// named program found in `path_var`. `None` for a binary or no `#!`.
fn interpreter(script: &Path, path_var: Option<&OsStr>) -> Option<PathBuf> {
    use std::os::unix::fs::OpenOptionsExt;
    // Non-blocking and regular files only: a FIFO swapped in (a project's
    // node_modules/.bin is writable by the agent) must not hang the daemon.
    let mut file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
        .open(script)
        .ok()?;
    if !file.metadata().ok()?.is_file() {
        return None;
    }
    let mut head = [0u8; 256];
    let n = file.read(&mut head).ok()?;
    let line = head[..n].strip_prefix(b"#!")?;
    let line = line.split(|b| *b == b'\n').next()?;
    let line = std::str::from_utf8(line).ok()?;
    let mut words = line.split_whitespace();
    let program = PathBuf::from(words.next()?);
    if program.file_name() != Some(OsStr::new("env")) {
        return program.is_absolute().then_some(program);
    }
    // `env`'s options (-S splits the rest, -i clears the environment) and
    // assignments come before the program.
    let name = words.find(|w| !w.starts_with('-') && !w.contains('='))?;
    if name.contains('/') {
        return Some(PathBuf::from(name)).filter(|p| p.is_absolute());
    }
    find_program(name, path_var)
}

/// The full argv to exec on Linux: `[bwrap, flags..., "--", program, args...]`.
///
/// Mounts are emitted parents first (by path depth), so a deeper mount always
/// lands on top of a shallower one whatever the paths are: `--tmpfs /tmp`
/// before a work dir under `/tmp`, `--tmpfs <home>` before the allowlist and
/// the profile home inside it. At equal paths, read-only binds come first,
/// then read-write binds, then the home-hiding tmpfs, so the real home is
/// never exposed as a whole: not by a work dir equal to it, not by an
/// install dir that happens to be it. bwrap follows a bind's source through
/// symlinks, so the same holds for a source that only *resolves* to the home
/// or above it (a work dir that links to the home, a `HOME` reached through
/// a link and a work dir at its real path, which is what `getcwd` gives):
/// the home is hidden again wherever such a bind lands. A work dir or profile
/// home at or above the home would leave the agent in an empty throwaway
/// directory, so [`check_dirs`] refuses it ([`wrap`] calls it first); this
/// function still builds a safe argv for such a spec, so a caller that
/// skipped the check exposes nothing. Ringlet's dirs and the desktop's
/// sockets ([`Private`]) are masked the same way wherever a bind shows them,
/// and the sockets a profile opted in to are bound at their own paths.
///
/// Sources that do not exist are skipped (bwrap refuses a missing
/// `--ro-bind` source); the allowlist and install dirs also use
/// `--ro-bind-try` against a file vanishing in between. The profile home and
/// the work dir are bound with `--bind` and must exist: bwrap's own error is
/// clearer than an agent started in the wrong place.
///
/// Env is the caller's business: bwrap passes its environment to the agent.
/// `HOME` stays the real home's path, which inside is an empty, writable
/// tmpfs (throwaway caches and dotfiles go there and vanish at exit) holding
/// only the allowlist and whatever was bound inside it.
///
/// `--die-with-parent` makes the kernel kill the sandbox when the *thread*
/// that started bwrap exits (`PR_SET_PDEATHSIG` follows threads, not
/// processes): start it from a thread that lives as long as the session,
/// never from a per-request thread.
///
/// The argv is `String`s, so paths are converted lossily: a path that is
/// not UTF-8 would name another file inside, and is not supported.
pub fn bwrap_argv(bwrap: &Path, spec: &Spec) -> Vec<String> {
    let mut argv = vec![
        s(bwrap),
        // Killed with the daemon (see above for the thread caveat).
        "--die-with-parent".into(),
        "--unshare-pid".into(),
        "--unshare-ipc".into(),
        "--unshare-uts".into(),
        // No --new-session: its setsid(2) would detach the agent from the
        // PTY, which must stay its controlling terminal (job control,
        // SIGWINCH, /dev/tty). Its purpose, stopping TIOCSTI input injection
        // into the terminal, does not apply: the PTY is the session's own
        // and only the sandboxed agent reads its input side.
        // No --unshare-net: agents talk to their APIs.
    ];
    for op in mounts(Path::new("/"), spec) {
        argv.extend(op.args);
    }
    if let Some(helper) = spec.helper {
        argv.extend(["--ro-bind".into(), s(helper), HELPER_PATH.into()]);
    }
    argv.extend(["--chdir".into(), s(spec.work_dir)]);
    argv.extend(spec.extra_flags.iter().cloned());
    argv.push("--".into());
    argv.extend(helper_prefix(spec.helper, HELPER_PATH));
    argv.push(s(spec.program));
    argv.extend(spec.args.iter().cloned());
    argv
}

/// Refuses a working dir or profile home that would show what the sandbox
/// hides, or hide what the agent works on; each with the reason and the way
/// out:
///
/// - `/` (everything) and `/tmp` (shared by every program and user: the
///   sockets of the desktop, of agents, of other users' tools);
/// - Ringlet's config dir or a dir that holds it: the HTTP token, keys in
///   the file store and the profiles, which no mask should be trusted with
///   when the agent can write around it;
/// - the real home or a dir above it, and any other hidden dir itself (the
///   runtime dirs, an agent's socket dir). Inside, such a dir is an empty
///   tmpfs, so the session would run the agent in a throwaway directory
///   that merely has the right name: its edits would vanish at exit,
///   silently. A home of `/` (service users) hides nothing and is not
///   refused for that.
///
/// Symlinks are resolved on both sides. A dir that holds a hidden one (a
/// project holding the runtime dir) is accepted: the hidden one is masked.
pub fn check_dirs(spec: &Spec) -> Result<()> {
    let homes = home_paths(spec.home);
    let tmp = with_real_paths([PathBuf::from("/tmp")]);
    let configs = with_real_paths([spec.private.config_dir.clone()]);
    let configs: Vec<PathBuf> = configs
        .into_iter()
        .filter(|c| spec.private.config_dir.is_absolute() && c != Path::new("/"))
        .collect();
    let way_out = "start the session in a project directory (cd into it, or set working_dir)";
    for (what, dir) in [("working dir", spec.work_dir), ("profile home", spec.profile_home)] {
        let reals = with_real_paths([dir.to_path_buf()]);
        let shown = dir.display();
        if reals.iter().any(|d| d == Path::new("/")) {
            bail!(
                "the {what} {shown} is the whole file system, and the sandbox would show the \
                 agent everything it hides (your home, Ringlet's config and sockets); {way_out}"
            );
        }
        if reals.iter().any(|d| tmp.contains(d)) {
            bail!(
                "the {what} {shown} is shared by every program and user on this machine (the \
                 sockets of your desktop, of ssh and gpg agents and of Ringlet can live there), \
                 so the sandbox refuses it; {way_out}"
            );
        }
        if let Some(config) = configs.iter().find(|c| reals.iter().any(|d| c.starts_with(d))) {
            bail!(
                "the {what} {shown} is or contains Ringlet's config dir {}, which holds the HTTP \
                 token, keys and profiles, and no agent may write there; {way_out}",
                config.display()
            );
        }
        if reals.iter().any(|d| homes.iter().any(|h| h.starts_with(d))) {
            bail!(
                "the {what} {shown} is your home {} or contains it, and the sandbox hides your \
                 home: the agent would run in an empty throwaway directory and lose everything \
                 it writes there; {way_out}, or run it without the sandbox (--no-sandbox)",
                spec.home.display()
            );
        }
        // An agent's socket dir as a work dir: odd, but only its socket is
        // then masked (see mounts).
        for (hidden, why) in spec.private.dirs.iter().filter(|(_, w)| *w != AGENT_SOCKET_DIR) {
            if with_real_paths([hidden.clone()]).iter().any(|h| reals.contains(h)) {
                bail!(
                    "the {what} {shown} is {why}, which the sandbox hides: the agent would run \
                     in an empty throwaway directory; {way_out}"
                );
            }
        }
    }
    Ok(())
}

/// The real home as given and as its real path: both must stay hidden.
/// Empty for a relative home or `/`, which have nothing to hide (see
/// [`mounts`]).
fn home_paths(home: &Path) -> Vec<PathBuf> {
    if !home.is_absolute() {
        return Vec::new();
    }
    let mut homes = with_real_paths([home.to_path_buf()]);
    homes.retain(|h| h != Path::new("/"));
    homes
}

/// One bwrap mount option, with what orders it.
struct Op {
    dest: PathBuf,
    rank: Rank,
    args: Vec<String>,
}

/// Tie-break between mounts of the same depth: later ones land on top.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Rank {
    /// Fresh filesystems (`/dev`, `/proc`, `/tmp`) and the system dirs.
    System,
    ReadOnly,
    ReadWrite,
    /// The tmpfs over the real home.
    Hide,
}

/// Every mount of the sandbox, in the order bwrap must apply them. `root`
/// is where the system dirs are looked up (`/` but in tests).
fn mounts(root: &Path, spec: &Spec) -> Vec<Op> {
    let mut ops = Vec::new();
    let op = |rank, dest: &Path, args: &[&dyn AsRef<OsStr>]| Op {
        dest: clean(dest),
        rank,
        args: args.iter().map(|a| a.as_ref().to_string_lossy().into_owned()).collect(),
    };
    ops.push(op(Rank::System, Path::new("/dev"), &[&"--dev", &"/dev"]));
    ops.push(op(Rank::System, Path::new("/proc"), &[&"--proc", &"/proc"]));
    ops.push(op(Rank::System, Path::new("/tmp"), &[&"--tmpfs", &"/tmp"]));
    for name in system_dirs(root) {
        let source = root.join(&name);
        let dest = Path::new("/").join(&name);
        let Ok(meta) = fs::symlink_metadata(&source) else { continue };
        if meta.file_type().is_symlink() {
            // Merged /usr: /bin -> usr/bin. Binding would follow the link
            // and mount /usr/bin a second time at /bin; a symlink keeps the
            // layout (and readlink results) the same as outside.
            if let Ok(target) = fs::read_link(&source) {
                ops.push(op(Rank::System, &dest, &[&"--symlink", &target, &dest]));
            }
        } else {
            ops.push(op(Rank::System, &dest, &[&"--ro-bind", &source, &dest]));
        }
    }
    if let Some(dir) = resolver_dir(root, spec.home) {
        ops.push(op(Rank::System, &dir, &[&"--ro-bind-try", &dir, &dir]));
    }
    // A relative or root "home" (HOME=/ for service users) has nothing to
    // hide: the sandbox's root is a fresh tmpfs, and / is not bound.
    if spec.home.is_absolute() && clean(spec.home) != Path::new("/") {
        ops.push(op(Rank::Hide, spec.home, &[&"--tmpfs", &spec.home]));
    }
    let allowlist = spec.home_ro.iter().filter_map(|entry| home_entry(spec.home, entry));
    for path in allowlist.chain(spec.extra_ro.iter().cloned()) {
        if path.exists() {
            ops.push(op(Rank::ReadOnly, &path, &[&"--ro-bind-try", &path, &path]));
        }
    }
    for path in [spec.profile_home, spec.work_dir] {
        ops.push(op(Rank::ReadWrite, path, &[&"--bind", &path, &path]));
    }
    // What the profile opted in to: at its own path, above any mask.
    for path in spec.private.shown.iter().filter(|p| p.exists()) {
        ops.push(op(Rank::ReadOnly, path, &[&"--ro-bind-try", path, path]));
    }
    // bwrap binds what a source resolves to, so a bind whose source is, or
    // resolves to, the home or a dir above it shows the home at the bind's
    // destination, whatever that path says: hide it there as well. Only one
    // tmpfs per place (the plain home already has its own).
    let homes = home_paths(spec.home);
    let mut hides: Vec<PathBuf> = Vec::new();
    for o in ops.iter().filter(|o| is_bind(o)) {
        let sources = with_real_paths([PathBuf::from(&o.args[1])]);
        for (source, home) in sources.iter().flat_map(|s| homes.iter().map(move |h| (s, h))) {
            if let Ok(rest) = home.strip_prefix(source) {
                let dest = clean(&o.dest.join(rest));
                let taken = ops.iter().any(|o| o.rank == Rank::Hide && o.dest == dest);
                if !taken && !hides.contains(&dest) {
                    hides.push(dest);
                }
            }
        }
    }
    for dest in hides {
        ops.push(op(Rank::Hide, &dest, &[&"--tmpfs", &dest]));
    }
    // Ringlet's dirs and the desktop's sockets, likewise wherever a bind
    // shows them (by real path on both sides): an empty tmpfs over a dir,
    // /dev/null over a socket or file. Only what exists: a mount point that
    // does not exist would be created in the bound host dir.
    let shown = with_real_paths(spec.private.shown.iter().cloned());
    let binds: Vec<(&Op, Vec<PathBuf>)> = ops
        .iter()
        .filter(|o| is_bind(o))
        .map(|o| (o, with_real_paths([PathBuf::from(&o.args[1])])))
        .collect();
    let mut masks: Vec<(PathBuf, bool)> = Vec::new();
    for target in spec.private.hidden() {
        let Ok(meta) = fs::metadata(target) else { continue };
        let targets = with_real_paths([target.to_path_buf()]);
        for (o, sources) in &binds {
            for (source, t) in sources.iter().flat_map(|s| targets.iter().map(move |t| (s, t))) {
                let Ok(rest) = t.strip_prefix(source) else { continue };
                let dest = clean(&o.dest.join(rest));
                if !shown.contains(&dest) && !masks.iter().any(|(d, _)| *d == dest) {
                    masks.push((dest, meta.is_dir()));
                }
            }
        }
    }
    // Never a tmpfs over the work dir or profile home themselves: only an
    // agent's socket dir can be one (check_dirs refuses the others), and
    // its socket keeps its own mask below.
    masks.retain(|(d, is_dir)| {
        !(*is_dir && ops.iter().any(|o| o.rank == Rank::ReadWrite && o.dest == *d))
    });
    // A mask inside a masked dir is not needed (and would show up there as
    // an entry), unless a bind in between shows the dir's contents again.
    let covered = |dest: &Path| {
        masks.iter().any(|(m, is_dir)| {
            *is_dir
                && dest != m
                && dest.starts_with(m)
                && !ops.iter().any(|o| {
                    is_bind(o) && o.dest != *m && o.dest.starts_with(m) && dest.starts_with(&o.dest)
                })
        })
    };
    let masks: Vec<(PathBuf, bool)> = masks.iter().filter(|(d, _)| !covered(d)).cloned().collect();
    for (dest, is_dir) in masks {
        let taken = ops.iter().any(|o| o.rank == Rank::Hide && o.dest == dest);
        if is_dir && !taken {
            ops.push(op(Rank::Hide, &dest, &[&"--tmpfs", &dest]));
        } else if !is_dir {
            ops.push(op(Rank::Hide, &dest, &[&"--ro-bind", &"/dev/null", &dest]));
        }
    }
    // Both sort keys are needed: a stable sort keeps the given order within
    // one depth and rank, but bwrap applies options in order, so a parent
    // mounted after its child would hide it.
    ops.sort_by_key(|o| (o.dest.components().count(), o.rank));
    // Without this, a program outside every bind fails as "No such file or
    // directory" from inside, which reads like a wrong path. Its file alone
    // is bound (not its dir), so nothing else of a hidden dir leaks.
    let canonical = fs::canonicalize(spec.program).ok();
    for program in [Some(spec.program.to_path_buf()), canonical].into_iter().flatten() {
        if program.exists() && !visible(&ops, &program) {
            let o = op(Rank::ReadOnly, &program, &[&"--ro-bind-try", &program, &program]);
            let at = ops.partition_point(|p| {
                (p.dest.components().count(), p.rank) <= (o.dest.components().count(), o.rank)
            });
            ops.insert(at, o);
        }
    }
    ops
}

/// A bind of a host path (whose source may show something hidden).
fn is_bind(o: &Op) -> bool {
    matches!(o.args[0].as_str(), "--ro-bind" | "--ro-bind-try" | "--bind")
        && o.args[1] != "/dev/null"
}

/// `/usr`, `/bin`, `/sbin`, `/etc` and every `/lib*` (lib, lib32, lib64,
/// libx32, ...), those that exist.
fn system_dirs(root: &Path) -> Vec<String> {
    let mut names: Vec<String> = ["usr", "bin", "sbin", "etc"].map(String::from).into();
    let mut libs: Vec<String> = fs::read_dir(root)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.starts_with("lib"))
        .collect();
    libs.sort();
    names.extend(libs);
    names.retain(|n| fs::symlink_metadata(root.join(n)).is_ok());
    names
}

/// The directory holding the real `resolv.conf` when `/etc/resolv.conf` is
/// a symlink out of the bound system dirs (systemd-resolved points it into
/// `/run/systemd/resolve`): without it the shared network has no DNS. The
/// whole directory, because resolved replaces the file by renaming.
fn resolver_dir(root: &Path, home: &Path) -> Option<PathBuf> {
    let target = fs::canonicalize(root.join("etc/resolv.conf")).ok()?;
    let dir = target.parent()?.to_path_buf();
    let inside_system = system_dirs(root).iter().any(|n| target.starts_with(root.join(n)));
    let too_wide = dir.components().count() < 3 || home.starts_with(&dir) || dir.starts_with(home);
    (!inside_system && !too_wide).then_some(dir)
}

/// An allowlist entry as a path under `home`; `~/` is accepted, and entries
/// that would name the home itself or leave it are ignored.
fn home_entry(home: &Path, entry: &str) -> Option<PathBuf> {
    let rel = Path::new(entry.strip_prefix("~/").unwrap_or(entry));
    let normal = rel.components().all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
    let path = clean(&home.join(rel));
    (normal && path != clean(home)).then_some(path)
}

/// Whether `path` is reachable inside: the last mount at or above it (in
/// bwrap's order) is a bind or a system symlink, not a tmpfs.
fn visible(ops: &[Op], path: &Path) -> bool {
    let path = clean(path);
    ops.iter().rev().find(|o| path.starts_with(&o.dest)).is_some_and(|o| {
        matches!(
            o.args.first().map(String::as_str),
            Some("--ro-bind" | "--ro-bind-try" | "--bind" | "--symlink")
        )
    })
}

/// `path` without `.` and with `..` applied to the text: bwrap takes the
/// destination as written, and the ordering compares components.
fn clean(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    out
}

fn s(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

/// Splits `--bwrap-flags` as a POSIX shell splits words: blanks separate,
/// single quotes keep everything, double quotes keep everything but `\$`,
/// `` \` ``, `\"`, `\\` and backslash-newline, a backslash outside quotes
/// keeps the next character. No expansion of any kind (`$HOME`, `~`, `*`
/// and `#` stay as written). Unbalanced quotes and a trailing backslash are
/// errors, never a guess.
pub fn split_words(text: &str) -> Result<Vec<String>> {
    let mut words = Vec::new();
    // `Some` once a word has started, even if empty (`''` is a word).
    let mut word: Option<String> = None;
    let mut chars = text.chars().enumerate();
    while let Some((at, c)) = chars.next() {
        match c {
            ' ' | '\t' | '\n' => words.extend(word.take()),
            '\'' => {
                let w = word.get_or_insert_default();
                loop {
                    match chars.next() {
                        Some((_, '\'')) => break,
                        Some((_, c)) => w.push(c),
                        None => bail!("unbalanced single quote (opened at character {})", at + 1),
                    }
                }
            }
            '"' => {
                let w = word.get_or_insert_default();
                loop {
                    match chars.next() {
                        Some((_, '"')) => break,
                        Some((_, '\\')) => match chars.next() {
                            Some((_, c @ ('$' | '`' | '"' | '\\'))) => w.push(c),
                            Some((_, '\n')) => {}
                            Some((_, c)) => {
                                w.push('\\');
                                w.push(c);
                            }
                            None => {
                                bail!("unbalanced double quote (opened at character {})", at + 1)
                            }
                        },
                        Some((_, c)) => w.push(c),
                        None => bail!("unbalanced double quote (opened at character {})", at + 1),
                    }
                }
            }
            '\\' => match chars.next() {
                // A line continuation: joins, starts no word.
                Some((_, '\n')) => {}
                Some((_, c)) => word.get_or_insert_default().push(c),
                None => bail!("a backslash ends the text; it must escape a character"),
            },
            c => word.get_or_insert_default().push(c),
        }
    }
    words.extend(word);
    Ok(words)
}

/// How long the trial run of bwrap may take (it takes milliseconds).
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// The trial run: the same namespaces and fresh filesystems as a session.
const PROBE_ARGS: &[&str] = &[
    "--ro-bind",
    "/",
    "/",
    "--unshare-pid",
    "--unshare-ipc",
    "--unshare-uts",
    "--dev",
    "/dev",
    "--proc",
    "/proc",
    "true",
];

/// Used when the caller has no `PATH` at all.
const FALLBACK_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// Finds bwrap in `path_var` (a `PATH` value) and proves it works with a
/// trial sandbox. The error names the cause and the fix: not installed,
/// unprivileged user namespaces disabled, AppArmor restricting them, or
/// else bwrap's own message.
pub fn check_bwrap(path_var: Option<&OsStr>) -> Result<PathBuf, SandboxError> {
    check_bwrap_within(path_var, PROBE_TIMEOUT)
}

fn check_bwrap_within(
    path_var: Option<&OsStr>,
    timeout: Duration,
) -> Result<PathBuf, SandboxError> {
    let bwrap = find_program("bwrap", path_var).ok_or(SandboxError::NotInstalled)?;
    match probe(&bwrap, timeout)? {
        None => Ok(bwrap),
        Some(stderr) => {
            let setuid = fs::metadata(&bwrap).is_ok_and(|m| m.permissions().mode() & 0o4000 != 0);
            // Root and a setuid bwrap create namespaces without a user
            // namespace, so the userns settings cannot be the cause.
            let needs_userns = !setuid && !rustix::process::geteuid().is_root();
            Err(diagnose(bwrap, stderr, needs_userns, |name| {
                fs::read_to_string(Path::new("/proc/sys").join(name))
                    .ok()
                    .map(|v| v.trim().to_owned())
            }))
        }
    }
}

/// Why bwrap does not work. Display gives the cause and the fix.
#[derive(Debug)]
pub enum SandboxError {
    /// No executable `bwrap` in `PATH`.
    NotInstalled,
    /// The kernel refuses unprivileged user namespaces: `setting` is the
    /// sysctl that is 0.
    UsernsDisabled { bwrap: PathBuf, setting: &'static str, stderr: String },
    /// AppArmor denies unprivileged user namespaces to unconfined programs
    /// (`kernel.apparmor_restrict_unprivileged_userns = 1`).
    AppArmor { bwrap: PathBuf, stderr: String },
    /// The trial run did not end in time.
    TimedOut { bwrap: PathBuf },
    /// bwrap could not be started at all.
    Spawn { bwrap: PathBuf, error: io::Error },
    /// Anything else, in bwrap's own words.
    Failed { bwrap: PathBuf, stderr: String },
}

impl SandboxError {
    fn cause(&self) -> String {
        let said = |stderr: &str| {
            if stderr.is_empty() { String::new() } else { format!(" (it said: {stderr})") }
        };
        match self {
            SandboxError::NotInstalled => {
                "the sandbox needs bubblewrap, and there is no `bwrap` in PATH".into()
            }
            SandboxError::UsernsDisabled { bwrap, setting, stderr } => format!(
                "{} cannot create a sandbox: unprivileged user namespaces are disabled \
                 ({setting} = 0){}",
                bwrap.display(),
                said(stderr)
            ),
            SandboxError::AppArmor { bwrap, stderr } => format!(
                "{} cannot create a sandbox: AppArmor restricts unprivileged user namespaces \
                 (kernel.apparmor_restrict_unprivileged_userns = 1, the default since \
                 Ubuntu 24.04){}",
                bwrap.display(),
                said(stderr)
            ),
            SandboxError::TimedOut { bwrap } => format!(
                "{} did not finish a trial sandbox within {} s",
                bwrap.display(),
                PROBE_TIMEOUT.as_secs()
            ),
            SandboxError::Spawn { bwrap, error } => {
                format!("cannot run {}: {error}", bwrap.display())
            }
            SandboxError::Failed { bwrap, stderr } => {
                format!("{} cannot create a sandbox: {stderr}", bwrap.display())
            }
        }
    }

    fn fix(&self) -> String {
        match self {
            SandboxError::NotInstalled => "install it: `sudo apt install bubblewrap` (Debian, \
                Ubuntu), `sudo dnf install bubblewrap` (Fedora), `sudo pacman -S bubblewrap` \
                (Arch), `sudo zypper install bubblewrap` (openSUSE)"
                .into(),
            SandboxError::UsernsDisabled { setting, .. } => {
                let value = if *setting == "user.max_user_namespaces" { "10000" } else { "1" };
                format!(
                    "enable them: `sudo sysctl -w {setting}={value}`, and for every boot \
                     `echo {setting}={value} | sudo tee /etc/sysctl.d/60-bwrap-userns.conf`"
                )
            }
            SandboxError::AppArmor { bwrap, .. } => {
                // AppArmor attaches profiles by the executable's real path.
                let real = fs::canonicalize(bwrap).unwrap_or_else(|_| bwrap.clone());
                format!(
                    "allow bwrap alone with an AppArmor profile: `printf 'abi <abi/4.0>,\\n\
                     include <tunables/global>\\nprofile bwrap {} flags=(unconfined) {{\\n  \
                     userns,\\n}}\\n' | sudo tee /etc/apparmor.d/bwrap && sudo apparmor_parser \
                     -r /etc/apparmor.d/bwrap`; or lift the restriction for every program \
                     (less safe): `sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0`",
                    real.display()
                )
            }
            SandboxError::TimedOut { bwrap } => format!(
                "check what blocks `{} --ro-bind / / --unshare-pid --dev /dev --proc /proc true` \
                 (a hung network or FUSE mount under /, an overloaded machine)",
                bwrap.display()
            ),
            SandboxError::Spawn { bwrap, .. } => format!(
                "check that {} is an executable you may run, or reinstall bubblewrap",
                bwrap.display()
            ),
            SandboxError::Failed { .. } => "in a container, the runtime usually forbids new \
                namespaces: run the daemon on the host or allow them (for example Docker's \
                `--security-opt seccomp=unconfined --security-opt apparmor=unconfined`); \
                a kernel without user namespaces needs a setuid bwrap"
                .into(),
        }
    }
}

impl fmt::Display for SandboxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}; fix: {}", self.cause(), self.fix())
    }
}

impl std::error::Error for SandboxError {}

/// Tells why the trial run failed from the kernel settings (read through
/// `sysctl`, named as under `/proc/sys`), which say more than bwrap's
/// messages: "setting up uid map: Permission denied" is AppArmor on Ubuntu.
fn diagnose(
    bwrap: PathBuf,
    stderr: String,
    needs_userns: bool,
    sysctl: impl Fn(&str) -> Option<String>,
) -> SandboxError {
    let is = |name: &str, value: &str| sysctl(name).as_deref() == Some(value);
    if needs_userns {
        // Debian and older Ubuntu kernels carry this switch.
        if is("kernel/unprivileged_userns_clone", "0") {
            let setting = "kernel.unprivileged_userns_clone";
            return SandboxError::UsernsDisabled { bwrap, setting, stderr };
        }
        // RHEL 7 and hardened setups limit user namespaces to none.
        if is("user/max_user_namespaces", "0") {
            let setting = "user.max_user_namespaces";
            return SandboxError::UsernsDisabled { bwrap, setting, stderr };
        }
        if is("kernel/apparmor_restrict_unprivileged_userns", "1") {
            return SandboxError::AppArmor { bwrap, stderr };
        }
    }
    SandboxError::Failed { bwrap, stderr }
}

/// Runs the trial sandbox; `None` when it worked, else bwrap's stderr.
fn probe(bwrap: &Path, timeout: Duration) -> Result<Option<String>, SandboxError> {
    let spawn_error = |error| SandboxError::Spawn { bwrap: bwrap.to_path_buf(), error };
    let mut child = Command::new(bwrap)
        .args(PROBE_ARGS)
        // `true` is looked up inside with this PATH, whatever ours is.
        .env("PATH", "/usr/bin:/bin")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(spawn_error)?;
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().map_err(spawn_error)? {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(SandboxError::TimedOut { bwrap: bwrap.to_path_buf() });
        }
        thread::sleep(Duration::from_millis(5));
    };
    if status.success() {
        return Ok(None);
    }
    // Non-blocking: a leftover process holding the pipe open must not hang
    // the daemon; bwrap's message is already in the pipe once it exited.
    let mut stderr = Vec::new();
    if let Some(mut pipe) = child.stderr.take() {
        let _ = rustix::io::ioctl_fionbio(&pipe, true);
        let mut buf = [0; 4096];
        while stderr.len() < 16 * 1024 {
            match pipe.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => stderr.extend_from_slice(&buf[..n]),
            }
        }
    }
    let stderr = String::from_utf8_lossy(&stderr).trim().replace('\n', "; ");
    Ok(Some(if stderr.is_empty() { format!("it exited with {status}") } else { stderr }))
}

/// The first executable `name` in the absolute entries of `path_var`
/// (relative entries would depend on the daemon's current directory).
fn find_program(name: &str, path_var: Option<&OsStr>) -> Option<PathBuf> {
    let path_var = path_var.unwrap_or(OsStr::new(FALLBACK_PATH));
    std::env::split_paths(path_var).filter(|dir| dir.is_absolute()).map(|dir| dir.join(name)).find(
        |candidate| {
            fs::metadata(candidate)
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        },
    )
}

/// The macOS sandbox-exec profile (SBPL) for `spec`.
///
/// SBPL applies the last matching rule, so the profile allows everything,
/// then denies every write and allows it back under the profile home, the
/// work dir, the temp dirs and the terminal devices; then denies reading the
/// real home and allows it back for the allowlist, the profile home, the
/// work dir and the install dirs. As on Linux, a work dir or install dir that
/// is the home (or above it) opens nothing of it. Every path is written as
/// an escaped SBPL string, also its real path when it goes through a symlink
/// (the kernel checks real paths: `/tmp` is `/private/tmp`).
pub fn sandbox_exec_profile(spec: &Spec) -> Result<String> {
    let tmpdir = std::env::var_os("TMPDIR").map(PathBuf::from);
    profile_text(spec, tmpdir.as_deref())
}

fn profile_text(spec: &Spec, tmpdir: Option<&Path>) -> Result<String> {
    let homes = with_real_paths([spec.home.to_path_buf()]);
    // Never the home itself or a dir above it: see the doc comment.
    let opens_home = |p: &Path| homes.iter().any(|h| h.starts_with(p));
    let mut writable = with_real_paths([spec.profile_home, spec.work_dir].map(Path::to_path_buf));
    writable.retain(|p| !opens_home(p));
    let mut temps = vec![PathBuf::from("/private/tmp"), PathBuf::from("/private/var/folders")];
    temps.extend(tmpdir.map(Path::to_path_buf));
    let temps = with_real_paths(temps);

    let mut readable: Vec<PathBuf> =
        spec.home_ro.iter().filter_map(|e| home_entry(spec.home, e)).collect();
    readable.extend(spec.extra_ro.iter().cloned());
    readable.push(spec.program.to_path_buf());
    readable.extend(spec.helper.map(Path::to_path_buf));
    let mut readable = with_real_paths(readable);
    readable.retain(|p| !opens_home(p));
    readable.extend(writable.iter().cloned());
    // Only what the home's deny closed needs opening again.
    readable.retain(|p| homes.iter().any(|h| p.starts_with(h)));
    // Reaching an allowed path means stat(2)ing each dir on the way down
    // from the home (getcwd, realpath); their names and sizes, no contents.
    let mut ancestors = BTreeSet::new();
    for path in &readable {
        for home in homes.iter().filter(|h| path.starts_with(h)) {
            ancestors.extend(path.ancestors().skip(1).take_while(|a| a.starts_with(home)));
        }
    }

    let mut out = String::from("(version 1)\n(allow default)\n\n");
    out.push_str(";; Writes: only the profile home, the work dir, temp dirs and terminals.\n");
    out.push_str("(deny file-write*)\n(allow file-write*\n");
    for path in writable.iter().chain(&temps) {
        out.push_str(&format!("  (subpath {})\n", sbpl_string(path)?));
    }
    for device in ["/dev/null", "/dev/zero", "/dev/tty", "/dev/ptmx", "/dev/dtracehelper"] {
        out.push_str(&format!("  (literal \"{device}\")\n"));
    }
    out.push_str("  (regex #\"^/dev/ttys[0-9]+$\")\n  (subpath \"/dev/fd\"))\n\n");
    out.push_str(
        ";; Reads of the real home: only the allowlist, the session's dirs and the install.\n",
    );
    out.push_str("(deny file-read*");
    for home in &homes {
        out.push_str(&format!(" (subpath {})", sbpl_string(home)?));
    }
    out.push_str(")\n");
    push_rule(&mut out, "allow file-read*", readable.iter().map(|p| (SUBPATH, p.as_path())))?;
    if !ancestors.is_empty() {
        push_rule(&mut out, "allow file-read-metadata", ancestors.iter().map(|p| (LITERAL, *p)))?;
    }
    // Ringlet's dirs and the desktop's sockets, last so that they win over
    // the allows above (SBPL takes the last matching rule, not the deepest):
    // all but one holding a writable dir, which would close it (no such
    // layout is sensible, and check_dirs refuses the config dir's).
    let private = &spec.private;
    let dirs = with_real_paths(private.dirs.iter().map(|(d, _)| d.clone()));
    let dirs: Vec<PathBuf> =
        dirs.into_iter().filter(|d| !writable.iter().any(|w| w.starts_with(d))).collect();
    let files = with_real_paths(private.files.iter().cloned());
    if !dirs.is_empty() || !files.is_empty() {
        out.push_str(";; Ringlet's config and runtime dirs, the desktop's sockets.\n");
        let dirs = dirs.iter().map(|d| (SUBPATH, d.as_path()));
        let literals = files.iter().map(|f| (LITERAL, f.as_path()));
        push_rule(&mut out, "deny file-read* file-write*", dirs.chain(literals))?;
    }
    if !files.is_empty() {
        push_rule(&mut out, "deny network-outbound", files.iter().map(|f| (SOCKET, f.as_path())))?;
    }
    let shown = with_real_paths(private.shown.iter().cloned());
    if !shown.is_empty() {
        out.push_str(";; What the profile opted in to.\n");
        push_rule(&mut out, "allow file-read*", shown.iter().map(|p| (SUBPATH, p.as_path())))?;
        push_rule(&mut out, "allow network-outbound", shown.iter().map(|p| (SOCKET, p.as_path())))?;
    }
    Ok(out)
}

/// Filters of an SBPL rule, `{}` standing for the quoted path.
const SUBPATH: &str = "(subpath {})";
const LITERAL: &str = "(literal {})";
const SOCKET: &str = "(remote unix-socket (path-literal {}))";

/// Appends `(<op>` and one filter a line (`filter` with the path quoted by
/// [`sbpl_string`]), then `)`.
fn push_rule<'p>(
    out: &mut String,
    op: &str,
    filters: impl IntoIterator<Item = (&'static str, &'p Path)>,
) -> Result<()> {
    out.push('(');
    out.push_str(op);
    for (filter, path) in filters {
        out.push_str("\n  ");
        out.push_str(&filter.replace("{}", &sbpl_string(path)?));
    }
    out.push_str(")\n");
    Ok(())
}

/// The paths, each followed by its real path when that differs and exists;
/// cleaned and without repeats, in the given order.
fn with_real_paths(paths: impl IntoIterator<Item = PathBuf>) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = Vec::new();
    for path in paths {
        let real = fs::canonicalize(&path).ok();
        for p in [Some(clean(&path)), real].into_iter().flatten() {
            if !out.contains(&p) {
                out.push(p);
            }
        }
    }
    out
}

/// `path` as an SBPL string literal: backslash and double quote escaped;
/// every control character (NUL, line breaks, tab, escape, DEL, C1) refused.
/// SBPL's reader is a Scheme whose other string escapes (`\n`, `\x..;`) are
/// not documented, so nothing is left to its interpretation: a path with
/// control characters is no path a user meant here, and a NUL or line break
/// could end a string or rule early in some readers.
fn sbpl_string(path: &Path) -> Result<String> {
    let Some(text) = path.to_str() else {
        bail!("{} is not valid UTF-8, which a sandbox-exec profile needs", path.display());
    };
    if text.chars().any(char::is_control) {
        bail!("{text:?} contains a control character; refusing to put it in a sandbox profile");
    }
    Ok(format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\"")))
}

/// macOS's sandbox runner, always by its absolute path.
pub const SANDBOX_EXEC: &str = "/usr/bin/sandbox-exec";

/// The argv to exec on macOS: `[/usr/bin/sandbox-exec, -p, profile, --,
/// program, args...]`. The absolute path, so that a `sandbox-exec` earlier
/// in the session's PATH (a project's `node_modules/.bin`) cannot stand in.
pub fn sandbox_exec_argv(profile: &str, spec: &Spec) -> Vec<String> {
    let mut argv: Vec<String> = [SANDBOX_EXEC, "-p", profile, "--"].map(String::from).into();
    if let Some(helper) = spec.helper {
        argv.extend(helper_prefix(Some(helper), &s(helper)));
    }
    argv.push(s(spec.program));
    argv.extend(spec.args.iter().cloned());
    argv
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::symlink;
    use std::os::unix::process::ExitStatusExt;
    use std::sync::atomic::{AtomicU64, Ordering};

    /// A fresh directory per test (tests run in parallel).
    fn temp_dir(name: &str) -> PathBuf {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("ringlet-sandbox-{}-{n}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn write(path: &Path, text: &str) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }

    fn write_script(path: &Path, text: &str) {
        write(path, text);
        fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
    }

    /// A fake real home laid out as in real life: the profile home, the
    /// work dir and the agent's install inside it, next to secrets.
    struct Fixture {
        root: PathBuf,
        home: PathBuf,
        profile_home: PathBuf,
        work_dir: PathBuf,
        install: PathBuf,
        program: PathBuf,
        args: Vec<String>,
        home_ro: Vec<String>,
        extra_ro: Vec<PathBuf>,
        flags: Vec<String>,
        private: Private,
    }

    impl Fixture {
        fn new(name: &str) -> Fixture {
            let root = temp_dir(name);
            let home = root.join("home/alice");
            let profile_home = home.join(".config/ringlet/profiles/work/home");
            let work_dir = home.join("src/project");
            let install = home.join(".local/share/agent");
            fs::create_dir_all(&profile_home).unwrap();
            fs::create_dir_all(&work_dir).unwrap();
            write(&home.join(".gitconfig"), "[user]\n\tname = Alice\n");
            write(&home.join(".config/git/ignore"), "*.swp\n");
            write(&home.join("secret.txt"), "secret\n");
            write(&home.join(".ssh/id_ed25519"), "private key\n");
            write(&install.join("agent.js"), "console.log(1)\n");
            Fixture {
                root,
                home,
                profile_home,
                work_dir,
                extra_ro: vec![install.clone()],
                install,
                program: fs::canonicalize("/bin/sh").unwrap(),
                args: vec!["-c".into(), "true".into()],
                home_ro: vec![".gitconfig".into(), ".config/git".into()],
                flags: vec![],
                private: Private::default(),
            }
        }

        fn spec(&self) -> Spec<'_> {
            Spec {
                program: &self.program,
                args: &self.args,
                home: &self.home,
                profile_home: &self.profile_home,
                work_dir: &self.work_dir,
                home_ro: &self.home_ro,
                extra_ro: &self.extra_ro,
                extra_flags: &self.flags,
                private: &self.private,
                helper: None,
            }
        }

        fn argv(&self) -> Vec<String> {
            bwrap_argv(Path::new("/usr/bin/bwrap"), &self.spec())
        }
    }

    impl Drop for Fixture {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.root);
        }
    }

    /// Where `seq` starts in `argv`; panics with the argv if absent.
    fn pos(argv: &[String], seq: &[&str]) -> usize {
        find(argv, seq).unwrap_or_else(|| panic!("{seq:?} not in {argv:#?}"))
    }

    fn find(argv: &[String], seq: &[&str]) -> Option<usize> {
        argv.windows(seq.len()).position(|w| w.iter().zip(seq).all(|(a, b)| a == b))
    }

    fn p(path: &Path) -> &str {
        path.to_str().unwrap()
    }

    #[test]
    fn bwrap_argv_has_namespaces_and_ends_with_the_program() {
        let fx = Fixture::new("shape");
        let argv = fx.argv();
        assert_eq!(argv[0], "/usr/bin/bwrap");
        for flag in ["--die-with-parent", "--unshare-pid", "--unshare-ipc", "--unshare-uts"] {
            pos(&argv, &[flag]);
        }
        for absent in ["--new-session", "--unshare-net", "--unshare-all", "--unshare-user"] {
            assert!(!argv.iter().any(|a| a == absent), "{absent} in {argv:#?}");
        }
        pos(&argv, &["--dev", "/dev"]);
        pos(&argv, &["--proc", "/proc"]);
        pos(&argv, &["--tmpfs", "/tmp"]);
        pos(&argv, &["--ro-bind", "/usr", "/usr"]);
        pos(&argv, &["--chdir", p(&fx.work_dir)]);
        let tail = &argv[argv.len() - 4..];
        assert_eq!(tail, ["--", p(&fx.program), "-c", "true"]);
        // Every --ro-bind source exists (bwrap would refuse a missing one).
        for w in argv.windows(2).filter(|w| w[0] == "--ro-bind") {
            assert!(Path::new(&w[1]).exists(), "{} does not exist", w[1]);
        }
    }

    #[test]
    fn bwrap_argv_hides_the_home_before_binding_inside_it() {
        let fx = Fixture::new("order");
        let argv = fx.argv();
        let tmp = pos(&argv, &["--tmpfs", "/tmp"]);
        let home = pos(&argv, &["--tmpfs", p(&fx.home)]);
        let gitconfig = fx.home.join(".gitconfig");
        let git_dir = fx.home.join(".config/git");
        let ro = [
            pos(&argv, &["--ro-bind-try", p(&gitconfig), p(&gitconfig)]),
            pos(&argv, &["--ro-bind-try", p(&git_dir), p(&git_dir)]),
            pos(&argv, &["--ro-bind-try", p(&fx.install), p(&fx.install)]),
        ];
        let rw = [
            pos(&argv, &["--bind", p(&fx.profile_home), p(&fx.profile_home)]),
            pos(&argv, &["--bind", p(&fx.work_dir), p(&fx.work_dir)]),
        ];
        // The fixture lives under /tmp, as a home may: the private /tmp
        // first, then the hidden home, then what shows through it.
        assert!(tmp < home, "{argv:#?}");
        for r in ro {
            assert!(home < r, "{argv:#?}");
        }
        for w in rw {
            assert!(home < w, "{argv:#?}");
        }
    }

    #[test]
    fn bwrap_argv_skips_missing_paths() {
        let mut fx = Fixture::new("missing");
        fx.home_ro = vec![".gitconfig".into(), ".missing".into(), "../escape".into(), "".into()];
        fx.extra_ro = vec![fx.install.clone(), fx.root.join("nope")];
        fs::create_dir_all(fx.root.join("home/escape")).unwrap();
        let argv = fx.argv();
        let under_root: Vec<&String> = argv
            .windows(2)
            .filter(|w| w[0] == "--ro-bind-try" && w[1].starts_with(p(&fx.root)))
            .map(|w| &w[1])
            .collect();
        let gitconfig = fx.home.join(".gitconfig");
        assert_eq!(under_root, [p(&gitconfig), p(&fx.install)], "{argv:#?}");
    }

    #[test]
    fn system_dirs_become_binds_or_symlinks() {
        let fx = Fixture::new("system");
        let root = fx.root.join("fake-root");
        for dir in ["usr/bin", "usr/lib", "lib64", "etc", "run/systemd/resolve"] {
            fs::create_dir_all(root.join(dir)).unwrap();
        }
        symlink("usr/bin", root.join("bin")).unwrap();
        symlink("usr/lib", root.join("lib")).unwrap();
        write(&root.join("run/systemd/resolve/stub-resolv.conf"), "nameserver 127.0.0.53\n");
        symlink(root.join("run/systemd/resolve/stub-resolv.conf"), root.join("etc/resolv.conf"))
            .unwrap();
        let argv: Vec<String> =
            mounts(&root, &fx.spec()).into_iter().flat_map(|o| o.args).collect();
        pos(&argv, &["--symlink", "usr/bin", "/bin"]);
        pos(&argv, &["--symlink", "usr/lib", "/lib"]);
        pos(&argv, &["--ro-bind", p(&root.join("usr")), "/usr"]);
        pos(&argv, &["--ro-bind", p(&root.join("lib64")), "/lib64"]);
        pos(&argv, &["--ro-bind", p(&root.join("etc")), "/etc"]);
        for absent in ["/sbin", "/lib32", "/libx32"] {
            assert!(!argv.iter().any(|a| a == absent), "{absent} in {argv:#?}");
        }
        // DNS keeps working when resolv.conf points out of /etc.
        let resolve = fs::canonicalize(root.join("run/systemd/resolve")).unwrap();
        pos(&argv, &["--ro-bind-try", p(&resolve), p(&resolve)]);
    }

    #[test]
    fn bwrap_argv_appends_extra_flags_last() {
        let mut fx = Fixture::new("flags");
        fx.flags = split_words("--setenv A 'b c' --ro-bind /opt /opt").unwrap();
        let argv = fx.argv();
        let dashdash = argv.iter().position(|a| a == "--").unwrap();
        assert_eq!(argv[dashdash - 6..dashdash], fx.flags[..], "{argv:#?}");
        assert!(pos(&argv, &["--chdir"]) < dashdash - 6);
        // After every mount of ours, so a user's bind can land on top.
        let last_mount = argv.iter().rposition(|a| a == "--bind").unwrap();
        assert!(last_mount < dashdash - 6);
    }

    #[test]
    fn bwrap_argv_runs_the_program_through_the_session_helper() {
        let fx = Fixture::new("helper");
        let exe = fx.root.join("bin/ringlet");
        let mut spec = fx.spec();
        spec.helper = Some(&exe);
        let argv = bwrap_argv(Path::new("/usr/bin/bwrap"), &spec);
        let mut tail = vec!["--", HELPER_PATH, crate::terminal::helper::SUBCOMMAND, "--"];
        tail.push(p(&fx.program));
        tail.extend(fx.args.iter().map(String::as_str));
        assert_eq!(argv[argv.len() - tail.len()..], tail[..], "{argv:#?}");
        // Bound read-only, after every mount of ours (nothing lands on it).
        let bind = pos(&argv, &["--ro-bind", p(&exe), HELPER_PATH]);
        let last_mount = argv.iter().rposition(|a| a == "--bind").unwrap();
        assert!(last_mount < bind && bind < argv.len() - tail.len(), "{argv:#?}");
        let mac = sandbox_exec_argv("(version 1)", &spec);
        assert_eq!(mac[4..7], [p(&exe), crate::terminal::helper::SUBCOMMAND, "--"]);
        assert_eq!(mac[7], p(&fx.program));
    }

    #[test]
    fn a_work_dir_at_or_above_the_home_keeps_the_home_hidden() {
        let mut fx = Fixture::new("home-work");
        fx.work_dir = fx.home.clone();
        let argv = fx.argv();
        let bind = pos(&argv, &["--bind", p(&fx.home), p(&fx.home)]);
        assert!(bind < pos(&argv, &["--tmpfs", p(&fx.home)]), "{argv:#?}");

        let parent = fx.home.parent().unwrap().to_path_buf();
        fx.work_dir = parent.clone();
        fx.extra_ro = vec![fx.home.clone()];
        let argv = fx.argv();
        let hide = pos(&argv, &["--tmpfs", p(&fx.home)]);
        assert!(pos(&argv, &["--bind", p(&parent), p(&parent)]) < hide, "{argv:#?}");
        assert!(pos(&argv, &["--ro-bind-try", p(&fx.home), p(&fx.home)]) < hide, "{argv:#?}");
    }

    #[test]
    fn a_bind_whose_source_resolves_to_the_home_is_hidden_where_it_lands() {
        // A work dir that is a symlink to the home, an install dir that is
        // a symlink to the dir above it: bwrap follows the source, so each
        // would show the whole home at its own destination.
        let mut fx = Fixture::new("symlinked-home");
        let work_link = fx.root.join("work-link");
        symlink(&fx.home, &work_link).unwrap();
        let up_link = fx.root.join("up-link");
        symlink(fx.home.parent().unwrap(), &up_link).unwrap();
        fx.work_dir = work_link.clone();
        fx.extra_ro = vec![up_link.clone()];
        let argv = fx.argv();
        let bind = pos(&argv, &["--bind", p(&work_link), p(&work_link)]);
        assert!(bind < pos(&argv, &["--tmpfs", p(&work_link)]), "{argv:#?}");
        let up_home = up_link.join("alice");
        let ro = pos(&argv, &["--ro-bind-try", p(&up_link), p(&up_link)]);
        assert!(ro < pos(&argv, &["--tmpfs", p(&up_home)]), "{argv:#?}");
    }

    #[test]
    fn a_home_reached_through_a_symlink_is_hidden_at_its_real_path_too() {
        // HOME=/home/alice -> /data/alice, and the CLI sends getcwd(3)'s
        // answer, the real path: a work dir at the real home must not
        // expose it.
        let mut fx = Fixture::new("home-link");
        let real_home = fx.home.clone();
        let home_link = fx.root.join("home-link");
        symlink(&real_home, &home_link).unwrap();
        fx.home = home_link.clone();
        fx.work_dir = real_home.clone();
        let argv = fx.argv();
        pos(&argv, &["--tmpfs", p(&home_link)]);
        let bind = pos(&argv, &["--bind", p(&real_home), p(&real_home)]);
        assert!(bind < pos(&argv, &["--tmpfs", p(&real_home)]), "{argv:#?}");
        // One hide per place: the plain case gets no duplicate.
        let fx = Fixture::new("one-hide");
        let hides =
            fx.argv().windows(2).filter(|w| w[0] == "--tmpfs" && w[1] == p(&fx.home)).count();
        assert_eq!(hides, 1);
    }

    #[test]
    fn check_dirs_refuses_a_work_dir_or_profile_home_that_holds_the_home() {
        let mut fx = Fixture::new("check-dirs");
        check_dirs(&fx.spec()).unwrap();
        let work_link = fx.root.join("work-link");
        symlink(&fx.home, &work_link).unwrap();
        let home_link = fx.root.join("home-link");
        symlink(&fx.home, &home_link).unwrap();
        let parent = fx.home.parent().unwrap().to_path_buf();
        for work_dir in [fx.home.clone(), fx.home.join("."), parent, work_link] {
            fx.work_dir = work_dir.clone();
            let err = check_dirs(&fx.spec()).unwrap_err().to_string();
            assert!(err.contains(&format!("working dir {}", work_dir.display())), "{err}");
            assert!(err.contains("--no-sandbox"), "{err}");
        }
        // The home given through a symlink, the work dir as its real path.
        let real_home = fx.home.clone();
        fx.home = home_link;
        fx.work_dir = real_home.clone();
        assert!(check_dirs(&fx.spec()).is_err());
        fx.work_dir = real_home.join("src/project");
        check_dirs(&fx.spec()).unwrap();
        fx.profile_home = real_home.clone();
        let err = check_dirs(&fx.spec()).unwrap_err().to_string();
        assert!(err.contains("profile home"), "{err}");
        // A service user's HOME=/ hides nothing, so nothing is refused.
        fx.home = PathBuf::from("/");
        check_dirs(&fx.spec()).unwrap();
    }

    #[test]
    fn a_program_outside_every_bind_is_bound_alone() {
        let mut fx = Fixture::new("program");
        fx.program = fx.home.join("bin/agent");
        write_script(&fx.program, "#!/bin/sh\n");
        fx.extra_ro = vec![];
        let argv = fx.argv();
        let bind = pos(&argv, &["--ro-bind-try", p(&fx.program), p(&fx.program)]);
        assert!(pos(&argv, &["--tmpfs", p(&fx.home)]) < bind, "{argv:#?}");

        // Inside a bound dir: nothing more.
        fx.extra_ro = vec![fx.home.join("bin")];
        assert!(find(&fx.argv(), &["--ro-bind-try", p(&fx.program)]).is_none());
        // A system program: nothing more.
        fx.program = fs::canonicalize("/bin/sh").unwrap();
        assert!(find(&fx.argv(), &["--ro-bind-try", p(&fx.program)]).is_none());
    }

    fn found(vars: &[(&str, &str)], allow: &[&str]) -> Private {
        let allow: Vec<String> = allow.iter().map(|a| a.to_string()).collect();
        let var = |name: &str| {
            vars.iter().filter(|(k, _)| *k == name).map(|(_, v)| v.to_string()).collect()
        };
        let files = [PathBuf::from("/elsewhere/ringlet.sock")];
        let (config, runtime) = (Path::new("/h/.config/ringlet"), Path::new("/tmp/ringlet-7"));
        Private::find_with(config, runtime, &files, 7, var, &allow)
    }

    #[test]
    fn private_finds_ringlets_dirs_and_the_desktops_sockets() {
        let vars = [
            ("XDG_RUNTIME_DIR", "/run/user/7"),
            ("WAYLAND_DISPLAY", "wayland-0"),
            ("SSH_AUTH_SOCK", "/tmp/ssh-Ab/agent.9"),
            ("DBUS_SESSION_BUS_ADDRESS", "unix:abstract=/tmp/x;unix:path=/tmp/dbus-%41b,guid=1"),
            ("GPG_AGENT_INFO", "/h/gpg/S.gpg-agent:0:1"),
            ("GNUPGHOME", "/h/gpg"),
        ];
        let p = found(&vars, &[]);
        let dirs: Vec<&Path> = p.dirs.iter().map(|(d, _)| d.as_path()).collect();
        for dir in [
            "/h/.config/ringlet",
            "/tmp/ringlet-7",
            "/run/user/7",
            "/tmp/ssh-Ab",
            "/h/gpg",
            "/tmp/.X11-unix",
        ] {
            assert!(dirs.contains(&Path::new(dir)), "{dir} not in {p:#?}");
        }
        for file in [
            "/elsewhere/ringlet.sock",
            "/run/user/7/wayland-0",
            "/tmp/ssh-Ab/agent.9",
            "/tmp/dbus-Ab",
            "/h/gpg/S.gpg-agent",
        ] {
            assert!(p.files.contains(&PathBuf::from(file)), "{file} not in {p:#?}");
        }
        assert!(p.shown.is_empty(), "{p:#?}");
        let mut dropped = p.drop_vars.clone();
        dropped.sort();
        let want = [
            "DBUS_SESSION_BUS_ADDRESS",
            "DISPLAY",
            "GPG_AGENT_INFO",
            "SSH_AUTH_SOCK",
            "WAYLAND_DISPLAY",
            "XAUTHORITY",
        ];
        assert_eq!(dropped, want);
        let mut env: Vec<(String, String)> =
            ["PATH", "DISPLAY", "SSH_AUTH_SOCK"].map(|k| (k.into(), "v".into())).into();
        p.filter_env(&mut env);
        assert_eq!(env, [("PATH".to_string(), "v".to_string())]);

        // Opted in: the chosen sockets are shown, their variables kept; the
        // ssh agent's dir stays hidden around its socket.
        let p = found(&vars, &["ssh-agent", "dbus", "display", "gpg-agent"]);
        assert!(p.drop_vars.is_empty(), "{p:#?}");
        for shown in ["/tmp/ssh-Ab/agent.9", "/tmp/dbus-Ab", "/tmp/.X11-unix", "/run/user/7/gnupg"]
        {
            assert!(p.shown.contains(&PathBuf::from(shown)), "{shown} not in {p:#?}");
            assert!(!p.files.contains(&PathBuf::from(shown)), "{shown} hidden too: {p:#?}");
        }
        assert!(p.dirs.iter().any(|(d, _)| d == Path::new("/tmp/ssh-Ab")), "{p:#?}");
        assert!(!p.dirs.iter().any(|(d, _)| d == Path::new("/tmp/.X11-unix")), "{p:#?}");
        // A socket right in a shared dir: the socket alone, never the dir.
        let p = found(&[("SSH_AUTH_SOCK", "/tmp/agent.sock")], &[]);
        assert!(!p.dirs.iter().any(|(d, _)| d == Path::new("/tmp")), "{p:#?}");
    }

    #[test]
    fn dbus_addresses_give_their_socket_paths() {
        assert_eq!(dbus_paths("unix:path=/run/user/1/bus"), [PathBuf::from("/run/user/1/bus")]);
        assert_eq!(dbus_paths("unix:guid=1,path=/a%20b"), [PathBuf::from("/a b")]);
        assert!(dbus_paths("unix:abstract=/tmp/dbus-x,guid=1").is_empty());
        assert!(dbus_paths("tcp:host=localhost,port=1").is_empty());
        assert_eq!(unescape_dbus("%zz%4"), "%zz%4");
    }

    #[test]
    fn hidden_paths_are_masked_where_a_bind_shows_them_even_through_a_link() {
        let mut fx = Fixture::new("private-masks");
        let runtime = fx.work_dir.join("ringlet-7");
        let socket = fx.work_dir.join("dbus-x");
        fs::create_dir_all(&runtime).unwrap();
        write(&socket, "");
        write(&runtime.join("ringlet.sock"), "");
        fx.private.dirs.push((runtime.clone(), "Ringlet's runtime dir"));
        fx.private.files.extend([socket.clone(), runtime.join("ringlet.sock")]);
        // The same project reached through a link, bound as an install dir.
        let link = fx.root.join("link");
        symlink(&fx.work_dir, &link).unwrap();
        fx.extra_ro.push(link.clone());
        let argv = fx.argv();
        let bind = pos(&argv, &["--bind", p(&fx.work_dir), p(&fx.work_dir)]);
        let tmpfs = pos(&argv, &["--tmpfs", p(&runtime)]);
        let null = pos(&argv, &["--ro-bind", "/dev/null", p(&socket)]);
        assert!(bind < tmpfs && bind < null, "{argv:#?}");
        let linked = link.join("ringlet-7");
        pos(&argv, &["--tmpfs", p(&linked)]);
        pos(&argv, &["--ro-bind", "/dev/null", p(&link.join("dbus-x"))]);
        // The socket in the masked runtime dir needs no mask of its own.
        let inner = runtime.join("ringlet.sock");
        assert!(find(&argv, &["--ro-bind", "/dev/null", p(&inner)]).is_none(), "{argv:#?}");
        // Opted in: shown at its path, not masked.
        fx.private.files.retain(|f| f != &socket);
        fx.private.shown.push(socket.clone());
        let argv = fx.argv();
        assert!(find(&argv, &["--ro-bind", "/dev/null", p(&socket)]).is_none(), "{argv:#?}");
        assert!(pos(&argv, &["--ro-bind-try", p(&socket), p(&socket)]) > bind, "{argv:#?}");
    }

    #[test]
    fn check_dirs_refuses_the_root_tmp_the_config_dir_and_hidden_dirs() {
        let mut fx = Fixture::new("refuse");
        let config = fx.home.join(".config/ringlet");
        fs::create_dir_all(&config).unwrap();
        let runtime = fx.root.join("run/ringlet");
        fs::create_dir_all(&runtime).unwrap();
        fx.private.config_dir = config.clone();
        fx.private.dirs.push((runtime.clone(), "Ringlet's runtime dir"));
        let link = fx.root.join("config-link");
        symlink(&config, &link).unwrap();
        let cases = [
            (PathBuf::from("/"), "the whole file system"),
            (PathBuf::from("/tmp"), "shared by every program"),
            (config.clone(), "Ringlet's config dir"),
            (fx.home.join(".config"), "Ringlet's config dir"),
            (link, "Ringlet's config dir"),
            (runtime.clone(), "Ringlet's runtime dir, which the sandbox hides"),
        ];
        for (dir, why) in cases {
            fx.work_dir = dir.clone();
            let err = check_dirs(&fx.spec()).unwrap_err().to_string();
            assert!(err.contains(&format!("working dir {}", dir.display())), "{err}");
            assert!(err.contains(why) && err.contains("project directory"), "{err}");
        }
        // A project that holds the runtime dir is fine: it is masked.
        fx.work_dir = fx.root.join("run");
        check_dirs(&fx.spec()).unwrap();
        // A project that is an ssh agent's socket dir: accepted, and only
        // the socket is masked.
        let socket = fx.root.join("proj/agent.sock");
        write(&socket, "");
        fx.work_dir = fx.root.join("proj");
        fx.private.dirs.push((fx.work_dir.clone(), AGENT_SOCKET_DIR));
        fx.private.files.push(socket.clone());
        check_dirs(&fx.spec()).unwrap();
        let argv = fx.argv();
        assert!(find(&argv, &["--tmpfs", p(&fx.work_dir)]).is_none(), "{argv:#?}");
        pos(&argv, &["--ro-bind", "/dev/null", p(&socket)]);
    }

    #[test]
    fn install_dirs_bind_the_hoisted_tree_and_the_interpreter() {
        // nvm's layout: node and the global packages under the (hidden)
        // home; Codex's launcher and its native package side by side.
        let root = temp_dir("install-tree");
        let prefix = root.join("home/.nvm/versions/node/v20.20.2");
        let modules = prefix.join("lib/node_modules");
        let launcher = modules.join("@openai/codex/bin/codex.js");
        write(&modules.join("@openai/codex/package.json"), "{}");
        write_script(&launcher, "#!/usr/bin/env node\nimport('x');\n");
        write(&modules.join("@openai/codex-linux-x64/vendor/codex"), "");
        write_script(&prefix.join("bin/node"), "");
        fs::create_dir_all(prefix.join("bin")).unwrap();
        symlink("../lib/node_modules/@openai/codex/bin/codex.js", prefix.join("bin/codex"))
            .unwrap();
        let path = std::env::join_paths([prefix.join("bin"), "/usr/bin".into()]).unwrap();
        let dirs = install_dirs(&prefix.join("bin/codex"), Some(&path));
        eprintln!("install_dirs resolved:");
        for dir in &dirs {
            eprintln!("  {}", dir.display());
        }
        let canonical = |p: &Path| fs::canonicalize(p).unwrap();
        for want in [
            prefix.join("bin"),
            canonical(&modules.join("@openai/codex/bin")),
            canonical(&modules.join("@openai/codex")),
            // The whole tree: the native package is a sibling.
            canonical(&modules),
            // The node of `#!/usr/bin/env node`, first on PATH.
            prefix.join("bin/node"),
        ] {
            assert!(dirs.contains(&want), "{} not in {dirs:#?}", want.display());
        }
        // Nothing above the tree.
        assert!(!dirs.iter().any(|d| d == &prefix || d == &prefix.join("lib")), "{dirs:#?}");

        // A project install nested twice: the outermost node_modules.
        let project = root.join("project");
        let inner = project.join("node_modules/tool/node_modules/agent/bin/agent");
        write_script(&inner, "#!/bin/sh\n");
        let dirs = install_dirs(&inner, Some(&path));
        assert!(dirs.contains(&canonical(&project.join("node_modules"))), "{dirs:#?}");
        assert!(!dirs.iter().any(|d| d == &canonical(&project)), "{dirs:#?}");
        // An absolute #! names the interpreter as written.
        let script = root.join("bin/agent");
        write_script(&script, "#!/usr/bin/perl -w\n");
        assert_eq!(interpreter(&script, None), Some(PathBuf::from("/usr/bin/perl")));
        write_script(&script, "#!/usr/bin/env -S FOO=1 node --max-old-space-size=100\n");
        assert_eq!(interpreter(&script, Some(&path)), Some(prefix.join("bin/node")));
        write(&script, "\x7fELF");
        assert_eq!(interpreter(&script, Some(&path)), None);
        // A FIFO is not read (it would block).
        let fifo = root.join("fifo");
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &fifo,
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
        assert_eq!(interpreter(&fifo, Some(&path)), None);
        let _ = fs::remove_dir_all(&root);
    }

    #[test]
    fn split_words_splits_on_blanks() {
        assert_eq!(split_words("  --a  b\tc\nd ").unwrap(), ["--a", "b", "c", "d"]);
        assert!(split_words("").unwrap().is_empty());
        assert!(split_words(" \t\n ").unwrap().is_empty());
    }

    #[test]
    fn split_words_honours_quotes() {
        assert_eq!(split_words(r#"'a b' "c d" e'f'"g""#).unwrap(), ["a b", "c d", "efg"]);
        assert_eq!(split_words("'' \"\"").unwrap(), ["", ""]);
        // Single quotes keep everything; nothing is expanded anywhere.
        assert_eq!(split_words(r#"'$HOME \ "x"' ~ *"#).unwrap(), [r#"$HOME \ "x""#, "~", "*"]);
        // Double quotes drop the backslash only before $ ` " \ and newline.
        assert_eq!(split_words(r#""a\"b\\c\$d\e\`""#).unwrap(), [r#"a"b\c$d\e`"#]);
        assert_eq!(split_words("\"a\\\nb\"").unwrap(), ["ab"]);
        assert_eq!(split_words("\"it's\" 'say \"hi\"'").unwrap(), ["it's", "say \"hi\""]);
    }

    #[test]
    fn split_words_honours_backslashes() {
        assert_eq!(split_words(r"--bind /a\ b /c").unwrap(), ["--bind", "/a b", "/c"]);
        assert_eq!(split_words(r#"\'x \"y \\"#).unwrap(), ["'x", "\"y", "\\"]);
        assert_eq!(split_words("a\\\nb c").unwrap(), ["ab", "c"]);
    }

    #[test]
    fn split_words_refuses_unbalanced_quotes() {
        for (text, what) in [
            ("'abc", "single quote"),
            ("x 'a\"b", "single quote"),
            ("\"abc", "double quote"),
            ("\"abc\\\"", "double quote"),
            ("\"abc\\", "double quote"),
            ("abc\\", "backslash"),
        ] {
            let err = split_words(text).unwrap_err().to_string();
            assert!(err.contains(what), "{text:?}: {err}");
        }
        let err = split_words("ok 'open").unwrap_err().to_string();
        assert!(err.contains("character 4"), "{err}");
    }

    fn sysctls(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> =
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |name| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    }

    fn diagnosed(needs_userns: bool, pairs: &[(&str, &str)]) -> SandboxError {
        let stderr = "bwrap: setting up uid map: Permission denied".to_string();
        diagnose(PathBuf::from("/usr/bin/bwrap"), stderr, needs_userns, sysctls(pairs))
    }

    #[test]
    fn diagnose_names_disabled_user_namespaces() {
        let err = diagnosed(true, &[("kernel/unprivileged_userns_clone", "0")]);
        assert!(matches!(err, SandboxError::UsernsDisabled { .. }), "{err:?}");
        let text = err.to_string();
        assert!(text.contains("kernel.unprivileged_userns_clone = 0"), "{text}");
        assert!(text.contains("sudo sysctl -w kernel.unprivileged_userns_clone=1"), "{text}");
        assert!(text.contains("setting up uid map"), "{text}");

        let text = diagnosed(true, &[("user/max_user_namespaces", "0")]).to_string();
        assert!(text.contains("user.max_user_namespaces = 0"), "{text}");
        assert!(text.contains("sudo sysctl -w user.max_user_namespaces=10000"), "{text}");
    }

    #[test]
    fn diagnose_names_apparmor() {
        let err = diagnosed(
            true,
            &[
                ("kernel/unprivileged_userns_clone", "1"),
                ("user/max_user_namespaces", "63000"),
                ("kernel/apparmor_restrict_unprivileged_userns", "1"),
            ],
        );
        assert!(matches!(err, SandboxError::AppArmor { .. }), "{err:?}");
        let text = err.to_string();
        for part in [
            "AppArmor restricts unprivileged user namespaces",
            "Ubuntu 24.04",
            "userns,",
            "/etc/apparmor.d/bwrap",
            "apparmor_parser -r",
            "sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0",
            "setting up uid map",
        ] {
            assert!(text.contains(part), "{part:?} not in {text}");
        }
    }

    #[test]
    fn diagnose_ignores_userns_settings_when_bwrap_needs_none() {
        // Root, or a setuid bwrap: the settings cannot be the cause.
        let err = diagnosed(false, &[("kernel/unprivileged_userns_clone", "0")]);
        assert!(matches!(err, SandboxError::Failed { .. }), "{err:?}");
    }

    #[test]
    fn diagnose_falls_back_to_bwraps_own_words() {
        let stderr = "bwrap: Creating new namespace failed: Operation not permitted".to_string();
        let err = diagnose(PathBuf::from("/usr/bin/bwrap"), stderr, true, sysctls(&[]));
        let text = err.to_string();
        assert!(text.contains("Creating new namespace failed: Operation not permitted"), "{text}");
        assert!(text.contains("fix: in a container"), "{text}");
    }

    #[test]
    fn check_bwrap_names_the_package_when_not_installed() {
        let err = check_bwrap(Some(OsStr::new("/nonexistent-ringlet-dir"))).unwrap_err();
        assert!(matches!(err, SandboxError::NotInstalled), "{err:?}");
        let text = err.to_string();
        assert!(text.contains("no `bwrap` in PATH"), "{text}");
        assert!(text.contains("sudo apt install bubblewrap"), "{text}");
    }

    #[test]
    fn find_program_wants_an_executable_file() {
        let fx = Fixture::new("find");
        write(&fx.root.join("a/bwrap"), "not executable");
        fs::create_dir_all(fx.root.join("c/bwrap")).unwrap();
        write_script(&fx.root.join("b/bwrap"), "#!/bin/sh\n");
        write_script(&fx.root.join("rel/bwrap"), "#!/bin/sh\n");
        let path = std::env::join_paths([
            fx.root.join("a"),
            PathBuf::from("rel"),
            fx.root.join("c"),
            fx.root.join("b"),
        ])
        .unwrap();
        assert_eq!(find_program("bwrap", Some(&path)), Some(fx.root.join("b/bwrap")));
        assert_eq!(find_program("bwrap", Some(OsStr::new(""))), None);
    }

    #[test]
    fn check_bwrap_reports_bwraps_message() {
        let fx = Fixture::new("failing");
        let script = "#!/bin/sh\necho 'bwrap: something specific broke' >&2\nexit 1\n";
        write_script(&fx.root.join("bwrap"), script);
        let err = check_bwrap(Some(fx.root.as_os_str())).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("bwrap: something specific broke"), "{text}");
        assert!(text.contains(p(&fx.root.join("bwrap"))), "{text}");
    }

    #[test]
    fn check_bwrap_gives_up_on_a_hanging_bwrap() {
        let fx = Fixture::new("hanging");
        write_script(&fx.root.join("bwrap"), "#!/bin/sh\nexec sleep 10\n");
        let started = Instant::now();
        let err =
            check_bwrap_within(Some(fx.root.as_os_str()), Duration::from_millis(200)).unwrap_err();
        assert!(matches!(err, SandboxError::TimedOut { .. }), "{err:?}");
        assert!(started.elapsed() < Duration::from_secs(3));
    }

    #[test]
    fn sbpl_strings_escape_quotes_and_backslashes() {
        let path = Path::new(r#"/Users/a b/we"ird\dir"#);
        assert_eq!(sbpl_string(path).unwrap(), r#""/Users/a b/we\"ird\\dir""#);
        assert_eq!(sbpl_string(Path::new("/plain")).unwrap(), "\"/plain\"");
    }

    #[test]
    fn sbpl_strings_refuse_line_breaks_nul_and_non_utf8() {
        for bad in ["/a\nb", "/a\rb", "/a\0b", "/a\tb", "/a\x1bb", "/a\x7fb", "/a\u{85}b"] {
            let err = sbpl_string(Path::new(bad)).unwrap_err().to_string();
            assert!(err.contains("control character"), "{bad:?}: {err}");
        }
        let non_utf8 = Path::new(OsStr::from_bytes(b"/a\xffb"));
        assert!(sbpl_string(non_utf8).unwrap_err().to_string().contains("UTF-8"));
    }

    /// A macOS-like spec; none of these paths exist here, so no real paths
    /// are added and the text is exactly predictable.
    fn mac_profile(work_dir: &str, profile_home: &str) -> Result<String> {
        let program = PathBuf::from("/Users/alice/.local/bin/agent");
        let args = vec![];
        let home_ro = vec![".gitconfig".to_string(), ".config/git".to_string()];
        let extra_ro = vec![PathBuf::from("/Users/alice/.local/share/agent"), "/opt/x".into()];
        let spec = Spec {
            program: &program,
            args: &args,
            home: Path::new("/Users/alice"),
            profile_home: Path::new(profile_home),
            work_dir: Path::new(work_dir),
            home_ro: &home_ro,
            extra_ro: &extra_ro,
            extra_flags: &[],
            private: &Private::default(),
            helper: None,
        };
        profile_text(&spec, Some(Path::new("/var/folders/xy/abc/T")))
    }

    #[test]
    fn sandbox_exec_profile_denies_writes_and_home_reads() {
        let profile = mac_profile("/Users/alice/src/project", "/Users/alice/.ringlet/p").unwrap();
        assert!(profile.starts_with("(version 1)\n(allow default)\n"), "{profile}");
        let at = |needle: &str| {
            profile.find(needle).unwrap_or_else(|| panic!("{needle:?} not in\n{profile}"))
        };
        let deny_write = at("(deny file-write*)\n");
        let allow_write = at("(allow file-write*\n");
        assert!(deny_write < allow_write);
        for path in [
            "/Users/alice/.ringlet/p",
            "/Users/alice/src/project",
            "/private/tmp",
            "/private/var/folders",
            "/var/folders/xy/abc/T",
        ] {
            assert!(at(&format!("  (subpath \"{path}\")\n")) > allow_write);
        }
        at("(literal \"/dev/null\")");
        at("(regex #\"^/dev/ttys[0-9]+$\")");
        let deny_read = at("(deny file-read* (subpath \"/Users/alice\"))\n");
        let allow_read = at("(allow file-read*\n");
        assert!(allow_write < deny_read && deny_read < allow_read);
        for path in [
            "/Users/alice/.gitconfig",
            "/Users/alice/.config/git",
            "/Users/alice/.local/share/agent",
            "/Users/alice/.local/bin/agent",
            "/Users/alice/.ringlet/p",
            "/Users/alice/src/project",
        ] {
            let rule = format!("\n  (subpath \"{path}\")");
            assert!(profile[allow_read..].contains(&rule), "{rule} not in\n{profile}");
        }
        // Outside the home nothing needs reopening.
        assert!(!profile.contains("/opt/x"), "{profile}");
        // The dirs on the way down may be stat(2)ed, not read.
        let metadata = at("(allow file-read-metadata");
        for path in ["/Users/alice", "/Users/alice/.config", "/Users/alice/.local/share"] {
            assert!(at(&format!("(literal \"{path}\")")) > metadata);
        }
    }

    #[test]
    fn sandbox_exec_profile_denies_the_private_paths_last() {
        let private = Private {
            config_dir: "/Users/alice/.config/ringlet".into(),
            dirs: vec![
                ("/Users/alice/.config/ringlet".into(), "Ringlet's config dir"),
                ("/Users/alice/src/project/ringlet-501".into(), "Ringlet's runtime dir"),
                // Holds the work dir: never closed.
                ("/Users/alice/src".into(), "test"),
            ],
            files: vec!["/Users/alice/src/project/dbus-x".into()],
            shown: vec!["/Users/alice/src/project/ssh.sock".into()],
            drop_vars: vec![],
        };
        let spec = Spec {
            program: Path::new("/opt/agent"),
            args: &[],
            home: Path::new("/Users/alice"),
            profile_home: Path::new("/Users/alice/p"),
            work_dir: Path::new("/Users/alice/src/project"),
            home_ro: &[],
            extra_ro: &[],
            extra_flags: &[],
            private: &private,
            helper: None,
        };
        let profile = profile_text(&spec, None).unwrap();
        let deny = profile.find("(deny file-read* file-write*").expect(&profile);
        assert!(profile.find("(allow file-read*\n").unwrap() < deny, "{profile}");
        let rest = &profile[deny..];
        for rule in [
            "(subpath \"/Users/alice/.config/ringlet\")",
            "(subpath \"/Users/alice/src/project/ringlet-501\")",
            "(literal \"/Users/alice/src/project/dbus-x\")",
            "(remote unix-socket (path-literal \"/Users/alice/src/project/dbus-x\"))",
        ] {
            assert!(rest.contains(rule), "{rule} not in\n{profile}");
        }
        assert!(!rest.contains("(subpath \"/Users/alice/src\")"), "{profile}");
        let allow = rest.find("(allow network-outbound").expect(&profile);
        assert!(rest[allow..].contains("/Users/alice/src/project/ssh.sock"), "{profile}");
    }

    #[test]
    fn sandbox_exec_profile_never_opens_the_whole_home() {
        for work_dir in ["/Users/alice", "/Users", "/"] {
            let profile = mac_profile(work_dir, "/Users/alice/.ringlet/p").unwrap();
            let opened = format!("(subpath \"{work_dir}\")");
            assert!(!profile.contains(&format!("  {opened}")), "{profile}");
            assert!(!profile.contains(&format!("\n  {opened}")), "{profile}");
        }
    }

    #[test]
    fn sandbox_exec_profile_escapes_every_path() {
        let profile = mac_profile(r#"/Users/alice/my "quoted"\dir"#, "/Users/alice/p").unwrap();
        assert!(profile.contains(r#"(subpath "/Users/alice/my \"quoted\"\\dir")"#), "{profile}");
        let err = mac_profile("/Users/alice/evil\n(allow default)", "/Users/alice/p").unwrap_err();
        assert!(err.to_string().contains("control character"), "{err}");
    }

    #[test]
    fn sandbox_exec_argv_puts_the_profile_before_the_program() {
        let args = vec!["--resume".to_string(), "a b".to_string()];
        let spec = Spec {
            program: Path::new("/opt/agent"),
            args: &args,
            home: Path::new("/Users/alice"),
            profile_home: Path::new("/Users/alice/p"),
            work_dir: Path::new("/Users/alice/w"),
            home_ro: &[],
            extra_ro: &[],
            extra_flags: &[],
            private: &Private::default(),
            helper: None,
        };
        let argv = sandbox_exec_argv("(version 1)", &spec);
        let expected = ["/usr/bin/sandbox-exec", "-p", "(version 1)", "--", "/opt/agent"];
        assert_eq!(argv[..5], expected);
        assert_eq!(argv[5..], args[..]);
    }

    /// bwrap from PATH, proven to work; `None` (after a loud note) only
    /// when it is not installed.
    fn real_bwrap(test: &str) -> Option<PathBuf> {
        let path = std::env::var_os("PATH");
        if find_program("bwrap", path.as_deref()).is_none() {
            eprintln!(
                "\n!!!!! SKIPPED {test}: bwrap is not installed (apt install bubblewrap); \
                 the sandbox is NOT tested !!!!!\n"
            );
            return None;
        }
        Some(check_bwrap(path.as_deref()).unwrap_or_else(|e| panic!("{e}")))
    }

    /// Runs `script` with `sh -c` inside the fixture's sandbox; its stdout
    /// as `name=value` lines.
    fn run_inside(bwrap: &Path, fx: &mut Fixture, script: &str, env: &[(&str, String)]) -> String {
        fx.args = vec!["-c".into(), script.into()];
        let argv = bwrap_argv(bwrap, &fx.spec());
        let out = Command::new(&argv[0])
            .args(&argv[1..])
            .env("HOME", &fx.home)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{argv:#?}\nstdout: {stdout}\nstderr: {stderr}");
        stdout
    }

    fn value<'a>(out: &'a str, name: &str) -> &'a str {
        let prefix = format!("{name}=");
        out.lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .unwrap_or_else(|| panic!("no {name} in\n{out}"))
    }

    #[test]
    fn real_bwrap_check_succeeds() {
        if let Some(bwrap) = real_bwrap("real_bwrap_check_succeeds") {
            assert!(bwrap.is_absolute());
        }
    }

    #[test]
    fn real_bwrap_confines_the_file_system() {
        let Some(bwrap) = real_bwrap("real_bwrap_confines_the_file_system") else { return };
        let mut fx = Fixture::new("real-fs");
        let host_tmp = temp_dir("host-tmp").join("planted");
        write(&host_tmp, "outside\n");
        let mark = format!("{}-{}", std::process::id(), fx.root.file_name().unwrap().display());
        let script = r#"
            check() { name=$1; shift; if ( "$@" ) >/dev/null 2>&1; then echo "$name=yes"; else echo "$name=no"; fi; }
            echo "pwd=$(pwd)"
            check work_write sh -c 'echo from-sandbox > "$WORK/w.txt"'
            check profile_write sh -c 'echo from-sandbox > "$PROFILE/p.txt"'
            check home_is_dir test -d "$HOME"
            check secret_exists test -e "$FAKE_HOME/secret.txt"
            check secret_read cat "$FAKE_HOME/secret.txt"
            check ssh_read cat "$FAKE_HOME/.ssh/id_ed25519"
            check secret_write sh -c 'echo pwned > "$FAKE_HOME/secret.txt"'
            check gitconfig_read grep -q Alice "$FAKE_HOME/.gitconfig"
            check gitconfig_write sh -c 'echo pwned >> "$FAKE_HOME/.gitconfig"'
            check git_dir_read cat "$FAKE_HOME/.config/git/ignore"
            check install_read cat "$INSTALL/agent.js"
            check install_write sh -c 'echo pwned > "$INSTALL/agent.js"'
            check usr_write touch /usr/ringlet-sandbox-probe
            check etc_write touch /etc/ringlet-sandbox-probe
            check tmp_write sh -c 'echo x > "/tmp/ringlet-sandbox-marker-$MARK"'
            check tmp_read_back test -e "/tmp/ringlet-sandbox-marker-$MARK"
            check host_tmp_visible test -e "$HOST_TMP"
        "#;
        let env = [
            ("WORK", s(&fx.work_dir)),
            ("PROFILE", s(&fx.profile_home)),
            ("FAKE_HOME", s(&fx.home)),
            ("INSTALL", s(&fx.install)),
            ("HOST_TMP", s(&host_tmp)),
            ("MARK", mark.clone()),
        ];
        let out = run_inside(&bwrap, &mut fx, script, &env);

        assert_eq!(value(&out, "pwd"), p(&fx.work_dir), "{out}");
        let expect = [
            ("work_write", "yes"),
            ("profile_write", "yes"),
            ("home_is_dir", "yes"),
            ("secret_exists", "no"),
            ("secret_read", "no"),
            ("ssh_read", "no"),
            ("gitconfig_read", "yes"),
            ("gitconfig_write", "no"),
            ("git_dir_read", "yes"),
            ("install_read", "yes"),
            ("install_write", "no"),
            ("usr_write", "no"),
            ("etc_write", "no"),
            ("tmp_write", "yes"),
            ("tmp_read_back", "yes"),
            ("host_tmp_visible", "no"),
        ];
        for (name, want) in expect {
            assert_eq!(value(&out, name), want, "{name} in\n{out}");
        }
        // Writes to the two writable dirs reached the host...
        assert_eq!(fs::read_to_string(fx.work_dir.join("w.txt")).unwrap(), "from-sandbox\n");
        assert_eq!(fs::read_to_string(fx.profile_home.join("p.txt")).unwrap(), "from-sandbox\n");
        // ...and nothing else did. Writing the secret's path (secret_write)
        // only wrote into the throwaway home.
        assert_eq!(fs::read_to_string(fx.home.join("secret.txt")).unwrap(), "secret\n");
        let gitconfig = fs::read_to_string(fx.home.join(".gitconfig")).unwrap();
        assert_eq!(gitconfig, "[user]\n\tname = Alice\n");
        assert_eq!(fs::read_to_string(fx.install.join("agent.js")).unwrap(), "console.log(1)\n");
        assert!(!Path::new("/usr/ringlet-sandbox-probe").exists());
        assert!(!Path::new("/etc/ringlet-sandbox-probe").exists());
        let marker = Path::new("/tmp").join(format!("ringlet-sandbox-marker-{mark}"));
        assert!(!marker.exists(), "the sandbox's /tmp leaked to the host");
        let _ = fs::remove_dir_all(host_tmp.parent().unwrap());
    }

    #[test]
    fn real_bwrap_has_its_own_pids_and_shares_the_network() {
        let Some(bwrap) = real_bwrap("real_bwrap_has_its_own_pids_and_shares_the_network") else {
            return;
        };
        let mut fx = Fixture::new("real-ns");
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let has_bash = Path::new("/bin/bash").exists();
        let script = r#"
            echo "pid=$$"
            printf 'init='; tr '\0' ' ' < /proc/1/cmdline; echo
            if [ -x /bin/bash ]; then
                if bash -c 'echo hello > "/dev/tcp/127.0.0.1/$PORT"'; then echo net=yes; else echo net=no; fi
            fi
        "#;
        let out = run_inside(&bwrap, &mut fx, script, &[("PORT", port.to_string())]);

        // A new PID namespace: our shell is pid 2 under bwrap's own init,
        // which is what /proc (mounted fresh) shows as pid 1.
        let pid: u32 = value(&out, "pid").parse().unwrap();
        assert!(pid <= 3, "pid {pid} is not from a new PID namespace\n{out}");
        let init = value(&out, "init");
        assert!(init.contains("bwrap"), "pid 1 inside is {init:?}, not bwrap\n{out}");
        let host_init = fs::read("/proc/1/cmdline").unwrap_or_default();
        assert_ne!(init.trim().as_bytes(), host_init.trim_ascii_end());

        if !has_bash {
            eprintln!("\n!!!!! network check SKIPPED: no /bin/bash for /dev/tcp !!!!!\n");
            return;
        }
        assert_eq!(value(&out, "net"), "yes", "{out}");
        listener.set_nonblocking(true).unwrap();
        let (mut conn, _) = listener.accept().expect("the sandbox connected to 127.0.0.1");
        conn.set_nonblocking(false).unwrap();
        let mut got = String::new();
        conn.read_to_string(&mut got).unwrap();
        assert_eq!(got, "hello\n");
    }

    #[test]
    fn real_bwrap_never_shows_the_home_through_a_symlink() {
        let Some(bwrap) = real_bwrap("real_bwrap_never_shows_the_home_through_a_symlink") else {
            return;
        };
        let script = r#"
            if cat "$LOOK/secret.txt" >/dev/null 2>&1; then echo secret_read=yes; else echo secret_read=no; fi
            if echo pwned > "$LOOK/secret.txt" 2>/dev/null; then echo write=yes; else echo write=no; fi
        "#;
        // A work dir that is a symlink to the home.
        let mut fx = Fixture::new("real-work-link");
        let work_link = fx.root.join("work-link");
        symlink(&fx.home, &work_link).unwrap();
        fx.work_dir = work_link.clone();
        let out = run_inside(&bwrap, &mut fx, script, &[("LOOK", s(&work_link))]);
        assert_eq!(value(&out, "secret_read"), "no", "{out}");
        assert_eq!(fs::read_to_string(fx.home.join("secret.txt")).unwrap(), "secret\n");

        // HOME through a symlink, the work dir at the real home.
        let mut fx = Fixture::new("real-home-link");
        let real_home = fx.home.clone();
        fx.home = fx.root.join("home-link");
        symlink(&real_home, &fx.home).unwrap();
        fx.work_dir = real_home.clone();
        let out = run_inside(&bwrap, &mut fx, script, &[("LOOK", s(&real_home))]);
        assert_eq!(value(&out, "secret_read"), "no", "{out}");
        assert_eq!(fs::read_to_string(real_home.join("secret.txt")).unwrap(), "secret\n");
    }

    /// Documents the trap in `--die-with-parent`: the kernel's "parent" is
    /// the thread that started bwrap. Spawned from a short-lived thread, the
    /// sandbox is killed as soon as that thread ends.
    #[test]
    fn real_bwrap_dies_with_the_thread_that_started_it() {
        let Some(bwrap) = real_bwrap("real_bwrap_dies_with_the_thread_that_started_it") else {
            return;
        };
        let mut fx = Fixture::new("real-die");
        fx.args = vec!["-c".into(), "sleep 1; echo alive > \"$WORK/alive\"".into()];
        let argv = bwrap_argv(&bwrap, &fx.spec());
        let work = s(&fx.work_dir);
        let mut child = thread::spawn(move || {
            let child = Command::new(&argv[0])
                .args(&argv[1..])
                .env("WORK", work)
                .stdin(Stdio::null())
                .spawn()
                .unwrap();
            // Long enough for bwrap to arm PR_SET_PDEATHSIG (milliseconds),
            // which would not fire for a thread that was already gone.
            thread::sleep(Duration::from_millis(300));
            child
        })
        .join()
        .unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            assert!(Instant::now() < deadline, "bwrap outlived the thread that started it");
            thread::sleep(Duration::from_millis(10));
        };
        assert_eq!(status.signal(), Some(9), "{status}");
        // The agent inside went with it.
        thread::sleep(Duration::from_millis(1500));
        assert!(!fx.work_dir.join("alive").exists(), "the sandboxed process survived");
    }
}

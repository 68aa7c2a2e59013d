//! `ringlet doctor`: checks everything a user can get wrong and says, for
//! each, ok / warn / fail, what was found and what to do. With a daemon
//! running, its checks come first (`crate::doctor`, the same the web UI's
//! Doctor page shows), with the daemon's version against this binary's;
//! without one, the checks that need only files (config, manifests, where
//! keys go, keys in plain files) run here with the same code. The CLI's own
//! checks follow, those that need the user's shell: the sandbox as found on
//! the user's PATH (which `profiles run --remote` and `terminal` sessions
//! started here use), the `ringlet` on PATH, the shim dir on PATH, and stale
//! shims. Never starts a daemon (it only reports on one). Exits 1 when a
//! check fails; a warning does not.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use anyhow::Result;
use serde_json::json;

use super::style::{self, Tone};
use super::{Ctx, Exit, Out};
use crate::client;
use crate::doctor::{Check, Status, shell_word};
use crate::paths::Paths;
use crate::profiles::aliases;
use crate::protocol::Request;
use crate::terminal::sandbox;

/// How long the `ringlet` found on PATH, when it is another binary, may
/// take to say its version.
const PROBE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

pub fn run(ctx: &Ctx) -> Result<()> {
    let paths = ctx.paths()?;
    let path_var = std::env::var_os("PATH");
    let mut checks = daemon_side(&paths);
    checks.push(local_sandbox(path_var.as_deref()));
    checks.push(ringlet_on_path(path_var.as_deref()));
    let shims = aliases::list(&paths.home);
    checks.push(shim_dir_on_path(&paths, path_var.as_deref(), &shims));
    checks.push(stale_shims(&paths, path_var.as_deref(), &shims));
    report(ctx, &checks)
}

/// The daemon's own checks and its version against ours when one runs;
/// otherwise the file checks, run here.
fn daemon_side(paths: &Paths) -> Vec<Check> {
    let status = match client::request_if_running(paths, &Request::Status) {
        Ok(status) => status,
        // Another protocol, a daemon that does not answer: say so, go on.
        Err(e) => {
            let mut checks = vec![
                Check::new("version", Status::Fail, format!("{e:#}"))
                    .fix("ringlet daemon stop (the next command starts this version)"),
            ];
            checks.extend(without_daemon(paths));
            return checks;
        }
    };
    let Some(status) = status else {
        let mut checks = vec![Check::new(
            "daemon",
            Status::Ok,
            "not running (any command starts it); the agents, the HTTP port and the proxies are checked when it runs",
        )];
        checks.extend(without_daemon(paths));
        return checks;
    };
    let version = version_check(&status);
    match client::request_if_running(paths, &Request::Doctor) {
        Ok(Some(reply)) => {
            let mut theirs: Vec<Check> =
                serde_json::from_value(reply["checks"].clone()).unwrap_or_default();
            // Right after the daemon's own line.
            let at = theirs.iter().position(|c| c.name == "daemon").map_or(0, |i| i + 1);
            theirs.insert(at, version);
            theirs
        }
        Ok(None) => {
            let mut checks = vec![Check::new("daemon", Status::Ok, "stopped while asked")];
            checks.extend(without_daemon(paths));
            checks
        }
        Err(e) => vec![
            Check::new("daemon", Status::Warn, format!("running, but its own checks: {e:#}"))
                .fix("ringlet daemon stop (the next command starts this version)"),
            version,
        ],
    }
}

/// The daemon's version (and protocol) against this binary's.
fn version_check(status: &serde_json::Value) -> Check {
    let ours = env!("CARGO_PKG_VERSION");
    let theirs = status["version"].as_str().unwrap_or("?");
    let pid = status["pid"].as_u64().unwrap_or(0);
    if theirs == ours {
        Check::new(
            "version",
            Status::Ok,
            format!("the daemon (pid {pid}) is ringlet {ours}, as this one"),
        )
    } else {
        Check::new(
            "version",
            Status::Warn,
            format!("the daemon (pid {pid}) is ringlet {theirs}, this one is {ours}"),
        )
        .fix("ringlet daemon stop (the next command starts this version)")
    }
}

/// With no daemon: the checks that need only files, with the daemon's code.
fn without_daemon(paths: &Paths) -> Vec<Check> {
    let catalog = crate::manifests::Catalog::load(paths);
    let mut checks =
        vec![crate::doctor::config_check(paths), crate::doctor::manifests_check(&catalog)];
    match crate::secrets::Secrets::forced_from_env() {
        Ok(forced) => {
            let secrets = crate::secrets::Secrets::new(paths.config_dir.join("secrets"), forced);
            let in_use = secrets.store_in_use();
            checks.push(crate::doctor::keystore_check(&in_use));
            checks.push(crate::doctor::key_files_check(paths, &in_use));
        }
        Err(e) => checks.push(
            Check::new("keystore", Status::Fail, format!("{e:#}"))
                .fix("unset RINGLET_SECRET_STORE, or set it to `keyring` or `file`"),
        ),
    }
    checks
}

/// The sandbox sessions started from this shell get: bwrap on the user's
/// PATH (the CLI sends its PATH with the session), proved to work.
fn local_sandbox(path_var: Option<&OsStr>) -> Check {
    if cfg!(target_os = "macos") {
        let found = Path::new(sandbox::SANDBOX_EXEC).is_file();
        return if found {
            Check::new("sandbox", Status::Ok, format!("{} is there", sandbox::SANDBOX_EXEC))
        } else {
            Check::new(
                "sandbox",
                Status::Fail,
                format!("{} is missing: remote sessions need --no-sandbox", sandbox::SANDBOX_EXEC),
            )
            .fix("start sessions without the sandbox (--no-sandbox)")
        };
    }
    match sandbox::check_bwrap(path_var) {
        Ok(bwrap) => Check::new(
            "sandbox",
            Status::Ok,
            format!("bwrap works from your shell ({})", bwrap.display()),
        ),
        Err(e) => Check::new("sandbox", Status::Fail, e.to_string())
            .fix("or start sessions without the sandbox (--no-sandbox)"),
    }
}

/// The `ringlet` a shim or a user typing `ringlet` gets: this binary, or
/// another (an older install earlier on PATH), or none.
fn ringlet_on_path(path_var: Option<&OsStr>) -> Check {
    let ours = env!("CARGO_PKG_VERSION");
    let exe = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("ringlet"));
    let found = crate::detect::find_binary_where(&["ringlet"], path_var, |_| true);
    let Some((on_path, _, _)) = found else {
        let dir = exe.parent().map_or_else(|| ".".into(), shell_word);
        return Check::new(
            "ringlet",
            Status::Warn,
            format!(
                "not on your PATH (this one is {}): shims fall back to the path they recorded",
                exe.display()
            ),
        )
        .fix(format!(
            "make install PREFIX=~/.local (and ~/.local/bin on PATH), or add {dir} to PATH"
        ));
    };
    if same_file(&on_path, &exe) {
        return Check::new(
            "ringlet",
            Status::Ok,
            format!("ringlet {ours} at {}, the one on your PATH", on_path.display()),
        );
    }
    let theirs = crate::detect::probe_version(&on_path, "--version", PROBE_TIMEOUT)
        .unwrap_or_else(|e| format!("version unknown: {e}"));
    let status = if theirs == ours { Status::Ok } else { Status::Warn };
    Check::new(
        "ringlet",
        status,
        format!(
            "`ringlet` on your PATH is {} ({theirs}); this one is {} ({ours}); shims and your shell run the one on PATH",
            on_path.display(),
            exe.display()
        ),
    )
    .fix(format!(
        "remove the other one, or put {} earlier on PATH",
        exe.parent().map_or_else(|| ".".into(), shell_word)
    ))
}

fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// Whether `dir` is an entry of PATH (as written, or the same directory).
fn on_path(dir: &Path, path_var: Option<&OsStr>) -> bool {
    let Some(path_var) = path_var else { return false };
    let canonical = std::fs::canonicalize(dir).ok();
    std::env::split_paths(path_var).any(|entry| {
        entry == dir || (canonical.is_some() && std::fs::canonicalize(&entry).ok() == canonical)
    })
}

/// The shim dir on PATH: a shim there is only found by name if it is.
fn shim_dir_on_path(paths: &Paths, path_var: Option<&OsStr>, shims: &[(String, PathBuf)]) -> Check {
    let dir = aliases::shim_dir(&paths.home);
    if on_path(&dir, path_var) {
        return Check::new("path", Status::Ok, format!("{} is on your PATH", dir.display()));
    }
    if shims.is_empty() {
        return Check::new(
            "path",
            Status::Ok,
            format!("{} is not on your PATH (no shims there)", dir.display()),
        );
    }
    let names: Vec<&str> = shims.iter().map(|(a, _)| a.as_str()).collect();
    let shown = if dir.starts_with(&paths.home) {
        format!("$HOME/{}", dir.strip_prefix(&paths.home).unwrap_or(&dir).display())
    } else {
        dir.display().to_string()
    };
    Check::new(
        "path",
        Status::Warn,
        format!(
            "{} is not on your PATH: typing {} does not find the shim",
            dir.display(),
            names.join(", ")
        ),
    )
    .fix(format!(
        "add `export PATH=\"{shown}:$PATH\"` to your shell's startup file (~/.profile, ~/.bashrc, ~/.zshrc)"
    ))
}

/// What is wrong with one shim, if anything.
fn shim_problem(
    paths: &Paths,
    path_var: Option<&OsStr>,
    ringlet_on_path: bool,
    alias: &str,
    shim: &Path,
) -> Option<(String, String)> {
    let profiles = crate::profiles::Store::new(paths.config_dir.join("profiles"));
    if !profiles.path(alias).exists() {
        return Some((
            format!("{alias}: no profile `{alias}`"),
            format!("ringlet aliases uninstall {alias}"),
        ));
    }
    let text = std::fs::read_to_string(shim).unwrap_or_default();
    let runs = text.lines().find_map(|l| {
        let rest = l.split("profiles run ").nth(1)?;
        rest.split_whitespace().next().map(str::to_string)
    });
    if runs.as_deref() != Some(alias) {
        return Some((
            format!("{alias}: runs profile `{}`, not `{alias}`", runs.as_deref().unwrap_or("?")),
            format!("ringlet aliases install {alias}"),
        ));
    }
    let recorded = recorded_path(&text);
    let works = |p: &PathBuf| is_executable(p);
    // The format before issue 15 runs the recorded path only; the current
    // one finds `ringlet` on PATH first.
    let hard_coded = text.lines().any(|l| l.trim_start().starts_with("exec '/"));
    let found = recorded.as_ref().is_some_and(works) || (!hard_coded && ringlet_on_path);
    if !found {
        let what = match (&recorded, hard_coded) {
            (Some(p), true) => format!("runs {}, which is gone", p.display()),
            (Some(p), false) => {
                format!("no `ringlet` on PATH and {} (its fallback) is gone", p.display())
            }
            (None, _) => "finds no ringlet to run".to_string(),
        };
        return Some((format!("{alias}: {what}"), format!("ringlet aliases install {alias}")));
    }
    // Found by name only if it comes first on PATH.
    if let Some((first, _, _)) = crate::detect::find_binary_where(&[alias], path_var, |_| true)
        && !same_file(&first, shim)
        && on_path(&aliases::shim_dir(&paths.home), path_var)
    {
        return Some((
            format!("{alias}: `{alias}` runs {}, earlier on PATH", first.display()),
            format!("rename the profile, or put {} earlier on PATH", shim.parent()?.display()),
        ));
    }
    None
}

/// The absolute path a shim recorded: its first single-quoted absolute path
/// (`'/usr/bin/ringlet'`, with `'\''` for a quote inside).
fn recorded_path(text: &str) -> Option<PathBuf> {
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some(start) = line.find("'/") else { continue };
        let rest = &line[start + 1..];
        let mut out = String::new();
        let mut chars = rest;
        loop {
            let end = chars.find('\'')?;
            out.push_str(&chars[..end]);
            chars = &chars[end..];
            if let Some(after) = chars.strip_prefix(r"'\''") {
                out.push('\'');
                chars = after;
            } else {
                return Some(PathBuf::from(out));
            }
        }
    }
    None
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Shims that no longer work: their profile is gone, they find no ringlet,
/// another command of the same name comes first on PATH; and profiles whose
/// recorded shim is gone.
fn stale_shims(paths: &Paths, path_var: Option<&OsStr>, shims: &[(String, PathBuf)]) -> Check {
    let dir = aliases::shim_dir(&paths.home);
    let ringlet_found =
        crate::detect::find_binary_where(&["ringlet"], path_var, |_| true).is_some();
    let mut problems = Vec::new();
    let mut fixes = Vec::new();
    for (alias, shim) in shims {
        if let Some((what, fix)) = shim_problem(paths, path_var, ringlet_found, alias, shim) {
            problems.push(what);
            fixes.push(fix);
        }
    }
    // Profiles that recorded a shim which is no longer there.
    let store = crate::profiles::Store::new(paths.config_dir.join("profiles"));
    if let Ok((profiles, _)) = store.list() {
        for p in profiles {
            if let Some(shim) = &p.alias_shim
                && !aliases::is_shim(shim)
            {
                problems.push(format!("{}: its shim {} is gone", p.alias, shim.display()));
                fixes.push(format!("ringlet aliases install {}", p.alias));
            }
        }
    }
    if problems.is_empty() {
        let detail = match shims.len() {
            0 => format!("no shims in {}", dir.display()),
            n => format!("{n} shim(s) in {}, each runs its profile", dir.display()),
        };
        return Check::new("shims", Status::Ok, detail);
    }
    Check::new(
        "shims",
        Status::Warn,
        format!("{} shim(s) in {}; stale: {}", shims.len(), dir.display(), problems.join("; ")),
    )
    .fix(fixes.join("; "))
}

/// Prints the checks (a table, or the JSON shape shared with `/api/doctor`)
/// and exits 1 when one failed.
fn report(ctx: &Ctx, checks: &[Check]) -> Result<()> {
    let mut out = Out::new();
    let count = |s: Status| checks.iter().filter(|c| c.status == s).count();
    let (fails, warns) = (count(Status::Fail), count(Status::Warn));
    if ctx.global.json {
        out.json(&json!({"checks": checks, "ok": fails == 0}))?;
    } else {
        // Eight wide: the few longer names push only their own line.
        let width = 8;
        for c in checks {
            let tone = match c.status {
                Status::Ok => Tone::Ok,
                Status::Warn => Tone::Warn,
                Status::Fail => Tone::Error,
            };
            out.line(format_args!(
                "{} {:<width$} {}",
                style::out(tone, c.status.label()),
                c.name,
                c.detail
            ))?;
            if let Some(fix) = c.fix.as_deref().filter(|_| c.status != Status::Ok) {
                let pad = " ".repeat(5 + width + 1);
                out.line(format_args!("{pad}{} {fix}", style::out(Tone::Accent, "fix:")))?;
            }
        }
        let plural =
            |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
        let summary = format!(
            "{}: {} ok, {}, {} failed",
            plural(checks.len(), "check", "checks"),
            checks.len() - fails - warns,
            plural(warns, "warning", "warnings"),
            fails
        );
        let tone = if fails > 0 {
            Tone::Error
        } else if warns > 0 {
            Tone::Warn
        } else {
            Tone::Ok
        };
        out.line(style::out(tone, &summary))?;
    }
    out.finish()?;
    if fails > 0 {
        return Err(Exit { code: 1, message: None }.into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsString;

    #[test]
    fn the_recorded_path_of_each_shim_format() {
        let old = "#!/bin/sh\n# ringlet-shim: x\nexec '/opt/it'\\''s/ringlet' profiles run work -- \"$@\"\n";
        assert_eq!(recorded_path(old), Some(PathBuf::from("/opt/it's/ringlet")));
        let new = "#!/bin/sh\n# ringlet-shim: x\nr=$(command -v ringlet) || r='/usr/bin/ringlet'\nexec \"$r\" profiles run work -- \"$@\"\n";
        assert_eq!(recorded_path(new), Some(PathBuf::from("/usr/bin/ringlet")));
        assert_eq!(recorded_path("#!/bin/sh\nexec ringlet profiles run a -- \"$@\"\n"), None);
    }

    #[test]
    fn a_dir_is_on_path_as_written_or_as_the_same_dir() {
        let path = OsString::from("/usr/bin:/bin:relative");
        assert!(on_path(Path::new("/usr/bin"), Some(&path)));
        assert!(!on_path(Path::new("/nonexistent-ringlet"), Some(&path)));
        assert!(!on_path(Path::new("/usr/bin"), None));
    }
}

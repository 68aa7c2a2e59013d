//! Running an agent on the user's own terminal (`profiles run`, `env
//! setup`): the one thing the CLI does locally, because only it owns that
//! terminal. The environment is built from scratch: the passthrough
//! variables from ours, then what the daemon's plan sets. While the agent
//! runs we ignore SIGINT and SIGQUIT (the terminal delivers them to the
//! agent, which shares our foreground process group) and forward SIGTERM and
//! SIGHUP, which are sent to us by name. The exit code is the agent's, or
//! 128+N when signal N killed it.

use std::os::unix::process::ExitStatusExt;
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result};
use signal_hook::consts::{SIGHUP, SIGINT, SIGQUIT, SIGTERM};
use signal_hook::iterator::Signals;

use crate::client;
use crate::paths::Paths;
use crate::protocol::{Request, RunEnded, RunPlan};

/// Runs the plan in the current directory and reports the end to the
/// daemon. Returns the exit code to leave with.
pub fn run(paths: &Paths, plan: &RunPlan) -> Result<u8> {
    let env = plan.environment(std::env::vars_os());
    // Registered before the spawn so no signal falls between; handlers (not
    // SIG_IGN) are reset to the default in the child by exec.
    let mut signals =
        Signals::new([SIGINT, SIGQUIT, SIGTERM, SIGHUP]).context("installing signal handlers")?;
    let started = Instant::now();
    let mut child = Command::new(&plan.program)
        .args(&plan.args)
        .env_clear()
        .envs(&env)
        .spawn()
        .with_context(|| format!("starting {}", plan.program))?;
    let pid = child.id();
    let handle = signals.handle();
    let forwarder = std::thread::Builder::new().name("signals".into()).spawn(move || {
        for signal in signals.forever() {
            if (signal == SIGTERM || signal == SIGHUP)
                && let Some(pid) = rustix::process::Pid::from_raw(pid as i32)
            {
                let sig = if signal == SIGTERM {
                    rustix::process::Signal::TERM
                } else {
                    rustix::process::Signal::HUP
                };
                let _ = rustix::process::kill_process(pid, sig);
            }
        }
    })?;
    let status = child.wait().context("waiting for the agent");
    handle.close();
    let _ = forwarder.join();
    let status = status?;
    let (exit_code, signal) = (status.code(), status.signal());
    let ended = RunEnded {
        alias: plan.alias.clone(),
        run_id: plan.run_id.clone(),
        started_at: plan.started_at.clone(),
        duration_ms: started.elapsed().as_millis() as u64,
        exit_code,
        signal,
    };
    // The run is over whatever the daemon says; a failed report is a warning.
    if let Err(e) = client::request(paths, &Request::ProfilesRunEnded(ended)) {
        super::warn_all(&[format!("could not record the end of the run: {e:#}")]);
    }
    Ok(match (exit_code, signal) {
        (Some(code), _) => code.clamp(0, 255) as u8,
        (None, Some(sig)) => (128 + sig).clamp(0, 255) as u8,
        (None, None) => 1,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::ffi::OsString;

    use super::*;

    #[test]
    fn environment_is_passthrough_then_plan() {
        let plan = RunPlan {
            run_id: "r".into(),
            alias: "a".into(),
            program: "/bin/true".into(),
            args: vec![],
            passthrough: vec!["PATH".into(), "LC_*".into(), "HOME".into()],
            env: [("HOME".to_string(), "/p".to_string()), ("X".to_string(), "1".to_string())]
                .into(),
            started_at: String::new(),
            notices: vec![],
        };
        let ours =
            [("PATH", "/bin"), ("LC_ALL", "C"), ("SECRET", "s"), ("HOME", "/h"), ("LANG", "x")]
                .map(|(k, v)| (OsString::from(k), OsString::from(v)));
        let env = plan.environment(ours.into_iter());
        let env: BTreeMap<String, String> = env
            .into_iter()
            .map(|(k, v)| (k.into_string().unwrap(), v.into_string().unwrap()))
            .collect();
        assert_eq!(
            env,
            [("HOME", "/p"), ("LC_ALL", "C"), ("PATH", "/bin"), ("X", "1")]
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .into()
        );
    }
}

//! The signal thread: SIGTERM, SIGINT and SIGHUP ask the main thread for a
//! clean shutdown (socket removed, lock released). A second signal while that
//! is under way exits at once, for a shutdown that hangs.

use std::sync::mpsc::Sender;
use std::thread;

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use super::Ctl;

/// Starts the signal thread. It lives as long as the process (detached).
pub fn spawn_signals(ctl: Sender<Ctl>) -> std::io::Result<()> {
    let mut signals = Signals::new([SIGTERM, SIGINT, SIGHUP])?;
    thread::Builder::new().name("signals".into()).spawn(move || {
        let mut seen = 0;
        for signal in signals.forever() {
            seen += 1;
            let name = match signal {
                SIGTERM => "SIGTERM",
                SIGINT => "SIGINT",
                _ => "SIGHUP",
            };
            if seen > 1 {
                crate::warn!("{name} again during shutdown; exiting now");
                std::process::exit(128 + signal);
            }
            let _ = ctl.send(Ctl::Shutdown { reason: format!("received {name}") });
        }
    })?;
    Ok(())
}

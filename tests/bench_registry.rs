//! The registry figures (issue 13): a sync with nothing changed and a full
//! sync of this repository's registry, both from a local HTTP server, and
//! `registry inspect`. Each is the wall time of the whole `ringlet` command
//! (spawn, IPC, the daemon's sync thread, the events the CLI waits for)
//! against the sandbox's warm daemon. The registry tree is built as `make
//! registry` builds it (tests/util/registry.rs) and served by a small keep-alive
//! HTTP/1.1 server in this file, a thread per connection, whose answers cost
//! nothing next to the sync. A full sync starts from an empty
//! `<config>/registry` each time (removed untimed), so every artifact is
//! fetched, verified, staged and swapped in.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{RINGLET, Result, Row, Sandbox, Timings, time_once};

pub const UNCHANGED: &str = "23. registry sync, nothing changed (local server)";
pub const FULL: &str = "24. registry sync, this repository's registry, full";
pub const INSPECT: &str = "25. `registry inspect`";

/// Runs of each sync figure.
const SYNC_RUNS: usize = 50;
/// Runs of `registry inspect`.
const INSPECT_RUNS: usize = 200;

/// Every registry figure; an error costs only its rows.
pub fn figures(sb: &Sandbox) -> Vec<Row> {
    let tree = sb.root.join("registry-tree");
    let _ = std::fs::remove_dir_all(&tree);
    super::registry_tree::this_registry(RINGLET, &tree);
    let server = match Server::start(tree) {
        Ok(s) => s,
        Err(e) => return vec![Row::error(UNCHANGED, e)],
    };
    let config = format!(
        "[registry]\nurl = \"http://{}/{{channel}}\"\nallow_unsigned = true\n",
        server.addr
    );
    if let Err(e) = std::fs::write(sb.config_dir().join("config.toml"), config) {
        return vec![Row::error(UNCHANGED, format!("writing config.toml: {e}"))];
    }
    let mut rows = Vec::new();
    // The full syncs first: they leave the registry the unchanged ones find.
    let full = match full_syncs(sb) {
        Ok(t) => Row::timed(FULL, &t, Some(200.0)),
        Err(e) => Row::error(FULL, e),
    };
    match timed_runs(sb, &["registry", "sync"], SYNC_RUNS) {
        Ok(t) => rows.push(Row::timed(UNCHANGED, &t, Some(20.0))),
        Err(e) => rows.push(Row::error(UNCHANGED, e)),
    }
    rows.push(full);
    match timed_runs(sb, &["registry", "inspect"], INSPECT_RUNS) {
        Ok(t) => rows.push(Row::timed(INSPECT, &t, Some(3.0))),
        Err(e) => rows.push(Row::error(INSPECT, e)),
    }
    // The other figures run without a registry.
    let _ = std::fs::remove_file(sb.config_dir().join("config.toml"));
    let _ = std::fs::remove_dir_all(sb.config_dir().join("registry"));
    rows
}

/// Full syncs, each into an empty `<config>/registry`.
fn full_syncs(sb: &Sandbox) -> Result<Timings> {
    eprintln!("figures: {FULL} ({SYNC_RUNS} runs)");
    let registry = sb.config_dir().join("registry");
    let mut samples = Vec::with_capacity(SYNC_RUNS);
    // One untimed run starts the daemon and warms the page cache.
    sb.run_ringlet(&["registry", "sync"])?;
    for _ in 0..SYNC_RUNS {
        std::fs::remove_dir_all(&registry)
            .map_err(|e| format!("removing {}: {e}", registry.display()))?;
        samples.push(time_once(sb.command(RINGLET, &["registry", "sync"]))?);
    }
    Ok(Timings::new(samples))
}

/// `runs` timed runs of `ringlet args` after two untimed ones.
fn timed_runs(sb: &Sandbox, args: &[&str], runs: usize) -> Result<Timings> {
    eprintln!("figures: ringlet {} ({runs} runs)", args.join(" "));
    for _ in 0..2 {
        sb.run_ringlet(args)?;
    }
    let mut samples = Vec::with_capacity(runs);
    for _ in 0..runs {
        samples.push(time_once(sb.command(RINGLET, args))?);
    }
    Ok(Timings::new(samples))
}

/// A static file server for one registry tree: `GET /<channel>/<path>`
/// answers the file under the tree, anything else 404. The threads end with
/// the bench process.
struct Server {
    addr: SocketAddr,
}

impl Server {
    fn start(tree: PathBuf) -> Result<Server> {
        let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("binding: {e}"))?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let tree = tree.clone();
                std::thread::spawn(move || serve(stream, &tree));
            }
        });
        Ok(Server { addr })
    }
}

/// Answers requests on one keep-alive connection until the client closes it.
fn serve(stream: TcpStream, tree: &Path) {
    let _ = stream.set_nodelay(true);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let Ok(mut out) = stream.try_clone() else { return };
    let mut reader = BufReader::new(stream);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        // The head ends at an empty line; GETs carry no body.
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 {
                return;
            }
            if header.trim().is_empty() {
                break;
            }
        }
        let target = line.split_whitespace().nth(1).unwrap_or("/");
        let rel = target.trim_start_matches('/').split_once('/').map_or("", |(_, rest)| rest);
        let body = (!rel.contains("..")).then(|| std::fs::read(tree.join(rel)).ok()).flatten();
        let (status, body) = match body {
            Some(b) => ("200 OK", b),
            None => ("404 Not Found", b"not found".to_vec()),
        };
        let head = format!("HTTP/1.1 {status}\r\ncontent-length: {}\r\n\r\n", body.len());
        if out.write_all(head.as_bytes()).and_then(|()| out.write_all(&body)).is_err() {
            return;
        }
    }
}

//! The request log of one proxy: `<config>/proxy/<alias>/requests.jsonl`,
//! one JSON [`Record`] per relayed request, appended when the request ends
//! (time, rule, every attempt's target and status, the final status, time
//! to first byte, duration, tokens, cost). The directory is 0700 and the
//! file 0600, opened without following links and checked to be the user's
//! own regular file (`fsutil::open_private`). Each line is one `write` with
//! `O_APPEND`, so a line is never torn by a concurrent appender. When a line
//! would take the file past [`ROTATE_AT`], the file first becomes
//! `requests.jsonl.1` (replacing the one before): the log never holds more
//! than two files of 16 MiB.
//!
//! The same records rebuild the budget's spend when a proxy starts
//! ([`read_since`]) and feed `proxy logs` ([`tail`]). [`StatsReply`] is what
//! `GET /ringlet/stats` answers and `proxy status` shows.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::sync::{Mutex, PoisonError};
use std::time::SystemTime;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use super::Budget;
use super::facts::ProxyTokens;
use crate::fsutil::{self, Access};

/// The log file's name in the proxy's log directory.
pub const LOG_FILE: &str = "requests.jsonl";
/// The rotated file: the one before, kept until the next rotation.
pub const OLD_FILE: &str = "requests.jsonl.1";
/// The size at which the log rotates.
pub const ROTATE_AT: u64 = 16 << 20;

/// One try of one upstream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attempt {
    /// The target as written in the rules (`<provider>[@<endpoint>]/<model>`).
    pub target: String,
    /// The upstream's HTTP status, when it answered.
    pub status: Option<u16>,
    /// Why the attempt failed without a status (connection, TLS, timeout),
    /// or broke off after its status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Milliseconds from sending the request to the answer's first body
    /// byte (or its failure): the upstream's latency.
    pub ms: f64,
}

/// One request, as logged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// When the request arrived (RFC 3339, UTC).
    pub ts: String,
    /// The path asked for, without the query (`/v1/messages`).
    #[serde(default)]
    pub path: String,
    /// The rule that matched, `alias <model>`, or none (the default upstream).
    pub rule: Option<String>,
    /// The model the agent asked for.
    pub model: String,
    pub attempts: Vec<Attempt>,
    /// The status the agent got.
    pub status: u16,
    /// The target that answered, if any did.
    pub target: Option<String>,
    /// Milliseconds until the agent got the answer's first byte.
    pub ttfb_ms: Option<f64>,
    /// Milliseconds until the answer ended.
    pub ms: f64,
    pub tokens: Option<ProxyTokens>,
    /// `None`: the model has no price (counted in tokens, never as $0).
    pub cost_usd: Option<f64>,
    /// The agent asked for a stream (`"stream": true`).
    pub stream: bool,
}

/// Where a proxy's budget stands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BudgetState {
    /// Below 80 % of every limit (or no limit).
    #[default]
    Ok,
    /// At 80 % of a limit or more.
    Warning,
    /// A limit is reached: requests get 402 until the period ends.
    Exceeded,
}

/// What `GET /ringlet/stats` answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatsReply {
    pub alias: String,
    pub pid: u32,
    /// When the child started (RFC 3339).
    pub started: String,
    /// Requests since the child started.
    pub requests: u64,
    pub in_flight: u64,
    pub last_request: Option<String>,
    /// Priced spend of today and this month (local time), from the log.
    pub spend_today_usd: f64,
    pub spend_month_usd: f64,
    /// Requests this month whose model has no price (not in the spend).
    pub unpriced_requests: u64,
    pub budget: Budget,
    #[serde(default)]
    pub budget_state: BudgetState,
    /// The period whose limit is at warning or reached: `daily`, `monthly`.
    #[serde(default)]
    pub budget_period: Option<String>,
    pub targets: Vec<TargetStats>,
}

/// Per target since the child started, plus today's spend.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetStats {
    pub target: String,
    /// Attempts sent to this target.
    pub requests: u64,
    /// Attempts that failed: no answer, 429, 5xx, or broken off.
    pub errors: u64,
    /// Failures after which the next target was tried.
    pub fallbacks: u64,
    /// Upstream latency ([`Attempt::ms`]) over the last 1024 attempts.
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub spend_today_usd: f64,
}

/// The line a rotation starts the new file with: the spend so far, since
/// the records that make it up leave with the next rotation. A rebuild
/// starts from the last one and counts only the records after it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Carry {
    pub ts: String,
    pub carry: Spent,
}

/// Spend totals as of one moment.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Spent {
    /// The local date the totals were taken (`YYYY-MM-DD`).
    pub day: String,
    pub today_usd: f64,
    pub month_usd: f64,
    pub unpriced_month: u64,
    #[serde(default)]
    pub today_by_target: BTreeMap<String, f64>,
}

/// Serialises rotation and appends within the process (one child per
/// log), and holds the open log file.
static APPEND: Mutex<Option<OpenLog>> = Mutex::new(None);

/// Appends `record` to the log in `dir`, rotating first when it is full;
/// a rotated log starts with the [`Carry`] of `spent`'s
/// totals (taken without `record`, which follows it).
pub fn append_carrying(
    dir: &Path,
    record: &Record,
    spent: &dyn Fn() -> Option<Spent>,
) -> Result<()> {
    let mut line = serde_json::to_vec(record)?;
    line.push(b'\n');
    let mut open = APPEND.lock().unwrap_or_else(PoisonError::into_inner);
    let path = dir.join(LOG_FILE);
    // The file stays open between requests (three syscalls a line instead
    // of ten); it is opened again when the name no longer leads to it
    // (removed, renamed, replaced).
    let stat = match open.as_ref() {
        Some(o) if o.path == path => rustix::fs::fstat(&o.file).ok().filter(|fd| {
            let named = rustix::fs::lstat(&path);
            named.is_ok_and(|n| (n.st_dev, n.st_ino) == (fd.st_dev, fd.st_ino))
        }),
        _ => None,
    };
    let (len, file) = match (stat, open.take()) {
        (Some(stat), Some(o)) => (stat.st_size as u64, o.file),
        _ => {
            fsutil::open_private_dir(dir)?;
            let file = fsutil::open_private(&path, Access::Append, 0o600)?;
            (file.metadata().map(|m| m.len()).unwrap_or(0), file)
        }
    };
    let mut file = file;
    if len > 0 && len + line.len() as u64 > ROTATE_AT {
        let dir_fd = fsutil::open_private_dir(dir)?;
        rustix::fs::renameat(&dir_fd, LOG_FILE, &dir_fd, OLD_FILE)
            .with_context(|| format!("rotating {}", path.display()))?;
        file = fsutil::open_private(&path, Access::Append, 0o600)?;
        if let Some(carry) = spent() {
            let carry = Carry { ts: crate::time::now_rfc3339(), carry };
            let mut first = serde_json::to_vec(&carry)?;
            first.push(b'\n');
            first.extend_from_slice(&line);
            line = first;
        }
    }
    let written = file.write_all(&line);
    *open = Some(OpenLog { path: path.clone(), file });
    written.with_context(|| format!("appending to {}", path.display()))
}

/// The log file kept open by [`append_carrying`].
struct OpenLog {
    path: std::path::PathBuf,
    file: std::fs::File,
}

/// Whether a raw line is a [`Carry`] (a record never has the key; a string
/// inside one cannot hold an unescaped quote).
fn is_carry(line: &str) -> bool {
    line.contains("\"carry\":{")
}

/// The last `lines` records of the log (the rotated file too when needed),
/// raw, oldest first.
pub fn tail(dir: &Path, lines: usize) -> Result<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for name in [LOG_FILE, OLD_FILE] {
        if out.len() >= lines {
            break;
        }
        let text = read(&dir.join(name))?;
        let mut these: Vec<String> = text
            .lines()
            .filter(|l| !l.trim().is_empty() && !is_carry(l))
            .map(str::to_owned)
            .collect();
        let keep = lines - out.len();
        if these.len() > keep {
            these.drain(..these.len() - keep);
        }
        these.append(&mut out);
        out = these;
    }
    Ok(out)
}

/// Every record at or after `since`, oldest first; lines that do not parse
/// (a torn last line after a crash) are skipped.
pub fn read_since(dir: &Path, since: SystemTime) -> Result<Vec<Record>> {
    let mut records = Vec::new();
    for name in [OLD_FILE, LOG_FILE] {
        records.extend(records_in(&read(&dir.join(name))?, since));
    }
    Ok(records)
}

/// What a spend rebuild starts from: the last [`Carry`] of the current file
/// and the records after it; without one, every record since `since`.
pub fn spend_since(dir: &Path, since: SystemTime) -> Result<(Option<Carry>, Vec<Record>)> {
    let text = read(&dir.join(LOG_FILE))?;
    let mut carry = None;
    let mut after = 0;
    let mut at = 0;
    for line in text.split_inclusive('\n') {
        at += line.len();
        if is_carry(line)
            && let Ok(found) = serde_json::from_slice::<Carry>(line.as_bytes())
        {
            carry = Some(found);
            after = at;
        }
    }
    match carry {
        Some(carry) => Ok((Some(carry), records_in(&text[after..], since))),
        None => Ok((None, read_since(dir, since)?)),
    }
}

fn records_in(text: &str, since: SystemTime) -> Vec<Record> {
    let since = jiff::Timestamp::try_from(since).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    text.lines()
        .filter(|l| !is_carry(l))
        .filter_map(|l| serde_json::from_slice::<Record>(l.as_bytes()).ok())
        .filter(|r| r.ts.parse::<jiff::Timestamp>().is_ok_and(|ts| ts >= since))
        .collect()
}

/// A log file's text ("" when missing).
fn read(path: &Path) -> Result<String> {
    let bytes = fsutil::read_private(path, ROTATE_AT + (1 << 20))?.unwrap_or_default();
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An append with nothing to carry over.
    fn append(dir: &Path, record: &Record) -> Result<()> {
        append_carrying(dir, record, &|| None)
    }

    fn record(ts: &str, cost: Option<f64>) -> Record {
        Record {
            ts: ts.into(),
            path: "/v1/messages".into(),
            rule: None,
            model: "m".into(),
            attempts: vec![Attempt {
                target: "p/m".into(),
                status: Some(200),
                error: None,
                ms: 1.0,
            }],
            status: 200,
            target: Some("p/m".into()),
            ttfb_ms: Some(1.0),
            ms: 2.0,
            tokens: Some(ProxyTokens { input: 1, output: 2, cache_read: 0, cache_write: 0 }),
            cost_usd: cost,
            stream: false,
        }
    }

    fn temp(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir()
            .join(format!("ringlet-proxylog-{}-{name}", std::process::id()))
            .join("log");
        let _ = std::fs::remove_dir_all(dir.parent().unwrap());
        dir
    }

    #[test]
    fn appends_private_lines_and_reads_them_back() {
        use std::os::unix::fs::PermissionsExt;
        let dir = temp("append");
        append(&dir, &record("2026-12-01T10:00:00.000Z", Some(0.5))).unwrap();
        append(&dir, &record("2026-12-07T10:00:00.000Z", None)).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join(LOG_FILE)), 0o600);
        let since = "2026-12-05T00:00:00Z".parse::<jiff::Timestamp>().unwrap();
        let recent = read_since(&dir, since.into()).unwrap();
        assert_eq!(recent, vec![record("2026-12-07T10:00:00.000Z", None)]);
        assert_eq!(tail(&dir, 1).unwrap().len(), 1);
        assert_eq!(tail(&dir, 5).unwrap().len(), 2);
        std::fs::remove_dir_all(dir.parent().unwrap()).unwrap();
    }

    #[test]
    fn a_log_moved_away_is_not_written_to_again() {
        let dir = temp("moved");
        append(&dir, &record("2026-12-07T10:00:00.000Z", None)).unwrap();
        std::fs::rename(dir.join(LOG_FILE), dir.join("kept.jsonl")).unwrap();
        append(&dir, &record("2026-12-07T11:00:00.000Z", None)).unwrap();
        let lines = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap().lines().count();
        assert_eq!((lines("kept.jsonl"), lines(LOG_FILE)), (1, 1));
        std::fs::remove_dir_all(dir.parent().unwrap()).unwrap();
    }

    #[test]
    fn a_link_at_the_log_name_is_refused() {
        let dir = temp("link");
        std::fs::create_dir_all(&dir).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", dir.join(LOG_FILE)).unwrap();
        let err = append(&dir, &record("2026-12-07T10:00:00.000Z", None)).unwrap_err();
        assert!(format!("{err:#}").contains("symbolic link"), "{err:#}");
        std::fs::remove_dir_all(dir.parent().unwrap()).unwrap();
    }

    #[test]
    fn a_rotation_starts_the_new_file_with_the_spend_so_far() {
        let dir = temp("carry");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(LOG_FILE), vec![b'x'; ROTATE_AT as usize - 10]).unwrap();
        let spent = Spent {
            day: "2026-12-07".into(),
            today_usd: 2.0,
            month_usd: 9.0,
            ..Default::default()
        };
        let r1 = record("2026-12-07T10:00:00.000Z", Some(1.0));
        append_carrying(&dir, &r1, &|| Some(spent.clone())).unwrap();
        let r2 = record("2026-12-07T11:00:00.000Z", Some(0.5));
        append_carrying(&dir, &r2, &|| panic!("no rotation, no carry")).unwrap();
        let (carry, after) = spend_since(&dir, SystemTime::UNIX_EPOCH).unwrap();
        assert_eq!(carry.unwrap().carry, spent);
        assert_eq!(after, vec![r1, r2]);
        // Neither `proxy logs` nor the record readers see the carry line.
        let last = tail(&dir, 2).unwrap();
        assert!(last.iter().all(|l| l.contains("\"status\":200")), "{last:?}");
        assert_eq!(read_since(&dir, SystemTime::UNIX_EPOCH).unwrap().len(), 2);
        std::fs::remove_dir_all(dir.parent().unwrap()).unwrap();
    }

    #[test]
    fn a_full_log_rotates_to_one_old_file() {
        let dir = temp("rotate");
        std::fs::create_dir_all(&dir).unwrap();
        // A log just under the limit: the next line rotates it.
        let filler = vec![b'x'; ROTATE_AT as usize - 10];
        std::fs::write(dir.join(LOG_FILE), &filler).unwrap();
        append(&dir, &record("2026-12-07T10:00:00.000Z", Some(1.0))).unwrap();
        assert_eq!(std::fs::metadata(dir.join(OLD_FILE)).unwrap().len(), filler.len() as u64);
        let lines = tail(&dir, 1).unwrap();
        assert!(lines[0].contains("\"cost_usd\":1.0"), "{lines:?}");
        append(&dir, &record("2026-12-07T11:00:00.000Z", Some(2.0))).unwrap();
        assert_eq!(read_since(&dir, SystemTime::UNIX_EPOCH).unwrap().len(), 2);
        std::fs::remove_dir_all(dir.parent().unwrap()).unwrap();
    }
}

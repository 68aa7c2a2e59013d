//! OpenCode's usage, read from where OpenCode itself keeps it: the `message`
//! table of its SQLite database (`opencode.db`, and `opencode-<channel>.db`
//! for other release channels) and, for data written before OpenCode moved
//! to SQLite, the legacy `storage/message/<sessionID>/msg_*.json` files
//! (agent-formats.md 6.3).
//!
//! This file owns the OpenCode formats and nothing else: it finds the files
//! in a data dir, says whether a database changed ([`change_cursor`]), reads
//! the rows updated since a cursor ([`read_db`]) and turns one message into
//! an [`Entry`] ([`parse_message`]). Which data dirs exist, when to read and
//! what was read before belong to the scanner (`scan`); counting each message
//! once across the database and the legacy files belongs to the store, which
//! dedups on [`Entry::key`] (the message id, the same in both places).
//!
//! The database is the user's and OpenCode has it open while it runs, so it
//! is opened read-only and never written, created or locked against OpenCode.
//! It may also be an agent's: a sandboxed OpenCode can write any file in its
//! profile, so [`read_db`] reads it as hostile input, within a budget, and
//! refuses ([`Refused`]) what is not a real table of a regular file.

use std::borrow::Cow;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use serde::Deserialize;

use super::{Entry, Tokens, key_hash};

/// One message row or legacy file -> an Entry; None for non-assistant
/// messages, messages without `time.completed` (partial counts), all-zero
/// tokens, or data that is not the expected JSON.
///
/// `id` and `session_id` are the row's columns (database) or the file stem
/// and its parent directory's name (legacy file); the JSON's own `id` and
/// `sessionID` win when it has them, because legacy files always carry them
/// and database rows keep them only in the columns.
pub fn parse_message(id: &str, session_id: &str, data: &[u8]) -> Option<Entry<'static>> {
    to_entry(id, session_id, decode(data)?)
}

/// The database files in an OpenCode data dir: `opencode.db` and
/// `opencode-*.db` (`opencode-stable.db`, ...; never the `-wal`/`-shm` files),
/// sorted by name. An unreadable or missing dir has none.
pub fn db_files(data_dir: &Path) -> Vec<PathBuf> {
    let Ok(dir) = fs::read_dir(data_dir) else { return Vec::new() };
    let mut files: Vec<PathBuf> = dir
        .filter_map(|entry| entry.ok())
        .filter(|entry| {
            let name = entry.file_name();
            let Some(name) = name.to_str() else { return false };
            name == "opencode.db" || (name.starts_with("opencode-") && name.ends_with(".db"))
        })
        .map(|entry| entry.path())
        // Everything but directories: a linked database is still a
        // database, and a FIFO or a device in its place is refused by the
        // reader and reported, not silently passed over.
        .filter(|path| !path.is_dir())
        .collect();
    files.sort();
    files
}

/// The change cursor of a WAL-mode database: (max mtime in ns of the db and
/// its `-wal` file, size of db + size of wal). The scanner skips the db when
/// it is unchanged. None when the db itself cannot be stat'ed.
///
/// OpenCode's commits land in the `-wal` file and reach the db only at a
/// checkpoint, so the db's own mtime misses most writes. The size is there
/// because mtimes can be coarse (a few ms on some filesystems) while an
/// append always grows the WAL. The `-shm` file is left out on purpose:
/// readers, this one included, write their read marks into it, so it would
/// make every scan look like a change.
pub fn change_cursor(db: &Path) -> Option<(i128, u64)> {
    let meta = fs::metadata(db).ok()?;
    let mut mtime = mtime_ns(&meta);
    let mut size = meta.len();
    if let Ok(wal) = fs::metadata(sidecar(db, "-wal")) {
        mtime = mtime.max(mtime_ns(&wal));
        size += wal.len();
    }
    Some((mtime, size))
}

/// What one [`read_db`] call found.
// Declared without SQLite too, so code that names it builds either way;
// only `read_db` makes one.
#[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
#[derive(Debug, Default)]
pub struct DbBatch {
    /// Messages counted (handed to the caller's sink).
    pub entries: u64,
    /// The highest `time_updated` seen, counted or not: the next call's
    /// `since_updated_ms`. The `since_updated_ms` passed in when no row was
    /// newer.
    pub max_updated_ms: i64,
    /// Rows whose data did not parse (not JSON, or not the JSON we know).
    /// Rows that parsed but are not counted (user messages, unfinished
    /// ones) are not in here: they are normal.
    pub skipped_rows: u64,
}

/// A database that is not read, and will not be until it changes: not a
/// regular file, not OpenCode's shape, or over the read budget. Distinct
/// from a passing failure (a lock held too long, an I/O error), which the
/// next scan retries.
#[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
#[derive(Debug)]
pub struct Refused {
    /// The reason shown to the user.
    pub why: String,
    /// It cost a whole read budget to find out (so trying it again after
    /// each change is rationed); the other reasons cost next to nothing.
    pub over_budget: bool,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.why)
    }
}

impl std::error::Error for Refused {}

/// A read cut short by the scan's own time for databases (see
/// [`read_db`]'s `scan_deadline`): nothing is wrong with the database, the
/// next scan reads it.
#[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
#[derive(Debug)]
pub struct Deferred;

impl std::fmt::Display for Deferred {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("not read this scan: the scan's time for databases is spent")
    }
}

impl std::error::Error for Deferred {}

/// How long a read waits for a lock OpenCode holds (a checkpoint, a WAL
/// recovery) before giving up until the next scan. Short, because the scan
/// runs on the daemon's watcher thread and will come back on the next write.
#[cfg(feature = "sqlite")]
const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);

/// The work one read may do, in SQLite VM instructions. A real database
/// costs 8 per message row (measured: 4 columns, a compare, a step), so
/// this reads 2.5 million messages, and stops an endless query (a table
/// whose pages point at each other, a view that got past the checks)
/// within a second or so of CPU.
#[cfg(feature = "sqlite")]
pub const OP_BUDGET: u64 = 20_000_000;
/// And the wall-clock time one read may take, parsing included: what the
/// instruction count cannot see (slow storage, huge rows).
#[cfg(feature = "sqlite")]
pub const TIME_BUDGET: std::time::Duration = std::time::Duration::from_secs(5);
/// The largest value (a row's `data`) SQLite will hand over; a message's
/// JSON is a few KB. Also bounds what any SQL function may allocate.
#[cfg(feature = "sqlite")]
const MAX_VALUE: i32 = 16 << 20;
/// SQLite's whole heap (it is process-wide; only this reader uses SQLite):
/// a read needs the 8 MiB page cache, one row of values up to
/// [`MAX_VALUE`] and the schema. A schema planted to be huge (triggers of
/// hundreds of thousands of statements are parsed before the first query)
/// fails here with "out of memory" and is refused like one over its time
/// budget. The process's resident memory grows by about 1.4 times this.
#[cfg(feature = "sqlite")]
const MAX_HEAP: i64 = 64 << 20;
/// A `-wal` file above this is not read: OpenCode checkpoints at 4 MB, and
/// SQLite reads the whole WAL before the first row, outside the budget.
#[cfg(feature = "sqlite")]
const MAX_WAL: u64 = 1 << 30;
/// Entries handed to the sink at once, so that a table of millions of
/// rows never sits in memory whole.
#[cfg(feature = "sqlite")]
const SINK_BATCH: usize = 4096;

/// Messages with `time_updated > since_updated_ms`, read-only: never
/// creates, writes or locks the user's database (busy timeout ~1 s), and
/// works while OpenCode holds it open in WAL mode. Counted entries go to
/// `sink` in batches, in no particular order. Past `scan_deadline` (the
/// whole scan's time for databases, so that many databases cannot add
/// their budgets up) the read stops with [`Deferred`].
///
/// The database may have been written by an agent in a sandbox, so it is
/// read as hostile input: the file (and its `-wal`/`-shm`) must be regular
/// files, `message` must be a real table (not a view, not a virtual table,
/// no generated columns), the read stops at [`OP_BUDGET`] and
/// [`TIME_BUDGET`], there is no `ORDER BY` (so no sorter and no temp
/// files: temp storage is in memory, and bounded), values are capped at
/// 16 MiB and the page cache at 8 MiB. Each of those is a [`Refused`]
/// error; the entries already handed to the sink were real rows.
///
/// `time_updated` is OpenCode's wall clock, so a message completed just as
/// the clock stepped back can carry a smaller value than one already read.
/// Re-reading a little behind the stored cursor costs nothing (the same
/// message comes back with the same key), so callers may keep a margin.
#[cfg(feature = "sqlite")]
pub fn read_db(
    path: &Path,
    since_updated_ms: i64,
    scan_deadline: std::time::Instant,
    sink: &mut dyn FnMut(&[Entry<'static>]),
) -> anyhow::Result<DbBatch> {
    use std::sync::atomic::{AtomicBool, Ordering};

    sqlite::check_files(path)?;
    if std::time::Instant::now() >= scan_deadline {
        return Err(Deferred.into());
    }
    // A FIFO swapped in after the check would block SQLite's open (and the
    // scan, and every report waiting on it) for ever: a watchdog frees it.
    let done = AtomicBool::new(false);
    std::thread::scope(|scope| {
        // Without a thread to spare (a process limit), read without one.
        let watchdog = std::thread::Builder::new()
            .name("usage-fifo-watchdog".into())
            .spawn_scoped(scope, || sqlite::release_fifos(path, &done))
            .ok();
        let result = read_checked(path, since_updated_ms, scan_deadline, sink);
        done.store(true, Ordering::SeqCst);
        if let Some(watchdog) = watchdog {
            watchdog.thread().unpark();
        }
        result
    })
}

/// [`read_db`] once the files are checked.
#[cfg(feature = "sqlite")]
fn read_checked(
    path: &Path,
    since_updated_ms: i64,
    scan_deadline: std::time::Instant,
    sink: &mut dyn FnMut(&[Entry<'static>]),
) -> anyhow::Result<DbBatch> {
    use anyhow::Context;

    let budget = sqlite::Budget::new(scan_deadline);
    let conn = sqlite::open_read_only(path)
        .with_context(|| format!("opening OpenCode database {}", path.display()))?;
    let refuse = |e: rusqlite::Error| -> anyhow::Error {
        if budget.deferred() {
            return anyhow::Error::new(Deferred);
        }
        match budget.refusal(&e) {
            Some(refused) => anyhow::Error::new(refused),
            None => anyhow::Error::new(e),
        }
    };
    budget
        .apply(&conn)
        .map_err(refuse)
        .with_context(|| format!("reading OpenCode database {}", path.display()))?;
    conn.busy_timeout(BUSY_TIMEOUT).context("setting the busy timeout")?;
    // Before any statement: the first one also parses the schema.
    sqlite::check_schema(&conn).map_err(|e| match e.downcast::<rusqlite::Error>() {
        Ok(e) => refuse(e),
        Err(e) => e,
    })?;
    // One statement, so one read transaction: a consistent snapshot even
    // while OpenCode keeps committing to the WAL. No ORDER BY: on a table
    // without an index on `time_updated` it would sort in a temp b-tree.
    let mut stmt = conn
        .prepare("SELECT id, session_id, time_updated, data FROM message WHERE time_updated > ?1")
        .map_err(refuse)
        .with_context(|| format!("querying messages in {}", path.display()))?;
    let mut rows = stmt
        .query([since_updated_ms])
        .map_err(refuse)
        .with_context(|| format!("querying messages in {}", path.display()))?;
    let mut batch = DbBatch { max_updated_ms: since_updated_ms, ..DbBatch::default() };
    let mut entries = Vec::new();
    while let Some(row) =
        rows.next().map_err(refuse).with_context(|| format!("reading {}", path.display()))?
    {
        // Column types are not enforced by SQLite, so a row of the wrong
        // shape is skipped and counted rather than ending the whole read.
        let updated = match row.get_ref(2)? {
            rusqlite::types::ValueRef::Integer(ms) => Some(ms),
            rusqlite::types::ValueRef::Real(ms) => Some(ms as i64),
            _ => None,
        };
        if let Some(updated) = updated {
            batch.max_updated_ms = batch.max_updated_ms.max(updated);
        }
        let id = row.get_ref(0)?.as_str().ok();
        let session = row.get_ref(1)?.as_str_or_null().ok().map(Option::unwrap_or_default);
        let message = row.get_ref(3)?.as_bytes().ok().and_then(decode);
        match (id, session, message) {
            (Some(id), Some(session), Some(message)) => {
                entries.extend(to_entry(id, session, message));
                if entries.len() >= SINK_BATCH {
                    batch.entries += entries.len() as u64;
                    sink(&entries);
                    entries.clear();
                }
            }
            _ => batch.skipped_rows += 1,
        }
    }
    batch.entries += entries.len() as u64;
    sink(&entries);
    Ok(batch)
}

/// Legacy layout: `storage/message/<sessionID>/msg_*.json` (same JSON as
/// `data`), sorted by path. OpenCode versions that write SQLite migrate
/// these into the database, so the same message can be found in both; the
/// store counts it once. The directories on the way go to `dirs`, for the
/// usage watcher.
pub fn legacy_message_files(data_dir: &Path, dirs: &mut Vec<PathBuf>) -> Vec<PathBuf> {
    let storage = data_dir.join("storage");
    let Ok(sessions) = fs::read_dir(storage.join("message")) else {
        // Watched for the creation of `message` (or of `storage` itself).
        if storage.is_dir() {
            dirs.push(storage);
        }
        return Vec::new();
    };
    dirs.push(storage.join("message"));
    dirs.push(storage);
    let mut files = Vec::new();
    for session in sessions.filter_map(|entry| entry.ok()) {
        let Ok(messages) = fs::read_dir(session.path()) else { continue };
        dirs.push(session.path());
        for message in messages.filter_map(|entry| entry.ok()) {
            let name = message.file_name();
            let Some(name) = name.to_str() else { continue };
            if name.starts_with("msg_") && name.ends_with(".json") {
                files.push(message.path());
            }
        }
    }
    files.sort();
    files
}

/// The part of a message's JSON that usage needs. Everything is optional
/// but `role`, because a user message has no tokens, model or cost, and
/// unknown fields are ignored so that new OpenCode versions still parse.
#[derive(Deserialize)]
struct Message {
    role: String,
    /// Present in legacy files only.
    id: Option<String>,
    /// Present in legacy files only.
    #[serde(rename = "sessionID")]
    session_id: Option<String>,
    #[serde(rename = "modelID")]
    model_id: Option<String>,
    /// USD as OpenCode priced it; 0 when it did not know the model.
    cost: Option<f64>,
    tokens: Option<MessageTokens>,
    time: Option<MessageTime>,
}

#[derive(Deserialize)]
struct MessageTokens {
    input: Option<u64>,
    output: Option<u64>,
    reasoning: Option<u64>,
    cache: Option<MessageCache>,
}

#[derive(Deserialize)]
struct MessageCache {
    read: Option<u64>,
    write: Option<u64>,
}

#[derive(Deserialize)]
struct MessageTime {
    created: Option<i64>,
    completed: Option<i64>,
}

/// None when `data` is not the JSON of a message.
fn decode(data: &[u8]) -> Option<Message> {
    serde_json::from_slice(data).ok()
}

/// The usage of one decoded message, if it is a finished assistant reply
/// that used any tokens.
fn to_entry(id: &str, session_id: &str, message: Message) -> Option<Entry<'static>> {
    if message.role != "assistant" {
        return None;
    }
    let time = message.time?;
    // Until the reply finishes, OpenCode's counts are partial; the finished
    // row comes back with a newer `time_updated` and is counted then.
    time.completed?;
    let timestamp_ms = time.created.or(time.completed)?;
    let raw = message.tokens?;
    let cache = raw.cache.unwrap_or(MessageCache { read: None, write: None });
    // OpenCode's `input` already excludes the cache, our meaning. Reasoning
    // is kept beside `output`, never added to it: OpenCode stores it
    // separately and whether a provider's output already contains it
    // varies, so adding it could bill it twice (6.3, opencode#24268).
    let tokens = Tokens {
        input: raw.input.unwrap_or(0),
        output: raw.output.unwrap_or(0),
        cache_write_5m: cache.write.unwrap_or(0),
        cache_write_1h: 0,
        cache_read: cache.read.unwrap_or(0),
        reasoning: raw.reasoning.unwrap_or(0),
    };
    if tokens == Tokens::default() {
        return None;
    }
    let id = message.id.filter(|s| !s.is_empty()).unwrap_or_else(|| id.to_owned());
    let session =
        message.session_id.filter(|s| !s.is_empty()).unwrap_or_else(|| session_id.to_owned());
    Some(Entry {
        key: key_hash(&[b"opencode", id.as_bytes()]),
        message: 0,
        sidechain: false,
        timestamp_ms,
        // `providerID` stays out of the name: the pricing resolver tries
        // provider prefixes itself.
        model: message
            .model_id
            .filter(|m| !m.is_empty())
            .map_or(Cow::Borrowed("unknown"), Cow::Owned),
        session: Cow::Owned(session),
        tokens,
        fast: false,
        // 0 means OpenCode had no price for the model, not that the reply
        // was free: leave it to our pricing (ccusage #1348).
        cost_usd: message.cost.filter(|c| c.is_finite() && *c > 0.0),
    })
}

/// `<db>-wal` or `<db>-shm`: SQLite appends the suffix to the whole name.
fn sidecar(db: &Path, suffix: &str) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

fn mtime_ns(meta: &fs::Metadata) -> i128 {
    let Ok(mtime) = meta.modified() else { return 0 };
    match mtime.duration_since(UNIX_EPOCH) {
        Ok(after) => after.as_nanos() as i128,
        Err(before) => -(before.duration().as_nanos() as i128),
    }
}

#[cfg(feature = "sqlite")]
mod sqlite {
    //! Opening the user's database without touching it, and reading it as
    //! hostile input.

    use std::fs;
    use std::path::{Path, PathBuf};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::{Duration, Instant};

    use rusqlite::limits::Limit;
    use rusqlite::{Connection, ErrorCode, OpenFlags};

    use super::{MAX_HEAP, MAX_VALUE, MAX_WAL, OP_BUDGET, Refused, TIME_BUDGET, sidecar};

    /// How often (in VM instructions) the progress handler checks the budget.
    const CHECK_EVERY: u64 = 10_000;

    fn refused(why: impl Into<String>) -> anyhow::Error {
        anyhow::Error::new(Refused { why: why.into(), over_budget: false })
    }

    /// The database and its `-wal` and `-shm` files, where SQLite will open
    /// them: it resolves a linked database first, and its sidecars sit next
    /// to the target.
    fn files(path: &Path) -> [PathBuf; 3] {
        let real = fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        [sidecar(&real, "-wal"), sidecar(&real, "-shm"), real]
    }

    /// Refuses a database that is not a regular file (a FIFO would block
    /// SQLite's open forever, a device link would be read for ever), whose
    /// sidecars are not regular files, or whose WAL SQLite would read whole
    /// before the budget could stop it.
    pub(super) fn check_files(path: &Path) -> anyhow::Result<()> {
        let meta = fs::metadata(path)?;
        if !meta.is_file() {
            return Err(refused("not a regular file"));
        }
        let [wal, shm, _] = files(path);
        for (file, name) in [(wal, "-wal"), (shm, "-shm")] {
            match fs::metadata(&file) {
                Ok(m) if !m.is_file() => {
                    return Err(refused(format!("its {name} file is not a regular file")));
                }
                Ok(m) if name == "-wal" && m.len() > MAX_WAL => {
                    return Err(refused(format!("its -wal file is over {} MiB", MAX_WAL >> 20)));
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// While `done` is false, and once the read has taken a second: opens
    /// for writing, without blocking, any of the database's files that is a
    /// FIFO, then closes it. A FIFO swapped in between [`check_files`] and
    /// SQLite's own open (which blocks until a writer comes) is released
    /// that way: SQLite then sees an empty file and the read fails.
    pub(super) fn release_fifos(path: &Path, done: &AtomicBool) {
        use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
        let started = Instant::now();
        while !done.load(Ordering::SeqCst) {
            std::thread::park_timeout(Duration::from_millis(250));
            if done.load(Ordering::SeqCst) || started.elapsed() < Duration::from_secs(1) {
                continue;
            }
            for file in files(path) {
                if fs::metadata(&file).is_ok_and(|m| m.file_type().is_fifo()) {
                    let flags = (rustix::fs::OFlags::NONBLOCK | rustix::fs::OFlags::NOCTTY).bits();
                    // Not O_TRUNC: a regular file swapped back in between
                    // is opened and closed, never changed.
                    let _ =
                        fs::OpenOptions::new().write(true).custom_flags(flags as i32).open(&file);
                }
            }
        }
    }

    /// The per-read budget: SQLite's progress handler counts VM
    /// instructions and the time since the read began, and interrupts the
    /// statement past either.
    pub(super) struct Budget {
        interrupted: Arc<AtomicBool>,
        started: Instant,
        /// The scan's deadline for databases, when it comes before this
        /// read's own.
        scan_deadline: Option<Instant>,
    }

    impl Budget {
        pub(super) fn new(scan_deadline: Instant) -> Budget {
            let started = Instant::now();
            Budget {
                interrupted: Arc::new(AtomicBool::new(false)),
                started,
                scan_deadline: Some(scan_deadline).filter(|d| *d < started + TIME_BUDGET),
            }
        }

        /// Interrupted by the scan's deadline rather than by this read's
        /// own budget: the database is not to blame.
        pub(super) fn deferred(&self) -> bool {
            self.interrupted.load(Ordering::SeqCst)
                && self.scan_deadline.is_some_and(|d| Instant::now() >= d)
        }

        /// Installs the handler and the caps on `conn`, before any
        /// statement (the first one also parses the schema, which the
        /// budget then covers too).
        pub(super) fn apply(&self, conn: &Connection) -> rusqlite::Result<()> {
            conn.set_limit(Limit::SQLITE_LIMIT_LENGTH, MAX_VALUE)?;
            conn.set_limit(Limit::SQLITE_LIMIT_LIKE_PATTERN_LENGTH, 256)?;
            let flag = self.interrupted.clone();
            let deadline = self.scan_deadline.unwrap_or(self.started + TIME_BUDGET);
            let mut ops = 0u64;
            conn.progress_handler(
                CHECK_EVERY as i32,
                Some(move || {
                    ops += CHECK_EVERY;
                    let over = ops > OP_BUDGET || Instant::now() > deadline;
                    if over {
                        flag.store(true, Ordering::SeqCst);
                    }
                    over
                }),
            );
            // Temp tables and sorts in memory (none is expected: the query
            // is one scan of a real table), never in a file anywhere; a
            // small page cache; no mmap; no functions called from the
            // schema; nothing written; the heap capped at [`MAX_HEAP`].
            // The heap cap and `trusted_schema` come first: some pragmas
            // (`cache_size`) load the schema, which is where a hostile
            // database's cost starts.
            conn.execute_batch(&format!(
                "PRAGMA hard_heap_limit = {MAX_HEAP}; PRAGMA trusted_schema = OFF; \
                 PRAGMA query_only = ON; PRAGMA temp_store = MEMORY; \
                 PRAGMA mmap_size = 0; PRAGMA automatic_index = OFF; \
                 PRAGMA cache_size = -8192;"
            ))
        }

        /// Why `e` means the database is refused, when it does: the budget
        /// ran out, or the file is not a database SQLite will read.
        pub(super) fn refusal(&self, e: &rusqlite::Error) -> Option<Refused> {
            if self.interrupted.load(Ordering::SeqCst) {
                let why = format!(
                    "over the read budget ({} million SQLite steps or {} s); \
                     not read again until it changes",
                    OP_BUDGET / 1_000_000,
                    TIME_BUDGET.as_secs()
                );
                return Some(Refused { why, over_budget: true });
            }
            let why = match e.sqlite_error_code() {
                // Out of heap costs what a read over its time budget does
                // (the schema parse before it cannot be interrupted), so it
                // is rationed the same way, not read again at every scan.
                Some(ErrorCode::OutOfMemory) => {
                    let why = format!(
                        "over the memory budget ({} MiB of SQLite heap); \
                         not read again until it changes",
                        MAX_HEAP >> 20
                    );
                    return Some(Refused { why, over_budget: true });
                }
                Some(ErrorCode::TooBig) => format!("a value over {} MiB", MAX_VALUE >> 20),
                Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => e.to_string(),
                _ => return None,
            };
            Some(Refused { why, over_budget: false })
        }
    }

    /// `message` must be a real table: not a view (whose query could run
    /// for ever), not a virtual table (whose module could do anything),
    /// and without generated columns (computed on read).
    pub(super) fn check_schema(conn: &Connection) -> anyhow::Result<()> {
        let mut stmt = conn.prepare(
            "SELECT type, coalesce(sql, '') FROM sqlite_master \
             WHERE name = 'message' COLLATE NOCASE",
        )?;
        let found: Vec<(String, String)> =
            stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<rusqlite::Result<_>>()?;
        match found.as_slice() {
            [] => return Err(refused("no `message` table: not an OpenCode database")),
            [(kind, sql)] if kind == "table" => {
                let words: Vec<String> =
                    sql.split_whitespace().take(2).map(str::to_ascii_uppercase).collect();
                if words.get(1).is_some_and(|w| w == "VIRTUAL") {
                    return Err(refused("`message` is a virtual table"));
                }
            }
            [(kind, _)] => return Err(refused(format!("`message` is a {kind}, not a table"))),
            _ => return Err(refused("more than one `message`")),
        }
        let mut stmt = conn.prepare("SELECT hidden FROM pragma_table_xinfo('message')")?;
        let hidden: Vec<i64> =
            stmt.query_map([], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?;
        if hidden.iter().any(|&h| h != 0) {
            return Err(refused("`message` has generated or hidden columns"));
        }
        Ok(())
    }

    /// Opens `path` read-only. A read-only connection still creates the
    /// `-wal` and `-shm` files of a WAL-mode database when they are missing
    /// (SQLite >= 3.22), and leaves them behind. Missing is the normal state
    /// when OpenCode is not running: its last connection deletes them on
    /// close. So without a `-wal` file the database is opened `immutable`,
    /// which reads the file as it is and creates nothing.
    ///
    /// Immutable also skips locking. That is safe here: no `-wal` file means
    /// no OpenCode connection has read the database, and one that starts
    /// during the read commits to a new WAL, not to the db file; only a
    /// checkpoint writes the db, and one cannot follow within the
    /// milliseconds a read takes. (A rollback-journal database being written
    /// right then could read torn; OpenCode always runs in WAL mode, and
    /// the next change reads it again.)
    ///
    /// The journal mode is deliberately not checked by reading the header:
    /// closing any other descriptor of the db file drops every POSIX lock
    /// this process holds on it, including those of a connection another
    /// scan worker has open on the same file through a second path.
    pub(super) fn open_read_only(path: &Path) -> rusqlite::Result<Connection> {
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let no_wal = std::fs::symlink_metadata(sidecar(path, "-wal"))
            .is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound);
        if no_wal {
            Connection::open_with_flags(immutable_uri(path), flags | OpenFlags::SQLITE_OPEN_URI)
        } else {
            Connection::open_with_flags(path, flags)
        }
    }

    /// `file:<path>?mode=ro&immutable=1`, with every byte of the path that
    /// is not unreserved percent-encoded, so `?`, `#` and `%` in a directory
    /// name stay part of the path.
    fn immutable_uri(path: &Path) -> String {
        let mut uri = String::from("file:");
        for &b in path.as_os_str().as_encoded_bytes() {
            if b.is_ascii_alphanumeric() || b"/-._~".contains(&b) {
                uri.push(char::from(b));
            } else {
                uri.push_str(&format!("%{b:02X}"));
            }
        }
        uri.push_str("?mode=ro&immutable=1");
        uri
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn immutable_uri_escapes_query_characters() {
            assert_eq!(
                immutable_uri(Path::new("/a b/x?y#z%.db")),
                "file:/a%20b/x%3Fy%23z%25.db?mode=ro&immutable=1"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A unique directory under the system temp dir, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(name: &str) -> TempDir {
            use std::sync::atomic::{AtomicU32, Ordering};
            static NEXT: AtomicU32 = AtomicU32::new(0);
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let dir = std::env::temp_dir()
                .join(format!("ringlet-opencode-{}-{n}-{name}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).unwrap();
            TempDir(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    /// The assistant row OpenCode 1.18.33 really wrote (agents-verified.md):
    /// no `id` or `sessionID` inside `data`, `cost` 0 for a custom model.
    const REAL_ROW: &str = r#"{"parentID":"msg_2104c58b8001","role":"assistant","mode":"build","agent":"build","path":{"cwd":"/probe/q8/work","root":"/"},"cost":0,"tokens":{"total":168,"input":123,"output":45,"reasoning":0,"cache":{"write":0,"read":0}},"modelID":"claude-mock-1","providerID":"mockanthropic","time":{"created":1795569769278,"completed":1795569769895},"finish":"stop"}"#;

    fn assistant(cost: f64) -> String {
        format!(
            r#"{{"role":"assistant","modelID":"gpt-5","providerID":"openai","cost":{cost},"tokens":{{"input":100,"output":20,"reasoning":5,"cache":{{"read":300,"write":40}}}},"time":{{"created":1000,"completed":2000}}}}"#
        )
    }

    #[test]
    fn real_row_shape() {
        let e = parse_message("msg_real", "ses_defb3a77effeewqaGKMCcmq35a", REAL_ROW.as_bytes())
            .unwrap();
        assert_eq!(e.key, key_hash(&[b"opencode", b"msg_real"]));
        assert_eq!(e.message, 0);
        assert!(!e.sidechain && !e.fast);
        assert_eq!(e.session, "ses_defb3a77effeewqaGKMCcmq35a");
        assert_eq!(e.timestamp_ms, 1795569769278);
        assert_eq!(e.model, "claude-mock-1");
        assert_eq!(e.tokens, Tokens { input: 123, output: 45, ..Tokens::default() });
        // `cost: 0` is "unknown price", not "free".
        assert_eq!(e.cost_usd, None);
    }

    #[test]
    fn cost_zero_is_none_and_positive_is_kept() {
        let e = parse_message("m", "s", assistant(0.0).as_bytes()).unwrap();
        assert_eq!(e.cost_usd, None);
        let e = parse_message("m", "s", assistant(0.0123).as_bytes()).unwrap();
        assert_eq!(e.cost_usd, Some(0.0123));
        // Reasoning is information only, never added to output.
        assert_eq!(
            e.tokens,
            Tokens {
                input: 100,
                output: 20,
                cache_write_5m: 40,
                cache_write_1h: 0,
                cache_read: 300,
                reasoning: 5
            }
        );
        assert_eq!(e.model, "gpt-5");
    }

    #[test]
    fn user_incomplete_zero_and_foreign_messages_are_not_counted() {
        let user = r#"{"id":"msg_u","sessionID":"s","role":"user","time":{"created":1}}"#;
        assert_eq!(parse_message("m", "s", user.as_bytes()), None);
        let open = r#"{"role":"assistant","modelID":"x","tokens":{"input":10,"output":2},"time":{"created":1}}"#;
        assert_eq!(parse_message("m", "s", open.as_bytes()), None);
        let zero = r#"{"role":"assistant","modelID":"x","cost":0,"tokens":{"input":0,"output":0,"reasoning":0,"cache":{"read":0,"write":0}},"time":{"created":1,"completed":2}}"#;
        assert_eq!(parse_message("m", "s", zero.as_bytes()), None);
        assert_eq!(parse_message("m", "s", b"not json"), None);
        assert_eq!(parse_message("m", "s", b"[1,2]"), None);
        assert_eq!(parse_message("m", "s", br#"{"role":"assistant","tokens":"many"}"#), None);
    }

    #[test]
    fn legacy_message_file() {
        let tmp = TempDir::new("legacy");
        let dir = tmp.0.join("storage/message/ses_01J0XYZ");
        fs::create_dir_all(&dir).unwrap();
        let data = r#"{"id":"msg_01J0ABC","sessionID":"ses_01J0XYZ","role":"assistant","modelID":"deepseek-v4-pro","providerID":"deepseek",
 "cost":0.0023113,
 "tokens":{"input":3272,"output":383,"reasoning":419,"cache":{"read":52480,"write":0}},
 "time":{"created":1779755333700,"completed":1779755350639}}"#;
        fs::write(dir.join("msg_01J0ABC.json"), data).unwrap();
        fs::write(dir.join("notes.txt"), "x").unwrap();
        fs::create_dir_all(tmp.0.join("storage/session/proj")).unwrap();
        fs::write(tmp.0.join("storage/session/proj/ses_01J0XYZ.json"), "{}").unwrap();

        let files = legacy_message_files(&tmp.0, &mut Vec::new());
        assert_eq!(files, vec![dir.join("msg_01J0ABC.json")]);
        // The scanner passes the file stem and the parent dir's name; the
        // JSON's own ids win, so the key matches the database row's.
        let e = parse_message("wrong", "wrong", &fs::read(&files[0]).unwrap()).unwrap();
        assert_eq!(e.key, key_hash(&[b"opencode", b"msg_01J0ABC"]));
        assert_eq!(e.session, "ses_01J0XYZ");
        assert_eq!(e.cost_usd, Some(0.0023113));
        assert!(legacy_message_files(&tmp.0.join("missing"), &mut Vec::new()).is_empty());
    }

    #[test]
    fn db_files_are_the_databases_only() {
        let tmp = TempDir::new("dbfiles");
        for name in [
            "opencode.db",
            "opencode.db-wal",
            "opencode.db-shm",
            "opencode-stable.db",
            "opencode-stable.db-wal",
            "other.db",
            "opencode.json",
        ] {
            fs::write(tmp.0.join(name), "").unwrap();
        }
        fs::create_dir(tmp.0.join("opencode-dir.db")).unwrap();
        assert_eq!(
            db_files(&tmp.0),
            vec![tmp.0.join("opencode-stable.db"), tmp.0.join("opencode.db")]
        );
        assert!(db_files(&tmp.0.join("missing")).is_empty());
    }

    #[cfg(feature = "sqlite")]
    mod db {
        use std::time::{Duration, Instant};

        use rusqlite::Connection;

        use super::*;

        /// What [`read_db`] found, its entries collected.
        #[derive(Debug)]
        struct Read {
            entries: Vec<Entry<'static>>,
            max_updated_ms: i64,
            skipped_rows: u64,
        }

        fn read(path: &Path, since: i64) -> anyhow::Result<Read> {
            let mut entries = Vec::new();
            let deadline = Instant::now() + Duration::from_secs(60);
            let batch = read_db(path, since, deadline, &mut |e| entries.extend_from_slice(e))?;
            assert_eq!(batch.entries, entries.len() as u64);
            entries.sort_by_key(|e| e.timestamp_ms);
            Ok(Read {
                entries,
                max_updated_ms: batch.max_updated_ms,
                skipped_rows: batch.skipped_rows,
            })
        }

        /// A database built by a normal read-write connection, closed.
        fn fixture_db(dir: &Path, sql: &str) -> PathBuf {
            let path = dir.join("opencode.db");
            Connection::open(&path).unwrap().execute_batch(sql).unwrap();
            path
        }

        /// The SQL fixture of agent-formats.md 6.3.
        const FIXTURE_SQL: &str = r#"
CREATE TABLE session(id TEXT PRIMARY KEY, time_updated INTEGER);
CREATE TABLE message(id TEXT PRIMARY KEY, session_id TEXT, time_created INTEGER, time_updated INTEGER, data TEXT);
INSERT INTO session VALUES('ses_01J0XYZ',1779755350639);
INSERT INTO message VALUES('msg_01J0ABC','ses_01J0XYZ',1779755333700,1779755350639,'{"role":"assistant","modelID":"deepseek-v4-pro","providerID":"deepseek","cost":0.0023113,"tokens":{"input":3272,"output":383,"reasoning":419,"cache":{"read":52480,"write":0}},"time":{"created":1779755333700,"completed":1779755350639}}');
INSERT INTO message VALUES('msg_01J0DEF','ses_01J0XYZ',1779755360000,1779755360000,'{"role":"assistant","modelID":"deepseek-v4-pro","tokens":{"input":10,"output":2},"time":{"created":1779755360000}}');
"#;

        const TABLES: &str = "CREATE TABLE message(id TEXT PRIMARY KEY, session_id TEXT, \
                              time_created INTEGER, time_updated INTEGER, data TEXT);";

        fn insert(conn: &Connection, id: &str, updated: i64, data: &str) {
            conn.execute(
                "INSERT OR REPLACE INTO message VALUES(?1, 'ses_1', ?2, ?2, ?3)",
                rusqlite::params![id, updated, data],
            )
            .unwrap();
        }

        #[test]
        fn spec_fixture_counts_the_finished_message_only() {
            let tmp = TempDir::new("fixture");
            let db = fixture_db(&tmp.0, FIXTURE_SQL);
            let batch = read(&db, 0).unwrap();
            assert_eq!(batch.entries.len(), 1);
            assert_eq!(batch.skipped_rows, 0);
            assert_eq!(batch.max_updated_ms, 1779755360000);
            let e = &batch.entries[0];
            assert_eq!(e.key, key_hash(&[b"opencode", b"msg_01J0ABC"]));
            assert_eq!(e.session, "ses_01J0XYZ");
            assert_eq!(e.model, "deepseek-v4-pro");
            assert_eq!(e.timestamp_ms, 1779755333700);
            assert_eq!(e.tokens.input, 3272);
            assert_eq!(e.tokens.output, 383);
            assert_eq!(e.tokens.reasoning, 419);
            assert_eq!(e.tokens.cache_read, 52480);
            assert_eq!(e.tokens.total(), 3272 + 383 + 52480);
            assert_eq!(e.cost_usd, Some(0.0023113));
        }

        #[test]
        fn real_row_user_row_and_garbage() {
            let tmp = TempDir::new("rows");
            let db = fixture_db(&tmp.0, TABLES);
            let conn = Connection::open(&db).unwrap();
            insert(&conn, "msg_real", 10, REAL_ROW);
            insert(&conn, "msg_user", 11, r#"{"role":"user","time":{"created":11}}"#);
            insert(&conn, "msg_bad", 12, "{not json");
            conn.execute("INSERT INTO message VALUES('msg_null', 'ses_1', 13, 13, NULL)", [])
                .unwrap();
            drop(conn);
            let batch = read(&db, 0).unwrap();
            assert_eq!(batch.entries.len(), 1);
            assert_eq!(batch.entries[0].key, key_hash(&[b"opencode", b"msg_real"]));
            assert_eq!(batch.entries[0].session, "ses_1");
            assert_eq!(batch.skipped_rows, 2);
            assert_eq!(batch.max_updated_ms, 13);
        }

        #[test]
        fn since_returns_newer_rows_and_updates_keep_their_key() {
            let tmp = TempDir::new("since");
            let db = fixture_db(&tmp.0, TABLES);
            let conn = Connection::open(&db).unwrap();
            insert(&conn, "msg_a", 100, &assistant(0.0));
            insert(&conn, "msg_b", 200, &assistant(0.0));
            let first = read(&db, 0).unwrap();
            assert_eq!(first.entries.len(), 2);
            assert_eq!(first.max_updated_ms, 200);
            let key_a = first.entries[0].key;

            let nothing = read(&db, first.max_updated_ms).unwrap();
            assert!(nothing.entries.is_empty());
            assert_eq!(nothing.max_updated_ms, 200);

            // OpenCode rewrites a row as the reply grows; the row comes back
            // with the same key and the store keeps the larger one.
            insert(&conn, "msg_a", 300, &assistant(0.5));
            let next = read(&db, first.max_updated_ms).unwrap();
            assert_eq!(next.entries.len(), 1);
            assert_eq!(next.entries[0].key, key_a);
            assert_eq!(next.entries[0].cost_usd, Some(0.5));
            assert_eq!(next.max_updated_ms, 300);
        }

        #[test]
        fn wal_database_with_a_live_writer() {
            let tmp = TempDir::new("wal");
            let db = fixture_db(&tmp.0, TABLES);
            let writer = Connection::open(&db).unwrap();
            let mode: String =
                writer.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0)).unwrap();
            assert_eq!(mode, "wal");
            // No automatic checkpoint: the rows stay in the WAL only.
            writer.execute_batch("PRAGMA wal_autocheckpoint=0").unwrap();
            let before = change_cursor(&db).unwrap();
            insert(&writer, "msg_1", 1, &assistant(0.0));
            let one = change_cursor(&db).unwrap();
            assert_ne!(one, before);
            insert(&writer, "msg_2", 2, &assistant(0.0));
            let two = change_cursor(&db).unwrap();
            assert!(two.1 > one.1, "the WAL grew: {one:?} -> {two:?}");
            assert!(fs::metadata(sidecar(&db, "-wal")).unwrap().len() > 0);

            // A write transaction still open in OpenCode does not block the
            // read, and its uncommitted row is not seen.
            writer.execute_batch("BEGIN IMMEDIATE").unwrap();
            insert(&writer, "msg_3", 3, &assistant(0.0));
            let bytes = fs::read(&db).unwrap();
            let started = Instant::now();
            let batch = read(&db, 0).unwrap();
            assert_eq!(fs::read(&db).unwrap(), bytes);
            assert!(started.elapsed() < Duration::from_millis(900));
            let keys: Vec<u64> = batch.entries.iter().map(|e| e.key).collect();
            assert_eq!(
                keys,
                vec![key_hash(&[b"opencode", b"msg_1"]), key_hash(&[b"opencode", b"msg_2"])]
            );
            writer.execute_batch("COMMIT").unwrap();
            assert_eq!(read(&db, 2).unwrap().entries.len(), 1);
            // Reading did not move the cursor: a scan must not trigger one.
            let after = change_cursor(&db).unwrap();
            assert_eq!(read(&db, 3).unwrap().entries.len(), 0);
            assert_eq!(change_cursor(&db).unwrap(), after);
        }

        #[test]
        fn read_db_never_writes() {
            let tmp = TempDir::new("readonly");
            let db = fixture_db(&tmp.0, FIXTURE_SQL);
            // OpenCode's database is WAL-mode; once its last connection has
            // closed there is no -wal or -shm file. Reading must not create
            // them.
            let conn = Connection::open(&db).unwrap();
            conn.query_row("PRAGMA journal_mode=WAL", [], |_| Ok(())).unwrap();
            drop(conn);
            assert!(!sidecar(&db, "-wal").exists());
            let bytes = fs::read(&db).unwrap();
            let mtime = fs::metadata(&db).unwrap().modified().unwrap();
            let names = |dir: &Path| {
                let mut v: Vec<_> =
                    fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name()).collect();
                v.sort();
                v
            };
            let listing = names(&tmp.0);

            assert_eq!(read(&db, 0).unwrap().entries.len(), 1);
            assert_eq!(fs::read(&db).unwrap(), bytes);
            assert_eq!(fs::metadata(&db).unwrap().modified().unwrap(), mtime);
            assert_eq!(names(&tmp.0), listing);
        }

        fn refusal(path: &Path) -> String {
            let err = read(path, 0).expect_err("refused");
            match err.downcast_ref::<Refused>() {
                Some(refused) => refused.why.clone(),
                None => panic!("not a refusal: {err:#}"),
            }
        }

        /// The attack of issue 11: `message` is a view over an endless
        /// recursive CTE. It is refused before it is ever run, and a
        /// query that runs away anyway is stopped by the budget.
        #[test]
        fn views_virtual_tables_and_generated_columns_are_refused() {
            let tmp = TempDir::new("hostile");
            let endless = "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) \
                           SELECT 'm' || n AS id, 's' AS session_id, n AS time_created, \
                           n AS time_updated, '{}' AS data FROM r";
            let view = fixture_db(&tmp.0, &format!("CREATE VIEW message AS {endless};"));
            let started = Instant::now();
            assert!(refusal(&view).contains("view"), "{}", refusal(&view));
            assert!(started.elapsed() < Duration::from_secs(5));

            let dir = tmp.0.join("generated");
            fs::create_dir_all(&dir).unwrap();
            let generated = fixture_db(
                &dir,
                "CREATE TABLE message(id TEXT, session_id TEXT, time_updated INTEGER, \
                 data TEXT GENERATED ALWAYS AS (printf('%.*c', 100000, id)));
                 INSERT INTO message(id, session_id, time_updated) VALUES('m', 's', 1);",
            );
            assert!(refusal(&generated).contains("generated"), "{}", refusal(&generated));
        }

        /// Runs a query that never ends by itself (an endless recursive
        /// count) on `conn`: the error that stopped it.
        fn run_away(conn: &Connection) -> rusqlite::Error {
            conn.query_row(
                "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) \
                 SELECT max(n) FROM r",
                [],
                |r| r.get::<_, i64>(0),
            )
            .unwrap_err()
        }

        /// What the checks cannot see, the budget stops: the same endless
        /// query run on a connection with the budget applied ends in an
        /// interrupt.
        #[test]
        fn the_budget_interrupts_a_runaway_query() {
            let tmp = TempDir::new("budget");
            let db = fixture_db(&tmp.0, TABLES);
            let budget = sqlite::Budget::new(Instant::now() + Duration::from_secs(60));
            let conn = sqlite::open_read_only(&db).unwrap();
            budget.apply(&conn).unwrap();
            let started = Instant::now();
            let err = run_away(&conn);
            let took = started.elapsed();
            eprintln!("the budget stopped an endless query in {took:?}");
            let refused = budget.refusal(&err).expect("refused");
            assert!(refused.over_budget && refused.why.contains("budget"), "{err}");
            assert!(took < TIME_BUDGET + Duration::from_secs(2), "{took:?}");
        }

        /// The scan's deadline for databases cuts a read short without
        /// blaming the database: Deferred, not Refused.
        #[test]
        fn the_scan_deadline_defers_rather_than_refuses() {
            let tmp = TempDir::new("deferred");
            let db = fixture_db(&tmp.0, FIXTURE_SQL);
            let past = Instant::now();
            let err = read_db(&db, 0, past, &mut |_| {}).unwrap_err();
            assert!(err.downcast_ref::<Deferred>().is_some(), "{err:#}");

            let budget = sqlite::Budget::new(Instant::now() + Duration::from_millis(50));
            let conn = sqlite::open_read_only(&db).unwrap();
            budget.apply(&conn).unwrap();
            let err = run_away(&conn);
            assert!(budget.deferred(), "{err}");
        }

        #[test]
        fn fifos_and_devices_are_refused_without_blocking() {
            let tmp = TempDir::new("fifo");
            let mkfifo = |p: &Path| {
                rustix::fs::mkfifoat(rustix::fs::CWD, p, rustix::fs::Mode::from_raw_mode(0o600))
                    .unwrap();
            };
            let db = tmp.0.join("opencode.db");
            mkfifo(&db);
            assert_eq!(refusal(&db), "not a regular file");
            let zero = tmp.0.join("opencode-zero.db");
            std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
            assert_eq!(refusal(&zero), "not a regular file");
            let dir = tmp.0.join("wal");
            fs::create_dir_all(&dir).unwrap();
            let good = fixture_db(&dir, FIXTURE_SQL);
            mkfifo(&sidecar(&good, "-wal"));
            assert!(refusal(&good).contains("-wal"), "{}", refusal(&good));
        }

        /// A FIFO swapped in after the checks: SQLite's open blocks until
        /// a writer comes, and the watchdog is that writer.
        #[test]
        fn the_watchdog_releases_an_open_blocked_on_a_fifo() {
            use std::sync::atomic::{AtomicBool, Ordering};
            let tmp = TempDir::new("watchdog");
            let db = tmp.0.join("opencode.db");
            rustix::fs::mkfifoat(rustix::fs::CWD, &db, rustix::fs::Mode::from_raw_mode(0o600))
                .unwrap();
            let done = AtomicBool::new(false);
            std::thread::scope(|scope| {
                let watchdog = scope.spawn(|| sqlite::release_fifos(&db, &done));
                // What SQLite's open does: a blocking read-only open.
                let opened = fs::File::open(&db);
                done.store(true, Ordering::SeqCst);
                watchdog.thread().unpark();
                assert!(opened.is_ok());
            });
        }

        /// A real database of many rows reads well within the budget.
        #[test]
        fn a_large_real_database_is_within_the_budget() {
            let tmp = TempDir::new("large");
            let db = fixture_db(&tmp.0, TABLES);
            let mut conn = Connection::open(&db).unwrap();
            let tx = conn.transaction().unwrap();
            let rows = 20_000;
            for i in 0..rows {
                tx.execute(
                    "INSERT INTO message VALUES(?1, 'ses_1', ?2, ?2, ?3)",
                    rusqlite::params![format!("msg_{i}"), i + 1, REAL_ROW],
                )
                .unwrap();
            }
            tx.commit().unwrap();
            drop(conn);
            let started = Instant::now();
            let got = read(&db, 0).unwrap();
            eprintln!("{rows} rows read in {:?}", started.elapsed());
            assert_eq!(got.entries.len(), rows);
        }

        #[test]
        fn missing_or_foreign_files_are_errors() {
            let tmp = TempDir::new("errors");
            assert!(read(&tmp.0.join("opencode.db"), 0).is_err());
            // A missing database is not created either.
            assert!(!tmp.0.join("opencode.db").exists());
            let junk = tmp.0.join("opencode-junk.db");
            fs::write(&junk, vec![b'x'; 4096]).unwrap();
            let err = read(&junk, 0).unwrap_err();
            assert!(format!("{err:#}").contains("opencode-junk.db"), "{err:#}");
            // A database without OpenCode's table.
            let other = fixture_db(&tmp.0, "CREATE TABLE t(x);");
            assert!(read(&other, 0).is_err());
        }
    }
}

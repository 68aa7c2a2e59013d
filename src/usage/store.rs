//! The durable usage store: every entry ever counted, in memory for reports
//! and in `telemetry/usage.jsonl` on disk, so history outlives the agents'
//! own logs (Claude Code deletes transcripts after 30 days).
//!
//! The file is an append-only log of records. Replaying it applies the same
//! merge rules as a scan (one record per key, the most complete one wins, a
//! sidechain replay of a counted message is dropped), so appending a record
//! that is already known is harmless: a scan that is interrupted before its
//! scan index is saved, and then repeated, changes nothing. A torn last line
//! (the daemon killed mid-write) is cut off when the store opens. When the
//! log holds many superseded lines it is rewritten atomically.
//!
//! Our own prices are not stored, only tokens (and a cost the agent wrote
//! itself): they are recomputed when the store opens, so a new price table
//! applies to all history.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use super::pricing::Pricing;
use super::{Agent, Entry, Tokens, is_zero};
use crate::fsutil::{Access, create_private_dir, open_private, write_atomic};

/// Pending log lines are written out once they reach this size.
const SPILL_BYTES: usize = 1 << 20;

/// The profile that owns the user's own agent dirs (`~/.claude`, ...).
pub const DEFAULT_PROFILE: &str = "(default)";

/// One counted API response, as the store keeps it in memory.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub key: u64,
    /// Claude's message-id hash (0 otherwise): see [`super::Entry::message`].
    pub message: u64,
    pub timestamp_ms: i64,
    pub tokens: Tokens,
    /// USD: the agent's own figure when it wrote one, else our pricing;
    /// `None` when the model has no price (reported as unpriced, never $0).
    pub cost_usd: Option<f64>,
    /// The agent's own figure, kept apart so repricing leaves it alone.
    pub agent_cost: Option<f64>,
    pub agent: Agent,
    /// Indexes into [`Names`].
    pub profile: u32,
    pub model: u32,
    pub session: u32,
    pub sidechain: bool,
    pub fast: bool,
}

/// Interned strings (profiles, models, sessions): records hold `u32`s, so a
/// million records cost a few dozen bytes each.
#[derive(Debug, Default)]
pub struct Names {
    names: Vec<Box<str>>,
    index: HashMap<Box<str>, u32>,
}

impl Names {
    pub fn intern(&mut self, name: &str) -> u32 {
        if let Some(&id) = self.index.get(name) {
            return id;
        }
        let id = self.names.len() as u32;
        self.names.push(name.into());
        self.index.insert(name.into(), id);
        id
    }

    pub fn get(&self, id: u32) -> &str {
        self.names.get(id as usize).map_or("", |s| s)
    }

    /// The id of `name` if it was ever interned.
    pub fn find(&self, name: &str) -> Option<u32> {
        self.index.get(name).copied()
    }
}

/// Keys are already hashes: hashing them again would only cost time.
#[derive(Default)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

type KeyMap = HashMap<u64, u32, BuildHasherDefault<KeyHasher>>;

/// What an insert changed, for UsageUpdated events: the record before (if it
/// replaced one) and after.
#[derive(Debug, Clone)]
pub struct Change {
    pub profile: u32,
    pub model: u32,
    pub agent: Agent,
    pub before: Option<(Tokens, Option<f64>)>,
    pub after: (Tokens, Option<f64>),
}

/// One line of `usage.jsonl`. Short names: the file holds every response
/// the user ever paid for.
#[derive(Serialize, Deserialize)]
struct Line<'a> {
    k: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    m: u64,
    t: i64,
    a: Agent,
    #[serde(borrow)]
    p: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    md: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    s: std::borrow::Cow<'a, str>,
    #[serde(default, skip_serializing_if = "is_zero")]
    sc: bool,
    #[serde(default, skip_serializing_if = "is_zero")]
    f: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    c: Option<f64>,
    #[serde(default, skip_serializing_if = "is_zero")]
    i: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    o: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    w5: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    w1: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    r: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    rs: u64,
}

pub struct Store {
    path: PathBuf,
    records: Vec<Record>,
    by_key: KeyMap,
    /// Claude message id -> the record that counts it (for sidechain replays).
    by_message: KeyMap,
    names: Names,
    pricing: Pricing,
    /// Lines not yet appended to the file.
    pending: Vec<u8>,
    /// Lines in the file, superseded ones included.
    log_lines: usize,
    /// Lines of the file that could not be read back.
    pub bad_lines: u64,
}

impl Store {
    /// Opens (or creates) `<dir>/usage.jsonl` and replays it.
    pub fn open(dir: &Path, pricing: Pricing) -> Result<Store> {
        create_private_dir(dir)?;
        let path = dir.join("usage.jsonl");
        let mut store = Store {
            path,
            records: Vec::new(),
            by_key: KeyMap::default(),
            by_message: KeyMap::default(),
            names: Names::default(),
            pricing,
            pending: Vec::new(),
            log_lines: 0,
            bad_lines: 0,
        };
        // Never through a link; a regular file of ours only.
        let mut file = open_private(&store.path, Access::ReadWrite, 0o600)?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)
            .with_context(|| format!("reading {}", store.path.display()))?;
        // A torn last line: cut it off so the next append starts clean.
        let complete = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        if complete < bytes.len() {
            file.set_len(complete as u64)
                .with_context(|| format!("truncating {}", store.path.display()))?;
            file.seek(SeekFrom::End(0))?;
        }
        for line in bytes[..complete].split(|&b| b == b'\n') {
            if line.is_empty() {
                continue;
            }
            store.log_lines += 1;
            match serde_json::from_slice::<Line<'_>>(line) {
                Ok(l) => {
                    let entry = Entry {
                        key: l.k,
                        message: l.m,
                        sidechain: l.sc,
                        timestamp_ms: l.t,
                        model: l.md,
                        session: l.s,
                        tokens: Tokens {
                            input: l.i,
                            output: l.o,
                            cache_write_5m: l.w5,
                            cache_write_1h: l.w1,
                            cache_read: l.r,
                            reasoning: l.rs,
                        },
                        fast: l.f,
                        cost_usd: l.c,
                    };
                    store.merge(l.a, &l.p, &entry);
                }
                Err(_) => store.bad_lines += 1,
            }
        }
        Ok(store)
    }

    pub fn records(&self) -> &[Record] {
        &self.records
    }

    pub fn names(&self) -> &Names {
        &self.names
    }

    pub fn pricing(&self) -> &Pricing {
        &self.pricing
    }

    /// Replaces the price table (a registry sync brought new prices) and
    /// reprices every record; the agent's own figure, where it wrote one,
    /// stays. Nothing on disk changes: the log keeps tokens, not our prices.
    pub fn set_pricing(&mut self, pricing: Pricing) {
        self.pricing = pricing;
        for r in &mut self.records {
            let model = self.names.get(r.model);
            r.cost_usd =
                r.agent_cost.or_else(|| self.pricing.cost(r.agent, model, &r.tokens, r.fast));
        }
    }

    /// Whether the store already counts `key`.
    #[cfg(test)]
    pub fn contains(&self, key: u64) -> bool {
        self.by_key.contains_key(&key)
    }

    /// Counts an entry for `profile`. Returns what changed, or `None` when
    /// the store already had it (or something more complete), or it is a
    /// sidechain replay. The change is appended to the log on [`flush`].
    ///
    /// [`flush`]: Store::flush
    pub fn insert(&mut self, agent: Agent, profile: &str, entry: &Entry<'_>) -> Option<Change> {
        let change = self.merge(agent, profile, entry)?;
        let line = Line {
            k: entry.key,
            m: entry.message,
            t: entry.timestamp_ms,
            a: agent,
            p: profile.into(),
            md: entry.model.as_ref().into(),
            s: entry.session.as_ref().into(),
            sc: entry.sidechain,
            f: entry.fast,
            c: entry.cost_usd,
            i: entry.tokens.input,
            o: entry.tokens.output,
            w5: entry.tokens.cache_write_5m,
            w1: entry.tokens.cache_write_1h,
            r: entry.tokens.cache_read,
            rs: entry.tokens.reasoning,
        };
        // Serialising plain numbers and strings cannot fail.
        serde_json::to_writer(&mut self.pending, &line).expect("usage line serialises");
        self.pending.push(b'\n');
        self.log_lines += 1;
        Some(change)
    }

    /// The merge rules, shared by scans and by replaying the log.
    fn merge(&mut self, agent: Agent, profile: &str, entry: &Entry<'_>) -> Option<Change> {
        if let Some(&slot) = self.by_key.get(&entry.key) {
            let old = &self.records[slot as usize];
            // Keep the most complete snapshot of a response; on a tie, a
            // non-sidechain line beats its sidechain twin.
            let better = entry.tokens.total() > old.tokens.total()
                || (entry.tokens.total() == old.tokens.total()
                    && old.sidechain
                    && !entry.sidechain);
            if !better {
                return None;
            }
            return Some(self.put(Some(slot), agent, profile, entry));
        }
        if entry.message != 0
            && let Some(&slot) = self.by_message.get(&entry.message)
        {
            {
                if entry.sidechain {
                    // A replay of a message that is already counted.
                    return None;
                }
                if self.records[slot as usize].sidechain {
                    // The real message arrives after its sidechain replay:
                    // the replay's record becomes this one.
                    let old_key = self.records[slot as usize].key;
                    self.by_key.remove(&old_key);
                    return Some(self.put(Some(slot), agent, profile, entry));
                }
                // Two non-sidechain keys for one message id (a retried
                // request): both are billed, as ccusage counts them.
            }
        }
        Some(self.put(None, agent, profile, entry))
    }

    fn put(&mut self, slot: Option<u32>, agent: Agent, profile: &str, e: &Entry<'_>) -> Change {
        let model = self.names.intern(&e.model);
        let record = Record {
            key: e.key,
            message: e.message,
            timestamp_ms: e.timestamp_ms,
            tokens: e.tokens,
            cost_usd: e.cost_usd.or_else(|| self.pricing.cost(agent, &e.model, &e.tokens, e.fast)),
            agent_cost: e.cost_usd,
            agent,
            profile: self.names.intern(profile),
            model,
            session: self.names.intern(&e.session),
            sidechain: e.sidechain,
            fast: e.fast,
        };
        let after = (record.tokens, record.cost_usd);
        let (profile, model) = (record.profile, record.model);
        let (slot, before) = match slot {
            Some(slot) => {
                let old = std::mem::replace(&mut self.records[slot as usize], record);
                (slot, Some((old.tokens, old.cost_usd)))
            }
            None => {
                self.records.push(record);
                ((self.records.len() - 1) as u32, None)
            }
        };
        self.by_key.insert(e.key, slot);
        if e.message != 0 && (!e.sidechain || !self.by_message.contains_key(&e.message)) {
            self.by_message.insert(e.message, slot);
        }
        Change { profile, model, agent, before, after }
    }

    /// Appends pending lines (then fsync: a scan index saved after this
    /// never points past records that are not on disk). Rewrites the whole
    /// log when more than half of it is superseded.
    pub fn flush(&mut self) -> Result<()> {
        if self.log_lines > 2 * self.records.len() + 1000 {
            return self.compact();
        }
        self.append(true)?;
        // A first scan of a large history grows these once; give it back.
        self.records.shrink_to_fit();
        Ok(())
    }

    /// Writes pending lines out early during a long scan, so they never
    /// pile up in memory. A failure keeps them for the next [`flush`], which
    /// reports it.
    ///
    /// [`flush`]: Store::flush
    pub fn spill(&mut self) {
        if self.pending.len() >= SPILL_BYTES {
            let _ = self.append(false);
        }
    }

    fn append(&mut self, sync: bool) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let mut file = open_private(&self.path, Access::Append, 0o600)?;
        file.write_all(&self.pending)
            .and_then(|()| if sync { file.sync_data() } else { Ok(()) })
            .with_context(|| format!("appending to {}", self.path.display()))?;
        self.pending.clear();
        self.pending.shrink_to(SPILL_BYTES);
        Ok(())
    }

    /// Rewrites the log with one line per record.
    fn compact(&mut self) -> Result<()> {
        let mut out = Vec::with_capacity(self.records.len() * 160);
        for r in &self.records {
            let line = Line {
                k: r.key,
                m: r.message,
                t: r.timestamp_ms,
                a: r.agent,
                p: self.names.get(r.profile).into(),
                md: self.names.get(r.model).into(),
                s: self.names.get(r.session).into(),
                sc: r.sidechain,
                f: r.fast,
                c: r.agent_cost,
                i: r.tokens.input,
                o: r.tokens.output,
                w5: r.tokens.cache_write_5m,
                w1: r.tokens.cache_write_1h,
                r: r.tokens.cache_read,
                rs: r.tokens.reasoning,
            };
            serde_json::to_writer(&mut out, &line).expect("usage line serialises");
            out.push(b'\n');
        }
        write_atomic(&self.path, &out, 0o600)?;
        self.log_lines = self.records.len();
        self.pending.clear();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;
    use std::fs;

    use super::*;
    use crate::usage::claude::{Parsed, finder, parse_line};

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("ringlet-store-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    fn fixture_entries() -> Vec<Entry<'static>> {
        let f = finder();
        include_str!("../../tests/fixtures/usage/claude-6.1.jsonl")
            .lines()
            .filter_map(|l| match parse_line(l.as_bytes(), &f) {
                Parsed::Entry(e) => Some(e),
                _ => None,
            })
            .collect()
    }

    fn totals(store: &Store) -> Tokens {
        let mut t = Tokens::default();
        store.records().iter().for_each(|r| t.add(&r.tokens));
        t
    }

    #[test]
    fn the_fixture_counts_three_messages() {
        let dir = temp_dir("fixture");
        let mut store = Store::open(&dir, Pricing::default()).unwrap();
        for e in fixture_entries() {
            store.insert(Agent::Claude, "p", &e);
        }
        assert_eq!(store.records().len(), 3, "msg_01AAA, msg_01BBB, msg_old");
        let aaa = &store.records()[0];
        assert_eq!(aaa.tokens.output, 87, "the most complete snapshot wins");
        let bbb = &store.records()[1];
        assert!(bbb.fast && !bbb.sidechain);
        assert_eq!(store.records()[2].cost_usd, Some(0.0123), "the old line's own cost");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_replay_seen_first_gives_way_to_the_real_message() {
        let dir = temp_dir("order");
        let mut store = Store::open(&dir, Pricing::default()).unwrap();
        let e = fixture_entries();
        // a4 (the sidechain replay) before a3 (the real one).
        assert!(store.insert(Agent::Claude, "p", &e[3]).is_some());
        assert!(store.insert(Agent::Claude, "p", &e[2]).is_some());
        assert_eq!(store.records().len(), 1);
        assert!(!store.records()[0].sidechain);
        assert!(store.contains(e[2].key) && !store.contains(e[3].key));
        // And the replay again changes nothing.
        assert!(store.insert(Agent::Claude, "p", &e[3]).is_none());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn history_survives_reopening_and_replay_is_idempotent() {
        let dir = temp_dir("reopen");
        let mut store = Store::open(&dir, Pricing::default()).unwrap();
        for e in fixture_entries() {
            store.insert(Agent::Claude, "p", &e);
        }
        store.flush().unwrap();
        let before = totals(&store);
        // Scanning the same lines again (an index lost in a crash) appends
        // nothing and changes nothing.
        for e in fixture_entries() {
            assert!(store.insert(Agent::Claude, "p", &e).is_none());
        }
        let reopened = Store::open(&dir, Pricing::default()).unwrap();
        assert_eq!(totals(&reopened), before);
        assert_eq!(reopened.records().len(), 3);
        assert_eq!(reopened.names().get(reopened.records()[0].profile), "p");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_torn_last_line_is_cut_off_and_the_rest_kept() {
        let dir = temp_dir("torn");
        let mut store = Store::open(&dir, Pricing::default()).unwrap();
        for e in fixture_entries() {
            store.insert(Agent::Claude, "p", &e);
        }
        store.flush().unwrap();
        let path = dir.join("usage.jsonl");
        let mut bytes = fs::read(&path).unwrap();
        bytes.extend_from_slice(br#"{"k":42,"t":1,"a":"claude","p":"p","md":"m","s":"#);
        fs::write(&path, &bytes).unwrap();
        let mut store = Store::open(&dir, Pricing::default()).unwrap();
        assert_eq!(store.records().len(), 3);
        assert_eq!(store.bad_lines, 0);
        let e = Entry {
            key: 7,
            message: 0,
            sidechain: false,
            timestamp_ms: 5,
            model: Cow::Borrowed("m"),
            session: Cow::Borrowed("s"),
            tokens: Tokens { input: 1, ..Tokens::default() },
            fast: false,
            cost_usd: None,
        };
        store.insert(Agent::Codex, "q", &e).unwrap();
        store.flush().unwrap();
        let store = Store::open(&dir, Pricing::default()).unwrap();
        assert_eq!(store.records().len(), 4, "the append after the cut is readable");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_log_of_superseded_lines_is_compacted() {
        let dir = temp_dir("compact");
        let mut store = Store::open(&dir, Pricing::default()).unwrap();
        for output in 1..=3000u64 {
            let e = Entry {
                key: 9,
                message: 0,
                sidechain: false,
                timestamp_ms: 5,
                model: Cow::Borrowed("m"),
                session: Cow::Borrowed("s"),
                tokens: Tokens { output, ..Tokens::default() },
                fast: false,
                cost_usd: None,
            };
            store.insert(Agent::Claude, "p", &e).unwrap();
        }
        store.flush().unwrap();
        let text = fs::read_to_string(dir.join("usage.jsonl")).unwrap();
        assert_eq!(text.lines().count(), 1);
        let store = Store::open(&dir, Pricing::default()).unwrap();
        assert_eq!(store.records()[0].tokens.output, 3000);
        fs::remove_dir_all(&dir).unwrap();
    }
}

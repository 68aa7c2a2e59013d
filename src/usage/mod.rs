//! Usage and cost tracking: what the agents really wrote, counted once, priced
//! honestly, and kept.
//!
//! The parsers (`claude`, `codex`, `opencode`) turn the agents' own logs into
//! [`Entry`] values: one billable API response each, with a stable dedup key.
//! An agent that writes no usage log (Grok CLI, Droid) is counted from its
//! profile's proxy request log instead (`proxylog`), never both: the agent
//! manifest's `[usage] format` says which source an agent has.
//! The store (`store`) keeps every entry it has ever counted in
//! `telemetry/usage.jsonl`, so history survives the agents deleting their logs;
//! the scanner (`scan`) reads only what was appended since the last scan;
//! the watcher (`watch`) runs the scanner when an agent writes; `pricing` turns
//! tokens into dollars (or says it cannot); `report` answers the CLI's and the
//! HTTP API's questions.
//!
//! Token counts are normalised here, once, so the rest of the code never asks
//! which agent wrote them: `input` never includes cache reads or writes
//! (Claude's own meaning; Codex's `cached_input_tokens` is a subset of its
//! input and is subtracted by its parser).

pub mod claude;
pub mod codex;
pub mod opencode;
pub mod pricing;
pub mod proxylog;
pub mod report;
pub mod scan;
pub mod store;
pub mod tracker;
pub mod watch;

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

/// Token counts of one API response (or a sum of them), normalised.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tokens {
    /// Prompt tokens that were neither read from nor written to the cache.
    pub input: u64,
    pub output: u64,
    /// Cache writes billed at the 5-minute rate.
    pub cache_write_5m: u64,
    /// Cache writes billed at the 1-hour rate.
    pub cache_write_1h: u64,
    pub cache_read: u64,
    /// Reasoning tokens, for information only: Codex counts them inside
    /// `output`, OpenCode beside it, and neither bills them twice.
    pub reasoning: u64,
}

impl Tokens {
    /// Every billed token: input, output, cache writes and cache reads.
    pub fn total(&self) -> u64 {
        self.input + self.output + self.cache_writes() + self.cache_read
    }

    /// Cache writes at either rate.
    pub fn cache_writes(&self) -> u64 {
        self.cache_write_5m + self.cache_write_1h
    }

    /// The prompt as the provider saw it: input plus cache writes and reads.
    /// Decides the long-context price tier.
    pub fn prompt(&self) -> u64 {
        self.input + self.cache_writes() + self.cache_read
    }

    #[cfg(test)]
    pub fn add(&mut self, other: &Tokens) {
        self.input += other.input;
        self.output += other.output;
        self.cache_write_5m += other.cache_write_5m;
        self.cache_write_1h += other.cache_write_1h;
        self.cache_read += other.cache_read;
        self.reasoning += other.reasoning;
    }
}

/// Which agent's usage an entry counts. Decides pricing fallbacks (a Codex
/// cache read without its own price costs the input price, a Claude one a
/// tenth of it) and the `--agent` filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Agent {
    Claude,
    Codex,
    Opencode,
    /// Counted from its proxy's request log (it writes no usage log).
    Grok,
    /// Counted from its proxy's request log (Ringlet reads no Droid log).
    Droid,
}

impl Agent {
    pub const ALL: [Agent; 5] =
        [Agent::Claude, Agent::Codex, Agent::Opencode, Agent::Grok, Agent::Droid];

    /// The agent manifest id.
    pub fn id(self) -> &'static str {
        match self {
            Agent::Claude => "claude",
            Agent::Codex => "codex",
            Agent::Opencode => "opencode",
            Agent::Grok => "grok",
            Agent::Droid => "droid",
        }
    }

    pub fn from_id(id: &str) -> Option<Agent> {
        Agent::ALL.into_iter().find(|a| a.id() == id)
    }
}

/// The usage source an agent manifest declares (`[usage] format`): one of
/// the agents' own log formats, or `proxy`, the profile's proxy request log
/// (`<config>/proxy/<alias>/requests.jsonl`) for an agent that writes none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Claude,
    Codex,
    Opencode,
    Proxy,
}

impl Format {
    /// Whose usage a log of this format holds: the format's own agent, or
    /// for `proxy` the manifest's (`id`), which must be one [`Agent`] names.
    pub fn agent(self, id: &str) -> Option<Agent> {
        match self {
            Format::Claude => Some(Agent::Claude),
            Format::Codex => Some(Agent::Codex),
            Format::Opencode => Some(Agent::Opencode),
            Format::Proxy => Agent::from_id(id),
        }
    }
}

/// One billable API response as a parser found it.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry<'a> {
    /// Dedup key: two entries with the same key are the same response, and
    /// the store keeps the more complete one (larger [`Tokens::total`]).
    pub key: u64,
    /// Claude's `message.id` hash (0 for other agents): a sidechain entry
    /// whose message was already counted under another key is a replay.
    pub message: u64,
    pub sidechain: bool,
    /// Milliseconds since the Unix epoch (UTC).
    pub timestamp_ms: i64,
    pub model: Cow<'a, str>,
    /// The agent's own session (or thread) id.
    pub session: Cow<'a, str>,
    pub tokens: Tokens,
    /// Claude's fast mode (`speed: "fast"`): priced with the model's multiplier.
    pub fast: bool,
    /// A cost the agent computed itself (Claude's old `costUSD`, OpenCode's
    /// non-zero `cost`). Used in preference to our own pricing.
    pub cost_usd: Option<f64>,
}

/// For `skip_serializing_if` on the compact on-disk formats.
pub(crate) fn is_zero<T: Default + PartialEq>(n: &T) -> bool {
    *n == T::default()
}

/// A stable 64-bit hash (FNV-1a) of key parts. Stable across runs and builds,
/// unlike `std`'s hasher, because keys are stored on disk.
pub fn key_hash(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for &b in *part {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        // A separator, so ("ab", "c") and ("a", "bc") differ.
        h ^= 0xff;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    // Never 0: 0 means "no key" in `Entry::message`.
    h.max(1)
}

/// Parses an RFC 3339 timestamp (`2026-03-02T09:00:03.100Z`, any offset) to
/// milliseconds since the epoch.
pub fn parse_timestamp_ms(text: &str) -> Option<i64> {
    let ts: jiff::Timestamp = text.parse().ok()?;
    Some(ts.as_millisecond())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_hash_separates_parts_and_is_stable() {
        assert_ne!(key_hash(&[b"ab", b"c"]), key_hash(&[b"a", b"bc"]));
        // Keys are stored in usage.jsonl: these values must never change,
        // or every scan after an upgrade would count history twice.
        assert_eq!(key_hash(&[]), 0xcbf2_9ce4_8422_2325);
        assert_eq!(key_hash(&[b"msg_01AAA", b"req_011AAA"]), 0xb85b_9665_9d2f_df2d);
    }

    #[test]
    fn timestamps_in_any_offset() {
        assert_eq!(parse_timestamp_ms("1970-01-01T00:00:01.500Z"), Some(1500));
        assert_eq!(parse_timestamp_ms("1970-01-01T01:00:01+01:00"), Some(1000));
        assert_eq!(parse_timestamp_ms("yesterday"), None);
    }
}

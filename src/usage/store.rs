//! The durable usage store: every entry ever counted, in memory for reports
//! and in `telemetry/usage.jsonl` on disk, so history outlives the agents'
//! own logs (Claude Code deletes transcripts after 30 days).

use serde::{Deserialize, Serialize};

use super::{Agent, Tokens};

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
    index: std::collections::HashMap<Box<str>, u32>,
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

#[allow(dead_code)]
#[derive(Serialize, Deserialize)]
struct Placeholder;

//! The routing proxy (design.md §8, issue 12): one `ringlet proxy serve`
//! child per proxy-enabled profile, spawned and supervised by the daemon.
//! The child relays the provider's own API (Anthropic Messages, OpenAI
//! Responses and chat completions) without translating it, picks the
//! upstream by first-match rules over facts of the request, falls back
//! before the first byte, streams incrementally, logs every request and
//! enforces the profile's budget.
//!
//! This file owns the two data shapes every part agrees on: what a profile
//! stores ([`Routing`], in `profiles/<alias>.json`) and what the daemon
//! hands the child at start ([`ServeConfig`], one JSON document written to
//! the child's stdin pipe, then EOF; keys travel only there). Its children:
//! `rules` (conditions, targets, the chain), `facts` (what a request body
//! says, what a response reports as usage), `relay` (forward, fall back,
//! stream), `serve` (the child process), `log` (the request log), `budget`
//! (spend and limits), `supervisor` (the daemon side) and `litellm` (the
//! optional external backend).

pub mod budget;
pub mod config;
pub mod facts;
pub mod keys;
pub mod litellm;
pub mod log;
pub mod manage;
pub mod relay;
pub mod rules;
pub mod serve;
pub mod supervisor;

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// A profile's routing, as stored in its JSON file. Empty by default: a
/// proxy with no rule relays every request to the profile's own provider.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Routing {
    /// The local port, chosen once and kept so exported environments and
    /// rendered configs stay valid across restarts.
    #[serde(default)]
    pub port: Option<u16>,
    /// In the order added; tried by priority (higher first), equal
    /// priorities in this order.
    #[serde(default)]
    pub rules: Vec<Rule>,
    /// Requested model (exact) -> target, checked before the rules.
    #[serde(default)]
    pub aliases: BTreeMap<String, String>,
    #[serde(default)]
    pub budget: Budget,
}

/// One routing rule: when `condition` holds, send to `target`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rule {
    pub name: String,
    /// The condition's source text (`rules::Condition::parse` reads it).
    pub condition: String,
    /// `<provider>[@<endpoint>]/<model>` (`rules::Target::parse`).
    pub target: String,
    #[serde(default)]
    pub priority: i64,
}

/// Spend limits in USD; `None` means no limit for that period.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Budget {
    #[serde(default)]
    pub daily_usd: Option<f64>,
    #[serde(default)]
    pub monthly_usd: Option<f64>,
}

/// The API family an agent speaks and a provider serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Family {
    /// Anthropic Messages: `POST /v1/messages`, `/v1/messages/count_tokens`.
    /// The agent's base URL is the proxy's root.
    Anthropic,
    /// OpenAI: `POST /v1/responses`, `/v1/chat/completions`. The agent's
    /// base URL is the proxy's `/v1`, which the relay strips before
    /// appending the rest to the upstream's URL (whose path is often `/v1`
    /// but not always: Z.ai's is `/api/coding/paas/v4`).
    OpenAi,
}

/// How an upstream wants its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthStyle {
    /// `x-api-key: <key>` (api.anthropic.com).
    XApiKey,
    /// `Authorization: Bearer <key>` (OpenAI and every compatible provider).
    Bearer,
}

/// One upstream the child may relay to: a provider at one endpoint.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct Upstream {
    /// The endpoint URL from the provider manifest, no trailing slash.
    pub url: String,
    pub auth: AuthStyle,
    /// The upstream key; only ever in memory and on the stdin pipe.
    pub key: String,
}

impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upstream").field("url", &self.url).field("auth", &self.auth).finish()
    }
}

/// What the daemon writes to a `ringlet proxy serve` child's stdin (JSON,
/// then EOF). The listening socket is the child's fd 3.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServeConfig {
    /// The profile this proxy serves.
    pub alias: String,
    /// The agent manifest id (`claude`, `codex`, ...): prices differ by agent.
    pub agent: String,
    pub family: Family,
    /// The token the agent presents (`x-api-key` or `Authorization:
    /// Bearer`); anything else is refused with 401.
    pub local_token: String,
    pub rules: Vec<Rule>,
    pub aliases: BTreeMap<String, String>,
    pub budget: Budget,
    /// Every upstream a rule, an alias or the default names, by the part of
    /// a target before its `/`: `<provider>` or `<provider>@<endpoint>`.
    pub upstreams: BTreeMap<String, Upstream>,
    /// The key in `upstreams` of the profile's own provider, which serves a
    /// request no alias or rule matched, with the model it asked for.
    pub default_upstream: String,
    /// Ringlet's config dir: prices (`registry/current/pricing/litellm-pricing.json`).
    pub config_dir: PathBuf,
    /// Where the request log goes: `<config>/proxy/<alias>/`.
    pub log_dir: PathBuf,
    /// An extra CA bundle for upstreams (`[tls] ca_file`, `SSL_CERT_FILE`).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

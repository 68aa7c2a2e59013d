//! Prices: LiteLLM's per-token fields, from an embedded snapshot, a synced
//! `registry/litellm-pricing.json`, and `config.toml` overrides.
//! (Being written.)

use super::{Agent, Tokens};

/// The price table the daemon uses.
#[derive(Debug, Default)]
pub struct Pricing {}

impl Pricing {
    /// USD for `tokens` of `model`; `None` when the model has no price.
    pub fn cost(&self, agent: Agent, model: &str, tokens: &Tokens, fast: bool) -> Option<f64> {
        let _ = (agent, model, tokens, fast);
        None
    }
}

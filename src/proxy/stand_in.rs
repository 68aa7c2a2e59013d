//! A temporary stand-in for `rules` and `facts` (PROXY.md's API), so the
//! child builds and is tested before those land; removed at the merge.
//! Aliases and `always` rules only; usage from whole JSON or SSE bodies.

use std::collections::BTreeMap;
use std::fmt;

use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Family, Rule};

pub struct Facts {
    pub model: String,
}

impl Facts {
    pub fn from_body(_family: Family, body: &Value) -> Facts {
        Facts { model: body.get("model").and_then(Value::as_str).unwrap_or_default().to_owned() }
    }
}

#[derive(Clone, PartialEq)]
pub struct Target {
    pub provider: String,
    pub endpoint: Option<String>,
    pub model: String,
}

impl Target {
    pub fn parse(text: &str) -> Result<Target> {
        let Some((up, model)) = text.split_once('/') else { bail!("no / in {text}") };
        let (provider, endpoint) = match up.split_once('@') {
            Some((p, e)) => (p.to_string(), Some(e.to_string())),
            None => (up.to_string(), None),
        };
        Ok(Target { provider, endpoint, model: model.to_string() })
    }

    pub fn upstream_key(&self) -> String {
        match &self.endpoint {
            Some(e) => format!("{}@{e}", self.provider),
            None => self.provider.clone(),
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.upstream_key(), self.model)
    }
}

pub struct Router {
    rules: Vec<(String, Target)>,
    aliases: BTreeMap<String, Target>,
}

pub struct Route {
    pub rule: Option<String>,
    pub targets: Vec<Target>,
}

impl Router {
    pub fn new(rules: &[Rule], aliases: &BTreeMap<String, String>) -> Result<Router> {
        let mut sorted: Vec<&Rule> = rules.iter().collect();
        sorted.sort_by_key(|r| std::cmp::Reverse(r.priority));
        let mut parsed = Vec::new();
        for rule in sorted {
            if rule.condition != "always" {
                bail!("stand-in: only `always` rules");
            }
            parsed.push((rule.name.clone(), Target::parse(&rule.target)?));
        }
        let mut by_model = BTreeMap::new();
        for (model, target) in aliases {
            by_model.insert(model.clone(), Target::parse(target)?);
        }
        Ok(Router { rules: parsed, aliases: by_model })
    }

    pub fn route(&self, facts: &Facts) -> Route {
        let mut targets: Vec<Target> = Vec::new();
        let mut rule = None;
        if let Some(t) = self.aliases.get(&facts.model) {
            rule = Some(format!("alias {}", facts.model));
            targets.push(t.clone());
        }
        for (name, t) in &self.rules {
            rule.get_or_insert_with(|| name.clone());
            if !targets.contains(t) {
                targets.push(t.clone());
            }
        }
        Route { rule, targets }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProxyTokens {
    pub input: u64,
    pub output: u64,
    pub cache_read: u64,
    pub cache_write: u64,
}

pub struct UsageMeter {
    streaming: bool,
    bytes: Vec<u8>,
}

impl UsageMeter {
    pub fn new(_family: Family, streaming: bool) -> UsageMeter {
        UsageMeter { streaming, bytes: Vec::new() }
    }

    pub fn feed(&mut self, bytes: &[u8]) {
        if self.bytes.len() < 4 << 20 {
            self.bytes.extend_from_slice(bytes);
        }
    }

    pub fn finish(self) -> Option<ProxyTokens> {
        let mut tokens: Option<ProxyTokens> = None;
        let mut take = |usage: &Value| {
            let t = tokens.get_or_insert_with(ProxyTokens::default);
            let n = |k: &str| usage.get(k).and_then(Value::as_u64);
            if let Some(v) = n("input_tokens") {
                t.input = v;
            }
            if let Some(v) = n("output_tokens") {
                t.output = v;
            }
        };
        let text = String::from_utf8_lossy(&self.bytes);
        if !self.streaming {
            let body: Value = serde_json::from_str(&text).ok()?;
            take(body.get("usage")?);
        } else {
            for line in text.lines() {
                let Some(data) = line.strip_prefix("data: ") else { continue };
                let Ok(event) = serde_json::from_str::<Value>(data) else { continue };
                if let Some(u) = event.pointer("/message/usage").or(event.get("usage")) {
                    take(u);
                }
            }
        }
        tokens
    }
}

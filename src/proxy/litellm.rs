//! The optional external backend (`[proxy] backend = "litellm"`): a
//! profile's routing turned into a LiteLLM proxy config, and the command
//! that runs a pinned LiteLLM on the daemon's listening socket. Its one
//! reason to exist is protocol translation: Claude Code (Anthropic
//! Messages) against an OpenAI-format provider, which the built-in
//! `proxy serve` never does.
//!
//! What LiteLLM can express of Ringlet's routing, and how:
//! - the request's model is all it routes on, so a rule's condition may
//!   only be `always` or `model ~ <glob>`, joined with `or`; `thinking`,
//!   `tokens`, `tools`, `not` and `and` are refused with an error that
//!   names the rule ([`plan`]);
//! - an alias or a glob without `*` is an exact `model_name`; a glob
//!   ending in `*` is a wildcard `model_name` (LiteLLM matches those as
//!   prefixes and tries the longest first, so a glob with `*` elsewhere, a
//!   `?`, or two overlapping globs LiteLLM would try in another order than
//!   Ringlet's first match are refused, naming the rules);
//! - the fallback chain (the matched rule's target, then the targets of
//!   the rules after it) is one deployment per target under the same
//!   `model_name` with `order: 1, 2, ...`: LiteLLM's order-based fallback,
//!   the one kind it applies to wildcard names too (its `fallbacks` list is
//!   keyed by the requested model, which a wildcard never equals);
//! - a request nothing matches goes, as with the built-in proxy, to the
//!   profile's own provider with the model it asked for (`model_name: "*"`).
//! - an OpenAI-format target is `custom_openai/<model>`, which LiteLLM
//!   always calls through chat completions (with `openai/` it sends an
//!   Anthropic request that asks for thinking to the Responses API, which
//!   OpenAI-compatible providers rarely serve); an Anthropic one is
//!   `anthropic/<model>`.
//!
//! Keys never enter the YAML: each upstream's `api_key` is an
//! `os.environ/RINGLET_KEY_<n>` reference, and [`Plan::env`] carries the
//! values for the child's environment, with the local token as
//! `LITELLM_MASTER_KEY`. The YAML itself is written 0600 in the runtime
//! dir ([`write_config`]). LiteLLM runs offline ([`OFFLINE_ENV`]) and without
//! a database; it serves the daemon's already-listening socket as fd 3
//! through uvicorn's `--fd` ([`launch`]), so a restart keeps the port and
//! waiting connections sit in the backlog, as with the built-in child.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use super::{Family, ServeConfig};

/// The LiteLLM release `tests/setup.sh` installs and this module's YAML
/// and launch were checked against (`litellm[proxy]`). The newest whose
/// `proxy` extra resolves from PyPI here: 1.108.12 to 1.110 pin
/// `litellm-enterprise`/`litellm-proxy-extras`/`litellm-proxy` builds the
/// registry does not serve.
pub const PINNED_VERSION: &str = "1.108.7";

/// The path LiteLLM answers without a key once it serves requests (its
/// `/health` would call every upstream).
pub const HEALTH_PATH: &str = "/health/liveliness";

/// Environment that keeps LiteLLM off the network except for the
/// upstreams: its bundled model cost map, Anthropic beta-header table,
/// policy templates, blog feed and router presets instead of fetching them
/// from GitHub at start or on demand, and Hugging Face tokenizers from the
/// local cache only. Telemetry records nothing until a destination is
/// configured, and none is. Checked with strace: starting and serving a
/// request, LiteLLM 1.108.7 connects to nothing but the upstream.
pub const OFFLINE_ENV: &[(&str, &str)] = &[
    ("LITELLM_LOCAL_MODEL_COST_MAP", "True"),
    ("LITELLM_LOCAL_ANTHROPIC_BETA_HEADERS", "True"),
    ("LITELLM_LOCAL_POLICY_TEMPLATES", "True"),
    ("LITELLM_LOCAL_BLOG_POSTS", "True"),
    ("LITELLM_LOCAL_AUTOROUTER_PRESETS", "True"),
    ("HF_HUB_OFFLINE", "1"),
    ("DISABLE_ADMIN_UI", "True"),
    ("NO_DOCS", "True"),
    ("NO_REDOC", "True"),
];

/// The environment variable that carries the local token (LiteLLM's
/// master key: the only key it accepts without a database).
pub const MASTER_KEY_ENV: &str = "LITELLM_MASTER_KEY";

/// What [`plan`] makes of a profile's routing.
pub struct Plan {
    /// The config in LiteLLM's schema; no key in it.
    pub yaml: String,
    /// `LITELLM_MASTER_KEY` and `RINGLET_KEY_<n>`: for the child's
    /// environment only.
    pub env: Vec<(String, String)>,
}

impl std::fmt::Debug for Plan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.env.iter().map(|(name, _)| name.as_str()).collect();
        f.debug_struct("Plan").field("yaml", &self.yaml).field("env", &names).finish()
    }
}

/// How to start LiteLLM: program, arguments and the environment entries
/// besides [`Plan::env`] and [`OFFLINE_ENV`]. The listener must be fd 3.
#[derive(Debug, Clone, PartialEq)]
pub struct Launch {
    pub program: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
}

/// One routing condition as LiteLLM can see it.
#[derive(Debug, Clone, PartialEq)]
enum Matcher {
    Always,
    /// Any of these globs (each has no `?`; a `*` only as a prefix match's
    /// tail, see [`check_glob`]).
    Globs(Vec<String>),
}

impl Matcher {
    fn matches(&self, model: &str) -> bool {
        match self {
            Matcher::Always => true,
            Matcher::Globs(globs) => globs.iter().any(|g| glob_matches(g, model)),
        }
    }
}

/// A rule in trial order, parsed for LiteLLM.
struct LiteRule {
    name: String,
    matcher: Matcher,
    target: LiteTarget,
}

/// A target: the upstream (a key into `ServeConfig.upstreams`) and model.
#[derive(Debug, Clone, PartialEq, Eq)]
struct LiteTarget {
    upstream: String,
    model: String,
}

/// One `model_name` and the targets behind it, in fallback order.
struct Entry {
    name: String,
    chain: Vec<LiteTarget>,
    /// The default upstream with the requested model (`anthropic/*`, `custom_openai/*`).
    passthrough: Option<String>,
}

/// Turns `config`'s routing into a LiteLLM config and the environment that
/// carries its keys. `families` gives each upstream's API family (by the
/// key in `config.upstreams`); one missing is taken to be the agent's own.
/// A rule LiteLLM cannot express is an error naming the rule.
pub fn plan(config: &ServeConfig, families: &BTreeMap<String, Family>) -> Result<Plan> {
    let entries = routing_entries(
        &config.rules,
        &config.aliases,
        Some(&config.upstreams),
        &config.default_upstream,
    )?;

    // Number the upstreams the config uses, in `upstreams` order, so the
    // same routing gives the same YAML and the same variable names.
    let mut used: Vec<&str> = Vec::new();
    for entry in &entries {
        for target in &entry.chain {
            used.push(&target.upstream);
        }
        if let Some(upstream) = &entry.passthrough {
            used.push(upstream);
        }
    }
    let mut key_var = BTreeMap::new();
    let mut env = vec![(MASTER_KEY_ENV.to_string(), config.local_token.clone())];
    for (n, (name, upstream)) in
        config.upstreams.iter().filter(|(name, _)| used.contains(&name.as_str())).enumerate()
    {
        let var = format!("RINGLET_KEY_{n}");
        env.push((var.clone(), upstream.key.clone()));
        key_var.insert(name.as_str(), var);
    }

    let deployment = |yaml: &mut String, name: &str, upstream: &str, model: &str, order| {
        let up = &config.upstreams[upstream];
        let family = families.get(upstream).copied().unwrap_or(config.family);
        // `custom_openai/` speaks chat completions upstream, whatever the
        // request: with `openai/`, LiteLLM sends an Anthropic request that
        // asks for thinking (Claude Code's nearly always do) to the
        // Responses API, which OpenAI-compatible providers rarely serve.
        // `anthropic/` speaks Messages and appends `/v1/messages` to the URL.
        let prefix = match family {
            Family::Anthropic => "anthropic",
            Family::OpenAi => "custom_openai",
        };
        let _ = writeln!(yaml, "  - model_name: {}", quote(name));
        let _ = writeln!(yaml, "    litellm_params:");
        let _ = writeln!(yaml, "      model: {}", quote(&format!("{prefix}/{model}")));
        let _ = writeln!(yaml, "      api_base: {}", quote(&up.url));
        let _ = writeln!(
            yaml,
            "      api_key: {}",
            quote(&format!("os.environ/{}", key_var[upstream]))
        );
        let _ = writeln!(yaml, "      order: {order}");
    };

    let mut yaml = format!(
        "# Generated by ringlet for profile {} (LiteLLM {PINNED_VERSION}); rewritten at every \
         start. Keys are os.environ/ references: the values are only in LiteLLM's environment.\n",
        sanitize_comment(&config.alias)
    );
    yaml.push_str("model_list:\n");
    let mut longest = 1;
    for entry in &entries {
        for (i, target) in entry.chain.iter().enumerate() {
            deployment(&mut yaml, &entry.name, &target.upstream, &target.model, i + 1);
        }
        if let Some(upstream) = &entry.passthrough {
            deployment(&mut yaml, &entry.name, upstream, "*", 1);
        }
        longest = longest.max(entry.chain.len());
    }
    yaml.push_str("router_settings:\n");
    // Fall back at once, like the built-in proxy (LiteLLM would retry the
    // same deployment first), and always try the chain in order rather
    // than skipping a deployment LiteLLM has put in cooldown.
    yaml.push_str("  num_retries: 0\n");
    yaml.push_str("  disable_cooldowns: true\n");
    let _ = writeln!(yaml, "  max_fallbacks: {}", longest.max(5));
    yaml.push_str("litellm_settings:\n");
    // Parameters one API has and the other lacks (Anthropic's `thinking`
    // for an OpenAI model, say) are dropped instead of failing the call.
    yaml.push_str("  drop_params: true\n");
    yaml.push_str("general_settings:\n");
    let _ = writeln!(yaml, "  master_key: {}", quote(&format!("os.environ/{MASTER_KEY_ENV}")));
    // Clients connect directly (the daemon's loopback socket): say so, or
    // LiteLLM warns about it in the daemon log at every start.
    yaml.push_str("  trusted_proxy_ranges: []\n");
    Ok(Plan { yaml, env })
}

/// Whether LiteLLM can express these rules and aliases (a profile's
/// routing): the check [`plan`] makes, without the upstreams, for the
/// moment a rule or an alias is added to a profile of the LiteLLM backend,
/// so it is refused then rather than when the proxy starts. The error
/// names the rule or alias.
pub fn check_routing(rules: &[super::Rule], aliases: &BTreeMap<String, String>) -> Result<()> {
    routing_entries(rules, aliases, None, "").map(|_| ())
}

/// The `model_name`s for a routing; targets are checked against
/// `upstreams` when given.
fn routing_entries(
    rules: &[super::Rule],
    aliases: &BTreeMap<String, String>,
    upstreams: Option<&BTreeMap<String, super::Upstream>>,
    default_upstream: &str,
) -> Result<Vec<Entry>> {
    let rules = parse_rules(rules, upstreams)?;
    let mut parsed = Vec::new();
    for (model, target) in aliases {
        if model.contains('*') {
            bail!(
                "alias `{model}`: the LiteLLM backend would read a `*` in an alias as a \
                 wildcard; aliases there must be exact model names"
            );
        }
        let target = parse_target(target, upstreams).with_context(|| format!("alias `{model}`"))?;
        parsed.push((model.clone(), target));
    }
    entries(&rules, &parsed, default_upstream)
}

/// The rules in trial order (priority, higher first; equal priorities in
/// the order added), each parsed for LiteLLM.
fn parse_rules(
    rules: &[super::Rule],
    upstreams: Option<&BTreeMap<String, super::Upstream>>,
) -> Result<Vec<LiteRule>> {
    let mut sorted: Vec<&super::Rule> = rules.iter().collect();
    // A stable sort: equal priorities keep their order.
    sorted.sort_by_key(|rule| std::cmp::Reverse(rule.priority));
    let mut rules = Vec::with_capacity(sorted.len());
    for rule in sorted {
        // A syntax error first, pointing at its column, as everywhere.
        super::rules::Condition::parse(&rule.condition).map_err(|e| {
            anyhow::anyhow!("rule `{}`: condition `{}`: {e}", rule.name, rule.condition)
        })?;
        let matcher = parse_condition(&rule.condition).map_err(|why| {
            anyhow::anyhow!(
                "rule `{}`: the LiteLLM backend cannot express `{}`: {why}",
                rule.name,
                rule.condition
            )
        })?;
        let target = parse_target(&rule.target, upstreams)
            .with_context(|| format!("rule `{}`", rule.name))?;
        rules.push(LiteRule { name: rule.name.clone(), matcher, target });
    }
    Ok(rules)
}

/// `<provider>[@<endpoint>]/<model>`, split at the first `/`, whose
/// upstream is in `upstreams` (when given).
fn parse_target(
    text: &str,
    upstreams: Option<&BTreeMap<String, super::Upstream>>,
) -> Result<LiteTarget> {
    let target = super::rules::Target::parse(text)?;
    if target.model.contains('*') {
        bail!(
            "target `{text}`: LiteLLM would replace the `*` in the model with part of the \
             requested name"
        );
    }
    let upstream = target.upstream_key();
    if upstreams.is_some_and(|u| !u.contains_key(&upstream)) {
        bail!("target `{text}`: no upstream `{upstream}` in the proxy's config");
    }
    Ok(LiteTarget { upstream, model: target.model })
}

/// The `model_name`s in the order they are written: aliases, other exact
/// names, wildcards in trial order, the catch-all `*` last (LiteLLM looks
/// an exact name up first, then tries the wildcards longest first).
fn entries(
    rules: &[LiteRule],
    aliases: &[(String, LiteTarget)],
    default_upstream: &str,
) -> Result<Vec<Entry>> {
    // The chain of a match of rule `at`: its target, then those after it.
    let chain_from = |head: Option<&LiteTarget>, at: Option<usize>| -> Vec<LiteTarget> {
        let mut chain: Vec<LiteTarget> = Vec::new();
        let rest = at.map(|at| rules[at..].iter().map(|r| &r.target));
        for target in head.into_iter().chain(rest.into_iter().flatten()) {
            if !chain.contains(target) {
                chain.push(target.clone());
            }
        }
        chain
    };
    let first_match = |model: &str| rules.iter().position(|r| r.matcher.matches(model));
    // Rules after the first `always` are never a first match: only their
    // targets count, in chains.
    let reachable =
        rules.iter().position(|r| r.matcher == Matcher::Always).map_or(rules.len(), |a| a + 1);

    let mut out: Vec<Entry> = Vec::new();
    let taken = |out: &[Entry], name: &str| out.iter().any(|e| e.name == name);
    for (model, target) in aliases {
        out.push(Entry {
            name: model.clone(),
            chain: chain_from(Some(target), first_match(model)),
            passthrough: None,
        });
    }
    // An exact glob names one model: its chain is whatever Ringlet picks
    // for that name, which may be an earlier wildcard rule's.
    for rule in &rules[..reachable] {
        if let Matcher::Globs(globs) = &rule.matcher {
            for glob in globs.iter().filter(|g| !g.contains('*')) {
                if !taken(&out, glob) {
                    out.push(Entry {
                        name: glob.clone(),
                        chain: chain_from(None, first_match(glob)),
                        passthrough: None,
                    });
                }
            }
        }
    }
    // Wildcards: LiteLLM tries them by its own order; refuse a pair it
    // would try the other way round when one model could match both.
    let mut wild: Vec<(usize, String)> = Vec::new();
    for (at, rule) in rules[..reachable].iter().enumerate() {
        if let Matcher::Globs(globs) = &rule.matcher {
            for glob in globs.iter().filter(|g| g.contains('*')) {
                if wild.iter().any(|(_, g)| g == glob) {
                    continue;
                }
                for (earlier, other) in &wild {
                    if litellm_tries_first(glob, other) && globs_overlap(glob, other) {
                        bail!(
                            "rule `{}` (`model ~ {glob}`) and rule `{}` (`model ~ {other}`): a model \
                             can match both, and LiteLLM tries the longer pattern first while \
                             Ringlet tries rule `{}` first; give rule `{}` the higher priority if \
                             that is what you mean, or use the built-in backend",
                            rule.name,
                            rules[*earlier].name,
                            rules[*earlier].name,
                            rule.name
                        );
                    }
                }
                wild.push((at, glob.clone()));
                out.push(Entry {
                    name: glob.clone(),
                    chain: chain_from(None, Some(at)),
                    passthrough: None,
                });
            }
        }
    }
    match rules.iter().position(|r| r.matcher == Matcher::Always) {
        Some(at) => out.push(Entry {
            name: "*".into(),
            chain: chain_from(None, Some(at)),
            passthrough: None,
        }),
        None => out.push(Entry {
            name: "*".into(),
            chain: Vec::new(),
            passthrough: Some(default_upstream.to_string()),
        }),
    }
    Ok(out)
}

/// Parses the part of the condition language LiteLLM can express:
/// `always`, `model ~ <glob>`, `or`, parentheses. The error says what was
/// found instead.
fn parse_condition(text: &str) -> Result<Matcher, String> {
    let mut parser = CondParser { chars: text.chars().collect(), pos: 0, depth: 0 };
    let matcher = parser.or()?;
    parser.skip_space();
    if parser.pos < parser.chars.len() {
        return Err(parser.unsupported());
    }
    Ok(matcher)
}

struct CondParser {
    chars: Vec<char>,
    pos: usize,
    depth: usize,
}

impl CondParser {
    fn skip_space(&mut self) {
        while self.chars.get(self.pos).is_some_and(|c| c.is_whitespace()) {
            self.pos += 1;
        }
    }

    /// The word at the cursor (letters only).
    fn word(&self) -> String {
        self.chars[self.pos..].iter().take_while(|c| c.is_ascii_alphabetic()).collect()
    }

    fn unsupported(&self) -> String {
        let word = self.word();
        let what = match word.as_str() {
            "thinking" | "tokens" | "tools" => format!("`{word}`"),
            "not" | "and" => format!("`{word}`"),
            "" => match self.chars.get(self.pos) {
                Some(c) => format!("`{c}`"),
                None => "the end of the condition".into(),
            },
            _ => format!("`{word}`"),
        };
        format!(
            "LiteLLM routes on the requested model only, so a rule there may use `always` and \
             `model ~ <glob>` joined with `or`, not {what} (the built-in backend can)"
        )
    }

    fn or(&mut self) -> Result<Matcher, String> {
        let mut all = self.primary()?;
        loop {
            self.skip_space();
            if self.word() != "or" {
                return Ok(all);
            }
            self.pos += 2;
            let next = self.primary()?;
            all = match (all, next) {
                (Matcher::Always, _) | (_, Matcher::Always) => Matcher::Always,
                (Matcher::Globs(mut a), Matcher::Globs(b)) => {
                    a.extend(b);
                    Matcher::Globs(a)
                }
            };
        }
    }

    fn primary(&mut self) -> Result<Matcher, String> {
        self.skip_space();
        if self.chars.get(self.pos) == Some(&'(') {
            self.depth += 1;
            if self.depth > 32 {
                return Err("the condition nests too deep".into());
            }
            self.pos += 1;
            let inner = self.or()?;
            self.skip_space();
            if self.chars.get(self.pos) != Some(&')') {
                return Err(self.unsupported());
            }
            self.pos += 1;
            self.depth -= 1;
            return Ok(inner);
        }
        match self.word().as_str() {
            "always" => {
                self.pos += 6;
                Ok(Matcher::Always)
            }
            "model" => {
                self.pos += 5;
                self.skip_space();
                if self.chars.get(self.pos) != Some(&'~') {
                    return Err(self.unsupported());
                }
                self.pos += 1;
                let glob = self.glob()?;
                check_glob(&glob)?;
                if glob.chars().all(|c| c == '*') {
                    return Ok(Matcher::Always);
                }
                Ok(Matcher::Globs(vec![glob]))
            }
            _ => Err(self.unsupported()),
        }
    }

    /// A quoted glob (`\"` and `\\` escape) or a run of characters without
    /// space or parenthesis, as the rule language reads it.
    fn glob(&mut self) -> Result<String, String> {
        self.skip_space();
        let mut glob = String::new();
        if self.chars.get(self.pos) == Some(&'"') {
            self.pos += 1;
            loop {
                match self.chars.get(self.pos) {
                    None => return Err("the glob's `\"` is not closed".into()),
                    Some('"') => {
                        self.pos += 1;
                        break;
                    }
                    Some('\\') => {
                        match self.chars.get(self.pos + 1) {
                            Some(&c @ ('"' | '\\')) => glob.push(c),
                            _ => return Err("a `\\` in a glob escapes only `\"` and `\\`".into()),
                        }
                        self.pos += 2;
                    }
                    Some(&c) => {
                        glob.push(c);
                        self.pos += 1;
                    }
                }
            }
        } else {
            while let Some(&c) =
                self.chars.get(self.pos).filter(|c| !c.is_whitespace() && !matches!(c, '(' | ')'))
            {
                glob.push(c);
                self.pos += 1;
            }
        }
        if glob.is_empty() {
            return Err("`model ~` needs a glob".into());
        }
        Ok(glob)
    }
}

/// LiteLLM turns a wildcard `model_name` into a regex that must match at
/// the start only (a prefix match) and has no `?`: a glob whose `*`s do not
/// end it would match more there than in Ringlet.
fn check_glob(glob: &str) -> Result<(), String> {
    if glob.contains('?') {
        return Err(format!("`model ~ {glob}`: LiteLLM's model patterns have no `?` (only `*`)"));
    }
    if glob.contains('*') && !glob.ends_with('*') {
        return Err(format!(
            "`model ~ {glob}`: LiteLLM matches a model pattern as a prefix, so a glob with `*` \
             must end in `*` there"
        ));
    }
    Ok(())
}

/// Ringlet's glob semantics (`*` any run, `?` one char), whole string.
fn glob_matches(glob: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (glob.chars().collect(), text.chars().collect());
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// Whether some model name matches both globs (`*`-only globs, literal
/// characters otherwise): a search over pairs of positions.
fn globs_overlap(a: &str, b: &str) -> bool {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut seen = vec![false; (a.len() + 1) * (b.len() + 1)];
    let mut stack = vec![(0usize, 0usize)];
    while let Some((i, j)) = stack.pop() {
        let slot = i * (b.len() + 1) + j;
        if seen[slot] {
            continue;
        }
        seen[slot] = true;
        if i == a.len() && j == b.len() {
            return true;
        }
        let (ca, cb) = (a.get(i).copied(), b.get(j).copied());
        if ca == Some('*') {
            // The star matches nothing more, or swallows b's next char.
            stack.push((i + 1, j));
            if cb.is_some() {
                stack.push((i, j + 1));
            }
        }
        if cb == Some('*') {
            stack.push((i, j + 1));
            if ca.is_some() {
                stack.push((i + 1, j));
            }
        }
        if let (Some(x), Some(y)) = (ca, cb)
            && x != '*'
            && y != '*'
            && x == y
        {
            stack.push((i + 1, j + 1));
        }
    }
    false
}

/// The regex LiteLLM makes of a wildcard `model_name`: Python's
/// `re.escape(pattern).replace("\\*", "(.*)")`.
fn litellm_regex(glob: &str) -> String {
    let mut regex = String::new();
    for c in glob.chars() {
        match c {
            '*' => regex.push_str("(.*)"),
            '(' | ')' | '[' | ']' | '{' | '}' | '?' | '+' | '-' | '|' | '^' | '$' | '\\' | '.'
            | '&' | '~' | '#' | ' ' | '\t' | '\n' | '\r' | '\x0b' | '\x0c' => {
                regex.push('\\');
                regex.push(c);
            }
            c => regex.push(c),
        }
    }
    regex
}

/// Whether LiteLLM tries wildcard `a` before `b`, which was added before
/// it: it sorts by (regex length, count of regex metacharacters),
/// descending, and Python's sort keeps ties in the order added.
fn litellm_tries_first(a: &str, b: &str) -> bool {
    let key = |glob: &str| {
        let regex = litellm_regex(glob);
        let complexity = regex
            .chars()
            .filter(|c| matches!(c, '*' | '+' | '?' | '\\' | '^' | '$' | '|' | '(' | ')'))
            .count();
        (regex.chars().count(), complexity)
    };
    key(a) > key(b)
}

/// A YAML double-quoted scalar: JSON's escapes, plus `\u` for everything
/// PyYAML refuses to read raw (DEL, C1 controls, surrogates, U+FFFE/F).
fn quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\x20'..='\x7e' | '\u{85}' | '\u{a0}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}' => {
                out.push(c)
            }
            c if (c as u32) >= 0x10000 => out.push(c),
            c => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
        }
    }
    out.push('"');
    out
}

/// An alias is `[A-Za-z0-9_-]`, but a comment line must stay one line
/// whatever it holds.
fn sanitize_comment(text: &str) -> String {
    text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect()
}

/// Writes the YAML to `<runtime>/proxy/<alias>.yaml`, 0600 in a 0700
/// directory, atomically; returns the path.
pub fn write_config(runtime_dir: &Path, alias: &str, yaml: &str) -> Result<PathBuf> {
    if alias.is_empty() || alias.contains(['/', '.']) || alias.chars().any(char::is_control) {
        bail!("not a profile alias: {alias:?}");
    }
    let path = runtime_dir.join("proxy").join(format!("{alias}.yaml"));
    crate::fsutil::write_atomic(&path, yaml.as_bytes(), 0o600)?;
    Ok(path)
}

/// How to run LiteLLM on the inherited listener (fd 3). `litellm_command`
/// is `[proxy] litellm_command`, else `litellm` on `path` (the daemon's
/// PATH). LiteLLM's own CLI binds a port itself, so the Python behind that
/// script runs uvicorn with `--fd 3` and the config from
/// `CONFIG_FILE_PATH`, which LiteLLM's app reads at startup.
pub fn launch(
    litellm_command: Option<&str>,
    path: Option<&OsStr>,
    config_path: &Path,
) -> Result<Launch> {
    let script = resolve(litellm_command.unwrap_or("litellm"), path)?;
    let python = interpreter(&script)?;
    let mut env = vec![("CONFIG_FILE_PATH".to_string(), config_path.display().to_string())];
    env.extend(OFFLINE_ENV.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    Ok(Launch {
        program: python,
        args: [
            "-m",
            "uvicorn",
            "litellm.proxy.proxy_server:app",
            "--fd",
            "3",
            "--no-server-header",
            "--no-access-log",
            // Its stderr goes to the daemon log: problems, not progress.
            "--log-level",
            "warning",
            "--timeout-graceful-shutdown",
            "10",
        ]
        .map(String::from)
        .to_vec(),
        env,
    })
}

/// Everything the supervisor needs to start LiteLLM for `config`: the
/// YAML planned and written to the runtime dir, the program and arguments,
/// and the environment entries to set on the child (keys, master key,
/// config path, offline switches) after clearing its environment. The
/// listener goes in as fd 3.
pub fn prepare(
    config: &ServeConfig,
    families: &BTreeMap<String, Family>,
    runtime_dir: &Path,
    litellm_command: Option<&str>,
    path: Option<&OsStr>,
) -> Result<Launch> {
    let plan = plan(config, families)?;
    let config_path = write_config(runtime_dir, &config.alias, &plan.yaml)?;
    let mut launch = launch(litellm_command, path, &config_path)?;
    launch.env.extend(plan.env);
    // LiteLLM's HTTP client takes its CA bundle from SSL_CERT_FILE: the
    // file replaces its bundled store rather than adding to it.
    if let Some(ca) = &config.ca_file {
        launch.env.push(("SSL_CERT_FILE".into(), ca.display().to_string()));
    }
    Ok(launch)
}

/// The hidden argument that runs [`main_if_asked`] (debug builds only).
#[cfg(debug_assertions)]
pub const DEBUG_EXEC: &str = "__proxy-litellm-exec";

/// Debug builds only, for the integration tests: `ringlet
/// __proxy-litellm-exec` reads `{"config": <ServeConfig>, "families":
/// {...}, "litellm_command": ...}` on stdin and replaces itself with
/// LiteLLM on the listener it inherited as fd 3, as the supervisor starts
/// it (cleared environment but PATH and HOME, plus [`prepare`]'s).
#[cfg(debug_assertions)]
pub fn main_if_asked() -> Option<std::process::ExitCode> {
    use std::io::{Read as _, Write as _};
    use std::os::unix::process::CommandExt as _;
    if std::env::args_os().nth(1)? != DEBUG_EXEC {
        return None;
    }
    #[derive(serde::Deserialize)]
    struct Input {
        config: ServeConfig,
        #[serde(default)]
        families: BTreeMap<String, Family>,
        #[serde(default)]
        litellm_command: Option<String>,
    }
    let run = || -> Result<std::io::Error> {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text)?;
        let input: Input = serde_json::from_slice(text.as_bytes()).context("reading the input")?;
        let paths = crate::paths::Paths::from_env()?;
        paths.ensure_runtime_dir()?;
        let path = std::env::var_os("PATH");
        let launch = prepare(
            &input.config,
            &input.families,
            &paths.runtime_dir,
            input.litellm_command.as_deref(),
            path.as_deref(),
        )?;
        let mut cmd = std::process::Command::new(&launch.program);
        cmd.args(&launch.args).env_clear().envs(launch.env.iter().map(|(k, v)| (k, v)));
        for name in ["PATH", "HOME"] {
            if let Some(value) = std::env::var_os(name) {
                cmd.env(name, value);
            }
        }
        Ok(cmd.exec())
    };
    let message = match run() {
        Ok(exec_error) => format!("starting LiteLLM: {exec_error}"),
        Err(err) => format!("{err:#}"),
    };
    let _ = writeln!(std::io::stderr(), "ringlet: {message}");
    Some(std::process::ExitCode::FAILURE)
}

/// `command` as given when it has a `/`, else the first executable of that
/// name on `path`.
fn resolve(command: &str, path: Option<&OsStr>) -> Result<PathBuf> {
    if command.contains('/') {
        let p = PathBuf::from(command);
        if !p.is_file() {
            bail!("[proxy] litellm_command: {command} does not exist");
        }
        return Ok(p);
    }
    if let Some(path) = path {
        for dir in std::env::split_paths(path) {
            let candidate = dir.join(command);
            if is_executable(&candidate) {
                return Ok(candidate);
            }
        }
    }
    bail!(
        "the LiteLLM backend needs `{command}` on PATH (pip install 'litellm[proxy]=={PINNED_VERSION}'), \
         or its path as [proxy] litellm_command"
    )
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The Python that runs the `litellm` entry-point script: its `#!` line
/// (pip writes the venv's interpreter there), else a `python3` or
/// `python` beside it.
fn interpreter(script: &Path) -> Result<PathBuf> {
    let head = {
        use std::io::Read as _;
        let mut buf = Vec::new();
        let file =
            std::fs::File::open(script).with_context(|| format!("reading {}", script.display()))?;
        file.take(4096)
            .read_to_end(&mut buf)
            .with_context(|| format!("reading {}", script.display()))?;
        buf
    };
    let first = head.split(|&b| b == b'\n').next().unwrap_or_default();
    if let Some(rest) = first.strip_prefix(b"#!") {
        let interp = String::from_utf8_lossy(rest).trim().to_string();
        // `#!/path/python` (not `/usr/bin/env python3`, not `/bin/sh`).
        if !interp.contains(' ')
            && Path::new(&interp)
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("python"))
            && is_executable(Path::new(&interp))
        {
            return Ok(PathBuf::from(interp));
        }
    }
    let dir = script.parent().unwrap_or(Path::new("."));
    for name in ["python3", "python"] {
        if is_executable(&dir.join(name)) {
            return Ok(dir.join(name));
        }
    }
    bail!(
        "cannot tell which Python runs {}: neither its #! line nor a python3 beside it \
         names one",
        script.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::{AuthStyle, Budget, Rule, Upstream};

    const TOKEN: &str = "local-token-0123456789abcdef";

    fn upstream(url: &str, key: &str) -> Upstream {
        Upstream { url: url.into(), auth: AuthStyle::Bearer, key: key.into() }
    }

    /// An Anthropic-speaking profile (`anthropic` provider) with an
    /// OpenAI-format `oai` and a second Anthropic endpoint `anthropic@eu`.
    fn config(rules: &[(&str, &str, &str, i64)], aliases: &[(&str, &str)]) -> ServeConfig {
        ServeConfig {
            alias: "work".into(),
            agent: "claude".into(),
            family: Family::Anthropic,
            local_token: TOKEN.into(),
            rules: rules
                .iter()
                .map(|(name, condition, target, priority)| Rule {
                    name: name.to_string(),
                    condition: condition.to_string(),
                    target: target.to_string(),
                    priority: *priority,
                })
                .collect(),
            aliases: aliases.iter().map(|(m, t)| (m.to_string(), t.to_string())).collect(),
            budget: Budget::default(),
            upstreams: BTreeMap::from([
                ("anthropic".into(), upstream("https://api.anthropic.com", "sk-ant-KEY-A")),
                ("anthropic@eu".into(), upstream("https://eu.example.com", "sk-ant-KEY-EU")),
                ("oai".into(), upstream("https://api.example.com/v1", "sk-oai-KEY-O")),
            ]),
            default_upstream: "anthropic".into(),
            config_dir: "/nonexistent".into(),
            log_dir: "/nonexistent".into(),
            ca_file: None,
        }
    }

    fn families() -> BTreeMap<String, Family> {
        BTreeMap::from([
            ("anthropic".into(), Family::Anthropic),
            ("anthropic@eu".into(), Family::Anthropic),
            ("oai".into(), Family::OpenAi),
        ])
    }

    /// One deployment as the YAML lists it.
    #[derive(Debug, PartialEq)]
    struct Dep {
        name: String,
        model: String,
        api_base: String,
        api_key: String,
        order: u32,
    }

    /// Reads back the `model_list` this module writes (one key a line).
    fn deployments(yaml: &str) -> Vec<Dep> {
        let unquote = |v: &str| -> String { serde_json::from_str(v.trim()).unwrap() };
        let mut out: Vec<Dep> = Vec::new();
        for line in yaml.lines() {
            let line = line.trim();
            if let Some(v) = line.strip_prefix("- model_name: ") {
                out.push(Dep {
                    name: unquote(v),
                    model: String::new(),
                    api_base: String::new(),
                    api_key: String::new(),
                    order: 0,
                });
            } else if let Some(last) = out.last_mut() {
                if let Some(v) = line.strip_prefix("model: ") {
                    last.model = unquote(v);
                } else if let Some(v) = line.strip_prefix("api_base: ") {
                    last.api_base = unquote(v);
                } else if let Some(v) = line.strip_prefix("api_key: ") {
                    last.api_key = unquote(v);
                } else if let Some(v) = line.strip_prefix("order: ") {
                    last.order = v.parse().unwrap();
                }
            }
        }
        out
    }

    /// `(model_name, litellm model, order)` of every deployment.
    fn shape(plan: &Plan) -> Vec<(String, String, u32)> {
        deployments(&plan.yaml).into_iter().map(|d| (d.name, d.model, d.order)).collect()
    }

    fn owned(rows: &[(&str, &str, u32)]) -> Vec<(String, String, u32)> {
        rows.iter().map(|(a, b, c)| (a.to_string(), b.to_string(), *c)).collect()
    }

    fn refused(config: &ServeConfig) -> String {
        format!("{:#}", plan(config, &families()).unwrap_err())
    }

    #[test]
    fn no_routing_relays_every_model_to_the_default_upstream() {
        let plan = plan(&config(&[], &[]), &families()).unwrap();
        let deps = deployments(&plan.yaml);
        assert_eq!(
            deps,
            [Dep {
                name: "*".into(),
                model: "anthropic/*".into(),
                api_base: "https://api.anthropic.com".into(),
                api_key: "os.environ/RINGLET_KEY_0".into(),
                order: 1,
            }]
        );
        assert_eq!(
            plan.env,
            [
                ("LITELLM_MASTER_KEY".to_string(), TOKEN.to_string()),
                ("RINGLET_KEY_0".to_string(), "sk-ant-KEY-A".to_string())
            ],
            "only the upstreams the config uses get a variable"
        );
    }

    #[test]
    fn an_openai_target_is_translated_through_chat_completions() {
        let plan = plan(&config(&[], &[("fast", "oai/gpt-5-mini")]), &families()).unwrap();
        let deps = deployments(&plan.yaml);
        assert_eq!(deps[0].name, "fast");
        assert_eq!(deps[0].model, "custom_openai/gpt-5-mini");
        assert_eq!(deps[0].api_base, "https://api.example.com/v1");
        // An upstream missing from `families` is taken to speak the agent's.
        let plan = super::plan(&config(&[], &[("fast", "oai/gpt-5-mini")]), &BTreeMap::new());
        assert_eq!(deployments(&plan.unwrap().yaml)[0].model, "anthropic/gpt-5-mini");
    }

    #[test]
    fn an_alias_is_an_exact_name_followed_by_the_chain_of_its_rule() {
        let c = config(
            &[
                ("opus", "model ~ claude-opus-*", "anthropic@eu/claude-opus-4-1", 5),
                ("rest", "always", "oai/gpt-5", 0),
            ],
            &[("big", "anthropic/claude-opus-4-1"), ("claude-opus-4", "oai/o3")],
        );
        let plan = plan(&c, &families()).unwrap();
        assert_eq!(
            shape(&plan),
            owned(&[
                // `big` matches no glob: its chain is the `always` rule's.
                ("big", "anthropic/claude-opus-4-1", 1),
                ("big", "custom_openai/gpt-5", 2),
                // `claude-opus-4` matches `opus`: its chain is that rule's.
                ("claude-opus-4", "custom_openai/o3", 1),
                ("claude-opus-4", "anthropic/claude-opus-4-1", 2),
                ("claude-opus-4", "custom_openai/gpt-5", 3),
                ("claude-opus-*", "anthropic/claude-opus-4-1", 1),
                ("claude-opus-*", "custom_openai/gpt-5", 2),
                ("*", "custom_openai/gpt-5", 1),
            ])
        );
        // The same target twice in a chain is tried once.
        let deps = deployments(&plan.yaml);
        let eu: Vec<&Dep> =
            deps.iter().filter(|d| d.api_base == "https://eu.example.com").collect();
        assert!(eu.iter().all(|d| d.api_key == "os.environ/RINGLET_KEY_1"), "{deps:#?}");
    }

    #[test]
    fn rules_are_tried_by_priority_and_each_chain_follows_its_rule() {
        let c = config(
            &[
                ("low", "model ~ gpt-*", "oai/gpt-5", 0),
                (
                    "high",
                    "model ~ claude-haiku-* or model ~ claude-3-5-haiku",
                    "oai/gpt-5-mini",
                    10,
                ),
                ("last", "always", "anthropic@eu/claude-sonnet-4-5", -1),
                // After `always`: never a first match, only a fallback.
                ("unreachable", "model ~ o3*", "oai/o3", -2),
            ],
            &[],
        );
        let plan = plan(&c, &families()).unwrap();
        assert_eq!(
            shape(&plan),
            owned(&[
                ("claude-3-5-haiku", "custom_openai/gpt-5-mini", 1),
                ("claude-3-5-haiku", "custom_openai/gpt-5", 2),
                ("claude-3-5-haiku", "anthropic/claude-sonnet-4-5", 3),
                ("claude-3-5-haiku", "custom_openai/o3", 4),
                ("claude-haiku-*", "custom_openai/gpt-5-mini", 1),
                ("claude-haiku-*", "custom_openai/gpt-5", 2),
                ("claude-haiku-*", "anthropic/claude-sonnet-4-5", 3),
                ("claude-haiku-*", "custom_openai/o3", 4),
                ("gpt-*", "custom_openai/gpt-5", 1),
                ("gpt-*", "anthropic/claude-sonnet-4-5", 2),
                ("gpt-*", "custom_openai/o3", 3),
                ("*", "anthropic/claude-sonnet-4-5", 1),
                ("*", "custom_openai/o3", 2),
            ])
        );
        assert!(plan.yaml.contains("\n  num_retries: 0\n"), "{}", plan.yaml);
        assert!(plan.yaml.contains("\n  disable_cooldowns: true\n"), "{}", plan.yaml);
    }

    #[test]
    fn a_target_repeated_in_a_chain_is_tried_once() {
        let c = config(
            &[
                ("x", "model ~ x*", "oai/gpt-5", 2),
                ("y", "model ~ y*", "anthropic/claude", 1),
                ("z", "always", "oai/gpt-5", 0),
            ],
            &[("a", "anthropic/claude")],
        );
        assert_eq!(
            shape(&plan(&c, &families()).unwrap()),
            owned(&[
                ("a", "anthropic/claude", 1),
                ("a", "custom_openai/gpt-5", 2),
                ("x*", "custom_openai/gpt-5", 1),
                ("x*", "anthropic/claude", 2),
                ("y*", "anthropic/claude", 1),
                ("y*", "custom_openai/gpt-5", 2),
                ("*", "custom_openai/gpt-5", 1),
            ])
        );
    }

    #[test]
    fn an_exact_glob_takes_the_chain_of_an_earlier_wildcard_it_matches() {
        let c = config(
            &[
                ("all-claude", "model ~ claude-*", "oai/gpt-5", 1),
                ("one", "model ~ claude-opus-4", "anthropic@eu/claude-opus-4", 0),
            ],
            &[],
        );
        let plan = plan(&c, &families()).unwrap();
        assert_eq!(
            shape(&plan),
            owned(&[
                // Ringlet picks `all-claude` for claude-opus-4; LiteLLM, which
                // looks exact names up first, is told the same.
                ("claude-opus-4", "custom_openai/gpt-5", 1),
                ("claude-opus-4", "anthropic/claude-opus-4", 2),
                ("claude-*", "custom_openai/gpt-5", 1),
                ("claude-*", "anthropic/claude-opus-4", 2),
                ("*", "anthropic/*", 1),
            ])
        );
    }

    #[test]
    fn keys_are_only_in_the_environment() {
        let c = config(
            &[("a", "always", "oai/gpt-5", 0), ("b", "always", "anthropic@eu/m", 0)],
            &[("x", "anthropic/claude")],
        );
        let plan = plan(&c, &families()).unwrap();
        for secret in ["sk-ant-KEY-A", "sk-ant-KEY-EU", "sk-oai-KEY-O", TOKEN] {
            assert!(!plan.yaml.contains(secret), "{secret} in the YAML:\n{}", plan.yaml);
            assert!(plan.env.iter().any(|(_, v)| v == secret), "{secret} not in the env");
        }
        let env: BTreeMap<&str, &str> =
            plan.env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        for dep in deployments(&plan.yaml) {
            let var = dep.api_key.strip_prefix("os.environ/").expect("an os.environ/ reference");
            let key = env[var];
            let (name, _) = c.upstreams.iter().find(|(_, u)| u.key == key).unwrap();
            assert_eq!(c.upstreams[name].url, dep.api_base, "{dep:?} gets its upstream's key");
        }
        assert!(plan.yaml.contains("master_key: \"os.environ/LITELLM_MASTER_KEY\""));
        assert_eq!(env["LITELLM_MASTER_KEY"], TOKEN);
        // Debug output names the variables, never their values.
        let debug = format!("{plan:?}");
        assert!(!debug.contains("sk-") && !debug.contains(TOKEN), "{debug}");
    }

    #[test]
    fn conditions_litellm_cannot_express_are_refused_naming_the_rule() {
        for (condition, what) in [
            ("thinking", "`thinking`"),
            ("tokens > 100000", "`tokens`"),
            ("tools >= 1", "`tools`"),
            ("not model ~ claude-*", "`not`"),
            ("model ~ claude-* and thinking", "`and`"),
            ("(model ~ a* or tokens < 5)", "`tokens`"),
        ] {
            let c = config(
                &[("ok", "model ~ gpt-*", "oai/gpt-5", 1), ("big", condition, "oai/gpt-5", 0)],
                &[],
            );
            let err = refused(&c);
            assert!(
                err.starts_with(&format!(
                    "rule `big`: the LiteLLM backend cannot express `{condition}`"
                )),
                "{condition}: {err}"
            );
            assert!(err.contains(&format!("not {what}")), "{condition}: {err}");
            assert!(err.contains("built-in backend"), "{condition}: {err}");
        }
    }

    #[test]
    fn globs_litellm_would_read_otherwise_are_refused() {
        for (glob, why) in
            [("claude-?", "no `?`"), ("*-opus", "must end in `*`"), ("a*b", "must end in `*`")]
        {
            let c = config(&[("g", &format!("model ~ {glob}"), "oai/gpt-5", 0)], &[]);
            let err = refused(&c);
            assert!(
                err.starts_with("rule `g`: the LiteLLM backend cannot express"),
                "{glob}: {err}"
            );
            assert!(err.contains(why), "{glob}: {err}");
        }
        // A quoted glob, a star in the middle that also ends it, and a
        // glob of stars (`always`) are fine.
        let c = config(
            &[
                ("q", "model ~ \"my model*\"", "oai/a", 3),
                ("mid", "(model ~ claude-*-4*)", "oai/b", 2),
                ("stars", "model ~ **", "oai/c", 1),
            ],
            &[],
        );
        let names: Vec<String> =
            shape(&plan(&c, &families()).unwrap()).into_iter().map(|r| r.0).collect();
        assert_eq!(
            names,
            ["my model*", "my model*", "my model*", "claude-*-4*", "claude-*-4*", "*"]
        );
    }

    #[test]
    fn overlapping_wildcards_litellm_would_try_in_another_order_are_refused() {
        // Ringlet tries `wide` first; LiteLLM would try the longer one.
        let c = config(
            &[
                ("wide", "model ~ claude-*", "oai/a", 2),
                ("narrow", "model ~ claude-opus-*", "oai/b", 1),
            ],
            &[],
        );
        let err = refused(&c);
        assert!(err.contains("rule `narrow`"), "{err}");
        assert!(err.contains("rule `wide`"), "{err}");
        assert!(err.contains("give rule `narrow` the higher priority"), "{err}");
        // The other way round both orders agree.
        let c = config(
            &[
                ("wide", "model ~ claude-*", "oai/a", 1),
                ("narrow", "model ~ claude-opus-*", "oai/b", 2),
            ],
            &[],
        );
        plan(&c, &families()).unwrap();
        // Longer but disjoint: no model matches both, so the order is moot.
        let c = config(
            &[("g", "model ~ gpt-*", "oai/a", 2), ("c", "model ~ claude-opus-*", "oai/b", 1)],
            &[],
        );
        plan(&c, &families()).unwrap();
        // Wildcards after `always` are never tried first: no conflict.
        let c = config(
            &[("all", "always", "oai/a", 2), ("narrow", "model ~ claude-opus-*", "oai/b", 1)],
            &[],
        );
        let names: Vec<String> =
            shape(&plan(&c, &families()).unwrap()).into_iter().map(|r| r.0).collect();
        assert_eq!(names, ["*", "*"]);
    }

    #[test]
    fn a_profiles_routing_is_checked_without_its_upstreams() {
        let rule = |name: &str, condition: &str, priority| Rule {
            name: name.into(),
            condition: condition.into(),
            target: "any-provider@eu/some/model".into(),
            priority,
        };
        let aliases = BTreeMap::from([("big".to_string(), "other/m".to_string())]);
        check_routing(&[rule("a", "model ~ claude-*", 1), rule("b", "always", 0)], &aliases)
            .unwrap();
        let err = check_routing(&[rule("a", "always", 1), rule("t", "tokens > 5", 0)], &aliases)
            .unwrap_err();
        assert!(format!("{err:#}").starts_with("rule `t`: the LiteLLM backend cannot"), "{err:#}");
        let overlap = [rule("wide", "model ~ c*", 2), rule("narrow", "model ~ claude*", 1)];
        let err = check_routing(&overlap, &BTreeMap::new()).unwrap_err();
        assert!(format!("{err:#}").contains("rule `narrow`"), "{err:#}");
        let bad_alias = BTreeMap::from([("c*".to_string(), "other/m".to_string())]);
        assert!(check_routing(&[], &bad_alias).is_err());
    }

    #[test]
    fn bad_targets_and_aliases_are_refused() {
        let err = refused(&config(&[("r", "always", "nowhere/m", 0)], &[]));
        assert!(err.contains("rule `r`") && err.contains("no upstream `nowhere`"), "{err}");
        let err = refused(&config(&[("r", "always", "oai/gpt-*", 0)], &[]));
        assert!(err.contains("rule `r`") && err.contains("`*`"), "{err}");
        let err = refused(&config(&[], &[("claude-*", "oai/gpt-5")]));
        assert!(err.contains("alias `claude-*`"), "{err}");
        let err = refused(&config(&[("r", "always", "oai", 0)], &[]));
        assert!(err.contains("rule `r`") && err.contains("target `oai`"), "{err}");
        // A syntax error says where, before anything about LiteLLM.
        let err = refused(&config(&[("r", "model ~ a* or", "oai/m", 0)], &[]));
        assert!(err.starts_with("rule `r`: condition `model ~ a* or`: column "), "{err}");
        assert!(!err.contains("LiteLLM"), "{err}");
    }

    #[test]
    fn strings_are_quoted_for_pyyaml() {
        assert_eq!(quote("plain/model-1.5"), "\"plain/model-1.5\"");
        assert_eq!(quote("a\"b\\c"), "\"a\\\"b\\\\c\"");
        assert_eq!(quote("tab\there\nDEL\x7f\u{9f}"), "\"tab\\u0009here\\u000aDEL\\u007f\\u009f\"");
        assert_eq!(quote("naïve 模型 🚀"), "\"naïve 模型 🚀\"");
    }

    #[test]
    fn glob_helpers_agree_with_ringlet_and_litellm() {
        assert!(glob_matches("claude-*", "claude-opus-4"));
        assert!(glob_matches("claude-?", "claude-x"));
        assert!(!glob_matches("claude-*", "gpt-5"));
        assert!(glob_matches("*", ""));
        assert!(globs_overlap("claude-*", "claude-opus-*"));
        assert!(globs_overlap("a*c*", "ab*"));
        assert!(globs_overlap("*x*", "y*"));
        assert!(!globs_overlap("gpt-*", "claude-*"));
        assert!(!globs_overlap("ab*", "ac*"));
        // Python: re.escape("claude-3.5*").replace(r"\*", "(.*)")
        assert_eq!(litellm_regex("claude-3.5*"), "claude\\-3\\.5(.*)");
        assert_eq!(litellm_regex("my model*"), "my\\ model(.*)");
        assert!(litellm_tries_first("claude-opus-*", "claude-*"));
        assert!(!litellm_tries_first("gpt-*", "gpt-*"), "ties keep the order added");
    }

    #[test]
    fn the_config_file_is_private_in_the_runtime_dir() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("ringlet-litellm-unit-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = write_config(&dir, "work", "model_list: []\n").unwrap();
        assert_eq!(path, dir.join("proxy").join("work.yaml"));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "model_list: []\n");
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        let proxy_dir = std::fs::metadata(dir.join("proxy")).unwrap();
        assert_eq!(proxy_dir.permissions().mode() & 0o777, 0o700);
        for bad in ["", "../x", "a/b", "a.b"] {
            assert!(write_config(&dir, bad, "").is_err(), "{bad:?}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn prepare_writes_the_yaml_and_gives_every_variable_the_child_needs() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("ringlet-litellm-prep-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let bin = dir.join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        for (name, text) in
            [("python3", String::new()), ("litellm", "#!/usr/bin/env python3\n".into())]
        {
            std::fs::write(bin.join(name), text).unwrap();
            std::fs::set_permissions(bin.join(name), std::fs::Permissions::from_mode(0o755))
                .unwrap();
        }
        let c = config(&[("r", "always", "oai/gpt-5", 0)], &[]);
        let runtime = dir.join("run");
        let launch = prepare(&c, &families(), &runtime, None, Some(bin.as_os_str())).unwrap();
        let yaml_path = runtime.join("proxy").join("work.yaml");
        let yaml = std::fs::read_to_string(&yaml_path).unwrap();
        assert_eq!(yaml, plan(&c, &families()).unwrap().yaml);
        let env: BTreeMap<&str, &str> =
            launch.env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(env["CONFIG_FILE_PATH"], yaml_path.to_str().unwrap());
        assert_eq!(env["LITELLM_MASTER_KEY"], TOKEN);
        assert_eq!(env["RINGLET_KEY_0"], "sk-oai-KEY-O");
        for (name, value) in OFFLINE_ENV {
            assert_eq!(env[name], *value);
        }
        assert!(launch.args.iter().all(|a| !a.contains("KEY")), "{:?}", launch.args);
        assert!(!env.contains_key("SSL_CERT_FILE"));
        let mut with_ca = c.clone();
        with_ca.ca_file = Some("/etc/corp-ca.pem".into());
        let launch = prepare(&with_ca, &families(), &runtime, None, Some(bin.as_os_str())).unwrap();
        assert!(launch.env.contains(&("SSL_CERT_FILE".into(), "/etc/corp-ca.pem".into())));
        // An inexpressible rule: nothing is written.
        let bad = config(&[("t", "thinking", "oai/gpt-5", 0)], &[]);
        std::fs::remove_file(&yaml_path).unwrap();
        assert!(prepare(&bad, &families(), &runtime, None, Some(bin.as_os_str())).is_err());
        assert!(!yaml_path.exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn launch_runs_the_scripts_python_on_fd_3() {
        use std::os::unix::fs::PermissionsExt;
        let dir =
            std::env::temp_dir().join(format!("ringlet-litellm-launch-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let bin = dir.join("venv").join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        let exe = |path: &Path, text: &str| {
            std::fs::write(path, text).unwrap();
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
        };
        let python = bin.join("python3.11");
        exe(&python, "");
        exe(&bin.join("litellm"), &format!("#!{}\nimport sys\n", python.display()));
        let config_path = dir.join("work.yaml");
        let path = std::env::join_paths(["/nonexistent".into(), bin.clone()]).unwrap();
        let launch = launch(None, Some(&path), &config_path).unwrap();
        assert_eq!(launch.program, python);
        assert_eq!(&launch.args[..4], ["-m", "uvicorn", "litellm.proxy.proxy_server:app", "--fd"]);
        assert_eq!(launch.args[4], "3");
        let env: BTreeMap<&str, &str> =
            launch.env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(env["CONFIG_FILE_PATH"], config_path.to_str().unwrap());
        assert_eq!(env["LITELLM_LOCAL_MODEL_COST_MAP"], "True");

        // `#!/usr/bin/env python3`: the python3 beside the script.
        exe(&bin.join("python3"), "");
        exe(&bin.join("litellm"), "#!/usr/bin/env python3\n");
        let command = bin.join("litellm");
        let launch = super::launch(command.to_str(), None, &config_path).unwrap();
        assert_eq!(launch.program, bin.join("python3"));

        let err = super::launch(None, Some(OsStr::new("/nonexistent")), &config_path).unwrap_err();
        assert!(err.to_string().contains("`litellm` on PATH"), "{err}");
        assert!(err.to_string().contains(PINNED_VERSION), "{err}");
        let err = super::launch(Some("/nonexistent/litellm"), None, &config_path).unwrap_err();
        assert!(err.to_string().contains("litellm_command"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

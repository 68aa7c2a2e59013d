//! The routing rule language and the router (issue 12, item 4): a rule's
//! condition ([`Condition`], parsed from text such as
//! `thinking and model ~ "claude-*"`), its target ([`Target`],
//! `<provider>[@<endpoint>]/<model>`) and the [`Router`] that picks, for the
//! [`Facts`] of one request, the alias or the first matching rule and builds
//! the fallback chain. Pure logic, no I/O: the daemon uses it to check what a
//! user adds, the `proxy serve` child to route every request.
//!
//! Grammar (keywords lowercase; spaces optional between tokens):
//! ```text
//! or      := and ("or" and)*
//! and     := unary ("and" unary)*
//! unary   := "not" unary | primary
//! primary := "(" or ")" | "always" | "thinking"
//!          | ("tokens" | "tools") op number
//!          | "model" "~" glob
//! op      := ">" | ">=" | "<" | "<=" | "=="
//! number  := digits, optionally followed by k (x 1000) or m (x 1000000)
//! glob    := "\"" chars "\"" (\" and \\ escape) | a run of chars without space, `(` or `)`
//! ```
//! A condition is at most [`MAX_LEN`] bytes and nests `(` and `not` at most
//! [`MAX_DEPTH`] deep, so hostile text cannot exhaust the stack.

use std::collections::BTreeMap;
use std::fmt;

use anyhow::{Context, Result, bail};

use super::Rule;
use super::facts::Facts;

/// The longest condition accepted, in bytes. Rules are typed by hand; this
/// bounds parse time and memory for anything else.
pub const MAX_LEN: usize = 4096;
/// The deepest nesting of `(` and `not`; each level is a few stack frames of
/// the recursive parser and evaluator.
pub const MAX_DEPTH: usize = 32;

/// A parsed condition, ready to evaluate against a request's facts.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    node: Node,
}

#[derive(Debug, Clone, PartialEq)]
enum Node {
    Always,
    Thinking,
    Compare { field: Field, op: Op, value: u64 },
    Model(Glob),
    Not(Box<Node>),
    // Flat lists rather than binary trees: a long `a and b and c ...` chain
    // stays one level deep for the evaluator and for drop.
    And(Vec<Node>),
    Or(Vec<Node>),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Field {
    Tokens,
    Tools,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Op {
    Gt,
    Ge,
    Lt,
    Le,
    Eq,
}

impl Op {
    fn holds(self, left: u64, right: u64) -> bool {
        match self {
            Op::Gt => left > right,
            Op::Ge => left >= right,
            Op::Lt => left < right,
            Op::Le => left <= right,
            Op::Eq => left == right,
        }
    }
}

/// A syntax error in a condition, at a 1-based column counted in chars.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConditionError {
    pub column: usize,
    pub message: String,
}

impl fmt::Display for ConditionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "column {}: {}", self.column, self.message)
    }
}

impl std::error::Error for ConditionError {}

impl ConditionError {
    /// The source on one line and a caret under the error's column, both
    /// indented by two spaces, for the CLI to print under the message. Long
    /// sources are cut to a window around the column (marked `…`); control
    /// characters show as spaces so the caret stays aligned.
    pub fn render(&self, source: &str) -> String {
        const SIDE: usize = 40;
        let chars: Vec<char> = source.chars().collect();
        let at = self.column.saturating_sub(1).min(chars.len());
        let start = at.saturating_sub(SIDE);
        let end = (at + SIDE).min(chars.len());
        let mut line = String::from("  ");
        let mut caret = String::from("  ");
        if start > 0 {
            line.push('…');
            caret.push(' ');
        }
        for &c in &chars[start..end] {
            line.push(if c.is_control() { ' ' } else { c });
        }
        if end < chars.len() {
            line.push('…');
        }
        caret.extend(std::iter::repeat_n(' ', at - start));
        caret.push('^');
        format!("{line}\n{caret}")
    }
}

impl Condition {
    /// Parses a condition; a syntax error names the column and what was
    /// expected there.
    pub fn parse(text: &str) -> Result<Condition, ConditionError> {
        if text.len() > MAX_LEN {
            let mut cut = MAX_LEN;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            return Err(ConditionError {
                column: text[..cut].chars().count() + 1,
                message: format!("the condition is longer than {MAX_LEN} bytes"),
            });
        }
        let mut parser = Parser { chars: text.chars().collect(), pos: 0, depth: 0 };
        parser.skip_space();
        if parser.at_end() {
            return Err(parser.error("the condition is empty: expected e.g. `always`".into()));
        }
        let node = parser.or()?;
        parser.skip_space();
        if !parser.at_end() {
            let found = parser.found();
            return Err(parser.error(format!("expected `and`, `or` or the end, found {found}")));
        }
        Ok(Condition { node })
    }

    /// Whether the condition holds for these facts.
    pub fn eval(&self, facts: &Facts) -> bool {
        self.node.eval(facts)
    }
}

impl Node {
    fn eval(&self, facts: &Facts) -> bool {
        match self {
            Node::Always => true,
            Node::Thinking => facts.thinking,
            Node::Compare { field, op, value } => {
                let left = match field {
                    Field::Tokens => facts.tokens,
                    Field::Tools => facts.tools,
                };
                op.holds(left, *value)
            }
            Node::Model(glob) => glob.matches(&facts.model),
            Node::Not(inner) => !inner.eval(facts),
            Node::And(all) => all.iter().all(|node| node.eval(facts)),
            Node::Or(any) => any.iter().any(|node| node.eval(facts)),
        }
    }
}

/// A recursive-descent parser over the condition's chars; `pos` is a char
/// index, so column = pos + 1.
struct Parser {
    chars: Vec<char>,
    pos: usize,
    depth: usize,
}

impl Parser {
    fn at_end(&self) -> bool {
        self.pos >= self.chars.len()
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn skip_space(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
    }

    fn error(&self, message: String) -> ConditionError {
        ConditionError { column: self.pos + 1, message }
    }

    /// What stands at `pos`, for "found ..." in messages: a word, one
    /// character, or the end.
    fn found(&self) -> String {
        let Some(first) = self.peek() else { return "the end of the condition".into() };
        if first.is_alphanumeric() || first == '_' {
            let word: String = self.chars[self.pos..]
                .iter()
                .take_while(|c| c.is_alphanumeric() || **c == '_')
                .take(40)
                .collect();
            format!("`{word}`")
        } else {
            format!("`{first}`")
        }
    }

    /// The keyword at `pos` (a run of ASCII letters), without consuming it.
    fn word(&self) -> &[char] {
        let rest = &self.chars[self.pos.min(self.chars.len())..];
        let len = rest.iter().take_while(|c| c.is_ascii_alphabetic() || **c == '_').count();
        &rest[..len]
    }

    fn eat_word(&mut self, keyword: &str) -> bool {
        let word = self.word();
        if word.len() == keyword.len() && word.iter().copied().eq(keyword.chars()) {
            self.pos += word.len();
            true
        } else {
            false
        }
    }

    fn enter(&mut self) -> Result<(), ConditionError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.error(format!("nested deeper than {MAX_DEPTH} levels")));
        }
        Ok(())
    }

    fn or(&mut self) -> Result<Node, ConditionError> {
        let mut any = vec![self.and()?];
        loop {
            self.skip_space();
            if !self.eat_word("or") {
                break;
            }
            any.push(self.and()?);
        }
        Ok(if any.len() == 1 { any.pop().expect("one node") } else { Node::Or(any) })
    }

    fn and(&mut self) -> Result<Node, ConditionError> {
        let mut all = vec![self.unary()?];
        loop {
            self.skip_space();
            if !self.eat_word("and") {
                break;
            }
            all.push(self.unary()?);
        }
        Ok(if all.len() == 1 { all.pop().expect("one node") } else { Node::And(all) })
    }

    fn unary(&mut self) -> Result<Node, ConditionError> {
        self.skip_space();
        let at = self.pos;
        if self.eat_word("not") {
            // Point a too-deep error at the `not` itself.
            self.pos = at;
            self.enter()?;
            self.pos += 3;
            let inner = self.unary()?;
            self.depth -= 1;
            return Ok(Node::Not(Box::new(inner)));
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Node, ConditionError> {
        self.skip_space();
        if self.peek() == Some('(') {
            self.enter()?;
            let open = self.pos;
            self.pos += 1;
            self.skip_space();
            if self.peek() == Some(')') {
                return Err(self.error("expected a condition inside `(` `)`, found `)`".into()));
            }
            let inner = self.or()?;
            self.skip_space();
            if self.peek() != Some(')') {
                let found = self.found();
                let message =
                    format!("expected `)` to close the `(` at column {}, found {found}", open + 1);
                return Err(self.error(message));
            }
            self.pos += 1;
            self.depth -= 1;
            return Ok(inner);
        }
        if self.eat_word("always") {
            return Ok(Node::Always);
        }
        if self.eat_word("thinking") {
            return Ok(Node::Thinking);
        }
        if self.eat_word("tokens") {
            return self.compare(Field::Tokens);
        }
        if self.eat_word("tools") {
            return self.compare(Field::Tools);
        }
        if self.eat_word("model") {
            self.skip_space();
            if self.peek() != Some('~') {
                let found = self.found();
                return Err(self.error(format!("expected `~` after `model`, found {found}")));
            }
            self.pos += 1;
            return self.glob().map(Node::Model);
        }
        let found = self.found();
        let keyword = matches!(self.word(), ['a', 'n', 'd'] | ['o', 'r']);
        let hint = if keyword { " (a condition is missing before it)" } else { "" };
        Err(self.error(format!(
            "expected `always`, `thinking`, `tokens`, `tools`, `model`, `not` or `(`, found {found}{hint}"
        )))
    }

    fn compare(&mut self, field: Field) -> Result<Node, ConditionError> {
        let name = match field {
            Field::Tokens => "tokens",
            Field::Tools => "tools",
        };
        self.skip_space();
        let two = (self.peek(), self.chars.get(self.pos + 1).copied());
        let (op, len, text) = match two {
            (Some('>'), Some('=')) => (Op::Ge, 2, ">="),
            (Some('<'), Some('=')) => (Op::Le, 2, "<="),
            (Some('='), Some('=')) => (Op::Eq, 2, "=="),
            (Some('>'), _) => (Op::Gt, 1, ">"),
            (Some('<'), _) => (Op::Lt, 1, "<"),
            _ => {
                let found = self.found();
                return Err(self.error(format!(
                    "expected `>`, `>=`, `<`, `<=` or `==` after `{name}`, found {found}"
                )));
            }
        };
        self.pos += len;
        self.skip_space();
        let value = self.number(text)?;
        Ok(Node::Compare { field, op, value })
    }

    fn number(&mut self, after: &str) -> Result<u64, ConditionError> {
        let start = self.pos;
        let mut value: u64 = 0;
        while let Some(digit) = self.peek().and_then(|c| c.to_digit(10)) {
            value = match value.checked_mul(10).and_then(|v| v.checked_add(u64::from(digit))) {
                Some(value) => value,
                None => {
                    self.pos = start;
                    return Err(self.error("the number is too large".into()));
                }
            };
            self.pos += 1;
        }
        if self.pos == start {
            let found = self.found();
            return Err(self.error(format!("expected a number after `{after}`, found {found}")));
        }
        let scale = match self.peek() {
            Some('k' | 'K') => 1_000,
            Some('m' | 'M') => 1_000_000,
            _ => 1,
        };
        if scale != 1 {
            self.pos += 1;
            value = match value.checked_mul(scale) {
                Some(value) => value,
                None => {
                    self.pos = start;
                    return Err(self.error("the number is too large".into()));
                }
            };
        }
        if self.peek().is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '.') {
            let found = self.found();
            return Err(self.error(format!(
                "unexpected {found} after the number (write whole numbers, optionally with k or m)"
            )));
        }
        Ok(value)
    }

    fn glob(&mut self) -> Result<Glob, ConditionError> {
        self.skip_space();
        let mut pattern = Vec::new();
        if self.peek() == Some('"') {
            let open = self.pos;
            self.pos += 1;
            loop {
                match self.peek() {
                    None => {
                        return Err(self.error(format!(
                            "expected `\"` to close the glob opened at column {}",
                            open + 1
                        )));
                    }
                    Some('"') => {
                        self.pos += 1;
                        break;
                    }
                    Some('\\') => {
                        self.pos += 1;
                        match self.peek() {
                            Some(c @ ('"' | '\\')) => {
                                pattern.push(c);
                                self.pos += 1;
                            }
                            _ => {
                                return Err(
                                    self.error("expected `\"` or `\\` after `\\` in a glob".into())
                                );
                            }
                        }
                    }
                    Some(c) => {
                        pattern.push(c);
                        self.pos += 1;
                    }
                }
            }
        } else {
            while let Some(c) =
                self.peek().filter(|c| !c.is_whitespace() && !matches!(c, '(' | ')'))
            {
                pattern.push(c);
                self.pos += 1;
            }
            if pattern.is_empty() {
                let found = self.found();
                return Err(self.error(format!(
                    "expected a glob after `~` (such as claude-* or \"a b*\"), found {found}"
                )));
            }
        }
        Ok(Glob { pattern })
    }
}

/// A glob over the whole model name: `*` any run of chars (also none), `?`
/// exactly one char, anything else itself (case-sensitive).
#[derive(Debug, Clone, PartialEq)]
struct Glob {
    pattern: Vec<char>,
}

impl Glob {
    /// Iterative matching with one backtrack point (the last `*`): linear
    /// in practice, at worst pattern x text, never recursive.
    fn matches(&self, text: &str) -> bool {
        let text: Vec<char> = text.chars().collect();
        let pattern = &self.pattern;
        let (mut p, mut t) = (0, 0);
        let mut star: Option<(usize, usize)> = None;
        while t < text.len() {
            if p < pattern.len() && (pattern[p] == '?' || pattern[p] == text[t]) {
                p += 1;
                t += 1;
            } else if p < pattern.len() && pattern[p] == '*' {
                star = Some((p + 1, t));
                p += 1;
            } else if let Some((after, from)) = star {
                p = after;
                t = from + 1;
                star = Some((after, from + 1));
            } else {
                return false;
            }
        }
        pattern[p..].iter().all(|&c| c == '*')
    }
}

/// Where a rule sends a request: a provider, optionally one of its
/// endpoints, and the model to ask it for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub provider: String,
    pub endpoint: Option<String>,
    pub model: String,
}

fn check_id(what: &str, id: &str, text: &str) -> Result<()> {
    if id.is_empty() {
        bail!("target `{text}`: the {what} is empty (expected <provider>[@<endpoint>]/<model>)");
    }
    if let Some(bad) =
        id.chars().find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(*c)))
    {
        bail!(
            "target `{text}`: the {what} `{id}` contains {bad:?}; ids use only a-z, 0-9, `.`, `_` and `-`"
        );
    }
    Ok(())
}

impl Target {
    /// Parses `<provider>[@<endpoint>]/<model>`, split at the first `/`
    /// (model names may contain `/`).
    pub fn parse(text: &str) -> Result<Target> {
        let Some((head, model)) = text.split_once('/') else {
            bail!(
                "target `{text}`: expected <provider>[@<endpoint>]/<model>, with a `/` before the model"
            );
        };
        let (provider, endpoint) = match head.split_once('@') {
            Some((provider, endpoint)) => (provider, Some(endpoint)),
            None => (head, None),
        };
        check_id("provider", provider, text)?;
        if let Some(endpoint) = endpoint {
            check_id("endpoint", endpoint, text)?;
        }
        if model.is_empty() {
            bail!("target `{text}`: the model after `/` is empty");
        }
        if model.chars().any(|c| c.is_control() || c.is_whitespace()) {
            bail!("target `{text}`: the model contains a space or a control character");
        }
        Ok(Target {
            provider: provider.to_owned(),
            endpoint: endpoint.map(str::to_owned),
            model: model.to_owned(),
        })
    }

    /// The key into `ServeConfig.upstreams`: `<provider>` or
    /// `<provider>@<endpoint>`.
    pub fn upstream_key(&self) -> String {
        match &self.endpoint {
            Some(endpoint) => format!("{}@{endpoint}", self.provider),
            None => self.provider.clone(),
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.upstream_key(), self.model)
    }
}

/// The rules and aliases of one profile, parsed once, in trial order.
#[derive(Debug, Clone)]
pub struct Router {
    /// Sorted by priority, higher first; equal priorities keep their order.
    rules: Vec<(String, Condition, Target)>,
    aliases: BTreeMap<String, Target>,
}

/// What the router chose for one request.
#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    /// The rule's name, or `alias <model>`; `None` when nothing matched.
    pub rule: Option<String>,
    /// The targets to try in order; empty means the default upstream with
    /// the requested model.
    pub targets: Vec<Target>,
}

impl Router {
    /// Parses every rule and alias; an error names the rule or alias.
    pub fn new(rules: &[Rule], aliases: &BTreeMap<String, String>) -> Result<Router> {
        let mut parsed = Vec::with_capacity(rules.len());
        for rule in rules {
            let condition = Condition::parse(&rule.condition)
                .with_context(|| format!("rule `{}`: condition `{}`", rule.name, rule.condition))?;
            let target =
                Target::parse(&rule.target).with_context(|| format!("rule `{}`", rule.name))?;
            parsed.push((rule.priority, rule.name.clone(), condition, target));
        }
        // A stable sort: equal priorities stay in the order given.
        parsed.sort_by_key(|rule| std::cmp::Reverse(rule.0));
        let mut by_model = BTreeMap::new();
        for (model, target) in aliases {
            let target = Target::parse(target).with_context(|| format!("alias `{model}`"))?;
            by_model.insert(model.clone(), target);
        }
        Ok(Router {
            rules: parsed
                .into_iter()
                .map(|(_, name, condition, target)| (name, condition, target))
                .collect(),
            aliases: by_model,
        })
    }

    /// The alias for the requested model, else the first matching rule,
    /// with the fallback chain (see [`Route`]).
    pub fn route(&self, facts: &Facts) -> Route {
        let first = self.rules.iter().position(|(_, condition, _)| condition.eval(facts));
        let chain = first.map(|at| self.rules[at..].iter().map(|(_, _, target)| target));
        let (rule, head) = match (self.aliases.get(&facts.model), first) {
            (Some(target), _) => (Some(format!("alias {}", facts.model)), Some(target)),
            (None, Some(at)) => (Some(self.rules[at].0.clone()), None),
            (None, None) => (None, None),
        };
        let mut targets: Vec<Target> = Vec::new();
        for target in head.into_iter().chain(chain.into_iter().flatten()) {
            if !targets.contains(target) {
                targets.push(target.clone());
            }
        }
        Route { rule, targets }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(model: &str, thinking: bool, tools: u64, tokens: u64) -> Facts {
        Facts { model: model.into(), thinking, tools, tokens }
    }

    fn holds(condition: &str, facts: &Facts) -> bool {
        Condition::parse(condition).unwrap_or_else(|e| panic!("{condition}: {e}")).eval(facts)
    }

    fn error(condition: &str) -> ConditionError {
        Condition::parse(condition).expect_err(condition)
    }

    #[test]
    fn always_and_thinking() {
        let off = facts("m", false, 0, 0);
        let on = facts("m", true, 0, 0);
        assert!(holds("always", &off));
        assert!(!holds("thinking", &off));
        assert!(holds("thinking", &on));
        assert!(holds("  thinking  ", &on));
    }

    #[test]
    fn comparisons_at_their_boundaries() {
        let at = |tokens, tools| facts("m", false, tools, tokens);
        for (condition, below, at_n, above) in [
            ("tokens > 100", false, false, true),
            ("tokens >= 100", false, true, true),
            ("tokens < 100", true, false, false),
            ("tokens <= 100", true, true, false),
            ("tokens == 100", false, true, false),
        ] {
            assert_eq!(holds(condition, &at(99, 0)), below, "{condition} at 99");
            assert_eq!(holds(condition, &at(100, 0)), at_n, "{condition} at 100");
            assert_eq!(holds(condition, &at(101, 0)), above, "{condition} at 101");
        }
        for (condition, below, at_n, above) in [
            ("tools > 3", false, false, true),
            ("tools >= 3", false, true, true),
            ("tools < 3", true, false, false),
            ("tools <= 3", true, true, false),
            ("tools == 3", false, true, false),
        ] {
            assert_eq!(holds(condition, &at(0, 2)), below, "{condition} at 2");
            assert_eq!(holds(condition, &at(0, 3)), at_n, "{condition} at 3");
            assert_eq!(holds(condition, &at(0, 4)), above, "{condition} at 4");
        }
        assert!(holds("tools>=0", &at(0, 0)));
        assert!(holds("tokens<1", &at(0, 0)));
    }

    #[test]
    fn numbers_take_k_and_m() {
        assert!(!holds("tokens > 60k", &facts("m", false, 0, 60_000)));
        assert!(holds("tokens > 60k", &facts("m", false, 0, 60_001)));
        assert!(holds("tokens >= 1M", &facts("m", false, 0, 1_000_000)));
        assert!(!holds("tokens >= 1m", &facts("m", false, 0, 999_999)));
        assert!(holds("tokens < 18446744073709551615", &facts("m", false, 0, 0)));
        assert_eq!(error("tokens < 18446744073709551616").column, 10);
        assert_eq!(error("tokens < 18446744073709552k").column, 10);
    }

    #[test]
    fn model_globs_match_the_whole_name() {
        let model = |name: &str| facts(name, false, 0, 0);
        assert!(holds("model ~ claude-*", &model("claude-opus-4-8")));
        assert!(!holds("model ~ claude-*", &model("xclaude-opus")));
        assert!(holds("model ~ claude-*", &model("claude-")));
        assert!(!holds("model ~ claude", &model("claude-opus")));
        assert!(holds("model ~ claude", &model("claude")));
        assert!(holds("model ~ *haiku*", &model("claude-haiku-4-5")));
        assert!(holds("model ~ gpt-?", &model("gpt-5")));
        assert!(!holds("model ~ gpt-?", &model("gpt-")));
        assert!(!holds("model ~ gpt-?", &model("gpt-55")));
        assert!(holds("model ~ ?", &model("é")));
        assert!(holds("model ~ */qwen*", &model("openrouter/qwen/qwen3")));
        assert!(holds("model ~ *", &model("")));
        assert!(holds("model ~ a*b*c", &model("aXbYbZc")));
        assert!(!holds("model ~ a*b*c", &model("aXbYbZ")));
        assert!(holds(r#"model ~ "my model*""#, &model("my model 2")));
        assert!(holds(r#"model ~ "a\"b\\c""#, &model(r#"a"b\c"#)));
        assert!(holds(r#"model ~ """#, &model("")));
        assert!(!holds(r#"model ~ """#, &model("x")));
        assert!(holds("(model ~ claude-*)", &model("claude-x")));
        assert!(holds("model~claude-*", &model("claude-x")));
        // Case-sensitive, as model ids are.
        assert!(!holds("model ~ Claude-*", &model("claude-x")));
    }

    #[test]
    fn glob_matching_stays_fast_on_hostile_patterns() {
        let pattern = format!("model ~ {}b", "a*".repeat(1000));
        let condition = Condition::parse(&pattern).unwrap();
        assert!(!condition.eval(&facts(&"a".repeat(3000), false, 0, 0)));
    }

    #[test]
    fn precedence_is_not_then_and_then_or() {
        let f = facts("m", true, 0, 0);
        // `always or thinking and X`: and binds tighter, so true.
        assert!(holds("always or thinking and tools > 5", &f));
        assert!(!holds("(always or thinking) and tools > 5", &f));
        // `not` binds tighter than `and`.
        assert!(!holds("not thinking and always", &f));
        assert!(holds("not (thinking and tools > 5)", &f));
        assert!(holds("not not thinking", &f));
        assert!(!holds("not always or not thinking", &f));
        assert!(holds("tools > 5 or tokens > 5 or thinking", &f));
        assert!(!holds("thinking and always and tools > 0", &f));
        assert!(holds("((thinking))", &f));
        assert!(holds("thinking and(always)", &f));
        // A keyword glued to a word is no keyword.
        assert!(Condition::parse("thinkingand always").is_err());
    }

    #[test]
    fn bad_syntax_points_at_the_column() {
        let cases = [
            ("", 1, "the condition is empty: expected e.g. `always`"),
            ("tokens > x", 10, "expected a number after `>`, found `x`"),
            ("tokens >", 9, "expected a number after `>`, found the end of the condition"),
            ("tokens 5", 8, "expected `>`, `>=`, `<`, `<=` or `==` after `tokens`, found `5`"),
            ("tools = 5", 7, "expected `>`, `>=`, `<`, `<=` or `==` after `tools`, found `=`"),
            (
                "tokens > 5x",
                11,
                "unexpected `x` after the number (write whole numbers, optionally with k or m)",
            ),
            (
                "tokens > 1.5k",
                11,
                "unexpected `.` after the number (write whole numbers, optionally with k or m)",
            ),
            ("model claude", 7, "expected `~` after `model`, found `claude`"),
            (
                "model ~ ",
                9,
                "expected a glob after `~` (such as claude-* or \"a b*\"), found the end of the condition",
            ),
            ("model ~ \"abc", 13, "expected `\"` to close the glob opened at column 9"),
            ("model ~ \"a\\b\"", 12, "expected `\"` or `\\` after `\\` in a glob"),
            (
                "thinking and",
                13,
                "expected `always`, `thinking`, `tokens`, `tools`, `model`, `not` or `(`, found the end of the condition",
            ),
            (
                "and thinking",
                1,
                "expected `always`, `thinking`, `tokens`, `tools`, `model`, `not` or `(`, found `and` (a condition is missing before it)",
            ),
            ("thinking always", 10, "expected `and`, `or` or the end, found `always`"),
            (
                "(thinking",
                10,
                "expected `)` to close the `(` at column 1, found the end of the condition",
            ),
            ("thinking)", 9, "expected `and`, `or` or the end, found `)`"),
            ("()", 2, "expected a condition inside `(` `)`, found `)`"),
            (
                "Thinking",
                1,
                "expected `always`, `thinking`, `tokens`, `tools`, `model`, `not` or `(`, found `Thinking`",
            ),
            (
                "été",
                1,
                "expected `always`, `thinking`, `tokens`, `tools`, `model`, `not` or `(`, found `été`",
            ),
            (
                "é and x",
                1,
                "expected `always`, `thinking`, `tokens`, `tools`, `model`, `not` or `(`, found `é`",
            ),
            (
                "always and é",
                12,
                "expected `always`, `thinking`, `tokens`, `tools`, `model`, `not` or `(`, found `é`",
            ),
        ];
        for (text, column, message) in cases {
            let err = error(text);
            assert_eq!((err.column, err.message.as_str()), (column, message), "{text:?}");
        }
        assert_eq!(
            error("tokens > x").to_string(),
            "column 10: expected a number after `>`, found `x`"
        );
    }

    #[test]
    fn render_puts_a_caret_under_the_column() {
        let text = "thinking and tokens > x";
        let err = error(text);
        assert_eq!(err.render(text), "  thinking and tokens > x\n                        ^");
        // Past the end (the end of the condition).
        let err = error("thinking and");
        assert_eq!(err.render("thinking and"), "  thinking and\n              ^");
        // Columns count chars, not bytes.
        let text = "model ~ \"é";
        let err = error(text);
        assert_eq!(err.column, 11);
        assert_eq!(err.render(text), "  model ~ \"é\n            ^");
        // A long source is cut around the column.
        let text = format!("{}tokens > x", "always and ".repeat(100));
        let err = error(&text);
        let rendered = err.render(&text);
        let (line, caret) = rendered.split_once('\n').unwrap();
        assert!(line.starts_with("  …") && line.ends_with("tokens > x"), "{line}");
        assert_eq!(caret.chars().count(), line.chars().count());
        assert!(caret.ends_with('^'));
    }

    #[test]
    fn hostile_input_is_refused_without_overflow() {
        let deep = format!("{}always{}", "(".repeat(10_000), ")".repeat(10_000));
        assert_eq!(error(&deep).column, MAX_LEN + 1);
        let deep = format!("{}always{}", "(".repeat(1_000), ")".repeat(1_000));
        let err = error(&deep);
        assert_eq!(err.column, MAX_DEPTH + 1);
        assert_eq!(err.message, format!("nested deeper than {MAX_DEPTH} levels"));
        let nots = format!("{}always", "not ".repeat(1000));
        let err = error(&nots);
        assert_eq!((err.column, err.message.contains("nested deeper")), (4 * MAX_DEPTH + 1, true));
        let at_limit = format!("{}always{}", "(".repeat(MAX_DEPTH), ")".repeat(MAX_DEPTH));
        assert!(holds(&at_limit, &facts("m", false, 0, 0)));
        let huge = "always or ".repeat(100_000) + "always";
        let err = error(&huge);
        assert_eq!(err.column, MAX_LEN + 1);
        // A long but legal flat chain is fine (no deep tree).
        let chain = "thinking or ".repeat(300) + "always";
        assert!(chain.len() <= MAX_LEN);
        assert!(holds(&chain, &facts("m", false, 0, 0)));
        let multibyte = "é".repeat(MAX_LEN);
        assert_eq!(error(&multibyte).column, MAX_LEN / 2 + 1);
    }

    #[test]
    fn targets_parse_and_print() {
        let t = Target::parse("openrouter/qwen/qwen3-coder").unwrap();
        assert_eq!(t.provider, "openrouter");
        assert_eq!(t.endpoint, None);
        assert_eq!(t.model, "qwen/qwen3-coder");
        assert_eq!(t.upstream_key(), "openrouter");
        assert_eq!(t.to_string(), "openrouter/qwen/qwen3-coder");
        let t = Target::parse("zai@coding/glm-4.6").unwrap();
        assert_eq!((t.provider.as_str(), t.endpoint.as_deref()), ("zai", Some("coding")));
        assert_eq!(t.upstream_key(), "zai@coding");
        assert_eq!(t.to_string(), "zai@coding/glm-4.6");
        assert!(Target::parse("a.b_c-1/m@x").is_ok());
        for (text, needle) in [
            ("anthropic", "with a `/` before the model"),
            ("/model", "the provider is empty"),
            ("anthropic/", "the model after `/` is empty"),
            ("@e/m", "the provider is empty"),
            ("p@/m", "the endpoint is empty"),
            ("Anthropic/m", "the provider `Anthropic` contains 'A'"),
            ("p@e@f/m", "the endpoint `e@f` contains '@'"),
            ("p q/m", "contains ' '"),
            ("p/a b", "the model contains a space or a control character"),
            ("p/a\tb", "the model contains a space or a control character"),
            ("p/a\u{7}", "the model contains a space or a control character"),
        ] {
            let err = Target::parse(text).expect_err(text).to_string();
            assert!(err.contains(needle), "{text:?}: {err}");
            assert!(err.starts_with(&format!("target `{text}`")), "{err}");
        }
    }

    fn rule(name: &str, condition: &str, target: &str, priority: i64) -> Rule {
        Rule { name: name.into(), condition: condition.into(), target: target.into(), priority }
    }

    fn names(route: &Route) -> Vec<String> {
        route.targets.iter().map(Target::to_string).collect()
    }

    #[test]
    fn first_match_wins_and_the_chain_follows_it() {
        let rules = [
            rule("long", "tokens > 60k", "gemini/gemini-2.5-pro", 0),
            rule("think", "thinking", "anthropic/claude-opus-4-8", 0),
            rule("rest", "always", "openrouter/qwen/qwen3", 0),
        ];
        let router = Router::new(&rules, &BTreeMap::new()).unwrap();
        let route = router.route(&facts("claude-x", true, 0, 70_000));
        assert_eq!(route.rule.as_deref(), Some("long"));
        assert_eq!(
            names(&route),
            ["gemini/gemini-2.5-pro", "anthropic/claude-opus-4-8", "openrouter/qwen/qwen3"]
        );
        let route = router.route(&facts("claude-x", true, 0, 60_000));
        assert_eq!(route.rule.as_deref(), Some("think"));
        assert_eq!(names(&route), ["anthropic/claude-opus-4-8", "openrouter/qwen/qwen3"]);
        let route = router.route(&facts("claude-x", false, 0, 0));
        assert_eq!(route.rule.as_deref(), Some("rest"));
        assert_eq!(names(&route), ["openrouter/qwen/qwen3"]);
    }

    #[test]
    fn no_match_routes_to_the_default() {
        let rules = [rule("think", "thinking", "anthropic/claude-opus-4-8", 0)];
        let router = Router::new(&rules, &BTreeMap::new()).unwrap();
        assert_eq!(router.route(&facts("m", false, 0, 0)), Route { rule: None, targets: vec![] });
        let empty = Router::new(&[], &BTreeMap::new()).unwrap();
        assert_eq!(empty.route(&facts("m", true, 9, 9)), Route { rule: None, targets: vec![] });
    }

    #[test]
    fn priority_orders_rules_and_ties_keep_the_given_order() {
        let rules = [
            rule("low", "always", "p/low", -1),
            rule("a", "always", "p/a", 5),
            rule("mid", "always", "p/mid", 0),
            rule("b", "always", "p/b", 5),
            rule("high", "tools > 0", "p/high", 10),
        ];
        let router = Router::new(&rules, &BTreeMap::new()).unwrap();
        let route = router.route(&facts("m", false, 0, 0));
        assert_eq!(route.rule.as_deref(), Some("a"));
        assert_eq!(names(&route), ["p/a", "p/b", "p/mid", "p/low"]);
        let route = router.route(&facts("m", false, 1, 0));
        assert_eq!(route.rule.as_deref(), Some("high"));
        assert_eq!(names(&route), ["p/high", "p/a", "p/b", "p/mid", "p/low"]);
    }

    #[test]
    fn the_chain_has_no_repeats() {
        let rules = [
            rule("one", "thinking", "p/x", 0),
            rule("two", "always", "q/y", 0),
            rule("three", "always", "p/x", 0),
            rule("four", "always", "p@e/x", 0),
            rule("five", "always", "q/y", 0),
        ];
        let router = Router::new(&rules, &BTreeMap::new()).unwrap();
        assert_eq!(names(&router.route(&facts("m", true, 0, 0))), ["p/x", "q/y", "p@e/x"]);
        assert_eq!(names(&router.route(&facts("m", false, 0, 0))), ["q/y", "p/x", "p@e/x"]);
    }

    #[test]
    fn aliases_come_before_rules_and_take_their_chain() {
        let rules = [
            rule("think", "thinking", "anthropic/claude-opus-4-8", 0),
            rule("rest", "always", "openrouter/qwen/qwen3", 0),
        ];
        let aliases = BTreeMap::from([
            ("fast".to_string(), "groq/llama-4".to_string()),
            ("best".to_string(), "openrouter/qwen/qwen3".to_string()),
        ]);
        let router = Router::new(&rules, &aliases).unwrap();
        let route = router.route(&facts("fast", true, 0, 0));
        assert_eq!(route.rule.as_deref(), Some("alias fast"));
        assert_eq!(
            names(&route),
            ["groq/llama-4", "anthropic/claude-opus-4-8", "openrouter/qwen/qwen3"]
        );
        let route = router.route(&facts("best", false, 0, 0));
        assert_eq!(route.rule.as_deref(), Some("alias best"));
        assert_eq!(names(&route), ["openrouter/qwen/qwen3"]);
        // Exact match only.
        let route = router.route(&facts("fast2", false, 0, 0));
        assert_eq!(route.rule.as_deref(), Some("rest"));
        // An alias with no rule matching is its target alone.
        let only = Router::new(&[rule("t", "thinking", "p/t", 0)], &aliases).unwrap();
        let route = only.route(&facts("fast", false, 0, 0));
        assert_eq!(
            route,
            Route {
                rule: Some("alias fast".into()),
                targets: vec![Target::parse("groq/llama-4").unwrap()]
            }
        );
    }

    #[test]
    fn router_errors_name_the_rule_or_alias() {
        let err =
            Router::new(&[rule("long", "tokens > x", "p/m", 0)], &BTreeMap::new()).unwrap_err();
        assert_eq!(
            format!("{err:#}"),
            "rule `long`: condition `tokens > x`: column 10: expected a number after `>`, found `x`"
        );
        // The CLI can still reach the column.
        assert_eq!(err.downcast_ref::<ConditionError>().map(|e| e.column), Some(10));
        let err = Router::new(&[rule("r", "always", "nomodel", 0)], &BTreeMap::new()).unwrap_err();
        assert!(format!("{err:#}").starts_with("rule `r`: target `nomodel`"), "{err:#}");
        let aliases = BTreeMap::from([("fast".to_string(), "P/m".to_string())]);
        let err = Router::new(&[], &aliases).unwrap_err();
        assert!(format!("{err:#}").starts_with("alias `fast`: target `P/m`"), "{err:#}");
    }
}

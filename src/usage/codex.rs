//! Codex CLI rollouts (`sessions/YYYY/MM/DD/rollout-*.jsonl` and
//! `archived_sessions/`): `{"timestamp","type","payload"}` lines, of which
//! three matter (agent-formats.md §6.2, agents-verified.md §7):
//! `session_meta` (the thread id, and the thread it was forked from),
//! `turn_context` (the model for the turns that follow) and
//! `event_msg`/`token_count` (the usage).
//!
//! Rules, decided and tested here:
//! - `last_token_usage` is the request's delta and is preferred; with only
//!   the session-cumulative `total_token_usage`, the delta is the difference
//!   from the previous total in the file.
//! - A snapshot whose total equals the previous one is a re-emission (rate
//!   limit refreshes) and bills nothing.
//! - The key is the thread's *root* plus the cumulative total: a fork or a
//!   sub-agent replays its parent's token history, and those replayed events
//!   carry the parent's totals, so they collide with the parent's own entries
//!   instead of being counted twice; the same rollout in `sessions/` and in
//!   `archived_sessions/` collides the same way.
//! - `cached_input_tokens` is a subset of `input_tokens` (OpenAI's meaning):
//!   it is subtracted here so that `Tokens::input` means the same for every
//!   agent. So is `cache_write_input_tokens` (0.169 on: 0 with OpenAI's own
//!   models, set by a provider that bills cache writes), counted as 5-minute
//!   cache writes; it is not part of the dedup key, so keys written before
//!   it was read stay the same. Reasoning is a subset of output and is kept
//!   for information.
//! - A turn without a `turn_context` model (early September 2025 builds) is
//!   counted under the model `unknown`, which has no price: reported as
//!   unpriced rather than guessed as `gpt-5`.
//! - The newer `token_usage_record` lines repeat what `token_count` says and
//!   are ignored.

use std::borrow::Cow;

use memchr::memmem;
use serde::{Deserialize, Serialize};

use super::claude::Parsed;
use super::{Entry, Tokens, key_hash, parse_timestamp_ms};

/// What the parser remembers between lines of one file; the scan index
/// stores it so an appended file is read on from where it stopped.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FileState {
    /// This file's thread id (from `session_meta`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub thread: String,
    /// The dedup scope: the thread this one was forked or spawned from, or
    /// the thread itself.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub root: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// The last cumulative total: input, cached, output, reasoning.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_total: Option<[u64; 4]>,
    /// The last cumulative `cache_write_input_tokens`, beside `last_total`
    /// (whose shape the index keeps).
    #[serde(default, skip_serializing_if = "crate::usage::is_zero")]
    pub last_writes: u64,
}

#[derive(Deserialize)]
struct Line<'a> {
    #[serde(borrow, default)]
    timestamp: Option<Cow<'a, str>>,
    #[serde(borrow, rename = "type")]
    kind: Cow<'a, str>,
    #[serde(borrow, default)]
    payload: Option<Payload<'a>>,
}

#[derive(Deserialize)]
struct Payload<'a> {
    #[serde(borrow, default, rename = "type")]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    forked_from_id: Option<Cow<'a, str>>,
    #[serde(default)]
    source: Option<serde_json::Value>,
    #[serde(borrow, default)]
    model: Option<Cow<'a, str>>,
    #[serde(default)]
    info: Option<Info>,
}

#[derive(Deserialize)]
struct Info {
    #[serde(default)]
    total_token_usage: Option<Usage>,
    #[serde(default)]
    last_token_usage: Option<Usage>,
}

#[derive(Deserialize, Clone, Copy)]
struct Usage {
    #[serde(default)]
    input_tokens: Option<u64>,
    #[serde(default)]
    cached_input_tokens: Option<u64>,
    #[serde(default)]
    cache_write_input_tokens: Option<u64>,
    #[serde(default)]
    output_tokens: Option<u64>,
    #[serde(default)]
    reasoning_output_tokens: Option<u64>,
}

impl Usage {
    fn tuple(self) -> [u64; 4] {
        [
            self.input_tokens.unwrap_or(0),
            self.cached_input_tokens.unwrap_or(0),
            self.output_tokens.unwrap_or(0),
            self.reasoning_output_tokens.unwrap_or(0),
        ]
    }
}

/// The pre-filter: lines without one of these words cannot matter.
pub struct Finders {
    token_count: memmem::Finder<'static>,
    turn_context: memmem::Finder<'static>,
    session_meta: memmem::Finder<'static>,
}

impl Default for Finders {
    fn default() -> Self {
        Finders {
            token_count: memmem::Finder::new(b"token_count"),
            turn_context: memmem::Finder::new(b"turn_context"),
            session_meta: memmem::Finder::new(b"session_meta"),
        }
    }
}

/// Parses one line, updating `state`. `root_of` maps a thread id to the root
/// the scanner already knows for it (for forks of forks).
pub fn parse_line<'a>(
    line: &'a [u8],
    state: &mut FileState,
    finders: &Finders,
    root_of: &dyn Fn(&str) -> Option<String>,
) -> Parsed<'a> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.iter().all(u8::is_ascii_whitespace) {
        return Parsed::Nothing;
    }
    if finders.token_count.find(line).is_none()
        && finders.turn_context.find(line).is_none()
        && finders.session_meta.find(line).is_none()
    {
        return if line.first() == Some(&b'{') { Parsed::Nothing } else { Parsed::Malformed };
    }
    let Ok(parsed) = serde_json::from_slice::<Line<'a>>(line) else {
        return Parsed::Malformed;
    };
    let Some(payload) = parsed.payload else { return Parsed::Nothing };
    match parsed.kind.as_ref() {
        "session_meta" => {
            if let Some(id) = payload.id.filter(|s| !s.is_empty()) {
                state.thread = id.into_owned();
            }
            let parent =
                payload.forked_from_id.filter(|s| !s.is_empty()).map(Cow::into_owned).or_else(
                    || {
                        payload
                            .source
                            .as_ref()
                            .and_then(|s| s.pointer("/subagent/thread_spawn/parent_thread_id"))
                            .and_then(|v| v.as_str())
                            .filter(|s| !s.is_empty())
                            .map(str::to_string)
                    },
                );
            state.root = match parent {
                Some(parent) => root_of(&parent).unwrap_or(parent),
                None => state.thread.clone(),
            };
            Parsed::Nothing
        }
        "turn_context" => {
            if let Some(model) = payload.model.filter(|s| !s.is_empty()) {
                state.model = Some(model.into_owned());
            }
            Parsed::Nothing
        }
        "event_msg" if payload.kind.as_deref() == Some("token_count") => {
            let Some(info) = payload.info else { return Parsed::Nothing };
            let Some(timestamp_ms) = parsed.timestamp.as_deref().and_then(parse_timestamp_ms)
            else {
                return Parsed::Malformed;
            };
            let total = info.total_token_usage.map(Usage::tuple);
            if total.is_some() && total == state.last_total {
                return Parsed::Nothing; // a re-emitted snapshot
            }
            let total_writes = info.total_token_usage.and_then(|u| u.cache_write_input_tokens);
            let (delta, writes) = match (info.last_token_usage, total, state.last_total) {
                (Some(last), _, _) => (last.tuple(), last.cache_write_input_tokens.unwrap_or(0)),
                (None, Some(t), Some(prev)) if t.iter().zip(prev).all(|(a, b)| *a >= b) => (
                    [t[0] - prev[0], t[1] - prev[1], t[2] - prev[2], t[3] - prev[3]],
                    total_writes.unwrap_or(0).saturating_sub(state.last_writes),
                ),
                (None, Some(t), _) => (t, total_writes.unwrap_or(0)),
                (None, None, _) => return Parsed::Nothing,
            };
            if total.is_some() {
                state.last_total = total;
                state.last_writes = total_writes.unwrap_or(0);
            }
            let [input, cached, output, reasoning] = delta;
            if input == 0 && output == 0 {
                return Parsed::Nothing;
            }
            let scope = if state.root.is_empty() { &state.thread } else { &state.root };
            let key = match total {
                Some(t) => key_hash(&[b"codex", scope.as_bytes(), &tuple_bytes(t)]),
                None => key_hash(&[
                    b"codex-last",
                    scope.as_bytes(),
                    parsed.timestamp.as_deref().unwrap_or("").as_bytes(),
                    &tuple_bytes(delta),
                ]),
            };
            let cached = cached.min(input);
            let writes = writes.min(input - cached);
            Parsed::Entry(Entry {
                key,
                message: 0,
                sidechain: false,
                timestamp_ms,
                model: Cow::Owned(state.model.clone().unwrap_or_else(|| "unknown".into())),
                session: Cow::Owned(state.thread.clone()),
                tokens: Tokens {
                    input: input - cached - writes,
                    output,
                    cache_write_5m: writes,
                    cache_write_1h: 0,
                    cache_read: cached,
                    reasoning,
                },
                fast: false,
                cost_usd: None,
            })
        }
        _ => Parsed::Nothing,
    }
}

fn tuple_bytes(t: [u64; 4]) -> [u8; 32] {
    let mut out = [0u8; 32];
    for (chunk, v) in out.chunks_exact_mut(8).zip(t) {
        chunk.copy_from_slice(&v.to_le_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURE: &str = include_str!("../../tests/fixtures/usage/codex-6.2.jsonl");

    fn run(text: &str, state: &mut FileState) -> (Vec<Entry<'static>>, usize) {
        let f = Finders::default();
        let mut out = Vec::new();
        let mut bad = 0;
        for line in text.lines() {
            match parse_line(line.as_bytes(), state, &f, &|_| None) {
                Parsed::Entry(e) => out.push(Entry {
                    model: Cow::Owned(e.model.into_owned()),
                    session: Cow::Owned(e.session.into_owned()),
                    ..e
                }),
                Parsed::Malformed => bad += 1,
                Parsed::Nothing => {}
            }
        }
        (out, bad)
    }

    fn sum(entries: &[Entry<'_>]) -> Tokens {
        let mut t = Tokens::default();
        entries.iter().for_each(|e| t.add(&e.tokens));
        t
    }

    #[test]
    fn fixture_counts_two_requests() {
        let mut state = FileState::default();
        let (e, bad) = run(FIXTURE, &mut state);
        assert_eq!(bad, 0);
        assert_eq!(e.len(), 2, "the 03:00:10 snapshot repeats the 03:00:09 one");
        let t = sum(&e);
        // Input 27 000 of which 19 000 cached; output 1 400.
        assert_eq!(t.input + t.cache_read, 27_000);
        assert_eq!(t.cache_read, 19_000);
        assert_eq!(t.output, 1_400);
        assert_eq!(t.reasoning, 512);
        assert!(e.iter().all(|e| e.model == "gpt-5.2-codex"));
        assert_eq!(e[0].session, "0199f2a1-0000-7000-8000-00000000000a");
        assert_eq!(state.last_total, Some([27_000, 19_000, 1_400, 512]));
    }

    #[test]
    fn reading_on_from_a_saved_state_gives_the_same_entries() {
        let lines: Vec<&str> = FIXTURE.lines().collect();
        let mut whole = FileState::default();
        let (all, _) = run(FIXTURE, &mut whole);
        let mut state = FileState::default();
        let (mut first, _) = run(&lines[..4].join("\n"), &mut state);
        let saved: FileState =
            serde_json::from_str(&serde_json::to_string(&state).unwrap()).unwrap();
        let mut state = saved;
        let (rest, _) = run(&lines[4..].join("\n"), &mut state);
        first.extend(rest);
        assert_eq!(first, all);
    }

    #[test]
    fn a_fork_replaying_its_parent_collides_with_it() {
        let mut parent = FileState::default();
        let (p, _) = run(FIXTURE, &mut parent);
        // The fork: its own session_meta, then the parent's history replayed
        // with new timestamps, then one request of its own.
        let mut fork_text = String::from(
            r#"{"timestamp":"2026-07-11T00:00:00Z","type":"session_meta","payload":{"id":"0199f2a1-0000-7000-8000-0000000000fb","forked_from_id":"0199f2a1-0000-7000-8000-00000000000a","source":"cli"}}"#,
        );
        for line in FIXTURE.lines().skip(1) {
            fork_text.push('\n');
            fork_text.push_str(&line.replace("2026-07-10T03", "2026-07-11T00"));
        }
        fork_text.push('\n');
        fork_text.push_str(r#"{"timestamp":"2026-07-11T00:05:00Z","type":"event_msg","payload":{"type":"token_count","info":{"total_token_usage":{"input_tokens":40000,"cached_input_tokens":26000,"output_tokens":1500,"reasoning_output_tokens":512,"total_tokens":41500},"last_token_usage":{"input_tokens":13000,"cached_input_tokens":7000,"output_tokens":100,"reasoning_output_tokens":0,"total_tokens":13100}}}}"#);
        let mut fork = FileState::default();
        let (f, _) = run(&fork_text, &mut fork);
        assert_eq!(fork.root, "0199f2a1-0000-7000-8000-00000000000a");
        assert_eq!(f.len(), 3);
        assert_eq!(f[0].key, p[0].key);
        assert_eq!(f[1].key, p[1].key);
        assert!(!p.iter().any(|e| e.key == f[2].key), "the fork's own request is new");
        assert_eq!(f[2].session, "0199f2a1-0000-7000-8000-0000000000fb");
    }

    #[test]
    fn sub_agents_are_scoped_to_their_parent_and_roots_chain() {
        let line = r#"{"timestamp":"2026-07-11T00:00:00Z","type":"session_meta","payload":{"id":"child","source":{"subagent":{"thread_spawn":{"parent_thread_id":"fork"}}}}}"#;
        let mut state = FileState::default();
        let f = Finders::default();
        let root_of = |t: &str| (t == "fork").then(|| "origin".to_string());
        assert_eq!(parse_line(line.as_bytes(), &mut state, &f, &root_of), Parsed::Nothing);
        assert_eq!(state.thread, "child");
        assert_eq!(state.root, "origin");
    }

    #[test]
    fn totals_only_are_differenced() {
        let text = r#"{"timestamp":"2026-07-10T03:00:00Z","type":"session_meta","payload":{"id":"t"}}
{"timestamp":"2026-07-10T03:00:01Z","type":"turn_context","payload":{"model":"gpt-5"}}
{"timestamp":"2026-07-10T03:00:02Z","type":"event_msg","payload":{"type":"token_count","info":{"total_token_usage":{"input_tokens":100,"cached_input_tokens":40,"output_tokens":10}}}}
{"timestamp":"2026-07-10T03:00:03Z","type":"event_msg","payload":{"type":"token_count","info":{"total_token_usage":{"input_tokens":250,"cached_input_tokens":140,"output_tokens":30}}}}"#;
        let (e, _) = run(text, &mut FileState::default());
        assert_eq!(e.len(), 2);
        assert_eq!((e[1].tokens.input, e[1].tokens.cache_read, e[1].tokens.output), (50, 100, 20));
    }

    #[test]
    fn a_turn_without_a_model_is_unknown_not_guessed() {
        let text = r#"{"timestamp":"2026-07-10T03:00:00Z","type":"session_meta","payload":{"id":"t"}}
{"timestamp":"2026-07-10T03:00:02Z","type":"event_msg","payload":{"type":"token_count","info":{"last_token_usage":{"input_tokens":100,"output_tokens":10}}}}"#;
        let (e, _) = run(text, &mut FileState::default());
        assert_eq!(e[0].model, "unknown");
    }

    /// The `token_count` Codex 0.171.0 wrote against the test mock when
    /// the Responses usage said `input_tokens_details.cache_write_tokens:
    /// 200` (input 321, cached 100): the writes are a part of
    /// `input_tokens` (`total_tokens` is still input + output), like
    /// cached reads, and become 5-minute cache writes.
    #[test]
    fn cache_writes_are_read_out_of_the_input() {
        let text = r#"{"timestamp":"2026-12-07T05:00:30.000Z","type":"session_meta","payload":{"id":"t"}}
{"timestamp":"2026-12-07T05:00:30.000Z","type":"turn_context","payload":{"model":"gpt-5.6"}}
{"timestamp":"2026-12-07T05:00:36.646Z","ordinal":12,"type":"event_msg","payload":{"type":"token_count","info":{"total_token_usage":{"input_tokens":321,"cached_input_tokens":100,"cache_write_input_tokens":200,"output_tokens":21,"reasoning_output_tokens":5,"total_tokens":342},"last_token_usage":{"input_tokens":321,"cached_input_tokens":100,"cache_write_input_tokens":200,"output_tokens":21,"reasoning_output_tokens":5,"total_tokens":342},"last_usage_includes_reasoning":false,"model_context_window":258400},"rate_limits":{"limit_id":"codex","limit_name":null,"primary":null,"secondary":null,"credits":null,"individual_limit":null,"spend_control_reached":null,"plan_type":null,"rate_limit_reached_type":null}}}
{"timestamp":"2026-12-07T05:00:40.000Z","type":"event_msg","payload":{"type":"token_count","info":{"total_token_usage":{"input_tokens":821,"cached_input_tokens":400,"cache_write_input_tokens":300,"output_tokens":31,"reasoning_output_tokens":5,"total_tokens":852}}}}"#;
        let (e, bad) = run(text, &mut FileState::default());
        assert_eq!(bad, 0);
        assert_eq!(e.len(), 2);
        let t = e[0].tokens;
        assert_eq!((t.input, t.cache_read, t.cache_write_5m, t.output), (21, 100, 200, 21));
        assert_eq!(t.total(), 342, "nothing counted twice");
        // Totals only: the writes are differenced too.
        let t = e[1].tokens;
        assert_eq!((t.input, t.cache_read, t.cache_write_5m, t.output), (100, 300, 100, 10));
        // The key does not depend on the writes (stable across upgrades).
        let mut no_writes = FileState::default();
        let (old, _) = run(&text.replace("\"cache_write_input_tokens\":200,", ""), &mut no_writes);
        assert_eq!(old[0].key, e[0].key);
        // More writes than uncached input cannot make input negative.
        let odd =
            text.replace("\"cache_write_input_tokens\":200,", "\"cache_write_input_tokens\":5000,");
        let (o, _) = run(&odd, &mut FileState::default());
        assert_eq!((o[0].tokens.input, o[0].tokens.cache_write_5m), (0, 221));
    }

    #[test]
    fn the_real_codex_line_parses() {
        // agents-verified.md §7, codex-cli 0.169.0 against the mock.
        let text = r#"{"timestamp":"2026-11-25T01:19:54.434Z","ordinal":12,"type":"event_msg","payload":{"type":"token_count","info":{"total_token_usage":{"input_tokens":321,"cached_input_tokens":100,"cache_write_input_tokens":0,"output_tokens":21,"reasoning_output_tokens":5,"total_tokens":342},"last_token_usage":{"input_tokens":321,"cached_input_tokens":100,"cache_write_input_tokens":0,"output_tokens":21,"reasoning_output_tokens":5,"total_tokens":342},"last_usage_includes_reasoning":false,"model_context_window":258400},"rate_limits":{"limit_id":"codex","limit_name":null,"primary":null,"secondary":null,"credits":null,"individual_limit":null,"spend_control_reached":null,"plan_type":null,"rate_limit_reached_type":null}}}
{"timestamp":"2026-11-25T01:19:54.434Z","ordinal":11,"type":"token_usage_record","payload":{"thread_id":"t","usage":{"input_tokens":321,"cached_input_tokens":100,"output_tokens":21}}}"#;
        let (e, bad) = run(text, &mut FileState::default());
        assert_eq!(bad, 0);
        assert_eq!(e.len(), 1, "token_usage_record repeats token_count");
        assert_eq!((e[0].tokens.input, e[0].tokens.cache_read, e[0].tokens.output), (221, 100, 21));
    }
}

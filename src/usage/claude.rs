//! Claude Code transcripts (`projects/<encoded cwd>/<session>.jsonl`, sub-agent
//! files below them): one JSON object per line; only assistant lines carrying
//! `message.usage` bill anything (agent-formats.md §6.1).
//!
//! Dedup rules, decided and tested here:
//! - One API response is written as one line per content block, every line
//!   with the same `message.id`, `requestId` and full usage (agents-verified.md
//!   §6); older versions wrote growing streaming snapshots. The key is
//!   (`message.id`, `requestId`) and the store keeps the most complete entry.
//! - A line without `requestId` (a provider that sends no `request-id`
//!   header) is keyed on `message.id` alone. ccusage counts every such line,
//!   which multiplies a response by its number of content blocks.
//! - `isSidechain` replays of an already counted message under a new request
//!   id are dropped by the store (see [`super::Entry::message`]).
//! - `<synthetic>` models (Claude Code's local error messages) bill nothing.
//! - A line without any id is keyed on its own bytes, so rescanning a file
//!   never counts it twice.

use std::borrow::Cow;

use memchr::memmem;
use serde::Deserialize;

use super::{Entry, Tokens, key_hash, parse_timestamp_ms};

#[derive(Deserialize)]
struct Line<'a> {
    #[serde(borrow, default)]
    timestamp: Option<Cow<'a, str>>,
    #[serde(borrow, default, rename = "sessionId")]
    session_id: Option<Cow<'a, str>>,
    #[serde(borrow, default, rename = "requestId")]
    request_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    uuid: Option<Cow<'a, str>>,
    #[serde(default, rename = "isSidechain")]
    is_sidechain: Option<bool>,
    #[serde(default, rename = "costUSD")]
    cost_usd: Option<f64>,
    #[serde(borrow, default)]
    message: Option<Message<'a>>,
}

#[derive(Deserialize)]
struct Message<'a> {
    #[serde(borrow, default)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    model: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    usage: Option<Usage<'a>>,
}

#[derive(Deserialize)]
struct Usage<'a> {
    #[serde(default)]
    input_tokens: Option<u64>,
    #[serde(default)]
    output_tokens: Option<u64>,
    #[serde(default)]
    cache_creation_input_tokens: Option<u64>,
    #[serde(default)]
    cache_read_input_tokens: Option<u64>,
    #[serde(default)]
    cache_creation: Option<CacheCreation>,
    #[serde(borrow, default)]
    speed: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct CacheCreation {
    #[serde(default)]
    ephemeral_5m_input_tokens: Option<u64>,
    #[serde(default)]
    ephemeral_1h_input_tokens: Option<u64>,
}

/// What one line turned out to be.
#[derive(Debug, PartialEq)]
pub enum Parsed<'a> {
    /// A billable response.
    Entry(Entry<'a>),
    /// Valid, but bills nothing (a user line, `<synthetic>`, zero tokens).
    Nothing,
    /// Not JSON, or usage without a timestamp: counted as a skipped line.
    Malformed,
}

/// The pre-filter: a line that does not contain `"usage"` cannot bill
/// anything, and skipping the JSON parse of those lines (tool results,
/// user prompts) is most of the scanner's speed.
pub fn finder() -> memmem::Finder<'static> {
    memmem::Finder::new(b"\"usage\"")
}

/// Parses one line (without its newline). `finder` is [`finder`]'s result,
/// built once per scan.
pub fn parse_line<'a>(line: &'a [u8], finder: &memmem::Finder<'_>) -> Parsed<'a> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.iter().all(u8::is_ascii_whitespace) {
        return Parsed::Nothing;
    }
    if finder.find(line).is_none() {
        // Cheap sanity check so garbage lines are still counted as skipped.
        return if line.first() == Some(&b'{') { Parsed::Nothing } else { Parsed::Malformed };
    }
    let Ok(parsed) = serde_json::from_slice::<Line<'a>>(line) else {
        return Parsed::Malformed;
    };
    let Some(message) = parsed.message else { return Parsed::Nothing };
    let Some(usage) = message.usage else { return Parsed::Nothing };
    let model = message.model.unwrap_or(Cow::Borrowed("unknown"));
    if model == "<synthetic>" {
        return Parsed::Nothing;
    }
    let Some(timestamp_ms) = parsed.timestamp.as_deref().and_then(parse_timestamp_ms) else {
        return Parsed::Malformed;
    };

    let writes = usage.cache_creation_input_tokens;
    let split = usage.cache_creation.as_ref();
    let one_hour = split.and_then(|c| c.ephemeral_1h_input_tokens).unwrap_or(0);
    let all_writes = writes
        .unwrap_or_else(|| split.and_then(|c| c.ephemeral_5m_input_tokens).unwrap_or(0) + one_hour);
    let one_hour = one_hour.min(all_writes);
    let tokens = Tokens {
        input: usage.input_tokens.unwrap_or(0),
        output: usage.output_tokens.unwrap_or(0),
        cache_write_5m: all_writes - one_hour,
        cache_write_1h: one_hour,
        cache_read: usage.cache_read_input_tokens.unwrap_or(0),
        reasoning: 0,
    };
    if tokens.total() == 0 && parsed.cost_usd.is_none_or(|c| c <= 0.0) {
        return Parsed::Nothing;
    }

    // ccusage treats empty-string ids as absent; so do we.
    let id = message.id.filter(|s| !s.is_empty());
    let request = parsed.request_id.filter(|s| !s.is_empty());
    let (key, message_key) = match (&id, &request) {
        (Some(id), Some(req)) => (
            key_hash(&[b"claude", id.as_bytes(), req.as_bytes()]),
            key_hash(&[b"claude-message", id.as_bytes()]),
        ),
        (Some(id), None) => {
            let k = key_hash(&[b"claude-message", id.as_bytes()]);
            (k, k)
        }
        (None, _) => match (&parsed.session_id, &parsed.uuid) {
            (Some(s), Some(u)) => (key_hash(&[b"claude-line", s.as_bytes(), u.as_bytes()]), 0),
            _ => (key_hash(&[b"claude-bytes", line]), 0),
        },
    };
    Parsed::Entry(Entry {
        key,
        message: message_key,
        sidechain: parsed.is_sidechain.unwrap_or(false),
        timestamp_ms,
        model,
        session: parsed.session_id.unwrap_or(Cow::Borrowed("")),
        tokens,
        fast: usage.speed.as_deref() == Some("fast"),
        cost_usd: parsed.cost_usd.filter(|c| *c > 0.0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// agent-formats.md §6.1, verbatim.
    pub const FIXTURE: &str = include_str!("../../tests/fixtures/usage/claude-6.1.jsonl");

    fn entries(text: &str) -> (Vec<Entry<'_>>, usize) {
        let f = finder();
        let mut out = Vec::new();
        let mut bad = 0;
        for line in text.lines() {
            match parse_line(line.as_bytes(), &f) {
                Parsed::Entry(e) => out.push(e),
                Parsed::Malformed => bad += 1,
                Parsed::Nothing => {}
            }
        }
        (out, bad)
    }

    #[test]
    fn fixture_lines_parse_to_entries() {
        let (e, bad) = entries(FIXTURE);
        assert_eq!(bad, 1, "the `not json at all` line");
        // a1, a2 (same key), a3, a4 (sidechain, new request id), old.
        assert_eq!(e.len(), 5);
        assert_eq!(e[0].key, e[1].key, "snapshots of one response share a key");
        assert_eq!(e[0].tokens.output, 1);
        assert_eq!(e[1].tokens.output, 87);
        assert_eq!(
            e[1].tokens,
            Tokens {
                input: 4,
                output: 87,
                cache_write_5m: 1200,
                cache_write_1h: 0,
                cache_read: 18000,
                reasoning: 0
            }
        );
        assert_eq!(e[1].model, "claude-sonnet-4-5-20250929");
        assert_eq!(e[1].session, "5b1f3c7e-0000-4000-8000-000000000001");
        assert_eq!(e[1].timestamp_ms, parse_timestamp_ms("2026-03-02T09:00:05.400Z").unwrap());
        // a3: 1 h writes and fast mode.
        assert_eq!(e[2].tokens.cache_write_1h, 300);
        assert_eq!(e[2].tokens.cache_write_5m, 0);
        assert!(e[2].fast && !e[2].sidechain);
        // a4 replays msg_01BBB from a sidechain under another request id.
        assert!(e[3].sidechain);
        assert_ne!(e[3].key, e[2].key);
        assert_eq!(e[3].message, e[2].message);
        // The old line carries its own cost and no cache split.
        assert_eq!(e[4].cost_usd, Some(0.0123));
        assert_eq!(e[4].tokens.cache_write_5m, 25);
    }

    #[test]
    fn the_line_real_claude_code_wrote_parses() {
        // agents-verified.md §6: Claude Code 2.1.197 against the mock.
        let line = br#"{"parentUuid":"4564fd2e-7eec-4c62-80a8-46d34e68cd4b","isSidechain":false,"message":{"id":"msg_1795569514325","type":"message","role":"assistant","model":"claude-opus-4-8","content":[{"type":"text","text":"pong from mock"}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":123,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":45,"server_tool_use":{"web_search_requests":0,"web_fetch_requests":0},"service_tier":"standard","cache_creation":{"ephemeral_1h_input_tokens":0,"ephemeral_5m_input_tokens":0},"inference_geo":"","iterations":[],"speed":"standard"},"stop_details":null},"requestId":"req_mock_1795569514325","type":"assistant","uuid":"2f3fc14d-a160-4144-8321-b0edb236e65d","timestamp":"2026-11-25T01:18:34.329Z","userType":"external","entrypoint":"sdk-cli","cwd":"/tmp/q6/work","sessionId":"e96e94f1-c22f-4dba-a898-e8cd7c5a487d","version":"2.1.197","gitBranch":"HEAD"}"#;
        let Parsed::Entry(e) = parse_line(line, &finder()) else { panic!("bills") };
        assert_eq!((e.tokens.input, e.tokens.output, e.tokens.total()), (123, 45, 168));
        assert_eq!(e.model, "claude-opus-4-8");
        assert_eq!(e.session, "e96e94f1-c22f-4dba-a898-e8cd7c5a487d");
        assert!(!e.fast && !e.sidechain && e.cost_usd.is_none());
        assert_eq!(e.key, key_hash(&[b"claude", b"msg_1795569514325", b"req_mock_1795569514325"]));
    }

    #[test]
    fn synthetic_and_usage_free_lines_bill_nothing() {
        let f = finder();
        let synthetic = br#"{"type":"assistant","timestamp":"2026-03-02T09:00:00Z","message":{"id":"m","model":"<synthetic>","usage":{"input_tokens":0,"output_tokens":0}}}"#;
        assert_eq!(parse_line(synthetic, &f), Parsed::Nothing);
        let user = br#"{"type":"user","message":{"role":"user","content":"hi"}}"#;
        assert_eq!(parse_line(user, &f), Parsed::Nothing);
        assert_eq!(parse_line(b"", &f), Parsed::Nothing);
    }

    #[test]
    fn truncated_and_invalid_lines() {
        let f = finder();
        let line = FIXTURE.lines().nth(1).unwrap().as_bytes();
        assert_eq!(parse_line(&line[..line.len() - 10], &f), Parsed::Malformed);
        // Invalid UTF-8 in text we skip costs nothing: the tokens still count.
        let mut bad_utf8 = line.to_vec();
        let at = memmem::find(&bad_utf8, b"Sure.").unwrap();
        bad_utf8[at] = 0xff;
        assert!(matches!(parse_line(&bad_utf8, &f), Parsed::Entry(_)));
        // In a field we keep, it makes the line unreadable.
        let mut bad_model = line.to_vec();
        let at = memmem::find(&bad_model, b"claude-sonnet").unwrap();
        bad_model[at] = 0xff;
        assert_eq!(parse_line(&bad_model, &f), Parsed::Malformed);
        assert_eq!(parse_line(b"garbage", &f), Parsed::Malformed);
    }

    #[test]
    fn a_missing_request_id_keys_on_the_message_id() {
        let f = finder();
        let a = br#"{"timestamp":"2026-03-02T09:00:00Z","message":{"id":"msg_x","model":"m","content":[{"type":"text"}],"usage":{"input_tokens":1,"output_tokens":2}}}"#;
        let b = br#"{"timestamp":"2026-03-02T09:00:01Z","message":{"id":"msg_x","model":"m","content":[{"type":"tool_use"}],"usage":{"input_tokens":1,"output_tokens":2}}}"#;
        let (Parsed::Entry(a), Parsed::Entry(b)) = (parse_line(a, &f), parse_line(b, &f)) else {
            panic!("both bill");
        };
        assert_eq!(a.key, b.key);
        assert_eq!(a.key, a.message);
    }

    #[test]
    fn lines_without_ids_are_keyed_stably() {
        let f = finder();
        let line = br#"{"timestamp":"2026-03-02T09:00:00Z","sessionId":"s","uuid":"u","message":{"model":"m","usage":{"input_tokens":1}}}"#;
        let (Parsed::Entry(a), Parsed::Entry(b)) = (parse_line(line, &f), parse_line(line, &f))
        else {
            panic!("bills");
        };
        assert_eq!(a.key, b.key);
        assert_eq!(a.message, 0);
    }

    #[test]
    fn escaped_strings_and_crlf_are_fine() {
        let f = finder();
        let line = b"{\"timestamp\":\"2026-03-02T09:00:00Z\",\"sessionId\":\"s\\u00e9\",\"requestId\":\"r\",\"message\":{\"id\":\"m\",\"model\":\"claude-x\",\"usage\":{\"input_tokens\":5}}}\r";
        let Parsed::Entry(e) = parse_line(line, &f) else { panic!("bills") };
        assert_eq!(e.session, "s\u{e9}");
        assert_eq!(e.tokens.input, 5);
    }
}

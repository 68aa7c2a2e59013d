//! What a request says and what a response reports (issue 12, items 4 and
//! 6): [`Facts`] are read from a request body for the rules to match on;
//! [`UsageMeter`] reads the token usage out of the upstream's answer as the
//! bytes pass through the relay, streamed (SSE) or not. Pure logic, no I/O.
//!
//! Request fields read:
//! - model: `model` (empty when missing or not a string);
//! - thinking: Anthropic `thinking.type` is `enabled` or `adaptive`; OpenAI
//!   `reasoning` (Responses, `{"effort": ..}`) or `reasoning_effort` (chat)
//!   present and not null, unless its effort is `"none"`;
//! - tools: the number of entries in `tools`;
//! - tokens: an estimate, the UTF-8 bytes of the text divided by 4. Text is
//!   `system` and `instructions`, and inside `messages` and `input` every
//!   string under `text`, `thinking`, `content`, `output`, `arguments`,
//!   `summary`, `refusal`, `input` (tool inputs that are objects count as
//!   their serialized JSON), plus `tools` serialized.

use std::io;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::Family;

/// The facts of one request that conditions test.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts {
    /// The requested model, as the agent sent it.
    pub model: String,
    pub thinking: bool,
    pub tools: u64,
    /// Estimated input tokens (bytes of text / 4).
    pub tokens: u64,
}

/// Keys inside messages and items whose values carry text the model reads.
const TEXT_KEYS: &[&str] =
    &["text", "thinking", "content", "output", "arguments", "summary", "refusal", "input"];

/// Deeper than any real body; `serde_json` stops parsing at 128 anyway.
const MAX_WALK_DEPTH: usize = 64;

impl Facts {
    pub fn from_body(family: Family, body: &Value) -> Facts {
        let model = body.get("model").and_then(Value::as_str).unwrap_or_default().to_owned();
        let thinking = match family {
            Family::Anthropic => matches!(
                body.get("thinking").and_then(|t| t.get("type")).and_then(Value::as_str),
                Some("enabled" | "adaptive")
            ),
            Family::OpenAi => {
                let reasoning = body.get("reasoning").filter(|r| !r.is_null());
                let effort = match reasoning {
                    Some(r) => r.get("effort").unwrap_or(r),
                    None => body.get("reasoning_effort").unwrap_or(&Value::Null),
                };
                !effort.is_null() && effort.as_str() != Some("none")
            }
        };
        let tools = body.get("tools").and_then(Value::as_array).map_or(0, |t| t.len() as u64);
        let mut bytes = 0;
        for key in ["system", "instructions", "messages", "input"] {
            if let Some(value) = body.get(key) {
                bytes += text_bytes(value, 0);
            }
        }
        if let Some(tools) = body.get("tools") {
            bytes += json_bytes(tools);
        }
        Facts { model, thinking, tools, tokens: bytes / 4 }
    }
}

/// The bytes of text in a message-like value: strings count whole; in
/// objects only [`TEXT_KEYS`] count (not ids, types, signatures or base64
/// image data).
fn text_bytes(value: &Value, depth: usize) -> u64 {
    if depth > MAX_WALK_DEPTH {
        return 0;
    }
    match value {
        Value::String(text) => text.len() as u64,
        Value::Array(items) => items.iter().map(|item| text_bytes(item, depth + 1)).sum(),
        Value::Object(map) => {
            TEXT_KEYS
            .iter()
            .filter_map(|key| map.get(*key).map(|v| (*key, v)))
            .map(|(key, v)| match v {
                // A tool_use's input: what the model reads is its JSON.
                Value::Object(_) if key == "input" => json_bytes(v),
                _ => text_bytes(v, depth + 1),
            })
            .sum::<u64>()
            // Chat completions: an assistant message's tool_calls[].function.arguments.
            + map.get("tool_calls").map_or(0, |calls| {
                calls.as_array().map_or(0, |calls| {
                    calls.iter().filter_map(|c| c.get("function")).map(|f| text_bytes(f, depth + 1)).sum()
                })
            })
        }
        _ => 0,
    }
}

/// The length of a value's compact JSON, counted without building it.
fn json_bytes(value: &Value) -> u64 {
    let mut counter = Counter(0);
    // Writing to a counter cannot fail, and a Value always serializes.
    let _ = serde_json::to_writer(&mut counter, value);
    counter.0
}

struct Counter(u64);

impl io::Write for Counter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0 += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Token usage of one answer, as the request log records it. `input`
/// excludes cached input (OpenAI's counts include it; it is subtracted).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProxyTokens {
    pub input: u64,
    pub output: u64,
    pub cache_read: u64,
    pub cache_write: u64,
}

/// The largest SSE event kept for parsing; a bigger one (a huge text delta)
/// is skipped, as no usage event comes near it.
const MAX_EVENT: usize = 1 << 20;
/// The largest non-streaming body parsed for usage (requests are capped at
/// the same size).
const MAX_BODY: usize = 32 << 20;

/// Reads usage from an upstream answer fed in pieces split anywhere.
///
/// Streaming answers are SSE: lines end at `\n` (a `\r` before it is
/// dropped), `data:` lines join into an event, a blank line ends it. Only
/// events whose data mention `"usage"` are parsed. Anthropic:
/// `message_start.message.usage` then each `message_delta.usage` (fields
/// present override; `output_tokens` is cumulative). OpenAI: the last
/// `response.*` event's `response.usage` (Responses) or the chunk whose
/// `usage` is not null (chat completions). Non-streaming: the body's
/// `usage`, in the same shapes.
#[derive(Debug)]
pub struct UsageMeter {
    family: Family,
    streaming: bool,
    /// Non-streaming: the body so far. Streaming: the current line.
    buffer: Vec<u8>,
    /// Streaming: the current event's data lines, joined by `\n`.
    data: Vec<u8>,
    has_data: bool,
    /// The current line or event outgrew its cap: drop bytes until the
    /// line ends (`skip_line`) and the event ends (`skip_event`).
    skip_line: bool,
    skip_event: bool,
    /// Non-streaming body over [`MAX_BODY`].
    overflow: bool,
    tokens: Option<ProxyTokens>,
    model: Option<String>,
}

impl UsageMeter {
    pub fn new(family: Family, streaming: bool) -> UsageMeter {
        UsageMeter {
            family,
            streaming,
            buffer: Vec::new(),
            data: Vec::new(),
            has_data: false,
            skip_line: false,
            skip_event: false,
            overflow: false,
            tokens: None,
            model: None,
        }
    }

    pub fn feed(&mut self, mut bytes: &[u8]) {
        if !self.streaming {
            if self.overflow || self.buffer.len() + bytes.len() > MAX_BODY {
                self.overflow = true;
                self.buffer = Vec::new();
            } else {
                self.buffer.extend_from_slice(bytes);
            }
            return;
        }
        while !bytes.is_empty() {
            let (piece, ended) = match memchr::memchr(b'\n', bytes) {
                Some(at) => (&bytes[..at], Some(at + 1)),
                None => (bytes, None),
            };
            if !self.skip_line {
                if self.buffer.len() + piece.len() > MAX_EVENT {
                    self.skip_line = true;
                    self.skip_event = true;
                    self.buffer = Vec::new();
                } else {
                    self.buffer.extend_from_slice(piece);
                }
            }
            match ended {
                Some(at) => {
                    self.end_line();
                    bytes = &bytes[at..];
                }
                None => break,
            }
        }
    }

    fn end_line(&mut self) {
        let mut line = std::mem::take(&mut self.buffer);
        let skipped = std::mem::replace(&mut self.skip_line, false);
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        if !skipped && line.is_empty() {
            self.end_event();
        } else if let Some(value) =
            line.strip_prefix(b"data:").filter(|_| !skipped && !self.skip_event)
        {
            let value = value.strip_prefix(b" ").unwrap_or(value);
            if self.data.len() + value.len() + 1 > MAX_EVENT {
                self.skip_event = true;
                self.data = Vec::new();
            } else {
                if self.has_data {
                    self.data.push(b'\n');
                }
                self.data.extend_from_slice(value);
                self.has_data = true;
            }
        }
        // Keep the line's allocation for the next one (unless it was huge).
        line.clear();
        if line.capacity() <= 64 << 10 {
            self.buffer = line;
        }
    }

    fn end_event(&mut self) {
        let data = std::mem::take(&mut self.data);
        let skipped = std::mem::replace(&mut self.skip_event, false);
        self.has_data = false;
        // Most events are text deltas; only those naming usage are parsed.
        let wanted = !skipped && memchr::memmem::find(&data, b"\"usage\"").is_some();
        if let Some(event) = wanted.then(|| serde_json::from_slice::<Value>(&data).ok()).flatten() {
            self.event(&event);
        }
        let mut data = data;
        data.clear();
        if data.capacity() <= 64 << 10 {
            self.data = data;
        }
    }

    fn event(&mut self, event: &Value) {
        match self.family {
            Family::Anthropic => {
                let kind = event.get("type").and_then(Value::as_str);
                let usage = match kind {
                    Some("message_start") => {
                        let message = event.get("message");
                        self.note_model(message.and_then(|m| m.get("model")));
                        message.and_then(|m| m.get("usage"))
                    }
                    Some("message_delta") => event.get("usage"),
                    _ => None,
                };
                if let Some(usage) = usage.filter(|u| u.is_object()) {
                    let tokens = self.tokens.get_or_insert_with(ProxyTokens::default);
                    anthropic_usage(usage, tokens);
                }
            }
            Family::OpenAi => {
                // Responses: response.completed (or .incomplete/.failed) carries
                // the whole response; chat: the last chunk carries `usage`.
                let (holder, usage) = match event.get("response").filter(|r| r.is_object()) {
                    Some(response) => (response, response.get("usage")),
                    None => (event, event.get("usage")),
                };
                if let Some(usage) = usage.filter(|u| u.is_object()) {
                    self.note_model(holder.get("model"));
                    self.tokens = Some(openai_usage(usage));
                }
            }
        }
    }

    fn note_model(&mut self, model: Option<&Value>) {
        if let Some(model) = model.and_then(Value::as_str) {
            self.model = Some(model.to_owned());
        }
    }

    /// The usage and the model the upstream said it used, when reported.
    pub fn finish_with_model(mut self) -> (Option<ProxyTokens>, Option<String>) {
        if self.streaming {
            // An answer cut short without a final blank line still counts.
            if !self.buffer.is_empty() || self.skip_line {
                self.end_line();
            }
            if self.has_data {
                self.end_event();
            }
            return (self.tokens, self.model);
        }
        if self.overflow {
            return (None, None);
        }
        // Only the two fields are built; the rest of the body is skipped.
        #[derive(Deserialize)]
        struct Body {
            #[serde(default)]
            usage: Option<Value>,
            #[serde(default)]
            model: Option<Value>,
        }
        let Ok(body) = serde_json::from_slice::<Body>(&self.buffer) else { return (None, None) };
        let model = body.model.as_ref().and_then(Value::as_str).map(str::to_owned);
        let tokens = body.usage.filter(Value::is_object).map(|usage| match self.family {
            Family::Anthropic => {
                let mut tokens = ProxyTokens::default();
                anthropic_usage(&usage, &mut tokens);
                tokens
            }
            Family::OpenAi => openai_usage(&usage),
        });
        (tokens, model)
    }
}

fn count(value: Option<&Value>) -> Option<u64> {
    value.and_then(Value::as_u64)
}

/// Applies an Anthropic usage object: each field present overrides.
fn anthropic_usage(usage: &Value, tokens: &mut ProxyTokens) {
    if let Some(n) = count(usage.get("input_tokens")) {
        tokens.input = n;
    }
    if let Some(n) = count(usage.get("output_tokens")) {
        tokens.output = n;
    }
    if let Some(n) = count(usage.get("cache_read_input_tokens")) {
        tokens.cache_read = n;
    }
    if let Some(n) = count(usage.get("cache_creation_input_tokens")) {
        tokens.cache_write = n;
    }
}

/// An OpenAI usage object, Responses (`input_tokens`) or chat
/// (`prompt_tokens`); both count cached input inside input.
fn openai_usage(usage: &Value) -> ProxyTokens {
    let (input, output, details) = if usage.get("prompt_tokens").is_some() {
        ("prompt_tokens", "completion_tokens", "prompt_tokens_details")
    } else {
        ("input_tokens", "output_tokens", "input_tokens_details")
    };
    let cached = count(usage.get(details).and_then(|d| d.get("cached_tokens"))).unwrap_or(0);
    let input = count(usage.get(input)).unwrap_or(0);
    ProxyTokens {
        input: input.saturating_sub(cached),
        output: count(usage.get(output)).unwrap_or(0),
        cache_read: cached,
        cache_write: 0,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// A Claude Code main-loop request, shaped as agents-verified.md records
    /// (system blocks, adaptive thinking, tools, a tool_use / tool_result turn).
    fn claude_code_body() -> Value {
        json!({
            "model": "claude-opus-4-8",
            "max_tokens": 64000,
            "stream": true,
            "thinking": {"type": "adaptive"},
            "context_management": {"edits": []},
            "metadata": {"user_id": "user_abc"},
            "output_config": {"effort": "high"},
            "system": [
                {"type": "text", "text": "You are Claude Code.", "cache_control": {"type": "ephemeral"}},
                {"type": "text", "text": "Be brief."}
            ],
            "messages": [
                {"role": "user", "content": "read hello.txt"},
                {"role": "assistant", "content": [
                    {"type": "thinking", "thinking": "I should read it.", "signature": "c2lnbmF0dXJlLXNpZ25hdHVyZQ=="},
                    {"type": "text", "text": "Reading."},
                    {"type": "tool_use", "id": "toolu_1", "name": "Read", "input": {"file_path": "/w/hello.txt"}}
                ]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": [{"type": "text", "text": "hello file\n"}]},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk"}}
                ]}
            ],
            "tools": [
                {"name": "Read", "description": "Read a file", "input_schema": {"type": "object", "properties": {"file_path": {"type": "string"}}}},
                {"name": "Bash", "description": "Run a command", "input_schema": {"type": "object", "properties": {"command": {"type": "string"}}}}
            ]
        })
    }

    fn expected_tokens(texts: &[&str], json: &[&Value]) -> u64 {
        let text: usize = texts.iter().map(|t| t.len()).sum();
        let json: usize = json.iter().map(|v| v.to_string().len()).sum();
        (text + json) as u64 / 4
    }

    #[test]
    fn facts_of_a_claude_code_request() {
        let body = claude_code_body();
        let facts = Facts::from_body(Family::Anthropic, &body);
        assert_eq!(facts.model, "claude-opus-4-8");
        assert!(facts.thinking);
        assert_eq!(facts.tools, 2);
        let tokens = expected_tokens(
            &[
                "You are Claude Code.",
                "Be brief.",
                "read hello.txt",
                "I should read it.",
                "Reading.",
                "hello file\n",
            ],
            &[&body["messages"][1]["content"][2]["input"], &body["tools"]],
        );
        assert_eq!(facts.tokens, tokens);
    }

    #[test]
    fn anthropic_thinking_types() {
        for (thinking, expected) in [
            (json!({"type": "enabled", "budget_tokens": 1024}), true),
            (json!({"type": "adaptive"}), true),
            (json!({"type": "disabled"}), false),
            (json!(null), false),
            (json!("enabled"), false),
        ] {
            let body = json!({"model": "m", "thinking": thinking, "messages": []});
            assert_eq!(Facts::from_body(Family::Anthropic, &body).thinking, expected, "{thinking}");
        }
        let none = Facts::from_body(Family::Anthropic, &json!({"model": "m"}));
        assert_eq!(none, Facts { model: "m".into(), ..Facts::default() });
        // OpenAI's field means nothing to an Anthropic request.
        let body = json!({"reasoning": {"effort": "high"}});
        assert!(!Facts::from_body(Family::Anthropic, &body).thinking);
    }

    /// A Codex Responses request (the keys agents-verified.md lists).
    #[test]
    fn facts_of_a_codex_responses_request() {
        let body = json!({
            "model": "gpt-5.5-codex",
            "instructions": "You are Codex.",
            "input": [
                {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "sandbox: workspace-write"}]},
                {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "say pong"}]},
                {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "thinking about pong"}], "encrypted_content": "Z2liYmVyaXNo"},
                {"type": "function_call", "call_id": "call_1", "name": "shell", "arguments": "{\"command\":[\"ls\"]}"},
                {"type": "function_call_output", "call_id": "call_1", "output": "Cargo.toml\nsrc\n"}
            ],
            "tools": [{"type": "function", "name": "shell", "parameters": {"type": "object"}}],
            "tool_choice": "auto",
            "parallel_tool_calls": false,
            "reasoning": {"effort": "medium", "summary": "auto"},
            "store": false,
            "stream": true,
            "include": ["reasoning.encrypted_content"],
            "prompt_cache_key": "01a21049",
            "client_metadata": {"x": "y"}
        });
        let facts = Facts::from_body(Family::OpenAi, &body);
        assert_eq!(facts.model, "gpt-5.5-codex");
        assert!(facts.thinking);
        assert_eq!(facts.tools, 1);
        let tokens = expected_tokens(
            &[
                "You are Codex.",
                "sandbox: workspace-write",
                "say pong",
                "thinking about pong",
                "{\"command\":[\"ls\"]}",
                "Cargo.toml\nsrc\n",
            ],
            &[&body["tools"]],
        );
        assert_eq!(facts.tokens, tokens);
        let plain = json!({"model": "m", "input": "hello world!"});
        let facts = Facts::from_body(Family::OpenAi, &plain);
        assert_eq!((facts.thinking, facts.tools, facts.tokens), (false, 0, 3));
    }

    #[test]
    fn openai_reasoning_fields() {
        for (body, expected) in [
            (json!({"reasoning": {"effort": "high"}}), true),
            (json!({"reasoning": {"summary": "auto"}}), true),
            (json!({"reasoning": {}}), true),
            (json!({"reasoning": {"effort": "none"}}), false),
            (json!({"reasoning": null}), false),
            (json!({"reasoning_effort": "low"}), true),
            (json!({"reasoning_effort": "none"}), false),
            (json!({"reasoning_effort": null}), false),
            (json!({}), false),
        ] {
            assert_eq!(Facts::from_body(Family::OpenAi, &body).thinking, expected, "{body}");
        }
    }

    #[test]
    fn facts_of_a_chat_completions_request() {
        let body = json!({
            "model": "glm-4.6",
            "reasoning_effort": "high",
            "messages": [
                {"role": "system", "content": "sys"},
                {"role": "user", "content": [{"type": "text", "text": "hi"}, {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]},
                {"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "ls", "arguments": "{\"p\":1}"}}]},
                {"role": "tool", "tool_call_id": "c1", "content": "out"}
            ],
            "tools": [{"type": "function", "function": {"name": "ls"}}, {"type": "function", "function": {"name": "cat"}}]
        });
        let facts = Facts::from_body(Family::OpenAi, &body);
        assert!(facts.thinking);
        assert_eq!(facts.tools, 2);
        let tokens = expected_tokens(&["sys", "hi", "{\"p\":1}", "out"], &[&body["tools"]]);
        assert_eq!(facts.tokens, tokens);
    }

    #[test]
    fn odd_bodies_give_empty_facts() {
        for body in [json!(null), json!([1, 2]), json!("x"), json!({"model": 5, "tools": "many"})] {
            let facts = Facts::from_body(Family::Anthropic, &body);
            assert_eq!(
                (facts.model.as_str(), facts.tools, facts.thinking),
                ("", 0, false),
                "{body}"
            );
        }
    }

    #[test]
    fn a_large_body_is_counted_whole() {
        // 1 MB of message text: the estimate is its bytes / 4 (plus the rest).
        let text = "x".repeat(1 << 20);
        let body = json!({"model": "m", "messages": [{"role": "user", "content": [{"type": "text", "text": text}]}]});
        let facts = Facts::from_body(Family::Anthropic, &body);
        assert_eq!(facts.tokens, (1 << 20) / 4);
    }

    fn sse(events: &[(&str, Value)]) -> String {
        let mut out = String::new();
        for (name, data) in events {
            out.push_str(&format!("event: {name}\ndata: {data}\n\n"));
        }
        out
    }

    /// What the real Anthropic API streams (and tests/util/mock.rs copies).
    fn anthropic_stream() -> String {
        let start = json!({"type": "message_start", "message": {
            "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-opus-4-8-20261101",
            "content": [], "stop_reason": null, "stop_sequence": null,
            "usage": {"input_tokens": 123, "cache_creation_input_tokens": 1200, "cache_read_input_tokens": 18000, "output_tokens": 1}
        }});
        sse(&[
            ("message_start", start),
            ("ping", json!({"type": "ping"})),
            (
                "content_block_start",
                json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
            ),
            (
                "content_block_delta",
                json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "pong, with \"usage\" in the text é"}}),
            ),
            ("content_block_stop", json!({"type": "content_block_stop", "index": 0})),
            (
                "message_delta",
                json!({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": null}, "usage": {"output_tokens": 20}}),
            ),
            (
                "message_delta",
                json!({"type": "message_delta", "delta": {}, "usage": {"output_tokens": 45, "input_tokens": 130}}),
            ),
            ("message_stop", json!({"type": "message_stop"})),
        ])
    }

    const ANTHROPIC_EXPECTED: ProxyTokens =
        ProxyTokens { input: 130, output: 45, cache_read: 18000, cache_write: 1200 };

    /// The Responses stream of agents-verified.md Appendix A.
    fn responses_stream() -> String {
        let usage = json!({"input_tokens": 321, "input_tokens_details": {"cached_tokens": 100}, "output_tokens": 21, "output_tokens_details": {"reasoning_tokens": 5}, "total_tokens": 342});
        let done = json!({"id": "resp_1", "object": "response", "status": "completed", "model": "gpt-5.5", "output": [], "usage": usage});
        let mut created = done.clone();
        created["status"] = json!("in_progress");
        created["usage"] = Value::Null;
        sse(&[
            (
                "response.created",
                json!({"type": "response.created", "sequence_number": 0, "response": created}),
            ),
            (
                "response.in_progress",
                json!({"type": "response.in_progress", "sequence_number": 1, "response": created}),
            ),
            (
                "response.output_text.delta",
                json!({"type": "response.output_text.delta", "sequence_number": 2, "item_id": "msg_1", "output_index": 0, "content_index": 0, "delta": "pong"}),
            ),
            (
                "response.completed",
                json!({"type": "response.completed", "sequence_number": 3, "response": done}),
            ),
        ])
    }

    const RESPONSES_EXPECTED: ProxyTokens =
        ProxyTokens { input: 221, output: 21, cache_read: 100, cache_write: 0 };

    fn meter(
        family: Family,
        streaming: bool,
        pieces: &[&[u8]],
    ) -> (Option<ProxyTokens>, Option<String>) {
        let mut meter = UsageMeter::new(family, streaming);
        for piece in pieces {
            meter.feed(piece);
        }
        meter.finish_with_model()
    }

    fn every_split(
        family: Family,
        streaming: bool,
        bytes: &[u8],
        expected: ProxyTokens,
        model: &str,
    ) {
        let whole = meter(family, streaming, &[bytes]);
        assert_eq!(whole, (Some(expected), Some(model.to_owned())));
        for at in 0..=bytes.len() {
            let (a, b) = bytes.split_at(at);
            assert_eq!(meter(family, streaming, &[a, b]), whole, "split at {at}");
        }
        for a in (0..bytes.len()).step_by(7) {
            let b = (a + 13).min(bytes.len());
            let three = meter(family, streaming, &[&bytes[..a], &bytes[a..b], &bytes[b..]]);
            assert_eq!(three, whole, "split at {a} and {b}");
        }
        let singles: Vec<&[u8]> = bytes.chunks(1).collect();
        assert_eq!(meter(family, streaming, &singles), whole, "byte by byte");
    }

    #[test]
    fn anthropic_stream_usage_at_every_split() {
        let stream = anthropic_stream();
        every_split(
            Family::Anthropic,
            true,
            stream.as_bytes(),
            ANTHROPIC_EXPECTED,
            "claude-opus-4-8-20261101",
        );
        let crlf = stream.replace('\n', "\r\n");
        every_split(
            Family::Anthropic,
            true,
            crlf.as_bytes(),
            ANTHROPIC_EXPECTED,
            "claude-opus-4-8-20261101",
        );
    }

    #[test]
    fn responses_stream_usage_at_every_split() {
        let stream = responses_stream();
        every_split(Family::OpenAi, true, stream.as_bytes(), RESPONSES_EXPECTED, "gpt-5.5");
    }

    #[test]
    fn chat_stream_usage() {
        let mut stream = String::new();
        for chunk in [
            json!({"id": "c", "object": "chat.completion.chunk", "model": "glm-4.6", "choices": [{"index": 0, "delta": {"content": "po"}}], "usage": null}),
            json!({"id": "c", "object": "chat.completion.chunk", "model": "glm-4.6", "choices": [{"index": 0, "delta": {"content": "ng"}, "finish_reason": "stop"}], "usage": null}),
            json!({"id": "c", "object": "chat.completion.chunk", "model": "glm-4.6", "choices": [], "usage": {"prompt_tokens": 50, "completion_tokens": 7, "total_tokens": 57, "prompt_tokens_details": {"cached_tokens": 20}}}),
        ] {
            stream.push_str(&format!("data: {chunk}\n\n"));
        }
        stream.push_str("data: [DONE]\n\n");
        let expected = ProxyTokens { input: 30, output: 7, cache_read: 20, cache_write: 0 };
        every_split(Family::OpenAi, true, stream.as_bytes(), expected, "glm-4.6");
    }

    #[test]
    fn non_streaming_bodies() {
        let anthropic = json!({"id": "msg_1", "type": "message", "model": "claude-x", "content": [{"type": "text", "text": "pong"}],
            "usage": {"input_tokens": 123, "cache_creation_input_tokens": 5, "cache_read_input_tokens": 7, "output_tokens": 45}});
        let expected = ProxyTokens { input: 123, output: 45, cache_read: 7, cache_write: 5 };
        every_split(
            Family::Anthropic,
            false,
            anthropic.to_string().as_bytes(),
            expected,
            "claude-x",
        );
        let responses = json!({"id": "resp_1", "object": "response", "model": "gpt-5.5", "output": [],
            "usage": {"input_tokens": 321, "input_tokens_details": {"cached_tokens": 100}, "output_tokens": 21}});
        every_split(
            Family::OpenAi,
            false,
            responses.to_string().as_bytes(),
            RESPONSES_EXPECTED,
            "gpt-5.5",
        );
        let chat = json!({"id": "c", "object": "chat.completion", "model": "glm", "choices": [],
            "usage": {"prompt_tokens": 10, "completion_tokens": 2}});
        let expected = ProxyTokens { input: 10, output: 2, cache_read: 0, cache_write: 0 };
        every_split(Family::OpenAi, false, chat.to_string().as_bytes(), expected, "glm");
        // No usage, or not JSON (an error page): None.
        assert_eq!(meter(Family::Anthropic, false, &[b"{\"type\":\"error\"}"]).0, None);
        assert_eq!(meter(Family::OpenAi, false, &[b"<html>bad gateway</html>"]).0, None);
        assert_eq!(meter(Family::OpenAi, false, &[]).0, None);
    }

    #[test]
    fn streams_without_usage_or_cut_short() {
        assert_eq!(
            meter(Family::Anthropic, true, &[b"event: ping\ndata: {\"type\":\"ping\"}\n\n"]),
            (None, None)
        );
        // The final event without its blank line still counts.
        let stream = anthropic_stream();
        let cut = stream.trim_end_matches('\n');
        assert_eq!(meter(Family::Anthropic, true, &[cut.as_bytes()]).0, Some(ANTHROPIC_EXPECTED));
        // A data line split across two `data:` lines is one event.
        let two = "data: {\"type\":\"message_delta\",\ndata: \"usage\":{\"output_tokens\":9}}\n\n";
        let tokens = meter(Family::Anthropic, true, &[two.as_bytes()]).0;
        assert_eq!(tokens, Some(ProxyTokens { output: 9, ..ProxyTokens::default() }));
    }

    #[test]
    fn oversized_events_and_bodies_are_skipped() {
        // A 2 MiB event (one line) between two usage events: skipped, the rest read.
        let stream = anthropic_stream();
        let (head, tail) = stream.split_at(stream.find("event: ping").unwrap());
        let huge = format!(
            "event: content_block_delta\ndata: {{\"type\":\"message_delta\",\"usage\":{{\"output_tokens\":999}},\"x\":\"{}\"}}\n\n",
            "y".repeat(2 << 20)
        );
        let mut meter_ = UsageMeter::new(Family::Anthropic, true);
        meter_.feed(head.as_bytes());
        for piece in huge.as_bytes().chunks(4096) {
            meter_.feed(piece);
            assert!(meter_.buffer.len() <= MAX_EVENT && meter_.data.len() <= MAX_EVENT);
        }
        meter_.feed(tail.as_bytes());
        assert_eq!(meter_.finish_with_model().0, Some(ANTHROPIC_EXPECTED));
        // Many data lines adding up past the cap: skipped too.
        let line = format!("data: {}\n", "z".repeat(1000));
        let mut meter_ = UsageMeter::new(Family::Anthropic, true);
        for _ in 0..2000 {
            meter_.feed(line.as_bytes());
        }
        assert!(meter_.data.len() <= MAX_EVENT);
        meter_.feed(b"\n");
        meter_.feed(stream.as_bytes());
        assert_eq!(meter_.finish_with_model().0, Some(ANTHROPIC_EXPECTED));
        // A non-streaming body past 32 MiB: None, and the buffer is let go.
        let mut meter_ = UsageMeter::new(Family::Anthropic, false);
        let chunk = vec![b' '; 1 << 20];
        for _ in 0..33 {
            meter_.feed(&chunk);
        }
        assert!(meter_.buffer.is_empty());
        meter_.feed(b"{\"usage\":{\"input_tokens\":1}}");
        assert_eq!(meter_.finish_with_model().0, None);
    }
}

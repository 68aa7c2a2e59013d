//! The proxy's request log (`<config>/proxy/<alias>/requests.jsonl`, rotated
//! by size to `requests.jsonl.1`) as a usage source, for an agent that writes
//! no usage log of its own (its manifest says `[usage] format = "proxy"`).
//! One JSON object per relayed request, written by the proxy child
//! (`proxy::log::Record`): `ts` (RFC 3339), `status` (the final one),
//! `target` (`<provider>[@<endpoint>]/<model>`, the one that answered) and
//! `tokens` (`input` without cached input, `output`, `cache_read`,
//! `cache_write`; `null` when the answer carried no usage).
//!
//! Rules, decided and tested here:
//! - Only a request whose final status is 2xx and whose answer carried usage
//!   bills anything; a failed one, or one without tokens, counts nothing.
//! - The model is the answering target's, after its first `/` (models may
//!   contain `/`): what was billed, not what the agent asked for.
//! - The key is the hash of the line's bytes: rotation renames the file, so
//!   a line read again in `requests.jsonl.1` is the same entry.
//! - The log's `cost_usd` is not used: it is Ringlet's own pricing at the
//!   time of the request, not a figure the agent computed (as OpenCode's
//!   `cost` is), so the store prices the tokens like Claude's and Codex's,
//!   and a repricing or a price added later applies to it too.
//! - The proxy sees no agent sessions: a profile's requests are one session.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::claude::Parsed;
use super::{Entry, Tokens, key_hash, parse_timestamp_ms};

/// The log's name, and its rotated predecessor's.
const LOG: &str = "requests.jsonl";
const ROTATED: &str = "requests.jsonl.1";

/// A profile's proxy log dir: `<config>/proxy/<alias>`.
pub fn dir(config: &Path, alias: &str) -> PathBuf {
    config.join("proxy").join(alias)
}

/// Whether `path` is a request log: the current one or the rotated one.
pub fn is_log(path: &Path) -> bool {
    path.file_name().is_some_and(|n| n == LOG || n == ROTATED)
}

#[derive(Deserialize)]
struct Line<'a> {
    #[serde(borrow, default)]
    ts: Option<Cow<'a, str>>,
    /// The final status; a line without one is not a request record.
    #[serde(default)]
    status: Option<u16>,
    /// The model the agent asked for: the model when no target answered
    /// (an answer the proxy made itself).
    #[serde(borrow, default)]
    model: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    target: Option<Cow<'a, str>>,
    #[serde(default)]
    tokens: Option<LineTokens>,
}

#[derive(Deserialize)]
struct LineTokens {
    #[serde(default)]
    input: u64,
    #[serde(default)]
    output: u64,
    #[serde(default)]
    cache_read: u64,
    #[serde(default)]
    cache_write: u64,
}

/// Parses one line (without its newline) of `profile`'s request log.
pub fn parse_line<'a>(line: &'a [u8], profile: &'a str) -> Parsed<'a> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.iter().all(u8::is_ascii_whitespace) {
        return Parsed::Nothing;
    }
    let Ok(parsed) = serde_json::from_slice::<Line<'a>>(line) else {
        return Parsed::Malformed;
    };
    let Some(status) = parsed.status else { return Parsed::Malformed };
    if !(200..300).contains(&status) {
        return Parsed::Nothing;
    }
    let Some(t) = parsed.tokens else { return Parsed::Nothing };
    // The proxy reports one cache-write count; Anthropic bills writes at
    // the 5-minute rate unless asked for the 1-hour cache.
    let tokens = Tokens {
        input: t.input,
        output: t.output,
        cache_write_5m: t.cache_write,
        cache_read: t.cache_read,
        ..Tokens::default()
    };
    if tokens.total() == 0 {
        return Parsed::Nothing;
    }
    let Some(timestamp_ms) = parsed.ts.as_deref().and_then(parse_timestamp_ms) else {
        return Parsed::Malformed;
    };
    let model = match parsed.target {
        Some(Cow::Borrowed(t)) => Cow::Borrowed(t.split_once('/').map_or(t, |(_, m)| m)),
        Some(Cow::Owned(t)) => Cow::Owned(t.split_once('/').map_or(&*t, |(_, m)| m).to_owned()),
        None => parsed.model.unwrap_or(Cow::Borrowed("unknown")),
    };
    Parsed::Entry(Entry {
        key: key_hash(&[b"proxy", line]),
        message: 0,
        sidechain: false,
        timestamp_ms,
        model,
        session: Cow::Borrowed(profile),
        tokens,
        fast: false,
        cost_usd: None,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn line(ts: &str, status: u16, target: Option<&str>, tokens: Option<[u64; 4]>) -> String {
        let tokens = tokens.map(
            |[i, o, r, w]| json!({"input": i, "output": o, "cache_read": r, "cache_write": w}),
        );
        json!({
            "ts": ts, "rule": "long", "model": "asked-for",
            "attempts": [{"target": "a/dead", "status": null, "error": "connection refused", "ms": 1.0},
                         {"target": target, "status": status, "error": null, "ms": 9.5}],
            "status": status, "target": target, "ttfb_ms": 2.0, "ms": 10.5,
            "tokens": tokens, "cost_usd": 0.5, "stream": false,
        })
        .to_string()
    }

    fn entry<'a>(line: &'a str, profile: &'a str) -> Entry<'a> {
        match parse_line(line.as_bytes(), profile) {
            Parsed::Entry(e) => e,
            other => panic!("{other:?} for {line}"),
        }
    }

    #[test]
    fn a_2xx_with_tokens_is_one_entry_of_the_answering_model() {
        let l = line("2026-11-02T10:00:00.125Z", 200, Some("xai@eu/grok-4"), Some([10, 2, 30, 4]));
        let e = entry(&l, "g1");
        assert_eq!(e.model, "grok-4");
        assert_eq!(e.timestamp_ms, parse_timestamp_ms("2026-11-02T10:00:00.125Z").unwrap());
        assert_eq!(
            e.tokens,
            Tokens { input: 10, output: 2, cache_read: 30, cache_write_5m: 4, ..Tokens::default() }
        );
        assert_eq!(e.cost_usd, None, "priced by the store, not the log's cost_usd");
        assert_eq!((e.session.as_ref(), e.message, e.sidechain, e.fast), ("g1", 0, false, false));
        // A model with a `/` of its own keeps it.
        let l =
            line("2026-11-02T10:00:00Z", 201, Some("openrouter/z-ai/glm-5.1"), Some([1, 1, 0, 0]));
        assert_eq!(entry(&l, "g1").model, "z-ai/glm-5.1");
    }

    #[test]
    fn failures_and_answers_without_usage_bill_nothing() {
        for l in [
            line("2026-11-02T10:00:00Z", 429, None, None),
            line("2026-11-02T10:00:00Z", 502, Some("a/m"), Some([5, 5, 0, 0])),
            line("2026-11-02T10:00:00Z", 402, None, None),
            line("2026-11-02T10:00:00Z", 200, Some("a/m"), None),
            line("2026-11-02T10:00:00Z", 200, Some("a/m"), Some([0, 0, 0, 0])),
        ] {
            assert_eq!(parse_line(l.as_bytes(), "g1"), Parsed::Nothing, "{l}");
        }
        assert_eq!(parse_line(b"", "g1"), Parsed::Nothing);
        assert_eq!(parse_line(b"  \r", "g1"), Parsed::Nothing);
    }

    #[test]
    fn split_and_foreign_lines_are_malformed() {
        let l = line("2026-11-02T10:00:00Z", 200, Some("a/m"), Some([1, 2, 3, 4]));
        let (head, tail) = l.split_at(l.len() / 2);
        for bad in [head, tail, "not json", "{\"ts\":\"2026-11-02T10:00:00Z\"}", "[1,2]"] {
            assert_eq!(parse_line(bad.as_bytes(), "g1"), Parsed::Malformed, "{bad}");
        }
        // Billed, but no usable time.
        let l = line("yesterday", 200, Some("a/m"), Some([1, 2, 3, 4]));
        assert_eq!(parse_line(l.as_bytes(), "g1"), Parsed::Malformed);
    }

    #[test]
    fn the_key_is_the_line_and_survives_rotation() {
        let a = line("2026-11-02T10:00:00Z", 200, Some("a/m"), Some([1, 2, 3, 4]));
        let b = line("2026-11-02T10:00:00.001Z", 200, Some("a/m"), Some([1, 2, 3, 4]));
        // The same line read from requests.jsonl.1 (another profile name
        // after a rename, a CRLF) is the same entry; another request is not.
        let crlf = format!("{a}\r");
        assert_eq!(entry(&a, "g1").key, entry(&crlf, "g2").key);
        assert_ne!(entry(&a, "g1").key, entry(&b, "g1").key);
        // A missing target (a proxy-made answer) falls back to the model asked for.
        let l = line("2026-11-02T10:00:00Z", 200, None, Some([1, 0, 0, 0]));
        assert_eq!(entry(&l, "g1").model, "asked-for");
    }

    /// Through the scanner: an incomplete last line waits, a rotated log is
    /// not counted twice, and only the rotated file and the log are read.
    #[test]
    fn scans_read_on_across_rotation_and_count_each_request_once() {
        use std::fs;
        use std::io::Write;

        use crate::usage::pricing::Pricing;
        use crate::usage::scan::{Root, Scanner};
        use crate::usage::store::Store;
        use crate::usage::{Agent, Format};

        let tmp = std::env::temp_dir().join(format!("ringlet-proxylog-{}", std::process::id()));
        let _ = fs::remove_dir_all(&tmp);
        let logs = dir(&tmp.join("config"), "g1");
        fs::create_dir_all(&logs).unwrap();
        let root = Root {
            path: logs.clone(),
            format: Format::Proxy,
            agent: Agent::Grok,
            profile: "g1".into(),
            base: tmp.join("config"),
        };
        let mut store = Store::open(&tmp.join("telemetry"), Pricing::default()).unwrap();
        let mut scanner = Scanner::open(&tmp.join("telemetry"));
        let mut scan = |store: &mut Store| {
            scanner.scan(std::slice::from_ref(&root), store).unwrap();
            let n = store.records().len();
            let input: u64 = store.records().iter().map(|r| r.tokens.input).sum();
            (n, input)
        };

        let a = line("2026-11-02T10:00:00Z", 200, Some("x/m"), Some([1, 0, 0, 0]));
        let b = line("2026-11-02T10:00:01Z", 200, Some("x/m"), Some([10, 0, 0, 0]));
        let c = line("2026-11-02T10:00:02Z", 200, Some("x/m"), Some([100, 0, 0, 0]));
        let log = logs.join(LOG);
        let mut f = fs::File::create(&log).unwrap();
        write!(f, "{a}\n{}", &b[..b.len() / 2]).unwrap();
        // Neither the log's neighbours nor anything below count.
        fs::write(logs.join("other.jsonl"), format!("{c}\n")).unwrap();
        fs::create_dir(logs.join("sub")).unwrap();
        fs::write(logs.join("sub").join(LOG), format!("{c}\n")).unwrap();
        assert_eq!(scan(&mut store), (1, 1));

        writeln!(f, "{}", &b[b.len() / 2..]).unwrap();
        drop(f);
        fs::rename(&log, logs.join(ROTATED)).unwrap();
        fs::write(&log, format!("{c}\n")).unwrap();
        assert_eq!(scan(&mut store), (3, 111));
        // Rotated once more: the old rotated file is gone, its lines kept.
        fs::rename(&log, logs.join(ROTATED)).unwrap();
        assert_eq!(scan(&mut store), (3, 111));
        fs::remove_dir_all(&tmp).unwrap();
    }
}

//! The relay: one agent request to the first upstream of its chain that
//! answers, streamed back read by read.
//!
//! A POST with a JSON body is routed: its facts (`facts`) pick a rule or
//! alias (`rules`), whose target and the targets of the rules after it make
//! the chain; no match means the default upstream with the model asked for.
//! Anything else (`GET /v1/models`, a body that is not JSON) goes to the
//! default upstream unchanged. For each target the body changes in `model`
//! only (the parsed JSON re-serialized with the target's model; untouched
//! bytes when the model stays), the path and query are kept (an OpenAI-family
//! agent's leading `/v1` is replaced by the upstream URL's own path), the
//! agent's end-to-end headers pass (`anthropic-version`, `anthropic-beta`,
//! session ids, user agent) and the hop-by-hop ones, the local token and
//! `Accept-Encoding` do not; the upstream's key is added in its style.
//!
//! Fallback happens only while nothing has reached the agent: on a
//! connection, TLS or timeout error, a 429 or any 5xx (529 too), or a body
//! that fails before its first byte. Another 4xx is the answer. Once a byte
//! is out, a failure is passed on: the stream ends without its last chunk
//! and the connection closes. When every target fails, the agent gets the
//! last upstream status and body, or a 502 naming the last error.

use std::collections::{BTreeMap, VecDeque};
use std::io::{self, Read};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use anyhow::{Context, Result};
use serde_json::{Value, json};

use super::budget::{Ledger, month_start};
use super::facts::{Facts, ProxyTokens, UsageMeter};
use super::log::{self, Attempt, Record, StatsReply, TargetStats};
use super::rules::Router;
use super::serve::{Client, Framing};
use super::{AuthStyle, Family, ServeConfig, Upstream};
use crate::daemon::http::Head;
use crate::daemon::http::auth::{bearer, same_token};
use crate::usage::pricing;

/// Request headers that never go upstream: hop-by-hop (RFC 9110 §7.6.1),
/// framing that the client library redoes, the local token, and
/// `Accept-Encoding` (the relay streams bytes as they come; a compressed
/// stream could be neither metered nor flushed event by event).
const DROP_UP: &[&str] = &[
    "connection",
    "keep-alive",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
    "expect",
    "x-api-key",
    "authorization",
    "accept-encoding",
];
/// Response headers that never go to the agent (the relay frames the body).
const DROP_DOWN: &[&str] = &[
    "connection",
    "keep-alive",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "content-length",
];
/// The most of a failed answer's body kept to pass on if every target fails.
const MAX_ERROR_BODY: u64 = 1 << 20;
/// Latencies kept per target for the percentiles.
const LATENCIES: usize = 1024;
/// One upstream read's buffer: an SSE event is far smaller.
const READ_BUF: usize = 16 * 1024;
/// The longest model name relayed: every request's log line and every
/// target in the stats carries it (real names are under 64 bytes).
const MAX_MODEL: usize = 256;
/// Targets kept apart in the stats: a model the router does not know makes
/// a target of its own (`<default>/<model>`), so an agent inventing names
/// would grow them for the child's life; the rest share [`OTHERS`].
const MAX_TARGETS: usize = 64;
const OTHERS: &str = "(others)";
/// The most JSON values (roughly: commas and brackets) a body may hold to
/// be parsed for routing. Parsed, each takes 32 bytes or more: a 32 MiB
/// body of `[0,0,...]` (16 M values) took the child past 600 MB, and a few
/// at once past gigabytes. A real conversation of 32 MiB, text mostly,
/// holds far fewer than a million.
const MAX_JSON_VALUES: usize = 1 << 20;

/// The child's shared state: configuration, router, client, prices, spend.
pub struct Proxy {
    pub config: ServeConfig,
    router: Router,
    agent: ureq::Agent,
    /// Follows the registry's `current`: a sync changes the next request's price.
    pricing: pricing::Live,
    price_as: crate::usage::Agent,
    ledger: Ledger,
    stats: Mutex<Stats>,
    /// Held while a finished request is logged and counted.
    finishing: Mutex<()>,
    in_flight: AtomicU64,
    /// Set on SIGTERM: answers say `Connection: close`.
    pub stopping: AtomicBool,
    started: String,
}

#[derive(Default)]
struct Stats {
    requests: u64,
    last_request: Option<String>,
    targets: BTreeMap<String, TargetAcc>,
}

#[derive(Default)]
struct TargetAcc {
    requests: u64,
    errors: u64,
    fallbacks: u64,
    latencies: VecDeque<f64>,
}

/// Counts a request as under way while it lives.
pub struct Busy<'a>(&'a AtomicU64);

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// One target of a chain.
struct Hop {
    /// The key into `ServeConfig.upstreams`.
    key: String,
    /// The model to put in the body; `None` leaves the body as it came.
    model: Option<String>,
    /// The target's text, for the log.
    label: String,
}

/// A failed answer kept in case every target fails.
struct Failure {
    status: u16,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
}

impl Proxy {
    pub fn new(config: ServeConfig) -> Result<Proxy> {
        // An empty token would let in anyone who sends an empty one.
        if config.local_token.len() < 16 {
            anyhow::bail!("the proxy's local token is missing or too short");
        }
        let router = Router::new(&config.rules, &config.aliases).context("the proxy's rules")?;
        let agent = crate::net::agent(config.ca_file.as_deref(), Default::default())
            .context("the upstream client")?;
        let pricing = pricing::Live::new(&config.config_dir, Default::default());
        // Prices differ by agent only in how cache tokens bill; an agent
        // without usage logs of its own bills like its API family's.
        let price_as = crate::usage::Agent::from_id(&config.agent).unwrap_or(match config.family {
            Family::Anthropic => crate::usage::Agent::Claude,
            Family::OpenAi => crate::usage::Agent::Codex,
        });
        let tz = jiff::tz::TimeZone::system();
        let now = jiff::Timestamp::now();
        let (carried, records) = log::spend_since(&config.log_dir, month_start(&tz, now).into())
            .context("reading the request log to rebuild this month's spend")?;
        let carried = carried.map(|c| c.carry);
        let ledger = Ledger::new(config.budget, tz, carried.as_ref(), &records, now);
        Ok(Proxy {
            router,
            agent,
            pricing,
            price_as,
            ledger,
            stats: Mutex::default(),
            finishing: Mutex::default(),
            in_flight: AtomicU64::new(0),
            stopping: AtomicBool::new(false),
            started: crate::time::now_rfc3339(),
            config,
        })
    }

    pub fn busy(&self) -> Busy<'_> {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        Busy(&self.in_flight)
    }

    pub fn in_flight(&self) -> u64 {
        self.in_flight.load(Ordering::SeqCst)
    }

    /// The local token, as `x-api-key` or `Authorization: Bearer`.
    pub fn authorized(&self, head: &Head) -> bool {
        let token = &self.config.local_token;
        let given = [head.header("x-api-key"), bearer(head.header("authorization"))];
        given.into_iter().flatten().any(|t| same_token(t, token))
    }

    fn stats_lock(&self) -> MutexGuard<'_, Stats> {
        self.stats.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// What `GET /ringlet/stats` answers. That request is itself counted in
    /// flight while it is served; it is not one of the agent's.
    pub fn stats(&self) -> StatsReply {
        let snap = self.ledger.snapshot(jiff::Timestamp::now());
        let stats = self.stats_lock();
        let targets = stats
            .targets
            .iter()
            .map(|(target, acc)| {
                let mut sorted: Vec<f64> = acc.latencies.iter().copied().collect();
                sorted.sort_by(f64::total_cmp);
                TargetStats {
                    target: target.clone(),
                    requests: acc.requests,
                    errors: acc.errors,
                    fallbacks: acc.fallbacks,
                    p50_ms: percentile(&sorted, 0.50),
                    p99_ms: percentile(&sorted, 0.99),
                    spend_today_usd: snap.by_target.get(target).copied().unwrap_or(0.0),
                }
            })
            .collect();
        StatsReply {
            alias: self.config.alias.clone(),
            pid: std::process::id(),
            started: self.started.clone(),
            requests: stats.requests,
            in_flight: self.in_flight().saturating_sub(1),
            last_request: stats.last_request.clone(),
            spend_today_usd: snap.today,
            spend_month_usd: snap.month,
            unpriced_requests: snap.unpriced_month,
            budget: self.config.budget,
            budget_state: snap.state,
            budget_period: snap.period.map(str::to_owned),
            targets,
        }
    }

    /// Logs a request refused before it could be relayed (a body too big).
    pub fn log_refusal(&self, head: &Head, status: u16) {
        let record = Record {
            ts: crate::time::now_rfc3339(),
            path: head.path().to_string(),
            rule: None,
            model: String::new(),
            attempts: Vec::new(),
            status,
            target: None,
            ttfb_ms: None,
            ms: 0.0,
            tokens: None,
            cost_usd: None,
            stream: false,
        };
        self.finish(record);
    }

    /// Relays one authorized request and logs it. `Err` when the client
    /// connection cannot be used further.
    pub fn relay(&self, head: &Head, body: Vec<u8>, client: &mut Client) -> io::Result<()> {
        let begun = Instant::now();
        let mut record = Record {
            ts: crate::time::now_rfc3339(),
            path: head.path().to_string(),
            rule: None,
            model: String::new(),
            attempts: Vec::new(),
            status: 0,
            target: None,
            ttfb_ms: None,
            ms: 0.0,
            tokens: None,
            cost_usd: None,
            stream: false,
        };
        if head.method == "POST" && too_many_values(&body) {
            record.status = 413;
            record.ms = ms(begun);
            let message = format!(
                "ringlet: the request body holds over {MAX_JSON_VALUES} JSON values (see the proxy's limits)"
            );
            let result = client.error(self, 413, &message);
            self.finish(record);
            return result;
        }
        let json: Option<Value> = (head.method == "POST" && !body.is_empty())
            .then(|| serde_json::from_slice(&body).ok())
            .flatten();
        let family = self.config.family;
        let mut hops = Vec::new();
        if let Some(value) = &json {
            // Refused before anything is routed, logged or sent: two
            // top-level `model` keys (the router reads the last, an upstream
            // may read the first: routed and priced as one model, billed as
            // another), or a model name that would bloat every log line.
            let refusal = if model_spans(&body).is_some_and(|spans| spans.len() > 1) {
                Some("ringlet: the request body has more than one `model` key".to_string())
            } else if value
                .get("model")
                .and_then(Value::as_str)
                .is_some_and(|m| m.len() > MAX_MODEL)
            {
                Some(format!("ringlet: model names are limited to {MAX_MODEL} bytes"))
            } else {
                None
            };
            if let Some(message) = refusal {
                record.status = 400;
                record.ms = ms(begun);
                let result = client.error(self, 400, &message);
                self.finish(record);
                return result;
            }
            let facts = Facts::from_body(family, value);
            let route = self.router.route(&facts);
            record.model = facts.model;
            record.rule = route.rule;
            record.stream = value.get("stream").and_then(Value::as_bool).unwrap_or(false);
            hops = route
                .targets
                .iter()
                .map(|t| Hop {
                    key: t.upstream_key(),
                    model: Some(t.model.clone()),
                    label: t.to_string(),
                })
                .collect();
        }
        if hops.is_empty() {
            let key = self.config.default_upstream.clone();
            let label = format!("{key}/{}", record.model);
            hops.push(Hop { key, model: None, label });
        }

        // The budget, before any upstream is contacted.
        if let Err(over) = self.ledger.check(jiff::Timestamp::now()) {
            record.status = 402;
            record.ms = ms(begun);
            let result = client.error(self, 402, &over.message(&self.config.alias));
            self.finish(record);
            return result;
        }

        let result = self.try_chain(head, &body, json.as_ref(), &hops, client, &mut record, begun);
        record.ms = ms(begun);
        self.finish(record);
        result
    }

    /// Tries the hops in order; see the module docs.
    #[allow(clippy::too_many_arguments)]
    fn try_chain(
        &self,
        head: &Head,
        body: &[u8],
        json: Option<&Value>,
        hops: &[Hop],
        client: &mut Client,
        record: &mut Record,
        begun: Instant,
    ) -> io::Result<()> {
        let path = upstream_path(self.config.family, &head.target);
        let headers = forwarded_headers(head);
        let mut failure: Option<Failure> = None;
        let mut last_error = String::new();
        for (i, hop) in hops.iter().enumerate() {
            let last = i + 1 == hops.len();
            let sent = Instant::now();
            let mut attempt =
                Attempt { target: hop.label.clone(), status: None, error: None, ms: 0.0 };
            let Some(upstream) = self.config.upstreams.get(&hop.key) else {
                attempt.error = Some(format!("no upstream `{}` is configured", hop.key));
                last_error = format!("{}: {}", hop.label, attempt.error.as_deref().unwrap_or(""));
                self.note_attempt(&attempt, true, !last);
                record.attempts.push(attempt);
                continue;
            };
            // Only `model` changes, and only when the target names another.
            let rewritten;
            let payload = match (json, &hop.model) {
                (Some(value), Some(model))
                    if value.get("model").and_then(Value::as_str) != Some(model) =>
                {
                    // Byte for byte but the model's value; re-serialized
                    // only if the splice cannot find it (not at the top).
                    rewritten = splice_model(body, model).unwrap_or_else(|| {
                        let mut value = value.clone();
                        value["model"] = Value::String(model.clone());
                        serde_json::to_vec(&value).unwrap_or_else(|_| body.to_vec())
                    });
                    &rewritten[..]
                }
                _ => body,
            };
            let url = format!("{}{}", upstream.url.trim_end_matches('/'), path);
            let response = self.send(&head.method, &url, &headers, upstream, payload);
            let response = match response {
                Ok(response) => response,
                Err(e) => {
                    attempt.ms = ms(sent);
                    attempt.error = Some(e.to_string());
                    last_error = format!("{}: {e}", hop.label);
                    self.note_attempt(&attempt, true, !last);
                    record.attempts.push(attempt);
                    continue;
                }
            };
            let status = response.status().as_u16();
            attempt.status = Some(status);
            let down_headers = answer_headers(response.headers());
            let framing = framing(head, &response);
            let mut reader = response.into_body().into_reader();
            if status == 429 || status >= 500 {
                let mut kept = Vec::new();
                let _ = (&mut reader).take(MAX_ERROR_BODY).read_to_end(&mut kept);
                attempt.ms = ms(sent);
                last_error = format!("{}: HTTP {status}", hop.label);
                self.note_attempt(&attempt, true, !last);
                record.attempts.push(attempt);
                failure = Some(Failure { status, headers: down_headers, body: kept });
                continue;
            }
            // The first body read decides: a failure here still falls back.
            let mut buf = vec![0u8; READ_BUF];
            let first = match read_some(&mut reader, &mut buf) {
                Ok(n) => n,
                Err(e) => {
                    attempt.ms = ms(sent);
                    attempt.error = Some(format!("reading the answer: {e}"));
                    last_error = format!("{}: {e}", hop.label);
                    self.note_attempt(&attempt, true, !last);
                    record.attempts.push(attempt);
                    continue;
                }
            };
            attempt.ms = ms(sent);
            let metered = (200..300).contains(&status);
            let mut meter = UsageMeter::new(self.config.family, record.stream);
            record.status = status;
            record.target = Some(hop.label.clone());
            client.head(status, &down_headers, framing);
            let mut outcome = client.body(&buf[..first]).map_err(|e| ("client", e));
            record.ttfb_ms = Some(ms(begun));
            if metered {
                meter.feed(&buf[..first]);
            }
            let mut relayed = first;
            if first > 0 {
                while outcome.is_ok() {
                    match read_some(&mut reader, &mut buf) {
                        Ok(0) => break,
                        Ok(n) => {
                            relayed += n;
                            if metered {
                                meter.feed(&buf[..n]);
                            }
                            outcome = client.body(&buf[..n]).map_err(|e| ("client", e));
                        }
                        Err(e) => outcome = Err(("upstream", e)),
                    }
                }
            }
            if outcome.is_ok() {
                outcome = client.end().map_err(|e| ("client", e));
            }
            // An agent that goes away is not the upstream's error.
            let broke = matches!(outcome, Err(("upstream", _)));
            if let Err((side, e)) = &outcome {
                attempt.error = Some(match *side {
                    "upstream" => format!("broke off after {relayed} bytes: {e}"),
                    _ => format!("the agent went away after {relayed} bytes: {e}"),
                });
            }
            self.note_attempt(&attempt, broke, false);
            record.attempts.push(attempt);
            if metered {
                let (tokens, reported) = meter.finish_with_model();
                record.tokens = tokens;
                // Priced as the model asked of the upstream, else as the
                // one it says it used (a dated name the table knows).
                let model = hop.model.as_deref().unwrap_or(&record.model);
                record.cost_usd = tokens.and_then(|t| {
                    self.cost(model, t).or_else(|| self.cost(reported.as_deref()?, t))
                });
            }
            return match outcome {
                Ok(()) => Ok(()),
                // The stream is cut: the connection closes without the
                // last chunk, which is how the agent learns of it.
                Err((_, e)) => {
                    client.close = true;
                    Err(e)
                }
            };
        }
        match failure {
            Some(Failure { status, headers, body }) => {
                record.status = status;
                record.ttfb_ms = Some(ms(begun));
                client.head(status, &headers, Framing::Length(body.len() as u64));
                client.body(&body)
            }
            None => {
                record.status = 502;
                record.ttfb_ms = Some(ms(begun));
                let message =
                    format!("ringlet: no upstream answered; the last error: {last_error}");
                client.error(self, 502, &message)
            }
        }
    }

    fn send(
        &self,
        method: &str,
        url: &str,
        headers: &[(String, String)],
        upstream: &Upstream,
        body: &[u8],
    ) -> Result<ureq::http::Response<ureq::Body>, String> {
        let mut builder = ureq::http::Request::builder().method(method).uri(url);
        for (name, value) in headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        builder = match upstream.auth {
            AuthStyle::XApiKey => builder.header("x-api-key", upstream.key.as_str()),
            AuthStyle::Bearer => {
                builder.header("authorization", format!("Bearer {}", upstream.key))
            }
        };
        // A GET without a body must not announce one.
        let bodiless = body.is_empty() && matches!(method, "GET" | "HEAD" | "DELETE" | "OPTIONS");
        let result = if bodiless {
            let request = builder.body(()).map_err(|e| e.to_string())?;
            self.agent.run(request)
        } else {
            let request = builder.body(body).map_err(|e| e.to_string())?;
            self.agent.run(request)
        };
        result.map_err(|e| e.to_string())
    }

    fn cost(&self, model: &str, tokens: ProxyTokens) -> Option<f64> {
        let tokens = crate::usage::Tokens {
            input: tokens.input,
            output: tokens.output,
            cache_write_5m: tokens.cache_write,
            cache_read: tokens.cache_read,
            ..Default::default()
        };
        self.pricing.current().cost(self.price_as, model, &tokens, false)
    }

    fn note_attempt(&self, attempt: &Attempt, failed: bool, fell_back: bool) {
        let mut stats = self.stats_lock();
        let known = stats.targets.contains_key(&attempt.target);
        let key = if known || stats.targets.len() < MAX_TARGETS {
            attempt.target.clone()
        } else {
            OTHERS.to_string()
        };
        let acc = stats.targets.entry(key).or_default();
        acc.requests += 1;
        acc.errors += u64::from(failed);
        acc.fallbacks += u64::from(failed && fell_back);
        if acc.latencies.len() == LATENCIES {
            acc.latencies.pop_front();
        }
        acc.latencies.push_back(attempt.ms);
    }

    /// Counts, prices and logs a finished request.
    fn finish(&self, record: Record) {
        {
            let mut stats = self.stats_lock();
            stats.requests += 1;
            stats.last_request = Some(record.ts.clone());
        }
        // Logged and counted as one step: a rotation's carry line holds
        // exactly the records before it.
        let _guard = self.finishing.lock().unwrap_or_else(PoisonError::into_inner);
        let now = jiff::Timestamp::now();
        let spent = || Some(self.ledger.spent(now));
        if let Err(e) = log::append_carrying(&self.config.log_dir, &record, &spent) {
            crate::warn!("proxy {}: request log: {e:#}", self.config.alias);
        }
        self.ledger.add(&record, now, now);
    }
}

/// `body` (valid JSON, parsed already) with the value of every top-level
/// `model` key replaced by `model`, every other byte kept: key order,
/// spacing and number spellings stay the agent's. `None` when the body is
/// not an object or has no top-level `model`.
fn splice_model(body: &[u8], model: &str) -> Option<Vec<u8>> {
    let spans = model_spans(body)?;
    if spans.is_empty() {
        return None;
    }
    let value = serde_json::to_vec(model).ok()?;
    let mut out = Vec::with_capacity(body.len() + value.len());
    let mut at = 0;
    for (start, end) in spans {
        out.extend_from_slice(&body[at..start]);
        out.extend_from_slice(&value);
        at = end;
    }
    out.extend_from_slice(&body[at..]);
    Some(out)
}

/// Where the value of each top-level `model` key of `body` (valid JSON)
/// starts and ends; `None` when the body is not an object.
fn model_spans(body: &[u8]) -> Option<Vec<(usize, usize)>> {
    let ws = |mut i: usize| {
        while body.get(i).is_some_and(|b| b.is_ascii_whitespace()) {
            i += 1;
        }
        i
    };
    let mut i = ws(0);
    if body.get(i) != Some(&b'{') {
        return None;
    }
    i += 1;
    let mut spans = Vec::new();
    loop {
        i = ws(i);
        match body.get(i)? {
            b'"' => {}
            b'}' => break,
            _ => return None,
        }
        let key = i;
        i = skip_string(body, i)?;
        // Decoded when escaped: `"mod\u0065l"` is a `model` key too.
        let name = &body[key..i];
        let is_model = name == b"\"model\""
            || (name.contains(&b'\\')
                && serde_json::from_slice::<String>(name).is_ok_and(|n| n == "model"));
        i = ws(i);
        if body.get(i) != Some(&b':') {
            return None;
        }
        i = ws(i + 1);
        let start = i;
        i = skip_value(body, i)?;
        if is_model {
            spans.push((start, i));
        }
        i = ws(i);
        match body.get(i)? {
            b',' => i += 1,
            b'}' => break,
            _ => return None,
        }
    }
    Some(spans)
}

/// The end of the string starting at `i` (its opening quote).
fn skip_string(body: &[u8], mut i: usize) -> Option<usize> {
    i += 1;
    loop {
        match body.get(i)? {
            b'\\' => i += 2,
            b'"' => return Some(i + 1),
            _ => i += 1,
        }
    }
}

/// The end of the JSON value starting at `i`.
fn skip_value(body: &[u8], mut i: usize) -> Option<usize> {
    match body.get(i)? {
        b'"' => skip_string(body, i),
        b'{' | b'[' => {
            let mut depth = 0usize;
            loop {
                match body.get(i)? {
                    b'"' => {
                        i = skip_string(body, i)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(i + 1);
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
        }
        _ => {
            while body.get(i).is_some_and(|b| !b",}] \t\r\n".contains(b)) {
                i += 1;
            }
            Some(i)
        }
    }
}

/// Whether `body` holds more than [`MAX_JSON_VALUES`] values, counted
/// without parsing: the commas and opening brackets outside strings.
fn too_many_values(body: &[u8]) -> bool {
    let (mut count, mut in_string, mut escaped) = (0usize, false, false);
    for &b in body {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b',' | b'[' | b'{' => {
                count += 1;
                if count > MAX_JSON_VALUES {
                    return true;
                }
            }
            _ => {}
        }
    }
    false
}

/// One read, retried when interrupted.
fn read_some(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match reader.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            other => return other,
        }
    }
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1000.0
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// The request target (path and query) upstream: an OpenAI-family agent's
/// base URL is the proxy's `/v1`, which the upstream URL's own path replaces.
fn upstream_path(family: Family, target: &str) -> &str {
    match family {
        Family::Anthropic => target,
        Family::OpenAi => match target.strip_prefix("/v1") {
            Some(rest) if rest.is_empty() || rest.starts_with(['/', '?']) => rest,
            _ => target,
        },
    }
}

/// The agent's headers that go upstream (see [`DROP_UP`]), plus none named
/// by its `Connection` header.
fn forwarded_headers(head: &Head) -> Vec<(String, String)> {
    let named: Vec<String> = head
        .headers
        .iter()
        .filter(|(n, _)| n == "connection")
        .flat_map(|(_, v)| v.split(',').map(|t| t.trim().to_ascii_lowercase()))
        .collect();
    head.headers
        .iter()
        .filter(|(n, _)| {
            !DROP_UP.contains(&n.as_str()) && !n.starts_with("proxy-") && !named.contains(n)
        })
        .cloned()
        .collect()
}

/// The upstream's answer headers that go to the agent: not the hop-by-hop
/// ones, nor any its `Connection` header names (RFC 9110 §7.6.1).
fn answer_headers(headers: &ureq::http::HeaderMap) -> Vec<(String, Vec<u8>)> {
    let named: Vec<String> = headers
        .get_all("connection")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(',').map(|t| t.trim().to_ascii_lowercase()))
        .collect();
    headers
        .iter()
        .filter(|(n, _)| {
            !DROP_DOWN.contains(&n.as_str())
                && !n.as_str().starts_with("proxy-")
                && !named.iter().any(|t| t == n.as_str())
        })
        .map(|(n, v)| (n.as_str().to_string(), v.as_bytes().to_vec()))
        .collect()
}

/// How the answer is framed to the agent: the upstream's length when it
/// gave one, else chunked (to an HTTP/1.0 client: until the connection
/// closes); nothing for HEAD, 1xx, 204 and 304.
fn framing(head: &Head, response: &ureq::http::Response<ureq::Body>) -> Framing {
    let status = response.status().as_u16();
    if head.method == "HEAD" || status < 200 || status == 204 || status == 304 {
        return Framing::Empty;
    }
    let headers = response.headers();
    let length = headers.get("content-length").and_then(|v| v.to_str().ok()?.parse().ok());
    match length {
        Some(n) if !headers.contains_key("transfer-encoding") => Framing::Length(n),
        _ if head.version == "HTTP/1.0" => Framing::UntilClose,
        _ => Framing::Chunked,
    }
}

/// An error of the proxy's own in the family's shape.
pub fn error_body(family: Family, status: u16, message: &str) -> Vec<u8> {
    let body = match family {
        Family::Anthropic => {
            let kind = match status {
                401 => "authentication_error",
                402 => "billing_error",
                404 => "not_found_error",
                408 => "timeout_error",
                413 => "request_too_large",
                429 => "rate_limit_error",
                s if s >= 500 => "api_error",
                _ => "invalid_request_error",
            };
            json!({"type": "error", "error": {"type": kind, "message": message}})
        }
        Family::OpenAi => {
            let (kind, code) = match status {
                401 => ("invalid_request_error", "invalid_api_key"),
                402 => ("insufficient_quota", "insufficient_quota"),
                408 => ("invalid_request_error", "timeout"),
                413 => ("invalid_request_error", "request_too_large"),
                431 => ("invalid_request_error", "headers_too_large"),
                s if s >= 500 => ("server_error", "bad_gateway"),
                _ => ("invalid_request_error", "bad_request"),
            };
            json!({"error": {"message": message, "type": kind, "code": code}})
        }
    };
    body.to_string().into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openai_paths_lose_the_agents_v1_only() {
        assert_eq!(upstream_path(Family::OpenAi, "/v1/responses"), "/responses");
        assert_eq!(upstream_path(Family::OpenAi, "/v1?x=1"), "?x=1");
        assert_eq!(upstream_path(Family::OpenAi, "/v10/x"), "/v10/x");
        assert_eq!(
            upstream_path(Family::Anthropic, "/v1/messages?beta=true"),
            "/v1/messages?beta=true"
        );
    }

    #[test]
    fn only_the_top_level_model_value_changes() {
        let body = br#"{ "stream":true, "model" : "a/b\"c", "n": 1.50e2,
            "tools":[{"model":"inner","x":"}]"}], "z": {"model": "deep"} }"#;
        let out = splice_model(body, "new/model").unwrap();
        let expected = br#"{ "stream":true, "model" : "new/model", "n": 1.50e2,
            "tools":[{"model":"inner","x":"}]"}], "z": {"model": "deep"} }"#;
        assert_eq!(String::from_utf8_lossy(&out), String::from_utf8_lossy(expected));
        // Both of duplicate keys (a parser keeps the last).
        let dup = splice_model(br#"{"model":"a","model":"b"}"#, "c").unwrap();
        assert_eq!(dup, br#"{"model":"c","model":"c"}"#);
        let escaped = splice_model(br#"{"model":"a","mod\u0065l":"b"}"#, "c").unwrap();
        assert_eq!(escaped, br#"{"model":"c","mod\u0065l":"c"}"#);
        assert_eq!(splice_model(br#"{"messages":[]}"#, "m"), None);
        assert_eq!(splice_model(br#"[{"model":"a"}]"#, "m"), None);
        assert_eq!(splice_model(br#"{}"#, "m"), None);
    }

    #[test]
    fn values_are_counted_outside_strings_only() {
        let many = format!("[{}0]", "0,".repeat(MAX_JSON_VALUES));
        assert!(too_many_values(many.as_bytes()));
        let few = format!("[{}0]", "0,".repeat(MAX_JSON_VALUES - 2));
        assert!(!too_many_values(few.as_bytes()));
        let text = format!(r#"{{"a":"{}\",[{{"}}"#, ",".repeat(2 * MAX_JSON_VALUES));
        assert!(!too_many_values(text.as_bytes()));
    }

    #[test]
    fn headers_the_upstream_s_connection_names_stay_behind() {
        let mut headers = ureq::http::HeaderMap::new();
        headers.insert("connection", "keep-alive, X-Hop".parse().unwrap());
        headers.insert("x-hop", "1".parse().unwrap());
        headers.insert("keep-alive", "timeout=5".parse().unwrap());
        headers.insert("request-id", "r".parse().unwrap());
        let kept: Vec<String> = answer_headers(&headers).into_iter().map(|(n, _)| n).collect();
        assert_eq!(kept, ["request-id"]);
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let sorted: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&sorted, 0.5), 50.0);
        assert_eq!(percentile(&sorted, 0.99), 99.0);
        assert_eq!(percentile(&[7.0], 0.99), 7.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
    }

    #[test]
    fn error_shapes_follow_the_family() {
        let a: Value = serde_json::from_slice(&error_body(Family::Anthropic, 402, "m")).unwrap();
        assert_eq!(a, json!({"type": "error", "error": {"type": "billing_error", "message": "m"}}));
        let o: Value = serde_json::from_slice(&error_body(Family::OpenAi, 402, "m")).unwrap();
        assert_eq!(
            o,
            json!({"error": {"message": "m", "type": "insufficient_quota", "code": "insufficient_quota"}})
        );
    }
}

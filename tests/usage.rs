//! Usage tracking against realistic Claude Code data from
//! [`claude_gen`](crate::util::claude_gen): the generator's own invariants,
//! and `ringlet usage daily` cross-checked against ccusage, the tracker most
//! people use, token for token and within 0.5 % on cost.
//!
//! The data stays clear of the cases where ringlet deliberately differs from
//! ccusage (long-context pricing, 1-hour cache writes, fast mode, lines
//! without `requestId`, sidechain replays); those have their own tests.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::util::claude_gen::{self, GenStats, Sums};
use crate::util::{Env, installed_version, real_agents_dir};

/// The cross-check's data set: about 20 MB in 40 files.
const FILES: usize = 40;
const BYTES: u64 = 20_000_000;
const SEED: u64 = 0x0005_a6e0_c0ff_ee00;
/// How far ringlet's cost may be from ccusage's, relative.
const COST_TOLERANCE: f64 = 0.005;

/// Every `.jsonl` file under `dir`, sorted.
fn jsonl_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "jsonl") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// The generator writes what it says it writes: the same bytes for the same
/// seed, valid JSON lines shaped like Claude Code 2.1.197's, one response as
/// 1-3 lines with one id pair and one usage, and sums that match a
/// recount with the (`message.id`, `requestId`) dedup.
#[test]
fn claude_gen_writes_what_it_counts() {
    let env = Env::new("claude-gen");
    let (a, b) = (env.root.join("a"), env.root.join("b"));
    let stats = claude_gen::generate(&a, 14, 3_000_000, 7);
    assert_eq!(claude_gen::generate(&b, 14, 3_000_000, 7), stats, "same seed, same stats");
    assert_eq!(GenStats::from_text(&stats.to_text()).as_ref(), Some(&stats));

    let files = jsonl_files(&a.join("projects"));
    assert_eq!(files.len(), stats.files);
    let (mut bytes, mut lines, mut assistant_lines, mut subagents) = (0u64, 0u64, 0u64, 0usize);
    let mut responses: HashMap<(String, String), (Value, String)> = HashMap::new();
    let mut days: BTreeMap<String, Sums> = BTreeMap::new();
    for file in &files {
        let text = fs::read(file).unwrap();
        assert_eq!(text, fs::read(b.join(file.strip_prefix(&a).unwrap())).unwrap(), "{file:?}");
        bytes += text.len() as u64;
        let rel = file.strip_prefix(a.join("projects")).unwrap();
        let parts: Vec<&str> = rel.iter().map(|p| p.to_str().unwrap()).collect();
        // <project>/<session>.jsonl, or <project>/<session>/subagents/agent-<id>.jsonl.
        let (session, agent) = match parts.as_slice() {
            [_, name] => (name.strip_suffix(".jsonl").unwrap(), None),
            [_, session, "subagents", name] => {
                subagents += 1;
                let id = name.strip_prefix("agent-").unwrap().strip_suffix(".jsonl").unwrap();
                (*session, Some(id))
            }
            _ => panic!("unexpected path {rel:?}"),
        };
        for line in std::str::from_utf8(&text).unwrap().lines() {
            lines += 1;
            let v: Value =
                serde_json::from_str(line).unwrap_or_else(|e| panic!("{file:?}: {e}: {line}"));
            let kind = v["type"].as_str().unwrap();
            if let Some(ts) = v["timestamp"].as_str() {
                let ok = ts.len() == 24 && ts.ends_with('Z') && ts.as_bytes()[10] == b'T';
                assert!(ok, "timestamp {ts}");
            }
            if !matches!(kind, "user" | "assistant" | "attachment" | "system") {
                assert!(
                    matches!(
                        kind,
                        "summary" | "queue-operation" | "last-prompt" | "file-history-snapshot"
                    ),
                    "{kind}"
                );
                continue;
            }
            assert_eq!(v["sessionId"], session, "{line}");
            assert_eq!(v["version"], claude_gen::VERSION);
            assert_eq!(v["userType"], "external");
            let cwd = v["cwd"].as_str().unwrap();
            assert_eq!(claude_gen::encode_cwd(cwd), parts[0]);
            match agent {
                None => assert_eq!(v["isSidechain"], false),
                Some(id) => {
                    assert_eq!(v["isSidechain"], true);
                    assert_eq!(v["agentId"], id);
                }
            }
            if kind != "assistant" {
                assert!(v["message"].get("usage").is_none(), "{line}");
                continue;
            }
            assistant_lines += 1;
            let message = &v["message"];
            let usage = &message["usage"];
            let n = |key: &str| usage[key].as_u64().unwrap_or_else(|| panic!("{key}: {line}"));
            assert_eq!(usage["cache_creation"]["ephemeral_1h_input_tokens"], 0);
            assert_eq!(
                n("cache_creation_input_tokens"),
                usage["cache_creation"]["ephemeral_5m_input_tokens"].as_u64().unwrap()
            );
            assert_eq!(usage["speed"], "standard");
            assert_eq!(usage["service_tier"], "standard");
            let prompt =
                n("input_tokens") + n("cache_creation_input_tokens") + n("cache_read_input_tokens");
            assert!(prompt < 200_000, "prompt of {prompt} tokens");
            let model = message["model"].as_str().unwrap();
            assert!(claude_gen::MODELS.iter().any(|m| m.0 == model), "{model}");
            assert_eq!(message["content"].as_array().unwrap().len(), 1, "one block per line");
            let key = (
                message["id"].as_str().unwrap().to_string(),
                v["requestId"].as_str().unwrap().to_string(),
            );
            let day = v["timestamp"].as_str().unwrap()[..10].to_string();
            if let Some((first, first_day)) = responses.get(&key) {
                assert_eq!(first, usage, "one response, one usage: {key:?}");
                assert_eq!(first_day, &day, "one response, one day: {key:?}");
                continue;
            }
            responses.insert(key, (usage.clone(), day.clone()));
            let sums = days.entry(day).or_default();
            sums.responses += 1;
            sums.input_tokens += n("input_tokens");
            sums.output_tokens += n("output_tokens");
            sums.cache_creation_tokens += n("cache_creation_input_tokens");
            sums.cache_read_tokens += n("cache_read_input_tokens");
        }
    }
    assert_eq!(bytes, stats.bytes);
    assert_eq!(lines, stats.lines);
    assert_eq!(assistant_lines, stats.assistant_lines);
    assert_eq!(responses.len() as u64, stats.responses);
    assert_eq!(days, stats.days);
    assert_eq!(subagents, stats.files - stats.sessions);
    assert!(subagents > 0 && stats.sessions > 0);
    // Several lines per response on average, realistic line sizes, many days.
    assert!(assistant_lines * 10 > stats.responses * 13, "{assistant_lines} lines");
    let average = bytes / lines;
    assert!((1_000..=3_500).contains(&average), "average line of {average} bytes");
    assert!(stats.days.len() >= 5, "{:?}", stats.days.keys());
}

/// ccusage from tests/setup.sh at its pinned version, or `None` (with a loud
/// note) when it is not installed and RINGLET_REQUIRE_CCUSAGE is unset.
fn ccusage() -> Option<PathBuf> {
    let bin = real_agents_dir().join("node_modules").join(".bin").join("ccusage");
    if !bin.is_file() {
        assert!(
            std::env::var_os("RINGLET_REQUIRE_CCUSAGE").is_none(),
            "RINGLET_REQUIRE_CCUSAGE is set but {} is missing; run tests/setup.sh",
            bin.display()
        );
        eprintln!(
            "\n*** SKIPPED usage_daily_matches_ccusage: {} is not installed; run tests/setup.sh \
             (make test does) ***\n",
            bin.display()
        );
        return None;
    }
    let pins: Value = serde_json::from_str(
        &fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/agents/package.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let pinned = pins["dependencies"]["ccusage"].as_str().unwrap();
    assert_eq!(installed_version("ccusage"), pinned, "stale ccusage; run tests/setup.sh");
    Some(bin)
}

/// One day's figures from either tool.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Day {
    input: u64,
    output: u64,
    cache_creation: u64,
    cache_read: u64,
    cost: f64,
}

impl Day {
    fn tokens(&self) -> [u64; 4] {
        [self.input, self.output, self.cache_creation, self.cache_read]
    }
}

fn num(v: &Value, key: &str) -> u64 {
    v[key].as_u64().unwrap_or_else(|| panic!("no integer {key} in {v}"))
}

fn cost(v: &Value, key: &str) -> f64 {
    v[key].as_f64().unwrap_or_else(|| panic!("no number {key} in {v}"))
}

/// `ccusage daily --json`: `{"daily":[{"date","inputTokens","outputTokens",
/// "cacheCreationTokens","cacheReadTokens","totalTokens","totalCost",
/// "modelsUsed","modelBreakdowns"}],"totals":{…}}`.
fn ccusage_day(v: &Value) -> Day {
    Day {
        input: num(v, "inputTokens"),
        output: num(v, "outputTokens"),
        cache_creation: num(v, "cacheCreationTokens"),
        cache_read: num(v, "cacheReadTokens"),
        cost: cost(v, "totalCost"),
    }
}

/// `ringlet usage daily --json`: rows and totals of `UsageTotals`.
fn ringlet_day(v: &Value) -> Day {
    Day {
        input: num(v, "input_tokens"),
        output: num(v, "output_tokens"),
        cache_creation: num(v, "cache_creation_tokens"),
        cache_read: num(v, "cache_read_tokens"),
        cost: cost(v, "cost_usd"),
    }
}

fn expected_tokens(s: &Sums) -> [u64; 4] {
    [s.input_tokens, s.output_tokens, s.cache_creation_tokens, s.cache_read_tokens]
}

/// The cross-check: per UTC day, ringlet and ccusage count the same input,
/// output, cache write and cache read tokens and cost within 0.5 %, and
/// both match what the generator wrote.
#[test]
fn usage_daily_matches_ccusage() {
    let Some(ccusage) = ccusage() else { return };
    let env = Env::new("usage-ccusage");
    // The user's own ~/.claude: ringlet's `(default)` profile.
    let claude = env.home.join(".claude");
    let stats = claude_gen::generate(&claude, FILES, BYTES, SEED);

    let mut command = env.program(&ccusage).env("CLAUDE_CONFIG_DIR", &claude);
    command.cmd.args(["daily", "--json", "--offline", "--timezone", "UTC"]);
    let out = command.json();
    let theirs: BTreeMap<String, Day> = out["daily"]
        .as_array()
        .unwrap_or_else(|| panic!("no daily array from ccusage: {out}"))
        .iter()
        .map(|d| (d["date"].as_str().unwrap().to_string(), ccusage_day(d)))
        .collect();
    let their_total = ccusage_day(&out["totals"]);

    let report = env.cmd(&["usage", "daily", "--json", "--timezone", "UTC"]).json();
    let ours: BTreeMap<String, Day> = report["rows"]
        .as_array()
        .unwrap_or_else(|| panic!("no rows from ringlet: {report}"))
        .iter()
        .map(|r| (r["date"].as_str().unwrap().to_string(), ringlet_day(r)))
        .collect();
    let our_total = ringlet_day(&report["totals"]);
    let messages: BTreeMap<&str, u64> = report["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["date"].as_str().unwrap(), num(r, "messages")))
        .collect();

    // A table of every day, for the failure message.
    let mut table = format!(
        "{:<10} {:>44} | {:>44} | {:>44}\n",
        "day", "generator (in out cw cr)", "ccusage (in out cw cr $)", "ringlet (in out cw cr $)"
    );
    let mut problems = Vec::new();
    for (day, expected) in &stats.days {
        let want = expected_tokens(expected);
        let (c, r) = (theirs.get(day), ours.get(day));
        let show = |d: Option<&Day>| {
            d.map_or("missing".into(), |d| format!("{:?} {:.4}", d.tokens(), d.cost))
        };
        table.push_str(&format!(
            "{day:<10} {:>44} | {:>44} | {:>44}\n",
            format!("{want:?}"),
            show(c),
            show(r)
        ));
        match (c, r) {
            (Some(c), Some(r)) => {
                if c.tokens() != r.tokens() {
                    problems.push(format!(
                        "{day}: tokens differ: ccusage {:?}, ringlet {:?}",
                        c.tokens(),
                        r.tokens()
                    ));
                }
                if (r.cost - c.cost).abs() > COST_TOLERANCE * c.cost {
                    problems.push(format!(
                        "{day}: cost differs: ccusage {}, ringlet {}",
                        c.cost, r.cost
                    ));
                }
                if c.tokens() != want {
                    problems.push(format!("{day}: ccusage is not the generator's {want:?}"));
                }
                if messages.get(day.as_str()) != Some(&expected.responses) {
                    problems.push(format!(
                        "{day}: ringlet counts {:?} messages, the generator wrote {} responses",
                        messages.get(day.as_str()),
                        expected.responses
                    ));
                }
            }
            _ => problems.push(format!("{day}: missing from ccusage or ringlet")),
        }
    }
    for day in theirs.keys().chain(ours.keys()) {
        if !stats.days.contains_key(day) {
            problems.push(format!("{day}: a day the generator never wrote"));
        }
    }
    let want = expected_tokens(&stats.tokens);
    if our_total.tokens() != want || their_total.tokens() != want {
        problems.push(format!(
            "totals: generator {want:?}, ccusage {:?}, ringlet {:?}",
            their_total.tokens(),
            our_total.tokens()
        ));
    }
    if (our_total.cost - their_total.cost).abs() > COST_TOLERANCE * their_total.cost {
        problems
            .push(format!("total cost: ccusage {}, ringlet {}", their_total.cost, our_total.cost));
    }
    if num(&report["totals"], "messages") != stats.responses {
        problems.push(format!(
            "ringlet counts {} messages, the generator wrote {} responses",
            report["totals"]["messages"], stats.responses
        ));
    }
    if report["unpriced_models"] != Value::Array(Vec::new())
        || num(&report["totals"], "unpriced_tokens") != 0
    {
        problems.push(format!(
            "unpriced: {} ({} tokens)",
            report["unpriced_models"], report["totals"]["unpriced_tokens"]
        ));
    }
    if report["skipped"]["lines"] != 0 || report["skipped"]["files"] != 0 {
        problems.push(format!("skipped: {}", report["skipped"]));
    }
    assert!(
        problems.is_empty(),
        "ringlet and ccusage disagree on {} files, {} lines, {} responses:\n{}\n{table}\
         totals: ccusage ${:.4}, ringlet ${:.4}",
        stats.files,
        stats.lines,
        stats.responses,
        problems.join("\n"),
        their_total.cost,
        our_total.cost
    );
}

/// Where ringlet deliberately differs from ccusage, both tools on the same
/// lines, each difference pinned to the rule README.md documents:
/// 1. a response written as two lines without `requestId` (a provider that
///    sends no `request-id` header): ccusage counts both lines, ringlet the
///    response once (keyed on `message.id`);
/// 2. streaming snapshots of one response with growing output: ccusage
///    keeps the first line, ringlet the most complete one;
/// 3. a `/btw` sidechain replay of a counted message under a new request
///    id: ccusage counts it again, ringlet drops it.
#[test]
fn deliberate_differences_from_ccusage() {
    let Some(ccusage) = ccusage() else { return };
    let env = Env::new("usage-differences");
    let claude = env.home.join(".claude");
    let line = |id: &str, req: Option<&str>, out: u64, side: bool| {
        let req = req.map_or(String::new(), |r| format!(r#""requestId":"{r}","#));
        format!(
            r#"{{"type":"assistant","timestamp":"2026-03-02T09:00:00.000Z","sessionId":"s","uuid":"u-{id}-{out}-{side}","version":"2.1.197","isSidechain":{side},{req}"message":{{"id":"{id}","type":"message","role":"assistant","model":"claude-sonnet-4-5-20250929","content":[],"usage":{{"input_tokens":10,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":{out}}}}}}}"#
        )
    };
    let lines = [
        line("msg_a", None, 5, false),           // 1: block one
        line("msg_a", None, 5, false),           // 1: block two
        line("msg_b", Some("req_b"), 1, false),  // 2: first snapshot
        line("msg_b", Some("req_b"), 80, false), // 2: final snapshot
        line("msg_c", Some("req_c"), 7, false),  // 3: the real message
        line("msg_c", Some("req_c2"), 7, true),  // 3: its sidechain replay
    ];
    let path = claude.join("projects/-w/s.jsonl");
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(&path, lines.join("\n") + "\n").unwrap();

    let mut command = env.program(&ccusage).env("CLAUDE_CONFIG_DIR", &claude);
    command.cmd.args(["daily", "--json", "--offline", "--timezone", "UTC"]);
    let theirs = command.json();
    let ours = env.cmd(&["usage", "--json", "--timezone", "UTC"]).json();
    // ccusage: msg_a twice (5 + 5), msg_b's first line (1), msg_c twice (7 + 7).
    assert_eq!(num(&theirs["totals"], "outputTokens"), 25, "{theirs}");
    assert_eq!(num(&theirs["totals"], "inputTokens"), 50, "{theirs}");
    // ringlet: msg_a once (5), msg_b's final line (80), msg_c once (7).
    assert_eq!(num(&ours["totals"], "output_tokens"), 92, "{ours}");
    assert_eq!(num(&ours["totals"], "input_tokens"), 30, "{ours}");
    assert_eq!(num(&ours["totals"], "messages"), 3, "{ours}");
}

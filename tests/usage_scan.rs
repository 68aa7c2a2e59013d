//! Usage tracking end to end through the real binary: the agents' log
//! formats in the places they really write them, profiles owning their
//! homes, the incremental scan and the durable store, bad input, imports,
//! live UsageUpdated events and the reports' errors.

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use crate::util::{Env, mode, read_line_matching};

const CLAUDE_FIXTURE: &str = include_str!("fixtures/usage/claude-6.1.jsonl");
const CODEX_FIXTURE: &str = include_str!("fixtures/usage/codex-6.2.jsonl");

fn usage(env: &Env, args: &[&str]) -> Value {
    let mut all = vec!["--json", "usage"];
    all.extend_from_slice(args);
    if !args.contains(&"--timezone") && !args.contains(&"import-claude") {
        all.extend_from_slice(&["--timezone", "UTC"]);
    }
    env.cmd(&all).json()
}

fn write(path: &Path, text: &str) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
}

fn claude_file(env: &Env, name: &str) -> PathBuf {
    env.home.join(".claude/projects/-home-dev-app").join(name)
}

fn t(report: &Value, field: &str) -> u64 {
    report["totals"][field].as_u64().unwrap_or_else(|| panic!("no totals.{field} in {report}"))
}

fn cost(report: &Value) -> f64 {
    report["totals"]["cost_usd"].as_f64().unwrap()
}

/// A priced entry of the embedded snapshot.
fn price(model: &str, field: &str) -> f64 {
    let table: Value = serde_json::from_str(include_str!("../manifests/pricing.json")).unwrap();
    table[model][field].as_f64().unwrap_or_else(|| panic!("{model}.{field} not in the snapshot"))
}

#[test]
fn claude_and_codex_logs_count_as_the_formats_say() {
    let env = Env::new("usage-fixtures");
    write(&claude_file(&env, "5b1f3c7e.jsonl"), CLAUDE_FIXTURE);
    write(
        &env.home.join(".codex/sessions/2026/07/10/rollout-2026-07-10T03-00-00-0199f2a1.jsonl"),
        CODEX_FIXTURE,
    );
    let r = usage(&env, &[]);
    // Claude: msg_01AAA once with output 87, msg_01BBB once (the sidechain
    // replay dropped), the old line; Codex: two requests (one repeat dropped).
    assert_eq!(t(&r, "messages"), 5, "{r}");
    assert_eq!(t(&r, "input_tokens"), 4 + 10 + 100 + (27_000 - 19_000), "{r}");
    assert_eq!(t(&r, "output_tokens"), 87 + 40 + 50 + 1_400, "{r}");
    assert_eq!(t(&r, "cache_creation_tokens"), 1_200 + 300 + 25, "{r}");
    assert_eq!(t(&r, "cache_creation_1h_tokens"), 300, "{r}");
    assert_eq!(t(&r, "cache_read_tokens"), 18_000 + 19_200 + 10 + 19_000, "{r}");
    assert_eq!(t(&r, "reasoning_tokens"), 512, "{r}");
    assert_eq!(r["skipped"]["lines"], 1, "the `not json at all` line: {r}");

    let codex = usage(&env, &["--agent", "codex"]);
    assert_eq!(t(&codex, "messages"), 2);
    assert_eq!(t(&codex, "cache_read_tokens"), 19_000);
    // (27 000 - 19 000) x input + 19 000 x cached + 1 400 x output.
    let expected = 8_000.0 * price("gpt-5.2-codex", "input_cost_per_token")
        + 19_000.0 * price("gpt-5.2-codex", "cache_read_input_token_cost")
        + 1_400.0 * price("gpt-5.2-codex", "output_cost_per_token");
    assert!((cost(&codex) - expected).abs() < 1e-9, "{} vs {expected}", cost(&codex));

    let models = usage(&env, &["models"]);
    let names: Vec<&str> =
        models["rows"].as_array().unwrap().iter().map(|r| r["model"].as_str().unwrap()).collect();
    for m in [
        "claude-sonnet-4-5-20250929",
        "claude-opus-4-6",
        "claude-sonnet-4-20250514",
        "gpt-5.2-codex",
    ] {
        assert!(names.contains(&m), "{m} missing from {names:?}");
    }
    // The old line's own costUSD is used as is.
    let old = models["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["model"] == "claude-sonnet-4-20250514")
        .unwrap();
    assert!((old["cost_usd"].as_f64().unwrap() - 0.0123).abs() < 1e-12, "{old}");

    let daily = usage(&env, &["daily"]);
    let days: Vec<&str> =
        daily["rows"].as_array().unwrap().iter().map(|r| r["date"].as_str().unwrap()).collect();
    assert_eq!(days, ["2025-05-20", "2026-03-02", "2026-07-10"]);
    let one_day = usage(&env, &["--since", "2026-03-02", "--until", "2026-03-02"]);
    assert_eq!(t(&one_day, "messages"), 2, "{one_day}");
}

#[test]
fn appended_lines_count_once_and_history_outlives_the_logs() {
    let env = Env::new("usage-incremental");
    let path = claude_file(&env, "s.jsonl");
    let lines: Vec<&str> = CLAUDE_FIXTURE.lines().collect();
    // The first two lines, and half of the third (a write in progress).
    let half = &lines[2][..lines[2].len() / 2];
    write(&path, &format!("{}\n{}\n{half}", lines[0], lines[1]));
    let r = usage(&env, &[]);
    assert_eq!(t(&r, "messages"), 1, "{r}");
    assert_eq!(t(&r, "output_tokens"), 1, "{r}");
    assert_eq!(r["skipped"]["lines"], 0, "an incomplete last line is not an error: {r}");

    // The write completes and more lines come.
    let mut f = fs::OpenOptions::new().append(true).open(&path).unwrap();
    writeln!(f, "{}", &lines[2][half.len()..]).unwrap();
    for line in &lines[3..6] {
        writeln!(f, "{line}").unwrap();
    }
    drop(f);
    let full = usage(&env, &[]);
    assert_eq!(t(&full, "messages"), 3, "{full}");
    assert_eq!(
        t(&full, "output_tokens"),
        87 + 40 + 50,
        "the complete snapshot replaced the partial one"
    );
    assert_eq!(
        usage(&env, &[])["totals"],
        full["totals"],
        "a scan with nothing new changes nothing"
    );

    // Rewritten shorter (truncated), then replaced by a new file with the
    // same content: read again from the start, nothing counted twice.
    fs::write(&path, format!("{}\n", lines[1])).unwrap();
    assert_eq!(usage(&env, &[])["totals"], full["totals"]);
    let tmp = path.with_extension("tmp");
    fs::write(&tmp, CLAUDE_FIXTURE).unwrap();
    fs::rename(&tmp, &path).unwrap();
    assert_eq!(usage(&env, &[])["totals"]["messages"], full["totals"]["messages"]);

    // Claude Code deletes old transcripts; the counts stay, also across a
    // daemon restart.
    fs::remove_file(&path).unwrap();
    assert_eq!(usage(&env, &[])["totals"]["messages"], 3);
    env.cmd(&["daemon", "stop"]).ok();
    let after = usage(&env, &[]);
    assert_eq!(after["totals"]["messages"], 3, "{after}");
    assert_eq!(after["totals"]["output_tokens"], full["totals"]["output_tokens"]);
    let store = env.config.join("telemetry/usage.jsonl");
    assert_eq!(mode(&store), 0o600);
    assert_eq!(mode(&env.config.join("telemetry/scan-index.json")), 0o600);
}

#[test]
fn a_torn_store_line_loses_nothing_else() {
    let env = Env::new("usage-torn-store");
    write(&claude_file(&env, "s.jsonl"), CLAUDE_FIXTURE);
    let before = usage(&env, &[]);
    env.cmd(&["daemon", "stop"]).ok();
    // The daemon was killed in the middle of appending a record.
    let store = env.config.join("telemetry/usage.jsonl");
    let mut f = fs::OpenOptions::new().append(true).open(&store).unwrap();
    f.write_all(br#"{"k":123,"t":1,"a":"claude","p":"(default)","md":"x"#).unwrap();
    drop(f);
    // And the index is gone too: everything is read again.
    fs::remove_file(env.config.join("telemetry/scan-index.json")).unwrap();
    let after = usage(&env, &[]);
    assert_eq!(after["totals"], before["totals"]);
}

#[test]
fn each_profile_owns_what_is_under_its_home() {
    let env = Env::new("usage-profiles");
    env.create_profile("claude", "work");
    let home = env.home.join(".claude-profiles/work");
    write(&home.join(".claude/projects/-tmp-x/a.jsonl"), CLAUDE_FIXTURE);
    write(&env.home.join(".codex/sessions/2026/07/10/rollout-x.jsonl"), CODEX_FIXTURE);
    let r = usage(&env, &["profiles"]);
    let rows = r["rows"].as_array().unwrap();
    let by =
        |p: &str| rows.iter().find(|r| r["profile"] == p).unwrap_or_else(|| panic!("{p}: {r}"));
    assert_eq!(by("work")["messages"], 3, "{r}");
    assert_eq!(by("(default)")["messages"], 2, "{r}");
    let work = usage(&env, &["--profile", "work"]);
    assert_eq!(t(&work, "messages"), 3);
    assert_eq!(t(&work, "cache_creation_1h_tokens"), 300);
}

#[test]
fn bad_input_is_counted_and_never_fatal() {
    let env = Env::new("usage-bad-input");
    let lines: Vec<&str> = CLAUDE_FIXTURE.lines().collect();
    let good = lines[2];
    // A 50 MB line that bills: a response with a huge content block.
    let huge = format!(
        r#"{{"type":"assistant","timestamp":"2026-03-03T10:00:00.000Z","sessionId":"big","requestId":"req_big","message":{{"id":"msg_big","model":"claude-sonnet-4-5-20250929","content":[{{"type":"text","text":"{}"}}],"usage":{{"input_tokens":7,"output_tokens":9}}}}}}"#,
        "x".repeat(50 << 20)
    );
    let mut bad_utf8 =
        good.replace("claude-sonnet-4-5-20250929", "claude-sonnet-4-5-2025092\u{1}").into_bytes();
    let at = bad_utf8.windows(2).position(|w| w == b"\x01\"").unwrap();
    bad_utf8[at] = 0xff;
    let truncated = &lines[3][..lines[3].len() - 20];
    let mut text = Vec::new();
    for part in [good.as_bytes(), truncated.as_bytes(), &bad_utf8, huge.as_bytes()] {
        text.extend_from_slice(part);
        text.push(b'\n');
    }
    let dir = env.home.join(".claude/projects/-p");
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("mixed.jsonl"), &text).unwrap();
    // Not a regular file, a dangling link, and a directory loop.
    assert!(
        std::process::Command::new("mkfifo")
            .arg(dir.join("pipe.jsonl"))
            .status()
            .unwrap()
            .success()
    );
    std::os::unix::fs::symlink(dir.join("gone"), dir.join("dangling.jsonl")).unwrap();
    std::os::unix::fs::symlink(&dir, dir.join("loop")).unwrap();

    let r = usage(&env, &[]);
    assert_eq!(t(&r, "messages"), 2, "the good line and the 50 MB one: {r}");
    assert_eq!(t(&r, "output_tokens"), 87 + 9, "{r}");
    assert_eq!(r["skipped"]["lines"], 2, "truncated + invalid UTF-8 in the model: {r}");
    assert!(t(&r, "messages") > 0 && r["skipped"]["files"].as_u64().unwrap() >= 3, "{r}");
    let details = r["skipped"]["details"].to_string();
    assert!(details.contains("pipe.jsonl") && details.contains("dangling.jsonl"), "{details}");
    // The daemon is fine and the next scan agrees.
    env.cmd(&["daemon", "status"]).ok();
    assert_eq!(usage(&env, &[])["totals"], r["totals"]);
}

#[test]
fn import_claude_counts_history_once() {
    let env = Env::new("usage-import");
    let backup = env.root.join("backup");
    write(&backup.join("projects/-a/one.jsonl"), CLAUDE_FIXTURE);
    let dir = backup.display().to_string();
    let first = env.cmd(&["--json", "usage", "import-claude", "--claude-dir", &dir]).json();
    assert_eq!(first["added"], 3, "{first}");
    assert_eq!(first["profile"], "(default)");
    let again = env.cmd(&["--json", "usage", "import-claude", "--claude-dir", &dir]).json();
    assert_eq!(again["added"], 0, "{again}");
    assert_eq!(again["found"], first["found"]);
    // Imported history stays after the backup is gone.
    fs::remove_dir_all(&backup).unwrap();
    assert_eq!(t(&usage(&env, &[]), "messages"), 3);

    let (_, err) = env.cmd(&["usage", "import-claude", "--claude-dir", "/nonexistent/dir"]).code(1);
    assert!(err.contains("no Claude Code history"), "{err}");
    let (_, err) =
        env.cmd(&["usage", "import-claude", "--claude-dir", &dir, "--profile", "nobody"]).code(1);
    assert!(err.contains("nobody"), "{err}");
}

fn subscribe(env: &Env) -> BufReader<UnixStream> {
    let mut stream = UnixStream::connect(env.socket()).unwrap();
    stream
        .write_all(
            b"{\"version\":2,\"request\":{\"type\":\"subscribe\",\"events\":[\"UsageUpdated\"]}}\n",
        )
        .unwrap();
    let mut reader = BufReader::new(stream);
    let mut ack = String::new();
    reader.read_line(&mut ack).unwrap();
    assert!(ack.contains("\"data\":null"), "{ack}");
    reader
}

#[test]
fn usage_updated_follows_a_written_line_within_two_seconds() {
    let env = Env::new("usage-live");
    env.create_profile("claude", "live");
    let path = claude_file(&env, "live.jsonl");
    write(&path, "");
    usage(&env, &[]); // the daemon is up and has scanned once
    let mut events = subscribe(&env);

    let lines: Vec<&str> = CLAUDE_FIXTURE.lines().collect();
    let mut f = fs::OpenOptions::new().append(true).open(&path).unwrap();
    writeln!(f, "{}", lines[2]).unwrap();
    drop(f);
    // The watcher's event, not the 30 s rescan's: well before that. (It
    // normally comes within a second; a stopwatch on that belongs in a
    // bench, as a loaded machine can be slower.)
    let line =
        read_line_matching(&mut events, Duration::from_secs(10), |l| l.contains("UsageUpdated"))
            .expect("a UsageUpdated event");
    let event: Value = serde_json::from_str(&line).unwrap();
    let data = &event["data"];
    assert_eq!(data["profile"], "(default)", "{event}");
    assert_eq!(data["model"], "claude-sonnet-4-5-20250929");
    assert_eq!(data["output_tokens"], 87);
    assert_eq!(data["messages"], 1);

    // A profile that never ran has no log dir yet: its creation is noticed.
    let profile_log = env.home.join(".claude-profiles/live/.claude/projects/-w/first.jsonl");
    write(&profile_log, &format!("{}\n", lines[3]));
    let line = read_line_matching(&mut events, Duration::from_secs(10), |l| l.contains("\"live\""))
        .expect("a UsageUpdated event for the profile");
    let event: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(event["data"]["model"], "claude-opus-4-6", "{event}");

    // Nor is a profile created after the daemon's last scan missed: nothing
    // watched its home until the profile store told the watcher about it.
    env.create_profile("claude", "later");
    let later_log = env.home.join(".claude-profiles/later/.claude/projects/-w/first.jsonl");
    // Another request, or deduplication would rightly count nothing new.
    write(&later_log, &format!("{}\n", lines[3].replace("req_011BBB", "req_011LATER")));
    read_line_matching(&mut events, Duration::from_secs(10), |l| l.contains("\"later\""))
        .expect("a UsageUpdated event for the profile created later");
}

#[test]
fn opencode_sqlite_is_read_read_only() {
    let env = Env::new("usage-opencode");
    let dir = env.home.join(".local/share/opencode");
    fs::create_dir_all(&dir).unwrap();
    let db = dir.join("opencode.db");
    // agent-formats.md §6.3, in WAL mode like OpenCode's own database.
    let sql = "PRAGMA journal_mode=WAL;
CREATE TABLE session(id TEXT PRIMARY KEY, time_updated INTEGER);
CREATE TABLE message(id TEXT PRIMARY KEY, session_id TEXT, time_created INTEGER, time_updated INTEGER, data TEXT);
INSERT INTO session VALUES('ses_01J0XYZ',1779755350639);
INSERT INTO message VALUES('msg_01J0ABC','ses_01J0XYZ',1779755333700,1779755350639,'{\"role\":\"assistant\",\"modelID\":\"deepseek-v4-pro\",\"providerID\":\"deepseek\",\"cost\":0.0023113,\"tokens\":{\"input\":3272,\"output\":383,\"reasoning\":419,\"cache\":{\"read\":52480,\"write\":0}},\"time\":{\"created\":1779755333700,\"completed\":1779755350639}}');
INSERT INTO message VALUES('msg_01J0DEF','ses_01J0XYZ',1779755360000,1779755360000,'{\"role\":\"assistant\",\"modelID\":\"deepseek-v4-pro\",\"tokens\":{\"input\":10,\"output\":2},\"time\":{\"created\":1779755360000}}');";
    let status = std::process::Command::new("python3")
        .arg("-c")
        .arg("import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.executescript(sys.argv[2]); c.commit()")
        .arg(&db)
        .arg(sql)
        .status()
        .expect("python3");
    assert!(status.success());
    let before = fs::read(&db).unwrap();
    let r = usage(&env, &["--agent", "opencode"]);
    assert_eq!(t(&r, "messages"), 1, "the incomplete message is skipped: {r}");
    assert_eq!(t(&r, "input_tokens"), 3272);
    assert_eq!(t(&r, "output_tokens"), 383, "reasoning is not billed twice");
    assert_eq!(t(&r, "reasoning_tokens"), 419);
    assert_eq!(t(&r, "cache_read_tokens"), 52_480);
    assert!((cost(&r) - 0.0023113).abs() < 1e-12, "OpenCode's own cost: {r}");
    assert_eq!(fs::read(&db).unwrap(), before, "the database was not written");
}

#[test]
fn unpriced_models_are_reported_never_free() {
    let env = Env::new("usage-unpriced");
    let line = CLAUDE_FIXTURE
        .lines()
        .nth(2)
        .unwrap()
        .replace("claude-sonnet-4-5-20250929", "claude-mock-1");
    write(&claude_file(&env, "m.jsonl"), &format!("{line}\n"));
    let r = usage(&env, &[]);
    assert_eq!(r["unpriced_models"], serde_json::json!(["claude-mock-1"]), "{r}");
    assert_eq!(t(&r, "unpriced_tokens"), 4 + 87 + 1200 + 18_000);
    assert_eq!(cost(&r), 0.0);
    let table = env.cmd(&["usage", "--timezone", "UTC"]).ok();
    assert!(table.contains("unpriced"), "{table}");

    // A price in config.toml makes it priced (config is read at daemon start).
    env.write_config(
        "[pricing.\"claude-mock-1\"]\ninput_cost_per_token = 1e-6\noutput_cost_per_token = 2e-6\n",
    );
    env.cmd(&["daemon", "stop"]).ok();
    let r = usage(&env, &[]);
    assert_eq!(r["unpriced_models"], serde_json::json!([]), "{r}");
    assert_eq!(t(&r, "unpriced_tokens"), 0);
    // Cache prices default from the input price: writes 1.25x, reads 0.1x.
    let expected = 4.0 * 1e-6 + 87.0 * 2e-6 + 1200.0 * 1.25e-6 + 18_000.0 * 1e-7;
    assert!((cost(&r) - expected).abs() < 1e-12, "{} vs {expected}", cost(&r));
    assert!(r["pricing"].as_str().unwrap().contains("config"), "{r}");
}

#[test]
fn reports_refuse_bad_filters_clearly() {
    let env = Env::new("usage-bad-filters");
    // Exit 2: the parser knows the periods (a usage error); 1: the daemon
    // refused the query.
    for (args, needle, code) in [
        (&["usage", "--period", "fortnight"][..], "fortnight", 2),
        (&["usage", "--since", "2026-13-01"][..], "2026-13-01", 1),
        (&["usage", "--since", "2026-03-02", "--until", "2026-03-01"][..], "2026-03-01", 1),
        (&["usage", "--timezone", "Mars/Olympus_Mons"][..], "Mars/Olympus_Mons", 1),
        (&["usage", "--agent", "vim"][..], "vim", 1),
    ] {
        let (_, err) = env.cmd(args).code(code);
        assert!(err.contains(needle), "{args:?}: {err}");
    }
}

#[test]
fn export_writes_quoted_csv_with_a_header() {
    let env = Env::new("usage-export");
    let line = CLAUDE_FIXTURE
        .lines()
        .nth(2)
        .unwrap()
        .replace("claude-sonnet-4-5-20250929", "odd,\\\"model");
    write(
        &claude_file(&env, "e.jsonl"),
        &format!("{line}\n{}\n", CLAUDE_FIXTURE.lines().nth(3).unwrap()),
    );
    let csv = env.cmd(&["usage", "export", "--format", "csv", "--timezone", "UTC"]).ok();
    let mut rows = csv.lines();
    assert!(rows.next().unwrap().starts_with("date,profile,model,input_tokens,"), "{csv}");
    let body: Vec<&str> = rows.collect();
    assert_eq!(body.len(), 2, "{csv}");
    assert!(body.iter().any(|r| r.starts_with("2026-03-02,(default),\"odd,\"\"model\",")), "{csv}");
    let json = env.cmd(&["usage", "export", "--format", "json", "--timezone", "UTC"]).ok();
    let v: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["rows"].as_array().unwrap().len(), 2, "{v}");
}

/// A report right after a write counts it, whatever the watcher is doing at
/// that moment (waiting, debouncing, scanning): reports skip their own scan
/// only when the watcher vouches nothing changed, and this checks the
/// vouching. New files, appends, new directories and a new profile's first
/// log, written at random points of the watcher's cycle.
#[test]
fn a_report_right_after_a_write_always_counts_it() {
    let env = Env::new("usage-fresh");
    env.create_profile("claude", "fresh");
    let template = CLAUDE_FIXTURE.lines().nth(3).unwrap();
    usage(&env, &[]); // the daemon is up and its watcher has scanned
    let mut seed = 0x9e37_79b9_u32;
    let mut rand = move || {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        seed
    };
    for n in 1..=40u64 {
        let line = template.replace("req_011BBB", &format!("req_fresh_{n}"));
        let path = match n % 4 {
            0 => claude_file(&env, "appended.jsonl"),
            1 => claude_file(&env, &format!("new-{n}.jsonl")),
            2 => env.home.join(format!(".claude/projects/-dir-{n}/s.jsonl")),
            _ => env.home.join(format!(".claude-profiles/fresh/.claude/projects/-p{n}/s.jsonl")),
        };
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        let mut f = fs::OpenOptions::new().create(true).append(true).open(&path).unwrap();
        writeln!(f, "{line}").unwrap();
        drop(f);
        let r = usage(&env, &[]);
        assert_eq!(t(&r, "messages"), n, "write {n} to {} not counted: {r}", path.display());
        // Land the next write in another phase: idle, debouncing, scanning.
        std::thread::sleep(Duration::from_millis(u64::from(rand() % 250)));
    }
}

/// Runs `ringlet --json usage --timezone UTC` and waits at most `limit`
/// for its answer (killing it and failing the test past that), so a scan
/// that never ends fails the test instead of hanging it. Returns the
/// report and how long it took.
fn usage_within(env: &Env, limit: Duration) -> (Value, Duration) {
    let started = std::time::Instant::now();
    let mut child = env.cmd(&["--json", "usage", "--timezone", "UTC"]).spawn();
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("`ringlet usage` did not answer within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let took = started.elapsed();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}\n{}", String::from_utf8_lossy(&out.stderr));
    (serde_json::from_str(&text).unwrap_or_else(|e| panic!("bad JSON ({e}): {text}")), took)
}

/// Creates an SQLite database at `path` from `sql` (python3's sqlite3, as
/// the tests above do: no SQLite crate in the tests).
fn sqlite(path: &Path, sql: &str) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    let status = std::process::Command::new("python3")
        .arg("-c")
        .arg("import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.executescript(sys.argv[2]); c.commit()")
        .arg(path)
        .arg(sql)
        .status()
        .expect("python3");
    assert!(status.success());
}

/// Total bytes of the regular files under `dir`.
fn tree_size(dir: &Path) -> u64 {
    let mut total = 0;
    for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
        let meta = fs::symlink_metadata(entry.path()).unwrap();
        total += if meta.is_dir() { tree_size(&entry.path()) } else { meta.len() };
    }
    total
}

/// Bytes the daemon has written, to files and sockets (`wchar`).
fn daemon_written(env: &Env) -> u64 {
    let pid = env.daemon_pid().expect("daemon running");
    let io = fs::read_to_string(format!("/proc/{pid}/io")).unwrap();
    let line = io.lines().find(|l| l.starts_with("wchar:")).expect("wchar");
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// The daemon's peak resident memory (VmHWM), in kB.
fn daemon_peak_kb(env: &Env) -> u64 {
    let pid = env.daemon_pid().expect("daemon running");
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).expect("VmHWM");
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// An `opencode.db` a sandboxed OpenCode agent can write into its own
/// profile: `message` is a view over an endless recursive CTE. Read as it
/// was, the scan never ended (the report never answered, SQLite's sorter
/// filled the temp dir); now it is refused within its budget, reported,
/// remembered, and the other profile's usage is counted.
#[test]
fn a_hostile_opencode_database_is_refused_and_reported() {
    let env = Env::new("usage-hostile-db");
    let tmp = env.root.join("tmp");
    fs::create_dir_all(&tmp).unwrap();
    // SQLite puts its temp files in SQLITE_TMPDIR, else TMPDIR, else
    // /var/tmp: both point here, so whatever it writes is seen.
    env.cmd(&["daemon"]).env("TMPDIR", &tmp).env("SQLITE_TMPDIR", &tmp).ok();
    env.create_profile("opencode", "oc");
    env.create_profile("claude", "cl");
    let db = env.home.join(".opencode-profiles/oc/.local/share/opencode/opencode.db");
    sqlite(
        &db,
        "CREATE VIEW message AS WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) \
         SELECT 'msg_' || n AS id, 'ses_1' AS session_id, n AS time_created, n AS time_updated, \
         '{\"role\":\"assistant\",\"tokens\":{\"input\":1},\"time\":{\"created\":1,\"completed\":2}}' \
         AS data FROM r;",
    );
    write(&env.home.join(".claude-profiles/cl/.claude/projects/-w/s.jsonl"), CLAUDE_FIXTURE);

    let (r, took) = usage_within(&env, Duration::from_secs(30));
    eprintln!("hostile database: first report in {took:?}");
    let rows = usage(&env, &["profiles"]);
    let cl = rows["rows"].as_array().unwrap().iter().find(|r| r["profile"] == "cl");
    assert_eq!(cl.map(|r| r["messages"].clone()), Some(3.into()), "{rows}");
    let details = r["skipped"]["details"].to_string();
    assert!(details.contains("opencode.db"), "the database is reported: {r}");
    assert!(r["skipped"]["files"].as_u64().unwrap() >= 1, "{r}");
    assert!(tree_size(&tmp) < 1 << 20, "SQLite wrote {} bytes of temp files", tree_size(&tmp));
    // SQLite unlinks its temp files as it creates them, so the directory
    // cannot show them: what the daemon wrote at all can (the sorter wrote
    // about 50 MB/s).
    let written = daemon_written(&env);
    eprintln!("hostile database: the daemon wrote {written} bytes");
    assert!(written < 8 << 20, "the daemon wrote {written} bytes");

    // Still refused, and still said, after a restart; the next report
    // does not pay for the database again.
    env.cmd(&["daemon", "stop"]).ok();
    env.cmd(&["daemon"]).env("TMPDIR", &tmp).env("SQLITE_TMPDIR", &tmp).ok();
    let (again, took) = usage_within(&env, Duration::from_secs(30));
    eprintln!("hostile database: report after a restart in {took:?}");
    assert!(again["skipped"]["details"].to_string().contains("opencode.db"), "{again}");
    assert_eq!(again["totals"], r["totals"]);
    assert!(tree_size(&tmp) < 1 << 20, "SQLite wrote {} bytes of temp files", tree_size(&tmp));

    // Budgets do not add up: past 8 databases in one data dir, the rest
    // are reported and not read.
    for n in 0..12 {
        fs::copy(&db, db.with_file_name(format!("opencode-{n}.db"))).unwrap();
    }
    let (many, took) = usage_within(&env, Duration::from_secs(30));
    eprintln!("13 hostile databases: report in {took:?}");
    assert_eq!(many["skipped"]["files"], 13, "{many}");
    let details = many["skipped"]["details"].to_string();
    assert!(details.contains("more than 8 OpenCode databases; 5 not read"), "{many}");
    assert_eq!(many["totals"], r["totals"]);
}

/// A FIFO, a link to /dev/zero and a sparse 100 GB file in place of a
/// Claude transcript, a Codex rollout and an OpenCode database: the scan
/// neither blocks nor reads 100 GB, memory stays bounded, each is
/// reported, and the good transcript beside them counts.
#[test]
fn fifos_device_links_and_sparse_giants_neither_block_nor_balloon() {
    let env = Env::new("usage-giants");
    let claude = env.home.join(".claude/projects/-w");
    let codex = env.home.join(".codex/sessions/2026/07/10");
    let opencode = env.home.join(".local/share/opencode");
    for dir in [&claude, &codex, &opencode] {
        fs::create_dir_all(dir).unwrap();
    }
    write(&claude.join("good.jsonl"), CLAUDE_FIXTURE);
    let mkfifo = |path: PathBuf| {
        assert!(std::process::Command::new("mkfifo").arg(path).status().unwrap().success());
    };
    let sparse = |path: PathBuf| {
        fs::File::create(path).unwrap().set_len(100 << 30).unwrap();
    };
    // The hole is one skipped line; a line after it still counts.
    let after_hole = claude.join("sparse-then-line.jsonl");
    sparse(after_hole.clone());
    let line = CLAUDE_FIXTURE.lines().nth(2).unwrap().replace("req_011AAA", "req_after_hole");
    let mut f = fs::OpenOptions::new().append(true).open(&after_hole).unwrap();
    write!(f, "\n{line}\n").unwrap();
    drop(f);
    mkfifo(claude.join("fifo.jsonl"));
    std::os::unix::fs::symlink("/dev/zero", claude.join("zero.jsonl")).unwrap();
    sparse(claude.join("sparse.jsonl"));
    mkfifo(codex.join("rollout-fifo.jsonl"));
    std::os::unix::fs::symlink("/dev/zero", codex.join("rollout-zero.jsonl")).unwrap();
    sparse(codex.join("rollout-sparse.jsonl"));
    mkfifo(opencode.join("opencode.db"));
    let legacy = opencode.join("storage/message/ses_1");
    fs::create_dir_all(&legacy).unwrap();
    mkfifo(legacy.join("msg_fifo.json"));
    std::os::unix::fs::symlink("/dev/zero", opencode.join("opencode-zero.db")).unwrap();
    sparse(opencode.join("opencode-sparse.db"));
    env.start_daemon();

    let (r, took) = usage_within(&env, Duration::from_secs(30));
    eprintln!("fifos, /dev/zero links, sparse files: report in {took:?}");
    assert_eq!(t(&r, "messages"), 4, "the good transcript and the line after a hole: {r}");
    // Every bad file is counted as skipped: 4 FIFOs, 3 device links, the
    // sparse database that is no database. (The sparse logs' holes are
    // skipped lines, jumped over.)
    assert_eq!(r["skipped"]["files"], 8, "{r}");
    // Three holes, and the fixture's `not json at all` line.
    assert_eq!(r["skipped"]["lines"], 4, "{r}");
    let details = r["skipped"]["details"].to_string();
    assert!(details.contains("opencode.db"), "the FIFO database is reported: {r}");
    let peak = daemon_peak_kb(&env);
    eprintln!("fifos, /dev/zero links, sparse files: daemon VmHWM {peak} kB");
    assert!(peak < 200 << 10, "the daemon peaked at {peak} kB");
    // A second report is as quick, and still answers.
    let (again, took) = usage_within(&env, Duration::from_secs(30));
    eprintln!("fifos, /dev/zero links, sparse files: second report in {took:?}");
    assert_eq!(again["totals"], r["totals"]);
    assert_eq!(again["skipped"], r["skipped"]);
}

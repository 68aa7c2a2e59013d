//! A deterministic generator of realistic Claude Code data: what Claude Code
//! 2.1.197 writes under its config dir, `projects/<encoded-cwd>/<sessionId>.jsonl`
//! plus `projects/<encoded-cwd>/<sessionId>/subagents/agent-<id>.jsonl`, with
//! the expected token sums, for the ccusage cross-check (tests/usage.rs) and
//! the usage figures of the bench (tests/bench.rs, which includes this file
//! by path, so it uses nothing but std).
//!
//! The lines look like the real ones (agent-formats.md 6.1, agents-verified.md
//! section 6): user prompts, tool results carrying multi-KB file contents
//! (quotes, backslashes, tabs, newlines and non-ASCII text to escape),
//! assistant responses with thinking, text and tool_use blocks where one
//! response is written as 1 to 3 lines sharing `message.id`, `requestId` and
//! the same full usage, and the other line types (`queue-operation`,
//! `attachment`, `file-history-snapshot`, `system`, `summary`, `last-prompt`).
//! Sub-agent lines are `isSidechain:true` with an `agentId` and ids of their
//! own, as the real ones are; they are never replays of a main-chain response.
//!
//! It stays clear of the cases where ringlet deliberately differs from
//! ccusage, which have tests of their own: every prompt (input, cache writes
//! and cache reads) is under 200k tokens, cache writes are all 5-minute ones,
//! speed is "standard", every assistant line has a `requestId`, and the lines
//! of one response never straddle a UTC midnight.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Bumped whenever the output for a given seed changes, so a data set kept
/// on disk (the bench's) is regenerated.
pub const FORMAT: u32 = 1;

/// The Claude Code version the lines claim.
pub const VERSION: &str = "2.1.197";

/// The models used, each with its weight; all priced offline by ccusage 17.2.1.
pub const MODELS: [(&str, u64); 4] = [
    ("claude-sonnet-4-5-20250929", 50),
    ("claude-opus-4-5-20251101", 25),
    ("claude-haiku-4-5-20251001", 12),
    ("claude-sonnet-4-20250514", 13),
];

/// 2026-03-01T00:00:00Z: the first day sessions may start on.
pub const START_MS: i64 = 1_772_323_200_000;
/// Sessions start within this many days of [`START_MS`].
pub const SPAN_DAYS: i64 = 14;

/// No request's prompt reaches this (ccusage prices each token kind above
/// 200k at the long-context rate, ringlet the whole request: not tested here).
const PROMPT_LIMIT: u64 = 200_000;
const MINUTE: i64 = 60_000;
const DAY_MS: i64 = 86_400_000;

/// Token sums of a set of responses (each counted once, not once per line).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sums {
    /// Distinct API responses (`message.id` + `requestId`).
    pub responses: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    /// All 5-minute writes (`ephemeral_5m_input_tokens` equals it).
    pub cache_creation_tokens: u64,
    pub cache_read_tokens: u64,
}

impl Sums {
    pub fn total_tokens(&self) -> u64 {
        self.input_tokens + self.output_tokens + self.cache_creation_tokens + self.cache_read_tokens
    }

    fn add(&mut self, other: &Sums) {
        self.responses += other.responses;
        self.input_tokens += other.input_tokens;
        self.output_tokens += other.output_tokens;
        self.cache_creation_tokens += other.cache_creation_tokens;
        self.cache_read_tokens += other.cache_read_tokens;
    }

    fn fields(&self) -> [u64; 5] {
        [
            self.responses,
            self.input_tokens,
            self.output_tokens,
            self.cache_creation_tokens,
            self.cache_read_tokens,
        ]
    }

    fn from_fields(f: &[u64]) -> Option<Sums> {
        let [responses, input_tokens, output_tokens, cache_creation_tokens, cache_read_tokens] = *f
        else {
            return None;
        };
        Some(Sums {
            responses,
            input_tokens,
            output_tokens,
            cache_creation_tokens,
            cache_read_tokens,
        })
    }
}

/// What [`generate`] wrote, and the sums a correct usage tracker must find.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GenStats {
    /// `.jsonl` files written (main sessions and sub-agents).
    pub files: usize,
    /// Main session files.
    pub sessions: usize,
    pub bytes: u64,
    pub lines: u64,
    /// Distinct API responses; the same as `tokens.responses`.
    pub responses: u64,
    /// Assistant lines (each response is 1 to 3 of them).
    pub assistant_lines: u64,
    /// Expected totals.
    pub tokens: Sums,
    /// Expected sums per UTC day (`YYYY-MM-DD`).
    pub days: BTreeMap<String, Sums>,
    /// Expected sums per model.
    pub models: BTreeMap<String, Sums>,
}

impl GenStats {
    fn merge(&mut self, other: &GenStats) {
        self.files += other.files;
        self.sessions += other.sessions;
        self.bytes += other.bytes;
        self.lines += other.lines;
        self.responses += other.responses;
        self.assistant_lines += other.assistant_lines;
        self.tokens.add(&other.tokens);
        for (day, sums) in &other.days {
            self.days.entry(day.clone()).or_default().add(sums);
        }
        for (model, sums) in &other.models {
            self.models.entry(model.clone()).or_default().add(sums);
        }
    }

    /// A plain-text form, for a data set kept on disk between runs.
    pub fn to_text(&self) -> String {
        let mut text = format!(
            "files {}\nsessions {}\nbytes {}\nlines {}\nresponses {}\nassistant_lines {}\n",
            self.files, self.sessions, self.bytes, self.lines, self.responses, self.assistant_lines
        );
        let row = |kind: &str, key: &str, s: &Sums| {
            let f = s.fields().map(|n| n.to_string()).join(" ");
            format!("{kind} {key} {f}\n")
        };
        text.push_str(&row("tokens", "all", &self.tokens));
        for (day, s) in &self.days {
            text.push_str(&row("day", day, s));
        }
        for (model, s) in &self.models {
            text.push_str(&row("model", model, s));
        }
        text
    }

    /// Parses [`GenStats::to_text`]; `None` if it is not that.
    pub fn from_text(text: &str) -> Option<GenStats> {
        let mut stats = GenStats::default();
        for line in text.lines() {
            let words: Vec<&str> = line.split(' ').collect();
            let num = |i: usize| words.get(i)?.parse::<u64>().ok();
            let sums = || -> Option<Sums> {
                let f: Option<Vec<u64>> = words.iter().skip(2).map(|w| w.parse().ok()).collect();
                Sums::from_fields(&f?)
            };
            match words[0] {
                "files" => stats.files = num(1)? as usize,
                "sessions" => stats.sessions = num(1)? as usize,
                "bytes" => stats.bytes = num(1)?,
                "lines" => stats.lines = num(1)?,
                "responses" => stats.responses = num(1)?,
                "assistant_lines" => stats.assistant_lines = num(1)?,
                "tokens" => stats.tokens = sums()?,
                "day" => _ = stats.days.insert(words.get(1)?.to_string(), sums()?),
                "model" => _ = stats.models.insert(words.get(1)?.to_string(), sums()?),
                _ => return None,
            }
        }
        (stats.files > 0).then_some(stats)
    }
}

/// Writes `files` transcript files of about `total_bytes` in all under
/// `root/projects` (`root` plays a Claude config dir) and returns what it
/// wrote. The same arguments always give the same bytes. Panics on I/O errors.
pub fn generate(root: &Path, files: usize, total_bytes: u64, seed: u64) -> GenStats {
    let pools = Pools::new(seed);
    let plans = plan(root, files, total_bytes, seed);
    let mut dirs: Vec<&Path> = plans.iter().filter_map(|p| p.path.parent()).collect();
    dirs.sort();
    dirs.dedup();
    for dir in dirs {
        fs::create_dir_all(dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
    }
    let next = AtomicUsize::new(0);
    let total = Mutex::new(GenStats::default());
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, 8);
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                let mut mine = GenStats::default();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(plan) = plans.get(i) else { break };
                    mine.merge(&write_file(plan, &pools));
                }
                total.lock().unwrap().merge(&mine);
            });
        }
    });
    total.into_inner().unwrap()
}

/// Claude Code's project directory name for a working directory: every
/// character that is not ASCII alphanumeric becomes `-`.
pub fn encode_cwd(cwd: &str) -> String {
    cwd.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect()
}

/// `YYYY-MM-DD` of a Unix time in milliseconds, in UTC.
pub fn utc_day(ms: i64) -> String {
    let (y, m, d) = civil(ms.div_euclid(DAY_MS));
    format!("{y:04}-{m:02}-{d:02}")
}

// ---------------------------------------------------------------------------
// The plan: which files, for which session, how big

struct Plan {
    path: PathBuf,
    session: String,
    cwd: String,
    branch: &'static str,
    /// `Some(agent id)` for a sub-agent transcript.
    agent: Option<String>,
    start_ms: i64,
    budget: u64,
    model: &'static str,
    seed: u64,
}

const PROJECTS: [&str; 16] = [
    "ringlet",
    "web_app",
    "api-server",
    "ml.pipeline",
    "dotfiles",
    "infra_terraform",
    "mobile app",
    "docs-site",
    "data_tools.v2",
    "parser",
    "billing-svc",
    "cli_helpers",
    "game.engine",
    "blog",
    "kernel-mod",
    "notebooks",
];
const BRANCHES: [&str; 6] = ["main", "main", "feature/usage", "fix/parser-crash", "dev", "HEAD"];

fn plan(root: &Path, files: usize, total_bytes: u64, seed: u64) -> Vec<Plan> {
    let mut rng = Rng::new(seed ^ 0x5EED_0FC1_A0DE);
    let projects: Vec<String> = (0..(files / 25).clamp(1, 64))
        .map(|i| {
            let name = PROJECTS[i % PROJECTS.len()];
            match i / PROJECTS.len() {
                0 => format!("/home/dev/src/{name}"),
                n => format!("/home/dev/work/{name}-{n}"),
            }
        })
        .collect();
    let subagents = if files >= 3 { files / 7 } else { 0 };
    let mains = files - subagents;
    let weights: Vec<f64> =
        (0..files).map(|i| (0.25 + 1.5 * rng.f64()) * if i < mains { 1.0 } else { 0.4 }).collect();
    let sum: f64 = weights.iter().sum();
    let mut plans: Vec<Plan> = Vec::with_capacity(files);
    for (i, weight) in weights.iter().enumerate() {
        let budget = ((total_bytes as f64) * weight / sum) as u64;
        if i < mains {
            let cwd = rng.pick(&projects).clone();
            let session = uuid(&mut rng);
            let path =
                root.join("projects").join(encode_cwd(&cwd)).join(format!("{session}.jsonl"));
            plans.push(Plan {
                path,
                session,
                cwd,
                branch: rng.pick::<&str>(&BRANCHES),
                agent: None,
                start_ms: START_MS
                    + rng.below((SPAN_DAYS * DAY_MS - 4 * 60 * MINUTE) as u64) as i64,
                budget,
                model: pick_model(&mut rng),
                seed: rng.next_u64(),
            });
        } else {
            let parent = &plans[rng.below(mains as u64) as usize];
            let agent = hex(&mut rng, 8);
            let path = parent
                .path
                .with_extension("")
                .join("subagents")
                .join(format!("agent-{agent}.jsonl"));
            let model =
                if rng.chance(0.5) { "claude-haiku-4-5-20251001" } else { pick_model(&mut rng) };
            plans.push(Plan {
                path,
                session: parent.session.clone(),
                cwd: parent.cwd.clone(),
                branch: parent.branch,
                agent: Some(agent),
                start_ms: parent.start_ms + rng.range(1, 90) as i64 * MINUTE,
                budget,
                model,
                seed: rng.next_u64(),
            });
        }
    }
    plans
}

fn pick_model(rng: &mut Rng) -> &'static str {
    let total: u64 = MODELS.iter().map(|m| m.1).sum();
    let mut x = rng.below(total);
    for (model, weight) in MODELS {
        if x < weight {
            return model;
        }
        x -= weight;
    }
    MODELS[0].0
}

// ---------------------------------------------------------------------------
// One file

/// A tool call of a response, and what its result line must carry.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Tool {
    Read,
    Bash,
    Grep,
    Edit,
}

struct Call {
    tool: Tool,
    id: String,
    /// The file the tool reads, greps or edits.
    file: String,
    /// The uuid of the assistant line holding the tool_use.
    assistant_uuid: String,
}

struct FileWriter<'a> {
    pools: &'a Pools,
    rng: Rng,
    path: &'a Path,
    file: File,
    out: Vec<u8>,
    flushed: u64,
    budget: u64,
    /// `"isSidechain":false,` (plus the `agentId` of a sub-agent).
    head: Vec<u8>,
    /// `"userType":…,"gitBranch":"…"}` and the newline.
    tail: Vec<u8>,
    cwd: &'a str,
    model: &'static str,
    parent: Option<String>,
    now: i64,
    /// Tokens in the next request's prompt.
    context: u64,
    /// The prompt prefix in the 5-minute cache, and when it was last used.
    cached: u64,
    cache_used: i64,
    /// Compact when the prompt grows past this.
    compact_at: u64,
    stats: GenStats,
}

fn write_file(plan: &Plan, pools: &Pools) -> GenStats {
    let file = File::create(&plan.path)
        .unwrap_or_else(|e| panic!("creating {}: {e}", plan.path.display()));
    let mut head = b"\"isSidechain\":".to_vec();
    match &plan.agent {
        None => head.extend_from_slice(b"false,"),
        Some(agent) => {
            head.extend_from_slice(b"true,\"agentId\":\"");
            head.extend_from_slice(agent.as_bytes());
            head.extend_from_slice(b"\",");
        }
    }
    let mut tail = b"\"userType\":\"external\",\"entrypoint\":\"cli\",\"cwd\":\"".to_vec();
    escape(&mut tail, &plan.cwd);
    tail.extend_from_slice(b"\",\"sessionId\":\"");
    tail.extend_from_slice(plan.session.as_bytes());
    tail.extend_from_slice(b"\",\"version\":\"");
    tail.extend_from_slice(VERSION.as_bytes());
    tail.extend_from_slice(b"\",\"gitBranch\":\"");
    escape(&mut tail, plan.branch);
    tail.extend_from_slice(b"\"}\n");
    let mut rng = Rng::new(plan.seed);
    let context =
        if plan.agent.is_some() { rng.range(7_000, 12_000) } else { rng.range(14_000, 24_000) };
    let compact_at = rng.range(130_000, 170_000);
    let mut w = FileWriter {
        pools,
        rng,
        path: &plan.path,
        file,
        out: Vec::with_capacity(1 << 21),
        flushed: 0,
        budget: plan.budget,
        head,
        tail,
        cwd: &plan.cwd,
        model: plan.model,
        parent: None,
        now: plan.start_ms,
        context,
        cached: 0,
        cache_used: i64::MIN / 2,
        compact_at,
        stats: GenStats { files: 1, ..GenStats::default() },
    };
    if plan.agent.is_none() {
        w.stats.sessions = 1;
        w.session(&plan.session);
    } else {
        w.subagent();
    }
    w.flush();
    w.stats
}

impl FileWriter<'_> {
    fn written(&self) -> u64 {
        self.flushed + self.out.len() as u64
    }

    fn flush(&mut self) {
        self.file
            .write_all(&self.out)
            .unwrap_or_else(|e| panic!("writing {}: {e}", self.path.display()));
        self.flushed += self.out.len() as u64;
        self.stats.bytes = self.flushed;
        self.out.clear();
    }

    fn end_line(&mut self) {
        self.stats.lines += 1;
        if self.out.len() >= 1 << 20 {
            self.flush();
        }
    }

    fn tick(&mut self, lo_ms: u64, hi_ms: u64) {
        self.now += self.rng.range(lo_ms, hi_ms) as i64;
    }

    /// `{"parentUuid":…,"isSidechain":…,"type":"<kind>",` and a new uuid,
    /// which becomes the next line's parent.
    fn begin(&mut self, kind: &str) -> String {
        let uuid = uuid(&mut self.rng);
        self.out.extend_from_slice(b"{\"parentUuid\":");
        match self.parent.replace(uuid.clone()) {
            Some(p) => {
                self.out.push(b'"');
                self.out.extend_from_slice(p.as_bytes());
                self.out.push(b'"');
            }
            None => self.out.extend_from_slice(b"null"),
        }
        self.out.push(b',');
        let head = std::mem::take(&mut self.head);
        self.out.extend_from_slice(&head);
        self.head = head;
        self.out.extend_from_slice(b"\"type\":\"");
        self.out.extend_from_slice(kind.as_bytes());
        self.out.extend_from_slice(b"\",");
        uuid
    }

    /// `"uuid":…,"timestamp":…,` then the common fields and the newline.
    fn finish(&mut self, uuid: &str, at: i64) {
        self.out.extend_from_slice(b",\"uuid\":\"");
        self.out.extend_from_slice(uuid.as_bytes());
        self.out.extend_from_slice(b"\",\"timestamp\":\"");
        timestamp(&mut self.out, at);
        self.out.extend_from_slice(b"\",");
        let tail = std::mem::take(&mut self.tail);
        self.out.extend_from_slice(&tail);
        self.tail = tail;
        self.end_line();
    }

    /// A main session: prompts, each followed by responses and tool results
    /// until one ends the turn, until the file has its size.
    fn session(&mut self, session: &str) {
        if self.rng.chance(0.3) {
            for _ in 0..self.rng.range(1, 3) {
                self.out.extend_from_slice(b"{\"type\":\"summary\",\"summary\":\"");
                let n = self.rng.range(1, 2);
                self.sentences(n);
                self.out.extend_from_slice(b"\",\"leafUuid\":\"");
                let leaf = uuid(&mut self.rng);
                self.out.extend_from_slice(leaf.as_bytes());
                self.out.extend_from_slice(b"\"}\n");
                self.end_line();
            }
        }
        let mut last_prompt = Vec::new();
        while self.written() < self.budget {
            if self.rng.chance(0.25) {
                for operation in ["enqueue", "dequeue"] {
                    self.out.extend_from_slice(b"{\"type\":\"queue-operation\",\"operation\":\"");
                    self.out.extend_from_slice(operation.as_bytes());
                    self.out.extend_from_slice(b"\",\"timestamp\":\"");
                    timestamp(&mut self.out, self.now);
                    self.out.extend_from_slice(b"\",\"sessionId\":\"");
                    self.out.extend_from_slice(session.as_bytes());
                    self.out.extend_from_slice(b"\"}\n");
                    self.end_line();
                    self.tick(1, 40);
                }
            }
            last_prompt = self.prompt();
            if self.rng.chance(0.5) {
                self.snapshot();
            }
            for _ in 0..self.rng.range(0, 2) {
                self.attachment();
            }
            self.turn();
            // The user reads, thinks, sometimes leaves for a while.
            if self.rng.chance(0.08) {
                self.tick(10 * MINUTE as u64, 180 * MINUTE as u64);
            } else {
                self.tick(15_000, 6 * MINUTE as u64);
            }
        }
        self.out.extend_from_slice(b"{\"type\":\"last-prompt\",\"lastPrompt\":\"");
        self.out.extend_from_slice(&last_prompt);
        self.out.extend_from_slice(b"\",\"sessionId\":\"");
        self.out.extend_from_slice(session.as_bytes());
        self.out.extend_from_slice(b"\"}\n");
        self.end_line();
    }

    /// A sub-agent: its task prompt, then one long turn.
    fn subagent(&mut self) {
        self.prompt();
        while self.written() < self.budget {
            self.turn();
            if self.written() < self.budget {
                // The parent sends a follow-up.
                self.tick(2_000, 30_000);
                self.prompt();
            }
        }
    }

    /// Responses until one does not call a tool (or the file is full after a
    /// tool result: an interrupted turn).
    fn turn(&mut self) {
        for step in 0.. {
            let ends = step > 0 && self.rng.chance(0.2);
            match self.response(!ends) {
                Some(call) => {
                    self.tool_result(&call);
                    if self.written() >= self.budget {
                        return;
                    }
                }
                None => return,
            }
        }
    }

    /// A user prompt line; returns the escaped prompt text.
    fn prompt(&mut self) -> Vec<u8> {
        self.tick(500, 3_000);
        let uuid = self.begin("user");
        self.out.extend_from_slice(b"\"message\":{\"role\":\"user\",\"content\":\"");
        let start = self.out.len();
        let n = self.rng.range(1, 6);
        self.sentences(n);
        let mut tokens = (self.out.len() - start) as u64 / 4;
        if self.rng.chance(0.1) {
            // A pasted snippet.
            self.out.extend_from_slice(b"\\n\\n```\\n");
            let lines = self.rng.range(10, 120) as usize;
            tokens += self.code(lines, Numbering::None, None) / 4;
            self.out.extend_from_slice(b"```");
        }
        let prompt = self.out[start..].to_vec();
        self.out.extend_from_slice(b"\"}");
        let now = self.now;
        self.finish(&uuid, now);
        self.context += tokens + 10;
        prompt
    }

    fn snapshot(&mut self) {
        let id = self.parent.clone().unwrap_or_default();
        self.out.extend_from_slice(b"{\"type\":\"file-history-snapshot\",\"messageId\":\"");
        self.out.extend_from_slice(id.as_bytes());
        self.out.extend_from_slice(b"\",\"snapshot\":{\"messageId\":\"");
        self.out.extend_from_slice(id.as_bytes());
        self.out.extend_from_slice(b"\",\"trackedFileBackups\":{");
        for i in 0..self.rng.range(0, 3) {
            if i > 0 {
                self.out.push(b',');
            }
            let name = *self.rng.pick(IDENTS);
            self.out.extend_from_slice(b"\"src/");
            self.out.extend_from_slice(name.as_bytes());
            self.out.extend_from_slice(b".rs\":{\"backupFileName\":\"");
            let backup = hex(&mut self.rng, 16);
            self.out.extend_from_slice(backup.as_bytes());
            self.out.extend_from_slice(b"@v");
            number(&mut self.out, self.rng.range(1, 9));
            self.out.extend_from_slice(b"\",\"version\":");
            number(&mut self.out, self.rng.range(1, 9));
            self.out.extend_from_slice(b",\"backupTime\":\"");
            timestamp(&mut self.out, self.now);
            self.out.extend_from_slice(b"\"}");
        }
        self.out.extend_from_slice(b"},\"timestamp\":\"");
        timestamp(&mut self.out, self.now);
        self.out.extend_from_slice(b"\"},\"isSnapshotUpdate\":false}\n");
        self.end_line();
    }

    fn attachment(&mut self) {
        self.tick(1, 30);
        let uuid = self.begin("attachment");
        if self.rng.chance(0.5) {
            self.out.extend_from_slice(
                b"\"attachment\":{\"type\":\"hook_additional_context\",\"hookName\":\"SessionStart\",\"content\":[\"",
            );
            let n = self.rng.range(1, 3);
            self.sentences(n);
            self.out.extend_from_slice(b"\"]}");
        } else {
            self.out.extend_from_slice(b"\"attachment\":{\"type\":\"todo_reminder\",\"content\":[");
            for i in 0..self.rng.range(1, 4) {
                if i > 0 {
                    self.out.push(b',');
                }
                self.out.extend_from_slice(b"{\"content\":\"");
                self.sentences(1);
                let status = *self.rng.pick(&["pending", "in_progress", "completed"]);
                self.out.extend_from_slice(b"\",\"status\":\"");
                self.out.extend_from_slice(status.as_bytes());
                self.out.extend_from_slice(b"\"}");
            }
            self.out.extend_from_slice(b"],\"itemCount\":3}");
        }
        let now = self.now;
        self.finish(&uuid, now);
    }

    /// The context is nearly full: a compact boundary, the summary as a user
    /// line, and a much smaller prompt (whose cache is cold) from then on.
    fn compact(&mut self) {
        self.tick(20_000, 90_000);
        let uuid = self.begin("system");
        self.out.extend_from_slice(b"\"subtype\":\"compact_boundary\",\"content\":\"Conversation compacted\",\"isMeta\":false,\"level\":\"info\",\"compactMetadata\":{\"trigger\":\"auto\",\"preTokens\":");
        number(&mut self.out, self.context);
        self.out.push(b'}');
        let now = self.now;
        self.finish(&uuid, now);
        let uuid = self.begin("user");
        self.out.extend_from_slice(b"\"message\":{\"role\":\"user\",\"content\":\"This session is being continued from a previous conversation that ran out of context. The conversation is summarized below:\\n");
        let n = self.rng.range(8, 30);
        self.sentences(n);
        self.out
            .extend_from_slice(b"\"},\"isCompactSummary\":true,\"isVisibleInTranscriptOnly\":true");
        let now = self.now + 5;
        self.finish(&uuid, now);
        self.context = self.rng.range(18_000, 35_000);
        self.cached = 0;
        self.compact_at = self.rng.range(130_000, 170_000);
    }

    /// One API response, as 1 to 3 assistant lines; the tool it calls, if any.
    fn response(&mut self, may_call: bool) -> Option<Call> {
        if self.context > self.compact_at {
            self.compact();
        }
        self.tick(1_500, 25_000);
        // Which content blocks; each becomes one line.
        let thinking = self.rng.chance(0.3);
        let call = may_call && self.rng.chance(0.75);
        let text = (!thinking && !call) || self.rng.chance(0.45);
        let mut blocks: Vec<u8> = Vec::with_capacity(3);
        if thinking {
            blocks.push(b'k');
        }
        if text {
            blocks.push(b't');
        }
        if call {
            blocks.push(b'u');
        }
        // The usage, shared by every line of the response.
        if self.now - self.cache_used > 5 * MINUTE {
            // Expired; a fresh session may still hit the shared system prompt.
            self.cached = if self.rng.chance(0.5) { self.context.min(11_000) } else { 0 };
        }
        let input =
            if self.rng.chance(0.05) { self.rng.range(50, 3_000) } else { self.rng.range(1, 12) };
        let prompt = self.context + input;
        assert!(prompt < PROMPT_LIMIT, "prompt of {prompt} tokens");
        let cache_read = self.cached.min(prompt - input);
        let cache_creation = prompt - input - cache_read;
        let mut output = 0;
        for block in &blocks {
            output += match block {
                b'k' => self.rng.range(80, 2_500),
                b't' => self.rng.range(15, 900),
                _ => self.rng.range(40, 450),
            };
        }
        let mut usage = Vec::with_capacity(320);
        usage.extend_from_slice(b"\"usage\":{\"input_tokens\":");
        number(&mut usage, input);
        usage.extend_from_slice(b",\"cache_creation_input_tokens\":");
        number(&mut usage, cache_creation);
        usage.extend_from_slice(b",\"cache_read_input_tokens\":");
        number(&mut usage, cache_read);
        usage.extend_from_slice(b",\"output_tokens\":");
        number(&mut usage, output);
        usage.extend_from_slice(b",\"server_tool_use\":{\"web_search_requests\":0,\"web_fetch_requests\":0},\"service_tier\":\"standard\",\"cache_creation\":{\"ephemeral_1h_input_tokens\":0,\"ephemeral_5m_input_tokens\":");
        number(&mut usage, cache_creation);
        usage.extend_from_slice(
            b"},\"inference_geo\":\"\",\"iterations\":[],\"speed\":\"standard\"}",
        );

        // The lines' times: a few hundred ms apart, never across midnight.
        let gaps: Vec<i64> = (1..blocks.len()).map(|_| self.rng.range(5, 800) as i64).collect();
        let span: i64 = gaps.iter().sum();
        if (self.now + span).div_euclid(DAY_MS) != self.now.div_euclid(DAY_MS) {
            self.now = (self.now + span).div_euclid(DAY_MS) * DAY_MS + 1;
        }
        let day = utc_day(self.now);
        let sums = Sums {
            responses: 1,
            input_tokens: input,
            output_tokens: output,
            cache_creation_tokens: cache_creation,
            cache_read_tokens: cache_read,
        };
        self.stats.responses += 1;
        self.stats.tokens.add(&sums);
        self.stats.days.entry(day).or_default().add(&sums);
        self.stats.models.entry(self.model.to_string()).or_default().add(&sums);

        let id = format!("msg_01{}", base62(&mut self.rng, 22));
        let request = format!("req_011C{}", base62(&mut self.rng, 20));
        let mut result = None;
        for (i, block) in blocks.iter().enumerate() {
            if i > 0 {
                self.now += gaps[i - 1];
            }
            let last = i + 1 == blocks.len();
            let uuid = self.begin("assistant");
            self.out.extend_from_slice(b"\"message\":{\"model\":\"");
            self.out.extend_from_slice(self.model.as_bytes());
            self.out.extend_from_slice(b"\",\"id\":\"");
            self.out.extend_from_slice(id.as_bytes());
            self.out
                .extend_from_slice(b"\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[");
            match block {
                b'k' => {
                    self.out.extend_from_slice(b"{\"type\":\"thinking\",\"thinking\":\"");
                    let n = self.rng.range(2, 14);
                    self.sentences(n);
                    self.out.extend_from_slice(b"\",\"signature\":\"");
                    let n = self.rng.range(200, 900) as usize;
                    signature(&mut self.rng, &mut self.out, n);
                    self.out.extend_from_slice(b"\"}");
                }
                b't' => {
                    self.out.extend_from_slice(b"{\"type\":\"text\",\"text\":\"");
                    let n = self.rng.range(1, 12);
                    self.sentences(n);
                    if self.rng.chance(0.2) {
                        self.out.extend_from_slice(b"\\n\\n```rust\\n");
                        let lines = self.rng.range(3, 40) as usize;
                        self.code(lines, Numbering::None, None);
                        self.out.extend_from_slice(b"```");
                    }
                    self.out.extend_from_slice(b"\"}");
                }
                _ => result = Some(self.tool_use(uuid.clone())),
            }
            self.out.extend_from_slice(b"],\"stop_reason\":");
            self.out.extend_from_slice(match (last, call) {
                (false, _) => b"null",
                (true, true) => b"\"tool_use\"",
                (true, false) => b"\"end_turn\"",
            });
            self.out.extend_from_slice(b",\"stop_sequence\":null,");
            self.out.extend_from_slice(&usage);
            self.out.extend_from_slice(b",\"stop_details\":null},\"requestId\":\"");
            self.out.extend_from_slice(request.as_bytes());
            self.out.push(b'"');
            let now = self.now;
            self.finish(&uuid, now);
            self.stats.assistant_lines += 1;
        }
        self.cached = prompt;
        self.cache_used = self.now;
        self.context = prompt + output;
        result
    }

    /// A tool_use content block.
    fn tool_use(&mut self, assistant_uuid: String) -> Call {
        let tool = *self.rng.pick(&[
            Tool::Read,
            Tool::Read,
            Tool::Read,
            Tool::Bash,
            Tool::Bash,
            Tool::Grep,
            Tool::Edit,
        ]);
        let id = format!("toolu_01{}", base62(&mut self.rng, 22));
        let file = format!("{}/src/{}.rs", self.cwd, self.rng.pick(IDENTS));
        self.out.extend_from_slice(b"{\"type\":\"tool_use\",\"id\":\"");
        self.out.extend_from_slice(id.as_bytes());
        self.out.extend_from_slice(b"\",\"name\":\"");
        match tool {
            Tool::Read => {
                self.out.extend_from_slice(b"Read\",\"input\":{\"file_path\":\"");
                escape(&mut self.out, &file);
                self.out.extend_from_slice(b"\"}}");
            }
            Tool::Bash => {
                let command = *self.rng.pick(COMMANDS);
                self.out.extend_from_slice(b"Bash\",\"input\":{\"command\":\"");
                escape(&mut self.out, command);
                self.out.extend_from_slice(b"\",\"description\":\"");
                self.sentences(1);
                self.out.extend_from_slice(b"\"}}");
            }
            Tool::Grep => {
                self.out.extend_from_slice(b"Grep\",\"input\":{\"pattern\":\"fn ");
                let name = *self.rng.pick(IDENTS);
                self.out.extend_from_slice(name.as_bytes());
                self.out.extend_from_slice(b"\\\\(\",\"path\":\"");
                escape(&mut self.out, self.cwd);
                self.out.extend_from_slice(b"\",\"output_mode\":\"content\",\"-n\":true}}");
            }
            Tool::Edit => {
                self.out.extend_from_slice(b"Edit\",\"input\":{\"file_path\":\"");
                escape(&mut self.out, &file);
                self.out.extend_from_slice(b"\",\"old_string\":\"");
                let lines = self.rng.range(1, 8) as usize;
                self.code(lines, Numbering::None, None);
                self.out.extend_from_slice(b"\",\"new_string\":\"");
                let lines = self.rng.range(1, 12) as usize;
                self.code(lines, Numbering::None, None);
                self.out.extend_from_slice(b"\"}}");
            }
        }
        Call { tool, id, file, assistant_uuid }
    }

    /// The user line with a tool's result: the content the model sees, and
    /// `toolUseResult` with the raw data (file contents twice for Read).
    fn tool_result(&mut self, call: &Call) {
        self.tick(30, 4_000);
        let uuid = self.begin("user");
        self.out
            .extend_from_slice(b"\"message\":{\"role\":\"user\",\"content\":[{\"tool_use_id\":\"");
        self.out.extend_from_slice(call.id.as_bytes());
        self.out.extend_from_slice(b"\",\"type\":\"tool_result\",\"content\":\"");
        // Lines of the result: mostly small, sometimes a big file.
        let lines =
            if self.rng.chance(0.15) { self.rng.range(150, 500) } else { self.rng.range(8, 110) }
                as usize;
        let start = self.rng.below(self.pools.code.len() as u64) as usize;
        let bytes = match call.tool {
            Tool::Read => {
                let bytes = self.code_at(start, lines, Numbering::Arrow, None);
                self.out.extend_from_slice(
                    b"\"}]},\"toolUseResult\":{\"type\":\"text\",\"file\":{\"filePath\":\"",
                );
                escape(&mut self.out, &call.file);
                self.out.extend_from_slice(b"\",\"content\":\"");
                self.code_at(start, lines, Numbering::None, None);
                self.out.extend_from_slice(b"\",\"numLines\":");
                number(&mut self.out, lines as u64);
                self.out.extend_from_slice(b",\"startLine\":1,\"totalLines\":");
                number(&mut self.out, lines as u64);
                self.out.extend_from_slice(b"}}");
                bytes
            }
            Tool::Bash => {
                let lines = lines / 2 + 1;
                let start = self.rng.below(self.pools.log.len() as u64) as usize;
                let mark = self.out.len();
                let bytes =
                    self.pools.log.write(&mut self.out, start, lines, Numbering::None, None);
                let stdout = self.out[mark..].to_vec();
                self.out.extend_from_slice(b"\"}]},\"toolUseResult\":{\"stdout\":\"");
                self.out.extend_from_slice(&stdout);
                self.out.extend_from_slice(
                    b"\",\"stderr\":\"\",\"interrupted\":false,\"isImage\":false}",
                );
                bytes
            }
            Tool::Grep => {
                let lines = lines / 3 + 1;
                let prefix = call.file.rsplit('/').next().unwrap_or("lib.rs").to_string();
                let mark = self.out.len();
                let bytes = self.code_at(start, lines, Numbering::None, Some(&prefix));
                let content = self.out[mark..].to_vec();
                self.out.extend_from_slice(
                    b"\"}]},\"toolUseResult\":{\"mode\":\"content\",\"numFiles\":",
                );
                number(&mut self.out, self.rng.range(1, 9));
                self.out.extend_from_slice(b",\"filenames\":[],\"content\":\"");
                self.out.extend_from_slice(&content);
                self.out.extend_from_slice(b"\",\"numLines\":");
                number(&mut self.out, lines as u64);
                self.out.push(b'}');
                bytes
            }
            Tool::Edit => {
                self.out.extend_from_slice(b"The file ");
                escape(&mut self.out, &call.file);
                self.out.extend_from_slice(b" has been updated. Here's the result of running `cat -n` on a snippet of the edited file:\\n");
                let bytes = self.code_at(start, 12, Numbering::Arrow, None);
                self.out.extend_from_slice(b"\"}]},\"toolUseResult\":{\"filePath\":\"");
                escape(&mut self.out, &call.file);
                self.out.extend_from_slice(b"\",\"oldString\":\"");
                self.code_at(start + 3, 2, Numbering::None, None);
                self.out.extend_from_slice(b"\",\"newString\":\"");
                self.code_at(start + 5, 3, Numbering::None, None);
                self.out.extend_from_slice(b"\",\"originalFile\":\"");
                self.code_at(start, lines, Numbering::None, None);
                self.out.extend_from_slice(
                    b"\",\"structuredPatch\":[],\"userModified\":false,\"replaceAll\":false}",
                );
                bytes
            }
        };
        self.out.extend_from_slice(b",\"sourceToolAssistantUUID\":\"");
        self.out.extend_from_slice(call.assistant_uuid.as_bytes());
        self.out.push(b'"');
        let now = self.now;
        self.finish(&uuid, now);
        self.context += bytes / 4 + 12;
    }

    /// `n` sentences of prose, escaped, space-separated.
    fn sentences(&mut self, n: u64) {
        for i in 0..n {
            if i > 0 {
                self.out.push(b' ');
            }
            let s = self.rng.below(self.pools.prose.len() as u64) as usize;
            self.out.extend_from_slice(self.pools.prose.escaped(s));
        }
    }

    fn code(&mut self, lines: usize, numbering: Numbering, prefix: Option<&str>) -> u64 {
        let start = self.rng.below(self.pools.code.len() as u64) as usize;
        self.code_at(start, lines, numbering, prefix)
    }

    fn code_at(
        &mut self,
        start: usize,
        lines: usize,
        numbering: Numbering,
        prefix: Option<&str>,
    ) -> u64 {
        self.pools.code.write(&mut self.out, start, lines, numbering, prefix)
    }
}

// ---------------------------------------------------------------------------
// Text pools: escaped once, copied many times

#[derive(Clone, Copy, PartialEq, Eq)]
enum Numbering {
    None,
    /// Read's `     1→` prefixes.
    Arrow,
}

/// Lines of text, each stored JSON-escaped.
struct Pool {
    text: Vec<u8>,
    /// Escaped line `i` is `text[ends[i - 1]..ends[i]]`.
    ends: Vec<usize>,
    /// Unescaped lengths.
    raw: Vec<u32>,
}

impl Pool {
    fn new(lines: impl Iterator<Item = String>) -> Pool {
        let mut pool = Pool { text: Vec::new(), ends: Vec::new(), raw: Vec::new() };
        for line in lines {
            escape(&mut pool.text, &line);
            pool.ends.push(pool.text.len());
            pool.raw.push(line.len() as u32);
        }
        pool
    }

    fn len(&self) -> usize {
        self.ends.len()
    }

    fn escaped(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.text[start..self.ends[i]]
    }

    /// Writes `count` lines from `start` (wrapping around), each ending in an
    /// escaped newline; returns the unescaped size.
    fn write(
        &self,
        out: &mut Vec<u8>,
        start: usize,
        count: usize,
        numbering: Numbering,
        prefix: Option<&str>,
    ) -> u64 {
        let mut raw = 0u64;
        for n in 0..count {
            let i = (start + n) % self.len();
            if numbering == Numbering::Arrow {
                digits(out, n as u64 + 1, 6, b' ');
                out.extend_from_slice("→".as_bytes());
                raw += 9;
            }
            if let Some(prefix) = prefix {
                escape(out, prefix);
                out.push(b':');
                number(out, n as u64 * 7 + 3);
                out.push(b':');
                raw += prefix.len() as u64 + 6;
            }
            out.extend_from_slice(self.escaped(i));
            out.extend_from_slice(b"\\n");
            raw += u64::from(self.raw[i]) + 1;
        }
        raw
    }
}

struct Pools {
    code: Pool,
    log: Pool,
    prose: Pool,
}

const IDENTS: &[&str] = &[
    "config", "path", "buf", "reader", "entry", "count", "tokens", "session", "profile", "usage",
    "line", "model", "cache", "state", "offset", "records", "parser", "handle", "request",
    "response", "daemon", "socket", "store", "report", "timezone", "pricing", "scan", "watcher",
    "index", "manifest", "provider", "agent", "script", "render", "output", "input", "total",
];
const TYPES: &[&str] = &[
    "Config", "Session", "Usage", "Record", "Profile", "Entry", "Store", "Report", "Scanner",
    "Pricing", "Manifest", "Provider", "Request", "Response", "Tokens", "Error",
];
const COMMANDS: &[&str] = &[
    "cargo test --quiet 2>&1 | tail -n 40",
    "cargo build --release 2>&1 | grep -E \"^(warning|error)\" | head",
    "git status --short && git diff --stat",
    "npm run lint -- --fix",
    "ls -la src/ tests/",
    "rg -n \"TODO|FIXME\" src | wc -l",
    "python3 -m pytest -x -q tests/",
    "grep -rn 'fn main' --include='*.rs' .",
];
const CODE: &[&str] = &[
    "use std::collections::BTreeMap;",
    "use crate::@Ty::{@Ty, @id};",
    "",
    "/// Returns the @id of the @id, or `None` when the \"@id\" is missing.",
    "pub fn @id(&self, @id: &str) -> Result<@Ty, Error> {",
    "    let @id = self.@id.get(\"@id\").copied().unwrap_or(@n);",
    "    // @s",
    "    println!(\"@id: {}\\t{:?}\", @id, @id);",
    "        .map(|x| x * @n)",
    "        .filter(|e| !e.@id.is_empty())",
    "    }",
    "}",
    "#[derive(Debug, Clone, PartialEq, Eq)]",
    "pub struct @Ty {",
    "    pub @id: Vec<@Ty>,",
    "    @id: Option<Box<@Ty>>,",
    "const GREETING: &str = \"naïve café — ünïcödé ✓ 日本語 😀\";",
    "let re = Regex::new(r\"^(\\d{4})-(\\d{2})-(\\d{2})$\").unwrap();",
    "import { @id } from './@id';",
    "export const @id = (@id) => `${@id}/@n`;",
    "    if (@id === '@id') return { \"@id\": @n };",
    "def @id(self, @id: str = \"@id\") -> dict:",
    "        return {\"@id\": @n, 'path': r\"C:\\Users\\@id\"}",
    "\t\t@id := @id[@n:] // tab-indented Go",
    "    assert_eq!(@id.len(), @n, \"unexpected @id: {@id:?}\");",
    "    #[test]",
    "    fn @id_handles_@id() {",
    "        let json = r#\"{\"type\":\"@id\",\"n\":@n}\"#;",
    "match @id {",
    "    Some(@id) => @id.@id(),",
    "    None => return Err(anyhow!(\"no @id in {}\", path.display())),",
    "        # TODO(dev): @s",
    "    SELECT @id, COUNT(*) FROM @id WHERE @id > @n GROUP BY 1;",
    "  \"@id\": { \"enabled\": true, \"limit\": @n },",
    "/* Ωmega → λ-calculus: «@id» */",
];
const LOG: &[&str] = &[
    "   Compiling @id v0.@n.@n",
    "    Finished `test` profile [unoptimized + debuginfo] target(s) in @n.@ns",
    "     Running tests/@id.rs (target/debug/deps/@id-@n)",
    "running @n tests",
    "test @id::tests::@id ... ok",
    "test @id::tests::@id_handles_@id ... ok",
    "test @id::tests::@id ... FAILED",
    "warning: unused variable: `@id`",
    "  --> src/@id.rs:@n:@n",
    "   |",
    "@n  |     let @id = @id.clone();",
    "   = note: `#[warn(unused_variables)]` on by default",
    "error[E0308]: mismatched types: expected `@Ty`, found `&@Ty`",
    "thread '@id' panicked at src/@id.rs:@n:@n:",
    "assertion `left == right` failed: \"@id\" != \"@id\"",
    "✓ @id passes (@n ms)",
    "✗ @id — expected @n, got @n",
    " M src/@id.rs",
    "?? tests/@id.rs",
    " src/@id.rs | @n ++++++-----",
    "test result: ok. @n passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.@ns",
];
const PROSE: &[&str] = &[
    "Let me read @id.rs to see how the @id is built.",
    "I'll check the \"@id\" field first — it's the source of truth.",
    "The test fails because `@id` returns @n instead of @n.",
    "Now I understand the issue: the @Ty is cloned on every call.",
    "Can you make the @id handle an empty @id?",
    "Please fix the failing test in @id and run cargo test again.",
    "The change is small: move the @id check before the loop.",
    "All @n tests pass now ✓",
    "I need to update the @Ty struct so that @id is optional.",
    "Looking at the error, the borrow of `@id` outlives the @id.",
    "Here's a summary of what changed in @id.rs:",
    "Note: paths like C:\\Users\\@id need escaping on Windows.",
    "The user asked for «@id» — I'll keep the naïve approach for now.",
    "Let me search for where @id is used.",
    "This matches the spec (section @n): one line per content block.",
    "I'm going to refactor @id into its own module.",
    "Done. The @id now streams instead of loading everything into memory.",
    "Hmm, the @Ty test is flaky; it depends on the time zone (日本時間).",
];

impl Pools {
    fn new(seed: u64) -> Pools {
        let mut rng = Rng::new(seed ^ 0x7E47_9001);
        let code = Pool::new((0..4_000).map(|_| fill(&mut rng, CODE)));
        let log = Pool::new((0..1_500).map(|_| fill(&mut rng, LOG)));
        let prose = Pool::new((0..1_500).map(|_| fill(&mut rng, PROSE)));
        Pools { code, log, prose }
    }
}

/// A random template with its `@id`, `@Ty`, `@n` and `@s` filled in.
fn fill(rng: &mut Rng, templates: &[&str]) -> String {
    let template = *rng.pick(templates);
    let mut out = String::with_capacity(template.len() + 32);
    let mut rest = template;
    while let Some(at) = rest.find('@') {
        out.push_str(&rest[..at]);
        rest = &rest[at + 1..];
        if let Some(r) = rest.strip_prefix("id") {
            out.push_str(rng.pick::<&str>(IDENTS));
            rest = r;
        } else if let Some(r) = rest.strip_prefix("Ty") {
            out.push_str(rng.pick::<&str>(TYPES));
            rest = r;
        } else if let Some(r) = rest.strip_prefix('n') {
            out.push_str(&rng.range(0, 999).to_string());
            rest = r;
        } else if let Some(r) = rest.strip_prefix('s') {
            let line = fill(rng, PROSE);
            out.push_str(&line);
            rest = r;
        } else {
            out.push('@');
        }
    }
    out.push_str(rest);
    out
}

// ---------------------------------------------------------------------------
// Small writers

/// Appends `s` as the inside of a JSON string, as JSON.stringify does:
/// quotes, backslashes and control characters escaped, the rest as UTF-8.
fn escape(out: &mut Vec<u8>, s: &str) {
    for &b in s.as_bytes() {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0..0x20 => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(b >> 4)]);
                out.push(HEX[usize::from(b & 15)]);
            }
            _ => out.push(b),
        }
    }
}

fn number(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

/// RFC 3339 in UTC with milliseconds: `2026-03-02T09:00:03.100Z`.
fn timestamp(out: &mut Vec<u8>, ms: i64) {
    let (y, m, d) = civil(ms.div_euclid(DAY_MS));
    let t = ms.rem_euclid(DAY_MS) as u64;
    digits(out, y as u64, 4, b'0');
    out.push(b'-');
    digits(out, u64::from(m), 2, b'0');
    out.push(b'-');
    digits(out, u64::from(d), 2, b'0');
    out.push(b'T');
    digits(out, t / 3_600_000, 2, b'0');
    out.push(b':');
    digits(out, t / 60_000 % 60, 2, b'0');
    out.push(b':');
    digits(out, t / 1000 % 60, 2, b'0');
    out.push(b'.');
    digits(out, t % 1000, 3, b'0');
    out.push(b'Z');
}

/// `n` right-aligned in at least `width` characters, padded with `pad`.
fn digits(out: &mut Vec<u8>, n: u64, width: usize, pad: u8) {
    let mut buf = [pad; 20];
    let mut i = buf.len();
    let mut n = n;
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i.min(buf.len() - width)..]);
}

/// (year, month, day) of a day count since 1970-01-01 (H. Hinnant's algorithm).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = (if mp < 10 { mp + 3 } else { mp - 9 }) as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn uuid(rng: &mut Rng) -> String {
    let h = hex(rng, 32);
    format!("{}-{}-4{}-a{}-{}", &h[..8], &h[8..12], &h[13..16], &h[17..20], &h[20..])
}

fn hex(rng: &mut Rng, n: usize) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(n);
    let mut bits = 0;
    let mut x = 0;
    for _ in 0..n {
        if bits < 4 {
            x = rng.next_u64();
            bits = 64;
        }
        s.push(char::from(HEX[(x & 15) as usize]));
        x >>= 4;
        bits -= 4;
    }
    s
}

fn base62(rng: &mut Rng, n: usize) -> String {
    const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    (0..n).map(|_| char::from(ALPHABET[rng.below(62) as usize])).collect()
}

/// A thinking block's signature: base64 of `n` characters.
fn signature(rng: &mut Rng, out: &mut Vec<u8>, n: usize) {
    const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut x = 0;
    for i in 0..n {
        if i % 10 == 0 {
            x = rng.next_u64();
        }
        out.push(B64[(x & 63) as usize]);
        x >>= 6;
    }
    out.extend_from_slice(b"==");
}

/// splitmix64: small, fast, and good enough for test data.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    pub fn f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    pub fn chance(&mut self, p: f64) -> bool {
        self.f64() < p
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

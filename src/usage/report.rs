//! Usage reports: filters (period, days in a time zone, profile, model,
//! agent), grouping (summary, daily, models, profiles, export) and totals.
//! Pure functions over the store's records: the daemon calls [`build`] with a
//! consistent view, the CLI renders the [`UsageReport`] it gets back.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

use anyhow::{Result, anyhow, bail};
use jiff::civil::{Date, DateTime};
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};
use serde::{Deserialize, Serialize};

use super::Agent;
use super::store::{Names, Record};
use crate::profiles::run::RunRow;

/// Which report: the rows' grouping.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReportKind {
    /// Totals only, no rows.
    #[default]
    Summary,
    /// One row per day.
    Daily,
    /// One row per model.
    Models,
    /// One row per profile.
    Profiles,
    /// One row per day x profile x model.
    Export,
}

/// What the caller asks for. Dates are `YYYY-MM-DD` days in `timezone`
/// (an IANA name; the daemon's system zone when absent).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsageQuery {
    #[serde(default)]
    pub report: ReportKind,
    /// today, yesterday, week, month, 7d, 30d or all.
    #[serde(default)]
    pub period: Option<String>,
    #[serde(default)]
    pub since: Option<String>,
    #[serde(default)]
    pub until: Option<String>,
    #[serde(default)]
    pub profile: Option<String>,
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub agent: Option<String>,
    #[serde(default)]
    pub timezone: Option<String>,
}

/// Token, cost and session totals of a set of records.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UsageTotals {
    pub input_tokens: u64,
    pub output_tokens: u64,
    /// Cache writes at either rate (Claude's `cache_creation_input_tokens`).
    pub cache_creation_tokens: u64,
    /// The part of `cache_creation_tokens` billed at the 1-hour rate.
    pub cache_creation_1h_tokens: u64,
    pub cache_read_tokens: u64,
    /// Information only; not part of `total_tokens`.
    pub reasoning_tokens: u64,
    /// input + output + cache creation + cache read.
    pub total_tokens: u64,
    /// Cost of the priced records only.
    pub cost_usd: f64,
    /// Tokens of records whose model has no price: never counted as $0.
    pub unpriced_tokens: u64,
    /// Billable API responses.
    pub messages: u64,
    /// Distinct agent sessions seen in the logs.
    pub sessions: u64,
    /// Runs through `ringlet profiles run` (from `sessions.jsonl`).
    pub runs: u64,
    pub runtime_secs: u64,
}

/// One row of a grouped report; only the grouping's keys are set.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UsageRow {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(flatten)]
    pub totals: UsageTotals,
}

/// What a scan could not read: counted, never silently dropped.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Skipped {
    /// Lines that were not valid JSON, not UTF-8, or too long.
    pub lines: u64,
    /// Files or directories that could not be read (permissions, vanished,
    /// a symlink loop).
    pub files: u64,
    /// The first few reasons, for the user to act on.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<String>,
}

/// The reply to a usage query.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UsageReport {
    pub report: ReportKind,
    /// The first and last day covered (absent: unbounded).
    pub since: Option<String>,
    pub until: Option<String>,
    pub timezone: String,
    pub totals: UsageTotals,
    pub rows: Vec<UsageRow>,
    /// Models seen in the selection that have no price.
    pub unpriced_models: Vec<String>,
    pub skipped: Skipped,
    /// Where prices came from: "embedded", "registry" (+ " + config overrides").
    pub pricing: String,
}

/// The reply to `usage import-claude`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ImportReport {
    pub dir: String,
    pub profile: String,
    pub files: u64,
    /// Entries the store did not have before.
    pub added: u64,
    /// Entries found in the dir (already known ones included).
    pub found: u64,
    pub skipped: Skipped,
}

/// Everything [`build`] reads, borrowed from the store.
pub struct Input<'a> {
    pub records: &'a [Record],
    pub names: &'a Names,
    pub runs: &'a [RunRow],
    /// Now, for relative periods.
    pub now: jiff::Timestamp,
    pub skipped: Skipped,
    pub pricing: String,
}

/// The periods [`UsageQuery::period`] takes, for messages.
const PERIODS: &str = "today, yesterday, week, month, 7d, 30d or all";

/// Builds the report `query` asks for. Errors are the caller's bad input
/// (an unknown period, agent or time zone, a malformed date, since after
/// until).
///
/// One pass over the records and one over the runs, grouping into hash maps
/// keyed by interned ids; strings are made only for the rows at the end.
pub fn build(query: &UsageQuery, input: &Input<'_>) -> Result<UsageReport> {
    let tz = zone(query.timezone.as_deref())?;
    let today = tz.to_datetime(input.now).date();
    let (since, until) = range(query, today)?;
    // The range as [lo, hi) in milliseconds: records are filtered on their
    // timestamp, and only grouped reports ask for their day.
    let lo = since.map(|d| day_start(&tz, d)).transpose()?.unwrap_or(i64::MIN);
    let hi = match until {
        Some(d) => {
            let next = d.tomorrow().map_err(|_| anyhow!("until {d} is out of range"))?;
            day_start(&tz, next)?
        }
        None => i64::MAX,
    };
    let bounded = since.is_some() || until.is_some();
    let filter = Filter::new(query, input.names)?;

    let kind = query.report;
    let by_day = matches!(kind, ReportKind::Daily | ReportKind::Export);
    let by_profile = matches!(kind, ReportKind::Profiles | ReportKind::Export);
    let by_model = matches!(kind, ReportKind::Models | ReportKind::Export);
    let grouped = kind != ReportKind::Summary;

    let mut days = Days::new(&tz);
    let mut ids = Ids { names: input.names, extra: Vec::new() };
    let mut groups = Groups::default();
    let mut totals = UsageTotals::default();
    let mut runtime_ms: u64 = 0;
    let mut sessions: FxSet<u64> = FxSet::default();
    let mut last_session = None;
    let mut unpriced: FxSet<u32> = FxSet::default();

    for r in input.records {
        if r.timestamp_ms < lo || r.timestamp_ms >= hi || !filter.record(r) {
            continue;
        }
        add_record(&mut totals, r);
        if r.cost_usd.is_none() {
            unpriced.insert(r.model);
        }
        let session = (r.agent as u64) << 32 | u64::from(r.session);
        if last_session != Some(session) {
            if sessions.insert(session) {
                totals.sessions += 1;
            }
            last_session = Some(session);
        }
        if !grouped {
            continue;
        }
        let day = if by_day {
            match days.day_of(r.timestamp_ms) {
                Some(day) => day,
                None => continue,
            }
        } else {
            0
        };
        let key = [
            day,
            if by_profile { r.profile } else { 0 },
            if by_model { r.model } else { 0 },
        ];
        let g = groups.index(key);
        add_record(&mut groups.totals[g], r);
        groups.session(g, session);
    }

    for run in input.runs {
        if !filter.run(run) {
            continue;
        }
        let start = super::parse_timestamp_ms(&run.start);
        match start {
            Some(ms) if ms < lo || ms >= hi => continue,
            // No day to place it on: it belongs only to an unbounded range.
            None if bounded => continue,
            _ => {}
        }
        totals.runs += 1;
        runtime_ms += run.duration_ms;
        if !grouped {
            continue;
        }
        let day = if by_day {
            match start.and_then(|ms| days.day_of(ms)) {
                Some(day) => day,
                // In the totals, but on no day's row.
                None => continue,
            }
        } else {
            0
        };
        let key = [
            day,
            if by_profile { ids.id(&run.profile) } else { 0 },
            if by_model { ids.id(&run.model) } else { 0 },
        ];
        let g = groups.index(key);
        groups.totals[g].runs += 1;
        groups.runtime_ms[g] += run.duration_ms;
    }
    totals.runtime_secs = runtime_ms / 1000;

    // Rows, in the report's order.
    let mut order: Vec<usize> = (0..groups.keys.len()).collect();
    let date = |k: &[u32; 3]| days.dates[k[0] as usize];
    match kind {
        ReportKind::Summary => {}
        ReportKind::Daily => order.sort_by_key(|&i| date(&groups.keys[i])),
        ReportKind::Models => order.sort_by(|&a, &b| {
            let (ta, tb) = (&groups.totals[a], &groups.totals[b]);
            tb.cost_usd
                .total_cmp(&ta.cost_usd)
                .then_with(|| ids.name(groups.keys[a][2]).cmp(ids.name(groups.keys[b][2])))
        }),
        ReportKind::Profiles => order.sort_by_key(|&i| ids.name(groups.keys[i][1])),
        ReportKind::Export => order.sort_by_key(|&i| {
            let k = &groups.keys[i];
            (date(k), ids.name(k[1]), ids.name(k[2]))
        }),
    }
    let rows = order
        .into_iter()
        .map(|i| {
            let k = groups.keys[i];
            let mut totals = std::mem::take(&mut groups.totals[i]);
            totals.runtime_secs = groups.runtime_ms[i] / 1000;
            UsageRow {
                date: by_day.then(|| date(&k).to_string()),
                profile: by_profile.then(|| ids.name(k[1]).to_string()),
                model: by_model.then(|| ids.name(k[2]).to_string()),
                totals,
            }
        })
        .collect();

    let mut unpriced_models: Vec<String> =
        unpriced.into_iter().map(|id| input.names.get(id).to_string()).collect();
    unpriced_models.sort_unstable();
    unpriced_models.dedup();

    Ok(UsageReport {
        report: kind,
        since: since.map(|d| d.to_string()),
        until: until.map(|d| d.to_string()),
        timezone: zone_name(&tz).to_string(),
        totals,
        rows,
        unpriced_models,
        skipped: input.skipped.clone(),
        pricing: input.pricing.clone(),
    })
}

/// The zone days are counted in: an IANA name, or the system's.
fn zone(name: Option<&str>) -> Result<TimeZone> {
    match name {
        Some(name) => TimeZone::get(name).map_err(|_| {
            anyhow!("unknown time zone '{name}' (expected an IANA name such as Europe/Berlin)")
        }),
        None => Ok(TimeZone::system()),
    }
}

fn zone_name(tz: &TimeZone) -> &str {
    match tz.iana_name() {
        Some(name) => name,
        // jiff falls back to `Etc/Unknown`, which behaves like UTC, when the
        // system's zone cannot be found.
        None if tz.is_unknown() => "UTC",
        // A POSIX `TZ` rule or an unnamed /etc/localtime.
        None => "local",
    }
}

/// The first and last day of the query (inclusive): its period narrowed by
/// `since` and `until`.
fn range(query: &UsageQuery, today: Date) -> Result<(Option<Date>, Option<Date>)> {
    let back = |days: i64| {
        today.checked_sub(days.days()).map_err(|_| anyhow!("the period starts out of range"))
    };
    let (lo, hi) = match query.period.as_deref().unwrap_or("all") {
        "today" => (Some(today), Some(today)),
        "yesterday" => {
            let day = back(1)?;
            (Some(day), Some(day))
        }
        "week" => (Some(back(i64::from(today.weekday().to_monday_zero_offset()))?), Some(today)),
        "month" => (Some(today.first_of_month()), Some(today)),
        "7d" => (Some(back(6)?), Some(today)),
        "30d" => (Some(back(29)?), Some(today)),
        "all" => (None, None),
        other => bail!("unknown period '{other}' (expected {PERIODS})"),
    };
    let since = query.since.as_deref().map(|s| parse_day("since", s)).transpose()?;
    let until = query.until.as_deref().map(|s| parse_day("until", s)).transpose()?;
    if let (Some(s), Some(u)) = (since, until)
        && s > u
    {
        bail!("since {s} is after until {u}");
    }
    let lo = match (lo, since) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    };
    let hi = match (hi, until) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    Ok((lo, hi))
}

/// A strict `YYYY-MM-DD` that names a real day.
fn parse_day(what: &str, text: &str) -> Result<Date> {
    let b = text.as_bytes();
    let shaped = b.len() == 10
        && b.iter().enumerate().all(|(i, c)| if i == 4 || i == 7 { *c == b'-' } else { c.is_ascii_digit() });
    match shaped.then(|| text.parse::<Date>().ok()).flatten() {
        Some(day) => Ok(day),
        None => bail!("{what} '{text}' is not a date (expected YYYY-MM-DD)"),
    }
}

/// The first instant of `day` in `tz`, in ms (midnight, or the end of a
/// gap that swallows it).
fn day_start(tz: &TimeZone, day: Date) -> Result<i64> {
    let ts = tz.to_timestamp(DateTime::from(day)).map_err(|_| anyhow!("{day} is out of range"))?;
    Ok(ts.as_millisecond())
}

fn add_record(t: &mut UsageTotals, r: &Record) {
    let k = &r.tokens;
    t.input_tokens += k.input;
    t.output_tokens += k.output;
    t.cache_creation_tokens += k.cache_writes();
    t.cache_creation_1h_tokens += k.cache_write_1h;
    t.cache_read_tokens += k.cache_read;
    t.reasoning_tokens += k.reasoning;
    let total = k.total();
    t.total_tokens += total;
    match r.cost_usd {
        Some(cost) => t.cost_usd += cost,
        None => t.unpriced_tokens += total,
    }
    t.messages += 1;
}

/// The query's profile, model and agent filters.
struct Filter<'q> {
    profile: Option<&'q str>,
    model: Option<&'q str>,
    agent: Option<Agent>,
    /// The same filters as interned ids: `Some(None)` is a name no record
    /// has, so no record matches.
    profile_id: Option<Option<u32>>,
    model_id: Option<Option<u32>>,
}

impl<'q> Filter<'q> {
    fn new(query: &'q UsageQuery, names: &Names) -> Result<Filter<'q>> {
        let agent = match query.agent.as_deref() {
            Some(id) => Some(Agent::from_id(id).ok_or_else(|| {
                anyhow!("unknown agent '{id}' (expected claude, codex or opencode)")
            })?),
            None => None,
        };
        let profile = query.profile.as_deref();
        let model = query.model.as_deref();
        Ok(Filter {
            profile,
            model,
            agent,
            profile_id: profile.map(|p| names.find(p)),
            model_id: model.map(|m| names.find(m)),
        })
    }

    fn record(&self, r: &Record) -> bool {
        let want = |want: Option<Option<u32>>, id: u32| want.is_none_or(|w| w == Some(id));
        want(self.profile_id, r.profile)
            && want(self.model_id, r.model)
            && self.agent.is_none_or(|a| a == r.agent)
    }

    fn run(&self, run: &RunRow) -> bool {
        self.profile.is_none_or(|p| p == run.profile)
            && self.model.is_none_or(|m| m == run.model)
            && self.agent.is_none_or(|a| a.id() == run.agent)
    }
}

/// Ids for group keys: the store's interned ids, and past them the names
/// only runs use (a run's model as its profile declared it, say).
struct Ids<'a> {
    names: &'a Names,
    extra: Vec<&'a str>,
}

impl<'a> Ids<'a> {
    /// Ids from here on are `extra`'s; the store never interns this many.
    const EXTRA: u32 = 1 << 31;

    fn id(&mut self, name: &'a str) -> u32 {
        if let Some(id) = self.names.find(name) {
            return id;
        }
        let index = match self.extra.iter().position(|n| *n == name) {
            Some(i) => i,
            None => {
                self.extra.push(name);
                self.extra.len() - 1
            }
        };
        Self::EXTRA + index as u32
    }

    fn name(&self, id: u32) -> &'a str {
        match id.checked_sub(Self::EXTRA) {
            Some(i) => self.extra[i as usize],
            None => self.names.get(id),
        }
    }
}

/// The groups of a report: `[day, profile, model]` keys (0 where the report
/// does not group by it), their totals and distinct sessions.
#[derive(Default)]
struct Groups {
    index: FxMap<[u32; 3], usize>,
    keys: Vec<[u32; 3]>,
    totals: Vec<UsageTotals>,
    runtime_ms: Vec<u64>,
    sessions: FxSet<(usize, u64)>,
    /// Records come in runs of the same group and session: skip the lookups.
    last: Option<([u32; 3], usize)>,
    last_session: Option<(usize, u64)>,
}

impl Groups {
    fn index(&mut self, key: [u32; 3]) -> usize {
        if let Some((k, g)) = self.last
            && k == key
        {
            return g;
        }
        let g = match self.index.get(&key) {
            Some(&g) => g,
            None => {
                let g = self.keys.len();
                self.index.insert(key, g);
                self.keys.push(key);
                self.totals.push(UsageTotals::default());
                self.runtime_ms.push(0);
                g
            }
        };
        self.last = Some((key, g));
        g
    }

    fn session(&mut self, g: usize, session: u64) {
        if self.last_session == Some((g, session)) {
            return;
        }
        self.last_session = Some((g, session));
        if self.sessions.insert((g, session)) {
            self.totals[g].sessions += 1;
        }
    }
}

/// Days of timestamps in one zone. A zone conversion per record costs more
/// than the rest of the report; records come mostly in time order, so the
/// day of the previous one usually answers, and the days seen so far (kept
/// as sorted `[start, end)` spans) answer nearly all the others.
struct Days<'a> {
    tz: &'a TimeZone,
    /// `(start_ms, end_ms, day id)`, sorted and disjoint.
    spans: Vec<(i64, i64, u32)>,
    last: (i64, i64, u32),
    /// Day ids to dates.
    dates: Vec<Date>,
    ids: HashMap<Date, u32>,
}

impl<'a> Days<'a> {
    fn new(tz: &'a TimeZone) -> Days<'a> {
        Days { tz, spans: Vec::new(), last: (0, 0, 0), dates: Vec::new(), ids: HashMap::new() }
    }

    /// The id of `ms`'s day; `None` when it is past the calendar's range.
    fn day_of(&mut self, ms: i64) -> Option<u32> {
        let (start, end, id) = self.last;
        if start <= ms && ms < end {
            return Some(id);
        }
        let i = self.spans.partition_point(|s| s.0 <= ms);
        if i > 0 && ms < self.spans[i - 1].1 {
            self.last = self.spans[i - 1];
            return Some(self.last.2);
        }
        let date = self.tz.to_datetime(Timestamp::from_millisecond(ms).ok()?).date();
        let id = match self.ids.get(&date) {
            Some(&id) => id,
            None => {
                let id = self.dates.len() as u32;
                self.dates.push(date);
                self.ids.insert(date, id);
                id
            }
        };
        let start = day_start(self.tz, date).ok();
        let end = date.tomorrow().ok().and_then(|d| day_start(self.tz, d).ok());
        if let (Some(start), Some(end)) = (start, end)
            && start <= ms
            && ms < end
        {
            self.spans.insert(i, (start, end, id));
            self.last = (start, end, id);
        }
        Some(id)
    }
}

/// FxHash (rustc's): keys here are a few small integers that no one chooses
/// adversarially, and SipHash would cost more than the rest of a record.
#[derive(Default, Clone, Copy)]
struct Fx(u64);

impl Hasher for Fx {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
    }

    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }

    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }

    fn finish(&self) -> u64 {
        // The multiply leaves its entropy in the high bits; the table
        // indexes by the low ones.
        self.0.rotate_left(26)
    }
}

type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<Fx>>;
type FxSet<K> = HashSet<K, BuildHasherDefault<Fx>>;

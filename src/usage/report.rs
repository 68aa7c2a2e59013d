//! Usage reports: filters (period, days in a time zone, profile, model,
//! agent), grouping (summary, daily, models, profiles, export) and totals.
//! Pure functions over the store's records: the daemon calls [`build`] with a
//! consistent view, the CLI renders the [`UsageReport`] it gets back.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hash, Hasher};

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
    /// Billing lines read (repeats of a response and history the store
    /// already had included).
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
    let mut groups = Groups {
        single: [by_day, by_profile, by_model].iter().filter(|b| **b).count() == 1,
        ..Groups::default()
    };
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
        let key = [day, if by_profile { r.profile } else { 0 }, if by_model { r.model } else { 0 }];
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
        && b.iter()
            .enumerate()
            .all(|(i, c)| if i == 4 || i == 7 { *c == b'-' } else { c.is_ascii_digit() });
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
                let known: Vec<&str> = Agent::ALL.iter().map(|a| a.id()).collect();
                anyhow!("unknown agent '{id}' (expected one of {})", known.join(", "))
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
    index: FxMap<Key, usize>,
    keys: Vec<[u32; 3]>,
    totals: Vec<UsageTotals>,
    runtime_ms: Vec<u64>,
    sessions: FxSet<(usize, u64)>,
    /// Per group, the session last added to it (`u64::MAX`: none yet).
    /// Records come in runs of one session, so this skips most lookups.
    last_session: Vec<u64>,
    /// Likewise, the last group looked up.
    last: Option<([u32; 3], usize)>,
    /// The key has one dimension: `direct[id]` is its group (`usize::MAX`:
    /// none yet), no hashing.
    single: bool,
    direct: Vec<usize>,
}

impl Groups {
    fn index(&mut self, key: [u32; 3]) -> usize {
        if let Some((k, g)) = self.last
            && k == key
        {
            return g;
        }
        // One dimension (the others 0) with a small id: a plain table.
        let id = (key[0] | key[1] | key[2]) as usize;
        let g = if self.single && id < 1 << 20 {
            if id >= self.direct.len() {
                self.direct.resize(id + 1, usize::MAX);
            }
            match self.direct[id] {
                usize::MAX => {
                    let g = self.add(key);
                    self.direct[id] = g;
                    g
                }
                g => g,
            }
        } else {
            match self.index.get(&Key(key)) {
                Some(&g) => g,
                None => {
                    let g = self.add(key);
                    self.index.insert(Key(key), g);
                    g
                }
            }
        };
        self.last = Some((key, g));
        g
    }

    fn add(&mut self, key: [u32; 3]) -> usize {
        self.keys.push(key);
        self.totals.push(UsageTotals::default());
        self.runtime_ms.push(0);
        self.last_session.push(u64::MAX);
        self.keys.len() - 1
    }

    fn session(&mut self, g: usize, session: u64) {
        if self.last_session[g] == session {
            return;
        }
        self.last_session[g] = session;
        if self.sessions.insert((g, session)) {
            self.totals[g].sessions += 1;
        }
    }
}

/// A group key, hashed as two words (an array would hash as bytes).
#[derive(Clone, Copy, PartialEq, Eq)]
struct Key([u32; 3]);

impl Hash for Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        let [day, profile, model] = self.0;
        state.write_u64(u64::from(day) << 32 | u64::from(profile));
        state.write_u32(model);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::usage::Tokens;
    use crate::usage::store::DEFAULT_PROFILE;

    /// Wednesday 2026-03-11, noon UTC.
    const NOW: &str = "2026-03-11T12:00:00Z";

    #[derive(Default)]
    struct Fixture {
        names: Names,
        records: Vec<Record>,
        runs: Vec<RunRow>,
    }

    /// A record's fields that vary between tests.
    struct R<'a> {
        at: &'a str,
        profile: &'a str,
        model: &'a str,
        session: &'a str,
        agent: Agent,
        tokens: Tokens,
        cost: Option<f64>,
    }

    impl Default for R<'_> {
        fn default() -> Self {
            R {
                at: "2026-03-11T09:00:00Z",
                profile: "work",
                model: "claude-sonnet-4-5",
                session: "s1",
                agent: Agent::Claude,
                tokens: Tokens { input: 10, output: 5, ..Tokens::default() },
                cost: Some(0.5),
            }
        }
    }

    impl Fixture {
        fn add(&mut self, r: R<'_>) {
            let record = Record {
                key: self.records.len() as u64 + 1,
                message: 0,
                timestamp_ms: crate::usage::parse_timestamp_ms(r.at).unwrap(),
                tokens: r.tokens,
                cost_usd: r.cost,
                agent_cost: None,
                agent: r.agent,
                profile: self.names.intern(r.profile),
                model: self.names.intern(r.model),
                session: self.names.intern(r.session),
                sidechain: false,
                fast: false,
            };
            self.records.push(record);
        }

        fn run(&mut self, profile: &str, agent: &str, model: &str, start: &str, secs: u64) {
            self.runs.push(RunRow {
                profile: profile.into(),
                agent: agent.into(),
                model: model.into(),
                start: start.into(),
                duration_ms: secs * 1000,
            });
        }

        fn report(&self, query: &UsageQuery) -> Result<UsageReport> {
            let input = Input {
                records: &self.records,
                names: &self.names,
                runs: &self.runs,
                now: NOW.parse().unwrap(),
                skipped: Skipped { lines: 2, files: 1, details: vec!["x: bad line".into()] },
                pricing: "embedded".into(),
            };
            build(query, &input)
        }

        fn ok(&self, query: &UsageQuery) -> UsageReport {
            self.report(query).unwrap()
        }

        fn err(&self, query: &UsageQuery) -> String {
            format!("{:#}", self.report(query).unwrap_err())
        }
    }

    fn utc() -> UsageQuery {
        UsageQuery { timezone: Some("UTC".into()), ..UsageQuery::default() }
    }

    fn period(p: &str) -> UsageQuery {
        UsageQuery { period: Some(p.into()), ..utc() }
    }

    fn daily(q: UsageQuery) -> UsageQuery {
        UsageQuery { report: ReportKind::Daily, ..q }
    }

    fn dates(report: &UsageReport) -> Vec<&str> {
        report.rows.iter().map(|r| r.date.as_deref().unwrap()).collect()
    }

    fn bounds(report: &UsageReport) -> (Option<&str>, Option<&str>) {
        (report.since.as_deref(), report.until.as_deref())
    }

    /// One record at 09:00 UTC on each day.
    fn days(days: &[&str]) -> Fixture {
        let mut f = Fixture::default();
        for day in days {
            f.add(R { at: &format!("{day}T09:00:00Z"), ..R::default() });
        }
        f
    }

    #[test]
    fn periods_are_relative_to_now_in_the_zone() {
        let f = days(&[
            "2026-01-30",
            "2026-02-09",
            "2026-02-10",
            "2026-02-28",
            "2026-03-01",
            "2026-03-04",
            "2026-03-05",
            "2026-03-08",
            "2026-03-09",
            "2026-03-10",
            "2026-03-11",
        ]);
        // (period, since, until, days with usage)
        type Case<'a> = (&'a str, Option<&'a str>, Option<&'a str>, &'a [&'a str]);
        let cases: &[Case] = &[
            ("today", Some("2026-03-11"), Some("2026-03-11"), &["2026-03-11"]),
            ("yesterday", Some("2026-03-10"), Some("2026-03-10"), &["2026-03-10"]),
            // Monday of this week.
            (
                "week",
                Some("2026-03-09"),
                Some("2026-03-11"),
                &["2026-03-09", "2026-03-10", "2026-03-11"],
            ),
            (
                "month",
                Some("2026-03-01"),
                Some("2026-03-11"),
                &[
                    "2026-03-01",
                    "2026-03-04",
                    "2026-03-05",
                    "2026-03-08",
                    "2026-03-09",
                    "2026-03-10",
                    "2026-03-11",
                ],
            ),
            (
                "7d",
                Some("2026-03-05"),
                Some("2026-03-11"),
                &["2026-03-05", "2026-03-08", "2026-03-09", "2026-03-10", "2026-03-11"],
            ),
            (
                "30d",
                Some("2026-02-10"),
                Some("2026-03-11"),
                &[
                    "2026-02-10",
                    "2026-02-28",
                    "2026-03-01",
                    "2026-03-04",
                    "2026-03-05",
                    "2026-03-08",
                    "2026-03-09",
                    "2026-03-10",
                    "2026-03-11",
                ],
            ),
        ];
        for (p, since, until, want) in cases {
            let report = f.ok(&daily(period(p)));
            assert_eq!(bounds(&report), (*since, *until), "{p}");
            assert_eq!(dates(&report), *want, "{p}");
            assert_eq!(report.totals.messages, want.len() as u64, "{p}");
        }
        // `all` and no period at all: everything, unbounded.
        for q in [period("all"), utc()] {
            let report = f.ok(&daily(q));
            assert_eq!(bounds(&report), (None, None));
            assert_eq!(report.rows.len(), 11);
            assert_eq!(report.totals.messages, 11);
        }
    }

    #[test]
    fn days_are_counted_in_the_requested_zone() {
        let mut f = Fixture::default();
        // 23:30 UTC is 00:30 the next day in Berlin (CET, +01:00).
        f.add(R { at: "2026-03-10T23:30:00Z", ..R::default() });
        // Summer time (+02:00): 22:30 UTC is already the next day.
        f.add(R { at: "2026-07-01T22:30:00Z", ..R::default() });
        let berlin = |q: UsageQuery| UsageQuery { timezone: Some("Europe/Berlin".into()), ..q };
        let report = f.ok(&berlin(daily(UsageQuery::default())));
        assert_eq!(report.timezone, "Europe/Berlin");
        assert_eq!(dates(&report), ["2026-03-11", "2026-07-02"]);
        assert_eq!(dates(&f.ok(&daily(utc()))), ["2026-03-10", "2026-07-01"]);
        // `today` follows the zone too.
        assert_eq!(f.ok(&berlin(period("today"))).totals.messages, 1);
        assert_eq!(f.ok(&period("today")).totals.messages, 0);
        assert_eq!(f.ok(&period("yesterday")).totals.messages, 1);
        // A day given with --since/--until is a day in the zone.
        let q = UsageQuery {
            since: Some("2026-03-11".into()),
            until: Some("2026-03-11".into()),
            ..utc()
        };
        assert_eq!(f.ok(&q).totals.messages, 0);
        assert_eq!(f.ok(&berlin(q)).totals.messages, 1);
        // Without a zone: the system's, named.
        let report = f.ok(&UsageQuery::default());
        assert!(!report.timezone.is_empty());
        assert_eq!(report.totals.messages, 2);
    }

    #[test]
    fn since_and_until_narrow_a_period() {
        let f = days(&["2026-02-27", "2026-03-02", "2026-03-05", "2026-03-11"]);
        let q = |p: Option<&str>, since: Option<&str>, until: Option<&str>| UsageQuery {
            period: p.map(String::from),
            since: since.map(String::from),
            until: until.map(String::from),
            ..daily(utc())
        };
        let r = f.ok(&q(Some("month"), Some("2026-03-03"), None));
        assert_eq!(bounds(&r), (Some("2026-03-03"), Some("2026-03-11")));
        assert_eq!(dates(&r), ["2026-03-05", "2026-03-11"]);
        let r = f.ok(&q(Some("month"), Some("2026-01-01"), Some("2026-03-05")));
        assert_eq!(bounds(&r), (Some("2026-03-01"), Some("2026-03-05")));
        assert_eq!(dates(&r), ["2026-03-02", "2026-03-05"]);
        let r = f.ok(&q(None, Some("2026-03-02"), None));
        assert_eq!(bounds(&r), (Some("2026-03-02"), None));
        assert_eq!(dates(&r), ["2026-03-02", "2026-03-05", "2026-03-11"]);
        let r = f.ok(&q(None, None, Some("2026-03-02")));
        assert_eq!(bounds(&r), (None, Some("2026-03-02")));
        assert_eq!(dates(&r), ["2026-02-27", "2026-03-02"]);
        // Inclusive on both ends.
        let r = f.ok(&q(None, Some("2026-03-02"), Some("2026-03-05")));
        assert_eq!(dates(&r), ["2026-03-02", "2026-03-05"]);
        // Disjoint from the period: nothing, not an error.
        let r = f.ok(&q(Some("today"), None, Some("2026-03-05")));
        assert!(r.rows.is_empty());
        assert_eq!(r.totals, UsageTotals::default());
    }

    #[test]
    fn bad_input_is_a_clear_error() {
        let f = days(&["2026-03-02"]);
        let date = |since: &str| UsageQuery { since: Some(since.into()), ..utc() };
        for bad in ["2026-3-02", "2026-02-30", "20260302", "yesterday", "2026-03-02T00:00", ""] {
            assert_eq!(
                f.err(&date(bad)),
                format!("since '{bad}' is not a date (expected YYYY-MM-DD)"),
            );
        }
        let q = UsageQuery { until: Some("2026-13-01".into()), ..utc() };
        assert_eq!(f.err(&q), "until '2026-13-01' is not a date (expected YYYY-MM-DD)");
        let q = UsageQuery {
            since: Some("2026-03-05".into()),
            until: Some("2026-03-01".into()),
            ..utc()
        };
        assert_eq!(f.err(&q), "since 2026-03-05 is after until 2026-03-01");
        assert_eq!(
            f.err(&period("fortnight")),
            "unknown period 'fortnight' (expected today, yesterday, week, month, 7d, 30d or all)"
        );
        let q = UsageQuery { timezone: Some("Mars/Olympus".into()), ..UsageQuery::default() };
        assert!(f.err(&q).starts_with("unknown time zone 'Mars/Olympus'"), "{}", f.err(&q));
        let q = UsageQuery { agent: Some("cursor".into()), ..utc() };
        assert_eq!(
            f.err(&q),
            "unknown agent 'cursor' (expected one of claude, codex, opencode, grok, droid)"
        );
    }

    #[test]
    fn filters_by_profile_model_and_agent() {
        let mut f = Fixture::default();
        f.add(R { profile: "work", model: "m1", agent: Agent::Claude, ..R::default() });
        f.add(R { profile: "work", model: "m2", agent: Agent::Codex, ..R::default() });
        f.add(R { profile: DEFAULT_PROFILE, model: "m1", agent: Agent::Opencode, ..R::default() });
        f.add(R { profile: "home", model: "m2", agent: Agent::Claude, ..R::default() });
        let count = |q: UsageQuery| f.ok(&q).totals.messages;
        let profile = |p: &str| UsageQuery { profile: Some(p.into()), ..utc() };
        let model = |m: &str| UsageQuery { model: Some(m.into()), ..utc() };
        let agent = |a: &str| UsageQuery { agent: Some(a.into()), ..utc() };
        assert_eq!(count(utc()), 4);
        assert_eq!(count(profile("work")), 2);
        assert_eq!(count(profile("(default)")), 1);
        assert_eq!(count(profile("nobody")), 0);
        // Exact, not a prefix.
        assert_eq!(count(profile("wor")), 0);
        assert_eq!(count(model("m1")), 2);
        assert_eq!(count(model("m")), 0);
        assert_eq!(count(agent("claude")), 2);
        assert_eq!(count(agent("codex")), 1);
        assert_eq!(count(agent("opencode")), 1);
        let q = UsageQuery {
            profile: Some("work".into()),
            model: Some("m2".into()),
            agent: Some("codex".into()),
            ..utc()
        };
        assert_eq!(count(q), 1);
        // A name interned in another role (a session) is still no profile.
        assert_eq!(count(profile("s1")), 0);
    }

    #[test]
    fn tokens_costs_and_unpriced_models() {
        let mut f = Fixture::default();
        let tokens = Tokens {
            input: 1,
            output: 2,
            cache_write_5m: 30,
            cache_write_1h: 400,
            cache_read: 5000,
            reasoning: 7,
        };
        f.add(R { model: "priced", tokens, cost: Some(1.25), ..R::default() });
        f.add(R { model: "priced", tokens, cost: Some(0.5), ..R::default() });
        f.add(R { model: "zeta-local", tokens, cost: None, ..R::default() });
        f.add(R { model: "alpha-local", tokens, cost: None, ..R::default() });
        f.add(R { model: "alpha-local", tokens, cost: None, ..R::default() });
        let r = f.ok(&utc());
        let t = &r.totals;
        assert_eq!(t.input_tokens, 5);
        assert_eq!(t.output_tokens, 10);
        assert_eq!(t.cache_creation_tokens, 5 * 430);
        assert_eq!(t.cache_creation_1h_tokens, 5 * 400);
        assert_eq!(t.cache_read_tokens, 5 * 5000);
        assert_eq!(t.reasoning_tokens, 35);
        assert_eq!(t.total_tokens, 5 * 5433);
        // Unpriced tokens are never $0: they are counted apart.
        assert!((t.cost_usd - 1.75).abs() < 1e-9);
        assert_eq!(t.unpriced_tokens, 3 * 5433);
        assert_eq!(t.messages, 5);
        assert_eq!(r.unpriced_models, ["alpha-local", "zeta-local"]);
        assert_eq!(r.skipped.lines, 2);
        assert_eq!(r.pricing, "embedded");
        // Only the selection's unpriced models.
        let q = UsageQuery { model: Some("priced".into()), ..utc() };
        let r = f.ok(&q);
        assert!(r.unpriced_models.is_empty());
        assert_eq!(r.totals.unpriced_tokens, 0);
        let r = f.ok(&UsageQuery { report: ReportKind::Models, ..utc() });
        let alpha = r.rows.iter().find(|r| r.model.as_deref() == Some("alpha-local")).unwrap();
        assert_eq!(alpha.totals.unpriced_tokens, 2 * 5433);
        assert_eq!(alpha.totals.cost_usd, 0.0);
    }

    #[test]
    fn sessions_are_distinct_per_group_and_overall() {
        let mut f = Fixture::default();
        for (at, session, agent, profile) in [
            ("2026-03-10T09:00:00Z", "s1", Agent::Claude, "work"),
            ("2026-03-10T09:01:00Z", "s1", Agent::Claude, "work"),
            ("2026-03-10T09:02:00Z", "s2", Agent::Claude, "work"),
            // Same session id, another agent: another session.
            ("2026-03-10T09:03:00Z", "s1", Agent::Codex, "work"),
            // s1 again, the next day and after another session.
            ("2026-03-11T09:00:00Z", "s1", Agent::Claude, "work"),
            ("2026-03-11T09:01:00Z", "s3", Agent::Claude, "home"),
            ("2026-03-11T09:02:00Z", "s1", Agent::Claude, "work"),
        ] {
            f.add(R { at, session, agent, profile, ..R::default() });
        }
        let r = f.ok(&daily(utc()));
        assert_eq!(r.totals.sessions, 4);
        assert_eq!(r.totals.messages, 7);
        let per_day: Vec<_> =
            r.rows.iter().map(|r| (r.totals.sessions, r.totals.messages)).collect();
        assert_eq!(per_day, [(3, 4), (2, 3)]);
        let r = f.ok(&UsageQuery { report: ReportKind::Profiles, ..utc() });
        let per_profile: Vec<_> =
            r.rows.iter().map(|r| (r.profile.as_deref().unwrap(), r.totals.sessions)).collect();
        assert_eq!(per_profile, [("home", 1), ("work", 3)]);
    }

    #[test]
    fn runs_come_from_the_run_log() {
        let mut f = Fixture::default();
        f.add(R { at: "2026-03-10T09:00:00Z", profile: "work", model: "m1", ..R::default() });
        f.run("work", "claude", "m1", "2026-03-10T08:59:00.000Z", 90);
        f.run("work", "claude", "m1", "2026-03-11T10:00:00.000Z", 30);
        // A run with no usage of its own still gets its row.
        f.run("idle", "codex", "gpt-5", "2026-03-11T11:00:00+00:00", 600);
        // Placed on no day: only an unbounded range counts it.
        f.run("work", "claude", "m1", "garbage", 5);
        let r = f.ok(&utc());
        assert_eq!((r.totals.runs, r.totals.runtime_secs), (4, 725));
        let r = f.ok(&period("today"));
        assert_eq!((r.totals.runs, r.totals.runtime_secs), (2, 630));
        assert_eq!(r.totals.messages, 0);
        let r = f.ok(&UsageQuery { agent: Some("codex".into()), ..utc() });
        assert_eq!((r.totals.runs, r.totals.runtime_secs), (1, 600));
        let r = f.ok(&UsageQuery { profile: Some("work".into()), ..period("yesterday") });
        assert_eq!((r.totals.runs, r.totals.runtime_secs, r.totals.messages), (1, 90, 1));
        let r = f.ok(&UsageQuery { model: Some("gpt-5".into()), ..utc() });
        assert_eq!(r.totals.runs, 1);

        let r = f.ok(&UsageQuery { report: ReportKind::Profiles, ..utc() });
        let rows: Vec<_> = r
            .rows
            .iter()
            .map(|r| {
                (
                    r.profile.as_deref().unwrap(),
                    r.totals.runs,
                    r.totals.runtime_secs,
                    r.totals.messages,
                )
            })
            .collect();
        assert_eq!(rows, [("idle", 1, 600, 0), ("work", 3, 125, 1)]);
        // The undated run is in the totals but on no day.
        let r = f.ok(&daily(utc()));
        let rows: Vec<_> =
            r.rows.iter().map(|r| (r.date.as_deref().unwrap(), r.totals.runs)).collect();
        assert_eq!(rows, [("2026-03-10", 1), ("2026-03-11", 2)]);
        assert_eq!(r.totals.runs, 4);
    }

    #[test]
    fn rows_are_ordered_per_report() {
        let mut f = Fixture::default();
        f.add(R {
            at: "2026-03-11T09:00:00Z",
            profile: "b",
            model: "cheap",
            cost: Some(1.0),
            ..R::default()
        });
        f.add(R {
            at: "2026-03-09T09:00:00Z",
            profile: "a",
            model: "dear",
            cost: Some(5.0),
            ..R::default()
        });
        f.add(R {
            at: "2026-03-10T09:00:00Z",
            profile: "c",
            model: "also-cheap",
            cost: Some(1.0),
            ..R::default()
        });
        f.add(R {
            at: "2026-03-10T10:00:00Z",
            profile: "a",
            model: "free",
            cost: None,
            ..R::default()
        });
        let q = |report| UsageQuery { report, ..utc() };

        let r = f.ok(&q(ReportKind::Summary));
        assert!(r.rows.is_empty());
        assert_eq!(r.report, ReportKind::Summary);

        let r = f.ok(&q(ReportKind::Daily));
        assert_eq!(dates(&r), ["2026-03-09", "2026-03-10", "2026-03-11"]);
        assert!(r.rows.iter().all(|r| r.profile.is_none() && r.model.is_none()));

        let r = f.ok(&q(ReportKind::Models));
        let models: Vec<_> = r.rows.iter().map(|r| r.model.as_deref().unwrap()).collect();
        // Cost descending, then name.
        assert_eq!(models, ["dear", "also-cheap", "cheap", "free"]);
        assert!(r.rows.iter().all(|r| r.date.is_none() && r.profile.is_none()));

        let r = f.ok(&q(ReportKind::Profiles));
        let profiles: Vec<_> = r.rows.iter().map(|r| r.profile.as_deref().unwrap()).collect();
        assert_eq!(profiles, ["a", "b", "c"]);
        assert_eq!(r.rows[0].totals.messages, 2);
        assert_eq!(r.totals.messages, 4);
    }

    #[test]
    fn export_has_one_row_per_day_profile_and_model() {
        let mut f = Fixture::default();
        for (at, profile, model) in [
            ("2026-03-11T09:00:00Z", "work", "m2"),
            ("2026-03-10T09:00:00Z", "work", "m1"),
            ("2026-03-11T10:00:00Z", "work", "m1"),
            ("2026-03-11T11:00:00Z", "home", "m2"),
            ("2026-03-11T12:00:00Z", "work", "m2"),
        ] {
            f.add(R { at, profile, model, ..R::default() });
        }
        f.run("work", "claude", "m1", "2026-03-11T08:00:00Z", 60);
        let r = f.ok(&UsageQuery { report: ReportKind::Export, ..utc() });
        let rows: Vec<_> = r
            .rows
            .iter()
            .map(|r| {
                (
                    r.date.as_deref().unwrap(),
                    r.profile.as_deref().unwrap(),
                    r.model.as_deref().unwrap(),
                    r.totals.messages,
                    r.totals.runs,
                )
            })
            .collect();
        assert_eq!(
            rows,
            [
                ("2026-03-10", "work", "m1", 1, 0),
                ("2026-03-11", "home", "m2", 1, 0),
                ("2026-03-11", "work", "m1", 1, 1),
                ("2026-03-11", "work", "m2", 2, 0),
            ]
        );
        assert_eq!(r.totals.messages, 5);
        assert_eq!(r.totals.runtime_secs, 60);
        // JSON keeps the keys beside the flattened totals.
        let json = serde_json::to_value(&r.rows[0]).unwrap();
        assert_eq!(json["date"], "2026-03-10");
        assert_eq!(json["input_tokens"], 10);
    }

    #[test]
    fn cached_days_match_a_full_conversion() {
        // Across both DST changes and in no particular order.
        let tz = TimeZone::get("Europe/Berlin").unwrap();
        let mut days = Days::new(&tz);
        let start = crate::usage::parse_timestamp_ms("2026-03-20T00:00:00Z").unwrap();
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        for i in 0..20_000i64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let ms = if i % 3 == 0 {
                start + (x % (250 * 86_400_000)) as i64
            } else {
                start + i * 1_000_000
            };
            let id = days.day_of(ms).unwrap();
            let want = tz.to_datetime(Timestamp::from_millisecond(ms).unwrap()).date();
            assert_eq!(days.dates[id as usize], want, "{ms}");
        }
        // One id per day.
        let mut dates = days.dates.clone();
        dates.sort();
        dates.dedup();
        assert_eq!(dates.len(), days.dates.len());
    }
}

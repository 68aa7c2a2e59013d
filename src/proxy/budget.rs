//! A proxy's spend and its budget. Spend is what this proxy relayed and
//! priced, by local-time day and month; it is rebuilt from the request log
//! when the child starts and grows with every request. Once today's spend
//! reaches the daily limit (or this month's the monthly one), requests are
//! refused with 402 until the period ends; a request already under way is
//! never cut. Requests for unpriced models are counted apart (in the log
//! with their tokens, here as a number), never as $0.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;

use super::Budget;
use super::log::{BudgetState, Record, Spent};

/// A limit reached: what the 402 says.
#[derive(Debug, Clone, PartialEq)]
pub struct Exceeded {
    /// `daily` or `monthly`.
    pub period: &'static str,
    pub spent: f64,
    pub limit: f64,
}

impl Exceeded {
    /// `ringlet: profile work has spent $20.04 of its $20.00 daily budget`.
    pub fn message(&self, alias: &str) -> String {
        format!(
            "ringlet: profile {alias} has spent ${:.2} of its ${:.2} {} budget",
            self.spent, self.limit, self.period
        )
    }
}

/// Spend so far, by period.
#[derive(Debug, Default)]
struct Spend {
    day: Option<Date>,
    today: f64,
    month: f64,
    unpriced_month: u64,
    /// Today's spend by answering target.
    by_target: BTreeMap<String, f64>,
}

/// The spend ledger of one proxy.
pub struct Ledger {
    budget: Budget,
    tz: TimeZone,
    spend: Mutex<Spend>,
}

/// What [`Ledger::snapshot`] reports.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    pub today: f64,
    pub month: f64,
    pub unpriced_month: u64,
    pub by_target: BTreeMap<String, f64>,
    pub state: BudgetState,
    pub period: Option<&'static str>,
}

/// The first instant of this month in `tz`, for the log rebuild.
pub fn month_start(tz: &TimeZone, now: Timestamp) -> Timestamp {
    let date = now.to_zoned(tz.clone()).date().first_of_month();
    date.to_zoned(tz.clone()).map(|z| z.timestamp()).unwrap_or(now)
}

impl Ledger {
    /// A ledger in `tz` (the system's zone in the child) starting from the
    /// totals `carried` by the log (when of this month) plus this month's
    /// `records` after them (`log::spend_since`).
    pub fn new(
        budget: Budget,
        tz: TimeZone,
        carried: Option<&Spent>,
        records: &[Record],
        now: Timestamp,
    ) -> Ledger {
        let ledger = Ledger { budget, tz, spend: Mutex::new(Spend::default()) };
        if let Some(carried) = carried
            && let Ok(day) = carried.day.parse::<Date>()
        {
            let mut spend = ledger.current(now);
            let today = spend.day;
            if today.is_some_and(|t| t.first_of_month() == day.first_of_month()) {
                spend.month = carried.month_usd;
                spend.unpriced_month = carried.unpriced_month;
                if today == Some(day) {
                    spend.today = carried.today_usd;
                    spend.by_target = carried.today_by_target.clone();
                }
            }
        }
        for record in records {
            if let Ok(at) = record.ts.parse::<Timestamp>() {
                ledger.add(record, at, now);
            }
        }
        ledger
    }

    /// Counts one finished request made at `at`.
    pub fn add(&self, record: &Record, at: Timestamp, now: Timestamp) {
        let mut spend = self.current(now);
        let (day, today) = (self.date(at), spend.day);
        if day.year() != today.map_or(0, |d| d.year())
            || day.month() != today.map_or(0, |d| d.month())
        {
            return;
        }
        match record.cost_usd {
            Some(cost) => {
                spend.month += cost;
                if Some(day) == today {
                    spend.today += cost;
                    let target = record.target.clone().unwrap_or_default();
                    *spend.by_target.entry(target).or_default() += cost;
                }
            }
            None if record.tokens.is_some() => spend.unpriced_month += 1,
            None => {}
        }
    }

    /// `Err` when a limit is reached now.
    pub fn check(&self, now: Timestamp) -> Result<(), Exceeded> {
        let spend = self.current(now);
        let over = |period, spent: f64, limit: Option<f64>| match limit {
            Some(limit) if spent >= limit => Err(Exceeded { period, spent, limit }),
            _ => Ok(()),
        };
        over("daily", spend.today, self.budget.daily_usd)?;
        over("monthly", spend.month, self.budget.monthly_usd)
    }

    /// The totals a rotated log carries (`log::Carry`).
    pub fn spent(&self, now: Timestamp) -> Spent {
        let spend = self.current(now);
        Spent {
            day: spend.day.map(|d| d.to_string()).unwrap_or_default(),
            today_usd: spend.today,
            month_usd: spend.month,
            unpriced_month: spend.unpriced_month,
            today_by_target: spend.by_target.clone(),
        }
    }

    pub fn snapshot(&self, now: Timestamp) -> Snapshot {
        let spend = self.current(now);
        let mut state = BudgetState::Ok;
        let mut period = None;
        for (name, spent, limit) in [
            ("daily", spend.today, self.budget.daily_usd),
            ("monthly", spend.month, self.budget.monthly_usd),
        ] {
            let Some(limit) = limit else { continue };
            let this = if spent >= limit {
                BudgetState::Exceeded
            } else if spent >= 0.8 * limit {
                BudgetState::Warning
            } else {
                BudgetState::Ok
            };
            if rank(this) > rank(state) {
                state = this;
                period = Some(name);
            }
        }
        Snapshot {
            today: spend.today,
            month: spend.month,
            unpriced_month: spend.unpriced_month,
            by_target: spend.by_target.clone(),
            state,
            period,
        }
    }

    fn date(&self, at: Timestamp) -> Date {
        at.to_zoned(self.tz.clone()).date()
    }

    /// The spend, with the periods that ended since the last look reset.
    fn current(&self, now: Timestamp) -> MutexGuard<'_, Spend> {
        let mut spend = self.spend.lock().unwrap_or_else(PoisonError::into_inner);
        let today = self.date(now);
        if spend.day != Some(today) {
            if spend.day.is_none_or(|d| d.first_of_month() != today.first_of_month()) {
                spend.month = 0.0;
                spend.unpriced_month = 0;
            }
            spend.day = Some(today);
            spend.today = 0.0;
            spend.by_target.clear();
        }
        spend
    }
}

fn rank(state: BudgetState) -> u8 {
    match state {
        BudgetState::Ok => 0,
        BudgetState::Warning => 1,
        BudgetState::Exceeded => 2,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::facts::ProxyTokens;

    fn record(ts: &str, cost: Option<f64>) -> Record {
        Record {
            ts: ts.into(),
            path: "/v1/messages".into(),
            rule: None,
            model: "m".into(),
            attempts: Vec::new(),
            status: 200,
            target: Some("p/m".into()),
            ttfb_ms: None,
            ms: 1.0,
            tokens: Some(ProxyTokens::default()),
            cost_usd: cost,
            stream: false,
        }
    }

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn spend_is_counted_by_local_day_and_month_and_resumes_next_period() {
        let tz = TimeZone::get("Europe/Berlin").unwrap_or(TimeZone::fixed(jiff::tz::offset(1)));
        let budget = Budget { daily_usd: Some(10.0), monthly_usd: Some(30.0) };
        // 23:30 UTC on the 6th is already the 7th in Berlin.
        let now = at("2026-12-07T12:00:00Z");
        let records = [
            record("2026-11-30T12:00:00Z", Some(100.0)), // last month
            record("2026-12-03T12:00:00Z", Some(15.0)),  // this month
            record("2026-12-06T23:30:00Z", Some(9.0)),   // today, local
            record("2026-12-07T10:00:00Z", None),        // unpriced
        ];
        let ledger = Ledger::new(budget, tz.clone(), None, &records, now);
        let snap = ledger.snapshot(now);
        assert_eq!((snap.today, snap.month, snap.unpriced_month), (9.0, 24.0, 1));
        assert_eq!(snap.state, BudgetState::Warning);
        assert_eq!(snap.period, Some("daily"));
        assert!(ledger.check(now).is_ok());
        ledger.add(&record("2026-12-07T12:00:00Z", Some(1.04)), now, now);
        let over = ledger.check(now).unwrap_err();
        assert_eq!(over.period, "daily");
        assert_eq!(
            over.message("work"),
            "ringlet: profile work has spent $10.04 of its $10.00 daily budget"
        );
        assert_eq!(ledger.snapshot(now).state, BudgetState::Exceeded);
        // The next day the daily limit is fresh; the month still counts.
        let tomorrow = at("2026-12-08T12:00:00Z");
        assert!(ledger.check(tomorrow).is_ok());
        ledger.add(&record("2026-12-08T12:00:00Z", Some(5.0)), tomorrow, tomorrow);
        let over = ledger.check(tomorrow).unwrap_err();
        assert_eq!(over.period, "monthly");
        assert!((over.spent - 30.04).abs() < 1e-9, "{over:?}");
        // What a rotated log carries rebuilds the same totals.
        let spent = ledger.spent(tomorrow);
        let rebuilt = Ledger::new(budget, tz.clone(), Some(&spent), &[], tomorrow);
        assert_eq!(rebuilt.snapshot(tomorrow), ledger.snapshot(tomorrow));
        // Carried the day before: the month counts, today starts afresh.
        let next = at("2026-12-09T12:00:00Z");
        let rebuilt = Ledger::new(budget, tz.clone(), Some(&spent), &[], next);
        assert_eq!(
            (rebuilt.snapshot(next).today, rebuilt.snapshot(next).month),
            (0.0, spent.month_usd)
        );
        // Carried last month: nothing.
        let rebuilt = Ledger::new(budget, tz, Some(&spent), &[], at("2027-01-02T12:00:00Z"));
        assert_eq!(rebuilt.snapshot(at("2027-01-02T12:00:00Z")).month, 0.0);
        // A new month starts from nothing.
        let january = at("2027-01-01T12:00:00Z");
        assert!(ledger.check(january).is_ok());
        assert_eq!(ledger.snapshot(january).month, 0.0);
    }
}

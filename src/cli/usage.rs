//! `ringlet usage ...`: build the query from the filters, ask the daemon,
//! render its [`UsageReport`] as a summary, a table, CSV or JSON. Unpriced
//! tokens are shown as such, never folded into a $0.

use std::borrow::Cow;

use anyhow::{Context, Result};

use super::{Ctx, Invocation, Out, Table, fetch};
use crate::protocol::{
    ImportReport, ReportKind, Request, Skipped, UsageQuery, UsageReport, UsageRow, UsageTotals,
};

/// The columns of `usage export --format csv`.
const CSV_HEADER: &str = "date,profile,model,input_tokens,output_tokens,cache_creation_tokens,cache_creation_1h_tokens,cache_read_tokens,reasoning_tokens,total_tokens,cost_usd,unpriced_tokens,messages,sessions,runs,runtime_secs";

/// The query the command line asks for. The zone is sent only when given,
/// so the daemon's own (the user's) zone applies otherwise.
fn query(inv: &Invocation, report: ReportKind) -> UsageQuery {
    let value = |name: &str| inv.value(name).map(String::from);
    UsageQuery {
        report,
        period: value("period"),
        since: value("since"),
        until: value("until"),
        profile: value("profile"),
        model: value("model"),
        agent: value("agent"),
        timezone: value("timezone"),
    }
}

/// `usage`, `usage daily|models|profiles|export`.
pub fn report(ctx: &Ctx, inv: &Invocation, kind: ReportKind) -> Result<()> {
    let mut out = Out::new();
    let request = Request::Usage(query(inv, kind));
    let Some(report) = fetch::<UsageReport>(ctx, &request, &mut out)? else {
        return Ok(out.finish()?);
    };
    match kind {
        ReportKind::Summary => summary(&report, &mut out)?,
        ReportKind::Export if inv.value("format") == Some("csv") => csv(&report, &mut out)?,
        ReportKind::Export => out.json(&report)?,
        _ => table(&report, &mut out)?,
    }
    Ok(out.finish()?)
}

fn summary(r: &UsageReport, out: &mut Out) -> Result<()> {
    let t = &r.totals;
    out.line(heading(r))?;
    if is_empty(t) {
        out.line(format_args!("no usage in {}", range(r)))?;
    } else {
        let cache_5m = t.cache_creation_tokens.saturating_sub(t.cache_creation_1h_tokens);
        let mut lines = vec![
            ("input", count(t.input_tokens)),
            ("output", count(t.output_tokens)),
            ("cache write 5m", count(cache_5m)),
            ("cache write 1h", count(t.cache_creation_1h_tokens)),
            ("cache read", count(t.cache_read_tokens)),
            ("total", count(t.total_tokens)),
        ];
        if t.reasoning_tokens > 0 {
            lines.push(("reasoning", format!("{} (information only)", count(t.reasoning_tokens))));
        }
        lines.extend([
            ("cost", summary_cost(t, &r.unpriced_models)),
            ("messages", count(t.messages)),
            ("sessions", count(t.sessions)),
            ("runs", count(t.runs)),
            ("runtime", duration(t.runtime_secs)),
        ]);
        for (label, value) in lines {
            out.line(format_args!("  {:<16}{value}", format!("{label}:")))?;
        }
        if !r.pricing.is_empty() && t.messages > 0 {
            out.line(format_args!("  {:<16}{}", "prices:", r.pricing))?;
        }
    }
    skipped(&r.skipped, out)
}

/// `$12.34 + 1,234 unpriced tokens (models: a, b)`; with nothing priced,
/// only the unpriced part, so it never reads as $0.
fn summary_cost(t: &UsageTotals, unpriced_models: &[String]) -> String {
    if t.unpriced_tokens == 0 {
        return dollars(t.cost_usd);
    }
    let mut text = if t.unpriced_tokens < t.total_tokens || t.cost_usd > 0.0 {
        format!("{} + ", dollars(t.cost_usd))
    } else {
        String::new()
    };
    text.push_str(&format!("{} unpriced tokens", count(t.unpriced_tokens)));
    if !unpriced_models.is_empty() {
        text.push_str(&format!(" (models: {})", unpriced_models.join(", ")));
    }
    text
}

/// `usage daily|models|profiles`: one table with a Total row.
fn table(r: &UsageReport, out: &mut Out) -> Result<()> {
    let key: fn(&UsageRow) -> String = match r.report {
        ReportKind::Daily => |row| row.date.clone().unwrap_or_default(),
        ReportKind::Models => |row| row.model.clone().unwrap_or_default(),
        _ => |row| row.profile.clone().unwrap_or_default(),
    };
    let header = match r.report {
        ReportKind::Daily => "DATE",
        ReportKind::Models => "MODEL",
        _ => "PROFILE",
    };
    out.line(heading(r))?;
    if r.rows.is_empty() {
        out.line(format_args!("no usage in {}", range(r)))?;
        return skipped(&r.skipped, out);
    }
    let mut table = Table::new(&[
        header,
        "INPUT",
        "OUTPUT",
        "CACHE WRITE",
        "CACHE READ",
        "TOTAL",
        "COST",
        "SESSIONS",
        "RUNS",
    ]);
    for row in &r.rows {
        table.row(cells(key(row), &row.totals));
    }
    table.row(cells("Total".into(), &r.totals));
    table.write(out)?;
    if !r.unpriced_models.is_empty() {
        out.line(format_args!("unpriced models: {}", r.unpriced_models.join(", ")))?;
    }
    skipped(&r.skipped, out)
}

fn cells(key: String, t: &UsageTotals) -> Vec<String> {
    vec![
        key,
        count(t.input_tokens),
        count(t.output_tokens),
        count(t.cache_creation_tokens),
        count(t.cache_read_tokens),
        count(t.total_tokens),
        cost_cell(t),
        count(t.sessions),
        count(t.runs),
    ]
}

/// `$1.23`, `$1.23 +4,567 unpriced`, `+4,567 unpriced` (nothing priced),
/// or empty (no tokens: a row of runs only).
fn cost_cell(t: &UsageTotals) -> String {
    match (t.total_tokens, t.unpriced_tokens) {
        (0, _) => String::new(),
        (_, 0) => dollars(t.cost_usd),
        (total, unpriced) if unpriced >= total => format!("+{} unpriced", count(unpriced)),
        (_, unpriced) => format!("{} +{} unpriced", dollars(t.cost_usd), count(unpriced)),
    }
}

/// `usage export --format csv`: a header, then one RFC 4180 line per row.
fn csv(r: &UsageReport, out: &mut Out) -> Result<()> {
    out.line(CSV_HEADER)?;
    for row in &r.rows {
        out.line(csv_line(row))?;
    }
    Ok(())
}

fn csv_line(row: &UsageRow) -> String {
    let t = &row.totals;
    // Entirely unpriced: no figure at all, never 0.
    let cost = if t.total_tokens > 0 && t.unpriced_tokens >= t.total_tokens {
        String::new()
    } else {
        decimal(t.cost_usd)
    };
    let fields: [Cow<'_, str>; 16] = [
        csv_field(row.date.as_deref().unwrap_or_default()),
        csv_field(row.profile.as_deref().unwrap_or_default()),
        csv_field(row.model.as_deref().unwrap_or_default()),
        t.input_tokens.to_string().into(),
        t.output_tokens.to_string().into(),
        t.cache_creation_tokens.to_string().into(),
        t.cache_creation_1h_tokens.to_string().into(),
        t.cache_read_tokens.to_string().into(),
        t.reasoning_tokens.to_string().into(),
        t.total_tokens.to_string().into(),
        cost.into(),
        t.unpriced_tokens.to_string().into(),
        t.messages.to_string().into(),
        t.sessions.to_string().into(),
        t.runs.to_string().into(),
        t.runtime_secs.to_string().into(),
    ];
    fields.join(",")
}

/// RFC 4180: a field with a comma, quote, CR or LF is quoted, its quotes
/// doubled.
fn csv_field(text: &str) -> Cow<'_, str> {
    if text.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", text.replace('"', "\"\"")).into()
    } else {
        text.into()
    }
}

/// A dollar amount for CSV: up to 6 decimals, no trailing zeros.
fn decimal(usd: f64) -> String {
    let text = format!("{usd:.6}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    if text == "-0" { "0".into() } else { text.into() }
}

/// `usage import-claude`.
pub fn import_claude(ctx: &Ctx, inv: &Invocation) -> Result<()> {
    // The daemon has another working directory: send an absolute path.
    let dir = match inv.value("claude-dir") {
        Some(dir) => Some(
            std::path::absolute(dir)
                .with_context(|| format!("resolving {dir}"))?
                .display()
                .to_string(),
        ),
        None => None,
    };
    let request =
        Request::UsageImportClaude { dir, profile: inv.value("profile").map(String::from) };
    let mut out = Out::new();
    let Some(r) = fetch::<ImportReport>(ctx, &request, &mut out)? else {
        return Ok(out.finish()?);
    };
    out.line(format_args!(
        "imported {} new {} as {} from {} {} in {} ({} billing {} read, repeats and \
         history already counted included)",
        count(r.added),
        plural(r.added, "response", "responses"),
        r.profile,
        count(r.files),
        plural(r.files, "file", "files"),
        r.dir,
        count(r.found),
        plural(r.found, "line", "lines"),
    ))?;
    skipped(&r.skipped, &mut out)?;
    Ok(out.finish()?)
}

fn plural<'a>(n: u64, one: &'a str, many: &'a str) -> &'a str {
    if n == 1 { one } else { many }
}

/// `skipped: N lines, M files` and the reasons under it, when any.
fn skipped(s: &Skipped, out: &mut Out) -> Result<()> {
    if s.lines == 0 && s.files == 0 {
        return Ok(());
    }
    out.line(format_args!(
        "skipped: {} {}, {} {}",
        count(s.lines),
        plural(s.lines, "line", "lines"),
        count(s.files),
        plural(s.files, "file", "files")
    ))?;
    for detail in &s.details {
        out.line(format_args!("  {detail}"))?;
    }
    Ok(())
}

/// `Usage 2026-03-01 to 2026-03-11 (Europe/Berlin)`.
fn heading(r: &UsageReport) -> String {
    format!("Usage {} ({})", range(r), r.timezone)
}

/// The report's days in words.
fn range(r: &UsageReport) -> String {
    match (r.since.as_deref(), r.until.as_deref()) {
        (Some(a), Some(b)) if a == b => a.to_string(),
        (Some(a), Some(b)) => format!("{a} to {b}"),
        (Some(a), None) => format!("since {a}"),
        (None, Some(b)) => format!("until {b}"),
        (None, None) => "all time".into(),
    }
}

fn is_empty(t: &UsageTotals) -> bool {
    t.messages == 0 && t.runs == 0
}

/// `1,234,567`.
fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut text = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            text.push(',');
        }
        text.push(c);
    }
    text
}

/// `$1,234.56`; a non-zero amount under a cent shows as `<$0.01`.
fn dollars(usd: f64) -> String {
    if usd > 0.0 && usd < 0.005 {
        return "<$0.01".into();
    }
    let cents = (usd * 100.0).round().max(0.0) as u64;
    format!("${}.{:02}", count(cents / 100), cents % 100)
}

/// `42s`, `5m07s`, `2h03m`, `3d04h` (`stats` shows runtimes this way too).
pub(super) fn duration(secs: u64) -> String {
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m{:02}s", s / 60, s % 60),
        s if s < 86_400 => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
        s => format!("{}d{:02}h", s / 86_400, s % 86_400 / 3600),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invocation(args: &[&str]) -> Invocation {
        match super::super::parse::parse(args.iter().map(Into::into)).unwrap().1 {
            super::super::Parsed::Run(inv) => inv,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn csv_fields_are_quoted_per_rfc_4180() {
        assert_eq!(csv_field("plain-model_1.5"), "plain-model_1.5");
        assert_eq!(csv_field(""), "");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("two\nlines"), "\"two\nlines\"");
        assert_eq!(csv_field("cr\rhere"), "\"cr\rhere\"");
        assert_eq!(csv_field("\""), "\"\"\"\"");
        assert!(matches!(csv_field("no quoting"), Cow::Borrowed(_)));
    }

    #[test]
    fn csv_rows_match_the_header() {
        let row = UsageRow {
            date: Some("2026-03-11".into()),
            profile: Some("(default)".into()),
            model: Some("local,\"q4\"".into()),
            totals: UsageTotals {
                input_tokens: 1,
                output_tokens: 2,
                cache_creation_tokens: 30,
                cache_creation_1h_tokens: 10,
                cache_read_tokens: 4,
                reasoning_tokens: 5,
                total_tokens: 37,
                cost_usd: 0.0,
                unpriced_tokens: 37,
                messages: 6,
                sessions: 7,
                runs: 8,
                runtime_secs: 9,
            },
        };
        let line = csv_line(&row);
        // Entirely unpriced: an empty cost, never 0.
        assert_eq!(line, "2026-03-11,(default),\"local,\"\"q4\"\"\",1,2,30,10,4,5,37,,37,6,7,8,9");
        assert_eq!(CSV_HEADER.split(',').count(), 16);
        let priced = UsageRow {
            totals: UsageTotals { cost_usd: 1.5, unpriced_tokens: 7, ..row.totals.clone() },
            model: Some("m".into()),
            ..row.clone()
        };
        assert_eq!(csv_line(&priced), "2026-03-11,(default),m,1,2,30,10,4,5,37,1.5,7,6,7,8,9");
        // A row of runs only costs 0, honestly.
        let runs_only =
            UsageRow { totals: UsageTotals { runs: 1, ..UsageTotals::default() }, ..priced };
        assert_eq!(csv_line(&runs_only), "2026-03-11,(default),m,0,0,0,0,0,0,0,0,0,0,0,1,0");
    }

    #[test]
    fn numbers_money_and_durations() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1000), "1,000");
        assert_eq!(count(1_234_567), "1,234,567");
        assert_eq!(dollars(0.0), "$0.00");
        assert_eq!(dollars(0.004), "<$0.01");
        assert_eq!(dollars(12.345_1), "$12.35");
        assert_eq!(dollars(1234.5), "$1,234.50");
        assert_eq!(decimal(0.0), "0");
        assert_eq!(decimal(12.34), "12.34");
        assert_eq!(decimal(0.1 + 0.2), "0.3");
        assert_eq!(decimal(0.000_000_1), "0");
        assert_eq!(duration(42), "42s");
        assert_eq!(duration(307), "5m07s");
        assert_eq!(duration(7380), "2h03m");
        assert_eq!(duration(3 * 86_400 + 4 * 3600), "3d04h");
    }

    #[test]
    fn unpriced_tokens_are_never_shown_as_zero_dollars() {
        let t = UsageTotals { total_tokens: 100, cost_usd: 2.5, ..UsageTotals::default() };
        assert_eq!(summary_cost(&t, &[]), "$2.50");
        assert_eq!(cost_cell(&t), "$2.50");
        let models = ["a".to_string(), "b".to_string()];
        let t = UsageTotals { total_tokens: 2000, unpriced_tokens: 1234, ..t };
        assert_eq!(summary_cost(&t, &models), "$2.50 + 1,234 unpriced tokens (models: a, b)");
        assert_eq!(cost_cell(&t), "$2.50 +1,234 unpriced");
        let t = UsageTotals { total_tokens: 1234, unpriced_tokens: 1234, ..UsageTotals::default() };
        assert_eq!(summary_cost(&t, &models), "1,234 unpriced tokens (models: a, b)");
        assert_eq!(cost_cell(&t), "+1,234 unpriced");
        // No tokens (a row of runs only): no cost to show.
        assert_eq!(cost_cell(&UsageTotals { runs: 2, ..UsageTotals::default() }), "");
    }

    #[test]
    fn ranges_in_words() {
        let r = |since: Option<&str>, until: Option<&str>| UsageReport {
            since: since.map(String::from),
            until: until.map(String::from),
            timezone: "Europe/Berlin".into(),
            ..UsageReport::default()
        };
        assert_eq!(heading(&r(None, None)), "Usage all time (Europe/Berlin)");
        assert_eq!(range(&r(Some("2026-03-11"), Some("2026-03-11"))), "2026-03-11");
        assert_eq!(range(&r(Some("2026-03-01"), Some("2026-03-11"))), "2026-03-01 to 2026-03-11");
        assert_eq!(range(&r(Some("2026-03-01"), None)), "since 2026-03-01");
        assert_eq!(range(&r(None, Some("2026-03-01"))), "until 2026-03-01");
    }

    #[test]
    fn the_query_carries_every_filter_and_only_a_given_zone() {
        let inv = invocation(&["usage", "daily", "--period", "7d", "--profile", "work"]);
        assert_eq!(
            query(&inv, ReportKind::Daily),
            UsageQuery {
                report: ReportKind::Daily,
                period: Some("7d".into()),
                profile: Some("work".into()),
                ..UsageQuery::default()
            }
        );
        let inv = invocation(&[
            "usage",
            "--since",
            "2026-03-01",
            "--until",
            "2026-03-02",
            "--model",
            "m",
            "--agent",
            "codex",
            "--timezone",
            "Asia/Tokyo",
        ]);
        let q = query(&inv, ReportKind::Summary);
        assert_eq!(q.since.as_deref(), Some("2026-03-01"));
        assert_eq!(q.until.as_deref(), Some("2026-03-02"));
        assert_eq!(q.model.as_deref(), Some("m"));
        assert_eq!(q.agent.as_deref(), Some("codex"));
        assert_eq!(q.timezone.as_deref(), Some("Asia/Tokyo"));
        let inv = invocation(&["usage", "import-claude", "--profile", "work"]);
        assert_eq!(inv.value("profile"), Some("work"));
    }
}

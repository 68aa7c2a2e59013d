//! Wall-clock helpers: RFC 3339 timestamps in UTC for events and log lines,
//! and the same instants as a person reads them in a table ("3 minutes
//! ago", a local date when older), which `--json` never uses.

use std::time::{SystemTime, UNIX_EPOCH};

/// The current time as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub fn now_rfc3339() -> String {
    let since = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    rfc3339(since.as_secs() as i64, since.subsec_millis())
}

/// Formats seconds since the Unix epoch (UTC) plus milliseconds.
pub fn rfc3339(secs: i64, millis: u32) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// An RFC 3339 instant as a person reads it, for the CLI's tables: `just
/// now`, `3 minutes ago`, `in 2 hours`, up to a week away; beyond that the
/// local date and time (`2026-11-24 14:05`). Text that is no RFC 3339
/// instant comes back as it is.
pub fn relative(text: &str) -> String {
    relative_at(text, jiff::Timestamp::now(), &jiff::tz::TimeZone::system())
}

/// Whether `text` looks like an RFC 3339 instant (`2026-11-24T14:05:...`):
/// a cheap test before parsing.
pub fn looks_rfc3339(text: &str) -> bool {
    let b = text.as_bytes();
    b.len() >= 20
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[..4].iter().all(u8::is_ascii_digit)
}

/// [`relative`] against a given clock and zone (for tests).
pub fn relative_at(text: &str, now: jiff::Timestamp, zone: &jiff::tz::TimeZone) -> String {
    let Some(then) = looks_rfc3339(text).then(|| text.parse::<jiff::Timestamp>().ok()).flatten()
    else {
        return text.to_string();
    };
    let secs = now.as_second() - then.as_second();
    let away = secs.unsigned_abs();
    // Rounded to the nearest unit, so 89 s is "1 minute", 90 s "2 minutes".
    let (n, unit) = match away {
        0..45 => return "just now".into(),
        45..5_400 => ((away + 30) / 60, "minute"),
        5_400..79_200 => ((away + 1800) / 3600, "hour"),
        79_200..604_800 => ((away + 43_200) / 86_400, "day"),
        _ => {
            let local = then.to_zoned(zone.clone());
            return local.strftime("%Y-%m-%d %H:%M").to_string();
        }
    };
    let n = n.max(1);
    let unit = if n == 1 { unit.to_string() } else { format!("{unit}s") };
    if secs >= 0 { format!("{n} {unit} ago") } else { format!("in {n} {unit}") }
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's
/// `civil_from_days`, exact for the whole i64 range we care about).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_instants() {
        assert_eq!(rfc3339(0, 0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(951_782_400, 5), "2000-02-29T00:00:00.005Z");
        assert_eq!(rfc3339(1_795_569_514, 329), "2026-11-25T01:18:34.329Z");
        assert_eq!(rfc3339(-1, 0), "1969-12-31T23:59:59.000Z");
    }

    #[test]
    fn relative_times_read_like_a_persons() {
        let now: jiff::Timestamp = "2026-11-25T12:00:00Z".parse().unwrap();
        let utc = jiff::tz::TimeZone::UTC;
        let at = |text: &str| relative_at(text, now, &utc);
        assert_eq!(at("2026-11-25T12:00:00.000Z"), "just now");
        assert_eq!(at("2026-11-25T11:59:30Z"), "just now");
        assert_eq!(at("2026-11-25T11:59:00Z"), "1 minute ago");
        assert_eq!(at("2026-11-25T11:57:00.250Z"), "3 minutes ago");
        assert_eq!(at("2026-11-25T10:00:00Z"), "2 hours ago");
        assert_eq!(at("2026-11-25T10:00:00+01:00"), "3 hours ago");
        assert_eq!(at("2026-11-24T12:00:00Z"), "1 day ago");
        assert_eq!(at("2026-11-20T12:00:00Z"), "5 days ago");
        assert_eq!(at("2026-11-25T12:10:00Z"), "in 10 minutes");
        assert_eq!(at("2026-12-02T12:00:00Z"), "2026-12-02 12:00");
        // Older than a week: the date and time in the given zone.
        assert_eq!(at("2026-10-01T08:30:00Z"), "2026-10-01 08:30");
        let berlin = jiff::tz::TimeZone::get("Europe/Berlin").unwrap();
        assert_eq!(relative_at("2026-10-01T08:30:00Z", now, &berlin), "2026-10-01 10:30");
        // Not a time: as it is.
        assert_eq!(at("-"), "-");
        assert_eq!(at("claude"), "claude");
        assert_eq!(at("2026-99-99T00:00:00Z"), "2026-99-99T00:00:00Z");
    }
}

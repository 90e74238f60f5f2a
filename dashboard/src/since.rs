//! `--since DURATION|TIME` of `logs`: an age or a point in time, read as people write them.

use chrono::{Local, NaiveDate, NaiveDateTime, NaiveTime, TimeZone};

/// Where `--since` starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Since {
    /// This long before the command runs.
    Ago(std::time::Duration),
    /// A time, in milliseconds since the epoch.
    At(i64),
}

impl Since {
    /// The start in milliseconds since the epoch, for a command run at `now_ms`.
    pub fn ms(self, now_ms: i64) -> i64 {
        match self {
            Since::Ago(d) => now_ms - i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 2),
            Since::At(t) => t,
        }
    }
}

/// `10m`, `1h30m`; `2026-12-07T09:00:00Z` (RFC 3339); local `2026-12-07 09:00[:00]`,
/// `2026-12-07`, or `09:00[:00]` today.
pub fn parse_since(s: &str) -> Result<Since, String> {
    let s = s.trim();
    if let Ok(d) = humantime::parse_duration(s) {
        return Ok(Since::Ago(d));
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(Since::At(t.timestamp_millis()));
    }
    let local = |naive: NaiveDateTime| {
        Local.from_local_datetime(&naive).earliest().map(|t| Since::At(t.timestamp_millis()))
    };
    let naive = ["%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())
        .or_else(|| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok().and_then(|d| d.and_hms_opt(0, 0, 0)))
        .or_else(|| {
            ["%H:%M:%S", "%H:%M"]
                .iter()
                .find_map(|f| NaiveTime::parse_from_str(s, f).ok())
                .map(|t| Local::now().date_naive().and_time(t))
        });
    naive.and_then(local).ok_or_else(|| {
        "expected a duration (10m, 1h30m, 2d) or a time (2026-12-07T09:00:00Z, 2026-12-07 09:00, 09:00)"
            .to_owned()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_durations_and_times() {
        assert_eq!(parse_since("10m"), Ok(Since::Ago(std::time::Duration::from_secs(600))));
        assert_eq!(parse_since("2026-12-07T09:00:00Z"), Ok(Since::At(1_796_634_000_000)));
        let today_nine = parse_since("09:00").unwrap();
        let date_nine = parse_since(&format!("{} 09:00", Local::now().date_naive())).unwrap();
        assert_eq!(today_nine, date_nine);
        assert!(parse_since("yesterday-ish").unwrap_err().contains("expected a duration"));
        assert_eq!(Since::Ago(std::time::Duration::from_secs(1)).ms(5_000), 4_000);
    }
}

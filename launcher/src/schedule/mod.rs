//! When a scheduled agent's runs are due: wall-clock arithmetic over an agent's
//! [`Schedule`], apart from the supervisor so it is tested alone. Times are milliseconds since
//! the Unix epoch, as in the database.
//!
//! A cron schedule is due at the times its expression matches, in its time zone (the local
//! one by default; croner handles daylight-saving gaps and repeats). An `every` schedule is
//! due at fixed steps from an anchor (the supervisor's start, or the last due time on record),
//! so runs do not drift by however long each one took to start.

use crate::config::Schedule;
use chrono::{DateTime, Local, TimeZone, Utc};
use std::time::Duration;

/// An agent's schedule, ready to answer "when next".
#[derive(Debug, Clone)]
pub struct Plan {
    kind: Kind,
    jitter_ms: i64,
}

#[derive(Debug, Clone)]
enum Kind {
    Cron { cron: Box<croner::Cron>, zone: Option<chrono_tz::Tz> },
    Every { step_ms: i64, anchor_ms: i64 },
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl Plan {
    /// The plan of `s`; an `every` schedule counts its steps from `anchor_ms`.
    pub fn new(s: &Schedule, anchor_ms: i64) -> Plan {
        let kind = match (&s.cron, s.every) {
            (Some(c), _) => Kind::Cron { cron: Box::new(c.cron.clone()), zone: s.timezone.map(|z| z.0) },
            // Validation guarantees one of the two, and a non-zero step.
            (None, every) => Kind::Every { step_ms: every.map_or(1, |d| ms(d.get()).max(1)), anchor_ms },
        };
        Plan { kind, jitter_ms: s.jitter.map_or(0, |d| ms(d.get())) }
    }

    /// The first due time strictly after `after_ms`; `None` if the expression never matches
    /// again (a date that does not come back).
    pub fn next_after(&self, after_ms: i64) -> Option<i64> {
        match &self.kind {
            Kind::Every { step_ms, anchor_ms } => {
                let steps = (after_ms - anchor_ms).div_euclid(*step_ms) + 1;
                anchor_ms.checked_add(steps.checked_mul(*step_ms)?)
            }
            Kind::Cron { cron, zone } => match zone {
                Some(tz) => {
                    let t = Utc.timestamp_millis_opt(after_ms).single()?.with_timezone(tz);
                    cron.find_next_occurrence(&t, false).ok().map(|d| d.timestamp_millis())
                }
                None => {
                    let t: DateTime<Local> = Local.timestamp_millis_opt(after_ms).single()?;
                    cron.find_next_occurrence(&t, false).ok().map(|d| d.timestamp_millis())
                }
            },
        }
    }

    /// The latest due time in `(since_ms, until_ms]`, if one passed there: the run a launcher
    /// that was down meanwhile missed.
    pub fn missed(&self, since_ms: i64, until_ms: i64) -> Option<i64> {
        let first = self.next_after(since_ms).filter(|t| *t <= until_ms)?;
        match &self.kind {
            Kind::Every { step_ms, .. } => Some(first + (until_ms - first) / step_ms * step_ms),
            Kind::Cron { cron, zone } => {
                let latest = match zone {
                    Some(tz) => {
                        let t = Utc.timestamp_millis_opt(until_ms).single()?.with_timezone(tz);
                        cron.find_previous_occurrence(&t, true).ok().map(|d| d.timestamp_millis())
                    }
                    None => {
                        let t: DateTime<Local> = Local.timestamp_millis_opt(until_ms).single()?;
                        cron.find_previous_occurrence(&t, true).ok().map(|d| d.timestamp_millis())
                    }
                };
                Some(latest.filter(|t| *t >= first && *t <= until_ms).unwrap_or(first))
            }
        }
    }

    /// How much later than due this run starts: at random up to `jitter`.
    pub fn jitter(&self) -> Duration {
        let j = u64::try_from(self.jitter_ms).unwrap_or(0);
        Duration::from_millis(if j == 0 { 0 } else { fastrand::u64(0..=j) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(extra: &str) -> Plan {
        let text = format!("[[agent]]\nname = \"a\"\ncommand = \"true\"\nschedule = {{ {extra} }}\n");
        let cfg = crate::config::parse(std::path::Path::new("t.toml"), &text).unwrap().agents.remove(0);
        Plan::new(cfg.schedule.as_ref().unwrap(), 1_000)
    }

    /// 2026-03-29 00:30 UTC, the night Europe/Berlin moves from UTC+1 to UTC+2 at 01:00 UTC.
    const DST_NIGHT: i64 = 1_774_744_200_000;

    #[test]
    fn every_steps_from_its_anchor_without_drift() {
        let p = plan("every = \"100ms\"");
        assert_eq!(p.next_after(1_000), Some(1_100));
        assert_eq!(p.next_after(1_050), Some(1_100));
        assert_eq!(p.next_after(1_100), Some(1_200), "strictly after");
        assert_eq!(p.next_after(5_432), Some(5_500));
        assert_eq!(p.next_after(500), Some(600), "before the anchor too");
        assert_eq!(p.missed(1_000, 1_099), None);
        assert_eq!(p.missed(1_000, 1_350), Some(1_300), "the latest missed");
    }

    #[test]
    fn cron_with_seconds_names_and_zones() {
        let p = plan("cron = \"*/2 * * * * *\", timezone = \"UTC\"");
        assert_eq!(p.next_after(DST_NIGHT), Some(DST_NIGHT + 2_000));
        assert_eq!(p.next_after(DST_NIGHT + 500), Some(DST_NIGHT + 2_000));
        assert_eq!(p.missed(DST_NIGHT, DST_NIGHT + 7_000), Some(DST_NIGHT + 6_000));
        assert_eq!(p.missed(DST_NIGHT, DST_NIGHT + 1_999), None);
        let hourly = plan("cron = \"@hourly\", timezone = \"UTC\"");
        assert_eq!(hourly.next_after(DST_NIGHT), Some(DST_NIGHT + 30 * 60_000));
        // 02:00 Berlin time does not exist that night: the run after 01:59 is at 03:00 (UTC+2).
        let berlin = plan("cron = \"0 2 * * *\", timezone = \"Europe/Berlin\"");
        let next = berlin.next_after(DST_NIGHT).unwrap();
        assert!(next > DST_NIGHT && next <= DST_NIGHT + 2 * 3_600_000, "{next}");
        let utc_daily = plan("cron = \"0 2 * * *\", timezone = \"UTC\"");
        assert_eq!(utc_daily.next_after(DST_NIGHT), Some(DST_NIGHT + 90 * 60_000));
    }

    #[test]
    fn jitter_stays_within_its_bound() {
        let p = plan("every = \"1s\", jitter = \"50ms\"");
        let draws: Vec<Duration> = (0..200).map(|_| p.jitter()).collect();
        assert!(draws.iter().all(|d| *d <= Duration::from_millis(50)));
        assert!(draws.iter().any(|d| *d > Duration::ZERO), "never jittered");
        assert_eq!(plan("every = \"1s\"").jitter(), Duration::ZERO);
    }
}

//! `[launcher] retention = { ... }`: how long the database keeps each kind of history. The
//! defaults are the store's, so there is one place that decides them.

use super::values::{Dur, MAX_RETENTION, MAX_ROWS};
use agentvisor_shared::RetentionConfig;
use serde::Deserialize;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Retention {
    /// Raw metric samples, at full resolution.
    pub raw: Dur,
    /// One-minute rollups.
    pub minute: Dur,
    /// One-hour rollups.
    pub hour: Dur,
    /// Events older than this go...
    pub events: Dur,
    /// ...and beyond this many, the oldest go.
    pub events_max: i64,
    /// Captured output older than this goes (besides the per-agent `log_lines` ring).
    pub logs: Dur,
    /// Run records older than this go...
    pub runs: Dur,
    /// ...and beyond this many, the oldest go.
    pub runs_max: i64,
}

impl Default for Retention {
    fn default() -> Self {
        let d = RetentionConfig::default();
        Retention {
            raw: Dur(d.raw),
            minute: Dur(d.minute),
            hour: Dur(d.hour),
            events: Dur(d.events_max_age),
            events_max: d.events_max_rows,
            logs: Dur(d.logs_max_age),
            runs: Dur(d.runs_max_age),
            runs_max: d.runs_max_rows,
        }
    }
}

impl Retention {
    /// The store's settings, with its own pass interval and time budget.
    pub fn to_store(&self) -> RetentionConfig {
        RetentionConfig {
            raw: self.raw.get(),
            minute: self.minute.get(),
            hour: self.hour.get(),
            events_max_age: self.events.get(),
            events_max_rows: self.events_max,
            logs_max_age: self.logs.get(),
            runs_max_age: self.runs.get(),
            runs_max_rows: self.runs_max,
            ..RetentionConfig::default()
        }
    }

    /// The first setting that makes no sense, as (key, message).
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        let windows = [
            ("raw", self.raw),
            ("minute", self.minute),
            ("hour", self.hour),
            ("events", self.events),
            ("logs", self.logs),
            ("runs", self.runs),
        ];
        for (key, d) in windows {
            d.at_most(MAX_RETENTION).map_err(|msg| (key, msg))?;
        }
        for (key, n) in [("events_max", self.events_max), ("runs_max", self.runs_max)] {
            if u64::try_from(n).is_ok_and(|n| n > MAX_ROWS) {
                return Err((key, format!("must be at most {MAX_ROWS}")));
            }
        }
        // The dashboard charts its 5-minute window from raw samples.
        if self.raw.get() < Duration::from_secs(5 * 60) {
            return Err(("raw", "must be at least 5m (the dashboard's full-resolution window)".into()));
        }
        if self.minute < self.raw {
            return Err(("minute", format!("must not be shorter than raw ({})", self.raw)));
        }
        if self.hour < self.minute {
            return Err(("hour", format!("must not be shorter than minute ({})", self.minute)));
        }
        for (key, d) in [("events", self.events), ("logs", self.logs), ("runs", self.runs)] {
            if d.get().is_zero() {
                return Err((key, "must be longer than 0".into()));
            }
        }
        for (key, n) in [("events_max", self.events_max), ("runs_max", self.runs_max)] {
            if n < 1 {
                return Err((key, "must be at least 1".into()));
            }
        }
        Ok(())
    }
}

//! Config value types that are written as strings in TOML: durations ("500ms", "10s") and
//! signal names ("SIGTERM" or "TERM"). Parsing them during deserialization lets the TOML
//! parser point at the offending value.

use nix::sys::signal::Signal;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// A duration written the humantime way: "500ms", "10s", "5m", "1h 30m".
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Dur(pub Duration);

impl Dur {
    pub const fn secs(s: u64) -> Dur {
        Dur(Duration::from_secs(s))
    }

    pub fn get(self) -> Duration {
        self.0
    }

    /// `Err` naming the limit when longer than `max`.
    pub fn at_most(self, max: MaxDur) -> Result<(), String> {
        if self.0 > max.dur { Err(format!("must be at most {}", max.text)) } else { Ok(()) }
    }
}

/// The longest value a duration setting accepts, and how messages and docs write it (in a form
/// the setting itself accepts).
#[derive(Debug, Clone, Copy)]
pub struct MaxDur {
    pub dur: Duration,
    pub text: &'static str,
}

const DAY: u64 = 86_400;

/// Timeouts, backoff and windows of an agent. Longer is a slip of the unit, never a plan, and
/// an unbounded value overflows the clock arithmetic that adds it to the time now.
pub const MAX_AGENT_DURATION: MaxDur = MaxDur { dur: Duration::from_secs(365 * DAY), text: "365d" };
/// `sample_interval`: the dashboard charts from samples, an hour apart is already blind.
pub const MAX_SAMPLE_INTERVAL: MaxDur = MaxDur { dur: Duration::from_secs(3_600), text: "1h" };
/// Retention windows: ten years of history.
pub const MAX_RETENTION: MaxDur = MaxDur { dur: Duration::from_secs(3_650 * DAY), text: "3650d" };
/// Largest `log_lines` and `retention.events_max`: generous, and far inside the i64 the store
/// counts rows with.
pub const MAX_ROWS: u64 = 1_000_000_000;

impl FromStr for Dur {
    type Err = String;
    fn from_str(s: &str) -> Result<Dur, String> {
        humantime::parse_duration(s.trim()).map(Dur).map_err(|e| {
            format!("invalid duration {s:?} ({e}); write a number with a unit, such as \"500ms\", \"10s\" or \"5m\"")
        })
    }
}

impl fmt::Display for Dur {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", humantime::format_duration(self.0))
    }
}

/// Deserializes a type from its string form, keeping the parser's message.
fn from_string<'de, D: Deserializer<'de>, T: FromStr<Err = String>>(d: D) -> Result<T, D::Error> {
    String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Dur, D::Error> {
        from_string(d)
    }
}

impl Serialize for Dur {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A signal given by name, with or without the `SIG` prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sig(pub Signal);

impl FromStr for Sig {
    type Err = String;
    fn from_str(s: &str) -> Result<Sig, String> {
        let upper = s.trim().to_ascii_uppercase();
        let full = if upper.starts_with("SIG") { upper } else { format!("SIG{upper}") };
        Signal::from_str(&full).map(Sig).map_err(|_| {
            format!("unknown signal {s:?}; use a name such as \"SIGTERM\", \"SIGINT\" or \"SIGQUIT\"")
        })
    }
}

impl<'de> Deserialize<'de> for Sig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Sig, D::Error> {
        from_string(d)
    }
}

impl Serialize for Sig {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.0.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_signals() {
        assert_eq!("500ms".parse::<Dur>().unwrap(), Dur(Duration::from_millis(500)));
        assert_eq!("1m 30s".parse::<Dur>().unwrap(), Dur::secs(90));
        assert!("10".parse::<Dur>().unwrap_err().contains("with a unit"));
        assert_eq!("term".parse::<Sig>().unwrap(), Sig(Signal::SIGTERM));
        assert_eq!("SIGQUIT".parse::<Sig>().unwrap(), Sig(Signal::SIGQUIT));
        assert!("SIGNOPE".parse::<Sig>().is_err());
    }
}

//! An agent's `schedule = { ... }`: when a scheduled agent runs. Cron expressions are parsed
//! by `croner` and time zones by `chrono-tz` while the TOML is read, so a bad one is reported
//! at its value; the rest is checked by [`check`].

use super::values::{Dur, MAX_AGENT_DURATION};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Schedule {
    /// 5 fields (minute granularity), 6 with seconds first, or `@hourly`, `@daily` ...
    #[serde(default)]
    pub cron: Option<Cron>,
    /// A fixed interval instead of `cron`.
    #[serde(default)]
    pub every: Option<Dur>,
    /// The zone `cron` is read in; the launcher's local time when unset.
    #[serde(default)]
    pub timezone: Option<Zone>,
    /// Run once when the agent's supervisor begins (the launcher starts, `ctl start`).
    #[serde(default)]
    pub run_on_start: bool,
    #[serde(default)]
    pub overlap: Overlap,
    /// Longest a run may take: then the stop signal, SIGKILL after `stop_timeout`.
    #[serde(default)]
    pub timeout: Option<Dur>,
    /// At start, run once if a due time passed while no launcher ran.
    #[serde(default)]
    pub catch_up: bool,
    /// Each run starts up to this much later than due, at random.
    #[serde(default)]
    pub jitter: Option<Dur>,
}

impl fmt::Display for Schedule {
    /// As `check` prints it: `cron "0 3 * * *" in Europe/Berlin` or `every 30s`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.cron, self.every) {
            (Some(c), _) => {
                write!(f, "cron {:?}", c.text)?;
                if let Some(z) = self.timezone {
                    write!(f, " in {}", z.0.name())?;
                }
                Ok(())
            }
            (None, Some(every)) => write!(f, "every {every}"),
            (None, None) => Ok(()),
        }
    }
}

/// What happens when a run comes due while the previous one still runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Overlap {
    /// The new run is recorded as skipped.
    #[default]
    Skip,
    /// The new run starts when the previous one ends (one waits at most; more are skipped).
    Queue,
    /// The previous run is stopped (outcome `stopped`) and the new one starts.
    Replace,
}

/// A parsed cron expression and the text it came from.
#[derive(Clone)]
pub struct Cron {
    pub text: String,
    pub cron: croner::Cron,
}

impl Cron {
    pub fn parse(text: &str) -> Result<Cron, String> {
        let cron = croner::parser::CronParser::builder()
            .seconds(croner::parser::Seconds::Optional)
            .year(croner::parser::Year::Disallowed)
            .build()
            .parse(text)
            .map_err(|e| {
                format!(
                    "invalid cron expression {text:?}: {e}; write 5 fields (minute hour day month \
                     weekday), 6 with seconds first, or @hourly, @daily, @weekly, @monthly, @yearly"
                )
            })?;
        Ok(Cron { text: text.to_owned(), cron })
    }
}

impl fmt::Debug for Cron {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Cron({:?})", self.text)
    }
}

impl PartialEq for Cron {
    fn eq(&self, other: &Cron) -> bool {
        self.text == other.text
    }
}

impl<'de> Deserialize<'de> for Cron {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Cron, D::Error> {
        Cron::parse(&String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

impl Serialize for Cron {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

/// A named time zone of the IANA database ("Europe/Berlin", "UTC").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Zone(pub chrono_tz::Tz);

impl<'de> Deserialize<'de> for Zone {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Zone, D::Error> {
        let name = String::deserialize(d)?;
        name.parse::<chrono_tz::Tz>().map(Zone).map_err(|_| {
            serde::de::Error::custom(format!(
                "unknown time zone {name:?}; use a name of the IANA time zone database such as \
                 \"Europe/Berlin\" or \"UTC\", or leave it out for the launcher's local time"
            ))
        })
    }
}

impl Serialize for Zone {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.0.name())
    }
}

/// The first mistake in an agent's schedule, as (field path, message).
pub fn check(s: &Schedule) -> Result<(), (Vec<&'static str>, String)> {
    let fail = |path: &[&'static str], msg: String| Err((path.to_vec(), msg));
    match (&s.cron, &s.every) {
        (None, None) => return fail(&["schedule"], "needs either `cron` or `every`".into()),
        (Some(_), Some(_)) => {
            return fail(&["schedule", "every"], "set either `cron` or `every`, not both".into());
        }
        (None, Some(_)) if s.timezone.is_some() => {
            return fail(&["schedule", "timezone"], "applies to `cron` only, not to `every`".into());
        }
        _ => {}
    }
    let durations = [("every", s.every), ("timeout", s.timeout), ("jitter", s.jitter)];
    for (key, value) in durations {
        if let Some(Err(msg)) = value.map(|d| d.at_most(MAX_AGENT_DURATION)) {
            return fail(&["schedule", key], msg);
        }
    }
    for (key, value) in [("every", s.every), ("timeout", s.timeout)] {
        if value.is_some_and(|d| d.get().is_zero()) {
            return fail(&["schedule", key], "must be longer than 0".into());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    fn schedule(text: &str) -> super::Schedule {
        #[derive(serde::Deserialize)]
        struct Agent {
            schedule: super::Schedule,
        }
        toml::from_str::<Agent>(&format!("schedule = {{ {text} }}")).unwrap().schedule
    }

    #[test]
    fn schedules_print_as_written() {
        assert_eq!(schedule("every = \"30s\"").to_string(), "every 30s");
        assert_eq!(
            schedule("cron = \"0 3 * * *\", timezone = \"Europe/Berlin\"").to_string(),
            "cron \"0 3 * * *\" in Europe/Berlin"
        );
        assert_eq!(schedule("cron = \"@hourly\"").to_string(), "cron \"@hourly\"");
    }

    #[test]
    fn seven_fields_and_a_zero_step_are_refused() {
        for bad in ["0 0 0 1 1 * 2030", "*/0 * * * *", "* * * *"] {
            assert!(super::Cron::parse(bad).is_err(), "{bad}");
        }
        assert!(super::Cron::parse("*/5 * * * * *").is_ok());
    }
}

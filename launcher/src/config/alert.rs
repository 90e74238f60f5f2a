//! `[[alert]]` rules: a condition on a value the launcher has per agent (a sampled metric, an
//! agent's `X_METRIC_*`, what it reports, its restarts, its heartbeat age), held for `for`,
//! fires an alert of a severity. The model and its checks; `crate::alerts` evaluates them.

use super::limits::{Bytes, Percent};
use super::values::Dur;
use agentvisor_shared::model::Severity;
use serde::{Deserialize, Serialize};
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AlertRule {
    pub name: String,
    /// The agents it watches; every agent when empty.
    #[serde(default)]
    pub agents: Vec<String>,
    pub value: String,
    #[serde(default)]
    pub rate: Option<Rate>,
    #[serde(default)]
    pub above: Option<Threshold>,
    #[serde(default)]
    pub below: Option<Threshold>,
    #[serde(default)]
    pub absent: Option<Dur>,
    #[serde(default)]
    pub anomaly: Option<f64>,
    /// How long the condition must hold before the alert fires.
    #[serde(default = "zero", rename = "for")]
    pub hold: Dur,
    #[serde(default)]
    pub window: Option<Dur>,
    #[serde(default = "warning")]
    pub severity: Severity,
}

fn zero() -> Dur {
    Dur(Duration::ZERO)
}

fn warning() -> Severity {
    Severity::Warning
}

/// Per what the change of a value is compared (`rate = "per_hour"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
pub enum Rate {
    #[serde(rename = "per_second")]
    Second,
    #[serde(rename = "per_minute")]
    Minute,
    #[serde(rename = "per_hour")]
    Hour,
}

impl Rate {
    pub fn seconds(self) -> f64 {
        match self {
            Rate::Second => 1.0,
            Rate::Minute => 60.0,
            Rate::Hour => 3_600.0,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Rate::Second => "per_second",
            Rate::Minute => "per_minute",
            Rate::Hour => "per_hour",
        }
    }
}

/// A threshold as written: a number, or a string with the value's unit ("500MiB", "80%",
/// "30s").
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(untagged)]
pub enum Threshold {
    Number(f64),
    Text(String),
}

/// The values a rule can watch that the launcher itself knows; any other name is an agent's
/// custom `X_METRIC_*` series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Builtin {
    CpuPercent,
    MemoryBytes,
    Threads,
    Cost,
    TokensIn,
    TokensOut,
    Restarts,
    HeartbeatAge,
}

impl Builtin {
    pub const ALL: [(&'static str, Builtin); 8] = [
        ("cpu_percent", Builtin::CpuPercent),
        ("memory_bytes", Builtin::MemoryBytes),
        ("threads", Builtin::Threads),
        ("cost", Builtin::Cost),
        ("tokens_in", Builtin::TokensIn),
        ("tokens_out", Builtin::TokensOut),
        ("restarts", Builtin::Restarts),
        ("heartbeat_age", Builtin::HeartbeatAge),
    ];

    pub fn named(name: &str) -> Option<Builtin> {
        Builtin::ALL.iter().find(|(n, _)| *n == name).map(|(_, b)| *b)
    }

    /// The unit a threshold may be written in, as text; `None`: numbers only.
    fn unit(self) -> Option<&'static str> {
        match self {
            Builtin::CpuPercent => Some("a percentage such as \"80%\""),
            Builtin::MemoryBytes => Some("a size such as \"500MiB\""),
            Builtin::HeartbeatAge => Some("a duration such as \"30s\""),
            _ => None,
        }
    }

    /// A threshold written with a unit, in the value's own unit (bytes, percent, seconds).
    fn parse(self, text: &str) -> Result<f64, String> {
        match self {
            Builtin::CpuPercent => text.parse::<Percent>().map(|p| p.0),
            Builtin::MemoryBytes => text.parse::<Bytes>().map(|b| b.0 as f64),
            Builtin::HeartbeatAge => text.parse::<Dur>().map(|d| d.get().as_secs_f64()),
            _ => Err(String::new()),
        }
    }
}

/// What a rule watches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Watched {
    Builtin(Builtin),
    /// An agent's `X_METRIC_<NAME>`, by its stored name (lower case).
    Custom(String),
}

/// A rule's condition, thresholds in the value's own unit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Condition {
    Above(f64),
    Below(f64),
    /// No new value for this long.
    Absent(Duration),
    /// More than this many standard deviations from the window's mean.
    Anomaly(f64),
}

/// A rule's mistake: the key it is about and the message.
pub type Mistake = (&'static str, String);

impl AlertRule {
    pub fn watched(&self) -> Result<Watched, Mistake> {
        if let Some(b) = Builtin::named(&self.value) {
            return Ok(Watched::Builtin(b));
        }
        // Custom names are what the protocol stores: `X_METRIC_QUEUE_DEPTH` is `queue_depth`.
        let custom = !self.value.is_empty()
            && self.value.len() <= 64
            && self.value.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if custom && !agentvisor_shared::model::BUILTIN_AGENT_METRICS.contains(&self.value.as_str()) {
            return Ok(Watched::Custom(self.value.clone()));
        }
        if let Some(name) = self.value.strip_prefix("X_METRIC_") {
            let stored = name.to_ascii_lowercase();
            return Err(("value", format!("write the custom metric by its stored name: value = {stored:?}")));
        }
        let builtins: Vec<&str> = Builtin::ALL.iter().map(|(n, _)| *n).collect();
        Err((
            "value",
            format!(
                "unknown value {:?}; use one of {}, or an agent's custom metric by its stored name \
                 (X_METRIC_QUEUE_DEPTH is \"queue_depth\")",
                self.value,
                builtins.join(", ")
            ),
        ))
    }

    /// The condition, with every threshold in the value's unit.
    pub fn condition(&self) -> Result<Condition, Mistake> {
        let set = [
            ("above", self.above.is_some()),
            ("below", self.below.is_some()),
            ("absent", self.absent.is_some()),
            ("anomaly", self.anomaly.is_some()),
        ];
        let given: Vec<&str> = set.iter().filter(|(_, on)| *on).map(|(k, _)| *k).collect();
        match given.as_slice() {
            [] => return Err(("name", "needs one condition: above, below, absent or anomaly".into())),
            [_] => {}
            [first, second, ..] => {
                return Err((
                    second,
                    format!("{first} and {second} cannot be combined; write one rule for each"),
                ));
            }
        }
        let watched = self.watched()?;
        let threshold = |key: &'static str, t: &Threshold| -> Result<f64, Mistake> {
            let n = match (t, &watched) {
                (Threshold::Number(n), _) => *n,
                (Threshold::Text(text), Watched::Builtin(b)) if b.unit().is_some() => {
                    b.parse(text).map_err(|_| {
                        let unit = b.unit().unwrap_or_default();
                        (
                            key,
                            format!("{text:?} is no threshold for {}: write a number or {unit}", self.value),
                        )
                    })?
                }
                (Threshold::Text(text), _) => {
                    return Err((
                        key,
                        format!("{text:?} is no threshold for {}: write a number", self.value),
                    ));
                }
            };
            if n.is_finite() { Ok(n) } else { Err((key, "must be a finite number".into())) }
        };
        let condition = if let Some(t) = &self.above {
            Condition::Above(threshold("above", t)?)
        } else if let Some(t) = &self.below {
            Condition::Below(threshold("below", t)?)
        } else if let Some(d) = self.absent {
            if d.get().is_zero() {
                return Err(("absent", "must be longer than 0".into()));
            }
            Condition::Absent(d.get())
        } else {
            let sd = self.anomaly.unwrap_or_default();
            if !(sd.is_finite() && sd > 0.0) {
                return Err((
                    "anomaly",
                    "must be a number of standard deviations above 0, such as 3.0".into(),
                ));
            }
            if self.window.is_none() {
                return Err((
                    "anomaly",
                    "needs a window to take the mean and deviation over, such as window = \"15m\"".into(),
                ));
            }
            Condition::Anomaly(sd)
        };
        if self.rate.is_some() && matches!(condition, Condition::Absent(_)) {
            return Err(("rate", "absent watches for new values; a rate makes no sense with it".into()));
        }
        if self.window.is_some_and(|w| w.get().is_zero()) {
            return Err(("window", "must be longer than 0".into()));
        }
        Ok(condition)
    }
}

//! Evaluates the `[[alert]]` rules (see `crate::config::alert`) once per sample, on the main
//! runtime beside the sampler, never on the writer's thread. [`Engine::evaluate`] is pure: it
//! takes the time and each agent's values and returns what fired and resolved; the sampler
//! records those as events and writes the firing set for readers.
//!
//! Per rule and agent it keeps a [`Track`]: the values of the rule's window (for `rate` and
//! `anomaly`), when the value last changed (for `absent`), since when the condition has held
//! (for `for`) and whether it fires.

use crate::config::alert::{AlertRule, Builtin, Condition, Watched};
use crate::config::limits::Bytes;
use agentvisor_shared::model::FiringAlert;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

/// What the launcher has of one agent at one sample.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AgentValues {
    /// Whether it has a process now: `absent` counts only while it does.
    pub running: bool,
    pub cpu_percent: Option<f64>,
    pub memory_bytes: Option<f64>,
    pub threads: Option<f64>,
    pub cost: Option<f64>,
    pub tokens_in: Option<f64>,
    pub tokens_out: Option<f64>,
    pub restarts: f64,
    pub heartbeat_age_s: Option<f64>,
    /// Its newest `X_METRIC_*` values by stored name, with the time of each sample.
    pub custom: HashMap<String, (i64, f64)>,
}

impl AgentValues {
    /// The value and, where known, the time it was sampled (a new time is a new value).
    fn get(&self, w: &Watched) -> Option<(Option<i64>, f64)> {
        let plain = |v: Option<f64>| v.map(|v| (None, v));
        match w {
            Watched::Builtin(b) => match b {
                Builtin::CpuPercent => plain(self.cpu_percent),
                Builtin::MemoryBytes => plain(self.memory_bytes),
                Builtin::Threads => plain(self.threads),
                Builtin::Cost => plain(self.cost),
                Builtin::TokensIn => plain(self.tokens_in),
                Builtin::TokensOut => plain(self.tokens_out),
                Builtin::Restarts => Some((None, self.restarts)),
                Builtin::HeartbeatAge => plain(self.heartbeat_age_s),
            },
            Watched::Custom(name) => self.custom.get(name).map(|(ts, v)| (Some(*ts), *v)),
        }
    }
}

/// A rule, checked by the config and ready to evaluate.
struct Rule {
    def: AlertRule,
    watched: Watched,
    condition: Condition,
    /// Per agent.
    tracks: HashMap<String, Track>,
}

/// The fewest values of the window before `anomaly` judges one.
pub const ANOMALY_MIN_VALUES: usize = 5;

#[derive(Debug, Default)]
struct Track {
    /// `(ms, value)` as watched (before `rate`), oldest first, within the window (and the one
    /// before it, so a rate spans the whole window).
    raw: VecDeque<(i64, f64)>,
    /// For `anomaly`: the compared values (after `rate`) of the window.
    compared: VecDeque<(i64, f64)>,
    /// The last value seen and when it was new.
    last: Option<(Option<i64>, f64)>,
    new_at: Option<i64>,
    holding_since: Option<i64>,
    firing: Option<FiringAlert>,
    /// The evaluation that last looked at it: one that did not, found its agent gone.
    pass: u64,
}

/// What changed at an evaluation.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    Fired(FiringAlert),
    /// The alert as it last fired, and the value that ended it (in its message).
    Resolved(FiringAlert),
}

#[derive(Default)]
pub struct Engine {
    source: Option<Arc<[AlertRule]>>,
    rules: Vec<Rule>,
    /// Evaluations so far.
    pass: u64,
}

impl Engine {
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Puts `rules` in force (a reload). Rules whose definition is unchanged keep their state;
    /// the alerts of rules removed or changed resolve.
    pub fn set_rules(&mut self, rules: Arc<[AlertRule]>, now_ms: i64, out: &mut Vec<Change>) {
        if self.source.as_ref().is_some_and(|s| Arc::ptr_eq(s, &rules)) {
            return;
        }
        let mut old: Vec<Rule> = std::mem::take(&mut self.rules);
        for def in rules.iter() {
            // Checked by the config; a rule that fails here anyway is left out, not a panic.
            let (Ok(watched), Ok(condition)) = (def.watched(), def.condition()) else {
                tracing::warn!(rule = %def.name, "alert rule left out: it does not check");
                continue;
            };
            let kept = old.iter().position(|r| r.def == *def).map(|i| old.swap_remove(i));
            let tracks = kept.map(|r| r.tracks).unwrap_or_default();
            self.rules.push(Rule { def: def.clone(), watched, condition, tracks });
        }
        for rule in old {
            for (_, track) in rule.tracks {
                if let Some(mut a) = track.firing {
                    a.message = format!("{}: the rule was changed or removed by a reload", a.rule);
                    a.since_ms = now_ms;
                    out.push(Change::Resolved(a));
                }
            }
        }
        self.source = Some(rules);
    }

    /// Evaluates every rule for every agent it watches (`agents`: all current agents); agents
    /// gone since the last evaluation resolve.
    pub fn evaluate<'a>(
        &mut self,
        now_ms: i64,
        agents: impl Iterator<Item = (&'a str, &'a AgentValues)> + Clone,
        out: &mut Vec<Change>,
    ) {
        self.pass += 1;
        let pass = self.pass;
        for rule in &mut self.rules {
            let mut touched = 0;
            for (name, values) in agents.clone() {
                if !rule.def.agents.is_empty() && !rule.def.agents.iter().any(|a| a == name) {
                    continue;
                }
                let track = match rule.tracks.get_mut(name) {
                    Some(t) => t,
                    None => rule.tracks.entry(name.to_owned()).or_default(),
                };
                track.pass = pass;
                touched += 1;
                step(&rule.def, &rule.watched, rule.condition, name, track, values, now_ms, out);
            }
            if rule.tracks.len() > touched {
                rule.tracks.retain(|_, track| {
                    let keep = track.pass == pass;
                    if !keep && let Some(mut a) = track.firing.take() {
                        a.message = format!("{}: the agent is gone", a.rule);
                        out.push(Change::Resolved(a));
                    }
                    keep
                });
            }
        }
    }

    /// The alerts firing now, by rule then agent.
    pub fn firing(&self) -> Vec<FiringAlert> {
        let mut all: Vec<FiringAlert> =
            self.rules.iter().flat_map(|r| r.tracks.values().filter_map(|t| t.firing.clone())).collect();
        all.sort_by(|a, b| (&a.rule, &a.agent).cmp(&(&b.rule, &b.agent)));
        all
    }
}

/// One rule for one agent at one sample.
#[allow(clippy::too_many_arguments)]
fn step(
    def: &AlertRule,
    watched: &Watched,
    condition: Condition,
    agent: &str,
    t: &mut Track,
    values: &AgentValues,
    now: i64,
    out: &mut Vec<Change>,
) {
    let window_ms = def.window.map(|w| i64::try_from(w.get().as_millis()).unwrap_or(i64::MAX));
    let seen = values.get(watched);
    // A new value: a new sample time, or (for values without one) a change.
    let is_new = match (seen, t.last) {
        (Some(_), None) => true,
        (Some((Some(ts), _)), Some((last_ts, _))) => Some(ts) != last_ts,
        (Some((None, v)), Some((_, last))) => v != last,
        (None, _) => false,
    };
    if is_new {
        t.new_at = Some(now);
        t.last = seen;
    }
    if !values.running {
        // `absent` counts from the start of a run, not across a stop.
        t.new_at = None;
    } else if t.new_at.is_none() {
        t.new_at = Some(now);
    }
    // The value compared: the watched value, or its rate over the window.
    let compared = match (seen, def.rate) {
        (None, _) => None,
        (Some((_, v)), None) => Some(v),
        (Some((_, v)), Some(rate)) => {
            t.raw.push_back((now, v));
            match window_ms {
                // Keep the newest value at or before the window's start, so the rate spans it.
                Some(w) => {
                    while t.raw.len() > 2 && t.raw[1].0 <= now - w {
                        t.raw.pop_front();
                    }
                }
                None => {
                    while t.raw.len() > 2 {
                        t.raw.pop_front();
                    }
                }
            }
            let (t0, v0) = t.raw[0];
            let dt = (now - t0) as f64 / 1000.0;
            (dt > 0.0).then(|| (v - v0) / dt * rate.seconds())
        }
    };
    if seen.is_none() && def.rate.is_some() {
        t.raw.clear();
    }
    let (holds, shown) = match condition {
        Condition::Above(x) => (compared.is_some_and(|v| v > x), compared),
        Condition::Below(x) => (compared.is_some_and(|v| v < x), compared),
        Condition::Absent(d) => {
            let age = t.new_at.map(|at| (now - at) as f64 / 1000.0);
            (age.is_some_and(|a| a >= d.as_secs_f64()), age)
        }
        Condition::Anomaly(k) => {
            let verdict = compared.map(|v| anomalous(&t.compared, v, k));
            if let (Some(v), Some(w)) = (compared, window_ms) {
                t.compared.push_back((now, v));
                while t.compared.front().is_some_and(|(ts, _)| *ts < now - w) {
                    t.compared.pop_front();
                }
            }
            (verdict.unwrap_or(false), compared)
        }
    };
    if !holds {
        t.holding_since = None;
        if let Some(mut a) = t.firing.take() {
            a.value = shown;
            a.message = describe(def, condition, shown, false);
            out.push(Change::Resolved(a));
        }
        return;
    }
    let since = *t.holding_since.get_or_insert(now);
    let hold_ms = i64::try_from(def.hold.get().as_millis()).unwrap_or(i64::MAX);
    match &mut t.firing {
        Some(a) => {
            a.value = shown;
            a.message = describe(def, condition, shown, true);
        }
        None if now - since >= hold_ms => {
            let a = FiringAlert {
                rule: def.name.clone(),
                agent: agent.to_owned(),
                severity: def.severity,
                since_ms: now,
                value: shown,
                message: describe(def, condition, shown, true),
            };
            t.firing = Some(a.clone());
            out.push(Change::Fired(a));
        }
        None => {}
    }
}

/// Whether `v` is more than `k` standard deviations from the mean of `history`.
fn anomalous(history: &VecDeque<(i64, f64)>, v: f64, k: f64) -> bool {
    let n = history.len();
    if n < ANOMALY_MIN_VALUES {
        return false;
    }
    let mean = history.iter().map(|(_, x)| x).sum::<f64>() / n as f64;
    let var = history.iter().map(|(_, x)| (x - mean) * (x - mean)).sum::<f64>() / n as f64;
    let sd = var.sqrt();
    // A flat history has no deviation to measure against: any change would be "infinite".
    sd > 0.0 && (v - mean).abs() > k * sd
}

/// The condition in words, with the value: "cost per_hour 4.1 > 2".
fn describe(def: &AlertRule, condition: Condition, value: Option<f64>, holds: bool) -> String {
    let what = match def.rate {
        Some(r) => format!("{} {}", def.value, r.as_str()),
        None => def.value.clone(),
    };
    // Sizes read as sizes; a rate of them stays a number.
    let bytes = def.rate.is_none() && def.value == "memory_bytes";
    let show = |x: f64| if bytes && x >= 1.0 { Bytes(x as u64).to_string() } else { figure(x) };
    let v = value.map_or_else(|| "none".to_owned(), show);
    let (op, limit) = match condition {
        Condition::Above(x) => (if holds { ">" } else { "<=" }, show(x)),
        Condition::Below(x) => (if holds { "<" } else { ">=" }, show(x)),
        Condition::Absent(d) => {
            let age = humantime::format_duration(std::time::Duration::from_secs(value.unwrap_or(0.0) as u64));
            let limit = humantime::format_duration(d);
            return if holds {
                format!("{}: no new {} for {age} (absent {limit})", def.name, def.value)
            } else {
                format!("{}: {} has a new value", def.name, def.value)
            };
        }
        Condition::Anomaly(k) => {
            let window = def.window.map(|w| w.to_string()).unwrap_or_default();
            let how = if holds { "more" } else { "no more" };
            return format!(
                "{}: {what} {v} is {how} than {} standard deviations from the {window} mean",
                def.name,
                figure(k)
            );
        }
    };
    format!("{}: {what} {v} {op} {limit}", def.name)
}

/// A figure for messages: at most three decimals, no trailing zeros.
fn figure(x: f64) -> String {
    let s = format!("{x:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" { "0".to_owned() } else { s.to_owned() }
}

pub mod bench;
#[cfg(test)]
mod tests;

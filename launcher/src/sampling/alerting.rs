//! The sampler's second half: after each sample, the resource readings go to the supervisors
//! of agents with limits, and the `[[alert]]` rules are evaluated over what the launcher has
//! per agent (see [`crate::alerts`]); firings and resolutions become events, and the firing set
//! is written for readers when it changes (and, while alerts fire, every
//! [`REWRITE_EVERY`] so their values stay current).

use crate::alerts::{AgentValues, Change, Engine};
use crate::manager::fleet::Roster;
use crate::supervisor::Command;
use agentvisor_shared::model::{EventKind, FiringAlert, Severity};
use agentvisor_shared::{Sample, WriteOp, WriterHandle};
use std::collections::HashMap;
use tokio::sync::mpsc;

/// How often the values of firing alerts are rewritten while the set stays the same.
pub const REWRITE_EVERY: i64 = 5_000;

/// One agent's process tree at one sample.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reading {
    /// The run's process group (its main process's PID).
    pub pgid: i32,
    pub cpu_percent: Option<f64>,
    pub memory_bytes: u64,
    pub threads: i64,
}

#[derive(Default)]
pub struct Alerting {
    engine: Engine,
    /// The values of the last evaluation, reused (no allocation per agent per sample).
    values: Vec<(String, AgentValues)>,
    changes: Vec<Change>,
    /// What was last written, and when.
    written: Option<(Vec<FiringAlert>, i64)>,
    /// The supervisors' custom metrics as they flush them, and the newest of each per agent.
    pub metrics: Option<mpsc::Receiver<Vec<Sample>>>,
    custom: HashMap<String, HashMap<String, (i64, f64)>>,
}

impl Alerting {
    /// Hands out the readings and evaluates the rules at `now_ms`.
    pub fn after_sample(
        &mut self,
        roster: &Roster,
        readings: &HashMap<String, Reading>,
        writer: &WriterHandle,
        now_ms: i64,
    ) {
        roster.tell_usage(|name| {
            readings.get(name).map(|r| Command::Usage {
                pid: r.pgid,
                cpu_percent: r.cpu_percent,
                memory_bytes: r.memory_bytes,
            })
        });
        self.engine.set_rules(roster.alerts(), now_ms, &mut self.changes);
        self.take_metrics();
        if !self.engine.is_empty() {
            self.gather(roster, readings, now_ms);
            let agents = self.values.iter().map(|(n, v)| (n.as_str(), v));
            self.engine.evaluate(now_ms, agents, &mut self.changes);
        }
        for change in self.changes.drain(..) {
            let (kind, severity, a) = match change {
                Change::Fired(a) => (EventKind::AlertFiring, a.severity, a),
                Change::Resolved(a) => (EventKind::AlertResolved, Severity::Info, a),
            };
            crate::event::record(writer, Some(&a.agent), kind, severity, a.message);
        }
        let firing = self.engine.firing();
        let due = match &self.written {
            None => true,
            Some((last, at)) => {
                let same_set = last.len() == firing.len()
                    && last.iter().zip(&firing).all(|(a, b)| (&a.rule, &a.agent) == (&b.rule, &b.agent));
                !same_set || (*last != firing && now_ms - at >= REWRITE_EVERY)
            }
        };
        if due {
            if writer.send(WriteOp::Alerts(firing.clone())).is_err() {
                tracing::error!("the store's writer is gone; firing alerts not recorded");
            }
            self.written = Some((firing, now_ms));
        }
    }

    /// Keeps the newest value of each custom metric (drained even without rules, so the
    /// queue never fills).
    fn take_metrics(&mut self) {
        let Some(rx) = &mut self.metrics else { return };
        while let Ok(batch) = rx.try_recv() {
            for s in batch {
                let newest =
                    self.custom.entry(s.scope).or_default().entry(s.metric).or_insert((s.ts_ms, s.value));
                if s.ts_ms >= newest.0 {
                    *newest = (s.ts_ms, s.value);
                }
            }
        }
    }

    /// Each agent's values now: the readings, and what its status says.
    fn gather(&mut self, roster: &Roster, readings: &HashMap<String, Reading>, now_ms: i64) {
        let values = &mut self.values;
        let custom = &mut self.custom;
        roster.with_members(|members| {
            // Agents removed since: only looked for once more agents report than exist.
            if custom.len() > members.len() {
                let names: std::collections::HashSet<&str> =
                    members.iter().map(|(n, _)| n.as_str()).collect();
                custom.retain(|agent, _| names.contains(agent.as_str()));
            }
            values.truncate(members.len());
            for (i, (name, rx)) in members.iter().enumerate() {
                if values.get(i).is_none_or(|(n, _)| n != name) {
                    values.insert(i, (name.clone(), AgentValues::default()));
                    values.truncate(members.len());
                }
                let v = &mut values[i].1;
                let st = rx.borrow();
                let r = readings.get(name);
                v.running = st.lifecycle.state.has_process();
                v.cpu_percent = r.and_then(|r| r.cpu_percent);
                v.memory_bytes = r.map(|r| r.memory_bytes as f64);
                v.threads = r.map(|r| r.threads as f64);
                v.cost = st.reported.cost;
                v.tokens_in = st.reported.tokens_in.map(|n| n as f64);
                v.tokens_out = st.reported.tokens_out.map(|n| n as f64);
                v.restarts = st.lifecycle.restarts as f64;
                match custom.get(name) {
                    Some(c) => v.custom.clone_from(c),
                    None => v.custom.clear(),
                }
                v.heartbeat_age_s = st
                    .reported
                    .last_heartbeat_ms
                    .filter(|_| v.running)
                    .map(|at| (now_ms - at).max(0) as f64 / 1000.0);
            }
        });
    }
}

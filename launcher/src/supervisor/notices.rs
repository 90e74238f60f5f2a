//! What the agent says through its notify socket or pipe, applied to its status.

use super::Supervisor;
use super::machine::Input;
use crate::notify::{Notice, Parsed};
use agentvisor_shared::Sample;
use agentvisor_shared::model::{EventKind, Health, Severity};
use agentvisor_shared::time::now_ms;

/// Distinct `X_METRIC_*` names an agent may use; more are counted as malformed.
pub const MAX_CUSTOM_METRICS: usize = 64;

impl Supervisor {
    /// Applies what the message reports. A sign of life (a heartbeat or `READY=1`) is
    /// returned as the machine's input: readiness is its decision. Health changes are written
    /// at once; everything else is coalesced into the next flush.
    pub(super) fn apply(&mut self, parsed: Parsed) -> Option<Input> {
        let mut alive = false;
        let mut ready = false;
        let mut changed = false;
        if parsed.malformed > 0 {
            self.status.reported.notify_errors += i64::from(parsed.malformed);
            tracing::debug!(agent = %self.status.agent, count = parsed.malformed, "malformed notify message");
            self.dirty = true;
        }
        let now = now_ms();
        for notice in parsed.notices {
            self.dirty = true;
            let st = &mut self.status;
            match notice {
                Notice::Ready => {
                    alive = true;
                    ready = true;
                    #[cfg(debug_assertions)]
                    if !st.lifecycle.ready {
                        crate::supervisor::fault::panic_on_ready(&st.agent);
                    }
                }
                Notice::Watchdog => {
                    alive = true;
                    st.reported.heartbeats += 1;
                    st.reported.last_heartbeat_ms = Some(now);
                    if st.lifecycle.health != Health::Healthy {
                        let resumed = st.lifecycle.health == Health::Unhealthy;
                        st.lifecycle.health = Health::Healthy;
                        changed = true;
                        if resumed {
                            self.event(
                                EventKind::HeartbeatResumed,
                                Severity::Info,
                                "heartbeats resumed".into(),
                            );
                        }
                    }
                }
                Notice::Stopping => {
                    self.event(
                        EventKind::AgentStopping,
                        Severity::Info,
                        "the agent says it is stopping (STOPPING=1)".into(),
                    );
                }
                Notice::Status(text) => st.reported.status_text = Some(text),
                Notice::Errno(n) => {
                    let desc =
                        i32::try_from(n).map(|n| nix::errno::Errno::from_raw(n).desc()).unwrap_or("unknown");
                    st.lifecycle.last_error = Some(format!("errno {n}: {desc}"));
                }
                Notice::Task(t) => self.task_reported(t),
                Notice::TaskDone(ok) => self.task_done(ok),
                Notice::Model(m) => st.reported.model = Some(m),
                Notice::TokensIn(n) => (st.reported.tokens_in, self.run.tokens_in) = (Some(n), Some(n)),
                Notice::TokensOut(n) => (st.reported.tokens_out, self.run.tokens_out) = (Some(n), Some(n)),
                Notice::Cost(c) => (st.reported.cost, self.run.cost) = (Some(c), Some(c)),
                Notice::Error(e) => {
                    if st.lifecycle.last_error.as_deref() != Some(e.as_str()) {
                        st.lifecycle.last_error = Some(e.clone());
                        self.agent_event(EventKind::AgentError, Severity::Warning, e);
                    }
                }
                Notice::Metric(metric, value) => {
                    // Each new name is a new series in the database: a bounded number per agent.
                    if !self.metric_names.contains(&metric) {
                        if self.metric_names.len() >= MAX_CUSTOM_METRICS {
                            st.reported.notify_errors += 1;
                            tracing::debug!(agent = %st.agent, metric, "too many custom metrics; ignored");
                            continue;
                        }
                        self.metric_names.insert(metric.clone());
                    }
                    let scope = st.agent.clone();
                    self.samples.push(Sample { scope, metric, ts_ms: now, value });
                }
            }
        }
        if changed {
            self.commit();
        }
        alive.then_some(Input::Alive { ready })
    }
}

//! A probe's consecutive results and its state after the thresholds (`success_threshold`,
//! `failure_threshold`), as the state machine keeps them per run. Pure: no clock, no I/O.

use crate::config::probe::ProbeConfig;
use crate::config::{AgentConfig, Ready};
use crate::probe::{ProbeState, Role};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub state: ProbeState,
    pub successes: u32,
    pub failures: u32,
}

impl Tally {
    /// Counts one result; the state before it if the state changed.
    pub fn record(&mut self, ok: bool, p: &ProbeConfig) -> Option<ProbeState> {
        let before = self.state;
        if ok {
            self.successes = self.successes.saturating_add(1);
            self.failures = 0;
            if self.successes >= p.success_threshold {
                self.state = ProbeState::Passing;
            }
        } else {
            self.failures = self.failures.saturating_add(1);
            self.successes = 0;
            if self.failures >= p.failure_threshold {
                self.state = ProbeState::Failing;
            }
        }
        (self.state != before).then_some(before)
    }
}

/// The agent's `role` probe, if configured.
pub fn probe_of(cfg: &AgentConfig, role: Role) -> Option<&ProbeConfig> {
    match role {
        Role::Readiness => cfg.readiness.as_ref(),
        Role::Liveness => cfg.liveness.as_ref(),
    }
}

/// What the agent is waiting for while starting, for the `ready_timeout` message.
pub fn awaited(cfg: &AgentConfig) -> &'static str {
    if cfg.ready == Ready::Notify {
        "no READY=1"
    } else if cfg.readiness.is_some() {
        "the readiness probe did not pass"
    } else {
        "no output line matched ready_log_line"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_count_results_in_a_row() {
        let p: ProbeConfig =
            toml::from_str("tcp = \"h:1\"\nsuccess_threshold = 2\nfailure_threshold = 2").unwrap();
        let mut t = Tally::default();
        assert_eq!(t.record(true, &p), None);
        assert_eq!(t.record(false, &p), None, "a failure resets the successes");
        assert_eq!(t.record(false, &p), Some(ProbeState::Unknown));
        assert_eq!(t, Tally { state: ProbeState::Failing, successes: 0, failures: 2 });
        assert_eq!(t.record(false, &p), None, "failing again is no change");
        assert_eq!(t.record(true, &p), None);
        assert_eq!(t.record(true, &p), Some(ProbeState::Failing));
        assert_eq!(t.state, ProbeState::Passing);
    }
}

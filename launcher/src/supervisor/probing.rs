//! The shell's part for probes: it starts and stops the probe tasks the machine asks for,
//! turns their reports (and `ready_log_line` matches) into inputs, and keeps the results that
//! are written to the `probes` table and shown by the dashboard.

use super::Supervisor;
use super::machine::Input;
use super::tally::Tally;
use crate::capture::ready_line::ReadyLine;
use crate::probe::{self, ProbeState, Report, Role};
use agentvisor_shared::model::{EventKind, Severity};
use agentvisor_shared::time::now_ms;
use std::sync::Arc;

impl Supervisor {
    /// Starts (`on`) or stops the run's `role` probe.
    pub(super) fn probe(&mut self, role: Role, on: bool) {
        let p = &mut self.probes;
        p.running[role as usize] = match (&p.specs[role as usize], on) {
            (Some(spec), true) => Some(probe::start(spec.clone(), self.pid, p.tx.clone())),
            _ => None,
        };
    }

    pub(super) fn stop_probes(&mut self) {
        self.probes.running = [None, None];
    }

    /// A new run: its probes start from nothing (the last results stay shown until replaced).
    pub(super) fn reset_probes(&mut self) {
        for row in self.probes.rows.iter_mut().flatten() {
            row.state = ProbeState::Unknown;
            row.consecutive_successes = 0;
            row.consecutive_failures = 0;
        }
        self.probes.dirty = true;
    }

    /// The machine's count of a probe's results.
    pub(super) fn tally(&mut self, role: Role, t: Tally) {
        if let Some(row) = &mut self.probes.rows[role as usize] {
            row.state = t.state;
            row.consecutive_successes = i64::from(t.successes);
            row.consecutive_failures = i64::from(t.failures);
            self.probes.dirty = true;
        }
    }

    /// A report from a probe or an output watch: the machine's input, if it is about this run.
    pub(super) fn reported(&mut self, report: Report) -> Option<Input> {
        match report {
            Report::Checked { run, role, outcome } if run == self.pid => {
                if let Some(row) = &mut self.probes.rows[role as usize] {
                    row.last_ok = Some(outcome.ok);
                    row.last_ms = Some(now_ms());
                    row.latency_ms = Some(outcome.latency.as_secs_f64() * 1000.0);
                    row.message = Some(outcome.message.clone());
                    self.probes.dirty = true;
                }
                Some(Input::Probe { role, ok: outcome.ok, detail: outcome.message })
            }
            Report::ReadyLine { run } if run == self.pid => Some(Input::ReadyLine),
            _ => None,
        }
    }

    /// The run's `ready_log_line` watch for its two output streams, if one is configured.
    pub(super) fn ready_lines(&self) -> (Option<ReadyLine>, Option<ReadyLine>) {
        let Some(regex) = &self.probes.ready_line else {
            if self.s.cfg.ready_log_line.is_some() {
                // Validation compiled it; should it fail here, the agent is never ready by a
                // line and its ready_timeout says so.
                self.event(
                    EventKind::ProbeFailed,
                    Severity::Error,
                    "ready_log_line cannot be compiled".into(),
                );
            }
            return (None, None);
        };
        let (tx, run) = (self.probes.tx.clone(), self.pid);
        // A full channel means reports are waiting anyway; the line is not lost for long,
        // as a lost match would be: try_send from the capture task, never a wait.
        let found = Arc::new(move || {
            if tx.try_send(Report::ReadyLine { run }).is_err() {
                let tx = tx.clone();
                tokio::spawn(async move {
                    let _ = tx.send(Report::ReadyLine { run }).await;
                });
            }
        });
        let (out, err) = ReadyLine::pair(regex.clone(), found);
        (Some(out), Some(err))
    }
}

//! The shell's part for probes: it starts and stops the probe tasks the machine asks for,
//! turns their reports (and `ready_log_line` matches) into inputs, and keeps the results that
//! are written to the `probes` table and shown by the dashboard.

use super::Supervisor;
use super::machine::{Input, Tally};
use crate::capture::ready_line::ReadyLine;
use crate::config::probe::ready_line_regex;
use crate::probe::{self, Report, Role, Spec};
use agentvisor_shared::WriteOp;
use agentvisor_shared::model::{EventKind, Severity};
use agentvisor_shared::probes::{ProbeState, ProbeStatus};
use agentvisor_shared::time::now_ms;
use regex::Regex;
use std::sync::Arc;
use tokio::sync::mpsc;

/// Reports waiting for the supervisor, per agent: a probe waits while they are not taken.
const REPORTS: usize = 8;

/// An agent's probes as its supervisor holds them.
pub(super) struct Probes {
    specs: [Option<Arc<Spec>>; 2],
    running: [Option<probe::Running>; 2],
    pub(super) tx: mpsc::Sender<Report>,
    pub(super) rx: mpsc::Receiver<Report>,
    ready_line: Option<Arc<Regex>>,
    /// The rows of the configured probes, by role.
    rows: [Option<ProbeStatus>; 2],
    /// Rows changed since they were last handed to the writer.
    pub(super) dirty: bool,
}

impl Probes {
    pub(super) fn new(s: &super::Setup) -> Probes {
        let (tx, rx) = mpsc::channel(REPORTS);
        let specs = Role::ALL.map(|role| Spec::of(&s.cfg, role, s.working_dir.clone()).map(Arc::new));
        let rows = specs.each_ref().map(|spec| {
            spec.as_ref().map(|spec| ProbeStatus {
                agent: s.cfg.name.clone(),
                probe: spec.role,
                kind: spec.target.kind().to_owned(),
                target: spec.target.describe(),
                state: ProbeState::Unknown,
                last_ok: None,
                last_ms: None,
                latency_ms: None,
                consecutive_successes: 0,
                consecutive_failures: 0,
                message: None,
            })
        });
        let ready_line = s.cfg.ready_log_line.as_deref().and_then(|p| ready_line_regex(p).ok()).map(Arc::new);
        Probes { specs, running: [None, None], tx, rx, ready_line, rows, dirty: false }
    }

    /// The write that replaces the agent's rows with these (none: no probe is configured).
    pub(super) fn write_op(&mut self, agent: &str) -> WriteOp {
        self.dirty = false;
        WriteOp::Probes { agent: agent.to_owned(), rows: self.rows.iter().flatten().cloned().collect() }
    }
}

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

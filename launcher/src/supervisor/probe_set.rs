//! What a supervisor holds of its agent's probes: the probes to run, the running ones, the
//! channel their reports come on, and the rows shown for them.

use crate::config::AgentConfig;
use crate::config::probe::ready_line_regex;
use crate::probe::{self, Report, Role, Spec};
use agentvisor_shared::WriteOp;
use agentvisor_shared::probes::{ProbeState, ProbeStatus};
use regex::Regex;
use std::path::Path;
use std::sync::Arc;
use tokio::sync::mpsc;

/// Reports waiting for the supervisor, per agent: a probe waits while they are not taken.
const REPORTS: usize = 8;

/// An agent's probes as its supervisor holds them.
pub(super) struct Probes {
    pub(super) specs: [Option<Arc<Spec>>; 2],
    pub(super) running: [Option<probe::Running>; 2],
    pub(super) tx: mpsc::Sender<Report>,
    pub(super) rx: mpsc::Receiver<Report>,
    pub(super) ready_line: Option<Arc<Regex>>,
    /// The rows of the configured probes, by role.
    pub(super) rows: [Option<ProbeStatus>; 2],
    /// Rows changed since they were last handed to the writer.
    pub(super) dirty: bool,
}

impl Probes {
    pub(super) fn new(cfg: &AgentConfig, working_dir: &Path) -> Probes {
        let (tx, rx) = mpsc::channel(REPORTS);
        let specs = Role::ALL.map(|role| Spec::of(cfg, role, working_dir.to_owned()).map(Arc::new));
        let rows = specs.each_ref().map(|spec| {
            spec.as_ref().map(|spec| ProbeStatus {
                agent: cfg.name.clone(),
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
        let ready_line = cfg.ready_log_line.as_deref().and_then(|p| ready_line_regex(p).ok()).map(Arc::new);
        Probes { specs, running: [None, None], tx, rx, ready_line, rows, dirty: false }
    }

    /// The write that replaces the agent's rows with these (none: no probe is configured).
    pub(super) fn write_op(&mut self, agent: &str) -> WriteOp {
        self.dirty = false;
        WriteOp::Probes { agent: agent.to_owned(), rows: self.rows.iter().flatten().cloned().collect() }
    }
}

//! What the writer can be asked to write: [`WriteOp`] and the rows it carries.

use crate::model::{AgentSpec, AgentStatus, DesiredState, EventKind, FiringAlert, Severity, Stream};

/// One sample of one series. `scope` is an agent name,
/// [`metric::HOST`](crate::model::metric::HOST) or
/// [`metric::LAUNCHER`](crate::model::metric::LAUNCHER).
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub scope: String,
    pub metric: String,
    pub ts_ms: i64,
    pub value: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    pub ts_ms: i64,
    pub agent: Option<String>,
    pub kind: EventKind,
    pub severity: Severity,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewLogLine {
    pub agent: String,
    pub stream: Stream,
    pub ts_ms: i64,
    pub line: String,
}

/// What the writer can be asked to write.
#[derive(Debug, Clone, PartialEq)]
pub enum WriteOp {
    /// Insert or update an agent's registry row (and give it a state row if it has none).
    RegisterAgent(Box<AgentSpec>),
    SetDesired {
        agent: String,
        desired: DesiredState,
    },
    /// Who stopped the agent on request (`alice (ctl)`); `None` once it is started again.
    StoppedBy {
        agent: String,
        by: Option<String>,
    },
    /// Marks every registered agent not named in `keep` removed (as a reload marks an agent
    /// gone from the config), with an `agent_removed` event for each saying `reason`.
    RemoveUnlisted {
        keep: Vec<String>,
        reason: String,
    },
    Status(Box<AgentStatus>),
    Event(NewEvent),
    Samples(Vec<Sample>),
    Logs(Vec<NewLogLine>),
    /// The launcher is alive; `status` is its one-line summary ("5/6 agents running").
    SessionAlive {
        ts_ms: i64,
        status: Option<String>,
    },
    SessionEnded {
        ts_ms: i64,
        reason: String,
    },
    /// The agent's processes outside its process group now (replacing what was written
    /// before): `(pid, start ticks)`.
    Escapees {
        agent: String,
        processes: Vec<(i64, i64)>,
    },
    /// The agent's probe results now (replacing what was written before; empty: no probes).
    Probes {
        agent: String,
        rows: Vec<crate::probes::ProbeStatus>,
    },
    /// The alerts firing now, replacing every row written before.
    Alerts(Vec<FiringAlert>),
}

//! What the writer can be asked to write: [`WriteOp`] and the rows it carries.

use crate::model::{
    AgentSpec, AgentStatus, DesiredState, EventKind, FiringAlert, RunOutcome, RunTrigger, Severity, Stream,
};

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

/// A run as it begins: one row of `runs` (docs/schema.md). `id` comes from
/// [`WriterHandle::new_run_id`](super::WriterHandle::new_run_id), so the caller can end the
/// run later without waiting for the writer. `agent` is the name its output is captured
/// under (`log_lines.agent`): an agent's, or a hook's for [`RunTrigger::Hook`].
#[derive(Debug, Clone, PartialEq)]
pub struct NewRun {
    pub id: i64,
    pub agent: String,
    pub trigger: RunTrigger,
    /// 0 for a first attempt; 1, 2, ... for retries of a failed run.
    pub attempt: i64,
    /// Who asked for a manual run.
    pub user: Option<String>,
    /// For a hook run: the agent its event was about.
    pub subject: Option<String>,
    /// What started it, in words (a hook's event).
    pub detail: Option<String>,
    pub due_ms: Option<i64>,
    pub ts_ms: i64,
    pub pid: Option<i64>,
}

/// How a run ended. Tokens and cost are what the run reported while it ran.
#[derive(Debug, Clone, PartialEq)]
pub struct RunEnd {
    pub id: i64,
    pub ended_ms: i64,
    pub outcome: RunOutcome,
    pub exit_code: Option<i64>,
    pub exit_signal: Option<i64>,
    pub tokens_in: Option<i64>,
    pub tokens_out: Option<i64>,
    pub cost: Option<f64>,
    /// Why it ended so (a spawn error, "timed out after 5s"), or why it was skipped.
    pub message: Option<String>,
}

/// A task an agent began (`X_TASK`): one row of `tasks`, open until a [`TaskEnd`].
#[derive(Debug, Clone, PartialEq)]
pub struct NewTask {
    pub agent: String,
    pub text: String,
    pub ts_ms: i64,
    /// The run (`runs.id`) of the process that reported it.
    pub run_id: Option<i64>,
}

/// The end of an agent's open task; tokens and cost are what it reported while the task ran.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskEnd {
    pub agent: String,
    pub ended_ms: i64,
    pub outcome: crate::model::TaskOutcome,
    pub tokens_in: Option<i64>,
    pub tokens_out: Option<i64>,
    pub cost: Option<f64>,
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
    /// An agent began a task; an agent has at most one open task, ended by [`WriteOp::TaskEnded`].
    TaskStarted(Box<NewTask>),
    TaskEnded(Box<TaskEnd>),
    /// A run began (its row is inserted with no outcome). Captured output of `agent` is
    /// counted to its newest run that was not skipped, until the next one begins.
    RunStarted(Box<NewRun>),
    /// A run ended; a skipped run is a [`WriteOp::RunStarted`] ended at once.
    RunEnded(Box<RunEnd>),
    /// When the agent's next scheduled run is due (`agent_state.next_run_ms`); `None` when it
    /// has no schedule or its schedule is paused.
    NextRun {
        agent: String,
        next_ms: Option<i64>,
    },
}

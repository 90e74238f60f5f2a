//! What the supervisor holds about runs: the run its process belongs to, and a scheduled
//! agent's schedule. Apart from `runs.rs`, which acts on them, so that the supervisor's own
//! module can hold them without importing the code that uses it.

use super::machine::RunRequest;
use crate::schedule::Plan;

/// The run the agent's process belongs to.
#[derive(Debug)]
pub(super) struct Current {
    pub(super) request: RunRequest,
    pub(super) attempt: i64,
    /// Its `runs.id` once recorded.
    pub(super) id: Option<i64>,
    /// The running totals the agent reported during the run.
    pub(super) tokens_in: Option<i64>,
    pub(super) tokens_out: Option<i64>,
    pub(super) cost: Option<f64>,
}

impl Default for Current {
    fn default() -> Self {
        Current {
            request: RunRequest::start(),
            attempt: 0,
            id: None,
            tokens_in: None,
            tokens_out: None,
            cost: None,
        }
    }
}

/// A scheduled agent's schedule: its plan and the due time its timer is armed for.
pub(super) struct Scheduler {
    pub(super) plan: Plan,
    pub(super) next_due_ms: Option<i64>,
}

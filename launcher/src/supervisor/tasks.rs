//! Tasks the agent reports: `X_TASK=text` begins one (a different text ends the one before,
//! as `ended`), `X_TASK_DONE=ok|failed` or an empty `X_TASK` ends it, and so does the end of
//! the process (`interrupted`). Each is a row of `tasks` with the tokens and cost the agent's
//! running totals grew by while it ran. Like the rest of what an agent reports, this decides
//! nothing about supervision.

use super::{OpenTask, Supervisor};
use agentvisor_shared::model::TaskOutcome;
use agentvisor_shared::time::now_ms;
use agentvisor_shared::{NewTask, TaskEnd, WriteOp};

impl Supervisor {
    /// `X_TASK=text`.
    pub(super) fn task_reported(&mut self, text: String) {
        if text.is_empty() {
            self.status.reported.task = None;
            self.task_over(TaskOutcome::Ended);
            return;
        }
        if self.task.as_ref().is_some_and(|t| t.text == text) {
            return;
        }
        self.task_over(TaskOutcome::Ended);
        self.status.reported.task = Some(text.clone());
        self.task = Some(OpenTask {
            text: text.clone(),
            tokens_in: self.run.tokens_in,
            tokens_out: self.run.tokens_out,
            cost: self.run.cost,
        });
        let op = WriteOp::TaskStarted(Box::new(NewTask {
            agent: self.status.agent.clone(),
            text,
            ts_ms: now_ms(),
            run_id: self.run.id,
        }));
        self.send_task(op);
    }

    /// `X_TASK_DONE=ok` or `=failed`: the task is over; the agent works on nothing it said.
    pub(super) fn task_done(&mut self, ok: bool) {
        self.status.reported.task = None;
        self.task_over(if ok { TaskOutcome::Ok } else { TaskOutcome::Failed });
    }

    /// Ends the open task, if there is one.
    pub(super) fn task_over(&mut self, outcome: TaskOutcome) {
        let Some(t) = self.task.take() else { return };
        let op = WriteOp::TaskEnded(Box::new(TaskEnd {
            agent: self.status.agent.clone(),
            ended_ms: now_ms(),
            outcome,
            tokens_in: grown(t.tokens_in, self.run.tokens_in),
            tokens_out: grown(t.tokens_out, self.run.tokens_out),
            cost: grown(t.cost, self.run.cost),
        }));
        self.send_task(op);
    }

    fn send_task(&self, op: WriteOp) {
        if self.s.writer.send(op).is_err() {
            tracing::error!(agent = %self.status.agent, "the store's writer is gone; task not recorded");
        }
    }
}

/// How much a running total grew between two reports; `None` when nothing was reported after
/// the task began. A total that went down (the agent started counting again) counts from 0.
fn grown<T: Copy + PartialOrd + std::ops::Sub<Output = T>>(before: Option<T>, now: Option<T>) -> Option<T> {
    match (before, now) {
        (_, None) => None,
        (None, Some(n)) => Some(n),
        (Some(b), Some(n)) if n < b => Some(n),
        (Some(b), Some(n)) => Some(n - b),
    }
}

#[cfg(test)]
mod tests {
    use super::grown;

    #[test]
    fn growth_of_running_totals() {
        assert_eq!(grown(Some(100), Some(250)), Some(150));
        assert_eq!(grown(None, Some(40)), Some(40));
        assert_eq!(grown::<i64>(Some(10), None), None);
        assert_eq!(grown(Some(500), Some(30)), Some(30));
        assert_eq!(grown(Some(0.25), Some(1.0)), Some(0.75));
    }
}

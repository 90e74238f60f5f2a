//! The shell's side of runs: each process start recorded as a run (`runs`), and a scheduled
//! agent's schedule timer, which turns due times into [`Input::RunDue`]. Whether a due run
//! starts, waits or is skipped is the machine's decision.

use super::Supervisor;
use super::machine::{Input, RunRequest, human};
use super::run_state::{Current, Scheduler};
use crate::schedule::Plan;
use agentvisor_shared::model::{EventKind, Health, RunOutcome, RunTrigger, Severity};
use agentvisor_shared::time::{now_ms, rfc3339};
use agentvisor_shared::{NewRun, RunEnd, WriteOp};
use std::time::Duration;
use tokio::time::Instant;

impl Supervisor {
    /// The next spawn is a new run for `request`.
    pub(super) fn run_starting(&mut self, request: RunRequest) {
        self.run = Current { request, ..Current::default() };
    }

    /// A restart by the restart policy: the next attempt of the same run.
    pub(super) fn run_retried(&mut self) {
        let request = self.run.request.clone();
        self.run = Current { request, attempt: self.run.attempt + 1, ..Current::default() };
    }

    /// Records the run's start (its process `pid`, or `None` when it could not be started).
    pub(super) fn run_began(&mut self, pid: Option<i64>) {
        let id = self.s.writer.new_run_id();
        self.run.id = Some(id);
        let r = &self.run.request;
        let op = WriteOp::RunStarted(Box::new(NewRun {
            id,
            agent: self.status.agent.clone(),
            trigger: r.trigger,
            attempt: self.run.attempt,
            user: r.user.clone(),
            subject: None,
            detail: None,
            due_ms: r.due_ms,
            ts_ms: now_ms(),
            pid,
        }));
        self.send(op);
    }

    /// Records how the run ended; a scheduled agent's health is its last run's outcome.
    pub(super) fn run_ended(&mut self, outcome: RunOutcome) {
        let Some(id) = self.run.id.take() else { return };
        if self.s.cfg.schedule.is_some() {
            self.status.lifecycle.health = match outcome {
                RunOutcome::Succeeded => Health::Healthy,
                RunOutcome::Stopped | RunOutcome::Skipped => Health::Unknown,
                RunOutcome::Failed | RunOutcome::TimedOut | RunOutcome::Lost => Health::Unhealthy,
            };
        }
        let l = &self.status.lifecycle;
        let message = match outcome {
            RunOutcome::Failed if l.exit_code.is_none() && l.exit_signal.is_none() => l.last_error.clone(),
            RunOutcome::TimedOut => self
                .s
                .cfg
                .schedule
                .as_ref()
                .and_then(|s| s.timeout)
                .map(|t| format!("ran past its timeout of {}", human(t.get()))),
            _ => None,
        };
        let op = WriteOp::RunEnded(Box::new(RunEnd {
            id,
            ended_ms: now_ms(),
            outcome,
            exit_code: l.exit_code,
            exit_signal: l.exit_signal,
            tokens_in: self.run.tokens_in,
            tokens_out: self.run.tokens_out,
            cost: self.run.cost,
            message,
        }));
        self.send(op);
    }

    /// Records a run that came due while another ran, as skipped.
    pub(super) fn run_skipped(&mut self, request: RunRequest) {
        let id = self.s.writer.new_run_id();
        let now = now_ms();
        let due = request.due_ms.map_or_else(|| "now".to_owned(), rfc3339);
        let message = format!("due {due} while the previous run still ran (overlap = skip)");
        self.send(WriteOp::RunStarted(Box::new(NewRun {
            id,
            agent: self.status.agent.clone(),
            trigger: request.trigger,
            attempt: 0,
            user: request.user,
            subject: None,
            detail: None,
            due_ms: request.due_ms,
            ts_ms: now,
            pid: None,
        })));
        self.send(WriteOp::RunEnded(Box::new(RunEnd {
            id,
            ended_ms: now,
            outcome: RunOutcome::Skipped,
            exit_code: None,
            exit_signal: None,
            tokens_in: None,
            tokens_out: None,
            cost: None,
            message: Some(message.clone()),
        })));
        self.event(EventKind::RunSkipped, Severity::Warning, format!("run skipped: {message}"));
    }

    /// Runs the schedule's timer (`true`) from now, or stops it (the schedule is paused).
    pub(super) fn schedule(&mut self, on: bool) {
        if on {
            self.arm_next_due(now_ms());
        } else {
            self.due_timer.disarm();
            if let Some(s) = &mut self.scheduler {
                s.next_due_ms = None;
            }
            self.send(WriteOp::NextRun { agent: self.status.agent.clone(), next_ms: None });
        }
    }

    /// Arms the schedule's timer for the first due time after `after_ms` (plus jitter).
    fn arm_next_due(&mut self, after_ms: i64) {
        let Some(s) = &mut self.scheduler else { return };
        let now = now_ms();
        s.next_due_ms = s.plan.next_after(after_ms);
        match s.next_due_ms {
            Some(due) => {
                let wait = Duration::from_millis(u64::try_from(due - now).unwrap_or(0)) + s.plan.jitter();
                self.due_timer.arm(Instant::now() + wait);
            }
            None => self.due_timer.disarm(),
        }
        let next_ms = s.next_due_ms;
        self.send(WriteOp::NextRun { agent: self.status.agent.clone(), next_ms });
    }

    /// The schedule's timer fired: the run due is the machine's input, and the timer moves on
    /// to the next due time after this one (or after now, when the launcher ran late: missed
    /// due times are not made up in a burst).
    pub(super) fn due_fired(&mut self) {
        let due = self.scheduler.as_ref().and_then(|s| s.next_due_ms);
        let request = RunRequest { trigger: RunTrigger::Schedule, due_ms: due, user: None };
        self.queue.push_back(Input::RunDue(request));
        self.arm_next_due(due.unwrap_or(0).max(now_ms()));
    }

    /// At the supervisor's start: the schedule's plan, and the run to make at once, if any
    /// (one that a launcher that was down missed, with `catch_up`; else `run_on_start`).
    pub(super) fn start_schedule(&mut self) {
        let Some(s) = self.s.cfg.schedule.clone() else { return };
        let now = now_ms();
        let last_due = self.s.last_due_ms.take();
        let missed = last_due.filter(|_| s.catch_up).and_then(|last| Plan::new(&s, last).missed(last, now));
        self.scheduler = Some(Scheduler { plan: Plan::new(&s, now), next_due_ms: None });
        let first = match missed {
            Some(due) => Some(RunRequest { trigger: RunTrigger::CatchUp, due_ms: Some(due), user: None }),
            None if s.run_on_start => {
                Some(RunRequest { trigger: RunTrigger::Schedule, due_ms: Some(now), user: None })
            }
            None => None,
        };
        self.queue.extend(first.map(Input::RunDue));
    }

    /// Hands an operation that must not be lost to the writer.
    fn send(&self, op: WriteOp) {
        if self.s.writer.send(op).is_err() {
            tracing::error!(agent = %self.status.agent, "the store's writer is gone; run not recorded");
        }
    }
}

//! Batching and urgency: what waits for the next commit, and how soon that commit is due.
//!
//! The rules live here apart from SQLite and the thread, so they are tested alone:
//! - an operation is [`Urgency::Urgent`] or [`Urgency::Routine`] by what it is and by the
//!   status already known for its agent ([`urgency`]);
//! - each agent's statuses fold into its newest one, critical if any of them was
//!   ([`Pending::add`]), and go last in the batch, after any registration of their agent;
//! - a batch is due when a flush waits, when it is full, or when its oldest urgent operation has
//!   waited a batch window or its oldest routine one the routine interval ([`Pending::due_in`]);
//! - bulk operations are admitted up to the bulk capacity; the rest are refused ([`BulkGate`]).

use super::config::WriterConfig;
use super::flush::FlushReply;
use super::ops::WriteOp;
use crate::model::AgentStatus;
use foldhash::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// What becomes of an operation the storage fails to take.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Delivery {
    /// Dropped and counted when the queue is full or the storage fails
    /// ([`WriterHandle::offer`](super::handle::WriterHandle::offer)).
    Bulk,
    /// Never dropped: kept and retried while the storage fails
    /// ([`WriterHandle::send`](super::handle::WriterHandle::send)).
    Critical,
}

/// How soon an operation is committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Urgency {
    /// One batch window after it arrives.
    Urgent,
    /// Up to the routine interval after it arrives, or with the next urgent commit.
    Routine,
}

/// An operation waiting for a commit, and what becomes of it if the commit fails.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Queued {
    pub(super) op: WriteOp,
    pub(super) delivery: Delivery,
}

impl Queued {
    pub(super) fn critical(op: WriteOp) -> Queued {
        Queued { op, delivery: Delivery::Critical }
    }
}

/// How soon `op` must be committed, given the status its agent has now (`known`: the one
/// waiting for a commit, else the one last committed). Metric values are routine, and so is a
/// status that changes only what the agent reports of itself (a heartbeat): a thousand
/// heartbeating agents then cost one commit per routine interval. Everything else (state
/// changes, events, log lines, registrations, the launcher's liveness ticks, which dashboards
/// judge it alive by) is urgent.
pub(super) fn urgency(op: &WriteOp, known: Option<&AgentStatus>) -> Urgency {
    match op {
        WriteOp::Samples(_) | WriteOp::Probes { .. } => Urgency::Routine,
        WriteOp::Status(s) if known.is_some_and(|k| k.same_lifecycle(s)) => Urgency::Routine,
        _ => Urgency::Urgent,
    }
}

/// An agent's newest status waiting for a commit; critical if any status it replaced was.
struct WaitingStatus {
    status: Box<AgentStatus>,
    delivery: Delivery,
}

/// What waits to be written: operations in arrival order, each agent's newest status, and the
/// callers waiting on a flush.
#[derive(Default)]
pub(super) struct Pending {
    ops: Vec<Queued>,
    /// A status row carries every field, so a later one supersedes an earlier one.
    statuses: HashMap<String, WaitingStatus>,
    flushes: Vec<FlushReply>,
    urgent_since: Option<Instant>,
    routine_since: Option<Instant>,
}

/// What one transaction writes, in order, and the callers to tell how it went.
pub(super) struct Batch {
    pub(super) ops: Vec<Queued>,
    pub(super) flushes: Vec<FlushReply>,
}

impl Pending {
    pub(super) fn len(&self) -> usize {
        self.ops.len() + self.statuses.len() + self.flushes.len()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether an urgent operation waits: the writer then naps through batch windows.
    pub(super) fn has_urgent(&self) -> bool {
        self.urgent_since.is_some()
    }

    /// Adds an operation that arrived at `now`; `committed` holds each agent's status as last
    /// committed.
    pub(super) fn add(&mut self, q: Queued, committed: &HashMap<String, Box<AgentStatus>>, now: Instant) {
        let known = match &q.op {
            WriteOp::Status(s) => match self.statuses.get(&s.agent) {
                Some(waiting) => Some(&*waiting.status),
                None => committed.get(&s.agent).map(|c| &**c),
            },
            _ => None,
        };
        let since = match urgency(&q.op, known) {
            Urgency::Urgent => &mut self.urgent_since,
            Urgency::Routine => &mut self.routine_since,
        };
        since.get_or_insert(now);
        match q.op {
            WriteOp::Status(status) => match self.statuses.get_mut(&status.agent) {
                Some(waiting) => {
                    waiting.delivery = waiting.delivery.max(q.delivery);
                    waiting.status = status;
                }
                None => {
                    self.statuses
                        .insert(status.agent.clone(), WaitingStatus { status, delivery: q.delivery });
                }
            },
            op => self.ops.push(Queued { op, delivery: q.delivery }),
        }
    }

    /// A caller waits until what is queued now is committed: that commit is due at once.
    pub(super) fn add_flush(&mut self, reply: FlushReply) {
        self.flushes.push(reply);
    }

    /// How long after `now` this must be committed; zero when it is due.
    pub(super) fn due_in(&self, cfg: &WriterConfig, now: Instant) -> Duration {
        if !self.flushes.is_empty() || self.len() >= cfg.max_batch || cfg.batch_window.is_zero() {
            return Duration::ZERO;
        }
        let left = |since: Option<Instant>, wait: Duration| {
            since.map_or(Duration::MAX, |t| wait.saturating_sub(now.saturating_duration_since(t)))
        };
        left(self.urgent_since, cfg.batch_window).min(left(self.routine_since, cfg.routine_interval))
    }

    /// The next transaction: `retry` (critical operations a failed one left) first, then what
    /// waits in arrival order, then the statuses, after any registration of their agent.
    pub(super) fn into_batch(self, retry: Vec<WriteOp>) -> Batch {
        let mut ops: Vec<Queued> = retry.into_iter().map(Queued::critical).collect();
        ops.extend(self.ops);
        ops.extend(
            self.statuses
                .into_values()
                .map(|w| Queued { op: WriteOp::Status(w.status), delivery: w.delivery }),
        );
        Batch { ops, flushes: self.flushes }
    }
}

/// Bounds the bulk operations waiting in the writer's queue: past the capacity, more are
/// refused (and the caller counts them dropped), so a stalled disk costs memory up to a bound
/// and never blocks a sender.
pub(super) struct BulkGate {
    queued: AtomicUsize,
    capacity: usize,
}

impl BulkGate {
    pub(super) fn new(capacity: usize) -> BulkGate {
        BulkGate { queued: AtomicUsize::new(0), capacity }
    }

    /// Whether one more bulk operation may be queued; counts it queued if so.
    pub(super) fn admit(&self) -> bool {
        if self.queued.load(Ordering::Relaxed) >= self.capacity {
            return false;
        }
        self.queued.fetch_add(1, Ordering::Relaxed);
        true
    }

    /// One admitted operation left the queue (the writer took it, or it was never sent).
    pub(super) fn release(&self) {
        self.queued.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{EventKind, Severity};
    use crate::writer::ops::{NewEvent, NewLogLine, Sample};

    /// `pid` stands for the lifecycle, `heartbeats` for what the agent reports.
    fn agent_status(agent: &str, pid: i64, heartbeats: i64) -> Box<AgentStatus> {
        let mut status = AgentStatus { agent: agent.into(), ..AgentStatus::default() };
        status.lifecycle.pid = Some(pid);
        status.reported.heartbeats = heartbeats;
        Box::new(status)
    }

    fn status(agent: &str, pid: i64, heartbeats: i64) -> WriteOp {
        WriteOp::Status(agent_status(agent, pid, heartbeats))
    }

    fn event() -> WriteOp {
        WriteOp::Event(NewEvent {
            ts_ms: 1,
            agent: None,
            kind: EventKind::Started,
            severity: Severity::Info,
            message: String::new(),
        })
    }

    fn samples() -> WriteOp {
        WriteOp::Samples(vec![Sample { scope: "a".into(), metric: "cpu".into(), ts_ms: 1, value: 1.0 }])
    }

    fn cfg() -> WriterConfig {
        WriterConfig {
            batch_window: Duration::from_millis(10),
            routine_interval: Duration::from_secs(1),
            max_batch: 4,
            ..WriterConfig::default()
        }
    }

    fn bulk(op: WriteOp) -> Queued {
        Queued { op, delivery: Delivery::Bulk }
    }

    #[test]
    fn what_is_urgent_and_what_is_routine() {
        let committed = agent_status("a", 1, 5);
        assert_eq!(urgency(&samples(), None), Urgency::Routine, "metric values wait");
        assert_eq!(urgency(&status("a", 1, 6), Some(&committed)), Urgency::Routine, "a heartbeat");
        assert_eq!(urgency(&status("a", 2, 6), Some(&committed)), Urgency::Urgent, "a new process");
        assert_eq!(urgency(&status("a", 1, 6), None), Urgency::Urgent, "an agent's first status");
        let logs = WriteOp::Logs(vec![NewLogLine {
            agent: "a".into(),
            stream: crate::model::Stream::Stdout,
            ts_ms: 1,
            line: "x".into(),
        }]);
        let others = [
            event(),
            logs,
            WriteOp::SessionAlive { ts_ms: 1, status: None },
            WriteOp::SessionEnded { ts_ms: 1, reason: "stopped".into() },
            WriteOp::RemoveUnlisted { keep: vec![], reason: "reload".into() },
            WriteOp::Escapees { agent: "a".into(), processes: vec![] },
        ];
        for op in others {
            assert_eq!(urgency(&op, Some(&committed)), Urgency::Urgent, "{op:?}");
        }
    }

    #[test]
    fn a_status_is_judged_against_the_one_waiting_then_the_committed_one() {
        let committed: HashMap<String, Box<AgentStatus>> =
            [("a".to_owned(), agent_status("a", 1, 0))].into_iter().collect();
        let now = Instant::now();
        let mut p = Pending::default();
        p.add(bulk(status("a", 1, 1)), &committed, now);
        assert!(!p.has_urgent(), "a heartbeat of the committed process is routine");
        p.add(bulk(status("a", 2, 0)), &committed, now);
        assert!(p.has_urgent(), "a restart is urgent");

        let mut p = Pending::default();
        p.add(bulk(status("a", 2, 0)), &committed, now);
        assert!(p.routine_since.is_none());
        p.add(bulk(status("a", 2, 1)), &committed, now);
        assert!(p.routine_since.is_some(), "a heartbeat of the restarted process waiting is routine");
        assert_eq!(p.len(), 1, "one row per agent however often it changed");
    }

    #[test]
    fn a_commit_is_due_after_the_window_of_its_oldest_operation() {
        let c = cfg();
        let t0 = Instant::now();
        let mut p = Pending::default();
        assert_eq!(p.due_in(&c, t0), Duration::MAX, "nothing waits");
        p.add(bulk(samples()), &HashMap::default(), t0);
        assert_eq!(p.due_in(&c, t0 + Duration::from_millis(400)), Duration::from_millis(600));
        assert_eq!(p.due_in(&c, t0 + Duration::from_secs(2)), Duration::ZERO);
        p.add(Queued::critical(event()), &HashMap::default(), t0 + Duration::from_millis(500));
        assert_eq!(p.due_in(&c, t0 + Duration::from_millis(504)), Duration::from_millis(6));
        p.add(Queued::critical(event()), &HashMap::default(), t0 + Duration::from_millis(508));
        assert_eq!(
            p.due_in(&c, t0 + Duration::from_millis(508)),
            Duration::from_millis(2),
            "the first one sets it"
        );
    }

    #[test]
    fn a_flush_a_full_batch_or_no_window_makes_it_due_at_once() {
        let c = cfg();
        let now = Instant::now();
        let mut p = Pending::default();
        p.add(bulk(samples()), &HashMap::default(), now);
        let (tx, _rx) = crossbeam_channel::bounded(1);
        let mut flushed = Pending::default();
        flushed.add_flush(tx);
        assert_eq!(flushed.due_in(&c, now), Duration::ZERO, "a flush");
        assert_eq!(p.due_in(&WriterConfig { batch_window: Duration::ZERO, ..cfg() }, now), Duration::ZERO);
        for _ in 1..c.max_batch {
            p.add(bulk(samples()), &HashMap::default(), now);
        }
        assert_eq!(p.due_in(&c, now), Duration::ZERO, "max_batch operations");
    }

    #[test]
    fn a_batch_replays_retries_first_and_writes_statuses_last_critical_if_any_was() {
        let now = Instant::now();
        let mut p = Pending::default();
        p.add(bulk(status("a", 1, 1)), &HashMap::default(), now);
        p.add(Queued::critical(status("a", 1, 2)), &HashMap::default(), now);
        p.add(bulk(status("a", 1, 3)), &HashMap::default(), now);
        p.add(bulk(samples()), &HashMap::default(), now);
        p.add(Queued::critical(event()), &HashMap::default(), now);
        let batch = p.into_batch(vec![event()]);
        assert!(batch.flushes.is_empty());
        assert_eq!(
            batch.ops,
            vec![
                Queued::critical(event()),
                bulk(samples()),
                Queued::critical(event()),
                Queued::critical(status("a", 1, 3))
            ]
        );
    }

    #[test]
    fn bulk_operations_past_the_capacity_are_refused_until_the_writer_takes_some() {
        let gate = BulkGate::new(2);
        assert!(gate.admit());
        assert!(gate.admit());
        assert!(!gate.admit(), "full");
        gate.release();
        assert!(gate.admit(), "room again after one left the queue");
        assert!(!gate.admit());
        assert!(!BulkGate::new(0).admit(), "no capacity, no bulk");
    }
}

//! Batching and urgency: what waits for the next commit, and how soon that commit is due.

use super::thread::{FlushReply, Writer};
use super::{WriteOp, WriterConfig};
use crate::model::AgentStatus;
use foldhash::HashMap;
use std::time::{Duration, Instant};
/// What waits to be written: operations in arrival order, each agent's newest status, and the
/// callers waiting on a flush.
#[derive(Default)]
pub(super) struct Pending {
    pub(super) ops: Vec<(bool, WriteOp)>,
    /// The newest status per agent, and whether any of the ones it replaced was critical. A
    /// status row carries every field, so a later one supersedes an earlier one.
    pub(super) statuses: HashMap<String, (bool, Box<AgentStatus>)>,
    pub(super) flushes: Vec<FlushReply>,
    pub(super) urgent_since: Option<Instant>,
    pub(super) routine_since: Option<Instant>,
}

impl Pending {
    pub(super) fn len(&self) -> usize {
        self.ops.len() + self.statuses.len() + self.flushes.len()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How long until this must be committed; zero when it is due.
    pub(super) fn due_in(&self, cfg: &WriterConfig) -> Duration {
        if !self.flushes.is_empty() || self.len() >= cfg.max_batch || cfg.batch_window.is_zero() {
            return Duration::ZERO;
        }
        let left = |since: Option<Instant>, wait: Duration| {
            since.map_or(Duration::MAX, |t| wait.saturating_sub(t.elapsed()))
        };
        left(self.urgent_since, cfg.batch_window).min(left(self.routine_since, cfg.routine_interval))
    }
}

/// Messages per wake-up from which the writer naps through batch windows instead of
/// blocking on its channel.
pub(super) const BUSY_MESSAGES: usize = 8;

impl Writer {
    pub(super) fn queue(&mut self, critical: bool, op: WriteOp) {
        let urgent = match &op {
            WriteOp::Samples(_) => false,
            WriteOp::Status(s) => {
                let before = match self.pending.statuses.get(&s.agent) {
                    Some((_, waiting)) => Some(waiting),
                    None => self.written.get(&s.agent),
                };
                !before.is_some_and(|b| b.same_lifecycle(s))
            }
            _ => true,
        };
        let since = if urgent { &mut self.pending.urgent_since } else { &mut self.pending.routine_since };
        since.get_or_insert_with(Instant::now);
        match op {
            WriteOp::Status(s) => match self.pending.statuses.get_mut(&s.agent) {
                Some(waiting) => *waiting = (waiting.0 || critical, s),
                None => {
                    self.pending.statuses.insert(s.agent.clone(), (critical, s));
                }
            },
            op => self.pending.ops.push((critical, op)),
        }
    }
}

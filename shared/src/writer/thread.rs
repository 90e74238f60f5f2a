//! The writer thread: starting it, its state, and the loop that takes messages and commits
//! batches.

use super::batch::{Batch, BulkGate, Delivery, Pending, Queued};
use super::handle::{Msg, Shared, WriterHandle, WriterThread};
use super::ops::WriteOp;
use super::samples::SeriesIds;
use super::session::Store;
use crate::checkpointer::{Checkpointer, pages_written};
use crate::error::{AtPath, Result};
use crate::model::AgentStatus;
use crate::retention::Pruner;
use crossbeam_channel::{Receiver, RecvTimeoutError, TryRecvError};
// The writer looks up every sample's series and every status's agent by name, so hashing is
// hot (docs/architecture.md). The keys come from the config and from agents bounded to a few
// dozen metric names each, so a fast seeded hash is enough.
use foldhash::{HashMap, HashMapExt};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
pub(super) struct Writer {
    pub(super) store: Store,
    pub(super) shared: Arc<Shared>,
    /// (scope, metric) -> series id, so a sample costs one insert.
    pub(super) series: SeriesIds,
    /// Critical operations from failed transactions, replayed first in the next one.
    pub(super) retry: Vec<WriteOp>,
    pub(super) last_housekeeping: Instant,
    pub(super) failures: u64,
    pub(super) pruner: Pruner,
    /// Newest sample timestamp written: the retention clock never runs behind the data.
    pub(super) newest_sample_ms: i64,
    pub(super) failing_since_ms: i64,
    pub(super) dropped_before_failure: u64,
    /// Each series' newest value as committed in `metric_series` (time, value): an unchanged
    /// value is written again only after
    /// [`NEWEST_REFRESH_MS`](crate::schema::NEWEST_REFRESH_MS): most series of an idle agent
    /// (its memory, threads, a CPU of zero, a queue length) repeat every second, and rewriting
    /// them would be most of the statements an idle fleet costs.
    pub(super) newest_written: HashMap<i64, (i64, f64)>,
    /// Sample rows (series id, time, value) waiting for
    /// [`sample_flush_interval`](super::config::WriterConfig::sample_flush_interval).
    pub(super) pending_rows: Vec<(i64, i64, f64)>,
    pub(super) pending_since: Option<Instant>,
    /// What arrived and waits for the next commit.
    pub(super) pending: Pending,
    /// Each agent's status as last committed: a new status that differs from it only in
    /// reported fields is routine.
    pub(super) written: HashMap<String, Box<AgentStatus>>,
    pub(super) last_checkpoint_try: Option<Instant>,
    /// The WAL file's size at the last look, to tell a log that grows from one being reused.
    pub(super) wal_bytes_seen: u64,
    pub(super) checkpointer: Option<Checkpointer>,
}

impl Store {
    /// Starts the writer thread; the returned handle is how everything else writes.
    pub fn start(self) -> Result<(WriterHandle, WriterThread)> {
        let (tx, rx) = crossbeam_channel::unbounded();
        let shared = Arc::new(Shared {
            bulk: BulkGate::new(self.cfg.bulk_capacity),
            dropped: AtomicU64::new(0),
            commits: AtomicU64::new(0),
            error: Mutex::new(None),
            lost: Mutex::new(None),
            next_run_id: AtomicI64::new(crate::runs::next_free_id(&self.conn).at(&self.path)?),
        });
        let handle = WriterHandle { tx, shared: shared.clone() };
        let path = self.path.clone();
        // Without a thread of its own (a second connection that cannot be opened), SQLite's
        // automatic checkpoint stays on.
        let checkpointer = match Checkpointer::start(&path, self.cfg.busy_timeout) {
            Ok(c) => {
                self.conn.pragma_update(None, "wal_autocheckpoint", 0).at(&path)?;
                Some(c)
            }
            Err(e) => {
                tracing::warn!(error = %e, "checkpoints stay in the writer's commits");
                None
            }
        };
        let writer = Writer {
            store: self,
            shared,
            series: HashMap::new(),
            retry: Vec::new(),
            last_housekeeping: Instant::now(),
            failures: 0,
            pruner: Pruner::default(),
            newest_sample_ms: 0,
            newest_written: HashMap::new(),
            failing_since_ms: 0,
            dropped_before_failure: 0,
            pending_rows: Vec::new(),
            pending_since: None,
            pending: Pending::default(),
            written: HashMap::new(),
            last_checkpoint_try: None,
            wal_bytes_seen: 0,
            checkpointer,
        };
        let thread = std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || writer.run(rx))
            .at(&path)?;
        Ok((handle, WriterThread(thread)))
    }
}

/// How long the loop waits before retrying a failed transaction when nothing else comes.
const RETRY_DELAY: Duration = Duration::from_millis(500);

/// Messages per wake-up from which the writer naps through batch windows instead of
/// blocking on its channel.
const BUSY_MESSAGES: usize = 8;

impl Writer {
    pub(super) fn run(mut self, rx: Receiver<Msg>) {
        let cfg = self.store.cfg.clone();
        let mut disconnected = false;
        let mut busy = false;
        while !disconnected {
            let mut timed_out = false;
            let mut received = 0;
            if busy || self.pending.has_urgent() {
                // Sleep rather than block on the channel: a sender only wakes a receiver that
                // is blocked on it, so while messages stream in, a thousand agents' messages
                // cost one wake-up per window instead of one each. Routine waits are cut into
                // batch windows so that an urgent operation arriving meanwhile is not held back.
                let nap = self.pending.due_in(&cfg, Instant::now()).min(cfg.batch_window);
                if !nap.is_zero() {
                    std::thread::sleep(nap);
                }
            } else {
                // Quiet: block, so that an idle launcher's writer wakes only for its messages.
                let wait = if !self.pending.is_empty() {
                    self.pending.due_in(&cfg, Instant::now())
                } else if self.retry.is_empty() {
                    cfg.housekeeping_interval
                } else {
                    RETRY_DELAY
                };
                match rx.recv_timeout(wait) {
                    Ok(m) => {
                        self.take(m);
                        received += 1;
                    }
                    Err(RecvTimeoutError::Timeout) => timed_out = true,
                    Err(RecvTimeoutError::Disconnected) => disconnected = true,
                }
            }
            while self.pending.len() < cfg.max_batch {
                match rx.try_recv() {
                    Ok(m) => {
                        self.take(m);
                        received += 1;
                    }
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        disconnected = true;
                        break;
                    }
                }
            }
            busy = received >= BUSY_MESSAGES;
            let due = !self.pending.is_empty() && self.pending.due_in(&cfg, Instant::now()).is_zero();
            if due || disconnected || (timed_out && !self.retry.is_empty()) {
                self.write_batch(disconnected);
            }
            if self.last_housekeeping.elapsed() >= cfg.housekeeping_interval {
                self.housekeeping();
            }
        }
        if !self.pending_rows.is_empty()
            && let Err(e) = self.apply(&[], true)
        {
            tracing::error!(error = %e, "could not write the last samples");
        }
        if !self.retry.is_empty() {
            tracing::error!(lost = self.retry.len(), "store writer stopping with writes it could not commit");
        }
        // Dropping it runs the last checkpoint and joins its thread.
        drop(self.checkpointer.take());
        let lost = self.shared.lost.lock().is_ok_and(|l| l.is_some());
        let Store { conn, files, .. } = self.store;
        drop(conn);
        if lost {
            files.remove_leftovers();
        }
    }

    /// Adds one message to what waits.
    fn take(&mut self, m: Msg) {
        let q = match m {
            Msg::Flush(reply) => {
                self.pending.add_flush(reply);
                return;
            }
            Msg::Critical(op) => Queued { op, delivery: Delivery::Critical },
            Msg::Bulk(op) => {
                self.shared.bulk.release();
                Queued { op, delivery: Delivery::Bulk }
            }
        };
        self.queue(q);
    }

    /// Adds an operation to what waits for the next commit.
    pub(super) fn queue(&mut self, q: Queued) {
        self.pending.add(q, &self.written, Instant::now());
    }

    /// Writes what waits, after any retried operations; `last` (the final batch) or a flush
    /// request also writes the waiting sample rows.
    fn write_batch(&mut self, last: bool) {
        let pending = std::mem::take(&mut self.pending);
        if pending.is_empty() && self.retry.is_empty() {
            return;
        }
        let Batch { ops, flushes } = pending.into_batch(std::mem::take(&mut self.retry));
        let outcome = match self.apply(&ops, last || !flushes.is_empty()) {
            Ok(()) => {
                self.shared.commits.fetch_add(1, Ordering::Relaxed);
                if self.failures > 0 {
                    self.record_recovery();
                }
                for q in ops {
                    if let WriteOp::Status(s) = q.op {
                        match self.written.get_mut(&s.agent) {
                            Some(slot) => *slot = s,
                            None => {
                                self.written.insert(s.agent.clone(), s);
                            }
                        }
                    }
                }
                Ok(())
            }
            Err(e) => Err(self.failed(ops, &e)),
        };
        for reply in flushes {
            // The flusher may have given up waiting; nothing to do then.
            let _ = reply.send(outcome.clone());
        }
        // After the replies: what was flushed is committed, and a checkpoint's wait is not theirs.
        if outcome.is_ok() {
            if let Some(c) = &mut self.checkpointer {
                c.appended(pages_written(&self.store.conn));
            }
            self.bound_wal();
        }
    }
}

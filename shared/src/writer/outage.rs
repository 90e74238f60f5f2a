//! Riding out a storage outage: critical operations are kept for retry, bulk ones dropped and
//! counted, and recovery leaves an event saying what the outage cost.

use super::batch::{Delivery, Queued};
use super::flush::FlushError;
use super::ops::{NewEvent, WriteOp};
use super::thread::Writer;
use crate::model::{EventKind, Severity};
use crate::time::now_ms;
use std::sync::atomic::Ordering;

/// Most critical operations kept for retry while storage fails, so a long outage cannot
/// exhaust memory; beyond it the oldest are dropped and counted.
const MAX_RETRY: usize = 100_000;

/// Keeps the critical operations of a failed transaction for the next one, after those already
/// kept, and at most `max` of them in all (the oldest go first); returns how many operations
/// are dropped: the bulk ones and any critical ones beyond `max`.
fn keep_for_retry(retry: &mut Vec<WriteOp>, failed: Vec<Queued>, max: usize) -> u64 {
    let mut dropped = 0;
    for q in failed {
        match q.delivery {
            Delivery::Critical => retry.push(q.op),
            Delivery::Bulk => dropped += 1,
        }
    }
    if retry.len() > max {
        let excess = retry.len() - max;
        retry.drain(..excess);
        dropped += excess as u64;
    }
    dropped
}

impl Writer {
    /// A transaction failed: note the outage (saying so once, when it begins), keep what must
    /// not be lost for the next one, and return what the flushers are told.
    pub(super) fn failed(&mut self, ops: Vec<Queued>, e: &rusqlite::Error) -> FlushError {
        let msg = format!("cannot write {}: {e}", self.store.path.display());
        if self.failures == 0 {
            tracing::error!("{msg}; retrying, bulk data is dropped meanwhile");
            self.failing_since_ms = now_ms();
            self.dropped_before_failure = self.shared.dropped.load(Ordering::Relaxed);
        }
        self.failures += 1;
        if let Ok(mut slot) = self.shared.error.lock() {
            *slot = Some(msg.clone());
        }
        let dropped = keep_for_retry(&mut self.retry, ops, MAX_RETRY);
        self.shared.dropped.fetch_add(dropped, Ordering::Relaxed);
        FlushError::Storage(msg)
    }

    /// Writes succeed again: clear the error and leave an event saying what the outage cost,
    /// dated when it began, so the history shows the gap and its reason.
    pub(super) fn record_recovery(&mut self) {
        let error = self.shared.error.lock().ok().and_then(|mut e| e.take()).unwrap_or_default();
        let dropped = self.shared.dropped.load(Ordering::Relaxed) - self.dropped_before_failure;
        let secs = (now_ms() - self.failing_since_ms) as f64 / 1000.0;
        tracing::info!(failures = self.failures, dropped, "store writes succeed again after {secs:.1} s");
        self.failures = 0;
        let event = WriteOp::Event(NewEvent {
            ts_ms: self.failing_since_ms,
            agent: None,
            kind: EventKind::StorageError,
            severity: Severity::Error,
            message: format!(
                "{error}; writes failed for {secs:.1} s and resumed; {dropped} samples or log batches were dropped"
            ),
        });
        if let Err(e) = self.apply(&[Queued::critical(event)], false) {
            tracing::warn!(error = %e, "could not record the storage outage");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alive(ts_ms: i64) -> WriteOp {
        WriteOp::SessionAlive { ts_ms, status: None }
    }

    #[test]
    fn a_failed_batch_keeps_its_critical_operations_and_drops_its_bulk_ones() {
        let mut retry = vec![alive(0)];
        let failed = vec![
            Queued { op: alive(1), delivery: Delivery::Bulk },
            Queued::critical(alive(2)),
            Queued { op: alive(3), delivery: Delivery::Bulk },
        ];
        assert_eq!(keep_for_retry(&mut retry, failed, 10), 2);
        assert_eq!(retry, vec![alive(0), alive(2)], "kept in order, after what was kept before");
    }

    #[test]
    fn past_the_bound_the_oldest_critical_operations_are_dropped_and_counted() {
        let mut retry = vec![alive(0), alive(1)];
        let failed = vec![Queued::critical(alive(2)), Queued::critical(alive(3))];
        assert_eq!(keep_for_retry(&mut retry, failed, 3), 1);
        assert_eq!(retry, vec![alive(1), alive(2), alive(3)]);
    }
}

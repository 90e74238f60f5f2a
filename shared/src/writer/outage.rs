//! Riding out a storage outage: critical operations are kept for retry, and recovery leaves
//! an event saying what the outage cost.

use super::thread::Writer;
use super::{NewEvent, WriteOp};
use crate::model::Severity;
use crate::time::now_ms;
use std::sync::atomic::Ordering;
use std::time::Duration;
/// Most critical operations kept for retry while storage fails, so a long outage cannot
/// exhaust memory; beyond it the oldest are dropped and counted.
pub(super) const MAX_RETRY: usize = 100_000;
pub(super) const RETRY_DELAY: Duration = Duration::from_millis(500);

impl Writer {
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
            kind: "storage_error".into(),
            severity: Severity::Error,
            message: format!(
                "{error}; writes failed for {secs:.1} s and resumed; {dropped} samples or log batches were dropped"
            ),
        });
        if let Err(e) = self.apply(&[(true, event)], false) {
            tracing::warn!(error = %e, "could not record the storage outage");
        }
    }
}

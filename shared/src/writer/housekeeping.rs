//! Periodic chores: checking the database's files, recording their sizes, retention.

use super::batch::{Delivery, Queued};
use super::ops::{Sample, WriteOp};
use super::thread::Writer;
use crate::model::metric;
use crate::time::now_ms;
use std::sync::atomic::Ordering;
use std::time::Instant;
impl Writer {
    /// Notices when the database's files are not the ones at their paths any more (see
    /// [`WriterHandle::database_lost`](super::handle::WriterHandle::database_lost)); says so once, loudly.
    fn check_files(&mut self) {
        let Ok(mut lost) = self.shared.lost.lock() else { return };
        if lost.is_none()
            && let Some(why) = self.store.files.check()
        {
            tracing::error!("{why}: nothing written from now on reaches a reader");
            *lost = Some(why);
        }
    }

    /// Checks the database's files, records file sizes, keeps the WAL bounded and runs
    /// retention when due.
    pub(super) fn housekeeping(&mut self) {
        self.last_housekeeping = Instant::now();
        self.check_files();
        let path = self.store.path.clone();
        let wal = crate::paths::wal_path(&path);
        self.bound_wal();
        if self.failures > 0 {
            return;
        }
        let now = now_ms();
        // Sizes are the launcher's series, so they need its session; retention does not.
        if self.store.session_id.is_some() {
            let db_bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            let wal_bytes = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
            let sample = |name: &str, value: f64| Sample {
                scope: metric::LAUNCHER.into(),
                metric: name.into(),
                ts_ms: now,
                value,
            };
            let samples = vec![
                sample(metric::DB_BYTES, db_bytes as f64),
                sample(metric::WAL_BYTES, wal_bytes as f64),
                sample(metric::DROPPED_WRITES, self.shared.dropped.load(Ordering::Relaxed) as f64),
            ];
            self.queue(Queued { op: WriteOp::Samples(samples), delivery: Delivery::Bulk });
        }
        let retention = &self.store.cfg.retention;
        if self.pruner.due(retention) {
            let clock = now.max(self.newest_sample_ms);
            if let Err(e) = self.pruner.run(&mut self.store.conn, retention, clock) {
                tracing::warn!(error = %e, "retention pass failed; trying again later");
            }
        }
    }
}

//! Keeping the WAL file bounded when readers hold the log back.

use super::thread::Writer;
use std::time::{Duration, Instant};
/// The longest a TRUNCATE checkpoint may wait for readers.
const CHECKPOINT_BUSY_TIMEOUT: Duration = Duration::from_millis(10);
/// How long after a TRUNCATE checkpoint found readers busy before trying again.
const CHECKPOINT_RETRY: Duration = Duration::from_millis(100);

impl Writer {
    /// Keeps the WAL under its limit. The checkpointer's PASSIVE checkpoints copy pages back,
    /// and SQLite starts the log again from the top of the file once all of it is copied and no
    /// reader is on an older snapshot: the file keeps its size, the high-water mark of the log,
    /// and is reused. Readers that read often can keep the log from starting again, and then the
    /// file grows. So a TRUNCATE checkpoint is tried when the file is past its limit, or past
    /// half of it and larger than at the last look (the log is not starting again). Not merely
    /// because it is large: a TRUNCATE holds the write lock while it copies, syncs and
    /// truncates, which a file being reused does not need and a busy writer should not wait
    /// for. It waits on readers through the busy handler, so it
    /// runs with a busy timeout of a few milliseconds: long enough for short read transactions
    /// that started before the backfill to end, never long enough for a reader that holds a
    /// snapshot to stall the writer. When it stays busy it is tried again after
    /// [`CHECKPOINT_RETRY`].
    pub(super) fn bound_wal(&mut self) {
        if self.last_checkpoint_try.is_some_and(|t| t.elapsed() < CHECKPOINT_RETRY) {
            return;
        }
        let wal = crate::paths::wal_path(&self.store.path);
        let wal_bytes = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
        let seen = std::mem::replace(&mut self.wal_bytes_seen, wal_bytes);
        if !needs_truncate(wal_bytes, seen, self.store.cfg.wal_limit_bytes) {
            return;
        }
        self.last_checkpoint_try = Some(Instant::now());
        let conn = &self.store.conn;
        let result = conn
            .busy_timeout(CHECKPOINT_BUSY_TIMEOUT)
            .and_then(|()| conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get::<_, i64>(0)));
        match result {
            Ok(0) => tracing::debug!(wal_bytes, "WAL truncated"),
            Ok(_) => tracing::debug!(wal_bytes, "WAL checkpoint skipped: a reader is busy"),
            Err(e) => tracing::debug!(error = %e, "WAL checkpoint failed"),
        }
        if let Err(e) = conn.busy_timeout(self.store.cfg.busy_timeout) {
            tracing::warn!(error = %e, "could not restore the busy timeout");
        }
    }
}

/// Whether a WAL file of `wal_bytes`, `seen` at the last look, is to be truncated (see
/// [`Writer::bound_wal`]): past its limit, or past half of it and still growing.
fn needs_truncate(wal_bytes: u64, seen: u64, limit: u64) -> bool {
    wal_bytes > limit || (wal_bytes > limit / 2 && wal_bytes > seen)
}

#[cfg(test)]
mod tests {
    use super::needs_truncate;

    #[test]
    fn a_wal_is_truncated_when_past_its_limit_or_growing_past_half() {
        let limit = 64 << 20;
        assert!(!needs_truncate(20 << 20, 10 << 20, limit), "growing, but under half");
        assert!(needs_truncate(40 << 20, 39 << 20, limit), "past half and growing: not starting again");
        assert!(!needs_truncate(40 << 20, 40 << 20, limit), "past half but reused at its size");
        assert!(needs_truncate(70 << 20, 70 << 20, limit), "past the limit, growing or not");
    }
}

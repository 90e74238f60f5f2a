//! How the writer batches, bounds and checkpoints.

use crate::retention::RetentionConfig;
use std::time::Duration;

/// How the writer batches, bounds and checkpoints.
#[derive(Debug, Clone)]
pub struct WriterConfig {
    /// After the first urgent operation of a batch arrives (a state change, an event, log
    /// lines, a registration), how long to collect more before committing. Zero commits
    /// everything as soon as it arrives.
    pub batch_window: Duration,
    /// How long routine operations may wait for a commit when nothing urgent comes: heartbeats
    /// and other reported fields of an agent whose state did not change, and metric values.
    /// With a thousand agents heartbeating every second this is the
    /// difference between a commit every batch window and one a second.
    pub routine_interval: Duration,
    /// Most operations in one transaction.
    pub max_batch: usize,
    /// Most bulk operations waiting in the queue; more are dropped and counted.
    pub bulk_capacity: usize,
    pub busy_timeout: Duration,
    /// The WAL is truncated back under this size (also `journal_size_limit`).
    pub wal_limit_bytes: u64,
    /// Captured output kept per agent: the newest lines win.
    pub log_lines_per_agent: u64,
    /// How often sizes are recorded and the WAL size is checked.
    pub housekeeping_interval: Duration,
    /// How long raw sample rows wait to be inserted together. Every series' newest value is
    /// written with each batch regardless; the rows themselves go in this often (or at a
    /// flush), sorted by series, so each series' newest B-tree page is written once per
    /// several samples instead of once per sample: with thousands of series sampled every
    /// second, those page writes are most of the writer's work.
    pub sample_flush_interval: Duration,
    /// Unix mode of a newly created database; `-wal` and `-shm` inherit it from SQLite.
    pub file_mode: u32,
    pub retention: RetentionConfig,
}

impl Default for WriterConfig {
    fn default() -> Self {
        WriterConfig {
            batch_window: Duration::from_millis(10),
            routine_interval: Duration::from_secs(1),
            max_batch: 20_000,
            bulk_capacity: 200_000,
            busy_timeout: Duration::from_secs(5),
            wal_limit_bytes: 64 << 20,
            log_lines_per_agent: 5_000,
            housekeeping_interval: Duration::from_secs(1),
            sample_flush_interval: Duration::from_secs(2),
            file_mode: 0o600,
            retention: RetentionConfig::default(),
        }
    }
}

//! The single writer: one connection, owned by one thread, fed through one channel.
//!
//! Everything that arrives within a short window is written in one transaction, because
//! batching is what makes SQLite fast (one row per commit: ~40k/s; a thousand: ~400k/s).
//! Operations come in two kinds: *critical* ones (state changes, events, registrations) are
//! never dropped and are retried while the disk is failing; *bulk* ones (metric samples, log
//! lines, liveness ticks) are dropped and counted when the queue is full or the disk fails,
//! so that supervision never waits on the disk.
//!
//! How soon something is committed depends on what it is. State changes, events, log lines,
//! registrations and the launcher's liveness ticks (which dashboards judge it alive by) are
//! *urgent*: committed one batch window (10 ms) after they arrive. Heartbeats and other
//! reported fields of an agent whose state did not change, and metric values, are *routine*:
//! they wait up to `routine_interval` (1 s) for a commit,
//! and each agent's status is written once per commit however often it changed, so a
//! thousand heartbeating agents cost about one commit a second.
//!
//! Durability: `synchronous=NORMAL` in WAL mode. A crash of the launcher process loses only
//! what was still queued (urgent operations from the last batch window, routine ones from the
//! last routine interval, raw sample rows from the last sample flush interval); a power loss
//! or kernel crash can also lose the last commits before the most recent checkpoint, but
//! never corrupts the file.

mod apply;
mod batch;
mod housekeeping;
mod outage;
mod samples;
mod session;
mod thread;
mod wal;

pub use session::{NewSession, StaleAgent, StaleProcess, StaleSession, Store};

use crate::error::{Result, StoreError};
use crate::model::{AgentSpec, AgentStatus, DesiredState, EventKind, Severity, Stream};
use crate::retention::RetentionConfig;
use batch::BulkGate;
use crossbeam_channel::Sender;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
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

/// One sample of one series. `scope` is an agent name,
/// [`metric::HOST`](crate::model::metric::HOST) or
/// [`metric::LAUNCHER`](crate::model::metric::LAUNCHER).
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub scope: String,
    pub metric: String,
    pub ts_ms: i64,
    pub value: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    pub ts_ms: i64,
    pub agent: Option<String>,
    pub kind: EventKind,
    pub severity: Severity,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewLogLine {
    pub agent: String,
    pub stream: Stream,
    pub ts_ms: i64,
    pub line: String,
}

/// What the writer can be asked to write.
#[derive(Debug, Clone, PartialEq)]
pub enum WriteOp {
    /// Insert or update an agent's registry row (and give it a state row if it has none).
    RegisterAgent(Box<AgentSpec>),
    SetDesired {
        agent: String,
        desired: DesiredState,
    },
    /// Marks every registered agent not named in `keep` removed (as a reload marks an agent
    /// gone from the config), with an `agent_removed` event for each saying `reason`.
    RemoveUnlisted {
        keep: Vec<String>,
        reason: String,
    },
    Status(Box<AgentStatus>),
    Event(NewEvent),
    Samples(Vec<Sample>),
    Logs(Vec<NewLogLine>),
    /// The launcher is alive; `status` is its one-line summary ("5/6 agents running").
    SessionAlive {
        ts_ms: i64,
        status: Option<String>,
    },
    SessionEnded {
        ts_ms: i64,
        reason: String,
    },
    /// The agent's processes outside its process group now (replacing what was written
    /// before): `(pid, start ticks)`.
    Escapees {
        agent: String,
        processes: Vec<(i64, i64)>,
    },
}

/// Why [`WriterHandle::flush`] could not confirm that what was queued before it is committed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FlushError {
    /// The writer thread has stopped.
    #[error("the store's writer has stopped")]
    WriterGone,
    /// The transaction failed; its critical operations are kept and retried.
    #[error("{0}")]
    Storage(String),
}

/// Where the writer tells a caller of [`WriterHandle::flush`] how the commit of what it
/// waited for went.
type FlushReply = Sender<std::result::Result<(), FlushError>>;

enum Msg {
    Critical(WriteOp),
    Bulk(WriteOp),
    Flush(FlushReply),
}

struct Shared {
    bulk: BulkGate,
    dropped: AtomicU64,
    commits: AtomicU64,
    /// The storage error the writer is currently failing with, if any.
    error: Mutex<Option<String>>,
    /// Why the database the writer has open is no longer the file at its path, once it is not.
    lost: Mutex<Option<String>>,
}

/// A cheap, cloneable way to hand operations to the writer thread.
#[derive(Clone)]
pub struct WriterHandle {
    tx: Sender<Msg>,
    shared: Arc<Shared>,
}

impl WriterHandle {
    /// Queues an operation that must not be lost. Never blocks.
    pub fn send(&self, op: WriteOp) -> Result<()> {
        self.tx.send(Msg::Critical(op)).map_err(|_| StoreError::WriterGone)
    }

    /// Queues an operation that may be dropped under pressure. Never blocks; returns whether
    /// it was queued.
    pub fn offer(&self, op: WriteOp) -> bool {
        if !self.shared.bulk.admit() {
            self.shared.dropped.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        if self.tx.send(Msg::Bulk(op)).is_err() {
            self.shared.bulk.release();
            self.shared.dropped.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        true
    }

    /// Waits until everything queued before this call is committed (or has failed to be).
    pub fn flush(&self) -> std::result::Result<(), FlushError> {
        let (tx, rx) = crossbeam_channel::bounded(1);
        self.tx.send(Msg::Flush(tx)).map_err(|_| FlushError::WriterGone)?;
        rx.recv().map_err(|_| FlushError::WriterGone)?
    }

    /// Bulk operations dropped so far (queue full or storage failing).
    pub fn dropped(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }

    /// Transactions committed so far.
    pub fn commits(&self) -> u64 {
        self.shared.commits.load(Ordering::Relaxed)
    }

    /// The storage error the writer is failing with right now; `None` when writes succeed.
    /// A lost database (see [`WriterHandle::database_lost`]) is one for good.
    pub fn storage_error(&self) -> Option<String> {
        self.database_lost().or_else(|| self.shared.error.lock().ok().and_then(|e| e.clone()))
    }

    /// Why the database was lost, once it was: its file (or its `-wal` or `-shm`) was deleted
    /// or replaced at its path, so whatever is written now goes where no reader will look.
    /// Checked every housekeeping interval.
    pub fn database_lost(&self) -> Option<String> {
        self.shared.lost.lock().ok().and_then(|e| e.clone())
    }
}

/// The running writer thread; [`WriterThread::join`] waits for it to commit the rest and stop
/// after every [`WriterHandle`] has been dropped.
pub struct WriterThread(JoinHandle<()>);

impl WriterThread {
    pub fn join(self) {
        if self.0.join().is_err() {
            tracing::error!("the store's writer thread panicked");
        }
    }
}

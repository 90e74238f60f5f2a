//! The writer's two ends outside its thread: [`WriterHandle`], which queues operations, and
//! [`WriterThread`], which waits for the thread to stop.

use super::batch::BulkGate;
use super::flush::{FlushError, FlushReply};
use super::ops::WriteOp;
use crate::error::{Result, StoreError};
use crossbeam_channel::Sender;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

pub(super) enum Msg {
    Critical(WriteOp),
    Bulk(WriteOp),
    Flush(FlushReply),
}

pub(super) struct Shared {
    pub(super) bulk: BulkGate,
    pub(super) dropped: AtomicU64,
    pub(super) commits: AtomicU64,
    /// The storage error the writer is currently failing with, if any.
    pub(super) error: Mutex<Option<String>>,
    /// Why the database the writer has open is no longer the file at its path, once it is not.
    pub(super) lost: Mutex<Option<String>>,
    /// The id the next run gets: past every id the database ever gave a run.
    pub(super) next_run_id: AtomicI64,
}

/// A cheap, cloneable way to hand operations to the writer thread.
#[derive(Clone)]
pub struct WriterHandle {
    pub(super) tx: Sender<Msg>,
    pub(super) shared: Arc<Shared>,
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

    /// A new `runs.id`, for a [`WriteOp::RunStarted`] and the [`WriteOp::RunEnded`] that
    /// closes it. Ids are handed out here rather than by the writer, so that whoever starts a
    /// run never waits on the disk to learn its id.
    pub fn new_run_id(&self) -> i64 {
        self.shared.next_run_id.fetch_add(1, Ordering::Relaxed)
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
pub struct WriterThread(pub(super) JoinHandle<()>);

impl WriterThread {
    pub fn join(self) {
        if self.0.join().is_err() {
            tracing::error!("the store's writer thread panicked");
        }
    }
}

//! The single writer: one connection, owned by one thread, fed through one channel.
//!
//! Everything that arrives within a short window is written in one transaction, because
//! batching is what makes SQLite fast (BENCHMARKS.md, ingest).
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
mod config;
mod flush;
mod handle;
mod housekeeping;
mod ops;
mod outage;
mod samples;
mod session;
mod thread;
mod wal;

pub use config::WriterConfig;
pub use flush::FlushError;
pub use handle::{WriterHandle, WriterThread};
pub use ops::{NewEvent, NewLogLine, NewRun, NewTask, RunEnd, Sample, TaskEnd, WriteOp};
pub use session::{NewSession, StaleAgent, StaleProcess, StaleSession, Store};

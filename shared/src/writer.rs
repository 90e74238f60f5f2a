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

use crate::checkpointer::{Checkpointer, pages_written};
use crate::db_files::DbFiles;
use crate::error::{AtPath, Result, StoreError};
use crate::model::{
    AgentSpec, AgentStatus, DesiredState, EventKind, LauncherSession, Severity, Stream, metric,
};
use crate::retention::{Pruner, RetentionConfig};
use crate::schema::{self, sample_block};
use crate::time::now_ms;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TryRecvError};
use rusqlite::{Connection, ErrorCode, OpenFlags, params};
// The writer looks up every sample's series and every status's agent by name: SipHash was a
// tenth of its time at a thousand agents. The keys come from the config and from agents
// bounded to a few dozen metric names each, so a fast seeded hash is enough.
use foldhash::{HashMap, HashMapExt, HashSet, HashSetExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

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

/// One sample of one series. `scope` is an agent name, [`metric::HOST`] or [`metric::LAUNCHER`].
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

enum Msg {
    Critical(WriteOp),
    Bulk(WriteOp),
    Flush(Sender<std::result::Result<(), String>>),
}

struct Shared {
    queued_bulk: AtomicUsize,
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
    bulk_capacity: usize,
}

impl WriterHandle {
    /// Queues an operation that must not be lost. Never blocks.
    pub fn send(&self, op: WriteOp) -> Result<()> {
        self.tx.send(Msg::Critical(op)).map_err(|_| StoreError::WriterGone)
    }

    /// Queues an operation that may be dropped under pressure. Never blocks; returns whether
    /// it was queued.
    pub fn offer(&self, op: WriteOp) -> bool {
        if self.shared.queued_bulk.load(Ordering::Relaxed) >= self.bulk_capacity {
            self.shared.dropped.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        self.shared.queued_bulk.fetch_add(1, Ordering::Relaxed);
        if self.tx.send(Msg::Bulk(op)).is_err() {
            self.shared.queued_bulk.fetch_sub(1, Ordering::Relaxed);
            self.shared.dropped.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        true
    }

    /// Waits until everything queued before this call is committed (or has failed to be).
    pub fn flush(&self) -> Result<std::result::Result<(), String>> {
        let (tx, rx) = crossbeam_channel::bounded(1);
        self.tx.send(Msg::Flush(tx)).map_err(|_| StoreError::WriterGone)?;
        rx.recv().map_err(|_| StoreError::WriterGone)
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

/// A session left unfinished by a launcher that did not stop cleanly, with the processes its
/// agents had, so the next launcher can stop what is left of them.
#[derive(Debug, Clone, PartialEq)]
pub struct StaleSession {
    pub session: LauncherSession,
    pub agents: Vec<StaleAgent>,
    /// Processes of its agents that had left their process groups.
    pub escapees: Vec<StaleProcess>,
}

/// A process the dead launcher recorded for an agent, identified by PID and start time.
#[derive(Debug, Clone, PartialEq)]
pub struct StaleProcess {
    pub agent: String,
    pub pid: i64,
    pub start_ticks: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StaleAgent {
    pub agent: String,
    pub pid: i64,
    pub pgid: Option<i64>,
    pub pid_start_ticks: Option<i64>,
}

/// What a launcher says about itself when its session begins.
#[derive(Debug, Clone, PartialEq)]
pub struct NewSession {
    pub pid: i64,
    pub host: String,
    pub version: String,
    pub config_path: Option<String>,
}

/// The writer's side of the database before its thread starts: open, migrate, sessions.
pub struct Store {
    conn: Connection,
    path: PathBuf,
    cfg: WriterConfig,
    session_id: Option<i64>,
    files: DbFiles,
}

impl Store {
    /// Opens (creating if needed) and migrates the database, and puts it in WAL mode.
    pub fn open(path: &Path, cfg: WriterConfig) -> Result<Store> {
        crate::filesystem::refuse_network_filesystem(path)?;
        let existed = path.exists();
        // NOFOLLOW: a symbolic link planted in place of the database is refused, not followed.
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_NOFOLLOW;
        let mut conn = Connection::open_with_flags(path, flags).at(path)?;
        if !existed {
            set_mode(path, cfg.file_mode).at(path)?;
        }
        conn.busy_timeout(cfg.busy_timeout).at(path)?;
        if schema::check_compatible(&conn, path)? == 0 {
            // Only a file without pages takes it, so before WAL mode writes the first page.
            // INCREMENTAL lets retention hand free pages back to the file system in steps.
            conn.pragma_update(None, "auto_vacuum", "INCREMENTAL").at(path)?;
        }
        // Set once, here, before any reader pool exists: WAL is a property of the file.
        let mode: String =
            conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0)).at(path)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::NotWal { path: path.to_owned(), mode });
        }
        conn.pragma_update(None, "synchronous", "NORMAL").at(path)?;
        conn.pragma_update(None, "foreign_keys", true).at(path)?;
        conn.pragma_update(None, "journal_size_limit", cfg.wal_limit_bytes as i64).at(path)?;
        schema::migrate(&mut conn, path)?;
        conn.set_prepared_statement_cache_capacity(64);
        // Only now: opening a database file that has no pages deletes a `-wal` left beside it.
        let files = DbFiles::new(path);
        Ok(Store { conn, path: path.to_owned(), cfg, session_id: None, files })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Sessions that have no stop time, from launchers that died without stopping cleanly.
    pub fn unfinished_sessions(&self) -> Result<Vec<StaleSession>> {
        let p = &self.path;
        let mut stmt = self
            .conn
            .prepare(
                "SELECT id, pid, host, version, config_path, started_ms, last_seen_ms, stopped_ms,
                        exit_reason, status
                 FROM launcher_sessions WHERE stopped_ms IS NULL AND id IS NOT ?1 ORDER BY id",
            )
            .at(p)?;
        let sessions = stmt
            .query_map([self.session_id], crate::reader::session_from_row)
            .at(p)?
            .collect::<rusqlite::Result<Vec<_>>>()
            .at(p)?;
        let mut agents_stmt = self
            .conn
            .prepare(
                "SELECT agent, pid, pgid, pid_start_ticks FROM agent_state
                 WHERE session_id = ?1 AND pid IS NOT NULL ORDER BY agent",
            )
            .at(p)?;
        let mut escapees_stmt = self
            .conn
            .prepare(
                "SELECT agent, pid, start_ticks FROM agent_escapees WHERE session_id = ?1
                 ORDER BY agent, pid",
            )
            .at(p)?;
        let mut out = Vec::with_capacity(sessions.len());
        for session in sessions {
            let agents = agents_stmt
                .query_map([session.id], |r| {
                    Ok(StaleAgent {
                        agent: r.get(0)?,
                        pid: r.get(1)?,
                        pgid: r.get(2)?,
                        pid_start_ticks: r.get(3)?,
                    })
                })
                .at(p)?
                .collect::<rusqlite::Result<Vec<_>>>()
                .at(p)?;
            let escapees = escapees_stmt
                .query_map([session.id], |r| {
                    Ok(StaleProcess { agent: r.get(0)?, pid: r.get(1)?, start_ticks: r.get(2)? })
                })
                .at(p)?
                .collect::<rusqlite::Result<Vec<_>>>()
                .at(p)?;
            out.push(StaleSession { session, agents, escapees });
        }
        Ok(out)
    }

    /// Marks a dead launcher's session as crashed (stopped when it was last seen) and its
    /// agents as exited, with a `critical` event saying so.
    pub fn close_crashed_session(&mut self, id: i64, message: &str) -> Result<()> {
        let p = self.path.clone();
        let now = now_ms();
        let tx = self.conn.transaction().at(&p)?;
        tx.execute(
            "UPDATE launcher_sessions SET stopped_ms = last_seen_ms, exit_reason = 'crashed'
             WHERE id = ?1 AND stopped_ms IS NULL",
            [id],
        )
        .at(&p)?;
        tx.execute(
            "UPDATE agent_state SET state = 'exited', health = 'unknown', ready = 0, pid = NULL,
                    pgid = NULL, pid_start_ticks = NULL, exited_ms = ?2, updated_ms = ?2
             WHERE session_id = ?1 AND state IN ('starting', 'running', 'stopping')",
            params![id, now],
        )
        .at(&p)?;
        tx.execute("DELETE FROM agent_escapees WHERE session_id = ?1", [id]).at(&p)?;
        tx.execute(
            "INSERT INTO events (ts_ms, session_id, agent, kind, severity, message)
             VALUES (?1, ?2, NULL, ?3, 'critical', ?4)",
            params![now, id, EventKind::LauncherCrashed.as_str(), message],
        )
        .at(&p)?;
        tx.commit().at(&p)
    }

    /// Records this launcher's session; its events and states are tagged with it from now on.
    pub fn begin_session(&mut self, s: &NewSession) -> Result<i64> {
        let now = now_ms();
        self.conn
            .execute(
                "INSERT INTO launcher_sessions (pid, host, version, config_path, started_ms, last_seen_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
                params![s.pid, s.host, s.version, s.config_path, now],
            )
            .at(&self.path)?;
        let id = self.conn.last_insert_rowid();
        self.session_id = Some(id);
        Ok(id)
    }

    /// Starts the writer thread; the returned handle is how everything else writes.
    pub fn start(self) -> Result<(WriterHandle, WriterThread)> {
        let (tx, rx) = crossbeam_channel::unbounded();
        let shared = Arc::new(Shared {
            queued_bulk: AtomicUsize::new(0),
            dropped: AtomicU64::new(0),
            commits: AtomicU64::new(0),
            error: Mutex::new(None),
            lost: Mutex::new(None),
        });
        let handle = WriterHandle { tx, shared: shared.clone(), bulk_capacity: self.cfg.bulk_capacity };
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

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    // A chmod by path: SQLite's descriptor and locks on the file are untouched.
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

#[cfg(not(unix))]
fn set_mode(_path: &Path, _mode: u32) -> std::io::Result<()> {
    Ok(())
}

/// Most critical operations kept for retry while storage fails, so a long outage cannot
/// exhaust memory; beyond it the oldest are dropped and counted.
const MAX_RETRY: usize = 100_000;
const RETRY_DELAY: Duration = Duration::from_millis(500);
/// The longest a TRUNCATE checkpoint may wait for readers.
const CHECKPOINT_BUSY_TIMEOUT: Duration = Duration::from_millis(10);
/// How long after a TRUNCATE checkpoint found readers busy before trying again.
const CHECKPOINT_RETRY: Duration = Duration::from_millis(100);

struct Writer {
    store: Store,
    shared: Arc<Shared>,
    /// (scope, metric) -> series id, so a sample costs one insert.
    series: SeriesIds,
    /// Critical operations from failed transactions, replayed first in the next one.
    retry: Vec<WriteOp>,
    last_housekeeping: Instant,
    failures: u64,
    pruner: Pruner,
    /// Newest sample timestamp written: the retention clock never runs behind the data.
    newest_sample_ms: i64,
    failing_since_ms: i64,
    dropped_before_failure: u64,
    /// Each series' newest value as committed in `metric_series` (time, value): an unchanged
    /// value is written again only after [`schema::NEWEST_REFRESH_MS`]: most series of an idle
    /// agent (its memory, threads, a CPU of zero, a queue length) repeat every second, and
    /// rewriting them would be most of the statements an idle fleet costs.
    newest_written: HashMap<i64, (i64, f64)>,
    /// Sample rows (series id, time, value) waiting for [`WriterConfig::sample_flush_interval`].
    pending_rows: Vec<(i64, i64, f64)>,
    pending_since: Option<Instant>,
    /// What arrived and waits for the next commit.
    pending: Pending,
    /// Each agent's status as last committed: a new status that differs from it only in
    /// reported fields is routine.
    written: HashMap<String, Box<AgentStatus>>,
    last_checkpoint_try: Option<Instant>,
    /// The WAL file's size at the last look, to tell a log that grows from one being reused.
    wal_bytes_seen: u64,
    checkpointer: Option<Checkpointer>,
}

type FlushReply = Sender<std::result::Result<(), String>>;

/// What waits to be written: operations in arrival order, each agent's newest status, and the
/// callers waiting on a flush.
#[derive(Default)]
struct Pending {
    ops: Vec<(bool, WriteOp)>,
    /// The newest status per agent, and whether any of the ones it replaced was critical. A
    /// status row carries every field, so a later one supersedes an earlier one.
    statuses: HashMap<String, (bool, Box<AgentStatus>)>,
    flushes: Vec<FlushReply>,
    urgent_since: Option<Instant>,
    routine_since: Option<Instant>,
}

impl Pending {
    fn len(&self) -> usize {
        self.ops.len() + self.statuses.len() + self.flushes.len()
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How long until this must be committed; zero when it is due.
    fn due_in(&self, cfg: &WriterConfig) -> Duration {
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
const BUSY_MESSAGES: usize = 8;

/// Sample rows kept waiting at most, whatever the interval: bounds the writer's memory.
const MAX_PENDING_ROWS: usize = 100_000;

impl Writer {
    fn run(mut self, rx: Receiver<Msg>) {
        let cfg = self.store.cfg.clone();
        let mut disconnected = false;
        let mut busy = false;
        while !disconnected {
            let mut timed_out = false;
            let mut received = 0;
            if busy || self.pending.urgent_since.is_some() {
                // Sleep rather than block on the channel: a sender only wakes a receiver that
                // is blocked on it, so while messages stream in, a thousand agents' messages
                // cost one wake-up per window instead of one each. Routine waits are cut into
                // batch windows so that an urgent operation arriving meanwhile is not held back.
                let nap = self.pending.due_in(&cfg).min(cfg.batch_window);
                if !nap.is_zero() {
                    std::thread::sleep(nap);
                }
            } else {
                // Quiet: block, so that an idle launcher's writer wakes only for its messages.
                let wait = if !self.pending.is_empty() {
                    self.pending.due_in(&cfg)
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
            let due = !self.pending.is_empty() && self.pending.due_in(&cfg).is_zero();
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

    /// Adds one message to what waits, noting whether it is urgent or routine.
    fn take(&mut self, m: Msg) {
        let (critical, op) = match m {
            Msg::Flush(reply) => {
                self.pending.flushes.push(reply);
                return;
            }
            Msg::Critical(op) => (true, op),
            Msg::Bulk(op) => {
                self.shared.queued_bulk.fetch_sub(1, Ordering::Relaxed);
                (false, op)
            }
        };
        self.queue(critical, op);
    }

    fn queue(&mut self, critical: bool, op: WriteOp) {
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

    /// Writes what waits, after any retried operations; `last` (the final batch) or a flush
    /// request also writes the waiting sample rows.
    fn write_batch(&mut self, last: bool) {
        let pending = std::mem::take(&mut self.pending);
        if pending.is_empty() && self.retry.is_empty() {
            return;
        }
        let mut ops: Vec<(bool, WriteOp)> = self.retry.drain(..).map(|op| (true, op)).collect();
        ops.extend(pending.ops);
        // Statuses go last, after any registration of their agent in the same batch.
        ops.extend(pending.statuses.into_values().map(|(critical, s)| (critical, WriteOp::Status(s))));
        let flushes = pending.flushes;
        let result = self.apply(&ops, last || !flushes.is_empty());
        let outcome = match result {
            Ok(()) => {
                self.shared.commits.fetch_add(1, Ordering::Relaxed);
                if self.failures > 0 {
                    self.record_recovery();
                }
                for (_, op) in ops {
                    if let WriteOp::Status(s) = op {
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
            Err(e) => {
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
                for (critical, op) in ops {
                    if critical {
                        self.retry.push(op);
                    } else {
                        self.shared.dropped.fetch_add(1, Ordering::Relaxed);
                    }
                }
                if self.retry.len() > MAX_RETRY {
                    let excess = self.retry.len() - MAX_RETRY;
                    self.retry.drain(..excess);
                    self.shared.dropped.fetch_add(excess as u64, Ordering::Relaxed);
                }
                Err(msg)
            }
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

    /// Writes succeed again: clear the error and leave an event saying what the outage cost,
    /// dated when it began, so the history shows the gap and its reason.
    fn record_recovery(&mut self) {
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
        if let Err(e) = self.apply(&[(true, event)], false) {
            tracing::warn!(error = %e, "could not record the storage outage");
        }
    }

    fn apply(&mut self, ops: &[(bool, WriteOp)], write_samples: bool) -> rusqlite::Result<()> {
        let session = self.store.session_id;
        let log_limit = self.store.cfg.log_lines_per_agent;
        let tx = self.store.conn.transaction()?;
        let mut new_series = Vec::new();
        let mut last_values: HashMap<i64, (i64, f64)> = HashMap::new();
        let mut logged: HashSet<&str> = HashSet::new();
        for (_, op) in ops {
            let mut sink = SampleSink {
                series: &mut self.series,
                new_series: &mut new_series,
                last_values: &mut last_values,
                rows: &mut self.pending_rows,
            };
            let r = apply_op(&tx, session, op, &mut sink, &self.written);
            match r {
                Ok(()) => {
                    if let WriteOp::Logs(lines) = op {
                        logged.extend(lines.iter().map(|l| l.agent.as_str()));
                    }
                }
                // A statement that violates a constraint was rolled back on its own; the
                // rest of the batch is still good, so skip the bad operation, not the batch.
                Err(e) if is_bad_data(&e) => {
                    tracing::warn!(error = %e, op = ?op, "store writer skipped an invalid operation");
                }
                Err(e) => {
                    drop(tx);
                    self.forget(new_series);
                    return Err(e);
                }
            }
        }
        if !self.pending_rows.is_empty() && self.pending_since.is_none() {
            self.pending_since = Some(Instant::now());
        }
        let due = self.pending_since.is_some_and(|t| t.elapsed() >= self.store.cfg.sample_flush_interval);
        if write_samples || due || self.pending_rows.len() >= MAX_PENDING_ROWS {
            // In key order, consecutive rows land in the same B-tree pages.
            self.pending_rows.sort_unstable_by_key(|&(id, ts, _)| (sample_block(ts), id, ts));
            let mut insert = tx.prepare_cached(
                "INSERT OR REPLACE INTO metric_samples (block, series_id, ts_ms, value)
                 VALUES (?1, ?2, ?3, ?4)",
            )?;
            for (id, ts, v) in self.pending_rows.drain(..) {
                insert.execute(params![sample_block(ts), id, ts, v])?;
            }
            self.pending_since = None;
        }
        if let Some(newest) = last_values.values().map(|(ts, _)| *ts).max() {
            self.newest_sample_ms = self.newest_sample_ms.max(newest);
        }
        last_values.retain(|id, &mut (ts, v)| match self.newest_written.get(id) {
            Some(&(written_ts, written_v)) => {
                ts >= written_ts
                    && (written_v.to_bits() != v.to_bits() || ts - written_ts >= schema::NEWEST_REFRESH_MS)
            }
            None => true,
        });
        {
            let mut stmt = tx.prepare_cached(
                "UPDATE metric_series SET last_ms = ?2, last_value = ?3
                 WHERE id = ?1 AND (last_ms IS NULL OR last_ms <= ?2)",
            )?;
            for (id, (ts, v)) in &last_values {
                stmt.execute(params![id, ts, v])?;
            }
            let mut prune = tx.prepare_cached(
                "DELETE FROM log_lines WHERE agent = ?1 AND id <= (
                     SELECT id FROM log_lines WHERE agent = ?1 ORDER BY id DESC LIMIT 1 OFFSET ?2)",
            )?;
            for agent in logged {
                prune.execute(params![agent, log_limit as i64])?;
            }
        }
        let committed = tx.commit();
        if committed.is_err() {
            self.forget(new_series);
        }
        committed?;
        self.newest_written.extend(last_values);
        Ok(())
    }

    /// After a failed transaction: series created in it do not exist, and the sample rows
    /// that were waiting (bulk data, like the rest of the failed batch) are dropped and counted.
    fn forget(&mut self, new_series: Vec<(String, String)>) {
        for (scope, metric) in new_series {
            if let Some(metrics) = self.series.get_mut(&scope) {
                metrics.remove(&metric);
            }
        }
        if !self.pending_rows.is_empty() {
            self.pending_rows.clear();
            self.pending_since = None;
            self.shared.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Keeps the WAL under its limit. The checkpointer's PASSIVE checkpoints copy pages back,
    /// and SQLite starts the log again from the top of the file once all of it is copied and no
    /// reader is on an older snapshot: the file keeps its size, the high-water mark of the log,
    /// and is reused. Readers that read often can keep the log from starting again, and then the
    /// file grows. So a TRUNCATE checkpoint is tried when the file is past its limit, or past
    /// half of it and larger than at the last look (the log is not starting again). Not merely
    /// because it is large: a TRUNCATE holds the write lock while it copies, syncs and
    /// truncates, 12-50 ms beside a busy writer, which a file being reused does not need (with
    /// a quarter of the limit as the only test, a writer committing twenty times a second paid
    /// that every twenty seconds or so). It waits on readers through the busy handler, so it
    /// runs with a busy timeout of a few milliseconds: long enough for short read transactions
    /// that started before the backfill to end, never long enough for a reader that holds a
    /// snapshot to stall the writer. When it stays busy it is tried again after
    /// [`CHECKPOINT_RETRY`].
    fn bound_wal(&mut self) {
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

    /// Notices when the database's files are not the ones at their paths any more (see
    /// [`WriterHandle::database_lost`]); says so once, loudly.
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
    fn housekeeping(&mut self) {
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
            self.queue(false, WriteOp::Samples(samples));
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

/// Whether a WAL file of `wal_bytes`, `seen` at the last look, is to be truncated (see
/// [`Writer::bound_wal`]): past its limit, or past half of it and still growing.
fn needs_truncate(wal_bytes: u64, seen: u64, limit: u64) -> bool {
    wal_bytes > limit || (wal_bytes > limit / 2 && wal_bytes > seen)
}

/// Errors that come from the data in one operation rather than from the storage.
fn is_bad_data(e: &rusqlite::Error) -> bool {
    match e {
        rusqlite::Error::SqliteFailure(f, _) => {
            matches!(f.code, ErrorCode::ConstraintViolation | ErrorCode::TooBig | ErrorCode::TypeMismatch)
        }
        rusqlite::Error::ToSqlConversionFailure(_) => true,
        _ => false,
    }
}

/// Series ids by scope, then metric: looked up by `&str`, without building a key per sample.
type SeriesIds = HashMap<String, HashMap<String, i64>>;

fn series_id(
    tx: &Connection,
    cache: &mut SeriesIds,
    new_series: &mut Vec<(String, String)>,
    scope: &str,
    metric: &str,
) -> rusqlite::Result<i64> {
    if let Some(id) = cache.get(scope).and_then(|m| m.get(metric)) {
        return Ok(*id);
    }
    tx.prepare_cached("INSERT OR IGNORE INTO metric_series (scope, metric) VALUES (?1, ?2)")?
        .execute(params![scope, metric])?;
    let id: i64 = tx
        .prepare_cached("SELECT id FROM metric_series WHERE scope = ?1 AND metric = ?2")?
        .query_row(params![scope, metric], |r| r.get(0))?;
    cache.entry(scope.to_owned()).or_default().insert(metric.to_owned(), id);
    new_series.push((scope.to_owned(), metric.to_owned()));
    Ok(id)
}

/// Writes the lifecycle part of an agent's status row (what [`AgentStatus::same_lifecycle`]
/// compares), creating the row if need be; [`update_reported`] writes the rest.
fn upsert_lifecycle(
    tx: &Connection,
    session: Option<i64>,
    s: &AgentStatus,
    now: i64,
) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO agent_state (agent, session_id, state, health, ready, pid, pgid,
                pid_start_ticks, started_ms, exited_ms, exit_code, exit_signal, restarts,
                last_error, updated_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)
             ON CONFLICT (agent) DO UPDATE SET
                session_id = excluded.session_id, state = excluded.state,
                health = excluded.health, ready = excluded.ready, pid = excluded.pid,
                pgid = excluded.pgid, pid_start_ticks = excluded.pid_start_ticks,
                started_ms = excluded.started_ms, exited_ms = excluded.exited_ms,
                exit_code = excluded.exit_code, exit_signal = excluded.exit_signal,
                restarts = excluded.restarts, last_error = excluded.last_error,
                updated_ms = excluded.updated_ms",
    )?
    .execute(params![
        s.agent,
        session,
        s.lifecycle.state.as_str(),
        s.lifecycle.health.as_str(),
        s.lifecycle.ready,
        s.lifecycle.pid,
        s.lifecycle.pgid,
        s.lifecycle.pid_start_ticks,
        s.lifecycle.started_ms,
        s.lifecycle.exited_ms,
        s.lifecycle.exit_code,
        s.lifecycle.exit_signal,
        s.lifecycle.restarts,
        s.lifecycle.last_error,
        now
    ])?;
    Ok(())
}

/// Writes only the fields an agent reports of itself (see [`AgentStatus::same_lifecycle`]);
/// returns the number of rows changed.
fn update_reported(tx: &Connection, s: &AgentStatus, now: i64) -> rusqlite::Result<usize> {
    tx.prepare_cached(
        "UPDATE agent_state SET last_heartbeat_ms = ?2, heartbeats = ?3, status_text = ?4,
            task = ?5, model = ?6, tokens_in = ?7, tokens_out = ?8, cost = ?9,
            notify_errors = ?10, updated_ms = ?11
         WHERE agent = ?1",
    )?
    .execute(params![
        s.agent,
        s.reported.last_heartbeat_ms,
        s.reported.heartbeats,
        s.reported.status_text,
        s.reported.task,
        s.reported.model,
        s.reported.tokens_in,
        s.reported.tokens_out,
        s.reported.cost,
        s.reported.notify_errors,
        now
    ])
}

/// Where a batch's samples go: series ids (created as needed, and noted so that a failed
/// transaction can forget them), each series' newest value, and the rows that wait.
struct SampleSink<'a> {
    series: &'a mut SeriesIds,
    new_series: &'a mut Vec<(String, String)>,
    last_values: &'a mut HashMap<i64, (i64, f64)>,
    rows: &'a mut Vec<(i64, i64, f64)>,
}

fn apply_op(
    tx: &Connection,
    session: Option<i64>,
    op: &WriteOp,
    sink: &mut SampleSink<'_>,
    written: &HashMap<String, Box<AgentStatus>>,
) -> rusqlite::Result<()> {
    let now = now_ms();
    match op {
        WriteOp::RegisterAgent(a) => {
            tx.prepare_cached(
                "INSERT INTO agents (name, description, kind, command, capabilities, config, enabled,
                                     desired_state, heartbeat_timeout_ms, position, updated_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
                 ON CONFLICT (name) DO UPDATE SET
                    description = excluded.description, kind = excluded.kind,
                    command = excluded.command, capabilities = excluded.capabilities,
                    config = excluded.config, enabled = excluded.enabled,
                    desired_state = excluded.desired_state,
                    heartbeat_timeout_ms = excluded.heartbeat_timeout_ms,
                    position = excluded.position, updated_ms = excluded.updated_ms",
            )?
            .execute(params![
                a.name,
                a.description,
                a.kind,
                json(&a.command),
                json(&a.capabilities),
                a.config.to_string(),
                a.enabled,
                a.desired_state.as_str(),
                a.heartbeat_timeout_ms,
                a.position,
                now
            ])?;
            tx.prepare_cached(
                "INSERT OR IGNORE INTO agent_state (agent, session_id, state, health, updated_ms)
                 VALUES (?1, ?2, 'stopped', 'unknown', ?3)",
            )?
            .execute(params![a.name, session, now])?;
        }
        WriteOp::SetDesired { agent, desired } => {
            tx.prepare_cached("UPDATE agents SET desired_state = ?2, updated_ms = ?3 WHERE name = ?1")?
                .execute(params![agent, desired.as_str(), now])?;
        }
        WriteOp::RemoveUnlisted { keep, reason } => {
            let removed = tx
                .prepare_cached(
                    "UPDATE agents SET desired_state = 'removed', updated_ms = ?2
                     WHERE desired_state != 'removed' AND name NOT IN (SELECT value FROM json_each(?1))
                     RETURNING name",
                )?
                .query_map(params![json(keep), now], |r| r.get::<_, String>(0))?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            let mut event = tx.prepare_cached(
                "INSERT INTO events (ts_ms, session_id, agent, kind, severity, message)
                 VALUES (?1, ?2, ?3, ?4, 'info', ?5)",
            )?;
            for agent in removed {
                let kind = EventKind::AgentRemoved.as_str();
                event.execute(params![now, session, agent, kind, format!("removed: {reason}")])?;
            }
        }
        WriteOp::Status(s) => {
            // Most statuses are heartbeats: when the committed row already holds the same
            // lifecycle, only what the agent reports is written. Otherwise (or if the row is
            // gone) the lifecycle part is written first, creating the row if need be.
            let routine = written.get(&s.agent).is_some_and(|w| w.same_lifecycle(s));
            if !routine || update_reported(tx, s, now)? == 0 {
                upsert_lifecycle(tx, session, s, now)?;
                update_reported(tx, s, now)?;
            }
        }
        WriteOp::Event(e) => {
            tx.prepare_cached(
                "INSERT INTO events (ts_ms, session_id, agent, kind, severity, message)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![
                e.ts_ms,
                session,
                e.agent,
                e.kind.as_str(),
                e.severity.as_str(),
                e.message
            ])?;
        }
        WriteOp::Samples(samples) => {
            for s in samples {
                // Before 1970 is no time a launcher stamps; blocks and minutes of raw rows are
                // divisions that assume a time after it.
                if !s.value.is_finite() || s.ts_ms < 0 {
                    continue;
                }
                let id = series_id(tx, sink.series, sink.new_series, &s.scope, &s.metric)?;
                sink.rows.push((id, s.ts_ms, s.value));
                let newest = sink.last_values.entry(id).or_insert((s.ts_ms, s.value));
                if s.ts_ms >= newest.0 {
                    *newest = (s.ts_ms, s.value);
                }
            }
        }
        WriteOp::Logs(lines) => {
            let mut stmt = tx.prepare_cached(
                "INSERT INTO log_lines (agent, stream, ts_ms, line) VALUES (?1, ?2, ?3, ?4)",
            )?;
            for l in lines {
                stmt.execute(params![l.agent, l.stream.as_str(), l.ts_ms, l.line])?;
            }
        }
        WriteOp::SessionAlive { ts_ms, status } => {
            tx.prepare_cached(
                "UPDATE launcher_sessions SET last_seen_ms = ?2, status = coalesce(?3, status)
                 WHERE id = ?1",
            )?
            .execute(params![session, ts_ms, status])?;
        }
        WriteOp::SessionEnded { ts_ms, reason } => {
            tx.prepare_cached(
                "UPDATE launcher_sessions SET last_seen_ms = ?2, stopped_ms = ?2, exit_reason = ?3
                 WHERE id = ?1",
            )?
            .execute(params![session, ts_ms, reason])?;
            tx.prepare_cached("DELETE FROM agent_escapees WHERE session_id = ?1")?.execute([session])?;
        }
        WriteOp::Escapees { agent, processes } => {
            tx.prepare_cached("DELETE FROM agent_escapees WHERE session_id = ?1 AND agent = ?2")?
                .execute(params![session, agent])?;
            let mut insert = tx.prepare_cached(
                "INSERT OR REPLACE INTO agent_escapees (session_id, agent, pid, start_ticks)
                 VALUES (?1, ?2, ?3, ?4)",
            )?;
            for (pid, start_ticks) in processes {
                insert.execute(params![session, agent, pid, start_ticks])?;
            }
        }
    }
    Ok(())
}

fn json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "null".into())
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

//! The read-only side of the store, used by the dashboard and its one-shot commands.
//!
//! Every connection is opened with `SQLITE_OPEN_READ_ONLY` (never `CREATE`) and then
//! `PRAGMA query_only=1`, so a reader cannot write even by mistake. Every query runs inside a
//! short explicit read transaction whose rows are all read before it ends: an open read
//! transaction pins a WAL snapshot and would stop the writer's checkpoints from resetting the
//! WAL. Results are plain owned data, bounded by LIMITs and served by indexes.

use crate::error::{AtPath, Result, StoreError};
use crate::model::{
    AgentRow, AgentStatus, Event, EventKind, FiringAlert, HostStats, LastRun, Lifecycle, LogLine, Point,
    Reported, Severity, Snapshot, metric,
};
use crate::rows::{LOG_LINE_COLUMNS, log_line_from_row, parse_text};
use crate::schema::{self, HOUR_MS, MINUTE_MS, SCHEMA_VERSION, sample_block};
use crate::time::now_ms;
use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::{Connection, OpenFlags, OptionalExtension, Row, Statement, params};
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Newest error and critical events put in every snapshot: enough that the dashboard, which
/// groups them by agent and kind, still sees other agents' problems behind a crash loop.
const PROBLEMS_IN_SNAPSHOT: i64 = 200;

/// What a snapshot's agent rows carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detail {
    /// Every column: what the screens and `status --json` show.
    Full,
    /// Everything but the free text: description, kind, command, capabilities, who stopped
    /// it, status text, task, model and last error are left empty. What the exporter and
    /// the health endpoints need, without the strings they would read and never use.
    Figures,
}

/// The snapshot's agent query, with `$text` for the free-text columns: every agent that is
/// not removed, its state, and its last finished run that was not skipped (a scheduled agent's
/// health is that run's outcome). Rows are read by column name, so the columns' order is free.
macro_rules! agents_query {
    ($text:literal) => {
        concat!(
            "SELECT a.name, a.enabled, a.desired_state, a.heartbeat_timeout_ms, a.position,
                    s.state, s.health, s.ready, s.pid, s.started_ms, s.exited_ms, s.exit_code,
                    s.exit_signal, s.restarts, s.last_heartbeat_ms, s.heartbeats, s.tokens_in,
                    s.tokens_out, s.cost, s.notify_errors, s.updated_ms, s.pgid,
                    s.pid_start_ticks, s.next_run_ms,
                    r.id AS run_id, r.trigger AS run_trigger, r.outcome AS run_outcome,
                    r.ts_ms AS run_started_ms, r.ended_ms AS run_ended_ms,
                    r.duration_ms AS run_duration_ms, r.exit_code AS run_exit_code,
                    r.exit_signal AS run_exit_signal, r.cost AS run_cost, ",
            $text,
            " FROM agents a JOIN agent_state s ON s.agent = a.name
             LEFT JOIN runs r ON r.id = (
                 SELECT id FROM runs
                 WHERE agent = a.name AND outcome IS NOT NULL AND outcome != 'skipped'
                 ORDER BY id DESC LIMIT 1)
             WHERE a.desired_state != 'removed'"
        )
    };
}

impl Detail {
    fn agents_sql(self) -> &'static str {
        match self {
            Detail::Full => agents_query!(
                "a.description, a.kind, a.command, a.capabilities, a.stopped_by, s.status_text,
                 s.task, s.model, s.last_error"
            ),
            // Constants in place of the text, under the same names: one row mapper serves both.
            Detail::Figures => agents_query!(
                "'' AS description, '' AS kind, '[]' AS command, '[]' AS capabilities,
                 NULL AS stopped_by, NULL AS status_text, NULL AS task, NULL AS model,
                 NULL AS last_error"
            ),
        }
    }
}

/// Which captured lines [`Reader::log_page`] returns.
#[derive(Debug, Clone, Default)]
pub struct LogFilter {
    pub agent: Option<String>,
    pub since_ms: Option<i64>,
    pub after_id: Option<i64>,
    pub before_id: Option<i64>,
    pub limit: i64,
}

/// Which events to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventFilter {
    pub agent: Option<String>,
    pub kind: Option<EventKind>,
    pub min_severity: Severity,
    /// Only events with an id above this (for following).
    pub after_id: Option<i64>,
    pub limit: i64,
}

impl Default for EventFilter {
    fn default() -> Self {
        EventFilter { agent: None, kind: None, min_severity: Severity::Info, after_id: None, limit: 200 }
    }
}

/// A read-only handle on an existing Agentvisor database.
pub struct Reader {
    path: PathBuf,
    pool: r2d2::Pool<SqliteConnectionManager>,
    /// `PRAGMA data_version` is per connection, so one connection is kept aside to ask it.
    watch: Connection,
    pacer: Pacer,
    /// Every metric name and scope seen, shared by all snapshots' agent rows and
    /// [`Reader::series_names`].
    names: RefCell<foldhash::HashSet<Arc<str>>>,
    /// Scope and metric name of each series id seen, indexed by id: series are never renamed
    /// or deleted, so a snapshot reads only ids and values, not ten thousand pairs of names.
    series_names: RefCell<Vec<Option<SeriesName>>>,
    /// Command and capability lists by their JSON text, parsed once.
    lists: RefCell<foldhash::HashMap<String, Arc<[String]>>>,
    /// The last snapshot's sizes, to size the next one's vectors.
    sizes: Cell<Sizes>,
}

/// How many agents and agent series values the last snapshot held.
#[derive(Debug, Clone, Copy, Default)]
struct Sizes {
    agents: usize,
    values: usize,
}

/// Whose a series is.
#[derive(Debug, Clone, Copy)]
enum Owner {
    Host,
    Launcher,
    /// The agent at this position in the snapshot.
    Agent(usize),
    /// No agent's in the snapshot (a removed agent's).
    Nobody,
}

/// A series' scope and metric name, both shared through [`Reader::names`].
type SeriesName = (Arc<str>, Arc<str>);

/// Series ids up to this are kept in [`Reader::series_names`] (they count up from 1); any
/// beyond it are read by name each time rather than grow the table without bound.
const MAX_CACHED_SERIES_ID: usize = 1 << 20;

/// Distinct lists kept parsed; past this many (reloads that change commands again and again)
/// the cache starts afresh.
const MAX_CACHED_LISTS: usize = 10_000;

/// The largest share of its wall time a reader may spend in read transactions, on average.
/// A dashboard frame's reads take a few milliseconds, ten times a second at most, so a
/// dashboard never notices; a reader looping as fast as it can is slowed to this share, so
/// that however many readers run, they cannot take the CPU the launcher's writer needs.
const READ_SHARE: f64 = 0.1;
/// Read time a reader may use at once after a pause, before pacing starts.
const READ_BURST_S: f64 = 0.05;

/// A token bucket of read time: credit accrues at [`READ_SHARE`] of the time passed, up to
/// [`READ_BURST_S`]; each read spends what it took; a read that finds the credit spent waits
/// until it is back to zero.
struct Pacer {
    credit_s: Cell<f64>,
    updated: Cell<Instant>,
}

impl Pacer {
    fn new() -> Pacer {
        Pacer { credit_s: Cell::new(READ_BURST_S), updated: Cell::new(Instant::now()) }
    }

    fn wait_turn(&self) {
        let now = Instant::now();
        let earned = now.duration_since(self.updated.get()).as_secs_f64() * READ_SHARE;
        let credit = (self.credit_s.get() + earned).min(READ_BURST_S);
        if credit < 0.0 {
            std::thread::sleep(Duration::from_secs_f64(-credit / READ_SHARE));
            self.credit_s.set(0.0);
            self.updated.set(Instant::now());
        } else {
            self.credit_s.set(credit);
            self.updated.set(now);
        }
    }

    fn spent(&self, took: Duration) {
        self.credit_s.set(self.credit_s.get() - took.as_secs_f64());
    }
}

fn read_only_flags() -> OpenFlags {
    OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI
}

/// The nice value [`lower_thread_priority`] gives a thread, the lowest there is: the scheduler
/// then favours the launcher (nice 0) about seventy to one when both want the CPU (what that
/// buys the writer's commits is measured in BENCHMARKS.md, section 5, and listed in
/// docs/architecture.md). A dashboard on an idle machine runs as fast as ever; on one
/// saturated by other work a frame's few milliseconds take a few hundred.
const READER_NICE: i32 = 19;

/// Lowers the calling thread's CPU priority (Linux keeps a nice value per thread, and threads
/// inherit their creator's), for a reader: whatever it does, the launcher's writer comes first.
/// Failing to is harmless and ignored.
#[allow(unsafe_code)]
pub fn lower_thread_priority() {
    // SAFETY: getpriority and setpriority only read and change the calling thread's
    // scheduling priority; they touch no memory of ours.
    let current = unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) };
    if current >= READER_NICE {
        return; // Already at least as low (started with `nice`): never raise it.
    }
    // SAFETY: as above.
    let rc = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, READER_NICE) };
    if rc != 0 {
        tracing::debug!(error = %std::io::Error::last_os_error(), "could not lower the reading thread's priority");
    }
}

/// Opens one read-only connection the way every reader connection is opened: no `CREATE`
/// flag, `query_only` on. Public so tests can prove that such a connection cannot write.
pub fn open_read_only(path: &Path) -> Result<Connection> {
    let conn = Connection::open_with_flags(path, read_only_flags()).at(path)?;
    prepare_reader(&conn).at(path)?;
    Ok(conn)
}

/// A WAL reader creates `-wal` and `-shm` when they are missing (the launcher removes them
/// when it stops), owned by the reader's user and primary group. A dashboard run by a member
/// of the launcher's group would so leave files the launcher may be unable to open at its next
/// start. Such a reader waits instead; the database's owner may create them, and root too
/// (SQLite gives what root creates to the database's owner).
fn refuse_to_create_launcher_files(path: &Path) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let owner = std::fs::metadata(path).at(path)?.uid();
    let reader = effective_uid();
    if reader == 0 || reader == owner {
        return Ok(());
    }
    for suffix in ["-wal", "-shm"] {
        let mut f = path.as_os_str().to_owned();
        f.push(suffix);
        if std::fs::symlink_metadata(&f).is_err() {
            let missing =
                Path::new(&f).file_name().map_or_else(String::new, |n| n.to_string_lossy().into_owned());
            return Err(StoreError::LauncherFilesMissing { path: path.to_owned(), missing, reader, owner });
        }
    }
    Ok(())
}

#[allow(unsafe_code)]
fn effective_uid() -> u32 {
    // SAFETY: geteuid has no arguments, touches no memory and cannot fail.
    unsafe { libc::geteuid() }
}

fn prepare_reader(conn: &Connection) -> rusqlite::Result<()> {
    conn.pragma_update(None, "query_only", true)?;
    conn.busy_timeout(Duration::from_secs(1))?;
    conn.set_prepared_statement_cache_capacity(32);
    Ok(())
}

impl Reader {
    /// Opens `path` read-only; fails without creating anything when it does not exist, is not
    /// initialised yet, belongs to another program or has a newer schema.
    pub fn open(path: &Path) -> Result<Reader> {
        Self::open_with_pool_size(path, 2)
    }

    pub fn open_with_pool_size(path: &Path, pool_size: u32) -> Result<Reader> {
        if !path.exists() {
            return Err(StoreError::NotFound { path: path.to_owned() });
        }
        crate::filesystem::refuse_network_filesystem(path)?;
        refuse_to_create_launcher_files(path)?;
        let watch = open_read_only(path)?;
        let version = {
            let tx = watch.unchecked_transaction().at(path)?;
            let v = schema::check_compatible(&tx, path)?;
            tx.commit().at(path)?;
            v
        };
        if version == 0 {
            return Err(StoreError::NotInitialized { path: path.to_owned() });
        }
        if version < SCHEMA_VERSION {
            return Err(StoreError::TooOld { path: path.to_owned(), found: version, known: SCHEMA_VERSION });
        }
        let manager = SqliteConnectionManager::file(path)
            .with_flags(read_only_flags())
            .with_init(|c: &mut Connection| prepare_reader(c));
        let pool = r2d2::Pool::builder()
            .max_size(pool_size.max(1))
            .min_idle(Some(0))
            .connection_timeout(Duration::from_secs(5))
            .build_unchecked(manager);
        Ok(Reader {
            path: path.to_owned(),
            pool,
            watch,
            pacer: Pacer::new(),
            names: RefCell::default(),
            series_names: RefCell::default(),
            lists: RefCell::default(),
            sizes: Cell::default(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Changes whenever another connection commits: the cheap "is there anything new?" check.
    pub fn data_version(&self) -> Result<i64> {
        self.watch
            .prepare_cached("PRAGMA data_version")
            .and_then(|mut s| s.query_row([], |r| r.get(0)))
            .at(&self.path)
    }

    /// Runs `f` inside one short read transaction on a pooled connection, when the reader's
    /// share of read time allows.
    pub(crate) fn read<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T> {
        self.pacer.wait_turn();
        let started = Instant::now();
        let result = (|| {
            let conn = self.pool.get().at(&self.path)?;
            let tx = conn.unchecked_transaction().at(&self.path)?;
            let out = f(&tx).at(&self.path)?;
            tx.commit().at(&self.path)?;
            Ok(out)
        })();
        self.pacer.spent(started.elapsed());
        result
    }

    /// Everything one dashboard frame needs.
    pub fn snapshot(&self) -> Result<Snapshot> {
        self.snapshot_with(Detail::Full)
    }

    /// A snapshot whose agent rows carry `detail`.
    pub fn snapshot_with(&self, detail: Detail) -> Result<Snapshot> {
        let (db_bytes, wal_bytes) = self.file_sizes();
        self.read(|c| {
            let now = now_ms();
            let launcher = c
                .prepare_cached(
                    "SELECT id, pid, host, version, config_path, started_ms, last_seen_ms,
                            stopped_ms, exit_reason, status
                     FROM launcher_sessions ORDER BY id DESC LIMIT 1",
                )?
                .query_row([], crate::rows::session_from_row)
                .optional()?;
            let mut lists = self.lists.borrow_mut();
            let mut stmt = c.prepare_cached(detail.agents_sql())?;
            let columns = AgentColumns::of(&stmt)?;
            // Sized as the last snapshot was: growing a vector of a thousand large rows copies
            // them over and over, memory traffic that costs more than reading them.
            let mut agents = Vec::with_capacity(self.sizes.get().agents);
            let mut rows = stmt.query([])?;
            while let Some(r) = rows.next()? {
                agents.push(agent_from_row(r, &columns, &mut lists)?);
            }
            drop(rows);
            // Sorted here rather than by SQLite, which would copy every row, all its columns,
            // through a temporary sorter first. Names compare bytewise, as SQLite's BINARY.
            agents.sort_unstable_by(|a, b| (a.position, &a.name).cmp(&(b.position, &b.name)));
            let index: foldhash::HashMap<&str, usize> =
                agents.iter().enumerate().map(|(i, a)| (a.name.as_str(), i)).collect();
            let mut host = HostStats::default();
            let mut launcher_metrics = BTreeMap::new();
            let mut values: Vec<(usize, Arc<str>, f64)> = Vec::with_capacity(self.sizes.get().values);
            // Series are never renamed or deleted and their ids count up, so the names of those
            // newer than any cached are read first, by id range; the scan of every series then
            // reads only ids and values, the least SQLite can do per row.
            let mut cache = self.series_names.borrow_mut();
            let mut names = self.names.borrow_mut();
            let mut stmt =
                c.prepare_cached("SELECT id, scope, metric FROM metric_series WHERE id >= ?1 AND id <= ?2")?;
            let mut rows = stmt.query([cache.len().max(1) as i64, MAX_CACHED_SERIES_ID as i64])?;
            while let Some(r) = rows.next()? {
                if let Ok(i) = usize::try_from(r.get::<_, i64>(0)?) {
                    let pair: SeriesName = (
                        intern(&mut names, r.get_ref(1)?.as_str()?),
                        intern(&mut names, r.get_ref(2)?.as_str()?),
                    );
                    if cache.len() <= i {
                        cache.resize(i + 1, None);
                    }
                    cache[i] = Some(pair);
                }
            }
            let mut stmt = c.prepare_cached("SELECT id, last_value FROM metric_series")?;
            let mut by_id = c.prepare_cached("SELECT scope, metric FROM metric_series WHERE id = ?1")?;
            let mut rows = stmt.query([])?;
            // An agent's series mostly follow each other: whose they are is found once per run
            // of series of one scope.
            let mut last: Option<(Arc<str>, Owner)> = None;
            while let Some(r) = rows.next()? {
                let Some(value) = r.get::<_, Option<f64>>(1)? else { continue };
                let id: i64 = r.get(0)?;
                let owned;
                let (scope, name) =
                    match usize::try_from(id).ok().and_then(|i| cache.get(i)).and_then(Option::as_ref) {
                        Some((scope, name)) => (scope, name),
                        // Beyond the cache's bound: read by id each time.
                        None => {
                            let (scope, name): (String, String) =
                                by_id.query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))?;
                            owned = (intern(&mut names, &scope), intern(&mut names, &name));
                            (&owned.0, &owned.1)
                        }
                    };
                let owner = match &last {
                    Some((s, owner)) if Arc::ptr_eq(s, scope) => *owner,
                    _ => {
                        let owner = match &**scope {
                            metric::HOST => Owner::Host,
                            metric::LAUNCHER => Owner::Launcher,
                            agent => index.get(agent).map_or(Owner::Nobody, |&i| Owner::Agent(i)),
                        };
                        last = Some((scope.clone(), owner));
                        owner
                    }
                };
                match owner {
                    Owner::Host => set_host(&mut host, name, value),
                    Owner::Launcher => {
                        launcher_metrics.insert(name.to_string(), value);
                    }
                    Owner::Agent(i) => values.push((i, name.clone(), value)),
                    Owner::Nobody => {}
                }
            }
            self.sizes.set(Sizes { agents: agents.len(), values: values.len() });
            drop(index);
            for (i, name, value) in values {
                agents[i].metrics.insert(name, value);
            }
            let mut probes = crate::probes::load(c)?;
            for a in &mut agents {
                a.probes = probes.remove(&a.name).unwrap_or_default();
            }
            // A stopped agent's last CPU and memory samples describe a process that is gone.
            for a in agents.iter_mut().filter(|a| !a.lifecycle.state.has_process()) {
                for name in [metric::CPU_PERCENT, metric::MEMORY_BYTES, metric::THREADS] {
                    a.metrics.remove(name);
                }
            }
            let mut stmt = c.prepare_cached(
                "SELECT id, ts_ms, agent, kind, severity, message FROM events
                 WHERE severity IN ('error', 'critical') ORDER BY id DESC LIMIT ?1",
            )?;
            let columns = EventColumns::of(&stmt)?;
            let problems = stmt
                .query_map([PROBLEMS_IN_SNAPSHOT], |r| event_from_row(r, &columns))?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            let errors_last_hour = c
                .prepare_cached(
                    "SELECT count(*) FROM events
                     WHERE ts_ms >= ?1 AND severity IN ('error', 'critical')",
                )?
                .query_row([now - 3_600_000], |r| r.get(0))?;
            let alerts = firing_alerts(c)?;
            Ok(Snapshot {
                taken_ms: now,
                schema_version: SCHEMA_VERSION,
                launcher,
                launcher_metrics,
                host,
                agents,
                problems,
                errors_last_hour,
                db_bytes,
                wal_bytes,
                alerts,
            })
        })
    }

    /// The alerts firing now, by rule then agent.
    pub fn alerts(&self) -> Result<Vec<FiringAlert>> {
        self.read(firing_alerts)
    }

    /// Events matching `filter`, newest first.
    pub fn events(&self, filter: &EventFilter) -> Result<Vec<Event>> {
        let severities: Vec<&str> =
            Severity::ALL.iter().filter(|s| **s >= filter.min_severity).map(|s| s.as_str()).collect();
        let severities = serde_json::to_string(&severities).unwrap_or_else(|_| "[]".into());
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT id, ts_ms, agent, kind, severity, message FROM events
                 WHERE (?1 IS NULL OR agent = ?1) AND (?2 IS NULL OR kind = ?2)
                   AND severity IN (SELECT value FROM json_each(?3))
                   AND id > coalesce(?4, 0)
                 ORDER BY id DESC LIMIT ?5",
            )?;
            let columns = EventColumns::of(&stmt)?;
            stmt.query_map(
                params![
                    filter.agent,
                    filter.kind.map(EventKind::as_str),
                    severities,
                    filter.after_id,
                    filter.limit
                ],
                |r| event_from_row(r, &columns),
            )?
            .collect()
        })
    }

    /// How many events of each severity have an id above `after_id`, and the highest id in the
    /// table (0 when empty), read together: the exporter's event counters, kept up to date by
    /// counting only new rows (a range of the primary key) at each scrape.
    pub fn event_counts_after(&self, after_id: i64) -> Result<(Vec<(Severity, i64)>, i64)> {
        self.read(|c| {
            let max: i64 =
                c.prepare_cached("SELECT coalesce(max(id), 0) FROM events")?.query_row([], |r| r.get(0))?;
            let counts = c
                .prepare_cached(
                    "SELECT severity, count(*) FROM events WHERE id > ?1 AND id <= ?2 GROUP BY severity",
                )?
                .query_map(params![after_id, max], |r| Ok((parse_text(r, 0)?, r.get(1)?)))?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok((counts, max))
        })
    }

    /// The newest `limit` captured lines of `agent` (after `after_id` if given), oldest first.
    pub fn logs(&self, agent: &str, after_id: Option<i64>, limit: i64) -> Result<Vec<LogLine>> {
        let mut lines = self.read(|c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {LOG_LINE_COLUMNS} FROM log_lines
                 WHERE agent = ?1 AND id > coalesce(?2, 0) ORDER BY id DESC LIMIT ?3"
            ))?;
            stmt.query_map(params![agent, after_id, limit], log_line_from_row)?
                .collect::<rusqlite::Result<Vec<_>>>()
        })?;
        lines.reverse();
        Ok(lines)
    }

    /// Captured lines of every agent, or of `filter.agent`, newest first: the newest
    /// `filter.limit` of those after `after_id`, before `before_id` and at or after
    /// `since_ms`. Pages backwards with `before_id`; follows with `after_id`.
    pub fn log_page(&self, filter: &LogFilter) -> Result<Vec<LogLine>> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {LOG_LINE_COLUMNS} FROM log_lines
                 WHERE (?1 IS NULL OR agent = ?1) AND (?2 IS NULL OR ts_ms >= ?2)
                   AND id > coalesce(?3, 0) AND (?4 IS NULL OR id < ?4)
                 ORDER BY id DESC LIMIT ?5"
            ))?;
            let f = filter;
            stmt.query_map(params![f.agent, f.since_ms, f.after_id, f.before_id, f.limit], log_line_from_row)?
                .collect::<rusqlite::Result<Vec<_>>>()
        })
    }

    /// The agent's config as the launcher recorded it (environment values already replaced by
    /// their names); `None` for an unknown agent. Kept out of the snapshot because only the
    /// dashboard's detail screen needs it.
    pub fn agent_config(&self, agent: &str) -> Result<Option<serde_json::Value>> {
        self.read(|c| {
            c.prepare_cached("SELECT config FROM agents WHERE name = ?1")?
                .query_row([agent], |r| parse_json(r, 0))
                .optional()
        })
    }

    /// Metric names recorded for a scope (an agent name, `@host` or `@launcher`).
    pub fn metric_names(&self, scope: &str) -> Result<Vec<String>> {
        self.read(|c| {
            c.prepare_cached("SELECT metric FROM metric_series WHERE scope = ?1 ORDER BY metric")?
                .query_map([scope], |r| r.get(0))?
                .collect()
        })
    }

    /// A series since `since_ms`, averaged into at most `max_points` equal time steps.
    ///
    /// Raw samples and rollups never hold the same sample twice, so the union of both,
    /// summed per step, is exact: long windows come from rollups, recent ones from raw rows.
    pub fn series(
        &self,
        scope: &str,
        metric_name: &str,
        since_ms: i64,
        max_points: i64,
    ) -> Result<Vec<Point>> {
        let step = ((now_ms() - since_ms) / max_points.max(1)).max(1);
        self.read(|c| {
            let Some(id) = c
                .prepare_cached("SELECT id FROM metric_series WHERE scope = ?1 AND metric = ?2")?
                .query_row(params![scope, metric_name], |r| r.get::<_, i64>(0))
                .optional()?
            else {
                return Ok(Vec::new());
            };
            // Raw rows are keyed by block first: one index range per block held raw.
            c.prepare_cached(
                "WITH RECURSIVE blocks(b) AS (
                     SELECT max(?6, (SELECT min(block) FROM metric_samples))
                     UNION ALL
                     SELECT b + 1 FROM blocks WHERE b < (SELECT max(block) FROM metric_samples)
                 )
                 SELECT (ts_ms / ?2) * ?2 AS bucket, sum(sum) / sum(count), min(min), max(max), sum(count)
                 FROM (
                     SELECT r.ts_ms, r.value AS sum, r.value AS min, r.value AS max, 1 AS count
                     FROM blocks CROSS JOIN metric_samples r
                     WHERE r.block = blocks.b AND r.series_id = ?1 AND r.ts_ms >= ?3
                     UNION ALL
                     SELECT ts_ms, sum, min, max, count
                     FROM metric_rollups WHERE series_id = ?1 AND step_ms IN (?4, ?5) AND ts_ms >= ?3
                 )
                 GROUP BY bucket ORDER BY bucket",
            )?
            .query_map(params![id, step, since_ms, MINUTE_MS, HOUR_MS, sample_block(since_ms)], |r| {
                Ok(Point {
                    ts_ms: r.get(0)?,
                    value: r.get(1)?,
                    min: r.get(2)?,
                    max: r.get(3)?,
                    count: r.get(4)?,
                })
            })?
            .collect()
        })
    }

    /// The last `points` raw values of one metric for each of `scopes`: sparklines for a table.
    pub fn recent_values(
        &self,
        scopes: &[String],
        metric_name: &str,
        points: i64,
    ) -> Result<HashMap<String, Vec<f64>>> {
        let wanted = usize::try_from(points).unwrap_or(0);
        self.read(|c| {
            // Newest block first, one index range each, until enough values have come. The
            // walk starts at the series' own newest block (from `last_ms`, which lags by at
            // most NEWEST_REFRESH_MS), so a series that stopped a while ago does not probe every
            // block since. The rest of the walk is not read: the statement is reset when it is
            // dropped, inside this short transaction.
            let mut series = c.prepare_cached(
                "WITH newest(b) AS (SELECT max(block) FROM metric_samples)
                 SELECT id, min(newest.b, coalesce((last_ms + ?3) / ?4, newest.b))
                 FROM metric_series, newest WHERE scope = ?1 AND metric = ?2",
            )?;
            let mut stmt = c.prepare_cached(
                "WITH RECURSIVE blocks(b) AS (
                     SELECT ?2
                     UNION ALL
                     SELECT b - 1 FROM blocks WHERE b > (SELECT min(block) FROM metric_samples)
                 )
                 SELECT r.block, r.value FROM blocks CROSS JOIN metric_samples r
                 WHERE r.block = blocks.b AND r.series_id = ?1",
            )?;
            let mut out = HashMap::with_capacity(scopes.len());
            for scope in scopes {
                // (block, value) in walk order: blocks newest first, each block oldest first.
                let mut found: Vec<(i64, f64)> = Vec::new();
                let newest = series
                    .query_row(
                        params![scope, metric_name, schema::NEWEST_REFRESH_MS, schema::SAMPLE_BLOCK_MS],
                        |r| Ok((r.get::<_, i64>(0)?, r.get::<_, Option<i64>>(1)?)),
                    )
                    .optional()?;
                let Some((id, Some(start))) = newest else {
                    out.insert(scope.clone(), Vec::new());
                    continue;
                };
                let mut rows = stmt.query(params![id, start])?;
                while let Some(r) = rows.next()? {
                    let block: i64 = r.get(0)?;
                    if found.len() >= wanted && found.last().is_some_and(|(b, _)| *b != block) {
                        break;
                    }
                    found.push((block, r.get(1)?));
                }
                found.sort_by_key(|(b, _)| *b);
                let skip = found.len().saturating_sub(wanted);
                out.insert(scope.clone(), found.into_iter().skip(skip).map(|(_, v)| v).collect());
            }
            Ok(out)
        })
    }

    fn file_sizes(&self) -> (u64, u64) {
        let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
        (size(&self.path), size(&crate::paths::wal_path(&self.path)))
    }
}

/// The JSON list of strings in column `i`, parsed once per distinct text.
fn cached_list(
    r: &Row<'_>,
    i: usize,
    lists: &mut foldhash::HashMap<String, Arc<[String]>>,
) -> rusqlite::Result<Arc<[String]>> {
    let text = r.get_ref(i)?.as_str()?;
    if let Some(list) = lists.get(text) {
        return Ok(list.clone());
    }
    let list: Arc<[String]> = parse_json::<Vec<String>>(r, i)?.into();
    if lists.len() >= MAX_CACHED_LISTS {
        lists.clear();
    }
    lists.insert(text.to_owned(), list.clone());
    Ok(list)
}

/// The shared copy of a metric name.
fn intern(names: &mut foldhash::HashSet<Arc<str>>, name: &str) -> Arc<str> {
    if let Some(shared) = names.get(name) {
        return shared.clone();
    }
    let shared: Arc<str> = Arc::from(name);
    names.insert(shared.clone());
    shared
}

fn set_host(host: &mut HostStats, name: &str, value: f64) {
    let slot = match name {
        metric::CPU_PERCENT => &mut host.cpu_percent,
        metric::MEMORY_USED_BYTES => &mut host.memory_used_bytes,
        metric::MEMORY_TOTAL_BYTES => &mut host.memory_total_bytes,
        metric::LOAD1 => &mut host.load1,
        metric::LOAD5 => &mut host.load5,
        metric::LOAD15 => &mut host.load15,
        metric::DISK_FREE_BYTES => &mut host.disk_free_bytes,
        _ => return,
    };
    *slot = Some(value);
}

fn parse_json<T: serde::de::DeserializeOwned>(r: &Row<'_>, i: usize) -> rusqlite::Result<T> {
    let s: String = r.get(i)?;
    serde_json::from_str(&s)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e)))
}

// Rows are read by column name, so a query and its mapper cannot drift apart by position.
// rusqlite's `row.get("name")` searches the statement's columns by name for every value: fine
// for the one session row a snapshot reads (`crate::rows`), too slow for a thousand agent rows
// ten times a second. These mappers take positions looked up by name once per statement
// (`columns!`).

/// The `alerts` table (a few rows: read by column name).
fn firing_alerts(c: &Connection) -> rusqlite::Result<Vec<FiringAlert>> {
    let mut stmt = c.prepare_cached(
        "SELECT rule, agent, severity, since_ms, value, message FROM alerts ORDER BY rule, agent",
    )?;
    stmt.query_map([], |r| {
        Ok(FiringAlert {
            rule: r.get("rule")?,
            agent: r.get("agent")?,
            severity: parse_text(r, "severity")?,
            since_ms: r.get("since_ms")?,
            value: r.get("value")?,
            message: r.get("message")?,
        })
    })?
    .collect()
}

fn event_from_row(r: &Row<'_>, c: &EventColumns) -> rusqlite::Result<Event> {
    Ok(Event {
        id: r.get(c.id)?,
        ts_ms: r.get(c.ts_ms)?,
        agent: r.get(c.agent)?,
        kind: r.get(c.kind)?,
        severity: parse_text(r, c.severity)?,
        message: r.get(c.message)?,
    })
}

/// Declares the columns a row mapper reads: a struct of their positions in one statement,
/// each looked up by its name once. A statement that lacks one fails before any row is read,
/// naming the column.
macro_rules! columns {
    ($(#[$m:meta])* $name:ident { $($column:ident),+ $(,)? }) => {
        $(#[$m])*
        struct $name { $($column: usize),+ }

        impl $name {
            fn of(stmt: &Statement<'_>) -> rusqlite::Result<$name> {
                Ok($name { $($column: stmt.column_index(stringify!($column))?),+ })
            }
        }
    };
}

columns! {
    /// The columns of the event queries.
    EventColumns { id, ts_ms, agent, kind, severity, message }
}

columns! {
    /// The columns of the snapshot's agent query (`agents` joined with `agent_state`).
    AgentColumns {
        name, description, kind, command, capabilities, enabled, desired_state, stopped_by,
        heartbeat_timeout_ms, position, updated_ms,
        state, health, ready, pid, pgid, pid_start_ticks, started_ms, exited_ms, exit_code,
        exit_signal, restarts, last_error,
        last_heartbeat_ms, heartbeats, status_text, task, model, tokens_in, tokens_out, cost,
        notify_errors, next_run_ms,
        run_id, run_trigger, run_outcome, run_started_ms, run_ended_ms, run_duration_ms,
        run_exit_code, run_exit_signal, run_cost,
    }
}

fn agent_from_row(
    r: &Row<'_>,
    c: &AgentColumns,
    lists: &mut foldhash::HashMap<String, Arc<[String]>>,
) -> rusqlite::Result<AgentRow> {
    let name: String = r.get(c.name)?;
    Ok(AgentRow {
        description: r.get(c.description)?,
        kind: r.get(c.kind)?,
        command: cached_list(r, c.command, lists)?,
        capabilities: cached_list(r, c.capabilities, lists)?,
        enabled: r.get(c.enabled)?,
        desired_state: parse_text(r, c.desired_state)?,
        stopped_by: r.get(c.stopped_by)?,
        heartbeat_timeout_ms: r.get(c.heartbeat_timeout_ms)?,
        position: r.get(c.position)?,
        last_run: match r.get::<_, Option<i64>>(c.run_id)? {
            Some(id) => Some(LastRun {
                id,
                trigger: parse_text(r, c.run_trigger)?,
                outcome: parse_text(r, c.run_outcome)?,
                started_ms: r.get(c.run_started_ms)?,
                ended_ms: r.get(c.run_ended_ms)?,
                duration_ms: r.get(c.run_duration_ms)?,
                exit_code: r.get(c.run_exit_code)?,
                exit_signal: r.get(c.run_exit_signal)?,
                cost: r.get(c.run_cost)?,
            }),
            None => None,
        },
        next_run_ms: r.get(c.next_run_ms)?,
        status: AgentStatus {
            agent: name.clone(),
            lifecycle: Lifecycle {
                state: parse_text(r, c.state)?,
                health: parse_text(r, c.health)?,
                ready: r.get(c.ready)?,
                pid: r.get(c.pid)?,
                pgid: r.get(c.pgid)?,
                pid_start_ticks: r.get(c.pid_start_ticks)?,
                started_ms: r.get(c.started_ms)?,
                exited_ms: r.get(c.exited_ms)?,
                exit_code: r.get(c.exit_code)?,
                exit_signal: r.get(c.exit_signal)?,
                restarts: r.get(c.restarts)?,
                last_error: r.get(c.last_error)?,
            },
            reported: Reported {
                last_heartbeat_ms: r.get(c.last_heartbeat_ms)?,
                heartbeats: r.get(c.heartbeats)?,
                status_text: r.get(c.status_text)?,
                task: r.get(c.task)?,
                model: r.get(c.model)?,
                tokens_in: r.get(c.tokens_in)?,
                tokens_out: r.get(c.tokens_out)?,
                cost: r.get(c.cost)?,
                notify_errors: r.get(c.notify_errors)?,
            },
        },
        name,
        updated_ms: r.get(c.updated_ms)?,
        metrics: BTreeMap::new(),
        probes: Vec::new(),
    })
}

#[cfg(test)]
mod read_only_tests {
    use super::*;

    /// The dashboard's promise rests on this: neither the pooled connections nor the
    /// data_version connection can write, even when asked to by mistake.
    #[test]
    fn reader_connections_refuse_writes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let mut conn = rusqlite::Connection::open(&path).unwrap();
        conn.pragma_update(None, "journal_mode", "WAL").unwrap();
        crate::schema::migrate(&mut conn, &path).unwrap();
        drop(conn);
        let reader = Reader::open(&path).unwrap();
        let pooled = reader.read(|c| c.execute("CREATE TABLE intruder (x INTEGER)", []));
        assert!(pooled.is_err(), "a pooled reader connection accepted a write");
        let watch = reader.watch.execute("DELETE FROM events", []);
        assert!(watch.is_err(), "the data_version connection accepted a write");
        let query_only: i64 = reader.read(|c| c.query_row("PRAGMA query_only", [], |r| r.get(0))).unwrap();
        assert_eq!(query_only, 1);
    }
}

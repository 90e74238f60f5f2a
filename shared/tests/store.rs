//! The store against real SQLite files: migrations, the read-only promise, and a writer that
//! keeps committing and checkpointing next to busy readers.

// Helpers may unwrap: a failed set-up step is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use agentvisor_shared::model::{
    AgentSpec, AgentState, AgentStatus, DesiredState, EventKind, Health, Lifecycle, Reported, Severity,
};
use agentvisor_shared::reader::{Detail, open_read_only};
use agentvisor_shared::schema::APPLICATION_ID;
use agentvisor_shared::writer::WriterThread;
use agentvisor_shared::{
    EventFilter, NewEvent, NewSession, Reader, SCHEMA_VERSION, Sample, Store, StoreError, WriteOp,
    WriterConfig, WriterHandle,
};
use rusqlite::{Connection, OptionalExtension};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How long a test waits for what should take well under a second: it only bounds a hang, on a
/// loaded 2-core machine that may still be compiling.
const HANG: Duration = Duration::from_secs(60);

fn spec(name: &str) -> AgentSpec {
    AgentSpec {
        name: name.into(),
        description: format!("{name} agent"),
        kind: "process".into(),
        command: vec!["/bin/true".into()],
        capabilities: vec!["test".into()],
        config: serde_json::json!({"env": ["TOKEN"]}),
        enabled: true,
        desired_state: DesiredState::Running,
        heartbeat_timeout_ms: Some(5_000),
        position: 0,
    }
}

fn event(i: usize) -> WriteOp {
    WriteOp::Event(NewEvent {
        ts_ms: agentvisor_shared::time::now_ms(),
        agent: Some("a".into()),
        kind: EventKind::AgentError,
        severity: Severity::Info,
        message: format!("event {i}"),
    })
}

fn pragma(conn: &Connection, name: &str) -> i64 {
    conn.query_row(&format!("PRAGMA {name}"), [], |r| r.get(0)).unwrap()
}

fn session() -> NewSession {
    NewSession { pid: 1, host: "test".into(), version: "0".into(), config_path: None }
}

/// Polls `done` until it holds, failing the test after 10 s.
fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + HANG;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Opens `db` as the launcher does, begins a session and starts the writer thread.
fn start_writer(db: &Path, cfg: WriterConfig) -> (WriterHandle, WriterThread) {
    let mut store = Store::open(db, cfg).unwrap();
    store.begin_session(&session()).unwrap();
    store.start().unwrap()
}

#[test]
fn migrates_an_empty_file_and_reopens_idempotently() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    {
        let (w, t) = start_writer(&db, WriterConfig::default());
        w.send(WriteOp::RegisterAgent(Box::new(spec("a")))).unwrap();
        w.flush().unwrap();
        drop(w);
        t.join();
    }
    let conn = Connection::open(&db).unwrap();
    assert_eq!(pragma(&conn, "user_version"), SCHEMA_VERSION);
    assert_eq!(pragma(&conn, "application_id"), APPLICATION_ID);
    let mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
    assert_eq!(mode, "wal");
    assert_eq!(pragma(&conn, "auto_vacuum"), 2, "INCREMENTAL, so retention can return free pages");
    let tables_before: i64 = conn.query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0)).unwrap();
    drop(conn);

    let store = Store::open(&db, WriterConfig::default()).unwrap();
    drop(store);
    let conn = Connection::open(&db).unwrap();
    assert_eq!(pragma(&conn, "user_version"), SCHEMA_VERSION);
    let tables_after: i64 = conn.query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0)).unwrap();
    assert_eq!(tables_before, tables_after);
    let agents: i64 = conn.query_row("SELECT count(*) FROM agents", [], |r| r.get(0)).unwrap();
    assert_eq!(agents, 1, "data survives a reopen");
}

#[test]
fn newer_schema_is_refused_naming_both_versions() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    drop(Store::open(&db, WriterConfig::default()).unwrap());
    Connection::open(&db).unwrap().pragma_update(None, "user_version", SCHEMA_VERSION + 7).unwrap();

    let newer = SCHEMA_VERSION + 7;
    for err in [Store::open(&db, WriterConfig::default()).err(), Reader::open(&db).err()] {
        let err = err.expect("a newer schema must be refused");
        assert!(
            matches!(err, StoreError::TooNew { found, known, .. } if found == newer && known == SCHEMA_VERSION)
        );
        let msg = err.to_string();
        assert!(msg.contains(&newer.to_string()) && msg.contains(&SCHEMA_VERSION.to_string()), "{msg}");
    }
}

#[test]
fn foreign_and_missing_databases_are_refused_without_creating_anything() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.db");
    assert!(matches!(Reader::open(&missing), Err(StoreError::NotFound { .. })));
    assert!(!missing.exists(), "a reader must never create the database");

    let foreign = dir.path().join("foreign.db");
    let c = Connection::open(&foreign).unwrap();
    c.execute_batch("CREATE TABLE notes (x TEXT); INSERT INTO notes VALUES ('mine');").unwrap();
    drop(c);
    assert!(matches!(Store::open(&foreign, WriterConfig::default()), Err(StoreError::Foreign { .. })));
    let c = Connection::open(&foreign).unwrap();
    let n: i64 = c.query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0)).unwrap();
    assert_eq!(n, 1, "a foreign database is left as it was");
}

fn write_sample_db(db: &Path) {
    let (w, t) = start_writer(db, WriterConfig::default());
    w.send(WriteOp::RegisterAgent(Box::new(spec("a")))).unwrap();
    w.send(WriteOp::Status(Box::new(AgentStatus {
        agent: "a".into(),
        lifecycle: Lifecycle {
            state: AgentState::Running,
            health: Health::Healthy,
            pid: Some(42),
            ..Lifecycle::default()
        },
        ..Default::default()
    })))
    .unwrap();
    for i in 0..10 {
        w.send(event(i)).unwrap();
    }
    w.flush().unwrap();
    drop(w);
    t.join();
}

#[test]
fn a_reader_cannot_write_and_leaves_the_file_byte_identical() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    write_sample_db(&db);
    let before = std::fs::read(&db).unwrap();

    {
        let reader = Reader::open(&db).unwrap();
        let snap = reader.snapshot().unwrap();
        assert_eq!(snap.agents.len(), 1);
        assert_eq!(snap.agents[0].lifecycle.state, AgentState::Running);
        assert_eq!(reader.events(&EventFilter::default()).unwrap().len(), 10);
        reader.logs("a", None, 10).unwrap();
        reader.series("a", "cpu_percent", 0, 100).unwrap();
        reader.data_version().unwrap();

        let conn = open_read_only(&db).unwrap();
        let err = conn
            .execute("INSERT INTO events (ts_ms, kind, severity, message) VALUES (1, 'x', 'info', 'x')", []);
        let msg = err.expect_err("a reader connection must not write").to_string();
        assert!(msg.contains("readonly") || msg.contains("read-only"), "{msg}");
        assert!(conn.execute_batch("PRAGMA query_only = 0; DELETE FROM events").is_err());
    }
    assert_eq!(std::fs::read(&db).unwrap(), before, "main database bytes changed by a reader");
}

/// A reader that keeps reading must neither stop commits nor let the WAL grow without bound:
/// each read ends its transaction, so checkpoints can reset the log.
#[test]
fn checkpoints_run_on_their_own_thread_outside_the_commits() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("c.db");
    let (w, t) = start_writer(&db, WriterConfig::default());
    let threads = || -> Vec<String> {
        std::fs::read_dir("/proc/self/task")
            .unwrap()
            .filter_map(|e| std::fs::read_to_string(e.ok()?.path().join("comm")).ok())
            .map(|name| name.trim().to_owned())
            .collect()
    };
    // A thread names itself once it runs, which on a loaded machine can be a while after it
    // was started.
    wait_for("the checkpointer thread", || threads().iter().any(|n| n == "checkpointer"));
    let db_size = || std::fs::metadata(&db).map(|m| m.len()).unwrap_or(0);
    let before = db_size();
    // Well over the 1,000 pages between checkpoints.
    for round in 0..40i64 {
        let samples = (0..5_000)
            .map(|i| Sample {
                scope: format!("a{}", i % 100),
                metric: format!("m{}", i / 100),
                ts_ms: 1_000_000 + round * 1000,
                value: (round * i) as f64,
            })
            .collect();
        w.send(WriteOp::Samples(samples)).unwrap();
        w.flush().unwrap();
    }
    // The copied pages land in the database file while the writer is still running.
    wait_for("a checkpoint to copy pages into the database file", || db_size() > before + (1 << 20));
    drop(w);
    t.join();
}

#[test]
fn busy_readers_do_not_stop_commits_or_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    let cfg = WriterConfig {
        wal_limit_bytes: 512 * 1024,
        housekeeping_interval: Duration::from_millis(20),
        ..WriterConfig::default()
    };
    let limit = cfg.wal_limit_bytes;
    let (w, t) = start_writer(&db, cfg);
    w.send(WriteOp::RegisterAgent(Box::new(spec("a")))).unwrap();
    w.flush().unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicU64::new(0));
    let readers: Vec<_> = (0..3)
        .map(|_| {
            let (db, stop, reads) = (db.clone(), stop.clone(), reads.clone());
            std::thread::spawn(move || {
                let reader = Reader::open(&db).unwrap();
                while !stop.load(Ordering::Relaxed) {
                    reader.snapshot().unwrap();
                    // What a dashboard reads: bounded, recent windows.
                    let since = agentvisor_shared::time::now_ms() - 5_000;
                    reader.series("a", "m", since, 50).unwrap();
                    reads.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();

    let wal = agentvisor_shared::paths::wal_path(&db);
    let mut max_wal = 0;
    let commits_before = w.commits();
    for round in 0..200i64 {
        let samples = (0..200)
            .map(|i| Sample {
                scope: "a".into(),
                metric: "m".into(),
                ts_ms: round * 1000 + i,
                value: i as f64,
            })
            .collect();
        w.send(WriteOp::Samples(samples)).unwrap();
        w.flush().unwrap();
        max_wal = max_wal.max(std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0));
    }
    eprintln!("largest WAL seen: {max_wal} bytes");
    assert!(w.commits() - commits_before >= 200, "every flush committed while readers were busy");
    assert!(reads.load(Ordering::Relaxed) > 0);

    // Once writing pauses, housekeeping brings the WAL back under its limit even though the
    // readers are still reading.
    let deadline = Instant::now() + HANG;
    loop {
        let size = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
        if size <= limit {
            break;
        }
        assert!(Instant::now() < deadline, "WAL stayed at {size} bytes, over its {limit} byte limit");
        w.send(event(0)).unwrap();
        w.flush().unwrap();
    }
    // Never anywhere near the unbounded growth a pinned snapshot causes (~40 MB of frames here).
    assert!(max_wal < 16 << 20, "WAL reached {max_wal} bytes");

    stop.store(true, Ordering::Relaxed);
    for r in readers {
        r.join().unwrap();
    }
    drop(w);
    t.join();
}

#[test]
fn concurrent_writer_and_readers_keep_every_row_and_integrity() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    let (w, t) = start_writer(&db, WriterConfig::default());
    w.send(WriteOp::RegisterAgent(Box::new(spec("a")))).unwrap();
    w.flush().unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..4)
        .map(|_| {
            let (db, stop) = (db.clone(), stop.clone());
            std::thread::spawn(move || {
                let reader = Reader::open(&db).unwrap();
                let mut seen = 0;
                while !stop.load(Ordering::Relaxed) {
                    let n = reader.events(&EventFilter { limit: 5, ..EventFilter::default() }).unwrap();
                    let newest = n.first().map(|e| e.id).unwrap_or(0);
                    assert!(newest >= seen, "a reader saw ids go backwards");
                    seen = newest;
                    reader.snapshot().unwrap();
                }
            })
        })
        .collect();

    let base = agentvisor_shared::time::now_ms();
    let writers: Vec<_> = (0..4)
        .map(|k| {
            let w = w.clone();
            std::thread::spawn(move || {
                for i in 0..5_000 {
                    w.send(event(k * 5_000 + i)).unwrap();
                    if i % 2 == 0 {
                        w.send(WriteOp::Samples(vec![Sample {
                            scope: "a".into(),
                            metric: format!("m{k}"),
                            // Recent timestamps: older ones would be aged into rollups.
                            ts_ms: base + i as i64,
                            value: 1.0,
                        }]))
                        .unwrap();
                    }
                }
            })
        })
        .collect();
    for h in writers {
        h.join().unwrap();
    }
    w.flush().unwrap();
    stop.store(true, Ordering::Relaxed);
    for r in readers {
        r.join().unwrap();
    }
    drop(w);
    t.join();

    let conn = Connection::open(&db).unwrap();
    let ok: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
    assert_eq!(ok, "ok");
    let events: i64 =
        conn.query_row("SELECT count(*) FROM events WHERE kind = 'agent_error'", [], |r| r.get(0)).unwrap();
    assert_eq!(events, 20_000);
    let samples: i64 =
        conn.query_row("SELECT count(*) FROM metrics WHERE agent = 'a'", [], |r| r.get(0)).unwrap();
    assert_eq!(samples, 10_000);
}

#[test]
fn log_lines_are_a_bounded_ring_per_agent() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    let cfg = WriterConfig { log_lines_per_agent: 100, ..WriterConfig::default() };
    let (w, t) = start_writer(&db, cfg);
    for batch in 0..10 {
        let lines = (0..50)
            .map(|i| agentvisor_shared::NewLogLine {
                agent: "a".into(),
                stream: agentvisor_shared::model::Stream::Stdout,
                ts_ms: 0,
                line: format!("line {}", batch * 50 + i),
            })
            .collect();
        w.send(WriteOp::Logs(lines)).unwrap();
        w.flush().unwrap();
    }
    drop(w);
    t.join();
    let reader = Reader::open(&db).unwrap();
    let lines = reader.logs("a", None, 1_000).unwrap();
    assert_eq!(lines.len(), 100);
    assert_eq!(lines.last().unwrap().line, "line 499", "the newest lines are kept");
    assert_eq!(lines.first().unwrap().line, "line 400");
}

/// Old samples move into rollups and nothing is counted twice or lost on the way: the mean and
/// count over the whole history are exact, the raw table keeps only its window, and events are
/// bounded by count.
#[test]
fn retention_rolls_samples_up_exactly_and_bounds_events() {
    use agentvisor_shared::RetentionConfig;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    let cfg = WriterConfig {
        housekeeping_interval: Duration::from_millis(10),
        retention: RetentionConfig {
            raw: Duration::from_secs(600),
            minute: Duration::from_secs(3600),
            hour: Duration::from_secs(10 * 3600),
            events_max_rows: 1_000,
            interval: Duration::ZERO,
            ..RetentionConfig::default()
        },
        ..WriterConfig::default()
    };
    let (w, t) = start_writer(&db, cfg);

    // Three hours of one sample every 10 s, ending now, and one sample 12 hours ago that
    // ages out entirely.
    let now = agentvisor_shared::time::now_ms();
    let start = now - 3 * 3600 * 1000;
    let samples: Vec<Sample> = (0..1080)
        .map(|i| Sample {
            scope: "a".into(),
            metric: "m".into(),
            ts_ms: start + i * 10_000,
            value: (i % 7) as f64,
        })
        .collect();
    let expected_sum: f64 = samples.iter().map(|s| s.value).sum();
    let mut all = samples.clone();
    all.push(Sample { scope: "a".into(), metric: "m".into(), ts_ms: now - 12 * 3600 * 1000, value: 100.0 });
    w.send(WriteOp::Samples(all)).unwrap();
    for i in 0..3_000 {
        w.send(event(i)).unwrap();
    }
    w.flush().unwrap();

    let reader = Reader::open(&db).unwrap();
    let raw_count = || -> i64 {
        let c = open_read_only(&db).unwrap();
        c.query_row("SELECT count(*) FROM metrics WHERE agent = 'a' AND ts_ms < ?1", [now - 700_000], |r| {
            r.get(0)
        })
        .unwrap()
    };
    let c = open_read_only(&db).unwrap();
    let rollups = || -> (i64, i64) {
        c.query_row(
            "SELECT coalesce(sum(step_ms = 60000), 0), coalesce(sum(step_ms = 3600000), 0) FROM metric_rollups",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap()
    };
    // Raw samples are folded into minutes, and old minutes into hours, by later passes in
    // small transactions: wait until both have happened, however slowly the passes run.
    let deadline = Instant::now() + HANG;
    while raw_count() > 0 || rollups().1 == 0 {
        let (minutes, hours) = rollups();
        assert!(
            Instant::now() < deadline,
            "retention did not fold old samples: {} raw rows left, {minutes} minute, {hours} hour rows",
            raw_count()
        );
        w.send(event(0)).unwrap();
        w.flush().unwrap();
    }
    let (minutes, hours) = rollups();
    assert!(minutes > 0 && hours > 0, "both rollup levels are used: {minutes} minute, {hours} hour rows");
    let events: i64 = c.query_row("SELECT count(*) FROM events", [], |r| r.get(0)).unwrap();
    assert!(events <= 1_100, "events bounded by count, found {events}");

    // Rollup steps start on whole hours, so ask from the hour that holds `start`.
    let points = reader.series("a", "m", start - 3_600_000, 10).unwrap();
    let count: i64 = points.iter().map(|p| p.count).sum();
    let sum: f64 = points.iter().map(|p| p.value * p.count as f64).sum();
    assert_eq!(count, 1080, "every sample of the window counted once");
    assert!((sum - expected_sum).abs() < 1e-6, "sum {sum} != {expected_sum}");
    assert!(points.iter().all(|p| p.min <= p.value && p.value <= p.max));
    drop(w);
    t.join();
}

/// After much more was deleted than written (here: raw samples older than the raw window,
/// folded into a few rollups), retention hands the free pages back, a bounded number a pass.
#[test]
fn retention_returns_free_pages_to_the_file_system() {
    use agentvisor_shared::RetentionConfig;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    let cfg = WriterConfig {
        housekeeping_interval: Duration::from_millis(10),
        retention: RetentionConfig { interval: Duration::ZERO, ..RetentionConfig::default() },
        ..WriterConfig::default()
    };
    let (w, t) = start_writer(&db, cfg);
    // Two hours ago, older than the 15-minute raw window: 150 series of an hour at 1 Hz.
    let start = agentvisor_shared::time::now_ms() - 2 * 3600 * 1000;
    for series in 0..150 {
        let samples = (0..3600)
            .map(|i| Sample {
                scope: format!("a{series}"),
                metric: "m".into(),
                ts_ms: start + i * 1000,
                value: i as f64,
            })
            .collect();
        w.send(WriteOp::Samples(samples)).unwrap();
    }
    w.flush().unwrap();
    let c = open_read_only(&db).unwrap();
    let peak = pragma(&c, "page_count");
    // Housekeeping folds the old rows and hands the pages back on its own timer.
    wait_for("the old samples are folded and their pages returned", || {
        let old: Option<i64> = c
            .query_row(
                "SELECT 1 FROM metric_samples WHERE block < ?1 LIMIT 1",
                [(start + 3_600_000) / 10_000],
                |r| r.get(0),
            )
            .optional()
            .unwrap();
        old.is_none() && pragma(&c, "freelist_count") <= 1_024.max(pragma(&c, "page_count") / 4)
    });
    let total = pragma(&c, "page_count");
    assert!(total < peak / 2, "the file shrank: {peak} pages, now {total}");
    drop(w);
    t.join();
}

/// The snapshot lists agents in start-plan order (position, then name), each with its own
/// newest values and no one else's.
#[test]
fn snapshot_orders_agents_and_gives_each_its_values() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    let (w, t) = start_writer(&db, WriterConfig::default());
    for (name, position) in [("zeta", 0), ("beta", 2), ("alpha", 2), ("gamma", 1)] {
        w.send(WriteOp::RegisterAgent(Box::new(AgentSpec { position, ..spec(name) }))).unwrap();
    }
    let now = agentvisor_shared::time::now_ms();
    let samples = ["zeta", "beta", "alpha", "gamma"].iter().enumerate().flat_map(|(i, name)| {
        ["m", "n"].map(|metric| Sample {
            scope: (*name).into(),
            metric: metric.into(),
            ts_ms: now,
            value: i as f64,
        })
    });
    w.send(WriteOp::Samples(samples.collect())).unwrap();
    w.flush().unwrap();
    let snap = Reader::open(&db).unwrap().snapshot().unwrap();
    let names: Vec<&str> = snap.agents.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["zeta", "gamma", "alpha", "beta"]);
    for (a, want) in snap.agents.iter().zip([0.0, 3.0, 2.0, 1.0]) {
        assert_eq!(a.metrics.get("m"), Some(&want), "{}", a.name);
        assert_eq!(a.metrics.get("n"), Some(&want), "{}", a.name);
        assert_eq!(a.metrics.len(), 2, "{}", a.name);
    }
    drop(w);
    t.join();
}

/// The exporter's snapshot is the full one less the agents' free text, which it never reads.
#[test]
fn a_figures_snapshot_is_the_full_one_without_the_text() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    let (w, t) = start_writer(&db, WriterConfig::default());
    w.send(WriteOp::RegisterAgent(Box::new(spec("a")))).unwrap();
    w.send(WriteOp::Status(Box::new(AgentStatus {
        agent: "a".into(),
        lifecycle: Lifecycle {
            state: AgentState::Backoff,
            health: Health::Unhealthy,
            restarts: 3,
            exit_code: Some(2),
            last_error: Some("exited with code 2".into()),
            ..Lifecycle::default()
        },
        reported: Reported {
            last_heartbeat_ms: Some(1_000),
            heartbeats: 7,
            status_text: Some("busy".into()),
            task: Some("t1".into()),
            model: Some("m1".into()),
            tokens_in: Some(5),
            tokens_out: Some(6),
            cost: Some(0.5),
            ..Reported::default()
        },
    })))
    .unwrap();
    let sample = Sample { scope: "a".into(), metric: "m".into(), ts_ms: 1_000, value: 1.5 };
    w.send(WriteOp::Samples(vec![sample])).unwrap();
    w.flush().unwrap();
    let reader = Reader::open(&db).unwrap();
    let full = reader.snapshot().unwrap();
    let figures = reader.snapshot_with(Detail::Figures).unwrap();
    let a = &full.agents[0];
    assert_eq!(
        (a.description.as_str(), a.reported.task.as_deref(), a.lifecycle.last_error.as_deref()),
        ("a agent", Some("t1"), Some("exited with code 2")),
        "the full snapshot has the text"
    );
    let mut want = full.agents.clone();
    for a in &mut want {
        a.description.clear();
        a.kind.clear();
        a.command = Vec::new().into();
        a.capabilities = Vec::new().into();
        a.stopped_by = None;
        a.reported.status_text = None;
        a.reported.task = None;
        a.reported.model = None;
        a.lifecycle.last_error = None;
    }
    assert_eq!(figures.agents, want);
    drop(w);
    t.join();
}

/// A reader keeps series names between snapshots: series added later, and a series that had
/// no value when the reader first passed it, still show with their values.
#[test]
fn later_snapshots_show_new_series_and_late_values() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    let (w, t) = start_writer(&db, WriterConfig::default());
    w.send(WriteOp::RegisterAgent(Box::new(spec("a")))).unwrap();
    let sample = |metric: &str, value: f64| {
        let s = Sample {
            scope: "a".into(),
            metric: metric.into(),
            ts_ms: agentvisor_shared::time::now_ms(),
            value,
        };
        w.send(WriteOp::Samples(vec![s])).unwrap();
        w.flush().unwrap();
    };
    let reader = Reader::open(&db).unwrap();
    let metrics = || -> Vec<(String, f64)> {
        let snap = reader.snapshot().unwrap();
        snap.agents[0].metrics.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    };
    sample("first", 1.0);
    assert_eq!(metrics(), [("first".to_owned(), 1.0)]);
    // A series row without a value yet (as an older launcher could leave one), then a newer
    // series that the reader caches past it.
    let raw = Connection::open(&db).unwrap();
    raw.execute("INSERT INTO metric_series (scope, metric) VALUES ('a', 'late')", []).unwrap();
    sample("second", 2.0);
    assert_eq!(metrics(), [("first".to_owned(), 1.0), ("second".to_owned(), 2.0)]);
    raw.execute("UPDATE metric_series SET last_value = 3.0 WHERE metric = 'late'", []).unwrap();
    sample("first", 4.0);
    assert_eq!(metrics(), [("first".to_owned(), 4.0), ("late".to_owned(), 3.0), ("second".to_owned(), 2.0)]);
    drop(w);
    t.join();
}

/// Sparklines read the newest values of a series across the blocks that cluster raw rows:
/// the newest `points`, oldest first, whichever blocks they fall in.
#[test]
fn recent_values_span_blocks_and_keep_time_order() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    let (w, t) = start_writer(&db, WriterConfig::default());
    // Three minutes of a series sampled every 4 s (two or three samples a block), and a
    // second series in between.
    let start = (agentvisor_shared::time::now_ms() / 60_000 - 3) * 60_000;
    let samples = (0..45).flat_map(|i| {
        let ts_ms = start + i * 4_000;
        [
            Sample { scope: "a".into(), metric: "m".into(), ts_ms, value: i as f64 },
            Sample { scope: "b".into(), metric: "m".into(), ts_ms, value: -(i as f64) },
        ]
    });
    w.send(WriteOp::Samples(samples.collect())).unwrap();
    w.flush().unwrap();
    let reader = Reader::open(&db).unwrap();
    let scopes = ["a".to_owned(), "b".to_owned(), "none".to_owned()];
    let got = reader.recent_values(&scopes, "m", 5).unwrap();
    assert_eq!(got["a"], vec![40.0, 41.0, 42.0, 43.0, 44.0]);
    assert_eq!(got["b"], vec![-40.0, -41.0, -42.0, -43.0, -44.0]);
    assert!(got["none"].is_empty());
    assert_eq!(reader.recent_values(&scopes, "m", 500).unwrap()["a"].len(), 45, "all there are");
    let history = reader.series("a", "m", start, 1000).unwrap();
    let total: i64 = history.iter().map(|p| p.count).sum();
    assert_eq!(total, 45, "every raw row of every block, once: {history:?}");
    drop(w);
    t.join();
}

/// A database written by the previous schema keeps its samples through the upgrade, and
/// readers refuse it, saying why, until a launcher has upgraded it.
#[test]
fn a_version_2_database_is_upgraded_with_its_samples() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    let c = Connection::open(&db).unwrap();
    c.execute_batch(include_str!("../src/schema/v1.sql")).unwrap();
    c.execute_batch(include_str!("../src/schema/v2.sql")).unwrap();
    c.pragma_update(None, "user_version", 2).unwrap();
    c.pragma_update(None, "application_id", APPLICATION_ID).unwrap();
    c.execute_batch(
        "INSERT INTO metric_series (id, scope, metric) VALUES (1, 'a', 'm');
         INSERT INTO metric_samples (series_id, ts_ms, value)
             VALUES (1, 1795338000000, 1.5), (1, 1795338061000, 2.5);",
    )
    .unwrap();
    drop(c);
    let err = Reader::open(&db).err().expect("a reader must refuse an older schema");
    assert!(matches!(err, StoreError::TooOld { found: 2, .. }), "{err}");
    assert!(err.to_string().contains("older launcher"), "{err}");

    drop(Store::open(&db, WriterConfig::default()).unwrap());
    let c = open_read_only(&db).unwrap();
    assert_eq!(pragma(&c, "user_version"), SCHEMA_VERSION);
    let rows: Vec<(i64, i64, f64)> = c
        .prepare("SELECT block, ts_ms, value FROM metric_samples ORDER BY ts_ms")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    assert_eq!(rows, vec![(179_533_800, 1795338000000, 1.5), (179_533_806, 1795338061000, 2.5)]);
    let named: i64 = c.query_row("SELECT count(*) FROM metrics WHERE agent = 'a'", [], |r| r.get(0)).unwrap();
    assert_eq!(named, 2, "the metrics view is back");
    let reader = Reader::open(&db).unwrap();
    assert_eq!(reader.recent_values(&["a".to_owned()], "m", 10).unwrap()["a"], vec![1.5, 2.5]);
}

/// Newest values are written with every batch; raw rows wait for the sample interval (or a
/// flush) and then go in together.
#[test]
fn sample_rows_wait_for_their_interval_but_newest_values_do_not() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    let cfg = WriterConfig { sample_flush_interval: Duration::from_secs(3600), ..WriterConfig::default() };
    let (w, t) = start_writer(&db, cfg);
    let now = agentvisor_shared::time::now_ms();
    let samples =
        (0..5).map(|i| Sample { scope: "a".into(), metric: "m".into(), ts_ms: now + i, value: i as f64 });
    w.send(WriteOp::Samples(samples.collect())).unwrap();
    w.send(event(1)).unwrap();
    let count = |sql: &str| -> i64 { open_read_only(&db).unwrap().query_row(sql, [], |r| r.get(0)).unwrap() };
    wait_for("the batch is committed", || {
        count("SELECT count(*) FROM events WHERE kind = 'agent_error'") > 0
    });
    let c = open_read_only(&db).unwrap();
    let last: f64 = c
        .query_row("SELECT last_value FROM metric_series WHERE scope = 'a' AND metric = 'm'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(last, 4.0, "the newest value is written with the batch");
    assert_eq!(count("SELECT count(*) FROM metrics WHERE agent = 'a'"), 0, "rows wait for their interval");
    w.flush().unwrap();
    assert_eq!(count("SELECT count(*) FROM metrics WHERE agent = 'a'"), 5, "a flush writes them");
    drop(w);
    t.join();
}

#[test]
fn an_unchanged_newest_value_is_rewritten_only_after_a_minute() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    let (w, t) = start_writer(&db, WriterConfig::default());
    let t0 = agentvisor_shared::time::now_ms();
    let newest = || -> (i64, f64) {
        open_read_only(&db)
            .unwrap()
            .query_row(
                "SELECT last_ms, last_value FROM metric_series WHERE scope = 'a' AND metric = 'm'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap()
    };
    let send = |ts_ms: i64, value: f64| {
        w.send(WriteOp::Samples(vec![Sample { scope: "a".into(), metric: "m".into(), ts_ms, value }]))
            .unwrap();
        w.flush().unwrap();
    };
    send(t0, 1.0);
    assert_eq!(newest(), (t0, 1.0));
    send(t0 + 1_000, 1.0);
    assert_eq!(newest(), (t0, 1.0), "the same value a second later is not written again");
    send(t0 + 2_000, 2.0);
    assert_eq!(newest(), (t0 + 2_000, 2.0), "a new value is written at once");
    send(t0 + 1_500, 3.0);
    assert_eq!(newest(), (t0 + 2_000, 2.0), "an older sample does not replace the newest");
    send(t0 + 62_000, 2.0);
    assert_eq!(newest(), (t0 + 62_000, 2.0), "after a minute the same value is written with its time");
    assert_eq!(
        open_read_only(&db)
            .unwrap()
            .query_row("SELECT count(*) FROM metrics WHERE agent = 'a'", [], |r| r.get::<_, i64>(0))
            .unwrap(),
        5,
        "every sample is still a raw row"
    );
    drop(w);
    t.join();
}

/// Values that are not numbers and times before 1970 are skipped; the rest of the batch is
/// written.
#[test]
fn samples_without_a_finite_value_or_with_a_negative_time_are_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    let (w, t) = start_writer(&db, WriterConfig::default());
    let now = agentvisor_shared::time::now_ms();
    let s = |ts_ms: i64, value: f64| Sample { scope: "a".into(), metric: "m".into(), ts_ms, value };
    w.send(WriteOp::Samples(vec![s(now, f64::NAN), s(now, f64::INFINITY), s(-15_000, 1.0), s(now, 2.0)]))
        .unwrap();
    w.flush().unwrap();
    let rows: Vec<(i64, f64)> = open_read_only(&db)
        .unwrap()
        .prepare("SELECT ts_ms, value FROM metrics WHERE agent = 'a'")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    assert_eq!(rows, vec![(now, 2.0)]);
    drop(w);
    t.join();
}

/// `last_ms` may lag behind a value that does not change; sparklines still reach the newest
/// samples.
#[test]
fn recent_values_reach_past_a_lagging_last_ms() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    let (w, t) = start_writer(&db, WriterConfig::default());
    let t0 = (agentvisor_shared::time::now_ms() / 60_000 - 2) * 60_000;
    for i in 0..12 {
        let s = Sample { scope: "a".into(), metric: "m".into(), ts_ms: t0 + i * 5_000, value: 7.0 };
        w.send(WriteOp::Samples(vec![s])).unwrap();
        w.flush().unwrap();
    }
    let c = open_read_only(&db).unwrap();
    let last_ms: i64 =
        c.query_row("SELECT last_ms FROM metric_series WHERE scope = 'a'", [], |r| r.get(0)).unwrap();
    assert_eq!(last_ms, t0, "the unchanged value was not rewritten");
    let got = Reader::open(&db).unwrap().recent_values(&["a".to_owned()], "m", 20).unwrap();
    assert_eq!(got["a"], vec![7.0; 12], "all 55 s of samples, six blocks past last_ms");
    drop(w);
    t.join();
}

fn running(agent: &str, heartbeats: i64) -> WriteOp {
    WriteOp::Status(Box::new(AgentStatus {
        agent: agent.into(),
        lifecycle: Lifecycle {
            state: AgentState::Running,
            health: Health::Healthy,
            ready: true,
            pid: Some(4242),
            started_ms: Some(1_000),
            ..Lifecycle::default()
        },
        reported: Reported { last_heartbeat_ms: Some(1_000 + heartbeats), heartbeats, ..Reported::default() },
    }))
}

/// A state change is committed within the batch window even when routine data may wait an
/// hour; heartbeats of a running agent ride along with the next commit, one row write for
/// any number of them.
#[test]
fn state_changes_commit_at_once_and_heartbeats_are_coalesced() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("c.db");
    let cfg = WriterConfig { routine_interval: Duration::from_secs(3600), ..WriterConfig::default() };
    let (w, t) = start_writer(&db, cfg);
    w.send(WriteOp::RegisterAgent(Box::new(spec("a")))).unwrap();
    w.send(running("a", 0)).unwrap();
    let state = || -> Option<(String, i64)> {
        open_read_only(&db)
            .unwrap()
            .query_row("SELECT state, heartbeats FROM agent_state WHERE agent = 'a'", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .ok()
    };
    wait_for("the agent is running", || state().is_some_and(|(s, _)| s == "running"));
    // Dashboards judge the launcher alive by its liveness ticks: those do not wait either.
    w.send(WriteOp::SessionAlive { ts_ms: agentvisor_shared::time::now_ms(), status: Some("1/1".into()) })
        .unwrap();
    let liveness = || -> Option<String> {
        open_read_only(&db).unwrap().query_row("SELECT status FROM launcher_sessions", [], |r| r.get(0)).ok()
    };
    wait_for("the liveness tick is committed", || liveness().as_deref() == Some("1/1"));
    let commits = w.commits();
    for n in 1..=200 {
        w.send(running("a", n)).unwrap();
    }
    w.send(event(1)).unwrap();
    let events = || -> i64 {
        open_read_only(&db).unwrap().query_row("SELECT count(*) FROM events", [], |r| r.get(0)).unwrap()
    };
    wait_for("the event is committed", || events() == 1);
    assert_eq!(state(), Some(("running".into(), 200)), "the newest heartbeat went in with the event");
    assert!(w.commits() - commits <= 2, "200 heartbeats and an event took {} commits", w.commits() - commits);
    drop(w);
    t.join();
}

/// A status that changes only what the agent reports is written by a narrow update once the
/// row is known: every field must still arrive, exactly as sent.
#[test]
fn a_heartbeat_only_status_round_trips_every_field() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("r.db");
    let (w, t) = start_writer(&db, WriterConfig::default());
    w.send(WriteOp::RegisterAgent(Box::new(spec("a")))).unwrap();
    let first = AgentStatus {
        agent: "a".into(),
        lifecycle: Lifecycle {
            state: AgentState::Running,
            health: Health::Healthy,
            ready: true,
            pid: Some(4242),
            pgid: Some(4242),
            pid_start_ticks: Some(77),
            started_ms: Some(1_000),
            restarts: 2,
            last_error: Some("earlier trouble".into()),
            ..Lifecycle::default()
        },
        ..AgentStatus::default()
    };
    w.send(WriteOp::Status(Box::new(first.clone()))).unwrap();
    w.flush().unwrap();
    let reported = AgentStatus {
        reported: Reported {
            last_heartbeat_ms: Some(5_000),
            heartbeats: 9,
            status_text: Some("busy".into()),
            task: Some("task 3".into()),
            model: Some("model-y".into()),
            tokens_in: Some(120),
            tokens_out: Some(30),
            cost: Some(0.25),
            notify_errors: 1,
        },
        ..first.clone()
    };
    assert!(reported.same_lifecycle(&first), "only reported fields differ");
    w.send(WriteOp::Status(Box::new(reported.clone()))).unwrap();
    w.flush().unwrap();
    let snap = Reader::open(&db).unwrap().snapshot().unwrap();
    assert_eq!(snap.agents[0].status, reported);
    drop(w);
    t.join();
}

/// Routine data alone is committed within the routine interval, without a flush.
#[test]
fn routine_data_alone_is_committed_within_its_interval() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("r.db");
    let cfg = WriterConfig { routine_interval: Duration::from_millis(200), ..WriterConfig::default() };
    let (w, t) = start_writer(&db, cfg);
    w.send(WriteOp::RegisterAgent(Box::new(spec("a")))).unwrap();
    w.send(running("a", 0)).unwrap();
    w.flush().unwrap();
    w.send(running("a", 7)).unwrap();
    let heartbeats = || -> i64 {
        open_read_only(&db)
            .unwrap()
            .query_row("SELECT heartbeats FROM agent_state WHERE agent = 'a'", [], |r| r.get(0))
            .unwrap()
    };
    wait_for("the heartbeat is committed", || heartbeats() == 7);
    drop(w);
    t.join();
}

/// The nice value of the calling thread, from `/proc/thread-self/stat` (field 19).
fn own_nice() -> i64 {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
    let after_name = &stat[stat.rfind(')').unwrap() + 2..];
    after_name.split(' ').nth(16).unwrap().parse().unwrap()
}

/// A reading thread yields the CPU to the writer, and only its own priority changes.
#[test]
fn a_reading_thread_lowers_its_own_priority() {
    let before = own_nice();
    let inside = std::thread::spawn(|| {
        agentvisor_shared::reader::lower_thread_priority();
        own_nice()
    })
    .join()
    .unwrap();
    assert_eq!(inside, 19);
    assert_eq!(own_nice(), before, "the calling thread's priority is its own");
}

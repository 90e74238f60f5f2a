//! Dashboard frame (benchmark 4): what one dashboard refresh costs with 1,000 agents and 10
//! million metric rows, and the real dashboard's resident memory on that database.
//!
//! The dashboard is a binary only (no library target), so its render function cannot be called
//! from here: the timed part is the data read its overview makes each refresh (a snapshot plus
//! the 40-point CPU sparkline of every agent), and memory is read from the real dashboard
//! running in a detached tmux session.

use crate::report::{Figure, Section, Verdict, mib, ms};
use crate::stats::percentile;
use crate::workload::{METRICS, flushed, register_agents, remove_db, start_store, tick_samples};
use agentvisor_shared::schema::sample_block;
use agentvisor_shared::{Reader, WriteOp, WriterConfig};
use anyhow::{Context, Result};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use rusqlite::{Connection, params};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

pub const TITLE: &str = "4. Dashboard frame";
/// Lines of the terminal the dashboard is measured in (tmux's window is this tall).
const SCREEN_ROWS: usize = 50;
const SCREEN_COLUMNS: u16 = 160;

/// The shortest time between two dashboard frames.
const FRAME_PERIOD: Duration = Duration::from_millis(100);

pub struct Params {
    pub agents: usize,
    /// Rows per series: agents x 10 x this many rows in all.
    pub rows_per_series: usize,
    pub frames: usize,
    /// How long the real dashboard is watched for its memory.
    pub dashboard_watch: Duration,
}

pub fn run(work: &Path, dashboard: Option<&Path>, p: &Params) -> Result<Section> {
    let db = work.join("frame.db");
    let built = Instant::now();
    let rows = build(&db, p)?;
    let build_s = built.elapsed().as_secs_f64();
    let reader = Reader::open(&db).context("opening the reader")?;
    let mut times = Vec::with_capacity(p.frames);
    let mut snapshot_times = Vec::with_capacity(p.frames);
    let mut read_times = Vec::with_capacity(p.frames);
    let mut agents_seen = 0;
    let mut terminal = Terminal::new(TestBackend::new(SCREEN_COLUMNS, SCREEN_ROWS as u16))
        .context("creating a test terminal")?;
    for i in 0..p.frames + 3 {
        // Frames come at most ten a second, as in the dashboard (whose wake-ups are debounced
        // by 100 ms); the reader paces itself and would make frames back to back wait.
        std::thread::sleep(FRAME_PERIOD);
        let t = Instant::now();
        let snap = reader.snapshot().context("reading a snapshot")?;
        let snapshot_ms = t.elapsed().as_secs_f64() * 1000.0;
        // The dashboard reads sparklines only for the rows a screen can show around the
        // selection: with the selection on the first row, that row and SCREEN_ROWS more.
        let scopes: Vec<String> = snap.agents.iter().take(SCREEN_ROWS + 1).map(|a| a.name.clone()).collect();
        let spark = reader.recent_values(&scopes, METRICS[0], 40).context("reading sparklines")?;
        let read_ms = t.elapsed().as_secs_f64() * 1000.0;
        anyhow::ensure!(
            spark.len() == scopes.len(),
            "sparklines for {} of {} agents",
            spark.len(),
            scopes.len()
        );
        agents_seen = snap.agents.len();
        let now = snap.taken_ms;
        agentvisor_dashboard::draw_overview(&mut terminal, snap, spark, now).context("drawing a frame")?;
        let elapsed = t.elapsed().as_secs_f64() * 1000.0;
        // The first reads warm SQLite's and the OS's caches, as a running dashboard's have been.
        if i >= 3 {
            times.push(elapsed);
            read_times.push(read_ms);
            snapshot_times.push(snapshot_ms);
        }
    }
    anyhow::ensure!(agents_seen == p.agents, "the snapshot had {agents_seen} agents, expected {}", p.agents);
    let p50 = percentile(&times, 50.0);
    let p95 = percentile(&times, 95.0);
    let mut s = Section::new(TITLE);
    s.figures.push(Figure::info(
        "of which `snapshot()` alone, p50 / p95",
        format!("{} / {}", ms(percentile(&snapshot_times, 50.0)), ms(percentile(&snapshot_times, 95.0))),
    ));
    s.figures.push(Figure::info(
        "of which the overview's data read (snapshot and sparklines), p50 / p95",
        format!("{} / {}", ms(percentile(&read_times, 50.0)), ms(percentile(&read_times, 95.0))),
    ));
    s.figures.push(Figure::info("read + render of one frame, p50", ms(p50)));
    s.figures.push(Figure::target(
        "read + render of one frame, p95",
        ms(p95),
        "< 10 ms",
        Verdict::check(p95, p95 < 10.0),
    ));
    match dashboard.map(|d| dashboard_rss(d, &db, p.dashboard_watch)) {
        Some(Ok(rss)) => s.figures.push(Figure::target(
            "dashboard resident memory (max)",
            mib(rss),
            "< 30 MB",
            Verdict::check(rss, rss < 30e6),
        )),
        Some(Err(e)) => {
            s.figures.push(Figure::target("dashboard resident memory", "", "< 30 MB", Verdict::Skipped));
            s.details.push(format!("The dashboard's memory could not be measured: {e:#}"));
        }
        None => {
            s.figures.push(Figure::target("dashboard resident memory", "", "< 30 MB", Verdict::Skipped));
            s.details.push("No agentvisor-dashboard binary was found next to this program.".into());
        }
    }
    s.method.push(format!(
        "The database holds {} agents (registered, running, with a state row each) and {rows} metric \
         rows ({} series x {} s at 1 Hz; built in {build_s:.0} s: the agents and the newest second \
         through the store, the history with plain inserts). Timed: `Reader::snapshot()` plus \
         `Reader::recent_values` of the 40 newest `cpu_percent` values for the {} agents a {}-line \
         screen can show around a selection on the first row, what the dashboard's data thread reads \
         for the overview on every refresh, then the dashboard's own `draw_overview` (the UI state \
         filled from that read and the overview drawn into ratatui's TestBackend, {SCREEN_COLUMNS}x{SCREEN_ROWS}), \
         {} times after 3 warm-up frames, 100 ms apart (the dashboard's fastest refresh; the reader paces itself to a tenth of its time, so frames back to back would wait). Memory: the real `agentvisor-dashboard` runs on \
         the same database in a detached tmux session (160 columns, {SCREEN_ROWS} lines), and its `Rss` is sampled every 100 ms \
         for {:.0} s.",
        p.agents,
        p.agents * METRICS.len(),
        p.rows_per_series,
        (SCREEN_ROWS + 1).min(p.agents),
        SCREEN_ROWS,
        p.frames,
        p.dashboard_watch.as_secs_f64()
    ));
    drop(reader);
    remove_db(&db);
    Ok(s)
}

/// Builds the database; the number of metric rows it holds.
fn build(db: &Path, p: &Params) -> Result<usize> {
    let now = agentvisor_shared::time::now_ms();
    {
        let (h, thread) = start_store(db, WriterConfig::default())?;
        register_agents(&h, p.agents, now)?;
        h.send(WriteOp::Samples(tick_samples(p.agents, now, p.rows_per_series as u64)))
            .context("queueing samples")?;
        flushed(&h)?;
        drop(h);
        thread.join();
    }
    let mut conn = Connection::open(db).context("opening the database to fill it")?;
    conn.pragma_update(None, "synchronous", "OFF")?;
    let ids: Vec<i64> = conn
        .prepare("SELECT id FROM metric_series WHERE scope NOT LIKE '@%' ORDER BY id")?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let mut rows = ids.len();
    for chunk in ids.chunks(100) {
        let tx = conn.transaction()?;
        {
            let mut stmt = tx.prepare_cached(
                "INSERT INTO metric_samples (block, series_id, ts_ms, value) VALUES (?1, ?2, ?3, ?4)",
            )?;
            for id in chunk {
                for k in (1..p.rows_per_series).rev() {
                    let value = ((*id as u64 * 31 + k as u64 * 17) % 1000) as f64 / 10.0;
                    let ts = now - k as i64 * 1000;
                    stmt.execute(params![sample_block(ts), id, ts, value])?;
                    rows += 1;
                }
            }
        }
        tx.commit()?;
    }
    Ok(rows)
}

/// Runs the real dashboard in a detached tmux session on `db`; its largest resident memory.
fn dashboard_rss(bin: &Path, db: &Path, watch: Duration) -> Result<f64> {
    // A private tmux server: killing it at the end touches no other session.
    let socket = format!("agentvisor-bench-{}", std::process::id());
    let tmux = |args: &[&str]| -> Result<String> {
        let out = Command::new("tmux").arg("-L").arg(&socket).args(args).output().context("running tmux")?;
        anyhow::ensure!(
            out.status.success(),
            "tmux {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    };
    let cmd = format!("exec {} --db {}", shell_quote(bin), shell_quote(db));
    let rows = SCREEN_ROWS.to_string();
    tmux(&["new-session", "-d", "-x", "160", "-y", &rows, &cmd])?;
    let result = (|| -> Result<f64> {
        let pid: i32 = tmux(&["list-panes", "-F", "#{pane_pid}"])?.parse().context("the dashboard's pid")?;
        let mut max = 0u64;
        let end = Instant::now() + watch;
        while Instant::now() < end {
            max = max.max(crate::procstat::rss_bytes(pid)?);
            std::thread::sleep(Duration::from_millis(100));
        }
        let screen = tmux(&["capture-pane", "-p"])?;
        anyhow::ensure!(screen.contains("agent-0000"), "the dashboard did not show the agents:\n{screen}");
        Ok(max as f64)
    })();
    let _ = tmux(&["kill-server"]);
    result
}

fn shell_quote(p: &Path) -> String {
    format!("'{}'", p.display().to_string().replace('\'', "'\\''"))
}

//! Disk (benchmark 7): bytes per stored sample, and the database's size over eight simulated days of 1 Hz
//! samples under the default retention, written through the store with synthetic timestamps.
//!
//! The retention clock follows the newest sample written, so writing "from now to now + 8 days"
//! as fast as the writer goes ages the data exactly as eight real days would; housekeeping runs
//! on the writer's wall clock, so its interval is made small enough that pruning keeps up with
//! the accelerated clock (the row counts at each checkpoint show that it does).

use crate::report::{Figure, Section, Verdict, mb};
use crate::workload::{METRICS, flushed, remove_db, start_store, tick_samples};
use agentvisor_shared::retention::MINUTE_MS;
use agentvisor_shared::{RetentionConfig, WriteOp, WriterConfig};
use anyhow::{Context, Result};
use rusqlite::{Connection, OpenFlags, OptionalExtension};
use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

pub const TITLE: &str = "7. Disk";
const TARGET_BYTES: f64 = 300e6;

pub struct Params {
    /// Agents actually written (10 metrics each).
    pub agents: usize,
    /// Agents the size is projected to.
    pub target_agents: usize,
    pub total_secs: u64,
    pub checkpoint_secs: u64,
    /// How long the full-scale run that checks the projection lasts (simulated seconds).
    pub check_secs: u64,
}

/// The database at one point of simulated time.
struct Checkpoint {
    sim_secs: u64,
    file_bytes: u64,
    wal_bytes: u64,
    freelist_bytes: u64,
    raw_rows: i64,
    minute_rows: i64,
    hour_rows: i64,
    /// Bytes of pages of the raw sample and rollup tables (dbstat).
    raw_table_bytes: u64,
    rollup_table_bytes: u64,
}

impl Checkpoint {
    /// The file size for `factor` times as many series: the sample tables and the free pages
    /// their churn leaves grow with the number of series; the rest does not.
    fn projected(&self, factor: f64) -> f64 {
        let scaled = (self.raw_table_bytes + self.rollup_table_bytes + self.freelist_bytes) as f64;
        self.file_bytes as f64 + (factor - 1.0) * scaled
    }
}

pub fn run(work: &Path, p: &Params) -> Result<Section> {
    // The first checkpoint comes before retention has removed anything: pure appends.
    let raw_window = RetentionConfig::default().raw.as_secs();
    let mut marks: Vec<u64> = vec![raw_window.min(p.total_secs), p.check_secs.min(p.total_secs)];
    marks.extend((1..=p.total_secs / p.checkpoint_secs).map(|i| i * p.checkpoint_secs));
    marks.sort_unstable();
    marks.dedup();
    let (checkpoints, wall) = simulate(&work.join("disk.db"), p.agents, &marks)?;
    // The same hour at full scale, to check the projection against a measurement.
    let (full, _) =
        simulate(&work.join("disk-full-scale.db"), p.target_agents, &[p.check_secs.min(p.total_secs)])?;
    Ok(section(p, &checkpoints, full.last(), wall))
}

const FLUSH_EVERY_SECS: u64 = 300;

/// Waits until retention has aged the raw rows up to `slack_secs` behind the retention cutoff
/// (beyond the minute it keeps whole), or gives up after a while (a lagging pruner then shows in
/// the row counts reported). The oldest raw row is the table's first.
fn wait_for_pruning(conn: &Connection, cutoff_ms: i64, slack_secs: u64) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut stmt = conn.prepare_cached("SELECT ts_ms FROM metric_samples ORDER BY block LIMIT 1")?;
    while Instant::now() < deadline {
        let oldest: Option<i64> = stmt.query_row([], |r| r.get(0)).optional()?;
        if oldest.is_none_or(|t| t >= cutoff_ms - MINUTE_MS - slack_secs as i64 * 1000) {
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    Ok(())
}

/// Writes `agents` agents' samples up to the last mark, measuring the database at each mark.
fn simulate(db: &Path, agents: usize, marks: &[u64]) -> Result<(Vec<Checkpoint>, f64)> {
    let cfg = WriterConfig {
        housekeeping_interval: Duration::from_millis(5),
        retention: RetentionConfig { interval: Duration::ZERO, ..RetentionConfig::default() },
        ..WriterConfig::default()
    };
    let raw_window = cfg.retention.raw.as_secs();
    let (h, thread) = start_store(db, cfg)?;
    let watch = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .with_context(|| format!("opening {} to watch it", db.display()))?;
    let start_ms = agentvisor_shared::time::now_ms();
    // The retention cutoff once `t` simulated seconds are written.
    let cutoff = |t: u64| start_ms + (t as i64 - 1 - raw_window as i64) * 1000;
    let started = Instant::now();
    let mut checkpoints = Vec::new();
    let mut t = 0u64;
    for &mark in marks {
        while t < mark {
            let samples = tick_samples(agents, start_ms + t as i64 * 1000, t);
            h.send(WriteOp::Samples(samples)).context("queueing samples")?;
            t += 1;
            // Keeps the queue short, so memory stays flat, and lets pruning catch up, so the
            // accelerated clock does not pile up raw rows that eight real days never would.
            if t.is_multiple_of(FLUSH_EVERY_SECS) {
                flushed(&h)?;
                wait_for_pruning(&watch, cutoff(t), 300)?;
            }
        }
        flushed(&h)?;
        wait_for_pruning(&watch, cutoff(t), 30)?;
        checkpoints.push(measure(db, t)?);
    }
    let wall = started.elapsed().as_secs_f64();
    let dropped = h.dropped();
    drop(h);
    thread.join();
    anyhow::ensure!(dropped == 0, "the writer dropped {dropped} operations");
    remove_db(db);
    Ok((checkpoints, wall))
}

fn section(p: &Params, cps: &[Checkpoint], full: Option<&Checkpoint>, wall_s: f64) -> Section {
    let sim_secs = cps.last().map(|c| c.sim_secs).unwrap_or(0);
    let series = p.agents * METRICS.len();
    let factor = p.target_agents as f64 / p.agents as f64;
    let samples = series as u64 * sim_secs;
    let mut s = Section::new(TITLE);
    if let Some(first) = cps.first() {
        let per_raw = first.raw_table_bytes as f64 / first.raw_rows.max(1) as f64;
        s.figures.push(Figure::info("bytes per raw sample, appended", format!("{per_raw:.1} B")));
    }
    let Some(last) = cps.last() else {
        return s;
    };
    let per_raw = last.raw_table_bytes as f64 / last.raw_rows.max(1) as f64;
    let per_rollup = last.rollup_table_bytes as f64 / (last.minute_rows + last.hour_rows).max(1) as f64;
    let span = sim_time(sim_secs);
    s.figures.push(Figure::info(
        format!("bytes per raw sample, after {span} of churn"),
        format!("{per_raw:.1} B"),
    ));
    s.figures.push(Figure::info(format!("bytes per rollup row, after {span}"), format!("{per_rollup:.1} B")));
    s.figures.push(Figure::info(
        format!("DB size after {span}, {} agents (measured)", p.agents),
        mb(last.file_bytes as f64),
    ));
    // Over the second half of the run the size should be flat: only hour rollups still grow.
    let half: Vec<&Checkpoint> = cps.iter().filter(|c| c.sim_secs * 2 >= sim_secs).collect();
    // The check at full scale measures more than the projection (more series spread the same
    // churn over more pages); the projection is corrected by that factor, never reduced.
    let same = full.and_then(|f| cps.iter().find(|c| c.sim_secs == f.sim_secs));
    let correction = match (full, same) {
        (Some(f), Some(c)) => (f.file_bytes as f64 / c.projected(factor)).max(1.0),
        _ => 1.0,
    };
    let peak = cps.iter().map(|c| c.projected(factor)).fold(0.0, f64::max) * correction;
    let growth = match (half.first(), half.last()) {
        (Some(a), Some(b)) if a.file_bytes > 0 => b.file_bytes as f64 / a.file_bytes as f64 - 1.0,
        _ => f64::NAN,
    };
    s.figures.push(Figure::target(
        format!(
            "DB size, largest, projected to {} agents (corrected by the full-scale check)",
            p.target_agents
        ),
        mb(peak),
        "< 300 MB",
        Verdict::check(peak, peak < TARGET_BYTES),
    ));
    s.figures.push(Figure::info(
        "growth over the second half of the run",
        if growth.is_nan() { "n/a".into() } else { format!("{:+.1} %", growth * 100.0) },
    ));
    s.method.push(format!(
        "{} agents x {} metrics at 1 Hz for {:.1} simulated days ({} samples, {:.0} s of wall time, \
         {:.0} k samples/s) are written through the store's writer (`WriteOp::Samples`, one per \
         simulated second) with the default retention (raw 15 min, minute rollups 24 h, hour rollups \
         8 d); housekeeping runs every 5 ms and a retention pass whenever housekeeping runs, so pruning \
         keeps up with the accelerated clock. Writing all {} agents would be {} samples, about {:.0} min \
         at this rate, so the run writes {} agents and projects: the raw and rollup \
         tables (their pages counted with `dbstat`) and the free pages their churn leaves scale with \
         the number of series, the rest of the file does not. Sizes are the database's pages \
         (`page_count`, what the file holds once the WAL is checkpointed into it); the WAL file is \
         bounded separately (64 MiB limit) and shown in the table.",
        p.agents,
        METRICS.len(),
        sim_secs as f64 / 86_400.0,
        samples,
        wall_s,
        samples as f64 / wall_s / 1e3,
        p.target_agents,
        p.target_agents as u64 * METRICS.len() as u64 * sim_secs,
        factor * wall_s / 60.0,
        p.agents
    ));
    if let (Some(full), Some(same)) = (full, same) {
        s.details.push(format!(
            "Check of the projection: {} agents written for {:.2} simulated hours measure {} ({} raw rows, \
             {} minute rows, {} free); the {}-agent run projected {} at the same time ({:+.1} %); the projected sizes are \
             multiplied by {:.2} for the verdict.",
            p.target_agents,
            full.sim_secs as f64 / 3600.0,
            mb(full.file_bytes as f64),
            full.raw_rows,
            full.minute_rows,
            mb(full.freelist_bytes as f64),
            p.agents,
            mb(same.projected(factor)),
            (same.projected(factor) / full.file_bytes.max(1) as f64 - 1.0) * 100.0,
            correction
        ));
    }
    let mut t = String::from(
        "| simulated time | file | WAL | free pages | raw rows | minute rows | hour rows | projected to target |\n\
         | --- | --- | --- | --- | --- | --- | --- | --- |\n",
    );
    for c in cps {
        let _ = writeln!(
            t,
            "| {:.2} h | {} | {} | {} | {} | {} | {} | {} |",
            c.sim_secs as f64 / 3600.0,
            mb(c.file_bytes as f64),
            mb(c.wal_bytes as f64),
            mb(c.freelist_bytes as f64),
            c.raw_rows,
            c.minute_rows,
            c.hour_rows,
            mb(c.projected(factor))
        );
    }
    s.details.push(t);
    s
}

/// A simulated duration for a label: days once it is at least one.
fn sim_time(secs: u64) -> String {
    if secs >= 86_400 {
        format!("{:.1} days", secs as f64 / 86_400.0)
    } else {
        format!("{:.1} h", secs as f64 / 3600.0)
    }
}

fn measure(db: &Path, sim_secs: u64) -> Result<Checkpoint> {
    let conn = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .with_context(|| format!("opening {} to measure it", db.display()))?;
    let page_size: i64 = conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
    // The logical size, WAL included: what the file holds once checkpointed.
    let pages: i64 = conn.query_row("PRAGMA page_count", [], |r| r.get(0))?;
    let free: i64 = conn.query_row("PRAGMA freelist_count", [], |r| r.get(0))?;
    let count = |sql: &str| -> Result<i64> { Ok(conn.query_row(sql, [], |r| r.get(0))?) };
    let table_bytes = |name: &str| -> Result<u64> {
        let b: i64 =
            conn.query_row("SELECT coalesce(sum(pgsize), 0) FROM dbstat WHERE name = ?1", [name], |r| {
                r.get(0)
            })?;
        Ok(b as u64)
    };
    let wal = agentvisor_shared::paths::wal_path(db);
    Ok(Checkpoint {
        sim_secs,
        file_bytes: (pages * page_size) as u64,
        wal_bytes: std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0),
        freelist_bytes: (free * page_size) as u64,
        raw_rows: count("SELECT count(*) FROM metric_samples")?,
        minute_rows: count("SELECT count(*) FROM metric_rollups WHERE step_ms = 60000")?,
        hour_rows: count("SELECT count(*) FROM metric_rollups WHERE step_ms = 3600000")?,
        raw_table_bytes: table_bytes("metric_samples")?,
        rollup_table_bytes: table_bytes("metric_rollups")?,
    })
}

//! Keeps the database bounded: metric samples age from raw rows into one-minute rollups, then
//! one-hour rollups, then out; events and captured output are bounded by age and count.
//!
//! The writer thread runs this between batches, in small transactions and within a time
//! budget, so no single write transaction is long and incoming writes wait at most a few
//! milliseconds. The clock is the newest of the wall clock and the newest sample written, so
//! data replayed with synthetic timestamps ages exactly as live data would.
//!
//! Size at steady state, for S series sampled every second (bytes per row measured in
//! BENCHMARKS.md; about 40 for a raw sample and 60 for a rollup):
//! `S * ((raw_secs + 60) * B_raw + minute_secs / 60 * B_rollup + hour_secs / 3600 * B_rollup)`
//! (raw rows go by whole minutes) plus events and log lines. With the defaults (15 min, 24 h,
//! 8 d) and 100 agents x 10 metrics that is about 1000 * (960 * 40 + 1440 * 60 + 192 * 60) =
//! about 136 MB.

pub use crate::schema::{HOUR_MS, MINUTE_MS};
use crate::schema::{SAMPLE_BLOCK_MS, sample_block};
use rusqlite::{Connection, OptionalExtension, params};
use std::time::{Duration, Instant};

// Raw rows are folded a minute at a time by whole blocks.
const _: () = assert!(MINUTE_MS % SAMPLE_BLOCK_MS == 0);

/// How long each kind of data is kept.
#[derive(Debug, Clone, PartialEq)]
pub struct RetentionConfig {
    /// Raw samples, at full resolution.
    pub raw: Duration,
    /// One-minute rollups (min, max, sum, count).
    pub minute: Duration,
    /// One-hour rollups.
    pub hour: Duration,
    pub events_max_age: Duration,
    pub events_max_rows: i64,
    /// Captured output older than this goes, whatever the per-agent ring holds.
    pub logs_max_age: Duration,
    /// Run records (`runs`) older than this go...
    pub runs_max_age: Duration,
    /// ...and beyond this many, the oldest go.
    pub runs_max_rows: i64,
    /// How often a pass starts.
    pub interval: Duration,
    /// Most writer time one pass may take before it yields to incoming writes.
    pub budget: Duration,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            raw: Duration::from_secs(15 * 60),
            minute: Duration::from_secs(24 * 3600),
            hour: Duration::from_secs(8 * 24 * 3600),
            events_max_age: Duration::from_secs(30 * 24 * 3600),
            events_max_rows: 100_000,
            logs_max_age: Duration::from_secs(7 * 24 * 3600),
            runs_max_age: Duration::from_secs(30 * 24 * 3600),
            runs_max_rows: 100_000,
            interval: Duration::from_secs(30),
            budget: Duration::from_millis(50),
        }
    }
}

/// Series whose minute rollups are aged per transaction, and rows deleted per transaction
/// from events and logs.
const SERIES_PER_TX: usize = 50;
const ROWS_PER_TX: i64 = 5_000;
/// Series whose raw rows of one minute are folded per transaction: at a thousand agents
/// sampled every second, about 30,000 rows.
const SERIES_PER_FOLD: i64 = 500;
/// Rollups age in hours and days, so every this many passes is often enough to visit every
/// series for them.
const PASSES_PER_ROLLUP_AGING: u64 = 10;

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Remembers where a pass stopped when its budget ran out, so the next one continues there.
#[derive(Debug, Default)]
pub(crate) struct Pruner {
    last_pass: Option<Instant>,
    passes: u64,
    /// Series ids whose rollups are still to age in the current pass; empty between passes.
    pending: Vec<i64>,
    clock_ms: i64,
}

impl Pruner {
    /// Whether a pass is under way or due.
    pub(crate) fn due(&self, cfg: &RetentionConfig) -> bool {
        !self.pending.is_empty() || self.last_pass.is_none_or(|t| t.elapsed() >= cfg.interval)
    }

    /// Runs (or continues) a pass until it finishes or `cfg.budget` is spent.
    pub(crate) fn run(
        &mut self,
        conn: &mut Connection,
        cfg: &RetentionConfig,
        clock_ms: i64,
    ) -> rusqlite::Result<()> {
        let started = Instant::now();
        if self.pending.is_empty() {
            self.last_pass = Some(started);
            self.clock_ms = clock_ms;
            if self.passes.is_multiple_of(PASSES_PER_ROLLUP_AGING) {
                self.pending = conn
                    .prepare_cached("SELECT id FROM metric_series ORDER BY id DESC")?
                    .query_map([], |r| r.get(0))?
                    .collect::<rusqlite::Result<_>>()?;
            }
            self.passes += 1;
            prune_rows(
                conn,
                "events",
                self.clock_ms - ms(cfg.events_max_age),
                Some(cfg.events_max_rows),
                cfg.budget,
            )?;
            prune_rows(conn, "log_lines", self.clock_ms - ms(cfg.logs_max_age), None, cfg.budget)?;
            prune_rows(
                conn,
                "runs",
                self.clock_ms - ms(cfg.runs_max_age),
                Some(cfg.runs_max_rows),
                cfg.budget,
            )?;
            // Tasks are kept as long as runs, and as many.
            prune_rows(
                conn,
                "tasks",
                self.clock_ms - ms(cfg.runs_max_age),
                Some(cfg.runs_max_rows),
                cfg.budget,
            )?;
        }
        // Raw rows go by whole minutes, so a minute is kept raw until all of it is older than
        // the raw window: the window is a lower bound, exceeded by less than a minute.
        let raw_cutoff_minute = (self.clock_ms - ms(cfg.raw)) / MINUTE_MS;
        while started.elapsed() < cfg.budget && fold_oldest_raw(conn, raw_cutoff_minute)? {}
        let minute_cutoff = self.clock_ms - ms(cfg.minute);
        let hour_cutoff = self.clock_ms - ms(cfg.hour);
        while !self.pending.is_empty() && started.elapsed() < cfg.budget {
            let take = self.pending.len().min(SERIES_PER_TX);
            let chunk = self.pending.split_off(self.pending.len() - take);
            let tx = conn.transaction()?;
            for id in chunk {
                age_rollups(&tx, id, minute_cutoff, hour_cutoff)?;
            }
            tx.commit()?;
        }
        if self.pending.is_empty() && started.elapsed() < cfg.budget {
            return_free_pages(conn)?;
        }
        Ok(())
    }
}

/// Folds the raw rows of the oldest minute older than `cutoff_minute` into minute rollups,
/// for up to [`SERIES_PER_FOLD`] series from the first one that has rows there, and deletes
/// them: one transaction over a few contiguous stretches of the table (one per block of the
/// minute). Returns whether there was anything to fold.
fn fold_oldest_raw(conn: &mut Connection, cutoff_minute: i64) -> rusqlite::Result<bool> {
    let tx = conn.transaction()?;
    let oldest: Option<(i64, i64)> = tx
        .prepare_cached("SELECT block, series_id FROM metric_samples ORDER BY block, series_id LIMIT 1")?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let Some((minute, first)) = oldest
        .map(|(block, first)| (block * SAMPLE_BLOCK_MS / MINUTE_MS, first))
        .filter(|(m, _)| *m < cutoff_minute)
    else {
        return Ok(false);
    };
    let blocks = (sample_block(minute * MINUTE_MS), sample_block((minute + 1) * MINUTE_MS));
    // Rows of one minute share one minute rollup per series; merged with one already there
    // (from rows that came late, or from an earlier fold of a partial minute).
    tx.prepare_cached(
        "INSERT INTO metric_rollups (series_id, step_ms, ts_ms, min, max, sum, count)
         SELECT series_id, ?6, ?1 * ?6, min(value), max(value), sum(value), count(*)
         FROM metric_samples WHERE block >= ?2 AND block < ?3 AND series_id >= ?4 AND series_id < ?5
         GROUP BY series_id
         ON CONFLICT (series_id, step_ms, ts_ms) DO UPDATE SET
            min = min(metric_rollups.min, excluded.min), max = max(metric_rollups.max, excluded.max),
            sum = metric_rollups.sum + excluded.sum, count = metric_rollups.count + excluded.count",
    )?
    .execute(params![minute, blocks.0, blocks.1, first, first + SERIES_PER_FOLD, MINUTE_MS])?;
    tx.prepare_cached(
        "DELETE FROM metric_samples WHERE block >= ?1 AND block < ?2 AND series_id >= ?3 AND series_id < ?4",
    )?
    .execute(params![blocks.0, blocks.1, first, first + SERIES_PER_FOLD])?;
    tx.commit()?;
    Ok(true)
}

/// Folds one series' expired minute rollups into hour rollups, merging with rows already
/// there, then drops expired hour rollups.
fn age_rollups(tx: &Connection, id: i64, minute_cutoff: i64, hour_cutoff: i64) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO metric_rollups (series_id, step_ms, ts_ms, min, max, sum, count)
         SELECT series_id, ?4, (ts_ms / ?4) * ?4 AS bucket, min(min), max(max), sum(sum), sum(count)
         FROM metric_rollups WHERE series_id = ?1 AND step_ms = ?3 AND ts_ms < ?2 GROUP BY bucket
         ON CONFLICT (series_id, step_ms, ts_ms) DO UPDATE SET
            min = min(metric_rollups.min, excluded.min), max = max(metric_rollups.max, excluded.max),
            sum = metric_rollups.sum + excluded.sum, count = metric_rollups.count + excluded.count",
    )?
    .execute(params![id, minute_cutoff, MINUTE_MS, HOUR_MS])?;
    tx.prepare_cached("DELETE FROM metric_rollups WHERE series_id = ?1 AND step_ms = ?3 AND ts_ms < ?2")?
        .execute(params![id, minute_cutoff, MINUTE_MS])?;
    tx.prepare_cached("DELETE FROM metric_rollups WHERE series_id = ?1 AND step_ms = ?3 AND ts_ms < ?2")?
        .execute(params![id, hour_cutoff, HOUR_MS])?;
    Ok(())
}

/// Free pages a pass leaves in the file for reuse, at least: retention frees and the writer
/// fills about as many pages a minute, and handing them to the file system only to grow the
/// file again would cost writes for nothing.
const KEEP_FREE_PAGES: i64 = 1_024;
/// Most free pages handed back per pass: each may move a page from the end of the file.
const RETURN_PAGES_PER_PASS: i64 = 2_048;

/// Hands free pages beyond a quarter of the file (and beyond [`KEEP_FREE_PAGES`]) back to the
/// file system, a bounded number per pass (`auto_vacuum = INCREMENTAL`). Free pages pile up
/// when much more was deleted than is being written: after a schema upgrade that copies a
/// table, or when a retention window is shortened.
fn return_free_pages(conn: &Connection) -> rusqlite::Result<()> {
    let pragma = |name: &str| conn.query_row(&format!("PRAGMA {name}"), [], |r| r.get::<_, i64>(0));
    let (free, total) = (pragma("freelist_count")?, pragma("page_count")?);
    let excess = free - KEEP_FREE_PAGES.max(total / 4);
    if excess <= 0 {
        return Ok(());
    }
    // One row per page freed: the pragma runs until its rows are read.
    let mut stmt =
        conn.prepare(&format!("PRAGMA incremental_vacuum({})", excess.min(RETURN_PAGES_PER_PASS)))?;
    let mut rows = stmt.query([])?;
    while rows.next()?.is_some() {}
    Ok(())
}

/// Deletes the oldest rows of `table` (whose ids grow with time) that are older than
/// `cutoff_ms` or beyond the newest `max_rows`, a few thousand per transaction.
fn prune_rows(
    conn: &mut Connection,
    table: &str,
    cutoff_ms: i64,
    max_rows: Option<i64>,
    budget: Duration,
) -> rusqlite::Result<()> {
    let started = Instant::now();
    let keep_from: i64 = match max_rows {
        Some(n) => {
            conn.query_row(&format!("SELECT coalesce(max(id), 0) - ?1 FROM {table}"), [n], |r| r.get(0))?
        }
        None => i64::MIN,
    };
    let sql = format!(
        "DELETE FROM {table} WHERE id IN (
             SELECT id FROM (SELECT id, ts_ms FROM {table} ORDER BY id LIMIT ?3)
             WHERE ts_ms < ?1 OR id <= ?2)"
    );
    loop {
        let tx = conn.transaction()?;
        let deleted = tx.prepare_cached(&sql)?.execute(params![cutoff_ms, keep_from, ROWS_PER_TX])?;
        tx.commit()?;
        if (deleted as i64) < ROWS_PER_TX || started.elapsed() >= budget {
            return Ok(());
        }
    }
}

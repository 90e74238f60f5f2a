//! Ingest (benchmark 1): metric points per second through the store's writer (typed samples over the
//! channel, batched by the writer thread) against the physical limit of the same SQLite build:
//! plain rusqlite inserting the same rows, in the same order, into the same table, with the same
//! pragmas, in large transactions. The two alternate, each on a fresh database.

use crate::report::{Figure, Section, Verdict, rate, ratio};
use crate::stats::median;
use crate::workload::{METRICS, flushed, remove_db, tick_samples};
use agentvisor_shared::schema::sample_block;
use agentvisor_shared::{Sample, Store, WriteOp, WriterConfig};
use anyhow::{Context, Result};
use rusqlite::{Connection, params};
use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

pub struct Params {
    pub agents: usize,
    /// Seconds of samples per run: points = agents x 10 x seconds.
    pub seconds: usize,
    pub reps: usize,
    /// Rows per transaction on the raw side.
    pub raw_batch: usize,
}

pub const TITLE: &str = "1. Ingest";
const BIG_CACHE_KIB: i64 = 64 * 1024;

pub fn run(work: &Path, p: &Params) -> Result<Section> {
    let base_ms = agentvisor_shared::time::now_ms() - (p.seconds as i64 + 60) * 1000;
    let ticks: Vec<Vec<Sample>> =
        (0..p.seconds).map(|t| tick_samples(p.agents, base_ms + t as i64 * 1000, t as u64)).collect();
    let points = p.agents * METRICS.len() * p.seconds;
    let mut store_rates = Vec::new();
    let mut raw_rates = Vec::new();
    let mut big_cache_rates = Vec::new();
    let mut ratios = Vec::new();
    let mut big_cache_ratios = Vec::new();
    for rep in 0..p.reps {
        let db = work.join(format!("ingest-store-{rep}.db"));
        let store = points as f64 / through_store(&db, &ticks)?;
        remove_db(&db);
        let db = work.join(format!("ingest-raw-{rep}.db"));
        let raw = points as f64 / through_rusqlite(&db, &ticks, p.raw_batch, None)?;
        remove_db(&db);
        let db = work.join(format!("ingest-raw-cache-{rep}.db"));
        let big = points as f64 / through_rusqlite(&db, &ticks, p.raw_batch, Some(BIG_CACHE_KIB))?;
        remove_db(&db);
        store_rates.push(store);
        raw_rates.push(raw);
        big_cache_rates.push(big);
        ratios.push(store / raw);
        big_cache_ratios.push(store / big);
    }
    let r = median(&ratios);
    let mut s = Section::new(TITLE);
    s.figures.push(Figure::info("store writer, points/s", rate(median(&store_rates))));
    s.figures.push(Figure::info("raw rusqlite, same pragmas, points/s", rate(median(&raw_rates))));
    s.figures.push(Figure::target(
        "store / raw (same pragmas)",
        ratio(r),
        ">= 0.6",
        Verdict::check(r, r >= 0.6),
    ));
    s.figures.push(Figure::info(
        "raw rusqlite with a 64 MiB page cache, points/s",
        rate(median(&big_cache_rates)),
    ));
    s.figures.push(Figure::info("store / raw with a 64 MiB page cache", ratio(median(&big_cache_ratios))));
    s.method.push(format!(
        "Each run writes {points} points ({} agents x {} metrics x {} s of 1 Hz samples). The store side \
         starts the writer with its default config, offers one `WriteOp::Samples` per second of data \
         (as the launcher's sampler does) and stops the clock when `flush()` returns. The raw side opens \
         the same freshly migrated schema with the same pragmas (WAL, synchronous=NORMAL, \
         foreign_keys=ON), creates the same series rows and inserts the same rows in the same order \
         into `metric_samples` with one cached `INSERT` statement, {} rows per transaction. The two \
         alternate, {} runs each, each on a new database file; the figures are medians, and each ratio is \
         the median of the ratios of runs made one after the other. A third side repeats the raw \
         inserts with `cache_size` at 64 MiB instead of SQLite's default 2 MiB (the store keeps the \
         default): the rows are spread over 1,000 series, so every second of data touches 1,000 \
         B-tree leaves, and the page cache decides how many of them must be read back.",
        p.agents,
        METRICS.len(),
        p.seconds,
        p.raw_batch,
        p.reps
    ));
    s.details.push(format!(
        "Per run (points/s): store {}; raw {}; raw with a 64 MiB cache {}.",
        list(&store_rates),
        list(&raw_rates),
        list(&big_cache_rates)
    ));
    Ok(s)
}

fn list(v: &[f64]) -> String {
    v.iter().map(|x| rate(*x)).collect::<Vec<_>>().join(", ")
}

/// Seconds to write `ticks` through the store's writer.
fn through_store(db: &Path, ticks: &[Vec<Sample>]) -> Result<f64> {
    let store = Store::open(db, WriterConfig::default()).context("opening the store")?;
    let (h, thread) = store.start().context("starting the writer")?;
    let ops: Vec<WriteOp> = ticks.iter().cloned().map(WriteOp::Samples).collect();
    let started = Instant::now();
    for op in ops {
        if !h.offer(op) {
            anyhow::bail!("the writer's queue was full: the benchmark would measure dropped samples");
        }
    }
    flushed(&h)?;
    let secs = started.elapsed().as_secs_f64();
    let dropped = h.dropped();
    drop(h);
    thread.join();
    anyhow::ensure!(dropped == 0, "the writer dropped {dropped} operations");
    check_rows(db, ticks)?;
    Ok(secs)
}

/// Seconds to insert the same rows with plain rusqlite.
/// `cache_kib`: a page cache of that size instead of SQLite's default 2 MiB (which the store
/// keeps), to show how much of the gap to the hardware is the cache.
fn through_rusqlite(db: &Path, ticks: &[Vec<Sample>], batch: usize, cache_kib: Option<i64>) -> Result<f64> {
    // The store creates the schema and puts the file in WAL mode; then it is closed and only
    // plain rusqlite touches the file.
    drop(Store::open(db, WriterConfig::default()).context("creating the schema")?);
    let mut conn = Connection::open(db).context("opening the database")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    if let Some(kib) = cache_kib {
        conn.pragma_update(None, "cache_size", -kib)?;
    }
    conn.pragma_update(None, "foreign_keys", true)?;
    conn.pragma_update(None, "journal_size_limit", WriterConfig::default().wal_limit_bytes as i64)?;
    let rows: Vec<(usize, i64, f64)> =
        ticks.iter().flat_map(|t| t.iter().enumerate().map(|(i, s)| (i, s.ts_ms, s.value))).collect();
    let series = ticks.first().map(Vec::as_slice).unwrap_or_default();
    let started = Instant::now();
    let mut ids = HashMap::with_capacity(series.len());
    {
        let tx = conn.transaction()?;
        for (i, s) in series.iter().enumerate() {
            tx.execute(
                "INSERT INTO metric_series (scope, metric) VALUES (?1, ?2)",
                params![s.scope, s.metric],
            )?;
            ids.insert(i, tx.last_insert_rowid());
        }
        tx.commit()?;
    }
    for chunk in rows.chunks(batch.max(1)) {
        let tx = conn.transaction()?;
        {
            let mut stmt = tx.prepare_cached(
                "INSERT INTO metric_samples (block, series_id, ts_ms, value) VALUES (?1, ?2, ?3, ?4)",
            )?;
            for (i, ts, v) in chunk {
                let id = ids.get(i).copied().context("a sample of an unknown series")?;
                stmt.execute(params![sample_block(*ts), id, ts, v])?;
            }
        }
        tx.commit()?;
    }
    let secs = started.elapsed().as_secs_f64();
    drop(conn);
    check_rows(db, ticks)?;
    Ok(secs)
}

/// Both sides must have written every point, or the comparison means nothing.
fn check_rows(db: &Path, ticks: &[Vec<Sample>]) -> Result<()> {
    let want: usize = ticks.iter().map(Vec::len).sum();
    let conn = Connection::open(db)?;
    let got: i64 = conn.query_row("SELECT count(*) FROM metric_samples", [], |r| r.get(0))?;
    anyhow::ensure!(got as usize == want, "{} has {got} samples, expected {want}", db.display());
    Ok(())
}

//! Where samples go: series ids looked up once, and raw rows that wait to be inserted together.

use foldhash::HashMap;
use rusqlite::{Connection, params};
/// Sample rows kept waiting at most, whatever the interval: bounds the writer's memory.
pub(super) const MAX_PENDING_ROWS: usize = 100_000;

/// Series ids by scope, then metric: looked up by `&str`, without building a key per sample.
pub(super) type SeriesIds = HashMap<String, HashMap<String, i64>>;

pub(super) fn series_id(
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

/// Where a batch's samples go: series ids (created as needed, and noted so that a failed
/// transaction can forget them), each series' newest value, and the rows that wait.
pub(super) struct SampleSink<'a> {
    pub(super) series: &'a mut SeriesIds,
    pub(super) new_series: &'a mut Vec<(String, String)>,
    pub(super) last_values: &'a mut HashMap<i64, (i64, f64)>,
    pub(super) rows: &'a mut Vec<(i64, i64, f64)>,
}

//! Row mappers that both the reader and the writer use, so that neither imports the other.

use crate::model::{LauncherSession, LogLine};
use rusqlite::{Row, RowIndex};
use std::str::FromStr;

/// A `launcher_sessions` row, read by column name: one row per read, so the lookups cost
/// nothing that matters.
pub(crate) fn session_from_row(r: &Row<'_>) -> rusqlite::Result<LauncherSession> {
    Ok(LauncherSession {
        id: r.get("id")?,
        pid: r.get("pid")?,
        host: r.get("host")?,
        version: r.get("version")?,
        config_path: r.get("config_path")?,
        started_ms: r.get("started_ms")?,
        last_seen_ms: r.get("last_seen_ms")?,
        stopped_ms: r.get("stopped_ms")?,
        exit_reason: r.get("exit_reason")?,
        status: r.get("status")?,
    })
}

/// The columns of `log_lines` that [`log_line_from_row`] reads, in its order.
pub(crate) const LOG_LINE_COLUMNS: &str = "id, agent, stream, ts_ms, line";

/// A `log_lines` row selected with [`LOG_LINE_COLUMNS`]: by position, as pages of a thousand
/// lines are read this way.
pub(crate) fn log_line_from_row(r: &Row<'_>) -> rusqlite::Result<LogLine> {
    Ok(LogLine {
        id: r.get(0)?,
        agent: r.get(1)?,
        stream: parse_text(r, 2)?,
        ts_ms: r.get(3)?,
        line: r.get(4)?,
    })
}

/// Parses a TEXT column into one of the model's enums; an unknown value is a conversion error
/// that names the column instead of a panic. The columns' CHECK constraints make a new value
/// come with a new schema version, which an older reader refuses before it reads a row.
pub(crate) fn parse_text<T: FromStr>(r: &Row<'_>, column: impl RowIndex + Copy) -> rusqlite::Result<T>
where
    T::Err: std::error::Error + Send + Sync + 'static,
{
    // Parsed in place from SQLite's buffer: a thousand agents' rows hold three enums each.
    let text = r.get_ref(column)?.as_str().map_err(|e| conversion(r, column, e))?;
    text.parse().map_err(|e| conversion(r, column, e))
}

/// [`parse_text`] for a column that may be NULL.
pub(crate) fn parse_text_opt<T: FromStr>(
    r: &Row<'_>,
    column: impl RowIndex + Copy,
) -> rusqlite::Result<Option<T>>
where
    T::Err: std::error::Error + Send + Sync + 'static,
{
    let text = r.get_ref(column)?.as_str_or_null().map_err(|e| conversion(r, column, e))?;
    text.map(|t| t.parse().map_err(|e| conversion(r, column, e))).transpose()
}

fn conversion(
    r: &Row<'_>,
    column: impl RowIndex,
    e: impl std::error::Error + Send + Sync + 'static,
) -> rusqlite::Error {
    let i = column.idx(r.as_ref()).unwrap_or(usize::MAX);
    rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e))
}

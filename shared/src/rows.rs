//! Row mappers that both the reader and the writer use, so that neither imports the other.

use crate::model::LauncherSession;
use rusqlite::Row;

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

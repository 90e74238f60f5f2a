//! Opening the database for writing, and the launcher sessions.

use super::config::WriterConfig;
use crate::db_files::DbFiles;
use crate::error::{AtPath, Result, StoreError};
use crate::model::{EventKind, LauncherSession};
use crate::schema;
use crate::time::now_ms;
use rusqlite::{Connection, OpenFlags, params};
use std::path::{Path, PathBuf};

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
    pub(super) conn: Connection,
    pub(super) path: PathBuf,
    pub(super) cfg: WriterConfig,
    pub(super) session_id: Option<i64>,
    pub(super) files: DbFiles,
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

    /// Each agent's latest scheduled due time on record (see [`crate::runs::last_due_times`]),
    /// read before the writer starts so the launcher can tell which runs it missed.
    pub fn last_due_times(&self) -> Result<std::collections::HashMap<String, i64>> {
        crate::runs::last_due_times(&self.conn).at(&self.path)
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
            .query_map([self.session_id], crate::rows::session_from_row)
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
    /// Runs still open from earlier sessions end `lost`, when their launcher was last seen.
    pub fn begin_session(&mut self, s: &NewSession) -> Result<i64> {
        let now = now_ms();
        self.conn
            .execute(
                "UPDATE runs SET outcome = 'lost', message = 'its launcher ended while it ran',
                    ended_ms = max(ts_ms, coalesce(
                        (SELECT last_seen_ms FROM launcher_sessions WHERE id = runs.session_id), ts_ms)),
                    duration_ms = max(0, coalesce(
                        (SELECT last_seen_ms FROM launcher_sessions WHERE id = runs.session_id), ts_ms) - ts_ms)
                 WHERE outcome IS NULL",
                [],
            )
            .at(&self.path)?;
        crate::tasks::end_lost(&self.conn).at(&self.path)?;
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

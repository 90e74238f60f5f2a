//! Tasks the agents report (`tasks`, docs/schema.md): the writer's statements and the read
//! API. An agent has at most one open task, so the writer ends "the agent's open task" and
//! needs no id from the launcher.

use crate::error::Result;
use crate::model::TaskOutcome;
use crate::reader::Reader;
use crate::rows::parse_text_opt;
use rusqlite::{Connection, Row, params};
use serde::Serialize;

/// One row of `tasks`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Task {
    pub id: i64,
    pub agent: String,
    pub run_id: Option<i64>,
    pub text: String,
    pub started_ms: i64,
    pub ended_ms: Option<i64>,
    /// `None` while it runs.
    pub outcome: Option<TaskOutcome>,
    pub duration_ms: Option<i64>,
    pub tokens_in: Option<i64>,
    pub tokens_out: Option<i64>,
    pub cost: Option<f64>,
}

const COLUMNS: &str =
    "id, agent, run_id, text, ts_ms, ended_ms, outcome, duration_ms, tokens_in, tokens_out, cost";

/// A row selected with [`COLUMNS`], in that order.
fn task_from_row(r: &Row<'_>) -> rusqlite::Result<Task> {
    Ok(Task {
        id: r.get(0)?,
        agent: r.get(1)?,
        run_id: r.get(2)?,
        text: r.get(3)?,
        started_ms: r.get(4)?,
        ended_ms: r.get(5)?,
        outcome: parse_text_opt(r, 6)?,
        duration_ms: r.get(7)?,
        tokens_in: r.get(8)?,
        tokens_out: r.get(9)?,
        cost: r.get(10)?,
    })
}

/// The newest `limit` tasks, newest first, of `agent` or of all agents.
pub fn recent_tasks(conn: &Connection, agent: Option<&str>, limit: i64) -> rusqlite::Result<Vec<Task>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM tasks WHERE (?1 IS NULL OR agent = ?1) ORDER BY id DESC LIMIT ?2"
    ))?;
    stmt.query_map(params![agent, limit], task_from_row)?.collect()
}

/// Begins a task of `agent` (`run_id`, `text`, `ts_ms` as in `NewTask`): the agent's open one,
/// if any, ends first (as `ended`).
#[cfg(feature = "writer")]
pub(crate) fn start(
    tx: &Connection,
    session: Option<i64>,
    agent: &str,
    run_id: Option<i64>,
    text: &str,
    ts_ms: i64,
) -> rusqlite::Result<()> {
    close_open(tx, agent, ts_ms, TaskOutcome::Ended)?;
    tx.prepare_cached(
        "INSERT INTO tasks (session_id, agent, run_id, text, ts_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![session, agent, run_id, text, ts_ms])?;
    Ok(())
}

/// Ends the agent's open task, if it has one; `spent` is (tokens in, tokens out, cost).
#[cfg(feature = "writer")]
pub(crate) fn end(
    tx: &Connection,
    agent: &str,
    ended_ms: i64,
    outcome: TaskOutcome,
    spent: (Option<i64>, Option<i64>, Option<f64>),
) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "UPDATE tasks SET ended_ms = ?2, outcome = ?3, duration_ms = max(?2 - ts_ms, 0),
             tokens_in = ?4, tokens_out = ?5, cost = ?6
         WHERE agent = ?1 AND outcome IS NULL",
    )?
    .execute(params![agent, ended_ms, outcome.as_str(), spent.0, spent.1, spent.2])?;
    Ok(())
}

#[cfg(feature = "writer")]
fn close_open(tx: &Connection, agent: &str, at_ms: i64, outcome: TaskOutcome) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "UPDATE tasks SET ended_ms = max(?2, ts_ms), outcome = ?3, duration_ms = max(?2 - ts_ms, 0)
         WHERE agent = ?1 AND outcome IS NULL",
    )?
    .execute(params![agent, at_ms, outcome.as_str()])?;
    Ok(())
}

/// At a launcher's start: tasks still open from earlier sessions end `lost`, when their
/// launcher was last seen.
#[cfg(feature = "writer")]
pub(crate) fn end_lost(conn: &Connection) -> rusqlite::Result<usize> {
    conn.execute(
        "UPDATE tasks SET outcome = 'lost',
            ended_ms = max(ts_ms, coalesce(
                (SELECT last_seen_ms FROM launcher_sessions WHERE id = tasks.session_id), ts_ms)),
            duration_ms = max(0, coalesce(
                (SELECT last_seen_ms FROM launcher_sessions WHERE id = tasks.session_id), ts_ms) - ts_ms)
         WHERE outcome IS NULL",
        [],
    )
}

impl Reader {
    /// [`recent_tasks`] in one read transaction.
    pub fn recent_tasks(&self, agent: Option<&str>, limit: i64) -> Result<Vec<Task>> {
        self.read(|c| recent_tasks(c, agent, limit))
    }
}

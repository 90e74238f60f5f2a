//! Run records (`runs`, docs/schema.md): reading them, and the few statements the writer runs
//! on them besides its operations.
//!
//! A run is one process start of an agent (scheduled, manual, or a long-running agent's start)
//! or one invocation of a hook, with how it ended. The functions here take a [`Connection`] so
//! they serve the writer (before its thread starts) and the [`Reader`] alike; the `Reader`
//! methods wrap each in one short read transaction.

use crate::error::Result;
use crate::model::{LogLine, RunOutcome, RunTrigger};
use crate::reader::Reader;
use crate::rows::{LOG_LINE_COLUMNS, log_line_from_row, parse_text, parse_text_opt};
use rusqlite::{Connection, Row, params};
use serde::Serialize;
use std::collections::HashMap;

/// One row of `runs`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Run {
    pub id: i64,
    pub session_id: Option<i64>,
    /// The agent's name, or the hook's for [`RunTrigger::Hook`].
    pub agent: String,
    pub trigger: RunTrigger,
    /// 0 for a first attempt; 1, 2, ... for retries of a failed run.
    pub attempt: i64,
    /// Who asked for a manual run.
    pub user: Option<String>,
    /// For a hook run: the agent its event was about.
    pub subject: Option<String>,
    pub detail: Option<String>,
    pub due_ms: Option<i64>,
    /// When it started (when it was skipped, for a skipped run).
    pub started_ms: i64,
    pub ended_ms: Option<i64>,
    /// `None` while it runs.
    pub outcome: Option<RunOutcome>,
    pub exit_code: Option<i64>,
    pub exit_signal: Option<i64>,
    pub duration_ms: Option<i64>,
    pub pid: Option<i64>,
    pub tokens_in: Option<i64>,
    pub tokens_out: Option<i64>,
    pub cost: Option<f64>,
    /// `log_lines` ids of its captured output, inclusive; `None` when it printed nothing.
    pub log_first_id: Option<i64>,
    pub log_last_id: Option<i64>,
    pub message: Option<String>,
}

impl Run {
    /// Whether it is still running.
    pub fn is_open(&self) -> bool {
        self.outcome.is_none()
    }
}

const COLUMNS: &str = "id, session_id, agent, trigger, attempt, user, subject, detail, due_ms, ts_ms,
    ended_ms, outcome, exit_code, exit_signal, duration_ms, pid, tokens_in, tokens_out, cost,
    log_first_id, log_last_id, message";

/// A row selected with [`COLUMNS`], in that order.
fn run_from_row(r: &Row<'_>) -> rusqlite::Result<Run> {
    Ok(Run {
        id: r.get(0)?,
        session_id: r.get(1)?,
        agent: r.get(2)?,
        trigger: parse_text(r, 3)?,
        attempt: r.get(4)?,
        user: r.get(5)?,
        subject: r.get(6)?,
        detail: r.get(7)?,
        due_ms: r.get(8)?,
        started_ms: r.get(9)?,
        ended_ms: r.get(10)?,
        outcome: parse_text_opt(r, 11)?,
        exit_code: r.get(12)?,
        exit_signal: r.get(13)?,
        duration_ms: r.get(14)?,
        pid: r.get(15)?,
        tokens_in: r.get(16)?,
        tokens_out: r.get(17)?,
        cost: r.get(18)?,
        log_first_id: r.get(19)?,
        log_last_id: r.get(20)?,
        message: r.get(21)?,
    })
}

/// The newest `limit` runs, newest first: of `agent` (an agent's or a hook's name) or of all,
/// and with `failed_only` only those whose outcome is a failure ([`RunOutcome::FAILURES`]).
/// Open runs are included (their outcome is `None`).
pub fn recent_runs(
    conn: &Connection,
    agent: Option<&str>,
    failed_only: bool,
    limit: i64,
) -> rusqlite::Result<Vec<Run>> {
    let failures: Vec<&str> = RunOutcome::FAILURES.iter().map(|o| o.as_str()).collect();
    let failures = serde_json::to_string(&failures).unwrap_or_else(|_| "[]".into());
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM runs
         WHERE (?1 IS NULL OR agent = ?1)
           AND (NOT ?2 OR outcome IN (SELECT value FROM json_each(?3)))
         ORDER BY id DESC LIMIT ?4"
    ))?;
    stmt.query_map(params![agent, failed_only, failures, limit], run_from_row)?.collect()
}

/// The run's captured output still kept (the per-agent ring and retention may have dropped
/// its oldest lines), oldest first, at most the last `limit` lines.
pub fn run_output(conn: &Connection, run: &Run, limit: i64) -> rusqlite::Result<Vec<LogLine>> {
    let (Some(first), Some(last)) = (run.log_first_id, run.log_last_id) else { return Ok(Vec::new()) };
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {LOG_LINE_COLUMNS} FROM log_lines
         WHERE agent = ?1 AND id BETWEEN ?2 AND ?3 ORDER BY id DESC LIMIT ?4"
    ))?;
    let mut lines = stmt
        .query_map(params![run.agent, first, last, limit], log_line_from_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    lines.reverse();
    Ok(lines)
}

/// Each agent's latest due time among its scheduled and catch-up runs (skipped ones too): the
/// launcher compares it with the schedule to find runs missed while no launcher ran.
pub fn last_due_times(conn: &Connection) -> rusqlite::Result<HashMap<String, i64>> {
    let mut stmt = conn.prepare_cached(
        "SELECT agent, max(due_ms) FROM runs
         WHERE trigger IN ('schedule', 'catch_up') AND due_ms IS NOT NULL GROUP BY agent",
    )?;
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect()
}

/// The id the next run gets: past every id a run ever had, deleted ones too.
#[cfg(feature = "writer")]
pub(crate) fn next_free_id(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row(
        "SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'runs'), 0),
                    coalesce((SELECT max(id) FROM runs), 0)) + 1",
        [],
        |r| r.get(0),
    )
}

/// Extends each agent's current run's output range with new `log_lines` ids
/// `(agent, first, last)`. The current run is the newest that was not skipped: lines read
/// after its process exited still belong to it, until the next run begins.
#[cfg(feature = "writer")]
pub(crate) fn extend_output(conn: &Connection, ranges: &[(&str, i64, i64)]) -> rusqlite::Result<()> {
    if ranges.is_empty() {
        return Ok(());
    }
    let mut stmt = conn.prepare_cached(
        "UPDATE runs SET log_first_id = coalesce(log_first_id, ?2), log_last_id = ?3
         WHERE id = (SELECT id FROM runs WHERE agent = ?1 AND outcome IS NOT 'skipped'
                     ORDER BY id DESC LIMIT 1)",
    )?;
    for (agent, first, last) in ranges {
        stmt.execute(params![agent, first, last])?;
    }
    Ok(())
}

impl Reader {
    /// [`recent_runs`] in one read transaction.
    pub fn recent_runs(&self, agent: Option<&str>, failed_only: bool, limit: i64) -> Result<Vec<Run>> {
        self.read(|c| recent_runs(c, agent, failed_only, limit))
    }

    /// [`run_output`] in one read transaction.
    pub fn run_output(&self, run: &Run, limit: i64) -> Result<Vec<LogLine>> {
        self.read(|c| run_output(c, run, limit))
    }

    /// One run by id, if it is still kept.
    pub fn run(&self, id: i64) -> Result<Option<Run>> {
        use rusqlite::OptionalExtension;
        self.read(|c| {
            c.prepare_cached(&format!("SELECT {COLUMNS} FROM runs WHERE id = ?1"))?
                .query_row([id], run_from_row)
                .optional()
        })
    }
}

/// Tokens and cost reported over a span of time (see [`spend_since`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Spend {
    pub tokens_in: i64,
    pub tokens_out: i64,
    pub cost: f64,
}

/// What the agents reported since `since_ms`: the totals of the runs that ended since then,
/// plus, for each agent's run still open, the agent's current running totals.
///
/// A run counts whole in the span where it ended (its totals are not spread over its
/// duration), and an open run counts now: a long run that began yesterday counts today.
/// While a new process has reported nothing yet, the agent's running totals still hold the
/// previous process's (they stay as history); an open run whose agent's totals equal those
/// of the agent's last ended run therefore counts nothing, so that run is not counted twice.
pub fn spend_since(conn: &Connection, since_ms: i64) -> rusqlite::Result<Spend> {
    let mut stmt = conn.prepare_cached(
        "WITH parts(tokens_in, tokens_out, cost) AS (
             SELECT tokens_in, tokens_out, cost FROM runs
             WHERE outcome IS NOT NULL AND ended_ms >= ?1
             UNION ALL
             SELECT s.tokens_in, s.tokens_out, s.cost
             FROM runs r JOIN agent_state s ON s.agent = r.agent
             WHERE r.outcome IS NULL AND r.trigger != 'hook'
               AND NOT EXISTS (
                   SELECT 1 FROM runs p
                   WHERE p.id = (SELECT max(id) FROM runs q
                                 WHERE q.agent = r.agent AND q.id < r.id
                                   AND q.outcome IS NOT NULL AND q.outcome != 'skipped')
                     AND p.tokens_in IS s.tokens_in AND p.tokens_out IS s.tokens_out
                     AND p.cost IS s.cost))
         SELECT coalesce(sum(tokens_in), 0), coalesce(sum(tokens_out), 0), coalesce(sum(cost), 0.0)
         FROM parts",
    )?;
    stmt.query_row([since_ms], |r| Ok(Spend { tokens_in: r.get(0)?, tokens_out: r.get(1)?, cost: r.get(2)? }))
}

/// What the agents reported today and in the last hour (see [`spend_since`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct SpendWindows {
    pub today: Spend,
    pub last_hour: Spend,
}

impl Reader {
    /// [`spend_since`] the start of the day (the caller's: it knows the zone) and since an
    /// hour before `now_ms`, in one read transaction (one consistent view).
    pub fn spend(&self, day_start_ms: i64, now_ms: i64) -> Result<SpendWindows> {
        self.read(|c| {
            Ok(SpendWindows {
                today: spend_since(c, day_start_ms)?,
                last_hour: spend_since(c, now_ms - 3_600_000)?,
            })
        })
    }
}

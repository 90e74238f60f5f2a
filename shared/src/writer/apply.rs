//! Applying operations to SQLite: one transaction per batch.

use super::batch::Queued;
use super::ops::WriteOp;
use super::samples::{MAX_PENDING_ROWS, SampleSink, series_id};
use super::thread::Writer;
use crate::model::{AgentStatus, EventKind};
use crate::schema::{self, sample_block};
use crate::time::now_ms;
use foldhash::{HashMap, HashMapExt, HashSet, HashSetExt};
use rusqlite::{Connection, ErrorCode, params};
use std::sync::atomic::Ordering;
use std::time::Instant;
impl Writer {
    pub(super) fn apply(&mut self, ops: &[Queued], write_samples: bool) -> rusqlite::Result<()> {
        let session = self.store.session_id;
        let log_limit = self.store.cfg.log_lines_per_agent;
        let tx = self.store.conn.transaction()?;
        let mut new_series = Vec::new();
        let mut last_values: HashMap<i64, (i64, f64)> = HashMap::new();
        let mut logged: HashSet<&str> = HashSet::new();
        for Queued { op, .. } in ops {
            let mut sink = SampleSink {
                series: &mut self.series,
                new_series: &mut new_series,
                last_values: &mut last_values,
                rows: &mut self.pending_rows,
            };
            let r = apply_op(&tx, session, op, &mut sink, &self.written);
            match r {
                Ok(()) => {
                    if let WriteOp::Logs(lines) = op {
                        logged.extend(lines.iter().map(|l| l.agent.as_str()));
                    }
                }
                // A statement that violates a constraint was rolled back on its own; the
                // rest of the batch is still good, so skip the bad operation, not the batch.
                Err(e) if is_bad_data(&e) => {
                    tracing::warn!(error = %e, op = ?op, "store writer skipped an invalid operation");
                }
                Err(e) => {
                    drop(tx);
                    self.forget(new_series);
                    return Err(e);
                }
            }
        }
        if !self.pending_rows.is_empty() && self.pending_since.is_none() {
            self.pending_since = Some(Instant::now());
        }
        let due = self.pending_since.is_some_and(|t| t.elapsed() >= self.store.cfg.sample_flush_interval);
        if write_samples || due || self.pending_rows.len() >= MAX_PENDING_ROWS {
            // In key order, consecutive rows land in the same B-tree pages.
            self.pending_rows.sort_unstable_by_key(|&(id, ts, _)| (sample_block(ts), id, ts));
            let mut insert = tx.prepare_cached(
                "INSERT OR REPLACE INTO metric_samples (block, series_id, ts_ms, value)
                 VALUES (?1, ?2, ?3, ?4)",
            )?;
            for (id, ts, v) in self.pending_rows.drain(..) {
                insert.execute(params![sample_block(ts), id, ts, v])?;
            }
            self.pending_since = None;
        }
        if let Some(newest) = last_values.values().map(|(ts, _)| *ts).max() {
            self.newest_sample_ms = self.newest_sample_ms.max(newest);
        }
        last_values.retain(|id, &mut (ts, v)| match self.newest_written.get(id) {
            Some(&(written_ts, written_v)) => {
                ts >= written_ts
                    && (written_v.to_bits() != v.to_bits() || ts - written_ts >= schema::NEWEST_REFRESH_MS)
            }
            None => true,
        });
        {
            let mut stmt = tx.prepare_cached(
                "UPDATE metric_series SET last_ms = ?2, last_value = ?3
                 WHERE id = ?1 AND (last_ms IS NULL OR last_ms <= ?2)",
            )?;
            for (id, (ts, v)) in &last_values {
                stmt.execute(params![id, ts, v])?;
            }
            let mut prune = tx.prepare_cached(
                "DELETE FROM log_lines WHERE agent = ?1 AND id <= (
                     SELECT id FROM log_lines WHERE agent = ?1 ORDER BY id DESC LIMIT 1 OFFSET ?2)",
            )?;
            for agent in logged {
                prune.execute(params![agent, log_limit as i64])?;
            }
        }
        let committed = tx.commit();
        if committed.is_err() {
            self.forget(new_series);
        }
        committed?;
        self.newest_written.extend(last_values);
        Ok(())
    }

    /// After a failed transaction: series created in it do not exist, and the sample rows
    /// that were waiting (bulk data, like the rest of the failed batch) are dropped and counted.
    pub(super) fn forget(&mut self, new_series: Vec<(String, String)>) {
        for (scope, metric) in new_series {
            if let Some(metrics) = self.series.get_mut(&scope) {
                metrics.remove(&metric);
            }
        }
        if !self.pending_rows.is_empty() {
            self.pending_rows.clear();
            self.pending_since = None;
            self.shared.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Errors that come from the data in one operation rather than from the storage.
fn is_bad_data(e: &rusqlite::Error) -> bool {
    match e {
        rusqlite::Error::SqliteFailure(f, _) => {
            matches!(f.code, ErrorCode::ConstraintViolation | ErrorCode::TooBig | ErrorCode::TypeMismatch)
        }
        rusqlite::Error::ToSqlConversionFailure(_) => true,
        _ => false,
    }
}

/// Writes the lifecycle part of an agent's status row (what [`AgentStatus::same_lifecycle`]
/// compares), creating the row if need be; [`update_reported`] writes the rest.
fn upsert_lifecycle(
    tx: &Connection,
    session: Option<i64>,
    s: &AgentStatus,
    now: i64,
) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO agent_state (agent, session_id, state, health, ready, pid, pgid,
                pid_start_ticks, started_ms, exited_ms, exit_code, exit_signal, restarts,
                last_error, updated_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)
             ON CONFLICT (agent) DO UPDATE SET
                session_id = excluded.session_id, state = excluded.state,
                health = excluded.health, ready = excluded.ready, pid = excluded.pid,
                pgid = excluded.pgid, pid_start_ticks = excluded.pid_start_ticks,
                started_ms = excluded.started_ms, exited_ms = excluded.exited_ms,
                exit_code = excluded.exit_code, exit_signal = excluded.exit_signal,
                restarts = excluded.restarts, last_error = excluded.last_error,
                updated_ms = excluded.updated_ms",
    )?
    .execute(params![
        s.agent,
        session,
        s.lifecycle.state.as_str(),
        s.lifecycle.health.as_str(),
        s.lifecycle.ready,
        s.lifecycle.pid,
        s.lifecycle.pgid,
        s.lifecycle.pid_start_ticks,
        s.lifecycle.started_ms,
        s.lifecycle.exited_ms,
        s.lifecycle.exit_code,
        s.lifecycle.exit_signal,
        s.lifecycle.restarts,
        s.lifecycle.last_error,
        now
    ])?;
    Ok(())
}

/// Writes only the fields an agent reports of itself (see [`AgentStatus::same_lifecycle`]);
/// returns the number of rows changed.
fn update_reported(tx: &Connection, s: &AgentStatus, now: i64) -> rusqlite::Result<usize> {
    tx.prepare_cached(
        "UPDATE agent_state SET last_heartbeat_ms = ?2, heartbeats = ?3, status_text = ?4,
            task = ?5, model = ?6, tokens_in = ?7, tokens_out = ?8, cost = ?9,
            notify_errors = ?10, updated_ms = ?11
         WHERE agent = ?1",
    )?
    .execute(params![
        s.agent,
        s.reported.last_heartbeat_ms,
        s.reported.heartbeats,
        s.reported.status_text,
        s.reported.task,
        s.reported.model,
        s.reported.tokens_in,
        s.reported.tokens_out,
        s.reported.cost,
        s.reported.notify_errors,
        now
    ])
}

fn apply_op(
    tx: &Connection,
    session: Option<i64>,
    op: &WriteOp,
    sink: &mut SampleSink<'_>,
    written: &HashMap<String, Box<AgentStatus>>,
) -> rusqlite::Result<()> {
    let now = now_ms();
    match op {
        WriteOp::RegisterAgent(a) => {
            tx.prepare_cached(
                "INSERT INTO agents (name, description, kind, command, capabilities, config, enabled,
                                     desired_state, heartbeat_timeout_ms, position, updated_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
                 ON CONFLICT (name) DO UPDATE SET
                    description = excluded.description, kind = excluded.kind,
                    command = excluded.command, capabilities = excluded.capabilities,
                    config = excluded.config, enabled = excluded.enabled,
                    desired_state = excluded.desired_state,
                    heartbeat_timeout_ms = excluded.heartbeat_timeout_ms,
                    position = excluded.position, updated_ms = excluded.updated_ms",
            )?
            .execute(params![
                a.name,
                a.description,
                a.kind,
                json(&a.command),
                json(&a.capabilities),
                a.config.to_string(),
                a.enabled,
                a.desired_state.as_str(),
                a.heartbeat_timeout_ms,
                a.position,
                now
            ])?;
            tx.prepare_cached(
                "INSERT OR IGNORE INTO agent_state (agent, session_id, state, health, updated_ms)
                 VALUES (?1, ?2, 'stopped', 'unknown', ?3)",
            )?
            .execute(params![a.name, session, now])?;
        }
        WriteOp::SetDesired { agent, desired } => {
            tx.prepare_cached("UPDATE agents SET desired_state = ?2, updated_ms = ?3 WHERE name = ?1")?
                .execute(params![agent, desired.as_str(), now])?;
        }
        WriteOp::StoppedBy { agent, by } => {
            tx.prepare_cached("UPDATE agents SET stopped_by = ?2 WHERE name = ?1")?
                .execute(params![agent, by])?;
        }
        WriteOp::RemoveUnlisted { keep, reason } => {
            let removed = tx
                .prepare_cached(
                    "UPDATE agents SET desired_state = 'removed', updated_ms = ?2
                     WHERE desired_state != 'removed' AND name NOT IN (SELECT value FROM json_each(?1))
                     RETURNING name",
                )?
                .query_map(params![json(keep), now], |r| r.get::<_, String>(0))?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            let mut event = tx.prepare_cached(
                "INSERT INTO events (ts_ms, session_id, agent, kind, severity, message)
                 VALUES (?1, ?2, ?3, ?4, 'info', ?5)",
            )?;
            for agent in removed {
                let kind = EventKind::AgentRemoved.as_str();
                event.execute(params![now, session, agent, kind, format!("removed: {reason}")])?;
            }
        }
        WriteOp::Status(s) => {
            // Most statuses are heartbeats: when the committed row already holds the same
            // lifecycle, only what the agent reports is written. Otherwise (or if the row is
            // gone) the lifecycle part is written first, creating the row if need be.
            let routine = written.get(&s.agent).is_some_and(|w| w.same_lifecycle(s));
            if !routine || update_reported(tx, s, now)? == 0 {
                upsert_lifecycle(tx, session, s, now)?;
                update_reported(tx, s, now)?;
            }
        }
        WriteOp::Event(e) => {
            tx.prepare_cached(
                "INSERT INTO events (ts_ms, session_id, agent, kind, severity, message)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![
                e.ts_ms,
                session,
                e.agent,
                e.kind.as_str(),
                e.severity.as_str(),
                e.message
            ])?;
        }
        WriteOp::Samples(samples) => {
            for s in samples {
                // Before 1970 is no time a launcher stamps; blocks and minutes of raw rows are
                // divisions that assume a time after it.
                if !s.value.is_finite() || s.ts_ms < 0 {
                    continue;
                }
                let id = series_id(tx, sink.series, sink.new_series, &s.scope, &s.metric)?;
                sink.rows.push((id, s.ts_ms, s.value));
                let newest = sink.last_values.entry(id).or_insert((s.ts_ms, s.value));
                if s.ts_ms >= newest.0 {
                    *newest = (s.ts_ms, s.value);
                }
            }
        }
        WriteOp::Logs(lines) => {
            let mut stmt = tx.prepare_cached(
                "INSERT INTO log_lines (agent, stream, ts_ms, line) VALUES (?1, ?2, ?3, ?4)",
            )?;
            // Each agent's first and last new line id, for its current run's output range.
            let mut ranges: Vec<(&str, i64, i64)> = Vec::new();
            for l in lines {
                stmt.execute(params![l.agent, l.stream.as_str(), l.ts_ms, l.line])?;
                let id = tx.last_insert_rowid();
                match ranges.iter_mut().find(|(agent, _, _)| *agent == l.agent) {
                    Some(range) => range.2 = id,
                    None => ranges.push((&l.agent, id, id)),
                }
            }
            crate::runs::extend_output(tx, &ranges)?;
        }
        WriteOp::RunStarted(r) => {
            tx.prepare_cached(
                "INSERT INTO runs (id, session_id, agent, trigger, attempt, user, subject, detail,
                                   due_ms, ts_ms, pid)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            )?
            .execute(params![
                r.id,
                session,
                r.agent,
                r.trigger.as_str(),
                r.attempt,
                r.user,
                r.subject,
                r.detail,
                r.due_ms,
                r.ts_ms,
                r.pid
            ])?;
        }
        WriteOp::RunEnded(e) => {
            // Only an open run is ended: a run the next launcher already marked lost stays so.
            tx.prepare_cached(
                "UPDATE runs SET ended_ms = ?2, outcome = ?3, exit_code = ?4, exit_signal = ?5,
                    duration_ms = max(?2 - ts_ms, 0), tokens_in = ?6, tokens_out = ?7, cost = ?8,
                    message = ?9
                 WHERE id = ?1 AND outcome IS NULL",
            )?
            .execute(params![
                e.id,
                e.ended_ms,
                e.outcome.as_str(),
                e.exit_code,
                e.exit_signal,
                e.tokens_in,
                e.tokens_out,
                e.cost,
                e.message
            ])?;
        }
        WriteOp::TaskStarted(t) => crate::tasks::start(tx, session, &t.agent, t.run_id, &t.text, t.ts_ms)?,
        WriteOp::TaskEnded(e) => {
            crate::tasks::end(tx, &e.agent, e.ended_ms, e.outcome, (e.tokens_in, e.tokens_out, e.cost))?
        }
        WriteOp::NextRun { agent, next_ms } => {
            tx.prepare_cached("UPDATE agent_state SET next_run_ms = ?2 WHERE agent = ?1")?
                .execute(params![agent, next_ms])?;
        }
        WriteOp::SessionAlive { ts_ms, status } => {
            tx.prepare_cached(
                "UPDATE launcher_sessions SET last_seen_ms = ?2, status = coalesce(?3, status)
                 WHERE id = ?1",
            )?
            .execute(params![session, ts_ms, status])?;
        }
        WriteOp::SessionEnded { ts_ms, reason } => {
            tx.prepare_cached(
                "UPDATE launcher_sessions SET last_seen_ms = ?2, stopped_ms = ?2, exit_reason = ?3
                 WHERE id = ?1",
            )?
            .execute(params![session, ts_ms, reason])?;
            tx.prepare_cached("DELETE FROM agent_escapees WHERE session_id = ?1")?.execute([session])?;
            // Nothing evaluates the rules once the launcher is gone.
            tx.prepare_cached("DELETE FROM alerts")?.execute([])?;
        }
        WriteOp::Escapees { agent, processes } => {
            tx.prepare_cached("DELETE FROM agent_escapees WHERE session_id = ?1 AND agent = ?2")?
                .execute(params![session, agent])?;
            let mut insert = tx.prepare_cached(
                "INSERT OR REPLACE INTO agent_escapees (session_id, agent, pid, start_ticks)
                 VALUES (?1, ?2, ?3, ?4)",
            )?;
            for (pid, start_ticks) in processes {
                insert.execute(params![session, agent, pid, start_ticks])?;
            }
        }
        WriteOp::Probes { agent, rows } => crate::probes::replace(tx, agent, rows)?,
        WriteOp::Alerts(alerts) => {
            tx.prepare_cached("DELETE FROM alerts")?.execute([])?;
            let mut insert = tx.prepare_cached(
                "INSERT OR REPLACE INTO alerts (rule, agent, severity, since_ms, value, message, updated_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?;
            let now = now_ms();
            for a in alerts {
                let value = a.value.filter(|v| v.is_finite());
                insert.execute(params![
                    a.rule,
                    a.agent,
                    a.severity.as_str(),
                    a.since_ms,
                    value,
                    a.message,
                    now
                ])?;
            }
        }
    }
    Ok(())
}

fn json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "null".into())
}

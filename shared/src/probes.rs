//! Probe results as stored in the `probes` table (schema v7): what the launcher last saw of an
//! agent's readiness and liveness probes, for the dashboard and `status --json`.

use rusqlite::{Connection, Row};
use serde::Serialize;
use std::collections::HashMap;
use std::fmt;

/// Which probe: the readiness probe gates the agent's start, the liveness probe watches it
/// once ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProbeRole {
    Readiness,
    Liveness,
}

/// A probe's state after its thresholds: `unknown` until `success_threshold` successes or
/// `failure_threshold` failures in a row.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProbeState {
    #[default]
    Unknown,
    Passing,
    Failing,
}

impl ProbeRole {
    pub const ALL: [ProbeRole; 2] = [ProbeRole::Readiness, ProbeRole::Liveness];
    pub fn as_str(self) -> &'static str {
        match self {
            ProbeRole::Readiness => "readiness",
            ProbeRole::Liveness => "liveness",
        }
    }
    fn parse(s: &str) -> Option<ProbeRole> {
        ProbeRole::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

impl ProbeState {
    pub fn as_str(self) -> &'static str {
        match self {
            ProbeState::Unknown => "unknown",
            ProbeState::Passing => "passing",
            ProbeState::Failing => "failing",
        }
    }
    fn parse(s: &str) -> ProbeState {
        match s {
            "passing" => ProbeState::Passing,
            "failing" => ProbeState::Failing,
            _ => ProbeState::Unknown,
        }
    }
}

impl fmt::Display for ProbeRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for ProbeState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One row of `probes`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProbeStatus {
    pub agent: String,
    pub probe: ProbeRole,
    /// `exec`, `http` or `tcp`.
    pub kind: String,
    /// The command line, URL or `host:port`.
    pub target: String,
    pub state: ProbeState,
    /// The last check's result; `None` before the first.
    pub last_ok: Option<bool>,
    pub last_ms: Option<i64>,
    pub latency_ms: Option<f64>,
    pub consecutive_successes: i64,
    pub consecutive_failures: i64,
    pub message: Option<String>,
}

/// Every agent's probes, by agent, readiness first.
pub(crate) fn load(c: &Connection) -> rusqlite::Result<HashMap<String, Vec<ProbeStatus>>> {
    let mut stmt = c.prepare_cached(
        "SELECT agent, probe, kind, target, state, last_ok, last_ms, latency_ms,
                consecutive_successes, consecutive_failures, message
         FROM probes",
    )?;
    let mut out: HashMap<String, Vec<ProbeStatus>> = HashMap::new();
    let rows = stmt.query_map([], from_row)?;
    for row in rows {
        let Some(p) = row? else { continue };
        out.entry(p.agent.clone()).or_default().push(p);
    }
    for list in out.values_mut() {
        list.sort_by_key(|p| p.probe);
    }
    Ok(out)
}

/// A row; `None` for a probe name this build does not know (a newer launcher's).
fn from_row(r: &Row<'_>) -> rusqlite::Result<Option<ProbeStatus>> {
    let probe: String = r.get(1)?;
    let Some(probe) = ProbeRole::parse(&probe) else { return Ok(None) };
    let state: String = r.get(4)?;
    Ok(Some(ProbeStatus {
        agent: r.get(0)?,
        probe,
        kind: r.get(2)?,
        target: r.get(3)?,
        state: ProbeState::parse(&state),
        last_ok: r.get(5)?,
        last_ms: r.get(6)?,
        latency_ms: r.get(7)?,
        consecutive_successes: r.get(8)?,
        consecutive_failures: r.get(9)?,
        message: r.get(10)?,
    }))
}

/// Replaces an agent's rows with `rows` (none: the agent has no probes any more).
#[cfg(feature = "writer")]
pub(crate) fn replace(tx: &Connection, agent: &str, rows: &[ProbeStatus]) -> rusqlite::Result<()> {
    tx.prepare_cached("DELETE FROM probes WHERE agent = ?1")?.execute([agent])?;
    let mut insert = tx.prepare_cached(
        "INSERT OR REPLACE INTO probes (agent, probe, kind, target, state, last_ok, last_ms,
             latency_ms, consecutive_successes, consecutive_failures, message)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )?;
    for p in rows {
        insert.execute(rusqlite::params![
            agent,
            p.probe.as_str(),
            p.kind,
            p.target,
            p.state.as_str(),
            p.last_ok,
            p.last_ms,
            p.latency_ms,
            p.consecutive_successes,
            p.consecutive_failures,
            p.message,
        ])?;
    }
    Ok(())
}

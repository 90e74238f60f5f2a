//! Probe results as stored in the `probes` table (schema v7): what the launcher last saw of an
//! agent's readiness and liveness probes, for the dashboard and `status --json`.

use rusqlite::{Connection, Row};
use serde::Serialize;
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
pub(crate) fn load(c: &Connection) -> rusqlite::Result<foldhash::HashMap<String, Vec<ProbeStatus>>> {
    let mut stmt = c.prepare_cached(
        "SELECT agent, probe, kind, target, state, last_ok, last_ms, latency_ms,
                consecutive_successes, consecutive_failures, message
         FROM probes",
    )?;
    let mut out: foldhash::HashMap<String, Vec<ProbeStatus>> = foldhash::HashMap::default();
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

/// Replaces an agent's rows with `rows` (none: the agent has no probes any more). A result
/// updates its row in place on the table's key (`agent`, `probe`) rather than deleting and
/// inserting it; only a probe gone from the agent's config loses its row.
#[cfg(feature = "writer")]
pub(crate) fn replace(tx: &Connection, agent: &str, rows: &[ProbeStatus]) -> rusqlite::Result<()> {
    let mut upsert = tx.prepare_cached(
        "INSERT INTO probes (agent, probe, kind, target, state, last_ok, last_ms,
             latency_ms, consecutive_successes, consecutive_failures, message)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
         ON CONFLICT (agent, probe) DO UPDATE SET
             kind = excluded.kind, target = excluded.target, state = excluded.state,
             last_ok = excluded.last_ok, last_ms = excluded.last_ms,
             latency_ms = excluded.latency_ms,
             consecutive_successes = excluded.consecutive_successes,
             consecutive_failures = excluded.consecutive_failures, message = excluded.message",
    )?;
    for p in rows {
        upsert.execute(rusqlite::params![
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
    let mut gone = tx.prepare_cached("DELETE FROM probes WHERE agent = ?1 AND probe = ?2")?;
    for role in ProbeRole::ALL.into_iter().filter(|r| !rows.iter().any(|p| p.probe == *r)) {
        gone.execute([agent, role.as_str()])?;
    }
    Ok(())
}

#[cfg(test)]
#[cfg(feature = "writer")]
mod tests {
    use super::*;

    fn probe(probe: ProbeRole, consecutive_successes: i64) -> ProbeStatus {
        ProbeStatus {
            agent: "web".into(),
            probe,
            kind: "http".into(),
            target: "http://127.0.0.1:8080/healthz".into(),
            state: ProbeState::Passing,
            last_ok: Some(true),
            last_ms: Some(1_000 + consecutive_successes),
            latency_ms: Some(1.5),
            consecutive_successes,
            consecutive_failures: 0,
            message: None,
        }
    }

    /// A migrated database whose deletes from `probes` are counted in `temp.deleted`.
    fn database(dir: &tempfile::TempDir) -> Connection {
        let path = dir.path().join("s.db");
        let mut conn = Connection::open(&path).unwrap();
        crate::schema::migrate(&mut conn, &path).unwrap();
        conn.execute_batch(
            "CREATE TEMP TABLE deleted (probe TEXT);
             CREATE TEMP TRIGGER count_deletes AFTER DELETE ON main.probes
             BEGIN INSERT INTO deleted VALUES (old.probe); END;",
        )
        .unwrap();
        conn
    }

    fn stored(c: &Connection) -> Vec<ProbeStatus> {
        load(c).unwrap().remove("web").unwrap_or_default()
    }

    fn deletes(c: &Connection) -> Vec<String> {
        let mut stmt = c.prepare("SELECT probe FROM temp.deleted").unwrap();
        stmt.query_map([], |r| r.get(0)).unwrap().collect::<rusqlite::Result<_>>().unwrap()
    }

    #[test]
    fn results_update_rows_in_place_and_a_removed_probe_loses_its_row() {
        let dir = tempfile::tempdir().unwrap();
        let c = database(&dir);
        let first = [probe(ProbeRole::Readiness, 1), probe(ProbeRole::Liveness, 1)];
        replace(&c, "web", &first).unwrap();
        assert_eq!(stored(&c), first);
        let mut next = [probe(ProbeRole::Readiness, 2), probe(ProbeRole::Liveness, 5)];
        next[1].state = ProbeState::Failing;
        next[1].last_ok = Some(false);
        next[1].message = Some("connection refused".into());
        replace(&c, "web", &next).unwrap();
        assert_eq!(stored(&c), next);
        assert!(deletes(&c).is_empty(), "a result deleted a row: {:?}", deletes(&c));

        let readiness_only = [probe(ProbeRole::Readiness, 3)];
        replace(&c, "web", &readiness_only).unwrap();
        assert_eq!(stored(&c), readiness_only);
        assert_eq!(deletes(&c), ["liveness"]);
        replace(&c, "web", &[]).unwrap();
        assert!(stored(&c).is_empty());
        assert_eq!(deletes(&c), ["liveness", "readiness"]);
    }
}

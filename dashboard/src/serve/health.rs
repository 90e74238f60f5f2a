//! `/livez` and `/readyz`: the answer and its short reason, from one snapshot.

use crate::assess::{Liveness, counts_as_healthy};
use crate::format;
use agentvisor_shared::model::Snapshot;

/// Agents named in a `/readyz` reason; the rest are counted.
const NAMED: usize = 5;

/// An HTTP probe's verdict: `Ok` is 200, `Err` 503, each with a one-line reason.
pub type Probe = Result<String, String>;

/// The launcher runs and refreshed its session within the staleness limit.
pub fn livez(s: &Snapshot, now_ms: i64) -> Probe {
    match Liveness::of(s.launcher.as_ref(), now_ms) {
        Liveness::Never => Err("no launcher has run on this database".into()),
        Liveness::Running { session } => Ok(format!(
            "launcher pid {} on {} seen {} ago",
            session.pid,
            session.host,
            age(now_ms, session.last_seen_ms)
        )),
        Liveness::Stale { session } => Err(format!(
            "launcher pid {} stale: last seen {} ago",
            session.pid,
            age(now_ms, session.last_seen_ms)
        )),
        Liveness::Stopped { session } => Err(format!(
            "launcher stopped {} ago{}",
            age(now_ms, session.stopped_ms.unwrap_or(session.last_seen_ms)),
            session.exit_reason.as_deref().map(|r| format!(" ({r})")).unwrap_or_default()
        )),
    }
}

/// The launcher is live and every enabled agent is healthy (as the dashboard counts it).
pub fn readyz(s: &Snapshot, now_ms: i64) -> Probe {
    livez(s, now_ms)?;
    let enabled: Vec<_> = s.agents.iter().filter(|a| a.enabled).collect();
    let unhealthy: Vec<_> = enabled.iter().filter(|a| !counts_as_healthy(a)).collect();
    if unhealthy.is_empty() {
        return Ok(format!("{n}/{n} enabled agents healthy", n = enabled.len()));
    }
    let mut named: Vec<String> = unhealthy
        .iter()
        .take(NAMED)
        .map(|a| format!("{} ({}, {})", a.name, a.lifecycle.state, a.lifecycle.health))
        .collect();
    if unhealthy.len() > NAMED {
        named.push(format!("and {} more", unhealthy.len() - NAMED));
    }
    Err(format!("{} of {} enabled agents not healthy: {}", unhealthy.len(), enabled.len(), named.join(", ")))
}

fn age(now_ms: i64, then_ms: i64) -> String {
    format::duration_ms((now_ms - then_ms).max(0))
}

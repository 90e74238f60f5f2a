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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assess::tests::{agent, session, snapshot};
    use agentvisor_shared::model::{AgentState, Health};

    #[test]
    fn livez_says_why_the_launcher_is_not_live() {
        let now = 10_000;
        assert!(livez(&snapshot(Some(session(now - 500, None)), vec![]), now).is_ok());
        let stale = livez(&snapshot(Some(session(now - 40_000, None)), vec![]), now).unwrap_err();
        assert!(stale.contains("stale: last seen 40.0s ago"), "{stale}");
        let stopped =
            livez(&snapshot(Some(session(now - 40_000, Some(now - 30_000))), vec![]), now).unwrap_err();
        assert!(stopped.starts_with("launcher stopped 30.0s ago (signal)"), "{stopped}");
        assert_eq!(livez(&snapshot(None, vec![]), now).unwrap_err(), "no launcher has run on this database");
    }

    #[test]
    fn readyz_names_the_unhealthy_enabled_agents_and_counts_the_rest() {
        let now = 10_000;
        let live = || Some(session(now, None));
        let healthy = agent("a", AgentState::Running, Health::Healthy);
        let mut disabled = agent("off", AgentState::Stopped, Health::Unknown);
        disabled.enabled = false;
        let ok = readyz(&snapshot(live(), vec![healthy.clone(), disabled]), now);
        assert_eq!(ok.unwrap(), "1/1 enabled agents healthy");

        let mut agents = vec![healthy];
        agents.extend((0..7).map(|i| agent(&format!("bad{i}"), AgentState::Backoff, Health::Unhealthy)));
        let reason = readyz(&snapshot(live(), agents.clone()), now).unwrap_err();
        assert!(
            reason.starts_with("7 of 8 enabled agents not healthy: bad0 (backoff, unhealthy), "),
            "{reason}"
        );
        assert!(reason.ends_with("bad4 (backoff, unhealthy), and 2 more"), "{reason}");

        // With the launcher gone, the agents' rows are stale: not ready whatever they say.
        let down = readyz(&snapshot(None, agents), now).unwrap_err();
        assert_eq!(down, "no launcher has run on this database");
    }
}

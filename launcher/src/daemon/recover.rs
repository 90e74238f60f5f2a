//! Crash recovery at start: sessions left unfinished by a launcher that was killed. Their
//! agents' main processes died with the launcher (parent-death signal), but children in their
//! process groups may still run; those are killed, after checking that the group is still the
//! one the dead launcher started and not a new one that reused the number. Processes that had
//! left their agent's process group were recorded by the dead launcher's sampler: those still
//! running with the recorded start time are killed, with their descendants.

use crate::process::inspect::{self, ProcInfo};
use agentvisor_shared::Store;
use agentvisor_shared::time::rfc3339;
use agentvisor_shared::writer::{StaleAgent, StaleProcess};
use nix::sys::signal::Signal;

pub fn recover(store: &mut Store) -> agentvisor_shared::Result<()> {
    // A crashed launcher's cgroups still hold everything its agents started.
    let mut in_cgroups = crate::process::contain::kill_cgroups(std::time::Duration::from_secs(5));
    let stale = store.unfinished_sessions()?;
    if stale.is_empty() {
        if !in_cgroups.is_empty() {
            tracing::warn!("killed processes left in the agents' cgroups: {in_cgroups:?}");
        }
        return Ok(());
    }
    let procs = inspect::all();
    for s in stale {
        let mut killed: std::collections::BTreeMap<&str, usize> = Default::default();
        let in_cgroups = std::mem::take(&mut in_cgroups);
        for (agent, n) in &in_cgroups {
            *killed.entry(agent).or_default() += n;
        }
        for a in &s.agents {
            *killed.entry(&a.agent).or_default() += stop_leftovers(a, &procs);
        }
        for e in &s.escapees {
            *killed.entry(&e.agent).or_default() += stop_escapee(e, &procs);
        }
        let stopped: Vec<String> = killed
            .into_iter()
            .filter(|(_, n)| *n > 0)
            .map(|(agent, n)| format!("{agent} ({n} process{})", if n == 1 { "" } else { "es" }))
            .collect();
        let leftovers = if stopped.is_empty() {
            "no agent process was left".to_owned()
        } else {
            format!("killed leftovers of {}", stopped.join(", "))
        };
        let msg = format!(
            "launcher session {} (PID {}) ended without stopping; last seen {}; {leftovers}",
            s.session.id,
            s.session.pid,
            rfc3339(s.session.last_seen_ms)
        );
        tracing::warn!("{msg}");
        store.close_crashed_session(s.session.id, &msg)?;
    }
    Ok(())
}

/// Kills a recorded escapee and its descendants, if it still runs; returns how many.
fn stop_escapee(e: &StaleProcess, procs: &[ProcInfo]) -> usize {
    let (Ok(pid), Ok(started)) = (i32::try_from(e.pid), u64::try_from(e.start_ticks)) else { return 0 };
    if !procs.iter().any(|p| p.pid == pid && p.start_ticks == started) {
        return 0;
    }
    let mut victims = inspect::descendants(pid, procs);
    victims.push(pid);
    for &v in &victims {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(v), Signal::SIGKILL);
    }
    victims.len()
}

/// Kills what is left of an agent's process group; returns how many processes it had.
fn stop_leftovers(a: &StaleAgent, procs: &[ProcInfo]) -> usize {
    let Ok(pgid) = i32::try_from(a.pgid.unwrap_or(a.pid)) else { return 0 };
    let started = a.pid_start_ticks.and_then(|t| u64::try_from(t).ok());
    let same_group = match procs.iter().find(|p| p.pid == pgid) {
        // The leader is alive: it must be the very process that was started.
        Some(leader) => started == Some(leader.start_ticks) && leader.pgrp == pgid,
        // A process group keeps its leader's PID reserved while any member lives, so members
        // of a leaderless group are the original agent's children.
        None => true,
    };
    let members: Vec<&ProcInfo> =
        procs.iter().filter(|p| p.pgrp == pgid && started.is_none_or(|s| p.start_ticks >= s)).collect();
    if !same_group || members.is_empty() {
        return 0;
    }
    crate::process::signal_group(pgid, Signal::SIGKILL);
    members.len()
}

//! The synthetic fleet every store benchmark writes: agents with ten metrics each, sampled once
//! a second, with values shaped like real ones (integral byte counts and counters, fractional
//! percentages and latencies), because SQLite stores an integral REAL in fewer bytes and the
//! disk figures would flatter otherwise.

use agentvisor_shared::model::{
    AgentSpec, AgentState, AgentStatus, DesiredState, Health, Lifecycle, Reported, RunOutcome, RunTrigger,
};
use agentvisor_shared::writer::{NewSession, WriterThread};
use agentvisor_shared::{FlushError, NewRun, RunEnd, Sample, Store, WriteOp, WriterConfig, WriterHandle};
use anyhow::{Context, Result};
use std::path::Path;

pub const METRICS: [&str; 10] = [
    "cpu_percent",
    "memory_bytes",
    "threads",
    "heartbeat_gap_s",
    "tokens_in",
    "tokens_out",
    "cost",
    "queue_depth",
    "latency_ms",
    "errors",
];

pub fn agent_name(i: usize) -> String {
    format!("agent-{i:04}")
}

/// A cheap, repeatable pseudo-random number in [0, 1).
fn noise(a: u64, b: u64) -> f64 {
    let mut x = a.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ b.wrapping_mul(0xC2B2_AE3D_27D4_EB4F);
    x ^= x >> 31;
    x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x ^= x >> 29;
    (x >> 11) as f64 / (1u64 << 53) as f64
}

/// The value of metric `m` of agent `agent` at second `tick`.
pub fn value(agent: usize, m: usize, tick: u64) -> f64 {
    let n = noise((agent * METRICS.len() + m) as u64, tick);
    match m {
        0 => (n * 40.0 * 100.0).round() / 100.0,
        1 => (50_000_000.0 + n * 4_000_000.0).round(),
        2 => 4.0 + (n * 3.0).floor(),
        3 => 1.0 + n * 0.01,
        4 => (tick * 37) as f64,
        5 => (tick * 11) as f64,
        6 => tick as f64 * 0.000_37,
        7 => (n * 5.0).floor(),
        8 => 20.0 + n * 200.0,
        _ => (tick / 600) as f64,
    }
}

/// One second's samples of the first `agents` agents.
pub fn tick_samples(agents: usize, ts_ms: i64, tick: u64) -> Vec<Sample> {
    let mut out = Vec::with_capacity(agents * METRICS.len());
    for a in 0..agents {
        let scope = agent_name(a);
        for (m, name) in METRICS.iter().enumerate() {
            out.push(Sample {
                scope: scope.clone(),
                metric: (*name).to_owned(),
                ts_ms,
                value: value(a, m, tick),
            });
        }
    }
    out
}

/// Registers `agents` agents and marks them running, as a launcher would at start.
pub fn register_agents(h: &WriterHandle, agents: usize, now_ms: i64) -> Result<()> {
    for a in 0..agents {
        let name = agent_name(a);
        let spec = AgentSpec {
            name: name.clone(),
            description: format!("benchmark agent {a}"),
            kind: "process".into(),
            command: vec!["/bin/sh".into(), "-c".into(), "sleep infinity".into()],
            capabilities: vec!["bench".into()],
            config: serde_json::json!({ "restart": "always" }),
            enabled: true,
            desired_state: DesiredState::Running,
            heartbeat_timeout_ms: Some(15_000),
            position: a as i64,
        };
        h.send(WriteOp::RegisterAgent(Box::new(spec))).context("queueing an agent's registration")?;
        h.send(WriteOp::Status(Box::new(running_status(&name, a, now_ms))))
            .context("queueing an agent's state")?;
    }
    flushed(h)
}

/// Each agent's run history as a launcher that restarted every agent once leaves it: a run
/// that failed (its process exited 1 after an hour) and the run of the process now running.
pub fn record_runs(h: &WriterHandle, agents: usize, now_ms: i64) -> Result<()> {
    for a in 0..agents {
        let name = agent_name(a);
        let started = now_ms - 7_200_000;
        let ended = now_ms - 3_600_000;
        let run = |ts_ms: i64, pid: i64| NewRun {
            id: h.new_run_id(),
            agent: name.clone(),
            trigger: RunTrigger::Start,
            attempt: 0,
            user: None,
            subject: None,
            detail: None,
            due_ms: None,
            ts_ms,
            pid: Some(pid),
        };
        let first = run(started, 20_000 + a as i64);
        let id = first.id;
        h.send(WriteOp::RunStarted(Box::new(first))).context("queueing a run")?;
        h.send(WriteOp::RunEnded(Box::new(RunEnd {
            id,
            ended_ms: ended,
            outcome: RunOutcome::Failed,
            exit_code: Some(1),
            exit_signal: None,
            tokens_in: Some(1_000),
            tokens_out: Some(200),
            cost: Some(0.01),
            message: None,
        })))
        .context("queueing a run's end")?;
        h.send(WriteOp::RunStarted(Box::new(run(ended + 1_000, 10_000 + a as i64))))
            .context("queueing a run")?;
    }
    flushed(h)
}

/// The state row of a healthy running agent that has just heartbeated.
pub fn running_status(name: &str, a: usize, now_ms: i64) -> AgentStatus {
    AgentStatus {
        agent: name.to_owned(),
        lifecycle: Lifecycle {
            state: AgentState::Running,
            health: Health::Healthy,
            ready: true,
            pid: Some(10_000 + a as i64),
            started_ms: Some(now_ms - 60_000),
            ..Lifecycle::default()
        },
        reported: Reported {
            last_heartbeat_ms: Some(now_ms),
            heartbeats: 60,
            status_text: Some("working".into()),
            task: Some(format!("task {a}")),
            model: Some("model-x".into()),
            tokens_in: Some(1000),
            tokens_out: Some(300),
            cost: Some(0.12),
            ..Reported::default()
        },
    }
}

/// Opens the store and starts its writer as a launcher does, with a session (retention and
/// housekeeping only run for one).
pub fn start_store(db: &Path, cfg: WriterConfig) -> Result<(WriterHandle, WriterThread)> {
    let mut store = Store::open(db, cfg).context("opening the store")?;
    store
        .begin_session(&NewSession {
            pid: i64::from(std::process::id()),
            host: "bench".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            config_path: None,
        })
        .context("starting a session")?;
    store.start().context("starting the writer")
}

/// Deletes a database and its companion files.
pub fn remove_db(db: &Path) {
    for suffix in ["", "-wal", "-shm", ".lock"] {
        let mut f = db.as_os_str().to_owned();
        f.push(suffix);
        let _ = std::fs::remove_file(f);
    }
}

/// Waits for the writer to commit everything queued so far, and fails if it could not.
pub fn flushed(h: &WriterHandle) -> Result<()> {
    match h.flush() {
        Ok(()) => Ok(()),
        Err(e @ FlushError::Storage(_)) => anyhow::bail!("the store's writer failed: {e}"),
        Err(e @ FlushError::WriterGone) => Err(e).context("the store's writer is gone"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_repeatable_and_some_fractional() {
        assert_eq!(value(3, 0, 7), value(3, 0, 7));
        let s = tick_samples(2, 1000, 5);
        assert_eq!(s.len(), 20);
        assert!(s.iter().any(|x| x.value.fract() != 0.0));
        assert!(s.iter().all(|x| x.value.is_finite()));
    }
}

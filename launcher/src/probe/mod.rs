//! Readiness and liveness probes: one task per running probe, off the supervision path. Each
//! check is bounded by the probe's `timeout` (an exec probe's process group is killed when it
//! runs over); results go to the agent's supervisor as [`Report`]s, and its state machine
//! applies the thresholds. A probe never blocks its supervisor or another agent: a supervisor
//! that is busy only makes its probe's next check wait.

mod chain;
mod exec;
mod http;
mod tcp;

use crate::config::AgentConfig;
use crate::config::probe::{ProbeConfig, Target};
pub use agentvisor_shared::probes::{ProbeRole as Role, ProbeState};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};

/// One probe, ready to run.
#[derive(Debug)]
pub struct Spec {
    pub role: Role,
    pub target: Target,
    expect: Option<String>,
    initial_delay: Duration,
    period: Duration,
    timeout: Duration,
    /// For exec probes: the agent's working directory and environment.
    working_dir: PathBuf,
    env: BTreeMap<String, String>,
}

impl Spec {
    /// The agent's `role` probe, if it has one. Config validation checked its target.
    pub fn of(cfg: &AgentConfig, role: Role, working_dir: PathBuf) -> Option<Spec> {
        let p: &ProbeConfig = match role {
            Role::Readiness => cfg.readiness.as_ref()?,
            Role::Liveness => cfg.liveness.as_ref()?,
        };
        let target = p.target().ok()?;
        Some(Spec {
            role,
            target,
            expect: p.expect.clone(),
            initial_delay: p.initial_delay.get(),
            period: p.period.get(),
            timeout: p.timeout.get(),
            working_dir,
            env: cfg.env.clone(),
        })
    }
}

/// One check's result.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub ok: bool,
    pub latency: Duration,
    /// What was seen ("HTTP 200", "exit code 1", "connection refused").
    pub message: String,
}

/// What the probe side tells a supervisor; `run` is the main PID of the run it is about, so
/// a report that was on its way when the run ended is not taken for the next run's.
#[derive(Debug)]
pub enum Report {
    Checked {
        run: i32,
        role: Role,
        outcome: Outcome,
    },
    /// A line of the run's output matched `ready_log_line`.
    ReadyLine {
        run: i32,
    },
}

/// A running probe; dropping it stops the probe (and kills an exec probe's process).
pub struct Running(JoinHandle<()>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Starts checking `spec` for the run `run`, every `period` after `initial_delay`.
pub fn start(spec: Arc<Spec>, run: i32, tx: mpsc::Sender<Report>) -> Running {
    Running(tokio::spawn(async move {
        tokio::time::sleep(spec.initial_delay).await;
        let mut tick = tokio::time::interval(spec.period);
        // A check that took long (or a launcher that did not run) delays the next one rather
        // than bunching the missed ones together.
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let outcome = check(&spec).await;
            if tx.send(Report::Checked { run, role: spec.role, outcome }).await.is_err() {
                return;
            }
        }
    }))
}

/// One check, within the probe's timeout.
pub async fn check(spec: &Spec) -> Outcome {
    let started = Instant::now();
    let result = tokio::time::timeout(spec.timeout, async {
        match &spec.target {
            Target::Exec(argv) => exec::check(argv, &spec.working_dir, &spec.env).await,
            Target::Http { url, .. } => http::check(url, spec.expect.as_deref()).await,
            Target::Tcp { host, port } => tcp::check(host, *port).await,
        }
    })
    .await;
    let latency = started.elapsed();
    match result {
        Ok(Ok(message)) => Outcome { ok: true, latency, message },
        Ok(Err(message)) => Outcome { ok: false, latency, message },
        Err(_) => Outcome {
            ok: false,
            latency,
            message: format!("no answer within {}", humantime::format_duration(spec.timeout)),
        },
    }
}

#[cfg(test)]
mod tests;

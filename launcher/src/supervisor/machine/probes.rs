//! The machine's part for probes and `ready_log_line`: each probe result is an input; the
//! thresholds, readiness and what a failing liveness probe does are decided here.
//!
//! | state              | input                                  | next, effects                             |
//! |--------------------|----------------------------------------|-------------------------------------------|
//! | Running [starting] | readiness passes (`success_threshold`) | Running [running]: ready; liveness starts |
//! |                    | readiness fails (`failure_threshold`)  | `probe_failed` (still waiting)            |
//! |                    | output line matches `ready_log_line`   | Running [running]: ready; liveness starts |
//! | Running [running]  | liveness passes                        | healthy, `probe_passed`                   |
//! |                    | liveness fails (`failure_threshold`)   | unhealthy, `probe_failed`; as for a missed|
//! |                    |                                        | heartbeat: Stopping (failed) or marked    |
//!
//! A readiness probe runs from the spawn until the agent is ready; a liveness probe from ready
//! until the run ends (like the heartbeat deadline, it does not judge a start).

use super::{Effect, Input, Next, Run, Timer, Why, after, begin_stop, event, human};
use crate::config::{AgentConfig, OnHeartbeatTimeout, Ready};
use crate::probe::{ProbeState, Role};
use agentvisor_shared::model::{AgentState, EventKind, Severity};
use std::time::Instant;

/// A probe's consecutive results and its state after the thresholds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub state: ProbeState,
    pub successes: u32,
    pub failures: u32,
}

fn configured(cfg: &AgentConfig, role: Role) -> Option<&crate::config::probe::ProbeConfig> {
    match role {
        Role::Readiness => cfg.readiness.as_ref(),
        Role::Liveness => cfg.liveness.as_ref(),
    }
}

/// At the spawn: the readiness probe while not ready, else the liveness probe.
pub(super) fn on_start(cfg: &AgentConfig, ready: bool, out: &mut Vec<Effect>) {
    if ready {
        on_ready(cfg, out);
    } else if cfg.readiness.is_some() {
        out.push(Effect::Probe { role: Role::Readiness, on: true });
    }
}

/// Once ready (however): the readiness probe has done its work, the liveness probe begins.
pub(super) fn on_ready(cfg: &AgentConfig, out: &mut Vec<Effect>) {
    if cfg.readiness.is_some() {
        out.push(Effect::Probe { role: Role::Readiness, on: false });
    }
    if cfg.liveness.is_some() {
        out.push(Effect::Probe { role: Role::Liveness, on: true });
    }
}

/// What the agent is waiting for while starting, for the `ready_timeout` message.
pub(super) fn awaited(cfg: &AgentConfig) -> &'static str {
    if cfg.ready == Ready::Notify {
        "no READY=1"
    } else if cfg.readiness.is_some() {
        "the readiness probe did not pass"
    } else {
        "no output line matched ready_log_line"
    }
}

pub(super) fn running(
    cfg: &AgentConfig,
    run: &mut Run,
    input: Input,
    now: Instant,
    out: &mut Vec<Effect>,
) -> Next {
    match input {
        Input::ReadyLine if !run.ready && cfg.ready_log_line.is_some() => {
            become_ready(cfg, run, now, "an output line matched ready_log_line", out);
            Next::Stay
        }
        Input::Probe { role, ok, detail } => {
            let Some(p) = configured(cfg, role) else { return Next::Stay };
            // A readiness result that was on its way when the agent became ready.
            if role == Role::Readiness && run.ready {
                return Next::Stay;
            }
            let t = &mut run.probes[role as usize];
            let before = t.state;
            if ok {
                t.successes = t.successes.saturating_add(1);
                t.failures = 0;
                if t.successes >= p.success_threshold {
                    t.state = ProbeState::Passing;
                }
            } else {
                t.failures = t.failures.saturating_add(1);
                t.successes = 0;
                if t.failures >= p.failure_threshold {
                    t.state = ProbeState::Failing;
                }
            }
            let t = *t;
            out.push(Effect::ProbeTally(role, t));
            if t.state == before {
                return Next::Stay;
            }
            changed(cfg, run, role, t, before, &detail, now, out)
        }
        _ => Next::Stay,
    }
}

/// A probe's state changed to `t.state`.
#[allow(clippy::too_many_arguments)]
fn changed(
    cfg: &AgentConfig,
    run: &mut Run,
    role: Role,
    t: Tally,
    before: ProbeState,
    detail: &str,
    now: Instant,
    out: &mut Vec<Effect>,
) -> Next {
    match (role, t.state) {
        (Role::Readiness, ProbeState::Passing) => {
            let how = format!("readiness probe passed: {detail}");
            become_ready(cfg, run, now, &how, out);
            Next::Stay
        }
        (Role::Readiness, _) => {
            let msg = format!("readiness probe failing ({} in a row): {detail}; not ready yet", t.failures);
            out.push(event(EventKind::ProbeFailed, Severity::Warning, msg));
            Next::Stay
        }
        (Role::Liveness, ProbeState::Passing) => {
            out.push(Effect::MarkHealthy);
            let again = if before == ProbeState::Failing { " again" } else { "" };
            out.push(event(
                EventKind::ProbePassed,
                Severity::Info,
                format!("liveness probe passes{again}: {detail}"),
            ));
            Next::Stay
        }
        (Role::Liveness, _) => {
            out.push(Effect::MarkUnhealthy);
            let then = match cfg.on_heartbeat_timeout {
                OnHeartbeatTimeout::Restart => "restarting it",
                OnHeartbeatTimeout::Mark => "marked unhealthy",
            };
            let msg = format!("liveness probe failed {} times in a row: {detail}; {then}", t.failures);
            out.push(event(EventKind::ProbeFailed, Severity::Warning, msg));
            match cfg.on_heartbeat_timeout {
                OnHeartbeatTimeout::Restart => {
                    Next::To(begin_stop(cfg, run, Why::Failed("liveness probe failed"), now, out))
                }
                OnHeartbeatTimeout::Mark => Next::Stay,
            }
        }
    }
}

/// Ready by a probe or an output line, as by `READY=1`.
fn become_ready(cfg: &AgentConfig, run: &mut Run, now: Instant, how: &str, out: &mut Vec<Effect>) {
    run.ready = true;
    out.push(Effect::Disarm(Timer::Ready));
    out.push(Effect::Ready);
    out.push(Effect::SetState(AgentState::Running));
    let msg = format!("ready after {} ({how})", human(now.saturating_duration_since(run.started)));
    out.push(event(EventKind::Ready, Severity::Info, msg));
    if let Some(t) = cfg.heartbeat_timeout
        && run.hb_deadline.is_none()
    {
        let due = after(now, t.get());
        run.hb_deadline = Some(due);
        out.push(Effect::Arm(Timer::Heartbeat, due));
    }
    on_ready(cfg, out);
}

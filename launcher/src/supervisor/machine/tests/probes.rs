//! The machine's probe inputs, with the machine's test helpers.

use super::*;
use crate::probe::{ProbeState, Role};
use crate::supervisor::tally::Tally;

fn probe(t: &mut T, role: Role, ok: bool) -> Vec<Effect> {
    t.step(Input::Probe { role, ok, detail: if ok { "HTTP 200".into() } else { "HTTP 503".into() } })
}

#[test]
fn readiness_gates_ready_and_hands_over_to_liveness() {
    let cfg = "readiness = { http = \"http://127.0.0.1:1/\", success_threshold = 2 }\n\
               liveness = { tcp = \"127.0.0.1:1\" }";
    let mut t = T::new(cfg);
    t.step(Input::Start { waiting_for: vec![] });
    let fx = t.step(Input::Spawned { pid: PID });
    assert_eq!(states(&fx), [AgentState::Starting]);
    assert!(fx.contains(&Effect::Probe { role: Role::Readiness, on: true }));
    assert!(!fx.contains(&Effect::Probe { role: Role::Liveness, on: true }), "liveness waits for ready");
    let fx = probe(t.later(500), Role::Readiness, true);
    assert!(states(&fx).is_empty(), "one success of two");
    let fx = probe(t.later(500), Role::Readiness, true);
    assert_eq!(states(&fx), [AgentState::Running]);
    assert_eq!(events(&fx), [("ready", "ready after 1s (readiness probe passed: HTTP 200)")]);
    assert!(fx.contains(&Effect::Ready) && fx.contains(&Effect::Disarm(Timer::Ready)));
    assert!(fx.contains(&Effect::Probe { role: Role::Readiness, on: false }));
    assert!(fx.contains(&Effect::Probe { role: Role::Liveness, on: true }));
    // A late readiness result changes nothing.
    assert!(probe(&mut t, Role::Readiness, false).is_empty());
}

#[test]
fn a_failure_resets_the_successes() {
    let mut t = T::spawned("readiness = { tcp = \"h:1\", success_threshold = 2, failure_threshold = 2 }");
    probe(&mut t, Role::Readiness, true);
    let fx = probe(&mut t, Role::Readiness, false);
    assert_eq!(
        fx,
        [Effect::ProbeTally(
            Role::Readiness,
            Tally { state: ProbeState::Unknown, successes: 0, failures: 1 }
        )]
    );
    let fx = probe(&mut t, Role::Readiness, false);
    assert_eq!(
        events(&fx),
        [("probe_failed", "readiness probe failing (2 in a row): HTTP 503; not ready yet")]
    );
    assert!(states(&fx).is_empty());
    // Failing again is no new event.
    assert!(kinds(&probe(&mut t, Role::Readiness, false)).is_empty());
    probe(&mut t, Role::Readiness, true);
    assert_eq!(kinds(&probe(&mut t, Role::Readiness, true)), ["ready"]);
}

#[test]
fn a_readiness_probe_that_never_passes_is_a_ready_timeout() {
    let mut t = T::spawned("readiness = { tcp = \"h:1\" }\nready_timeout = \"1s\"");
    t.later(1000).step(Input::Timer(Timer::Ready));
    let fx = t.step(Input::CaughtUp(Timer::Ready));
    assert_eq!(events(&fx)[0], ("ready_timeout", "not ready within 1s (the readiness probe did not pass)"));
    assert!(fx.contains(&Effect::StopProbes));
}

#[test]
fn a_failing_liveness_probe_restarts_like_a_missed_heartbeat() {
    let mut t = T::spawned("liveness = { tcp = \"h:1\", failure_threshold = 3 }");
    let fx = probe(&mut t, Role::Liveness, true);
    assert_eq!(events(&fx), [("probe_passed", "liveness probe passes: HTTP 200")]);
    assert!(fx.contains(&Effect::MarkHealthy));
    probe(&mut t, Role::Liveness, false);
    probe(&mut t, Role::Liveness, false);
    assert!(t.m.is_running());
    let fx = probe(&mut t, Role::Liveness, false);
    assert!(fx.contains(&Effect::MarkUnhealthy));
    assert_eq!(
        events(&fx),
        [
            ("probe_failed", "liveness probe failed 3 times in a row: HTTP 503; restarting it"),
            ("stopping", "stopping: liveness probe failed")
        ]
    );
    assert!(fx.contains(&Effect::StopProbes));
    assert!(t.is_stopping());
}

#[test]
fn with_mark_a_failing_liveness_probe_marks_and_recovers() {
    let mut t =
        T::spawned("liveness = { tcp = \"h:1\", failure_threshold = 1 }\non_heartbeat_timeout = \"mark\"");
    let fx = probe(&mut t, Role::Liveness, false);
    assert_eq!(
        events(&fx),
        [("probe_failed", "liveness probe failed 1 times in a row: HTTP 503; marked unhealthy")]
    );
    assert!(t.m.is_running());
    let fx = probe(&mut t, Role::Liveness, true);
    assert_eq!(events(&fx), [("probe_passed", "liveness probe passes again: HTTP 200")]);
    assert!(fx.contains(&Effect::MarkHealthy));
}

#[test]
fn liveness_starts_at_the_spawn_when_ready_at_once_and_at_ready_for_notify() {
    let mut t = T::new("liveness = { tcp = \"h:1\" }");
    t.step(Input::Start { waiting_for: vec![] });
    assert!(t.step(Input::Spawned { pid: PID }).contains(&Effect::Probe { role: Role::Liveness, on: true }));

    let mut t = T::spawned("ready = \"notify\"\nliveness = { tcp = \"h:1\" }");
    let fx = t.step(Input::Alive { ready: true });
    assert!(fx.contains(&Effect::Probe { role: Role::Liveness, on: true }));
}

#[test]
fn a_matching_output_line_makes_ready_once() {
    let mut t = T::spawned("ready_log_line = \"listening on\"\nheartbeat_timeout = \"5s\"");
    let fx = t.later(250).step(Input::ReadyLine);
    assert_eq!(events(&fx), [("ready", "ready after 250ms (an output line matched ready_log_line)")]);
    assert!(fx.contains(&Effect::Arm(Timer::Heartbeat, t.now + std::time::Duration::from_secs(5))));
    assert!(t.step(Input::ReadyLine).is_empty());
}

#[test]
fn probe_results_after_the_run_ended_change_nothing() {
    let mut t = T::spawned("liveness = { tcp = \"h:1\", failure_threshold = 1 }");
    let fx = t.step(Input::Exited(None));
    assert!(fx.contains(&Effect::StopProbes));
    assert!(probe(&mut t, Role::Liveness, false).is_empty());
}

//! Restart policy: backoff delays that grow and reset after a stable run, crash loops that
//! turn fatal, heartbeat timeouts that restart or mark.

use crate::common::*;

#[test]
fn backoff_grows_and_resets_after_a_stable_run() {
    let sb = Sandbox::new();
    // Crashes at once, except on its 4th run, which lasts longer than reset_after.
    sb.script(
        "agent.sh",
        r#"
n=$(( $(cat count 2>/dev/null || echo 0) + 1 ))
echo $n > count
date +%s%N >> starts
[ "$n" -eq 4 ] && sleep 0.5
exit 1
"#,
    );
    sb.write_config(
        r#"
[[agent]]
name = "crashy"
command = "./agent.sh"
backoff = { initial = "50ms", multiplier = 2.0, max = "1s", reset_after = "300ms" }
max_restarts = 50
"#,
    );
    let _l = sb.launcher();
    let db = sb.db();
    let delays = wait_until(LIMIT, "six backoffs", || {
        Some(event_messages(&db, "crashy", "backoff")).filter(|m| m.len() >= 6)
    });
    let delays: Vec<&str> = delays.iter().map(|m| m.rsplit(' ').next().unwrap()).collect();
    assert_eq!(delays[..6], ["50ms", "100ms", "200ms", "50ms", "100ms", "200ms"]);
    // The delays are really waited: each start follows the previous one by at least its delay.
    let starts: Vec<u64> = sb.read("starts").lines().map(|l| l.parse().unwrap()).collect();
    let gaps: Vec<u64> = starts.windows(2).map(|w| (w[1] - w[0]) / 1_000_000).collect();
    for (gap, min) in gaps.iter().zip([50, 100, 200, 550, 100]) {
        assert!(*gap >= min, "gaps {gaps:?}");
    }
    let crashed = event_messages(&db, "crashy", "crashed");
    assert!(crashed[0].starts_with("exited with code 1"), "{crashed:?}");
    let severity = query_opt::<String>(&db, "SELECT severity FROM events WHERE kind = 'crashed' LIMIT 1");
    assert_eq!(severity.as_deref(), Some("error"));
    assert!(agent_field::<i64>(&db, "crashy", "restarts").unwrap() >= 5);
    assert_eq!(agent_field::<i64>(&db, "crashy", "exit_code"), Some(1));
}

#[test]
fn a_crash_loop_turns_fatal_and_stops_restarting() {
    let sb = Sandbox::new();
    sb.script("agent.sh", "echo run >> runs\nkill -SEGV $$");
    sb.write_config(
        r#"
[[agent]]
name = "loop"
command = "./agent.sh"
restart = "always"
backoff = { initial = "10ms", max = "20ms" }
max_restarts = 3
restart_window = "1m"
"#,
    );
    let _l = sb.launcher();
    let db = sb.db();
    wait_state(&db, "loop", "fatal");
    let critical = rows(
        &db,
        "SELECT message FROM events WHERE agent = 'loop' AND kind = 'crash_loop' AND severity = 'critical'",
    );
    assert_eq!(critical.len(), 1, "{critical:?}");
    assert!(critical[0][0].contains("3 restarts within 1m"), "{critical:?}");
    assert_eq!(agent_field::<i64>(&db, "loop", "restarts"), Some(3));
    assert_eq!(agent_field::<i64>(&db, "loop", "exit_signal"), Some(11));
    assert!(event_messages(&db, "loop", "crashed")[0].contains("killed by SIGSEGV"));
    // No restart after fatal: wait until the launcher has refreshed its session twice more.
    let seen = query_opt::<i64>(&db, "SELECT last_seen_ms FROM launcher_sessions").unwrap();
    wait_until(LIMIT, "two liveness ticks", || {
        query_opt::<i64>(&db, "SELECT last_seen_ms FROM launcher_sessions").filter(|t| *t >= seen + 1500)
    });
    assert_eq!(sb.read("runs").lines().count(), 4);
    let summary = query_opt::<String>(&db, "SELECT status FROM launcher_sessions").unwrap();
    assert_eq!(summary, "0/1 agents running, 1 fatal");
}

#[test]
fn heartbeat_timeout_restarts_or_marks() {
    let sb = Sandbox::new();
    // Three heartbeats, a silence longer than the timeout, then heartbeats again.
    sb.script(
        "agent.sh",
        r#"
echo start >> "runs-$AGENTVISOR_AGENT"
for i in 1 2 3; do echo WATCHDOG=1 >&3; sleep 0.05; done
sleep 0.8
while :; do echo WATCHDOG=1 >&3; sleep 0.05; done
"#,
    );
    sb.write_config(
        r#"
[[agent]]
name = "restarted"
command = "./agent.sh"
heartbeat_timeout = "400ms"
backoff = { initial = "10ms" }

[[agent]]
name = "marked"
command = "./agent.sh"
heartbeat_timeout = "400ms"
on_heartbeat_timeout = "mark"
"#,
    );
    let _l = sb.launcher();
    let db = sb.db();
    wait_until(LIMIT, "a restart after a missed heartbeat", || {
        agent_field::<i64>(&db, "restarted", "restarts").filter(|n| *n >= 1)
    });
    let kinds = event_kinds(&db, "restarted");
    let missed = kinds.iter().position(|k| k == "heartbeat_missed").unwrap();
    assert_eq!(kinds[missed + 1..missed + 3], ["stopping", "backoff"], "{kinds:?}");
    let sev = query_opt::<String>(&db, "SELECT severity FROM events WHERE kind = 'heartbeat_missed' LIMIT 1");
    assert_eq!(sev.as_deref(), Some("warning"));

    // The marked agent keeps its process, turns unhealthy, then healthy when heartbeats resume.
    let pid = agent_field::<i64>(&db, "marked", "pid").unwrap();
    wait_until(LIMIT, "heartbeats resumed", || {
        Some(event_kinds(&db, "marked")).filter(|k| k.contains(&"heartbeat_resumed".to_owned()))
    });
    let kinds = event_kinds(&db, "marked");
    assert!(
        kinds.contains(&"heartbeat_missed".to_owned()) && !kinds.contains(&"stopping".to_owned()),
        "{kinds:?}"
    );
    wait_until(LIMIT, "healthy again", || {
        agent_field::<String>(&db, "marked", "health").filter(|h| h == "healthy")
    });
    assert_eq!(agent_field::<i64>(&db, "marked", "pid"), Some(pid));
    assert_eq!(sb.read("runs-marked").lines().count(), 1);
}

#[test]
fn failing_to_start_or_to_get_ready_counts_as_a_crash() {
    let sb = Sandbox::new();
    sb.script("silent.sh", "exec sleep 30");
    // An executable the config check accepts, whose interpreter is missing: exec fails.
    sb.executable("no-interpreter", "#!/does-not-exist\n");
    sb.write_config(
        r#"
[[agent]]
name = "missing"
command = "./no-interpreter"
backoff = { initial = "10ms" }
max_restarts = 1

[[agent]]
name = "silent"
command = "./silent.sh"
ready = "notify"
ready_timeout = "200ms"
backoff = { initial = "10ms" }
max_restarts = 1
"#,
    );
    let _l = sb.launcher();
    let db = sb.db();
    for agent in ["missing", "silent"] {
        wait_state(&db, agent, "fatal");
    }
    assert_eq!(event_kinds(&db, "missing"), ["spawn_failed", "backoff", "spawn_failed", "crash_loop"]);
    let failed = &event_messages(&db, "missing", "spawn_failed")[0];
    assert!(failed.contains("no-interpreter") && failed.contains("No such file"), "{failed}");
    assert_eq!(
        event_kinds(&db, "silent"),
        [
            "started",
            "ready_timeout",
            "stopping",
            "backoff",
            "started",
            "ready_timeout",
            "stopping",
            "crash_loop"
        ]
    );
    let sev = query_opt::<String>(&db, "SELECT severity FROM events WHERE kind = 'ready_timeout' LIMIT 1");
    assert_eq!(sev.as_deref(), Some("error"));
}

#[test]
fn restart_policies_and_an_agent_that_says_nothing() {
    let sb = Sandbox::new();
    sb.script("once.sh", "echo run >> \"runs-$AGENTVISOR_AGENT\"\nexit 0");
    sb.script("silent.sh", "exec sleep 1000");
    sb.write_config(
        r#"
[[agent]]
name = "never"
command = "./once.sh"
restart = "never"

[[agent]]
name = "on-failure"
command = "./once.sh"

[[agent]]
name = "always"
command = "./once.sh"
restart = "always"
backoff = { initial = "10ms" }
max_restarts = 2

[[agent]]
name = "silent"
command = "./silent.sh"
"#,
    );
    let _l = sb.launcher();
    let db = sb.db();
    for agent in ["never", "on-failure"] {
        wait_state(&db, agent, "exited");
        assert_eq!(event_kinds(&db, agent), ["started", "exited"]);
        assert_eq!(agent_field::<i64>(&db, agent, "exit_code"), Some(0));
    }
    // A clean exit is info, not a crash; `always` restarts it anyway (and counts it).
    let sev = query_opt::<String>(&db, "SELECT DISTINCT severity FROM events WHERE kind = 'exited'");
    assert_eq!(sev.as_deref(), Some("info"));
    wait_state(&db, "always", "fatal");
    assert_eq!(sb.read("runs-always").lines().count(), 3);
    assert_eq!(sb.read("runs-never").lines().count(), 1);
    // Supervised on its process alone: running and ready, but health unknown and no
    // heartbeat, which is how a reader tells "process alive" from "agent heartbeating".
    let silent = &rows(
        &db,
        "SELECT state, ready, health, heartbeats, last_heartbeat_ms FROM agent_state WHERE agent = 'silent'",
    )[0];
    assert_eq!(silent, &["running", "1", "unknown", "0", ""]);
}

//! Scheduled agents and run records with real processes and the real clock: runs on time,
//! overlap skip/queue/replace, timeouts, catch-up and lost runs across launcher restarts,
//! manual runs, pause and resume, retries, and a bad schedule at reload.

use crate::common::*;
use std::path::Path;

/// One row per run of `agent`, oldest first: trigger, outcome, due, start, end, attempt,
/// user, exit code, exit signal, message.
fn runs(db: &Path, agent: &str) -> Vec<Vec<String>> {
    rows(
        db,
        &format!(
            "SELECT trigger, outcome, due_ms, ts_ms, ended_ms, attempt, user, exit_code, exit_signal,
                    message
             FROM runs WHERE agent = '{agent}' ORDER BY id"
        ),
    )
}

/// Waits until `agent` has at least `n` runs matching `keep`, and returns those.
fn wait_runs(
    db: &Path,
    agent: &str,
    n: usize,
    what: &str,
    keep: impl Fn(&[String]) -> bool,
) -> Vec<Vec<String>> {
    wait_until(LIMIT, &format!("{agent}: {n} runs {what}"), || {
        let found: Vec<Vec<String>> = runs(db, agent).into_iter().filter(|r| keep(r)).collect();
        (found.len() >= n).then_some(found)
    })
}

fn num(s: &str) -> i64 {
    s.parse().unwrap_or_else(|_| panic!("not a number: {s:?}"))
}

#[test]
fn scheduled_runs_come_on_time_and_every_start_is_a_run() {
    let sb = Sandbox::new();
    sb.write_config(
        r#"
[[agent]]
name = "tick"
command = "sh"
args = ["-c", "echo tick $$; printf 'X_TOKENS_IN=7\\nX_COST=0.5\\n' >&\"$AGENTVISOR_NOTIFY_FD\"; sleep 0.2"]
schedule = { every = "1s" }

[[agent]]
name = "daemon"
command = "sleep"
args = ["1000"]
"#,
    );
    let mut l = sb.launcher();
    let db = sb.db();
    let done = wait_runs(&db, "tick", 3, "succeeded", |r| r[1] == "succeeded");
    let dues: Vec<i64> = done.iter().map(|r| num(&r[2])).collect();
    for (pair, run) in dues.windows(2).zip(&done) {
        assert_eq!(pair[1] - pair[0], 1_000, "due times a second apart: {done:?}");
        assert!(run[0] == "schedule" && num(&run[3]) >= num(&run[2]), "started when due: {run:?}");
    }
    // Between runs: its own state, healthy, with the next due time on its row.
    wait_state(&db, "tick", "scheduled");
    let next = agent_field::<i64>(&db, "tick", "next_run_ms").expect("next_run_ms");
    assert!(next > *dues.last().unwrap(), "{next} {dues:?}");
    // Each run's output is its own, found through its range of line ids.
    let output = rows(
        &db,
        "SELECT r.id, l.line FROM runs r JOIN log_lines l
           ON l.agent = r.agent AND l.id BETWEEN r.log_first_id AND r.log_last_id
         WHERE r.agent = 'tick' AND r.outcome = 'succeeded' ORDER BY l.id",
    );
    let ids: std::collections::HashSet<&str> = output.iter().map(|r| r[0].as_str()).collect();
    assert!(ids.len() >= 3 && output.len() == ids.len(), "one line per run: {output:?}");
    assert!(output.iter().all(|r| r[1].starts_with("tick ")), "{output:?}");
    // What it reported during each run is the run's.
    let reported =
        rows(&db, "SELECT tokens_in, cost FROM runs WHERE agent = 'tick' AND outcome = 'succeeded'");
    assert!(reported.len() >= 3 && reported.iter().all(|r| r[0] == "7" && r[1] == "0.5"), "{reported:?}");
    // A daemon's life is a run too, open while it runs and stopped with the launcher.
    let daemon = wait_runs(&db, "daemon", 1, "started", |r| r[0] == "start");
    assert_eq!((daemon[0][1].as_str(), daemon[0][5].as_str()), ("", "0"), "{daemon:?}");
    l.run.signal(nix::sys::signal::Signal::SIGTERM);
    l.run.wait_exit(LIMIT);
    let daemon = runs(&db, "daemon");
    assert_eq!(daemon.len(), 1);
    assert!(daemon[0][1] == "stopped" && !daemon[0][4].is_empty(), "{daemon:?}");
    assert_eq!(query_opt::<i64>(&db, "SELECT count(*) FROM runs WHERE outcome IS NULL"), Some(0));
}

#[test]
fn overlapping_runs_are_skipped_queued_or_replaced() {
    let sb = Sandbox::new();
    let agent = |name: &str, overlap: &str, secs: &str| {
        format!(
            "[[agent]]\nname = \"{name}\"\ncommand = \"sleep\"\nargs = [\"{secs}\"]\nrestart = \"never\"\n\
             schedule = {{ every = \"300ms\", overlap = \"{overlap}\" }}\n\n"
        )
    };
    sb.write_config(
        &[agent("skip", "skip", "0.7"), agent("queue", "queue", "0.7"), agent("replace", "replace", "60")]
            .concat(),
    );
    let _l = sb.launcher();
    let db = sb.db();

    let skipped = wait_runs(&db, "skip", 2, "skipped", |r| r[1] == "skipped");
    assert!(skipped[0][9].contains("still ran"), "{skipped:?}");
    wait_runs(&db, "skip", 2, "succeeded", |r| r[1] == "succeeded");
    assert!(event_kinds(&db, "skip").contains(&"run_skipped".to_owned()));

    // Queued runs start only when the previous one has ended, never side by side.
    let queued = wait_runs(&db, "queue", 3, "succeeded", |r| r[1] == "succeeded");
    for pair in queued.windows(2) {
        assert!(num(&pair[1][3]) >= num(&pair[0][4]), "overlapping runs: {pair:?}");
    }

    // Each due time stops the running one (its outcome `stopped`) and starts its own.
    let replaced = wait_runs(&db, "replace", 2, "stopped", |r| r[1] == "stopped");
    assert!(replaced.iter().all(|r| r[8] == "15"), "stopped by SIGTERM: {replaced:?}");
    let all = runs(&db, "replace");
    assert!(all.iter().filter(|r| r[1].is_empty()).count() <= 1, "one run at a time: {all:?}");
}

#[test]
fn a_run_past_its_timeout_is_stopped_as_timed_out() {
    let sb = Sandbox::new();
    sb.write_config(
        r#"
[[agent]]
name = "slow"
command = "sleep"
args = ["60"]
restart = "never"
schedule = { every = "1s", timeout = "300ms" }
"#,
    );
    let _l = sb.launcher();
    let db = sb.db();
    let out = wait_runs(&db, "slow", 1, "timed out", |r| r[1] == "timed_out");
    let r = &out[0];
    assert_eq!(r[8], "15", "the stop signal: {r:?}");
    assert!(num(&r[4]) - num(&r[3]) >= 300, "ran its timeout first: {r:?}");
    assert!(r[9].contains("timeout of 300ms"), "{r:?}");
    assert!(event_kinds(&db, "slow").contains(&"run_timeout".to_owned()));
    wait_until(LIMIT, "unhealthy after a timed-out run", || {
        agent_field::<String>(&db, "slow", "health").filter(|h| h == "unhealthy")
    });
}

#[test]
fn missed_runs_are_caught_up_and_open_runs_are_lost_across_restarts() {
    let sb = Sandbox::new();
    sb.write_config(
        r#"
[[agent]]
name = "persistent"
command = "true"
schedule = { every = "1s", catch_up = true }

[[agent]]
name = "forgetful"
command = "true"
schedule = { every = "1s" }

[[agent]]
name = "long"
command = "sleep"
args = ["1000"]
schedule = { every = "1h", run_on_start = true }
"#,
    );
    let mut first = sb.launcher_as("first");
    let db = sb.db();
    wait_runs(&db, "persistent", 1, "succeeded", |r| r[1] == "succeeded");
    wait_runs(&db, "forgetful", 1, "succeeded", |r| r[1] == "succeeded");
    wait_runs(&db, "long", 1, "running", |r| r[1].is_empty());
    // Killed: no clean stop, the long run stays open.
    first.run.signal(nix::sys::signal::Signal::SIGKILL);
    first.run.wait_exit(LIMIT);
    let last_due = query_opt::<i64>(&db, "SELECT max(due_ms) FROM runs WHERE agent = 'persistent'").unwrap();
    // Down across at least one more due time.
    wait_until(LIMIT, "a due time to pass", || {
        (agentvisor_shared::time::now_ms() > last_due + 1_500).then_some(())
    });
    let restarted_at = agentvisor_shared::time::now_ms();
    let _second = sb.launcher_as("second");
    let caught = wait_runs(&db, "persistent", 1, "caught up", |r| r[0] == "catch_up");
    let due = num(&caught[0][2]);
    assert!(due > last_due && due <= restarted_at, "{due} after {last_due}, before {restarted_at}");
    assert_eq!(caught.len(), 1, "one catch-up run for all it missed");
    wait_runs(&db, "forgetful", 2, "succeeded", |r| r[1] == "succeeded");
    assert!(!runs(&db, "forgetful").iter().any(|r| r[0] == "catch_up"));
    let lost = wait_runs(&db, "long", 1, "lost", |r| r[1] == "lost");
    assert!(!lost[0][4].is_empty() && lost[0][9].contains("launcher ended"), "{lost:?}");
}

#[test]
fn manual_runs_and_a_paused_schedule() {
    let sb = Sandbox::new();
    sb.write_config(
        r#"
[[agent]]
name = "job"
command = "echo"
args = ["done"]
schedule = { every = "1h" }

[[agent]]
name = "daemon"
command = "sleep"
args = ["1000"]
"#,
    );
    let _l = sb.launcher();
    let db = sb.db();
    wait_state(&db, "job", "scheduled");
    let user = nix::unistd::User::from_uid(nix::unistd::geteuid()).unwrap().unwrap().name;

    let out = ctl(&sb, &["run", "job"]);
    assert!(out.status.success(), "{out:?}");
    let manual =
        wait_runs(&db, "job", 1, "manual and succeeded", |r| r[0] == "manual" && r[1] == "succeeded");
    assert_eq!(manual[0][6], user);
    assert!(event_kinds(&db, "job").contains(&"ctl_run".to_owned()));

    let out = ctl(&sb, &["stop", "job"]);
    assert!(out.status.success(), "{out:?}");
    wait_state(&db, "job", "stopped");
    assert_eq!(agent_field::<i64>(&db, "job", "next_run_ms"), None);
    assert!(event_kinds(&db, "job").contains(&"schedule_paused".to_owned()));
    // A paused schedule still runs on demand, and stays paused.
    assert!(ctl(&sb, &["run", "job"]).status.success());
    wait_runs(&db, "job", 2, "manual and succeeded", |r| r[0] == "manual" && r[1] == "succeeded");
    wait_state(&db, "job", "stopped");

    assert!(ctl(&sb, &["start", "job"]).status.success());
    wait_until(LIMIT, "job scheduled again", || {
        agent_field::<i64>(&db, "job", "next_run_ms")
            .filter(|_| agent_field::<String>(&db, "job", "state").as_deref() == Some("scheduled"))
    });
    assert!(event_kinds(&db, "job").contains(&"schedule_resumed".to_owned()));

    let out = ctl(&sb, &["run", "daemon"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("has no schedule"), "{out:?}");
}

#[test]
fn a_failed_run_is_retried_by_the_restart_policy() {
    let sb = Sandbox::new();
    // Fails twice, then succeeds: the attempts count in a file.
    sb.script("flaky.sh", "n=$(cat count 2>/dev/null || echo 0)\necho $((n + 1)) > count\n[ \"$n\" -ge 2 ]");
    sb.write_config(
        r#"
[[agent]]
name = "flaky"
command = "./flaky.sh"
restart = "on-failure"
backoff = { initial = "10ms", max = "10ms" }
schedule = { every = "1h", run_on_start = true }
"#,
    );
    let _l = sb.launcher();
    let db = sb.db();
    wait_runs(&db, "flaky", 1, "succeeded", |r| r[1] == "succeeded");
    let all = runs(&db, "flaky");
    let summary: Vec<(&str, &str)> = all.iter().map(|r| (r[1].as_str(), r[5].as_str())).collect();
    assert_eq!(summary, [("failed", "0"), ("failed", "1"), ("succeeded", "2")]);
    assert!(all.iter().all(|r| r[2] == all[0][2] && r[0] == "schedule"), "the same run: {all:?}");
    assert_eq!(all[0][7], "1");
}

#[test]
fn a_bad_schedule_at_reload_keeps_the_old_one() {
    let sb = Sandbox::new();
    let config = |cron: &str| {
        format!("[[agent]]\nname = \"tick\"\ncommand = \"true\"\nschedule = {{ cron = \"{cron}\" }}\n")
    };
    sb.write_config(&config("* * * * * *"));
    let _l = sb.launcher();
    let db = sb.db();
    wait_runs(&db, "tick", 1, "succeeded", |r| r[1] == "succeeded");
    sb.write_config(&config("*/0 * * *"));
    let out = ctl(&sb, &["reload"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(err.contains("agents.toml:4:21: agent \"tick\", field `schedule.cron`: invalid cron"), "{err}");
    // The old schedule goes on.
    let before = runs(&db, "tick").len();
    wait_runs(&db, "tick", before + 2, "after the bad reload", |_| true);
}

//! The dashboard's one-shot commands against real database files: `status` (table, `--json`,
//! exit codes 0/1/2/3), `logs` and `events`, including `-f`.

use crate::common::{LIMIT, Running, Sandbox, dashboard_bin, wait_until};
use crate::dashboard_fixture::{FakeLauncher, healthy_fleet, status};
use agentvisor_shared::model::{AgentState, EventKind, Health, Severity};
use serde_json::Value;
use std::path::Path;
use std::process::Output;

fn run(sb: &Sandbox, args: &[&str]) -> Output {
    sb.command(dashboard_bin()).args(args).output().unwrap()
}

pub fn status_json(sb: &Sandbox, db: &Path) -> (i32, Value) {
    let out = run(sb, &["status", "--json", "--db", db.to_str().unwrap()]);
    let v: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)));
    (out.status.code().unwrap(), v)
}

#[test]
fn status_exit_codes_and_json_keys() {
    let bin = dashboard_bin();
    let sb = Sandbox::new();
    let db = sb.db();

    // 3: no database, and nothing created by asking.
    let out = run(&sb, &["status"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("shared_state.db"), "{out:?}");
    let (code, v) = status_json(&sb, &db);
    assert_eq!((code, v["verdict"].as_str()), (3, Some("no_database")));
    assert!(!db.exists(), "status created the database");

    // 0: launcher running, every agent healthy.
    let launcher = FakeLauncher::start(&db);
    healthy_fleet(&launcher);
    let (code, v) = status_json(&sb, &db);
    assert_eq!(code, 0, "{v:#}");
    let l = &v["launcher"];
    for key in ["running", "pid", "host", "version", "started_at", "last_seen_age_s"] {
        assert!(l.get(key).is_some(), "launcher.{key} missing: {v:#}");
    }
    assert_eq!(l["running"], true);
    assert_eq!(l["host"], "testbox");
    assert!(l["last_seen_age_s"].as_f64().unwrap() < 3.0);
    let agents = v["agents"].as_array().unwrap();
    assert_eq!(agents.len(), 2);
    let r = &agents[0];
    for key in [
        "name",
        "state",
        "health",
        "pid",
        "restarts",
        "uptime_s",
        "last_heartbeat_age_s",
        "cpu_percent",
        "memory_bytes",
        "status",
        "task",
        "model",
        "tokens_in",
        "tokens_out",
        "cost",
        "last_error",
        "metrics",
    ] {
        assert!(r.get(key).is_some(), "agents[0].{key} missing: {r:#}");
    }
    assert_eq!(
        (r["name"].as_str(), r["state"].as_str(), r["health"].as_str()),
        (Some("researcher"), Some("running"), Some("healthy"))
    );
    assert_eq!(r["metrics"]["queue_depth"], 3.0);
    assert_eq!(r["tokens_in"], 1200);
    assert_eq!(r["cpu_percent"], 2.5);
    assert_eq!(agents[1]["process_only"], true);
    assert_eq!(v["summary"]["healthy"], 2);

    // The table form, with the database named through the environment and after the subcommand.
    let out = sb.command(bin).arg("status").env("SHARED_STATE_SQLITE", &db).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("researcher") && text.contains("launcher: running"), "{text}");

    // 1: an agent crash-looping (backoff), then fatal.
    let mut looping = status("flaky", AgentState::Backoff, Health::Unknown);
    looping.lifecycle.restarts = 4;
    looping.lifecycle.last_error = Some("exit code 1".into());
    launcher.agent("flaky", 2, looping, None);
    launcher.flush();
    let (code, v) = status_json(&sb, &db);
    assert_eq!(code, 1);
    assert_eq!(v["verdict"], "agent_trouble");
    launcher.send(agentvisor_shared::WriteOp::Status(Box::new(status(
        "flaky",
        AgentState::Fatal,
        Health::Unknown,
    ))));
    launcher.flush();
    assert_eq!(status_json(&sb, &db).0, 1);

    // 2: the launcher stopped; the last known (fatal) state does not hide that.
    launcher.stop();
    let (code, v) = status_json(&sb, &db);
    assert_eq!(code, 2);
    assert_eq!(v["launcher"]["running"], false);
    assert!(v["launcher"]["down_since"].is_string());
}

#[test]
fn status_reports_a_vanished_launcher_and_a_newer_schema() {
    let sb = Sandbox::new();
    let db = sb.db();
    let launcher = FakeLauncher::start(&db);
    healthy_fleet(&launcher);
    launcher.vanish(10_000);
    let (code, v) = status_json(&sb, &db);
    assert_eq!(code, 2, "{v:#}");
    assert_eq!(v["launcher"]["stale"], true);
    assert!(v["launcher"]["last_seen_age_s"].as_f64().unwrap() >= 9.0);

    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.pragma_update(None, "user_version", 99).unwrap();
    drop(conn);
    let out = run(&sb, &["--db", db.to_str().unwrap(), "status"]);
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("schema version 99") && err.contains("newer"), "{err}");
}

#[test]
fn logs_and_events_print_and_follow() {
    let sb = Sandbox::new();
    let db = sb.db();
    let launcher = FakeLauncher::start(&db);
    healthy_fleet(&launcher);
    let dbs = db.to_str().unwrap();

    let out = run(&sb, &["logs", "worker", "-n", "2", "--db", dbs]);
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(lines[0].ends_with("stdout line two") && lines[1].ends_with("stdout line three"), "{text}");

    let out = run(&sb, &["logs", "nobody", "--db", dbs]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no agent named"));

    let out = run(&sb, &["events", "--db", dbs]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("worker started: started worker"), "{text}");
    let first_started = text.find("started worker").unwrap();
    let first_missed = text.find("heartbeat_missed").unwrap();
    assert!(first_started < first_missed, "oldest first: {text}");
    let out = run(&sb, &["events", "--severity", "warning", "--db", dbs]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("heartbeat_missed") && !text.contains("started worker"), "{text}");
    let out = run(&sb, &["events", "--agent", "worker", "--db", dbs]);
    assert!(!String::from_utf8_lossy(&out.stdout).contains("researcher"));
    let out = run(&sb, &["events", "--kind", "heartbeat_missed", "--db", dbs]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("heartbeat_missed") && !text.contains("started worker"), "{text}");
    // An unknown kind is a usage error naming the valid ones, not an empty answer.
    let out = run(&sb, &["events", "--kind", "heartbeat_mised", "--db", dbs]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("heartbeat_missed") && err.contains("crash_loop"), "{err}");

    // -f prints what is committed after it started.
    let mut cmd = sb.command(dashboard_bin());
    cmd.args(["events", "-f", "--severity", "error", "--db", dbs]);
    let _follower = Running::spawn(cmd, sb.path(), "events-f");
    let mut cmd = sb.command(dashboard_bin());
    cmd.args(["logs", "worker", "-f", "-n", "0", "--db", dbs]);
    let _log_follower = Running::spawn(cmd, sb.path(), "logs-f");
    // Rows are committed until both followers print them, so it does not matter how long the
    // followers take to start.
    let read =
        |label: &str| std::fs::read_to_string(sb.path().join(format!("{label}.stdout"))).unwrap_or_default();
    wait_until(LIMIT, "followed lines", || {
        launcher.event(Some("worker"), EventKind::Crashed, Severity::Error, "exited with code 7");
        launcher.logs("worker", &["fresh output"]);
        launcher.flush();
        (read("events-f").contains("exited with code 7") && read("logs-f").contains("fresh output"))
            .then_some(())
    });
    assert!(!read("events-f").contains("started worker"), "-f with a severity filter printed an info event");
    assert!(!read("logs-f").contains("line one"), "-n 0 -f printed old lines");
}

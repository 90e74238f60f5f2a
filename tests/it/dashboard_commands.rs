//! The dashboard's one-shot commands against real database files: `status` (table, `--json`,
//! exit codes 0/1/2/3), `logs` and `events`, including `-f`.

use crate::common::{LIMIT, Running, Sandbox, dashboard_bin, wait_until};
use crate::dashboard_fixture::{FakeLauncher, healthy_fleet, healthy_sandbox, now_ms, status};
use agentvisor_shared::model::{AgentState, EventKind, Health, RunTrigger, Severity};
use agentvisor_shared::{NewRun, WriteOp};
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
    let (sb, db, launcher) = healthy_sandbox();
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
    let (sb, db, launcher) = healthy_sandbox();
    let dbs = db.to_str().unwrap();

    let out = run(&sb, &["logs", "worker", "-n", "2", "--db", dbs]);
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(lines[0].ends_with("stdout line two") && lines[1].ends_with("stdout line three"), "{text}");

    let out = run(&sb, &["logs", "nobody", "--db", dbs]);
    assert_eq!(out.status.code(), Some(64));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no agent named \"nobody\"") && err.contains("worker"), "{err}");

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
    assert_eq!(out.status.code(), Some(64), "{out:?}");
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

/// The documented shape of `status --json`, read from the tables of docs/status-json.md: for
/// each object (`""` for the top level, `agents[]` for every agent), its keys and their types.
fn documented_shape() -> Vec<(String, Vec<(String, String)>)> {
    let doc =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/status-json.md")).unwrap();
    let mut shape: Vec<(String, Vec<(String, String)>)> = Vec::new();
    let mut in_table = false;
    for line in doc.lines() {
        if let Some(title) = line.strip_prefix("## ") {
            shape.push((
                if title == "Top level" { String::new() } else { title.trim_matches('`').to_owned() },
                vec![],
            ));
            in_table = false;
        } else if line.starts_with("| key | type |") {
            in_table = true;
        } else if in_table && line.starts_with("| `") {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let keys = cells[1].split(", ").map(|k| k.trim_matches('`').to_owned());
            let fields = &mut shape.last_mut().unwrap().1;
            fields.extend(keys.map(|k| (k, cells[2].to_owned())));
        }
    }
    shape.retain(|(_, fields)| !fields.is_empty());
    shape
}

/// Whether `v` is of the documented `ty` ("integer or null", "array of strings", ...).
fn of_type(v: &Value, ty: &str) -> bool {
    let (ty, nullable) = match ty.strip_suffix(" or null") {
        Some(t) => (t, true),
        None => (ty, false),
    };
    match v {
        Value::Null => nullable,
        Value::Bool(_) => ty == "bool",
        // An integer written as `1.0` is a float to every JSON reader that tells them apart.
        Value::Number(n) => ty == "number" || (ty == "integer" && (n.is_i64() || n.is_u64())),
        Value::String(_) => ty == "string",
        Value::Array(items) => {
            ty == "array" || (ty == "array of strings" && items.iter().all(Value::is_string))
        }
        Value::Object(_) => ty == "object",
    }
}

#[test]
fn runs_and_tasks_refuse_an_unknown_agent_as_logs_does() {
    let (sb, db, launcher) = healthy_sandbox();
    let dbs = db.to_str().unwrap();
    let logs = run(&sb, &["logs", "nobody", "--db", dbs]);
    for verb in ["runs", "tasks"] {
        let out = run(&sb, &[verb, "nobody", "--db", dbs]);
        assert_eq!(out.status.code(), Some(64), "{verb}: {out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("no agent named \"nobody\"") && err.contains("worker"), "{verb}: {err}");
        assert_eq!(out.stderr, logs.stderr, "{verb}");
        assert!(out.stdout.is_empty(), "{verb}: {out:?}");
        // A known agent with nothing recorded is no error.
        let out = run(&sb, &[verb, "worker", "--db", dbs]);
        assert!(out.status.success(), "{verb}: {out:?}");
    }
    // A hook is no agent, but its runs are recorded under its name, failed or not.
    let id = launcher.handle().new_run_id();
    launcher.send(WriteOp::RunStarted(Box::new(NewRun {
        id,
        agent: "chat".into(),
        trigger: RunTrigger::Hook,
        attempt: 0,
        user: None,
        subject: Some("worker".into()),
        detail: Some("crashed".into()),
        due_ms: None,
        ts_ms: now_ms(),
        pid: Some(999_999),
    })));
    launcher.flush();
    for args in [&["runs", "chat"][..], &["runs", "chat", "--failed"]] {
        let out = run(&sb, &[args, &["--db", dbs]].concat());
        assert!(out.status.success(), "{args:?}: {out:?}");
    }
    let out = run(&sb, &["runs", "chat", "--json", "--db", dbs]);
    let printed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(printed[0]["trigger"], "hook", "{printed}");
}

/// Every key of every documented table is present with its documented type, and there are no
/// others, in the output of a real launcher's database: host and process samples taken, and an
/// agent restarted after a failure.
#[test]
fn status_json_has_the_documented_shape() {
    let sb = Sandbox::new();
    sb.script("flaky.sh", "if [ -e ran ]; then exec sleep 600; fi\ntouch ran\nexit 3");
    sb.write_config(
        r#"
[launcher]
sample_interval = "100ms"

[[agent]]
name = "flaky"
command = "./flaky.sh"
restart = "on-failure"
backoff = { initial = "10ms", max = "20ms" }
liveness = { exec = ["true"], period = "100ms" }
"#,
    );
    let _l = sb.launcher();
    let db = sb.db();
    let v = wait_until(LIMIT, "samples and a restarted agent", || {
        let (_, v) = status_json(&sb, &db);
        let a = &v["agents"][0];
        let sampled = ["memory_used_bytes", "memory_total_bytes", "load1", "disk_free_bytes"]
            .iter()
            .all(|k| !v["host"][k].is_null())
            && !v["launcher"]["memory_bytes"].is_null()
            && !a["memory_bytes"].is_null();
        let probed = a["probes"][0]["last_ok"] == true;
        (sampled && probed && a["state"] == "running" && a["restarts"] == 1).then_some(v)
    });
    let shape = documented_shape();
    let names: Vec<&str> = shape.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "",
            "database",
            "launcher",
            "host",
            "summary",
            "agents[]",
            "agents[].probes[]",
            "alerts[]",
            "spend",
            "spend.*"
        ]
    );
    for (object, fields) in &shape {
        let values: Vec<&Value> = match object.as_str() {
            "" => vec![&v],
            "agents[]" => v["agents"].as_array().unwrap().iter().collect(),
            "agents[].probes[]" => {
                v["agents"].as_array().unwrap().iter().flat_map(|a| a["probes"].as_array().unwrap()).collect()
            }
            "alerts[]" => v["alerts"].as_array().unwrap().iter().collect(),
            "spend.*" => vec![&v["spend"]["today"], &v["spend"]["last_hour"]],
            name => vec![&v[name]],
        };
        for value in values {
            let map = value.as_object().unwrap_or_else(|| panic!("{object} is not an object: {v:#}"));
            for (key, ty) in fields {
                let got = map.get(key).unwrap_or_else(|| panic!("{object}.{key} missing: {v:#}"));
                assert!(of_type(got, ty), "{object}.{key} = {got} is not {ty}");
            }
            let extra: Vec<&String> = map.keys().filter(|k| !fields.iter().any(|(f, _)| f == *k)).collect();
            assert!(extra.is_empty(), "{object} has undocumented keys {extra:?}");
        }
    }
    // Load averages carry the two decimals of /proc/loadavg, not an f32's binary noise.
    for k in ["load1", "load5", "load15"] {
        let load = v["host"][k].as_f64().unwrap();
        assert_eq!(load, (load * 100.0).round() / 100.0, "host.{k} = {load}");
    }
    // The documented "last exit code" survives the restart that followed it.
    assert_eq!(v["agents"][0]["exit_code"], 3, "{v:#}");
}

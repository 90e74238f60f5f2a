//! Readiness and liveness probes and `ready_log_line` against real servers: a Python
//! `http.server` agent, a TCP listener, exec probes that hang.

use crate::common::*;
use std::net::TcpListener;
use std::path::Path;

/// A row of `probes`: (state, last_ok, consecutive_failures, message).
fn probe_row(db: &Path, agent: &str, probe: &str) -> Option<Vec<String>> {
    rows(
        db,
        &format!(
            "SELECT state, last_ok, consecutive_failures, message, kind, target FROM probes
             WHERE agent = '{agent}' AND probe = '{probe}'"
        ),
    )
    .into_iter()
    .next()
}

/// An HTTP server that listens only after a second and answers `/healthz` with "ok" while no
/// file `fail` exists in its directory, then with 500.
const SERVER: &str = r#"
import http.server, os, sys, time
time.sleep(1.0)
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        failing = os.path.exists("fail")
        body = b"broken" if failing else b"ok"
        self.send_response(500 if failing else 200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
print("serving", flush=True)
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
"#;

#[test]
fn an_http_server_goes_ready_late_and_is_restarted_when_its_liveness_probe_fails() {
    let sb = Sandbox::new();
    std::fs::write(sb.path().join("server.py"), SERVER).unwrap();
    let port = free_port();
    sb.write_config(&format!(
        r#"
[[agent]]
name = "web"
command = "python3"
args = ["server.py", "{port}"]
readiness = {{ http = "http://127.0.0.1:{port}/healthz", period = "200ms" }}
liveness = {{ http = "http://127.0.0.1:{port}/healthz", period = "200ms", failure_threshold = 2, expect = "ok" }}
restart = "always"
backoff = {{ initial = "100ms" }}
"#
    ));
    let _l = sb.launcher();
    let db = sb.db();
    wait_state(&db, "web", "starting");
    let ready = wait_until(LIMIT, "web ready", || event_messages(&db, "web", "ready").into_iter().next());
    assert!(ready.contains("(readiness probe passed: HTTP 200)"), "{ready}");
    // It listens after a second: not ready before that.
    let ready_ms: i64 =
        query_opt(&db, "SELECT ts_ms FROM events WHERE agent = 'web' AND kind = 'ready'").unwrap();
    let started_ms: i64 = agent_field(&db, "web", "started_ms").unwrap();
    assert!(ready_ms - started_ms >= 900, "ready {}ms after the start", ready_ms - started_ms);
    assert_eq!(agent_field::<String>(&db, "web", "state").as_deref(), Some("running"));
    wait_until(LIMIT, "liveness passing", || {
        let row = probe_row(&db, "web", "liveness")?;
        (row[0] == "passing" && row[1] == "1" && row[3] == "HTTP 200").then_some(())
    });
    assert_eq!(agent_field::<String>(&db, "web", "health").as_deref(), Some("healthy"));
    let first_pid: i64 = agent_field(&db, "web", "pid").unwrap();

    std::fs::write(sb.path().join("fail"), "").unwrap();
    let failed = wait_until(LIMIT, "liveness failed", || {
        // (The readiness probe failed too, while the server was not listening yet.)
        event_messages(&db, "web", "probe_failed").into_iter().find(|m| m.starts_with("liveness"))
    });
    assert_eq!(failed, "liveness probe failed 2 times in a row: HTTP 500; restarting it");
    let stopping = wait_until(LIMIT, "a stop", || event_messages(&db, "web", "stopping").into_iter().next());
    assert_eq!(stopping, "stopping: liveness probe failed");
    wait_until(LIMIT, "a restart", || (agent_field::<i64>(&db, "web", "restarts")? >= 1).then_some(()));

    // Healthy again, the new run becomes ready and stays.
    std::fs::remove_file(sb.path().join("fail")).unwrap();
    wait_until(LIMIT, "a new ready run", || {
        let pid: i64 = agent_field(&db, "web", "pid")?;
        (pid != first_pid && agent_field::<String>(&db, "web", "state")? == "running").then_some(())
    });
    let row = probe_row(&db, "web", "readiness").unwrap();
    assert_eq!(
        (row[4].as_str(), row[5].as_str()),
        ("http", format!("http://127.0.0.1:{port}/healthz").as_str())
    );
}

#[test]
fn a_tcp_liveness_probe_marks_an_agent_whose_port_closes() {
    let sb = Sandbox::new();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    sb.write_config(&format!(
        r#"
[[agent]]
name = "db"
command = "sleep"
args = ["1000"]
liveness = {{ tcp = "{addr}", period = "200ms", failure_threshold = 2 }}
on_heartbeat_timeout = "mark"
"#
    ));
    let _l = sb.launcher();
    let db = sb.db();
    let passed =
        wait_until(LIMIT, "probe passed", || event_messages(&db, "db", "probe_passed").into_iter().next());
    assert_eq!(passed, "liveness probe passes: connected");
    wait_until(LIMIT, "healthy", || (agent_field::<String>(&db, "db", "health")? == "healthy").then_some(()));
    let pid: i64 = agent_field(&db, "db", "pid").unwrap();

    drop(listener);
    let failed =
        wait_until(LIMIT, "probe failed", || event_messages(&db, "db", "probe_failed").into_iter().next());
    assert!(failed.starts_with("liveness probe failed 2 times in a row: "), "{failed}");
    assert!(failed.contains("refused") && failed.ends_with("; marked unhealthy"), "{failed}");
    wait_until(LIMIT, "unhealthy", || {
        (agent_field::<String>(&db, "db", "health")? == "unhealthy").then_some(())
    });
    let row = wait_until(LIMIT, "the row says failing", || {
        probe_row(&db, "db", "liveness")
            .filter(|r| r[0] == "failing" && r[2].parse::<i64>().unwrap_or(0) >= 2)
    });
    assert_eq!(row[1], "0");
    // Marked, not restarted.
    assert_eq!(agent_field::<i64>(&db, "db", "pid"), Some(pid));
    assert_eq!(agent_field::<String>(&db, "db", "state").as_deref(), Some("running"));

    // The port opens again: healthy again.
    let again = TcpListener::bind(addr).unwrap();
    let passed =
        wait_until(LIMIT, "probe passes again", || event_messages(&db, "db", "probe_passed").get(1).cloned());
    assert_eq!(passed, "liveness probe passes again: connected");
    drop(again);
}

#[test]
fn an_exec_probe_that_hangs_past_its_timeout_is_killed_and_fails() {
    let sb = Sandbox::new();
    sb.script("probe.sh", "echo $$ >> probe_pids\nsleep 300");
    sb.script("other.sh", "echo \"$NOTIFY_SOCKET\" > socket\nexec sleep 1000");
    sb.write_config(
        r#"
[[agent]]
name = "worker"
command = "sleep"
args = ["1000"]
liveness = { exec = ["./probe.sh"], period = "300ms", timeout = "200ms", failure_threshold = 3 }
on_heartbeat_timeout = "mark"

[[agent]]
name = "other"
command = "./other.sh"
ready = "notify"
ready_timeout = "60s"
"#,
    );
    let _l = sb.launcher();
    let db = sb.db();
    let failed = wait_until(LIMIT, "probe failed", || {
        event_messages(&db, "worker", "probe_failed").into_iter().next()
    });
    assert_eq!(failed, "liveness probe failed 3 times in a row: no answer within 200ms; marked unhealthy");
    let row = probe_row(&db, "worker", "liveness").unwrap();
    assert_eq!((row[4].as_str(), row[5].as_str()), ("exec", "./probe.sh"));
    // Every probe process that timed out is gone, its `sleep` with it (the whole group).
    let pids: Vec<i32> = sb.read("probe_pids").lines().map(|l| l.parse().unwrap()).collect();
    assert!(pids.len() >= 3, "{pids:?}");
    for &pid in &pids[..3] {
        wait_until(LIMIT, "the probe's group gone", || group_members(pid).is_empty().then_some(()));
    }
    // Hanging probes hold up no other agent: its READY=1 is taken meanwhile.
    let socket = sb.read("socket").trim().to_owned();
    notify_send(&socket, b"READY=1").unwrap();
    wait_state(&db, "other", "running");
}

#[test]
fn ready_log_line_gates_a_dependent() {
    let sb = Sandbox::new();
    sb.script("db.sh", "echo starting\nsleep 1\necho 'LOG: listening on port 5432' >&2\nexec sleep 1000");
    sb.script("app.sh", "date +%s%N > app_started\nexec sleep 1000");
    sb.write_config(
        r#"
[[agent]]
name = "db"
command = "./db.sh"
ready_log_line = "listening on port [0-9]+"

[[agent]]
name = "app"
command = "./app.sh"
depends_on = ["db"]
"#,
    );
    let _l = sb.launcher();
    let db = sb.db();
    let ready = wait_until(LIMIT, "db ready", || event_messages(&db, "db", "ready").into_iter().next());
    assert!(ready.ends_with("(an output line matched ready_log_line)"), "{ready}");
    wait_until(LIMIT, "app started", || (!sb.read("app_started").is_empty()).then_some(()));
    let kinds = event_kinds(&db, "app");
    assert_eq!(kinds.first().map(String::as_str), Some("waiting"), "{kinds:?}");
    // The app started after db's ready, which came after the line.
    let ready_ms: i64 =
        query_opt(&db, "SELECT ts_ms FROM events WHERE agent = 'db' AND kind = 'ready'").unwrap();
    let app_ms = sb.read("app_started").trim().parse::<i64>().unwrap() / 1_000_000;
    assert!(app_ms >= ready_ms - 5, "app at {app_ms}, db ready at {ready_ms}");
    let db_started: i64 = agent_field(&db, "db", "started_ms").unwrap();
    assert!(ready_ms - db_started >= 900, "ready {}ms after the start", ready_ms - db_started);
}

//! Agents talking to the launcher: the notify pipe, the notify socket (also through the real
//! `systemd-notify` tool), LLM fields and custom metrics landing in the database.

use crate::common::*;

#[test]
fn pipe_heartbeats_fields_and_metrics_land_in_the_database() {
    let sb = Sandbox::new();
    sb.script(
        "agent.sh",
        r#"
echo READY=1 >&3
printf 'STATUS=crunching\nX_TASK=summarise report 7\nX_MODEL=gpt-test\nX_TOKENS_IN=1200\nX_TOKENS_OUT=340\nX_COST=0.042\n' >&"$AGENTVISOR_NOTIFY_FD"
echo X_ERROR=rate limited >&3
echo X_METRIC_QUEUE_DEPTH=3 >&3
echo this line is not an assignment >&3
echo X_METRIC_CPU_PERCENT=5 >&3
while :; do echo WATCHDOG=1 >&3; sleep 0.05; done
"#,
    );
    sb.write_config(
        r#"
[[agent]]
name = "worker"
command = "./agent.sh"
ready = "notify"
heartbeat_timeout = "5s"
"#,
    );
    let _l = sb.launcher();
    let db = sb.db();
    wait_until(LIMIT, "heartbeats", || agent_field::<i64>(&db, "worker", "heartbeats").filter(|n| *n >= 5));
    wait_until(LIMIT, "fields", || {
        agent_field::<String>(&db, "worker", "task").filter(|t| t == "summarise report 7")
    });
    let row = &rows(
        &db,
        "SELECT state, health, ready, status_text, model, tokens_in, tokens_out, cost, last_error, notify_errors,
                last_heartbeat_ms IS NOT NULL FROM agent_state WHERE agent = 'worker'",
    )[0];
    assert_eq!(
        row,
        &[
            "running",
            "healthy",
            "1",
            "crunching",
            "gpt-test",
            "1200",
            "340",
            "0.042",
            "rate limited",
            "2",
            "1"
        ]
    );
    let depth = wait_until(LIMIT, "custom metric", || {
        query_opt::<f64>(
            &db,
            "SELECT last_value FROM metric_series WHERE scope = 'worker' AND metric = 'queue_depth'",
        )
    });
    assert_eq!(depth, 3.0);
    // A built-in name cannot be taken by an agent: its value must not be the agent's 5.
    let cpu = query_opt::<f64>(
        &db,
        "SELECT max(value) FROM metrics WHERE agent = 'worker' AND metric = 'cpu_percent'",
    );
    assert!(cpu.is_none_or(|v| v < 5.0), "{cpu:?}");
    // Heartbeats are coalesced: no row per heartbeat, but a gap metric.
    wait_until(LIMIT, "heartbeat gap metric", || {
        query_opt::<f64>(
            &db,
            "SELECT last_value FROM metric_series WHERE scope = 'worker' AND metric = 'heartbeat_gap_s'",
        )
    });
    let kinds = event_kinds(&db, "worker");
    assert!(kinds.contains(&"ready".to_owned()) && kinds.contains(&"agent_error".to_owned()), "{kinds:?}");
}

#[test]
fn socket_datagrams_are_parsed_bounded_and_the_environment_is_set() {
    let sb = Sandbox::new();
    sb.script("agent.sh", "env > env.txt\nexec sleep 30");
    sb.write_config(
        r#"
[[agent]]
name = "sock"
command = "./agent.sh"
ready = "notify"
heartbeat_timeout = "2500ms"
"#,
    );
    let _l = sb.launcher();
    let db = sb.db();
    let env = wait_until(LIMIT, "agent environment", || {
        Some(sb.read("env.txt")).filter(|e| e.contains("NOTIFY_SOCKET="))
    });
    let var = |name: &str| env.lines().find_map(|l| l.strip_prefix(&format!("{name}="))).map(str::to_owned);
    assert_eq!(var("WATCHDOG_USEC").as_deref(), Some("2500000"));
    assert_eq!(var("AGENTVISOR_NOTIFY_FD").as_deref(), Some("3"));
    assert_eq!(var("WATCHDOG_PID"), None);
    let socket = var("NOTIFY_SOCKET").unwrap();
    // The agent inherits stdin, stdout, stderr and the notify pipe, and nothing else of the
    // launcher's (its database, lock file, sockets or other agents' pipes).
    let pid = wait_until(LIMIT, "pid", || agent_field::<i64>(&db, "sock", "pid"));
    // Once the script has exec'd sleep, which opens nothing of its own.
    wait_until(LIMIT, "exec", || {
        std::fs::read_to_string(format!("/proc/{pid}/comm")).ok().filter(|c| c.trim() == "sleep")
    });
    let mut fds: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    fds.sort();
    assert_eq!(fds, ["0", "1", "2", "3"]);
    // In the abstract namespace: no file to leave behind.
    assert!(socket.starts_with("@agentvisor/") && socket.ends_with("/sock"), "{socket}");

    let send = |bytes: &[u8]| notify_send(&socket, bytes).unwrap();
    send(b"READY=1\nWATCHDOG=1\nX_METRIC_LATENCY_MS=12.5\nX_MODEL=local-llama");
    send(&vec![b'A'; 5000]);
    send(&[0xff, 0xfe, 0x00, 0x01, b'\n', b'=']);
    send(b"WATCHDOG=1");
    wait_until(LIMIT, "two heartbeats", || agent_field::<i64>(&db, "sock", "heartbeats").filter(|n| *n >= 2));
    assert_eq!(agent_field::<String>(&db, "sock", "state").as_deref(), Some("running"));
    assert_eq!(agent_field::<String>(&db, "sock", "model").as_deref(), Some("local-llama"));
    wait_until(LIMIT, "malformed count", || {
        agent_field::<i64>(&db, "sock", "notify_errors").filter(|n| *n >= 2)
    });
    let latency = wait_until(LIMIT, "custom metric", || {
        query_opt::<f64>(
            &db,
            "SELECT last_value FROM metric_series WHERE scope = 'sock' AND metric = 'latency_ms'",
        )
    });
    assert_eq!(latency, 12.5);

    // An agent cannot create series without bound: 64 custom metric names at most.
    let many: String = (0..70).map(|i| format!("X_METRIC_M{i}=1\n")).collect();
    send(many.as_bytes());
    let errors = agent_field::<i64>(&db, "sock", "notify_errors").unwrap();
    wait_until(LIMIT, "rejected metrics counted", || {
        agent_field::<i64>(&db, "sock", "notify_errors").filter(|n| *n == errors + 7)
    });
    let custom = "SELECT count(*) FROM metric_series WHERE scope = 'sock'
                  AND metric NOT IN ('cpu_percent', 'memory_bytes', 'threads', 'heartbeat_gap_s')";
    wait_until(LIMIT, "64 custom series", || query_opt::<i64>(&db, custom).filter(|n| *n == 64));
}

#[test]
fn systemd_notify_tool_works_unchanged() {
    let tool = std::path::Path::new("/usr/bin/systemd-notify");
    if !tool.exists() {
        println!("skipped: /usr/bin/systemd-notify is not installed");
        return;
    }
    let sb = Sandbox::new();
    sb.script(
        "agent.sh",
        r#"
start=$(date +%s%N)
/usr/bin/systemd-notify --ready --status="loaded 3 models"
rc=$?
end=$(date +%s%N)
echo "rc=$rc ms=$(( (end - start) / 1000000 ))"
/usr/bin/systemd-notify WATCHDOG=1
exec sleep 30
"#,
    );
    sb.write_config(
        r#"
[[agent]]
name = "sd"
command = "./agent.sh"
ready = "notify"
ready_timeout = "10s"
"#,
    );
    let _l = sb.launcher();
    let db = sb.db();
    wait_until(LIMIT, "ready through systemd-notify", || {
        agent_field::<i64>(&db, "sd", "ready").filter(|r| *r == 1)
    });
    assert_eq!(agent_field::<String>(&db, "sd", "status_text").as_deref(), Some("loaded 3 models"));
    let line = wait_until(LIMIT, "the tool's exit status", || {
        query_opt::<String>(&db, "SELECT line FROM log_lines WHERE agent = 'sd' AND line LIKE 'rc=%'")
    });
    let (rc, ms) = line.split_once(' ').unwrap();
    assert_eq!(rc, "rc=0", "{line}");
    let ms: u64 = ms.trim_start_matches("ms=").parse().unwrap();
    assert!(ms < 2000, "systemd-notify took {ms} ms");
    wait_until(LIMIT, "heartbeat through systemd-notify", || {
        agent_field::<i64>(&db, "sd", "heartbeats").filter(|n| *n >= 1)
    });
}

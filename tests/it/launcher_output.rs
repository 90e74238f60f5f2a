//! Captured output: lines cut and marked, invalid UTF-8 replaced, and a flood that stays
//! bounded without stalling another agent's heartbeats.

use crate::common::*;

#[test]
fn long_lines_are_cut_and_bad_utf8_replaced() {
    let sb = Sandbox::new();
    sb.script(
        "agent.sh",
        r#"
head -c 5000 /dev/zero | tr '\0' 'x'; echo
printf 'bad \377\376 bytes\n'
echo err line >&2
exec sleep 30
"#,
    );
    sb.write_config(
        r#"
[launcher]
log_line_bytes = 100

[[agent]]
name = "talker"
command = "./agent.sh"
"#,
    );
    let _l = sb.launcher();
    let db = sb.db();
    let lines = wait_until(LIMIT, "three lines", || {
        let r = rows(&db, "SELECT stream, line FROM log_lines WHERE agent = 'talker' ORDER BY id");
        (r.len() >= 3).then_some(r)
    });
    let out: Vec<&str> = lines.iter().filter(|r| r[0] == "stdout").map(|r| r[1].as_str()).collect();
    assert_eq!(out[0], format!("{} …[cut]", "x".repeat(100)));
    assert_eq!(out[1], "bad \u{fffd}\u{fffd} bytes");
    assert!(lines.iter().any(|r| r[0] == "stderr" && r[1] == "err line"));
}

#[test]
fn an_output_flood_stays_bounded_and_does_not_stall_others() {
    let sb = Sandbox::new();
    sb.script("flood.sh", "exec yes 'a flooding agent writes this line again and again'");
    sb.script("beat.sh", "while :; do echo WATCHDOG=1 >&3; sleep 0.05; done");
    sb.write_config(
        r#"
[launcher]
log_lines = 300
log_rate = 2000
sample_interval = "200ms"

[[agent]]
name = "flood"
command = "./flood.sh"

[[agent]]
name = "beat"
command = "./beat.sh"
heartbeat_timeout = "500ms"
"#,
    );
    let l = sb.launcher();
    let db = sb.db();
    wait_until(LIMIT, "drop marker", || {
        query_opt::<i64>(
            &db,
            "SELECT id FROM log_lines WHERE agent = 'flood' AND line LIKE '[agentvisor] % lines dropped%'",
        )
    });
    let beats = agent_field::<i64>(&db, "beat", "heartbeats").unwrap_or(0);
    let mut max_rss_kb = 0;
    // Keep watching for a while (until 3 s of samples) while the flood goes on.
    let start =
        query_opt::<i64>(&db, "SELECT max(ts_ms) FROM metrics WHERE agent = '@launcher'").unwrap_or(0);
    wait_until(LIMIT, "three more seconds of flood", || {
        let status = std::fs::read_to_string(format!("/proc/{}/status", l.pid())).unwrap_or_default();
        let rss: u64 = status
            .lines()
            .find_map(|s| s.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0);
        max_rss_kb = max_rss_kb.max(rss);
        query_opt::<i64>(&db, "SELECT max(ts_ms) FROM metrics WHERE agent = '@launcher'")
            .filter(|t| *t >= start + 3000)
    });
    let kept = query_opt::<i64>(&db, "SELECT count(*) FROM log_lines WHERE agent = 'flood'").unwrap();
    assert!(kept <= 300, "{kept} log lines kept, ring is 300");
    assert!(max_rss_kb < 100 * 1024, "launcher RSS reached {max_rss_kb} KiB");
    assert!(agent_field::<i64>(&db, "beat", "heartbeats").unwrap() >= beats + 20, "heartbeats stalled");
    assert_eq!(agent_field::<String>(&db, "beat", "health").as_deref(), Some("healthy"));
    assert!(!event_kinds(&db, "beat").contains(&"heartbeat_missed".to_owned()));
    let cpu = query_opt::<f64>(
        &db,
        "SELECT avg(value) FROM metrics WHERE agent = '@launcher' AND metric = 'cpu_percent'",
    )
    .unwrap();
    println!("flood: launcher max RSS {max_rss_kb} KiB, average CPU {cpu:.0}%, {kept} lines kept");
}

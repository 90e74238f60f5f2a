//! Alert rules with a real launcher and agent: a cost-rate rule fires while an agent's
//! reported `X_COST` climbs and resolves once it stops, the alerts table and the dashboard's
//! `status` and `alerts` follow it, and `status` exits 1 only while it fires.

use crate::common::{LIMIT, Sandbox, dashboard_bin, rows, wait_until};
use crate::dashboard_commands::status_json;
use std::time::Duration;

#[test]
fn a_cost_rate_alert_fires_and_resolves() {
    let sb = Sandbox::new();
    // 10 cost units a second (600 a minute) until `stop` exists, then flat.
    sb.script(
        "spender.sh",
        "n=0\nwhile :; do\n  [ -e stop ] || n=$((n + 1))\n  echo \"X_COST=$n\" >&3\n  sleep 0.1\ndone",
    );
    sb.write_config(
        r#"
[launcher]
sample_interval = "200ms"

[[agent]]
name = "spender"
command = "./spender.sh"

[[agent]]
name = "idle"
command = "sleep"
args = ["1000"]

[[alert]]
name = "spend"
agents = ["spender", "idle"]
value = "cost"
rate = "per_minute"
above = 120
for = "400ms"
window = "2s"
severity = "error"
"#,
    );
    let _l = sb.launcher();
    let db = sb.db();
    let firing = wait_until(LIMIT, "the alert firing", || {
        rows(&db, "SELECT rule, agent, severity, value, message FROM alerts").into_iter().next()
    });
    assert_eq!(&firing[..3], ["spend", "spender", "error"], "{firing:?}");
    assert!(firing[3].parse::<f64>().unwrap() > 120.0, "{firing:?}");
    assert!(firing[4].starts_with("spend: cost per_minute ") && firing[4].contains(" > 120"), "{firing:?}");
    let event = rows(&db, "SELECT severity, message FROM events WHERE kind = 'alert_firing'");
    assert_eq!(event.len(), 1, "{event:?}");
    assert_eq!(event[0][0], "error");
    assert!(event[0][1].starts_with("spend: cost per_minute "), "{event:?}");
    // The agent that reports nothing never fires.
    assert!(rows(&db, "SELECT 1 FROM alerts WHERE agent = 'idle'").is_empty());

    let (code, v) = status_json(&sb, &db);
    assert_eq!((code, v["verdict"].as_str()), (1, Some("alert_firing")), "{v:#}");
    assert_eq!(v["alerts"][0]["rule"], "spend");
    assert_eq!(v["agents"][0]["alerts"][0], "spend");
    let out = sb.command(dashboard_bin()).args(["alerts", "--db", db.to_str().unwrap()]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.lines().nth(1).is_some_and(|l| l.starts_with("spend ") && l.contains("spender")), "{text}");

    std::fs::write(sb.path().join("stop"), "").unwrap();
    let resolved = wait_until(LIMIT, "the alert resolved", || {
        rows(&db, "SELECT message FROM events WHERE kind = 'alert_resolved'").into_iter().next()
    });
    assert!(
        resolved[0].starts_with("spend: cost per_minute ") && resolved[0].contains(" <= 120"),
        "{resolved:?}"
    );
    assert!(rows(&db, "SELECT 1 FROM alerts").is_empty(), "the firing row stays after the event");
    let (code, v) = wait_until(Duration::from_secs(10), "status back to ok", || {
        let (code, v) = status_json(&sb, &db);
        (code == 0).then_some((code, v))
    });
    assert_eq!((code, v["verdict"].as_str()), (0, Some("ok")));
    assert_eq!(v["alerts"], serde_json::json!([]));
}

/// Stale rows of a launcher that was killed are not shown by the next one.
#[test]
fn a_new_launcher_clears_what_the_last_one_left_firing() {
    let sb = Sandbox::new();
    sb.write_config(
        r#"
[launcher]
sample_interval = "200ms"

[[agent]]
name = "fat"
command = "sleep"
args = ["1000"]

[[alert]]
name = "any-memory"
value = "memory_bytes"
above = "1B"
"#,
    );
    let db = sb.db();
    let mut first = sb.launcher_as("first");
    wait_until(LIMIT, "the alert firing", || rows(&db, "SELECT 1 FROM alerts").first().cloned());
    first.run.signal(nix::sys::signal::Signal::SIGKILL);
    first.run.wait_exit(LIMIT);
    assert_eq!(rows(&db, "SELECT 1 FROM alerts").len(), 1, "a killed launcher leaves its rows");
    sb.write_config(
        r#"
[launcher]
sample_interval = "200ms"

[[agent]]
name = "fat"
command = "sleep"
args = ["1000"]
"#,
    );
    let _second = sb.launcher_as("second");
    wait_until(LIMIT, "the stale row cleared", || rows(&db, "SELECT 1 FROM alerts").is_empty().then_some(()));
}

/// Custom metrics reach the rules: a value over the threshold fires, and a metric reported
/// once and then never again fires `absent`.
#[test]
fn rules_on_a_custom_metric() {
    let sb = Sandbox::new();
    sb.script("reporter.sh", "echo X_METRIC_QUEUE_DEPTH=50 >&3\nexec sleep 1000");
    sb.write_config(
        r#"
[launcher]
sample_interval = "200ms"

[[agent]]
name = "reporter"
command = "./reporter.sh"

[[alert]]
name = "deep"
value = "queue_depth"
above = 10

[[alert]]
name = "quiet"
value = "queue_depth"
absent = "1s"
"#,
    );
    let _l = sb.launcher();
    let db = sb.db();
    let firing = wait_until(LIMIT, "both rules firing", || {
        let r = rows(&db, "SELECT rule, value FROM alerts WHERE agent = 'reporter' ORDER BY rule");
        (r.len() == 2).then_some(r)
    });
    assert_eq!(firing[0], ["deep", "50"]);
    assert_eq!(firing[1][0], "quiet");
    assert!(firing[1][1].parse::<f64>().unwrap() >= 1.0, "{firing:?}");
}

/// A reload with a broken rule changes nothing (the old rule keeps firing); a valid reload
/// without the rule resolves its alert.
#[test]
fn a_reload_with_a_bad_rule_keeps_the_old_rules() {
    let sb = Sandbox::new();
    let agent = "[launcher]\nsample_interval = \"200ms\"\n\n[[agent]]\nname = \"fat\"\ncommand = \"sleep\"\nargs = [\"1000\"]\n";
    sb.write_config(&format!(
        "{agent}\n[[alert]]\nname = \"mem\"\nvalue = \"memory_bytes\"\nabove = \"1B\"\n"
    ));
    let _l = sb.launcher();
    let db = sb.db();
    wait_until(LIMIT, "the alert firing", || rows(&db, "SELECT 1 FROM alerts").first().cloned());
    sb.write_config(&format!(
        "{agent}\n[[alert]]\nname = \"mem\"\nvalue = \"memory_bytes\"\nanomaly = 3.0\n"
    ));
    let refused = wait_until(LIMIT, "the reload refused", || {
        rows(&db, "SELECT message FROM events WHERE kind = 'config_invalid'").into_iter().next()
    });
    assert!(refused[0].contains("field `alert[0].anomaly`: needs a window"), "{refused:?}");
    assert!(rows(&db, "SELECT 1 FROM events WHERE kind = 'alert_resolved'").is_empty());
    assert_eq!(rows(&db, "SELECT rule FROM alerts"), [["mem"]]);
    sb.write_config(agent);
    let resolved = wait_until(LIMIT, "the alert resolved by the reload", || {
        rows(&db, "SELECT message FROM events WHERE kind = 'alert_resolved'").into_iter().next()
    });
    assert_eq!(resolved[0], "mem: the rule was changed or removed by a reload");
    wait_until(LIMIT, "no alert row", || rows(&db, "SELECT 1 FROM alerts").is_empty().then_some(()));
}

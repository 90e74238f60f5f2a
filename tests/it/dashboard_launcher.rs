//! The dashboard against databases written by the real launcher: `status --json` and its exit
//! codes through a launcher's life (healthy, crash loop, stopped, killed), `logs`/`events`, the
//! UI showing the live agents, and the read-only proof on the launcher's own file.

use crate::common::{LIMIT, Running, Sandbox, dashboard_bin, launcher_bin, wait_until};
use crate::dashboard_tui::Tui;
use nix::sys::signal::Signal;
use serde_json::Value;

const BEATER: &str = r#"
echo READY=1 >&3
i=0
while :; do
  i=$((i+1))
  printf 'WATCHDOG=1\nSTATUS=working\nX_TASK=job %s\nX_METRIC_QUEUE_DEPTH=%s\n' $i $((i % 5)) >&3
  echo "beat $i"
  sleep 0.2
done
"#;

/// The real launcher on the sandbox's config and database; killed with its group if a test
/// fails before stopping it.
fn start_launcher(sb: &Sandbox) -> Running {
    let mut c = sb.command(launcher_bin());
    c.arg("--db").arg(sb.db()).arg("--config").arg(sb.config());
    Running::spawn(c, sb.path(), "launcher")
}

pub fn status(sb: &Sandbox) -> (i32, Value) {
    let out = sb.command(dashboard_bin()).args(["status", "--json", "--db"]).arg(sb.db()).output().unwrap();
    let v = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (out.status.code().unwrap_or(-1), v)
}

fn agent<'a>(v: &'a Value, name: &str) -> &'a Value {
    v["agents"].as_array().and_then(|a| a.iter().find(|x| x["name"] == name)).unwrap_or(&Value::Null)
}

#[test]
fn status_follows_a_real_launcher_from_healthy_to_stopped() {
    let sb = Sandbox::new();
    sb.script("beater.sh", BEATER);
    sb.write_config(
        r#"
[[agent]]
name = "beater"
command = "./beater.sh"
heartbeat_timeout = "5s"
capabilities = ["demo"]

[[agent]]
name = "sleeper"
command = "/bin/sleep"
args = ["1000"]
"#,
    );
    let mut launcher = start_launcher(&sb);
    let (_, v) = wait_until(LIMIT, "status 0 with heartbeats and metrics", || {
        let (code, v) = status(&sb);
        let b = agent(&v, "beater");
        (code == 0 && b["last_heartbeat_age_s"].is_number() && b["metrics"]["queue_depth"].is_number())
            .then_some((code, v))
    });
    assert_eq!(v["launcher"]["running"], true);
    assert_eq!(v["launcher"]["pid"], launcher.pid());
    let b = agent(&v, "beater");
    assert_eq!((b["state"].as_str(), b["health"].as_str()), (Some("running"), Some("healthy")));
    assert!(b["task"].as_str().unwrap_or_default().starts_with("job "), "{b:#}");
    assert_eq!(b["capabilities"][0], "demo");
    let s = agent(&v, "sleeper");
    assert_eq!((s["state"].as_str(), s["process_only"].as_bool()), (Some("running"), Some(true)));
    assert_eq!(v["summary"]["healthy"], 2);

    let text = wait_until(LIMIT, "three captured lines", || {
        let out = sb
            .command(dashboard_bin())
            .args(["logs", "beater", "-n", "3", "--db"])
            .arg(sb.db())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        (out.status.success() && text.lines().count() == 3).then_some(text)
    });
    assert!(text.lines().all(|l| l.contains(" stdout beat ")), "{text}");

    let mut tui = Tui::start(&sb, &sb.db(), 100, 30);
    tui.wait_for("beater", LIMIT);
    tui.wait_for("sleeper", LIMIT);
    tui.keys("q");
    assert!(tui.wait_exit(LIMIT).success());

    // A clean stop: exit code 2, and from now on nothing the dashboard does changes the file.
    launcher.signal(Signal::SIGTERM);
    let stderr = || std::fs::read_to_string(sb.path().join("launcher.stderr")).unwrap_or_default();
    assert_eq!(launcher.wait_exit(LIMIT).code(), Some(0), "{}", stderr());
    let before = std::fs::read(sb.db()).unwrap();
    let (code, v) = status(&sb);
    assert_eq!(code, 2, "{v:#}");
    assert_eq!(v["launcher"]["running"], false);
    assert!(v["launcher"]["stopped_at"].is_string());
    let mut tui = Tui::start(&sb, &sb.db(), 100, 30);
    tui.wait_for("LAUNCHER DOWN", LIMIT);
    tui.keys("\r\t");
    tui.wait_for("launcher_stopped", LIMIT);
    tui.keys("q");
    assert!(tui.wait_exit(LIMIT).success());
    for args in [&["events"][..], &["logs", "beater"], &["status"]] {
        sb.command(dashboard_bin()).args(args).arg("--db").arg(sb.db()).output().unwrap();
    }
    assert!(std::fs::read(sb.db()).unwrap() == before, "the dashboard changed the launcher's database");
}

#[test]
fn status_reports_a_crash_loop_and_a_killed_launcher() {
    let sb = Sandbox::new();
    sb.write_config(
        r#"
[[agent]]
name = "sleeper"
command = "/bin/sleep"
args = ["1000"]

[[agent]]
name = "looper"
command = "/bin/sh"
args = ["-c", "echo boom >&2; exit 3"]
restart = "always"
max_restarts = 2
restart_window = "60s"
backoff = { initial = "50ms", multiplier = 1.0, max = "50ms", reset_after = "30s" }
"#,
    );
    let launcher = start_launcher(&sb);
    let v = wait_until(LIMIT, "status 1 with looper fatal", || {
        let (code, v) = status(&sb);
        (code == 1 && agent(&v, "looper")["state"] == "fatal").then_some(v)
    });
    let l = agent(&v, "looper");
    assert_eq!(l["in_trouble"], true);
    assert_eq!(l["exit_code"], 3);
    assert_eq!(v["verdict"], "agent_trouble");
    let out = sb
        .command(dashboard_bin())
        .args(["events", "--agent", "looper", "--severity", "critical", "--db"])
        .arg(sb.db())
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&out.stdout).trim().is_empty(), "no critical event for the crash loop");
    let out = sb.command(dashboard_bin()).args(["logs", "looper", "--db"]).arg(sb.db()).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("stderr boom"));

    // SIGKILL: no stop is recorded; the session goes stale and status says so.
    launcher.signal(Signal::SIGKILL);
    let v = wait_until(LIMIT, "status 2 (stale)", || {
        let (code, v) = status(&sb);
        (code == 2).then_some(v)
    });
    assert_eq!(v["launcher"]["stale"], true, "{v:#}");
    assert!(v["launcher"]["down_since"].is_string());
}

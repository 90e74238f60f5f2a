//! An agent that crashes the moment it starts, for many cycles (compressed: tiny backoff
//! values): the delay grows to its cap and stays there, the launcher stays near idle, the
//! dashboard shows the loop while it runs and `fatal` when the crash-loop limit ends it.

use crate::common::*;
use std::time::{Duration, Instant};

const MAX_RESTARTS: i64 = 150;

/// CPU time a process has used (user + system), from /proc.
fn cpu_time(pid: i32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let (_, rest) = stat.rsplit_once(')').unwrap();
    let f: Vec<u64> = rest.split_whitespace().map(|x| x.parse().unwrap_or(0)).collect();
    // `rest` starts at field 3 (state): utime and stime are fields 14 and 15.
    let ticks = f[11] + f[12];
    let hz = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK).unwrap().unwrap() as u64;
    Duration::from_millis(ticks * 1000 / hz)
}

fn dashboard_status(sb: &Sandbox) -> serde_json::Value {
    let out =
        sb.command(dashboard_bin()).arg("--db").arg(sb.db()).args(["status", "--json"]).output().unwrap();
    serde_json::from_slice(&out.stdout).unwrap_or_default()
}

fn agent<'a>(status: &'a serde_json::Value, name: &str) -> Option<&'a serde_json::Value> {
    status["agents"].as_array()?.iter().find(|a| a["name"] == name)
}

#[test]
fn a_long_crash_loop_caps_its_backoff_keeps_the_launcher_idle_and_shows_on_the_dashboard() {
    dashboard_bin();
    let sb = Sandbox::new();
    sb.write_config(&format!(
        r#"
[[agent]]
name = "loop"
command = "false"
restart = "always"
backoff = {{ initial = "5ms", multiplier = 2.0, max = "40ms", reset_after = "10s" }}
max_restarts = {MAX_RESTARTS}
restart_window = "10m"

[[agent]]
name = "steady"
command = "sleep"
args = ["1000"]
"#
    ));
    let l = sb.launcher();
    let db = sb.db();
    wait_until(LIMIT, "a few restarts", || agent_field::<i64>(&db, "loop", "restarts").filter(|r| *r >= 10));
    let (cpu0, t0) = (cpu_time(l.pid()), Instant::now());

    // The dashboard shows the loop while it runs: restarts counting up, the agent in trouble.
    let seen = wait_until(LIMIT, "the dashboard showing the loop", || {
        let s = dashboard_status(&sb);
        let a = agent(&s, "loop")?.clone();
        (a["state"] == "backoff" && a["in_trouble"] == true && a["restarts"].as_i64()? >= 10).then_some(a)
    });
    println!("dashboard during the loop: state {} restarts {}", seen["state"], seen["restarts"]);

    wait_state(&db, "loop", "fatal");
    let (cpu, wall) = (cpu_time(l.pid()) - cpu0, t0.elapsed());
    let share = cpu.as_secs_f64() / wall.as_secs_f64();
    let restarts = agent_field::<i64>(&db, "loop", "restarts").unwrap();
    println!(
        "launcher CPU during the loop: {:.0} ms over {:.1} s ({:.1} % of one core, {} restarts)",
        cpu.as_secs_f64() * 1000.0,
        wall.as_secs_f64(),
        share * 100.0,
        restarts
    );
    assert!(share < 0.5, "the launcher used {:.0} % of a core", share * 100.0);
    assert_eq!(restarts, MAX_RESTARTS);

    // The delay grew to its cap and stayed there.
    let delays: Vec<String> =
        rows(&db, "SELECT message FROM events WHERE agent = 'loop' AND kind = 'backoff' ORDER BY id")
            .into_iter()
            .map(|r| r[0].rsplit(' ').next().unwrap().to_owned())
            .collect();
    assert_eq!(delays.len() as i64, MAX_RESTARTS);
    assert_eq!(delays[..4], ["5ms", "10ms", "20ms", "40ms"]);
    assert!(delays[3..].iter().all(|d| d == "40ms"), "{delays:?}");

    // After the loop ends the launcher idles, and the dashboard says fatal.
    let s = dashboard_status(&sb);
    let a = agent(&s, "loop").unwrap();
    assert_eq!(a["state"], "fatal");
    assert_eq!(a["restarts"].as_i64(), Some(MAX_RESTARTS));
    assert_eq!(s["verdict"], "agent_trouble");
    assert_eq!(agent(&s, "steady").unwrap()["state"], "running");
    let (cpu1, t1) = (cpu_time(l.pid()), Instant::now());
    crate::reload_config::two_liveness_ticks(&db);
    let idle = (cpu_time(l.pid()) - cpu1).as_secs_f64() / t1.elapsed().as_secs_f64();
    println!("launcher CPU after the loop: {:.1} % of one core", idle * 100.0);
    assert!(idle < 0.2, "the launcher used {:.0} % of a core while idle", idle * 100.0);
}

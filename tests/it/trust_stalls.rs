//! Stalls and stopped processes: a launcher that was itself stopped for a while does not blame
//! its agents for the heartbeats, `READY=1` and exits it could not see meanwhile (but still
//! catches an agent that really went quiet); an agent stopped by SIGSTOP is shown unhealthy
//! with the reason, and stopping it does not wait out its `stop_timeout`.

use crate::common::*;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::time::{Duration, Instant};

/// The state letter of a process (`/proc/PID/stat` field 3), `None` once it is gone.
fn proc_state(pid: i32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

fn pid_of(db: &std::path::Path, agent: &str) -> i32 {
    let pid = wait_until(LIMIT, &format!("{agent}'s pid"), || agent_field::<i64>(db, agent, "pid"));
    i32::try_from(pid).unwrap()
}

fn events_of(db: &std::path::Path, agent: &str) -> Vec<(String, String, String)> {
    rows(db, &format!("SELECT kind, severity, message FROM events WHERE agent = '{agent}' ORDER BY id"))
        .into_iter()
        .map(|r| (r[0].clone(), r[1].clone(), r[2].clone()))
        .collect()
}

#[test]
fn a_stopped_launcher_restarts_no_agent_that_kept_heartbeating() {
    let sb = Sandbox::new();
    // Heartbeats on the notify pipe, at different rates.
    sb.script("pipe.sh", "while :; do echo WATCHDOG=1 >&3; sleep \"$1\"; done");
    // Heartbeats on the pipe until the file `quiet` appears, then none, while still running.
    sb.script("quiet.sh", "while :; do [ -e quiet ] || echo WATCHDOG=1 >&3; sleep 0.2; done");
    let mut config = String::from(
        r#"
[[agent]]
name = "quiet"
command = "./quiet.sh"
heartbeat_timeout = "2s"
backoff = { initial = "30s" }
"#,
    );
    // Many, and two stalls: each agent's heartbeat timer wins its race against the waiting
    // heartbeats by chance, and some must have the chance.
    let every = ["0.1", "0.15", "0.2", "0.25", "0.3", "0.4", "0.5", "0.6"];
    let names: Vec<String> = (1..=every.len()).map(|i| format!("pipe_{i}")).collect();
    let mut good: Vec<&str> = names.iter().map(String::as_str).collect();
    for (agent, every) in good.iter().zip(every) {
        config.push_str(&format!(
            "\n[[agent]]\nname = \"{agent}\"\ncommand = \"./pipe.sh\"\nargs = [\"{every}\"]\nheartbeat_timeout = \"2s\"\n"
        ));
    }
    // Heartbeats on the notify socket, sent by systemd's own client.
    if std::path::Path::new("/usr/bin/systemd-notify").exists() {
        sb.script("socket.sh", "while :; do /usr/bin/systemd-notify WATCHDOG=1; sleep 0.3; done");
        config.push_str(
            r#"
[[agent]]
name = "socket"
command = "./socket.sh"
heartbeat_timeout = "2s"
"#,
        );
        good.push("socket");
    } else {
        println!("no socket agent: /usr/bin/systemd-notify is not installed");
    }
    sb.write_config(&config);
    let launcher = sb.launcher();
    let db = sb.db();
    for agent in good.iter().chain(&["quiet"]) {
        wait_until(LIMIT, &format!("{agent} healthy"), || {
            agent_field::<String>(&db, agent, "health").filter(|h| h == "healthy")
        });
    }
    let pids: Vec<i32> = good.iter().map(|a| pid_of(&db, a)).collect();

    std::fs::write(sb.path().join("quiet"), "").unwrap();
    // The stalls: three and two heartbeat timeouts long, while the agents keep sending.
    for stall in [6, 4] {
        let beats: Vec<i64> =
            good.iter().map(|a| agent_field::<i64>(&db, a, "heartbeats").unwrap()).collect();
        launcher.run.signal(Signal::SIGSTOP);
        std::thread::sleep(Duration::from_secs(stall));
        launcher.run.signal(Signal::SIGCONT);
        let resumed = Instant::now();
        // The agent that really went quiet is caught.
        wait_until(LIMIT, "quiet's heartbeat_missed", || {
            event_kinds(&db, "quiet").contains(&"heartbeat_missed".to_owned()).then_some(())
        });
        // The others' heartbeats sent during the stall and after it count...
        for (agent, before) in good.iter().zip(&beats) {
            wait_until(LIMIT, &format!("{agent}'s heartbeats after the stall"), || {
                agent_field::<i64>(&db, agent, "heartbeats").filter(|n| *n >= before + 10)
            });
        }
        // ... and over two more heartbeat timeouts after the stall, none of them is blamed.
        if let Some(rest) = Duration::from_secs(4).checked_sub(resumed.elapsed()) {
            std::thread::sleep(rest);
        }
    }
    for (agent, pid) in good.iter().zip(&pids) {
        let events = events_of(&db, agent);
        assert!(
            events
                .iter()
                .all(|(kind, _, _)| !["heartbeat_missed", "stopping", "stopped"].contains(&kind.as_str())),
            "{agent} was blamed for the launcher's stall: {events:?}"
        );
        assert_eq!(agent_field::<i64>(&db, agent, "pid"), Some(i64::from(*pid)), "{agent} was restarted");
        assert_eq!(agent_field::<String>(&db, agent, "health").as_deref(), Some("healthy"), "{agent}");
    }
}

#[test]
fn a_stopped_launcher_times_out_no_agent_whose_ready_was_waiting() {
    let sb = Sandbox::new();
    sb.script("late.sh", "sleep 2\necho READY=1 >&3\nexec sleep 1000");
    let mut config = String::from(
        r#"
[[agent]]
name = "never"
command = "sleep"
args = ["1000"]
ready = "notify"
ready_timeout = "4s"
"#,
    );
    // Many: each agent's ready timer wins its race against the waiting READY=1 by chance
    // (about one in six), and some must have the chance.
    let names: Vec<String> = (1..=24).map(|i| format!("late_{i}")).collect();
    for agent in &names {
        config.push_str(&format!(
            "\n[[agent]]\nname = \"{agent}\"\ncommand = \"./late.sh\"\nready = \"notify\"\nready_timeout = \"4s\"\n"
        ));
    }
    sb.write_config(&config);
    let launcher = sb.launcher();
    let db = sb.db();
    for agent in names.iter().map(String::as_str).chain(["never"]) {
        pid_of(&db, agent);
    }
    // READY=1 is sent during the stall, whose end is past every ready deadline.
    launcher.run.signal(Signal::SIGSTOP);
    std::thread::sleep(Duration::from_secs(6));
    launcher.run.signal(Signal::SIGCONT);
    wait_until(LIMIT, "never's ready_timeout", || {
        event_kinds(&db, "never").contains(&"ready_timeout".to_owned()).then_some(())
    });
    for agent in &names {
        wait_until(LIMIT, &format!("{agent} ready"), || {
            let events = events_of(&db, agent);
            assert!(
                events.iter().all(|(kind, _, _)| kind != "ready_timeout"),
                "{agent} was blamed for the launcher's stall: {events:?}"
            );
            events.iter().any(|(kind, _, _)| kind == "ready").then_some(())
        });
    }
}

#[test]
fn a_stopped_launcher_reports_no_stop_timeout_for_agents_that_exited_in_time() {
    let sb = Sandbox::new();
    // Takes a second to exit after SIGTERM, well within its stop_timeout.
    sb.script("slow_exit.sh", "trap 'touch \"term.$1\"; sleep 1; exit 0' TERM\nwhile :; do sleep 0.1; done");
    // Many: each agent's stop timer wins its race against its exit by chance (about one in
    // two), and some must have the chance.
    let names: Vec<String> = (1..=8).map(|i| format!("slow_{i}")).collect();
    let config: String = names
        .iter()
        .map(|agent| {
            format!("[[agent]]\nname = \"{agent}\"\ncommand = \"./slow_exit.sh\"\nargs = [\"{agent}\"]\nstop_timeout = \"3s\"\n\n")
        })
        .collect();
    sb.write_config(&config);
    let mut launcher = sb.launcher();
    let db = sb.db();
    for agent in &names {
        pid_of(&db, agent);
    }
    launcher.run.signal(Signal::SIGTERM);
    for agent in &names {
        wait_until(LIMIT, &format!("{agent} to get SIGTERM"), || {
            sb.path().join(format!("term.{agent}")).exists().then_some(())
        });
    }
    // The agents exit during the stall, whose end is past their stop deadlines.
    launcher.run.signal(Signal::SIGSTOP);
    std::thread::sleep(Duration::from_secs(5));
    launcher.run.signal(Signal::SIGCONT);
    assert!(launcher.run.wait_exit(LIMIT).success());
    for agent in &names {
        let events = events_of(&db, agent);
        assert!(
            events.iter().any(|(kind, _, _)| kind == "stopped")
                && events.iter().all(|(kind, _, _)| kind != "stop_timeout"),
            "{agent}: {events:?}"
        );
        assert_eq!(agent_field::<i64>(&db, agent, "exit_code"), Some(0), "{agent}");
    }
}

#[test]
fn a_self_stopped_agent_is_shown_unhealthy_with_the_reason_until_it_resumes() {
    let sb = Sandbox::new();
    sb.script("agent.sh", "kill -STOP $$\nexec sleep 1000");
    sb.write_config(
        r#"
[launcher]
sample_interval = "200ms"

[[agent]]
name = "frozen"
command = "./agent.sh"
"#,
    );
    let _l = sb.launcher();
    let db = sb.db();
    let pid = pid_of(&db, "frozen");
    wait_until(LIMIT, "the agent to stop itself", || (proc_state(pid) == Some('T')).then_some(()));
    let error = wait_until(LIMIT, "frozen shown unhealthy with a reason", || {
        let healthy = agent_field::<String>(&db, "frozen", "health");
        let error = agent_field::<String>(&db, "frozen", "last_error");
        error.filter(|_| healthy.as_deref() == Some("unhealthy"))
    });
    assert!(error.contains("stopped") && error.contains("state T"), "{error}");
    assert_eq!(agent_field::<String>(&db, "frozen", "state").as_deref(), Some("running"));
    let events = events_of(&db, "frozen");
    assert!(
        events.iter().any(|(kind, severity, msg)| kind == "process_stopped"
            && severity == "warning"
            && msg.contains("state T")),
        "{events:?}"
    );
    // The dashboard's verdict agrees: an agent in trouble, exit code 1.
    let status = sb.command(dashboard_bin()).arg("--db").arg(&db).arg("status").output().unwrap();
    assert_eq!(status.status.code(), Some(1), "{}", String::from_utf8_lossy(&status.stdout));

    // Continued by someone else: shown as it was, and the reason is gone.
    kill(Pid::from_raw(pid), Signal::SIGCONT).unwrap();
    wait_until(LIMIT, "frozen no longer unhealthy", || {
        agent_field::<String>(&db, "frozen", "health").filter(|h| h != "unhealthy")
    });
    assert_eq!(agent_field::<String>(&db, "frozen", "last_error"), None);
    wait_until(LIMIT, "a process_resumed event", || {
        events_of(&db, "frozen")
            .iter()
            .any(|(kind, severity, _)| kind == "process_resumed" && severity == "info")
            .then_some(())
    });
    assert_eq!(pid_of(&db, "frozen"), pid);
}

#[test]
fn stopping_a_stopped_agent_does_not_wait_out_its_stop_timeout() {
    let sb = Sandbox::new();
    sb.script("agent.sh", "kill -STOP $$\nexec sleep 1000");
    sb.write_config(
        r#"
[[agent]]
name = "frozen"
command = "./agent.sh"
stop_timeout = "60s"
"#,
    );
    let _l = sb.launcher();
    let db = sb.db();
    let pid = pid_of(&db, "frozen");
    wait_until(LIMIT, "the agent to stop itself", || (proc_state(pid) == Some('T')).then_some(()));
    let asked = Instant::now();
    let out = ctl(&sb, &["stop", "frozen"]);
    let took = asked.elapsed();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(took < Duration::from_secs(30), "ctl stop took {took:?}");
    assert!(!process_alive(pid));
    // Written by the launcher's writer thread a moment after the answer.
    let kinds = wait_until(LIMIT, "the stopped event", || {
        Some(event_kinds(&db, "frozen")).filter(|k| k.contains(&"stopped".to_owned()))
    });
    assert!(!kinds.contains(&"stop_timeout".to_owned()), "{kinds:?}");
    // It ended by the stop signal, not by the SIGKILL after the timeout.
    assert_eq!(agent_field::<i64>(&db, "frozen", "exit_signal"), Some(i64::from(Signal::SIGTERM as i32)));
}

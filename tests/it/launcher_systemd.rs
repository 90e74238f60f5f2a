//! The launcher under systemd (its notify protocol, spoken to a socket the test holds) and
//! the second signal that cuts a slow graceful stop short.

use crate::common::*;
use nix::sys::signal::Signal;
use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

/// Receives datagrams until one contains `needle`, returning everything received.
fn receive_until(sock: &UnixDatagram, needle: &str, seen: &mut Vec<String>) {
    let deadline = Instant::now() + LIMIT;
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        if let Ok(n) = sock.recv(&mut buf) {
            let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
            let found = msg.contains(needle);
            seen.push(msg);
            if found {
                return;
            }
        }
    }
    panic!("no {needle:?} from the launcher; got {seen:?}");
}

#[test]
fn speaks_sd_notify_ready_status_watchdog_and_stopping() {
    let sb = Sandbox::new();
    sb.script("agent.sh", "exec sleep 1000");
    // READY=1 waits for the slow starter: it comes with both agents running.
    sb.script("slow.sh", "sleep 0.5\necho READY=1 >&3\nexec sleep 1000");
    sb.write_config(
        "[[agent]]\nname = \"a\"\ncommand = \"./agent.sh\"\n\n\
         [[agent]]\nname = \"b\"\ncommand = \"./slow.sh\"\nready = \"notify\"\n",
    );
    let path = sb.path().join("systemd.sock");
    let sock = UnixDatagram::bind(&path).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
    let mut cmd = sb.command(launcher_bin());
    cmd.arg("--db").arg(sb.db()).arg("--config").arg(sb.config());
    cmd.env("NOTIFY_SOCKET", &path).env("WATCHDOG_USEC", "400000");
    let mut l = Launcher { run: Running::spawn(cmd, sb.path(), "launcher") };

    let mut seen = Vec::new();
    receive_until(&sock, "READY=1", &mut seen);
    let ready = seen.iter().find(|m| m.contains("READY=1")).unwrap();
    assert!(ready.contains("STATUS=2/2 agents running"), "{ready}");
    // The watchdog at half of WATCHDOG_USEC (200 ms), not at the one-second liveness tick:
    // ten pings take two seconds, not ten (the bound leaves room for a loaded machine).
    let start = Instant::now();
    for _ in 0..10 {
        receive_until(&sock, "WATCHDOG=1", &mut seen);
    }
    assert!(start.elapsed() < Duration::from_secs(8), "watchdog too slow: {seen:?}");
    // Agents do not inherit the launcher's own systemd settings.
    let agent_pid = agent_field::<i64>(&sb.db(), "a", "pid").unwrap();
    let env = std::fs::read(format!("/proc/{agent_pid}/environ")).unwrap();
    let env = String::from_utf8_lossy(&env);
    assert!(!env.contains("WATCHDOG_USEC=") && !env.contains(&format!("NOTIFY_SOCKET={}", path.display())));

    l.run.signal(Signal::SIGTERM);
    receive_until(&sock, "STOPPING=1", &mut seen);
    assert_eq!(l.run.wait_exit(LIMIT).code(), Some(0));
}

#[test]
fn a_second_signal_kills_at_once() {
    let sb = Sandbox::new();
    sb.script("stubborn.sh", "trap 'echo got TERM >> log' TERM\nsleep 1000 &\nwhile :; do sleep 0.05; done");
    sb.write_config("[[agent]]\nname = \"stubborn\"\ncommand = \"./stubborn.sh\"\nstop_timeout = \"60s\"\n");
    let mut l = sb.launcher();
    let db = sb.db();
    let pgid = wait_until(LIMIT, "running", || agent_field::<i64>(&db, "stubborn", "pgid")) as i32;
    wait_until(LIMIT, "child started", || (group_members(pgid).len() >= 2).then_some(()));
    l.run.signal(Signal::SIGINT);
    wait_state(&db, "stubborn", "stopping");
    wait_until(LIMIT, "the agent ignored SIGTERM", || {
        Some(sb.read("log")).filter(|l| l.contains("got TERM"))
    });
    let start = Instant::now();
    l.run.signal(Signal::SIGINT);
    assert_eq!(l.run.wait_exit(LIMIT).code(), Some(130));
    // Well within the 60 s stop_timeout the second signal cut short.
    assert!(start.elapsed() < Duration::from_secs(30));
    assert_eq!(group_members(pgid), Vec::<i32>::new());
    assert_eq!(agent_field::<String>(&db, "stubborn", "state").as_deref(), Some("stopped"));
    let reason = query_opt::<String>(&db, "SELECT exit_reason FROM launcher_sessions").unwrap();
    assert_eq!(reason, "killed agents after a second SIGINT");
}

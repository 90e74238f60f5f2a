//! `agentvisor-launcher ctl`: start, stop, restart and status round trips against a running
//! launcher, events naming the user, clear errors without a launcher, a stale socket replaced,
//! and a client of another user refused by its credentials.

use crate::common::*;
use std::os::unix::fs::PermissionsExt;

fn state(db: &std::path::Path, agent: &str) -> Option<String> {
    agent_field::<String>(db, agent, "state")
}

#[test]
fn start_stop_restart_and_status_round_trip() {
    let sb = Sandbox::new();
    // "flaky" crashes until the file `ok` exists.
    sb.script("flaky.sh", "[ -e ok ] || exit 1\nexec sleep 1000");
    sb.write_config(
        r#"
[[agent]]
name = "a"
command = "sleep"
args = ["1000"]

[[agent]]
name = "b"
command = "sleep"
args = ["1000"]

[[agent]]
name = "flaky"
command = "./flaky.sh"
backoff = { initial = "10ms", max = "10ms" }
max_restarts = 1
"#,
    );
    let _l = sb.launcher();
    let db = sb.db();
    wait_state(&db, "a", "running");
    wait_state(&db, "b", "running");
    wait_state(&db, "flaky", "fatal");
    let b_pid = agent_field::<i64>(&db, "b", "pid").unwrap();

    let out = ctl(&sb, &["status"]);
    assert!(out.status.success(), "{}", text(&out));
    let s = text(&out);
    assert!(s.contains("2/3 agents running, 1 fatal"), "{s}");
    assert!(s.lines().any(|l| l.starts_with("flaky") && l.contains("fatal")), "{s}");

    let a_pid = agent_field::<i64>(&db, "a", "pid").unwrap() as i32;
    let out = ctl(&sb, &["stop", "a"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(text(&out).trim(), "stopped a");
    // The answer comes once the process is gone.
    assert!(!process_alive(a_pid));
    wait_state(&db, "a", "stopped");
    wait_until(LIMIT, "desired stopped", || desired(&db, "a").filter(|d| d == "stopped"));
    // No restart policy applies: still stopped after two more liveness ticks.
    crate::reload_config::two_liveness_ticks(&db);
    assert_eq!(state(&db, "a").as_deref(), Some("stopped"));
    // Both status commands say who stopped it, in the same words.
    let user = nix::unistd::User::from_uid(nix::unistd::getuid()).unwrap().unwrap().name;
    let stopped_by = format!("stopped by {user} (ctl)");
    let s = text(&ctl(&sb, &["status", "a"]));
    let says_stopped_by = |t: &str| t.lines().any(|l| l.starts_with("a ") && l.ends_with(&stopped_by));
    assert!(says_stopped_by(&s), "{s}");
    wait_until(LIMIT, "dashboard status names who stopped a", || {
        let out = sb.command(dashboard_bin()).arg("--db").arg(&db).arg("status").output().unwrap();
        says_stopped_by(&text(&out)).then_some(())
    });
    let json: serde_json::Value = serde_json::from_slice(&ctl(&sb, &["status", "--json"]).stdout).unwrap();
    assert_eq!(json["ok"], true);
    let states: Vec<(&str, &str)> = json["agents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["name"].as_str().unwrap(), a["state"].as_str().unwrap()))
        .collect();
    assert_eq!(states, [("a", "stopped"), ("b", "running"), ("flaky", "fatal")]);

    let out = ctl(&sb, &["start", "a", "b"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(text(&out).trim(), "started a; already running: b");
    wait_state(&db, "a", "running");
    wait_until(LIMIT, "desired running", || desired(&db, "a").filter(|d| d == "running"));
    assert_eq!(agent_field::<i64>(&db, "b", "pid"), Some(b_pid), "b was touched");
    let s = text(&ctl(&sb, &["status", "a"]));
    assert!(s.lines().any(|l| l.starts_with("a ") && !l.contains("stopped by")), "{s}");

    // start clears fatal.
    std::fs::write(sb.path().join("ok"), "").unwrap();
    let out = ctl(&sb, &["start", "flaky"]);
    assert!(out.status.success(), "{}", text(&out));
    wait_state(&db, "flaky", "running");

    let out = ctl(&sb, &["restart", "b"]);
    assert!(out.status.success(), "{}", text(&out));
    wait_state(&db, "b", "running");
    let new_b =
        wait_until(LIMIT, "b's new pid", || agent_field::<i64>(&db, "b", "pid").filter(|p| *p != b_pid));
    assert!(!process_alive(b_pid as i32));
    assert!(process_alive(new_b as i32));

    // Every action names the user who asked.
    let who = format!("user {user} (uid {}", nix::unistd::getuid());
    let events = rows(&db, "SELECT agent, kind, message FROM events WHERE kind LIKE 'ctl_%' ORDER BY id");
    let kinds: Vec<(&str, &str)> = events.iter().map(|r| (r[0].as_str(), r[1].as_str())).collect();
    assert_eq!(kinds, [("a", "ctl_stop"), ("a", "ctl_start"), ("flaky", "ctl_start"), ("b", "ctl_restart")]);
    assert!(events.iter().all(|r| r[2].contains(&who)), "{events:?}");
    let stopped = rows(&db, "SELECT message FROM events WHERE agent = 'a' AND kind = 'stopped'");
    assert!(stopped[0][0].contains(&who), "{stopped:?}");

    // Unknown and disabled names are usage errors listing the agents, and nothing happens.
    let out = ctl(&sb, &["stop", "nope"]);
    assert_eq!(out.status.code(), Some(64));
    assert!(text(&out).contains("no agent \"nope\"") && text(&out).contains("a, b, flaky"), "{}", text(&out));
}

#[test]
fn without_a_launcher_ctl_says_so_and_a_stale_socket_is_replaced() {
    let sb = Sandbox::new();
    sb.write_config("[[agent]]\nname = \"a\"\ncommand = \"sleep\"\nargs = [\"1000\"]\n");
    let out = ctl(&sb, &["status"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(text(&out).contains("no launcher is running"), "{}", text(&out));

    // A socket file whose listener is gone, as a crashed launcher leaves it.
    let socket = sb.path().join("state.db.sock");
    drop(std::os::unix::net::UnixListener::bind(&socket).unwrap());
    let out = ctl(&sb, &["stop", "a"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(text(&out).contains("left from one that is gone"), "{}", text(&out));

    let mut l = sb.launcher();
    let db = sb.db();
    wait_state(&db, "a", "running");
    let out = wait_until(LIMIT, "ctl answers", || Some(ctl(&sb, &["status"])).filter(|o| o.status.success()));
    assert!(text(&out).contains("1/1 agents running"));
    let mode = std::fs::metadata(&socket).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "socket mode {mode:o}");
    let mode = std::fs::metadata(&db).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "database mode {mode:o}");

    // A clean stop removes the socket.
    l.run.signal(nix::sys::signal::Signal::SIGTERM);
    assert_eq!(l.run.wait_exit(LIMIT).code(), Some(0));
    assert!(!socket.exists());
    assert_eq!(ctl(&sb, &["status"]).status.code(), Some(3));
}

#[test]
fn group_setting_opens_files_and_socket_to_the_group() {
    let sb = Sandbox::new();
    sb.write_config(
        "[launcher]\ngroup = true\n\n[[agent]]\nname = \"a\"\ncommand = \"sleep\"\nargs = [\"1000\"]\n",
    );
    let _l = sb.launcher();
    let db = sb.db();
    wait_state(&db, "a", "running");
    wait_until(LIMIT, "ctl answers", || Some(ctl(&sb, &["status"])).filter(|o| o.status.success()));
    for f in ["state.db", "state.db-wal", "state.db-shm", "state.db.sock"] {
        let mode = std::fs::metadata(sb.path().join(f)).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o660, "{f} has mode {mode:o}");
    }
    let mode = std::fs::metadata(sb.path().join("state.db.lock")).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "lock mode {mode:o}");
}

#[test]
fn a_client_of_another_user_is_refused_by_its_credentials() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("SKIPPED: needs root to run a client as another user");
        return;
    }
    let sb = Sandbox::new();
    sb.write_config("[[agent]]\nname = \"a\"\ncommand = \"sleep\"\nargs = [\"1000\"]\n");
    let _l = sb.launcher();
    let db = sb.db();
    wait_state(&db, "a", "running");
    let socket = sb.path().join("state.db.sock");
    wait_until(LIMIT, "socket", || socket.exists().then_some(()));
    // Loosen the file modes as a careless operator might: the credentials check still holds.
    std::fs::set_permissions(sb.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o666)).unwrap();
    use std::os::unix::process::CommandExt;
    let out = sb
        .command(launcher_bin())
        .arg("--db")
        .arg(&db)
        .args(["ctl", "stop", "a"])
        .uid(65534)
        .gid(65534)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("permission denied: user nobody (uid 65534"), "{}", text(&out));
    assert_eq!(state(&db, "a").as_deref(), Some("running"));
    let refused = wait_until(LIMIT, "ctl_refused event", || {
        Some(rows(&db, "SELECT severity, message FROM events WHERE kind = 'ctl_refused'"))
            .filter(|r| !r.is_empty())
    });
    assert_eq!(refused[0][0], "warning");
    assert!(refused[0][1].contains("uid 65534"), "{refused:?}");
}

#[test]
fn sigterm_while_a_ctl_stop_waits_out_a_stop_timeout_is_acted_on_at_once() {
    use nix::sys::signal::Signal;
    let sb = Sandbox::new();
    // Ignores the stop signal (and so does its `sleep`): a stop waits out the whole timeout.
    sb.script("stubborn.sh", "trap '' TERM\nwhile :; do sleep 1; done");
    sb.write_config(
        r#"
[[agent]]
name = "stubborn"
command = "./stubborn.sh"
stop_timeout = "1h"

[[agent]]
name = "plain"
command = "sleep"
args = ["1000"]
"#,
    );
    let mut l = sb.launcher();
    let db = sb.db();
    wait_state(&db, "stubborn", "running");
    wait_state(&db, "plain", "running");
    let plain = agent_field::<i64>(&db, "plain", "pid").unwrap() as i32;
    let stubborn = agent_field::<i64>(&db, "stubborn", "pid").unwrap() as i32;

    let mut stop = sb.command(launcher_bin());
    stop.arg("--db").arg(&db).arg("ctl").arg("stop").arg("stubborn");
    let mut stop = Running::spawn(stop, sb.path(), "ctl-stop");
    wait_state(&db, "stubborn", "stopping");

    // The launcher does not wait for the operator's stop to end (an hour) before it stops:
    // the other agent goes, and the operator hears that the launcher is shutting down.
    l.run.signal(Signal::SIGTERM);
    wait_until(LIMIT, "plain stopped", || (!process_alive(plain)).then_some(()));
    let answered = stop.wait_exit(LIMIT);
    assert_eq!(answered.code(), Some(1));
    let said = sb.read("ctl-stop.stderr") + &sb.read("ctl-stop.stdout");
    assert!(said.contains("shutting down"), "{said}");
    assert!(process_alive(stubborn), "stubborn was killed before its stop_timeout");

    // Still listening while it waits for the stubborn agent: a second signal kills it.
    l.run.signal(Signal::SIGTERM);
    assert_eq!(l.run.wait_exit(LIMIT).code(), Some(130));
    assert!(!process_alive(stubborn));
    let session = rows(&db, "SELECT exit_reason FROM launcher_sessions");
    assert_eq!(session[0][0], "killed agents after a second SIGTERM");
}

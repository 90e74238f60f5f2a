//! Supervision the launcher never loses: a closed stderr neither stops agents nor their
//! restarts, a panic in a supervisor turns the agent `fatal` with a `critical` event (never
//! "running" with nothing watching it), and the restart count is kept across an operator's
//! `ctl start` and `ctl restart`.

use crate::common::*;
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::process::Stdio;

fn restarts(db: &std::path::Path, agent: &str) -> i64 {
    agent_field::<i64>(db, agent, "restarts").unwrap_or(-1)
}

fn pid_in(sb: &Sandbox, file: &str) -> i32 {
    wait_until(LIMIT, file, || sb.read(file).trim().parse::<i32>().ok())
}

/// A crash loop that logs a few lines a cycle, beside an agent that logs nothing.
const LOOP_AND_STEADY: &str = r#"
[[agent]]
name = "loop"
command = "false"
restart = "always"
backoff = { initial = "20ms", max = "20ms" }
max_restarts = 100000
restart_window = "1s"

[[agent]]
name = "steady"
command = "sleep"
args = ["1000"]
"#;

/// The launcher at debug level with its stderr a pipe to the test.
fn launcher_with_piped_stderr(sb: &Sandbox) -> (Launcher, std::process::ChildStderr) {
    let mut cmd = sb.command(launcher_bin());
    cmd.arg("--db").arg(sb.db()).arg("--config").arg(sb.config()).env("RUST_LOG", "debug");
    cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped()).process_group(0);
    let mut child = cmd.spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    (Launcher { run: Running { child } }, stderr)
}

/// With its log going nowhere, the launcher still restarts the loop, leaves the steady agent
/// alone and answers `ctl restart`.
fn supervision_goes_on(sb: &Sandbox) {
    let db = sb.db();
    wait_state(&db, "steady", "running");
    let steady = agent_field::<i64>(&db, "steady", "pid").unwrap() as i32;
    // Every crash and restart is logged: the loop goes on all the same.
    let before = restarts(&db, "loop");
    wait_until(LIMIT, "loop to keep being restarted", || {
        (restarts(&db, "loop") >= before + 50).then_some(())
    });
    assert!(process_alive(steady), "the steady agent (pid {steady}) was killed");
    assert_eq!(agent_field::<i64>(&db, "steady", "pid"), Some(i64::from(steady)));

    let out = ctl(sb, &["restart", "steady"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(text(&out).trim(), "restarted steady");
    wait_state(&db, "steady", "running");
    let new = agent_field::<i64>(&db, "steady", "pid").unwrap() as i32;
    assert_ne!(new, steady);
    assert!(process_alive(new));
    let out = ctl(sb, &["status"]);
    assert!(out.status.success(), "{}", text(&out));
}

#[test]
fn a_closed_stderr_stops_no_agent_and_no_restart() {
    let sb = Sandbox::new();
    sb.write_config(LOOP_AND_STEADY);
    // As `agentvisor-launcher run 2>&1 | head -2`: a reader that goes away after two lines.
    let (_l, stderr) = launcher_with_piped_stderr(&sb);
    let mut reader = BufReader::new(stderr);
    for _ in 0..2 {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
    }
    drop(reader);
    supervision_goes_on(&sb);
}

#[test]
fn a_stderr_nobody_reads_does_not_block_supervision() {
    use std::os::fd::AsFd;
    let sb = Sandbox::new();
    sb.write_config(LOOP_AND_STEADY);
    // Open but never read, and as small as a pipe gets: full after a few crash cycles.
    let (_l, stderr) = launcher_with_piped_stderr(&sb);
    nix::fcntl::fcntl(stderr.as_fd(), nix::fcntl::FcntlArg::F_SETPIPE_SZ(4096)).unwrap();
    supervision_goes_on(&sb);
    drop(stderr);
}

#[test]
fn a_panic_in_supervision_marks_the_agent_fatal_with_a_critical_event() {
    // The panic is injected through a hook that only debug builds have (launcher/src/supervisor/fault.rs):
    // no input is known to make a supervisor panic.
    if !cfg!(debug_assertions) {
        eprintln!("skipped: the fault-injection hook exists in debug builds only");
        return;
    }
    dashboard_bin();
    let sb = Sandbox::new();
    // Leaves a second process in its group, then reports ready: the supervisor panics then.
    sb.script(
        "victim.sh",
        "sleep 1000 &\necho $! > child.pid\necho $$ > main.pid\necho READY=1 >&3\nexec sleep 1000",
    );
    sb.write_config(
        r#"
[[agent]]
name = "victim"
command = "./victim.sh"
ready = "notify"

[[agent]]
name = "bystander"
command = "sleep"
args = ["1000"]
"#,
    );
    let mut c = sb.command(launcher_bin());
    c.arg("--db").arg(sb.db()).arg("--config").arg(sb.config()).env("RUST_LOG", "debug");
    c.env("AGENTVISOR_FAULT_PANIC_ON_READY", "victim");
    let _l = Launcher { run: Running::spawn(c, sb.path(), "launcher") };
    let db = sb.db();
    wait_state(&db, "bystander", "running");
    let bystander = agent_field::<i64>(&db, "bystander", "pid").unwrap() as i32;
    let (main, grandchild) = (pid_in(&sb, "main.pid"), pid_in(&sb, "child.pid"));

    wait_state(&db, "victim", "fatal");
    let error = agent_field::<String>(&db, "victim", "last_error").unwrap_or_default();
    assert!(error.contains("supervisor task panicked: fault injected"), "{error}");
    assert!(error.contains("ctl restart"), "{error}");
    assert_eq!(agent_field::<i64>(&db, "victim", "pid"), None);
    let events =
        rows(&db, "SELECT severity, message FROM events WHERE kind = 'supervisor_lost' AND agent = 'victim'");
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0][0], "critical");
    // Its processes, the grandchild too, did not outlive their supervisor.
    wait_until(LIMIT, "the victim's processes to die", || {
        (!process_alive(main) && !process_alive(grandchild)).then_some(())
    });
    assert!(process_alive(bystander));

    // Every view tells: the dashboard's verdict and exit code, and ctl status.
    let out = sb.command(dashboard_bin()).arg("--db").arg(&db).args(["status", "--json"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let victim = status["agents"].as_array().unwrap().iter().find(|a| a["name"] == "victim").unwrap();
    assert_eq!(victim["state"], "fatal");
    assert_eq!(victim["in_trouble"], true);
    let out = ctl(&sb, &["status"]);
    let s = text(&out);
    assert!(s.contains("1/2 agents running, 1 fatal"), "{s}");
    assert!(
        s.lines().any(|l| l.starts_with("victim") && l.contains("fatal") && l.contains("panicked")),
        "{s}"
    );

    // An operator brings it back with a new supervisor.
    let out = ctl(&sb, &["restart", "victim"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(text(&out).trim(), "restarted victim");
    wait_until(LIMIT, "victim running and ready again", || {
        let row = rows(&db, "SELECT state, ready FROM agent_state WHERE agent = 'victim'");
        (row.first()? == &["running", "1"]).then_some(())
    });
    let pid = agent_field::<i64>(&db, "victim", "pid").unwrap() as i32;
    assert!(process_alive(pid));
}

#[test]
fn the_restart_count_survives_ctl_start_and_restart() {
    let sb = Sandbox::new();
    // Crashes until the file `ok` exists.
    sb.script("flaky.sh", "[ -e ok ] || exit 1\nexec sleep 1000");
    sb.write_config(
        r#"
[[agent]]
name = "flaky"
command = "./flaky.sh"
backoff = { initial = "10ms", max = "10ms" }
max_restarts = 5
restart_window = "10m"
"#,
    );
    let _l = sb.launcher();
    let db = sb.db();
    wait_state(&db, "flaky", "fatal");
    assert_eq!(restarts(&db, "flaky"), 5);

    // A start gives it a new crash-loop allowance; the count goes on from 5.
    let out = ctl(&sb, &["start", "flaky"]);
    assert!(out.status.success(), "{}", text(&out));
    wait_until(LIMIT, "ten restarts and fatal again", || {
        let row = rows(&db, "SELECT state, restarts FROM agent_state WHERE agent = 'flaky'");
        (row.first()? == &["fatal", "10"]).then_some(())
    });

    // An operator's restart is not a restart by policy: the count stays, and is shown.
    std::fs::write(sb.path().join("ok"), "").unwrap();
    let out = ctl(&sb, &["restart", "flaky"]);
    assert!(out.status.success(), "{}", text(&out));
    wait_state(&db, "flaky", "running");
    assert_eq!(restarts(&db, "flaky"), 10);
    let s = text(&ctl(&sb, &["status", "flaky"]));
    assert_eq!(status_cell(&s, "flaky", "RESTARTS").as_deref(), Some("10"), "{s}");
}

//! Starting and stopping: dependency order, graceful shutdown that leaves nothing behind,
//! surviving a SIGKILL of the launcher, and one launcher per database.

use crate::common::*;
use nix::sys::signal::Signal;
use std::collections::BTreeSet;

/// An agent that logs its start and its stop signal to `order`, keeps a child of its own
/// running in its process group, and heartbeats.
const CHAIN_AGENT: &str = r#"
trap 'echo "stop $AGENTVISOR_AGENT" >> order; exit 0' TERM
[ -n "$SLOW" ] && sleep 0.3
echo "start $AGENTVISOR_AGENT" >> order
sleep 1000 &
echo READY=1 >&3
while :; do sleep 0.05; done
"#;

#[test]
fn depends_on_orders_start_and_reverse_stop_and_shutdown_leaves_nothing() {
    let sb = Sandbox::new();
    sb.script("agent.sh", CHAIN_AGENT);
    sb.script("stubborn.sh", "trap '' TERM\nsleep 1000 &\nwhile :; do sleep 0.05; done");
    sb.write_config(
        r#"
[[agent]]
name = "web"
command = "./agent.sh"
ready = "notify"
depends_on = ["api"]

[[agent]]
name = "api"
command = "./agent.sh"
ready = "notify"
depends_on = ["store"]

[[agent]]
name = "store"
command = "./agent.sh"
ready = "notify"
env = { SLOW = "1" }

[[agent]]
name = "stubborn"
command = "./stubborn.sh"
stop_timeout = "300ms"
"#,
    );
    let mut l = sb.launcher();
    let db = sb.db();
    wait_until(LIMIT, "all running", || {
        query_opt::<i64>(&db, "SELECT count(*) FROM agent_state WHERE state = 'running'").filter(|n| *n == 4)
    });
    wait_until(LIMIT, "web started", || Some(sb.read("order")).filter(|o| o.lines().count() == 3));
    assert_eq!(sb.read("order"), "start store\nstart api\nstart web\n");
    let groups: BTreeSet<i32> =
        rows(&db, "SELECT pgid FROM agent_state").into_iter().map(|r| r[0].parse().unwrap()).collect();
    assert_eq!(groups.len(), 4);
    // Every group has its main process and its background child.
    wait_until(LIMIT, "children running", || {
        groups.iter().all(|g| group_members(*g).len() >= 2).then_some(())
    });

    l.run.signal(Signal::SIGTERM);
    assert_eq!(l.run.wait_exit(LIMIT).code(), Some(0), "{}", sb.stderr_of("launcher"));
    assert_eq!(sb.read("order"), "start store\nstart api\nstart web\nstop web\nstop api\nstop store\n");
    for g in &groups {
        assert_eq!(group_members(*g), Vec::<i32>::new(), "group {g} outlived the launcher");
    }
    assert!(!sb.path().join("state.db.run").exists(), "the notify sockets' directory was left behind");
    let states = rows(&db, "SELECT agent, state, pid IS NULL FROM agent_state ORDER BY agent");
    assert!(states.iter().all(|r| r[1] == "stopped" && r[2] == "1"), "{states:?}");
    assert!(event_kinds(&db, "stubborn").contains(&"stop_timeout".to_owned()));
    let session = &rows(&db, "SELECT stopped_ms IS NOT NULL, exit_reason FROM launcher_sessions")[0];
    assert_eq!(session, &["1", "stopped by SIGTERM"]);
    let launcher_events: Vec<String> = rows(&db, "SELECT kind FROM events WHERE agent IS NULL ORDER BY id")
        .into_iter()
        .map(|r| r[0].clone())
        .collect();
    assert_eq!(launcher_events, ["launcher_started", "launcher_stopping", "launcher_stopped"]);
}

#[test]
fn after_a_sigkill_agents_die_and_the_next_launcher_cleans_up() {
    let sb = Sandbox::new();
    // `wait` rather than a loop of short sleeps, so the group holds exactly these two.
    sb.script("agent.sh", "sleep 1000 &\necho READY=1 >&3\nwait");
    sb.write_config(
        r#"
[[agent]]
name = "a"
command = "./agent.sh"
ready = "notify"

[[agent]]
name = "b"
command = "./agent.sh"
ready = "notify"
"#,
    );
    let db = sb.db();
    let mut first = sb.launcher_as("first");
    let agents = wait_until(LIMIT, "agents running", || {
        let r = rows(&db, "SELECT pid, pgid FROM agent_state WHERE state = 'running'");
        (r.len() == 2).then_some(r)
    });
    let agents: Vec<(i32, i32)> =
        agents.iter().map(|r| (r[0].parse().unwrap(), r[1].parse().unwrap())).collect();
    wait_until(LIMIT, "children running", || {
        agents.iter().all(|(_, g)| group_members(*g).len() >= 2).then_some(())
    });

    first.run.signal(Signal::SIGKILL);
    first.run.wait_exit(LIMIT);
    // The parent-death signal takes every agent's main process with the launcher.
    wait_until(LIMIT, "main processes gone", || {
        agents.iter().all(|(pid, _)| !process_alive(*pid)).then_some(())
    });
    // Their background children are still there, until the next launcher stops them.
    let leftovers: Vec<i32> = agents.iter().flat_map(|(_, g)| group_members(*g)).collect();
    assert_eq!(leftovers.len(), 2, "expected one leftover per group");

    let _second = sb.launcher_as("second");
    wait_until(LIMIT, "leftovers stopped", || leftovers.iter().all(|p| !process_alive(*p)).then_some(()));
    let old = wait_until(LIMIT, "stale session marked", || {
        rows(&db, "SELECT exit_reason, stopped_ms IS NOT NULL FROM launcher_sessions WHERE id = 1")
            .pop()
            .filter(|r| r[0] == "crashed")
    });
    assert_eq!(old[1], "1");
    let msg = query_opt::<String>(
        &db,
        "SELECT message FROM events WHERE kind = 'launcher_crashed' AND severity = 'critical'",
    )
    .unwrap();
    assert!(msg.contains("killed leftovers of a (1 process), b (1 process)"), "{msg}");
    wait_until(LIMIT, "agents running again", || {
        query_opt::<i64>(&db, "SELECT count(*) FROM agent_state WHERE state = 'running' AND session_id = 2")
            .filter(|n| *n == 2)
    });
}

#[test]
fn a_second_launcher_is_refused_naming_the_first() {
    let sb = Sandbox::new();
    sb.script("agent.sh", "exec sleep 1000");
    sb.write_config("[[agent]]\nname = \"a\"\ncommand = \"./agent.sh\"\n");
    let db = sb.db();
    let first = sb.launcher_as("first");
    wait_until(LIMIT, "first session", || query_opt::<i64>(&db, "SELECT pid FROM launcher_sessions"));
    let mut second = sb.launcher_as("second");
    let status = second.run.wait_exit(LIMIT);
    assert_eq!(status.code(), Some(1));
    let err = sb.stderr_of("second");
    assert!(err.contains(&format!("launcher PID {} is already running", first.pid())), "{err}");
    assert_eq!(query_opt::<i64>(&db, "SELECT count(*) FROM launcher_sessions"), Some(1));
    // Nothing for other users: the database and the lock file.
    use std::os::unix::fs::PermissionsExt;
    for f in [db.clone(), sb.path().join("state.db.lock")] {
        let mode = std::fs::metadata(&f).unwrap().permissions().mode();
        assert_eq!(mode & 0o007, 0, "{} has mode {mode:o}", f.display());
    }
}

/// Start time of a process in clock ticks since boot (`/proc/PID/stat` field 22).
fn start_ticks(pid: i32) -> i64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let (_, rest) = stat.rsplit_once(')').unwrap();
    // `rest` starts at field 3 (state), so field 22 is its 20th.
    rest.split_whitespace().nth(19).unwrap().parse().unwrap()
}

#[test]
fn recovery_leaves_a_process_that_reused_a_recorded_pid_alone() {
    let sb = Sandbox::new();
    sb.script("agent.sh", "exec sleep 1000");
    sb.write_config("[[agent]]\nname = \"a\"\ncommand = \"./agent.sh\"\n");
    let db = sb.db();
    let mut first = sb.launcher_as("first");
    wait_state(&db, "a", "running");
    first.run.signal(Signal::SIGKILL);
    first.run.wait_exit(LIMIT);

    // An unrelated process now has the PID (and process group) the dead session recorded,
    // but started at another time (later than the recorded one, as a reused PID would be).
    let mut cmd = std::process::Command::new("sleep");
    cmd.arg("1000");
    let decoy = Running::spawn(cmd, sb.path(), "decoy");
    let c = rusqlite::Connection::open(&db).unwrap();
    c.execute(
        "UPDATE agent_state SET pid = ?1, pgid = ?1, pid_start_ticks = ?2 WHERE agent = 'a'",
        (decoy.pid(), start_ticks(decoy.pid()) - 1),
    )
    .unwrap();
    drop(c);

    let _second = sb.launcher_as("second");
    let msg = wait_until(LIMIT, "stale session marked", || {
        query_opt::<String>(&db, "SELECT message FROM events WHERE kind = 'launcher_crashed'")
    });
    assert!(msg.contains("no agent process was left"), "{msg}");
    assert!(process_alive(decoy.pid()), "the launcher killed a process that reused a recorded PID");
}

#[test]
fn stopping_gives_the_whole_group_its_stop_timeout() {
    let sb = Sandbox::new();
    // A shell wrapper that dies at once on SIGTERM, and the program it started, which needs a
    // moment to save its work after the signal.
    sb.script(
        "worker.sh",
        "trap 'sleep 0.3; echo saved >> saved; exit 0' TERM\nwhile :; do sleep 0.05; done",
    );
    sb.script("wrapper.sh", "./worker.sh");
    sb.write_config("[[agent]]\nname = \"wrapped\"\ncommand = \"./wrapper.sh\"\nstop_timeout = \"5s\"\n");
    let mut l = sb.launcher();
    let db = sb.db();
    let pgid = wait_until(LIMIT, "running", || agent_field::<i64>(&db, "wrapped", "pgid")) as i32;
    wait_until(LIMIT, "worker started", || (group_members(pgid).len() >= 3).then_some(()));
    l.run.signal(Signal::SIGTERM);
    assert_eq!(l.run.wait_exit(LIMIT).code(), Some(0));
    assert_eq!(sb.read("saved"), "saved\n", "the worker was killed before it could save");
    assert_eq!(group_members(pgid), Vec::<i32>::new());
    assert!(!event_kinds(&db, "wrapped").contains(&"stop_timeout".to_owned()));
}

/// The soft and hard limits on open descriptors of a process, from `/proc/<pid>/limits`.
fn fd_limits(pid: &str) -> Option<(u64, u64)> {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    let mut values = line.split_whitespace().skip(3).map(|v| v.parse().ok());
    Some((values.next()??, values.next()??))
}

/// Started with systemd's default soft limit (here 512 of a higher hard limit), the launcher
/// raises its own to the hard limit, and its agents get the original one back.
#[test]
fn the_launcher_raises_its_descriptor_limit_but_not_its_agents() {
    let sb = Sandbox::new();
    sb.write_config(
        r#"
[[agent]]
name = "limits"
command = "sh"
args = ["-c", "echo soft=$(ulimit -Sn); exec sleep 1000"]
"#,
    );
    let mut c = std::process::Command::new("sh");
    c.current_dir(sb.path())
        .arg("-c")
        .arg(r#"ulimit -Sn 512 && exec "$0" "$@""#)
        .arg(launcher_bin())
        .arg("--db")
        .arg(sb.db())
        .arg("--config")
        .arg(sb.config());
    let l = Launcher { run: Running::spawn(c, sb.path(), "launcher") };
    let db = sb.db();
    let line = wait_until(LIMIT, "the agent's limit", || log_lines(&db, "limits").into_iter().next());
    assert_eq!(line, "soft=512");
    let (_, hard) = fd_limits("self").unwrap();
    let (soft, _) = fd_limits(&l.pid().to_string()).unwrap();
    assert_eq!(soft, hard, "the launcher's own soft limit");
}

/// Agents start with a clean signal state: nothing blocked, and SIGPIPE not ignored (the
/// launcher, a Rust program, ignores it; a shell pipeline in an agent relies on it).
#[test]
fn agents_start_with_no_blocked_signals_and_sigpipe_at_its_default() {
    let sb = Sandbox::new();
    sb.write_config(
        r#"
[[agent]]
name = "signals"
command = "sh"
args = ["-c", "grep -E '^Sig(Blk|Ign):' /proc/self/status; exec sleep 1000"]
"#,
    );
    let _l = sb.launcher();
    let db = sb.db();
    let lines = wait_until(LIMIT, "the agent's signal state", || {
        Some(log_lines(&db, "signals")).filter(|lines| lines.len() == 2)
    });
    let mask = |name: &str| -> u64 {
        let line = lines.iter().find(|l| l.starts_with(name)).unwrap();
        u64::from_str_radix(line.split_whitespace().nth(1).unwrap(), 16).unwrap()
    };
    assert_eq!(mask("SigBlk:"), 0, "{lines:?}");
    let sigpipe = 1u64 << (Signal::SIGPIPE as i32 - 1);
    assert_eq!(mask("SigIgn:") & sigpipe, 0, "{lines:?}");
}

/// A script without `#!` runs with `/bin/sh`, as `execvp` (and so every shell) runs it.
#[test]
fn a_script_without_an_interpreter_line_runs_with_sh() {
    let sb = Sandbox::new();
    sb.executable("plain.sh", "echo \"plain script, argument $1\"\nexec sleep 1000\n");
    sb.write_config(
        r#"
[[agent]]
name = "plain"
command = "./plain.sh"
args = ["one"]
"#,
    );
    let _l = sb.launcher();
    let db = sb.db();
    let line = wait_until(LIMIT, "the script's output", || log_lines(&db, "plain").into_iter().next());
    assert_eq!(line, "plain script, argument one");
}

//! A config that passes `check` runs: every duration and count has a limit, an agent whose
//! program or working directory is missing is a located error (at `check`, at start, and at
//! reload, where the running config stays in force), and the config file is read only if it
//! is a regular file, off the launcher's runtime, so a FIFO or a device cannot freeze it.

use crate::common::*;
use crate::reload_config::two_liveness_ticks;
use std::ffi::OsStr;
use std::path::Path;
use std::time::Duration;

/// Bounds a hang only: an unfixed launcher that runs on instead of refusing is a failure.
const LIMIT: Duration = Duration::from_secs(45);

fn agent(name: &str, extra: &str) -> String {
    format!("[[agent]]\nname = \"{name}\"\ncommand = \"sleep\"\nargs = [\"1000\"]\n{extra}\n")
}

/// Runs the launcher in the sandbox with `args` and waits for it to exit; its exit code,
/// stdout and stderr.
fn launcher_exit(sb: &Sandbox, label: &str, args: &[&OsStr]) -> (Option<i32>, String, String) {
    let mut cmd = sb.command(launcher_bin());
    cmd.args(args);
    let mut run = Running::spawn(cmd, sb.path(), label);
    let code = run.wait_exit(LIMIT).code();
    (code, sb.read(&format!("{label}.stdout")), sb.stderr_of(label))
}

/// `check` and `run` on the sandbox's config both exit 2 with `want` in their message, and
/// `run` starts nothing (it does not even create the database).
fn refused(sb: &Sandbox, label: &str, want: &str) {
    let (config, db) = (sb.config(), sb.db());
    for sub in ["check", "run"] {
        let args =
            [OsStr::new(sub), "--config".as_ref(), config.as_os_str(), "--db".as_ref(), db.as_os_str()];
        let (code, _, stderr) = launcher_exit(sb, &format!("{label}-{sub}"), &args);
        assert_eq!(code, Some(2), "{label}: {sub} exited {code:?}: {stderr}");
        assert!(
            stderr.starts_with("error: ") && stderr.contains(want),
            "{label}: {sub}\n got: {stderr}\nwant: {want}"
        );
        assert!(!sb.db().exists(), "{label}: {sub} created the database");
    }
}

#[test]
fn durations_and_counts_beyond_their_limit_are_refused() {
    let huge = "\"500000000000y\"";
    let cases = [
        (
            agent("a", &format!("heartbeat_timeout = {huge}")),
            "agent \"a\", field `heartbeat_timeout`: must be at most 365d",
        ),
        (
            agent("a", &format!("ready = \"notify\"\nready_timeout = {huge}")),
            "field `ready_timeout`: must be at most 365d",
        ),
        (agent("a", &format!("stop_timeout = {huge}")), "field `stop_timeout`: must be at most 365d"),
        (agent("a", &format!("restart_window = {huge}")), "field `restart_window`: must be at most 365d"),
        (agent("a", &format!("backoff = {{ max = {huge} }}")), "field `backoff.max`: must be at most 365d"),
        (
            agent("a", &format!("backoff = {{ initial = {huge}, max = {huge} }}")),
            "field `backoff.initial`: must be at most 365d",
        ),
        (
            agent("a", &format!("backoff = {{ reset_after = {huge} }}")),
            "field `backoff.reset_after`: must be at most 365d",
        ),
        (
            format!("[launcher]\nsample_interval = {huge}\n"),
            "field `launcher.sample_interval`: must be at most 1h",
        ),
        (
            format!("[launcher]\nretention = {{ events = {huge} }}\n"),
            "field `launcher.retention.events`: must be at most 3650d",
        ),
        (
            format!("[launcher]\nretention = {{ logs = {huge} }}\n"),
            "field `launcher.retention.logs`: must be at most 3650d",
        ),
        (
            format!("[launcher]\nretention = {{ raw = {huge}, minute = {huge}, hour = {huge} }}\n"),
            "field `launcher.retention.raw`: must be at most 3650d",
        ),
        (
            "[launcher]\nlog_lines = 9223372036854775808\n".into(),
            "agents.toml:2:13: field `launcher.log_lines`: must be at most 1000000000",
        ),
        (
            "[launcher]\nlog_line_bytes = 4294967296\n".into(),
            "field `launcher.log_line_bytes`: must be at most 1048576",
        ),
        ("[launcher]\nlog_rate = 4294967295\n".into(), "field `launcher.log_rate`: must be at most 1000000"),
        (
            "[launcher]\nretention = { events_max = 9223372036854775807 }\n".into(),
            "field `launcher.retention.events_max`: must be at most 1000000000",
        ),
        (agent("a", "max_restarts = 4294967295"), "field `max_restarts`: must be at most 1000000"),
    ];
    for (i, (toml, want)) in cases.iter().enumerate() {
        let sb = Sandbox::new();
        sb.write_config(toml);
        refused(&sb, &format!("case{i}"), want);
    }
}

#[test]
fn agents_that_cannot_start_are_refused_with_a_located_error() {
    let sb = Sandbox::new();
    std::fs::write(sb.path().join("plain.sh"), "#!/bin/sh\nexec sleep 1000\n").unwrap();
    std::fs::create_dir(sb.path().join("dir")).unwrap();
    let dir = sb.path().display().to_string();
    let ok = agent("ok", "");
    let cases = [
        (
            "[[agent]]\nname = \"a\"\ncommand = \"agentvisor-no-such-program\"\n".to_owned(),
            "agents.toml:13:11: agent \"a\", field `command`: no executable \"agentvisor-no-such-program\" in any directory of PATH (".to_owned(),
        ),
        (
            "[[agent]]\nname = \"a\"\ncommand = \"sleep\"\nenv = { PATH = \"/nonexistent\" }\n".to_owned(),
            "agents.toml:13:11: agent \"a\", field `command`: no executable \"sleep\" in any directory of PATH (/nonexistent)".to_owned(),
        ),
        (
            "[[agent]]\nname = \"a\"\ncommand = \"./plain.sh\"\n".to_owned(),
            format!("agents.toml:13:11: agent \"a\", field `command`: program {dir}/./plain.sh is not executable"),
        ),
        (
            "[[agent]]\nname = \"a\"\ncommand = \"./dir\"\n".to_owned(),
            format!("agents.toml:13:11: agent \"a\", field `command`: program {dir}/./dir is a directory"),
        ),
        (
            "[[agent]]\nname = \"a\"\ncommand = \"sleep\"\nworking_dir = \"gone\"\n".to_owned(),
            format!("agents.toml:14:15: agent \"a\", field `working_dir`: working directory {dir}/gone does not exist"),
        ),
        (
            "[[agent]]\nname = \"a\"\ncommand = \"sleep\"\nworking_dir = \"plain.sh\"\n".to_owned(),
            format!("agents.toml:14:15: agent \"a\", field `working_dir`: working directory {dir}/plain.sh is not a directory"),
        ),
    ];
    // After a good agent, so that "starts nothing" covers the agents before the bad one.
    let pad = "\n".repeat(10 - ok.lines().count());
    for (i, (bad, want)) in cases.iter().enumerate() {
        sb.write_config(&format!("{ok}{pad}{bad}"));
        refused(&sb, &format!("case{i}"), want);
    }
    // A disabled agent is checked when it is enabled, not before.
    sb.write_config(&format!(
        "{ok}[[agent]]\nname = \"a\"\ncommand = \"agentvisor-no-such-program\"\nenabled = false\n"
    ));
    let config = sb.config();
    let (code, out, err) =
        launcher_exit(&sb, "disabled", &["check".as_ref(), "--config".as_ref(), config.as_os_str()]);
    assert_eq!(code, Some(0), "{out}{err}");
}

/// `ctl` with its own deadline (the client itself has none): exit code and all it printed.
fn ctl_within(sb: &Sandbox, label: &str, args: &[&str]) -> (Option<i32>, String) {
    let db = sb.db();
    let mut a: Vec<&OsStr> = vec!["--db".as_ref(), db.as_os_str(), "ctl".as_ref()];
    a.extend(args.iter().map(OsStr::new));
    let (code, out, err) = launcher_exit(sb, label, &a);
    (code, format!("{out}{err}"))
}

#[test]
fn a_fifo_as_config_is_refused_at_reload_and_the_launcher_keeps_running() {
    let sb = Sandbox::new();
    sb.write_config(&agent("a", ""));
    let l = sb.launcher();
    let db = sb.db();
    let pid = wait_until(LIMIT, "a running", || {
        agent_field::<String>(&db, "a", "state")
            .filter(|s| s == "running")
            .and_then(|_| agent_field::<i64>(&db, "a", "pid"))
    });
    // Replaced by a FIFO nobody writes to: the file watcher sees it and reloads.
    std::fs::remove_file(sb.config()).unwrap();
    nix::unistd::mkfifo(&sb.config(), nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
    let (code, said) = ctl_within(&sb, "reload", &["reload"]);
    assert_eq!(code, Some(1), "{said}");
    assert!(
        said.contains("the running config stays in force")
            && said.contains("agents.toml: cannot read the config file: it is a FIFO, not a regular file"),
        "{said}"
    );
    let (code, said) = ctl_within(&sb, "status", &["status"]);
    assert_eq!(code, Some(0), "{said}");
    assert!(said.contains("1/1 agents running"), "{said}");
    // SIGHUP asks for the same reload.
    let before = rows(&db, "SELECT id FROM events WHERE kind = 'config_invalid'").len();
    l.run.signal(nix::sys::signal::Signal::SIGHUP);
    wait_until(LIMIT, "the SIGHUP reload refused", || {
        (rows(&db, "SELECT id FROM events WHERE kind = 'config_invalid'").len() > before).then_some(())
    });
    let (code, said) = ctl_within(&sb, "status2", &["status"]);
    assert_eq!(code, Some(0), "{said}");
    // The launcher kept its session alive and the agent was never restarted.
    two_liveness_ticks(&db);
    assert_eq!(agent_field::<i64>(&db, "a", "pid"), Some(pid));
    assert!(process_alive(pid as i32));
    let kinds = event_kinds(&db, "a");
    assert!(
        kinds.iter().filter(|k| *k == "started").count() == 1 && !kinds.contains(&"stopping".into()),
        "{kinds:?}"
    );
    let events = rows(&db, "SELECT message FROM events WHERE kind = 'config_invalid'");
    assert!(events.iter().all(|e| e[0].contains("it is a FIFO, not a regular file")), "{events:?}");
}

#[test]
fn dev_zero_as_config_is_an_error_at_start() {
    let sb = Sandbox::new();
    std::os::unix::fs::symlink("/dev/zero", sb.config()).unwrap();
    // A launcher that reads /dev/zero into memory is stopped by the limit, not the machine.
    let launcher = launcher_bin().display().to_string();
    for sub in ["check", "run"] {
        let mut cmd = sb.command(Path::new("/bin/sh"));
        cmd.args([
            "-c",
            &format!("ulimit -v 4000000; exec \"$0\" {sub} --config agents.toml --db state.db"),
            &launcher,
        ]);
        let label = format!("zero-{sub}");
        let mut run = Running::spawn(cmd, sb.path(), &label);
        let status = run.wait_exit(LIMIT);
        let stderr = sb.stderr_of(&label);
        assert_eq!(status.code(), Some(2), "{sub}: {status:?} {stderr}");
        let want =
            "error: agents.toml: cannot read the config file: it is a character device, not a regular file";
        assert!(stderr.starts_with(want), "{sub}: {stderr}");
        assert!(!sb.db().exists());
    }
}

#[test]
fn a_working_dir_removed_after_start_is_named_when_the_agent_cannot_restart() {
    let sb = Sandbox::new();
    let work = sb.path().join("work");
    std::fs::create_dir(&work).unwrap();
    sb.write_config(&agent(
        "a",
        "working_dir = \"work\"\nrestart = \"always\"\nbackoff = { initial = \"100ms\" }",
    ));
    let _l = sb.launcher();
    let db = sb.db();
    let pid = wait_until(LIMIT, "a running", || {
        agent_field::<String>(&db, "a", "state")
            .filter(|s| s == "running")
            .and_then(|_| agent_field::<i64>(&db, "a", "pid"))
    });
    std::fs::remove_dir(&work).unwrap();
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGKILL)
        .unwrap();
    let message = wait_until(LIMIT, "spawn_failed event", || {
        rows(&db, "SELECT message FROM events WHERE agent = 'a' AND kind = 'spawn_failed'")
            .first()
            .map(|r| r[0].clone())
    });
    let want = format!("cannot start sleep: working directory {} does not exist", work.display());
    assert_eq!(message, want);
    let last_error = wait_until(LIMIT, "last error", || agent_field::<String>(&db, "a", "last_error"));
    assert_eq!(last_error, want);
}

/// `check | head -0` and a `ctl` whose output nobody reads: a closed stdout or stderr loses the
/// text, never turns into a panic (exit code 101) instead of the command's own answer.
#[test]
fn check_and_ctl_answer_with_their_exit_code_into_closed_pipes() {
    use std::process::Stdio;
    let sb = Sandbox::new();
    sb.write_config(&agent("a", ""));
    let closed = || {
        let (read, write) = nix::unistd::pipe().unwrap();
        drop(read);
        Stdio::from(write)
    };
    let (config, db) = (sb.config(), sb.db());
    let status = sb
        .command(launcher_bin())
        .args(["check", "--config"])
        .arg(&config)
        .arg("--db")
        .arg(&db)
        .stdout(closed())
        .stderr(closed())
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(0), "check into a closed pipe: {status:?}");
    sb.write_config("[[agent]]\nname = \"a\"\ncommand = \"sleep\"\nrestart = \"sometimes\"\n");
    let status = sb
        .command(launcher_bin())
        .arg("check")
        .arg("--config")
        .arg(&config)
        .stderr(closed())
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(2), "a bad config into a closed stderr: {status:?}");
    // No launcher runs: ctl says so on a closed stderr, with its own exit code (3).
    let status = sb
        .command(launcher_bin())
        .args(["ctl", "status", "--db"])
        .arg(&db)
        .stderr(closed())
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(3), "ctl status into a closed stderr: {status:?}");
}

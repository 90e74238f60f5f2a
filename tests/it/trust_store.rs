//! What the database shows is true, against the real launcher and its real SQLite file: agents
//! taken out of the config while no launcher ran are removed, not counted; a database deleted or
//! replaced under a running launcher stops it (agents stopped, exit 1) instead of being written
//! into the void; a foreign file is refused before a byte of it changes; `ctl status` names a
//! failing store; the dashboard's one-shot commands escape agents' control characters in a pipe.

use crate::common::*;
use crate::dashboard_commands::status_json;
use crate::dashboard_tui::Tui;
use rusqlite::Connection;
use serde_json::Value;
use std::path::Path;
use std::time::Duration;

const SLEEPER: &str = r#"
[[agent]]
name = "a"
command = "/bin/sleep"
args = ["1000"]
"#;

#[test]
fn an_agent_gone_from_the_config_while_no_launcher_ran_is_removed_and_not_counted() {
    let sb = Sandbox::new();
    let db = sb.db();
    // b fails and is left down: counted, it would make `status` report trouble forever.
    sb.write_config(&format!(
        "{SLEEPER}
[[agent]]
name = \"b\"
command = \"/bin/sh\"
args = [\"-c\", \"exit 3\"]
restart = \"never\"
"
    ));
    let mut first = sb.launcher_as("first");
    wait_running(&db, "a");
    wait_state(&db, "b", "exited");
    first.run.signal(nix::sys::signal::Signal::SIGTERM);
    assert_eq!(first.run.wait_exit(LIMIT).code(), Some(0), "{}", sb.stderr_of("first"));

    sb.write_config(SLEEPER);
    let _second = sb.launcher_as("second");
    wait_until(LIMIT, "b marked removed", || desired(&db, "b").filter(|d| d == "removed"));
    assert_eq!(desired(&db, "a").as_deref(), Some("running"));
    let events = rows(&db, "SELECT kind, message FROM events WHERE agent = 'b' AND kind = 'agent_removed'");
    assert_eq!(events.len(), 1, "{events:?}");
    assert!(events[0][1].contains("agents.toml when the launcher started"), "{events:?}");

    // `status` counts and judges only a: healthy, so exit 0, in JSON and in text.
    let v = wait_until(LIMIT, "status ok with a running", || {
        let (code, v) = status_json(&sb, &db);
        (code == 0 && v["summary"]["healthy"] == 1).then_some(v)
    });
    assert_eq!(
        (v["summary"]["agents"].as_i64(), v["summary"]["enabled"].as_i64()),
        (Some(1), Some(1)),
        "{v:#}"
    );
    let names: Vec<&Value> = v["agents"].as_array().unwrap().iter().map(|a| &a["name"]).collect();
    assert_eq!(names, ["a"], "{v:#}");
    let out = sb.command(dashboard_bin()).args(["status", "--db"]).arg(&db).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("1/1 healthy"), "{text}");
    assert!(!text.lines().any(|l| l.starts_with("b ")), "{text}");

    // The screen agrees.
    let tui = Tui::start(&sb, &db, 100, 30);
    tui.wait_for("1/1 healthy", LIMIT);
}

/// Starts a launcher with one agent in `sb`, makes `lose` happen to its database, and checks
/// that it stops the agent and exits 1 naming what happened; returns its stderr.
fn launcher_loses_its_database(sb: &Sandbox, label: &str, lose: impl FnOnce(&Path)) -> String {
    let db = sb.db();
    sb.write_config(SLEEPER);
    let systemd = sb.path().join("systemd.sock");
    let sock = std::os::unix::net::UnixDatagram::bind(&systemd).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
    let mut cmd = sb.command(launcher_bin());
    cmd.arg("--db").arg(&db).arg("--config").arg(sb.config()).env("NOTIFY_SOCKET", &systemd);
    let mut l = Launcher { run: Running::spawn(cmd, sb.path(), label) };
    let pid = wait_running(&db, "a") as i32;
    assert!(wal(sb).exists() && shm(sb).exists());
    lose(&db);
    let status = l.run.wait_exit(LIMIT);
    let err = sb.stderr_of(label);
    assert_eq!(status.code(), Some(1), "{err}");
    let told = crate::faults_disk_full::status_containing(&sock, "deleted or replaced");
    assert!(told.contains("STATUS="), "{told}");
    assert!(err.contains("was deleted or replaced while the launcher ran"), "{err}");
    assert!(err.contains("stopping every agent and exiting with status 1"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(!process_alive(pid), "the agent outlived its launcher: {err}");
    err
}

fn wal(sb: &Sandbox) -> std::path::PathBuf {
    sb.path().join("state.db-wal")
}

fn shm(sb: &Sandbox) -> std::path::PathBuf {
    sb.path().join("state.db-shm")
}

#[test]
fn a_deleted_database_stops_the_agents_and_the_launcher() {
    let sb = Sandbox::new();
    let err = launcher_loses_its_database(&sb, "deleted", |db| {
        for f in [db.to_owned(), wal(&sb), shm(&sb)] {
            std::fs::remove_file(f).unwrap();
        }
    });
    assert!(err.contains("state.db was deleted or replaced") && err.contains("now missing"), "{err}");
    assert!(!sb.db().exists() && !wal(&sb).exists() && !shm(&sb).exists(), "nothing is created again");
}

#[test]
fn a_deleted_wal_stops_the_agents_and_the_launcher() {
    let sb = Sandbox::new();
    let err = launcher_loses_its_database(&sb, "wal-deleted", |_| std::fs::remove_file(wal(&sb)).unwrap());
    assert!(err.contains("state.db-wal was deleted or replaced") && err.contains("now missing"), "{err}");
}

#[test]
fn a_database_replaced_by_another_file_stops_the_launcher_and_is_left_alone() {
    let sb = Sandbox::new();
    let other = sb.path().join("backup.db");
    let c = Connection::open(&other).unwrap();
    c.execute_batch("CREATE TABLE kept (x TEXT); INSERT INTO kept VALUES ('restored');").unwrap();
    drop(c);
    let replacement = std::fs::read(&other).unwrap();
    let err = launcher_loses_its_database(&sb, "replaced", |db| std::fs::rename(&other, db).unwrap());
    assert!(err.contains("state.db was deleted or replaced") && err.contains(", now "), "{err}");
    assert!(
        std::fs::read(sb.db()).unwrap() == replacement,
        "the launcher wrote into the file that replaced its database"
    );
    // Its old log would be applied to the new file by the next program that opens it.
    assert!(
        !wal(&sb).exists() && !shm(&sb).exists(),
        "the lost database's -wal/-shm were left beside the new file"
    );
    let kept: String = open_ro(&sb.db()).query_row("SELECT x FROM kept", [], |r| r.get(0)).unwrap();
    assert_eq!(kept, "restored");
}

#[test]
fn a_foreign_database_with_a_negative_user_version_is_refused_untouched() {
    let sb = Sandbox::new();
    let db = sb.db();
    let c = Connection::open(&db).unwrap();
    c.execute_batch("PRAGMA user_version = -5; CREATE TABLE notes (x TEXT);").unwrap();
    drop(c);
    let before = std::fs::read(&db).unwrap();
    sb.write_config(SLEEPER);
    let mut l = sb.launcher_as("foreign");
    let status = l.run.wait_exit(LIMIT);
    let err = sb.stderr_of("foreign");
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(err.contains("is not an Agentvisor database (user_version -5"), "{err}");
    assert!(std::fs::read(&db).unwrap() == before, "the launcher changed a foreign database: {err}");
    assert!(!wal(&sb).exists() && !shm(&sb).exists(), "the launcher put the foreign database in WAL mode");
    // The dashboard does not call it an old Agentvisor database either.
    let out = sb.command(dashboard_bin()).args(["status", "--db"]).arg(&db).output().unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{text}");
    assert!(text.contains("is not an Agentvisor database"), "{text}");
}

#[test]
fn ctl_status_names_a_failing_store() {
    let sb = Sandbox::new();
    let db = sb.db();
    sb.write_config(SLEEPER);
    let _l = sb.launcher();
    wait_running(&db, "a");
    // Another connection holds the write lock: the launcher's writer fails with "locked".
    let blocker = Connection::open(&db).unwrap();
    blocker.execute_batch("BEGIN IMMEDIATE").unwrap();
    let (text, json) = wait_until(LIMIT, "ctl status naming the storage error", || {
        let text = String::from_utf8_lossy(&ctl(&sb, &["status"]).stdout).into_owned();
        text.contains("storage error").then(|| {
            let out = ctl(&sb, &["status", "--json"]);
            (text, serde_json::from_slice::<Value>(&out.stdout).unwrap())
        })
    });
    let first = text.lines().next().unwrap_or_default();
    assert!(first.starts_with("1/1 agents running; storage error: cannot write"), "{text}");
    assert!(first.contains("database is locked"), "{text}");
    assert!(text.lines().any(|l| l.starts_with("a ") && l.contains("running")), "{text}");
    assert!(json["storage_error"].as_str().is_some_and(|e| e.contains("database is locked")), "{json:#}");
    assert_eq!(json["ok"], true);

    blocker.execute_batch("ROLLBACK").unwrap();
    wait_until(LIMIT, "ctl status without the error", || {
        let out = ctl(&sb, &["status", "--json"]);
        let v: Value = serde_json::from_slice(&out.stdout).ok()?;
        (v["ok"] == true && v.get("storage_error").is_none()).then_some(())
    });
}

#[test]
fn one_shot_commands_escape_control_characters_into_a_pipe() {
    let sb = Sandbox::new();
    let db = sb.db();
    sb.script(
        "noisy.sh",
        r"printf 'STATUS=st\033]0;x\007\nX_ERROR=er\033[2Jr\n' >&3
printf 'out\033[31mred\007bell\rcr\n'
exec sleep 1000",
    );
    sb.write_config("[[agent]]\nname = \"noisy\"\ncommand = \"./noisy.sh\"\n");
    let _l = sb.launcher();
    wait_until(LIMIT, "the line, status and error recorded", || {
        let status: Option<String> = agent_field(&db, "noisy", "status_text");
        (!log_lines(&db, "noisy").is_empty()
            && status.is_some()
            && event_kinds(&db, "noisy").contains(&"agent_error".to_owned()))
        .then_some(())
    });
    for (args, escaped) in [
        (&["logs", "noisy"][..], r"out\u{1b}[31mred\u{7}bell\u{d}cr"),
        (&["status"], r"st\u{1b}]0;x\u{7}"),
        (&["events", "--agent", "noisy"], r"er\u{1b}[2Jr"),
    ] {
        // `output()` gives the command a pipe, not a terminal.
        let out = sb.command(dashboard_bin()).args(args).arg("--db").arg(&db).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains(escaped), "{args:?}: {text:?}");
        let raw: Vec<u8> = out.stdout.iter().copied().filter(|b| *b < 0x20 && !b"\n\t".contains(b)).collect();
        assert!(raw.is_empty(), "{args:?} printed raw control bytes {raw:?}: {text:?}");
    }
}

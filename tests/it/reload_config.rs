//! Reloading the config while agents run: only the difference is applied (other agents keep
//! their PID), an invalid config changes nothing and is reported (log, event, systemd STATUS),
//! and editors' multi-step saves (rename, two writes) cause exactly one reload.

use crate::common::*;
use crate::dashboard_launcher::status as dashboard_status;
use crate::faults_disk_full::status_containing;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::time::Duration;

fn agent(name: &str, arg: &str) -> String {
    format!("[[agent]]\nname = \"{name}\"\ncommand = \"sleep\"\nargs = [\"{arg}\"]\n\n")
}

fn reload_messages(db: &Path) -> Vec<String> {
    rows(db, "SELECT message FROM events WHERE kind = 'config_reloaded' ORDER BY id")
        .into_iter()
        .map(|r| r[0].clone())
        .collect()
}

/// Waits until the launcher has refreshed its session twice more: anything a file event
/// would trigger has had its debounce time and more.
pub fn two_liveness_ticks(db: &Path) {
    let seen = query_opt::<i64>(db, "SELECT max(last_seen_ms) FROM launcher_sessions").unwrap();
    wait_until(LIMIT, "two liveness ticks", || {
        query_opt::<i64>(db, "SELECT max(last_seen_ms) FROM launcher_sessions").filter(|t| *t >= seen + 1500)
    });
}

#[test]
fn reload_adds_removes_and_restarts_only_what_changed() {
    let sb = Sandbox::new();
    sb.write_config(
        &[agent("keep", "1000"), agent("change", "1000"), agent("gone", "1000"), agent("held", "1000")]
            .concat(),
    );
    let _l = sb.launcher();
    let db = sb.db();
    let keep = wait_running(&db, "keep");
    let change = wait_running(&db, "change");
    let gone = wait_running(&db, "gone");
    wait_running(&db, "held");
    assert!(ctl(&sb, &["stop", "held"]).status.success());

    sb.write_config(&[
        agent("keep", "1000"),
        agent("change", "1001"),
        agent("held", "1001"),
        agent("new", "1000"),
        "[[agent]]\nname = \"secret\"\ncommand = \"sleep\"\nargs = [\"1000\"]\nenv = { TOKEN = \"hunter2\" }\n".into(),
    ]
    .concat());
    let out = ctl(&sb, &["reload"]);
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{said}{}", String::from_utf8_lossy(&out.stderr));
    let applied = "added new, secret; removed gone; restarted change, held; 1 unchanged";
    // On a slow machine the file watcher may have applied the same write first; then the
    // explicit reload found nothing left to do. Either way the difference is applied once.
    assert!(said.contains(applied) || said.contains("no changes; 5 unchanged"), "{said}");
    assert!(said.contains("kept stopped by an operator: held"), "{said}");
    wait_running(&db, "new");
    wait_running(&db, "secret");
    let changed = wait_running(&db, "change");
    assert_ne!(changed, change);
    assert_eq!(agent_field::<i64>(&db, "keep", "pid"), Some(keep), "an unchanged agent was restarted");
    assert!(process_alive(keep as i32));
    assert!(!process_alive(gone as i32) && !process_alive(change as i32));
    let desired =
        |n: &str| query_opt::<String>(&db, &format!("SELECT desired_state FROM agents WHERE name = '{n}'"));
    wait_until(LIMIT, "gone removed", || desired("gone").filter(|d| d == "removed"));
    wait_until(LIMIT, "held still stopped", || desired("held").filter(|d| d == "stopped"));
    assert_eq!(agent_field::<String>(&db, "held", "state").as_deref(), Some("stopped"));
    let applied_once = |m: &[String]| m.iter().filter(|m| m.contains(applied)).count() == 1;
    wait_until(LIMIT, "the reload event", || applied_once(&reload_messages(&db)).then_some(()));
    // The file watcher saw the same write: it must not apply it a second time.
    two_liveness_ticks(&db);
    let msgs = reload_messages(&db);
    assert!(applied_once(&msgs) && msgs.len() <= 2, "{msgs:?}");
    // Environment values never reach the database, only their names.
    let config = query_opt::<String>(&db, "SELECT config FROM agents WHERE name = 'secret'").unwrap();
    assert!(config.contains("\"env\":[\"TOKEN\"]") && !config.contains("hunter2"), "{config}");
    let s = String::from_utf8_lossy(&ctl(&sb, &["status"]).stdout).into_owned();
    assert!(s.contains("4/5 agents running") && !s.lines().any(|l| l.starts_with("gone")), "{s}");
}

#[test]
fn an_invalid_config_keeps_the_old_one_running_and_says_where() {
    let sb = Sandbox::new();
    sb.write_config(&agent("a", "1000"));
    let systemd = sb.path().join("systemd.sock");
    let sock = UnixDatagram::bind(&systemd).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
    let mut cmd = sb.command(launcher_bin());
    cmd.arg("--db").arg(sb.db()).arg("--config").arg(sb.config()).env("NOTIFY_SOCKET", &systemd);
    let _l = Launcher { run: Running::spawn(cmd, sb.path(), "launcher") };
    let db = sb.db();
    let pid = wait_running(&db, "a");

    sb.write_config(&format!(
        "{}[[agent]]\nname = \"b\"\ncommand = \"sleep\"\nrestart = \"sometimes\"\n",
        agent("a", "2000")
    ));
    let out = ctl(&sb, &["reload"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        err.contains("agents.toml:9:11: agent \"b\", field `restart`: unknown variant `sometimes`"),
        "{err}"
    );
    assert!(err.contains("the running config stays in force"), "{err}");
    assert_eq!(agent_field::<i64>(&db, "a", "pid"), Some(pid));
    assert!(process_alive(pid as i32));
    let events = wait_until(LIMIT, "config_invalid event", || {
        Some(rows(&db, "SELECT severity, message FROM events WHERE kind = 'config_invalid'"))
            .filter(|e| !e.is_empty())
    });
    assert!(events[0][0] == "error" && events[0][1].contains("agents.toml:9:11"), "{events:?}");
    // systemd's STATUS shows it.
    let status = status_containing(&sock, "STATUS=1/1 agents running; config error: ");
    assert!(status.contains("agents.toml:9:11: agent \"b\", field `restart`"), "{status}");
    assert!(sb.stderr_of("launcher").contains("agents.toml:9:11"));
    // The dashboard's `status` counts it: the next launcher start would fail.
    wait_until(LIMIT, "the error in the session's status", || {
        query_opt::<String>(&db, "SELECT status FROM launcher_sessions")
            .filter(|s| s.contains("config error"))
    });
    let (code, v) = dashboard_status(&sb);
    assert_eq!((code, v["verdict"].as_str()), (1, Some("config_invalid")), "{v}");
    let error = v["launcher"]["config_error"].as_str().unwrap_or_default();
    assert!(error.contains("agents.toml:9:11: agent \"b\", field `restart`"), "{v}");

    // Fixing the file clears the error and applies it.
    sb.write_config(&agent("a", "2000"));
    let out = ctl(&sb, &["reload"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    wait_until(LIMIT, "a restarted", || agent_field::<i64>(&db, "a", "pid").filter(|p| *p != pid));
    wait_running(&db, "a");
    wait_until(LIMIT, "status without the error", || {
        query_opt::<String>(&db, "SELECT status FROM launcher_sessions").filter(|s| s == "1/1 agents running")
    });
    let (code, v) = dashboard_status(&sb);
    assert_eq!((code, v["launcher"]["config_error"].clone()), (0, serde_json::Value::Null), "{v}");
}

#[test]
fn a_rename_save_a_double_write_and_sighup_each_reload_once() {
    let sb = Sandbox::new();
    sb.write_config(&agent("a", "1000"));
    let l = sb.launcher();
    let db = sb.db();
    wait_running(&db, "a");

    // An editor that writes a temporary file and renames it over the config.
    let tmp = sb.path().join(".agents.toml.swp");
    std::fs::write(&tmp, [agent("a", "1000"), agent("b", "1000")].concat()).unwrap();
    std::fs::rename(&tmp, sb.config()).unwrap();
    wait_running(&db, "b");
    wait_until(LIMIT, "first reload", || (reload_messages(&db).len() == 1).then_some(()));
    assert!(reload_messages(&db)[0].contains("(a change of the config file): added b; 1 unchanged"));
    two_liveness_ticks(&db);
    assert_eq!(reload_messages(&db).len(), 1, "{:?}", reload_messages(&db));

    // An editor that truncates and writes in two steps, then writes the same text again.
    let text = [agent("a", "1000"), agent("b", "1000"), agent("c", "1000")].concat();
    {
        use std::io::Write;
        let mut f = std::fs::File::create(sb.config()).unwrap();
        let (first, second) = text.split_at(text.len() / 2);
        f.write_all(first.as_bytes()).unwrap();
        f.flush().unwrap();
        f.write_all(second.as_bytes()).unwrap();
    }
    std::fs::write(sb.config(), &text).unwrap();
    wait_running(&db, "c");
    wait_until(LIMIT, "second reload", || (reload_messages(&db).len() == 2).then_some(()));
    two_liveness_ticks(&db);
    let msgs = reload_messages(&db);
    assert_eq!(msgs.len(), 2, "{msgs:?}");
    assert!(msgs[1].contains("added c; 2 unchanged"), "{msgs:?}");
    assert!(rows(&db, "SELECT 1 FROM events WHERE kind = 'config_invalid'").is_empty());

    // SIGHUP reloads even when nothing changed, and says so.
    l.run.signal(nix::sys::signal::Signal::SIGHUP);
    wait_until(LIMIT, "SIGHUP reload", || (reload_messages(&db).len() == 3).then_some(()));
    assert!(
        reload_messages(&db)[2].contains("(SIGHUP): no changes; 3 unchanged"),
        "{:?}",
        reload_messages(&db)
    );
}

#[test]
fn a_config_file_that_disappears_changes_nothing_until_it_is_back() {
    let sb = Sandbox::new();
    let text = [agent("a", "1000"), agent("b", "1000")].concat();
    sb.write_config(&text);
    let _l = sb.launcher();
    let db = sb.db();
    let pids = (wait_running(&db, "a"), wait_running(&db, "b"));
    std::fs::remove_file(sb.config()).unwrap();
    let invalid = wait_until(LIMIT, "config_invalid", || {
        rows(&db, "SELECT message FROM events WHERE kind = 'config_invalid'").into_iter().next()
    });
    assert!(invalid[0].contains("cannot read the config file"), "{invalid:?}");
    wait_until(LIMIT, "the error in the status line", || {
        query_opt::<String>(&db, "SELECT status FROM launcher_sessions")
            .filter(|s| s.contains("config error"))
    });
    // The same text again: the error clears, and nothing needs restarting.
    sb.write_config(&text);
    wait_until(LIMIT, "status line clear", || {
        query_opt::<String>(&db, "SELECT status FROM launcher_sessions").filter(|s| s == "2/2 agents running")
    });
    assert!(reload_messages(&db)[0].contains("no changes; 2 unchanged"), "{:?}", reload_messages(&db));
    assert_eq!(
        (agent_field::<i64>(&db, "a", "pid").unwrap(), agent_field::<i64>(&db, "b", "pid").unwrap()),
        pids
    );
}

//! Event hooks with real processes and the real clock: a hook runs once per matching event with
//! the event in its environment and on its stdin, its rate limit holds through a crash loop,
//! and a failing or hanging hook is an event of its own while supervision goes on.

use crate::common::*;
use std::time::Duration;

/// A hook script that appends its environment as one line to `<name>.env` and its stdin to
/// `<name>.stdin`.
fn recording_hook(sb: &Sandbox, name: &str) {
    sb.script(
        name,
        &format!(
            r#"printf '%s|%s|%s|%s|%s|%s|%s\n' "$AGENTVISOR_EVENT_KIND" "$AGENTVISOR_EVENT_AGENT" \
  "$AGENTVISOR_EVENT_SEVERITY" "$AGENTVISOR_EVENT_MESSAGE" "$AGENTVISOR_EVENT_TIME" "$AGENTVISOR_DB" \
  "$AGENTVISOR_HOOK" >> {name}.env
cat >> {name}.stdin
echo "handled $AGENTVISOR_EVENT_KIND of $AGENTVISOR_EVENT_AGENT""#
        ),
    );
}

fn lines(sb: &Sandbox, file: &str) -> Vec<String> {
    sb.read(file).lines().map(str::to_owned).collect()
}

fn stop(l: &mut Launcher) {
    l.run.signal(nix::sys::signal::Signal::SIGTERM);
    assert!(l.run.wait_exit(LIMIT).success());
}

#[test]
fn a_hook_runs_once_per_matching_event_with_the_event_in_env_and_stdin() {
    let sb = Sandbox::new();
    recording_hook(&sb, "rec");
    sb.write_config(
        r#"
[[agent]]
name = "flaky"
command = "sh"
args = ["-c", "echo FAIL >&2; exit 3"]
restart = "never"

[[agent]]
name = "other"
command = "sh"
args = ["-c", "exit 4"]
restart = "never"

[[agent]]
name = "fine"
command = "true"
restart = "never"

[[hook]]
name = "rec"
on = ["crashed", "exited"]
agents = ["flaky", "fine"]
severity = "error"
command = "./rec"
"#,
    );
    let mut l = sb.launcher();
    let db = sb.db();
    wait_until(LIMIT, "flaky and other crashed, fine exited", || {
        let f = event_kinds(&db, "flaky").contains(&"crashed".to_owned());
        let o = event_kinds(&db, "other").contains(&"crashed".to_owned());
        let e = event_kinds(&db, "fine").contains(&"exited".to_owned());
        (f && o && e).then_some(())
    });
    wait_until(LIMIT, "the hook's record", || (!lines(&sb, "rec.env").is_empty()).then_some(()));
    stop(&mut l);

    // Only flaky's crash matches: other is not in `agents`, fine's exit is only `info`.
    let env = lines(&sb, "rec.env");
    assert_eq!(env.len(), 1, "{env:?}");
    let event = &rows(
        &db,
        "SELECT kind, agent, severity, message, ts_ms FROM events WHERE agent = 'flaky' AND kind = 'crashed'",
    )[0];
    let f: Vec<&str> = env[0].split('|').collect();
    assert_eq!(&f[..4], &[event[0].as_str(), &event[1], &event[2], &event[3]]);
    assert!(f[4].starts_with("20") && f[4].ends_with('Z'), "time {:?}", f[4]);
    assert_eq!(std::path::Path::new(f[5]), db.as_path());
    assert_eq!(f[6], "rec");

    let stdin = lines(&sb, "rec.stdin");
    assert_eq!(stdin.len(), 1, "{stdin:?}");
    let json: serde_json::Value = serde_json::from_str(&stdin[0]).unwrap();
    assert_eq!(json["kind"], "crashed");
    assert_eq!(json["agent"], "flaky");
    assert_eq!(json["severity"], event[2].as_str());
    assert_eq!(json["message"], event[3].as_str());
    assert_eq!(json["ts_ms"].as_i64(), event[4].parse().ok());
    assert_eq!(json["time"], f[4]);
    assert_eq!(json["hook"], "rec");

    // The invocation is a run of the hook, with its output.
    let runs = rows(
        &db,
        "SELECT trigger, subject, outcome, exit_code, detail, log_first_id, log_last_id FROM runs WHERE agent = 'rec'",
    );
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(&runs[0][..4], ["hook", "flaky", "succeeded", "0"]);
    assert!(runs[0][4].starts_with("crashed: "), "{runs:?}");
    let output = rows(
        &db,
        &format!(
            "SELECT line FROM log_lines WHERE agent = 'rec' AND id BETWEEN {} AND {}",
            runs[0][5], runs[0][6]
        ),
    );
    assert_eq!(output, [["handled crashed of flaky".to_owned()]]);
    // `logs` shows it under the hook's name, which is no agent's.
    let logs = dashboard(&sb, &["logs", "rec"]);
    assert_eq!(logs.status.code(), Some(0), "{}", String::from_utf8_lossy(&logs.stderr));
    assert!(String::from_utf8_lossy(&logs.stdout).contains("handled crashed of flaky"), "{logs:?}");
}

#[test]
fn the_rate_limit_holds_during_a_crash_loop() {
    let sb = Sandbox::new();
    recording_hook(&sb, "limited");
    recording_hook(&sb, "every");
    sb.write_config(
        r#"
[[agent]]
name = "loop"
command = "false"
restart = "always"
backoff = { initial = "10ms", multiplier = 1.0, max = "10ms" }
max_restarts = 20
restart_window = "10m"

[[hook]]
name = "limited"
on = ["crashed"]
min_interval = "1h"
command = "./limited"

[[hook]]
name = "every"
on = ["crash_loop"]
command = "./every"
"#,
    );
    let mut l = sb.launcher();
    let db = sb.db();
    wait_until(LIMIT, "the crash loop to end the agent", || {
        event_kinds(&db, "loop").contains(&"crash_loop".to_owned()).then_some(())
    });
    wait_until(LIMIT, "the crash_loop hook", || (!lines(&sb, "every.env").is_empty()).then_some(()));
    stop(&mut l);
    let crashes = event_kinds(&db, "loop").iter().filter(|k| *k == "crashed").count();
    assert!(crashes >= 20, "{crashes} crashes");
    assert_eq!(lines(&sb, "limited.env").len(), 1, "one invocation for {crashes} crashes");
    assert!(lines(&sb, "limited.env")[0].starts_with("crashed|loop|"));
    assert_eq!(lines(&sb, "every.env").len(), 1);
}

#[test]
fn a_failing_or_hanging_hook_is_an_event_and_supervision_goes_on() {
    let sb = Sandbox::new();
    sb.script("fails", "echo 'webhook said 500' >&2; exit 3");
    sb.script("hangs", "echo $$ > hang.pid; exec sleep 1000");
    sb.write_config(
        r#"
[[agent]]
name = "crasher"
command = "sh"
args = ["-c", "exit 1"]
restart = "never"

[[agent]]
name = "steady"
command = "sleep"
args = ["1000"]

[[hook]]
name = "fails"
on = ["crashed"]
command = "./fails"

[[hook]]
name = "hangs"
on = ["crashed"]
command = "./hangs"
timeout = "300ms"
"#,
    );
    let mut l = sb.launcher();
    let db = sb.db();
    let events = |kind: &str| {
        rows(&db, &format!("SELECT message, agent IS NULL, severity FROM events WHERE kind = '{kind}'"))
    };
    let failed = wait_until(LIMIT, "hook_failed", || events("hook_failed").into_iter().next());
    assert!(failed[0].contains("\"fails\"") && failed[0].contains("crasher"), "{failed:?}");
    assert!(failed[0].contains("exited with code 3") && failed[0].contains("webhook said 500"), "{failed:?}");
    assert_eq!(failed[1..], ["1".to_owned(), "warning".to_owned()]);
    let timed_out = wait_until(LIMIT, "hook_timed_out", || events("hook_timed_out").into_iter().next());
    assert!(timed_out[0].contains("\"hangs\"") && timed_out[0].contains("300ms"), "{timed_out:?}");
    let pid: i32 = sb.read("hang.pid").trim().parse().unwrap();
    wait_until(Duration::from_secs(10), "the hanging hook killed", || (!process_alive(pid)).then_some(()));
    // The hooks' own events ran no hook: one of each.
    assert_eq!(events("hook_failed").len(), 1);
    assert_eq!(events("hook_timed_out").len(), 1);
    assert_eq!(agent_field::<String>(&db, "steady", "state").as_deref(), Some("running"));
    stop(&mut l);
    let runs = rows(
        &db,
        "SELECT agent, outcome, exit_code, exit_signal FROM runs WHERE trigger = 'hook' ORDER BY agent",
    );
    assert_eq!(runs, [["fails", "failed", "3", ""], ["hangs", "timed_out", "", "9"]]);
}

#[test]
fn hooks_reload_with_the_config() {
    let sb = Sandbox::new();
    recording_hook(&sb, "rec");
    let config = |hook_on: &str| {
        format!(
            r#"
[[agent]]
name = "steady"
command = "sleep"
args = ["1000"]

[[hook]]
name = "rec"
on = ["{hook_on}"]
command = "./rec"
"#
        )
    };
    sb.write_config(&config("ctl_stop"));
    let mut l = sb.launcher();
    let db = sb.db();
    wait_state(&db, "steady", "running");
    // A bad hook at reload: refused, the old hooks stay.
    std::fs::write(sb.config(), config("no_such_kind")).unwrap();
    let reload = |sb: &Sandbox| {
        sb.command(launcher_bin()).arg("--db").arg(sb.db()).args(["ctl", "reload"]).output().unwrap()
    };
    let out = reload(&sb);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("no_such_kind")
            || String::from_utf8_lossy(&out.stderr).contains("no_such_kind")
    );
    // The hook in force is still the old one.
    let stopped =
        sb.command(launcher_bin()).arg("--db").arg(sb.db()).args(["ctl", "stop", "steady"]).output().unwrap();
    assert!(stopped.status.success());
    wait_until(LIMIT, "the old hook on ctl_stop", || (lines(&sb, "rec.env").len() == 1).then_some(()));
    assert!(lines(&sb, "rec.env")[0].starts_with("ctl_stop|steady|"));
    std::fs::write(sb.config(), config("config_reloaded")).unwrap();
    assert!(reload(&sb).status.success());
    wait_until(LIMIT, "the new hook on config_reloaded", || {
        lines(&sb, "rec.env").iter().any(|l| l.starts_with("config_reloaded|")).then_some(())
    });
    stop(&mut l);
    let seen = lines(&sb, "rec.env");
    assert!(seen[1..].iter().all(|l| l.starts_with("config_reloaded|")), "{seen:?}");
}

#[test]
fn hooks_on_the_launcher_stopping_finish_before_it_exits() {
    let sb = Sandbox::new();
    // Takes a moment, as a webhook post does.
    sb.script(
        "farewell",
        "cat > /dev/null; sleep 0.5; echo \"$AGENTVISOR_EVENT_KIND\" >> farewell.out; echo posted",
    );
    sb.write_config(
        r#"
[[agent]]
name = "steady"
command = "sleep"
args = ["1000"]

[[hook]]
name = "farewell"
on = ["launcher_stopped"]
command = "./farewell"
"#,
    );
    let mut l = sb.launcher();
    let db = sb.db();
    wait_state(&db, "steady", "running");
    stop(&mut l);
    assert_eq!(sb.read("farewell.out"), "launcher_stopped\n");
    let runs = rows(&db, "SELECT outcome, subject FROM runs WHERE agent = 'farewell'");
    assert_eq!(runs, [["succeeded".to_owned(), String::new()]]);
}

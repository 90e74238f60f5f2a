//! Tasks an agent reports (`X_TASK`, `X_TASK_DONE`) with the real launcher: each is a row of
//! `tasks` with its outcome and the tokens and cost reported while it ran, and the dashboard's
//! `tasks` and `runs` commands print what the database holds.

use crate::common::*;

fn json(sb: &Sandbox, args: &[&str]) -> Vec<serde_json::Value> {
    let out = dashboard(sb, args);
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn tasks_are_recorded_with_their_outcome_tokens_and_cost() {
    dashboard_bin();
    let sb = Sandbox::new();
    sb.script(
        "worker",
        r#"say() { printf '%s\n' "$@" >&3; }
say X_TASK=first X_TOKENS_IN=100 X_COST=0.5
say X_TOKENS_IN=300 X_COST=1.25 X_TASK=second
say X_TASK=second
say X_TOKENS_IN=350 X_TOKENS_OUT=40 X_COST=1.5 X_TASK_DONE=ok
say X_TASK=third X_TASK_DONE=failed
say X_TASK=fourth X_TASK=
say X_TASK=fifth
exec sleep 1000"#,
    );
    sb.write_config(
        r#"
[[agent]]
name = "worker"
command = "./worker"
"#,
    );
    let mut l = sb.launcher();
    let db = sb.db();
    let tasks = || {
        rows(
            &db,
            "SELECT text, outcome, tokens_in, tokens_out, cost FROM tasks WHERE agent = 'worker' ORDER BY id",
        )
    };
    wait_until(LIMIT, "five tasks", || (tasks().len() == 5).then_some(()));
    let want = |rows: &[[&str; 5]]| rows.iter().map(|r| r.map(str::to_owned).to_vec()).collect::<Vec<_>>();
    assert_eq!(
        tasks(),
        want(&[
            ["first", "ended", "300", "", "1.25"],
            ["second", "ok", "50", "40", "0.25"],
            // The totals were known and did not grow: nothing spent while these ran.
            ["third", "failed", "0", "0", "0"],
            ["fourth", "ended", "0", "0", "0"],
            ["fifth", "", "", "", ""],
        ])
    );
    assert_eq!(agent_field::<String>(&db, "worker", "task").as_deref(), Some("fifth"));

    // The dashboard prints what the database holds: newest last, the open one as running.
    let printed = json(&sb, &["tasks", "worker", "--json"]);
    assert_eq!(printed.len(), 5);
    assert_eq!(printed[1]["text"], "second");
    assert_eq!(printed[1]["outcome"], "ok");
    assert_eq!(printed[1]["tokens_in"], 50);
    assert_eq!(printed[1]["cost"], 0.25);
    assert!(printed[4]["outcome"].is_null());
    let text = String::from_utf8(dashboard(&sb, &["tasks", "-n", "2"]).stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(
        lines[0].contains("worker") && lines[0].contains("ended") && lines[0].ends_with("fourth"),
        "{text}"
    );
    assert!(lines[1].contains("running") && lines[1].ends_with("fifth"), "{text}");
    // The spend: the open run counts its running totals now.
    let spend = |sb: &Sandbox| {
        let out = dashboard(sb, &["status", "--json"]);
        let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        status["spend"].clone()
    };
    let open = spend(&sb);
    assert_eq!((open["today"]["cost"].as_f64(), open["today"]["tokens_in"].as_i64()), (Some(1.5), Some(350)));
    assert_eq!(open["last_hour"], open["today"], "{open}");

    // Its process ending ends its task.
    let out =
        sb.command(launcher_bin()).arg("--db").arg(&db).args(["ctl", "stop", "worker"]).output().unwrap();
    assert!(out.status.success());
    wait_until(LIMIT, "the open task ended", || (tasks().last()?.get(1)? == "interrupted").then_some(()));
    l.run.signal(nix::sys::signal::Signal::SIGTERM);
    assert!(l.run.wait_exit(LIMIT).success());

    // The runs command prints the runs table: one process start, stopped.
    let runs = json(&sb, &["runs", "worker", "--json"]);
    let stored = rows(&db, "SELECT id, trigger, outcome FROM runs WHERE agent = 'worker' ORDER BY id");
    assert_eq!(runs.len(), stored.len());
    for (printed, row) in runs.iter().zip(&stored) {
        assert_eq!(printed["id"].to_string(), row[0]);
        assert_eq!(printed["trigger"], row[1].as_str());
        assert_eq!(printed["outcome"], row[2].as_str());
    }
    assert_eq!(stored.last().map(|r| r[2].as_str()), Some("stopped"));
    let failed = json(&sb, &["runs", "worker", "--failed", "--json"]);
    assert!(failed.is_empty(), "{failed:?}");

    // status --json: the last run in brief; no schedule, so no next run.
    let out = dashboard(&sb, &["status", "--json"]);
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let worker = &status["agents"][0];
    assert_eq!(worker["last_run"]["id"].to_string(), stored.last().unwrap()[0]);
    assert_eq!(worker["last_run"]["trigger"], "start");
    assert_eq!(worker["last_run"]["outcome"], "stopped");
    assert!(worker["next_run_at"].is_null());
    // Ended, the run counts its own totals, once: the agent's running totals no longer add.
    let ended = spend(&sb);
    assert_eq!(ended, open, "{ended}");
}

#[test]
fn a_task_open_when_the_launcher_died_is_lost() {
    let sb = Sandbox::new();
    sb.script("worker", "printf 'X_TASK=long job\\n' >&3\nexec sleep 1000");
    sb.write_config(
        r#"
[[agent]]
name = "worker"
command = "./worker"
"#,
    );
    let db = sb.db();
    let outcome = || {
        query_opt::<String>(
            &db,
            "SELECT coalesce(outcome, 'open') FROM tasks WHERE text = 'long job' ORDER BY id LIMIT 1",
        )
    };
    {
        let mut l = sb.launcher();
        wait_until(LIMIT, "the task", || (outcome()? == "open").then_some(()));
        l.run.signal(nix::sys::signal::Signal::SIGKILL);
        l.run.wait_exit(LIMIT);
    }
    let _l = sb.launcher_as("second");
    wait_until(LIMIT, "the task marked lost", || (outcome()? == "lost").then_some(()));
}

//! The command line of both binaries against a real launcher: `ctl` needs agent names or
//! `all` and lists the agents when a name is missing or unknown; `ctl status` and `dashboard
//! status` print one table; `logs` interleaves every agent and filters by time and pattern;
//! usage errors have an exit code of their own; completions and man pages are generated; the
//! launcher's log to a non-terminal is logfmt, with `--follow-output` carrying the agents'
//! output.

use crate::common::*;
use std::process::Output;

/// Two agents that print a few numbered lines each (one of them on stderr too), then sleep.
fn two_talkers(sb: &Sandbox) {
    sb.script(
        "talk.sh",
        "for i in 1 2 3; do echo \"$1 says $i\"; done\necho \"$1 ERROR boom\" >&2\nexec sleep 1000",
    );
    sb.write_config(
        r#"
[[agent]]
name = "alpha"
command = "./talk.sh"
args = ["alpha"]

[[agent]]
name = "beta-long-name"
command = "./talk.sh"
args = ["beta"]
"#,
    );
}

#[test]
fn ctl_needs_names_or_all_and_lists_the_agents() {
    let sb = Sandbox::new();
    two_talkers(&sb);
    let _l = sb.launcher();
    wait_running(&sb.db(), "alpha");
    wait_running(&sb.db(), "beta-long-name");
    let pids = || ["alpha", "beta-long-name"].map(|a| agent_field::<i64>(&sb.db(), a, "pid"));
    let before = pids();

    for verb in ["stop", "start", "restart"] {
        let out = ctl(&sb, &[verb]);
        assert_eq!(out.status.code(), Some(64), "{verb}: {}", text(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("`all`") && err.contains("alpha, beta-long-name"), "{verb}: {err}");
        let out = ctl(&sb, &[verb, "alpha", "gamma"]);
        assert_eq!(out.status.code(), Some(64), "{verb}: {}", text(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("\"gamma\"") && err.contains("alpha, beta-long-name"), "{verb}: {err}");
        let out = ctl(&sb, &[verb, "all", "alpha"]);
        assert_eq!(out.status.code(), Some(64), "{verb}: {}", text(&out));
    }
    assert_eq!(pids(), before, "a refused command touched an agent");
    let out = ctl(&sb, &["status", "gamma"]);
    assert_eq!(out.status.code(), Some(64), "{}", text(&out));
    assert!(text(&out).contains("alpha, beta-long-name"), "{}", text(&out));
    let out = ctl(&sb, &["reload", "alpha"]);
    assert_eq!(out.status.code(), Some(64), "{}", text(&out));

    let out = ctl(&sb, &["stop", "all"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "stopped alpha, beta-long-name");
    // The answer comes when the processes are gone; the database has it at the writer's next
    // commit.
    for a in ["alpha", "beta-long-name"] {
        wait_state(&sb.db(), a, "stopped");
    }
    let out = ctl(&sb, &["start", "all"]);
    assert!(out.status.success(), "{}", text(&out));
    wait_running(&sb.db(), "alpha");
    wait_running(&sb.db(), "beta-long-name");

    // Each action has help of its own, with examples; help is not an error.
    let out = sb.command(launcher_bin()).args(["ctl", "stop", "--help"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("ctl stop all") && help.contains("64 usage error"), "{help}");
}

/// The status tables of `ctl status` and `dashboard status`: same header, and per agent the
/// same name, state, health, PID, restarts and trouble (uptimes and heartbeats are read at
/// different moments).
#[test]
fn ctl_status_and_dashboard_status_print_the_same_table() {
    let sb = Sandbox::new();
    sb.write_config(
        r#"
[[agent]]
name = "steady"
command = "sleep"
args = ["1000"]

[[agent]]
name = "crasher"
command = "sh"
args = ["-c", "exit 3"]
backoff = { initial = "10ms", max = "10ms" }
max_restarts = 1
"#,
    );
    let _l = sb.launcher();
    wait_running(&sb.db(), "steady");
    wait_state(&sb.db(), "crasher", "fatal");
    let table = |out: Output| -> Vec<Vec<String>> {
        assert!(out.status.code().is_some_and(|c| c <= 1), "{}", text(&out));
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let start = stdout.lines().position(|l| l.starts_with("NAME ")).unwrap_or_else(|| panic!("{stdout}"));
        stdout.lines().skip(start).map(|l| l.split_whitespace().map(str::to_owned).collect()).collect()
    };
    // The dashboard reads the database, which follows the launcher by a flush: ask both until
    // they agree on the facts that do not move.
    let key = |t: &[Vec<String>]| -> Vec<Vec<String>> {
        t.iter().map(|r| [0, 1, 2, 3, 5, 7].iter().map(|&i| r[i].clone()).collect()).collect()
    };
    let (ctl_table, dash_table) = wait_until(LIMIT, "both tables agree", || {
        let c = table(ctl(&sb, &["status"]));
        let d = table(dashboard(&sb, &["status"]));
        (key(&c) == key(&d)).then_some((c, d))
    });
    assert_eq!(ctl_table[0], dash_table[0]);
    assert_eq!(
        ctl_table[0],
        ["NAME", "STATE", "HEALTH", "PID", "UPTIME", "RESTARTS", "HEARTBEAT", "TROUBLE", "STATUS"]
    );
    let crasher = ctl_table.iter().find(|r| r[0] == "crasher").unwrap();
    assert_eq!(crasher[1..4], ["fatal", "unknown", "-"]);
    assert_eq!(crasher[7], "yes");
    let steady = dash_table.iter().find(|r| r[0] == "steady").unwrap();
    assert_eq!(steady[7], "no");
    assert!(steady[3].parse::<i32>().is_ok(), "{steady:?}");
}

#[test]
fn logs_interleave_every_agent_and_filter_by_time_and_pattern() {
    let sb = Sandbox::new();
    two_talkers(&sb);
    let _l = sb.launcher();
    let all = wait_until(LIMIT, "both agents' lines", || {
        let out = dashboard(&sb, &["logs"]);
        let s = String::from_utf8_lossy(&out.stdout).into_owned();
        (s.contains("alpha ERROR boom") && s.contains("beta ERROR boom")).then_some(s)
    });
    let lines: Vec<&str> = all.lines().collect();
    assert_eq!(lines.len(), 8, "{all}");
    // A name column as wide as the longest name, then the stream.
    for l in &lines {
        let fields: Vec<&str> = l.split_whitespace().collect();
        let who = if fields[1] == "alpha" { "alpha" } else { "beta" };
        assert!(fields[1] == "alpha" || fields[1] == "beta-long-name", "{l}");
        assert!(fields[3] == who, "a line under the wrong name: {l}");
        assert_eq!(l.find(" std").unwrap(), lines[0].find(" std").unwrap(), "columns: {all}");
    }
    // Each agent's lines keep their order.
    let alpha: Vec<&str> = lines.iter().filter(|l| l.contains(" alpha says ")).copied().collect();
    assert!(alpha[0].ends_with("1") && alpha[1].ends_with("2") && alpha[2].ends_with("3"), "{all}");

    let out = dashboard(&sb, &["logs", "-n", "3"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 3);
    let out = dashboard(&sb, &["logs", "--grep", "ERROR|says 2"]);
    let grep = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(grep.lines().count(), 4, "{grep}");
    assert!(grep.lines().all(|l| l.contains("ERROR") || l.contains("says 2")), "{grep}");
    let out = dashboard(&sb, &["logs", "beta-long-name", "--grep", "(?i)error"]);
    let one = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(one.lines().count(), 1, "{one}");
    assert!(one.contains(" stderr beta ERROR boom"), "{one}");

    let out = dashboard(&sb, &["logs", "--since", "1h"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 8);
    let future = agentvisor_shared::time::rfc3339(agentvisor_shared::time::now_ms() + 3_600_000);
    let out = dashboard(&sb, &["logs", "--since", &future]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "", "lines from before --since");

    let out = dashboard(&sb, &["logs", "gamma"]);
    assert_eq!(out.status.code(), Some(64), "{}", text(&out));
    assert!(text(&out).contains("alpha, beta-long-name"), "{}", text(&out));
    for bad in [["logs", "--grep", "("], ["logs", "--since", "soonish"]] {
        let out = dashboard(&sb, &bad);
        assert_eq!(out.status.code(), Some(64), "{bad:?}: {}", text(&out));
    }
}

#[test]
fn usage_errors_have_their_own_exit_code() {
    let sb = Sandbox::new();
    for (bin, args) in [
        (launcher_bin(), &["--no-such-option"][..]),
        (launcher_bin(), &["ctl", "frobnicate"]),
        (launcher_bin(), &["completions", "tcsh"]),
        (dashboard_bin(), &["status", "--jsn"]),
        (dashboard_bin(), &["events", "--severity", "loud"]),
    ] {
        let out = sb.command(bin).args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(64), "{args:?}: {}", text(&out));
    }
    for bin in [launcher_bin(), dashboard_bin()] {
        let out = sb.command(bin).arg("--help").output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        assert!(String::from_utf8_lossy(&out.stdout).contains("completions"));
    }
    // A bad config stays 2, for the launcher's run and check.
    sb.write_config("[[agent]]\nname = \"a\"\ncommand = \"true\"\nrestart = \"sometimes\"\n");
    let out = sb.command(launcher_bin()).arg("check").output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
}

#[test]
fn completions_and_man_pages_are_generated_for_each_shell() {
    let sb = Sandbox::new();
    for (bin, name, sub) in [
        (launcher_bin(), "agentvisor-launcher", "agentvisor-launcher-ctl-stop.1"),
        (dashboard_bin(), "agentvisor-dashboard", "agentvisor-dashboard-status.1"),
    ] {
        for shell in ["bash", "zsh", "fish"] {
            let out = sb.command(bin).args(["completions", shell]).output().unwrap();
            assert!(out.status.success(), "{name} {shell}: {}", text(&out));
            let script = String::from_utf8_lossy(&out.stdout);
            assert!(script.contains(name) && script.contains("status"), "{name} {shell}: {script}");
        }
        let out = sb.command(bin).arg("man").output().unwrap();
        assert!(out.status.success(), "{}", text(&out));
        let page = String::from_utf8_lossy(&out.stdout);
        assert!(page.starts_with(".ie") || page.contains(".TH"), "{page}");
        assert!(page.contains(name), "{page}");
        let dir = sb.path().join(format!("man-{name}"));
        std::fs::create_dir(&dir).unwrap();
        let out = sb.command(bin).args(["man", "--dir"]).arg(&dir).output().unwrap();
        assert!(out.status.success(), "{}", text(&out));
        let mut pages: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        pages.sort();
        assert!(pages.contains(&format!("{name}.1")) && pages.iter().any(|p| p == sub), "{pages:?}");
        assert!(pages.iter().all(|p| std::fs::metadata(dir.join(p)).unwrap().len() > 0));
    }
    // The bash script completes below a subcommand, although the binaries' names have hyphens.
    let script = sb.path().join("launcher.bash");
    let out = sb.command(launcher_bin()).args(["completions", "bash"]).output().unwrap();
    std::fs::write(&script, &out.stdout).unwrap();
    let probe = format!(
        "source {}; COMP_WORDS=(agentvisor-launcher ctl s); COMP_CWORD=2; \
         _agentvisor__launcher agentvisor-launcher s ctl; echo \"${{COMPREPLY[*]}}\"",
        script.display()
    );
    let out = std::process::Command::new("bash").args(["-c", &probe]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "start stop status", "{}", text(&out));
    let ctl_pages = std::fs::read_dir(sb.path().join("man-agentvisor-launcher")).unwrap().count();
    assert!(ctl_pages >= 8, "launcher, run, check, ctl and its five actions: {ctl_pages}");
}

/// Launcher lines to a file are logfmt records, and `--follow-output` adds the agents' lines.
#[test]
fn a_non_terminal_log_is_logfmt_and_follow_output_carries_the_agents_lines() {
    let sb = Sandbox::new();
    two_talkers(&sb);
    let mut c = sb.command(launcher_bin());
    c.arg("--db").arg(sb.db()).arg("--config").arg(sb.config()).args(["run", "--follow-output"]);
    let mut l = Launcher { run: Running::spawn(c, sb.path(), "launcher") };
    let log = wait_until(LIMIT, "the agents' output in the log", || {
        let log = sb.stderr_of("launcher");
        (log.contains("line=\"alpha ERROR boom\"") && log.contains("line=\"beta says 3\"")).then_some(log)
    });
    l.run.signal(nix::sys::signal::Signal::SIGTERM);
    assert_eq!(l.run.wait_exit(LIMIT).code(), Some(0));
    let log = format!("{log}{}", sb.stderr_of("launcher"));
    for line in log.lines() {
        assert!(line.starts_with("ts=") && line.contains(" level="), "not logfmt: {line}");
        assert!(!line.contains("agentvisor_launcher::"), "a module path: {line}");
    }
    assert!(log.lines().any(|l| l.contains(" agent=alpha stream=stderr line=\"alpha ERROR boom\"")), "{log}");
    assert!(log.lines().any(|l| l.contains("agent=alpha kind=started")), "{log}");
}

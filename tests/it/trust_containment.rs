//! Processes that leave their agent's process group (`setsid` after a double fork, as a
//! daemon does) stay under the launcher's control: counted in the agent's figures, stopped
//! with the agent, with the launcher, after a crash of the launcher, and never accumulated by
//! a crash-looping agent.

use crate::common::*;
use nix::sys::signal::Signal;

/// An agent whose subshell starts a `sleep` in a session of its own and exits, so the sleep is
/// orphaned outside the agent's process group; each run appends the sleep's PID to
/// `escaped.pids`. `then` is what the agent does afterwards.
fn daemonizing_agent(sb: &Sandbox, then: &str) {
    sb.script("agent.sh", &format!("( setsid sleep 1000 & echo $! >> escaped.pids )\n{then}"));
}

/// `cgroups`: whether the launcher uses a cgroup per agent where this machine lets it (asked
/// for explicitly: nothing delegates a cgroup to a test); without, it contains them as a
/// child subreaper only.
fn config(sb: &Sandbox, cgroups: bool, extra: &str) {
    let off = if cgroups { "cgroups = true\n" } else { "cgroups = false\n" };
    sb.write_config(&format!(
        "[launcher]\nsample_interval = \"100ms\"\n{off}\n[[agent]]\nname = \"a\"\ncommand = \"./agent.sh\"\n{extra}"
    ));
}

/// With cgroups, if the launcher said it uses them, the escaped process is in the agent's.
fn check_cgroup(sb: &Sandbox, label: &str, cgroups: bool, pid: i32) {
    let used = wait_until(LIMIT, "the launcher to say how it contains agents", || {
        let log = sb.stderr_of(label);
        if log.contains("each agent runs in a cgroup of its own") {
            Some(true)
        } else {
            log.contains("contained as a subreaper only").then_some(false)
        }
    });
    assert!(cgroups || !used, "cgroups were turned off");
    if used {
        let cgroup = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
        assert!(cgroup.contains("/agentvisor-") && cgroup.trim_end().ends_with("/a"), "{cgroup}");
    }
}

/// The PIDs the agent's runs wrote so far; kills them all when dropped, so a failing test
/// leaves no sleep behind.
struct Escaped<'a>(&'a Sandbox);

impl Escaped<'_> {
    fn pids(&self) -> Vec<i32> {
        self.0.read("escaped.pids").lines().filter_map(|l| l.trim().parse().ok()).collect()
    }

    fn first(&self) -> i32 {
        wait_until(LIMIT, "the agent to start its escaping process", || self.pids().first().copied())
    }
}

impl Drop for Escaped<'_> {
    fn drop(&mut self) {
        for pid in self.pids() {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
}

/// Waits until the launcher counts the escaped process in the agent's threads (the agent's
/// own `sleep` is one thread, the escaped one another).
fn wait_counted(db: &std::path::Path) {
    wait_until(LIMIT, "the escaped process to be counted in the agent's threads", || {
        let threads: f64 =
            query_opt(db, "SELECT last_value FROM metric_series WHERE scope = 'a' AND metric = 'threads'")?;
        (threads >= 2.0).then_some(())
    });
}

fn wait_gone(pid: i32, what: &str) {
    wait_until(LIMIT, what, || (!process_alive(pid)).then_some(()));
}

#[test]
fn an_escaped_process_is_counted_and_stopped_with_its_agent() {
    counted_and_stopped_with_its_agent(true);
}

#[test]
fn without_cgroups_an_escaped_process_is_counted_and_stopped_with_its_agent() {
    counted_and_stopped_with_its_agent(false);
}

fn counted_and_stopped_with_its_agent(cgroups: bool) {
    let sb = Sandbox::new();
    daemonizing_agent(&sb, "exec sleep 1000");
    config(&sb, cgroups, "");
    let escaped = Escaped(&sb);
    let _l = sb.launcher();
    let pid = escaped.first();
    assert!(process_alive(pid));
    wait_counted(&sb.db());
    check_cgroup(&sb, "launcher", cgroups, pid);
    let out = ctl(&sb, &["stop", "a"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    wait_gone(pid, "ctl stop to kill the escaped process");
}

#[test]
fn an_escaped_process_gets_the_stop_signal() {
    gets_the_stop_signal(true);
}

#[test]
fn without_cgroups_an_escaped_process_gets_the_stop_signal() {
    gets_the_stop_signal(false);
}

/// The supervisor stopping the run signals the escaped process itself (through the cgroup,
/// or else as an escapee the sampler told it of), not only the SIGKILL that reaches what a
/// run leaves behind once it has ended.
fn gets_the_stop_signal(cgroups: bool) {
    let sb = Sandbox::new();
    sb.script(
        "agent.sh",
        "( setsid sh -c 'trap \"kill \\$!; echo term > got_term; exit 0\" TERM; sleep 1000 & \
         echo $$ >> escaped.pids; echo $! >> escaped.pids; wait' & )\nexec sleep 1000",
    );
    config(&sb, cgroups, "");
    let escaped = Escaped(&sb);
    let _l = sb.launcher();
    let pid = escaped.first();
    wait_counted(&sb.db());
    let out = ctl(&sb, &["stop", "a"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    wait_until(LIMIT, "the escaped process to trap the stop signal", || {
        (sb.read("got_term").trim() == "term").then_some(())
    });
    wait_gone(pid, "the escaped process to exit");
}

#[test]
fn an_escaped_process_is_stopped_with_the_launcher() {
    stopped_with_the_launcher(true);
}

#[test]
fn without_cgroups_an_escaped_process_is_stopped_with_the_launcher() {
    stopped_with_the_launcher(false);
}

fn stopped_with_the_launcher(cgroups: bool) {
    let sb = Sandbox::new();
    daemonizing_agent(&sb, "exec sleep 1000");
    config(&sb, cgroups, "");
    let escaped = Escaped(&sb);
    let mut l = sb.launcher();
    let pid = escaped.first();
    // Not waiting for a sample: the launcher must find it even if it never saw it.
    l.run.signal(Signal::SIGTERM);
    assert!(l.run.wait_exit(LIMIT).success());
    wait_gone(pid, "the launcher's stop to kill the escaped process");
}

#[test]
fn an_escaped_process_is_stopped_by_the_next_launcher_after_a_crash() {
    stopped_by_the_next_launcher_after_a_crash(true);
}

#[test]
fn without_cgroups_an_escaped_process_is_stopped_by_the_next_launcher_after_a_crash() {
    stopped_by_the_next_launcher_after_a_crash(false);
}

fn stopped_by_the_next_launcher_after_a_crash(cgroups: bool) {
    let sb = Sandbox::new();
    daemonizing_agent(&sb, "exec sleep 1000");
    config(&sb, cgroups, "");
    let escaped = Escaped(&sb);
    let mut l = sb.launcher_as("crashed");
    let pid = escaped.first();
    wait_counted(&sb.db());
    check_cgroup(&sb, "crashed", cgroups, pid);
    l.run.signal(Signal::SIGKILL);
    l.run.wait_exit(LIMIT);
    // The launcher's death kills the agent's main process, not what left its group.
    assert!(process_alive(pid), "the escaped process died with the launcher");
    let _next = sb.launcher_as("next");
    wait_gone(pid, "the next launcher to kill the escaped process");
    let message = wait_until(LIMIT, "the crash to be recorded", || {
        query_opt::<String>(&sb.db(), "SELECT message FROM events WHERE kind = 'launcher_crashed'")
    });
    assert!(message.contains("killed leftovers of a"), "{message}");
}

#[test]
fn a_crash_looping_agent_leaves_no_escaped_process() {
    crash_loop_leaves_nothing(true);
}

#[test]
fn without_cgroups_a_crash_looping_agent_leaves_no_escaped_process() {
    crash_loop_leaves_nothing(false);
}

fn crash_loop_leaves_nothing(cgroups: bool) {
    let sb = Sandbox::new();
    daemonizing_agent(&sb, "exit 1");
    config(
        &sb,
        cgroups,
        "backoff = { initial = \"50ms\", multiplier = 1.0 }\nmax_restarts = 4\nrestart_window = \"10m\"\n",
    );
    let escaped = Escaped(&sb);
    let _l = sb.launcher();
    wait_state(&sb.db(), "a", "fatal");
    let pids = escaped.pids();
    assert!(pids.len() >= 5, "{pids:?}");
    // The launcher keeps running: nothing of the agent's five runs may be left.
    for pid in pids {
        wait_gone(pid, "every run's escaped process to be killed");
    }
}

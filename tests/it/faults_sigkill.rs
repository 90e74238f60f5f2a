//! SIGKILL of the launcher at random moments while its agents flood it with output and
//! metrics, many times in a row: the database stays intact, the next launcher starts cleanly,
//! marks the killed session crashed, and no agent of the killed launcher survives.

use crate::common::*;
use nix::sys::signal::Signal;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const ROUNDS: usize = 20;

/// A small xorshift generator: random kill moments without a dependency, reproducible from
/// the printed seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Direct children of a process.
fn children(pid: i32) -> Vec<i32> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(child) = entry.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else { continue };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{child}/stat")) else { continue };
        let Some((_, rest)) = stat.rsplit_once(')') else { continue };
        if rest.split_whitespace().nth(1).and_then(|p| p.parse::<i32>().ok()) == Some(pid) {
            out.push(child);
        }
    }
    out
}

pub fn integrity(db: &std::path::Path) -> String {
    let c = rusqlite::Connection::open(db).unwrap();
    c.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap()
}

#[test]
fn sigkill_during_heavy_writing_twenty_times() {
    let sb = Sandbox::new();
    // Output as fast as the launcher reads it, and notify messages in a tight loop; each
    // also leaves a child in its process group for the next launcher to clean up.
    sb.script(
        "talker.sh",
        "sleep 1000 &\nwhile :; do printf 'X_METRIC_A=1\\nX_METRIC_B=2\\nWATCHDOG=1\\nX_TASK=t\\n' >&3; done",
    );
    sb.script("flooder.sh", "sleep 1000 &\nexec yes 'a line of output that floods the log table'");
    sb.write_config(
        r#"
[launcher]
sample_interval = "100ms"

[[agent]]
name = "talker"
command = "./talker.sh"

[[agent]]
name = "flooder"
command = "./flooder.sh"
"#,
    );
    let db = sb.db();
    let seed = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos() as u64 | 1;
    println!("kill moments from seed {seed}");
    let mut rng = Rng(seed);
    let mut previous: Option<(i64, Vec<i32>)> = None;
    for round in 0..ROUNDS {
        let label = format!("round{round}");
        let mut l = sb.launcher_as(&label);
        let pid = l.pid();
        // The new launcher is up: its session exists and both agents run under it.
        let session = wait_until(LIMIT, "session", || {
            query_opt::<i64>(&db, &format!("SELECT id FROM launcher_sessions WHERE pid = {pid}"))
        });
        wait_until(LIMIT, "agents running in this session", || {
            let n = query_opt::<i64>(
                &db,
                &format!(
                    "SELECT count(*) FROM agent_state WHERE session_id = {session} AND state = 'running'"
                ),
            );
            (n == Some(2)).then_some(())
        });
        if let Some((prev_pid, groups)) = previous.take() {
            let reason = query_opt::<String>(
                &db,
                &format!("SELECT exit_reason FROM launcher_sessions WHERE pid = {prev_pid}"),
            );
            assert_eq!(reason.as_deref(), Some("crashed"), "round {round}");
            for g in groups {
                assert_eq!(
                    group_members(g),
                    Vec::<i32>::new(),
                    "round {round}: group {g} of the killed launcher"
                );
            }
        }
        let agents = wait_until(LIMIT, "agent processes", || Some(children(pid)).filter(|c| c.len() == 2));
        // Kill at a random moment within the next 300 ms of flooding.
        std::thread::sleep(Duration::from_millis(rng.next() % 300));
        l.run.signal(Signal::SIGKILL);
        l.run.wait_exit(LIMIT);
        // The agents' main processes die with the launcher (parent-death signal).
        for a in &agents {
            wait_until(LIMIT, "agent dies with the launcher", || (!process_alive(*a)).then_some(()));
        }
        assert_eq!(integrity(&db), "ok", "round {round}");
        let err = sb.stderr_of(&label);
        assert!(!err.contains("panicked"), "round {round}: {err}");
        previous = Some((i64::from(pid), agents));
    }
    // The last killed session is marked by one more, clean, run.
    let mut last = sb.launcher_as("last");
    let (prev_pid, _) = previous.unwrap();
    wait_until(LIMIT, "last crash marked", || {
        query_opt::<String>(&db, &format!("SELECT exit_reason FROM launcher_sessions WHERE pid = {prev_pid}"))
            .filter(|r| r == "crashed")
    });
    // The control socket the killed launcher left behind was replaced.
    wait_until(LIMIT, "ctl answers", || {
        let out = ctl(&sb, &["status"]);
        (out.status.success() && String::from_utf8_lossy(&out.stdout).contains("2/2 agents running"))
            .then_some(())
    });
    last.run.signal(Signal::SIGTERM);
    assert_eq!(last.run.wait_exit(LIMIT).code(), Some(0), "{}", sb.stderr_of("last"));
    assert_eq!(integrity(&db), "ok");
    let crashed =
        query_opt::<i64>(&db, "SELECT count(*) FROM launcher_sessions WHERE exit_reason = 'crashed'");
    assert_eq!(crashed, Some(ROUNDS as i64));
}

//! The disk holding the database fills up while the launcher runs: agents are still
//! supervised (a crash is still restarted), the error is reported in the log and in systemd's
//! STATUS, nothing panics, and writing resumes (with an event about the outage) once there is
//! room again. Uses a real, tiny tmpfs; skipped with a message where mounting is not allowed.

use crate::common::*;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(dir).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size},mode=0700"), "tmpfs"])
            .arg(dir)
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| Tmpfs(dir.to_owned()))
    }

    fn resize(&self, size: &str) {
        let status = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.0)
            .status()
            .unwrap();
        assert!(status.success());
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Receives systemd notifications until one contains `needle`.
pub fn status_containing(sock: &UnixDatagram, needle: &str) -> String {
    let deadline = Instant::now() + LIMIT;
    let mut buf = [0u8; 4096];
    let mut got = Vec::new();
    while Instant::now() < deadline {
        if let Ok(n) = sock.recv(&mut buf) {
            let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
            if msg.contains(needle) {
                return msg;
            }
            got.push(msg);
        }
    }
    panic!("no {needle:?} in the launcher's STATUS; got {got:?}");
}

/// The restarts of an agent as the launcher itself reports them (`ctl status`), which works
/// whatever the state of the database.
fn restarts_by_ctl(sb: &Sandbox, db: &Path, agent: &str) -> i64 {
    let out = sb.command(launcher_bin()).arg("--db").arg(db).args(["ctl", "status", agent]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    status_cell(&text, agent, "RESTARTS").and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("{text}"))
}

#[test]
fn a_full_disk_keeps_agents_supervised_reports_and_recovers() {
    let sb = Sandbox::new();
    let Some(disk) = Tmpfs::mount(&sb.path().join("disk"), "2m") else {
        eprintln!(
            "SKIPPED: cannot mount a tmpfs here (needs root); the launcher's disk-full test did not run"
        );
        return;
    };
    let db = disk.0.join("state.db");
    sb.script("flooder.sh", "exec yes \"$(head -c 1000 /dev/zero | tr '\\0' x)\"");
    sb.script("crasher.sh", "echo run >> runs\nsleep 0.3\nexit 1");
    sb.write_config(
        r#"
[[agent]]
name = "flooder"
command = "./flooder.sh"

[[agent]]
name = "crasher"
command = "./crasher.sh"
backoff = { initial = "50ms", max = "50ms" }
max_restarts = 1000
"#,
    );
    let systemd = sb.path().join("systemd.sock");
    let sock = UnixDatagram::bind(&systemd).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
    let mut cmd = sb.command(launcher_bin());
    cmd.arg("--db").arg(&db).arg("--config").arg(sb.config()).env("NOTIFY_SOCKET", &systemd);
    cmd.env("RUST_LOG", "info");
    let mut l = Launcher { run: Running::spawn(cmd, sb.path(), "launcher") };

    let status = status_containing(&sock, "storage error");
    println!("STATUS while full: {status}");
    assert!(status.contains("cannot write") && status.contains("full"), "{status}");

    // Still supervised: the crasher keeps being restarted while the disk is full.
    let runs = sb.read("runs").lines().count();
    wait_until(LIMIT, "restarts while full", || (sb.read("runs").lines().count() >= runs + 3).then_some(()));
    let restarts = restarts_by_ctl(&sb, &db, "crasher");
    assert!(restarts >= 3, "{restarts}");
    assert!(process_alive(l.pid()));
    let err = sb.stderr_of("launcher");
    assert!(err.contains("cannot write") && !err.contains("panicked"), "{err}");

    // Room again: writing resumes, the outage is recorded, and the state rows catch up.
    disk.resize("256m");
    let outage = wait_until(LIMIT, "storage_error event after recovery", || {
        let r = rows(&db, "SELECT severity, message FROM events WHERE kind = 'storage_error'");
        r.into_iter().next()
    });
    println!("recorded: {outage:?}");
    assert_eq!(outage[0], "error");
    assert!(outage[1].contains("resumed"), "{outage:?}");
    wait_until(LIMIT, "state rows current again", || {
        agent_field::<i64>(&db, "crasher", "restarts").filter(|r| *r >= restarts)
    });
    wait_until(LIMIT, "STATUS without the error", || {
        let mut buf = [0u8; 4096];
        let n = sock.recv(&mut buf).ok()?;
        let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
        (msg.starts_with("STATUS=") && !msg.contains("storage error")).then_some(())
    });
    l.run.signal(nix::sys::signal::Signal::SIGTERM);
    assert_eq!(l.run.wait_exit(LIMIT).code(), Some(0), "{}", sb.stderr_of("launcher"));
    assert_eq!(crate::faults_sigkill::integrity(&db), "ok");
}

//! Files beside the database and the names the launcher binds are trusted only when they are
//! the launcher's own: planted or symlinked `.lock`, an impostor `.sock`, a database of another
//! user, a control socket path too long to bind, squatted notify socket names, a dashboard of a
//! group member run while the launcher is stopped, and `ctl` against a stopped launcher. Real
//! users: the tests run processes as other uids (they need root, and say so when skipped).

use crate::common::*;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// The launcher's user in the group tests, and another user: existing `nobody` and an id
/// without a passwd entry (the kernel needs none).
const LAUNCHER_UID: u32 = 65534;
const MEMBER_UID: u32 = 65533;
/// The launcher's group, of which the member is a supplementary member.
const GROUP: u32 = 4242;

fn root() -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    eprintln!("SKIPPED: needs root to run processes as other users");
    false
}

/// `bin` run as `uid`, primary group `gid` and exactly the supplementary `groups` (setpriv from
/// util-linux), in the sandbox as [`Sandbox::command`] would.
fn as_user(sb: &Sandbox, uid: u32, gid: u32, groups: &[u32], bin: &Path) -> Command {
    let groups: Vec<String> = groups.iter().map(u32::to_string).collect();
    let mut c = sb.command(Path::new("setpriv"));
    c.arg(format!("--reuid={uid}")).arg(format!("--regid={gid}"));
    if groups.is_empty() {
        c.arg("--clear-groups");
    } else {
        c.arg(format!("--groups={}", groups.join(",")));
    }
    c.arg("--").arg(bin);
    c
}

fn launcher_cmd(mut c: Command, db: &Path, config: &Path) -> Command {
    c.arg("--db").arg(db).arg("--config").arg(config).arg("run").env("RUST_LOG", "info");
    c
}

fn ctl(sb: &Sandbox, db: &Path, args: &[&str]) -> Output {
    sb.command(launcher_bin()).arg("--db").arg(db).arg("ctl").args(args).output().unwrap()
}

fn sibling(db: &Path, suffix: &str) -> PathBuf {
    let mut s = db.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// Waits for the launcher to exit on its own; `None` if it is still running after `limit`.
fn exit_within(l: &mut Launcher, limit: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Ok(Some(status)) = l.run.child.try_wait() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

const SLEEPER: &str = "[[agent]]\nname = \"a\"\ncommand = \"sleep\"\nargs = [\"1000\"]\n";

#[test]
fn a_group_members_dashboard_run_while_the_launcher_is_stopped_cannot_break_its_next_start() {
    if !root() {
        return;
    }
    let sb = Sandbox::new();
    std::fs::set_permissions(sb.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    sb.write_config(&format!("[launcher]\ngroup = true\n\n{SLEEPER}"));
    // The state directory as the documented setup has it: the launcher's, group read-write.
    let state = sb.path().join("state");
    std::fs::create_dir(&state).unwrap();
    nix::unistd::chown(&state, Some(LAUNCHER_UID.into()), Some(GROUP.into())).unwrap();
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o770)).unwrap();
    let db = state.join("state.db");
    let start = |label: &str| Launcher {
        run: Running::spawn(
            launcher_cmd(as_user(&sb, LAUNCHER_UID, GROUP, &[], launcher_bin()), &db, &sb.config()),
            sb.path(),
            label,
        ),
    };

    let mut first = start("first");
    wait_running(&db, "a");
    first.run.signal(nix::sys::signal::Signal::SIGTERM);
    assert_eq!(first.run.wait_exit(LIMIT).code(), Some(0), "{}", sb.stderr_of("first"));
    assert!(!sibling(&db, "-wal").exists() && !sibling(&db, "-shm").exists(), "a clean stop removes them");

    // A member of the launcher's group (another user, another primary group) looks at it.
    let member = |args: &[&str]| {
        as_user(&sb, MEMBER_UID, MEMBER_UID, &[GROUP], dashboard_bin())
            .arg("--db")
            .arg(&db)
            .args(args)
            .output()
            .unwrap()
    };
    let refused = member(&["status"]);
    let created: Vec<String> = ["-wal", "-shm"]
        .iter()
        .filter_map(|s| {
            std::fs::metadata(sibling(&db, s)).ok().map(|m| format!("{s} {}:{}", m.uid(), m.gid()))
        })
        .collect();

    // The next start works, and the member can then read through the group. Asked through
    // `ctl`, not by reading the database as root: SQLite run by root hands the -wal/-shm it
    // opens to the database's owner, which would repair what this test looks for.
    let mut second = start("second");
    let started = (|| {
        let deadline = Instant::now() + LIMIT;
        while Instant::now() < deadline {
            let out = ctl(&sb, &db, &["status"]);
            if out.status.success() && text(&out).contains("1/1 agents running") {
                return true;
            }
            if let Ok(Some(_)) = second.run.child.try_wait() {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    })();
    assert!(started, "the launcher's next start failed: {}", sb.stderr_of("second"));
    assert!(created.is_empty(), "the dashboard created {created:?}; it said: {}", text(&refused));
    assert_ne!(refused.status.code(), Some(0), "{}", text(&refused));
    assert!(text(&refused).contains("the launcher is not running"), "{}", text(&refused));
    let out = member(&["status"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

#[test]
fn a_lock_file_planted_by_another_user_is_refused_and_its_text_not_quoted() {
    if !root() {
        return;
    }
    let sb = Sandbox::new();
    std::fs::set_permissions(sb.path(), std::fs::Permissions::from_mode(0o777 | 0o1000)).unwrap();
    sb.write_config(SLEEPER);
    let lock = sibling(&sb.db(), ".lock");
    let planted = "4242 -- trust me: the launcher is fine \u{1b}[2J";
    // The other user writes the file and holds a lock on it, as a running launcher would.
    let mut holder = as_user(&sb, LAUNCHER_UID, LAUNCHER_UID, &[], Path::new("sh"));
    holder
        .arg("-c")
        .arg(format!("printf '%s' '{planted}' > {0} && exec flock {0} sleep 1000", lock.display()));
    let _holder = Running::spawn(holder, sb.path(), "holder");
    wait_until(LIMIT, "the planted lock file", || {
        (std::fs::read_to_string(&lock).ok()? == planted).then_some(())
    });
    let out = sb
        .command(launcher_bin())
        .arg("--db")
        .arg(sb.db())
        .arg("--config")
        .arg(sb.config())
        .arg("run")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(!text(&out).contains("trust me"), "quoted the planted text: {}", text(&out));
    assert!(text(&out).contains("is owned by nobody (uid 65534)"), "{}", text(&out));
    assert!(!sb.db().exists(), "nothing is created after a refusal");
}

#[test]
fn a_symlinked_lock_file_is_refused_and_its_target_left_untouched() {
    let sb = Sandbox::new();
    sb.write_config(SLEEPER);
    let precious = sb.path().join("precious.txt");
    let content = "an operator's file, not the launcher's\n".repeat(20);
    std::fs::write(&precious, &content).unwrap();
    std::os::unix::fs::symlink(&precious, sibling(&sb.db(), ".lock")).unwrap();
    let mut l = sb.launcher();
    let status = exit_within(&mut l, LIMIT);
    assert_eq!(std::fs::read_to_string(&precious).unwrap(), content, "the link's target was changed");
    assert_eq!(status.and_then(|s| s.code()), Some(1), "{}", sb.stderr_of("launcher"));
    assert!(sb.stderr_of("launcher").contains("is a symbolic link"), "{}", sb.stderr_of("launcher"));
}

#[test]
fn a_database_of_another_user_left_0666_is_refused_unchanged() {
    if !root() {
        return;
    }
    let sb = Sandbox::new();
    sb.write_config(SLEEPER);
    let db = sb.db();
    let mut first = sb.launcher_as("first");
    wait_running(&db, "a");
    first.run.signal(nix::sys::signal::Signal::SIGTERM);
    assert_eq!(first.run.wait_exit(LIMIT).code(), Some(0));
    nix::unistd::chown(&db, Some(LAUNCHER_UID.into()), Some(LAUNCHER_UID.into())).unwrap();
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o666)).unwrap();
    let before = std::fs::read(&db).unwrap();

    let mut second = sb.launcher_as("second");
    let status = exit_within(&mut second, LIMIT);
    let err = sb.stderr_of("second");
    assert_eq!(status.and_then(|s| s.code()), Some(1), "{err}");
    assert!(err.contains("state.db is owned by nobody (uid 65534), not by the launcher's user"), "{err}");
    let meta = std::fs::metadata(&db).unwrap();
    assert_eq!((meta.uid(), meta.mode() & 0o777), (LAUNCHER_UID, 0o666), "owner and mode kept");
    assert!(std::fs::read(&db).unwrap() == before, "the refused database was modified");
}

#[test]
fn a_database_directory_every_user_may_write_without_sticky_bit_is_refused() {
    let sb = Sandbox::new();
    sb.write_config(SLEEPER);
    let open = sb.path().join("open");
    std::fs::create_dir(&open).unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
    let db = open.join("state.db");
    let mut l = Launcher {
        run: Running::spawn(launcher_cmd(sb.command(launcher_bin()), &db, &sb.config()), sb.path(), "open"),
    };
    let status = exit_within(&mut l, LIMIT);
    let err = sb.stderr_of("open");
    assert_eq!(status.and_then(|s| s.code()), Some(1), "{err}");
    assert!(err.contains("is writable by every user and has no sticky bit"), "{err}");
    assert!(!db.exists() && !sibling(&db, ".lock").exists(), "files were created there");
}

#[test]
fn ctl_does_not_believe_a_socket_served_by_another_user() {
    if !root() {
        return;
    }
    let sb = Sandbox::new();
    std::fs::set_permissions(sb.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    sb.write_config(SLEEPER);
    // A directory every user may create files in, as /tmp.
    let shared = sb.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let db = shared.join("state.db");
    let mut mine = Launcher {
        run: Running::spawn(launcher_cmd(sb.command(launcher_bin()), &db, &sb.config()), sb.path(), "mine"),
    };
    wait_running(&db, "a");
    mine.run.signal(nix::sys::signal::Signal::SIGTERM);
    assert_eq!(mine.run.wait_exit(LIMIT).code(), Some(0), "{}", sb.stderr_of("mine"));

    // Another user runs a real launcher of its own and moves its socket to where ctl looks for
    // this database's launcher: it answers every request, with success.
    let other = shared.join("other.db");
    let _impostor = Running::spawn(
        launcher_cmd(as_user(&sb, LAUNCHER_UID, LAUNCHER_UID, &[], launcher_bin()), &other, &sb.config()),
        sb.path(),
        "impostor",
    );
    wait_running(&other, "a");
    let planted = sibling(&other, ".sock");
    let status = as_user(&sb, LAUNCHER_UID, LAUNCHER_UID, &[], Path::new("mv"))
        .arg(&planted)
        .arg(sibling(&db, ".sock"))
        .status()
        .unwrap();
    assert!(status.success());

    let out = ctl(&sb, &db, &["stop", "a"]);
    assert_eq!(out.status.code(), Some(1), "ctl believed the impostor: {}", text(&out));
    assert!(text(&out).contains("is served by user nobody (uid 65534"), "{}", text(&out));
    assert!(!text(&out).contains("stopped a"), "{}", text(&out));
}

#[test]
fn a_control_socket_path_too_long_to_bind_is_a_start_error() {
    let sb = Sandbox::new();
    sb.script("agent.sh", "touch started\nexec sleep 1000");
    sb.write_config(&format!(
        "[[agent]]\nname = \"a\"\ncommand = \"{}\"\n",
        sb.path().join("agent.sh").display()
    ));
    let deep = sb.path().join("d".repeat(120));
    std::fs::create_dir(&deep).unwrap();
    let db = deep.join("state.db");
    let mut l = Launcher {
        run: Running::spawn(launcher_cmd(sb.command(launcher_bin()), &db, &sb.config()), sb.path(), "long"),
    };
    let status = exit_within(&mut l, LIMIT);
    let err = sb.stderr_of("long");
    assert_eq!(status.and_then(|s| s.code()), Some(1), "{err}");
    assert!(err.contains("cannot create the control socket"), "{err}");
    assert!(err.contains("at most 107 bytes"), "{err}");
    assert!(!sb.path().join("started").exists(), "an agent was started before the error");
}

#[test]
fn squatted_notify_socket_names_do_not_stop_an_agent_from_restarting() {
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::net::{SocketAddr, UnixDatagram};
    let sb = Sandbox::new();
    sb.script("agent.sh", "printf '%s\\n' \"$NOTIFY_SOCKET\" >> sockets\nexec sleep 1000");
    sb.write_config(&format!(
        "[[agent]]\nname = \"a\"\ncommand = \"{}\"\n",
        sb.path().join("agent.sh").display()
    ));
    let l = sb.launcher();
    let db = sb.db();
    wait_running(&db, "a");
    let first_pid: i64 = agent_field(&db, "a", "pid").unwrap();
    // The names a launcher with this PID would give agent a next, taken first (abstract names
    // have no owner: any user can bind them).
    let mut squatted = Vec::new();
    for n in 0..64 {
        let name = format!("agentvisor/{}/{n}/a", l.pid());
        if let Ok(s) = UnixDatagram::bind_addr(&SocketAddr::from_abstract_name(&name).unwrap()) {
            squatted.push(s);
        }
    }
    assert!(squatted.len() >= 60, "bound {} names", squatted.len());

    let out = ctl(&sb, &db, &["restart", "a"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let pid = wait_until(LIMIT, "a restarted", || {
        agent_field::<i64>(&db, "a", "pid")
            .filter(|p| *p != first_pid)
            .filter(|_| agent_field::<String>(&db, "a", "state").as_deref() == Some("running"))
    });
    assert!(process_alive(i32::try_from(pid).unwrap()));
    let sockets = sb.read("sockets");
    let last = sockets.lines().last().unwrap();
    notify_send(last, b"STATUS=through the new name\n").unwrap();
    wait_until(LIMIT, "the status through the new socket", || {
        agent_field::<String>(&db, "a", "status_text").filter(|s| s == "through the new name")
    });
}

/// SIGCONT on drop, so a failing assertion does not leave the launcher stopped.
struct Stopped(i32);

impl Drop for Stopped {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.0), nix::sys::signal::Signal::SIGCONT);
    }
}

#[test]
fn ctl_gives_up_on_a_stopped_launcher_with_a_clear_message() {
    let sb = Sandbox::new();
    sb.write_config(SLEEPER);
    let l = sb.launcher();
    let db = sb.db();
    wait_running(&db, "a");
    wait_until(LIMIT, "ctl answers", || Some(ctl(&sb, &db, &["status"])).filter(|o| o.status.success()));
    l.run.signal(nix::sys::signal::Signal::SIGSTOP);
    let _cont = Stopped(l.pid());
    let begun = Instant::now();
    let mut clients: Vec<Running> = [["status"].as_slice(), ["stop", "a"].as_slice()]
        .iter()
        .enumerate()
        .map(|(i, args)| {
            let mut c = sb.command(launcher_bin());
            c.arg("--db").arg(&db).arg("ctl").args(*args);
            Running::spawn(c, sb.path(), &format!("ctl{i}"))
        })
        .collect();
    for (i, c) in clients.iter_mut().enumerate() {
        let status = c.wait_exit(LIMIT);
        let err = sb.stderr_of(&format!("ctl{i}"));
        assert_eq!(status.code(), Some(1), "{err}");
        assert!(err.contains(&format!("the launcher (PID {}) is stopped", l.pid())), "{err}");
    }
    // The default timeout is 10 s.
    let took = begun.elapsed();
    assert!(took >= Duration::from_secs(10), "gave up after {took:?}");
}

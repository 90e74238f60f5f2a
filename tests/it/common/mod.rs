//! Helpers shared by the black-box tests: building and locating the binaries, temporary
//! working directories, waiting on conditions with deadlines, and reading the database.

#![allow(dead_code)]

use rusqlite::{Connection, OpenFlags};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

fn build_bin(package: &str) -> PathBuf {
    let run = escargot::CargoBuild::new()
        .package(package)
        .bin(package)
        .current_release()
        .current_target()
        .run()
        .unwrap_or_else(|e| panic!("building {package}: {e}"));
    run.path().to_owned()
}

/// The launcher binary, built once per test run.
pub fn launcher_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| build_bin("agentvisor-launcher"))
}

/// The dashboard binary, built once per test run.
pub fn dashboard_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| build_bin("agentvisor-dashboard"))
}

/// Polls `check` every 20 ms until it returns `Some`, or panics after `limit` naming `what`.
pub fn wait_until<T>(limit: Duration, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = check() {
            return v;
        }
        if Instant::now() >= deadline {
            panic!("timed out after {limit:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A temporary working directory with a database path and a config file in it.
pub struct Sandbox {
    pub dir: tempfile::TempDir,
}

impl Sandbox {
    pub fn new() -> Sandbox {
        Sandbox { dir: tempfile::tempdir().expect("temp dir") }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn db(&self) -> PathBuf {
        self.dir.path().join("state.db")
    }

    pub fn config(&self) -> PathBuf {
        self.dir.path().join("agents.toml")
    }

    pub fn write_config(&self, toml: &str) -> PathBuf {
        std::fs::write(self.config(), toml).expect("write config");
        self.config()
    }

    /// Writes an executable sh script into the sandbox and returns its path.
    pub fn script(&self, name: &str, body: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let p = self.dir.path().join(name);
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).expect("write script");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        p
    }

    /// A command for a binary with the working directory set to the sandbox and no
    /// database variable inherited from the developer's environment.
    pub fn command(&self, bin: &Path) -> Command {
        let mut c = Command::new(bin);
        c.current_dir(self.path()).env_remove("SHARED_STATE_SQLITE").env_remove("AGENTVISOR_CONFIG");
        c
    }
}

/// A read-only connection for assertions. Rows are read at once; nothing stays open.
pub fn open_ro(db: &Path) -> Connection {
    let c = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY).expect("open db read-only");
    c.busy_timeout(Duration::from_secs(5)).expect("busy timeout");
    c
}

/// Runs a one-value query; `None` when the database or the row is not there yet.
pub fn query_opt<T: rusqlite::types::FromSql>(db: &Path, sql: &str) -> Option<T> {
    if !db.exists() {
        return None;
    }
    let c = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY).ok()?;
    c.query_row(sql, [], |r| r.get::<_, Option<T>>(0)).ok().flatten()
}

/// A child process killed (with its whole process group) when dropped, so a failing test
/// leaves nothing running.
pub struct Running {
    pub child: Child,
}

impl Running {
    /// Starts `cmd` in its own process group with stdout and stderr sent to files in `dir`.
    pub fn spawn(mut cmd: Command, dir: &Path, label: &str) -> Running {
        use std::os::unix::process::CommandExt;
        let out = std::fs::File::create(dir.join(format!("{label}.stdout"))).expect("stdout file");
        let err = std::fs::File::create(dir.join(format!("{label}.stderr"))).expect("stderr file");
        cmd.stdin(Stdio::null()).stdout(out).stderr(err).process_group(0);
        Running { child: cmd.spawn().expect("spawn") }
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    pub fn signal(&self, sig: nix::sys::signal::Signal) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid()), sig).expect("signal");
    }

    /// Waits for exit within `limit`; panics if the process is still running then.
    pub fn wait_exit(&mut self, limit: Duration) -> std::process::ExitStatus {
        let child = &mut self.child;
        wait_until(limit, "process exit", || child.try_wait().ok().flatten())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(self.pid()),
                nix::sys::signal::Signal::SIGKILL,
            );
            let _ = self.child.wait();
        }
    }
}

/// Whether a process with this PID exists and is not a zombie.
pub fn process_alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat.rsplit_once(')').is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

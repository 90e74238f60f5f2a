//! Helpers shared by the black-box tests: building and locating the binaries, temporary
//! working directories, waiting on conditions with deadlines, and reading the database.

#![allow(dead_code)]

use rusqlite::{Connection, OpenFlags};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Built for the host into the ordinary target directory, so the build `cargo test` already
/// made of the workspace is reused rather than repeated for an explicit target triple.
fn build_bin(package: &str) -> PathBuf {
    let run = escargot::CargoBuild::new()
        .package(package)
        .bin(package)
        .current_release()
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

/// How long a test waits for what should happen within a second or two: long enough to only
/// bound a hang on a loaded 2-core machine that is still compiling.
pub const LIMIT: Duration = Duration::from_secs(60);

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
        self.executable(name, &format!("#!/bin/sh\n{body}\n"))
    }

    /// Writes an executable file with exactly `contents` into the sandbox.
    pub fn executable(&self, name: &str, contents: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let p = self.dir.path().join(name);
        std::fs::write(&p, contents).expect("write executable");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        p
    }

    /// A command for a binary with the working directory set to the sandbox and no
    /// database variable inherited from the developer's environment.
    pub fn command(&self, bin: &Path) -> Command {
        let mut c = self.command_as_users_run_it(bin);
        // At nice 19 a dashboard gets a sliver of a core that a parallel build saturates, and a
        // test's deadline would measure the build. The priority itself has a test of its own.
        if bin == dashboard_bin() {
            c.arg("--normal-priority");
        }
        c
    }

    /// `bin` with its default options (the dashboard at nice 19), in this sandbox.
    pub fn command_as_users_run_it(&self, bin: &Path) -> Command {
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

/// Sends one datagram to an agent's `NOTIFY_SOCKET` (`@name`: a name in the abstract namespace).
pub fn notify_send(socket: &str, bytes: &[u8]) -> std::io::Result<usize> {
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::net::{SocketAddr, UnixDatagram};
    let addr = match socket.strip_prefix('@') {
        Some(name) => SocketAddr::from_abstract_name(name)?,
        None => SocketAddr::from_pathname(socket)?,
    };
    UnixDatagram::unbound()?.send_to_addr(bytes, &addr)
}

/// Whether a process with this PID exists and is not a zombie.
pub fn process_alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat.rsplit_once(')').is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// The launcher running in a sandbox. Dropping it stops it gracefully (SIGTERM, so it stops
/// its agents and their process groups), and kills it if that takes more than 5 s.
pub struct Launcher {
    pub run: Running,
}

impl Launcher {
    pub fn pid(&self) -> i32 {
        self.run.pid()
    }
}

impl Drop for Launcher {
    fn drop(&mut self) {
        if let Ok(None) = self.run.child.try_wait() {
            self.run.signal(nix::sys::signal::Signal::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = self.run.child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

impl Sandbox {
    /// The launcher on this sandbox's config and database, logging at debug level to
    /// `<label>.stderr` in the sandbox.
    pub fn launcher_as(&self, label: &str) -> Launcher {
        let mut c = self.command(launcher_bin());
        c.arg("--db").arg(self.db()).arg("--config").arg(self.config()).env("RUST_LOG", "debug");
        Launcher { run: Running::spawn(c, self.path(), label) }
    }

    pub fn launcher(&self) -> Launcher {
        self.launcher_as("launcher")
    }

    /// What a process started with `label` wrote to stderr so far.
    pub fn stderr_of(&self, label: &str) -> String {
        std::fs::read_to_string(self.path().join(format!("{label}.stderr"))).unwrap_or_default()
    }

    /// Reads a file the sandbox's agents write, empty while it does not exist.
    pub fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.path().join(name)).unwrap_or_default()
    }
}

/// An agent's desired state as the launcher recorded it (`agents.desired_state`).
pub fn desired(db: &Path, agent: &str) -> Option<String> {
    query_opt(db, &format!("SELECT desired_state FROM agents WHERE name = '{agent}'"))
}

/// Waits until `agent`'s state row says `want`.
pub fn wait_state(db: &Path, agent: &str, want: &str) {
    wait_until(LIMIT, &format!("{agent} {want}"), || {
        agent_field::<String>(db, agent, "state").filter(|s| s == want)
    });
}

/// Waits until `agent` runs, and returns the pid of its process.
pub fn wait_running(db: &Path, agent: &str) -> i64 {
    wait_until(LIMIT, &format!("{agent} running"), || {
        agent_field::<String>(db, agent, "state")
            .filter(|s| s == "running")
            .and_then(|_| agent_field::<i64>(db, agent, "pid"))
    })
}

/// A column of an agent's state row.
pub fn agent_field<T: rusqlite::types::FromSql>(db: &Path, agent: &str, column: &str) -> Option<T> {
    query_opt(db, &format!("SELECT {column} FROM agent_state WHERE agent = '{agent}'"))
}

/// Reads every row of a query as strings (NULL as ""); empty while the database is missing.
pub fn rows(db: &Path, sql: &str) -> Vec<Vec<String>> {
    if !db.exists() {
        return Vec::new();
    }
    let c = open_ro(db);
    let Ok(mut stmt) = c.prepare(sql) else { return Vec::new() };
    let n = stmt.column_count();
    let read = stmt.query_map([], |r| {
        (0..n)
            .map(|i| {
                Ok(match r.get_ref(i)? {
                    rusqlite::types::ValueRef::Null => String::new(),
                    rusqlite::types::ValueRef::Integer(v) => v.to_string(),
                    rusqlite::types::ValueRef::Real(v) => v.to_string(),
                    rusqlite::types::ValueRef::Text(t) | rusqlite::types::ValueRef::Blob(t) => {
                        String::from_utf8_lossy(t).into_owned()
                    }
                })
            })
            .collect::<rusqlite::Result<Vec<String>>>()
    });
    read.map(|it| it.filter_map(Result::ok).collect()).unwrap_or_default()
}

/// The messages of an agent's events of one kind, oldest first.
pub fn event_messages(db: &Path, agent: &str, kind: &str) -> Vec<String> {
    rows(db, &format!("SELECT message FROM events WHERE agent = '{agent}' AND kind = '{kind}' ORDER BY id"))
        .into_iter()
        .map(|r| r[0].clone())
        .collect()
}

/// The kinds of an agent's events, oldest first.
pub fn event_kinds(db: &Path, agent: &str) -> Vec<String> {
    rows(db, &format!("SELECT kind FROM events WHERE agent = '{agent}' ORDER BY id"))
        .into_iter()
        .map(|r| r[0].clone())
        .collect()
}

/// An agent's captured output lines, oldest first.
pub fn log_lines(db: &Path, agent: &str) -> Vec<String> {
    rows(db, &format!("SELECT line FROM log_lines WHERE agent = '{agent}' ORDER BY id"))
        .into_iter()
        .map(|r| r[0].clone())
        .collect()
}

/// Live (non-zombie) processes in a process group.
pub fn group_members(pgid: i32) -> Vec<i32> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else { continue };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
        // Fields after the command name: state, ppid, pgrp, ...
        let Some((_, rest)) = stat.rsplit_once(')') else { continue };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        if fields.first() != Some(&"Z") && fields.get(2).and_then(|g| g.parse::<i32>().ok()) == Some(pgid) {
            out.push(pid);
        }
    }
    out
}

/// A cell of the status table that `ctl status` and `dashboard status` print: `agent`'s value
/// in the column headed `column`.
pub fn status_cell(table: &str, agent: &str, column: &str) -> Option<String> {
    let index =
        table.lines().find(|l| l.starts_with("NAME "))?.split_whitespace().position(|c| c == column)?;
    let row = table.lines().find(|l| l.split_whitespace().next() == Some(agent))?;
    row.split_whitespace().nth(index).map(str::to_owned)
}

/// A command's stdout and stderr, as one text.
pub fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// `agentvisor-launcher ctl ARGS` on the sandbox's database.
pub fn ctl(sb: &Sandbox, args: &[&str]) -> Output {
    sb.command(launcher_bin()).arg("--db").arg(sb.db()).arg("ctl").args(args).output().unwrap()
}

/// `agentvisor-dashboard ARGS` on the sandbox's database.
pub fn dashboard(sb: &Sandbox, args: &[&str]) -> Output {
    sb.command(dashboard_bin()).arg("--db").arg(sb.db()).args(args).output().unwrap()
}

/// A port nothing listens on right now on 127.0.0.1 (bound, then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

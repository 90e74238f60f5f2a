//! Drives a supervisor process (the real `agentvisor-launcher`, or the peer's supervisord):
//! writes the launcher's config, starts it, watches its agents and database, stops it. Shared
//! by the scale, restart and peer benchmarks.

use crate::procstat;
use anyhow::{Context, Result};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use rusqlite::{Connection, OpenFlags};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A tiny agent: ready at once, then every second a heartbeat and two metrics on the notify
/// pipe. bash's `read -t 1` on a pipe that never delivers waits without forking a `sleep`, so
/// a thousand agents cost the machine little and the launcher's own cost stays visible.
pub const HEARTBEAT_AGENT: &str = "exec 4<> <(:); i=0; echo READY=1 >&$AGENTVISOR_NOTIFY_FD; \
    while :; do i=$((i+1)); printf 'WATCHDOG=1\\nX_METRIC_DONE=%d\\nX_METRIC_QUEUE=3\\n' $i \
    >&$AGENTVISOR_NOTIFY_FD; read -t 1 -u 4; done";

pub enum Agents {
    /// `bash -c HEARTBEAT_AGENT`, ready on `READY=1`, with a heartbeat timeout.
    Heartbeat,
    /// `sleep 100000`: speaks no protocol, ready once started.
    Sleep,
}

impl Agents {
    /// The program name the agents' processes carry once running.
    pub fn comm(&self) -> &'static str {
        match self {
            Agents::Heartbeat => "bash",
            Agents::Sleep => "sleep",
        }
    }
}

/// Writes a config for `n` agents that restart at once when they die (no backoff delay, no
/// crash-loop limit), so restart latency measures the launcher, not a policy.
pub fn write_config(path: &Path, n: usize, agents: &Agents) -> Result<()> {
    let mut t = String::from("[launcher]\nsample_interval = \"1s\"\n");
    for i in 0..n {
        let _ = write!(t, "\n[[agent]]\nname = \"a{i:04}\"\n");
        match agents {
            Agents::Heartbeat => {
                let _ = writeln!(t, "command = \"bash\"\nargs = [\"-c\", {:?}]", HEARTBEAT_AGENT);
                let _ = writeln!(t, "ready = \"notify\"\nheartbeat_timeout = \"10s\"");
            }
            Agents::Sleep => {
                let _ = writeln!(t, "command = \"sleep\"\nargs = [\"100000\"]");
            }
        }
        let _ = writeln!(
            t,
            "restart = \"always\"\nbackoff = {{ initial = \"0s\", multiplier = 1.0 }}\nmax_restarts = 100000"
        );
    }
    std::fs::write(path, t).with_context(|| format!("writing {}", path.display()))
}

/// Where a binary of the workspace is: next to this program (same target directory and
/// profile), or one level up when this program is a test harness in `deps/`.
pub fn binary(name: &str) -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let dir = exe.parent()?;
    [dir.join(name), dir.parent()?.join(name)].into_iter().find(|p| p.is_file())
}

/// A running supervisor and the moment it was started.
pub struct Supervisor {
    child: Child,
    pub pid: i32,
    /// The launcher's database; none for the peer.
    db: Option<PathBuf>,
    pub started: Instant,
}

impl Supervisor {
    /// Starts `agentvisor-launcher` on `config` and `db`, its log going to `log`.
    pub fn launcher(bin: &Path, config: &Path, db: &Path, log: &Path) -> Result<Supervisor> {
        let mut cmd = Command::new(bin);
        cmd.arg("--config").arg(config).arg("--db").arg(db).arg("--log-level").arg("warn");
        let mut s = Supervisor::spawn(cmd, log)?;
        s.db = Some(db.to_owned());
        Ok(s)
    }

    /// Starts any supervisor, its output going to `log`.
    pub fn spawn(mut cmd: Command, log: &Path) -> Result<Supervisor> {
        let log = std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let started = Instant::now();
        let child = cmd
            .stdin(Stdio::null())
            .stdout(log.try_clone().context("sharing the log file")?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {:?}", cmd.get_program()))?;
        let pid = i32::try_from(child.id()).context("the supervisor's pid")?;
        Ok(Supervisor { child, pid, db: None, started })
    }

    /// Waits until `n` agents' processes run (observed in /proc); time since start.
    pub fn wait_running(&mut self, n: usize, comm: &str, timeout: Duration) -> Result<Duration> {
        let deadline = Instant::now() + timeout;
        loop {
            if procstat::children_named(self.pid, comm).len() >= n {
                return Ok(self.started.elapsed());
            }
            self.check_alive()?;
            anyhow::ensure!(Instant::now() < deadline, "{n} agents were not running after {timeout:?}");
            std::thread::sleep(Duration::from_micros(500));
        }
    }

    /// Waits until the database says `n` agents are ready; time since start.
    pub fn wait_ready(&mut self, n: usize, timeout: Duration) -> Result<Duration> {
        let deadline = Instant::now() + timeout;
        let db = self.db.clone().context("only the launcher has a database to read readiness from")?;
        let mut conn: Option<Connection> = None;
        loop {
            if conn.is_none() && db.exists() {
                conn = Connection::open_with_flags(&db, OpenFlags::SQLITE_OPEN_READ_ONLY).ok();
            }
            if let Some(c) = &conn {
                // The schema may not exist yet in the first milliseconds: not an error.
                let ready: i64 = c
                    .query_row("SELECT count(*) FROM agent_state WHERE ready = 1", [], |r| r.get(0))
                    .unwrap_or(0);
                if ready as usize >= n {
                    return Ok(self.started.elapsed());
                }
            }
            self.check_alive()?;
            anyhow::ensure!(Instant::now() < deadline, "{n} agents were not ready after {timeout:?}");
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    fn check_alive(&mut self) -> Result<()> {
        if let Some(status) = self.child.try_wait().context("checking the launcher")? {
            anyhow::bail!("the supervisor exited early: {status}");
        }
        Ok(())
    }

    /// SIGTERM, then waits for the supervisor to exit; the time it took.
    pub fn stop(mut self) -> Result<Duration> {
        let t = Instant::now();
        kill(Pid::from_raw(self.pid), Signal::SIGTERM).context("signalling the supervisor")?;
        let deadline = t + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().context("waiting for the supervisor")? {
                anyhow::ensure!(status.success(), "the supervisor stopped with {status}");
                return Ok(t.elapsed());
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                anyhow::bail!("the supervisor did not stop within 60 s");
            }
            std::thread::sleep(Duration::from_micros(500));
        }
    }
}

impl Drop for Supervisor {
    /// A benchmark that failed half-way must not leave a supervisor and its agents behind.
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = kill(Pid::from_raw(self.pid), Signal::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = self.child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Kills one agent of `supervisor` and times until a new agent process of the same program
/// runs in its place.
pub fn restart_latency(supervisor: i32, comm: &str, timeout: Duration) -> Result<Duration> {
    let before = procstat::children_named(supervisor, comm);
    let victim = *before.first().context("no agent process to kill")?;
    let t = Instant::now();
    kill(Pid::from_raw(victim), Signal::SIGKILL).context("killing an agent")?;
    loop {
        let now = procstat::children_named(supervisor, comm);
        if now.iter().any(|p| !before.contains(p)) {
            return Ok(t.elapsed());
        }
        anyhow::ensure!(t.elapsed() < timeout, "no replacement agent after {timeout:?}");
        std::thread::sleep(Duration::from_micros(200));
    }
}

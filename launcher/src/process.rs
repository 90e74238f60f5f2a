//! Starting an agent's process: executed directly (no shell), in its own process group, with
//! a parent-death signal so it cannot outlive the launcher, stdin from /dev/null, stdout and
//! stderr piped, and the notify pipe's write end at descriptor 3.

use crate::config::AgentConfig;
use nix::sys::resource::{Resource, getrlimit};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;
use tokio::process::{Child, ChildStderr, ChildStdout, Command};

/// The descriptor number agents find their notify pipe at (`AGENTVISOR_NOTIFY_FD`).
pub const NOTIFY_FD: i32 = 3;

pub struct Spawned {
    pub child: Child,
    pub pid: i32,
    pub start_ticks: Option<u64>,
    pub stdout: ChildStdout,
    pub stderr: ChildStderr,
    /// The read end of the agent's notify pipe.
    pub notify_pipe: OwnedFd,
}

/// Where the agent's program is: a path with a `/` is taken relative to its working
/// directory (so it does not depend on the launcher's), a bare name is looked up in `PATH`.
pub fn program(command: &str, working_dir: &Path) -> PathBuf {
    if command.contains('/') { working_dir.join(command) } else { PathBuf::from(command) }
}

pub fn spawn(agent: &AgentConfig, working_dir: &Path, socket: &str) -> io::Result<Spawned> {
    let (read_end, write_end) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    let mut cmd = Command::new(program(&agent.command, working_dir));
    cmd.args(&agent.args)
        .current_dir(working_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        // The launcher's own systemd settings are not the agent's.
        .env_remove("NOTIFY_SOCKET")
        .env_remove("WATCHDOG_USEC")
        .env_remove("WATCHDOG_PID")
        .envs(&agent.env)
        .env("NOTIFY_SOCKET", socket)
        .env("AGENTVISOR_NOTIFY_FD", NOTIFY_FD.to_string())
        .env("AGENTVISOR_AGENT", &agent.name);
    if let Some(t) = agent.heartbeat_timeout {
        cmd.env("WATCHDOG_USEC", t.get().as_micros().to_string());
    }
    prepare_child(&mut cmd, write_end.as_raw_fd(), FD_LIMIT.get().copied());
    let mut child = cmd.spawn()?;
    drop(write_end);
    let pid = child.id().and_then(|p| i32::try_from(p).ok()).ok_or_else(|| io::Error::other("no pid"))?;
    let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
        return Err(io::Error::other("output pipes missing"));
    };
    Ok(Spawned {
        child,
        pid,
        start_ticks: crate::procs::start_ticks(pid),
        stdout,
        stderr,
        notify_pipe: read_end,
    })
}

#[allow(unsafe_code)]
fn prepare_child(cmd: &mut Command, notify_write: i32, fd_limit: Option<(u64, u64)>) {
    let launcher = nix::unistd::getpid().as_raw();
    // SAFETY: the closure runs in the forked child before exec and only makes raw system
    // calls (prctl, getppid, dup2, fcntl, setrlimit), which are async-signal-safe; it
    // allocates nothing and touches no lock.
    unsafe {
        cmd.pre_exec(move || {
            use nix::libc;
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) != 0 {
                return Err(io::Error::last_os_error());
            }
            // The launcher may have died between fork and prctl: then no signal will come.
            if libc::getppid() != launcher {
                return Err(io::Error::other("the launcher exited while starting the agent"));
            }
            // dup2 onto itself would keep close-on-exec set, so clear the flag instead.
            let rc = if notify_write == NOTIFY_FD {
                libc::fcntl(NOTIFY_FD, libc::F_SETFD, 0)
            } else {
                libc::dup2(notify_write, NOTIFY_FD)
            };
            if rc < 0 {
                return Err(io::Error::last_os_error());
            }
            // Agents get the descriptor limit the launcher was given, not the one it raised.
            if let Some((soft, hard)) = fd_limit {
                nix::sys::resource::setrlimit(Resource::RLIMIT_NOFILE, soft, hard)?;
            }
            Ok(())
        });
    }
}

/// The descriptor limit the launcher started with (soft, hard), once it has raised its own.
static FD_LIMIT: OnceLock<(u64, u64)> = OnceLock::new();

/// Raises the launcher's soft limit on open descriptors to the hard limit: it holds about five
/// per agent (pipes, notify socket, process handle) plus one per agent process it samples, and
/// systemd's default soft limit of 1,024 would stop it at about a hundred agents. Agents are
/// started with the original limit.
pub fn raise_fd_limit() {
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else { return };
    if soft >= hard {
        return;
    }
    match nix::sys::resource::setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
        Ok(()) => {
            let _ = FD_LIMIT.set((soft, hard));
            tracing::debug!(soft, hard, "raised the open-descriptor limit");
        }
        Err(e) => tracing::warn!(soft, hard, error = %e, "could not raise the open-descriptor limit"),
    }
}

/// Marks every descriptor the launcher inherited beyond stdin, stdout and stderr as
/// close-on-exec, so agents do not inherit what the launcher's own parent left open (the
/// launcher's own descriptors are all opened close-on-exec).
#[allow(unsafe_code)]
pub fn close_inherited_on_exec() {
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else { return };
    let fds: Vec<i32> = dir.flatten().filter_map(|e| e.file_name().to_str()?.parse().ok()).collect();
    for fd in fds.into_iter().filter(|fd| *fd > 2) {
        // SAFETY: fcntl(F_SETFD) only changes a descriptor flag; on a number that is not (or
        // no longer) an open descriptor it fails with EBADF and changes nothing.
        unsafe {
            nix::libc::fcntl(fd, nix::libc::F_SETFD, nix::libc::FD_CLOEXEC);
        }
    }
}

/// Sends `sig` to a process group; a group that is already gone is not an error.
pub fn signal_group(pgid: i32, sig: Signal) {
    match killpg(Pid::from_raw(pgid), sig) {
        Ok(()) | Err(nix::errno::Errno::ESRCH) => {}
        Err(e) => tracing::warn!(pgid, signal = %sig, error = %e, "could not signal a process group"),
    }
}

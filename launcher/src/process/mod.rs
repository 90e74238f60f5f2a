//! Starting an agent's process: executed directly (no shell), in its own process group, with
//! a parent-death signal so it cannot outlive the launcher, stdin from /dev/null, stdout and
//! stderr piped, and the notify pipe's write end at descriptor 3.

pub mod child;
pub mod contain;
pub mod inspect;
pub mod program;
pub mod stat;
pub mod vfork;

use crate::config::AgentConfig;
use crate::config::runnable::{find_in_path, program, search_path, unrunnable};
use child::AgentChild;

use nix::fcntl::OFlag;
use nix::sys::resource::{Resource, getrlimit};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use std::collections::BTreeMap;
use std::ffi::{CString, OsStr, OsString};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::OnceLock;
use tokio::net::unix::pipe;

/// The descriptor number agents find their notify pipe at (`AGENTVISOR_NOTIFY_FD`).
pub const NOTIFY_FD: i32 = 3;

pub struct Spawned {
    pub child: AgentChild,
    pub pid: i32,
    pub start_ticks: Option<u64>,
    pub stdout: pipe::Receiver,
    pub stderr: pipe::Receiver,
    /// The read end of the agent's notify pipe.
    pub notify_pipe: OwnedFd,
}

pub fn spawn(agent: &AgentConfig, working_dir: &Path, socket: &str) -> io::Result<Spawned> {
    let argv0 = program(&agent.command, working_dir);
    let env = environment(agent, socket);
    let executable = if agent.command.contains('/') {
        argv0.clone()
    } else {
        find_in_path(&agent.command, &search_path(agent))?
    };
    let (notify_read, notify_write) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
    let (stdout_read, stdout_write) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
    let (stderr_read, stderr_write) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
    let stdin = std::fs::File::open("/dev/null")?;
    let cgroup = crate::process::contain::cgroup_procs(&agent.name);
    let fds = [stdin.as_fd(), stdout_write.as_fd(), stderr_write.as_fd(), notify_write.as_fd()];
    let plan =
        plan(&executable, &argv0, &agent.args, &env, working_dir, fds, cgroup.as_ref().map(|f| f.as_fd()))?;
    let child = child::spawn_main(|| vfork::spawn(&plan))?;
    let pid = child.pid();
    Ok(Spawned {
        child,
        pid,
        start_ticks: inspect::start_ticks(pid),
        stdout: pipe::Receiver::from_owned_fd(stdout_read)?,
        stderr: pipe::Receiver::from_owned_fd(stderr_read)?,
        notify_pipe: notify_read,
    })
}

/// What to record when starting the agent failed with `e`: the cause on the file system when
/// there is one (the working directory may have gone since the config was checked).
pub fn start_failure(agent: &AgentConfig, working_dir: &Path, e: &io::Error) -> String {
    match unrunnable(agent, working_dir) {
        Some((_, why)) => format!("cannot start {}: {why}", agent.command),
        None => {
            let program = program(&agent.command, working_dir);
            format!("cannot start {} in {}: {e}", program.display(), working_dir.display())
        }
    }
}

/// The agent's environment: the launcher's, without its own systemd settings, with the
/// agent's `env` and the notify variables.
fn environment(agent: &AgentConfig, socket: &str) -> BTreeMap<OsString, OsString> {
    let mut env: BTreeMap<OsString, OsString> = std::env::vars_os()
        .filter(|(k, _)| !["NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"].iter().any(|x| k == x))
        .collect();
    env.extend(agent.env.iter().map(|(k, v)| (k.into(), v.into())));
    env.insert("NOTIFY_SOCKET".into(), socket.into());
    env.insert("AGENTVISOR_NOTIFY_FD".into(), NOTIFY_FD.to_string().into());
    env.insert("AGENTVISOR_AGENT".into(), agent.name.as_str().into());
    if let Some(t) = agent.heartbeat_timeout {
        env.insert("WATCHDOG_USEC".into(), t.get().as_micros().to_string().into());
    }
    env
}

/// What the forked child executes: the program, its arguments (and the `/bin/sh` fallback's),
/// the environment and the working directory as C strings, with the descriptors it gets as
/// 0 to 3. One for agents and for programs the launcher starts for itself (hooks).
fn plan<'a>(
    executable: &Path,
    argv0: &Path,
    args: &[String],
    env: &BTreeMap<OsString, OsString>,
    working_dir: &Path,
    fds: [BorrowedFd<'a>; 4],
    cgroup: Option<BorrowedFd<'a>>,
) -> io::Result<vfork::Plan<'a>> {
    Ok(vfork::Plan {
        program: c_string(executable.as_os_str())?,
        argv: std::iter::once(argv0.as_os_str())
            .chain(args.iter().map(OsStr::new))
            .map(c_string)
            .collect::<io::Result<_>>()?,
        shell_argv: [OsStr::new("/bin/sh"), executable.as_os_str()]
            .into_iter()
            .chain(args.iter().map(OsStr::new))
            .map(c_string)
            .collect::<io::Result<_>>()?,
        envp: env
            .iter()
            .map(|(k, v)| {
                let mut kv = k.clone();
                kv.push("=");
                kv.push(v);
                c_string(&kv)
            })
            .collect::<io::Result<_>>()?,
        cwd: c_string(working_dir.as_os_str())?,
        fds,
        fd_limit: FD_LIMIT.get().copied(),
        cgroup,
    })
}

fn c_string(s: &OsStr) -> io::Result<CString> {
    CString::new(s.as_bytes()).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "a NUL byte in the command, an argument or the environment",
        )
    })
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

//! An agent's process, started by [`crate::process::vfork`]: waited for through a pidfd, which becomes
//! readable when the process exits, and killed (and reaped) if dropped before it has exited.
//!
//! The launcher is a child subreaper (see [`crate::process::contain`]), so it has other children too:
//! orphans of the agents' trees. Those are reaped by [`reap_orphan`], which never touches an
//! agent's main process: that one's status belongs to its supervisor.

use nix::libc;
use std::collections::BTreeSet;
use std::io;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::sync::{Mutex, MutexGuard, PoisonError};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

/// The agents' main processes not yet reaped by their [`AgentChild`]. A process is registered
/// under the lock it is spawned under, so it is never seen as a child that is not registered.
static MAIN: Mutex<BTreeSet<i32>> = Mutex::new(BTreeSet::new());

fn main_pids() -> MutexGuard<'static, BTreeSet<i32>> {
    MAIN.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Spawns an agent's main process with `spawn` (which returns its PID) and takes charge of it.
pub fn spawn_main(spawn: impl FnOnce() -> io::Result<i32>) -> io::Result<AgentChild> {
    let mut main = main_pids();
    let pid = spawn()?;
    main.insert(pid);
    drop(main);
    AgentChild::new(pid).inspect_err(|_| {
        main_pids().remove(&pid);
    })
}

/// Whether `pid` is an agent's main process that its supervisor has not reaped yet.
pub fn is_main(pid: i32) -> bool {
    main_pids().contains(&pid)
}

/// Reaps `pid` if it is an exited child of the launcher and not an agent's main process.
#[allow(unsafe_code)]
pub fn reap_orphan(pid: i32) -> bool {
    let main = main_pids();
    if main.contains(&pid) {
        return false;
    }
    let mut status = 0;
    // SAFETY: waitpid with WNOHANG never blocks; the PID is not an agent's main process (the
    // lock keeps it so), so no supervisor is waiting for it.
    unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) == pid }
}

pub struct AgentChild {
    pid: i32,
    pidfd: AsyncFd<OwnedFd>,
    exited: Option<ExitStatus>,
}

impl AgentChild {
    /// Takes charge of `pid`, a child of this process that nobody else waits for.
    #[allow(unsafe_code)]
    fn new(pid: i32) -> io::Result<AgentChild> {
        // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor (close-on-exec)
        // or -1; the descriptor is owned here from then on.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: as above, a new descriptor nothing else owns. Registered, it stays open
        // and the same for the AsyncFd's whole life: an OwnedFd never changes its descriptor.
        let pidfd = unsafe {
            let fd = OwnedFd::from_raw_fd(fd as i32);
            AsyncFd::register_with_interest(fd, Interest::READABLE)?
        };
        Ok(AgentChild { pid, pidfd, exited: None })
    }

    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// Waits for the process to exit and reaps it. Cancel-safe: a wait dropped before the
    /// exit leaves nothing behind, and once reaped the status is kept.
    #[allow(unsafe_code)]
    pub async fn wait(&mut self) -> io::Result<ExitStatus> {
        loop {
            if let Some(status) = self.exited {
                return Ok(status);
            }
            let mut guard = self.pidfd.readable().await?;
            let mut status = 0;
            // SAFETY: waitpid on our own child, with WNOHANG: it never blocks.
            let r = unsafe { libc::waitpid(self.pid, &mut status, libc::WNOHANG) };
            if r == self.pid {
                self.exited = Some(ExitStatus::from_raw(status));
                main_pids().remove(&self.pid);
            } else if r < 0 {
                return Err(io::Error::last_os_error());
            } else {
                guard.clear_ready();
            }
        }
    }
}

impl Drop for AgentChild {
    /// A supervisor that lets go of a running process (it panicked, or the runtime is ending)
    /// kills it with its process group, whose id it is (nobody else will), and reaps it so
    /// that no zombie is left (SIGKILL makes that wait short).
    #[allow(unsafe_code)]
    fn drop(&mut self) {
        if self.exited.is_none() {
            let mut status = 0;
            // SAFETY: signals and reaps our own unreaped child; its pid, and so the id of the
            // group it leads, cannot have been reused.
            unsafe {
                libc::kill(-self.pid, libc::SIGKILL);
                libc::kill(self.pid, libc::SIGKILL);
                libc::waitpid(self.pid, &mut status, 0);
            }
            main_pids().remove(&self.pid);
        }
    }
}

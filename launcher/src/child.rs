//! An agent's process, started by [`crate::spawn`]: waited for through a pidfd, which becomes
//! readable when the process exits, and killed (and reaped) if dropped before it has exited.

use nix::libc;
use std::io;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

pub struct AgentChild {
    pid: i32,
    pidfd: AsyncFd<OwnedFd>,
    exited: Option<ExitStatus>,
}

impl AgentChild {
    /// Takes charge of `pid`, a child of this process that nobody else waits for.
    #[allow(unsafe_code)]
    pub fn new(pid: i32) -> io::Result<AgentChild> {
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
        }
    }
}

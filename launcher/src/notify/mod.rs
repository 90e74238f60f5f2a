//! How agents talk to the launcher: a unix datagram socket per agent (`NOTIFY_SOCKET`, what
//! systemd's `sd_notify` clients speak) and an inherited pipe (`AGENTVISOR_NOTIFY_FD`, for
//! shell agents). Both carry the same `KEY=VALUE` lines and go through the same parser; what
//! they read is forwarded, parsed, to the agent's supervisor.

pub mod parse;

pub use parse::{Notice, Parsed};

use crate::lines::BoundedLines;
use std::io;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use tokio::net::UnixDatagram;
use tokio::net::unix::pipe;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// A socket path must fit `sockaddr_un.sun_path` (108 bytes with its NUL).
const SUN_PATH_MAX: usize = 107;

/// A private (0700) directory for the agents' sockets, removed when dropped.
pub struct RuntimeDir(tempfile::TempDir);

impl RuntimeDir {
    /// Creates it under systemd's `$RUNTIME_DIRECTORY` or `$XDG_RUNTIME_DIR` when one is
    /// short enough to keep socket paths legal, else under the system's temporary directory.
    pub fn create() -> io::Result<RuntimeDir> {
        let longest = "/agentvisor-XXXXXX/".len() + crate::config::MAX_NAME + ".sock".len();
        let base = ["RUNTIME_DIRECTORY", "XDG_RUNTIME_DIR"]
            .iter()
            .filter_map(std::env::var_os)
            .map(PathBuf::from)
            .find(|p| p.is_absolute() && p.is_dir() && p.as_os_str().len() + longest <= SUN_PATH_MAX)
            .unwrap_or_else(std::env::temp_dir);
        tempfile::Builder::new().prefix("agentvisor-").tempdir_in(base).map(RuntimeDir)
    }

    pub fn socket_path(&self, agent: &str) -> PathBuf {
        self.0.path().join(format!("{agent}.sock"))
    }
}

/// Binds an agent's socket and forwards what arrives until the supervisor goes away.
pub fn listen(path: &Path, tx: mpsc::Sender<Parsed>) -> io::Result<JoinHandle<()>> {
    let _ = std::fs::remove_file(path);
    let socket = UnixDatagram::bind(path).map_err(|e| {
        io::Error::new(e.kind(), format!("cannot bind the notify socket {}: {e}", path.display()))
    })?;
    Ok(tokio::spawn(async move {
        // One byte more than allowed, so an oversized datagram shows as too long rather than
        // being silently truncated into something that parses.
        let mut buf = vec![0u8; parse::MAX_MESSAGE + 1];
        loop {
            let parsed = match socket.recv(&mut buf).await {
                Ok(n) => parse::parse(&buf[..n]),
                Err(e) => {
                    tracing::debug!(error = %e, "notify socket receive failed");
                    Parsed { notices: Vec::new(), malformed: 1 }
                }
            };
            if tx.send(parsed).await.is_err() {
                return;
            }
        }
    }))
}

/// Forwards the lines an agent writes to its notify pipe until it closes.
pub fn read_pipe(read_end: OwnedFd, tx: mpsc::Sender<Parsed>) -> io::Result<JoinHandle<()>> {
    let receiver = pipe::Receiver::from_owned_fd(read_end)?;
    Ok(tokio::spawn(async move {
        let mut lines = BoundedLines::new(receiver, parse::MAX_MESSAGE);
        while let Some(line) = lines.next_line().await {
            let parsed = if line.cut {
                Parsed { notices: Vec::new(), malformed: 1 }
            } else {
                parse::parse(&line.bytes)
            };
            if tx.send(parsed).await.is_err() {
                return;
            }
        }
    }))
}

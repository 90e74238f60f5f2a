//! How agents talk to the launcher: a unix datagram socket per agent (`NOTIFY_SOCKET`, what
//! systemd's `sd_notify` clients speak) and an inherited pipe (`AGENTVISOR_NOTIFY_FD`, for
//! shell agents). Both carry the same `KEY=VALUE` lines and go through the same parser; what
//! they read is forwarded, parsed, to the agent's supervisor.

pub mod parse;
mod runtime_dir;

pub use parse::{Notice, Parsed};
pub use runtime_dir::RuntimeDir;

use crate::lines::BoundedLines;
use std::io;
use std::os::fd::OwnedFd;
use std::path::Path;
use tokio::net::UnixDatagram;
use tokio::net::unix::pipe;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Binds an agent's socket and forwards what arrives until the supervisor goes away.
pub fn listen(path: &Path, tx: mpsc::Sender<Parsed>) -> io::Result<JoinHandle<()>> {
    let _ = std::fs::remove_file(path);
    let socket = UnixDatagram::bind(path).map_err(|e| {
        io::Error::new(e.kind(), format!("cannot bind the notify socket {}: {e}", path.display()))
    })?;
    Ok(tokio::spawn(async move {
        loop {
            if let Err(e) = socket.readable().await {
                tracing::debug!(error = %e, "notify socket failed");
                return;
            }
            // The buffer lives only between readiness and parsing, not across the await, so
            // a thousand idle agents do not each hold one. One byte more than allowed, so an
            // oversized datagram shows as too long rather than being silently truncated into
            // something that parses.
            let parsed = {
                let mut buf = [0u8; parse::MAX_MESSAGE + 1];
                match socket.try_recv(&mut buf) {
                    Ok(n) => parse::parse(&buf[..n]),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                    Err(e) => {
                        tracing::debug!(error = %e, "notify socket receive failed");
                        Parsed { notices: Vec::new(), malformed: 1 }
                    }
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

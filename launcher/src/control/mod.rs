//! Control of a running launcher: `agentvisor-launcher ctl ...` over a unix socket beside the
//! database. Requests become the [`crate::manager`]'s jobs, and its replies the answers; `ctl
//! status` is answered here, from the fleet's roster, without waiting for the manager.

pub mod client;
pub mod protocol;
mod server;

pub use protocol::Action;

use crate::manager::Input;
use crate::manager::fleet::Roster;
use agentvisor_shared::WriterHandle;
use std::path::{Path, PathBuf};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// `sun_path` in `struct sockaddr_un`, including the terminating NUL.
const MAX_SOCKET_PATH: usize = 108;

/// The bound control socket, waiting to be served.
pub struct ControlSocket {
    listener: tokio::net::UnixListener,
    path: PathBuf,
}

/// The running control server; [`Control::stop`] ends it and removes the socket.
pub struct Control {
    server: JoinHandle<()>,
    socket: PathBuf,
}

impl Control {
    /// Binds the control socket `<db>.sock`, before any agent starts: a launcher that `ctl`
    /// cannot reach would be a launcher no one can stop an agent of, so this is a start error.
    pub fn bind(db: &Path, group: bool) -> anyhow::Result<ControlSocket> {
        let path = agentvisor_shared::paths::socket_path(db);
        match server::bind(&path, group) {
            Ok(listener) => Ok(ControlSocket { listener, path }),
            Err(e) => {
                let len = path.as_os_str().len();
                let hint = if len >= MAX_SOCKET_PATH {
                    format!(
                        " (a unix socket path may have at most {} bytes, this one has {len}: use a shorter database path)",
                        MAX_SOCKET_PATH - 1
                    )
                } else {
                    String::new()
                };
                anyhow::bail!("cannot create the control socket, which `ctl` needs: {e}{hint}")
            }
        }
    }

    /// Serves the bound control socket: jobs go to the manager's inbox.
    pub fn start(
        socket: ControlSocket,
        inbox: mpsc::Sender<Input>,
        roster: Roster,
        writer: WriterHandle,
        group: bool,
    ) -> Control {
        let server = tokio::spawn(server::serve(socket.listener, inbox, roster, writer, group));
        Control { server, socket: socket.path }
    }

    /// Ends the server (requests under way are answered by the manager, which refuses them
    /// while the launcher stops) and removes the socket so `ctl` says no launcher is running.
    pub fn stop(self) {
        self.server.abort();
        if let Err(e) = std::fs::remove_file(&self.socket) {
            tracing::debug!(error = %e, "could not remove {}", self.socket.display());
        }
    }
}

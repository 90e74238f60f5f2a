//! Control of a running launcher: `agentvisor-launcher ctl ...` over a unix socket beside the
//! database, SIGHUP, and changes to the config file. All of them become [`Job`]s handled one at
//! a time by the [`crate::manager::operator::Operator`], so a reload never races an operator's stop.

pub mod client;
pub mod protocol;
mod server;

pub use protocol::{Action, Response};

use crate::config::Config;
use crate::manager::fleet::{Fleet, Roster};
use crate::manager::operator::Operator;
use agentvisor_shared::WriterHandle;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::signal::unix::Signal;
use tokio::sync::{Mutex, mpsc, oneshot};
use tokio::task::JoinHandle;

/// Who or what asked for an action; named in the events it causes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Ctl(Peer),
    Sighup,
    FileChanged,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::Ctl(p) => write!(f, "{p}"),
            Origin::Sighup => write!(f, "SIGHUP"),
            Origin::FileChanged => write!(f, "a change of the config file"),
        }
    }
}

/// The user at the other end of a control connection, from the kernel (SO_PEERCRED), never
/// from what the client says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    pub uid: u32,
    pub pid: Option<i32>,
    pub user: String,
}

impl Peer {
    pub fn new(uid: u32, pid: Option<i32>) -> Peer {
        let user = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
            .ok()
            .flatten()
            .map_or_else(|| format!("uid {uid}"), |u| u.name);
        Peer { uid, pid, user }
    }
}

impl std::fmt::Display for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "user {} (uid {}", self.user, self.uid)?;
        if let Some(pid) = self.pid {
            write!(f, ", pid {pid}")?;
        }
        write!(f, ")")
    }
}

/// One thing to do, with where to send the answer.
#[derive(Debug)]
pub struct Job {
    pub action: Action,
    pub agents: Vec<String>,
    pub origin: Origin,
    pub reply: Option<oneshot::Sender<Response>>,
}

/// Jobs waiting for the operator; senders wait beyond this.
const JOB_QUEUE: usize = 32;

/// `sun_path` in `struct sockaddr_un`, including the terminating NUL.
const MAX_SOCKET_PATH: usize = 108;

/// The bound control socket, waiting to be served.
pub struct ControlSocket {
    listener: tokio::net::UnixListener,
    path: PathBuf,
}

/// The running control tasks; [`Control::stop`] ends them and removes the socket.
pub struct Control {
    tasks: Vec<JoinHandle<()>>,
    socket: Option<PathBuf>,
    _watch: Option<crate::manager::watch::ConfigWatch>,
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

    /// Starts the operator, serving the bound control socket, the SIGHUP handler and the config
    /// watcher. A config watcher that cannot start is logged and left out.
    pub fn start(
        socket: ControlSocket,
        config: Config,
        fleet: Arc<Mutex<Fleet>>,
        roster: Roster,
        writer: WriterHandle,
        mut sighup: Signal,
    ) -> Control {
        let (jobs, rx) = mpsc::channel(JOB_QUEUE);
        let group = config.launcher.group;
        let config_path = config.path.clone();
        let mut tasks = vec![tokio::spawn(Operator::new(config, fleet, writer.clone()).run(rx))];
        let hup_jobs = jobs.clone();
        tasks.push(tokio::spawn(async move {
            while sighup.recv().await.is_some() {
                let job =
                    Job { action: Action::Reload, agents: Vec::new(), origin: Origin::Sighup, reply: None };
                if hup_jobs.send(job).await.is_err() {
                    return;
                }
            }
        }));
        let watch = match crate::manager::watch::ConfigWatch::start(&config_path, jobs.clone()) {
            Ok(w) => Some(w),
            Err(e) => {
                tracing::warn!(
                    "not watching {} for changes ({e}); reload with SIGHUP or ctl reload",
                    config_path.display()
                );
                None
            }
        };
        tasks.push(tokio::spawn(server::serve(socket.listener, jobs, roster, writer, group)));
        Control { tasks, socket: Some(socket.path), _watch: watch }
    }

    /// Ends the control tasks (an operation under way is abandoned: the launcher is stopping
    /// every agent anyway) and removes the socket so `ctl` says no launcher is running.
    pub fn stop(self) {
        for t in &self.tasks {
            t.abort();
        }
        if let Some(path) = &self.socket
            && let Err(e) = std::fs::remove_file(path)
        {
            tracing::debug!(error = %e, "could not remove {}", path.display());
        }
    }
}

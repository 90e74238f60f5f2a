//! What the manager is told and what it answers. The control socket, SIGHUP, the config
//! watcher, the stop signals and the store's check for a lost database all speak these types;
//! none of them is known here.

use tokio::sync::oneshot;

/// One message in the manager's inbox.
#[derive(Debug)]
pub enum Input {
    /// An operator's or the config's request, carried out one at a time.
    Job(Job),
    /// SIGTERM or SIGINT: the first stops every agent, another one meanwhile kills them.
    Signal(&'static str),
    /// The store's database file is no longer the one at its path: stop every agent and fail.
    DatabaseLost(String),
}

/// Something to do to the agents, with where to send the answer.
#[derive(Debug)]
pub struct Job {
    pub action: Action,
    /// Agent names; empty means every enabled agent (a reload takes none).
    pub agents: Vec<String>,
    pub origin: Origin,
    pub reply: Option<oneshot::Sender<Reply>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Start,
    Stop,
    Restart,
    /// Read the config file again and apply what changed.
    Reload,
    /// A run of scheduled agents now.
    Run,
}

impl Action {
    /// As `ctl` spells it, and in the events it causes (`ctl_stop` ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Start => "start",
            Action::Stop => "stop",
            Action::Restart => "restart",
            Action::Reload => "reload",
            Action::Run => "run",
        }
    }
}

/// How a job went, for whoever asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub ok: bool,
    pub message: String,
}

impl Reply {
    pub fn ok(message: impl Into<String>) -> Reply {
        Reply { ok: true, message: message.into() }
    }

    pub fn error(message: impl Into<String>) -> Reply {
        Reply { ok: false, message: message.into() }
    }
}

/// Why the manager stopped taking jobs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cause {
    Signal(&'static str),
    DatabaseLost(String),
    /// Every sender of the inbox is gone: nothing can ask for anything any more.
    InputClosed,
}

impl Cause {
    /// As events and the session's end name it.
    pub fn name(&self) -> &'static str {
        match self {
            Cause::Signal(s) => s,
            Cause::DatabaseLost(_) => "database loss",
            Cause::InputClosed => "end of input",
        }
    }
}

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

//! The control socket's wire format: one JSON request line from the client, one JSON response
//! line from the launcher, then the connection closes. JSON keeps it scriptable
//! (`echo '{"action":"status"}' | socat - UNIX:state.db.sock`) and easy to extend.

use serde::{Deserialize, Serialize};

/// Longest request line the launcher reads; anything longer is refused.
pub const MAX_REQUEST: u64 = 64 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Start stopped, exited or fatal agents (clears `fatal` and the crash-loop count)
    Start,
    /// Stop agents and keep them stopped until started again
    Stop,
    /// Stop and start agents again (clears `fatal`)
    Restart,
    /// Print the agents' states as the launcher sees them now
    Status,
    /// Read the config file again and apply what changed
    Reload,
    /// Start a run of scheduled agents now (recorded with trigger `manual` and your user)
    Run,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    pub action: Action,
    /// Agent names; empty means every enabled agent (ignored by `reload`).
    #[serde(default)]
    pub agents: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Response {
    pub ok: bool,
    pub message: String,
    /// For `status`: one line per agent, in start-plan order.
    #[serde(default)]
    pub agents: Vec<AgentLine>,
    /// For `status`: the error the store is failing with (also at the end of `message`), absent
    /// while writes succeed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_error: Option<String>,
}

impl Response {
    pub fn error(message: impl Into<String>) -> Response {
        Response { ok: false, message: message.into(), ..Response::default() }
    }
}

/// One agent as `ctl status` shows it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AgentLine {
    pub name: String,
    pub state: String,
    pub health: String,
    pub ready: bool,
    pub pid: Option<i64>,
    pub restarts: i64,
    pub started_ms: Option<i64>,
    pub last_error: Option<String>,
}

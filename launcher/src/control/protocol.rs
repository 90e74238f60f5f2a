//! The control socket's wire format: one JSON request line from the client, one JSON response
//! line from the launcher, then the connection closes. JSON keeps it scriptable
//! (`echo '{"action":"status"}' | socat - UNIX:state.db.sock`) and easy to extend.

use agentvisor_shared::model::{AgentState, AgentStatus, DesiredState, Health};
use agentvisor_shared::status_table;
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

/// One agent as `ctl status` shows it: the cells of the status table both binaries print
/// ([`agentvisor_shared::status_table`]), plus what scripts want besides.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AgentLine {
    pub name: String,
    pub state: AgentState,
    pub health: Health,
    pub ready: bool,
    pub pid: Option<i64>,
    pub restarts: i64,
    pub started_ms: Option<i64>,
    pub last_error: Option<String>,
    #[serde(default)]
    pub last_heartbeat_ms: Option<i64>,
    /// Whether the agent needs an operator's attention (the table's TROUBLE column).
    #[serde(default)]
    pub trouble: bool,
    /// The table's STATUS column: the agent's own text, its error while in trouble, or how it
    /// ended.
    #[serde(default)]
    pub status: String,
}

impl AgentLine {
    /// The line of an enabled agent of the running config, from its supervisor's status and
    /// who stopped it, if an operator keeps it stopped.
    pub fn of(s: &AgentStatus, stopped_by: Option<&str>) -> AgentLine {
        // Only enabled agents have supervisors; the only ones not meant to run are those an
        // operator stopped.
        let desired = if stopped_by.is_some() { DesiredState::Stopped } else { DesiredState::Running };
        let row = status_table::Row::of(s, true, desired, stopped_by);
        AgentLine {
            name: row.name,
            state: row.state,
            health: row.health,
            ready: s.lifecycle.ready,
            pid: row.pid,
            restarts: row.restarts,
            started_ms: row.started_ms,
            last_error: s.lifecycle.last_error.clone(),
            last_heartbeat_ms: row.last_heartbeat_ms,
            trouble: row.trouble,
            status: row.status,
        }
    }

    pub fn row(&self) -> status_table::Row {
        status_table::Row {
            name: self.name.clone(),
            state: self.state,
            health: self.health,
            pid: self.pid,
            started_ms: self.started_ms,
            restarts: self.restarts,
            last_heartbeat_ms: self.last_heartbeat_ms,
            trouble: self.trouble,
            status: self.status.clone(),
        }
    }
}

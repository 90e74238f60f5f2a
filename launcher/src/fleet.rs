//! All supervisors together: registering the agents, starting a supervisor for each, stopping
//! them in reverse dependency order, and summarising their states.

use crate::config::Config;
use crate::notify::{self, RuntimeDir};
use crate::output::Limits;
use crate::supervisor::{Command, Setup, Supervisor};
use agentvisor_shared::model::{AgentSpec, AgentState, AgentStatus, DesiredState};
use agentvisor_shared::{WriteOp, WriterHandle};
use std::collections::HashMap;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinSet;

/// One supervised agent as the rest of the launcher sees it.
pub struct Member {
    pub name: String,
    pub depends_on: Vec<String>,
    pub commands: mpsc::Sender<Command>,
    pub status: watch::Receiver<AgentStatus>,
}

/// The agents' names and status channels, for tasks that only read (sampler, liveness).
#[derive(Clone)]
pub struct Roster(pub Vec<(String, watch::Receiver<AgentStatus>)>);

impl Roster {
    /// Whether every agent has been started and is running, or has failed (waiting to restart,
    /// exited, fatal).
    pub fn settled(&self) -> bool {
        self.0.iter().all(|(_, rx)| {
            matches!(
                rx.borrow().state,
                AgentState::Running | AgentState::Backoff | AgentState::Exited | AgentState::Fatal
            )
        })
    }

    /// "5/6 agents running", plus the number of fatal agents if any.
    pub fn summary(&self) -> String {
        let states: Vec<AgentState> = self.0.iter().map(|(_, rx)| rx.borrow().state).collect();
        let running = states.iter().filter(|s| **s == AgentState::Running).count();
        let fatal = states.iter().filter(|s| **s == AgentState::Fatal).count();
        let mut s = format!("{running}/{} agents running", states.len());
        if fatal > 0 {
            s.push_str(&format!(", {fatal} fatal"));
        }
        s
    }
}

pub struct Fleet {
    /// In start-plan order.
    members: Vec<Member>,
}

/// Notify messages waiting for a supervisor, per agent; a sender blocks beyond this.
const NOTIFY_QUEUE: usize = 256;
const COMMAND_QUEUE: usize = 16;

impl Fleet {
    /// Registers every configured agent and starts a supervisor for each enabled one.
    pub fn start(config: &Config, writer: &WriterHandle, runtime: &RuntimeDir) -> std::io::Result<Fleet> {
        register(config, writer);
        let limits = Limits { line_bytes: config.launcher.log_line_bytes, rate: config.launcher.log_rate };
        let mut members: Vec<Member> = Vec::new();
        let mut statuses: HashMap<String, watch::Receiver<AgentStatus>> = HashMap::new();
        for &i in &config.plan {
            let cfg = config.agents[i].clone();
            let socket = runtime.socket_path(&cfg.name);
            let (notify_tx, notify_rx) = mpsc::channel(NOTIFY_QUEUE);
            notify::listen(&socket, notify_tx.clone())?;
            let (cmd_tx, cmd_rx) = mpsc::channel(COMMAND_QUEUE);
            let initial = AgentStatus { agent: cfg.name.clone(), ..AgentStatus::default() };
            let (published, status_rx) = watch::channel(initial);
            // The plan puts dependencies first, so their status channels already exist.
            let dependencies = cfg
                .depends_on
                .iter()
                .filter_map(|d| statuses.get(d).map(|rx| (d.clone(), rx.clone())))
                .collect();
            statuses.insert(cfg.name.clone(), status_rx.clone());
            members.push(Member {
                name: cfg.name.clone(),
                depends_on: cfg.depends_on.clone(),
                commands: cmd_tx,
                status: status_rx,
            });
            let setup = Setup {
                working_dir: config.working_dir(&cfg),
                cfg,
                socket,
                writer: writer.clone(),
                limits,
                commands: cmd_rx,
                notify_tx,
                notify_rx,
                dependencies,
                published,
            };
            tokio::spawn(Supervisor::new(setup).run());
        }
        Ok(Fleet { members })
    }

    pub fn roster(&self) -> Roster {
        Roster(self.members.iter().map(|m| (m.name.clone(), m.status.clone())).collect())
    }

    /// Stops every agent, each only after the agents that depend on it have stopped;
    /// independent agents stop concurrently. Returns when all are stopped.
    pub async fn stop_all(&self, reason: &str) {
        let mut stopped: HashMap<&str, watch::Receiver<bool>> = HashMap::new();
        let mut flags = Vec::new();
        for m in &self.members {
            let (tx, rx) = watch::channel(false);
            stopped.insert(&m.name, rx);
            flags.push(tx);
        }
        let mut tasks = JoinSet::new();
        for (m, done_flag) in self.members.iter().zip(flags) {
            let dependents: Vec<watch::Receiver<bool>> = self
                .members
                .iter()
                .filter(|d| d.depends_on.contains(&m.name))
                .filter_map(|d| stopped.get(d.name.as_str()).cloned())
                .collect();
            let commands = m.commands.clone();
            let reason = reason.to_owned();
            tasks.spawn(async move {
                for mut d in dependents {
                    // An error means the flag's task ended, which also means "stopped".
                    let _ = d.wait_for(|stopped| *stopped).await;
                }
                let (done, answer) = oneshot::channel();
                if commands.send(Command::Stop { reason, done }).await.is_ok() {
                    let _ = answer.await;
                }
                done_flag.send_replace(true);
            });
        }
        while tasks.join_next().await.is_some() {}
    }

    /// Kills every agent's process group at once.
    pub fn kill_all(&self) {
        for m in &self.members {
            let _ = m.commands.try_send(Command::Kill);
        }
    }
}

/// Writes the registry rows: enabled agents in plan order, then disabled ones in file order.
fn register(config: &Config, writer: &WriterHandle) {
    let disabled = (0..config.agents.len()).filter(|i| !config.plan.contains(i));
    for (position, i) in config.plan.iter().copied().chain(disabled).enumerate() {
        let a = &config.agents[i];
        let spec = AgentSpec {
            name: a.name.clone(),
            description: a.description.clone(),
            kind: "process".into(),
            command: std::iter::once(a.command.clone()).chain(a.args.iter().cloned()).collect(),
            capabilities: a.capabilities.clone(),
            config: serde_json::to_value(a).unwrap_or_default(),
            enabled: a.enabled,
            desired_state: if a.enabled { DesiredState::Running } else { DesiredState::Stopped },
            heartbeat_timeout_ms: a.heartbeat_timeout.and_then(|t| i64::try_from(t.get().as_millis()).ok()),
            position: i64::try_from(position).unwrap_or(i64::MAX),
        };
        let mut ops = vec![WriteOp::RegisterAgent(Box::new(spec))];
        // An enabled agent's supervisor writes its status; a disabled one's row is reset here
        // so it does not show what it was doing under an earlier config.
        if !a.enabled {
            ops.push(WriteOp::Status(Box::new(AgentStatus {
                agent: a.name.clone(),
                ..AgentStatus::default()
            })));
        }
        for op in ops {
            if writer.send(op).is_err() {
                tracing::error!(agent = %a.name, "the store's writer is gone; agent not registered");
            }
        }
    }
}

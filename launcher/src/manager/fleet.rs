//! All supervisors together: registering the agents, starting a supervisor for each, stopping
//! them in reverse dependency order, and summarising their states. Members can be added,
//! replaced and removed while the launcher runs (operator commands, config reload) by the
//! [`super::Manager`], its only owner; readers see the current set through the [`Roster`].

use crate::capture::output::Limits;
use crate::config::Config;
use crate::config::alert::AlertRule;
use crate::notify;
use crate::supervisor::{Command, Setup, Supervisor};
use agentvisor_shared::model::{
    AgentSpec, AgentState, AgentStatus, DesiredState, EventKind, Health, Lifecycle, Severity, status_line,
};
use agentvisor_shared::time::now_ms;
use agentvisor_shared::{NewEvent, Sample, WriteOp, WriterHandle};
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::{JoinHandle, JoinSet};

/// One supervised agent as the rest of the launcher sees it.
pub struct Member {
    pub name: String,
    pub depends_on: Vec<String>,
    pub commands: mpsc::Sender<Command>,
    pub status: watch::Receiver<AgentStatus>,
    /// It has `max_memory` or `max_cpu`: the sampler hands its supervisor every reading.
    limited: bool,
    /// The task reading the agent's notify socket; it holds the socket, so it ends with the
    /// member (a replacement binds the path anew).
    listener: JoinHandle<()>,
    /// Dropped with the member: from then on its supervisor ending is expected (the agent was
    /// removed or replaced, or the launcher is stopping), not a loss.
    _lease: oneshot::Sender<()>,
}

impl Drop for Member {
    fn drop(&mut self) {
        self.listener.abort();
    }
}

/// What readers see of the fleet: its current members, their command channels (for what the
/// sampler observes) and a note for the status line (a config that failed to reload).
#[derive(Clone, Default)]
struct View {
    members: Vec<(String, watch::Receiver<AgentStatus>)>,
    commands: HashMap<String, mpsc::Sender<Command>>,
    note: Option<String>,
    /// The members with resource limits.
    limited: Vec<String>,
    /// The `[[alert]]` rules in force.
    alerts: Arc<[AlertRule]>,
    /// Who stopped each member an operator keeps stopped (`alice (ctl)`), by name.
    stopped_by: HashMap<String, String>,
}

/// The agents' names and status channels, for tasks that only read (sampler, liveness,
/// `ctl status`); it follows members added or removed later. Published by the fleet's owner,
/// so a reader never waits for it.
#[derive(Clone)]
pub struct Roster(watch::Receiver<View>);

impl Roster {
    /// Calls `f` with the current members, in start-plan order. The roster is read-locked
    /// meanwhile (which only holds up a reload's publishing of a new roster), so `f` should
    /// be short; it cannot await. Looked at every second, the members are not copied.
    pub fn with_members<T>(&self, f: impl FnOnce(&[(String, watch::Receiver<AgentStatus>)]) -> T) -> T {
        f(&self.0.borrow().members)
    }

    /// Tells an agent's supervisor what the sampler saw (`Command::Process`,
    /// `Command::Escapees`), without waiting: `false` if it cannot be told now (its command
    /// queue is full, or it is no member).
    pub fn tell(&self, name: &str, command: Command) -> bool {
        let view = self.0.borrow();
        view.commands.get(name).is_some_and(|c| c.try_send(command).is_ok())
    }

    /// Hands each agent with resource limits its reading (`reading` gives it by name), without
    /// waiting: a full command queue skips one reading.
    pub fn tell_usage(&self, reading: impl Fn(&str) -> Option<Command>) {
        let view = self.0.borrow();
        for name in &view.limited {
            if let (Some(cmd), Some(c)) = (reading(name), view.commands.get(name)) {
                let _ = c.try_send(cmd);
            }
        }
    }

    /// The `[[alert]]` rules in force.
    pub fn alerts(&self) -> Arc<[AlertRule]> {
        self.0.borrow().alerts.clone()
    }

    /// Who stopped each agent an operator keeps stopped (`alice (ctl)`), by name: what the
    /// database's `agents.stopped_by` says, without waiting for the writer.
    pub fn stopped_by(&self) -> HashMap<String, String> {
        self.0.borrow().stopped_by.clone()
    }

    /// Whether every agent has been started and is running, or has failed (waiting to restart,
    /// exited, fatal).
    pub fn settled(&self) -> bool {
        self.with_members(|members| {
            members.iter().all(|(_, rx)| {
                matches!(
                    rx.borrow().lifecycle.state,
                    AgentState::Running
                        | AgentState::Scheduled
                        | AgentState::Backoff
                        | AgentState::Exited
                        | AgentState::Fatal
                )
            })
        })
    }

    /// The summary and, while the store is failing, its error: the launcher's status line,
    /// for systemd's `STATUS=`, the session row and `ctl status`.
    pub fn status_line(&self, writer: &WriterHandle) -> String {
        let mut status = self.summary();
        if let Some(e) = writer.storage_error() {
            status.push_str(&format!("{}{e}", status_line::STORAGE_ERROR));
        }
        status
    }

    /// "5/6 agents running", plus the number of fatal agents if any.
    pub fn summary(&self) -> String {
        let (all, running, fatal) = self.with_members(|members| {
            let count = |state| members.iter().filter(|(_, rx)| rx.borrow().lifecycle.state == state).count();
            // A scheduled agent between runs is doing its job.
            let running = count(AgentState::Running) + count(AgentState::Scheduled);
            (members.len(), running, count(AgentState::Fatal))
        });
        let mut s = format!("{running}/{all} agents running");
        if fatal > 0 {
            s.push_str(&format!(", {fatal} fatal"));
        }
        if let Some(note) = &self.0.borrow().note {
            s.push_str(&format!("; {note}"));
        }
        s
    }
}

pub struct Fleet {
    /// In start-plan order.
    members: Vec<Member>,
    view: watch::Sender<View>,
    writer: WriterHandle,
    /// Custom metrics from every supervisor, for the alert rules; the receiver until the
    /// sampler takes it.
    metrics_tap: mpsc::Sender<Vec<Sample>>,
    metrics: Option<mpsc::Receiver<Vec<Sample>>>,
    /// Restart counts of agents no longer members (removed or disabled by a reload), for when
    /// they come back: the count is the agent's since the launcher started.
    restarts: HashMap<String, i64>,
    /// Each agent's latest due time on record when the launcher started, until its first
    /// supervisor takes it: a schedule with `catch_up` makes up a due time missed while no
    /// launcher ran, never one that passed while this launcher ran (a later `ctl start`,
    /// restart or reload starts it afresh).
    last_due: HashMap<String, i64>,
}

/// Notify messages waiting for a supervisor, per agent; a sender blocks beyond this.
const NOTIFY_QUEUE: usize = 256;
const COMMAND_QUEUE: usize = 16;
/// Batches of custom metrics waiting for the sampler (drained every sample); a supervisor's
/// copy is dropped beyond this, never waited for.
const METRICS_QUEUE: usize = 8_192;

impl Fleet {
    /// Registers every configured agent and starts a supervisor for each enabled one.
    /// `last_due`: each agent's latest due time on record, for its first supervisor.
    pub fn start(
        config: &Config,
        writer: &WriterHandle,
        last_due: HashMap<String, i64>,
    ) -> std::io::Result<Fleet> {
        register(config, writer);
        // Agents taken out of the file while no launcher ran are removed as a reload removes
        // them, or they would be shown and counted as stopped agents forever.
        let op = WriteOp::RemoveUnlisted {
            keep: config.agents.iter().map(|a| a.name.clone()).collect(),
            reason: format!("not in {} when the launcher started", config.path.display()),
        };
        if writer.send(op).is_err() {
            tracing::error!("the store's writer is gone; agents gone from the config not marked removed");
        }
        let (view, _) = watch::channel(View::default());
        view.send_modify(|v| v.alerts = config.alerts.clone().into());
        let (metrics_tap, metrics) = mpsc::channel(METRICS_QUEUE);
        let mut fleet = Fleet {
            members: Vec::new(),
            view,
            writer: writer.clone(),
            metrics_tap,
            metrics: Some(metrics),
            restarts: HashMap::new(),
            last_due,
        };
        for &i in &config.plan {
            fleet.spawn(config, i)?;
        }
        Ok(fleet)
    }

    /// Starts a fresh supervisor for `config.agents[i]` (state, backoff and crash-loop count
    /// start anew; the restart count goes on), replacing a member of the same name, which must
    /// be stopped already.
    pub fn spawn(&mut self, config: &Config, i: usize) -> std::io::Result<()> {
        let Some(cfg) = config.agents.get(i).cloned() else { return Ok(()) };
        let limits = Limits { line_bytes: config.launcher.log_line_bytes, rate: config.launcher.log_rate };
        let (notify_tx, notify_rx) = mpsc::channel(NOTIFY_QUEUE);
        let (socket, listener) = notify::listen_new(&cfg.name, &notify_tx)?;
        let (cmd_tx, cmd_rx) = mpsc::channel(COMMAND_QUEUE);
        let restarts = match self.member(&cfg.name) {
            Some(m) => m.status.borrow().lifecycle.restarts,
            None => self.restarts.remove(&cfg.name).unwrap_or(0),
        };
        let initial = AgentStatus {
            agent: cfg.name.clone(),
            lifecycle: Lifecycle { restarts, ..Lifecycle::default() },
            ..AgentStatus::default()
        };
        let (published, status_rx) = watch::channel(initial);
        let (lease, leased) = oneshot::channel();
        // Dependencies start first (the plan puts them first), so their members exist.
        let dependencies = cfg
            .depends_on
            .iter()
            .filter_map(|d| self.member(d).map(|m| (d.clone(), m.status.clone())))
            .collect();
        let member = Member {
            name: cfg.name.clone(),
            depends_on: cfg.depends_on.clone(),
            commands: cmd_tx,
            status: status_rx,
            limited: cfg.limits().any(),
            listener,
            _lease: lease,
        };
        match self.members.iter().position(|m| m.name == cfg.name) {
            Some(at) => self.members[at] = member,
            None => self.members.push(member),
        }
        let last_due_ms = self.last_due.remove(&cfg.name);
        let setup = Setup {
            working_dir: config.working_dir(&cfg),
            cfg,
            socket,
            writer: self.writer.clone(),
            limits,
            commands: cmd_rx,
            notify_tx,
            notify_rx,
            dependencies,
            published: published.clone(),
            metrics_tap: self.metrics_tap.clone(),
            last_due_ms,
        };
        let task = tokio::spawn(Supervisor::new(setup).run());
        tokio::spawn(watch_supervisor(task, leased, published, self.writer.clone()));
        self.publish();
        Ok(())
    }

    /// Lets go of a member (its supervisor ends once it has nothing left to run).
    pub fn remove(&mut self, name: &str) {
        if let Some(m) = self.member(name) {
            let restarts = m.status.borrow().lifecycle.restarts;
            self.restarts.insert(name.to_owned(), restarts);
        }
        self.members.retain(|m| m.name != name);
        self.view.send_modify(|v| {
            v.stopped_by.remove(name);
        });
        self.publish();
    }

    pub fn member(&self, name: &str) -> Option<&Member> {
        self.members.iter().find(|m| m.name == name)
    }

    /// Puts the members in this order (names not listed keep their place at the end).
    pub fn reorder(&mut self, order: &[&str]) {
        self.members.sort_by_key(|m| order.iter().position(|n| *n == m.name).unwrap_or(usize::MAX));
        self.publish();
    }

    /// Puts these `[[alert]]` rules in force.
    pub fn set_alerts(&self, rules: &[AlertRule]) {
        self.view.send_modify(|v| v.alerts = rules.to_vec().into());
    }

    /// Records who stopped a member and keeps it stopped, or (`None`) that it may run again.
    pub fn set_stopped_by(&self, name: &str, by: Option<String>) {
        self.view.send_modify(|v| match by {
            Some(who) => {
                v.stopped_by.insert(name.to_owned(), who);
            }
            None => {
                v.stopped_by.remove(name);
            }
        });
    }

    /// Sets the note shown after the summary in the status line, or clears it.
    pub fn set_note(&self, note: Option<String>) {
        self.view.send_modify(|v| v.note = note);
    }

    fn publish(&self) {
        let members = self.members.iter().map(|m| (m.name.clone(), m.status.clone())).collect();
        let commands = self.members.iter().map(|m| (m.name.clone(), m.commands.clone())).collect();
        let limited = self.members.iter().filter(|m| m.limited).map(|m| m.name.clone()).collect();
        self.view.send_modify(|v| {
            v.members = members;
            v.commands = commands;
            v.limited = limited;
        });
    }

    /// The custom metrics every supervisor reports, once (for the sampler's alert rules).
    pub fn take_metrics(&mut self) -> Option<mpsc::Receiver<Vec<Sample>>> {
        self.metrics.take()
    }

    pub fn roster(&self) -> Roster {
        Roster(self.view.subscribe())
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
                stop(&commands, reason).await;
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

/// Asks a supervisor to stop its agent and keep it stopped; returns once no process of it is
/// left (at once if the supervisor is gone).
pub async fn stop(commands: &mpsc::Sender<Command>, reason: String) {
    let (done, answer) = oneshot::channel();
    if commands.send(Command::Stop { reason, done }).await.is_ok() {
        let _ = answer.await;
    }
}

/// Waits for a supervisor task to end. While its member is still current (the lease is held),
/// any end is a loss: a panic (a bug) or a return nobody asked for. Its agent is then marked
/// `fatal` with the reason, in the store and for `ctl status`, and a `critical` event records
/// it, so the agent is never shown running while nothing supervises it. Its processes are
/// already gone: dropping the supervisor killed them. `ctl start` or `restart` gives it a new
/// supervisor.
async fn watch_supervisor(
    task: JoinHandle<()>,
    mut lease: oneshot::Receiver<()>,
    published: watch::Sender<AgentStatus>,
    writer: WriterHandle,
) {
    let end = task.await;
    if !matches!(lease.try_recv(), Err(oneshot::error::TryRecvError::Empty)) {
        return;
    }
    let why = match end {
        Ok(()) => "its supervisor task ended unexpectedly".to_owned(),
        Err(e) if e.is_panic() => {
            format!("its supervisor task panicked: {}", panic_message(&*e.into_panic()))
        }
        // Only the runtime's shutdown cancels a supervisor: the launcher is stopping.
        Err(_) => return,
    };
    let message = format!(
        "{why}; its processes were killed and it will not be restarted until an operator starts it \
         (ctl start or ctl restart)"
    );
    let mut status = published.borrow().clone();
    let had_process = status.lifecycle.pid.is_some();
    status.lifecycle.state = AgentState::Fatal;
    status.lifecycle.health = Health::Unknown;
    status.lifecycle.ready = false;
    status.lifecycle.pid = None;
    status.lifecycle.pgid = None;
    status.lifecycle.pid_start_ticks = None;
    if had_process {
        status.lifecycle.exited_ms = Some(now_ms());
    }
    status.lifecycle.last_error = Some(message.clone());
    tracing::error!(agent = %status.agent, kind = "supervisor_lost", "{message}");
    let event = NewEvent {
        ts_ms: now_ms(),
        agent: Some(status.agent.clone()),
        kind: EventKind::SupervisorLost,
        severity: Severity::Critical,
        message,
    };
    crate::event::offer_to_hooks(&event);
    for op in [WriteOp::Status(Box::new(status.clone())), WriteOp::Event(event)] {
        if writer.send(op).is_err() {
            tracing::error!(agent = %status.agent, "the store's writer is gone; the lost supervisor not recorded");
        }
    }
    published.send_replace(status);
}

/// The text a panic was raised with.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    match (payload.downcast_ref::<&str>(), payload.downcast_ref::<String>()) {
        (Some(s), _) => (*s).to_owned(),
        (None, Some(s)) => s.clone(),
        (None, None) => "(no message)".to_owned(),
    }
}

/// Writes the registry rows: enabled agents in plan order, then disabled ones in file order.
pub fn register(config: &Config, writer: &WriterHandle) {
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

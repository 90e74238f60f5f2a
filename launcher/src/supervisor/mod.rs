//! One supervisor task per agent. It owns the agent's process, its state machine, restart
//! policy and protocol input, and is the only writer of the agent's status row. Others talk to
//! it through its command channel and watch its status through a `watch` channel.
//!
//! Lifecycle: `stopped` (waiting for dependencies to be ready) -> `starting` (until ready)
//! -> `running` -> on exit: `backoff` -> `starting` ... or `exited` (no restart by policy) or
//! `fatal` (crash loop); a stop command goes through `stopping` to `stopped`.

#[cfg(debug_assertions)]
pub mod fault;
mod notices;
mod policy;
mod run;

use crate::capture::output::Limits;
use crate::config::AgentConfig;
use crate::notify::Parsed;
use agentvisor_shared::model::{AgentState, AgentStatus, EventKind, Health, Severity};
use agentvisor_shared::time::now_ms;
use agentvisor_shared::{NewEvent, Sample, WriteOp, WriterHandle};
use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};

/// What others can ask of a supervisor.
#[derive(Debug)]
pub enum Command {
    /// Stop the agent (stop signal, then SIGKILL to its group after `stop_timeout`) and keep it
    /// stopped; `done` is answered once no process of it is left.
    Stop { reason: String, done: oneshot::Sender<()> },
    /// Kill the agent's process group at once (a second SIGINT to the launcher).
    Kill,
    /// What the sampler saw of the agent's main process, when that changes.
    Process(ProcessState),
}

/// Whether an agent's main process is stopped: it exists but runs no code until it gets
/// SIGCONT (`T` in `/proc/PID/stat`: SIGSTOP, SIGTSTP, SIGTTIN, SIGTTOU) or its tracer lets
/// it go (`t`: a debugger). Heartbeats alone would tell only agents that send them, and only
/// after their timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessState {
    pub pid: i32,
    pub stopped: Option<Stopped>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stopped {
    /// `T` or `t`.
    pub state: char,
    /// When it was first seen stopped.
    pub since_ms: i64,
}

/// Everything a supervisor needs, handed over when it is spawned.
pub struct Setup {
    pub cfg: AgentConfig,
    pub working_dir: PathBuf,
    /// The agent's `NOTIFY_SOCKET`.
    pub socket: String,
    pub writer: WriterHandle,
    pub limits: Limits,
    pub commands: mpsc::Receiver<Command>,
    pub notify_tx: mpsc::Sender<Parsed>,
    pub notify_rx: mpsc::Receiver<Parsed>,
    /// Status of each agent this one depends on.
    pub dependencies: Vec<(String, watch::Receiver<AgentStatus>)>,
    pub published: watch::Sender<AgentStatus>,
}

pub struct Supervisor {
    s: Setup,
    status: AgentStatus,
    tracker: policy::Tracker,
    /// Status changed in ways worth writing but not worth a write of its own (heartbeats,
    /// protocol fields): written by the next flush tick, and dropped under pressure.
    dirty: bool,
    samples: Vec<Sample>,
    /// A stop that arrived while the process was already being stopped (for a restart):
    /// answered when it is gone, and the restart is skipped.
    pending_stop: Option<oneshot::Sender<()>>,
    /// When the agent last caused an event by what it said (`X_ERROR`, `STOPPING`).
    last_agent_event: Option<std::time::Instant>,
    /// Custom metric names the agent has used, to bound how many series it can create.
    metric_names: HashSet<String>,
    /// While the agent's process is stopped: why it is shown unhealthy. `status` keeps what
    /// heartbeats say, shown again once the process runs.
    stopped: Option<String>,
}

/// How often coalesced status changes and custom metrics are handed to the writer.
const FLUSH_EVERY: Duration = Duration::from_millis(250);
/// At most one event per this interval comes from an agent's own messages.
const AGENT_EVENT_EVERY: Duration = Duration::from_secs(1);
/// How often a waiting agent looks at its dependencies again.
const DEPENDENCY_POLL: Duration = Duration::from_millis(50);

impl Supervisor {
    pub fn new(s: Setup) -> Supervisor {
        // What the fleet published for a new member: a fresh status carrying the agent's
        // restart count so far.
        let status = s.published.borrow().clone();
        Supervisor {
            s,
            status,
            tracker: policy::Tracker::default(),
            dirty: false,
            samples: Vec::new(),
            pending_stop: None,
            last_agent_event: None,
            metric_names: HashSet::new(),
            stopped: None,
        }
    }

    pub async fn run(mut self) {
        self.commit();
        if self.wait_for_dependencies().await {
            self.supervise().await;
        }
        if let Some(done) = self.pending_stop.take() {
            let _ = done.send(());
        }
        // Nothing left to run: answer commands until the launcher lets go of this agent.
        while let Some(cmd) = self.s.commands.recv().await {
            if let Command::Stop { done, .. } = cmd {
                let _ = done.send(());
            }
        }
    }

    /// Waits until every dependency is ready. `false` if told to stop meanwhile.
    async fn wait_for_dependencies(&mut self) -> bool {
        let waiting_for = |deps: &[(String, watch::Receiver<AgentStatus>)]| {
            deps.iter()
                .filter(|(_, rx)| !rx.borrow().lifecycle.ready)
                .map(|(n, _)| n.clone())
                .collect::<Vec<_>>()
        };
        let pending = waiting_for(&self.s.dependencies);
        if pending.is_empty() {
            return true;
        }
        self.event(
            EventKind::Waiting,
            Severity::Info,
            format!("waiting for {} to be ready", pending.join(", ")),
        );
        let mut poll = tokio::time::interval(DEPENDENCY_POLL);
        loop {
            tokio::select! {
                _ = poll.tick() => {
                    if waiting_for(&self.s.dependencies).is_empty() {
                        return true;
                    }
                }
                cmd = self.s.commands.recv() => match cmd {
                    Some(Command::Stop { done, .. }) => {
                        let _ = done.send(());
                        return false;
                    }
                    Some(Command::Kill | Command::Process(_)) => {}
                    None => return false,
                },
            }
        }
    }

    /// Writes the full status row now (never dropped) and publishes it.
    fn commit(&mut self) {
        self.dirty = false;
        let shown = self.shown();
        if self.s.writer.send(WriteOp::Status(Box::new(shown.clone()))).is_err() {
            tracing::error!(agent = %self.status.agent, "the store's writer is gone; status not recorded");
        }
        self.s.published.send_replace(shown);
    }

    /// The status as written and published: a stopped process overrides health and error.
    fn shown(&self) -> AgentStatus {
        let mut shown = self.status.clone();
        if let Some(reason) = &self.stopped {
            shown.lifecycle.health = Health::Unhealthy;
            shown.lifecycle.last_error = Some(reason.clone());
        }
        shown
    }

    /// Shows what the sampler saw of the agent's process, if it is still this run's process.
    fn observe(&mut self, seen: ProcessState) {
        if self.status.lifecycle.pid != Some(i64::from(seen.pid)) {
            return;
        }
        match (seen.stopped, self.stopped.is_some()) {
            (Some(Stopped { state, since_ms }), false) => {
                let how = if state == 't' { "by a debugger or tracer" } else { "SIGSTOP or SIGTSTP" };
                let since =
                    std::time::UNIX_EPOCH + Duration::from_millis(u64::try_from(since_ms).unwrap_or(0));
                let reason = format!(
                    "process {} is stopped (state {state}: {how}) since {}",
                    seen.pid,
                    humantime::format_rfc3339_seconds(since)
                );
                self.stopped = Some(reason.clone());
                self.commit();
                self.event(
                    EventKind::ProcessStopped,
                    Severity::Warning,
                    format!("{reason}; it runs no code until it is continued (SIGCONT)"),
                );
            }
            (None, true) => {
                self.stopped = None;
                self.commit();
                self.event(
                    EventKind::ProcessResumed,
                    Severity::Info,
                    format!("process {} runs again", seen.pid),
                );
            }
            _ => {}
        }
    }

    /// Whether coalesced changes wait for [`Supervisor::flush`].
    fn has_pending(&self) -> bool {
        self.dirty || !self.samples.is_empty()
    }

    /// Hands coalesced status changes and custom metrics to the writer, if it has room.
    fn flush(&mut self) {
        if self.dirty {
            let shown = self.shown();
            self.dirty = !self.s.writer.offer(WriteOp::Status(Box::new(shown.clone())));
            self.s.published.send_replace(shown);
        }
        if !self.samples.is_empty() {
            let _ = self.s.writer.offer(WriteOp::Samples(std::mem::take(&mut self.samples)));
        }
    }

    fn set_state(&mut self, state: AgentState) {
        self.status.lifecycle.state = state;
        self.commit();
    }

    /// Records an event for this agent and logs it at a matching level.
    fn event(&self, kind: EventKind, severity: Severity, message: String) {
        let agent = &self.status.agent;
        let kind_name = kind.as_str();
        match severity {
            Severity::Info => tracing::info!(agent = %agent, kind = kind_name, "{message}"),
            Severity::Warning => tracing::warn!(agent = %agent, kind = kind_name, "{message}"),
            Severity::Error | Severity::Critical => {
                tracing::error!(agent = %agent, kind = kind_name, "{message}")
            }
        }
        let e = NewEvent { ts_ms: now_ms(), agent: Some(agent.clone()), kind, severity, message };
        if self.s.writer.send(WriteOp::Event(e)).is_err() {
            tracing::error!(agent = %agent, "the store's writer is gone; event not recorded");
        }
    }

    /// An event caused by the agent's own messages. Events are never dropped by the writer,
    /// so an agent that sends a new `X_ERROR` in a tight loop gets at most one per
    /// [`AGENT_EVENT_EVERY`]; its state row still shows the latest.
    fn agent_event(&mut self, kind: EventKind, severity: Severity, message: String) {
        let now = std::time::Instant::now();
        if self.last_agent_event.is_some_and(|t| now.duration_since(t) < AGENT_EVENT_EVERY) {
            tracing::debug!(agent = %self.status.agent, kind = kind.as_str(), "event suppressed (too frequent): {message}");
            return;
        }
        self.last_agent_event = Some(now);
        self.event(kind, severity, message);
    }

    fn reset_health(&mut self) {
        self.status.lifecycle.health = Health::Unknown;
        self.status.lifecycle.ready = false;
        self.stopped = None;
    }
}

/// A duration for messages, to the millisecond: "1s 500ms".
fn human(d: Duration) -> String {
    let ms = Duration::from_millis(u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    humantime::format_duration(ms).to_string()
}

//! One supervisor task per agent. It owns the agent's process, its state machine, restart
//! policy and protocol input, and is the only writer of the agent's status row. Others talk to
//! it through its command channel and watch its status through a `watch` channel.
//!
//! The decisions are a pure state machine (`machine.rs`: `step(state, input, now)` appends
//! effects); `run.rs` is the async shell that turns the process, the agent's messages, the
//! commands and the timers into inputs and performs the effects. The published
//! [`AgentState`] is in brackets:
//!
//! | state                  | input                           | next, effects                                  |
//! |------------------------|---------------------------------|------------------------------------------------|
//! | Waiting [stopped]      | dependencies ready              | Spawning; spawn                                |
//! |                        | stop / let go (kill: ignored)   | Stopped; answer stops                          |
//! | Spawning               | spawned / spawn failed          | Running [starting or running] / as on exit     |
//! | Running [starting]     | READY=1                         | Running [running]                              |
//! |                        | readiness probe passes, or an   | Running [running]; the readiness probe stops,  |
//! |                        | output line matches             | the liveness probe starts                      |
//! |                        | `ready_log_line`                |                                                |
//! | Running [running]      | liveness probe passes           | healthy                                        |
//! |                        | liveness probe fails            | as a missed heartbeat (below)                  |
//! |                        | usage over a limit `limit_for`  | `on_limit`: Stopping (failed), Stopping (as a  |
//! |                        |                                 | stop command) or unhealthy                     |
//! |                        | sign of life                    | heartbeat deadline moves (no timer re-armed)   |
//! |                        | ready / heartbeat deadline      | catch up, stall grace, then: Stopping (failed) |
//! |                        |                                 | or, heartbeat with `mark`, unhealthy           |
//! |                        | exit                            | as the restart policy says (below)             |
//! |                        | stop                            | Stopping [stopping]; stop signal, SIGCONT      |
//! |                        | kill / let go                   | Stopping (killed); SIGKILL to the group        |
//! | Stopping [stopping]    | exit, group gone                | SIGKILL to leftovers; failed: policy; command: |
//! |                        |                                 | Stopped [stopped], answer stops                |
//! |                        | `stop_timeout` / kill           | SIGKILL to the group, then wait for the exit   |
//! |                        | stop                            | answered with it; no restart follows           |
//! | (a run ended)          | restart policy                  | Exited [exited] / Fatal [fatal] (crash loop) / |
//! |                        |                                 | Backoff [backoff]                              |
//! | Backoff [backoff]      | delay elapsed                   | Spawning; restart count + 1                    |
//! |                        | stop / let go (kill: ignored)   | Stopped [stopped]; answer stops                |
//! | Stopped, Exited, Fatal | stop                            | answered at once                               |
//!
//! A scheduled agent (`schedule = { ... }`) is not kept alive: each run is one spawn, and the
//! shell's schedule timer (`runs.rs`) turns due times into [`Input::RunDue`]:
//!
//! | state                  | input                           | next, effects                                  |
//! |------------------------|---------------------------------|------------------------------------------------|
//! | Waiting [stopped]      | dependencies ready              | Scheduled [scheduled]; schedule timer on       |
//! |                        | run due                         | it waits (one at most) for the above           |
//! | Scheduled [scheduled]  | run due                         | Spawning; a new run (attempts start over)      |
//! |                        | stop / let go                   | Stopped [stopped]; schedule paused             |
//! | Running, Spawning,     | run due, `overlap = "skip"`     | the new run recorded as skipped                |
//! | Stopping, Backoff      | run due, `"queue"`              | it waits (one at most; more are skipped)       |
//! |                        | run due, `"replace"`            | Stopping (replaced, outcome stopped), then it  |
//! | Running                | `timeout`                       | Stopping (timed out: a failure)                |
//! | (a run ended)          | restart policy                  | Backoff (the same run's next attempt), else:   |
//! |                        |                                 | the waiting run / Scheduled / Stopped (paused) |
//! | Stopped (paused)       | run due, manual                 | Spawning; back to Stopped after the run        |
//! |                        | run due, scheduled              | recorded as skipped                            |
//!
//! Every run, of any agent, ends with its outcome ([`Effect::EndRun`]) and is recorded in
//! `runs`; a stop on command pauses a schedule (`paused` in the machine) until a new
//! supervisor (`ctl start`, a reload) begins.
//!
//! What the agent reports (status text, task, tokens, metrics) is applied outside the machine
//! (`notices.rs`): it decides nothing. Probes run as tasks of their own (`crate::probe`); their
//! results are inputs, counted against the thresholds by `tally.rs` (`probing.rs` is the
//! shell's part).

#[cfg(debug_assertions)]
pub mod fault;
mod machine;
mod notices;
mod policy;
mod probe_set;
mod probing;
mod run;
mod run_state;
mod runs;
mod tally;
mod tasks;
mod timers;

use crate::capture::output::Limits;
use crate::config::AgentConfig;
use crate::notify::Parsed;
use crate::process::child::AgentChild;
use agentvisor_shared::model::{AgentState, AgentStatus, EventKind, Health, Severity};
use agentvisor_shared::{Sample, WriteOp, WriterHandle};
use machine::{Effect, Input, Machine};
use std::collections::{HashSet, VecDeque};
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::time::Duration;
use tokio::net::unix::pipe;
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
    /// The sampler's reading of the run's whole process tree (run `pid`), for the resource
    /// limits; sent each sample only to agents that have limits.
    Usage { pid: i32, cpu_percent: Option<f64>, memory_bytes: u64 },
    /// A run of a scheduled agent now (`ctl run`), asked for by `user`.
    RunNow { user: String },
    /// The sampler's latest finding of the run `pgid`'s processes outside its process group
    /// (see [`crate::process::contain`]), when that changes: stopping the run signals them.
    Escapees { pgid: i32, processes: Vec<(i32, u64)> },
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
    /// A copy of each batch of custom metrics, for the alert rules (dropped when full).
    pub metrics_tap: mpsc::Sender<Vec<Sample>>,
    /// The agent's latest due time on record when the launcher started, given to its first
    /// supervisor only: what a schedule with `catch_up` missed while no launcher ran.
    pub last_due_ms: Option<i64>,
}

pub struct Supervisor {
    s: Setup,
    status: AgentStatus,
    machine: Machine,
    /// Inputs waiting for the machine, and its effects (buffers kept across steps).
    queue: VecDeque<Input>,
    effects: Vec<Effect>,
    timers: timers::Timers,
    /// The stops received and not answered yet: answered once no process is left.
    owed: Vec<oneshot::Sender<()>>,
    /// Until the launcher lets go of the agent.
    commands_open: bool,
    /// The current run's main process, and its process group.
    child: Option<AgentChild>,
    pid: i32,
    /// The new run's output and notify pipe, read once its start is recorded.
    io: Option<(pipe::Receiver, pipe::Receiver, OwnedFd)>,
    flush_timer: timers::Slot,
    last_flush: Option<tokio::time::Instant>,
    /// Status changed in ways worth writing but not worth a write of its own (heartbeats,
    /// protocol fields): written by the next flush tick, and dropped under pressure.
    dirty: bool,
    samples: Vec<Sample>,
    /// When the agent last caused an event by what it said (`X_ERROR`, `STOPPING`).
    last_agent_event: Option<std::time::Instant>,
    /// Custom metric names the agent has used, to bound how many series it can create.
    metric_names: HashSet<String>,
    /// While the agent's process is stopped: why it is shown unhealthy. `status` keeps what
    /// heartbeats say, shown again once the process runs.
    stopped: Option<String>,
    probes: probe_set::Probes,
    /// The run the current (or next) process belongs to.
    run: run_state::Current,
    /// A scheduled agent's schedule, and the timer armed for its next due time.
    scheduler: Option<run_state::Scheduler>,
    due_timer: timers::Slot,
    /// The task the agent reported last (`X_TASK`) while it is not over (`tasks.rs`).
    task: Option<OpenTask>,
    /// The escapees the sampler last told of, and the process group of the run they belong
    /// to (a later run starts with none).
    escapees: (i32, Vec<(i32, u64)>),
}

/// A task in progress, with the run's running totals when it began.
#[derive(Debug)]
struct OpenTask {
    text: String,
    tokens_in: Option<i64>,
    tokens_out: Option<i64>,
    cost: Option<f64>,
}

/// How often coalesced status changes and custom metrics are handed to the writer.
const FLUSH_EVERY: Duration = Duration::from_millis(250);
/// At most one event per this interval comes from an agent's own messages.
const AGENT_EVENT_EVERY: Duration = Duration::from_secs(1);

impl Supervisor {
    pub fn new(s: Setup) -> Supervisor {
        // What the fleet published for a new member: a fresh status carrying the agent's
        // restart count so far.
        let status = s.published.borrow().clone();
        let probes = probe_set::Probes::new(&s.cfg, &s.working_dir);
        Supervisor {
            probes,
            s,
            machine: Machine::new(status.lifecycle.restarts),
            status,
            queue: VecDeque::new(),
            effects: Vec::new(),
            timers: timers::Timers::default(),
            owed: Vec::new(),
            commands_open: true,
            child: None,
            pid: 0,
            io: None,
            flush_timer: timers::Slot::default(),
            last_flush: None,
            dirty: false,
            samples: Vec::new(),
            last_agent_event: None,
            metric_names: HashSet::new(),
            stopped: None,
            run: run_state::Current::default(),
            scheduler: None,
            due_timer: timers::Slot::default(),
            task: None,
            escapees: (0, Vec::new()),
        }
    }

    pub async fn run(mut self) {
        self.commit();
        // Rows of probes no longer configured go; the configured ones show "unknown".
        let op = self.probes.write_op(&self.status.agent);
        let _ = self.s.writer.send(op);
        let waiting_for = self
            .s
            .dependencies
            .iter()
            .filter(|(_, rx)| !rx.borrow().lifecycle.ready)
            .map(|(n, _)| n.clone())
            .collect();
        self.queue.push_back(Input::Start { waiting_for });
        self.start_schedule();
        self.settle(tokio::time::Instant::now()).await;
        self.drive().await;
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
        self.dirty || !self.samples.is_empty() || self.probes.dirty
    }

    /// Hands coalesced status changes and custom metrics to the writer, if it has room.
    fn flush(&mut self) {
        if self.dirty {
            let shown = self.shown();
            self.dirty = !self.s.writer.offer(WriteOp::Status(Box::new(shown.clone())));
            self.s.published.send_replace(shown);
        }
        if !self.samples.is_empty() {
            let _ = self.s.metrics_tap.try_send(self.samples.clone());
            let _ = self.s.writer.offer(WriteOp::Samples(std::mem::take(&mut self.samples)));
        }
        if self.probes.dirty {
            let op = self.probes.write_op(&self.status.agent);
            self.probes.dirty = !self.s.writer.offer(op);
        }
    }

    fn set_state(&mut self, state: AgentState) {
        self.status.lifecycle.state = state;
        self.commit();
    }

    /// Records an event for this agent and logs it at a matching level.
    fn event(&self, kind: EventKind, severity: Severity, message: String) {
        crate::event::record(&self.s.writer, Some(&self.status.agent), kind, severity, message);
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

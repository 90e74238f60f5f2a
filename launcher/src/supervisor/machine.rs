//! The supervisor's decisions as a pure state machine: [`Machine::step`] takes the state, one
//! [`Input`] and the time, changes the state and appends the [`Effect`]s the async shell
//! (`run.rs`) performs. No clock, no I/O, no tokio: every edge case is a unit test. Inputs
//! that an effect asks for ([`Effect::Spawn`], [`Effect::ProbeGroup`], [`Effect::CatchUp`],
//! [`Effect::CheckDependencies`]) come back as the next inputs.
//!
//! What an agent reports (status text, task, tokens, metrics, heartbeat counts) is no
//! lifecycle decision and is applied outside (`notices.rs`); only its signs of life and
//! `READY=1` are inputs here.

use super::policy::{Decision, Tracker};
use crate::config::{AgentConfig, OnHeartbeatTimeout, Overlap, Ready, Restart};
use crate::deadline;
use agentvisor_shared::model::{AgentState, EventKind, RunOutcome, RunTrigger, Severity};
use nix::sys::signal::Signal;
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::time::{Duration, Instant};

/// How often a waiting agent looks at its dependencies again.
pub const DEPENDENCY_POLL: Duration = Duration::from_millis(50);
/// How often a stopping agent's process group is checked once its main process has exited.
pub const GROUP_POLL: Duration = Duration::from_millis(50);
/// A deadline noticed more than this after it passed means the launcher itself did not run
/// meanwhile (stopped, blocked, starved of CPU, a paused VM): see [`stall_grace`].
pub const STALL: Duration = Duration::from_millis(250);

/// The timers the machine arms; at most one of each kind is armed at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timer {
    /// The next look at the dependencies (waiting), or at the process group (stopping).
    Poll,
    /// `ready_timeout` after the spawn, while not ready.
    Ready,
    /// The heartbeat deadline. Armed lazily: a sign of life only moves the deadline kept in
    /// the state, and the timer catches up when it fires.
    Heartbeat,
    /// `stop_timeout` after the stop signal.
    Stop,
    /// The end of a backoff delay.
    Backoff,
    /// A scheduled run's `timeout` after its spawn.
    Timeout,
}

impl Timer {
    pub const ALL: [Timer; 6] =
        [Timer::Poll, Timer::Ready, Timer::Heartbeat, Timer::Stop, Timer::Backoff, Timer::Timeout];
}

/// What a run is for: recorded with it in `runs`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunRequest {
    pub trigger: RunTrigger,
    pub due_ms: Option<i64>,
    /// Who asked for a manual run.
    pub user: Option<String>,
}

impl RunRequest {
    /// A process start of an agent without a schedule.
    pub fn start() -> RunRequest {
        RunRequest { trigger: RunTrigger::Start, due_ms: None, user: None }
    }
}

/// What happened.
#[derive(Debug)]
pub enum Input {
    /// The supervisor begins; these dependencies are not ready yet.
    Start {
        waiting_for: Vec<String>,
    },
    /// Answers [`Effect::CheckDependencies`].
    Dependencies {
        ready: bool,
    },
    /// Answers [`Effect::Spawn`].
    Spawned {
        pid: i32,
    },
    /// Answers [`Effect::Spawn`]: the process could not be started.
    SpawnFailed {
        message: String,
    },
    /// A sign of life (a heartbeat or `READY=1`); `ready` if it included `READY=1`.
    Alive {
        ready: bool,
    },
    Timer(Timer),
    /// Answers [`Effect::CatchUp`]: the messages waiting when the timer fired are applied.
    CaughtUp(Timer),
    /// The main process ended (`None`: its status could not be read).
    Exited(Option<ExitStatus>),
    /// Answers [`Effect::ProbeGroup`]: whether anything of the agent's run is left.
    Group {
        alive: bool,
    },
    /// Stop and stay stopped; the shell holds the `done` answered by [`Effect::AnswerStops`].
    Stop {
        reason: String,
    },
    /// Kill the process group at once.
    Kill,
    /// The launcher let go of the agent (its command channel closed).
    LetGo,
    /// A run of a scheduled agent is due (its schedule, a catch-up, an operator's `ctl run`).
    RunDue(RunRequest),
}

/// What the shell does.
#[derive(Debug, PartialEq, Eq)]
pub enum Effect {
    /// Look at the dependencies; answer [`Input::Dependencies`].
    CheckDependencies,
    /// Start the process (the status is prepared for a new run); answer [`Input::Spawned`] or
    /// [`Input::SpawnFailed`].
    Spawn,
    /// The status says ready.
    Ready,
    /// The status takes this state and is written and published at once.
    SetState(AgentState),
    /// The status says unhealthy, written and published at once.
    MarkUnhealthy,
    /// Record an event.
    Event {
        kind: EventKind,
        severity: Severity,
        message: String,
    },
    /// A deadline passed while the launcher itself was not running: log it.
    Stall {
        waiting_for: &'static str,
        late: Duration,
        period: Duration,
    },
    /// The stop signal to the process group, then SIGCONT so a stopped process acts on it.
    SignalStop,
    /// SIGKILL to the process group.
    KillGroup,
    /// Whether anything of the run is left; answer [`Input::Group`].
    ProbeGroup,
    /// Apply the messages already waiting (yielding once if none was a sign of life), then
    /// answer [`Input::CaughtUp`].
    CatchUp(Timer),
    /// Record the end of the process in the status and kill what it left in its group.
    RecordExit(Option<ExitStatus>),
    /// The status's restart count.
    SetRestarts(i64),
    /// Answer every stop command received so far: no process of the agent is left.
    AnswerStops,
    Arm(Timer, Instant),
    Disarm(Timer),
    /// The next spawn is a new run for this request (attempt 0; a backoff's restart is the
    /// next attempt of the same run).
    RunStarting(RunRequest),
    /// The current run ended so; its exit (if any) is recorded already.
    EndRun(RunOutcome),
    /// This run came due while another ran: recorded as skipped, never started.
    Skipped(RunRequest),
    /// Keep the schedule's timer running (`true`) or stop it: the schedule is paused.
    Schedule(bool),
}

/// Where the supervisor is.
#[derive(Debug, PartialEq, Eq)]
pub enum State {
    /// Until every dependency is ready.
    Waiting,
    /// A spawn was asked for; `stop` holds a stop that came meanwhile.
    Spawning { stop: Option<String> },
    /// The process runs (starting until ready).
    Running(Run),
    /// The process is being stopped or killed.
    Stopping(Stop),
    /// Waiting to restart.
    Backoff { until: Instant },
    /// Final: stopped on command (or before it ever ran).
    Stopped,
    /// Final: ended and not restarted by the restart policy.
    Exited,
    /// Final: a crash loop.
    Fatal,
    /// A scheduled agent between runs.
    Scheduled,
}

/// One run of the process.
#[derive(Debug, PartialEq, Eq)]
pub struct Run {
    pub pid: i32,
    pub started: Instant,
    pub ready: bool,
    pub ready_deadline: Instant,
    /// The heartbeat deadline; `None` while the heartbeat timer is idle.
    pub hb_deadline: Option<Instant>,
    /// The heartbeat deadline that fired, while catching up.
    pub hb_due: Option<Instant>,
    /// The deadlines last moved by a stall (see [`stall_grace`]), so they move once only.
    pub ready_extended: Option<Instant>,
    pub hb_extended: Option<Instant>,
}

/// A stop of the process.
#[derive(Debug, PartialEq, Eq)]
pub struct Stop {
    pub started: Instant,
    pub why: Why,
    /// The main process's end, once seen.
    pub exit: Option<Option<ExitStatus>>,
    /// SIGKILL sent: only the main process's exit is awaited.
    pub killed: bool,
    /// `stop_timeout` passed; the group probe decides whether that was a timeout.
    pub timed_out: bool,
    /// A stop command came while stopping for a restart: no restart follows.
    pub then_stop: bool,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Why {
    /// On command: stay stopped.
    Command { reason: String },
    /// The run failed (the reason: ready timeout, missed heartbeat): the restart policy
    /// decides what follows.
    Failed(&'static str),
    /// A scheduled run ran past its `timeout`: a failure, recorded as `timed_out`.
    TimedOut,
    /// A scheduled run gives way to a new one (`overlap = "replace"`).
    Replaced,
}

pub struct Machine {
    state: State,
    tracker: Tracker,
    restarts: i64,
    /// The command channel is closed: nothing will be asked of this agent any more.
    let_go: bool,
    /// A scheduled run waiting for the current one to end (`overlap = "queue"` or `"replace"`,
    /// or due while the agent waits for its dependencies).
    queued: Option<RunRequest>,
    /// A scheduled agent stopped on command: no scheduled runs until a new supervisor.
    paused: bool,
}

impl Machine {
    /// A machine waiting to start, with the agent's restart count so far.
    pub fn new(restarts: i64) -> Machine {
        Machine {
            state: State::Waiting,
            tracker: Tracker::default(),
            restarts,
            let_go: false,
            queued: None,
            paused: false,
        }
    }

    #[cfg(test)]
    pub fn state(&self) -> &State {
        &self.state
    }

    pub fn is_running(&self) -> bool {
        matches!(self.state, State::Running(_))
    }

    /// No process and nothing more to do but answer stops.
    pub fn is_final(&self) -> bool {
        matches!(self.state, State::Stopped | State::Exited | State::Fatal)
    }

    /// Takes one input at `now`; appends what to do to `out`.
    pub fn step(&mut self, cfg: &AgentConfig, input: Input, now: Instant, out: &mut Vec<Effect>) {
        if matches!(input, Input::LetGo) {
            self.let_go = true;
        }
        let scheduled = cfg.schedule.is_some();
        if scheduled && matches!(input, Input::Stop { .. } | Input::LetGo) && !self.paused {
            self.paused = true;
            self.queued = None;
            out.push(Effect::Schedule(false));
        }
        let input = match input {
            Input::RunDue(request) => return self.run_due(cfg, request, now, out),
            input => input,
        };
        let next = match &mut self.state {
            State::Waiting => waiting(scheduled, input, now, out),
            State::Scheduled => between_runs(input, out),
            State::Spawning { stop } => spawning(cfg, stop, input, now, out),
            State::Running(run) => running(cfg, run, input, now, out),
            State::Stopping(stop) => stopping(cfg, stop, input, now, out),
            State::Backoff { .. } => backoff(&mut self.restarts, input, out),
            State::Stopped | State::Exited | State::Fatal => {
                if let Input::Stop { .. } = input {
                    out.push(Effect::AnswerStops);
                }
                Next::Stay
            }
        };
        match next {
            Next::Stay => {}
            Next::To(state) => self.state = state,
            Next::Ended { failed, ran_for, then_stop } => {
                self.state = self.after_run(cfg, failed, ran_for, then_stop, now, out);
            }
            Next::Idle => {
                out.push(Effect::Schedule(true));
                self.state = self.idle(out);
            }
        }
        // With the command channel closed nobody can stop a backoff any more.
        if self.let_go && matches!(self.state, State::Backoff { .. }) {
            self.step(cfg, Input::LetGo, now, out);
        }
    }

    /// What follows a run that ended: stopped (a stop came while stopping for a restart),
    /// exited (the restart policy says no), fatal (a crash loop) or a backoff.
    fn after_run(
        &mut self,
        cfg: &AgentConfig,
        failed: bool,
        ran_for: Duration,
        then_stop: bool,
        now: Instant,
        out: &mut Vec<Effect>,
    ) -> State {
        if then_stop {
            out.push(Effect::SetState(AgentState::Stopped));
            out.push(event(EventKind::Stopped, Severity::Info, "stopped while being restarted".into()));
            out.push(Effect::AnswerStops);
            return State::Stopped;
        }
        let restart = match cfg.restart {
            Restart::Always => true,
            Restart::OnFailure => failed,
            Restart::Never => false,
        };
        let scheduled = cfg.schedule.is_some();
        if !restart || (scheduled && self.paused) {
            if scheduled {
                return self.idle(out);
            }
            out.push(Effect::SetState(AgentState::Exited));
            return State::Exited;
        }
        match self.tracker.next(cfg, now, ran_for) {
            Decision::Fatal { restarts, window } if scheduled => {
                let msg = format!(
                    "the run failed again: {restarts} retries within {}; no more retries until its next run",
                    human(window)
                );
                out.push(event(EventKind::CrashLoop, Severity::Error, msg));
                self.idle(out)
            }
            Decision::Fatal { restarts, window } => {
                out.push(Effect::SetState(AgentState::Fatal));
                let msg = format!(
                    "crash loop: {restarts} restarts within {}; giving up (no more restarts in this launcher run)",
                    human(window)
                );
                out.push(event(EventKind::CrashLoop, Severity::Critical, msg));
                State::Fatal
            }
            Decision::Restart(delay) => {
                out.push(Effect::SetState(AgentState::Backoff));
                let n = self.restarts + 1;
                out.push(event(
                    EventKind::Backoff,
                    Severity::Info,
                    format!("restart {n} in {}", human(delay)),
                ));
                let until = after(now, delay);
                out.push(Effect::Arm(Timer::Backoff, until));
                State::Backoff { until }
            }
        }
    }
}

impl Machine {
    /// A scheduled agent with no run to retry: the queued run starts, or it waits for the next
    /// one (`scheduled`), or stays stopped while paused.
    fn idle(&mut self, out: &mut Vec<Effect>) -> State {
        match self.queued.take() {
            Some(request) => self.start_run(request, out),
            None if self.paused => {
                out.push(Effect::SetState(AgentState::Stopped));
                State::Stopped
            }
            None => {
                out.push(Effect::SetState(AgentState::Scheduled));
                State::Scheduled
            }
        }
    }

    /// A new run: attempts and the crash-loop count start over.
    fn start_run(&mut self, request: RunRequest, out: &mut Vec<Effect>) -> State {
        self.tracker = Tracker::default();
        out.push(Effect::RunStarting(request));
        out.push(Effect::Spawn);
        State::Spawning { stop: None }
    }

    /// A run comes due: it starts if the agent is between runs; otherwise `overlap` decides.
    /// An operator's run starts even while the schedule is paused (and pauses nothing).
    fn run_due(&mut self, cfg: &AgentConfig, request: RunRequest, now: Instant, out: &mut Vec<Effect>) {
        let Some(schedule) = &cfg.schedule else { return };
        let manual = request.trigger == RunTrigger::Manual;
        match &mut self.state {
            State::Scheduled => self.state = self.start_run(request, out),
            State::Stopped | State::Exited | State::Fatal if manual => {
                self.state = self.start_run(request, out);
            }
            State::Stopped | State::Exited | State::Fatal => out.push(Effect::Skipped(request)),
            State::Backoff { .. } if schedule.overlap == Overlap::Replace => {
                out.push(Effect::Disarm(Timer::Backoff));
                self.state = self.start_run(request, out);
            }
            State::Running(run) if schedule.overlap == Overlap::Replace => {
                if let Some(old) = self.queued.replace(request) {
                    out.push(Effect::Skipped(old));
                }
                self.state = begin_stop(cfg, run, Why::Replaced, now, out);
            }
            State::Waiting if self.queued.is_none() => self.queued = Some(request),
            _ if schedule.overlap == Overlap::Skip || self.queued.is_some() => {
                out.push(Effect::Skipped(request))
            }
            _ => self.queued = Some(request),
        }
    }
}

/// Where a step leads.
enum Next {
    Stay,
    To(State),
    /// The run ended; the restart policy decides what follows.
    Ended {
        failed: bool,
        ran_for: Duration,
        then_stop: bool,
    },
    /// A scheduled agent is through waiting for its dependencies: its schedule runs.
    Idle,
}

/// A duration for messages, to the millisecond: "1s 500ms".
pub fn human(d: Duration) -> String {
    let ms = Duration::from_millis(u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    humantime::format_duration(ms).to_string()
}

fn event(kind: EventKind, severity: Severity, message: String) -> Effect {
    Effect::Event { kind, severity, message }
}

/// `t + d` without a panic (see [`deadline::after`]).
fn after(t: Instant, d: Duration) -> Instant {
    deadline::after(t.into(), d).into_std()
}

fn waiting(scheduled: bool, input: Input, now: Instant, out: &mut Vec<Effect>) -> Next {
    match input {
        Input::Start { waiting_for } if !waiting_for.is_empty() => {
            let msg = format!("waiting for {} to be ready", waiting_for.join(", "));
            out.push(event(EventKind::Waiting, Severity::Info, msg));
            out.push(Effect::Arm(Timer::Poll, after(now, DEPENDENCY_POLL)));
            Next::Stay
        }
        Input::Start { .. } | Input::Dependencies { ready: true } if scheduled => {
            out.push(Effect::Disarm(Timer::Poll));
            Next::Idle
        }
        Input::Start { .. } | Input::Dependencies { ready: true } => {
            out.push(Effect::Disarm(Timer::Poll));
            out.push(Effect::Spawn);
            Next::To(State::Spawning { stop: None })
        }
        Input::Dependencies { ready: false } => {
            out.push(Effect::Arm(Timer::Poll, after(now, DEPENDENCY_POLL)));
            Next::Stay
        }
        Input::Timer(Timer::Poll) => {
            out.push(Effect::CheckDependencies);
            Next::Stay
        }
        // Never started: nothing to stop, and the status stays as it was.
        Input::Stop { .. } => {
            out.push(Effect::Disarm(Timer::Poll));
            out.push(Effect::AnswerStops);
            Next::To(State::Stopped)
        }
        Input::LetGo => {
            out.push(Effect::Disarm(Timer::Poll));
            Next::To(State::Stopped)
        }
        _ => Next::Stay,
    }
}

fn spawning(
    cfg: &AgentConfig,
    stop: &mut Option<String>,
    input: Input,
    now: Instant,
    out: &mut Vec<Effect>,
) -> Next {
    match input {
        Input::Spawned { pid } => {
            let run = started(cfg, pid, now, out);
            match stop.take() {
                Some(reason) => Next::To(begin_stop(cfg, &run, Why::Command { reason }, now, out)),
                None => Next::To(State::Running(run)),
            }
        }
        Input::SpawnFailed { message } => {
            out.push(event(EventKind::SpawnFailed, Severity::Error, message));
            out.push(Effect::EndRun(RunOutcome::Failed));
            Next::Ended { failed: true, ran_for: Duration::ZERO, then_stop: stop.is_some() }
        }
        // The shell answers a spawn before anything else; should a stop come first, it
        // applies once the outcome is known.
        Input::Stop { reason } => {
            *stop = Some(reason);
            Next::Stay
        }
        _ => Next::Stay,
    }
}

/// The process `pid` was started at `now`.
fn started(cfg: &AgentConfig, pid: i32, now: Instant, out: &mut Vec<Effect>) -> Run {
    let ready = cfg.ready == Ready::Started;
    let hb_timeout = cfg.heartbeat_timeout.map(|t| t.get());
    let run = Run {
        pid,
        started: now,
        ready,
        ready_deadline: after(now, cfg.ready_timeout.get()),
        hb_deadline: if ready { hb_timeout.map(|t| after(now, t)) } else { None },
        hb_due: None,
        ready_extended: None,
        hb_extended: None,
    };
    if ready {
        out.push(Effect::Ready);
        out.push(Effect::SetState(AgentState::Running));
    } else {
        out.push(Effect::SetState(AgentState::Starting));
        out.push(Effect::Arm(Timer::Ready, run.ready_deadline));
    }
    if let Some(d) = run.hb_deadline {
        out.push(Effect::Arm(Timer::Heartbeat, d));
    }
    if let Some(timeout) = cfg.schedule.as_ref().and_then(|s| s.timeout) {
        out.push(Effect::Arm(Timer::Timeout, after(now, timeout.get())));
    }
    out.push(event(EventKind::Started, Severity::Info, format!("started (pid {pid})")));
    run
}

fn running(cfg: &AgentConfig, run: &mut Run, input: Input, now: Instant, out: &mut Vec<Effect>) -> Next {
    match input {
        Input::Alive { ready } => {
            // The per-message path: it moves the deadline and arms nothing while the timer runs.
            if let Some(t) = cfg.heartbeat_timeout {
                let due = after(now, t.get());
                if run.hb_deadline.is_none() {
                    out.push(Effect::Arm(Timer::Heartbeat, due));
                }
                run.hb_deadline = Some(due);
            }
            if ready && !run.ready {
                run.ready = true;
                out.push(Effect::Disarm(Timer::Ready));
                out.push(Effect::Ready);
                out.push(Effect::SetState(AgentState::Running));
                let msg = format!("ready after {}", human(now.saturating_duration_since(run.started)));
                out.push(event(EventKind::Ready, Severity::Info, msg));
            }
            Next::Stay
        }
        Input::Timer(Timer::Ready) if !run.ready => {
            out.push(Effect::CatchUp(Timer::Ready));
            Next::Stay
        }
        Input::CaughtUp(Timer::Ready) if !run.ready => {
            let period = cfg.ready_timeout.get();
            if let Some(later) = stall_grace(run.ready_deadline, now, period, &mut run.ready_extended) {
                let late = now.saturating_duration_since(run.ready_deadline);
                out.push(Effect::Stall { waiting_for: "READY=1", late, period });
                run.ready_deadline = later;
                out.push(Effect::Arm(Timer::Ready, later));
                return Next::Stay;
            }
            let msg = format!("not ready within {} (no READY=1)", human(period));
            out.push(event(EventKind::ReadyTimeout, Severity::Error, msg));
            Next::To(begin_stop(cfg, run, Why::Failed("ready timeout"), now, out))
        }
        Input::Timer(Timer::Heartbeat) => {
            if let Some(later) = run.hb_deadline.filter(|d| *d > now) {
                out.push(Effect::Arm(Timer::Heartbeat, later));
                return Next::Stay;
            }
            run.hb_due = Some(run.hb_deadline.take().unwrap_or(now));
            out.push(Effect::CatchUp(Timer::Heartbeat));
            Next::Stay
        }
        Input::CaughtUp(Timer::Heartbeat) => {
            let Some(due) = run.hb_due.take() else { return Next::Stay };
            // A sign of life while catching up set a new deadline and armed the timer.
            if run.hb_deadline.is_some() {
                return Next::Stay;
            }
            let period = cfg.heartbeat_timeout.map(|t| t.get()).unwrap_or_default();
            if let Some(later) = stall_grace(due, now, period, &mut run.hb_extended) {
                let late = now.saturating_duration_since(due);
                out.push(Effect::Stall { waiting_for: "WATCHDOG=1", late, period });
                run.hb_deadline = Some(later);
                out.push(Effect::Arm(Timer::Heartbeat, later));
                return Next::Stay;
            }
            out.push(Effect::MarkUnhealthy);
            let then = match cfg.on_heartbeat_timeout {
                OnHeartbeatTimeout::Restart => "restarting it",
                OnHeartbeatTimeout::Mark => "marked unhealthy",
            };
            let msg = format!("no heartbeat for {}; {then}", human(period));
            out.push(event(EventKind::HeartbeatMissed, Severity::Warning, msg));
            match cfg.on_heartbeat_timeout {
                OnHeartbeatTimeout::Restart => {
                    Next::To(begin_stop(cfg, run, Why::Failed("missed heartbeat"), now, out))
                }
                OnHeartbeatTimeout::Mark => Next::Stay,
            }
        }
        Input::Exited(exit) => {
            out.push(Effect::Disarm(Timer::Ready));
            out.push(Effect::Disarm(Timer::Heartbeat));
            disarm_timeout(cfg, out);
            out.push(Effect::RecordExit(exit));
            let ran_for = now.saturating_duration_since(run.started);
            let (failed, how) = describe(exit);
            let (kind, severity) = if failed {
                (EventKind::Crashed, Severity::Error)
            } else {
                (EventKind::Exited, Severity::Info)
            };
            out.push(event(kind, severity, format!("{how} after {}", human(ran_for))));
            out.push(Effect::EndRun(if failed { RunOutcome::Failed } else { RunOutcome::Succeeded }));
            Next::Ended { failed, ran_for, then_stop: false }
        }
        Input::Timer(Timer::Timeout) => {
            let timeout = cfg.schedule.as_ref().and_then(|s| s.timeout).map(|t| human(t.get()));
            let msg = format!("ran past its timeout of {}; stopping it", timeout.unwrap_or_default());
            out.push(event(EventKind::RunTimeout, Severity::Error, msg));
            Next::To(begin_stop(cfg, run, Why::TimedOut, now, out))
        }
        Input::Stop { reason } => Next::To(begin_stop(cfg, run, Why::Command { reason }, now, out)),
        Input::Kill => Next::To(kill_now(cfg, run, "killed at once", out)),
        Input::LetGo => Next::To(kill_now(cfg, run, "the launcher let go of it", out)),
        _ => Next::Stay,
    }
}

/// The stop signal to the group, and `stop_timeout` for the whole group to end: a shell
/// wrapper dies at once on SIGTERM while the program it started may still be saving its work.
fn begin_stop(cfg: &AgentConfig, run: &Run, why: Why, now: Instant, out: &mut Vec<Effect>) -> State {
    let reason = match &why {
        Why::Command { reason } => reason.as_str(),
        Why::Failed(reason) => reason,
        Why::TimedOut => "timeout",
        Why::Replaced => "a new run replaces it",
    };
    out.push(Effect::Disarm(Timer::Ready));
    out.push(Effect::Disarm(Timer::Heartbeat));
    disarm_timeout(cfg, out);
    out.push(Effect::SetState(AgentState::Stopping));
    out.push(event(EventKind::Stopping, Severity::Info, format!("stopping: {reason}")));
    out.push(Effect::SignalStop);
    out.push(Effect::Arm(Timer::Stop, after(now, cfg.stop_timeout.get())));
    State::Stopping(Stop {
        started: run.started,
        why,
        exit: None,
        killed: false,
        timed_out: false,
        then_stop: false,
    })
}

/// A scheduled run's timeout is over with its run.
fn disarm_timeout(cfg: &AgentConfig, out: &mut Vec<Effect>) {
    if cfg.schedule.as_ref().is_some_and(|s| s.timeout.is_some()) {
        out.push(Effect::Disarm(Timer::Timeout));
    }
}

/// SIGKILL to the group at once, without the `stopping` state.
fn kill_now(cfg: &AgentConfig, run: &Run, reason: &str, out: &mut Vec<Effect>) -> State {
    out.push(Effect::Disarm(Timer::Ready));
    out.push(Effect::Disarm(Timer::Heartbeat));
    disarm_timeout(cfg, out);
    out.push(Effect::KillGroup);
    let why = Why::Command { reason: reason.to_owned() };
    State::Stopping(Stop {
        started: run.started,
        why,
        exit: None,
        killed: true,
        timed_out: false,
        then_stop: false,
    })
}

fn stopping(cfg: &AgentConfig, stop: &mut Stop, input: Input, now: Instant, out: &mut Vec<Effect>) -> Next {
    match input {
        Input::Exited(exit) => {
            stop.exit = Some(exit);
            if stop.killed {
                return finish_stop(stop, now, out);
            }
            out.push(Effect::ProbeGroup);
            Next::Stay
        }
        Input::Timer(Timer::Poll) if !stop.killed => {
            out.push(Effect::ProbeGroup);
            Next::Stay
        }
        Input::Timer(Timer::Stop) if !stop.killed => {
            stop.timed_out = true;
            out.push(Effect::ProbeGroup);
            Next::Stay
        }
        Input::Group { alive } if !stop.killed => {
            if stop.timed_out {
                // After a stall of the launcher the timer and the exit become due together;
                // a group that has exited (its main process maybe not yet reaped) is no
                // timeout.
                if alive {
                    let timeout = human(cfg.stop_timeout.get());
                    let msg =
                        format!("still running {timeout} after the stop signal; killing its process group");
                    out.push(event(EventKind::StopTimeout, Severity::Warning, msg));
                }
                return kill_rest(stop, now, out);
            }
            if alive {
                out.push(Effect::Arm(Timer::Poll, after(now, GROUP_POLL)));
                return Next::Stay;
            }
            kill_rest(stop, now, out)
        }
        Input::Kill if !stop.killed => kill_rest(stop, now, out),
        // Already stopping: answered once the process is gone, and no restart follows.
        Input::Stop { .. } => {
            stop.then_stop = true;
            Next::Stay
        }
        _ => Next::Stay,
    }
}

/// The stop is over (the group is gone, its time is up, or a kill came): SIGKILL to whatever
/// is left, and the end once the main process has exited.
fn kill_rest(stop: &mut Stop, now: Instant, out: &mut Vec<Effect>) -> Next {
    out.push(Effect::Disarm(Timer::Stop));
    out.push(Effect::Disarm(Timer::Poll));
    out.push(Effect::KillGroup);
    stop.killed = true;
    if stop.exit.is_some() { finish_stop(stop, now, out) } else { Next::Stay }
}

fn finish_stop(stop: &mut Stop, now: Instant, out: &mut Vec<Effect>) -> Next {
    let exit = stop.exit.flatten();
    out.push(Effect::RecordExit(exit));
    out.push(Effect::EndRun(match stop.why {
        Why::Command { .. } | Why::Replaced => RunOutcome::Stopped,
        Why::Failed(_) => RunOutcome::Failed,
        Why::TimedOut => RunOutcome::TimedOut,
    }));
    let ran_for = now.saturating_duration_since(stop.started);
    match &stop.why {
        Why::Command { reason } => {
            let (_, how) = describe(exit);
            out.push(Effect::SetState(AgentState::Stopped));
            out.push(event(EventKind::Stopped, Severity::Info, format!("stopped ({how}): {reason}")));
            out.push(Effect::AnswerStops);
            Next::To(State::Stopped)
        }
        Why::Failed(_) | Why::TimedOut => Next::Ended { failed: true, ran_for, then_stop: stop.then_stop },
        Why::Replaced => Next::Ended { failed: false, ran_for, then_stop: stop.then_stop },
    }
}

/// A scheduled agent between runs: only a stop (which pauses its schedule) matters here; its
/// runs come as [`Input::RunDue`].
fn between_runs(input: Input, out: &mut Vec<Effect>) -> Next {
    match input {
        Input::Stop { reason } => {
            out.push(Effect::SetState(AgentState::Stopped));
            out.push(event(EventKind::Stopped, Severity::Info, format!("stopped between runs: {reason}")));
            out.push(Effect::AnswerStops);
            Next::To(State::Stopped)
        }
        Input::LetGo => {
            out.push(Effect::SetState(AgentState::Stopped));
            Next::To(State::Stopped)
        }
        _ => Next::Stay,
    }
}

fn backoff(restarts: &mut i64, input: Input, out: &mut Vec<Effect>) -> Next {
    match input {
        Input::Timer(Timer::Backoff) => {
            *restarts += 1;
            out.push(Effect::SetRestarts(*restarts));
            out.push(Effect::Spawn);
            Next::To(State::Spawning { stop: None })
        }
        Input::Stop { reason } => {
            out.push(Effect::Disarm(Timer::Backoff));
            let msg = format!("stopped while waiting to restart: {reason}");
            out.push(event(EventKind::Stopped, Severity::Info, msg));
            out.push(Effect::SetState(AgentState::Stopped));
            out.push(Effect::AnswerStops);
            Next::To(State::Stopped)
        }
        Input::LetGo => {
            out.push(Effect::Disarm(Timer::Backoff));
            out.push(Effect::SetState(AgentState::Stopped));
            Next::To(State::Stopped)
        }
        _ => Next::Stay,
    }
}

/// Whether an exit counts as a failure, and a description.
pub fn describe(exit: Option<ExitStatus>) -> (bool, String) {
    match (exit.and_then(|e| e.code()), exit.and_then(|e| e.signal())) {
        (Some(0), _) => (false, "exited with code 0".into()),
        (Some(code), _) => (true, format!("exited with code {code}")),
        (None, Some(sig)) => {
            let name =
                Signal::try_from(sig).map(|s| s.as_str().to_owned()).unwrap_or_else(|_| sig.to_string());
            (true, format!("killed by {name}"))
        }
        (None, None) => (true, "ended with an unknown status".into()),
    }
}

/// A deadline `due` noticed at `now`, more than [`STALL`] after it passed: the launcher itself
/// did not run meanwhile, so what the agent sent in that time may not have been read yet, and
/// the agent is not blamed for it. It gets one more full `period` from now (the new deadline
/// is returned and kept in `extended`); a deadline that is itself such an extension is final,
/// so an agent that is really quiet is caught even on a launcher that is always late.
pub fn stall_grace(
    due: Instant,
    now: Instant,
    period: Duration,
    extended: &mut Option<Instant>,
) -> Option<Instant> {
    if now.saturating_duration_since(due) <= STALL || *extended == Some(due) {
        return None;
    }
    let later = after(now, period);
    *extended = Some(later);
    Some(later)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    const PID: i32 = 42;

    fn exit_code(code: i32) -> Option<ExitStatus> {
        Some(ExitStatus::from_raw(code << 8))
    }

    fn killed_by(sig: Signal) -> Option<ExitStatus> {
        Some(ExitStatus::from_raw(sig as i32))
    }

    /// A machine for an agent configured by `extra` (TOML keys), and the time.
    struct T {
        m: Machine,
        cfg: AgentConfig,
        now: Instant,
    }

    impl T {
        fn new(extra: &str) -> T {
            let text = format!("[[agent]]\nname = \"a\"\ncommand = \"true\"\n{extra}\n");
            let cfg = crate::config::parse(Path::new("t.toml"), &text).unwrap().agents.remove(0);
            T { m: Machine::new(0), cfg, now: Instant::now() }
        }

        /// Started and spawned as pid [`PID`].
        fn spawned(extra: &str) -> T {
            let mut t = T::new(extra);
            assert!(t.step(Input::Start { waiting_for: vec![] }).contains(&Effect::Spawn));
            t.step(Input::Spawned { pid: PID });
            t
        }

        fn step(&mut self, input: Input) -> Vec<Effect> {
            let mut out = Vec::new();
            self.m.step(&self.cfg, input, self.now, &mut out);
            out
        }

        fn later(&mut self, ms: u64) -> &mut T {
            self.now += Duration::from_millis(ms);
            self
        }

        fn stop(&mut self, reason: &str) -> Vec<Effect> {
            self.step(Input::Stop { reason: reason.into() })
        }

        fn is_stopping(&self) -> bool {
            matches!(self.m.state(), State::Stopping(_))
        }
    }

    /// The events among `effects`, as (kind, message).
    fn events(effects: &[Effect]) -> Vec<(&'static str, &str)> {
        effects
            .iter()
            .filter_map(|e| match e {
                Effect::Event { kind, message, .. } => Some((kind.as_str(), message.as_str())),
                _ => None,
            })
            .collect()
    }

    fn kinds(effects: &[Effect]) -> Vec<&'static str> {
        events(effects).into_iter().map(|(k, _)| k).collect()
    }

    fn answers(effects: &[Effect]) -> usize {
        effects.iter().filter(|e| **e == Effect::AnswerStops).count()
    }

    fn arms(effects: &[Effect], timer: Timer) -> bool {
        effects.iter().any(|e| matches!(e, Effect::Arm(t, _) if *t == timer))
    }

    fn states(effects: &[Effect]) -> Vec<AgentState> {
        effects
            .iter()
            .filter_map(|e| match e {
                Effect::SetState(s) => Some(*s),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn timers_are_listed_in_their_order() {
        // The shell keeps one slot per timer, indexed by the discriminant.
        for (i, timer) in Timer::ALL.into_iter().enumerate() {
            assert_eq!(timer as usize, i);
        }
    }

    #[test]
    fn without_dependencies_it_spawns_at_once() {
        let mut t = T::new("");
        assert_eq!(
            t.step(Input::Start { waiting_for: vec![] }),
            [Effect::Disarm(Timer::Poll), Effect::Spawn]
        );
        assert_eq!(t.m.state(), &State::Spawning { stop: None });
    }

    #[test]
    fn waits_for_dependencies_polling_until_they_are_ready() {
        let mut t = T::new("");
        let fx = t.step(Input::Start { waiting_for: vec!["db".into(), "cache".into()] });
        assert_eq!(events(&fx), [("waiting", "waiting for db, cache to be ready")]);
        assert_eq!(fx.last(), Some(&Effect::Arm(Timer::Poll, t.now + DEPENDENCY_POLL)));
        assert_eq!(t.later(50).step(Input::Timer(Timer::Poll)), [Effect::CheckDependencies]);
        // Still not ready: looked at again later, and announced only once.
        assert_eq!(
            t.step(Input::Dependencies { ready: false }),
            [Effect::Arm(Timer::Poll, t.now + DEPENDENCY_POLL)]
        );
        assert!(t.later(50).step(Input::Dependencies { ready: true }).contains(&Effect::Spawn));
    }

    #[test]
    fn kill_during_the_dependency_wait_is_ignored_and_stop_ends_it() {
        let mut t = T::new("");
        t.step(Input::Start { waiting_for: vec!["db".into()] });
        assert!(t.step(Input::Kill).is_empty());
        assert_eq!(t.m.state(), &State::Waiting);
        // Nothing ran: no state to publish, the stop is answered at once.
        assert_eq!(t.stop("operator"), [Effect::Disarm(Timer::Poll), Effect::AnswerStops]);
        assert!(t.m.is_final());
        assert!(t.step(Input::Dependencies { ready: true }).is_empty(), "no spawn after a stop");
    }

    #[test]
    fn let_go_during_the_dependency_wait_ends_it() {
        let mut t = T::new("");
        t.step(Input::Start { waiting_for: vec!["db".into()] });
        assert_eq!(t.step(Input::LetGo), [Effect::Disarm(Timer::Poll)]);
        assert_eq!(t.m.state(), &State::Stopped);
    }

    #[test]
    fn ready_on_start_runs_at_once_and_arms_the_heartbeat() {
        let mut t = T::new("heartbeat_timeout = \"2s\"");
        t.step(Input::Start { waiting_for: vec![] });
        let fx = t.step(Input::Spawned { pid: PID });
        assert_eq!(states(&fx), [AgentState::Running]);
        assert!(fx.contains(&Effect::Ready));
        assert!(fx.contains(&Effect::Arm(Timer::Heartbeat, t.now + Duration::from_secs(2))));
        assert!(!arms(&fx, Timer::Ready));
        assert_eq!(events(&fx), [("started", "started (pid 42)")]);
    }

    #[test]
    fn ready_notify_starts_until_ready_then_runs() {
        let mut t = T::new("ready = \"notify\"\nready_timeout = \"5s\"");
        t.step(Input::Start { waiting_for: vec![] });
        let fx = t.step(Input::Spawned { pid: PID });
        assert_eq!(states(&fx), [AgentState::Starting]);
        assert!(fx.contains(&Effect::Arm(Timer::Ready, t.now + Duration::from_secs(5))));
        // A heartbeat before READY=1 is a sign of life, not readiness.
        assert!(t.later(100).step(Input::Alive { ready: false }).is_empty());
        let fx = t.later(1400).step(Input::Alive { ready: true });
        assert_eq!(
            fx[..3],
            [Effect::Disarm(Timer::Ready), Effect::Ready, Effect::SetState(AgentState::Running)]
        );
        assert_eq!(events(&fx), [("ready", "ready after 1s 500ms")]);
        // Only the first READY=1 counts; a late ready timer is ignored.
        assert!(t.step(Input::Alive { ready: true }).is_empty());
        assert!(t.later(5000).step(Input::Timer(Timer::Ready)).is_empty());
    }

    #[test]
    fn a_heartbeat_moves_the_deadline_without_touching_the_timer() {
        let mut t = T::spawned("heartbeat_timeout = \"1s\"");
        for _ in 0..100 {
            assert!(t.later(10).step(Input::Alive { ready: false }).is_empty());
        }
        // The timer fires at the first deadline and catches up with the last heartbeat.
        let last = t.now + Duration::from_secs(1);
        assert_eq!(t.step(Input::Timer(Timer::Heartbeat)), [Effect::Arm(Timer::Heartbeat, last)]);
        assert!(t.m.is_running());
    }

    #[test]
    fn a_missed_heartbeat_marks_unhealthy_and_waits_for_the_next_sign_of_life() {
        let mut t = T::spawned("heartbeat_timeout = \"1s\"\non_heartbeat_timeout = \"mark\"");
        assert_eq!(t.later(1000).step(Input::Timer(Timer::Heartbeat)), [Effect::CatchUp(Timer::Heartbeat)]);
        let fx = t.step(Input::CaughtUp(Timer::Heartbeat));
        assert_eq!(fx[0], Effect::MarkUnhealthy);
        assert_eq!(events(&fx), [("heartbeat_missed", "no heartbeat for 1s; marked unhealthy")]);
        assert!(t.m.is_running());
        // The timer is idle until a heartbeat comes, which arms it again.
        let fx = t.later(3000).step(Input::Alive { ready: false });
        assert_eq!(fx, [Effect::Arm(Timer::Heartbeat, t.now + Duration::from_secs(1))]);
    }

    #[test]
    fn a_missed_heartbeat_restarts_when_configured() {
        let mut t = T::spawned("heartbeat_timeout = \"1s\"\non_heartbeat_timeout = \"restart\"");
        t.later(1000).step(Input::Timer(Timer::Heartbeat));
        let fx = t.step(Input::CaughtUp(Timer::Heartbeat));
        assert_eq!(kinds(&fx), ["heartbeat_missed", "stopping"]);
        assert_eq!(events(&fx)[0].1, "no heartbeat for 1s; restarting it");
        assert_eq!(events(&fx)[1].1, "stopping: missed heartbeat");
        assert!(fx.contains(&Effect::SignalStop));
        assert_eq!(states(&fx), [AgentState::Stopping]);
        assert!(t.is_stopping());
    }

    #[test]
    fn a_sign_of_life_found_while_catching_up_is_no_miss() {
        let mut t = T::spawned("heartbeat_timeout = \"1s\"");
        assert_eq!(t.later(1000).step(Input::Timer(Timer::Heartbeat)), [Effect::CatchUp(Timer::Heartbeat)]);
        assert_eq!(
            t.step(Input::Alive { ready: false }),
            [Effect::Arm(Timer::Heartbeat, t.now + Duration::from_secs(1))]
        );
        assert!(t.step(Input::CaughtUp(Timer::Heartbeat)).is_empty());
    }

    #[test]
    fn a_deadline_noticed_late_after_a_stall_gets_one_more_period() {
        let mut t = T::spawned("heartbeat_timeout = \"1s\"");
        // The launcher did not run for 5 s past the deadline.
        t.later(6000).step(Input::Timer(Timer::Heartbeat));
        let fx = t.step(Input::CaughtUp(Timer::Heartbeat));
        let again = t.now + Duration::from_secs(1);
        let stall = Effect::Stall {
            waiting_for: "WATCHDOG=1",
            late: Duration::from_secs(5),
            period: Duration::from_secs(1),
        };
        assert_eq!(fx, [stall, Effect::Arm(Timer::Heartbeat, again)]);
        // Late again: the extension is final.
        t.later(3000).step(Input::Timer(Timer::Heartbeat));
        assert_eq!(kinds(&t.step(Input::CaughtUp(Timer::Heartbeat)))[0], "heartbeat_missed");
    }

    #[test]
    fn ready_timeout_with_a_stall_and_then_for_real() {
        let mut t = T::spawned("ready = \"notify\"\nready_timeout = \"1s\"");
        t.later(4000);
        assert_eq!(t.step(Input::Timer(Timer::Ready)), [Effect::CatchUp(Timer::Ready)]);
        let fx = t.step(Input::CaughtUp(Timer::Ready));
        assert!(matches!(fx[0], Effect::Stall { waiting_for: "READY=1", .. }));
        assert!(t.m.is_running());
        t.later(1000).step(Input::Timer(Timer::Ready));
        let fx = t.step(Input::CaughtUp(Timer::Ready));
        assert_eq!(
            events(&fx),
            [("ready_timeout", "not ready within 1s (no READY=1)"), ("stopping", "stopping: ready timeout")]
        );
        assert!(t.is_stopping());
    }

    #[test]
    fn ready_found_while_catching_up_is_no_timeout() {
        let mut t = T::spawned("ready = \"notify\"\nready_timeout = \"1s\"");
        t.later(1000).step(Input::Timer(Timer::Ready));
        assert_eq!(kinds(&t.step(Input::Alive { ready: true })), ["ready"]);
        assert!(t.step(Input::CaughtUp(Timer::Ready)).is_empty());
        assert!(t.m.is_running());
    }

    #[test]
    fn ready_timeout_racing_an_exit_the_exit_first() {
        let mut t = T::spawned("ready = \"notify\"\nready_timeout = \"1s\"");
        let fx = t.later(1000).step(Input::Exited(exit_code(3)));
        assert_eq!(events(&fx)[0], ("crashed", "exited with code 3 after 1s"));
        assert!(fx.contains(&Effect::Disarm(Timer::Ready)));
        assert!(matches!(t.m.state(), State::Backoff { .. }));
        // The timer that was already due is stale.
        assert!(t.step(Input::Timer(Timer::Ready)).is_empty());
        assert!(t.step(Input::CaughtUp(Timer::Ready)).is_empty());
    }

    #[test]
    fn ready_timeout_racing_an_exit_the_deadline_first() {
        let mut t = T::spawned("ready = \"notify\"\nready_timeout = \"1s\"");
        t.later(1000).step(Input::Timer(Timer::Ready));
        t.step(Input::CaughtUp(Timer::Ready));
        // The process was on its way out anyway: no crash event, the stop finishes the run.
        assert_eq!(t.step(Input::Exited(exit_code(3))), [Effect::ProbeGroup]);
        let fx = t.step(Input::Group { alive: false });
        assert_eq!(
            fx[..4],
            [
                Effect::Disarm(Timer::Stop),
                Effect::Disarm(Timer::Poll),
                Effect::KillGroup,
                Effect::RecordExit(exit_code(3))
            ]
        );
        assert_eq!(kinds(&fx), ["backoff"]);
        assert_eq!(states(&fx), [AgentState::Backoff]);
    }

    #[test]
    fn stop_timeout_then_sigkill() {
        let mut t = T::spawned("stop_timeout = \"300ms\"");
        let fx = t.stop("operator");
        assert_eq!(states(&fx), [AgentState::Stopping]);
        assert_eq!(events(&fx), [("stopping", "stopping: operator")]);
        assert!(fx.contains(&Effect::SignalStop));
        assert!(fx.contains(&Effect::Arm(Timer::Stop, t.now + Duration::from_millis(300))));
        assert_eq!(t.later(300).step(Input::Timer(Timer::Stop)), [Effect::ProbeGroup]);
        let fx = t.step(Input::Group { alive: true });
        assert_eq!(
            events(&fx),
            [("stop_timeout", "still running 300ms after the stop signal; killing its process group")]
        );
        assert!(fx.contains(&Effect::KillGroup));
        assert_eq!(answers(&fx), 0, "answered only once no process is left");
        let fx = t.step(Input::Exited(killed_by(Signal::SIGKILL)));
        assert_eq!(fx[0], Effect::RecordExit(killed_by(Signal::SIGKILL)));
        assert_eq!(states(&fx), [AgentState::Stopped]);
        assert_eq!(events(&fx), [("stopped", "stopped (killed by SIGKILL): operator")]);
        assert_eq!(answers(&fx), 1);
        assert!(t.m.is_final());
    }

    #[test]
    fn a_group_gone_at_the_stop_deadline_is_no_timeout() {
        let mut t = T::spawned("");
        t.stop("operator");
        t.later(10_000).step(Input::Timer(Timer::Stop));
        let fx = t.step(Input::Group { alive: false });
        assert!(kinds(&fx).is_empty());
        assert_eq!(answers(&t.step(Input::Exited(exit_code(0)))), 1);
    }

    #[test]
    fn a_stop_waits_for_the_whole_group() {
        let mut t = T::spawned("");
        t.stop("operator");
        assert_eq!(t.step(Input::Exited(killed_by(Signal::SIGTERM))), [Effect::ProbeGroup]);
        assert_eq!(t.step(Input::Group { alive: true }), [Effect::Arm(Timer::Poll, t.now + GROUP_POLL)]);
        assert_eq!(t.later(50).step(Input::Timer(Timer::Poll)), [Effect::ProbeGroup]);
        let fx = t.step(Input::Group { alive: false });
        assert_eq!(events(&fx), [("stopped", "stopped (killed by SIGTERM): operator")]);
        assert_eq!(answers(&fx), 1);
    }

    #[test]
    fn a_second_stop_while_stopping_is_answered_with_the_first() {
        let mut t = T::spawned("");
        t.stop("first");
        assert!(t.stop("second").is_empty());
        t.step(Input::Exited(exit_code(0)));
        let fx = t.step(Input::Group { alive: false });
        assert_eq!(events(&fx), [("stopped", "stopped (exited with code 0): first")]);
        // One answer covers every stop the shell holds.
        assert_eq!(answers(&fx), 1);
        assert_eq!(answers(&t.stop("third")), 1);
    }

    #[test]
    fn a_kill_while_stopping_cuts_the_stop_timeout_short() {
        let mut t = T::spawned("stop_timeout = \"60s\"");
        t.stop("operator");
        let fx = t.later(10).step(Input::Kill);
        assert!(fx.contains(&Effect::KillGroup));
        assert!(kinds(&fx).is_empty(), "no stop_timeout");
        assert!(t.step(Input::Timer(Timer::Stop)).is_empty(), "a stale deadline");
        let fx = t.step(Input::Exited(killed_by(Signal::SIGKILL)));
        assert_eq!(kinds(&fx), ["stopped"]);
        assert_eq!(answers(&fx), 1);
    }

    #[test]
    fn a_kill_while_running_skips_stopping() {
        let mut t = T::spawned("");
        let fx = t.step(Input::Kill);
        assert_eq!(fx.last(), Some(&Effect::KillGroup));
        assert!(states(&fx).is_empty() && kinds(&fx).is_empty());
        let fx = t.step(Input::Exited(killed_by(Signal::SIGKILL)));
        assert_eq!(events(&fx), [("stopped", "stopped (killed by SIGKILL): killed at once")]);
        assert_eq!(states(&fx), [AgentState::Stopped]);
    }

    #[test]
    fn let_go_while_running_kills_and_ends() {
        let mut t = T::spawned("restart = \"always\"");
        assert_eq!(t.step(Input::LetGo).last(), Some(&Effect::KillGroup));
        let fx = t.step(Input::Exited(killed_by(Signal::SIGKILL)));
        assert_eq!(events(&fx), [("stopped", "stopped (killed by SIGKILL): the launcher let go of it")]);
        assert_eq!(t.m.state(), &State::Stopped);
    }

    #[test]
    fn let_go_while_stopping_for_a_restart_restarts_nothing() {
        let mut t = T::spawned("ready = \"notify\"\nready_timeout = \"1s\"\nrestart = \"always\"");
        t.later(1000).step(Input::Timer(Timer::Ready));
        t.step(Input::CaughtUp(Timer::Ready));
        assert!(t.step(Input::LetGo).is_empty(), "the stop goes on");
        t.step(Input::Exited(killed_by(Signal::SIGTERM)));
        let fx = t.step(Input::Group { alive: false });
        assert!(!fx.contains(&Effect::Spawn));
        assert_eq!(states(&fx).last(), Some(&AgentState::Stopped));
        assert_eq!(t.m.state(), &State::Stopped);
    }

    #[test]
    fn stop_while_stopping_for_a_restart_is_answered_once_gone_and_nothing_restarts() {
        let mut t = T::spawned(
            "heartbeat_timeout = \"1s\"\non_heartbeat_timeout = \"restart\"\nrestart = \"always\"",
        );
        t.later(1000).step(Input::Timer(Timer::Heartbeat));
        t.step(Input::CaughtUp(Timer::Heartbeat));
        assert!(t.stop("operator").is_empty());
        assert_eq!(t.step(Input::Exited(killed_by(Signal::SIGTERM))), [Effect::ProbeGroup]);
        let fx = t.step(Input::Group { alive: false });
        assert_eq!(states(&fx), [AgentState::Stopped]);
        assert_eq!(events(&fx), [("stopped", "stopped while being restarted")]);
        assert_eq!(answers(&fx), 1);
        assert!(!fx.contains(&Effect::Spawn) && !arms(&fx, Timer::Backoff));
        assert!(t.m.is_final());
    }

    #[test]
    fn stop_during_backoff() {
        let mut t = T::spawned("");
        t.step(Input::Exited(exit_code(1)));
        assert!(matches!(t.m.state(), State::Backoff { .. }));
        let fx = t.stop("operator");
        assert_eq!(events(&fx), [("stopped", "stopped while waiting to restart: operator")]);
        assert_eq!(states(&fx), [AgentState::Stopped]);
        assert_eq!(answers(&fx), 1);
        assert!(fx.contains(&Effect::Disarm(Timer::Backoff)));
        assert!(t.step(Input::Timer(Timer::Backoff)).is_empty(), "no restart after a stop");
    }

    #[test]
    fn kill_during_backoff_is_ignored() {
        let mut t = T::spawned("");
        t.step(Input::Exited(exit_code(1)));
        assert!(t.step(Input::Kill).is_empty());
        assert!(matches!(t.m.state(), State::Backoff { .. }));
    }

    #[test]
    fn backoff_counts_restarts_and_spawns_again() {
        let mut t = T::spawned(
            "backoff = { initial = \"100ms\", multiplier = 2.0, max = \"1s\", reset_after = \"10s\" }",
        );
        let fx = t.later(20).step(Input::Exited(exit_code(1)));
        assert_eq!(events(&fx)[1], ("backoff", "restart 1 in 100ms"));
        assert!(fx.contains(&Effect::Arm(Timer::Backoff, t.now + Duration::from_millis(100))));
        assert_eq!(t.later(100).step(Input::Timer(Timer::Backoff)), [Effect::SetRestarts(1), Effect::Spawn]);
        t.step(Input::Spawned { pid: PID + 1 });
        let fx = t.later(20).step(Input::Exited(exit_code(1)));
        assert_eq!(events(&fx)[1], ("backoff", "restart 2 in 200ms"));
    }

    #[test]
    fn restart_policy_table() {
        use AgentState::{Backoff, Exited};
        let table = [
            ("never", exit_code(0), Exited),
            ("never", exit_code(1), Exited),
            ("on-failure", exit_code(0), Exited),
            ("on-failure", exit_code(1), Backoff),
            ("on-failure", killed_by(Signal::SIGSEGV), Backoff),
            ("on-failure", None, Backoff),
            ("always", exit_code(0), Backoff),
            ("always", exit_code(1), Backoff),
        ];
        for (restart, exit, then) in table {
            let mut t = T::spawned(&format!("restart = \"{restart}\""));
            let fx = t.step(Input::Exited(exit));
            assert_eq!(states(&fx), [then], "restart = {restart}, exit {exit:?}");
        }
    }

    #[test]
    fn exit_events_say_how() {
        let table = [
            (exit_code(0), ("exited", "exited with code 0 after 2s")),
            (exit_code(2), ("crashed", "exited with code 2 after 2s")),
            (killed_by(Signal::SIGKILL), ("crashed", "killed by SIGKILL after 2s")),
            (None, ("crashed", "ended with an unknown status after 2s")),
        ];
        for (exit, event) in table {
            let mut t = T::spawned("restart = \"never\"");
            assert_eq!(events(&t.later(2000).step(Input::Exited(exit)))[0], event);
        }
    }

    #[test]
    fn a_crash_loop_turns_fatal() {
        let mut t = T::spawned("max_restarts = 2\nrestart_window = \"60s\"");
        for _ in 0..2 {
            t.later(10).step(Input::Exited(exit_code(1)));
            t.later(1000).step(Input::Timer(Timer::Backoff));
            t.step(Input::Spawned { pid: PID });
        }
        let fx = t.later(10).step(Input::Exited(exit_code(1)));
        assert_eq!(states(&fx), [AgentState::Fatal]);
        assert_eq!(
            events(&fx)[1],
            (
                "crash_loop",
                "crash loop: 2 restarts within 1m; giving up (no more restarts in this launcher run)"
            )
        );
        assert!(t.m.is_final());
        assert_eq!(answers(&t.stop("operator")), 1);
    }

    #[test]
    fn a_spawn_failure_backs_off() {
        let mut t = T::new("");
        t.step(Input::Start { waiting_for: vec![] });
        let fx = t.step(Input::SpawnFailed { message: "cannot start x: not found".into() });
        assert_eq!(
            events(&fx),
            [("spawn_failed", "cannot start x: not found"), ("backoff", "restart 1 in 1s")]
        );
        assert_eq!(states(&fx), [AgentState::Backoff]);
        assert_eq!(t.later(1000).step(Input::Timer(Timer::Backoff)), [Effect::SetRestarts(1), Effect::Spawn]);
    }

    #[test]
    fn a_stop_while_spawning_applies_once_the_outcome_is_known() {
        let mut t = T::new("");
        t.step(Input::Start { waiting_for: vec![] });
        assert!(t.stop("operator").is_empty());
        let fx = t.step(Input::Spawned { pid: PID });
        assert_eq!(kinds(&fx), ["started", "stopping"]);
        assert!(t.is_stopping());

        let mut t = T::new("");
        t.step(Input::Start { waiting_for: vec![] });
        t.stop("operator");
        let fx = t.step(Input::SpawnFailed { message: "no".into() });
        assert_eq!(answers(&fx), 1);
        assert!(t.m.is_final());
    }

    /// Whatever comes in whatever order, every stop is answered once no process is left, and
    /// only then.
    #[test]
    fn every_stop_is_answered_once_the_process_is_gone() {
        let inputs = || {
            vec![
                Input::Alive { ready: true },
                Input::Timer(Timer::Ready),
                Input::CaughtUp(Timer::Ready),
                Input::Timer(Timer::Heartbeat),
                Input::CaughtUp(Timer::Heartbeat),
                Input::Timer(Timer::Stop),
                Input::Group { alive: true },
                Input::Timer(Timer::Poll),
                Input::Kill,
                Input::Stop { reason: "again".into() },
                Input::Exited(exit_code(1)),
                Input::Group { alive: false },
                Input::Timer(Timer::Backoff),
            ]
        };
        for skip in 0..inputs().len() {
            let mut t = T::spawned("ready = \"notify\"\nheartbeat_timeout = \"1s\"\nstop_timeout = \"1s\"");
            let mut answered = answers(&t.stop("operator"));
            let mut gone = false;
            for (i, input) in inputs().into_iter().enumerate() {
                if i == skip {
                    continue;
                }
                let exited = matches!(input, Input::Exited(_));
                let fx = t.later(600).step(input);
                gone |= exited;
                answered += answers(&fx);
                assert!(answered == 0 || gone, "answered before the process was gone");
            }
            if gone {
                assert_eq!(answered, 1, "skipping input {skip}");
                assert!(t.m.is_final());
            }
        }
    }

    fn due(at: i64) -> RunRequest {
        RunRequest { trigger: RunTrigger::Schedule, due_ms: Some(at), user: None }
    }

    fn manual() -> RunRequest {
        RunRequest { trigger: RunTrigger::Manual, due_ms: None, user: Some("op".into()) }
    }

    /// The run outcomes among `effects`.
    fn outcomes(effects: &[Effect]) -> Vec<RunOutcome> {
        effects
            .iter()
            .filter_map(|e| match e {
                Effect::EndRun(o) => Some(*o),
                _ => None,
            })
            .collect()
    }

    /// A scheduled agent between runs.
    fn scheduled(extra: &str) -> T {
        let mut t = T::new(&format!("schedule = {{ every = \"1s\"{extra} }}"));
        assert_eq!(
            t.step(Input::Start { waiting_for: vec![] }),
            [Effect::Disarm(Timer::Poll), Effect::Schedule(true), Effect::SetState(AgentState::Scheduled)]
        );
        assert_eq!(t.m.state(), &State::Scheduled);
        t
    }

    /// A scheduled agent whose run `at` is spawned as pid [`PID`].
    fn scheduled_running(extra: &str, at: i64) -> T {
        let mut t = scheduled(extra);
        assert_eq!(t.step(Input::RunDue(due(at))), [Effect::RunStarting(due(at)), Effect::Spawn]);
        t.step(Input::Spawned { pid: PID });
        assert!(t.m.is_running());
        t
    }

    #[test]
    fn every_process_start_is_a_run_that_ends_with_an_outcome() {
        let mut t = T::spawned("restart = \"never\"");
        assert_eq!(outcomes(&t.step(Input::Exited(exit_code(0)))), [RunOutcome::Succeeded]);
        let mut t = T::spawned("");
        let fx = t.step(Input::Exited(killed_by(Signal::SIGKILL)));
        assert_eq!(outcomes(&fx), [RunOutcome::Failed]);
        assert!(!fx.iter().any(|e| matches!(e, Effect::RunStarting(_))), "a daemon's runs need no request");
        let mut t = T::spawned("");
        t.stop("operator");
        assert_eq!(outcomes(&t.step(Input::Exited(exit_code(0)))), []);
        assert_eq!(outcomes(&t.step(Input::Group { alive: false })), [RunOutcome::Stopped]);
        let mut t = T::new("");
        t.step(Input::Start { waiting_for: vec![] });
        let fx = t.step(Input::SpawnFailed { message: "no such file".into() });
        assert_eq!(outcomes(&fx), [RunOutcome::Failed]);
    }

    #[test]
    fn a_scheduled_run_ends_between_runs_healthy_or_not() {
        let mut t = scheduled_running(", timeout = \"5s\"", 1);
        let fx = t.step(Input::Exited(exit_code(0)));
        assert_eq!(outcomes(&fx), [RunOutcome::Succeeded]);
        assert!(fx.contains(&Effect::Disarm(Timer::Timeout)));
        assert_eq!(states(&fx), [AgentState::Scheduled]);
        assert_eq!(t.m.state(), &State::Scheduled);
        // Without retries a failed run waits for the next due time too.
        let mut t = scheduled_running("", 1);
        t.cfg.restart = Restart::Never;
        let fx = t.step(Input::Exited(exit_code(3)));
        assert_eq!((outcomes(&fx), states(&fx)), (vec![RunOutcome::Failed], vec![AgentState::Scheduled]));
    }

    #[test]
    fn a_failed_scheduled_run_is_retried_by_the_backoff_then_given_up() {
        let mut t = scheduled_running("", 1);
        t.cfg.max_restarts = 1;
        let fx = t.step(Input::Exited(exit_code(1)));
        assert_eq!(states(&fx), [AgentState::Backoff]);
        let fx = t.later(1_000).step(Input::Timer(Timer::Backoff));
        assert_eq!(fx, [Effect::SetRestarts(1), Effect::Spawn], "the same run again: no new request");
        t.step(Input::Spawned { pid: PID });
        let fx = t.later(100).step(Input::Exited(exit_code(1)));
        assert_eq!(kinds(&fx), ["crashed", "crash_loop"]);
        assert_eq!(states(&fx), [AgentState::Scheduled], "given up until the next run, not fatal");
        // The next run starts with its retries anew.
        t.step(Input::RunDue(due(2)));
        t.step(Input::Spawned { pid: PID });
        assert_eq!(states(&t.step(Input::Exited(exit_code(1)))), [AgentState::Backoff]);
    }

    #[test]
    fn overlap_skip_records_the_run_that_came_due() {
        let mut t = scheduled_running("", 1);
        assert_eq!(t.step(Input::RunDue(due(2))), [Effect::Skipped(due(2))]);
        assert!(t.m.is_running());
        let fx = t.step(Input::Exited(exit_code(0)));
        assert_eq!(states(&fx), [AgentState::Scheduled], "nothing was queued");
    }

    #[test]
    fn overlap_queue_runs_one_waiting_run_after_the_current_one() {
        let mut t = scheduled_running(", overlap = \"queue\"", 1);
        assert_eq!(t.step(Input::RunDue(due(2))), []);
        assert_eq!(t.step(Input::RunDue(due(3))), [Effect::Skipped(due(3))], "one waits at most");
        let fx = t.step(Input::Exited(exit_code(0)));
        assert_eq!(outcomes(&fx), [RunOutcome::Succeeded]);
        assert!(fx.ends_with(&[Effect::RunStarting(due(2)), Effect::Spawn]), "{fx:?}");
    }

    #[test]
    fn overlap_replace_stops_the_current_run_for_the_new_one() {
        let mut t = scheduled_running(", overlap = \"replace\"", 1);
        let fx = t.step(Input::RunDue(due(2)));
        assert!(fx.contains(&Effect::SignalStop) && t.is_stopping(), "{fx:?}");
        t.step(Input::Exited(killed_by(Signal::SIGTERM)));
        let fx = t.step(Input::Group { alive: false });
        assert_eq!(outcomes(&fx), [RunOutcome::Stopped]);
        assert!(fx.ends_with(&[Effect::RunStarting(due(2)), Effect::Spawn]), "{fx:?}");
    }

    #[test]
    fn a_run_past_its_timeout_is_stopped_and_timed_out() {
        let mut t = T::new("restart = \"never\"\nschedule = { every = \"1s\", timeout = \"2s\" }");
        t.step(Input::Start { waiting_for: vec![] });
        t.step(Input::RunDue(due(1)));
        let fx = t.step(Input::Spawned { pid: PID });
        assert!(arms(&fx, Timer::Timeout));
        let fx = t.later(2_000).step(Input::Timer(Timer::Timeout));
        assert_eq!(kinds(&fx), ["run_timeout", "stopping"]);
        t.step(Input::Exited(killed_by(Signal::SIGTERM)));
        let fx = t.step(Input::Group { alive: false });
        assert_eq!(outcomes(&fx), [RunOutcome::TimedOut]);
        assert_eq!(t.m.state(), &State::Scheduled);
    }

    #[test]
    fn a_stop_pauses_the_schedule_and_a_manual_run_still_runs() {
        let mut t = scheduled("");
        let fx = t.stop("operator");
        assert_eq!(fx[0], Effect::Schedule(false));
        assert_eq!((states(&fx), answers(&fx)), (vec![AgentState::Stopped], 1));
        assert_eq!(t.step(Input::RunDue(due(2))), [Effect::Skipped(due(2))]);
        assert_eq!(t.step(Input::RunDue(manual())), [Effect::RunStarting(manual()), Effect::Spawn]);
        t.step(Input::Spawned { pid: PID });
        let fx = t.step(Input::Exited(exit_code(0)));
        assert_eq!(states(&fx), [AgentState::Stopped], "still paused after the manual run");
        // A stop during a run pauses too, and the run ends stopped.
        let mut t = scheduled_running(", overlap = \"queue\"", 1);
        t.step(Input::RunDue(due(2)));
        let fx = t.stop("operator");
        assert_eq!(fx[0], Effect::Schedule(false));
        t.step(Input::Exited(exit_code(0)));
        let fx = t.step(Input::Group { alive: false });
        assert_eq!(outcomes(&fx), [RunOutcome::Stopped]);
        assert!(!fx.contains(&Effect::Spawn), "the queued run is dropped with the pause");
    }

    #[test]
    fn a_run_due_while_waiting_for_dependencies_starts_once_they_are_ready() {
        let mut t = T::new("schedule = { every = \"1s\" }");
        t.step(Input::Start { waiting_for: vec!["db".into()] });
        assert_eq!(t.step(Input::RunDue(due(1))), []);
        let fx = t.step(Input::Dependencies { ready: true });
        assert!(fx.ends_with(&[Effect::RunStarting(due(1)), Effect::Spawn]), "{fx:?}");
    }
}

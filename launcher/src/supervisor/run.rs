//! The async shell around the [`Machine`]: it waits on the agent's process, its messages, the
//! commands and the timers, turns each into an [`Input`], and performs the [`Effect`]s.
//! Nothing here decides; new lifecycle rules go into the machine.

use super::machine::{Effect, Input, RunRequest, human};
use super::{Command, Supervisor};
use crate::capture::output;
use crate::process::child::AgentChild;
use crate::process::contain;
use crate::process::{self, Spawned};
use agentvisor_shared::model::{AgentState, Health, RunTrigger, Stream};
use agentvisor_shared::time::now_ms;
use nix::sys::signal::Signal;
use std::io;
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::time::Duration;
use tokio::time::Instant;

/// Waits for the main process, if there is one.
async fn wait(child: &mut Option<AgentChild>) -> io::Result<ExitStatus> {
    match child {
        Some(child) => child.wait().await,
        None => std::future::pending().await,
    }
}

impl Supervisor {
    /// Turns what happens into inputs until the machine is final and the launcher has let go
    /// of the agent.
    pub(super) async fn drive(&mut self) {
        loop {
            if self.machine.is_final() && !self.commands_open {
                return;
            }
            let running = self.machine.is_running();
            let now = tokio::select! {
                exit = wait(&mut self.child), if self.child.is_some() => {
                    self.child = None;
                    // What the agent sent before it ended counts first (a READY=1 with it).
                    if running {
                        self.apply_waiting();
                    }
                    self.queue.push_back(Input::Exited(exit.ok()));
                    Instant::now()
                }
                Some(parsed) = self.s.notify_rx.recv(), if running => {
                    let now = Instant::now();
                    if let Some(alive) = self.apply(parsed) {
                        self.queue.push_back(alive);
                    }
                    self.flush_soon(now);
                    now
                }
                timer = self.timers.fired() => {
                    self.queue.push_back(Input::Timer(timer));
                    Instant::now()
                }
                () = self.due_timer.fired(), if self.due_timer.armed => {
                    self.due_fired();
                    Instant::now()
                }
                () = self.flush_timer.fired(), if self.flush_timer.armed => {
                    let now = Instant::now();
                    self.flush_or_retry(now);
                    self.last_flush = Some(now);
                    now
                }
                Some(report) = self.probes.rx.recv(), if running => {
                    let now = Instant::now();
                    if let Some(input) = self.reported(report) {
                        self.queue.push_back(input);
                    }
                    self.flush_soon(now);
                    now
                }
                cmd = self.s.commands.recv(), if self.commands_open => {
                    match cmd {
                        Some(Command::Process(seen)) if running => self.observe(seen),
                        Some(Command::Process(_)) => {}
                        Some(Command::Usage { pid, cpu_percent, memory_bytes }) => {
                            if running && pid == self.pid {
                                self.queue.push_back(Input::Usage { cpu_percent, memory_bytes });
                            }
                        }
                        Some(Command::Stop { reason, done }) => {
                            self.owed.push(done);
                            self.queue.push_back(Input::Stop { reason });
                        }
                        Some(Command::Kill) => self.queue.push_back(Input::Kill),
                        Some(Command::Escapees { pgid, processes }) => self.escapees = (pgid, processes),
                        Some(Command::RunNow { user }) => {
                            let request = RunRequest { trigger: RunTrigger::Manual, due_ms: None, user: Some(user) };
                            self.queue.push_back(Input::RunDue(request));
                        }
                        None => {
                            self.commands_open = false;
                            self.queue.push_back(Input::LetGo);
                        }
                    }
                    Instant::now()
                }
                else => return,
            };
            self.settle(now).await;
        }
    }

    /// Steps the machine through the waiting inputs (the first at `now`), performing their
    /// effects, which may add inputs of their own.
    pub(super) async fn settle(&mut self, mut now: Instant) {
        while let Some(input) = self.queue.pop_front() {
            let spawned = matches!(input, Input::Spawned { .. });
            let mut effects = std::mem::take(&mut self.effects);
            self.machine.step(&self.s.cfg, input, now.into_std(), &mut effects);
            for effect in effects.drain(..) {
                self.perform(effect).await;
            }
            self.effects = effects;
            if spawned {
                self.capture();
            }
            if !self.queue.is_empty() {
                now = Instant::now();
            }
        }
    }

    async fn perform(&mut self, effect: Effect) {
        match effect {
            Effect::CheckDependencies => {
                let ready = self.s.dependencies.iter().all(|(_, rx)| rx.borrow().lifecycle.ready);
                self.queue.push_back(Input::Dependencies { ready });
            }
            Effect::Spawn => {
                self.reset_probes();
                self.spawn();
            }
            Effect::Ready => self.status.lifecycle.ready = true,
            Effect::SetState(AgentState::Scheduled) => {
                // Between runs: ready for agents that depend on it, and healthy unless its last
                // run failed.
                self.status.lifecycle.ready = true;
                if self.status.lifecycle.health == Health::Unknown {
                    self.status.lifecycle.health = Health::Healthy;
                }
                self.set_state(AgentState::Scheduled);
            }
            Effect::SetState(state) => self.set_state(state),
            Effect::MarkUnhealthy => {
                self.status.lifecycle.health = Health::Unhealthy;
                self.commit();
            }
            Effect::Event { kind, severity, message } => self.event(kind, severity, message),
            Effect::Stall { waiting_for, late, period } => self.stall_noted(waiting_for, late, period),
            Effect::SignalStop => {
                let sig = self.s.cfg.stop_signal.0;
                self.signal(sig);
                // A stopped process (SIGSTOP, SIGTSTP, a debugger) acts on nothing but SIGKILL
                // until it is continued: continue the run, as systemd does, so the stop signal
                // takes effect now rather than SIGKILL after the timeout. A running process
                // ignores SIGCONT.
                if !matches!(sig, Signal::SIGKILL | Signal::SIGCONT) {
                    self.signal(Signal::SIGCONT);
                }
            }
            Effect::KillGroup => self.signal(Signal::SIGKILL),
            Effect::ProbeGroup => {
                let alive = contain::agent_alive(&self.s.cfg.name, self.pid, self.run_escapees());
                self.queue.push_back(Input::Group { alive });
            }
            Effect::CatchUp(timer) => {
                self.catch_up().await;
                self.queue.push_back(Input::CaughtUp(timer));
                if !self.flush_timer.armed && self.has_pending() {
                    self.flush_timer.arm(Instant::now());
                }
            }
            Effect::RecordExit(exit) => self.record_exit(exit),
            Effect::SetRestarts(n) => {
                self.status.lifecycle.restarts = n;
                self.run_retried();
            }
            Effect::RunStarting(request) => self.run_starting(request),
            Effect::EndRun(outcome) => self.run_ended(outcome),
            Effect::Skipped(request) => self.run_skipped(request),
            Effect::Schedule(on) => self.schedule(on),
            Effect::AnswerStops => {
                for done in self.owed.drain(..) {
                    let _ = done.send(());
                }
            }
            Effect::Arm(timer, at) => self.timers.slot(timer).arm(Instant::from_std(at)),
            Effect::Disarm(timer) => self.timers.slot(timer).disarm(),
            Effect::Probe { role, on } => self.probe(role, on),
            Effect::StopProbes => self.stop_probes(),
            Effect::ProbeTally(role, tally) => self.tally(role, tally),
            Effect::MarkHealthy => {
                self.status.lifecycle.health = Health::Healthy;
                self.commit();
            }
        }
    }

    /// Starts a new run of the process.
    fn spawn(&mut self) {
        self.reset_health();
        // The last exit (code, signal, time) stays until the next one replaces it: a monitoring
        // check that finds the agent restarted still wants to know how the previous run ended.
        // What the previous process said it was doing is not what the new one does; the last
        // error, model and totals stay as history until the new process reports its own.
        self.status.reported.status_text = None;
        self.status.reported.task = None;
        let cfg = &self.s.cfg;
        match process::spawn(cfg, &self.s.working_dir, &self.s.socket) {
            Ok(Spawned { child, pid, start_ticks, stdout, stderr, notify_pipe }) => {
                self.status.lifecycle.pid = Some(i64::from(pid));
                self.status.lifecycle.pgid = Some(i64::from(pid));
                self.status.lifecycle.pid_start_ticks = start_ticks.and_then(|t| i64::try_from(t).ok());
                self.status.lifecycle.started_ms = Some(now_ms());
                self.child = Some(child);
                self.pid = pid;
                self.io = Some((stdout, stderr, notify_pipe));
                self.flush_timer.disarm();
                self.last_flush = None;
                self.run_began(Some(i64::from(pid)));
                self.queue.push_back(Input::Spawned { pid });
            }
            Err(e) => {
                // This attempt ran nothing, so no exit code or signal belongs to it.
                self.status.lifecycle.exited_ms = Some(now_ms());
                self.status.lifecycle.exit_code = None;
                self.status.lifecycle.exit_signal = None;
                let message = process::start_failure(cfg, &self.s.working_dir, &e);
                self.status.lifecycle.last_error = Some(message.clone());
                self.run_began(None);
                self.queue.push_back(Input::SpawnFailed { message });
            }
        }
    }

    /// Reads the new run's output and notify pipe, once its start is recorded.
    fn capture(&mut self) {
        let Some((stdout, stderr, notify_pipe)) = self.io.take() else { return };
        let name = &self.s.cfg.name;
        let limits = self.s.limits;
        let (out_line, err_line) = self.ready_lines();
        output::capture(name.clone(), Stream::Stdout, stdout, self.s.writer.clone(), limits, out_line);
        output::capture(name.clone(), Stream::Stderr, stderr, self.s.writer.clone(), limits, err_line);
        if let Err(e) = crate::notify::read_pipe(notify_pipe, self.s.notify_tx.clone()) {
            tracing::warn!(agent = %name, error = %e, "cannot read the notify pipe");
        }
    }

    /// `sig` to the run's process group (and its cgroup, where it has one, or else its
    /// escapees).
    fn signal(&self, sig: Signal) {
        process::signal_group(self.pid, sig);
        contain::signal_run(&self.s.cfg.name, self.pid, self.run_escapees(), sig);
    }

    /// The current run's escapees as the sampler last told of them.
    fn run_escapees(&self) -> &contain::Escapees {
        let (pgid, processes) = &self.escapees;
        if *pgid == self.pid { processes } else { &[] }
    }

    /// Applies the messages already forwarded to this supervisor, queueing the signs of life
    /// among them; whether there was one.
    fn apply_waiting(&mut self) -> bool {
        let mut alive = false;
        while let Ok(parsed) = self.s.notify_rx.try_recv() {
            if let Some(input) = self.apply(parsed) {
                self.queue.push_back(input);
                alive = true;
            }
        }
        alive
    }

    /// Before a deadline counts as missed: the agent's messages that are already waiting count
    /// first. Some may be in the channel (the timer won the race in `select!`); others may
    /// still be in the socket or pipe, their reader task woken but not yet run (after a stall,
    /// the timers and the input all become due in one turn of the runtime). Yielding once
    /// lets every task that is ready run before this one continues (tokio wakes a yielded task
    /// only after it has polled the driver for input again). Only taken when a deadline has
    /// passed, never per message.
    async fn catch_up(&mut self) {
        if !self.apply_waiting() {
            tokio::task::yield_now().await;
            self.apply_waiting();
        }
    }

    /// Logs that a deadline passed while the launcher itself was not running.
    fn stall_noted(&self, waiting_for: &str, late: Duration, period: Duration) {
        tracing::info!(
            agent = %self.status.agent,
            "the launcher did not run for {} past the deadline for {waiting_for}; the agent gets another {}",
            human(late),
            human(period)
        );
    }

    /// After a message: coalesced changes are flushed at most once per [`super::FLUSH_EVERY`].
    /// The flush timer is armed only while something waits to be flushed: a thousand idle
    /// agents must not mean thousands of timer wake-ups a second. An agent that reports less
    /// often than that is flushed as its message arrives, without waking again.
    fn flush_soon(&mut self, now: Instant) {
        if self.flush_timer.armed || !self.has_pending() {
            return;
        }
        match self.last_flush.map(|at| at + super::FLUSH_EVERY).filter(|due| *due > now) {
            Some(due) => self.flush_timer.arm(due),
            None => {
                self.flush_or_retry(now);
                self.last_flush = Some(now);
            }
        }
    }

    /// Flushes; when the writer had no room for everything, tries again a period later.
    fn flush_or_retry(&mut self, now: Instant) {
        self.flush();
        if self.has_pending() {
            self.flush_timer.arm(now + super::FLUSH_EVERY);
        }
    }

    /// Records the end of the process (and kills whatever it left in its group).
    fn record_exit(&mut self, exit: Option<ExitStatus>) {
        // Messages the agent sent just before it exited still count (its last X_TASK, say).
        self.apply_waiting();
        self.task_over(agentvisor_shared::model::TaskOutcome::Interrupted);
        // The agent's main process is gone; what it left in its group goes with it, so a
        // restart never accumulates orphans. Its escapees that were not known yet are killed
        // by the sampler once it finds them (see crate::process::contain).
        self.signal(Signal::SIGKILL);
        self.reset_health();
        self.status.lifecycle.pid = None;
        self.status.lifecycle.pgid = None;
        self.status.lifecycle.pid_start_ticks = None;
        self.status.lifecycle.exited_ms = Some(now_ms());
        self.status.lifecycle.exit_code = exit.and_then(|e| e.code()).map(i64::from);
        self.status.lifecycle.exit_signal = exit.and_then(|e| e.signal()).map(i64::from);
        self.flush();
        self.flush_timer.disarm();
    }
}

//! One run of the agent's process, from spawn to exit, and the restart loop around it.

use super::policy::Decision;
use super::{Command, Supervisor, human};
use crate::capture::output;
use crate::config::{OnHeartbeatTimeout, Ready, Restart};
use crate::deadline;
use crate::process::child::AgentChild;
use crate::process::contain;
use crate::process::{self, Spawned};
use agentvisor_shared::model::{AgentState, EventKind, Health, Severity, Stream};
use agentvisor_shared::time::now_ms;
use nix::sys::signal::Signal;
use std::os::unix::process::ExitStatusExt;
use std::pin::Pin;
use std::process::ExitStatus;
use std::time::Duration;
use tokio::time::{Instant, Sleep, sleep_until};

/// How often a stopping agent's process group is checked once its main process has exited.
const GROUP_POLL: Duration = Duration::from_millis(50);

/// A deadline noticed more than this after it passed means the launcher itself did not run
/// meanwhile (stopped, blocked, starved of CPU, a paused VM): see [`stall_grace`].
const STALL: Duration = Duration::from_millis(250);

/// How a run ended.
enum End {
    /// Stopped on command: stay stopped.
    Stopped,
    /// The process ended (or could not be started).
    Ended { failed: bool, ran_for: Duration },
}

impl Supervisor {
    /// Runs the agent, restarting it by its policy, until it is stopped, exits for good or
    /// turns fatal.
    pub(super) async fn supervise(&mut self) {
        loop {
            let End::Ended { failed, ran_for } = self.run_once().await else { return };
            if let Some(done) = self.pending_stop.take() {
                self.set_state(AgentState::Stopped);
                self.event(EventKind::Stopped, Severity::Info, "stopped while being restarted".into());
                let _ = done.send(());
                return;
            }
            let restart = match self.s.cfg.restart {
                Restart::Always => true,
                Restart::OnFailure => failed,
                Restart::Never => false,
            };
            if !restart {
                self.set_state(AgentState::Exited);
                return;
            }
            match self.tracker.next(&self.s.cfg, std::time::Instant::now(), ran_for) {
                Decision::Fatal { restarts, window } => {
                    self.set_state(AgentState::Fatal);
                    let msg = format!(
                        "crash loop: {restarts} restarts within {}; giving up (no more restarts in this launcher run)",
                        human(window)
                    );
                    self.event(EventKind::CrashLoop, Severity::Critical, msg);
                    return;
                }
                Decision::Restart(delay) => {
                    self.set_state(AgentState::Backoff);
                    let n = self.status.lifecycle.restarts + 1;
                    self.event(
                        EventKind::Backoff,
                        Severity::Info,
                        format!("restart {n} in {}", human(delay)),
                    );
                    if !self.sleep_unless_stopped(delay).await {
                        return;
                    }
                    self.status.lifecycle.restarts = n;
                }
            }
        }
    }

    /// Waits out a backoff delay; `false` if a stop came first (the agent is then stopped).
    async fn sleep_unless_stopped(&mut self, delay: Duration) -> bool {
        let deadline = deadline::after(Instant::now(), delay);
        loop {
            tokio::select! {
                _ = sleep_until(deadline) => return true,
                cmd = self.s.commands.recv() => {
                    let done = match cmd {
                        Some(Command::Kill | Command::Process(_)) => continue,
                        Some(Command::Stop { reason, done }) => {
                            self.event(EventKind::Stopped, Severity::Info, format!("stopped while waiting to restart: {reason}"));
                            Some(done)
                        }
                        None => None,
                    };
                    self.set_state(AgentState::Stopped);
                    if let Some(done) = done {
                        let _ = done.send(());
                    }
                    return false;
                }
            }
        }
    }

    async fn run_once(&mut self) -> End {
        let cfg = self.s.cfg.clone();
        let started = Instant::now();
        self.reset_health();
        self.status.lifecycle.state = AgentState::Starting;
        self.status.lifecycle.exit_code = None;
        self.status.lifecycle.exit_signal = None;
        self.status.lifecycle.exited_ms = None;
        // What the previous process said it was doing is not what the new one does; the last
        // error, model and totals stay as history until the new process reports its own.
        self.status.reported.status_text = None;
        self.status.reported.task = None;
        let spawned = match process::spawn(&cfg, &self.s.working_dir, &self.s.socket) {
            Ok(s) => s,
            Err(e) => {
                self.status.lifecycle.exited_ms = Some(now_ms());
                let msg = process::start_failure(&cfg, &self.s.working_dir, &e);
                self.status.lifecycle.last_error = Some(msg.clone());
                self.event(EventKind::SpawnFailed, Severity::Error, msg);
                return End::Ended { failed: true, ran_for: Duration::ZERO };
            }
        };
        let Spawned { mut child, pid, start_ticks, stdout, stderr, notify_pipe } = spawned;
        self.status.lifecycle.pid = Some(i64::from(pid));
        self.status.lifecycle.pgid = Some(i64::from(pid));
        self.status.lifecycle.pid_start_ticks = start_ticks.and_then(|t| i64::try_from(t).ok());
        self.status.lifecycle.started_ms = Some(now_ms());
        let ready_on_start = cfg.ready == Ready::Started;
        if ready_on_start {
            self.status.lifecycle.ready = true;
            self.status.lifecycle.state = AgentState::Running;
        }
        self.commit();
        self.event(EventKind::Started, Severity::Info, format!("started (pid {pid})"));
        let limits = self.s.limits;
        output::capture(cfg.name.clone(), Stream::Stdout, stdout, self.s.writer.clone(), limits);
        output::capture(cfg.name.clone(), Stream::Stderr, stderr, self.s.writer.clone(), limits);
        if let Err(e) = crate::notify::read_pipe(notify_pipe, self.s.notify_tx.clone()) {
            tracing::warn!(agent = %cfg.name, error = %e, "cannot read the notify pipe");
        }

        let far = deadline::after(started, deadline::NEVER);
        let mut ready_deadline = deadline::after(started, cfg.ready_timeout.get());
        let hb_timeout = cfg.heartbeat_timeout.map(|t| t.get());
        let mut hb_deadline =
            if ready_on_start { hb_timeout.map(|t| deadline::after(started, t)) } else { None };
        // The deadlines last moved by a stall (see `stall_grace`), so they move once only.
        let (mut ready_extended, mut hb_extended) = (None, None);
        // The timers live across the loop's turns: a select! that made them anew would put
        // them into tokio's timer wheel and take them out again for every message. The
        // heartbeat timer is moved lazily: a heartbeat only moves `hb_deadline`, and the timer
        // catches up when it fires, instead of being re-armed a thousand times a second.
        let heartbeat = sleep_until(hb_deadline.unwrap_or(far));
        tokio::pin!(heartbeat);
        // Armed only while something waits to be flushed: a thousand idle agents must not
        // mean thousands of timer wake-ups a second. An agent that reports less often than
        // `FLUSH_EVERY` is flushed as its message arrives, without waking again.
        let flush = sleep_until(far);
        tokio::pin!(flush);
        let mut flush_armed = false;
        let mut last_flush: Option<Instant> = None;
        let end = loop {
            tokio::select! {
                exit = child.wait() => {
                    let exit = exit.ok();
                    let ran_for = started.elapsed();
                    let (failed, how) = self.record_exit(pid, exit);
                    let (kind, severity) = if failed { (EventKind::Crashed, Severity::Error) } else { (EventKind::Exited, Severity::Info) };
                    self.event(kind, severity, format!("{how} after {}", human(ran_for)));
                    break End::Ended { failed, ran_for };
                }
                Some(parsed) = self.s.notify_rx.recv() => {
                    let now = Instant::now();
                    if self.apply(parsed, started) {
                        alive_at(now, hb_timeout, &mut hb_deadline, heartbeat.as_mut());
                    }
                    if !flush_armed && self.has_pending() {
                        match last_flush.map(|at| at + super::FLUSH_EVERY).filter(|due| *due > now) {
                            Some(due) => {
                                flush.as_mut().reset(due);
                                flush_armed = true;
                            }
                            None => {
                                flush_armed = self.flush_or_retry(flush.as_mut(), now);
                                last_flush = Some(now);
                            }
                        }
                    }
                }
                _ = sleep_until(ready_deadline), if !self.status.lifecycle.ready => {
                    let alive = self.catch_up(started).await;
                    let now = Instant::now();
                    if alive {
                        alive_at(now, hb_timeout, &mut hb_deadline, heartbeat.as_mut());
                    }
                    if !flush_armed && self.has_pending() {
                        flush.as_mut().reset(now);
                        flush_armed = true;
                    }
                    if self.status.lifecycle.ready {
                        continue;
                    }
                    let period = cfg.ready_timeout.get();
                    if let Some(later) = stall_grace(ready_deadline, now, period, &mut ready_extended) {
                        self.stall_noted("READY=1", now.saturating_duration_since(ready_deadline), period);
                        ready_deadline = later;
                        continue;
                    }
                    let msg = format!("not ready within {} (no READY=1)", human(cfg.ready_timeout.get()));
                    self.event(EventKind::ReadyTimeout, Severity::Error, msg);
                    let exit = self.stop_process(&mut child, pid, "ready timeout").await;
                    self.record_exit(pid, exit);
                    break End::Ended { failed: true, ran_for: started.elapsed() };
                }
                _ = &mut heartbeat, if hb_deadline.is_some() => {
                    if let Some(later) = hb_deadline.filter(|d| *d > Instant::now()) {
                        heartbeat.as_mut().reset(later);
                        continue;
                    }
                    let due = hb_deadline.take().unwrap_or(far);
                    let alive = self.catch_up(started).await;
                    let now = Instant::now();
                    if !flush_armed && self.has_pending() {
                        flush.as_mut().reset(now);
                        flush_armed = true;
                    }
                    if alive {
                        alive_at(now, hb_timeout, &mut hb_deadline, heartbeat.as_mut());
                        continue;
                    }
                    let period = hb_timeout.unwrap_or_default();
                    if let Some(later) = stall_grace(due, now, period, &mut hb_extended) {
                        self.stall_noted("WATCHDOG=1", now.saturating_duration_since(due), period);
                        hb_deadline = Some(later);
                        heartbeat.as_mut().reset(later);
                        continue;
                    }
                    self.status.lifecycle.health = Health::Unhealthy;
                    self.commit();
                    let timeout = human(hb_timeout.unwrap_or_default());
                    let then = match cfg.on_heartbeat_timeout {
                        OnHeartbeatTimeout::Restart => "restarting it",
                        OnHeartbeatTimeout::Mark => "marked unhealthy",
                    };
                    self.event(EventKind::HeartbeatMissed, Severity::Warning, format!("no heartbeat for {timeout}; {then}"));
                    if cfg.on_heartbeat_timeout == OnHeartbeatTimeout::Restart {
                        let exit = self.stop_process(&mut child, pid, "missed heartbeat").await;
                        self.record_exit(pid, exit);
                        break End::Ended { failed: true, ran_for: started.elapsed() };
                    }
                }
                _ = &mut flush, if flush_armed => {
                    let now = Instant::now();
                    flush_armed = self.flush_or_retry(flush.as_mut(), now);
                    last_flush = Some(now);
                }
                cmd = self.s.commands.recv() => {
                    let (reason, done) = match cmd {
                        Some(Command::Process(seen)) => {
                            self.observe(seen);
                            continue;
                        }
                        Some(Command::Stop { reason, done }) => (reason, Some(done)),
                        Some(Command::Kill) => ("killed at once".to_owned(), None),
                        None => ("the launcher let go of it".to_owned(), None),
                    };
                    let exit = if done.is_some() {
                        self.stop_process(&mut child, pid, &reason).await
                    } else {
                        process::signal_group(pid, Signal::SIGKILL);
                        contain::signal_run(&cfg.name, pid, Signal::SIGKILL);
                        child.wait().await.ok()
                    };
                    let (_, how) = self.record_exit(pid, exit);
                    self.status.lifecycle.state = AgentState::Stopped;
                    self.commit();
                    self.event(EventKind::Stopped, Severity::Info, format!("stopped ({how}): {reason}"));
                    if let Some(done) = done {
                        let _ = done.send(());
                    }
                    break End::Stopped;
                }
            }
        };
        // Messages the agent sent just before it exited still count (its last X_TASK, say).
        self.apply_waiting(started);
        self.flush();
        end
    }

    /// Applies the messages already forwarded to this supervisor; whether one was a sign of
    /// life.
    fn apply_waiting(&mut self, started: Instant) -> bool {
        let mut alive = false;
        while let Ok(parsed) = self.s.notify_rx.try_recv() {
            alive |= self.apply(parsed, started);
        }
        alive
    }

    /// Before a deadline counts as missed: the agent's messages that are already waiting count
    /// first. Some may be in the channel (the timer won the race in `select!`); others may
    /// still be in the socket or pipe, their reader task woken but not yet run (after a stall,
    /// the timers and the input all become due in one turn of the runtime). Yielding once
    /// lets every task that is ready run before this one continues (tokio wakes a yielded task
    /// only after it has polled the driver for input again). Only taken when a deadline has
    /// passed, never per message. Returns whether a sign of life was among them.
    async fn catch_up(&mut self, started: Instant) -> bool {
        if self.apply_waiting(started) {
            return true;
        }
        tokio::task::yield_now().await;
        self.apply_waiting(started)
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

    /// Flushes; when the writer had no room for everything, sets `timer` to try again a
    /// period later and returns `true`.
    fn flush_or_retry(&mut self, timer: Pin<&mut Sleep>, now: Instant) -> bool {
        self.flush();
        let again = self.has_pending();
        if again {
            timer.reset(now + super::FLUSH_EVERY);
        }
        again
    }

    /// Stops a running process: the stop signal to its group, then SIGKILL to the group once
    /// `stop_timeout` has passed (or at once on a kill command). The whole group gets the
    /// time, not only the main process: a shell wrapper dies at once on SIGTERM while the
    /// program it started may still be saving its work. Returns the main process's status.
    async fn stop_process(&mut self, child: &mut AgentChild, pid: i32, reason: &str) -> Option<ExitStatus> {
        self.status.lifecycle.state = AgentState::Stopping;
        self.commit();
        self.event(EventKind::Stopping, Severity::Info, format!("stopping: {reason}"));
        let cfg = &self.s.cfg;
        process::signal_group(pid, cfg.stop_signal.0);
        contain::signal_run(&cfg.name, pid, cfg.stop_signal.0);
        // A stopped process (SIGSTOP, SIGTSTP, a debugger) acts on nothing but SIGKILL until it
        // is continued: continue the run, as systemd does, so the stop signal takes effect now
        // rather than SIGKILL after the timeout. A running process ignores SIGCONT.
        if !matches!(cfg.stop_signal.0, Signal::SIGKILL | Signal::SIGCONT) {
            process::signal_group(pid, Signal::SIGCONT);
            contain::signal_run(&cfg.name, pid, Signal::SIGCONT);
        }
        let timeout = cfg.stop_timeout.get();
        let deadline = deadline::after(Instant::now(), timeout);
        let mut exit: Option<Option<ExitStatus>> = None;
        let mut poll = tokio::time::interval(GROUP_POLL);
        loop {
            tokio::select! {
                status = child.wait(), if exit.is_none() => {
                    exit = Some(status.ok());
                    if !contain::agent_alive(&self.s.cfg.name, pid) {
                        break;
                    }
                }
                _ = poll.tick(), if exit.is_some() => {
                    if !contain::agent_alive(&self.s.cfg.name, pid) {
                        break;
                    }
                }
                _ = sleep_until(deadline) => {
                    // After a stall of the launcher the timer and the exit become due together;
                    // a group that has exited (its main process maybe not yet reaped) is no
                    // timeout.
                    if contain::agent_alive(&self.s.cfg.name, pid) {
                        let msg = format!("still running {} after the stop signal; killing its process group", human(timeout));
                        self.event(EventKind::StopTimeout, Severity::Warning, msg);
                    }
                    break;
                }
                Some(cmd) = self.s.commands.recv() => match cmd {
                    Command::Kill => break,
                    Command::Process(_) => {}
                    // Already stopping; answer once it is gone, and do not restart it.
                    Command::Stop { done, .. } => self.pending_stop = Some(done),
                },
            }
        }
        process::signal_group(pid, Signal::SIGKILL);
        contain::signal_run(&self.s.cfg.name, pid, Signal::SIGKILL);
        match exit {
            Some(status) => status,
            None => child.wait().await.ok(),
        }
    }

    /// Records the end of the process (and kills whatever it left in its group). Returns
    /// whether the exit counts as a failure, and a description.
    fn record_exit(&mut self, pid: i32, exit: Option<ExitStatus>) -> (bool, String) {
        // The agent's main process is gone; what it left in its group goes with it, so a
        // restart never accumulates orphans. Its escapees that were not known yet are killed
        // by the sampler once it finds them (see crate::process::contain).
        process::signal_group(pid, Signal::SIGKILL);
        contain::signal_run(&self.s.cfg.name, pid, Signal::SIGKILL);
        self.reset_health();
        self.status.lifecycle.pid = None;
        self.status.lifecycle.pgid = None;
        self.status.lifecycle.pid_start_ticks = None;
        self.status.lifecycle.exited_ms = Some(now_ms());
        self.status.lifecycle.exit_code = exit.and_then(|e| e.code()).map(i64::from);
        self.status.lifecycle.exit_signal = exit.and_then(|e| e.signal()).map(i64::from);
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
}

/// A sign of life at `now`: the heartbeat deadline moves to `now + timeout`. The timer is only
/// re-armed when it was idle; otherwise it catches up when it fires.
fn alive_at(now: Instant, timeout: Option<Duration>, deadline: &mut Option<Instant>, timer: Pin<&mut Sleep>) {
    if let Some(t) = timeout {
        let due = deadline::after(now, t);
        if deadline.is_none() {
            timer.reset(due);
        }
        *deadline = Some(due);
    }
}

/// A deadline `due` noticed at `now`, more than [`STALL`] after it passed: the launcher itself
/// did not run meanwhile, so what the agent sent in that time may not have been read yet, and
/// the agent is not blamed for it. It gets one more full `period` from now (the new deadline
/// is returned and kept in `extended`); a deadline that is itself such an extension is final,
/// so an agent that is really quiet is caught even on a launcher that is always late.
fn stall_grace(
    due: Instant,
    now: Instant,
    period: Duration,
    extended: &mut Option<Instant>,
) -> Option<Instant> {
    if now.saturating_duration_since(due) <= STALL || *extended == Some(due) {
        return None;
    }
    let later = deadline::after(now, period);
    *extended = Some(later);
    Some(later)
}

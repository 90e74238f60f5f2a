//! An operator's start, stop and restart of agents, carried out by the [`Manager`]. It keeps
//! which agents an operator stopped, so that a reload does not start them again behind the
//! operator's back.

use super::fleet;
use super::{Action, Manager, Origin, Reply};
use crate::supervisor::Command;
use agentvisor_shared::WriteOp;
use agentvisor_shared::model::{DesiredState, EventKind, Severity};

impl Manager {
    /// The named agents (all enabled agents when none is named), in start-plan order.
    fn targets(&self, names: &[String]) -> Result<Vec<String>, String> {
        let planned: Vec<&str> =
            self.config.plan.iter().map(|&i| self.config.agents[i].name.as_str()).collect();
        if names.is_empty() {
            return Ok(planned.iter().map(|n| (*n).to_owned()).collect());
        }
        for n in names {
            if !planned.contains(&n.as_str()) {
                let why = if self.config.agents.iter().any(|a| a.name == *n) {
                    "is disabled in the config (enabled = false)"
                } else {
                    "is not a configured agent"
                };
                return Err(format!("{n:?} {why}; the agents: {}", planned.join(", ")));
            }
        }
        Ok(planned.into_iter().filter(|p| names.iter().any(|n| n == p)).map(str::to_owned).collect())
    }

    pub(super) async fn control(&mut self, action: Action, names: &[String], origin: &Origin) -> Reply {
        let targets = match self.targets(names) {
            Ok(t) if t.is_empty() => return Reply::ok("no enabled agents"),
            Ok(t) => t,
            Err(e) => return Reply::error(e),
        };
        let verb = action.as_str();
        let reason = format!("{verb} requested by {origin}");
        let mut skipped = Vec::new();
        let stop_kind = match action {
            Action::Restart => Some(EventKind::CtlRestart),
            Action::Stop => Some(EventKind::CtlStop),
            Action::Start | Action::Reload | Action::Run => None,
        };
        if let Some(kind) = stop_kind {
            for name in targets.iter().rev() {
                self.event(Some(name), kind, reason.clone());
                if action == Action::Stop && self.scheduled(name) {
                    self.event(Some(name), EventKind::SchedulePaused, format!("schedule paused: {reason}"));
                }
                self.stop(name, &reason).await;
            }
        }
        if action == Action::Stop {
            for name in &targets {
                self.held.insert(name.clone());
                self.desired(name, DesiredState::Stopped);
                self.stopped_by(name, Some(origin.who()));
            }
            return Reply::ok(format!("stopped {}", targets.join(", ")));
        }
        let mut started = Vec::new();
        for name in &targets {
            if action == Action::Start {
                if self.has_process(name) {
                    skipped.push(name.clone());
                    continue;
                }
                self.event(Some(name), EventKind::CtlStart, reason.clone());
                // A supervisor waiting to restart or for its dependencies lets go at once.
                self.stop(name, &reason).await;
            }
            if let Err(e) = self.spawn(name) {
                return Reply::error(format!("cannot start {name}: {e}"));
            }
            if action == Action::Start && self.held.contains(name) && self.scheduled(name) {
                self.event(Some(name), EventKind::ScheduleResumed, format!("schedule resumed: {reason}"));
            }
            self.held.remove(name);
            self.desired(name, DesiredState::Running);
            self.stopped_by(name, None);
            started.push(name.clone());
        }
        let done = if action == Action::Restart { "restarted" } else { "started" };
        let mut message =
            if started.is_empty() { String::new() } else { format!("{done} {}", started.join(", ")) };
        if !skipped.is_empty() {
            if !message.is_empty() {
                message.push_str("; ");
            }
            message.push_str(&format!("already running: {}", skipped.join(", ")));
        }
        Reply::ok(message)
    }

    /// A run of each named scheduled agent now, whether its schedule is paused or not; the
    /// run's overlap policy applies if one is running.
    pub(super) async fn run_now(&mut self, names: &[String], origin: &Origin) -> Reply {
        if names.is_empty() {
            return Reply::error("name the scheduled agents to run");
        }
        let targets = match self.targets(names) {
            Ok(t) => t,
            Err(e) => return Reply::error(e),
        };
        if let Some(daemon) = targets.iter().find(|n| !self.scheduled(n)) {
            return Reply::error(format!("{daemon:?} has no schedule; use start or restart"));
        }
        let user = match origin {
            Origin::Ctl(peer) => peer.user.clone(),
            other => other.to_string(),
        };
        for name in &targets {
            let sent = match self.fleet.member(name) {
                Some(m) => m.commands.send(Command::RunNow { user: user.clone() }).await.is_ok(),
                None => false,
            };
            if !sent {
                return Reply::error(format!("cannot run {name}: its supervisor is gone"));
            }
            self.event(Some(name), EventKind::CtlRun, format!("run requested by {origin}"));
        }
        Reply::ok(format!("run requested for {}", targets.join(", ")))
    }

    /// Whether the agent of the config in force has a schedule.
    fn scheduled(&self, name: &str) -> bool {
        self.config.agents.iter().any(|a| a.name == name && a.schedule.is_some())
    }

    fn has_process(&self, name: &str) -> bool {
        self.fleet.member(name).is_some_and(|m| m.status.borrow().lifecycle.state.has_process())
    }

    /// Stops an agent's process (if any) and waits until it is gone.
    pub(super) async fn stop(&self, name: &str, reason: &str) {
        let commands = self.fleet.member(name).map(|m| m.commands.clone());
        if let Some(commands) = commands {
            fleet::stop(&commands, reason.to_owned()).await;
        }
    }

    /// Starts a fresh supervisor for an agent of the config in force.
    pub(super) fn spawn(&mut self, name: &str) -> std::io::Result<()> {
        let Some(i) = self.config.agents.iter().position(|a| a.name == name) else { return Ok(()) };
        self.fleet.spawn(&self.config, i)
    }

    pub(super) fn desired(&self, agent: &str, desired: DesiredState) {
        let op = WriteOp::SetDesired { agent: agent.to_owned(), desired };
        if self.writer.send(op).is_err() {
            tracing::error!(agent, "the store's writer is gone; desired state not recorded");
        }
    }

    fn stopped_by(&self, agent: &str, by: Option<String>) {
        self.fleet.set_stopped_by(agent, by.clone());
        if self.writer.send(WriteOp::StoppedBy { agent: agent.to_owned(), by }).is_err() {
            tracing::error!(agent, "the store's writer is gone; who stopped it not recorded");
        }
    }

    /// Records an event (never dropped) and logs it.
    pub(super) fn event(&self, agent: Option<&str>, kind: EventKind, message: String) {
        self.event_at(agent, kind, Severity::Info, message);
    }

    pub(super) fn event_at(&self, agent: Option<&str>, kind: EventKind, severity: Severity, message: String) {
        crate::event::record(&self.writer, agent, kind, severity, message);
    }
}

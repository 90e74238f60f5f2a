//! Carries out control jobs one at a time: an operator's start, stop and restart of agents,
//! and config reloads (in [`crate::manager::reload`]). It owns the config in force and which agents an
//! operator stopped, so that a reload does not start them again behind the operator's back.

use crate::config::Config;
use crate::control::{Action, Job, Origin, Response};
use crate::manager::fleet::{self, Fleet};
use agentvisor_shared::model::{DesiredState, EventKind, Severity};
use agentvisor_shared::time::now_ms;
use agentvisor_shared::{NewEvent, WriteOp, WriterHandle};
use std::collections::HashSet;
use std::sync::Arc;
use tokio::sync::{Mutex, mpsc};

pub struct Operator {
    pub(crate) config: Config,
    pub(crate) fleet: Arc<Mutex<Fleet>>,
    pub(crate) writer: WriterHandle,
    /// Agents an operator stopped: no restart policy, reload or launcher-wide start brings
    /// them back; only `ctl start` or `ctl restart` naming them (or all agents) does.
    pub(crate) held: HashSet<String>,
    /// The config text last read, so a file event that changed nothing is not a reload.
    pub(crate) last_text: Option<String>,
}

impl Operator {
    pub fn new(config: Config, fleet: Arc<Mutex<Fleet>>, writer: WriterHandle) -> Operator {
        let last_text = Some(config.text.clone());
        Operator { config, fleet, writer, held: HashSet::new(), last_text }
    }

    pub async fn run(mut self, mut jobs: mpsc::Receiver<Job>) {
        while let Some(job) = jobs.recv().await {
            let response = match job.action {
                Action::Reload if !job.agents.is_empty() => {
                    Response::error("reload takes no agent names: it applies the whole config file")
                }
                Action::Reload => self.reload(&job.origin).await,
                // Answered by the control server from the live states, never queued here.
                Action::Status => Response::error("status is not an operation"),
                Action::Start | Action::Stop | Action::Restart => {
                    self.control(job.action, &job.agents, &job.origin).await
                }
            };
            if let Some(reply) = job.reply {
                // The client may have gone; the action is done and recorded regardless.
                let _ = reply.send(response);
            }
        }
    }

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
                return Err(format!("{n:?} {why}"));
            }
        }
        Ok(planned.into_iter().filter(|p| names.iter().any(|n| n == p)).map(str::to_owned).collect())
    }

    async fn control(&mut self, action: Action, names: &[String], origin: &Origin) -> Response {
        let targets = match self.targets(names) {
            Ok(t) if t.is_empty() => return Response::ok("no enabled agents"),
            Ok(t) => t,
            Err(e) => return Response::error(e),
        };
        let verb = action.as_str();
        let reason = format!("{verb} requested by {origin}");
        let mut skipped = Vec::new();
        if matches!(action, Action::Stop | Action::Restart) {
            for name in targets.iter().rev() {
                let kind = if action == Action::Stop { EventKind::CtlStop } else { EventKind::CtlRestart };
                self.event(Some(name), kind, reason.clone());
                self.stop(name, &reason).await;
            }
        }
        if action == Action::Stop {
            for name in &targets {
                self.held.insert(name.clone());
                self.desired(name, DesiredState::Stopped);
            }
            return Response::ok(format!("stopped {}", targets.join(", ")));
        }
        let mut started = Vec::new();
        for name in &targets {
            if action == Action::Start {
                if self.has_process(name).await {
                    skipped.push(name.clone());
                    continue;
                }
                self.event(Some(name), EventKind::CtlStart, reason.clone());
                // A supervisor waiting to restart or for its dependencies lets go at once.
                self.stop(name, &reason).await;
            }
            if let Err(e) = self.spawn(name).await {
                return Response::error(format!("cannot start {name}: {e}"));
            }
            self.held.remove(name);
            self.desired(name, DesiredState::Running);
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
        Response::ok(message)
    }

    async fn has_process(&self, name: &str) -> bool {
        self.fleet.lock().await.member(name).is_some_and(|m| m.status.borrow().lifecycle.state.has_process())
    }

    /// Stops an agent's process (if any) and waits until it is gone. The fleet is not locked
    /// meanwhile, so `ctl status` and the launcher's shutdown are never held up by it.
    pub(crate) async fn stop(&self, name: &str, reason: &str) {
        let commands = self.fleet.lock().await.member(name).map(|m| m.commands.clone());
        if let Some(commands) = commands {
            fleet::stop(&commands, reason.to_owned()).await;
        }
    }

    /// Starts a fresh supervisor for an agent of the config in force.
    pub(crate) async fn spawn(&self, name: &str) -> std::io::Result<()> {
        let Some(i) = self.config.agents.iter().position(|a| a.name == name) else { return Ok(()) };
        self.fleet.lock().await.spawn(&self.config, i)
    }

    pub(crate) fn desired(&self, agent: &str, desired: DesiredState) {
        let op = WriteOp::SetDesired { agent: agent.to_owned(), desired };
        if self.writer.send(op).is_err() {
            tracing::error!(agent, "the store's writer is gone; desired state not recorded");
        }
    }

    /// Records an event (never dropped) and logs it.
    pub(crate) fn event(&self, agent: Option<&str>, kind: EventKind, message: String) {
        self.event_at(agent, kind, Severity::Info, message);
    }

    pub(crate) fn event_at(&self, agent: Option<&str>, kind: EventKind, severity: Severity, message: String) {
        let kind_name = kind.as_str();
        match severity {
            Severity::Info => tracing::info!(agent, kind = kind_name, "{message}"),
            Severity::Warning => tracing::warn!(agent, kind = kind_name, "{message}"),
            Severity::Error | Severity::Critical => tracing::error!(agent, kind = kind_name, "{message}"),
        }
        let e = NewEvent { ts_ms: now_ms(), agent: agent.map(str::to_owned), kind, severity, message };
        if self.writer.send(WriteOp::Event(e)).is_err() {
            tracing::error!("the store's writer is gone; event not recorded");
        }
    }
}

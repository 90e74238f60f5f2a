//! The agents as a whole. One [`Manager`] owns the fleet of supervisors, the config in force
//! and the agents an operator stopped, and takes everything that changes them from one inbox
//! of [`Input`]s: operator commands, config reloads (SIGHUP, `ctl reload`, the config file's
//! [`watch`]) and the signals that stop the launcher. Jobs are carried out one at a time, so a
//! reload never races an operator's stop; readers (the sampler, `ctl status`, liveness) see the
//! fleet through its [`fleet::Roster`], never through the manager.

pub mod fleet;
mod input;
mod operator;
mod reload;
#[cfg(test)]
mod tests;
pub mod watch;

pub use input::{Action, Cause, Input, Job, Origin, Peer, Reply};

use crate::config::Config;
use agentvisor_shared::WriterHandle;
use fleet::{Fleet, Roster};
use std::collections::{HashMap, HashSet, VecDeque};
use std::time::Duration;
use tokio::sync::mpsc;

/// Jobs that arrived while another runs, waiting their turn; beyond this they are refused.
const WAITING: usize = 32;

/// How long killed agents' processes are waited for before the launcher goes on stopping.
const KILL_WAIT: Duration = Duration::from_secs(2);

pub struct Manager {
    config: Config,
    fleet: Fleet,
    writer: WriterHandle,
    /// Agents an operator stopped: no restart policy, reload or launcher-wide start brings
    /// them back; only `ctl start` or `ctl restart` naming them (or all agents) does.
    held: HashSet<String>,
    /// The config text last read, so a file event that changed nothing is not a reload.
    last_text: Option<String>,
    /// The event hooks' dispatcher, given the hooks of each config applied.
    hooks: Option<crate::hooks::Handle>,
}

impl Manager {
    /// Registers the configured agents and starts a supervisor for each enabled one.
    /// `last_due` holds each agent's latest due time on record (`Store::last_due_times`), read
    /// before this launcher recorded any run: each agent's first supervisor is given its own.
    pub fn start(
        config: Config,
        writer: &WriterHandle,
        last_due: HashMap<String, i64>,
    ) -> std::io::Result<Manager> {
        let fleet = Fleet::start(&config, writer, last_due)?;
        let last_text = Some(config.text.clone());
        Ok(Manager { config, fleet, writer: writer.clone(), held: HashSet::new(), last_text, hooks: None })
    }

    /// The event hooks' dispatcher: each reload hands it the new config's hooks.
    pub fn set_hooks(&mut self, hooks: crate::hooks::Handle) {
        self.hooks = Some(hooks);
    }

    /// Waits up to `limit` for running hooks to finish (at the launcher's end).
    pub async fn drain_hooks(&self, limit: Duration) {
        if let Some(hooks) = &self.hooks {
            hooks.drain(limit).await;
        }
    }

    pub fn roster(&self) -> Roster {
        self.fleet.roster()
    }

    /// The custom metrics the supervisors report, for the sampler's alert rules (once).
    pub fn take_metrics(&mut self) -> Option<tokio::sync::mpsc::Receiver<Vec<agentvisor_shared::Sample>>> {
        self.fleet.take_metrics()
    }

    /// Carries out jobs until a signal or the loss of the database says to stop, and returns
    /// that. The inbox is read while a job runs, so a job waiting out an agent's long
    /// `stop_timeout` does not make the launcher deaf to SIGTERM: the job is abandoned there
    /// (its client hears that the launcher is shutting down), and the jobs that arrived
    /// meanwhile wait their turn.
    pub async fn serve(&mut self, inbox: &mut mpsc::Receiver<Input>) -> Cause {
        let mut waiting = VecDeque::new();
        loop {
            let job = match waiting.pop_front() {
                Some(job) => job,
                None => match inbox.recv().await {
                    Some(Input::Job(job)) => job,
                    Some(Input::Signal(name)) => return Cause::Signal(name),
                    Some(Input::DatabaseLost(why)) => return Cause::DatabaseLost(why),
                    None => return Cause::InputClosed,
                },
            };
            let work = self.carry_out(job);
            tokio::pin!(work);
            loop {
                tokio::select! {
                    () = &mut work => break,
                    input = inbox.recv() => match input {
                        Some(Input::Job(job)) if waiting.len() < WAITING => waiting.push_back(job),
                        Some(Input::Job(job)) => refuse(job, "the launcher is busy: too many requests waiting"),
                        Some(Input::Signal(name)) => return Cause::Signal(name),
                        Some(Input::DatabaseLost(why)) => return Cause::DatabaseLost(why),
                        None => {
                            work.await;
                            return Cause::InputClosed;
                        }
                    },
                }
            }
        }
    }

    async fn carry_out(&mut self, job: Job) {
        let reply = match job.action {
            Action::Reload if !job.agents.is_empty() => {
                Reply::error("reload takes no agent names: it applies the whole config file")
            }
            Action::Reload => self.reload(&job.origin).await,
            Action::Start | Action::Stop | Action::Restart => {
                self.control(job.action, &job.agents, &job.origin).await
            }
            Action::Run => self.run_now(&job.agents, &job.origin).await,
        };
        if let Some(to) = job.reply {
            // The client may have gone; the action is done and recorded regardless.
            let _ = to.send(reply);
        }
    }

    /// Stops every agent, dependents first. Another SIGTERM or SIGINT meanwhile kills them
    /// all at once instead: returns whether that happened. Jobs still arriving are refused.
    pub async fn stop_all(&self, reason: &str, inbox: &mut mpsc::Receiver<Input>) -> bool {
        let stopping = self.fleet.stop_all(reason);
        tokio::pin!(stopping);
        loop {
            tokio::select! {
                () = &mut stopping => return false,
                input = inbox.recv() => match input {
                    Some(Input::Signal(_)) => break,
                    Some(Input::Job(job)) => refuse(job, "the launcher is shutting down"),
                    Some(Input::DatabaseLost(_)) => {}
                    None => {
                        stopping.await;
                        return false;
                    }
                },
            }
        }
        tracing::warn!("second signal: killing every agent at once");
        self.fleet.kill_all();
        let deadline = tokio::time::Instant::now() + KILL_WAIT;
        let roster = self.roster();
        while roster.with_members(|members| members.iter().any(|(_, rx)| rx.borrow().lifecycle.pid.is_some()))
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        true
    }
}

fn refuse(job: Job, why: &str) {
    if let Some(to) = job.reply {
        let _ = to.send(Reply::error(why));
    }
}

//! Event hooks: programs the `[[hook]]` tables name, run when a matching event is recorded.
//!
//! Every event recorded through [`crate::event::record`] is also offered to the one
//! [`Dispatcher`] task (without waiting: when it is behind, events are dropped for hooks and
//! counted, never held up). The dispatcher matches each event against the hooks in force,
//! applies each hook's rate limit (`min_interval` per hook and agent) and concurrency bound
//! (`max_concurrent`, then a queue of [`QUEUE`], then dropped), and runs the invocations as
//! tasks of their own (`invoke.rs`). A hook that fails, hangs past its `timeout` or cannot be
//! queued is an event of its own (`hook_failed`, `hook_timed_out`), which runs no hook. The
//! manager hands it the hooks of each config it applies: a reload replaces them, running
//! invocations finish under the config they started with.

pub mod invoke;

use crate::config::Config;
use crate::config::hooks::{HookConfig, QUEUE};
use agentvisor_shared::model::{EventKind, RunOutcome, RunTrigger, Severity};
use agentvisor_shared::{NewEvent, NewLogLine, NewRun, RunEnd, WriteOp, WriterHandle};
use invoke::{Finished, Invocation, Outcome};
use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinSet;

/// Events waiting for the dispatcher; beyond this they are dropped for hooks (they are still
/// recorded).
const EVENTS: usize = 1024;

/// The hooks in force and the directory they run in.
#[derive(Debug, Clone, Default)]
struct HookSet {
    hooks: Vec<Arc<HookConfig>>,
    base: PathBuf,
}

impl HookSet {
    fn of(config: &Config) -> HookSet {
        HookSet { hooks: config.hooks.iter().cloned().map(Arc::new).collect(), base: config.base_dir() }
    }
}

/// The manager's side: hands the dispatcher the hooks of each config it applies.
pub struct Handle {
    config: watch::Sender<HookSet>,
    drain: mpsc::Sender<oneshot::Sender<()>>,
}

impl Handle {
    pub fn reload(&self, config: &Config) {
        self.config.send_replace(HookSet::of(config));
    }

    /// At the launcher's end: waits up to `limit` for the invocations running or waiting
    /// (those of the events recorded so far, `launcher_stopped` among them) to finish, so that
    /// a hook told the launcher stopped is not killed with it.
    pub async fn drain(&self, limit: Duration) {
        let (tx, rx) = oneshot::channel();
        if self.drain.send(tx).await.is_ok() && tokio::time::timeout(limit, rx).await.is_err() {
            tracing::warn!("hooks still running after {limit:?} at shutdown: killed");
        }
    }
}

/// Starts the dispatcher on the current runtime and connects it to [`crate::event::record`].
pub fn start(config: &Config, db: &Path, writer: WriterHandle) -> Handle {
    let (tx, events) = mpsc::channel(EVENTS);
    crate::event::feed_hooks(tx);
    let (config_tx, config_rx) = watch::channel(HookSet::of(config));
    let d = Dispatcher {
        writer,
        db: db.to_owned(),
        set: config_rx.borrow().clone(),
        last_fired: HashMap::new(),
        busy: HashMap::new(),
        running: JoinSet::new(),
        names: HashMap::new(),
        drained: Vec::new(),
    };
    let (drain, drains) = mpsc::channel(1);
    tokio::spawn(d.run(events, config_rx, drains));
    Handle { config: config_tx, drain }
}

/// One hook's invocations running and waiting.
#[derive(Default)]
struct Busy {
    running: u32,
    queue: VecDeque<(Arc<HookConfig>, NewEvent)>,
}

struct Dispatcher {
    writer: WriterHandle,
    db: PathBuf,
    set: HookSet,
    /// When each (hook, agent) last ran; the launcher's own events have agent "".
    last_fired: HashMap<(String, String), Instant>,
    busy: HashMap<String, Busy>,
    running: JoinSet<Finished>,
    /// The hook of each running task, to account for one that panicked.
    names: HashMap<tokio::task::Id, String>,
    /// Told once nothing runs or waits (see [`Handle::drain`]).
    drained: Vec<oneshot::Sender<()>>,
}

impl Dispatcher {
    async fn run(
        mut self,
        mut events: mpsc::Receiver<NewEvent>,
        mut config: watch::Receiver<HookSet>,
        mut drains: mpsc::Receiver<oneshot::Sender<()>>,
    ) {
        loop {
            tokio::select! {
                // In this order: a reload hands over its hooks before it records
                // `config_reloaded`, which the new hooks are to see; a drain asked for after an
                // event was recorded waits for that event's hooks.
                biased;
                changed = config.changed() => {
                    if changed.is_err() {
                        break;
                    }
                    self.set = config.borrow_and_update().clone();
                    let names: Vec<&str> = self.set.hooks.iter().map(|h| h.name.as_str()).collect();
                    self.last_fired.retain(|(hook, _), _| names.contains(&hook.as_str()));
                    // Waiting invocations of a hook that is gone or changed are dropped.
                    let hooks = &self.set.hooks;
                    for (name, busy) in &mut self.busy {
                        busy.queue.retain(|(h, _)| hooks.iter().any(|n| n.name == *name && **n == **h));
                    }
                }
                event = events.recv() => match event {
                    Some(e) => self.offer(e),
                    None => break,
                },
                Some(joined) = self.running.join_next_with_id(), if !self.running.is_empty() => {
                    let (id, finished) = match joined {
                        Ok((id, f)) => (id, Some(f)),
                        Err(e) => (e.id(), None),
                    };
                    let name = self.names.remove(&id).unwrap_or_default();
                    match finished {
                        Some(f) => self.report(f),
                        None => self.hook_event(EventKind::HookFailed, format!("hook {name:?}: its task ended unexpectedly")),
                    }
                    self.next(&name);
                    self.tell_drained();
                }
                Some(done) = drains.recv() => {
                    self.drained.push(done);
                    self.tell_drained();
                }
            }
        }
    }

    fn tell_drained(&mut self) {
        if self.running.is_empty() {
            for done in self.drained.drain(..) {
                let _ = done.send(());
            }
        }
    }

    /// Runs or queues every hook `event` matches, within its rate limit.
    fn offer(&mut self, event: NewEvent) {
        let now = Instant::now();
        for hook in self.set.hooks.clone() {
            if !hook.matches(event.kind, event.agent.as_deref(), event.severity) {
                continue;
            }
            let key = (hook.name.clone(), event.agent.clone().unwrap_or_default());
            let interval = hook.min_interval.get();
            if let Some(last) = self.last_fired.get(&key)
                && now.duration_since(*last) < interval
            {
                tracing::debug!(hook = %hook.name, agent = ?event.agent, kind = event.kind.as_str(), "hook rate-limited (min_interval)");
                continue;
            }
            self.last_fired.insert(key, now);
            let busy = self.busy.entry(hook.name.clone()).or_default();
            if busy.running < hook.max_concurrent {
                busy.running += 1;
                self.spawn(hook, event.clone());
            } else if busy.queue.len() < QUEUE {
                busy.queue.push_back((hook, event.clone()));
            } else {
                let message = format!(
                    "hook {:?}: {} invocations running and {QUEUE} waiting; not run for {}",
                    hook.name,
                    hook.max_concurrent,
                    about(&event)
                );
                self.hook_event(EventKind::HookFailed, message);
            }
        }
    }

    fn spawn(&mut self, hook: Arc<HookConfig>, event: NewEvent) {
        let name = hook.name.clone();
        let inv = Invocation { hook, event, base: self.set.base.clone(), db: self.db.clone() };
        let id = self.running.spawn(invoke::run(inv)).id();
        self.names.insert(id, name);
    }

    /// After an invocation of `name` ended: the next one waiting, if any.
    fn next(&mut self, name: &str) {
        let Some(busy) = self.busy.get_mut(name) else { return };
        busy.running = busy.running.saturating_sub(1);
        if let Some((hook, event)) = busy.queue.pop_front() {
            busy.running += 1;
            self.spawn(hook, event);
        } else if busy.running == 0 {
            self.busy.remove(name);
        }
    }

    fn report(&mut self, f: Finished) {
        let what = format!("hook {:?} (for {})", f.hook, f.agent.as_deref().unwrap_or("the launcher"));
        let tail = stderr_tail(&f);
        let message = match &f.outcome {
            Outcome::Succeeded => {
                tracing::debug!(hook = %f.hook, ms = f.ended_ms - f.started_ms, "hook succeeded");
                None
            }
            Outcome::Failed(how) => {
                self.hook_event(EventKind::HookFailed, format!("{what} {how}{tail}"));
                Some(how.clone())
            }
            Outcome::TimedOut => {
                let timeout = self.timeout_of(&f.hook);
                let how = format!("ran past its timeout{timeout} and was killed");
                self.hook_event(EventKind::HookTimedOut, format!("{what} {how}{tail}"));
                Some(how)
            }
        };
        self.record_run(f, message);
    }

    /// The invocation as a run (trigger `hook`, under the hook's name) with its output. All
    /// written at its end, one after another: output is counted to the newest run of its name,
    /// and invocations of one hook may overlap.
    fn record_run(&self, f: Finished, message: Option<String>) {
        let id = self.writer.new_run_id();
        let outcome = match f.outcome {
            Outcome::Succeeded => RunOutcome::Succeeded,
            Outcome::Failed(_) => RunOutcome::Failed,
            Outcome::TimedOut => RunOutcome::TimedOut,
        };
        let start = NewRun {
            id,
            agent: f.hook.clone(),
            trigger: RunTrigger::Hook,
            attempt: 0,
            user: None,
            subject: f.agent,
            detail: Some(f.detail),
            due_ms: None,
            ts_ms: f.started_ms,
            pid: f.pid.map(i64::from),
        };
        let lines: Vec<NewLogLine> = f
            .output
            .into_iter()
            .map(|(stream, ts_ms, line)| NewLogLine { agent: f.hook.clone(), stream, ts_ms, line })
            .collect();
        let mut message = message;
        if f.dropped_lines > 0 {
            let more = format!("{} more output lines not kept", f.dropped_lines);
            message = Some(message.map_or(more.clone(), |m| format!("{m}; {more}")));
        }
        let end = RunEnd {
            id,
            ended_ms: f.ended_ms,
            outcome,
            exit_code: f.exit_code.map(i64::from),
            exit_signal: f.exit_signal.map(i64::from),
            tokens_in: None,
            tokens_out: None,
            cost: None,
            message,
        };
        let mut ops = vec![WriteOp::RunStarted(Box::new(start))];
        if !lines.is_empty() {
            ops.push(WriteOp::Logs(lines));
        }
        ops.push(WriteOp::RunEnded(Box::new(end)));
        for op in ops {
            if self.writer.send(op).is_err() {
                tracing::error!(hook = %f.hook, "the store's writer is gone; hook run not recorded");
                return;
            }
        }
    }

    fn timeout_of(&self, hook: &str) -> String {
        self.set
            .hooks
            .iter()
            .find(|h| h.name == hook)
            .map(|h| format!(" ({})", h.timeout))
            .unwrap_or_default()
    }

    fn hook_event(&self, kind: EventKind, message: String) {
        crate::event::record(&self.writer, None, kind, Severity::Warning, message);
    }
}

/// "crashed of worker".
fn about(e: &NewEvent) -> String {
    match &e.agent {
        Some(a) => format!("{} of {a}", e.kind.as_str()),
        None => e.kind.as_str().to_owned(),
    }
}

/// The last line the hook wrote to stderr, to say why it failed.
fn stderr_tail(f: &Finished) -> String {
    f.output
        .iter()
        .rev()
        .find(|(s, _, l)| *s == agentvisor_shared::model::Stream::Stderr && !l.trim().is_empty())
        .map(|(_, _, l)| format!("; stderr: {}", l.chars().take(300).collect::<String>()))
        .unwrap_or_default()
}

//! The typed vocabulary both binaries share: states, severities, and the rows the reader returns.
//! Enums are stored as their lower-case names so the database reads well in `sqlite3`.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

/// Declares a string-backed enum with `as_str`, `Display`, `FromStr` and serde in lower case.
macro_rules! text_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($(#[$vm])* $variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            /// The stored names of [`Self::ALL`], in the same order.
            pub const NAMES: &'static [&'static str] = &[$($text),+];
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = UnknownValue;
            fn from_str(s: &str) -> Result<Self, UnknownValue> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err(UnknownValue { kind: stringify!($name), value: s.to_owned(), valid: $name::NAMES }),
                }
            }
        }
    };
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} {value:?}; valid: {}", valid.join(", "))]
pub struct UnknownValue {
    pub kind: &'static str,
    pub value: String,
    /// Every name the enum accepts, for the message.
    pub valid: &'static [&'static str],
}

text_enum! {
    /// Where an agent is in its lifecycle.
    #[derive(Default)]
    AgentState {
        Starting => "starting",
        Running => "running",
        Stopping => "stopping",
        #[default]
        Stopped => "stopped",
        Exited => "exited",
        Backoff => "backoff",
        Fatal => "fatal",
        /// A scheduled agent between runs (or waiting for its next one): no process, healthy
        /// when its last run succeeded.
        Scheduled => "scheduled",
    }
}

text_enum! {
    /// Whether the agent is doing its job, as far as the launcher can tell.
    #[derive(Default)]
    Health {
        Healthy => "healthy",
        Unhealthy => "unhealthy",
        #[default]
        Unknown => "unknown",
    }
}

text_enum! {
    /// How much an event matters; ordered, so "at least warning" is a comparison.
    Severity {
        Info => "info",
        Warning => "warning",
        Error => "error",
        Critical => "critical",
    }
}

text_enum! {
    /// Which output stream a captured line came from.
    Stream {
        Stdout => "stdout",
        Stderr => "stderr",
    }
}

text_enum! {
    /// What the operator (or the config) wants an agent to be.
    DesiredState {
        Running => "running",
        Stopped => "stopped",
        Removed => "removed",
    }
}

text_enum! {
    /// What started a run (`runs.trigger`).
    RunTrigger {
        /// Its agent's schedule came due.
        Schedule => "schedule",
        /// At start, for a due time missed while no launcher ran (`catch_up = true`).
        CatchUp => "catch_up",
        /// An operator's `ctl run`.
        Manual => "manual",
        /// An event a hook listens to.
        Hook => "hook",
        /// A process start of an agent without a schedule (its first start or a restart).
        Start => "start",
    }
}

text_enum! {
    /// How a run ended (`runs.outcome`; NULL while it runs).
    RunOutcome {
        /// It exited with code 0.
        Succeeded => "succeeded",
        /// It exited with another code, was killed by a signal, or could not be started.
        Failed => "failed",
        /// It ran past its `timeout` and was stopped.
        TimedOut => "timed_out",
        /// It was due while the previous run still ran (`overlap = "skip"`): never started.
        Skipped => "skipped",
        /// It was stopped on command (an operator, a reload, the launcher's shutdown).
        Stopped => "stopped",
        /// It was still running when its launcher died (recorded by the next launcher).
        Lost => "lost",
    }
}

text_enum! {
    /// How a task an agent reported (`X_TASK`) ended (`tasks.outcome`; NULL while it runs).
    TaskOutcome {
        /// The agent said `X_TASK_DONE=ok`.
        Ok => "ok",
        /// The agent said `X_TASK_DONE=failed`.
        Failed => "failed",
        /// A new `X_TASK` or an empty one ended it, with no outcome said.
        Ended => "ended",
        /// Its agent's process ended while it ran.
        Interrupted => "interrupted",
        /// It was still running when its launcher died (recorded by the next launcher).
        Lost => "lost",
    }
}

impl RunOutcome {
    /// Outcomes that count as a failure (`runs --failed`).
    pub const FAILURES: &'static [RunOutcome] = &[RunOutcome::Failed, RunOutcome::TimedOut, RunOutcome::Lost];

    pub fn is_failure(self) -> bool {
        Self::FAILURES.contains(&self)
    }
}

text_enum! {
    /// What an event records. Both programs share this list: the launcher writes only these
    /// kinds, and the dashboard filters and draws by them. `events.kind` stays TEXT holding
    /// these names; a reader keeps the text of kinds it does not know (see [`Event::known_kind`]).
    /// `docs/schema.md` lists every kind with its meaning and severity.
    EventKind {
        /// Waiting for the agents it depends on to be ready; the agent is still stopped.
        Waiting => "waiting",
        /// Its process was spawned: running for `ready = "started"`, starting for `"notify"`.
        Started => "started",
        /// It sent `READY=1` (`ready = "notify"`), its readiness probe passed or an output line
        /// matched `ready_log_line`: now running.
        Ready => "ready",
        /// The stop signal was sent to its process group.
        Stopping => "stopping",
        /// Stopped on command (by an operator, a reload or the launcher's shutdown).
        Stopped => "stopped",
        /// Its process exited with code 0.
        Exited => "exited",
        /// Its process exited with another code or was killed by a signal.
        Crashed => "crashed",
        /// Its process could not be started.
        SpawnFailed => "spawn_failed",
        /// It sent no `READY=1` within `ready_timeout`; it is stopped next.
        ReadyTimeout => "ready_timeout",
        /// A restart is scheduled after a delay.
        Backoff => "backoff",
        /// Too many restarts within the window: fatal, no more restarts.
        CrashLoop => "crash_loop",
        /// Its group still ran `stop_timeout` after the stop signal and was killed.
        StopTimeout => "stop_timeout",
        /// No heartbeat within `heartbeat_timeout`: unhealthy, and restarted if so configured.
        HeartbeatMissed => "heartbeat_missed",
        /// Heartbeats came again after a miss.
        HeartbeatResumed => "heartbeat_resumed",
        /// Its process was stopped (SIGSTOP, SIGTSTP, a debugger).
        ProcessStopped => "process_stopped",
        /// Its stopped process runs again.
        ProcessResumed => "process_resumed",
        /// It said it is stopping (`STOPPING=1`).
        AgentStopping => "agent_stopping",
        /// It reported an error (`X_ERROR`).
        AgentError => "agent_error",
        /// Its supervisor task ended unexpectedly: fatal until started again.
        SupervisorLost => "supervisor_lost",
        /// It was removed from the config.
        AgentRemoved => "agent_removed",
        /// An operator asked to start it.
        CtlStart => "ctl_start",
        /// An operator asked to stop it.
        CtlStop => "ctl_stop",
        /// An operator asked to restart it.
        CtlRestart => "ctl_restart",
        /// An operator asked for a run of a scheduled agent now (`ctl run`).
        CtlRun => "ctl_run",
        /// A scheduled agent's schedule was paused (`ctl stop`): no runs until `ctl start`.
        SchedulePaused => "schedule_paused",
        /// A paused schedule runs again (`ctl start`).
        ScheduleResumed => "schedule_resumed",
        /// A run came due while the previous one still ran and was skipped (`overlap = "skip"`).
        RunSkipped => "run_skipped",
        /// A run ran past its `timeout`: it is stopped, outcome `timed_out`.
        RunTimeout => "run_timeout",
        /// A control connection from a user other than the launcher's or root was refused.
        CtlRefused => "ctl_refused",
        /// The config was read again and applied (an error if some agents could not start).
        ConfigReloaded => "config_reloaded",
        /// A changed config was invalid and not applied.
        ConfigInvalid => "config_invalid",
        /// A hook exited with a failure, was killed, or could not be started or queued.
        HookFailed => "hook_failed",
        /// A hook ran past its `timeout` and was killed.
        HookTimedOut => "hook_timed_out",
        /// A launcher began its session.
        LauncherStarted => "launcher_started",
        /// The launcher is stopping its agents.
        LauncherStopping => "launcher_stopping",
        /// The launcher stopped.
        LauncherStopped => "launcher_stopped",
        /// The previous launcher ended without stopping (found by the next one).
        LauncherCrashed => "launcher_crashed",
        /// Writes to the database failed for a while; dated when the outage began.
        StorageError => "storage_error",
        /// A probe passes (`success_threshold` successes in a row); a liveness probe makes the
        /// agent healthy.
        ProbePassed => "probe_passed",
        /// A probe fails (`failure_threshold` failures in a row); a liveness probe's failure
        /// counts as a missed heartbeat.
        ProbeFailed => "probe_failed",
        /// Its process tree went over `max_memory` or `max_cpu` for `limit_for`.
        LimitExceeded => "limit_exceeded",
        /// An `[[alert]]` rule's condition held for its `for`: the alert fires.
        AlertFiring => "alert_firing",
        /// A firing alert's condition no longer holds.
        AlertResolved => "alert_resolved",
    }
}

impl AgentState {
    /// States in which the agent's process exists (or is being started or stopped).
    pub fn has_process(self) -> bool {
        matches!(self, AgentState::Starting | AgentState::Running | AgentState::Stopping)
    }
}

/// Metric names the launcher itself records for every agent; agents' own `X_METRIC_*` names
/// may not take these.
pub const BUILTIN_AGENT_METRICS: &[&str] =
    &[metric::CPU_PERCENT, metric::MEMORY_BYTES, metric::THREADS, metric::HEARTBEAT_GAP_S];

/// The parts of the launcher's status line (`launcher_sessions.status`, systemd's `STATUS=`)
/// that the dashboard reads back: `5/6 agents running; config error: agents.toml:9:11: ...;
/// storage error: ...`. The launcher writes them with these markers and the dashboard splits
/// on them, so both programs share one spelling.
pub mod status_line {
    /// Before the error of a config on disk that the launcher refused to load.
    pub const CONFIG_ERROR: &str = "config error: ";
    /// Before the store's error while writing fails; always after a config error.
    pub const STORAGE_ERROR: &str = "; storage error: ";
}

/// Metric names and the special scopes of series that belong to no agent.
pub mod metric {
    pub const CPU_PERCENT: &str = "cpu_percent";
    pub const MEMORY_BYTES: &str = "memory_bytes";
    pub const THREADS: &str = "threads";
    pub const HEARTBEAT_GAP_S: &str = "heartbeat_gap_s";

    /// Scope of host-wide series (`cpu_percent`, `memory_used_bytes`, `load1`, ...).
    pub const HOST: &str = "@host";
    /// Scope of the launcher's own series.
    pub const LAUNCHER: &str = "@launcher";

    pub const MEMORY_USED_BYTES: &str = "memory_used_bytes";
    pub const MEMORY_TOTAL_BYTES: &str = "memory_total_bytes";
    pub const LOAD1: &str = "load1";
    pub const LOAD5: &str = "load5";
    pub const LOAD15: &str = "load15";
    pub const DISK_FREE_BYTES: &str = "disk_free_bytes";
    pub const DB_BYTES: &str = "db_bytes";
    pub const WAL_BYTES: &str = "wal_bytes";
    pub const DROPPED_WRITES: &str = "dropped_writes";
}

/// A launcher's run, from start to stop (or to the crash found by the next launcher).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LauncherSession {
    pub id: i64,
    pub pid: i64,
    pub host: String,
    pub version: String,
    pub config_path: Option<String>,
    pub started_ms: i64,
    pub last_seen_ms: i64,
    pub stopped_ms: Option<i64>,
    pub exit_reason: Option<String>,
    pub status: Option<String>,
}

/// An agent as the launcher was told to run it: the config, with environment values removed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentSpec {
    pub name: String,
    pub description: String,
    pub kind: String,
    pub command: Vec<String>,
    pub capabilities: Vec<String>,
    /// The agent's config as JSON, environment values replaced by their names only.
    pub config: serde_json::Value,
    pub enabled: bool,
    pub desired_state: DesiredState,
    pub heartbeat_timeout_ms: Option<i64>,
    /// Position in the start plan.
    pub position: i64,
}

/// Everything the launcher knows about an agent right now: one row of `agent_state`. Its JSON
/// is flat (the two parts' fields side by side), as `status --json` has always printed it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct AgentStatus {
    pub agent: String,
    #[serde(flatten)]
    pub lifecycle: Lifecycle,
    #[serde(flatten)]
    pub reported: Reported,
}

/// What the supervisor decides: the process and its supervision state. A change in any of it
/// is written at once; the writer compares it whole to tell a transition from a heartbeat.
///
/// `last_error` is here although an agent can set it too (`X_ERROR`, `ERRNO`): the supervisor
/// writes it with its own transitions (a spawn failure, a lost supervisor, a stopped process)
/// and the reason must reach the database with the state it explains, not a routine commit
/// later; an agent's new error comes with an event, which is written at once anyway.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Lifecycle {
    pub state: AgentState,
    pub health: Health,
    pub ready: bool,
    pub pid: Option<i64>,
    pub pgid: Option<i64>,
    /// Start time of `pid` in clock ticks since boot (`/proc/PID/stat` field 22), so a later
    /// launcher can tell the same process from a reused PID.
    pub pid_start_ticks: Option<i64>,
    pub started_ms: Option<i64>,
    pub exited_ms: Option<i64>,
    pub exit_code: Option<i64>,
    pub exit_signal: Option<i64>,
    pub restarts: i64,
    pub last_error: Option<String>,
}

/// What the agent says about itself (heartbeats, status text, task, model, tokens, cost) and
/// how many of its messages were refused. The writer may hold a change here back for a
/// routine commit.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Reported {
    pub last_heartbeat_ms: Option<i64>,
    pub heartbeats: i64,
    pub status_text: Option<String>,
    pub task: Option<String>,
    pub model: Option<String>,
    pub tokens_in: Option<i64>,
    pub tokens_out: Option<i64>,
    pub cost: Option<f64>,
    pub notify_errors: i64,
}

impl AgentStatus {
    /// Whether two statuses of an agent describe the same process in the same supervision
    /// state, so that only what the agent reports differs.
    pub fn same_lifecycle(&self, other: &AgentStatus) -> bool {
        self.lifecycle == other.lifecycle
    }
}

/// One agent as the dashboard shows it: registry, state, and latest metric values.
///
/// The state part is the very [`AgentStatus`] the launcher wrote; `row.state`, `row.pid` and
/// the other status fields read through to it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AgentRow {
    pub name: String,
    pub description: String,
    pub kind: String,
    /// Shared with the reader's cache, which parses each distinct JSON text once: they change
    /// only on a reload, and a dashboard reads them for every agent ten times a second.
    pub command: Arc<[String]>,
    pub capabilities: Arc<[String]>,
    pub enabled: bool,
    pub desired_state: DesiredState,
    /// Who stopped the agent on request (`alice (ctl)`), while it stays stopped.
    pub stopped_by: Option<String>,
    pub heartbeat_timeout_ms: Option<i64>,
    pub position: i64,
    #[serde(flatten)]
    pub status: AgentStatus,
    pub updated_ms: i64,
    /// Latest value of every series of this agent, built-in and custom; the process figures
    /// (`cpu_percent`, `memory_bytes`, `threads`) only while the agent has a process. The
    /// names are shared: a thousand agents' snapshot holds each name once, not ten thousand
    /// copies made anew for every frame.
    pub metrics: BTreeMap<Arc<str>, f64>,
    /// The agent's readiness and liveness probes' last results (readiness first).
    pub probes: Vec<crate::probes::ProbeStatus>,
    /// Its last finished run that was not skipped (a scheduled agent's health is its outcome).
    pub last_run: Option<LastRun>,
    /// When its next scheduled run is due; `None` without a schedule or while it is paused.
    pub next_run_ms: Option<i64>,
}

/// What the screens and `status --json` show of an agent's last run (the `runs` row in brief).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LastRun {
    pub id: i64,
    pub trigger: RunTrigger,
    pub outcome: RunOutcome,
    pub started_ms: i64,
    pub ended_ms: Option<i64>,
    pub duration_ms: Option<i64>,
    pub exit_code: Option<i64>,
    pub exit_signal: Option<i64>,
    pub cost: Option<f64>,
}

impl std::ops::Deref for AgentRow {
    type Target = AgentStatus;
    fn deref(&self) -> &AgentStatus {
        &self.status
    }
}

impl std::ops::DerefMut for AgentRow {
    fn deref_mut(&mut self) -> &mut AgentStatus {
        &mut self.status
    }
}

impl AgentRow {
    /// The agent's own `X_METRIC_*` values, without the launcher's built-in ones.
    pub fn custom_metrics(&self) -> impl Iterator<Item = (&str, f64)> {
        self.metrics.iter().filter(|(k, _)| !BUILTIN_AGENT_METRICS.contains(&&***k)).map(|(k, v)| (&**k, *v))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    pub id: i64,
    pub ts_ms: i64,
    pub agent: Option<String>,
    /// The kind as stored: the text, not an [`EventKind`], so that an event a newer launcher
    /// wrote (or an older one, with a kind since retired) is still read and shown as it was
    /// recorded rather than failing the whole read.
    pub kind: String,
    pub severity: Severity,
    pub message: String,
}

impl Event {
    /// The kind, if it is one this build knows.
    pub fn known_kind(&self) -> Option<EventKind> {
        self.kind.parse().ok()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LogLine {
    pub id: i64,
    pub agent: String,
    pub stream: Stream,
    pub ts_ms: i64,
    pub line: String,
}

/// One point of a metric series; for rolled-up data `min`/`max`/`count` cover the step.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Point {
    pub ts_ms: i64,
    pub value: f64,
    pub min: f64,
    pub max: f64,
    pub count: i64,
}

/// Host-wide figures sampled by the launcher (latest values of the `@host` series).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct HostStats {
    pub cpu_percent: Option<f64>,
    pub memory_used_bytes: Option<f64>,
    pub memory_total_bytes: Option<f64>,
    pub load1: Option<f64>,
    pub load5: Option<f64>,
    pub load15: Option<f64>,
    pub disk_free_bytes: Option<f64>,
}

/// Everything one dashboard frame needs, read in one short transaction.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Snapshot {
    pub taken_ms: i64,
    pub schema_version: i64,
    pub launcher: Option<LauncherSession>,
    /// The launcher's own `@launcher` series, latest values (cpu_percent, memory_bytes, ...).
    pub launcher_metrics: BTreeMap<String, f64>,
    pub host: HostStats,
    pub agents: Vec<AgentRow>,
    /// Newest error and critical events.
    pub problems: Vec<Event>,
    pub errors_last_hour: i64,
    pub db_bytes: u64,
    pub wal_bytes: u64,
    /// The alerts firing now, by rule then agent.
    pub alerts: Vec<FiringAlert>,
}

/// An `[[alert]]` rule firing for one agent, as the launcher last wrote it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FiringAlert {
    pub rule: String,
    pub agent: String,
    pub severity: Severity,
    /// When it began to fire.
    pub since_ms: i64,
    /// What the rule compared (after `rate`), or for `absent` the seconds since the last new
    /// value; `None` when there was nothing to compare.
    pub value: Option<f64>,
    /// The condition in words: "cost per_hour 4.1 > 2".
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_kinds_round_trip_as_their_stored_names() {
        assert_eq!(EventKind::ALL.len(), EventKind::NAMES.len());
        for (kind, name) in EventKind::ALL.iter().zip(EventKind::NAMES) {
            assert_eq!(kind.as_str(), *name);
            assert_eq!(name.parse::<EventKind>(), Ok(*kind));
            assert_eq!(serde_json::to_value(kind).unwrap(), serde_json::json!(name));
            assert_eq!(serde_json::from_value::<EventKind>(serde_json::json!(name)).unwrap(), *kind);
        }
        let unique: std::collections::HashSet<_> = EventKind::NAMES.iter().collect();
        assert_eq!(unique.len(), EventKind::NAMES.len(), "two kinds share a name");
    }

    #[test]
    fn an_unknown_kind_is_refused_with_the_valid_ones() {
        let err = "crash".parse::<EventKind>().unwrap_err().to_string();
        assert!(err.starts_with("unknown EventKind \"crash\"; valid: waiting, started, ready,"), "{err}");
        assert!(
            err.ends_with(
                "storage_error, probe_passed, probe_failed, limit_exceeded, alert_firing, alert_resolved"
            ),
            "{err}"
        );
    }

    #[test]
    fn an_event_keeps_a_kind_this_build_does_not_know() {
        let mut e = Event {
            id: 1,
            ts_ms: 0,
            agent: None,
            kind: "from_a_newer_launcher".into(),
            severity: Severity::Info,
            message: String::new(),
        };
        assert_eq!(e.known_kind(), None);
        e.kind = "crash_loop".into();
        assert_eq!(e.known_kind(), Some(EventKind::CrashLoop));
    }

    /// The split into lifecycle and reported parts is for the code; serialized, a status is
    /// still one flat object.
    #[test]
    fn a_status_serializes_flat() {
        let v = serde_json::to_value(AgentStatus::default()).unwrap();
        let mut keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort_unstable();
        let mut expected = vec![
            "agent",
            "state",
            "health",
            "ready",
            "pid",
            "pgid",
            "pid_start_ticks",
            "started_ms",
            "exited_ms",
            "exit_code",
            "exit_signal",
            "restarts",
            "last_error",
            "last_heartbeat_ms",
            "heartbeats",
            "status_text",
            "task",
            "model",
            "tokens_in",
            "tokens_out",
            "cost",
            "notify_errors",
        ];
        expected.sort_unstable();
        assert_eq!(keys, expected);
    }

    /// The schema document is the contract other programs read: every kind is in its table.
    #[test]
    fn the_schema_document_lists_every_event_kind() {
        let doc = include_str!("../../docs/schema.md");
        let missing: Vec<_> =
            EventKind::NAMES.iter().filter(|n| !doc.contains(&format!("\n| `{n}` |"))).collect();
        assert!(missing.is_empty(), "docs/schema.md does not list {missing:?}");
    }
}

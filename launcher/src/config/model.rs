//! The shape of `agents.toml`. Every table denies unknown keys so a typo is an error, not a
//! silently ignored setting; every key but an agent's `name` and `command` has a default.

use super::values::{Dur, Sig};
use nix::sys::signal::Signal;
use serde::{Deserialize, Serialize, Serializer};
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct File {
    #[serde(default)]
    pub launcher: LauncherConfig,
    #[serde(default)]
    pub agent: Vec<AgentConfig>,
    #[serde(default)]
    pub alert: Vec<super::alert::AlertRule>,
    #[serde(default)]
    pub hook: Vec<super::hooks::HookConfig>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LauncherConfig {
    /// How often CPU, memory and host figures are sampled.
    pub sample_interval: Dur,
    /// Captured output lines kept per agent (the newest win).
    pub log_lines: u64,
    /// Longer output lines are cut to this many bytes and marked.
    pub log_line_bytes: usize,
    /// Output lines per second and stream an agent may log; the rest are dropped and counted.
    pub log_rate: u32,
    /// Group read-write on the database files and the control socket (0660 instead of 0600),
    /// and members of the launcher's group may use `ctl`.
    pub group: bool,
    /// How long history is kept in the database.
    pub retention: super::retention::Retention,
    /// A cgroup per agent. Unset: where systemd delegated the launcher's cgroup to it; `true`:
    /// also in a writable cgroup nobody delegated (a container's cgroup root); `false`: never,
    /// the launcher contains agents as a subreaper only.
    pub cgroups: Option<bool>,
}

impl Default for LauncherConfig {
    fn default() -> Self {
        LauncherConfig {
            sample_interval: Dur::secs(1),
            log_lines: 5_000,
            log_line_bytes: 4_096,
            log_rate: 1_000,
            group: false,
            retention: super::retention::Retention::default(),
            cgroups: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Restart {
    Always,
    OnFailure,
    Never,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnHeartbeatTimeout {
    Restart,
    Mark,
}

/// When an agent counts as ready (and its dependents may start).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Ready {
    /// As soon as its process is running: for programs that do not speak the protocol.
    Started,
    /// When it sends `READY=1`, within `ready_timeout`.
    Notify,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Backoff {
    pub initial: Dur,
    pub multiplier: f64,
    pub max: Dur,
    /// A run at least this long forgets earlier crashes: the next delay is `initial` again.
    pub reset_after: Dur,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff { initial: Dur::secs(1), multiplier: 2.0, max: Dur::secs(60), reset_after: Dur::secs(30) }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub command: String,
    #[serde(default)]
    pub args: Vec<String>,
    /// Stored in the database by name only: values often hold secrets.
    #[serde(default, serialize_with = "env_names")]
    pub env: BTreeMap<String, String>,
    /// Relative paths are relative to the config file's directory, which is also the default.
    #[serde(default)]
    pub working_dir: Option<PathBuf>,
    #[serde(default)]
    pub capabilities: Vec<String>,
    #[serde(default = "defaults::restart")]
    pub restart: Restart,
    #[serde(default)]
    pub backoff: Backoff,
    #[serde(default = "defaults::max_restarts")]
    pub max_restarts: u32,
    #[serde(default = "defaults::restart_window")]
    pub restart_window: Dur,
    #[serde(default = "defaults::ready")]
    pub ready: Ready,
    #[serde(default = "defaults::ready_timeout")]
    pub ready_timeout: Dur,
    #[serde(default)]
    pub heartbeat_timeout: Option<Dur>,
    #[serde(default = "defaults::on_heartbeat_timeout")]
    pub on_heartbeat_timeout: OnHeartbeatTimeout,
    #[serde(default = "defaults::stop_signal")]
    pub stop_signal: Sig,
    #[serde(default = "defaults::stop_timeout")]
    pub stop_timeout: Dur,
    #[serde(default)]
    pub depends_on: Vec<String>,
    #[serde(default = "defaults::enabled")]
    pub enabled: bool,
    /// Ready once this probe passes (instead of `ready = "notify"`); see `probe.rs`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readiness: Option<super::probe::ProbeConfig>,
    /// Failing, it counts as a missed heartbeat and follows `on_heartbeat_timeout`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub liveness: Option<super::probe::ProbeConfig>,
    /// Ready once a line of the agent's output matches this regular expression.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_log_line: Option<String>,
    /// Resource limits on the agent's whole process tree (see `super::limits`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_memory: Option<super::limits::Bytes>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_cpu: Option<super::limits::Percent>,
    #[serde(default = "defaults::limit_for")]
    pub limit_for: Dur,
    #[serde(default)]
    pub on_limit: super::limits::OnLimit,
    /// Run on a schedule instead of being kept alive.
    #[serde(default)]
    pub schedule: Option<super::schedule::Schedule>,
}

impl AgentConfig {
    /// Ready as soon as its process runs: nothing else (READY=1, a readiness probe, a log
    /// line) is waited for.
    pub fn ready_at_start(&self) -> bool {
        self.ready == Ready::Started && self.readiness.is_none() && self.ready_log_line.is_none()
    }

    pub fn limits(&self) -> super::limits::ResourceLimits {
        super::limits::ResourceLimits {
            max_memory: self.max_memory,
            max_cpu: self.max_cpu,
            limit_for: self.limit_for,
            on_limit: self.on_limit,
        }
    }
}

fn env_names<S: Serializer>(env: &BTreeMap<String, String>, s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(env.keys())
}

mod defaults {
    use super::*;
    pub fn restart() -> Restart {
        Restart::OnFailure
    }
    pub fn max_restarts() -> u32 {
        5
    }
    pub fn restart_window() -> Dur {
        Dur::secs(60)
    }
    pub fn ready() -> Ready {
        Ready::Started
    }
    pub fn ready_timeout() -> Dur {
        Dur::secs(30)
    }
    pub fn on_heartbeat_timeout() -> OnHeartbeatTimeout {
        OnHeartbeatTimeout::Restart
    }
    pub fn stop_signal() -> Sig {
        Sig(Signal::SIGTERM)
    }
    pub fn stop_timeout() -> Dur {
        Dur::secs(10)
    }
    pub fn enabled() -> bool {
        true
    }
    pub fn limit_for() -> Dur {
        Dur::secs(0)
    }
}

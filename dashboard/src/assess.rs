//! What a snapshot means: is the launcher alive, which agents are in trouble, how fresh each
//! heartbeat is, and the verdict `status` turns into its exit code. The screens and the
//! one-shot commands share these rules so they never disagree.

use agentvisor_shared::model::{
    AgentRow, AgentState, Health, LauncherSession, Severity, Snapshot, status_line,
};
use std::collections::BTreeMap;

/// The launcher refreshes its session row every second; three missed refreshes mean it is gone
/// (killed, hung, or its disk is failing) even though it never wrote a stop time.
pub const LAUNCHER_STALE_MS: i64 = 3_000;

/// The launcher's liveness as the database shows it.
#[derive(Debug, Clone, PartialEq)]
pub enum Liveness {
    /// No launcher has ever run on this database.
    Never,
    Running {
        session: LauncherSession,
    },
    /// No stop was recorded but the session has not been refreshed for [`LAUNCHER_STALE_MS`].
    Stale {
        session: LauncherSession,
    },
    Stopped {
        session: LauncherSession,
    },
}

impl Liveness {
    pub fn of(session: Option<&LauncherSession>, now_ms: i64) -> Liveness {
        match session {
            None => Liveness::Never,
            Some(s) if s.stopped_ms.is_some() => Liveness::Stopped { session: s.clone() },
            Some(s) if now_ms - s.last_seen_ms > LAUNCHER_STALE_MS => Liveness::Stale { session: s.clone() },
            Some(s) => Liveness::Running { session: s.clone() },
        }
    }

    pub fn is_running(&self) -> bool {
        matches!(self, Liveness::Running { .. })
    }

    pub fn session(&self) -> Option<&LauncherSession> {
        match self {
            Liveness::Never => None,
            Liveness::Running { session } | Liveness::Stale { session } | Liveness::Stopped { session } => {
                Some(session)
            }
        }
    }

    /// Since when the launcher has been down, when it is.
    pub fn down_since_ms(&self) -> Option<i64> {
        match self {
            Liveness::Stale { session } => Some(session.last_seen_ms),
            Liveness::Stopped { session } => session.stopped_ms,
            Liveness::Never | Liveness::Running { .. } => None,
        }
    }
}

/// The launcher's complaint about the config file on disk, while it runs. It refuses an
/// invalid config and keeps the old one in force, so no agent shows it: only its status line.
pub fn config_error(liveness: &Liveness) -> Option<&str> {
    let Liveness::Running { session } = liveness else { return None };
    let (_, rest) = session.status.as_deref()?.split_once(status_line::CONFIG_ERROR)?;
    Some(rest.split(status_line::STORAGE_ERROR).next().unwrap_or(rest))
}

pub use agentvisor_shared::status_table::StatusText;

/// An agent that needs an operator's attention (see [`agentvisor_shared::status_table::in_trouble`]).
pub fn in_trouble(a: &AgentRow) -> bool {
    agentvisor_shared::status_table::in_trouble(&a.lifecycle, a.desired_state)
}

/// How the agent's last process ended, if it has ended.
pub fn exit_text(a: &AgentRow) -> String {
    agentvisor_shared::status_table::exit_text(&a.lifecycle)
}

/// Whether an agent counts as healthy in "healthy out of enabled": its health check says so,
/// or it sends no heartbeats (so has no health check) and its process is running.
pub fn counts_as_healthy(a: &AgentRow) -> bool {
    a.lifecycle.health == Health::Healthy
        || (a.lifecycle.health == Health::Unknown
            && a.lifecycle.state == AgentState::Running
            && a.heartbeat_timeout_ms.is_none())
}

/// How an agent's liveness is known.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Heartbeat {
    /// The agent is not expected to heartbeat and never has: only its process is watched.
    ProcessOnly,
    /// Expected to heartbeat but has not yet.
    None,
    /// Age of the last heartbeat, and that age as a fraction of the timeout when there is one.
    Seen { age_ms: i64, of_timeout: Option<f64> },
}

impl Heartbeat {
    pub fn of(a: &AgentRow, now_ms: i64) -> Heartbeat {
        match (a.reported.last_heartbeat_ms, a.heartbeat_timeout_ms) {
            (None, None) => Heartbeat::ProcessOnly,
            (None, Some(_)) => Heartbeat::None,
            (Some(t), timeout) => {
                let age_ms = (now_ms - t).max(0);
                let of_timeout = timeout.filter(|t| *t > 0).map(|t| age_ms as f64 / t as f64);
                Heartbeat::Seen { age_ms, of_timeout }
            }
        }
    }
}

/// Counts for the header and for `status`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Summary {
    pub agents: usize,
    pub enabled: usize,
    /// Enabled agents that [`counts_as_healthy`].
    pub healthy: usize,
    pub in_trouble: usize,
    pub by_state: BTreeMap<AgentState, usize>,
}

impl Summary {
    pub fn of(agents: &[AgentRow]) -> Summary {
        let mut s = Summary { agents: agents.len(), ..Summary::default() };
        for a in agents {
            *s.by_state.entry(a.lifecycle.state).or_default() += 1;
            if a.enabled {
                s.enabled += 1;
                if counts_as_healthy(a) {
                    s.healthy += 1;
                }
                if in_trouble(a) {
                    s.in_trouble += 1;
                }
            }
        }
        s
    }
}

/// The exit codes of `status`, fixed for scripts and monitoring checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The launcher runs, no enabled agent is [`in_trouble`] and its config is valid.
    Ok,
    AgentTrouble,
    /// An `[[alert]]` rule of severity `error` or `critical` fires. Agent trouble takes
    /// precedence; the exit code is the same.
    AlertFiring,
    /// The launcher refused the config on disk ([`config_error`]): the next restart of the
    /// launcher would fail. Agent trouble takes precedence; the exit code is the same.
    ConfigInvalid,
    /// Takes precedence over agent trouble: with the launcher gone, agent states are stale.
    LauncherDown,
    NoDatabase,
}

impl Verdict {
    pub fn of(snapshot: &Snapshot, now_ms: i64) -> Verdict {
        let liveness = Liveness::of(snapshot.launcher.as_ref(), now_ms);
        if !liveness.is_running() {
            Verdict::LauncherDown
        } else if snapshot.agents.iter().any(|a| a.enabled && in_trouble(a)) {
            Verdict::AgentTrouble
        } else if snapshot.alerts.iter().any(|a| a.severity >= Severity::Error) {
            Verdict::AlertFiring
        } else if config_error(&liveness).is_some() {
            Verdict::ConfigInvalid
        } else {
            Verdict::Ok
        }
    }

    pub fn code(self) -> u8 {
        match self {
            Verdict::Ok => 0,
            Verdict::AgentTrouble | Verdict::AlertFiring | Verdict::ConfigInvalid => 1,
            Verdict::LauncherDown => 2,
            Verdict::NoDatabase => 3,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Ok => "ok",
            Verdict::AgentTrouble => "agent_trouble",
            Verdict::AlertFiring => "alert_firing",
            Verdict::ConfigInvalid => "config_invalid",
            Verdict::LauncherDown => "launcher_down",
            Verdict::NoDatabase => "no_database",
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use agentvisor_shared::model::{AgentStatus, DesiredState, FiringAlert, HostStats, Lifecycle};

    pub fn session(last_seen_ms: i64, stopped_ms: Option<i64>) -> LauncherSession {
        LauncherSession {
            id: 1,
            pid: 4242,
            host: "box".into(),
            version: "0.1.0".into(),
            config_path: None,
            started_ms: 0,
            last_seen_ms,
            stopped_ms,
            exit_reason: stopped_ms.map(|_| "signal".into()),
            status: None,
        }
    }

    pub fn agent(name: &str, state: AgentState, health: Health) -> AgentRow {
        AgentRow {
            name: name.into(),
            description: String::new(),
            kind: "process".into(),
            command: vec!["sh".into()].into(),
            capabilities: Vec::new().into(),
            enabled: true,
            desired_state: DesiredState::Running,
            stopped_by: None,
            heartbeat_timeout_ms: None,
            position: 0,
            status: AgentStatus {
                agent: name.into(),
                lifecycle: Lifecycle { state, health, ready: true, ..Lifecycle::default() },
                ..AgentStatus::default()
            },
            updated_ms: 0,
            metrics: Default::default(),
            probes: Vec::new(),
            last_run: None,
            next_run_ms: None,
        }
    }

    pub fn snapshot(launcher: Option<LauncherSession>, agents: Vec<AgentRow>) -> Snapshot {
        Snapshot {
            taken_ms: 10_000,
            schema_version: 1,
            launcher,
            launcher_metrics: Default::default(),
            host: HostStats::default(),
            agents,
            problems: vec![],
            errors_last_hour: 0,
            db_bytes: 0,
            wal_bytes: 0,
            alerts: Vec::new(),
        }
    }

    #[test]
    fn liveness_running_stale_stopped_never() {
        assert!(Liveness::of(Some(&session(9_000, None)), 10_000).is_running());
        let stale = Liveness::of(Some(&session(6_000, None)), 10_000);
        assert!(matches!(stale, Liveness::Stale { .. }));
        assert_eq!(stale.down_since_ms(), Some(6_000));
        let stopped = Liveness::of(Some(&session(9_900, Some(9_900))), 10_000);
        assert!(matches!(stopped, Liveness::Stopped { .. }));
        assert_eq!(Liveness::of(None, 10_000), Liveness::Never);
    }

    #[test]
    fn verdict_codes() {
        let up = || Some(session(9_500, None));
        let ok = snapshot(up(), vec![agent("a", AgentState::Running, Health::Healthy)]);
        assert_eq!(Verdict::of(&ok, 10_000).code(), 0);
        for (state, health) in [
            (AgentState::Running, Health::Unhealthy),
            (AgentState::Backoff, Health::Unknown),
            (AgentState::Fatal, Health::Unknown),
        ] {
            let s = snapshot(
                up(),
                vec![agent("a", AgentState::Running, Health::Healthy), agent("b", state, health)],
            );
            assert_eq!(Verdict::of(&s, 10_000), Verdict::AgentTrouble, "{state} {health}");
        }
        let mut crashed = agent("c", AgentState::Exited, Health::Unknown);
        crashed.lifecycle.exit_code = Some(1);
        assert_eq!(Verdict::of(&snapshot(up(), vec![crashed.clone()]), 10_000), Verdict::AgentTrouble);
        crashed.lifecycle.exit_code = Some(0);
        assert_eq!(Verdict::of(&snapshot(up(), vec![crashed.clone()]), 10_000), Verdict::Ok, "a clean exit");
        crashed.lifecycle.exit_signal = Some(9);
        crashed.desired_state = DesiredState::Stopped;
        assert_eq!(
            Verdict::of(&snapshot(up(), vec![crashed]), 10_000),
            Verdict::Ok,
            "stopped by an operator"
        );
        let mut disabled = agent("b", AgentState::Fatal, Health::Unknown);
        disabled.enabled = false;
        assert_eq!(Verdict::of(&snapshot(up(), vec![disabled]), 10_000), Verdict::Ok);
        let down = snapshot(Some(session(1_000, None)), vec![agent("b", AgentState::Fatal, Health::Unknown)]);
        assert_eq!(Verdict::of(&down, 10_000).code(), 2);
        assert_eq!(Verdict::of(&snapshot(None, vec![]), 10_000).code(), 2);
        assert_eq!(Verdict::NoDatabase.code(), 3);
    }

    #[test]
    fn an_alert_of_severity_error_or_higher_is_a_verdict_of_its_own() {
        let alert = |severity| FiringAlert {
            rule: "spend".into(),
            agent: "a".into(),
            severity,
            since_ms: 9_000,
            value: Some(3.0),
            message: "spend: cost per_hour 3 > 2".into(),
        };
        let mut s =
            snapshot(Some(session(9_500, None)), vec![agent("a", AgentState::Running, Health::Healthy)]);
        s.alerts = vec![alert(Severity::Warning)];
        assert_eq!(Verdict::of(&s, 10_000), Verdict::Ok, "a warning is no verdict");
        s.alerts.push(alert(Severity::Error));
        assert_eq!((Verdict::of(&s, 10_000).as_str(), Verdict::of(&s, 10_000).code()), ("alert_firing", 1));
        s.agents[0].lifecycle.health = Health::Unhealthy;
        assert_eq!(Verdict::of(&s, 10_000), Verdict::AgentTrouble, "agent trouble first");
    }

    #[test]
    fn an_invalid_config_on_disk_is_a_verdict_of_its_own() {
        let with_status = |status: &str, last_seen_ms| {
            let mut s = session(last_seen_ms, None);
            s.status = Some(status.into());
            snapshot(Some(s), vec![agent("a", AgentState::Running, Health::Healthy)])
        };
        let bad = with_status("1/1 agents running; config error: agents.toml:9:11: bad `restart`", 9_500);
        assert_eq!(Verdict::of(&bad, 10_000), Verdict::ConfigInvalid);
        assert_eq!(Verdict::of(&bad, 10_000).code(), 1);
        let liveness = Liveness::of(bad.launcher.as_ref(), 10_000);
        assert_eq!(config_error(&liveness), Some("agents.toml:9:11: bad `restart`"));
        let both =
            with_status("1/1 agents running; config error: x.toml:1:1: y; storage error: disk full", 9_500);
        assert_eq!(config_error(&Liveness::of(both.launcher.as_ref(), 10_000)), Some("x.toml:1:1: y"));
        let fixed = with_status("1/1 agents running", 9_500);
        assert_eq!(Verdict::of(&fixed, 10_000), Verdict::Ok);
        let down = with_status("1/1 agents running; config error: x", 1_000);
        assert_eq!(Verdict::of(&down, 10_000), Verdict::LauncherDown, "a stale status says nothing");
    }

    #[test]
    fn status_text_is_the_agents_own_and_errors_only_while_in_trouble() {
        let mut a = agent("a", AgentState::Running, Health::Healthy);
        a.lifecycle.last_error = Some("exit code 1: connection refused".into());
        assert_eq!(StatusText::of(&a), StatusText::Empty, "an old error is not news while it runs");
        a.reported.status_text = Some("idle".into());
        assert_eq!(StatusText::of(&a), StatusText::Reported("idle".into()));
        a.lifecycle.state = AgentState::Backoff;
        assert_eq!(StatusText::of(&a).label(), "✗ exit code 1: connection refused");
        a.lifecycle.state = AgentState::Stopped;
        a.desired_state = DesiredState::Stopped;
        a.lifecycle.exit_signal = Some(15);
        assert_eq!(StatusText::of(&a), StatusText::Ended("stopped on request".into()));
        a.stopped_by = Some("alice (ctl)".into());
        assert_eq!(StatusText::of(&a).label(), "stopped by alice (ctl)");
        a.lifecycle.state = AgentState::Exited;
        a.desired_state = DesiredState::Running;
        a.lifecycle.exit_signal = None;
        a.lifecycle.exit_code = Some(0);
        assert_eq!(StatusText::of(&a), StatusText::Ended("exit code 0".into()));
    }

    #[test]
    fn process_only_running_agents_count_as_healthy() {
        let mut heartbeating = agent("h", AgentState::Running, Health::Unknown);
        heartbeating.heartbeat_timeout_ms = Some(1_000);
        let agents = vec![
            agent("p", AgentState::Running, Health::Unknown),
            heartbeating,
            agent("x", AgentState::Exited, Health::Unknown),
            agent("ok", AgentState::Running, Health::Healthy),
        ];
        let s = Summary::of(&agents);
        assert_eq!((s.healthy, s.enabled), (2, 4));
    }

    #[test]
    fn heartbeat_kinds() {
        let mut a = agent("a", AgentState::Running, Health::Healthy);
        assert_eq!(Heartbeat::of(&a, 10_000), Heartbeat::ProcessOnly);
        a.heartbeat_timeout_ms = Some(4_000);
        assert_eq!(Heartbeat::of(&a, 10_000), Heartbeat::None);
        a.reported.last_heartbeat_ms = Some(8_000);
        assert_eq!(Heartbeat::of(&a, 10_000), Heartbeat::Seen { age_ms: 2_000, of_timeout: Some(0.5) });
    }
}

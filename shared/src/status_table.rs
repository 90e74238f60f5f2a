//! The one status table both binaries print (`agentvisor-launcher ctl status` from the
//! launcher's memory, `agentvisor-dashboard status` from the database), with the rules that
//! fill it: which agent is in trouble and what its STATUS column says. Sharing them keeps the
//! two commands' columns, durations and words the same, so a script written against one reads
//! the other.
//!
//! Every cell but the last is one word (`-` when there is nothing to say), so the table splits
//! on whitespace; STATUS, free text, comes last.

use crate::model::{AgentRow, AgentState, AgentStatus, DesiredState, Health, Lifecycle};

/// The table's header, in order.
pub const COLUMNS: [&str; 9] =
    ["NAME", "STATE", "HEALTH", "PID", "UPTIME", "RESTARTS", "HEARTBEAT", "TROUBLE", "STATUS"];

/// One agent's line of the table, before formatting.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub name: String,
    pub state: AgentState,
    pub health: Health,
    pub pid: Option<i64>,
    /// Since when the current process runs (only while it has one).
    pub started_ms: Option<i64>,
    pub restarts: i64,
    /// The last heartbeat (only shown while the agent has a process).
    pub last_heartbeat_ms: Option<i64>,
    pub trouble: bool,
    pub status: String,
}

impl Row {
    /// The row of an agent as the launcher knows it: `enabled`, `desired` and `stopped_by`
    /// (who stopped it on request) are what the database's `agents` table adds to its status.
    pub fn of(status: &AgentStatus, enabled: bool, desired: DesiredState, stopped_by: Option<&str>) -> Row {
        let l = &status.lifecycle;
        Row {
            name: status.agent.clone(),
            state: l.state,
            health: l.health,
            pid: l.pid,
            started_ms: l.started_ms,
            restarts: l.restarts,
            last_heartbeat_ms: status.reported.last_heartbeat_ms,
            trouble: in_trouble(l, desired),
            status: StatusText::of_parts(status, enabled, desired, stopped_by).label(),
        }
    }

    /// The row of an agent as the database shows it.
    pub fn of_agent(a: &AgentRow) -> Row {
        Row::of(&a.status, a.enabled, a.desired_state, a.stopped_by.as_deref())
    }

    fn cells(&self, now_ms: i64) -> [String; 9] {
        let running = self.state.has_process();
        let dash = || "-".to_owned();
        [
            self.name.clone(),
            self.state.as_str().to_owned(),
            self.health.as_str().to_owned(),
            self.pid.filter(|_| running).map_or_else(dash, |p| p.to_string()),
            self.started_ms.filter(|_| running).map_or_else(dash, |t| duration_ms(now_ms - t)),
            self.restarts.to_string(),
            match self.last_heartbeat_ms {
                _ if !running => dash(),
                None => "none".to_owned(),
                Some(t) => duration_ms(now_ms - t),
            },
            if self.trouble { "yes" } else { "no" }.to_owned(),
            // Agents choose this text: control characters are shown escaped (`\u{1b}`), never
            // sent to the operator's terminal, and a tab cannot break the columns.
            self.status
                .chars()
                .map(|c| if c.is_control() { c.escape_unicode().to_string() } else { c.to_string() })
                .collect(),
        ]
    }
}

/// The header and one line per row, columns as wide as their widest cell.
pub fn render(rows: &[Row], now_ms: i64) -> Vec<String> {
    let mut table = vec![COLUMNS.map(str::to_owned)];
    table.extend(rows.iter().map(|r| r.cells(now_ms)));
    let widths: Vec<usize> =
        (0..COLUMNS.len()).map(|c| table.iter().map(|r| r[c].chars().count()).max().unwrap_or(0)).collect();
    table
        .iter()
        .map(|r| {
            let cells: Vec<String> = r.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
            cells.join("  ").trim_end().to_owned()
        })
        .collect()
}

/// A compact age or duration: `850ms`, `4.2s`, `3m12s`, `5h03m`, `2d04h`.
pub fn duration_ms(ms: i64) -> String {
    let ms = ms.max(0);
    let s = ms / 1000;
    match ms {
        _ if ms < 1_000 => format!("{ms}ms"),
        _ if ms < 60_000 => format!("{:.1}s", ms as f64 / 1000.0),
        _ if s < 3_600 => format!("{}m{:02}s", s / 60, s % 60),
        _ if s < 86_400 => format!("{}h{:02}m", s / 3_600, (s % 3_600) / 60),
        _ => format!("{}d{:02}h", s / 86_400, (s % 86_400) / 3_600),
    }
}

/// An agent that needs an operator's attention: crash-looping, given up on, failing its
/// health check, or ended by a failure and left down (`restart = "never"`) although it should
/// run. A clean exit (code 0) and an operator's stop are not trouble.
pub fn in_trouble(l: &Lifecycle, desired: DesiredState) -> bool {
    let failed_and_down = l.state == AgentState::Exited
        && desired == DesiredState::Running
        && (l.exit_signal.is_some() || l.exit_code.is_some_and(|c| c != 0));
    matches!(l.state, AgentState::Backoff | AgentState::Fatal)
        || l.health == Health::Unhealthy
        || failed_and_down
}

/// What the STATUS column says about an agent, shared by the overview and both `status`
/// commands.
#[derive(Debug, Clone, PartialEq)]
pub enum StatusText {
    /// The agent's own `STATUS=` text.
    Reported(String),
    /// Its last error, while it is in trouble.
    Error(String),
    /// How it ended, when it has no process.
    Ended(String),
    Empty,
}

impl StatusText {
    pub fn of(a: &AgentRow) -> StatusText {
        StatusText::of_parts(&a.status, a.enabled, a.desired_state, a.stopped_by.as_deref())
    }

    /// The agent's own words while it runs; its error only while it is in trouble (an error
    /// from an earlier run is not news once it runs again); how it ended when it is down, where
    /// an operator's stop reads as such rather than as the signal that carried it out.
    pub fn of_parts(
        s: &AgentStatus,
        enabled: bool,
        desired: DesiredState,
        stopped_by: Option<&str>,
    ) -> StatusText {
        let l = &s.lifecycle;
        if in_trouble(l, desired)
            && let Some(err) = &l.last_error
        {
            return StatusText::Error(err.clone());
        }
        let reported = || s.reported.status_text.clone().map_or(StatusText::Empty, StatusText::Reported);
        if l.state.has_process() {
            return reported();
        }
        if !enabled {
            return StatusText::Ended("disabled in the config".into());
        }
        if l.state == AgentState::Stopped || desired == DesiredState::Stopped {
            return StatusText::Ended(match stopped_by {
                Some(who) if desired == DesiredState::Stopped => format!("stopped by {who}"),
                _ => "stopped on request".into(),
            });
        }
        match exit_text(l) {
            e if e.is_empty() => reported(),
            e => StatusText::Ended(e),
        }
    }

    /// The text as shown, errors marked as such.
    pub fn label(&self) -> String {
        match self {
            StatusText::Reported(s) | StatusText::Ended(s) => s.clone(),
            StatusText::Error(e) => format!("✗ {e}"),
            StatusText::Empty => String::new(),
        }
    }
}

/// How the agent's last process ended, if it has ended.
pub fn exit_text(l: &Lifecycle) -> String {
    match (l.exit_code, l.exit_signal) {
        (_, Some(sig)) => format!("killed by signal {sig}"),
        (Some(code), None) => format!("exit code {code}"),
        (None, None) => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str, state: AgentState) -> Row {
        Row {
            name: name.into(),
            state,
            health: Health::Unknown,
            pid: Some(42),
            started_ms: Some(1_000),
            restarts: 0,
            last_heartbeat_ms: None,
            trouble: false,
            status: String::new(),
        }
    }

    #[test]
    fn cells_are_single_words_and_the_status_comes_last() {
        let mut flaky = row("flaky", AgentState::Backoff);
        flaky.trouble = true;
        flaky.restarts = 7;
        flaky.status = "✗ exit code 1:\tbroken\x1b[2J".into();
        let mut worker = row("worker", AgentState::Running);
        worker.last_heartbeat_ms = Some(64_000);
        worker.status = "idle".into();
        let lines = render(&[flaky, worker], 65_500);
        assert_eq!(lines[0].split_whitespace().collect::<Vec<_>>(), COLUMNS);
        let words: Vec<Vec<&str>> = lines.iter().map(|l| l.split_whitespace().collect()).collect();
        assert_eq!(words[1][..8], ["flaky", "backoff", "unknown", "-", "-", "7", "-", "yes"]);
        assert_eq!(words[2][..9], ["worker", "running", "unknown", "42", "1m04s", "0", "1.5s", "no", "idle"]);
        assert!(lines[1].ends_with(r"exit code 1:\u{9}broken\u{1b}[2J"), "{}", lines[1]);
        // Columns line up: every STATUS starts where the header's does.
        let at = lines[0].find("STATUS").unwrap();
        assert_eq!(lines[2].find("idle"), Some(at));
    }

    #[test]
    fn durations() {
        assert_eq!(duration_ms(850), "850ms");
        assert_eq!(duration_ms(4_200), "4.2s");
        assert_eq!(duration_ms(192_000), "3m12s");
        assert_eq!(duration_ms(5 * 3_600_000 + 180_000), "5h03m");
        assert_eq!(duration_ms(-5), "0ms");
    }
}

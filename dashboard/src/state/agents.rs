//! Which agents the overview table shows, in which order, and which one is selected.
//!
//! The selection is kept by name, not by row, so it stays on the same agent when a refresh
//! or a new sort order moves it.

use crate::assess::{Heartbeat, in_trouble};
use agentvisor_shared::model::{AgentRow, AgentState, metric};
use std::cmp::Ordering;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SortKey {
    /// The config's order (the launcher's start plan).
    #[default]
    Config,
    Name,
    /// Agents in trouble first, then by state.
    State,
    Cpu,
    Memory,
    Restarts,
    /// Stalest heartbeat first.
    Heartbeat,
}

impl SortKey {
    const ALL: [SortKey; 7] = [
        SortKey::Config,
        SortKey::Name,
        SortKey::State,
        SortKey::Cpu,
        SortKey::Memory,
        SortKey::Restarts,
        SortKey::Heartbeat,
    ];

    pub fn next(self) -> SortKey {
        let i = Self::ALL.iter().position(|k| *k == self).unwrap_or(0);
        Self::ALL[(i + 1) % Self::ALL.len()]
    }

    pub fn label(self) -> &'static str {
        match self {
            SortKey::Config => "config order",
            SortKey::Name => "name",
            SortKey::State => "state",
            SortKey::Cpu => "cpu",
            SortKey::Memory => "memory",
            SortKey::Restarts => "restarts",
            SortKey::Heartbeat => "heartbeat age",
        }
    }
}

/// Whether `a` matches every word of `filter`. A word `state:X`, `health:X` or `cap:X` tests
/// that field; a bare word matches the name, the state or a capability.
pub fn matches(a: &AgentRow, filter: &str) -> bool {
    filter.split_whitespace().all(|word| {
        let word = word.to_lowercase();
        let has_cap = |w: &str| a.capabilities.iter().any(|c| c.to_lowercase().contains(w));
        match word.split_once(':') {
            Some(("state", v)) => a.lifecycle.state.as_str().starts_with(v),
            Some(("health", v)) => a.lifecycle.health.as_str().starts_with(v),
            Some(("cap", v)) => has_cap(v),
            _ => {
                a.name.to_lowercase().contains(&word)
                    || a.lifecycle.state.as_str().starts_with(&word)
                    || has_cap(&word)
            }
        }
    })
}

fn state_rank(a: &AgentRow) -> u8 {
    match a.lifecycle.state {
        AgentState::Fatal => 0,
        AgentState::Backoff => 1,
        _ if in_trouble(a) => 2,
        AgentState::Starting | AgentState::Stopping => 3,
        AgentState::Exited => 4,
        AgentState::Running | AgentState::Scheduled => 5,
        AgentState::Stopped => 6,
    }
}

fn metric_of(a: &AgentRow, name: &str) -> f64 {
    a.metrics.get(name).copied().unwrap_or(0.0)
}

fn heartbeat_age(a: &AgentRow, now_ms: i64) -> i64 {
    match Heartbeat::of(a, now_ms) {
        Heartbeat::Seen { age_ms, .. } => age_ms,
        Heartbeat::None => i64::MAX,
        Heartbeat::ProcessOnly => -1,
    }
}

fn compare(key: SortKey, a: &AgentRow, b: &AgentRow, now_ms: i64) -> Ordering {
    let by_config = (a.position, &a.name).cmp(&(b.position, &b.name));
    let primary = match key {
        SortKey::Config => Ordering::Equal,
        SortKey::Name => a.name.cmp(&b.name),
        SortKey::State => state_rank(a).cmp(&state_rank(b)),
        SortKey::Cpu => metric_of(b, metric::CPU_PERCENT).total_cmp(&metric_of(a, metric::CPU_PERCENT)),
        SortKey::Memory => metric_of(b, metric::MEMORY_BYTES).total_cmp(&metric_of(a, metric::MEMORY_BYTES)),
        SortKey::Restarts => b.lifecycle.restarts.cmp(&a.lifecycle.restarts),
        SortKey::Heartbeat => heartbeat_age(b, now_ms).cmp(&heartbeat_age(a, now_ms)),
    };
    primary.then(by_config)
}

/// The rows the table shows: filtered, then sorted.
pub fn visible<'a>(agents: &'a [AgentRow], filter: &str, sort: SortKey, now_ms: i64) -> Vec<&'a AgentRow> {
    let mut rows: Vec<&AgentRow> = agents.iter().filter(|a| matches(a, filter)).collect();
    rows.sort_by(|a, b| compare(sort, a, b, now_ms));
    rows
}

/// The index of `selected` among `rows`, or the first row when it is gone or unset.
pub fn selected_index(rows: &[&AgentRow], selected: Option<&str>) -> Option<usize> {
    if rows.is_empty() {
        return None;
    }
    Some(selected.and_then(|name| rows.iter().position(|a| a.name == name)).unwrap_or(0))
}

/// The name `delta` rows away from the selection, clamped to the table.
pub fn moved(rows: &[&AgentRow], selected: Option<&str>, delta: isize) -> Option<String> {
    let i = selected_index(rows, selected)?;
    let last = rows.len() - 1;
    let j = i.saturating_add_signed(delta).min(last);
    Some(rows[j].name.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assess::tests::agent;
    use agentvisor_shared::model::Health;

    fn fleet() -> Vec<AgentRow> {
        let mut a = agent("alpha", AgentState::Running, Health::Healthy);
        a.capabilities = vec!["research".into()].into();
        a.metrics.insert(metric::CPU_PERCENT.into(), 5.0);
        a.position = 0;
        let mut b = agent("beta", AgentState::Fatal, Health::Unknown);
        b.position = 1;
        b.lifecycle.restarts = 5;
        let mut c = agent("crawler", AgentState::Backoff, Health::Unknown);
        c.position = 2;
        c.metrics.insert(metric::CPU_PERCENT.into(), 50.0);
        c.capabilities = vec!["fetch".into(), "research-lite".into()].into();
        vec![a, b, c]
    }

    fn names(rows: &[&AgentRow]) -> Vec<String> {
        rows.iter().map(|a| a.name.clone()).collect()
    }

    #[test]
    fn filter_by_name_state_and_capability() {
        let f = fleet();
        assert_eq!(names(&visible(&f, "", SortKey::Config, 0)), ["alpha", "beta", "crawler"]);
        assert_eq!(names(&visible(&f, "ALP", SortKey::Config, 0)), ["alpha"]);
        assert_eq!(names(&visible(&f, "fatal", SortKey::Config, 0)), ["beta"]);
        assert_eq!(names(&visible(&f, "state:back", SortKey::Config, 0)), ["crawler"]);
        assert_eq!(names(&visible(&f, "cap:research", SortKey::Config, 0)), ["alpha", "crawler"]);
        assert_eq!(names(&visible(&f, "research a", SortKey::Config, 0)), ["alpha", "crawler"]);
        assert!(visible(&f, "nobody", SortKey::Config, 0).is_empty());
    }

    #[test]
    fn sorts() {
        let f = fleet();
        assert_eq!(names(&visible(&f, "", SortKey::State, 0)), ["beta", "crawler", "alpha"]);
        assert_eq!(names(&visible(&f, "", SortKey::Cpu, 0)), ["crawler", "alpha", "beta"]);
        assert_eq!(names(&visible(&f, "", SortKey::Restarts, 0)), ["beta", "alpha", "crawler"]);
        assert_eq!(SortKey::Heartbeat.next(), SortKey::Config);
    }

    #[test]
    fn selection_follows_the_name_and_clamps() {
        let f = fleet();
        let rows = visible(&f, "", SortKey::Config, 0);
        assert_eq!(selected_index(&rows, None), Some(0));
        assert_eq!(selected_index(&rows, Some("crawler")), Some(2));
        assert_eq!(selected_index(&rows, Some("gone")), Some(0));
        assert_eq!(moved(&rows, Some("beta"), 5).as_deref(), Some("crawler"));
        assert_eq!(moved(&rows, Some("beta"), -5).as_deref(), Some("alpha"));
        assert_eq!(moved(&[], None, 1), None);
    }
}

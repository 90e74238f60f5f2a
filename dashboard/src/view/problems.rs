//! The overview's latest problems, grouped: a crash loop is one line that says how often and
//! over how long ("flaky crashed 7× in 3m12s"), not a screenful of the same line.

use super::theme::Theme;
use crate::format;
use agentvisor_shared::model::{Event, Severity};
use ratatui::text::{Line, Span};

/// Events of one agent and kind among the latest problems.
#[derive(Debug, Clone, PartialEq)]
pub struct Group<'a> {
    /// The newest of them.
    pub last: &'a Event,
    pub count: usize,
    pub first_ms: i64,
    /// The most severe of them.
    pub severity: Severity,
}

/// `problems` (newest first) grouped by agent and kind, the group with the newest event first.
pub fn group(problems: &[Event]) -> Vec<Group<'_>> {
    let mut groups: Vec<Group> = Vec::new();
    for e in problems {
        match groups.iter_mut().find(|g| g.last.agent == e.agent && g.last.kind == e.kind) {
            Some(g) => {
                g.count += 1;
                g.first_ms = g.first_ms.min(e.ts_ms);
                g.severity = g.severity.max(e.severity);
            }
            None => groups.push(Group { last: e, count: 1, first_ms: e.ts_ms, severity: e.severity }),
        }
    }
    groups
}

/// One group on one line: time, severity, agent, kind, how often over how long, the newest
/// message.
pub fn line(g: &Group<'_>, time: &str, theme: Theme) -> Line<'static> {
    let e = g.last;
    let mut spans = vec![
        Span::styled(format!(" {time} "), theme.dim()),
        Span::styled(format!("{:<8} ", g.severity.as_str()), theme.severity(g.severity)),
        Span::styled(e.agent.clone().unwrap_or_else(|| "launcher".into()), theme.title()),
        Span::raw(format!(" {}", e.kind)),
    ];
    if g.count > 1 {
        spans.push(Span::styled(
            format!(" {}× in {}", g.count, format::duration_ms(e.ts_ms - g.first_ms)),
            theme.warn(),
        ));
    }
    spans.push(Span::styled(": ", theme.dim()));
    spans.push(Span::raw(e.message.clone()));
    Line::from(spans)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(id: i64, ts_ms: i64, agent: &str, kind: &str, severity: Severity) -> Event {
        Event { id, ts_ms, agent: Some(agent.into()), kind: kind.into(), severity, message: format!("m{id}") }
    }

    #[test]
    fn groups_by_agent_and_kind_newest_first() {
        let problems = vec![
            ev(9, 9_000, "flaky", "crashed", Severity::Error),
            ev(8, 8_000, "doomed", "crash_loop", Severity::Critical),
            ev(7, 7_000, "flaky", "crashed", Severity::Error),
            ev(6, 2_000, "flaky", "crashed", Severity::Error),
            ev(5, 1_000, "doomed", "crashed", Severity::Error),
        ];
        let g = group(&problems);
        assert_eq!(g.len(), 3);
        assert_eq!((g[0].last.id, g[0].count, g[0].first_ms), (9, 3, 2_000));
        assert_eq!((g[1].last.kind.as_str(), g[1].severity), ("crash_loop", Severity::Critical));
        assert_eq!((g[2].last.id, g[2].count), (5, 1));
        let text: String = line(&g[0], "00:00:09", Theme { color: false })
            .spans
            .iter()
            .map(|s| s.content.to_string())
            .collect();
        assert_eq!(text, " 00:00:09 error    flaky crashed 3× in 7.0s: m9");
    }
}

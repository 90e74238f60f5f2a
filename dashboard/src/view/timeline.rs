//! The detail screen's state timeline: one character per time step of the chart window,
//! showing the state the agent was in, rebuilt from its events (the launcher records every
//! transition as an event) and its current state for the time since the newest one.

use super::theme::Theme;
use agentvisor_shared::model::{AgentState, Event};
use ratatui::text::{Line, Span};

/// The state an event kind of the launcher leaves the agent in; `None` for kinds that are not
/// transitions (heartbeat warnings, agent errors).
fn state_after(kind: &str) -> Option<AgentState> {
    Some(match kind {
        "waiting" => AgentState::Starting,
        "started" => AgentState::Running,
        "stopping" => AgentState::Stopping,
        "stopped" => AgentState::Stopped,
        "exited" | "crashed" | "spawn_failed" | "ready_timeout" => AgentState::Exited,
        "backoff" => AgentState::Backoff,
        "crash_loop" => AgentState::Fatal,
        _ => return None,
    })
}

/// The state in each of `width` equal steps ending at `now_ms`; `None` before the oldest event
/// known (the agent's history is bounded, and the agent may be newer than the window).
pub fn steps(
    events: &[Event],
    current: AgentState,
    now_ms: i64,
    span_ms: i64,
    width: usize,
) -> Vec<Option<AgentState>> {
    let mut transitions: Vec<(i64, AgentState)> =
        events.iter().filter_map(|e| state_after(&e.kind).map(|s| (e.ts_ms, s))).collect();
    transitions.sort_by_key(|t| t.0);
    // The newest transition is the current state: the state row is the authority on it.
    if let Some(last) = transitions.last_mut() {
        last.1 = current;
    }
    let step = (span_ms / width.max(1) as i64).max(1);
    let start = now_ms - span_ms;
    (0..width)
        .map(|i| {
            let end = start + step * (i as i64 + 1);
            transitions.iter().take_while(|(ts, _)| *ts <= end).last().map(|(_, s)| *s)
        })
        .collect()
}

fn glyph(state: Option<AgentState>) -> char {
    match state {
        None => ' ',
        Some(AgentState::Running) => '█',
        Some(AgentState::Starting | AgentState::Stopping) => '▓',
        Some(AgentState::Backoff) => '▒',
        Some(AgentState::Fatal) => 'X',
        Some(AgentState::Exited | AgentState::Stopped) => '_',
    }
}

/// The timeline as a line: runs of one state share a span, styled by state.
pub fn line(steps: &[Option<AgentState>], theme: Theme) -> Line<'static> {
    let mut spans = vec![Span::styled(" states   ", theme.dim())];
    let mut run: Option<(Option<AgentState>, String)> = None;
    for s in steps {
        match &mut run {
            Some((state, text)) if state == s => text.push(glyph(*s)),
            _ => {
                if let Some((state, text)) = run.take() {
                    spans.push(Span::styled(text, state.map_or(theme.dim(), |s| theme.state(s))));
                }
                run = Some((*s, glyph(*s).to_string()));
            }
        }
    }
    if let Some((state, text)) = run {
        spans.push(Span::styled(text, state.map_or(theme.dim(), |s| theme.state(s))));
    }
    Line::from(spans)
}

#[cfg(test)]
mod tests {
    use super::*;
    use agentvisor_shared::model::Severity;

    fn ev(ts_ms: i64, kind: &str) -> Event {
        Event {
            id: ts_ms,
            ts_ms,
            agent: Some("a".into()),
            kind: kind.into(),
            severity: Severity::Info,
            message: String::new(),
        }
    }

    #[test]
    fn rebuilds_states_from_events() {
        // Ten steps of 10 ms ending at 100: started at 15, crashed at 45, backoff at 46,
        // started again at 75; the current state says the last start has since gone fatal.
        let events = vec![
            ev(75, "started"),
            ev(46, "backoff"),
            ev(45, "crashed"),
            ev(30, "heartbeat_missed"),
            ev(15, "started"),
        ];
        let s = steps(&events, AgentState::Fatal, 100, 100, 10);
        use AgentState::*;
        assert_eq!(
            s,
            [
                None,
                Some(Running),
                Some(Running),
                Some(Running),
                Some(Backoff),
                Some(Backoff),
                Some(Backoff),
                Some(Fatal),
                Some(Fatal),
                Some(Fatal)
            ]
        );
        let text: String =
            line(&s, Theme { color: false }).spans.iter().map(|s| s.content.to_string()).collect();
        assert_eq!(text, " states    ███▒▒▒XXX");
        assert_eq!(steps(&[], Running, 100, 100, 3), [None, None, None]);
    }
}

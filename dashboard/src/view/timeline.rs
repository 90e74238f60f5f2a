//! The detail screen's state timeline: one character per time step of the chart window,
//! showing the state the agent was in, rebuilt from its events (the launcher records every
//! transition as an event) and its current state for the time since the newest one.

use super::theme::Theme;
use agentvisor_shared::model::{AgentState, Event, EventKind};
use ratatui::text::{Line, Span};

/// When the agent counts as ready, which decides what `started` means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadyWhen {
    /// `ready = "started"` (the default): running as soon as its process is.
    Started,
    /// `ready = "notify"`: starting until it sends `READY=1` (the `ready` event).
    Notify,
}

impl ReadyWhen {
    /// From the agent's config as the launcher recorded it; without one, the default. The
    /// config in force decides for the whole window: a reload that changes `ready` restarts
    /// the agent, so only runs older than that reload can be drawn by the wrong rule.
    pub fn of(config: Option<&serde_json::Value>) -> ReadyWhen {
        match config.and_then(|c| c.get("ready")).and_then(|r| r.as_str()) {
            Some("notify") => ReadyWhen::Notify,
            _ => ReadyWhen::Started,
        }
    }
}

/// The state the supervisor is in after recording an event of this kind; `None` for kinds
/// that are not transitions (heartbeat warnings, agent errors, `ready_timeout`, which the
/// supervisor follows with `stopping`).
fn state_after(kind: EventKind, ready: ReadyWhen) -> Option<AgentState> {
    use EventKind as K;
    Some(match kind {
        // Waiting for dependencies happens before any process: the supervisor is stopped.
        K::Waiting | K::Stopped => AgentState::Stopped,
        K::Started if ready == ReadyWhen::Notify => AgentState::Starting,
        K::Started | K::Ready => AgentState::Running,
        K::Stopping => AgentState::Stopping,
        K::Exited | K::Crashed | K::SpawnFailed => AgentState::Exited,
        K::Backoff => AgentState::Backoff,
        K::CrashLoop | K::SupervisorLost => AgentState::Fatal,
        _ => return None,
    })
}

/// The state in each of `width` equal steps ending at `now_ms`; `None` before the oldest event
/// known (the agent's history is bounded, and the agent may be newer than the window).
pub fn steps(
    events: &[Event],
    ready: ReadyWhen,
    current: AgentState,
    now_ms: i64,
    span_ms: i64,
    width: usize,
) -> Vec<Option<AgentState>> {
    let mut transitions: Vec<(i64, AgentState)> =
        events.iter().filter_map(|e| state_after(e.known_kind()?, ready).map(|s| (e.ts_ms, s))).collect();
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
        Some(AgentState::Exited | AgentState::Stopped | AgentState::Scheduled) => '_',
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
        let s = steps(&events, ReadyWhen::Started, AgentState::Fatal, 100, 100, 10);
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
        assert_eq!(steps(&[], ReadyWhen::Started, Running, 100, 100, 3), [None, None, None]);
        // A kind this build does not know is not a transition.
        let newer = [ev(15, "started"), ev(45, "from_a_newer_launcher")];
        assert_eq!(steps(&newer, ReadyWhen::Started, Running, 100, 100, 10)[5], Some(Running));
    }

    #[test]
    fn waiting_for_dependencies_is_stopped_not_starting() {
        // Waiting from 15, started at 55 (ready on start).
        let events = vec![ev(55, "started"), ev(15, "waiting")];
        let s = steps(&events, ReadyWhen::Started, AgentState::Running, 100, 100, 10);
        use AgentState::*;
        assert_eq!(s[1..5], [Some(Stopped); 4]);
        assert_eq!(s[5..], [Some(Running); 5]);
    }

    #[test]
    fn a_notify_agent_is_starting_until_ready() {
        // Started at 15, READY=1 at 45; a second run started at 75 is not ready yet, and
        // the current state (the state row) agrees.
        let events = vec![ev(75, "started"), ev(65, "crashed"), ev(45, "ready"), ev(15, "started")];
        use AgentState::*;
        let s = steps(&events, ReadyWhen::Notify, Starting, 100, 100, 10);
        assert_eq!(s[1..4], [Some(Starting); 3]);
        assert_eq!(s[4..6], [Some(Running); 2]);
        assert_eq!(s[6], Some(Exited));
        assert_eq!(s[7..], [Some(Starting); 3]);
        // A notify agent that never became ready: starting until stopped for it.
        let timed_out =
            vec![ev(15, "started"), ev(45, "ready_timeout"), ev(46, "stopping"), ev(60, "backoff")];
        let s = steps(&timed_out, ReadyWhen::Notify, Backoff, 100, 100, 10);
        assert_eq!(s[1..4], [Some(Starting); 3]);
        assert_eq!(s[4], Some(Stopping));
        assert_eq!(s[6..], [Some(Backoff); 4]);
    }

    #[test]
    fn ready_mode_comes_from_the_recorded_config() {
        assert_eq!(ReadyWhen::of(Some(&serde_json::json!({"ready": "notify"}))), ReadyWhen::Notify);
        assert_eq!(ReadyWhen::of(Some(&serde_json::json!({"ready": "started"}))), ReadyWhen::Started);
        assert_eq!(ReadyWhen::of(Some(&serde_json::json!({}))), ReadyWhen::Started);
        assert_eq!(ReadyWhen::of(None), ReadyWhen::Started);
    }
}

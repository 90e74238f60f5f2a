//! An agent's readiness and liveness probes in its detail view: one line each, with the
//! state after the thresholds, the last result, its latency and age, and the failures in a row.

use super::theme::Theme;
use crate::format;
use agentvisor_shared::model::AgentRow;
use agentvisor_shared::probes::{ProbeState, ProbeStatus};
use ratatui::text::{Line, Span};

/// One line per configured probe (none without probes).
pub fn lines(a: &AgentRow, now_ms: i64, theme: Theme) -> Vec<Line<'static>> {
    a.probes.iter().map(|p| line(p, now_ms, theme)).collect()
}

fn line(p: &ProbeStatus, now_ms: i64, theme: Theme) -> Line<'static> {
    let state_style = match p.state {
        ProbeState::Passing => theme.good(),
        ProbeState::Failing => theme.bad(),
        ProbeState::Unknown => theme.dim(),
    };
    let mut spans = vec![
        Span::styled(format!(" {} ", p.probe), theme.dim()),
        Span::raw(format!("{} {} ", p.kind, p.target)),
        Span::styled(p.state.as_str().to_owned(), state_style),
    ];
    // Before the last result, which may be long: the count is what matters when it is cut.
    if p.consecutive_failures > 0 {
        let n = p.consecutive_failures;
        let text = format!(" · {n} failure{} in a row", if n == 1 { "" } else { "s" });
        spans.push(Span::styled(text, theme.warn()));
    }
    let last = match (p.last_ok, p.last_ms) {
        (Some(ok), Some(at)) => {
            let latency = p.latency_ms.map_or(String::new(), |ms| format!(" in {}", latency(ms)));
            let message = p.message.as_deref().unwrap_or(if ok { "ok" } else { "failed" });
            format!(" · last {message}{latency}, {} ago", format::duration_ms((now_ms - at).max(0)))
        }
        _ => " · no result yet".to_owned(),
    };
    spans.push(Span::raw(last));
    Line::from(spans)
}

/// A check's duration: "0.4 ms", "12 ms", "1.2 s".
fn latency(ms: f64) -> String {
    if ms < 10.0 {
        format!("{ms:.1} ms")
    } else if ms < 1000.0 {
        format!("{ms:.0} ms")
    } else {
        format!("{:.1} s", ms / 1000.0)
    }
}

//! One event in full: its whole message wrapped, with its agent (and how that agent is now),
//! kind, severity and time; `Enter` opens the agent.

use super::overview::{event_line, padded_times};
use super::theme::Theme;
use super::widgets::{fit, footer, with_footer};
use crate::format;
use crate::state::App;
use agentvisor_shared::model::Event;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};

pub fn draw(frame: &mut Frame<'_>, area: Rect, app: &App, theme: Theme) {
    let (body, foot) = with_footer(area);
    let Some(e) = &app.event_open else {
        frame
            .render_widget(Paragraph::new(Line::styled(" No event open. Esc goes back.", theme.dim())), body);
        return;
    };
    let agent = e.agent.as_deref().and_then(|n| app.agents().iter().find(|a| a.name == n));
    let open_agent = match (&e.agent, agent) {
        (Some(name), Some(_)) => format!("Enter open {name}"),
        _ => String::new(),
    };
    let hints = ["Esc back", open_agent.as_str(), "↑↓ previous/next event", "? help"];
    let hints: Vec<&str> = hints.into_iter().filter(|h| !h.is_empty()).collect();
    frame.render_widget(Paragraph::new(footer(app, &hints, foot.width, theme)), foot);

    let label = |s: &str| Span::styled(format!(" {s:<9}"), theme.dim());
    let mut lines = vec![
        Line::from(vec![
            label("time"),
            Span::raw(app.zone.full(e.ts_ms)),
            Span::styled(format!("  ({} ago)", format::duration_ms(app.now_ms - e.ts_ms)), theme.dim()),
        ]),
        Line::from(vec![label("severity"), Span::styled(e.severity.as_str(), theme.severity(e.severity))]),
        Line::from(vec![label("kind"), Span::raw(e.kind.clone())]),
    ];
    let mut who = vec![label("agent")];
    match (&e.agent, agent) {
        (None, _) => who.push(Span::raw("the launcher itself")),
        (Some(name), Some(a)) => {
            who.push(Span::styled(name.clone(), theme.title()));
            who.push(Span::styled("  now ", theme.dim()));
            who.push(Span::styled(a.lifecycle.state.as_str(), theme.state(a.lifecycle.state)));
            who.push(Span::raw(" "));
            who.push(Span::styled(a.lifecycle.health.as_str(), theme.health(a.lifecycle.health)));
        }
        (Some(name), None) => {
            who.push(Span::raw(name.clone()));
            who.push(Span::styled("  (no longer registered)", theme.dim()));
        }
    }
    lines.push(Line::from(who));
    lines.push(Line::from(vec![label("id"), Span::styled(e.id.to_string(), theme.dim())]));
    lines.push(Line::raw(""));
    lines.push(Line::from(label("message")));
    let width = usize::from(body.width.saturating_sub(3));
    lines.extend(format::wrap(&e.message, width).into_iter().map(|l| Line::raw(format!("   {l}"))));
    // The rows left show what else happened to the same agent, around this event.
    let room = usize::from(body.height.saturating_sub(1)).saturating_sub(lines.len() + 2);
    let listed = app.data.as_ref().and_then(|d| d.events.as_deref()).unwrap_or_default();
    let same: Vec<&Event> = listed.iter().filter(|o| o.agent == e.agent).collect();
    if room > 0 && same.len() > 1 {
        let at = same.iter().position(|o| o.id == e.id).unwrap_or(0);
        let first = at.saturating_sub(room / 2).min(same.len().saturating_sub(room));
        let around = &same[first..same.len().min(first + room)];
        lines.push(Line::raw(""));
        lines.push(Line::from(label(&format!(
            "other events of {} (newest first)",
            e.agent.as_deref().unwrap_or("the launcher")
        ))));
        let times = padded_times(app, around.iter().copied());
        for (o, t) in around.iter().zip(times) {
            let line = event_line(o, false, &t, body.width, theme);
            lines.push(if o.id == e.id { line.style(theme.selected()) } else { line });
        }
    }
    let lines: Vec<Line> = lines.into_iter().map(|l| fit(l, body.width)).collect();
    let title = format!(" Event · {} · {} ", e.agent.as_deref().unwrap_or("launcher"), e.kind);
    let block = Block::new().borders(Borders::TOP).title(Span::styled(title, theme.title()));
    frame.render_widget(Paragraph::new(lines).block(block), body);
}

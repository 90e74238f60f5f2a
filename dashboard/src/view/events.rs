//! All events, newest first, filtered by agent, kind and minimum severity; `Enter` opens one
//! in full ([`event_detail`](super::event_detail)).

use super::theme::Theme;
use super::widgets::{fit, footer, index_at, scroll_offset, with_footer};
use crate::format;
use crate::state::App;
use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Paragraph, Row, Table, TableState};

const HINTS: &[&str] =
    &["Enter open event", "Esc/Tab overview", "/ filter (agent:A kind:K sev:S)", "v severity", "? help"];

/// The table's data rows: below the title line and the column headings.
fn body(area: Rect) -> Rect {
    let (table, _) = with_footer(area);
    Rect { y: table.y + 2, height: table.height.saturating_sub(2), ..table }
}

pub fn row_at(app: &App, area: Rect, column: u16, row: u16) -> Option<usize> {
    let body = body(area);
    let shown = app.data.as_ref().and_then(|d| d.events.as_ref()).map_or(0, Vec::len);
    let offset = scroll_offset(app.event_index, usize::from(body.height));
    index_at(body, offset, column, row).filter(|i| *i < shown)
}

pub fn draw(frame: &mut Frame<'_>, area: Rect, app: &App, theme: Theme) {
    let (table_area, foot) = with_footer(area);
    frame.render_widget(Paragraph::new(footer(app, HINTS, foot.width, theme)), foot);
    let query = app.event_query();
    let events = app.data.as_ref().and_then(|d| d.events.as_deref());
    let mut title = vec![Span::styled(
        format!(" Events ({}) ", events.map_or("loading".to_owned(), |e| e.len().to_string())),
        theme.title(),
    )];
    let filter = [
        query.agent.as_ref().map(|a| format!("agent={a}")),
        query.kind.as_ref().map(|k| format!("kind={k}")),
        Some(format!("severity≥{}", query.min_severity.map_or("info", |s| s.as_str()))),
        Some(format!("times in {}", app.zone.label(app.now_ms))),
    ];
    let filter = filter.into_iter().flatten().collect::<Vec<_>>().join(" · ");
    title.push(Span::styled(format!("{filter} "), theme.dim()));
    if !query.unknown.is_empty() {
        title.push(Span::styled(format!("· not understood: {} ", query.unknown.join(" ")), theme.warn()));
    }
    let block = Block::new().borders(Borders::TOP).title(fit(Line::from(title), table_area.width));
    let events = events.unwrap_or_default();
    let height = usize::from(body(area).height);
    let offset = scroll_offset(app.event_index, height);
    let shown = events.iter().skip(offset).take(height);
    let times: Vec<String> = events.iter().map(|e| app.zone.time(e.ts_ms, app.now_ms)).collect();
    let agent = |e: &agentvisor_shared::model::Event| e.agent.clone().unwrap_or_else(|| "launcher".into());
    // Sized by what is on screen, so one long name elsewhere in the list does not take the room.
    let on_screen = || events.iter().skip(offset).take(height);
    let widest = |f: &dyn Fn(&agentvisor_shared::model::Event) -> usize, head: usize, max: usize| {
        on_screen().map(f).max().unwrap_or(0).max(head).min(max)
    };
    let time_w = times.iter().skip(offset).take(height).map(|t| format::width(t)).max().unwrap_or(8).max(8);
    let agent_w = widest(&|e| format::width(&agent(e)), 8, 24);
    let kind_w = widest(&|e| e.kind.len(), 8, 24);
    let fixed = time_w + 8 + agent_w + kind_w + 4;
    let message_w = usize::from(table_area.width).saturating_sub(fixed).max(10);
    let rows: Vec<Row> = shown
        .zip(times.iter().skip(offset))
        .map(|(e, t)| {
            Row::new(vec![
                Cell::from(t.clone()),
                Cell::from(e.severity.as_str()).style(theme.severity(e.severity)),
                Cell::from(format::ellipsize(&agent(e), agent_w)),
                Cell::from(format::ellipsize(&e.kind, kind_w)),
                Cell::from(format::ellipsize(&e.message, message_w)),
            ])
        })
        .collect();
    let widths = [
        Constraint::Length(time_w as u16),
        Constraint::Length(8),
        Constraint::Length(agent_w as u16),
        Constraint::Length(kind_w as u16),
        Constraint::Fill(1),
    ];
    let empty = rows.is_empty();
    let table = Table::new(rows, widths)
        .header(Row::new(["TIME", "SEVERITY", "AGENT", "KIND", "MESSAGE"]).style(theme.dim()))
        .block(block)
        .row_highlight_style(theme.selected());
    let mut state = TableState::default().with_selected(Some(app.event_index - offset.min(app.event_index)));
    frame.render_stateful_widget(table, table_area, &mut state);
    if empty && app.data.as_ref().is_some_and(|d| d.events.is_some()) {
        frame.render_widget(Paragraph::new(Line::styled(" No events match.", theme.dim())), body(area));
    }
}

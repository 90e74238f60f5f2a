//! All events, newest first, filtered by agent, kind and minimum severity.

use super::theme::Theme;
use super::widgets::{footer, index_at, scroll_offset, with_footer};
use crate::format;
use crate::state::App;
use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Paragraph, Row, Table, TableState};

const HINTS: &str = "Tab overview · / filter (agent:A kind:K sev:S) · v severity · Enter open agent · ? help";

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
    frame.render_widget(Paragraph::new(footer(app, HINTS, theme)), foot);
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
    ];
    title.push(Span::styled(filter.into_iter().flatten().collect::<Vec<_>>().join(" "), theme.dim()));
    let block = Block::new().borders(Borders::TOP).title(Line::from(title));
    let rows: Vec<Row> = events
        .unwrap_or_default()
        .iter()
        .map(|e| {
            Row::new(vec![
                Cell::from(format::clock(e.ts_ms)),
                Cell::from(e.severity.as_str()).style(theme.severity(e.severity)),
                Cell::from(e.agent.clone().unwrap_or_else(|| "launcher".into())),
                Cell::from(e.kind.clone()),
                Cell::from(e.message.clone()),
            ])
        })
        .collect();
    let widths = [
        Constraint::Length(9),
        Constraint::Length(8),
        Constraint::Length(14),
        Constraint::Length(18),
        Constraint::Fill(1),
    ];
    let empty = rows.is_empty() && events.is_some();
    let table = Table::new(rows, widths)
        .header(Row::new(["TIME", "SEVERITY", "AGENT", "KIND", "MESSAGE"]).style(theme.dim()))
        .block(block)
        .row_highlight_style(theme.selected());
    let height = usize::from(body(area).height);
    let mut state = TableState::default()
        .with_selected(Some(app.event_index))
        .with_offset(scroll_offset(app.event_index, height));
    frame.render_stateful_widget(table, table_area, &mut state);
    if empty {
        frame.render_widget(Paragraph::new(Line::styled(" No events match.", theme.dim())), body(area));
    }
}

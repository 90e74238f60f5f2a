//! The alerts firing now (`[[alert]]` rules in agents.toml), worst first: rule, agent,
//! severity, since when, the value compared and the condition in words. Enter opens the agent.

use super::theme::Theme;
use super::widgets::{footer, scroll_offset, with_footer};
use crate::format;
use crate::state::App;
use agentvisor_shared::model::FiringAlert;
use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Paragraph, Row, Table, TableState};

const HINTS: &[&str] = &["a or Esc back", "Enter open agent", "? help"];

/// The table's data rows: below the title line and the column headings.
fn body(area: Rect) -> Rect {
    let (table, _) = with_footer(area);
    Rect { y: table.y + 2, height: table.height.saturating_sub(2), ..table }
}

pub fn draw(frame: &mut Frame<'_>, area: Rect, app: &App, theme: Theme) {
    let (table_area, foot) = with_footer(area);
    frame.render_widget(Paragraph::new(footer(app, HINTS, foot.width, theme)), foot);
    let alerts: &[FiringAlert] = app.data.as_ref().map_or(&[], |d| d.snapshot.alerts.as_slice());
    let title = Line::from(vec![Span::styled(format!(" Alerts firing ({}) ", alerts.len()), theme.title())]);
    let block = Block::new().borders(Borders::TOP).title(title);
    let rows: Vec<Row> = alerts
        .iter()
        .map(|a| {
            Row::new(vec![
                Cell::from(a.rule.clone()),
                Cell::from(a.agent.clone()),
                Cell::from(a.severity.as_str()).style(theme.severity(a.severity)),
                Cell::from(format!(
                    "{} ({} ago)",
                    app.zone.time(a.since_ms, app.now_ms),
                    format::duration_ms(app.now_ms - a.since_ms)
                )),
                Cell::from(a.value.map_or("—".to_owned(), value)),
                Cell::from(a.message.clone()),
            ])
        })
        .collect();
    let widths = [
        Constraint::Length(16),
        Constraint::Length(14),
        Constraint::Length(9),
        Constraint::Length(24),
        Constraint::Length(12),
        Constraint::Fill(1),
    ];
    let empty = rows.is_empty();
    let table = Table::new(rows, widths)
        .header(Row::new(["RULE", "AGENT", "SEVERITY", "SINCE", "VALUE", "CONDITION"]).style(theme.dim()))
        .block(block)
        .row_highlight_style(theme.selected());
    let height = usize::from(body(area).height);
    let mut state = TableState::default()
        .with_selected((!empty).then_some(app.alert_index))
        .with_offset(scroll_offset(app.alert_index, height));
    frame.render_stateful_widget(table, table_area, &mut state);
    if empty {
        frame.render_widget(Paragraph::new(Line::styled(" No alert fires.", theme.dim())), body(area));
    }
}

/// A value for the table: up to three decimals, no trailing zeros.
fn value(v: f64) -> String {
    let s = format!("{v:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

//! What every screen shares: the footer row and its line, and the list helpers (scrolling,
//! which row a click hit).

use super::theme::Theme;
use crate::state::{App, Screen, Source};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};

/// Splits a screen into its body and a one-line footer of key hints.
pub fn with_footer(area: Rect) -> (Rect, Rect) {
    let [body, footer] = Layout::vertical([Constraint::Fill(1), Constraint::Length(1)]).areas(area);
    (body, footer)
}

/// The footer: the filter being typed, or the screen's key hints.
pub fn footer(app: &App, hints: &str, theme: Theme) -> Line<'static> {
    if app.editing {
        let text = if app.screen == Screen::Events { &app.events_filter } else { &app.filter };
        return Line::from(vec![
            Span::styled(" filter: ", theme.title()),
            Span::raw(format!("{text}▏")),
            Span::styled("  Enter done · Esc clear", theme.dim()),
        ]);
    }
    let mut spans = vec![Span::styled(format!(" {hints}"), theme.dim())];
    // Last known data stays on screen; the footer says it is no longer being refreshed.
    match &app.source {
        Source::Failed { message, .. } => {
            spans.insert(0, Span::styled(format!(" cannot read: {message} "), theme.alarm()));
        }
        Source::Waiting { path, .. } => {
            spans.insert(0, Span::styled(format!(" {path} is gone; waiting for it "), theme.alarm()));
        }
        Source::Starting | Source::Live => {}
    }
    Line::from(spans)
}

/// The first row shown in a list of `height` rows so the selection stays visible.
pub fn scroll_offset(selected: usize, height: usize) -> usize {
    selected.saturating_sub(height.saturating_sub(1))
}

/// The list index under screen row `row` for a list drawn in `body` from `offset`.
pub fn index_at(body: Rect, offset: usize, column: u16, row: u16) -> Option<usize> {
    let inside = column >= body.x && column < body.right() && row >= body.y && row < body.bottom();
    inside.then(|| offset + usize::from(row - body.y))
}

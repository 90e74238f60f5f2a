//! What every screen shares: the footer row and its line, and the list helpers (scrolling,
//! which row a click hit).

use super::theme::Theme;
use crate::format;
use crate::state::{App, Screen, Source};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};

/// Splits a screen into its body and a one-line footer of key hints.
pub fn with_footer(area: Rect) -> (Rect, Rect) {
    let [body, footer] = Layout::vertical([Constraint::Fill(1), Constraint::Length(1)]).areas(area);
    (body, footer)
}

/// The footer: the filter being typed, or as many of the screen's key hints as fit `width`
/// (the most useful first), and `? help` for the rest.
pub fn footer(app: &App, hints: &[&str], width: u16, theme: Theme) -> Line<'static> {
    if app.editing {
        let text = if app.screen == Screen::Events { &app.events_filter } else { &app.filter };
        let unknown = if app.screen == Screen::Events {
            app.event_query().unknown
        } else {
            crate::state::agents::unknown_words(&app.filter).into_iter().map(str::to_owned).collect()
        };
        let mut spans = vec![Span::styled(" filter: ", theme.title()), Span::raw(format!("{text}▏"))];
        if !unknown.is_empty() {
            spans.push(Span::styled(format!("  not understood: {}", unknown.join(" ")), theme.warn()));
        }
        spans.push(Span::styled("  Enter done · Esc clear · ^U clear line", theme.dim()));
        return fit(Line::from(spans), width);
    }
    let mut spans = Vec::new();
    // Last known data stays on screen; the footer says it is no longer being refreshed.
    match &app.source {
        Source::Failed { message, .. } => {
            spans.push(Span::styled(format!(" cannot read: {message} "), theme.alarm()));
        }
        Source::Waiting { path, .. } => {
            spans.push(Span::styled(format!(" {path} is gone; waiting for it "), theme.alarm()));
        }
        Source::Starting | Source::Live => {}
    }
    let used: usize = spans.iter().map(|s| s.width()).sum();
    let room = usize::from(width).saturating_sub(used + 1);
    let mut shown: Vec<&str> = Vec::new();
    for hint in hints {
        let next = shown.iter().map(|h| format::width(h) + 3).sum::<usize>() + format::width(hint);
        if next > room {
            break;
        }
        shown.push(hint);
    }
    spans.push(Span::styled(format!(" {}", shown.join(" · ")), theme.dim()));
    fit(Line::from(spans), width)
}

/// `line` cut to `width` columns with `…` at the cut, so a cut line says it was cut.
pub fn fit(line: Line<'static>, width: u16) -> Line<'static> {
    let width = usize::from(width);
    if line.width() <= width {
        return line;
    }
    let mut out = Line::default().style(line.style);
    let mut used = 0;
    for span in line.spans {
        let w = span.width();
        if used + w < width {
            used += w;
            out.spans.push(span);
            continue;
        }
        let text = format::ellipsize(&span.content, width - used);
        out.spans.push(Span::styled(text, span.style));
        break;
    }
    out
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

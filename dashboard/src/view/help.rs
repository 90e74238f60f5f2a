//! The help overlay: every key, from the same table the key map is documented by. Each
//! description wraps within its own column, so nothing runs back to column 0 on a narrow
//! terminal.

use super::theme::Theme;
use crate::format;
use crate::input::HELP;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph};

const NOTE: &str = "Read-only: act with agentvisor-launcher ctl start|stop|restart AGENT";

pub fn draw(frame: &mut Frame<'_>, area: Rect, theme: Theme) {
    let width = area.width.min(100);
    let inner = usize::from(width.saturating_sub(2));
    let keys = HELP.iter().map(|(k, _)| format::width(k)).max().unwrap_or(0) + 3;
    let text_width = inner.saturating_sub(keys).max(10);
    let mut lines: Vec<Line> = Vec::new();
    for (key, what) in HELP {
        for (i, part) in format::wrap(what, text_width).into_iter().enumerate() {
            let key = if i == 0 { *key } else { "" };
            let pad = keys.saturating_sub(format::width(key) + 1);
            lines.push(Line::from(vec![
                Span::styled(format!(" {key}{}", " ".repeat(pad)), theme.title()),
                Span::raw(part),
            ]));
        }
    }
    lines.push(Line::raw(""));
    for part in format::wrap(NOTE, inner.saturating_sub(1)) {
        lines.push(Line::styled(format!(" {part}"), theme.dim()));
    }
    let height = (lines.len() as u16 + 2).min(area.height);
    let popup =
        Rect { x: area.x + (area.width - width) / 2, y: area.y + (area.height - height) / 2, width, height };
    frame.render_widget(Clear, popup);
    let block = Block::bordered().title(Span::styled(" Keys (Esc or ? closes) ", theme.title()));
    frame.render_widget(Paragraph::new(lines).block(block), popup);
}

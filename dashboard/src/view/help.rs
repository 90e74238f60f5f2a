//! The help overlay: every key, from the same table the key map is documented by.

use super::theme::Theme;
use crate::input::HELP;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph, Wrap};

pub fn draw(frame: &mut Frame<'_>, area: Rect, theme: Theme) {
    let mut lines: Vec<Line> = HELP
        .iter()
        .map(|(keys, what)| {
            Line::from(vec![Span::styled(format!(" {keys:<25}"), theme.title()), Span::raw(*what)])
        })
        .collect();
    lines.push(Line::raw(""));
    lines.push(Line::styled(
        " Read-only: act on agents with agentvisor-launcher ctl start|stop|restart AGENT",
        theme.dim(),
    ));
    let width = area.width.min(100);
    let height = (lines.len() as u16 + 2).min(area.height);
    let popup =
        Rect { x: area.x + (area.width - width) / 2, y: area.y + (area.height - height) / 2, width, height };
    frame.render_widget(Clear, popup);
    let block = Block::bordered().title(Span::styled(" Keys (Esc or ? closes) ", theme.title()));
    frame.render_widget(Paragraph::new(lines).block(block).wrap(Wrap { trim: false }), popup);
}

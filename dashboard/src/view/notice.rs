//! Screens shown before any data: starting, waiting for the database to appear, and errors
//! such as a schema newer than this dashboard knows.

use super::theme::Theme;
use crate::state::{App, Source};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Wrap};

pub fn draw(frame: &mut Frame<'_>, area: Rect, app: &App, theme: Theme) {
    let (title, style, body): (&str, _, Vec<Line>) = match &app.source {
        Source::Starting | Source::Live => {
            (" Agentvisor ", theme.title(), vec![Line::raw("Reading the database…")])
        }
        Source::Waiting { path, how, reason } => (
            " Waiting for the database ",
            theme.warn(),
            vec![
                Line::from(vec![
                    Span::styled(path.clone(), theme.title()),
                    Span::styled(format!(" ({how})"), theme.dim()),
                ]),
                Line::raw(""),
                Line::raw(reason.clone()),
                Line::raw("It is opened as soon as it appears; this dashboard never creates it."),
                Line::raw(""),
                Line::styled(
                    "Another file? --db PATH, $SHARED_STATE_SQLITE or SHARED_STATE_SQLITE in ./.env",
                    theme.dim(),
                ),
            ],
        ),
        Source::Failed { path, how, message } => (
            " Cannot read the database ",
            theme.bad(),
            vec![
                Line::from(vec![
                    Span::styled(path.clone(), theme.title()),
                    Span::styled(format!(" ({how})"), theme.dim()),
                ]),
                Line::raw(""),
                Line::styled(message.clone(), theme.bad()),
                Line::raw(""),
                Line::styled("Retrying every second.", theme.dim()),
            ],
        ),
    };
    let mut body = body;
    body.push(Line::raw(""));
    body.push(Line::styled("q quit · ? help", theme.dim()));
    let height = (body.len() as u16 + 4).min(area.height);
    let [_, middle, _] =
        Layout::vertical([Constraint::Fill(1), Constraint::Length(height), Constraint::Fill(1)]).areas(area);
    let block = Block::bordered().title(Span::styled(title, style));
    let text = Paragraph::new(body)
        .block(block.padding(ratatui::widgets::Padding::horizontal(1)))
        .wrap(Wrap { trim: false });
    frame.render_widget(text, middle);
}

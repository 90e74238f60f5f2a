//! Render functions: they only draw what the state holds. Layout helpers that input handling
//! also needs (which row a click hit) live beside the screens that define the layout.

pub mod alerts;
pub mod detail;
mod event_detail;
pub mod events;
pub mod fleet;
mod header;
mod help;
mod notice;
pub mod overview;
mod probes;
mod problems;
pub mod runs;
pub mod theme;
mod timeline;
mod widgets;

use crate::state::{App, Screen};
use ratatui::Frame;
use theme::Theme;

pub fn draw(frame: &mut Frame<'_>, app: &App) {
    let area = frame.area();
    let theme = Theme { color: app.color };
    if app.data.is_none() {
        notice::draw(frame, area, app, theme);
    } else {
        match app.screen {
            Screen::Overview => overview::draw(frame, area, app, theme),
            Screen::Detail => detail::draw(frame, area, app, theme),
            Screen::Events => events::draw(frame, area, app, theme),
            Screen::EventDetail => event_detail::draw(frame, area, app, theme),
            Screen::Alerts => alerts::draw(frame, area, app, theme),
        }
    }
    if app.help {
        help::draw(frame, area, theme);
    }
}

#[cfg(test)]
pub(crate) mod tests;

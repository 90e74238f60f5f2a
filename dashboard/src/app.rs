//! The UI loop, generic over ratatui's `Backend` so tests drive it with `TestBackend`: draw
//! from the state, tell the data thread what to read, sleep until an input or data event (or
//! the once-a-second tick that keeps ages current), apply it, repeat.

use crate::data::Focus;
use crate::event::AppEvent;
use crate::input::{self, Action};
use crate::state::{App, Screen};
use crate::view;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use ratatui::Terminal;
use ratatui::backend::Backend;
use ratatui::layout::Rect;
use std::time::Duration;

/// Redraw at least this often so ages and "stale since" stay current while nothing changes.
pub(crate) const TICK: Duration = Duration::from_secs(1);

pub fn run<B: Backend>(
    terminal: &mut Terminal<B>,
    app: &mut App,
    events: &Receiver<AppEvent>,
    focus_tx: &Sender<Focus>,
    clock: impl Fn() -> i64,
) -> anyhow::Result<()>
where
    B::Error: Send + Sync + 'static,
{
    let mut sent: Option<Focus> = None;
    while !app.quit {
        app.now_ms = clock();
        let frame = terminal.draw(|f| view::draw(f, app))?;
        let focus = app.focus(usize::from(frame.area.height));
        if sent.as_ref() != Some(&focus) {
            // The data thread has gone only if it failed to start; the screen says so.
            let _ = focus_tx.send(focus.clone());
            sent = Some(focus);
        }
        let first = match events.recv_timeout(TICK) {
            Ok(ev) => ev,
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => break,
        };
        let area: Rect = terminal.size()?.into();
        handle(app, first, area);
        // Apply everything already queued before drawing again: a burst of keys or a held
        // arrow key costs one frame, not one per event.
        while let Ok(ev) = events.try_recv() {
            handle(app, ev, area);
        }
    }
    Ok(())
}

/// Applies one event to the state; clicks become row selections through the same layout
/// the screens are drawn with.
pub fn handle(app: &mut App, ev: AppEvent, area: Rect) {
    match ev {
        AppEvent::Data(msg) => app.on_data(msg),
        // Only the fleet view has host threads.
        AppEvent::Host(_) => {}
        AppEvent::Input(ev) => {
            let Some(action) = input::map(&ev, app.editing) else { return };
            let action = match action {
                Action::Click { column, row } => match click_target(app, area, column, row) {
                    Some(a) => a,
                    None => return,
                },
                // Every chart is on screen already: `m` would only shuffle them.
                Action::CycleMetric
                    if app.screen == Screen::Detail && view::detail::all_charts_fit(app, area) =>
                {
                    return;
                }
                a => a,
            };
            app.apply(action);
        }
    }
}

/// A click on a row selects it; a click on the already selected row opens it.
fn click_target(app: &App, area: Rect, column: u16, row: u16) -> Option<Action> {
    if app.help || app.editing {
        return None;
    }
    let index = match app.screen {
        Screen::Overview => view::overview::row_at(app, area, column, row)?,
        Screen::Events => view::events::row_at(app, area, column, row)?,
        Screen::Detail | Screen::EventDetail | Screen::Alerts => return None,
    };
    let current = match app.screen {
        Screen::Overview => app.selected_index(),
        _ => Some(app.event_index),
    };
    Some(if current == Some(index) { Action::Open } else { Action::Select(index) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::view::tests::{detail_app, normal, render};

    fn key(c: char) -> crate::event::AppEvent {
        use ratatui::crossterm::event::{Event, KeyCode, KeyEvent, KeyModifiers};
        crate::event::AppEvent::Input(Event::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE)))
    }

    /// `m` pages the detail screen's charts only where they do not all fit.
    #[test]
    fn m_pages_charts_only_when_they_do_not_fit() {
        let mut paged = detail_app();
        handle(&mut paged, key('m'), ratatui::layout::Rect::new(0, 0, 160, 45));
        assert_eq!(paged.chart_offset, 0);
        handle(&mut paged, key('m'), ratatui::layout::Rect::new(0, 0, 80, 24));
        assert_eq!(paged.chart_offset, 1);
    }

    /// A click selects the agent row under it (through the same layout the screen is drawn with),
    /// and a second click opens it.
    #[test]
    fn clicks_select_then_open() {
        use ratatui::crossterm::event::{Event, KeyModifiers, MouseButton, MouseEvent, MouseEventKind};
        let mut app = normal();
        let area = ratatui::layout::Rect::new(0, 0, 80, 24);
        let text = render(&app, 80, 24).backend().to_string();
        let row = text.lines().position(|l| l.contains("  worker ")).unwrap() as u16;
        let click = |row| {
            AppEvent::Input(Event::Mouse(MouseEvent {
                kind: MouseEventKind::Down(MouseButton::Left),
                column: 5,
                row,
                modifiers: KeyModifiers::NONE,
            }))
        };
        handle(&mut app, click(row), area);
        assert_eq!(app.selected.as_deref(), Some("worker"));
        assert_eq!(app.screen, Screen::Overview);
        handle(&mut app, click(0), area);
        assert_eq!(app.selected.as_deref(), Some("worker"), "a click on the header selects nothing");
        handle(&mut app, click(row), area);
        assert_eq!((app.screen, app.detail_agent.as_deref()), (Screen::Detail, Some("worker")));
    }
}

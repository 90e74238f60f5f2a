//! Keys and mouse events turned into [`Action`]s. Pure: no state is changed here, so the key
//! map is tested without a terminal.

use ratatui::crossterm::event::{
    Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseButton, MouseEvent, MouseEventKind,
};

/// Rows a page key moves.
const PAGE: isize = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Quit,
    /// Move the cursor (or scroll) by this many rows; negative is up.
    Move(isize),
    /// Select this row of the current list (from a mouse click, already mapped to a row).
    Select(usize),
    Open,
    Back,
    NextScreen,
    StartFilter,
    Char(char),
    Backspace,
    CycleSort,
    ReverseSort,
    /// Clear the filter line being typed (Ctrl-U, as in a shell).
    ClearLine,
    ToggleHelp,
    NextWindow,
    PrevWindow,
    Window(usize),
    CycleSeverity,
    CycleMetric,
    /// Open the Alerts screen (or leave it).
    Alerts,
    /// Detail screen: select a newer (-1) or older (+1) run.
    RunCursor(isize),
    /// A left click at this screen position; the loop maps it to a row with the layout.
    Click {
        column: u16,
        row: u16,
    },
}

/// Maps one terminal event. `editing` is true while a filter is being typed: then letters
/// are text, and only Enter, Esc, Backspace and Ctrl-C keep their meaning.
pub fn map(event: &Event, editing: bool) -> Option<Action> {
    match event {
        Event::Key(key) if key.kind != KeyEventKind::Release => map_key(key, editing),
        Event::Mouse(mouse) => map_mouse(mouse),
        _ => None,
    }
}

fn map_key(key: &KeyEvent, editing: bool) -> Option<Action> {
    if key.modifiers.contains(KeyModifiers::CONTROL) {
        return match key.code {
            KeyCode::Char('c') => Some(Action::Quit),
            KeyCode::Char('u') if editing => Some(Action::ClearLine),
            KeyCode::Char('d') => Some(Action::Move(PAGE)),
            KeyCode::Char('u') => Some(Action::Move(-PAGE)),
            _ => None,
        };
    }
    let common = match key.code {
        KeyCode::Enter => Some(Action::Open),
        KeyCode::Esc => Some(Action::Back),
        KeyCode::Backspace if editing => Some(Action::Backspace),
        KeyCode::Up => Some(Action::Move(-1)),
        KeyCode::Down => Some(Action::Move(1)),
        _ => None,
    };
    if common.is_some() || editing {
        return common.or(match key.code {
            KeyCode::Char(c) => Some(Action::Char(c)),
            _ => None,
        });
    }
    Some(match key.code {
        KeyCode::Char('q') => Action::Quit,
        KeyCode::Char('k') => Action::Move(-1),
        KeyCode::Char('j') => Action::Move(1),
        KeyCode::PageUp => Action::Move(-PAGE),
        KeyCode::PageDown | KeyCode::Char(' ') => Action::Move(PAGE),
        KeyCode::Home | KeyCode::Char('g') => Action::Move(isize::MIN / 2),
        KeyCode::End | KeyCode::Char('G') => Action::Move(isize::MAX / 2),
        KeyCode::Tab | KeyCode::BackTab => Action::NextScreen,
        KeyCode::Char('/') => Action::StartFilter,
        KeyCode::Char('s') => Action::CycleSort,
        KeyCode::Char('S') => Action::ReverseSort,
        KeyCode::Char('?') | KeyCode::F(1) => Action::ToggleHelp,
        KeyCode::Char('w') | KeyCode::Right => Action::NextWindow,
        KeyCode::Char('W') | KeyCode::Left => Action::PrevWindow,
        KeyCode::Char(c @ '1'..='5') => Action::Window(c as usize - '1' as usize),
        KeyCode::Char('v') => Action::CycleSeverity,
        KeyCode::Char('m') => Action::CycleMetric,
        KeyCode::Char('a') => Action::Alerts,
        KeyCode::Char('[') => Action::RunCursor(-1),
        KeyCode::Char(']') => Action::RunCursor(1),
        KeyCode::Backspace => Action::Back,
        _ => return None,
    })
}

fn map_mouse(mouse: &MouseEvent) -> Option<Action> {
    match mouse.kind {
        MouseEventKind::ScrollUp => Some(Action::Move(-3)),
        MouseEventKind::ScrollDown => Some(Action::Move(3)),
        MouseEventKind::Down(MouseButton::Left) => {
            Some(Action::Click { column: mouse.column, row: mouse.row })
        }
        _ => None,
    }
}

/// Every key the dashboard knows, for the help overlay (kept beside the map it describes).
pub const HELP: &[(&str, &str)] = &[
    ("↑ ↓  j k", "move the selection; scroll the output"),
    ("PgUp PgDn  ^U ^D", "move ten rows"),
    ("g G  Home End", "first / last row"),
    ("Enter", "open the agent, or the event; on an event, its agent"),
    ("Esc  Backspace", "back where you came from; clear the filter"),
    ("Tab", "switch between Overview and Events"),
    ("/", "filter: words, state:X cap:X health:X; on Events agent:A kind:K sev:S"),
    ("  Enter  Esc  ^U", "while typing: done, clear and stop, clear the line"),
    ("s  S", "sort by config, name, state, cpu, mem, restarts, beat; reverse"),
    ("m", "overview: sparkline metric; detail: next charts, when not all fit"),
    ("w W  ← →  1-5", "detail chart window: 5m 1h 6h 24h 7d"),
    ("v", "Events: minimum severity"),
    ("a", "Alerts: the alert rules firing now (again: back)"),
    ("mouse", "wheel scrolls, click selects, click again opens"),
    ("?  F1", "this help"),
    ("q  Ctrl-C", "quit"),
];

#[cfg(test)]
mod tests {
    use super::*;
    use ratatui::crossterm::event::KeyEventState;

    fn key(code: KeyCode) -> Event {
        Event::Key(KeyEvent::new(code, KeyModifiers::NONE))
    }

    #[test]
    fn normal_keys() {
        assert_eq!(map(&key(KeyCode::Char('q')), false), Some(Action::Quit));
        assert_eq!(map(&key(KeyCode::Char('j')), false), Some(Action::Move(1)));
        assert_eq!(map(&key(KeyCode::Up), false), Some(Action::Move(-1)));
        assert_eq!(map(&key(KeyCode::Enter), false), Some(Action::Open));
        assert_eq!(map(&key(KeyCode::Esc), false), Some(Action::Back));
        assert_eq!(map(&key(KeyCode::Tab), false), Some(Action::NextScreen));
        assert_eq!(map(&key(KeyCode::Char('/')), false), Some(Action::StartFilter));
        assert_eq!(map(&key(KeyCode::Char('s')), false), Some(Action::CycleSort));
        assert_eq!(map(&key(KeyCode::Char('?')), false), Some(Action::ToggleHelp));
        assert_eq!(map(&key(KeyCode::Char('3')), false), Some(Action::Window(2)));
        assert_eq!(map(&key(KeyCode::Char('z')), false), None);
        let ctrl_c = Event::Key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL));
        assert_eq!(map(&ctrl_c, false), Some(Action::Quit));
        assert_eq!(map(&ctrl_c, true), Some(Action::Quit));
    }

    #[test]
    fn editing_types_letters() {
        assert_eq!(map(&key(KeyCode::Char('q')), true), Some(Action::Char('q')));
        assert_eq!(map(&key(KeyCode::Char('/')), true), Some(Action::Char('/')));
        assert_eq!(map(&key(KeyCode::Backspace), true), Some(Action::Backspace));
        assert_eq!(map(&key(KeyCode::Enter), true), Some(Action::Open));
        assert_eq!(map(&key(KeyCode::Tab), true), None);
        let ctrl_u = Event::Key(KeyEvent::new(KeyCode::Char('u'), KeyModifiers::CONTROL));
        assert_eq!(map(&ctrl_u, true), Some(Action::ClearLine));
        assert_eq!(map(&ctrl_u, false), Some(Action::Move(-PAGE)));
    }

    #[test]
    fn releases_are_ignored_and_mouse_maps() {
        let release = Event::Key(KeyEvent {
            code: KeyCode::Char('q'),
            modifiers: KeyModifiers::NONE,
            kind: KeyEventKind::Release,
            state: KeyEventState::NONE,
        });
        assert_eq!(map(&release, false), None);
        let mouse =
            |kind| Event::Mouse(MouseEvent { kind, column: 4, row: 9, modifiers: KeyModifiers::NONE });
        assert_eq!(map(&mouse(MouseEventKind::ScrollDown), false), Some(Action::Move(3)));
        assert_eq!(
            map(&mouse(MouseEventKind::Down(MouseButton::Left)), false),
            Some(Action::Click { column: 4, row: 9 })
        );
        assert_eq!(map(&Event::FocusGained, false), None);
    }
}

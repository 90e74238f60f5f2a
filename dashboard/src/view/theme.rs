//! Styles, with colour only when wanted: under `NO_COLOR` every style keeps its modifiers
//! (bold, reversed, dim) and drops its colours, so trouble still stands out.

use crate::assess::Heartbeat;
use agentvisor_shared::model::{AgentState, Health, Severity};
use ratatui::style::{Color, Modifier, Style};

#[derive(Debug, Clone, Copy)]
pub struct Theme {
    pub color: bool,
}

impl Theme {
    fn paint(self, style: Style, color: Color) -> Style {
        if self.color { style.fg(color) } else { style }
    }

    pub fn title(self) -> Style {
        self.paint(Style::new().add_modifier(Modifier::BOLD), Color::Cyan)
    }

    pub fn dim(self) -> Style {
        self.paint(Style::new().add_modifier(Modifier::DIM), Color::DarkGray)
    }

    pub fn good(self) -> Style {
        self.paint(Style::new(), Color::Green)
    }

    pub fn warn(self) -> Style {
        self.paint(Style::new().add_modifier(Modifier::BOLD), Color::Yellow)
    }

    pub fn bad(self) -> Style {
        self.paint(Style::new().add_modifier(Modifier::BOLD), Color::Red)
    }

    /// The strongest style: what must jump out (fatal agents, launcher down).
    pub fn alarm(self) -> Style {
        if self.color {
            Style::new().fg(Color::White).bg(Color::Red).add_modifier(Modifier::BOLD)
        } else {
            Style::new().add_modifier(Modifier::BOLD | Modifier::REVERSED)
        }
    }

    /// Patched over every cell of the selected row, so it sets the foreground too and un-dims:
    /// a background alone left dim text (dark grey) invisible on a dark grey selection.
    pub fn selected(self) -> Style {
        if self.color {
            Style::new()
                .fg(Color::White)
                .bg(Color::Blue)
                .add_modifier(Modifier::BOLD)
                .remove_modifier(Modifier::DIM)
        } else {
            Style::new().add_modifier(Modifier::REVERSED).remove_modifier(Modifier::DIM)
        }
    }

    pub fn state(self, s: AgentState) -> Style {
        match s {
            AgentState::Running | AgentState::Scheduled => self.good(),
            AgentState::Starting | AgentState::Stopping => self.paint(Style::new(), Color::Cyan),
            AgentState::Stopped | AgentState::Exited => self.dim(),
            AgentState::Backoff => self.warn(),
            AgentState::Fatal => self.alarm(),
        }
    }

    pub fn health(self, h: Health) -> Style {
        match h {
            Health::Healthy => self.good(),
            Health::Unhealthy => self.bad(),
            Health::Unknown => self.dim(),
        }
    }

    pub fn severity(self, s: Severity) -> Style {
        match s {
            Severity::Info => Style::new(),
            Severity::Warning => self.warn(),
            Severity::Error => self.bad(),
            Severity::Critical => self.alarm(),
        }
    }

    /// Heartbeat age against the timeout: green under half, yellow approaching, red past it.
    pub fn heartbeat(self, hb: Heartbeat) -> Style {
        match hb {
            Heartbeat::ProcessOnly => self.dim(),
            Heartbeat::None => self.warn(),
            Heartbeat::Seen { of_timeout: None, .. } => Style::new(),
            Heartbeat::Seen { of_timeout: Some(f), .. } if f < 0.5 => self.good(),
            Heartbeat::Seen { of_timeout: Some(f), .. } if f < 1.0 => self.warn(),
            Heartbeat::Seen { .. } => self.bad(),
        }
    }
}

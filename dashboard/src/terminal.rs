//! Entering and leaving the terminal's full-screen mode. The guard restores the terminal when
//! dropped (normal exit and `?` errors), and the panic hook does so before the message is
//! printed, so a crash never leaves the operator's shell in raw mode.

use ratatui::DefaultTerminal;
use ratatui::crossterm::event::{DisableMouseCapture, EnableMouseCapture};
use ratatui::crossterm::execute;

pub struct TerminalGuard {
    pub terminal: DefaultTerminal,
}

impl TerminalGuard {
    pub fn enter() -> std::io::Result<TerminalGuard> {
        // Installed first so it runs after ratatui's own hook has left raw mode; mouse
        // capture is ours to undo.
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let _ = execute!(std::io::stdout(), DisableMouseCapture);
            previous(info);
        }));
        let terminal = ratatui::try_init()?;
        let guard = TerminalGuard { terminal };
        execute!(std::io::stdout(), EnableMouseCapture)?;
        Ok(guard)
    }
}

impl TerminalGuard {
    /// Hands the terminal back in its normal mode, for another full-screen program.
    pub fn suspend(&mut self) -> std::io::Result<()> {
        execute!(std::io::stdout(), DisableMouseCapture)?;
        ratatui::try_restore()
    }

    /// Takes the terminal again after [`TerminalGuard::suspend`] and redraws from scratch.
    pub fn resume(&mut self) -> std::io::Result<()> {
        use ratatui::crossterm::terminal::{Clear, ClearType, EnterAlternateScreen, enable_raw_mode};
        enable_raw_mode()?;
        execute!(std::io::stdout(), EnterAlternateScreen, Clear(ClearType::All), EnableMouseCapture)?;
        // A new terminal has no previous frame, so the next draw paints every cell.
        // (`Terminal::clear` would ask the terminal for the cursor position, which not every
        // terminal answers.)
        self.terminal = ratatui::Terminal::new(ratatui::backend::CrosstermBackend::new(std::io::stdout()))?;
        Ok(())
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        let _ = execute!(std::io::stdout(), DisableMouseCapture);
        ratatui::restore();
    }
}

//! The one channel the UI loop waits on: terminal input and data from the data thread arrive
//! in order, so the loop sleeps until either has something (bottom's design).

use crate::data::DataMsg;
use crate::fleet::link::HostMsg;
use crossbeam_channel::Sender;
use ratatui::crossterm::event::Event;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

#[derive(Debug)]
pub enum AppEvent {
    Input(Event),
    Data(DataMsg),
    /// From one of the fleet view's host threads.
    Host(HostMsg),
}

/// How the data thread, which knows nothing of this enum, puts its messages on the channel.
impl From<DataMsg> for AppEvent {
    fn from(msg: DataMsg) -> AppEvent {
        AppEvent::Data(msg)
    }
}

/// Reads terminal events on a thread of its own, since `crossterm::event::read` blocks.
pub fn spawn_input(tx: Sender<AppEvent>) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new().name("input".into()).spawn(move || {
        loop {
            match ratatui::crossterm::event::read() {
                Ok(ev) => {
                    if tx.send(AppEvent::Input(ev)).is_err() {
                        return;
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, "cannot read the terminal");
                    return;
                }
            }
        }
    })
}

/// Lets the UI take the terminal's input away from the input thread, while another program
/// (a host's dashboard) reads the same terminal.
#[derive(Default)]
pub struct Gate {
    /// (pause wanted, input thread parked)
    state: Mutex<(bool, bool)>,
    changed: Condvar,
}

/// How often a gated input thread looks at its gate while no key comes.
const GATE_POLL: Duration = Duration::from_millis(100);

impl Gate {
    /// Returns once the input thread reads no more (or after a second, if it is gone).
    pub fn pause(&self) {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        s.0 = true;
        let _ = self.changed.wait_timeout_while(s, Duration::from_secs(1), |s| !s.1);
    }

    pub fn resume(&self) {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        s.0 = false;
        self.changed.notify_all();
    }

    /// Parks the calling input thread while a pause is wanted.
    fn park(&self) {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if !s.0 {
            return;
        }
        s.1 = true;
        self.changed.notify_all();
        let mut s = self.changed.wait_while(s, |s| s.0).unwrap_or_else(|p| p.into_inner());
        s.1 = false;
    }
}

/// [`spawn_input`] that stops reading while `gate` is paused: it polls, since a blocking read
/// cannot be called off, and a read under way would take the other program's keys.
pub fn spawn_gated_input(
    tx: Sender<AppEvent>,
    gate: Arc<Gate>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    use ratatui::crossterm::event::{poll, read};
    std::thread::Builder::new().name("input".into()).spawn(move || {
        loop {
            gate.park();
            match poll(GATE_POLL) {
                Ok(false) => continue,
                Ok(true) => {}
                Err(e) => {
                    tracing::error!(error = %e, "cannot read the terminal");
                    return;
                }
            }
            match read() {
                Ok(ev) => {
                    if tx.send(AppEvent::Input(ev)).is_err() {
                        return;
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, "cannot read the terminal");
                    return;
                }
            }
        }
    })
}

//! The one channel the UI loop waits on: terminal input and data from the data thread arrive
//! in order, so the loop sleeps until either has something (bottom's design).

use crate::data::DataMsg;
use crossbeam_channel::Sender;
use ratatui::crossterm::event::Event;

#[derive(Debug)]
pub enum AppEvent {
    Input(Event),
    Data(DataMsg),
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

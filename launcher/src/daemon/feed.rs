//! What tells the manager something besides the control socket: SIGTERM and SIGINT (stop),
//! SIGHUP (reload), the config file's watcher (reload), and the store finding its database
//! gone (stop and fail). Each becomes an [`Input`] in the manager's inbox.

use crate::manager::watch::ConfigWatch;
use crate::manager::{Action, Input, Job, Origin};
use agentvisor_shared::WriterHandle;
use std::path::Path;
use std::time::Duration;
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// How often the store is asked whether its database is still the file at its path.
const DATABASE_CHECK: Duration = Duration::from_millis(500);

/// The signals the launcher handles, taken over from their default actions (SIGHUP's would
/// end the launcher) as soon as it starts.
pub struct Signals {
    term: Signal,
    int: Signal,
    hup: Signal,
}

impl Signals {
    pub fn take() -> std::io::Result<Signals> {
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
            hup: signal(SignalKind::hangup())?,
        })
    }
}

/// The running feeds; dropping them ends them.
pub struct Feeds {
    tasks: Vec<JoinHandle<()>>,
    _watch: Option<ConfigWatch>,
}

impl Drop for Feeds {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Starts feeding the inbox. A config watcher that cannot start is logged and left out.
pub fn start(signals: Signals, config: &Path, inbox: &mpsc::Sender<Input>, writer: WriterHandle) -> Feeds {
    let tasks = vec![
        tokio::spawn(forward_signals(signals, inbox.clone())),
        tokio::spawn(watch_database(writer, inbox.clone())),
    ];
    let watch = match ConfigWatch::start(config, inbox.clone()) {
        Ok(w) => Some(w),
        Err(e) => {
            tracing::warn!(
                "not watching {} for changes ({e}); reload with SIGHUP or ctl reload",
                config.display()
            );
            None
        }
    };
    Feeds { tasks, _watch: watch }
}

async fn forward_signals(mut s: Signals, inbox: mpsc::Sender<Input>) {
    loop {
        let input = tokio::select! {
            _ = s.term.recv() => Input::Signal("SIGTERM"),
            _ = s.int.recv() => Input::Signal("SIGINT"),
            _ = s.hup.recv() => Input::Job(Job {
                action: Action::Reload,
                agents: Vec::new(),
                origin: Origin::Sighup,
                reply: None,
            }),
        };
        if inbox.send(input).await.is_err() {
            return;
        }
    }
}

/// Tells the manager once the store finds that the database file it writes is no longer the
/// one at its path (see [`WriterHandle::database_lost`]).
async fn watch_database(writer: WriterHandle, inbox: mpsc::Sender<Input>) {
    let mut tick = tokio::time::interval(DATABASE_CHECK);
    loop {
        tick.tick().await;
        if let Some(why) = writer.database_lost() {
            let _ = inbox.send(Input::DatabaseLost(why)).await;
            return;
        }
    }
}

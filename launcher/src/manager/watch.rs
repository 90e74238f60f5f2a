//! Reloads the config when its file changes. The directory is watched, not the file: editors
//! that save by writing a new file and renaming it over the old one replace the inode a file
//! watch would follow. Events are filtered by file name and debounced, so a save in several
//! steps (write then rename, two writes) becomes one reload; the operator also skips a reload
//! whose text did not change.
//!
//! The watch asks the kernel only for "closed after writing", "moved in" and "deleted": the
//! database usually sits in the same directory, and a general-purpose watcher also subscribes
//! to every write and open there, which at a thousand agents meant thousands of wake-ups a
//! second for nothing (the WAL is written in place and stays open, so it sends none of these).

use crate::control::{Action, Job, Origin};
use futures_util::StreamExt;
use inotify::{EventStream, Inotify, WatchMask};
use std::ffi::{OsStr, OsString};
use std::path::Path;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Quiet time after the last event before reloading: longer than the gap between the steps
/// of one save, short enough to feel immediate.
const SETTLE: Duration = Duration::from_millis(300);

/// What can change the config file's content as seen through its name.
fn mask() -> WatchMask {
    WatchMask::CLOSE_WRITE | WatchMask::MOVED_TO | WatchMask::CREATE | WatchMask::DELETE | WatchMask::ATTRIB
}

/// Watching; dropping it stops the watch.
pub struct ConfigWatch {
    task: JoinHandle<()>,
}

impl Drop for ConfigWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl ConfigWatch {
    pub fn start(config: &Path, jobs: mpsc::Sender<Job>) -> std::io::Result<ConfigWatch> {
        let absolute = std::path::absolute(config)?;
        let name: OsString = absolute.file_name().map(OsString::from).unwrap_or_default();
        let dir = absolute.parent().map_or_else(|| Path::new("/").to_owned(), Path::to_owned);
        let inotify = Inotify::init()?;
        inotify.watches().add(&dir, mask())?;
        let mut events = inotify.into_event_stream([0u8; 4096])?;
        let task = tokio::spawn(async move {
            while next_change(&mut events, &name).await.is_some() {
                // Wait until the file has been quiet for SETTLE.
                while let Ok(Some(())) = tokio::time::timeout(SETTLE, next_change(&mut events, &name)).await {
                }
                let job = Job {
                    action: Action::Reload,
                    agents: Vec::new(),
                    origin: Origin::FileChanged,
                    reply: None,
                };
                if jobs.send(job).await.is_err() {
                    return;
                }
            }
        });
        Ok(ConfigWatch { task })
    }
}

/// Waits for the next event naming the config file; other files' events (the database's
/// `-wal` and `-shm`, closed by every reader) are skipped. `None` when the watch has failed.
async fn next_change(events: &mut EventStream<[u8; 4096]>, name: &OsStr) -> Option<()> {
    loop {
        match events.next().await? {
            Ok(e) if e.name.as_deref() == Some(name) => return Some(()),
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "config watch failed; reload with SIGHUP or ctl reload");
                return None;
            }
        }
    }
}

//! Reloads the config when its file changes. The directory is watched, not the file: editors
//! that save by writing a new file and renaming it over the old one replace the inode a file
//! watch would follow. Events are filtered by file name and debounced, so a save in several
//! steps (truncate then write, write twice, rename) becomes one reload; the operator also
//! skips a reload whose text did not change.

use crate::control::{Action, Job, Origin};
use notify::event::{AccessKind, AccessMode};
use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use std::ffi::OsString;
use std::path::Path;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Quiet time after the last event before reloading: longer than the gap between the steps
/// of one save, short enough to feel immediate.
const SETTLE: Duration = Duration::from_millis(300);

/// Watching; dropping it stops the watcher and its task.
pub struct ConfigWatch {
    _watcher: RecommendedWatcher,
    task: JoinHandle<()>,
}

impl Drop for ConfigWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl ConfigWatch {
    pub fn start(config: &Path, jobs: mpsc::Sender<Job>) -> notify::Result<ConfigWatch> {
        let absolute = std::path::absolute(config)?;
        let name: OsString = absolute.file_name().map(OsString::from).unwrap_or_default();
        let dir = absolute.parent().map_or_else(|| Path::new("/").to_owned(), Path::to_owned);
        let (tx, mut rx) = mpsc::unbounded_channel::<()>();
        let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| match res {
            Ok(event) if touches(&event, &name) => {
                let _ = tx.send(());
            }
            Ok(_) => {}
            Err(e) => tracing::debug!(error = %e, "config watch error"),
        })?;
        watcher.watch(&dir, RecursiveMode::NonRecursive)?;
        let task = tokio::spawn(async move {
            while rx.recv().await.is_some() {
                // Wait until the file has been quiet for SETTLE.
                while let Ok(Some(())) = tokio::time::timeout(SETTLE, rx.recv()).await {}
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
        Ok(ConfigWatch { _watcher: watcher, task })
    }
}

/// Whether an event may have changed the config file's content: any event naming it except
/// opening and reading it (the launcher's own reload reads it).
fn touches(event: &notify::Event, name: &OsString) -> bool {
    let read_only = matches!(
        event.kind,
        EventKind::Access(AccessKind::Open(_) | AccessKind::Read | AccessKind::Close(AccessMode::Read))
    );
    !read_only && event.paths.iter().any(|p| p.file_name() == Some(name.as_os_str()))
}

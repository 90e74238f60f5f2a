//! Reloads the config when its file changes. Events are filtered by file name and debounced,
//! so a save in several steps (write then rename, two writes) becomes one reload; the manager
//! also skips a reload whose text did not change.
//!
//! What is watched is the file itself while it exists, and its directory only while it does
//! not. The database usually sits in the config's directory, and a directory watch (notify
//! subscribes to every open and write there) wakes the watcher for every WAL write: at a
//! thousand agents a measurable part of the launcher's CPU, for nothing. A file watch follows
//! an inode, though, and editors that save by writing a new file and renaming it over the old
//! one replace that inode, as does a file deleted and written again: so after every change the
//! watch is set up anew on whatever the path names then (the directory if nothing), before the
//! reload reads the file. A change after that raises a new event; one before it is in what the
//! reload reads.

use super::{Action, Input, Job, Origin};
use notify::event::AccessKind;
use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Quiet time after the last event before reloading: longer than the gap between the steps
/// of one save, short enough to feel immediate.
const SETTLE: Duration = Duration::from_millis(300);

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
    pub fn start(config: &Path, inbox: mpsc::Sender<Input>) -> std::io::Result<ConfigWatch> {
        let file = std::path::absolute(config)?;
        // One slot: any number of events before the task looks is one change.
        let (hint, mut hints) = mpsc::channel(1);
        let mut watcher = arm(&file, &hint).map_err(std::io::Error::other)?;
        let task = tokio::spawn(async move {
            while hints.recv().await.is_some() {
                // Wait until the file has been quiet for SETTLE.
                while let Ok(Some(())) = tokio::time::timeout(SETTLE, hints.recv()).await {}
                watcher = match arm(&file, &hint) {
                    Ok(w) => w,
                    Err(e) => {
                        tracing::warn!(error = %e, "config watch failed; reload with SIGHUP or ctl reload");
                        return;
                    }
                };
                let job = Job {
                    action: Action::Reload,
                    agents: Vec::new(),
                    origin: Origin::FileChanged,
                    reply: None,
                };
                if inbox.send(Input::Job(job)).await.is_err() {
                    return;
                }
            }
            drop(watcher);
        });
        Ok(ConfigWatch { task })
    }
}

/// A watcher on `file` if it exists, else on its directory, that hints at every event naming
/// the file. Opening it is not a change (the reload itself opens it); the other files of the
/// directory (the database's `-wal` and `-shm`, closed by every reader) are skipped.
fn arm(file: &Path, hint: &mpsc::Sender<()>) -> notify::Result<RecommendedWatcher> {
    let name: OsString = file.file_name().map(OsString::from).unwrap_or_default();
    let hint = hint.clone();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let relevant = match event {
            Ok(e) if e.need_rescan() => true,
            Ok(e) => {
                !matches!(e.kind, EventKind::Access(AccessKind::Open(_)))
                    && e.paths.iter().any(|p| p.file_name() == Some(name.as_os_str()))
            }
            Err(e) => {
                tracing::debug!(error = %e, "config watch error; watching anew");
                true
            }
        };
        if relevant {
            // A full slot already means "look again": nothing is lost.
            let _ = hint.try_send(());
        }
    })?;
    match watcher.watch(file, RecursiveMode::NonRecursive) {
        Err(e) if matches!(e.kind, notify::ErrorKind::PathNotFound) => {
            let dir = file.parent().map_or_else(|| PathBuf::from("/"), Path::to_owned);
            watcher.watch(&dir, RecursiveMode::NonRecursive)?;
        }
        result => result?,
    }
    Ok(watcher)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Waits for the next reload the watch asks for; fails after a deadline that only bounds
    /// a hang.
    async fn reload(rx: &mut mpsc::Receiver<Input>) {
        let input = tokio::time::timeout(Duration::from_secs(10), rx.recv()).await;
        let Some(Input::Job(job)) = input.expect("no reload within 10 s") else { panic!("the watch ended") };
        assert_eq!((job.action, job.origin), (Action::Reload, Origin::FileChanged));
    }

    /// Nothing asked for within a few settle times.
    async fn quiet(rx: &mut mpsc::Receiver<Input>) {
        assert!(tokio::time::timeout(SETTLE * 3, rx.recv()).await.is_err(), "an unexpected reload");
    }

    #[tokio::test]
    async fn every_way_of_saving_reloads_and_other_files_do_not() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("agents.toml");
        std::fs::write(&config, "a").unwrap();
        let (tx, mut rx) = mpsc::channel(8);
        let _watch = ConfigWatch::start(&config, tx).unwrap();

        // The database's files beside it, and reading the config, are not changes.
        std::fs::write(dir.path().join("state.db-wal"), "x").unwrap();
        std::fs::read(&config).unwrap();
        quiet(&mut rx).await;

        // Written in place.
        std::fs::write(&config, "b").unwrap();
        reload(&mut rx).await;
        // Written beside and renamed over: the inode watched before is gone.
        std::fs::write(dir.path().join("agents.toml.tmp"), "c").unwrap();
        std::fs::rename(dir.path().join("agents.toml.tmp"), &config).unwrap();
        reload(&mut rx).await;
        // The new inode is watched.
        std::fs::write(&config, "d").unwrap();
        reload(&mut rx).await;
        // Deleted, then back.
        std::fs::remove_file(&config).unwrap();
        reload(&mut rx).await;
        std::fs::write(dir.path().join("state.db-wal"), "y").unwrap();
        quiet(&mut rx).await;
        std::fs::write(&config, "e").unwrap();
        reload(&mut rx).await;
        std::fs::write(&config, "f").unwrap();
        reload(&mut rx).await;
    }

    #[tokio::test]
    async fn a_save_in_several_steps_is_one_reload() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("agents.toml");
        std::fs::write(&config, "a").unwrap();
        let (tx, mut rx) = mpsc::channel(8);
        let _watch = ConfigWatch::start(&config, tx).unwrap();
        std::fs::write(&config, "b").unwrap();
        std::fs::write(dir.path().join("agents.toml.tmp"), "c").unwrap();
        std::fs::rename(dir.path().join("agents.toml.tmp"), &config).unwrap();
        reload(&mut rx).await;
        quiet(&mut rx).await;
    }
}

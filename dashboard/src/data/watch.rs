//! Wake-ups when the database may have changed: a notify watcher on the database's directory,
//! filtered to the database and its `-wal` (every commit writes the WAL). An event is only a
//! hint to check `PRAGMA data_version`; where file events do not arrive (some network or
//! container file systems) the callers' fallback timer does the same job.

use crossbeam_channel::{Receiver, Sender};
use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Most one refresh per this interval: file events come in bursts (WAL write, then -shm), and
/// a commit should be on screen within about this long.
pub const THROTTLE: Duration = Duration::from_millis(100);
/// How often `data_version` is checked when no file event arrives.
pub const FALLBACK: Duration = Duration::from_secs(1);

pub struct DbWatch {
    /// Kept alive for as long as events are wanted; `None` when watching failed.
    watcher: Option<RecommendedWatcher>,
    db: PathBuf,
    rx: Receiver<()>,
    tx: Sender<()>,
}

impl DbWatch {
    pub fn new(db: &Path) -> DbWatch {
        // One slot: any number of events before the reader wakes up is one wake-up.
        let (tx, rx) = crossbeam_channel::bounded(1);
        let mut w = DbWatch { watcher: None, db: db.to_owned(), rx, tx };
        w.retry();
        w
    }

    /// Whether file events are arriving (false: only the fallback timer works).
    pub fn active(&self) -> bool {
        self.watcher.is_some()
    }

    /// Tries again to watch, for a directory that did not exist at first.
    pub fn retry(&mut self) {
        if self.watcher.is_some() {
            return;
        }
        match start(&self.db, self.tx.clone()) {
            Ok(w) => self.watcher = Some(w),
            Err(e) => tracing::debug!(error = %e, db = %self.db.display(), "not watching; polling only"),
        }
    }

    /// Fires (at most once per batch of events) when the database or its WAL changed.
    pub fn changes(&self) -> &Receiver<()> {
        &self.rx
    }

    /// Blocks until a change is reported or [`FALLBACK`] passes, then at least until
    /// [`THROTTLE`] after `since`, so a busy writer cannot make a follower spin.
    pub fn wait(&mut self, since: std::time::Instant) {
        let _ = self.rx.recv_timeout(FALLBACK);
        std::thread::sleep(THROTTLE.saturating_sub(since.elapsed()));
        self.retry();
    }
}

fn start(db: &Path, tx: Sender<()>) -> notify::Result<RecommendedWatcher> {
    let dir = match db.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    let name = db.file_name().map(OsString::from).unwrap_or_default();
    let mut wal = name.clone();
    wal.push("-wal");
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        let Ok(event) = res else { return };
        let relevant_kind =
            matches!(event.kind, EventKind::Create(_) | EventKind::Modify(_) | EventKind::Remove(_));
        let relevant_path = event
            .paths
            .iter()
            .any(|p| p.file_name().is_some_and(|n| n == name.as_os_str() || n == wal.as_os_str()));
        if relevant_kind && relevant_path {
            // A full slot already means "check again": nothing is lost by dropping this one.
            let _ = tx.try_send(());
        }
    })?;
    watcher.watch(&dir, RecursiveMode::NonRecursive)?;
    Ok(watcher)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wal_writes_wake_and_other_files_do_not() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("s.db");
        let w = DbWatch::new(&db);
        assert!(w.active());
        std::fs::write(dir.path().join("unrelated.txt"), "x").unwrap();
        std::fs::write(dir.path().join("s.db-shm"), "x").unwrap();
        assert!(w.changes().recv_timeout(Duration::from_millis(200)).is_err());
        std::fs::write(dir.path().join("s.db-wal"), "x").unwrap();
        assert!(w.changes().recv_timeout(Duration::from_secs(5)).is_ok());
    }

    #[test]
    fn missing_directory_means_polling_only() {
        let w = DbWatch::new(Path::new("/nonexistent-agentvisor-dir/s.db"));
        assert!(!w.active());
    }
}

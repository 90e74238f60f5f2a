//! Wake-ups when the database may have changed. While it is quiet, a notify watcher on the
//! database's directory, filtered to the database and its `-wal` (every commit writes the WAL),
//! wakes the reader at the first commit. While it keeps changing, the watcher is dropped and
//! `PRAGMA data_version` is checked every [`THROTTLE`] instead: a busy writer makes an event per
//! WAL write, and receiving them cost a dashboard more than ten checks a second do
//! (docs/architecture.md has the figures). An
//! event is only a hint to check `data_version`; where file events do not arrive (some network
//! or container file systems) the callers' fallback timer does the same job.

use crossbeam_channel::{Receiver, Sender};
use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Most one refresh per this interval, and how often a changing database is checked: a commit
/// should be on screen within about this long.
pub const THROTTLE: Duration = Duration::from_millis(100);
/// How often `data_version` is checked when no file event arrives.
pub const FALLBACK: Duration = Duration::from_secs(1);
/// How long the database must stay unchanged before file events are waited for again: longer
/// than a launcher's routine commit interval (1 s), so a steadily committing launcher does not
/// make the watcher start and stop every second.
const QUIET: Duration = Duration::from_secs(3);

pub struct DbWatch {
    /// Kept alive for as long as events are wanted; `None` while polling, or when watching
    /// failed.
    watcher: Option<RecommendedWatcher>,
    /// When a check last found the database changed; `None` until one did.
    changed_at: Option<Instant>,
    db: PathBuf,
    rx: Receiver<()>,
    tx: Sender<()>,
}

impl DbWatch {
    pub fn new(db: &Path) -> DbWatch {
        // One slot: any number of events before the reader wakes up is one wake-up.
        let (tx, rx) = crossbeam_channel::bounded(1);
        let mut w = DbWatch { watcher: None, changed_at: None, db: db.to_owned(), rx, tx };
        w.retry();
        w
    }

    /// Whether file events are arriving (false: polling, or only the fallback timer works).
    pub fn active(&self) -> bool {
        self.watcher.is_some()
    }

    /// Tries again to watch, for a directory that did not exist at first; not while the
    /// database keeps changing.
    pub fn retry(&mut self) {
        if self.watcher.is_some() || self.changing() {
            return;
        }
        match start(&self.db, self.tx.clone()) {
            Ok(w) => self.watcher = Some(w),
            Err(e) => tracing::debug!(error = %e, db = %self.db.display(), "not watching; polling only"),
        }
    }

    /// Tells what a check of `data_version` found: a change stops the watcher until the
    /// database has been quiet for [`QUIET`].
    pub fn checked(&mut self, changed: bool) {
        if changed {
            self.changed_at = Some(Instant::now());
            self.watcher = None;
        } else if !self.active() && !self.changing() {
            self.retry();
            if self.active() {
                // A commit between that check and the watcher's start raised no event: one
                // more check, now that events arrive.
                let _ = self.tx.try_send(());
            }
        }
    }

    fn changing(&self) -> bool {
        self.changed_at.is_some_and(|t| t.elapsed() < QUIET)
    }

    /// How long to wait for [`DbWatch::changes`] before checking anyway.
    pub fn timeout(&self) -> Duration {
        if self.changing() { THROTTLE } else { FALLBACK }
    }

    /// Fires (at most once per batch of events) when the database or its WAL changed.
    pub fn changes(&self) -> &Receiver<()> {
        &self.rx
    }

    /// Blocks until a change is reported or [`DbWatch::timeout`] passes, then at least until
    /// [`THROTTLE`] after `since`, so a busy writer cannot make a follower spin.
    pub fn wait(&mut self, since: Instant) {
        let _ = self.rx.recv_timeout(self.timeout());
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
    fn a_changing_database_is_polled_and_a_quiet_one_watched_again() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = DbWatch::new(&dir.path().join("s.db"));
        assert!(w.active());
        assert_eq!(w.timeout(), FALLBACK);
        w.checked(true);
        assert!(!w.active(), "a change stops the watcher");
        assert_eq!(w.timeout(), THROTTLE);
        w.checked(false);
        w.retry();
        assert!(!w.active(), "not watched again before it has been quiet");
        w.changed_at = Some(Instant::now() - QUIET);
        w.checked(false);
        assert!(w.active());
        assert_eq!(w.timeout(), FALLBACK);
        assert!(w.changes().try_recv().is_ok(), "one more check once events arrive again");
    }

    #[test]
    fn missing_directory_means_polling_only() {
        let w = DbWatch::new(Path::new("/nonexistent-agentvisor-dir/s.db"));
        assert!(!w.active());
    }
}

//! Checkpoints on their own thread and connection, so that no commit waits for one.
//!
//! SQLite's automatic checkpoint runs inside the commit that brings the WAL past 1,000 pages:
//! that commit also copies the WAL's pages into the database file and syncs both, which made
//! it the slowest commit by far (a model of the writer's load: p99 16-19 ms with automatic
//! checkpoints, 9-10 ms with the same checkpoints outside the commits). The writer turns the
//! automatic checkpoint off, counts the pages its commits append to the WAL, and past the
//! same 1,000 pages wakes this thread, which runs a PASSIVE checkpoint: it copies what no
//! reader still needs and never blocks the writer or a reader. Keeping the WAL under its
//! limit when readers hold it back stays with the writer (`bound_wal`).

use crate::error::{AtPath, Result};
use crossbeam_channel::{Receiver, Sender, TrySendError};
use rusqlite::{Connection, OpenFlags};
use std::path::Path;
use std::thread::JoinHandle;
use std::time::Duration;

/// WAL pages appended between two checkpoints: SQLite's own default for the automatic one.
pub(crate) const CHECKPOINT_PAGES: u64 = 1000;

/// The checkpoint thread, as the writer sees it.
pub(crate) struct Checkpointer {
    wake: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
    /// WAL pages appended since the checkpoint thread was last woken.
    pages: u64,
}

impl Checkpointer {
    /// Opens the checkpoint connection and starts its thread. The database must exist, in WAL
    /// mode (the writer has opened it).
    pub(crate) fn start(path: &Path, busy_timeout: Duration) -> Result<Checkpointer> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags).at(path)?;
        conn.busy_timeout(busy_timeout).at(path)?;
        // A checkpoint syncs as its connection's `synchronous` says: the writer's setting.
        conn.pragma_update(None, "synchronous", "NORMAL").at(path)?;
        conn.pragma_update(None, "wal_autocheckpoint", 0).at(path)?;
        // Wakes that arrive while a checkpoint runs fold into one.
        let (wake, woken) = crossbeam_channel::bounded(1);
        let db = path.to_owned();
        let thread = std::thread::Builder::new()
            .name("checkpointer".into())
            .spawn(move || run(&conn, &db, &woken))
            .at(path)?;
        Ok(Checkpointer { wake: Some(wake), thread: Some(thread), pages: 0 })
    }

    /// Counts the pages a commit appended to the WAL; wakes the thread every
    /// [`CHECKPOINT_PAGES`].
    pub(crate) fn appended(&mut self, pages: u64) {
        self.pages += pages;
        if self.pages < CHECKPOINT_PAGES {
            return;
        }
        self.pages = 0;
        if let Some(wake) = &self.wake
            && let Err(TrySendError::Disconnected(())) = wake.try_send(())
        {
            // Said once: from now on the writer's own bound on the WAL is all there is.
            tracing::warn!("the store's checkpoint thread is gone; the WAL is bounded by the writer alone");
            self.wake = None;
        }
    }
}

impl Drop for Checkpointer {
    /// Lets the thread run a last checkpoint and waits for it.
    fn drop(&mut self) {
        drop(self.wake.take());
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!("the store's checkpoint thread panicked");
        }
    }
}

fn run(conn: &Connection, path: &Path, woken: &Receiver<()>) {
    // Every wake, and once more when the writer has gone, so that what it wrote last is in the
    // database file before the launcher exits.
    while woken.recv().is_ok() {
        checkpoint(conn, path);
    }
    checkpoint(conn, path);
}

fn checkpoint(conn: &Connection, path: &Path) {
    let result = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
        Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))
    });
    match result {
        Ok((busy, wal_pages, copied)) => {
            tracing::trace!(busy, wal_pages, copied, "WAL checkpoint");
        }
        Err(e) => tracing::debug!(error = %e, db = %path.display(), "WAL checkpoint failed"),
    }
}

/// Pages this connection has written to the WAL since the last call (SQLite's
/// `SQLITE_DBSTATUS_CACHE_WRITE`, read and reset).
#[allow(unsafe_code)]
pub(crate) fn pages_written(conn: &Connection) -> u64 {
    let (mut current, mut highwater) = (0, 0);
    // SAFETY: `handle` is this open connection's, used on the thread that owns it and not
    // kept; sqlite3_db_status only reads and resets a counter of that connection.
    let rc = unsafe {
        rusqlite::ffi::sqlite3_db_status(
            conn.handle(),
            rusqlite::ffi::SQLITE_DBSTATUS_CACHE_WRITE,
            &mut current,
            &mut highwater,
            1,
        )
    };
    if rc == rusqlite::ffi::SQLITE_OK { u64::try_from(current).unwrap_or(0) } else { 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_the_pages_a_commit_appends_to_the_wal_once() {
        let dir = tempfile::tempdir().unwrap();
        let conn = Connection::open(dir.path().join("c.db")).unwrap();
        let mode: String = conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0)).unwrap();
        assert_eq!(mode, "wal");
        conn.execute_batch("CREATE TABLE t (x BLOB)").unwrap();
        pages_written(&conn);
        conn.execute("INSERT INTO t VALUES (zeroblob(100000))", []).unwrap();
        // About 25 pages of 4 KiB for the blob, plus the table's root.
        let pages = pages_written(&conn);
        assert!((24..40).contains(&pages), "{pages} pages");
        assert_eq!(pages_written(&conn), 0);
    }
}

//! Noticing that the database's files were deleted or replaced under the running writer.
//!
//! SQLite keeps writing through the descriptors it opened: into a file that was deleted (an
//! `rm` of the database), or into the old file while another one sits at the path (a backup
//! moved over it). Nothing fails, and every dashboard reads another file or none. So the writer
//! compares the device and inode now at the paths of the database, its `-wal` and its `-shm`
//! with those it opened: a `stat` by path, which opens nothing (closing any descriptor of the
//! database would drop SQLite's locks).

use crate::paths;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileId {
    dev: u64,
    ino: u64,
}

/// The identity of the file at `path`; `None` when nothing is there.
fn file_id(path: &Path) -> std::io::Result<Option<FileId>> {
    match std::fs::metadata(path) {
        Ok(m) => Ok(Some(FileId { dev: m.dev(), ino: m.ino() })),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// The database's files and the identity each had when the writer opened it.
pub(crate) struct DbFiles {
    /// The database, its WAL and its shared-memory index, in that order. A file not there at
    /// open is learnt the first time it is seen (SQLite creates the last two as it needs them).
    files: [(PathBuf, Option<FileId>); 3],
}

impl DbFiles {
    /// Notes what is at the paths now: call it right after the database is opened.
    pub(crate) fn new(db: &Path) -> DbFiles {
        let files = [db.to_owned(), paths::wal_path(db), paths::shm_path(db)].map(|p| {
            let id = file_id(&p).ok().flatten();
            (p, id)
        });
        DbFiles { files }
    }

    /// Why the files the writer has open are no longer the ones at their paths, if they are not.
    pub(crate) fn check(&mut self) -> Option<String> {
        for (i, (path, id)) in self.files.iter_mut().enumerate() {
            // A file that cannot be looked at (a directory made unreadable) is not known to be gone.
            let Ok(now) = file_id(path) else { continue };
            let now = match (*id, now) {
                (None, now) => {
                    *id = now;
                    continue;
                }
                (Some(was), now) if now == Some(was) => continue,
                (Some(was), None) => format!("inode {}, now missing", was.ino),
                (Some(was), Some(now)) if now.ino != was.ino => format!("inode {}, now {}", was.ino, now.ino),
                (Some(was), Some(_)) => format!("inode {} on another device now", was.ino),
            };
            let what = if i == 0 { "the database" } else { "the database's file" };
            return Some(format!(
                "{what} {} was deleted or replaced while the launcher ran ({now})",
                path.display()
            ));
        }
        None
    }

    /// Once the writer's connections are closed: removes the WAL and index that are still the
    /// lost database's, so that SQLite never applies that old log to a file that now has the
    /// database's name.
    pub(crate) fn remove_leftovers(&self) {
        for (path, id) in &self.files[1..] {
            if id.is_some()
                && file_id(path).ok().flatten() == *id
                && let Err(e) = std::fs::remove_file(path)
            {
                tracing::warn!(error = %e, file = %path.display(), "could not remove the lost database's file");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::DbFiles;

    #[test]
    fn a_deleted_or_replaced_file_is_named_and_a_new_one_learnt() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("s.db");
        std::fs::write(&db, "x").unwrap();
        let mut files = DbFiles::new(&db);
        assert_eq!(files.check(), None);
        let wal = crate::paths::wal_path(&db);
        std::fs::write(&wal, "w").unwrap();
        assert_eq!(files.check(), None, "a WAL that appears is learnt, not a replacement");
        std::fs::remove_file(&wal).unwrap();
        let why = files.check().unwrap();
        assert!(why.contains("s.db-wal was deleted or replaced") && why.ends_with("now missing)"), "{why}");

        let mut files = DbFiles::new(&db);
        let other = dir.path().join("other.db");
        std::fs::write(&other, "y").unwrap();
        std::fs::rename(&other, &db).unwrap();
        let why = files.check().unwrap();
        assert!(why.starts_with("the database ") && why.contains("s.db was deleted or replaced"), "{why}");
        assert!(why.contains(", now "), "{why}");
    }
}

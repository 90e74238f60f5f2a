//! Errors the store reports to its users. Each names the database file, because an operator
//! usually has more than one and needs to know which one is wrong.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("no database at {path} (the launcher creates it on its first start)")]
    NotFound { path: PathBuf },

    #[error("{path} is not initialised yet (the launcher is still creating it)")]
    NotInitialized { path: PathBuf },

    #[error(
        "{path} has schema version {found}, newer than the {known} this program knows; upgrade agentvisor"
    )]
    TooNew { path: PathBuf, found: i64, known: i64 },

    #[error(
        "{path} has schema version {found}, older than the {known} this program reads; it was written by an older launcher, and the current launcher upgrades it when it starts"
    )]
    TooOld { path: PathBuf, found: i64, known: i64 },

    #[error("{path} is not an Agentvisor database ({why}); refusing to touch it")]
    Foreign { path: PathBuf, why: String },

    #[error(
        "{path} is on a network filesystem ({fs}); SQLite's WAL mode needs local storage. Run the launcher and the dashboard on the machine that holds the disk"
    )]
    NetworkFilesystem { path: PathBuf, fs: String },

    #[error("{path}: journal_mode is {mode}, expected wal")]
    NotWal { path: PathBuf, mode: String },

    #[error("{path}: {source}")]
    Sqlite {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },

    #[error("{path}: {source}")]
    Pool {
        path: PathBuf,
        #[source]
        source: r2d2::Error,
    },

    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("the store's writer thread has stopped")]
    WriterGone,

    #[error(
        "the launcher is not running on {path} (SQLite's {missing} is absent), and a reader run by uid {reader} would create it owned by itself, which the launcher's user (uid {owner}) might not be able to open; start the launcher, or read as uid {owner} or root"
    )]
    LauncherFilesMissing { path: PathBuf, missing: String, reader: u32, owner: u32 },
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Attaches the database path to errors from rusqlite, r2d2 and std::io.
pub(crate) trait AtPath<T> {
    fn at(self, path: &std::path::Path) -> Result<T>;
}

impl<T> AtPath<T> for std::result::Result<T, rusqlite::Error> {
    fn at(self, path: &std::path::Path) -> Result<T> {
        self.map_err(|source| StoreError::Sqlite { path: path.to_owned(), source })
    }
}

impl<T> AtPath<T> for std::result::Result<T, r2d2::Error> {
    fn at(self, path: &std::path::Path) -> Result<T> {
        self.map_err(|source| StoreError::Pool { path: path.to_owned(), source })
    }
}

impl<T> AtPath<T> for std::result::Result<T, std::io::Error> {
    fn at(self, path: &std::path::Path) -> Result<T> {
        self.map_err(|source| StoreError::Io { path: path.to_owned(), source })
    }
}

//! Where the database lives. Both binaries resolve it with this one function so that a dashboard
//! started in the same directory (or with the same environment) finds the launcher's file.

use std::fmt;
use std::path::{Path, PathBuf};

/// The environment variable (also read from `.env`) naming the database file.
pub const DB_ENV: &str = "SHARED_STATE_SQLITE";
/// The file used when nothing else names one, relative to the working directory.
pub const DEFAULT_DB: &str = "shared_state.db";

/// How a path was chosen, so error and waiting screens can say why this file and not another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathSource {
    Flag,
    Env(String),
    DotEnv { var: String, file: PathBuf },
    Default,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub path: PathBuf,
    pub source: PathSource,
}

impl fmt::Display for PathSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PathSource::Flag => write!(f, "from the command line"),
            PathSource::Env(var) => write!(f, "from ${var}"),
            PathSource::DotEnv { var, file } => write!(f, "from {var} in {}", file.display()),
            PathSource::Default => write!(f, "the default"),
        }
    }
}

/// Resolves a path: `flag` > environment variable `var` > `var` in `./.env` > `default`.
///
/// The real environment wins over `.env`, as dotenvy does. `.env` is read without being loaded
/// into the process environment, so the launcher does not pass it on to agents.
pub fn resolve(flag: Option<&Path>, var: &str, default: &str) -> Resolved {
    resolve_in(flag, var, default, Path::new("."), |v| std::env::var_os(v))
}

/// The database path, resolved as [`resolve`] with `SHARED_STATE_SQLITE` and `shared_state.db`.
pub fn resolve_db(flag: Option<&Path>) -> Resolved {
    resolve(flag, DB_ENV, DEFAULT_DB)
}

/// [`resolve`] against an explicit working directory and environment, for tests.
pub fn resolve_in(
    flag: Option<&Path>,
    var: &str,
    default: &str,
    cwd: &Path,
    env: impl Fn(&str) -> Option<std::ffi::OsString>,
) -> Resolved {
    if let Some(p) = flag {
        return Resolved { path: p.to_owned(), source: PathSource::Flag };
    }
    if let Some(v) = env(var).filter(|v| !v.is_empty()) {
        return Resolved { path: PathBuf::from(v), source: PathSource::Env(var.to_owned()) };
    }
    let dotenv = cwd.join(".env");
    if let Ok(iter) = dotenvy::from_path_iter(&dotenv) {
        for (key, value) in iter.flatten() {
            if key == var && !value.is_empty() {
                return Resolved {
                    path: cwd.join(value),
                    source: PathSource::DotEnv { var: var.to_owned(), file: dotenv },
                };
            }
        }
    }
    Resolved { path: cwd.join(default), source: PathSource::Default }
}

/// The launcher's lock file, beside the database: holding it means "I am the writer".
pub fn lock_path(db: &Path) -> PathBuf {
    sibling(db, ".lock")
}

/// The launcher's control socket, beside the database.
pub fn socket_path(db: &Path) -> PathBuf {
    sibling(db, ".sock")
}

/// SQLite's write-ahead log beside the database.
pub fn wal_path(db: &Path) -> PathBuf {
    sibling(db, "-wal")
}

/// SQLite's shared-memory index of the write-ahead log, beside the database.
pub fn shm_path(db: &Path) -> PathBuf {
    sibling(db, "-shm")
}

fn sibling(db: &Path, suffix: &str) -> PathBuf {
    let mut s = db.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsString;

    fn env_with(value: Option<&str>) -> impl Fn(&str) -> Option<OsString> {
        let value = value.map(OsString::from);
        move |v| if v == DB_ENV { value.clone() } else { None }
    }

    #[test]
    fn precedence_flag_env_dotenv_default() {
        let dir = tempfile::tempdir().unwrap();
        let cwd = dir.path();

        let r = resolve_in(None, DB_ENV, DEFAULT_DB, cwd, env_with(None));
        assert_eq!(r, Resolved { path: cwd.join(DEFAULT_DB), source: PathSource::Default });

        std::fs::write(cwd.join(".env"), "OTHER=1\nSHARED_STATE_SQLITE=from-dotenv.db\n").unwrap();
        let r = resolve_in(None, DB_ENV, DEFAULT_DB, cwd, env_with(None));
        assert_eq!(r.path, cwd.join("from-dotenv.db"));
        assert!(matches!(r.source, PathSource::DotEnv { .. }));

        let r = resolve_in(None, DB_ENV, DEFAULT_DB, cwd, env_with(Some("/tmp/env.db")));
        assert_eq!(r.path, PathBuf::from("/tmp/env.db"));
        assert_eq!(r.source, PathSource::Env(DB_ENV.into()));

        let flag = Path::new("/tmp/flag.db");
        let r = resolve_in(Some(flag), DB_ENV, DEFAULT_DB, cwd, env_with(Some("/tmp/env.db")));
        assert_eq!(r, Resolved { path: flag.to_owned(), source: PathSource::Flag });
    }

    #[test]
    fn empty_values_fall_through_and_bad_dotenv_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(".env"), "this is not = valid \" dotenv\nSHARED_STATE_SQLITE=\n")
            .unwrap();
        let r = resolve_in(None, DB_ENV, DEFAULT_DB, dir.path(), env_with(Some("")));
        assert_eq!(r.source, PathSource::Default);
    }

    #[test]
    fn siblings() {
        assert_eq!(lock_path(Path::new("/a/s.db")), PathBuf::from("/a/s.db.lock"));
        assert_eq!(wal_path(Path::new("s.db")), PathBuf::from("s.db-wal"));
    }
}

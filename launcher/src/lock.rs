//! One launcher per database: an advisory lock on a separate lock file beside it (never on
//! the database itself: closing any descriptor of that file would drop SQLite's own locks).
//! The holder writes its PID into the file so a refused launcher can name it.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Held for as long as the launcher runs; the kernel releases it when the process ends, even
/// by SIGKILL.
pub struct LauncherLock {
    _file: File,
}

pub fn acquire(db: &Path) -> Result<LauncherLock, String> {
    let path = agentvisor_shared::paths::lock_path(db);
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&path)
        .map_err(|e| format!("cannot open the lock file {}: {e}", path.display()))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = holder.trim();
            let who = if holder.is_empty() {
                "another launcher".to_owned()
            } else {
                format!("launcher PID {holder}")
            };
            return Err(format!(
                "{who} is already running on {} (it holds the lock {}); only one launcher may write a database",
                db.display(),
                path.display()
            ));
        }
        Err(TryLockError::Error(e)) => return Err(format!("cannot lock {}: {e}", path.display())),
    }
    let pid = std::process::id();
    let written = file.set_len(0).and_then(|()| file.rewind()).and_then(|()| writeln!(file, "{pid}"));
    if let Err(e) = written {
        tracing::warn!(error = %e, "could not write the PID into {}", path.display());
    }
    Ok(LauncherLock { _file: file })
}

//! Who may read the launcher's files: the database, its `-wal`/`-shm` and the control socket
//! are owner read-write, or owner and group read-write with `[launcher] group = true` (for a
//! dashboard group); other users get nothing either way. The lock file and the agents' socket
//! directory are always owner-only.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

pub fn file_mode(group: bool) -> u32 {
    if group { 0o660 } else { 0o600 }
}

/// Brings an existing database's files to `mode` (a database created by an earlier launcher
/// under another setting). By path: SQLite's descriptors and locks are untouched.
pub fn apply_to_existing(db: &Path, mode: u32) {
    let mut files = vec![db.to_owned()];
    for suffix in ["-wal", "-shm"] {
        let mut s = db.as_os_str().to_owned();
        s.push(suffix);
        files.push(PathBuf::from(s));
    }
    for f in files {
        let Ok(meta) = std::fs::metadata(&f) else { continue };
        if meta.permissions().mode() & 0o777 == mode {
            continue;
        }
        match std::fs::set_permissions(&f, std::fs::Permissions::from_mode(mode)) {
            Ok(()) => tracing::info!("set the mode of {} to {mode:o}", f.display()),
            Err(e) => tracing::warn!(error = %e, "cannot set the mode of {} to {mode:o}", f.display()),
        }
    }
}

//! One launcher per database: an advisory lock on a separate lock file beside it (never on
//! the database itself: closing any descriptor of that file would drop SQLite's own locks).
//! The holder writes its PID into the file so a refused launcher can name it.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Held for as long as the launcher runs; the kernel releases it when the process ends, even
/// by SIGKILL.
pub struct LauncherLock {
    _file: File,
}

pub fn acquire(db: &Path) -> Result<LauncherLock, String> {
    let path = agentvisor_shared::paths::lock_path(db);
    // O_NOFOLLOW: a symbolic link planted here must not make the launcher truncate its target.
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK)
        .open(&path)
        .map_err(|e| match e.raw_os_error() {
            Some(nix::libc::ELOOP) => format!(
                "the lock file {} is a symbolic link; refusing to follow it (remove it)",
                path.display()
            ),
            _ => format!("cannot open the lock file {}: {e}", path.display()),
        })?;
    let meta = file.metadata().map_err(|e| format!("cannot inspect {}: {e}", path.display()))?;
    crate::daemon::permissions::owned_by_me(&path, &meta)?;
    if !meta.file_type().is_file() || meta.nlink() != 1 {
        return Err(format!(
            "the lock file {} is not a plain file of its own (a special file or a hard link); refusing to use it (remove it)",
            path.display()
        ));
    }
    if meta.mode() & 0o7777 != 0o600 {
        // Descriptor-based, so it is this file's mode that changes whatever the path names now.
        let _ = file.set_permissions(std::fs::Permissions::from_mode(0o600));
    }
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = Read::take(&mut file, 32).read_to_string(&mut holder);
            // Only a PID is quoted: the file's text is not the operator's to trust.
            let who = match holder.trim().parse::<u32>() {
                Ok(pid) => format!("launcher PID {pid}"),
                Err(_) => "another launcher".to_owned(),
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

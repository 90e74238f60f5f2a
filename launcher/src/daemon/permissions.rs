//! Who may read the launcher's files: the database, its `-wal`/`-shm` and the control socket
//! are owner read-write, or owner and group read-write with `[launcher] group = true` (for a
//! dashboard group); other users get nothing either way. The lock file and the agents' socket
//! directory are always owner-only.

use std::fs::Metadata;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
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

/// `Err` naming the owner when `meta` (of `path`) does not belong to the launcher's user.
pub fn owned_by_me(path: &Path, meta: &Metadata) -> Result<(), String> {
    let me = nix::unistd::geteuid().as_raw();
    if meta.uid() == me {
        return Ok(());
    }
    Err(format!(
        "{} is owned by {}, not by the launcher's user {}: refusing to use a file another user controls (remove it, or run the launcher as its owner)",
        path.display(),
        user_name(meta.uid()),
        user_name(me)
    ))
}

fn user_name(uid: u32) -> String {
    let name = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid)).ok().flatten();
    name.map_or_else(|| format!("uid {uid}"), |u| format!("{} (uid {uid})", u.name))
}

/// What must hold before the launcher opens (or creates) its database, so that it never adopts
/// files another user planted: the directory is not open to every user without the sticky bit
/// (anyone could swap the files), the database is a regular file of the launcher's user (not a
/// symbolic link), and SQLite's `-wal`/`-shm` are the launcher's, or (with group access) files
/// of the database's group that the launcher can read and write. Also run after opening: a
/// file created in between by someone else is caught then.
pub fn check_existing(db: &Path) -> Result<(), String> {
    let dir = db.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let dir_meta = std::fs::metadata(dir)
        .map_err(|e| format!("cannot inspect the database's directory {}: {e}", dir.display()))?;
    if dir_meta.mode() & 0o002 != 0 && dir_meta.mode() & 0o1000 == 0 {
        return Err(format!(
            "the database's directory {} is writable by every user and has no sticky bit: anyone could replace the launcher's files there; use a directory only the launcher's user (and group) can write",
            dir.display()
        ));
    }
    let Some(db_meta) = plain_file(db)? else { return Ok(()) };
    owned_by_me(db, &db_meta)?;
    for suffix in ["-wal", "-shm"] {
        let mut s = db.as_os_str().to_owned();
        s.push(suffix);
        let f = PathBuf::from(s);
        let Some(meta) = plain_file(&f)? else { continue };
        if owned_by_me(&f, &meta).is_ok() || shared_with_group(&meta, &db_meta) {
            continue;
        }
        return Err(format!(
            "SQLite's {} is owned by {} with group {}, not the launcher's user or the database's group: another program created it while the launcher was stopped (a reader run as that user). With no reader running, remove it and start again; a setgid state directory (mode 2770) gives such files the database's group",
            f.display(),
            user_name(meta.uid()),
            meta.gid()
        ));
    }
    Ok(())
}

/// A file of another user that the launcher may use anyway: one of the database's group, read-
/// and writable by it, beside a database that group may write (`group = true`): whoever made
/// it could have written the database itself.
fn shared_with_group(meta: &Metadata, db: &Metadata) -> bool {
    let gid = meta.gid();
    let in_group = nix::unistd::getegid().as_raw() == gid
        || nix::unistd::getgroups().is_ok_and(|g| g.iter().any(|g| g.as_raw() == gid));
    gid == db.gid() && meta.mode() & 0o060 == 0o060 && db.mode() & 0o020 != 0 && in_group
}

/// The metadata of `path` if it exists, without following a symbolic link; `Err` for a link or
/// anything but a regular file.
fn plain_file(path: &Path) -> Result<Option<Metadata>, String> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_file() => Ok(Some(m)),
        Ok(m) if m.file_type().is_symlink() => {
            let target = std::fs::read_link(path).map(|t| t.display().to_string()).unwrap_or_default();
            Err(format!(
                "{} is a symbolic link (to {target}); the launcher does not follow links for its database files: give it the real path",
                path.display()
            ))
        }
        Ok(_) => Err(format!("{} exists and is not a regular file; refusing to use it", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("cannot inspect {}: {e}", path.display())),
    }
}

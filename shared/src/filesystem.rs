//! Refuses network filesystems: SQLite's WAL mode needs shared memory and POSIX locks that
//! NFS, SMB and FUSE network mounts do not provide reliably, and the failure there is silent
//! corruption, not an error. The type comes from `/proc/self/mountinfo` (Linux); elsewhere the
//! check passes.

use crate::error::{Result, StoreError};
use std::path::{Path, PathBuf};

const NETWORK_FILESYSTEMS: &[&str] = &[
    "nfs",
    "nfs4",
    "cifs",
    "smb3",
    "smbfs",
    "fuse.sshfs",
    "9p",
    "ceph",
    "glusterfs",
    "fuse.glusterfs",
    "afs",
];

/// Fails with [`StoreError::NetworkFilesystem`] when `db` (or, if it does not exist yet, its
/// directory) is on a network filesystem.
pub fn refuse_network_filesystem(db: &Path) -> Result<()> {
    let Ok(mountinfo) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return Ok(());
    };
    let dir = db.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let Ok(dir) = dir.canonicalize() else {
        return Ok(());
    };
    match filesystem_of(&mountinfo, &dir) {
        Some(fs) if NETWORK_FILESYSTEMS.contains(&fs.as_str()) => {
            Err(StoreError::NetworkFilesystem { path: db.to_owned(), fs })
        }
        _ => Ok(()),
    }
}

/// The filesystem type of the mount that holds `path`: the longest mount point that is a
/// prefix of it (later mounts win over earlier ones at the same point).
fn filesystem_of(mountinfo: &str, path: &Path) -> Option<String> {
    let mut best: Option<(usize, String)> = None;
    for line in mountinfo.lines() {
        let Some((left, right)) = line.split_once(" - ") else { continue };
        let Some(mount_point) = left.split(' ').nth(4) else { continue };
        let Some(fs) = right.split(' ').next() else { continue };
        let mount_point = PathBuf::from(unescape(mount_point));
        if path.starts_with(&mount_point) {
            let depth = mount_point.components().count();
            if best.as_ref().is_none_or(|(d, _)| depth >= *d) {
                best = Some((depth, fs.to_owned()));
            }
        }
    }
    best.map(|(_, fs)| fs)
}

/// mountinfo writes space, tab, newline and backslash as three-digit octal escapes.
fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('\\') {
        out.push_str(&rest[..i]);
        let code = rest.get(i + 1..i + 4).and_then(|o| u8::from_str_radix(o, 8).ok());
        match code {
            Some(c) => {
                out.push(char::from(c));
                rest = &rest[i + 4..];
            }
            None => {
                out.push('\\');
                rest = &rest[i + 1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTINFO: &str = "\
22 1 254:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw
40 22 0:35 / /srv/state rw,relatime shared:20 - nfs4 server:/export rw,vers=4.2
41 40 0:36 / /srv/state/local rw - tmpfs tmpfs rw
42 22 0:37 / /mnt/my\\040share rw - fuse.sshfs host:/ rw
";

    #[test]
    fn finds_the_innermost_mount() {
        let fs = |p: &str| filesystem_of(MOUNTINFO, Path::new(p));
        assert_eq!(fs("/home/me").as_deref(), Some("ext4"));
        assert_eq!(fs("/srv/state/db").as_deref(), Some("nfs4"));
        assert_eq!(fs("/srv/state/local/db").as_deref(), Some("tmpfs"));
        assert_eq!(fs("/srv/statefile").as_deref(), Some("ext4"));
        assert_eq!(fs("/mnt/my share/x").as_deref(), Some("fuse.sshfs"));
    }

    #[test]
    fn local_directories_pass() {
        let dir = std::env::temp_dir();
        assert!(refuse_network_filesystem(&dir.join("x.db")).is_ok());
    }
}

//! Where the agents' notify sockets live: `<db>.run/`, a private (0700) directory beside the
//! database. Only the launcher that holds the database's lock uses it, so a launcher that was
//! killed leaves nothing that the next one does not clear. When that path is too long for a
//! socket address, a fresh temporary directory is used instead.

use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

/// A socket path must fit `sockaddr_un.sun_path` (108 bytes with its NUL).
const SUN_PATH_MAX: usize = 107;

pub enum RuntimeDir {
    BesideDb(PathBuf),
    Temp(tempfile::TempDir),
}

impl RuntimeDir {
    pub fn create(db: &Path) -> io::Result<RuntimeDir> {
        let longest_socket = "/".len() + crate::config::MAX_NAME + ".sock".len();
        // Agents run in other directories: their NOTIFY_SOCKET must be absolute.
        let mut dir = std::path::absolute(db)?.into_os_string();
        dir.push(".run");
        let dir = PathBuf::from(dir);
        if dir.as_os_str().len() + longest_socket <= SUN_PATH_MAX {
            match std::fs::remove_dir_all(&dir) {
                Ok(()) => tracing::debug!("removed {} left by an earlier launcher", dir.display()),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(io::Error::new(e.kind(), format!("cannot clear {}: {e}", dir.display())));
                }
            }
            std::fs::DirBuilder::new()
                .mode(0o700)
                .create(&dir)
                .map_err(|e| io::Error::new(e.kind(), format!("cannot create {}: {e}", dir.display())))?;
            return Ok(RuntimeDir::BesideDb(dir));
        }
        let base = ["RUNTIME_DIRECTORY", "XDG_RUNTIME_DIR"]
            .iter()
            .filter_map(std::env::var_os)
            .map(PathBuf::from)
            .find(|p| {
                p.is_absolute() && p.is_dir() && p.as_os_str().len() + 20 + longest_socket <= SUN_PATH_MAX
            })
            .unwrap_or_else(std::env::temp_dir);
        tempfile::Builder::new().prefix("agentvisor-").tempdir_in(base).map(RuntimeDir::Temp)
    }

    pub fn socket_path(&self, agent: &str) -> PathBuf {
        let dir = match self {
            RuntimeDir::BesideDb(dir) => dir.as_path(),
            RuntimeDir::Temp(t) => t.path(),
        };
        dir.join(format!("{agent}.sock"))
    }
}

impl Drop for RuntimeDir {
    fn drop(&mut self) {
        if let RuntimeDir::BesideDb(dir) = self
            && let Err(e) = std::fs::remove_dir_all(&*dir)
        {
            tracing::debug!(error = %e, "could not remove {}", dir.display());
        }
    }
}

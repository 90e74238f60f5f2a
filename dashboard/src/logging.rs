//! The dashboard's own diagnostics go to a file, never to the terminal it draws on.

use std::path::{Path, PathBuf};

/// `$XDG_STATE_HOME/agentvisor/dashboard.log`, else `~/.local/state/agentvisor/dashboard.log`.
pub fn default_log_file() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_STATE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))?;
    Some(base.join("agentvisor").join("dashboard.log"))
}

/// Sends tracing output (level from `RUST_LOG`, default `info`) to `path`, appending. Logging
/// is best effort: a file that cannot be opened means no log, never a failure to start.
pub fn init(path: Option<&Path>) {
    let Some(path) = path.map(Path::to_owned).or_else(default_log_file) else { return };
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let Ok(file) = std::fs::OpenOptions::new().create(true).append(true).open(&path) else { return };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_writer(std::sync::Mutex::new(file))
        .try_init();
}

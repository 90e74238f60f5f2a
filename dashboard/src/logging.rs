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

/// Where diagnostics go.
pub enum Sink<'a> {
    /// The terminal UI: a file (`path`, else [`default_log_file`]), never the screen it draws.
    File(Option<&'a Path>),
    /// One-shot commands: stderr, warnings and errors only unless `RUST_LOG` says otherwise,
    /// so a cron job or `ssh host ... status` leaves no file behind.
    Stderr,
}

/// Installs the tracing subscriber. Logging is best effort: a file that cannot be opened means
/// no log, never a failure to start.
pub fn init(sink: Sink<'_>) {
    let filter = |default: &str| {
        tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default))
    };
    let builder = tracing_subscriber::fmt().with_ansi(false);
    match sink {
        Sink::Stderr => {
            let _ = builder.with_env_filter(filter("warn")).with_writer(std::io::stderr).try_init();
        }
        Sink::File(path) => {
            let Some(path) = path.map(Path::to_owned).or_else(default_log_file) else { return };
            if let Some(dir) = path.parent() {
                let _ = std::fs::create_dir_all(dir);
            }
            let Ok(file) = std::fs::OpenOptions::new().create(true).append(true).open(&path) else { return };
            let _ =
                builder.with_env_filter(filter("info")).with_writer(std::sync::Mutex::new(file)).try_init();
        }
    }
}

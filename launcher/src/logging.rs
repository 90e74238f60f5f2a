//! The launcher's own log: tracing to stderr, filtered by `--log-level` or `RUST_LOG`, with
//! colours only when stderr is a terminal (journald and files get plain text).

use std::io::IsTerminal;
use tracing_subscriber::EnvFilter;

pub fn init(level: Option<&str>) {
    let filter = match level {
        Some(l) => EnvFilter::try_new(l),
        None => EnvFilter::try_from_default_env().or_else(|_| EnvFilter::try_new("info")),
    };
    let (filter, bad) = match filter {
        Ok(f) => (f, None),
        Err(e) => (EnvFilter::new("info"), Some(e)),
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    if let Some(e) = bad {
        tracing::warn!("ignoring the log filter: {e}");
    }
}

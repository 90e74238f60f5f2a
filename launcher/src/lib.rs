//! Agentvisor's launcher: starts the configured agents, supervises them, and records their
//! state, heartbeats, metrics and output in the shared-state database.

/// `println!` that cannot panic: a closed stdout (`check | head -1`) loses the output, never
/// the exit code.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

/// `eprintln!` that cannot panic on a closed or broken stderr.
macro_rules! complain {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

mod capture;
mod cli;
mod config;
mod control;
mod daemon;
mod deadline;
mod event;
mod hooks;
mod logging;
mod manager;
mod notify;
mod process;
mod sampling;
mod schedule;
mod supervisor;

use agentvisor_shared::paths;
use clap::Parser;
use std::process::ExitCode;

/// Exit code for an invalid config (nothing was started).
pub const EXIT_CONFIG: u8 = 2;

pub fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    // Kept to the end of main: dropping it writes out the log lines still queued.
    let _log = logging::init(cli.log_level.as_deref());
    let config_path = paths::resolve(cli.config.as_deref(), "AGENTVISOR_CONFIG", "agents.toml");
    let db = paths::resolve_db(cli.db.as_deref());
    // Control needs no config: it talks to the launcher that already runs one.
    if let Some(cli::Command::Ctl { action, agents, json, timeout }) = &cli.command {
        return control::client::run(&db.path, *action, agents.clone(), *json, *timeout);
    }
    let config = match config::load(&config_path.path) {
        Ok(c) => c,
        Err(e) => {
            complain!("error: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    match cli.command.unwrap_or(cli::Command::Run) {
        cli::Command::Check => {
            say!("{}", plan(&config, &config_path, &db).trim_end());
            ExitCode::SUCCESS
        }
        cli::Command::Run | cli::Command::Ctl { .. } => daemon::run(config, &db.path),
    }
}

/// The start plan as `check` prints it.
fn plan(config: &config::Config, config_path: &paths::Resolved, db: &paths::Resolved) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(s, "config:   {} ({}): valid", config_path.path.display(), config_path.source);
    let _ = writeln!(s, "database: {} ({})", db.path.display(), db.source);
    let _ = writeln!(s, "start plan ({} agents):", config.plan.len());
    for (n, &i) in config.plan.iter().enumerate() {
        let a = &config.agents[i];
        let command: Vec<&str> =
            std::iter::once(a.command.as_str()).chain(a.args.iter().map(String::as_str)).collect();
        let _ = write!(s, "  {:>2}. {:<20} {}", n + 1, a.name, command.join(" "));
        if !a.depends_on.is_empty() {
            let _ = write!(s, "  (after {})", a.depends_on.join(", "));
        }
        let _ = writeln!(s);
    }
    let disabled: Vec<&str> = config.agents.iter().filter(|a| !a.enabled).map(|a| a.name.as_str()).collect();
    if !disabled.is_empty() {
        let _ = writeln!(s, "disabled: {}", disabled.join(", "));
    }
    s
}

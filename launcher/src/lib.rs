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

mod alerts;
mod capture;
mod cli;
mod config;
mod control;
mod daemon;
mod deadline;
mod event;
mod hooks;
mod log_format;
mod logging;
mod manager;
mod notify;
mod probe;
mod process;
mod sampling;
mod schedule;
mod supervisor;

use agentvisor_shared::paths;

/// For the benchmark harness only: the time of each of `passes` evaluation passes of five
/// alert rules over `agents` agents (see `alerts/bench.rs`).
#[doc(hidden)]
pub fn bench_alert_passes(agents: usize, passes: usize) -> Result<Vec<std::time::Duration>, String> {
    alerts::bench::passes(agents, passes)
}
use clap::Parser;
use std::process::ExitCode;

/// Exit code for an invalid config (nothing was started).
pub const EXIT_CONFIG: u8 = 2;
/// Exit code for a command line that cannot be carried out as written.
pub const EXIT_USAGE: u8 = agentvisor_shared::exit_code::EXIT_USAGE;

pub fn main() -> ExitCode {
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // Help and version go to stdout with 0; a usage error to stderr with a code of its
            // own (clap's 2 would read as "bad config").
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { EXIT_USAGE } else { 0 });
        }
    };
    match &cli.command {
        Some(cli::Command::Completions { shell }) => {
            let cmd = <cli::Cli as clap::CommandFactory>::command();
            let script = agentvisor_shared::completion::script(cmd, *shell, "agentvisor-launcher");
            let _ = std::io::Write::write_all(&mut std::io::stdout(), script.as_bytes());
            return ExitCode::SUCCESS;
        }
        Some(cli::Command::Man { dir }) => return man(dir.as_deref()),
        _ => {}
    }
    // Kept to the end of main: dropping it writes out the log lines still queued.
    let follow_output = matches!(&cli.command, Some(cli::Command::Run(r)) if r.follow_output);
    let _log = logging::init(cli.log_level.as_deref(), follow_output);
    let config_path = paths::resolve(cli.config.as_deref(), "AGENTVISOR_CONFIG", "agents.toml");
    let db = paths::resolve_db(cli.db.as_deref());
    // Control needs no config: it talks to the launcher that already runs one.
    if let Some(cli::Command::Ctl(ctl)) = &cli.command {
        let (action, agents) = ctl.command.split();
        return control::client::run(&db.path, action, agents, ctl.json, ctl.timeout);
    }
    let config = match config::load(&config_path.path) {
        Ok(c) => c,
        Err(e) => {
            complain!("error: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    match cli.command.unwrap_or(cli::Command::Run(cli::RunArgs::default())) {
        cli::Command::Check => {
            say!("{}", plan(&config, &config_path, &db).trim_end());
            ExitCode::SUCCESS
        }
        _ => {
            log_format::set_name_width(config.agents.iter().map(|a| a.name.len()).max().unwrap_or(0));
            daemon::run(config, &db.path)
        }
    }
}

/// `man`: the page on stdout, or every command's page into `dir`.
fn man(dir: Option<&std::path::Path>) -> ExitCode {
    let cmd = <cli::Cli as clap::CommandFactory>::command();
    match agentvisor_shared::completion::man(cmd, dir) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            complain!("error: cannot write the man pages: {e}");
            ExitCode::FAILURE
        }
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
        if let Some(sched) = &a.schedule {
            let _ = write!(s, "  (scheduled: {sched})");
        }
        let _ = writeln!(s);
    }
    let disabled: Vec<&str> = config.agents.iter().filter(|a| !a.enabled).map(|a| a.name.as_str()).collect();
    if !disabled.is_empty() {
        let _ = writeln!(s, "disabled: {}", disabled.join(", "));
    }
    s
}

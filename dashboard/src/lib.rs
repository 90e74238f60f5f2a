//! `agentvisor-dashboard`: the read-only terminal view of an Agentvisor launcher's agents, and
//! the `status`, `logs` and `events` one-shot commands. Nothing here writes to the database.
//!
//! The binary's `main` is [`main`]; [`draw_overview`] is public so benchmarks can time a frame
//! exactly as the terminal UI draws it.

mod app;
mod assess;
mod cli;
mod commands;
mod data;
mod event;
mod fleet;
mod fleet_app;
mod format;
mod input;
mod logging;
mod serve;
mod since;
mod state;
mod terminal;
mod view;

use agentvisor_shared::model::Snapshot;
use agentvisor_shared::paths::{Resolved, resolve_db};
use cli::{Cli, Command};
use ratatui::Terminal;
use ratatui::backend::Backend;
use std::collections::HashMap;
use std::process::ExitCode;
use std::time::Duration;

pub fn main() -> ExitCode {
    let cli = match <Cli as clap::Parser>::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // Help and version go to stdout with 0; a usage error to stderr with a code clear
            // of `status`'s monitoring codes (clap's own 2 means "launcher down" there).
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { agentvisor_shared::exit_code::EXIT_USAGE } else { 0 });
        }
    };
    match &cli.command {
        Some(Command::Completions { shell }) => {
            let cmd = <Cli as clap::CommandFactory>::command();
            let script = agentvisor_shared::completion::script(cmd, *shell, "agentvisor-dashboard");
            let _ = std::io::Write::write_all(&mut std::io::stdout(), script.as_bytes());
            return ExitCode::SUCCESS;
        }
        Some(Command::Man { dir }) => return man(dir.as_deref()),
        _ => {}
    }
    logging::init(match (&cli.command, &cli.log_file) {
        (None, path) => logging::Sink::File(path.as_deref()),
        (Some(_), Some(path)) => logging::Sink::File(Some(path)),
        (Some(_), None) => logging::Sink::Stderr,
    });
    // Before any thread exists, so that every thread the dashboard starts inherits it.
    if !cli.normal_priority {
        agentvisor_shared::reader::lower_thread_priority();
    }
    if !cli.hosts.is_empty() || cli.fleet.is_some() {
        return ExitCode::from(fleet_main(&cli));
    }
    let resolved = resolve_db(cli.db.as_deref());
    let zone = if cli.utc { format::Zone::Utc } else { format::Zone::Local };
    let code = match &cli.command {
        Some(Command::Status(a)) => commands::status::run(&resolved, a, zone),
        Some(Command::Logs(a)) => commands::logs::run(&resolved, a),
        Some(Command::Events(a)) => commands::events::run(&resolved, a),
        Some(Command::Stream(a)) => commands::stream::run(&resolved, a),
        Some(Command::Serve(a)) => serve::run(&resolved, a, zone),
        Some(Command::Alerts(a)) => commands::alerts::run(&resolved, a),
        Some(Command::Runs(a)) => commands::runs::run(&resolved, a),
        Some(Command::Tasks(a)) => commands::tasks::run(&resolved, a),
        Some(Command::Completions { .. } | Command::Man { .. }) => 0,
        None => match dashboard(resolved, cli.utc, cli.back_on_esc) {
            Ok(()) => 0,
            Err(e) => {
                tracing::error!(error = %e, "dashboard failed");
                eprintln!("agentvisor-dashboard: {e:#}");
                1
            }
        },
    };
    ExitCode::from(code)
}

/// `--host`/`--fleet`: the fleet view, or `status` of every host; other commands read one
/// database and are run on the host itself.
fn fleet_main(cli: &Cli) -> u8 {
    let hosts = match fleet::config::hosts(
        &cli.hosts,
        cli.db.as_deref(),
        cli.transport.as_deref(),
        cli.fleet.as_deref(),
    ) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("agentvisor-dashboard: {e}");
            return agentvisor_shared::exit_code::EXIT_USAGE;
        }
    };
    match &cli.command {
        Some(Command::Status(a)) => fleet_app::status(&hosts, a),
        None => match fleet_app::view(hosts) {
            Ok(()) => 0,
            Err(e) => {
                tracing::error!(error = %e, "fleet view failed");
                eprintln!("agentvisor-dashboard: {e:#}");
                1
            }
        },
        Some(_) => {
            eprintln!(
                "agentvisor-dashboard: --host and --fleet go with the fleet view and `status`; \
                 run the other commands on the host (ssh HOST agentvisor-dashboard ...)"
            );
            agentvisor_shared::exit_code::EXIT_USAGE
        }
    }
}

/// `man`: the page on stdout, or every command's page into `dir`.
fn man(dir: Option<&std::path::Path>) -> ExitCode {
    let cmd = <Cli as clap::CommandFactory>::command();
    match agentvisor_shared::completion::man(cmd, dir) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("agentvisor-dashboard: cannot write the man pages: {e}");
            ExitCode::FAILURE
        }
    }
}

fn dashboard(resolved: Resolved, utc: bool, back_on_esc: bool) -> anyhow::Result<()> {
    use std::io::IsTerminal;
    if !std::io::stdout().is_terminal() {
        anyhow::bail!("stdout is not a terminal; for scripts use `status --json`, `logs` or `events`");
    }
    // https://no-color.org: any non-empty value turns colour off.
    let color = std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    tracing::info!(db = %resolved.path.display(), source = %resolved.source, "dashboard starting");
    let (tx, rx) = crossbeam_channel::unbounded();
    let (focus_tx, focus_rx) = crossbeam_channel::unbounded();
    let zone = if utc { format::Zone::Utc } else { format::Zone::Local };
    data::loader::spawn(resolved, zone, tx.clone(), focus_rx)?;
    let mut guard = terminal::TerminalGuard::enter()?;
    event::spawn_input(tx)?;
    let mut app = state::App::new(color);
    app.zone = zone;
    app.back_on_esc = back_on_esc;
    app::run(&mut guard.terminal, &mut app, &rx, &focus_tx, agentvisor_shared::time::now_ms)
}

/// Applies one refresh (a snapshot and the sparklines of the rows on screen) to a fresh UI
/// state and draws the overview, the work of one dashboard frame.
pub fn draw_overview<B: Backend>(
    terminal: &mut Terminal<B>,
    snapshot: Snapshot,
    sparklines: HashMap<String, Vec<f64>>,
    now_ms: i64,
) -> anyhow::Result<()>
where
    B::Error: Send + Sync + 'static,
{
    let mut app = state::App::new(true);
    app.now_ms = now_ms;
    app.on_data(data::DataMsg::Loaded(Box::new(data::Loaded {
        snapshot,
        sparklines,
        detail: None,
        events: None,
        spend: None,
        read_time: Duration::ZERO,
    })));
    terminal.draw(|f| view::draw(f, &app))?;
    Ok(())
}

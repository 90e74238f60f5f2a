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
mod format;
mod input;
mod logging;
mod state;
mod terminal;
mod view;

use agentvisor_shared::model::Snapshot;
use agentvisor_shared::paths::{Resolved, resolve_db};
use clap::Parser;
use cli::{Cli, Command};
use ratatui::Terminal;
use ratatui::backend::Backend;
use std::collections::HashMap;
use std::process::ExitCode;
use std::time::Duration;

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::init(match (&cli.command, &cli.log_file) {
        (None, path) => logging::Sink::File(path.as_deref()),
        (Some(_), Some(path)) => logging::Sink::File(Some(path)),
        (Some(_), None) => logging::Sink::Stderr,
    });
    // Before any thread exists, so that every thread the dashboard starts inherits it.
    if !cli.normal_priority {
        agentvisor_shared::reader::lower_thread_priority();
    }
    let resolved = resolve_db(cli.db.as_deref());
    let code = match &cli.command {
        Some(Command::Status(a)) => commands::status::run(&resolved, a),
        Some(Command::Logs(a)) => commands::logs::run(&resolved, a),
        Some(Command::Events(a)) => commands::events::run(&resolved, a),
        Some(Command::Runs(a)) => commands::runs::run(&resolved, a),
        Some(Command::Tasks(a)) => commands::tasks::run(&resolved, a),
        None => match dashboard(resolved) {
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

fn dashboard(resolved: Resolved) -> anyhow::Result<()> {
    use std::io::IsTerminal;
    if !std::io::stdout().is_terminal() {
        anyhow::bail!("stdout is not a terminal; for scripts use `status --json`, `logs` or `events`");
    }
    // https://no-color.org: any non-empty value turns colour off.
    let color = std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    tracing::info!(db = %resolved.path.display(), source = %resolved.source, "dashboard starting");
    let (tx, rx) = crossbeam_channel::unbounded();
    let (focus_tx, focus_rx) = crossbeam_channel::unbounded();
    data::loader::spawn(resolved, tx.clone(), focus_rx)?;
    let mut guard = terminal::TerminalGuard::enter()?;
    event::spawn_input(tx)?;
    let mut app = state::App::new(color);
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
        read_time: Duration::ZERO,
    })));
    terminal.draw(|f| view::draw(f, &app))?;
    Ok(())
}

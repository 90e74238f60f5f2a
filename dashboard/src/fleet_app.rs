//! The fleet view's UI loop, beside `app.rs`: many hosts, each reached by a command (ssh by
//! default) that runs `agentvisor-dashboard stream --json` there. One thread per host feeds the
//! app's one channel; Enter hands the terminal to the host's own dashboard and takes it back
//! after. `status --host` reads one document per host for scripts.

use crate::app::TICK;
use crate::assess::Verdict;
use crate::cli::StatusArgs;
use crate::commands::print_lines;
use crate::event::{self, AppEvent, Gate};
use crate::fleet::config::Host;
use crate::fleet::link;
use crate::fleet::state::Fleet;
use crate::input::{self, Action};
use crate::terminal::TerminalGuard;
use crate::view;
use crossbeam_channel::{Receiver, RecvTimeoutError};
use ratatui::layout::Rect;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

/// The exit code of `status --host` for a host that could not be read at all: worse than
/// every verdict a host can give about itself.
pub const UNREACHABLE_CODE: u8 = 4;
/// How long `status --host` waits for a host's first document.
const STATUS_LIMIT: Duration = Duration::from_secs(30);

/// Runs the fleet screen until the user quits.
pub fn view(hosts: Vec<Host>) -> anyhow::Result<()> {
    use std::io::IsTerminal;
    if !std::io::stdout().is_terminal() {
        anyhow::bail!("stdout is not a terminal; for scripts use `status --json --host ...`");
    }
    let color = std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    tracing::info!(hosts = hosts.len(), "fleet view starting");
    let (tx, rx) = crossbeam_channel::unbounded();
    let children = link::spawn_all(&hosts, &tx, AppEvent::Host)?;
    let gate = Arc::new(Gate::default());
    let result = TerminalGuard::enter().map_err(anyhow::Error::from).and_then(|mut guard| {
        event::spawn_gated_input(tx, gate.clone())?;
        let mut fleet = Fleet::new(hosts.iter().map(|h| h.name.clone()), color);
        run(&mut guard, &mut fleet, &rx, &hosts, &gate)
    });
    children.kill_all();
    result
}

fn run(
    guard: &mut TerminalGuard,
    fleet: &mut Fleet,
    events: &Receiver<AppEvent>,
    hosts: &[Host],
    gate: &Gate,
) -> anyhow::Result<()> {
    while !fleet.quit {
        fleet.now_ms = agentvisor_shared::time::now_ms();
        guard.terminal.draw(|f| view::fleet::draw(f, fleet))?;
        if let Some(i) = fleet.open.take() {
            if let Some(host) = hosts.get(i) {
                fleet.notice = drill(guard, gate, host)?;
            }
            continue;
        }
        let first = match events.recv_timeout(TICK) {
            Ok(ev) => ev,
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => break,
        };
        let area: Rect = guard.terminal.size()?.into();
        handle(fleet, first, area);
        while let Ok(ev) = events.try_recv() {
            handle(fleet, ev, area);
        }
    }
    Ok(())
}

fn handle(fleet: &mut Fleet, ev: AppEvent, area: Rect) {
    match ev {
        AppEvent::Host(msg) => fleet.on_host(msg),
        AppEvent::Data(_) => {}
        AppEvent::Input(ev) => match input::map(&ev, false) {
            Some(Action::Click { column, row }) => {
                if let Some(i) = view::fleet::row_at(fleet, area, column, row) {
                    fleet.apply(if i == fleet.selected { Action::Open } else { Action::Select(i) });
                }
            }
            Some(action) => fleet.apply(action),
            None => {}
        },
    }
}

/// Runs the host's own dashboard on this terminal; the fleet screen comes back when it ends.
/// Returns what to tell the user if it did not end well.
fn drill(guard: &mut TerminalGuard, gate: &Gate, host: &Host) -> anyhow::Result<Option<String>> {
    gate.pause();
    guard.suspend()?;
    tracing::info!(host = %host.name, "opening the host's dashboard");
    let status = host.interactive_command().status();
    // Whatever happened, the fleet screen takes the terminal back.
    let resumed = guard.resume();
    gate.resume();
    resumed?;
    Ok(match status {
        Ok(s) if s.success() => None,
        Ok(s) => Some(format!("{}: the host's dashboard ended with {s}", host.name)),
        Err(e) => Some(format!("{}: cannot run the transport: {e}", host.name)),
    })
}

/// `status [--json] --host ...`: every host read at once, printed in the order given; the
/// exit code is the worst.
pub fn status(hosts: &[Host], args: &StatusArgs) -> u8 {
    let results: Vec<Result<Value, String>> = std::thread::scope(|s| {
        let handles: Vec<_> =
            hosts.iter().map(|h| s.spawn(move || link::first_document(h, STATUS_LIMIT))).collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err("the reading thread failed".into())))
            .collect()
    });
    let mut worst = 0;
    let mut lines = Vec::new();
    for (host, result) in hosts.iter().zip(results) {
        let (code, line) = match result {
            Ok(doc) => {
                let code = doc["status"]["exit_code"]
                    .as_u64()
                    .and_then(|c| u8::try_from(c).ok())
                    .unwrap_or(Verdict::NoDatabase.code());
                let line = if args.json {
                    json!({"host": host.name, "reachable": true, "error": null, "exit_code": code,
                           "fleet": doc["fleet"], "status": doc["status"]})
                    .to_string()
                } else {
                    let f = &doc["fleet"];
                    format!(
                        "{}: {} (exit {code}) · launcher {} · {}/{} healthy · {} fatal",
                        host.name,
                        doc["status"]["verdict"].as_str().unwrap_or("?"),
                        f["launcher"].as_str().unwrap_or("unknown"),
                        f["healthy"],
                        f["enabled"],
                        f["fatal"]
                    )
                };
                (code, line)
            }
            Err(reason) => {
                let line = if args.json {
                    json!({"host": host.name, "reachable": false, "error": reason,
                           "exit_code": UNREACHABLE_CODE, "fleet": null, "status": null})
                    .to_string()
                } else {
                    format!("{}: UNREACHABLE (exit {UNREACHABLE_CODE}) · {reason}", host.name)
                };
                (UNREACHABLE_CODE, line)
            }
        };
        worst = worst.max(code);
        lines.push(line);
    }
    print_lines(lines);
    worst
}

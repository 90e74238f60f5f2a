//! The command line: no subcommand opens the terminal dashboard; `status`, `logs` and `events`
//! are one-shot commands for scripts, cron and `ssh host agentvisor-dashboard status`.

use agentvisor_shared::model::{EventKind, Severity};
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "agentvisor-dashboard",
    version,
    about = "Read-only view of the agents an Agentvisor launcher supervises",
    after_help = "The database is found by --db, then $SHARED_STATE_SQLITE, then SHARED_STATE_SQLITE in ./.env, \
                  then ./shared_state.db. The dashboard never writes to it."
)]
pub struct Cli {
    /// The shared-state database (accepted before or after the subcommand).
    #[arg(long, global = true, value_name = "PATH")]
    pub db: Option<PathBuf>,

    /// Where the dashboard writes its own diagnostics (default for the terminal UI:
    /// $XDG_STATE_HOME/agentvisor/dashboard.log; one-shot commands: warnings on stderr).
    #[arg(long, global = true, value_name = "PATH")]
    pub log_file: Option<PathBuf>,

    /// Run at the normal CPU priority (keys, drawing and reads, and the one-shot commands),
    /// for a machine saturated by other work. By default the whole dashboard runs at nice 19,
    /// the lowest priority, so that it never takes CPU the launcher wants.
    #[arg(long, global = true)]
    pub normal_priority: bool,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the launcher's and every agent's status; the exit code says whether all is well
    /// (0 all well, 1 an agent is unhealthy, in backoff, fatal or failed and down, or the
    /// config file on disk is invalid, 2 launcher down or stale, 3 no readable database).
    Status(StatusArgs),
    /// Print the captured output of one agent.
    Logs(LogsArgs),
    /// Print events, oldest of the selection first.
    Events(EventsArgs),
    /// Print run records (scheduled and manual runs, process starts, hook invocations),
    /// oldest of the selection first.
    Runs(RunsArgs),
    /// Print the tasks agents reported (X_TASK), oldest of the selection first.
    Tasks(TasksArgs),
}

#[derive(Debug, Args)]
pub struct RunsArgs {
    /// Only the runs of this agent (or hook).
    pub name: Option<String>,
    /// Only runs that failed, timed out or were lost.
    #[arg(long)]
    pub failed: bool,
    /// How many of the newest runs to print.
    #[arg(short = 'n', long, default_value_t = 20)]
    pub lines: i64,
    /// A JSON array of run records (the columns of the `runs` table) instead of lines.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct TasksArgs {
    /// Only the tasks of this agent.
    pub name: Option<String>,
    /// How many of the newest tasks to print.
    #[arg(short = 'n', long, default_value_t = 20)]
    pub lines: i64,
    /// A JSON array of tasks (the columns of the `tasks` table) instead of lines.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// One JSON object (documented in docs/status-json.md) instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// The agent's name.
    pub agent: String,
    /// How many of the newest lines to print.
    #[arg(short = 'n', long, default_value_t = 50)]
    pub lines: i64,
    /// Keep printing new lines as the launcher records them.
    #[arg(short, long)]
    pub follow: bool,
}

#[derive(Debug, Args)]
pub struct EventsArgs {
    /// Only events of this agent.
    #[arg(long)]
    pub agent: Option<String>,
    /// Only events of this kind (e.g. crashed, heartbeat_missed; docs/schema.md lists them).
    #[arg(long, value_parser = parse_event_kind)]
    pub kind: Option<EventKind>,
    /// Only events at least this severe: info, warning, error or critical.
    #[arg(long, default_value = "info", value_parser = parse_severity)]
    pub severity: Severity,
    /// How many of the newest matching events to print.
    #[arg(short = 'n', long, default_value_t = 50)]
    pub lines: i64,
    /// Keep printing new events as the launcher records them.
    #[arg(short, long)]
    pub follow: bool,
}

fn parse_severity(s: &str) -> Result<Severity, String> {
    s.parse().map_err(|_| "expected info, warning, error or critical".to_owned())
}

fn parse_event_kind(s: &str) -> Result<EventKind, String> {
    s.parse().map_err(|_| format!("expected one of: {}", EventKind::NAMES.join(", ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn db_is_global_before_or_after_the_subcommand() {
        let before = Cli::try_parse_from(["d", "--db", "/x.db", "status", "--json"]).unwrap();
        let after = Cli::try_parse_from(["d", "status", "--db", "/x.db"]).unwrap();
        assert_eq!(before.db, Some(PathBuf::from("/x.db")));
        assert_eq!(after.db, Some(PathBuf::from("/x.db")));
        assert!(matches!(before.command, Some(Command::Status(StatusArgs { json: true }))));
    }

    #[test]
    fn no_subcommand_is_the_dashboard_and_bad_severity_is_refused() {
        assert!(Cli::try_parse_from(["d"]).unwrap().command.is_none());
        assert!(Cli::try_parse_from(["d", "events", "--severity", "loud"]).is_err());
        let unknown = Cli::try_parse_from(["d", "events", "--kind", "crash"]).unwrap_err();
        assert_eq!(unknown.exit_code(), 2);
        let text = unknown.to_string();
        assert!(text.contains("'crash'") && text.contains("crashed, spawn_failed"), "{text}");
        let known = Cli::try_parse_from(["d", "events", "--kind", "crash_loop"]).unwrap();
        assert!(matches!(known.command, Some(Command::Events(a)) if a.kind == Some(EventKind::CrashLoop)));
        let e = Cli::try_parse_from(["d", "events", "--severity", "error", "-n", "5", "-f"]).unwrap();
        match e.command {
            Some(Command::Events(a)) => {
                assert_eq!(a.severity, Severity::Error);
                assert_eq!(a.lines, 5);
                assert!(a.follow);
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}

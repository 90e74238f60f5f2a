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

    /// Show times in UTC; by default the terminal UI shows local time (the zone `TZ` names,
    /// else the system's), with the zone in its header.
    #[arg(long, global = true)]
    pub utc: bool,
    /// Open the fleet view over these hosts (repeatable), each reached through the
    /// transport; with `status --json`, one document per host. docs/fleet.md.
    #[arg(long = "host", global = true, value_name = "HOST")]
    pub hosts: Vec<String>,

    /// The fleet's hosts, their databases and transports, from a TOML file (docs/fleet.md).
    #[arg(long, global = true, value_name = "PATH")]
    pub fleet: Option<PathBuf>,

    /// The command that reaches a host: {host} is the host, {args} the dashboard's arguments
    /// (default: `ssh {host} -- agentvisor-dashboard {args}`).
    #[arg(long, global = true, value_name = "TEMPLATE")]
    pub transport: Option<String>,

    /// Esc on the overview quits, as when the fleet view opens a host's dashboard.
    #[arg(long)]
    pub back_on_esc: bool,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the launcher's and every agent's status; the exit code says whether all is well
    /// (0 all well, 1 an agent is unhealthy, in backoff, fatal or failed and down, an alert of
    /// severity error or higher fires, or the config file on disk is invalid, 2 launcher down or stale, 3 no readable database).
    #[command(
        after_help = "The table has the columns of `agentvisor-launcher ctl status`; usage errors exit 64.\n\n\
        Examples:\n  agentvisor-dashboard status\n  \
        agentvisor-dashboard status --json | jq '.agents[] | select(.in_trouble) | .name'\n  \
        ssh host agentvisor-dashboard status || echo 'needs a look'"
    )]
    Status(StatusArgs),
    /// Print captured output: of one agent, or of every agent interleaved with a name column.
    #[command(after_help = "Examples:\n  \
        agentvisor-dashboard logs                          # every agent, newest 50 lines, oldest first\n  \
        agentvisor-dashboard logs -f                       # and keep printing, as `docker compose logs -f`\n  \
        agentvisor-dashboard logs worker --since 10m --grep 'timeout|refused'\n  \
        agentvisor-dashboard logs --since 2026-12-07T09:00:00Z -n 1000")]
    Logs(LogsArgs),
    /// Print events, oldest of the selection first.
    #[command(after_help = "Examples:\n  agentvisor-dashboard events -n 20\n  \
        agentvisor-dashboard events --agent flaky --severity error -f\n  \
        agentvisor-dashboard events --kind crash_loop")]
    Events(EventsArgs),
    /// Print a JSON line per change (and a heartbeat line when nothing changes) until stdin
    /// closes: what the fleet view reads from each host (docs/fleet.md).
    Stream(StreamArgs),
    /// Serve /metrics (OpenMetrics for Prometheus), /livez, /readyz and /status.json over
    /// HTTP, read-only like every other view (docs/exporter.md).
    Serve(ServeArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell) on stdout.
    #[command(after_help = "Examples:\n  \
        agentvisor-dashboard completions bash > /usr/share/bash-completion/completions/agentvisor-dashboard\n  \
        agentvisor-dashboard completions zsh > /usr/share/zsh/vendor-completions/_agentvisor-dashboard\n  \
        agentvisor-dashboard completions fish > /usr/share/fish/vendor_completions.d/agentvisor-dashboard.fish")]
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page on stdout, or write one page per command into a directory.
    #[command(after_help = "Examples:\n  agentvisor-dashboard man | man -l -\n  \
        agentvisor-dashboard man --dir /usr/local/share/man/man1")]
    Man {
        /// Write agentvisor-dashboard.1 and a page per subcommand here.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
    /// Print the alerts firing now (`[[alert]]` rules in agents.toml); exit code 1 while one
    /// of severity error or critical fires, 0 otherwise, 3 with no readable database.
    Alerts(AlertsArgs),
    /// Print run records (scheduled and manual runs, process starts, hook invocations),
    /// oldest of the selection first.
    Runs(RunsArgs),
    /// Print the tasks agents reported (X_TASK), oldest of the selection first.
    Tasks(TasksArgs),
}

#[derive(Debug, Args)]
pub struct StreamArgs {
    /// JSON lines, the only format (required, so a later text form stays possible).
    #[arg(long)]
    pub json: bool,
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
pub struct AlertsArgs {
    /// One JSON object (documented in docs/status-json.md, `alerts[]`) instead of a table.
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
    /// The agent's name [default: every agent, each line after its agent's name].
    pub agent: Option<String>,
    /// How many of the newest (matching) lines to print [default: 50, or all with --since].
    #[arg(short = 'n', long)]
    pub lines: Option<i64>,
    /// Keep printing new lines as the launcher records them.
    #[arg(short, long)]
    pub follow: bool,
    /// Only lines since a time ago (`10m`, `1h30m`, `2d`) or since a time: RFC 3339
    /// (`2026-12-07T09:00:00Z`), or local `2026-12-07 09:00`, or local today `09:00`.
    #[arg(long, value_name = "DURATION|TIME", value_parser = crate::since::parse_since)]
    pub since: Option<crate::since::Since>,
    /// Only lines matching this regular expression (Rust regex syntax; `(?i)` ignores case).
    #[arg(long, value_name = "PATTERN", value_parser = parse_regex)]
    pub grep: Option<regex::Regex>,
}

fn parse_regex(s: &str) -> Result<regex::Regex, String> {
    regex::Regex::new(s).map_err(|e| e.to_string())
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

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The address to listen on, IP:PORT. Only a loopback address unless --allow-remote.
    #[arg(long, value_name = "IP:PORT", default_value = "127.0.0.1:9464", value_parser = parse_listen)]
    pub listen: std::net::SocketAddr,
    /// Allow --listen on an address other than loopback (the endpoints have no TLS and no
    /// authentication of their own: put a reverse proxy in front, see docs/exporter.md).
    #[arg(long)]
    pub allow_remote: bool,
    /// Database readers kept open, so that this many requests are served at once.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub readers: u32,
    /// The most custom (X_METRIC_*) series one scrape exposes, over all agents; past it the
    /// rest are left out and counted in agentvisor_exporter_custom_series_dropped.
    #[arg(long, default_value_t = 10_000)]
    pub max_custom_series: usize,
}

fn parse_listen(s: &str) -> Result<std::net::SocketAddr, String> {
    s.parse().map_err(|_| "expected IP:PORT, such as 127.0.0.1:9464 or [::1]:9464".to_owned())
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

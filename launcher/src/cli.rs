//! Command line: `run` (the default), `check` and `ctl`, with global options accepted before or after
//! the subcommand.

use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(name = "agentvisor-launcher", version, about = "Starts, supervises and records background agents")]
pub struct Cli {
    /// The agents config [default: $AGENTVISOR_CONFIG, then .env, then agents.toml]
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,

    /// The shared-state database [default: $SHARED_STATE_SQLITE, then .env, then shared_state.db]
    #[arg(long, global = true, value_name = "PATH")]
    pub db: Option<PathBuf>,

    /// Log filter for the launcher's own log on stderr, e.g. "debug" or
    /// "agentvisor_launcher=trace" [default: $RUST_LOG, then info]
    #[arg(long, global = true, value_name = "FILTER")]
    pub log_level: Option<String>,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum Command {
    /// Start every enabled agent and supervise them until SIGINT or SIGTERM (the default)
    #[command(after_help = "Examples:\n  \
        agentvisor-launcher                          # the same as `run`, with ./agents.toml\n  \
        agentvisor-launcher run --follow-output      # agents' output in the terminal too\n  \
        agentvisor-launcher --config /etc/agentvisor/agents.toml --db /var/lib/agentvisor/state.db run")]
    Run(RunArgs),
    /// Validate the config and print the start plan without starting anything
    #[command(after_help = "Exit code 2 and the error's file:line:col when the config is invalid.\n\n\
        Examples:\n  agentvisor-launcher check\n  agentvisor-launcher --config staging.toml check")]
    Check,
    /// Control the running launcher (through its socket beside the database)
    Ctl(CtlArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell) on stdout
    #[command(after_help = "Examples:\n  \
        agentvisor-launcher completions bash > /usr/share/bash-completion/completions/agentvisor-launcher\n  \
        agentvisor-launcher completions zsh > /usr/share/zsh/vendor-completions/_agentvisor-launcher\n  \
        agentvisor-launcher completions fish > /usr/share/fish/vendor_completions.d/agentvisor-launcher.fish")]
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page on stdout, or write one page per command into a directory
    #[command(after_help = "Examples:\n  \
        agentvisor-launcher man | man -l -\n  \
        agentvisor-launcher man --dir /usr/local/share/man/man1")]
    Man {
        /// Write agentvisor-launcher.1 and a page per subcommand (agentvisor-launcher-ctl.1, ...) here
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
}

#[derive(Debug, Clone, Default, PartialEq, Eq, clap::Args)]
pub struct RunArgs {
    /// Also print the agents' stdout and stderr on the launcher's stderr, each line after the
    /// agent's name (`worker | line`), as `docker compose up` does; they are captured into the
    /// database either way
    #[arg(long)]
    pub follow_output: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct CtlArgs {
    #[command(subcommand)]
    pub command: CtlCommand,
    /// Print the launcher's answer as one JSON object (for scripts)
    #[arg(long, global = true)]
    pub json: bool,
    /// How long to wait for the launcher to accept the connection and answer `status`, or,
    /// for the other actions, how long it may stay stopped (SIGSTOP) without answering
    #[arg(long, global = true, value_name = "DURATION", default_value = "10s", value_parser = humantime::parse_duration)]
    pub timeout: std::time::Duration,
}

/// A `ctl` subcommand's help after its options: the exit codes, then `$examples`.
macro_rules! ctl_help {
    ($examples:literal) => {
        concat!(
            "Exit codes: 0 done, 1 refused or failed, 3 no launcher is running, 64 usage error (no agent \
             named, or a name the launcher does not know: the error lists its agents).\n\n",
            $examples
        )
    };
}

#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum CtlCommand {
    /// Start stopped, exited or fatal agents (clears `fatal` and the crash-loop count)
    #[command(after_help = ctl_help!("Examples:\n  \
        agentvisor-launcher ctl start worker\n  agentvisor-launcher ctl start api web\n  agentvisor-launcher ctl start all"))]
    Start(Names),
    /// Stop agents and keep them stopped until started again (a reload does not start them)
    #[command(after_help = ctl_help!("Examples:\n  \
        agentvisor-launcher ctl stop worker\n  agentvisor-launcher ctl stop all      # every agent, dependents first"))]
    Stop(Names),
    /// Stop and start agents again, in dependency order (clears `fatal`)
    #[command(after_help = ctl_help!("Examples:\n  \
        agentvisor-launcher ctl restart worker\n  agentvisor-launcher ctl restart all"))]
    Restart(Names),
    /// Print the launcher's status line and its agents' table (all agents unless named)
    #[command(after_help = ctl_help!("The table has the columns of `agentvisor-dashboard status`.\n\n\
        Examples:\n  agentvisor-launcher ctl status\n  agentvisor-launcher ctl status worker --json"))]
    Status {
        /// Only these agents
        #[arg(value_name = "AGENT")]
        agents: Vec<String>,
    },
    /// Start a run of scheduled agents now (recorded with trigger `manual` and your user)
    #[command(after_help = ctl_help!("Examples:\n  \
        agentvisor-launcher ctl run nightly-report\n  agentvisor-launcher ctl run report backup"))]
    Run {
        /// The scheduled agents to run
        #[arg(value_name = "AGENT", required = true)]
        agents: Vec<String>,
    },
    /// Read the config file again and apply what changed (as SIGHUP or saving the file does)
    #[command(after_help = ctl_help!("Example:\n  agentvisor-launcher ctl reload"))]
    Reload,
}

#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct Names {
    /// The agents to act on, or `all` for every enabled agent (one of the two is required)
    #[arg(value_name = "AGENT|all")]
    pub agents: Vec<String>,
}

impl CtlCommand {
    pub fn split(&self) -> (crate::control::Action, Vec<String>) {
        use crate::control::Action;
        match self {
            CtlCommand::Start(n) => (Action::Start, n.agents.clone()),
            CtlCommand::Stop(n) => (Action::Stop, n.agents.clone()),
            CtlCommand::Restart(n) => (Action::Restart, n.agents.clone()),
            CtlCommand::Status { agents } => (Action::Status, agents.clone()),
            CtlCommand::Run { agents } => (Action::Run, agents.clone()),
            CtlCommand::Reload => (Action::Reload, Vec::new()),
        }
    }
}

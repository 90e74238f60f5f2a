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
    Run,
    /// Validate the config and print the start plan without starting anything
    Check,
    /// Control the running launcher (through its socket beside the database)
    Ctl {
        #[arg(value_enum)]
        action: crate::control::Action,
        /// Agents to act on [default: every enabled agent]
        agents: Vec<String>,
        /// Print the launcher's answer as one JSON object (for scripts)
        #[arg(long)]
        json: bool,
        /// How long to wait for the launcher to accept the connection and answer `status`, or,
        /// for the other actions, how long it may stay stopped (SIGSTOP) without answering
        #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = humantime::parse_duration)]
        timeout: std::time::Duration,
    },
}

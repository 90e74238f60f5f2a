//! `agentvisor-bench`: runs Agentvisor's benchmarks and writes BENCHMARKS.md.
//!
//! `cargo run --release -p agentvisor-bench -- all` runs everything (about 15 minutes on the
//! 2-core machine) and rewrites BENCHMARKS.md at the repository root; `all --quick` runs tiny
//! sizes into a file in the temporary directory, which is what the crate's test does.

mod disk;
mod ingest;
mod interference;
mod reader_loop;
mod report;
mod stats;
mod workload;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use report::{Header, Section};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[derive(Parser)]
#[command(about = "Agentvisor's benchmark harness")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs the benchmarks and writes the report.
    All(AllArgs),
    /// A stand-in dashboard for the non-interference benchmark: reads until stdin closes.
    #[command(hide = true)]
    ReaderLoop {
        #[arg(long)]
        db: PathBuf,
        /// Refreshes per second; flat out when absent.
        #[arg(long)]
        hz: Option<f64>,
    },
}

#[derive(clap::Args)]
struct AllArgs {
    /// Tiny sizes, to check that the harness works; the figures mean nothing.
    #[arg(long)]
    quick: bool,
    /// Where to write the report [default: BENCHMARKS.md at the repository root, or a file in
    /// the temporary directory with --quick].
    #[arg(long)]
    out: Option<PathBuf>,
    /// Run only these benchmarks (ingest, disk, interference, frame, scale, restart, peer).
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Where databases and agents' files go [default: a new temporary directory].
    #[arg(long)]
    work_dir: Option<PathBuf>,
}

fn main() -> std::process::ExitCode {
    match run(Cli::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("agentvisor-bench: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::All(a) => all(a),
        Command::ReaderLoop { db, hz } => reader_loop::run(&db, hz),
    }
}

fn all(a: AllArgs) -> Result<()> {
    let started = Instant::now();
    let load_before = report::loadavg();
    let tmp = tempfile::Builder::new()
        .prefix("agentvisor-bench-")
        .tempdir()
        .context("creating a work directory")?;
    let work = a.work_dir.clone().unwrap_or_else(|| tmp.path().to_owned());
    std::fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;
    let wants = |name: &str| a.only.is_empty() || a.only.iter().any(|o| o == name);
    let mut sections: Vec<Section> = Vec::new();
    if wants("ingest") {
        let p = if a.quick {
            ingest::Params { agents: 10, seconds: 20, reps: 2, raw_batch: 100_000 }
        } else {
            ingest::Params { agents: 100, seconds: 300, reps: 3, raw_batch: 100_000 }
        };
        sections.push(step(ingest::TITLE, || ingest::run(&work, &p)));
    }
    if wants("interference") {
        let p = if a.quick {
            interference::Params {
                agents: 10,
                history_secs: 60,
                phase: Duration::from_millis(500),
                reps: 1,
                period: Duration::from_millis(20),
                readers: 3,
            }
        } else {
            interference::Params {
                agents: 100,
                history_secs: 600,
                phase: Duration::from_secs(10),
                reps: 3,
                period: Duration::from_millis(50),
                readers: 3,
            }
        };
        sections.push(step(interference::TITLE, || interference::run(&work, &p)));
    }
    if wants("disk") {
        let p = if a.quick {
            disk::Params {
                agents: 1,
                target_agents: 2,
                total_secs: 3600,
                checkpoint_secs: 1800,
                check_secs: 1800,
            }
        } else {
            disk::Params {
                agents: 10,
                target_agents: 100,
                total_secs: 8 * 86_400,
                checkpoint_secs: 12 * 3600,
                check_secs: 3600,
            }
        };
        sections.push(step(disk::TITLE, || disk::run(&work, &p)));
    }
    let header = Header {
        command: command_line(&a),
        date: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        quick: a.quick,
        machine: report::machine(),
        load_before,
        load_after: report::loadavg(),
        duration_s: started.elapsed().as_secs_f64(),
    };
    let out = match (&a.out, a.quick) {
        (Some(p), _) => p.clone(),
        (None, true) => std::env::temp_dir().join("agentvisor-BENCHMARKS.quick.md"),
        (None, false) => repo_root().join("BENCHMARKS.md"),
    };
    std::fs::write(&out, report::render(&header, &sections))
        .with_context(|| format!("writing {}", out.display()))?;
    println!("wrote {}", out.display());
    Ok(())
}

/// Runs one benchmark; a failure becomes a section that says so, so one broken benchmark
/// does not lose the others' figures.
fn step(title: &str, f: impl FnOnce() -> Result<Section>) -> Section {
    eprintln!("agentvisor-bench: {title} ...");
    let t = Instant::now();
    let s = f().unwrap_or_else(|e| Section::skipped(title, format!("failed: {e:#}")));
    eprintln!("agentvisor-bench: {title} done in {:.1} s", t.elapsed().as_secs_f64());
    s
}

fn command_line(a: &AllArgs) -> String {
    let mut c = String::from("cargo run --release -p agentvisor-bench -- all");
    if a.quick {
        c.push_str(" --quick");
    }
    if !a.only.is_empty() {
        c.push_str(&format!(" --only {}", a.only.join(",")));
    }
    c
}

/// The workspace root this binary was built from.
fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_owned).unwrap_or_else(|| PathBuf::from("."))
}

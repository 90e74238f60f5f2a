//! `agentvisor-bench`: runs Agentvisor's benchmarks and writes BENCHMARKS.md.
//!
//! `cargo run --release -p agentvisor-bench -- all` runs everything (about 12 minutes on the
//! 2-core machine) and rewrites BENCHMARKS.md at the repository root; `all --quick` runs tiny
//! sizes into a file in the temporary directory, which is what the crate's test does.

mod alerts;
mod disk;
mod exporter;
mod floor;
mod frame;
mod ingest;
mod interference;
mod launcher;
mod peer;
mod probes;
mod procstat;
mod pty_dashboard;
mod reader_loop;
mod receive_floor;
mod report;
mod restart;
mod scale;
mod schedule;
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
    /// A dashboard's reads without its refresh bound, for the non-interference benchmark: reads
    /// flat out until stdin closes.
    #[command(hide = true)]
    ReaderLoop {
        #[arg(long)]
        db: PathBuf,
        /// Keeps the normal CPU priority instead of lowering it as a dashboard's reading thread
        /// does.
        #[arg(long)]
        normal_priority: bool,
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
    /// Run only these benchmarks (ingest, disk, interference, frame, scale, restart, peer,
    /// exporter, probes, alerts, schedule).
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Where databases and agents' files go [default: a new temporary directory].
    #[arg(long)]
    work_dir: Option<PathBuf>,
    /// Measure the launcher and dashboard binaries found next to this program as they are,
    /// without building them in release mode first (the report's "Build" line says which
    /// profile this program was built with; use the same for both).
    #[arg(long)]
    no_build: bool,
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
        Command::ReaderLoop { db, normal_priority } => reader_loop::run(&db, !normal_priority),
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
                reps: 4,
                period: Duration::from_millis(50),
                readers: 3,
            }
        };
        let dashboard = workspace_binary("agentvisor-dashboard", a.quick || a.no_build).ok();
        sections.push(step(interference::TITLE, || interference::run(&work, dashboard.as_deref(), &p)));
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
    if wants("frame") {
        let p = if a.quick {
            frame::Params {
                agents: 20,
                rows_per_series: 100,
                frames: 5,
                dashboard_watch: Duration::from_secs(1),
            }
        } else {
            frame::Params {
                agents: 1000,
                rows_per_series: 1000,
                frames: 200,
                dashboard_watch: Duration::from_secs(5),
            }
        };
        let dashboard = workspace_binary("agentvisor-dashboard", a.quick || a.no_build).ok();
        sections.push(step(frame::TITLE, || frame::run(&work, dashboard.as_deref(), &p)));
    }
    if wants("exporter") {
        let p = if a.quick {
            exporter::Params {
                agents: 20,
                scrapes: 5,
                scrape_gap: Duration::from_millis(100),
                exporters: 3,
                phase: Duration::from_millis(1500),
                reps: 1,
                period: Duration::from_millis(20),
            }
        } else {
            exporter::Params {
                agents: 1000,
                scrapes: 200,
                scrape_gap: Duration::from_millis(250),
                exporters: 3,
                phase: Duration::from_secs(10),
                reps: 4,
                period: Duration::from_millis(50),
            }
        };
        sections.push(match workspace_binary("agentvisor-dashboard", a.quick || a.no_build) {
            Ok(bin) => step(exporter::TITLE, || exporter::run(&work, &bin, &p)),
            Err(e) => Section::skipped(exporter::TITLE, format!("{e:#}")),
        });
    }
    let launcher_bin =
        if wants("scale") || wants("restart") || wants("peer") || wants("probes") || wants("schedule") {
            workspace_binary("agentvisor-launcher", a.quick || a.no_build)
        } else {
            Err(anyhow::anyhow!("not wanted"))
        };
    if wants("scale") {
        let p = if a.quick {
            scale::Params {
                sizes: vec![5],
                reps: 1,
                settle: Duration::from_millis(200),
                window: Duration::from_secs(1),
            }
        } else {
            scale::Params {
                sizes: vec![100, 1000],
                reps: 3,
                settle: Duration::from_secs(5),
                window: Duration::from_secs(60),
            }
        };
        sections.push(match &launcher_bin {
            Ok(bin) => step(scale::TITLE, || scale::run(&work, bin, &p)),
            Err(e) => Section::skipped(scale::TITLE, format!("{e:#}")),
        });
    }
    if wants("probes") {
        let p = if a.quick {
            probes::Params {
                agents: 5,
                reps: 1,
                settle: Duration::from_millis(200),
                window: Duration::from_secs(2),
            }
        } else {
            probes::Params {
                agents: 1000,
                reps: 3,
                settle: Duration::from_secs(5),
                window: Duration::from_secs(30),
            }
        };
        sections.push(match &launcher_bin {
            Ok(bin) => step(probes::TITLE, || probes::run(&work, bin, &p)),
            Err(e) => Section::skipped(probes::TITLE, format!("{e:#}")),
        });
    }
    if wants("schedule") {
        let p = if a.quick {
            schedule::Params {
                runs: 10,
                idle_agents: 5,
                settle: Duration::from_millis(200),
                window: Duration::from_secs(1),
            }
        } else {
            schedule::Params {
                runs: 200,
                idle_agents: 100,
                settle: Duration::from_secs(5),
                window: Duration::from_secs(60),
            }
        };
        sections.push(match &launcher_bin {
            Ok(bin) => step(schedule::TITLE, || schedule::run(&work, bin, &p)),
            Err(e) => Section::skipped(schedule::TITLE, format!("{e:#}")),
        });
    }
    if wants("peer") || wants("restart") {
        let p = if a.quick {
            peer::Params {
                agents: 5,
                reps: 1,
                settle: Duration::from_millis(200),
                window: Duration::from_secs(1),
                crashes: 3,
                peer_crashes: 2,
            }
        } else {
            peer::Params {
                agents: 100,
                reps: 3,
                settle: Duration::from_secs(2),
                window: Duration::from_secs(30),
                crashes: 50,
                peer_crashes: 20,
            }
        };
        match &launcher_bin {
            Ok(bin) => {
                eprintln!("agentvisor-bench: {} and {} ...", restart::TITLE, peer::TITLE);
                let load = report::loadavg();
                let (mut peer, mut restart) = match peer::run(&work, bin, &p, !a.quick) {
                    Ok(pair) => pair,
                    Err(e) => (
                        Section::skipped(peer::TITLE, format!("failed: {e:#}")),
                        Section::skipped(restart::TITLE, format!("failed: {e:#}")),
                    ),
                };
                for s in [&mut peer, &mut restart] {
                    s.details
                        .push(format!("Load average (1, 5, 15 min) when this benchmark started: {load}."));
                }
                sections.push(restart);
                sections.push(peer);
            }
            Err(e) => {
                sections.push(Section::skipped(restart::TITLE, format!("{e:#}")));
                sections.push(Section::skipped(peer::TITLE, format!("{e:#}")));
            }
        }
    }
    if wants("alerts") {
        let p = if a.quick {
            alerts::Params { agents: 50, passes: 20 }
        } else {
            alerts::Params { agents: 1000, passes: 300 }
        };
        sections.push(step(alerts::TITLE, || alerts::run(&p)));
    }
    // Run in the order that needs the least first; reported in the numbering.
    sections.sort_by(|x, y| x.title.cmp(&y.title));
    let header = Header {
        command: command_line(&a),
        source: source(),
        analysis: std::fs::read_to_string(repo_root().join("bench").join("analysis.md")).ok(),
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

/// A binary of the workspace to measure: built in release mode first for a real run (into the
/// same target directory as this program); in quick mode whatever build sits next to this
/// program.
fn workspace_binary(name: &str, quick: bool) -> Result<PathBuf> {
    if !quick {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        eprintln!("agentvisor-bench: building {name} in release mode ...");
        let status = std::process::Command::new(cargo)
            .args(["build", "--release", "-p", name])
            .current_dir(repo_root())
            .status()
            .context("running cargo build")?;
        anyhow::ensure!(status.success(), "cargo build -p {name} failed: {status}");
    }
    launcher::binary(name).with_context(|| {
        format!("no {name} binary next to this program: build it first (cargo build -p {name})")
    })
}

/// Runs one benchmark; a failure becomes a section that says so, so one broken benchmark
/// does not lose the others' figures. The load average at its start goes into its section:
/// the other engineers' builds share the machine.
fn step(title: &str, f: impl FnOnce() -> Result<Section>) -> Section {
    eprintln!("agentvisor-bench: {title} ...");
    let load = report::loadavg();
    let t = Instant::now();
    let mut s = f().unwrap_or_else(|e| Section::skipped(title, format!("failed: {e:#}")));
    s.details.push(format!("Load average (1, 5, 15 min) when this benchmark started: {load}."));
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
    if a.no_build {
        c.push_str(" --no-build");
    }
    c
}

/// The commit measured: `AGENTVISOR_BENCH_COMMIT` when the source is an export without git
/// (to measure committed code while others edit the work tree), else git's HEAD and whether
/// tracked files had changes.
fn source() -> String {
    if let Ok(c) = std::env::var("AGENTVISOR_BENCH_COMMIT") {
        return format!("commit {c}");
    }
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .arg("-C")
            .arg(repo_root())
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
    };
    match (git(&["rev-parse", "--short", "HEAD"]), git(&["status", "--porcelain", "--untracked-files=no"])) {
        (Some(head), Some(changes)) if changes.is_empty() => format!("commit {head}"),
        (Some(head), Some(_)) => format!("commit {head} with uncommitted changes"),
        _ => "unknown (no git)".into(),
    }
}

/// The workspace root this binary was built from.
fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_owned).unwrap_or_else(|| PathBuf::from("."))
}

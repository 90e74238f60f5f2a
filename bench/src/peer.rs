//! The peer (benchmark 6): the same 100 `sleep` agents under supervisord and under the launcher,
//! one after the other in the same run: time until all run, proportional memory of the
//! supervisor's own process, its CPU in the steady state, and restart latency.

use crate::floor;
use crate::launcher::{Agents, Supervisor, write_config};
use crate::procstat;
use crate::report::{Figure, Section, Verdict, mib, ms, ratio};
use crate::restart;
use crate::stats::median;
use anyhow::{Context, Result};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

pub const TITLE: &str = "6. Peer: supervisord";

pub struct Params {
    pub agents: usize,
    /// Start/stop cycles for the time until all run.
    pub reps: usize,
    /// Wait after all run before the steady state is measured.
    pub settle: Duration,
    pub window: Duration,
    pub crashes: usize,
    pub peer_crashes: usize,
}

/// What one supervisor costs.
struct Measured {
    running_s: Vec<f64>,
    pss: f64,
    cpu_percent: f64,
    /// [`floor::SamplingFloor`] over the same agents in the same window.
    floor_percent: f64,
    restarts_ms: Vec<f64>,
}

/// Returns the peer section and the restart-latency section (from the launcher's crashes).
/// Without `with_peer` (quick mode) supervisord is neither installed nor measured.
pub fn run(work: &Path, launcher_bin: &Path, p: &Params, with_peer: bool) -> Result<(Section, Section)> {
    let config = work.join("peer-launcher.toml");
    write_config(&config, p.agents, &Agents::Sleep)?;
    let ours = measure(p, p.crashes, |i| {
        let db = work.join(format!("peer-{i}.db"));
        crate::workload::remove_db(&db);
        Supervisor::launcher(launcher_bin, &config, &db, &work.join(format!("peer-launcher-{i}.log")))
    })?;
    let restart_section = restart::section(p.agents, &ours.restarts_ms);
    let installed = if with_peer {
        install_supervisord(work)
    } else {
        Err(anyhow::anyhow!("skipped in quick mode: it installs supervisor from PyPI"))
    };
    let peer = match installed {
        Ok(bin) => {
            let conf = work.join("supervisord.conf");
            write_supervisord_config(&conf, work, p.agents)?;
            measure(p, p.peer_crashes, |i| {
                let mut cmd = Command::new(&bin);
                cmd.arg("-n").arg("-c").arg(&conf);
                Supervisor::spawn(cmd, &work.join(format!("supervisord-{i}.out")))
            })
            .map_err(|e| e.context("measuring supervisord"))
        }
        Err(e) => Err(e),
    };
    Ok((section(p, &ours, peer), restart_section))
}

fn measure(p: &Params, crashes: usize, start: impl Fn(usize) -> Result<Supervisor>) -> Result<Measured> {
    let comm = Agents::Sleep.comm();
    let mut running_s = Vec::new();
    let mut steady = None;
    for i in 0..p.reps {
        let mut sup = start(i)?;
        running_s.push(sup.wait_running(p.agents, comm, Duration::from_secs(60))?.as_secs_f64());
        if i == 0 {
            // Settles first: the start-up burst is not the steady state.
            std::thread::sleep(p.settle);
            let (stats, floor_percent) =
                floor::steady_window(sup.pid, procstat::children_named(sup.pid, comm), p.window)?;
            let restarts = restart::crashes(sup.pid, comm, crashes)?;
            steady = Some((median(&stats.pss_bytes), stats.cpu_percent, floor_percent, restarts));
        }
        sup.stop()?;
    }
    let (pss, cpu_percent, floor_percent, restarts_ms) = steady.context("no steady-state measurement")?;
    Ok(Measured { running_s, pss, cpu_percent, floor_percent, restarts_ms })
}

fn section(p: &Params, ours: &Measured, peer: Result<Measured>) -> Section {
    let mut s = Section::new(TITLE);
    let our_running = median(&ours.running_s);
    let our_restart = median(&ours.restarts_ms);
    s.method.push(format!(
        "{} agents, each `sleep 100000`, restarted whenever they exit. supervisord is installed from \
         PyPI into a virtualenv in the benchmark's work directory and run in the foreground (`-n`) \
         with one `[program]` per agent (`autorestart=true`, output to its default log files); the \
         launcher runs the config of the restart benchmark (no restart delay) and samples every \
         agent's CPU and memory every second. For each: \"all running\" is from spawning the \
         supervisor until {} `sleep` processes are its children (/proc), median of {} start/stop \
         cycles; on the first cycle, after {:.0} s, CPU (user+system of the supervisor's own process over \
         {:.0} s, from its threads' nanosecond counters in /proc/PID/task/TID/schedstat: at a few \
         hundredths of a percent, clock ticks would be one or two ticks in the window), the sampling \
         floor in the same window (a thread of the benchmark that only reads every agent's \
         /proc/PID/stat once a second: opened once, one `pread` each, nothing parsed or stored; the \
         least that the required sampling costs, which supervisord does not do) and PSS (`Pss` of /proc/PID/smaps_rollup, median of one sample a second; each \
         supervisor is a single process); then {} crashes for the launcher and {} for supervisord \
         (it takes about a second each) timed as in the restart benchmark. Ratios are launcher / \
         supervisord.",
        p.agents,
        p.agents,
        p.reps,
        p.settle.as_secs_f64(),
        p.window.as_secs_f64(),
        p.crashes,
        p.peer_crashes
    ));
    let peer = match peer {
        Ok(m) => m,
        Err(e) => {
            s.figures.push(Figure::info("launcher: all running", ms(our_running * 1000.0)));
            s.figures.push(Figure::info("launcher: PSS", mib(ours.pss)));
            s.figures.push(Figure::info("launcher: CPU", format!("{:.3} %", ours.cpu_percent)));
            s.figures.push(Figure::target("supervisord", "", "", Verdict::Skipped));
            s.details.push(format!("supervisord could not be measured: {e:#}"));
            return s;
        }
    };
    let peer_running = median(&peer.running_s);
    let mem = ours.pss / peer.pss;
    let mut table =
        String::from("| | launcher | supervisord | launcher / supervisord |\n| --- | --- | --- | --- |\n");
    let _ = writeln!(
        table,
        "| all running | {} | {} | {} |",
        ms(our_running * 1000.0),
        ms(peer_running * 1000.0),
        ratio(our_running / peer_running)
    );
    let _ = writeln!(table, "| PSS | {} | {} | {} |", mib(ours.pss), mib(peer.pss), ratio(mem));
    let _ = writeln!(
        table,
        "| CPU | {:.3} % | {:.3} % | {} |",
        ours.cpu_percent,
        peer.cpu_percent,
        ratio(ours.cpu_percent / peer.cpu_percent)
    );
    let _ = writeln!(
        table,
        "| sampling floor: every agent's /proc/PID/stat read once a second, nothing else | {:.3} % | {:.3} % | |",
        ours.floor_percent, peer.floor_percent
    );
    let _ = writeln!(
        table,
        "| restart latency (median) | {} | {} | {} |",
        ms(our_restart),
        ms(median(&peer.restarts_ms)),
        ratio(our_restart / median(&peer.restarts_ms))
    );
    s.details.push(table);
    s.figures.push(Figure::target(
        "launcher: all running",
        format!("{} (supervisord {})", ms(our_running * 1000.0), ms(peer_running * 1000.0)),
        "< 300 ms",
        Verdict::check(our_running, our_running < 0.3),
    ));
    s.figures.push(Figure::target(
        "PSS, launcher / supervisord",
        format!("{} ({} / {})", ratio(mem), mib(ours.pss), mib(peer.pss)),
        "<= 0.5",
        Verdict::check(mem, mem <= 0.5),
    ));
    s.figures.push(Figure::target(
        "CPU, launcher vs supervisord",
        format!("{:.3} % vs {:.3} %", ours.cpu_percent, peer.cpu_percent),
        "launcher <= supervisord",
        Verdict::check(ours.cpu_percent, ours.cpu_percent <= peer.cpu_percent),
    ));
    s.figures.push(Figure::info(
        "sampling floor: every agent's /proc/PID/stat read once a second, nothing else",
        format!("{:.3} %", ours.floor_percent),
    ));
    s.figures.push(Figure::target(
        "restart latency, launcher (supervisord)",
        format!("{} ({})", ms(our_restart), ms(median(&peer.restarts_ms))),
        "< 50 ms",
        Verdict::check(our_restart, our_restart < 50.0),
    ));
    s
}

/// Installs supervisord from PyPI into a virtualenv under `work`; the path of `supervisord`.
fn install_supervisord(work: &Path) -> Result<PathBuf> {
    let venv = work.join("peer-venv");
    let bin = venv.join("bin").join("supervisord");
    if bin.is_file() {
        return Ok(bin);
    }
    run_quietly(Command::new("python3").arg("-m").arg("venv").arg(&venv), "python3 -m venv")?;
    run_quietly(
        Command::new(venv.join("bin").join("pip")).args([
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "supervisor",
        ]),
        "pip install supervisor",
    )?;
    anyhow::ensure!(bin.is_file(), "pip installed supervisor but there is no {}", bin.display());
    Ok(bin)
}

fn run_quietly(cmd: &mut Command, what: &str) -> Result<()> {
    let out = cmd.output().with_context(|| format!("running {what}"))?;
    anyhow::ensure!(
        out.status.success(),
        "{what} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(())
}

fn write_supervisord_config(path: &Path, work: &Path, agents: usize) -> Result<()> {
    let logs = work.join("supervisord-logs");
    std::fs::create_dir_all(&logs).with_context(|| format!("creating {}", logs.display()))?;
    let mut t = format!(
        "[supervisord]\nnodaemon=true\nlogfile={}\npidfile={}\nchildlogdir={}\nloglevel=warn\n",
        work.join("supervisord.log").display(),
        work.join("supervisord.pid").display(),
        logs.display()
    );
    for i in 0..agents {
        let _ = write!(t, "\n[program:a{i:04}]\ncommand=sleep 100000\nautorestart=true\n");
    }
    std::fs::write(path, t).with_context(|| format!("writing {}", path.display()))
}

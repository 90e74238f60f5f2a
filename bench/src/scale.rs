//! Scale (benchmark 2): the launcher supervising 100 and 1,000 tiny agents that each send a
//! heartbeat and two metrics every second: time until all are ready, the launcher's own CPU
//! and memory in the steady state, and the time to stop them all.

use crate::floor;
use crate::launcher::{Agents, Supervisor, write_config};
use crate::procstat;
use crate::receive_floor;
use crate::report::{Figure, Section, Verdict, mib, ms};
use crate::stats::{median, percentile};
use anyhow::{Context, Result};
use std::path::Path;
use std::time::Duration;

pub const TITLE: &str = "2. Scale";

pub struct Params {
    pub sizes: Vec<usize>,
    /// Start/stop cycles per size; the first also measures the steady state.
    pub reps: usize,
    /// Wait after all are ready before measuring the steady state.
    pub settle: Duration,
    pub window: Duration,
}

struct Run {
    ready_s: f64,
    stop_s: f64,
    leftover: usize,
}

struct Steady {
    cpu_percent: f64,
    /// [`floor::SamplingFloor`] over the same agents in the same window.
    floor_percent: f64,
    rss_median: f64,
    rss_max: f64,
}

pub fn run(work: &Path, bin: &Path, p: &Params) -> Result<Section> {
    let mut s = Section::new(TITLE);
    for &n in &p.sizes {
        let config = work.join(format!("scale-{n}.toml"));
        write_config(&config, n, &Agents::Heartbeat)?;
        let mut runs = Vec::new();
        let mut steady = None;
        for rep in 0..p.reps {
            let db = work.join(format!("scale-{n}-{rep}.db"));
            let log = work.join(format!("scale-{n}-{rep}.log"));
            let (run, st) = cycle(bin, &config, &db, &log, n, (rep == 0).then_some(p))?;
            runs.push(run);
            steady = steady.or(st);
        }
        // Right after the launcher's cycles: the same agents, read by this program alone.
        let receiving = match steady {
            Some(_) => Some(receive_floor::measure(n, p.settle, p.window)?),
            None => None,
        };
        let ready = median(&runs.iter().map(|r| r.ready_s).collect::<Vec<_>>());
        let stop = median(&runs.iter().map(|r| r.stop_s).collect::<Vec<_>>());
        let leftover: usize = runs.iter().map(|r| r.leftover).sum();
        let big = n >= 1000;
        let target = |t: &str| if big { t.to_owned() } else { String::new() };
        let verdict = |v: f64, ok: bool| if big { Verdict::check(v, ok) } else { Verdict::Info };
        s.figures.push(Figure::target(
            format!("{n} agents: time until all ready"),
            ms(ready * 1000.0),
            target("< 2 s"),
            verdict(ready, ready < 2.0),
        ));
        if let Some(st) = steady {
            s.figures.push(Figure::target(
                format!("{n} agents: launcher CPU, steady state"),
                format!("{:.2} % of a core", st.cpu_percent),
                target("< 3 %"),
                verdict(st.cpu_percent, st.cpu_percent < 3.0),
            ));
            s.figures.push(Figure::info(
                format!("{n} agents: sampling floor (every agent's /proc/PID/stat read once a second, nothing else)"),
                format!("{:.2} % of a core", st.floor_percent),
            ));
            if let Some(r) = receiving {
                s.figures.push(Figure::info(
                    format!("{n} agents: receiving floor (every agent's messages read from its pipe in one epoll loop, nothing else)"),
                    format!("{r:.2} % of a core"),
                ));
            }
            s.figures.push(Figure::target(
                format!("{n} agents: launcher resident memory (max)"),
                format!("{} (median {})", mib(st.rss_max), mib(st.rss_median)),
                target("< 40 MB"),
                verdict(st.rss_max, st.rss_max < 40e6),
            ));
        }
        s.figures.push(Figure::info(format!("{n} agents: time to stop all"), ms(stop * 1000.0)));
        s.details.push(format!(
            "{n} agents, per cycle: ready after {}; stopped in {}; agent processes left after the stop: {leftover}.",
            runs.iter().map(|r| ms(r.ready_s * 1000.0)).collect::<Vec<_>>().join(", "),
            runs.iter().map(|r| ms(r.stop_s * 1000.0)).collect::<Vec<_>>().join(", "),
        ));
    }
    s.method.push(format!(
        "Each agent is `bash -c` with a loop that sends `READY=1` once, then every second `WATCHDOG=1` \
         and two `X_METRIC_*` values on the notify pipe (`AGENTVISOR_NOTIFY_FD`); it waits with \
         `read -t 1` instead of forking `sleep`. Agents use `ready = \"notify\"`. \"Ready\" is the time \
         from spawning the launcher until the database says every agent is ready (polled every 2 ms \
         with a read-only connection). The steady state is measured on the first of {} start/stop \
         cycles, {:.0} s after all are ready, over {:.0} s: CPU is the launcher process's user+system \
         time (all its threads, the store's writer included; not its agents) from the threads' \
         nanosecond counters (/proc/PID/task/TID/schedstat; clock ticks from /proc/PID/stat if a \
         thread ended during the window) divided by wall time; the sampling floor, in the same \
         window, is a thread of the benchmark that only reads every agent's /proc/PID/stat once a \
         second (opened once, one `pread` each, nothing parsed or stored): the least that \
         sampling every agent every second costs; the receiving floor, measured right after the \
         launcher's cycles for the same size, starts the same agents from the benchmark itself, \
         each with its notify pipe read by one thread of the benchmark (one epoll over every pipe, \
         one `read` per pipe reported ready, nothing parsed, stored or forwarded, a 10 ms pause after \
         each wake-up as the launcher's runtime thread takes while busy; {:.0} s after they \
         start, over {:.0} s): the least that receiving every agent's messages costs; resident memory is `Rss` from /proc/PID/smaps_rollup, sampled every \
         second. Stop is from SIGTERM until the launcher has exited (it stops every agent first). \
         Ready and stop times are medians over the cycles. The launcher samples every agent's CPU \
         and memory every second (`sample_interval = \"1s\"`) throughout.",
        p.reps,
        p.settle.as_secs_f64(),
        p.window.as_secs_f64(),
        p.settle.as_secs_f64(),
        p.window.as_secs_f64()
    ));
    Ok(s)
}

/// One start, (optionally) steady-state measurement, and stop.
fn cycle(
    bin: &Path,
    config: &Path,
    db: &Path,
    log: &Path,
    n: usize,
    steady: Option<&Params>,
) -> Result<(Run, Option<Steady>)> {
    let mut sup = Supervisor::launcher(bin, config, db, log)?;
    let ready = sup.wait_ready(n, Duration::from_secs(120))?;
    let st = match steady {
        Some(p) => Some(measure_steady(sup.pid, p)?),
        None => None,
    };
    let agents = procstat::children(sup.pid);
    let stop = sup.stop().context("stopping the launcher")?;
    let leftover = agents.iter().filter(|pid| procstat::comm(**pid).is_some()).count();
    crate::workload::remove_db(db);
    Ok((Run { ready_s: ready.as_secs_f64(), stop_s: stop.as_secs_f64(), leftover }, st))
}

fn measure_steady(pid: i32, p: &Params) -> Result<Steady> {
    std::thread::sleep(p.settle);
    let (stats, floor_percent) = floor::steady_window(pid, procstat::children(pid), p.window)?;
    Ok(Steady {
        cpu_percent: stats.cpu_percent,
        floor_percent,
        rss_median: median(&stats.rss_bytes),
        rss_max: percentile(&stats.rss_bytes, 100.0),
    })
}

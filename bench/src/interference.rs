//! Non-interference (benchmark 5): the writer's commit latency with no reader, against three real
//! dashboards, each in a terminal of its own and refreshing as fast as it does (at most ten
//! times a second), alternating in the same run; and the largest WAL seen. For context, three
//! reader processes that make a dashboard's reads with no such bound, at the dashboard's low CPU
//! priority and at the normal one.
//!
//! The writer runs with a zero batch window here, so "send, then wait for `flush()`" times the
//! commit itself instead of the 10 ms the writer normally waits to gather a batch.

use crate::pty_dashboard::PtyDashboard;
use crate::report::{Figure, Section, Verdict, mib, ms, ratio};
use crate::stats::{median, percentile};
use crate::workload::{
    METRICS, agent_name, flushed, register_agents, running_status, start_store, tick_samples,
};
use agentvisor_shared::{WriteOp, WriterConfig, WriterHandle};
use anyhow::{Context, Result};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

pub const TITLE: &str = "5. Non-interference";

pub struct Params {
    pub agents: usize,
    /// Seconds of history written before measuring, so reads have rows to scan.
    pub history_secs: u64,
    pub phase: Duration,
    pub reps: usize,
    /// Time between two writer commits.
    pub period: Duration,
    pub readers: usize,
}

/// The terminal each dashboard draws in.
const COLUMNS: u16 = 160;
const ROWS: u16 = 50;

#[derive(Clone, Copy, PartialEq)]
enum Readers {
    None,
    Flat,
    /// Flat out at the normal CPU priority, which a dashboard's reading thread gives up: what
    /// that is worth.
    FlatNormal,
    /// The real dashboard, each on a pseudo-terminal.
    Dashboards,
}

const ALL: [Readers; 4] = [Readers::None, Readers::Dashboards, Readers::Flat, Readers::FlatNormal];

impl Readers {
    fn label(self) -> &'static str {
        match self {
            Readers::None => "no reader",
            Readers::Flat => "3 readers, flat out",
            Readers::FlatNormal => "3 readers, flat out at normal priority",
            Readers::Dashboards => "3 dashboards",
        }
    }
}

/// The kinds of phase that run: the dashboards' only with a dashboard binary.
fn kinds(dashboards: bool) -> Vec<Readers> {
    ALL.into_iter().filter(|r| *r != Readers::Dashboards || dashboards).collect()
}

struct Phase {
    readers: Readers,
    /// Largest WAL file seen during the phase.
    wal_max: u64,
    /// Every commit's latency, in milliseconds.
    latencies_ms: Vec<f64>,
    p99: f64,
    /// Refreshes (readers) or frames (dashboards) per second, one value per process.
    refreshes_per_s: Vec<f64>,
    /// Each dashboard's CPU over the phase, as a share of one core.
    cpu_shares: Vec<f64>,
}

/// `dashboard`: the dashboard's binary; without it, its phases are left out.
pub fn run(work: &Path, dashboard: Option<&Path>, p: &Params) -> Result<Section> {
    let db = work.join("interference.db");
    let cfg = WriterConfig { batch_window: Duration::ZERO, ..WriterConfig::default() };
    let wal_limit = cfg.wal_limit_bytes;
    let (h, thread) = start_store(&db, cfg)?;
    let now = agentvisor_shared::time::now_ms();
    register_agents(&h, p.agents, now)?;
    for t in 0..p.history_secs {
        let ts = now - (p.history_secs - t) as i64 * 1000;
        h.send(WriteOp::Samples(tick_samples(p.agents, ts, t))).context("queueing history")?;
    }
    flushed(&h)?;

    let wal_max = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let monitor = {
        let (wal, wal_max, done) = (agentvisor_shared::paths::wal_path(&db), wal_max.clone(), done.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                let size = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
                wal_max.fetch_max(size, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(1));
            }
        })
    };
    let mut phases = Vec::new();
    let mut tick = p.history_secs;
    let kinds = kinds(dashboard.is_some());
    let outcome = (|| -> Result<()> {
        for rep in 0..p.reps {
            // Each round starts one phase later, so that over four rounds every kind of phase
            // runs once in each position: in a fixed order, the phase that always followed the
            // no-reader one came out slower in most runs, with readers at nice 10 and 19 alike.
            for i in 0..kinds.len() {
                let readers = kinds[(i + rep) % kinds.len()];
                // A phase starts with the WAL the previous one left until housekeeping truncates
                // it; waiting for that keeps each phase's largest WAL its own.
                wait_for_wal_under(&agentvisor_shared::paths::wal_path(&db), wal_limit);
                wal_max.store(0, Ordering::Relaxed);
                let mut ph = phase(work, &db, dashboard, &h, p, readers, &mut tick)?;
                ph.wal_max = wal_max.load(Ordering::Relaxed);
                phases.push(ph);
            }
        }
        Ok(())
    })();
    done.store(true, Ordering::Relaxed);
    let _ = monitor.join();
    drop(h);
    thread.join();
    outcome?;
    Ok(section(p, &phases, wal_limit, dashboard.is_some()))
}

fn section(p: &Params, phases: &[Phase], wal_limit: u64, dashboards: bool) -> Section {
    // A phase's p99 is its second-slowest commit of about two hundred: one preemption moves it.
    // Every commit of the phases with the same readers, pooled, gives each condition a p99
    // over hundreds of commits, and the phases still alternate, so drift in the machine's speed
    // reaches every condition alike.
    let pooled = |r: Readers, p: f64| -> f64 {
        let all: Vec<f64> =
            phases.iter().filter(|x| x.readers == r).flat_map(|x| x.latencies_ms.iter().copied()).collect();
        percentile(&all, p)
    };
    let kinds = kinds(dashboards);
    let mut s = Section::new(TITLE);
    for &r in &kinds {
        s.figures.push(Figure::info(
            format!("commit latency p50 / p99, {}", r.label()),
            format!("{} / {}", ms(pooled(r, 50.0)), ms(pooled(r, 99.0))),
        ));
    }
    let per_phase =
        |r: Readers| median(&phases.iter().filter(|x| x.readers == r).map(|x| x.p99).collect::<Vec<_>>());
    const TARGET: &str = "p99 ratio, 3 dashboards / none";
    if dashboards {
        let live = pooled(Readers::Dashboards, 99.0) / pooled(Readers::None, 99.0);
        s.figures.push(Figure::target(TARGET, ratio(live), "<= 1.1", Verdict::check(live, live <= 1.1)));
        s.figures.push(Figure::info(
            "the same ratio from each phase's own p99 (median over phases)",
            ratio(per_phase(Readers::Dashboards) / per_phase(Readers::None)),
        ));
        let of_dashboards = |f: fn(&Phase) -> &Vec<f64>| {
            median(
                &phases
                    .iter()
                    .filter(|x| x.readers == Readers::Dashboards)
                    .flat_map(|x| f(x).iter().copied())
                    .collect::<Vec<_>>(),
            )
        };
        s.figures.push(Figure::info(
            "frames/s drawn by one dashboard (median)",
            format!("{:.1}", of_dashboards(|x| &x.refreshes_per_s)),
        ));
        s.figures.push(Figure::info(
            "CPU of one dashboard (median)",
            format!("{:.1} % of a core", of_dashboards(|x| &x.cpu_shares) * 100.0),
        ));
    } else {
        s.figures.push(Figure::target(TARGET, "", "<= 1.1", Verdict::Skipped));
        s.details.push("No agentvisor-dashboard binary was found next to this program.".into());
    }
    let flat = pooled(Readers::Flat, 99.0) / pooled(Readers::None, 99.0);
    s.figures.push(Figure::info("p99 ratio, 3 readers flat out / none", ratio(flat)));
    s.figures.push(Figure::info(
        "the same ratio from each phase's own p99 (median over phases)",
        ratio(per_phase(Readers::Flat) / per_phase(Readers::None)),
    ));
    // The same measurement repeated with nothing changed: how far apart p99s fall by noise alone.
    let alone: Vec<f64> = phases.iter().filter(|x| x.readers == Readers::None).map(|x| x.p99).collect();
    let spread =
        alone.iter().copied().fold(f64::MIN, f64::max) / alone.iter().copied().fold(f64::MAX, f64::min);
    s.figures.push(Figure::info(
        "p99 ratio between the no-reader phases, largest / smallest (noise)",
        ratio(spread),
    ));
    let normal = pooled(Readers::FlatNormal, 99.0) / pooled(Readers::None, 99.0);
    s.figures.push(Figure::info("p99 ratio, 3 readers flat out at normal priority / none", ratio(normal)));
    let wal_max = phases.iter().map(|x| x.wal_max).max().unwrap_or(0);
    let wal_of = |r: Readers| phases.iter().filter(|x| x.readers == r).map(|x| x.wal_max).max().unwrap_or(0);
    for &r in &kinds {
        s.figures.push(Figure::info(format!("largest WAL, {}", r.label()), mib(wal_of(r) as f64)));
    }
    s.figures.push(Figure::target(
        "largest WAL seen (all phases)",
        mib(wal_max as f64),
        format!("<= {} (configured limit)", mib(wal_limit as f64)),
        Verdict::check(wal_max as f64, wal_max <= wal_limit),
    ));
    let rates: Vec<f64> = phases
        .iter()
        .filter(|x| x.readers == Readers::Flat)
        .flat_map(|x| x.refreshes_per_s.clone())
        .collect();
    s.figures
        .push(Figure::info("refreshes/s of one flat-out reader (median)", format!("{:.0}", median(&rates))));
    s.method.push(format!(
        "The database holds {} agents and {} s of their {} metrics at 1 Hz. Every {} ms the benchmark \
         sends what a launcher's sampler sends each second (one `WriteOp::Samples` of {} samples and {} \
         `Status` updates) and waits for `flush()`; the time from the send to the flush's return is \
         one commit latency (batch window 0, so no batching delay is included). Dashboards are the \
         real `agentvisor-dashboard`, each on a pseudo-terminal of its own ({COLUMNS}x{ROWS}, its output \
         read and discarded), started before the phase and left until it has drawn the agents; \
         each checks for commits (on the WAL's file events while the database is quiet, every 100 ms \
         while it changes) and refreshes at most ten times a second (its `THROTTLE`), which with a \
         commit every {} ms is as fast as it refreshes; frames are counted by the \
         cursor-hide sequence ratatui writes after each, and CPU is the process's user and system \
         time over the phase. Readers are processes (`agentvisor-bench reader-loop`), each looping \
         `Reader::snapshot()` plus a 120-point series read of the last hour, the reads a dashboard \
         frame makes, with none of the dashboard's bound: `flat out` is as fast as the reader lets \
         them, since it paces itself to at most a tenth of its time inside read transactions; they \
         show what a reader costs beyond anything a dashboard does, at nice 19 (as a dashboard \
         lowers itself) and at normal priority. Phases of {:.0} s with no reader, \
         three dashboards, three readers flat out and three readers flat out at normal priority \
         alternate, {} times each, each round starting one phase later than the one before, so \
         that every kind of phase runs in every position; p50 and p99 are over every commit of the \
         phases of a kind, pooled (a single phase's p99 is its second-slowest commit, which one \
         preemption moves; the ratio of the per-phase p99s' medians is shown beside it). A thread \
         samples the WAL file's size every millisecond; before each phase the benchmark waits (up \
         to 5 s) for housekeeping to bring the WAL back under its limit, so each phase's largest \
         WAL is its own. With two cores, three readers flat out leave the writer a share of a core: \
         their ratio measures CPU contention as much as SQLite locking.",
        p.agents,
        p.history_secs,
        METRICS.len(),
        p.period.as_millis(),
        p.agents * METRICS.len(),
        p.agents.min(10),
        p.period.as_millis(),
        p.phase.as_secs_f64(),
        p.reps
    ));
    let per: Vec<String> = phases
        .iter()
        .map(|x| {
            format!(
                "{}: p50 {}, p99 {}, WAL up to {}",
                x.readers.label(),
                ms(percentile(&x.latencies_ms, 50.0)),
                ms(x.p99),
                mib(x.wal_max as f64)
            )
        })
        .collect();
    s.details.push(format!("Per phase, in order: {}.", per.join("; ")));
    s
}

/// Waits up to a few seconds (a few housekeeping turns) for the WAL to be under `limit`.
fn wait_for_wal_under(wal: &Path, limit: u64) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline && std::fs::metadata(wal).map(|m| m.len()).unwrap_or(0) > limit {
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// One phase: starts the readers or dashboards, times commits for `p.phase`, stops them.
fn phase(
    work: &Path,
    db: &Path,
    dashboard: Option<&Path>,
    h: &WriterHandle,
    p: &Params,
    readers: Readers,
    tick: &mut u64,
) -> Result<Phase> {
    let normal_priority = match (readers, dashboard) {
        (Readers::None, _) => {
            return Ok(summarise(readers, timed_commits(h, p, tick)?, Vec::new(), Vec::new()));
        }
        (Readers::Dashboards, Some(bin)) => return with_dashboards(work, db, bin, h, p, tick),
        (Readers::Dashboards, None) => anyhow::bail!("no dashboard binary to run"),
        (Readers::Flat, _) => false,
        (Readers::FlatNormal, _) => true,
    };
    let mut children = Vec::new();
    for _ in 0..p.readers {
        children.push(spawn_reader(db, normal_priority)?);
    }
    let latencies = timed_commits(h, p, tick);
    let mut rates = Vec::new();
    for c in children {
        rates.push(stop_reader(c)?);
    }
    Ok(summarise(readers, latencies?, rates, Vec::new()))
}

/// A phase with the real dashboard: each waits until it has drawn the agents, then is watched
/// for its frames and CPU while commits are timed, then quits as a user would, with `q`.
fn with_dashboards(
    work: &Path,
    db: &Path,
    bin: &Path,
    h: &WriterHandle,
    p: &Params,
    tick: &mut u64,
) -> Result<Phase> {
    let mut dashboards = Vec::new();
    for i in 0..p.readers {
        let log = work.join(format!("dashboard-{i}.log"));
        let mut d = PtyDashboard::start(bin, db, &log, COLUMNS, ROWS)?;
        d.wait_drawn(&agent_name(0), Duration::from_secs(10))?;
        dashboards.push(d);
    }
    let before = dashboards
        .iter()
        .map(|d| Ok((crate::procstat::cpu_time(d.pid())?, d.frames())))
        .collect::<Result<Vec<_>>>()?;
    let started = Instant::now();
    let latencies = timed_commits(h, p, tick)?;
    let secs = started.elapsed().as_secs_f64();
    let (mut frames, mut cpu) = (Vec::new(), Vec::new());
    for (d, (cpu_before, frames_before)) in dashboards.iter().zip(before) {
        let used = crate::procstat::cpu_time(d.pid())?.saturating_sub(cpu_before);
        cpu.push(used.as_secs_f64() / secs);
        frames.push(d.frames().saturating_sub(frames_before) as f64 / secs);
    }
    for d in dashboards {
        d.quit(Duration::from_secs(5))?;
    }
    Ok(summarise(Readers::Dashboards, latencies, frames, cpu))
}

fn summarise(
    readers: Readers,
    latencies_ms: Vec<f64>,
    refreshes_per_s: Vec<f64>,
    cpu_shares: Vec<f64>,
) -> Phase {
    Phase {
        readers,
        wal_max: 0,
        p99: percentile(&latencies_ms, 99.0),
        latencies_ms,
        refreshes_per_s,
        cpu_shares,
    }
}

/// Commit latencies in milliseconds over one phase.
pub fn timed_commits(h: &WriterHandle, p: &Params, tick: &mut u64) -> Result<Vec<f64>> {
    let mut out = Vec::new();
    let end = Instant::now() + p.phase;
    let mut next = Instant::now();
    while Instant::now() < end {
        let now = agentvisor_shared::time::now_ms();
        let samples = tick_samples(p.agents, now, *tick);
        *tick += 1;
        let started = Instant::now();
        if !h.offer(WriteOp::Samples(samples)) {
            anyhow::bail!("the writer's queue was full");
        }
        for a in 0..p.agents.min(10) {
            let name = crate::workload::agent_name(a);
            h.send(WriteOp::Status(Box::new(running_status(&name, a, now)))).context("queueing a status")?;
        }
        flushed(h)?;
        out.push(started.elapsed().as_secs_f64() * 1000.0);
        next += p.period;
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
    Ok(out)
}

fn spawn_reader(db: &Path, normal_priority: bool) -> Result<Child> {
    let exe = std::env::current_exe().context("finding this program")?;
    let mut cmd = Command::new(exe);
    cmd.arg("reader-loop").arg("--db").arg(db);
    if normal_priority {
        cmd.arg("--normal-priority");
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("starting a reader process")?;
    // Measuring starts only once the reader is reading.
    let stdout = child.stdout.take().context("the reader's stdout")?;
    let mut lines = BufReader::new(stdout);
    let mut line = String::new();
    lines.read_line(&mut line).context("waiting for a reader to start")?;
    anyhow::ensure!(line.trim() == "ready", "the reader said {line:?} instead of ready");
    child.stdout = Some(lines.into_inner());
    Ok(child)
}

/// Closes the reader's stdin, and returns its refreshes per second.
fn stop_reader(mut child: Child) -> Result<f64> {
    drop(child.stdin.take());
    let mut text = String::new();
    if let Some(out) = child.stdout.take() {
        BufReader::new(out).read_line(&mut text).context("reading a reader's count")?;
    }
    let status = child.wait().context("waiting for a reader")?;
    anyhow::ensure!(status.success(), "a reader process failed: {status}");
    let words: Vec<&str> = text.split_whitespace().collect();
    match words.as_slice() {
        ["refreshes", n, "seconds", s] => {
            let n: f64 = n.parse().context("a reader's refresh count")?;
            let s: f64 = s.parse().context("a reader's duration")?;
            Ok(n / s.max(1e-9))
        }
        _ => anyhow::bail!("a reader printed {text:?}"),
    }
}

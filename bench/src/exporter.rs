//! Exporter (benchmark 8): how long a Prometheus scrape of `agentvisor-dashboard serve` takes
//! with 1,000 agents, and what three exporters, each scraped every second, do to the writer's
//! commit latency (measured as in the non-interference benchmark, whose commit loop it reuses).

use crate::interference::{self, timed_commits};
use crate::report::{Figure, Section, Verdict, ms, ratio};
use crate::stats::{median, percentile};
use crate::workload::{flushed, record_runs, register_agents, start_store, tick_samples};
use agentvisor_shared::{WriteOp, WriterConfig};
use anyhow::{Context, Result};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

pub const TITLE: &str = "8. Exporter";

pub struct Params {
    pub agents: usize,
    /// Scrapes timed for the latency figure, `scrape_gap` apart.
    pub scrapes: usize,
    pub scrape_gap: Duration,
    /// Exporters running during the interference phases, each scraped every second.
    pub exporters: usize,
    pub phase: Duration,
    pub reps: usize,
    /// Time between two writer commits.
    pub period: Duration,
}

/// The scrape-latency target (issue 20), and the non-interference one (benchmark 5).
const SCRAPE_P95_MS: f64 = 20.0;
const MAX_RATIO: f64 = 1.1;

pub fn run(work: &Path, dashboard: &Path, p: &Params) -> Result<Section> {
    let db = work.join("exporter.db");
    let cfg = WriterConfig { batch_window: Duration::ZERO, ..WriterConfig::default() };
    let (h, thread) = start_store(&db, cfg)?;
    let now = agentvisor_shared::time::now_ms();
    register_agents(&h, p.agents, now)?;
    record_runs(&h, p.agents, now)?;
    let mut tick = 0u64;
    for t in 0..10 {
        h.send(WriteOp::Samples(tick_samples(p.agents, now - (10 - t) * 1000, tick)))
            .context("queueing samples")?;
        tick += 1;
    }
    flushed(&h)?;

    let outcome = (|| -> Result<Section> {
        // The scrape itself, at the normal priority: the time of the work, not of the share of
        // a core the scheduler leaves a nice-19 process on a machine busy with other work.
        let (mut one, addr) = spawn_exporter(dashboard, &db, true)?;
        let mut times = Vec::with_capacity(p.scrapes);
        let mut bytes = 0;
        let mut series = 0;
        for i in 0..p.scrapes + 3 {
            let started = Instant::now();
            let body = scrape(&addr)?;
            if i >= 3 {
                times.push(started.elapsed().as_secs_f64() * 1000.0);
            }
            bytes = body.len();
            series = body.lines().filter(|l| !l.starts_with('#')).count();
            std::thread::sleep(p.scrape_gap);
        }
        let _ = one.kill();
        let _ = one.wait();
        anyhow::ensure!(
            series > p.agents * 10,
            "the exposition holds {series} series for {} agents: not every agent is in it",
            p.agents
        );

        // Interference: phases without and with exporters (at their default priority, as
        // users run them), alternating, each scraped once a second by a thread of its own.
        let ip = interference::Params {
            agents: p.agents.min(100),
            history_secs: 0,
            phase: p.phase,
            reps: p.reps,
            period: p.period,
            readers: 0,
        };
        let mut none = Vec::new();
        let mut with = Vec::new();
        let mut scrape_ms = Vec::new();
        for rep in 0..p.reps {
            for i in 0..2 {
                if (i + rep) % 2 == 0 {
                    none.extend(timed_commits(&h, &ip, &mut tick)?);
                } else {
                    let (commits, scrapes) =
                        with_exporters(dashboard, &db, p.exporters, || timed_commits(&h, &ip, &mut tick))?;
                    with.extend(commits);
                    scrape_ms.extend(scrapes);
                }
            }
        }
        Ok(section(p, &times, bytes, series, &none, &with, &scrape_ms))
    })();
    drop(h);
    thread.join();
    outcome
}

fn section(
    p: &Params,
    times: &[f64],
    bytes: usize,
    series: usize,
    none: &[f64],
    with: &[f64],
    scrape_ms: &[f64],
) -> Section {
    let mut s = Section::new(TITLE);
    let p95 = percentile(times, 95.0);
    s.figures.push(Figure::target(
        format!("scrape of {} agents, p95", p.agents),
        ms(p95),
        format!("< {SCRAPE_P95_MS} ms"),
        Verdict::check(p95, p95 < SCRAPE_P95_MS),
    ));
    s.figures.push(Figure::info(
        "scrape p50 / max",
        format!("{} / {}", ms(median(times)), ms(times.iter().copied().fold(0.0, f64::max))),
    ));
    s.figures
        .push(Figure::info("exposition size", format!("{series} series, {:.0} KiB", bytes as f64 / 1024.0)));
    let (p99_none, p99_with) = (percentile(none, 99.0), percentile(with, 99.0));
    s.figures.push(Figure::info(
        "commit latency p50 / p99, no exporter",
        format!("{} / {}", ms(median(none)), ms(p99_none)),
    ));
    s.figures.push(Figure::info(
        format!("commit latency p50 / p99, {} exporters scraped every second", p.exporters),
        format!("{} / {}", ms(median(with)), ms(p99_with)),
    ));
    let r = p99_with / p99_none;
    s.figures.push(Figure::target(
        format!("p99 ratio, {} exporters / none", p.exporters),
        ratio(r),
        format!("<= {MAX_RATIO}"),
        Verdict::check(r, r <= MAX_RATIO),
    ));
    s.figures.push(Figure::info(
        "scrape p50 / p95 during those phases (nice 19)",
        format!("{} / {}", ms(median(scrape_ms)), ms(percentile(scrape_ms, 95.0))),
    ));
    s.method.push(format!(
        "The database holds {agents} agents (registered, running, with a state row each, ten series \
         each of which six are custom metrics, and two runs each: one that failed, one running) \
         written through the store. Scrape: the real `agentvisor-dashboard serve` (at the normal \
         priority: the time of the work, not of the share of a core a nice-19 process gets on a \
         machine busy with other builds) is asked for `/metrics` over a plain HTTP/1.1 \
         connection, {scrapes} times {gap} ms apart after 3 warm-up scrapes; a scrape is from the \
         request's first byte to the response's last. \
         Interference: the commit loop of benchmark 5 (a sampler's second of {ia} agents every \
         {period} ms, zero batch window, timed to `flush()`) runs in {phase} s phases alternating \
         between no exporter and {n} exporters (default nice 19, as users run them) each scraped \
         once a second, {reps} rounds; p99 is over every commit of a kind, pooled.",
        agents = p.agents,
        scrapes = p.scrapes,
        gap = p.scrape_gap.as_millis(),
        ia = p.agents.min(100),
        period = p.period.as_millis(),
        phase = p.phase.as_secs_f64(),
        n = p.exporters,
        reps = p.reps,
    ));
    s
}

/// Starts `serve --listen 127.0.0.1:0` and reads the address it reports.
fn spawn_exporter(dashboard: &Path, db: &Path, normal_priority: bool) -> Result<(Child, String)> {
    let mut cmd = Command::new(dashboard);
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--db"]).arg(db);
    if normal_priority {
        cmd.arg("--normal-priority");
    }
    let mut child = cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped()).spawn()?;
    let stderr = child.stderr.take().context("no stderr")?;
    let mut line = String::new();
    BufReader::new(stderr).read_line(&mut line)?;
    let addr = line
        .split("serving http://")
        .nth(1)
        .and_then(|r| r.split('/').next())
        .with_context(|| format!("no address in the exporter's first line: {line:?}"))?;
    Ok((child, addr.to_owned()))
}

/// One GET of /metrics; the body.
fn scrape(addr: &str) -> Result<String> {
    let mut s = TcpStream::connect(addr).with_context(|| format!("connecting to {addr}"))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(s, "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")?;
    let mut raw = String::new();
    s.read_to_string(&mut raw)?;
    anyhow::ensure!(raw.starts_with("HTTP/1.1 200"), "scrape failed: {}", raw.lines().next().unwrap_or(""));
    Ok(raw.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default())
}

/// Runs `f` while `n` exporters run, each scraped every second; returns `f`'s result and the
/// scrapes' times in milliseconds.
fn with_exporters<T>(
    dashboard: &Path,
    db: &Path,
    n: usize,
    f: impl FnOnce() -> Result<T>,
) -> Result<(T, Vec<f64>)> {
    let mut children = Vec::new();
    let stop = Arc::new(AtomicBool::new(false));
    let failures = Arc::new(AtomicU64::new(0));
    let mut scrapers = Vec::new();
    for _ in 0..n {
        let (child, addr) = spawn_exporter(dashboard, db, false)?;
        children.push(child);
        // One scrape before the phase, so start-up is not measured.
        scrape(&addr)?;
        let (stop, failures) = (stop.clone(), failures.clone());
        scrapers.push(std::thread::spawn(move || {
            let mut times = Vec::new();
            let mut next = Instant::now();
            while !stop.load(Ordering::Relaxed) {
                let started = Instant::now();
                match scrape(&addr) {
                    Ok(_) => times.push(started.elapsed().as_secs_f64() * 1000.0),
                    Err(_) => {
                        failures.fetch_add(1, Ordering::Relaxed);
                    }
                }
                next += Duration::from_secs(1);
                while !stop.load(Ordering::Relaxed) && Instant::now() < next {
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
            times
        }));
    }
    let out = f();
    stop.store(true, Ordering::Relaxed);
    let mut times = Vec::new();
    for s in scrapers {
        times.extend(s.join().unwrap_or_default());
    }
    for mut c in children {
        let _ = c.kill();
        let _ = c.wait();
    }
    anyhow::ensure!(failures.load(Ordering::Relaxed) == 0, "some scrapes failed");
    Ok((out?, times))
}

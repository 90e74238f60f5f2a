//! Scheduled agents: how late runs start against their due times (one agent with
//! `every = "100ms"`, lateness of its runs from the `runs` table), and the launcher's CPU while
//! it keeps the schedules of many idle scheduled agents.

use crate::launcher::Supervisor;
use crate::procstat::Window;
use crate::report::{Figure, Section, Verdict, ms};
use crate::stats::{median, percentile};
use anyhow::{Context, Result};
use rusqlite::{Connection, OpenFlags};
use std::path::Path;
use std::time::{Duration, Instant};

pub const TITLE: &str = "11. Scheduled agents";

pub struct Params {
    /// Runs of the `every = "100ms"` agent measured.
    pub runs: usize,
    /// Idle scheduled agents whose launcher's CPU is measured.
    pub idle_agents: usize,
    pub settle: Duration,
    pub window: Duration,
}

pub fn run(work: &Path, bin: &Path, p: &Params) -> Result<Section> {
    let mut s = Section::new(TITLE);
    let lateness = lateness(work, bin, p.runs)?;
    let (m, p99) = (median(&lateness), percentile(&lateness, 99.0));
    s.figures.push(Figure::target(
        format!("lateness of a run's start after its due time, median of {}", lateness.len()),
        ms(m),
        "< 50 ms",
        Verdict::check(m, m < 50.0),
    ));
    s.figures.push(Figure::target("lateness, p99", ms(p99), "< 50 ms", Verdict::check(p99, p99 < 50.0)));
    s.figures.push(Figure::info("lateness, max", ms(percentile(&lateness, 100.0))));
    let cpu = idle_cpu(work, bin, p)?;
    s.figures.push(Figure::info(
        format!("{} idle scheduled agents: launcher CPU", p.idle_agents),
        format!("{cpu:.3} % of a core"),
    ));
    s.method.push(format!(
        "Lateness: one agent `true` with `schedule = {{ every = \"100ms\" }}` and `restart = \"never\"`; \
         the launcher records each run in `runs` with its due time (`due_ms`) and the time its \
         process was spawned (`ts_ms`, taken right after the spawn returned). Lateness is \
         `ts_ms - due_ms` over the first {} runs (skipped runs excluded; none were skipped), so \
         it includes the timer's wake-up, the supervisor's step and the spawn, at millisecond \
         resolution. Idle CPU: {} agents with `schedule = {{ every = \"1h\" }}` (no run comes \
         due while measured), {:.0} s after all are `scheduled`, over {:.0} s: the launcher \
         process's user+system time (all threads) divided by wall time, as in the scale \
         benchmark; the launcher samples every agent every second throughout.",
        p.runs,
        p.idle_agents,
        p.settle.as_secs_f64(),
        p.window.as_secs_f64()
    ));
    s.details.push(format!(
        "Lateness percentiles (ms): p50 {:.1}, p90 {:.1}, p95 {:.1}, p99 {:.1}, max {:.1}.",
        m,
        percentile(&lateness, 90.0),
        percentile(&lateness, 95.0),
        p99,
        percentile(&lateness, 100.0)
    ));
    Ok(s)
}

fn lateness(work: &Path, bin: &Path, runs: usize) -> Result<Vec<f64>> {
    let config = work.join("schedule-lateness.toml");
    let db = work.join("schedule-lateness.db");
    std::fs::write(
        &config,
        "[[agent]]\nname = \"tick\"\ncommand = \"true\"\nrestart = \"never\"\nschedule = { every = \"100ms\" }\n",
    )?;
    let sup = Supervisor::launcher(bin, &config, &db, &work.join("schedule-lateness.log"))?;
    let deadline = Instant::now() + Duration::from_secs(120) + Duration::from_millis(200 * runs as u64);
    let sql = "SELECT ts_ms - due_ms FROM runs WHERE agent = 'tick' AND trigger = 'schedule'
               AND outcome IS NOT NULL AND outcome != 'skipped' ORDER BY id LIMIT ?1";
    let found = loop {
        std::thread::sleep(Duration::from_millis(200));
        if let Ok(found) = read(&db, sql, runs)
            && found.len() >= runs
        {
            break found;
        }
        anyhow::ensure!(Instant::now() < deadline, "{runs} runs did not happen in time");
    };
    sup.stop().context("stopping the launcher")?;
    crate::workload::remove_db(&db);
    Ok(found)
}

fn read(db: &Path, sql: &str, limit: usize) -> Result<Vec<f64>> {
    let c = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let mut stmt = c.prepare(sql)?;
    let rows = stmt.query_map([limit as i64], |r| r.get::<_, i64>(0))?;
    Ok(rows.map(|r| r.map(|v| v as f64)).collect::<rusqlite::Result<_>>()?)
}

fn idle_cpu(work: &Path, bin: &Path, p: &Params) -> Result<f64> {
    let config = work.join("schedule-idle.toml");
    let db = work.join("schedule-idle.db");
    let agents: String = (0..p.idle_agents)
        .map(|i| {
            format!("[[agent]]\nname = \"job-{i}\"\ncommand = \"true\"\nschedule = {{ every = \"1h\" }}\n\n")
        })
        .collect();
    std::fs::write(&config, agents)?;
    let mut sup = Supervisor::launcher(bin, &config, &db, &work.join("schedule-idle.log"))?;
    sup.wait_ready(p.idle_agents, Duration::from_secs(120))?;
    std::thread::sleep(p.settle);
    let w = Window::start(vec![sup.pid])?;
    std::thread::sleep(p.window);
    let cpu = w.finish()?.cpu_percent;
    sup.stop().context("stopping the launcher")?;
    crate::workload::remove_db(&db);
    Ok(cpu)
}

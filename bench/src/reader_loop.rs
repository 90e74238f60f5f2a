//! `agentvisor-bench reader-loop`: a dashboard's reads without the dashboard, run as a child
//! process by the non-interference benchmark. It reads what a dashboard frame reads (a
//! snapshot and one series) as fast as the reader lets it, with none of the dashboard's bound
//! of ten refreshes a second, until its standard input closes, then prints how many refreshes
//! it made.

use crate::workload::{METRICS, agent_name};
use agentvisor_shared::Reader;
use anyhow::{Context, Result};
use std::io::{Read, Write};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

pub fn run(db: &Path, lower_priority: bool) -> Result<()> {
    if lower_priority {
        // As the dashboard's data thread does.
        agentvisor_shared::reader::lower_thread_priority();
    }
    let reader = Reader::open(db).with_context(|| format!("opening {}", db.display()))?;
    let stop = Arc::new(AtomicBool::new(false));
    {
        // The parent closes our stdin to stop us: no signal handling needed.
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut sink = Vec::new();
            let _ = std::io::stdin().read_to_end(&mut sink);
            stop.store(true, Ordering::Relaxed);
        });
    }
    let agent = agent_name(0);
    let mut refreshes = 0u64;
    let started = Instant::now();
    let mut out = std::io::stdout();
    while !stop.load(Ordering::Relaxed) {
        refresh(&reader, &agent)?;
        refreshes += 1;
        if refreshes == 1 {
            writeln!(out, "ready")?;
            out.flush()?;
        }
    }
    writeln!(out, "refreshes {refreshes} seconds {:.3}", started.elapsed().as_secs_f64())?;
    Ok(())
}

/// One dashboard refresh: the snapshot, and the last hour of one agent's CPU for its chart.
pub fn refresh(reader: &Reader, agent: &str) -> Result<usize> {
    let snap = reader.snapshot().context("reading a snapshot")?;
    let since = agentvisor_shared::time::now_ms() - 3_600_000;
    let points = reader.series(agent, METRICS[0], since, 120).context("reading a series")?;
    Ok(snap.agents.len() + points.len())
}

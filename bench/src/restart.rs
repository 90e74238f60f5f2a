//! Restart latency (benchmark 3): from an agent's death (SIGKILL) to its replacement running,
//! observed in /proc, median over many crashes. Measured in the peer benchmark's launcher run
//! (100 `sleep` agents), so that both supervisors are measured the same way in the same run.

use crate::launcher::restart_latency;
use crate::report::{Figure, Section, Verdict, ms};
use crate::stats::{median, percentile};
use anyhow::Result;
use std::time::Duration;

pub const TITLE: &str = "3. Restart latency";

/// Kills `n` agents of `supervisor` one after the other, each time waiting for its
/// replacement; the latencies in milliseconds.
pub fn crashes(supervisor: i32, comm: &str, n: usize) -> Result<Vec<f64>> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(restart_latency(supervisor, comm, Duration::from_secs(30))?.as_secs_f64() * 1000.0);
        // Lets the supervisor finish recording the restart before the next death.
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(out)
}

pub fn section(agents: usize, latencies_ms: &[f64]) -> Section {
    let mut s = Section::new(TITLE);
    let m = median(latencies_ms);
    s.figures.push(Figure::target(
        format!("median over {} crashes", latencies_ms.len()),
        ms(m),
        "< 50 ms",
        Verdict::check(m, m < 50.0),
    ));
    s.figures.push(Figure::info("p95", ms(percentile(latencies_ms, 95.0))));
    s.method.push(format!(
        "The launcher supervises {agents} `sleep` agents with `restart = \"always\"` and `backoff = {{ initial = \
         \"0s\", multiplier = 1.0 }}` (the first restart, before any backoff grows; the default initial \
         delay is 1 s). The benchmark sends SIGKILL to one agent's process and polls the launcher's \
         children in /proc every 0.2 ms until a new `sleep` process (exec'd, not just forked) appears; \
         then it waits 50 ms and kills the next agent, the oldest one each time."
    ));
    s.details.push(format!(
        "All latencies: {}.",
        latencies_ms.iter().map(|x| ms(*x)).collect::<Vec<_>>().join(", ")
    ));
    s
}

//! Alert rules (issue 19): what evaluating the `[[alert]]` rules costs the launcher per sample,
//! as a micro-benchmark of the evaluation pass itself: 1,000 agents x 5 rules, values moving
//! every pass, windows filled as at `sample_interval = "1s"`.

use crate::report::{Figure, Section, Verdict, ms};
use crate::stats::{median, percentile};
use anyhow::Result;

pub const TITLE: &str = "10. Alert rules";

pub struct Params {
    pub agents: usize,
    /// Passes measured, after as many again to fill the windows.
    pub passes: usize,
}

pub fn run(p: &Params) -> Result<Section> {
    let mut s = Section::new(TITLE);
    let all = agentvisor_launcher::bench_alert_passes(p.agents, p.passes * 2).map_err(anyhow::Error::msg)?;
    let times: Vec<f64> = all[p.passes..].iter().map(|d| d.as_secs_f64() * 1000.0).collect();
    let med = median(&times);
    let p99 = percentile(&times, 99.0);
    let share = med / 1000.0 * 100.0;
    s.figures.push(Figure::target(
        format!("one pass, {} agents x 5 rules, median", p.agents),
        ms(med),
        "< 10 ms (1 % of a core at 1 s)",
        Verdict::check(med, med < 10.0),
    ));
    s.figures.push(Figure::info("one pass, p99", ms(p99)));
    s.figures.push(Figure::info("share of a core at sample_interval = 1s", format!("{share:.3} %")));
    s.method.push(format!(
        "`agentvisor_launcher::bench_alert_passes`: {} passes over {} agents of the five rules in \
         `launcher/src/alerts/bench.rs` (threshold with `for`, rate over 15 m, anomaly over 5 m, \
         `absent` on a custom metric, `below`), one simulated second apart, values changing every \
         pass; the first {} passes fill the windows and are not counted. Only the evaluation is \
         timed: gathering the values from the status channels and writing changes are outside.",
        p.passes * 2,
        p.agents,
        p.passes
    ));
    Ok(s)
}

//! What the benchmark harness measures of the rules: evaluation passes over a realistic mix
//! of five rules (a threshold with `for`, a rate over a window, an anomaly, `absent` on a
//! custom metric, and `below`) for many agents whose values move every pass.

use super::{AgentValues, Change, Engine};
use std::time::{Duration, Instant};

const RULES: &str = r#"
[[alert]]
name = "busy"
value = "cpu_percent"
above = "90%"
for = "30s"

[[alert]]
name = "spend"
value = "cost"
rate = "per_hour"
above = 2.0
window = "15m"

[[alert]]
name = "odd-queue"
value = "queue_depth"
anomaly = 3.0
window = "5m"

[[alert]]
name = "queue-silent"
value = "queue_depth"
absent = "5m"

[[alert]]
name = "starved"
value = "memory_bytes"
below = "1MiB"
"#;

/// The time of each of `passes` evaluation passes over `agents` agents, one pass per simulated
/// second (so windows fill as they would at `sample_interval = "1s"`).
pub fn passes(agents: usize, passes: usize) -> Result<Vec<Duration>, String> {
    let mut text = String::new();
    for i in 0..agents {
        text.push_str(&format!("[[agent]]\nname = \"a{i}\"\ncommand = \"true\"\n"));
    }
    text.push_str(RULES);
    let config =
        crate::config::parse(std::path::Path::new("bench.toml"), &text).map_err(|e| e.to_string())?;
    let names: Vec<String> = config.agents.iter().map(|a| a.name.clone()).collect();
    let mut engine = Engine::default();
    let mut changes: Vec<Change> = Vec::new();
    engine.set_rules(config.alerts.into(), 0, &mut changes);
    let mut values: Vec<AgentValues> =
        (0..agents).map(|_| AgentValues { running: true, ..Default::default() }).collect();
    let mut out = Vec::with_capacity(passes);
    for pass in 0..passes {
        let now_ms = pass as i64 * 1_000;
        for (i, v) in values.iter_mut().enumerate() {
            let wobble = ((pass * 7 + i * 13) % 17) as f64;
            v.cpu_percent = Some(20.0 + wobble);
            v.memory_bytes = Some(50e6 + wobble * 1e5);
            v.cost = Some(pass as f64 * 0.0001 * (i % 3) as f64);
            v.custom.insert("queue_depth".into(), (now_ms, 10.0 + wobble));
        }
        let started = Instant::now();
        engine.evaluate(now_ms, names.iter().map(String::as_str).zip(values.iter()), &mut changes);
        out.push(started.elapsed());
        changes.clear();
    }
    Ok(out)
}

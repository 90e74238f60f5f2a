//! Probes (benchmark 8): the launcher's CPU with 1,000 agents each with an HTTP liveness probe
//! every second against one local server, against the same agents without probes, in the same
//! run (the two alternate, so load from elsewhere on the machine falls on both).

use crate::launcher::{Agents, Supervisor, write_config};
use crate::procstat::Window;
use crate::report::{Figure, Section};
use crate::stats::median;
use anyhow::{Context, Result};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

pub const TITLE: &str = "9. Probes";

pub struct Params {
    pub agents: usize,
    /// Pairs of runs (without, then with probes).
    pub reps: usize,
    pub settle: Duration,
    pub window: Duration,
}

/// A keep-alive HTTP/1.1 server that answers every request with `200 ok`, a thread per
/// connection, counting requests. Its own CPU is not the launcher's and is not measured.
struct Server {
    port: u16,
    requests: Arc<AtomicU64>,
}

impl Server {
    fn start() -> Result<Server> {
        let listener = TcpListener::bind("127.0.0.1:0").context("binding the probes' server")?;
        let port = listener.local_addr()?.port();
        let requests = Arc::new(AtomicU64::new(0));
        let counter = requests.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let counter = counter.clone();
                std::thread::spawn(move || serve(conn, &counter));
            }
        });
        Ok(Server { port, requests })
    }

    fn count(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }
}

fn serve(mut conn: TcpStream, requests: &AtomicU64) {
    let _ = conn.set_nodelay(true);
    let mut buf = [0u8; 4096];
    let mut pending: Vec<u8> = Vec::new();
    loop {
        let n = match conn.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        pending.extend_from_slice(&buf[..n]);
        // GET requests have no body: each ends with an empty line.
        while let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
            pending.drain(..end + 4);
            requests.fetch_add(1, Ordering::Relaxed);
            if conn.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok").is_err() {
                return;
            }
        }
    }
}

struct Measured {
    cpu_percent: f64,
    requests_per_s: f64,
}

pub fn run(work: &Path, bin: &Path, p: &Params) -> Result<Section> {
    let server = Server::start()?;
    let n = p.agents;
    let plain = work.join(format!("probes-{n}-plain.toml"));
    write_config(&plain, n, &Agents::Sleep)?;
    let text = std::fs::read_to_string(&plain)?;
    let url = format!("http://127.0.0.1:{}/healthz", server.port);
    let line = "args = [\"100000\"]\n";
    anyhow::ensure!(text.matches(line).count() == n, "the sleep agents' config changed shape");
    let probed_text =
        text.replace(line, &format!("{line}liveness = {{ http = \"{url}\", period = \"1s\" }}\n"));
    let probed = work.join(format!("probes-{n}-probed.toml"));
    std::fs::write(&probed, probed_text)?;
    let (mut without, mut with) = (Vec::new(), Vec::new());
    for rep in 0..p.reps {
        for (config, into) in [(&plain, &mut without), (&probed, &mut with)] {
            let name = config.file_stem().and_then(|s| s.to_str()).unwrap_or("probes");
            let db = work.join(format!("{name}-{rep}.db"));
            let log = work.join(format!("{name}-{rep}.log"));
            into.push(measure(bin, config, &db, &log, n, p, &server)?);
            crate::workload::remove_db(&db);
        }
    }
    let cpu = |runs: &[Measured]| median(&runs.iter().map(|m| m.cpu_percent).collect::<Vec<_>>());
    let (cpu_without, cpu_with) = (cpu(&without), cpu(&with));
    let rate = median(&with.iter().map(|m| m.requests_per_s).collect::<Vec<_>>());
    let mut s = Section::new(TITLE);
    s.figures.push(Figure::info(
        format!("{n} agents, no probes: launcher CPU"),
        format!("{cpu_without:.2} % of a core"),
    ));
    s.figures.push(Figure::info(
        format!("{n} agents, an HTTP liveness probe each every second: launcher CPU"),
        format!("{cpu_with:.2} % of a core"),
    ));
    s.figures.push(Figure::info(
        "cost of the probes",
        format!(
            "{:.2} % of a core, {:.1} µs of CPU a check",
            cpu_with - cpu_without,
            (cpu_with - cpu_without) / 100.0 / rate.max(1e-9) * 1e6
        ),
    ));
    s.figures.push(Figure::info("checks the server answered", format!("{rate:.0} a second")));
    let list = |runs: &[Measured]| {
        runs.iter().map(|m| format!("{:.2} %", m.cpu_percent)).collect::<Vec<_>>().join(", ")
    };
    s.details.push(format!(
        "Launcher CPU per run, without probes: {}; with: {}.",
        list(&without),
        list(&with)
    ));
    s.method.push(format!(
        "{n} agents `sleep 100000` (no protocol), sampled every second as usual; with probes, each also \
         has `liveness = {{ http = \"{url}\", period = \"1s\" }}` against one server in the benchmark \
         process (keep-alive HTTP/1.1, a thread per connection, `200 ok`). Runs alternate without and \
         with probes, {} pairs; each waits until every agent is ready, {:.0} s more, then measures the \
         launcher's CPU (all its threads, user+system, from the threads' nanosecond counters) over \
         {:.0} s. Figures are medians over the runs. The rate is the server's requests over the \
         window.",
        p.reps,
        p.settle.as_secs_f64(),
        p.window.as_secs_f64()
    ));
    Ok(s)
}

fn measure(
    bin: &Path,
    config: &Path,
    db: &Path,
    log: &Path,
    n: usize,
    p: &Params,
    server: &Server,
) -> Result<Measured> {
    let mut sup = Supervisor::launcher(bin, config, db, log)?;
    sup.wait_ready(n, Duration::from_secs(120))?;
    std::thread::sleep(p.settle);
    let before = server.count();
    let started = Instant::now();
    let mut w = Window::start(vec![sup.pid])?;
    let end = started + p.window;
    while Instant::now() < end {
        w.sample_memory()?;
        std::thread::sleep(Duration::from_secs(1).min(end.saturating_duration_since(Instant::now())));
    }
    let stats = w.finish()?;
    let requests_per_s = (server.count() - before) as f64 / started.elapsed().as_secs_f64();
    sup.stop().context("stopping the launcher")?;
    Ok(Measured { cpu_percent: stats.cpu_percent, requests_per_s })
}

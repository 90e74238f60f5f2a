//! Every `sample_interval`: CPU, memory and threads of each agent summed over its process
//! group, the heartbeat gap of agents that heartbeat, the launcher's own CPU and memory, and
//! host CPU, memory, load and free disk on the database's volume. Samples are offered to the
//! writer and dropped (counted) when it is behind.

use crate::fleet::Roster;
use crate::procs::{self, ProcInfo};
use agentvisor_shared::model::metric;
use agentvisor_shared::time::now_ms;
use agentvisor_shared::{Sample, WriteOp, WriterHandle};
use procfs::{Current, CurrentSI};
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

pub struct Sampler {
    roster: Roster,
    writer: WriterHandle,
    /// A directory on the database's volume, for free space.
    db_dir: PathBuf,
    ticks_per_second: f64,
    /// Per agent: its process group and CPU ticks at the last sample.
    last_agent_cpu: HashMap<String, (i32, u64)>,
    last_host_cpu: Option<(u64, u64)>,
    last_own_cpu: Option<u64>,
    last_at: Instant,
}

impl Sampler {
    pub fn new(roster: Roster, writer: WriterHandle, db_dir: PathBuf) -> Sampler {
        Sampler {
            roster,
            writer,
            db_dir,
            ticks_per_second: procfs::ticks_per_second() as f64,
            last_agent_cpu: HashMap::new(),
            last_host_cpu: None,
            last_own_cpu: None,
            last_at: Instant::now(),
        }
    }

    pub async fn run(mut self, interval: Duration) {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            // Reading /proc for every process is blocking file I/O.
            let Ok(procs) = tokio::task::spawn_blocking(procs::all).await else { continue };
            let samples = self.sample(&procs);
            let _ = self.writer.offer(WriteOp::Samples(samples));
        }
    }

    fn sample(&mut self, procs: &[ProcInfo]) -> Vec<Sample> {
        let now = now_ms();
        let elapsed = self.last_at.elapsed().as_secs_f64();
        self.last_at = Instant::now();
        let mut out = Vec::new();
        let mut push = |scope: &str, name: &str, value: f64| {
            out.push(Sample { scope: scope.to_owned(), metric: name.to_owned(), ts_ms: now, value });
        };
        let tps = self.ticks_per_second;
        let cpu_percent = |ticks: u64, last: u64| (ticks.saturating_sub(last) as f64 / tps) / elapsed * 100.0;

        for (name, rx) in &self.roster.members() {
            let st = rx.borrow().clone();
            if let (Some(last), true) = (st.last_heartbeat_ms, st.state.has_process()) {
                push(name, metric::HEARTBEAT_GAP_S, (now - last) as f64 / 1000.0);
            }
            let Some(pgid) = st.pgid.and_then(|p| i32::try_from(p).ok()) else {
                self.last_agent_cpu.remove(name);
                continue;
            };
            let (mut ticks, mut rss, mut threads) = (0u64, 0u64, 0i64);
            for p in procs.iter().filter(|p| p.pgrp == pgid) {
                ticks += p.cpu_ticks;
                rss += p.rss_bytes;
                threads += p.threads;
            }
            // CPU needs two readings of the same process group.
            if let Some((last_pgid, last_ticks)) = self.last_agent_cpu.insert(name.clone(), (pgid, ticks))
                && last_pgid == pgid
            {
                push(name, metric::CPU_PERCENT, cpu_percent(ticks, last_ticks));
            }
            push(name, metric::MEMORY_BYTES, rss as f64);
            push(name, metric::THREADS, threads as f64);
        }

        let own_pid = i32::try_from(std::process::id()).unwrap_or_default();
        if let Some(me) = procs.iter().find(|p| p.pid == own_pid) {
            if let Some(last) = self.last_own_cpu.replace(me.cpu_ticks) {
                push(metric::LAUNCHER, metric::CPU_PERCENT, cpu_percent(me.cpu_ticks, last));
            }
            push(metric::LAUNCHER, metric::MEMORY_BYTES, me.rss_bytes as f64);
        }

        if let Ok(stat) = procfs::KernelStats::current() {
            let t = &stat.total;
            let idle = t.idle + t.iowait.unwrap_or(0);
            let total = t.user
                + t.nice
                + t.system
                + idle
                + t.irq.unwrap_or(0)
                + t.softirq.unwrap_or(0)
                + t.steal.unwrap_or(0);
            if let Some((last_total, last_idle)) = self.last_host_cpu.replace((total, idle)) {
                let dt = total.saturating_sub(last_total);
                if dt > 0 {
                    let busy = dt.saturating_sub(idle.saturating_sub(last_idle));
                    push(metric::HOST, metric::CPU_PERCENT, busy as f64 / dt as f64 * 100.0);
                }
            }
        }
        if let Ok(mem) = procfs::Meminfo::current() {
            let available = mem.mem_available.unwrap_or(mem.mem_free);
            push(metric::HOST, metric::MEMORY_TOTAL_BYTES, mem.mem_total as f64);
            push(metric::HOST, metric::MEMORY_USED_BYTES, mem.mem_total.saturating_sub(available) as f64);
        }
        if let Ok(load) = procfs::LoadAverage::current() {
            push(metric::HOST, metric::LOAD1, f64::from(load.one));
            push(metric::HOST, metric::LOAD5, f64::from(load.five));
            push(metric::HOST, metric::LOAD15, f64::from(load.fifteen));
        }
        if let Ok(fs) = nix::sys::statvfs::statvfs(&self.db_dir) {
            push(
                metric::HOST,
                metric::DISK_FREE_BYTES,
                fs.blocks_available() as f64 * fs.fragment_size() as f64,
            );
        }
        out
    }
}

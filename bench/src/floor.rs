//! The floor under any supervisor that samples its agents: what reading every agent's
//! `/proc/PID/stat` once a second costs by itself, measured next to the launcher in the same
//! window. It is the cheapest way Linux offers to read a process's CPU time, memory and thread
//! count together, done the cheapest way (each file opened once, then one `pread` a second,
//! nothing parsed), so it is a lower bound: supervisord, which samples nothing, pays none of it.

use crate::procstat::{Window, WindowStats};
use anyhow::Result;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub struct SamplingFloor {
    /// Dropped to stop the thread: it sleeps on this channel between reads, so that waiting
    /// costs it nothing.
    stop: Sender<()>,
    thread: JoinHandle<Result<f64>>,
}

impl SamplingFloor {
    /// Starts reading the `/proc/PID/stat` of `pids` every `interval` on a thread of its own.
    pub fn start(pids: Vec<i32>, interval: Duration) -> SamplingFloor {
        let (stop, stopped) = mpsc::channel();
        let thread = std::thread::spawn(move || read_until(&pids, interval, &stopped));
        SamplingFloor { stop, thread }
    }

    /// Stops, and returns the reading thread's CPU time as a percentage of one core.
    pub fn finish(self) -> Result<f64> {
        drop(self.stop);
        self.thread.join().map_err(|_| anyhow::anyhow!("the sampling-floor thread panicked"))?
    }
}

/// The steady-state window of the scale and peer benchmarks: the supervisor's CPU and memory
/// (memory sampled every second, and once more at the end) and, in the same window, the
/// sampling floor over its agents. Returns the supervisor's figures and the floor's CPU.
pub fn steady_window(supervisor: i32, agents: Vec<i32>, window: Duration) -> Result<(WindowStats, f64)> {
    let floor = SamplingFloor::start(agents, Duration::from_secs(1));
    let mut w = Window::start(vec![supervisor])?;
    let end = Instant::now() + window;
    while Instant::now() < end {
        w.sample_memory()?;
        std::thread::sleep(Duration::from_secs(1).min(end.saturating_duration_since(Instant::now())));
    }
    w.sample_memory()?;
    Ok((w.finish()?, floor.finish()?))
}

fn read_until(pids: &[i32], interval: Duration, stopped: &Receiver<()>) -> Result<f64> {
    // Opening is set-up, as in the launcher, which keeps the files open between samples.
    let files: Vec<File> =
        pids.iter().filter_map(|pid| File::open(format!("/proc/{pid}/stat")).ok()).collect();
    anyhow::ensure!(!files.is_empty(), "none of the {} processes could be opened", pids.len());
    let mut buf = vec![0u8; 4096];
    let (cpu_at_start, started) = (own_thread_cpu()?, Instant::now());
    let mut next = started;
    loop {
        for f in &files {
            // A process that has gone fails its read; the others are still read.
            let _ = f.read_at(&mut buf, 0);
        }
        next += interval;
        match stopped.recv_timeout(next.saturating_duration_since(Instant::now())) {
            Err(RecvTimeoutError::Timeout) => {}
            _ => break,
        }
    }
    let cpu = own_thread_cpu()?.saturating_sub(cpu_at_start);
    Ok(100.0 * cpu.as_secs_f64() / started.elapsed().as_secs_f64().max(1e-9))
}

/// This thread's CPU time.
fn own_thread_cpu() -> Result<Duration> {
    crate::procstat::schedstat_ns(Path::new("/proc/thread-self/schedstat")).map(Duration::from_nanos)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_live_process_and_reports_a_share_of_a_core() -> Result<()> {
        let me = std::process::id() as i32;
        let floor = SamplingFloor::start(vec![me], Duration::from_millis(10));
        std::thread::sleep(Duration::from_millis(100));
        let cpu = floor.finish()?;
        assert!((0.0..100.0).contains(&cpu), "{cpu}");
        Ok(())
    }

    #[test]
    fn refuses_when_nothing_can_be_read() {
        let floor = SamplingFloor::start(vec![i32::MAX], Duration::from_millis(10));
        assert!(floor.finish().is_err());
    }
}

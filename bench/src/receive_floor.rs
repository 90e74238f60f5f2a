//! The floor under any supervisor that listens to its agents: what receiving every agent's
//! messages costs by itself. The scale benchmark's agents are started by this program instead
//! of the launcher, their notify pipe (their stdout here) read by one thread: one epoll over
//! every pipe, one `read` per pipe reported ready (level-triggered, so a pipe with more waiting
//! is reported again), nothing parsed, applied, stored or forwarded, and after each wake-up a
//! pause of [`MODERATION`], the launcher's own: a thousand agents' messages arriving one by one
//! then cost a hundred wake-ups a second, not a thousand. A supervisor must at least do this;
//! the launcher also parses each message, applies it to the agent's status and stores it.

use crate::launcher::HEARTBEAT_AGENT;
use anyhow::{Context, Result};
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use std::fs::File;
use std::io::Read;
use std::os::fd::OwnedFd;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The `epoll` key of the pipe that stops the reading thread.
const STOP: u64 = u64::MAX;
/// The pause after each wake-up: what the launcher's runtime thread waits while events stream
/// in, the delay it allows itself before it looks.
const MODERATION: Duration = Duration::from_millis(10);

/// Starts `n` agents, waits `settle`, and returns what reading all their messages cost one
/// thread over `window`, as a percentage of one core.
pub fn measure(n: usize, settle: Duration, window: Duration) -> Result<f64> {
    let mut agents = Agents(Vec::with_capacity(n));
    let mut pipes = Vec::with_capacity(n);
    for _ in 0..n {
        let (read, write) = nix::unistd::pipe().context("creating a pipe")?;
        let child = Command::new("bash")
            .arg("-c")
            .arg(HEARTBEAT_AGENT)
            .env("AGENTVISOR_NOTIFY_FD", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::from(write))
            .stderr(Stdio::null())
            .spawn()
            .context("starting an agent")?;
        agents.0.push(child);
        pipes.push(File::from(read));
    }
    let (stop_read, stop_write) = nix::unistd::pipe().context("creating a pipe")?;
    let (tid_tx, tid_rx) = mpsc::channel();
    let reader = std::thread::spawn(move || read_all(&pipes, stop_read, &tid_tx));
    let outcome = (|| -> Result<f64> {
        let tid = tid_rx.recv().context("the reading thread did not start")??;
        let schedstat = format!("/proc/self/task/{tid}/schedstat");
        let cpu = || crate::procstat::schedstat_ns(Path::new(&schedstat));
        std::thread::sleep(settle);
        let (before, started) = (cpu()?, Instant::now());
        std::thread::sleep(window);
        let used = cpu()?.saturating_sub(before);
        Ok(100.0 * used as f64 / 1e9 / started.elapsed().as_secs_f64())
    })();
    drop(stop_write);
    let messages = reader.join().map_err(|_| anyhow::anyhow!("the reading thread panicked"))??;
    anyhow::ensure!(messages >= n as u64, "only {messages} reads from {n} agents: they did not talk");
    outcome
}

/// Reads every pipe as it becomes ready until `stop` does; the number of reads that returned
/// data. Sends its thread id first, for its CPU time to be read from outside.
fn read_all(pipes: &[File], stop: OwnedFd, tid: &mpsc::Sender<Result<i32>>) -> Result<u64> {
    let _ = tid.send(Ok(nix::unistd::gettid().as_raw()));
    let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC).context("creating an epoll")?;
    for (i, p) in pipes.iter().enumerate() {
        epoll.add(p, EpollEvent::new(EpollFlags::EPOLLIN, i as u64)).context("watching a pipe")?;
    }
    epoll.add(&stop, EpollEvent::new(EpollFlags::EPOLLIN, STOP)).context("watching the stop pipe")?;
    let mut events = vec![EpollEvent::empty(); 256];
    let mut buf = [0u8; 1024];
    let mut reads = 0;
    loop {
        let ready = epoll.wait(&mut events, EpollTimeout::NONE).context("waiting on the pipes")?;
        for e in &events[..ready] {
            if e.data() == STOP {
                return Ok(reads);
            }
            let Some(mut pipe) = usize::try_from(e.data()).ok().and_then(|i| pipes.get(i)) else {
                continue;
            };
            match pipe.read(&mut buf) {
                Ok(0) | Err(_) => {
                    // An agent that died: stop watching its pipe.
                    let _ = epoll.delete(pipe);
                }
                Ok(_) => reads += 1,
            }
        }
        std::thread::sleep(MODERATION);
    }
}

/// The agents, killed when dropped.
struct Agents(Vec<Child>);

impl Drop for Agents {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
        }
        for c in &mut self.0 {
            let _ = c.wait();
        }
    }
}

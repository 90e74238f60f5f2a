//! What a process costs, read from /proc: CPU time, resident and proportional memory.

use anyhow::{Context, Result};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

/// CPU time (user + system) a process has used, not counting its children.
pub fn cpu_time(pid: i32) -> Result<Duration> {
    let stat = procfs::process::Process::new(pid)
        .and_then(|p| p.stat())
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    let ticks = stat.utime + stat.stime;
    Ok(Duration::from_secs_f64(ticks as f64 / procfs::ticks_per_second() as f64))
}

/// Resident memory in bytes (`VmRSS`).
pub fn rss_bytes(pid: i32) -> Result<u64> {
    rollup_field(pid, "Rss:")
}

/// Proportional set size in bytes: shared pages divided among the processes sharing them,
/// so summing it over several processes does not count a shared library twice.
pub fn pss_bytes(pid: i32) -> Result<u64> {
    rollup_field(pid, "Pss:")
}

fn rollup_field(pid: i32, field: &str) -> Result<u64> {
    let path = format!("/proc/{pid}/smaps_rollup");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix(field) {
            let kb: u64 = rest
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse()
                .with_context(|| format!("parsing {field} in {path}"))?;
            return Ok(kb * 1024);
        }
    }
    anyhow::bail!("no {field} line in {path}")
}

/// The pids of `pid`'s children, from /proc/PID/task/*/children.
pub fn children(pid: i32) -> Vec<i32> {
    let mut out = Vec::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return out;
    };
    for task in tasks.flatten() {
        if let Ok(text) = std::fs::read_to_string(task.path().join("children")) {
            out.extend(text.split_whitespace().filter_map(|s| s.parse::<i32>().ok()));
        }
    }
    out
}

/// The command name of a process (`/proc/PID/comm`), or `None` once it is gone.
pub fn comm(pid: i32) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/comm")).ok().map(|s| s.trim().to_owned())
}

/// The children of `pid` whose program is `name`: the agents a supervisor runs, once they have
/// exec'd (a child that is still between fork and exec carries the supervisor's name).
pub fn children_named(pid: i32, name: &str) -> Vec<i32> {
    children(pid).into_iter().filter(|c| comm(*c).as_deref() == Some(name)).collect()
}

/// Watches a set of processes over a window: CPU used (as a share of one core) and memory.
pub struct Window {
    pids: Vec<i32>,
    started: Instant,
    cpu_at_start: Duration,
    threads_at_start: Vec<ThreadTimes>,
    rss: Vec<f64>,
    pss: Vec<f64>,
}

impl Window {
    pub fn start(pids: Vec<i32>) -> Result<Window> {
        let cpu_at_start = total_cpu(&pids)?;
        let threads_at_start = pids.iter().map(|&p| thread_times(p)).collect::<Result<_>>()?;
        Ok(Window {
            pids,
            started: Instant::now(),
            cpu_at_start,
            threads_at_start,
            rss: Vec::new(),
            pss: Vec::new(),
        })
    }

    /// Records memory now; call it periodically during the window.
    pub fn sample_memory(&mut self) -> Result<()> {
        let mut rss = 0;
        let mut pss = 0;
        for &pid in &self.pids {
            rss += rss_bytes(pid)?;
            pss += pss_bytes(pid)?;
        }
        self.rss.push(rss as f64);
        self.pss.push(pss as f64);
        Ok(())
    }

    /// Ends the window: CPU as percent of one core, and the memory samples taken. CPU comes
    /// from the threads' nanosecond counters when every thread of the start is still there
    /// (a thread that ended took its time with it), else from the processes' clock ticks.
    pub fn finish(self) -> Result<WindowStats> {
        let wall = self.started.elapsed();
        let mut precise = Some(Duration::ZERO);
        for (&pid, before) in self.pids.iter().zip(&self.threads_at_start) {
            let after = thread_times(pid)?;
            precise = precise.zip(after.used_since(before)).map(|(a, b)| a + b);
        }
        let cpu = match precise {
            Some(cpu) => cpu,
            None => total_cpu(&self.pids)?.saturating_sub(self.cpu_at_start),
        };
        Ok(WindowStats {
            cpu_percent: 100.0 * cpu.as_secs_f64() / wall.as_secs_f64().max(1e-9),
            rss_bytes: self.rss,
            pss_bytes: self.pss,
        })
    }
}

fn total_cpu(pids: &[i32]) -> Result<Duration> {
    let mut sum = Duration::ZERO;
    for &pid in pids {
        sum += cpu_time(pid)?;
    }
    Ok(sum)
}

/// The CPU time of each thread of a process, in nanoseconds, from the first field of
/// /proc/PID/task/TID/schedstat. Clock ticks (10 ms) are too coarse for a supervisor that
/// uses a few milliseconds a second.
#[derive(Debug, Default)]
pub struct ThreadTimes(BTreeMap<i32, u64>);

impl ThreadTimes {
    /// CPU used since `before`, or `None` if a thread of `before` has ended.
    pub fn used_since(&self, before: &ThreadTimes) -> Option<Duration> {
        let mut ns = 0;
        for (tid, &then) in &before.0 {
            ns += self.0.get(tid)?.saturating_sub(then);
        }
        // Threads started since count from zero.
        ns += self.0.iter().filter(|(tid, _)| !before.0.contains_key(tid)).map(|(_, &t)| t).sum::<u64>();
        Some(Duration::from_nanos(ns))
    }
}

pub fn thread_times(pid: i32) -> Result<ThreadTimes> {
    let dir = format!("/proc/{pid}/task");
    let mut out = BTreeMap::new();
    for task in std::fs::read_dir(&dir).with_context(|| format!("listing {dir}"))?.flatten() {
        let Some(tid) = task.file_name().to_str().and_then(|t| t.parse::<i32>().ok()) else { continue };
        // A thread that ends meanwhile is simply not counted.
        if let Ok(ns) = schedstat_ns(&task.path().join("schedstat")) {
            out.insert(tid, ns);
        }
    }
    Ok(ThreadTimes(out))
}

/// The CPU time in a `schedstat` file (its first field), in nanoseconds.
pub fn schedstat_ns(path: &Path) -> Result<u64> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    text.split_whitespace()
        .next()
        .and_then(|f| f.parse().ok())
        .with_context(|| format!("parsing {}", path.display()))
}

#[derive(Debug, Clone)]
pub struct WindowStats {
    pub cpu_percent: f64,
    pub rss_bytes: Vec<f64>,
    pub pss_bytes: Vec<f64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_own_process() -> Result<()> {
        let me = std::process::id() as i32;
        assert!(rss_bytes(me)? > 0);
        assert!(pss_bytes(me)? > 0);
        let mut w = Window::start(vec![me])?;
        w.sample_memory()?;
        let stats = w.finish()?;
        assert_eq!(stats.rss_bytes.len(), 1);
        Ok(())
    }

    #[test]
    fn a_threads_time_grows_with_its_work() -> Result<()> {
        let (me, tid) = (std::process::id() as i32, nix::unistd::gettid().as_raw());
        let before = thread_times(me)?.0.get(&tid).copied();
        // 30 ms of this thread's own CPU time, however long a loaded machine takes to give it.
        let cpu = || nix::time::clock_gettime(nix::time::ClockId::CLOCK_THREAD_CPUTIME_ID);
        let (start, hang) = (cpu()?, Instant::now() + Duration::from_secs(60));
        while Duration::from(cpu()? - start) < Duration::from_millis(30) && Instant::now() < hang {
            std::hint::spin_loop();
        }
        let after = thread_times(me)?.0.get(&tid).copied();
        let used = after.zip(before).map(|(a, b)| a.saturating_sub(b));
        assert!(used.is_some_and(|ns| ns >= 25_000_000), "{used:?}");
        Ok(())
    }

    #[test]
    fn time_used_counts_new_threads_and_gives_up_on_ended_ones() {
        let times = |t: &[(i32, u64)]| ThreadTimes(t.iter().copied().collect());
        let before = times(&[(1, 100), (2, 50)]);
        assert_eq!(times(&[(1, 150), (2, 60), (3, 5)]).used_since(&before), Some(Duration::from_nanos(65)));
        assert_eq!(times(&[(1, 150), (3, 5)]).used_since(&before), None);
    }
}

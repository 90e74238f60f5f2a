//! What the launcher reads from `/proc`: process start times (to tell a process from a later
//! one that reused its PID), one-off scans of every process (crash recovery, stopping), and the
//! reads the sampler's [`crate::sampling::table::ProcTable`] makes of the processes it keeps open
//! between samples.
//!
//! Every read of `/proc/PID/stat` is one `pread` at offset 0 into a reused buffer: the file is
//! a seq file that the kernel regenerates on a read at offset 0, and it fits one read when the
//! buffer is large enough. The text is parsed by [`proc_stat`].

use super::stat::{self as proc_stat, Stat};
use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::{DirEntryExt, FileExt};

/// Start time of `pid` in clock ticks after boot (`/proc/PID/stat` field 22).
pub fn start_ticks(pid: i32) -> Option<u64> {
    read_stat(&open_stat(pid).ok()?, &mut Vec::new()).map(|s| s.starttime)
}

/// What `/proc/PID/stat` says now, if the process exists.
pub fn stat_of(pid: i32) -> Option<Stat> {
    read_stat(&open_stat(pid).ok()?, &mut Vec::new())
}

/// Whether a process group still has a live (non-zombie) member. Zombies do not count: an
/// orphan that exited may wait a while for its new parent to reap it.
pub fn group_alive(pgid: i32) -> bool {
    let signal_zero = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pgid), None);
    if signal_zero.is_err() {
        return false;
    }
    let (mut pids, mut buf) = (Vec::new(), Vec::new());
    list_pids(&mut pids).is_ok()
        && pids.iter().any(|&(pid, _)| {
            open_stat(pid)
                .ok()
                .and_then(|f| read_stat(&f, &mut buf))
                .is_some_and(|s| s.pgrp == pgid && s.state != 'Z')
        })
}

/// One live (non-zombie) process as the sampler and crash recovery see it.
#[derive(Debug, Clone, Copy)]
pub struct ProcInfo {
    pub pid: i32,
    pub ppid: i32,
    pub pgrp: i32,
    /// The process group of the agent run the process belongs to (see
    /// [`ProcTable`](crate::sampling::table::ProcTable)), or
    /// [`FINISHED_RUN`](crate::sampling::table::FINISHED_RUN); `None` for the launcher,
    /// processes outside the table, and orphans it could not attribute.
    pub owner: Option<i32>,
    pub start_ticks: u64,
    /// User plus system CPU time, in clock ticks.
    pub cpu_ticks: u64,
    pub rss_bytes: u64,
    pub threads: i64,
    /// `/proc/PID/stat` field 3: `R`, `S`, `D`, `T` (stopped), `t` (stopped by a tracer) ...
    pub state: char,
}

impl ProcInfo {
    pub fn new(s: &Stat, page_size: u64) -> ProcInfo {
        ProcInfo {
            pid: s.pid,
            ppid: s.ppid,
            pgrp: s.pgrp,
            owner: None,
            start_ticks: s.starttime,
            cpu_ticks: s.utime + s.stime,
            rss_bytes: s.rss * page_size,
            threads: s.num_threads,
            state: s.state,
        }
    }
}

/// Every live process on the system, in one full scan (open, read, close per process).
/// Processes that vanish while being read are skipped.
pub fn all() -> Vec<ProcInfo> {
    let page = procfs::page_size();
    all_stats().iter().filter(|s| s.state != 'Z').map(|s| ProcInfo::new(s, page)).collect()
}

/// Every process on the system, zombies included, in one full scan.
pub fn all_stats() -> Vec<Stat> {
    let (mut pids, mut buf) = (Vec::new(), Vec::new());
    if list_pids(&mut pids).is_err() {
        return Vec::new();
    }
    pids.iter().filter_map(|&(pid, _)| read_stat(&open_stat(pid).ok()?, &mut buf)).collect()
}

/// The PIDs of `root`'s descendants among `procs` (by their parent links), not `root` itself.
pub fn descendants(root: i32, procs: &[ProcInfo]) -> Vec<i32> {
    let mut children: HashMap<i32, Vec<i32>> = HashMap::new();
    for p in procs {
        children.entry(p.ppid).or_default().push(p.pid);
    }
    let mut out = Vec::new();
    let mut next = vec![root];
    while let Some(pid) = next.pop() {
        for &child in children.get(&pid).into_iter().flatten() {
            // A parent link cannot loop, but a scan is not atomic: never visit twice.
            if child != root && !out.contains(&child) {
                out.push(child);
                next.push(child);
            }
        }
    }
    out
}

pub fn open_stat(pid: i32) -> std::io::Result<File> {
    File::open(format!("/proc/{pid}/stat"))
}

/// The smallest read buffer; a stat line is a few hundred bytes.
const STAT_BUF: usize = 1024;
/// A stat line longer than this is refused rather than read with an ever larger buffer.
const STAT_MAX: usize = 64 * 1024;

/// Reads and parses a `/proc/PID/stat` file with one `pread` at offset 0 (more only if the
/// line does not fit `buf`, which then grows). `None` if the process is gone (`ESRCH`) or the
/// text does not parse.
pub fn read_stat(file: &File, buf: &mut Vec<u8>) -> Option<Stat> {
    if buf.len() < STAT_BUF {
        buf.resize(STAT_BUF, 0);
    }
    loop {
        let n = file.read_at(buf, 0).ok()?;
        if n < buf.len() {
            return proc_stat::parse(&buf[..n]);
        }
        if buf.len() >= STAT_MAX {
            return None;
        }
        buf.resize(buf.len() * 2, 0);
    }
}

/// The first field of `/proc/PID/schedstat`: the main thread's time on a CPU, in nanoseconds.
/// `None` once the process has been reaped.
pub fn read_run_ns(file: &File, buf: &mut Vec<u8>) -> Option<u64> {
    if buf.len() < STAT_BUF {
        buf.resize(STAT_BUF, 0);
    }
    let n = file.read_at(buf, 0).ok()?;
    std::str::from_utf8(&buf[..n]).ok()?.split_ascii_whitespace().next()?.parse().ok()
}

/// The PIDs `/proc` lists, with the inode of each `/proc/PID` directory.
pub fn list_pids(out: &mut Vec<(i32, u64)>) -> std::io::Result<()> {
    out.clear();
    for entry in std::fs::read_dir("/proc")? {
        let Ok(entry) = entry else { break };
        if let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) {
            out.push((pid, entry.ino()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_scan_and_start_time_see_this_process() {
        let own = i32::try_from(std::process::id()).unwrap();
        let me = all().into_iter().find(|p| p.pid == own).unwrap();
        assert_eq!(me.pgrp, nix::unistd::getpgrp().as_raw());
        assert_eq!(start_ticks(own), Some(me.start_ticks));
        assert!(me.threads >= 1 && me.rss_bytes > 0);
        assert!(group_alive(me.pgrp));
    }
}

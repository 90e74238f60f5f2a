//! What the launcher reads from `/proc`: process start times (to tell a process from a later
//! one that reused its PID) and per-process counters for the sampler.

use procfs::process::Process;

/// Start time of `pid` in clock ticks after boot (`/proc/PID/stat` field 22).
pub fn start_ticks(pid: i32) -> Option<u64> {
    Process::new(pid).ok()?.stat().ok().map(|s| s.starttime)
}

/// Whether a process group still has a live (non-zombie) member. Zombies do not count: an
/// orphan that exited may wait a while for its new parent to reap it.
pub fn group_alive(pgid: i32) -> bool {
    let signal_zero = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pgid), None);
    signal_zero.is_ok() && all().iter().any(|p| p.pgrp == pgid)
}

/// One live (non-zombie) process as the sampler and crash recovery see it.
#[derive(Debug, Clone, Copy)]
pub struct ProcInfo {
    pub pid: i32,
    pub pgrp: i32,
    pub start_ticks: u64,
    /// User plus system CPU time, in clock ticks.
    pub cpu_ticks: u64,
    pub rss_bytes: u64,
    pub threads: i64,
}

/// Every live process on the system. Processes that vanish while being read are skipped.
pub fn all() -> Vec<ProcInfo> {
    let page = procfs::page_size();
    let Ok(iter) = procfs::process::all_processes() else { return Vec::new() };
    iter.filter_map(|p| p.ok()?.stat().ok())
        .filter(|s| s.state != 'Z')
        .map(|s| ProcInfo {
            pid: s.pid,
            pgrp: s.pgrp,
            start_ticks: s.starttime,
            cpu_ticks: s.utime + s.stime,
            rss_bytes: s.rss * page,
            threads: s.num_threads,
        })
        .collect()
}

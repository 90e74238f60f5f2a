//! Keeping hold of every process an agent starts, including those that leave its process group
//! (`setsid`, `setpgid`: a daemon's double fork).
//!
//! The launcher makes itself a child subreaper (`PR_SET_CHILD_SUBREAPER`): a process whose
//! parent exits is reparented to the launcher instead of init, so an agent's descendants stay
//! in the launcher's process tree. The sampler's [`crate::procs::ProcTable`] follows that tree
//! and attributes each process to the agent run it came from; it publishes here, per run, the
//! processes outside the run's process group ("escapees"), which stopping the agent signals
//! with its group. It also kills what is left of runs that have ended, and reaps the orphans
//! the launcher inherits. When the launcher stops, every descendant it still has is killed.
//! The escapees are recorded in the database too, so that the launcher started after a crash
//! can stop them ([`crate::recover`]).

use crate::procs;
use nix::libc;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

static SUBREAPER: AtomicBool = AtomicBool::new(false);

/// Per run (its process group): its processes outside that group, `(pid, start ticks)`.
static ESCAPEES: Mutex<BTreeMap<i32, Vec<(i32, u64)>>> = Mutex::new(BTreeMap::new());

fn escapees() -> MutexGuard<'static, BTreeMap<i32, Vec<(i32, u64)>>> {
    ESCAPEES.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Makes the launcher a child subreaper; `false` (and a warning) if the kernel refuses.
#[allow(unsafe_code)]
pub fn become_subreaper() -> bool {
    // SAFETY: prctl with integer arguments only changes this process's attribute.
    let ok = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } == 0;
    if !ok {
        tracing::warn!(
            error = %std::io::Error::last_os_error(),
            "cannot become a child subreaper: processes that leave an agent's process group may escape"
        );
    }
    SUBREAPER.store(ok, Ordering::Relaxed);
    ok
}

pub fn subreaper() -> bool {
    SUBREAPER.load(Ordering::Relaxed)
}

/// Replaces the escapees known for the runs `runs` holds, and forgets runs not in it.
pub fn set_escapees(runs: BTreeMap<i32, Vec<(i32, u64)>>) {
    *escapees() = runs;
}

/// Sends `sig` to a run's processes outside its process group (its group is signalled by
/// [`crate::process::signal_group`]). Each is checked by start time first, so a reused PID is
/// left alone.
pub fn signal_escapees(pgid: i32, sig: Signal) {
    let known = escapees().get(&pgid).cloned().unwrap_or_default();
    for (pid, started) in known {
        if procs::start_ticks(pid) == Some(started) {
            let _ = kill(Pid::from_raw(pid), sig);
        }
    }
}

/// Whether any process of the run is left: in its group, or a known escapee (zombies do not
/// count).
pub fn run_alive(pgid: i32) -> bool {
    if procs::group_alive(pgid) {
        return true;
    }
    let known = escapees().get(&pgid).cloned().unwrap_or_default();
    known
        .into_iter()
        .any(|(pid, started)| procs::stat_of(pid).is_some_and(|s| s.starttime == started && s.state != 'Z'))
}

/// Kills every descendant the launcher still has and reaps those that become its children,
/// until none is left or `limit` has passed; returns how many it killed. For the end of a
/// launcher's run, once its agents are stopped.
pub fn kill_descendants(limit: Duration) -> usize {
    let own = i32::try_from(std::process::id()).unwrap_or_default();
    let deadline = Instant::now() + limit;
    let mut killed = std::collections::BTreeSet::new();
    loop {
        let stats = procs::all_stats();
        let mut zombies = false;
        for s in stats.iter().filter(|s| s.state == 'Z' && s.ppid == own && !crate::child::is_main(s.pid)) {
            zombies |= !crate::child::reap_orphan(s.pid);
        }
        let live: Vec<procs::ProcInfo> = {
            let page = procfs::page_size();
            stats.iter().filter(|s| s.state != 'Z').map(|s| procs::ProcInfo::new(s, page)).collect()
        };
        let left = procs::descendants(own, &live);
        if left.is_empty() && !zombies {
            break;
        }
        for pid in left {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            killed.insert(pid);
        }
        if Instant::now() >= deadline {
            tracing::warn!("processes of the agents are still exiting after {limit:?}");
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    killed.len()
}

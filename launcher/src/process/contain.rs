//! Keeping hold of every process an agent starts, including those that leave its process group
//! (`setsid`, `setpgid`: a daemon's double fork).
//!
//! Where the launcher may create cgroups (cgroup v2, its own cgroup delegated to it), each
//! agent runs in a cgroup of its own, which holds everything it starts whatever it does:
//! stopping the agent signals the cgroup, a run's end kills it (`cgroup.kill`), and the
//! launcher started after a crash kills what the dead one's cgroups still hold. No controller
//! is enabled (the figures come from `/proc`), so the launcher may stay in its own cgroup
//! beside them (the "no internal processes" rule applies only with controllers).
//! Everywhere, cgroups or not:
//!
//! The launcher makes itself a child subreaper (`PR_SET_CHILD_SUBREAPER`): a process whose parent
//! exits is reparented to the launcher instead of init, so an agent's descendants stay in the
//! launcher's process tree. The sampler's [`crate::sampling::table::ProcTable`] follows that tree
//! and attributes each process to the agent run it came from; it tells each run's supervisor the
//! run's processes outside its process group ("escapees"), which stopping the agent signals with
//! its group ([`signal_run`]). It also kills what is left of runs that have ended, and reaps the
//! orphans the launcher inherits. When the launcher stops, every descendant it still has is killed.
//! The escapees are recorded in the database too, so that the launcher started after a crash can
//! stop them ([`crate::daemon::recover`]).

use super::inspect;
use nix::libc;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

static SUBREAPER: AtomicBool = AtomicBool::new(false);

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

/// A run's processes outside its process group, `(pid, start ticks)`, as the sampler last
/// found them: the supervisor of the run holds them, told by the sampler.
pub type Escapees = [(i32, u64)];

/// Sends `sig` to a run's known escapees. Each is checked by start time first, so a reused PID
/// is left alone.
fn signal_escapees(escapees: &Escapees, sig: Signal) {
    for &(pid, started) in escapees {
        if inspect::start_ticks(pid) == Some(started) {
            let _ = kill(Pid::from_raw(pid), sig);
        }
    }
}

/// Whether any process of the run is left: in its group, or a known escapee (zombies do not
/// count).
pub fn run_alive(pgid: i32, escapees: &Escapees) -> bool {
    if inspect::group_alive(pgid) {
        return true;
    }
    escapees.iter().any(|&(pid, started)| {
        inspect::stat_of(pid).is_some_and(|s| s.starttime == started && s.state != 'Z')
    })
}

/// Kills every descendant the launcher still has and reaps those that become its children,
/// until none is left or `limit` has passed; returns how many it killed. For the end of a
/// launcher's run, once its agents are stopped.
pub fn kill_descendants(limit: Duration) -> usize {
    let own = i32::try_from(std::process::id()).unwrap_or_default();
    let deadline = Instant::now() + limit;
    let mut killed = std::collections::BTreeSet::new();
    loop {
        let stats = inspect::all_stats();
        let mut zombies = false;
        for s in
            stats.iter().filter(|s| s.state == 'Z' && s.ppid == own && !crate::process::child::is_main(s.pid))
        {
            zombies |= !crate::process::child::reap_orphan(s.pid);
        }
        let live: Vec<inspect::ProcInfo> = {
            let page = procfs::page_size();
            stats.iter().filter(|s| s.state != 'Z').map(|s| inspect::ProcInfo::new(s, page)).collect()
        };
        let left = inspect::descendants(own, &live);
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

/// The directory under which each agent gets a cgroup of its own (`<base>/<agent>`), when the
/// launcher may create cgroups; set once at start.
static CGROUP_BASE: OnceLock<PathBuf> = OnceLock::new();

/// Starts containment: the launcher becomes a child subreaper, and it uses a cgroup v2 per
/// agent where `cgroups` (the config's `[launcher] cgroups`) and its own cgroup allow (see
/// [`own_cgroup`]). `db` names the directory of this launcher's cgroups among others in the
/// same cgroup.
pub fn start(db: &Path, cgroups: Option<bool>) {
    become_subreaper();
    if cgroups == Some(false) {
        tracing::info!("cgroups turned off in the config: agents are contained as a subreaper only");
        return;
    }
    let Some(own) = own_cgroup(cgroups == Some(true)) else {
        let why = if cgroups == Some(true) {
            tracing::warn!("cgroups = true, but the launcher's cgroup v2 is not writable");
            "no writable cgroup v2"
        } else {
            "no cgroup v2 delegated by systemd (cgroups = true uses a writable one)"
        };
        tracing::info!("{why}: agents are contained as a subreaper only");
        return;
    };
    let db = std::fs::canonicalize(db).unwrap_or_else(|_| db.to_owned());
    let base = own.join(format!("agentvisor-{:016x}", fnv1a(db.as_os_str().as_encoded_bytes())));
    match std::fs::create_dir(&base) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => {
            tracing::warn!(path = %base.display(), error = %e, "cannot create a cgroup: agents are contained as a subreaper only");
            return;
        }
    }
    tracing::info!(path = %base.display(), "each agent runs in a cgroup of its own");
    let _ = CGROUP_BASE.set(base);
}

/// The launcher's own cgroup v2 directory, if it may create cgroups under it: systemd
/// delegated it (`Delegate=yes` marks it with the `trusted.delegate` or `user.delegate`
/// extended attribute, and gives it to the service's user), or, only when `undelegated` (the
/// config's explicit `cgroups = true`), it is the root of the cgroup namespace on a system that
/// systemd does not manage (a container): a tree nobody handed to the launcher is not written
/// on a guess, as systemd writes only what was delegated to it. It must be writable.
fn own_cgroup(undelegated: bool) -> Option<PathBuf> {
    let own = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let path = own.lines().find_map(|l| l.strip_prefix("0::"))?.trim().to_owned();
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let (root, mount) = mountinfo.lines().find_map(|l| {
        let (left, right) = l.split_once(" - ")?;
        if right.split(' ').next()? != "cgroup2" {
            return None;
        }
        let fields: Vec<&str> = left.split(' ').collect();
        Some((fields.get(3)?.to_string(), fields.get(4)?.to_string()))
    })?;
    let relative = path.strip_prefix(root.trim_end_matches('/')).unwrap_or(&path).trim_start_matches('/');
    let dir = Path::new(&mount).join(relative);
    // systemd also hands a delegated cgroup to the service's user, when that is not root.
    let owner = std::fs::metadata(&dir).map(|m| std::os::unix::fs::MetadataExt::uid(&m)).ok();
    let euid = nix::unistd::geteuid().as_raw();
    let ours = has_delegate_mark(&dir)
        || (euid != 0 && owner == Some(euid))
        || (undelegated && path == "/" && !Path::new("/run/systemd/system").exists());
    let writable = nix::unistd::access(&dir, nix::unistd::AccessFlags::W_OK).is_ok();
    (ours && writable && dir.join("cgroup.procs").exists()).then_some(dir)
}

#[allow(unsafe_code)]
fn has_delegate_mark(dir: &Path) -> bool {
    let Ok(path) = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()) else { return false };
    [c"trusted.delegate", c"user.delegate"].iter().any(|name| {
        let mut value = [0u8; 8];
        // SAFETY: getxattr writes at most `value.len()` bytes into `value`.
        let n =
            unsafe { libc::getxattr(path.as_ptr(), name.as_ptr(), value.as_mut_ptr().cast(), value.len()) };
        n == 1 && value[0] == b'1'
    })
}

/// FNV-1a: a stable name for the launcher's cgroup directory from its database path.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

/// The agent's cgroup, if agents get cgroups.
fn cgroup_of(agent: &str) -> Option<PathBuf> {
    Some(CGROUP_BASE.get()?.join(agent))
}

/// The agent's `cgroup.procs`, open for writing, for its next process to move itself in
/// before it executes the program (creating the cgroup if need be). `None` without cgroups, or
/// (with a warning) if it cannot be created.
pub fn cgroup_procs(agent: &str) -> Option<std::fs::File> {
    let dir = cgroup_of(agent)?;
    if let Err(e) = std::fs::create_dir(&dir)
        && e.kind() != std::io::ErrorKind::AlreadyExists
    {
        tracing::warn!(agent, path = %dir.display(), error = %e, "cannot create the agent's cgroup");
        return None;
    }
    match std::fs::OpenOptions::new().write(true).open(dir.join("cgroup.procs")) {
        Ok(f) => Some(f),
        Err(e) => {
            tracing::warn!(agent, path = %dir.display(), error = %e, "cannot open the agent's cgroup");
            None
        }
    }
}

/// The PIDs in a cgroup directory.
fn cgroup_members(dir: &Path) -> Vec<i32> {
    std::fs::read_to_string(dir.join("cgroup.procs"))
        .map(|s| s.lines().filter_map(|l| l.trim().parse().ok()).collect())
        .unwrap_or_default()
}

/// Whether a cgroup directory still holds a live process.
fn cgroup_populated(dir: &Path) -> bool {
    std::fs::read_to_string(dir.join("cgroup.events"))
        .is_ok_and(|s| s.lines().any(|l| l.trim() == "populated 1"))
}

/// Sends `sig` to every process in a cgroup directory but the members of process group
/// `skip` (signalled as a group); SIGKILL goes to all through `cgroup.kill` where the kernel
/// has it (5.14), which also gets processes forked meanwhile. Returns how many were listed.
fn signal_cgroup(dir: &Path, sig: Signal, skip: Option<i32>) -> usize {
    let members = cgroup_members(dir);
    if sig == Signal::SIGKILL && std::fs::write(dir.join("cgroup.kill"), "1").is_ok() {
        return members.len();
    }
    for &pid in &members {
        if skip.is_none() || inspect::stat_of(pid).is_some_and(|s| Some(s.pgrp) != skip) {
            let _ = kill(Pid::from_raw(pid), sig);
        }
    }
    members.len()
}

/// Sends `sig` to every process of the agent's run that is outside its process group (the
/// group itself is signalled by [`crate::process::signal_group`]): the processes in the
/// agent's cgroup, or else the run's escapees the sampler found.
pub fn signal_run(agent: &str, pgid: i32, escapees: &Escapees, sig: Signal) {
    match cgroup_of(agent).filter(|dir| dir.exists()) {
        Some(dir) => {
            signal_cgroup(&dir, sig, Some(pgid));
        }
        None => signal_escapees(escapees, sig),
    }
}

/// Whether anything of the agent's run is left: see [`run_alive`], and its cgroup.
pub fn agent_alive(agent: &str, pgid: i32, escapees: &Escapees) -> bool {
    run_alive(pgid, escapees) || cgroup_of(agent).is_some_and(|dir| cgroup_populated(&dir))
}

/// The agent whose cgroup holds `pid`, if agents get cgroups.
pub fn agent_in_cgroup(pid: i32) -> Option<String> {
    let base = CGROUP_BASE.get()?.file_name()?.to_str()?.to_owned();
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    let path = text.lines().find_map(|l| l.strip_prefix("0::"))?.trim();
    let (parent, agent) = path.rsplit_once('/')?;
    parent.ends_with(&format!("/{base}")).then(|| agent.to_owned())
}

/// Kills what is left in the agents' cgroups (a crashed launcher's agents, at start; every
/// agent's, at the end) and removes the cgroups; returns per agent how many processes were
/// listed.
pub fn kill_cgroups(limit: Duration) -> BTreeMap<String, usize> {
    let mut killed = BTreeMap::new();
    let Some(base) = CGROUP_BASE.get() else { return killed };
    let Ok(entries) = std::fs::read_dir(base) else { return killed };
    let dirs: Vec<PathBuf> = entries.flatten().map(|e| e.path()).filter(|p| p.is_dir()).collect();
    for dir in &dirs {
        let n = signal_cgroup(dir, Signal::SIGKILL, None);
        if n > 0 {
            let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            killed.insert(name, n);
        }
    }
    let deadline = Instant::now() + limit;
    for dir in &dirs {
        while cgroup_populated(dir) && Instant::now() < deadline {
            signal_cgroup(dir, Signal::SIGKILL, None);
            std::thread::sleep(Duration::from_millis(20));
        }
        // A cgroup with a process left cannot be removed; the next start tries again.
        let _ = std::fs::remove_dir(dir);
    }
    killed
}

/// Removes the launcher's cgroup directory, once its agents' cgroups are gone (at the end).
pub fn remove_cgroup_base() {
    if let Some(base) = CGROUP_BASE.get() {
        let _ = std::fs::remove_dir(base);
    }
}

//! The sampler's [`ProcTable`]: the agents' processes, kept open between samples. What it reads
//! of each process goes through [`crate::process::inspect`].

use crate::process::inspect::{ProcInfo, list_pids, open_stat, read_run_ns, read_stat};
use crate::process::stat::Stat;
use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::os::unix::fs::FileExt;

/// The owner of an orphan that belongs to an agent run that has ended.
pub const FINISHED_RUN: i32 = 0;

/// The sampler's table of the processes in the agents' process groups, kept between samples
/// so that a sample costs one `pread` per such process, one listing of `/proc` if the kernel
/// has handed out a PID since the last listing, and nothing per unrelated process.
///
/// - **Kept** processes (live members of a wanted group, and the launcher itself) hold their
///   `/proc/PID/stat` open. The descriptor refers to that very process, so a reused PID cannot
///   be mistaken for it: once the process is reaped, the read fails (`ESRCH`) and the entry is
///   dropped. Each sample's read also gives its current pgrp, so a kept process that moves
///   to a group that is not wanted (`setpgid`, or the agent's group left the roster) or
///   becomes a zombie is dropped at once, and becomes a skipped PID.
/// - **Skipped** PIDs (not in a wanted group, or zombies) are remembered with the inode number
///   `/proc` lists for them, and not read again while they stay listed with the same inode,
///   unless their last known group, or their PID as a group, becomes wanted (a new agent's
///   first sample, or a child read in the instant between fork and `setpgid`). A new process
///   gets a new `/proc/PID` inode, so a reused PID is normally examined at the first sample
///   that lists it; as a backstop, and to notice a process that joins a wanted group with
///   `setpgid`, every skipped PID is read again once every `recheck_every` samples (spread
///   over the samples by PID). That is the bound on how late a process can be noticed.
///   Skipped PIDs that `/proc` no longer lists are forgotten.
/// - **No listing** while no PID has been handed out since the last one (the last PID in
///   `/proc/loadavg` has not moved; a new thread moves it too): no process can have appeared,
///   so only the skipped PIDs due to be read again are read. An idle fleet on a quiet machine
///   is then sampled without listing `/proc` at all.
/// - **Quiet** processes are not read in full: a single-threaded kept process whose
///   `/proc/PID/schedstat` (its run time in nanoseconds, cheaper to read than `stat`) has not
///   moved since its last full read has not run since, so its CPU time and
///   threads are what that read said, and it is reported from it. Most agents wait on
///   something most of the time. Memory is the one figure that can change without the
///   process running (the kernel reclaiming its file pages), and its group can be changed by
///   its parent; the full read every `recheck_every` samples (spread by PID) bounds both.
///   A process found to have run waits 4, 8, 16 ... up to [`MAX_QUIET_BACKOFF`] samples
///   before it is watched again, so one that wakes every second costs two extra reads about
///   once a minute.
///
/// Descriptors: one per kept process (live processes in the agents' groups, plus one for the
/// launcher) and one more per single-threaded one, at most `max_open_files` (a quarter of the
/// soft `RLIMIT_NOFILE` limit), so a fork-happy agent cannot starve the launcher of
/// descriptors. Beyond that, kept processes are read by path (open, read, close) at each
/// sample and checked by start time instead.
/// If opening fails for want of descriptors (`EMFILE`, `ENFILE`), the budget is halved for
/// good and the descriptors beyond it are closed, to leave the rest of the launcher room.
/// The descriptors are close-on-exec (std opens files with `O_CLOEXEC`).
///
/// **Ownership.** Every kept process except the launcher belongs to an agent run, named by the
/// run's process group (its main PID), and keeps that owner until it exits, whatever group or
/// session it moves to: members of a wanted group belong to it, and a new process whose
/// parent is owned inherits the parent's owner. With [`ProcTable::adopt_orphans`] (the
/// launcher is a child subreaper), processes whose parent is the launcher but that are not
/// agents' main processes are kept too: orphans of an agent's tree, reparented. One the table
/// saw before keeps its owner; a new one is attributed by the `AGENTVISOR_AGENT` variable in
/// its environment to that agent's current run (or to [`FINISHED_RUN`] if it started before
/// that run); without it, it is kept with no owner.
#[derive(Debug)]
pub struct ProcTable {
    own_pid: i32,
    page_size: u64,
    kept: HashMap<i32, Kept>,
    skipped: HashMap<i32, Skipped>,
    open_files: usize,
    max_open_files: usize,
    /// An open failed for want of descriptors during this sample.
    out_of_files: bool,
    recheck_every: u64,
    samples: u64,
    /// Reused between samples: the listing of `/proc` and the read buffer.
    listing: Vec<(i32, u64)>,
    buf: Vec<u8>,
    /// `/proc/loadavg`, whose fifth field is the last PID the kernel handed out in this PID
    /// namespace, and that PID when `/proc` was last listed (see [`ProcTable::sample`]).
    loadavg: Option<File>,
    listed_at_pid: Option<i32>,
    /// Keep the launcher's orphaned descendants (see "Ownership" above).
    adopt_orphans: bool,
    /// Per agent name: its current run's process group and the main process's start time.
    runs: HashMap<String, (i32, u64)>,
    /// Zombie children of the launcher seen during the last sample.
    zombies: Vec<i32>,
    /// Tests set this to pretend that no PID is handed out.
    #[cfg(test)]
    frozen_pid: Option<i32>,
    /// Processes reported from their schedstat alone, so far.
    #[cfg(test)]
    quiet_reads: u64,
}

#[derive(Debug)]
struct Kept {
    /// `None` when over the descriptor budget: read by path at each sample.
    file: Option<File>,
    /// The inode `/proc` listed for the PID when it was found.
    ino: u64,
    start_ticks: u64,
    quiet: Quiet,
    owner: Option<i32>,
}

/// Whether a kept process has run since its last full read (see [`ProcTable`]).
#[derive(Debug, Default)]
struct Quiet {
    /// `/proc/PID/schedstat`, opened once the process has been seen single-threaded.
    sched: Option<File>,
    /// Single-threaded at the last full read: schedstat covers only the main thread.
    single: bool,
    /// The run time read just before the last full read, and what that read gave.
    since: Option<(u64, ProcInfo)>,
    /// After the process was found to have run: samples of full reads before it is watched
    /// again (`wait`), and how many that was last time (`backoff`), doubled each time.
    wait: u32,
    backoff: u32,
}

/// The fewest and the most samples a process found to have run waits before it is watched
/// again: one that wakes every second costs two extra reads per wait.
const MIN_QUIET_BACKOFF: u32 = 4;
const MAX_QUIET_BACKOFF: u32 = 64;

impl Quiet {
    /// The run time to take just before a full read, if the process is to be watched after it.
    fn baseline(&mut self, pid: i32, buf: &mut Vec<u8>, budget: &mut FileBudget<'_>) -> Option<u64> {
        if self.wait > 0 {
            self.wait -= 1;
            return None;
        }
        if !self.single {
            return None;
        }
        if self.sched.is_none() && budget.take() {
            match File::open(format!("/proc/{pid}/schedstat")) {
                Ok(f) => self.sched = Some(f),
                Err(e) => {
                    budget.give_back();
                    *budget.out_of_files |= is_out_of_files(&e);
                }
            }
        }
        read_run_ns(self.sched.as_ref()?, buf)
    }

    /// Records a full read that gave `info`, taken just after the run time `baseline`.
    fn read_in_full(&mut self, baseline: Option<u64>, info: ProcInfo) {
        self.single = info.threads == 1;
        // A kernel without schedstat shows zeros; a process that has run at all shows more.
        self.since = baseline.filter(|&run| run > 0 && self.single).map(|run| (run, info));
    }

    /// What the last full read gave, if the process has not run since and that still counts.
    fn unchanged(&mut self, buf: &mut Vec<u8>) -> Option<ProcInfo> {
        let (run, info) = self.since.take()?;
        let now = read_run_ns(self.sched.as_ref()?, buf)?;
        if now == run {
            self.since = Some((run, info));
            self.backoff = 0;
            return Some(info);
        }
        self.backoff = (self.backoff * 2).clamp(MIN_QUIET_BACKOFF, MAX_QUIET_BACKOFF);
        self.wait = self.backoff;
        None
    }

    fn open_files(&self) -> usize {
        usize::from(self.sched.is_some())
    }
}

/// The table's descriptor count against its budget, lent to code that opens files.
struct FileBudget<'a> {
    open: &'a mut usize,
    max: usize,
    out_of_files: &'a mut bool,
}

impl FileBudget<'_> {
    /// Counts one more descriptor, if the budget has room.
    fn take(&mut self) -> bool {
        let room = *self.open < self.max;
        if room {
            *self.open += 1;
        }
        room
    }

    fn give_back(&mut self) {
        *self.open -= 1;
    }
}

#[derive(Debug)]
struct Skipped {
    ino: u64,
    /// Its group when last read; `None` for a zombie, which never becomes ours.
    pgrp: Option<i32>,
    /// The sample that last listed it.
    seen: u64,
}

impl Skipped {
    /// Whether to read the PID again at this sample: its last known group, or it as a group,
    /// is wanted now, or its periodic recheck is due (spread over the samples by PID).
    fn read_again(&self, pid: i32, groups: &HashSet<i32>, sample: u64, every: u64) -> bool {
        let maybe_ours = self.pgrp.is_some_and(|g| groups.contains(&g) || groups.contains(&pid));
        maybe_ours || (sample + u64::from(pid.unsigned_abs())).is_multiple_of(every)
    }
}

/// The fifth field of `/proc/loadavg` ("0.14 0.38 0.47 1/78 10724").
fn parse_last_pid(text: &[u8]) -> Option<i32> {
    std::str::from_utf8(text).ok()?.split_ascii_whitespace().nth(4)?.parse().ok()
}

/// How many descriptors the table may hold when the limit cannot be read.
const DEFAULT_MAX_OPEN_FILES: usize = 256;

impl ProcTable {
    /// A table that reads every skipped PID again once every `recheck_every` samples.
    pub fn new(recheck_every: u64) -> ProcTable {
        let max_open_files = match nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        {
            Ok((soft, _)) => usize::try_from(soft / 4).unwrap_or(usize::MAX),
            Err(_) => DEFAULT_MAX_OPEN_FILES,
        };
        ProcTable::with_limits(recheck_every, max_open_files)
    }

    fn with_limits(recheck_every: u64, max_open_files: usize) -> ProcTable {
        ProcTable {
            own_pid: i32::try_from(std::process::id()).unwrap_or_default(),
            page_size: procfs::page_size(),
            kept: HashMap::new(),
            skipped: HashMap::new(),
            open_files: 0,
            max_open_files,
            out_of_files: false,
            recheck_every: recheck_every.max(1),
            samples: 0,
            listing: Vec::new(),
            buf: Vec::new(),
            loadavg: None,
            listed_at_pid: None,
            adopt_orphans: false,
            runs: HashMap::new(),
            zombies: Vec::new(),
            #[cfg(test)]
            frozen_pid: None,
            #[cfg(test)]
            quiet_reads: 0,
        }
    }

    /// Keeps the launcher's orphaned descendants from now on (see "Ownership" above).
    pub fn adopt_orphans(&mut self) {
        self.adopt_orphans = true;
    }

    /// The agents' current runs, by agent name: process group and main start time. Orphans
    /// are attributed by them.
    pub fn set_runs(&mut self, runs: HashMap<String, (i32, u64)>) {
        self.runs = runs;
    }

    /// Zombie children of the launcher seen during the last sample (some may be agents' main
    /// processes, which their supervisors reap).
    pub fn zombie_children(&self) -> &[i32] {
        &self.zombies
    }

    /// The live processes the table keeps (see "Ownership" above): the process groups in
    /// `groups`, what their members started, and the launcher itself.
    pub fn sample(&mut self, groups: &HashSet<i32>) -> Vec<ProcInfo> {
        self.samples += 1;
        let sample = self.samples;
        let mut out = Vec::with_capacity(self.kept.len() + 16);
        let (own, page, every, adopt) =
            (self.own_pid, self.page_size, self.recheck_every, self.adopt_orphans);
        self.zombies.clear();
        let zombies = &mut self.zombies;
        let (buf, skipped) = (&mut self.buf, &mut self.skipped);
        let mut budget = FileBudget {
            open: &mut self.open_files,
            max: self.max_open_files,
            out_of_files: &mut self.out_of_files,
        };
        #[cfg(test)]
        let quiet_reads = &mut self.quiet_reads;

        // The known processes: one pread each.
        self.kept.retain(|&pid, k| {
            let full_read_due = (sample + u64::from(pid.unsigned_abs())).is_multiple_of(every);
            if !full_read_due
                && let Some(mut info) = k.quiet.unchanged(buf)
                && still_ours(&info, k.owner, own, groups, adopt)
            {
                #[cfg(test)]
                {
                    *quiet_reads += 1;
                }
                info.owner = k.owner;
                out.push(info);
                return true;
            }
            let stat = match &k.file {
                Some(f) => {
                    let baseline = k.quiet.baseline(pid, buf, &mut budget);
                    let stat = read_stat(f, buf);
                    if let Some(s) = &stat {
                        k.quiet.read_in_full(baseline, ProcInfo::new(s, page));
                    }
                    stat
                }
                None => {
                    let f = match open_stat(pid) {
                        Ok(f) => f,
                        Err(e) => {
                            *budget.out_of_files |= is_out_of_files(&e);
                            return false;
                        }
                    };
                    let stat = read_stat(&f, buf).filter(|s| s.starttime == k.start_ticks);
                    if stat.is_some() && budget.take() {
                        k.file = Some(f);
                    }
                    stat
                }
            };
            let keep = match &stat {
                Some(s)
                    if s.state != 'Z' && still_ours(&ProcInfo::new(s, page), k.owner, own, groups, adopt) =>
                {
                    if k.owner.is_none() && pid != own && groups.contains(&s.pgrp) {
                        k.owner = Some(s.pgrp);
                    }
                    let mut info = ProcInfo::new(s, page);
                    info.owner = k.owner;
                    out.push(info);
                    true
                }
                // Still there, but a zombie or in another group now.
                Some(s) => {
                    if s.state == 'Z' && s.ppid == own {
                        zombies.push(pid);
                    }
                    let pgrp = (s.state != 'Z').then_some(s.pgrp);
                    skipped.insert(pid, Skipped { ino: k.ino, pgrp, seen: sample });
                    false
                }
                // Gone (ESRCH), or a reused PID (start time differs).
                None => false,
            };
            if !keep {
                *budget.open -= usize::from(k.file.is_some()) + k.quiet.open_files();
            }
            keep
        });

        // A process the table has not seen got its PID after the last listing, so while the
        // kernel has handed out no PID since, listing `/proc` finds
        // nothing new: only the skipped PIDs that may have become ours are read. The PID is
        // read before listing, so a process that starts meanwhile moves it past what is kept.
        let last_pid = self.last_pid();
        if last_pid.is_some() && last_pid == self.listed_at_pid {
            let every = self.recheck_every;
            let again: Vec<(i32, u64)> = self
                .skipped
                .iter()
                .filter(|&(&pid, s)| s.read_again(pid, groups, sample, every))
                .map(|(&pid, s)| (pid, s.ino))
                .collect();
            for (pid, ino) in again {
                self.examine(pid, ino, groups, &mut out);
            }
        } else {
            let listed = self.list(groups, &mut out);
            self.listed_at_pid = last_pid.filter(|_| listed);
        }
        if std::mem::take(&mut self.out_of_files) {
            self.shed_files();
        }
        out
    }

    /// Lists `/proc` and reads new PIDs, and skipped ones that may have become ours. `false`
    /// if `/proc` could not be listed: nothing new is found and nothing skipped is forgotten.
    fn list(&mut self, groups: &HashSet<i32>, out: &mut Vec<ProcInfo>) -> bool {
        let sample = self.samples;
        let mut listing = std::mem::take(&mut self.listing);
        let listed = list_pids(&mut listing).is_ok();
        if listed {
            for &(pid, ino) in &listing {
                if self.kept.contains_key(&pid) {
                    continue;
                }
                if let Some(s) = self.skipped.get_mut(&pid)
                    && s.ino == ino
                {
                    s.seen = sample;
                    if !s.read_again(pid, groups, sample, self.recheck_every) {
                        continue;
                    }
                }
                self.examine(pid, ino, groups, out);
            }
            self.skipped.retain(|_, s| s.seen == sample);
        }
        self.listing = listing;
        listed
    }

    /// The last PID handed out in this PID namespace, `None` if `/proc/loadavg` cannot say.
    fn last_pid(&mut self) -> Option<i32> {
        #[cfg(test)]
        if self.frozen_pid.is_some() {
            return self.frozen_pid;
        }
        if self.loadavg.is_none() {
            self.loadavg = File::open("/proc/loadavg").ok();
        }
        let mut text = [0u8; 128];
        let n = self.loadavg.as_ref()?.read_at(&mut text, 0).ok()?;
        parse_last_pid(&text[..n])
    }

    /// The descriptor budget, for code that has the whole table (see [`ProcTable::sample`] for
    /// code that borrows its parts).
    fn budget(&mut self) -> FileBudget<'_> {
        FileBudget {
            open: &mut self.open_files,
            max: self.max_open_files,
            out_of_files: &mut self.out_of_files,
        }
    }

    /// Halves the descriptor budget and closes the descriptors beyond it.
    fn shed_files(&mut self) {
        self.max_open_files = self.max_open_files.min(self.open_files / 2);
        tracing::warn!(
            open = self.open_files,
            limit = self.max_open_files,
            "out of file descriptors: the sampler keeps fewer /proc files open"
        );
        // The schedstat descriptors first: without them a sample costs more, not less.
        for k in self.kept.values_mut() {
            if self.open_files <= self.max_open_files {
                break;
            }
            if k.quiet.sched.take().is_some() {
                k.quiet.since = None;
                self.open_files -= 1;
            }
        }
        for k in self.kept.values_mut() {
            if self.open_files <= self.max_open_files {
                break;
            }
            if k.file.take().is_some() {
                self.open_files -= 1;
            }
        }
    }

    /// Reads a PID that is not kept and files it as kept or skipped.
    fn examine(&mut self, pid: i32, ino: u64, groups: &HashSet<i32>, out: &mut Vec<ProcInfo>) {
        let file = match open_stat(pid) {
            Ok(file) => file,
            Err(e) => {
                self.out_of_files |= is_out_of_files(&e);
                self.skipped.remove(&pid);
                return;
            }
        };
        let Some(stat) = read_stat(&file, &mut self.buf) else {
            self.skipped.remove(&pid);
            return;
        };
        if stat.state == 'Z' && stat.ppid == self.own_pid {
            self.zombies.push(pid);
        }
        if stat.state != 'Z'
            && let Some(owner) = self.owner_of(&stat, groups)
        {
            self.skipped.remove(&pid);
            let file = self.budget().take().then_some(file);
            let quiet = Quiet::default();
            self.kept.insert(pid, Kept { file, ino, start_ticks: stat.starttime, quiet, owner });
            let mut info = ProcInfo::new(&stat, self.page_size);
            info.owner = owner;
            out.push(info);
        } else {
            let pgrp = (stat.state != 'Z').then_some(stat.pgrp);
            self.skipped.insert(pid, Skipped { ino, pgrp, seen: self.samples });
        }
    }

    /// Whether a process the table does not keep is ours, and if so its owner (see
    /// "Ownership" above).
    fn owner_of(&self, s: &Stat, groups: &HashSet<i32>) -> Option<Option<i32>> {
        if s.pid == self.own_pid {
            return Some(None);
        }
        if groups.contains(&s.pgrp) {
            return Some(Some(s.pgrp));
        }
        if let Some(parent) = self.kept.get(&s.ppid)
            && parent.owner.is_some()
        {
            return Some(parent.owner);
        }
        // An agent's main process whose group the caller does not know yet is left for later.
        if self.adopt_orphans && s.ppid == self.own_pid && !crate::process::child::is_main(s.pid) {
            let agent =
                crate::process::contain::agent_in_cgroup(s.pid).or_else(|| agent_in_environment(s.pid));
            let Some(agent) = agent else { return Some(None) };
            return Some(Some(match self.runs.get(&agent) {
                Some(&(pgid, started)) if s.starttime >= started => pgid,
                _ => FINISHED_RUN,
            }));
        }
        None
    }

    /// How many `/proc/PID/stat` and `schedstat` descriptors the table holds.
    #[cfg(test)]
    fn open_files(&self) -> usize {
        self.kept.values().map(|k| usize::from(k.file.is_some()) + k.quiet.open_files()).sum()
    }
}

/// Whether a kept process stays in the table (see "Ownership" on [`ProcTable`]).
fn still_ours(p: &ProcInfo, owner: Option<i32>, own: i32, groups: &HashSet<i32>, adopt: bool) -> bool {
    p.pid == own || owner.is_some() || groups.contains(&p.pgrp) || (adopt && p.ppid == own)
}

/// The environment variable naming the agent a process was started for; its descendants
/// inherit it unless they clear their environment.
const AGENT_VARIABLE: &[u8] = b"AGENTVISOR_AGENT=";

/// How much of `/proc/PID/environ` is searched.
const ENVIRON_MAX: u64 = 256 * 1024;

/// The agent named by `AGENTVISOR_AGENT` in a process's environment, if any.
fn agent_in_environment(pid: i32) -> Option<String> {
    use std::io::Read;
    let mut environ = Vec::new();
    File::open(format!("/proc/{pid}/environ")).ok()?.take(ENVIRON_MAX).read_to_end(&mut environ).ok()?;
    environ
        .split(|&b| b == 0)
        .find_map(|var| var.strip_prefix(AGENT_VARIABLE))
        .and_then(|name| String::from_utf8(name.to_vec()).ok())
}

fn is_out_of_files(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(nix::libc::EMFILE | nix::libc::ENFILE))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process::inspect::{all, descendants};
    use nix::sys::signal::{Signal, kill, killpg};
    use nix::unistd::Pid;
    use std::os::unix::process::CommandExt;
    use std::process::{Child, Command};
    use std::time::{Duration, Instant};

    const DEADLINE: Duration = Duration::from_secs(10);

    /// Polls `f` until it returns `Some`, or fails the test at the deadline.
    fn wait_for<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
        let end = Instant::now() + DEADLINE;
        loop {
            if let Some(v) = f() {
                return v;
            }
            assert!(Instant::now() < end, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// A shell command in its own process group, killed (whole group) and reaped on drop.
    struct Group(Child);

    impl Group {
        fn spawn(script: &str) -> Group {
            Group(Command::new("sh").args(["-c", script]).process_group(0).spawn().unwrap())
        }
        fn pgid(&self) -> i32 {
            i32::try_from(self.0.id()).unwrap()
        }
    }

    impl Drop for Group {
        fn drop(&mut self) {
            let _ = killpg(Pid::from_raw(self.pgid()), Signal::SIGKILL);
            let _ = self.0.wait();
        }
    }

    fn stat_files(table: &ProcTable) -> usize {
        table.kept.values().filter(|k| k.file.is_some()).count()
    }

    fn members(procs: &[ProcInfo], pgid: i32) -> Vec<i32> {
        let mut pids: Vec<i32> = procs.iter().filter(|p| p.pgrp == pgid).map(|p| p.pid).collect();
        pids.sort_unstable();
        pids
    }

    #[test]
    fn pread_at_offset_zero_reads_fresh_counters_and_fails_once_reaped() {
        let mut busy = Group::spawn("while :; do :; done");
        let pid = busy.pgid();
        let file = open_stat(pid).unwrap();
        let mut buf = Vec::new();
        let first = read_stat(&file, &mut buf).unwrap();
        assert_eq!(first.pid, pid);
        // The same descriptor, read again at offset 0, shows the CPU time going up.
        wait_for("CPU time to grow", || {
            let s = read_stat(&file, &mut buf).unwrap();
            (s.utime + s.stime > first.utime + first.stime).then_some(())
        });
        busy.0.kill().unwrap();
        busy.0.wait().unwrap();
        let err = file.read_at(&mut buf, 0).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(nix::libc::ESRCH));
        assert!(read_stat(&file, &mut buf).is_none());
    }

    #[test]
    fn sees_both_members_of_a_group_and_drops_a_killed_one() {
        let group = Group::spawn("sleep 30 & exec sleep 30");
        let pgid = group.pgid();
        let groups = HashSet::from([pgid]);
        let mut table = ProcTable::new(10);
        let pids = wait_for("two members", || {
            let m = members(&table.sample(&groups), pgid);
            (m.len() == 2).then_some(m)
        });
        assert!(pids.contains(&pgid));
        let other = pids.into_iter().find(|&p| p != pgid).unwrap();
        // Each member holds its stat file open; the launcher itself is kept too.
        assert_eq!(stat_files(&table), 3);
        kill(Pid::from_raw(other), Signal::SIGKILL).unwrap();
        // A zombie (not yet reaped by its parent) or gone: either way not a member any more.
        wait_for("the killed member to drop", || {
            (members(&table.sample(&groups), pgid) == [pgid]).then_some(())
        });
        assert!(!table.kept.contains_key(&other));
        assert_eq!(stat_files(&table), 2);
        // Its schedstat file, if it had one, is given back to the budget too.
        assert_eq!(table.open_files(), table.open_files);
    }

    #[test]
    fn forgets_an_exited_process() {
        let mut group = Group::spawn("exec sleep 30");
        let pid = group.pgid();
        let groups = HashSet::from([pid]);
        let mut table = ProcTable::new(10);
        wait_for("the process", || (members(&table.sample(&groups), pid) == [pid]).then_some(()));
        group.0.kill().unwrap();
        group.0.wait().unwrap();
        assert!(members(&table.sample(&groups), pid).is_empty());
        assert!(!table.kept.contains_key(&pid));
        assert!(!table.skipped.contains_key(&pid));
    }

    #[test]
    fn includes_the_launcher_and_skips_foreign_groups_until_wanted() {
        let group = Group::spawn("exec sleep 30");
        let pid = group.pgid();
        let mut table = ProcTable::new(1000);
        let own = i32::try_from(std::process::id()).unwrap();
        // Not wanted: read once (once the shell has its own group), then skipped.
        let none = HashSet::new();
        wait_for("the process to be skipped", || {
            let procs = table.sample(&none);
            assert!(procs.iter().any(|p| p.pid == own));
            assert!(members(&procs, pid).is_empty());
            table.skipped.get(&pid).is_some_and(|s| s.pgrp == Some(pid)).then_some(())
        });
        // Its group becomes wanted: found at the next sample, not at the next recheck.
        let wanted = HashSet::from([pid]);
        assert_eq!(members(&table.sample(&wanted), pid), [pid]);
        assert!(table.kept.contains_key(&pid) && !table.skipped.contains_key(&pid));
        // Its group is no longer wanted (the run ended): still reported, owned by that run, so
        // that the sampler can kill it as a leftover.
        let left = table.sample(&none).into_iter().find(|p| p.pid == pid).map(|p| p.owner);
        assert_eq!(left, Some(Some(pid)));
    }

    #[test]
    fn a_descendant_that_leaves_the_group_keeps_its_owner() {
        let group = Group::spawn("setsid sleep 30 & exec sleep 30");
        let pgid = group.pgid();
        let groups = HashSet::from([pgid]);
        let mut table = ProcTable::new(1000);
        let escaped = wait_for("the escaped sleep", || {
            let procs = table.sample(&groups);
            procs.into_iter().find(|p| p.pid != pgid && p.ppid == pgid && p.pgrp != pgid)
        });
        assert_eq!(escaped.owner, Some(pgid));
        assert_eq!(escaped.pgrp, escaped.pid);
        // Its group is not wanted, yet it stays, with its owner.
        for _ in 0..3 {
            let again = table.sample(&groups).into_iter().find(|p| p.pid == escaped.pid);
            assert_eq!(again.map(|p| p.owner), Some(Some(pgid)));
        }
        assert_eq!(descendants(pgid, &all()), [escaped.pid]);
        let _ = kill(Pid::from_raw(escaped.pid), Signal::SIGKILL);
    }

    #[test]
    fn rechecks_a_skipped_pid_within_the_bound() {
        recheck_within_bound(false);
    }

    #[test]
    fn without_new_pids_still_rechecks_a_skipped_pid_within_the_bound() {
        recheck_within_bound(true);
    }

    fn recheck_within_bound(frozen: bool) {
        let group = Group::spawn("sleep 30 & exec sleep 30");
        let pgid = group.pgid();
        let groups = HashSet::from([pgid]);
        let mut table = ProcTable::new(5);
        let pids = wait_for("two members", || {
            let m = members(&table.sample(&groups), pgid);
            (m.len() == 2).then_some(m)
        });
        let other = pids.into_iter().find(|&p| p != pgid).unwrap();
        if frozen {
            freeze(&mut table);
        }
        // Pretend the member that is not the leader was read while in another group, as if it
        // joined this one later with setpgid, which only the periodic recheck can notice.
        let k = table.kept.remove(&other).unwrap();
        table.open_files -= 1 + k.quiet.open_files();
        let ino = k.ino;
        table.skipped.insert(other, Skipped { ino, pgrp: Some(-1), seen: table.samples });
        let mut samples = 1;
        while !members(&table.sample(&groups), pgid).contains(&other) {
            samples += 1;
            assert!(samples <= 5, "not rechecked within 5 samples");
        }
    }

    #[test]
    fn the_last_pid_moves_when_a_process_starts() {
        assert_eq!(parse_last_pid(b"0.14 0.38 0.47 1/78 10724\n"), Some(10724));
        assert_eq!(parse_last_pid(b"0.14 0.38"), None);
        let mut table = ProcTable::new(10);
        let before = table.last_pid().unwrap();
        Command::new("true").status().unwrap();
        assert_ne!(table.last_pid(), Some(before));
    }

    /// Pretends the kernel hands out no PID from now on.
    fn freeze(table: &mut ProcTable) {
        table.frozen_pid = Some(-7);
        table.listed_at_pid = Some(-7);
    }

    #[test]
    fn without_new_pids_reads_what_may_have_become_ours_but_does_not_list() {
        let group = Group::spawn("exec sleep 30");
        let pid = group.pgid();
        let mut table = ProcTable::new(1000);
        let none = HashSet::new();
        wait_for("the process to be skipped", || {
            table.sample(&none);
            table.skipped.get(&pid).is_some_and(|s| s.pgrp == Some(pid)).then_some(())
        });
        freeze(&mut table);
        // A skipped PID whose group becomes wanted is read at once, listing or not.
        let wanted = HashSet::from([pid]);
        assert_eq!(members(&table.sample(&wanted), pid), [pid]);
        // A process the table has never seen is found only by a listing: its PID would have
        // moved the last PID.
        let newer = Group::spawn("exec sleep 30");
        let both = HashSet::from([pid, newer.pgid()]);
        for _ in 0..3 {
            assert!(members(&table.sample(&both), newer.pgid()).is_empty());
        }
        table.frozen_pid = None;
        wait_for("the newer process", || {
            (members(&table.sample(&both), newer.pgid()) == [newer.pgid()]).then_some(())
        });
    }

    #[test]
    fn reads_by_path_beyond_the_descriptor_budget() {
        let group = Group::spawn("sleep 30 & exec sleep 30");
        let pgid = group.pgid();
        let groups = HashSet::from([pgid]);
        let mut table = ProcTable::with_limits(10, 0);
        wait_for("two members", || (members(&table.sample(&groups), pgid).len() == 2).then_some(()));
        assert_eq!(table.open_files(), 0);
        assert_eq!(members(&table.sample(&groups), pgid).len(), 2);
    }

    #[test]
    fn sheds_descriptors_when_out_of_them() {
        let group = Group::spawn("sleep 30 & exec sleep 30");
        let pgid = group.pgid();
        let groups = HashSet::from([pgid]);
        let mut table = ProcTable::new(10);
        wait_for("two members, both watched by schedstat", || {
            let m = members(&table.sample(&groups), pgid);
            (m.len() == 2 && m.iter().all(|p| table.kept[p].quiet.sched.is_some())).then_some(())
        });
        // Two stat files and two schedstat files for the sleeps, and this test's own stat.
        assert_eq!((table.open_files(), table.open_files), (5, 5));
        // What a sample does after an open failed with EMFILE: the schedstat files go first.
        table.shed_files();
        assert_eq!((table.open_files(), table.open_files, table.max_open_files), (2, 2, 2));
        assert!(table.kept.values().all(|k| k.quiet.sched.is_none()));
        for _ in 0..3 {
            assert_eq!(members(&table.sample(&groups), pgid).len(), 2);
            assert_eq!(table.open_files(), 2);
        }
    }

    #[test]
    fn a_process_that_has_not_run_is_reported_from_its_last_full_read() {
        let group = Group::spawn("exec sleep 30");
        let pid = group.pgid();
        let groups = HashSet::from([pid]);
        let mut table = ProcTable::new(1000);
        wait_for("the sleep to be watched", || {
            table.sample(&groups);
            table.kept.get(&pid).and_then(|k| k.quiet.since).map(|_| ())
        });
        let before = table.quiet_reads;
        // Samples 1000 apart would be due a full read; these are not.
        for _ in 0..5 {
            let info = table.sample(&groups).into_iter().find(|p| p.pid == pid).unwrap();
            // Memory is left out: the kernel may reclaim a sleeping process's file pages,
            // which the full read every `recheck_every` samples is there to catch.
            let fresh = all().into_iter().find(|p| p.pid == pid).unwrap();
            assert_eq!(
                (info.pgrp, info.start_ticks, info.cpu_ticks, info.threads),
                (fresh.pgrp, fresh.start_ticks, fresh.cpu_ticks, fresh.threads)
            );
        }
        assert_eq!(table.quiet_reads - before, 5);
    }

    #[test]
    fn a_quiet_process_that_starts_working_is_read_in_full_again() {
        let mut child = Command::new("sh")
            .args(["-c", "read line; while :; do :; done"])
            .stdin(std::process::Stdio::piped())
            .process_group(0)
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let group = Group(child);
        let pid = group.pgid();
        let groups = HashSet::from([pid]);
        let mut table = ProcTable::new(1000);
        let idle = wait_for("the shell to be watched", || {
            let info = table.sample(&groups).into_iter().find(|p| p.pid == pid);
            table.kept.get(&pid).and_then(|k| k.quiet.since).and(info)
        });
        std::io::Write::write_all(&mut stdin, b"go\n").unwrap();
        wait_for("the busy shell's CPU time to show", || {
            let info = table.sample(&groups).into_iter().find(|p| p.pid == pid)?;
            (info.cpu_ticks > idle.cpu_ticks).then_some(())
        });
        // Found to have run, it waits before it is watched again (a quiet probe resets this).
        assert!(table.kept[&pid].quiet.backoff >= 1);
    }

    #[test]
    fn multi_threaded_processes_are_always_read_in_full() {
        let own = i32::try_from(std::process::id()).unwrap();
        let _thread = std::thread::spawn(|| std::thread::sleep(Duration::from_secs(5)));
        let mut table = ProcTable::new(1000);
        for _ in 0..3 {
            assert!(table.sample(&HashSet::new()).iter().any(|p| p.pid == own && p.threads > 1));
        }
        let k = &table.kept[&own];
        assert!(k.quiet.sched.is_none() && k.quiet.since.is_none());
        assert_eq!(table.quiet_reads, 0);
    }
}

//! Every `sample_interval`: CPU, memory and threads of each agent summed over its processes
//! (its process group and every descendant, wherever it moved: see [`crate::process::contain`]), the
//! heartbeat gap of agents that heartbeat, the launcher's own CPU and memory, and
//! host CPU, memory, load and free disk on the database's volume. Samples are offered to the
//! writer and dropped (counted) when it is behind. The agents' processes are read through a
//! [`table::ProcTable`] kept across samples: one listing of `/proc` plus one read per process
//! in an agent's process group, and nothing per unrelated process.

mod alerting;
pub mod table;

use crate::manager::fleet::Roster;
use crate::process::inspect::ProcInfo;
use crate::supervisor::{Command, ProcessState, Stopped};
use agentvisor_shared::model::metric;
use agentvisor_shared::time::now_ms;
use agentvisor_shared::{Sample, WriteOp, WriterHandle};
use procfs::{Current, CurrentSI};
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

pub struct Sampler {
    /// The agents, and through it their supervisors, told when their process is stopped or
    /// runs again.
    roster: Roster,
    stops: Stops,
    writer: WriterHandle,
    /// A directory on the database's volume, for free space.
    db_dir: PathBuf,
    ticks_per_second: f64,
    /// Per agent: its process group and CPU ticks at the last sample.
    last_agent_cpu: HashMap<String, (i32, u64)>,
    last_host_cpu: Option<(u64, u64)>,
    last_own_cpu: Option<u64>,
    last_at: Instant,
    /// Per agent: the escapees last recorded in the database (see [`crate::process::contain`]).
    escapees: HashMap<String, Vec<(i32, u64)>>,
    /// Per agent: the escapees its supervisor was last told of, and their run's process group.
    told_escapees: HashMap<String, (i32, Vec<(i32, u64)>)>,
    /// Per agent with a process: the last sample's reading of its process tree.
    readings: HashMap<String, alerting::Reading>,
    alerting: alerting::Alerting,
    /// Samples taken, to forget removed agents once every [`FORGET_EVERY`].
    samples: u64,
}

/// Samples between two passes that drop what the sampler keeps of agents a reload removed:
/// rare enough to cost nothing, often enough that reload after reload cannot grow the maps.
const FORGET_EVERY: u64 = 60;

/// How long a process found outside the agents' process groups may go unread (see
/// [`table::ProcTable`]): the bound on noticing that its PID was reused by, or that it moved
/// into, an agent's group when `/proc` cannot tell.
const RECHECK_FOREIGN: Duration = Duration::from_secs(10);

/// What the sampler needs of an agent, read once per sample from the roster.
struct Member {
    name: String,
    pgid: Option<i32>,
    /// The main process.
    pid: Option<i32>,
    /// Its main process's start time, while it has one.
    start_ticks: Option<u64>,
    /// The last heartbeat, while the agent has a process.
    last_heartbeat_ms: Option<i64>,
}

/// An agent's process group summed over its members.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
struct GroupTotals {
    cpu_ticks: u64,
    rss_bytes: u64,
    threads: i64,
}

/// Totals per agent run (the owner's process group).
fn group_totals(procs: &[ProcInfo]) -> HashMap<i32, GroupTotals> {
    let mut totals: HashMap<i32, GroupTotals> = HashMap::new();
    for p in procs {
        let Some(owner) = p.owner else { continue };
        let t = totals.entry(owner).or_default();
        t.cpu_ticks += p.cpu_ticks;
        t.rss_bytes += p.rss_bytes;
        t.threads += p.threads;
    }
    totals
}

impl Sampler {
    pub fn new(roster: Roster, writer: WriterHandle, db_dir: PathBuf) -> Sampler {
        Sampler {
            roster,
            stops: Stops::default(),
            writer,
            db_dir,
            ticks_per_second: procfs::ticks_per_second() as f64,
            last_agent_cpu: HashMap::new(),
            last_host_cpu: None,
            last_own_cpu: None,
            last_at: Instant::now(),
            escapees: HashMap::new(),
            told_escapees: HashMap::new(),
            readings: HashMap::new(),
            alerting: alerting::Alerting::default(),
            samples: 0,
        }
    }

    /// The supervisors' custom metrics, for the alert rules.
    pub fn with_metrics(mut self, metrics: Option<tokio::sync::mpsc::Receiver<Vec<Sample>>>) -> Sampler {
        self.alerting.metrics = metrics;
        self
    }

    pub async fn run(mut self, interval: Duration) {
        let mut tick = tokio::time::interval(crate::deadline::period(interval));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let recheck = (RECHECK_FOREIGN.as_secs_f64() / interval.as_secs_f64()).ceil() as u64;
        // The table of the agents' processes lives across samples; it moves to the blocking
        // thread and back each time (and starts afresh if that thread panicked).
        let mut table: Option<table::ProcTable> = None;
        loop {
            tick.tick().await;
            let members = self.members();
            let groups: HashSet<i32> = members.iter().filter_map(|m| m.pgid).collect();
            let runs = members
                .iter()
                .filter_map(|m| Some((m.name.clone(), (m.pgid?, m.start_ticks.unwrap_or(0)))))
                .collect();
            let t = table.take();
            // Reading /proc is blocking file I/O.
            let read = tokio::task::spawn_blocking(move || {
                let mut t = t.unwrap_or_else(|| {
                    let mut t = table::ProcTable::new(recheck);
                    if crate::process::contain::subreaper() {
                        t.adopt_orphans();
                    }
                    t
                });
                t.set_runs(runs);
                let procs = t.sample(&groups);
                contain_leftovers(&t, &procs, &groups);
                (t, procs)
            });
            let Ok((t, procs)) = read.await else { continue };
            table = Some(t);
            self.samples += 1;
            if self.samples.is_multiple_of(FORGET_EVERY) {
                self.forget_removed(&members);
            }
            self.publish_escapees(&members, &procs);
            let samples = self.sample(&members, &procs);
            let _ = self.writer.offer(WriteOp::Samples(samples));
            self.stops.update(&members, &procs, now_ms());
            self.tell_stops();
            self.alerting.after_sample(&self.roster, &self.readings, &self.writer, now_ms());
        }
    }

    /// Tells supervisors what changed about their processes being stopped. Without waiting:
    /// what cannot be told now (a command queue is full) is told at a later sample.
    fn tell_stops(&mut self) {
        let due = self.stops.due();
        if due.is_empty() {
            return;
        }
        for (name, state) in due {
            if self.roster.tell(&name, Command::Process(state)) {
                self.stops.told(&name, state.stopped.is_some());
            }
        }
    }

    fn members(&self) -> Vec<Member> {
        self.roster.with_members(|members| {
            members
                .iter()
                .map(|(name, rx)| {
                    let st = rx.borrow();
                    Member {
                        pgid: st.lifecycle.pgid.and_then(|p| i32::try_from(p).ok()),
                        pid: st.lifecycle.pid.and_then(|p| i32::try_from(p).ok()),
                        start_ticks: st.lifecycle.pid_start_ticks.and_then(|t| u64::try_from(t).ok()),
                        last_heartbeat_ms: st
                            .reported
                            .last_heartbeat_ms
                            .filter(|_| st.lifecycle.state.has_process()),
                        name: name.clone(),
                    }
                })
                .collect()
        })
    }

    /// Drops what is kept per agent of agents that are no longer members.
    fn forget_removed(&mut self, members: &[Member]) {
        let names: HashSet<&str> = members.iter().map(|m| m.name.as_str()).collect();
        keep_members(&mut self.escapees, &names);
        keep_members(&mut self.told_escapees, &names);
        keep_members(&mut self.last_agent_cpu, &names);
    }

    /// Tells each run's supervisor its processes outside its process group when they change
    /// (see [`crate::process::contain`]; what cannot be told now, a command queue being full,
    /// is told at a later sample), and writes an agent's to the database when they change (for
    /// crash recovery).
    fn publish_escapees(&mut self, members: &[Member], procs: &[ProcInfo]) {
        let mut runs: HashMap<i32, Vec<(i32, u64)>> = HashMap::new();
        for p in procs {
            if let Some(owner) = p.owner
                && p.pgrp != owner
            {
                runs.entry(owner).or_default().push((p.pid, p.start_ticks));
            }
        }
        for m in members {
            let mut found = m.pgid.and_then(|g| runs.remove(&g)).unwrap_or_default();
            // The table's order changes from sample to sample; the set is what counts.
            found.sort_unstable();
            match m.pgid {
                Some(pgid) => {
                    // A supervisor knows of none in a run it was told nothing about.
                    let told = self.told_escapees.get(&m.name).filter(|(g, _)| *g == pgid);
                    if told.map_or(&[][..], |(_, known)| known.as_slice()) != found.as_slice()
                        && self.roster.tell(&m.name, Command::Escapees { pgid, processes: found.clone() })
                    {
                        self.told_escapees.insert(m.name.clone(), (pgid, found.clone()));
                    }
                }
                None => {
                    self.told_escapees.remove(&m.name);
                }
            }
            let before = self.escapees.get(&m.name).map_or(&[][..], Vec::as_slice);
            if found != before {
                let processes = found
                    .iter()
                    .map(|&(pid, t)| (i64::from(pid), i64::try_from(t).unwrap_or(i64::MAX)))
                    .collect();
                let op = WriteOp::Escapees { agent: m.name.clone(), processes };
                if self.writer.send(op).is_err() {
                    tracing::error!(agent = %m.name, "the store's writer is gone; escapees not recorded");
                }
                self.escapees.insert(m.name.clone(), found);
            }
        }
    }

    /// `procs`: the processes of the members' groups and the launcher's own process.
    fn sample(&mut self, members: &[Member], procs: &[ProcInfo]) -> Vec<Sample> {
        let now = now_ms();
        let elapsed = self.last_at.elapsed().as_secs_f64();
        self.last_at = Instant::now();
        let mut out = Vec::new();
        let mut push = |scope: &str, name: &str, value: f64| {
            out.push(Sample { scope: scope.to_owned(), metric: name.to_owned(), ts_ms: now, value });
        };
        let tps = self.ticks_per_second;
        let cpu_percent = |ticks: u64, last: u64| (ticks.saturating_sub(last) as f64 / tps) / elapsed * 100.0;

        let totals = group_totals(procs);
        self.readings.clear();
        for m in members {
            if let Some(last) = m.last_heartbeat_ms {
                push(&m.name, metric::HEARTBEAT_GAP_S, (now - last) as f64 / 1000.0);
            }
            let Some(pgid) = m.pgid else {
                self.last_agent_cpu.remove(&m.name);
                continue;
            };
            let t = totals.get(&pgid).copied().unwrap_or_default();
            let mut reading =
                alerting::Reading { pgid, cpu_percent: None, memory_bytes: t.rss_bytes, threads: t.threads };
            // CPU needs two readings of the same process group.
            if let Some((last_pgid, last_ticks)) =
                self.last_agent_cpu.insert(m.name.clone(), (pgid, t.cpu_ticks))
                && last_pgid == pgid
            {
                let cpu = cpu_percent(t.cpu_ticks, last_ticks);
                reading.cpu_percent = Some(cpu);
                push(&m.name, metric::CPU_PERCENT, cpu);
            }
            self.readings.insert(m.name.clone(), reading);
            push(&m.name, metric::MEMORY_BYTES, t.rss_bytes as f64);
            push(&m.name, metric::THREADS, t.threads as f64);
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
            push(metric::HOST, metric::LOAD1, load_figure(load.one));
            push(metric::HOST, metric::LOAD5, load_figure(load.five));
            push(metric::HOST, metric::LOAD15, load_figure(load.fifteen));
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

/// Samples in a row that must see a process stopped before it is shown so: a process traced
/// by strace stops (`t`) for a moment at every system call, and is not stopped for that.
const STOPPED_SAMPLES: u32 = 2;

/// The agents' main processes seen stopped (`T` or `t` in `/proc/PID/stat`), and what each
/// supervisor has been told. An agent is listed from the first sample that sees its process
/// stopped until its supervisor knows that it runs again (or it leaves the roster).
#[derive(Debug, Default)]
struct Stops(HashMap<String, Watched>);

#[derive(Debug)]
struct Watched {
    pid: i32,
    state: char,
    /// When the current stop was first seen, and how many samples in a row have seen it
    /// (0: not stopped at the last sample).
    since_ms: i64,
    samples: u32,
    /// Whether the supervisor was told that the process is stopped.
    told: bool,
}

impl Stops {
    fn update(&mut self, members: &[Member], procs: &[ProcInfo], now_ms: i64) {
        let stopped: HashMap<i32, char> =
            procs.iter().filter(|p| matches!(p.state, 'T' | 't')).map(|p| (p.pid, p.state)).collect();
        if stopped.is_empty() && self.0.is_empty() {
            return;
        }
        for m in members {
            let seen = m.pid.and_then(|pid| stopped.get(&pid).map(|state| (pid, *state)));
            match (seen, self.0.get_mut(&m.name)) {
                (Some((pid, state)), Some(w)) if w.pid == pid => {
                    if w.samples == 0 {
                        w.since_ms = now_ms;
                    }
                    w.samples += 1;
                    w.state = state;
                }
                (Some((pid, state)), _) => {
                    let w = Watched { pid, state, since_ms: now_ms, samples: 1, told: false };
                    self.0.insert(m.name.clone(), w);
                }
                (None, Some(w)) if w.told => w.samples = 0,
                (None, Some(_)) => {
                    self.0.remove(&m.name);
                }
                (None, None) => {}
            }
        }
        if !self.0.is_empty() {
            let names: HashSet<&str> = members.iter().map(|m| m.name.as_str()).collect();
            self.0.retain(|name, _| names.contains(name.as_str()));
        }
    }

    /// What supervisors must be told: a stop seen for [`STOPPED_SAMPLES`], or the end of one
    /// they were told of.
    fn due(&self) -> Vec<(String, ProcessState)> {
        self.0
            .iter()
            .filter_map(|(name, w)| {
                let stopped = w.samples >= STOPPED_SAMPLES;
                (stopped != w.told).then(|| {
                    let stopped = stopped.then_some(Stopped { state: w.state, since_ms: w.since_ms });
                    (name.clone(), ProcessState { pid: w.pid, stopped })
                })
            })
            .collect()
    }

    /// Records that `name`'s supervisor was told whether its process is stopped.
    fn told(&mut self, name: &str, stopped: bool) {
        if stopped {
            if let Some(w) = self.0.get_mut(name) {
                w.told = true;
            }
        } else {
            self.0.remove(name);
        }
    }
}

/// Keeps only the entries of `names`.
fn keep_members<V>(map: &mut HashMap<String, V>, names: &HashSet<&str>) {
    map.retain(|name, _| names.contains(name.as_str()));
}

/// Kills the processes left by agent runs that have ended (escapees that stopping the run did
/// not know of yet), and reaps the orphans that have exited.
fn contain_leftovers(table: &table::ProcTable, procs: &[ProcInfo], groups: &HashSet<i32>) {
    for p in procs {
        if let Some(owner) = p.owner
            && !groups.contains(&owner)
        {
            tracing::info!(pid = p.pid, "killing a process left by an agent run that has ended");
            let _ =
                nix::sys::signal::kill(nix::unistd::Pid::from_raw(p.pid), nix::sys::signal::Signal::SIGKILL);
        }
    }
    for &pid in table.zombie_children() {
        crate::process::child::reap_orphan(pid);
    }
}

/// A load average as `/proc/loadavg` prints it, with two decimals. The parser hands it over as
/// an `f32`, whose widening to `f64` would carry binary noise (2.87 -> 2.869999885559082) into
/// the database and every reader's output.
fn load_figure(load: f32) -> f64 {
    (f64::from(load) * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_kept_of_removed_agents_is_dropped() {
        let mut map: HashMap<String, u8> = [("kept", 1), ("removed", 2)].map(|(k, v)| (k.into(), v)).into();
        let names: HashSet<&str> = ["kept", "new"].into();
        keep_members(&mut map, &names);
        assert_eq!(map, [("kept".to_owned(), 1)].into());
    }

    #[test]
    fn load_figures_keep_the_two_decimals_of_proc_loadavg() {
        assert_eq!(f64::from(2.87f32).to_string(), "2.869999885559082");
        for (load, printed) in
            [(2.87f32, "2.87"), (0.0, "0"), (0.1, "0.1"), (12.34, "12.34"), (153.99, "153.99")]
        {
            assert_eq!(load_figure(load).to_string(), printed);
        }
    }

    fn p(pid: i32, pgrp: i32, cpu_ticks: u64, rss_bytes: u64, threads: i64) -> ProcInfo {
        ProcInfo {
            pid,
            ppid: 1,
            pgrp,
            owner: Some(pgrp),
            start_ticks: 0,
            cpu_ticks,
            rss_bytes,
            threads,
            state: 'S',
        }
    }

    fn member(name: &str, pid: i32) -> Member {
        Member {
            name: name.into(),
            pgid: Some(pid),
            pid: Some(pid),
            start_ticks: None,
            last_heartbeat_ms: None,
        }
    }

    fn with_state(pid: i32, state: char) -> ProcInfo {
        ProcInfo { state, ..p(pid, pid, 0, 0, 1) }
    }

    /// Runs one sample and delivers everything due, returning it.
    fn sample(
        stops: &mut Stops,
        members: &[Member],
        procs: &[ProcInfo],
        now_ms: i64,
    ) -> Vec<(String, ProcessState)> {
        stops.update(members, procs, now_ms);
        let due = stops.due();
        for (name, state) in &due {
            stops.told(name, state.stopped.is_some());
        }
        due
    }

    #[test]
    fn a_stop_is_told_once_seen_twice_and_its_end_once() {
        let mut stops = Stops::default();
        let members = [member("a", 10), member("b", 20)];
        let running = [with_state(10, 'S'), with_state(20, 'R')];
        let stopped = [with_state(10, 'T'), with_state(20, 'R')];
        assert!(sample(&mut stops, &members, &running, 1_000).is_empty());
        // A single sighting (a traced process between two system calls) is not told.
        assert!(sample(&mut stops, &members, &stopped, 2_000).is_empty());
        let told = sample(&mut stops, &members, &stopped, 3_000);
        let since = Some(Stopped { state: 'T', since_ms: 2_000 });
        assert_eq!(told, [("a".to_owned(), ProcessState { pid: 10, stopped: since })]);
        assert!(sample(&mut stops, &members, &stopped, 4_000).is_empty());
        let told = sample(&mut stops, &members, &running, 5_000);
        assert_eq!(told, [("a".to_owned(), ProcessState { pid: 10, stopped: None })]);
        assert!(sample(&mut stops, &members, &running, 6_000).is_empty());
        assert!(stops.0.is_empty());
    }

    #[test]
    fn a_stop_seen_once_is_forgotten_and_an_untold_stop_is_told_later() {
        let mut stops = Stops::default();
        let members = [member("a", 10)];
        stops.update(&members, &[with_state(10, 't')], 1_000);
        stops.update(&members, &[with_state(10, 'S')], 2_000);
        assert!(stops.0.is_empty());
        stops.update(&members, &[with_state(10, 't')], 3_000);
        stops.update(&members, &[with_state(10, 't')], 4_000);
        // Not delivered (the command queue was full): still due at the next sample.
        assert_eq!(stops.due().len(), 1);
        let told = sample(&mut stops, &members, &[with_state(10, 't')], 5_000);
        let since = Some(Stopped { state: 't', since_ms: 3_000 });
        assert_eq!(told, [("a".to_owned(), ProcessState { pid: 10, stopped: since })]);
    }

    #[test]
    fn a_new_process_or_a_removed_agent_ends_a_stop() {
        let mut stops = Stops::default();
        let members = [member("a", 10)];
        for now in [1_000, 2_000] {
            sample(&mut stops, &members, &[with_state(10, 'T')], now);
        }
        // Restarted: the old process's supervisor is told it is over (and ignores it).
        let told = sample(&mut stops, &[member("a", 11)], &[with_state(11, 'S')], 3_000);
        assert_eq!(told, [("a".to_owned(), ProcessState { pid: 10, stopped: None })]);
        for now in [4_000, 5_000] {
            sample(&mut stops, &members, &[with_state(10, 'T')], now);
        }
        assert!(sample(&mut stops, &[], &[with_state(10, 'T')], 6_000).is_empty());
        assert!(stops.0.is_empty());
    }

    #[test]
    fn sums_each_process_group() {
        let totals = group_totals(&[p(10, 10, 5, 100, 1), p(11, 10, 7, 50, 3), p(20, 20, 1, 10, 1)]);
        assert_eq!(totals[&10], GroupTotals { cpu_ticks: 12, rss_bytes: 150, threads: 4 });
        assert_eq!(totals[&20], GroupTotals { cpu_ticks: 1, rss_bytes: 10, threads: 1 });
        assert_eq!(totals.len(), 2);
    }
}

//! `agentvisor-launcher run`: take the lock, open the store, clean up after a crashed
//! predecessor, start the agents, and run until SIGINT or SIGTERM.

use crate::config::Config;
use crate::control::Control;
use crate::manager::fleet::Roster;
use crate::manager::{Cause, Manager};
use crate::sampling::Sampler;
mod feed;
mod lock;
mod permissions;
mod recover;
mod systemd;

use agentvisor_shared::model::{EventKind, Severity};
use agentvisor_shared::time::now_ms;
use agentvisor_shared::{NewEvent, NewSession, Store, WriteOp, WriterConfig, WriterHandle};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Bulk writes (samples, log batches, liveness) queued for the writer at most: a few seconds
/// of a busy system. Beyond it they are dropped and counted, so a stalled disk cannot make
/// the launcher's memory grow.
const BULK_CAPACITY: usize = 20_000;

/// systemd hears READY=1 by then even if some agents are still starting or waiting.
const READY_WITHIN: Duration = Duration::from_secs(60);

/// Exit code after a second signal cut the graceful stop short.
const KILLED: u8 = 130;

/// Inputs waiting for the manager; senders wait beyond this.
const INBOX: usize = 32;

pub fn run(config: Config, db: &Path) -> ExitCode {
    match start(config, db) {
        Ok(code) => code,
        Err(e) => {
            tracing::error!("{e:#}");
            ExitCode::FAILURE
        }
    }
}

/// How long the launcher's thread pauses, while events stream in, before it waits for more: at
/// most a hundred wake-ups a second however many agents talk, and at most this much added to
/// the time it takes to notice anything (an exit, a message, a `ctl` request) while busy.
const COALESCE: Duration = Duration::from_millis(10);

/// Interrupt moderation for the runtime thread. While its waits for events are short on
/// average (a moving average over about the last eight: a thousand agents' heartbeats arriving
/// one by one), it pauses for [`COALESCE`] before each wait, so that what arrives meanwhile is
/// handled as one batch per wake-up instead of one each. After quiet, long waits it reacts at
/// once: a lone event (an agent's exit and its restart, a `ctl` request) takes a few short
/// waits, which do not bring the average down.
struct Coalescing {
    started: Instant,
    /// When the current wait began, in nanoseconds since `started`.
    wait_began: AtomicU64,
    /// The moving average of how long waits lasted, in nanoseconds.
    average_wait: AtomicU64,
}

impl Default for Coalescing {
    fn default() -> Self {
        Coalescing {
            started: Instant::now(),
            wait_began: AtomicU64::new(0),
            // Busy until shown otherwise: starting the agents is the busiest time.
            average_wait: AtomicU64::new(0),
        }
    }
}

impl Coalescing {
    fn now(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    fn before_wait(&self) {
        if u128::from(self.average_wait.load(Ordering::Relaxed)) < COALESCE.as_nanos() {
            std::thread::sleep(COALESCE);
        }
        self.wait_began.store(self.now(), Ordering::Relaxed);
    }

    fn after_wait(&self) {
        let waited = self.now().saturating_sub(self.wait_began.load(Ordering::Relaxed));
        let average = self.average_wait.load(Ordering::Relaxed);
        self.average_wait.store(average - average / 8 + waited / 8, Ordering::Relaxed);
    }
}

fn start(config: Config, db: &Path) -> anyhow::Result<ExitCode> {
    crate::process::close_inherited_on_exec();
    crate::process::raise_fd_limit();
    // Before the lock file is created beside the database: the directory may be refused.
    permissions::check_existing(db).map_err(anyhow::Error::msg)?;
    let _lock = lock::acquire(db).map_err(anyhow::Error::msg)?;
    let writer_cfg = WriterConfig {
        log_lines_per_agent: config.launcher.log_lines,
        bulk_capacity: BULK_CAPACITY,
        file_mode: permissions::file_mode(config.launcher.group),
        retention: config.launcher.retention.to_store(),
        ..WriterConfig::default()
    };
    permissions::apply_to_existing(db, permissions::file_mode(config.launcher.group));
    let mut store = Store::open(db, writer_cfg)?;
    // Again now that SQLite has opened or created the files: nothing planted in between.
    permissions::check_existing(db).map_err(anyhow::Error::msg)?;
    // Before recovery and any agent: what leaves an agent's process group stays ours.
    crate::process::contain::start(db, config.launcher.cgroups);
    recover::recover(&mut store)?;
    store.begin_session(&NewSession {
        pid: i64::from(std::process::id()),
        host: hostname(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        config_path: Some(config.path.display().to_string()),
    })?;
    let (writer, writer_thread) = store.start()?;
    // One thread runs every supervisor: their work is short and driven by pipe and timer
    // wake-ups, and on one thread a wake-up never hands a task to another sleeping worker
    // (a futex and a context switch each, which at 1,000 agents cost more than the work).
    let pacing = Arc::new(Coalescing::default());
    let (park, unpark) = (pacing.clone(), pacing);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .on_thread_park(move || park.before_wait())
        .on_thread_unpark(move || unpark.after_wait())
        .build()?;
    let result = runtime.block_on(serve(&config, db, writer.clone()));
    // Ending the runtime drops every task and with them their writer handles, so the writer
    // thread can commit what is queued and stop.
    runtime.shutdown_timeout(Duration::from_secs(1));
    if let Err(agentvisor_shared::FlushError::Storage(e)) = writer.flush() {
        tracing::error!("final writes failed: {e}");
    }
    drop(writer);
    writer_thread.join();
    result
}

async fn serve(config: &Config, db: &Path, writer: WriterHandle) -> anyhow::Result<ExitCode> {
    let signals = feed::Signals::take()?;
    let n = config.plan.len();
    launcher_event(
        &writer,
        EventKind::LauncherStarted,
        format!("launcher started with {n} agents from {}", config.path.display()),
    );
    let socket = Control::bind(db, config.launcher.group)?;
    let mut manager = Manager::start(config.clone(), &writer)?;
    let roster = manager.roster();
    let (inbox, mut input) = tokio::sync::mpsc::channel(INBOX);
    let control =
        Control::start(socket, inbox.clone(), roster.clone(), writer.clone(), config.launcher.group);
    let feeds = feed::start(signals, &config.path, &inbox, writer.clone());
    let db_dir =
        db.parent().filter(|p| !p.as_os_str().is_empty()).map_or_else(|| PathBuf::from("."), Path::to_owned);
    let sampler = tokio::spawn(
        Sampler::new(roster.clone(), writer.clone(), db_dir).run(config.launcher.sample_interval.get()),
    );
    let liveness = tokio::spawn(liveness(roster.clone(), writer.clone()));
    let ready = tokio::spawn(ready_when_settled(roster.clone()));

    let cause = manager.serve(&mut input).await;
    systemd::stopping();
    if let Cause::DatabaseLost(why) = &cause {
        // A supervisor that cannot record must not pretend to: stop the agents as for SIGTERM
        // and fail, so that systemd's Restart= brings up a launcher on a fresh database.
        tracing::error!("{why}; stopping every agent and exiting with status 1");
        systemd::status(&format!("stopping agents: {why}"));
    }
    control.stop();
    let signame = cause.name();
    launcher_event(&writer, EventKind::LauncherStopping, format!("{signame}: stopping agents"));
    let forced = manager.stop_all(&format!("launcher shutdown ({signame})"), &mut input).await;
    drop(feeds);
    sampler.abort();
    liveness.abort();
    ready.abort();
    kill_leftovers().await;
    let how = if forced { "killed its agents after a second signal" } else { "stopped" };
    launcher_event(&writer, EventKind::LauncherStopped, format!("launcher {how} ({signame})"));
    let reason = if forced {
        format!("killed agents after a second {signame}")
    } else {
        format!("stopped by {signame}")
    };
    let _ = writer.send(WriteOp::SessionEnded { ts_ms: now_ms(), reason });
    let w = writer.clone();
    if let Ok(Err(agentvisor_shared::FlushError::Storage(e))) =
        tokio::task::spawn_blocking(move || w.flush()).await
    {
        tracing::error!("final writes failed: {e}");
    }
    Ok(if forced {
        ExitCode::from(KILLED)
    } else if matches!(cause, Cause::DatabaseLost(_)) {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// Kills whatever the agents left outside their process groups, known to the sampler or not.
async fn kill_leftovers() {
    let leftovers = tokio::task::spawn_blocking(|| {
        let limit = Duration::from_secs(5);
        let n = crate::process::contain::kill_cgroups(limit).values().sum::<usize>()
            + crate::process::contain::kill_descendants(limit);
        crate::process::contain::remove_cgroup_base();
        n
    });
    if let Ok(n) = leftovers.await
        && n > 0
    {
        tracing::warn!("killed {n} processes the agents left behind");
    }
}

/// Every second: the session's liveness row with the status summary (also given to systemd
/// when it changes), and systemd's watchdog at half its interval.
async fn liveness(roster: Roster, writer: WriterHandle) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut watchdog = systemd::watchdog_interval().map(tokio::time::interval);
    let mut last = String::new();
    loop {
        tokio::select! {
            _ = tick.tick() => {
                let status = roster.status_line(&writer);
                let _ = writer.offer(WriteOp::SessionAlive { ts_ms: now_ms(), status: Some(status.clone()) });
                if status != last {
                    systemd::status(&status);
                    last = status;
                }
            }
            _ = async {
                match watchdog.as_mut() {
                    Some(w) => { w.tick().await; }
                    None => std::future::pending::<()>().await,
                }
            } => systemd::watchdog(),
        }
    }
}

/// Tells systemd the launcher is ready once every agent has been started and is running or
/// has failed (or after [`READY_WITHIN`] at the latest, when a dependency keeps others
/// waiting), so that `systemctl start` returns with the agents up.
async fn ready_when_settled(roster: Roster) {
    let deadline = tokio::time::Instant::now() + READY_WITHIN;
    while !roster.settled() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    systemd::ready(&roster.summary());
}

fn launcher_event(writer: &WriterHandle, kind: EventKind, message: String) {
    tracing::info!("{message}");
    let e = NewEvent { ts_ms: now_ms(), agent: None, kind, severity: Severity::Info, message };
    if writer.send(WriteOp::Event(e)).is_err() {
        tracing::error!("the store's writer is gone; event not recorded");
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").map(|h| h.trim().to_owned()).unwrap_or_default()
}

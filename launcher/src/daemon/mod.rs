//! `agentvisor-launcher run`: take the lock, open the store, clean up after a crashed
//! predecessor, start the agents, and run until SIGINT or SIGTERM.

use crate::config::Config;
use crate::control::Control;
use crate::manager::{Cause, Manager};
use crate::sampling::Sampler;
mod feed;
mod liveness;
mod lock;
mod pacing;
mod permissions;
mod recover;
mod systemd;

use agentvisor_shared::model::{EventKind, Severity};
use agentvisor_shared::time::now_ms;
use agentvisor_shared::{NewSession, Store, WriteOp, WriterConfig, WriterHandle};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

/// Bulk writes (samples, log batches, liveness) queued for the writer at most: a few seconds
/// of a busy system. Beyond it they are dropped and counted, so a stalled disk cannot make
/// the launcher's memory grow.
const BULK_CAPACITY: usize = 20_000;

/// Exit code after a second signal cut the graceful stop short.
const KILLED: u8 = 130;

/// How long hooks still running at the end (`launcher_stopped` ones, say) may take.
const HOOKS_AT_EXIT: Duration = Duration::from_secs(5);

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
    // Before the writer starts and any run is recorded: what each schedule last ran for.
    let last_due = store.last_due_times()?;
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
    let pacing = Arc::new(pacing::Coalescing::default());
    let (park, unpark) = (pacing.clone(), pacing);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .on_thread_park(move || park.before_wait())
        .on_thread_unpark(move || unpark.after_wait())
        .build()?;
    let result = runtime.block_on(serve(&config, db, writer.clone(), last_due));
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

async fn serve(
    config: &Config,
    db: &Path,
    writer: WriterHandle,
    last_due: HashMap<String, i64>,
) -> anyhow::Result<ExitCode> {
    let signals = feed::Signals::take()?;
    // Before the first event, so that hooks see the launcher start.
    let hooks = crate::hooks::start(config, &std::path::absolute(db)?, writer.clone());
    let n = config.plan.len();
    launcher_event(
        &writer,
        EventKind::LauncherStarted,
        format!("launcher started with {n} agents from {}", config.path.display()),
    );
    let socket = Control::bind(db, config.launcher.group)?;
    let mut manager = Manager::start(config.clone(), &writer, last_due)?;
    manager.set_hooks(hooks);
    let roster = manager.roster();
    let (inbox, mut input) = tokio::sync::mpsc::channel(INBOX);
    let control =
        Control::start(socket, inbox.clone(), roster.clone(), writer.clone(), config.launcher.group);
    let feeds = feed::start(signals, &config.path, &inbox, writer.clone());
    let db_dir =
        db.parent().filter(|p| !p.as_os_str().is_empty()).map_or_else(|| PathBuf::from("."), Path::to_owned);
    let sampler = tokio::spawn(
        Sampler::new(roster.clone(), writer.clone(), db_dir)
            .with_metrics(manager.take_metrics())
            .run(config.launcher.sample_interval.get()),
    );
    let liveness = tokio::spawn(liveness::liveness(roster.clone(), writer.clone()));
    let ready = tokio::spawn(liveness::ready_when_settled(roster.clone()));

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
    if !forced {
        manager.drain_hooks(HOOKS_AT_EXIT).await;
    }
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

fn launcher_event(writer: &WriterHandle, kind: EventKind, message: String) {
    crate::event::record(writer, None, kind, Severity::Info, message);
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").map(|h| h.trim().to_owned()).unwrap_or_default()
}

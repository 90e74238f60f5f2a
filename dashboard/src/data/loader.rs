//! The data thread: waits for the database to appear, then re-reads it when it changed and
//! sends the result to the UI loop over the same channel as key presses. The UI never waits on
//! SQLite, so input stays responsive while data is read.
//!
//! Wake-ups come from file events while the database is quiet, from a [`THROTTLE`] timer while
//! it changes (see [`DbWatch`]), from the UI when it needs different data (a new [`Focus`]),
//! and from a [`FALLBACK`](super::watch::FALLBACK) timer. Each wake-up costs one
//! `PRAGMA data_version` (microseconds); the database is read only when that changed, at most
//! once per [`THROTTLE`], so an idle system costs no measurable CPU.

use super::watch::{DbWatch, THROTTLE};
use super::window::{CHART_POINTS, Window};
use super::{Chart, DataMsg, Detail, Focus, Loaded};
use crate::format::Zone;
use agentvisor_shared::model::{BUILTIN_AGENT_METRICS, metric};
use agentvisor_shared::paths::Resolved;
use agentvisor_shared::runs::SpendWindows;
use agentvisor_shared::{EventFilter, Reader, StoreError};
use crossbeam_channel::{Receiver, Sender, select};
use std::thread::JoinHandle;
use std::time::Instant;

/// Values in each overview sparkline.
const SPARK_POINTS: i64 = 40;
/// Newest events of the detail screen's agent.
const DETAIL_EVENTS: i64 = 100;
/// Newest captured lines the detail screen can scroll through.
const DETAIL_LOG_LINES: i64 = 1_000;
/// Runs and tasks the detail screen lists.
const DETAIL_RUNS: i64 = 10;
const DETAIL_TASKS: i64 = 10;
/// How often the spend today and in the last hour is re-read: it sums a day of runs, and a
/// figure a few seconds old is current enough for a total.
pub const SPEND_REFRESH: std::time::Duration = std::time::Duration::from_secs(5);

/// Starts the data thread. It sends into the UI loop's one channel, whatever that channel's
/// event type, so this module does not depend on the UI's.
pub fn spawn<E: From<DataMsg> + Send + 'static>(
    resolved: Resolved,
    zone: Zone,
    out: Sender<E>,
    focus: Receiver<Focus>,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("data".into())
        .spawn(move || Loader::new(resolved, zone).run(&out, &focus))
}

/// Charts of one agent and window, re-read only every [`Window::chart_refresh`]: a week of
/// samples is too much to aggregate on every commit.
struct ChartCache {
    agent: String,
    window: Window,
    read_at: Instant,
    charts: Vec<Chart>,
    config: Option<serde_json::Value>,
}

struct Loader {
    resolved: Resolved,
    watch: DbWatch,
    reader: Option<Reader>,
    /// `data_version` at the last read.
    version: Option<i64>,
    /// Device and inode of the file the reader has open.
    identity: Option<(u64, u64)>,
    focus: Focus,
    charts: Option<ChartCache>,
    /// The last waiting/failed message sent, so an unchanged one is not sent every second.
    last_status: Option<DataMsg>,
    /// Where "today" begins.
    zone: Zone,
    /// The spend last read, and when.
    spend: Option<(Instant, SpendWindows)>,
}

impl Loader {
    fn new(resolved: Resolved, zone: Zone) -> Loader {
        let watch = DbWatch::new(&resolved.path);
        tracing::info!(file_events = watch.active(), "data thread started");
        Loader {
            resolved,
            watch,
            reader: None,
            version: None,
            identity: None,
            focus: Focus::default(),
            charts: None,
            last_status: None,
            zone,
            spend: None,
        }
    }

    fn run<E: From<DataMsg>>(mut self, out: &Sender<E>, focus: &Receiver<Focus>) {
        // Read at once on start; later only when something says the data may have changed.
        let mut due = true;
        let mut forced = true;
        let mut last_read = Instant::now();
        loop {
            if due && (forced || last_read.elapsed() >= THROTTLE) {
                last_read = Instant::now();
                let msg = self.refresh(forced);
                due = false;
                forced = false;
                if let Some(msg) = msg
                    && out.send(E::from(msg)).is_err()
                {
                    return;
                }
            }
            let timeout =
                if due { THROTTLE.saturating_sub(last_read.elapsed()) } else { self.watch.timeout() };
            select! {
                recv(focus) -> f => match f {
                    Ok(f) => {
                        if f != self.focus {
                            self.focus = f;
                            forced = true;
                        }
                        due = true;
                    }
                    // The UI has gone: nothing left to read for.
                    Err(_) => return,
                },
                recv(self.watch.changes()) -> _ => due = true,
                default(timeout) => {
                    due = true;
                    self.watch.retry();
                }
            }
        }
    }

    /// Reads when the database changed (or `forced`); `None` when there is nothing new to say.
    fn refresh(&mut self, forced: bool) -> Option<DataMsg> {
        // A database removed or replaced (a new file at the same path) is reopened: the old
        // connection would show the old file's last state forever.
        let identity = file_identity(&self.resolved.path);
        let reader = match self.reader.take() {
            Some(r) if identity.is_some() && identity == self.identity => r,
            previous => {
                if previous.is_some() {
                    tracing::warn!(db = %self.resolved.path.display(), "database file replaced or removed");
                }
                drop(previous);
                match Reader::open(&self.resolved.path) {
                    Ok(r) => {
                        tracing::info!(db = %self.resolved.path.display(), "database opened");
                        self.identity = identity;
                        self.version = None;
                        r
                    }
                    Err(e) => return self.status(e),
                }
            }
        };
        let version = match reader.data_version() {
            Ok(v) => v,
            Err(e) => return self.status(e),
        };
        self.watch.checked(self.version != Some(version));
        if !forced && self.version == Some(version) {
            self.reader = Some(reader);
            return None;
        }
        match self.read(&reader) {
            Ok(loaded) => {
                self.version = Some(version);
                self.reader = Some(reader);
                self.last_status = None;
                Some(DataMsg::Loaded(Box::new(loaded)))
            }
            // The reader is dropped: the next wake-up opens the file afresh, which also copes
            // with a database that was replaced.
            Err(e) => self.status(e),
        }
    }

    fn status(&mut self, e: StoreError) -> Option<DataMsg> {
        let path = self.resolved.path.clone();
        let how = self.resolved.source.to_string();
        let msg = match e {
            StoreError::NotFound { .. } => DataMsg::Waiting {
                path,
                how,
                reason: "The file does not exist yet: the launcher creates it on its first start.".into(),
            },
            StoreError::NotInitialized { .. } => {
                DataMsg::Waiting { path, how, reason: "The launcher is still creating the database.".into() }
            }
            StoreError::LauncherFilesMissing { missing, owner, .. } => DataMsg::Waiting {
                path,
                how,
                reason: format!(
                    "The launcher is not running ({missing} is absent): as another user than the database's owner (uid {owner}), the dashboard waits for it rather than create files the launcher might not be able to open."
                ),
            },
            e => DataMsg::Failed { path, how, message: e.to_string() },
        };
        if self.last_status.as_ref() == Some(&msg) {
            return None;
        }
        tracing::warn!(status = ?msg, "database not readable");
        self.last_status = Some(msg.clone());
        Some(msg)
    }

    fn read(&mut self, reader: &Reader) -> agentvisor_shared::Result<Loaded> {
        let started = Instant::now();
        let snapshot = reader.snapshot()?;
        let sparklines =
            reader.recent_values(&self.focus.spark_agents, &self.focus.spark_metric, SPARK_POINTS)?;
        let detail = match self.focus.detail.clone() {
            Some((agent, window)) => Some(self.detail(reader, agent, window)?),
            None => None,
        };
        let events = match &self.focus.events {
            Some(filter) => Some(reader.events(filter)?),
            None => None,
        };
        let spend = match self.spend {
            Some((at, spend)) if at.elapsed() < SPEND_REFRESH => spend,
            _ => {
                let now = agentvisor_shared::time::now_ms();
                let spend = reader.spend(self.zone.day_start_ms(now), now)?;
                self.spend = Some((Instant::now(), spend));
                spend
            }
        };
        Ok(Loaded { snapshot, sparklines, detail, events, spend: Some(spend), read_time: started.elapsed() })
    }

    fn detail(
        &mut self,
        reader: &Reader,
        agent: String,
        window: Window,
    ) -> agentvisor_shared::Result<Detail> {
        let fresh = self.charts.as_ref().is_some_and(|c| {
            c.agent == agent && c.window == window && c.read_at.elapsed() < window.chart_refresh()
        });
        if !fresh {
            let since = agentvisor_shared::time::now_ms() - window.span_ms();
            let mut charts = Vec::new();
            for name in chart_metrics(&reader.metric_names(&agent)?) {
                let points = reader.series(&agent, &name, since, CHART_POINTS)?;
                charts.push(Chart { metric: name, points });
            }
            let config = reader.agent_config(&agent)?;
            self.charts =
                Some(ChartCache { agent: agent.clone(), window, read_at: Instant::now(), charts, config });
        }
        let (charts, config) =
            self.charts.as_ref().map(|c| (c.charts.clone(), c.config.clone())).unwrap_or_default();
        let events = reader.events(&EventFilter {
            agent: Some(agent.clone()),
            limit: DETAIL_EVENTS,
            ..Default::default()
        })?;
        let logs = reader.logs(&agent, None, DETAIL_LOG_LINES)?;
        let runs = reader.recent_runs(Some(&agent), false, DETAIL_RUNS)?;
        let tasks = reader.recent_tasks(Some(&agent), DETAIL_TASKS)?;
        let run_output = match self.focus.run.and_then(|id| runs.iter().find(|r| r.id == id)) {
            Some(run) => Some((run.id, reader.run_output(run, DETAIL_LOG_LINES)?)),
            None => None,
        };
        Ok(Detail { agent, window, config, charts, events, logs, runs, tasks, run_output })
    }
}

/// Which file is at `path` now (by `stat`, without opening it).
fn file_identity(path: &std::path::Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

/// The detail screen's charts: CPU and memory always (empty until sampled), the heartbeat
/// gap when the agent heartbeats, then each of the agent's own metrics.
fn chart_metrics(recorded: &[String]) -> Vec<String> {
    let mut out = vec![metric::CPU_PERCENT.to_owned(), metric::MEMORY_BYTES.to_owned()];
    if recorded.iter().any(|m| m == metric::HEARTBEAT_GAP_S) {
        out.push(metric::HEARTBEAT_GAP_S.to_owned());
    }
    out.extend(recorded.iter().filter(|m| !BUILTIN_AGENT_METRICS.contains(&m.as_str())).cloned());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use agentvisor_shared::model::{
        AgentSpec, AgentState, AgentStatus, DesiredState, Health, Lifecycle, Reported,
    };
    use agentvisor_shared::paths::PathSource;
    use agentvisor_shared::{Store, WriteOp, WriterConfig};
    use std::path::Path;
    use std::time::Duration;

    /// Writes a database holding one running agent with this status text, and closes it.
    fn write_db(path: &Path, agent: &str, status_text: &str) {
        let mut store = Store::open(path, WriterConfig::default()).unwrap();
        store
            .begin_session(&agentvisor_shared::NewSession {
                pid: 1,
                host: "h".into(),
                version: "v".into(),
                config_path: None,
            })
            .unwrap();
        let (h, t) = store.start().unwrap();
        h.send(WriteOp::RegisterAgent(Box::new(AgentSpec {
            name: agent.into(),
            description: String::new(),
            kind: "process".into(),
            command: vec!["x".into()],
            capabilities: vec![],
            config: serde_json::json!({}),
            enabled: true,
            desired_state: DesiredState::Running,
            heartbeat_timeout_ms: None,
            position: 0,
        })))
        .unwrap();
        h.send(WriteOp::Status(Box::new(AgentStatus {
            agent: agent.into(),
            lifecycle: Lifecycle {
                state: AgentState::Running,
                health: Health::Healthy,
                ..Lifecycle::default()
            },
            reported: Reported { status_text: Some(status_text.into()), ..Reported::default() },
        })))
        .unwrap();
        h.flush().unwrap();
        drop(h);
        t.join();
    }

    /// Waits for a message matching `want`, skipping others, for at most 10 s.
    fn expect(rx: &Receiver<DataMsg>, what: &str, want: impl Fn(&DataMsg) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while let Ok(msg) = rx.recv_deadline(deadline) {
            if want(&msg) {
                return;
            }
        }
        panic!("no {what} from the data thread");
    }

    fn shows(msg: &DataMsg, agent: &str, text: &str) -> bool {
        matches!(msg, DataMsg::Loaded(l) if l.snapshot.agents.iter().any(|a| a.name == agent && a.reported.status_text.as_deref() == Some(text)))
    }

    #[test]
    fn waits_opens_follows_commits_and_reopens_a_replaced_file() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("s.db");
        let (tx, rx) = crossbeam_channel::unbounded();
        let (_focus_tx, focus_rx) = crossbeam_channel::unbounded();
        spawn(Resolved { path: db.clone(), source: PathSource::Flag }, Zone::Utc, tx, focus_rx).unwrap();
        expect(
            &rx,
            "waiting screen",
            |m| matches!(m, DataMsg::Waiting { how, .. } if how == "from the command line"),
        );
        assert!(!db.exists(), "the data thread created the database");

        write_db(&db, "first", "one");
        expect(&rx, "the new database", |m| shows(m, "first", "one"));
        write_db(&db, "first", "two");
        expect(&rx, "a later commit", |m| shows(m, "first", "two"));

        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
        }
        write_db(&db, "second", "fresh");
        expect(&rx, "the replaced database", |m| shows(m, "second", "fresh"));
    }

    #[test]
    fn chart_order() {
        let rec = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            chart_metrics(&rec(&["threads", "queue_depth"])),
            ["cpu_percent", "memory_bytes", "queue_depth"]
        );
        assert_eq!(
            chart_metrics(&rec(&["heartbeat_gap_s", "cpu_percent"])),
            ["cpu_percent", "memory_bytes", "heartbeat_gap_s"]
        );
    }
}

//! A stand-in launcher for the dashboard's tests: it writes through the real store writer, so
//! the dashboard reads databases exactly as the launcher leaves them, with any states we need
//! (healthy fleets, crash loops, a launcher that stopped or vanished) without waiting for real
//! agents to get there.

use crate::common::Sandbox;
use agentvisor_shared::model::{
    AgentSpec, AgentState, AgentStatus, DesiredState, EventKind, Health, Lifecycle, Severity, Stream,
};
use agentvisor_shared::writer::WriterThread;
use agentvisor_shared::{
    NewEvent, NewLogLine, NewSession, Sample, Store, WriteOp, WriterConfig, WriterHandle,
};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

pub fn now_ms() -> i64 {
    agentvisor_shared::time::now_ms()
}

pub struct FakeLauncher {
    handle: Option<WriterHandle>,
    writer: Option<WriterThread>,
    alive: Arc<AtomicBool>,
    keepalive: Option<JoinHandle<()>>,
}

impl FakeLauncher {
    /// Opens (creating) the database, begins a session and refreshes it every 300 ms, as the
    /// real launcher does every second.
    pub fn start(db: &Path) -> FakeLauncher {
        Self::start_with(db, WriterConfig::default())
    }

    pub fn start_with(db: &Path, cfg: WriterConfig) -> FakeLauncher {
        let mut store = Store::open(db, cfg).unwrap();
        store
            .begin_session(&NewSession {
                pid: i64::from(std::process::id()),
                host: "testbox".into(),
                version: "0.1.0".into(),
                config_path: None,
            })
            .unwrap();
        let (handle, writer) = store.start().unwrap();
        let alive = Arc::new(AtomicBool::new(true));
        let keepalive = {
            let (alive, handle) = (alive.clone(), handle.clone());
            std::thread::spawn(move || {
                while alive.load(Ordering::Relaxed) {
                    let _ = handle.send(WriteOp::SessionAlive { ts_ms: now_ms(), status: None });
                    std::thread::park_timeout(Duration::from_millis(300));
                }
            })
        };
        FakeLauncher { handle: Some(handle), writer: Some(writer), alive, keepalive: Some(keepalive) }
    }

    pub fn handle(&self) -> &WriterHandle {
        self.handle.as_ref().unwrap()
    }

    pub fn send(&self, op: WriteOp) {
        self.handle().send(op).unwrap();
    }

    pub fn flush(&self) {
        self.handle().flush().unwrap();
    }

    /// Registers an agent and gives it a state; `heartbeat_timeout_ms` makes it a heartbeating one.
    pub fn agent(&self, name: &str, position: i64, status: AgentStatus, heartbeat_timeout_ms: Option<i64>) {
        self.send(WriteOp::RegisterAgent(Box::new(AgentSpec {
            name: name.into(),
            description: format!("{name} for tests"),
            kind: "process".into(),
            command: vec!["/bin/sh".into(), format!("{name}.sh")],
            capabilities: vec!["testing".into()],
            config: serde_json::json!({"name": name, "restart": "on-failure"}),
            enabled: true,
            desired_state: DesiredState::Running,
            heartbeat_timeout_ms,
            position,
        })));
        self.send(WriteOp::Status(Box::new(status)));
    }

    pub fn event(&self, agent: Option<&str>, kind: EventKind, severity: Severity, message: &str) {
        self.send(WriteOp::Event(NewEvent {
            ts_ms: now_ms(),
            agent: agent.map(str::to_owned),
            kind,
            severity,
            message: message.into(),
        }));
    }

    pub fn logs(&self, agent: &str, lines: &[&str]) {
        let ts = now_ms();
        self.send(WriteOp::Logs(
            lines
                .iter()
                .map(|l| NewLogLine {
                    agent: agent.into(),
                    stream: Stream::Stdout,
                    ts_ms: ts,
                    line: (*l).into(),
                })
                .collect(),
        ));
    }

    pub fn sample(&self, scope: &str, metric: &str, value: f64) {
        self.send(WriteOp::Samples(vec![Sample {
            scope: scope.into(),
            metric: metric.into(),
            ts_ms: now_ms(),
            value,
        }]));
    }

    /// A clean stop: the session gets a stop time, as after SIGTERM.
    pub fn stop(mut self) {
        self.end_keepalive();
        self.send(WriteOp::SessionEnded { ts_ms: now_ms(), reason: "signal SIGTERM".into() });
        self.close();
    }

    /// The launcher vanishes (as under SIGKILL): no stop time, and its last refresh `ago_ms` old.
    pub fn vanish(mut self, ago_ms: i64) {
        self.end_keepalive();
        self.send(WriteOp::SessionAlive { ts_ms: now_ms() - ago_ms, status: None });
        self.close();
    }

    fn end_keepalive(&mut self) {
        self.alive.store(false, Ordering::Relaxed);
        if let Some(k) = self.keepalive.take() {
            k.thread().unpark();
            k.join().unwrap();
        }
    }

    /// Commits everything and closes the writer's connection, so SQLite checkpoints the WAL
    /// into the main file.
    fn close(&mut self) {
        if let Some(h) = self.handle.take() {
            h.flush().unwrap();
        }
        if let Some(w) = self.writer.take() {
            w.join();
        }
    }
}

impl Drop for FakeLauncher {
    fn drop(&mut self) {
        self.end_keepalive();
        self.close();
    }
}

pub fn status(name: &str, state: AgentState, health: Health) -> AgentStatus {
    let running = state.has_process();
    AgentStatus {
        agent: name.into(),
        lifecycle: Lifecycle {
            state,
            health,
            ready: running,
            pid: running.then_some(999_999),
            started_ms: Some(now_ms() - 60_000),
            restarts: 0,
            ..Lifecycle::default()
        },
        ..AgentStatus::default()
    }
}

/// A sandbox whose database a running fake launcher holds with [`healthy_fleet`] in it.
pub fn healthy_sandbox() -> (Sandbox, PathBuf, FakeLauncher) {
    let sb = Sandbox::new();
    let db = sb.db();
    let launcher = FakeLauncher::start(&db);
    healthy_fleet(&launcher);
    (sb, db, launcher)
}

/// A small healthy fleet: a heartbeating agent with LLM fields and a custom metric, and a
/// process-only one, with some output and events.
pub fn healthy_fleet(l: &FakeLauncher) {
    let mut researcher = status("researcher", AgentState::Running, Health::Healthy);
    researcher.reported.last_heartbeat_ms = Some(now_ms() - 500);
    researcher.reported.heartbeats = 12;
    researcher.reported.status_text = Some("idle".into());
    researcher.reported.model = Some("test-model".into());
    researcher.reported.tokens_in = Some(1200);
    researcher.reported.tokens_out = Some(300);
    researcher.reported.cost = Some(0.25);
    l.agent("researcher", 0, researcher, Some(15_000));
    l.agent("worker", 1, status("worker", AgentState::Running, Health::Healthy), None);
    l.sample("researcher", "queue_depth", 3.0);
    l.sample("researcher", "cpu_percent", 2.5);
    l.sample("researcher", "memory_bytes", 41_943_040.0);
    l.logs("worker", &["line one", "line two", "line three"]);
    l.event(Some("worker"), EventKind::Started, Severity::Info, "started worker");
    l.event(Some("researcher"), EventKind::HeartbeatMissed, Severity::Warning, "no heartbeat for 15s");
    l.flush();
}

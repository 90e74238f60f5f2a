//! `agentvisor-dashboard stream --json`: one JSON line per change of the database (at most
//! [`MIN_GAP`] apart), a heartbeat line after [`HEARTBEAT`] without one, until stdin closes or
//! stdout is gone. It is what the fleet view runs on each host through ssh: the document is the
//! `status --json` object plus the few figures a fleet row shows, so a viewer never reads a
//! database over the network. The line format is documented in docs/fleet.md.

use super::print_lines;
use super::status::{to_json, unreadable_json};
use crate::assess::{Liveness, Summary, Verdict};
use crate::cli::StreamArgs;
use crate::data::watch::DbWatch;
use crate::format::Zone;
use agentvisor_shared::model::{AgentState, Snapshot};
use agentvisor_shared::paths::Resolved;
use agentvisor_shared::runs::SpendWindows;
use agentvisor_shared::time::{now_ms, rfc3339};
use agentvisor_shared::{EventFilter, Reader};
use crossbeam_channel::{Receiver, RecvTimeoutError, select};
use serde_json::{Value, json};
use std::io::Read;
use std::time::{Duration, Instant};

/// The version of the line format; a viewer refuses to read a newer one as if it knew it.
pub const STREAM_VERSION: u64 = 1;
/// At most one document per this interval: a busy launcher commits many times a second.
pub const MIN_GAP: Duration = Duration::from_millis(250);
/// A heartbeat line after this long without a line, so a viewer tells a quiet host from a
/// hung connection.
pub const HEARTBEAT: Duration = Duration::from_secs(5);
/// How often the document is recomputed when nothing is written: a launcher that stops
/// committing turns stale with no change to the file.
const RECHECK: Duration = Duration::from_secs(1);

pub fn run(resolved: &Resolved, args: &StreamArgs) -> u8 {
    if !args.json {
        eprintln!("agentvisor-dashboard: stream prints JSON lines only; pass --json");
        return agentvisor_shared::exit_code::EXIT_USAGE;
    }
    let closed = stdin_closed();
    let mut stream = Stream { resolved, reader: None, watch: None, version: None, last_key: None, seq: 0 };
    let mut last_line: Option<Instant> = None;
    loop {
        let (doc, changed) = stream.poll();
        let line = if changed {
            Some(doc)
        } else if last_line.is_none_or(|t| t.elapsed() >= HEARTBEAT) {
            Some(stream.line("heartbeat", None))
        } else {
            None
        };
        if let Some(line) = line {
            if !print_lines([line.to_string()]) {
                return 0;
            }
            last_line = Some(Instant::now());
        }
        let timeout = stream.watch.as_ref().map_or(RECHECK, |w| w.timeout().min(RECHECK));
        let changes =
            stream.watch.as_ref().map(|w| w.changes().clone()).unwrap_or_else(crossbeam_channel::never);
        select! {
            recv(changes) -> _ => {}
            recv(closed) -> _ => return 0,
            default(timeout) => {}
        }
        // The throttle: whatever woke us, not sooner than MIN_GAP after the last line.
        if let Some(t) = last_line {
            match closed.recv_timeout(MIN_GAP.saturating_sub(t.elapsed())) {
                Err(RecvTimeoutError::Timeout) => {}
                _ => return 0,
            }
        }
    }
}

struct Stream<'a> {
    resolved: &'a Resolved,
    reader: Option<Reader>,
    watch: Option<DbWatch>,
    version: Option<i64>,
    /// What the last document said that does not change with the clock alone; a new
    /// document goes out when the database or this changes.
    last_key: Option<String>,
    seq: u64,
}

impl Stream<'_> {
    /// The current document, and whether it differs from the last one sent.
    fn poll(&mut self) -> (Value, bool) {
        if self.reader.is_none() {
            match Reader::open(&self.resolved.path) {
                Ok(r) => {
                    self.watch = Some(DbWatch::new(r.path()));
                    self.reader = Some(r);
                }
                Err(e) => return self.document_without_database(e.to_string()),
            }
        }
        let Some(reader) = self.reader.as_ref() else { unreachable!("opened above") };
        let read = reader.data_version().and_then(|v| {
            let snapshot = reader.snapshot()?;
            let newest = reader.events(&EventFilter { limit: 1, ..EventFilter::default() })?;
            // Today is the host's local day: each host's own midnight.
            let now = now_ms();
            let spend = reader.spend(Zone::Local.day_start_ms(now), now)?;
            Ok((v, snapshot, newest, spend))
        });
        let (version, snapshot, newest, spend) = match read {
            Ok(r) => r,
            Err(e) => {
                // Reopened on the next wake-up: the file may have been replaced.
                self.reader = None;
                self.watch = None;
                return self.document_without_database(e.to_string());
            }
        };
        let data_changed = self.version != Some(version);
        if let Some(w) = self.watch.as_mut() {
            w.checked(data_changed);
        }
        self.version = Some(version);
        let now = now_ms();
        let status = to_json(&snapshot, self.resolved, now, Some(&spend));
        let fleet = fleet_json(&snapshot, newest.last(), &spend, now);
        let key = format!("{}|{}", status["verdict"], fleet["launcher"]);
        let changed = data_changed || self.last_key.as_deref() != Some(key.as_str());
        self.last_key = Some(key);
        (self.line("status", Some((fleet, status))), changed)
    }

    fn document_without_database(&mut self, error: String) -> (Value, bool) {
        let code = Verdict::NoDatabase.code();
        let status = unreadable_json(self.resolved, code);
        let fleet = json!({
            "launcher": null, "agents": 0, "enabled": 0, "healthy": 0, "fatal": 0, "in_trouble": 0,
            "alerts_firing": null, "cost": null, "last_change_at": null, "last_change": null,
            "database_error": error,
        });
        let key = format!("no database|{error}");
        let changed = self.last_key.as_deref() != Some(key.as_str());
        self.last_key = Some(key);
        self.version = None;
        (self.line("status", Some((fleet, status))), changed)
    }

    fn line(&mut self, kind: &str, body: Option<(Value, Value)>) -> Value {
        self.seq += 1;
        let mut v = json!({
            "stream": STREAM_VERSION,
            "type": kind,
            "seq": self.seq,
            "sent_at": rfc3339(now_ms()),
        });
        if let Some((fleet, status)) = body {
            v["fleet"] = fleet;
            v["status"] = status;
        }
        v
    }
}

/// What a fleet row shows about one host, computed where the database is.
fn fleet_json(
    s: &Snapshot,
    newest: Option<&agentvisor_shared::model::Event>,
    spend: &SpendWindows,
    now: i64,
) -> Value {
    let liveness = Liveness::of(s.launcher.as_ref(), now);
    let launcher = match liveness {
        Liveness::Never => "never",
        Liveness::Running { .. } => "running",
        Liveness::Stale { .. } => "stale",
        Liveness::Stopped { .. } => "stopped",
    };
    let summary = Summary::of(&s.agents);
    // Null, as before runs were counted, while no agent reports a cost and none did today.
    let reports_cost = s.agents.iter().any(|a| a.reported.cost.is_some()) || spend.today.cost != 0.0;
    json!({
        "launcher": launcher,
        "agents": summary.agents,
        "enabled": summary.enabled,
        "healthy": summary.healthy,
        "fatal": s.agents.iter().filter(|a| a.lifecycle.state == AgentState::Fatal).count(),
        "in_trouble": summary.in_trouble,
        "alerts_firing": s.alerts.len(),
        "cost": reports_cost.then_some(spend.today.cost),
        "last_change_at": newest.map(|e| rfc3339(e.ts_ms)),
        "last_change": newest.map(|e| match &e.agent {
            Some(agent) => format!("{agent}: {}", e.message),
            None => e.message.clone(),
        }),
        "database_error": null,
    })
}

/// Disconnects when stdin reaches its end (or fails): ssh passes the viewer's closing of its
/// end through, and the stream must not outlive the viewer.
fn stdin_closed() -> Receiver<()> {
    let (tx, rx) = crossbeam_channel::bounded::<()>(0);
    let spawned = std::thread::Builder::new().name("stdin".into()).spawn(move || {
        let mut buf = [0u8; 4096];
        let mut stdin = std::io::stdin().lock();
        while matches!(stdin.read(&mut buf), Ok(n) if n > 0) {}
        drop(tx);
    });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "cannot watch stdin; the stream ends only when stdout closes");
        // Keep the sender alive for ever so that the channel never reports a close.
        let (keep, never) = crossbeam_channel::bounded::<()>(0);
        std::mem::forget(keep);
        return never;
    }
    rx
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assess::tests::{agent, session, snapshot};
    use agentvisor_shared::model::{Event, Health, Severity};
    use agentvisor_shared::runs::Spend;

    #[test]
    fn the_fleet_part_counts_what_a_row_shows() {
        let mut fatal = agent("b", AgentState::Fatal, Health::Unknown);
        fatal.reported.cost = Some(0.5);
        let mut ok = agent("a", AgentState::Running, Health::Healthy);
        ok.reported.cost = Some(1.25);
        let s = snapshot(Some(session(1_000, None)), vec![ok, fatal]);
        let e = Event {
            id: 9,
            ts_ms: 900,
            agent: Some("b".into()),
            kind: "crash_loop".into(),
            severity: Severity::Error,
            message: "gave up".into(),
        };
        // The cost today, from the runs: not the agents' running totals (1.75).
        let today = Spend { cost: 4.5, ..Spend::default() };
        let spend = SpendWindows { today, last_hour: Spend::default() };
        let v = fleet_json(&s, Some(&e), &spend, 1_500);
        assert_eq!(v["launcher"], "running");
        assert_eq!((v["healthy"].as_u64(), v["enabled"].as_u64()), (Some(1), Some(2)));
        assert_eq!(v["fatal"], 1);
        assert_eq!(v["cost"], 4.5);
        assert_eq!(v["last_change"], "b: gave up");
        assert_eq!(v["alerts_firing"], 0);
        let none = fleet_json(&snapshot(None, vec![]), None, &SpendWindows::default(), 1_500);
        assert_eq!(none["launcher"], "never");
        assert!(none["cost"].is_null() && none["last_change_at"].is_null());
    }
}

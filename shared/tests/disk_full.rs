//! The writer on a disk that fills up: state changes and events are kept and retried, bulk
//! samples are dropped and counted, the error is visible, and writing resumes when there is
//! room again. Uses a real, tiny tmpfs; skipped (with a message) where mounting is not allowed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use agentvisor_shared::model::{EventKind, Severity};
use agentvisor_shared::{FlushError, NewEvent, NewSession, Sample, Store, WriteOp, WriterConfig};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// How long a test waits for what should take well under a second: it only bounds a hang, on a
/// loaded 2-core machine that may still be compiling.
const HANG: Duration = Duration::from_secs(60);

struct TmpfsMount<'a>(&'a Path);

impl<'a> TmpfsMount<'a> {
    fn mount(dir: &'a Path, size: &str) -> Option<Self> {
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(TmpfsMount(dir))
    }

    fn resize(&self, size: &str) {
        let status =
            Command::new("mount").args(["-o", &format!("remount,size={size}")]).arg(self.0).status().unwrap();
        assert!(status.success());
    }
}

impl Drop for TmpfsMount<'_> {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.0).status();
    }
}

fn event(i: usize) -> WriteOp {
    WriteOp::Event(NewEvent {
        ts_ms: agentvisor_shared::time::now_ms(),
        agent: None,
        kind: EventKind::AgentError,
        severity: Severity::Info,
        message: format!("event {i} {}", "x".repeat(200)),
    })
}

#[test]
fn a_full_disk_keeps_critical_writes_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let Some(mount) = TmpfsMount::mount(dir.path(), "1m") else {
        eprintln!("SKIPPED: cannot mount a tmpfs here (needs root); the disk-full test did not run");
        return;
    };
    let db = dir.path().join("s.db");
    let mut store = Store::open(&db, WriterConfig::default()).unwrap();
    store
        .begin_session(&NewSession { pid: 1, host: "t".into(), version: "0".into(), config_path: None })
        .unwrap();
    let (w, t) = store.start().unwrap();

    // Fill the disk with samples until the writer reports an error.
    let mut sent_events = 0;
    let deadline = Instant::now() + HANG;
    let mut ts = agentvisor_shared::time::now_ms();
    while w.storage_error().is_none() {
        assert!(Instant::now() < deadline, "a 1 MiB disk never filled up");
        let samples = (0..500)
            .map(|i| Sample { scope: "a".into(), metric: format!("m{}", i % 50), ts_ms: ts + i, value: 1.0 })
            .collect();
        ts += 1000;
        w.offer(WriteOp::Samples(samples));
        w.send(event(sent_events)).unwrap();
        sent_events += 1;
        assert_ne!(w.flush(), Err(FlushError::WriterGone));
    }
    let error = w.storage_error().unwrap();
    assert!(error.contains("full") || error.contains("disk"), "{error}");

    // While full: critical writes are accepted and kept for retry; bulk ones are dropped.
    for _ in 0..20 {
        w.send(event(sent_events)).unwrap();
        sent_events += 1;
    }
    assert!(w.dropped() > 0, "dropped samples are counted");

    mount.resize("64m");
    let deadline = Instant::now() + HANG;
    while let Err(e) = w.flush() {
        assert!(matches!(e, FlushError::Storage(_)), "{e}");
        assert!(Instant::now() < deadline, "writes did not resume after space came back");
    }
    assert!(w.storage_error().is_none());
    drop(w);
    t.join();

    let c = rusqlite::Connection::open(&db).unwrap();
    let events: i64 =
        c.query_row("SELECT count(*) FROM events WHERE kind = 'agent_error'", [], |r| r.get(0)).unwrap();
    assert_eq!(events, sent_events as i64, "no event was lost");
    let outage: String =
        c.query_row("SELECT message FROM events WHERE kind = 'storage_error'", [], |r| r.get(0)).unwrap();
    assert!(outage.contains("resumed"), "{outage}");
    let ok: String = c.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
    assert_eq!(ok, "ok");
}

//! The dashboard's read-only promise, proven on real files: it never changes the database,
//! and a dashboard refreshing next to a busy writer does not stop the WAL from being
//! checkpointed back under its limit.

use crate::common::{LIMIT, Running, Sandbox, dashboard_bin, wait_until};
use crate::dashboard_fixture::{FakeLauncher, healthy_fleet, healthy_sandbox, now_ms};
use crate::dashboard_tui::Tui;
use agentvisor_shared::{Sample, WriteOp, WriterConfig};
use std::time::{Duration, Instant};

/// The main file's bytes, read whole with no SQLite connection of ours open. (The -wal and
/// -shm files may legitimately be created by a reader's connection; the main file may not
/// change.)
fn main_file(db: &std::path::Path) -> Vec<u8> {
    std::fs::read(db).unwrap()
}

#[test]
fn a_dashboard_session_leaves_the_database_byte_identical() {
    let (sb, db, launcher) = healthy_sandbox();
    launcher.stop();
    let before = main_file(&db);
    let dbs = db.to_str().unwrap();

    for args in [
        vec!["status"],
        vec!["status", "--json"],
        vec!["logs", "worker"],
        vec!["logs", "nobody"],
        vec!["events", "-n", "10"],
        vec!["events", "--severity", "error", "--agent", "worker"],
    ] {
        let out = sb.command(dashboard_bin()).args(&args).args(["--db", dbs]).output().unwrap();
        assert!(out.status.code().is_some(), "{args:?} died: {out:?}");
    }
    assert!(main_file(&db) == before, "a one-shot command changed the database");

    let mut tui = Tui::start(&sb, &db, 100, 30);
    tui.wait_for("researcher", LIMIT);
    // Visit every screen so every read path runs.
    tui.keys("\r");
    tui.wait_for("capabilities", LIMIT);
    for w in ["2", "3", "4", "5"] {
        tui.keys(w);
    }
    tui.keys("\t");
    tui.wait_for("Events (", LIMIT);
    tui.keys("vq");
    assert!(tui.wait_exit(LIMIT).success());
    assert!(main_file(&db) == before, "the TUI changed the database");
}

#[test]
fn a_refreshing_dashboard_does_not_pin_the_wal() {
    const WAL_LIMIT: u64 = 256 << 10;
    let sb = Sandbox::new();
    let db = sb.db();
    let cfg = WriterConfig {
        wal_limit_bytes: WAL_LIMIT,
        housekeeping_interval: Duration::from_millis(100),
        ..WriterConfig::default()
    };
    let launcher = FakeLauncher::start_with(&db, cfg);
    healthy_fleet(&launcher);
    let wal = agentvisor_shared::paths::wal_path(&db);
    let wal_size = || std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);

    // Readers refreshing on every commit: the TUI on its detail screen and two followers.
    let mut tui = Tui::start(&sb, &db, 120, 40);
    tui.wait_for("researcher", LIMIT);
    tui.keys("\r");
    tui.wait_for("capabilities", LIMIT);
    let dbs = db.to_str().unwrap();
    let mut cmd = sb.command(dashboard_bin());
    cmd.args(["events", "-f", "--db", dbs]);
    let _events = Running::spawn(cmd, sb.path(), "events-f");
    let mut cmd = sb.command(dashboard_bin());
    cmd.args(["logs", "worker", "-f", "--db", dbs]);
    let _logs = Running::spawn(cmd, sb.path(), "logs-f");

    // A busy writer: many small commits of samples and log lines for two seconds, growing the
    // WAL well past its limit between checkpoints.
    let started = Instant::now();
    let mut peak = 0;
    let mut truncations = 0;
    let mut last = 0;
    while started.elapsed() < Duration::from_secs(2) {
        let ts = now_ms();
        let samples = (0..200)
            .map(|i| Sample {
                scope: "researcher".into(),
                metric: format!("m{}", i % 10),
                ts_ms: ts + i,
                value: i as f64,
            })
            .collect();
        launcher.send(WriteOp::Samples(samples));
        launcher.logs("worker", &["busy output line with some padding to make the WAL grow faster"; 20]);
        launcher.flush();
        let size = wal_size();
        peak = peak.max(size);
        if size < last {
            truncations += 1;
        }
        last = size;
    }
    assert!(
        peak > WAL_LIMIT,
        "the load never grew the WAL past its limit ({peak} bytes): nothing was proven"
    );
    assert!(truncations > 0, "the WAL was never checkpointed while the dashboard refreshed (peak {peak})");
    // Once the load stops, the next housekeeping brings it back under the limit, readers or not.
    wait_until(LIMIT, "WAL back under its limit", || (wal_size() <= WAL_LIMIT).then_some(()));
    println!("WAL peak {peak} bytes, {truncations} truncations seen, limit {WAL_LIMIT}");
    assert!(tui.contents().contains("researcher"), "the dashboard stopped showing data");
    tui.keys("q");
    assert!(tui.wait_exit(LIMIT).success());
}

/// The dashboard binary is built the way every test here builds it (alone, as `cargo build -p`
/// does): cargo reports the features each crate was compiled with, and the store's `writer`
/// feature must not be among them. The binary itself must hold none of the writer's symbols or
/// statements; the launcher's binary, which has them, shows that the search finds them.
#[test]
fn the_dashboard_binary_has_no_code_that_writes() {
    let messages = escargot::CargoBuild::new()
        .package("agentvisor-dashboard")
        .bin("agentvisor-dashboard")
        .current_release()
        .exec()
        .unwrap();
    let mut store_features = None;
    for message in messages {
        let message = message.unwrap();
        if let Ok(escargot::format::Message::CompilerArtifact(a)) = message.decode()
            && a.target.name == "agentvisor_shared"
        {
            store_features = Some(a.features.iter().map(|f| f.to_string()).collect::<Vec<_>>());
        }
    }
    let store_features = store_features.expect("cargo reported no agentvisor_shared artifact");
    assert!(
        !store_features.iter().any(|f| f == "writer"),
        "the dashboard is built with the store's writer: {store_features:?}"
    );

    let marks: [&[u8]; 3] = [
        // Mangled paths of the writer module (legacy and v0 mangling both spell it so).
        b"agentvisor_shared6writer",
        // A statement only a launcher session writes, and one only a migration runs.
        b"INSERT INTO launcher_sessions",
        b"CREATE TABLE agent_state",
    ];
    let launcher = std::fs::read(crate::common::launcher_bin()).unwrap();
    let dashboard = std::fs::read(dashboard_bin()).unwrap();
    for mark in marks {
        let name = String::from_utf8_lossy(mark);
        let has = |bin: &[u8]| bin.windows(mark.len()).any(|w| w == mark);
        assert!(has(&launcher), "the launcher binary lacks {name}: the search proves nothing");
        assert!(!has(&dashboard), "the dashboard binary holds the writer's {name}");
    }
}

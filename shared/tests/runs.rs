//! Run records against a real SQLite file: the writer's run operations, output ranges, the
//! read API the dashboard uses, runs lost with their launcher, and retention.

// Helpers may unwrap: a failed set-up step is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use agentvisor_shared::model::{AgentSpec, DesiredState, RunOutcome, RunTrigger, Stream};
use agentvisor_shared::reader::Detail;
use agentvisor_shared::retention::RetentionConfig;
use agentvisor_shared::time::now_ms;
use agentvisor_shared::writer::WriterThread;
use agentvisor_shared::{
    NewLogLine, NewRun, NewSession, Reader, RunEnd, Store, WriteOp, WriterConfig, WriterHandle,
};
use std::path::Path;
use std::time::{Duration, Instant};

fn spec(name: &str) -> AgentSpec {
    AgentSpec {
        name: name.into(),
        description: String::new(),
        kind: "process".into(),
        command: vec!["/bin/true".into()],
        capabilities: vec![],
        config: serde_json::json!({}),
        enabled: true,
        desired_state: DesiredState::Running,
        heartbeat_timeout_ms: None,
        position: 0,
    }
}

fn start_writer(db: &Path, cfg: WriterConfig) -> (WriterHandle, WriterThread) {
    let mut store = Store::open(db, cfg).unwrap();
    store
        .begin_session(&NewSession { pid: 1, host: "test".into(), version: "0".into(), config_path: None })
        .unwrap();
    store.start().unwrap()
}

fn begin(w: &WriterHandle, agent: &str, trigger: RunTrigger, ts_ms: i64) -> i64 {
    let id = w.new_run_id();
    w.send(WriteOp::RunStarted(Box::new(NewRun {
        id,
        agent: agent.into(),
        trigger,
        attempt: 0,
        user: None,
        subject: None,
        detail: None,
        due_ms: Some(ts_ms),
        ts_ms,
        pid: Some(42),
    })))
    .unwrap();
    id
}

fn end(w: &WriterHandle, id: i64, ended_ms: i64, outcome: RunOutcome, exit_code: Option<i64>) {
    w.send(WriteOp::RunEnded(Box::new(RunEnd {
        id,
        ended_ms,
        outcome,
        exit_code,
        exit_signal: None,
        tokens_in: Some(10),
        tokens_out: Some(20),
        cost: Some(0.5),
        message: None,
    })))
    .unwrap();
}

fn lines(agent_lines: &[(&str, &str)]) -> WriteOp {
    WriteOp::Logs(
        agent_lines
            .iter()
            .map(|(agent, line)| NewLogLine {
                agent: (*agent).into(),
                stream: Stream::Stdout,
                ts_ms: now_ms(),
                line: (*line).into(),
            })
            .collect(),
    )
}

fn texts(reader: &Reader, run: &agentvisor_shared::runs::Run) -> Vec<String> {
    reader.run_output(run, 100).unwrap().into_iter().map(|l| l.line).collect()
}

#[test]
fn runs_keep_their_outcome_and_their_own_output() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    let (w, t) = start_writer(&db, WriterConfig::default());
    for name in ["a", "b"] {
        w.send(WriteOp::RegisterAgent(Box::new(spec(name)))).unwrap();
    }
    let first = begin(&w, "a", RunTrigger::Schedule, 1_000);
    let other = begin(&w, "b", RunTrigger::Start, 1_000);
    w.offer(lines(&[("a", "a1"), ("b", "b1"), ("a", "a2")]));
    // Due while the first still runs: skipped, and the first run's late output stays its own.
    let skipped = begin(&w, "a", RunTrigger::Schedule, 2_000);
    end(&w, skipped, 2_000, RunOutcome::Skipped, None);
    end(&w, first, 2_500, RunOutcome::Failed, Some(3));
    w.offer(lines(&[("a", "a3")]));
    let second = begin(&w, "a", RunTrigger::Manual, 3_000);
    w.offer(lines(&[("a", "a4")]));
    end(&w, second, 3_100, RunOutcome::Succeeded, Some(0));
    w.send(WriteOp::NextRun { agent: "a".into(), next_ms: Some(4_000) }).unwrap();
    w.flush().unwrap();

    let reader = Reader::open(&db).unwrap();
    let runs = reader.recent_runs(Some("a"), false, 10).unwrap();
    assert_eq!(runs.iter().map(|r| r.id).collect::<Vec<_>>(), [second, skipped, first], "newest first");
    let failed = &runs[2];
    assert_eq!(
        (failed.outcome, failed.exit_code, failed.duration_ms, failed.tokens_out, failed.cost),
        (Some(RunOutcome::Failed), Some(3), Some(1_500), Some(20), Some(0.5))
    );
    assert_eq!(texts(&reader, failed), ["a1", "a2", "a3"]);
    assert_eq!(texts(&reader, &runs[0]), ["a4"]);
    assert!(texts(&reader, &runs[1]).is_empty(), "a skipped run has no output");
    let open = &reader.recent_runs(Some("b"), false, 10).unwrap()[0];
    assert!(open.is_open() && open.id == other);
    assert_eq!(texts(&reader, open), ["b1"]);

    let failures = reader.recent_runs(None, true, 10).unwrap();
    assert_eq!(failures.iter().map(|r| r.id).collect::<Vec<_>>(), [first]);
    assert_eq!(reader.recent_runs(None, false, 2).unwrap().len(), 2, "the limit holds");

    let snapshot = reader.snapshot().unwrap();
    let agent = |name: &str| snapshot.agents.iter().find(|a| a.name == name).unwrap();
    let last = agent("a").last_run.as_ref().unwrap();
    assert_eq!(last.id, second, "the newest finished run that was not skipped");
    assert_eq!(
        (last.trigger, last.outcome, last.started_ms, last.ended_ms, last.duration_ms, last.exit_code),
        (RunTrigger::Manual, RunOutcome::Succeeded, 3_000, Some(3_100), Some(100), Some(0))
    );
    assert_eq!(agent("a").next_run_ms, Some(4_000));
    assert_eq!(agent("b").last_run, None, "b's only run is still open");
    assert_eq!(agent("b").next_run_ms, None);
    let figures = reader.snapshot_with(Detail::Figures).unwrap();
    let runs_of = |s: &agentvisor_shared::model::Snapshot| -> Vec<_> {
        s.agents.iter().map(|a| (a.name.clone(), a.last_run.clone(), a.next_run_ms)).collect()
    };
    assert_eq!(runs_of(&figures), runs_of(&snapshot), "the exporter's snapshot has the runs too");
    assert_eq!(reader.run(first).unwrap().unwrap(), *failed);
    drop(w);
    t.join();
}

#[test]
fn runs_open_when_the_launcher_died_are_lost_and_ids_are_never_reused() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    let (w, t) = start_writer(&db, WriterConfig::default());
    w.send(WriteOp::RegisterAgent(Box::new(spec("a")))).unwrap();
    let started = now_ms() - 5_000;
    let open = begin(&w, "a", RunTrigger::Schedule, started);
    let done = begin(&w, "a", RunTrigger::CatchUp, started + 1);
    end(&w, done, started + 2, RunOutcome::Succeeded, Some(0));
    w.flush().unwrap();
    // The session is never ended: as if the launcher had been killed.
    drop(w);
    t.join();

    let mut store = Store::open(&db, WriterConfig::default()).unwrap();
    assert_eq!(store.last_due_times().unwrap().get("a"), Some(&(started + 1)));
    store
        .begin_session(&NewSession { pid: 2, host: "test".into(), version: "0".into(), config_path: None })
        .unwrap();
    let (w, t) = store.start().unwrap();
    assert!(w.new_run_id() > done);
    drop(w);
    t.join();
    let reader = Reader::open(&db).unwrap();
    let runs = reader.recent_runs(Some("a"), true, 10).unwrap();
    assert_eq!(runs.len(), 1, "{runs:?}");
    let lost = &runs[0];
    assert_eq!((lost.id, lost.outcome), (open, Some(RunOutcome::Lost)));
    let ended = lost.ended_ms.unwrap();
    assert!(ended >= started && lost.duration_ms == Some(ended - started), "{lost:?}");
}

#[test]
fn retention_bounds_runs_by_count() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    let cfg = WriterConfig {
        housekeeping_interval: Duration::from_millis(10),
        retention: RetentionConfig {
            runs_max_rows: 10,
            interval: Duration::ZERO,
            ..RetentionConfig::default()
        },
        ..WriterConfig::default()
    };
    let (w, t) = start_writer(&db, cfg);
    let now = now_ms();
    let ids: Vec<i64> = (0..50)
        .map(|i| {
            let id = begin(&w, "a", RunTrigger::Start, now + i);
            end(&w, id, now + i, RunOutcome::Succeeded, Some(0));
            id
        })
        .collect();
    w.flush().unwrap();
    let reader = Reader::open(&db).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let kept = reader.recent_runs(None, false, 100).unwrap();
        if kept.len() <= 10 {
            assert_eq!(kept.first().map(|r| r.id), ids.last().copied(), "the newest runs stay");
            break;
        }
        assert!(Instant::now() < deadline, "runs were not pruned: {} kept", kept.len());
        // Another write makes the writer loop take its housekeeping turn.
        w.send(WriteOp::NextRun { agent: "a".into(), next_ms: None }).unwrap();
        w.flush().unwrap();
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(w);
    t.join();
}

fn totals(w: &WriterHandle, agent: &str, tokens_in: i64, tokens_out: i64, cost: f64) {
    use agentvisor_shared::model::{AgentStatus, Reported};
    w.send(WriteOp::Status(Box::new(AgentStatus {
        agent: agent.into(),
        reported: Reported {
            tokens_in: Some(tokens_in),
            tokens_out: Some(tokens_out),
            cost: Some(cost),
            ..Reported::default()
        },
        ..AgentStatus::default()
    })))
    .unwrap();
}

#[test]
fn spend_counts_runs_where_they_ended_and_open_runs_now() {
    use agentvisor_shared::runs::Spend;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    let (w, t) = start_writer(&db, WriterConfig::default());
    for name in ["a", "b", "c"] {
        w.send(WriteOp::RegisterAgent(Box::new(spec(name)))).unwrap();
    }
    // a: one run ended at 1_500 (before the window), one begun at 1_800 and ended at 2_500
    // (spans the boundary: counts whole), each 10/20/0.5 (see `end`).
    let old = begin(&w, "a", RunTrigger::Start, 1_000);
    end(&w, old, 1_500, RunOutcome::Failed, Some(1));
    let spanning = begin(&w, "a", RunTrigger::Start, 1_800);
    end(&w, spanning, 2_500, RunOutcome::Succeeded, Some(0));
    // b: still running, has reported 100/200/3.0 so far: counts now.
    begin(&w, "b", RunTrigger::Start, 500);
    totals(&w, "b", 100, 200, 3.0);
    // c: its first run ended with 10/20/0.5; its new process has reported nothing yet, so its
    // running totals are still the ended run's: not counted twice.
    let c_first = begin(&w, "c", RunTrigger::Start, 2_100);
    totals(&w, "c", 10, 20, 0.5);
    end(&w, c_first, 2_200, RunOutcome::Failed, Some(1));
    let c_second = begin(&w, "c", RunTrigger::Start, 2_300);
    // A hook run shares no totals with an agent.
    begin(&w, "b", RunTrigger::Hook, 2_400);
    w.flush().unwrap();

    let reader = Reader::open(&db).unwrap();
    // `now` an hour after `since`: the last hour is the window.
    let spend = |since: i64| reader.spend(-1, since + 3_600_000).unwrap().last_hour;
    assert_eq!(spend(2_000), Spend { tokens_in: 120, tokens_out: 240, cost: 4.0 });
    assert_eq!(spend(0), Spend { tokens_in: 130, tokens_out: 260, cost: 4.5 });
    assert_eq!(spend(3_000), Spend { tokens_in: 100, tokens_out: 200, cost: 3.0 }, "open runs only");

    // Once c's new process reports, its running totals count.
    totals(&w, "c", 1, 2, 0.25);
    w.flush().unwrap();
    assert_eq!(spend(3_000), Spend { tokens_in: 101, tokens_out: 202, cost: 3.25 });
    // Ended, its own totals count where it ended, and its running totals no longer do.
    w.send(WriteOp::RunEnded(Box::new(RunEnd {
        id: c_second,
        ended_ms: 4_000,
        outcome: RunOutcome::Succeeded,
        exit_code: Some(0),
        exit_signal: None,
        tokens_in: Some(1),
        tokens_out: Some(2),
        cost: Some(0.25),
        message: None,
    })))
    .unwrap();
    w.flush().unwrap();
    assert_eq!(spend(3_000), Spend { tokens_in: 101, tokens_out: 202, cost: 3.25 });
    let both = reader.spend(0, 5_000 + 3_600_000).unwrap();
    assert_eq!((both.today.cost, both.last_hour.cost), (4.75, 3.0));
    drop(w);
    t.join();
}

//! The manager with real supervisors, processes and a real database: what the fleet hands a
//! supervisor when it spawns one.

use super::*;
use agentvisor_shared::model::{AgentState, RunTrigger};
use agentvisor_shared::runs::Run;
use agentvisor_shared::time::now_ms;
use agentvisor_shared::{NewSession, Reader, Store, WriterConfig};

/// Bounds a hang only: the machine may be loaded.
const DEADLINE: Duration = Duration::from_secs(60);

const HOUR_MS: i64 = 3_600_000;

/// Polls `f` until it returns `Some`, or fails the test at the deadline; the supervisors run
/// on this thread meanwhile.
async fn wait_for<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let end = tokio::time::Instant::now() + DEADLINE;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(tokio::time::Instant::now() < end, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn runs(reader: &Reader) -> Vec<Run> {
    let mut runs = reader.recent_runs(Some("nightly"), false, 100).unwrap();
    runs.reverse();
    runs
}

fn catch_ups(reader: &Reader) -> usize {
    runs(reader).iter().filter(|r| r.trigger == RunTrigger::CatchUp).count()
}

/// Asks for a manual run and waits until it is recorded. A supervisor queues the catch-up run
/// it was given before it reads any command, so once the manual run is recorded every
/// catch-up run its supervisor made is too.
async fn manual_run(manager: &mut Manager, reader: &Reader) {
    let before = runs(reader).len();
    let reply = manager.run_now(&["nightly".to_owned()], &Origin::Sighup).await;
    assert!(reply.ok, "{reply:?}");
    wait_for("the manual run recorded", || {
        runs(reader)[before..].iter().any(|r| r.trigger == RunTrigger::Manual).then_some(())
    })
    .await;
}

/// Waits until the agent is between runs, with no process (so `ctl start` starts it anew).
async fn scheduled(manager: &Manager) {
    let roster = manager.roster();
    wait_for("the agent scheduled, between runs", || {
        roster
            .with_members(|m| m.iter().all(|(_, rx)| rx.borrow().lifecycle.state == AgentState::Scheduled))
            .then_some(())
    })
    .await;
}

#[tokio::test]
async fn only_the_first_supervisor_catches_up() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("state.db");
    let config_path = dir.path().join("agents.toml");
    let text = "[[agent]]\nname = \"nightly\"\ncommand = \"true\"\n\
                schedule = { every = \"1h\", catch_up = true }\n";
    std::fs::write(&config_path, text).unwrap();
    let config = crate::config::load(&config_path).unwrap();
    let mut store = Store::open(&db, WriterConfig::default()).unwrap();
    let session = NewSession { pid: 1, host: "test".into(), version: "test".into(), config_path: None };
    store.begin_session(&session).unwrap();
    let (writer, _writer_thread) = store.start().unwrap();
    let reader = Reader::open(&db).unwrap();

    // Last due two and a half hours ago: the due times since then were missed.
    let last_due = now_ms() - 5 * HOUR_MS / 2;
    let mut manager =
        Manager::start(config, &writer, HashMap::from([("nightly".to_owned(), last_due)])).unwrap();
    let caught = wait_for("the catch-up run", || {
        runs(&reader).into_iter().find(|r| r.trigger == RunTrigger::CatchUp && !r.is_open())
    })
    .await;
    assert_eq!(caught.due_ms, Some(last_due + 2 * HOUR_MS), "the latest due time missed");

    // `ctl start`: a new supervisor of the same agent.
    scheduled(&manager).await;
    let operator = Origin::Ctl(Peer::new(nix::unistd::getuid().as_raw(), None));
    let reply = manager.control(Action::Start, &["nightly".to_owned()], &operator).await;
    assert!(reply.ok && reply.message.starts_with("started"), "{reply:?}");
    manual_run(&mut manager, &reader).await;
    assert_eq!(catch_ups(&reader), 1, "ctl start caught up again: {:?}", runs(&reader));

    // A reload that changes the agent restarts it with a new supervisor.
    std::fs::write(&config_path, format!("{text}env = {{ CHANGED = \"1\" }}\n")).unwrap();
    scheduled(&manager).await;
    let reply = manager.reload(&Origin::Sighup).await;
    assert!(reply.ok && reply.message.contains("restarted nightly"), "{reply:?}");
    manual_run(&mut manager, &reader).await;
    assert_eq!(catch_ups(&reader), 1, "a reload caught up again: {:?}", runs(&reader));

    // Nothing of the agent is left behind; the writer thread ends with the test's process.
    manager.fleet.stop_all("end of test").await;
}

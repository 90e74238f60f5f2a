//! Resource limits with real processes: a Python agent that allocates past `max_memory` is
//! restarted, with a `limit_exceeded` event naming the reading and the limit.

use crate::common::{LIMIT, Sandbox, agent_field, event_kinds, rows, wait_until};

/// The first run allocates 200 MiB (written to, so it is resident) and holds it; later runs
/// stay small. The launcher must stop the first run over `max_memory = "100MiB"` and the
/// restart policy must start a second one, which then keeps running.
#[test]
fn a_memory_hog_is_restarted_by_max_memory() {
    let sb = Sandbox::new();
    sb.script(
        "hog.py",
        "import os, time\n\
         if not os.path.exists('ran'):\n\
         \x20   open('ran', 'w').close()\n\
         \x20   hoard = b'x' * (200 << 20)\n\
         while True:\n\
         \x20   time.sleep(1)\n",
    );
    sb.write_config(
        r#"
[launcher]
sample_interval = "200ms"

[[agent]]
name = "hog"
command = "python3"
args = ["hog.py"]
max_memory = "100MiB"
backoff = { initial = "100ms" }
"#,
    );
    let _l = sb.launcher();
    let db = sb.db();
    let message = wait_until(LIMIT, "a limit_exceeded event", || {
        rows(&db, "SELECT message FROM events WHERE agent = 'hog' AND kind = 'limit_exceeded'")
            .into_iter()
            .next()
            .map(|r| r[0].clone())
    });
    assert!(
        message.starts_with("memory ") && message.contains("MiB over max_memory 100MiB; restarting it"),
        "{message}"
    );
    wait_until(LIMIT, "the second run", || {
        let restarts: i64 = agent_field(&db, "hog", "restarts")?;
        let state: String = agent_field(&db, "hog", "state")?;
        (restarts == 1 && state == "running").then_some(())
    });
    let kinds = event_kinds(&db, "hog");
    let at = kinds.iter().position(|k| k == "limit_exceeded").unwrap();
    assert_eq!(&kinds[at..at + 2], ["limit_exceeded", "stopping"], "{kinds:?}");
    assert!(kinds[at..].iter().any(|k| k == "backoff"), "restarted by the restart policy: {kinds:?}");
    // The second run stays under the limit: no second event.
    let memory: f64 = wait_until(LIMIT, "the second run sampled", || {
        rows(&db, "SELECT last_value FROM metric_series WHERE scope = 'hog' AND metric = 'memory_bytes'")
            .first()
            .and_then(|r| r[0].parse::<f64>().ok())
            .filter(|m| *m < 100.0 * 1_048_576.0)
    });
    assert!(memory > 0.0);
    assert_eq!(event_kinds(&db, "hog").iter().filter(|k| *k == "limit_exceeded").count(), 1);
}

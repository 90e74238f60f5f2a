//! What the launcher tells the store and systemd about itself while it runs: that it is alive,
//! with its status line, every second, and that it is ready once its agents have settled.

use super::systemd;
use crate::manager::fleet::Roster;
use agentvisor_shared::time::now_ms;
use agentvisor_shared::{WriteOp, WriterHandle};
use std::time::Duration;

/// systemd hears READY=1 by then even if some agents are still starting or waiting.
const READY_WITHIN: Duration = Duration::from_secs(60);

/// Every second: the session's liveness row with the status summary (also given to systemd
/// when it changes), and systemd's watchdog at half its interval.
pub async fn liveness(roster: Roster, writer: WriterHandle) {
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
pub async fn ready_when_settled(roster: Roster) {
    let deadline = tokio::time::Instant::now() + READY_WITHIN;
    while !roster.settled() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    systemd::ready(&roster.summary());
}

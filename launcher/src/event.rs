//! Recording an event: logged at its severity's level and sent to the store's writer, which
//! never drops an event, and offered to the event hooks (`crate::hooks`). The supervisors, the
//! manager and the daemon record theirs this way.

use agentvisor_shared::model::{EventKind, Severity};
use agentvisor_shared::time::now_ms;
use agentvisor_shared::{NewEvent, WriteOp, WriterHandle};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::mpsc;

/// Where events go for the hooks, once their dispatcher runs. Set once per launcher: events are
/// recorded from every layer (supervisors, manager, daemon), and one way to reach the
/// dispatcher keeps [`record`] the one call they make.
static HOOKS: OnceLock<mpsc::Sender<NewEvent>> = OnceLock::new();
/// Events the hooks' dispatcher had no room for.
static HOOKS_MISSED: AtomicU64 = AtomicU64::new(0);

/// Connects [`record`] to the hooks' dispatcher (the first call wins).
pub fn feed_hooks(tx: mpsc::Sender<NewEvent>) {
    if HOOKS.set(tx).is_err() {
        tracing::warn!("hooks already connected; a second dispatcher gets no events");
    }
}

/// Offers an event to the hooks without waiting: a dispatcher that is behind misses it.
pub fn offer_to_hooks(e: &NewEvent) {
    if let Some(tx) = HOOKS.get()
        && tx.try_send(e.clone()).is_err()
    {
        let n = HOOKS_MISSED.fetch_add(1, Ordering::Relaxed) + 1;
        tracing::warn!(kind = e.kind.as_str(), missed = n, "hooks are behind; event not handed to them");
    }
}

pub fn record(
    writer: &WriterHandle,
    agent: Option<&str>,
    kind: EventKind,
    severity: Severity,
    message: String,
) {
    let kind_name = kind.as_str();
    match severity {
        Severity::Info => tracing::info!(agent, kind = kind_name, "{message}"),
        Severity::Warning => tracing::warn!(agent, kind = kind_name, "{message}"),
        Severity::Error | Severity::Critical => tracing::error!(agent, kind = kind_name, "{message}"),
    }
    let e = NewEvent { ts_ms: now_ms(), agent: agent.map(str::to_owned), kind, severity, message };
    offer_to_hooks(&e);
    if writer.send(WriteOp::Event(e)).is_err() {
        tracing::error!(agent, "the store's writer is gone; event not recorded");
    }
}

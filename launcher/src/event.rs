//! Recording an event: logged at its severity's level and sent to the store's writer, which
//! never drops an event. The supervisors, the manager and the daemon record theirs this way.

use agentvisor_shared::model::{EventKind, Severity};
use agentvisor_shared::time::now_ms;
use agentvisor_shared::{NewEvent, WriteOp, WriterHandle};

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
    if writer.send(WriteOp::Event(e)).is_err() {
        tracing::error!(agent, "the store's writer is gone; event not recorded");
    }
}

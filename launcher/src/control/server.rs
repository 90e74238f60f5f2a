//! The launcher's side of the control socket: `<db>.sock`, owner-only (or owner and group
//! with `group = true`), and every connection checked against the kernel's record of who made
//! it (SO_PEERCRED): the launcher's own user or root, plus members of the launcher's group
//! when group access is on. Anyone else is answered with a refusal and recorded.

use super::protocol::{Action, AgentLine, MAX_REQUEST, Request, Response};
use crate::manager::fleet::Roster;
use crate::manager::{self, Input, Job, Origin, Peer, Reply};
use agentvisor_shared::model::{EventKind, Severity};
use agentvisor_shared::time::now_ms;
use agentvisor_shared::{NewEvent, WriteOp, WriterHandle};
use std::io;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot};

/// How long a client may take to send its request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// At most one `ctl_refused` event per this interval, so refused clients cannot flood the
/// event table (events are never dropped).
const REFUSED_EVENT_EVERY_MS: i64 = 1_000;

/// Binds the socket, replacing one left by a launcher that crashed: the caller holds the
/// database's lock, so no live launcher can be using it.
pub fn bind(path: &Path, group: bool) -> io::Result<UnixListener> {
    let located = |e: io::Error| io::Error::new(e.kind(), format!("{}: {e}", path.display()));
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_socket() => std::fs::remove_file(path).map_err(located)?,
        Ok(_) => return Err(located(io::Error::other("exists and is not a socket; not replacing it"))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(located(e)),
    }
    let listener = UnixListener::bind(path).map_err(located)?;
    // bind() honours the umask, which the launcher does not control; tighten the mode at
    // once. A client connecting in between is still checked by its credentials.
    let mode = if group { 0o660 } else { 0o600 };
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(located)?;
    Ok(listener)
}

pub async fn serve(
    listener: UnixListener,
    inbox: mpsc::Sender<Input>,
    roster: Roster,
    writer: WriterHandle,
    group: bool,
) {
    let last_refusal = std::sync::Arc::new(AtomicI64::new(0));
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let ctx = (inbox.clone(), roster.clone(), writer.clone(), last_refusal.clone());
                tokio::spawn(async move {
                    if let Err(e) = handle(stream, ctx, group).await {
                        tracing::debug!(error = %e, "control connection failed");
                    }
                });
            }
            Err(e) => {
                // Out of descriptors, say: wait rather than spin.
                tracing::warn!(error = %e, "control socket accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

type Ctx = (mpsc::Sender<Input>, Roster, WriterHandle, std::sync::Arc<AtomicI64>);

async fn handle(
    stream: UnixStream,
    (inbox, roster, writer, last_refusal): Ctx,
    group: bool,
) -> io::Result<()> {
    let cred = stream.peer_cred()?;
    let peer = Peer::new(cred.uid(), cred.pid());
    let (read, mut write) = stream.into_split();
    let response = if !allowed(cred.uid(), cred.gid(), cred.pid(), group) {
        refused(&peer, &writer, &last_refusal);
        Response::error(format!(
            "permission denied: {peer} is not the launcher's user (uid {}) or root",
            nix::unistd::geteuid()
        ))
    } else {
        let mut line = Vec::new();
        let mut reader = BufReader::new(read.take(MAX_REQUEST));
        match tokio::time::timeout(REQUEST_TIMEOUT, reader.read_until(b'\n', &mut line)).await {
            Err(_) => Response::error("no request within 5 s"),
            Ok(Err(e)) => return Err(e),
            Ok(Ok(_)) => match serde_json::from_slice::<Request>(&line) {
                Err(e) => Response::error(format!("bad request: {e}")),
                Ok(req) => match job_action(req.action) {
                    None => status(&roster, &writer, &req.agents),
                    Some(action) => ask(&inbox, action, req.agents, peer).await,
                },
            },
        }
    };
    let mut out = serde_json::to_vec(&response).map_err(io::Error::other)?;
    out.push(b'\n');
    write.write_all(&out).await?;
    write.shutdown().await
}

/// The manager's job for a request; `None` for `status`, which is answered here.
fn job_action(action: Action) -> Option<manager::Action> {
    match action {
        Action::Start => Some(manager::Action::Start),
        Action::Stop => Some(manager::Action::Stop),
        Action::Restart => Some(manager::Action::Restart),
        Action::Reload => Some(manager::Action::Reload),
        Action::Run => Some(manager::Action::Run),
        Action::Status => None,
    }
}

/// Hands a job to the manager and waits for its reply.
async fn ask(
    inbox: &mpsc::Sender<Input>,
    action: manager::Action,
    agents: Vec<String>,
    peer: Peer,
) -> Response {
    let (reply, answer) = oneshot::channel();
    let job = Job { action, agents, origin: Origin::Ctl(peer), reply: Some(reply) };
    let gone = || Response::error("the launcher is shutting down");
    if inbox.send(Input::Job(job)).await.is_err() {
        return gone();
    }
    match answer.await {
        Ok(Reply { ok, message }) => Response { ok, message, ..Response::default() },
        // The manager stopped taking jobs before it got to this one.
        Err(_) => gone(),
    }
}

/// The launcher's user and root always; members of the launcher's group with `group = true`
/// (primary group from the credentials, supplementary groups from /proc).
fn allowed(uid: u32, gid: u32, pid: Option<i32>, group: bool) -> bool {
    if uid == 0 || uid == nix::unistd::geteuid().as_raw() {
        return true;
    }
    if !group {
        return false;
    }
    let mine = nix::unistd::getegid().as_raw();
    gid == mine || pid.is_some_and(|p| supplementary_groups(p).contains(&mine))
}

fn supplementary_groups(pid: i32) -> Vec<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Groups:"))
        .map(|g| g.split_whitespace().filter_map(|n| n.parse().ok()).collect())
        .unwrap_or_default()
}

fn refused(peer: &Peer, writer: &WriterHandle, last: &AtomicI64) {
    let message = format!("refused a control connection from {peer}: not the launcher's user or root");
    tracing::warn!("{message}");
    let now = now_ms();
    let before = last.load(Ordering::Relaxed);
    if now - before < REFUSED_EVENT_EVERY_MS
        || last.compare_exchange(before, now, Ordering::Relaxed, Ordering::Relaxed).is_err()
    {
        return;
    }
    let e = NewEvent {
        ts_ms: now,
        agent: None,
        kind: EventKind::CtlRefused,
        severity: Severity::Warning,
        message,
    };
    if writer.send(WriteOp::Event(e)).is_err() {
        tracing::error!("the store's writer is gone; event not recorded");
    }
}

/// The agents' states as the supervisors publish them (not from the database, which may lag
/// or be failing), under the launcher's status line, which names a failing store.
fn status(roster: &Roster, writer: &WriterHandle, names: &[String]) -> Response {
    let stopped_by = roster.stopped_by();
    let agents = roster.with_members(|members| {
        if let Some(unknown) = names.iter().find(|n| !members.iter().any(|(m, _)| m == *n)) {
            return Err(format!("{unknown:?} is not a running launcher's agent"));
        }
        Ok(members
            .iter()
            .filter(|(n, _)| names.is_empty() || names.contains(n))
            .map(|(name, rx)| {
                let mut line = AgentLine::of(&rx.borrow(), stopped_by.get(name).map(String::as_str));
                line.name.clone_from(name);
                line
            })
            .collect())
    });
    match agents {
        Ok(agents) => Response {
            ok: true,
            message: roster.status_line(writer),
            agents,
            storage_error: writer.storage_error(),
        },
        Err(message) => Response::error(message),
    }
}

#[cfg(test)]
mod tests {
    use super::allowed;
    use nix::unistd::{getegid, geteuid};

    #[test]
    fn the_owner_and_root_always_the_group_only_when_enabled() {
        let (me, group) = (geteuid().as_raw(), getegid().as_raw());
        let other = if me == 65_534 { 65_533 } else { 65_534 };
        let other_group = if group == 65_534 { 65_533 } else { 65_534 };
        assert!(allowed(0, 0, None, false));
        assert!(allowed(me, other_group, None, false));
        assert!(!allowed(other, group, None, false));
        assert!(allowed(other, group, None, true));
        assert!(!allowed(other, other_group, None, true));
    }
}

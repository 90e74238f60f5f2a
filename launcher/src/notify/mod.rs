//! How agents talk to the launcher: a unix datagram socket per agent (`NOTIFY_SOCKET`, what
//! systemd's `sd_notify` clients speak) and an inherited pipe (`AGENTVISOR_NOTIFY_FD`, for
//! shell agents). Both carry the same `KEY=VALUE` lines and go through the same parser; what
//! they read is forwarded, parsed, to the agent's supervisor.

pub mod parse;

pub use parse::{Notice, Parsed};

use crate::capture::lines::BoundedLines;
use nix::sys::socket::{ControlMessageOwned, MsgFlags, UnixCredentials, recvmsg, setsockopt, sockopt};
use nix::unistd::Uid;
use std::io::{self, IoSliceMut};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::io::Interest;
use tokio::net::UnixDatagram;
use tokio::net::unix::pipe;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// A new name for an agent's notify socket, in the abstract namespace (`NOTIFY_SOCKET` starts
/// with `@`, which systemd's clients read as such): no file is created, so a launcher that was
/// killed leaves nothing behind and starting a thousand agents creates no thousand inodes. The
/// launcher's PID and the counter make it unique among the launcher's own names (a replaced
/// member binds anew while the old socket may still be closing); the random part makes it
/// unguessable, because any user may bind any abstract name first.
pub fn socket_name(agent: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("@agentvisor/{}/{n}-{:016x}/{agent}", std::process::id(), random_u64())
}

/// 64 random bits from the kernel; should /dev/urandom be unreadable (a sandbox without /dev),
/// the per-process random keys std seeds its hash maps with.
fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    use std::io::Read;
    let mut bytes = [0u8; 8];
    match std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes)) {
        Ok(()) => u64::from_ne_bytes(bytes),
        Err(_) => {
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u128(std::time::SystemTime::UNIX_EPOCH.elapsed().map_or(0, |d| d.as_nanos()));
            h.finish()
        }
    }
}

/// Names tried before giving up when each is taken already (by another process that bound it
/// first: with 64 random bits, never by chance).
const NAME_ATTEMPTS: usize = 8;

/// Binds a fresh socket for `agent` under a new name (another one if a name is taken) and
/// forwards what arrives, as [`listen`]. Returns the name bound.
pub fn listen_new(agent: &str, tx: &mpsc::Sender<Parsed>) -> io::Result<(String, JoinHandle<()>)> {
    let mut attempt = 0;
    loop {
        let name = socket_name(agent);
        match listen(&name, tx.clone()) {
            Ok(handle) => return Ok((name, handle)),
            Err(e) if e.kind() == io::ErrorKind::AddrInUse && attempt + 1 < NAME_ATTEMPTS => {
                tracing::warn!("the notify socket name {name} is taken by another process; trying another");
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Binds an agent's socket and forwards what arrives until the supervisor goes away.
/// Datagrams from other users are dropped: anyone on the machine can reach an abstract socket,
/// and only the launcher's user (or root) may speak for its agents.
pub fn listen(name: &str, tx: mpsc::Sender<Parsed>) -> io::Result<JoinHandle<()>> {
    let located =
        |e: io::Error| io::Error::new(e.kind(), format!("cannot bind the notify socket {name}: {e}"));
    let addr = SocketAddr::from_abstract_name(name.trim_start_matches('@')).map_err(located)?;
    let socket = std::os::unix::net::UnixDatagram::bind_addr(&addr).map_err(located)?;
    setsockopt(&socket, sockopt::PassCred, &true).map_err(|e| located(e.into()))?;
    socket.set_nonblocking(true).map_err(located)?;
    let socket = UnixDatagram::from_std(socket).map_err(located)?;
    let own = Uid::effective();
    Ok(tokio::spawn(async move {
        loop {
            if let Err(e) = socket.readable().await {
                tracing::debug!(error = %e, "notify socket failed");
                return;
            }
            // The buffer lives only between readiness and parsing, not across the await, so
            // a thousand idle agents do not each hold one. One byte more than allowed, so an
            // oversized datagram shows as too long rather than being silently truncated into
            // something that parses.
            let parsed = {
                let mut buf = [0u8; parse::MAX_MESSAGE + 1];
                match socket.try_io(Interest::READABLE, || receive(&socket, &mut buf, own)) {
                    Ok(Some(n)) => parse::parse(&buf[..n]),
                    Ok(None) => continue,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                    Err(e) => {
                        tracing::debug!(error = %e, "notify socket receive failed");
                        Parsed { notices: Vec::new(), malformed: 1 }
                    }
                }
            };
            if tx.send(parsed).await.is_err() {
                return;
            }
        }
    }))
}

/// Receives one datagram into `buf`: its length, or `None` when another user sent it.
/// Descriptors that come with it are closed at once: `systemd-notify` sends one with
/// `BARRIER=1` and waits until it is closed (any beyond the room here the kernel closes).
fn receive(socket: &UnixDatagram, buf: &mut [u8], own: Uid) -> io::Result<Option<usize>> {
    let mut iov = [IoSliceMut::new(buf)];
    let mut space = nix::cmsg_space!(UnixCredentials, [RawFd; 16]);
    let msg = recvmsg::<()>(socket.as_raw_fd(), &mut iov, Some(&mut space), MsgFlags::MSG_DONTWAIT)?;
    let mut trusted = false;
    for c in msg.cmsgs()? {
        match c {
            ControlMessageOwned::ScmCredentials(cred) => {
                trusted = cred.uid() == own.as_raw() || cred.uid() == 0;
            }
            ControlMessageOwned::ScmRights(fds) => {
                for fd in fds {
                    let _ = nix::unistd::close(fd);
                }
            }
            _ => {}
        }
    }
    if !trusted {
        tracing::debug!("dropped a notify datagram from another user");
    }
    Ok(trusted.then_some(msg.bytes))
}

/// Forwards the lines an agent writes to its notify pipe until it closes. Lines that arrive
/// together (a heartbeat and its metrics, written at once) are forwarded as one message, so
/// the supervisor wakes once for them.
pub fn read_pipe(read_end: OwnedFd, tx: mpsc::Sender<Parsed>) -> io::Result<JoinHandle<()>> {
    let receiver = pipe::Receiver::from_owned_fd(read_end)?;
    Ok(tokio::spawn(async move {
        let mut lines = BoundedLines::new(receiver, parse::MAX_MESSAGE);
        let add = |parsed: &mut Parsed, line: crate::capture::lines::Line<'_>| {
            if line.cut {
                parsed.malformed += 1;
            } else {
                parse::parse_into(parsed, line.bytes);
            }
        };
        while let Some(first) = lines.next_line().await {
            let mut parsed = Parsed::default();
            add(&mut parsed, first);
            while let Some(line) = lines.buffered_line() {
                add(&mut parsed, line);
            }
            if tx.send(parsed).await.is_err() {
                return;
            }
        }
    }))
}

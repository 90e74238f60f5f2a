//! `agentvisor-launcher ctl ACTION [AGENT...|all]`: sends one request to the running launcher and
//! prints its answer. Exit codes: 0 done, 1 refused or failed, 3 no launcher is running, 64 a
//! usage error (no or unknown agent names).

use super::protocol::{Action, AgentLine, Request, Response};
use crate::config::ALL_AGENTS as ALL;
use agentvisor_shared::exit_code::EXIT_USAGE;
use agentvisor_shared::paths;
use agentvisor_shared::time::now_ms;
use clap::ValueEnum;
use nix::sys::socket::{AddressFamily, SockFlag, SockType, UnixAddr, getsockopt, setsockopt, sockopt};
use nix::sys::time::TimeVal;
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Exit code when no launcher runs on the database.
pub const EXIT_NOT_RUNNING: u8 = 3;

/// The longest any action waits for its answer from a launcher that is running: stops take
/// the agents' `stop_timeout`s, one after another in dependency order, but not forever.
const MAX_ACTION_WAIT: Duration = Duration::from_secs(15 * 60);

/// How often a waiting client looks at the launcher's process.
const TICK: Duration = Duration::from_millis(250);

pub fn run(db: &Path, action: Action, names: Vec<String>, json: bool, timeout: Duration) -> ExitCode {
    let verb = action.to_possible_value().map_or_else(String::new, |v| v.get_name().to_owned());
    let all = names.iter().any(|n| n == ALL);
    if all && names.len() > 1 {
        return usage(&format!("`{ALL}` already means every agent: give `{ALL}` or names, not both"));
    }
    if action == Action::Reload && !names.is_empty() {
        return usage("reload takes no agent names: it applies the whole config file");
    }
    let acts = matches!(action, Action::Start | Action::Stop | Action::Restart | Action::Run);
    // Names are checked against the running launcher's own list before anything is done, so a
    // typo changes nothing and the answer says which names there are.
    if (acts && !all) || (action == Action::Status && !names.is_empty()) {
        let roster = match ask(db, &Request { action: Action::Status, agents: Vec::new() }, timeout) {
            Ok(r) if r.ok => r,
            Ok(r) => return failed(&r.message, 1),
            Err((_, why)) if names.is_empty() => {
                return usage(&format!(
                    "`ctl {verb}` needs the agents' names, or `{ALL}` for every agent (cannot list them: {why})"
                ));
            }
            Err((code, why)) => return failed(&why, code),
        };
        let valid: Vec<&str> = roster.agents.iter().map(|a| a.name.as_str()).collect();
        let listed = if valid.is_empty() { "none".to_owned() } else { valid.join(", ") };
        if names.is_empty() {
            let example = valid.first().copied().unwrap_or("worker");
            return usage(&format!(
                "`ctl {verb}` needs the agents' names, or `{ALL}` for every agent; the agents: {listed}\n\
                 e.g. agentvisor-launcher ctl {verb} {example}"
            ));
        }
        let unknown: Vec<&str> = names.iter().map(String::as_str).filter(|n| !valid.contains(n)).collect();
        if !unknown.is_empty() {
            let quoted: Vec<String> = unknown.iter().map(|n| format!("{n:?}")).collect();
            return usage(&format!(
                "no agent {} in the running launcher (disabled agents have none); the agents: {listed}",
                quoted.join(", ")
            ));
        }
        if action == Action::Status {
            let mut r = roster;
            r.agents.retain(|a| names.contains(&a.name));
            return answer(action, &r, json);
        }
    }
    let agents = if all { Vec::new() } else { names };
    match ask(db, &Request { action, agents }, timeout) {
        Ok(r) => answer(action, &r, json),
        Err((code, why)) => failed(&why, code),
    }
}

/// A usage error: the command line asked for something that cannot be done as asked.
fn usage(why: &str) -> ExitCode {
    complain!("error: {why}");
    ExitCode::from(EXIT_USAGE)
}

fn failed(why: &str, code: u8) -> ExitCode {
    complain!("error: {why}");
    ExitCode::from(code)
}

fn answer(action: Action, response: &Response, json: bool) -> ExitCode {
    if json {
        say!("{}", serde_json::to_string(response).unwrap_or_default());
    } else {
        print(action, response);
    }
    if response.ok { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

/// One request and its answer; `Err` has the exit code and the reason.
fn ask(db: &Path, request: &Request, timeout: Duration) -> Result<Response, (u8, String)> {
    let socket = paths::socket_path(db);
    let mut stream = match connect(&socket, timeout) {
        Ok(s) => s,
        Err(e) => {
            return Err(match e.kind() {
                io::ErrorKind::NotFound => (
                    EXIT_NOT_RUNNING,
                    format!(
                        "no launcher is running on {} (no control socket {})",
                        db.display(),
                        socket.display()
                    ),
                ),
                io::ErrorKind::ConnectionRefused => (
                    EXIT_NOT_RUNNING,
                    format!(
                        "no launcher is running on {} (the control socket {} is left from one that is gone)",
                        db.display(),
                        socket.display()
                    ),
                ),
                io::ErrorKind::PermissionDenied => (
                    1,
                    format!(
                        "permission denied on {}: run ctl as the launcher's user or root (or in its group with `group = true`)",
                        socket.display()
                    ),
                ),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => (
                    1,
                    format!(
                        "the launcher did not accept the connection on {} within {} (its queue is full: is it stopped or stuck?)",
                        socket.display(),
                        humantime::format_duration(timeout)
                    ),
                ),
                _ => (1, format!("cannot connect to {}: {e}", socket.display())),
            });
        }
    };
    let server = trusted_server(&stream, db).map_err(|why| (1, why))?;
    let wait = Wait { action: request.action, timeout, server };
    exchange(&mut stream, request, &wait)
        .map_err(|e| (1, format!("talking to the launcher at {}: {e}", socket.display())))
}

/// Connects within `timeout`: a launcher that is stopped still has its socket, and once the
/// socket's queue is full a plain connect would wait forever (SO_SNDTIMEO bounds it).
fn connect(socket: &Path, timeout: Duration) -> io::Result<UnixStream> {
    let fd = nix::sys::socket::socket(AddressFamily::Unix, SockType::Stream, SockFlag::SOCK_CLOEXEC, None)?;
    let timeout = timeout.max(Duration::from_millis(1)); // zero would mean "forever"
    let secs = nix::libc::time_t::try_from(timeout.as_secs()).unwrap_or(nix::libc::time_t::MAX);
    let micros = nix::libc::suseconds_t::from(timeout.subsec_micros());
    setsockopt(&fd, sockopt::SendTimeout, &TimeVal::new(secs, micros))?;
    let addr = UnixAddr::new(socket)?;
    nix::sys::socket::connect(fd.as_raw_fd(), &addr)?;
    Ok(UnixStream::from(fd))
}

/// Who answers on the socket, from the kernel (SO_PEERCRED): believed only if it is root, this
/// user, or the owner of the database, which a launcher must be (it refuses to run on a
/// database of another user). Anyone able to create files beside the database could otherwise
/// plant a socket that answers "done" to every request. Returns the server's PID.
fn trusted_server(stream: &UnixStream, db: &Path) -> Result<Option<i32>, String> {
    let cred = getsockopt(stream, sockopt::PeerCredentials)
        .map_err(|e| format!("cannot learn who serves the control socket: {e}"))?;
    let uid = cred.uid();
    let owner = std::fs::symlink_metadata(db).ok().filter(|m| m.file_type().is_file()).map(|m| m.uid());
    let pid = (cred.pid() > 0).then_some(cred.pid());
    if uid == 0 || uid == nix::unistd::geteuid().as_raw() || Some(uid) == owner {
        return Ok(pid);
    }
    let server = crate::manager::Peer::new(uid, pid);
    let owner = owner
        .map_or_else(|| "none: it does not exist".to_owned(), |o| crate::manager::Peer::new(o, None).user);
    Err(format!(
        "the control socket {} is served by {server}, who is neither root, you, nor the owner of {} ({owner}): not this database's launcher; ignoring it",
        paths::socket_path(db).display(),
        db.display()
    ))
}

/// How long to wait for an answer: `status` answers from memory at once, so `timeout` bounds
/// it; the other actions may take the agents' stop timeouts, so they wait as long as the
/// launcher runs (up to [`MAX_ACTION_WAIT`]) and give up once it has been stopped or gone for
/// `timeout`.
struct Wait {
    action: Action,
    timeout: Duration,
    server: Option<i32>,
}

impl Wait {
    /// `Err` with the reason to give up after `waited`, the last `stopped_for` of it with the
    /// launcher stopped.
    fn give_up(&self, waited: Duration, stopped_for: Option<Duration>) -> Result<(), String> {
        let t = humantime::format_duration(self.timeout);
        let who =
            self.server.map_or_else(|| "the launcher".to_owned(), |p| format!("the launcher (PID {p})"));
        let expired = self.action == Action::Status && waited >= self.timeout;
        if stopped_for.is_some_and(|s| s >= self.timeout) || (expired && stopped_for.is_some()) {
            return Err(format!("{who} is stopped (SIGSTOP?) and has not answered for {t}"));
        }
        if expired {
            return Err(format!("no answer from {who} within {t}"));
        }
        if waited >= MAX_ACTION_WAIT {
            return Err(format!(
                "no answer from {who} within {}",
                humantime::format_duration(MAX_ACTION_WAIT)
            ));
        }
        Ok(())
    }
}

/// The launcher's process state from /proc: `None` when it is gone, else whether it is stopped.
fn stopped(pid: i32) -> Option<bool> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let state = stat.rsplit_once(')')?.1.split_whitespace().next()?.to_owned();
    match state.as_str() {
        "Z" | "X" => None,
        s => Some(s == "T" || s == "t"),
    }
}

fn exchange(stream: &mut UnixStream, request: &Request, wait: &Wait) -> io::Result<Response> {
    let mut line = serde_json::to_vec(request).map_err(io::Error::other)?;
    line.push(b'\n');
    stream.set_write_timeout(Some(wait.timeout))?;
    // A launcher that refuses the client answers without reading: the answer still explains.
    if let Err(e) = stream.write_all(&line)
        && e.kind() != io::ErrorKind::BrokenPipe
    {
        return Err(e);
    }
    stream.set_read_timeout(Some(TICK))?;
    let started = Instant::now();
    let mut stopped_since: Option<Instant> = None;
    let mut answer = Vec::new();
    let mut buf = [0u8; 8192];
    while !answer.contains(&b'\n') {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                match wait.server.map(stopped) {
                    Some(None) => {
                        return Err(io::Error::other("the launcher ended without answering"));
                    }
                    Some(Some(true)) => {
                        stopped_since.get_or_insert_with(Instant::now);
                    }
                    _ => stopped_since = None,
                }
                let stopped_for = stopped_since.map(|s| s.elapsed());
                wait.give_up(started.elapsed(), stopped_for)
                    .map_err(|m| io::Error::new(io::ErrorKind::TimedOut, m))?;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    if answer.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the launcher closed the connection without answering",
        ));
    }
    serde_json::from_slice(&answer).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

fn print(action: Action, r: &Response) {
    if !r.ok {
        complain!("error: {}", r.message);
        return;
    }
    if action != Action::Status {
        if !r.message.is_empty() {
            say!("{}", r.message);
        }
        return;
    }
    say!("{}", r.message);
    let rows: Vec<_> = r.agents.iter().map(AgentLine::row).collect();
    for line in agentvisor_shared::status_table::render(&rows, now_ms()) {
        say!("{line}");
    }
}

//! One thread per host: it runs the host's stream command, turns each line into an
//! [`Update`] on the app's channel, tells why the command ended, and starts it again with
//! backoff. A host that hangs or fails only ever holds up its own thread.

use super::config::Host;
use crate::commands::stream::{HEARTBEAT, STREAM_VERSION};
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use serde_json::Value;
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// No line for this long (three missed heartbeats) marks a host slow.
pub const SLOW: Duration = Duration::from_secs(3 * HEARTBEAT.as_secs());
/// No line for this long ends the connection and starts another.
pub const GIVE_UP: Duration = Duration::from_secs(12 * HEARTBEAT.as_secs());
/// Retry delays: doubling from the first to the last.
const BACKOFF_FIRST: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// How long a command whose output ended gets to exit by itself.
const EXIT_GRACE: Duration = Duration::from_secs(2);
/// The longest reason shown for a host: a row, not a log.
const REASON_CHARS: usize = 160;

/// What one host's thread reports.
#[derive(Debug, Clone, PartialEq)]
pub enum Update {
    /// A connection attempt started (the first is 1).
    Connecting { attempt: u32 },
    /// A status document (the whole stream line).
    Document(Box<Value>),
    /// A heartbeat: the connection is alive and nothing changed.
    Alive,
    /// No line for this long.
    Silent { for_s: u64 },
    /// The command ended (or could not start); the next attempt starts in `retry_in`.
    Down { reason: String, retry_in: Duration },
}

/// One host's update, tagged with the host's index in the fleet.
#[derive(Debug, Clone, PartialEq)]
pub struct HostMsg {
    pub host: usize,
    pub update: Update,
}

/// The children of every host's thread, so that quitting ends them all.
#[derive(Clone, Default)]
pub struct Children(Arc<Mutex<Vec<Option<Child>>>>);

impl Children {
    /// Kills every running host command; their threads then see the end of the stream.
    pub fn kill_all(&self) {
        let mut all = self.0.lock().unwrap_or_else(|p| p.into_inner());
        for mut child in all.iter_mut().filter_map(Option::take) {
            drop(child.stdin.take());
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn put(&self, host: usize, child: Option<Child>) -> Option<Child> {
        let mut all = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if all.len() <= host {
            all.resize_with(host + 1, || None);
        }
        std::mem::replace(&mut all[host], child)
    }
}

/// Starts the thread for each host; their messages go on `tx`, converted by `wrap`.
pub fn spawn_all<M: Send + 'static>(
    hosts: &[Host],
    tx: &Sender<M>,
    wrap: fn(HostMsg) -> M,
) -> std::io::Result<Children> {
    let children = Children::default();
    for (i, host) in hosts.iter().enumerate() {
        let (host, tx, children) = (host.clone(), tx.clone(), children.clone());
        std::thread::Builder::new().name(format!("host-{}", host.name)).spawn(move || {
            run(i, &host, &children, |update| tx.send(wrap(HostMsg { host: i, update })).is_ok())
        })?;
    }
    Ok(children)
}

/// Connects again and again until `send` says nobody listens any more.
fn run(index: usize, host: &Host, children: &Children, mut send: impl FnMut(Update) -> bool) {
    let mut backoff = BACKOFF_FIRST;
    for attempt in 1.. {
        if !send(Update::Connecting { attempt }) {
            return;
        }
        let (reason, got_document) = match connect(index, host, children, &mut send) {
            Session::Ended { reason, got_document } => (reason, got_document),
            Session::Abandoned => return,
        };
        if got_document {
            backoff = BACKOFF_FIRST;
        }
        tracing::info!(host = %host.name, %reason, "host connection ended");
        if !send(Update::Down { reason, retry_in: backoff }) {
            return;
        }
        std::thread::sleep(backoff);
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

enum Session {
    Ended {
        reason: String,
        got_document: bool,
    },
    /// The receiving side is gone: the viewer quits.
    Abandoned,
}

/// A running stream command: its lines, and the tail of its stderr once it ends.
struct Started {
    child: Child,
    lines: Receiver<String>,
    stderr: std::thread::JoinHandle<Vec<String>>,
}

fn start(host: &Host) -> Result<Started, String> {
    let mut cmd = host.stream_command();
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let program = cmd.get_program().to_string_lossy().into_owned();
    let mut child = cmd.spawn().map_err(|e| format!("cannot run {program}: {e}"))?;
    let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
        let _ = child.kill();
        let _ = child.wait();
        return Err("no pipes to the command".into());
    };
    let stderr = tail_of(stderr);
    let (lines_tx, lines) = crossbeam_channel::bounded::<String>(16);
    let reader = std::thread::Builder::new().name(format!("host-{}-out", host.name)).spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    if let Err(e) = reader {
        let _ = child.kill();
        let _ = child.wait();
        return Err(format!("cannot start a thread: {e}"));
    }
    Ok(Started { child, lines, stderr })
}

/// Ends a stream command: closing stdin asks the far side to stop, a kill makes sure of it.
/// Returns its exit code (if it exited rather than died by a signal) and its last stderr lines.
fn finish(mut child: Child, stderr: std::thread::JoinHandle<Vec<String>>) -> (Option<i32>, Vec<String>) {
    drop(child.stdin.take());
    // A command whose output ended is usually exiting: its own exit code (ssh passes the far
    // side's, 127 for a missing program) says more than the signal of a kill.
    let deadline = Instant::now() + EXIT_GRACE;
    while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = child.kill();
    let code = child.wait().ok().and_then(|s| s.code());
    (code, stderr.join().unwrap_or_default())
}

/// The first status document of `host`, for `status --host`: one look, then the command ends.
pub fn first_document(host: &Host, limit: Duration) -> Result<Value, String> {
    let Started { child, lines, stderr } = start(host)?;
    let deadline = Instant::now() + limit;
    let mut not_ours: Option<String> = None;
    let found = loop {
        match lines.recv_deadline(deadline) {
            Ok(line) => match parse(&line) {
                Ok(Update::Document(d)) => break Some(*d),
                Ok(_) => {}
                Err(LineError { reason, fatal: true }) => {
                    not_ours = Some(reason);
                    break None;
                }
                Err(LineError { reason, .. }) => {
                    not_ours.get_or_insert(reason);
                }
            },
            Err(RecvTimeoutError::Timeout) => {
                not_ours.get_or_insert(format!("no document within {} s", limit.as_secs()));
                break None;
            }
            Err(RecvTimeoutError::Disconnected) => break None,
        }
    };
    let (code, stderr) = finish(child, stderr);
    found.ok_or_else(|| classify(&stderr, code, not_ours))
}

fn connect(index: usize, host: &Host, children: &Children, send: &mut impl FnMut(Update) -> bool) -> Session {
    let Started { child, lines, stderr } = match start(host) {
        Ok(s) => s,
        Err(reason) => return Session::Ended { reason, got_document: false },
    };
    // The child's stdin stays open (in the Child) for as long as the connection is wanted.
    children.put(index, Some(child));
    let mut got_document = false;
    let mut not_ours: Option<String> = None;
    let mut last = Instant::now();
    let mut abandoned = false;
    loop {
        if abandoned {
            break;
        }
        match lines.recv_timeout(Duration::from_secs(HEARTBEAT.as_secs())) {
            Ok(line) => {
                last = Instant::now();
                let update = match parse(&line) {
                    Ok(u) => u,
                    // Waiting longer would not help: say why now, and retry with backoff.
                    Err(LineError { reason, fatal: true }) => {
                        not_ours = Some(reason);
                        break;
                    }
                    Err(LineError { reason, .. }) => {
                        not_ours.get_or_insert(reason);
                        continue;
                    }
                };
                got_document |= matches!(update, Update::Document(_));
                abandoned = !send(update);
            }
            Err(RecvTimeoutError::Timeout) => {
                let silent = last.elapsed();
                if silent >= GIVE_UP {
                    not_ours.get_or_insert(format!("no word for {} s: gave up", silent.as_secs()));
                    break;
                }
                if silent >= SLOW {
                    abandoned = !send(Update::Silent { for_s: silent.as_secs() });
                }
            }
            Err(RecvTimeoutError::Disconnected) => break,
        }
    }
    // Gone from the list when quitting killed it.
    let (code, stderr) = match children.put(index, None) {
        Some(child) => finish(child, stderr),
        None => (None, stderr.join().unwrap_or_default()),
    };
    if abandoned {
        return Session::Abandoned;
    }
    Session::Ended { reason: classify(&stderr, code, not_ours), got_document }
}

/// A line that is not a stream line of this version.
#[derive(Debug, Clone, PartialEq)]
pub struct LineError {
    pub reason: String,
    /// The whole stream is unreadable (a newer version), not just this line (a login banner).
    pub fatal: bool,
}

/// Reads a line of the stream: a document, a heartbeat, or why it is neither.
pub fn parse(line: &str) -> Result<Update, LineError> {
    let not_ours =
        || LineError { reason: format!("not an agentvisor stream: {}", clip(line.trim())), fatal: false };
    let v: Value = serde_json::from_str(line).map_err(|_| not_ours())?;
    let version = v["stream"].as_u64().ok_or_else(not_ours)?;
    if version > STREAM_VERSION {
        return Err(LineError {
            reason: format!(
                "the host's agentvisor-dashboard speaks stream version {version}, this one {STREAM_VERSION}: upgrade this one"
            ),
            fatal: true,
        });
    }
    Ok(match v["type"].as_str() {
        Some("status") => Update::Document(Box::new(v)),
        _ => Update::Alive,
    })
}

/// Why a host's command ended, in the words most useful on a row.
pub fn classify(stderr: &[String], code: Option<i32>, not_ours: Option<String>) -> String {
    let all = stderr.join("\n");
    if all.contains("unrecognized subcommand 'stream'") {
        return "the host's agentvisor-dashboard is older than the fleet view (no `stream`): upgrade it"
            .into();
    }
    let missing = all.contains("not found") || all.contains("No such file or directory");
    if code == Some(127) || (all.contains("agentvisor-dashboard") && missing) {
        return "agentvisor-dashboard not found on the host".into();
    }
    if let Some(reason) = not_ours {
        return reason;
    }
    if let Some(line) = stderr.iter().rev().find(|l| !l.trim().is_empty()) {
        return clip(line.trim());
    }
    match code {
        Some(c) => format!("the command exited with code {c}"),
        None => "the command ended".into(),
    }
}

fn clip(s: &str) -> String {
    if s.chars().count() <= REASON_CHARS {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(REASON_CHARS).collect();
    out.push('…');
    out
}

/// The last lines a stream wrote to stderr (ssh's and the far side's complaints).
fn tail_of(stderr: impl Read + Send + 'static) -> std::thread::JoinHandle<Vec<String>> {
    std::thread::spawn(move || {
        let mut tail: Vec<String> = Vec::new();
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if tail.len() == 5 {
                tail.remove(0);
            }
            tail.push(line);
        }
        tail
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_documents_heartbeats_or_refused() {
        let doc = r#"{"stream":1,"type":"status","fleet":{},"status":{}}"#;
        assert!(matches!(parse(doc), Ok(Update::Document(_))));
        assert_eq!(parse(r#"{"stream":1,"type":"heartbeat"}"#), Ok(Update::Alive));
        let banner = parse("Welcome to box1!").unwrap_err();
        assert!(banner.reason.starts_with("not an agentvisor stream: Welcome") && !banner.fatal);
        assert!(parse(r#"{"verdict":"ok"}"#).is_err());
        let newer = parse(r#"{"stream":7,"type":"status"}"#).unwrap_err();
        assert!(newer.reason.contains("version 7") && newer.fatal);
    }

    #[test]
    fn reasons_name_the_cause() {
        let lines = |s: &[&str]| s.iter().map(|l| l.to_string()).collect::<Vec<_>>();
        let refused = lines(&["ssh: connect to host box3 port 22: Connection refused"]);
        assert_eq!(classify(&refused, Some(255), None), refused[0]);
        let missing = lines(&["bash: line 1: agentvisor-dashboard: command not found"]);
        assert_eq!(classify(&missing, Some(127), None), "agentvisor-dashboard not found on the host");
        let old = lines(&["error: unrecognized subcommand 'stream'", "", "Usage: ..."]);
        assert!(classify(&old, Some(2), None).contains("older"));
        assert_eq!(
            classify(&[], Some(0), Some("not an agentvisor stream: x".into())),
            "not an agentvisor stream: x"
        );
        assert_eq!(classify(&[], Some(3), None), "the command exited with code 3");
    }

    /// A real child: a host whose command prints one document and fails is reported up,
    /// then down with its stderr line, then tried again.
    #[test]
    fn a_real_command_is_read_then_retried() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("host.sh");
        let doc = r#"{"stream":1,"type":"status","seq":1,"fleet":{},"status":{}}"#;
        std::fs::write(&script, format!("#!/bin/sh\necho '{doc}'\necho \"boom: $*\" >&2\nexit 1\n")).unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        let template = format!("{} {{args}}", script.display());
        let hosts = super::super::config::hosts(&["h".into()], None, Some(&template), None).unwrap();
        let (tx, rx) = crossbeam_channel::unbounded();
        let _children = spawn_all(&hosts, &tx, |m| m).unwrap();
        let next = || rx.recv_timeout(Duration::from_secs(30)).unwrap().update;
        assert_eq!(next(), Update::Connecting { attempt: 1 });
        assert!(matches!(next(), Update::Document(_)));
        assert_eq!(next(), Update::Down { reason: "boom: stream --json".into(), retry_in: BACKOFF_FIRST });
        assert_eq!(next(), Update::Connecting { attempt: 2 });
    }
}

//! One invocation of a hook: the event in the environment and as one JSON object on stdin,
//! its output read line by line (bounded), killed with its process group at its timeout.

use crate::config::hooks::HookConfig;
use crate::process::program;
use agentvisor_shared::NewEvent;
use agentvisor_shared::model::Stream;
use agentvisor_shared::time::now_ms;
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// Output lines kept per invocation; later ones are counted, not kept.
pub const MAX_LINES: usize = 200;
/// Longer lines are cut.
pub const MAX_LINE_BYTES: usize = 4096;

/// Everything an invocation needs, owned: it runs as a task of its own.
pub struct Invocation {
    pub hook: Arc<HookConfig>,
    pub event: NewEvent,
    /// The config file's directory: the hook's working directory.
    pub base: PathBuf,
    pub db: PathBuf,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Succeeded,
    /// It exited with a failure or was killed by a signal; or could not start.
    Failed(String),
    TimedOut,
}

#[derive(Debug)]
pub struct Finished {
    pub hook: String,
    pub agent: Option<String>,
    /// The event it ran for, in words: "crashed: exited with code 1".
    pub detail: String,
    pub pid: Option<i32>,
    pub outcome: Outcome,
    pub started_ms: i64,
    pub ended_ms: i64,
    pub exit_code: Option<i32>,
    pub exit_signal: Option<i32>,
    pub output: Vec<(Stream, i64, String)>,
    /// Lines beyond [`MAX_LINES`], not kept.
    pub dropped_lines: usize,
}

/// The environment a hook sees: the launcher's without what belongs to agents (a hook is not
/// an agent: with `AGENTVISOR_AGENT` the sampler would take it for one's orphan), then the
/// hook's `env`, then the event.
pub fn environment(inv: &Invocation) -> BTreeMap<OsString, OsString> {
    const AGENTS_ONLY: &[&str] =
        &["NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "AGENTVISOR_AGENT", "AGENTVISOR_NOTIFY_FD"];
    let mut env: BTreeMap<OsString, OsString> =
        std::env::vars_os().filter(|(k, _)| !AGENTS_ONLY.iter().any(|x| k == x)).collect();
    env.extend(inv.hook.env.iter().map(|(k, v)| (k.into(), v.into())));
    let e = &inv.event;
    let vars = [
        ("AGENTVISOR_EVENT_KIND", e.kind.as_str().to_owned()),
        ("AGENTVISOR_EVENT_AGENT", e.agent.clone().unwrap_or_default()),
        ("AGENTVISOR_EVENT_SEVERITY", e.severity.as_str().to_owned()),
        ("AGENTVISOR_EVENT_MESSAGE", e.message.clone()),
        ("AGENTVISOR_EVENT_TIME", rfc3339(e.ts_ms)),
        ("AGENTVISOR_EVENT_TS_MS", e.ts_ms.to_string()),
        ("AGENTVISOR_HOOK", inv.hook.name.clone()),
        ("AGENTVISOR_DB", inv.db.display().to_string()),
    ];
    for (k, v) in vars {
        // An environment value cannot hold a NUL; a message could (it is the agent's text).
        env.insert(k.into(), v.replace('\0', " ").into());
    }
    env
}

/// The JSON object on the hook's stdin: the same fields as the environment.
pub fn stdin_json(inv: &Invocation) -> String {
    let e = &inv.event;
    serde_json::json!({
        "kind": e.kind.as_str(),
        "agent": e.agent,
        "severity": e.severity.as_str(),
        "message": e.message,
        "time": rfc3339(e.ts_ms),
        "ts_ms": e.ts_ms,
        "hook": inv.hook.name,
        "db": inv.db.display().to_string(),
    })
    .to_string()
}

fn rfc3339(ts_ms: i64) -> String {
    let t = std::time::UNIX_EPOCH + Duration::from_millis(u64::try_from(ts_ms).unwrap_or(0));
    humantime::format_rfc3339_millis(t).to_string()
}

/// Runs the hook to its end or its timeout. Never fails: what went wrong is the outcome.
pub async fn run(inv: Invocation) -> Finished {
    let started_ms = now_ms();
    let mut done = Finished {
        hook: inv.hook.name.clone(),
        agent: inv.event.agent.clone(),
        detail: format!("{}: {}", inv.event.kind.as_str(), inv.event.message),
        pid: None,
        outcome: Outcome::Succeeded,
        started_ms,
        ended_ms: started_ms,
        exit_code: None,
        exit_signal: None,
        output: Vec::new(),
        dropped_lines: 0,
    };
    let env = environment(&inv);
    let started = program::start(&inv.hook.command, &inv.hook.args, &env, &inv.base);
    let program::Started { mut child, mut stdin, stdout, stderr } = match started {
        Ok(s) => s,
        Err(e) => {
            done.outcome =
                Outcome::Failed(format!("cannot start {}: {e}", program_name(&inv.hook, &inv.base)));
            return done;
        }
    };
    let json = stdin_json(&inv);
    let pid = child.pid();
    done.pid = Some(pid);
    let work = async {
        // A hook that does not read its stdin must not hold up the rest: the write is part of
        // the timed work, and a closed pipe (it exited first) is no failure.
        let feed = async move {
            let _ = stdin.write_all(json.as_bytes()).await;
            let _ = stdin.write_all(b"\n").await;
            drop(stdin);
        };
        let (_, out, err, status) = tokio::join!(
            feed,
            read_lines(stdout, Stream::Stdout),
            read_lines(stderr, Stream::Stderr),
            child.wait()
        );
        (out, err, status)
    };
    match tokio::time::timeout(inv.hook.timeout.get(), work).await {
        Ok((out, err, status)) => {
            done.dropped_lines = out.1 + err.1;
            done.output = merge(out.0, err.0);
            match status {
                Ok(st) if st.success() => done.exit_code = Some(0),
                Ok(st) => {
                    done.exit_code = st.code();
                    done.exit_signal = st.signal();
                    let how = match (st.code(), st.signal()) {
                        (Some(c), _) => format!("exited with code {c}"),
                        (None, Some(s)) => format!("was killed by signal {s}"),
                        _ => "ended abnormally".into(),
                    };
                    done.outcome = Outcome::Failed(how);
                }
                Err(e) => done.outcome = Outcome::Failed(format!("could not be waited for: {e}")),
            }
        }
        Err(_) => {
            crate::process::signal_group(pid, nix::sys::signal::Signal::SIGKILL);
            // SIGKILL makes this short; the pipes are closed by dropping their readers.
            if let Ok(st) = child.wait().await {
                done.exit_signal = st.signal();
            }
            done.outcome = Outcome::TimedOut;
        }
    }
    done.ended_ms = now_ms();
    done
}

fn program_name(hook: &HookConfig, base: &Path) -> String {
    crate::config::runnable::program(&hook.command, base).display().to_string()
}

type Lines = (Vec<(Stream, i64, String)>, usize);

/// Reads lines to the end of the stream, keeping the first [`MAX_LINES`] (each cut at
/// [`MAX_LINE_BYTES`]: a line without end holds no more memory than that) and counting the
/// rest.
async fn read_lines(from: tokio::net::unix::pipe::Receiver, stream: Stream) -> Lines {
    let mut reader = BufReader::new(from);
    let mut kept = Vec::new();
    let mut dropped = 0;
    let mut line: Vec<u8> = Vec::new();
    let mut pending = false;
    let end_line = |line: &mut Vec<u8>, kept: &mut Vec<(Stream, i64, String)>, dropped: &mut usize| {
        if kept.len() >= MAX_LINES {
            *dropped += 1;
        } else {
            let text = line.strip_suffix(b"\r").unwrap_or(line);
            kept.push((stream, now_ms(), String::from_utf8_lossy(text).into_owned()));
        }
        line.clear();
    };
    loop {
        let chunk = match reader.fill_buf().await {
            Ok([]) | Err(_) => break,
            Ok(chunk) => chunk,
        };
        let (part, newline) = match chunk.iter().position(|&b| b == b'\n') {
            Some(i) => (&chunk[..i], true),
            None => (chunk, false),
        };
        let room = MAX_LINE_BYTES.saturating_sub(line.len());
        line.extend_from_slice(&part[..part.len().min(room)]);
        let used = part.len() + usize::from(newline);
        reader.consume(used);
        pending = !newline;
        if newline {
            end_line(&mut line, &mut kept, &mut dropped);
        }
    }
    if pending && !line.is_empty() {
        end_line(&mut line, &mut kept, &mut dropped);
    }
    (kept, dropped)
}

/// stdout and stderr in the order they were read.
fn merge(mut a: Vec<(Stream, i64, String)>, b: Vec<(Stream, i64, String)>) -> Vec<(Stream, i64, String)> {
    a.extend(b);
    a.sort_by_key(|(_, ts, _)| *ts);
    a
}

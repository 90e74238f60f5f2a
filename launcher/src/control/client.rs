//! `agentvisor-launcher ctl ACTION [AGENT...]`: sends one request to the running launcher and
//! prints its answer. Exit codes: 0 done, 1 refused or failed, 3 no launcher is running.

use super::protocol::{Action, AgentLine, Request, Response};
use agentvisor_shared::paths;
use agentvisor_shared::time::now_ms;
use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::ExitCode;

/// Exit code when no launcher runs on the database.
pub const EXIT_NOT_RUNNING: u8 = 3;

pub fn run(db: &Path, action: Action, agents: Vec<String>, json: bool) -> ExitCode {
    let socket = paths::socket_path(db);
    let mut stream = match UnixStream::connect(&socket) {
        Ok(s) => s,
        Err(e) => {
            let (code, why) = match e.kind() {
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
                _ => (1, format!("cannot connect to {}: {e}", socket.display())),
            };
            eprintln!("error: {why}");
            return ExitCode::from(code);
        }
    };
    match exchange(&mut stream, &Request { action, agents }) {
        Ok(response) => {
            if json {
                println!("{}", serde_json::to_string(&response).unwrap_or_default());
            } else {
                print(action, &response);
            }
            if response.ok { ExitCode::SUCCESS } else { ExitCode::FAILURE }
        }
        Err(e) => {
            eprintln!("error: talking to the launcher at {}: {e}", socket.display());
            ExitCode::FAILURE
        }
    }
}

fn exchange(stream: &mut UnixStream, request: &Request) -> io::Result<Response> {
    let mut line = serde_json::to_vec(request).map_err(io::Error::other)?;
    line.push(b'\n');
    // A launcher that refuses the client answers without reading: the answer still explains.
    if let Err(e) = stream.write_all(&line)
        && e.kind() != io::ErrorKind::BrokenPipe
    {
        return Err(e);
    }
    // No read timeout: a stop waits for the agents' stop_timeout, which the launcher bounds.
    let mut answer = String::new();
    BufReader::new(stream).read_line(&mut answer)?;
    if answer.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the launcher closed the connection without answering",
        ));
    }
    serde_json::from_str(&answer).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

fn print(action: Action, r: &Response) {
    if !r.ok {
        eprintln!("error: {}", r.message);
        return;
    }
    if action != Action::Status {
        if !r.message.is_empty() {
            println!("{}", r.message);
        }
        return;
    }
    println!("{}", r.message);
    println!(
        "{:<24} {:<9} {:<10} {:>8} {:>8} {:>10}  LAST ERROR",
        "AGENT", "STATE", "HEALTH", "PID", "RESTARTS", "UPTIME"
    );
    for a in &r.agents {
        println!("{}", row(a, now_ms()));
    }
}

fn row(a: &AgentLine, now: i64) -> String {
    let pid = a.pid.map_or_else(|| "-".to_owned(), |p| p.to_string());
    let uptime = match (a.pid, a.started_ms) {
        (Some(_), Some(t)) => {
            let secs = u64::try_from((now - t).max(0) / 1000).unwrap_or(0);
            humantime::format_duration(std::time::Duration::from_secs(secs)).to_string()
        }
        _ => "-".to_owned(),
    };
    // Agents choose their error text: keep control characters off the operator's terminal.
    let error: String =
        a.last_error.as_deref().unwrap_or("").chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    format!(
        "{:<24} {:<9} {:<10} {:>8} {:>8} {:>10}  {error}",
        a.name, a.state, a.health, pid, a.restarts, uptime
    )
}

//! One-shot commands for scripts and SSH: they use the same reader and snapshot types as the
//! screens, print to stdout, and say what went wrong on stderr with a fixed exit code.

pub mod alerts;
pub mod events;
pub mod logs;
pub mod runs;
pub mod status;
pub mod stream;
pub mod tasks;

use crate::assess::Verdict;
use crate::data::watch::DbWatch;
use agentvisor_shared::Reader;
use agentvisor_shared::paths::Resolved;
use std::io::Write;
use std::time::Instant;

/// Opens the database or explains on stderr why it cannot; `Err` carries the exit code.
pub fn open(resolved: &Resolved) -> Result<Reader, u8> {
    Reader::open(&resolved.path).map_err(|e| {
        eprintln!("agentvisor-dashboard: {e} (path {})", resolved.source);
        Verdict::NoDatabase.code()
    })
}

/// Reports a read error on stderr and returns the exit code for "no readable database".
pub fn read_failed(e: &agentvisor_shared::StoreError) -> u8 {
    eprintln!("agentvisor-dashboard: {e}");
    Verdict::NoDatabase.code()
}

/// The agents' names in the database. When `agent` (a command's argument) is none of them,
/// says so on stderr with the valid names and `Err` carries the usage exit code, so a typo is
/// not mistaken for an agent with nothing recorded.
pub fn agent_names(reader: &Reader, agent: Option<&str>) -> Result<Vec<String>, u8> {
    let names: Vec<String> = match reader.snapshot() {
        Ok(s) => s.agents.into_iter().map(|a| a.name).collect(),
        Err(e) => return Err(read_failed(&e)),
    };
    if let Some(agent) = agent
        && !names.iter().any(|n| n == agent)
    {
        let listed = if names.is_empty() { "none yet".to_owned() } else { names.join(", ") };
        eprintln!(
            "agentvisor-dashboard: no agent named {agent:?} in {}; the agents: {listed}",
            reader.path().display()
        );
        return Err(agentvisor_shared::exit_code::EXIT_USAGE);
    }
    Ok(names)
}

/// Writes lines to stdout; `false` when stdout is gone (a closed pipe, as under `head`),
/// which ends the command quietly rather than with a panic. Control characters (from agents'
/// output, status and events) are always shown escaped: a pipe or file ends up on a terminal
/// too (`| less -R`, `cat`, a `tail` of a cron job's mail), and a carriage return in a file
/// would hide text before it.
pub fn print_lines(lines: impl IntoIterator<Item = String>) -> bool {
    let mut out = std::io::stdout().lock();
    for line in lines {
        let line = escape_controls(&line);
        if writeln!(out, "{line}").is_err() {
            return false;
        }
    }
    out.flush().is_ok()
}

/// `\u{1b}`-style escapes for control characters other than tab.
fn escape_controls(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_control() && c != '\t' {
            out.push_str(&c.escape_unicode().to_string());
        } else {
            out.push(c);
        }
    }
    out
}

/// Rows read per wake-up while following, so a flood is printed in bounded steps.
pub const FOLLOW_BATCH: i64 = 1_000;

/// Rendered rows of one follow step, of `read` rows read; a full batch means more rows arrived
/// than one step reads (only the newest are read), which is said rather than hidden.
pub fn follow_step(read: usize, rows: Vec<String>) -> Vec<String> {
    if read as i64 >= FOLLOW_BATCH {
        let mut out =
            vec![format!("… {FOLLOW_BATCH} or more new rows since the last read: only the newest are shown")];
        out.extend(rows);
        out
    } else {
        rows
    }
}

/// Calls `more` whenever the database changed (see [`DbWatch`]) until it
/// returns `Ok(false)` (stdout closed) or fails. Used by `logs -f` and `events -f`.
pub fn follow(reader: &Reader, mut more: impl FnMut(&Reader) -> agentvisor_shared::Result<bool>) -> u8 {
    let mut watch = DbWatch::new(reader.path());
    let mut version = reader.data_version().ok();
    let mut last = Instant::now();
    loop {
        watch.wait(last);
        last = Instant::now();
        let now = match reader.data_version() {
            Ok(v) => Some(v),
            Err(e) => return read_failed(&e),
        };
        watch.checked(now != version);
        if now == version {
            continue;
        }
        version = now;
        match more(reader) {
            Ok(true) => {}
            Ok(false) => return 0,
            Err(e) => return read_failed(&e),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_full_follow_batch_is_marked() {
        let rows = |n: usize| vec![String::from("x"); n];
        assert_eq!(super::follow_step(999, rows(999)).len(), 999);
        let full = super::follow_step(1_000, rows(1_000));
        assert_eq!(full.len(), 1_001);
        assert!(full[0].starts_with("… 1000 or more"));
    }

    #[test]
    fn controls_are_escaped() {
        assert_eq!(super::escape_controls("a\x1b[2Jb\tc"), "a\\u{1b}[2Jb\tc");
    }
}

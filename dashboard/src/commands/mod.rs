//! One-shot commands for scripts and SSH: they use the same reader and snapshot types as the
//! screens, print to stdout, and say what went wrong on stderr with a fixed exit code.

pub mod events;
pub mod logs;
pub mod status;

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

/// Writes lines to stdout; `false` when stdout is gone (a closed pipe, as under `head`),
/// which ends the command quietly rather than with a panic.
pub fn print_lines(lines: impl IntoIterator<Item = String>) -> bool {
    let mut out = std::io::stdout().lock();
    for line in lines {
        if writeln!(out, "{line}").is_err() {
            return false;
        }
    }
    out.flush().is_ok()
}

/// Calls `more` whenever the database changed (file events, with a fallback timer) until it
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

//! `ready_log_line`: the agent is ready when a line of its output (stdout or stderr) matches a
//! regular expression. Lines are matched as they are read, before the log rate limit drops
//! any, and only until the first match: after that a line costs nothing more.

use regex::Regex;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// One stream's watch for the run's ready line; the run's two streams share `matched`.
pub struct ReadyLine {
    regex: Arc<Regex>,
    matched: Arc<AtomicBool>,
    found: Arc<dyn Fn() + Send + Sync>,
}

impl ReadyLine {
    /// Watches for `regex` on both streams of a run; `found` is called once, at the first
    /// matching line on either.
    pub fn pair(regex: Arc<Regex>, found: Arc<dyn Fn() + Send + Sync>) -> (ReadyLine, ReadyLine) {
        let matched = Arc::new(AtomicBool::new(false));
        let one = ReadyLine { regex: regex.clone(), matched: matched.clone(), found: found.clone() };
        (one, ReadyLine { regex, matched, found })
    }

    /// Looks at one line; true once the watch is over (this line or the other stream's matched).
    pub fn seen(&self, line: &[u8]) -> bool {
        if self.matched.load(Ordering::Relaxed) {
            return true;
        }
        if !self.regex.is_match(&String::from_utf8_lossy(line)) {
            return false;
        }
        if !self.matched.swap(true, Ordering::Relaxed) {
            (self.found)();
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn the_first_match_on_either_stream_counts_once() {
        let calls = Arc::new(AtomicUsize::new(0));
        let c = calls.clone();
        let regex = Arc::new(Regex::new("listening on [0-9]+").unwrap());
        let (out, err) = ReadyLine::pair(
            regex,
            Arc::new(move || {
                c.fetch_add(1, Ordering::Relaxed);
            }),
        );
        assert!(!out.seen(b"starting"));
        assert!(err.seen(b"INFO listening on 8080"));
        assert!(out.seen(b"listening on 9090"), "the watch is over for both streams");
        assert_eq!(calls.load(Ordering::Relaxed), 1);
    }
}

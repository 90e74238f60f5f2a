//! The launcher's own log: tracing to stderr, filtered by `--log-level` or `RUST_LOG`, short
//! coloured lines on a terminal and logfmt elsewhere (see [`crate::log_format`]).
//!
//! The task that logs never writes to stderr itself: every supervisor runs on one thread, so a
//! stderr that blocks (a pipe nobody reads, a stalled journald) would stop them all, and one
//! that is closed must not make a write fail inside them (tracing-subscriber then reports the
//! failure with `eprintln!`, which panics). Lines go through a bounded queue to a thread of
//! their own. When the queue is full they are dropped and counted, and the count is written
//! once stderr takes lines again; after a broken pipe nothing more is written at all.

use crate::log_format;
use crossbeam_channel::{Receiver, Sender, TrySendError};
use std::io::{self, IsTerminal, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

/// Lines waiting for stderr, at most: a few seconds of a busy launcher at debug level.
const QUEUE: usize = 4096;
/// How long the log's thread gathers lines before it writes them.
const GATHER: Duration = Duration::from_millis(10);
/// How long the launcher waits at exit for queued lines to reach stderr.
const FLUSH_AT_EXIT: Duration = Duration::from_secs(2);

enum Msg {
    Line(Vec<u8>),
    /// Answered once every line queued before it has been written (or dropped).
    Flush(Sender<()>),
}

#[derive(Default)]
struct Counters {
    /// Lines dropped since the last note about it.
    dropped: AtomicU64,
    /// stderr is gone for good (EPIPE): lines are not even queued.
    closed: AtomicBool,
}

/// The [`MakeWriter`] given to tracing: each event's formatted line becomes one message.
#[derive(Clone)]
struct Queue {
    tx: Sender<Msg>,
    counters: Arc<Counters>,
}

struct Line<'a>(&'a Queue);

impl Write for Line<'_> {
    /// Queues the line and reports it written whatever happens to it: a failure here would
    /// only make tracing print an error to the same stderr.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let q = self.0;
        if q.counters.closed.load(Ordering::Relaxed) {
            return Ok(buf.len());
        }
        match q.tx.try_send(Msg::Line(buf.to_vec())) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                q.counters.dropped.fetch_add(1, Ordering::Relaxed);
            }
            // No writer thread (it could not be started): write directly, ignoring errors.
            Err(TrySendError::Disconnected(_)) => {
                let _ = io::stderr().write_all(buf);
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Queue {
    type Writer = Line<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        Line(self)
    }
}

/// https://no-color.org: any non-empty value turns colour off.
fn no_color_unset() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Keeps the log's thread; dropping it (at the end of `main`) waits a bounded time for the
/// queued lines to be written.
pub struct Guard {
    queue: Option<Queue>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        let Some(q) = self.queue.take() else { return };
        if q.counters.closed.load(Ordering::Relaxed) {
            return;
        }
        let deadline = Instant::now() + FLUSH_AT_EXIT;
        let (done, written) = crossbeam_channel::bounded(1);
        if q.tx.send_deadline(Msg::Flush(done), deadline).is_ok() {
            let _ = written.recv_deadline(deadline);
        }
    }
}

/// `follow_output`: the agents' output lines are logged too (see [`crate::log_format`]).
pub fn init(level: Option<&str>, follow_output: bool) -> Guard {
    let filter = match level {
        Some(l) => EnvFilter::try_new(l),
        None => EnvFilter::try_from_default_env().or_else(|_| EnvFilter::try_new("info")),
    };
    let (mut filter, bad) = match filter {
        Ok(f) => (f, None),
        Err(e) => (EnvFilter::new("info"), Some(e)),
    };
    if follow_output && let Ok(d) = format!("{}=info", log_format::OUTPUT_TARGET).parse() {
        // Asked for on the command line: whatever level the launcher's own lines are at.
        filter = filter.add_directive(d);
    }
    log_format::set_follow_output(follow_output);
    let terminal = io::stderr().is_terminal();
    let (tx, rx) = crossbeam_channel::bounded(QUEUE);
    let queue = Queue { tx, counters: Arc::default() };
    let counters = queue.counters.clone();
    // Without the thread the queue's receiver is gone and lines are written directly.
    let _ = std::thread::Builder::new().name("log".into()).spawn(move || drain(&rx, &counters, io::stderr()));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(queue.clone())
        .log_internal_errors(false)
        .event_format(log_format::Format { terminal, ansi: terminal && no_color_unset() })
        .init();
    if let Some(e) = bad {
        tracing::warn!("ignoring the log filter: {e}");
    }
    // A panic is a bug to report like any error, through the queue: the default hook writes to
    // stderr from the panicking thread, which may block it.
    std::panic::set_hook(Box::new(|info| {
        let backtrace = std::backtrace::Backtrace::capture();
        match backtrace.status() {
            std::backtrace::BacktraceStatus::Captured => tracing::error!("{info}\n{backtrace}"),
            _ => tracing::error!("{info}"),
        }
    }));
    Guard { queue: Some(queue) }
}

/// The log's thread: writes queued lines to `out` until every sender is gone. Lines come in
/// bursts (agents starting, a crash and its restart): it gathers them for [`GATHER`] and writes
/// them at once, and while it gathers, a task that logs wakes nobody. Lines are dropped only
/// while the queue is full, so the note counting them follows the lines that were queued.
fn drain(rx: &Receiver<Msg>, counters: &Counters, mut out: impl Write) {
    let mut batch = Vec::new();
    let mut flushed = Vec::new();
    while let Ok(first) = rx.recv() {
        std::thread::sleep(GATHER);
        for msg in std::iter::once(first).chain(rx.try_iter()) {
            match msg {
                Msg::Line(line) => batch.extend_from_slice(&line),
                Msg::Flush(done) => flushed.push(done),
            }
        }
        if !counters.closed.load(Ordering::Relaxed) {
            let dropped = counters.dropped.swap(0, Ordering::Relaxed);
            if dropped > 0 {
                let note = format!("[agentvisor] {dropped} log lines dropped: stderr was not keeping up\n");
                batch.extend_from_slice(note.as_bytes());
            }
            match out.write_all(&batch) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
                    counters.closed.store(true, Ordering::Relaxed)
                }
                // Full for now (a non-blocking descriptor), or failing: these lines are lost.
                Err(_) => {
                    let lines = batch.iter().filter(|b| **b == b'\n').count() as u64;
                    counters.dropped.fetch_add(lines, Ordering::Relaxed);
                }
            }
        }
        batch.clear();
        for done in flushed.drain(..) {
            let _ = done.send(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sink whose every write fails with this error.
    struct Failing(io::ErrorKind);

    impl Write for Failing {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::Error::from(self.0))
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// A queue with three lines in it, its senders gone so that `drain` returns.
    fn three_lines(capacity: usize) -> (Arc<Counters>, Receiver<Msg>) {
        let (tx, rx) = crossbeam_channel::bounded(capacity);
        let q = Queue { tx, counters: Arc::default() };
        for i in 0..3 {
            q.make_writer().write_all(format!("line {i}\n").as_bytes()).unwrap();
        }
        (q.counters, rx)
    }

    #[test]
    fn a_full_queue_drops_and_counts_and_never_blocks() {
        let (counters, rx) = three_lines(2);
        assert_eq!(counters.dropped.load(Ordering::Relaxed), 1);
        let mut out = Vec::new();
        drain(&rx, &counters, &mut out);
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text, "line 0\nline 1\n[agentvisor] 1 log lines dropped: stderr was not keeping up\n");
    }

    #[test]
    fn a_failed_write_is_counted_and_a_broken_pipe_stops_writing_for_good() {
        let (counters, rx) = three_lines(8);
        drain(&rx, &counters, Failing(io::ErrorKind::WouldBlock));
        assert_eq!(counters.dropped.load(Ordering::Relaxed), 3);
        assert!(!counters.closed.load(Ordering::Relaxed));

        let (counters, rx) = three_lines(8);
        drain(&rx, &counters, Failing(io::ErrorKind::BrokenPipe));
        assert!(counters.closed.load(Ordering::Relaxed));
        // Later lines are not even queued.
        let (tx, rx) = crossbeam_channel::bounded(8);
        let q = Queue { tx, counters };
        q.make_writer().write_all(b"line 3\n").unwrap();
        assert!(rx.is_empty());
    }
}

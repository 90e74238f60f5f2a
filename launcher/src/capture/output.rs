//! Captures an agent's stdout or stderr into the log table, line by line. Memory stays
//! bounded whatever the agent writes: lines are cut at `log_line_bytes`, at most `log_rate`
//! lines per second are kept (the rest are counted and reported by a marker line), batches
//! are handed to the writer with `offer`, which drops rather than waits when the database is
//! behind, and a flooding agent is read more slowly, so it is slowed instead of the launcher.

use crate::capture::lines::BoundedLines;
use crate::capture::ready_line::ReadyLine;
use agentvisor_shared::model::Stream;
use agentvisor_shared::time::now_ms;
use agentvisor_shared::{NewLogLine, WriteOp, WriterHandle};
use std::time::{Duration, Instant};
use tokio::io::AsyncRead;
use tokio::task::JoinHandle;

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub line_bytes: usize,
    pub rate: u32,
}

/// Lines handed to the writer at once, at most.
const BATCH: usize = 256;
const FLUSH_EVERY: Duration = Duration::from_millis(100);
/// While dropping, pause this long after every `PAUSE_EVERY` dropped lines: the agent's
/// writes then block on the full pipe, which bounds the launcher's CPU for a flood.
const PAUSE: Duration = Duration::from_millis(10);
const PAUSE_EVERY: u64 = 64;
pub const CUT_MARKER: &str = " …[cut]";

pub fn capture<R>(
    agent: String,
    stream: Stream,
    reader: R,
    writer: WriterHandle,
    limits: Limits,
    mut ready_line: Option<ReadyLine>,
) -> JoinHandle<()>
where
    R: AsyncRead + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        let mut lines = BoundedLines::new(reader, limits.line_bytes);
        let mut sink = Sink { agent, stream, writer, batch: Vec::new(), dropped: 0 };
        let mut bucket = Bucket::new(limits.rate);
        // Armed only while lines wait: an agent that prints nothing costs no wake-ups.
        let mut flush_at: Option<tokio::time::Instant> = None;
        // Stands in for an unarmed deadline; that branch is disabled then and never polled.
        let never = tokio::time::Instant::now() + Duration::from_secs(86_400 * 365);
        loop {
            tokio::select! {
                line = lines.next_line() => {
                    let Some(line) = line else { break };
                    if ready_line.as_ref().is_some_and(|w| w.seen(line.bytes)) {
                        ready_line = None;
                    }
                    if bucket.take() {
                        let mut text = String::from_utf8_lossy(line.bytes).into_owned();
                        if line.cut {
                            text.push_str(CUT_MARKER);
                        }
                        sink.push(text);
                    } else {
                        sink.dropped += 1;
                        if sink.dropped.is_multiple_of(PAUSE_EVERY) {
                            tokio::time::sleep(PAUSE).await;
                        }
                    }
                    if flush_at.is_none() && sink.pending() {
                        flush_at = Some(tokio::time::Instant::now() + FLUSH_EVERY);
                    }
                }
                _ = tokio::time::sleep_until(flush_at.unwrap_or(never)), if flush_at.is_some() => {
                    sink.flush();
                    flush_at = sink.pending().then(|| tokio::time::Instant::now() + FLUSH_EVERY);
                }
            }
        }
        sink.flush();
    })
}

struct Sink {
    agent: String,
    stream: Stream,
    writer: WriterHandle,
    batch: Vec<NewLogLine>,
    dropped: u64,
}

impl Sink {
    fn push(&mut self, line: String) {
        crate::log_format::agent_output(&self.agent, self.stream, &line);
        self.batch.push(NewLogLine { agent: self.agent.clone(), stream: self.stream, ts_ms: now_ms(), line });
        if self.batch.len() >= BATCH {
            self.flush();
        }
    }

    fn pending(&self) -> bool {
        !self.batch.is_empty() || self.dropped > 0
    }

    fn flush(&mut self) {
        if self.dropped > 0 {
            let n = std::mem::take(&mut self.dropped);
            let line = format!("[agentvisor] {n} lines dropped: over log_rate or the database is behind");
            self.batch.push(NewLogLine {
                agent: self.agent.clone(),
                stream: self.stream,
                ts_ms: now_ms(),
                line,
            });
        }
        if self.batch.is_empty() {
            return;
        }
        let batch = std::mem::take(&mut self.batch);
        let n = batch.len() as u64;
        if !self.writer.offer(WriteOp::Logs(batch)) {
            self.dropped += n;
        }
    }
}

/// A token bucket: `rate` lines per second, with a burst of one second's worth.
struct Bucket {
    rate: f64,
    tokens: f64,
    last: Instant,
}

impl Bucket {
    fn new(rate: u32) -> Bucket {
        let rate = f64::from(rate.max(1));
        Bucket { rate, tokens: rate, last: Instant::now() }
    }

    fn take(&mut self) -> bool {
        let now = Instant::now();
        self.tokens = (self.tokens + now.duration_since(self.last).as_secs_f64() * self.rate).min(self.rate);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

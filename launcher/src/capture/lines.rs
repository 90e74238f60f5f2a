//! Reads newline-terminated lines from a pipe with a bound on the line length, so a program
//! that writes without newlines cannot make the launcher buffer without limit. A line longer
//! than the bound is returned cut (marked as such) and the rest of it is skipped.

use tokio::io::{AsyncRead, AsyncReadExt};

/// A line, borrowed from the reader's buffer until the next read: a thousand agents' heartbeat
/// lines are parsed where they were read, not copied into an allocation each.
pub struct Line<'a> {
    pub bytes: &'a [u8],
    /// The line was longer than the bound and was cut.
    pub cut: bool,
}

pub struct BoundedLines<R> {
    reader: R,
    max: usize,
    buf: Vec<u8>,
    /// Bytes of `buf` already handed out as lines (or skipped); removed before the next read.
    start: usize,
    /// Bytes of `buf` already searched for a newline (from the start of `buf`).
    scanned: usize,
    /// Skipping the remainder of a line that was cut.
    discarding: bool,
    eof: bool,
    /// Reads land here first, so that a cancelled read leaves `buf` untouched: `next_line`
    /// is cancel-safe and can be used in `select!`.
    chunk: Box<[u8]>,
}

/// Three readers per agent (stdout, stderr, notify pipe) hold one chunk each for as long as
/// the agent runs: at a thousand agents every KiB here is 3 MB of the launcher's memory.
const CHUNK: usize = 1024;

impl<R: AsyncRead + Unpin> BoundedLines<R> {
    pub fn new(reader: R, max: usize) -> Self {
        BoundedLines {
            reader,
            max: max.max(1),
            buf: Vec::new(),
            start: 0,
            scanned: 0,
            discarding: false,
            eof: false,
            chunk: vec![0; CHUNK].into_boxed_slice(),
        }
    }

    /// The next line without its newline; `None` at the end of the stream (or on a read
    /// error, which for a pipe means the same). A last line without a newline is returned.
    pub async fn next_line(&mut self) -> Option<Line<'_>> {
        loop {
            if let Some(found) = self.next_buffered() {
                return Some(self.line(found));
            }
            if self.eof {
                let rest = self.buf.len() - self.start;
                if rest == 0 || std::mem::take(&mut self.discarding) {
                    return None;
                }
                let begin = std::mem::replace(&mut self.start, self.buf.len());
                return Some(self.line((begin, rest, false)));
            }
            // What was handed out is no longer borrowed: drop it before reading more.
            self.buf.drain(..self.start);
            self.scanned -= self.start;
            self.start = 0;
            match self.reader.read(&mut self.chunk).await {
                Ok(0) | Err(_) => self.eof = true,
                Ok(n) => self.buf.extend_from_slice(&self.chunk[..n]),
            }
        }
    }

    /// The next line if it is already complete in what was read, without reading more: what
    /// a program wrote at once can be handled at once.
    pub fn buffered_line(&mut self) -> Option<Line<'_>> {
        self.next_buffered().map(|found| self.line(found))
    }

    fn line(&self, (begin, len, cut): (usize, usize, bool)) -> Line<'_> {
        Line { bytes: &self.buf[begin..begin + len], cut }
    }

    /// Finds the next complete (or cut) line in `buf` and consumes it: its start, length and
    /// whether it was cut. Positions rather than a slice, so that the caller may read more
    /// when there is none.
    fn next_buffered(&mut self) -> Option<(usize, usize, bool)> {
        loop {
            if let Some(pos) = self.buf[self.scanned..].iter().position(|&b| b == b'\n') {
                let end = self.scanned + pos;
                let begin = std::mem::replace(&mut self.start, end + 1);
                self.scanned = self.start;
                if std::mem::take(&mut self.discarding) {
                    continue;
                }
                let len = end - begin;
                return Some((begin, len.min(self.max), len > self.max));
            }
            self.scanned = self.buf.len();
            if self.buf.len() - self.start >= self.max {
                let begin = self.start;
                self.start += self.max;
                if self.discarding {
                    continue;
                }
                self.discarding = true;
                return Some((begin, self.max, true));
            }
            return None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn all(input: impl AsyncRead + Unpin, max: usize) -> Vec<(String, bool)> {
        let mut r = BoundedLines::new(input, max);
        let mut out = Vec::new();
        while let Some(l) = r.next_line().await {
            out.push((String::from_utf8_lossy(l.bytes).into_owned(), l.cut));
        }
        out
    }

    #[tokio::test]
    async fn splits_and_bounds() {
        assert_eq!(
            all(&b"a\nbb\n\nlast"[..], 10).await,
            vec![("a".into(), false), ("bb".into(), false), ("".into(), false), ("last".into(), false)]
        );
        let long = [b"x".repeat(50), b"\nok\n".to_vec(), b"y".repeat(25)].concat();
        assert_eq!(
            all(&long[..], 10).await,
            vec![("x".repeat(10), true), ("ok".into(), false), ("y".repeat(10), true)]
        );
    }

    /// Lines and the skipped rest of a cut line that span several reads.
    #[tokio::test]
    async fn lines_across_reads() {
        let reader = (&b"ab"[..])
            .chain(&b"c\nxxxxxxxx"[..])
            .chain(&b"xxxxxxxxxxxx"[..])
            .chain(&b"xx\nd"[..])
            .chain(&b"e\n"[..]);
        assert_eq!(
            all(reader, 5).await,
            vec![("abc".into(), false), ("xxxxx".into(), true), ("de".into(), false)]
        );
    }
}

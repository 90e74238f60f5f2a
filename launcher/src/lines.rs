//! Reads newline-terminated lines from a pipe with a bound on the line length, so a program
//! that writes without newlines cannot make the launcher buffer without limit. A line longer
//! than the bound is returned cut (marked as such) and the rest of it is skipped.

use tokio::io::{AsyncRead, AsyncReadExt};

pub struct Line {
    pub bytes: Vec<u8>,
    /// The line was longer than the bound and was cut.
    pub cut: bool,
}

pub struct BoundedLines<R> {
    reader: R,
    max: usize,
    buf: Vec<u8>,
    /// Bytes of `buf` already searched for a newline.
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
            scanned: 0,
            discarding: false,
            eof: false,
            chunk: vec![0; CHUNK].into_boxed_slice(),
        }
    }

    /// The next line without its newline; `None` at the end of the stream (or on a read
    /// error, which for a pipe means the same). A last line without a newline is returned.
    pub async fn next_line(&mut self) -> Option<Line> {
        loop {
            if let Some(line) = self.buffered_line() {
                return Some(line);
            }
            if self.eof {
                if self.buf.is_empty() || std::mem::take(&mut self.discarding) {
                    return None;
                }
                self.scanned = 0;
                return Some(Line { bytes: std::mem::take(&mut self.buf), cut: false });
            }
            match self.reader.read(&mut self.chunk).await {
                Ok(0) | Err(_) => self.eof = true,
                Ok(n) => self.buf.extend_from_slice(&self.chunk[..n]),
            }
        }
    }

    /// The next line if it is already complete in what was read, without reading more: what
    /// a program wrote at once can be handled at once.
    pub fn buffered_line(&mut self) -> Option<Line> {
        loop {
            if let Some(pos) = self.buf[self.scanned..].iter().position(|&b| b == b'\n') {
                let end = self.scanned + pos;
                let mut bytes: Vec<u8> = self.buf.drain(..=end).collect();
                bytes.pop();
                self.scanned = 0;
                if std::mem::take(&mut self.discarding) {
                    continue;
                }
                let cut = bytes.len() > self.max;
                bytes.truncate(self.max);
                return Some(Line { bytes, cut });
            }
            self.scanned = self.buf.len();
            if self.buf.len() >= self.max {
                let rest = self.buf.split_off(self.max);
                let bytes = std::mem::replace(&mut self.buf, rest);
                self.scanned = 0;
                if self.discarding {
                    continue;
                }
                self.discarding = true;
                return Some(Line { bytes, cut: true });
            }
            return None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn all(input: &[u8], max: usize) -> Vec<(String, bool)> {
        let mut r = BoundedLines::new(input, max);
        let mut out = Vec::new();
        while let Some(l) = r.next_line().await {
            out.push((String::from_utf8_lossy(&l.bytes).into_owned(), l.cut));
        }
        out
    }

    #[tokio::test]
    async fn splits_and_bounds() {
        assert_eq!(
            all(b"a\nbb\n\nlast", 10).await,
            vec![("a".into(), false), ("bb".into(), false), ("".into(), false), ("last".into(), false)]
        );
        let long = [b"x".repeat(50), b"\nok\n".to_vec(), b"y".repeat(25)].concat();
        assert_eq!(
            all(&long, 10).await,
            vec![("x".repeat(10), true), ("ok".into(), false), ("y".repeat(10), true)]
        );
    }
}

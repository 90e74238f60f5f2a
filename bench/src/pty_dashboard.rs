//! The real dashboard on a pseudo-terminal of its own, as a user in a terminal runs it: what it
//! writes is read and thrown away, and the frames it draws are counted.

use anyhow::{Context, Result};
use nix::pty::{OpenptyResult, Winsize, openpty};
use std::fs::File;
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// ratatui hides the cursor after every frame it draws (the dashboard shows none): counting
/// this sequence counts frames.
const FRAME_END: &[u8] = b"\x1b[?25l";
/// The start of the output is kept, to see what the first frames showed.
const KEPT: usize = 256 << 10;

pub struct PtyDashboard {
    child: Child,
    master: File,
    output: Arc<Output>,
    drain: Option<JoinHandle<()>>,
}

#[derive(Default)]
struct Output {
    start: Mutex<Vec<u8>>,
    frames: AtomicU64,
}

impl PtyDashboard {
    pub fn start(bin: &Path, db: &Path, log: &Path, cols: u16, rows: u16) -> Result<PtyDashboard> {
        let size = Winsize { ws_row: rows, ws_col: cols, ws_xpixel: 0, ws_ypixel: 0 };
        let OpenptyResult { master, slave } = openpty(Some(&size), None).context("opening a pty")?;
        let stdio = || slave.try_clone().map(Stdio::from).context("sharing the pty");
        let child = Command::new(bin)
            .arg("--db")
            .arg(db)
            .arg("--log-file")
            .arg(log)
            .env("TERM", "xterm-256color")
            .stdin(stdio()?)
            .stdout(stdio()?)
            .stderr(stdio()?)
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        // Only the dashboard holds the slave now, so reading the master ends when it exits.
        drop(slave);
        let master = File::from(master);
        let output = Arc::new(Output::default());
        let drain = {
            let (mut reader, output) =
                (master.try_clone().context("sharing the pty's master")?, output.clone());
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 64 << 10];
                // A frame-end sequence split between two reads is still counted once.
                let mut tail: Vec<u8> = Vec::new();
                while let Ok(n) = reader.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    let mut start = output.start.lock().unwrap_or_else(|e| e.into_inner());
                    let room = KEPT.saturating_sub(start.len());
                    start.extend_from_slice(&buf[..n.min(room)]);
                    drop(start);
                    tail.extend_from_slice(&buf[..n]);
                    let found = tail.windows(FRAME_END.len()).filter(|w| *w == FRAME_END).count();
                    output.frames.fetch_add(found as u64, Ordering::Relaxed);
                    let keep = tail.len().min(FRAME_END.len() - 1);
                    tail.drain(..tail.len() - keep);
                }
            })
        };
        Ok(PtyDashboard { child, master, output, drain: Some(drain) })
    }

    pub fn pid(&self) -> i32 {
        i32::try_from(self.child.id()).unwrap_or(i32::MAX)
    }

    /// Frames drawn so far.
    pub fn frames(&self) -> u64 {
        self.output.frames.load(Ordering::Relaxed)
    }

    /// Waits until `text` has been drawn.
    pub fn wait_drawn(&mut self, text: &str, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if self.drawn(text) {
                return Ok(());
            }
            if let Some(status) = self.child.try_wait().context("checking on the dashboard")? {
                let seen = self.output.start.lock().unwrap_or_else(|e| e.into_inner());
                let seen = String::from_utf8_lossy(&seen);
                anyhow::bail!("the dashboard exited ({status}) before drawing {text:?}: {seen:?}");
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "the dashboard did not draw {text:?} within {timeout:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn drawn(&self, text: &str) -> bool {
        let start = self.output.start.lock().unwrap_or_else(|e| e.into_inner());
        start.windows(text.len()).any(|w| w == text.as_bytes())
    }

    /// Presses `q` and waits for the dashboard to exit.
    pub fn quit(mut self, timeout: Duration) -> Result<()> {
        self.master.write_all(b"q").context("pressing q")?;
        let deadline = Instant::now() + timeout;
        while self.child.try_wait().context("waiting for the dashboard")?.is_none() {
            anyhow::ensure!(Instant::now() < deadline, "the dashboard did not quit within {timeout:?}");
            std::thread::sleep(Duration::from_millis(10));
        }
        if let Some(drain) = self.drain.take() {
            let _ = drain.join();
        }
        Ok(())
    }
}

impl Drop for PtyDashboard {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

//! The real dashboard binary in a real pseudo-terminal: what it draws (parsed with vt100),
//! how it reacts to keys, and that it leaves the terminal as it found it.

use crate::common::{LIMIT, Sandbox, dashboard_bin, wait_until};
use crate::dashboard_fixture::{FakeLauncher, healthy_fleet, healthy_sandbox, status};
use agentvisor_shared::WriteOp;
use agentvisor_shared::model::{AgentState, Health};
use nix::pty::{OpenptyResult, Winsize, openpty};
use nix::sys::termios::{LocalFlags, tcgetattr};
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The dashboard running on the slave side of a pty; the screen is what a terminal would show.
pub struct Tui {
    child: Child,
    master: std::fs::File,
    slave: OwnedFd,
    screen: Arc<Mutex<vt100::Parser>>,
}

impl Tui {
    pub fn start(sb: &Sandbox, db: &Path, cols: u16, rows: u16) -> Tui {
        Self::start_with(sb, db, cols, rows, &[], &[])
    }

    pub fn start_with(
        sb: &Sandbox,
        db: &Path,
        cols: u16,
        rows: u16,
        env: &[(&str, &str)],
        args: &[&str],
    ) -> Tui {
        Self::launch(sb.command(dashboard_bin()), sb, db, (cols, rows), env, args)
    }

    /// The dashboard as a user starts it, at the lowest priority.
    pub fn start_at_default_priority(sb: &Sandbox, db: &Path, cols: u16, rows: u16) -> Tui {
        Self::launch(sb.command_as_users_run_it(dashboard_bin()), sb, db, (cols, rows), &[], &[])
    }

    fn launch(
        mut cmd: Command,
        sb: &Sandbox,
        db: &Path,
        (cols, rows): (u16, u16),
        env: &[(&str, &str)],
        args: &[&str],
    ) -> Tui {
        let size = Winsize { ws_row: rows, ws_col: cols, ws_xpixel: 0, ws_ypixel: 0 };
        let OpenptyResult { master, slave } = openpty(Some(&size), None).unwrap();
        cmd.args([
            "--db",
            db.to_str().unwrap(),
            "--log-file",
            sb.path().join("dashboard.log").to_str().unwrap(),
        ])
        .args(args)
        .env("TERM", "xterm-256color")
        .env_remove("NO_COLOR")
        .envs(env.iter().copied())
        .stdin(Stdio::from(slave.try_clone().unwrap()))
        .stdout(Stdio::from(slave.try_clone().unwrap()))
        .stderr(Stdio::from(slave.try_clone().unwrap()));
        let child = cmd.spawn().unwrap();
        let master = std::fs::File::from(master);
        let screen = Arc::new(Mutex::new(vt100::Parser::new(rows, cols, 0)));
        let mut reader = master.try_clone().unwrap();
        let parser = screen.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            // Ends when the last slave descriptor closes (EIO) or the test drops the master.
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                parser.lock().unwrap().process(&buf[..n]);
            }
        });
        Tui { child, master, slave, screen }
    }

    pub fn contents(&self) -> String {
        self.screen.lock().unwrap().screen().contents()
    }

    pub fn wait_for(&self, what: &str, limit: Duration) -> Duration {
        let started = Instant::now();
        wait_until(limit, &format!("{what:?} on screen"), || self.contents().contains(what).then_some(()));
        started.elapsed()
    }

    pub fn keys(&mut self, keys: &str) {
        self.master.write_all(keys.as_bytes()).unwrap();
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        let child = &mut self.child;
        wait_until(limit, "dashboard exit", || child.try_wait().ok().flatten())
    }

    /// Whether the terminal is back in cooked mode (line editing and echo on).
    pub fn cooked(&self) -> bool {
        let t = tcgetattr(&self.slave).unwrap();
        t.local_flags.contains(LocalFlags::ICANON | LocalFlags::ECHO)
    }

    /// Whether any cell on screen has a colour (foreground or background).
    pub fn coloured(&self) -> bool {
        let parser = self.screen.lock().unwrap();
        let screen = parser.screen();
        let (rows, cols) = screen.size();
        (0..rows).flat_map(|r| (0..cols).map(move |c| (r, c))).any(|(r, c)| {
            screen.cell(r, c).is_some_and(|cell| {
                cell.fgcolor() != vt100::Color::Default || cell.bgcolor() != vt100::Color::Default
            })
        })
    }

    /// Whether the first occurrence of `text` on screen is drawn in reverse video.
    pub fn reversed(&self, text: &str) -> bool {
        let parser = self.screen.lock().unwrap();
        let screen = parser.screen();
        let found = screen.rows(0, screen.size().1).enumerate().find_map(|(r, line)| {
            line.find(text).map(|byte| (r as u16, line[..byte].chars().count() as u16))
        });
        found.and_then(|(r, c)| screen.cell(r, c)).is_some_and(|cell| cell.inverse())
    }

    pub fn alternate_screen(&self) -> bool {
        self.screen.lock().unwrap().screen().alternate_screen()
    }
}

impl Drop for Tui {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[test]
fn shows_the_agents_follows_commits_and_quits_cleanly() {
    let (sb, db, launcher) = healthy_sandbox();
    let mut tui = Tui::start(&sb, &db, 100, 30);
    tui.wait_for("researcher", LIMIT);
    let screen = tui.contents();
    assert!(screen.contains("worker") && screen.contains("launcher up"), "{screen}");
    assert!(tui.alternate_screen());

    // A commit by the launcher reaches the screen quickly: file event -> data_version -> read.
    let mut s = status("worker", AgentState::Running, Health::Healthy);
    s.reported.status_text = Some("mark-42".into());
    launcher.send(WriteOp::Status(Box::new(s)));
    launcher.flush();
    let latency = tui.wait_for("mark-42", LIMIT);
    println!("commit to screen: {latency:?}");

    // Keys: detail screen, events screen, help, back, then q.
    tui.keys("\r");
    tui.wait_for("capabilities", LIMIT);
    tui.keys("\x1b");
    tui.keys("\t");
    tui.wait_for("Events (", LIMIT);
    tui.keys("?");
    tui.wait_for("Keys (Esc or ? closes)", LIMIT);
    tui.keys("?\t");
    tui.wait_for("Agents (2/2)", LIMIT);
    tui.keys("q");
    let exit = tui.wait_exit(LIMIT);
    assert!(exit.success(), "{exit:?}");
    assert!(tui.cooked(), "terminal left in raw mode");
    wait_until(LIMIT, "alternate screen left", || (!tui.alternate_screen()).then_some(()));
}

#[test]
fn no_color_turns_colour_off_but_keeps_trouble_visible() {
    let (sb, db, launcher) = healthy_sandbox();
    launcher.agent("broken", 2, status("broken", AgentState::Fatal, Health::Unknown), None);
    launcher.flush();
    let coloured = Tui::start(&sb, &db, 100, 30);
    coloured.wait_for("! broken", LIMIT);
    assert!(coloured.coloured());
    let plain = Tui::start_with(&sb, &db, 100, 30, &[("NO_COLOR", "1")], &[]);
    plain.wait_for("! broken", LIMIT);
    assert!(!plain.coloured(), "NO_COLOR set, colours drawn:\n{}", plain.contents());
    assert!(plain.reversed("fatal"), "a fatal agent must stand out without colour");
}

/// Each thread's name and nice value (field 19 of its `stat`).
fn thread_nices(pid: u32) -> Vec<(String, i64)> {
    let nice = |stat: &str| {
        stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().nth(16)?.parse().ok())
    };
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .filter_map(|t| {
            let dir = t.ok()?.path();
            let comm = std::fs::read_to_string(dir.join("comm")).ok()?.trim().to_owned();
            Some((comm, nice(&std::fs::read_to_string(dir.join("stat")).ok()?)?))
        })
        .collect()
}

/// The dashboard takes CPU only when the launcher does not want it: every thread at nice 19,
/// unless told to run at the normal priority.
#[test]
fn runs_at_the_lowest_priority_unless_told_not_to() {
    let (sb, db, _launcher) = healthy_sandbox();
    let low = Tui::start_at_default_priority(&sb, &db, 100, 30);
    low.wait_for("researcher", LIMIT);
    let threads = thread_nices(low.pid());
    assert!(threads.len() >= 3 && threads.iter().all(|(_, n)| *n == 19), "{threads:?}");

    let own = thread_nices(std::process::id()).into_iter().map(|(_, n)| n).min().unwrap();
    let normal = Tui::start(&sb, &db, 100, 30);
    normal.wait_for("researcher", LIMIT);
    let threads = thread_nices(normal.pid());
    assert!(threads.len() >= 3 && threads.iter().all(|(_, n)| *n == own), "{threads:?}");
}

#[test]
fn waits_for_the_database_without_creating_it_then_opens_it() {
    let sb = Sandbox::new();
    let db = sb.db();
    let mut tui = Tui::start(&sb, &db, 80, 24);
    tui.wait_for("Waiting for the database", LIMIT);
    assert!(tui.contents().contains("from the command line"));
    assert!(!db.exists(), "the dashboard created the database");
    let launcher = FakeLauncher::start(&db);
    healthy_fleet(&launcher);
    tui.wait_for("researcher", LIMIT);
    // Resizing redraws for the new size.
    resize(&tui, 120, 30);
    tui.wait_for("CPU 0–", LIMIT);
    tui.keys("\x03");
    assert!(tui.wait_exit(LIMIT).success());
    assert!(tui.cooked());
}

/// Sets the pty's size (with `stty` on the slave, no unsafe ioctl) and tells the dashboard,
/// as a terminal emulator does on resize.
fn resize(tui: &Tui, cols: u16, rows: u16) {
    let ok = Command::new("stty")
        .args(["cols", &cols.to_string(), "rows", &rows.to_string()])
        .stdin(Stdio::from(tui.slave.try_clone().unwrap()))
        .status()
        .unwrap();
    assert!(ok.success());
    tui.screen.lock().unwrap().screen_mut().set_size(rows, cols);
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(tui.pid() as i32), nix::sys::signal::Signal::SIGWINCH)
        .unwrap();
}

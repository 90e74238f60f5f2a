//! The fleet view and `stream --json` against real launchers: two sandboxes on this machine
//! play two hosts reached through a local transport (the dashboard binary itself), and one
//! test goes through a real `sshd` on localhost where one can run.

use crate::common::{LIMIT, Launcher, Running, Sandbox, dashboard_bin, free_port, wait_until};
use crate::dashboard_tui::Tui;
use nix::sys::signal::Signal;
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;

const SLEEPER: &str = r#"
[[agent]]
name = "sleeper"
command = "/bin/sleep"
args = ["1000"]
"#;

/// A sandbox with a one-agent config and its launcher running.
fn host() -> (Sandbox, Launcher) {
    let sb = Sandbox::new();
    sb.write_config(SLEEPER);
    let l = sb.launcher();
    (sb, l)
}

/// The local transport: the dashboard binary run directly, as ssh would run it on a host.
fn local_transport() -> String {
    format!("{} --normal-priority {{args}}", dashboard_bin().display())
}

/// A fleet file naming `hosts` (name, database) plus a host whose transport does not exist.
fn fleet_file(dir: &Path, hosts: &[(&str, &Path)]) -> std::path::PathBuf {
    let mut text = format!("command = {:?}\n", local_transport());
    for (name, db) in hosts {
        text.push_str(&format!("\n[[host]]\nname = {name:?}\ndb = {:?}\n", db.display().to_string()));
    }
    text.push_str("\n[[host]]\nname = \"ghost\"\ncommand = \"/nonexistent/agentvisor-dashboard {args}\"\n");
    let p = dir.join("fleet.toml");
    std::fs::write(&p, text).unwrap();
    p
}

/// `stream --json` on a database, its stdout lines on a channel.
struct Stream {
    child: Child,
    lines: mpsc::Receiver<Value>,
}

impl Stream {
    fn start(sb: &Sandbox) -> Stream {
        let mut child = sb
            .command(dashboard_bin())
            .args(["stream", "--json", "--db"])
            .arg(sb.db())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let out = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let v: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
                if tx.send(v).is_err() {
                    break;
                }
            }
        });
        Stream { child, lines }
    }

    /// The next line that satisfies `want`, within the test limit.
    fn next_where(&self, what: &str, want: impl Fn(&Value) -> bool) -> Value {
        let deadline = std::time::Instant::now() + LIMIT;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(v) if want(&v) => return v,
                Ok(_) => {}
                Err(e) => panic!("no stream line with {what}: {e}"),
            }
        }
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn stream_prints_on_change_and_ends_when_stdin_closes() {
    let (sb, mut launcher) = host();
    let stream = Stream::start(&sb);
    // The launcher's session can be written a moment before its agent turns healthy.
    let up = stream.next_where("a running launcher with its agent healthy", |v| {
        v["fleet"]["launcher"] == "running" && v["fleet"]["healthy"] == 1
    });
    assert_eq!(up["stream"], 1);
    assert_eq!(up["type"], "status");
    assert_eq!(up["status"]["launcher"]["pid"], launcher.pid());
    assert_eq!((up["fleet"]["healthy"].as_u64(), up["fleet"]["enabled"].as_u64()), (Some(1), Some(1)));
    assert_eq!(up["fleet"]["fatal"], 0);
    assert!(up["fleet"]["last_change_at"].is_string(), "{up:#}");
    assert_eq!(keys(&up), documented_keys("| `stream` |"), "the stream line as docs/fleet.md has it");
    assert_eq!(
        keys(&up["fleet"]),
        documented_keys("| `launcher` |"),
        "the fleet object as docs/fleet.md has it"
    );

    // A killed launcher changes nothing in the file; the stream still says so, then goes quiet
    // and sends heartbeats.
    launcher.run.signal(Signal::SIGKILL);
    launcher.run.wait_exit(LIMIT);
    let stale = stream.next_where("a stale launcher", |v| v["fleet"]["launcher"] == "stale");
    assert!(stale["seq"].as_u64() > up["seq"].as_u64());
    assert_eq!(stale["status"]["exit_code"], 2);
    let beat = stream.next_where("a heartbeat", |v| v["type"] == "heartbeat");
    assert!(beat["status"].is_null() && beat["sent_at"].is_string(), "{beat:#}");

    let mut stream = stream;
    drop(stream.child.stdin.take());
    let child = &mut stream.child;
    let status = wait_until(LIMIT, "stream exit after stdin closed", || child.try_wait().ok().flatten());
    assert!(status.success(), "{status:?}");
}

fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
    k.sort();
    k
}

/// The keys of the docs/fleet.md table whose first key row starts with `first_row`.
fn documented_keys(first_row: &str) -> Vec<String> {
    let doc = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/fleet.md")).unwrap();
    let lines: Vec<&str> = doc.lines().collect();
    let start = lines.iter().position(|l| l.starts_with(first_row)).expect("the table in docs/fleet.md");
    let mut k: Vec<String> = lines[start..]
        .iter()
        .take_while(|l| l.starts_with("| `"))
        .map(|l| l.split('`').nth(1).unwrap().to_owned())
        .collect();
    k.sort();
    k
}

fn row(tui: &Tui, host: &str) -> Option<String> {
    tui.contents().lines().find(|l| l.starts_with(&format!(" {host} "))).map(str::to_owned)
}

fn wait_row(tui: &Tui, host: &str, what: &str, want: impl Fn(&str) -> bool) -> String {
    wait_until(LIMIT, &format!("{host} row {what}"), || row(tui, host).filter(|r| want(r)))
}

#[test]
fn fleet_view_drills_down_and_follows_a_host_going_down_and_up() {
    let (a, _la) = host();
    let (b, lb) = host();
    let fleet = fleet_file(a.path(), &[("alpha", &a.db()), ("beta", &b.db())]);
    // A host whose transport connects and then says nothing: it must hold up nobody else.
    let hang = a.script("hang.sh", "exec sleep 1000");
    let mut text = std::fs::read_to_string(&fleet).unwrap();
    text.push_str(&format!("\n[[host]]\nname = \"hang\"\ncommand = \"{} {{args}}\"\n", hang.display()));
    std::fs::write(&fleet, text).unwrap();
    let mut tui = Tui::start_with(&a, &a.db(), 120, 20, &[], &["--fleet", fleet.to_str().unwrap()]);
    for h in ["alpha", "beta"] {
        let r = wait_row(&tui, h, "up with 1/1 healthy", |r| r.contains(" up ") && r.contains(" 1/1 "));
        assert!(r.contains("ago "), "a last change: {r}");
    }
    let ghost = wait_row(&tui, "ghost", "unreachable", |r| r.contains("UNREACHABLE"));
    assert!(ghost.contains("cannot run /nonexistent/agentvisor-dashboard"), "{ghost}");
    tui.wait_for("4 hosts · 2 up · 1 unreachable · 1 connecting or slow", LIMIT);
    assert!(row(&tui, "hang").unwrap().contains("connecting"));

    // Enter opens alpha's own dashboard on this terminal; Esc brings the fleet back.
    tui.keys("\r");
    tui.wait_for("Agents (1/1)", LIMIT);
    assert!(!tui.contents().contains("Agentvisor fleet"));
    tui.keys("\x1b");
    tui.wait_for("Agentvisor fleet", LIMIT);
    wait_row(&tui, "alpha", "up again", |r| r.contains(" up "));

    // beta's launcher dies: its row turns stale; a new launcher brings it back.
    drop(lb);
    wait_row(&tui, "beta", "down", |r| r.contains(" DOWN ") || r.contains(" STALE "));
    let _lb2 = b.launcher_as("launcher2");
    wait_row(&tui, "beta", "up after the restart", |r| r.contains(" up "));

    tui.keys("q");
    assert!(tui.wait_exit(LIMIT).success());
    assert!(tui.cooked(), "the terminal is back in cooked mode");
}

#[test]
fn status_with_hosts_prints_a_document_per_host_and_the_worst_code() {
    let (a, _la) = host();
    let fleet = fleet_file(a.path(), &[("alpha", &a.db())]);
    let out = a.command(dashboard_bin()).args(["status", "--json", "--fleet"]).arg(&fleet).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let docs: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(docs.len(), 2, "{text}");
    assert_eq!(docs[0]["host"], "alpha");
    assert_eq!(docs[0]["reachable"], true);
    assert_eq!(docs[0]["status"]["database"]["path"], a.db().display().to_string());
    assert_eq!(docs[1]["host"], "ghost");
    assert_eq!(docs[1]["reachable"], false);
    assert!(docs[1]["error"].as_str().unwrap().contains("cannot run"), "{text}");
    assert_eq!(out.status.code(), Some(4), "an unreachable host is the worst");

    // Without the ghost: the verdict of the one host, waited for until its launcher is up.
    let transport = local_transport();
    wait_until(LIMIT, "status --host exit 0", || {
        let out = a
            .command(dashboard_bin())
            .args(["status", "--host", "alpha", "--db"])
            .arg(a.db())
            .args(["--transport", &transport])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        (out.status.code() == Some(0)).then_some(text)
    });
}

/// The real ssh client against a port where nothing listens: the reason shown is ssh's own.
#[test]
fn ssh_refusal_is_the_reason_shown() {
    if which("ssh").is_none() {
        eprintln!("SKIPPED: no ssh client on this machine");
        return;
    }
    let sb = Sandbox::new();
    let port = free_port();
    let transport = format!(
        "ssh -p {port} -o BatchMode=yes -o ConnectTimeout=10 {{host}} -- agentvisor-dashboard {{args}}"
    );
    let out = sb
        .command(dashboard_bin())
        .args(["status", "--json", "--host", "127.0.0.1", "--transport", &transport])
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let error = v["error"].as_str().unwrap_or_default();
    assert!(error.starts_with("ssh: connect to host 127.0.0.1") && error.contains("refused"), "{v:#}");
    assert_eq!(out.status.code(), Some(4));
}

/// Through a real sshd on a high port with its own host key and an authorized key: the
/// stream arrives, and so does the reason when the far side has no agentvisor-dashboard.
#[test]
fn through_a_real_sshd_on_localhost() {
    let Some(sshd) = ["/usr/sbin/sshd", "/usr/bin/sshd"].into_iter().map(Path::new).find(|p| p.exists())
    else {
        eprintln!("SKIPPED: no sshd (install openssh-server to run this test)");
        return;
    };
    if which("ssh").is_none() || which("ssh-keygen").is_none() {
        eprintln!("SKIPPED: no ssh client or ssh-keygen");
        return;
    }
    let (sb, _l) = host();
    let dir = sb.path();
    for key in ["host_key", "user_key"] {
        let ok = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(dir.join(key))
            .status()
            .unwrap();
        assert!(ok.success());
    }
    std::fs::copy(dir.join("user_key.pub"), dir.join("authorized_keys")).unwrap();
    // sshd's privilege separation needs this directory; it is absent where sshd never ran.
    let _ = std::fs::create_dir_all("/run/sshd");
    let port = free_port();
    let config = dir.join("sshd_config");
    std::fs::write(
        &config,
        format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {}\nAuthorizedKeysFile {}\nPidFile {}\n\
             StrictModes no\nUsePAM no\nPasswordAuthentication no\nPermitRootLogin prohibit-password\n",
            dir.join("host_key").display(),
            dir.join("authorized_keys").display(),
            dir.join("sshd.pid").display(),
        ),
    )
    .unwrap();
    let mut cmd = Command::new(sshd);
    cmd.args(["-D", "-e", "-f"]).arg(&config);
    let mut daemon = Running::spawn(cmd, dir, "sshd");
    let ssh = |remote: &str| {
        format!(
            "ssh -p {port} -i {} -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
             -o LogLevel=ERROR {{host}} -- {remote} {{args}}",
            dir.join("user_key").display()
        )
    };
    let status = |transport: &str| {
        let out = sb
            .command(dashboard_bin())
            .args(["status", "--json", "--host", "127.0.0.1", "--db"])
            .arg(sb.db())
            .args(["--transport", transport])
            .output()
            .unwrap();
        (out.status.code(), serde_json::from_slice::<Value>(&out.stdout).unwrap_or(Value::Null))
    };
    let remote = format!("{} --normal-priority", dashboard_bin().display());
    let up = wait_until(LIMIT, "a running launcher seen through sshd", || {
        if let Ok(Some(s)) = daemon.child.try_wait() {
            eprintln!("SKIPPED: sshd exited ({s}): {}", sb.stderr_of("sshd"));
            return Some(None);
        }
        let (code, v) = status(&ssh(&remote));
        (code == Some(0) && v["fleet"]["launcher"] == "running").then_some(Some(v))
    });
    let Some(up) = up else { return };
    assert_eq!(up["reachable"], true);
    assert_eq!(up["status"]["database"]["path"], sb.db().display().to_string());

    let (code, missing) = status(&ssh("/nonexistent/agentvisor-dashboard"));
    assert_eq!(code, Some(4));
    assert_eq!(missing["error"], "agentvisor-dashboard not found on the host", "{missing:#}");
    daemon.signal(Signal::SIGTERM);
}

fn which(program: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH")?.to_str()?.split(':').map(|d| Path::new(d).join(program)).find(|p| p.exists())
}

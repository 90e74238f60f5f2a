//! Garbage on an agent's notify channels: random and oversized datagrams on its socket, random
//! bytes on its pipe. Ignored, counted in `notify_errors`, and nothing else is disturbed.

use crate::common::*;

#[test]
fn random_and_oversized_datagrams_and_random_pipe_bytes_are_counted_and_ignored() {
    let sb = Sandbox::new();
    // Random bytes on the pipe first (in lines and in one long run without a newline), then
    // heartbeats on the same pipe, which must still be understood.
    sb.script(
        "agent.sh",
        r#"
echo "$NOTIFY_SOCKET" > socket.txt
head -c 20000 /dev/urandom >&3
printf '\n' >&3
head -c 300000 /dev/zero | tr '\0' 'x' >&3
printf '\nREADY=1\n' >&3
while :; do echo WATCHDOG=1 >&3; sleep 0.05; done
"#,
    );
    sb.write_config(
        "[[agent]]\nname = \"victim\"\ncommand = \"./agent.sh\"\nready = \"notify\"\n\n\
         [[agent]]\nname = \"bystander\"\ncommand = \"sleep\"\nargs = [\"1000\"]\n",
    );
    let l = sb.launcher();
    let db = sb.db();
    let pid = wait_until(LIMIT, "victim running", || {
        agent_field::<String>(&db, "victim", "state")
            .filter(|s| s == "running")
            .and_then(|_| agent_field::<i64>(&db, "victim", "pid"))
    });
    let pipe_errors = wait_until(LIMIT, "pipe garbage counted", || {
        agent_field::<i64>(&db, "victim", "notify_errors").filter(|n| *n > 0)
    });

    let socket = sb.read("socket.txt").trim().to_owned();
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut sent = 0;
    for i in 0..300usize {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        // Mostly short random datagrams, some far beyond the 4 KiB limit.
        let len = if i % 10 == 0 { 16_384 + (seed as usize % 100_000) } else { 1 + seed as usize % 600 };
        let bytes: Vec<u8> = (0..len).map(|j| (seed >> (j % 57)) as u8 ^ j as u8).collect();
        if notify_send(&socket, &bytes).is_ok() {
            sent += 1;
        }
    }
    assert!(sent > 250, "only {sent} datagrams went out");
    notify_send(&socket, b"X_TASK=still listening\n").unwrap();
    wait_until(LIMIT, "the socket still understood", || {
        agent_field::<String>(&db, "victim", "task").filter(|t| t == "still listening")
    });
    let errors = wait_until(LIMIT, "datagram garbage counted", || {
        agent_field::<i64>(&db, "victim", "notify_errors").filter(|n| *n >= pipe_errors + 30)
    });
    println!("notify_errors: {pipe_errors} from the pipe, {errors} in all");

    // Heartbeats kept arriving through all that, and nothing was restarted.
    let beats = agent_field::<i64>(&db, "victim", "heartbeats").unwrap();
    wait_until(LIMIT, "more heartbeats", || {
        agent_field::<i64>(&db, "victim", "heartbeats").filter(|b| *b > beats)
    });
    assert_eq!(agent_field::<i64>(&db, "victim", "pid"), Some(pid));
    assert_eq!(agent_field::<i64>(&db, "victim", "restarts"), Some(0));
    assert_eq!(agent_field::<String>(&db, "bystander", "state").as_deref(), Some("running"));
    assert!(process_alive(l.pid()));
    assert!(!sb.stderr_of("launcher").contains("panicked"));
}

/// Anyone on the machine can reach a socket in the abstract namespace; what another user sends
/// there is dropped, what the launcher's user sends is taken. Needs root to send as another user.
#[test]
fn datagrams_from_another_user_are_dropped() {
    if !nix::unistd::Uid::effective().is_root() {
        println!("skipped: sending as another user needs root");
        return;
    }
    let sb = Sandbox::new();
    sb.script("agent.sh", "echo \"$NOTIFY_SOCKET\" > socket.txt\nexec sleep 1000");
    sb.write_config("[[agent]]\nname = \"target\"\ncommand = \"./agent.sh\"\n");
    let _l = sb.launcher();
    let db = sb.db();
    let socket = wait_until(LIMIT, "the agent's socket", || {
        Some(sb.read("socket.txt").trim().to_owned()).filter(|s| !s.is_empty())
    });
    // A real sd_notify client, run as nobody.
    let tool = std::path::Path::new("/usr/bin/systemd-notify");
    if !tool.exists() {
        println!("skipped: /usr/bin/systemd-notify is not installed");
        return;
    }
    use std::os::unix::process::CommandExt;
    let status = std::process::Command::new(tool)
        .arg("X_TASK=intruder")
        .env("NOTIFY_SOCKET", &socket)
        .uid(65534)
        .gid(65534)
        .status()
        .unwrap();
    assert!(status.success(), "systemd-notify as nobody: {status}");
    notify_send(&socket, b"X_TASK=trusted\n").unwrap();
    wait_until(LIMIT, "the trusted datagram", || {
        agent_field::<String>(&db, "target", "task").filter(|t| t == "trusted")
    });
    assert_eq!(agent_field::<i64>(&db, "target", "notify_errors"), Some(0));
    // Datagrams are handled in order: the intruder's came first and was dropped.
    assert!(sb.stderr_of("launcher").contains("dropped a notify datagram from another user"));
}

use super::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

fn spec(toml: &str) -> Spec {
    let text = format!("[[agent]]\nname = \"a\"\ncommand = \"true\"\nliveness = {{ {toml} }}\n");
    let cfg = crate::config::parse(std::path::Path::new("t.toml"), &text).unwrap().agents.remove(0);
    Spec::of(&cfg, Role::Liveness, std::env::temp_dir()).unwrap()
}

/// A server that answers every request on its connections with `response`, then serves on.
async fn server(response: &'static [u8]) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0; 4096];
                while let Ok(n) = conn.read(&mut buf).await {
                    if n == 0 || conn.write_all(response).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

#[tokio::test]
async fn http_status_and_expected_body() {
    let ok = server(b"HTTP/1.1 200 OK\r\ncontent-length: 11\r\n\r\nall is fine").await;
    let outcome = check(&spec(&format!("http = \"http://{ok}/healthz\""))).await;
    assert_eq!((outcome.ok, outcome.message.as_str()), (true, "HTTP 200"));
    let outcome = check(&spec(&format!("http = \"http://{ok}/\", expect = \"fine\""))).await;
    assert!(outcome.ok, "{outcome:?}");
    let outcome = check(&spec(&format!("http = \"http://{ok}/\", expect = \"broken\""))).await;
    assert!(!outcome.ok);
    assert!(outcome.message.contains("does not contain \"broken\""), "{}", outcome.message);

    let bad = server(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n").await;
    let outcome = check(&spec(&format!("http = \"http://{bad}/\""))).await;
    assert_eq!((outcome.ok, outcome.message.as_str()), (false, "HTTP 503"));
}

#[tokio::test]
async fn an_endless_body_is_read_only_so_far() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut conn, _) = listener.accept().await.unwrap();
        let mut buf = vec![0; 4096];
        let _ = conn.read(&mut buf).await;
        let _ = conn.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 10000000000\r\n\r\n").await;
        let chunk = vec![b'x'; 65536];
        while conn.write_all(&chunk).await.is_ok() {}
    });
    let outcome =
        check(&spec(&format!("http = \"http://{addr}/\", expect = \"ok\", timeout = \"30s\""))).await;
    assert!(!outcome.ok);
    assert!(outcome.message.contains("first 64 KiB"), "{}", outcome.message);
}

#[tokio::test]
async fn a_hanging_server_is_a_timeout() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let outcome = check(&spec(&format!("http = \"http://{addr}/\", timeout = \"200ms\""))).await;
    assert_eq!((outcome.ok, outcome.message.as_str()), (false, "no answer within 200ms"));
    drop(listener);
}

#[tokio::test]
async fn tcp_connects_or_says_why_not() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let outcome = check(&spec(&format!("tcp = \"{addr}\""))).await;
    assert_eq!((outcome.ok, outcome.message.as_str()), (true, "connected"));
    drop(listener);
    let outcome = check(&spec(&format!("tcp = \"{addr}\""))).await;
    assert!(!outcome.ok);
    assert!(outcome.message.contains("refused"), "{}", outcome.message);
}

#[tokio::test]
async fn exec_exit_codes() {
    assert!(check(&spec("exec = [\"true\"]")).await.ok);
    let outcome = check(&spec("exec = [\"sh\", \"-c\", \"exit 3\"]")).await;
    assert_eq!((outcome.ok, outcome.message.as_str()), (false, "exit code 3"));
    let outcome = check(&spec("exec = [\"/nonexistent/probe\"]")).await;
    assert!(outcome.message.starts_with("cannot start"), "{}", outcome.message);
}

/// The probe's process group is killed at its timeout: the grandchild too, not only the shell.
#[tokio::test]
async fn an_exec_probe_past_its_timeout_is_killed_with_its_group() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("pid");
    let script = format!("sleep 300 & echo $! > {}; wait", pidfile.display());
    let outcome = check(&spec(&format!("exec = [\"sh\", \"-c\", {script:?}], timeout = \"500ms\""))).await;
    assert_eq!((outcome.ok, outcome.message.as_str()), (false, "no answer within 500ms"));
    let pid: i32 = std::fs::read_to_string(&pidfile).unwrap().trim().parse().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    // The grandchild was reparented (to init or a subreaper) and dies of the SIGKILL.
    while crate::process::inspect::stat_of(pid).is_some_and(|s| s.state != 'Z') {
        assert!(std::time::Instant::now() < deadline, "the probe's grandchild {pid} still runs");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

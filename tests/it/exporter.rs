//! `agentvisor-dashboard serve` against a real launcher and its agents: the exposition parsed
//! back by a real parser and checked against the database, `/readyz` and `/livez` following an
//! agent's health and the launcher's life, `/status.json`, refused `--listen` addresses, and a
//! real Prometheus scraping it when one is installed.

use crate::common::{
    LIMIT, Running, Sandbox, dashboard_bin, launcher_bin, open_ro, query_opt, rows, wait_until,
};
use nix::sys::signal::Signal;
use prometheus_parse::{Scrape, Value};
use serde_json::json;
use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::time::Duration;

/// A running exporter and the address it reported.
struct Exporter {
    _run: Running,
    addr: String,
}

/// `serve --listen 127.0.0.1:0` on the sandbox's database; the port comes from its stderr.
fn start_exporter(sb: &Sandbox, label: &str) -> Exporter {
    let mut c = sb.command(dashboard_bin());
    c.args(["serve", "--listen", "127.0.0.1:0", "--db"]).arg(sb.db());
    let run = Running::spawn(c, sb.path(), label);
    let addr = wait_until(LIMIT, "the exporter's address on stderr", || {
        let err = sb.stderr_of(label);
        let rest = err.split("serving http://").nth(1)?;
        Some(rest.split('/').next()?.to_owned())
    });
    Exporter { _run: run, addr }
}

fn start_launcher(sb: &Sandbox) -> Running {
    let mut c = sb.command(launcher_bin());
    c.arg("--db").arg(sb.db()).arg("--config").arg(sb.config());
    Running::spawn(c, sb.path(), "launcher")
}

struct Reply {
    status: u16,
    content_type: String,
    body: String,
}

/// One HTTP/1.1 GET over a plain socket, the way a scraper sends it.
fn get(addr: &str, path: &str, accept: Option<&str>) -> Reply {
    let mut s = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let accept = accept.map(|a| format!("Accept: {a}\r\n")).unwrap_or_default();
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\n{accept}Connection: close\r\n\r\n").unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or_else(|| panic!("no HTTP head in {raw:?}"));
    let status = head.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let content_type = head
        .lines()
        .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-type: ").map(str::to_owned))
        .unwrap_or_default();
    Reply { status, content_type, body: body.to_owned() }
}

fn scrape(addr: &str) -> Scrape {
    let r = get(addr, "/metrics", None);
    assert_eq!(r.status, 200, "{}", r.body);
    Scrape::parse(r.body.lines().map(|l| Ok(l.to_owned()))).unwrap()
}

/// The value of the one series `name` with (at least) these labels.
fn value(s: &Scrape, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let mut found = s
        .samples
        .iter()
        .filter(|x| x.metric == name && labels.iter().all(|(k, v)| x.labels.get(k) == Some(v)))
        .map(|x| match x.value {
            Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => v,
            _ => panic!("{name} is not a plain value"),
        });
    let v = found.next();
    assert!(found.next().is_none(), "{name} {labels:?} matches more than one series");
    v
}

fn db_i64(db: &Path, sql: &str) -> i64 {
    query_opt::<i64>(db, sql).unwrap_or_else(|| panic!("no value for {sql}"))
}

const TALKER: &str = r#"
printf 'X_TOKENS_IN=1200\nX_TOKENS_OUT=340\nX_COST=0.25\nX_METRIC_QUEUE_DEPTH=7\n' >&3
while :; do
  echo WATCHDOG=1 >&3
  sleep 0.2
done
"#;

/// The talker (run as ./talker.sh) and an agent that only sleeps.
const TALKER_AND_SLEEPER: &str = r#"
[[agent]]
name = "talker"
command = "./talker.sh"
heartbeat_timeout = "5s"

[[agent]]
name = "sleeper"
command = "/bin/sleep"
args = ["1000"]
"#;

#[test]
fn the_exposition_matches_the_database() {
    let sb = Sandbox::new();
    sb.script("talker.sh", TALKER);
    sb.write_config(&format!(
        r#"{TALKER_AND_SLEEPER}
[[agent]]
name = "quitter"
command = "/bin/sh"
args = ["-c", "exit 3"]
restart = "never"
"#
    ));
    let db = sb.db();
    let _launcher = start_launcher(&sb);
    let exporter = start_exporter(&sb, "exporter");
    wait_until(LIMIT, "tokens, cost, a custom metric and the quitter's exit in the database", || {
        let tokens = query_opt::<i64>(&db, "SELECT tokens_in FROM agent_state WHERE agent = 'talker'");
        let depth = query_opt::<f64>(
            &db,
            "SELECT last_value FROM metric_series WHERE scope = 'talker' AND metric = 'queue_depth'",
        );
        let exited = query_opt::<String>(&db, "SELECT state FROM agent_state WHERE agent = 'quitter'");
        (tokens == Some(1200) && depth == Some(7.0) && exited.as_deref() == Some("exited")).then_some(())
    });

    let s = scrape(&exporter.addr);
    // Every family has HELP text, and every per-agent series its agent.
    for sample in &s.samples {
        assert!(sample.metric.starts_with("agentvisor_"), "{}", sample.metric);
        assert!(s.docs.contains_key(&sample.metric), "no HELP for {}", sample.metric);
        if sample.metric.starts_with("agentvisor_agent_") {
            assert!(sample.labels.get("agent").is_some(), "{} without an agent label", sample.metric);
        }
    }
    assert_eq!(value(&s, "agentvisor_launcher_up", &[]), Some(1.0));
    assert_eq!(value(&s, "agentvisor_database_readable", &[]), Some(1.0));
    let (started_ms, host) = open_ro(&db)
        .query_row("SELECT started_ms, host FROM launcher_sessions ORDER BY id DESC LIMIT 1", [], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
        })
        .unwrap();
    assert_eq!(value(&s, "agentvisor_launcher_start_time_seconds", &[]), Some(started_ms as f64 / 1000.0));
    assert_eq!(value(&s, "agentvisor_launcher_info", &[("host", &host)]), Some(1.0));

    // Per agent: the state as one series set to 1 among all states, restarts, up.
    let agents: Vec<(String, String, i64)> = open_ro(&db)
        .prepare("SELECT agent, state, restarts FROM agent_state ORDER BY agent")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(agents.len(), 3);
    for (name, state, restarts) in &agents {
        let a = name.as_str();
        assert_eq!(value(&s, "agentvisor_agent_state", &[("agent", a), ("state", state)]), Some(1.0), "{a}");
        let states: f64 = s
            .samples
            .iter()
            .filter(|x| x.metric == "agentvisor_agent_state" && x.labels.get("agent") == Some(a))
            .map(|x| match x.value {
                Value::Gauge(v) => v,
                _ => panic!("agentvisor_agent_state is not a gauge"),
            })
            .sum();
        assert_eq!(states, 1.0, "{a} is in exactly one state");
        assert_eq!(value(&s, "agentvisor_agent_restarts_total", &[("agent", a)]), Some(*restarts as f64));
        let up = matches!(state.as_str(), "starting" | "running" | "stopping");
        assert_eq!(
            value(&s, "agentvisor_agent_up", &[("agent", a)]),
            Some(if up { 1.0 } else { 0.0 }),
            "{a}"
        );
        assert_eq!(value(&s, "agentvisor_agent_enabled", &[("agent", a)]), Some(1.0));
    }
    let talker = [("agent", "talker")];
    assert_eq!(value(&s, "agentvisor_agent_input_tokens_total", &talker), Some(1200.0));
    assert_eq!(value(&s, "agentvisor_agent_output_tokens_total", &talker), Some(340.0));
    let cost = query_opt::<f64>(&db, "SELECT cost FROM agent_state WHERE agent = 'talker'");
    assert_eq!(value(&s, "agentvisor_agent_cost_total", &talker), cost);
    assert_eq!(
        value(&s, "agentvisor_agent_custom_metric", &[("agent", "talker"), ("metric", "queue_depth")]),
        Some(7.0)
    );
    assert_eq!(value(&s, "agentvisor_agent_healthy", &talker), Some(1.0));
    assert_eq!(value(&s, "agentvisor_agent_heartbeat_timeout_seconds", &talker), Some(5.0));
    assert!(
        value(&s, "agentvisor_agent_heartbeat_age_seconds", &talker).is_some_and(|v| (0.0..5.0).contains(&v))
    );
    let db_exit = query_opt::<i64>(&db, "SELECT exit_code FROM agent_state WHERE agent = 'quitter'");
    assert_eq!(db_exit, Some(3));
    assert_eq!(value(&s, "agentvisor_agent_last_exit_code", &[("agent", "quitter")]), Some(3.0));
    // Counters in flight: between the database before and after the scrape.
    let beats = || db_i64(&db, "SELECT heartbeats FROM agent_state WHERE agent = 'talker'") as f64;
    let before = beats();
    let scraped = value(&scrape(&exporter.addr), "agentvisor_agent_heartbeats_total", &talker).unwrap();
    let after = beats();
    assert!(before <= scraped && scraped <= after, "{before} <= {scraped} <= {after}");

    // Events by severity and the file sizes settle on exactly the database's figures.
    wait_until(LIMIT, "event counters and file sizes equal to the database's", || {
        let s = scrape(&exporter.addr);
        let events_match = ["info", "warning", "error", "critical"].iter().all(|sev| {
            let n = db_i64(&db, &format!("SELECT count(*) FROM events WHERE severity = '{sev}'"));
            value(&s, "agentvisor_events_total", &[("severity", sev)]) == Some(n as f64)
        });
        let size = std::fs::metadata(&db).unwrap().len() as f64;
        (events_match && value(&s, "agentvisor_database_size_bytes", &[]) == Some(size)).then_some(())
    });
    assert!(
        value(&scrape(&exporter.addr), "agentvisor_events_total", &[("severity", "info")]).unwrap() > 0.0
    );

    // OpenMetrics when asked for, as Prometheus does.
    let om =
        get(&exporter.addr, "/metrics", Some("application/openmetrics-text;version=1.0.0,text/plain;q=0.5"));
    assert!(om.content_type.starts_with("application/openmetrics-text"), "{}", om.content_type);
    assert!(om.body.ends_with("# EOF\n"), "{}", om.body);
    assert!(om.body.contains("agentvisor_agent_restarts_total{agent=\"talker\"}"), "{}", om.body);

    // /status.json is the document of `status --json`.
    let served: serde_json::Value =
        serde_json::from_str(&get(&exporter.addr, "/status.json", None).body).unwrap();
    let out = sb.command(dashboard_bin()).args(["status", "--json", "--db"]).arg(&db).output().unwrap();
    let printed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let keys = |v: &serde_json::Value| v.as_object().map(|o| o.keys().cloned().collect::<Vec<_>>());
    assert_eq!(keys(&served), keys(&printed));
    assert_eq!(keys(&served["agents"][0]), keys(&printed["agents"][0]));
    assert_eq!(served["verdict"], printed["verdict"]);
    // The spend too, read as `status` reads it.
    assert!(served["spend"]["today"]["tokens_in"].is_i64(), "{served}");
    assert_eq!(keys(&served["spend"]["last_hour"]), keys(&printed["spend"]["last_hour"]));
    let names = |v: &serde_json::Value| {
        v["agents"].as_array().unwrap().iter().map(|a| a["name"].clone()).collect::<Vec<_>>()
    };
    assert_eq!(names(&served), names(&printed));
    assert_eq!(get(&exporter.addr, "/nothing", None).status, 404);
}

fn check(diff: &mut Vec<String>, what: String, scraped: Option<f64>, stored: Option<f64>) {
    if scraped != stored {
        diff.push(format!("{what}: scraped {scraped:?}, stored {stored:?}"));
    }
}

/// The probe, alert and run series of one scrape disagree with the database read after it:
/// `None` when they agree, else what differs.
fn features_differ(s: &Scrape, db: &Path) -> Option<String> {
    let num = |v: &str| v.parse::<f64>().ok();
    let mut diff = Vec::new();
    let probes =
        rows(db, "SELECT agent, probe, kind, last_ok, consecutive_failures, latency_ms, state FROM probes");
    for p in &probes {
        let l = [("agent", p[0].as_str()), ("probe", p[1].as_str()), ("kind", p[2].as_str())];
        let v = |name: &str| value(s, name, &l);
        check(&mut diff, format!("{l:?} up"), v("agentvisor_agent_probe_up"), num(&p[3]));
        check(
            &mut diff,
            format!("{l:?} failures"),
            v("agentvisor_agent_probe_consecutive_failures"),
            num(&p[4]),
        );
        check(
            &mut diff,
            format!("{l:?} latency"),
            v("agentvisor_agent_probe_latency_seconds"),
            num(&p[5]).map(|ms| ms / 1000.0),
        );
        check(
            &mut diff,
            format!("{l:?} failing"),
            v("agentvisor_agent_probe_failing"),
            Some(f64::from(p[6] == "failing")),
        );
    }
    let series = |name: &str| s.samples.iter().filter(|x| x.metric == name).count();
    check(
        &mut diff,
        "probe series".into(),
        Some(series("agentvisor_agent_probe_failing") as f64),
        Some(probes.len() as f64),
    );

    let stored: BTreeSet<Vec<String>> =
        rows(db, "SELECT rule, agent, severity FROM alerts").into_iter().collect();
    let scraped: BTreeSet<Vec<String>> = s
        .samples
        .iter()
        .filter(|x| x.metric == "agentvisor_alert_firing")
        .map(|x| {
            ["rule", "agent", "severity"].map(|k| x.labels.get(k).unwrap_or_default().to_owned()).to_vec()
        })
        .collect();
    if scraped != stored {
        diff.push(format!("alerts: scraped {scraped:?}, stored {stored:?}"));
    }
    for sev in ["info", "warning", "error", "critical"] {
        let n = stored.iter().filter(|a| a[2] == sev).count();
        check(
            &mut diff,
            format!("{sev} alerts"),
            value(s, "agentvisor_alerts_firing", &[("severity", sev)]),
            Some(n as f64),
        );
    }

    let last = rows(
        db,
        "SELECT outcome, ended_ms, duration_ms FROM runs WHERE agent = 'cron' AND outcome IS NOT NULL
           AND outcome != 'skipped' ORDER BY id DESC LIMIT 1",
    );
    let cron = [("agent", "cron")];
    for o in ["succeeded", "failed", "timed_out", "skipped", "stopped", "lost"] {
        // One series, labelled with the outcome: the others are absent.
        let stored = last.first().filter(|r| r[0] == o).map(|_| 1.0);
        check(
            &mut diff,
            format!("cron {o}"),
            value(s, "agentvisor_agent_last_run_outcome", &[cron[0], ("outcome", o)]),
            stored,
        );
    }
    let ended = last.first().and_then(|r| num(&r[1])).map(|ms| ms / 1000.0);
    check(&mut diff, "cron end".into(), value(s, "agentvisor_agent_last_run_end_time_seconds", &cron), ended);
    let took = last.first().and_then(|r| num(&r[2])).map(|ms| ms / 1000.0);
    check(
        &mut diff,
        "cron duration".into(),
        value(s, "agentvisor_agent_last_run_duration_seconds", &cron),
        took,
    );
    let next = query_opt::<i64>(db, "SELECT next_run_ms FROM agent_state WHERE agent = 'cron'");
    check(
        &mut diff,
        "cron next".into(),
        value(s, "agentvisor_agent_next_run_time_seconds", &cron),
        next.map(|ms| ms as f64 / 1000.0),
    );
    // Agents without a schedule have no next run.
    check(
        &mut diff,
        "db next".into(),
        value(s, "agentvisor_agent_next_run_time_seconds", &[("agent", "db")]),
        None,
    );
    (!diff.is_empty()).then(|| diff.join("\n"))
}

/// A launcher running "db" (a custom metric, a TCP liveness probe on `port`), "cron" (a schedule
/// whose runs fail) and an [[alert]] firing for db, plus the agents of `extra`, and an exporter;
/// returns once the probe passed, the alert fired and a run failed.
fn start_with_probe_alert_and_runs(sb: &Sandbox, port: SocketAddr, extra: &str) -> (Running, Exporter) {
    sb.script("db.sh", "printf 'X_METRIC_QUEUE_DEPTH=7\\n' >&3\nexec sleep 1000");
    sb.write_config(&format!(
        r#"
[launcher]
sample_interval = "200ms"

[[agent]]
name = "db"
command = "./db.sh"
liveness = {{ tcp = "{port}", period = "300ms", failure_threshold = 2 }}
on_heartbeat_timeout = "mark"

[[agent]]
name = "cron"
command = "sh"
args = ["-c", "exit 4"]
schedule = {{ every = "1s" }}

[[alert]]
name = "deep"
agents = ["db"]
value = "queue_depth"
above = 5
severity = "error"
{extra}"#
    ));
    let db = sb.db();
    let launcher = start_launcher(sb);
    let exporter = start_exporter(sb, "exporter");
    wait_until(LIMIT, "a passing probe, a firing alert and a failed run in the database", || {
        let up =
            query_opt::<i64>(&db, "SELECT last_ok FROM probes WHERE agent = 'db' AND probe = 'liveness'");
        let firing = query_opt::<String>(&db, "SELECT rule FROM alerts WHERE agent = 'db'");
        let failed =
            query_opt::<i64>(&db, "SELECT count(*) FROM runs WHERE agent = 'cron' AND outcome = 'failed'");
        (up == Some(1) && firing.is_some() && failed.unwrap_or(0) > 0).then_some(())
    });
    (launcher, exporter)
}

/// Probes, alerts and runs of a real launcher, scraped until one scrape agrees with the
/// database read right after it (probe latencies and runs change between the two).
#[test]
fn probes_alerts_and_runs_match_the_database() {
    let sb = Sandbox::new();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap();
    let (_launcher, exporter) = start_with_probe_alert_and_runs(&sb, port, "");
    let db = sb.db();
    let agree = || {
        let mut last = String::new();
        for _ in 0..50 {
            let s = scrape(&exporter.addr);
            match features_differ(&s, &db) {
                None => return s,
                Some(d) => last = d,
            }
        }
        panic!("50 scrapes in a row disagree with the database, the last:\n{last}");
    };
    let s = agree();
    let probe = [("agent", "db"), ("probe", "liveness"), ("kind", "tcp")];
    assert_eq!(value(&s, "agentvisor_agent_probe_up", &probe), Some(1.0));
    assert_eq!(
        value(&s, "agentvisor_alert_firing", &[("rule", "deep"), ("agent", "db"), ("severity", "error")]),
        Some(1.0)
    );
    assert_eq!(value(&s, "agentvisor_alerts_firing", &[("severity", "error")]), Some(1.0));
    assert_eq!(
        value(&s, "agentvisor_agent_last_run_outcome", &[("agent", "cron"), ("outcome", "failed")]),
        Some(1.0)
    );
    assert!(value(&s, "agentvisor_agent_next_run_time_seconds", &[("agent", "cron")]).is_some());
    for family in
        ["agentvisor_agent_probe_up", "agentvisor_alert_firing", "agentvisor_agent_last_run_outcome"]
    {
        assert!(s.docs.contains_key(family), "no HELP for {family}");
    }

    // The port closes: the probe fails, in the exposition as in the database.
    drop(listener);
    wait_until(LIMIT, "the probe failing in the database", || {
        let state =
            query_opt::<String>(&db, "SELECT state FROM probes WHERE agent = 'db' AND probe = 'liveness'");
        (state.as_deref() == Some("failing")).then_some(())
    });
    let s = agree();
    assert_eq!(value(&s, "agentvisor_agent_probe_failing", &probe), Some(1.0));
    assert!(value(&s, "agentvisor_agent_probe_consecutive_failures", &probe).unwrap() >= 2.0);
}

#[test]
fn readyz_and_livez_follow_health_and_the_launcher() {
    let sb = Sandbox::new();
    let beat = sb.path().join("beat");
    std::fs::write(&beat, "").unwrap();
    sb.script(
        "beater.sh",
        &format!("while :; do\n  [ -e '{}' ] && echo WATCHDOG=1 >&3\n  sleep 0.2\ndone", beat.display()),
    );
    sb.write_config(
        r#"
[[agent]]
name = "beater"
command = "./beater.sh"
heartbeat_timeout = "1s"
on_heartbeat_timeout = "mark"
"#,
    );
    let mut launcher = start_launcher(&sb);
    let exporter = start_exporter(&sb, "exporter");
    let addr = exporter.addr.as_str();
    let probe = |path: &str, status: u16, text: &str| {
        wait_until(LIMIT, &format!("{path} {status} saying {text:?}"), || {
            let r = get(addr, path, None);
            (r.status == status && r.body.contains(text)).then_some(r.body)
        })
    };
    probe("/readyz", 200, "1/1 enabled agents healthy");
    probe("/livez", 200, "launcher pid");

    std::fs::remove_file(&beat).unwrap();
    let body = probe("/readyz", 503, "beater");
    assert!(body.contains("1 of 1 enabled agents not healthy: beater (running, unhealthy)"), "{body}");
    assert_eq!(value(&scrape(addr), "agentvisor_agent_healthy", &[("agent", "beater")]), Some(0.0));
    assert_eq!(get(addr, "/livez", None).status, 200, "an unhealthy agent leaves the launcher live");

    std::fs::write(&beat, "").unwrap();
    probe("/readyz", 200, "1/1 enabled agents healthy");
    assert_eq!(value(&scrape(addr), "agentvisor_agent_healthy", &[("agent", "beater")]), Some(1.0));

    launcher.signal(Signal::SIGTERM);
    launcher.wait_exit(LIMIT);
    probe("/livez", 503, "launcher stopped");
    assert_eq!(get(addr, "/readyz", None).status, 503);
    assert_eq!(value(&scrape(addr), "agentvisor_launcher_up", &[]), Some(0.0));
}

#[test]
fn an_exporter_without_a_database_says_so() {
    let sb = Sandbox::new();
    let exporter = start_exporter(&sb, "exporter");
    let s = scrape(&exporter.addr);
    assert_eq!(value(&s, "agentvisor_database_readable", &[]), Some(0.0));
    assert_eq!(value(&s, "agentvisor_launcher_up", &[]), Some(0.0));
    let live = get(&exporter.addr, "/livez", None);
    assert_eq!(live.status, 503);
    assert!(live.body.contains("no database"), "{}", live.body);
    let status = get(&exporter.addr, "/status.json", None);
    assert_eq!(status.status, 503);
    assert!(status.body.contains("no_database"), "{}", status.body);
    assert!(!sb.db().exists(), "the exporter created the database");
}

#[test]
fn bad_or_remote_listen_addresses_are_refused() {
    let sb = Sandbox::new();
    let serve = |args: &[&str]| sb.command(dashboard_bin()).arg("serve").args(args).output().unwrap();
    let out = serve(&["--listen", "localhost-ish"]);
    assert_eq!(out.status.code(), Some(64));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("localhost-ish") && err.contains("expected IP:PORT"), "{err}");

    let out = serve(&["--listen", "0.0.0.0:0"]);
    assert_eq!(out.status.code(), Some(64));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not a loopback address") && err.contains("--allow-remote"), "{err}");

    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().to_string();
    let out = serve(&["--listen", &port]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("cannot listen on {port}")), "{err}");

    // With the flag, any address.
    let mut c = sb.command(dashboard_bin());
    c.args(["serve", "--allow-remote", "--listen", "0.0.0.0:0"]);
    let _run = Running::spawn(c, sb.path(), "remote");
    wait_until(LIMIT, "the exporter listening on 0.0.0.0", || {
        sb.stderr_of("remote").contains("serving http://0.0.0.0:").then_some(())
    });
}

/// contrib/prometheus/check.sh against a launcher whose agents feed every panel of the Grafana
/// dashboard (tokens, cost, a custom metric, a probe, a firing alert, failed scheduled runs):
/// `promtool check rules` and `check metrics` pass, a real Prometheus scrapes the exporter, `up`
/// and `agentvisor_agent_up` come back through its HTTP API, and contrib/grafana/check.py runs
/// every dashboard query and rule expression there without error and with data.
#[test]
fn a_real_prometheus_scrapes_the_exporter() {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("contrib/prometheus/check.sh");
    let sb = Sandbox::new();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap();
    sb.script("talker.sh", TALKER);
    let (_launcher, exporter) = start_with_probe_alert_and_runs(&sb, port, TALKER_AND_SLEEPER);
    // Counters must exist before Prometheus' first scrape, or rate() has no start.
    let db = sb.db();
    wait_until(LIMIT, "the talker's cost in the database", || {
        (query_opt::<f64>(&db, "SELECT cost FROM agent_state WHERE agent = 'talker'") == Some(0.25))
            .then_some(())
    });
    let out = std::process::Command::new("sh").arg(&script).arg(&exporter.addr).output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    if out.status.code() == Some(77) {
        eprintln!("SKIPPED a_real_prometheus_scrapes_the_exporter: {}", text.trim());
        return;
    }
    assert!(out.status.success(), "{text}");
    let rules_file = std::fs::read_to_string(script.with_file_name("agentvisor-rules.yml")).unwrap();
    let rules = rules_file.lines().filter(|l| l.trim_start().starts_with("- alert:")).count();
    let dash = crate::grafana::dashboard();
    let variables = dash["templating"]["list"].as_array().map_or(0, Vec::len);
    for line in [
        format!("check.sh: promtool check rules: SUCCESS: {rules} rules found"),
        "check.sh: promtool check metrics: no problems".to_owned(),
        format!(
            "grafana/check.py: OK: {} dashboard queries ({variables} variables set to All) and {rules} rule \
             expressions evaluated without error",
            crate::grafana::queries(&dash).len()
        ),
        "check.sh: OK: prometheus".to_owned(),
    ] {
        assert!(text.contains(&line), "no {line:?} in:\n{text}");
    }
    assert!(
        text.contains("up{instance=") && text.contains("agentvisor_agent_up{agent=\"sleeper\""),
        "{text}"
    );
    // The same run with a broken query and a misspelt metric in the dashboard fails, naming both.
    let mut dash = dash;
    dash["panels"][1]["targets"][0]["expr"] = json!("sum(agentvisor_launcher_up");
    dash["panels"][2]["targets"][0]["expr"] = json!("sum(agentvisor_launcher_upp{instance=~\"$host\"})");
    let broken = sb.path().join("broken.json");
    std::fs::write(&broken, dash.to_string()).unwrap();
    let out = std::process::Command::new("sh")
        .arg(&script)
        .arg(&exporter.addr)
        .env("CHECK_DASHBOARD", &broken)
        .env("CHECK_TIMEOUT_S", "20")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    for line in [
        "Launchers up/A: bad_data",
        "Launchers down/A: no data for sum(agentvisor_launcher_upp{instance=~\".*\"})",
        "metric agentvisor_launcher_upp is used but Prometheus has no such series",
    ] {
        assert!(text.contains(line), "no {line:?} in:\n{text}");
    }
}

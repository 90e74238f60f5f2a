//! Snapshot tests of every screen with `TestBackend`. The fixtures use fixed timestamps and
//! pass a fixed `now` to the renderer, so ages, uptimes and clocks are stable without
//! redaction; paths are fixed strings.
//! The UI loop's tests (in `app.rs`) draw the same fixtures through [`normal`] and [`render`].

use super::draw;
use crate::data::{Chart, DataMsg, Detail, Loaded};
use crate::input::Action;
use crate::state::{App, Screen};
use agentvisor_shared::model::{
    AgentRow, AgentState, DesiredState, Event, Health, HostStats, LauncherSession, LogLine, Point, Severity,
    Snapshot, Stream, metric,
};
use agentvisor_shared::runs::{Spend, SpendWindows};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::style::Color;
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

/// 2026-11-18T11:06:40Z.
const NOW: i64 = 1_795_000_000_000;
const SEC: i64 = 1_000;

fn session(last_seen_ms: i64, stopped_ms: Option<i64>) -> LauncherSession {
    LauncherSession {
        id: 3,
        pid: 4242,
        host: "box".into(),
        version: "0.1.0".into(),
        config_path: Some("/srv/agentvisor/agents.toml".into()),
        started_ms: NOW - 2 * 3_600 * SEC - 180 * SEC,
        last_seen_ms,
        stopped_ms,
        exit_reason: stopped_ms.map(|_| "signal SIGTERM".into()),
        status: Some("5/7 agents running".into()),
    }
}

fn agent(name: &str, position: i64, state: AgentState, health: Health) -> AgentRow {
    let running = state.has_process();
    let mut a = crate::assess::tests::agent(name, state, health);
    a.description = format!("The {name} agent");
    a.command = vec!["sh".into(), format!("examples/agents/{name}.sh")].into();
    a.position = position;
    a.lifecycle.ready = running;
    a.lifecycle.pid = running.then_some(4250 + position);
    a.lifecycle.started_ms = Some(NOW - 812 * SEC);
    a.updated_ms = NOW - SEC;
    a.metrics = BTreeMap::from([
        (metric::CPU_PERCENT.into(), 3.1 * (position + 1) as f64),
        (metric::MEMORY_BYTES.into(), 41_943_040.0 * (position + 1) as f64),
    ]);
    a
}

fn fleet() -> Vec<AgentRow> {
    let mut researcher = agent("researcher", 0, AgentState::Running, Health::Healthy);
    researcher.capabilities = vec!["research".into(), "summarize".into()].into();
    researcher.heartbeat_timeout_ms = Some(15 * SEC);
    researcher.reported.last_heartbeat_ms = Some(NOW - 1_200);
    researcher.reported.heartbeats = 677;
    researcher.reported.status_text = Some("idle".into());
    researcher.reported.task = Some("survey of WAL readers".into());
    researcher.reported.model = Some("gpt-4o-mini".into());
    researcher.reported.tokens_in = Some(12_345);
    researcher.reported.tokens_out = Some(2_100);
    researcher.reported.cost = Some(0.42);
    researcher.metrics.insert("queue_depth".into(), 3.0);
    researcher.metrics.insert("tasks_done".into(), 40.0);
    let mut worker = agent("worker", 1, AgentState::Running, Health::Healthy);
    // An error from an earlier run: not news now that it runs again.
    worker.lifecycle.last_error = Some("exit code 1: stale".into());
    let mut summarizer = agent("summarizer", 2, AgentState::Running, Health::Healthy);
    summarizer.heartbeat_timeout_ms = Some(15 * SEC);
    summarizer.reported.last_heartbeat_ms = Some(NOW - 12 * SEC);
    summarizer.reported.status_text =
        Some("waiting for the model server to come back after a restart".into());
    let mut flaky = agent("flaky", 3, AgentState::Backoff, Health::Unknown);
    flaky.lifecycle.restarts = 3;
    flaky.lifecycle.exit_code = Some(1);
    flaky.lifecycle.last_error = Some("exit code 1: connection refused".into());
    let mut broken = agent("broken", 4, AgentState::Fatal, Health::Unknown);
    broken.lifecycle.restarts = 5;
    broken.lifecycle.exit_code = Some(2);
    broken.lifecycle.last_error = Some("crash loop: 5 restarts in 60s".into());
    let mut batch = agent("batch", 5, AgentState::Exited, Health::Unknown);
    batch.lifecycle.exit_code = Some(0);
    let mut idle = agent("spare", 6, AgentState::Stopped, Health::Unknown);
    idle.enabled = false;
    idle.desired_state = DesiredState::Stopped;
    vec![researcher, worker, summarizer, flaky, broken, batch, idle]
}

fn event(id: i64, ago_s: i64, agent: Option<&str>, kind: &str, severity: Severity, message: &str) -> Event {
    Event {
        id,
        ts_ms: NOW - ago_s * SEC,
        agent: agent.map(str::to_owned),
        kind: kind.into(),
        severity,
        message: message.into(),
    }
}

/// The latest errors: one fatal agent, a crash loop of seven crashes in three minutes, and an
/// error from yesterday.
fn problems() -> Vec<Event> {
    let mut out = vec![event(
        42,
        20,
        Some("broken"),
        "crash_loop",
        Severity::Critical,
        "crash loop: 5 restarts within 1m; giving up (no more restarts in this launcher run)",
    )];
    for i in 0..7 {
        out.push(event(
            41 - i,
            35 + 30 * i,
            Some("flaky"),
            "crashed",
            Severity::Error,
            "exited with code 1 after 20s 85ms",
        ));
    }
    out.push(event(
        20,
        86_400 + 3_600,
        Some("summarizer"),
        "spawn_failed",
        Severity::Error,
        "cannot start: model server at http://127.0.0.1:8080/v1/models answered 503 Service Unavailable",
    ));
    out
}

/// The newest events of every severity, as the overview reads them for its free rows.
fn newest_events() -> Vec<Event> {
    let mut out = vec![
        event(60, 2, Some("researcher"), "heartbeat_resumed", Severity::Info, "heartbeats resumed"),
        event(
            59,
            9,
            Some("summarizer"),
            "agent_error",
            Severity::Warning,
            "rate limited by the model server; retrying in 30 seconds",
        ),
        event(58, 15, Some("flaky"), "started", Severity::Info, "started (pid 4260)"),
        event(57, 16, Some("flaky"), "backoff", Severity::Info, "restart 3 in 4s"),
    ];
    out.extend(problems());
    out
}

fn snapshot(launcher: Option<LauncherSession>, agents: Vec<AgentRow>, problems: Vec<Event>) -> Snapshot {
    Snapshot {
        taken_ms: NOW,
        schema_version: 2,
        launcher,
        launcher_metrics: BTreeMap::new(),
        host: HostStats {
            cpu_percent: Some(12.0),
            memory_used_bytes: Some(3.1 * 1_073_741_824.0),
            memory_total_bytes: Some(7.8 * 1_073_741_824.0),
            load1: Some(0.52),
            load5: Some(0.40),
            load15: Some(0.31),
            disk_free_bytes: Some(50.0 * 1_073_741_824.0),
        },
        errors_last_hour: problems.len() as i64,
        agents,
        problems,
        db_bytes: 1_258_291,
        wal_bytes: 3_145_728,
        alerts: Vec::new(),
    }
}

fn loaded(snapshot: Snapshot) -> Loaded {
    let sparklines: HashMap<String, Vec<f64>> = snapshot
        .agents
        .iter()
        .map(|a| (a.name.clone(), (0..30).map(|i| ((i * (a.position + 3)) % 11) as f64).collect()))
        .collect();
    Loaded {
        snapshot,
        sparklines,
        detail: None,
        events: Some(newest_events()),
        spend: Some(SpendWindows {
            today: Spend { tokens_in: 1_234_567, tokens_out: 89_012, cost: 12.3456 },
            last_hour: Spend { tokens_in: 45_000, tokens_out: 6_000, cost: 0.75 },
        }),
        read_time: Duration::from_micros(2_100),
    }
}

fn app_with(snapshot: Snapshot) -> App {
    let mut app = App::new(true);
    app.now_ms = NOW;
    // Not the machine's zone, whatever that is, and not UTC: times are converted.
    app.zone = crate::format::Zone::Fixed(chrono::FixedOffset::east_opt(3_600).unwrap());
    app.on_data(DataMsg::Loaded(Box::new(loaded(snapshot))));
    app
}

pub(crate) fn normal() -> App {
    app_with(snapshot(Some(session(NOW - 400, None)), fleet(), problems()))
}

pub(crate) fn render(app: &App, width: u16, height: u16) -> Terminal<TestBackend> {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal.draw(|f| draw(f, app)).unwrap();
    terminal
}

macro_rules! screen {
    ($name:literal, $app:expr, $w:expr, $h:expr) => {
        insta::assert_snapshot!($name, render(&$app, $w, $h).backend())
    };
}

#[test]
fn normal_system() {
    screen!("normal_80x24", normal(), 80, 24);
}

#[test]
fn wide_terminal() {
    screen!("wide_180x30", normal(), 180, 30);
}

/// The launcher refused the config on disk: the header says so, with the file, line, column
/// and reason, until it is fixed.
#[test]
fn invalid_config_on_disk() {
    let mut launcher = session(NOW - 400, None);
    launcher.status = Some(
        "5/7 agents running; config error: /srv/agentvisor/agents.toml:9:11: agent \"b\", field `restart`: \
         unknown variant `sometimes`, expected one of `always`, `on-failure`, `never`"
            .into(),
    );
    let app = app_with(snapshot(Some(launcher), fleet(), problems()));
    screen!("config_error_80x24", app, 80, 24);
    screen!("config_error_160x45", app, 160, 45);
}

#[test]
fn tiny_terminal() {
    screen!("tiny_50x12", normal(), 50, 12);
}

#[test]
fn empty_database() {
    screen!("empty_80x24", app_with(snapshot(Some(session(NOW - 400, None)), vec![], vec![])), 80, 24);
}

#[test]
fn waiting_for_database() {
    let mut app = App::new(true);
    app.on_data(DataMsg::Waiting {
        path: "/srv/agentvisor/state.db".into(),
        how: "from $SHARED_STATE_SQLITE".into(),
        reason: "The file does not exist yet: the launcher creates it on its first start.".into(),
    });
    screen!("waiting_80x24", app, 80, 24);
}

#[test]
fn newer_schema() {
    let mut app = App::new(true);
    app.on_data(DataMsg::Failed {
        path: "/srv/agentvisor/state.db".into(),
        how: "from the command line".into(),
        message: "/srv/agentvisor/state.db has schema version 9, newer than the 2 this program knows; upgrade agentvisor"
            .into(),
    });
    screen!("newer_schema_80x24", app, 80, 24);
}

#[test]
fn launcher_down() {
    let stopped = NOW - 192 * SEC;
    screen!(
        "launcher_down_80x24",
        app_with(snapshot(Some(session(stopped, Some(stopped))), fleet(), problems())),
        80,
        24
    );
    let stale = app_with(snapshot(Some(session(NOW - 9 * SEC, None)), fleet(), problems()));
    let text = render(&stale, 80, 24).backend().to_string();
    assert!(text.contains("LAUNCHER STALE: not seen since 12:06:31 UTC+01:00 (9.0s ago)"), "{text}");
}

#[test]
fn crash_looping_agent() {
    let mut agents = vec![agent("worker", 0, AgentState::Running, Health::Healthy)];
    let mut looping = agent("looper", 1, AgentState::Backoff, Health::Unknown);
    looping.lifecycle.restarts = 17;
    looping.lifecycle.last_error = Some("exit code 1".into());
    agents.push(looping);
    let problems: Vec<Event> = (0..6)
        .map(|i| {
            event(
                100 - i,
                4 * i,
                Some("looper"),
                "crashed",
                Severity::Error,
                "exited with code 1; restarting in 8s",
            )
        })
        .collect();
    let app = app_with(snapshot(Some(session(NOW - 400, None)), agents, problems));
    screen!("crash_loop_80x24", app, 80, 24);
}

pub(crate) fn detail_app() -> App {
    let mut app = normal();
    app.apply(Action::Open);
    assert_eq!(app.screen, Screen::Detail);
    let series = |f: &dyn Fn(i64) -> f64| -> Vec<Point> {
        (0..60)
            .map(|i| {
                let v = f(i);
                Point { ts_ms: NOW - 300 * SEC + i * 5 * SEC, value: v, min: v, max: v, count: 5 }
            })
            .collect()
    };
    let logs = (0..30)
        .map(|i| LogLine {
            id: i,
            agent: "researcher".into(),
            stream: if i % 7 == 6 { Stream::Stderr } else { Stream::Stdout },
            ts_ms: NOW - (30 - i) * SEC,
            line: format!("step {i}: fetched {} documents", i * 3),
        })
        .collect();
    let detail = Detail {
        agent: "researcher".into(),
        window: app.window,
        config: Some(serde_json::json!({
            "name": "researcher", "command": "sh", "restart": "on-failure", "max_restarts": 5,
            "heartbeat_timeout": "15s", "env": {"LOG_LEVEL": null}, "depends_on": ["store"]
        })),
        charts: vec![
            Chart { metric: metric::CPU_PERCENT.into(), points: series(&|i| (i % 10) as f64 * 1.5) },
            Chart { metric: metric::MEMORY_BYTES.into(), points: series(&|i| 40e6 + (i * 1000) as f64) },
            Chart { metric: "queue_depth".into(), points: series(&|i| (i % 4) as f64) },
            // A counter: one task every 5 s, after a restart from zero at the 20th point.
            Chart {
                metric: "tasks_done".into(),
                points: series(&|i| if i < 20 { 120.0 + i as f64 } else { (i - 20) as f64 }),
            },
            Chart { metric: "latency_ms".into(), points: vec![] },
        ],
        events: vec![
            event(53, 60, Some("researcher"), "heartbeat_missed", Severity::Warning, "no heartbeat for 15s"),
            event(52, 150, Some("researcher"), "started", Severity::Info, "started, pid 4250"),
            event(51, 199, Some("researcher"), "backoff", Severity::Info, "restart 1 in 1s"),
            event(50, 200, Some("researcher"), "crashed", Severity::Error, "exited with code 1"),
            event(30, 812, Some("researcher"), "started", Severity::Info, "started, pid 4250"),
        ],
        logs,
        runs: vec![],
        tasks: vec![],
        run_output: None,
    };
    if let Some(d) = app.data.as_mut() {
        d.detail = Some(detail);
    }
    app
}

#[test]
fn detail_screen() {
    screen!("detail_100x30", detail_app(), 100, 30);
    let mut scrolled = detail_app();
    scrolled.apply(Action::Move(-500));
    assert_eq!(scrolled.log_scroll, 30, "scrolling stops at the oldest line");
    scrolled.apply(Action::Move(25));
    screen!("detail_80x24_scrolled", scrolled, 80, 24);
}

#[test]
fn detail_screen_with_probes() {
    use agentvisor_shared::probes::{ProbeRole, ProbeState, ProbeStatus};
    let mut app = detail_app();
    let probe = |probe, kind: &str, target: &str, state, ok, failures, message: &str| ProbeStatus {
        agent: "researcher".into(),
        probe,
        kind: kind.into(),
        target: target.into(),
        state,
        last_ok: Some(ok),
        last_ms: Some(NOW - 400),
        latency_ms: Some(if ok { 1.25 } else { 1000.0 }),
        consecutive_successes: i64::from(ok),
        consecutive_failures: failures,
        message: Some(message.into()),
    };
    if let Some(d) = app.data.as_mut() {
        d.snapshot.agents[0].probes = vec![
            probe(
                ProbeRole::Readiness,
                "http",
                "http://127.0.0.1:8080/healthz",
                ProbeState::Passing,
                true,
                0,
                "HTTP 200",
            ),
            probe(
                ProbeRole::Liveness,
                "exec",
                "test -f /run/ok",
                ProbeState::Failing,
                false,
                3,
                "no answer within 1s",
            ),
        ];
    }
    screen!("detail_probes_100x30", app, 100, 30);
}

#[test]
fn events_screen() {
    let mut app = normal();
    app.apply(Action::NextScreen);
    let mut events = problems();
    events.push(event(39, 36, Some("flaky"), "started", Severity::Info, "started, pid 4260"));
    events.push(event(38, 50, None, "launcher_started", Severity::Info, "launcher 0.1.0 started on box"));
    if let Some(d) = app.data.as_mut() {
        d.events = Some(events);
    }
    app.apply(Action::Move(1));
    screen!("events_100x20", app, 100, 20);
}

#[test]
fn help_overlay() {
    let mut app = normal();
    app.apply(Action::ToggleHelp);
    screen!("help_80x24", app, 80, 24);
}

#[test]
fn filter_prompt_and_sorted_table() {
    let mut app = normal();
    app.apply(Action::CycleSort);
    app.apply(Action::CycleSort);
    app.apply(Action::StartFilter);
    for c in "r".chars() {
        app.apply(Action::Char(c));
    }
    screen!("filter_editing_80x24", app, 80, 24);
}

/// Fatal agents stand out in colour, and `NO_COLOR` removes every colour but keeps them
/// reversed and bold.
#[test]
fn colour_and_no_colour() {
    let find_fatal = |t: &Terminal<TestBackend>| {
        let buf = t.backend().buffer();
        let area = buf.area;
        (0..area.height)
            .flat_map(|y| (0..area.width).map(move |x| (x, y)))
            .find(|&(x, y)| {
                buf[(x, y)].symbol() == "f"
                    && buf[(x + 1, y)].symbol() == "a"
                    && buf[(x + 2, y)].symbol() == "t"
            })
            .map(|p| buf[p].clone())
    };
    let colour = render(&normal(), 80, 24);
    let cell = find_fatal(&colour).unwrap();
    assert_eq!(cell.bg, Color::Red);
    let mut plain_app = normal();
    plain_app.color = false;
    let plain = render(&plain_app, 80, 24);
    let cell = find_fatal(&plain).unwrap();
    assert!(cell.modifier.contains(ratatui::style::Modifier::REVERSED));
    let buf = plain.backend().buffer();
    assert!(
        buf.content().iter().all(|c| c.fg == Color::Reset && c.bg == Color::Reset),
        "NO_COLOR still coloured"
    );
}

/// Finds the first cell of `text` on screen.
fn cell_of(t: &Terminal<TestBackend>, text: &str) -> Option<(u16, u16)> {
    let buf = t.backend().buffer();
    let area = buf.area;
    let n = text.chars().count() as u16;
    (0..area.height).flat_map(|y| (0..area.width.saturating_sub(n)).map(move |x| (x, y))).find(|&(x, y)| {
        text.chars().enumerate().all(|(i, c)| buf[(x + i as u16, y)].symbol() == c.to_string())
    })
}

/// Every agent in trouble has its name drawn readably: a fatal one was red on red.
#[test]
fn trouble_names_are_readable() {
    let t = render(&normal(), 80, 24);
    for name in ["broken", "flaky"] {
        let (x, y) = cell_of(&t, &format!("! {name}")).unwrap();
        let cell = &t.backend().buffer()[(x + 2, y)];
        assert_eq!(cell.fg, Color::Red, "{name}");
        assert_ne!(cell.fg, cell.bg, "{name} drawn in its own background");
    }
}

/// Whatever row is selected, its text stays legible: dim text (dark grey) was drawn on the
/// dark grey selection.
#[test]
fn selected_rows_are_legible() {
    let mut app = normal();
    let mut events = normal();
    events.apply(Action::NextScreen);
    if let Some(d) = events.data.as_mut() {
        d.events = Some(problems());
    }
    let selection = super::theme::Theme { color: true }.selected().bg;
    for app in [&mut app, &mut events] {
        for _ in 0..8 {
            let t = render(app, 100, 30);
            let buf = t.backend().buffer();
            let selected: Vec<u16> = (0..buf.area.height)
                .filter(|&y| (0..buf.area.width).any(|x| Some(buf[(x, y)].bg) == selection))
                .collect();
            assert_eq!(selected.len(), 1, "one selected row");
            for x in 0..buf.area.width {
                let cell = &buf[(x, selected[0])];
                if cell.symbol().trim().is_empty() {
                    continue;
                }
                assert_ne!(cell.fg, cell.bg, "{:?} at {x}", cell.symbol());
                assert_ne!(cell.fg, Color::DarkGray, "{:?} at {x}", cell.symbol());
                assert!(!cell.modifier.contains(ratatui::style::Modifier::DIM), "{:?} at {x}", cell.symbol());
            }
            app.apply(Action::Move(1));
        }
    }
}

/// After a stop the overview shows neither the signal that carried it out nor the last task.
#[test]
fn a_stopped_agent_reads_as_stopped() {
    let mut app = normal();
    if let Some(d) = app.data.as_mut() {
        let r = &mut d.snapshot.agents[0];
        r.lifecycle.state = AgentState::Stopped;
        r.desired_state = DesiredState::Stopped;
        r.lifecycle.pid = None;
        r.lifecycle.exit_signal = Some(15);
        r.reported.status_text = None;
    }
    let t = render(&app, 180, 30);
    assert!(cell_of(&t, "stopped on request").is_some());
    assert!(cell_of(&t, "signal 15").is_none());
    assert!(cell_of(&t, "survey of WAL").is_none(), "the last task");
    if let Some(d) = app.data.as_mut() {
        d.snapshot.agents[0].stopped_by = Some("alice (ctl)".into());
    }
    assert!(cell_of(&render(&app, 180, 30), "stopped by alice (ctl)").is_some());
}

fn events_app() -> App {
    let mut app = normal();
    app.apply(Action::NextScreen);
    if let Some(d) = app.data.as_mut() {
        d.events = Some(newest_events());
    }
    app
}

fn event_detail_app() -> App {
    let mut app = events_app();
    // The spawn failure of yesterday, with its long message.
    app.apply(Action::Move(12));
    app.apply(Action::Open);
    assert_eq!(app.screen, Screen::EventDetail);
    app
}

/// Every screen at the two sizes an operator is most likely to have: 80x24 and 160x45.
#[test]
fn every_screen_at_80x24_and_160x45() {
    let mut help = normal();
    help.apply(Action::ToggleHelp);
    let mut filtering = events_app();
    filtering.apply(Action::CycleSeverity);
    filtering.apply(Action::StartFilter);
    for c in "flaky colour:red".chars() {
        filtering.apply(Action::Char(c));
    }
    let screens = [
        ("overview", normal()),
        ("detail", detail_app()),
        ("events", events_app()),
        ("event_detail", event_detail_app()),
        ("help", help),
        ("events_filter", filtering),
    ];
    for (name, app) in screens {
        for (w, h) in [(80, 24), (160, 45)] {
            insta::assert_snapshot!(format!("{name}_{w}x{h}"), render(&app, w, h).backend());
        }
    }
}

/// Long texts are shown whole, or cut at a word boundary with `…`: text cut mid-word read as
/// if it were whole.
#[test]
fn cut_text_ends_with_an_ellipsis_at_a_word_boundary() {
    let long = [
        "waiting for the model server to come back after a restart",
        "cannot start: model server at http://127.0.0.1:8080/v1/models answered 503 Service Unavailable",
        "crash loop: 5 restarts within 1m; giving up (no more restarts in this launcher run)",
        "rate limited by the model server; retrying in 30 seconds",
    ];
    for app in [normal(), events_app(), event_detail_app()] {
        for (w, h) in [(80, 24), (160, 45)] {
            let text = render(&app, w, h).backend().to_string();
            for whole in long {
                for row in text.lines() {
                    let Some(at) = row.find(&whole[..14]) else { continue };
                    let rest = &row[at..];
                    let shown = match rest.find('…') {
                        Some(end) => &rest[..end + '…'.len_utf8()],
                        None => rest.split("  ").next().unwrap_or(rest).trim_end_matches(['"', ' ']),
                    };
                    if let Some(cut) = shown.strip_suffix('…') {
                        assert!(whole.starts_with(cut), "{w}x{h}: {shown:?} is not a prefix of {whole:?}");
                        let next = whole[cut.len()..].chars().next();
                        assert!(
                            cut.len() < whole.len() / 2
                                || next.is_none_or(char::is_whitespace)
                                || cut.ends_with(char::is_whitespace),
                            "{w}x{h}: {shown:?} cut mid-word"
                        );
                    } else {
                        assert!(whole.starts_with(shown), "{w}x{h}: {shown:?}");
                        // Whole unless a wrapped line (event detail) goes on on the next row.
                        assert!(
                            shown == whole || app.screen == Screen::EventDetail,
                            "{w}x{h}: {shown:?} cut without …"
                        );
                    }
                }
            }
        }
    }
}

/// The help overlay fits 80x24: every key is there, and no description wraps back to the
/// box's first column.
#[test]
fn help_fits_80x24() {
    let mut app = normal();
    app.apply(Action::ToggleHelp);
    let t = render(&app, 80, 24);
    let text = t.backend().to_string();
    for (keys, _) in crate::input::HELP {
        assert!(text.contains(keys), "{keys} missing:\n{text}");
    }
    assert!(text.contains("Read-only"));
    let buf = t.backend().buffer();
    let (top, _) = cell_of(&t, "┌").unwrap();
    let _ = top;
    for y in 0..24 {
        if buf[(0, y)].symbol() == "│" {
            assert_eq!(buf[(1, y)].symbol(), " ", "row {y} starts at the box's edge");
        }
    }
}

/// Charts say what they show: the agent's newest value (not a bucket mean) in the title, a
/// counter as its rate, a scale with units, and time labels.
#[test]
fn charts_have_values_scales_and_times() {
    let app = detail_app();
    let text = render(&app, 160, 45).backend().to_string();
    for want in ["CPU 3.1%", "memory 40.0M", "queue_depth 3", "20%", "50.0M", "12:01:40", "now"] {
        assert!(text.contains(want), "{want:?} missing:\n{text}");
    }
    assert!(text.contains("tasks_done 40 · 0.2/s") && text.contains("0.25/s"), "a counter's rate:\n{text}");
    // Every chart fits at 160 columns: `m` has nothing to page, and the screen does not offer it.
    let wide = ratatui::layout::Rect::new(0, 0, 160, 45);
    assert!(crate::view::detail::all_charts_fit(&app, wide) && !text.contains("(m)"), "{text}");
    let narrow = ratatui::layout::Rect::new(0, 0, 80, 24);
    assert!(!crate::view::detail::all_charts_fit(&app, narrow));
}

/// A 1 % blip among zeros is a low bar on the CPU sparkline, not a full one.
#[test]
fn sparklines_are_not_blown_up_by_blips() {
    let mut app = normal();
    if let Some(d) = app.data.as_mut() {
        for v in d.sparklines.values_mut() {
            *v = vec![0.0; 30];
        }
        d.sparklines.insert("researcher".into(), [vec![0.0; 20], vec![1.0], vec![0.0; 9]].concat());
    }
    let t = render(&app, 160, 45);
    let text = t.backend().to_string();
    let row = text.lines().find(|l| l.contains("researcher")).unwrap();
    assert!(!row.contains('█') && row.contains('▂'), "{row}");
    assert!(text.contains("CPU 0–10%"), "the scale is named:\n{text}");
}

/// The sorted column is marked, and `S` turns the order round.
#[test]
fn sort_indicator_and_reverse() {
    let mut app = normal();
    for _ in 0..3 {
        app.apply(Action::CycleSort);
    }
    let text = render(&app, 160, 45).backend().to_string();
    assert!(text.contains("CPU%▼"), "{text}");
    let row = |t: &str, name: &str| t.lines().position(|l| l.contains(&format!("  {name} ")));
    assert!(row(&text, "spare") < row(&text, "researcher"), "highest CPU first");
    app.apply(Action::ReverseSort);
    let text = render(&app, 160, 45).backend().to_string();
    assert!(text.contains("CPU%▲") && text.contains("reversed"), "{text}");
    assert!(row(&text, "spare") > row(&text, "researcher"), "lowest CPU first");
}

/// No screen panics or misdraws at any size, down to a single cell.
#[test]
fn every_screen_draws_at_any_size() {
    let mut apps = vec![normal(), detail_app(), App::new(false)];
    let mut events = normal();
    events.apply(Action::NextScreen);
    apps.push(events);
    let mut help = normal();
    help.apply(Action::ToggleHelp);
    apps.push(help);
    for app in &apps {
        for (w, h) in [(1, 1), (2, 3), (10, 4), (20, 6), (33, 9), (64, 15), (79, 23), (300, 100)] {
            render(app, w, h);
        }
    }
}

/// Text from agents (status, output lines) cannot smuggle escape sequences into the
/// operator's terminal: control characters never reach the screen buffer.
#[test]
fn control_characters_from_agents_are_not_drawn() {
    let mut app = detail_app();
    if let Some(d) = app.data.as_mut() {
        d.snapshot.agents[0].reported.status_text = Some("evil\x1b[2J\x07text".into());
        if let Some(detail) = d.detail.as_mut() {
            detail.logs[29].line = "\x1b]0;owned\x07\x1b[31mred".into();
        }
    }
    for screen in [Screen::Detail, Screen::Overview] {
        app.screen = screen;
        let t = render(&app, 120, 30);
        assert!(t.backend().buffer().content().iter().all(|c| !c.symbol().contains(char::is_control)));
    }
}

/// Two rules firing: the header counts them, the agents' rows are marked, and the Alerts
/// screen (`a`) lists them with rule, agent, severity, since and value.
#[test]
fn alerts_firing() {
    use agentvisor_shared::model::FiringAlert;
    let mut s = snapshot(Some(session(NOW - 400, None)), fleet(), problems());
    let agent = s.agents[1].name.clone();
    s.alerts = vec![
        FiringAlert {
            rule: "fat".into(),
            agent: s.agents[0].name.clone(),
            severity: Severity::Error,
            since_ms: NOW - 125 * SEC,
            value: Some(612.0 * 1_048_576.0),
            message: "fat: memory_bytes 612MiB > 500MiB".into(),
        },
        FiringAlert {
            rule: "spend".into(),
            agent,
            severity: Severity::Warning,
            since_ms: NOW - 40 * SEC,
            value: Some(4.125),
            message: "spend: cost per_hour 4.125 > 2".into(),
        },
    ];
    let mut app = app_with(s);
    screen!("alerts_overview_120x24", app, 120, 24);
    app.apply(Action::Alerts);
    assert_eq!(app.screen, Screen::Alerts);
    app.apply(Action::Move(1));
    screen!("alerts_screen_120x24", app, 120, 24);
    app.apply(Action::Open);
    assert_eq!(app.screen, Screen::Detail, "Enter opens the alert's agent");
}

/// A scheduled agent between runs: the overview says when it runs next and how the last run
/// ended; the detail screen lists its runs (next due time in the title) and tasks, and Enter
/// shows the selected run's output.
fn scheduled_app() -> App {
    use agentvisor_shared::model::{LastRun, RunOutcome, RunTrigger, TaskOutcome};
    use agentvisor_shared::runs::Run;
    use agentvisor_shared::tasks::Task;
    let mut app = normal();
    let run = |id: i64, ago: i64, trigger: RunTrigger, outcome: Option<RunOutcome>, code: Option<i64>| Run {
        id,
        session_id: Some(3),
        agent: "researcher".into(),
        trigger,
        attempt: 0,
        user: (trigger == RunTrigger::Manual).then(|| "alice".to_owned()),
        subject: None,
        detail: None,
        due_ms: Some(NOW - ago * SEC),
        started_ms: NOW - ago * SEC,
        ended_ms: outcome.map(|_| NOW - ago * SEC + 42 * SEC),
        outcome,
        exit_code: code,
        exit_signal: None,
        duration_ms: outcome.map(|_| 42 * SEC),
        pid: Some(4300 + id),
        tokens_in: Some(1200),
        tokens_out: Some(300),
        cost: Some(0.0125 * id as f64),
        log_first_id: Some(id * 10),
        log_last_id: Some(id * 10 + 2),
        message: None,
    };
    let runs = vec![
        run(4, 300, RunTrigger::Schedule, Some(RunOutcome::Failed), Some(2)),
        run(3, 900, RunTrigger::Manual, Some(RunOutcome::Succeeded), Some(0)),
        run(2, 1500, RunTrigger::Schedule, Some(RunOutcome::Succeeded), Some(0)),
        run(1, 2100, RunTrigger::CatchUp, Some(RunOutcome::TimedOut), None),
    ];
    let task = |id: i64, ago: i64, text: &str, outcome: Option<TaskOutcome>| Task {
        id,
        agent: "researcher".into(),
        run_id: Some(4),
        text: text.into(),
        started_ms: NOW - ago * SEC,
        ended_ms: outcome.map(|_| NOW - ago * SEC + 12 * SEC),
        outcome,
        duration_ms: outcome.map(|_| 12 * SEC),
        tokens_in: Some(800),
        tokens_out: Some(120),
        cost: Some(0.004),
    };
    let tasks = vec![
        task(9, 280, "summarise inbox", Some(TaskOutcome::Failed)),
        task(8, 295, "fetch mail", Some(TaskOutcome::Ok)),
    ];
    if let Some(d) = app.data.as_mut() {
        for a in &mut d.snapshot.agents {
            if a.name == "researcher" {
                a.lifecycle.state = AgentState::Scheduled;
                a.lifecycle.pid = None;
                a.reported.status_text = None;
                a.next_run_ms = Some(NOW + 300 * SEC);
                a.last_run = Some(LastRun {
                    id: 4,
                    trigger: RunTrigger::Schedule,
                    outcome: RunOutcome::Failed,
                    started_ms: NOW - 300 * SEC,
                    ended_ms: Some(NOW - 258 * SEC),
                    duration_ms: Some(42 * SEC),
                    exit_code: Some(2),
                    exit_signal: None,
                    cost: Some(0.05),
                });
            }
        }
    }
    let mut app = {
        let mut detail = detail_app();
        detail.data.as_mut().unwrap().snapshot = app.data.as_ref().unwrap().snapshot.clone();
        app = detail;
        app
    };
    let output = (0..3)
        .map(|i| LogLine {
            id: 40 + i,
            agent: "researcher".into(),
            stream: if i == 2 { Stream::Stderr } else { Stream::Stdout },
            ts_ms: NOW - 300 * SEC + i * SEC,
            line: format!("manual run line {i}"),
        })
        .collect();
    if let Some(d) = app.data.as_mut().and_then(|d| d.detail.as_mut()) {
        d.runs = runs;
        d.tasks = tasks;
        d.run_output = Some((3, output));
    }
    app
}

#[test]
fn scheduled_agent_runs_and_tasks() {
    let app = scheduled_app();
    screen!("detail_runs_120x36", app, 120, 36);
    let mut opened = scheduled_app();
    opened.apply(Action::RunCursor(1));
    opened.apply(Action::Open);
    assert_eq!(opened.run_open, Some(3), "Enter opens the selected run");
    screen!("detail_run_output_120x36", opened, 120, 36);
    opened.apply(Action::Back);
    assert_eq!((opened.run_open, opened.screen), (None, Screen::Detail), "Esc closes the run first");
    opened.apply(Action::Back);
    assert_eq!(opened.screen, Screen::Overview);
    screen!("overview_scheduled_120x24", opened, 120, 24);
}

//! One agent: what it is, how it runs, charts over the chosen window, its events and the tail
//! of its captured output.

use super::overview::event_line;
use super::runs;
use super::theme::Theme;
use super::timeline;
use super::widgets::{footer, with_footer};
use crate::assess::Heartbeat;
use crate::assess::exit_text;
use crate::data::{Chart, Detail, Window};
use crate::format;
use crate::state::App;
use agentvisor_shared::model::{AgentRow, LogLine, Stream, metric};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Axis, Block, Borders, Dataset, GraphType, Paragraph};

/// Narrowest chart worth drawing; fewer charts are shown side by side on narrow terminals.
const MIN_CHART_WIDTH: u16 = 26;

pub fn draw(frame: &mut Frame<'_>, area: Rect, app: &App, theme: Theme) {
    let (body, foot) = with_footer(area);
    let name = app.detail_agent.as_deref().unwrap_or_default();
    let hints = format!(
        "Esc back · w/1-5 window · ↑↓ scroll output · control: agentvisor-launcher ctl restart|stop|start {name}"
    );
    frame.render_widget(Paragraph::new(footer(app, &hints, theme)), foot);
    let Some(agent) = app.agents().iter().find(|a| a.name == name) else {
        let text = format!(" {name} is no longer registered (removed from the config). Esc goes back.");
        frame.render_widget(Paragraph::new(Line::styled(text, theme.warn())), body);
        return;
    };
    let detail = app.data.as_ref().and_then(|d| d.detail.as_ref()).filter(|d| d.agent == name);
    let charts_height = if body.height >= 30 { 10 } else { 7 };
    let [title, info, charts, bottom] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(7),
        Constraint::Length(charts_height),
        Constraint::Fill(1),
    ])
    .areas(body);
    let mut title_spans = title_line(agent, app.window, theme);
    if let Some(note) = detail.and_then(|d| charts_note(d.charts.len(), charts.width, app.chart_offset)) {
        title_spans.push_span(Span::styled(note, theme.dim()));
    }
    frame.render_widget(Paragraph::new(title_spans), title);
    let mut info_lines = info_lines(agent, detail, app.now_ms, theme);
    let width = usize::from(info.width.saturating_sub(10));
    let events = detail.map(|d| d.events.as_slice()).unwrap_or_default();
    let ready = timeline::ReadyWhen::of(detail.and_then(|d| d.config.as_ref()));
    let steps =
        timeline::steps(events, ready, agent.lifecycle.state, app.now_ms, app.window.span_ms(), width);
    info_lines.push(timeline::line(&steps, theme));
    frame.render_widget(Paragraph::new(info_lines), info);
    match detail {
        Some(d) => draw_charts(frame, charts, &d.charts, app, theme),
        None => frame.render_widget(Paragraph::new(Line::styled(" loading…", theme.dim())), charts),
    }
    let [events, logs] =
        Layout::horizontal([Constraint::Percentage(40), Constraint::Percentage(60)]).spacing(1).areas(bottom);
    let (runs, tasks) = detail.map(|d| (d.runs.as_slice(), d.tasks.as_slice())).unwrap_or_default();
    let events = if runs::has_any(agent, runs, tasks) {
        let wanted = runs::height(runs, tasks, events.height / 2);
        let [events, listed] =
            Layout::vertical([Constraint::Fill(1), Constraint::Length(wanted)]).areas(events);
        runs::draw(frame, listed, app, agent, runs, tasks, theme);
        events
    } else {
        events
    };
    draw_events(frame, events, detail, theme);
    if !runs::draw_output(frame, logs, app, runs, detail.and_then(|d| d.run_output.as_ref()), theme) {
        draw_logs(frame, logs, detail, app.log_scroll, theme);
    }
}

fn title_line(a: &AgentRow, window: Window, theme: Theme) -> Line<'static> {
    let mut spans = vec![
        Span::styled(format!(" {} ", a.name), theme.title()),
        Span::styled(format!(" {} ", a.lifecycle.state), theme.state(a.lifecycle.state)),
        Span::styled(format!(" {} ", a.lifecycle.health), theme.health(a.lifecycle.health)),
        Span::raw(if a.lifecycle.ready { " ready" } else { " not ready" }),
        Span::raw("  "),
    ];
    for w in Window::ALL {
        // Brackets mark the window without colour too.
        let (text, style) = if w == window {
            (format!("[{}]", w.label()), theme.selected())
        } else {
            (format!(" {} ", w.label()), theme.dim())
        };
        spans.push(Span::styled(text, style));
    }
    Line::from(spans)
}

fn info_lines(a: &AgentRow, detail: Option<&Detail>, now_ms: i64, theme: Theme) -> Vec<Line<'static>> {
    let label = |s: &str| Span::styled(format!(" {s} "), theme.dim());
    let description =
        if a.description.is_empty() { "(no description)".to_owned() } else { a.description.clone() };
    let caps = if a.capabilities.is_empty() { "none".to_owned() } else { a.capabilities.join(", ") };
    let uptime = match a.lifecycle.started_ms {
        Some(t) if a.lifecycle.state.has_process() => format!("up {}", format::duration_ms(now_ms - t)),
        _ => "not running".to_owned(),
    };
    let mut run = format!(
        "pid {} · {uptime} · restarts {}",
        a.lifecycle.pid.map_or("—".to_owned(), |p| p.to_string()),
        a.lifecycle.restarts
    );
    let exit = exit_text(a);
    if !exit.is_empty() {
        run.push_str(&format!(" · last exit: {exit}"));
    }
    let beat = match Heartbeat::of(a, now_ms) {
        Heartbeat::ProcessOnly => {
            "process only: the agent sends no heartbeats, liveness is its process".to_owned()
        }
        Heartbeat::None => format!("no heartbeat yet (timeout {})", timeout(a)),
        Heartbeat::Seen { age_ms, .. } => {
            format!(
                "last {} ago (timeout {}) · {} heartbeats",
                format::duration_ms(age_ms),
                timeout(a),
                a.reported.heartbeats
            )
        }
    };
    let mut work = Vec::new();
    for (k, v) in
        [("status", &a.reported.status_text), ("task", &a.reported.task), ("model", &a.reported.model)]
    {
        if let Some(v) = v {
            work.push(format!("{k} {v}"));
        }
    }
    if a.reported.tokens_in.is_some() || a.reported.tokens_out.is_some() {
        let t = |v: Option<i64>| v.map_or("—".to_owned(), format::count);
        work.push(format!("tokens {} in / {} out", t(a.reported.tokens_in), t(a.reported.tokens_out)));
    }
    if let Some(c) = a.reported.cost {
        work.push(format!("cost {c:.2}"));
    }
    let mut last =
        vec![label("doing"), Span::raw(if work.is_empty() { "—".to_owned() } else { work.join(" · ") })];
    if let Some(err) = &a.lifecycle.last_error {
        last.push(Span::styled(format!("  last error: {err}"), theme.bad()));
    }
    vec![
        Line::from(vec![Span::raw(" "), Span::styled(description, theme.dim())]),
        Line::from(vec![
            label("command"),
            Span::raw(a.command.join(" ")),
            label("capabilities"),
            Span::raw(caps),
        ]),
        Line::from(vec![label("config"), Span::raw(config_summary(detail.and_then(|d| d.config.as_ref())))]),
        Line::from(vec![label("process"), Span::raw(run)]),
        Line::from(vec![label("heartbeat"), Span::styled(beat, theme.heartbeat(Heartbeat::of(a, now_ms)))]),
        Line::from(last),
    ]
}

fn timeout(a: &AgentRow) -> String {
    a.heartbeat_timeout_ms.map_or("none".to_owned(), format::duration_ms)
}

/// The config's settings as `key=value`, skipping what other lines already show and empty
/// lists; nested tables one level deep as `key={a=1,b=2}`. The environment appears by variable
/// names only (the launcher never stores the values).
fn config_summary(config: Option<&serde_json::Value>) -> String {
    const SHOWN_ELSEWHERE: &[&str] = &["name", "description", "command", "args", "capabilities"];
    let Some(serde_json::Value::Object(map)) = config else { return "—".to_owned() };
    let parts: Vec<String> = map
        .iter()
        .filter(|(k, _)| !SHOWN_ELSEWHERE.contains(&k.as_str()))
        .filter_map(|(k, v)| config_value(v).map(|v| format!("{k}={v}")))
        .collect();
    if parts.is_empty() { "defaults".to_owned() } else { parts.join(" ") }
}

fn config_value(v: &serde_json::Value) -> Option<String> {
    use serde_json::Value;
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        Value::Number(_) | Value::Bool(_) => Some(v.to_string()),
        Value::Array(a) if a.is_empty() => None,
        Value::Array(a) => {
            Some(format!("[{}]", a.iter().filter_map(config_value).collect::<Vec<_>>().join(",")))
        }
        Value::Object(o) if o.is_empty() => None,
        Value::Object(o) => Some(format!(
            "{{{}}}",
            o.iter()
                .map(|(k, v)| match v {
                    Value::Object(_) | Value::Array(_) | Value::Null => k.clone(),
                    _ => format!("{k}={}", config_value(v).unwrap_or_default()),
                })
                .collect::<Vec<_>>()
                .join(",")
        )),
    }
}

/// As many charts as fit side by side, starting at the state's chart offset (wrapping), so
/// `m` brings every custom metric into view on a narrow terminal.
fn draw_charts(frame: &mut Frame<'_>, area: Rect, charts: &[Chart], app: &App, theme: Theme) {
    let fit = usize::from((area.width / MIN_CHART_WIDTH).max(1)).min(charts.len());
    let first = if charts.is_empty() { 0 } else { app.chart_offset % charts.len() };
    let areas = Layout::horizontal(vec![Constraint::Fill(1); fit]).spacing(1).split(area);
    for (i, area) in areas.iter().enumerate() {
        draw_chart(frame, *area, &charts[(first + i) % charts.len()], app, theme);
    }
}

/// "charts 2-4/5 (m)" when not all charts fit, for the title line.
fn charts_note(charts: usize, width: u16, offset: usize) -> Option<String> {
    let fit = usize::from((width / MIN_CHART_WIDTH).max(1));
    (charts > fit).then(|| {
        format!(" · charts {}-{}/{charts} (m)", offset % charts + 1, (offset % charts + fit - 1) % charts + 1)
    })
}

fn chart_value(metric_name: &str, v: f64) -> String {
    match metric_name {
        metric::MEMORY_BYTES => format::bytes(v),
        metric::CPU_PERCENT => format!("{v:.1}%"),
        metric::HEARTBEAT_GAP_S => format!("{v:.1}s"),
        _ => format::number(v),
    }
}

fn draw_chart(frame: &mut Frame<'_>, area: Rect, chart: &Chart, app: &App, theme: Theme) {
    let name = chart.metric.as_str();
    let max = chart.points.iter().map(|p| p.max).fold(0.0_f64, f64::max);
    let last = chart.points.last().map(|p| chart_value(name, p.value));
    let title = match &last {
        Some(v) => format!(" {name} {v} (max {}) ", chart_value(name, max)),
        None => format!(" {name} "),
    };
    let block = Block::new().borders(Borders::TOP).title(Span::styled(title, theme.title()));
    if chart.points.is_empty() {
        let text = Paragraph::new(Line::styled(
            format!(" no samples in the last {}", app.window.label()),
            theme.dim(),
        ));
        frame.render_widget(text.block(block), area);
        return;
    }
    let start = (app.now_ms - app.window.span_ms()) as f64;
    let data: Vec<(f64, f64)> = chart.points.iter().map(|p| (p.ts_ms as f64, p.value)).collect();
    let dataset = Dataset::default()
        .marker(Marker::Braille)
        .graph_type(GraphType::Line)
        .style(theme.good())
        .data(&data);
    let widget = ratatui::widgets::Chart::new(vec![dataset])
        .block(block)
        .x_axis(Axis::default().bounds([start, app.now_ms as f64]))
        .y_axis(Axis::default().bounds([0.0, if max > 0.0 { max * 1.1 } else { 1.0 }]));
    frame.render_widget(widget, area);
}

fn draw_events(frame: &mut Frame<'_>, area: Rect, detail: Option<&Detail>, theme: Theme) {
    let block = Block::new().borders(Borders::TOP).title(Span::styled(" Recent events ", theme.title()));
    let lines: Vec<Line> = match detail {
        Some(d) if !d.events.is_empty() => d.events.iter().map(|e| event_line(e, false, theme)).collect(),
        Some(_) => vec![Line::styled(" none", theme.dim())],
        None => vec![],
    };
    frame.render_widget(Paragraph::new(lines).block(block), area);
}

/// The output tail: the newest lines at the bottom, `scroll` lines back from the newest.
fn draw_logs(frame: &mut Frame<'_>, area: Rect, detail: Option<&Detail>, scroll: usize, theme: Theme) {
    let logs: &[LogLine] = detail.map(|d| d.logs.as_slice()).unwrap_or_default();
    let height = usize::from(area.height.saturating_sub(1));
    let max_scroll = logs.len().saturating_sub(height);
    let scroll = scroll.min(max_scroll);
    let end = logs.len() - scroll;
    let start = end.saturating_sub(height);
    let title = if scroll > 0 {
        format!(" Output ({} lines, {scroll} back) ", logs.len())
    } else {
        format!(" Output ({} lines) ", logs.len())
    };
    let block = Block::new().borders(Borders::TOP).title(Span::styled(title, theme.title()));
    let lines: Vec<Line> = if logs.is_empty() {
        vec![Line::styled(" no captured output", theme.dim())]
    } else {
        logs[start..end]
            .iter()
            .map(|l| {
                let style = if l.stream == Stream::Stderr { theme.warn() } else { Style::new() };
                Line::from(vec![
                    Span::styled(format!("{} ", format::clock(l.ts_ms)), theme.dim()),
                    Span::styled(l.line.clone(), style),
                ])
            })
            .collect()
    };
    frame.render_widget(Paragraph::new(lines).block(block), area);
}

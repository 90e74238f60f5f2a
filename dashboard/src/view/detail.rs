//! One agent: what it is, how it runs, charts over the chosen window, its events and the tail
//! of its captured output.

use super::overview::{event_line, padded_times};
use super::runs;
use super::theme::Theme;
use super::timeline;
use super::widgets::{fit, footer, with_footer};
use crate::assess::Heartbeat;
use crate::assess::{StatusText, exit_text};
use crate::data::{Chart, Detail, Window};
use crate::format;
use crate::state::App;
use agentvisor_shared::model::{AgentRow, LogLine, Point, Stream, metric};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Axis, Block, Borders, Dataset, GraphType, Paragraph};

/// Narrowest chart worth drawing (with its scale); fewer charts are shown side by side on
/// narrow terminals.
const MIN_CHART_WIDTH: u16 = 30;
/// Columns between side-by-side charts.
const CHART_GAP: u16 = 2;

/// How many charts fit side by side in `width`.
fn charts_fit(width: u16) -> usize {
    usize::from(((width + CHART_GAP) / (MIN_CHART_WIDTH + CHART_GAP)).max(1))
}

/// Whether every chart of the open agent is on screen at this terminal size, so `m` has
/// nothing more to show.
pub fn all_charts_fit(app: &App, area: Rect) -> bool {
    let charts = app.data.as_ref().and_then(|d| d.detail.as_ref()).map_or(0, |d| d.charts.len());
    charts <= charts_fit(area.width)
}

pub fn draw(frame: &mut Frame<'_>, area: Rect, app: &App, theme: Theme) {
    let (body, foot) = with_footer(area);
    let name = app.detail_agent.as_deref().unwrap_or_default();
    let detail = app.data.as_ref().and_then(|d| d.detail.as_ref()).filter(|d| d.agent == name);
    let control = format!("control: agentvisor-launcher ctl restart|stop|start {name}");
    let more = !all_charts_fit(app, area);
    let hints: Vec<&str> = [
        "Esc back",
        "w/1-5 window",
        "↑↓ scroll output",
        if more { "m next charts" } else { "" },
        "? help",
        &control,
    ]
    .into_iter()
    .filter(|h| !h.is_empty())
    .collect();
    frame.render_widget(Paragraph::new(footer(app, &hints, foot.width, theme)), foot);
    let Some(agent) = app.agents().iter().find(|a| a.name == name) else {
        let text = format!(" {name} is no longer registered (removed from the config). Esc goes back.");
        frame.render_widget(Paragraph::new(Line::styled(text, theme.warn())), body);
        return;
    };
    let probe_lines = super::probes::lines(agent, app.now_ms, theme);
    let charts_height = if body.height >= 40 {
        12
    } else if body.height >= 30 {
        10
    } else {
        7
    };
    let [title, info, charts, bottom] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(8 + probe_lines.len() as u16),
        Constraint::Length(charts_height),
        Constraint::Fill(1),
    ])
    .areas(body);
    let mut title_spans = title_line(agent, app.window, theme);
    if let Some(note) = detail.and_then(|d| charts_note(d.charts.len(), charts.width, app.chart_offset)) {
        title_spans.push_span(Span::styled(note, theme.dim()));
    }
    frame.render_widget(Paragraph::new(fit(title_spans, title.width)), title);
    let mut info_lines = info_lines(agent, detail, app.now_ms, theme);
    info_lines.extend(probe_lines);
    let width = usize::from(info.width.saturating_sub(10));
    let events = detail.map(|d| d.events.as_slice()).unwrap_or_default();
    let ready = timeline::ReadyWhen::of(detail.and_then(|d| d.config.as_ref()));
    let steps =
        timeline::steps(events, ready, agent.lifecycle.state, app.now_ms, app.window.span_ms(), width);
    info_lines.push(timeline::line(&steps, theme));
    info_lines.push(timeline::legend(theme));
    let info_lines: Vec<Line> = info_lines.into_iter().map(|l| fit(l, info.width)).collect();
    frame.render_widget(Paragraph::new(info_lines), info);
    match detail {
        Some(d) => draw_charts(frame, charts, &d.charts, agent, app, theme),
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
    draw_events(frame, events, detail, app, theme);
    if !runs::draw_output(frame, logs, app, runs, detail.and_then(|d| d.run_output.as_ref()), theme) {
        draw_logs(frame, logs, detail, app, theme);
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
    // How it ended, in the words of the overview's STATUS ("stopped by alice (ctl)").
    if let StatusText::Ended(how) = StatusText::of(a) {
        run.push_str(&format!(" · {how}"));
    }
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
fn draw_charts(
    frame: &mut Frame<'_>,
    area: Rect,
    charts: &[Chart],
    agent: &AgentRow,
    app: &App,
    theme: Theme,
) {
    let fit = charts_fit(area.width).min(charts.len());
    let first = if charts.is_empty() { 0 } else { app.chart_offset % charts.len() };
    let areas = Layout::horizontal(vec![Constraint::Fill(1); fit]).spacing(CHART_GAP).split(area);
    for (i, area) in areas.iter().enumerate() {
        let chart = &charts[(first + i) % charts.len()];
        draw_chart(frame, *area, chart, agent.metrics.get(chart.metric.as_str()).copied(), app, theme);
    }
}

/// "charts 2-4/5 (m)" when not all charts fit, for the title line.
fn charts_note(charts: usize, width: u16, offset: usize) -> Option<String> {
    let fit = charts_fit(width);
    (charts > fit).then(|| {
        format!(" · charts {}-{}/{charts} (m)", offset % charts + 1, (offset % charts + fit - 1) % charts + 1)
    })
}

/// A chart's name for people: the built-in series by what they measure, the agent's own by
/// the name it reports.
fn chart_name(metric_name: &str) -> &str {
    match metric_name {
        metric::CPU_PERCENT => "CPU",
        metric::MEMORY_BYTES => "memory",
        metric::HEARTBEAT_GAP_S => "heartbeat gap",
        other => other,
    }
}

/// A value with its unit, short enough for an axis label.
fn chart_value(metric_name: &str, v: f64) -> String {
    match metric_name {
        metric::MEMORY_BYTES => format::bytes_short(v),
        metric::CPU_PERCENT => format!("{}%", format::decimals(v, 1)),
        metric::HEARTBEAT_GAP_S => format!("{}s", format::decimals(v, 1)),
        _ if v.abs() >= 10_000.0 => format::count(v.round() as i64),
        _ => format::decimals(v, 2),
    }
}

/// Whether the agent's metric counts up (`tasks_done`): only ever rising over the window,
/// except for drops to about zero when the agent restarts. A counter is drawn as its rate.
fn is_counter(metric_name: &str, points: &[Point]) -> bool {
    if agentvisor_shared::model::BUILTIN_AGENT_METRICS.contains(&metric_name) || points.len() < 3 {
        return false;
    }
    let (mut rises, mut resets) = (0, 0);
    for pair in points.windows(2) {
        let (a, b) = (pair[0].max, pair[1].max);
        if b > a {
            rises += 1;
        } else if b < a && b > a * 0.1 {
            return false;
        } else if b < a {
            resets += 1;
        }
    }
    // A restart is rare; a gauge that often falls to zero (a queue that drains) is no counter.
    rises * 2 >= points.len() && (resets <= 2 || resets * 20 <= points.len())
}

/// Steps a counter's rate is averaged over: a counter sampled into buckets rises by 2, then
/// 3, then 2, and its rate per bucket zigzags although the work is steady.
const RATE_STEPS: usize = 4;

/// Per-second rates of a counter, each over the last [`RATE_STEPS`] points; a drop is a
/// restart from zero.
fn rates(points: &[Point]) -> Vec<(f64, f64)> {
    let mut rises = vec![0.0];
    for pair in points.windows(2) {
        let delta = if pair[1].max >= pair[0].max { pair[1].max - pair[0].max } else { pair[1].max };
        rises.push(rises.last().copied().unwrap_or(0.0) + delta);
    }
    (1..points.len())
        .filter_map(|i| {
            let from = i.saturating_sub(RATE_STEPS);
            let seconds = (points[i].ts_ms - points[from].ts_ms) as f64 / 1000.0;
            (seconds > 0.0).then(|| (points[i].ts_ms as f64, (rises[i] - rises[from]) / seconds))
        })
        .collect()
}

/// A round top for a y axis at or above `max`: 1, 2, 2.5 or 5 times a power of ten (of 1024
/// for bytes), so the scale reads at a glance.
fn nice_top(metric_name: &str, max: f64) -> f64 {
    if max <= 0.0 {
        return 1.0;
    }
    let base: f64 = if metric_name == metric::MEMORY_BYTES { 1024.0 } else { 10.0 };
    let unit = if base == 1024.0 { 1024f64.powf((max.log(1024.0)).floor()) } else { 1.0 };
    let v = max / unit;
    let power = 10f64.powf(v.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0].into_iter().find(|s| s * power >= v).unwrap_or(10.0);
    step * power * unit
}

fn draw_chart(
    frame: &mut Frame<'_>,
    area: Rect,
    chart: &Chart,
    current: Option<f64>,
    app: &App,
    theme: Theme,
) {
    let name = chart.metric.as_str();
    let counter = is_counter(name, &chart.points);
    let data: Vec<(f64, f64)> = if counter {
        rates(&chart.points)
    } else {
        chart.points.iter().map(|p| (p.ts_ms as f64, p.value)).collect()
    };
    let max = if counter {
        data.iter().map(|p| p.1).fold(0.0_f64, f64::max)
    } else {
        chart.points.iter().map(|p| p.max).fold(0.0_f64, f64::max)
    };
    // The newest value the agent reported, not the mean of the newest bucket.
    let now = current.or_else(|| chart.points.last().map(|p| p.max));
    let mut title = format!(" {}", chart_name(name));
    if let Some(v) = now {
        title.push_str(&format!(" {}", chart_value(name, v)));
    }
    if counter && let Some(rate) = data.last().map(|p| p.1) {
        title.push_str(&format!(" · {}/s", format::decimals(rate, 2)));
    }
    title.push(' ');
    let block = Block::new()
        .borders(Borders::TOP)
        .title(Span::styled(format::ellipsize(&title, usize::from(area.width)), theme.title()));
    if data.is_empty() {
        let text = Paragraph::new(Line::styled(
            format!(" no samples in the last {}", app.window.label()),
            theme.dim(),
        ));
        frame.render_widget(text.block(block), area);
        return;
    }
    let start = app.now_ms - app.window.span_ms();
    // Below 10 % a process is idle, and a scale of 2 % would draw its blips as peaks.
    let max = if name == metric::CPU_PERCENT { max.max(10.0) } else { max };
    // A little headroom, so the newest value is not drawn on the top edge as if clipped.
    let top = nice_top(if counter { "" } else { name }, max * 1.1);
    let label = |v: f64| if counter { format!("{}/s", format::decimals(v, 2)) } else { chart_value(name, v) };
    let dataset = Dataset::default()
        .marker(Marker::Braille)
        .graph_type(GraphType::Line)
        .style(theme.good())
        .data(&data);
    let x_labels =
        vec![Span::styled(app.zone.time(start, app.now_ms), theme.dim()), Span::styled("now", theme.dim())];
    let y_labels = vec![Span::styled(label(0.0), theme.dim()), Span::styled(label(top), theme.dim())];
    let widget = ratatui::widgets::Chart::new(vec![dataset])
        .block(block)
        .x_axis(Axis::default().bounds([start as f64, app.now_ms as f64]).labels(x_labels).style(theme.dim()))
        .y_axis(Axis::default().bounds([0.0, top]).labels(y_labels).style(theme.dim()));
    frame.render_widget(widget, area);
}

fn draw_events(frame: &mut Frame<'_>, area: Rect, detail: Option<&Detail>, app: &App, theme: Theme) {
    let block = Block::new().borders(Borders::TOP).title(Span::styled(" Recent events ", theme.title()));
    let lines: Vec<Line> = match detail {
        Some(d) if !d.events.is_empty() => {
            let shown = &d.events[..d.events.len().min(usize::from(area.height))];
            let times = padded_times(app, shown.iter());
            shown.iter().zip(times).map(|(e, t)| event_line(e, false, &t, area.width, theme)).collect()
        }
        Some(_) => vec![Line::styled(" none", theme.dim())],
        None => vec![],
    };
    frame.render_widget(Paragraph::new(lines).block(block), area);
}

/// The output tail: the newest lines at the bottom, `scroll` lines back from the newest.
fn draw_logs(frame: &mut Frame<'_>, area: Rect, detail: Option<&Detail>, app: &App, theme: Theme) {
    let scroll = app.log_scroll;
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
                fit(
                    Line::from(vec![
                        Span::styled(format!("{} ", app.zone.time(l.ts_ms, app.now_ms)), theme.dim()),
                        Span::styled(l.line.clone(), style),
                    ]),
                    area.width,
                )
            })
            .collect()
    };
    frame.render_widget(Paragraph::new(lines).block(block), area);
}

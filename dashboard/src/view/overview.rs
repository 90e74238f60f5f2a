//! The overview: header, latest problems (grouped), the agent table with columns sized by
//! their content, and the newest events in whatever rows are left.

use super::header;
use super::problems;
use super::theme::Theme;
use super::widgets::{fit, footer, index_at, scroll_offset, with_footer};
use crate::assess::{Heartbeat, Liveness, StatusText, in_trouble};
use crate::format;
use crate::state::{App, SortKey};
use agentvisor_shared::model::{AgentRow, Event, metric};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Paragraph, Row, Table, TableState};

const HINTS: &[&str] =
    &["? help", "q quit", "Enter detail", "Tab events", "/ filter", "s S sort", "m metric", "↑↓ select"];

/// Problem groups shown at most, however tall the terminal.
const MAX_PROBLEMS: u16 = 10;

struct Areas {
    header: Rect,
    config_error: Rect,
    problems: Rect,
    table: Rect,
    events: Rect,
    footer: Rect,
}

/// The table gets a row per agent if it can; problems at least a few lines; whatever is left
/// goes to more problems, then to the newest events.
fn layout(app: &App, area: Rect) -> Areas {
    let (body, footer) = with_footer(area);
    let groups = app.data.as_ref().map_or(0, |d| problems::group(&d.snapshot.problems).len()) as u16;
    let config_error = app
        .data
        .as_ref()
        .and_then(|d| header::config_error_line(d, app.now_ms, Theme { color: app.color }))
        .map_or(0, |l| header::config_error_height(&l, body.width));
    let rest = body.height.saturating_sub(header::HEIGHT + config_error);
    let problems_min = groups.clamp(1, 3) + 1;
    let table_wanted = app.visible_agents().len().max(1) as u16 + 2;
    let table = table_wanted.min(rest.saturating_sub(problems_min)).max(3.min(rest));
    let problems = (groups.clamp(1, MAX_PROBLEMS) + 1).min(rest - table);
    let left = rest - table - problems;
    // A panel of one or two lines says too little to be worth its title: the table keeps them.
    let (table, events) = if left >= 3 { (table, left) } else { (table + left, 0) };
    let [header, config_error, problems, table, events] = Layout::vertical([
        Constraint::Length(header::HEIGHT),
        Constraint::Length(config_error),
        Constraint::Length(problems),
        Constraint::Length(table),
        Constraint::Length(events),
    ])
    .areas(body);
    Areas { header, config_error, problems, table, events, footer }
}

/// The table's rows without its title line and column headings.
fn table_body(table: Rect) -> Rect {
    Rect { y: table.y + 2, height: table.height.saturating_sub(2), ..table }
}

/// The agent index a click at (`column`, `row`) hit, if any.
pub fn row_at(app: &App, area: Rect, column: u16, row: u16) -> Option<usize> {
    let body = table_body(layout(app, area).table);
    let offset = scroll_offset(app.selected_index().unwrap_or(0), usize::from(body.height));
    index_at(body, offset, column, row).filter(|i| *i < app.visible_agents().len())
}

pub fn draw(frame: &mut Frame<'_>, area: Rect, app: &App, theme: Theme) {
    let Some(data) = &app.data else { return };
    let areas = layout(app, area);
    let lines = header::lines(data, app.now_ms, app.zone, theme);
    let lines: Vec<Line> = lines.into_iter().map(|l| fit(l, areas.header.width)).collect();
    frame.render_widget(Paragraph::new(lines), areas.header);
    if let Some(line) = header::config_error_line(data, app.now_ms, theme) {
        frame.render_widget(header::config_error_paragraph(line), areas.config_error);
    }
    draw_problems(frame, areas.problems, &data.snapshot.problems, app, theme);
    draw_table(frame, areas.table, app, theme);
    if areas.events.height > 0 {
        draw_recent(frame, areas.events, data.events.as_deref().unwrap_or_default(), app, theme);
    }
    frame.render_widget(Paragraph::new(footer(app, HINTS, areas.footer.width, theme)), areas.footer);
}

/// One event on one line, cut with `…` to `width`; `with_agent` is false where the agent is
/// already known.
pub fn event_line(e: &Event, with_agent: bool, time: &str, width: u16, theme: Theme) -> Line<'static> {
    let mut spans = vec![
        Span::styled(format!(" {time} "), theme.dim()),
        Span::styled(format!("{:<8}", e.severity.as_str()), theme.severity(e.severity)),
    ];
    if with_agent {
        spans.push(Span::raw(format!(" {}", e.agent.as_deref().unwrap_or("launcher"))));
    }
    spans.push(Span::styled(format!(" {} ", e.kind), theme.dim()));
    spans.push(Span::raw(e.message.clone()));
    fit(Line::from(spans), width)
}

fn draw_problems(frame: &mut Frame<'_>, area: Rect, problems: &[Event], app: &App, theme: Theme) {
    let groups = problems::group(problems);
    let shown = usize::from(area.height.saturating_sub(1));
    let mut title = vec![Span::styled(" Latest problems ", theme.title())];
    if groups.len() > shown {
        title
            .push(Span::styled(format!("({shown} of {}; Tab lists all events) ", groups.len()), theme.dim()));
    }
    let block = Block::new().borders(Borders::TOP).title(Line::from(title));
    let lines: Vec<Line> = if groups.is_empty() {
        vec![Line::styled(" no errors or critical events", theme.good())]
    } else {
        let shown: Vec<_> = groups.iter().take(shown).collect();
        let times = padded_times(app, shown.iter().map(|g| g.last));
        shown.iter().zip(times).map(|(g, t)| fit(problems::line(g, &t, theme), area.width)).collect()
    };
    frame.render_widget(Paragraph::new(lines).block(block), area);
}

/// The times of `events` in the app's zone, padded to one width so the columns after them
/// line up when some are dates.
pub fn padded_times<'a>(app: &App, events: impl Iterator<Item = &'a Event>) -> Vec<String> {
    let times: Vec<String> = events.map(|e| app.zone.time(e.ts_ms, app.now_ms)).collect();
    let width = times.iter().map(|t| format::width(t)).max().unwrap_or(0);
    times.into_iter().map(|t| format!("{t:<width$}")).collect()
}

/// The newest events below the errors, which the problems above already show, grouped.
fn draw_recent(frame: &mut Frame<'_>, area: Rect, events: &[Event], app: &App, theme: Theme) {
    let title = " Newest events (info and warnings; Tab lists all) ";
    let block = Block::new().borders(Borders::TOP).title(Span::styled(title, theme.title()));
    let shown: Vec<&Event> = events
        .iter()
        .filter(|e| e.severity < agentvisor_shared::model::Severity::Error)
        .take(usize::from(area.height.saturating_sub(1)))
        .collect();
    let lines: Vec<Line> = if shown.is_empty() {
        vec![Line::styled(" none yet", theme.dim())]
    } else {
        let times = padded_times(app, shown.iter().copied());
        shown.iter().zip(times).map(|(e, t)| event_line(e, true, &t, area.width, theme)).collect()
    };
    frame.render_widget(Paragraph::new(lines).block(block), area);
}

/// A column of the agent table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Col {
    Name,
    State,
    Health,
    Pid,
    Uptime,
    Restarts,
    LastRestart,
    Beat,
    Cpu,
    Mem,
    Status,
    Task,
    Model,
    Tokens,
    Cost,
    Spark,
}

/// Columns in display order.
const COLUMNS: [Col; 16] = [
    Col::Name,
    Col::State,
    Col::Health,
    Col::Pid,
    Col::Uptime,
    Col::Restarts,
    Col::LastRestart,
    Col::Beat,
    Col::Cpu,
    Col::Mem,
    Col::Status,
    Col::Task,
    Col::Model,
    Col::Tokens,
    Col::Cost,
    Col::Spark,
];

impl Col {
    fn head(self) -> &'static str {
        match self {
            Col::Name => "  NAME",
            Col::State => "STATE",
            Col::Health => "HEALTH",
            Col::Pid => "PID",
            Col::Uptime => "UPTIME",
            Col::Restarts => "RST",
            Col::LastRestart => "LAST RST",
            Col::Beat => "BEAT",
            Col::Cpu => "CPU%",
            Col::Mem => "MEM",
            Col::Status => "STATUS",
            Col::Task => "TASK",
            Col::Model => "MODEL",
            Col::Tokens => "TOKENS in/out",
            Col::Cost => "COST",
            Col::Spark => "",
        }
    }

    fn sort(self) -> Option<SortKey> {
        Some(match self {
            Col::Name => SortKey::Name,
            Col::State => SortKey::State,
            Col::Restarts => SortKey::Restarts,
            Col::Beat => SortKey::Heartbeat,
            Col::Cpu => SortKey::Cpu,
            Col::Mem => SortKey::Memory,
            _ => return None,
        })
    }

    /// Widest the column grows for its content.
    fn max(self) -> usize {
        match self {
            Col::Name => 26,
            Col::Status => 60,
            Col::Task => 40,
            Col::Model => 24,
            Col::Spark => 22,
            _ => 16,
        }
    }

    /// Text columns that take what is left; they shrink to [`Col::min`] before columns go.
    fn min(self) -> Option<usize> {
        match self {
            Col::Status => Some(22),
            Col::Task => Some(10),
            _ => None,
        }
    }

    /// Which columns go first when the terminal is narrow: the lowest. The ones that say
    /// whether an agent is well stay longest.
    fn keep(self) -> u8 {
        match self {
            Col::Name => 100,
            Col::State => 95,
            Col::Status => 90,
            Col::Health => 85,
            Col::Beat => 80,
            Col::Cpu => 75,
            Col::Mem => 60,
            Col::Restarts => 55,
            Col::Uptime => 50,
            Col::Cost => 46,
            Col::Task => 45,
            Col::LastRestart => 42,
            Col::Spark => 40,
            Col::Tokens => 35,
            Col::Pid => 30,
            Col::Model => 25,
        }
    }
}

/// Which columns are shown and how wide: each as wide as its widest cell (up to its maximum),
/// dropping the least important while they do not fit, then giving what is left to the text
/// columns.
fn widths(cols: &[Col], cells: &[Vec<String>], heads: &[String], width: u16) -> Vec<(usize, usize)> {
    let wanted: Vec<usize> = cols
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let content = cells.iter().map(|r| format::width(&r[i])).max().unwrap_or(0);
            content.max(format::width(&heads[i])).min(c.max())
        })
        .collect();
    let least = |i: usize| cols[i].min().map_or(wanted[i], |m| m.min(wanted[i]));
    let mut shown: Vec<usize> = (0..cols.len()).collect();
    let total = |shown: &[usize], w: &dyn Fn(usize) -> usize| -> usize {
        shown.iter().map(|&i| w(i)).sum::<usize>() + shown.len().saturating_sub(1)
    };
    while shown.len() > 1 && total(&shown, &least) > usize::from(width) {
        let drop = shown.iter().enumerate().min_by_key(|(_, i)| cols[**i].keep()).map(|(p, _)| p);
        if let Some(p) = drop {
            shown.remove(p);
        }
    }
    let mut spare = usize::from(width).saturating_sub(total(&shown, &least));
    let mut out: Vec<(usize, usize)> = shown.iter().map(|&i| (i, least(i))).collect();
    // Column by column, so every text column that wants more gets its share; STATUS, which
    // says most about an agent, twice over.
    while spare > 0 {
        let mut gave = false;
        for (i, w) in &mut out {
            let share = if cols[*i] == Col::Status { 2 } else { 1 };
            let more = share.min(wanted[*i].saturating_sub(*w)).min(spare);
            if more > 0 {
                *w += more;
                spare -= more;
                gave = true;
            }
        }
        if !gave {
            break;
        }
    }
    out
}

fn draw_table(frame: &mut Frame<'_>, area: Rect, app: &App, theme: Theme) {
    let Some(data) = &app.data else { return };
    let rows = app.visible_agents();
    let stale = !Liveness::of(data.snapshot.launcher.as_ref(), app.now_ms).is_running();

    // Cells are made only for the rows the table can show: with a thousand agents, building
    // every row would cost more than the rest of the frame.
    let selected = app.selected_index();
    let height = usize::from(table_body(area).height);
    let offset = scroll_offset(selected.unwrap_or(0), height);
    let on_screen: Vec<&AgentRow> = rows.iter().skip(offset).take(height).copied().collect();
    let spark = Spark::of(app, &on_screen);
    let cells: Vec<Vec<(String, Style)>> =
        on_screen.iter().map(|a| agent_cells(a, app.now_ms, app.zone, &spark, data, theme)).collect();
    let arrow = if app.sort_reverse { "▲" } else { "▼" };
    let heads: Vec<String> = COLUMNS
        .iter()
        .map(|c| match c {
            Col::Spark => spark.title(),
            c if c.sort() == Some(app.sort) => format!("{}{arrow}", c.head()),
            c => c.head().to_owned(),
        })
        .collect();
    let texts: Vec<Vec<String>> = cells.iter().map(|r| r.iter().map(|c| c.0.clone()).collect()).collect();
    let layout = widths(&COLUMNS, &texts, &heads, area.width);

    let body: Vec<Row> = cells
        .into_iter()
        .map(|r| {
            let cells: Vec<Cell> = layout
                .iter()
                .map(|&(i, w)| Cell::from(format::ellipsize(&r[i].0, w)).style(r[i].1))
                .collect();
            let row = Row::new(cells);
            if stale { row.style(theme.dim()) } else { row }
        })
        .collect();
    let widths: Vec<Constraint> = layout.iter().map(|&(_, w)| Constraint::Length(w as u16)).collect();
    let header = Row::new(layout.iter().map(|&(i, w)| format::ellipsize(&heads[i], w))).style(theme.dim());

    let mut title =
        vec![Span::styled(format!(" Agents ({}/{}) ", rows.len(), app.agents().len()), theme.title())];
    let order = if app.sort_reverse { ", reversed" } else { "" };
    title.push(Span::styled(format!("sort: {}{order} ", app.sort.label()), theme.dim()));
    if !app.filter.is_empty() {
        title.push(Span::styled(format!("filter: {} ", app.filter), theme.warn()));
    }
    if stale {
        title.push(Span::styled(" STALE ", theme.alarm()));
    }
    let block = Block::new().borders(Borders::TOP).title(fit(Line::from(title), area.width));
    let empty = app.agents().is_empty();
    let table = Table::new(body, widths).header(header).block(block).row_highlight_style(theme.selected());
    let mut state = TableState::default().with_selected(selected.map(|i| i - offset));
    frame.render_stateful_widget(table, area, &mut state);
    if empty || rows.is_empty() {
        let text = if empty {
            " No agents registered yet: the launcher records them when it starts."
        } else {
            " No agent matches the filter (Esc clears it)."
        };
        frame.render_widget(Paragraph::new(Line::styled(text, theme.dim())), table_body(area));
    }
}

/// The sparkline column: one scale for every row, so rows compare, with a floor for CPU so
/// that a blip among zeros is a low bar.
struct Spark<'a> {
    metric: &'a str,
    scale: f64,
}

/// Bars in a sparkline.
const SPARK_BARS: usize = 12;

impl Spark<'_> {
    fn of<'a>(app: &'a App, rows: &[&AgentRow]) -> Spark<'a> {
        let sparklines = app.data.as_ref().map(|d| &d.sparklines);
        let peak = rows
            .iter()
            .filter_map(|a| sparklines.and_then(|s| s.get(&a.name)))
            .flat_map(|v| v.iter().rev().take(SPARK_BARS))
            .fold(0.0_f64, |m, v| m.max(*v));
        let floor = match app.spark_metric.as_str() {
            metric::CPU_PERCENT => 10.0,
            _ => 0.0,
        };
        Spark { metric: &app.spark_metric, scale: peak.max(floor) }
    }

    fn title(&self) -> String {
        let name = match self.metric {
            metric::CPU_PERCENT => "CPU",
            metric::MEMORY_BYTES => "MEM",
            other => other,
        };
        format!("{name} 0–{}", value(self.metric, self.scale))
    }
}

/// A metric's value with its unit, short.
fn value(metric_name: &str, v: f64) -> String {
    match metric_name {
        metric::CPU_PERCENT => format!("{}%", format::decimals(v, 1)),
        metric::MEMORY_BYTES => format::bytes_short(v),
        _ if v.abs() >= 10_000.0 => format::count(v.round() as i64),
        _ => format::number(v),
    }
}

fn agent_cells(
    a: &AgentRow,
    now_ms: i64,
    zone: crate::format::Zone,
    spark: &Spark<'_>,
    data: &crate::data::Loaded,
    theme: Theme,
) -> Vec<(String, Style)> {
    let trouble = in_trouble(a);
    let plain = Style::new();
    // Red on the normal background for every kind of trouble: the STATE cell carries the
    // state's own colours, and patching those here painted a fatal name red on red.
    let name_style = if trouble { theme.bad() } else { plain };
    let marker = if trouble { "! " } else { "  " };
    // A firing alert marks the name and takes the STATUS cell.
    let alert = data.snapshot.alerts.iter().find(|f| f.agent == a.name);
    let running = a.lifecycle.state.has_process();
    let hb = Heartbeat::of(a, now_ms);
    let beat = match hb {
        _ if !running => "—".to_owned(),
        Heartbeat::ProcessOnly => "proc".to_owned(),
        Heartbeat::None => "none".to_owned(),
        Heartbeat::Seen { age_ms, .. } => format::duration_ms(age_ms),
    };
    let uptime = match a.lifecycle.started_ms {
        Some(t) if running => format::duration_ms(now_ms - t),
        _ => "—".to_owned(),
    };
    // The current run began at the last restart; an agent never restarted has none.
    let last_restart = match a.lifecycle.started_ms {
        Some(t) if a.lifecycle.restarts > 0 => format!("{} ago", format::duration_ms(now_ms - t)),
        _ => "—".to_owned(),
    };
    let cpu = a.metrics.get(metric::CPU_PERCENT).map_or("—".to_owned(), |v| format!("{v:.1}"));
    let mem = a.metrics.get(metric::MEMORY_BYTES).map_or("—".to_owned(), |v| format::bytes_short(*v));
    let status = StatusText::of(a);
    let status_style = match status {
        StatusText::Error(_) => theme.bad(),
        StatusText::Ended(_) => theme.dim(),
        StatusText::Reported(_) | StatusText::Empty => plain,
    };
    // A scheduled agent between runs says when it runs next and how its last run ended.
    let status_label = match status {
        StatusText::Empty | StatusText::Ended(_) => {
            super::runs::overview_note(a, zone, now_ms).unwrap_or(status.label())
        }
        _ => status.label(),
    };
    let opt = |v: Option<i64>| v.map_or("—".to_owned(), format::count);
    let tokens = if a.reported.tokens_in.is_some() || a.reported.tokens_out.is_some() {
        format!("{}/{}", opt(a.reported.tokens_in), opt(a.reported.tokens_out))
    } else {
        String::new()
    };
    let values = data.sparklines.get(&a.name).map(Vec::as_slice).unwrap_or_default();
    let now = a.metrics.get(spark.metric).map(|v| value(spark.metric, *v)).unwrap_or_default();
    let sparkline = format!("{} {now}", format::spark(values, SPARK_BARS, spark.scale));
    COLUMNS
        .iter()
        .map(|c| match c {
            Col::Name => match alert {
                Some(f) => (format!("⚑ {}", a.name), theme.severity(f.severity)),
                None => (format!("{marker}{}", a.name), name_style),
            },
            Col::State => (a.lifecycle.state.as_str().to_owned(), theme.state(a.lifecycle.state)),
            Col::Health => (a.lifecycle.health.as_str().to_owned(), theme.health(a.lifecycle.health)),
            Col::Pid => (a.lifecycle.pid.map_or("—".to_owned(), |p| p.to_string()), plain),
            Col::Uptime => (uptime.clone(), plain),
            Col::Restarts => (
                a.lifecycle.restarts.to_string(),
                if a.lifecycle.restarts > 0 { theme.warn() } else { plain },
            ),
            Col::LastRestart => (last_restart.clone(), plain),
            Col::Beat => (beat.clone(), theme.heartbeat(hb)),
            Col::Cpu => (cpu.clone(), plain),
            Col::Mem => (mem.clone(), plain),
            Col::Status => match alert {
                Some(f) => (format!("alert {}", f.message), theme.severity(f.severity)),
                None => (status_label.clone(), status_style),
            },
            // The last job of a process that is gone is not its task any more.
            Col::Task => (a.reported.task.clone().filter(|_| running).unwrap_or_default(), plain),
            Col::Model => (a.reported.model.clone().unwrap_or_default(), plain),
            Col::Tokens => (tokens.clone(), plain),
            Col::Cost => (a.reported.cost.map_or(String::new(), |c| format!("{c:.2}")), plain),
            Col::Spark => (sparkline.clone(), theme.title()),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_fit_their_content_and_the_least_needed_go_first() {
        let cols = [Col::Name, Col::Status, Col::Pid, Col::Model];
        let heads: Vec<String> = cols.iter().map(|c| c.head().to_owned()).collect();
        let cells = vec![vec![
            "  researcher".to_owned(),
            "waiting for upstream to answer".to_owned(),
            "4250".to_owned(),
            "demo-llm-70b".to_owned(),
        ]];
        // Wide: every column as wide as its content.
        assert_eq!(widths(&cols, &cells, &heads, 200), [(0, 12), (1, 30), (2, 4), (3, 12)]);
        // Narrower: the model goes first, then the text column shrinks, then the PID goes.
        assert_eq!(widths(&cols, &cells, &heads, 52), [(0, 12), (1, 30), (2, 4)]);
        assert_eq!(widths(&cols, &cells, &heads, 45), [(0, 12), (1, 27), (2, 4)]);
        assert_eq!(widths(&cols, &cells, &heads, 36), [(0, 12), (1, 23)]);
    }
}

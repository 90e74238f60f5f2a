//! The overview: header, latest problems, and the agent table.

use super::header;
use super::theme::Theme;
use super::widgets::{footer, index_at, scroll_offset, with_footer};
use crate::assess::{Heartbeat, Liveness, StatusText, in_trouble};
use crate::format;
use crate::state::App;
use agentvisor_shared::model::{AgentRow, Event, metric};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Paragraph, Row, Table, TableState};

const HINTS: &str = "q quit · ? help · ↑↓ select · Enter detail · Tab events · / filter · s sort · m metric";

struct Areas {
    header: Rect,
    config_error: Rect,
    problems: Rect,
    table: Rect,
    footer: Rect,
}

/// Problems get up to three lines (more on tall terminals), the table the rest.
fn layout(app: &App, area: Rect) -> Areas {
    let (body, footer) = with_footer(area);
    let problems = app.data.as_ref().map_or(0, |d| d.snapshot.problems.len()) as u16;
    let wanted = problems.clamp(1, if body.height >= 40 { 8 } else { 3 });
    let config_error = app
        .data
        .as_ref()
        .and_then(|d| header::config_error_line(d, app.now_ms, Theme { color: app.color }))
        .map_or(0, |l| header::config_error_height(&l, body.width));
    let [header, config_error, problems, table] = Layout::vertical([
        Constraint::Length(header::HEIGHT),
        Constraint::Length(config_error),
        Constraint::Length(wanted + 1),
        Constraint::Fill(1),
    ])
    .areas(body);
    Areas { header, config_error, problems, table, footer }
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
    frame.render_widget(Paragraph::new(header::lines(data, app.now_ms, theme)), areas.header);
    if let Some(line) = header::config_error_line(data, app.now_ms, theme) {
        frame.render_widget(header::config_error_paragraph(line), areas.config_error);
    }
    draw_problems(frame, areas.problems, &data.snapshot.problems, theme);
    draw_table(frame, areas.table, app, theme);
    frame.render_widget(Paragraph::new(footer(app, HINTS, theme)), areas.footer);
}

/// One event on one line; `with_agent` is false where the agent is already known.
pub fn event_line(e: &Event, with_agent: bool, theme: Theme) -> Line<'static> {
    let mut spans = vec![
        Span::styled(format!(" {} ", format::clock(e.ts_ms)), theme.dim()),
        Span::styled(format!("{:<8}", e.severity.as_str()), theme.severity(e.severity)),
    ];
    if with_agent {
        spans.push(Span::raw(format!(" {}", e.agent.as_deref().unwrap_or("launcher"))));
    }
    spans.push(Span::styled(format!(" {} ", e.kind), theme.dim()));
    spans.push(Span::raw(e.message.clone()));
    Line::from(spans)
}

fn draw_problems(frame: &mut Frame<'_>, area: Rect, problems: &[Event], theme: Theme) {
    let block = Block::new().borders(Borders::TOP).title(Span::styled(" Latest problems ", theme.title()));
    let lines: Vec<Line> = if problems.is_empty() {
        vec![Line::styled(" no errors or critical events", theme.good())]
    } else {
        problems.iter().map(|e| event_line(e, true, theme)).collect()
    };
    frame.render_widget(Paragraph::new(lines).block(block), area);
}

/// Which optional columns fit: the sparkline from 100 columns, the LLM fields from 150; below
/// 76 columns only the columns that tell whether an agent is well.
fn columns(width: u16) -> (bool, bool, bool) {
    (width < 76, width >= 100, width >= 150)
}

/// The base columns: heading, width (0: fill), and whether a narrow terminal keeps it.
const BASE: [(&str, u16, bool); 10] = [
    ("  NAME", 13, true),
    ("STATE", 8, true),
    ("HEALTH", 9, true),
    ("PID", 6, false),
    ("UPTIME", 6, false),
    ("RST", 3, false),
    ("BEAT", 6, true),
    ("CPU", 5, true),
    ("MEM", 6, false),
    ("STATUS", 0, true),
];

fn draw_table(frame: &mut Frame<'_>, area: Rect, app: &App, theme: Theme) {
    let Some(data) = &app.data else { return };
    let rows = app.visible_agents();
    let (narrow, spark, llm) = columns(area.width);
    let stale = !Liveness::of(data.snapshot.launcher.as_ref(), app.now_ms).is_running();
    let keep: Vec<bool> = BASE.iter().map(|c| c.2 || !narrow).collect();
    let width = |w: u16| if w == 0 { Constraint::Fill(1) } else { Constraint::Length(w) };
    let mut heads: Vec<&str> = BASE.iter().zip(&keep).filter(|(_, k)| **k).map(|(c, _)| c.0).collect();
    let mut widths: Vec<Constraint> =
        BASE.iter().zip(&keep).filter(|(_, k)| **k).map(|(c, _)| width(c.1)).collect();
    if llm {
        heads.extend(["TASK", "MODEL", "TOKENS in/out", "COST"]);
        widths.extend([
            Constraint::Fill(1),
            Constraint::Length(12),
            Constraint::Length(13),
            Constraint::Length(7),
        ]);
    }
    let spark_width: u16 = if llm { 24 } else { 12 };
    if spark {
        heads.push(spark_title(&app.spark_metric));
        widths.push(Constraint::Length(spark_width));
    }

    // Cells are made only for the rows the table can show: with a thousand agents, building
    // every row would cost more than the rest of the frame.
    let selected = app.selected_index();
    let height = usize::from(table_body(area).height);
    let offset = scroll_offset(selected.unwrap_or(0), height);
    let body: Vec<Row> = rows
        .iter()
        .skip(offset)
        .take(height)
        .map(|a| {
            let values = data.sparklines.get(&a.name).map(Vec::as_slice).unwrap_or_default();
            let mut cells: Vec<Cell> = agent_cells(a, app.now_ms, theme)
                .into_iter()
                .zip(&keep)
                .filter_map(|(c, k)| k.then_some(c))
                .collect();
            if llm {
                cells.extend(llm_cells(a));
            }
            if spark {
                cells.push(Cell::from(format::spark(values, usize::from(spark_width))).style(theme.title()));
            }
            let row = Row::new(cells);
            if stale { row.style(theme.dim()) } else { row }
        })
        .collect();

    let mut title =
        vec![Span::styled(format!(" Agents ({}/{}) ", rows.len(), app.agents().len()), theme.title())];
    title.push(Span::styled(format!("sort: {} ", app.sort.label()), theme.dim()));
    if !app.filter.is_empty() {
        title.push(Span::styled(format!("filter: {} ", app.filter), theme.warn()));
    }
    if stale {
        title.push(Span::styled(" STALE ", theme.alarm()));
    }
    let block = Block::new().borders(Borders::TOP).title(Line::from(title));
    let header = Row::new(heads).style(theme.dim());
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

fn spark_title(metric_name: &str) -> &str {
    match metric_name {
        metric::CPU_PERCENT => "CPU (recent)",
        metric::MEMORY_BYTES => "MEM (recent)",
        other => other,
    }
}

fn agent_cells(a: &AgentRow, now_ms: i64, theme: Theme) -> Vec<Cell<'static>> {
    let trouble = in_trouble(a);
    // Red on the normal background for every kind of trouble: the STATE cell carries the
    // state's own colours, and patching those here painted a fatal name red on red.
    let name_style = if trouble { theme.bad() } else { Style::new() };
    let marker = if trouble { "! " } else { "  " };
    let hb = Heartbeat::of(a, now_ms);
    let beat = match hb {
        _ if !a.lifecycle.state.has_process() => "—".to_owned(),
        Heartbeat::ProcessOnly => "proc".to_owned(),
        Heartbeat::None => "none".to_owned(),
        Heartbeat::Seen { age_ms, .. } => format::duration_ms(age_ms),
    };
    let uptime = match a.lifecycle.started_ms {
        Some(t) if a.lifecycle.state.has_process() => format::duration_ms(now_ms - t),
        _ => "—".to_owned(),
    };
    let cpu = a.metrics.get(metric::CPU_PERCENT).map_or("—".to_owned(), |v| format!("{v:.1}"));
    let mem = a.metrics.get(metric::MEMORY_BYTES).map_or("—".to_owned(), |v| format::bytes_short(*v));
    let status = StatusText::of(a);
    let status_style = match status {
        StatusText::Error(_) => theme.bad(),
        StatusText::Ended(_) => theme.dim(),
        StatusText::Reported(_) | StatusText::Empty => Style::new(),
    };
    let status = match status {
        StatusText::Empty | StatusText::Ended(_) => super::runs::overview_note(a).unwrap_or(status.label()),
        _ => status.label(),
    };
    vec![
        Cell::from(format!("{marker}{}", a.name)).style(name_style),
        Cell::from(a.lifecycle.state.as_str()).style(theme.state(a.lifecycle.state)),
        Cell::from(a.lifecycle.health.as_str()).style(theme.health(a.lifecycle.health)),
        Cell::from(a.lifecycle.pid.map_or("—".to_owned(), |p| p.to_string())),
        Cell::from(uptime),
        Cell::from(a.lifecycle.restarts.to_string()).style(if a.lifecycle.restarts > 0 {
            theme.warn()
        } else {
            Style::new()
        }),
        Cell::from(beat).style(theme.heartbeat(hb)),
        Cell::from(cpu),
        Cell::from(mem),
        Cell::from(status).style(status_style),
    ]
}

fn llm_cells(a: &AgentRow) -> Vec<Cell<'static>> {
    let opt = |v: Option<i64>| v.map_or("—".to_owned(), format::count);
    vec![
        // The last job of a process that is gone is not its task any more.
        Cell::from(a.reported.task.clone().filter(|_| a.lifecycle.state.has_process()).unwrap_or_default()),
        Cell::from(a.reported.model.clone().unwrap_or_default()),
        Cell::from(if a.reported.tokens_in.is_some() || a.reported.tokens_out.is_some() {
            format!("{}/{}", opt(a.reported.tokens_in), opt(a.reported.tokens_out))
        } else {
            String::new()
        }),
        Cell::from(a.reported.cost.map_or(String::new(), |c| format!("{c:.2}"))),
    ]
}

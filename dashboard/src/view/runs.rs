//! Runs and tasks on the screens: the detail screen's list of recent runs (with the next due
//! time of a scheduled agent) and tasks, the output of an opened run, and the overview's note
//! for a scheduled agent between runs.

use super::theme::Theme;
use crate::format::{self, Zone};
use crate::state::App;
use agentvisor_shared::model::{AgentRow, AgentState, LogLine, RunOutcome, Stream, TaskOutcome};
use agentvisor_shared::runs::Run;
use agentvisor_shared::tasks::Task;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};

/// "in 42s", "3m12s ago".
fn relative(ms: i64, now_ms: i64) -> String {
    if ms >= now_ms {
        format!("in {}", format::duration_ms(ms - now_ms))
    } else {
        format!("{} ago", format::duration_ms(now_ms - ms))
    }
}

/// The overview's status text for a scheduled agent between runs: "next 03:15:00Z · last
/// succeeded"; `None` for other agents and while a run goes on.
pub fn overview_note(a: &AgentRow, zone: Zone, now_ms: i64) -> Option<String> {
    let between_runs = a.lifecycle.state == AgentState::Scheduled || a.next_run_ms.is_some();
    if !between_runs || a.lifecycle.state.has_process() {
        return None;
    }
    let mut parts = Vec::new();
    match a.next_run_ms {
        Some(t) => parts.push(format!("next {}", zone.time(t, now_ms))),
        None => parts.push("schedule paused".to_owned()),
    }
    if let Some(r) = &a.last_run {
        parts.push(format!("last {}", r.outcome.as_str()));
    }
    Some(parts.join(" · "))
}

/// Whether the agent has anything for [`draw`] to list.
pub fn has_any(a: &AgentRow, runs: &[Run], tasks: &[Task]) -> bool {
    a.next_run_ms.is_some() || !runs.is_empty() || !tasks.is_empty()
}

/// Lines [`draw`] wants: a title and the rows of each list, within `max`.
pub fn height(runs: &[Run], tasks: &[Task], max: u16) -> u16 {
    let rows = |n: usize| if n == 0 { 0 } else { n as u16 + 1 };
    (rows(runs.len().max(1)) + rows(tasks.len())).min(max)
}

fn outcome_style(outcome: Option<RunOutcome>, theme: Theme) -> Style {
    match outcome {
        Some(o) if o.is_failure() => theme.bad(),
        Some(RunOutcome::Succeeded) => theme.good(),
        None => theme.title(),
        _ => theme.dim(),
    }
}

fn run_line(r: &Run, selected: bool, opened: bool, app: &App, theme: Theme) -> Line<'static> {
    let marker = match (selected, opened) {
        (true, true) => "▶ ",
        (true, false) => "> ",
        _ => "  ",
    };
    let outcome = r.outcome.map_or("running", |o| o.as_str());
    let duration = r.duration_ms.map(format::duration_ms).unwrap_or_default();
    let cost = r.cost.map(|c| format!("{c:.4}")).unwrap_or_default();
    let mut spans = vec![
        Span::raw(marker),
        Span::styled(format!("{} ", app.zone.time(r.started_ms, app.now_ms)), theme.dim()),
        Span::raw(format!("{:<8} ", r.trigger.as_str())),
        Span::styled(format!("{outcome:<9} "), outcome_style(r.outcome, theme)),
        Span::raw(format!("{duration:>7} {cost:>8}")),
    ];
    if let Some(user) = &r.user {
        spans.push(Span::styled(format!(" by {user}"), theme.dim()));
    }
    Line::from(spans)
}

fn task_line(t: &Task, app: &App, theme: Theme) -> Line<'static> {
    let (outcome, style) = match t.outcome {
        None => ("running", theme.title()),
        Some(TaskOutcome::Failed) | Some(TaskOutcome::Lost) => {
            (t.outcome.map_or("", |o| o.as_str()), theme.bad())
        }
        Some(o) => (o.as_str(), theme.dim()),
    };
    let duration = t.duration_ms.map(format::duration_ms).unwrap_or_default();
    let cost = t.cost.map(|c| format!("{c:.3}")).unwrap_or_default();
    Line::from(vec![
        Span::styled(format!("  {} ", app.zone.time(t.started_ms, app.now_ms)), theme.dim()),
        Span::styled(format!("{outcome:<9}"), style),
        Span::raw(format!("{duration:>6} {cost} ")),
        Span::raw(t.text.clone()),
    ])
}

/// The agent's recent runs (newest first, the selected one marked; the next due time in the
/// title) and tasks, in `area`.
pub fn draw(
    frame: &mut Frame<'_>,
    area: Rect,
    app: &App,
    a: &AgentRow,
    runs: &[Run],
    tasks: &[Task],
    theme: Theme,
) {
    let mut lines = Vec::new();
    let mut title = " Runs ".to_owned();
    if let Some(t) = a.next_run_ms {
        title = format!(" Runs · next {} ({}) ", app.zone.time(t, app.now_ms), relative(t, app.now_ms));
    }
    if !runs.is_empty() {
        title.push_str("· [ ] Enter ");
    }
    let block = Block::new().borders(Borders::TOP).title(Span::styled(title, theme.title()));
    if runs.is_empty() {
        lines.push(Line::styled("  none yet", theme.dim()));
    }
    let cursor = app.run_cursor.min(runs.len().saturating_sub(1));
    for (i, r) in runs.iter().enumerate() {
        lines.push(run_line(r, i == cursor, app.run_open == Some(r.id), app, theme));
    }
    if !tasks.is_empty() {
        lines.push(Line::styled(" Tasks", theme.title()));
        lines.extend(tasks.iter().map(|t| task_line(t, app, theme)));
    }
    frame.render_widget(Paragraph::new(lines).block(block), area);
}

/// The opened run's output in place of the agent's output tail; `false` when no run is open.
pub fn draw_output(
    frame: &mut Frame<'_>,
    area: Rect,
    app: &App,
    runs: &[Run],
    output: Option<&(i64, Vec<LogLine>)>,
    theme: Theme,
) -> bool {
    let Some(id) = app.run_open else { return false };
    let run = runs.iter().find(|r| r.id == id);
    let title = match run {
        Some(r) => format!(
            " Output of the {} run at {} ({}) · Esc closes ",
            r.trigger.as_str(),
            app.zone.time(r.started_ms, app.now_ms),
            r.outcome.map_or("running", |o| o.as_str())
        ),
        None => " Output of a run no longer listed · Esc closes ".to_owned(),
    };
    let block = Block::new().borders(Borders::TOP).title(Span::styled(title, theme.title()));
    let lines: &[LogLine] = output.filter(|(o, _)| *o == id).map(|(_, l)| l.as_slice()).unwrap_or_default();
    let height = usize::from(area.height.saturating_sub(1));
    let shown = &lines[lines.len().saturating_sub(height)..];
    let text: Vec<Line> = if shown.is_empty() {
        let why = if output.is_some_and(|(o, _)| *o == id) {
            "  it printed nothing (or its lines are no longer kept)"
        } else {
            "  loading…"
        };
        vec![Line::styled(why, theme.dim())]
    } else {
        shown
            .iter()
            .map(|l| {
                let style = if l.stream == Stream::Stderr { theme.warn() } else { Style::new() };
                Line::from(vec![
                    Span::styled(format!("{} ", app.zone.time(l.ts_ms, app.now_ms)), theme.dim()),
                    Span::styled(l.line.clone(), style),
                ])
            })
            .collect()
    };
    frame.render_widget(Paragraph::new(text).block(block), area);
    true
}

//! The overview's header: launcher liveness first (an operator's first question), then the
//! host, the database, and the fleet's counts.

use super::theme::Theme;
use crate::assess::{Liveness, Summary, config_error};
use crate::data::Loaded;
use crate::format::{self, Zone};
use agentvisor_shared::model::Severity;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

pub const HEIGHT: u16 = 3;

pub fn lines(data: &Loaded, now_ms: i64, zone: Zone, theme: Theme) -> Vec<Line<'static>> {
    vec![launcher_line(data, now_ms, zone, theme), host_line(data, theme), fleet_line(data, theme)]
}

/// The launcher's complaint about the config on disk, wrapped rather than cut: its useful
/// part (file:line:col and reason) comes last. `None` while the config is valid.
pub fn config_error_line(data: &Loaded, now_ms: i64, theme: Theme) -> Option<Line<'static>> {
    let liveness = Liveness::of(data.snapshot.launcher.as_ref(), now_ms);
    let error = config_error(&liveness)?;
    Some(Line::from(vec![
        Span::styled(" CONFIG ERROR ", theme.alarm()),
        Span::styled(format!(" {error}"), theme.bad()),
        Span::styled(" (the running config stays in force)", theme.dim()),
    ]))
}

/// Rows [`config_error_line`] takes at `width`, wrapped, at most three.
pub fn config_error_height(line: &Line<'_>, width: u16) -> u16 {
    let width = usize::from(width.max(1));
    line.width().div_ceil(width).clamp(1, 3) as u16
}

pub fn config_error_paragraph(line: Line<'static>) -> Paragraph<'static> {
    Paragraph::new(line).wrap(Wrap { trim: false })
}

pub fn launcher_line(data: &Loaded, now_ms: i64, zone: Zone, theme: Theme) -> Line<'static> {
    let liveness = Liveness::of(data.snapshot.launcher.as_ref(), now_ms);
    let mut spans = vec![];
    match &liveness {
        Liveness::Running { session } => {
            spans.push(Span::styled(
                format!(" launcher up {} ", format::duration_ms(now_ms - session.started_ms)),
                theme.good(),
            ));
            spans.push(Span::raw(format!(
                "pid {} on {} · v{} · since {} {}",
                session.pid,
                session.host,
                session.version,
                zone.time(session.started_ms, now_ms),
                zone.label(now_ms),
            )));
        }
        Liveness::Never => {
            spans.push(Span::styled(" no launcher has run on this database yet ", theme.warn()));
        }
        Liveness::Stale { session } | Liveness::Stopped { session } => {
            let since = liveness.down_since_ms().unwrap_or(session.last_seen_ms);
            let what = match &liveness {
                Liveness::Stale { .. } => "LAUNCHER STALE: not seen".to_owned(),
                _ => format!("LAUNCHER DOWN ({})", session.exit_reason.as_deref().unwrap_or("stopped")),
            };
            spans.push(Span::styled(
                format!(
                    " {what} since {} {} ({} ago) ",
                    zone.time(since, now_ms),
                    zone.label(now_ms),
                    format::duration_ms(now_ms - since)
                ),
                theme.alarm(),
            ));
            spans.push(Span::styled(" last known state", theme.dim()));
        }
    }
    spans.push(Span::styled(" │ ", theme.dim()));
    spans.push(Span::raw(format!("read {:.1}ms", data.read_time.as_secs_f64() * 1000.0)));
    Line::from(spans)
}

fn host_line(data: &Loaded, theme: Theme) -> Line<'static> {
    let h = &data.snapshot.host;
    let mut parts = Vec::new();
    if let Some(cpu) = h.cpu_percent {
        parts.push(format!("cpu {cpu:.0}%"));
    }
    match (h.memory_used_bytes, h.memory_total_bytes) {
        (Some(u), Some(t)) => parts.push(format!("mem {}", format::bytes_of(u, t))),
        (Some(u), None) => parts.push(format!("mem {}", format::bytes(u))),
        _ => {}
    }
    if let (Some(l1), Some(l5), Some(l15)) = (h.load1, h.load5, h.load15) {
        parts.push(format!("load {l1:.2} {l5:.2} {l15:.2}"));
    }
    let disk = h.disk_free_bytes.map(|d| format!(" · disk free {}", format::bytes(d))).unwrap_or_default();
    if parts.is_empty() {
        parts.push("host not sampled yet".into());
    }
    let db = format!(
        "db {} wal {}",
        format::bytes(data.snapshot.db_bytes as f64),
        format::bytes(data.snapshot.wal_bytes as f64)
    );
    Line::from(vec![
        Span::raw(format!(" {}", parts.join(" "))),
        Span::styled(" │ ", theme.dim()),
        Span::raw(db),
        Span::styled(disk, theme.dim()),
    ])
}

fn fleet_line(data: &Loaded, theme: Theme) -> Line<'static> {
    let s = Summary::of(&data.snapshot.agents);
    let healthy_style = if s.enabled > 0 && s.healthy == s.enabled { theme.good() } else { theme.warn() };
    let mut spans = vec![
        Span::raw(" "),
        Span::styled(format!("{}/{} healthy", s.healthy, s.enabled), healthy_style),
        Span::styled(" │ ", theme.dim()),
    ];
    // Trouble first: the states an operator acts on lead the line.
    for (i, (state, n)) in s.by_state.iter().rev().enumerate() {
        if i > 0 {
            spans.push(Span::raw(" "));
        }
        spans.push(Span::styled(format!("{n} {state}"), theme.state(*state)));
    }
    if s.by_state.is_empty() {
        spans.push(Span::styled("none registered", theme.dim()));
    }
    let errors = data.snapshot.errors_last_hour;
    spans.push(Span::styled(" │ ", theme.dim()));
    spans.push(Span::styled(
        format!("{errors} errors in 1h"),
        if errors > 0 { theme.bad() } else { theme.good() },
    ));
    // Alerts before the totals: a narrow terminal cuts the end of the line.
    let alerts = &data.snapshot.alerts;
    if !alerts.is_empty() {
        let worst = alerts.iter().map(|a| a.severity).max().unwrap_or(Severity::Warning);
        spans.push(Span::styled(" │ ", theme.dim()));
        spans.push(Span::styled(format!("{} alerts firing (a)", alerts.len()), theme.severity(worst)));
    }
    if let Some(totals) = llm_totals(data) {
        spans.push(Span::styled(" │ ", theme.dim()));
        spans.push(Span::styled(totals, theme.title()));
    }
    Line::from(spans)
}

/// Cost (what operators of LLM agents watch first) and tokens today and in the last hour,
/// from the runs (see `runs::spend_since`). Absent while nothing was reported today and no
/// agent reports totals.
fn llm_totals(data: &Loaded) -> Option<String> {
    let spend = data.spend?;
    let reporting = data.snapshot.agents.iter().any(|a| {
        a.reported.tokens_in.is_some() || a.reported.tokens_out.is_some() || a.reported.cost.is_some()
    });
    if !reporting && spend.today == Default::default() {
        return None;
    }
    let (today, hour) = (spend.today, spend.last_hour);
    Some(format!(
        "cost today {:.2} · last hour {:.2} · tokens today {} in/{} out",
        today.cost,
        hour.cost,
        format::count(today.tokens_in),
        format::count(today.tokens_out)
    ))
}

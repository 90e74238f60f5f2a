//! The fleet screen: one row per host (connection, launcher, agents healthy/total, fatal,
//! alerts, cost, last change), the reason beside a host that cannot be reached.

use super::theme::Theme;
use super::widgets::{index_at, scroll_offset, with_footer};
use crate::fleet::state::{Digest, Fleet, HostRow, Link};
use crate::format;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row, Table, TableState, Wrap};

const HINTS: &str = "q quit · ↑↓ select · Enter open the host's dashboard (Esc there comes back)";
const HEADINGS: [&str; 7] = [" HOST", "LAUNCHER", "AGENTS", "FATAL", "ALERTS", "COST", "LAST CHANGE"];

/// Title, table, the selected host's full story (its reason can be longer than a row), footer.
fn areas(area: Rect) -> (Rect, Rect, Rect, Rect) {
    let (body, footer) = with_footer(area);
    let [title, table, about] =
        Layout::vertical([Constraint::Length(2), Constraint::Fill(1), Constraint::Length(2)]).areas(body);
    (title, table, about, footer)
}

/// The host index a click at (`column`, `row`) hit, if any.
pub fn row_at(fleet: &Fleet, area: Rect, column: u16, row: u16) -> Option<usize> {
    let (_, table, _, _) = areas(area);
    let body = Rect { y: table.y + 1, height: table.height.saturating_sub(1), ..table };
    let offset = scroll_offset(fleet.selected, usize::from(body.height));
    index_at(body, offset, column, row).filter(|i| *i < fleet.hosts.len())
}

pub fn draw(frame: &mut Frame<'_>, fleet: &Fleet) {
    let theme = Theme { color: fleet.color };
    let (title, table, about, footer) = areas(frame.area());
    let (up, down, other) = fleet.counts();
    let mut spans = vec![
        Span::styled(" Agentvisor fleet", theme.title()),
        Span::raw(format!(" · {} hosts · {up} up", fleet.hosts.len())),
    ];
    if down > 0 {
        spans.push(Span::raw(" · "));
        spans.push(Span::styled(format!("{down} unreachable"), theme.bad()));
    }
    if other > 0 {
        spans.push(Span::raw(format!(" · {other} connecting or slow")));
    }
    let trouble: u64 = fleet.hosts.iter().filter_map(|h| h.digest.as_ref()).map(|d| d.fatal).sum();
    if trouble > 0 {
        spans.push(Span::raw(" · "));
        let agents = if trouble == 1 { "agent" } else { "agents" };
        spans.push(Span::styled(format!("{trouble} fatal {agents}"), theme.alarm()));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), title);

    let name_width =
        fleet.hosts.iter().map(|h| h.name.chars().count()).max().unwrap_or(4).clamp(4, 24) as u16;
    let widths = [
        Constraint::Length(name_width + 2),
        Constraint::Length(11),
        Constraint::Length(7),
        Constraint::Length(6),
        Constraint::Length(7),
        Constraint::Length(9),
        Constraint::Fill(1),
    ];
    let header = Row::new(HEADINGS.map(|h| Cell::from(h).style(theme.title())));
    let rows = fleet.hosts.iter().map(|h| host_row(h, fleet.now_ms, theme));
    let mut state = TableState::default().with_selected(Some(fleet.selected));
    let table_widget =
        Table::new(rows, widths).header(header).column_spacing(1).row_highlight_style(theme.selected());
    frame.render_stateful_widget(table_widget, table, &mut state);

    if let Some(h) = fleet.hosts.get(fleet.selected) {
        frame.render_widget(Paragraph::new(about_host(h, theme)).wrap(Wrap { trim: false }), about);
    }
    let footer_line = match &fleet.notice {
        // The notice first: the hints are on screen the rest of the time.
        Some(n) => Line::from(vec![
            Span::styled(format!(" {n} "), theme.warn()),
            Span::styled(" q quit", theme.dim()),
        ]),
        None => Line::from(Span::styled(format!(" {HINTS}"), theme.dim())),
    };
    frame.render_widget(Paragraph::new(footer_line), footer);
}

fn host_row(h: &HostRow, now: i64, theme: Theme) -> Row<'static> {
    let name = Cell::from(format!(" {}", h.name));
    // Numbers that are not known are dashes, so the reason lines up under LAST CHANGE.
    let unknown = || Cell::from("-").style(theme.dim());
    if let Link::Down { reason, retry_at_ms } = &h.link {
        let retry = format::duration_ms(retry_at_ms - now);
        // The last known figures would read as current: the reason takes their place.
        return Row::new(vec![
            name.style(theme.bad()),
            Cell::from("UNREACHABLE").style(theme.alarm()),
            unknown(),
            unknown(),
            unknown(),
            unknown(),
            Cell::from(Line::from(vec![
                Span::styled(reason.clone(), theme.bad()),
                Span::styled(format!(" · retry in {retry}"), theme.dim()),
            ])),
        ]);
    }
    let Some(d) = &h.digest else {
        let what = match &h.link {
            Link::Connecting { attempt } if *attempt > 1 => format!("attempt {attempt}"),
            Link::Silent { for_s } => format!("connected; no word for {for_s} s"),
            _ => String::new(),
        };
        let dim = |t: &str| Cell::from(t.to_owned()).style(theme.dim());
        return Row::new(vec![
            name,
            dim("connecting"),
            unknown(),
            unknown(),
            unknown(),
            unknown(),
            dim(&what),
        ]);
    };
    let (launcher, style) = launcher_cell(d, theme);
    let agents_style = if d.healthy < d.enabled { theme.warn() } else { theme.good() };
    let fatal_style = if d.fatal > 0 { theme.alarm() } else { Style::new() };
    let change = match &h.link {
        Link::Silent { for_s } => {
            Line::from(Span::styled(format!("no word for {for_s} s; last known figures"), theme.warn()))
        }
        _ => last_change(d, now, theme),
    };
    Row::new(vec![
        name,
        Cell::from(launcher).style(style),
        Cell::from(format!("{}/{}", d.healthy, d.enabled)).style(agents_style),
        Cell::from(d.fatal.to_string()).style(fatal_style),
        Cell::from(d.alerts.map_or("-".into(), |a| a.to_string())),
        Cell::from(d.cost.map_or("-".into(), |c| format!("{c:.2}"))),
        Cell::from(change),
    ])
}

/// The selected host in full: why it cannot be reached, or what it runs.
fn about_host(h: &HostRow, theme: Theme) -> Line<'static> {
    let mut spans = vec![Span::styled(format!(" {}: ", h.name), theme.title())];
    match (&h.link, &h.digest) {
        (Link::Down { reason, .. }, _) => spans.push(Span::styled(reason.clone(), theme.bad())),
        (_, Some(d)) => {
            let mut facts = vec![format!("verdict {} (exit {})", d.verdict, d.exit_code)];
            facts.extend(d.launcher_version.as_ref().map(|v| format!("launcher v{v}")));
            facts.extend(d.schema_version.map(|v| format!("schema v{v}")));
            facts.extend(d.database_error.clone());
            spans.push(Span::raw(facts.join(" · ")));
        }
        (_, None) => spans.push(Span::styled("no document yet", theme.dim())),
    }
    Line::from(spans)
}

fn launcher_cell(d: &Digest, theme: Theme) -> (String, Style) {
    match d.launcher.as_deref() {
        Some("running") => ("up".into(), theme.good()),
        Some("stale") => ("STALE".into(), theme.alarm()),
        Some("stopped") => ("DOWN".into(), theme.alarm()),
        Some("never") => ("never run".into(), theme.warn()),
        Some(other) => (other.to_owned(), theme.warn()),
        None => ("no database".into(), theme.alarm()),
    }
}

fn last_change(d: &Digest, now: i64, theme: Theme) -> Line<'static> {
    if let Some(e) = &d.database_error {
        return Line::from(Span::styled(e.clone(), theme.bad()));
    }
    match (d.last_change_ms, &d.last_change) {
        (Some(t), Some(what)) => Line::from(vec![
            Span::styled(format!("{} ago ", format::duration_ms(now - t)), theme.dim()),
            Span::raw(what.clone()),
        ]),
        _ => Line::from(Span::styled("-", theme.dim())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::link::{HostMsg, Update};
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;
    use serde_json::json;
    use std::time::Duration;

    /// 2026-11-18T11:06:40Z, as in the other screens' snapshots.
    const NOW: i64 = 1_795_000_000_000;

    fn doc(launcher: &str, healthy: u64, enabled: u64, fatal: u64, change: &str) -> Box<serde_json::Value> {
        Box::new(json!({
            "stream": 1, "type": "status",
            "fleet": {
                "launcher": launcher, "healthy": healthy, "enabled": enabled, "fatal": fatal,
                "alerts_firing": null, "cost": if fatal > 0 { json!(null) } else { json!(12.375) },
                "last_change_at": "2026-11-18T11:05:10Z", "last_change": change, "database_error": null,
            },
            "status": {"verdict": "ok", "exit_code": 0, "database": {"schema_version": 5}},
        }))
    }

    fn fleet() -> Fleet {
        let names = ["gpu-box", "worker-1", "worker-2", "staging", "new-box"].map(str::to_owned);
        let mut f = Fleet::new(names, false);
        f.now_ms = NOW;
        let mut send = |host, update| f.on_host(HostMsg { host, update });
        send(0, Update::Document(doc("running", 4, 4, 0, "trainer: ready")));
        send(1, Update::Document(doc("stopped", 0, 3, 1, "launcher stopped (signal SIGTERM)")));
        let reason = "ssh: connect to host worker-2 port 22: Connection refused".to_owned();
        send(2, Update::Down { reason, retry_in: Duration::from_secs(8) });
        send(3, Update::Document(doc("running", 2, 2, 0, "web: ready")));
        send(3, Update::Silent { for_s: 17 });
        f
    }

    fn render(f: &Fleet, w: u16, h: u16) -> Terminal<TestBackend> {
        let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
        t.draw(|frame| draw(frame, f)).unwrap();
        t
    }

    #[test]
    fn fleet_screen() {
        insta::assert_snapshot!("fleet_100x12", render(&fleet(), 100, 12).backend());
    }

    #[test]
    fn fleet_screen_with_a_notice_narrow() {
        let mut f = fleet();
        f.selected = 2;
        f.notice = Some("worker-2: the dashboard there ended with exit code 255".into());
        insta::assert_snapshot!("fleet_80x10_notice", render(&f, 80, 10).backend());
    }

    #[test]
    fn clicks_hit_host_rows() {
        let f = fleet();
        let area = Rect::new(0, 0, 100, 12);
        let text = render(&f, 100, 12).backend().to_string();
        let row = text.lines().position(|l| l.contains(" staging ")).unwrap() as u16;
        assert_eq!(row_at(&f, area, 3, row), Some(3));
        assert_eq!(row_at(&f, area, 3, 0), None);
    }
}

//! The dashboard's state: plain data filled from snapshots and changed by [`Action`]s. Nothing
//! here draws or reads the database, so every transition is unit-tested directly.

pub mod agents;
pub mod events;

pub use agents::SortKey;
pub use events::EventQuery;

use events::EVENTS_SHOWN;

/// Newest events read for the overview's free rows: more than a tall terminal has left.
const OVERVIEW_EVENTS: i64 = 40;

use crate::data::{DataMsg, Focus, Loaded, Window};
use crate::format::Zone;
use crate::input::Action;
use agentvisor_shared::model::{AgentRow, Event, metric};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Screen {
    #[default]
    Overview,
    Detail,
    Events,
    /// One event in full, opened from the Events screen.
    EventDetail,
    /// The alerts firing now (`a`).
    Alerts,
}

/// What the data thread last said about the database.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// Nothing heard yet (the first read is under way).
    Starting,
    Waiting {
        path: String,
        how: String,
        reason: String,
    },
    Failed {
        path: String,
        how: String,
        message: String,
    },
    Live,
}

#[derive(Debug, Clone, PartialEq)]
pub struct App {
    pub screen: Screen,
    /// The screens `Esc` returns to, the most recent last: opening something pushes the
    /// screen it was opened from.
    pub history: Vec<Screen>,
    pub help: bool,
    pub source: Source,
    /// The last data read; kept when the database later fails, so the last known state stays
    /// visible (marked stale).
    pub data: Option<Loaded>,
    /// The agent under the cursor, by name.
    pub selected: Option<String>,
    pub sort: SortKey,
    /// The sort order turned round (`S`).
    pub sort_reverse: bool,
    /// The overview's filter text.
    pub filter: String,
    /// The Events screen's filter text (parsed into an [`EventQuery`]).
    pub events_filter: String,
    /// Whether keys currently type into the current screen's filter.
    pub editing: bool,
    /// The agent the detail screen shows.
    pub detail_agent: Option<String>,
    pub window: Window,
    /// Lines the detail screen's output tail is scrolled up from the newest.
    pub log_scroll: usize,
    /// The selected row of the Events screen.
    pub event_index: usize,
    /// The event the event detail screen shows, kept as it was when opened so a refresh that
    /// moves the list does not change it.
    pub event_open: Option<Event>,
    /// The selected row of the Alerts screen.
    pub alert_index: usize,
    /// The first chart shown on the detail screen, when there are more than fit side by side.
    pub chart_offset: usize,
    /// The detail screen's selected run (0: the newest) and the run whose output it shows.
    pub run_cursor: usize,
    pub run_open: Option<i64>,
    pub spark_metric: String,
    /// The clock the screens measure ages against, set before each frame (fixed in tests).
    pub now_ms: i64,
    /// The zone times are shown in.
    pub zone: Zone,
    pub color: bool,
    pub quit: bool,
    /// Esc on the overview (with no filter) quits: the fleet view opened this dashboard.
    pub back_on_esc: bool,
}

impl App {
    pub fn new(color: bool) -> App {
        App {
            screen: Screen::Overview,
            history: Vec::new(),
            help: false,
            source: Source::Starting,
            data: None,
            selected: None,
            sort: SortKey::default(),
            sort_reverse: false,
            filter: String::new(),
            events_filter: String::new(),
            editing: false,
            detail_agent: None,
            window: Window::default(),
            log_scroll: 0,
            event_index: 0,
            event_open: None,
            alert_index: 0,
            chart_offset: 0,
            run_cursor: 0,
            run_open: None,
            spark_metric: metric::CPU_PERCENT.to_owned(),
            now_ms: 0,
            zone: Zone::Local,
            color,
            quit: false,
            back_on_esc: false,
        }
    }

    pub fn agents(&self) -> &[AgentRow] {
        self.data.as_ref().map(|d| d.snapshot.agents.as_slice()).unwrap_or_default()
    }

    /// The overview's rows: filtered and sorted.
    pub fn visible_agents(&self) -> Vec<&AgentRow> {
        agents::visible(self.agents(), &self.filter, self.sort, self.sort_reverse, self.now_ms)
    }

    pub fn selected_index(&self) -> Option<usize> {
        agents::selected_index(&self.visible_agents(), self.selected.as_deref())
    }

    pub fn event_query(&self) -> EventQuery {
        EventQuery::parse(&self.events_filter)
    }

    /// What the data thread should read besides the snapshot, for a screen of `rows` lines.
    pub fn focus(&self, rows: usize) -> Focus {
        Focus {
            spark_metric: self.spark_metric.clone(),
            spark_agents: self.sparkline_agents(rows),
            detail: match self.screen {
                Screen::Detail => self.detail_agent.clone().map(|a| (a, self.window)),
                _ => None,
            },
            events: match self.screen {
                Screen::Events | Screen::EventDetail => Some(self.event_query().to_filter(EVENTS_SHOWN)),
                // The overview shows the newest events in the rows its table leaves free.
                Screen::Overview => {
                    Some(agentvisor_shared::EventFilter { limit: OVERVIEW_EVENTS, ..Default::default() })
                }
                Screen::Detail | Screen::Alerts => None,
            },
            run: self.run_open.filter(|_| self.screen == Screen::Detail),
        }
    }

    /// The overview rows that a screen of `rows` lines can show around the selection: only
    /// these have sparklines drawn, so only these are read (with a thousand agents, reading
    /// all of them would cost more than the rest of a refresh).
    fn sparkline_agents(&self, rows: usize) -> Vec<String> {
        if self.screen != Screen::Overview {
            return Vec::new();
        }
        let visible = self.visible_agents();
        let selected = self.selected_index().unwrap_or(0);
        let start = selected.saturating_sub(rows);
        let end = visible.len().min(selected + rows + 1);
        visible.get(start..end).unwrap_or_default().iter().map(|a| a.name.clone()).collect()
    }

    pub fn on_data(&mut self, msg: DataMsg) {
        match msg {
            DataMsg::Waiting { path, how, reason } => {
                self.source = Source::Waiting { path: path.display().to_string(), how, reason };
            }
            DataMsg::Failed { path, how, message } => {
                self.source = Source::Failed { path: path.display().to_string(), how, message };
            }
            DataMsg::Loaded(loaded) => {
                self.source = Source::Live;
                self.log_scroll = self.anchored_scroll(loaded.detail.as_ref());
                self.data = Some(*loaded);
                let count = self.events_shown();
                self.event_index = self.event_index.min(count.saturating_sub(1));
                self.alert_index = self.alert_index.min(self.alerts_shown().saturating_sub(1));
            }
        }
    }

    /// The output pane's scroll for newly read lines that keeps the same line at its bottom:
    /// scrolled back, an operator reads lines that must not move while new ones arrive.
    fn anchored_scroll(&self, new: Option<&crate::data::Detail>) -> usize {
        let old = self.data.as_ref().and_then(|d| d.detail.as_ref());
        let (Some(old), Some(new)) = (old, new) else { return self.log_scroll };
        if self.log_scroll == 0 || old.agent != new.agent {
            return self.log_scroll;
        }
        let Some(bottom) = old.logs.len().checked_sub(self.log_scroll + 1).map(|i| old.logs[i].id) else {
            return self.log_scroll;
        };
        match new.logs.iter().position(|l| l.id == bottom) {
            Some(i) => new.logs.len() - 1 - i,
            // The line has aged out of the tail read: stay at the oldest line there is.
            None => new.logs.len(),
        }
    }

    fn alerts_shown(&self) -> usize {
        self.data.as_ref().map_or(0, |d| d.snapshot.alerts.len())
    }

    fn events_shown(&self) -> usize {
        self.data.as_ref().and_then(|d| d.events.as_ref()).map_or(0, Vec::len)
    }

    pub fn apply(&mut self, action: Action) {
        if self.editing {
            self.apply_editing(action);
            return;
        }
        match action {
            Action::Quit => self.quit = true,
            Action::ToggleHelp => self.help = !self.help,
            Action::Back if self.help => self.help = false,
            _ if self.help => {}
            Action::Back => self.back(),
            // Tab goes sideways between the two lists: nothing to go back to.
            Action::NextScreen => {
                self.screen = match self.screen {
                    Screen::Events => Screen::Overview,
                    _ => Screen::Events,
                };
                self.history.clear();
            }
            Action::Alerts => {
                if self.screen == Screen::Alerts {
                    self.back();
                } else {
                    self.go(Screen::Alerts);
                }
            }
            Action::StartFilter if matches!(self.screen, Screen::Overview | Screen::Events) => {
                // What is typed next is a new word, never glued to the last one (`v` leaves
                // `sev:warning` there).
                let text = self.filter_text();
                if !text.is_empty() && !text.ends_with(' ') {
                    text.push(' ');
                }
                self.editing = true;
            }
            Action::CycleSort if self.screen == Screen::Overview => self.sort = self.sort.next(),
            Action::ReverseSort if self.screen == Screen::Overview => self.sort_reverse = !self.sort_reverse,
            Action::Move(delta) => self.move_by(delta),
            Action::Select(i) => self.select(i),
            Action::Open if self.screen == Screen::Detail => self.open_run(),
            Action::Open => self.open(),
            Action::RunCursor(delta) if self.screen == Screen::Detail => self.move_run(delta),
            Action::NextWindow => self.set_window(self.window.next()),
            Action::PrevWindow => self.set_window(self.window.prev()),
            Action::Window(i) => {
                if let Some(w) = Window::ALL.get(i) {
                    self.set_window(*w);
                }
            }
            Action::CycleSeverity if self.screen == Screen::Events => self.cycle_severity(),
            Action::CycleMetric if self.screen == Screen::Overview => self.cycle_metric(),
            // The view wraps the offset around the number of charts it has.
            Action::CycleMetric if self.screen == Screen::Detail => {
                self.chart_offset = self.chart_offset.wrapping_add(1)
            }
            _ => {}
        }
    }

    fn filter_text(&mut self) -> &mut String {
        if self.screen == Screen::Events { &mut self.events_filter } else { &mut self.filter }
    }

    fn apply_editing(&mut self, action: Action) {
        let before = self.event_query().to_filter(EVENTS_SHOWN);
        self.apply_edit(action);
        if self.event_query().to_filter(EVENTS_SHOWN) != before {
            self.events_query_changed();
        }
    }

    /// The Events list read for the old query is not the list the new title names: it goes
    /// until the data thread has read the new one (the screen says "loading" meanwhile; the
    /// new query is a new focus, which the data thread reads at once).
    fn events_query_changed(&mut self) {
        if self.screen == Screen::Events
            && let Some(d) = self.data.as_mut()
        {
            d.events = None;
        }
    }

    fn apply_edit(&mut self, action: Action) {
        let text = self.filter_text();
        match action {
            Action::Char(c) => text.push(c),
            Action::Backspace => {
                text.pop();
            }
            Action::ClearLine => text.clear(),
            Action::Open => {
                let trimmed = text.trim_end().len();
                text.truncate(trimmed);
                self.editing = false;
            }
            Action::Back => {
                text.clear();
                self.editing = false;
            }
            Action::Quit => self.quit = true,
            _ => {}
        }
        self.event_index = 0;
    }

    /// Back where the screen was opened from; on the overview, clears its filter.
    fn back(&mut self) {
        if self.screen == Screen::Detail && self.run_open.take().is_some() {
            return;
        }
        if let Some(screen) = self.history.pop() {
            self.screen = screen;
            return;
        }
        match self.screen {
            Screen::Overview if self.back_on_esc && self.filter.is_empty() => self.quit = true,
            Screen::Overview => self.filter.clear(),
            _ => self.screen = Screen::Overview,
        }
    }

    fn go(&mut self, screen: Screen) {
        if self.screen != screen {
            self.history.push(self.screen);
        }
        self.screen = screen;
    }

    fn detail_runs(&self) -> &[agentvisor_shared::runs::Run] {
        self.data.as_ref().and_then(|d| d.detail.as_ref()).map(|d| d.runs.as_slice()).unwrap_or_default()
    }

    /// Enter on the detail screen: shows the selected run's output in place of the output
    /// tail (Esc closes it).
    fn open_run(&mut self) {
        let runs = self.detail_runs();
        self.run_open = runs.get(self.run_cursor.min(runs.len().saturating_sub(1))).map(|r| r.id);
    }

    /// `[` and `]`: the previous (newer) or next (older) run; an opened run's output follows.
    fn move_run(&mut self, delta: isize) {
        let last = self.detail_runs().len().saturating_sub(1);
        self.run_cursor = self.run_cursor.saturating_add_signed(delta).min(last);
        if self.run_open.is_some() {
            self.open_run();
        }
    }

    fn move_by(&mut self, delta: isize) {
        match self.screen {
            Screen::Overview => {
                if let Some(name) = agents::moved(&self.visible_agents(), self.selected.as_deref(), delta) {
                    self.selected = Some(name);
                }
            }
            // Moving down shows newer output, towards the tail; up stops at the oldest line.
            Screen::Detail => {
                let lines = self.data.as_ref().and_then(|d| d.detail.as_ref()).map_or(0, |d| d.logs.len());
                self.log_scroll = self.log_scroll.saturating_add_signed(-delta).min(lines);
            }
            Screen::Events => {
                let last = self.events_shown().saturating_sub(1);
                self.event_index = self.event_index.saturating_add_signed(delta).min(last);
            }
            // The neighbouring events of the list it was opened from.
            Screen::EventDetail => {
                let last = self.events_shown().saturating_sub(1);
                self.event_index = self.event_index.saturating_add_signed(delta).min(last);
                if let Some(e) = self.listed_event() {
                    self.event_open = Some(e.clone());
                }
            }
            Screen::Alerts => {
                let last = self.alerts_shown().saturating_sub(1);
                self.alert_index = self.alert_index.saturating_add_signed(delta).min(last);
            }
        }
    }

    fn listed_event(&self) -> Option<&Event> {
        self.data.as_ref().and_then(|d| d.events.as_ref()).and_then(|e| e.get(self.event_index))
    }

    fn select(&mut self, index: usize) {
        match self.screen {
            Screen::Overview => {
                if let Some(a) = self.visible_agents().get(index) {
                    self.selected = Some(a.name.clone());
                }
            }
            Screen::Events => self.event_index = index.min(self.events_shown().saturating_sub(1)),
            Screen::Alerts => self.alert_index = index.min(self.alerts_shown().saturating_sub(1)),
            Screen::Detail | Screen::EventDetail => {}
        }
    }

    /// Enter: an agent row opens its detail, an event its event detail, and an event's
    /// detail the event's agent.
    fn open(&mut self) {
        let agent = match self.screen {
            Screen::Overview => {
                self.selected_index().and_then(|i| self.visible_agents().get(i).map(|a| a.name.clone()))
            }
            Screen::Events => {
                if let Some(e) = self.listed_event() {
                    self.event_open = Some(e.clone());
                    self.go(Screen::EventDetail);
                }
                return;
            }
            Screen::EventDetail => self.event_open.as_ref().and_then(|e| e.agent.clone()),
            Screen::Alerts => self
                .data
                .as_ref()
                .and_then(|d| d.snapshot.alerts.get(self.alert_index))
                .map(|a| a.agent.clone()),
            Screen::Detail => None,
        };
        // An event of an agent that is no longer registered has no detail screen to open.
        if let Some(name) = agent.filter(|n| self.agents().iter().any(|a| a.name == *n)) {
            self.selected = Some(name.clone());
            self.detail_agent = Some(name);
            self.log_scroll = 0;
            self.chart_offset = 0;
            self.run_cursor = 0;
            self.run_open = None;
            self.go(Screen::Detail);
        }
    }

    fn set_window(&mut self, w: Window) {
        if self.screen == Screen::Detail {
            self.window = w;
        }
    }

    fn cycle_severity(&mut self) {
        let mut query = self.event_query();
        let next = events::next_severity(query.min_severity);
        query.min_severity = Some(next);
        let mut words: Vec<String> = self
            .events_filter
            .split_whitespace()
            .filter(|w| !w.starts_with("sev"))
            .map(str::to_owned)
            .collect();
        words.push(format!("sev:{next}"));
        self.events_filter = words.join(" ");
        self.event_index = 0;
        self.events_query_changed();
    }

    /// Cycles the sparkline between CPU, memory and every custom metric any agent reports.
    fn cycle_metric(&mut self) {
        let mut names: Vec<&str> = vec![metric::CPU_PERCENT, metric::MEMORY_BYTES];
        for a in self.agents() {
            for (name, _) in a.custom_metrics() {
                if !names.contains(&name) {
                    names.push(name);
                }
            }
        }
        let i = names.iter().position(|n| *n == self.spark_metric).map_or(0, |i| (i + 1) % names.len());
        self.spark_metric = names[i].to_owned();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assess::tests::agent;
    use agentvisor_shared::model::{AgentState, Event, Health, Severity};
    use std::time::Duration;

    fn loaded(agents: Vec<AgentRow>, events: Option<Vec<Event>>) -> DataMsg {
        DataMsg::Loaded(Box::new(Loaded {
            snapshot: crate::assess::tests::snapshot(None, agents),
            sparklines: Default::default(),
            detail: None,
            events,
            spend: None,
            read_time: Duration::ZERO,
        }))
    }

    fn app() -> App {
        let mut app = App::new(true);
        let mut b = agent("b", AgentState::Fatal, Health::Unknown);
        b.position = 1;
        b.metrics.insert("queue_depth".into(), 1.0);
        app.on_data(loaded(vec![agent("a", AgentState::Running, Health::Healthy), b], None));
        app
    }

    #[test]
    fn sparklines_are_read_only_for_rows_that_can_be_on_screen() {
        let mut app = App::new(true);
        let fleet = (0..100)
            .map(|i| {
                let mut a = agent(&format!("a{i:03}"), AgentState::Running, Health::Healthy);
                a.position = i;
                a
            })
            .collect();
        app.on_data(loaded(fleet, None));
        assert_eq!(app.focus(10).spark_agents.len(), 11, "from the top: the selection and 10 rows");
        app.apply(Action::Move(50));
        let names = app.focus(10).spark_agents;
        assert_eq!(names.first().map(String::as_str), Some("a040"));
        assert_eq!(names.last().map(String::as_str), Some("a060"));
        app.apply(Action::Open);
        assert!(app.focus(10).spark_agents.is_empty(), "no sparklines on the detail screen");
    }

    #[test]
    fn selection_open_and_back() {
        let mut app = app();
        assert_eq!(app.selected_index(), Some(0));
        app.apply(Action::Move(1));
        assert_eq!(app.selected.as_deref(), Some("b"));
        app.apply(Action::Move(1));
        assert_eq!(app.selected.as_deref(), Some("b"), "clamped at the last row");
        app.apply(Action::Open);
        assert_eq!((app.screen, app.detail_agent.as_deref()), (Screen::Detail, Some("b")));
        assert_eq!(app.focus(24).detail, Some(("b".into(), Window::M5)));
        app.apply(Action::CycleMetric);
        assert_eq!(
            (app.chart_offset, app.spark_metric.as_str()),
            (1, metric::CPU_PERCENT),
            "m pages charts here"
        );
        app.apply(Action::NextWindow);
        assert_eq!(app.window, Window::H1);
        app.apply(Action::Window(4));
        assert_eq!(app.window, Window::D7);
        app.apply(Action::Move(-3));
        assert_eq!(app.log_scroll, 0, "no output loaded: nothing to scroll");
        app.apply(Action::Back);
        assert_eq!(app.screen, Screen::Overview);
        assert_eq!(app.focus(24).detail, None);
    }

    #[test]
    fn sort_keeps_the_selected_agent() {
        let mut app = app();
        app.apply(Action::Move(1));
        for _ in 0..2 {
            app.apply(Action::CycleSort);
        }
        assert_eq!(app.sort, SortKey::State);
        assert_eq!(app.selected_index(), Some(0), "fatal b sorts first and stays selected");
        assert_eq!(app.selected.as_deref(), Some("b"));
    }

    #[test]
    fn filter_editing() {
        let mut app = app();
        app.apply(Action::StartFilter);
        assert!(app.editing);
        for c in "fat".chars() {
            app.apply(Action::Char(c));
        }
        app.apply(Action::Char('q'));
        app.apply(Action::Backspace);
        assert_eq!(app.filter, "fat");
        assert!(!app.quit, "q types while editing");
        assert_eq!(app.visible_agents().len(), 1);
        app.apply(Action::Open);
        assert!(!app.editing);
        app.apply(Action::Back);
        assert_eq!(app.filter, "", "Esc on the overview clears the filter");
        app.apply(Action::StartFilter);
        app.apply(Action::Char('x'));
        app.apply(Action::Back);
        assert_eq!((app.filter.as_str(), app.editing), ("", false));
    }

    #[test]
    fn events_screen_filter_severity_and_open() {
        let mut app = app();
        app.apply(Action::NextScreen);
        assert_eq!(app.screen, Screen::Events);
        app.apply(Action::CycleSeverity);
        app.apply(Action::CycleSeverity);
        assert_eq!(app.events_filter, "sev:error");
        assert_eq!(app.focus(24).events.map(|f| f.min_severity), Some(Severity::Error));
        let ev = |id, agent: Option<&str>| Event {
            id,
            ts_ms: 0,
            agent: agent.map(str::to_owned),
            kind: "crashed".into(),
            severity: Severity::Error,
            message: String::new(),
        };
        app.on_data(loaded(app.agents().to_vec(), Some(vec![ev(2, None), ev(1, Some("b"))])));
        app.apply(Action::Move(5));
        assert_eq!(app.event_index, 1);
        app.apply(Action::Open);
        assert_eq!(app.screen, Screen::EventDetail, "Enter on an event opens the event");
        assert_eq!(app.event_open.as_ref().map(|e| e.id), Some(1));
        app.apply(Action::Move(-1));
        assert_eq!(app.event_open.as_ref().map(|e| e.id), Some(2), "↑ shows the newer event");
        app.apply(Action::Open);
        assert_eq!(app.screen, Screen::EventDetail, "the launcher's event has no agent to open");
        app.apply(Action::Move(1));
        app.apply(Action::Open);
        assert_eq!((app.screen, app.detail_agent.as_deref()), (Screen::Detail, Some("b")));
        // Esc goes back the way it came: event detail, events, then the overview.
        app.apply(Action::Back);
        assert_eq!(app.screen, Screen::EventDetail);
        app.apply(Action::Back);
        assert_eq!(app.screen, Screen::Events);
        app.apply(Action::Back);
        assert_eq!(app.screen, Screen::Overview);
        app.apply(Action::NextScreen);
        app.apply(Action::NextScreen);
        assert_eq!(app.screen, Screen::Overview);
    }

    /// `v` then `/` then a name: two words, not `sev:warningflaky`; Ctrl-U clears the line.
    #[test]
    fn the_events_filter_keeps_what_is_typed() {
        let mut app = app();
        app.apply(Action::NextScreen);
        app.apply(Action::CycleSeverity);
        app.apply(Action::StartFilter);
        for c in "flaky".chars() {
            app.apply(Action::Char(c));
        }
        app.apply(Action::Open);
        assert_eq!(app.events_filter, "sev:warning flaky");
        let q = app.event_query();
        assert_eq!((q.agent.as_deref(), q.min_severity), (Some("flaky"), Some(Severity::Warning)));
        app.apply(Action::StartFilter);
        app.apply(Action::ClearLine);
        for c in "kind:nope".chars() {
            app.apply(Action::Char(c));
        }
        assert_eq!(app.event_query().unknown, ["kind:nope"]);
        app.apply(Action::Open);
        assert_eq!(app.events_filter, "kind:nope");
    }

    /// A list read for the old filter is not shown under the new one's title.
    #[test]
    fn a_new_events_query_drops_the_old_list() {
        let mut app = app();
        app.apply(Action::NextScreen);
        app.on_data(loaded(app.agents().to_vec(), Some(vec![])));
        app.apply(Action::StartFilter);
        app.apply(Action::Char(' '));
        assert!(app.data.as_ref().unwrap().events.is_some(), "the same query: the list stays");
        app.apply(Action::Char('b'));
        assert!(app.data.as_ref().unwrap().events.is_none());
        app.apply(Action::Open);
        app.on_data(loaded(app.agents().to_vec(), Some(vec![])));
        app.apply(Action::CycleSeverity);
        assert!(app.data.as_ref().unwrap().events.is_none());
    }

    /// Scrolled back, the output pane keeps showing the same lines while new ones arrive.
    #[test]
    fn scrolled_output_stays_put() {
        use agentvisor_shared::model::{LogLine, Stream};
        let mut app = app();
        app.apply(Action::Open);
        let with_logs = |app: &App, ids: std::ops::Range<i64>| {
            let logs = ids
                .map(|id| LogLine {
                    id,
                    agent: "a".into(),
                    stream: Stream::Stdout,
                    ts_ms: id,
                    line: String::new(),
                })
                .collect();
            let mut l = app.data.clone().unwrap();
            l.detail = Some(crate::data::Detail {
                agent: "a".into(),
                window: Window::M5,
                config: None,
                charts: vec![],
                events: vec![],
                logs,
                runs: vec![],
                tasks: vec![],
                run_output: None,
            });
            DataMsg::Loaded(Box::new(l))
        };
        app.on_data(with_logs(&app, 0..50));
        app.apply(Action::Move(-10));
        assert_eq!(app.log_scroll, 10, "line 39 at the bottom");
        app.on_data(with_logs(&app, 5..60));
        assert_eq!(app.log_scroll, 20, "line 39 still at the bottom");
        app.apply(Action::Move(100));
        app.on_data(with_logs(&app, 5..70));
        assert_eq!(app.log_scroll, 0, "at the tail, it follows the tail");
    }

    #[test]
    fn help_swallows_keys_until_closed_and_metric_cycles() {
        let mut app = app();
        app.apply(Action::ToggleHelp);
        app.apply(Action::Move(1));
        assert_eq!(app.selected, None);
        app.apply(Action::Back);
        assert!(!app.help);
        app.apply(Action::CycleMetric);
        assert_eq!(app.spark_metric, metric::MEMORY_BYTES);
        app.apply(Action::CycleMetric);
        assert_eq!(app.spark_metric, "queue_depth");
        app.apply(Action::CycleMetric);
        assert_eq!(app.spark_metric, metric::CPU_PERCENT);
        app.apply(Action::Quit);
        assert!(app.quit);
    }

    #[test]
    fn waiting_then_failed_keeps_last_data() {
        let mut app = app();
        app.on_data(DataMsg::Failed { path: "/x".into(), how: "the default".into(), message: "boom".into() });
        assert!(matches!(app.source, Source::Failed { .. }));
        assert_eq!(app.agents().len(), 2);
    }
}

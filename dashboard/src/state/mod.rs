//! The dashboard's state: plain data filled from snapshots and changed by [`Action`]s. Nothing
//! here draws or reads the database, so every transition is unit-tested directly.

pub mod agents;
pub mod events;

pub use agents::SortKey;
pub use events::EventQuery;

use events::EVENTS_SHOWN;

use crate::data::{DataMsg, Focus, Loaded, Window};
use crate::input::Action;
use agentvisor_shared::model::{AgentRow, metric};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Screen {
    #[default]
    Overview,
    Detail,
    Events,
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
    pub help: bool,
    pub source: Source,
    /// The last data read; kept when the database later fails, so the last known state stays
    /// visible (marked stale).
    pub data: Option<Loaded>,
    /// The agent under the cursor, by name.
    pub selected: Option<String>,
    pub sort: SortKey,
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
    /// The first chart shown on the detail screen, when there are more than fit side by side.
    pub chart_offset: usize,
    /// The detail screen's selected run (0: the newest) and the run whose output it shows.
    pub run_cursor: usize,
    pub run_open: Option<i64>,
    pub spark_metric: String,
    /// The clock the screens measure ages against, set before each frame (fixed in tests).
    pub now_ms: i64,
    pub color: bool,
    pub quit: bool,
}

impl App {
    pub fn new(color: bool) -> App {
        App {
            screen: Screen::Overview,
            help: false,
            source: Source::Starting,
            data: None,
            selected: None,
            sort: SortKey::default(),
            filter: String::new(),
            events_filter: String::new(),
            editing: false,
            detail_agent: None,
            window: Window::default(),
            log_scroll: 0,
            event_index: 0,
            chart_offset: 0,
            run_cursor: 0,
            run_open: None,
            spark_metric: metric::CPU_PERCENT.to_owned(),
            now_ms: 0,
            color,
            quit: false,
        }
    }

    pub fn agents(&self) -> &[AgentRow] {
        self.data.as_ref().map(|d| d.snapshot.agents.as_slice()).unwrap_or_default()
    }

    /// The overview's rows: filtered and sorted.
    pub fn visible_agents(&self) -> Vec<&AgentRow> {
        agents::visible(self.agents(), &self.filter, self.sort, self.now_ms)
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
            events: (self.screen == Screen::Events).then(|| self.event_query().to_filter(EVENTS_SHOWN)),
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
                self.data = Some(*loaded);
                let count = self.events_shown();
                self.event_index = self.event_index.min(count.saturating_sub(1));
            }
        }
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
            Action::NextScreen => {
                self.screen = match self.screen {
                    Screen::Overview | Screen::Detail => Screen::Events,
                    Screen::Events => Screen::Overview,
                }
            }
            Action::StartFilter if self.screen != Screen::Detail => self.editing = true,
            Action::CycleSort if self.screen == Screen::Overview => self.sort = self.sort.next(),
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

    fn apply_editing(&mut self, action: Action) {
        let text = if self.screen == Screen::Events { &mut self.events_filter } else { &mut self.filter };
        match action {
            Action::Char(c) => text.push(c),
            Action::Backspace => {
                text.pop();
            }
            Action::Open => self.editing = false,
            Action::Back => {
                text.clear();
                self.editing = false;
            }
            Action::Quit => self.quit = true,
            _ => {}
        }
        self.event_index = 0;
    }

    fn back(&mut self) {
        if self.screen == Screen::Detail && self.run_open.take().is_some() {
            return;
        }
        match self.screen {
            Screen::Overview => self.filter.clear(),
            Screen::Detail | Screen::Events => self.screen = Screen::Overview,
        }
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
        }
    }

    fn select(&mut self, index: usize) {
        match self.screen {
            Screen::Overview => {
                if let Some(a) = self.visible_agents().get(index) {
                    self.selected = Some(a.name.clone());
                }
            }
            Screen::Events => self.event_index = index.min(self.events_shown().saturating_sub(1)),
            Screen::Detail => {}
        }
    }

    fn open(&mut self) {
        let agent = match self.screen {
            Screen::Overview => {
                self.selected_index().and_then(|i| self.visible_agents().get(i).map(|a| a.name.clone()))
            }
            Screen::Events => self
                .data
                .as_ref()
                .and_then(|d| d.events.as_ref())
                .and_then(|e| e.get(self.event_index))
                .and_then(|e| e.agent.clone()),
            Screen::Detail => None,
        };
        if let Some(name) = agent {
            self.selected = Some(name.clone());
            self.detail_agent = Some(name);
            self.log_scroll = 0;
            self.chart_offset = 0;
            self.run_cursor = 0;
            self.run_open = None;
            self.screen = Screen::Detail;
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
        assert_eq!((app.screen, app.detail_agent.as_deref()), (Screen::Detail, Some("b")));
        app.apply(Action::NextScreen);
        app.apply(Action::NextScreen);
        assert_eq!(app.screen, Screen::Overview);
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

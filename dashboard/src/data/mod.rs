//! Data for the screens: what the UI asks for ([`Focus`]), what it gets back ([`DataMsg`]),
//! the windows its charts span ([`Window`]), and the thread that reads it ([`loader`]) when
//! [`watch`] says the database changed. It knows nothing of the UI's state: the state asks in
//! terms of this module, never the other way round.

pub mod loader;
pub mod watch;
pub mod window;

pub use window::Window;

use agentvisor_shared::EventFilter;
use agentvisor_shared::model::{Event, LogLine, Point, Snapshot};
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

/// What the UI shows besides the overview, so the data thread reads only that.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Focus {
    /// The metric of the overview's sparklines.
    pub spark_metric: String,
    /// The agents whose sparklines can be on screen.
    pub spark_agents: Vec<String>,
    /// The agent on the detail screen and its chart window.
    pub detail: Option<(String, Window)>,
    /// The Events screen's read (its filter and how many rows it holds), while it is shown.
    pub events: Option<EventFilter>,
    /// The run whose output the detail screen shows (`runs.id`), if one is opened.
    pub run: Option<i64>,
}

/// One refresh: the snapshot plus whatever the focus asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded {
    pub snapshot: Snapshot,
    /// Recent values of the focus's sparkline metric, per agent, oldest first.
    pub sparklines: HashMap<String, Vec<f64>>,
    pub detail: Option<Detail>,
    pub events: Option<Vec<Event>>,
    /// Tokens and cost today and in the last hour, re-read every [`loader::SPEND_REFRESH`];
    /// `None` until first read.
    pub spend: Option<agentvisor_shared::runs::SpendWindows>,
    /// How long reading all of this took.
    pub read_time: Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Detail {
    pub agent: String,
    pub window: Window,
    pub config: Option<serde_json::Value>,
    /// CPU, memory, then each of the agent's own metrics.
    pub charts: Vec<Chart>,
    pub events: Vec<Event>,
    pub logs: Vec<LogLine>,
    /// Its newest runs and tasks, newest first.
    pub runs: Vec<agentvisor_shared::runs::Run>,
    pub tasks: Vec<agentvisor_shared::tasks::Task>,
    /// The opened run's captured output (see [`Focus::run`]).
    pub run_output: Option<(i64, Vec<LogLine>)>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Chart {
    pub metric: String,
    pub points: Vec<Point>,
}

/// Where the database stands, as the data thread last found it.
#[derive(Debug, Clone, PartialEq)]
pub enum DataMsg {
    /// No database at `path` yet (or not initialised yet); `how` says how the path was chosen.
    Waiting {
        path: PathBuf,
        how: String,
        reason: String,
    },
    /// The database cannot be read (newer schema, not ours, I/O error).
    Failed {
        path: PathBuf,
        how: String,
        message: String,
    },
    Loaded(Box<Loaded>),
}

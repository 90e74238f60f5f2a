//! How the launcher's own log lines look. On a terminal: one short line per thing that
//! happened, `02:22:01 INFO  worker  started (pid 4242)`, with the agent in a column of its own
//! and no module path or event kind repeated on every line; with `run --follow-output` the
//! agents' output interleaved as `docker compose up` shows it, `worker  | line`. Anywhere else
//! (journald, a file, a pipe): logfmt, one `key=value` record per line, for machines:
//! `ts=2026-12-07T02:22:01.123Z level=info agent=worker kind=started msg="started (pid 4242)"`.

use agentvisor_shared::model::Stream;
use std::fmt::{self, Write as _};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// The target of the events that carry an agent's output line (`--follow-output`).
pub const OUTPUT_TARGET: &str = "agentvisor::output";

/// Widest agent name, so names line up in a column on a terminal; set once the config is read.
static NAME_WIDTH: AtomicUsize = AtomicUsize::new(0);
/// Whether agents' output lines are logged at all (`--follow-output`).
static FOLLOW_OUTPUT: AtomicBool = AtomicBool::new(false);

/// Names longer than this do not widen the column further.
const MAX_NAME_WIDTH: usize = 24;

pub fn set_name_width(width: usize) {
    NAME_WIDTH.store(width.min(MAX_NAME_WIDTH), Ordering::Relaxed);
}

pub fn set_follow_output(on: bool) {
    FOLLOW_OUTPUT.store(on, Ordering::Relaxed);
}

/// Logs one line an agent wrote, if `--follow-output` asked for it. The line goes through the
/// log's queue like any other, so an operator's slow terminal never holds up the capture.
pub fn agent_output(agent: &str, stream: Stream, line: &str) {
    if FOLLOW_OUTPUT.load(Ordering::Relaxed) {
        tracing::info!(target: OUTPUT_TARGET, agent, stream = stream.as_str(), "{line}");
    }
}

pub struct Format {
    /// Short lines for a person rather than logfmt.
    pub terminal: bool,
    /// Colours (only on a terminal).
    pub ansi: bool,
}

#[derive(Default)]
struct Fields {
    message: String,
    agent: Option<String>,
    kind: Option<String>,
    stream: Option<String>,
    rest: Vec<(&'static str, String)>,
}

impl Fields {
    fn put(&mut self, name: &'static str, value: String) {
        match name {
            "message" => self.message = value,
            "agent" => self.agent = Some(value),
            "kind" => self.kind = Some(value),
            "stream" => self.stream = Some(value),
            _ => self.rest.push((name, value)),
        }
    }
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field.name(), value.to_owned());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.put(field.name(), format!("{value:?}"));
    }
}

impl<S, N> FormatEvent<S, N> for Format
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, _: &FmtContext<'_, S, N>, mut w: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        let mut f = Fields::default();
        event.record(&mut f);
        let level = *event.metadata().level();
        let output = event.metadata().target() == OUTPUT_TARGET;
        let line =
            if self.terminal { terminal(&f, level, output, self.ansi) } else { logfmt(&f, level, output) };
        writeln!(w, "{line}")
    }
}

fn terminal(f: &Fields, level: Level, output: bool, ansi: bool) -> String {
    let width = NAME_WIDTH.load(Ordering::Relaxed);
    let time = chrono::Local::now().format("%H:%M:%S");
    let agent = f.agent.as_deref().unwrap_or("");
    let paint =
        |code: &str, text: &str| if ansi { format!("\x1b[{code}m{text}\x1b[0m") } else { text.to_owned() };
    if output {
        let bar = if f.stream.as_deref() == Some(Stream::Stderr.as_str()) { "!" } else { "|" };
        let name = paint("36", &format!("{agent:<width$} {bar}"));
        return format!("{time} {name} {}", escape_controls(&f.message));
    }
    let colour = match level {
        Level::ERROR => "1;31",
        Level::WARN => "33",
        Level::INFO => "32",
        Level::DEBUG => "34",
        Level::TRACE => "35",
    };
    let mut s =
        format!("{time} {} {agent:<width$} {}", paint(colour, &format!("{:<5}", level.as_str())), f.message);
    for (k, v) in &f.rest {
        let _ = write!(s, " {k}={v}");
    }
    s
}

fn logfmt(f: &Fields, level: Level, output: bool) -> String {
    let ts = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let mut s = format!("ts={ts} level={}", level.as_str().to_ascii_lowercase());
    for (k, v) in [("agent", &f.agent), ("kind", &f.kind), ("stream", &f.stream)] {
        if let Some(v) = v {
            let _ = write!(s, " {k}={}", quote(v));
        }
    }
    let _ = write!(s, " {}={}", if output { "line" } else { "msg" }, quote(&f.message));
    for (k, v) in &f.rest {
        let _ = write!(s, " {k}={}", quote(v));
    }
    s
}

/// A logfmt value: bare when it is one plain word, else in double quotes with `"`, `\` and
/// control characters escaped, so that every record stays on one line.
fn quote(v: &str) -> String {
    let plain = !v.is_empty() && v.chars().all(|c| c.is_ascii_graphic() && c != '"' && c != '=' && c != '\\');
    if plain {
        return v.to_owned();
    }
    let mut out = String::with_capacity(v.len() + 2);
    out.push('"');
    for c in v.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// An agent's escape sequences stay off the operator's terminal (they could clear it or
/// retitle it); a tab is kept.
fn escape_controls(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() && c != '\t' { c.escape_unicode().to_string() } else { c.to_string() })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(message: &str, agent: Option<&str>) -> Fields {
        Fields {
            message: message.into(),
            agent: agent.map(str::to_owned),
            kind: Some("crash_loop".into()),
            ..Fields::default()
        }
    }

    #[test]
    fn terminal_lines_are_short_and_name_the_agent_in_a_column() {
        set_name_width(6);
        let line =
            terminal(&fields("crash loop: 5 restarts in 60s", Some("flaky")), Level::ERROR, false, false);
        let (_, rest) = line.split_once(' ').unwrap();
        assert_eq!(rest, "ERROR flaky  crash loop: 5 restarts in 60s");
        assert!(!line.contains("kind=") && !line.contains("agentvisor_launcher"), "{line}");
        let mut out = fields("hello\x1b[2J", Some("worker"));
        out.stream = Some("stderr".into());
        let line = terminal(&out, Level::INFO, true, false);
        assert!(line.ends_with("worker ! hello\\u{1b}[2J"), "{line}");
    }

    #[test]
    fn logfmt_records_stay_on_one_line_and_split_into_keys() {
        let mut f = fields("exit code 1: \"boom\"\nat line 2", Some("flaky"));
        f.rest.push(("error", "disk full".into()));
        let line = logfmt(&f, Level::WARN, false);
        assert!(!line.contains('\n'));
        let (_, rest) = line.split_once(' ').unwrap();
        assert_eq!(
            rest,
            r#"level=warn agent=flaky kind=crash_loop msg="exit code 1: \"boom\"\nat line 2" error="disk full""#
        );
        assert!(line.starts_with("ts=20") && line.contains("Z level="), "{line}");
    }
}

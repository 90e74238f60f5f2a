//! Turns byte offsets in the config text into what an operator needs to find a mistake:
//! line, column, the agent (by name) and the field. The typed parse gives offsets but no
//! structure; a second, span-preserving parse of the same text supplies the structure.

use std::ops::Range;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// Where something is in the config file, as much of it as is known.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Location {
    pub line: usize,
    pub column: usize,
    pub agent: Option<String>,
    pub field: Option<String>,
}

pub struct Locator<'a> {
    text: &'a str,
    agents: Vec<&'a DeTable<'a>>,
    launcher: Option<&'a DeTable<'a>>,
    alerts: Vec<&'a DeTable<'a>>,
    hooks: Vec<&'a DeTable<'a>>,
}

/// The span-preserving parse; kept apart from [`Locator`] so the locator can borrow it.
pub fn parse(text: &str) -> Option<Spanned<DeTable<'_>>> {
    DeTable::parse(text).ok()
}

impl<'a> Locator<'a> {
    pub fn new(text: &'a str, doc: Option<&'a Spanned<DeTable<'a>>>) -> Locator<'a> {
        let top = |key: &str| {
            doc.and_then(|d| d.get_ref().iter().find(|(k, _)| k.get_ref().as_ref() == key)).map(|(_, v)| v)
        };
        let tables = |key: &str| {
            let mut out = Vec::new();
            if let Some(v) = top(key)
                && let DeValue::Array(items) = v.get_ref()
            {
                for item in items.iter() {
                    if let DeValue::Table(t) = item.get_ref() {
                        out.push(t);
                    }
                }
            }
            out
        };
        let agents = tables("agent");
        let alerts = tables("alert");
        let hooks = tables("hook");
        let launcher = top("launcher").and_then(|v| match v.get_ref() {
            DeValue::Table(t) => Some(t),
            _ => None,
        });
        Locator { text, agents, launcher, alerts, hooks }
    }

    /// The location of byte `offset`, with the agent and field that contain it.
    pub fn at(&self, offset: usize) -> Location {
        let (line, column) = line_col(self.text, offset);
        let mut loc = Location { line, column, agent: None, field: None };
        // The agent whose entries are nearest before the offset: an error about a whole
        // table (a missing key) points at its header, just before its first entry.
        let mut best: Option<(usize, &DeTable<'_>)> = None;
        for t in &self.agents {
            let Some(start) = t.iter().map(|(k, _)| k.span().start).min() else { continue };
            let end = t.iter().map(|(_, v)| v.span().end).max().unwrap_or(start);
            let header_slack = self.text[..start.min(self.text.len())].rfind("[[").unwrap_or(start);
            if (header_slack..=end).contains(&offset) && best.is_none_or(|(s, _)| start > s) {
                best = Some((start, t));
            }
        }
        if let Some((_, t)) = best {
            loc.agent = agent_name(t);
            loc.field = field_at(t, offset, "");
        } else if let Some(t) = self.launcher {
            loc.field = field_at(t, offset, "launcher.");
        }
        loc
    }

    /// The span of an agent's field (`path` like `["backoff", "initial"]`), or of one element
    /// of an array field.
    pub fn field(&self, agent: usize, path: &[&str], element: Option<usize>) -> Option<Range<usize>> {
        table_field(self.agents.get(agent)?, path, element)
    }

    /// The location of a `[[hook]]` table's key (`hook.KEY` as the field), falling back to the
    /// table's first key.
    pub fn hook_field(&self, hook: usize, key: &str, element: Option<usize>) -> Location {
        let table = self.hooks.get(hook);
        let span = table.and_then(|t| {
            table_field(t, &[key], element)
                .or_else(|| t.iter().map(|(k, _)| k.span()).min_by_key(|s| s.start))
        });
        let (line, column) = span.map(|s| line_col(self.text, s.start)).unwrap_or((0, 0));
        Location { line, column, agent: None, field: Some(format!("hook.{key}")) }
    }

    /// The location of a key of the `[launcher]` table (line 0 when it is not in the file).
    pub fn launcher_field(&self, key: &str) -> Location {
        let span = self
            .launcher
            .and_then(|t| t.iter().find(|(k, _)| k.get_ref().as_ref() == key))
            .map(|(_, v)| v.span());
        let (line, column) = span.map(|s| line_col(self.text, s.start)).unwrap_or((0, 0));
        Location { line, column, agent: None, field: Some(key.to_owned()) }
    }

    /// The location of an agent's field, falling back to its name, with agent and field set.
    pub fn agent_field(&self, agent: usize, name: &str, path: &[&str], element: Option<usize>) -> Location {
        let span = self.field(agent, path, element).or_else(|| self.field(agent, &["name"], None));
        let (line, column) = span.map(|s| line_col(self.text, s.start)).unwrap_or((0, 0));
        Location { line, column, agent: Some(name.to_owned()), field: Some(path.join(".")) }
    }
}

impl Locator<'_> {
    /// The location of a key of the `i`th `[[alert]]` table, falling back to its `name`.
    pub fn alert_field(&self, i: usize, key: &str, element: Option<usize>) -> Location {
        let find = |key: &str| {
            let (_, v) = self.alerts.get(i)?.iter().find(|(k, _)| k.get_ref().as_ref() == key)?;
            match (element, v.get_ref()) {
                (Some(j), DeValue::Array(items)) => items.get(j).map(|e| e.span()),
                _ => Some(v.span()),
            }
        };
        let span = find(key).or_else(|| find("name"));
        let (line, column) = span.map(|s| line_col(self.text, s.start)).unwrap_or((0, 0));
        Location { line, column, agent: None, field: Some(format!("alert[{i}].{key}")) }
    }
}

fn agent_name(t: &DeTable<'_>) -> Option<String> {
    t.iter().find(|(k, _)| k.get_ref().as_ref() == "name").and_then(|(_, v)| match v.get_ref() {
        DeValue::String(s) => Some(s.to_string()),
        _ => None,
    })
}

fn field_at(t: &DeTable<'_>, offset: usize, prefix: &str) -> Option<String> {
    for (k, v) in t.iter() {
        let (ks, vs) = (k.span(), v.span());
        let whole = ks.start.min(vs.start)..ks.end.max(vs.end);
        if whole.contains(&offset) || offset == whole.end {
            let name = format!("{prefix}{}", k.get_ref());
            if let DeValue::Table(inner) = v.get_ref()
                && let Some(f) = field_at(inner, offset, &format!("{name}."))
            {
                return Some(f);
            }
            return Some(name);
        }
    }
    None
}

/// 1-based line and column (in characters) of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before.get(line_start..).map_or(0, |s| s.chars().count()) + 1;
    (line, column)
}

/// The span of a table's field (`path` like `["backoff", "initial"]`), or of one element of
/// an array field.
fn table_field(t: &DeTable<'_>, path: &[&str], element: Option<usize>) -> Option<Range<usize>> {
    let mut table = t;
    let mut span = None;
    for (i, key) in path.iter().enumerate() {
        let (_, v) = table.iter().find(|(k, _)| k.get_ref().as_ref() == *key)?;
        span = Some(v.span());
        if i + 1 < path.len() {
            let DeValue::Table(t) = v.get_ref() else { return None };
            table = t;
        } else if let (Some(j), DeValue::Array(items)) = (element, v.get_ref()) {
            span = items.get(j).map(|e| e.span());
        }
    }
    span
}

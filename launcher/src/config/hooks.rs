//! `[[hook]]` tables: a program run when events of the named kinds are recorded. The shape,
//! its defaults and its checks; `crate::hooks` runs them.

use super::locate::{Location, Locator};
use super::values::{Dur, MAX_AGENT_DURATION};
use agentvisor_shared::model::{EventKind, Severity};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

/// What `on` accepts besides event kinds: every kind (but a hook's own, see [`OWN_KINDS`]).
pub const ANY_KIND: &str = "*";

/// The events a hook causes. They never run hooks: a failing hook named in its own `on`
/// (or under `"*"`) would otherwise run again for its own failure, forever.
pub const OWN_KINDS: &[EventKind] = &[EventKind::HookFailed, EventKind::HookTimedOut];

/// Most invocations of one hook at a time.
pub const MAX_CONCURRENT: u32 = 64;

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HookConfig {
    /// Names the hook in events and run records; `hook-N` (its place in the file) by default.
    #[serde(default)]
    pub name: String,
    /// Event kinds, or `"*"` for all.
    pub on: Vec<String>,
    /// Only events about these agents; empty: any agent and the launcher's own events.
    #[serde(default)]
    pub agents: Vec<String>,
    /// Only events of at least this severity.
    #[serde(default = "defaults::severity")]
    pub severity: Severity,
    /// Executed directly, never through a shell (name one, such as `/bin/sh`, to get one).
    pub command: String,
    #[serde(default)]
    pub args: Vec<String>,
    /// Added to the launcher's environment (a webhook's URL, say).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Killed (with its process group) when it runs longer.
    #[serde(default = "defaults::timeout")]
    pub timeout: Dur,
    /// At most one invocation per agent in this interval; later events in it are dropped.
    #[serde(default = "defaults::min_interval")]
    pub min_interval: Dur,
    /// Invocations running at once; more wait in a queue of [`QUEUE`] and beyond that are
    /// dropped.
    #[serde(default = "defaults::max_concurrent")]
    pub max_concurrent: u32,
}

/// Events waiting for a hook that already runs `max_concurrent` invocations.
pub const QUEUE: usize = 64;

impl HookConfig {
    /// Whether `event` runs this hook (the rate limit aside).
    pub fn matches(&self, kind: EventKind, agent: Option<&str>, severity: Severity) -> bool {
        if OWN_KINDS.contains(&kind) || severity < self.severity {
            return false;
        }
        let kind_ok = self.on.iter().any(|k| k == ANY_KIND || k == kind.as_str());
        let agent_ok = self.agents.is_empty() || agent.is_some_and(|a| self.agents.iter().any(|n| n == a));
        kind_ok && agent_ok
    }
}

mod defaults {
    use super::*;
    pub fn severity() -> Severity {
        Severity::Info
    }
    pub fn timeout() -> Dur {
        Dur::secs(10)
    }
    pub fn min_interval() -> Dur {
        Dur::secs(0)
    }
    pub fn max_concurrent() -> u32 {
        4
    }
}

type Failure = (Location, String);

/// Gives unnamed hooks their default name and checks every hook; `agents` are the configured
/// agents' names (a hook's `agents` must name some of them).
pub fn validate(hooks: &mut [HookConfig], agents: &[&str], loc: &Locator<'_>) -> Result<(), Failure> {
    let mut first_seen: HashMap<String, usize> = HashMap::new();
    for (i, h) in hooks.iter_mut().enumerate() {
        let named = !h.name.is_empty();
        if !named {
            h.name = format!("hook-{}", i + 1);
        }
        let name = h.name.clone();
        let fail = |path: &str, element: Option<usize>, msg: String| {
            Err((loc.hook_field(i, path, element), format!("hook {name:?}: {msg}")))
        };
        let name_ok = h.name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if named && (h.name.len() > 64 || !name_ok) {
            return fail(
                "name",
                None,
                format!("invalid hook name {:?}: use 1 to 64 letters, digits, '-' or '_'", h.name),
            );
        }
        if agents.contains(&h.name.as_str()) {
            return fail(
                "name",
                None,
                "an agent has this name; a hook's runs and output are recorded under its name".into(),
            );
        }
        if let Some(&first) = first_seen.get(&h.name) {
            return fail(
                "name",
                None,
                format!("duplicate hook name {:?}; hook {} has it", h.name, first + 1),
            );
        }
        first_seen.insert(h.name.clone(), i);
        if h.on.is_empty() {
            return fail("on", None, "name at least one event kind, or \"*\" for all".into());
        }
        for (j, kind) in h.on.iter().enumerate() {
            if kind == ANY_KIND {
                continue;
            }
            match kind.parse::<EventKind>() {
                Err(_) => {
                    let valid = EventKind::NAMES.join(", ");
                    return fail(
                        "on",
                        Some(j),
                        format!("unknown event kind {kind:?}; valid: \"*\" (all), {valid}"),
                    );
                }
                Ok(k) if OWN_KINDS.contains(&k) => {
                    return fail(
                        "on",
                        Some(j),
                        format!(
                            "{kind:?} comes from hooks themselves and runs no hook (a failing hook would run again for its own failure)"
                        ),
                    );
                }
                Ok(_) => {}
            }
        }
        for (j, agent) in h.agents.iter().enumerate() {
            if !agents.contains(&agent.as_str()) {
                return fail("agents", Some(j), format!("{agent:?} is not a configured agent"));
            }
        }
        if h.command.trim().is_empty() || h.command.contains('\0') {
            return fail("command", None, "must name a program".into());
        }
        if let Some(j) = h.args.iter().position(|s| s.contains('\0')) {
            return fail("args", Some(j), "arguments cannot contain NUL bytes".into());
        }
        for (k, v) in &h.env {
            if k.is_empty() || k.contains('=') || k.contains('\0') || v.contains('\0') {
                return fail("env", None, format!("invalid environment variable {k:?}"));
            }
        }
        for (field, d) in [("timeout", h.timeout), ("min_interval", h.min_interval)] {
            if let Err(msg) = d.at_most(MAX_AGENT_DURATION) {
                return fail(field, None, msg);
            }
        }
        if h.timeout.get().is_zero() {
            return fail("timeout", None, "must be longer than 0".into());
        }
        if h.max_concurrent == 0 || h.max_concurrent > MAX_CONCURRENT {
            return fail("max_concurrent", None, format!("must be from 1 to {MAX_CONCURRENT}"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hook(on: &[&str], agents: &[&str], severity: Severity) -> HookConfig {
        HookConfig {
            name: "h".into(),
            on: on.iter().map(|s| s.to_string()).collect(),
            agents: agents.iter().map(|s| s.to_string()).collect(),
            severity,
            command: "true".into(),
            args: vec![],
            env: BTreeMap::new(),
            timeout: Dur::secs(1),
            min_interval: Dur::secs(0),
            max_concurrent: 1,
        }
    }

    #[test]
    fn matching_by_kind_agent_and_severity() {
        let h = hook(&["crashed", "crash_loop"], &["worker"], Severity::Warning);
        assert!(h.matches(EventKind::Crashed, Some("worker"), Severity::Warning));
        assert!(h.matches(EventKind::CrashLoop, Some("worker"), Severity::Critical));
        assert!(!h.matches(EventKind::Started, Some("worker"), Severity::Warning));
        assert!(!h.matches(EventKind::Crashed, Some("other"), Severity::Warning));
        assert!(!h.matches(EventKind::Crashed, None, Severity::Warning));
        assert!(!h.matches(EventKind::Crashed, Some("worker"), Severity::Info));
        let all = hook(&["*"], &[], Severity::Info);
        assert!(all.matches(EventKind::LauncherStarted, None, Severity::Info));
        assert!(all.matches(EventKind::Started, Some("x"), Severity::Info));
        assert!(!all.matches(EventKind::HookFailed, None, Severity::Warning));
        assert!(!all.matches(EventKind::HookTimedOut, Some("x"), Severity::Error));
    }
}

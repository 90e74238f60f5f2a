//! Applying a new config without restarting the launcher: validate it first (an invalid one
//! changes nothing), then start added agents, stop removed ones, restart only those whose
//! definition changed, and leave every other agent's process alone.

use super::{Manager, Origin, Reply};
use crate::config::{self, Config};
use agentvisor_shared::model::{DesiredState, EventKind, Severity, status_line};

/// What differs between the config in force and a new one, by agent name.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Diff {
    /// Enabled now and not running before (new, or enabled again).
    pub added: Vec<String>,
    /// Gone from the file.
    pub removed: Vec<String>,
    /// Still in the file but disabled now.
    pub disabled: Vec<String>,
    /// Running before and after, with a different definition: restarted.
    pub changed: Vec<String>,
    pub unchanged: usize,
    /// `[launcher]` settings differ.
    pub launcher: bool,
    /// `[[hook]]` tables differ (applied to events from then on).
    pub hooks: bool,
}

/// Names of the enabled agents, in start-plan order.
fn planned(c: &Config) -> Vec<&str> {
    c.plan.iter().map(|&i| c.agents[i].name.as_str()).collect()
}

pub fn diff(old: &Config, new: &Config) -> Diff {
    let (old_plan, new_plan) = (planned(old), planned(new));
    let find = |c: &Config, n: &str| c.agents.iter().find(|a| a.name == n).cloned();
    let mut d =
        Diff { launcher: old.launcher != new.launcher, hooks: old.hooks != new.hooks, ..Diff::default() };
    for a in &old.agents {
        if find(new, &a.name).is_none() {
            d.removed.push(a.name.clone());
        } else if old_plan.contains(&a.name.as_str()) && !new_plan.contains(&a.name.as_str()) {
            d.disabled.push(a.name.clone());
        }
    }
    for name in new_plan {
        if !old_plan.contains(&name) {
            d.added.push(name.to_owned());
        } else if find(old, name) != find(new, name) || old.path != new.path {
            d.changed.push(name.to_owned());
        } else {
            d.unchanged += 1;
        }
    }
    d
}

impl Diff {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty()
            && self.removed.is_empty()
            && self.disabled.is_empty()
            && self.changed.is_empty()
            && !self.launcher
            && !self.hooks
    }

    /// "added a; removed b; restarted c; 4 unchanged".
    pub fn summary(&self) -> String {
        let mut parts = Vec::new();
        for (what, names) in [
            ("added", &self.added),
            ("removed", &self.removed),
            ("disabled", &self.disabled),
            ("restarted", &self.changed),
        ] {
            if !names.is_empty() {
                parts.push(format!("{what} {}", names.join(", ")));
            }
        }
        if self.launcher {
            parts.push(
                "[launcher] changed (log limits apply to agents started from now on; sample_interval, \
                 retention, log_lines and group when the launcher restarts)"
                    .into(),
            );
        }
        if self.hooks {
            parts.push("hooks changed".into());
        }
        parts.push(format!("{} unchanged", self.unchanged));
        let summary = parts.join("; ");
        if self.is_empty() { format!("no changes; {summary}") } else { summary }
    }
}

impl Manager {
    /// Reads the config file again and applies it, or keeps the one in force if it is invalid.
    pub(super) async fn reload(&mut self, origin: &Origin) -> Reply {
        let path = self.config.path.clone();
        // Reading and checking touch the file system, which can block (a slow disk, a hung
        // mount): off the runtime, so supervision and `ctl status` go on meanwhile.
        let at = path.clone();
        let read = tokio::task::spawn_blocking(move || {
            config::read(&at).map(|text| {
                let parsed = config::parse_runnable(&at, &text);
                (text, parsed)
            })
        })
        .await;
        let (text, parsed) = match read {
            Ok(Ok(read)) => read,
            Ok(Err(e)) => {
                // Whatever appears next is a change, even the text read last time.
                self.last_text = None;
                return self.refuse(origin, e.to_string());
            }
            Err(e) => {
                self.last_text = None;
                let error = format!("{}: reading the config file failed: {e}", path.display());
                return self.refuse(origin, error);
            }
        };
        // Editors that save in several steps cause several file events; only a change of
        // content is a reload. An explicit request always goes through.
        if *origin == Origin::FileChanged && self.last_text.as_deref() == Some(text.as_str()) {
            tracing::debug!("config file touched but not changed; not reloading");
            return Reply::ok("config unchanged");
        }
        self.last_text = Some(text);
        let new = match parsed {
            Ok(c) => c,
            Err(e) => return self.refuse(origin, e.to_string()),
        };
        let d = diff(&self.config, &new);
        let old_plan: Vec<String> = planned(&self.config).into_iter().map(str::to_owned).collect();
        let reason = format!("config reloaded (requested by {origin})");
        // Stop first, dependents before their dependencies.
        for name in old_plan.iter().rev() {
            if d.removed.contains(name) || d.disabled.contains(name) || d.changed.contains(name) {
                self.stop(name, &reason).await;
            }
        }
        self.config = new;
        if let Some(hooks) = &self.hooks {
            hooks.reload(&self.config);
        }
        super::fleet::register(&self.config, &self.writer);
        let mut failed = Vec::new();
        for name in planned(&self.config).into_iter().map(str::to_owned).collect::<Vec<_>>() {
            let fresh = d.added.contains(&name) || d.changed.contains(&name);
            if fresh
                && !self.held.contains(&name)
                && let Err(e) = self.spawn(&name)
            {
                failed.push(format!("{name}: {e}"));
            }
        }
        for name in d.removed.iter().chain(&d.disabled) {
            self.fleet.remove(name);
        }
        self.fleet.reorder(&planned(&self.config));
        self.fleet.set_alerts(&self.config.alerts);
        self.fleet.set_note(None);
        for name in &d.removed {
            self.held.remove(name);
            self.desired(name, DesiredState::Removed);
        }
        // Registration wrote `running` for every enabled agent; an operator's stop stands.
        self.held.retain(|n| planned(&self.config).contains(&n.as_str()));
        for name in &self.held {
            self.desired(name, DesiredState::Stopped);
        }
        let mut message = format!("config reloaded from {} ({origin}): {}", path.display(), d.summary());
        if !self.held.is_empty() {
            let mut held: Vec<&str> = self.held.iter().map(String::as_str).collect();
            held.sort_unstable();
            message.push_str(&format!("; kept stopped by an operator: {}", held.join(", ")));
        }
        if failed.is_empty() {
            self.event(None, EventKind::ConfigReloaded, message.clone());
            Reply::ok(message)
        } else {
            message.push_str(&format!("; could not start {}", failed.join(", ")));
            self.event_at(None, EventKind::ConfigReloaded, Severity::Error, message.clone());
            Reply::error(message)
        }
    }

    /// An invalid config: logged, recorded and shown in the status line; nothing changes.
    fn refuse(&mut self, origin: &Origin, error: String) -> Reply {
        let message = format!("config not reloaded ({origin}); the running config stays in force: {error}");
        self.event_at(None, EventKind::ConfigInvalid, Severity::Error, message.clone());
        self.fleet.set_note(Some(format!("{}{error}", status_line::CONFIG_ERROR)));
        Reply::error(message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn parse(text: &str) -> Config {
        config::parse(Path::new("a.toml"), text).unwrap()
    }

    #[test]
    fn diff_names_each_kind_of_change() {
        let old = parse(
            "[[agent]]\nname = \"same\"\ncommand = \"x\"\n[[agent]]\nname = \"gone\"\ncommand = \"x\"\n\
             [[agent]]\nname = \"edited\"\ncommand = \"x\"\n[[agent]]\nname = \"off\"\ncommand = \"x\"\n\
             [[agent]]\nname = \"back\"\ncommand = \"x\"\nenabled = false\n",
        );
        let new = parse(
            "[[agent]]\nname = \"same\"\ncommand = \"x\"\n[[agent]]\nname = \"edited\"\ncommand = \"x\"\n\
             env = { A = \"1\" }\n[[agent]]\nname = \"off\"\ncommand = \"x\"\nenabled = false\n\
             [[agent]]\nname = \"back\"\ncommand = \"x\"\n[[agent]]\nname = \"new\"\ncommand = \"x\"\n",
        );
        let d = diff(&old, &new);
        assert_eq!(d.added, ["back", "new"]);
        assert_eq!(d.removed, ["gone"]);
        assert_eq!(d.disabled, ["off"]);
        assert_eq!(d.changed, ["edited"]);
        assert_eq!(d.unchanged, 1);
        assert!(!d.launcher);
        assert_eq!(d.summary(), "added back, new; removed gone; disabled off; restarted edited; 1 unchanged");
        assert!(diff(&new, &new).is_empty());
    }
}

//! The fleet screen's state: one row per host, filled from the hosts' threads and moved by
//! keys. Pure data, so every transition is tested without a terminal or a host.

use super::link::{HostMsg, Update};
use crate::input::Action;
use serde_json::Value;

/// How the connection to a host stands.
#[derive(Debug, Clone, PartialEq)]
pub enum Link {
    Connecting {
        attempt: u32,
    },
    Up,
    /// Connected, but no line for this many seconds.
    Silent {
        for_s: u64,
    },
    /// Not connected; the next attempt is due at `retry_at_ms`.
    Down {
        reason: String,
        retry_at_ms: i64,
    },
}

/// What a row shows from the host's last document.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Digest {
    /// When the viewer received it.
    pub received_ms: i64,
    /// running, stale, stopped, never; `None` when the host has no readable database.
    pub launcher: Option<String>,
    pub verdict: String,
    pub exit_code: u8,
    pub healthy: u64,
    pub enabled: u64,
    pub fatal: u64,
    pub alerts: Option<u64>,
    pub cost: Option<f64>,
    pub last_change_ms: Option<i64>,
    pub last_change: Option<String>,
    pub schema_version: Option<i64>,
    pub launcher_version: Option<String>,
    pub database_error: Option<String>,
}

impl Digest {
    /// Reads a stream line of type `status`; missing keys read as absent, never as an error,
    /// so a slightly different version still shows what it can.
    pub fn of(doc: &Value, received_ms: i64) -> Digest {
        let f = &doc["fleet"];
        let s = &doc["status"];
        let count = |k: &str| f[k].as_u64().unwrap_or(0);
        let text = |v: &Value| v.as_str().map(str::to_owned);
        Digest {
            received_ms,
            launcher: text(&f["launcher"]),
            verdict: text(&s["verdict"]).unwrap_or_default(),
            exit_code: s["exit_code"].as_u64().and_then(|c| u8::try_from(c).ok()).unwrap_or(3),
            healthy: count("healthy"),
            enabled: count("enabled"),
            fatal: count("fatal"),
            alerts: f["alerts_firing"].as_u64(),
            cost: f["cost"].as_f64(),
            last_change_ms: f["last_change_at"]
                .as_str()
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                .map(|t| t.timestamp_millis()),
            last_change: text(&f["last_change"]),
            schema_version: s["database"]["schema_version"].as_i64(),
            launcher_version: text(&s["launcher"]["version"]),
            database_error: text(&f["database_error"]),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct HostRow {
    pub name: String,
    pub link: Link,
    /// The last document; kept while the host is down, so its last known state stays visible.
    pub digest: Option<Digest>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Fleet {
    pub hosts: Vec<HostRow>,
    pub selected: usize,
    /// A line under the table: what the last drill-down ended with.
    pub notice: Option<String>,
    pub now_ms: i64,
    pub color: bool,
    pub quit: bool,
    /// Set by Enter; the loop opens this host and clears it.
    pub open: Option<usize>,
}

impl Fleet {
    pub fn new(names: impl IntoIterator<Item = String>, color: bool) -> Fleet {
        Fleet {
            hosts: names
                .into_iter()
                .map(|name| HostRow { name, link: Link::Connecting { attempt: 1 }, digest: None })
                .collect(),
            selected: 0,
            notice: None,
            now_ms: 0,
            color,
            quit: false,
            open: None,
        }
    }

    pub fn on_host(&mut self, msg: HostMsg) {
        let now = self.now_ms;
        let Some(row) = self.hosts.get_mut(msg.host) else { return };
        match msg.update {
            Update::Connecting { attempt } => {
                // A host that was down stays shown as down (with its reason) while it retries.
                if !matches!(row.link, Link::Down { .. }) {
                    row.link = Link::Connecting { attempt };
                }
            }
            Update::Document(doc) => {
                row.digest = Some(Digest::of(&doc, now));
                row.link = Link::Up;
            }
            Update::Alive => {
                if !matches!(row.link, Link::Down { .. }) {
                    row.link = Link::Up;
                }
            }
            Update::Silent { for_s } => row.link = Link::Silent { for_s },
            Update::Down { reason, retry_in } => {
                let retry_ms = i64::try_from(retry_in.as_millis()).unwrap_or(i64::MAX);
                row.link = Link::Down { reason, retry_at_ms: now.saturating_add(retry_ms) };
            }
        }
    }

    pub fn apply(&mut self, action: Action) {
        match action {
            Action::Quit => self.quit = true,
            Action::Move(delta) => {
                let last = self.hosts.len().saturating_sub(1);
                self.selected = self.selected.saturating_add_signed(delta).min(last);
            }
            Action::Select(i) if i < self.hosts.len() => self.selected = i,
            Action::Open if self.selected < self.hosts.len() => self.open = Some(self.selected),
            Action::Back => self.notice = None,
            _ => {}
        }
    }

    /// Hosts by how their connection stands, for the title line.
    pub fn counts(&self) -> (usize, usize, usize) {
        let up = self.hosts.iter().filter(|h| matches!(h.link, Link::Up)).count();
        let down = self.hosts.iter().filter(|h| matches!(h.link, Link::Down { .. })).count();
        (up, down, self.hosts.len() - up - down)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::time::Duration;

    pub(crate) fn doc(launcher: &str, healthy: u64, enabled: u64, fatal: u64) -> Box<Value> {
        Box::new(json!({
            "stream": 1, "type": "status", "seq": 1, "sent_at": "2026-11-18T11:06:40Z",
            "fleet": {
                "launcher": launcher, "healthy": healthy, "enabled": enabled, "fatal": fatal,
                "alerts_firing": null, "cost": 1.5,
                "last_change_at": "2026-11-18T11:06:30Z", "last_change": "worker: ready",
                "database_error": null,
            },
            "status": {"verdict": "ok", "exit_code": 0, "database": {"schema_version": 5},
                       "launcher": {"version": "0.1.0"}},
        }))
    }

    #[test]
    fn documents_fill_rows_and_a_down_host_keeps_its_last_state() {
        let mut f = Fleet::new(["a".to_owned(), "b".to_owned()], false);
        f.now_ms = 1_795_000_000_000;
        f.on_host(HostMsg { host: 0, update: Update::Document(doc("running", 2, 3, 1)) });
        let d = f.hosts[0].digest.clone().unwrap();
        assert_eq!((d.healthy, d.enabled, d.fatal, d.cost), (2, 3, 1, Some(1.5)));
        assert_eq!(d.last_change_ms, Some(1_795_000_000_000 - 10_000));
        assert_eq!(d.schema_version, Some(5));
        assert_eq!(f.hosts[0].link, Link::Up);
        let down = Update::Down { reason: "refused".into(), retry_in: Duration::from_secs(2) };
        f.on_host(HostMsg { host: 0, update: down });
        f.on_host(HostMsg { host: 0, update: Update::Connecting { attempt: 2 } });
        assert_eq!(f.hosts[0].link, Link::Down { reason: "refused".into(), retry_at_ms: f.now_ms + 2_000 });
        assert!(f.hosts[0].digest.is_some());
        assert_eq!(f.counts(), (0, 1, 1));
        f.on_host(HostMsg { host: 7, update: Update::Alive });
    }

    #[test]
    fn keys_move_open_and_quit() {
        let mut f = Fleet::new(["a".to_owned(), "b".to_owned()], false);
        f.apply(Action::Move(5));
        assert_eq!(f.selected, 1);
        f.apply(Action::Move(-9));
        assert_eq!(f.selected, 0);
        f.apply(Action::Open);
        assert_eq!(f.open, Some(0));
        f.apply(Action::Select(1));
        assert_eq!(f.selected, 1);
        f.apply(Action::Quit);
        assert!(f.quit);
    }
}

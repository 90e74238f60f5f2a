//! The Events screen's filter: typed as text (`agent:NAME kind:KIND sev:warning`, a bare
//! word is an agent name) and turned into the reader's exact-match query.

use agentvisor_shared::EventFilter;
use agentvisor_shared::model::{EventKind, Severity};

/// Events shown on the Events screen at most: a screenful many times over, still one indexed read.
pub const EVENTS_SHOWN: i64 = 500;

#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct EventQuery {
    pub agent: Option<String>,
    pub kind: Option<EventKind>,
    pub min_severity: Option<Severity>,
    /// Words that name no known kind, severity or field, which the screen names rather than
    /// silently dropping.
    pub unknown: Vec<String>,
}

impl EventQuery {
    /// Parses filter text; unknown severities and kinds are not applied but listed in
    /// [`EventQuery::unknown`] (the text is typed live, so half-typed words are normal and
    /// refusing them would fight the typist). The title shows what applies.
    pub fn parse(text: &str) -> EventQuery {
        let mut q = EventQuery::default();
        for word in text.split_whitespace() {
            let known = match word.split_once(':') {
                Some(("kind", v)) => v.parse().ok().map(|k| q.kind = Some(k)).is_some(),
                Some(("sev" | "severity", v)) => v.parse().ok().map(|s| q.min_severity = Some(s)).is_some(),
                Some(("agent", v)) if !v.is_empty() => {
                    q.agent = Some(v.to_owned());
                    true
                }
                Some(_) => false,
                None => {
                    q.agent = Some(word.to_owned());
                    true
                }
            };
            if !known {
                q.unknown.push(word.to_owned());
            }
        }
        q
    }

    pub fn to_filter(&self, limit: i64) -> EventFilter {
        EventFilter {
            agent: self.agent.clone(),
            kind: self.kind,
            min_severity: self.min_severity.unwrap_or(Severity::Info),
            after_id: None,
            limit,
        }
    }
}

/// The next minimum severity when cycling with `v`: info, warning, error, critical, info...
pub fn next_severity(current: Option<Severity>) -> Severity {
    match current.unwrap_or(Severity::Info) {
        Severity::Info => Severity::Warning,
        Severity::Warning => Severity::Error,
        Severity::Error => Severity::Critical,
        Severity::Critical => Severity::Info,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_words() {
        let q = EventQuery::parse("worker kind:crashed sev:error");
        assert_eq!(q.agent.as_deref(), Some("worker"));
        assert_eq!(q.kind, Some(EventKind::Crashed));
        assert_eq!(q.min_severity, Some(Severity::Error));
        let half = EventQuery::parse("agent:w sev:err kind:crash");
        assert_eq!(
            half,
            EventQuery {
                agent: Some("w".into()),
                kind: None,
                min_severity: None,
                unknown: vec!["sev:err".into(), "kind:crash".into()]
            }
        );
        assert_eq!(EventQuery::parse("colour:red").unknown, ["colour:red"]);
        let f = EventQuery::default().to_filter(10);
        assert_eq!((f.min_severity, f.limit), (Severity::Info, 10));
        assert_eq!(next_severity(Some(Severity::Critical)), Severity::Info);
    }
}

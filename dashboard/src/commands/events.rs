//! `agentvisor-dashboard events [--agent A] [--kind K] [--severity S] [-n N] [-f]`: events,
//! oldest of the selection first so the newest end up next to the prompt, as `tail` does.

use super::{FOLLOW_BATCH, follow, follow_step, open, print_lines, read_failed};
use crate::cli::EventsArgs;
use agentvisor_shared::EventFilter;
use agentvisor_shared::model::Event;
use agentvisor_shared::paths::Resolved;
use agentvisor_shared::time::rfc3339;

fn render(e: &Event) -> String {
    format!(
        "{} {:<8} {} {}: {}",
        rfc3339(e.ts_ms),
        e.severity,
        e.agent.as_deref().unwrap_or("launcher"),
        e.kind,
        e.message
    )
}

pub fn run(resolved: &Resolved, args: &EventsArgs) -> u8 {
    let reader = match open(resolved) {
        Ok(r) => r,
        Err(code) => return code,
    };
    let mut filter = EventFilter {
        agent: args.agent.clone(),
        kind: args.kind,
        min_severity: args.severity,
        after_id: None,
        // At least one is read even for `-n 0`, so following starts after the newest.
        limit: args.lines.max(1),
    };
    let mut events = match reader.events(&filter) {
        Ok(e) => e,
        Err(e) => return read_failed(&e),
    };
    events.reverse();
    filter.after_id = Some(events.last().map_or(0, |e| e.id));
    let skip = events.len().saturating_sub(usize::try_from(args.lines).unwrap_or(0));
    if !print_lines(events[skip..].iter().map(render)) || !args.follow {
        return 0;
    }
    filter.limit = FOLLOW_BATCH;
    follow(&reader, |r| {
        let mut new = r.events(&filter)?;
        new.reverse();
        if let Some(e) = new.last() {
            filter.after_id = Some(e.id);
        }
        Ok(print_lines(follow_step(new.len(), new.iter().map(render).collect())))
    })
}

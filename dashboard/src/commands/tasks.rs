//! `agentvisor-dashboard tasks [NAME] [-n N] [--json]`: the tasks agents reported (`X_TASK`),
//! oldest of the selection first.

use super::runs::cost;
use super::{agent_names, open, print_lines, read_failed};
use crate::cli::TasksArgs;
use crate::format;
use agentvisor_shared::paths::Resolved;
use agentvisor_shared::tasks::Task;
use agentvisor_shared::time::rfc3339;

/// "ok", "running" for an open task.
pub fn outcome(t: &Task) -> &'static str {
    t.outcome.map_or("running", |o| o.as_str())
}

/// "1200/340" tokens in/out, or "" when the agent reported none.
pub fn tokens(t: &Task) -> String {
    match (t.tokens_in, t.tokens_out) {
        (None, None) => String::new(),
        (i, o) => format!("{}/{}", i.unwrap_or(0), o.unwrap_or(0)),
    }
}

fn render(t: &Task) -> String {
    let duration = t.duration_ms.map(format::duration_ms).unwrap_or_default();
    format!(
        "{} {:<16} {:<11} {:>8} {:>13} {:>9} {}",
        rfc3339(t.started_ms),
        t.agent,
        outcome(t),
        duration,
        tokens(t),
        cost(t.cost),
        t.text
    )
}

pub fn run(resolved: &Resolved, args: &TasksArgs) -> u8 {
    let reader = match open(resolved) {
        Ok(r) => r,
        Err(code) => return code,
    };
    let mut tasks = match reader.recent_tasks(args.name.as_deref(), args.lines.max(0)) {
        Ok(t) => t,
        Err(e) => return read_failed(&e),
    };
    if tasks.is_empty()
        && let Some(name) = &args.name
    {
        // A removed agent keeps its tasks under its name: only a name with none must be an
        // agent's.
        if let Err(code) = agent_names(&reader, Some(name)) {
            return code;
        }
        if !args.json {
            eprintln!("agentvisor-dashboard: no tasks of {name:?} recorded");
        }
    }
    tasks.reverse();
    if args.json {
        let text = serde_json::to_string(&tasks).unwrap_or_else(|_| "[]".into());
        print_lines([text]);
        return 0;
    }
    print_lines(tasks.iter().map(render));
    0
}

//! `agentvisor-dashboard runs [NAME] [--failed] [-n N] [--json]`: run records (scheduled and
//! manual runs, process starts, hook invocations), oldest of the selection first.

use super::{agent_names, open, print_lines, read_failed};
use crate::cli::RunsArgs;
use crate::format;
use agentvisor_shared::paths::Resolved;
use agentvisor_shared::runs::Run;
use agentvisor_shared::time::rfc3339;

/// "succeeded", "running" for an open run.
pub fn outcome(r: &Run) -> &'static str {
    r.outcome.map_or("running", |o| o.as_str())
}

/// "exit 0", "signal 9", or "" when neither is known.
pub fn exit(code: Option<i64>, signal: Option<i64>) -> String {
    match (code, signal) {
        (Some(c), _) => format!("exit {c}"),
        (None, Some(s)) => format!("signal {s}"),
        _ => String::new(),
    }
}

/// A cost as agents report it: in their own unit, four decimals.
pub fn cost(c: Option<f64>) -> String {
    c.map(|c| format!("{c:.4}")).unwrap_or_default()
}

fn render(r: &Run) -> String {
    let duration = r.duration_ms.map(format::duration_ms).unwrap_or_default();
    let about = r.message.as_deref().or(r.detail.as_deref()).unwrap_or("");
    let mut line = format!(
        "{} {:<16} {:<8} {:<9} {:>8} {:<9} {:>9}",
        rfc3339(r.started_ms),
        r.agent,
        r.trigger.as_str(),
        outcome(r),
        duration,
        exit(r.exit_code, r.exit_signal),
        cost(r.cost),
    );
    if let Some(user) = &r.user {
        line.push_str(&format!(" by {user}"));
    }
    if let Some(subject) = &r.subject {
        line.push_str(&format!(" for {subject}"));
    }
    if !about.is_empty() {
        line.push_str(&format!(" {about}"));
    }
    line.trim_end().to_owned()
}

pub fn run(resolved: &Resolved, args: &RunsArgs) -> u8 {
    let reader = match open(resolved) {
        Ok(r) => r,
        Err(code) => return code,
    };
    let mut runs = match reader.recent_runs(args.name.as_deref(), args.failed, args.lines.max(0)) {
        Ok(r) => r,
        Err(e) => return read_failed(&e),
    };
    if runs.is_empty()
        && let Some(name) = &args.name
    {
        // Hooks and removed agents keep their runs under their names: only a name with no
        // runs at all (whatever the filters) must be an agent's.
        let recorded = match reader.recent_runs(Some(name), false, 1) {
            Ok(r) => !r.is_empty(),
            Err(e) => return read_failed(&e),
        };
        if !recorded && let Err(code) = agent_names(&reader, Some(name)) {
            return code;
        }
        if !args.json {
            eprintln!("agentvisor-dashboard: no runs of {name:?} recorded");
        }
    }
    runs.reverse();
    if args.json {
        let text = serde_json::to_string(&runs).unwrap_or_else(|_| "[]".into());
        print_lines([text]);
        return 0;
    }
    print_lines(runs.iter().map(render));
    0
}

//! `agentvisor-dashboard logs AGENT [-n N] [-f]`: an agent's captured output.

use super::{FOLLOW_BATCH, follow, follow_step, open, print_lines, read_failed};
use crate::cli::LogsArgs;
use agentvisor_shared::model::LogLine;
use agentvisor_shared::paths::Resolved;
use agentvisor_shared::time::rfc3339;

fn render(l: &LogLine) -> String {
    format!("{} {} {}", rfc3339(l.ts_ms), l.stream, l.line)
}

pub fn run(resolved: &Resolved, args: &LogsArgs) -> u8 {
    let reader = match open(resolved) {
        Ok(r) => r,
        Err(code) => return code,
    };
    // At least one line is read even for `-n 0`, so following starts after the newest.
    let lines = match reader.logs(&args.agent, None, args.lines.max(1)) {
        Ok(l) => l,
        Err(e) => return read_failed(&e),
    };
    if lines.is_empty() {
        let known = match reader.snapshot() {
            Ok(s) => s.agents.iter().any(|a| a.name == args.agent),
            Err(e) => return read_failed(&e),
        };
        if !known {
            eprintln!("agentvisor-dashboard: no agent named {:?} in {}", args.agent, reader.path().display());
            return 1;
        }
    }
    let mut last_id = lines.last().map(|l| l.id);
    let skip = lines.len().saturating_sub(usize::try_from(args.lines).unwrap_or(0));
    if !print_lines(lines[skip..].iter().map(render)) || !args.follow {
        return 0;
    }
    follow(&reader, |r| {
        let new = r.logs(&args.agent, last_id.or(Some(0)), FOLLOW_BATCH)?;
        if let Some(l) = new.last() {
            last_id = Some(l.id);
        }
        Ok(print_lines(follow_step(new.iter().map(render).collect())))
    })
}

//! `agentvisor-dashboard logs [AGENT] [-n N] [-f] [--since DURATION|TIME] [--grep PATTERN]`:
//! captured output, of one agent or of every agent interleaved in the order the launcher
//! recorded it, each line after its agent's name (as `docker compose logs` prints services).

use super::{FOLLOW_BATCH, agent_names, follow, follow_step, open, print_lines, read_failed};
use crate::cli::LogsArgs;
use agentvisor_shared::model::LogLine;
use agentvisor_shared::paths::Resolved;
use agentvisor_shared::time::{now_ms, rfc3339};
use agentvisor_shared::{LogFilter, Reader};

/// Lines printed without `-n` (and without `--since`, which prints every line since).
const DEFAULT_LINES: i64 = 50;
/// Rows read per step while looking back for matching lines.
const PAGE: i64 = 1_000;

/// How lines are printed: with a name column when several agents' lines interleave.
struct Render {
    /// Width of the name column; `None` for one agent's lines.
    names: Option<usize>,
    grep: Option<regex::Regex>,
}

impl Render {
    fn keeps(&self, l: &LogLine) -> bool {
        self.grep.as_ref().is_none_or(|re| re.is_match(&l.line))
    }

    fn line(&self, l: &LogLine) -> String {
        match self.names {
            Some(w) => format!("{} {:<w$} {} {}", rfc3339(l.ts_ms), l.agent, l.stream, l.line),
            None => format!("{} {} {}", rfc3339(l.ts_ms), l.stream, l.line),
        }
    }

    /// The kept lines of `rows` (newest first, as read), oldest first.
    fn lines(&self, rows: &[LogLine]) -> Vec<String> {
        rows.iter().rev().filter(|l| self.keeps(l)).map(|l| self.line(l)).collect()
    }
}

pub fn run(resolved: &Resolved, args: &LogsArgs) -> u8 {
    let reader = match open(resolved) {
        Ok(r) => r,
        Err(code) => return code,
    };
    let names = match agent_names(&reader, None) {
        Ok(names) => names,
        Err(code) => return code,
    };
    let render = Render {
        names: args.agent.is_none().then(|| names.iter().map(|n| n.chars().count()).max().unwrap_or(0)),
        grep: args.grep.clone(),
    };
    let want = args.lines.unwrap_or(if args.since.is_some() { i64::MAX } else { DEFAULT_LINES });
    let filter = LogFilter {
        agent: args.agent.clone(),
        since_ms: args.since.map(|s| s.ms(now_ms())),
        ..LogFilter::default()
    };
    let (lines, newest) = match newest_matching(&reader, &filter, &render, want) {
        Ok(found) => found,
        Err(e) => return read_failed(&e),
    };
    // A name is refused only when nothing was kept under it: a hook's output is kept under the
    // hook's name, which is no agent's (as `runs` and `tasks` decide).
    if lines.is_empty()
        && let Some(agent) = args.agent.as_deref()
        && let Err(code) = agent_names(&reader, Some(agent))
    {
        return code;
    }
    if !print_lines(lines) || !args.follow {
        return 0;
    }
    let mut last_id = newest;
    follow(&reader, |r| {
        let new = r.log_page(&LogFilter {
            agent: args.agent.clone(),
            after_id: Some(last_id),
            limit: FOLLOW_BATCH,
            ..LogFilter::default()
        })?;
        if let Some(l) = new.first() {
            last_id = l.id;
        }
        Ok(print_lines(follow_step(new.len(), render.lines(&new))))
    })
}

/// The newest `want` kept lines, oldest first, read backwards a page at a time, and the id of
/// the newest line of all (0 when there is none), after which following starts.
fn newest_matching(
    reader: &Reader,
    filter: &LogFilter,
    render: &Render,
    want: i64,
) -> agentvisor_shared::Result<(Vec<String>, i64)> {
    let want = usize::try_from(want.max(0)).unwrap_or(usize::MAX);
    let mut pages: Vec<Vec<String>> = Vec::new();
    let mut found = 0;
    let mut newest = None;
    let mut before_id = None;
    // Without a filter the first page is all it takes.
    let page = if render.grep.is_none() { i64::try_from(want).unwrap_or(PAGE).clamp(1, PAGE) } else { PAGE };
    while found < want {
        let rows = reader.log_page(&LogFilter { before_id, limit: page, ..filter.clone() })?;
        newest = newest.or(rows.first().map(|l| l.id));
        let Some(oldest) = rows.last() else { break };
        before_id = Some(oldest.id);
        let mut kept = render.lines(&rows);
        // The oldest of this page are dropped if they are more than asked for.
        let surplus = (found + kept.len()).saturating_sub(want);
        kept.drain(..surplus);
        found += kept.len();
        pages.push(kept);
        if (rows.len() as i64) < page {
            break;
        }
    }
    // Nothing read (`-n 0`, or nothing since `--since`): following starts after the newest.
    let newest = match newest {
        Some(n) => n,
        None => reader
            .log_page(&LogFilter { agent: filter.agent.clone(), limit: 1, ..LogFilter::default() })?
            .first()
            .map_or(0, |l| l.id),
    };
    Ok((pages.into_iter().rev().flatten().collect(), newest))
}

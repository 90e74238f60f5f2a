//! Checks a parsed config beyond what its types say, and orders the agents into a start plan.

use super::locate::{Location, Locator};
use super::model::{AgentConfig, File, Ready, Restart};
use super::probe::{Problem, check_probe, ready_line_regex};
use super::values::{MAX_AGENT_DURATION, MAX_ROWS, MAX_SAMPLE_INTERVAL};
use std::collections::HashMap;
use std::time::Duration;

type Failure = (Location, String);

/// Longest agent name: names become socket file names, which must stay short.
const MAX_NAME: usize = 64;

/// Largest `log_line_bytes`: a line is one SQLite value and one buffer in the launcher.
pub const MAX_LINE_BYTES: usize = 1 << 20;
/// Largest `log_rate`, lines per second and stream.
pub const MAX_LOG_RATE: u32 = 1_000_000;
/// Largest `max_restarts`: the restarts within the window are remembered one by one.
pub const MAX_RESTARTS: u32 = 1_000_000;

/// Validates `file` and returns the start plan (indices of enabled agents, dependencies first,
/// otherwise in file order).
pub fn validate(file: &File, loc: &Locator<'_>) -> Result<Vec<usize>, Failure> {
    launcher(file, loc)?;
    let mut first_seen: HashMap<&str, usize> = HashMap::new();
    for (i, a) in file.agent.iter().enumerate() {
        agent(i, a, loc)?;
        if let Some(&first) = first_seen.get(a.name.as_str()) {
            let line = loc.agent_field(first, &a.name, &["name"], None).line;
            return Err((
                loc.agent_field(i, &a.name, &["name"], None),
                format!("duplicate agent name {:?}; it is first defined on line {line}", a.name),
            ));
        }
        first_seen.insert(&a.name, i);
    }
    for (i, a) in file.agent.iter().enumerate() {
        for (j, dep) in a.depends_on.iter().enumerate() {
            let at = || loc.agent_field(i, &a.name, &["depends_on"], Some(j));
            match first_seen.get(dep.as_str()) {
                None => return Err((at(), format!("depends on {dep:?}, which is not a configured agent"))),
                Some(&d) if a.enabled && !file.agent[d].enabled => {
                    return Err((at(), format!("depends on {dep:?}, which is disabled (enabled = false)")));
                }
                Some(_) => {}
            }
        }
    }
    alerts(file, &first_seen, loc)?;
    let order = order(&file.agent, &first_seen, loc)?;
    Ok(order.into_iter().filter(|&i| file.agent[i].enabled).collect())
}

fn launcher(file: &File, loc: &Locator<'_>) -> Result<(), Failure> {
    let l = &file.launcher;
    let fail = |field: &str, msg: &str| {
        let mut at = loc.launcher_field(field);
        at.field = Some(format!("launcher.{field}"));
        Err((at, msg.to_owned()))
    };
    if l.sample_interval.get() < Duration::from_millis(100) {
        return fail("sample_interval", "must be at least 100ms");
    }
    if let Err(msg) = l.sample_interval.at_most(MAX_SAMPLE_INTERVAL) {
        return fail("sample_interval", &msg);
    }
    if l.log_lines == 0 {
        return fail("log_lines", "must be at least 1");
    }
    if l.log_lines > MAX_ROWS {
        return fail("log_lines", &format!("must be at most {MAX_ROWS}"));
    }
    if l.log_line_bytes < 80 {
        return fail("log_line_bytes", "must be at least 80");
    }
    if l.log_line_bytes > MAX_LINE_BYTES {
        return fail("log_line_bytes", &format!("must be at most {MAX_LINE_BYTES}"));
    }
    if l.log_rate == 0 {
        return fail("log_rate", "must be at least 1");
    }
    if l.log_rate > MAX_LOG_RATE {
        return fail("log_rate", &format!("must be at most {MAX_LOG_RATE}"));
    }
    if let Err((key, msg)) = l.retention.check() {
        let mut at = loc.launcher_field("retention");
        at.field = Some(format!("launcher.retention.{key}"));
        return Err((at, msg));
    }
    Ok(())
}

/// The word `ctl` takes for every agent, so no agent may be named so.
pub const ALL_AGENTS: &str = "all";

fn agent(i: usize, a: &AgentConfig, loc: &Locator<'_>) -> Result<(), Failure> {
    let fail = |path: &[&str], element: Option<usize>, msg: String| {
        Err((loc.agent_field(i, &a.name, path, element), msg))
    };
    let name_ok = a.name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if a.name.is_empty() || a.name.len() > MAX_NAME || !name_ok {
        return fail(
            &["name"],
            None,
            format!("invalid agent name {:?}: use 1 to {MAX_NAME} letters, digits, '-' or '_'", a.name),
        );
    }
    if a.name == ALL_AGENTS {
        return fail(&["name"], None, "\"all\" is reserved: `ctl stop all` means every agent".into());
    }
    if a.command.trim().is_empty() || a.command.contains('\0') {
        return fail(&["command"], None, "must name a program".into());
    }
    if let Some(j) = a.args.iter().position(|s| s.contains('\0')) {
        return fail(&["args"], Some(j), "arguments cannot contain NUL bytes".into());
    }
    for (k, v) in &a.env {
        if k.is_empty() || k.contains('=') || k.contains('\0') || v.contains('\0') {
            return fail(&["env"], None, format!("invalid environment variable {k:?}"));
        }
    }
    let b = &a.backoff;
    let durations = [
        (&["backoff", "initial"][..], Some(b.initial)),
        (&["backoff", "max"], Some(b.max)),
        (&["backoff", "reset_after"], Some(b.reset_after)),
        (&["restart_window"], Some(a.restart_window)),
        (&["ready_timeout"], Some(a.ready_timeout)),
        (&["stop_timeout"], Some(a.stop_timeout)),
        (&["heartbeat_timeout"], a.heartbeat_timeout),
        (&["limit_for"], Some(a.limit_for)),
    ];
    for (path, value) in durations {
        if let Some(Err(msg)) = value.map(|d| d.at_most(MAX_AGENT_DURATION)) {
            return fail(path, None, msg);
        }
    }
    if a.max_restarts > MAX_RESTARTS {
        return fail(&["max_restarts"], None, format!("must be at most {MAX_RESTARTS}"));
    }
    if !(b.multiplier.is_finite() && b.multiplier >= 1.0) {
        return fail(&["backoff", "multiplier"], None, "must be a number of at least 1.0".into());
    }
    if b.max < b.initial {
        return fail(&["backoff", "max"], None, format!("must not be less than initial ({})", b.initial));
    }
    let positive = [
        ("restart_window", Some(a.restart_window)),
        ("ready_timeout", Some(a.ready_timeout)),
        ("stop_timeout", Some(a.stop_timeout)),
        ("heartbeat_timeout", a.heartbeat_timeout),
    ];
    for (field, value) in positive {
        if value.is_some_and(|d| d.get().is_zero()) {
            return fail(&[field], None, "must be longer than 0".into());
        }
    }
    if let Some(j) = a.depends_on.iter().position(|d| *d == a.name) {
        return fail(&["depends_on"], Some(j), "an agent cannot depend on itself".into());
    }
    if let Some(schedule) = &a.schedule {
        if let Err((path, msg)) = super::schedule::check(schedule) {
            return fail(&path, None, msg);
        }
        if a.restart == Restart::Always {
            return fail(
                &["restart"],
                None,
                "\"always\" cannot be used with a schedule: a scheduled agent runs to completion; use \
                 \"on-failure\" to retry a failed run or \"never\""
                    .into(),
            );
        }
    }
    if let Err((path, msg)) = probes(a) {
        return fail(&path, None, msg);
    }
    Ok(())
}

/// Checks an agent's probes and `ready_log_line`.
fn probes(a: &AgentConfig) -> Result<(), Problem> {
    for (role, probe) in [("readiness", &a.readiness), ("liveness", &a.liveness)] {
        if let Some(p) = probe {
            check_probe(role, p)?;
        }
    }
    if let Some(pattern) = &a.ready_log_line {
        ready_line_regex(pattern).map_err(|m| (vec!["ready_log_line"], m))?;
    }
    let gates = [
        (a.ready == Ready::Notify, "ready = \"notify\""),
        (a.readiness.is_some(), "readiness"),
        (a.ready_log_line.is_some(), "ready_log_line"),
    ];
    let chosen: Vec<&str> = gates.iter().filter(|(on, _)| *on).map(|(_, name)| *name).collect();
    if chosen.len() > 1 {
        let key = if a.readiness.is_some() { "readiness" } else { "ready_log_line" };
        return Err((
            vec![key],
            format!("{} are alternative ways to tell readiness: choose one", chosen.join(" and ")),
        ));
    }
    Ok(())
}

/// The `[[alert]]` rules: a name each, unique; agents that exist; a known value and one
/// condition with thresholds in its unit (see [`super::alert::AlertRule::condition`]).
fn alerts(file: &File, agents: &HashMap<&str, usize>, loc: &Locator<'_>) -> Result<(), Failure> {
    let mut names: HashMap<&str, usize> = HashMap::new();
    for (i, r) in file.alert.iter().enumerate() {
        let fail =
            |key: &str, element: Option<usize>, msg: String| Err((loc.alert_field(i, key, element), msg));
        if r.name.trim().is_empty() || r.name.len() > MAX_NAME * 2 {
            return fail("name", None, format!("an alert needs a name of 1 to {} characters", MAX_NAME * 2));
        }
        if let Some(first) = names.insert(&r.name, i) {
            let line = loc.alert_field(first, "name", None).line;
            return fail(
                "name",
                None,
                format!("duplicate alert name {:?}; it is first defined on line {line}", r.name),
            );
        }
        if let Some(j) = r.agents.iter().position(|a| !agents.contains_key(a.as_str())) {
            return fail("agents", Some(j), format!("{:?} is not a configured agent", r.agents[j]));
        }
        if let Err((key, msg)) = r.condition() {
            return fail(key, None, msg);
        }
        for (key, d) in [("for", Some(r.hold)), ("window", r.window), ("absent", r.absent)] {
            if let Some(Err(msg)) = d.map(|d| d.at_most(MAX_AGENT_DURATION)) {
                return fail(key, None, msg);
            }
        }
    }
    Ok(())
}

/// Kahn's topological sort, always taking the first ready agent in file order, so agents
/// without dependencies keep the order of the file. A cycle is reported at the `depends_on`
/// entry that closes it.
fn order(
    agents: &[AgentConfig],
    index: &HashMap<&str, usize>,
    loc: &Locator<'_>,
) -> Result<Vec<usize>, Failure> {
    let deps: Vec<Vec<usize>> = agents
        .iter()
        .map(|a| a.depends_on.iter().filter_map(|d| index.get(d.as_str()).copied()).collect())
        .collect();
    let mut placed = vec![false; agents.len()];
    let mut out = Vec::with_capacity(agents.len());
    while out.len() < agents.len() {
        let next = (0..agents.len()).find(|&i| !placed[i] && deps[i].iter().all(|&d| placed[d]));
        match next {
            Some(i) => {
                placed[i] = true;
                out.push(i);
            }
            None => return Err(cycle(agents, &deps, &placed, loc)),
        }
    }
    Ok(out)
}

fn cycle(agents: &[AgentConfig], deps: &[Vec<usize>], placed: &[bool], loc: &Locator<'_>) -> Failure {
    // Every unplaced agent waits on another unplaced one, so walking unplaced dependencies
    // from any of them must come back to an agent already on the path.
    let mut path: Vec<usize> = Vec::new();
    let mut at = placed.iter().position(|p| !p).unwrap_or(0);
    loop {
        if let Some(pos) = path.iter().position(|&p| p == at) {
            let ring = &path[pos..];
            let names: Vec<&str> =
                ring.iter().chain(std::iter::once(&at)).map(|&i| agents[i].name.as_str()).collect();
            let (last, first) = (ring[ring.len() - 1], ring[0]);
            let j = agents[last].depends_on.iter().position(|d| *d == agents[first].name);
            return (
                loc.agent_field(last, &agents[last].name, &["depends_on"], j),
                format!("dependency cycle: {}", names.join(" -> ")),
            );
        }
        path.push(at);
        match deps[at].iter().find(|&&d| !placed[d]) {
            Some(&d) => at = d,
            None => {
                return (Location::default(), "dependency cycle".into());
            }
        }
    }
}

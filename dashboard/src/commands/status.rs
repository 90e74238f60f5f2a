//! `agentvisor-dashboard status [--json]`: one look at the launcher and every agent, with an
//! exit code for monitoring (see [`Verdict`]). The JSON object is documented key by key in
//! `docs/status-json.md`; keep the two in step.

use super::{open, print_lines, read_failed};
use crate::assess::{Heartbeat, Liveness, Summary, Verdict, config_error};
use crate::cli::StatusArgs;
use crate::format;
use agentvisor_shared::model::{AgentRow, FiringAlert, HostStats, Snapshot, metric};
use agentvisor_shared::paths::Resolved;
use agentvisor_shared::runs::SpendWindows;
use agentvisor_shared::status_table;
use agentvisor_shared::time::{now_ms, rfc3339, secs_between};
use serde_json::{Map, Value, json};

/// `zone` says where "today" of the spend begins.
pub fn run(resolved: &Resolved, args: &StatusArgs, zone: format::Zone) -> u8 {
    let now = now_ms();
    let read = |r: agentvisor_shared::Reader| {
        let s = r.snapshot()?;
        let spend = r.spend(zone.day_start_ms(now), now)?;
        Ok((s, spend))
    };
    let (snapshot, spend) = match open(resolved).and_then(|r| read(r).map_err(|e| read_failed(&e))) {
        Ok(s) => s,
        Err(code) => {
            if args.json {
                print_lines([unreadable_json(resolved, code).to_string()]);
            }
            return code;
        }
    };
    let verdict = Verdict::of(&snapshot, now);
    let out = if args.json {
        vec![to_json(&snapshot, resolved, now, Some(&spend)).to_string()]
    } else {
        table(&snapshot, now)
    };
    print_lines(out);
    verdict.code()
}

/// The `--json` object when the database cannot be read; `code` is the exit code.
pub fn unreadable_json(resolved: &Resolved, code: u8) -> Value {
    json!({
        "verdict": Verdict::NoDatabase.as_str(),
        "exit_code": code,
        "database": {"path": resolved.path.display().to_string(), "source": resolved.source.to_string()},
        "launcher": null,
        "agents": [],
    })
}

/// The `--json` object. Times are RFC 3339 UTC; ages and durations are seconds as floats;
/// absent facts are `null`, never missing keys. `spend` is `null` where it was not read.
pub fn to_json(s: &Snapshot, resolved: &Resolved, now: i64, spend: Option<&SpendWindows>) -> Value {
    let liveness = Liveness::of(s.launcher.as_ref(), now);
    // Every key is present even when no launcher has ever run, so `jq` paths never vanish.
    let l = liveness.session();
    let launcher = json!({
        "running": liveness.is_running(),
        "stale": matches!(liveness, Liveness::Stale { .. }),
        "pid": l.map(|l| l.pid),
        "host": l.map(|l| &l.host),
        "version": l.map(|l| &l.version),
        "session_id": l.map(|l| l.id),
        "started_at": l.map(|l| rfc3339(l.started_ms)),
        "last_seen_at": l.map(|l| rfc3339(l.last_seen_ms)),
        "last_seen_age_s": l.map(|l| secs_between(l.last_seen_ms, now)),
        "stopped_at": l.and_then(|l| l.stopped_ms).map(rfc3339),
        "down_since": liveness.down_since_ms().map(rfc3339),
        "exit_reason": l.and_then(|l| l.exit_reason.as_ref()),
        "status": l.and_then(|l| l.status.as_ref()),
        "config_error": config_error(&liveness),
        "config_path": l.and_then(|l| l.config_path.as_ref()),
        "cpu_percent": s.launcher_metrics.get(metric::CPU_PERCENT),
        "memory_bytes": s.launcher_metrics.get(metric::MEMORY_BYTES).map(|v| *v as u64),
    });
    let summary = Summary::of(&s.agents);
    let by_state: Map<String, Value> =
        summary.by_state.iter().map(|(k, v)| (k.to_string(), json!(v))).collect();
    let verdict = Verdict::of(s, now);
    json!({
        "verdict": verdict.as_str(),
        "exit_code": verdict.code(),
        "taken_at": rfc3339(s.taken_ms),
        "database": {
            "path": resolved.path.display().to_string(),
            "source": resolved.source.to_string(),
            "schema_version": s.schema_version,
            "db_bytes": s.db_bytes,
            "wal_bytes": s.wal_bytes,
        },
        "launcher": launcher,
        "host": host_json(&s.host),
        "summary": {
            "agents": summary.agents,
            "enabled": summary.enabled,
            "healthy": summary.healthy,
            "in_trouble": summary.in_trouble,
            "by_state": by_state,
            "errors_last_hour": s.errors_last_hour,
        },
        "agents": s.agents.iter().map(|a| agent_json(a, &s.alerts, now)).collect::<Vec<_>>(),
        "alerts": s.alerts.iter().map(|a| super::alerts::alert_json(a, now)).collect::<Vec<_>>(),
        "spend": spend,
    })
}

/// The host figures, sizes as whole bytes: the database keeps every sample as a REAL, and the
/// documented shape promises integers.
fn host_json(h: &HostStats) -> Value {
    let bytes = |v: Option<f64>| v.map(|v| v as u64);
    json!({
        "cpu_percent": h.cpu_percent,
        "memory_used_bytes": bytes(h.memory_used_bytes),
        "memory_total_bytes": bytes(h.memory_total_bytes),
        "load1": h.load1,
        "load5": h.load5,
        "load15": h.load15,
        "disk_free_bytes": bytes(h.disk_free_bytes),
    })
}

fn agent_json(a: &AgentRow, alerts: &[FiringAlert], now: i64) -> Value {
    let running = a.lifecycle.state.has_process();
    let custom: Map<String, Value> = a.custom_metrics().map(|(k, v)| (k.to_owned(), json!(v))).collect();
    json!({
        "name": a.name,
        "description": a.description,
        "enabled": a.enabled,
        "desired_state": a.desired_state,
        "capabilities": a.capabilities,
        "state": a.lifecycle.state,
        "health": a.lifecycle.health,
        "ready": a.lifecycle.ready,
        "in_trouble": crate::assess::in_trouble(a),
        "pid": a.lifecycle.pid,
        "restarts": a.lifecycle.restarts,
        "started_at": a.lifecycle.started_ms.map(rfc3339),
        "uptime_s": a.lifecycle.started_ms.filter(|_| running).map(|t| secs_between(t, now)),
        "exit_code": a.lifecycle.exit_code,
        "exit_signal": a.lifecycle.exit_signal,
        "heartbeats": a.reported.heartbeats,
        "heartbeat_timeout_s": a.heartbeat_timeout_ms.map(|t| t as f64 / 1000.0),
        "last_heartbeat_age_s": a.reported.last_heartbeat_ms.map(|t| secs_between(t, now)),
        "process_only": Heartbeat::of(a, now) == Heartbeat::ProcessOnly,
        "cpu_percent": a.metrics.get(metric::CPU_PERCENT),
        "memory_bytes": a.metrics.get(metric::MEMORY_BYTES).map(|v| *v as u64),
        "status": a.reported.status_text,
        "task": a.reported.task,
        "model": a.reported.model,
        "tokens_in": a.reported.tokens_in,
        "tokens_out": a.reported.tokens_out,
        "cost": a.reported.cost,
        "last_error": a.lifecycle.last_error,
        "notify_errors": a.reported.notify_errors,
        "metrics": custom,
        "probes": a.probes.iter().map(|p| probe_json(p, now)).collect::<Vec<_>>(),
        "alerts": alerts.iter().filter(|f| f.agent == a.name).map(|f| &f.rule).collect::<Vec<_>>(),
        "last_run": a.last_run.as_ref().map(last_run_json),
        "next_run_at": a.next_run_ms.map(rfc3339),
    })
}

fn probe_json(p: &agentvisor_shared::probes::ProbeStatus, now: i64) -> Value {
    json!({
        "probe": p.probe,
        "kind": p.kind,
        "target": p.target,
        "state": p.state,
        "last_ok": p.last_ok,
        "last_checked_at": p.last_ms.map(rfc3339),
        "last_age_s": p.last_ms.map(|t| secs_between(t, now)),
        "latency_ms": p.latency_ms,
        "consecutive_successes": p.consecutive_successes,
        "consecutive_failures": p.consecutive_failures,
        "message": p.message,
    })
}

/// `agents[].last_run` (docs/status-json.md).
fn last_run_json(r: &agentvisor_shared::model::LastRun) -> Value {
    json!({
        "id": r.id,
        "trigger": r.trigger,
        "outcome": r.outcome,
        "started_at": rfc3339(r.started_ms),
        "ended_at": r.ended_ms.map(rfc3339),
        "duration_s": r.duration_ms.map(|d| d as f64 / 1000.0),
        "exit_code": r.exit_code,
        "exit_signal": r.exit_signal,
        "cost": r.cost,
    })
}

/// The human form: a launcher line, a summary line, and an aligned table.
fn table(s: &Snapshot, now: i64) -> Vec<String> {
    let liveness = Liveness::of(s.launcher.as_ref(), now);
    let launcher = match &liveness {
        Liveness::Never => "no launcher has run on this database".to_owned(),
        Liveness::Running { session: l } => format!(
            "running · pid {} on {} · v{} · since {} · seen {} ago",
            l.pid,
            l.host,
            l.version,
            rfc3339(l.started_ms),
            format::duration_ms(now - l.last_seen_ms)
        ),
        Liveness::Stale { session: l } | Liveness::Stopped { session: l } => {
            let since = liveness.down_since_ms().unwrap_or(l.last_seen_ms);
            let how = if matches!(liveness, Liveness::Stale { .. }) { "STALE" } else { "DOWN" };
            format!(
                "{how} since {} ({} ago), pid {} on {}",
                rfc3339(since),
                format::duration_ms(now - since),
                l.pid,
                l.host
            )
        }
    };
    let summary = Summary::of(&s.agents);
    let states: Vec<String> = summary.by_state.iter().map(|(k, v)| format!("{v} {k}")).collect();
    let mut out = vec![format!("launcher: {launcher}")];
    if let Some(error) = config_error(&liveness) {
        out.push(format!("config:   INVALID, the running config stays in force: {error}"));
    }
    out.push(format!(
        "agents:   {}/{} healthy · {} · errors last hour: {}",
        summary.healthy,
        summary.enabled,
        if states.is_empty() { "none registered".to_owned() } else { states.join(", ") },
        s.errors_last_hour
    ));
    if !s.alerts.is_empty() {
        let firing: Vec<String> =
            s.alerts.iter().map(|a| format!("{} on {} ({})", a.rule, a.agent, a.severity)).collect();
        out.push(format!("alerts:   {} firing: {}", s.alerts.len(), firing.join(", ")));
    }
    let rows: Vec<status_table::Row> = s.agents.iter().map(status_table::Row::of_agent).collect();
    out.extend(status_table::render(&rows, now));
    out
}

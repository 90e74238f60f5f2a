//! `agentvisor-dashboard alerts [--json]`: the `[[alert]]` rules firing now, as the launcher
//! last wrote them. Exit code 1 while one of severity `error` or higher fires (the alert part
//! of `status`'s verdict), 0 otherwise, 3 without a readable database.

use super::{open, print_lines, read_failed};
use crate::cli::AlertsArgs;
use crate::format;
use agentvisor_shared::model::{FiringAlert, Severity};
use agentvisor_shared::paths::Resolved;
use agentvisor_shared::time::{now_ms, rfc3339, secs_between};
use serde_json::{Value, json};

pub fn run(resolved: &Resolved, args: &AlertsArgs) -> u8 {
    let alerts = match open(resolved).and_then(|r| r.alerts().map_err(|e| read_failed(&e))) {
        Ok(a) => a,
        Err(code) => return code,
    };
    let now = now_ms();
    let out = if args.json {
        let all: Vec<Value> = alerts.iter().map(|a| alert_json(a, now)).collect();
        vec![json!({ "alerts": all }).to_string()]
    } else {
        table(&alerts, now)
    };
    print_lines(out);
    u8::from(alerts.iter().any(|a| a.severity >= Severity::Error))
}

/// One firing alert, as in `status --json`'s `alerts[]`.
pub fn alert_json(a: &FiringAlert, now: i64) -> Value {
    json!({
        "rule": a.rule,
        "agent": a.agent,
        "severity": a.severity,
        "since": rfc3339(a.since_ms),
        "firing_s": secs_between(a.since_ms, now),
        "value": a.value,
        "message": a.message,
    })
}

fn table(alerts: &[FiringAlert], now: i64) -> Vec<String> {
    if alerts.is_empty() {
        return vec!["no alerts firing".to_owned()];
    }
    let mut rows = vec![["RULE", "AGENT", "SEVERITY", "SINCE", "VALUE", "MESSAGE"].map(str::to_owned)];
    for a in alerts {
        rows.push([
            a.rule.clone(),
            a.agent.clone(),
            a.severity.to_string(),
            format!("{} ago", format::duration_ms(now - a.since_ms)),
            a.value.map_or("-".into(), figure),
            a.message.clone(),
        ]);
    }
    let widths: Vec<usize> =
        (0..6).map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0)).collect();
    rows.iter()
        .map(|r| {
            let cells: Vec<String> = r.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
            cells.join("  ").trim_end().to_owned()
        })
        .collect()
}

/// A value for the table: whole numbers as such, others with up to three decimals.
pub fn figure(v: f64) -> String {
    let s = format!("{v:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

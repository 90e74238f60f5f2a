//! `/metrics`: one scrape's [`Read`] encoded through `prometheus-client`, fresh each time.
//! Every family is listed in docs/exporter.md; keep the two in step.
//!
//! Per-agent series carry an `agent` label. Custom `X_METRIC_*` values share one family,
//! `agentvisor_agent_custom_metric`, with a `metric` label: their names are the agents' own
//! and their units unknown, so a family per name would give Prometheus one family per word an
//! agent invents. The launcher accepts at most 64 names an agent, and [`Exposition::max_custom`]
//! bounds the total a scrape exposes.

use super::read::Read;
use crate::assess::{Liveness, config_error, counts_as_healthy, in_trouble};
use agentvisor_shared::model::{AgentRow, DesiredState, FiringAlert, Severity, metric};
use agentvisor_shared::probes::{ProbeState, ProbeStatus};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric, MetricEncoder};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;
use std::fmt;

/// Which text format a scraper asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// OpenMetrics 1.0 text, what Prometheus asks for first.
    OpenMetrics,
    /// The classic Prometheus text format 0.0.4, for everything else (curl, older scrapers).
    Prometheus,
}

impl Format {
    /// From the request's `Accept` header.
    pub fn from_accept(accept: Option<&str>) -> Format {
        match accept {
            Some(a) if a.contains("application/openmetrics-text") => Format::OpenMetrics,
            _ => Format::Prometheus,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
            Format::Prometheus => "text/plain; version=0.0.4; charset=utf-8",
        }
    }
}

/// One scrape's data: what was read, or why nothing could be.
#[derive(Debug)]
pub struct Exposition {
    pub read: Result<Read, String>,
    pub now_ms: i64,
    /// The most `agentvisor_agent_custom_metric` series exposed.
    pub max_custom: usize,
}

impl Exposition {
    pub fn encode(self, format: Format) -> Result<String, fmt::Error> {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(self));
        let mut out = String::new();
        match format {
            Format::OpenMetrics => prometheus_client::encoding::text::encode(&mut out, &registry)?,
            Format::Prometheus => prometheus_client::encoding::prometheus_text::encode(&mut out, &registry)?,
        }
        Ok(out)
    }
}

impl fmt::Debug for Read {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Read").field("agents", &self.snapshot.agents.len()).finish_non_exhaustive()
    }
}

const GAUGE: MetricType = MetricType::Gauge;
const COUNTER: MetricType = MetricType::Counter;

/// Whole numbers below 2^53 (flags, counts, codes, bytes) are written as integers, `1`
/// rather than `1.0`, as Go's client does: shorter lines, and integer formatting costs a
/// fraction of float formatting at tens of thousands of series a scrape.
const EXACT_INTEGER: f64 = 9_007_199_254_740_992.0;

fn value(m: MetricEncoder<'_>, kind: MetricType, v: f64) -> fmt::Result {
    let whole = v.fract() == 0.0 && v.abs() < EXACT_INTEGER;
    match kind {
        MetricType::Counter if whole && v >= 0.0 => ConstCounter::new(v as u64).encode(m),
        MetricType::Counter => ConstCounter::new(v).encode(m),
        _ if whole => ConstGauge::new(v as i64).encode(m),
        _ => ConstGauge::new(v).encode(m),
    }
}

/// A family of one series without labels; absent (`None`) leaves only its HELP and TYPE.
fn single(
    e: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    kind: MetricType,
    v: Option<f64>,
) -> fmt::Result {
    let m = e.encode_descriptor(name, help, None, kind)?;
    match v {
        Some(v) => value(m, kind, v),
        None => Ok(()),
    }
}

/// A family of labelled series.
fn labelled<L: EncodeLabelSet>(
    e: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    kind: MetricType,
    series: impl IntoIterator<Item = (L, f64)>,
) -> fmt::Result {
    let mut m = e.encode_descriptor(name, help, None, kind)?;
    for (labels, v) in series {
        value(m.encode_family(&labels)?, kind, v)?;
    }
    Ok(())
}

/// A family with one series per agent that has a value.
fn per_agent(
    e: &mut DescriptorEncoder<'_>,
    agents: &[AgentRow],
    name: &str,
    help: &str,
    kind: MetricType,
    f: impl Fn(&AgentRow) -> Option<f64>,
) -> fmt::Result {
    labelled(e, name, help, kind, agents.iter().filter_map(|a| Some(([("agent", a.name.as_str())], f(a)?))))
}

fn flag(b: bool) -> f64 {
    if b { 1.0 } else { 0.0 }
}

fn seconds(ms: i64) -> f64 {
    ms as f64 / 1000.0
}

impl Collector for Exposition {
    fn encode(&self, mut e: DescriptorEncoder<'_>) -> fmt::Result {
        let read = match &self.read {
            Ok(read) => read,
            Err(_) => {
                single(&mut e, "agentvisor_database_readable", HELP_READABLE, GAUGE, Some(0.0))?;
                return single(&mut e, "agentvisor_launcher_up", HELP_LAUNCHER_UP, GAUGE, Some(0.0));
            }
        };
        let s = &read.snapshot;
        let now = self.now_ms;
        let liveness = Liveness::of(s.launcher.as_ref(), now);
        let session = liveness.session();
        single(&mut e, "agentvisor_database_readable", HELP_READABLE, GAUGE, Some(1.0))?;
        single(&mut e, "agentvisor_launcher_up", HELP_LAUNCHER_UP, GAUGE, Some(flag(liveness.is_running())))?;
        single(
            &mut e,
            "agentvisor_launcher_start_time_seconds",
            "When the newest launcher session started, in seconds since the Unix epoch.",
            GAUGE,
            session.map(|l| seconds(l.started_ms)),
        )?;
        single(
            &mut e,
            "agentvisor_launcher_last_seen_age_seconds",
            "Seconds since the launcher last refreshed its session row (every second while it runs; \
             stale past 3).",
            GAUGE,
            session.map(|l| seconds(now - l.last_seen_ms)),
        )?;
        labelled(
            &mut e,
            "agentvisor_launcher_info",
            "Always 1: the newest launcher session's host name and version as labels.",
            GAUGE,
            session.map(|l| ([("host", l.host.as_str()), ("version", l.version.as_str())], 1.0)),
        )?;
        single(
            &mut e,
            "agentvisor_launcher_config_invalid",
            "1 while the running launcher refuses the config file on disk (the old one stays in force).",
            GAUGE,
            Some(flag(config_error(&liveness).is_some())),
        )?;
        let lm = |name: &str| s.launcher_metrics.get(name).copied();
        single(
            &mut e,
            "agentvisor_launcher_cpu_ratio",
            "The launcher's CPU use, as a fraction of one core.",
            GAUGE,
            lm(metric::CPU_PERCENT).map(|v| v / 100.0),
        )?;
        single(
            &mut e,
            "agentvisor_launcher_resident_memory_bytes",
            "The launcher's resident memory.",
            GAUGE,
            lm(metric::MEMORY_BYTES),
        )?;
        single(
            &mut e,
            "agentvisor_database_size_bytes",
            "Size of the database file.",
            GAUGE,
            Some(s.db_bytes as f64),
        )?;
        single(
            &mut e,
            "agentvisor_database_wal_size_bytes",
            "Size of the database's write-ahead log (-wal file).",
            GAUGE,
            Some(s.wal_bytes as f64),
        )?;
        labelled(
            &mut e,
            "agentvisor_events",
            "Events recorded, by severity: those in the database when the exporter started, then \
             every new one (retention deleting old rows does not lower it).",
            COUNTER,
            Severity::ALL.iter().zip(read.events).map(|(s, n)| ([("severity", s.as_str())], n as f64)),
        )?;
        let h = &s.host;
        single(
            &mut e,
            "agentvisor_host_cpu_ratio",
            "The host's CPU busy, as a fraction of all its CPUs.",
            GAUGE,
            h.cpu_percent.map(|v| v / 100.0),
        )?;
        single(
            &mut e,
            "agentvisor_host_memory_used_bytes",
            "The host's memory in use.",
            GAUGE,
            h.memory_used_bytes,
        )?;
        single(
            &mut e,
            "agentvisor_host_memory_total_bytes",
            "The host's memory.",
            GAUGE,
            h.memory_total_bytes,
        )?;
        single(&mut e, "agentvisor_host_load1", "The host's load average over 1 minute.", GAUGE, h.load1)?;
        single(&mut e, "agentvisor_host_load5", "The host's load average over 5 minutes.", GAUGE, h.load5)?;
        single(
            &mut e,
            "agentvisor_host_load15",
            "The host's load average over 15 minutes.",
            GAUGE,
            h.load15,
        )?;
        single(
            &mut e,
            "agentvisor_host_disk_free_bytes",
            "Free space on the database's volume.",
            GAUGE,
            h.disk_free_bytes,
        )?;
        self.agents(&mut e, &s.agents)?;
        runs(&mut e, &s.agents)?;
        probes(&mut e, &s.agents)?;
        alerts(&mut e, &s.alerts)?;
        single(
            &mut e,
            "agentvisor_exporter_read_duration_seconds",
            "How long this scrape spent reading the database.",
            GAUGE,
            Some(read.took.as_secs_f64()),
        )
    }
}

const HELP_READABLE: &str = "1 when the exporter could read the database at this scrape.";
const HELP_LAUNCHER_UP: &str =
    "1 when a launcher runs on this database and refreshed its session within the last 3 seconds.";

impl Exposition {
    fn agents(&self, e: &mut DescriptorEncoder<'_>, agents: &[AgentRow]) -> fmt::Result {
        let now = self.now_ms;
        let has_process = |a: &AgentRow| a.lifecycle.state.has_process();
        per_agent(
            e,
            agents,
            "agentvisor_agent_enabled",
            "1 when the agent is enabled in the config.",
            GAUGE,
            |a| Some(flag(a.enabled)),
        )?;
        per_agent(
            e,
            agents,
            "agentvisor_agent_desired_up",
            "1 when the agent should run (neither stopped by an operator nor disabled).",
            GAUGE,
            |a| Some(flag(a.desired_state == DesiredState::Running && a.enabled)),
        )?;
        per_agent(
            e,
            agents,
            "agentvisor_agent_up",
            "1 while the agent's process exists (starting, running or stopping).",
            GAUGE,
            |a| Some(flag(has_process(a))),
        )?;
        per_agent(
            e,
            agents,
            "agentvisor_agent_healthy",
            "1 when the agent is healthy: its heartbeats arrive in time, or it sends none and its \
             process runs (the dashboard's healthy count).",
            GAUGE,
            |a| Some(flag(counts_as_healthy(a))),
        )?;
        per_agent(
            e,
            agents,
            "agentvisor_agent_ready",
            "1 when the agent has said READY=1 (or needs not).",
            GAUGE,
            |a| Some(flag(a.lifecycle.ready)),
        )?;
        per_agent(
            e,
            agents,
            "agentvisor_agent_in_trouble",
            "1 when the agent needs attention: backoff, fatal, unhealthy, or failed and left down.",
            GAUGE,
            |a| Some(flag(in_trouble(a))),
        )?;
        labelled(
            e,
            "agentvisor_agent_state",
            "Always 1: the agent's lifecycle state as the state label (a state change replaces the \
             series).",
            GAUGE,
            agents.iter().map(|a| ([("agent", a.name.as_str()), ("state", a.lifecycle.state.as_str())], 1.0)),
        )?;
        per_agent(
            e,
            agents,
            "agentvisor_agent_restarts",
            "Restarts by the agent's restart policy (after a crash, a missed heartbeat, a ready \
             timeout or a failure to start) since the launcher started.",
            COUNTER,
            |a| Some(a.lifecycle.restarts as f64),
        )?;
        per_agent(
            e,
            agents,
            "agentvisor_agent_last_exit_code",
            "Exit code of the agent's last process that exited by itself (absent when killed by a \
             signal or never exited).",
            GAUGE,
            |a| a.lifecycle.exit_code.map(|c| c as f64),
        )?;
        per_agent(
            e,
            agents,
            "agentvisor_agent_last_exit_signal",
            "Signal that killed the agent's last process, when one did.",
            GAUGE,
            |a| a.lifecycle.exit_signal.map(|c| c as f64),
        )?;
        per_agent(
            e,
            agents,
            "agentvisor_agent_start_time_seconds",
            "When the agent's current process started, in seconds since the Unix epoch.",
            GAUGE,
            |a| a.lifecycle.started_ms.filter(|_| has_process(a)).map(seconds),
        )?;
        let m = |a: &AgentRow, name: &str| a.metrics.get(name).copied();
        per_agent(
            e,
            agents,
            "agentvisor_agent_cpu_ratio",
            "CPU use of the agent's processes (its group and every descendant), as a fraction of one core.",
            GAUGE,
            |a| m(a, metric::CPU_PERCENT).map(|v| v / 100.0),
        )?;
        per_agent(
            e,
            agents,
            "agentvisor_agent_resident_memory_bytes",
            "Resident memory of the agent's processes.",
            GAUGE,
            |a| m(a, metric::MEMORY_BYTES),
        )?;
        per_agent(e, agents, "agentvisor_agent_threads", "Threads of the agent's processes.", GAUGE, |a| {
            m(a, metric::THREADS)
        })?;
        per_agent(
            e,
            agents,
            "agentvisor_agent_heartbeat_age_seconds",
            "Seconds since the agent's last heartbeat (absent before the first).",
            GAUGE,
            |a| a.reported.last_heartbeat_ms.map(|t| seconds((now - t).max(0))),
        )?;
        per_agent(
            e,
            agents,
            "agentvisor_agent_heartbeat_timeout_seconds",
            "The agent's configured heartbeat_timeout (absent when it is not expected to heartbeat).",
            GAUGE,
            |a| a.heartbeat_timeout_ms.map(seconds),
        )?;
        per_agent(
            e,
            agents,
            "agentvisor_agent_heartbeats",
            "Heartbeats received from the agent.",
            COUNTER,
            |a| Some(a.reported.heartbeats as f64),
        )?;
        per_agent(
            e,
            agents,
            "agentvisor_agent_input_tokens",
            "Input tokens the agent reported (X_TOKENS_IN, its running total).",
            COUNTER,
            |a| a.reported.tokens_in.map(|v| v as f64),
        )?;
        per_agent(
            e,
            agents,
            "agentvisor_agent_output_tokens",
            "Output tokens the agent reported (X_TOKENS_OUT, its running total).",
            COUNTER,
            |a| a.reported.tokens_out.map(|v| v as f64),
        )?;
        per_agent(
            e,
            agents,
            "agentvisor_agent_cost",
            "Cost the agent reported (X_COST, its running total), in the agent's currency unit.",
            COUNTER,
            |a| a.reported.cost,
        )?;
        per_agent(
            e,
            agents,
            "agentvisor_agent_notify_errors",
            "Malformed notify messages received from the agent.",
            COUNTER,
            |a| Some(a.reported.notify_errors as f64),
        )?;
        let custom =
            agents.iter().flat_map(|a| a.custom_metrics().map(move |(name, v)| (a.name.as_str(), name, v)));
        let total = agents.iter().map(|a| a.custom_metrics().count()).sum::<usize>();
        labelled(
            e,
            "agentvisor_agent_custom_metric",
            "The latest value of each X_METRIC_<NAME> the agent sends, with the lower-case name as \
             the metric label.",
            GAUGE,
            custom.take(self.max_custom).map(|(agent, name, v)| ([("agent", agent), ("metric", name)], v)),
        )?;
        single(
            e,
            "agentvisor_exporter_custom_series_dropped",
            "Custom metric series left out of this scrape by --max-custom-series.",
            GAUGE,
            Some(total.saturating_sub(self.max_custom) as f64),
        )
    }
}

/// Runs: the last finished run (not skipped) of each agent that has one, and the next due time
/// of each scheduled agent. The outcome is a label, like `agentvisor_agent_state`'s state.
fn runs(e: &mut DescriptorEncoder<'_>, agents: &[AgentRow]) -> fmt::Result {
    labelled(
        e,
        "agentvisor_agent_last_run_outcome",
        "Always 1: how the agent's last finished run ended, as the outcome label (absent before \
         its first run ends).",
        GAUGE,
        agents.iter().filter_map(|a| {
            Some(([("agent", a.name.as_str()), ("outcome", a.last_run.as_ref()?.outcome.as_str())], 1.0))
        }),
    )?;
    per_agent(
        e,
        agents,
        "agentvisor_agent_last_run_end_time_seconds",
        "When the agent's last finished run ended, in seconds since the Unix epoch.",
        GAUGE,
        |a| a.last_run.as_ref()?.ended_ms.map(seconds),
    )?;
    per_agent(
        e,
        agents,
        "agentvisor_agent_last_run_duration_seconds",
        "How long the agent's last finished run took.",
        GAUGE,
        |a| a.last_run.as_ref()?.duration_ms.map(seconds),
    )?;
    per_agent(
        e,
        agents,
        "agentvisor_agent_next_run_time_seconds",
        "When the agent's schedule is next due, in seconds since the Unix epoch (absent without a \
         schedule or while it is paused).",
        GAUGE,
        |a| a.next_run_ms.map(seconds),
    )
}

/// A family with one series per configured probe, labelled by agent, probe and kind.
fn per_probe(
    e: &mut DescriptorEncoder<'_>,
    agents: &[AgentRow],
    name: &str,
    help: &str,
    f: impl Fn(&ProbeStatus) -> Option<f64>,
) -> fmt::Result {
    let series = agents.iter().flat_map(|a| a.probes.iter()).filter_map(|p| {
        let labels = [("agent", p.agent.as_str()), ("probe", p.probe.as_str()), ("kind", p.kind.as_str())];
        Some((labels, f(p)?))
    });
    labelled(e, name, help, GAUGE, series)
}

/// Probes: at most two an agent (readiness, liveness); `kind` is `exec`, `http` or `tcp`.
fn probes(e: &mut DescriptorEncoder<'_>, agents: &[AgentRow]) -> fmt::Result {
    per_probe(
        e,
        agents,
        "agentvisor_agent_probe_up",
        "1 when the probe's last check succeeded (absent before its first check).",
        |p| p.last_ok.map(flag),
    )?;
    per_probe(
        e,
        agents,
        "agentvisor_agent_probe_failing",
        "1 when the probe failed failure_threshold times in a row and has not passed since.",
        |p| Some(flag(p.state == ProbeState::Failing)),
    )?;
    per_probe(
        e,
        agents,
        "agentvisor_agent_probe_consecutive_failures",
        "Failed checks of the probe in a row (0 after a success).",
        |p| Some(p.consecutive_failures as f64),
    )?;
    per_probe(
        e,
        agents,
        "agentvisor_agent_probe_latency_seconds",
        "How long the probe's last check took.",
        |p| p.latency_ms.map(|ms| ms / 1000.0),
    )
}

/// Alerts: one series per firing `[[alert]]` rule and agent (rules x their agents at most), and
/// a count per severity that is 0 when nothing fires, so `> 0` rules need no `absent()`.
fn alerts(e: &mut DescriptorEncoder<'_>, alerts: &[FiringAlert]) -> fmt::Result {
    labelled(
        e,
        "agentvisor_alert_firing",
        "Always 1: an [[alert]] rule firing for an agent, with the rule's severity.",
        GAUGE,
        alerts.iter().map(|a| {
            ([("rule", a.rule.as_str()), ("agent", a.agent.as_str()), ("severity", a.severity.as_str())], 1.0)
        }),
    )?;
    labelled(
        e,
        "agentvisor_alerts_firing",
        "Alerts firing now, by severity.",
        GAUGE,
        Severity::ALL
            .iter()
            .map(|s| ([("severity", s.as_str())], alerts.iter().filter(|a| a.severity == *s).count() as f64)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assess::tests::{agent, session, snapshot};
    use agentvisor_shared::model::Health;
    use agentvisor_shared::model::{AgentState, RunOutcome};
    use std::sync::Arc;
    use std::time::Duration;

    fn exposition(max_custom: usize) -> Exposition {
        let mut a = agent("a", AgentState::Running, Health::Healthy);
        for name in ["queue_depth", "jobs_done", metric::CPU_PERCENT] {
            a.metrics.insert(Arc::from(name), 50.0);
        }
        let read = Read {
            snapshot: snapshot(Some(session(10_000, None)), vec![a]),
            events: [3, 2, 1, 0],
            took: Duration::from_millis(2),
        };
        Exposition { read: Ok(read), now_ms: 10_000, max_custom }
    }

    #[test]
    fn formats_follow_the_accept_header() {
        let om = exposition(10).encode(Format::OpenMetrics).unwrap();
        assert!(om.ends_with("# EOF\n"), "{om}");
        assert!(om.contains("# TYPE agentvisor_agent_restarts counter\n"), "{om}");
        assert!(om.contains("agentvisor_events_total{severity=\"warning\"} 2\n"), "{om}");
        let text = exposition(10).encode(Format::Prometheus).unwrap();
        assert!(!text.contains("# EOF"), "{text}");
        assert!(text.contains("# TYPE agentvisor_agent_restarts_total counter\n"), "{text}");
        assert!(text.contains("agentvisor_agent_cpu_ratio{agent=\"a\"} 0.5\n"), "{text}");
        assert_eq!(
            Format::from_accept(Some("application/openmetrics-text;version=1.0.0")),
            Format::OpenMetrics
        );
        assert_eq!(Format::from_accept(Some("*/*")), Format::Prometheus);
        assert_eq!(Format::from_accept(None), Format::Prometheus);
    }

    #[test]
    fn custom_series_are_capped_and_the_rest_counted() {
        let text = exposition(1).encode(Format::Prometheus).unwrap();
        let custom = text.lines().filter(|l| l.starts_with("agentvisor_agent_custom_metric{")).count();
        assert_eq!(custom, 1, "{text}");
        assert!(text.contains("agentvisor_exporter_custom_series_dropped 1\n"), "{text}");
        // The built-in cpu_percent is exported as CPU, never as a custom metric.
        assert!(!text.contains("metric=\"cpu_percent\""), "{text}");
    }

    #[test]
    fn runs_and_alerts_are_enum_style_and_counted_per_severity() {
        use agentvisor_shared::model::{FiringAlert, LastRun, RunTrigger};
        let mut e = exposition(10);
        let read = e.read.as_mut().unwrap();
        read.snapshot.agents[0].last_run = Some(LastRun {
            id: 1,
            trigger: RunTrigger::Schedule,
            outcome: RunOutcome::TimedOut,
            started_ms: 1_000,
            ended_ms: Some(3_500),
            duration_ms: Some(2_500),
            exit_code: None,
            exit_signal: Some(15),
            cost: None,
        });
        read.snapshot.agents[0].next_run_ms = Some(60_000);
        read.snapshot.alerts.push(FiringAlert {
            rule: "spend".into(),
            agent: "a".into(),
            severity: Severity::Error,
            since_ms: 9_000,
            value: Some(3.0),
            message: "spend: cost 3 > 2".into(),
        });
        let text = e.encode(Format::Prometheus).unwrap();
        let outcomes: Vec<&str> =
            text.lines().filter(|l| l.starts_with("agentvisor_agent_last_run_outcome{")).collect();
        assert_eq!(outcomes.len(), 1, "{text}");
        assert!(text.contains("agentvisor_agent_last_run_outcome{agent=\"a\",outcome=\"timed_out\"} 1\n"));
        assert!(text.contains("agentvisor_agent_last_run_duration_seconds{agent=\"a\"} 2.5\n"), "{text}");
        assert!(text.contains("agentvisor_agent_next_run_time_seconds{agent=\"a\"} 60\n"), "{text}");
        assert!(
            text.contains("agentvisor_alert_firing{rule=\"spend\",agent=\"a\",severity=\"error\"} 1\n"),
            "{text}"
        );
        assert!(text.contains("agentvisor_alerts_firing{severity=\"error\"} 1\n"), "{text}");
        assert!(text.contains("agentvisor_alerts_firing{severity=\"critical\"} 0\n"), "{text}");
    }

    #[test]
    fn an_unreadable_database_is_said_in_two_gauges() {
        let e = Exposition { read: Err("gone".into()), now_ms: 0, max_custom: 10 };
        let text = e.encode(Format::Prometheus).unwrap();
        let samples: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(samples, ["agentvisor_database_readable 0", "agentvisor_launcher_up 0"], "{text}");
    }
}

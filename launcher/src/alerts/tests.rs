use super::*;
use std::path::Path;

/// The rules of `[[alert]]` tables (`text`) over agents "a" and "b".
fn engine(text: &str) -> Engine {
    let full = format!(
        "[[agent]]\nname = \"a\"\ncommand = \"true\"\n[[agent]]\nname = \"b\"\ncommand = \"true\"\n{text}"
    );
    let config = crate::config::parse(Path::new("t.toml"), &full).unwrap();
    let mut e = Engine::default();
    let mut out = Vec::new();
    e.set_rules(config.alerts.into(), 0, &mut out);
    assert!(out.is_empty());
    e
}

fn running() -> AgentValues {
    AgentValues { running: true, ..AgentValues::default() }
}

/// Evaluates agent "a" alone at `ms`; the changes as ("fired" | "resolved", message).
fn eval(e: &mut Engine, ms: i64, v: &AgentValues) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    e.evaluate(ms, [("a", v)].into_iter(), &mut out);
    out.into_iter()
        .map(|c| match c {
            Change::Fired(a) => ("fired", a.message),
            Change::Resolved(a) => ("resolved", a.message),
        })
        .collect()
}

fn cost(c: f64) -> AgentValues {
    AgentValues { cost: Some(c), ..running() }
}

#[test]
fn above_fires_after_for_and_resolves_at_once() {
    let mut e =
        engine("[[alert]]\nname = \"fat\"\nvalue = \"memory_bytes\"\nabove = \"100MiB\"\nfor = \"2s\"");
    let mem = |mib: f64| AgentValues { memory_bytes: Some(mib * 1048576.0), ..running() };
    assert!(eval(&mut e, 0, &mem(200.0)).is_empty());
    assert!(eval(&mut e, 1_000, &mem(200.0)).is_empty());
    // A break starts `for` again.
    assert!(eval(&mut e, 1_500, &mem(50.0)).is_empty());
    assert!(eval(&mut e, 2_000, &mem(200.0)).is_empty());
    assert!(eval(&mut e, 3_000, &mem(200.0)).is_empty());
    let fired = eval(&mut e, 4_000, &mem(300.0));
    assert_eq!(fired, [("fired", "fat: memory_bytes 300MiB > 100MiB".to_owned())]);
    assert_eq!(e.firing().len(), 1);
    assert!(eval(&mut e, 5_000, &mem(300.0)).is_empty(), "fires once");
    let resolved = eval(&mut e, 6_000, &mem(1.0));
    assert_eq!(resolved, [("resolved", "fat: memory_bytes 1MiB <= 100MiB".to_owned())]);
    assert!(e.firing().is_empty());
}

#[test]
fn rate_over_the_window() {
    let mut e = engine(
        "[[alert]]\nname = \"spend\"\nvalue = \"cost\"\nrate = \"per_hour\"\nabove = 2.0\nwindow = \"10s\"",
    );
    // 0.001 a second is 3.6 an hour; the first value has nothing to compare with.
    assert!(eval(&mut e, 0, &cost(0.0)).is_empty());
    let fired = eval(&mut e, 5_000, &cost(0.005));
    assert_eq!(fired, [("fired", "spend: cost per_hour 3.6 > 2".to_owned())]);
    // Spending stops: the rate over the 10 s window falls under 2 once enough of it is flat.
    let resolved = eval(&mut e, 10_000, &cost(0.005));
    assert_eq!(resolved, [("resolved", "spend: cost per_hour 1.8 <= 2".to_owned())]);
}

#[test]
fn rate_without_a_window_is_the_change_since_the_last_sample() {
    let mut e = engine("[[alert]]\nname = \"r\"\nvalue = \"restarts\"\nrate = \"per_minute\"\nabove = 1.5");
    let r = |n: f64| AgentValues { restarts: n, ..running() };
    assert!(eval(&mut e, 0, &r(0.0)).is_empty());
    let fired = eval(&mut e, 30_000, &r(1.0));
    assert_eq!(fired, [("fired", "r: restarts per_minute 2 > 1.5".to_owned())]);
    // The next sample compares with this one only: no new restart, a rate of 0.
    assert_eq!(eval(&mut e, 60_000, &r(1.0))[0].0, "resolved");
}

#[test]
fn anomaly_needs_enough_values_and_fires_far_from_the_mean() {
    let mut e = engine("[[alert]]\nname = \"odd\"\nvalue = \"queue_depth\"\nanomaly = 3.0\nwindow = \"1m\"");
    let q = |ms: i64, v: f64| {
        let mut a = running();
        a.custom.insert("queue_depth".into(), (ms, v));
        a
    };
    // Too few values to judge, however far off.
    assert!(eval(&mut e, 0, &q(0, 10.0)).is_empty());
    assert!(eval(&mut e, 1_000, &q(1_000, 1_000.0)).is_empty());
    let mut e = engine("[[alert]]\nname = \"odd\"\nvalue = \"queue_depth\"\nanomaly = 3.0\nwindow = \"1m\"");
    for (i, v) in [10.0, 11.0, 9.0, 10.0, 12.0, 8.0, 10.0].into_iter().enumerate() {
        let ms = i as i64 * 1_000;
        assert!(eval(&mut e, ms, &q(ms, v)).is_empty(), "{v} is normal");
    }
    let fired = eval(&mut e, 7_000, &q(7_000, 30.0));
    assert_eq!(fired.len(), 1);
    assert!(fired[0].1.starts_with("odd: queue_depth 30 is more than 3 standard deviations"), "{fired:?}");
    assert_eq!(eval(&mut e, 8_000, &q(8_000, 10.0))[0].0, "resolved");
}

#[test]
fn absent_counts_from_the_last_new_value_while_running() {
    let mut e = engine("[[alert]]\nname = \"quiet\"\nvalue = \"queue_depth\"\nabsent = \"5s\"");
    let q = |ts: i64| {
        let mut a = running();
        a.custom.insert("queue_depth".into(), (ts, 1.0));
        a
    };
    assert!(eval(&mut e, 0, &q(0)).is_empty());
    assert!(eval(&mut e, 4_000, &q(0)).is_empty());
    let fired = eval(&mut e, 5_000, &q(0));
    assert_eq!(fired, [("fired", "quiet: no new queue_depth for 5s (absent 5s)".to_owned())]);
    // The same value sampled again is new.
    assert_eq!(eval(&mut e, 6_000, &q(6_000))[0].0, "resolved");
    // A stopped agent reports nothing and is not absent; its next run starts the count.
    assert!(eval(&mut e, 20_000, &AgentValues::default()).is_empty());
    assert!(eval(&mut e, 21_000, &running()).is_empty());
    assert_eq!(eval(&mut e, 26_000, &running()).len(), 1, "a run that never reports fires");
}

#[test]
fn agents_filter_removal_and_reload() {
    let mut e = engine("[[alert]]\nname = \"spend\"\nagents = [\"b\"]\nvalue = \"cost\"\nabove = 1.0");
    assert!(eval(&mut e, 0, &cost(5.0)).is_empty(), "a is not watched");
    let mut out = Vec::new();
    let b = cost(5.0);
    e.evaluate(0, [("b", &b)].into_iter(), &mut out);
    assert!(matches!(&out[..], [Change::Fired(a)] if a.agent == "b"));
    out.clear();
    // "b" is gone while other agents remain.
    let a = cost(0.0);
    e.evaluate(1_000, [("a", &a)].into_iter(), &mut out);
    assert!(matches!(&out[..], [Change::Resolved(a)] if a.message == "spend: the agent is gone"));
    assert!(e.firing().is_empty());
    out.clear();
    e.evaluate(2_000, [("b", &b)].into_iter(), &mut out);
    assert_eq!(out.len(), 1);
    out.clear();
    e.set_rules(Vec::new().into(), 3_000, &mut out);
    assert!(matches!(&out[..], [Change::Resolved(_)]));
    assert!(e.is_empty() && e.firing().is_empty());
}

//! contrib/grafana/agentvisor-fleet.json has the shape Grafana's import needs: the fields an
//! exported dashboard carries, panels Grafana draws on its 24-column grid without overlap, and
//! every query bound to a datasource and to variables the dashboard defines. No Grafana runs here
//! (none is packaged for this machine); the queries themselves are run against a real Prometheus
//! by `exporter::a_real_prometheus_scrapes_the_exporter`.

use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Panel types Grafana ships (no plugin to install).
const CORE_PANELS: &[&str] = &[
    "alertlist",
    "annolist",
    "barchart",
    "bargauge",
    "candlestick",
    "canvas",
    "dashlist",
    "flamegraph",
    "gauge",
    "geomap",
    "heatmap",
    "histogram",
    "logs",
    "news",
    "nodeGraph",
    "piechart",
    "row",
    "stat",
    "state-timeline",
    "status-history",
    "table",
    "text",
    "timeseries",
    "traces",
    "trend",
    "xychart",
];
/// Panel types that draw no query.
const NO_QUERY_PANELS: &[&str] = &["row", "text", "dashlist", "news", "annolist", "alertlist"];
/// Variables Grafana itself defines.
const BUILTIN_VARIABLES: &[&str] = &[
    "__interval",
    "__interval_ms",
    "__rate_interval",
    "__range",
    "__range_s",
    "__range_ms",
    "__dashboard",
    "__from",
    "__to",
    "__org",
    "__user",
];

pub fn dashboard() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("contrib/grafana/agentvisor-fleet.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every panel, those inside rows included.
fn all_panels(dash: &Value) -> Vec<&Value> {
    fn walk<'a>(items: &'a Value, out: &mut Vec<&'a Value>) {
        for p in items.as_array().into_iter().flatten() {
            out.push(p);
            walk(&p["panels"], out);
        }
    }
    let mut out = Vec::new();
    walk(&dash["panels"], &mut out);
    out
}

/// The PromQL expressions of all panels' visible targets, as check.py runs them.
pub fn queries(dash: &Value) -> Vec<String> {
    all_panels(dash)
        .iter()
        .flat_map(|p| p["targets"].as_array().into_iter().flatten())
        .filter(|t| t["hide"] != json!(true))
        .filter_map(|t| t["expr"].as_str().filter(|e| !e.is_empty()).map(str::to_owned))
        .collect()
}

/// The names of `$name`, `${name}`, `${name:format}` and `[[name]]` in `text`.
fn variables_in(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find(['$', '[']) {
        let after = &rest[i + 1..];
        let (name, skip) = match (&rest[i..i + 1], after.strip_prefix('{'), after.strip_prefix('[')) {
            ("$", Some(inner), _) => {
                let end = inner.find('}').unwrap_or(inner.len());
                (inner[..end].split(':').next().unwrap_or(""), end + 2)
            }
            ("$", None, _) => {
                let end = after.find(|c: char| !(c.is_alphanumeric() || c == '_')).unwrap_or(after.len());
                (&after[..end], end)
            }
            ("[", _, Some(inner)) if inner.contains("]]") => {
                let end = inner.find("]]").unwrap_or(inner.len());
                (inner[..end].split(':').next().unwrap_or(""), end + 3)
            }
            _ => ("", 0),
        };
        if !name.is_empty() && name.chars().all(|c| c.is_alphanumeric() || c == '_') {
            out.push(name.to_owned());
        }
        rest = &rest[i + 1 + skip.min(after.len())..];
    }
    out
}

fn need(problems: &mut Vec<String>, ok: bool, what: String) {
    if !ok {
        problems.push(what);
    }
}

struct Rect {
    id: String,
    x: i64,
    y: i64,
    w: i64,
    h: i64,
}

/// Pairs of panels in `group` that cover the same grid cell.
fn overlaps(group: &[Rect], problems: &mut Vec<String>) {
    for (i, a) in group.iter().enumerate() {
        for b in &group[i + 1..] {
            if a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h {
                problems.push(format!("panels {} and {} overlap", a.id, b.id));
            }
        }
    }
}

/// Everything in `dash` that Grafana's import would refuse or draw wrongly.
fn problems(dash: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    need(&mut problems, dash["title"].as_str().is_some_and(|t| !t.trim().is_empty()), "no title".into());
    let uid = dash["uid"].as_str().unwrap_or("");
    need(
        &mut problems,
        !uid.is_empty()
            && uid.len() <= 40
            && uid.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
        format!("uid {uid:?} is not 1-40 letters, digits, - or _"),
    );
    // Object datasource references ({type, uid}) need schema 36 or later.
    need(
        &mut problems,
        dash["schemaVersion"].as_i64().is_some_and(|v| v >= 36),
        "schemaVersion missing or below 36".into(),
    );
    need(&mut problems, dash["id"].is_null(), "id must be null: Grafana assigns it on import".into());

    // Datasources: `${DS_X}` inputs the import asks for, or datasource variables.
    let inputs: BTreeSet<String> = dash["__inputs"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|i| i["type"] == "datasource" && i["pluginId"] == "prometheus")
        .filter_map(|i| i["name"].as_str().map(str::to_owned))
        .collect();
    let variables = dash["templating"]["list"].as_array().cloned().unwrap_or_default();
    let datasource_vars: BTreeSet<String> = variables
        .iter()
        .filter(|v| v["type"] == "datasource" && v["query"] == "prometheus")
        .filter_map(|v| v["name"].as_str().map(str::to_owned))
        .collect();
    let mut used_inputs = BTreeSet::new();
    let mut check_datasource = |ds: &Value, whose: &str, problems: &mut Vec<String>| {
        let uid = ds["uid"].as_str().unwrap_or("");
        let name = uid.strip_prefix("${").and_then(|u| u.strip_suffix('}')).unwrap_or("");
        if ds["type"] != "prometheus" {
            problems.push(format!("{whose}: datasource type {} is not prometheus", ds["type"]));
        } else if inputs.contains(name) {
            used_inputs.insert(name.to_owned());
        } else if !datasource_vars.contains(name) {
            problems.push(format!("{whose}: datasource {uid:?} is neither an __inputs entry nor a variable"));
        }
    };

    // Variables: unique, bound to a datasource, using only variables defined before them.
    let mut defined: BTreeSet<String> = BUILTIN_VARIABLES.iter().map(|s| s.to_string()).collect();
    defined.extend(inputs.iter().cloned());
    for v in &variables {
        let name = v["name"].as_str().unwrap_or("").to_owned();
        let kind = v["type"].as_str().unwrap_or("");
        if name.is_empty() || !defined.insert(name.clone()) {
            problems.push(format!("variable {name:?} is unnamed or defined twice"));
        }
        if kind == "query" {
            check_datasource(&v["datasource"], &format!("variable {name}"), &mut problems);
            let q = v["query"]["query"].as_str().or(v["query"].as_str()).unwrap_or("");
            for used in variables_in(q) {
                if used == name || !defined.contains(&used) {
                    problems.push(format!("variable {name} uses ${used}, not defined before it"));
                }
            }
            let all = [json!(["$__all"]), json!("$__all")];
            if v["includeAll"] == json!(true) && !all.contains(&v["current"]["value"]) {
                problems.push(format!("variable {name} includes All but does not start on it"));
            }
        }
    }

    // Panels: unique ids, known types, on the grid, no overlap; rows hold their panels only
    // when collapsed (an open row's panels follow it at the top level).
    let mut ids = BTreeSet::new();
    let mut types = BTreeSet::new();
    for p in all_panels(dash) {
        let kind = p["type"].as_str().unwrap_or("");
        let id = p["id"].as_i64();
        let who = format!("panel {} ({:?})", id.map_or("?".into(), |i| i.to_string()), p["title"]);
        if id.is_none_or(|i| !ids.insert(i)) {
            problems.push(format!("{who}: id missing or not unique"));
        }
        if !CORE_PANELS.contains(&kind) {
            problems.push(format!("{who}: type {kind:?} is not a core Grafana panel"));
        }
        types.insert(kind.to_owned());
        let g = &p["gridPos"];
        let (x, y, w, h) = (g["x"].as_i64(), g["y"].as_i64(), g["w"].as_i64(), g["h"].as_i64());
        match (x, y, w, h) {
            (Some(x), Some(y), Some(w), Some(h)) if x >= 0 && y >= 0 && w >= 1 && h >= 1 && x + w <= 24 => {}
            _ => problems.push(format!("{who}: gridPos {g} is not within the 24 columns")),
        }
        if kind == "row"
            && p["collapsed"] != json!(true)
            && p["panels"].as_array().is_some_and(|v| !v.is_empty())
        {
            problems.push(format!("{who}: an open row must not hold panels"));
        }
        if kind != "row" && p["panels"].is_array() {
            problems.push(format!("{who}: only rows hold panels"));
        }
        if NO_QUERY_PANELS.contains(&kind) {
            continue;
        }
        check_datasource(&p["datasource"], &who, &mut problems);
        let targets = p["targets"].as_array().cloned().unwrap_or_default();
        if targets.is_empty() {
            problems.push(format!("{who}: no targets"));
        }
        let mut refs = BTreeSet::new();
        for t in &targets {
            let r = t["refId"].as_str().unwrap_or("");
            if r.is_empty() || !refs.insert(r.to_owned()) {
                problems.push(format!("{who}: refId {r:?} missing or not unique"));
            }
            check_datasource(&t["datasource"], &format!("{who} {r}"), &mut problems);
            let expr = t["expr"].as_str().unwrap_or("");
            if expr.trim().is_empty() {
                problems.push(format!("{who} {r}: no expr"));
            }
            for used in variables_in(expr) {
                if !defined.contains(&used) {
                    problems.push(format!("{who} {r}: ${used} is not a variable of the dashboard"));
                }
            }
        }
    }
    let unused: Vec<_> = inputs.difference(&used_inputs).collect();
    need(&mut problems, unused.is_empty(), format!("__inputs never used: {unused:?}"));

    // The grid: top-level panels together, each collapsed row's panels among themselves.
    let rect = |p: &Value| Rect {
        id: p["id"].to_string(),
        x: p["gridPos"]["x"].as_i64().unwrap_or(0),
        y: p["gridPos"]["y"].as_i64().unwrap_or(0),
        w: p["gridPos"]["w"].as_i64().unwrap_or(0),
        h: p["gridPos"]["h"].as_i64().unwrap_or(0),
    };
    let top: Vec<&Value> = dash["panels"].as_array().into_iter().flatten().collect();
    overlaps(&top.iter().map(|p| rect(p)).collect::<Vec<_>>(), &mut problems);
    for row in top.iter().filter(|p| p["type"] == "row") {
        let inner: Vec<Rect> = row["panels"].as_array().into_iter().flatten().map(rect).collect();
        overlaps(&inner, &mut problems);
    }

    // __requires lists Grafana, the datasource plugin and exactly the panel types used, as an
    // exported dashboard does (the import page shows them).
    let requires: BTreeMap<(String, String), &Value> = dash["__requires"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| ((r["type"].as_str().unwrap_or("").into(), r["id"].as_str().unwrap_or("").into()), r))
        .collect();
    for (kind, id) in [("grafana", "grafana"), ("datasource", "prometheus")] {
        need(
            &mut problems,
            requires.contains_key(&(kind.into(), id.into())),
            format!("__requires lacks {kind} {id}"),
        );
    }
    let required_panels: BTreeSet<String> =
        requires.keys().filter(|(k, _)| k == "panel").map(|(_, id)| id.clone()).collect();
    types.remove("row");
    need(
        &mut problems,
        required_panels == types,
        format!("__requires lists panels {required_panels:?}, the dashboard uses {types:?}"),
    );
    problems
}

#[test]
fn the_dashboard_has_the_shape_grafana_imports() {
    let dash = dashboard();
    let found = problems(&dash);
    assert!(found.is_empty(), "contrib/grafana/agentvisor-fleet.json:\n{}", found.join("\n"));
    assert!(all_panels(&dash).len() > 20 && queries(&dash).len() > 20, "the dashboard lost its panels");
}

/// Each kind of damage is caught, so the check above can fail.
#[test]
fn damaged_dashboards_are_refused() {
    type Damage = fn(&mut Value);
    let cases: [(&str, Damage, &str); 12] = [
        ("no uid", |d| d["uid"] = json!(""), "uid"),
        ("old schema", |d| d["schemaVersion"] = json!(27), "schemaVersion"),
        ("twin ids", |d| d["panels"][2]["id"] = d["panels"][1]["id"].clone(), "not unique"),
        ("plugin panel", |d| d["panels"][1]["type"] = json!("grafana-clock-panel"), "not a core"),
        ("off the grid", |d| d["panels"][1]["gridPos"]["x"] = json!(22), "within the 24 columns"),
        ("overlap", |d| d["panels"][2]["gridPos"]["x"] = json!(2), "overlap"),
        ("twin refIds", |d| d["panels"][7]["targets"][1]["refId"] = json!("A"), "refId \"A\""),
        ("unknown datasource", |d| d["panels"][1]["datasource"]["uid"] = json!("${DS_X}"), "neither"),
        ("unknown variable", |d| d["panels"][1]["targets"][0]["expr"] = json!("up{x=~\"$nope\"}"), "$nope"),
        ("missing requires", |d| d["__requires"] = json!([]), "__requires lacks grafana"),
        ("open row with panels", |d| d["panels"][0]["panels"] = json!([{"type": "text"}]), "open row"),
        (
            "overlap in a collapsed row",
            |d| {
                collapse_first_row(d);
                d["panels"][0]["panels"][1]["gridPos"]["x"] = json!(2);
            },
            "overlap",
        ),
    ];
    for (what, damage, expected) in cases {
        let mut dash = dashboard();
        damage(&mut dash);
        let found = problems(&dash);
        assert!(found.iter().any(|p| p.contains(expected)), "{what}: no {expected:?} in {found:?}");
    }
}

/// Collapses the first row the way Grafana saves it: the panels up to the next row move inside.
fn collapse_first_row(dash: &mut Value) {
    let top = dash["panels"].as_array_mut().unwrap();
    let next_row = top.iter().skip(1).position(|p| p["type"] == "row").unwrap() + 1;
    let inner: Vec<Value> = top.drain(1..next_row).collect();
    top[0]["collapsed"] = json!(true);
    top[0]["panels"] = Value::Array(inner);
}

#[test]
fn a_collapsed_row_passes_the_check() {
    let mut dash = dashboard();
    collapse_first_row(&mut dash);
    assert!(dash["panels"][0]["panels"].as_array().unwrap().len() > 1);
    assert_eq!(problems(&dash), Vec::<String>::new());
}

#[test]
fn variables_are_found_in_every_form_grafana_knows() {
    let found = variables_in("a{x=~\"$host\", y=\"${agent:regex}\"}[$__rate_interval] [[job]] $ 5 [1m]");
    assert_eq!(found, ["host", "agent", "__rate_interval", "job"]);
}

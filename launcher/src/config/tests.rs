use super::model::Backoff;
use super::values::Dur;
use super::*;
use proptest::prelude::*;
use std::time::Duration;

fn fixtures(kind: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/config").join(kind);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    assert!(!files.is_empty(), "no fixtures in {}", dir.display());
    files
}

/// The `# expect: ...` first line of an invalid fixture.
pub fn expected(text: &str) -> &str {
    text.lines().next().and_then(|l| l.strip_prefix("# expect: ")).unwrap()
}

#[test]
fn valid_fixtures_parse() {
    for f in fixtures("valid") {
        if let Err(e) = load(&f) {
            panic!("{}: {e}", f.display());
        }
    }
}

#[test]
fn invalid_fixtures_give_located_errors() {
    let mut wrong = Vec::new();
    for f in fixtures("invalid") {
        let text = std::fs::read_to_string(&f).unwrap();
        let err = load(&f).unwrap_err().to_string();
        let want = format!("{}{}", f.display(), expected(&text));
        if !err.starts_with(want.trim_end()) {
            wrong.push(format!("  got  {err}\n  want {want}"));
        }
    }
    assert!(wrong.is_empty(), "\n{}", wrong.join("\n"));
}

#[test]
fn plan_follows_dependencies_then_file_order() {
    let f = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/config/valid/order.toml");
    let c = load(&f).unwrap();
    let names: Vec<&str> = c.plan.iter().map(|&i| c.agents[i].name.as_str()).collect();
    assert_eq!(names, ["a", "b", "c", "d"]);
}

#[test]
fn defaults_and_full() {
    let f = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/config/valid/full.toml");
    let c = load(&f).unwrap();
    assert_eq!(c.launcher.sample_interval, Dur(Duration::from_millis(500)));
    let names: Vec<&str> = c.plan.iter().map(|&i| c.agents[i].name.as_str()).collect();
    assert_eq!(names, ["store", "researcher"]);
    let store = &c.agents[0];
    assert_eq!((store.restart, store.max_restarts, store.ready), (Restart::OnFailure, 5, Ready::Notify));
    assert_eq!(store.backoff, Backoff::default());
    assert_eq!(store.heartbeat_timeout, None);
    // The registry copy of the config keeps environment names, never values.
    let json = serde_json::to_string(&c.agents[1]).unwrap();
    assert!(json.contains("\"env\":[\"API_KEY\",\"LOG_LEVEL\"]") && !json.contains("secret"), "{json}");
    assert_eq!(c.working_dir(store), f.parent().unwrap());
}

#[test]
fn missing_file_is_an_error() {
    let err = load(Path::new("/nonexistent/agents.toml")).unwrap_err().to_string();
    assert!(err.starts_with("/nonexistent/agents.toml: cannot read the config file"), "{err}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]
    #[test]
    fn parser_never_panics(text in "(\\[\\[agent\\]\\]\n|\\[launcher\\]\n|[a-z_]{1,12} = (\"[a-z0-9 ]{0,8}\"|[0-9]{1,3}|\\[\"[a-z]{1,3}\"\\]|\\{ [a-z]{1,8} = \"[0-9]{1,3}(ms|s)\" \\})\n|[ -~]{0,20}\n){0,12}") {
        match parse(Path::new("p.toml"), &text) {
            Ok(c) => prop_assert!(c.plan.len() <= c.agents.len()),
            Err(e) => prop_assert!(e.to_string().starts_with("p.toml")),
        }
    }
}

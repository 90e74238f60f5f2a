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

/// Checks the parser's promise for any input: a valid config, or an error that names the file
/// and, when it has a line, a line inside the text.
fn located_or_valid(text: &str) -> Result<(), TestCaseError> {
    match parse(Path::new("p.toml"), text) {
        Ok(c) => {
            prop_assert!(c.plan.len() <= c.agents.len());
            prop_assert!(c.plan.iter().all(|&i| c.agents[i].enabled));
        }
        Err(e) => {
            prop_assert!(e.to_string().starts_with("p.toml"), "{e}");
            if let Some(loc) = &e.location {
                prop_assert!(loc.line <= text.lines().count() + 1, "{e} (line beyond the text)");
            }
        }
    }
    Ok(())
}

const FULL: &str = include_str!("../../../tests/fixtures/config/valid/full.toml");

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn parser_never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..2000)) {
        located_or_valid(&String::from_utf8_lossy(&bytes))?;
    }

    #[test]
    fn parser_never_panics_on_arbitrary_text(text in "\\PC{0,400}") {
        located_or_valid(&text)?;
    }

    /// A real config with a few bytes replaced, inserted or cut: near-valid input reaches
    /// deep into validation (names, durations, dependencies, retention).
    #[test]
    fn parser_never_panics_on_a_mutated_config(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), 0u8..3, "[ -~\n]{0,6}"), 1..6),
    ) {
        let mut text = FULL.to_owned();
        for (at, op, piece) in edits {
            let mut i = at.index(text.len() + 1);
            while !text.is_char_boundary(i) {
                i -= 1;
            }
            match op {
                0 => text.insert_str(i, &piece),
                1 => {
                    let mut end = (i + piece.len().max(1)).min(text.len());
                    while !text.is_char_boundary(end) {
                        end -= 1;
                    }
                    text.replace_range(i..end, "");
                }
                _ => text.truncate(i),
            }
        }
        located_or_valid(&text)?;
    }

    #[test]
    fn parser_never_panics_on_launcher_and_nested_tables(text in "(\\[launcher\\]\n|\\[launcher\\.retention\\]\n|\\[\\[agent\\]\\]\n|\\[agent\\.backoff\\]\n|(name|command|raw|minute|hour|events|events_max|logs|group|log_lines|depends_on|enabled|backoff|retention) = (\"[a-z0-9 ]{0,6}(ms|s|m|h|d)?\"|-?[0-9]{1,12}|true|\\[\"[a-z]{1,3}\"\\]|\\{ [a-z]{1,8} = \"[0-9]{1,3}(ms|s|m)\" \\})\n){0,16}") {
        located_or_valid(&text)?;
    }
}

#[test]
fn retention_settings_are_read_and_checked() {
    let c = parse(
        Path::new("r.toml"),
        "[launcher]\ngroup = true\nretention = { raw = \"10m\", minute = \"2h\", hour = \"3d\", events = \"1d\", events_max = 50, logs = \"1h\" }\n",
    )
    .unwrap();
    assert!(c.launcher.group);
    let r = c.launcher.retention.to_store();
    assert_eq!((r.raw, r.hour), (Duration::from_secs(600), Duration::from_secs(3 * 86_400)));
    assert_eq!((r.events_max_rows, r.logs_max_age), (50, Duration::from_secs(3600)));
    let err = parse(Path::new("r.toml"), "[launcher]\nretention = { raw = \"1h\", minute = \"30m\" }\n")
        .unwrap_err()
        .to_string();
    assert_eq!(err, "r.toml:2:13: field `launcher.retention.minute`: must not be shorter than raw (1h)");
    let err =
        parse(Path::new("r.toml"), "[launcher]\nretention = { raw = \"1m\" }\n").unwrap_err().to_string();
    assert!(err.contains("`launcher.retention.raw`: must be at least 5m"), "{err}");
    let err = parse(Path::new("r.toml"), "[launcher]\nretention = { rows = 5 }\n").unwrap_err().to_string();
    assert!(err.starts_with("r.toml:2:15:") && err.contains("unknown field `rows`"), "{err}");
}

/// Every duration and count has a largest value: one beyond it is a located error naming the
/// limit, the limit itself is accepted.
#[test]
fn every_duration_and_count_is_bounded() {
    let agent = |line: &str| format!("[[agent]]\nname = \"a\"\ncommand = \"x\"\n{line}\n");
    let launcher = |line: &str| format!("[launcher]\n{line}\n");
    let cases: Vec<(String, String, &str, &str)> = [
        ("heartbeat_timeout", "\"365d\"", "\"366d\"", "365d"),
        ("ready_timeout", "\"365d\"", "\"500000000000y\"", "365d"),
        ("stop_timeout", "\"365d\"", "\"500000000000y\"", "365d"),
        ("restart_window", "\"365d\"", "\"366d\"", "365d"),
        ("max_restarts", "1000000", "1000001", "1000000"),
    ]
    .into_iter()
    .map(|(k, ok, bad, max)| (agent(&format!("{k} = {ok}")), agent(&format!("{k} = {bad}")), k, max))
    .chain(["initial", "max", "reset_after"].into_iter().map(|k| {
        let (ok, bad) = if k == "initial" {
            ("backoff = { initial = \"365d\", max = \"365d\" }".to_owned(), format!("backoff = {{ {k} = \"400d\" }}"))
        } else {
            (format!("backoff = {{ {k} = \"365d\" }}"), format!("backoff = {{ {k} = \"500000000000y\" }}"))
        };
        let field = match k {
            "initial" => "backoff.initial",
            "max" => "backoff.max",
            _ => "backoff.reset_after",
        };
        (agent(&ok), agent(&bad), field, "365d")
    }))
    .chain(
        [
            ("sample_interval", "\"1h\"", "\"2h\"", "1h"),
            ("log_lines", "1000000000", "9223372036854775807", "1000000000"),
            ("log_line_bytes", "1048576", "1048577", "1048576"),
            ("log_rate", "1000000", "1000001", "1000000"),
        ]
        .into_iter()
        .map(|(k, ok, bad, max)| {
            (launcher(&format!("{k} = {ok}")), launcher(&format!("{k} = {bad}")), k, max)
        }),
    )
    .chain(["raw", "minute", "hour", "events", "logs"].into_iter().map(|k| {
        let ok = "retention = { raw = \"3650d\", minute = \"3650d\", hour = \"3650d\", events = \"3650d\", logs = \"3650d\" }";
        let bad = ok.replace(&format!("{k} = \"3650d\""), &format!("{k} = \"3651d\""));
        (launcher(ok), launcher(&bad), k, "3650d")
    }))
    .chain(std::iter::once((
        launcher("retention = { events_max = 1000000000 }"),
        launcher("retention = { events_max = 1000000001 }"),
        "events_max",
        "1000000000",
    )))
    .collect();
    for (ok, bad, field, max) in cases {
        if let Err(e) = parse(Path::new("b.toml"), &ok) {
            panic!("{ok}: {e}");
        }
        let err = parse(Path::new("b.toml"), &bad).unwrap_err().to_string();
        let want = format!("{field}`: must be at most {max}");
        assert!(err.starts_with("b.toml:") && err.contains(&want), "{bad}\n got {err}\nwant {want}");
    }
}

#[test]
fn only_regular_files_of_at_most_16_mib_are_read() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo.toml");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let err = read(&fifo).unwrap_err().to_string();
    assert!(err.ends_with("cannot read the config file: it is a FIFO, not a regular file"), "{err}");
    let err = read(Path::new("/dev/zero")).unwrap_err().to_string();
    assert!(err.contains("it is a character device, not a regular file"), "{err}");
    let err = read(dir.path()).unwrap_err().to_string();
    assert!(err.contains("it is a directory"), "{err}");
    let big = dir.path().join("big.toml");
    std::fs::File::create(&big).unwrap().set_len(MAX_FILE_BYTES + 1).unwrap();
    let err = read(&big).unwrap_err().to_string();
    assert!(err.contains("larger than 16 MiB (16777217 bytes)"), "{err}");
    std::fs::File::create(&big).unwrap().set_len(MAX_FILE_BYTES).unwrap();
    assert_eq!(read(&big).unwrap().len() as u64, MAX_FILE_BYTES);
}

#[test]
fn enabled_agents_must_be_runnable() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.toml");
    let check = |body: &str| parse_runnable(&path, &format!("[[agent]]\nname = \"a\"\n{body}\n"));
    check("command = \"sh\"").unwrap();
    let err = check("command = \"no-such-program-here\"").unwrap_err().to_string();
    assert!(
        err.contains(":3:11: agent \"a\", field `command`: no executable \"no-such-program-here\""),
        "{err}"
    );
    let err = check("command = \"sh\"\nenv = { PATH = \"/nonexistent\" }").unwrap_err().to_string();
    assert!(err.contains("in any directory of PATH (/nonexistent)"), "{err}");
    std::fs::write(dir.path().join("plain"), "#!/bin/sh\n").unwrap();
    let err = check("command = \"./plain\"").unwrap_err().to_string();
    assert!(err.contains(&format!("program {}/./plain is not executable", dir.path().display())), "{err}");
    let err = check("command = \"/tmp\"").unwrap_err().to_string();
    assert!(err.contains("program /tmp is a directory"), "{err}");
    let err = check("command = \"sh\"\nworking_dir = \"gone\"").unwrap_err().to_string();
    let want = format!(
        ":4:15: agent \"a\", field `working_dir`: working directory {}/gone does not exist",
        dir.path().display()
    );
    assert!(err.contains(&want), "{err}");
    // A disabled agent is checked when it is enabled, not before.
    check("command = \"no-such-program-here\"\nenabled = false").unwrap();
}

fn probe_error(agent: &str) -> String {
    let text = format!("[[agent]]\nname = \"a\"\ncommand = \"true\"\n{agent}\n");
    crate::config::parse(std::path::Path::new("agents.toml"), &text).unwrap_err().to_string()
}

#[test]
fn probe_errors_name_the_line_and_key() {
    assert_eq!(
        probe_error("liveness = { http = \"https://127.0.0.1/\" }"),
        "agents.toml:4:21: agent \"a\", field `liveness.http`: \"https://127.0.0.1/\": https is not supported, probes speak plain HTTP; probe the local http port, or use an exec probe such as exec = [\"curl\", \"-fsS\", \"https://127.0.0.1/\"]"
    );
    assert!(probe_error("readiness = { tcp = \"h:1\", period = \"soon\" }").starts_with("agents.toml:4:37:"));
    assert!(
        probe_error("readiness = { tcp = \"h:1\", period = \"10ms\" }")
            .ends_with("`readiness.period`: must be at least 100ms")
    );
    assert!(probe_error("liveness = { tcp = \"h:1\", failure_threshold = 0 }").contains("must be 1 to 1000"));
    assert!(
        probe_error("liveness = { tcp = \"h:1\", success_threshold = 2 }")
            .contains("must be 1 for a liveness probe")
    );
    assert!(
        probe_error("liveness = { tcp = \"h:1\", expect = \"ok\" }")
            .contains("`liveness.expect`: applies to http probes only")
    );
    assert!(probe_error("liveness = { tcp = \"h:1\", retries = 3 }").contains("unknown field `retries`"));
    assert!(
        probe_error("ready_log_line = \"listening (on\"")
            .starts_with("agents.toml:4:18: agent \"a\", field `ready_log_line`: invalid regular expression")
    );
    assert!(
        probe_error("ready = \"notify\"\nreadiness = { tcp = \"h:1\" }")
            .contains("ready = \"notify\" and readiness are alternative ways")
    );
}

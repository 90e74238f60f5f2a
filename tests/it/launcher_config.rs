//! The config as a user meets it: `check`, located errors and exit code 2, flag placement.

use crate::common::*;
use std::path::{Path, PathBuf};

fn fixtures(kind: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/config").join(kind);
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    files
}

#[test]
fn bad_configs_give_a_located_error_and_exit_code_2() {
    let sb = Sandbox::new();
    let invalid = fixtures("invalid");
    assert!(invalid.len() >= 10);
    for f in invalid {
        let text = std::fs::read_to_string(&f).unwrap();
        let expect = text.lines().next().and_then(|l| l.strip_prefix("# expect: ")).unwrap();
        // Both `check` and `run` refuse, and `run` starts nothing: no database appears.
        for sub in ["check", "run"] {
            let out = sb
                .command(launcher_bin())
                .arg(sub)
                .arg("--config")
                .arg(&f)
                .arg("--db")
                .arg(sb.db())
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{} {sub}: {stderr}", f.display());
            let want = format!("error: {}{}", f.display(), expect.trim_end());
            assert!(stderr.starts_with(&want), "{sub}\n got: {stderr}\nwant: {want}");
            assert!(!sb.db().exists(), "{sub} created the database for a bad config");
        }
    }
}

#[test]
fn check_prints_the_start_plan() {
    let sb = Sandbox::new();
    let f = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/config/valid/order.toml");
    // Global options after the subcommand, and the config from the environment.
    let out = sb
        .command(launcher_bin())
        .env("AGENTVISOR_CONFIG", &f)
        .arg("check")
        .arg("--db")
        .arg("x.db")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let order: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.trim().split_once(". "))
        .map(|(_, rest)| rest.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(order, ["a", "b", "c", "d"], "{stdout}");
    assert!(
        stdout.contains("from $AGENTVISOR_CONFIG") && stdout.contains("x.db (from the command line)"),
        "{stdout}"
    );
    assert!(!sb.path().join("x.db").exists());
}

#[test]
fn the_shipped_config_is_valid() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = std::process::Command::new(launcher_bin())
        .current_dir(root)
        .args(["--config", "agents.toml", "check"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for f in fixtures("valid") {
        let out =
            std::process::Command::new(launcher_bin()).arg("check").arg("--config").arg(&f).output().unwrap();
        assert!(out.status.success(), "{}: {}", f.display(), String::from_utf8_lossy(&out.stderr));
    }
}

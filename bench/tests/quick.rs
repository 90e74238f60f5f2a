//! Keeps the harness working: runs every benchmark at tiny sizes through the real binary and
//! checks that the report has a section for each. No time is asserted: the machine is shared.

use std::process::Command;

#[test]
fn quick_run_writes_a_report() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let out = dir.path().join("BENCHMARKS.quick.md");
    let status = Command::new(env!("CARGO_BIN_EXE_agentvisor-bench"))
        .args(["all", "--quick", "--out"])
        .arg(&out)
        .arg("--work-dir")
        .arg(dir.path().join("work"))
        .status()?;
    assert!(status.success(), "agentvisor-bench all --quick failed: {status}");
    let report = std::fs::read_to_string(&out)?;
    for section in [
        "1. Ingest",
        "2. Scale",
        "3. Restart latency",
        "4. Dashboard frame",
        "5. Non-interference",
        "6. Peer: supervisord",
        "7. Disk",
        "8. Exporter",
        "9. Probes",
        "10. Alert rules",
        "11. Scheduled agents",
    ] {
        assert!(report.contains(&format!("## {section}")), "no {section} section in:\n{report}");
        assert!(!report.contains(&format!("## {section}\n\nSkipped: failed")), "{section} failed:\n{report}");
    }
    Ok(())
}

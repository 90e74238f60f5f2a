//! Black-box tests of the real `agentvisor-launcher` and `agentvisor-dashboard` binaries:
//! real SQLite files, real child processes, real signals. One test binary, as ripgrep does,
//! with shared helpers in `common`.

// Helpers may unwrap: a failed set-up step is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod alerts;
mod cli;
mod common;
mod ctl_commands;
mod dashboard_commands;
mod dashboard_fixture;
mod dashboard_launcher;
mod dashboard_navigation;
mod dashboard_readonly;
mod dashboard_tui;
mod exporter;
mod faults_crash_loop;
mod faults_disk_full;
mod faults_notify_garbage;
mod faults_sigkill;
mod fleet;
mod grafana;
mod hooks;
mod launcher_config;
mod launcher_lifecycle;
mod launcher_output;
mod launcher_protocol;
mod launcher_restart;
mod launcher_systemd;
mod limits;
mod probes;
mod reload_config;
mod schedule;
mod tasks;
mod trust_config;
mod trust_containment;
mod trust_files;
mod trust_stalls;
mod trust_store;
mod trust_supervision;

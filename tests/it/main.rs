//! Black-box tests of the real `agentvisor-launcher` and `agentvisor-dashboard` binaries:
//! real SQLite files, real child processes, real signals. One test binary, as ripgrep does,
//! with shared helpers in `common`.

mod common;

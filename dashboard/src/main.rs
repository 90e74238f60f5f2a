//! `agentvisor-dashboard`: see the library's documentation.

fn main() -> std::process::ExitCode {
    agentvisor_dashboard::main()
}

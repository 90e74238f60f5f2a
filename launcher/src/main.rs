fn main() -> std::process::ExitCode {
    agentvisor_launcher::main()
}

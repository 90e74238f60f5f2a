fn main() {
    println!("agentvisor-dashboard {}", env!("CARGO_PKG_VERSION"));
}

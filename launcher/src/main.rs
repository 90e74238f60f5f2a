fn main() {
    println!("agentvisor-launcher {}", env!("CARGO_PKG_VERSION"));
}

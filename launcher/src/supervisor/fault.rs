//! Fault injection for the black-box tests, compiled into debug builds only. No input is known
//! to make a supervisor panic; this stands in for the bug that one day will, so that the tests
//! can check what the launcher promises then (the agent `fatal`, a `critical` event, its
//! processes killed, `ctl restart` working). Release builds contain none of it.
//!
//! `AGENTVISOR_FAULT_PANIC_ON_READY=<agent>`: the supervisor of that agent panics when the agent
//! first reports READY=1, once per launcher process.

use std::sync::atomic::{AtomicBool, Ordering};

pub const PANIC_ON_READY: &str = "AGENTVISOR_FAULT_PANIC_ON_READY";

pub fn panic_on_ready(agent: &str) {
    static INJECTED: AtomicBool = AtomicBool::new(false);
    if std::env::var_os(PANIC_ON_READY).is_some_and(|a| a == agent) && !INJECTED.swap(true, Ordering::Relaxed)
    {
        panic!("fault injected by {PANIC_ON_READY}={agent}");
    }
}

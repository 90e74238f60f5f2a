//! The agents as a whole: the fleet of supervisors, operator commands, config reloads and the
//! config file watcher that triggers them.

pub mod fleet;
pub mod operator;
pub mod reload;
pub mod watch;

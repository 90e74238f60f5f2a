//! The fleet view's parts below the UI loop: which hosts and how to reach them ([`config`]),
//! one thread per host reading its `stream --json` ([`link`]), and the screen's state
//! ([`state`]). The loop itself is `fleet_app.rs`, beside `app.rs`, so that imports keep
//! running one way. docs/fleet.md tells the user's side.

pub mod config;
pub mod link;
pub mod state;

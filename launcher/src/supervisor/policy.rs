//! When to restart: exponential backoff that forgets after a stable run, and a crash-loop
//! limit of `max_restarts` within `restart_window`, after which the agent is `fatal`.

use crate::config::AgentConfig;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Restart after this delay.
    Restart(Duration),
    /// Too many restarts within the window: give up.
    Fatal { restarts: usize, window: Duration },
}

#[derive(Debug, Default)]
pub struct Tracker {
    /// Times of the restarts still inside the window.
    recent: VecDeque<Instant>,
    /// Failures since the last run that lasted `reset_after`.
    consecutive: u32,
}

impl Tracker {
    /// Decides what follows a run that lasted `ran_for` and ended at `now` and should be
    /// restarted by the agent's restart policy.
    pub fn next(&mut self, cfg: &AgentConfig, now: Instant, ran_for: Duration) -> Decision {
        if ran_for >= cfg.backoff.reset_after.get() {
            self.consecutive = 0;
        }
        let window = cfg.restart_window.get();
        while self.recent.front().is_some_and(|t| now.duration_since(*t) >= window) {
            self.recent.pop_front();
        }
        if self.recent.len() >= cfg.max_restarts as usize {
            return Decision::Fatal { restarts: self.recent.len(), window };
        }
        self.recent.push_back(now);
        let exponent = i32::try_from(self.consecutive).unwrap_or(i32::MAX);
        self.consecutive = self.consecutive.saturating_add(1);
        let b = &cfg.backoff;
        let secs = b.initial.get().as_secs_f64() * b.multiplier.powi(exponent);
        let max = b.max.get();
        Decision::Restart(match Duration::try_from_secs_f64(secs) {
            Ok(d) if d < max => d,
            _ => max,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> AgentConfig {
        let text = r#"
            [[agent]]
            name = "a"
            command = "true"
            max_restarts = 3
            restart_window = "10s"
            backoff = { initial = "100ms", multiplier = 2.0, max = "350ms", reset_after = "5s" }
        "#;
        crate::config::parse(std::path::Path::new("t.toml"), text).unwrap().agents.remove(0)
    }

    #[test]
    fn grows_caps_resets_and_turns_fatal() {
        let c = cfg();
        let mut t = Tracker::default();
        let t0 = Instant::now();
        let short = Duration::from_millis(10);
        assert_eq!(t.next(&c, t0, short), Decision::Restart(Duration::from_millis(100)));
        assert_eq!(
            t.next(&c, t0 + Duration::from_secs(1), short),
            Decision::Restart(Duration::from_millis(200))
        );
        // A stable run resets the delay, but the window still remembers both restarts.
        let stable = Duration::from_secs(6);
        assert_eq!(
            t.next(&c, t0 + Duration::from_secs(7), stable),
            Decision::Restart(Duration::from_millis(100))
        );
        // The first two restarts have left the window; the delay grows to its cap.
        let later = t0 + Duration::from_secs(11) + short;
        assert_eq!(t.next(&c, later, short), Decision::Restart(Duration::from_millis(200)));
        assert_eq!(t.next(&c, later + short, short), Decision::Restart(Duration::from_millis(350)));
        assert_eq!(
            t.next(&c, later + 2 * short, short),
            Decision::Fatal { restarts: 3, window: Duration::from_secs(10) }
        );
    }

    #[test]
    fn delay_is_capped() {
        let c = cfg();
        let mut t = Tracker::default();
        let t0 = Instant::now();
        let mut last = Duration::ZERO;
        for i in 0..3 {
            if let Decision::Restart(d) = t.next(&c, t0 + Duration::from_secs(i * 20), Duration::ZERO) {
                last = d;
            }
        }
        assert_eq!(last, Duration::from_millis(350));
    }
}

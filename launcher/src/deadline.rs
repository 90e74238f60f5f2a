//! Adding durations to instants without a panic. Timeouts come from the config, which bounds
//! them, but a value too large to add to an instant must mean "not in this launcher's
//! lifetime" wherever it is used, never a panic inside supervision.

use std::time::Duration;
use tokio::time::Instant;

/// Stands for "never" in timers: about a century, longer than any launcher runs and small
/// enough to add to any instant the monotonic clock gives.
pub const NEVER: Duration = Duration::from_secs(100 * 365 * 86_400);

/// `t + d`, with `d` capped at [`NEVER`].
pub fn after(t: Instant, d: Duration) -> Instant {
    // The cap cannot overflow an instant of this clock (seconds since boot in an i64);
    // should it, the deadline is `t` rather than a panic.
    t.checked_add(d.min(NEVER)).unwrap_or(t)
}

/// A timer's period, capped at [`NEVER`] (a periodic timer adds it to its last deadline).
pub fn period(d: Duration) -> Duration {
    d.min(NEVER)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_durations_saturate_instead_of_panicking() {
        let now = Instant::now();
        assert_eq!(after(now, Duration::from_secs(5)), now + Duration::from_secs(5));
        assert_eq!(after(now, Duration::MAX), now + NEVER);
        // humantime's largest: "500000000000y" overflows `Instant + Duration` by itself.
        let huge = humantime::parse_duration("500000000000y").unwrap();
        assert!(now.checked_add(huge).is_none());
        assert_eq!(after(now, huge), now + NEVER);
        assert_eq!(period(huge), NEVER);
    }
}

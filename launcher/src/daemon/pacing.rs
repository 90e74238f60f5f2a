//! Pacing the launcher's runtime thread: [`Coalescing`] batches the events that stream in while
//! it is busy.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How long the launcher's thread pauses, while events stream in, before it waits for more: at
/// most a hundred wake-ups a second however many agents talk, and at most this much added to
/// the time it takes to notice anything (an exit, a message, a `ctl` request) while busy.
const COALESCE: Duration = Duration::from_millis(10);

/// Interrupt moderation for the runtime thread. While its waits for events are short on
/// average (a moving average over about the last eight: a thousand agents' heartbeats arriving
/// one by one), it pauses for [`COALESCE`] before each wait, so that what arrives meanwhile is
/// handled as one batch per wake-up instead of one each. After quiet, long waits it reacts at
/// once: a lone event (an agent's exit and its restart, a `ctl` request) takes a few short
/// waits, which do not bring the average down.
pub struct Coalescing {
    started: Instant,
    /// When the current wait began, in nanoseconds since `started`.
    wait_began: AtomicU64,
    /// The moving average of how long waits lasted, in nanoseconds.
    average_wait: AtomicU64,
}

impl Default for Coalescing {
    fn default() -> Self {
        Coalescing {
            started: Instant::now(),
            wait_began: AtomicU64::new(0),
            // Busy until shown otherwise: starting the agents is the busiest time.
            average_wait: AtomicU64::new(0),
        }
    }
}

impl Coalescing {
    fn now(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    pub fn before_wait(&self) {
        if u128::from(self.average_wait.load(Ordering::Relaxed)) < COALESCE.as_nanos() {
            std::thread::sleep(COALESCE);
        }
        self.wait_began.store(self.now(), Ordering::Relaxed);
    }

    pub fn after_wait(&self) {
        let waited = self.now().saturating_sub(self.wait_began.load(Ordering::Relaxed));
        let average = self.average_wait.load(Ordering::Relaxed);
        self.average_wait.store(average - average / 8 + waited / 8, Ordering::Relaxed);
    }
}

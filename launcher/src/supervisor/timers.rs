//! The supervisor loop's timers: one for each kind of [`Timer`] the machine arms, and its flush
//! timer, all kept across the loop's turns.

use super::machine::Timer;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::time::{Instant, Sleep, sleep_until};

/// A timer that lives across the loop's turns: a select! that made timers anew would put them
/// into tokio's timer wheel and take them out again for every message.
#[derive(Default)]
pub(super) struct Slot {
    sleep: Option<Pin<Box<Sleep>>>,
    pub(super) armed: bool,
}

impl Slot {
    pub(super) fn arm(&mut self, at: Instant) {
        match &mut self.sleep {
            Some(sleep) => sleep.as_mut().reset(at),
            None => self.sleep = Some(Box::pin(sleep_until(at))),
        }
        self.armed = true;
    }

    /// Dropping the timer takes it out of the wheel: a disarmed timer wakes nobody.
    pub(super) fn disarm(&mut self) {
        self.armed = false;
        self.sleep = None;
    }

    fn poll_fired(&mut self, cx: &mut Context<'_>) -> bool {
        let fired = self.armed && self.sleep.as_mut().is_some_and(|s| s.as_mut().poll(cx).is_ready());
        if fired {
            self.armed = false;
        }
        fired
    }

    pub(super) fn fired(&mut self) -> impl Future<Output = ()> + '_ {
        std::future::poll_fn(|cx| if self.poll_fired(cx) { Poll::Ready(()) } else { Poll::Pending })
    }
}

/// The machine's timers, one of each kind.
#[derive(Default)]
pub(super) struct Timers {
    slots: [Slot; Timer::ALL.len()],
}

impl Timers {
    pub(super) fn slot(&mut self, timer: Timer) -> &mut Slot {
        &mut self.slots[timer as usize]
    }

    pub(super) fn fired(&mut self) -> impl Future<Output = Timer> + '_ {
        std::future::poll_fn(|cx| {
            for timer in Timer::ALL {
                if self.slot(timer).poll_fired(cx) {
                    return Poll::Ready(timer);
                }
            }
            Poll::Pending
        })
    }
}

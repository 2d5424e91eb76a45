//! Time for the sequencer.
//!
//! `embedded-hal` 1.0 has delays but no clock, so the sequencer asks for a
//! [`Clock`]: an [`embedded_hal::delay::DelayNs`] that also tells the time.
//! Waiting for a deadline (rather than sleeping fixed amounts) keeps the beat
//! from drifting however long generation takes.

use embedded_hal::delay::DelayNs;

/// A monotonic microsecond clock that can wait.
pub trait Clock: DelayNs {
    /// Microseconds since start.
    fn now_us(&mut self) -> u64;

    /// A free-running cycle count for profiling (0 where the board has none).
    fn cycles(&mut self) -> u64 {
        0
    }

    /// Wait until `deadline` (microseconds since start); return at once if it passed.
    fn wait_until_us(&mut self, deadline: u64) {
        let now = self.now_us();
        if deadline > now {
            let mut left = deadline - now;
            while left > 0 {
                let step = left.min(u64::from(u32::MAX));
                self.delay_us(step as u32);
                left -= step;
            }
        }
    }
}

/// A clock that only pretends to wait: time advances by the delays asked
/// for. The host reference and tests use it; the byte stream does not
/// depend on real time.
#[derive(Clone, Copy, Debug, Default)]
pub struct VirtualClock {
    now_ns: u64,
}

impl DelayNs for VirtualClock {
    fn delay_ns(&mut self, ns: u32) {
        self.now_ns += u64::from(ns);
    }
}

impl Clock for VirtualClock {
    fn now_us(&mut self) -> u64 {
        self.now_ns / 1000
    }
}

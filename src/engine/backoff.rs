//! Exponential backoff with jitter and a cap, for every retry loop. The bounds are
//! validated when it is built, and the source of randomness is injectable so that
//! tests can pin the jitter.

use std::fmt;
use std::time::Duration;

/// A source of random 64-bit values for jitter.
pub trait Random: Send + Sync {
    /// The next value.
    fn next_u64(&mut self) -> u64;
}

/// xorshift64: cheap, good enough for spreading retries; seeded from the clock by
/// default.
#[derive(Debug, Clone)]
pub struct XorShift(u64);

impl XorShift {
    /// A generator from `seed` (zero is replaced, xorshift cannot leave it).
    pub fn new(seed: u64) -> XorShift {
        XorShift(if seed == 0 {
            0x9E37_79B9_7F4A_7C15
        } else {
            seed
        })
    }

    /// A generator seeded from the wall clock's nanoseconds.
    pub fn from_time() -> XorShift {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        XorShift::new(seed)
    }
}

impl Random for XorShift {
    fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Bounds a backoff cannot work with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InvalidBackoff {
    /// A zero first delay would retry at once.
    #[error("the shortest backoff delay must be above zero")]
    ZeroMin,
    /// The cap is below the first delay.
    #[error("the longest backoff delay ({max:?}) is below the shortest ({min:?})")]
    MaxBelowMin {
        /// The first delay.
        min: Duration,
        /// The cap.
        max: Duration,
    },
}

/// Doubling delays from `min` up to `max`, each with ±25% jitter, never above `max`.
pub struct Backoff {
    min: Duration,
    max: Duration,
    attempt: u32,
    random: Box<dyn Random>,
}

impl fmt::Debug for Backoff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Backoff")
            .field("min", &self.min)
            .field("max", &self.max)
            .field("attempt", &self.attempt)
            .finish()
    }
}

impl Backoff {
    /// A backoff between `min` and `max`, jittered from the clock-seeded generator.
    pub fn new(min: Duration, max: Duration) -> Result<Backoff, InvalidBackoff> {
        Backoff::with_random(min, max, Box::new(XorShift::from_time()))
    }

    /// A backoff between `min` and `max` whose jitter comes from `random`.
    pub fn with_random(
        min: Duration,
        max: Duration,
        random: Box<dyn Random>,
    ) -> Result<Backoff, InvalidBackoff> {
        if min.is_zero() {
            return Err(InvalidBackoff::ZeroMin);
        }
        if max < min {
            return Err(InvalidBackoff::MaxBelowMin { min, max });
        }
        Ok(Backoff {
            min,
            max,
            attempt: 0,
            random,
        })
    }

    /// Back to the shortest delay (after a success).
    pub fn reset(&mut self) {
        self.attempt = 0;
    }

    /// Delays handed out since the last reset.
    pub fn attempts(&self) -> u32 {
        self.attempt
    }

    /// The next delay.
    pub fn next_delay(&mut self) -> Duration {
        let delay = self.delay_for(self.attempt);
        self.attempt = self.attempt.saturating_add(1);
        delay
    }

    /// The delay for retry number `attempt` (from 0) of something that counts its own
    /// attempts, jittered; leaves this backoff's own count alone.
    pub fn delay_for(&mut self, attempt: u32) -> Duration {
        let base = self
            .min
            .saturating_mul(1u32 << attempt.min(20))
            .min(self.max);
        let spread = (self.random.next_u64() % 501) as f64 / 1000.0 - 0.25;
        base.mul_f64(1.0 + spread).min(self.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Always the same value: jitter pinned to one point of its range.
    struct Fixed(u64);
    impl Random for Fixed {
        fn next_u64(&mut self) -> u64 {
            self.0
        }
    }

    #[test]
    fn grows_is_jittered_and_capped() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(2)).unwrap();
        let delays: Vec<Duration> = (0..12).map(|_| b.next_delay()).collect();
        assert!(delays[0] >= Duration::from_millis(75) && delays[0] <= Duration::from_millis(125));
        assert!(delays.iter().all(|d| *d <= Duration::from_secs(2)));
        assert!(delays[11] >= Duration::from_millis(1500));
        assert_eq!(b.attempts(), 12);
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(125));
    }

    #[test]
    fn jitter_comes_from_the_injected_source() {
        let ms = Duration::from_millis;
        // 0 -> -25%, 250 -> 0%, 500 -> +25%.
        let mut low = Backoff::with_random(ms(100), ms(1000), Box::new(Fixed(0))).unwrap();
        assert_eq!(
            [low.next_delay(), low.next_delay(), low.next_delay()],
            [ms(75), ms(150), ms(300)]
        );
        let mut mid = Backoff::with_random(ms(100), ms(1000), Box::new(Fixed(250))).unwrap();
        assert_eq!(
            (0..5).map(|_| mid.next_delay()).collect::<Vec<_>>(),
            [ms(100), ms(200), ms(400), ms(800), ms(1000)]
        );
        let mut high = Backoff::with_random(ms(100), ms(1000), Box::new(Fixed(500))).unwrap();
        assert_eq!(high.next_delay(), ms(125));
    }

    #[test]
    fn refuses_unusable_bounds() {
        let ms = Duration::from_millis;
        assert_eq!(
            Backoff::new(Duration::ZERO, ms(10)).unwrap_err(),
            InvalidBackoff::ZeroMin
        );
        assert!(matches!(
            Backoff::new(ms(10), ms(5)).unwrap_err(),
            InvalidBackoff::MaxBelowMin { .. }
        ));
    }
}

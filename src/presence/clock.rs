//! The wall clock presence is computed against, injected so that time-based logic
//! (meeting edges, staleness) runs on tokio's paused clock in tests.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

/// Where "now" comes from.
#[derive(Debug, Clone, Copy)]
pub enum Clock {
    /// The system's wall clock.
    System,
    /// `origin` plus the time tokio's clock has advanced since `at`: follows a paused
    /// tokio clock exactly.
    Tokio {
        /// The wall time at `at`.
        origin: Timestamp,
        /// The tokio instant `origin` corresponds to.
        at: tokio::time::Instant,
    },
}

impl Clock {
    /// A clock that reads `origin` now and then advances with tokio's clock.
    pub fn following_tokio(origin: Timestamp) -> Clock {
        Clock::Tokio {
            origin,
            at: tokio::time::Instant::now(),
        }
    }

    pub fn now(&self) -> Timestamp {
        match self {
            Clock::System => Timestamp::now(),
            Clock::Tokio { origin, at } => {
                let elapsed = SignedDuration::try_from(at.elapsed()).unwrap_or(SignedDuration::MAX);
                origin.saturating_add(elapsed).unwrap_or(*origin)
            }
        }
    }

    /// Now, in whole seconds since the epoch.
    pub fn now_secs(&self) -> i64 {
        self.now().as_second()
    }

    /// How long until `at` (seconds since the epoch), zero if it has passed.
    pub fn until_secs(&self, at: i64) -> Duration {
        let now = self.now();
        match Timestamp::from_second(at) {
            Ok(due) if due > now => now.duration_until(due).unsigned_abs(),
            Ok(_) => Duration::ZERO,
            Err(_) => Duration::MAX,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn follows_a_paused_tokio_clock() {
        let origin = Timestamp::from_second(1_000_000).unwrap();
        let clock = Clock::following_tokio(origin);
        assert_eq!(clock.now_secs(), 1_000_000);
        tokio::time::advance(Duration::from_secs(90)).await;
        assert_eq!(clock.now_secs(), 1_000_090);
        assert_eq!(clock.until_secs(1_000_100), Duration::from_secs(10));
        assert_eq!(clock.until_secs(1_000_000), Duration::ZERO);
    }
}

//! What a test can make the Graph side do wrong, each for a count of occasions:
//! answer 429 with `Retry-After`, refuse the application's token, drop or delay
//! notifications.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::Serialize;

/// The active Graph faults.
#[derive(Debug, Default)]
pub struct GraphFaults {
    throttle: AtomicU64,
    retry_after_s: AtomicU64,
    refuse_token: AtomicU64,
    drop_notifications: AtomicU64,
    missed_after_drop: std::sync::atomic::AtomicBool,
    delay_notifications_ms: AtomicU64,
}

/// What is active, as `GET /sim/graph/faults` shows it.
#[derive(Debug, Serialize)]
pub struct Active {
    /// Requests still to answer 429.
    pub throttle: u64,
    /// Their `Retry-After`.
    pub retry_after_s: u64,
    /// Token requests still to refuse.
    pub refuse_token: u64,
    /// Notifications still to drop.
    pub drop_notifications: u64,
    /// Delay before each notification.
    pub delay_notifications_ms: u64,
}

fn take(counter: &AtomicU64) -> bool {
    counter
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
        .is_ok()
}

impl GraphFaults {
    /// The next `count` requests answer 429 asking `retry_after_s`.
    pub fn throttle(&self, count: u64, retry_after_s: u64) {
        self.retry_after_s.store(retry_after_s, Ordering::Release);
        self.throttle.store(count, Ordering::Release);
    }

    /// `Retry-After` of a request to throttle now, if one is.
    pub fn take_throttle(&self) -> Option<u64> {
        take(&self.throttle).then(|| self.retry_after_s.load(Ordering::Acquire))
    }

    /// The next `count` token requests are refused (invalid_client).
    pub fn refuse_tokens(&self, count: u64) {
        self.refuse_token.store(count, Ordering::Release);
    }

    /// Whether to refuse this token request.
    pub fn take_token_refusal(&self) -> bool {
        take(&self.refuse_token)
    }

    /// The next `count` change notifications are not delivered (lifecycle events
    /// are); with `then_missed`, each dropped one is followed by a `missed` lifecycle
    /// event for its subscription (as Graph tells of notifications it could not
    /// deliver).
    pub fn drop_notifications(&self, count: u64, then_missed: bool) {
        self.missed_after_drop.store(then_missed, Ordering::Release);
        self.drop_notifications.store(count, Ordering::Release);
    }

    /// Whether a dropped notification is followed by `missed`.
    pub fn missed_after_drop(&self) -> bool {
        self.missed_after_drop.load(Ordering::Acquire)
    }

    /// Whether to drop this notification.
    pub fn take_drop(&self) -> bool {
        take(&self.drop_notifications)
    }

    /// Every notification waits this long before it is sent.
    pub fn delay_notifications(&self, delay: Duration) {
        self.delay_notifications_ms
            .store(delay.as_millis() as u64, Ordering::Release);
    }

    /// The delay before a notification.
    pub fn notification_delay(&self) -> Option<Duration> {
        let ms = self.delay_notifications_ms.load(Ordering::Acquire);
        (ms > 0).then(|| Duration::from_millis(ms))
    }

    /// Clears them all.
    pub fn clear(&self) {
        for counter in [
            &self.throttle,
            &self.refuse_token,
            &self.drop_notifications,
            &self.delay_notifications_ms,
        ] {
            counter.store(0, Ordering::Release);
        }
    }

    /// What is active.
    pub fn active(&self) -> Active {
        Active {
            throttle: self.throttle.load(Ordering::Acquire),
            retry_after_s: self.retry_after_s.load(Ordering::Acquire),
            refuse_token: self.refuse_token.load(Ordering::Acquire),
            drop_notifications: self.drop_notifications.load(Ordering::Acquire),
            delay_notifications_ms: self.delay_notifications_ms.load(Ordering::Acquire),
        }
    }
}

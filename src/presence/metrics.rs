//! Presence's metrics, on the `metrics` facade: mailboxes by availability and the
//! transitions published.

use std::sync::OnceLock;

use metrics::{counter, describe_counter, describe_gauge, gauge};

use super::timeline::Availability;

/// Mailboxes by availability.
pub const MAILBOXES: &str = "ews_presence_mailboxes";
/// Availability transitions by target.
pub const TRANSITIONS: &str = "ews_presence_transitions_total";

/// Every metric the presence store records.
pub const NAMES: &[&str] = &[MAILBOXES, TRANSITIONS];

/// Describes presence's metrics to the installed recorder.
pub fn describe() {
    describe_gauge!(MAILBOXES, "Configured mailboxes by current availability.");
    describe_counter!(
        TRANSITIONS,
        "Availability transitions published, by target availability."
    );
}

/// A published transition to `to`. The four counters are resolved once: a storm
/// publishes one transition per mailbox at the same instant.
pub fn transition(to: Availability) {
    static COUNTERS: OnceLock<[metrics::Counter; 4]> = OnceLock::new();
    let counters = COUNTERS
        .get_or_init(|| Availability::ALL.map(|a| counter!(TRANSITIONS, "to" => a.as_str())));
    let index = Availability::ALL.iter().position(|a| *a == to).unwrap_or(0);
    counters[index].increment(1);
}

/// Sets the per-availability mailbox gauges.
pub fn mailbox_counts(counts: &[(Availability, usize)]) {
    for (availability, n) in counts {
        gauge!(MAILBOXES, "availability" => availability.as_str()).set(*n as f64);
    }
}

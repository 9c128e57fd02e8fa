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

/// Published transitions, by target. The four counters are resolved once, and each
/// is incremented once per call: a storm publishes a million transitions at once.
pub fn transitions(to: impl IntoIterator<Item = Availability>) {
    static COUNTERS: OnceLock<[metrics::Counter; 4]> = OnceLock::new();
    let counters = COUNTERS
        .get_or_init(|| Availability::ALL.map(|a| counter!(TRANSITIONS, "to" => a.as_str())));
    let mut counts = [0u64; 4];
    for to in to {
        let index = Availability::ALL.iter().position(|a| *a == to).unwrap_or(0);
        counts[index] += 1;
    }
    for (counter, n) in counters.iter().zip(counts) {
        if n > 0 {
            counter.increment(n);
        }
    }
}

/// Sets the per-availability mailbox gauges.
pub fn mailbox_counts(counts: &[(Availability, usize)]) {
    for (availability, n) in counts {
        gauge!(MAILBOXES, "availability" => availability.as_str()).set(*n as f64);
    }
}

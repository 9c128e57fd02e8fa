//! [`Snapshot`]: one mailbox's presence at an instant, owned, as the cache hands it out
//! and the feed carries it.

use std::sync::Arc;

use jiff::Timestamp;

use super::timeline::Reading;
use common::mailbox::Mailbox;

/// Presence of one mailbox at an instant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub mailbox: Mailbox,
    /// Its gateway.
    pub gateway: Arc<str>,
    pub reading: Reading,
    /// When its calendar was last fetched.
    pub synced_at: Option<Timestamp>,
    /// The data is served without a working subscription or after a failed refresh
    /// (it is still right for time-based edges; changes made meanwhile are not in it).
    pub stale: bool,
    /// Why it cannot be served as live, when something is wrong.
    pub problem: Option<Arc<str>>,
    /// The user lets their calendar be shown (false: opted out, read unknown, so that
    /// the presence server falls back to the user's own state).
    pub calendar_presence: bool,
    /// On the change feed: the availability it changed from (None on a read).
    pub previous: Option<super::timeline::Availability>,
}

#[cfg(test)]
impl Snapshot {
    /// A never-synced snapshot of `address` on `gateway` reading `availability`, with
    /// nothing else known (tests).
    pub(crate) fn bare(
        address: &str,
        gateway: &str,
        availability: super::timeline::Availability,
    ) -> Snapshot {
        Snapshot {
            mailbox: Mailbox::parse(address).expect("a test address"),
            gateway: gateway.into(),
            reading: Reading {
                availability,
                calendar: None,
                out_of_office: false,
                since: None,
                until: None,
            },
            synced_at: None,
            stale: false,
            problem: None,
            calendar_presence: true,
            previous: None,
        }
    }
}

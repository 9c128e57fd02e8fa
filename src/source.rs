//! What the daemon asks of a source of calendar presence, whatever protocol it speaks:
//! serve a set of mailboxes (each on one of the configured gateways), take one in or
//! out as users opt out and back in, and report each gateway's health. A source is
//! started with its mailboxes and stopped by the daemon's cancellation token; what it
//! reads reaches the presence core only as [`crate::presence::updates::Update`]s.
//!
//! The EWS engine ([`crate::engine::Engine`]) is today's source; Microsoft Graph for
//! Exchange Online comes next behind the same trait.

use std::fmt::Debug;

use common::mailbox::Mailbox;

use crate::engine::status::StatusHandle;

/// What a reload of the mailbox list changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReloadSummary {
    /// Mailboxes added.
    pub added: usize,
    /// Mailboxes removed.
    pub removed: usize,
    /// Mailboxes configured after the reload.
    pub total: usize,
}

/// A source of calendar presence.
pub trait Source: Debug + Send + Sync {
    /// Serves exactly `wanted` (mailbox, index of its gateway): removed mailboxes are
    /// dropped, added ones subscribed and read, the others left alone.
    fn apply_mailboxes(&self, wanted: &[(Mailbox, usize)]) -> ReloadSummary;

    /// Serves `mailbox` on gateway `gateway` (a user opted back in).
    fn serve(&self, mailbox: &Mailbox, gateway: usize);

    /// Stops serving `mailbox` on gateway `gateway`, keeping it configured (a user
    /// opted out): nothing of it is read again.
    fn stop_serving(&self, mailbox: &Mailbox, gateway: usize);

    /// Each gateway's health, read by the API and readiness.
    fn status(&self) -> StatusHandle;
}

//! What the daemon asks of a source of calendar presence, whatever protocol it speaks:
//! serve a set of mailboxes (each on one of the configured gateways), take one in or
//! out as users opt out and back in, and report each gateway's health. A source is
//! started with its mailboxes and stopped by the daemon's cancellation token; what it
//! reads reaches the presence core only as [`crate::presence::updates::Update`]s.
//!
//! Two sources implement it: the EWS engine ([`crate::engine::Engine`]) and Microsoft
//! Graph for Exchange Online ([`crate::graph::GraphSource`]); [`Split`] gives each
//! gateway's mailboxes to the source of its kind, so the daemon sees one source.

use std::fmt::Debug;

use common::mailbox::Mailbox;

use std::sync::Arc;

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

/// The EWS gateways' mailboxes to one source, the Graph gateways' to another.
#[derive(Debug)]
pub struct Split {
    /// Serves the `ews` gateways.
    pub ews: Arc<dyn Source>,
    /// Serves the `graph` gateways.
    pub graph: Arc<dyn Source>,
    /// Which gateways (by index) are Graph's.
    pub graph_gateways: Vec<bool>,
}

impl Split {
    fn of(&self, gateway: usize) -> &Arc<dyn Source> {
        if self.graph_gateways.get(gateway).copied().unwrap_or(false) {
            &self.graph
        } else {
            &self.ews
        }
    }
}

impl Source for Split {
    fn apply_mailboxes(&self, wanted: &[(Mailbox, usize)]) -> ReloadSummary {
        let (graph, ews): (Vec<_>, Vec<_>) = wanted
            .iter()
            .cloned()
            .partition(|(_, g)| self.graph_gateways.get(*g).copied().unwrap_or(false));
        let a = self.ews.apply_mailboxes(&ews);
        let b = self.graph.apply_mailboxes(&graph);
        ReloadSummary {
            added: a.added + b.added,
            removed: a.removed + b.removed,
            total: a.total + b.total,
        }
    }

    fn serve(&self, mailbox: &Mailbox, gateway: usize) {
        self.of(gateway).serve(mailbox, gateway);
    }

    fn stop_serving(&self, mailbox: &Mailbox, gateway: usize) {
        self.of(gateway).stop_serving(mailbox, gateway);
    }

    fn status(&self) -> StatusHandle {
        self.ews.status().merge(self.graph.status())
    }
}

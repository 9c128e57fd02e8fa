//! What the refresh side asks of a server, whatever protocol it speaks: read a batch
//! of calendars, a batch of automatic replies, one mailbox's automatic replies, and
//! (EWS only) how automatic replies are best read. Each read is sent once and comes
//! back as what the [state machine](super::state) is told. The EWS gateway
//! ([`crate::engine::gateway::Gateway`], through [`super::reads`]) and a Graph gateway
//! ([`crate::graph`]) both implement it, so that debounce, batching, slots and retries
//! are one policy for both.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::state::{CalendarAnswer, OofAnswer, ProbeAnswer, Queued, TipsAnswer};
use crate::engine::Shared;
use crate::presence::clock::Clock;
use common::mailbox::Mailbox;

/// A read in flight.
pub type Pending<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// A server the refresh side reads from.
pub trait ReadPort: Send + Sync + 'static {
    /// The gateway's name (logs, metrics).
    fn gateway_name(&self) -> &str;

    /// Reads the calendars of `batch` over `[now - 1 h, now + horizon]`.
    fn calendar(
        self: Arc<Self>,
        clock: Clock,
        horizon: Duration,
        batch: Vec<Queued>,
    ) -> Pending<CalendarAnswer>;

    /// Reads the automatic replies of `mailboxes` in one request (judged against what
    /// `shared` knew of them).
    fn tips(
        self: Arc<Self>,
        clock: Clock,
        shared: Arc<Shared>,
        mailboxes: Vec<Mailbox>,
    ) -> Pending<TipsAnswer>;

    /// Reads one mailbox's automatic replies.
    fn oof(self: Arc<Self>, clock: Clock, mailbox: Mailbox) -> Pending<OofAnswer>;

    /// Asks how automatic replies are best read, as `anchor`.
    fn probe(
        self: Arc<Self>,
        clock: Clock,
        anchor: Option<Mailbox>,
        stop: CancellationToken,
    ) -> Pending<ProbeAnswer>;
}

//! Keeps one gateway's timelines and automatic replies fresh: notifications mark
//! mailboxes dirty, and their calendars are read, debounced and batched, with
//! GetUserAvailability over `[now - 1 h, now + horizon]`; automatic replies are read at
//! start, after a resubscription and in paced sweeps (GetMailTips in batches where the
//! server serves it, else GetUserOofSettings); every mailbox is read again as the
//! horizon rolls. Nothing is dropped: a read that fails stays queued and is retried
//! after a backoff, its mailboxes marked with the problem meanwhile. This is the one
//! retry layer of reads: each request is sent once.
//!
//! - [`state`]: the whole policy as a pure state machine, `on(now, input) -> outputs`,
//!   table-tested on a paused clock (`state_tests.rs`); its module doc lists the rules.
//! - [`driver`]: the thin async loop that runs it: sends the reads it asks for, feeds
//!   back their outcomes, hands updates to the presence core, logs and counts.
//! - [`port`]: what the refresh side asks of a server, so that EWS and Graph share
//!   this policy; [`reads`]: EWS's requests, each sent once, and what their answers
//!   mean.
//! - [`tips`]: what a GetMailTips tip says about a mailbox.
//! - [`dirty`], [`due`], [`quiet`], [`pacer`]: what the state is made of: the calendar
//!   reads owed, mailboxes ordered by when they fall due, the quiet period after a read,
//!   a paced sweep.
//!
//! [`RefreshQueue`] is the handle the gateway's groups and the engine hold: one lock
//! around the state machine, and a wake for the driver.

mod dirty;
pub mod driver;
mod due;
mod pacer;
pub mod port;
mod quiet;
mod reads;
pub mod state;
pub mod tips;

#[cfg(test)]
mod state_tests;

use std::sync::Mutex;

use tokio::sync::Notify;
use tokio::time::Instant;

use crate::engine::backoff::Backoff;
use crate::presence::clock::Clock;
use common::mailbox::Mailbox;
use common::sync::lock;
use state::{AutoReplySource, Input, Output, RETRY_MAX, RETRY_MIN, RefreshState, Settings};

/// One gateway's refresh side, shared by its groups (which mark mailboxes), the engine
/// (which adds and removes them) and the driver (which sends the reads).
#[derive(Debug)]
pub struct RefreshQueue {
    state: Mutex<RefreshState>,
    wake: Notify,
    /// Stamps when each read was sent.
    clock: Clock,
}

impl RefreshQueue {
    /// Nothing queued yet; reads are stamped with `clock`.
    pub fn new(clock: Clock, settings: Settings) -> RefreshQueue {
        // Constant bounds that satisfy the checks.
        let backoff = Backoff::new(RETRY_MIN, RETRY_MAX).unwrap_or_else(|e| unreachable!("{e}"));
        RefreshQueue {
            state: Mutex::new(RefreshState::new(settings, backoff)),
            wake: Notify::new(),
            clock,
        }
    }

    /// Queues `input`, which the next dispatch acts on; a read owed wakes the driver
    /// (membership alone does not: nothing is sent to a server before something is to
    /// be read, so refused credentials cost no extra login at start).
    fn queue(&self, input: Input) {
        let wake = matches!(input, Input::Changed(_) | Input::Full(_));
        let outputs = lock(&self.state).on(Instant::now(), input);
        debug_assert!(outputs.is_empty(), "queueing inputs send nothing");
        if wake {
            self.wake.notify_one();
        }
    }

    /// A notification arrived for `mailbox`: read it now if it is quiet, else once at
    /// the end of its quiet period.
    pub fn mark(&self, mailbox: &Mailbox) {
        self.queue(Input::Changed(mailbox.clone()));
    }

    /// Refresh `mailbox` fully: calendar and automatic replies (start, resubscribe).
    pub fn mark_full(&self, mailbox: &Mailbox) {
        self.queue(Input::Full(mailbox.clone()));
    }

    /// Adds one of the gateway's mailboxes.
    pub fn add_member(&self, mailbox: &Mailbox) {
        self.queue(Input::Join(mailbox.clone()));
    }

    /// Forgets a mailbox.
    pub fn remove_member(&self, mailbox: &Mailbox) {
        self.queue(Input::Leave(mailbox.clone()));
    }

    /// Whether a calendar refresh of `mailbox` is queued.
    pub fn is_queued(&self, mailbox: &Mailbox) -> bool {
        lock(&self.state).is_queued(mailbox)
    }

    /// What the server calls each read.
    pub fn names(&self) -> state::ReadNames {
        lock(&self.state).names()
    }

    /// How the gateway reads automatic replies now.
    pub fn auto_reply_source(&self) -> AutoReplySource {
        lock(&self.state).source().clone()
    }

    /// Empties the queue.
    #[cfg(test)]
    pub(crate) fn clear_for_test(&self) {
        lock(&self.state).clear();
    }

    /// Feeds `input` to the state machine at `now` (the driver's side).
    fn step(&self, now: Instant, input: Input) -> Vec<Output> {
        lock(&self.state).on(now, input)
    }
}

//! The one way a source tells the presence core what it learned of a mailbox. A
//! source (the EWS engine today; Microsoft Graph for Exchange Online next) reads
//! calendars its own way and hands over an [`Update`]: a timeline, an automatic-reply
//! window, a problem, or the state of its subscription, each stamped with when it was
//! read. [`Updates`] stores it and re-evaluates the mailbox, so a transition reaches
//! the change feed; a source never touches the cache's entries or the scheduler.

use std::sync::Arc;

use common::mailbox::Mailbox;
use jiff::Timestamp;

use super::cache::Cache;
use super::clock::Clock;
use super::schedule::Scheduler;
use super::timeline::{AutoReply, Timeline};

/// What a source learned of one mailbox.
#[derive(Debug, Clone)]
pub enum Update {
    /// The calendar, read by a request sent at `read_at`. An answer older than what
    /// is stored is dropped (answers can arrive out of order); it ends staleness when
    /// the mailbox held its subscription when the request was sent.
    Timeline {
        /// Busy intervals over the window read.
        timeline: Timeline,
        /// When the request was sent.
        read_at: Timestamp,
    },
    /// The automatic-reply state, read by a request sent at `read_at`.
    AutoReply {
        /// Off, on, or on inside a window.
        auto_reply: AutoReply,
        /// When the request was sent.
        read_at: Timestamp,
    },
    /// Why the mailbox cannot be served as live (its data is stale from now), or
    /// `None` when that reason is gone (staleness ends only with a fresh read).
    Problem(Option<Arc<str>>),
    /// The source holds a subscription for the mailbox (again) from now: changes will
    /// be told.
    Subscribed,
    /// The subscription is lost: the data is stale until subscribed and read again.
    SubscriptionLost,
}

/// The presence core as sources see it.
#[derive(Debug, Clone)]
pub struct Updates {
    cache: Arc<Cache>,
    scheduler: Arc<Scheduler>,
}

impl Updates {
    /// Updates stored in `cache`, with edges scheduled on `scheduler`.
    pub fn new(cache: Arc<Cache>, scheduler: Arc<Scheduler>) -> Updates {
        Updates { cache, scheduler }
    }

    /// Stores `update` for `mailbox` and publishes any transition it makes. A mailbox
    /// that is not tracked, or whose user opted out, keeps nothing.
    pub fn apply(&self, mailbox: &Mailbox, update: Update) {
        match update {
            Update::Timeline { timeline, read_at } => {
                self.cache.set_timeline(mailbox, timeline, read_at)
            }
            Update::AutoReply {
                auto_reply,
                read_at,
            } => self.cache.set_auto_reply(mailbox, auto_reply, read_at),
            // Clearing a reason changes no availability (staleness ends with a read).
            Update::Problem(None) => return self.cache.set_problem(mailbox, None),
            Update::Problem(problem) => self.cache.set_problem(mailbox, problem),
            Update::SubscriptionLost => self.cache.subscription_lost(mailbox),
            // Holding a subscription changes no availability: nothing to re-evaluate.
            Update::Subscribed => return self.cache.subscribed(mailbox),
        }
        self.scheduler.refresh(&self.cache, mailbox);
    }

    /// Starts tracking `mailbox`, served by the source named `source` (a gateway): it
    /// reads unknown until its first update.
    pub fn track(&self, mailbox: Mailbox, source: Arc<str>) {
        self.cache.insert(mailbox, source);
    }

    /// Stops tracking `mailbox`: it is no longer configured.
    pub fn forget(&self, mailbox: &Mailbox) {
        self.cache.remove(mailbox);
    }

    /// Whether `mailbox` is tracked.
    pub fn is_tracked(&self, mailbox: &Mailbox) -> bool {
        self.cache.contains(mailbox)
    }

    /// The automatic-reply state stored for `mailbox`, to tell a real change from a
    /// confirmation.
    pub fn auto_reply(&self, mailbox: &Mailbox) -> Option<AutoReply> {
        self.cache.auto_reply(mailbox)
    }

    /// The clock the presence core runs on.
    pub fn clock(&self) -> Clock {
        self.cache.clock()
    }
}

//! What one SIP presence server holds of ours and what it should hold, as a pure state
//! machine (RFC 3903): the driver tells it what each user's calendar says
//! ([`Publications::want`]), what the server answered ([`Publications::answer`]) and the
//! time ([`Publications::poll`]); it says which PUBLISH requests to send. No I/O, no
//! clock of its own.
//!
//! The rules:
//! 1. Per presentity only the latest state matters: one slot, one place in the queue.
//!    A change while a request is in flight waits for its answer, then replaces
//!    whatever was wanted before it (so requests for one presentity never overlap and
//!    each carries the SIP-ETag of the last 200).
//! 2. What to send follows from wanted and held: nothing held and something wanted is
//!    an initial PUBLISH with a body; something else held is a modify (`SIP-If-Match`,
//!    body); the same held and its refresh due is a refresh (`SIP-If-Match`, no body);
//!    nothing wanted and something held is a removal (`Expires: 0`).
//! 3. At most `window` requests are in flight: start-up and storms are paced by the
//!    server's answers, never a burst.
//! 4. A 200 sets the ETag and the lifetime the server granted (its `Expires`); the
//!    refresh goes out before it lapses: at 70–90% of the lifetime after a refresh, at
//!    20–90% after an initial publication or a modify, so that publications made
//!    together (start-up, the top of the hour) are not refreshed together.
//! 5. 412 (the server does not know the ETag) publishes afresh; 423 raises the lifetime
//!    to the server's `Min-Expires`.
//! 6. Timeouts, transport failures, 5xx and refused credentials pause the whole server:
//!    for `Retry-After` when it says so, else a backoff step with jitter; requests wait,
//!    the one that failed goes first when the pause ends. Any success resets the backoff.
//! 7. Another refusal (403, 404, 489, …) concerns that presentity: it is not asked again
//!    for [`REFUSED_RETRY`] unless what it should show changes.
//! 8. Stopping wants nothing for everyone: every publication held is removed.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::time::Duration;

use common::mailbox::Mailbox;
use tokio::time::Instant;

use crate::engine::backoff::{Backoff, Random, XorShift};

pub use sip::pidf::Activity;

/// How long a presentity the server refused waits before it is tried again.
pub const REFUSED_RETRY: Duration = Duration::from_secs(300);

/// What a presentity should show: the activity and, when known, when it ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Want {
    /// Meeting, away, or none (available, published only when asked to).
    pub activity: Activity,
    /// When the state ends, seconds since the epoch.
    pub until: Option<i64>,
}

/// The kind of a PUBLISH (RFC 3903 §4.1, Table 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// No ETag, a body.
    Initial,
    /// `SIP-If-Match`, a body.
    Modify,
    /// `SIP-If-Match`, no body.
    Refresh,
    /// `SIP-If-Match`, `Expires: 0`.
    Remove,
}

impl Kind {
    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Initial => "initial",
            Kind::Modify => "modify",
            Kind::Refresh => "refresh",
            Kind::Remove => "remove",
        }
    }
}

/// A PUBLISH to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publish {
    /// Whose.
    pub mailbox: Mailbox,
    /// Which kind.
    pub kind: Kind,
    /// `SIP-If-Match`, for all but an initial one.
    pub etag: Option<String>,
    /// The body's state, for initial and modify.
    pub want: Option<Want>,
    /// `Expires`.
    pub expires: u32,
}

/// What became of a PUBLISH.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// 2xx, with the SIP-ETag and the lifetime granted.
    Accepted {
        /// The new entity tag.
        etag: String,
        /// Seconds granted (the 200's `Expires`).
        expires: u32,
    },
    /// 412 Conditional Request Failed: the server does not know our ETag.
    UnknownEtag,
    /// 423 Interval Too Brief, with `Min-Expires`.
    TooBrief {
        /// The server's minimum.
        min: u32,
    },
    /// Try again later: the server, the network or the credentials failed.
    Retry {
        /// `Retry-After`, when the server said.
        after: Option<Duration>,
        /// What went wrong.
        error: String,
    },
    /// The server refused this presentity.
    Refused {
        /// What it said.
        error: String,
    },
}

impl Outcome {
    /// The metric label.
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Accepted { .. } => "ok",
            Outcome::UnknownEtag => "unknown_etag",
            Outcome::TooBrief { .. } => "too_brief",
            Outcome::Retry { .. } => "retry",
            Outcome::Refused { .. } => "refused",
        }
    }
}

#[derive(Debug, Default)]
struct Entry {
    want: Option<Want>,
    /// The ETag and what the server holds under it.
    held: Option<(String, Want)>,
    /// What is in flight.
    sending: Option<(Kind, Option<Want>)>,
    queued: bool,
    refresh_at: Option<Instant>,
    refresh_due: bool,
    refused_until: Option<Instant>,
}

impl Entry {
    fn is_idle(&self) -> bool {
        self.want.is_none() && self.held.is_none() && self.sending.is_none()
    }
}

/// How much a server holds and owes, for status and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counts {
    /// Publications the server holds.
    pub held: usize,
    /// Requests in flight.
    pub in_flight: usize,
    /// Presentities waiting for their turn.
    pub queued: usize,
}

/// One server's publications.
#[derive(Debug)]
pub struct Publications {
    /// Keyed with foldhash: keys are configured addresses, and a storm inserts a
    /// hundred thousand at once.
    entries: HashMap<Mailbox, Entry, foldhash::fast::RandomState>,
    ready: VecDeque<Mailbox>,
    timers: BinaryHeap<Reverse<(Instant, Mailbox)>>,
    window: usize,
    in_flight: usize,
    held: usize,
    expires: u32,
    paused_until: Option<Instant>,
    backoff: Backoff,
    random: XorShift,
    last_error: Option<String>,
    stopping: bool,
}

impl Publications {
    /// No publications; at most `window` in flight, each asking for `expires` seconds;
    /// pauses after failures follow `backoff`.
    pub fn new(window: usize, expires: u32, backoff: Backoff, seed: u64) -> Publications {
        Publications {
            entries: HashMap::default(),
            ready: VecDeque::new(),
            timers: BinaryHeap::new(),
            window: window.max(1),
            in_flight: 0,
            held: 0,
            expires,
            paused_until: None,
            backoff,
            random: XorShift::new(seed),
            last_error: None,
            stopping: false,
        }
    }

    /// What `mailbox` should show now (`None`: no publication). One hash lookup: a
    /// storm hands over a hundred thousand at once.
    pub fn want(&mut self, mailbox: &Mailbox, want: Option<Want>) {
        let want = if self.stopping { None } else { want };
        let Some(entry) = self.entries.get_mut(mailbox) else {
            if want.is_some() {
                self.entries.insert(
                    mailbox.clone(),
                    Entry {
                        want,
                        queued: true,
                        ..Entry::default()
                    },
                );
                self.ready.push_back(mailbox.clone());
            }
            return;
        };
        if entry.want == want {
            return;
        }
        entry.want = want;
        entry.refused_until = None;
        if settle_entry(entry, mailbox, &mut self.ready, false) {
            self.entries.remove(mailbox);
        }
    }

    /// The presentities with a publication wanted, held or in flight.
    pub fn tracked(&self) -> impl Iterator<Item = &Mailbox> {
        self.entries.keys()
    }

    /// What `mailbox` is wanted to show, as last told.
    pub fn wanted(&self, mailbox: &Mailbox) -> Option<Want> {
        self.entries.get(mailbox).and_then(|e| e.want)
    }

    /// From now on nothing is wanted: every publication is removed.
    pub fn stop(&mut self) {
        self.stopping = true;
        let all: Vec<Mailbox> = self.entries.keys().cloned().collect();
        for mailbox in all {
            if let Some(entry) = self.entries.get_mut(&mailbox) {
                entry.want = None;
                entry.refused_until = None;
            }
            self.settle(&mailbox, false);
        }
    }

    /// Stopping, and nothing is held or in flight any more.
    pub fn is_done(&self) -> bool {
        self.stopping && self.held == 0 && self.in_flight == 0
    }

    /// Counts for status and metrics.
    pub fn counts(&self) -> Counts {
        Counts {
            held: self.held,
            in_flight: self.in_flight,
            queued: self.ready.len(),
        }
    }

    /// The last failure, until a success clears it.
    pub fn last_error(&self) -> Option<&str> {
        self.last_error.as_deref()
    }

    /// Until when requests wait after failures.
    pub fn paused_until(&self) -> Option<Instant> {
        self.paused_until
    }

    /// The lifetime asked for now (raised by 423).
    pub fn expires(&self) -> u32 {
        self.expires
    }

    /// When [`Publications::poll`] has something to do next without new input.
    pub fn next_wake(&self) -> Option<Instant> {
        let timer = self.timers.peek().map(|Reverse((at, _))| *at);
        let ready = (!self.ready.is_empty() && self.in_flight < self.window)
            .then_some(self.paused_until)
            .flatten();
        match (timer, ready) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The requests to send at `now`: refreshes that came due, then the queue in order
    /// while the window has room and the server is not paused.
    pub fn poll(&mut self, now: Instant) -> Vec<Publish> {
        while let Some(Reverse((at, mailbox))) = self.timers.peek().cloned() {
            if at > now {
                break;
            }
            self.timers.pop();
            let Some(entry) = self.entries.get_mut(&mailbox) else {
                continue;
            };
            if entry.refresh_at == Some(at) {
                entry.refresh_at = None;
                entry.refresh_due = true;
            } else if entry.refused_until == Some(at) {
                entry.refused_until = None;
            } else {
                continue;
            }
            self.settle(&mailbox, false);
        }
        let mut out = Vec::new();
        if self.paused_until.is_some_and(|until| until > now) {
            return out;
        }
        self.paused_until = None;
        while self.in_flight < self.window {
            let Some(mailbox) = self.ready.pop_front() else {
                break;
            };
            let Some(entry) = self.entries.get_mut(&mailbox) else {
                continue;
            };
            entry.queued = false;
            if let Some(publish) = next_request(&mailbox, entry, self.expires, now) {
                entry.sending = Some((publish.kind, publish.want));
                entry.refresh_due = false;
                self.in_flight += 1;
                out.push(publish);
            } else if entry.is_idle() {
                self.entries.remove(&mailbox);
            }
        }
        out
    }

    /// The answer to the request in flight for `mailbox`, at `now`.
    pub fn answer(&mut self, mailbox: &Mailbox, outcome: Outcome, now: Instant) {
        let Some(entry) = self.entries.get_mut(mailbox) else {
            return;
        };
        let Some((kind, sent)) = entry.sending.take() else {
            return;
        };
        self.in_flight -= 1;
        let was_held = entry.held.is_some();
        let mut first = false;
        match outcome {
            Outcome::Accepted { etag, expires } => {
                self.backoff.reset();
                self.last_error = None;
                match (kind, sent) {
                    (Kind::Remove, _) | (_, None) => {
                        entry.held = None;
                        entry.refresh_at = None;
                    }
                    (_, Some(want)) => {
                        // A refresh goes out only while wanted equals held: what it
                        // sent is what the server holds.
                        entry.held = Some((etag, want));
                        let lifetime = Duration::from_secs(u64::from(expires.max(1)));
                        // A refresh's next refresh at 70–90% of the lifetime granted.
                        // After anything else (start-up, a storm at the top of the
                        // hour: many publications at once) at 20–90%, so that the
                        // refreshes of one burst do not come as another burst.
                        let earliest = if kind == Kind::Refresh { 0.7 } else { 0.2 };
                        let spread = (self.random.next_u64() % 10_001) as f64 / 10_000.0;
                        let share = earliest + (0.9 - earliest) * spread;
                        let at = now + lifetime.mul_f64(share);
                        entry.refresh_at = Some(at);
                        self.timers.push(Reverse((at, mailbox.clone())));
                    }
                }
            }
            Outcome::UnknownEtag => {
                entry.held = None;
                entry.refresh_at = None;
            }
            Outcome::TooBrief { min } => {
                self.expires = self.expires.max(min);
                entry.refresh_due = kind == Kind::Refresh;
            }
            Outcome::Retry { after, error } => {
                self.last_error = Some(error);
                if self.paused_until.is_none_or(|until| until <= now) {
                    let delay = after.unwrap_or_else(|| self.backoff.next_delay());
                    self.paused_until = Some(now + delay);
                }
                entry.refresh_due = kind == Kind::Refresh;
                first = true;
            }
            Outcome::Refused { error } => {
                self.last_error = Some(error);
                if kind == Kind::Remove {
                    // It expires by itself; nothing else can be done for it.
                    entry.held = None;
                    entry.refresh_at = None;
                } else {
                    let at = now + REFUSED_RETRY;
                    entry.refused_until = Some(at);
                    self.timers.push(Reverse((at, mailbox.clone())));
                }
            }
        }
        match (was_held, entry.held.is_some()) {
            (false, true) => self.held += 1,
            (true, false) => self.held -= 1,
            _ => {}
        }
        self.settle(mailbox, first);
    }

    /// Queues `mailbox` (at the front when `first`) when it has something to send, or
    /// forgets it when it holds and wants nothing.
    fn settle(&mut self, mailbox: &Mailbox, first: bool) {
        if let Some(entry) = self.entries.get_mut(mailbox)
            && settle_entry(entry, mailbox, &mut self.ready, first)
        {
            self.entries.remove(mailbox);
        }
    }

    /// Test support: the refresh time set for `mailbox`.
    #[cfg(test)]
    pub(crate) fn refresh_at(&self, mailbox: &Mailbox) -> Option<Instant> {
        self.entries.get(mailbox).and_then(|e| e.refresh_at)
    }
}

/// Queues `entry` (at the front when `first`) when it has something to send and is
/// neither queued nor in flight; true when it holds and wants nothing and can be
/// forgotten.
fn settle_entry(
    entry: &mut Entry,
    mailbox: &Mailbox,
    ready: &mut VecDeque<Mailbox>,
    first: bool,
) -> bool {
    if entry.is_idle() {
        return !entry.queued;
    }
    if !entry.queued && entry.sending.is_none() && has_work(entry) {
        entry.queued = true;
        if first {
            ready.push_front(mailbox.clone());
        } else {
            ready.push_back(mailbox.clone());
        }
    }
    false
}

fn has_work(entry: &Entry) -> bool {
    if entry.refused_until.is_some() {
        return false;
    }
    match (&entry.want, &entry.held) {
        (Some(_), None) | (None, Some(_)) => true,
        (Some(want), Some((_, held))) => want != held || entry.refresh_due,
        (None, None) => false,
    }
}

fn next_request(mailbox: &Mailbox, entry: &Entry, expires: u32, now: Instant) -> Option<Publish> {
    if entry.sending.is_some() || entry.refused_until.is_some_and(|t| t > now) {
        return None;
    }
    let publish = |kind, etag: Option<&String>, want, expires| Publish {
        mailbox: mailbox.clone(),
        kind,
        etag: etag.cloned(),
        want,
        expires,
    };
    match (&entry.want, &entry.held) {
        (Some(want), None) => Some(publish(Kind::Initial, None, Some(*want), expires)),
        (Some(want), Some((etag, held))) if want != held => {
            Some(publish(Kind::Modify, Some(etag), Some(*want), expires))
        }
        (Some(want), Some((etag, _))) if entry.refresh_due => {
            Some(publish(Kind::Refresh, Some(etag), Some(*want), expires))
        }
        (None, Some((etag, _))) => Some(publish(Kind::Remove, Some(etag), None, 0)),
        _ => None,
    }
}

/// A backoff for pauses after failures: 1 s doubling to a minute, jittered.
pub fn default_backoff() -> Backoff {
    // The bounds are constants that satisfy the checks.
    Backoff::new(Duration::from_secs(1), Duration::from_secs(60))
        .unwrap_or_else(|_| unreachable!("1 s to 60 s is a valid backoff"))
}

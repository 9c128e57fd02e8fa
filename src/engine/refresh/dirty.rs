//! The calendar reads a gateway owes: each dirty mailbox once, with when it first saw an
//! event, the earliest it may be read and whether a change asked for the read. Ordered
//! by that earliest time, so taking what is due and finding the next wake cost a
//! logarithm, not a scan of every queued mailbox (at a million mailboxes and a thousand
//! changes a second the scan was a tenth of the daemon's CPU).

use tokio::time::Instant;

use super::due::DueSet;
use common::mailbox::Mailbox;

/// What is known of one queued read.
#[derive(Debug, Clone, Copy)]
struct Owed {
    /// When the mailbox first saw an event (or the read was queued).
    first: Instant,
    /// Whether a notification asked for it (only those start a quiet period).
    change: bool,
}

/// A read taken because it is due.
#[derive(Debug, Clone)]
pub struct Taken {
    pub mailbox: Mailbox,
    /// When it first saw an event (or the read was queued).
    pub first: Instant,
    /// Whether a notification asked for it.
    pub change: bool,
}

/// The dirty mailboxes of one gateway: one queue entry each, holding what is owed.
#[derive(Debug, Default)]
pub struct DirtySet {
    due: DueSet<Owed>,
}

impl DirtySet {
    /// A change of `mailbox` at `now`: queue it at `at`, or mark the queued read as
    /// asked for by a change (it keeps its time).
    pub fn change(&mut self, mailbox: &Mailbox, now: Instant, at: Instant) {
        match self.due.get_mut(mailbox) {
            Some(owed) => owed.change = true,
            None => self.due.insert_keep_with(
                mailbox.clone(),
                at,
                Owed {
                    first: now,
                    change: true,
                },
            ),
        }
    }

    /// A read no change asked for, due at `at`: queued, or the queued read moved to
    /// `at` when that is later (a server's wait is never shortened).
    pub fn background(&mut self, mailbox: &Mailbox, now: Instant, at: Instant) {
        match self.due.at(mailbox) {
            Some(queued) => {
                if queued < at {
                    self.due.reschedule(mailbox, at);
                }
            }
            None => self.due.insert_keep_with(
                mailbox.clone(),
                at,
                Owed {
                    first: now,
                    change: false,
                },
            ),
        }
    }

    /// Takes at most `limit` reads due by `now`, earliest first; returns them and when
    /// the next one falls due after `now` (what is due and left waits for a slot).
    pub fn take_due(&mut self, now: Instant, limit: usize) -> (Vec<Taken>, Option<Instant>) {
        let taken = self
            .due
            .take_due_with(now, limit)
            .into_iter()
            .map(|(mailbox, owed)| Taken {
                mailbox,
                first: owed.first,
                change: owed.change,
            })
            .collect();
        (taken, self.due.next_after(now))
    }

    /// Whether a read is due by `now` (and waits for a request slot).
    pub fn any_due(&self, now: Instant) -> bool {
        self.due.any_due(now)
    }

    /// Whether a read of `mailbox` is queued.
    pub fn contains(&self, mailbox: &Mailbox) -> bool {
        self.due.contains(mailbox)
    }

    /// Forgets `mailbox`.
    pub fn remove(&mut self, mailbox: &Mailbox) {
        self.due.remove(mailbox);
    }

    /// Forgets everything.
    #[cfg(test)]
    pub fn clear(&mut self) {
        self.due.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    use common::mailbox::numbered as m;

    #[test]
    fn takes_what_is_due_in_order_and_tells_the_next() {
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        let mut dirty = DirtySet::default();
        dirty.change(&m(1), t0, t0 + 2 * s);
        dirty.background(&m(2), t0, t0);
        dirty.change(&m(3), t0, t0 + 5 * s);
        // A change of a mailbox queued in the background marks it, keeps its time.
        dirty.change(&m(2), t0 + s, t0 + 9 * s);
        // A later background time moves a queued read later, never earlier.
        dirty.background(&m(1), t0, t0 + 3 * s);
        dirty.background(&m(3), t0, t0 + s);
        let (taken, next) = dirty.take_due(t0, usize::MAX);
        assert_eq!(taken.len(), 1);
        assert_eq!((taken[0].mailbox.clone(), taken[0].change), (m(2), true));
        assert_eq!(next, Some(t0 + 3 * s));
        assert!(dirty.contains(&m(1)) && !dirty.contains(&m(2)));
        // At most `limit` at a time: what is due and left is taken next time.
        let (mut taken, next) = dirty.take_due(t0 + 5 * s, 1);
        assert_eq!(next, None, "nothing falls due after now");
        taken.extend(dirty.take_due(t0 + 5 * s, usize::MAX).0);
        let names: Vec<_> = taken.iter().map(|t| t.mailbox.clone()).collect();
        assert_eq!(names, [m(1), m(3)]);
        assert!(taken.iter().all(|t| t.change && t.first == t0));
        dirty.change(&m(4), t0, t0);
        dirty.remove(&m(4));
        assert!(dirty.take_due(t0 + 9 * s, usize::MAX).0.is_empty());
    }
}

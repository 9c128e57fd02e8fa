//! Mailboxes due at an instant, ordered by time: what is due now is taken in order
//! (a bounded number at a time, first come first out within an instant) and the next
//! instant found without scanning every mailbox, so a sweep of a million
//! automatic-reply reads costs a logarithm per step.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;

use tokio::time::Instant;

use common::mailbox::Mailbox;

/// Each mailbox at most once, with when it is due and a value of the caller's (`V`,
/// nothing by default). Ordered by (instant, arrival): one small entry per mailbox in a
/// B-tree, so a million queued at start-up (each at its own instant) cost tens of
/// bytes each, not a collection each.
#[derive(Debug)]
pub struct DueSet<V = ()> {
    by_time: BTreeMap<(Instant, u64), Mailbox>,
    at: HashMap<Mailbox, ((Instant, u64), V)>,
    /// Arrival counter: orders mailboxes due at the same instant first come, first out.
    arrivals: u64,
}

impl<V> Default for DueSet<V> {
    fn default() -> Self {
        DueSet {
            by_time: BTreeMap::new(),
            at: HashMap::new(),
            arrivals: 0,
        }
    }
}

impl DueSet {
    /// Queues `mailbox` at `at`, unless it is queued already (the earlier stays).
    pub fn insert_keep(&mut self, mailbox: Mailbox, at: Instant) {
        self.insert_keep_with(mailbox, at, ());
    }

    /// Takes at most `limit` mailboxes due by `now`, earliest first.
    pub fn take_due(&mut self, now: Instant, limit: usize) -> Vec<Mailbox> {
        self.take_due_with(now, limit)
            .into_iter()
            .map(|(mailbox, ())| mailbox)
            .collect()
    }
}

impl<V> DueSet<V> {
    /// Queues `mailbox` at `at` with `value`, unless it is queued already (the earlier
    /// time and value stay).
    pub fn insert_keep_with(&mut self, mailbox: Mailbox, at: Instant, value: V) {
        if self.at.contains_key(&mailbox) {
            return;
        }
        self.arrivals += 1;
        let key = (at, self.arrivals);
        self.by_time.insert(key, mailbox.clone());
        self.at.insert(mailbox, (key, value));
    }

    /// Moves the queued `mailbox` to `at`, keeping its value; nothing if not queued.
    pub fn reschedule(&mut self, mailbox: &Mailbox, at: Instant) {
        let Some((key, _)) = self.at.get_mut(mailbox) else {
            return;
        };
        if let Some(mailbox) = self.by_time.remove(key) {
            self.arrivals += 1;
            *key = (at, self.arrivals);
            self.by_time.insert(*key, mailbox);
        }
    }

    /// Forgets `mailbox`; returns its value if it was queued.
    pub fn remove(&mut self, mailbox: &Mailbox) -> Option<V> {
        let (key, value) = self.at.remove(mailbox)?;
        self.by_time.remove(&key);
        Some(value)
    }

    /// Forgets everything.
    #[cfg(test)]
    pub fn clear(&mut self) {
        self.by_time.clear();
        self.at.clear();
    }

    /// Whether something is due by `now`.
    pub fn any_due(&self, now: Instant) -> bool {
        self.by_time
            .first_key_value()
            .is_some_and(|((at, _), _)| *at <= now)
    }

    /// The earliest instant after `now` something is due.
    pub fn next_after(&self, now: Instant) -> Option<Instant> {
        self.by_time
            .range((Bound::Excluded((now, u64::MAX)), Bound::Unbounded))
            .next()
            .map(|((at, _), _)| *at)
    }

    /// Takes at most `limit` mailboxes due by `now`, earliest first, with their values.
    pub fn take_due_with(&mut self, now: Instant, limit: usize) -> Vec<(Mailbox, V)> {
        let mut taken = Vec::new();
        while taken.len() < limit {
            let Some(entry) = self.by_time.first_entry() else {
                break;
            };
            if entry.key().0 > now {
                break;
            }
            let mailbox = entry.remove();
            if let Some((_, value)) = self.at.remove(&mailbox) {
                taken.push((mailbox, value));
            }
        }
        taken
    }

    /// When `mailbox` is due, if queued.
    pub fn at(&self, mailbox: &Mailbox) -> Option<Instant> {
        self.at.get(mailbox).map(|((at, _), _)| *at)
    }

    /// The value queued with `mailbox`.
    pub fn get_mut(&mut self, mailbox: &Mailbox) -> Option<&mut V> {
        self.at.get_mut(mailbox).map(|(_, value)| value)
    }

    /// Whether `mailbox` is queued.
    pub fn contains(&self, mailbox: &Mailbox) -> bool {
        self.at.contains_key(mailbox)
    }

    /// How many are queued.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.at.len()
    }

    /// Whether none is queued.
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.at.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    use common::mailbox::numbered as m;

    #[test]
    fn takes_in_time_order_within_the_limit() {
        let t0 = Instant::now();
        let mut due = DueSet::default();
        due.insert_keep(m(3), t0 + Duration::from_secs(3));
        due.insert_keep(m(1), t0);
        due.insert_keep(m(2), t0);
        due.insert_keep(m(1), t0 + Duration::from_secs(9)); // kept at t0
        assert_eq!(due.len(), 3);
        assert_eq!(due.next_after(t0), Some(t0 + Duration::from_secs(3)));
        assert_eq!(due.take_due(t0, 1), [m(1)]);
        assert_eq!(due.take_due(t0, 5), [m(2)]);
        assert!(due.take_due(t0, 5).is_empty(), "m3 is not due yet");
        due.reschedule(&m(3), t0);
        assert_eq!(due.next_after(t0), None);
        assert_eq!(due.take_due(t0, 5), [m(3)]);
        assert!(due.is_empty());
        due.insert_keep(m(4), t0);
        due.remove(&m(4));
        assert!(due.is_empty() && due.take_due(t0, 5).is_empty());
    }
}

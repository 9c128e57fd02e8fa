//! The subscriptions a group holds: each member's subscription id, found by id (a
//! notification names ids) or by mailbox (planning, removal), and whether a healthy
//! frame has proven it since it was created. One owner of that fact: the indexes change
//! together, only here.

use std::collections::HashMap;

use common::mailbox::Mailbox;
use ews::types::SubscriptionId;

/// A subscription id with the mailbox it is for.
pub type Held = (SubscriptionId, Mailbox);

/// What one member's subscription is.
#[derive(Debug)]
struct Entry {
    id: SubscriptionId,
    /// No healthy frame has carried it yet.
    unproven: bool,
}

/// The group's subscriptions.
#[derive(Debug, Default)]
pub struct Subscriptions {
    by_mailbox: HashMap<Mailbox, Entry>,
    by_id: HashMap<SubscriptionId, Mailbox>,
}

impl Subscriptions {
    /// How many are held.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// True when none is held.
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// A fresh subscription for `mailbox` (unproven until a healthy frame); replaces
    /// any it had.
    pub fn insert(&mut self, mailbox: Mailbox, id: SubscriptionId) {
        self.by_id.insert(id.clone(), mailbox.clone());
        if let Some(old) = self
            .by_mailbox
            .insert(mailbox, Entry { id, unproven: true })
        {
            self.by_id.remove(&old.id);
        }
    }

    /// The mailbox `id` is for.
    pub fn mailbox_of(&self, id: &SubscriptionId) -> Option<&Mailbox> {
        self.by_id.get(id)
    }

    /// The id of `mailbox`'s subscription.
    pub fn id_of(&self, mailbox: &Mailbox) -> Option<&SubscriptionId> {
        self.by_mailbox.get(mailbox).map(|e| &e.id)
    }

    /// Whether `mailbox` holds one.
    pub fn holds(&self, mailbox: &Mailbox) -> bool {
        self.by_mailbox.contains_key(mailbox)
    }

    /// Whether `id` is held and no healthy frame has carried it yet.
    pub fn is_unproven(&self, id: &SubscriptionId) -> bool {
        self.by_id
            .get(id)
            .and_then(|m| self.by_mailbox.get(m))
            .is_some_and(|e| e.unproven)
    }

    /// A healthy frame carried every id: all are proven.
    pub fn prove_all(&mut self) {
        for entry in self.by_mailbox.values_mut() {
            entry.unproven = false;
        }
    }

    /// Drops `id`: its mailbox, and whether it was still unproven.
    pub fn remove_id(&mut self, id: &SubscriptionId) -> Option<(Mailbox, bool)> {
        let mailbox = self.by_id.remove(id)?;
        let unproven = self.by_mailbox.remove(&mailbox).is_some_and(|e| e.unproven);
        Some((mailbox, unproven))
    }

    /// Drops `mailbox`'s subscription: its id.
    pub fn remove_mailbox(&mut self, mailbox: &Mailbox) -> Option<SubscriptionId> {
        let entry = self.by_mailbox.remove(mailbox)?;
        self.by_id.remove(&entry.id);
        Some(entry.id)
    }

    /// Every id held.
    pub fn ids(&self) -> impl Iterator<Item = &SubscriptionId> {
        self.by_id.keys()
    }

    /// Every mailbox holding one.
    pub fn mailboxes(&self) -> impl Iterator<Item = &Mailbox> {
        self.by_mailbox.keys()
    }

    /// Takes every subscription, sorted by id, leaving none.
    pub fn take_all(&mut self) -> Vec<Held> {
        self.by_mailbox.clear();
        let mut held: Vec<Held> = std::mem::take(&mut self.by_id).into_iter().collect();
        held.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
        held
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use common::mailbox::numbered as m;

    fn id(s: &str) -> SubscriptionId {
        SubscriptionId::new(s).expect("an id")
    }

    #[test]
    fn both_ways_agree_through_every_change() {
        let mut s = Subscriptions::default();
        s.insert(m(1), id("a"));
        s.insert(m(2), id("b"));
        assert_eq!(
            (s.len(), s.mailbox_of(&id("a")), s.id_of(&m(2))),
            (2, Some(&m(1)), Some(&id("b")))
        );
        assert!(s.is_unproven(&id("a")));
        s.prove_all();
        assert!(!s.is_unproven(&id("a")));
        // A new subscription for a member replaces its old id, unproven again.
        s.insert(m(1), id("c"));
        assert_eq!((s.len(), s.mailbox_of(&id("a"))), (2, None));
        assert!(s.is_unproven(&id("c")) && !s.is_unproven(&id("b")));
        assert_eq!(s.remove_id(&id("c")), Some((m(1), true)));
        assert!(!s.holds(&m(1)));
        assert_eq!(s.remove_mailbox(&m(2)), Some(id("b")));
        assert!(s.is_empty() && s.mailbox_of(&id("b")).is_none());
        s.insert(m(3), id("z"));
        s.insert(m(4), id("y"));
        assert_eq!(s.take_all(), vec![(id("y"), m(4)), (id("z"), m(3))]);
        assert!(s.is_empty() && !s.holds(&m(3)));
    }
}

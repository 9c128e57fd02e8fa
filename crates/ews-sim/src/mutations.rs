//! Changes to calendars and settings, from any source (EWS operations, the control
//! API, churn), and the notification events they raise on the mailbox's
//! subscriptions: an item change gives ModifiedEvent + FreeBusyChangedEvent on the
//! item, a creation CreatedEvent, a deletion DeletedEvent, each followed by the
//! calendar folder's ModifiedEvent, as Exchange 2016 does; Graph subscriptions of the
//! mailbox get a created/updated/deleted notification.

use jiff::Timestamp;

use super::Sim;
use super::model::{Item, ItemPatch, ModelError, NewItem, Oof};
use super::subscriptions::{EventObject, QueuedEvent};
use ews::ops::get_streaming_events::EventKind;
use graph::notification::ChangeType;

impl Sim {
    fn emit(&self, mailbox: usize, events: &[(EventKind, EventObject)]) {
        let subscriptions = self.registry.of_mailbox(mailbox);
        if subscriptions.is_empty() {
            return;
        }
        let now = Timestamp::now();
        for subscription in &subscriptions {
            for (kind, object) in events {
                subscription.push(QueuedEvent {
                    kind: kind.clone(),
                    object: object.clone(),
                    timestamp: now,
                });
            }
        }
        self.stats
            .events((events.len() * subscriptions.len()) as u64);
    }

    /// Creates an item and raises CreatedEvent.
    pub fn create_item(&self, mailbox: usize, new: NewItem) -> Result<Item, ModelError> {
        let item = self.directory.with(mailbox, |c| c.create(new))?;
        self.emit(
            mailbox,
            &[
                (
                    EventKind::Created,
                    EventObject::Item(item.number, item.version),
                ),
                (EventKind::Modified, EventObject::Folder),
            ],
        );
        self.notify_graph(mailbox, ChangeType::Created, item.number);
        Ok(item)
    }

    /// Changes an item and raises ModifiedEvent + FreeBusyChangedEvent.
    pub fn update_item(
        &self,
        mailbox: usize,
        number: u32,
        patch: ItemPatch,
    ) -> Result<Item, ModelError> {
        let item = self.directory.with(mailbox, |c| c.update(number, patch))?;
        let object = EventObject::Item(item.number, item.version);
        self.emit(
            mailbox,
            &[
                (EventKind::Modified, object.clone()),
                (EventKind::FreeBusyChanged, object),
                (EventKind::Modified, EventObject::Folder),
            ],
        );
        self.notify_graph(mailbox, ChangeType::Updated, item.number);
        Ok(item)
    }

    /// Deletes an item and raises DeletedEvent.
    pub fn delete_item(&self, mailbox: usize, number: u32) -> Result<(), ModelError> {
        let version = self
            .directory
            .with(mailbox, |c| c.item(number).map(|i| i.version))
            .ok_or(ModelError::ItemNotFound)?;
        self.directory.with(mailbox, |c| c.delete(number))?;
        self.emit(
            mailbox,
            &[
                (EventKind::Deleted, EventObject::Item(number, version)),
                (EventKind::Modified, EventObject::Folder),
            ],
        );
        self.notify_graph(mailbox, ChangeType::Deleted, number);
        Ok(())
    }

    /// Sets automatic replies. They are mailbox settings, not calendar items: no
    /// calendar event is raised, as on Exchange.
    pub fn set_oof(&self, mailbox: usize, oof: Oof) {
        self.directory.with(mailbox, |c| c.oof = oof);
    }

    /// Sets automatic replies and whether their internal message is empty.
    pub fn set_oof_with_message(&self, mailbox: usize, oof: Oof, message: bool) {
        self.directory.with(mailbox, |c| {
            c.oof = oof;
            c.oof_message = message;
        });
    }
}

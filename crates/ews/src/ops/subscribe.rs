//! Subscribe with a StreamingSubscriptionRequest on the mailbox's Calendar folder.
//! One subscription per mailbox: send it impersonating that mailbox.

use crate::decode_error::{FrameError, Problem};
use crate::response::{Status, first_response_message};
use crate::soap::MESSAGES_AND_TYPES;
use crate::types::SubscriptionId;
use crate::xml_tree::Element;
use crate::xml_write::XmlWriter;

/// The event types we subscribe to. Servers differ in which ones a calendar change
/// raises, so every kind that can follow an item change is requested.
pub const EVENT_TYPES: [&str; 6] = [
    "CreatedEvent",
    "DeletedEvent",
    "ModifiedEvent",
    "MovedEvent",
    "CopiedEvent",
    "FreeBusyChangedEvent",
];

/// The `m:Subscribe` body element for a streaming subscription on `calendar`.
pub fn body() -> String {
    let mut w = XmlWriter::new();
    w.open("m:Subscribe", &MESSAGES_AND_TYPES);
    w.open("m:StreamingSubscriptionRequest", &[]);
    w.open("t:FolderIds", &[]);
    w.empty("t:DistinguishedFolderId", &[("Id", "calendar")]);
    w.close("t:FolderIds");
    w.open("t:EventTypes", &[]);
    for event_type in EVENT_TYPES {
        w.leaf("t:EventType", event_type);
    }
    w.close("t:EventTypes");
    w.close("m:StreamingSubscriptionRequest");
    w.close("m:Subscribe");
    w.finish()
}

/// A decoded `SubscribeResponse`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscribeResponse {
    /// Class, code and hints of the response message.
    pub status: Status,
    /// The new subscription; present whenever the code is `NoError`.
    pub subscription_id: Option<SubscriptionId>,
}

impl SubscribeResponse {
    /// Reads an `m:SubscribeResponse` element.
    pub fn read(response: Element<'_, '_>) -> Result<SubscribeResponse, FrameError> {
        let message = first_response_message(response)?;
        let status = Status::read(message)?;
        let subscription_id =
            match message.ews_child("SubscriptionId") {
                Some(id) => Some(SubscriptionId::new(id.text()).map_err(|_| {
                    id.error(Problem::invalid("SubscriptionId", "", "a non-empty id"))
                })?),
                None if status.code.is_success() => {
                    return Err(message.error(Problem::MissingElement {
                        element: "SubscriptionId",
                        parent: message.local().to_owned(),
                    }));
                }
                None => None,
            };
        Ok(SubscribeResponse {
            status,
            subscription_id,
        })
    }
}

//! GetStreamingEvents: one long-lived request carrying up to 200 subscription ids. The
//! answer is an endless body of envelopes, split by [`crate::stream`]; this module
//! writes the request and reads one decoded `GetStreamingEventsResponse` envelope.

use crate::decode_error::{FrameError, Problem};
use crate::ns::Ns;
use crate::ops::RequestError;
use crate::response::Status;
use crate::soap::MESSAGES_AND_TYPES;
use crate::types::{EwsDateTime, ObjectId, SubscriptionId};
use crate::xml_tree::Element;
use crate::xml_write::XmlWriter;

/// Most subscription ids one request may carry.
pub const MAX_SUBSCRIPTIONS: usize = 200;
/// Longest ConnectionTimeout the schema allows, in minutes.
pub const MAX_CONNECTION_TIMEOUT_MINUTES: u32 = 30;

/// The `m:GetStreamingEvents` body element. Refuses 0 or more than 200 ids and a
/// timeout outside 1..=30 minutes.
pub fn body(
    ids: &[SubscriptionId],
    connection_timeout_minutes: u32,
) -> Result<String, RequestError> {
    if ids.is_empty() || ids.len() > MAX_SUBSCRIPTIONS {
        return Err(RequestError::SubscriptionCount { got: ids.len() });
    }
    if !(1..=MAX_CONNECTION_TIMEOUT_MINUTES).contains(&connection_timeout_minutes) {
        return Err(RequestError::ConnectionTimeout {
            got: connection_timeout_minutes,
        });
    }
    let mut w = XmlWriter::new();
    w.open("m:GetStreamingEvents", &MESSAGES_AND_TYPES);
    w.open("m:SubscriptionIds", &[]);
    for id in ids {
        w.leaf("t:SubscriptionId", id.as_str());
    }
    w.close("m:SubscriptionIds");
    w.leaf(
        "m:ConnectionTimeout",
        &connection_timeout_minutes.to_string(),
    );
    w.close("m:GetStreamingEvents");
    Ok(w.finish())
}

/// `ConnectionStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionStatus {
    /// The connection stays open (a heartbeat when nothing else came with it).
    Ok,
    /// The server ends the response after this envelope.
    Closed,
}

impl ConnectionStatus {
    /// The value as written on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectionStatus::Ok => "OK",
            ConnectionStatus::Closed => "Closed",
        }
    }
}

/// The kind of a notification event (its element's local name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventKind {
    /// `CopiedEvent`
    Copied,
    /// `CreatedEvent`
    Created,
    /// `DeletedEvent`
    Deleted,
    /// `ModifiedEvent`
    Modified,
    /// `MovedEvent`
    Moved,
    /// `NewMailEvent`
    NewMail,
    /// `FreeBusyChangedEvent`
    FreeBusyChanged,
    /// `StatusEvent`
    Status,
    /// Another `…Event` element, kept by name.
    Other(String),
}

impl EventKind {
    /// The kind named by an event element's local name (or an `EventType` value).
    pub fn from_local(local: &str) -> EventKind {
        match local {
            "CopiedEvent" => EventKind::Copied,
            "CreatedEvent" => EventKind::Created,
            "DeletedEvent" => EventKind::Deleted,
            "ModifiedEvent" => EventKind::Modified,
            "MovedEvent" => EventKind::Moved,
            "NewMailEvent" => EventKind::NewMail,
            "FreeBusyChangedEvent" => EventKind::FreeBusyChanged,
            "StatusEvent" => EventKind::Status,
            other => EventKind::Other(other.to_owned()),
        }
    }

    /// The element's local name.
    pub fn as_str(&self) -> &str {
        match self {
            EventKind::Copied => "CopiedEvent",
            EventKind::Created => "CreatedEvent",
            EventKind::Deleted => "DeletedEvent",
            EventKind::Modified => "ModifiedEvent",
            EventKind::Moved => "MovedEvent",
            EventKind::NewMail => "NewMailEvent",
            EventKind::FreeBusyChanged => "FreeBusyChangedEvent",
            EventKind::Status => "StatusEvent",
            EventKind::Other(name) => name,
        }
    }
}

/// One notification event. Which ids are present depends on the kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The event element's kind.
    pub kind: EventKind,
    /// `TimeStamp`.
    pub timestamp: Option<EwsDateTime>,
    /// `ItemId`.
    pub item_id: Option<ObjectId>,
    /// `FolderId`.
    pub folder_id: Option<ObjectId>,
    /// `ParentFolderId`.
    pub parent_folder_id: Option<ObjectId>,
    /// `OldItemId` (moves and copies).
    pub old_item_id: Option<ObjectId>,
    /// `OldFolderId` (moves and copies).
    pub old_folder_id: Option<ObjectId>,
    /// `OldParentFolderId` (moves and copies).
    pub old_parent_folder_id: Option<ObjectId>,
    /// `Watermark`; streaming servers usually leave it out.
    pub watermark: Option<String>,
}

/// A `Notification`: events of one subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// Which subscription the events belong to.
    pub subscription_id: SubscriptionId,
    /// `PreviousWatermark`, if sent.
    pub previous_watermark: Option<String>,
    /// `MoreEvents`, if sent.
    pub more_events: Option<bool>,
    /// The events in the order sent.
    pub events: Vec<Event>,
}

/// A decoded `GetStreamingEventsResponse` envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamingResponse {
    /// Class, code and hints (the first message that is not a success, if any).
    pub status: Status,
    /// `ConnectionStatus`, when present.
    pub connection_status: Option<ConnectionStatus>,
    /// Notifications, possibly several subscriptions' in one envelope.
    pub notifications: Vec<Notification>,
    /// `ErrorSubscriptionIds`: subscriptions the error applies to.
    pub error_subscription_ids: Vec<SubscriptionId>,
}

impl StreamingResponse {
    /// A heartbeat: success, `ConnectionStatus` OK, nothing else.
    pub fn is_heartbeat(&self) -> bool {
        self.status.code.is_success()
            && self.connection_status == Some(ConnectionStatus::Ok)
            && self.notifications.is_empty()
            && self.error_subscription_ids.is_empty()
    }

    /// The server ends the response after this envelope.
    pub fn is_closed(&self) -> bool {
        self.connection_status == Some(ConnectionStatus::Closed)
    }

    /// Reads an `m:GetStreamingEventsResponse` element. Every response message is read;
    /// their notifications and error ids are merged.
    pub fn read(response: Element<'_, '_>) -> Result<StreamingResponse, FrameError> {
        let messages = response.require_ews("ResponseMessages")?;
        let mut status: Option<Status> = None;
        let mut connection_status = None;
        let mut notifications = Vec::new();
        let mut error_subscription_ids = Vec::new();
        for message in messages
            .children()
            .filter(|c| c.ns().is_ews() && c.local().ends_with("ResponseMessage"))
        {
            let this = Status::read(message)?;
            let replace = match &status {
                None => true,
                Some(kept) => kept.code.is_success() && !this.code.is_success(),
            };
            if replace {
                status = Some(this);
            }
            for child in message.children().filter(|c| c.ns().is_ews()) {
                match child.local() {
                    "ConnectionStatus" => connection_status = Some(read_connection_status(child)?),
                    "Notifications" => {
                        for notification in child.ews_children("Notification") {
                            notifications.push(read_notification(notification)?);
                        }
                    }
                    "ErrorSubscriptionIds" => {
                        // gromox writes these ids unqualified (no namespace at all).
                        let ids = child.children().filter(|c| {
                            c.local() == "SubscriptionId" && (c.ns().is_ews() || c.ns() == Ns::None)
                        });
                        for id in ids {
                            error_subscription_ids.push(read_subscription_id(id)?);
                        }
                    }
                    _ => {}
                }
            }
        }
        let status = status.ok_or_else(|| {
            messages.error(Problem::MissingElement {
                element: "GetStreamingEventsResponseMessage",
                parent: messages.local().to_owned(),
            })
        })?;
        Ok(StreamingResponse {
            status,
            connection_status,
            notifications,
            error_subscription_ids,
        })
    }
}

fn read_connection_status(e: Element<'_, '_>) -> Result<ConnectionStatus, FrameError> {
    match e.text() {
        "OK" => Ok(ConnectionStatus::Ok),
        "Closed" => Ok(ConnectionStatus::Closed),
        other => Err(e.error(Problem::invalid("ConnectionStatus", other, "OK or Closed"))),
    }
}

fn read_subscription_id(e: Element<'_, '_>) -> Result<SubscriptionId, FrameError> {
    SubscriptionId::new(e.text())
        .map_err(|_| e.error(Problem::invalid("SubscriptionId", "", "a non-empty id")))
}

fn read_object_id(e: Element<'_, '_>, name: &'static str) -> Result<ObjectId, FrameError> {
    let id = e.attr("Id").filter(|id| !id.is_empty()).ok_or_else(|| {
        e.error(Problem::invalid(
            name,
            "",
            "an element with a non-empty Id attribute",
        ))
    })?;
    Ok(ObjectId {
        id: id.to_owned(),
        change_key: e.attr("ChangeKey").map(str::to_owned),
    })
}

fn read_notification(n: Element<'_, '_>) -> Result<Notification, FrameError> {
    let mut subscription_id = None;
    let mut previous_watermark = None;
    let mut more_events = None;
    let mut events = Vec::new();
    for child in n.children().filter(|c| c.ns().is_ews()) {
        match child.local() {
            "SubscriptionId" => subscription_id = Some(read_subscription_id(child)?),
            "PreviousWatermark" => previous_watermark = Some(child.text().to_owned()),
            "MoreEvents" => {
                more_events = Some(match child.text() {
                    "true" | "1" => true,
                    "false" | "0" => false,
                    other => {
                        return Err(child.error(Problem::invalid(
                            "MoreEvents",
                            other,
                            "a boolean",
                        )));
                    }
                })
            }
            local if local.ends_with("Event") => events.push(read_event(child)?),
            _ => {}
        }
    }
    let subscription_id = subscription_id.ok_or_else(|| {
        n.error(Problem::MissingElement {
            element: "SubscriptionId",
            parent: n.local().to_owned(),
        })
    })?;
    Ok(Notification {
        subscription_id,
        previous_watermark,
        more_events,
        events,
    })
}

fn read_event(e: Element<'_, '_>) -> Result<Event, FrameError> {
    let mut event = Event {
        kind: EventKind::from_local(e.local()),
        timestamp: None,
        item_id: None,
        folder_id: None,
        parent_folder_id: None,
        old_item_id: None,
        old_folder_id: None,
        old_parent_folder_id: None,
        watermark: None,
    };
    for child in e.children().filter(|c| c.ns().is_ews()) {
        match child.local() {
            "TimeStamp" => {
                let text = child.text();
                event.timestamp = Some(EwsDateTime::parse(text).ok_or_else(|| {
                    child.error(Problem::invalid("TimeStamp", text, "an xs:dateTime"))
                })?);
            }
            "Watermark" => event.watermark = Some(child.text().to_owned()),
            "ItemId" => event.item_id = Some(read_object_id(child, "ItemId")?),
            "FolderId" => event.folder_id = Some(read_object_id(child, "FolderId")?),
            "ParentFolderId" => {
                event.parent_folder_id = Some(read_object_id(child, "ParentFolderId")?)
            }
            "OldItemId" => event.old_item_id = Some(read_object_id(child, "OldItemId")?),
            "OldFolderId" => event.old_folder_id = Some(read_object_id(child, "OldFolderId")?),
            "OldParentFolderId" => {
                event.old_parent_folder_id = Some(read_object_id(child, "OldParentFolderId")?)
            }
            _ => {}
        }
    }
    Ok(event)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: usize) -> Vec<SubscriptionId> {
        (0..n)
            .map(|i| SubscriptionId::new(format!("id{i}")).unwrap())
            .collect()
    }

    #[test]
    fn limits_are_errors_not_clamps() {
        assert_eq!(
            body(&ids(0), 30),
            Err(RequestError::SubscriptionCount { got: 0 })
        );
        assert_eq!(
            body(&ids(201), 30),
            Err(RequestError::SubscriptionCount { got: 201 })
        );
        assert_eq!(
            body(&ids(1), 0),
            Err(RequestError::ConnectionTimeout { got: 0 })
        );
        assert_eq!(
            body(&ids(1), 31),
            Err(RequestError::ConnectionTimeout { got: 31 })
        );
        assert!(body(&ids(200), 30).is_ok());
        assert!(body(&ids(1), 1).is_ok());
    }

    #[test]
    fn writes_ids_in_the_types_namespace() {
        let xml = body(&ids(2), 30).unwrap();
        assert!(xml.contains("<m:SubscriptionIds><t:SubscriptionId>id0</t:SubscriptionId><t:SubscriptionId>id1</t:SubscriptionId></m:SubscriptionIds><m:ConnectionTimeout>30</m:ConnectionTimeout>"));
    }
}

//! Change-notification subscriptions (`POST /subscriptions`, renewed with `PATCH
//! /subscriptions/{id}`, `POST /subscriptions/{id}/reauthorize`, `DELETE`): one per
//! mailbox on `users/{id}/events` for `created,updated,deleted`, with a `clientState`
//! secret Graph echoes in every notification and a `lifecycleNotificationUrl` for
//! missed notifications, removed subscriptions and reauthorization.

use serde::{Deserialize, Serialize};

/// The longest lifetime Graph gives a subscription on Outlook events: 10,080 minutes
/// (Graph's "subscription resource type", maximum length per resource).
pub const MAX_LIFETIME_MINUTES: i64 = 10_080;
/// The longest `clientState` Graph takes.
pub const MAX_CLIENT_STATE: usize = 128;
/// The change types we subscribe to.
pub const CHANGE_TYPES: &str = "created,updated,deleted";

/// A subscription, as created, renewed and answered (fields absent when not sent).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Subscription {
    /// Its id (answers only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// `users/{id}/events`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    /// `created,updated,deleted`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change_type: Option<String>,
    /// Where changes are posted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notification_url: Option<String>,
    /// Where lifecycle events are posted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifecycle_notification_url: Option<String>,
    /// When it lapses (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiration_date_time: Option<String>,
    /// The secret echoed in each notification.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_state: Option<String>,
    /// The application that created it (answers only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application_id: Option<String>,
}

/// The resource of `mailbox`'s events.
pub fn events_resource(mailbox: &str) -> String {
    format!("users/{mailbox}/events")
}

impl Subscription {
    /// A new subscription on `mailbox`'s events.
    pub fn create(
        mailbox: &str,
        notification_url: &str,
        lifecycle_url: &str,
        expires: jiff::Timestamp,
        client_state: &str,
    ) -> Subscription {
        Subscription {
            resource: Some(events_resource(mailbox)),
            change_type: Some(CHANGE_TYPES.to_owned()),
            notification_url: Some(notification_url.to_owned()),
            lifecycle_notification_url: Some(lifecycle_url.to_owned()),
            expiration_date_time: Some(expires.to_string()),
            client_state: Some(client_state.to_owned()),
            ..Subscription::default()
        }
    }

    /// A renewal to `expires`.
    pub fn renew(expires: jiff::Timestamp) -> Subscription {
        Subscription {
            expiration_date_time: Some(expires.to_string()),
            ..Subscription::default()
        }
    }

    /// When it lapses, if it says and that parses.
    pub fn expires(&self) -> Option<jiff::Timestamp> {
        self.expiration_date_time.as_deref()?.parse().ok()
    }
}

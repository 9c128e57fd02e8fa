//! What Graph POSTs to a notification URL: a `changeNotificationCollection` of change
//! notifications (`changeType` created/updated/deleted on a resource) or lifecycle
//! notifications (`lifecycleEvent` missed / subscriptionRemoved /
//! reauthorizationRequired), each with the subscription's id and `clientState`. The
//! validation handshake is a POST with `?validationToken=…` to echo as `text/plain`.

use serde::{Deserialize, Serialize};

/// A collection of notifications.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChangeNotificationCollection {
    /// The notifications.
    pub value: Vec<ChangeNotification>,
}

/// One notification.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChangeNotification {
    /// The notification's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The subscription it is for.
    pub subscription_id: String,
    /// When that subscription lapses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscription_expiration_date_time: Option<String>,
    /// The subscription's secret, as we set it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_state: Option<String>,
    /// created, updated or deleted (change notifications).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change_type: Option<ChangeType>,
    /// The changed resource (`Users/{id}/Events/{id}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    /// The tenant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
    /// The lifecycle event (lifecycle notifications).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifecycle_event: Option<LifecycleEvent>,
}

/// `changeType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ChangeType {
    /// Created.
    Created,
    /// Updated.
    Updated,
    /// Deleted.
    Deleted,
}

/// `lifecycleEventType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum LifecycleEvent {
    /// Notifications were lost: re-read.
    Missed,
    /// The subscription is gone: create it again.
    SubscriptionRemoved,
    /// The subscription needs its authorization renewed.
    ReauthorizationRequired,
    /// A member a later Graph adds.
    #[serde(other)]
    Unknown,
}

impl LifecycleEvent {
    /// Its name on the wire (for logs and metrics).
    pub fn as_str(self) -> &'static str {
        match self {
            LifecycleEvent::Missed => "missed",
            LifecycleEvent::SubscriptionRemoved => "subscriptionRemoved",
            LifecycleEvent::ReauthorizationRequired => "reauthorizationRequired",
            LifecycleEvent::Unknown => "unknown",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn change_and_lifecycle_notifications_decode() {
        let body = br##"{"value":[
          {"subscriptionId":"7f105c7d-2dc5-4530-97cd-4e7ae6534c07","subscriptionExpirationDateTime":"2026-12-08T18:23:45.9356913Z",
           "changeType":"updated","resource":"Users/0b1c/Events/AAMk","clientState":"secret",
           "tenantId":"84bd8158-6d4d-4958-8b9f-9d6445542f95",
           "resourceData":{"@odata.type":"#Microsoft.Graph.Event","@odata.id":"Users/0b1c/Events/AAMk","id":"AAMk"}},
          {"subscriptionId":"7f105c7d-2dc5-4530-97cd-4e7ae6534c07","lifecycleEvent":"subscriptionRemoved","clientState":"secret",
           "subscriptionExpirationDateTime":"2026-12-08T18:23:45.9356913Z","tenantId":"84bd8158-6d4d-4958-8b9f-9d6445542f95"}]}"##;
        let c: ChangeNotificationCollection =
            crate::decode("notifications", body).expect("decodes");
        assert_eq!(c.value[0].change_type, Some(ChangeType::Updated));
        assert_eq!(
            c.value[1].lifecycle_event,
            Some(LifecycleEvent::SubscriptionRemoved)
        );
    }
}

//! Change-notification subscriptions of the Graph side: created on
//! `users/{id}/events` after the validation handshake (of both URLs), renewed with
//! PATCH up to [`MAX_LIFETIME_MINUTES`], reauthorized, deleted, at most
//! [`MAX_PER_MAILBOX`] per mailbox. A change of a calendar item notifies every live
//! subscription of its mailbox; a test can raise lifecycle events
//! (`POST /sim/graph/lifecycle`); `subscriptionRemoved` removes the subscription first.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use hyper::Method;
use jiff::Timestamp;
use ring::rand::{SecureRandom, SystemRandom};

use super::{Call, GraphSide, Reply, body_of};
use crate::Sim;
use graph::notification::{
    ChangeNotification, ChangeNotificationCollection, ChangeType, LifecycleEvent,
};
use graph::subscription::{MAX_CLIENT_STATE, MAX_LIFETIME_MINUTES, Subscription};

/// Subscriptions one mailbox may hold, across apps (Graph's limit).
pub const MAX_PER_MAILBOX: usize = 1000;
/// The simulated tenant's id.
pub const TENANT_ID: &str = "5e3ce6c0-2b1f-4285-8d4b-75ee78787346";

/// One subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphSubscription {
    /// Its id (a GUID).
    pub id: String,
    /// The mailbox whose events it watches.
    pub mailbox: usize,
    /// As created.
    pub resource: String,
    /// As created.
    pub change_type: String,
    /// Where changes go.
    pub notification_url: String,
    /// Where lifecycle events go.
    pub lifecycle_url: Option<String>,
    /// Echoed in every notification.
    pub client_state: Option<String>,
    /// When it lapses.
    pub expires: Timestamp,
}

impl GraphSubscription {
    fn wire(&self) -> Subscription {
        Subscription {
            id: Some(self.id.clone()),
            resource: Some(self.resource.clone()),
            change_type: Some(self.change_type.clone()),
            notification_url: Some(self.notification_url.clone()),
            lifecycle_notification_url: self.lifecycle_url.clone(),
            expiration_date_time: Some(self.expires.to_string()),
            client_state: self.client_state.clone(),
            application_id: None,
        }
    }

    fn notification(
        &self,
        change: Option<ChangeType>,
        resource: Option<String>,
        lifecycle: Option<LifecycleEvent>,
    ) -> ChangeNotification {
        ChangeNotification {
            id: Some(new_guid()),
            subscription_id: self.id.clone(),
            subscription_expiration_date_time: Some(self.expires.to_string()),
            client_state: self.client_state.clone(),
            change_type: change,
            resource,
            tenant_id: Some(TENANT_ID.to_owned()),
            lifecycle_event: lifecycle,
        }
    }
}

#[derive(Debug, Default)]
struct Tables {
    by_id: HashMap<String, GraphSubscription>,
    by_mailbox: HashMap<usize, Vec<String>>,
}

/// Every subscription.
#[derive(Debug, Default)]
pub struct Registry {
    tables: Mutex<Tables>,
}

/// A random GUID (version 4 form).
pub fn new_guid() -> String {
    let mut b = [0u8; 16];
    let _ = SystemRandom::new().fill(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

impl Registry {
    /// The live subscriptions of `mailbox` (lapsed ones are dropped).
    pub fn of_mailbox(&self, mailbox: usize) -> Vec<GraphSubscription> {
        let now = Timestamp::now();
        let mut t = common::sync::lock(&self.tables);
        let Tables { by_id, by_mailbox } = &mut *t;
        let Some(ids) = by_mailbox.get_mut(&mailbox) else {
            return Vec::new();
        };
        ids.retain(|id| match by_id.get(id) {
            Some(s) if s.expires > now => true,
            Some(_) => {
                by_id.remove(id);
                false
            }
            None => false,
        });
        ids.iter().filter_map(|id| by_id.get(id).cloned()).collect()
    }

    /// Every live subscription.
    pub fn all(&self) -> Vec<GraphSubscription> {
        let now = Timestamp::now();
        common::sync::lock(&self.tables)
            .by_id
            .values()
            .filter(|s| s.expires > now)
            .cloned()
            .collect()
    }

    /// A live subscription by id.
    pub fn get(&self, id: &str) -> Option<GraphSubscription> {
        let now = Timestamp::now();
        common::sync::lock(&self.tables)
            .by_id
            .get(id)
            .filter(|s| s.expires > now)
            .cloned()
    }

    fn insert(&self, s: GraphSubscription) -> Result<(), ()> {
        let mut t = common::sync::lock(&self.tables);
        let ids = t.by_mailbox.entry(s.mailbox).or_default();
        if ids.len() >= MAX_PER_MAILBOX {
            return Err(());
        }
        ids.push(s.id.clone());
        t.by_id.insert(s.id.clone(), s);
        Ok(())
    }

    fn set_expiry(&self, id: &str, expires: Timestamp) -> Option<GraphSubscription> {
        let mut t = common::sync::lock(&self.tables);
        let s = t.by_id.get_mut(id)?;
        s.expires = expires;
        Some(s.clone())
    }

    /// Removes a subscription; whether it existed.
    pub fn remove(&self, id: &str) -> bool {
        let mut t = common::sync::lock(&self.tables);
        let Some(s) = t.by_id.remove(id) else {
            return false;
        };
        if let Some(ids) = t.by_mailbox.get_mut(&s.mailbox) {
            ids.retain(|x| x != id);
        }
        true
    }
}

fn expiry_of(text: Option<&str>) -> Result<Timestamp, Reply> {
    let text =
        text.ok_or_else(|| Reply::error(400, "InvalidRequest", "expirationDateTime is required."))?;
    let at: Timestamp = text.parse().map_err(|_| {
        Reply::error(
            400,
            "InvalidRequest",
            &format!("expirationDateTime {text:?} is not a date and time with an offset."),
        )
    })?;
    let now = Timestamp::now();
    let max = now.as_second() + MAX_LIFETIME_MINUTES * 60;
    if at <= now {
        return Err(Reply::error(
            400,
            "InvalidRequest",
            "Subscription expiration must be in the future.",
        ));
    }
    if at.as_second() > max {
        return Err(Reply::error(
            400,
            "InvalidRequest",
            &format!(
                "Subscription expiration can only be {MAX_LIFETIME_MINUTES} minutes in the future."
            ),
        ));
    }
    Ok(at)
}

/// The mailbox a resource `users/{id}/events` names.
fn mailbox_of(sim: &Sim, resource: &str) -> Option<usize> {
    let parts: Vec<&str> = resource.trim_start_matches('/').split('/').collect();
    match parts.as_slice() {
        [users, id, "events"] | [users, id, "calendar", "events"]
            if users.eq_ignore_ascii_case("users") =>
        {
            sim.directory.lookup(&common::percent::decode(id))
        }
        _ => None,
    }
}

/// Answers `/subscriptions…`.
pub async fn answer(sim: &Arc<Sim>, graph: &GraphSide, call: &Call) -> Reply {
    let path: Vec<&str> = call.segments.iter().map(String::as_str).collect();
    let outcome = match (&call.method, path.as_slice()) {
        (&Method::POST, ["subscriptions"]) => create(sim, graph, &call.body).await,
        (&Method::GET, ["subscriptions"]) => Ok(Reply::json(
            200,
            serde_json::json!({"value": graph.subscriptions.all().iter().map(GraphSubscription::wire).collect::<Vec<_>>()}),
        )),
        (&Method::GET, ["subscriptions", id]) => graph
            .subscriptions
            .get(id)
            .map(|s| Reply::of(200, &s.wire()))
            .ok_or_else(gone),
        (&Method::PATCH, ["subscriptions", id]) => {
            let body: Subscription = match body_of(&call.body) {
                Ok(b) => b,
                Err(reply) => return reply,
            };
            match expiry_of(body.expiration_date_time.as_deref()) {
                Err(reply) => Err(reply),
                Ok(at) => graph
                    .subscriptions
                    .get(id)
                    .and_then(|_| graph.subscriptions.set_expiry(id, at))
                    .map(|s| Reply::of(200, &s.wire()))
                    .ok_or_else(gone),
            }
        }
        (&Method::DELETE, ["subscriptions", id]) => {
            if graph.subscriptions.remove(id) {
                Ok(Reply::empty(204))
            } else {
                Err(gone())
            }
        }
        (&Method::POST, ["subscriptions", id, "reauthorize"]) => {
            if graph.subscriptions.get(id).is_some() {
                Ok(Reply::empty(204))
            } else {
                Err(gone())
            }
        }
        _ => Err(Reply::error(
            400,
            "BadRequest",
            "Resource not found for the segment.",
        )),
    };
    outcome.unwrap_or_else(|reply| reply)
}

fn gone() -> Reply {
    Reply::error(404, "ResourceNotFound", "The object was not found.")
}

async fn create(sim: &Arc<Sim>, graph: &GraphSide, body: &[u8]) -> Result<Reply, Reply> {
    let wanted: Subscription = body_of(body)?;
    let resource = wanted
        .resource
        .clone()
        .ok_or_else(|| Reply::error(400, "InvalidRequest", "resource is required."))?;
    let mailbox = mailbox_of(sim, &resource).ok_or_else(|| {
        Reply::error(404, "ExtensionError", &format!("Operation: Create; Exception: [Status Code: NotFound; Reason: The resource {resource:?} is not a known user's events.]"))
    })?;
    let change_type = wanted.change_type.clone().unwrap_or_default();
    if change_type.is_empty()
        || !change_type
            .split(',')
            .all(|c| matches!(c.trim(), "created" | "updated" | "deleted"))
    {
        return Err(Reply::error(
            400,
            "InvalidRequest",
            &format!("changeType {change_type:?} must be created, updated and/or deleted."),
        ));
    }
    let notification_url = wanted
        .notification_url
        .clone()
        .filter(|u| u.starts_with("https://") || u.starts_with("http://"))
        .ok_or_else(|| {
            Reply::error(
                400,
                "InvalidRequest",
                "notificationUrl must be an https:// URL.",
            )
        })?;
    if wanted
        .client_state
        .as_ref()
        .is_some_and(|c| c.chars().count() > MAX_CLIENT_STATE)
    {
        return Err(Reply::error(
            400,
            "InvalidRequest",
            &format!("clientState is longer than {MAX_CLIENT_STATE} characters."),
        ));
    }
    let expires = expiry_of(wanted.expiration_date_time.as_deref())?;
    if graph.subscriptions.of_mailbox(mailbox).len() >= MAX_PER_MAILBOX {
        return Err(limit());
    }
    let fail = |why: String| {
        sim.stats.rejected("graph_validation_failed");
        Reply::error(
            400,
            "ValidationError",
            &format!(
                "Subscription validation request failed. Notification endpoint must respond with 200 OK to validation request. ({why})"
            ),
        )
    };
    graph
        .delivery
        .validate(&notification_url)
        .await
        .map_err(fail)?;
    if let Some(lifecycle) = wanted.lifecycle_notification_url.as_deref()
        && lifecycle != notification_url
    {
        graph.delivery.validate(lifecycle).await.map_err(fail)?;
    }
    let subscription = GraphSubscription {
        id: new_guid(),
        mailbox,
        resource,
        change_type,
        notification_url,
        lifecycle_url: wanted.lifecycle_notification_url.clone(),
        client_state: wanted.client_state.clone(),
        expires,
    };
    graph
        .subscriptions
        .insert(subscription.clone())
        .map_err(|()| limit())?;
    Ok(Reply::of(201, &subscription.wire()))
}

fn limit() -> Reply {
    Reply::error(
        403,
        "ExtensionError",
        &format!(
            "Operation: Create; Exception: [Status Code: Forbidden; Reason: The maximum number of subscriptions ({MAX_PER_MAILBOX}) for this mailbox has been reached.]"
        ),
    )
}

impl Sim {
    /// Notifies every Graph subscription of `mailbox` that event `number` changed.
    pub fn notify_graph(&self, mailbox: usize, change: ChangeType, number: u32) {
        let Some(graph) = self.graph.as_ref() else {
            return;
        };
        let address = self.directory.address(mailbox);
        let event = super::calendar::event_id(mailbox, number);
        for s in graph.subscriptions.of_mailbox(mailbox) {
            if !s
                .change_type
                .split(',')
                .any(|c| c.trim() == change_name(change))
            {
                continue;
            }
            let resource = format!("Users/{address}/Events/{event}");
            let collection = ChangeNotificationCollection {
                value: vec![s.notification(Some(change), Some(resource), None)],
            };
            self.stats.events(1);
            if !graph
                .delivery
                .notify(s.notification_url.clone(), collection)
            {
                self.stats.rejected("graph_notification_queue_full");
            }
        }
    }

    /// Raises `event` on every Graph subscription of `mailbox` (removing them first
    /// for `subscriptionRemoved`); how many were told.
    pub fn graph_lifecycle(&self, mailbox: usize, event: LifecycleEvent) -> usize {
        let Some(graph) = self.graph.as_ref() else {
            return 0;
        };
        let subscriptions = graph.subscriptions.of_mailbox(mailbox);
        for s in &subscriptions {
            self.graph_lifecycle_one(s, event);
        }
        subscriptions.len()
    }

    /// Raises `event` on subscription `s` (removing it first for
    /// `subscriptionRemoved`).
    pub fn graph_lifecycle_one(&self, s: &GraphSubscription, event: LifecycleEvent) {
        let Some(graph) = self.graph.as_ref() else {
            return;
        };
        if event == LifecycleEvent::SubscriptionRemoved {
            graph.subscriptions.remove(&s.id);
        }
        let url = s
            .lifecycle_url
            .clone()
            .unwrap_or_else(|| s.notification_url.clone());
        let collection = ChangeNotificationCollection {
            value: vec![s.notification(None, None, Some(event))],
        };
        if !graph.delivery.notify(url, collection) {
            self.stats.rejected("graph_notification_queue_full");
        }
    }
}

fn change_name(change: ChangeType) -> &'static str {
    match change {
        ChangeType::Created => "created",
        ChangeType::Updated => "updated",
        ChangeType::Deleted => "deleted",
    }
}

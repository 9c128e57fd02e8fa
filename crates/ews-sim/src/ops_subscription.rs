//! Subscribe (streaming, calendar folder) and Unsubscribe, with impersonation,
//! delegate-access refusal, affinity routing and the affinity cookie.

use std::sync::Arc;

use super::Sim;
use super::endpoint::{CallContext, Reply, folder_mailbox};
use super::request::Request;
use super::soap_out::{self, Failure};
use ews::ops::get_streaming_events::EventKind;

/// A subscribable `EventType` (StatusEvent and unknown names are not).
fn event_kind(name: &str) -> Option<EventKind> {
    match EventKind::from_local(name.trim()) {
        EventKind::Status | EventKind::Other(_) => None,
        kind => Some(kind),
    }
}

/// What a Subscribe asks for: the mailbox, event kinds, and whether it used delegate
/// access.
fn read_subscribe(
    sim: &Sim,
    ctx: &CallContext,
    req: &Request<'_, '_>,
) -> Result<(usize, Vec<EventKind>), Failure> {
    let streaming = req
        .operation
        .ews_child("StreamingSubscriptionRequest")
        .ok_or_else(|| {
            Failure::new(
                "ErrorInvalidSubscriptionRequest",
                "The simulator offers streaming subscriptions only.",
            )
        })?;
    let folders: Vec<_> = streaming
        .ews_child("FolderIds")
        .map(|f| f.children().filter(|c| c.ns().is_ews()).collect())
        .unwrap_or_default();
    if folders.len() != 1 {
        return Err(Failure::new(
            "ErrorInvalidSubscriptionRequest",
            "Subscribe to exactly one folder: the calendar.",
        ));
    }
    let folder = folders[0];
    let (is_calendar, delegate) = match folder.local() {
        "DistinguishedFolderId" => (
            folder.attr("Id") == Some("calendar"),
            folder_mailbox(folder),
        ),
        _ => (false, None),
    };
    if !is_calendar {
        return Err(Failure::new(
            "ErrorFolderNotFound",
            "The simulator models only the calendar distinguished folder.",
        ));
    }
    let mut kinds = Vec::new();
    for e in streaming
        .ews_child("EventTypes")
        .into_iter()
        .flat_map(|t| t.ews_children("EventType"))
    {
        let kind = event_kind(e.text()).ok_or_else(|| {
            Failure::new(
                "ErrorInvalidRequest",
                format!("Unknown EventType {}", e.text()),
            )
        })?;
        kinds.push(kind);
    }
    if kinds.is_empty() {
        return Err(Failure::new("ErrorInvalidRequest", "EventTypes is empty."));
    }
    let mailbox = match (&req.impersonate, delegate) {
        (None, Some(other)) if other != ctx.account => {
            return Err(match sim.directory.lookup(&other) {
                Some(_) => Failure::new(
                    "ErrorSubscriptionDelegateAccessNotSupported",
                    "Subscriptions are not supported for delegate user access.",
                ),
                None => Failure::new("ErrorNonExistentMailbox", format!("No mailbox for {other}")),
            });
        }
        _ => sim.acting_mailbox(ctx, req)?,
    };
    Ok((mailbox, kinds))
}

/// `Subscribe`.
pub fn subscribe(sim: &Arc<Sim>, ctx: &CallContext, req: &Request<'_, '_>) -> Reply {
    let result = read_subscribe(sim, ctx, req).and_then(|(mailbox, kinds)| {
        let backend = sim.route(ctx, sim.backend_of(mailbox));
        if sim.moved_from(mailbox) == Some(backend) {
            // The server the mailbox left will not serve it any more.
            return Err(Failure::new(
                "ErrorProxyRequestNotAllowed",
                "The mailbox has moved to another server; the request was routed to the old one.",
            ));
        }
        if backend != sim.backend_of(mailbox) {
            sim.stats.subscribed_off_home();
        }
        let owner = sim.subscription_identity(&ctx.account, req.impersonate.as_deref());
        let subscription =
            sim.registry
                .create(mailbox, backend, &owner, kinds, tokio::time::Instant::now());
        Ok((subscription.id.clone(), backend))
    });
    let set_cookie = match &result {
        Ok((_, backend)) if ctx.prefer_affinity && ctx.cookie_backend.is_none() => {
            Some(sim.affinity_cookie(*backend))
        }
        _ => None,
    };
    let body = soap_out::messages("Subscribe", [result], |w, (id, _)| {
        w.leaf("m:SubscriptionId", &id);
    });
    Reply::Xml {
        status: 200,
        body,
        set_cookie,
    }
}

/// `Unsubscribe`: only the owner may, and only on the backend hosting it.
pub fn unsubscribe(sim: &Arc<Sim>, ctx: &CallContext, req: &Request<'_, '_>) -> Reply {
    let result = (|| {
        let id = req
            .operation
            .ews_child("SubscriptionId")
            .map(|e| e.text())
            .ok_or_else(|| Failure::new("ErrorInvalidRequest", "SubscriptionId is missing."))?;
        let not_found = || {
            Failure::new(
                "ErrorSubscriptionNotFound",
                "The specified subscription was not found.",
            )
        };
        let subscription = sim.registry.get(id).ok_or_else(not_found)?;
        if sim.route(ctx, subscription.backend) != subscription.backend {
            return Err(not_found());
        }
        if subscription.owner != sim.subscription_identity(&ctx.account, req.impersonate.as_deref())
        {
            return Err(Failure::new(
                "ErrorSubscriptionAccessDenied",
                "Only the user that created a subscription may use it.",
            ));
        }
        sim.registry
            .remove(&subscription, super::subscriptions::Gone::Unsubscribed);
        Ok(())
    })();
    Reply::ok(soap_out::messages("Unsubscribe", [result], |_, ()| {}))
}

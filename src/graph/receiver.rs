//! The notification endpoint on our API listener, `POST /graph/notifications` (also
//! `/graph/lifecycle`): what Graph, and anyone else on the internet, posts there.
//!
//! - A validation request (`?validationToken=…`) is answered with the token as
//!   `text/plain`, at once.
//! - Every notification must name a subscription we hold and carry its `clientState`
//!   (compared in constant time); anything else is dropped and counted
//!   (`ews_presence_graph_notifications_rejected_total{reason}`): nothing from a
//!   stranger reaches a mailbox.
//! - A change marks the mailbox in its gateway's refresh queue (debounced, batched:
//!   exactly as an EWS event); a lifecycle event goes to the gateway's subscription
//!   table (`missed` re-reads the mailbox). Nothing here waits on Graph: the answer
//!   (202) goes at once, whatever the work behind it.

use std::sync::Arc;

use subtle::ConstantTimeEq;

use super::gateway::GraphGateway;
use super::subscriptions::{Directory, Effects, Subscriptions};
use graph::notification::{ChangeNotificationCollection, LifecycleEvent};

/// Largest notification body read (Graph batches notifications; a collection of a
/// few hundred fits well within).
pub const MAX_BODY: usize = 1024 * 1024;
/// Longest validation token echoed.
const MAX_TOKEN: usize = 4096;

/// What the receiver answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// Content type.
    pub content_type: &'static str,
    /// Body.
    pub body: String,
}

/// One Graph gateway as the receiver sees it.
#[derive(Debug, Clone)]
pub struct Route {
    /// The gateway.
    pub gateway: Arc<GraphGateway>,
    /// Its subscriptions.
    pub subscriptions: Arc<Subscriptions>,
}

/// The receiver of every Graph gateway.
#[derive(Debug)]
pub struct Receiver {
    directory: Arc<Directory>,
    routes: Vec<(usize, Route)>,
}

impl Receiver {
    /// Over `directory`, for the gateways in `routes` (by index).
    pub fn new(directory: Arc<Directory>, routes: Vec<(usize, Route)>) -> Receiver {
        Receiver { directory, routes }
    }

    /// The Graph gateways it serves.
    pub fn gateways(&self) -> Vec<Arc<GraphGateway>> {
        self.routes.iter().map(|(_, r)| r.gateway.clone()).collect()
    }

    fn route(&self, gateway: usize) -> Option<&Route> {
        self.routes
            .iter()
            .find(|(i, _)| *i == gateway)
            .map(|(_, r)| r)
    }

    /// Answers one POST with `query` and `body`.
    pub fn handle(&self, query: Option<&str>, body: &[u8]) -> Reply {
        if let Some(token) = validation_token(query) {
            if token.len() > MAX_TOKEN {
                super::metrics::rejected("malformed");
                return Reply {
                    status: 400,
                    content_type: "text/plain",
                    body: "validation token too long\n".into(),
                };
            }
            return Reply {
                status: 200,
                content_type: "text/plain",
                body: token,
            };
        }
        let accepted = Reply {
            status: 202,
            content_type: "text/plain",
            body: String::new(),
        };
        let collection: ChangeNotificationCollection = match serde_json::from_slice(body) {
            Ok(c) => c,
            Err(e) => {
                super::metrics::rejected("malformed");
                tracing::debug!(error = %e, "a POST to the Graph notification URL is not a notification collection");
                return Reply {
                    status: 400,
                    content_type: "text/plain",
                    body: "not a change notification collection\n".into(),
                };
            }
        };
        for n in &collection.value {
            let Some(target) = self.directory.get(&n.subscription_id).map(|t| t.clone()) else {
                super::metrics::rejected("unknown_subscription");
                continue;
            };
            let given = n.client_state.as_deref().unwrap_or_default().as_bytes();
            if !bool::from(given.ct_eq(target.client_state.as_bytes())) {
                super::metrics::rejected("client_state");
                tracing::debug!(subscription = %n.subscription_id, "a Graph notification with the wrong clientState was dropped");
                continue;
            }
            let Some(route) = self.route(target.gateway) else {
                continue;
            };
            route.gateway.count_notification();
            match n.lifecycle_event {
                None => {
                    super::metrics::notification("change");
                    route.gateway.refresh.mark(&target.mailbox);
                }
                Some(event) => {
                    super::metrics::notification(event.as_str());
                    tracing::info!(gateway = %route.gateway.name(), mailbox = %target.mailbox, event = event.as_str(), "Graph lifecycle event");
                    let mut effects = Effects::default();
                    common::sync::lock(&route.subscriptions.table).lifecycle(
                        &target.mailbox,
                        &n.subscription_id,
                        event,
                        tokio::time::Instant::now(),
                        &mut effects,
                    );
                    for id in effects.forget {
                        self.directory.remove(&id);
                    }
                    for mailbox in effects.reread {
                        route.gateway.refresh.mark_full(&mailbox);
                    }
                    if event != LifecycleEvent::Missed {
                        route.subscriptions.wake.notify_one();
                    }
                }
            }
        }
        accepted
    }
}

/// The `validationToken` of a query, decoded.
fn validation_token(query: Option<&str>) -> Option<String> {
    query?
        .split('&')
        .find_map(|pair| pair.strip_prefix("validationToken="))
        .map(common::percent::decode_form)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn receiver() -> Receiver {
        Receiver::new(Arc::new(Directory::new()), Vec::new())
    }

    #[test]
    fn the_validation_token_is_echoed_as_text() {
        let r = receiver().handle(
            Some("validationToken=Validation%3A+Testing+client+application+reachability"),
            b"",
        );
        assert_eq!(r.status, 200);
        assert_eq!(r.content_type, "text/plain");
        assert_eq!(
            r.body,
            "Validation: Testing client application reachability"
        );
        let long = format!("validationToken={}", "a".repeat(MAX_TOKEN + 1));
        assert_eq!(receiver().handle(Some(&long), b"").status, 400);
    }

    #[test]
    fn strangers_are_answered_and_change_nothing() {
        // Not JSON, or not a collection: 400.
        assert_eq!(receiver().handle(None, b"<xml/>").status, 400);
        assert_eq!(receiver().handle(None, br#"{"value": 3}"#).status, 400);
        // A well-formed notification for a subscription nobody holds: accepted (as
        // Graph expects an answer), dropped.
        let body = br#"{"value":[{"subscriptionId":"7f105c7d-2dc5-4530-97cd-4e7ae6534c07","clientState":"x","changeType":"updated"}]}"#;
        let r = receiver().handle(None, body);
        assert_eq!((r.status, r.body.as_str()), (202, ""));
    }
}

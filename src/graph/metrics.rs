//! The Graph gateways' metrics, on the `metrics` facade. The gateway name is the only
//! free-form label; no per-mailbox labels.

use std::time::Duration;

use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};

/// Graph requests by gateway, operation and outcome.
pub const REQUESTS: &str = "ews_presence_graph_requests_total";
/// Graph request duration by operation.
pub const DURATION: &str = "ews_presence_graph_request_duration_seconds";
/// Token requests by gateway and outcome.
pub const TOKENS: &str = "ews_presence_graph_token_requests_total";
/// Notifications accepted, by kind (change, missed, subscriptionRemoved,
/// reauthorizationRequired).
pub const NOTIFICATIONS: &str = "ews_presence_graph_notifications_total";
/// Notifications dropped, by reason (client_state, unknown_subscription, malformed,
/// too_large).
pub const REJECTED: &str = "ews_presence_graph_notifications_rejected_total";
/// Subscriptions held.
pub const SUBSCRIPTIONS: &str = "ews_presence_graph_subscriptions";
/// Subscription requests by gateway, operation and outcome.
pub const SUBSCRIPTION_OPS: &str = "ews_presence_graph_subscription_requests_total";

/// Every metric of the Graph gateways.
pub const NAMES: &[&str] = &[
    REQUESTS,
    DURATION,
    TOKENS,
    NOTIFICATIONS,
    REJECTED,
    SUBSCRIPTIONS,
    SUBSCRIPTION_OPS,
];

/// Histogram buckets, by metric.
pub const BUCKETS: &[(&str, &[f64])] = &[(
    DURATION,
    &[
        0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    ],
)];

/// Describes them to the installed recorder.
pub fn describe() {
    describe_counter!(
        REQUESTS,
        "Microsoft Graph requests, by gateway, operation and outcome (ok, error, throttled, not_sent)."
    );
    describe_histogram!(
        DURATION,
        metrics::Unit::Seconds,
        "Microsoft Graph request duration."
    );
    describe_counter!(TOKENS, "OAuth token requests, by gateway and outcome.");
    describe_counter!(
        NOTIFICATIONS,
        "Graph notifications accepted, by kind (change, missed, subscriptionRemoved, reauthorizationRequired)."
    );
    describe_counter!(
        REJECTED,
        "Graph notifications dropped, by reason (client_state: not the secret we set; unknown_subscription; malformed; too_large)."
    );
    describe_gauge!(
        SUBSCRIPTIONS,
        "Graph change-notification subscriptions held, by gateway."
    );
    describe_counter!(
        SUBSCRIPTION_OPS,
        "Graph subscription requests, by gateway, operation (create, renew, reauthorize, delete) and outcome."
    );
}

/// One Graph request finished.
pub fn request(gateway: &str, operation: &'static str, outcome: &'static str, took: Duration) {
    counter!(REQUESTS, "gateway" => gateway.to_owned(), "operation" => operation, "outcome" => outcome).increment(1);
    if outcome != "not_sent" {
        histogram!(DURATION, "operation" => operation).record(took.as_secs_f64());
    }
}

/// One token request finished.
pub fn token_request(gateway: &str, outcome: &'static str, _took: Duration) {
    counter!(TOKENS, "gateway" => gateway.to_owned(), "outcome" => outcome).increment(1);
}

/// Graph asked us to wait.
pub fn throttled(gateway: &str, wait: Duration) {
    crate::engine::metrics::throttled(gateway, wait);
}

/// A notification was accepted.
pub fn notification(kind: &'static str) {
    counter!(NOTIFICATIONS, "kind" => kind).increment(1);
}

/// A notification was dropped.
pub fn rejected(reason: &'static str) {
    counter!(REJECTED, "reason" => reason).increment(1);
}

/// Subscriptions held by a gateway now.
pub fn subscriptions(gateway: &str, held: usize) {
    gauge!(SUBSCRIPTIONS, "gateway" => gateway.to_owned()).set(held as f64);
}

/// One subscription request finished.
pub fn subscription_request(gateway: &str, operation: &'static str, outcome: &'static str) {
    counter!(SUBSCRIPTION_OPS, "gateway" => gateway.to_owned(), "operation" => operation, "outcome" => outcome).increment(1);
}

//! Metric names, descriptions and the helpers the rest of the program calls. Prefix
//! `ews_presence_`, base units, `_total` counters, no per-mailbox labels (the gateway
//! name is the only free-form label, and gateways are few and configured).

use std::sync::OnceLock;
use std::time::Duration;

use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::presence::timeline::Availability;

/// Mailboxes by availability.
pub const MAILBOXES: &str = "ews_presence_mailboxes";
/// Live subscriptions.
pub const SUBSCRIPTIONS_LIVE: &str = "ews_presence_subscriptions_live";
/// Mailboxes that could not be subscribed.
pub const SUBSCRIPTIONS_FAILED: &str = "ews_presence_subscriptions_failed";
/// Open streaming connections.
pub const STREAMS_OPEN: &str = "ews_presence_streaming_connections_open";
/// Notifications received.
pub const NOTIFICATIONS: &str = "ews_presence_notifications_received_total";
/// Events received, by type.
pub const EVENTS: &str = "ews_presence_events_received_total";
/// EWS requests by operation and outcome.
pub const EWS_REQUESTS: &str = "ews_presence_ews_requests_total";
/// EWS request duration by operation.
pub const EWS_DURATION: &str = "ews_presence_ews_request_duration_seconds";
/// Stream reconnects by reason.
pub const RECONNECTS: &str = "ews_presence_reconnects_total";
/// Resubscriptions by reason.
pub const RESUBSCRIBES: &str = "ews_presence_resubscribes_total";
/// Mailboxes per GetUserAvailability batch.
pub const REFRESH_BATCH: &str = "ews_presence_refresh_batch_size";
/// From event receipt to refreshed state.
pub const EVENT_TO_STATE: &str = "ews_presence_event_to_state_seconds";
/// Availability transitions by target.
pub const TRANSITIONS: &str = "ews_presence_transitions_total";
/// Time spent waiting on server throttling.
pub const THROTTLED: &str = "ews_presence_throttled_seconds_total";
/// API requests by route and status.
pub const API_REQUESTS: &str = "ews_presence_api_requests_total";
/// API request duration by route.
pub const API_DURATION: &str = "ews_presence_api_request_duration_seconds";
/// Build information.
pub const BUILD_INFO: &str = "ews_presence_build_info";

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the process-wide recorder once and returns its handle (`None` if another
/// recorder was installed first).
pub fn install() -> Option<PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full(EWS_DURATION.into()),
                    &[
                        0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
                    ],
                )
                .ok()?
                .set_buckets_for_metric(
                    Matcher::Full(EVENT_TO_STATE.into()),
                    &[
                        0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0,
                    ],
                )
                .ok()?
                .set_buckets_for_metric(
                    Matcher::Full(API_DURATION.into()),
                    &[
                        0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                    ],
                )
                .ok()?
                .set_buckets_for_metric(
                    Matcher::Full(REFRESH_BATCH.into()),
                    &[1.0, 2.0, 5.0, 10.0, 25.0, 50.0, 100.0],
                )
                .ok()?;
            let handle = builder.install_recorder().ok()?;
            describe();
            gauge!(BUILD_INFO, "version" => env!("CARGO_PKG_VERSION")).set(1.0);
            Some(handle)
        })
        .clone()
}

fn describe() {
    describe_gauge!(MAILBOXES, "Configured mailboxes by current availability.");
    describe_gauge!(
        SUBSCRIPTIONS_LIVE,
        "Streaming subscriptions currently held."
    );
    describe_gauge!(
        SUBSCRIPTIONS_FAILED,
        "Mailboxes that could not be subscribed (unknown presence)."
    );
    describe_gauge!(
        STREAMS_OPEN,
        "GetStreamingEvents connections currently open."
    );
    describe_counter!(NOTIFICATIONS, "Notification elements received on streams.");
    describe_counter!(EVENTS, "Notification events received, by event type.");
    describe_counter!(EWS_REQUESTS, "EWS requests sent, by operation and outcome.");
    describe_histogram!(
        EWS_DURATION,
        metrics::Unit::Seconds,
        "EWS request duration until the answer (streams: until headers)."
    );
    describe_counter!(RECONNECTS, "Streaming reconnects, by reason.");
    describe_counter!(
        RESUBSCRIBES,
        "Subscriptions created again after being lost, by reason."
    );
    describe_histogram!(REFRESH_BATCH, "Mailboxes per GetUserAvailability request.");
    describe_histogram!(
        EVENT_TO_STATE,
        metrics::Unit::Seconds,
        "Time from receiving a notification to the refreshed presence."
    );
    describe_counter!(
        TRANSITIONS,
        "Availability transitions published, by target availability."
    );
    describe_counter!(
        THROTTLED,
        metrics::Unit::Seconds,
        "Seconds spent waiting because the server throttled us."
    );
    describe_counter!(API_REQUESTS, "HTTP API requests, by route and status.");
    describe_histogram!(
        API_DURATION,
        metrics::Unit::Seconds,
        "HTTP API request duration, by route."
    );
    describe_gauge!(BUILD_INFO, "Build information.");
}

/// A published transition to `to`. The four counters are resolved once: a storm
/// publishes one transition per mailbox at the same instant.
pub fn transition(to: Availability) {
    static COUNTERS: OnceLock<[metrics::Counter; 4]> = OnceLock::new();
    let counters = COUNTERS
        .get_or_init(|| Availability::ALL.map(|a| counter!(TRANSITIONS, "to" => a.as_str())));
    let index = Availability::ALL.iter().position(|a| *a == to).unwrap_or(0);
    counters[index].increment(1);
}

/// Sets the per-availability mailbox gauges.
pub fn mailbox_counts(counts: &[(Availability, usize)]) {
    for (availability, n) in counts {
        gauge!(MAILBOXES, "availability" => availability.as_str()).set(*n as f64);
    }
}

/// One EWS request finished.
pub fn ews_request(gateway: &str, operation: &'static str, outcome: &'static str, took: Duration) {
    counter!(EWS_REQUESTS, "gateway" => gateway.to_owned(), "operation" => operation, "outcome" => outcome).increment(1);
    histogram!(EWS_DURATION, "operation" => operation).record(took.as_secs_f64());
}

/// Events of one notification frame.
pub fn events(kind: &str, n: u64) {
    let kind = match kind {
        "CreatedEvent"
        | "DeletedEvent"
        | "ModifiedEvent"
        | "MovedEvent"
        | "CopiedEvent"
        | "NewMailEvent"
        | "FreeBusyChangedEvent"
        | "StatusEvent" => kind.to_owned(),
        _ => "other".to_owned(),
    };
    counter!(EVENTS, "type" => kind).increment(n);
}

/// Notifications received.
pub fn notifications(n: u64) {
    counter!(NOTIFICATIONS).increment(n);
}

/// A stream reconnect.
pub fn reconnect(reason: &'static str) {
    counter!(RECONNECTS, "reason" => reason).increment(1);
}

/// A resubscription.
pub fn resubscribe(reason: &'static str) {
    counter!(RESUBSCRIBES, "reason" => reason).increment(1);
}

/// Time spent throttled.
pub fn throttled(gateway: &str, wait: Duration) {
    counter!(THROTTLED, "gateway" => gateway.to_owned()).increment(wait.as_secs());
}

/// A refresh batch size.
pub fn refresh_batch(n: usize) {
    histogram!(REFRESH_BATCH).record(n as f64);
}

/// Event receipt to refreshed state.
pub fn event_to_state(took: Duration) {
    histogram!(EVENT_TO_STATE).record(took.as_secs_f64());
}

/// Gauges of one gateway.
pub fn gateway_gauges(gateway: &str, live: usize, failed: usize, streams: usize) {
    gauge!(SUBSCRIPTIONS_LIVE, "gateway" => gateway.to_owned()).set(live as f64);
    gauge!(SUBSCRIPTIONS_FAILED, "gateway" => gateway.to_owned()).set(failed as f64);
    gauge!(STREAMS_OPEN, "gateway" => gateway.to_owned()).set(streams as f64);
}

/// One API request.
pub fn api_request(route: &'static str, status: u16, took: Duration) {
    counter!(API_REQUESTS, "route" => route, "status" => status.to_string()).increment(1);
    histogram!(API_DURATION, "route" => route).record(took.as_secs_f64());
}

//! The engine's metrics, on the `metrics` facade: names, descriptions and the helpers
//! the engine calls. Prefix `ews_presence_`, base units, `_total` counters, no
//! per-mailbox labels (the gateway name is the only free-form label).

use std::time::Duration;

use ews::error::EwsError;
use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};

use super::group::state::GroupStatus;

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
/// Refreshes that failed and were queued again, by operation.
pub const REFRESH_FAILURES: &str = "ews_presence_refresh_failures_total";
/// From event receipt to refreshed state.
pub const EVENT_TO_STATE: &str = "ews_presence_event_to_state_seconds";
/// Waits the server asked for (its `_sum` is the time spent throttled).
pub const THROTTLE_WAIT: &str = "ews_presence_throttle_wait_seconds";

/// Every metric the engine records.
pub const NAMES: &[&str] = &[
    SUBSCRIPTIONS_LIVE,
    SUBSCRIPTIONS_FAILED,
    STREAMS_OPEN,
    NOTIFICATIONS,
    EVENTS,
    EWS_REQUESTS,
    EWS_DURATION,
    RECONNECTS,
    RESUBSCRIBES,
    REFRESH_BATCH,
    REFRESH_FAILURES,
    EVENT_TO_STATE,
    THROTTLE_WAIT,
];

/// Histogram buckets, by metric.
pub const BUCKETS: &[(&str, &[f64])] = &[
    (
        EWS_DURATION,
        &[
            0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
        ],
    ),
    (
        EVENT_TO_STATE,
        &[
            0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0,
        ],
    ),
    (REFRESH_BATCH, &[1.0, 2.0, 5.0, 10.0, 25.0, 50.0, 100.0]),
    (
        THROTTLE_WAIT,
        &[0.1, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0],
    ),
];

/// Describes the engine's metrics to the installed recorder.
pub fn describe() {
    describe_gauge!(
        SUBSCRIPTIONS_LIVE,
        "Streaming subscriptions currently held."
    );
    describe_gauge!(
        SUBSCRIPTIONS_FAILED,
        "Mailboxes whose Subscribe was refused (unknown presence until retried)."
    );
    describe_gauge!(
        STREAMS_OPEN,
        "GetStreamingEvents connections currently open."
    );
    describe_counter!(NOTIFICATIONS, "Notification elements received on streams.");
    describe_counter!(EVENTS, "Notification events received, by event type.");
    describe_counter!(
        EWS_REQUESTS,
        "EWS requests, by operation and outcome (ok, error, or not_sent: held back by the credential gate)."
    );
    describe_histogram!(
        EWS_DURATION,
        metrics::Unit::Seconds,
        "EWS request duration until the answer (streams: until headers)."
    );
    describe_counter!(RECONNECTS, "Streaming reconnects, by gateway and reason.");
    describe_counter!(
        RESUBSCRIBES,
        "Subscriptions created again after being lost, by reason."
    );
    describe_histogram!(REFRESH_BATCH, "Mailboxes per GetUserAvailability request.");
    describe_counter!(
        REFRESH_FAILURES,
        "Mailbox refreshes that failed and were queued again, by gateway and operation."
    );
    describe_histogram!(
        EVENT_TO_STATE,
        metrics::Unit::Seconds,
        "Time from receiving a notification to the refreshed presence."
    );
    describe_histogram!(
        THROTTLE_WAIT,
        metrics::Unit::Seconds,
        "Waits the server asked for by throttling; the sum is the time spent throttled."
    );
}

/// The `outcome` label of a finished request: `ok`, `error`, or `not_sent` when the
/// credential gate held it back (so no server was asked).
pub fn outcome_of<T>(result: &Result<T, EwsError>) -> &'static str {
    result.as_ref().err().map_or("ok", failure_outcome)
}

/// The `outcome` label of a failed request: `not_sent` or `error`.
pub fn failure_outcome(error: &EwsError) -> &'static str {
    if error.was_not_sent() {
        "not_sent"
    } else {
        "error"
    }
}

/// One EWS request finished (or was held back: then it has no duration).
pub fn ews_request(gateway: &str, operation: &'static str, outcome: &'static str, took: Duration) {
    ews_outcome(gateway, operation, outcome);
    if outcome != "not_sent" {
        ews_duration(operation, took);
    }
}

/// How an EWS request ended.
pub fn ews_outcome(gateway: &str, operation: &'static str, outcome: &'static str) {
    counter!(EWS_REQUESTS, "gateway" => gateway.to_owned(), "operation" => operation, "outcome" => outcome).increment(1);
}

/// How long an EWS request took to answer (a stream: until its headers).
pub fn ews_duration(operation: &'static str, took: Duration) {
    histogram!(EWS_DURATION, "operation" => operation).record(took.as_secs_f64());
}

/// One event of a notification frame.
pub fn event(kind: &str) {
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
    counter!(EVENTS, "type" => kind).increment(1);
}

/// Notifications received.
pub fn notifications(n: u64) {
    counter!(NOTIFICATIONS).increment(n);
}

/// A stream reconnect.
pub fn reconnect(gateway: &str, reason: &'static str) {
    counter!(RECONNECTS, "gateway" => gateway.to_owned(), "reason" => reason).increment(1);
}

/// Subscriptions created again.
pub fn resubscribe(gateway: &str, reason: &'static str, n: usize) {
    counter!(RESUBSCRIBES, "gateway" => gateway.to_owned(), "reason" => reason).increment(n as u64);
}

/// A throttling wait, with sub-second precision.
pub fn throttled(gateway: &str, wait: Duration) {
    histogram!(THROTTLE_WAIT, "gateway" => gateway.to_owned()).record(wait.as_secs_f64());
}

/// A refresh batch size.
pub fn refresh_batch(n: usize) {
    histogram!(REFRESH_BATCH).record(n as f64);
}

/// `n` mailbox refreshes of `operation` failed and were queued again.
pub fn refresh_failed(gateway: &str, operation: &'static str, n: usize) {
    counter!(REFRESH_FAILURES, "gateway" => gateway.to_owned(), "operation" => operation)
        .increment(n as u64);
}

/// Event receipt to refreshed state.
pub fn event_to_state(took: Duration) {
    histogram!(EVENT_TO_STATE).record(took.as_secs_f64());
}

/// A group's status went from `before` to `after`: moves the gateway's gauges by the
/// difference, so they always sum every group's current status.
pub fn group_status(gateway: &str, before: Option<&GroupStatus>, after: Option<&GroupStatus>) {
    let of = |s: Option<&GroupStatus>| {
        s.map_or((0.0, 0.0, 0.0), |s| {
            (
                s.subscribed as f64,
                s.refused as f64,
                f64::from(u8::from(s.stream_open)),
            )
        })
    };
    let (live0, failed0, open0) = of(before);
    let (live1, failed1, open1) = of(after);
    if live1 != live0 {
        gauge!(SUBSCRIPTIONS_LIVE, "gateway" => gateway.to_owned()).increment(live1 - live0);
    }
    if failed1 != failed0 {
        gauge!(SUBSCRIPTIONS_FAILED, "gateway" => gateway.to_owned()).increment(failed1 - failed0);
    }
    if open1 != open0 {
        gauge!(STREAMS_OPEN, "gateway" => gateway.to_owned()).increment(open1 - open0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use metrics_exporter_prometheus::PrometheusBuilder;

    #[test]
    fn throttling_is_counted_below_a_second() {
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        metrics::with_local_recorder(&recorder, || {
            throttled("gw", Duration::from_millis(999));
            throttled("gw", Duration::from_millis(250));
        });
        let text = handle.render();
        let sum = text
            .lines()
            .find_map(|l| l.strip_prefix("ews_presence_throttle_wait_seconds_sum{gateway=\"gw\"} "))
            .unwrap_or_else(|| panic!("no throttle sum in:\n{text}"));
        assert!((sum.parse::<f64>().unwrap() - 1.249).abs() < 1e-9, "{sum}");
        assert!(
            text.contains("ews_presence_throttle_wait_seconds_count{gateway=\"gw\"} 2"),
            "{text}"
        );
    }
}

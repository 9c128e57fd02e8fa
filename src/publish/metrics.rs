//! The publishers' metrics, on the `metrics` facade: names, descriptions, buckets and
//! the helpers the driver calls. The server's configured name is the only free-form
//! label; no per-user labels.

use std::time::Duration;

use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};

use super::state::Counts;

/// PUBLISH requests by server, kind and outcome.
pub const PUBLISH: &str = "ews_presence_sip_publish_total";
/// From sending a PUBLISH to its final response (or failure).
pub const PUBLISH_DURATION: &str = "ews_presence_sip_publish_duration_seconds";
/// Presentities waiting for their turn.
pub const QUEUE_DEPTH: &str = "ews_presence_sip_publish_queue_depth";
/// PUBLISH transactions open.
pub const IN_FLIGHT: &str = "ews_presence_sip_publish_in_flight";
/// Publications the server holds for us.
pub const PUBLICATIONS: &str = "ews_presence_sip_publications";
/// Requests sent again over UDP (timer E): datagrams or their answers lost.
pub const RETRANSMISSIONS: &str = "ews_presence_sip_retransmissions_total";

/// Every metric the publishers record.
pub const NAMES: &[&str] = &[
    PUBLISH,
    PUBLISH_DURATION,
    QUEUE_DEPTH,
    IN_FLIGHT,
    PUBLICATIONS,
];

/// Histogram buckets, by metric.
pub const BUCKETS: &[(&str, &[f64])] = &[(
    PUBLISH_DURATION,
    &[
        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 4.0, 32.0,
    ],
)];

/// Describes the metrics to the installed recorder.
pub fn describe() {
    describe_counter!(
        PUBLISH,
        "SIP PUBLISH requests, by server, kind (initial, modify, refresh, remove) and outcome (ok, unknown_etag, too_brief, retry, refused)."
    );
    describe_histogram!(
        PUBLISH_DURATION,
        metrics::Unit::Seconds,
        "Time from sending a SIP PUBLISH to its final response or failure."
    );
    describe_gauge!(
        QUEUE_DEPTH,
        "Presentities waiting to be published to the SIP server."
    );
    describe_gauge!(IN_FLIGHT, "SIP PUBLISH transactions in flight.");
    describe_gauge!(PUBLICATIONS, "Publications the SIP server holds for us.");
    describe_counter!(
        RETRANSMISSIONS,
        "SIP requests sent again over UDP (timer E): datagrams or their answers were lost."
    );
}

/// One PUBLISH finished.
pub fn published(server: &str, kind: &'static str, outcome: &'static str, took: Duration) {
    counter!(PUBLISH, "server" => server.to_owned(), "kind" => kind, "outcome" => outcome)
        .increment(1);
    histogram!(PUBLISH_DURATION, "server" => server.to_owned()).record(took.as_secs_f64());
}

/// The client's retransmissions since start (the counter is set to it).
pub fn retransmissions(server: &str, total: u64) {
    counter!(RETRANSMISSIONS, "server" => server.to_owned()).absolute(total);
}

/// The server's counts now.
pub fn counts(server: &str, counts: Counts) {
    gauge!(QUEUE_DEPTH, "server" => server.to_owned()).set(counts.queued as f64);
    gauge!(IN_FLIGHT, "server" => server.to_owned()).set(counts.in_flight as f64);
    gauge!(PUBLICATIONS, "server" => server.to_owned()).set(counts.held as f64);
}

//! Installs the Prometheus exporter behind the `metrics` facade and names the API's own
//! metrics. Every other part names and records its own (`engine::metrics`,
//! `presence::metrics`); this module only installs, describes what the API records,
//! collects the process metrics, and renders.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::Duration;

use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// API requests by route and status.
pub const API_REQUESTS: &str = "ews_presence_api_requests_total";
/// API request duration by route.
pub const API_DURATION: &str = "ews_presence_api_request_duration_seconds";
/// Build information.
pub const BUILD_INFO: &str = "ews_presence_build_info";
/// API requests refused for want of a valid token or scope, by reason.
pub const API_AUTH_FAILURES: &str = "ews_presence_api_auth_failures_total";
/// Reloads of the API's TLS files, by result (`ok`, `failed`).
pub const API_TLS_RELOADS: &str = "ews_presence_api_tls_reloads_total";
/// Connections to the HTTPS API that never completed a handshake, by reason
/// (`plain_http`, `handshake`, `timeout`).
pub const API_TLS_HANDSHAKE_FAILURES: &str = "ews_presence_api_tls_handshake_failures_total";

const API_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
];

/// The process metrics `metrics-process` exports (Prometheus's standard names).
const PROCESS_NAMES: &[&str] = &[
    "process_cpu_seconds_total",
    "process_open_fds",
    "process_max_fds",
    "process_virtual_memory_bytes",
    "process_virtual_memory_max_bytes",
    "process_resident_memory_bytes",
    "process_start_time_seconds",
    "process_threads",
];

/// Every metric family `/metrics` can carry (histograms add `_bucket`, `_sum` and
/// `_count` series), for dashboards and alerts to be checked against.
pub fn exported_names() -> Vec<&'static str> {
    let mut names = vec![
        API_REQUESTS,
        API_DURATION,
        BUILD_INFO,
        API_TLS_RELOADS,
        API_TLS_HANDSHAKE_FAILURES,
        API_AUTH_FAILURES,
    ];
    names.extend_from_slice(crate::engine::metrics::NAMES);
    names.extend_from_slice(crate::presence::metrics::NAMES);
    names.extend_from_slice(crate::publish::metrics::NAMES);
    names.extend_from_slice(crate::graph::metrics::NAMES);
    names.extend_from_slice(PROCESS_NAMES);
    names
}

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// The process metrics (`process_cpu_seconds_total`, `process_resident_memory_bytes`,
/// `process_open_fds`, …) from the `metrics-process` crate, unprefixed as Prometheus
/// names them.
static PROCESS: OnceLock<metrics_process::Collector> = OnceLock::new();

/// How often histogram samples are folded into their buckets when nobody scrapes.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// Folds the histograms' recorded samples into their buckets every
/// [`UPKEEP_EVERY`] until `stop`. The exporter keeps every sample recorded between two
/// upkeeps: without this, a daemon that no Prometheus scrapes would hold every latency
/// it ever measured.
pub async fn upkeep(handle: PrometheusHandle, stop: tokio_util::sync::CancellationToken) {
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(UPKEEP_EVERY) => handle.run_upkeep(),
        }
    }
}

/// Reads the process metrics now (before each scrape).
pub fn collect_process() {
    if let Some(collector) = PROCESS.get() {
        collector.collect();
    }
}

/// Installs the process-wide recorder once and returns its handle (`None` if another
/// recorder was installed first).
pub fn install() -> Option<PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let mut builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Full(API_DURATION.into()), API_BUCKETS)
                .ok()?;
            for (name, buckets) in crate::engine::metrics::BUCKETS
                .iter()
                .chain(crate::publish::metrics::BUCKETS)
                .chain(crate::graph::metrics::BUCKETS)
            {
                builder = builder
                    .set_buckets_for_metric(Matcher::Full((*name).into()), buckets)
                    .ok()?;
            }
            let handle = builder.install_recorder().ok()?;
            describe();
            crate::engine::metrics::describe();
            crate::presence::metrics::describe();
            crate::publish::metrics::describe();
            crate::graph::metrics::describe();
            PROCESS
                .get_or_init(metrics_process::Collector::default)
                .describe();
            gauge!(BUILD_INFO, "version" => env!("CARGO_PKG_VERSION")).set(1.0);
            Some(handle)
        })
        .clone()
}

fn describe() {
    describe_counter!(API_REQUESTS, "HTTP API requests, by route and status.");
    describe_histogram!(
        API_DURATION,
        metrics::Unit::Seconds,
        "HTTP API request duration, by route."
    );
    describe_gauge!(BUILD_INFO, "Build information.");
    describe_counter!(
        API_AUTH_FAILURES,
        "API requests refused: no token (missing), an unknown token (invalid), or a token without the scope the route needs (scope)."
    );
    describe_counter!(
        API_TLS_RELOADS,
        "Reloads of the API's TLS certificate files, by result."
    );
    describe_counter!(
        API_TLS_HANDSHAKE_FAILURES,
        "HTTPS API connections that never completed a TLS handshake, by reason."
    );
}

/// A request was refused for `reason`.
pub fn auth_failure(reason: &'static str) {
    counter!(API_AUTH_FAILURES, "reason" => reason).increment(1);
}

/// The API's TLS files were read again (`ok`) or failed to load (`failed`).
pub fn tls_reloaded(result: &'static str) {
    counter!(API_TLS_RELOADS, "result" => result).increment(1);
}

/// A connection to the HTTPS API ended before its handshake completed.
pub fn tls_handshake_failed(reason: &'static str) {
    counter!(API_TLS_HANDSHAKE_FAILURES, "reason" => reason).increment(1);
}

/// One API request. The counter and histogram of each (route, status) are resolved
/// once per thread: resolving allocates the status's text, builds the labelled key
/// and looks it up in the registry, all on the path of every single presence GET.
pub fn api_request(route: &'static str, status: u16, took: Duration) {
    type Handles = (metrics::Counter, metrics::Histogram);
    thread_local! {
        static HANDLES: RefCell<HashMap<(&'static str, u16), Handles>> =
            RefCell::new(HashMap::new());
    }
    HANDLES.with_borrow_mut(|handles| {
        let (requests, duration) = handles.entry((route, status)).or_insert_with(|| {
            (
                counter!(API_REQUESTS, "route" => route, "status" => status.to_string()),
                histogram!(API_DURATION, "route" => route),
            )
        });
        requests.increment(1);
        duration.record(took.as_secs_f64());
    });
}

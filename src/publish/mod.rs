//! Publishing calendar presence to SIP presence servers (Kamailio, OpenSIPS, …) as one
//! more publisher of each user's presence (RFC 3903 PUBLISH with PIDF and RPID): one
//! publisher per `[[sip]]` server, each following the change feed.
//!
//! - [`state`]: what a server holds of ours and what it should hold; which PUBLISH to
//!   send when (pure, tested on a paused clock in `state_tests`).
//! - [`document`]: from a snapshot to the state to publish, the note, the request.
//! - [`driver`]: the I/O around the state: feed, SIP client, timers, shutdown.
//! - [`status`]: what `/v1/publishers` and the status page show.
//! - [`metrics`]: the publishers' metric names.
//!
//! The publishers run on a thread of their own with its own runtime, at a lower
//! priority than the API's: a storm's PUBLISH traffic takes the CPU the API's watchers
//! leave. The SIP wire (messages, transactions, digest, transports) is the `sip`
//! crate's.

use std::sync::Arc;

use jiff::tz::TimeZone;
use sip::client::{Client, ClientConfig};
use sip::transaction::Timers;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::SipConfig;
use crate::engine::backoff::{Random, XorShift};
use crate::presence::cache::Cache;

pub mod document;
mod driver;
pub mod metrics;
pub mod state;
#[cfg(test)]
mod state_tests;
pub mod status;

pub use driver::REMOVAL_GRACE;
use status::{PublisherView, SharedView};

/// A publisher that cannot start.
#[derive(Debug, thiserror::Error)]
pub enum PublisherStartError {
    /// A server's TLS settings cannot be built.
    #[error("[[sip]] {name}: TLS: {source}")]
    Tls {
        /// The server's name.
        name: String,
        /// Why.
        source: ews::transport::TlsConfigError,
    },
    /// The publishers' thread cannot be started.
    #[error("cannot start the SIP publishers' thread: {0}")]
    Thread(std::io::Error),
}

/// The publishers' thread's nice value: below the API's, so that a storm's PUBLISH
/// traffic takes only the CPU the API's watchers leave (the `publish` benchmark's
/// watcher got every transition of a 100,000 storm in 62 ms without publishing and
/// 234 ms with the publisher sharing the runtime).
const NICE: i32 = 10;

/// The running publishers' views, for the API.
#[derive(Debug, Clone, Default)]
pub struct Publishers {
    views: Vec<SharedView>,
}

/// What one server's publisher is built from, on its thread.
struct Plan {
    config: SipConfig,
    tls: Option<Arc<rustls::ClientConfig>>,
    view: SharedView,
    seed: u64,
}

impl Publishers {
    /// Starts one publisher per server, all on a thread of their own at a lower
    /// priority (its own runtime), tracked by `tracker`; they stop (removing what the
    /// servers hold, within [`REMOVAL_GRACE`]) when `stop` is cancelled.
    pub fn start(
        servers: &[SipConfig],
        certs_dir: &std::path::Path,
        cache: &Arc<Cache>,
        stop: &CancellationToken,
        tracker: &TaskTracker,
    ) -> Result<Publishers, PublisherStartError> {
        if servers.is_empty() {
            return Ok(Publishers::default());
        }
        let mut plans = Vec::with_capacity(servers.len());
        let mut seeds = XorShift::from_time();
        for config in servers {
            let tls = if config.uses_tls() {
                Some(
                    ews::transport::client_tls(config.ca_file.as_deref(), certs_dir).map_err(
                        |source| PublisherStartError::Tls {
                            name: config.name.clone(),
                            source,
                        },
                    )?,
                )
            } else {
                None
            };
            let view = SharedView::new(PublisherView {
                name: config.name.clone(),
                server: config.server.to_string(),
                transport: config.server.effective_transport().to_string(),
                connected: false,
                publications: 0,
                in_flight: 0,
                queued: 0,
                last_error: None,
                retry_at: None,
                expires_secs: config.expires_secs,
                accepted: 0,
                failed: 0,
                retransmissions: 0,
            });
            plans.push(Plan {
                config: config.clone(),
                tls,
                view,
                seed: seeds.next_u64(),
            });
        }
        let views = plans.iter().map(|p| p.view.clone()).collect();
        let (finished, done) = tokio::sync::oneshot::channel::<()>();
        let (cache, stop) = (cache.clone(), stop.clone());
        std::thread::Builder::new()
            .name("sip-publish".into())
            .spawn(move || {
                lower_priority();
                match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime.block_on(run_all(plans, cache, stop)),
                    Err(e) => {
                        tracing::error!(error = %e, "cannot start the SIP publishers' runtime")
                    }
                }
                let _ = finished.send(());
            })
            .map_err(PublisherStartError::Thread)?;
        // Shutdown waits for the removals like for every other task.
        tracker.spawn(async move {
            let _ = done.await;
        });
        Ok(Publishers { views })
    }

    /// Every server's view now.
    pub fn views(&self) -> Vec<PublisherView> {
        self.views.iter().map(SharedView::get).collect()
    }
}

/// Runs every server's publisher on the current (the publishers' own) runtime until
/// all have stopped.
async fn run_all(plans: Vec<Plan>, cache: Arc<Cache>, stop: CancellationToken) {
    let zone = TimeZone::system();
    let mut running = tokio::task::JoinSet::new();
    for plan in plans {
        let config = plan.config;
        let client = Client::new(ClientConfig {
            server: config.server.clone(),
            tls: plan.tls,
            credentials: config.credentials.clone(),
            timers: Timers::default(),
            user_agent: format!("ews-presence/{}", env!("CARGO_PKG_VERSION")),
        });
        tracing::info!(server = %config.name, uri = %config.server, "publishing calendar presence over SIP");
        let driver = driver::Driver {
            state: state::Publications::new(
                config.max_in_flight,
                config.expires_secs,
                state::default_backoff(),
                plan.seed,
            ),
            config,
            client,
            cache: cache.clone(),
            view: plan.view,
            zone: zone.clone(),
            ids: driver::Ids::new(plan.seed),
            tally: driver::Tally::default(),
        };
        running.spawn(driver.run(stop.clone()));
    }
    while let Some(ended) = running.join_next().await {
        if let Err(e) = ended {
            tracing::error!(error = %e, "a SIP publisher failed");
        }
    }
}

/// Lowers this thread's priority to [`NICE`] (Linux: per thread); where that is not
/// allowed the publishers run at the daemon's priority.
fn lower_priority() {
    let thread = rustix::thread::gettid();
    if let Err(e) = rustix::process::setpriority_process(Some(thread), NICE) {
        tracing::debug!(error = %e, "the SIP publishers' thread keeps the daemon's priority");
    }
}

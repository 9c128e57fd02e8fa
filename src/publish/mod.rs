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
//! The SIP wire (messages, transactions, digest, transports) is the `sip` crate's.

use std::sync::Arc;

use jiff::tz::TimeZone;
use sip::client::{Client, ClientConfig};
use sip::transaction::Timers;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::SipConfig;
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

/// A server's TLS settings cannot be built.
#[derive(Debug, thiserror::Error)]
#[error("[[sip]] {name}: TLS: {source}")]
pub struct PublisherStartError {
    /// The server's name.
    pub name: String,
    /// Why.
    pub source: ews::transport::TlsConfigError,
}

/// The running publishers' views, for the API.
#[derive(Debug, Clone, Default)]
pub struct Publishers {
    views: Vec<SharedView>,
}

impl Publishers {
    /// Starts one publisher per server on `tracker`; they stop (removing what the
    /// servers hold, within [`REMOVAL_GRACE`]) when `stop` is cancelled.
    pub fn start(
        servers: &[SipConfig],
        certs_dir: &std::path::Path,
        cache: &Arc<Cache>,
        stop: &CancellationToken,
        tracker: &TaskTracker,
    ) -> Result<Publishers, PublisherStartError> {
        let zone = TimeZone::system();
        let mut views = Vec::with_capacity(servers.len());
        for (i, config) in servers.iter().enumerate() {
            let tls = if config.uses_tls() {
                Some(
                    ews::transport::client_tls(config.ca_file.as_deref(), certs_dir).map_err(
                        |source| PublisherStartError {
                            name: config.name.clone(),
                            source,
                        },
                    )?,
                )
            } else {
                None
            };
            let client = Client::new(ClientConfig {
                server: config.server.clone(),
                tls,
                credentials: config.credentials.clone(),
                timers: Timers::default(),
                user_agent: format!("ews-presence/{}", env!("CARGO_PKG_VERSION")),
            });
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
            });
            let seed = seed() ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
            let driver = driver::Driver {
                config: config.clone(),
                client,
                cache: cache.clone(),
                state: state::Publications::new(
                    config.max_in_flight,
                    config.expires_secs,
                    state::default_backoff(),
                    seed,
                ),
                view: view.clone(),
                zone: zone.clone(),
                ids: driver::Ids::new(seed),
                tally: driver::Tally::default(),
            };
            tracker.spawn(driver.run(stop.clone()));
            tracing::info!(server = %config.name, uri = %config.server, "publishing calendar presence over SIP");
            views.push(view);
        }
        Ok(Publishers { views })
    }

    /// Every server's view now.
    pub fn views(&self) -> Vec<PublisherView> {
        self.views.iter().map(SharedView::get).collect()
    }
}

fn seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0x5EED, |d| d.as_nanos() as u64)
}

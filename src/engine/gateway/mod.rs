//! One EWS server at run time: its client and what it has shown of itself
//! (reachability, TLS, authentication, server version, the last error, throttling).
//! Counts of groups, streams and subscriptions come from the groups' own status; see
//! [`super::status`].
//!
//! - [`credentials`]: the gate every request passes, the one owner of "credentials
//!   refused": one probe per back-off step, and when the next login may go.
//! - [`endpoints`]: where its requests go (EWS URLs, mailbox placements, transports).

pub mod credentials;
pub mod endpoints;

use std::future::Future;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use jiff::Timestamp;
use tokio::sync::Notify;

use crate::config::GatewayConfig;
use credentials::CredentialGate;
use endpoints::Endpoints;
use ews::error::{Disposition, EwsError};
use ews::soap::ServerVersionInfo;
use ews::transport::{Answer, Lane, OpenStream, Route};

/// What a gateway has shown of itself so far.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Health {
    /// The server answered the last request (None: not asked yet).
    pub reachable: Option<bool>,
    /// Its certificate verified.
    pub tls_verified: Option<bool>,
    /// It accepted our credentials.
    pub auth_ok: Option<bool>,
    /// The version it reports.
    pub server_version: Option<String>,
    /// The last failure and when.
    pub last_error: Option<(Timestamp, String)>,
    /// Until when it asked us to wait.
    pub throttled_until: Option<Timestamp>,
}

/// A gateway at run time.
#[derive(Debug)]
pub struct Gateway {
    /// Its configuration.
    pub config: GatewayConfig,
    /// Where its requests go.
    pub endpoints: Endpoints,
    /// Every request passes it: refused credentials stop all but one probe per step.
    pub credentials: CredentialGate,
    health: Mutex<Health>,
    events_received: AtomicU64,
    /// The server lets a stream carry only the impersonated user's subscriptions.
    single_mailbox_streams: AtomicBool,
    /// Wakes the engine to regroup once that is found.
    pub regroup: Notify,
    /// Mailboxes a server answered as if they had moved, to be discovered again.
    suspected_moves: Mutex<std::collections::BTreeSet<common::mailbox::Mailbox>>,
    /// Wakes the engine when there are some.
    pub moves: Notify,
}

impl Gateway {
    /// A gateway with its endpoints.
    pub fn new(config: GatewayConfig, endpoints: Endpoints) -> Gateway {
        Gateway {
            credentials: CredentialGate::new(&config.name),
            config,
            endpoints,
            health: Mutex::new(Health::default()),
            events_received: AtomicU64::new(0),
            single_mailbox_streams: AtomicBool::new(false),
            regroup: Notify::new(),
            suspected_moves: Mutex::new(std::collections::BTreeSet::new()),
            moves: Notify::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Health> {
        common::sync::lock(&self.health)
    }

    /// What it has shown so far.
    pub fn health(&self) -> Health {
        self.lock().clone()
    }

    /// Subscriptions per stream now: the configured number, or 1 once the server
    /// has shown it ties subscriptions to their user.
    pub fn per_connection(&self) -> usize {
        if self.single_mailbox_streams.load(Ordering::Relaxed) {
            1
        } else {
            self.config.max_subscriptions_per_connection
        }
    }

    /// Whether streams carry one mailbox each (see [`Gateway::per_connection`]).
    pub fn single_mailbox_streams(&self) -> bool {
        self.single_mailbox_streams.load(Ordering::Relaxed)
    }

    /// The server refused other users' subscriptions on an impersonating stream: from
    /// now on one mailbox per stream. Said once in the log and on `/v1/gateways`.
    pub fn one_mailbox_per_stream(&self) {
        if self.single_mailbox_streams.swap(true, Ordering::Relaxed) {
            return;
        }
        let message = "the server accepts only the impersonated user's own subscriptions on a stream (as gromox does); carrying one mailbox per stream from now on";
        tracing::warn!(gateway = %self.config.name, "{message}");
        self.report(message);
        self.regroup.notify_one();
    }

    /// A server answered for `mailbox` as if it lives elsewhere now. With
    /// Autodiscover it is discovered again (once however many such answers come
    /// before that); without, there is nothing to ask.
    pub fn suspect_moved(&self, mailbox: common::mailbox::Mailbox) {
        if self.config.autodiscover.is_none() {
            return;
        }
        if common::sync::lock(&self.suspected_moves).insert(mailbox) {
            self.moves.notify_one();
        }
    }

    /// The mailboxes suspected to have moved since last asked.
    pub fn take_suspected_moves(&self) -> Vec<common::mailbox::Mailbox> {
        std::mem::take(&mut *common::sync::lock(&self.suspected_moves))
            .into_iter()
            .collect()
    }

    /// Notification events received so far.
    pub fn events_received(&self) -> u64 {
        self.events_received.load(Ordering::Relaxed)
    }

    /// `n` notification events arrived.
    pub fn count_events(&self, n: usize) {
        self.events_received.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// Sends one request through the credential gate and decodes its answer.
    pub async fn call(
        &self,
        xml: String,
        route: &Route<'_>,
        lane: Lane,
    ) -> Result<Answer, EwsError> {
        let transport = self.endpoints.transport_for(route.anchor)?;
        self.gated(transport.call(xml, route, lane)).await
    }

    /// Opens a GetStreamingEvents response through the credential gate.
    pub async fn open_stream(
        &self,
        xml: String,
        route: &Route<'_>,
    ) -> Result<OpenStream, EwsError> {
        let transport = self.endpoints.transport_for(route.anchor)?;
        self.gated(transport.open_stream(xml, route)).await
    }

    /// Runs `request` once the credential gate lets it, and tells the gate how it went;
    /// while the gate is closed, fails at once with the refusal (nothing is sent).
    async fn gated<T>(
        &self,
        request: impl Future<Output = Result<T, EwsError>>,
    ) -> Result<T, EwsError> {
        self.credentials.pass().await?;
        let result = request.await;
        self.credentials
            .outcome(result.as_ref().map(|_| ()), tokio::time::Instant::now());
        result
    }

    /// The server answered (with anything SOAP).
    pub fn answered(&self, version: Option<&ServerVersionInfo>) {
        let mut s = self.lock();
        s.reachable = Some(true);
        s.auth_ok = Some(true);
        if self.config.uses_tls() {
            s.tls_verified = Some(true);
        }
        if let Some(v) = version {
            s.server_version = Some(match (&v.major, &v.minor, &v.major_build, &v.minor_build) {
                (Some(a), Some(b), Some(c), Some(d)) => format!("{a}.{b}.{c}.{d}"),
                _ => v.version.clone().unwrap_or_default(),
            });
        }
    }

    /// A request failed: remember what, and what it says about the server.
    pub fn failed(&self, error: &EwsError) {
        let mut s = self.lock();
        s.last_error = Some((Timestamp::now(), error.to_string()));
        match error {
            // Held back here: nothing new is known of the server.
            e if e.was_not_sent() => {}
            EwsError::Tls(_) => {
                s.tls_verified = Some(false);
                s.reachable = Some(true);
            }
            EwsError::Transport(_) | EwsError::Timeout(_) => s.reachable = Some(false),
            e if e.is_refused_credentials() => {
                s.auth_ok = Some(false);
                s.reachable = Some(true);
            }
            EwsError::Unavailable { .. } => s.reachable = Some(false),
            // The server answered, even if wrongly (a fault, an anomaly, a bad frame).
            _ => s.reachable = Some(true),
        }
        if let Disposition::Throttled(wait) = error.disposition() {
            s.throttled_until = Timestamp::now().checked_add(wait).ok();
        }
    }

    /// A problem found by looking at answers (not a failed request): recorded as the
    /// last error without changing what is known of reachability.
    pub fn report(&self, message: &str) {
        self.lock().last_error = Some((Timestamp::now(), message.to_owned()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gateway() -> Gateway {
        let config = crate::config::tests::gateway_config("gw", "http://127.0.0.1:9/EWS");
        let tls =
            ews::transport::client_tls(None, std::path::Path::new("certs")).expect("TLS config");
        let endpoints = Endpoints::new(&config, tls).expect("endpoints");
        Gateway::new(config, endpoints)
    }

    #[test]
    fn anomalies_keep_the_server_reachable() {
        let g = gateway();
        g.answered(None);
        g.failed(&EwsError::Protocol("the stream ended early".into()));
        assert_eq!(g.health().reachable, Some(true));
        g.report("rejected fresh subscriptions");
        assert_eq!(g.health().reachable, Some(true));
        assert_eq!(
            g.health().last_error.map(|(_, m)| m).as_deref(),
            Some("rejected fresh subscriptions")
        );
        g.failed(&EwsError::Transport("connection refused".into()));
        assert_eq!(g.health().reachable, Some(false));
    }
}

//! One Graph gateway at run time: its configuration, credential gate, token, HTTP
//! client, what Graph has shown of itself ([`Health`], as for EWS), the per-mailbox
//! concurrency limit, and the refresh queue its notifications feed. Every Graph
//! request goes through [`GraphGateway::call`]: at most [`MAILBOX_CONCURRENCY`] in
//! flight per mailbox, a token (fetched again once if Graph refuses it), `Retry-After`
//! honoured by whoever retries (the refresh queue, the subscription manager), counted
//! and timed.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dashmap::DashMap;
use hyper::Method;
use jiff::Timestamp;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use super::error::GraphError;
use super::http::{Answer, HttpClient};
use super::token::TokenSource;
use crate::config::{GatewayConfig, GraphConfig};
use crate::engine::gateway::Health;
use crate::engine::gateway::credentials::{CredentialGate, Verdict};
use crate::engine::refresh::RefreshQueue;
use common::mailbox::Mailbox;

/// Requests in flight per mailbox (Graph's Outlook limit is 4).
pub const MAILBOX_CONCURRENCY: usize = 4;
/// What we wait after a 429 or 503 that named no `Retry-After`.
pub const DEFAULT_THROTTLE_WAIT: Duration = Duration::from_secs(10);

/// A Graph gateway at run time.
#[derive(Debug)]
pub struct GraphGateway {
    /// Its place among the configured gateways.
    pub index: usize,
    /// Its configuration (name, trust, timeouts).
    pub config: GatewayConfig,
    /// Its Graph settings.
    pub graph: Arc<GraphConfig>,
    /// Every token request passes it.
    pub credentials: CredentialGate,
    /// Its refresh queue (notifications mark mailboxes in it).
    pub refresh: Arc<RefreshQueue>,
    token: TokenSource,
    http: HttpClient,
    /// `{graph_url path}/v1.0`.
    base_path: String,
    limits: DashMap<Mailbox, Arc<Semaphore>>,
    health: Mutex<Health>,
    notifications: AtomicU64,
    requests: AtomicU64,
}

impl GraphGateway {
    /// The gateway `config` (whose `graph` is set) at `index`.
    pub fn new(
        index: usize,
        config: GatewayConfig,
        graph: Arc<GraphConfig>,
        tls: Arc<rustls::ClientConfig>,
        refresh: Arc<RefreshQueue>,
    ) -> Result<GraphGateway, GraphError> {
        let timeout = config.request_timeout;
        let http = HttpClient::new(&graph.graph_url, tls.clone(), timeout)?;
        let token = TokenSource::new(&graph, HttpClient::new(&graph.authority, tls, timeout)?);
        let base_path = format!("{}/v1.0", graph.graph_url.path().trim_end_matches('/'));
        Ok(GraphGateway {
            index,
            credentials: CredentialGate::new(&config.name),
            config,
            graph,
            refresh,
            token,
            http,
            base_path,
            limits: DashMap::new(),
            health: Mutex::new(Health::default()),
            notifications: AtomicU64::new(0),
            requests: AtomicU64::new(0),
        })
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// What Graph has shown of itself.
    pub fn health(&self) -> Health {
        common::sync::lock(&self.health).clone()
    }

    /// Notifications accepted so far.
    pub fn notifications(&self) -> u64 {
        self.notifications.load(Ordering::Relaxed)
    }

    /// Graph requests sent so far (token requests not counted).
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// A notification for one of its mailboxes was accepted.
    pub fn count_notification(&self) {
        self.notifications.fetch_add(1, Ordering::Relaxed);
    }

    /// A mailbox left: its limit is forgotten.
    pub fn forget(&self, mailbox: &Mailbox) {
        self.limits.remove(mailbox);
    }

    /// Places for a request touching `mailboxes` (in order, so two requests never
    /// wait on each other's).
    async fn places(&self, mailboxes: &[&Mailbox]) -> Vec<OwnedSemaphorePermit> {
        let mut sorted: Vec<&Mailbox> = mailboxes.to_vec();
        sorted.sort();
        sorted.dedup();
        let mut permits = Vec::with_capacity(sorted.len());
        for m in sorted {
            let semaphore = self
                .limits
                .entry(m.clone())
                .or_insert_with(|| Arc::new(Semaphore::new(MAILBOX_CONCURRENCY)))
                .clone();
            if let Ok(permit) = semaphore.acquire_owned().await {
                permits.push(permit);
            }
        }
        permits
    }

    /// Sends one Graph request to `path` (under `/v1.0`), touching `mailboxes`; an
    /// answer outside 2xx is an error.
    pub async fn call(
        &self,
        operation: &'static str,
        method: Method,
        path: &str,
        body: Option<String>,
        mailboxes: &[&Mailbox],
    ) -> Result<Answer, GraphError> {
        let _places = self.places(mailboxes).await;
        let started = Instant::now();
        let result = self.send(method, path, body).await;
        let outcome = result.as_ref().map_or_else(GraphError::outcome, |_| "ok");
        super::metrics::request(self.name(), operation, outcome, started.elapsed());
        match &result {
            Ok(_) => self.answered(),
            Err(e) => self.failed(e),
        }
        result
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<String>,
    ) -> Result<Answer, GraphError> {
        let full = format!("{}{path}", self.base_path);
        for attempt in 0..2 {
            let token = self
                .token
                .token(&self.graph, &self.credentials, self.name())
                .await?;
            let headers = [
                ("Authorization", format!("Bearer {token}")),
                ("Accept", "application/json".to_owned()),
                ("Prefer", "outlook.timezone=\"UTC\"".to_owned()),
            ];
            let content = body.clone().map(|b| ("application/json", b));
            self.requests.fetch_add(1, Ordering::Relaxed);
            let answer = self
                .http
                .send(method.clone(), &full, &headers, content)
                .await?;
            match answer.status {
                200..=299 => return Ok(answer),
                401 if attempt == 0 => {
                    // Expired or revoked early: one fresh token.
                    self.token.forget(&token).await;
                }
                401 => {
                    let e = GraphError::TokenRefused(error_text(&answer));
                    self.credentials.record(
                        Verdict::Refused {
                            cause: e.to_string(),
                            error: e.to_string(),
                        },
                        Instant::now(),
                    );
                    return Err(e);
                }
                429 | 503 => {
                    let wait = answer.retry_after.unwrap_or(DEFAULT_THROTTLE_WAIT);
                    super::metrics::throttled(self.name(), wait);
                    return Err(GraphError::Throttled {
                        status: answer.status,
                        wait,
                    });
                }
                status => {
                    let (code, message) = match graph::error::ErrorBody::parse(&answer.body) {
                        Some(b) => (b.error.code, b.error.message),
                        None => (String::new(), error_text(&answer)),
                    };
                    return Err(GraphError::Http {
                        status,
                        code,
                        message,
                    });
                }
            }
        }
        Err(GraphError::TokenRefused(
            "Graph refused a fresh token".to_owned(),
        ))
    }

    fn answered(&self) {
        let mut h = common::sync::lock(&self.health);
        h.reachable = Some(true);
        h.auth_ok = Some(true);
        if self.config.uses_tls() {
            h.tls_verified = Some(true);
        }
    }

    fn failed(&self, error: &GraphError) {
        let mut h = common::sync::lock(&self.health);
        h.last_error = Some((Timestamp::now(), error.to_string()));
        match error {
            GraphError::CredentialBackoff { .. } => {}
            GraphError::Tls(_) => {
                h.tls_verified = Some(false);
                h.reachable = Some(true);
            }
            GraphError::Transport(_) | GraphError::Timeout(_) => h.reachable = Some(false),
            GraphError::AppRefused { .. } | GraphError::TokenRefused(_) => {
                h.auth_ok = Some(false);
                h.reachable = Some(true);
            }
            GraphError::Throttled { wait, .. } => {
                h.reachable = Some(true);
                h.throttled_until = Timestamp::now().checked_add(*wait).ok();
            }
            GraphError::Http { .. } | GraphError::Decode(_) => h.reachable = Some(true),
        }
    }

    /// Obtains a token (the cached one when valid): the troubleshooter's first step.
    pub async fn sign_in(&self) -> Result<(), GraphError> {
        let result = self
            .token
            .token(&self.graph, &self.credentials, self.name())
            .await
            .map(|_| ());
        if let Err(e) = &result {
            self.failed(e);
        }
        result
    }

    /// A problem found by looking at answers: recorded as the last error.
    pub fn report(&self, message: &str) {
        common::sync::lock(&self.health).last_error = Some((Timestamp::now(), message.to_owned()));
    }
}

/// The start of an error answer's body, for a message.
fn error_text(answer: &Answer) -> String {
    let text: String = String::from_utf8_lossy(&answer.body)
        .chars()
        .take(300)
        .collect();
    format!("HTTP {}: {text}", answer.status)
}

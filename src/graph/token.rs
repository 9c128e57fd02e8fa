//! The application's access token: client credentials at
//! `{authority}/{tenant}/oauth2/v2.0/token` with a signed assertion or the secret,
//! cached until [`EARLY`] before it expires, fetched by one caller at a time (the
//! others wait for it). Every token request passes the gateway's credential gate: a
//! refused application (wrong secret, unknown app, consent missing) closes it, is
//! logged once with the fix, and is tried again once per back-off step.

use std::time::Duration;

use hyper::Method;
use tokio::time::Instant;

use super::error::GraphError;
use super::http::HttpClient;
use crate::config::{GraphConfig, GraphCredential};
use crate::engine::gateway::credentials::{CredentialGate, Verdict};
use graph::token::{Proof, TokenAnswer, TokenError, request_body};

/// A token is fetched again this long before it expires.
pub const EARLY: Duration = Duration::from_secs(300);

#[derive(Debug, Clone)]
struct Cached {
    token: String,
    until: Instant,
}

/// One application's token.
#[derive(Debug)]
pub struct TokenSource {
    http: HttpClient,
    path: String,
    cached: tokio::sync::Mutex<Option<Cached>>,
}

impl TokenSource {
    /// Tokens from `config`'s authority over `http`.
    pub fn new(config: &GraphConfig, http: HttpClient) -> TokenSource {
        let url = config.token_url();
        let path = url
            .parse::<hyper::Uri>()
            .ok()
            .and_then(|u| u.path_and_query().map(|p| p.as_str().to_owned()))
            .unwrap_or_else(|| format!("/{}/oauth2/v2.0/token", config.tenant));
        TokenSource {
            http,
            path,
            cached: tokio::sync::Mutex::new(None),
        }
    }

    /// Forgets the cached token (Graph refused it).
    pub async fn forget(&self, token: &str) {
        let mut cached = self.cached.lock().await;
        if cached.as_ref().is_some_and(|c| c.token == token) {
            *cached = None;
        }
    }

    /// A valid token: the cached one, or a new one.
    pub async fn token(
        &self,
        config: &GraphConfig,
        gate: &CredentialGate,
        name: &str,
    ) -> Result<String, GraphError> {
        let mut cached = self.cached.lock().await;
        if let Some(c) = cached.as_ref()
            && Instant::now() < c.until
        {
            return Ok(c.token.clone());
        }
        gate.pass_any()
            .await
            .map_err(|closed| GraphError::CredentialBackoff {
                message: closed.message,
                retry_in: closed.retry_in,
            })?;
        let started = Instant::now();
        let result = self.fetch(config).await;
        let verdict = match &result {
            Ok(_) => Verdict::Answered,
            Err(e @ GraphError::AppRefused { .. }) => Verdict::Refused {
                cause: e.to_string(),
                error: e.to_string(),
            },
            Err(GraphError::Http { .. } | GraphError::Decode(_) | GraphError::Throttled { .. }) => {
                Verdict::Answered
            }
            Err(_) => Verdict::Unreached,
        };
        gate.record(verdict, Instant::now());
        super::metrics::token_request(
            name,
            result.as_ref().map_or_else(GraphError::outcome, |_| "ok"),
            started.elapsed(),
        );
        let answer = result?;
        let lifetime = Duration::from_secs(answer.expires_in);
        let until = Instant::now() + lifetime.saturating_sub(EARLY).max(lifetime / 2);
        *cached = Some(Cached {
            token: answer.access_token.clone(),
            until,
        });
        Ok(answer.access_token)
    }

    async fn fetch(&self, config: &GraphConfig) -> Result<TokenAnswer, GraphError> {
        let assertion;
        let proof = match &config.credential {
            GraphCredential::Secret(secret) => Proof::Secret(secret.expose()),
            GraphCredential::Certificate { signer } => {
                assertion = signer
                    .assertion(
                        &config.client_id,
                        &config.token_url(),
                        jiff::Timestamp::now().as_second(),
                    )
                    .map_err(|e| GraphError::Decode(e.to_string()))?;
                Proof::Assertion(&assertion)
            }
        };
        let body = request_body(&config.client_id, &config.scope(), &proof);
        let answer = self
            .http
            .send(
                Method::POST,
                &self.path,
                &[("Accept", "application/json".to_owned())],
                Some(("application/x-www-form-urlencoded", body)),
            )
            .await?;
        match answer.status {
            200 => graph::decode::<TokenAnswer>("token answer", &answer.body)
                .map_err(|e| GraphError::Decode(e.to_string())),
            429 | 503 => Err(GraphError::Throttled {
                status: answer.status,
                wait: answer.retry_after.unwrap_or(Duration::from_secs(5)),
            }),
            status => match graph::decode::<TokenError>("token error", &answer.body) {
                Ok(refusal) if refusal.refuses_the_application() => Err(GraphError::AppRefused {
                    fix: refusal.fix(),
                    error: refusal.error,
                    description: refusal.error_description,
                }),
                Ok(refusal) => Err(GraphError::Http {
                    status,
                    code: refusal.error,
                    message: refusal.error_description,
                }),
                Err(_) => Err(GraphError::Http {
                    status,
                    code: String::new(),
                    message: String::from_utf8_lossy(&answer.body)
                        .chars()
                        .take(200)
                        .collect(),
                }),
            },
        }
    }
}

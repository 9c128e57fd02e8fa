//! Talking HTTP to one EWS server: our own small pool of HTTP/1.1 connections over
//! rustls (ring), verifying the server against the configured CA file, or the system
//! roots plus every PEM in `certs/`; authentication (Basic and Bearer per request,
//! NTLM once per connection: the handshake and the requests after it share one
//! connection, so a pool that may hand out another one cannot be used); a connection
//! of its own for each stream; the affinity headers (`X-AnchorMailbox`,
//! `X-PreferServerAffinity`) and the `X-BackEndOverrideCookie`; timeouts; and errors
//! classified into [`EwsError`] (TLS and refused credentials apart from other
//! failures).

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{
    AUTHORIZATION, CONNECTION, CONTENT_TYPE, COOKIE, HOST, HeaderValue, SET_COOKIE,
};
use hyper::{Request, StatusCode, Uri};

use super::auth::bearer::{BearerToken, TokenError};
use super::auth::challenge::{self, Scheme};
use super::auth::ntlm::{NtlmError, NtlmHandshake};
pub use super::auth::{Auth, Secret};
use super::connection::{Connection, Connector};
use super::error::EwsError;
use super::stream::{Envelope, Response, decode_envelope};
use super::types::Mailbox;

/// Non-streaming requests in flight per gateway: Exchange's EWSMaxConcurrency
/// defaults to 27 (10 on 2010); stay well below it.
const MAX_CONCURRENT_CALLS: usize = 16;

/// Unsubscribes in flight per gateway: shutdown must release thousands of
/// subscriptions within its grace period (2,000 at 200 ms each take about 8 s).
const MAX_CONCURRENT_TEARDOWN: usize = 48;

/// Which budget of concurrent requests a call is charged to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lane {
    /// Ordinary calls (Subscribe, GetUserAvailability, ...).
    Normal,
    /// Unsubscribe: releasing what we hold, which must not queue behind reads.
    Teardown,
}

/// Idle authenticated connections kept per gateway.
const MAX_IDLE_CONNECTIONS: usize = MAX_CONCURRENT_CALLS + MAX_CONCURRENT_TEARDOWN;

/// An idle connection older than this is not reused (IIS closes idle connections
/// after 120 s by default; stay well inside).
const MAX_IDLE_TIME: Duration = Duration::from_secs(50);

/// Largest 401 body read between authentication legs.
const MAX_CHALLENGE_BODY_BYTES: usize = 64 * 1024;

/// Largest non-streaming answer read (GetUserAvailability for 100 busy mailboxes stays
/// far below).
const MAX_ANSWER_BYTES: usize = 16 * 1024 * 1024;

/// Whether the gateway's credentials may be sent to `url`: over HTTPS always; over
/// plain HTTP only to this machine (a loopback address or `localhost`: a test rig) or
/// when the gateway says `allow_plain_http = true`. The one rule for EWS and
/// Autodiscover alike. Over plain HTTP a Basic password or a bearer token crosses the
/// network in clear, and an NTLM exchange can be cracked offline; the account can
/// impersonate every presence user.
pub fn credentials_may_go_to(url: &Uri, allow_plain_http: bool) -> Result<(), PlainHttpRefused> {
    if url.scheme_str() != Some("http") {
        return Ok(());
    }
    let host = url
        .host()
        .unwrap_or_default()
        .trim_start_matches('[')
        .trim_end_matches(']');
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if loopback || allow_plain_http {
        return Ok(());
    }
    Err(PlainHttpRefused {
        host: host.to_owned(),
    })
}

/// Credentials refused to a plain `http://` URL on another machine.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the credentials would cross the network in clear to {host} over plain http://: use https://, or set allow_plain_http = true on the gateway (a lab only)"
)]
pub struct PlainHttpRefused {
    /// The host the URL names.
    pub host: String,
}

/// TLS client material that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsConfigError {
    /// A PEM file of the trust store.
    #[error(transparent)]
    Pem(#[from] common::pem::PemError),
    /// A certificate that is not a usable CA.
    #[error("unusable CA in {}: {source}", .path.display())]
    UnusableCa {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        source: rustls::Error,
    },
    /// rustls refused the configuration.
    #[error("{0}")]
    Rustls(#[from] rustls::Error),
}

/// Builds the TLS client configuration: `ca_file` alone when given, else the system
/// roots plus every `*.pem` in `certs_dir`.
pub fn client_tls(
    ca_file: Option<&Path>,
    certs_dir: &Path,
) -> Result<Arc<rustls::ClientConfig>, TlsConfigError> {
    let mut roots = rustls::RootCertStore::empty();
    let mut add_pem = |path: &Path| -> Result<(), TlsConfigError> {
        for cert in common::pem::certificates(path)? {
            roots
                .add(cert)
                .map_err(|source| TlsConfigError::UnusableCa {
                    path: path.to_owned(),
                    source,
                })?;
        }
        Ok(())
    };
    match ca_file {
        Some(path) => add_pem(path)?,
        None => {
            if let Ok(entries) = std::fs::read_dir(certs_dir) {
                let mut pems: Vec<_> = entries
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.extension().is_some_and(|x| x == "pem"))
                    .collect();
                pems.sort();
                for pem in pems {
                    add_pem(&pem)?;
                }
            }
            for cert in rustls_native_certs::load_native_certs().certs {
                let _ = roots.add(cert);
            }
        }
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(Arc::new(config))
}

/// What a [`Transport`] needs to know of its server.
#[derive(Debug, Clone)]
pub struct TransportConfig {
    /// The EWS endpoint.
    pub url: Uri,
    /// Authentication.
    pub auth: Auth,
    /// Timeout of ordinary (non-streaming) requests, and of a stream's headers.
    pub request_timeout: Duration,
}

/// Affinity routing for one request.
#[derive(Debug, Clone, Copy, Default)]
pub struct Route<'a> {
    /// `X-AnchorMailbox` (and `X-PreferServerAffinity: true`).
    pub anchor: Option<&'a Mailbox>,
    /// The `X-BackEndOverrideCookie=…` pair to send back.
    pub cookie: Option<&'a str>,
}

/// A decoded answer and the affinity cookie it set, if any.
#[derive(Debug)]
pub struct Answer {
    pub envelope: Envelope,
    /// `X-BackEndOverrideCookie=…` from `Set-Cookie`.
    pub affinity_cookie: Option<String>,
}

/// An answer as it came: status, headers, body.
#[derive(Debug)]
pub struct RawAnswer {
    /// HTTP status.
    pub status: u16,
    /// Headers (`Location` of a redirect, …).
    pub headers: hyper::HeaderMap,
    /// The body, read whole (bounded).
    pub body: Bytes,
}

/// An open GetStreamingEvents response: its body, and the connection it holds for as
/// long as it is read (dropping it closes the connection).
#[derive(Debug)]
pub struct OpenStream {
    /// The body, read frame by frame.
    pub body: Incoming,
    _connection: Connection,
}

/// How requests are authenticated, ready to use.
#[derive(Debug)]
enum Authenticator {
    None,
    Basic(HeaderValue),
    Bearer(BearerToken),
    Ntlm {
        username: String,
        password: Secret,
        /// The scheme that carries NTLM to this server, once learnt.
        carrier: Mutex<Option<Scheme>>,
    },
}

#[derive(Debug)]
struct Inner {
    connector: Connector,
    /// `Host` header and origin-form target of every request.
    host: HeaderValue,
    target: Uri,
    auth: Authenticator,
    account: String,
    timeout: Duration,
    calls: tokio::sync::Semaphore,
    teardown: tokio::sync::Semaphore,
    idle: Mutex<Vec<Connection>>,
}

/// One EWS server's client.
#[derive(Debug, Clone)]
pub struct Transport {
    inner: Arc<Inner>,
}

/// A response and the connection it came on.
type Exchanged = (hyper::Response<Incoming>, Connection);

impl Transport {
    /// A client for `gateway`, trusting `tls`.
    pub fn new(
        gateway: &TransportConfig,
        tls: Arc<rustls::ClientConfig>,
    ) -> Result<Transport, EwsError> {
        let connector = Connector::new(&gateway.url, tls)?;
        let host = gateway
            .url
            .authority()
            .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
            .ok_or_else(|| EwsError::Transport(format!("{} has no host", gateway.url)))?;
        let target = gateway
            .url
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/")
            .parse::<Uri>()
            .map_err(|e| EwsError::Transport(format!("{}: {e}", gateway.url)))?;
        let auth = match &gateway.auth {
            Auth::None => Authenticator::None,
            Auth::Basic { username, password } => {
                let token = base64::engine::general_purpose::STANDARD
                    .encode(format!("{username}:{}", password.expose()));
                let mut value = HeaderValue::from_str(&format!("Basic {token}")).map_err(|_| {
                    EwsError::Unauthorized(format!(
                        "the Basic credentials of {username} cannot be sent in a header"
                    ))
                })?;
                value.set_sensitive(true);
                Authenticator::Basic(value)
            }
            Auth::Bearer { token_file } => Authenticator::Bearer(BearerToken::new(token_file)),
            Auth::Ntlm { username, password } => Authenticator::Ntlm {
                username: username.clone(),
                password: password.clone(),
                carrier: Mutex::new(None),
            },
        };
        Ok(Transport {
            inner: Arc::new(Inner {
                connector,
                host,
                target,
                auth,
                account: gateway.auth.account(),
                timeout: gateway.request_timeout,
                calls: tokio::sync::Semaphore::new(MAX_CONCURRENT_CALLS),
                teardown: tokio::sync::Semaphore::new(MAX_CONCURRENT_TEARDOWN),
                idle: Mutex::new(Vec::new()),
            }),
        })
    }

    /// Sends one request and decodes its single envelope. A SOAP fault is an error;
    /// response-message errors are left to the caller, which knows the operation.
    pub async fn call(
        &self,
        xml: String,
        route: &Route<'_>,
        lane: Lane,
    ) -> Result<Answer, EwsError> {
        let inner = &self.inner;
        let budget = match lane {
            Lane::Normal => &inner.calls,
            Lane::Teardown => &inner.teardown,
        };
        let _permit = budget
            .acquire()
            .await
            .map_err(|_| EwsError::Transport("the client is shutting down".into()))?;
        let (response, connection) = self.exchange(Bytes::from(xml), route).await?;
        let RawAnswer {
            status,
            headers,
            body,
        } = self.read_whole(response, connection).await?;
        let retry_after = retry_after(&headers);
        let affinity_cookie = headers
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(|v| v.split(';').next())
            .find(|pair| pair.trim_start().starts_with("X-BackEndOverrideCookie="))
            .map(|pair| pair.trim().to_owned());
        let envelope = match decode_envelope(&body) {
            Ok(envelope) => envelope,
            Err(_) if status == 503 => return Err(EwsError::Unavailable { retry_after }),
            Err(_) if status != 200 => return Err(EwsError::Http { status }),
            Err(e) => {
                return Err(EwsError::Decode(crate::decode_error::DecodeError {
                    frame: 0,
                    offset: e.offset as u64,
                    problem: e.problem,
                }));
            }
        };
        // A fault is an error whatever the status (some servers send it with 200).
        if let Response::Fault(fault) = envelope.response {
            return Err(EwsError::Fault(Box::new(fault)));
        }
        Ok(Answer {
            envelope,
            affinity_cookie,
        })
    }

    /// Posts `xml` and returns the answer undecoded (Autodiscover speaks its own
    /// schemas): status, headers and body. Refused credentials are an error.
    pub async fn post(&self, xml: String) -> Result<RawAnswer, EwsError> {
        let inner = &self.inner;
        let _permit = inner
            .calls
            .acquire()
            .await
            .map_err(|_| EwsError::Transport("the client is shutting down".into()))?;
        let (response, connection) = self.exchange(Bytes::from(xml), &Route::default()).await?;
        self.read_whole(response, connection).await
    }

    /// Reads an answer's body whole (bounded, within the request timeout) and gives the
    /// connection back for reuse unless the server closes it.
    async fn read_whole(
        &self,
        response: hyper::Response<Incoming>,
        mut connection: Connection,
    ) -> Result<RawAnswer, EwsError> {
        let timeout = self.inner.timeout;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = match tokio::time::timeout(
            timeout,
            Limited::new(response.into_body(), MAX_ANSWER_BYTES).collect(),
        )
        .await
        {
            Err(_) => return Err(EwsError::Timeout(timeout)),
            Ok(Err(e)) => return Err(EwsError::Transport(format!("reading the answer: {e}"))),
            Ok(Ok(collected)) => collected.to_bytes(),
        };
        connection.finished();
        if !closes(&headers) {
            self.give_back(connection);
        }
        Ok(RawAnswer {
            status,
            headers,
            body,
        })
    }

    /// Asks without credentials which schemes the server offers (`WWW-Authenticate` of
    /// its 401), for troubleshooting: the offers in words, or the status when it asked
    /// for none.
    pub async fn offered_schemes(&self) -> Result<String, EwsError> {
        let probe = async {
            let (mut connection, _) = self.connection().await?;
            let response = connection
                .send(self.request(&Bytes::new(), &Route::default(), None)?)
                .await?;
            let status = response.status().as_u16();
            let offers = challenge::offers(response.headers());
            drain(response, &mut connection).await.ok();
            Ok::<_, EwsError>(if status == 401 {
                challenge::describe(&offers)
            } else {
                format!("none asked (HTTP {status})")
            })
        };
        match tokio::time::timeout(self.inner.timeout, probe).await {
            Err(_) => Err(EwsError::Timeout(self.inner.timeout)),
            Ok(result) => result,
        }
    }

    /// Opens a GetStreamingEvents response on a connection of its own; the caller
    /// decodes the body as it arrives.
    pub async fn open_stream(
        &self,
        xml: String,
        route: &Route<'_>,
    ) -> Result<OpenStream, EwsError> {
        let (response, connection) = self.exchange(Bytes::from(xml), route).await?;
        match response.status().as_u16() {
            200 => Ok(OpenStream {
                body: response.into_body(),
                _connection: connection,
            }),
            status => {
                let retry_after = retry_after(response.headers());
                // A fault (throttling) still comes as a SOAP body: read it for its hints.
                let body = tokio::time::timeout(
                    self.inner.timeout,
                    Limited::new(response.into_body(), MAX_ANSWER_BYTES).collect(),
                )
                .await;
                if let Ok(Ok(body)) = body
                    && let Ok(Envelope {
                        response: Response::Fault(fault),
                        ..
                    }) = decode_envelope(&body.to_bytes())
                {
                    return Err(EwsError::Fault(Box::new(fault)));
                }
                if status == 503 {
                    return Err(EwsError::Unavailable { retry_after });
                }
                Err(EwsError::Http { status })
            }
        }
    }

    /// Sends `body` on an authenticated connection (an idle one, or a new one) within
    /// the request timeout. A refusal of our credentials is an error; any other status
    /// is the caller's to read. A kept-alive connection the server closed just as we
    /// used it is replaced once.
    async fn exchange(&self, body: Bytes, route: &Route<'_>) -> Result<Exchanged, EwsError> {
        let timeout = self.inner.timeout;
        let attempt = async {
            let (mut connection, reused) = self.connection().await?;
            match self.authenticated(&mut connection, &body, route).await {
                // The 503 a full server writes on an idle connection, crossing our
                // request: its answer, not a stale connection.
                Err(EwsError::Transport(_)) if reused && connection.saw_503() => {
                    Err(EwsError::Unavailable { retry_after: None })
                }
                Err(EwsError::Transport(_)) if reused => {
                    let mut fresh = self.inner.connector.connect().await?;
                    let response = self.authenticated(&mut fresh, &body, route).await?;
                    Ok((response, fresh))
                }
                Err(e) => Err(e),
                Ok(response) => Ok((response, connection)),
            }
        };
        let (response, connection) = match tokio::time::timeout(timeout, attempt).await {
            Err(_) => return Err(EwsError::Timeout(timeout)),
            Ok(result) => result?,
        };
        if matches!(response.status().as_u16(), 401 | 403) {
            return Err(self.refused(&response));
        }
        Ok((response, connection))
    }

    /// What a 401/403 after our best attempt means, in words.
    fn refused(&self, response: &hyper::Response<Incoming>) -> EwsError {
        let inner = &self.inner;
        let status = response.status().as_u16();
        let offered = challenge::describe(&challenge::offers(response.headers()));
        let (scheme, hint) = match &inner.auth {
            Authenticator::None => {
                return EwsError::Unauthorized(format!(
                    "the server asks for credentials (HTTP {status}; it offers {offered}); configure auth"
                ));
            }
            Authenticator::Basic(_) => ("Basic", format!("wrong password, locked account, or Basic disabled (the server offers {offered})")),
            Authenticator::Bearer(_) => ("bearer", "the token was refused, also after re-reading its file".into()),
            Authenticator::Ntlm { .. } => ("NTLM", "wrong password or locked account, or Extended Protection refused our channel binding (a TLS-inspecting proxy in between changes the certificate)".into()),
        };
        EwsError::Unauthorized(format!(
            "credentials for {} refused ({scheme}, HTTP {status}): {hint}",
            inner.account
        ))
    }

    /// An idle connection, or a new one; `true` when it was idle (kept alive).
    async fn connection(&self) -> Result<(Connection, bool), EwsError> {
        loop {
            let idle = common::sync::lock(&self.inner.idle).pop();
            let Some(mut connection) = idle else {
                return Ok((self.inner.connector.connect().await?, false));
            };
            if connection.saw_503() {
                // The server out of connection slots said so on the idle connection.
                return Err(EwsError::Unavailable { retry_after: None });
            }
            if connection.idle_since.elapsed() < MAX_IDLE_TIME && connection.ready().await {
                return Ok((connection, true));
            }
        }
    }

    fn give_back(&self, connection: Connection) {
        if !connection.is_open() {
            return;
        }
        let mut idle = common::sync::lock(&self.inner.idle);
        if idle.len() < MAX_IDLE_CONNECTIONS {
            idle.push(connection);
        }
    }

    fn request(
        &self,
        body: &Bytes,
        route: &Route<'_>,
        authorization: Option<HeaderValue>,
    ) -> Result<Request<Full<Bytes>>, EwsError> {
        let mut builder = Request::builder()
            .method("POST")
            .uri(self.inner.target.clone())
            .header(HOST, self.inner.host.clone())
            .header(CONTENT_TYPE, "text/xml; charset=utf-8");
        if let Some(value) = authorization {
            builder = builder.header(AUTHORIZATION, value);
        }
        if let Some(anchor) = route.anchor {
            builder = builder
                .header("X-AnchorMailbox", anchor.as_str())
                .header("X-PreferServerAffinity", "true");
        }
        if let Some(cookie) = route.cookie {
            builder = builder.header(COOKIE, cookie);
        }
        builder
            .body(Full::new(body.clone()))
            .map_err(|e| EwsError::Transport(format!("cannot build the request: {e}")))
    }

    /// Sends `body` on `connection` with the configured authentication; a 401 that
    /// remains is returned as it came.
    async fn authenticated(
        &self,
        connection: &mut Connection,
        body: &Bytes,
        route: &Route<'_>,
    ) -> Result<hyper::Response<Incoming>, EwsError> {
        match &self.inner.auth {
            Authenticator::None => connection.send(self.request(body, route, None)?).await,
            Authenticator::Basic(value) => {
                connection
                    .send(self.request(body, route, Some(value.clone()))?)
                    .await
            }
            Authenticator::Bearer(token) => {
                let unusable = |e: TokenError| EwsError::Unauthorized(e.to_string());
                let value = token.header().map_err(unusable)?;
                let response = connection
                    .send(self.request(body, route, Some(value))?)
                    .await?;
                if response.status() != StatusCode::UNAUTHORIZED {
                    return Ok(response);
                }
                // The agent may have renewed it since we read it: once more.
                if !token.reload().map_err(unusable)? {
                    return Ok(response);
                }
                drain(response, connection).await?;
                let value = token.header().map_err(unusable)?;
                connection
                    .send(self.request(body, route, Some(value))?)
                    .await
            }
            Authenticator::Ntlm {
                username,
                password,
                carrier,
            } => {
                if connection.authenticated {
                    let response = connection.send(self.request(body, route, None)?).await?;
                    if response.status() != StatusCode::UNAUTHORIZED {
                        return Ok(response);
                    }
                    // The server forgot the connection's login: log in again on it.
                    drain(response, connection).await?;
                    connection.authenticated = false;
                }
                let known = common::sync::lock(carrier).clone();
                let scheme = match known {
                    Some(scheme) => scheme,
                    None => {
                        // Ask without credentials to learn what the server offers.
                        let response = connection.send(self.request(body, route, None)?).await?;
                        if response.status() != StatusCode::UNAUTHORIZED {
                            connection.authenticated = true;
                            return Ok(response);
                        }
                        let offers = challenge::offers(response.headers());
                        let Some(scheme) = challenge::ntlm_carrier(&offers) else {
                            return Err(EwsError::Unauthorized(format!(
                                "the server offers {} but neither Negotiate nor NTLM: set auth to match",
                                challenge::describe(&offers)
                            )));
                        };
                        drain(response, connection).await?;
                        *common::sync::lock(carrier) = Some(scheme.clone());
                        scheme
                    }
                };
                self.ntlm_login(connection, body, route, username, password, &scheme)
                    .await
            }
        }
    }

    /// The two NTLM legs on `connection`, the second carrying the real request.
    async fn ntlm_login(
        &self,
        connection: &mut Connection,
        body: &Bytes,
        route: &Route<'_>,
        username: &str,
        password: &Secret,
        scheme: &Scheme,
    ) -> Result<hyper::Response<Incoming>, EwsError> {
        let failed = |e: NtlmError| EwsError::Unauthorized(format!("{e} (account {username})"));
        let (handshake, negotiate) = NtlmHandshake::start(
            username,
            password,
            self.inner.connector.host(),
            connection.channel_binding.as_deref(),
        )
        .map_err(failed)?;
        let header = |message: &[u8]| -> Result<HeaderValue, EwsError> {
            let mut value = HeaderValue::from_str(&format!(
                "{} {}",
                scheme.name(),
                base64::engine::general_purpose::STANDARD.encode(message)
            ))
            .map_err(|_| EwsError::Unauthorized("unusable NTLM message".into()))?;
            value.set_sensitive(true);
            Ok(value)
        };
        let response = connection
            .send(self.request(body, route, Some(header(&negotiate)?))?)
            .await?;
        if response.status() != StatusCode::UNAUTHORIZED {
            connection.authenticated = true;
            return Ok(response);
        }
        let offers = challenge::offers(response.headers());
        let Some(challenge) = challenge::token_for(&offers, scheme) else {
            return Ok(response);
        };
        drain(response, connection).await?;
        let authenticate = handshake.answer(&challenge).map_err(failed)?;
        let response = connection
            .send(self.request(body, route, Some(header(&authenticate)?))?)
            .await?;
        if response.status() != StatusCode::UNAUTHORIZED {
            connection.authenticated = true;
        }
        Ok(response)
    }
}

/// Reads a 401's body to its end so that the connection can carry the next leg.
async fn drain(
    response: hyper::Response<Incoming>,
    connection: &mut Connection,
) -> Result<(), EwsError> {
    Limited::new(response.into_body(), MAX_CHALLENGE_BODY_BYTES)
        .collect()
        .await
        .map_err(|e| EwsError::Transport(format!("reading a 401 answer: {e}")))?;
    connection.finished();
    if connection.is_open() {
        Ok(())
    } else {
        Err(EwsError::Transport(
            "the server closed the connection in the middle of authentication".into(),
        ))
    }
}

/// Whether the response closes its connection.
fn closes(headers: &hyper::HeaderMap) -> bool {
    headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case("close")))
}

/// `Retry-After` as a wait: delta-seconds or an HTTP-date (RFC 9110 §10.2.3); a date
/// in the past is no wait, anything unreadable is ignored.
fn retry_after(headers: &hyper::HeaderMap) -> Option<Duration> {
    let value = headers
        .get(hyper::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = jiff::fmt::rfc2822::parse(value).ok()?.timestamp();
    let now = jiff::Timestamp::now();
    Some(if at > now {
        now.duration_until(at).unsigned_abs()
    } else {
        Duration::ZERO
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_retry_after_in_both_forms() {
        let mut headers = hyper::HeaderMap::new();
        assert_eq!(retry_after(&headers), None);
        headers.insert(hyper::header::RETRY_AFTER, HeaderValue::from_static("120"));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(120)));
        headers.insert(
            hyper::header::RETRY_AFTER,
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(retry_after(&headers), Some(Duration::ZERO), "in the past");
        let soon = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(90);
        let date = jiff::fmt::rfc2822::DateTimePrinter::new()
            .timestamp_to_rfc9110_string(&soon)
            .unwrap();
        headers.insert(
            hyper::header::RETRY_AFTER,
            HeaderValue::from_str(&date).unwrap(),
        );
        let wait = retry_after(&headers).unwrap();
        assert!(
            wait > Duration::from_secs(85) && wait <= Duration::from_secs(90),
            "{wait:?}"
        );
        headers.insert(hyper::header::RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&headers), None);
    }
}

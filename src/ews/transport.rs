//! Talking HTTP to one EWS server: hyper's pooled HTTP/1.1 client over rustls (ring),
//! verifying the server against the configured CA file, or the system roots plus every
//! PEM in `certs/`; Basic authentication; the affinity headers (`X-AnchorMailbox`,
//! `X-PreferServerAffinity`) and the `X-BackEndOverrideCookie`; timeouts; and errors
//! classified into [`EwsError`] (TLS apart from other transport failures).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, COOKIE, HeaderValue, SET_COOKIE};
use hyper::{Request, Uri};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

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

/// Largest non-streaming answer read (GetUserAvailability for 100 busy mailboxes stays
/// far below).
const MAX_ANSWER_BYTES: usize = 16 * 1024 * 1024;

/// Builds the TLS client configuration: `ca_file` alone when given, else the system
/// roots plus every `*.pem` in `certs_dir`.
pub fn client_tls(
    ca_file: Option<&Path>,
    certs_dir: &Path,
) -> Result<Arc<rustls::ClientConfig>, String> {
    let mut roots = rustls::RootCertStore::empty();
    let mut add_pem = |path: &Path| -> Result<(), String> {
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?
            .collect::<Result<_, _>>()
            .map_err(|e| format!("bad certificate in {}: {e}", path.display()))?;
        if certs.is_empty() {
            return Err(format!("no certificate in {}", path.display()));
        }
        for cert in certs {
            roots
                .add(cert)
                .map_err(|e| format!("unusable CA in {}: {e}", path.display()))?;
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
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(Arc::new(config))
}

/// How to authenticate to an EWS server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    /// No Authorization header (test rigs).
    None,
    /// HTTP Basic.
    Basic {
        /// User name.
        username: String,
        /// Password.
        password: String,
    },
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
    /// The envelope.
    pub envelope: Envelope,
    /// `X-BackEndOverrideCookie=…` from `Set-Cookie`.
    pub affinity_cookie: Option<String>,
}

/// One EWS server's client.
#[derive(Debug, Clone)]
pub struct Transport {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    url: Uri,
    authorization: Option<HeaderValue>,
    timeout: Duration,
    calls: Arc<tokio::sync::Semaphore>,
    teardown: Arc<tokio::sync::Semaphore>,
}

/// Classifies a client error, looking for a TLS failure in its causes.
fn classify(e: &(dyn std::error::Error + 'static)) -> EwsError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        if let Some(tls) = err.downcast_ref::<rustls::Error>() {
            return EwsError::Tls(tls.to_string());
        }
        if let Some(io) = err.downcast_ref::<std::io::Error>()
            && let Some(inner) = io.get_ref()
            && let Some(tls) = inner.downcast_ref::<rustls::Error>()
        {
            return EwsError::Tls(tls.to_string());
        }
        source = err.source();
    }
    let mut message = e.to_string();
    let mut source = e.source();
    while let Some(err) = source {
        message.push_str(": ");
        message.push_str(&err.to_string());
        source = err.source();
    }
    EwsError::Transport(message)
}

impl Transport {
    /// A client for `gateway`, trusting `tls`.
    pub fn new(gateway: &TransportConfig, tls: Arc<rustls::ClientConfig>) -> Transport {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(Duration::from_secs(10)));
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config((*tls).clone())
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(32)
            .build(https);
        let authorization = match &gateway.auth {
            Auth::None => None,
            Auth::Basic { username, password } => {
                let token = base64::engine::general_purpose::STANDARD
                    .encode(format!("{username}:{password}"));
                HeaderValue::from_str(&format!("Basic {token}"))
                    .ok()
                    .map(|mut v| {
                        v.set_sensitive(true);
                        v
                    })
            }
        };
        Transport {
            client,
            url: gateway.url.clone(),
            authorization,
            timeout: gateway.request_timeout,
            calls: Arc::new(tokio::sync::Semaphore::new(MAX_CONCURRENT_CALLS)),
            teardown: Arc::new(tokio::sync::Semaphore::new(MAX_CONCURRENT_TEARDOWN)),
        }
    }

    fn request(&self, xml: String, route: &Route<'_>) -> Result<Request<Full<Bytes>>, EwsError> {
        let mut builder = Request::builder()
            .method("POST")
            .uri(self.url.clone())
            .header(CONTENT_TYPE, "text/xml; charset=utf-8");
        if let Some(auth) = &self.authorization {
            builder = builder.header(AUTHORIZATION, auth.clone());
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
            .body(Full::new(Bytes::from(xml)))
            .map_err(|e| EwsError::Transport(format!("cannot build the request: {e}")))
    }

    async fn send(
        &self,
        xml: String,
        route: &Route<'_>,
    ) -> Result<hyper::Response<Incoming>, EwsError> {
        let request = self.request(xml, route)?;
        match tokio::time::timeout(self.timeout, self.client.request(request)).await {
            Err(_) => Err(EwsError::Timeout(self.timeout)),
            Ok(Err(e)) => Err(classify(&e)),
            Ok(Ok(response)) => Ok(response),
        }
    }

    /// Sends one request and decodes its single envelope. A SOAP fault is an error;
    /// response-message errors are left to the caller, which knows the operation.
    pub async fn call(
        &self,
        xml: String,
        route: &Route<'_>,
        lane: Lane,
    ) -> Result<Answer, EwsError> {
        let budget = match lane {
            Lane::Normal => &self.calls,
            Lane::Teardown => &self.teardown,
        };
        let _permit = budget
            .acquire()
            .await
            .map_err(|_| EwsError::Transport("the client is shutting down".into()))?;
        let response = self.send(xml, route).await?;
        let status = response.status().as_u16();
        if matches!(status, 401 | 403) {
            return Err(EwsError::Http { status });
        }
        let retry_after = retry_after(response.headers());
        let affinity_cookie = response
            .headers()
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(|v| v.split(';').next())
            .find(|pair| pair.trim_start().starts_with("X-BackEndOverrideCookie="))
            .map(|pair| pair.trim().to_owned());
        let body = match tokio::time::timeout(
            self.timeout,
            Limited::new(response.into_body(), MAX_ANSWER_BYTES).collect(),
        )
        .await
        {
            Err(_) => return Err(EwsError::Timeout(self.timeout)),
            Ok(Err(e)) => return Err(EwsError::Transport(format!("reading the answer: {e}"))),
            Ok(Ok(collected)) => collected.to_bytes(),
        };
        let envelope = match decode_envelope(&body) {
            Ok(envelope) => envelope,
            Err(_) if status == 503 => return Err(EwsError::Unavailable { retry_after }),
            Err(_) if status != 200 => return Err(EwsError::Http { status }),
            Err(e) => {
                return Err(EwsError::Decode(crate::ews::decode_error::DecodeError {
                    frame: 0,
                    offset: e.offset as u64,
                    problem: e.problem,
                }));
            }
        };
        if let Response::Fault(fault) = envelope.response {
            return Err(EwsError::Fault(Box::new(fault)));
        }
        Ok(Answer {
            envelope,
            affinity_cookie,
        })
    }

    /// Opens a GetStreamingEvents response; the caller decodes the body as it arrives.
    pub async fn open_stream(&self, xml: String, route: &Route<'_>) -> Result<Incoming, EwsError> {
        let response = self.send(xml, route).await?;
        match response.status().as_u16() {
            200 => Ok(response.into_body()),
            status => {
                let retry_after = retry_after(response.headers());
                // A fault (throttling) still comes as a SOAP body: read it for its hints.
                let body = Limited::new(response.into_body(), MAX_ANSWER_BYTES)
                    .collect()
                    .await;
                if let Ok(body) = body
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

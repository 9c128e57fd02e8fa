//! Asking Autodiscover, safely: where to ask (the configured `autodiscover_url`, else
//! the documented candidates for the mailbox's domain: `https://DOMAIN/…`,
//! `https://autodiscover.DOMAIN/…`, then the HTTP redirect method), SOAP in batches of
//! up to 100 with POX as the fallback, redirects (address, URL, HTTP 3xx) followed up
//! to [`MAX_REDIRECTS`] with loops detected, and credentials sent only to HTTPS
//! endpoints whose certificate verified (the transport checks the certificate before
//! anything is sent; plain HTTP gets no credentials, only the unauthenticated redirect
//! probe). SCP lookup in Active Directory is out of scope.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::Uri;

use super::pox;
use super::soap::{self, AnswerError, UserAnswer, UserSettings};
use crate::connection::Connector;
use crate::error::EwsError;
use crate::transport::{Auth, RawAnswer, Transport, TransportConfig};
use common::mailbox::Mailbox;

/// Redirects (address or URL) followed for one mailbox before giving up.
pub const MAX_REDIRECTS: u32 = 10;

/// How to discover.
#[derive(Debug, Clone)]
pub struct DiscoveryConfig {
    /// Ask here first (else the candidates from the mailbox's domain).
    pub autodiscover_url: Option<Uri>,
    /// Prefer `InternalEwsUrl` over `ExternalEwsUrl`.
    pub prefer_internal: bool,
    /// The credentials (the gateway's).
    pub auth: Auth,
    /// Timeout of one request.
    pub request_timeout: Duration,
    /// Credentials may go over plain `http://` (see
    /// [`crate::transport::credentials_may_go_to`]).
    pub allow_plain_http: bool,
}

/// Where a mailbox's EWS is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// The EWS URL to use.
    pub ews_url: Uri,
    /// Its `GroupingInformation` (None when the server gave none).
    pub grouping: Option<String>,
    /// The Autodiscover endpoint that answered.
    pub answered_by: String,
    /// The address finally asked for (after address redirects).
    pub address: String,
}

/// Why a mailbox could not be discovered, and what was tried.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{problem} (tried: {})", if tried.is_empty() { "nothing".to_owned() } else { tried.join("; ") })]
pub struct DiscoveryError {
    /// The endpoints tried, each with what it answered.
    pub tried: Vec<String>,
    /// The final problem.
    pub problem: String,
}

/// One mailbox's outcome.
pub type Outcome = Result<Found, DiscoveryError>;

/// One place to ask.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Candidate {
    /// SOAP `autodiscover.svc`.
    Soap(String),
    /// POX `autodiscover.xml`.
    Pox(String),
    /// The HTTP redirect method: an unauthenticated GET whose 3xx names an HTTPS URL.
    HttpRedirect(String),
}

impl Candidate {
    fn url(&self) -> &str {
        match self {
            Candidate::Soap(u) | Candidate::Pox(u) | Candidate::HttpRedirect(u) => u,
        }
    }
}

/// The documented candidates for `domain`, in order.
fn candidates_for(domain: &str) -> Vec<Candidate> {
    vec![
        Candidate::Soap(format!("https://{domain}/autodiscover/autodiscover.svc")),
        Candidate::Soap(format!(
            "https://autodiscover.{domain}/autodiscover/autodiscover.svc"
        )),
        Candidate::HttpRedirect(format!(
            "http://autodiscover.{domain}/autodiscover/autodiscover.xml"
        )),
    ]
}

/// The POX sibling of a SOAP URL (`.svc` → `.xml`), and back.
fn sibling(url: &str, from: &str, to: &str) -> String {
    match url.len().checked_sub(from.len()) {
        Some(at) if url[at..].eq_ignore_ascii_case(from) => format!("{}{to}", &url[..at]),
        _ => url.to_owned(),
    }
}

/// One mailbox being discovered.
#[derive(Debug)]
struct Pending {
    original: Mailbox,
    address: Mailbox,
    queue: Vec<Candidate>,
    tried: Vec<String>,
    redirects: u32,
    seen: HashSet<String>,
}

impl Pending {
    fn fail(self, problem: impl Into<String>) -> (Mailbox, Outcome) {
        (
            self.original,
            Err(DiscoveryError {
                tried: self.tried,
                problem: problem.into(),
            }),
        )
    }
}

/// What to do with a pending mailbox after an answer.
enum Next {
    Done((Mailbox, Outcome)),
    Again(Pending),
}

/// Asks Autodiscover for the gateway's mailboxes.
#[derive(Debug)]
pub struct Discoverer {
    config: DiscoveryConfig,
    tls: Arc<rustls::ClientConfig>,
    transports: Mutex<HashMap<String, Transport>>,
}

impl Discoverer {
    /// A discoverer with the gateway's credentials and trust.
    pub fn new(config: DiscoveryConfig, tls: Arc<rustls::ClientConfig>) -> Discoverer {
        Discoverer {
            config,
            tls,
            transports: Mutex::new(HashMap::new()),
        }
    }

    fn start(&self, mailbox: &Mailbox) -> Pending {
        let queue = match &self.config.autodiscover_url {
            Some(url) => {
                let url = url.to_string();
                if url.to_ascii_lowercase().ends_with(".xml") {
                    vec![Candidate::Pox(url)]
                } else {
                    vec![Candidate::Soap(url)]
                }
            }
            None => candidates_for(mailbox.domain()),
        };
        Pending {
            original: mailbox.clone(),
            address: mailbox.clone(),
            queue,
            tried: Vec::new(),
            redirects: 0,
            seen: HashSet::from([mailbox.as_str().to_owned()]),
        }
    }

    /// Discovers every mailbox; one outcome each, in no particular order.
    pub async fn discover(&self, mailboxes: &[Mailbox]) -> Vec<(Mailbox, Outcome)> {
        let mut done = Vec::with_capacity(mailboxes.len());
        let mut pending: Vec<Pending> = mailboxes.iter().map(|m| self.start(m)).collect();
        while !pending.is_empty() {
            // Everyone waiting on the same SOAP endpoint goes in one batch.
            let mut soap_batches: BTreeMap<String, Vec<Pending>> = BTreeMap::new();
            let mut others = Vec::new();
            for p in pending.drain(..) {
                match p.queue.first() {
                    None => done.push(p.fail("no Autodiscover endpoint answered")),
                    Some(Candidate::Soap(url)) => {
                        soap_batches.entry(url.clone()).or_default().push(p)
                    }
                    Some(_) => others.push(p),
                }
            }
            for (url, batch) in soap_batches {
                let mut batch = batch;
                while !batch.is_empty() {
                    let rest = batch.split_off(batch.len().min(soap::MAX_USERS));
                    for next in self
                        .ask_soap(&url, std::mem::replace(&mut batch, rest))
                        .await
                    {
                        match next {
                            Next::Done(outcome) => done.push(outcome),
                            Next::Again(p) => pending.push(p),
                        }
                    }
                }
            }
            for p in others {
                match self.ask_one(p).await {
                    Next::Done(outcome) => done.push(outcome),
                    Next::Again(p) => pending.push(p),
                }
            }
        }
        done
    }

    /// A transport to `url` with the gateway's credentials, where they may go (the
    /// same rule as for EWS: HTTPS, this machine, or `allow_plain_http`).
    fn transport(&self, url: &str) -> Result<Transport, AttemptError> {
        if let Some(t) = common::sync::lock(&self.transports).get(url) {
            return Ok(t.clone());
        }
        let uri = parse_url(url)?;
        if !matches!(uri.scheme_str(), Some("https" | "http")) {
            return Err(AttemptError::NotHttp {
                url: url.to_owned(),
            });
        }
        if self.config.auth != Auth::None {
            crate::transport::credentials_may_go_to(&uri, self.config.allow_plain_http).map_err(
                |source| AttemptError::PlainHttp {
                    url: url.to_owned(),
                    source,
                },
            )?;
        }
        let auth = self.config.auth.clone();
        let transport = Transport::new(
            &TransportConfig {
                url: uri,
                auth,
                request_timeout: self.config.request_timeout,
            },
            self.tls.clone(),
        )
        .map_err(AttemptError::Request)?;
        common::sync::lock(&self.transports).insert(url.to_owned(), transport.clone());
        Ok(transport)
    }

    async fn post(&self, url: &str, body: String) -> Result<RawAnswer, AttemptError> {
        let transport = self.transport(url)?;
        transport.post(body).await.map_err(AttemptError::Request)
    }

    async fn ask_soap(&self, url: &str, batch: Vec<Pending>) -> Vec<Next> {
        let mailboxes: Vec<Mailbox> = batch.iter().map(|p| p.address.clone()).collect();
        let outcome = match self.post(url, soap::request(url, &mailboxes)).await {
            Err(problem) => Err((problem.to_string(), false)),
            Ok(answer) => match redirect_of(&answer) {
                Some(location) => {
                    return batch
                        .into_iter()
                        .map(|p| self.follow_url(p, url, &location, "HTTP redirect"))
                        .collect();
                }
                None if answer.status != 200 => Err((
                    format!("HTTP {}", answer.status),
                    soap_missing(answer.status),
                )),
                None => {
                    soap::answer(&String::from_utf8_lossy(&answer.body), batch.len()).map_err(|e| {
                        let not_soap = matches!(e, AnswerError::Malformed(_));
                        (e.to_string(), not_soap)
                    })
                }
            },
        };
        match outcome {
            Ok(users) => batch
                .into_iter()
                .zip(users)
                .map(|(p, user)| self.settle(p, url, user))
                .collect(),
            Err((problem, try_pox)) => batch
                .into_iter()
                .map(|mut p| {
                    p.tried.push(format!("{url}: {problem}"));
                    p.queue.remove(0);
                    if try_pox {
                        p.queue
                            .insert(0, Candidate::Pox(sibling(url, ".svc", ".xml")));
                    }
                    Next::Again(p)
                })
                .collect(),
        }
    }

    async fn ask_one(&self, mut p: Pending) -> Next {
        let candidate = p.queue.remove(0);
        let url = candidate.url().to_owned();
        match candidate {
            Candidate::Pox(_) => match self.post(&url, pox::request(&p.address)).await {
                Err(problem) => {
                    p.tried.push(format!("{url}: {problem}"));
                    Next::Again(p)
                }
                Ok(answer) => {
                    if let Some(location) = redirect_of(&answer) {
                        p.queue.insert(0, Candidate::Pox(url.clone()));
                        return self.follow_url(p, &url, &location, "HTTP redirect");
                    }
                    if answer.status != 200 {
                        p.tried.push(format!("{url}: HTTP {}", answer.status));
                        return Next::Again(p);
                    }
                    match pox::answer(&String::from_utf8_lossy(&answer.body)) {
                        Ok(user) => {
                            p.queue.insert(0, Candidate::Pox(url.clone()));
                            self.settle(p, &url, user)
                        }
                        Err(e) => {
                            p.tried.push(format!("{url}: {e}"));
                            Next::Again(p)
                        }
                    }
                }
            },
            Candidate::HttpRedirect(_) => match self.redirect_probe(&url).await {
                Ok(location) if location.starts_with("https://") => {
                    p.tried.push(format!("{url}: redirected to {location}"));
                    p.queue
                        .insert(0, Candidate::Soap(sibling(&location, ".xml", ".svc")));
                    Next::Again(p)
                }
                Ok(location) => {
                    p.tried
                        .push(format!("{url}: redirect to {location} refused (not HTTPS)"));
                    Next::Again(p)
                }
                Err(problem) => {
                    p.tried.push(format!("{url}: {problem}"));
                    Next::Again(p)
                }
            },
            Candidate::Soap(_) => {
                // Single SOAP asks go through the batch path.
                p.queue.insert(0, candidate);
                self.ask_soap(&url, vec![p])
                    .await
                    .pop()
                    .unwrap_or_else(|| unreachable!("one answer per pending mailbox"))
            }
        }
    }

    /// An answer for one mailbox from `url`.
    fn settle(&self, mut p: Pending, url: &str, user: UserAnswer) -> Next {
        match user {
            UserAnswer::Settings(settings) => match self.pick_url(&settings) {
                Some(Ok(ews_url)) => Next::Done((
                    p.original,
                    Ok(Found {
                        ews_url,
                        grouping: settings.grouping_information,
                        answered_by: url.to_owned(),
                        address: p.address.as_str().to_owned(),
                    }),
                )),
                Some(Err(bad)) => {
                    p.tried.push(format!("{url}: answered"));
                    Next::Done(p.fail(format!("the EWS URL {bad:?} is not an http(s) URL")))
                }
                None => {
                    p.tried.push(format!("{url}: answered"));
                    Next::Done(p.fail("Autodiscover gave no EWS URL"))
                }
            },
            UserAnswer::RedirectAddress(address) => {
                p.tried
                    .push(format!("{url}: redirect to address {address}"));
                p.redirects += 1;
                let Ok(next) = Mailbox::parse(&address) else {
                    return Next::Done(p.fail(format!("redirect to a bad address {address:?}")));
                };
                if p.redirects > MAX_REDIRECTS {
                    return Next::Done(p.fail(format!("more than {MAX_REDIRECTS} redirects")));
                }
                if !p.seen.insert(next.as_str().to_owned()) {
                    return Next::Done(p.fail(format!("redirect loop at {address}")));
                }
                p.queue = match &self.config.autodiscover_url {
                    Some(_) => vec![Candidate::Soap(url.to_owned())],
                    None => candidates_for(next.domain()),
                };
                p.address = next;
                Next::Again(p)
            }
            UserAnswer::RedirectUrl(target) => {
                p.queue.remove(0);
                self.follow_url(p, url, &target, "redirect URL")
            }
            UserAnswer::Error { code, message } => {
                p.tried.push(format!("{url}: {code}: {message}"));
                let problem = format!("Autodiscover does not know {}: {code}", p.address);
                Next::Done(p.fail(problem))
            }
        }
    }

    /// Goes on at `target`, if it is HTTPS and new.
    fn follow_url(&self, mut p: Pending, from: &str, target: &str, how: &str) -> Next {
        p.tried.push(format!("{from}: {how} to {target}"));
        p.redirects += 1;
        if p.redirects > MAX_REDIRECTS {
            return Next::Done(p.fail(format!("more than {MAX_REDIRECTS} redirects")));
        }
        if !target.to_ascii_lowercase().starts_with("https://") {
            return Next::Done(p.fail(format!(
                "refused to follow a redirect to {target}: credentials go only to HTTPS"
            )));
        }
        if !p.seen.insert(target.to_ascii_lowercase()) {
            return Next::Done(p.fail(format!("redirect loop at {target}")));
        }
        let next = if target.to_ascii_lowercase().ends_with(".xml") {
            Candidate::Pox(target.to_owned())
        } else {
            Candidate::Soap(target.to_owned())
        };
        if p.queue.first().is_some_and(|c| c.url() == from) {
            p.queue.remove(0);
        }
        p.queue.insert(0, next);
        Next::Again(p)
    }

    fn pick_url(&self, s: &UserSettings) -> Option<Result<Uri, String>> {
        let (first, second) = if self.config.prefer_internal {
            (&s.internal_ews_url, &s.external_ews_url)
        } else {
            (&s.external_ews_url, &s.internal_ews_url)
        };
        let chosen = first.as_ref().or(second.as_ref())?;
        Some(
            chosen
                .parse::<Uri>()
                .ok()
                .filter(|u| matches!(u.scheme_str(), Some("https" | "http")) && u.host().is_some())
                .ok_or_else(|| chosen.clone()),
        )
    }

    /// The HTTP redirect method: an unauthenticated GET; the `Location` of its 3xx.
    async fn redirect_probe(&self, url: &str) -> Result<String, AttemptError> {
        let uri = parse_url(url)?;
        let connector = Connector::new(&uri, self.tls.clone()).map_err(AttemptError::Request)?;
        let probe = async {
            let mut connection = connector.connect().await?;
            let request = hyper::Request::get(uri.path())
                .header(
                    hyper::header::HOST,
                    uri.authority().map(|a| a.as_str()).unwrap_or(""),
                )
                .body(Full::new(bytes::Bytes::new()))
                .map_err(|e| EwsError::Transport(e.to_string()))?;
            let response = connection.send(request).await?;
            let location = (response.status().is_redirection())
                .then(|| response.headers().get(hyper::header::LOCATION).cloned())
                .flatten();
            let status = response.status().as_u16();
            let _ = Limited::new(response.into_body(), 64 * 1024)
                .collect()
                .await;
            Ok::<_, EwsError>((status, location))
        };
        match tokio::time::timeout(self.config.request_timeout, probe).await {
            Err(_) => Err(AttemptError::Timeout),
            Ok(Err(e)) => Err(AttemptError::Request(e)),
            Ok(Ok((_, Some(location)))) => location
                .to_str()
                .map(str::to_owned)
                .map_err(|_| AttemptError::UnreadableLocation),
            Ok(Ok((status, None))) => Err(AttemptError::NoRedirect(status)),
        }
    }
}

/// An HTTP 3xx's `Location`.
fn redirect_of(answer: &RawAnswer) -> Option<String> {
    (300..400)
        .contains(&answer.status)
        .then(|| answer.headers.get(hyper::header::LOCATION))
        .flatten()
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// Statuses by which a server says it has no SOAP Autodiscover (then POX is tried).
fn soap_missing(status: u16) -> bool {
    matches!(status, 404 | 405 | 501)
}

/// Why one endpoint gave no usable answer; its words go into the record of what was
/// tried.
#[derive(Debug, thiserror::Error)]
enum AttemptError {
    /// Not a URL at all.
    #[error("{url} is not a URL")]
    NotAUrl {
        /// What was given.
        url: String,
    },
    /// A URL of another scheme.
    #[error("{url} is not an http(s) URL")]
    NotHttp {
        /// What was given.
        url: String,
    },
    /// The credentials may not go there.
    #[error("refused to send credentials to {url}: {source}")]
    PlainHttp {
        /// The URL.
        url: String,
        /// Why.
        source: crate::transport::PlainHttpRefused,
    },
    /// The request failed.
    #[error("{}", describe(.0))]
    Request(EwsError),
    /// No answer within the request timeout.
    #[error("no answer in time")]
    Timeout,
    /// A redirect whose `Location` is not text.
    #[error("an unreadable Location")]
    UnreadableLocation,
    /// An answer that is not a redirect.
    #[error("HTTP {0}, no redirect")]
    NoRedirect(u16),
}

fn parse_url(url: &str) -> Result<Uri, AttemptError> {
    url.parse().map_err(|_| AttemptError::NotAUrl {
        url: url.to_owned(),
    })
}

/// An error in words for the list of what was tried.
fn describe(e: &EwsError) -> String {
    match e {
        EwsError::Tls(t) => {
            format!("certificate not trusted or TLS failed, no credentials sent: {t}")
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A plain HTTP server answering every request with `answer`.
    async fn answering(answer: &'static str) -> std::net::SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf).await;
                let _ = stream.write_all(answer.as_bytes()).await;
            }
        });
        addr
    }

    fn discoverer() -> Discoverer {
        Discoverer::new(
            DiscoveryConfig {
                autodiscover_url: None,
                prefer_internal: false,
                auth: Auth::Basic {
                    username: "svc".into(),
                    password: crate::auth::Secret::new("pw"),
                },
                request_timeout: Duration::from_secs(5),
                allow_plain_http: false,
            },
            crate::transport::client_tls(
                None,
                &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../certs"),
            )
            .unwrap(),
        )
    }

    #[tokio::test]
    async fn the_http_redirect_method_reads_the_location_and_sends_no_credentials() {
        let addr = answering(
            "HTTP/1.1 302 Found\r\nLocation: https://mail.example.test/autodiscover/autodiscover.xml\r\nContent-Length: 0\r\n\r\n",
        )
        .await;
        let d = discoverer();
        let url = format!("http://{addr}/autodiscover/autodiscover.xml");
        assert_eq!(
            d.redirect_probe(&url).await.unwrap(),
            "https://mail.example.test/autodiscover/autodiscover.xml"
        );
        // A redirect to plain HTTP is never followed with credentials.
        let to_http = answering(
            "HTTP/1.1 302 Found\r\nLocation: http://evil.example.test/autodiscover/autodiscover.xml\r\nContent-Length: 0\r\n\r\n",
        )
        .await;
        let mut p = d.start(&Mailbox::parse("a@example.test").unwrap());
        p.queue = vec![Candidate::HttpRedirect(format!(
            "http://{to_http}/autodiscover/autodiscover.xml"
        ))];
        let Next::Again(p) = d.ask_one(p).await else {
            panic!("goes on to the next candidate")
        };
        assert!(p.queue.is_empty(), "nothing to ask: {:?}", p.queue);
        assert!(p.tried[0].contains("not HTTPS"), "{:?}", p.tried);
        // And credentials are never sent to a plain HTTP Autodiscover elsewhere than
        // on this machine.
        let refused = d
            .transport("http://autodiscover.example.test/autodiscover/autodiscover.svc")
            .err();
        assert!(
            matches!(&refused, Some(AttemptError::PlainHttp { .. }))
                && refused
                    .as_ref()
                    .is_some_and(|e| e.to_string().contains("in clear")),
            "{refused:?}"
        );
        assert!(
            d.transport(&format!("http://{addr}/autodiscover/autodiscover.svc"))
                .is_ok(),
            "a loopback Autodiscover is a test rig"
        );
    }

    #[test]
    fn candidates_follow_the_documented_order() {
        let c = candidates_for("contoso.test");
        assert_eq!(
            c,
            [
                Candidate::Soap("https://contoso.test/autodiscover/autodiscover.svc".into()),
                Candidate::Soap(
                    "https://autodiscover.contoso.test/autodiscover/autodiscover.svc".into()
                ),
                Candidate::HttpRedirect(
                    "http://autodiscover.contoso.test/autodiscover/autodiscover.xml".into()
                ),
            ]
        );
        assert_eq!(
            sibling(
                "https://x.test/Autodiscover/Autodiscover.SVC",
                ".svc",
                ".xml"
            ),
            "https://x.test/Autodiscover/Autodiscover.xml"
        );
    }
}

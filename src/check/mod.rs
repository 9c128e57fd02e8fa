//! The troubleshooter behind `ews-presence check` and `POST /v1/checks`: for one
//! gateway, each step of reaching Exchange as the daemon does, with a timeout, what it
//! took, and for a failure one line saying what to change. Steps: DNS, TCP, TLS
//! (certificate names, trust, validity), authentication (the schemes offered, the one
//! used, why it failed), the server version, Subscribe + Unsubscribe for a test
//! mailbox (proves impersonation rights), GetUserAvailability and GetUserOofSettings.
//! With Autodiscover and no `url`, the test mailbox's EWS URL is discovered first.
//! Each `[[sip]]` presence server is checked too ([`sip`]): OPTIONS, then a PUBLISH
//! and its removal for the test mailbox's presentity. A `kind = "graph"` gateway has
//! its own steps ([`graph`]): token, calendar, mailbox settings, subscription.
//!
//! Without a test mailbox, every step that needs none still runs (authentication is
//! then proved with GetServiceConfiguration, which names no mailbox), and the mailbox
//! steps are `skipped` with the reason and the fix; a skipped step is not a failure.
//! Inside the daemon, the checks pass the gateway's credential gate like every other
//! request: while the credentials are refused, the check says when the next attempt
//! is instead of logging in.

pub mod graph;
pub mod report;
pub mod sip;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::CertificateError;
use rustls_pki_types::ServerName;
use serde::Serialize;

use crate::config::{Config, GatewayConfig};
use crate::engine::gateway::credentials::CredentialGate;
use common::mailbox::Mailbox;
use ews::autodiscover::client::Discoverer;
use ews::error::EwsError;
use ews::ops::{
    get_service_configuration, get_user_availability, get_user_oof_settings, subscribe, unsubscribe,
};
use ews::soap::{RequestHeader, envelope};
use ews::stream::Response;
use ews::transport::{Auth, Lane, Route, Transport, client_tls};
use tokio::task::JoinSet;

/// Time each step may take.
pub const STEP_TIMEOUT: Duration = Duration::from_secs(15);

/// How a step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// It passed.
    Pass,
    /// It failed: `fix` says what to change.
    Fail,
    /// It could not run (it needs something not given): `fix` says how to run it.
    Skipped,
}

/// One step's result.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    /// The step (`dns`, `tcp`, `tls`, `auth`, …).
    pub step: &'static str,
    /// How it ended.
    pub result: Outcome,
    /// Whether it did not fail (passed or skipped).
    pub ok: bool,
    /// What it took, in milliseconds.
    pub millis: u64,
    /// What was found (on success) or what went wrong.
    pub detail: String,
    /// On failure: what to change.
    pub fix: Option<String>,
}

pub(crate) struct Steps(Vec<Step>);

impl Steps {
    pub(crate) fn pass(&mut self, step: &'static str, started: Instant, detail: impl Into<String>) {
        self.0.push(Step {
            step,
            result: Outcome::Pass,
            ok: true,
            millis: started.elapsed().as_millis() as u64,
            detail: detail.into(),
            fix: None,
        });
    }

    /// Marks `names` skipped for want of a test mailbox; returns every step.
    pub(crate) fn skip_mailbox_steps(mut self, names: &[&'static str]) -> Vec<Step> {
        for step in names {
            self.0.push(Step {
                step,
                result: Outcome::Skipped,
                ok: true,
                millis: 0,
                detail: "needs a test mailbox; none is configured on this gateway".into(),
                fix: Some(
                    "pass --mailbox ADDRESS, or assign a mailbox to this gateway in [mailboxes]"
                        .into(),
                ),
            });
        }
        self.0
    }

    pub(crate) fn fail(
        &mut self,
        step: &'static str,
        started: Instant,
        detail: impl Into<String>,
        fix: impl Into<String>,
    ) -> Vec<Step> {
        self.0.push(Step {
            step,
            result: Outcome::Fail,
            ok: false,
            millis: started.elapsed().as_millis() as u64,
            detail: detail.into(),
            fix: Some(fix.into()),
        });
        std::mem::take(&mut self.0)
    }
}

pub(crate) async fn timed<T>(future: impl std::future::Future<Output = T>) -> Option<T> {
    tokio::time::timeout(STEP_TIMEOUT, future).await.ok()
}

/// The steps that need a test mailbox, in order.
const MAILBOX_STEPS: [&str; 3] = ["subscribe", "availability", "automatic replies"];

/// Sends through a gateway's credential gate when there is one (inside the daemon).
#[derive(Clone, Copy)]
struct Gate<'a>(Option<&'a CredentialGate>);

impl Gate<'_> {
    /// Runs `request` unless the gate is closed (then its refusal, nothing sent), and
    /// tells the gate how it went.
    async fn send<T>(
        self,
        request: impl std::future::Future<Output = Result<T, EwsError>>,
    ) -> Result<T, EwsError> {
        let Some(gate) = self.0 else {
            return request.await;
        };
        gate.pass().await?;
        let result = request.await;
        gate.outcome(result.as_ref().map(|_| ()), tokio::time::Instant::now());
        result
    }
}

/// Runs every step for `gateway` with `mailbox` as the test mailbox (without one, the
/// mailbox steps are skipped); stops at the first failure (later steps need the
/// earlier ones). With `gate`, every request passes that credential gate.
pub async fn check(
    gateway: &GatewayConfig,
    certs_dir: &Path,
    mailbox: Option<&Mailbox>,
    gate: Option<&CredentialGate>,
) -> Vec<Step> {
    let gate = Gate(gate);
    let mut steps = Steps(Vec::new());
    let tls = match client_tls(gateway.ca_file.as_deref(), certs_dir) {
        Ok(tls) => tls,
        Err(e) => {
            return steps.fail(
                "tls",
                Instant::now(),
                e.to_string(),
                "fix the CA file named in the error",
            );
        }
    };
    // Where EWS is: the configured url, or what Autodiscover says for the mailbox.
    let url = match (&gateway.url, gateway.discovery()) {
        (Some(url), _) => url.clone(),
        (None, Some(discovery)) => {
            let started = Instant::now();
            let Some(mailbox) = mailbox else {
                steps.0.push(Step {
                    step: "autodiscover",
                    result: Outcome::Skipped,
                    ok: true,
                    millis: 0,
                    detail: "Autodiscover finds the EWS URL of a mailbox, and no url is configured; every later step needs that URL".into(),
                    fix: Some("pass --mailbox ADDRESS, or assign a mailbox to this gateway in [mailboxes], or set url".into()),
                });
                return steps.0;
            };
            let outcome = Discoverer::new(discovery, tls.clone())
                .discover(std::slice::from_ref(mailbox))
                .await
                .pop()
                .map(|(_, o)| o);
            match outcome {
                Some(Ok(found)) => {
                    steps.pass(
                        "autodiscover",
                        started,
                        format!(
                            "{} (GroupingInformation {})",
                            found.ews_url,
                            found.grouping.as_deref().unwrap_or("none")
                        ),
                    );
                    found.ews_url
                }
                Some(Err(e)) => {
                    return steps.fail(
                        "autodiscover",
                        started,
                        e.to_string(),
                        "set autodiscover_url to a working Autodiscover endpoint, or set url",
                    );
                }
                None => return steps.fail("autodiscover", started, "no answer", "set url"),
            }
        }
        (None, None) => return steps.0,
    };
    let host = url.host().unwrap_or_default().to_owned();
    let https = url.scheme_str() == Some("https");
    let port = url.port_u16().unwrap_or(if https { 443 } else { 80 });

    let started = Instant::now();
    let addresses: Vec<std::net::SocketAddr> =
        match timed(tokio::net::lookup_host((host.as_str(), port))).await {
            Some(Ok(found)) => found.collect(),
            Some(Err(e)) => {
                return steps.fail(
                    "dns",
                    started,
                    format!("{host}: {e}"),
                    format!("check the host name in the URL ({host}) and this machine's DNS"),
                );
            }
            None => {
                return steps.fail(
                    "dns",
                    started,
                    "no answer in time",
                    "check this machine's DNS servers",
                );
            }
        };
    let Some(first) = addresses.first().copied() else {
        return steps.fail(
            "dns",
            started,
            format!("{host} has no address"),
            "check the host name in the URL",
        );
    };
    steps.pass("dns", started, format!("{host} → {first}"));

    let started = Instant::now();
    let tcp = match timed(tokio::net::TcpStream::connect(first)).await {
        Some(Ok(tcp)) => tcp,
        Some(Err(e)) => {
            return steps.fail("tcp", started, format!("{first}: {e}"), format!("open port {port} from this machine to {host} (firewall, proxy), or fix the port in the URL"));
        }
        None => {
            return steps.fail(
                "tcp",
                started,
                format!("{first}: no answer in time"),
                format!("a firewall drops traffic to {host}:{port}"),
            );
        }
    };
    steps.pass("tcp", started, format!("connected to {first}"));

    let started = Instant::now();
    if https {
        let name = match ServerName::try_from(host.clone()) {
            Ok(name) => name,
            Err(e) => return steps.fail("tls", started, e.to_string(), "fix the host in the URL"),
        };
        let mut config = (*tls).clone();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        match timed(connector.connect(name, tcp)).await {
            Some(Ok(_)) => steps.pass("tls", started, "certificate verified"),
            Some(Err(e)) => {
                let (detail, fix) = explain_tls(&e, &host, gateway, certs_dir);
                return steps.fail("tls", started, detail, fix);
            }
            None => {
                return steps.fail(
                    "tls",
                    started,
                    "no TLS handshake in time",
                    "check that the port serves HTTPS",
                );
            }
        }
    } else {
        steps.pass(
            "tls",
            started,
            "plain HTTP: no TLS (credentials and calendars cross the network unencrypted)",
        );
    }

    // What the server offers, asked without credentials.
    let started = Instant::now();
    let transport = match Transport::new(&gateway.transport_to(&url), tls) {
        Ok(t) => t,
        Err(e) => return steps.fail("auth", started, e.to_string(), "fix the gateway's url"),
    };
    let offered = match timed(transport.offered_schemes()).await {
        Some(Ok(offers)) => offers,
        Some(Err(e)) => format!("unknown ({e})"),
        None => "unknown (no answer in time)".into(),
    };
    fn header<'a>(gateway: &GatewayConfig, impersonate: Option<&'a Mailbox>) -> RequestHeader<'a> {
        RequestHeader {
            server_version: gateway.server_version,
            impersonate,
        }
    }
    // The first request with credentials: Subscribe for the test mailbox, or without
    // one GetServiceConfiguration, which names no mailbox.
    let impersonate = mailbox.filter(|_| gateway.impersonation);
    let route = Route {
        anchor: mailbox,
        cookie: None,
    };
    let first = match mailbox {
        Some(_) => envelope(&header(gateway, impersonate), &subscribe::body()),
        None => envelope(&header(gateway, None), &get_service_configuration::body()),
    };
    let subscribed = timed(gate.send(transport.call(first, &route, Lane::Normal))).await;
    let used = gateway.auth.scheme();
    let answer = match subscribed {
        None => {
            return steps.fail(
                "auth",
                started,
                "no answer in time",
                "check the server's load; raise request_timeout_secs",
            );
        }
        Some(Err(e)) if e.is_refused_credentials() => {
            let fix = match &gateway.auth {
                Auth::Ntlm { .. } if !offered.contains("NTLM") && !offered.contains("Negotiate") => {
                    "the server does not offer Windows authentication: use the auth it offers".to_owned()
                }
                Auth::Basic { .. } if !offered.contains("Basic") => {
                    "the server does not offer Basic: set auth = \"ntlm\"".to_owned()
                }
                Auth::Ntlm { .. } => "check username (DOMAIN\\user or a UPN) and password_file; with Extended Protection, make sure no TLS-inspecting proxy sits in between".to_owned(),
                _ => "check the credentials".to_owned(),
            };
            return steps.fail(
                "auth",
                started,
                format!("offered: {offered}; used: {used}; {e}"),
                fix,
            );
        }
        Some(result) => {
            steps.pass(
                "auth",
                started,
                format!("offered: {offered}; used: {used}; accepted"),
            );
            result
        }
    };

    let started = Instant::now();
    let answer = match (answer, mailbox) {
        (Ok(a), _) => a,
        (Err(e), Some(mailbox)) => {
            return steps.fail(
                "subscribe",
                started,
                e.to_string(),
                subscribe_fix(&e, mailbox),
            );
        }
        (Err(e), None) => {
            return steps.fail(
                "server version",
                started,
                format!("GetServiceConfiguration: {e}"),
                "see the error; the server's EWS logs say more",
            );
        }
    };
    match answer.envelope.server_version.as_ref() {
        Some(v) => steps.pass(
            "server version",
            started,
            match (&v.major, &v.minor, &v.major_build, &v.minor_build) {
                (Some(a), Some(b), Some(c), Some(d)) => format!(
                    "{a}.{b}.{c}.{d} ({})",
                    v.version.clone().unwrap_or_default()
                ),
                _ => v
                    .version
                    .clone()
                    .unwrap_or_else(|| "reported without numbers".into()),
            },
        ),
        None => steps.pass("server version", started, "not reported"),
    }
    let Some(mailbox) = mailbox else {
        return steps.skip_mailbox_steps(&MAILBOX_STEPS);
    };
    let id = match answer.envelope.response {
        Response::Subscribe(r) => match (r.status.into_result(), r.subscription_id) {
            (Ok(()), Some(id)) => id,
            (Err(e), _) => {
                return steps.fail(
                    "subscribe",
                    started,
                    e.to_string(),
                    subscribe_fix(&e, mailbox),
                );
            }
            (Ok(()), None) => {
                return steps.fail(
                    "subscribe",
                    started,
                    "NoError without a SubscriptionId",
                    "the server is not answering as EWS does",
                );
            }
        },
        other => {
            return steps.fail(
                "subscribe",
                started,
                format!("unexpected {} answer", other.operation()),
                "is the URL an EWS endpoint (…/EWS/Exchange.asmx)?",
            );
        }
    };
    let cookie = answer.affinity_cookie;
    let route = Route {
        anchor: Some(mailbox),
        cookie: cookie.as_deref(),
    };
    let unsubscribed = timed(gate.send(transport.call(
        envelope(&header(gateway, impersonate), &unsubscribe::body(&id)),
        &route,
        Lane::Teardown,
    )))
    .await;
    match unsubscribed {
        Some(Ok(a)) => match a.envelope.response {
            Response::Unsubscribe(r) if r.status.code.is_success() => {
                steps.pass(
                    "subscribe",
                    started,
                    format!("Subscribe and Unsubscribe for {mailbox}"),
                );
            }
            Response::Unsubscribe(r) => {
                return steps.fail(
                    "subscribe",
                    started,
                    format!("Unsubscribe: {}", r.status.code),
                    "the subscription expires by itself; check the server's EWS logs",
                );
            }
            other => {
                return steps.fail(
                    "subscribe",
                    started,
                    format!("unexpected {} answer to Unsubscribe", other.operation()),
                    "the server is not answering as EWS does",
                );
            }
        },
        Some(Err(e)) => {
            return steps.fail(
                "subscribe",
                started,
                format!("Unsubscribe: {e}"),
                "the subscription expires by itself; check the server's EWS logs",
            );
        }
        None => {
            return steps.fail(
                "subscribe",
                started,
                "Unsubscribe: no answer in time",
                "check the server's load",
            );
        }
    }

    let started = Instant::now();
    let now = jiff::Timestamp::now();
    let body = match get_user_availability::body(
        std::slice::from_ref(mailbox),
        now,
        now + jiff::SignedDuration::from_hours(24),
    ) {
        Ok(b) => b,
        Err(e) => {
            return steps.fail(
                "availability",
                started,
                e.to_string(),
                "report this as a bug",
            );
        }
    };
    match timed(gate.send(transport.call(envelope(&header(gateway, None), &body), &Route::default(), Lane::Normal))).await {
        Some(Ok(a)) => match a.envelope.response {
            Response::GetUserAvailability(r) => match r.mailboxes.first() {
                Some(m) if m.status.code.is_success() => steps.pass("availability", started, format!("{} event(s) in the next 24 h", m.events.len())),
                Some(m) => return steps.fail("availability", started, m.status.code.to_string(), "the service account needs free/busy access to the mailbox (default: everyone has it)"),
                None => return steps.fail("availability", started, "an empty answer", "the server is not answering as EWS does"),
            },
            other => return steps.fail("availability", started, format!("unexpected {} answer", other.operation()), "the server is not answering as EWS does"),
        },
        Some(Err(e)) => return steps.fail("availability", started, e.to_string(), "check the throttling policy for the service account"),
        None => return steps.fail("availability", started, "no answer in time", "check the server's load"),
    }

    let started = Instant::now();
    let oof = envelope(
        &header(gateway, impersonate),
        &get_user_oof_settings::body(mailbox),
    );
    match timed(gate.send(transport.call(
        oof,
        &Route {
            anchor: Some(mailbox),
            cookie: None,
        },
        Lane::Normal,
    )))
    .await
    {
        Some(Ok(a)) => match a.envelope.response {
            Response::GetUserOofSettings(r) if r.status.code.is_success() => {
                steps.pass("automatic replies", started, "GetUserOofSettings answered");
            }
            Response::GetUserOofSettings(r) => return steps.fail(
                "automatic replies",
                started,
                r.status.code.to_string(),
                "grant ApplicationImpersonation for the mailbox (docs/configuration.md: Granting impersonation)",
            ),
            other => {
                return steps.fail(
                    "automatic replies",
                    started,
                    format!("unexpected {} answer", other.operation()),
                    "the server is not answering as EWS does",
                );
            }
        },
        Some(Err(e)) => {
            return steps.fail(
                "automatic replies",
                started,
                e.to_string(),
                "grant ApplicationImpersonation for the mailbox (docs/configuration.md: Granting impersonation)",
            );
        }
        None => {
            return steps.fail(
                "automatic replies",
                started,
                "no answer in time",
                "check the server's load",
            );
        }
    }
    steps.0
}

/// One gateway's steps.
#[derive(Debug)]
pub struct GatewayCheck {
    /// The gateway's name.
    pub gateway: String,
    /// Its steps, in order.
    pub steps: Vec<Step>,
}

impl GatewayCheck {
    /// Whether no step failed (skipped steps are not failures).
    pub fn ok(&self) -> bool {
        !self.steps.is_empty() && self.steps.iter().all(|s| s.result != Outcome::Fail)
    }

    /// How many steps failed.
    pub fn failures(&self) -> usize {
        self.steps
            .iter()
            .filter(|s| s.result == Outcome::Fail)
            .count()
    }
}

/// The daemon's running gateways, by name, whose credential gates (and tokens) the
/// checks use (empty for the CLI, which runs outside the daemon).
#[derive(Debug, Default, Clone)]
pub struct Gates {
    /// EWS gateways.
    pub ews: std::collections::HashMap<String, Arc<crate::engine::gateway::Gateway>>,
    /// Graph gateways.
    pub graph: std::collections::HashMap<String, Arc<crate::graph::gateway::GraphGateway>>,
}

/// Checks every gateway and SIP presence server of `config` in parallel, with `mailbox` (else each gateway's
/// first configured mailbox, else none: the mailbox steps are skipped) as the test
/// mailbox; in configuration order. A gateway in `gates` sends through its gate.
pub async fn check_all(
    config: &Config,
    mailbox: Option<&Mailbox>,
    gates: &Gates,
) -> Vec<GatewayCheck> {
    let mut running = JoinSet::new();
    for (index, gateway) in config.gateways.iter().enumerate() {
        let test_mailbox = mailbox.cloned().or_else(|| {
            config
                .mailboxes
                .iter()
                .find(|(_, g)| *g == index)
                .map(|(m, _)| m.clone())
        });
        let running_gateway = gates.ews.get(&gateway.name).cloned();
        let running_graph = gates.graph.get(&gateway.name).cloned();
        let gateway = gateway.clone();
        let certs = config.certs_dir.clone();
        running.spawn(async move {
            let gate = running_gateway.as_ref().map(|g| &g.credentials);
            let steps = if gateway.graph.is_some() {
                graph::check(&gateway, &certs, test_mailbox.as_ref(), running_graph).await
            } else {
                check(&gateway, &certs, test_mailbox.as_ref(), gate).await
            };
            (
                index,
                GatewayCheck {
                    gateway: gateway.name.clone(),
                    steps,
                },
            )
        });
    }
    let first_mailbox = mailbox
        .cloned()
        .or_else(|| config.mailboxes.first().map(|(m, _)| m.clone()));
    for (index, server) in config.sips.iter().enumerate() {
        let server = server.clone();
        let certs = config.certs_dir.clone();
        let test_mailbox = first_mailbox.clone();
        let index = config.gateways.len() + index;
        running.spawn(async move {
            let steps = sip::check(&server, &certs, test_mailbox.as_ref()).await;
            (
                index,
                GatewayCheck {
                    gateway: server.name.clone(),
                    steps,
                },
            )
        });
    }
    let mut done: Vec<(usize, GatewayCheck)> = Vec::new();
    while let Some(joined) = running.join_next().await {
        if let Ok(result) = joined {
            done.push(result);
        }
    }
    done.sort_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, c)| c).collect()
}

fn subscribe_fix(error: &EwsError, mailbox: &Mailbox) -> String {
    let text = error.to_string();
    if text.contains("Impersonat") {
        "grant the service account ApplicationImpersonation over this mailbox (docs/configuration.md: Granting impersonation)".into()
    } else if text.contains("NonExistentMailbox") || text.contains("InvalidSmtpAddress") {
        format!("{mailbox} has no mailbox on this server: test with --mailbox ADDRESS")
    } else if text.contains("ExceededConnectionCount") || text.contains("ServerBusy") {
        "the server throttles the account: raise its EWS limits or keep impersonation on".into()
    } else {
        "see the error; the server's EWS logs say more".into()
    }
}

/// Says plainly what is wrong with a TLS handshake and which file would fix it.
fn explain_tls(
    error: &std::io::Error,
    host: &str,
    gateway: &GatewayConfig,
    certs_dir: &Path,
) -> (String, String) {
    let rustls_error = error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>());
    let trust = match &gateway.ca_file {
        Some(file) => format!("ca_file ({})", file.display()),
        None => format!(
            "the system roots and every *.pem in {}",
            certs_dir.display()
        ),
    };
    match rustls_error {
        Some(rustls::Error::InvalidCertificate(CertificateError::NotValidForName))
        | Some(rustls::Error::InvalidCertificate(CertificateError::NotValidForNameContext {
            ..
        })) => (
            format!("the certificate's names do not cover {host}"),
            format!(
                "use the host name the certificate was issued for in url (or reissue the certificate with {host} in its subject alternative names)"
            ),
        ),
        Some(rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer)) => (
            format!("the certificate is not issued by a CA we trust ({trust})"),
            match &gateway.ca_file {
                Some(_) => {
                    "point ca_file at the PEM of the CA that issued the server's certificate".into()
                }
                None => format!(
                    "put the issuing CA's certificate, as PEM, in {}/ (or set ca_file)",
                    certs_dir.display()
                ),
            },
        ),
        Some(rustls::Error::InvalidCertificate(CertificateError::BadSignature)) => (
            format!(
                "the certificate names a trusted CA ({trust}) as its issuer, but that CA did not sign it (a replaced CA, or another with the same name)"
            ),
            "replace the trusted CA's PEM with the one that really issued the server's certificate"
                .into(),
        ),
        Some(rustls::Error::InvalidCertificate(CertificateError::Expired))
        | Some(rustls::Error::InvalidCertificate(CertificateError::ExpiredContext { .. })) => (
            "the server's certificate has expired".into(),
            "renew the certificate on the Exchange server (or its load balancer)".into(),
        ),
        Some(rustls::Error::InvalidCertificate(CertificateError::NotValidYet))
        | Some(rustls::Error::InvalidCertificate(CertificateError::NotValidYetContext {
            ..
        })) => (
            "the server's certificate is not valid yet".into(),
            "check the clocks of this machine and the server".into(),
        ),
        Some(other) => (
            format!("TLS: {other}"),
            "check the server's TLS configuration".into(),
        ),
        None => (
            format!("TLS: {error}"),
            "check that the port serves HTTPS".into(),
        ),
    }
}

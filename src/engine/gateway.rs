//! One EWS server's runtime: its client, what `/v1/gateways` reports about it
//! (reachability, TLS, authentication, server version, errors, throttling), and its
//! counters.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use jiff::Timestamp;
use serde_json::{Value, json};

use crate::config::GatewayConfig;
use crate::ews::error::{Disposition, EwsError};
use crate::ews::soap::ServerVersionInfo;
use crate::ews::transport::Transport;

#[derive(Debug, Default, Clone)]
struct Status {
    reachable: Option<bool>,
    tls_verified: Option<bool>,
    auth_ok: Option<bool>,
    server_version: Option<String>,
    last_error: Option<(Timestamp, String)>,
    throttled_until: Option<Timestamp>,
    over_capacity: usize,
}

/// A gateway at run time.
#[derive(Debug)]
pub struct Gateway {
    /// Its configuration.
    pub config: GatewayConfig,
    /// Its client.
    pub transport: Transport,
    status: Mutex<Status>,
    /// Streaming connection groups.
    pub groups: AtomicUsize,
    /// Streams open now.
    pub streams_open: AtomicUsize,
    /// Subscriptions held now.
    pub subscriptions_live: AtomicUsize,
    /// Mailboxes whose Subscribe failed for good.
    pub subscriptions_failed: AtomicUsize,
    /// Notification events received so far.
    pub events_received: std::sync::atomic::AtomicU64,
}

impl Gateway {
    /// A gateway with its client.
    pub fn new(config: GatewayConfig, transport: Transport) -> Gateway {
        Gateway {
            config,
            transport,
            status: Mutex::new(Status::default()),
            groups: AtomicUsize::new(0),
            streams_open: AtomicUsize::new(0),
            subscriptions_live: AtomicUsize::new(0),
            subscriptions_failed: AtomicUsize::new(0),
            events_received: std::sync::atomic::AtomicU64::new(0),
        }
    }

    fn status(&self) -> std::sync::MutexGuard<'_, Status> {
        crate::util::lock(&self.status)
    }

    /// The server answered (with anything SOAP).
    pub fn answered(&self, version: Option<&ServerVersionInfo>) {
        let mut s = self.status();
        s.reachable = Some(true);
        s.auth_ok = Some(true);
        if self.config.url.scheme_str() == Some("https") {
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
        let mut s = self.status();
        s.last_error = Some((Timestamp::now(), error.to_string()));
        match error {
            EwsError::Tls(_) => {
                s.tls_verified = Some(false);
                s.reachable = Some(true);
            }
            EwsError::Transport(_) | EwsError::Timeout(_) => s.reachable = Some(false),
            EwsError::Http { status: 401 | 403 } => {
                s.auth_ok = Some(false);
                s.reachable = Some(true);
            }
            _ => s.reachable = Some(true),
        }
        if let Disposition::Throttled(wait) = error.disposition() {
            s.throttled_until = Timestamp::now().checked_add(wait).ok();
        }
    }

    /// Mailboxes left unsubscribed because the connections are full.
    pub fn set_over_capacity(&self, n: usize) {
        self.status().over_capacity = n;
    }

    /// `/v1/gateways` entry.
    pub fn to_json(&self, mailboxes: usize, unknown: usize) -> Value {
        let s = self.status().clone();
        let now = Timestamp::now();
        json!({
            "name": self.config.name,
            "url": self.config.url.to_string(),
            "reachable": s.reachable,
            "tls": self.config.url.scheme_str() == Some("https"),
            "tls_verified": s.tls_verified,
            "auth_ok": s.auth_ok,
            "server_version": s.server_version,
            "groups": self.groups.load(Ordering::Relaxed),
            "connections_open": self.streams_open.load(Ordering::Relaxed),
            "max_connections": self.config.max_connections,
            "subscriptions_live": self.subscriptions_live.load(Ordering::Relaxed),
            "subscriptions_failed": self.subscriptions_failed.load(Ordering::Relaxed),
            "mailboxes": mailboxes,
            "mailboxes_unknown": unknown,
            "mailboxes_over_capacity": s.over_capacity,
            "last_error": s.last_error.map(|(at, message)| json!({"at": at.to_string(), "message": message})),
            "throttled_until": s.throttled_until.filter(|t| *t > now).map(|t| t.to_string()),
        })
    }
}

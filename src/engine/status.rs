//! A read-only view of the engine for the API: per gateway, what the server has shown
//! of itself and the sum of its groups' status (read from their `watch` channels).

use std::sync::Arc;

use super::GatewayRuntime;
use super::gateway::Health;
use common::mailbox::Mailbox;
use common::sync::lock;

/// One gateway's status, as `/v1/gateways` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayReport {
    /// Its name.
    pub name: String,
    /// `ews` or `graph`.
    pub kind: &'static str,
    /// Its EWS URL.
    pub url: String,
    /// Whether the URL is https.
    pub tls: bool,
    /// The configured authentication scheme (`ntlm`, `basic`, `bearer`, `none`).
    pub auth: &'static str,
    /// What the server has shown of itself.
    pub health: Health,
    /// Connection groups.
    pub groups: usize,
    /// Groups waiting to retry.
    pub groups_waiting: usize,
    /// Streams open now.
    pub connections_open: usize,
    /// The configured limit of streams.
    pub max_connections: Option<usize>,
    /// Subscriptions held.
    pub subscriptions_live: usize,
    /// Mailboxes whose Subscribe was refused.
    pub subscriptions_failed: usize,
    /// Mailboxes configured on it.
    pub mailboxes: usize,
    /// Mailboxes beyond its connection limit.
    pub mailboxes_over_capacity: usize,
    /// Notification events received so far.
    pub events_received: u64,
    /// Streams carry one mailbox each (the server ties subscriptions to their user).
    pub one_mailbox_per_stream: bool,
    /// How automatic replies are read.
    pub auto_replies: String,
    /// Mailboxes Autodiscover could not place (and no `url` serves), with why.
    pub undiscovered: Vec<(Mailbox, String)>,
    /// Credentials cross the network in clear (`allow_plain_http`), in words.
    pub plain_http: Option<String>,
}

/// A gateway of another source that reports itself.
pub trait GatewayStatus: std::fmt::Debug + Send + Sync {
    /// Its status now.
    fn report(&self) -> GatewayReport;
}

/// Cheap to clone; reads only.
#[derive(Debug, Clone, Default)]
pub struct StatusHandle {
    /// The EWS gateways, by their place in the configuration.
    pub(super) gateways: Vec<(usize, Arc<GatewayRuntime>)>,
    /// The other sources' gateways, by their place.
    pub(super) others: Vec<(usize, Arc<dyn GatewayStatus>)>,
}

impl StatusHandle {
    /// The running EWS gateways by name (their credential gates, for the checks).
    pub fn gates(&self) -> crate::check::Gates {
        crate::check::Gates {
            ews: self
                .gateways
                .iter()
                .map(|(_, runtime)| (runtime.gateway.config.name.clone(), runtime.gateway.clone()))
                .collect(),
            graph: Default::default(),
        }
    }

    /// Every gateway's status, in configuration order.
    pub fn gateways(&self) -> Vec<GatewayReport> {
        let mut all: Vec<(usize, GatewayReport)> = self
            .gateways
            .iter()
            .map(|(i, runtime)| (*i, report(runtime)))
            .chain(self.others.iter().map(|(i, g)| (*i, g.report())))
            .collect();
        all.sort_by_key(|(i, _)| *i);
        all.into_iter().map(|(_, r)| r).collect()
    }

    /// A handle over other sources' gateways only.
    pub fn of_others(others: Vec<(usize, Arc<dyn GatewayStatus>)>) -> StatusHandle {
        StatusHandle {
            gateways: Vec::new(),
            others,
        }
    }

    /// This handle and `other`'s gateways together.
    pub fn merge(mut self, other: StatusHandle) -> StatusHandle {
        self.gateways.extend(other.gateways);
        self.others.extend(other.others);
        self
    }
}

fn report(runtime: &GatewayRuntime) -> GatewayReport {
    let config = &runtime.gateway.config;
    let over_capacity = lock(&runtime.overflow).len();
    let mut r = GatewayReport {
        name: config.name.clone(),
        kind: "ews",
        url: config.describe_url(),
        tls: config.uses_tls(),
        auth: config.auth.scheme(),
        health: runtime.gateway.health(),
        groups: 0,
        groups_waiting: 0,
        connections_open: 0,
        max_connections: config.max_connections,
        subscriptions_live: 0,
        subscriptions_failed: 0,
        mailboxes: over_capacity,
        mailboxes_over_capacity: over_capacity,
        events_received: runtime.gateway.events_received(),
        one_mailbox_per_stream: runtime.gateway.single_mailbox_streams(),
        auto_replies: runtime.refresh.auto_reply_source().describe(),
        undiscovered: super::discovery::undiscovered(runtime),
        plain_http: config.plain_http_warning(),
    };
    for handle in lock(&runtime.groups).iter() {
        r.mailboxes += handle.members.borrow().len();
        let status = handle.status.borrow();
        r.groups += 1;
        r.groups_waiting += usize::from(status.waiting.is_some());
        r.connections_open += usize::from(status.stream_open);
        r.subscriptions_live += status.subscribed;
        r.subscriptions_failed += status.refused;
    }
    r
}

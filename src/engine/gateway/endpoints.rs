//! Where a gateway's requests go. Without Autodiscover every request goes to the
//! configured `url`; with it, each mailbox has a [`Placement`] (its EWS URL and
//! `GroupingInformation`), a request routed to an anchor goes to the anchor's EWS URL,
//! and groups are formed per [`GroupKey`]. One [`Transport`] (with its own pool of
//! authenticated connections) per EWS URL, made when first needed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use hyper::Uri;

use crate::config::GatewayConfig;
use common::mailbox::Mailbox;
use common::sync::lock;
use ews::error::EwsError;
use ews::transport::Transport;

/// Where Autodiscover put a mailbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    /// Its EWS URL.
    pub url: Uri,
    /// Its `GroupingInformation`.
    pub grouping: Option<String>,
}

/// What a group's members share: the EWS URL and `GroupingInformation` (Microsoft's
/// affinity guidance: group by both, at most 200 per group).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GroupKey {
    /// The EWS URL (empty when none is known).
    pub url: String,
    /// The `GroupingInformation`, when Autodiscover gave one.
    pub grouping: Option<String>,
}

/// A gateway's EWS endpoints and its mailboxes' placements.
#[derive(Debug)]
pub struct Endpoints {
    config: GatewayConfig,
    tls: Arc<rustls::ClientConfig>,
    transports: Mutex<HashMap<Uri, Transport>>,
    placements: Mutex<HashMap<Mailbox, Placement>>,
}

impl Endpoints {
    /// The endpoints of `config`, trusting `tls`; the configured `url`'s client is made
    /// now, so that a bad URL fails at start.
    pub fn new(
        config: &GatewayConfig,
        tls: Arc<rustls::ClientConfig>,
    ) -> Result<Endpoints, EwsError> {
        let endpoints = Endpoints {
            config: config.clone(),
            tls,
            transports: Mutex::new(HashMap::new()),
            placements: Mutex::new(HashMap::new()),
        };
        if let Some(url) = &config.url {
            endpoints.transport(url)?;
        }
        Ok(endpoints)
    }

    fn transport(&self, url: &Uri) -> Result<Transport, EwsError> {
        let mut transports = lock(&self.transports);
        if let Some(t) = transports.get(url) {
            return Ok(t.clone());
        }
        let transport = Transport::new(&self.config.transport_to(url), self.tls.clone())?;
        transports.insert(url.clone(), transport.clone());
        Ok(transport)
    }

    /// The EWS URL for requests routed to `anchor`: its placement, else the configured
    /// `url`, else (for requests any server answers, such as GetUserAvailability) any
    /// placed mailbox's.
    pub fn url_for(&self, anchor: Option<&Mailbox>) -> Option<Uri> {
        let placements = lock(&self.placements);
        anchor
            .and_then(|a| placements.get(a))
            .map(|p| p.url.clone())
            .or_else(|| self.config.url.clone())
            .or_else(|| placements.values().next().map(|p| p.url.clone()))
    }

    /// The client for requests routed to `anchor`.
    pub fn transport_for(&self, anchor: Option<&Mailbox>) -> Result<Transport, EwsError> {
        let url = self.url_for(anchor).ok_or_else(|| {
            EwsError::Protocol("no EWS URL is known yet (Autodiscover has not answered)".into())
        })?;
        self.transport(&url)
    }

    /// Records where `mailbox` lives (None: the configured `url`).
    pub fn place(&self, mailbox: &Mailbox, placement: Option<Placement>) {
        let mut placements = lock(&self.placements);
        match placement {
            Some(p) => {
                placements.insert(mailbox.clone(), p);
            }
            None => {
                placements.remove(mailbox);
            }
        }
    }

    /// Forgets `mailbox`.
    pub fn forget(&self, mailbox: &Mailbox) {
        lock(&self.placements).remove(mailbox);
    }

    /// Where `mailbox` lives, if Autodiscover said.
    pub fn placement(&self, mailbox: &Mailbox) -> Option<Placement> {
        lock(&self.placements).get(mailbox).cloned()
    }

    /// The group key of `mailbox`.
    pub fn key_of(&self, mailbox: &Mailbox) -> GroupKey {
        match self.placement(mailbox) {
            Some(p) => GroupKey {
                url: p.url.to_string(),
                grouping: p.grouping,
            },
            None => GroupKey {
                url: self
                    .config
                    .url
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_default(),
                grouping: None,
            },
        }
    }
}

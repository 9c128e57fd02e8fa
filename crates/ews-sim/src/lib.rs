//! The fake Exchange: a simulated EWS server with known ground truth that can
//! misbehave on command. Every test, the demo and every benchmark run against it.
//!
//! - [`model`], [`calendar_gen`], [`rng`]: the ground truth (calendars, automatic
//!   replies) and its seeded generation; truth is computed here, independently of the
//!   daemon's presence code.
//! - [`mutations`]: changes to calendars and the notification events they raise.
//! - [`subscriptions`]: streaming subscriptions, their queues and idle expiry.
//! - [`endpoint`] (dispatch) with [`ops_subscription`], [`streaming`], [`ops_calendar`],
//!   [`ops_availability`], [`ops_oof`]: the EWS endpoint, over [`request`] (what clients
//!   send), [`soap_out`] (what Exchange answers) and [`timezone`].
//! - [`control`]: the JSON control API under `/sim/`; [`faults`] and [`stats`] are what
//!   it changes and reads; [`churn`] makes random changes at a set rate.
//! - [`http`]: the HTTP(S) listener and routing; [`auth`]: Basic, Bearer and NTLM
//!   (per connection, with Extended Protection) as IIS checks them; [`tls`] loads the
//!   certificate and its channel binding; [`autodiscover`]: SOAP and POX Autodiscover
//!   consistent with the backends.
//! - [`graph`]: Microsoft Graph over the same truth (`simulate --graph`): token,
//!   events, getSchedule, mailbox settings, subscriptions with notifications, `$batch`.
//!
//! The simulator reuses the `ews` crate's wire types but nothing of the daemon, and
//! nothing of the daemon's library depends on it: only the `demo` and `simulate`
//! commands of the binary, the tests and the benchmarks do.

#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

pub mod auth;
pub mod autodiscover;
pub mod calendar_gen;
pub mod churn;
pub mod control;
pub mod endpoint;
pub mod faults;
pub mod graph;
pub mod http;
pub mod model;
pub mod mutations;
pub mod ops_availability;
pub mod ops_calendar;
pub mod ops_mail_tips;
pub mod ops_oof;
pub mod ops_subscription;
pub mod request;
pub mod rng;
pub mod soap_out;
pub mod stats;
pub mod streaming;
pub mod subscriptions;
pub mod timezone;
pub mod tls;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use faults::Faults;
use model::Directory;
use stats::Stats;
use subscriptions::Registry;

/// Protocol minutes an unread subscription lives (not documented by Microsoft;
/// observed servers keep them tens of minutes).
pub const SUBSCRIPTION_IDLE_MINUTES: u32 = 30;

/// Who owns a subscription, and so who may read and remove it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SubscriptionOwner {
    /// The authenticated account, whoever it impersonated (Exchange).
    #[default]
    Account,
    /// The impersonated mailbox (the account itself when not impersonating): a
    /// stream or Unsubscribe must impersonate the same user (gromox).
    Impersonated,
}

impl std::str::FromStr for SubscriptionOwner {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "account" => Ok(SubscriptionOwner::Account),
            "impersonated" => Ok(SubscriptionOwner::Impersonated),
            other => Err(format!("{other:?}: use account or impersonated")),
        }
    }
}

/// How the simulator is set up.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Where to listen.
    pub listen: SocketAddr,
    /// `user1@domain` … `userN@domain`.
    pub mailboxes: usize,
    /// Mail domain.
    pub domain: String,
    /// Seed for calendars and churn.
    pub seed: u64,
    /// Random calendar changes per second.
    pub churn: f64,
    /// Heartbeat interval on open streams.
    pub heartbeat: Duration,
    /// Length of one protocol minute.
    pub minute: Duration,
    /// Backend mailbox servers mailboxes are spread over.
    pub backends: usize,
    /// Streaming connections allowed per budget: the account's own, or (when a
    /// GetStreamingEvents impersonates) the impersonated mailbox's copy, as Exchange
    /// counts HangingConnectionLimit.
    pub connection_limit: usize,
    /// Answer only POX Autodiscover (SOAP `autodiscover.svc` is 404), as old servers.
    pub pox_only: bool,
    /// Who owns a subscription: the account (Exchange) or the impersonated mailbox
    /// (gromox, which then refuses other users' ids on a stream).
    pub subscription_owner: SubscriptionOwner,
    /// The service account.
    pub account: String,
    /// How clients must authenticate as the service account.
    pub auth: auth::SimAuth,
    /// Extended Protection for Windows authentication over HTTPS.
    pub extended_protection: auth::ExtendedProtection,
    /// PEM certificate chain and key for HTTPS.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Start every calendar empty, with automatic replies off (for benchmarks that
    /// need to know every mailbox's state).
    pub empty_calendars: bool,
    /// With every heartbeat, also send a Notification per subscription holding only a
    /// `StatusEvent`, as some servers do (gromox every 45 s).
    pub status_event_heartbeats: bool,
    /// `MaxRecipientsPerGetMailTipsRequest`; `None`: MailTips off (as gromox says).
    pub mail_tips_max_recipients: Option<u32>,
    /// Serve Microsoft Graph too, with this application registered.
    pub graph: Option<graph::GraphConfig>,
}

/// The simulator's `MaxRecipientsPerGetMailTipsRequest` unless told otherwise: below
/// the daemon's own cap of 100, so the server's limit is what decides.
pub const DEFAULT_MAIL_TIPS_RECIPIENTS: u32 = 50;

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            mailboxes: 10,
            domain: "example.test".into(),
            seed: 1,
            churn: 0.0,
            heartbeat: Duration::from_millis(45_000),
            minute: Duration::from_millis(60_000),
            backends: 1,
            connection_limit: 10,
            subscription_owner: SubscriptionOwner::Account,
            pox_only: false,
            account: "svc@example.test".into(),
            auth: auth::SimAuth::None,
            extended_protection: auth::ExtendedProtection::None,
            tls: None,
            empty_calendars: false,
            status_event_heartbeats: false,
            mail_tips_max_recipients: Some(DEFAULT_MAIL_TIPS_RECIPIENTS),
            graph: None,
        }
    }
}

/// The simulator's shared state.
#[derive(Debug)]
pub struct Sim {
    /// Its configuration.
    pub config: SimConfig,
    /// Ground truth.
    pub directory: Directory,
    /// Live subscriptions.
    pub registry: Registry,
    /// Active faults.
    pub faults: Faults,
    /// Counters.
    pub stats: Stats,
    /// Churn now: changes per second and the share of them that affect the present
    /// (set at start from `config.churn`, changed through the control API).
    pub churn: churn::Rate,
    /// Streams open per account.
    streams_by_account: Mutex<HashMap<String, usize>>,
    /// Moved mailboxes: index → (old backend, new backend).
    moves: Mutex<HashMap<usize, (usize, usize)>>,
    next_stream: AtomicU64,
    /// Microsoft Graph, when served.
    pub graph: Option<graph::GraphSide>,
    /// Cancelled to stop everything.
    pub shutdown: CancellationToken,
    /// Every task the simulator spawned.
    pub tasks: TaskTracker,
}

/// A start-up failure.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The certificate or key could not be used.
    #[error("TLS: {0}")]
    Tls(String),
    /// A setting is out of range.
    #[error("{0}")]
    Config(String),
}

/// A running simulator.
#[derive(Debug)]
pub struct Running {
    /// The bound address.
    pub addr: SocketAddr,
    /// Whether it serves HTTPS.
    pub https: bool,
    /// Shared state, for in-process tests and the demo.
    pub sim: Arc<Sim>,
}

impl Running {
    /// `http(s)://addr/EWS/Exchange.asmx`.
    pub fn ews_url(&self) -> String {
        format!("{}/EWS/Exchange.asmx", self.base_url())
    }

    /// `http(s)://addr`.
    pub fn base_url(&self) -> String {
        format!(
            "{}://{}",
            if self.https { "https" } else { "http" },
            self.addr
        )
    }

    /// Stops serving and waits for the simulator's tasks (bounded).
    pub async fn stop(self) {
        self.sim.shutdown.cancel();
        self.sim.tasks.close();
        let _ = tokio::time::timeout(Duration::from_secs(5), self.sim.tasks.wait()).await;
    }
}

impl Sim {
    /// Builds the organisation for `config` (calendars for the current week).
    pub fn new(config: SimConfig) -> Result<Sim, SimError> {
        Sim::new_at(config, jiff::Timestamp::now())
    }

    /// Builds the organisation with calendars for the week holding `now`.
    pub fn new_at(config: SimConfig, now: jiff::Timestamp) -> Result<Sim, SimError> {
        if config.mailboxes == 0
            || config.backends == 0
            || config.minute.is_zero()
            || config.heartbeat.is_zero()
        {
            return Err(SimError::Config(
                "mailboxes, backends, minute and heartbeat must be positive".into(),
            ));
        }
        if !config.churn.is_finite() || config.churn < 0.0 {
            return Err(SimError::Config(
                "churn must be a non-negative number".into(),
            ));
        }
        let week = calendar_gen::week_start(now);
        let calendars = (0..config.mailboxes)
            .map(|i| {
                if config.empty_calendars {
                    model::Calendar::default()
                } else {
                    calendar_gen::generate(config.seed, week, i)
                }
            })
            .collect();
        let graph = match &config.graph {
            Some(g) => Some(graph::GraphSide::new(g.clone()).map_err(SimError::Config)?),
            None => None,
        };
        Ok(Sim {
            graph,
            directory: Directory::new(&config.domain, calendars),
            registry: Registry::new(&config.domain.to_ascii_lowercase()),
            faults: Faults::default(),
            stats: Stats::default(),
            churn: churn::Rate::new(config.churn, 0.0),
            streams_by_account: Mutex::new(HashMap::new()),
            moves: Mutex::new(HashMap::new()),
            next_stream: AtomicU64::new(1),
            shutdown: CancellationToken::new(),
            tasks: TaskTracker::new(),
            config,
        })
    }

    /// The backend server hosting mailbox `index`.
    pub fn backend_of(&self, index: usize) -> usize {
        common::sync::lock(&self.moves)
            .get(&index)
            .map_or(index % self.config.backends, |&(_, to)| to)
    }

    /// The backend mailbox `index` was moved away from, if it was.
    pub fn moved_from(&self, index: usize) -> Option<usize> {
        common::sync::lock(&self.moves)
            .get(&index)
            .map(|&(from, _)| from)
    }

    /// Moves mailbox `index` to backend `to`: hosted there from now on, its
    /// subscriptions gone (reported lost on their streams), and its old backend
    /// refusing routed requests for it. The number of subscriptions that died.
    pub fn move_mailbox(&self, index: usize, to: usize) -> usize {
        let from = self.backend_of(index);
        common::sync::lock(&self.moves).insert(index, (from, to));
        self.registry.expire(Some(&[index]))
    }

    /// A new stream number.
    pub fn next_stream(&self) -> u64 {
        self.next_stream.fetch_add(1, Ordering::Relaxed)
    }

    /// The identity a request acts as for subscription ownership (lowercase).
    pub fn subscription_identity(&self, account: &str, impersonate: Option<&str>) -> String {
        match (self.config.subscription_owner, impersonate) {
            (SubscriptionOwner::Impersonated, Some(user)) => user.to_ascii_lowercase(),
            _ => account.to_ascii_lowercase(),
        }
    }

    /// Streams open per budget now (`GET /sim/stats`), and the largest count.
    pub fn streams_per_budget(&self) -> (usize, usize) {
        let map = common::sync::lock(&self.streams_by_account);
        let open = map.values().filter(|n| **n > 0).count();
        (open, map.values().copied().max().unwrap_or(0))
    }

    /// Reserves a streaming connection charged to `budget` (an account, or
    /// `impersonated:ADDRESS`); `None` past the limit.
    pub fn reserve_stream(self: &Arc<Self>, account: &str) -> Option<StreamSlot> {
        let mut map = common::sync::lock(&self.streams_by_account);
        let open = map.entry(account.to_owned()).or_default();
        if *open >= self.config.connection_limit {
            return None;
        }
        *open += 1;
        self.stats.stream_opened();
        Some(StreamSlot {
            sim: self.clone(),
            account: account.to_owned(),
        })
    }

    /// Binds the listener and starts serving, the expiry sweeper and churn.
    pub async fn start(self) -> Result<Running, SimError> {
        let tls = match &self.config.tls {
            Some((cert, key)) => Some(tls::acceptor(cert, key).map_err(SimError::Tls)?),
            None => None,
        };
        let addr = self.config.listen;
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| SimError::Listen { addr, source })?;
        let addr = listener
            .local_addr()
            .map_err(|source| SimError::Listen { addr, source })?;
        let sim = Arc::new(self);
        let https = tls.is_some();
        sim.tasks.spawn(http::serve(sim.clone(), listener, tls));
        sim.tasks.spawn(sweep_idle_subscriptions(sim.clone()));
        sim.tasks.spawn(churn::run(sim.clone()));
        sim.tasks.spawn(graph::delivery::run(sim.clone()));
        Ok(Running { addr, https, sim })
    }
}

/// One open streaming connection counted against its account; released on drop.
#[derive(Debug)]
pub struct StreamSlot {
    sim: Arc<Sim>,
    account: String,
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut map = common::sync::lock(&self.sim.streams_by_account);
        if let Some(open) = map.get_mut(&self.account) {
            *open = open.saturating_sub(1);
        }
        self.sim.stats.stream_closed();
    }
}

/// Expires subscriptions left without a stream for their idle lifetime.
async fn sweep_idle_subscriptions(sim: Arc<Sim>) {
    let lifetime = sim.config.minute * SUBSCRIPTION_IDLE_MINUTES;
    let every = (sim.config.minute / 4).max(Duration::from_millis(5));
    loop {
        tokio::select! {
            _ = sim.shutdown.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
        if let Some(cutoff) = tokio::time::Instant::now().checked_sub(lifetime) {
            sim.registry.expire_idle(cutoff);
        }
    }
}

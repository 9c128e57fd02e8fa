//! Keeps subscriptions alive and timelines fresh: the EWS source. Three subsystems,
//! one folder each:
//!
//! - [`gateway`]: one EWS server's client and what it has shown of itself, its
//!   credential gate (one login probe per back-off step when credentials are refused)
//!   and its endpoints (EWS URLs, mailbox placements).
//! - [`group`]: one connection group's pure state machine and the driver that runs
//!   it, the EWS calls it makes (fakeable), and packing mailboxes into groups within
//!   the server's limits.
//! - [`refresh`]: the reads that keep timelines and automatic replies fresh, as a pure
//!   state machine and its driver: debounced, batched, the one retry layer of reads.
//!
//! Beside them: [`discovery`] (Autodiscover at run time), [`backoff`] (validated
//! backoff with jitter and a cap), [`status`] (the read-only view the API renders) and
//! [`metrics`] (the engine's metric names).
//!
//! [`Engine`] wires them per gateway and applies mailbox-list changes (SIGHUP) without
//! disturbing the subscriptions that stay. Each group's membership is recorded once, in
//! the `watch` channel the engine writes and the group's driver reads.

pub mod backoff;
mod discovery;
pub mod gateway;
pub mod group;
pub mod metrics;
pub mod refresh;
pub mod status;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{Config, PresenceConfig};
use crate::presence::updates::{Update, Updates};
use crate::source::{ReloadSummary, Source};
use backoff::Backoff;
use common::mailbox::Mailbox;
use common::sync::lock;
use ews::autodiscover::client::Discoverer;
use ews::transport::client_tls;
use gateway::Gateway;
use gateway::endpoints::{Endpoints, GroupKey};
use group::driver::{self, GroupContext};
use group::packing;
use group::port::EwsPort;
use group::state::{GroupState, GroupStatus};
use refresh::RefreshQueue;
use status::StatusHandle;

/// First retry wait after a transient failure.
const RETRY_MIN: Duration = Duration::from_millis(250);
/// Longest retry wait after transient failures.
const RETRY_MAX: Duration = Duration::from_secs(30);
/// First retry wait after the server's certificate did not verify (refused
/// credentials are paced by the gateway's credential gate instead).
const CERTIFICATE_MIN: Duration = Duration::from_secs(60);
/// Longest retry wait after a refused certificate.
const CERTIFICATE_MAX: Duration = Duration::from_secs(900);

/// What every part of the engine shares.
#[derive(Debug)]
pub struct Shared {
    /// Where what the engine reads goes: the presence core.
    pub updates: Updates,
    /// Presence settings.
    pub presence: PresenceConfig,
}

#[derive(Debug)]
struct GroupHandle {
    /// What its members share (EWS URL, GroupingInformation).
    key: GroupKey,
    /// The mailboxes assigned to the group: the engine's only record of the
    /// assignment, read by the group's driver (which serves them).
    members: watch::Sender<BTreeSet<Mailbox>>,
    status: watch::Receiver<GroupStatus>,
}

/// One gateway at run time with its groups.
#[derive(Debug)]
pub struct GatewayRuntime {
    pub gateway: Arc<Gateway>,
    /// Its refresh queue.
    pub refresh: Arc<RefreshQueue>,
    groups: Mutex<Vec<GroupHandle>>,
    overflow: Mutex<BTreeSet<Mailbox>>,
    /// With Autodiscover: its client, and the mailboxes it could not place (with why).
    discovery: Option<Discovery>,
}

/// A gateway's Autodiscover at run time.
#[derive(Debug)]
struct Discovery {
    client: Discoverer,
    ttl: Duration,
    /// Mailboxes Autodiscover could not place and no `url` serves: unknown, with why.
    failed: Mutex<BTreeMap<Mailbox, String>>,
}

/// Why the engine cannot start: a gateway's client cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum EngineStartError {
    /// Its TLS trust (CA file or `certs/`) is unusable.
    #[error("gateway {gateway}: {source}")]
    Tls {
        gateway: String,
        /// Why.
        source: ews::transport::TlsConfigError,
    },
    /// Its endpoints cannot be set up.
    #[error("gateway {gateway}: {source}")]
    Endpoints {
        gateway: String,
        /// Why.
        source: ews::error::EwsError,
    },
}

/// The EWS source: every gateway's connection groups, refresh queue and Autodiscover,
/// and what they share.
#[derive(Debug, Clone)]
pub struct Engine {
    gateways: Vec<Arc<GatewayRuntime>>,
    shared: Arc<Shared>,
    stop: CancellationToken,
    tracker: TaskTracker,
}

/// The retry policies of one group.
fn group_backoffs() -> (Backoff, Backoff) {
    // Both pairs of bounds are constants that satisfy the checks.
    let retry = Backoff::new(RETRY_MIN, RETRY_MAX).unwrap_or_else(|e| unreachable!("{e}"));
    let certificate =
        Backoff::new(CERTIFICATE_MIN, CERTIFICATE_MAX).unwrap_or_else(|e| unreachable!("{e}"));
    (retry, certificate)
}

impl Engine {
    /// Builds every gateway's client, registers the mailboxes and starts the groups
    /// and refresh loops. Fails only on unusable TLS material.
    pub fn start(
        config: &Config,
        served: &[(Mailbox, usize)],
        shared: Arc<Shared>,
        stop: CancellationToken,
        tracker: TaskTracker,
    ) -> Result<Engine, EngineStartError> {
        let mut gateways = Vec::new();
        for g in &config.gateways {
            let tls = client_tls(g.ca_file.as_deref(), &config.certs_dir).map_err(|source| {
                EngineStartError::Tls {
                    gateway: g.name.clone(),
                    source,
                }
            })?;
            let endpoints =
                Endpoints::new(g, tls.clone()).map_err(|source| EngineStartError::Endpoints {
                    gateway: g.name.clone(),
                    source,
                })?;
            let gateway = Arc::new(Gateway::new(g.clone(), endpoints));
            let refresh = Arc::new(RefreshQueue::new(
                shared.updates.clock(),
                refresh::state::Settings::of(g, &shared.presence),
            ));
            // A Graph gateway keeps its place here, idle: the Graph source serves it.
            if g.graph.is_none() {
                tracker.spawn(refresh::driver::run(
                    gateway.clone() as Arc<dyn refresh::port::ReadPort>,
                    refresh.clone(),
                    shared.clone(),
                    stop.clone(),
                ));
            }
            let discovery = g.discovery().map(|config| Discovery {
                client: Discoverer::new(config, tls.clone()),
                ttl: g
                    .autodiscover
                    .as_ref()
                    .map_or(Duration::from_secs(86_400), |a| a.ttl),
                failed: Mutex::new(BTreeMap::new()),
            });
            gateways.push(Arc::new(GatewayRuntime {
                gateway,
                refresh,
                groups: Mutex::new(Vec::new()),
                overflow: Mutex::new(BTreeSet::new()),
                discovery,
            }));
        }
        let engine = Engine {
            gateways,
            shared,
            stop,
            tracker,
        };
        let mut per_gateway: BTreeMap<usize, Vec<Mailbox>> = BTreeMap::new();
        for (mailbox, g) in served {
            per_gateway.entry(*g).or_default().push(mailbox.clone());
        }
        for (g, mailboxes) in per_gateway {
            if engine.gateways[g].discovery.is_some() {
                engine.discover_in_background(g, mailboxes, true);
            } else {
                engine.start_gateway(g, mailboxes);
            }
        }
        for index in 0..engine.gateways.len() {
            let (engine, stop) = (engine.clone(), engine.stop.clone());
            engine.tracker.clone().spawn(async move {
                tokio::select! {
                    _ = engine.gateways[index].gateway.regroup.notified() => {
                        engine.one_mailbox_per_group(index);
                    }
                    _ = stop.cancelled() => {}
                }
            });
        }
        Ok(engine)
    }

    fn start_gateway(&self, index: usize, mailboxes: Vec<Mailbox>) {
        let runtime = &self.gateways[index];
        let config = &runtime.gateway.config;
        for m in &mailboxes {
            self.shared
                .updates
                .track(m.clone(), config.name.as_str().into());
            runtime.refresh.add_member(m);
        }
        let keyed = mailboxes
            .into_iter()
            .map(|m| (runtime.gateway.endpoints.key_of(&m), m))
            .collect();
        let packing = packing::pack(
            keyed,
            runtime.gateway.per_connection(),
            config.max_connections,
        );
        for (key, members) in packing.groups {
            self.spawn_group(runtime, key, members.into_iter().collect());
        }
        self.set_overflow(runtime, packing.overflow);
    }

    fn set_overflow(&self, runtime: &GatewayRuntime, overflow: Vec<Mailbox>) {
        let config = &runtime.gateway.config;
        let cap = config.max_connections.unwrap_or(usize::MAX);
        if !overflow.is_empty() {
            tracing::warn!(
                gateway = %config.name,
                unserved = overflow.len(),
                capacity = cap.saturating_mul(config.max_subscriptions_per_connection),
                "more mailboxes than max_connections x max_subscriptions_per_connection; the rest read unknown"
            );
        }
        let problem: Arc<str> = format!(
            "{}: not subscribed: the gateway is at its limit of {} connections x {} subscriptions",
            config.name, cap, config.max_subscriptions_per_connection
        )
        .into();
        for m in &overflow {
            // Without a subscription nothing would tell us of changes: never refresh
            // these (that would serve stale data as if live); they read unknown.
            runtime.refresh.remove_member(m);
            self.shared
                .updates
                .apply(m, Update::Problem(Some(problem.clone())));
        }
        *lock(&runtime.overflow) = overflow.into_iter().collect();
    }

    fn spawn_group(&self, runtime: &GatewayRuntime, key: GroupKey, members: BTreeSet<Mailbox>) {
        let (retry, certificate) = group_backoffs();
        let Some(state) = GroupState::new(members.iter().cloned(), retry, certificate) else {
            return;
        };
        let (members_tx, members_rx) = watch::channel(members);
        let (status_tx, status_rx) = watch::channel(state.status());
        let context = GroupContext {
            port: Arc::new(EwsPort::new(runtime.gateway.clone())),
            gateway: runtime.gateway.clone(),
            shared: self.shared.clone(),
            refresh: runtime.refresh.clone(),
            tracker: self.tracker.clone(),
        };
        self.tracker.spawn(driver::run(
            state,
            context,
            members_rx,
            status_tx,
            self.stop.child_token(),
        ));
        lock(&runtime.groups).push(GroupHandle {
            key,
            members: members_tx,
            status: status_rx,
        });
    }

    /// Mailboxes configured, per gateway.
    fn configured(&self) -> BTreeMap<Mailbox, usize> {
        let mut current = BTreeMap::new();
        for (g, runtime) in self.gateways.iter().enumerate() {
            for handle in lock(&runtime.groups).iter() {
                current.extend(handle.members.borrow().iter().map(|m| (m.clone(), g)));
            }
            current.extend(lock(&runtime.overflow).iter().map(|m| (m.clone(), g)));
            if let Some(discovery) = &runtime.discovery {
                current.extend(lock(&discovery.failed).keys().map(|m| (m.clone(), g)));
            }
        }
        current
    }

    /// Splits every group of gateway `index` to its anchor alone and gives each other
    /// member a group of its own (they are unsubscribed from the old group, acting for
    /// themselves, and subscribed on their new stream with a full refresh).
    fn one_mailbox_per_group(&self, index: usize) {
        let runtime = &self.gateways[index];
        let mut moved = Vec::new();
        for handle in lock(&runtime.groups).iter() {
            handle.members.send_if_modified(|members| {
                let Some(anchor) = members.first().cloned() else {
                    return false;
                };
                let others: Vec<Mailbox> = members.iter().skip(1).cloned().collect();
                if others.is_empty() {
                    return false;
                }
                moved.extend(others);
                *members = BTreeSet::from([anchor]);
                true
            });
        }
        self.place_or_wait(runtime, moved);
    }

    /// Places each of `mailboxes` in a group with room (or a new one); those that do
    /// not fit join the gateway's overflow (told once, with what already waited).
    fn place_or_wait(&self, runtime: &GatewayRuntime, mailboxes: Vec<Mailbox>) {
        let mut waiting: Vec<Mailbox> = mailboxes
            .into_iter()
            .filter(|m| !self.place(runtime, m.clone()))
            .collect();
        if waiting.is_empty() {
            return;
        }
        waiting.extend(std::mem::take(&mut *lock(&runtime.overflow)));
        self.set_overflow(runtime, waiting);
    }

    fn remove(&self, runtime: &GatewayRuntime, mailbox: &Mailbox) {
        self.release(runtime, mailbox);
        self.shared.updates.forget(mailbox);
    }

    /// Takes `mailbox` out of every group and queue of `runtime` (its subscription is
    /// unsubscribed by its group).
    fn release(&self, runtime: &GatewayRuntime, mailbox: &Mailbox) {
        for handle in lock(&runtime.groups).iter() {
            handle.members.send_if_modified(|m| m.remove(mailbox));
        }
        lock(&runtime.overflow).remove(mailbox);
        if let Some(discovery) = &runtime.discovery {
            lock(&discovery.failed).remove(mailbox);
        }
        runtime.gateway.endpoints.forget(mailbox);
        runtime.refresh.remove_member(mailbox);
    }

    /// Puts a mailbox into a running group with room, or a new group; false when the
    /// gateway is at its connection limit.
    fn place(&self, runtime: &GatewayRuntime, mailbox: Mailbox) -> bool {
        let config = &runtime.gateway.config;
        runtime.refresh.add_member(&mailbox);
        self.shared.updates.apply(&mailbox, Update::Problem(None));
        let key = runtime.gateway.endpoints.key_of(&mailbox);
        {
            let groups = lock(&runtime.groups);
            let per_connection = runtime.gateway.per_connection();
            let room = groups.iter().find(|h| {
                h.key == key && !h.members.is_closed() && h.members.borrow().len() < per_connection
            });
            if let Some(handle) = room {
                handle.members.send_modify(|m| {
                    m.insert(mailbox);
                });
                return true;
            }
            if config
                .max_connections
                .is_some_and(|cap| groups.len() >= cap)
            {
                return false;
            }
        }
        self.spawn_group(runtime, key, BTreeSet::from([mailbox]));
        true
    }
}

impl Source for Engine {
    /// The read-only view for the API.
    fn status(&self) -> StatusHandle {
        StatusHandle {
            gateways: self
                .gateways
                .iter()
                .enumerate()
                .filter(|(_, r)| r.gateway.config.graph.is_none())
                .map(|(i, r)| (i, r.clone()))
                .collect(),
            others: Vec::new(),
        }
    }

    /// Applies a new mailbox list: removed mailboxes are unsubscribed and dropped,
    /// added ones subscribed and synced, the others left alone.
    fn apply_mailboxes(&self, wanted: &[(Mailbox, usize)]) -> ReloadSummary {
        let current = self.configured();
        let wanted: BTreeMap<Mailbox, usize> = wanted.iter().cloned().collect();
        let mut summary = ReloadSummary {
            added: 0,
            removed: 0,
            total: wanted.len(),
        };
        for (mailbox, g) in &current {
            if wanted.get(mailbox) != Some(g) {
                self.remove(&self.gateways[*g], mailbox);
                summary.removed += 1;
            }
        }
        for (g, runtime) in self.gateways.iter().enumerate() {
            // Freed places go to mailboxes that did not fit before, then to new ones.
            let mut to_place: Vec<Mailbox> = std::mem::take(&mut *lock(&runtime.overflow))
                .into_iter()
                .collect();
            let mut to_discover = Vec::new();
            for (mailbox, wanted_g) in &wanted {
                if *wanted_g == g && current.get(mailbox) != Some(&g) {
                    self.shared
                        .updates
                        .track(mailbox.clone(), runtime.gateway.config.name.as_str().into());
                    summary.added += 1;
                    if runtime.discovery.is_some() {
                        // Placed once Autodiscover says where it lives.
                        to_discover.push(mailbox.clone());
                    } else {
                        to_place.push(mailbox.clone());
                    }
                }
            }
            self.place_or_wait(runtime, to_place);
            if !to_discover.is_empty() {
                self.discover_in_background(g, to_discover, false);
            }
        }
        summary
    }

    /// Stops serving `mailbox` of gateway `g` (its subscription is dropped and
    /// unsubscribed, nothing of it is read again) and keeps its cache entry.
    fn stop_serving(&self, mailbox: &Mailbox, g: usize) {
        if let Some(runtime) = self.gateways.get(g) {
            self.release(runtime, mailbox);
        }
    }

    /// Serves `mailbox` on gateway `g`: subscribed (after Autodiscover, when the
    /// gateway uses it) and synced, as a mailbox added to the list is.
    fn serve(&self, mailbox: &Mailbox, g: usize) {
        let Some(runtime) = self.gateways.get(g) else {
            return;
        };
        self.shared
            .updates
            .track(mailbox.clone(), runtime.gateway.config.name.as_str().into());
        if runtime.discovery.is_some() {
            self.discover_in_background(g, vec![mailbox.clone()], false);
        } else {
            self.place_or_wait(runtime, vec![mailbox.clone()]);
        }
    }
}

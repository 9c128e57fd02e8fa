//! Keeps subscriptions alive and timelines fresh.
//!
//! - [`gateway`]: one EWS server's client and status.
//! - [`groups`]: packing mailboxes into connection groups within the server's limits.
//! - [`connection`]: one group's subscribe-and-stream loop.
//! - [`refresh`]: the debounced, batched refresh queue (GetUserAvailability,
//!   GetUserOofSettings).
//! - [`backoff`]: backoff with jitter and a cap.
//!
//! [`Engine`] wires them per gateway and applies mailbox-list changes (SIGHUP) without
//! disturbing the subscriptions that stay.

pub mod backoff;
pub mod connection;
pub mod gateway;
pub mod groups;
pub mod refresh;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::util::lock;
use tokio_util::task::TaskTracker;

use crate::config::{Config, PresenceConfig};
use crate::ews::transport::{Transport, client_tls};
use crate::ews::types::Mailbox;
use crate::presence::cache::Cache;
use crate::presence::schedule::Scheduler;
use connection::{Command, Group};
use gateway::Gateway;
use refresh::RefreshQueue;

/// Commands queued per group before the sender waits.
const GROUP_COMMANDS: usize = 1024;

/// What every part of the engine shares.
#[derive(Debug)]
pub struct Shared {
    /// The presence cache.
    pub cache: Arc<Cache>,
    /// The boundary scheduler.
    pub scheduler: Arc<Scheduler>,
    /// Presence settings.
    pub presence: PresenceConfig,
}

#[derive(Debug)]
struct GroupHandle {
    commands: mpsc::Sender<Command>,
    members: BTreeSet<Mailbox>,
}

/// One gateway at run time with its groups.
#[derive(Debug)]
pub struct GatewayRuntime {
    /// The gateway.
    pub gateway: Arc<Gateway>,
    /// Its refresh queue.
    pub refresh: Arc<RefreshQueue>,
    groups: Mutex<Vec<GroupHandle>>,
    overflow: Mutex<BTreeSet<Mailbox>>,
}

/// What a reload changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReloadSummary {
    /// Mailboxes added.
    pub added: usize,
    /// Mailboxes removed.
    pub removed: usize,
}

/// The engine.
#[derive(Debug)]
pub struct Engine {
    /// Gateways in configuration order.
    pub gateways: Vec<Arc<GatewayRuntime>>,
    shared: Arc<Shared>,
    stop: CancellationToken,
    tracker: TaskTracker,
}

impl Engine {
    /// Builds every gateway's client, registers the mailboxes and starts the groups
    /// and refresh loops. Fails only on unusable TLS material.
    pub fn start(
        config: &Config,
        shared: Arc<Shared>,
        stop: CancellationToken,
        tracker: TaskTracker,
    ) -> Result<Engine, String> {
        let mut gateways = Vec::new();
        for g in &config.gateways {
            let tls = client_tls(g.ca_file.as_deref(), &config.certs_dir)
                .map_err(|e| format!("gateway {}: {e}", g.name))?;
            let gateway = Arc::new(Gateway::new(g.clone(), Transport::new(g, tls)));
            let refresh = Arc::new(RefreshQueue::default());
            tracker.spawn(refresh::run(
                gateway.clone(),
                refresh.clone(),
                shared.clone(),
                stop.clone(),
            ));
            gateways.push(Arc::new(GatewayRuntime {
                gateway,
                refresh,
                groups: Mutex::new(Vec::new()),
                overflow: Mutex::new(BTreeSet::new()),
            }));
        }
        let engine = Engine {
            gateways,
            shared,
            stop,
            tracker,
        };
        let mut per_gateway: BTreeMap<usize, Vec<Mailbox>> = BTreeMap::new();
        for (mailbox, g) in &config.mailboxes {
            per_gateway.entry(*g).or_default().push(mailbox.clone());
        }
        for (g, mailboxes) in per_gateway {
            engine.start_gateway(g, mailboxes);
        }
        Ok(engine)
    }

    fn start_gateway(&self, index: usize, mailboxes: Vec<Mailbox>) {
        let runtime = &self.gateways[index];
        let config = &runtime.gateway.config;
        for m in &mailboxes {
            self.shared
                .cache
                .insert(m.clone(), config.name.as_str().into());
            runtime.refresh.add_member(m);
        }
        let packing = groups::pack(
            mailboxes,
            config.max_subscriptions_per_connection,
            config.max_connections,
        );
        for members in packing.groups {
            self.spawn_group(runtime, members);
        }
        self.set_overflow(runtime, packing.overflow);
    }

    fn set_overflow(&self, runtime: &GatewayRuntime, overflow: Vec<Mailbox>) {
        let config = &runtime.gateway.config;
        if !overflow.is_empty() {
            tracing::warn!(
                gateway = %config.name,
                unserved = overflow.len(),
                capacity = config.max_connections * config.max_subscriptions_per_connection,
                "more mailboxes than max_connections x max_subscriptions_per_connection; the rest read unknown"
            );
        }
        let problem: Arc<str> = format!(
            "not subscribed: gateway {} is at its limit of {} connections x {} subscriptions",
            config.name, config.max_connections, config.max_subscriptions_per_connection
        )
        .into();
        for m in &overflow {
            // Without a subscription nothing would tell us of changes: never refresh
            // these (that would serve stale data as if live); they read unknown.
            runtime.refresh.remove_member(m);
            self.shared.cache.set_problem(m, Some(problem.clone()));
        }
        runtime.gateway.set_over_capacity(overflow.len());
        *lock(&runtime.overflow) = overflow.into_iter().collect();
    }

    fn spawn_group(&self, runtime: &GatewayRuntime, members: Vec<Mailbox>) {
        let (tx, rx) = mpsc::channel(GROUP_COMMANDS);
        let Some(group) = Group::new(
            runtime.gateway.clone(),
            self.shared.clone(),
            runtime.refresh.clone(),
            members.clone(),
            rx,
            self.stop.child_token(),
        ) else {
            return;
        };
        self.tracker.spawn(group.run());
        runtime.gateway.groups.fetch_add(1, Ordering::Relaxed);
        lock(&runtime.groups).push(GroupHandle {
            commands: tx,
            members: members.into_iter().collect(),
        });
    }

    /// Applies a new mailbox list: removed mailboxes are unsubscribed and dropped,
    /// added ones subscribed and synced, the others left alone.
    pub fn apply_mailboxes(&self, wanted: &[(Mailbox, usize)]) -> ReloadSummary {
        let current: BTreeMap<Mailbox, usize> = self
            .gateways
            .iter()
            .enumerate()
            .flat_map(|(g, r)| {
                let grouped: Vec<Mailbox> = lock(&r.groups)
                    .iter()
                    .flat_map(|h| h.members.iter().cloned())
                    .collect();
                let overflow: Vec<Mailbox> = lock(&r.overflow).iter().cloned().collect();
                grouped.into_iter().chain(overflow).map(move |m| (m, g))
            })
            .collect();
        let wanted: BTreeMap<Mailbox, usize> = wanted.iter().cloned().collect();
        let mut summary = ReloadSummary {
            added: 0,
            removed: 0,
        };
        for (mailbox, g) in &current {
            if wanted.get(mailbox) != Some(g) {
                self.remove(&self.gateways[*g], mailbox);
                summary.removed += 1;
            }
        }
        for (g, runtime) in self.gateways.iter().enumerate() {
            // Freed places go to mailboxes that did not fit before.
            let waiting: Vec<Mailbox> = std::mem::take(&mut *lock(&runtime.overflow))
                .into_iter()
                .collect();
            let mut still_waiting = Vec::new();
            for m in waiting {
                if !self.place(runtime, m.clone()) {
                    still_waiting.push(m);
                }
            }
            for (mailbox, wanted_g) in &wanted {
                if *wanted_g == g && current.get(mailbox) != Some(&g) {
                    self.shared
                        .cache
                        .insert(mailbox.clone(), runtime.gateway.config.name.as_str().into());
                    runtime.refresh.add_member(mailbox);
                    summary.added += 1;
                    if !self.place(runtime, mailbox.clone()) {
                        still_waiting.push(mailbox.clone());
                    }
                }
            }
            self.set_overflow(runtime, still_waiting);
        }
        summary
    }

    fn remove(&self, runtime: &GatewayRuntime, mailbox: &Mailbox) {
        let mut groups = lock(&runtime.groups);
        if let Some(handle) = groups.iter_mut().find(|h| h.members.contains(mailbox)) {
            handle.members.remove(mailbox);
            let _ = handle.commands.try_send(Command::Remove(mailbox.clone()));
        }
        drop(groups);
        lock(&runtime.overflow).remove(mailbox);
        runtime.refresh.remove_member(mailbox);
        self.shared.cache.remove(mailbox);
    }

    /// Puts a mailbox into a group with room, or a new group; false when full.
    fn place(&self, runtime: &GatewayRuntime, mailbox: Mailbox) -> bool {
        let config = &runtime.gateway.config;
        {
            let mut groups = lock(&runtime.groups);
            if let Some(handle) = groups.iter_mut().find(|h| {
                h.members.len() < config.max_subscriptions_per_connection && !h.commands.is_closed()
            }) && handle
                .commands
                .try_send(Command::Add(mailbox.clone()))
                .is_ok()
            {
                handle.members.insert(mailbox);
                return true;
            }
            if groups.len() >= config.max_connections {
                return false;
            }
        }
        runtime.refresh.add_member(&mailbox);
        self.shared.cache.set_problem(&mailbox, None);
        self.spawn_group(runtime, vec![mailbox]);
        true
    }

    /// Mailboxes configured on gateway `index`.
    pub fn mailbox_count(&self, index: usize) -> usize {
        let runtime = &self.gateways[index];
        lock(&runtime.groups)
            .iter()
            .map(|h| h.members.len())
            .sum::<usize>()
            + lock(&runtime.overflow).len()
    }
}

//! Exchange Online through Microsoft Graph: the second kind of source (`kind =
//! "graph"` gateways), serving the same presence with the same promises as EWS.
//!
//! - [`gateway`]: one Graph gateway at run time (its token, HTTP client, health,
//!   per-mailbox limit), over [`http`] and [`token`], failing with [`error`].
//! - [`reads`]: getSchedule and automatic-reply reads, plugged into the same refresh
//!   queue as EWS (debounce, batching, retries are one policy).
//! - [`subscriptions`]: a change-notification subscription per mailbox, renewed and
//!   recreated; [`receiver`]: the notification endpoint on our API listener.
//! - [`status`]: what `/v1/gateways` shows of a Graph gateway; [`metrics`]: its
//!   metric names.
//!
//! [`GraphSource`] wires them per gateway behind [`Source`].

pub mod error;
pub mod gateway;
pub mod http;
pub mod metrics;
pub mod reads;
pub mod receiver;
pub mod status;
pub mod subscriptions;
pub mod token;

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Config;
use crate::engine::Shared;
use crate::engine::refresh::RefreshQueue;
use crate::engine::refresh::state::{GRAPH_NAMES, Settings};
use crate::engine::status::StatusHandle;
use crate::source::{ReloadSummary, Source};
use common::mailbox::Mailbox;
use common::sync::lock;
use gateway::GraphGateway;
use receiver::{Receiver, Route};
use subscriptions::{Context, Directory, Subscriptions};

/// Why the Graph source cannot start.
#[derive(Debug, thiserror::Error)]
pub enum GraphStartError {
    /// A gateway's TLS trust is unusable.
    #[error("gateway {gateway}: {source}")]
    Tls {
        /// The gateway.
        gateway: String,
        /// Why.
        source: ews::transport::TlsConfigError,
    },
    /// A gateway's client cannot be built.
    #[error("gateway {gateway}: {source}")]
    Client {
        /// The gateway.
        gateway: String,
        /// Why.
        source: error::GraphError,
    },
}

/// One Graph gateway with its subscriptions.
#[derive(Debug, Clone)]
pub struct GraphRuntime {
    /// The gateway.
    pub gateway: Arc<GraphGateway>,
    /// Its subscriptions.
    pub subscriptions: Arc<Subscriptions>,
}

/// Every Graph gateway.
#[derive(Debug, Clone)]
pub struct GraphSource {
    runtimes: BTreeMap<usize, GraphRuntime>,
    directory: Arc<Directory>,
    shared: Arc<Shared>,
}

impl GraphSource {
    /// Starts every `kind = "graph"` gateway of `config` with its mailboxes of
    /// `served`.
    pub fn start(
        config: &Config,
        served: &[(Mailbox, usize)],
        shared: Arc<Shared>,
        stop: CancellationToken,
        tracker: TaskTracker,
    ) -> Result<GraphSource, GraphStartError> {
        let directory = Arc::new(Directory::new());
        let mut runtimes = BTreeMap::new();
        for (index, g) in config.gateways.iter().enumerate() {
            let Some(graph) = g.graph.clone() else {
                continue;
            };
            let tls = ews::transport::client_tls(g.ca_file.as_deref(), &config.certs_dir).map_err(
                |source| GraphStartError::Tls {
                    gateway: g.name.clone(),
                    source,
                },
            )?;
            let settings = Settings {
                calendar_batch: graph::schedule::MAX_SCHEDULES,
                auto_replies: Some(reads::auto_reply_source()),
                names: GRAPH_NAMES,
                mail_tips_possible: false,
                ..Settings::of(g, &shared.presence)
            };
            let refresh = Arc::new(RefreshQueue::new(shared.updates.clock(), settings));
            let gateway = Arc::new(
                GraphGateway::new(index, g.clone(), graph, tls, refresh.clone()).map_err(
                    |source| GraphStartError::Client {
                        gateway: g.name.clone(),
                        source,
                    },
                )?,
            );
            tracker.spawn(crate::engine::refresh::driver::run(
                gateway.clone() as Arc<dyn crate::engine::refresh::port::ReadPort>,
                refresh,
                shared.clone(),
                stop.clone(),
            ));
            let subscriptions = Arc::new(Subscriptions::new(&g.name));
            let context = Context {
                directory: directory.clone(),
                shared: shared.clone(),
            };
            tracker.spawn(subscriptions::run(
                gateway.clone(),
                subscriptions.clone(),
                context,
                stop.clone(),
            ));
            runtimes.insert(
                index,
                GraphRuntime {
                    gateway,
                    subscriptions,
                },
            );
        }
        let source = GraphSource {
            runtimes,
            directory,
            shared,
        };
        for (mailbox, g) in served {
            source.serve(mailbox, *g);
        }
        Ok(source)
    }

    /// Whether gateway `index` is a Graph gateway.
    pub fn serves(&self, index: usize) -> bool {
        self.runtimes.contains_key(&index)
    }

    /// The receiver for the API's notification endpoint.
    pub fn receiver(&self) -> Arc<Receiver> {
        Arc::new(Receiver::new(
            self.directory.clone(),
            self.runtimes
                .iter()
                .map(|(i, r)| {
                    (
                        *i,
                        Route {
                            gateway: r.gateway.clone(),
                            subscriptions: r.subscriptions.clone(),
                        },
                    )
                })
                .collect(),
        ))
    }

    /// Live subscriptions of every gateway, by id (tests, the troubleshooter).
    pub fn directory(&self) -> &Arc<Directory> {
        &self.directory
    }

    fn configured(&self) -> BTreeMap<Mailbox, usize> {
        let mut all = BTreeMap::new();
        for (i, r) in &self.runtimes {
            for m in lock(&r.subscriptions.table).mailboxes() {
                all.insert(m, *i);
            }
        }
        all
    }

    fn release(&self, runtime: &GraphRuntime, mailbox: &Mailbox) {
        if let Some(id) = lock(&runtime.subscriptions.table).leave(mailbox) {
            lock(&runtime.subscriptions.doomed).push(id);
        }
        runtime.gateway.refresh.remove_member(mailbox);
        runtime.gateway.forget(mailbox);
        runtime.subscriptions.wake.notify_one();
    }
}

impl Source for GraphSource {
    fn apply_mailboxes(&self, wanted: &[(Mailbox, usize)]) -> ReloadSummary {
        let current = self.configured();
        let wanted: BTreeMap<Mailbox, usize> = wanted
            .iter()
            .filter(|(_, g)| self.serves(*g))
            .cloned()
            .collect();
        let mut summary = ReloadSummary {
            added: 0,
            removed: 0,
            total: wanted.len(),
        };
        for (mailbox, g) in &current {
            if wanted.get(mailbox) != Some(g) {
                if let Some(r) = self.runtimes.get(g) {
                    self.release(r, mailbox);
                }
                self.shared.updates.forget(mailbox);
                summary.removed += 1;
            }
        }
        for (mailbox, g) in &wanted {
            if current.get(mailbox) != Some(g) {
                self.serve(mailbox, *g);
                summary.added += 1;
            }
        }
        summary
    }

    fn serve(&self, mailbox: &Mailbox, gateway: usize) {
        let Some(r) = self.runtimes.get(&gateway) else {
            return;
        };
        self.shared
            .updates
            .track(mailbox.clone(), r.gateway.name().into());
        r.gateway.refresh.add_member(mailbox);
        lock(&r.subscriptions.table).join(mailbox.clone(), tokio::time::Instant::now());
        r.subscriptions.wake.notify_one();
    }

    fn stop_serving(&self, mailbox: &Mailbox, gateway: usize) {
        if let Some(r) = self.runtimes.get(&gateway) {
            self.release(r, mailbox);
        }
    }

    fn status(&self) -> StatusHandle {
        StatusHandle::of_others(
            self.runtimes
                .iter()
                .map(|(i, r)| {
                    (
                        *i,
                        Arc::new(r.clone()) as Arc<dyn crate::engine::status::GatewayStatus>,
                    )
                })
                .collect(),
        )
    }
}

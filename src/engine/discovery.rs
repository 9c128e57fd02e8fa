//! Autodiscover at run time: a gateway with `autodiscover = true` asks where its
//! mailboxes live before grouping them (per EWS URL and `GroupingInformation`), asks
//! again every `autodiscover_ttl_secs` and for any mailbox that a server says has moved,
//! and relocates a mailbox whose answer changed: unsubscribed from its old group,
//! subscribed in a group of its new key, refreshed in full; its neighbours untouched.
//! A mailbox Autodiscover cannot place falls back to the gateway's `url` when one is
//! set, else reads `unknown` with the reason (on the mailbox and on `/v1/gateways`).

use std::collections::HashSet;
use std::sync::Arc;

use super::gateway::endpoints::Placement;
use super::{Engine, GatewayRuntime};
use common::mailbox::Mailbox;
use common::sync::lock;

use crate::presence::updates::Update;

impl Engine {
    /// Discovers `mailboxes` of gateway `index` in the background, then groups them
    /// (`first`: the gateway's start) or places them into the running groups.
    pub(super) fn discover_in_background(
        &self,
        index: usize,
        mailboxes: Vec<Mailbox>,
        first: bool,
    ) {
        let runtime = &self.gateways[index];
        for m in &mailboxes {
            self.shared
                .updates
                .track(m.clone(), runtime.gateway.config.name.as_str().into());
        }
        let engine = self.clone();
        self.tracker.spawn(async move {
            tokio::select! {
                _ = engine.discover_and_apply(index, mailboxes, first) => {}
                _ = engine.stop.cancelled() => return,
            }
            if first {
                tokio::join!(
                    engine.rediscover_every_ttl(index),
                    engine.rediscover_moved(index)
                );
            }
        });
    }

    /// Asks again for every mailbox of gateway `index` each TTL, until stopped.
    async fn rediscover_every_ttl(&self, index: usize) {
        let Some(ttl) = self.gateways[index].discovery.as_ref().map(|d| d.ttl) else {
            return;
        };
        loop {
            tokio::select! {
                _ = tokio::time::sleep(ttl) => {}
                _ = self.stop.cancelled() => return,
            }
            let mailboxes: Vec<Mailbox> = self
                .configured()
                .into_iter()
                .filter(|(_, g)| *g == index)
                .map(|(m, _)| m)
                .collect();
            tokio::select! {
                _ = self.discover_and_apply(index, mailboxes, false) => {}
                _ = self.stop.cancelled() => return,
            }
        }
    }

    /// Asks again for the mailboxes a server answered as if they had moved, as they
    /// come (those arriving during a round go in the next, in one batch); relocates
    /// each whose answer changed.
    async fn rediscover_moved(&self, index: usize) {
        let gateway = self.gateways[index].gateway.clone();
        loop {
            tokio::select! {
                _ = gateway.moves.notified() => {}
                _ = self.stop.cancelled() => return,
            }
            let suspects = gateway.take_suspected_moves();
            if suspects.is_empty() {
                continue;
            }
            tracing::info!(gateway = %gateway.config.name, mailboxes = suspects.len(), "a server answered as if mailboxes had moved: asking Autodiscover again");
            tokio::select! {
                _ = self.discover_and_apply(index, suspects, false) => {}
                _ = self.stop.cancelled() => return,
            }
        }
    }

    async fn discover_and_apply(&self, index: usize, mailboxes: Vec<Mailbox>, first: bool) {
        let runtime = &self.gateways[index];
        let Some(discovery) = &runtime.discovery else {
            return;
        };
        let config = &runtime.gateway.config;
        let endpoints = &runtime.gateway.endpoints;
        let outcomes = discovery.client.discover(&mailboxes).await;
        let (mut found, mut fallback, mut failed) = (0usize, 0usize, 0usize);
        let mut first_error = None;
        let mut settled = Vec::new();
        for (mailbox, outcome) in outcomes {
            if !self.shared.updates.is_tracked(&mailbox) {
                // Removed from the list meanwhile.
                continue;
            }
            let before = endpoints.key_of(&mailbox);
            match outcome {
                Ok(answer) => {
                    found += 1;
                    endpoints.place(
                        &mailbox,
                        Some(Placement {
                            url: answer.ews_url,
                            grouping: answer.grouping,
                        }),
                    );
                    lock(&discovery.failed).remove(&mailbox);
                }
                Err(error) => {
                    failed += 1;
                    first_error.get_or_insert_with(|| format!("{mailbox}: {error}"));
                    if endpoints.placement(&mailbox).is_some() {
                        // Asked again and not answered: the last answer stands.
                        continue;
                    }
                    if config.url.is_some() {
                        fallback += 1;
                    } else {
                        let problem: Arc<str> =
                            format!("{}: autodiscover: {error}", config.name).into();
                        self.shared
                            .updates
                            .apply(&mailbox, Update::Problem(Some(problem)));
                        lock(&discovery.failed).insert(mailbox, error.to_string());
                        continue;
                    }
                }
            }
            let moved = endpoints.key_of(&mailbox) != before;
            settled.push((mailbox, moved));
        }
        if first {
            self.start_gateway(index, settled.into_iter().map(|(m, _)| m).collect());
        } else {
            let mut to_place = Vec::new();
            // Who is in a group now, read once (not once per mailbox).
            let grouped_now: HashSet<Mailbox> = lock(&runtime.groups)
                .iter()
                .flat_map(|h| h.members.borrow().iter().cloned().collect::<Vec<_>>())
                .collect();
            for (mailbox, moved) in settled {
                let grouped = grouped_now.contains(&mailbox);
                if grouped && !moved {
                    continue;
                }
                if grouped {
                    tracing::info!(gateway = %config.name, %mailbox, to = ?endpoints.key_of(&mailbox), "autodiscover moved the mailbox: resubscribing it in its new group");
                    for handle in lock(&runtime.groups).iter() {
                        handle.members.send_if_modified(|m| m.remove(&mailbox));
                    }
                }
                lock(&runtime.overflow).remove(&mailbox);
                to_place.push(mailbox);
            }
            self.place_or_wait(runtime, to_place);
        }
        if let Some(error) = &first_error {
            let message = format!(
                "autodiscover could not place {failed} of {} mailbox(es){}; first: {error}",
                found + failed,
                if fallback > 0 {
                    format!(" ({fallback} use the configured url)")
                } else {
                    String::new()
                }
            );
            tracing::warn!(gateway = %config.name, "{message}");
            runtime.gateway.report(&message);
        } else if first {
            tracing::info!(gateway = %config.name, mailboxes = found, "autodiscover placed every mailbox");
        }
    }
}

/// The mailboxes Autodiscover could not place on a gateway, with why (for status).
pub(super) fn undiscovered(runtime: &GatewayRuntime) -> Vec<(Mailbox, String)> {
    runtime
        .discovery
        .as_ref()
        .map(|d| {
            lock(&d.failed)
                .iter()
                .map(|(m, why)| (m.clone(), why.clone()))
                .collect()
        })
        .unwrap_or_default()
}

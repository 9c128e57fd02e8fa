//! One connection group's loop: subscribe every member (impersonating it, routed to the
//! group's anchor), then hold a GetStreamingEvents connection for all of them:
//!
//! - after `Closed`, reconnect at once with the same ids (not a gap);
//! - no bytes for twice the heartbeat interval, a dropped or failed connection:
//!   reconnect with backoff and jitter, same ids (the server queues events meanwhile);
//! - `ErrorServerBusy`: wait what the server asks;
//! - ids in `ErrorSubscriptionIds`: drop them, subscribe those mailboxes again and
//!   refresh them fully (a lost subscription cannot be resumed);
//! - an undecodable frame: reconnect and refresh every member (state unknown);
//! - authentication refused: reported, retried slowly, never in a hot loop.
//!
//! Membership changes (SIGHUP) arrive as commands; the stream is reopened with the new
//! ids without touching the other subscriptions. On stop, every subscription is
//! unsubscribed within the grace period.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use http_body_util::BodyExt;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::Shared;
use super::backoff::Backoff;
use super::gateway::Gateway;
use super::refresh::RefreshQueue;
use crate::api::metrics;
use crate::ews::error::{Disposition, EwsError};
use crate::ews::ops::get_streaming_events::{self, MAX_CONNECTION_TIMEOUT_MINUTES};
use crate::ews::ops::{subscribe, unsubscribe};
use crate::ews::soap::{RequestHeader, envelope};
use crate::ews::stream::{Response, StreamDecoder};
use crate::ews::transport::Route;
use crate::ews::types::{Mailbox, SubscriptionId};

/// A change to a group's membership.
#[derive(Debug)]
pub enum Command {
    /// Subscribe and serve this mailbox.
    Add(Mailbox),
    /// Unsubscribe and drop this mailbox.
    Remove(Mailbox),
}

/// How long a permanently refused mailbox waits before its Subscribe is tried again.
const REFUSED_RETRY: Duration = Duration::from_secs(300);
/// How long to wait after the server refused our credentials.
const AUTH_RETRY: Duration = Duration::from_secs(60);

/// Why a stream ended.
enum StreamEnd {
    /// `ConnectionStatus` Closed: reconnect at once.
    Closed,
    /// These subscriptions are gone.
    Lost(Vec<SubscriptionId>),
    /// Every subscription is gone.
    AllLost,
    /// A failure to back off from.
    Failed(EwsError),
    /// Nothing arrived for twice the heartbeat interval.
    Silent,
    /// The body broke mid-frame or a frame was undecodable.
    Broken(String),
    /// Membership changed.
    Changed,
    /// Shutting down.
    Stopped,
}

/// One group.
pub struct Group {
    gateway: Arc<Gateway>,
    shared: Arc<Shared>,
    refresh: Arc<RefreshQueue>,
    anchor: Mailbox,
    cookie: Option<String>,
    members: BTreeSet<Mailbox>,
    subscriptions: HashMap<SubscriptionId, Mailbox>,
    by_mailbox: HashMap<Mailbox, SubscriptionId>,
    refused: HashMap<Mailbox, Instant>,
    commands: mpsc::Receiver<Command>,
    stop: CancellationToken,
    backoff: Backoff,
}

impl Group {
    /// A group of `members` (anchor = the first) receiving `commands`.
    pub fn new(
        gateway: Arc<Gateway>,
        shared: Arc<Shared>,
        refresh: Arc<RefreshQueue>,
        members: Vec<Mailbox>,
        commands: mpsc::Receiver<Command>,
        stop: CancellationToken,
    ) -> Option<Group> {
        let anchor = members.iter().min()?.clone();
        Some(Group {
            gateway,
            shared,
            refresh,
            anchor,
            cookie: None,
            members: members.into_iter().collect(),
            subscriptions: HashMap::new(),
            by_mailbox: HashMap::new(),
            refused: HashMap::new(),
            commands,
            stop,
            backoff: Backoff::new(Duration::from_millis(250), Duration::from_secs(30)),
        })
    }

    fn header<'a>(&self, mailbox: &'a Mailbox) -> RequestHeader<'a> {
        RequestHeader {
            server_version: self.gateway.config.server_version,
            impersonate: self.gateway.config.impersonation.then_some(mailbox),
        }
    }

    async fn sleep(&self, wait: Duration) -> bool {
        tokio::select! {
            _ = self.stop.cancelled() => false,
            _ = tokio::time::sleep(wait) => true,
        }
    }

    fn apply(&mut self, command: Command) {
        match command {
            Command::Add(m) => {
                self.members.insert(m);
            }
            Command::Remove(m) => {
                self.members.remove(&m);
                self.refused.remove(&m);
                if let Some(id) = self.by_mailbox.remove(&m) {
                    self.subscriptions.remove(&id);
                    self.gateway
                        .subscriptions_live
                        .fetch_sub(1, Ordering::Relaxed);
                    let (gateway, anchor, cookie) = (
                        self.gateway.clone(),
                        self.anchor.clone(),
                        self.cookie.clone(),
                    );
                    tokio::spawn(async move {
                        unsubscribe_one(&gateway, id, &anchor, cookie.as_deref()).await
                    });
                }
            }
        }
    }

    fn forget(&mut self, id: &SubscriptionId) -> Option<Mailbox> {
        let mailbox = self.subscriptions.remove(id)?;
        self.by_mailbox.remove(&mailbox);
        self.gateway
            .subscriptions_live
            .fetch_sub(1, Ordering::Relaxed);
        Some(mailbox)
    }

    /// Runs until stopped; then unsubscribes everything.
    pub async fn run(mut self) {
        loop {
            while let Ok(command) = self.commands.try_recv() {
                self.apply(command);
            }
            if self.stop.is_cancelled() {
                break;
            }
            if let Err(wait) = self.subscribe_missing().await {
                if !self.sleep(wait).await {
                    break;
                }
                continue;
            }
            if self.subscriptions.is_empty() {
                // Nothing to stream: wait for a member, a retry, or the stop.
                let retry = self.refused.values().min().copied();
                tokio::select! {
                    _ = self.stop.cancelled() => break,
                    Some(command) = self.commands.recv() => self.apply(command),
                    _ = tokio::time::sleep_until(retry.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600))) => {}
                }
                continue;
            }
            match self.stream().await {
                StreamEnd::Stopped => break,
                StreamEnd::Closed | StreamEnd::Changed => {
                    metrics::reconnect("closed");
                    self.backoff.reset();
                }
                StreamEnd::Lost(ids) => {
                    metrics::resubscribe("lost");
                    for id in &ids {
                        if let Some(mailbox) = self.forget(id) {
                            self.shared.cache.forget_data(&mailbox);
                            self.shared.scheduler.refresh(&self.shared.cache, &mailbox);
                        }
                    }
                }
                StreamEnd::AllLost => {
                    metrics::resubscribe("lost");
                    let ids: Vec<SubscriptionId> = self.subscriptions.keys().cloned().collect();
                    for id in ids {
                        self.forget(&id);
                    }
                }
                StreamEnd::Silent => {
                    metrics::reconnect("silent");
                    let wait = self.backoff.next_delay();
                    if !self.sleep(wait).await {
                        break;
                    }
                }
                StreamEnd::Broken(why) => {
                    metrics::reconnect("undecodable");
                    tracing::warn!(gateway = %self.gateway.config.name, anchor = %self.anchor, error = %why, "undecodable stream; reconnecting and resynchronising the group");
                    for mailbox in self.by_mailbox.keys() {
                        self.refresh.mark(mailbox);
                    }
                    let wait = self.backoff.next_delay();
                    if !self.sleep(wait).await {
                        break;
                    }
                }
                StreamEnd::Failed(error) => {
                    self.gateway.failed(&error);
                    let wait = match error.disposition() {
                        Disposition::Throttled(wait) => {
                            metrics::reconnect("throttled");
                            metrics::throttled(&self.gateway.config.name, wait);
                            wait
                        }
                        Disposition::Fatal => {
                            metrics::reconnect("refused");
                            AUTH_RETRY
                        }
                        Disposition::Resubscribe => {
                            metrics::reconnect("resubscribe");
                            let ids: Vec<SubscriptionId> =
                                self.subscriptions.keys().cloned().collect();
                            for id in ids {
                                self.forget(&id);
                            }
                            Duration::ZERO
                        }
                        Disposition::Retry => {
                            metrics::reconnect("error");
                            self.backoff.next_delay()
                        }
                    };
                    tracing::warn!(gateway = %self.gateway.config.name, anchor = %self.anchor, error = %error, wait_ms = wait.as_millis() as u64, "stream failed");
                    if !self.sleep(wait).await {
                        break;
                    }
                }
            }
        }
        self.unsubscribe_all().await;
    }

    /// Subscribes every member without a subscription. `Err(wait)` when the server
    /// asked us to slow down (or cannot be reached).
    async fn subscribe_missing(&mut self) -> Result<(), Duration> {
        let now = Instant::now();
        let missing: Vec<Mailbox> = self
            .members
            .iter()
            .filter(|m| {
                !self.by_mailbox.contains_key(*m) && self.refused.get(*m).is_none_or(|t| *t <= now)
            })
            .cloned()
            .collect();
        for mailbox in missing {
            if self.stop.is_cancelled() {
                return Ok(());
            }
            let xml = envelope(&self.header(&mailbox), &subscribe::body());
            let route = Route {
                anchor: Some(&self.anchor),
                cookie: self.cookie.as_deref(),
            };
            let started = Instant::now();
            let result = self.gateway.transport.call(xml, &route).await;
            let outcome = match result {
                Ok(answer) => {
                    if self.cookie.is_none() {
                        self.cookie = answer.affinity_cookie;
                    }
                    self.gateway
                        .answered(answer.envelope.server_version.as_ref());
                    match answer.envelope.response {
                        Response::Subscribe(r) => {
                            match (r.status.clone().into_result(), r.subscription_id) {
                                (Ok(()), Some(id)) => Ok(id),
                                (Err(e), _) => Err(e),
                                (Ok(()), None) => Err(EwsError::Transport(
                                    "Subscribe answered NoError without a SubscriptionId".into(),
                                )),
                            }
                        }
                        other => Err(EwsError::Transport(format!(
                            "unexpected {} answer to Subscribe",
                            other.operation()
                        ))),
                    }
                }
                Err(e) => Err(e),
            };
            match outcome {
                Ok(id) => {
                    metrics::ews_request(
                        &self.gateway.config.name,
                        "Subscribe",
                        "ok",
                        started.elapsed(),
                    );
                    self.refused.remove(&mailbox);
                    self.shared.cache.set_problem(&mailbox, None);
                    self.subscriptions.insert(id.clone(), mailbox.clone());
                    self.by_mailbox.insert(mailbox.clone(), id);
                    self.gateway
                        .subscriptions_live
                        .fetch_add(1, Ordering::Relaxed);
                    self.refresh.mark_full(&mailbox);
                }
                Err(error) => {
                    metrics::ews_request(
                        &self.gateway.config.name,
                        "Subscribe",
                        "error",
                        started.elapsed(),
                    );
                    self.gateway.failed(&error);
                    match error.disposition() {
                        Disposition::Throttled(wait) => {
                            metrics::throttled(&self.gateway.config.name, wait);
                            return Err(wait);
                        }
                        Disposition::Fatal
                            if !matches!(error, EwsError::Http { .. } | EwsError::Tls(_)) =>
                        {
                            // This mailbox cannot be subscribed (unknown, no rights).
                            tracing::warn!(gateway = %self.gateway.config.name, mailbox = %mailbox, error = %error, "cannot subscribe mailbox");
                            if self
                                .refused
                                .insert(mailbox.clone(), now + REFUSED_RETRY)
                                .is_none()
                            {
                                self.gateway
                                    .subscriptions_failed
                                    .fetch_add(1, Ordering::Relaxed);
                            }
                            self.shared.cache.set_problem(
                                &mailbox,
                                Some(format!("subscribe refused: {error}").into()),
                            );
                            self.shared.scheduler.refresh(&self.shared.cache, &mailbox);
                        }
                        Disposition::Fatal => return Err(AUTH_RETRY),
                        _ => return Err(self.backoff.next_delay()),
                    }
                }
            }
        }
        Ok(())
    }

    async fn stream(&mut self) -> StreamEnd {
        let ids: Vec<SubscriptionId> = self.subscriptions.keys().cloned().collect();
        let Ok(body) = get_streaming_events::body(&ids, MAX_CONNECTION_TIMEOUT_MINUTES) else {
            return StreamEnd::Broken("a group holds more ids than one stream carries".into());
        };
        let header = RequestHeader {
            server_version: self.gateway.config.server_version,
            impersonate: None,
        };
        let xml = envelope(&header, &body);
        let route = Route {
            anchor: Some(&self.anchor),
            cookie: self.cookie.as_deref(),
        };
        let started = Instant::now();
        let opened = tokio::select! {
            _ = self.stop.cancelled() => return StreamEnd::Stopped,
            opened = self.gateway.transport.open_stream(xml, &route) => opened,
        };
        let mut body = match opened {
            Ok(body) => body,
            Err(e) => {
                metrics::ews_request(
                    &self.gateway.config.name,
                    "GetStreamingEvents",
                    "error",
                    started.elapsed(),
                );
                return StreamEnd::Failed(e);
            }
        };
        metrics::ews_request(
            &self.gateway.config.name,
            "GetStreamingEvents",
            "ok",
            started.elapsed(),
        );
        self.gateway.streams_open.fetch_add(1, Ordering::Relaxed);
        let end = self.read(&mut body).await;
        self.gateway.streams_open.fetch_sub(1, Ordering::Relaxed);
        end
    }

    async fn read(&mut self, body: &mut hyper::body::Incoming) -> StreamEnd {
        let silence = self.shared.presence.heartbeat * 2;
        let mut decoder = StreamDecoder::default();
        loop {
            let chunk = tokio::select! {
                _ = self.stop.cancelled() => return StreamEnd::Stopped,
                Some(command) = self.commands.recv() => {
                    self.apply(command);
                    return StreamEnd::Changed;
                }
                chunk = tokio::time::timeout(silence, body.frame()) => chunk,
            };
            match chunk {
                Err(_) => return StreamEnd::Silent,
                Ok(None) => {
                    return match decoder.finish() {
                        Ok(()) => StreamEnd::Failed(EwsError::Transport(
                            "the stream ended without ConnectionStatus Closed".into(),
                        )),
                        Err(e) => StreamEnd::Broken(e.to_string()),
                    };
                }
                Ok(Some(Err(e))) => return StreamEnd::Failed(EwsError::Transport(e.to_string())),
                Ok(Some(Ok(frame))) => {
                    let Ok(data) = frame.into_data() else {
                        continue;
                    };
                    decoder.push(&data);
                }
            }
            loop {
                let frame = match decoder.next_frame() {
                    Ok(Some(frame)) => frame,
                    Ok(None) => break,
                    Err(e) => return StreamEnd::Broken(e.to_string()),
                };
                self.gateway.answered(frame.server_version.as_ref());
                let r = match frame.response {
                    Response::GetStreamingEvents(r) => r,
                    Response::Fault(f) => return StreamEnd::Failed(EwsError::Fault(Box::new(f))),
                    other => {
                        return StreamEnd::Broken(format!(
                            "unexpected {} envelope in the stream",
                            other.operation()
                        ));
                    }
                };
                metrics::notifications(r.notifications.len() as u64);
                for notification in &r.notifications {
                    for event in &notification.events {
                        metrics::events(event.kind.as_str(), 1);
                    }
                    self.gateway
                        .events_received
                        .fetch_add(notification.events.len() as u64, Ordering::Relaxed);
                    if let Some(mailbox) = self.subscriptions.get(&notification.subscription_id) {
                        self.refresh.mark(mailbox);
                    }
                }
                if !r.error_subscription_ids.is_empty() {
                    return StreamEnd::Lost(r.error_subscription_ids);
                }
                if !r.status.code.is_success() {
                    let error = EwsError::Response(Box::new(r.status));
                    return match error.disposition() {
                        Disposition::Resubscribe => StreamEnd::AllLost,
                        _ => StreamEnd::Failed(error),
                    };
                }
                if r.is_closed() {
                    return StreamEnd::Closed;
                }
            }
        }
    }

    async fn unsubscribe_all(&mut self) {
        let ids: Vec<SubscriptionId> = self.subscriptions.keys().cloned().collect();
        for id in ids {
            self.forget(&id);
            unsubscribe_one(&self.gateway, id, &self.anchor, self.cookie.as_deref()).await;
        }
    }
}

async fn unsubscribe_one(
    gateway: &Gateway,
    id: SubscriptionId,
    anchor: &Mailbox,
    cookie: Option<&str>,
) {
    let header = RequestHeader {
        server_version: gateway.config.server_version,
        impersonate: None,
    };
    let xml = envelope(&header, &unsubscribe::body(&id));
    let started = Instant::now();
    let route = Route {
        anchor: Some(anchor),
        cookie,
    };
    let outcome = match gateway.transport.call(xml, &route).await {
        Ok(_) => "ok",
        Err(_) => "error",
    };
    metrics::ews_request(
        &gateway.config.name,
        "Unsubscribe",
        outcome,
        started.elapsed(),
    );
}

//! The EWS calls a connection group makes (Subscribe, GetStreamingEvents, Unsubscribe),
//! as a trait the group's driver is generic over: [`EwsPort`] makes them over
//! [`Transport`](ews::transport::Transport), tests fake them. The real port also
//! does what belongs to each call: request metrics, the gateway's reachability and
//! version, and reducing each decoded frame to what the group acts on.

use std::future::Future;
use std::sync::Arc;

use http_body_util::BodyExt;
use tokio::time::Instant;

use super::state::{Frame, StreamEnd};
use crate::engine::gateway::Gateway;
use crate::engine::metrics;
use common::mailbox::Mailbox;
use ews::error::EwsError;
use ews::ops::get_streaming_events::{self, EventKind, MAX_CONNECTION_TIMEOUT_MINUTES};
use ews::ops::{subscribe, unsubscribe};
use ews::soap::{RequestHeader, envelope};
use ews::stream::{Response, StreamDecoder};
use ews::transport::{Lane, OpenStream, Route};
use ews::types::SubscriptionId;

/// Where a group's requests go: its anchor and the affinity cookie, owned so that a
/// call can outlive the group's borrow.
#[derive(Debug, Clone)]
pub struct GroupRoute {
    /// `X-AnchorMailbox`.
    pub anchor: Mailbox,
    /// `X-BackEndOverrideCookie=…`.
    pub cookie: Option<String>,
}

impl GroupRoute {
    fn route(&self) -> Route<'_> {
        Route {
            anchor: Some(&self.anchor),
            cookie: self.cookie.as_deref(),
        }
    }
}

/// A new subscription's id and the affinity cookie its answer set, if any.
pub type NewSubscription = (SubscriptionId, Option<String>);

/// What an open stream yields next.
#[derive(Debug)]
pub enum StreamItem {
    /// A complete frame.
    Frame(Frame),
    /// The end, and why.
    End(StreamEnd),
}

/// An open GetStreamingEvents body.
pub trait FrameSource: Send + 'static {
    /// The next complete frame, or the end. Cancel-safe: dropping the future loses
    /// nothing already received.
    fn next(&mut self) -> impl Future<Output = StreamItem> + Send;

    /// Whether part of a frame has arrived and not completed (a stream dropped now
    /// loses what that frame carried).
    fn inside_frame(&self) -> bool {
        false
    }
}

/// The EWS calls of a group.
pub trait Port: Send + Sync + 'static {
    /// An open stream.
    type Stream: FrameSource;

    /// Subscribes `mailbox`'s Calendar folder; the id and any affinity cookie set.
    fn subscribe(
        &self,
        mailbox: Mailbox,
        route: GroupRoute,
    ) -> impl Future<Output = Result<NewSubscription, EwsError>> + Send;

    /// Opens one GetStreamingEvents connection for `ids`, acting for the route's
    /// anchor.
    fn open_stream(
        &self,
        ids: Vec<SubscriptionId>,
        route: GroupRoute,
    ) -> impl Future<Output = Result<Self::Stream, EwsError>> + Send;

    /// Unsubscribes `id`, acting for `mailbox` (whose subscription it is).
    fn unsubscribe(
        &self,
        id: SubscriptionId,
        mailbox: Mailbox,
        route: GroupRoute,
    ) -> impl Future<Output = Result<(), EwsError>> + Send;
}

/// The real calls, to one gateway.
#[derive(Debug, Clone)]
pub struct EwsPort {
    gateway: Arc<Gateway>,
}

impl EwsPort {
    /// Calls to `gateway`.
    pub fn new(gateway: Arc<Gateway>) -> EwsPort {
        EwsPort { gateway }
    }

    fn header<'a>(&self, impersonate: Option<&'a Mailbox>) -> RequestHeader<'a> {
        RequestHeader {
            server_version: self.gateway.config.server_version,
            impersonate,
        }
    }

    fn finished<T>(&self, operation: &'static str, started: Instant, result: &Result<T, EwsError>) {
        let outcome = metrics::outcome_of(result);
        metrics::ews_request(
            &self.gateway.config.name,
            operation,
            outcome,
            started.elapsed(),
        );
        if let Err(error) = result {
            self.gateway.failed(error);
        }
    }
}

impl Port for EwsPort {
    type Stream = EwsStream;

    async fn subscribe(
        &self,
        mailbox: Mailbox,
        route: GroupRoute,
    ) -> Result<NewSubscription, EwsError> {
        let impersonate = self.gateway.config.impersonation.then_some(&mailbox);
        let xml = envelope(&self.header(impersonate), &subscribe::body());
        let started = Instant::now();
        let result = match self.gateway.call(xml, &route.route(), Lane::Normal).await {
            Ok(answer) => {
                self.gateway
                    .answered(answer.envelope.server_version.as_ref());
                match answer.envelope.response {
                    Response::Subscribe(r) => match (r.status.into_result(), r.subscription_id) {
                        (Ok(()), Some(id)) => Ok((id, answer.affinity_cookie)),
                        (Err(e), _) => Err(e),
                        (Ok(()), None) => Err(EwsError::Protocol(
                            "Subscribe answered NoError without a SubscriptionId".into(),
                        )),
                    },
                    other => Err(EwsError::Protocol(format!(
                        "unexpected {} answer to Subscribe",
                        other.operation()
                    ))),
                }
            }
            Err(e) => Err(e),
        };
        self.finished("Subscribe", started, &result);
        result
    }

    async fn open_stream(
        &self,
        ids: Vec<SubscriptionId>,
        route: GroupRoute,
    ) -> Result<EwsStream, EwsError> {
        let body = get_streaming_events::body(&ids, MAX_CONNECTION_TIMEOUT_MINUTES)
            .map_err(|e| EwsError::Protocol(format!("cannot write GetStreamingEvents: {e}")))?;
        // Impersonating the anchor charges the stream to the anchor's budget (and is
        // what servers that tie subscriptions to their user require).
        let impersonate = self.gateway.config.impersonation.then_some(&route.anchor);
        let xml = envelope(&self.header(impersonate), &body);
        let started = Instant::now();
        let result = self.gateway.open_stream(xml, &route.route()).await;
        if result.is_err() {
            self.finished("GetStreamingEvents", started, &result);
        } else {
            // Its outcome is known at the first frame: a stream whose first frame
            // rejects the ids did not work.
            metrics::ews_duration("GetStreamingEvents", started.elapsed());
        }
        Ok(EwsStream {
            gateway: self.gateway.clone(),
            stream: result?,
            decoder: StreamDecoder::default(),
            ended: false,
            outcome_pending: true,
        })
    }

    async fn unsubscribe(
        &self,
        id: SubscriptionId,
        mailbox: Mailbox,
        route: GroupRoute,
    ) -> Result<(), EwsError> {
        let impersonate = self.gateway.config.impersonation.then_some(&mailbox);
        let xml = envelope(&self.header(impersonate), &unsubscribe::body(&id));
        let started = Instant::now();
        let result = match self.gateway.call(xml, &route.route(), Lane::Teardown).await {
            Ok(answer) => match answer.envelope.response {
                Response::Unsubscribe(r) => r.status.into_result(),
                other => Err(EwsError::Protocol(format!(
                    "unexpected {} answer to Unsubscribe",
                    other.operation()
                ))),
            },
            Err(e) => Err(e),
        };
        let outcome = metrics::outcome_of(&result);
        // A failed Unsubscribe says nothing new about the server's health.
        metrics::ews_request(
            &self.gateway.config.name,
            "Unsubscribe",
            outcome,
            started.elapsed(),
        );
        result
    }
}

/// An open GetStreamingEvents body being decoded.
pub struct EwsStream {
    gateway: Arc<Gateway>,
    stream: OpenStream,
    decoder: StreamDecoder,
    ended: bool,
    /// The request's outcome is counted at the first item.
    outcome_pending: bool,
}

impl EwsStream {
    /// Reduces a decoded envelope to what the group acts on, counting what arrived.
    fn reduce(&self, response: Response) -> StreamItem {
        let r = match response {
            Response::GetStreamingEvents(r) => r,
            Response::Fault(f) => {
                return StreamItem::End(StreamEnd::Failed(EwsError::Fault(Box::new(f))));
            }
            other => {
                return StreamItem::End(StreamEnd::Undecodable(format!(
                    "unexpected {} envelope in the stream",
                    other.operation()
                )));
            }
        };
        metrics::notifications(r.notifications.len() as u64);
        let closed = r.is_closed();
        let mut changed = Vec::new();
        for notification in r.notifications {
            let mut real = false;
            for event in &notification.events {
                metrics::event(event.kind.as_str());
                // A StatusEvent is a heartbeat, not a change.
                real |= event.kind != EventKind::Status;
            }
            self.gateway.count_events(notification.events.len());
            if real {
                changed.push(notification.subscription_id);
            }
        }
        let error = (!r.status.code.is_success()).then(|| EwsError::Response(Box::new(r.status)));
        StreamItem::Frame(Frame {
            changed,
            error_ids: r.error_subscription_ids,
            error,
            closed,
        })
    }
}

impl FrameSource for EwsStream {
    fn inside_frame(&self) -> bool {
        self.decoder.inside_frame()
    }

    async fn next(&mut self) -> StreamItem {
        let item = self.next_item().await;
        if std::mem::take(&mut self.outcome_pending) {
            let healthy = matches!(
                &item,
                StreamItem::Frame(f) if f.error.is_none() && f.error_ids.is_empty()
            );
            let outcome = if healthy { "ok" } else { "error" };
            metrics::ews_outcome(&self.gateway.config.name, "GetStreamingEvents", outcome);
        }
        item
    }
}

impl EwsStream {
    /// The next complete frame or the end (cancel-safe: see [`FrameSource::next`]).
    async fn next_item(&mut self) -> StreamItem {
        loop {
            if self.ended {
                return StreamItem::End(StreamEnd::EndedEarly);
            }
            match self.decoder.next_frame() {
                Ok(Some(frame)) => {
                    self.gateway.answered(frame.server_version.as_ref());
                    return self.reduce(frame.response);
                }
                Ok(None) => {}
                Err(e) => {
                    self.ended = true;
                    return StreamItem::End(StreamEnd::Undecodable(e.to_string()));
                }
            }
            // The only await: dropping the future here loses nothing.
            match self.stream.body.frame().await {
                None => {
                    self.ended = true;
                    return StreamItem::End(match self.decoder.finish() {
                        Ok(()) => StreamEnd::EndedEarly,
                        Err(e) => StreamEnd::Undecodable(e.to_string()),
                    });
                }
                Some(Err(e)) => {
                    self.ended = true;
                    let error = EwsError::Transport(format!("reading the stream: {e}"));
                    self.gateway.failed(&error);
                    if self.decoder.inside_frame() {
                        return StreamItem::End(StreamEnd::CutOff(error.to_string()));
                    }
                    return StreamItem::End(StreamEnd::Failed(error));
                }
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        self.decoder.push(&data);
                    }
                }
            }
        }
    }
}

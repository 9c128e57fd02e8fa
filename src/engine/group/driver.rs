//! Runs one group: feeds its [`GroupState`] what happens (call results, frames, timers,
//! membership changes, stop) and executes what it answers: EWS calls through the
//! [`Port`], refreshes, presence-cache updates, metrics, logs and the group's status on
//! its `watch` channel. Everything it spawns goes on the task tracker.
//!
//! Membership arrives on a `watch` channel the engine writes: which mailboxes the engine
//! assigns to the group is recorded there and only there, and a change can never be
//! lost to a full queue. Who the group serves now is the state machine's
//! ([`GroupState::members`]): it applies each new assignment as a diff.

use std::collections::BTreeSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::{Instant, sleep_until};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::state::{Count, GroupState, GroupStatus, Health, Held, Input, Output, StreamEnd};
use crate::engine::Shared;
use crate::engine::gateway::Gateway;
use crate::engine::group::port::{FrameSource, GroupRoute, NewSubscription, Port, StreamItem};
use crate::engine::metrics;
use crate::engine::refresh::RefreshQueue;
use crate::presence::updates::Update;
use common::mailbox::Mailbox;
use ews::error::EwsError;

/// Unsubscribes in flight per group while stopping or dropping ids.
const UNSUBSCRIBE_CONCURRENCY: usize = 48;

type Call<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// What a group's driver works with.
pub struct GroupContext<P: Port> {
    /// The EWS calls.
    pub port: Arc<P>,
    /// The gateway (name, reports).
    pub gateway: Arc<Gateway>,
    /// Cache, scheduler and presence settings.
    pub shared: Arc<Shared>,
    /// The gateway's refresh queue.
    pub refresh: Arc<RefreshQueue>,
    /// Where background work is spawned.
    pub tracker: TaskTracker,
}

/// The stream side of a group: being opened, or open.
enum StreamTask<S> {
    Opening(Call<Result<S, EwsError>>),
    Open { source: S, silent_at: Instant },
}

/// What the stream did next.
enum StreamNews<S> {
    Opened(Result<S, EwsError>),
    Item(StreamItem),
    Silent,
}

async fn stream_news<S: FrameSource>(task: &mut Option<StreamTask<S>>) -> StreamNews<S> {
    match task {
        None => std::future::pending().await,
        Some(StreamTask::Opening(call)) => StreamNews::Opened(call.await),
        Some(StreamTask::Open { source, silent_at }) => {
            tokio::select! {
                item = source.next() => StreamNews::Item(item),
                _ = sleep_until(*silent_at) => StreamNews::Silent,
            }
        }
    }
}

async fn maybe<T>(call: &mut Option<Call<T>>) -> T {
    match call {
        Some(call) => call.await,
        None => std::future::pending().await,
    }
}

async fn maybe_sleep(at: Option<Instant>) {
    match at {
        Some(at) => sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Unsubscribes `held`, a few at a time, each acting for its mailbox; failures are
/// counted by the port and ignored (the server expires what it cannot find again).
async fn unsubscribe_all<P: Port>(port: Arc<P>, held: Vec<Held>, route: GroupRoute) {
    let mut ids = held.into_iter();
    let mut running = JoinSet::new();
    loop {
        while running.len() < UNSUBSCRIBE_CONCURRENCY {
            let Some((id, mailbox)) = ids.next() else {
                break;
            };
            let (port, route) = (port.clone(), route.clone());
            running.spawn(async move {
                let _ = port.unsubscribe(id, mailbox, route).await;
            });
        }
        if running.join_next().await.is_none() {
            return;
        }
    }
}

/// Runs the group until it has stopped and drained.
pub async fn run<P: Port>(
    mut state: GroupState,
    context: GroupContext<P>,
    mut members: watch::Receiver<BTreeSet<Mailbox>>,
    status: watch::Sender<GroupStatus>,
    stop: CancellationToken,
) {
    let mut driver = Driver {
        context,
        status,
        subscribe: None,
        stream: None,
        drain: None,
        timer: None,
        last_status: None,
    };
    // The gateway's credential gate: its reopening ends a credentials wait at once.
    let mut refused = driver.context.gateway.credentials.watch();
    let outputs = state.on(Instant::now(), Input::Start);
    let mut finished = driver.execute(&state, outputs);
    let mut stopping = false;
    while !finished {
        let input = tokio::select! {
            // The gateway (and so the gate's sender) outlives the group.
            Ok(()) = refused.changed(), if !stopping => {
                if *refused.borrow_and_update() {
                    continue;
                }
                Input::CredentialsAccepted
            }
            _ = stop.cancelled(), if !stopping => {
                stopping = true;
                Input::Stop
            }
            changed = members.changed(), if !stopping => {
                if changed.is_err() {
                    // The engine let go of the group: stop it.
                    stopping = true;
                    Input::Stop
                } else {
                    Input::Members(members.borrow_and_update().clone())
                }
            }
            result = maybe(&mut driver.subscribe) => {
                driver.subscribe = None;
                let mailbox = match state.phase() {
                    super::state::Phase::Subscribing(m) => m.clone(),
                    _ => continue,
                };
                Input::Subscribed { mailbox, result }
            }
            news = stream_news(&mut driver.stream) => match news {
                StreamNews::Opened(Ok(source)) => {
                    let silent_at = Instant::now() + driver.silence();
                    driver.stream = Some(StreamTask::Open { source, silent_at });
                    Input::StreamOpened
                }
                StreamNews::Opened(Err(error)) => {
                    driver.stream = None;
                    Input::StreamEnded(StreamEnd::Failed(error))
                }
                StreamNews::Item(StreamItem::Frame(frame)) => {
                    let silence = driver.silence();
                    if let Some(StreamTask::Open { silent_at, .. }) = &mut driver.stream {
                        *silent_at = Instant::now() + silence;
                    }
                    Input::Frame(frame)
                }
                StreamNews::Item(StreamItem::End(end)) => {
                    driver.stream = None;
                    Input::StreamEnded(end)
                }
                StreamNews::Silent => {
                    let inside_frame = matches!(&driver.stream, Some(StreamTask::Open { source, .. }) if source.inside_frame());
                    driver.stream = None;
                    Input::StreamEnded(StreamEnd::Silent { inside_frame })
                }
            },
            _ = maybe_sleep(driver.timer) => {
                driver.timer = None;
                Input::Timer
            }
            _ = maybe(&mut driver.drain) => {
                driver.drain = None;
                Input::Drained
            }
        };
        let outputs = state.on(Instant::now(), input);
        finished |= driver.execute(&state, outputs);
    }
    driver.publish(None);
}

struct Driver<P: Port> {
    context: GroupContext<P>,
    status: watch::Sender<GroupStatus>,
    subscribe: Option<Call<Result<NewSubscription, EwsError>>>,
    stream: Option<StreamTask<P::Stream>>,
    drain: Option<Call<()>>,
    timer: Option<Instant>,
    last_status: Option<GroupStatus>,
}

impl<P: Port> Driver<P> {
    /// Silence that ends a stream: twice the heartbeat interval without a whole frame.
    fn silence(&self) -> Duration {
        self.context.shared.presence.heartbeat * 2
    }

    fn route(state: &GroupState) -> GroupRoute {
        GroupRoute {
            anchor: state.anchor().clone(),
            cookie: state.cookie().map(str::to_owned),
        }
    }

    /// Executes `outputs`; true once the group has finished.
    fn execute(&mut self, state: &GroupState, outputs: Vec<Output>) -> bool {
        let mut finished = false;
        // The status first, so that reports below know whether the group was already
        // failing before this step.
        let (statuses, outputs): (Vec<Output>, Vec<Output>) = outputs
            .into_iter()
            .partition(|o| matches!(o, Output::Status(_)));
        for status in statuses {
            if let Output::Status(status) = status {
                self.publish(Some(status));
            }
        }
        let shared = &self.context.shared;
        let gateway_name = self.context.gateway.config.name.as_str();
        for output in outputs {
            match output {
                Output::Subscribe(mailbox) => {
                    let (port, route) = (self.context.port.clone(), Self::route(state));
                    self.subscribe = Some(Box::pin(
                        async move { port.subscribe(mailbox, route).await },
                    ));
                }
                Output::OpenStream(ids) => {
                    let (port, route) = (self.context.port.clone(), Self::route(state));
                    self.stream = Some(StreamTask::Opening(Box::pin(async move {
                        port.open_stream(ids, route).await
                    })));
                }
                Output::CloseStream => self.stream = None,
                Output::Unsubscribe(ids) => {
                    let (port, route) = (self.context.port.clone(), Self::route(state));
                    self.context
                        .tracker
                        .spawn(unsubscribe_all(port, ids, route));
                }
                Output::Drain(ids) => {
                    self.subscribe = None;
                    self.timer = None;
                    let (port, route) = (self.context.port.clone(), Self::route(state));
                    self.drain = Some(Box::pin(unsubscribe_all(port, ids, route)));
                }
                Output::Refresh { mailbox, full } => {
                    if full {
                        self.context.refresh.mark_full(&mailbox);
                    } else {
                        self.context.refresh.mark(&mailbox);
                    }
                }
                Output::Subscribed(mailbox) => {
                    shared.updates.apply(&mailbox, Update::Subscribed);
                }
                Output::Lost(mailbox) => {
                    shared.updates.apply(&mailbox, Update::SubscriptionLost);
                }
                Output::Problem(mailbox, problem) => {
                    let problem = problem.map(|p| format!("{gateway_name}: {p}").into());
                    shared.updates.apply(&mailbox, Update::Problem(problem));
                }
                Output::SleepUntil(at) => self.timer = Some(at),
                Output::Count(Count::Reconnect(reason)) => metrics::reconnect(gateway_name, reason),
                Output::Count(Count::Resubscribe(reason, n)) => {
                    metrics::resubscribe(gateway_name, reason, n)
                }
                Output::Count(Count::Throttled(wait)) => metrics::throttled(gateway_name, wait),
                Output::Report { message, loud } => {
                    self.context.gateway.report(&message);
                    if loud {
                        tracing::warn!(gateway = %gateway_name, anchor = %state.anchor(), "{message}");
                    } else {
                        tracing::debug!(gateway = %gateway_name, anchor = %state.anchor(), "{message}");
                    }
                }
                Output::Health(health) => log_health(gateway_name, state.anchor(), health),
                Output::Status(_) => {}
                Output::Finished => finished = true,
                Output::OwnerBound => self.context.gateway.one_mailbox_per_stream(),
                Output::Moved(mailbox) => self.context.gateway.suspect_moved(mailbox),
            }
        }
        finished
    }

    /// Publishes the group's status and moves the gauges.
    fn publish(&mut self, status: Option<GroupStatus>) {
        let gateway = self.context.gateway.config.name.as_str();
        metrics::group_status(gateway, self.last_status.as_ref(), status.as_ref());
        let Some(status) = status else {
            self.last_status = None;
            return;
        };
        self.status.send_replace(status.clone());
        self.last_status = Some(status);
    }
}

/// One log line for a change of a group's health.
fn log_health(gateway: &str, anchor: &Mailbox, health: Health) {
    match health {
        Health::Resubscribing { error } => tracing::info!(
            gateway = %gateway,
            anchor = %anchor,
            error = error.as_deref().unwrap_or("none"),
            "subscriptions lost; resubscribing after a backoff"
        ),
        Health::Failing { reason, error } => tracing::warn!(
            gateway = %gateway,
            anchor = %anchor,
            reason = reason.as_str(),
            error = error.as_deref().unwrap_or("none"),
            "connection group is failing; retrying with backoff"
        ),
        Health::Recovered { after } => tracing::info!(
            gateway = %gateway,
            anchor = %anchor,
            after_ms = after.as_millis() as u64,
            "connection group recovered"
        ),
    }
}

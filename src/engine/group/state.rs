//! One connection group as a pure state machine: `on(now, input) -> outputs`. No I/O,
//! no clock reads, no metrics; the [driver](super::driver) executes the outputs and
//! feeds back what happened. Every rule below has a table test.
//!
//! A group subscribes each member's Calendar folder (impersonating it, routed to the
//! group's anchor), then holds one GetStreamingEvents connection for all of them
//! (impersonating the anchor, so that it is charged to the anchor's budget).
//!
//! Phases: **Idle** (nothing to subscribe or stream), **Subscribing** (one Subscribe in
//! flight), **Streaming** (a stream open or opening), **Waiting** (until an instant, for
//! a reason), **Draining** (stopping: unsubscribing), **Stopped**.
//!
//! Rules:
//! - *Next step*: subscribe the first member without a subscription (alphabetically,
//!   skipping mailboxes refused until their retry time); with none left, open a stream
//!   for every id held; with no id held, Idle (waking for the earliest refused retry).
//! - *Subscribed*: the id is kept and the mailbox refreshed in full; a mailbox removed
//!   meanwhile has the new id unsubscribed. The first affinity cookie is kept while any
//!   subscription lives.
//! - *Healthy frame* (success, no error ids): the backoffs reset and the ids carried are
//!   proven (the server accepted them). A retry wait therefore starts short again after
//!   any stream that worked, however long the outage before it.
//! - *Changed*: every id whose notification carried an event other than `StatusEvent`
//!   has its mailbox refreshed (a `StatusEvent` is a heartbeat, not a change).
//! - *Closed*: reopen at once with the same ids (not a gap), unless the stream closed
//!   within [`QUICK_CLOSE`] of opening, which backs off like a failure (a server that
//!   closes every stream at once must not be hammered).
//! - *Silent* (no complete frame for twice the heartbeat), *ended without Closed*, a
//!   dropped or failed connection: back off, reopen with the same ids (the server
//!   queues events meanwhile; no resync).
//! - *Unreachable* (a stream that could not even connect): the server may have
//!   restarted, and some number subscriptions from 1 again, so an id we hold may name
//!   someone else's: every id is dropped without Unsubscribe, the mailboxes marked
//!   stale, and all resubscribed after a backoff.
//! - *Undecodable*, or *cut off* (the stream ended inside a frame, or went silent
//!   after part of one: the server will not send those events again): back off,
//!   reopen, and refresh every member.
//! - *Lost* (ids in `ErrorSubscriptionIds`, or a stream error whose disposition is
//!   Resubscribe): those ids are dropped and unsubscribed (best effort), their
//!   mailboxes marked stale (their timelines keep serving, see the presence cache),
//!   then resubscribed after a backoff and refreshed in full. Ids rejected before any
//!   healthy frame proved them are reported as an error: the server refuses what it
//!   just created, and the growing backoff bounds the cycle.
//! - *Owner-bound server*: when every fresh id on the stream but the anchor's own is
//!   refused, the server lets a stream carry only the impersonated user's
//!   subscriptions (gromox); [`Output::OwnerBound`] tells the gateway to carry one
//!   mailbox per stream from then on.
//! - *Moved*: a Subscribe answered ErrorProxyRequestNotAllowed,
//!   ErrorMailboxMoveInProgress, ErrorMailboxStoreUnavailable or
//!   ErrorSubscriptionNotFound, or ids reported lost with one of them, name mailboxes
//!   that may live elsewhere now: [`Output::Moved`] asks for them to be discovered again
//!   (the gateway ignores it without Autodiscover); the group itself handles the error
//!   as any other.
//! - *Missed events* (`ErrorMissedNotificationEvents`): the subscriptions stay; their
//!   mailboxes are refreshed in full.
//! - *Throttled*: wait what the server asked.
//! - *Refused credentials* (HTTP 401/403): the gateway's credential gate alone decides
//!   when the next login may go out. A request it held back says when
//!   ([`EwsError::CredentialBackoff`]), and the group waits exactly that; a fresh
//!   refusal (which has just closed the gate) tries again at once and so learns the
//!   gate's time without a login. When the gate opens again
//!   ([`Input::CredentialsAccepted`]), the wait ends at once.
//! - *Refused certificate* (TLS): no gate paces handshakes, so the group waits on its
//!   own slow backoff, one attempt per step.
//! - *Problems*: every member not served with fresh data carries a problem saying
//!   why. When the group waits after a failure, each member without a subscription
//!   is given the failure's cause (refused credentials: every member, since no event
//!   reaches even the subscribed ones); a lost subscription gives its mailbox the
//!   loss. A fresh subscription's refresh clears it (in the presence cache); a
//!   member that kept its subscription through refused credentials is refreshed on
//!   the next healthy frame, which clears it.
//! - *Refused mailbox* (Subscribe answered a permanent error for it): reported on the
//!   mailbox, retried after [`REFUSED_RETRY`]; the others go on.
//! - *Members*: the members wanted now; those gone leave first, then the new ones join.
//!   Membership changes reopen the stream with the new ids; a removed mailbox's id is
//!   unsubscribed; the others' subscriptions are untouched.
//! - *Stop*: close the stream, unsubscribe every id (Draining), then Stopped.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use tokio::time::Instant;

use super::subscriptions::Subscriptions;
use crate::engine::backoff::Backoff;
use common::mailbox::Mailbox;
use ews::error::{Disposition, EwsError};
use ews::response_code::ResponseCode;
use ews::types::SubscriptionId;

/// How long a mailbox whose Subscribe was refused waits before it is tried again.
pub const REFUSED_RETRY: Duration = Duration::from_secs(300);
/// A stream closed sooner than this after opening backs off instead of reopening.
pub const QUICK_CLOSE: Duration = Duration::from_secs(1);

/// Why a group waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitReason {
    /// The server asked us to slow down.
    Throttled,
    /// The server refused our credentials or its certificate did not verify.
    Credentials,
    /// Connecting, sending or reading failed.
    Unreachable,
    /// The stream went silent, ended early or broke.
    Stream,
    /// Subscriptions were lost; they are created again after the wait.
    Resubscribe,
}

impl WaitReason {
    /// The name used in logs and status.
    pub fn as_str(self) -> &'static str {
        match self {
            WaitReason::Throttled => "throttled",
            WaitReason::Credentials => "credentials",
            WaitReason::Unreachable => "unreachable",
            WaitReason::Stream => "stream",
            WaitReason::Resubscribe => "resubscribe",
        }
    }
}

/// Where a group is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    /// Nothing to subscribe or stream until a member arrives or a refused retry falls due.
    Idle,
    /// A Subscribe for this mailbox is in flight.
    Subscribing(Mailbox),
    /// A stream is open or being opened; `since` is when it was asked for.
    Streaming {
        /// When the stream was requested.
        since: Instant,
        /// Whether the server answered 200 and the body is being read.
        open: bool,
    },
    /// Waiting until `until`.
    Waiting {
        /// When the next step runs.
        until: Instant,
        /// Why.
        reason: WaitReason,
    },
    /// Stopping: the driver unsubscribes every id.
    Draining,
    /// Done.
    Stopped,
}

/// How a stream ended without a frame saying so.
#[derive(Debug)]
pub enum StreamEnd {
    /// No complete frame for twice the heartbeat interval; `inside_frame` when part of
    /// one had come (then the stream was cut inside it: a gap).
    Silent {
        /// Part of a frame was read before the silence.
        inside_frame: bool,
    },
    /// The body ended without `ConnectionStatus` Closed.
    EndedEarly,
    /// A frame could not be decoded.
    Undecodable(String),
    /// The stream stopped inside a frame (cut, or silent after part of one): the
    /// events it carried are lost, since the server does not send them again.
    CutOff(String),
    /// Opening or reading failed.
    Failed(EwsError),
}

/// One decoded streaming frame, reduced to what the group acts on.
#[derive(Debug, Default)]
pub struct Frame {
    /// Subscriptions whose notification carried a real change (not only `StatusEvent`).
    pub changed: Vec<SubscriptionId>,
    /// `ErrorSubscriptionIds`.
    pub error_ids: Vec<SubscriptionId>,
    /// The frame's error, when its response code is not `NoError`.
    pub error: Option<EwsError>,
    /// `ConnectionStatus` Closed.
    pub closed: bool,
}

/// What happened, fed to [`GroupState::on`].
#[derive(Debug)]
pub enum Input {
    /// Begin (subscribe the members).
    Start,
    /// A Subscribe finished.
    Subscribed {
        /// For whom.
        mailbox: Mailbox,
        /// The new id and the affinity cookie the answer set, or why it failed.
        result: Result<(SubscriptionId, Option<String>), EwsError>,
    },
    /// The server answered the GetStreamingEvents request with a body to read.
    StreamOpened,
    /// A complete frame arrived.
    Frame(Frame),
    /// The stream ended without a frame saying why.
    StreamEnded(StreamEnd),
    /// A timer the group asked for fired.
    Timer,
    /// The gateway's credential gate opened again: a credentials wait ends now.
    CredentialsAccepted,
    /// The members wanted now: those gone leave, then the new ones join.
    Members(BTreeSet<Mailbox>),
    /// Shut down.
    Stop,
    /// Draining finished.
    Drained,
}

/// Counters the driver records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Count {
    /// A stream reopened, by reason.
    Reconnect(&'static str),
    /// Subscriptions created again after being lost, by reason.
    Resubscribe(&'static str, usize),
    /// Time spent waiting because the server throttled us.
    Throttled(Duration),
}

/// What to do with the server's side of subscriptions we drop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Release {
    /// Unsubscribe them (they are ours, and gone or unwanted).
    Unsubscribe,
    /// Leave them: their ids may no longer be ours (the server may have restarted).
    Forget,
}

/// A subscription we hold and the mailbox it watches (an Unsubscribe acts for it).
pub use super::subscriptions::Held;

/// What the driver must do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Subscribe `mailbox` (impersonating it) and feed back [`Input::Subscribed`].
    Subscribe(Mailbox),
    /// Open one stream for these ids and feed back its frames and end.
    OpenStream(Vec<SubscriptionId>),
    /// Drop the open stream (no input follows for it).
    CloseStream,
    /// Unsubscribe these, best effort, in the background.
    Unsubscribe(Vec<Held>),
    /// Unsubscribe these within the shutdown grace, then feed back [`Input::Drained`].
    Drain(Vec<Held>),
    /// Refresh this mailbox's calendar; `full` also re-reads automatic replies.
    Refresh {
        mailbox: Mailbox,
        /// Calendar and automatic replies.
        full: bool,
    },
    /// The mailbox holds a subscription again.
    Subscribed(Mailbox),
    /// The mailbox lost its subscription: its data is stale until resubscribed and
    /// refreshed.
    Lost(Mailbox),
    /// Why a mailbox cannot be served (`None`: no problem), in an operator's words
    /// (the driver prefixes the gateway's name).
    Problem(Mailbox, Option<String>),
    /// Feed [`Input::Timer`] at this instant.
    SleepUntil(Instant),
    /// Count this.
    Count(Count),
    /// A failure the operator must see (`/v1/gateways`, and the log: at warn when
    /// `loud`, the first report of a failure; at debug while the group keeps failing).
    Report {
        /// What failed.
        message: String,
        /// Log it at warn.
        loud: bool,
    },
    /// The group's health changed: one log line.
    Health(Health),
    /// The group's status changed.
    Status(GroupStatus),
    /// A request for this mailbox was answered as if it lives elsewhere now (moved,
    /// or its database failed over): Autodiscover should be asked again.
    Moved(Mailbox),
    /// The server refused every fresh subscription on the stream but the anchor's own:
    /// it ties a subscription to the impersonated user (as gromox does), so this
    /// gateway must carry one mailbox per stream.
    OwnerBound,
    /// The group has stopped.
    Finished,
}

/// What a group reports (on its `watch` channel).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupStatus {
    /// The anchor mailbox.
    pub anchor: Mailbox,
    /// The phase's name: idle, subscribing, streaming, waiting, draining, stopped.
    pub phase: &'static str,
    /// Why it waits, when it does.
    pub waiting: Option<WaitReason>,
    /// A stream is open.
    pub stream_open: bool,
    /// Members.
    pub members: usize,
    /// Subscriptions held.
    pub subscribed: usize,
    /// Members whose Subscribe was refused for good (until their retry).
    pub refused: usize,
    /// The last failure, until a healthy frame.
    pub last_error: Option<String>,
}

/// One group's state.
#[derive(Debug)]
pub struct GroupState {
    anchor: Mailbox,
    cookie: Option<String>,
    members: BTreeSet<Mailbox>,
    subscriptions: Subscriptions,
    refused: HashMap<Mailbox, Instant>,
    /// Members given the group's failure as their problem, and the text given.
    flagged: HashMap<Mailbox, String>,
    phase: Phase,
    backoff: Backoff,
    certificate: Backoff,
    last_error: Option<String>,
    health: HealthLog,
}

/// What the log has been told of the current failure.
#[derive(Debug, Default)]
struct HealthLog {
    /// When the group began failing (None: healthy).
    failing_since: Option<Instant>,
    /// A report was logged at warn since it began failing.
    reported: bool,
}

/// A change of a group's health worth one log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    /// Subscriptions were lost: resubscribing after a backoff (info).
    Resubscribing {
        /// The last error, if any.
        error: Option<String>,
    },
    /// The group began failing and retries with backoff (warn).
    Failing {
        /// What it waits for.
        reason: WaitReason,
        /// The last error, if any.
        error: Option<String>,
    },
    /// A stream is open and healthy again (info).
    Recovered {
        /// How long the failure lasted.
        after: Duration,
    },
}

impl GroupState {
    /// A group of `members` (anchor: the alphabetically first), retrying transient
    /// failures on `backoff` and a refused certificate on the slower `certificate`.
    /// `None` without members.
    pub fn new(
        members: impl IntoIterator<Item = Mailbox>,
        backoff: Backoff,
        certificate: Backoff,
    ) -> Option<GroupState> {
        let members: BTreeSet<Mailbox> = members.into_iter().collect();
        let anchor = members.first()?.clone();
        Some(GroupState {
            anchor,
            cookie: None,
            members,
            subscriptions: Subscriptions::default(),
            refused: HashMap::new(),
            flagged: HashMap::new(),
            phase: Phase::Idle,
            backoff,
            certificate,
            last_error: None,
            health: HealthLog::default(),
        })
    }

    /// The mailbox requests are routed to.
    pub fn anchor(&self) -> &Mailbox {
        &self.anchor
    }

    /// The affinity cookie to send back, once the server set one.
    pub fn cookie(&self) -> Option<&str> {
        self.cookie.as_deref()
    }

    pub fn members(&self) -> &BTreeSet<Mailbox> {
        &self.members
    }

    pub fn phase(&self) -> &Phase {
        &self.phase
    }

    /// The status as reported.
    pub fn status(&self) -> GroupStatus {
        let (phase, waiting, stream_open) = match &self.phase {
            Phase::Idle => ("idle", None, false),
            Phase::Subscribing(_) => ("subscribing", None, false),
            Phase::Streaming { open, .. } => ("streaming", None, *open),
            Phase::Waiting { reason, .. } => ("waiting", Some(*reason), false),
            Phase::Draining => ("draining", None, false),
            Phase::Stopped => ("stopped", None, false),
        };
        GroupStatus {
            anchor: self.anchor.clone(),
            phase,
            waiting,
            stream_open,
            members: self.members.len(),
            subscribed: self.subscriptions.len(),
            refused: self.refused.len(),
            last_error: self.last_error.clone(),
        }
    }

    /// Applies `input` at `now`; returns what the driver must do.
    pub fn on(&mut self, now: Instant, input: Input) -> Vec<Output> {
        let before = self.status();
        let mut out = Vec::new();
        if matches!(self.phase, Phase::Stopped) {
            return out;
        }
        if matches!(self.phase, Phase::Draining) {
            if let Input::Drained = input {
                self.phase = Phase::Stopped;
                out.push(Output::Finished);
            }
        } else {
            match input {
                Input::Start | Input::Timer => self.on_timer(now, &mut out),
                Input::CredentialsAccepted => {
                    if let Phase::Waiting {
                        reason: WaitReason::Credentials,
                        ..
                    } = self.phase
                    {
                        self.next_step(now, &mut out);
                    }
                }
                Input::Subscribed { mailbox, result } => {
                    self.on_subscribed(now, mailbox, result, &mut out)
                }
                Input::StreamOpened => {
                    if let Phase::Streaming { open, .. } = &mut self.phase {
                        *open = true;
                    }
                }
                Input::Frame(frame) => self.on_frame(now, frame, &mut out),
                Input::StreamEnded(end) => self.on_stream_end(now, end, &mut out),
                Input::Members(wanted) => self.on_members(now, wanted, &mut out),
                Input::Stop => self.on_stop(&mut out),
                Input::Drained => {}
            }
        }
        let after = self.status();
        if after != before {
            if let Some(health) = self.track_health(now, &after) {
                // First, as the status: the reports below belong to this failure.
                out.insert(0, Output::Health(health));
            }
            out.push(Output::Status(after));
        }
        self.pitch_reports(&mut out);
        out
    }

    /// Tells a change of health once each way: failing (or resubscribing), then
    /// recovered once a stream is open and healthy.
    fn track_health(&mut self, now: Instant, status: &GroupStatus) -> Option<Health> {
        let error = status.last_error.clone();
        match (self.health.failing_since, status.waiting) {
            (None, Some(WaitReason::Resubscribe)) => {
                self.health.failing_since = Some(now);
                Some(Health::Resubscribing { error })
            }
            (None, Some(reason)) => {
                self.health.failing_since = Some(now);
                self.health.reported = true;
                Some(Health::Failing { reason, error })
            }
            (Some(since), None) if status.stream_open && status.last_error.is_none() => {
                self.health = HealthLog::default();
                Some(Health::Recovered {
                    after: now.saturating_duration_since(since),
                })
            }
            _ => None,
        }
    }

    /// Reports are loud (warn) until one was loud during the current failure; the
    /// rest of that failure's reports are quiet (debug).
    fn pitch_reports(&mut self, out: &mut [Output]) {
        for output in out.iter_mut() {
            if let Output::Report { loud, .. } = output {
                *loud = !self.health.reported;
                if *loud {
                    self.health.reported = self.health.failing_since.is_some();
                }
            }
        }
    }

    /// How long to wait after our credentials or the server's certificate were
    /// refused.
    fn refusal_wait(&mut self, error: &EwsError) -> Duration {
        match error {
            // The gate says when the next login may go out.
            EwsError::CredentialBackoff { retry_in, .. } => *retry_in,
            // No gate paces TLS handshakes.
            EwsError::Tls(_) => self.certificate.next_delay(),
            // Just refused: the gate closed on it; the next attempt learns its time.
            _ => Duration::ZERO,
        }
    }

    fn streaming(&self) -> bool {
        matches!(self.phase, Phase::Streaming { .. })
    }

    fn on_timer(&mut self, now: Instant, out: &mut Vec<Output>) {
        match &self.phase {
            Phase::Waiting { until, .. } if *until > now => {}
            Phase::Waiting { .. } | Phase::Idle => self.next_step(now, out),
            _ => {}
        }
    }

    /// Subscribes the next member without a subscription, else streams, else idles.
    fn next_step(&mut self, now: Instant, out: &mut Vec<Output>) {
        if self.subscriptions.is_empty() {
            // Nothing routed by the old anchor any more: re-anchor on today's members.
            if let Some(first) = self.members.first()
                && *first != self.anchor
            {
                self.anchor = first.clone();
                self.cookie = None;
            }
        }
        let missing = self.members.iter().find(|m| {
            !self.subscriptions.holds(m) && self.refused.get(*m).is_none_or(|at| *at <= now)
        });
        if let Some(mailbox) = missing.cloned() {
            self.phase = Phase::Subscribing(mailbox.clone());
            out.push(Output::Subscribe(mailbox));
            return;
        }
        if !self.subscriptions.is_empty() {
            let mut ids: Vec<SubscriptionId> = self.subscriptions.ids().cloned().collect();
            ids.sort_by(|a, b| a.as_str().cmp(b.as_str()));
            self.phase = Phase::Streaming {
                since: now,
                open: false,
            };
            out.push(Output::OpenStream(ids));
            return;
        }
        self.phase = Phase::Idle;
        if let Some(at) = self.refused.values().min() {
            out.push(Output::SleepUntil(*at));
        }
    }

    fn wait(&mut self, now: Instant, wait: Duration, reason: WaitReason, out: &mut Vec<Output>) {
        let until = now + wait;
        self.phase = Phase::Waiting { until, reason };
        out.push(Output::SleepUntil(until));
    }

    fn fail(&mut self, message: String, out: &mut Vec<Output>) {
        out.push(Output::Report {
            message: message.clone(),
            loud: false,
        });
        self.last_error = Some(message);
    }

    /// Gives `cause` as their problem to the members without a subscription (with
    /// `every`, to all members), except those refused one by one, which carry their
    /// own. A member is told again only when the cause changes.
    fn flag(&mut self, cause: &str, every: bool, out: &mut Vec<Output>) {
        for mailbox in &self.members {
            if (!every && self.subscriptions.holds(mailbox))
                || self.refused.contains_key(mailbox)
                || self
                    .flagged
                    .get(mailbox)
                    .is_some_and(|given| given == cause)
            {
                continue;
            }
            self.flagged.insert(mailbox.clone(), cause.to_owned());
            out.push(Output::Problem(mailbox.clone(), Some(cause.to_owned())));
        }
    }

    /// A healthy frame: members that kept their subscription while flagged (refused
    /// credentials) are refreshed, which ends their problem and staleness.
    fn unflag_subscribed(&mut self, out: &mut Vec<Output>) {
        if self.flagged.is_empty() {
            return;
        }
        let subscriptions = &self.subscriptions;
        let mut recovered: Vec<Mailbox> = Vec::new();
        self.flagged.retain(|mailbox, _| {
            let subscribed = subscriptions.holds(mailbox);
            if subscribed {
                recovered.push(mailbox.clone());
            }
            !subscribed
        });
        recovered.sort();
        for mailbox in recovered {
            out.push(Output::Refresh {
                mailbox,
                full: false,
            });
        }
    }

    fn on_subscribed(
        &mut self,
        now: Instant,
        mailbox: Mailbox,
        result: Result<(SubscriptionId, Option<String>), EwsError>,
        out: &mut Vec<Output>,
    ) {
        if self.phase != Phase::Subscribing(mailbox.clone()) {
            // Not the Subscribe we are waiting for (cannot happen with one driver);
            // keep nothing we did not ask for.
            if let Ok((id, _)) = result {
                out.push(Output::Unsubscribe(vec![(id, mailbox)]));
            }
            return;
        }
        match result {
            Ok((id, cookie)) => {
                if !self.members.contains(&mailbox) {
                    out.push(Output::Unsubscribe(vec![(id, mailbox)]));
                } else {
                    if self.cookie.is_none() {
                        self.cookie = cookie;
                    }
                    if self.refused.remove(&mailbox).is_some() {
                        out.push(Output::Problem(mailbox.clone(), None));
                    }
                    // Its refresh clears the problem it carries.
                    self.flagged.remove(&mailbox);
                    self.subscriptions.insert(mailbox.clone(), id);
                    out.push(Output::Subscribed(mailbox.clone()));
                    out.push(Output::Refresh {
                        mailbox,
                        full: true,
                    });
                }
                self.next_step(now, out);
            }
            Err(error) => {
                if response_code(&error).is_some_and(ResponseCode::suggests_move) {
                    out.push(Output::Moved(mailbox.clone()));
                }
                let cause = error.cause();
                let message = format!("Subscribe for {mailbox} failed: {cause}");
                match error.disposition() {
                    Disposition::Throttled(wait) => {
                        out.push(Output::Count(Count::Throttled(wait)));
                        self.fail(message, out);
                        self.flag(&throttled(&cause, wait), false, out);
                        self.wait(now, wait, WaitReason::Throttled, out);
                    }
                    Disposition::Fatal if refuses_credentials(&error) => {
                        self.fail(message, out);
                        self.flag(&cause, true, out);
                        let wait = self.refusal_wait(&error);
                        self.wait(now, wait, WaitReason::Credentials, out);
                    }
                    Disposition::Fatal => {
                        // This mailbox cannot be subscribed (unknown, no rights): the
                        // others go on.
                        self.flagged.remove(&mailbox);
                        out.push(Output::Problem(
                            mailbox.clone(),
                            Some(format!("Subscribe refused: {cause}")),
                        ));
                        out.push(Output::Report {
                            message,
                            loud: false,
                        });
                        self.refused.insert(mailbox, now + REFUSED_RETRY);
                        self.next_step(now, out);
                    }
                    Disposition::Retry | Disposition::Resubscribe => {
                        self.fail(message, out);
                        self.flag(&cause, false, out);
                        let wait = self.backoff.next_delay();
                        self.wait(now, wait, WaitReason::Unreachable, out);
                    }
                }
            }
        }
    }

    fn on_frame(&mut self, now: Instant, frame: Frame, out: &mut Vec<Output>) {
        if !self.streaming() {
            return;
        }
        for id in &frame.changed {
            if let Some(mailbox) = self.subscriptions.mailbox_of(id) {
                out.push(Output::Refresh {
                    mailbox: mailbox.clone(),
                    full: false,
                });
            }
        }
        let missed = frame.error.as_ref().is_some_and(|e| {
            response_code(e) == Some(&ResponseCode::ErrorMissedNotificationEvents)
        });
        if missed {
            // Events were lost, the subscriptions were not: read those mailboxes again.
            for id in &frame.error_ids {
                if let Some(mailbox) = self.subscriptions.mailbox_of(id) {
                    out.push(Output::Refresh {
                        mailbox: mailbox.clone(),
                        full: true,
                    });
                }
            }
        } else if !frame.error_ids.is_empty() {
            if self.refuses_all_but_the_anchor(&frame.error_ids) {
                out.push(Output::OwnerBound);
            } else if frame
                .error
                .as_ref()
                .and_then(response_code)
                .is_some_and(ResponseCode::suggests_move)
            {
                for id in &frame.error_ids {
                    if let Some(mailbox) = self.subscriptions.mailbox_of(id) {
                        out.push(Output::Moved(mailbox.clone()));
                    }
                }
            }
            let reason = frame.error.as_ref().map_or_else(
                || "the server reported them lost".to_owned(),
                ToString::to_string,
            );
            self.lose(now, &frame.error_ids, &reason, out);
            return;
        } else if let Some(error) = frame.error {
            self.stream_failed(now, error, out);
            return;
        }
        let since = match self.phase {
            Phase::Streaming { since, .. } => since,
            _ => now,
        };
        let closed_early = frame.closed && now.saturating_duration_since(since) < QUICK_CLOSE;
        if !missed && !closed_early {
            // A healthy frame: the server accepted every id we sent.
            self.backoff.reset();
            self.certificate.reset();
            self.subscriptions.prove_all();
            self.last_error = None;
            self.unflag_subscribed(out);
        }
        if frame.closed {
            out.push(Output::CloseStream);
            if closed_early {
                out.push(Output::Count(Count::Reconnect("closed-early")));
                let wait = self.backoff.next_delay();
                self.wait(now, wait, WaitReason::Stream, out);
            } else {
                out.push(Output::Count(Count::Reconnect("closed")));
                self.next_step(now, out);
            }
        }
    }

    /// Whether `rejected` is exactly every subscription on the stream but the anchor's,
    /// all of them fresh: the signature of a server that lets a stream carry only the
    /// impersonated user's own subscriptions.
    fn refuses_all_but_the_anchor(&self, rejected: &[SubscriptionId]) -> bool {
        let Some(anchor_id) = self.subscriptions.id_of(&self.anchor) else {
            return false;
        };
        self.subscriptions.len() >= 2
            && !rejected.contains(anchor_id)
            && self
                .subscriptions
                .ids()
                .filter(|id| *id != anchor_id)
                .all(|id| rejected.contains(id) && self.subscriptions.is_unproven(id))
    }

    /// These subscriptions are gone: drop and unsubscribe them, mark their mailboxes
    /// stale, and resubscribe after a backoff.
    fn lose(&mut self, now: Instant, ids: &[SubscriptionId], reason: &str, out: &mut Vec<Output>) {
        self.drop_ids(now, ids, reason, Release::Unsubscribe, out);
    }

    /// Drops `ids` (unsubscribing them or not), marks their mailboxes stale, and
    /// resubscribes after a backoff.
    fn drop_ids(
        &mut self,
        now: Instant,
        ids: &[SubscriptionId],
        reason: &str,
        release: Release,
        out: &mut Vec<Output>,
    ) {
        let mut dropped = Vec::new();
        let mut fresh = 0;
        for id in ids {
            if let Some((mailbox, unproven)) = self.subscriptions.remove_id(id) {
                if unproven {
                    fresh += 1;
                }
                out.push(Output::Lost(mailbox.clone()));
                dropped.push((id.clone(), mailbox));
            }
        }
        out.push(Output::CloseStream);
        if !dropped.is_empty() {
            match release {
                Release::Unsubscribe => {
                    out.push(Output::Count(Count::Resubscribe("lost", dropped.len())));
                    out.push(Output::Unsubscribe(dropped.clone()));
                }
                Release::Forget => {
                    out.push(Output::Count(Count::Resubscribe(
                        "unreachable",
                        dropped.len(),
                    )));
                }
            }
        }
        if fresh > 0 {
            self.fail(
                format!(
                    "the server rejected {fresh} subscription(s) it had just created ({reason}); retrying with backoff"
                ),
                out,
            );
        } else {
            self.last_error = Some(format!("{} subscription(s) lost: {reason}", dropped.len()));
        }
        let cause = match release {
            Release::Unsubscribe => format!("subscription lost ({reason}); subscribing again"),
            // The reason already says that the server could not be reached.
            Release::Forget => reason.to_owned(),
        };
        self.flag(&cause, false, out);
        let wait = self.backoff.next_delay();
        self.wait(now, wait, WaitReason::Resubscribe, out);
    }

    fn stream_failed(&mut self, now: Instant, error: EwsError, out: &mut Vec<Output>) {
        out.push(Output::CloseStream);
        let cause = error.cause();
        let message = format!("stream failed: {cause}");
        let never_opened = matches!(self.phase, Phase::Streaming { open: false, .. });
        if never_opened && matches!(error, EwsError::Transport(_) | EwsError::Timeout(_)) {
            // We could not reach the server: it may have restarted, and some servers
            // number subscriptions from 1 again, so an id we hold may now name someone
            // else's subscription. Trust none of them and unsubscribe none.
            let ids: Vec<SubscriptionId> = self.subscriptions.ids().cloned().collect();
            out.push(Output::Count(Count::Reconnect("error")));
            self.fail(message.clone(), out);
            self.drop_ids(now, &ids, &cause, Release::Forget, out);
            self.last_error = Some(message);
            return;
        }
        match error.disposition() {
            Disposition::Throttled(wait) => {
                out.push(Output::Count(Count::Reconnect("throttled")));
                out.push(Output::Count(Count::Throttled(wait)));
                self.fail(message, out);
                self.flag(&throttled(&cause, wait), false, out);
                self.wait(now, wait, WaitReason::Throttled, out);
            }
            Disposition::Fatal if refuses_credentials(&error) => {
                out.push(Output::Count(Count::Reconnect("refused")));
                self.fail(message, out);
                self.flag(&cause, true, out);
                let wait = self.refusal_wait(&error);
                self.wait(now, wait, WaitReason::Credentials, out);
            }
            Disposition::Resubscribe => {
                let ids: Vec<SubscriptionId> = self.subscriptions.ids().cloned().collect();
                self.lose(now, &ids, &cause, out);
            }
            Disposition::Fatal | Disposition::Retry => {
                out.push(Output::Count(Count::Reconnect("error")));
                self.fail(message, out);
                self.flag(&cause, false, out);
                let wait = self.backoff.next_delay();
                self.wait(now, wait, WaitReason::Unreachable, out);
            }
        }
    }

    fn on_stream_end(&mut self, now: Instant, end: StreamEnd, out: &mut Vec<Output>) {
        if !self.streaming() {
            return;
        }
        match end {
            StreamEnd::Failed(error) => self.stream_failed(now, error, out),
            StreamEnd::Silent { inside_frame: true } => {
                let problem = "stream cut off inside a frame (part of a frame, then nothing for twice the heartbeat interval)".to_owned();
                self.resync(now, "cut-off", problem, out);
            }
            StreamEnd::Silent {
                inside_frame: false,
            } => {
                out.push(Output::CloseStream);
                out.push(Output::Count(Count::Reconnect("silent")));
                self.last_error = Some("no frame for twice the heartbeat interval".into());
                let wait = self.backoff.next_delay();
                self.wait(now, wait, WaitReason::Stream, out);
            }
            StreamEnd::EndedEarly => {
                out.push(Output::CloseStream);
                out.push(Output::Count(Count::Reconnect("ended")));
                self.last_error = Some("the stream ended without ConnectionStatus Closed".into());
                let wait = self.backoff.next_delay();
                self.wait(now, wait, WaitReason::Stream, out);
            }
            StreamEnd::Undecodable(why) => {
                let problem = format!("undecodable stream ({why})");
                self.resync(now, "undecodable", problem, out);
            }
            StreamEnd::CutOff(why) => {
                let problem = format!("stream cut off inside a frame ({why})");
                self.resync(now, "cut-off", problem, out);
            }
        }
    }

    /// What a stream delivered is in doubt: back off, reopen, refresh every member.
    fn resync(
        &mut self,
        now: Instant,
        reason: &'static str,
        problem: String,
        out: &mut Vec<Output>,
    ) {
        out.push(Output::CloseStream);
        out.push(Output::Count(Count::Reconnect(reason)));
        self.fail(
            format!("{problem}; reconnecting and refreshing the group"),
            out,
        );
        let mut mailboxes: Vec<&Mailbox> = self.subscriptions.mailboxes().collect();
        mailboxes.sort();
        for mailbox in mailboxes {
            out.push(Output::Refresh {
                mailbox: mailbox.clone(),
                full: false,
            });
        }
        let wait = self.backoff.next_delay();
        self.wait(now, wait, WaitReason::Stream, out);
    }

    fn on_members(&mut self, now: Instant, wanted: BTreeSet<Mailbox>, out: &mut Vec<Output>) {
        let gone: Vec<Mailbox> = self.members.difference(&wanted).cloned().collect();
        let new: Vec<Mailbox> = wanted.difference(&self.members).cloned().collect();
        for mailbox in gone {
            self.on_remove(now, mailbox, out);
        }
        for mailbox in new {
            self.on_add(now, mailbox, out);
        }
    }

    fn on_add(&mut self, now: Instant, mailbox: Mailbox, out: &mut Vec<Output>) {
        if !self.members.insert(mailbox) {
            return;
        }
        match self.phase {
            Phase::Streaming { .. } => {
                out.push(Output::CloseStream);
                out.push(Output::Count(Count::Reconnect("membership")));
                self.next_step(now, out);
            }
            Phase::Idle => self.next_step(now, out),
            _ => {}
        }
    }

    fn on_remove(&mut self, now: Instant, mailbox: Mailbox, out: &mut Vec<Output>) {
        if !self.members.remove(&mailbox) {
            return;
        }
        self.refused.remove(&mailbox);
        self.flagged.remove(&mailbox);
        let Some(id) = self.subscriptions.remove_mailbox(&mailbox) else {
            return;
        };
        out.push(Output::Unsubscribe(vec![(id, mailbox)]));
        if self.streaming() {
            out.push(Output::CloseStream);
            out.push(Output::Count(Count::Reconnect("membership")));
            self.next_step(now, out);
        }
    }

    fn on_stop(&mut self, out: &mut Vec<Output>) {
        if self.streaming() {
            out.push(Output::CloseStream);
        }
        let held = self.subscriptions.take_all();
        self.phase = Phase::Draining;
        out.push(Output::Drain(held));
    }
}

/// A throttling wait, as a mailbox's problem.
fn throttled(cause: &str, wait: Duration) -> String {
    format!(
        "throttled by the server ({cause}); next attempt in {} s",
        wait.as_secs().max(1)
    )
}

/// Whether an error means our credentials (or the server's certificate) are refused:
/// a fact of the gateway, not of this one mailbox.
fn refuses_credentials(error: &EwsError) -> bool {
    error.is_refused_credentials() || matches!(error, EwsError::Tls(_))
}

fn response_code(error: &EwsError) -> Option<&ResponseCode> {
    match error {
        EwsError::Response(status) => Some(&status.code),
        EwsError::Fault(fault) => Some(&fault.status.code),
        _ => None,
    }
}

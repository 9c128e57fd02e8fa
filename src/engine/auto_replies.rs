//! How a gateway reads automatic replies, and when.
//!
//! Which operation: GetMailTips answers the automatic-reply tip of many mailboxes in
//! one request (Exchange 2010 and later), so a sweep of N mailboxes costs N / limit
//! requests instead of N. The gateway first asks GetServiceConfiguration whether
//! MailTips are on and how many recipients a request may name; a server that says no
//! (gromox), does not know the operation, or refuses GetMailTips later is read one
//! mailbox at a time with GetUserOofSettings, as before, and `/v1/gateways` says why.
//!
//! What a tip means (see [`ews::ops::get_mail_tips`]): a message means replies
//! are on now (Scheduled when a `Duration` comes with it); a `Duration` alone means a
//! Scheduled window. An empty message without `Duration` is "off" or "on with an empty
//! message": when we last knew the mailbox off that agrees and nothing is asked; when
//! we knew it on or scheduled, it changed and GetUserOofSettings reads what it is now.
//! A tip the server did not compute or answered in another shape, or a recipient's
//! error, is also read with GetUserOofSettings. Because "on with an empty message"
//! cannot be told from "off" by a tip, every mailbox is also read with
//! GetUserOofSettings once per `oof_verify` (default 4 h), spread evenly.
//!
//! When: at start and after a resubscription at once (`mark`); then a paced sweep
//! walks the mailboxes in order so that each is read once per `oof_refresh`, a full
//! batch at a time at even intervals, never all at once.

use std::collections::BTreeSet;
use std::ops::Bound;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use jiff::Timestamp;

use super::Shared;
use super::backoff::Backoff;
use super::due::DueSet;
use super::gateway::Gateway;
use super::refresh::{Read, RefreshQueue, failed, recovered, send_read, unusable};
use crate::presence::timeline::AutoReply;
use crate::presence::updates::Update;
use common::mailbox::Mailbox;
use common::sync::lock;
use ews::error::{Disposition, EwsError};
use ews::ops::get_mail_tips::{self, OofTip, RecipientTip};
use ews::ops::get_service_configuration;
use ews::ops::get_user_oof_settings::{self, OofState};
use ews::soap::{RequestHeader, envelope};
use ews::stream::Response;
use ews::transport::Route;
use ews::types::EwsDateTime;
use ews::types::RequestServerVersion;

/// Shortest interval between two steps of a paced sweep (more mailboxes per step
/// beyond that).
const MIN_STEP: Duration = Duration::from_millis(100);
/// Attempts of the GetServiceConfiguration question before reading one by one.
const PROBE_ATTEMPTS: u32 = 3;
/// First wait before asking GetServiceConfiguration again after a transient failure.
const PROBE_RETRY_MIN: Duration = Duration::from_millis(200);
/// Longest such wait.
const PROBE_RETRY_MAX: Duration = Duration::from_secs(5);

/// How the gateway reads automatic replies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// Asking GetServiceConfiguration.
    Probing,
    /// GetMailTips, `batch` recipients per request.
    MailTips {
        /// Recipients per request.
        batch: usize,
    },
    /// GetUserOofSettings per mailbox, and why.
    OneByOne {
        /// Why not GetMailTips.
        why: String,
    },
}

impl Source {
    /// How `/v1/gateways` shows it.
    pub fn describe(&self) -> String {
        match self {
            Source::Probing => "asking GetServiceConfiguration".to_owned(),
            Source::MailTips { batch } => format!("GetMailTips, {batch} per request"),
            Source::OneByOne { why } => format!("GetUserOofSettings per mailbox ({why})"),
        }
    }
}

/// Walks the gateway's mailboxes in order, a few per step, so each is visited once
/// per period.
#[derive(Debug, Default)]
struct Pacer {
    cursor: Option<Mailbox>,
    next_at: Option<Instant>,
    /// Mailboxes owed to the pace but not yet taken (a fraction of one per step).
    credit: f64,
}

impl Pacer {
    /// The step interval and mailboxes per step (on average) for `members` over
    /// `period` in batches of `batch`.
    fn plan(members: usize, period: Duration, batch: usize) -> (Duration, f64) {
        let batch = batch.max(1);
        let steps = members.div_ceil(batch).max(1) as u32;
        let step = period / steps;
        if step >= MIN_STEP {
            (step, batch.min(members.max(1)) as f64)
        } else {
            let per = members as f64 * MIN_STEP.as_secs_f64() / period.as_secs_f64();
            (MIN_STEP, per)
        }
    }

    /// The mailboxes due at `now` (and when the next step is).
    fn step(
        &mut self,
        now: Instant,
        members: &BTreeSet<Mailbox>,
        period: Duration,
        batch: usize,
    ) -> (Vec<Mailbox>, Instant) {
        let (interval, per) = Pacer::plan(members.len(), period, batch);
        let Some(at) = self.next_at else {
            // The first step comes one interval after start (the start-up reads
            // covered everyone just now).
            let at = now + interval;
            self.next_at = Some(at);
            return (Vec::new(), at);
        };
        if at > now {
            return (Vec::new(), at);
        }
        self.credit += per;
        let per = (self.credit.floor() as usize).min(members.len());
        self.credit -= per as f64;
        let mut taken = Vec::with_capacity(per);
        let start = match &self.cursor {
            Some(c) => members.range::<Mailbox, _>((Bound::Excluded(c), Bound::Unbounded)),
            None => members.range::<Mailbox, _>(..),
        };
        taken.extend(start.take(per).cloned());
        // Wrap around to the beginning (no overlap: `per` is at most every member).
        let more = per - taken.len();
        taken.extend(members.iter().take(more).cloned());
        self.cursor = taken.last().cloned();
        let next = (at + interval).max(now);
        self.next_at = Some(next);
        (taken, next)
    }
}

/// A gateway's automatic-reply reads waiting to be sent.
#[derive(Debug)]
pub struct AutoReplies {
    /// Read soon the gateway's way (start, resubscription, sweep, retry).
    soon: Mutex<DueSet>,
    /// Read with GetUserOofSettings (a tip could not tell, verification, retry).
    confirm: Mutex<DueSet>,
    source: Mutex<Source>,
    /// When to ask GetServiceConfiguration (again).
    probe_at: Mutex<Option<Instant>>,
    sweep: Mutex<Pacer>,
    verify: Mutex<Pacer>,
}

impl Default for AutoReplies {
    fn default() -> Self {
        AutoReplies {
            soon: Mutex::new(DueSet::default()),
            confirm: Mutex::new(DueSet::default()),
            source: Mutex::new(Source::Probing),
            probe_at: Mutex::new(Some(Instant::now())),
            sweep: Mutex::new(Pacer::default()),
            verify: Mutex::new(Pacer::default()),
        }
    }
}

impl AutoReplies {
    /// Read `mailbox` soon.
    pub fn mark(&self, mailbox: &Mailbox, at: Instant) {
        lock(&self.soon).insert_keep(mailbox.clone(), at);
    }

    /// Read `mailbox` with GetUserOofSettings at `at`.
    pub fn confirm(&self, mailbox: &Mailbox, at: Instant) {
        lock(&self.confirm).insert_keep(mailbox.clone(), at);
    }

    /// Whether a GetUserOofSettings of `mailbox` is queued.
    pub fn confirm_queued(&self, mailbox: &Mailbox) -> bool {
        lock(&self.confirm).contains(mailbox)
    }

    /// Forgets `mailbox`.
    pub fn remove(&self, mailbox: &Mailbox) {
        lock(&self.soon).remove(mailbox);
        lock(&self.confirm).remove(mailbox);
    }

    /// Forgets everything queued.
    pub fn clear(&self) {
        lock(&self.soon).clear();
        lock(&self.confirm).clear();
    }

    /// How the gateway reads them now.
    pub fn source(&self) -> Source {
        lock(&self.source).clone()
    }

    fn set_source(&self, gateway: &Gateway, source: Source) {
        let mut current = lock(&self.source);
        if *current == source {
            return;
        }
        match &source {
            Source::MailTips { batch } => {
                tracing::info!(gateway = %gateway.config.name, batch, "automatic replies are read with GetMailTips")
            }
            Source::OneByOne { why } => {
                tracing::warn!(gateway = %gateway.config.name, reason = %why, "automatic replies are read one mailbox at a time with GetUserOofSettings")
            }
            Source::Probing => {}
        }
        *current = source;
    }
}

/// Everything the dispatcher needs to start reads.
pub struct Dispatch<'a> {
    pub gateway: &'a Arc<Gateway>,
    /// Its refresh queue.
    pub queue: &'a Arc<RefreshQueue>,
    /// Engine state.
    pub shared: &'a Arc<Shared>,
    /// Stops everything.
    pub stop: &'a CancellationToken,
    /// Request slots for automatic-reply reads.
    pub slots: &'a Arc<Semaphore>,
}

impl Dispatch<'_> {
    fn slot(&self) -> Option<OwnedSemaphorePermit> {
        self.slots.clone().try_acquire_owned().ok()
    }

    /// Starts what is due at `now` without waiting for a slot; returns when something
    /// falls due next.
    pub fn run(&self, now: Instant, work: &mut JoinSet<()>) -> Option<Instant> {
        let auto = &self.queue.auto;
        let presence = &self.shared.presence;
        let mut next: Vec<Instant> = Vec::new();
        if lock(&auto.probe_at).is_some_and(|at| at <= now)
            && let Some(permit) = self.slot()
        {
            *lock(&auto.probe_at) = None;
            let (gateway, queue, shared, stop) = self.owned();
            work.spawn(async move {
                probe(&gateway, &queue, &shared, &stop).await;
                drop(permit);
            });
        }
        if let Some(at) = *lock(&auto.probe_at) {
            next.push(at);
        }
        let source = auto.source();
        let members = self.queue.members_snapshot();
        let batch = match source {
            Source::MailTips { batch } => batch,
            _ => 1,
        };
        if !matches!(source, Source::Probing) {
            let (due, at) = lock(&auto.sweep).step(now, &members, presence.oof_refresh, batch);
            for m in due {
                auto.mark(&m, now);
            }
            next.push(at);
        }
        if matches!(source, Source::MailTips { .. }) {
            let (due, at) = lock(&auto.verify).step(now, &members, presence.oof_verify, 1);
            for m in due {
                auto.confirm(&m, now);
            }
            next.push(at);
        }
        drop(members);
        // GetUserOofSettings first: they settle what a tip could not.
        loop {
            let Some(permit) = self.slot() else { break };
            let Some(mailbox) = lock(&auto.confirm).take_due(now, 1).pop() else {
                drop(permit);
                break;
            };
            let (gateway, queue, shared, stop) = self.owned();
            work.spawn(async move {
                fetch_oof(&gateway, &queue, &shared, &stop, mailbox).await;
                drop(permit);
            });
        }
        loop {
            if matches!(source, Source::Probing) {
                break;
            }
            let Some(permit) = self.slot() else { break };
            let taken = lock(&auto.soon).take_due(now, batch);
            if taken.is_empty() {
                drop(permit);
                break;
            }
            let (gateway, queue, shared, stop) = self.owned();
            match source {
                Source::MailTips { .. } => {
                    work.spawn(async move {
                        fetch_tips(&gateway, &queue, &shared, &stop, taken).await;
                        drop(permit);
                    });
                }
                // One by one: the batch is one mailbox, read holding its slot.
                _ => {
                    work.spawn(async move {
                        for mailbox in taken {
                            fetch_oof(&gateway, &queue, &shared, &stop, mailbox).await;
                        }
                        drop(permit);
                    });
                }
            }
        }
        next.extend(lock(&auto.soon).next_after(now));
        next.extend(lock(&auto.confirm).next_after(now));
        next.into_iter().min()
    }

    fn owned(
        &self,
    ) -> (
        Arc<Gateway>,
        Arc<RefreshQueue>,
        Arc<Shared>,
        CancellationToken,
    ) {
        (
            self.gateway.clone(),
            self.queue.clone(),
            self.shared.clone(),
            self.stop.clone(),
        )
    }
}

/// Whether an error means the server does not serve GetMailTips /
/// GetServiceConfiguration at all (as opposed to failing now).
fn not_served(error: &EwsError) -> Option<String> {
    let code = match error {
        EwsError::Response(status) => &status.code,
        EwsError::Fault(fault) => &fault.status.code,
        _ => return None,
    };
    NOT_SERVED
        .contains(&code.as_str())
        .then(|| format!("the server answered {code}"))
}

/// Codes that say the server does not serve the operation (or not as we ask it).
const NOT_SERVED: &[&str] = &[
    "ErrorMailTipsDisabled",
    "ErrorInvalidRequest",
    "ErrorInvalidServerVersion",
    "ErrorSchemaValidation",
    "ErrorInvalidOperation",
    "ErrorExceededMaxRecipientLimit",
];

/// Asks GetServiceConfiguration whether MailTips are on and their recipient limit.
async fn probe(gateway: &Gateway, queue: &RefreshQueue, shared: &Shared, stop: &CancellationToken) {
    let auto = &queue.auto;
    if gateway.config.server_version < RequestServerVersion::Exchange2010 {
        auto.set_source(
            gateway,
            Source::OneByOne {
                why: "server_version is older than Exchange2010".to_owned(),
            },
        );
        return;
    }
    let first = queue.members_snapshot().iter().next().cloned();
    let header = RequestHeader {
        server_version: gateway.config.server_version,
        impersonate: first.as_ref().filter(|_| gateway.config.impersonation),
    };
    let xml = envelope(&header, &get_service_configuration::body());
    let route = Route {
        anchor: first.as_ref(),
        cookie: None,
    };
    let answer = probe_with_retries(gateway, queue, stop, &xml, &route).await;
    let source = match answer {
        Ok((Response::GetServiceConfiguration(r), _)) => {
            match (r.status.into_result(), r.mail_tips) {
                (Ok(()), Some(c)) if c.enabled && c.max_recipients > 0 => Source::MailTips {
                    batch: (c.max_recipients as usize).min(get_mail_tips::MAX_RECIPIENTS),
                },
                (Ok(()), Some(_)) => Source::OneByOne {
                    why: "the server says MailTips are off".to_owned(),
                },
                (Ok(()), None) => Source::OneByOne {
                    why: "the server sent no MailTips configuration".to_owned(),
                },
                (Err(e), _) => Source::OneByOne {
                    why: format!("GetServiceConfiguration: {e}"),
                },
            }
        }
        Ok((Response::Fault(f), _)) => Source::OneByOne {
            why: format!("GetServiceConfiguration: {}", f.status.code),
        },
        Ok((other, _)) => Source::OneByOne {
            why: format!(
                "unexpected {} answer to GetServiceConfiguration",
                other.operation()
            ),
        },
        Err(e) => {
            if stop.is_cancelled() {
                return;
            }
            // Could not ask now: read one by one meanwhile, ask again later.
            *lock(&auto.probe_at) = Some(Instant::now() + shared.presence.oof_refresh);
            Source::OneByOne {
                why: format!("GetServiceConfiguration failed, asking again later: {e}"),
            }
        }
    };
    auto.set_source(gateway, source);
    queue.wake();
}

/// Asks GetServiceConfiguration, retrying a transient failure a few times (waiting
/// what the server asks when it throttles): unlike a read, nothing queues the question
/// again soon, and a failure leaves the gateway reading one mailbox at a time until it
/// is asked again.
async fn probe_with_retries(
    gateway: &Gateway,
    queue: &RefreshQueue,
    stop: &CancellationToken,
    xml: &str,
    route: &Route<'_>,
) -> Result<(Response, Timestamp), EwsError> {
    let mut backoff =
        Backoff::new(PROBE_RETRY_MIN, PROBE_RETRY_MAX).unwrap_or_else(|e| unreachable!("{e}"));
    let mut attempt = 0;
    loop {
        attempt += 1;
        let error =
            match send_read(gateway, queue.clock, "GetServiceConfiguration", xml, route).await {
                Ok(answer) => return Ok(answer),
                Err(error) => error,
            };
        let wait = match error.disposition() {
            Disposition::Throttled(wait) => wait,
            Disposition::Retry => backoff.next_delay(),
            _ => return Err(error),
        };
        if attempt >= PROBE_ATTEMPTS {
            return Err(error);
        }
        tokio::select! {
            _ = stop.cancelled() => return Err(error),
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

fn seconds(t: &EwsDateTime) -> Option<i64> {
    t.to_timestamp_assuming_utc().map(|t| t.as_second())
}

/// What to do with one recipient's tip, given what we knew.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TipVerdict {
    /// Store this.
    Apply(AutoReply),
    /// Agrees with what we knew; nothing to do.
    Agrees,
    /// Read it with GetUserOofSettings.
    Confirm,
}

/// Decides what one tip says about a mailbox last known as `known`.
pub fn verdict(tip: &RecipientTip, known: &AutoReply) -> TipVerdict {
    if !tip.status.code.is_success() {
        return TipVerdict::Confirm;
    }
    let window = |w: &(EwsDateTime, EwsDateTime)| match (seconds(&w.0), seconds(&w.1)) {
        (Some(start), Some(end)) if end > start => Some(AutoReply::Scheduled { start, end }),
        _ => None,
    };
    match &tip.oof {
        OofTip::Replying { window: None } => TipVerdict::Apply(AutoReply::On),
        OofTip::Replying { window: Some(w) } | OofTip::Silent { window: Some(w) } => {
            window(w).map_or(TipVerdict::Confirm, TipVerdict::Apply)
        }
        OofTip::Silent { window: None } => match known {
            AutoReply::Off => TipVerdict::Agrees,
            AutoReply::On | AutoReply::Scheduled { .. } => TipVerdict::Confirm,
        },
        OofTip::Unknown => TipVerdict::Confirm,
    }
}

/// Reads the tips of `mailboxes` with one GetMailTips.
async fn fetch_tips(
    gateway: &Gateway,
    queue: &RefreshQueue,
    shared: &Shared,
    stop: &CancellationToken,
    mailboxes: Vec<Mailbox>,
) {
    let Some(first) = mailboxes.first() else {
        return;
    };
    let body = match get_mail_tips::body(first, &mailboxes) {
        Ok(body) => body,
        Err(e) => {
            // The batch is never larger than the limit; say so if it ever is.
            tracing::error!(gateway = %gateway.config.name, error = %e, "cannot write GetMailTips");
            return;
        }
    };
    let header = RequestHeader {
        server_version: gateway.config.server_version,
        impersonate: gateway.config.impersonation.then_some(first),
    };
    let xml = envelope(&header, &body);
    let route = Route {
        anchor: Some(first),
        cookie: None,
    };
    let answer = send_read(gateway, queue.clock, "GetMailTips", &xml, &route).await;
    let auto = &queue.auto;
    let (problem, wait) = match answer {
        Ok((Response::GetMailTips(r), sent_at)) => match r.status.clone().into_result() {
            Ok(()) if r.recipients.len() == mailboxes.len() => {
                let now = Instant::now();
                for (mailbox, tip) in mailboxes.iter().zip(&r.recipients) {
                    let known = shared.updates.auto_reply(mailbox).unwrap_or_default();
                    match verdict(tip, &known) {
                        TipVerdict::Apply(auto_reply) => {
                            shared.updates.apply(
                                mailbox,
                                Update::AutoReply {
                                    auto_reply,
                                    read_at: sent_at,
                                },
                            );
                        }
                        TipVerdict::Agrees => {}
                        TipVerdict::Confirm => auto.confirm(mailbox, now),
                    }
                    queue.succeeded(mailbox, Read::MailTips);
                }
                recovered(gateway, queue, Read::MailTips);
                queue.wake();
                return;
            }
            Ok(()) => (
                format!(
                    "GetMailTips answered {} recipients for {} asked",
                    r.recipients.len(),
                    mailboxes.len()
                ),
                None,
            ),
            Err(e) => match not_served(&e) {
                Some(why) => return give_up_tips(gateway, queue, &mailboxes, why),
                None => unusable(Read::MailTips, Err(e)),
            },
        },
        Err(e) => match not_served(&e) {
            Some(why) => return give_up_tips(gateway, queue, &mailboxes, why),
            None => unusable(Read::MailTips, Err(e)),
        },
        Ok((other, _)) => unusable(Read::MailTips, Ok(other)),
    };
    if !stop.is_cancelled() {
        failed(
            gateway,
            queue,
            shared,
            Read::MailTips,
            &mailboxes,
            &problem,
            wait,
        );
    }
}

/// The server does not serve GetMailTips: read one by one from now on.
fn give_up_tips(gateway: &Gateway, queue: &RefreshQueue, mailboxes: &[Mailbox], why: String) {
    queue.auto.set_source(gateway, Source::OneByOne { why });
    let now = Instant::now();
    for m in mailboxes {
        queue.auto.mark(m, now);
    }
    queue.wake();
}

/// Reads one mailbox's settings with GetUserOofSettings.
async fn fetch_oof(
    gateway: &Gateway,
    queue: &RefreshQueue,
    shared: &Shared,
    stop: &CancellationToken,
    mailbox: Mailbox,
) {
    let impersonate = gateway.config.impersonation.then_some(&mailbox);
    let header = RequestHeader {
        server_version: gateway.config.server_version,
        impersonate,
    };
    let xml = envelope(&header, &get_user_oof_settings::body(&mailbox));
    let route = Route {
        anchor: Some(&mailbox),
        cookie: None,
    };
    let answer = send_read(gateway, queue.clock, "GetUserOofSettings", &xml, &route).await;
    let (problem, wait) = match answer {
        Ok((Response::GetUserOofSettings(r), sent_at)) => {
            match (r.status.into_result(), r.settings) {
                (Ok(()), Some(settings)) => {
                    let secs = |t: Option<EwsDateTime>| t.as_ref().and_then(seconds);
                    let auto = match settings.state {
                        OofState::Disabled => AutoReply::Off,
                        OofState::Enabled => AutoReply::On,
                        OofState::Scheduled => match (secs(settings.start), secs(settings.end)) {
                            (Some(start), Some(end)) => AutoReply::Scheduled { start, end },
                            _ => AutoReply::Off,
                        },
                    };
                    shared.updates.apply(
                        &mailbox,
                        Update::AutoReply {
                            auto_reply: auto,
                            read_at: sent_at,
                        },
                    );
                    queue.succeeded(&mailbox, Read::AutoReplies);
                    recovered(gateway, queue, Read::AutoReplies);
                    return;
                }
                (Err(e), _) => unusable(Read::AutoReplies, Err(e)),
                (Ok(()), None) => (
                    "GetUserOofSettings answered NoError without OofSettings".to_owned(),
                    None,
                ),
            }
        }
        other => unusable(Read::AutoReplies, other.map(|(r, _)| r)),
    };
    if !stop.is_cancelled() {
        let mailboxes = std::slice::from_ref(&mailbox);
        failed(
            gateway,
            queue,
            shared,
            Read::AutoReplies,
            mailboxes,
            &problem,
            wait,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ews::response::Status;

    fn mailbox(n: usize) -> Mailbox {
        Mailbox::parse(&format!("user{n:05}@example.test")).unwrap()
    }

    fn tip(oof: OofTip) -> RecipientTip {
        RecipientTip {
            status: Status::success(),
            address: None,
            oof,
        }
    }

    fn time(s: &str) -> EwsDateTime {
        EwsDateTime::parse(s).unwrap()
    }

    #[test]
    fn a_tip_is_applied_when_it_can_tell_and_confirmed_when_it_cannot() {
        let window = Some((time("2026-12-01T08:00:00Z"), time("2026-12-05T17:00:00Z")));
        let scheduled = AutoReply::Scheduled {
            start: seconds(&time("2026-12-01T08:00:00Z")).unwrap(),
            end: seconds(&time("2026-12-05T17:00:00Z")).unwrap(),
        };
        let off = AutoReply::Off;
        assert_eq!(
            verdict(&tip(OofTip::Replying { window: None }), &off),
            TipVerdict::Apply(AutoReply::On)
        );
        assert_eq!(
            verdict(
                &tip(OofTip::Replying {
                    window: window.clone()
                }),
                &off
            ),
            TipVerdict::Apply(scheduled)
        );
        // A window with an empty message (or outside it) is still the window.
        assert_eq!(
            verdict(&tip(OofTip::Silent { window }), &off),
            TipVerdict::Apply(scheduled)
        );
        // Empty and no window: agrees with "off", contradicts "on" and "scheduled".
        let silent = tip(OofTip::Silent { window: None });
        assert_eq!(verdict(&silent, &off), TipVerdict::Agrees);
        assert_eq!(verdict(&silent, &AutoReply::On), TipVerdict::Confirm);
        assert_eq!(verdict(&silent, &scheduled), TipVerdict::Confirm);
        assert_eq!(verdict(&tip(OofTip::Unknown), &off), TipVerdict::Confirm);
        let mut refused = tip(OofTip::Replying { window: None });
        refused.status.code = ews::response_code::ResponseCode::ErrorMailRecipientNotFound;
        refused.status.class = ews::response::ResponseClass::Error;
        assert_eq!(verdict(&refused, &off), TipVerdict::Confirm);
    }

    #[tokio::test(start_paused = true)]
    async fn a_sweep_visits_everyone_once_per_period_in_full_batches_at_even_intervals() {
        let members: BTreeSet<Mailbox> = (0..1000).map(mailbox).collect();
        let period = Duration::from_secs(300);
        let mut pacer = Pacer::default();
        let start = Instant::now();
        let (first, mut next) = pacer.step(start, &members, period, 50);
        assert!(first.is_empty(), "the start-up read covered everyone");
        assert_eq!(
            next - start,
            Duration::from_secs(15),
            "20 steps of 50 in 300 s"
        );
        let mut seen = Vec::new();
        while next < start + period + Duration::from_secs(1) {
            tokio::time::advance(next - Instant::now()).await;
            let (due, at) = pacer.step(Instant::now(), &members, period, 50);
            assert_eq!(due.len(), 50);
            seen.extend(due);
            next = at;
        }
        assert_eq!(seen.len(), 1000, "one full period");
        let distinct: BTreeSet<&Mailbox> = seen.iter().collect();
        assert_eq!(distinct.len(), 1000, "each mailbox once");
        // Many mailboxes: steps no closer than MIN_STEP, more per step.
        let (step, per) = Pacer::plan(1_000_000, period, 50);
        assert_eq!(step, MIN_STEP);
        assert!((per - 333.33).abs() < 0.01, "{per}");
        // One by one (batch 1) over a small gateway.
        assert_eq!(Pacer::plan(10, period, 1), (Duration::from_secs(30), 1.0));
        // A fraction per step adds up: 10,000 over 240 s is 4.17 per 100 ms step,
        // 41.7 a second, not 5 per step.
        let members: BTreeSet<Mailbox> = (0..10_000).map(mailbox).collect();
        let mut pacer = Pacer::default();
        let period = Duration::from_secs(240);
        let (_, mut next) = pacer.step(Instant::now(), &members, period, 1);
        let started = Instant::now();
        let mut taken = 0;
        while Instant::now() < started + Duration::from_secs(24) {
            tokio::time::advance(next - Instant::now()).await;
            let (due, at) = pacer.step(Instant::now(), &members, period, 1);
            taken += due.len();
            next = at;
        }
        assert!(
            (999..=1001).contains(&taken),
            "{taken} in a tenth of the period"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_sweep_wraps_around() {
        let members: BTreeSet<Mailbox> = (0..3).map(mailbox).collect();
        let mut pacer = Pacer::default();
        let period = Duration::from_secs(3);
        let (_, mut next) = pacer.step(Instant::now(), &members, period, 2);
        let mut seen = Vec::new();
        for _ in 0..3 {
            tokio::time::advance(next - Instant::now()).await;
            let (due, at) = pacer.step(Instant::now(), &members, period, 2);
            seen.extend(due);
            next = at;
        }
        assert_eq!(seen.len(), 6);
        assert_eq!(seen[..3], seen[3..]);
    }
}

//! The reads the refresh side sends, each once: GetUserAvailability for calendars,
//! GetMailTips and GetUserOofSettings for automatic replies, GetServiceConfiguration to
//! learn which of those to use. Each turns the server's answer into what the
//! [state machine](super::state) is told ([`CalendarAnswer`], [`TipsAnswer`],
//! [`OofAnswer`], [`ProbeAnswer`]); the state machine alone decides what is retried
//! and when. Each request also tells the gateway what it showed of the server and counts
//! in the request metrics.

use std::time::Duration;

use jiff::Timestamp;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::state::{
    AutoReplySource, CalendarAnswer, Failure, OofAnswer, ProbeAnswer, Queued, Read, TipsAnswer,
};
use super::tips::{not_served, seconds, verdict};
use crate::engine::backoff::Backoff;
use crate::engine::gateway::Gateway;
use crate::engine::metrics;
use crate::presence::clock::Clock;
use crate::presence::timeline::{AutoReply, CalendarState, Interval, Timeline};
use crate::presence::updates::Updates;
use common::mailbox::Mailbox;
use ews::error::{Disposition, EwsError};
use ews::ops::get_mail_tips;
use ews::ops::get_service_configuration;
use ews::ops::get_user_availability::{self, BusyType};
use ews::ops::get_user_oof_settings::{self, OofState};
use ews::soap::{RequestHeader, envelope};
use ews::stream::Response;
use ews::transport::{Lane, Route};
use ews::types::EwsDateTime;

/// How far back a fetched timeline reaches.
const LOOKBACK: i64 = 3600;
/// Attempts of the GetServiceConfiguration question before reading one by one.
const PROBE_ATTEMPTS: u32 = 3;
/// First wait before asking GetServiceConfiguration again after a transient failure.
const PROBE_RETRY_MIN: Duration = Duration::from_millis(200);
/// Longest such wait.
const PROBE_RETRY_MAX: Duration = Duration::from_secs(5);

/// Sends one read, once: the answer with when the request that got it was sent (by
/// `clock`), or the error. What the server asked to wait comes back in the error.
async fn send_read(
    gateway: &Gateway,
    clock: Clock,
    operation: &'static str,
    xml: &str,
    route: &Route<'_>,
) -> Result<(Response, Timestamp), EwsError> {
    let started = Instant::now();
    let sent_at = clock.now();
    match gateway.call(xml.to_owned(), route, Lane::Normal).await {
        Ok(answer) => {
            metrics::ews_request(&gateway.config.name, operation, "ok", started.elapsed());
            gateway.answered(answer.envelope.server_version.as_ref());
            Ok((answer.envelope.response, sent_at))
        }
        Err(error) => {
            let outcome = metrics::failure_outcome(&error);
            metrics::ews_request(&gateway.config.name, operation, outcome, started.elapsed());
            gateway.failed(&error);
            if let Disposition::Throttled(wait) = error.disposition() {
                metrics::throttled(&gateway.config.name, wait);
            }
            Err(error)
        }
    }
}

/// Why an answer to `read` is of no use (another operation's answer, or a failure),
/// and what the server asked us to wait, if it did.
fn unusable(read: Read, answer: Result<Response, EwsError>) -> Failure {
    match answer {
        Ok(other) => Failure::without_wait(format!(
            "unexpected {} answer to {}",
            other.operation(),
            read.operation()
        )),
        Err(e) => Failure {
            problem: format!("{} failed: {e}", read.operation()),
            server_wait: match e.disposition() {
                Disposition::Throttled(wait) => Some(wait),
                _ => None,
            },
        },
    }
}

fn state_of(busy: BusyType) -> CalendarState {
    match busy {
        BusyType::Free => CalendarState::Free,
        BusyType::Tentative => CalendarState::Tentative,
        BusyType::Busy => CalendarState::Busy,
        BusyType::Oof => CalendarState::Oof,
        BusyType::WorkingElsewhere => CalendarState::WorkingElsewhere,
        BusyType::NoData => CalendarState::NoData,
    }
}

/// Reads the calendars of `batch` with one GetUserAvailability over
/// `[now - 1 h, now + horizon]`.
async fn calendar(
    gateway: &Gateway,
    clock: Clock,
    horizon: Duration,
    batch: &[Queued],
) -> CalendarAnswer {
    let mailboxes: Vec<Mailbox> = batch.iter().map(|q| q.mailbox.clone()).collect();
    let now = clock.now();
    let from = now.as_second() - LOOKBACK;
    let to = now
        .as_second()
        .saturating_add(i64::try_from(horizon.as_secs()).unwrap_or(i64::MAX));
    let failed = |problem: String| CalendarAnswer::Failed(Failure::without_wait(problem));
    let body = match (Timestamp::from_second(from), Timestamp::from_second(to)) {
        (Ok(start), Ok(end)) => match get_user_availability::body(&mailboxes, start, end) {
            Ok(body) => body,
            Err(e) => return failed(format!("cannot write GetUserAvailability: {e}")),
        },
        _ => return failed(format!("the window {from}..{to} is out of range")),
    };
    let header = RequestHeader {
        server_version: gateway.config.server_version,
        impersonate: None,
    };
    let xml = envelope(&header, &body);
    metrics::refresh_batch(mailboxes.len());
    let answer = send_read(
        gateway,
        clock,
        "GetUserAvailability",
        &xml,
        &Route::default(),
    )
    .await;
    match answer {
        Ok((Response::GetUserAvailability(r), read_at)) => CalendarAnswer::Read {
            results: r
                .mailboxes
                .into_iter()
                .map(|result| {
                    if !result.status.code.is_success() {
                        return Err(result.status.code);
                    }
                    let intervals = result.events.iter().filter_map(|e| {
                        Some(Interval {
                            start: e.start.to_timestamp_assuming_utc()?.as_second(),
                            end: e.end.to_timestamp_assuming_utc()?.as_second(),
                            state: state_of(e.busy_type),
                        })
                    });
                    Ok(Timeline::new(from, to, intervals))
                })
                .collect(),
            read_at,
        },
        other => CalendarAnswer::Failed(unusable(Read::Calendar, other.map(|(r, _)| r))),
    }
}

/// Reads the tips of `mailboxes` with one GetMailTips; each is judged against what
/// `updates` knew of the mailbox.
async fn tips(
    gateway: &Gateway,
    clock: Clock,
    updates: &Updates,
    mailboxes: &[Mailbox],
) -> TipsAnswer {
    let Some(first) = mailboxes.first() else {
        return TipsAnswer::Read {
            verdicts: Vec::new(),
            read_at: clock.now(),
        };
    };
    let body = match get_mail_tips::body(first, mailboxes) {
        Ok(body) => body,
        Err(e) => {
            return TipsAnswer::Failed(Failure::without_wait(format!(
                "cannot write GetMailTips: {e}"
            )));
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
    match send_read(gateway, clock, "GetMailTips", &xml, &route).await {
        Ok((Response::GetMailTips(r), read_at)) => match r.status.into_result() {
            Ok(()) => TipsAnswer::Read {
                // One per recipient answered (the state machine checks the count).
                verdicts: r
                    .recipients
                    .iter()
                    .enumerate()
                    .map(|(i, tip)| {
                        let known = mailboxes.get(i).and_then(|m| updates.auto_reply(m));
                        verdict(tip, &known.unwrap_or_default())
                    })
                    .collect(),
                read_at,
            },
            Err(e) => match not_served(&e) {
                Some(why) => TipsAnswer::NotServed(why),
                None => TipsAnswer::Failed(unusable(Read::MailTips, Err(e))),
            },
        },
        Err(e) => match not_served(&e) {
            Some(why) => TipsAnswer::NotServed(why),
            None => TipsAnswer::Failed(unusable(Read::MailTips, Err(e))),
        },
        Ok((other, _)) => TipsAnswer::Failed(unusable(Read::MailTips, Ok(other))),
    }
}

/// Reads one mailbox's settings with GetUserOofSettings.
async fn oof(gateway: &Gateway, clock: Clock, mailbox: &Mailbox) -> OofAnswer {
    let header = RequestHeader {
        server_version: gateway.config.server_version,
        impersonate: gateway.config.impersonation.then_some(mailbox),
    };
    let xml = envelope(&header, &get_user_oof_settings::body(mailbox));
    let route = Route {
        anchor: Some(mailbox),
        cookie: None,
    };
    match send_read(gateway, clock, "GetUserOofSettings", &xml, &route).await {
        Ok((Response::GetUserOofSettings(r), read_at)) => {
            match (r.status.into_result(), r.settings) {
                (Ok(()), Some(settings)) => {
                    let secs = |t: Option<EwsDateTime>| t.as_ref().and_then(seconds);
                    let auto_reply = match settings.state {
                        OofState::Disabled => AutoReply::Off,
                        OofState::Enabled => AutoReply::On,
                        OofState::Scheduled => match (secs(settings.start), secs(settings.end)) {
                            (Some(start), Some(end)) => AutoReply::Scheduled { start, end },
                            _ => AutoReply::Off,
                        },
                    };
                    OofAnswer::Read {
                        auto_reply,
                        read_at,
                    }
                }
                (Err(e), _) => OofAnswer::Failed(unusable(Read::AutoReplies, Err(e))),
                (Ok(()), None) => OofAnswer::Failed(Failure::without_wait(
                    "GetUserOofSettings answered NoError without OofSettings".to_owned(),
                )),
            }
        }
        other => OofAnswer::Failed(unusable(Read::AutoReplies, other.map(|(r, _)| r))),
    }
}

/// Asks GetServiceConfiguration whether MailTips are on and their recipient limit, as
/// `anchor`.
async fn probe(
    gateway: &Gateway,
    clock: Clock,
    anchor: Option<&Mailbox>,
    stop: &CancellationToken,
) -> ProbeAnswer {
    let header = RequestHeader {
        server_version: gateway.config.server_version,
        impersonate: anchor.filter(|_| gateway.config.impersonation),
    };
    let xml = envelope(&header, &get_service_configuration::body());
    let route = Route {
        anchor,
        cookie: None,
    };
    let one_by_one = |why: String| ProbeAnswer::Decided(AutoReplySource::OneByOne { why });
    match probe_with_retries(gateway, clock, stop, &xml, &route).await {
        Ok(Response::GetServiceConfiguration(r)) => match (r.status.into_result(), r.mail_tips) {
            (Ok(()), Some(c)) if c.enabled && c.max_recipients > 0 => {
                ProbeAnswer::Decided(AutoReplySource::MailTips {
                    batch: (c.max_recipients as usize).min(get_mail_tips::MAX_RECIPIENTS),
                })
            }
            (Ok(()), Some(_)) => one_by_one("the server says MailTips are off".to_owned()),
            (Ok(()), None) => one_by_one("the server sent no MailTips configuration".to_owned()),
            (Err(e), _) => one_by_one(format!("GetServiceConfiguration: {e}")),
        },
        Ok(Response::Fault(f)) => one_by_one(format!("GetServiceConfiguration: {}", f.status.code)),
        Ok(other) => one_by_one(format!(
            "unexpected {} answer to GetServiceConfiguration",
            other.operation()
        )),
        Err(e) => ProbeAnswer::Unanswered(e.to_string()),
    }
}

/// Asks GetServiceConfiguration, retrying a transient failure a few times (waiting
/// what the server asks when it throttles): unlike a read, nothing queues the question
/// again soon, and a failure leaves the gateway reading one mailbox at a time until it
/// is asked again.
async fn probe_with_retries(
    gateway: &Gateway,
    clock: Clock,
    stop: &CancellationToken,
    xml: &str,
    route: &Route<'_>,
) -> Result<Response, EwsError> {
    let mut backoff =
        Backoff::new(PROBE_RETRY_MIN, PROBE_RETRY_MAX).unwrap_or_else(|e| unreachable!("{e}"));
    let mut attempt = 0;
    loop {
        attempt += 1;
        let error = match send_read(gateway, clock, "GetServiceConfiguration", xml, route).await {
            Ok((answer, _)) => return Ok(answer),
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

impl super::port::ReadPort for Gateway {
    fn gateway_name(&self) -> &str {
        &self.config.name
    }

    fn calendar(
        self: std::sync::Arc<Self>,
        clock: Clock,
        horizon: Duration,
        batch: Vec<Queued>,
    ) -> super::port::Pending<CalendarAnswer> {
        Box::pin(async move { calendar(&self, clock, horizon, &batch).await })
    }

    fn tips(
        self: std::sync::Arc<Self>,
        clock: Clock,
        shared: std::sync::Arc<crate::engine::Shared>,
        mailboxes: Vec<Mailbox>,
    ) -> super::port::Pending<TipsAnswer> {
        Box::pin(async move { tips(&self, clock, &shared.updates, &mailboxes).await })
    }

    fn oof(
        self: std::sync::Arc<Self>,
        clock: Clock,
        mailbox: Mailbox,
    ) -> super::port::Pending<OofAnswer> {
        Box::pin(async move { oof(&self, clock, &mailbox).await })
    }

    fn probe(
        self: std::sync::Arc<Self>,
        clock: Clock,
        anchor: Option<Mailbox>,
        stop: CancellationToken,
    ) -> super::port::Pending<ProbeAnswer> {
        Box::pin(async move { probe(&self, clock, anchor.as_ref(), &stop).await })
    }
}

//! The refresh side's reads over Graph ([`ReadPort`]): calendars with
//! `calendar/getSchedule` (up to 20 mailboxes, asked as the first of them), automatic
//! replies with `mailboxSettings/automaticRepliesSetting`, 20 per JSON `$batch` (exact
//! settings: nothing to confirm), or one at a time for a mailbox a batch could not
//! answer. Each is sent once; the refresh queue retries, after `Retry-After` when
//! Graph throttled.

use std::sync::Arc;
use std::time::Duration;

use hyper::Method;
use tokio_util::sync::CancellationToken;

use super::error::GraphError;
use super::gateway::GraphGateway;
use crate::engine::Shared;
use crate::engine::refresh::port::{Pending, ReadPort};
use crate::engine::refresh::state::{
    AutoReplySource, CalendarAnswer, Failure, OofAnswer, ProbeAnswer, Queued, TipsAnswer,
};
use crate::engine::refresh::tips::TipVerdict;
use crate::presence::clock::Clock;
use crate::presence::timeline::{AutoReply, CalendarState, Interval, Timeline};
use common::mailbox::Mailbox;
use common::percent::encode;
use ews::response_code::ResponseCode;
use graph::batch::{BatchAnswer, BatchRequest, MAX_REQUESTS};
use graph::schedule::{
    FreeBusyStatus, MAX_WINDOW_DAYS, ScheduleAnswer, ScheduleRequest, VIEW_INTERVAL_MINUTES,
};
use graph::settings::{AutomaticRepliesSetting, Replies};
use graph::time::DateTimeTimeZone;

/// How far back a read timeline reaches (as on EWS).
const LOOKBACK: i64 = 3600;

/// How the Graph gateway reads automatic replies.
pub fn auto_reply_source() -> AutoReplySource {
    AutoReplySource::Exact {
        how: "mailboxSettings/automaticRepliesSetting through $batch",
        batch: MAX_REQUESTS,
    }
}

fn failure(what: &str, e: GraphError) -> Failure {
    Failure {
        server_wait: e.server_wait(),
        problem: format!("{what} failed: {e}"),
    }
}

fn state_of(status: FreeBusyStatus) -> CalendarState {
    match status {
        FreeBusyStatus::Free => CalendarState::Free,
        FreeBusyStatus::Tentative => CalendarState::Tentative,
        FreeBusyStatus::Busy => CalendarState::Busy,
        FreeBusyStatus::Oof => CalendarState::Oof,
        FreeBusyStatus::WorkingElsewhere => CalendarState::WorkingElsewhere,
        FreeBusyStatus::Unknown => CalendarState::NoData,
    }
}

fn auto_reply_of(setting: &AutomaticRepliesSetting) -> Result<AutoReply, String> {
    Ok(match setting.replies()? {
        Replies::Off => AutoReply::Off,
        Replies::On => AutoReply::On,
        Replies::Scheduled { start, end } => AutoReply::Scheduled { start, end },
    })
}

/// The path of `mailbox`'s automatic-reply settings.
fn settings_path(mailbox: &Mailbox) -> String {
    format!(
        "/users/{}/mailboxSettings/automaticRepliesSetting",
        encode(mailbox.as_str())
    )
}

async fn calendar(
    gateway: &GraphGateway,
    clock: Clock,
    horizon: Duration,
    batch: &[Queued],
) -> CalendarAnswer {
    let now = clock.now().as_second();
    let from = now - LOOKBACK;
    // Graph's window must be shorter than 62 days.
    let longest = MAX_WINDOW_DAYS * 86_400 - 3600;
    let to = now
        .saturating_add(i64::try_from(horizon.as_secs()).unwrap_or(i64::MAX))
        .min(from + longest);
    let (Ok(start), Ok(end)) = (
        jiff::Timestamp::from_second(from),
        jiff::Timestamp::from_second(to),
    ) else {
        return CalendarAnswer::Failed(Failure::without_wait(format!(
            "the window {from}..{to} is out of range"
        )));
    };
    let Some(anchor) = batch.first().map(|q| &q.mailbox) else {
        return CalendarAnswer::Read {
            results: Vec::new(),
            read_at: clock.now(),
        };
    };
    let request = ScheduleRequest {
        schedules: batch
            .iter()
            .map(|q| q.mailbox.as_str().to_owned())
            .collect(),
        start_time: DateTimeTimeZone::utc(start),
        end_time: DateTimeTimeZone::utc(end),
        availability_view_interval: VIEW_INTERVAL_MINUTES,
    };
    crate::engine::metrics::refresh_batch(batch.len());
    let read_at = clock.now();
    let path = format!("/users/{}/calendar/getSchedule", encode(anchor.as_str()));
    let answer = match gateway
        .call(
            "getSchedule",
            Method::POST,
            &path,
            Some(graph::encode(&request)),
            &[anchor],
        )
        .await
    {
        Ok(answer) => answer,
        Err(e) => return CalendarAnswer::Failed(failure("getSchedule", e)),
    };
    let schedule: ScheduleAnswer = match graph::decode("getSchedule answer", &answer.body) {
        Ok(s) => s,
        Err(e) => return CalendarAnswer::Failed(Failure::without_wait(e.to_string())),
    };
    let mut results = Vec::with_capacity(batch.len());
    for queued in batch {
        let Some(info) = schedule
            .value
            .iter()
            .find(|i| i.schedule_id.eq_ignore_ascii_case(queued.mailbox.as_str()))
        else {
            return CalendarAnswer::Failed(Failure::without_wait(format!(
                "getSchedule answered nothing for {}",
                queued.mailbox
            )));
        };
        if let Some(error) = &info.error {
            results.push(Err(ResponseCode::parse(
                if error.response_code.is_empty() {
                    "ErrorFreeBusyGenerationFailed"
                } else {
                    &error.response_code
                },
            )));
            continue;
        }
        let mut intervals = Vec::with_capacity(info.schedule_items.len());
        for item in &info.schedule_items {
            match (item.start.instant(), item.end.instant()) {
                (Ok(s), Ok(e)) => intervals.push(Interval {
                    start: s.as_second(),
                    end: e.as_second(),
                    state: state_of(item.status),
                }),
                (Err(why), _) | (_, Err(why)) => {
                    return CalendarAnswer::Failed(Failure::without_wait(format!(
                        "getSchedule answered an item of {} that cannot be read: {why}",
                        queued.mailbox
                    )));
                }
            }
        }
        results.push(Ok(Timeline::new(from, to, intervals)));
    }
    CalendarAnswer::Read { results, read_at }
}

async fn batch_of_settings(
    gateway: &GraphGateway,
    clock: Clock,
    mailboxes: &[Mailbox],
) -> TipsAnswer {
    let read_at = clock.now();
    let request = BatchRequest {
        requests: mailboxes
            .iter()
            .enumerate()
            .map(|(i, m)| graph::batch::get(i, settings_path(m)))
            .collect(),
    };
    let touched: Vec<&Mailbox> = mailboxes.iter().collect();
    let answer = match gateway
        .call(
            "$batch",
            Method::POST,
            "/$batch",
            Some(graph::encode(&request)),
            &touched,
        )
        .await
    {
        Ok(answer) => answer,
        Err(e) => return TipsAnswer::Failed(failure("automaticRepliesSetting $batch", e)),
    };
    let batch: BatchAnswer = match graph::decode("$batch answer", &answer.body) {
        Ok(b) => b,
        Err(e) => return TipsAnswer::Failed(Failure::without_wait(e.to_string())),
    };
    let mut verdicts = vec![TipVerdict::Confirm; mailboxes.len()];
    let mut throttled: Option<Duration> = None;
    for response in &batch.responses {
        let Some(i) = response
            .id
            .parse::<usize>()
            .ok()
            .filter(|i| *i < mailboxes.len())
        else {
            continue;
        };
        match response.status {
            200 => {
                let setting = response
                    .body
                    .clone()
                    .ok_or_else(|| "no body".to_owned())
                    .and_then(|b| {
                        serde_json::from_value::<AutomaticRepliesSetting>(b)
                            .map_err(|e| e.to_string())
                    })
                    .and_then(|s| auto_reply_of(&s));
                // One that cannot be read is read again on its own.
                if let Ok(auto_reply) = setting {
                    verdicts[i] = TipVerdict::Apply(auto_reply);
                }
            }
            429 | 503 => {
                let wait = response
                    .header("Retry-After")
                    .and_then(|v| v.trim().parse().ok())
                    .map_or(super::gateway::DEFAULT_THROTTLE_WAIT, Duration::from_secs);
                super::metrics::throttled(gateway.name(), wait);
                throttled = Some(throttled.map_or(wait, |w| w.max(wait)));
            }
            _ => {}
        }
    }
    if let Some(wait) = throttled {
        return TipsAnswer::Failed(Failure {
            problem: "automaticRepliesSetting $batch: Graph throttled requests of the batch"
                .to_owned(),
            server_wait: Some(wait),
        });
    }
    TipsAnswer::Read { verdicts, read_at }
}

async fn one_setting(gateway: &GraphGateway, clock: Clock, mailbox: &Mailbox) -> OofAnswer {
    let read_at = clock.now();
    let answer = match gateway
        .call(
            "automaticRepliesSetting",
            Method::GET,
            &settings_path(mailbox),
            None,
            &[mailbox],
        )
        .await
    {
        Ok(a) => a,
        Err(e) => return OofAnswer::Failed(failure("automaticRepliesSetting", e)),
    };
    match graph::decode::<AutomaticRepliesSetting>("automaticRepliesSetting", &answer.body)
        .map_err(|e| e.to_string())
        .and_then(|s| auto_reply_of(&s))
    {
        Ok(auto_reply) => OofAnswer::Read {
            auto_reply,
            read_at,
        },
        Err(why) => OofAnswer::Failed(Failure::without_wait(format!(
            "automaticRepliesSetting of {mailbox} cannot be read: {why}"
        ))),
    }
}

impl ReadPort for GraphGateway {
    fn gateway_name(&self) -> &str {
        self.name()
    }

    fn calendar(
        self: Arc<Self>,
        clock: Clock,
        horizon: Duration,
        batch: Vec<Queued>,
    ) -> Pending<CalendarAnswer> {
        Box::pin(async move { calendar(&self, clock, horizon, &batch).await })
    }

    fn tips(
        self: Arc<Self>,
        clock: Clock,
        _shared: Arc<Shared>,
        mailboxes: Vec<Mailbox>,
    ) -> Pending<TipsAnswer> {
        Box::pin(async move { batch_of_settings(&self, clock, &mailboxes).await })
    }

    fn oof(self: Arc<Self>, clock: Clock, mailbox: Mailbox) -> Pending<OofAnswer> {
        Box::pin(async move { one_setting(&self, clock, &mailbox).await })
    }

    /// Never asked: the source is decided from the start ([`auto_reply_source`]).
    fn probe(
        self: Arc<Self>,
        _clock: Clock,
        _anchor: Option<Mailbox>,
        _stop: CancellationToken,
    ) -> Pending<ProbeAnswer> {
        Box::pin(async { ProbeAnswer::Decided(auto_reply_source()) })
    }
}

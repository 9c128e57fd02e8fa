//! The refresh queue of one gateway: notifications mark mailboxes dirty; once a
//! mailbox has been quiet for `debounce` (or dirty for five times that, so a mailbox
//! that never stops changing is still refreshed) it is fetched, together with the
//! others due, with
//! GetUserAvailability (at most 100 per request, a few requests at once) over
//! `[now - 1 h, now + horizon]`, and their timelines replaced. Automatic replies are
//! read with GetUserOofSettings at start, after a resubscription and every
//! `oof_refresh`. Every mailbox is refetched as the horizon rolls.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::Timestamp;
use tokio::sync::{Notify, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::util::lock;

use super::Shared;
use super::backoff::Backoff;
use super::gateway::Gateway;
use crate::api::metrics;
use crate::ews::error::{Disposition, EwsError};
use crate::ews::ops::get_user_availability::{self, AvailabilityResponse, BusyType, MAX_MAILBOXES};
use crate::ews::ops::get_user_oof_settings::{self, OofState};
use crate::ews::soap::{RequestHeader, envelope};
use crate::ews::stream::Response;
use crate::ews::transport::Route;
use crate::ews::types::Mailbox;
use crate::presence::timeline::{AutoReply, CalendarState, Interval, Timeline};

/// GetUserAvailability requests in flight per gateway.
const AVAILABILITY_CONCURRENCY: usize = 4;
/// GetUserOofSettings requests in flight per gateway.
const OOF_CONCURRENCY: usize = 8;
/// Attempts per batch before its mailboxes are marked failing.
const MAX_ATTEMPTS: u32 = 6;
/// How far back a fetched timeline reaches.
const LOOKBACK: i64 = 3600;

/// A mailbox may wait at most this many debounce periods while events keep coming.
const MAX_DEBOUNCES: u32 = 5;

/// When a dirty mailbox first and last saw an event.
#[derive(Debug, Clone, Copy)]
struct Dirty {
    first: Instant,
    last: Instant,
}

impl Dirty {
    fn due(&self, debounce: Duration) -> Instant {
        (self.last + debounce).min(self.first + debounce * MAX_DEBOUNCES)
    }
}

/// Mailboxes waiting for a refresh.
#[derive(Debug)]
pub struct RefreshQueue {
    dirty: Mutex<HashMap<Mailbox, Dirty>>,
    oof_due: Mutex<HashSet<Mailbox>>,
    /// The gateway's mailboxes (for periodic refreshes).
    members: Mutex<BTreeSet<Mailbox>>,
    wake: Notify,
}

impl Default for RefreshQueue {
    fn default() -> Self {
        RefreshQueue {
            dirty: Mutex::new(HashMap::new()),
            oof_due: Mutex::new(HashSet::new()),
            members: Mutex::new(BTreeSet::new()),
            wake: Notify::new(),
        }
    }
}

impl RefreshQueue {
    /// A notification arrived for `mailbox`: refresh it after the quiet period.
    pub fn mark(&self, mailbox: &Mailbox) {
        let now = Instant::now();
        lock(&self.dirty)
            .entry(mailbox.clone())
            .and_modify(|d| d.last = now)
            .or_insert(Dirty {
                first: now,
                last: now,
            });
        self.wake.notify_one();
    }

    /// Takes the mailboxes due by `now`; returns them with when they became dirty,
    /// and when the next one falls due.
    fn take_due(
        &self,
        now: Instant,
        debounce: Duration,
    ) -> (Vec<(Mailbox, Instant)>, Option<Instant>) {
        let mut dirty = lock(&self.dirty);
        let mut due = Vec::new();
        let mut next: Option<Instant> = None;
        dirty.retain(|mailbox, d| {
            let at = d.due(debounce);
            if at <= now {
                due.push((mailbox.clone(), d.first));
                false
            } else {
                next = Some(next.map_or(at, |n| n.min(at)));
                true
            }
        });
        (due, next)
    }

    /// Refresh `mailbox` fully: calendar and automatic replies (start, resubscribe).
    pub fn mark_full(&self, mailbox: &Mailbox) {
        lock(&self.oof_due).insert(mailbox.clone());
        self.mark(mailbox);
    }

    /// Sets the gateway's mailboxes.
    pub fn add_member(&self, mailbox: &Mailbox) {
        lock(&self.members).insert(mailbox.clone());
    }

    /// Forgets a mailbox.
    pub fn remove_member(&self, mailbox: &Mailbox) {
        lock(&self.members).remove(mailbox);
        lock(&self.dirty).remove(mailbox);
        lock(&self.oof_due).remove(mailbox);
    }

    fn mark_every_member(&self, oof: bool) {
        let members: Vec<Mailbox> = lock(&self.members).iter().cloned().collect();
        let now = Instant::now();
        if oof {
            lock(&self.oof_due).extend(members);
        } else {
            let mut dirty = lock(&self.dirty);
            for m in members {
                dirty.entry(m).or_insert(Dirty {
                    first: now,
                    last: now,
                });
            }
        }
        self.wake.notify_one();
    }
}

/// Runs the gateway's refreshes until `stop`.
pub async fn run(
    gateway: Arc<Gateway>,
    queue: Arc<RefreshQueue>,
    shared: Arc<Shared>,
    stop: CancellationToken,
) {
    let presence = shared.presence.clone();
    let mut oof_tick = tokio::time::interval(presence.oof_refresh);
    let roll = (presence.horizon / 4).max(Duration::from_secs(60));
    let mut roll_tick = tokio::time::interval_at(Instant::now() + roll, roll);
    oof_tick.tick().await;
    let availability = Arc::new(Semaphore::new(AVAILABILITY_CONCURRENCY));
    let oof = Arc::new(Semaphore::new(OOF_CONCURRENCY));
    let mut work = JoinSet::new();
    let mut next_due: Option<Instant> = None;
    loop {
        let wake_at = next_due.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = queue.wake.notified() => {}
            _ = tokio::time::sleep_until(wake_at) => {}
            _ = oof_tick.tick() => queue.mark_every_member(true),
            _ = roll_tick.tick() => queue.mark_every_member(false),
            Some(_) = work.join_next(), if !work.is_empty() => continue,
        }
        let (due, next) = queue.take_due(Instant::now(), presence.debounce);
        next_due = next;
        for batch in due.chunks(MAX_MAILBOXES) {
            let Ok(permit) = availability.clone().acquire_owned().await else {
                break;
            };
            let (gateway, shared, stop, batch) = (
                gateway.clone(),
                shared.clone(),
                stop.clone(),
                batch.to_vec(),
            );
            work.spawn(async move {
                fetch_availability(&gateway, &shared, &stop, batch).await;
                drop(permit);
            });
            // Reap finished work as we go: at start-up this loop spawns one task per
            // mailbox, and unreaped tasks would all stay allocated until it ends.
            while work.try_join_next().is_some() {}
        }
        let oof_due: Vec<Mailbox> = lock(&queue.oof_due).drain().collect();
        for mailbox in oof_due {
            let Ok(permit) = oof.clone().acquire_owned().await else {
                break;
            };
            let (gateway, shared, stop) = (gateway.clone(), shared.clone(), stop.clone());
            work.spawn(async move {
                fetch_oof(&gateway, &shared, &stop, mailbox).await;
                drop(permit);
            });
            while work.try_join_next().is_some() {}
        }
    }
    work.shutdown().await;
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

/// Sends one request, retrying as its errors' dispositions say (at most
/// `MAX_ATTEMPTS`); the last error when it finally failed.
async fn call_with_retries(
    gateway: &Gateway,
    stop: &CancellationToken,
    operation: &'static str,
    xml: &str,
    route: &Route<'_>,
) -> Result<Response, EwsError> {
    let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(30));
    let mut attempt = 0;
    loop {
        attempt += 1;
        let started = Instant::now();
        let error = match gateway.transport.call(xml.to_owned(), route).await {
            Ok(answer) => {
                metrics::ews_request(&gateway.config.name, operation, "ok", started.elapsed());
                gateway.answered(answer.envelope.server_version.as_ref());
                return Ok(answer.envelope.response);
            }
            Err(e) => e,
        };
        metrics::ews_request(&gateway.config.name, operation, "error", started.elapsed());
        gateway.failed(&error);
        let wait = match error.disposition() {
            Disposition::Throttled(wait) => {
                metrics::throttled(&gateway.config.name, wait);
                wait
            }
            Disposition::Retry if attempt < MAX_ATTEMPTS => backoff.next_delay(),
            _ => return Err(error),
        };
        if attempt >= MAX_ATTEMPTS {
            return Err(error);
        }
        tokio::select! {
            _ = stop.cancelled() => return Err(error),
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

async fn fetch_availability(
    gateway: &Gateway,
    shared: &Shared,
    stop: &CancellationToken,
    batch: Vec<(Mailbox, Instant)>,
) {
    let now = Timestamp::now();
    let from = now.as_second() - LOOKBACK;
    let to = now.as_second() + shared.presence.horizon.as_secs() as i64;
    let mailboxes: Vec<Mailbox> = batch.iter().map(|(m, _)| m.clone()).collect();
    let (Ok(start), Ok(end)) = (
        jiff::Timestamp::from_second(from),
        jiff::Timestamp::from_second(to),
    ) else {
        return;
    };
    let Ok(body) = get_user_availability::body(&mailboxes, start, end) else {
        return;
    };
    let header = RequestHeader {
        server_version: gateway.config.server_version,
        impersonate: None,
    };
    let xml = envelope(&header, &body);
    metrics::refresh_batch(mailboxes.len());
    let problem = match call_with_retries(
        gateway,
        stop,
        "GetUserAvailability",
        &xml,
        &Route::default(),
    )
    .await
    {
        Ok(Response::GetUserAvailability(r)) if r.mailboxes.len() == mailboxes.len() => {
            apply(shared, &batch, r, from, to, now);
            return;
        }
        Ok(Response::GetUserAvailability(r)) => format!(
            "GetUserAvailability answered {} mailboxes for {} asked",
            r.mailboxes.len(),
            mailboxes.len()
        ),
        Ok(other) => format!(
            "unexpected {} answer to GetUserAvailability",
            other.operation()
        ),
        Err(e) => format!("GetUserAvailability failed: {e}"),
    };
    let problem: Arc<str> = problem.into();
    for m in &mailboxes {
        shared.cache.set_problem(m, Some(problem.clone()));
        shared.scheduler.refresh(&shared.cache, m);
    }
}

fn apply(
    shared: &Shared,
    batch: &[(Mailbox, Instant)],
    r: AvailabilityResponse,
    from: i64,
    to: i64,
    now: Timestamp,
) {
    for ((mailbox, dirty_since), result) in batch.iter().zip(r.mailboxes) {
        if result.status.code.is_success() {
            let intervals = result.events.iter().filter_map(|e| {
                Some(Interval {
                    start: e.start.to_timestamp_assuming_utc()?.as_second(),
                    end: e.end.to_timestamp_assuming_utc()?.as_second(),
                    state: state_of(e.busy_type),
                })
            });
            shared
                .cache
                .set_timeline(mailbox, Timeline::new(from, to, intervals), now);
            metrics::event_to_state(dirty_since.elapsed());
        } else {
            let problem = format!("GetUserAvailability: {}", result.status.code);
            shared.cache.set_problem(mailbox, Some(problem.into()));
        }
        shared.scheduler.refresh(&shared.cache, mailbox);
    }
}

async fn fetch_oof(gateway: &Gateway, shared: &Shared, stop: &CancellationToken, mailbox: Mailbox) {
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
    if let Ok(Response::GetUserOofSettings(r)) =
        call_with_retries(gateway, stop, "GetUserOofSettings", &xml, &route).await
        && let Some(settings) = r.settings
    {
        let secs = |t: Option<crate::ews::types::EwsDateTime>| {
            t.and_then(|t| t.to_timestamp_assuming_utc())
                .map(|t| t.as_second())
        };
        let auto = match settings.state {
            OofState::Disabled => AutoReply::Off,
            OofState::Enabled => AutoReply::On,
            OofState::Scheduled => match (secs(settings.start), secs(settings.end)) {
                (Some(start), Some(end)) => AutoReply::Scheduled { start, end },
                _ => AutoReply::Off,
            },
        };
        shared.cache.set_auto_reply(&mailbox, auto);
        shared.scheduler.refresh(&shared.cache, &mailbox);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mailbox(n: u32) -> Mailbox {
        Mailbox::parse(&format!("user{n}@example.test")).unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn debounce_is_per_mailbox_and_capped() {
        let queue = RefreshQueue::default();
        let debounce = Duration::from_millis(100);
        queue.mark(&mailbox(1));
        tokio::time::advance(Duration::from_millis(60)).await;
        queue.mark(&mailbox(2));
        tokio::time::advance(Duration::from_millis(50)).await;
        // user1 has been quiet for 110 ms, user2 for 50 ms.
        let (due, next) = queue.take_due(Instant::now(), debounce);
        assert_eq!(
            due.iter().map(|(m, _)| m.clone()).collect::<Vec<_>>(),
            [mailbox(1)]
        );
        assert_eq!(next, Some(Instant::now() + Duration::from_millis(50)));
        // user2 keeps changing every 50 ms: it is still refreshed after 5 debounces.
        for _ in 0..9 {
            tokio::time::advance(Duration::from_millis(50)).await;
            queue.mark(&mailbox(2));
            let (due, _) = queue.take_due(Instant::now(), debounce);
            if !due.is_empty() {
                assert_eq!(due[0].0, mailbox(2));
                return;
            }
        }
        panic!("a mailbox that never stops changing was never refreshed");
    }
}

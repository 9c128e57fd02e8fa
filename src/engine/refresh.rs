//! The refresh queue of one gateway: notifications mark mailboxes dirty. A quiet
//! mailbox (no read for a notification within the last `debounce`) is read at once
//! (leading edge); events that come while such a read is in flight or within `debounce`
//! after it was sent cause one trailing read at the end of that period, never more than
//! one per period, so a mailbox that never stops changing is still read every
//! `debounce`. Reads nobody's change asked for (the first after a subscription, the
//! horizon rolling, retries) start no quiet period: a change just after the start-up
//! read is read at once, not a second late. Due mailboxes are
//! fetched together with GetUserAvailability (at most 100 per request, a few requests at
//! once) over `[now - 1 h, now + horizon]`, and their timelines replaced. Automatic
//! replies are read with GetUserOofSettings at start, after a resubscription and every
//! `oof_refresh`. Every mailbox is refetched as the horizon rolls.
//!
//! Nothing is dropped: a mailbox whose read fails stays queued and is retried after a
//! backoff (what the server asked when it throttled us, else doubling with jitter up to
//! [`RETRY_MAX`]); meanwhile it is marked with the problem (its data is stale, see the
//! presence cache). This is the one retry layer of reads: each request is sent once
//! ([`send_read`]). A gateway's refreshes going from working to failing is logged once
//! at warn with the reason, and their recovery once at info.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::Timestamp;
use tokio::sync::{Notify, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use common::sync::lock;

use super::Shared;
use super::auto_replies::{AutoReplies, Dispatch};
use super::backoff::Backoff;
use super::dirty::DirtySet;
use super::gateway::Gateway;
use super::metrics;
use crate::presence::clock::Clock;
use crate::presence::timeline::{CalendarState, Interval, Timeline};
use crate::presence::updates::Update;
use common::mailbox::Mailbox;
use ews::error::{Disposition, EwsError};
use ews::ops::get_user_availability::{self, AvailabilityResponse, BusyType, MAX_MAILBOXES};
use ews::soap::{RequestHeader, envelope};
use ews::stream::Response;
use ews::transport::{Lane, Route};

/// GetUserAvailability requests in flight per gateway.
const AVAILABILITY_CONCURRENCY: usize = 4;
/// Automatic-reply requests in flight per gateway.
const OOF_CONCURRENCY: usize = 8;
/// `last_read` is never pruned below this many entries.
const LAST_READ_PRUNE_FLOOR: usize = 1024;
/// How far back a fetched timeline reaches.
const LOOKBACK: i64 = 3600;
/// First wait before a failed read is sent again: short, since a read is sent once and
/// a blip (a 503 without Retry-After, a reset connection) should cost little.
const RETRY_MIN: Duration = Duration::from_millis(200);
/// Longest wait before a failed mailbox is read again.
pub const RETRY_MAX: Duration = Duration::from_secs(60);

/// Which read of a mailbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Read {
    /// GetUserAvailability.
    Calendar,
    /// GetUserOofSettings.
    AutoReplies,
    /// GetMailTips.
    MailTips,
}

impl Read {
    fn operation(self) -> &'static str {
        match self {
            Read::Calendar => "GetUserAvailability",
            Read::AutoReplies => "GetUserOofSettings",
            Read::MailTips => "GetMailTips",
        }
    }
}

/// Mailboxes waiting for a refresh.
#[derive(Debug)]
pub struct RefreshQueue {
    dirty: Mutex<DirtySet>,
    /// When each mailbox's last calendar read was sent (for the trailing edge).
    last_read: Mutex<HashMap<Mailbox, Instant>>,
    /// Size of `last_read` at which its old reads are dropped next.
    prune_last_read_at: AtomicUsize,
    /// The quiet period after a read.
    debounce: Duration,
    /// Automatic-reply reads waiting.
    pub(super) auto: AutoReplies,
    /// Failed reads in a row, per mailbox and read.
    failures: Mutex<HashMap<(Mailbox, Read), u32>>,
    jitter: Mutex<Backoff>,
    /// The gateway's mailboxes (for periodic refreshes).
    members: Mutex<BTreeSet<Mailbox>>,
    /// Whether each read is failing on this gateway (for logging changes once).
    calendar_failing: AtomicBool,
    oof_failing: AtomicBool,
    tips_failing: AtomicBool,
    pub(super) clock: Clock,
    wake: Notify,
}

impl RefreshQueue {
    /// An empty queue with the quiet period `debounce`; fetched data is stamped with
    /// `clock`.
    pub fn new(clock: Clock, debounce: Duration) -> RefreshQueue {
        RefreshQueue {
            dirty: Mutex::new(DirtySet::default()),
            last_read: Mutex::new(HashMap::new()),
            prune_last_read_at: AtomicUsize::new(LAST_READ_PRUNE_FLOOR),
            debounce,
            auto: AutoReplies::default(),
            failures: Mutex::new(HashMap::new()),
            // Constant bounds that satisfy the checks.
            jitter: Mutex::new(
                Backoff::new(RETRY_MIN, RETRY_MAX).unwrap_or_else(|e| unreachable!("{e}")),
            ),
            members: Mutex::new(BTreeSet::new()),
            calendar_failing: AtomicBool::new(false),
            oof_failing: AtomicBool::new(false),
            tips_failing: AtomicBool::new(false),
            clock,
            wake: Notify::new(),
        }
    }

    /// A notification arrived for `mailbox`: read it now if it is quiet, else once at
    /// the end of the quiet period after its last read (a read already queued covers
    /// this event too).
    pub fn mark(&self, mailbox: &Mailbox) {
        let now = Instant::now();
        let quiet_from = lock(&self.last_read)
            .get(mailbox)
            .map(|sent| *sent + self.debounce)
            .filter(|at| *at > now);
        lock(&self.dirty).change(mailbox, now, quiet_from.unwrap_or(now));
        self.wake.notify_one();
    }

    /// Queues a read of `mailbox` that no change asked for, due at `at` (a read
    /// already queued keeps its time, or `at` if later).
    fn mark_background(&self, mailbox: &Mailbox, at: Instant) {
        lock(&self.dirty).background(mailbox, Instant::now(), at);
        self.wake.notify_one();
    }

    /// Takes the mailboxes due by `now`; returns them with when they became dirty,
    /// and when the next one falls due.
    fn take_due(&self, now: Instant) -> (Vec<(Mailbox, Instant)>, Option<Instant>) {
        let (taken, next) = lock(&self.dirty).take_due(now);
        if taken.iter().any(|t| t.change) {
            let mut last_read = lock(&self.last_read);
            for t in taken.iter().filter(|t| t.change) {
                last_read.insert(t.mailbox.clone(), now);
            }
            // Reads older than the quiet period no longer matter: drop them when the
            // map has doubled, so it holds the recent changes, not every mailbox ever
            // changed (amortised constant time per read).
            let prune_at = self.prune_last_read_at.load(Ordering::Relaxed);
            if last_read.len() > prune_at {
                if let Some(cutoff) = now.checked_sub(self.debounce) {
                    last_read.retain(|_, sent| *sent > cutoff);
                }
                self.prune_last_read_at.store(
                    (last_read.len() * 2).max(LAST_READ_PRUNE_FLOOR),
                    Ordering::Relaxed,
                );
            }
        }
        let due = taken.into_iter().map(|t| (t.mailbox, t.first)).collect();
        (due, next)
    }

    /// The gateway's mailboxes (held locked while used).
    pub(super) fn members_snapshot(&self) -> std::sync::MutexGuard<'_, BTreeSet<Mailbox>> {
        lock(&self.members)
    }

    /// Wakes the refresh loop (something was queued).
    pub(super) fn wake(&self) {
        self.wake.notify_one();
    }

    /// Whether a calendar refresh of `mailbox` is queued.
    pub fn is_queued(&self, mailbox: &Mailbox) -> bool {
        lock(&self.dirty).contains(mailbox)
    }

    /// Empties the queue.
    #[cfg(test)]
    pub(crate) fn clear_for_test(&self) {
        lock(&self.dirty).clear();
        self.auto.clear();
    }

    /// Refresh `mailbox` fully: calendar and automatic replies (start, resubscribe).
    pub fn mark_full(&self, mailbox: &Mailbox) {
        let now = Instant::now();
        self.auto.mark(mailbox, now);
        self.mark_background(mailbox, now);
    }

    /// Adds one of the gateway's mailboxes.
    pub fn add_member(&self, mailbox: &Mailbox) {
        lock(&self.members).insert(mailbox.clone());
    }

    /// Forgets a mailbox.
    pub fn remove_member(&self, mailbox: &Mailbox) {
        lock(&self.members).remove(mailbox);
        lock(&self.dirty).remove(mailbox);
        lock(&self.last_read).remove(mailbox);
        self.auto.remove(mailbox);
        let mut failures = lock(&self.failures);
        for read in [Read::Calendar, Read::AutoReplies, Read::MailTips] {
            failures.remove(&(mailbox.clone(), read));
        }
    }

    /// Queues every mailbox's calendar (the horizon rolled).
    fn mark_every_member(&self) {
        let members: Vec<Mailbox> = lock(&self.members).iter().cloned().collect();
        let now = Instant::now();
        let mut dirty = lock(&self.dirty);
        for m in &members {
            dirty.background(m, now, now);
        }
        drop(dirty);
        self.wake.notify_one();
    }

    /// A read of `mailbox` failed: queue it again after `server_wait` (what the server
    /// asked) or the mailbox's next backoff step. Returns the wait.
    pub(super) fn retry(
        &self,
        mailbox: &Mailbox,
        read: Read,
        server_wait: Option<Duration>,
    ) -> Duration {
        if !lock(&self.members).contains(mailbox) {
            return Duration::ZERO;
        }
        let attempt = {
            let mut failures = lock(&self.failures);
            let n = failures.entry((mailbox.clone(), read)).or_insert(0);
            *n = n.saturating_add(1);
            *n - 1
        };
        let wait = server_wait.unwrap_or_else(|| lock(&self.jitter).delay_for(attempt));
        let now = Instant::now();
        let at = now + wait;
        match read {
            Read::Calendar => self.mark_background(mailbox, at),
            Read::AutoReplies => self.auto.confirm(mailbox, at),
            Read::MailTips => self.auto.mark(mailbox, at),
        }
        self.wake.notify_one();
        wait
    }

    /// A read of `mailbox` succeeded.
    pub(super) fn succeeded(&self, mailbox: &Mailbox, read: Read) {
        lock(&self.failures).remove(&(mailbox.clone(), read));
    }

    fn failing_flag(&self, read: Read) -> &AtomicBool {
        match read {
            Read::Calendar => &self.calendar_failing,
            Read::AutoReplies => &self.oof_failing,
            Read::MailTips => &self.tips_failing,
        }
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
    let roll = (presence.horizon / 4).max(Duration::from_secs(60));
    let mut roll_tick = tokio::time::interval_at(Instant::now() + roll, roll);
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
            _ = roll_tick.tick() => queue.mark_every_member(),
            // A request slot freed: queued automatic-reply reads may go now.
            Some(_) = work.join_next(), if !work.is_empty() => {}
        }
        let now = Instant::now();
        let (due, next) = queue.take_due(now);
        next_due = next;
        for batch in due.chunks(MAX_MAILBOXES) {
            // Waits while every request slot is taken (a slow or refusing server);
            // stopping does not wait.
            let permit = tokio::select! {
                _ = stop.cancelled() => break,
                permit = availability.clone().acquire_owned() => permit,
            };
            let Ok(permit) = permit else {
                break;
            };
            let (gateway, queue, shared, stop, batch) = (
                gateway.clone(),
                queue.clone(),
                shared.clone(),
                stop.clone(),
                batch.to_vec(),
            );
            work.spawn(async move {
                fetch_availability(&gateway, &queue, &shared, &stop, batch).await;
                drop(permit);
            });
            // Reap finished work as we go: at start-up this loop spawns one task per
            // mailbox, and unreaped tasks would all stay allocated until it ends.
            while work.try_join_next().is_some() {}
        }
        // Never wait here for an automatic-reply slot: a sweep of thousands of reads
        // must not hold up the calendar reads of changes (the latency tail it caused).
        let auto_next = Dispatch {
            gateway: &gateway,
            queue: &queue,
            shared: &shared,
            stop: &stop,
            slots: &oof,
        }
        .run(now, &mut work);
        while work.try_join_next().is_some() {}
        next_due = match (next_due, auto_next) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
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

/// Sends one read, once: the answer with when the request that got it was sent (by
/// `clock`), or the error. Reads are retried by the queue alone (see the module doc);
/// what the server asked to wait comes back in the error.
pub(super) async fn send_read(
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
pub(super) fn unusable(
    read: Read,
    answer: Result<Response, EwsError>,
) -> (String, Option<Duration>) {
    match answer {
        Ok(other) => (
            format!(
                "unexpected {} answer to {}",
                other.operation(),
                read.operation()
            ),
            None,
        ),
        Err(e) => (format!("{} failed: {e}", read.operation()), server_wait(&e)),
    }
}

/// What the server asked us to wait, when it throttled us.
fn server_wait(error: &EwsError) -> Option<Duration> {
    match error.disposition() {
        Disposition::Throttled(wait) => Some(wait),
        _ => None,
    }
}

/// Reads of `mailboxes` failed with `problem`: mark them, queue them again, log a
/// change of the gateway's health once.
pub(super) fn failed(
    gateway: &Gateway,
    queue: &RefreshQueue,
    shared: &Shared,
    read: Read,
    mailboxes: &[Mailbox],
    problem: &str,
    server_wait: Option<Duration>,
) {
    metrics::refresh_failed(&gateway.config.name, read.operation(), mailboxes.len());
    let shown: Arc<str> = format!("{}: {problem}", gateway.config.name).into();
    let mut wait = Duration::ZERO;
    for m in mailboxes {
        // A failed calendar read makes the data stale (which can end in unknown: the
        // scheduler must know); automatic replies keep what was read before.
        if read == Read::Calendar {
            shared
                .updates
                .apply(m, Update::Problem(Some(shown.clone())));
        }
        wait = wait.max(queue.retry(m, read, server_wait));
    }
    if !queue.failing_flag(read).swap(true, Ordering::Relaxed) {
        tracing::warn!(
            gateway = %gateway.config.name,
            operation = read.operation(),
            mailboxes = mailboxes.len(),
            retry_in_ms = wait.as_millis() as u64,
            error = %problem,
            "refreshes are failing; the mailboxes stay queued and are retried with backoff"
        );
    } else {
        tracing::debug!(gateway = %gateway.config.name, operation = read.operation(), mailboxes = mailboxes.len(), error = %problem, "refresh failed again");
    }
}

pub(super) fn recovered(gateway: &Gateway, queue: &RefreshQueue, read: Read) {
    if queue.failing_flag(read).swap(false, Ordering::Relaxed) {
        tracing::info!(gateway = %gateway.config.name, operation = read.operation(), "refreshes work again");
    }
}

async fn fetch_availability(
    gateway: &Gateway,
    queue: &RefreshQueue,
    shared: &Shared,
    stop: &CancellationToken,
    batch: Vec<(Mailbox, Instant)>,
) {
    let mailboxes: Vec<Mailbox> = batch.iter().map(|(m, _)| m.clone()).collect();
    if let Err((problem, wait)) =
        read_availability(gateway, queue, shared, &batch, &mailboxes).await
        && !stop.is_cancelled()
    {
        failed(
            gateway,
            queue,
            shared,
            Read::Calendar,
            &mailboxes,
            &problem,
            wait,
        );
    }
}

/// Reads and applies the calendars of `batch`; why it failed (and what the server
/// asked us to wait) otherwise.
async fn read_availability(
    gateway: &Gateway,
    queue: &RefreshQueue,
    shared: &Shared,
    batch: &[(Mailbox, Instant)],
    mailboxes: &[Mailbox],
) -> Result<(), (String, Option<Duration>)> {
    let now = queue.clock.now();
    let from = now.as_second() - LOOKBACK;
    let to = now
        .as_second()
        .saturating_add(i64::try_from(shared.presence.horizon.as_secs()).unwrap_or(i64::MAX));
    let body = match (Timestamp::from_second(from), Timestamp::from_second(to)) {
        (Ok(start), Ok(end)) => get_user_availability::body(mailboxes, start, end)
            .map_err(|e| (format!("cannot write GetUserAvailability: {e}"), None))?,
        _ => return Err((format!("the window {from}..{to} is out of range"), None)),
    };
    let header = RequestHeader {
        server_version: gateway.config.server_version,
        impersonate: None,
    };
    let xml = envelope(&header, &body);
    metrics::refresh_batch(mailboxes.len());
    let answer = send_read(
        gateway,
        queue.clock,
        "GetUserAvailability",
        &xml,
        &Route::default(),
    )
    .await;
    match answer {
        Ok((Response::GetUserAvailability(r), sent_at)) if r.mailboxes.len() == mailboxes.len() => {
            apply(gateway, queue, shared, batch, r, from, to, sent_at);
            Ok(())
        }
        Ok((Response::GetUserAvailability(r), _)) => Err((
            format!(
                "GetUserAvailability answered {} mailboxes for {} asked",
                r.mailboxes.len(),
                mailboxes.len()
            ),
            None,
        )),
        other => Err(unusable(Read::Calendar, other.map(|(r, _)| r))),
    }
}

#[allow(clippy::too_many_arguments)]
fn apply(
    gateway: &Gateway,
    queue: &RefreshQueue,
    shared: &Shared,
    batch: &[(Mailbox, Instant)],
    r: AvailabilityResponse,
    from: i64,
    to: i64,
    requested_at: Timestamp,
) {
    let mut refused = Vec::new();
    let mut problem = String::new();
    for ((mailbox, dirty_since), result) in batch.iter().zip(r.mailboxes) {
        if result.status.code.is_success() {
            let intervals = result.events.iter().filter_map(|e| {
                Some(Interval {
                    start: e.start.to_timestamp_assuming_utc()?.as_second(),
                    end: e.end.to_timestamp_assuming_utc()?.as_second(),
                    state: state_of(e.busy_type),
                })
            });
            shared.updates.apply(
                mailbox,
                Update::Timeline {
                    timeline: Timeline::new(from, to, intervals),
                    read_at: requested_at,
                },
            );
            queue.succeeded(mailbox, Read::Calendar);
            metrics::event_to_state(dirty_since.elapsed());
        } else {
            problem = format!("GetUserAvailability: {}", result.status.code);
            refused.push(mailbox.clone());
        }
    }
    if refused.is_empty() {
        recovered(gateway, queue, Read::Calendar);
    } else {
        failed(
            gateway,
            queue,
            shared,
            Read::Calendar,
            &refused,
            &problem,
            None,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use common::mailbox::numbered as mailbox;

    fn queue() -> RefreshQueue {
        RefreshQueue::new(Clock::System, Duration::from_millis(100))
    }

    #[tokio::test(start_paused = true)]
    async fn a_quiet_mailbox_is_read_at_once_and_a_busy_one_once_per_period() {
        let queue = queue();
        let debounce = Duration::from_millis(100);
        // Quiet: read at once (leading edge).
        queue.mark(&mailbox(1));
        let (due, next) = queue.take_due(Instant::now());
        assert_eq!(
            due.iter().map(|(m, _)| m.clone()).collect::<Vec<_>>(),
            [mailbox(1)]
        );
        assert_eq!(next, None);
        // Events while that read is in flight or within the period after it: one
        // trailing read at the end of the period, however many events.
        for _ in 0..5 {
            tokio::time::advance(Duration::from_millis(15)).await;
            queue.mark(&mailbox(1));
        }
        let (due, next) = queue.take_due(Instant::now());
        assert!(due.is_empty(), "not before the period ends");
        let sent = Instant::now() - Duration::from_millis(75);
        assert_eq!(next, Some(sent + debounce));
        tokio::time::advance(Duration::from_millis(25)).await;
        let (due, _) = queue.take_due(Instant::now());
        assert_eq!(due.len(), 1, "one trailing read");
        // A mailbox that never stops changing is read once per period, never starved.
        let mut reads = 0;
        for _ in 0..20 {
            tokio::time::advance(Duration::from_millis(50)).await;
            queue.mark(&mailbox(1));
            reads += queue.take_due(Instant::now()).0.len();
        }
        assert!(
            (9..=11).contains(&reads),
            "{reads} reads in 1 s at a 100 ms period"
        );
        // Another mailbox is not held back by the first's period.
        queue.mark(&mailbox(2));
        let (due, _) = queue.take_due(Instant::now());
        assert!(due.iter().any(|(m, _)| *m == mailbox(2)));
    }

    #[tokio::test(start_paused = true)]
    async fn reads_no_change_asked_for_start_no_quiet_period() {
        let queue = queue();
        let m = mailbox(1);
        queue.add_member(&m);
        // The first read after subscribing, then the horizon rolling.
        for roll in [false, true] {
            if roll {
                queue.mark_every_member();
            } else {
                queue.mark_full(&m);
            }
            assert_eq!(queue.take_due(Instant::now()).0.len(), 1);
            tokio::time::advance(Duration::from_millis(10)).await;
            // A change 10 ms later is read at once, not at the end of a period.
            queue.mark(&m);
            assert_eq!(queue.take_due(Instant::now()).0.len(), 1, "leading edge");
            // That read did start a period: the next change waits for its end.
            tokio::time::advance(Duration::from_millis(10)).await;
            queue.mark(&m);
            let (due, next) = queue.take_due(Instant::now());
            assert!(due.is_empty());
            assert!(next.is_some());
            tokio::time::advance(Duration::from_millis(100)).await;
            assert_eq!(queue.take_due(Instant::now()).0.len(), 1, "trailing read");
            tokio::time::advance(Duration::from_millis(200)).await;
        }
        // A change while a background read waits (throttled) upgrades it: it keeps the
        // server's wait, and starts a quiet period when it goes.
        queue.retry(&m, Read::Calendar, Some(Duration::from_millis(500)));
        queue.mark(&m);
        assert!(
            queue.take_due(Instant::now()).0.is_empty(),
            "the wait holds"
        );
        tokio::time::advance(Duration::from_millis(500)).await;
        assert_eq!(queue.take_due(Instant::now()).0.len(), 1);
        queue.mark(&m);
        assert!(
            queue.take_due(Instant::now()).0.is_empty(),
            "within the period of the change read"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn only_recent_reads_are_remembered() {
        let queue = queue();
        // Waves of changes to different mailboxes, each wave after the quiet period.
        for wave in 0..8usize {
            for n in 0..1000 {
                queue.mark(&mailbox(wave * 1000 + n));
            }
            assert_eq!(queue.take_due(Instant::now()).0.len(), 1000);
            tokio::time::advance(Duration::from_millis(150)).await;
        }
        let remembered = lock(&queue.last_read).len();
        assert!(
            remembered <= 2 * LAST_READ_PRUNE_FLOOR.max(2000),
            "{remembered} reads remembered of 8,000 mailboxes changed"
        );
        // A mailbox read within the period is still remembered (trailing edge).
        queue.mark(&mailbox(7999));
        assert!(queue.take_due(Instant::now()).0.len() == 1);
        queue.mark(&mailbox(7999));
        assert!(queue.take_due(Instant::now()).0.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_read_is_queued_again_with_backoff() {
        let queue = queue();
        let m = mailbox(1);
        queue.add_member(&m);
        // The server asked for 1.5 s: the calendar read waits exactly that.
        let wait = queue.retry(&m, Read::Calendar, Some(Duration::from_millis(1500)));
        assert_eq!(wait, Duration::from_millis(1500));
        let (due, next) = queue.take_due(Instant::now());
        assert!(due.is_empty());
        assert_eq!(next, Some(Instant::now() + wait));
        tokio::time::advance(wait).await;
        let (due, _) = queue.take_due(Instant::now());
        assert_eq!(due.len(), 1, "due once the server's wait is over");
        // Without a hint, each failure in a row waits longer, up to the cap.
        let waits: Vec<Duration> = (0..10)
            .map(|_| queue.retry(&m, Read::AutoReplies, None))
            .collect();
        // Jitter is at most a quarter either way.
        assert!(waits[0] <= RETRY_MIN * 5 / 4, "{waits:?}");
        assert!(waits[3] >= RETRY_MIN * 8 * 3 / 4, "{waits:?}");
        assert!(waits.iter().all(|w| *w <= RETRY_MAX), "{waits:?}");
        assert!(
            queue.auto.confirm_queued(&m),
            "the automatic-reply read stays queued"
        );
        queue.succeeded(&m, Read::AutoReplies);
        assert!(queue.retry(&m, Read::AutoReplies, None) <= RETRY_MIN * 5 / 4);
        // A mailbox no longer configured is not retried.
        queue.remove_member(&m);
        assert_eq!(queue.retry(&m, Read::Calendar, None), Duration::ZERO);
    }
}

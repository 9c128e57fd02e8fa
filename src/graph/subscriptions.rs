//! Change-notification subscriptions of one Graph gateway: one per mailbox on
//! `users/{id}/events` (`created,updated,deleted`), each with its own random
//! `clientState` and our lifecycle URL, asked for Graph's longest lifetime on Outlook
//! events less [`MARGIN`].
//!
//! The [`Table`] is the policy, without I/O: what each mailbox's subscription needs
//! next and when. A new mailbox is subscribed at once; a subscription is renewed at a
//! random point between half and [`RENEW_LATEST`] of its lifetime (so that thousands
//! created together are not renewed together); a renewal or reauthorization that
//! Graph answers 404 means it is gone: created again, and the mailbox read again (what
//! changed meanwhile was not told); a failure is retried per mailbox with backoff
//! (what Graph asked, when it throttled), the mailbox marked with the problem
//! meanwhile: without a subscription its presence would go stale silently. Lifecycle
//! events: `subscriptionRemoved` creates it again, `reauthorizationRequired`
//! reauthorizes, `missed` re-reads (the receiver does that).
//!
//! [`run`] executes it: at most [`IN_FLIGHT`] requests at once, and at shutdown deletes
//! what it holds within [`SHUTDOWN_GRACE`] (a subscription left behind lapses by
//! itself; notifications for it are dropped as unknown).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dashmap::DashMap;
use hyper::Method;
use jiff::Timestamp;
use ring::rand::{SecureRandom, SystemRandom};
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::error::GraphError;
use super::gateway::GraphGateway;
use crate::engine::Shared;
use crate::engine::backoff::{Backoff, Random, XorShift};
use crate::presence::updates::Update;
use common::mailbox::Mailbox;
use common::sync::lock;
use graph::notification::LifecycleEvent;
use graph::subscription::{MAX_LIFETIME_MINUTES, Subscription};

/// Asked lifetime is Graph's longest less this.
pub const MARGIN: Duration = Duration::from_secs(3600);
/// Renewals happen no later than this share of the lifetime.
pub const RENEW_LATEST: f64 = 0.9;
/// Subscription requests in flight per gateway.
pub const IN_FLIGHT: usize = 8;
/// Time given to deleting the subscriptions at shutdown.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// First wait before a failed subscription request is sent again.
pub const RETRY_MIN: Duration = Duration::from_secs(2);
/// Longest such wait.
pub const RETRY_MAX: Duration = Duration::from_secs(900);

/// Whom a notification for a subscription id is for, as the receiver looks it up.
#[derive(Debug, Clone)]
pub struct Target {
    /// The gateway's index.
    pub gateway: usize,
    /// The mailbox.
    pub mailbox: Mailbox,
    /// The secret Graph must echo.
    pub client_state: Arc<str>,
}

/// Every live subscription of every Graph gateway, by id.
pub type Directory = DashMap<String, Target>;

/// What a mailbox's subscription needs next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Create it.
    Create,
    /// Renew it.
    Renew,
    /// Reauthorize it.
    Reauthorize,
}

impl Action {
    /// Its name in metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Renew => "renew",
            Action::Reauthorize => "reauthorize",
        }
    }
}

#[derive(Debug)]
struct Entry {
    id: Option<String>,
    client_state: Arc<str>,
    expires: Option<Timestamp>,
    next: Action,
    due: Instant,
    busy: bool,
    backoff: Backoff,
    /// Its last request failed and it has no live subscription.
    failing: bool,
}

/// One request to send.
#[derive(Debug, Clone)]
pub struct Job {
    /// The mailbox.
    pub mailbox: Mailbox,
    /// What to do.
    pub action: Action,
    /// The subscription's id (renew, reauthorize).
    pub id: Option<String>,
    /// Its secret (create).
    pub client_state: Arc<str>,
}

/// How a request ended.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// Created or renewed: its id and expiry.
    Held {
        /// Its id.
        id: String,
        /// When it lapses.
        expires: Timestamp,
    },
    /// Reauthorized.
    Reauthorized,
    /// Graph no longer has it.
    Gone,
    /// It failed.
    Failed(GraphError),
}

/// What the table asks of its runner after a change.
#[derive(Debug, Default)]
pub struct Effects {
    /// Ids to forget in the directory.
    pub forget: Vec<String>,
    /// (id, target) to add to the directory.
    pub add: Vec<(String, Mailbox, Arc<str>)>,
    /// Mailboxes to read again fully.
    pub reread: Vec<Mailbox>,
    /// Problems to set (None clears).
    pub problems: Vec<(Mailbox, Option<String>)>,
    /// Subscriptions to delete at Graph (created for a mailbox that left meanwhile).
    pub delete: Vec<String>,
}

/// The subscriptions of one gateway, without I/O.
#[derive(Debug)]
pub struct Table {
    gateway: Arc<str>,
    entries: BTreeMap<Mailbox, Entry>,
    random: XorShift,
}

/// A new random `clientState` (64 hex digits: within Graph's 128 characters).
pub fn new_client_state() -> Arc<str> {
    let mut raw = [0u8; 32];
    let _ = SystemRandom::new().fill(&mut raw);
    raw.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>()
        .into()
}

fn retry_backoff(random: &mut XorShift) -> Backoff {
    Backoff::with_random(
        RETRY_MIN,
        RETRY_MAX,
        Box::new(XorShift::new(random.next_u64())),
    )
    .unwrap_or_else(|e| unreachable!("{e}"))
}

impl Table {
    /// An empty table for `gateway` (named in problems).
    pub fn new(gateway: &str, seed: u64) -> Table {
        Table {
            gateway: gateway.into(),
            entries: BTreeMap::new(),
            random: XorShift::new(seed),
        }
    }

    /// Mailboxes held (with or without a live subscription).
    pub fn mailboxes(&self) -> Vec<Mailbox> {
        self.entries.keys().cloned().collect()
    }

    /// Live subscriptions.
    pub fn live(&self) -> usize {
        self.entries.values().filter(|e| e.id.is_some()).count()
    }

    /// Mailboxes without a live subscription whose last request failed.
    pub fn failing(&self) -> usize {
        self.entries.values().filter(|e| e.failing).count()
    }

    /// Whether `mailbox` is held.
    pub fn contains(&self, mailbox: &Mailbox) -> bool {
        self.entries.contains_key(mailbox)
    }

    /// A mailbox to subscribe, now.
    pub fn join(&mut self, mailbox: Mailbox, now: Instant) {
        if self.entries.contains_key(&mailbox) {
            return;
        }
        let backoff = retry_backoff(&mut self.random);
        self.entries.insert(
            mailbox,
            Entry {
                id: None,
                client_state: new_client_state(),
                expires: None,
                next: Action::Create,
                due: now,
                busy: false,
                backoff,
                failing: false,
            },
        );
    }

    /// A mailbox no longer served: its subscription's id, to delete.
    pub fn leave(&mut self, mailbox: &Mailbox) -> Option<String> {
        self.entries.remove(mailbox).and_then(|e| e.id)
    }

    /// Every held subscription's id, emptying the table (shutdown).
    pub fn drain(&mut self) -> Vec<String> {
        std::mem::take(&mut self.entries)
            .into_values()
            .filter_map(|e| e.id)
            .collect()
    }

    /// A lifecycle event for `mailbox`'s subscription `id`.
    pub fn lifecycle(
        &mut self,
        mailbox: &Mailbox,
        id: &str,
        event: LifecycleEvent,
        now: Instant,
        effects: &mut Effects,
    ) {
        let Some(e) = self.entries.get_mut(mailbox) else {
            return;
        };
        if e.id.as_deref() != Some(id) {
            return;
        }
        match event {
            LifecycleEvent::SubscriptionRemoved => {
                effects.forget.push(id.to_owned());
                e.id = None;
                e.expires = None;
                e.next = Action::Create;
                e.due = now;
                e.client_state = new_client_state();
            }
            LifecycleEvent::ReauthorizationRequired => {
                e.next = Action::Reauthorize;
                e.due = now;
            }
            LifecycleEvent::Missed => effects.reread.push(mailbox.clone()),
            LifecycleEvent::Unknown => {}
        }
    }

    /// The requests due at `now`, at most `limit`, marked busy.
    pub fn take_due(&mut self, now: Instant, limit: usize) -> Vec<Job> {
        let mut jobs = Vec::new();
        for (mailbox, e) in &mut self.entries {
            if jobs.len() >= limit {
                break;
            }
            if e.busy || e.due > now {
                continue;
            }
            e.busy = true;
            jobs.push(Job {
                mailbox: mailbox.clone(),
                action: e.next,
                id: e.id.clone(),
                client_state: e.client_state.clone(),
            });
        }
        jobs
    }

    /// When the next request falls due.
    pub fn next_due(&self) -> Option<Instant> {
        self.entries
            .values()
            .filter(|e| !e.busy)
            .map(|e| e.due)
            .min()
    }

    /// When to renew a subscription held from `now` until `expires`: a random point
    /// between half and [`RENEW_LATEST`] of the time left.
    fn renewal_at(&mut self, now: Instant, wall: Timestamp, expires: Timestamp) -> Instant {
        let left = expires.duration_since(wall).as_secs_f64().max(60.0);
        let share =
            0.5 + (RENEW_LATEST - 0.5) * (self.random.next_u64() % 10_000) as f64 / 10_000.0;
        now + Duration::from_secs_f64(left * share)
    }

    /// `job` ended with `outcome` at `now` (`wall` the time of day).
    pub fn finished(
        &mut self,
        job: &Job,
        outcome: Outcome,
        now: Instant,
        wall: Timestamp,
        effects: &mut Effects,
    ) {
        let renewal = |table: &mut Table, expires| table.renewal_at(now, wall, expires);
        let Some(mut e) = self.entries.remove(&job.mailbox) else {
            // The mailbox left while this was in flight: what was created is deleted.
            if let Outcome::Held { id, .. } = outcome
                && job.action == Action::Create
            {
                effects.delete.push(id);
            }
            return;
        };
        e.busy = false;
        match outcome {
            Outcome::Held { id, expires } => {
                if job.action == Action::Create {
                    effects
                        .add
                        .push((id.clone(), job.mailbox.clone(), e.client_state.clone()));
                    // Read with the subscription in place: nothing before it was told.
                    effects.reread.push(job.mailbox.clone());
                    effects.problems.push((job.mailbox.clone(), None));
                }
                e.id = Some(id);
                e.expires = Some(expires);
                e.failing = false;
                e.next = Action::Renew;
                e.due = renewal(self, expires);
                e.backoff.reset();
            }
            Outcome::Reauthorized => {
                e.next = Action::Renew;
                e.due = match e.expires {
                    Some(expires) => renewal(self, expires),
                    None => now,
                };
                e.backoff.reset();
            }
            Outcome::Gone => {
                if let Some(id) = e.id.take() {
                    effects.forget.push(id);
                }
                e.expires = None;
                e.next = Action::Create;
                e.due = now;
                e.client_state = new_client_state();
            }
            Outcome::Failed(error) => {
                let wait = error
                    .server_wait()
                    .unwrap_or_else(|| e.backoff.next_delay());
                e.due = now + wait;
                let lapsed = e
                    .expires
                    .is_none_or(|x| x <= wall.checked_add(wait).unwrap_or(wall));
                if lapsed {
                    // Without a subscription (or about to be), nothing tells us of
                    // changes: say so on the mailbox rather than serve stale presence.
                    if let Some(id) = e.id.take() {
                        effects.forget.push(id);
                    }
                    e.expires = None;
                    e.next = Action::Create;
                    e.failing = true;
                    let at_limit = matches!(&error, GraphError::Http { status, code, message }
                        if graph::error::ErrorBody::new(code, message).is_subscription_limit(*status));
                    let why = if at_limit {
                        format!(
                            "{}: no change notifications: the mailbox holds Graph's maximum of 1,000 subscriptions (across every application); remove stale ones ({error})",
                            self.gateway
                        )
                    } else {
                        format!(
                            "{}: no change notifications: {} failed: {error}",
                            self.gateway,
                            job.action.as_str()
                        )
                    };
                    effects.problems.push((job.mailbox.clone(), Some(why)));
                }
            }
        }
        self.entries.insert(job.mailbox.clone(), e);
    }
}

/// The lifetime to ask for, from `now`.
pub fn expiry_from(now: Timestamp) -> Timestamp {
    let secs = MAX_LIFETIME_MINUTES * 60 - MARGIN.as_secs() as i64;
    now.checked_add(jiff::SignedDuration::from_secs(secs))
        .unwrap_or(now)
}

/// One gateway's subscriptions at run time: the table and what wakes its runner.
#[derive(Debug)]
pub struct Subscriptions {
    /// The policy.
    pub table: Mutex<Table>,
    /// Wakes the runner.
    pub wake: Notify,
    /// Ids to delete (mailboxes that left).
    pub doomed: Mutex<Vec<String>>,
}

impl Subscriptions {
    /// For gateway `name`.
    pub fn new(name: &str) -> Subscriptions {
        Subscriptions {
            table: Mutex::new(Table::new(name, XorShift::from_time().next_u64())),
            wake: Notify::new(),
            doomed: Mutex::new(Vec::new()),
        }
    }
}

/// Sends one job.
async fn send(gateway: &GraphGateway, job: &Job) -> Outcome {
    let result = match job.action {
        Action::Create => {
            let body = Subscription::create(
                job.mailbox.as_str(),
                &gateway.graph.notification_url.to_string(),
                &gateway.graph.notification_url.to_string(),
                expiry_from(Timestamp::now()),
                &job.client_state,
            );
            gateway
                .call(
                    "subscription create",
                    Method::POST,
                    "/subscriptions",
                    Some(graph::encode(&body)),
                    &[&job.mailbox],
                )
                .await
        }
        Action::Renew => {
            let body = Subscription::renew(expiry_from(Timestamp::now()));
            let path = format!("/subscriptions/{}", job.id.as_deref().unwrap_or_default());
            gateway
                .call(
                    "subscription renew",
                    Method::PATCH,
                    &path,
                    Some(graph::encode(&body)),
                    &[&job.mailbox],
                )
                .await
        }
        Action::Reauthorize => {
            let path = format!(
                "/subscriptions/{}/reauthorize",
                job.id.as_deref().unwrap_or_default()
            );
            gateway
                .call(
                    "subscription reauthorize",
                    Method::POST,
                    &path,
                    None,
                    &[&job.mailbox],
                )
                .await
        }
    };
    let outcome = match result {
        Ok(_) if job.action == Action::Reauthorize => Outcome::Reauthorized,
        Ok(answer) => match graph::decode::<Subscription>("subscription answer", &answer.body) {
            Ok(s) => match (s.id.clone(), s.expires()) {
                (Some(id), Some(expires)) => Outcome::Held { id, expires },
                _ => Outcome::Failed(GraphError::Decode(
                    "the subscription answer lacks id or expirationDateTime".into(),
                )),
            },
            Err(e) => Outcome::Failed(GraphError::Decode(e.to_string())),
        },
        Err(e) if e.is_not_found() && job.action != Action::Create => Outcome::Gone,
        Err(e) => Outcome::Failed(e),
    };
    let label = match &outcome {
        Outcome::Held { .. } | Outcome::Reauthorized => "ok",
        Outcome::Gone => "gone",
        Outcome::Failed(e) => e.outcome(),
    };
    super::metrics::subscription_request(gateway.name(), job.action.as_str(), label);
    outcome
}

async fn delete(gateway: &GraphGateway, id: &str) {
    let path = format!("/subscriptions/{id}");
    let result = gateway
        .call("subscription delete", Method::DELETE, &path, None, &[])
        .await;
    let label = match &result {
        Ok(_) => "ok",
        Err(e) if e.is_not_found() => "gone",
        Err(e) => e.outcome(),
    };
    super::metrics::subscription_request(gateway.name(), "delete", label);
}

/// What the runner needs besides the gateway.
#[derive(Debug, Clone)]
pub struct Context {
    /// The receiver's directory.
    pub directory: Arc<Directory>,
    /// The presence core.
    pub shared: Arc<Shared>,
}

/// Tells a change of the gateway's failing subscriptions once each way: the first
/// failure loudly (with one of the problems), the recovery once.
fn tell(gateway: &GraphGateway, before: usize, now: usize, example: Option<&str>) {
    if before == 0 && now > 0 {
        tracing::warn!(
            gateway = %gateway.name(),
            mailboxes = now,
            problem = example.unwrap_or_default(),
            "Graph subscriptions are failing; each mailbox is retried with backoff and reads unknown meanwhile"
        );
    } else if before > 0 && now == 0 {
        tracing::info!(gateway = %gateway.name(), "every Graph subscription is held again");
    }
}

fn apply(gateway: &GraphGateway, context: &Context, effects: Effects) {
    for id in effects.forget {
        context.directory.remove(&id);
    }
    for (id, mailbox, client_state) in effects.add {
        context.directory.insert(
            id,
            Target {
                gateway: gateway.index,
                mailbox,
                client_state,
            },
        );
    }
    for (mailbox, problem) in effects.problems {
        context
            .shared
            .updates
            .apply(&mailbox, Update::Problem(problem.map(Into::into)));
    }
    for mailbox in effects.reread {
        gateway.refresh.mark_full(&mailbox);
    }
}

/// Runs `subscriptions` of `gateway` until `stop`, then deletes what it holds.
pub async fn run(
    gateway: Arc<GraphGateway>,
    subscriptions: Arc<Subscriptions>,
    context: Context,
    stop: CancellationToken,
) {
    let mut work: JoinSet<(Job, Outcome)> = JoinSet::new();
    let mut deletes: JoinSet<()> = JoinSet::new();
    loop {
        let now = Instant::now();
        let jobs = lock(&subscriptions.table).take_due(now, IN_FLIGHT.saturating_sub(work.len()));
        for job in jobs {
            let gateway = gateway.clone();
            work.spawn(async move {
                let outcome = send(&gateway, &job).await;
                (job, outcome)
            });
        }
        let doomed = std::mem::take(&mut *lock(&subscriptions.doomed));
        for id in doomed {
            context.directory.remove(&id);
            let gateway = gateway.clone();
            if deletes.len() < IN_FLIGHT * 4 {
                deletes.spawn(async move { delete(&gateway, &id).await });
            }
        }
        let (next, live) = {
            let table = lock(&subscriptions.table);
            (table.next_due(), table.live())
        };
        super::metrics::subscriptions(gateway.name(), live);
        let idle = Instant::now() + Duration::from_secs(3600);
        let wake_at = if work.len() >= IN_FLIGHT {
            idle
        } else {
            next.unwrap_or(idle)
        };
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = subscriptions.wake.notified() => {}
            Some(done) = work.join_next(), if !work.is_empty() => {
                if let Ok((job, outcome)) = done {
                    let mut effects = Effects::default();
                    let (before, after) = {
                        let mut table = lock(&subscriptions.table);
                        let before = table.failing();
                        table.finished(&job, outcome, Instant::now(), Timestamp::now(), &mut effects);
                        (before, table.failing())
                    };
                    let example = effects.problems.iter().find_map(|(_, p)| p.clone());
                    lock(&subscriptions.doomed).extend(effects.delete.drain(..));
                    tell(&gateway, before, after, example.as_deref());
                    apply(&gateway, &context, effects);
                }
            }
            Some(_) = deletes.join_next(), if !deletes.is_empty() => {}
            _ = tokio::time::sleep_until(wake_at) => {}
        }
    }
    work.abort_all();
    let held = lock(&subscriptions.table).drain();
    for id in &held {
        context.directory.remove(id);
    }
    let removal = async {
        let mut set = JoinSet::new();
        for chunk in held.chunks(16) {
            for id in chunk {
                let (gateway, id) = (gateway.clone(), id.clone());
                set.spawn(async move { delete(&gateway, &id).await });
            }
            while set.join_next().await.is_some() {}
        }
    };
    if tokio::time::timeout(SHUTDOWN_GRACE, removal).await.is_err() {
        tracing::warn!(gateway = %gateway.name(), "not every Graph subscription was deleted at shutdown; the rest lapse by themselves");
    }
}

/// Mailboxes by the number of live subscriptions (for tests).
pub fn count_by_mailbox(directory: &Directory) -> HashMap<Mailbox, usize> {
    let mut counts = HashMap::new();
    for entry in directory.iter() {
        *counts.entry(entry.mailbox.clone()).or_default() += 1;
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mailbox(n: usize) -> Mailbox {
        Mailbox::parse(&format!("user{n}@example.test")).expect("an address")
    }

    fn held(id: &str, wall: Timestamp) -> Outcome {
        Outcome::Held {
            id: id.to_owned(),
            expires: expiry_from(wall),
        }
    }

    #[test]
    fn a_new_mailbox_is_subscribed_at_once_and_read_once_subscribed() {
        let (now, wall) = (Instant::now(), Timestamp::now());
        let mut table = Table::new("online", 7);
        table.join(mailbox(1), now);
        let jobs = table.take_due(now, 8);
        assert_eq!(jobs.len(), 1);
        assert_eq!(jobs[0].action, Action::Create);
        assert_eq!(jobs[0].client_state.len(), 64);
        assert!(
            table.take_due(now, 8).is_empty(),
            "one request at a time per mailbox"
        );
        let mut effects = Effects::default();
        table.finished(&jobs[0], held("s1", wall), now, wall, &mut effects);
        assert_eq!(effects.add.len(), 1);
        assert_eq!(effects.reread, [mailbox(1)]);
        assert_eq!(effects.problems, [(mailbox(1), None)]);
        assert_eq!(table.live(), 1);
    }

    #[test]
    fn renewals_are_spread_between_half_and_nine_tenths_of_the_lifetime() {
        let (now, wall) = (Instant::now(), Timestamp::now());
        let mut table = Table::new("online", 11);
        for n in 0..500 {
            table.join(mailbox(n), now);
        }
        let jobs = table.take_due(now, 500);
        for job in &jobs {
            table.finished(
                job,
                held(&format!("s{}", job.mailbox), wall),
                now,
                wall,
                &mut Effects::default(),
            );
        }
        let lifetime = expiry_from(wall).duration_since(wall).as_secs_f64();
        let dues: Vec<f64> = table
            .entries
            .values()
            .map(|e| (e.due - now).as_secs_f64() / lifetime)
            .collect();
        assert!(
            dues.iter().all(|d| (0.5..=RENEW_LATEST).contains(d)),
            "{dues:?}"
        );
        let early = dues.iter().filter(|d| **d < 0.7).count();
        assert!(
            (150..350).contains(&early),
            "spread, not bunched: {early} of 500 in the first half"
        );
        assert!(
            table.take_due(now, 500).is_empty(),
            "nothing due until then"
        );
    }

    #[test]
    fn a_subscription_graph_no_longer_has_is_created_again_and_the_mailbox_read() {
        let (now, wall) = (Instant::now(), Timestamp::now());
        let mut table = Table::new("online", 3);
        table.join(mailbox(1), now);
        let create = table.take_due(now, 1).remove(0);
        table.finished(
            &create,
            held("old", wall),
            now,
            wall,
            &mut Effects::default(),
        );
        let mut effects = Effects::default();
        table.lifecycle(
            &mailbox(1),
            "old",
            LifecycleEvent::ReauthorizationRequired,
            now,
            &mut effects,
        );
        let reauthorize = table.take_due(now, 1).remove(0);
        assert_eq!(
            (reauthorize.action, reauthorize.id.as_deref()),
            (Action::Reauthorize, Some("old"))
        );
        table.finished(&reauthorize, Outcome::Gone, now, wall, &mut effects);
        assert_eq!(effects.forget, ["old"]);
        let again = table.take_due(now, 1).remove(0);
        assert_eq!(again.action, Action::Create);
        assert_ne!(
            again.client_state, create.client_state,
            "a new secret for a new subscription"
        );
        let mut effects = Effects::default();
        table.finished(&again, held("new", wall), now, wall, &mut effects);
        assert_eq!(effects.reread, [mailbox(1)]);
        // A lifecycle event for a subscription we no longer hold changes nothing.
        let mut effects = Effects::default();
        table.lifecycle(
            &mailbox(1),
            "old",
            LifecycleEvent::SubscriptionRemoved,
            now,
            &mut effects,
        );
        assert!(effects.forget.is_empty() && table.take_due(now, 1).is_empty());
    }

    #[test]
    fn a_failure_without_a_live_subscription_marks_the_mailbox_and_waits_what_graph_asked() {
        let (now, wall) = (Instant::now(), Timestamp::now());
        let mut table = Table::new("online", 5);
        table.join(mailbox(1), now);
        let create = table.take_due(now, 1).remove(0);
        let mut effects = Effects::default();
        let throttled = GraphError::Throttled {
            status: 429,
            wait: Duration::from_secs(7),
        };
        table.finished(&create, Outcome::Failed(throttled), now, wall, &mut effects);
        assert_eq!(table.failing(), 1);
        let problem = effects.problems[0].1.clone().expect("a problem");
        assert!(
            problem.starts_with("online: no change notifications: create failed: throttled"),
            "{problem}"
        );
        assert!(table.take_due(now + Duration::from_secs(6), 1).is_empty());
        assert_eq!(table.take_due(now + Duration::from_secs(7), 1).len(), 1);
        // A renewal that fails while the subscription still lives marks nothing.
        let mut table = Table::new("online", 5);
        table.join(mailbox(2), now);
        let create = table.take_due(now, 1).remove(0);
        table.finished(&create, held("s", wall), now, wall, &mut Effects::default());
        let renew_at = table.next_due().expect("a renewal");
        let renew = table.take_due(renew_at, 1).remove(0);
        let mut effects = Effects::default();
        table.finished(
            &renew,
            Outcome::Failed(GraphError::Timeout(Duration::from_secs(60))),
            renew_at,
            wall,
            &mut effects,
        );
        assert!(effects.problems.is_empty() && table.failing() == 0);
        assert_eq!(table.live(), 1);
    }
}

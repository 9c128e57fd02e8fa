//! The I/O around one server's [`Publications`]: it follows the change feed (and the
//! whole cache at start, after a lag, and in a sweep that catches what the feed does
//! not carry: a meeting extended changes `until` but not the availability), sends what
//! the state machine asks through the SIP client, turns answers into outcomes, keeps
//! the status view and the metrics, and on shutdown removes what the server holds
//! within the grace period.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use common::mailbox::Mailbox;
use jiff::tz::TimeZone;
use sip::client::{Client, ClientError};
use sip::message::Message;
use tokio::sync::broadcast::error::RecvError;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::document::{self, Identity, want_of};
use super::metrics;
use super::state::{Kind, Outcome, Publications, Publish};
use super::status::SharedView;
use crate::config::SipConfig;
use crate::presence::cache::Cache;

/// How often every tracked presentity is compared with the cache.
const SWEEP: Duration = Duration::from_secs(15);
/// How long shutdown spends removing publications (inside the daemon's grace).
pub const REMOVAL_GRACE: Duration = Duration::from_secs(8);
/// Status and gauges are refreshed at most this often under load.
const SHOW_EVERY: Duration = Duration::from_millis(100);

/// What a finished request reports.
struct Done {
    mailbox: Mailbox,
    kind: Kind,
    outcome: Outcome,
    /// The server answered (any SIP response).
    reached: bool,
    took: Duration,
}

/// One server's publisher.
pub(super) struct Driver {
    pub(super) config: SipConfig,
    pub(super) client: Client,
    pub(super) cache: Arc<Cache>,
    pub(super) state: Publications,
    pub(super) view: SharedView,
    pub(super) zone: TimeZone,
    pub(super) ids: Ids,
    pub(super) tally: Tally,
}

/// What the requests came to since start, for the view.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Tally {
    /// The last request got an answer.
    connected: bool,
    /// Answered 2xx.
    accepted: u64,
    /// Failed or refused.
    failed: u64,
}

impl Driver {
    pub(super) async fn run(mut self, stop: CancellationToken) {
        let Ok((_, mut live)) = self.cache.feed().watch(None) else {
            return;
        };
        self.resync();
        let mut requests: JoinSet<Done> = JoinSet::new();
        let mut owners: HashMap<tokio::task::Id, (Mailbox, Kind)> = HashMap::new();
        let mut sweep = tokio::time::interval(SWEEP);
        sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut removing_until: Option<Instant> = None;
        let mut shown = Instant::now() - SHOW_EVERY;
        // Something changed since the view was last shown.
        let mut unshown = true;
        loop {
            for publish in self.state.poll(Instant::now()) {
                let kind = publish.kind;
                let mailbox = publish.mailbox.clone();
                let id = requests.spawn(self.send(publish)).id();
                owners.insert(id, (mailbox, kind));
            }
            if unshown && shown.elapsed() >= SHOW_EVERY {
                self.show();
                shown = Instant::now();
                unshown = false;
            }
            if removing_until.is_some() && self.state.is_done() {
                tracing::info!(server = %self.config.name, "SIP publications removed");
                break;
            }
            let wake = self.state.next_wake();
            let show_at = unshown.then_some(shown + SHOW_EVERY);
            tokio::select! {
                _ = sleep_until(show_at) => continue,
                _ = stop.cancelled(), if removing_until.is_none() => {
                    self.state.stop();
                    removing_until = Some(Instant::now() + REMOVAL_GRACE);
                }
                _ = sleep_until(removing_until) => {
                    tracing::warn!(
                        server = %self.config.name,
                        left = self.state.counts().held,
                        "shutdown: SIP publications not removed in time expire by themselves"
                    );
                    break;
                }
                batch = live.recv(), if removing_until.is_none() => match batch {
                    Ok(batch) => {
                        for (_, snapshot) in batch.changes() {
                            let want = want_of(snapshot, self.config.publish_available);
                            self.state.want(&snapshot.mailbox, want);
                        }
                    }
                    Err(RecvError::Lagged(missed)) => {
                        tracing::warn!(server = %self.config.name, missed, "SIP publisher fell behind the change feed; reading every mailbox again");
                        self.resync();
                    }
                    Err(RecvError::Closed) => break,
                },
                Some(joined) = requests.join_next_with_id() => {
                    let done = match joined {
                        Ok((id, done)) => {
                            owners.remove(&id);
                            done
                        }
                        Err(e) => {
                            let Some((mailbox, kind)) = owners.remove(&e.id()) else { continue };
                            Done {
                                mailbox,
                                kind,
                                outcome: Outcome::Retry { after: None, error: format!("request task failed: {e}") },
                                reached: false,
                                took: Duration::ZERO,
                            }
                        }
                    };
                    self.finished(done);
                }
                _ = sleep_until(wake) => {}
                _ = sweep.tick(), if removing_until.is_none() => self.reconcile(),
            }
            unshown = true;
        }
        self.show();
    }

    /// Reads every mailbox of the cache, and forgets those no longer in it.
    fn resync(&mut self) {
        let now = self.cache.clock().now_secs();
        for mailbox in self.cache.mailboxes() {
            let want = self
                .cache
                .read(&mailbox, now)
                .and_then(|s| want_of(&s, self.config.publish_available));
            self.state.want(&mailbox, want);
        }
        let gone: Vec<Mailbox> = self
            .state
            .tracked()
            .filter(|m| !self.cache.contains(m))
            .cloned()
            .collect();
        for mailbox in gone {
            self.state.want(&mailbox, None);
        }
    }

    /// Compares every tracked presentity with the cache.
    fn reconcile(&mut self) {
        let now = self.cache.clock().now_secs();
        let tracked: Vec<Mailbox> = self.state.tracked().cloned().collect();
        for mailbox in tracked {
            let want = self
                .cache
                .read(&mailbox, now)
                .and_then(|s| want_of(&s, self.config.publish_available));
            self.state.want(&mailbox, want);
        }
    }

    /// The request for `publish`, as a task's future.
    fn send(&mut self, publish: Publish) -> impl Future<Output = Done> + Send + 'static {
        let presentity = self.config.presentity.apply(&publish.mailbox);
        let (tag, call_id) = self.ids.next();
        let request = document::request(
            &publish,
            &Identity {
                presentity: &presentity,
                tag: &tag,
                call_id: &call_id,
            },
            self.cache.now(),
            &self.zone,
        );
        let client = self.client.clone();
        let asked = publish.expires;
        let challenged_without_credentials = self.config.credentials.is_none();
        async move {
            let started = Instant::now();
            let result = client.request(request).await;
            let (outcome, reached) = outcome_of(result, asked, challenged_without_credentials);
            Done {
                mailbox: publish.mailbox,
                kind: publish.kind,
                outcome,
                reached,
                took: started.elapsed(),
            }
        }
    }

    fn finished(&mut self, done: Done) {
        let now = Instant::now();
        metrics::published(
            &self.config.name,
            done.kind.as_str(),
            done.outcome.label(),
            done.took,
        );
        let was_paused = self.state.paused_until().is_some_and(|t| t > now);
        let error = match &done.outcome {
            Outcome::Retry { error, .. } | Outcome::Refused { error } => Some(error.clone()),
            _ => None,
        };
        let refused = matches!(done.outcome, Outcome::Refused { .. });
        let accepted = matches!(done.outcome, Outcome::Accepted { .. });
        let previous_error = self.state.last_error().map(str::to_owned);
        self.state.answer(&done.mailbox, done.outcome, now);
        if let Some(until) = self
            .state
            .paused_until()
            .filter(|t| *t > now && !was_paused)
        {
            tracing::warn!(
                server = %self.config.name,
                error = error.as_deref().unwrap_or_default(),
                retry_in_ms = (until - now).as_millis() as u64,
                "SIP server failed; publishing paused"
            );
        } else if refused && previous_error != error {
            tracing::warn!(
                server = %self.config.name,
                mailbox = %done.mailbox,
                error = error.as_deref().unwrap_or_default(),
                "SIP server refused a publication; asked again in 5 minutes or when the state changes"
            );
        }
        self.tally.connected = done.reached;
        if accepted {
            self.tally.accepted += 1;
        } else if error.is_some() {
            self.tally.failed += 1;
        }
    }

    fn show(&mut self) {
        let counts = self.state.counts();
        metrics::counts(&self.config.name, counts);
        let retransmissions = self.client.retransmissions();
        metrics::retransmissions(&self.config.name, retransmissions);
        let now = Instant::now();
        let wall = self.cache.now();
        let retry_at = self
            .state
            .paused_until()
            .filter(|t| *t > now)
            .and_then(|t| {
                let wait = jiff::SignedDuration::try_from(t - now).ok()?;
                wall.checked_add(wait).ok().map(|t| t.to_string())
            });
        let last_error = self.state.last_error().map(str::to_owned);
        let expires = self.state.expires();
        let tally = self.tally;
        self.view.update(|v| {
            v.connected = tally.connected;
            v.accepted = tally.accepted;
            v.failed = tally.failed;
            v.retransmissions = retransmissions;
            v.publications = counts.held;
            v.in_flight = counts.in_flight;
            v.queued = counts.queued;
            v.last_error = last_error;
            v.retry_at = retry_at;
            v.expires_secs = expires;
        });
    }
}

/// Fresh From tags and Call-IDs: a random prefix per process and a counter.
pub(super) struct Ids {
    prefix: String,
    next: u64,
}

impl Ids {
    pub(super) fn new(seed: u64) -> Ids {
        Ids {
            prefix: format!("{seed:016x}"),
            next: 0,
        }
    }

    fn next(&mut self) -> (String, String) {
        self.next += 1;
        (
            format!("{}{:x}", &self.prefix[..8], self.next),
            format!("{}-{:x}@ews-presence", self.prefix, self.next),
        )
    }
}

/// What a PUBLISH's result means for the state machine, and whether the server
/// answered at all.
fn outcome_of(
    result: Result<Message, ClientError>,
    asked: u32,
    no_credentials: bool,
) -> (Outcome, bool) {
    let response = match result {
        Ok(response) => response,
        Err(e) => {
            return (
                Outcome::Retry {
                    after: None,
                    error: e.to_string(),
                },
                false,
            );
        }
    };
    let status = response.status().unwrap_or(500);
    let reason = match &response.start {
        sip::message::StartLine::Response { reason, .. } => reason.as_str(),
        sip::message::StartLine::Request { .. } => "",
    };
    let said = format!("{status} {reason}");
    let outcome = match status {
        200..=299 => match response.get("SIP-ETag") {
            Some(etag) => Outcome::Accepted {
                etag: etag.to_owned(),
                expires: response.seconds("Expires").unwrap_or(asked),
            },
            None if asked == 0 => Outcome::Accepted {
                etag: String::new(),
                expires: 0,
            },
            None => Outcome::Refused {
                error: format!("{said} without a SIP-ETag (RFC 3903 §6 requires one)"),
            },
        },
        412 => Outcome::UnknownEtag,
        423 => Outcome::TooBrief {
            min: response
                .seconds("Min-Expires")
                .unwrap_or(asked.saturating_mul(2)),
        },
        401 | 407 if no_credentials => Outcome::Retry {
            after: None,
            error: format!(
                "{said}: the server asks for digest authentication; set username and password_file"
            ),
        },
        401 | 407 => Outcome::Retry {
            after: None,
            error: format!("{said}: the server refused our digest credentials"),
        },
        408 | 500..=599 => Outcome::Retry {
            after: response
                .seconds("Retry-After")
                .map(|s| Duration::from_secs(u64::from(s))),
            error: said,
        },
        _ => Outcome::Refused { error: said },
    };
    (outcome, true)
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(text: &str) -> Result<Message, ClientError> {
        Ok(Message::parse(text.as_bytes()).unwrap())
    }

    #[test]
    fn answers_become_outcomes() {
        let (o, reached) = outcome_of(
            response("SIP/2.0 200 OK\r\nSIP-ETag: e1\r\nExpires: 3600\r\n\r\n"),
            7200,
            true,
        );
        assert_eq!(
            o,
            Outcome::Accepted {
                etag: "e1".into(),
                expires: 3600
            }
        );
        assert!(reached);
        let (o, _) = outcome_of(
            response("SIP/2.0 412 Conditional Request Failed\r\n\r\n"),
            600,
            true,
        );
        assert_eq!(o, Outcome::UnknownEtag);
        let (o, _) = outcome_of(
            response("SIP/2.0 423 Interval Too Brief\r\nMin-Expires: 1800\r\n\r\n"),
            600,
            true,
        );
        assert_eq!(o, Outcome::TooBrief { min: 1800 });
        let (o, _) = outcome_of(
            response("SIP/2.0 503 Service Unavailable\r\nRetry-After: 30\r\n\r\n"),
            600,
            true,
        );
        assert_eq!(
            o,
            Outcome::Retry {
                after: Some(Duration::from_secs(30)),
                error: "503 Service Unavailable".into()
            }
        );
        let (o, _) = outcome_of(response("SIP/2.0 401 Unauthorized\r\n\r\n"), 600, true);
        assert!(matches!(o, Outcome::Retry { error, .. } if error.contains("password_file")));
        let (o, _) = outcome_of(response("SIP/2.0 489 Bad Event\r\n\r\n"), 600, true);
        assert_eq!(
            o,
            Outcome::Refused {
                error: "489 Bad Event".into()
            }
        );
        let (o, _) = outcome_of(response("SIP/2.0 200 OK\r\n\r\n"), 600, true);
        assert!(
            matches!(o, Outcome::Refused { .. }),
            "a 200 without an ETag is no publication"
        );
        let (o, reached) = outcome_of(
            Err(ClientError::TimedOut {
                addr: "a".into(),
                secs: 32,
            }),
            600,
            true,
        );
        assert!(matches!(o, Outcome::Retry { .. }) && !reached);
    }
}

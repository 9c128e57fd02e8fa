//! Runs one gateway's refresh [state machine](super::state): feeds it what happens (a
//! wake, the horizon rolling, each read's outcome) and executes what it answers: sends
//! the reads (each a task of its own), hands what they read to the presence core,
//! records the latency and failure metrics, and logs a change of the gateway's health
//! once each way.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::{Id, JoinSet};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::RefreshQueue;
use super::port::ReadPort;
use super::state::{
    AutoReplySource, CalendarAnswer, Failure, Input, OofAnswer, Output, ProbeAnswer, TipsAnswer,
};
use crate::engine::Shared;
use crate::engine::metrics;

/// How long the loop sleeps when nothing is due (an input wakes it sooner).
const IDLE: Duration = Duration::from_secs(3600);

/// Runs the gateway's refreshes until `stop`.
pub async fn run(
    port: Arc<dyn ReadPort>,
    queue: Arc<RefreshQueue>,
    shared: Arc<Shared>,
    stop: CancellationToken,
) {
    let roll = (shared.presence.horizon / 4).max(Duration::from_secs(60));
    let mut roll_tick = tokio::time::interval_at(Instant::now() + roll, roll);
    let mut driver = Driver {
        port,
        queue,
        shared,
        stop,
        work: JoinSet::new(),
        fallbacks: HashMap::new(),
        wake_at: None,
    };
    // Nothing is sent before something is to be read (the first change or full read
    // wakes the loop).
    let mut outputs = Vec::new();
    loop {
        for output in outputs {
            driver.execute(output);
        }
        let wake_at = driver.wake_at.unwrap_or_else(|| Instant::now() + IDLE);
        let input = tokio::select! {
            biased;
            _ = driver.stop.cancelled() => break,
            Some(done) = driver.work.join_next_with_id(), if !driver.work.is_empty() => {
                driver.finished(done)
            }
            _ = driver.queue.wake.notified() => Input::Dispatch,
            _ = roll_tick.tick() => Input::RollHorizon,
            _ = tokio::time::sleep_until(wake_at) => Input::Dispatch,
        };
        outputs = driver.queue.step(Instant::now(), input);
    }
    driver.work.shutdown().await;
}

struct Driver {
    port: Arc<dyn ReadPort>,
    queue: Arc<RefreshQueue>,
    shared: Arc<Shared>,
    stop: CancellationToken,
    /// The reads in flight; each ends with what to tell the state machine.
    work: JoinSet<Input>,
    /// What to tell the state machine if a read's task ends without an answer, so that
    /// its slot frees and its mailboxes are queued again.
    fallbacks: HashMap<Id, Input>,
    wake_at: Option<Instant>,
}

impl Driver {
    /// What a finished read tells the state machine.
    fn finished(&mut self, done: Result<(Id, Input), tokio::task::JoinError>) -> Input {
        match done {
            Ok((id, input)) => {
                self.fallbacks.remove(&id);
                input
            }
            Err(error) => {
                tracing::error!(gateway = %self.port.gateway_name(), %error, "a read's task failed; its mailboxes are queued again");
                self.fallbacks
                    .remove(&error.id())
                    .unwrap_or(Input::Dispatch)
            }
        }
    }

    fn spawn(&mut self, fallback: Input, read: impl Future<Output = Input> + Send + 'static) {
        let handle = self.work.spawn(read);
        self.fallbacks.insert(handle.id(), fallback);
    }

    fn execute(&mut self, output: Output) {
        let port = self.port.clone();
        let name = port.gateway_name();
        let names = self.queue.names();
        let lost = || Failure::without_wait("the read stopped without an answer".to_owned());
        let (reader, clock) = (port.clone(), self.queue.clock);
        match output {
            Output::ReadCalendar(batch) => {
                let horizon = self.shared.presence.horizon;
                let fallback = Input::Calendar {
                    batch: batch.clone(),
                    answer: CalendarAnswer::Failed(lost()),
                };
                let read = reader.calendar(clock, horizon, batch.clone());
                self.spawn(fallback, async move {
                    let answer = read.await;
                    Input::Calendar { batch, answer }
                });
            }
            Output::ReadTips(mailboxes) => {
                let shared = self.shared.clone();
                let fallback = Input::Tips {
                    mailboxes: mailboxes.clone(),
                    answer: TipsAnswer::Failed(lost()),
                };
                let read = reader.tips(clock, shared, mailboxes.clone());
                self.spawn(fallback, async move {
                    let answer = read.await;
                    Input::Tips { mailboxes, answer }
                });
            }
            Output::ReadOof(mailbox) => {
                let fallback = Input::Oof {
                    mailbox: mailbox.clone(),
                    answer: OofAnswer::Failed(lost()),
                };
                let read = reader.oof(clock, mailbox.clone());
                self.spawn(fallback, async move {
                    let answer = read.await;
                    Input::Oof { mailbox, answer }
                });
            }
            Output::Probe { anchor } => {
                let stop = self.stop.clone();
                let fallback = Input::Probed(ProbeAnswer::Unanswered(lost().problem));
                let read = reader.probe(clock, anchor, stop);
                self.spawn(fallback, async move { Input::Probed(read.await) });
            }
            Output::Apply(mailbox, update) => self.shared.updates.apply(&mailbox, update),
            Output::Served { waited } => metrics::event_to_state(waited),
            Output::Failed {
                read,
                mailboxes,
                problem,
                retry_in,
                loud,
            } => {
                metrics::refresh_failed(name, names.of(read), mailboxes);
                if loud {
                    tracing::warn!(
                        gateway = %name,
                        operation = names.of(read),
                        mailboxes,
                        retry_in_ms = retry_in.as_millis() as u64,
                        error = %problem,
                        "refreshes are failing; the mailboxes stay queued and are retried with backoff"
                    );
                } else {
                    tracing::debug!(gateway = %name, operation = names.of(read), mailboxes, error = %problem, "refresh failed again");
                }
            }
            Output::Recovered(read) => {
                tracing::info!(gateway = %name, operation = names.of(read), "refreshes work again");
            }
            Output::SourceChanged(source) => match &source {
                AutoReplySource::MailTips { batch } => {
                    tracing::info!(gateway = %name, batch, "automatic replies are read with GetMailTips");
                }
                AutoReplySource::OneByOne { why } => {
                    tracing::warn!(gateway = %name, reason = %why, "automatic replies are read one mailbox at a time with GetUserOofSettings");
                }
                AutoReplySource::Exact { how, batch } => {
                    tracing::info!(gateway = %name, batch, "automatic replies are read as {how}");
                }
                AutoReplySource::Probing => {}
            },
            Output::WakeAt(at) => self.wake_at = at,
        }
    }
}

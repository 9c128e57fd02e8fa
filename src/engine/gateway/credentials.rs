//! The gate every request to one gateway passes: once the server refuses our
//! credentials (HTTP 401/403), no request goes out until the slow retry time, and then
//! exactly one (the probe) does; the others wait for its answer. An account lockout
//! policy therefore sees at most one failed login per back-off step, whatever the
//! number of mailboxes, streams and refreshes. A request that may not go out fails
//! at once with the refusal and the time of the next attempt (so that its mailboxes
//! show why they are not served instead of waiting in silence); one that arrives
//! while the probe is in flight waits for the probe's answer. The refusal is logged
//! once at `warn`, the recovery once at `info`; [`CredentialGate::watch`] tells
//! whoever backed off that the credentials are accepted again.

use std::sync::Mutex;
use std::time::Duration;

use jiff::Timestamp;
use tokio::sync::{Notify, watch};
use tokio::time::Instant;

use crate::engine::backoff::Backoff;
use common::sync::lock;
use ews::error::EwsError;

/// First wait after the credentials were refused.
pub const REFUSED_MIN: Duration = Duration::from_secs(60);
/// Longest wait between probes.
pub const REFUSED_MAX: Duration = Duration::from_secs(900);

#[derive(Debug)]
enum State {
    /// Requests go out.
    Open,
    /// Refused: nothing goes out before `retry_at`; then one probe.
    Refused {
        retry_at: Instant,
        probing: bool,
        since: Instant,
        /// The refusal, as the server's answer was described.
        cause: String,
    },
}

/// What a caller may do now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    /// Send the request.
    Go,
    /// Send it: it is the one probe of the credentials; report its outcome.
    Probe,
    /// The probe is in flight: wait for its answer (or this long).
    Wait(Duration),
    /// Refused: do not send before this long has passed.
    Refused {
        /// Until the next probe.
        retry_in: Duration,
        /// The refusal.
        cause: String,
    },
}

/// The gate is closed: why, and how long until the next attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Closed {
    /// The refusal and when the next attempt goes.
    pub message: String,
    /// Until the next probe.
    pub retry_in: Duration,
}

/// How a request that passed the gate ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The server answered: the credentials were accepted.
    Answered,
    /// The credentials were refused.
    Refused {
        /// The refusal, for the next callers.
        cause: String,
        /// The whole error, for the log.
        error: String,
    },
    /// The server was not reached: nothing is known of the credentials.
    Unreached,
}

/// One gateway's credential gate.
#[derive(Debug)]
pub struct CredentialGate {
    gateway: String,
    state: Mutex<(State, Backoff)>,
    changed: Notify,
    /// `true` while refused.
    refused_tx: watch::Sender<bool>,
}

impl CredentialGate {
    /// An open gate for `gateway` (named in its log lines).
    pub fn new(gateway: &str) -> CredentialGate {
        // Constant bounds that satisfy the checks.
        let backoff =
            Backoff::new(REFUSED_MIN, REFUSED_MAX).unwrap_or_else(|e| unreachable!("{e}"));
        CredentialGate {
            gateway: gateway.to_owned(),
            state: Mutex::new((State::Open, backoff)),
            changed: Notify::new(),
            refused_tx: watch::channel(false).0,
        }
    }

    /// Whether a request may go out now.
    pub fn admit(&self, now: Instant) -> Admission {
        let mut guard = lock(&self.state);
        match &mut guard.0 {
            State::Open => Admission::Go,
            State::Refused {
                retry_at,
                probing,
                cause,
                ..
            } => {
                if *probing {
                    // Wait for the probe's answer (it wakes us); look again now and then.
                    Admission::Wait(REFUSED_MIN)
                } else if now >= *retry_at {
                    *probing = true;
                    Admission::Probe
                } else {
                    Admission::Refused {
                        retry_in: *retry_at - now,
                        cause: cause.clone(),
                    }
                }
            }
        }
    }

    /// Whether a request may go out: `Ok(true)` when it is the probe, `Ok(false)` for
    /// an ordinary request, and the refusal with the time of the next attempt while
    /// the gate is closed. Waits only while the probe is in flight.
    pub async fn pass(&self) -> Result<bool, EwsError> {
        self.pass_any()
            .await
            .map_err(|closed| EwsError::CredentialBackoff {
                message: closed.message,
                retry_in: closed.retry_in,
            })
    }

    /// [`CredentialGate::pass`] for any protocol: the refusal as [`Closed`].
    pub async fn pass_any(&self) -> Result<bool, Closed> {
        loop {
            let notified = self.changed.notified();
            match self.admit(Instant::now()) {
                Admission::Go => return Ok(false),
                Admission::Probe => return Ok(true),
                Admission::Refused { retry_in, cause } => {
                    let at = Timestamp::now()
                        .checked_add(retry_in)
                        .map(|t| t.round(jiff::Unit::Second).unwrap_or(t).to_string())
                        .unwrap_or_else(|_| format!("in {} s", retry_in.as_secs()));
                    return Err(Closed {
                        message: format!(
                            "{cause}; waiting for the credential back-off, next attempt at {at}"
                        ),
                        retry_in,
                    });
                }
                Admission::Wait(wait) => {
                    tokio::select! {
                        _ = notified => {}
                        _ = tokio::time::sleep(wait) => {}
                    }
                }
            }
        }
    }

    /// How an EWS request that passed the gate ended: refused credentials close the
    /// gate (or keep it closed, one step longer); any answer from the server opens it.
    pub fn outcome(&self, result: Result<(), &EwsError>, now: Instant) {
        let verdict = match result {
            Ok(()) => Verdict::Answered,
            Err(e) if e.is_refused_credentials() => Verdict::Refused {
                cause: e.cause(),
                error: e.to_string(),
            },
            // A reply of any kind (not a failure to reach the server) proves the
            // credentials were accepted.
            Err(
                EwsError::Response(_)
                | EwsError::Fault(_)
                | EwsError::Protocol(_)
                | EwsError::Decode(_)
                | EwsError::Http { .. },
            ) => Verdict::Answered,
            Err(_) => Verdict::Unreached,
        };
        self.record(verdict, now);
    }

    /// How a request that passed the gate ended, in any protocol's words.
    pub fn record(&self, verdict: Verdict, now: Instant) {
        let mut guard = lock(&self.state);
        let (state, backoff) = &mut *guard;
        match verdict {
            Verdict::Refused { cause, error } => {
                if let State::Refused { probing: false, .. } = state {
                    // A request that went out before the gate closed: the step it would
                    // lengthen was already taken by the refusal that closed the gate.
                    return;
                }
                let wait = backoff.next_delay();
                let since = match state {
                    State::Refused { since, .. } => *since,
                    State::Open => {
                        tracing::warn!(
                            gateway = %self.gateway,
                            %error,
                            retry_in_s = wait.as_secs(),
                            "the server refused our credentials; one request will try them again per back-off step"
                        );
                        now
                    }
                };
                *state = State::Refused {
                    retry_at: now + wait,
                    probing: false,
                    since,
                    cause,
                };
                self.refused_tx.send_replace(true);
            }
            Verdict::Answered => {
                if let State::Refused { since, .. } = state {
                    tracing::info!(
                        gateway = %self.gateway,
                        after_s = now.saturating_duration_since(*since).as_secs(),
                        "the server accepts our credentials again"
                    );
                }
                *state = State::Open;
                backoff.reset();
                self.refused_tx.send_replace(false);
            }
            Verdict::Unreached => {
                if let State::Refused { probing, .. } = state {
                    // The probe did not reach the server: it proved nothing; another
                    // may try.
                    *probing = false;
                }
            }
        }
        drop(guard);
        self.changed.notify_waiters();
    }

    /// Whether the gate is closed now.
    pub fn refused(&self) -> bool {
        matches!(lock(&self.state).0, State::Refused { .. })
    }

    /// Follows the gate: `true` while the credentials are refused.
    pub fn watch(&self) -> watch::Receiver<bool> {
        self.refused_tx.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unauthorized() -> EwsError {
        EwsError::Http { status: 401 }
    }

    #[test]
    fn one_probe_per_step_after_a_refusal() {
        let gate = CredentialGate::new("gw");
        let t0 = Instant::now();
        assert_eq!(gate.admit(t0), Admission::Go);
        gate.outcome(Err(&unauthorized()), t0);
        assert!(gate.refused());
        let Admission::Refused { retry_in: wait, .. } = gate.admit(t0) else {
            panic!("closed after a refusal")
        };
        assert!(wait >= REFUSED_MIN.mul_f64(0.75) && wait <= REFUSED_MIN.mul_f64(1.25));
        let later = t0 + wait;
        assert_eq!(gate.admit(later), Admission::Probe);
        assert!(
            matches!(gate.admit(later), Admission::Wait(_)),
            "only one probe at a time"
        );
        // Refused again: the next step is longer.
        gate.outcome(Err(&unauthorized()), later);
        let Admission::Refused {
            retry_in: second, ..
        } = gate.admit(later)
        else {
            panic!()
        };
        assert!(second > wait, "{second:?} after {wait:?}");
        // A probe that could not reach the server lets another try.
        let then = later + second;
        assert_eq!(gate.admit(then), Admission::Probe);
        gate.outcome(Err(&EwsError::Timeout(Duration::from_secs(1))), then);
        assert_eq!(gate.admit(then), Admission::Probe);
        // Accepted: open again.
        gate.outcome(Ok(()), then);
        assert_eq!(gate.admit(then), Admission::Go);
        assert!(!gate.refused());
    }

    #[tokio::test(start_paused = true)]
    async fn waiters_pass_when_the_probe_succeeds() {
        let gate = std::sync::Arc::new(CredentialGate::new("gw"));
        gate.outcome(Err(&unauthorized()), Instant::now());
        tokio::time::advance(REFUSED_MAX).await;
        assert!(
            gate.pass().await.unwrap(),
            "the first caller after the wait probes"
        );
        let waiter = {
            let gate = gate.clone();
            tokio::spawn(async move { gate.pass().await })
        };
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished(), "waits for the probe's answer");
        gate.outcome(Ok(()), Instant::now());
        assert!(
            !waiter.await.unwrap().unwrap(),
            "then goes as an ordinary request"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_closed_gate_fails_at_once_with_the_refusal_and_the_next_attempt() {
        let gate = CredentialGate::new("gw");
        let mut refused = gate.watch();
        let error = EwsError::Unauthorized(
            "credentials for svc@example.test refused (NTLM, HTTP 401): wrong password".into(),
        );
        gate.outcome(Err(&error), Instant::now());
        assert!(*refused.borrow_and_update());
        let err = gate.pass().await.expect_err("refused without a request");
        assert!(err.is_refused_credentials());
        let text = err.cause();
        assert!(
            text.starts_with("credentials for svc@example.test refused (NTLM, HTTP 401)")
                && text.contains("waiting for the credential back-off, next attempt at "),
            "{text}"
        );
        // A request that went out before the gate closed, refused too, does not
        // lengthen the step.
        let Admission::Refused {
            retry_in: before, ..
        } = gate.admit(Instant::now())
        else {
            panic!("closed")
        };
        gate.outcome(Err(&error), Instant::now());
        let Admission::Refused {
            retry_in: after, ..
        } = gate.admit(Instant::now())
        else {
            panic!("closed")
        };
        assert_eq!(before, after);
        // Accepted again: watchers hear it.
        tokio::time::advance(before).await;
        assert!(gate.pass().await.unwrap(), "the probe");
        gate.outcome(Ok(()), Instant::now());
        assert!(refused.has_changed().unwrap());
        assert!(!*refused.borrow_and_update());
    }
}

//! Table tests of [`GroupState::on`], one or more per rule in the module doc of
//! [`super::state`]. Jitter is pinned (no spread), so every wait is exact.

use std::time::Duration;

use tokio::time::Instant;

use super::state::*;
use crate::engine::backoff::{Backoff, Random};
use common::mailbox::Mailbox;
use ews::error::EwsError;
use ews::response::{ResponseClass, Status};
use ews::response_code::ResponseCode;
use ews::types::SubscriptionId;

/// The middle of the jitter range: no spread.
struct NoJitter;
impl Random for NoJitter {
    fn next_u64(&mut self) -> u64 {
        250
    }
}

const MS: fn(u64) -> Duration = Duration::from_millis;

use common::mailbox::numbered as m;

fn id_of(n: usize) -> SubscriptionId {
    SubscriptionId::new(format!("id-user{n}")).unwrap()
}

/// Subscription `n` as held: its id and mailbox.
fn held(n: usize) -> (SubscriptionId, Mailbox) {
    (id_of(n), m(n))
}

fn n_of(mailbox: &Mailbox) -> usize {
    mailbox.as_str()["user".len()..mailbox.as_str().find('@').unwrap()]
        .parse()
        .unwrap()
}

/// The members wanted: `user{n}` for each `n`.
fn members(numbers: &[usize]) -> Input {
    Input::Members(numbers.iter().map(|n| m(*n)).collect())
}

fn group(members: &[usize]) -> GroupState {
    GroupState::new(
        members.iter().map(|n| m(*n)),
        Backoff::with_random(MS(250), Duration::from_secs(30), Box::new(NoJitter)).unwrap(),
        Backoff::with_random(
            Duration::from_secs(60),
            Duration::from_secs(900),
            Box::new(NoJitter),
        )
        .unwrap(),
    )
    .unwrap()
}

fn status(code: ResponseCode) -> Status {
    Status {
        class: ResponseClass::Error,
        code,
        ..Status::success()
    }
}

/// Mailbox `n`'s Subscribe answered with the error `code`.
fn refused(n: usize, code: ResponseCode) -> Input {
    Input::Subscribed {
        mailbox: m(n),
        result: Err(EwsError::Response(Box::new(status(code)))),
    }
}

/// The outputs but the status and the health lines (their own tests look at them).
fn without_status(outputs: Vec<Output>) -> Vec<Output> {
    outputs
        .into_iter()
        .filter(|o| !matches!(o, Output::Status(_) | Output::Health(_)))
        .collect()
}

/// The outputs but the status.
fn told(outputs: Vec<Output>) -> Vec<Output> {
    outputs
        .into_iter()
        .filter(|o| !matches!(o, Output::Status(_)))
        .collect()
}

/// Answers every Subscribe with `id-userN` until the stream is asked for; returns the
/// outputs of the last step.
fn subscribe_all(state: &mut GroupState, now: Instant, mut outputs: Vec<Output>) -> Vec<Output> {
    loop {
        let next = outputs.iter().find_map(|o| match o {
            Output::Subscribe(mailbox) => Some(mailbox.clone()),
            _ => None,
        });
        let Some(mailbox) = next else {
            return outputs;
        };
        let id = id_of(n_of(&mailbox));
        outputs = state.on(
            now,
            Input::Subscribed {
                mailbox,
                result: Ok((id, Some("X-BackEndOverrideCookie=be1~1".into()))),
            },
        );
    }
}

/// A group of `members` streaming since `now`, with a healthy first frame.
fn streaming(members: &[usize], now: Instant) -> GroupState {
    let mut state = group(members);
    let outputs = state.on(now, Input::Start);
    subscribe_all(&mut state, now, outputs);
    state.on(now, Input::StreamOpened);
    state.on(now, Input::Frame(Frame::default()));
    assert_eq!(state.status().phase, "streaming");
    assert!(state.status().stream_open);
    state
}

fn waits(outputs: &[Output]) -> Vec<Instant> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::SleepUntil(at) => Some(*at),
            _ => None,
        })
        .collect()
}

#[test]
fn start_subscribes_each_member_then_opens_one_stream() {
    let now = Instant::now();
    let mut state = group(&[2, 1, 3]);
    assert_eq!(state.anchor(), &m(1), "the alphabetically first member");
    let first = without_status(state.on(now, Input::Start));
    assert_eq!(first, [Output::Subscribe(m(1))]);
    let out = without_status(state.on(
        now,
        Input::Subscribed {
            mailbox: m(1),
            result: Ok((id_of(1), Some("X-BackEndOverrideCookie=be1~1".into()))),
        },
    ));
    assert_eq!(
        out,
        [
            Output::Subscribed(m(1)),
            Output::Refresh {
                mailbox: m(1),
                full: true
            },
            Output::Subscribe(m(2)),
        ]
    );
    assert_eq!(state.cookie(), Some("X-BackEndOverrideCookie=be1~1"));
    let out = subscribe_all(&mut state, now, out);
    assert_eq!(
        without_status(out).last(),
        Some(&Output::OpenStream(vec![id_of(1), id_of(2), id_of(3)]))
    );
    assert_eq!(state.status().subscribed, 3);
}

#[test]
fn closed_reopens_at_once_with_the_same_ids() {
    let t0 = Instant::now();
    let mut state = streaming(&[1, 2], t0);
    let later = t0 + Duration::from_secs(1800);
    let out = without_status(state.on(
        later,
        Input::Frame(Frame {
            closed: true,
            ..Frame::default()
        }),
    ));
    assert_eq!(
        out,
        [
            Output::CloseStream,
            Output::Count(Count::Reconnect("closed")),
            Output::OpenStream(vec![id_of(1), id_of(2)]),
        ]
    );
}

#[test]
fn a_stream_closed_at_once_backs_off_instead_of_looping() {
    let t0 = Instant::now();
    let mut state = streaming(&[1], t0);
    let mut now = t0 + Duration::from_secs(60);
    // Reopen after a normal close, then the server closes every stream at once.
    state.on(
        now,
        Input::Frame(Frame {
            closed: true,
            ..Frame::default()
        }),
    );
    let mut expected = MS(250);
    for _ in 0..4 {
        let out = state.on(
            now,
            Input::Frame(Frame {
                closed: true,
                ..Frame::default()
            }),
        );
        assert!(out.contains(&Output::Count(Count::Reconnect("closed-early"))));
        assert_eq!(waits(&out), [now + expected]);
        now += expected;
        let out = state.on(now, Input::Timer);
        assert_eq!(without_status(out), [Output::OpenStream(vec![id_of(1)])]);
        expected *= 2;
    }
}

#[test]
fn silence_a_dropped_connection_or_an_early_end_reconnect_with_backoff_and_the_same_ids() {
    for (end, reason, waiting) in [
        (
            StreamEnd::Silent {
                inside_frame: false,
            },
            "silent",
            WaitReason::Stream,
        ),
        (StreamEnd::EndedEarly, "ended", WaitReason::Stream),
        (
            StreamEnd::Failed(EwsError::Transport("connection reset".into())),
            "error",
            WaitReason::Unreachable,
        ),
    ] {
        let now = Instant::now();
        let mut state = streaming(&[1, 2], now);
        let out = state.on(now, Input::StreamEnded(end));
        assert!(
            out.contains(&Output::Count(Count::Reconnect(reason))),
            "{out:?}"
        );
        assert_eq!(waits(&out), [now + MS(250)], "{reason}");
        assert!(
            !out.iter().any(|o| matches!(
                o,
                Output::Refresh { .. } | Output::Lost(_) | Output::Unsubscribe(_)
            )),
            "{reason}: not a gap, no resync: {out:?}"
        );
        assert_eq!(state.status().waiting, Some(waiting), "{reason}");
        let out = without_status(state.on(now + MS(250), Input::Timer));
        assert_eq!(out, [Output::OpenStream(vec![id_of(1), id_of(2)])]);
    }
}

/// Silence after part of a frame is a cut inside it (a gap: refresh every member);
/// silence between frames is not.
#[test]
fn silence_inside_a_frame_is_a_cut_and_refreshes_every_member() {
    let now = Instant::now();
    let mut state = streaming(&[1, 2], now);
    let out = state.on(
        now,
        Input::StreamEnded(StreamEnd::Silent { inside_frame: true }),
    );
    assert!(
        out.contains(&Output::Count(Count::Reconnect("cut-off"))),
        "{out:?}"
    );
    for n in [1, 2] {
        assert!(
            out.contains(&Output::Refresh {
                mailbox: m(n),
                full: false
            }),
            "{out:?}"
        );
    }
}

#[test]
fn an_undecodable_stream_reconnects_and_refreshes_every_member() {
    let now = Instant::now();
    let mut state = streaming(&[1, 2], now);
    let out = state.on(
        now,
        Input::StreamEnded(StreamEnd::Undecodable("bad tag".into())),
    );
    assert!(out.contains(&Output::Count(Count::Reconnect("undecodable"))));
    for n in [1, 2] {
        assert!(out.contains(&Output::Refresh {
            mailbox: m(n),
            full: false
        }));
    }
    assert!(
        out.iter()
            .any(|o| matches!(o, Output::Report { message: r, .. } if r.contains("bad tag")))
    );
    assert_eq!(waits(&out), [now + MS(250)]);
}

#[test]
fn changes_refresh_their_mailbox_and_nothing_else() {
    let now = Instant::now();
    let mut state = streaming(&[1, 2, 3], now);
    let out = without_status(state.on(
        now,
        Input::Frame(Frame {
            changed: vec![id_of(2), SubscriptionId::new("not-ours").unwrap()],
            ..Frame::default()
        }),
    ));
    assert_eq!(
        out,
        [Output::Refresh {
            mailbox: m(2),
            full: false
        }]
    );
}

#[test]
fn lost_ids_are_unsubscribed_kept_serving_and_resubscribed_after_a_backoff() {
    let now = Instant::now();
    let mut state = streaming(&[1, 2, 3], now);
    let out = state.on(
        now,
        Input::Frame(Frame {
            error_ids: vec![id_of(2)],
            error: Some(EwsError::Response(Box::new(status(
                ResponseCode::ErrorSubscriptionNotFound,
            )))),
            closed: true,
            ..Frame::default()
        }),
    );
    let plain = without_status(out.clone());
    assert!(plain.contains(&Output::Lost(m(2))));
    assert!(plain.contains(&Output::CloseStream));
    assert!(plain.contains(&Output::Unsubscribe(vec![held(2)])));
    assert!(plain.contains(&Output::Count(Count::Resubscribe("lost", 1))));
    assert!(
        !plain
            .iter()
            .any(|o| matches!(o, Output::Subscribe(_) | Output::Report { .. })),
        "no Subscribe before the wait; an ordinary loss is no error: {plain:?}"
    );
    assert_eq!(waits(&out), [now + MS(250)]);
    assert_eq!(state.status().waiting, Some(WaitReason::Resubscribe));
    assert_eq!(state.status().subscribed, 2);
    let out = without_status(state.on(now + MS(250), Input::Timer));
    assert_eq!(out, [Output::Subscribe(m(2))]);
}

#[test]
fn ids_rejected_right_after_creation_are_reported_and_retried_ever_slower() {
    // A server that reports every new id as lost at once (seen with gromox): each
    // cycle waits twice as long as the one before, up to the cap, and is reported.
    let start = Instant::now();
    let mut now = start;
    let mut state = group(&[1]);
    let mut outputs = state.on(now, Input::Start);
    let mut cycles = 0;
    let mut expected = MS(250);
    let mut subscribes = 0;
    while now.duration_since(start) < Duration::from_secs(100) {
        outputs = subscribe_all(&mut state, now, outputs);
        subscribes += 1;
        assert!(
            outputs.contains(&Output::OpenStream(vec![id_of(1)])),
            "{outputs:?}"
        );
        state.on(now, Input::StreamOpened);
        let out = state.on(
            now,
            Input::Frame(Frame {
                error_ids: vec![id_of(1)],
                error: Some(EwsError::Response(Box::new(status(
                    ResponseCode::ErrorSubscriptionNotFound,
                )))),
                closed: true,
                ..Frame::default()
            }),
        );
        assert!(
            out.iter().any(
                |o| matches!(o, Output::Report { message: r, .. } if r.contains("just created"))
            ),
            "{out:?}"
        );
        assert!(
            out.contains(&Output::Unsubscribe(vec![held(1)])),
            "old ids are unsubscribed"
        );
        assert_eq!(waits(&out), [now + expected], "cycle {cycles}");
        assert!(state.status().last_error.is_some());
        now += expected;
        expected = (expected * 2).min(Duration::from_secs(30));
        outputs = state.on(now, Input::Timer);
        cycles += 1;
    }
    // 250 ms doubling to 30 s: 9 cycles in the first 100 s, not thousands.
    assert!(subscribes <= 10, "{subscribes} Subscribes in 100 s");
}

#[test]
fn a_healthy_frame_resets_the_backoff() {
    let t0 = Instant::now();
    let mut state = streaming(&[1], t0);
    let mut now = t0;
    // A first outage: five failures in a row (answers, so the ids stay trusted).
    for _ in 0..5 {
        let out = state.on(
            now,
            Input::StreamEnded(StreamEnd::Failed(EwsError::Http { status: 502 })),
        );
        now = waits(&out)[0];
        state.on(now, Input::Timer);
    }
    // The stream opens and works...
    state.on(now, Input::StreamOpened);
    state.on(now, Input::Frame(Frame::default()));
    assert_eq!(state.status().last_error, None);
    // ...so the first wait of the next outage is the shortest again.
    let out = state.on(
        now,
        Input::StreamEnded(StreamEnd::Failed(EwsError::Transport("refused".into()))),
    );
    assert_eq!(waits(&out), [now + MS(250)]);
}

#[test]
fn a_stream_that_opens_but_fails_before_any_frame_keeps_backing_off() {
    let t0 = Instant::now();
    let mut state = streaming(&[1], t0);
    let mut now = t0;
    let mut expected = MS(250);
    for _ in 0..4 {
        state.on(now, Input::StreamOpened);
        let out = state.on(now, Input::StreamEnded(StreamEnd::EndedEarly));
        assert_eq!(waits(&out), [now + expected]);
        now += expected;
        expected *= 2;
        state.on(now, Input::Timer);
    }
}

#[test]
fn every_id_lost_at_once_resubscribes_every_member() {
    let now = Instant::now();
    let mut state = streaming(&[1, 2], now);
    let out = state.on(
        now,
        Input::StreamEnded(StreamEnd::Failed(EwsError::Response(Box::new(status(
            ResponseCode::ErrorInvalidSubscription,
        ))))),
    );
    assert!(out.contains(&Output::Lost(m(1))) && out.contains(&Output::Lost(m(2))));
    assert_eq!(state.status().subscribed, 0);
    assert_eq!(state.status().waiting, Some(WaitReason::Resubscribe));
    let out = without_status(state.on(now + MS(250), Input::Timer));
    assert_eq!(out, [Output::Subscribe(m(1))]);
}

#[test]
fn missed_events_refresh_in_full_and_keep_the_subscriptions() {
    let now = Instant::now();
    let mut state = streaming(&[1, 2], now);
    let out = without_status(state.on(
        now,
        Input::Frame(Frame {
            error_ids: vec![id_of(1)],
            error: Some(EwsError::Response(Box::new(status(
                ResponseCode::ErrorMissedNotificationEvents,
            )))),
            ..Frame::default()
        }),
    ));
    assert_eq!(
        out,
        [Output::Refresh {
            mailbox: m(1),
            full: true
        }]
    );
    assert_eq!(state.status().subscribed, 2);
    assert!(state.status().stream_open, "the stream goes on");
}

#[test]
fn throttling_waits_what_the_server_asked() {
    let now = Instant::now();
    let mut state = streaming(&[1], now);
    let busy = Status {
        back_off_ms: Some(1500),
        ..status(ResponseCode::ErrorServerBusy)
    };
    let out = state.on(
        now,
        Input::Frame(Frame {
            error: Some(EwsError::Response(Box::new(busy))),
            ..Frame::default()
        }),
    );
    assert!(out.contains(&Output::Count(Count::Throttled(MS(1500)))));
    assert!(out.contains(&Output::Count(Count::Reconnect("throttled"))));
    assert_eq!(waits(&out), [now + MS(1500)]);
    assert_eq!(state.status().waiting, Some(WaitReason::Throttled));
    // Throttling while subscribing too.
    let mut state = group(&[1]);
    state.on(now, Input::Start);
    let out = state.on(
        now,
        Input::Subscribed {
            mailbox: m(1),
            result: Err(EwsError::Unavailable {
                retry_after: Some(Duration::from_secs(5)),
            }),
        },
    );
    assert_eq!(state.status().waiting, Some(WaitReason::Throttled));
    assert_eq!(waits(&out).len(), 1);
}

/// Refused credentials: the gateway's credential gate alone paces logins. A fresh
/// refusal (which has just closed the gate) tries again at once, without a wait of
/// the group's own; the gate holds that attempt back and says when the next login may
/// go out, and the group waits exactly that.
#[test]
fn refused_credentials_wait_what_the_credential_gate_says() {
    let now = Instant::now();
    let mut state = group(&[1, 2, 3]);
    state.on(now, Input::Start);
    let out = state.on(
        now,
        Input::Subscribed {
            mailbox: m(1),
            result: Err(EwsError::Http { status: 401 }),
        },
    );
    assert!(
        out.iter()
            .any(|o| matches!(o, Output::Report { message: r, .. } if r.contains("HTTP 401")))
    );
    assert_eq!(waits(&out), [now], "no wait of the group's own");
    assert_eq!(state.status().waiting, Some(WaitReason::Credentials));
    let mut t = now;
    for retry_in in [60, 120, 240] {
        let out = without_status(state.on(t, Input::Timer));
        assert_eq!(out, [Output::Subscribe(m(1))], "one attempt");
        let retry_in = Duration::from_secs(retry_in);
        let out = state.on(
            t,
            Input::Subscribed {
                mailbox: m(1),
                result: Err(EwsError::CredentialBackoff {
                    message: "credentials for svc@example.test refused (HTTP 401); waiting for the credential back-off".into(),
                    retry_in,
                }),
            },
        );
        assert_eq!(waits(&out), [t + retry_in], "what the gate said");
        assert_eq!(state.status().waiting, Some(WaitReason::Credentials));
        assert!(without_status(state.on(t + retry_in / 2, Input::Timer)).is_empty());
        t += retry_in;
    }
}

/// A certificate that does not verify has no gate: the group waits on its own slow
/// backoff, one handshake per step.
#[test]
fn a_refused_certificate_waits_on_the_slow_backoff_one_attempt_per_step() {
    let mut now = Instant::now();
    let mut state = group(&[1, 2, 3]);
    let mut outputs = state.on(now, Input::Start);
    for expected in [60, 120, 240, 480, 900, 900] {
        let attempts: Vec<&Output> = outputs
            .iter()
            .filter(|o| matches!(o, Output::Subscribe(_)))
            .collect();
        assert_eq!(attempts.len(), 1, "one attempt per step: {outputs:?}");
        let out = state.on(
            now,
            Input::Subscribed {
                mailbox: m(1),
                result: Err(EwsError::Tls("unknown issuer".into())),
            },
        );
        assert_eq!(waits(&out), [now + Duration::from_secs(expected)]);
        assert_eq!(state.status().waiting, Some(WaitReason::Credentials));
        now += Duration::from_secs(expected);
        outputs = state.on(now, Input::Timer);
    }
}

#[test]
fn a_refused_mailbox_is_reported_and_the_others_go_on() {
    let now = Instant::now();
    let mut state = group(&[1, 2]);
    state.on(now, Input::Start);
    let out = without_status(state.on(now, refused(1, ResponseCode::ErrorNonExistentMailbox)));
    assert!(
        matches!(&out[0], Output::Problem(mb, Some(p)) if *mb == m(1) && p.contains("ErrorNonExistentMailbox"))
    );
    assert!(out.contains(&Output::Subscribe(m(2))), "{out:?}");
    let out = subscribe_all(&mut state, now, out);
    assert!(out.contains(&Output::OpenStream(vec![id_of(2)])));
    assert_eq!(state.status().refused, 1);
    // Retried after REFUSED_RETRY, and cleared when it works.
    state.on(now, Input::StreamOpened);
    let later = now + REFUSED_RETRY;
    let out = without_status(state.on(
        later,
        Input::Frame(Frame {
            closed: true,
            ..Frame::default()
        }),
    ));
    assert!(out.contains(&Output::Subscribe(m(1))), "{out:?}");
    let out = without_status(state.on(
        later,
        Input::Subscribed {
            mailbox: m(1),
            result: Ok((id_of(1), None)),
        },
    ));
    assert!(out.contains(&Output::Problem(m(1), None)));
    assert_eq!(state.status().refused, 0);
}

#[test]
fn membership_changes_reopen_the_stream_and_touch_no_other_subscription() {
    let now = Instant::now();
    let mut state = streaming(&[1, 2], now);
    let out = without_status(state.on(now, members(&[1, 2, 3])));
    assert_eq!(
        out,
        [
            Output::CloseStream,
            Output::Count(Count::Reconnect("membership")),
            Output::Subscribe(m(3)),
        ]
    );
    let out = subscribe_all(&mut state, now, out);
    assert!(out.contains(&Output::OpenStream(vec![id_of(1), id_of(2), id_of(3)])));
    state.on(now, Input::StreamOpened);
    let out = without_status(state.on(now, members(&[1, 3])));
    assert_eq!(
        out,
        [
            Output::Unsubscribe(vec![held(2)]),
            Output::CloseStream,
            Output::Count(Count::Reconnect("membership")),
            Output::OpenStream(vec![id_of(1), id_of(3)]),
        ]
    );
    // Removed while its Subscribe was in flight: the new id is unsubscribed.
    state.on(now, members(&[1, 3, 4]));
    assert_eq!(state.phase(), &Phase::Subscribing(m(4)));
    state.on(now, members(&[1, 3]));
    let out = state.on(
        now,
        Input::Subscribed {
            mailbox: m(4),
            result: Ok((id_of(4), None)),
        },
    );
    assert!(out.contains(&Output::Unsubscribe(vec![held(4)])));
    assert!(out.contains(&Output::OpenStream(vec![id_of(1), id_of(3)])));
    // Removing every member leaves the group idle with nothing held.
    state.on(now, members(&[]));
    assert_eq!(state.phase(), &Phase::Idle);
    assert_eq!(state.status().subscribed, 0);
}

#[test]
fn stop_closes_the_stream_and_drains_every_subscription() {
    let now = Instant::now();
    let mut state = streaming(&[1, 2], now);
    let out = without_status(state.on(now, Input::Stop));
    assert_eq!(
        out,
        [Output::CloseStream, Output::Drain(vec![held(1), held(2)])]
    );
    assert_eq!(state.status().phase, "draining");
    assert!(
        without_status(state.on(now, members(&[1, 2, 5]))).is_empty(),
        "nothing new while draining"
    );
    assert_eq!(
        without_status(state.on(now, Input::Drained)),
        [Output::Finished]
    );
    assert!(state.on(now, Input::Timer).is_empty());
    assert_eq!(state.status().phase, "stopped");
}

#[test]
fn status_changes_are_published_once() {
    let now = Instant::now();
    let mut state = group(&[1]);
    let out = state.on(now, Input::Start);
    assert!(
        out.iter()
            .any(|o| matches!(o, Output::Status(s) if s.phase == "subscribing"))
    );
    let out = state.on(now, Input::Timer);
    assert!(
        !out.iter().any(|o| matches!(o, Output::Status(_))),
        "unchanged status is not republished"
    );
}

#[test]
fn a_stream_that_cannot_reach_the_server_trusts_none_of_its_ids() {
    let t0 = Instant::now();
    let mut state = group(&[1, 2]);
    let started = state.on(t0, Input::Start);
    subscribe_all(&mut state, t0, started);
    assert!(!state.status().stream_open, "the stream is being opened");
    // The stream cannot connect: the server may have restarted and numbered its
    // subscriptions from 1 again.
    let out = state.on(
        t0,
        Input::StreamEnded(StreamEnd::Failed(EwsError::Transport(
            "connection refused".into(),
        ))),
    );
    assert!(out.contains(&Output::Lost(m(1))) && out.contains(&Output::Lost(m(2))));
    assert!(
        !out.iter().any(|o| matches!(o, Output::Unsubscribe(_))),
        "an id that may be someone else's is never unsubscribed: {out:?}"
    );
    assert!(out.contains(&Output::Count(Count::Resubscribe("unreachable", 2))));
    assert_eq!(state.status().subscribed, 0);
    let at = waits(&out)[0];
    assert_eq!(at, t0 + MS(250));
    let out = state.on(at, Input::Timer);
    assert!(out.contains(&Output::Subscribe(m(1))), "{out:?}");
    // An open stream that breaks is not a restart we noticed: the ids are kept.
    let mut open = streaming(&[1, 2], t0);
    open.on(t0, Input::StreamOpened);
    let out = open.on(
        t0,
        Input::StreamEnded(StreamEnd::Failed(EwsError::Transport("reset".into()))),
    );
    assert!(!out.iter().any(|o| matches!(o, Output::Lost(_))), "{out:?}");
    assert_eq!(open.status().subscribed, 2);
}

#[test]
fn a_server_refusing_all_fresh_ids_but_the_anchors_is_told_apart() {
    let t0 = Instant::now();
    let fresh_group = || {
        let mut state = group(&[1, 2, 3]);
        let started = state.on(t0, Input::Start);
        subscribe_all(&mut state, t0, started);
        state.on(t0, Input::StreamOpened);
        state
    };
    let rejecting = |ids: Vec<SubscriptionId>| Frame {
        error_ids: ids,
        error: Some(EwsError::Response(Box::new(status(
            ResponseCode::ErrorInvalidSubscription,
        )))),
        ..Frame::default()
    };
    // The anchor is user1: every other fresh id refused, its own accepted.
    let out = fresh_group().on(t0, Input::Frame(rejecting(vec![id_of(2), id_of(3)])));
    assert!(out.contains(&Output::OwnerBound), "{out:?}");
    // The anchor's own id refused too, or only some of the others: an ordinary loss.
    for ids in [vec![id_of(1), id_of(2), id_of(3)], vec![id_of(2)]] {
        let out = fresh_group().on(t0, Input::Frame(rejecting(ids)));
        assert!(!out.contains(&Output::OwnerBound), "{out:?}");
    }
    // Ids that already worked on a stream: not the signature either.
    let mut proven = streaming(&[1, 2, 3], t0);
    let out = proven.on(t0, Input::Frame(rejecting(vec![id_of(2), id_of(3)])));
    assert!(!out.contains(&Output::OwnerBound), "{out:?}");
}

/// The problems given in `outputs`, by member number.
fn problems(outputs: &[Output]) -> Vec<(usize, Option<String>)> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Problem(mailbox, problem) => Some((n_of(mailbox), problem.clone())),
            _ => None,
        })
        .collect()
}

#[test]
fn a_server_that_cannot_be_reached_gives_every_unsubscribed_member_the_cause() {
    let now = Instant::now();
    let mut state = group(&[1, 2, 3]);
    state.on(now, Input::Start);
    let cause = "cannot connect to exch1.example.test:443 (connection refused)";
    let out = state.on(
        now,
        Input::Subscribed {
            mailbox: m(1),
            result: Err(EwsError::Transport(cause.into())),
        },
    );
    assert_eq!(
        problems(&out),
        [1, 2, 3].map(|n| (n, Some(cause.to_owned()))),
        "every member, at the first failure"
    );
    // The same cause again tells nobody again.
    let later = now + Duration::from_secs(1);
    state.on(later, Input::Timer);
    let out = state.on(
        later,
        Input::Subscribed {
            mailbox: m(1),
            result: Err(EwsError::Transport(cause.into())),
        },
    );
    assert!(problems(&out).is_empty(), "{out:?}");
}

#[test]
fn refused_credentials_give_every_member_the_refusal_even_the_subscribed_ones() {
    let now = Instant::now();
    let mut state = streaming(&[1, 2], now);
    let refusal = "credentials for svc@example.test refused (NTLM, HTTP 401): wrong password";
    let out = state.on(
        now,
        Input::StreamEnded(StreamEnd::Failed(EwsError::Unauthorized(refusal.into()))),
    );
    assert_eq!(
        problems(&out),
        [1, 2].map(|n| (n, Some(refusal.to_owned())))
    );
    assert_eq!(state.status().waiting, Some(WaitReason::Credentials));
    // The gate opens again: the wait ends at once, the same ids stream again, and
    // the first healthy frame refreshes both (which clears their problem).
    let out = without_status(state.on(now, Input::CredentialsAccepted));
    assert_eq!(out, [Output::OpenStream(vec![id_of(1), id_of(2)])]);
    state.on(now, Input::StreamOpened);
    let out = without_status(state.on(now, Input::Frame(Frame::default())));
    assert_eq!(
        out,
        [1, 2].map(|n| Output::Refresh {
            mailbox: m(n),
            full: false
        })
    );
}

#[test]
fn credentials_accepted_outside_a_credentials_wait_changes_nothing() {
    let now = Instant::now();
    let mut state = streaming(&[1], now);
    assert!(without_status(state.on(now, Input::CredentialsAccepted)).is_empty());
    let out = state.on(
        now,
        Input::StreamEnded(StreamEnd::Failed(EwsError::Transport("reset".into()))),
    );
    assert!(!waits(&out).is_empty());
    assert!(without_status(state.on(now, Input::CredentialsAccepted)).is_empty());
}

#[test]
fn lost_subscriptions_give_their_mailboxes_the_loss() {
    let now = Instant::now();
    let mut state = streaming(&[1, 2], now);
    let out = state.on(
        now,
        Input::Frame(Frame {
            error_ids: vec![id_of(2)],
            error: Some(EwsError::Response(Box::new(status(
                ResponseCode::ErrorSubscriptionNotFound,
            )))),
            ..Frame::default()
        }),
    );
    let given = problems(&out);
    assert_eq!(given.len(), 1, "{out:?}");
    assert_eq!(given[0].0, 2);
    assert!(
        given[0]
            .1
            .as_deref()
            .is_some_and(|p| p.starts_with("subscription lost (ErrorSubscriptionNotFound")),
        "{given:?}"
    );
}

#[test]
fn throttling_before_a_subscription_says_when_the_next_attempt_is() {
    let now = Instant::now();
    let mut state = group(&[1]);
    state.on(now, Input::Start);
    let mut busy = status(ResponseCode::ErrorServerBusy);
    busy.back_off_ms = Some(30_000);
    let out = state.on(
        now,
        Input::Subscribed {
            mailbox: m(1),
            result: Err(EwsError::Response(Box::new(busy))),
        },
    );
    let given = problems(&out);
    assert!(
        given.len() == 1
            && given[0]
                .1
                .as_deref()
                .is_some_and(|p| p.starts_with("throttled by the server")
                    && p.ends_with("next attempt in 30 s")),
        "{given:?}"
    );
}

/// The Moved rule: an answer saying a mailbox lives elsewhere now (moved, failed over,
/// or its subscription unknown to the server it reached) asks for Autodiscover again,
/// on a stream's lost ids and on a refused Subscribe alike; other codes do not.
#[test]
fn answers_that_suggest_a_move_ask_for_autodiscover_again() {
    let cases = [
        (ResponseCode::ErrorMailboxMoveInProgress, true),
        (ResponseCode::ErrorMailboxStoreUnavailable, true),
        (ResponseCode::ErrorProxyRequestNotAllowed, true),
        (ResponseCode::ErrorSubscriptionNotFound, true),
        (ResponseCode::ErrorExpiredSubscription, false),
        (ResponseCode::ErrorInvalidSubscription, false),
    ];
    for (code, moved) in cases {
        // On a stream: the ids the frame names are lost either way; only these codes
        // say where to look.
        let now = Instant::now();
        let mut state = streaming(&[1, 2, 3], now);
        let out = without_status(state.on(
            now,
            Input::Frame(Frame {
                error_ids: vec![id_of(2)],
                error: Some(EwsError::Response(Box::new(status(code.clone())))),
                closed: true,
                ..Frame::default()
            }),
        ));
        assert_eq!(
            out.contains(&Output::Moved(m(2))),
            moved,
            "{code:?} on a stream: {out:?}"
        );
        assert!(
            !out.contains(&Output::Moved(m(1))) && !out.contains(&Output::Moved(m(3))),
            "only the named id: {out:?}"
        );
        assert!(out.contains(&Output::Lost(m(2))), "{code:?}: {out:?}");

        // On Subscribe.
        let mut state = group(&[1]);
        state.on(now, Input::Start);
        let out = without_status(state.on(now, refused(1, code.clone())));
        assert_eq!(
            out.contains(&Output::Moved(m(1))),
            moved,
            "{code:?} on Subscribe: {out:?}"
        );
    }
}

/// The membership diff: one change that removes and adds at once lets the removed
/// mailbox go first (its id unsubscribed) and then subscribes the new one; a change
/// to the same set does nothing.
#[test]
fn a_membership_change_removes_then_adds() {
    let now = Instant::now();
    let mut state = streaming(&[1, 2], now);
    assert!(without_status(state.on(now, members(&[1, 2]))).is_empty());
    let out = without_status(state.on(now, members(&[1, 3])));
    assert_eq!(
        out,
        [
            Output::Unsubscribe(vec![held(2)]),
            Output::CloseStream,
            Output::Count(Count::Reconnect("membership")),
            Output::OpenStream(vec![id_of(1)]),
            Output::CloseStream,
            Output::Count(Count::Reconnect("membership")),
            Output::Subscribe(m(3)),
        ]
    );
    assert_eq!(state.members(), &[m(1), m(3)].into_iter().collect());
}

/// Health is told once each way: the first wait after a failure says the group is
/// failing (before the reports of that step, which are then quiet), further failures
/// say nothing new, and a healthy frame on an open stream says it recovered and after
/// how long. A report outside a failure is loud.
#[test]
fn health_changes_are_told_once_each_way() {
    let now = Instant::now();
    let mut state = streaming(&[1, 2], now);
    let failed = |state: &mut GroupState, at: Instant| {
        told(state.on(
            at,
            Input::StreamEnded(StreamEnd::Silent {
                inside_frame: false,
            }),
        ))
    };
    let out = failed(&mut state, now);
    assert!(
        matches!(
            &out[0],
            Output::Health(Health::Failing {
                reason: WaitReason::Stream,
                error: Some(_)
            })
        ),
        "{out:?}"
    );
    assert!(
        out.iter()
            .all(|o| !matches!(o, Output::Report { loud: true, .. })),
        "the failing line is the loud one: {out:?}"
    );
    // Still failing: nothing new is told.
    let later = now + MS(250);
    state.on(later, Input::Timer);
    let out = failed(&mut state, later);
    assert!(
        !out.iter().any(|o| matches!(o, Output::Health(_))),
        "{out:?}"
    );
    // Back: the stream opens and a healthy frame comes.
    let back = later + MS(500);
    state.on(back, Input::Timer);
    state.on(back, Input::StreamOpened);
    let out = told(state.on(back, Input::Frame(Frame::default())));
    assert_eq!(
        out,
        [Output::Health(Health::Recovered { after: MS(750) })],
        "{out:?}"
    );

    // A mailbox refused on its own is no failure of the group: its report is loud.
    let mut state = group(&[1, 2]);
    state.on(now, Input::Start);
    let out = told(state.on(now, refused(1, ResponseCode::ErrorNonExistentMailbox)));
    assert!(
        out.iter()
            .any(|o| matches!(o, Output::Report { loud: true, .. })),
        "{out:?}"
    );
    assert!(
        !out.iter().any(|o| matches!(o, Output::Health(_))),
        "{out:?}"
    );
}

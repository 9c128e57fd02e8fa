//! The publication rules of `state.rs`, one test each, on a paused clock.

use std::time::Duration;

use common::mailbox::Mailbox;
use tokio::time::Instant;

use super::state::*;
use crate::engine::backoff::{Backoff, Random};

/// Jitter pinned to the middle of its range.
struct Middle;
impl Random for Middle {
    fn next_u64(&mut self) -> u64 {
        250
    }
}

fn publications(window: usize) -> Publications {
    let backoff = Backoff::with_random(
        Duration::from_secs(1),
        Duration::from_secs(60),
        Box::new(Middle),
    )
    .unwrap();
    Publications::new(window, 600, backoff, 7)
}

fn mailbox(n: usize) -> Mailbox {
    Mailbox::parse(&format!("user{n}@example.test")).unwrap()
}

const MEETING: Want = Want {
    activity: Activity::Meeting,
    until: Some(1_000),
};
const AWAY: Want = Want {
    activity: Activity::Away,
    until: None,
};

fn ok(etag: &str) -> Outcome {
    Outcome::Accepted {
        etag: etag.into(),
        expires: 600,
    }
}

fn kinds(sends: &[Publish]) -> Vec<Kind> {
    sends.iter().map(|s| s.kind).collect()
}

#[tokio::test(start_paused = true)]
async fn rule_2_initial_modify_refresh_remove() {
    let now = Instant::now();
    let mut p = publications(8);
    let a = mailbox(1);
    p.want(&a, Some(MEETING));
    let sends = p.poll(now);
    assert_eq!(kinds(&sends), [Kind::Initial]);
    assert_eq!(
        (sends[0].etag.as_deref(), sends[0].want, sends[0].expires),
        (None, Some(MEETING), 600)
    );
    p.answer(&a, ok("e1"), now);
    assert_eq!(p.counts().held, 1);
    p.want(&a, Some(AWAY));
    let sends = p.poll(now);
    assert_eq!(kinds(&sends), [Kind::Modify]);
    assert_eq!(
        (sends[0].etag.as_deref(), sends[0].want),
        (Some("e1"), Some(AWAY))
    );
    p.answer(&a, ok("e2"), now);
    // After a modify, the refresh at 20–90% of 600 s.
    let due = p.refresh_at(&a).unwrap();
    assert!(due >= now + Duration::from_secs(120) && due <= now + Duration::from_secs(540));
    assert!(p.poll(due - Duration::from_millis(1)).is_empty());
    let sends = p.poll(due);
    assert_eq!(kinds(&sends), [Kind::Refresh]);
    assert_eq!(sends[0].etag.as_deref(), Some("e2"));
    p.answer(&a, ok("e3"), due);
    // After a refresh, the next at 70–90%.
    let next = p.refresh_at(&a).unwrap();
    assert!(next >= due + Duration::from_secs(420) && next <= due + Duration::from_secs(540));
    p.want(&a, None);
    let sends = p.poll(due);
    assert_eq!(kinds(&sends), [Kind::Remove]);
    assert_eq!(
        (sends[0].etag.as_deref(), sends[0].expires),
        (Some("e3"), 0)
    );
    p.answer(&a, ok("e4"), due);
    assert_eq!(p.counts(), Counts::default());
    assert_eq!(
        p.tracked().count(),
        0,
        "nothing wanted, nothing held: forgotten"
    );
}

#[tokio::test(start_paused = true)]
async fn rule_1_a_change_in_flight_waits_and_the_latest_wins() {
    let now = Instant::now();
    let mut p = publications(8);
    let a = mailbox(1);
    p.want(&a, Some(MEETING));
    assert_eq!(p.poll(now).len(), 1);
    // Two changes while the initial PUBLISH is in flight: only the last is sent,
    // after the answer, with its ETag.
    p.want(&a, Some(AWAY));
    p.want(&a, None);
    p.want(&a, Some(AWAY));
    assert!(
        p.poll(now).is_empty(),
        "never two requests for one presentity"
    );
    assert_eq!(p.counts().queued, 0);
    p.answer(&a, ok("e1"), now);
    let sends = p.poll(now);
    assert_eq!(kinds(&sends), [Kind::Modify]);
    assert_eq!(
        (sends[0].etag.as_deref(), sends[0].want),
        (Some("e1"), Some(AWAY))
    );
    // And a flip back to what the server holds needs nothing once answered.
    p.answer(&a, ok("e2"), now);
    p.want(&a, Some(MEETING));
    p.want(&a, Some(AWAY));
    assert!(p.poll(now).is_empty());
}

#[tokio::test(start_paused = true)]
async fn rule_3_the_window_paces_a_storm() {
    let now = Instant::now();
    let mut p = publications(3);
    for n in 0..10 {
        p.want(&mailbox(n), Some(MEETING));
    }
    let first = p.poll(now);
    assert_eq!(first.len(), 3);
    assert_eq!(
        p.counts(),
        Counts {
            held: 0,
            in_flight: 3,
            queued: 7
        }
    );
    assert!(p.poll(now).is_empty(), "the window is full");
    p.answer(&first[0].mailbox, ok("e"), now);
    assert_eq!(p.poll(now).len(), 1, "one answer, one more request");
}

#[tokio::test(start_paused = true)]
async fn rule_5_unknown_etag_publishes_afresh_and_too_brief_raises_the_lifetime() {
    let now = Instant::now();
    let mut p = publications(8);
    let a = mailbox(1);
    p.want(&a, Some(MEETING));
    p.poll(now);
    p.answer(&a, ok("e1"), now);
    p.want(&a, Some(AWAY));
    p.poll(now);
    p.answer(&a, Outcome::UnknownEtag, now);
    let sends = p.poll(now);
    assert_eq!(kinds(&sends), [Kind::Initial]);
    p.answer(&a, Outcome::TooBrief { min: 1800 }, now);
    let sends = p.poll(now);
    assert_eq!((sends[0].kind, sends[0].expires), (Kind::Initial, 1800));
    assert_eq!(p.expires(), 1800);
}

#[tokio::test(start_paused = true)]
async fn rule_6_failures_pause_the_server_and_the_failed_request_goes_first() {
    let now = Instant::now();
    let mut p = publications(2);
    for n in 0..4 {
        p.want(&mailbox(n), Some(MEETING));
    }
    let sends = p.poll(now);
    // Both in flight fail: one backoff step (1 s, jitter pinned), not two.
    for s in &sends {
        p.answer(
            &s.mailbox,
            Outcome::Retry {
                after: None,
                error: "no response".into(),
            },
            now,
        );
    }
    assert_eq!(p.paused_until(), Some(now + Duration::from_secs(1)));
    assert_eq!(p.last_error(), Some("no response"));
    assert_eq!(p.next_wake(), Some(now + Duration::from_secs(1)));
    assert!(p.poll(now + Duration::from_millis(999)).is_empty());
    let again = p.poll(now + Duration::from_secs(1));
    let retried: Vec<_> = again.iter().map(|s| s.mailbox.clone()).collect();
    let failed: Vec<_> = sends.iter().map(|s| s.mailbox.clone()).collect();
    assert!(
        failed.iter().all(|m| retried.contains(m)),
        "the failed go first"
    );
    // The server's Retry-After is what it waits, and a success clears the error.
    let later = now + Duration::from_secs(1);
    p.answer(
        &again[0].mailbox,
        Outcome::Retry {
            after: Some(Duration::from_secs(30)),
            error: "503".into(),
        },
        later,
    );
    assert_eq!(p.paused_until(), Some(later + Duration::from_secs(30)));
    p.answer(&again[1].mailbox, ok("e"), later);
    assert_eq!(p.last_error(), None);
}

#[tokio::test(start_paused = true)]
async fn rule_7_a_refused_presentity_waits_unless_its_state_changes() {
    let now = Instant::now();
    let mut p = publications(8);
    let a = mailbox(1);
    p.want(&a, Some(MEETING));
    p.poll(now);
    p.answer(
        &a,
        Outcome::Refused {
            error: "403 Forbidden".into(),
        },
        now,
    );
    assert!(
        p.paused_until().is_none(),
        "the server is not paused for one user"
    );
    assert!(
        p.poll(now + REFUSED_RETRY - Duration::from_secs(1))
            .is_empty()
    );
    assert_eq!(kinds(&p.poll(now + REFUSED_RETRY)), [Kind::Initial]);
    p.answer(
        &a,
        Outcome::Refused {
            error: "403".into(),
        },
        now + REFUSED_RETRY,
    );
    p.want(&a, Some(AWAY));
    assert_eq!(
        kinds(&p.poll(now + REFUSED_RETRY)),
        [Kind::Initial],
        "a change is tried at once"
    );
}

#[tokio::test(start_paused = true)]
async fn rule_8_stopping_removes_everything_held() {
    let now = Instant::now();
    let mut p = publications(8);
    for n in 0..3 {
        p.want(&mailbox(n), Some(MEETING));
    }
    for s in p.poll(now) {
        p.answer(&s.mailbox, ok("e"), now);
    }
    p.want(&mailbox(9), Some(AWAY));
    p.stop();
    assert!(!p.is_done());
    let sends = p.poll(now);
    assert_eq!(kinds(&sends), [Kind::Remove, Kind::Remove, Kind::Remove]);
    p.want(&mailbox(10), Some(AWAY));
    for s in &sends {
        p.answer(&s.mailbox, ok("gone"), now);
    }
    assert!(
        p.poll(now).is_empty(),
        "nothing new is published while stopping"
    );
    assert!(p.is_done());
}

#[tokio::test(start_paused = true)]
async fn a_failed_request_for_a_user_who_now_wants_nothing_is_forgotten() {
    let now = Instant::now();
    let mut p = publications(8);
    let a = mailbox(1);
    p.want(&a, Some(MEETING));
    p.poll(now);
    p.want(&a, None);
    p.answer(
        &a,
        Outcome::Retry {
            after: None,
            error: "no response".into(),
        },
        now,
    );
    assert_eq!(p.tracked().count(), 0, "nothing held, nothing wanted");
    assert_eq!(p.counts(), Counts::default());
}

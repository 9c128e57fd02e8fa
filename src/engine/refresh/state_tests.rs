//! Table tests of [`RefreshState::on`], one or more per rule in the module doc of
//! [`super::state`]. Jitter is pinned (no spread), so every wait is exact; time is the
//! instants passed in.

use std::time::Duration;

use jiff::Timestamp;
use tokio::time::Instant;

use super::state::*;
use super::tips::TipVerdict;
use crate::engine::backoff::{Backoff, Random};
use crate::presence::timeline::{AutoReply, Timeline};
use crate::presence::updates::Update;
use common::mailbox::Mailbox;
use common::mailbox::numbered as m;
use ews::response_code::ResponseCode;

/// The middle of the jitter range: no spread.
struct NoJitter;
impl Random for NoJitter {
    fn next_u64(&mut self) -> u64 {
        250
    }
}

const MS: fn(u64) -> Duration = Duration::from_millis;
const SECS: fn(u64) -> Duration = Duration::from_secs;
const DEBOUNCE: Duration = Duration::from_millis(100);
const OOF_REFRESH: Duration = Duration::from_secs(300);
const OOF_VERIFY: Duration = Duration::from_secs(14_400);

fn n_of(mailbox: &Mailbox) -> usize {
    mailbox.as_str()["user".len()..mailbox.as_str().find('@').unwrap()]
        .parse()
        .unwrap()
}

fn numbers<'a>(mailboxes: impl IntoIterator<Item = &'a Mailbox>) -> Vec<usize> {
    mailboxes.into_iter().map(n_of).collect()
}

/// A gateway of members `0..members`, nothing queued yet.
fn gateway(members: usize, mail_tips_possible: bool) -> RefreshState {
    let settings = Settings {
        gateway: "gw".into(),
        debounce: DEBOUNCE,
        oof_refresh: OOF_REFRESH,
        oof_verify: OOF_VERIFY,
        mail_tips_possible,
        calendar_batch: MAX_MAILBOXES,
        auto_replies: None,
        names: EWS_NAMES,
    };
    let backoff = Backoff::with_random(RETRY_MIN, RETRY_MAX, Box::new(NoJitter)).unwrap();
    let mut state = RefreshState::new(settings, backoff);
    let t = Instant::now();
    for n in 0..members {
        assert!(state.on(t, Input::Join(m(n))).is_empty());
    }
    state
}

/// A gateway whose automatic replies are settled one by one (no question asked), so
/// that the tests of calendar reads see only those.
fn calendar_gateway(members: usize, t: Instant) -> RefreshState {
    let mut state = gateway(members, false);
    let out = state.on(t, Input::Dispatch);
    assert!(matches!(
        out[0],
        Output::SourceChanged(AutoReplySource::OneByOne { .. })
    ));
    state
}

/// The GetUserAvailability batches asked for, as mailbox numbers.
fn calendar_reads(out: &[Output]) -> Vec<Vec<usize>> {
    out.iter()
        .filter_map(|o| match o {
            Output::ReadCalendar(batch) => Some(numbers(batch.iter().map(|q| &q.mailbox))),
            _ => None,
        })
        .collect()
}

/// The GetUserOofSettings asked for.
fn oof_reads(out: &[Output]) -> Vec<usize> {
    out.iter()
        .filter_map(|o| match o {
            Output::ReadOof(mailbox) => Some(n_of(mailbox)),
            _ => None,
        })
        .collect()
}

/// The GetMailTips batches asked for.
fn tips_reads(out: &[Output]) -> Vec<Vec<usize>> {
    out.iter()
        .filter_map(|o| match o {
            Output::ReadTips(mailboxes) => Some(numbers(mailboxes)),
            _ => None,
        })
        .collect()
}

fn wake(out: &[Output]) -> Option<Instant> {
    match out.last() {
        Some(Output::WakeAt(at)) => *at,
        other => panic!("a dispatch ends with when to look again, not {other:?}"),
    }
}

/// The problems handed to the presence core.
fn problems(out: &[Output]) -> Vec<(usize, String)> {
    out.iter()
        .filter_map(|o| match o {
            Output::Apply(mailbox, Update::Problem(Some(p))) => {
                Some((n_of(mailbox), p.to_string()))
            }
            _ => None,
        })
        .collect()
}

/// The mailboxes whose timeline was handed to the presence core.
fn timelines(out: &[Output]) -> Vec<usize> {
    out.iter()
        .filter_map(|o| match o {
            Output::Apply(mailbox, Update::Timeline { .. }) => Some(n_of(mailbox)),
            _ => None,
        })
        .collect()
}

fn failed(out: &[Output]) -> Vec<(Read, usize, Duration, bool)> {
    out.iter()
        .filter_map(|o| match o {
            Output::Failed {
                read,
                mailboxes,
                retry_in,
                loud,
                ..
            } => Some((*read, *mailboxes, *retry_in, *loud)),
            _ => None,
        })
        .collect()
}

fn taken(out: &[Output]) -> Vec<Queued> {
    out.iter()
        .filter_map(|o| match o {
            Output::ReadCalendar(batch) => Some(batch.clone()),
            _ => None,
        })
        .flatten()
        .collect()
}

fn read_at() -> Timestamp {
    Timestamp::from_second(1_800_000_000).unwrap()
}

/// Every mailbox of `batch` read fine.
fn all_read(batch: Vec<Queued>) -> Input {
    let results = batch.iter().map(|_| Ok(Timeline::new(0, 1, []))).collect();
    Input::Calendar {
        batch,
        answer: CalendarAnswer::Read {
            results,
            read_at: read_at(),
        },
    }
}

/// Mailbox `n`'s automatic replies read as `auto_reply`.
fn oof_read(n: usize, auto_reply: AutoReply) -> Input {
    Input::Oof {
        mailbox: m(n),
        answer: OofAnswer::Read {
            auto_reply,
            read_at: read_at(),
        },
    }
}

/// Runs the gateway from `from` to `until`, following its wakes and answering every
/// automatic-reply read (off, or a tip that agrees); returns the GetUserOofSettings sent.
fn run_sweeps(s: &mut RefreshState, from: Instant, until: Instant) -> Vec<usize> {
    let mut confirmed = Vec::new();
    let mut t = from;
    while t <= until {
        let out = s.on(t, Input::Dispatch);
        for n in oof_reads(&out) {
            confirmed.push(n);
            s.on(t, oof_read(n, AutoReply::Off));
        }
        for batch in tips_reads(&out) {
            let verdicts = batch.iter().map(|_| TipVerdict::Agrees).collect();
            s.on(
                t,
                Input::Tips {
                    mailboxes: batch.into_iter().map(m).collect(),
                    answer: TipsAnswer::Read {
                        verdicts,
                        read_at: read_at(),
                    },
                },
            );
        }
        t = wake(&out).expect("the sweeps wake");
    }
    confirmed.sort();
    confirmed
}

fn calendar_failed(batch: Vec<Queued>, server_wait: Option<Duration>) -> Input {
    Input::Calendar {
        batch,
        answer: CalendarAnswer::Failed(Failure {
            problem: "GetUserAvailability failed: the server is busy".to_owned(),
            server_wait,
        }),
    }
}

// Rule 1: debounce.

#[test]
fn a_quiet_mailbox_is_read_at_once_and_a_busy_one_once_per_period() {
    let t0 = Instant::now();
    let mut s = calendar_gateway(3, t0);
    // Quiet: read at once (leading edge).
    s.on(t0, Input::Changed(m(1)));
    let out = s.on(t0, Input::Dispatch);
    assert_eq!(calendar_reads(&out), [vec![1]]);
    let batch = taken(&out);
    assert_eq!(batch[0].since, t0);
    // Events while that read is in flight or within the period after it: one trailing
    // read at the end of the period, however many events.
    let mut t = t0;
    for _ in 0..5 {
        t += MS(15);
        s.on(t, Input::Changed(m(1)));
    }
    let out = s.on(t, all_read(batch));
    assert_eq!(timelines(&out), [1]);
    assert!(
        calendar_reads(&out).is_empty(),
        "not before the period ends"
    );
    assert_eq!(wake(&out), Some(t0 + DEBOUNCE));
    let out = s.on(t0 + DEBOUNCE, Input::Dispatch);
    assert_eq!(calendar_reads(&out), [vec![1]], "one trailing read");
    assert_eq!(
        taken(&out)[0].since,
        t0 + MS(15),
        "since its first unread change"
    );
    let mut in_flight = taken(&out);
    // A mailbox that never stops changing is read once per period, never starved.
    let mut reads = 0;
    let mut t = t0 + DEBOUNCE;
    for _ in 0..20 {
        t += MS(50);
        s.on(t, Input::Changed(m(1)));
        let out = if in_flight.is_empty() {
            s.on(t, Input::Dispatch)
        } else {
            s.on(t, all_read(std::mem::take(&mut in_flight)))
        };
        reads += calendar_reads(&out).len();
        in_flight = taken(&out);
    }
    assert!(
        (9..=11).contains(&reads),
        "{reads} reads in 1 s at a 100 ms period"
    );
    // Another mailbox is not held back by the first's period.
    s.on(t, Input::Changed(m(2)));
    let out = s.on(t, Input::Dispatch);
    assert_eq!(calendar_reads(&out), [vec![2]]);
}

#[test]
fn reads_no_change_asked_for_start_no_quiet_period() {
    let t0 = Instant::now();
    let mut s = calendar_gateway(1, t0);
    let mut t = t0;
    // The first read after subscribing, then the horizon rolling.
    for roll in [false, true] {
        let out = if roll {
            s.on(t, Input::RollHorizon)
        } else {
            s.on(t, Input::Full(m(0)));
            s.on(t, Input::Dispatch)
        };
        assert_eq!(calendar_reads(&out), [vec![0]]);
        s.on(t, all_read(taken(&out)));
        // A change 10 ms later is read at once, not at the end of a period.
        t += MS(10);
        s.on(t, Input::Changed(m(0)));
        let out = s.on(t, Input::Dispatch);
        assert_eq!(calendar_reads(&out), [vec![0]], "leading edge");
        s.on(t, all_read(taken(&out)));
        // That read did start a period: the next change waits for its end.
        t += MS(10);
        s.on(t, Input::Changed(m(0)));
        let out = s.on(t, Input::Dispatch);
        assert!(calendar_reads(&out).is_empty());
        t += DEBOUNCE;
        let out = s.on(t, Input::Dispatch);
        assert_eq!(calendar_reads(&out), [vec![0]], "trailing read");
        s.on(t, all_read(taken(&out)));
        t += MS(200);
    }
}

// Rule 2: batches and slots.

#[test]
fn due_mailboxes_go_in_batches_of_100_at_most_four_in_flight() {
    let t0 = Instant::now();
    let mut s = calendar_gateway(1000, t0);
    for n in 0..1000 {
        s.on(t0, Input::Full(m(n)));
    }
    let out = s.on(t0, Input::Dispatch);
    let batches = calendar_reads(&out);
    assert_eq!(batches.len(), CALENDAR_SLOTS);
    assert!(batches.iter().all(|b| b.len() == MAX_MAILBOXES));
    assert_eq!(batches[0][0], 0, "first come, first read");
    // Calendars first: no automatic-reply read while calendar reads wait for a slot.
    assert!(oof_reads(&out).is_empty());
    // The rest wait queued, and a change meanwhile joins the read already owed.
    assert!(s.is_queued(&m(999)));
    s.on(t0, Input::Changed(m(999)));
    assert!(
        calendar_reads(&s.on(t0, Input::Dispatch)).is_empty(),
        "no slot free"
    );
    // Each answer frees a slot for the next batch.
    let mut in_flight: Vec<Vec<Queued>> = taken(&out)
        .chunks(MAX_MAILBOXES)
        .map(<[Queued]>::to_vec)
        .collect();
    let out = s.on(t0 + MS(5), all_read(in_flight.remove(0)));
    assert_eq!(calendar_reads(&out).len(), 1);
    assert_eq!(calendar_reads(&out)[0][0], 400);
    assert!(oof_reads(&out).is_empty());
    in_flight.extend(taken(&out).chunks(MAX_MAILBOXES).map(<[Queued]>::to_vec));
    // Automatic replies start once no calendar read waits for a slot; on slots of
    // their own: one by one, eight at once.
    let mut oof = Vec::new();
    let mut t = t0 + MS(5);
    while !in_flight.is_empty() {
        t += MS(5);
        let out = s.on(t, all_read(in_flight.remove(0)));
        in_flight.extend(taken(&out).chunks(MAX_MAILBOXES).map(<[Queued]>::to_vec));
        if !oof_reads(&out).is_empty() {
            assert!((0..1000).all(|n| !s.is_queued(&m(n))), "calendars first");
        }
        oof.extend(oof_reads(&out));
    }
    assert_eq!(oof.len(), AUTO_REPLY_SLOTS);
}

// Rule 3: each read sent once, the queue alone retries.

#[test]
fn a_failed_calendar_read_marks_its_mailboxes_and_is_queued_again_after_the_servers_wait() {
    let t0 = Instant::now();
    let mut s = calendar_gateway(2, t0);
    s.on(t0, Input::Full(m(0)));
    s.on(t0, Input::Full(m(1)));
    let batch = taken(&s.on(t0, Input::Dispatch));
    let out = s.on(t0, calendar_failed(batch, Some(MS(1500))));
    let problem = "gw: GetUserAvailability failed: the server is busy".to_owned();
    assert_eq!(problems(&out), [(0, problem.clone()), (1, problem)]);
    assert_eq!(failed(&out), [(Read::Calendar, 2, MS(1500), true)]);
    assert_eq!(
        wake(&out),
        Some(t0 + MS(1500)),
        "exactly what the server asked"
    );
    assert!(calendar_reads(&s.on(t0 + MS(1499), Input::Dispatch)).is_empty());
    let out = s.on(t0 + MS(1500), Input::Dispatch);
    assert_eq!(calendar_reads(&out), [vec![0, 1]]);
    // Failing again is told quietly; the first success loudly once.
    let out = s.on(t0 + SECS(2), calendar_failed(taken(&out), None));
    assert!(!failed(&out)[0].3, "not loud twice in a row");
    let t = t0 + SECS(3);
    let batch = taken(&s.on(t, Input::Dispatch));
    let out = s.on(t, all_read(batch));
    assert_eq!(timelines(&out), [0, 1]);
    assert!(
        out.iter()
            .any(|o| matches!(o, Output::Recovered(Read::Calendar)))
    );
    assert!(
        out.iter()
            .any(|o| matches!(o, Output::Served { waited } if *waited == SECS(1))),
        "served a second after it was queued again"
    );
}

#[test]
fn without_a_hint_each_failure_in_a_row_waits_longer_and_a_success_starts_over() {
    let t0 = Instant::now();
    let mut s = calendar_gateway(1, t0);
    let mut t = t0;
    let mut waits = Vec::new();
    s.on(t, Input::Full(m(0)));
    for _ in 0..12 {
        let out = s.on(t, Input::Dispatch);
        let out = s.on(t, calendar_failed(taken(&out), None));
        let wait = failed(&out)[0].2;
        waits.push(wait);
        t += wait;
    }
    let expected: Vec<Duration> = (0..12u32)
        .map(|n| (RETRY_MIN * 2u32.pow(n)).min(RETRY_MAX))
        .collect();
    assert_eq!(waits, expected, "200 ms doubling, capped at a minute");
    let out = s.on(t, Input::Dispatch);
    s.on(t, all_read(taken(&out)));
    s.on(t, Input::Full(m(0)));
    let out = s.on(t, Input::Dispatch);
    let out = s.on(t, calendar_failed(taken(&out), None));
    assert_eq!(
        failed(&out)[0].2,
        RETRY_MIN,
        "a success starts the steps over"
    );
}

#[test]
fn a_refused_mailbox_in_a_batch_is_retried_alone() {
    let t0 = Instant::now();
    let mut s = calendar_gateway(3, t0);
    for n in 0..3 {
        s.on(t0, Input::Full(m(n)));
    }
    let batch = taken(&s.on(t0, Input::Dispatch));
    let results = vec![
        Ok(Timeline::new(0, 1, [])),
        Err(ResponseCode::ErrorMailRecipientNotFound),
        Ok(Timeline::new(0, 1, [])),
    ];
    let out = s.on(
        t0,
        Input::Calendar {
            batch,
            answer: CalendarAnswer::Read {
                results,
                read_at: read_at(),
            },
        },
    );
    assert_eq!(timelines(&out), [0, 2]);
    assert_eq!(
        problems(&out),
        [(
            1,
            "gw: GetUserAvailability: ErrorMailRecipientNotFound".to_owned()
        )]
    );
    assert!(s.is_queued(&m(1)) && !s.is_queued(&m(0)));
    // An answer for fewer mailboxes than asked is a failure of the whole batch.
    let out = s.on(t0 + RETRY_MIN, Input::Dispatch);
    let out = s.on(
        t0 + RETRY_MIN,
        Input::Calendar {
            batch: taken(&out),
            answer: CalendarAnswer::Read {
                results: Vec::new(),
                read_at: read_at(),
            },
        },
    );
    assert_eq!(
        problems(&out),
        [(
            1,
            "gw: GetUserAvailability answered 0 mailboxes for 1 asked".to_owned()
        )]
    );
}

#[test]
fn automatic_replies_that_fail_keep_what_was_read_and_are_confirmed_later() {
    let t0 = Instant::now();
    let mut s = calendar_gateway(1, t0);
    s.on(t0, Input::Full(m(0)));
    let out = s.on(t0, Input::Dispatch);
    assert_eq!(oof_reads(&out), [0]);
    let out = s.on(
        t0,
        Input::Oof {
            mailbox: m(0),
            answer: OofAnswer::Failed(Failure {
                problem: "GetUserOofSettings failed: timed out".to_owned(),
                server_wait: None,
            }),
        },
    );
    assert!(
        problems(&out).is_empty(),
        "the presence keeps what was read"
    );
    assert_eq!(failed(&out), [(Read::AutoReplies, 1, RETRY_MIN, true)]);
    assert!(s.confirm_queued(&m(0)));
    let out = s.on(t0 + RETRY_MIN, Input::Dispatch);
    assert_eq!(oof_reads(&out), [0]);
    let out = s.on(t0 + RETRY_MIN, oof_read(0, AutoReply::On));
    assert!(out.iter().any(|o| matches!(
        o,
        Output::Apply(
            _,
            Update::AutoReply {
                auto_reply: AutoReply::On,
                ..
            }
        )
    )));
    assert!(
        out.iter()
            .any(|o| matches!(o, Output::Recovered(Read::AutoReplies)))
    );
}

// Rule 4: how automatic replies are read.

#[test]
fn an_old_server_is_read_one_by_one_without_asking() {
    let t0 = Instant::now();
    let mut s = gateway(2, false);
    s.on(t0, Input::Full(m(0)));
    let out = s.on(t0, Input::Dispatch);
    assert!(out.iter().any(|o| matches!(
        o,
        Output::SourceChanged(AutoReplySource::OneByOne { why }) if why.contains("Exchange2010")
    )));
    assert!(!out.iter().any(|o| matches!(o, Output::Probe { .. })));
    assert_eq!(oof_reads(&out), [0]);
}

#[test]
fn the_question_comes_first_and_its_answer_decides() {
    let t0 = Instant::now();
    let mut s = gateway(3, true);
    for n in 0..3 {
        s.on(t0, Input::Full(m(n)));
    }
    let out = s.on(t0, Input::Dispatch);
    let anchors: Vec<_> = out
        .iter()
        .filter_map(|o| match o {
            Output::Probe { anchor } => Some(anchor.as_ref().map(n_of)),
            _ => None,
        })
        .collect();
    assert_eq!(anchors, [Some(0)], "asked once, as the first member");
    assert!(
        oof_reads(&out).is_empty() && tips_reads(&out).is_empty(),
        "nothing meanwhile"
    );
    assert_eq!(
        calendar_reads(&out),
        [vec![0, 1, 2]],
        "calendars do not wait"
    );
    let out = s.on(
        t0 + MS(10),
        Input::Probed(ProbeAnswer::Decided(AutoReplySource::MailTips { batch: 2 })),
    );
    assert!(matches!(
        out[0],
        Output::SourceChanged(AutoReplySource::MailTips { batch: 2 })
    ));
    assert_eq!(
        tips_reads(&out),
        [vec![0, 1], vec![2]],
        "batches of the server's limit"
    );
    assert_eq!(s.source(), &AutoReplySource::MailTips { batch: 2 });
}

#[test]
fn a_question_not_answered_now_means_one_by_one_and_asking_again_later() {
    let t0 = Instant::now();
    let mut s = gateway(1, true);
    s.on(t0, Input::Full(m(0)));
    s.on(t0, Input::Dispatch);
    let out = s.on(
        t0,
        Input::Probed(ProbeAnswer::Unanswered("connection refused".to_owned())),
    );
    assert!(matches!(
        &out[0],
        Output::SourceChanged(AutoReplySource::OneByOne { why })
            if why == "GetServiceConfiguration failed, asking again later: connection refused"
    ));
    assert_eq!(oof_reads(&out), [0], "read one by one meanwhile");
    let before = s.on(t0 + OOF_REFRESH - MS(1), Input::Dispatch);
    assert!(!before.iter().any(|o| matches!(o, Output::Probe { .. })));
    let again = s.on(t0 + OOF_REFRESH, Input::Dispatch);
    assert!(again.iter().any(|o| matches!(o, Output::Probe { .. })));
}

#[test]
fn a_server_that_refuses_mail_tips_is_read_one_by_one_from_then_on() {
    let t0 = Instant::now();
    let mut s = gateway(2, true);
    s.on(t0, Input::Full(m(0)));
    s.on(t0, Input::Full(m(1)));
    s.on(t0, Input::Dispatch);
    let out = s.on(
        t0,
        Input::Probed(ProbeAnswer::Decided(AutoReplySource::MailTips {
            batch: 10,
        })),
    );
    let out = s.on(
        t0,
        Input::Tips {
            mailboxes: tips_reads(&out)[0].iter().map(|n| m(*n)).collect(),
            answer: TipsAnswer::NotServed("the server answered ErrorMailTipsDisabled".to_owned()),
        },
    );
    assert!(matches!(
        &out[0],
        Output::SourceChanged(AutoReplySource::OneByOne { why }) if why.contains("ErrorMailTipsDisabled")
    ));
    assert_eq!(
        oof_reads(&out),
        [0, 1],
        "the refused batch at once, one by one"
    );
}

// Rule 5: what a tip says.

#[test]
fn tips_are_applied_when_they_tell_and_confirmed_first_when_they_cannot() {
    let t0 = Instant::now();
    let mut s = gateway(3, true);
    for n in 0..3 {
        s.on(t0, Input::Full(m(n)));
    }
    s.on(t0, Input::Dispatch);
    s.on(
        t0,
        Input::Probed(ProbeAnswer::Decided(AutoReplySource::MailTips { batch: 3 })),
    );
    let out = s.on(
        t0,
        Input::Tips {
            mailboxes: vec![m(0), m(1), m(2)],
            answer: TipsAnswer::Read {
                verdicts: vec![
                    TipVerdict::Apply(AutoReply::On),
                    TipVerdict::Agrees,
                    TipVerdict::Confirm,
                ],
                read_at: read_at(),
            },
        },
    );
    let applied: Vec<usize> = out
        .iter()
        .filter_map(|o| match o {
            Output::Apply(mailbox, Update::AutoReply { .. }) => Some(n_of(mailbox)),
            _ => None,
        })
        .collect();
    assert_eq!(applied, [0]);
    assert_eq!(
        oof_reads(&out),
        [2],
        "what a tip could not tell is confirmed"
    );
    // Fewer recipients answered than asked: the batch failed and goes again.
    s.on(t0, Input::Full(m(1)));
    let out = s.on(t0, Input::Dispatch);
    let out = s.on(
        t0,
        Input::Tips {
            mailboxes: tips_reads(&out)[0].iter().map(|n| m(*n)).collect(),
            answer: TipsAnswer::Read {
                verdicts: Vec::new(),
                read_at: read_at(),
            },
        },
    );
    assert_eq!(failed(&out), [(Read::MailTips, 1, RETRY_MIN, true)]);
}

// Rule 6: sweeps.

#[test]
fn after_the_first_reads_a_sweep_reads_everyone_once_per_period() {
    let t0 = Instant::now();
    let mut s = calendar_gateway(10, t0);
    // One by one: ten mailboxes over five minutes, one every 30 s.
    let read = run_sweeps(&mut s, t0, t0 + OOF_REFRESH);
    assert_eq!(read, (0..10).collect::<Vec<_>>(), "everyone once");
}

#[test]
fn with_mail_tips_every_member_is_also_confirmed_once_per_verify_period() {
    let t0 = Instant::now();
    let mut s = gateway(4, true);
    s.on(t0, Input::Dispatch);
    s.on(
        t0,
        Input::Probed(ProbeAnswer::Decided(AutoReplySource::MailTips {
            batch: 50,
        })),
    );
    let confirmed = run_sweeps(&mut s, t0, t0 + OOF_VERIFY);
    assert_eq!(confirmed, [0, 1, 2, 3], "each confirmed once in four hours");
}

// Rule 7: membership.

#[test]
fn a_member_that_leaves_is_forgotten_and_not_retried() {
    let t0 = Instant::now();
    let mut s = calendar_gateway(2, t0);
    s.on(t0, Input::Full(m(0)));
    s.on(t0, Input::Full(m(1)));
    s.on(t0, Input::Leave(m(1)));
    assert!(!s.is_queued(&m(1)));
    let out = s.on(t0, Input::Dispatch);
    assert_eq!(calendar_reads(&out), [vec![0]]);
    assert_eq!(oof_reads(&out), [0]);
    // A read in flight when its mailbox left is not queued again when it fails.
    s.on(t0, Input::Leave(m(0)));
    let out = s.on(t0, calendar_failed(taken(&out), None));
    assert_eq!(failed(&out), [(Read::Calendar, 1, Duration::ZERO, true)]);
    assert!(!s.is_queued(&m(0)));
    // The horizon rolling reads every member still there.
    s.on(t0, Input::Join(m(5)));
    let out = s.on(t0 + SECS(1), Input::RollHorizon);
    assert_eq!(calendar_reads(&out), [vec![5]]);
}

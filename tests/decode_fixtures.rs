//! Every fixture decodes to what the server meant, and bad input gives the typed error
//! naming the frame and byte.

mod support;

use ews::decode_error::Problem;
use ews::error::{Disposition, EwsError};
use ews::ops::get_streaming_events::{ConnectionStatus, EventKind};
use ews::ops::get_user_availability::BusyType;
use ews::ops::get_user_oof_settings::OofState;
use ews::response::ResponseClass;
use ews::response_code::ResponseCode;
use ews::stream::{Response, StreamDecoder};
use std::time::Duration;
use support::{decode_whole, fixture};

fn frames(name: &str) -> Vec<Response> {
    let decoded = decode_whole(&fixture(name));
    assert_eq!(decoded.error, None, "{name}");
    decoded.frames.into_iter().map(|f| f.response).collect()
}

fn streaming(r: &Response) -> &ews::ops::get_streaming_events::StreamingResponse {
    match r {
        Response::GetStreamingEvents(s) => s,
        other => panic!("expected GetStreamingEvents, got {other:?}"),
    }
}

#[test]
fn exchange2016_calendar_burst() {
    let decoded = decode_whole(&fixture("stream-exchange2016-calendar.xml"));
    assert_eq!(decoded.error, None);
    let f = &decoded.frames;
    assert_eq!(f.len(), 3);
    let version = f[0].server_version.as_ref().unwrap();
    assert_eq!((version.major, version.minor), (Some(15), Some(1)));
    assert_eq!(version.version.as_deref(), Some("V2017_07_11"));
    let burst = streaming(&f[0].response);
    assert_eq!(burst.notifications.len(), 2);
    let kinds: Vec<_> = burst.notifications[0]
        .events
        .iter()
        .map(|e| e.kind.clone())
        .collect();
    assert_eq!(
        kinds,
        [
            EventKind::Modified,
            EventKind::FreeBusyChanged,
            EventKind::Modified
        ]
    );
    let first = &burst.notifications[0].events[0];
    assert_eq!(
        first.timestamp.as_ref().unwrap().to_string(),
        "2026-11-23T08:59:58Z"
    );
    assert_eq!(
        first.item_id.as_ref().unwrap().change_key.as_deref(),
        Some("DwAAAA==")
    );
    assert!(burst.notifications[0].events[2].folder_id.is_some());
    assert!(!burst.is_heartbeat() && !burst.is_closed());
    assert!(streaming(&f[1].response).is_heartbeat());
    assert!(streaming(&f[2].response).is_closed());
    assert_eq!(f[1].index, 1);
    assert!(f[1].offset > f[0].offset);
}

#[test]
fn exchange2013_heartbeats_back_to_back() {
    let f = frames("stream-exchange2013-heartbeats.xml");
    assert_eq!(f.len(), 4);
    assert!(f[..3].iter().all(|r| streaming(r).is_heartbeat()));
    assert_eq!(
        streaming(&f[3]).connection_status,
        Some(ConnectionStatus::Closed)
    );
}

#[test]
fn namespace_and_order_variants() {
    let f = frames("stream-namespace-variants.xml");
    assert_eq!(f.len(), 2);
    let first = streaming(&f[0]);
    assert_eq!(first.status.code, ResponseCode::NoError);
    assert_eq!(first.connection_status, Some(ConnectionStatus::Ok));
    assert!(first.error_subscription_ids.is_empty());
    let n = &first.notifications[0];
    assert!(n.subscription_id.as_str().starts_with("EgBtYngwMS"));
    let stamps: Vec<String> = n
        .events
        .iter()
        .map(|e| e.timestamp.as_ref().unwrap().to_string())
        .collect();
    assert_eq!(
        stamps,
        [
            "2026-11-23T09:00:00Z",
            "2026-11-23T09:00:00.5Z",
            "2026-11-23T09:00:00.123Z",
            "2026-11-23T09:00:00.1234567Z",
            "2026-11-23T09:00:01.123456789Z"
        ]
    );
    assert!(
        n.events
            .iter()
            .all(|e| e.item_id.as_ref().is_none_or(|i| i.change_key.is_none()))
    );
    let second = streaming(&f[1]);
    assert!(second.notifications.is_empty() && second.is_closed());
}

#[test]
fn every_event_kind() {
    let f = frames("stream-event-kinds.xml");
    let n = &streaming(&f[0]).notifications[0];
    assert_eq!(n.previous_watermark.as_deref(), Some("AQAAAL0Zc5sAAAAA"));
    assert_eq!(n.more_events, Some(false));
    let kinds: Vec<_> = n.events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "CopiedEvent",
            "MovedEvent",
            "ModifiedEvent",
            "NewMailEvent",
            "StatusEvent"
        ]
    );
    assert!(n.events[0].old_item_id.is_some() && n.events[0].old_parent_folder_id.is_some());
    assert!(n.events[1].old_folder_id.is_some() && n.events[1].folder_id.is_some());
    assert_eq!(n.events[3].item_id.as_ref().unwrap().id, "A&B+C=");
    assert_eq!(n.events[4].watermark.as_deref(), Some("AQAAAL0Zc5sFAAAA"));
    assert_eq!(n.events[4].timestamp, None);
}

#[test]
fn lost_subscriptions_in_the_stream() {
    let f = frames("stream-error-subscription-ids.xml");
    let error = streaming(&f[1]);
    assert_eq!(error.status.class, ResponseClass::Error);
    assert_eq!(error.status.code, ResponseCode::ErrorSubscriptionNotFound);
    assert_eq!(error.error_subscription_ids.len(), 2);
    assert!(error.is_closed());
    let err = error.status.clone().into_result().unwrap_err();
    assert_eq!(err.disposition(), Disposition::Resubscribe);
}

#[test]
fn throttling_in_both_forms() {
    let f = frames("stream-error-server-busy.xml");
    let busy = streaming(&f[0]).status.clone();
    assert_eq!(busy.back_off_ms, Some(12000));
    assert_eq!(
        busy.into_result().unwrap_err().disposition(),
        Disposition::Throttled(Duration::from_millis(12000))
    );
    let f = frames("fault-server-busy.xml");
    let Response::Fault(fault) = &f[0] else {
        panic!("{f:?}")
    };
    assert_eq!(fault.fault_code, "a:ErrorServerBusy");
    assert_eq!(fault.status.code, ResponseCode::ErrorServerBusy);
    assert_eq!(fault.status.back_off_ms, Some(45000));
    assert_eq!(
        EwsError::Fault(Box::new(fault.clone())).disposition(),
        Disposition::Throttled(Duration::from_millis(45000))
    );
    let f = frames("subscribe-internal-error-inner-busy.xml");
    let Response::Subscribe(s) = &f[0] else {
        panic!()
    };
    assert_eq!(s.status.code, ResponseCode::ErrorInternalServerError);
    assert_eq!(s.status.inner_code, Some(ResponseCode::ErrorServerBusy));
    assert!(matches!(
        s.status.clone().into_result().unwrap_err().disposition(),
        Disposition::Throttled(_)
    ));
}

#[test]
fn not_mailbox_owner_fault_is_fatal() {
    let f = frames("fault-not-mailbox-owner.xml");
    let Response::Fault(fault) = &f[0] else {
        panic!()
    };
    assert_eq!(fault.fault_code, "soap:Client");
    assert!(fault.fault_string.contains("not mailbox owner"));
    assert_eq!(fault.status.code, ResponseCode::Other("soap:Client".into()));
}

#[test]
fn subscribe_and_unsubscribe() {
    let Response::Subscribe(ok) = &frames("subscribe-success.xml")[0] else {
        panic!()
    };
    assert_eq!(ok.status.code, ResponseCode::NoError);
    assert!(ok.subscription_id.is_some());
    let Response::Subscribe(denied) = &frames("subscribe-error-delegate.xml")[0] else {
        panic!()
    };
    assert_eq!(
        denied.status.code,
        ResponseCode::ErrorSubscriptionDelegateAccessNotSupported
    );
    assert_eq!(denied.subscription_id, None);
    assert_eq!(
        denied
            .status
            .clone()
            .into_result()
            .unwrap_err()
            .disposition(),
        Disposition::Fatal
    );
    let Response::Unsubscribe(ok) = &frames("unsubscribe-success.xml")[0] else {
        panic!()
    };
    assert_eq!(ok.status.code, ResponseCode::NoError);
    let Response::Unsubscribe(gone) = &frames("unsubscribe-error-not-found.xml")[0] else {
        panic!()
    };
    assert_eq!(gone.status.code, ResponseCode::ErrorSubscriptionNotFound);
}

#[test]
fn availability_per_mailbox_in_order() {
    let Response::GetUserAvailability(r) = &frames("availability-mixed.xml")[0] else {
        panic!()
    };
    assert_eq!(r.mailboxes.len(), 5);
    let busy: Vec<_> = r.mailboxes[0].events.iter().map(|e| e.busy_type).collect();
    assert_eq!(
        busy,
        [
            BusyType::Free,
            BusyType::Busy,
            BusyType::Tentative,
            BusyType::WorkingElsewhere,
            BusyType::Oof,
            BusyType::NoData
        ]
    );
    assert_eq!(
        r.mailboxes[0].events[1].start.to_string(),
        "2026-11-23T09:00:00"
    );
    assert_eq!(
        r.mailboxes[0].events[1]
            .start
            .to_timestamp_assuming_utc()
            .unwrap()
            .to_string(),
        "2026-11-23T09:00:00Z"
    );
    assert_eq!(
        r.mailboxes[1].events[0].start.to_string(),
        "2026-11-23T09:00:00Z"
    );
    assert_eq!(
        r.mailboxes[1].events[0].end.to_string(),
        "2026-11-23T09:30:00Z"
    );
    assert_eq!(
        r.mailboxes[1].events[1].start.to_string(),
        "2026-11-23T09:00:00Z"
    );
    assert_eq!(
        r.mailboxes[2].status.code,
        ResponseCode::ErrorMailRecipientNotFound
    );
    assert!(r.mailboxes[2].events.is_empty());
    assert!(r.mailboxes[3].events.is_empty() && r.mailboxes[3].status.code.is_success());
    assert!(r.mailboxes[4].events.is_empty() && r.mailboxes[4].status.code.is_success());
    let Response::GetUserAvailability(empty) = &frames("availability-empty-array.xml")[0] else {
        panic!()
    };
    assert!(empty.mailboxes.is_empty());
}

#[test]
fn oof_states() {
    let read = |name| match &frames(name)[0] {
        Response::GetUserOofSettings(r) => r.settings.clone().unwrap(),
        other => panic!("{other:?}"),
    };
    let scheduled = read("oof-scheduled.xml");
    assert_eq!(scheduled.state, OofState::Scheduled);
    assert_eq!(scheduled.start.unwrap().to_string(), "2026-11-23T17:00:00Z");
    assert_eq!(scheduled.end.unwrap().to_string(), "2026-11-30T08:00:00Z");
    assert_eq!(read("oof-enabled.xml").state, OofState::Enabled);
    let disabled = read("oof-disabled.xml");
    assert_eq!((disabled.state, disabled.start), (OofState::Disabled, None));
}

fn error_of(name: &str) -> (usize, ews::decode_error::DecodeError) {
    let decoded = decode_whole(&fixture(name));
    (
        decoded.frames.len(),
        decoded
            .error
            .unwrap_or_else(|| panic!("{name} decoded cleanly")),
    )
}

#[test]
fn bad_input_names_frame_and_byte() {
    let body = fixture("bad/doctype.xml");
    let (good, e) = error_of("bad/doctype.xml");
    assert_eq!(
        (good, e.frame, e.problem.clone()),
        (1, 1, Problem::DoctypeNotAllowed)
    );
    assert_eq!(
        &body[e.offset as usize..e.offset as usize + 9],
        b"<!DOCTYPE"
    );

    let (good, e) = error_of("bad/truncated-second-envelope.xml");
    assert_eq!((good, e.frame, e.problem), (1, 1, Problem::Truncated));
    assert_eq!(
        e.offset as usize,
        fixture("bad/truncated-second-envelope.xml").len()
    );

    let (good, e) = error_of("bad/mismatched-tag.xml");
    assert_eq!((good, e.frame), (1, 1));
    assert!(
        matches!(e.problem, Problem::Syntax(ref m) if m.contains("does not match")),
        "{e}"
    );

    let body = fixture("bad/unknown-root.xml");
    let (good, e) = error_of("bad/unknown-root.xml");
    assert_eq!(
        (good, e.frame, e.problem),
        (
            0,
            0,
            Problem::UnknownRoot {
                name: "html".into()
            }
        )
    );
    assert_eq!(&body[e.offset as usize..e.offset as usize + 5], b"<html");

    let body = fixture("bad/text-between-envelopes.xml");
    let (good, e) = error_of("bad/text-between-envelopes.xml");
    assert_eq!(
        (good, e.frame, e.problem),
        (1, 1, Problem::TextOutsideEnvelope)
    );
    assert_eq!(body[e.offset as usize], b'O');

    let (_, e) = error_of("bad/unknown-operation.xml");
    assert_eq!(
        e.problem,
        Problem::UnknownOperation {
            name: "SyncFolderItemsResponse".into()
        }
    );

    let body = fixture("bad/invalid-busy-type.xml");
    let (_, e) = error_of("bad/invalid-busy-type.xml");
    assert!(matches!(
        e.problem,
        Problem::InvalidValue {
            element: "BusyType",
            ..
        }
    ));
    assert!(body[e.offset as usize..].starts_with(b"<BusyType>Away"));

    let (_, e) = error_of("bad/invalid-back-off.xml");
    assert!(matches!(
        e.problem,
        Problem::InvalidValue {
            element: "BackOffMilliseconds",
            ..
        }
    ));
}

#[test]
fn oversized_frame_is_refused_without_buffering_it() {
    let limit = 4096;
    let mut decoder = StreamDecoder::new(limit);
    decoder.push(b"<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\"><s:Body>");
    let filler = vec![b'x'; 1024];
    let mut error = None;
    for _ in 0..64 {
        decoder.push(&filler);
        assert!(
            decoder.buffered() <= limit + filler.len(),
            "buffer grew to {}",
            decoder.buffered()
        );
        if let Err(e) = decoder.next_frame() {
            error = Some(e);
            break;
        }
    }
    let e = error.expect("an oversized frame is an error");
    assert_eq!(
        (e.frame, e.offset, e.problem),
        (0, limit as u64, Problem::FrameTooLarge { limit })
    );
    decoder.push(b"</s:Body></s:Envelope>");
    assert_eq!(decoder.next_frame(), Ok(None), "nothing after an error");
}

#[test]
fn invalid_utf8_is_located() {
    let mut body = fixture("stream-exchange2013-heartbeats.xml");
    let at = body.windows(7).position(|w| w == b"NoError").unwrap();
    body[at] = 0xFF;
    let decoded = decode_whole(&body);
    let e = decoded.error.unwrap();
    assert_eq!(
        (e.frame, e.offset as usize, e.problem),
        (0, at, Problem::InvalidUtf8)
    );
}

#[test]
fn gromox_error_ids_without_a_namespace_are_read() {
    let f = frames("gromox-error-ids-unqualified.xml");
    let s = streaming(&f[0]);
    assert_eq!(s.status.code, ResponseCode::ErrorInvalidSubscription);
    let ids: Vec<&str> = s
        .error_subscription_ids
        .iter()
        .map(|i| i.as_str())
        .collect();
    assert_eq!(ids, ["7", "12"]);
}

#[test]
fn gromox_fault_with_http_200_keeps_its_response_code() {
    let f = frames("gromox-fault-impersonation-denied.xml");
    let Response::Fault(fault) = &f[0] else {
        panic!("{:?}", f[0])
    };
    assert_eq!(fault.status.code, ResponseCode::ErrorImpersonateUserDenied);
    let error = EwsError::Fault(Box::new(fault.clone()));
    assert_eq!(error.disposition(), Disposition::Fatal);
}

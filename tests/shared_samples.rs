//! Published EWS messages from real servers and documentation
//! (`../shared/ews-samples/`, read in place, never copied): the responses we read
//! decode, the ones published broken fail with a located error, and responses to
//! operations we never send are refused as unknown operations. Skipped, with a note on
//! stderr, when `../shared` is absent.

mod support;

use ews::decode_error::Problem;
use ews::stream::Response;
use support::{decode_whole, shared_dir};

fn sample(name: &str) -> Option<Vec<u8>> {
    let Some(dir) = shared_dir() else {
        support::missing(&format!("../shared (the published sample {name})"));
        return None;
    };
    let path = dir.join("ews-samples").join(name);
    Some(std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
}

#[test]
fn real_exchange_streaming_capture() {
    let Some(body) = sample("getstreamingevents-response-calendar-freebusychanged.xml") else {
        return;
    };
    let decoded = decode_whole(&body);
    assert_eq!(decoded.error, None);
    let Response::GetStreamingEvents(r) = &decoded.frames[0].response else {
        panic!()
    };
    assert_eq!(r.notifications.len(), 2);
    assert_eq!(r.notifications[0].events.len(), 7);
    assert_eq!(r.notifications[1].events.len(), 7);
    let version = decoded.frames[0].server_version.as_ref().unwrap();
    assert_eq!(version.major_build, Some(1591));
}

#[test]
fn documented_responses_decode() {
    let expect = [
        ("subscribe-streaming-response.xml", "Subscribe", "NoError"),
        (
            "subscribe-error-delegate-access-not-supported.xml",
            "Subscribe",
            "ErrorSubscriptionDelegateAccessNotSupported",
        ),
        (
            "unsubscribe-error-subscription-not-found.xml",
            "Unsubscribe",
            "ErrorSubscriptionNotFound",
        ),
        (
            "getstreamingevents-response-closed-no-notifications.xml",
            "GetStreamingEvents",
            "NoError",
        ),
        (
            "getstreamingevents-response-closed-exchangelib.xml",
            "GetStreamingEvents",
            "NoError",
        ),
        (
            "getstreamingevents-error-invalid-subscription-errorsubscriptionids.xml",
            "GetStreamingEvents",
            "ErrorInvalidSubscription",
        ),
        (
            "getuseravailability-response-1.xml",
            "GetUserAvailability",
            "NoError",
        ),
        (
            "getuseravailability-response-2-freebusy.xml",
            "GetUserAvailability",
            "NoError",
        ),
        (
            "getuseravailability-response-empty-view.xml",
            "GetUserAvailability",
            "NoError",
        ),
        (
            "getuseravailability-response-error-invalid-smtp.xml",
            "GetUserAvailability",
            "ErrorInvalidSmtpAddress",
        ),
        (
            "getuseroofsettings-response.xml",
            "GetUserOofSettings",
            "NoError",
        ),
        (
            "getuseroofsettings-soap-fault-not-mailbox-owner.xml",
            "Fault",
            "soap:Client",
        ),
        (
            "error-server-busy-soap-fault-backoff.xml",
            "Fault",
            "ErrorServerBusy",
        ),
    ];
    for (name, operation, code) in expect {
        let Some(body) = sample(name) else { return };
        let decoded = decode_whole(&body);
        assert_eq!(decoded.error, None, "{name}");
        assert_eq!(decoded.frames.len(), 1, "{name}");
        let response = &decoded.frames[0].response;
        assert_eq!(response.operation(), operation, "{name}");
        assert_eq!(response.status().code.as_str(), code, "{name}");
    }
}

#[test]
fn published_broken_samples_fail_with_located_errors() {
    for name in [
        "getstreamingevents-response-notifications-1-malformed.xml",
        "getstreamingevents-response-notifications-2-malformed.xml",
        "getstreamingevents-response-error-invalid-subscription-malformed.xml",
    ] {
        let Some(body) = sample(name) else { return };
        let decoded = decode_whole(&body);
        let e = decoded.error.unwrap_or_else(|| panic!("{name} decoded"));
        assert!(e.offset as usize <= body.len(), "{name}: {e}");
        assert!(
            matches!(
                e.problem,
                Problem::Truncated | Problem::Syntax(_) | Problem::UnknownRoot { .. }
            ),
            "{name}: {e}"
        );
    }
}

#[test]
fn other_operations_are_refused_by_name() {
    for (name, op) in [
        (
            "error-internal-server-error-inner-error.xml",
            "DeleteItemResponse",
        ),
        (
            "error-server-busy-response-message-backoff.xml",
            "SyncFolderItemsResponse",
        ),
        (
            "getevents-response-pull-newmail-watermarks.xml",
            "GetEventsResponse",
        ),
    ] {
        let Some(body) = sample(name) else { return };
        let e = decode_whole(&body)
            .error
            .unwrap_or_else(|| panic!("{name} decoded"));
        assert_eq!(
            e.problem,
            Problem::UnknownOperation { name: op.into() },
            "{name}"
        );
    }
}

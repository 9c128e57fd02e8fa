//! From presence to what a SIP presence server is told: which state a snapshot calls
//! for ([`want_of`]), the note a watcher reads ([`note`]), and the PUBLISH request
//! itself ([`request`]).

use jiff::Timestamp;
use jiff::tz::TimeZone;
use sip::message::Request;
use sip::pidf::{self, Activity, Document};

use super::state::{Kind, Publish, Want};
use crate::presence::snapshot::Snapshot;
use crate::presence::timeline::Availability;

/// Our tuple's id in every publication: a presence server composes it with the user's
/// devices' tuples instead of replacing them.
pub const TUPLE_ID: &str = "ews-presence-calendar";

/// What `snapshot` should publish: a meeting or away with its end; available only when
/// `publish_available` (else no publication: the calendar has no opinion); nothing for
/// unknown or an opted-out user, so the server falls back to the user's own state.
pub fn want_of(snapshot: &Snapshot, publish_available: bool) -> Option<Want> {
    if !snapshot.calendar_presence {
        return None;
    }
    let activity = match snapshot.reading.availability {
        Availability::InAMeeting => Activity::Meeting,
        Availability::Away => Activity::Away,
        Availability::Available if publish_available => Activity::None,
        Availability::Available | Availability::Unknown => return None,
    };
    Some(Want {
        activity,
        until: snapshot.reading.until,
    })
}

/// "In a meeting until 14:00": the time in `zone`, with the weekday when it is not
/// today and the date when it is a week or more away.
pub fn note(want: &Want, now: Timestamp, zone: &TimeZone) -> String {
    let what = match want.activity {
        Activity::Meeting => "In a meeting",
        Activity::Away => "Away",
        Activity::None => "Available",
    };
    let Some(until) = want.until.and_then(|s| Timestamp::from_second(s).ok()) else {
        return what.to_owned();
    };
    let end = zone.to_datetime(until);
    let today = zone.to_datetime(now);
    let when = if end.date() == today.date() {
        end.strftime("%H:%M").to_string()
    } else if until.as_second() - now.as_second() < 6 * 86_400 {
        end.strftime("%a %H:%M").to_string()
    } else {
        end.strftime("%Y-%m-%d %H:%M").to_string()
    };
    format!("{what} until {when}")
}

/// Who we are in a request: the presentity itself, as a device of the user would be.
pub struct Identity<'a> {
    /// The presentity's URI (Request-URI, From, To).
    pub presentity: &'a str,
    /// A fresh From tag.
    pub tag: &'a str,
    /// A fresh Call-ID.
    pub call_id: &'a str,
}

/// The PUBLISH for `publish` (RFC 3903 §4): `Event: presence`, `Expires`, the ETag
/// in `SIP-If-Match` but for an initial one, a PIDF body for initial and modify.
pub fn request(publish: &Publish, who: &Identity<'_>, now: Timestamp, zone: &TimeZone) -> Request {
    let mut request = Request::new("PUBLISH", who.presentity)
        .header("From", format!("<{}>;tag={}", who.presentity, who.tag))
        .header("To", format!("<{}>", who.presentity))
        .header("Call-ID", who.call_id)
        .header("CSeq", "1 PUBLISH")
        .header("Event", "presence")
        .header("Expires", publish.expires.to_string());
    if let Some(etag) = &publish.etag {
        request = request.header("SIP-If-Match", etag.clone());
    }
    if let (Kind::Initial | Kind::Modify, Some(want)) = (publish.kind, &publish.want) {
        let note = note(want, now, zone);
        let body = Document {
            entity: who.presentity,
            tuple_id: TUPLE_ID,
            activity: want.activity,
            until: want.until.and_then(|s| Timestamp::from_second(s).ok()),
            note: &note,
            timestamp: now,
        }
        .to_xml();
        request = request.body(pidf::CONTENT_TYPE, body.into_bytes());
    }
    request
}

#[cfg(test)]
mod tests {
    use super::*;
    use common::mailbox::Mailbox;

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn what_each_availability_publishes() {
        let mut s = Snapshot::bare("a@b.test", "g", Availability::InAMeeting);
        s.reading.until = Some(100);
        assert_eq!(
            want_of(&s, false),
            Some(Want {
                activity: Activity::Meeting,
                until: Some(100)
            })
        );
        s.reading.availability = Availability::Away;
        assert_eq!(want_of(&s, false).map(|w| w.activity), Some(Activity::Away));
        s.reading.availability = Availability::Available;
        assert_eq!(want_of(&s, false), None, "the calendar has no opinion");
        assert_eq!(want_of(&s, true).map(|w| w.activity), Some(Activity::None));
        s.reading.availability = Availability::Unknown;
        assert_eq!(want_of(&s, true), None);
        s.reading.availability = Availability::InAMeeting;
        s.calendar_presence = false;
        assert_eq!(want_of(&s, true), None, "opted out");
    }

    #[test]
    fn notes_say_until_when_in_local_time() {
        let zone = TimeZone::get("Europe/Berlin").unwrap();
        let now = at("2026-12-04T12:10:00Z");
        let meeting = |until: &str| Want {
            activity: Activity::Meeting,
            until: Some(at(until).as_second()),
        };
        assert_eq!(
            note(&meeting("2026-12-04T13:00:00Z"), now, &zone),
            "In a meeting until 14:00"
        );
        assert_eq!(
            note(&meeting("2026-12-07T08:00:00Z"), now, &zone),
            "In a meeting until Mon 09:00"
        );
        assert_eq!(
            note(&meeting("2026-12-24T08:00:00Z"), now, &zone),
            "In a meeting until 2026-12-24 09:00"
        );
        let away = Want {
            activity: Activity::Away,
            until: None,
        };
        assert_eq!(note(&away, now, &zone), "Away");
    }

    #[test]
    fn requests_carry_what_rfc_3903_asks() {
        let mailbox = Mailbox::parse("alice@example.test").unwrap();
        let who = Identity {
            presentity: "sip:alice@example.test",
            tag: "t1",
            call_id: "c1",
        };
        let initial = Publish {
            mailbox: mailbox.clone(),
            kind: Kind::Initial,
            etag: None,
            want: Some(Want {
                activity: Activity::Meeting,
                until: None,
            }),
            expires: 600,
        };
        let r = request(&initial, &who, Timestamp::UNIX_EPOCH, &TimeZone::UTC);
        assert_eq!(
            (r.method.as_str(), r.uri.as_str()),
            ("PUBLISH", "sip:alice@example.test")
        );
        assert_eq!(r.get("Event"), Some("presence"));
        assert_eq!(r.get("Expires"), Some("600"));
        assert_eq!(r.get("SIP-If-Match"), None);
        assert_eq!(r.get("Content-Type"), Some("application/pidf+xml"));
        assert!(String::from_utf8_lossy(&r.body).contains("<rpid:meeting/>"));
        let refresh = Publish {
            kind: Kind::Refresh,
            etag: Some("e1".into()),
            ..initial.clone()
        };
        let r = request(&refresh, &who, Timestamp::UNIX_EPOCH, &TimeZone::UTC);
        assert_eq!(r.get("SIP-If-Match"), Some("e1"));
        assert!(r.body.is_empty() && r.get("Content-Type").is_none());
        let remove = Publish {
            kind: Kind::Remove,
            etag: Some("e2".into()),
            want: None,
            expires: 0,
            mailbox,
        };
        let r = request(&remove, &who, Timestamp::UNIX_EPOCH, &TimeZone::UTC);
        assert_eq!((r.get("Expires"), r.body.len()), (Some("0"), 0));
    }
}

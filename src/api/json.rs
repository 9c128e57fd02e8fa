//! Rendering what the API serves as JSON: presence snapshots (written directly on the
//! hot paths of batch queries and the change feed) and gateway reports.

use jiff::Timestamp;
use serde_json::{Value, json};

use crate::engine::status::GatewayReport;
use crate::json_string::push_json_str;
use crate::presence::snapshot::Snapshot;

/// A day of one mailbox's availability, as segments.
pub fn day(
    mailbox: &common::mailbox::Mailbox,
    from: i64,
    to: i64,
    segments: &[crate::presence::day::Segment],
) -> Value {
    let time = |s: i64| {
        Timestamp::from_second(s)
            .map(|t| t.to_string())
            .unwrap_or_default()
    };
    json!({
        "mailbox": mailbox.as_str(),
        "from": time(from),
        "to": time(to),
        "segments": segments.iter().map(|s| json!({
            "start": time(s.start),
            "end": time(s.end),
            "availability": s.availability.as_str(),
            "calendar": s.calendar.map(|c| c.as_str()),
        })).collect::<Vec<_>>(),
    })
}

/// Undiscovered mailboxes listed per gateway on `/v1/gateways` (all are counted).
const MAX_UNDISCOVERED_LISTED: usize = 20;

/// Appends `t` as a JSON string (RFC 3339, as `Timestamp`'s `Display` writes it),
/// without an intermediate allocation.
fn push_timestamp(out: &mut String, t: Timestamp) {
    if t.subsec_nanosecond() == 0
        && let Some(text) = whole_second_utc(t.as_second())
    {
        out.push('"');
        out.push_str(std::str::from_utf8(&text).unwrap_or_default());
        out.push('"');
        return;
    }
    use std::fmt::Write;
    // Writing into a String cannot fail.
    let _ = write!(out, "\"{t}\"");
}

/// `secs` since the Unix epoch as `YYYY-MM-DDTHH:MM:SSZ`, for 1970 to 9999 (None
/// outside). Every instant the API serves is a whole second in that range, and jiff's
/// general printer stood out in profiles of the change feed in a storm.
fn whole_second_utc(secs: i64) -> Option<[u8; 20]> {
    const LAST: i64 = 253_402_300_799; // 9999-12-31T23:59:59Z
    if !(0..=LAST).contains(&secs) {
        return None;
    }
    let (days, second_of_day) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01, counted in 400-year eras from 0000-03-01
    // so that the leap day ends each year.
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    let mut text = *b"0000-00-00T00:00:00Z";
    let mut put = |at: usize, value: i64, digits: usize| {
        let mut value = value;
        for i in (0..digits).rev() {
            text[at + i] = b'0' + (value % 10) as u8;
            value /= 10;
        }
    };
    put(0, year, 4);
    put(5, month, 2);
    put(8, day, 2);
    put(11, second_of_day / 3_600, 2);
    put(14, second_of_day / 60 % 60, 2);
    put(17, second_of_day % 60, 2);
    Some(text)
}

fn push_time(out: &mut String, secs: Option<i64>) {
    match secs.and_then(|s| Timestamp::from_second(s).ok()) {
        Some(t) => push_timestamp(out, t),
        None => out.push_str("null"),
    }
}

fn rfc3339(secs: Option<i64>) -> Value {
    secs.and_then(|s| Timestamp::from_second(s).ok())
        .map_or(Value::Null, |t| t.to_string().into())
}

/// Appends the presence object of `s` to `out`; the same fields and values as
/// [`presence`].
pub fn write_presence(s: &Snapshot, out: &mut String) {
    out.push_str("{\"mailbox\":");
    push_json_str(out, s.mailbox.as_str());
    out.push_str(",\"availability\":\"");
    out.push_str(s.reading.availability.as_str());
    out.push_str("\",\"calendar\":");
    match s.reading.calendar {
        Some(c) => {
            out.push('"');
            out.push_str(c.as_str());
            out.push('"');
        }
        None => out.push_str("null"),
    }
    out.push_str(",\"out_of_office\":");
    out.push_str(if s.reading.out_of_office {
        "true"
    } else {
        "false"
    });
    out.push_str(",\"since\":");
    push_time(out, s.reading.since);
    out.push_str(",\"until\":");
    push_time(out, s.reading.until);
    out.push_str(",\"synced_at\":");
    match s.synced_at {
        Some(t) => push_timestamp(out, t),
        None => out.push_str("null"),
    }
    out.push_str(",\"stale\":");
    out.push_str(if s.stale { "true" } else { "false" });
    out.push_str(",\"problem\":");
    match &s.problem {
        Some(p) => push_json_str(out, p),
        None => out.push_str("null"),
    }
    out.push_str(",\"gateway\":");
    push_json_str(out, &s.gateway);
    out.push_str(",\"calendar_presence\":");
    out.push_str(if s.calendar_presence { "true" } else { "false" });
    if let Some(previous) = s.previous {
        out.push_str(",\"previous\":\"");
        out.push_str(previous.as_str());
        out.push('"');
    }
    out.push('}');
}

/// The presence object of `s`.
pub fn presence(s: &Snapshot) -> Value {
    let mut value = json!({
        "mailbox": s.mailbox.as_str(),
        "availability": s.reading.availability.as_str(),
        "calendar": s.reading.calendar.map(|c| c.as_str()),
        "out_of_office": s.reading.out_of_office,
        "since": rfc3339(s.reading.since),
        "until": rfc3339(s.reading.until),
        "synced_at": s.synced_at.map(|t| t.to_string()),
        "stale": s.stale,
        "problem": s.problem.as_deref(),
        "gateway": &*s.gateway,
        "calendar_presence": s.calendar_presence,
    });
    if let (Some(previous), Value::Object(map)) = (s.previous, &mut value) {
        map.insert("previous".into(), previous.as_str().into());
    }
    value
}

/// One `/v1/gateways` entry; `unknown` is how many of its mailboxes read unknown,
/// `problems` the most common problems its mailboxes carry, with how many carry each.
pub fn gateway(
    r: &GatewayReport,
    unknown: usize,
    problems: &[(std::sync::Arc<str>, usize)],
    now: Timestamp,
) -> Value {
    let h = &r.health;
    json!({
        "name": r.name,
        "kind": r.kind,
        "url": r.url,
        "reachable": h.reachable,
        "tls": r.tls,
        "auth": r.auth,
        "tls_verified": h.tls_verified,
        "auth_ok": h.auth_ok,
        "server_version": h.server_version,
        "groups": r.groups,
        "groups_waiting": r.groups_waiting,
        "connections_open": r.connections_open,
        "max_connections": r.max_connections,
        "subscriptions_live": r.subscriptions_live,
        "subscriptions_failed": r.subscriptions_failed,
        "mailboxes": r.mailboxes,
        "mailboxes_unknown": unknown,
        // The same words each mailbox's presence carries.
        "problems": problems.iter().map(|(text, n)| json!({"problem": &**text, "mailboxes": n})).collect::<Vec<_>>(),
        "mailboxes_over_capacity": r.mailboxes_over_capacity,
        "events_received": r.events_received,
        "one_mailbox_per_stream": r.one_mailbox_per_stream,
        "auto_replies": r.auto_replies,
        "mailboxes_undiscovered": r.undiscovered.len(),
        // The first few, with why: enough to see the pattern without a huge answer.
        "undiscovered": r.undiscovered.iter().take(MAX_UNDISCOVERED_LISTED).map(|(m, why)| json!({"mailbox": m.as_str(), "reason": why})).collect::<Vec<_>>(),
        "last_error": h.last_error.as_ref().map(|(at, message)| json!({"at": at.to_string(), "message": message})),
        "throttled_until": h.throttled_until.filter(|t| *t > now).map(|t| t.to_string()),
        "plain_http_warning": r.plain_http,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::presence::timeline::{Availability, CalendarState, Reading};

    #[test]
    fn whole_seconds_print_as_jiff_prints_them() {
        let mut secs: Vec<i64> = vec![0, 59, 86_399, 86_400, 951_782_400, 4_107_542_399];
        secs.extend([Timestamp::MAX.as_second(), 1_582_934_400, 1_709_164_800]);
        // Every day of four centuries, at a varying time of day.
        secs.extend((0..146_097).map(|day| 946_684_800 + day * 86_400 + (day * 7_919) % 86_400));
        for s in secs {
            let t = Timestamp::from_second(s).unwrap();
            let text = whole_second_utc(s).unwrap();
            assert_eq!(std::str::from_utf8(&text).unwrap(), t.to_string(), "{s}");
        }
        assert_eq!(whole_second_utc(-1), None);
        assert_eq!(
            whole_second_utc(253_402_300_799).unwrap(),
            *b"9999-12-31T23:59:59Z"
        );
        assert_eq!(whole_second_utc(253_402_300_800), None);
        let mut out = String::new();
        push_timestamp(&mut out, Timestamp::new(1_800_000_000, 5).unwrap());
        assert_eq!(out, "\"2027-01-15T08:00:00.000000005Z\"");
    }

    #[test]
    fn direct_json_equals_the_value_form() {
        let mut s = Snapshot::bare("a\\b@example.test", "gw\\1", Availability::Unknown);
        let direct = |s: &Snapshot| {
            let mut out = String::new();
            write_presence(s, &mut out);
            serde_json::from_str::<Value>(&out).unwrap()
        };
        assert_eq!(direct(&s), presence(&s), "unsynced");
        s.reading = Reading {
            availability: Availability::InAMeeting,
            calendar: Some(CalendarState::Busy),
            out_of_office: true,
            since: Some(100),
            until: Some(200),
        };
        s.synced_at = Some(Timestamp::from_second(50).unwrap());
        s.stale = true;
        s.problem = Some("a \"quoted\" problem".into());
        assert_eq!(direct(&s), presence(&s), "synced, stale");
        assert_eq!(direct(&s)["availability"], "in-a-meeting");
        assert_eq!(direct(&s)["problem"], "a \"quoted\" problem");
        s.previous = Some(Availability::Available);
        s.calendar_presence = false;
        assert_eq!(direct(&s), presence(&s), "on the feed, opted out");
        assert_eq!(direct(&s)["previous"], "available");
    }
}

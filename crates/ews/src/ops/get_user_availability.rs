//! GetUserAvailability with the FreeBusy view: each mailbox's calendar events (start,
//! end, BusyType) over a time window, for up to 100 mailboxes per request. We ask in
//! UTC, so times without an offset in the answer are UTC.

use jiff::Timestamp;

use crate::decode_error::{FrameError, Problem};
use crate::ops::RequestError;
use crate::response::Status;
use crate::soap::MESSAGES_AND_TYPES;
use crate::types::EwsDateTime;
use crate::xml_tree::Element;
use crate::xml_write::XmlWriter;
use common::mailbox::Mailbox;

/// Most mailboxes one request may name.
pub const MAX_MAILBOXES: usize = 100;

/// Writes a UTC `SerializableTimeZone`: no bias, no daylight saving.
fn write_utc_time_zone(w: &mut XmlWriter) {
    w.open("t:TimeZone", &[]);
    w.leaf("t:Bias", "0");
    for part in ["t:StandardTime", "t:DaylightTime"] {
        w.open(part, &[]);
        w.leaf("t:Bias", "0");
        w.leaf("t:Time", "00:00:00");
        w.leaf("t:DayOrder", "1");
        w.leaf("t:Month", "1");
        w.leaf("t:DayOfWeek", "Sunday");
        w.close(part);
    }
    w.close("t:TimeZone");
}

/// `2026-11-25T10:00:00`: a UTC instant as a civil time in our UTC request zone.
fn civil_utc(ts: Timestamp) -> String {
    ts.to_zoned_datetime(jiff::tz::TimeZone::UTC)
        .datetime()
        .strftime("%Y-%m-%dT%H:%M:%S")
        .to_string()
}

/// The `m:GetUserAvailabilityRequest` body element: FreeBusy view of `mailboxes` over
/// `[start, end)`, in UTC. Refuses 0 or more than 100 mailboxes and an empty window.
pub fn body(
    mailboxes: &[Mailbox],
    start: Timestamp,
    end: Timestamp,
) -> Result<String, RequestError> {
    if mailboxes.is_empty() || mailboxes.len() > MAX_MAILBOXES {
        return Err(RequestError::MailboxCount {
            got: mailboxes.len(),
        });
    }
    if end <= start {
        return Err(RequestError::EmptyWindow { start, end });
    }
    let mut w = XmlWriter::new();
    w.open("m:GetUserAvailabilityRequest", &MESSAGES_AND_TYPES);
    write_utc_time_zone(&mut w);
    w.open("m:MailboxDataArray", &[]);
    for mailbox in mailboxes {
        w.open("t:MailboxData", &[]);
        w.open("t:Email", &[]);
        w.leaf("t:Address", mailbox.as_str());
        w.close("t:Email");
        w.leaf("t:AttendeeType", "Required");
        w.leaf("t:ExcludeConflicts", "false");
        w.close("t:MailboxData");
    }
    w.close("m:MailboxDataArray");
    w.open("t:FreeBusyViewOptions", &[]);
    w.open("t:TimeWindow", &[]);
    w.leaf("t:StartTime", &civil_utc(start));
    w.leaf("t:EndTime", &civil_utc(end));
    w.close("t:TimeWindow");
    w.leaf("t:RequestedView", "FreeBusy");
    w.close("t:FreeBusyViewOptions");
    w.close("m:GetUserAvailabilityRequest");
    Ok(w.finish())
}

/// `BusyType` (LegacyFreeBusyType).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BusyType {
    /// `Free`
    Free,
    /// `Tentative`
    Tentative,
    /// `Busy`
    Busy,
    /// `OOF` (shown as Out of Office)
    Oof,
    /// `WorkingElsewhere`
    WorkingElsewhere,
    /// `NoData`
    NoData,
}

impl BusyType {
    /// Parses the wire value.
    pub fn parse(text: &str) -> Option<BusyType> {
        match text {
            "Free" => Some(BusyType::Free),
            "Tentative" => Some(BusyType::Tentative),
            "Busy" => Some(BusyType::Busy),
            "OOF" => Some(BusyType::Oof),
            "WorkingElsewhere" => Some(BusyType::WorkingElsewhere),
            "NoData" => Some(BusyType::NoData),
            _ => None,
        }
    }

    /// The value as written on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            BusyType::Free => "Free",
            BusyType::Tentative => "Tentative",
            BusyType::Busy => "Busy",
            BusyType::Oof => "OOF",
            BusyType::WorkingElsewhere => "WorkingElsewhere",
            BusyType::NoData => "NoData",
        }
    }
}

/// One `CalendarEvent`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalendarEvent {
    /// `StartTime`.
    pub start: EwsDateTime,
    /// `EndTime`.
    pub end: EwsDateTime,
    /// `BusyType`.
    pub busy_type: BusyType,
}

/// One mailbox's answer (`FreeBusyResponse`), in request order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailboxAvailability {
    /// Class and code for this mailbox; errors are per mailbox.
    pub status: Status,
    /// The events, empty when the array was absent or empty.
    pub events: Vec<CalendarEvent>,
}

/// A decoded `GetUserAvailabilityResponse`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AvailabilityResponse {
    /// One entry per requested mailbox, in request order.
    pub mailboxes: Vec<MailboxAvailability>,
}

fn read_time(event: Element<'_, '_>, local: &'static str) -> Result<EwsDateTime, FrameError> {
    let e = event.require_ews(local)?;
    EwsDateTime::parse(e.text())
        .ok_or_else(|| e.error(Problem::invalid(local, e.text(), "an xs:dateTime")))
}

fn read_calendar_event(event: Element<'_, '_>) -> Result<CalendarEvent, FrameError> {
    let busy = event.require_ews("BusyType")?;
    let busy_type = BusyType::parse(busy.text()).ok_or_else(|| {
        busy.error(Problem::invalid(
            "BusyType",
            busy.text(),
            "Free, Tentative, Busy, OOF, WorkingElsewhere or NoData",
        ))
    })?;
    Ok(CalendarEvent {
        start: read_time(event, "StartTime")?,
        end: read_time(event, "EndTime")?,
        busy_type,
    })
}

impl AvailabilityResponse {
    /// Reads an `m:GetUserAvailabilityResponse` element.
    pub fn read(response: Element<'_, '_>) -> Result<AvailabilityResponse, FrameError> {
        let mut mailboxes = Vec::new();
        if let Some(array) = response.ews_child("FreeBusyResponseArray") {
            for entry in array.ews_children("FreeBusyResponse") {
                let status = match entry.ews_child("ResponseMessage") {
                    Some(message) => Status::read(message)?,
                    None => Status::success(),
                };
                let mut events = Vec::new();
                if let Some(list) = entry
                    .ews_child("FreeBusyView")
                    .and_then(|view| view.ews_child("CalendarEventArray"))
                {
                    for event in list.ews_children("CalendarEvent") {
                        events.push(read_calendar_event(event)?);
                    }
                }
                mailboxes.push(MailboxAvailability { status, events });
            }
        }
        Ok(AvailabilityResponse { mailboxes })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mailboxes(n: usize) -> Vec<Mailbox> {
        (0..n)
            .map(|i| Mailbox::parse(&format!("user{i}@example.test")).unwrap())
            .collect()
    }

    #[test]
    fn limits_are_errors() {
        let start: Timestamp = "2026-11-25T10:00:00Z".parse().unwrap();
        let end: Timestamp = "2026-11-26T10:00:00Z".parse().unwrap();
        assert_eq!(
            body(&mailboxes(0), start, end),
            Err(RequestError::MailboxCount { got: 0 })
        );
        assert_eq!(
            body(&mailboxes(101), start, end),
            Err(RequestError::MailboxCount { got: 101 })
        );
        assert_eq!(
            body(&mailboxes(1), end, start),
            Err(RequestError::EmptyWindow {
                start: end,
                end: start
            })
        );
        assert!(body(&mailboxes(100), start, end).is_ok());
    }

    #[test]
    fn window_is_written_in_utc() {
        let start: Timestamp = "2026-11-25T09:30:00.75Z".parse().unwrap();
        let end: Timestamp = "2026-11-26T09:30:00Z".parse().unwrap();
        let xml = body(&mailboxes(1), start, end).unwrap();
        assert!(xml.contains("<t:StartTime>2026-11-25T09:30:00</t:StartTime><t:EndTime>2026-11-26T09:30:00</t:EndTime>"));
        assert!(xml.contains("<t:RequestedView>FreeBusy</t:RequestedView>"));
    }
}

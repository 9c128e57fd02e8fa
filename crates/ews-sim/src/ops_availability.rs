//! GetUserAvailability (free/busy of up to 100 mailboxes over a window, times in the
//! requested zone, per-mailbox errors for unknown addresses) and GetServerTimeZones,
//! which clients such as exchangelib call first to build the request's time zone.

use std::sync::Arc;

use super::Sim;
use super::endpoint::Reply;
use super::model::{CalendarState, Item, item_id};
use super::ops_calendar::parse_time;
use super::request::Request;
use super::soap_out;
use super::timezone::{self, KNOWN_ZONES, ZoneRule};
use ews::ns;
use ews::ops::get_user_availability::{BusyType, MAX_MAILBOXES};
use ews::xml_write::XmlWriter;

/// Longest window answered, as Exchange's default availability limit.
const MAX_WINDOW_DAYS: i64 = 62;

fn local(zone: &ZoneRule, secs: i64) -> String {
    zone.to_local(secs)
        .strftime("%Y-%m-%dT%H:%M:%S")
        .to_string()
}

/// `MergedFreeBusy` digits: 0 Free, 1 Tentative, 2 Busy, 3 OOF, 4 WorkingElsewhere.
fn merged(items: &[Item], start: i64, end: i64, minutes: i64) -> String {
    let step = minutes * 60;
    let mut out = String::new();
    let mut slot = start;
    while slot < end && out.len() < 100_000 {
        let state = items
            .iter()
            .filter(|i| i.overlaps(slot, (slot + step).min(end)))
            .map(|i| CalendarState::of(i.busy))
            .max()
            .unwrap_or(CalendarState::Free);
        out.push(match state {
            CalendarState::Free => '0',
            CalendarState::Tentative => '1',
            CalendarState::Busy => '2',
            CalendarState::Oof => '3',
            CalendarState::WorkingElsewhere => '4',
        });
        slot += step;
    }
    out
}

struct Query {
    zone: ZoneRule,
    start: i64,
    end: i64,
    view: String,
    interval: i64,
    addresses: Vec<String>,
}

fn read_query(req: &Request<'_, '_>) -> Result<Query, String> {
    let op = req.operation;
    let zone = match op.ews_child("TimeZone") {
        Some(tz) => ZoneRule::read(tz)?,
        None => timezone::UTC,
    };
    let addresses: Vec<String> = op
        .ews_child("MailboxDataArray")
        .into_iter()
        .flat_map(|a| a.ews_children("MailboxData"))
        .map(|d| {
            d.ews_child("Email")
                .and_then(|e| e.ews_child("Address"))
                .map(|a| a.text().to_owned())
                .unwrap_or_default()
        })
        .collect();
    if addresses.is_empty() || addresses.len() > MAX_MAILBOXES {
        return Err(format!(
            "MailboxDataArray must name 1 to {MAX_MAILBOXES} mailboxes, not {}",
            addresses.len()
        ));
    }
    let options = op
        .ews_child("FreeBusyViewOptions")
        .ok_or("FreeBusyViewOptions is missing")?;
    let window = options
        .ews_child("TimeWindow")
        .ok_or("TimeWindow is missing")?;
    let time = |name: &str| {
        window
            .ews_child(name)
            .and_then(|e| parse_time(e.text(), &zone))
            .ok_or_else(|| format!("TimeWindow {name} is missing or not an xs:dateTime"))
    };
    let (start, end) = (time("StartTime")?, time("EndTime")?);
    if end <= start || end - start > MAX_WINDOW_DAYS * 86_400 {
        return Err(format!(
            "TimeWindow must end after it starts and span at most {MAX_WINDOW_DAYS} days"
        ));
    }
    let interval = match options.ews_child("MergedFreeBusyIntervalInMinutes") {
        Some(e) => e
            .text()
            .parse::<i64>()
            .ok()
            .filter(|m| (5..=1440).contains(m))
            .ok_or("MergedFreeBusyIntervalInMinutes must be 5 to 1440")?,
        None => 30,
    };
    let view = options
        .ews_child("RequestedView")
        .map_or("Detailed", |e| e.text())
        .to_owned();
    if ![
        "None",
        "MergedOnly",
        "FreeBusy",
        "FreeBusyMerged",
        "Detailed",
        "DetailedMerged",
    ]
    .contains(&view.as_str())
    {
        return Err(format!("RequestedView {view} is not a FreeBusyViewType"));
    }
    Ok(Query {
        zone,
        start,
        end,
        view,
        interval,
        addresses,
    })
}

fn write_mailbox(w: &mut XmlWriter, sim: &Sim, q: &Query, address: &str) {
    w.open("FreeBusyResponse", &[]);
    let Some(mailbox) = sim.directory.lookup(address) else {
        w.open("ResponseMessage", &[("ResponseClass", "Error")]);
        w.leaf(
            "MessageText",
            &format!("No mailbox with such guid or address: {address}"),
        );
        w.leaf("ResponseCode", "ErrorMailRecipientNotFound");
        w.leaf("DescriptiveLinkKey", "0");
        w.close("ResponseMessage");
        w.open("FreeBusyView", &[]);
        w.leaf_with("FreeBusyViewType", &[("xmlns", ns::TYPES)], "None");
        w.close("FreeBusyView");
        w.close("FreeBusyResponse");
        return;
    };
    let items = sim
        .directory
        .with(mailbox, |c| c.items_between(q.start, q.end));
    w.open("ResponseMessage", &[("ResponseClass", "Success")]);
    w.leaf("ResponseCode", "NoError");
    w.close("ResponseMessage");
    w.open("FreeBusyView", &[]);
    w.leaf_with("FreeBusyViewType", &[("xmlns", ns::TYPES)], &q.view);
    if q.view.ends_with("Merged") || q.view == "MergedOnly" {
        w.leaf_with(
            "MergedFreeBusy",
            &[("xmlns", ns::TYPES)],
            &merged(&items, q.start, q.end, q.interval),
        );
    }
    if q.view != "MergedOnly" && q.view != "None" {
        w.open("CalendarEventArray", &[("xmlns", ns::TYPES)]);
        let detailed = q.view.starts_with("Detailed");
        for item in &items {
            w.open("CalendarEvent", &[]);
            w.leaf("StartTime", &local(&q.zone, item.start));
            w.leaf("EndTime", &local(&q.zone, item.end));
            w.leaf("BusyType", item.busy.as_str());
            if detailed {
                w.open("CalendarEventDetails", &[]);
                w.leaf("ID", &item_id(mailbox, item.number));
                w.leaf(
                    "Subject",
                    item.subject.as_deref().unwrap_or(match item.busy {
                        BusyType::Oof => "Out of office",
                        _ => "Meeting",
                    }),
                );
                w.leaf("Location", "");
                w.leaf("IsMeeting", "true");
                w.leaf("IsRecurring", "false");
                w.leaf("IsException", "false");
                w.leaf("IsReminderSet", "false");
                w.leaf("IsPrivate", "false");
                w.close("CalendarEventDetails");
            }
            w.close("CalendarEvent");
        }
        w.close("CalendarEventArray");
    }
    w.close("FreeBusyView");
    w.close("FreeBusyResponse");
}

/// `GetUserAvailability`.
pub fn get_user_availability(sim: &Arc<Sim>, req: &Request<'_, '_>) -> Reply {
    let query = match read_query(req) {
        Ok(q) => q,
        Err(e) => {
            return Reply::fault(
                "ErrorInvalidRequest",
                &format!("The request is invalid: {e}."),
                None,
            );
        }
    };
    sim.stats.availability_fetched(query.addresses.len());
    let mut w = XmlWriter::new();
    w.open("GetUserAvailabilityResponse", &[("xmlns", ns::MESSAGES)]);
    w.open("FreeBusyResponseArray", &[]);
    for address in &query.addresses {
        write_mailbox(&mut w, sim, &query, address);
    }
    w.close("FreeBusyResponseArray");
    w.close("GetUserAvailabilityResponse");
    Reply::ok(soap_out::envelope(&w.finish()))
}

/// `GetServerTimeZones`: definitions of the requested known zones (all without Ids).
pub fn get_server_time_zones(req: &Request<'_, '_>) -> Reply {
    let ids: Vec<&str> = req
        .operation
        .ews_child("Ids")
        .into_iter()
        .flat_map(|i| i.ews_children("Id"))
        .map(|e| e.text())
        .collect();
    let zones: Vec<_> = KNOWN_ZONES
        .iter()
        .filter(|z| ids.is_empty() || ids.contains(&z.id))
        .collect();
    Reply::ok(soap_out::messages(
        "GetServerTimeZones",
        [Ok(())],
        |w, ()| {
            w.open("m:TimeZoneDefinitions", &[]);
            for zone in &zones {
                timezone::write_definition(w, zone);
            }
            w.close("m:TimeZoneDefinitions");
        },
    ))
}

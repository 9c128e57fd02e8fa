//! GetUserOofSettings and SetUserOofSettings. Like Exchange, only the mailbox owner
//! (or someone impersonating it) may read or change them; others get the SOAP fault
//! "User is not mailbox owner".

use std::sync::Arc;

use jiff::Timestamp;

use super::Sim;
use super::endpoint::{CallContext, Reply};
use super::model::Oof;
use super::ops_calendar::{context_zone, parse_time};
use super::ops_mail_tips::REPLY_MESSAGE;
use super::request::Request;
use super::soap_out::{self, Failure};
use ews::ns;
use ews::xml_write::XmlWriter;

fn not_owner() -> Reply {
    Reply::Xml {
        status: 500,
        body: soap_out::client_fault(
            "Microsoft.Exchange.Data.Storage.AccessDeniedException: User is not mailbox owner.",
        ),
        set_cookie: None,
    }
}

/// The mailbox named in `t:Mailbox/t:Address`, if the caller owns it.
fn owned_mailbox(sim: &Sim, ctx: &CallContext, req: &Request<'_, '_>) -> Result<usize, Reply> {
    let address = req
        .operation
        .ews_child("Mailbox")
        .and_then(|m| m.ews_child("Address"))
        .map(|a| a.text().to_ascii_lowercase())
        .ok_or_else(|| Reply::fault("ErrorInvalidRequest", "Mailbox/Address is missing.", None))?;
    let Some(mailbox) = sim.directory.lookup(&address) else {
        return Err(Reply::ok(single(
            "GetUserOofSettings",
            Err(Failure::new(
                "ErrorNonExistentMailbox",
                format!("No mailbox for {address}"),
            )),
        )));
    };
    match sim.acting_mailbox(ctx, req) {
        Ok(acting) if acting == mailbox => Ok(mailbox),
        _ => Err(not_owner()),
    }
}

/// A `…Response` with a single `ResponseMessage` (the availability-service shape).
fn single(op: &str, result: Result<(), Failure>) -> String {
    let mut w = XmlWriter::new();
    w.open(&format!("{op}Response"), &[("xmlns", ns::MESSAGES)]);
    match result {
        Ok(()) => {
            w.open("ResponseMessage", &[("ResponseClass", "Success")]);
            w.leaf("ResponseCode", "NoError");
        }
        Err(f) => {
            w.open("ResponseMessage", &[("ResponseClass", "Error")]);
            w.leaf("MessageText", &f.text);
            w.leaf("ResponseCode", f.code);
            w.leaf("DescriptiveLinkKey", "0");
        }
    }
    w.close("ResponseMessage");
    w.close(&format!("{op}Response"));
    soap_out::envelope(&w.finish())
}

/// `GetUserOofSettings`.
pub fn get(sim: &Arc<Sim>, ctx: &CallContext, req: &Request<'_, '_>) -> Reply {
    let mailbox = match owned_mailbox(sim, ctx, req) {
        Ok(m) => m,
        Err(reply) => return reply,
    };
    let (oof, message) = sim
        .directory
        .with(mailbox, |c| (c.oof.clone(), c.oof_message));
    let text = if message { REPLY_MESSAGE } else { "" };
    let today = Timestamp::now().as_second() - Timestamp::now().as_second().rem_euclid(86_400);
    let (state, start, end) = match oof {
        Oof::Disabled => ("Disabled", today, today + 86_400),
        Oof::Enabled => ("Enabled", today, today + 86_400),
        Oof::Scheduled { start, end } => ("Scheduled", start.as_second(), end.as_second()),
    };
    let mut w = XmlWriter::new();
    w.open("GetUserOofSettingsResponse", &[("xmlns", ns::MESSAGES)]);
    w.open("ResponseMessage", &[("ResponseClass", "Success")]);
    w.leaf("ResponseCode", "NoError");
    w.close("ResponseMessage");
    w.open("OofSettings", &[("xmlns", ns::TYPES)]);
    w.leaf("OofState", state);
    w.leaf("ExternalAudience", "All");
    w.open("Duration", &[]);
    let at =
        |s: i64| soap_out::utc_time(Timestamp::from_second(s).unwrap_or(Timestamp::UNIX_EPOCH));
    w.leaf("StartTime", &at(start));
    w.leaf("EndTime", &at(end));
    w.close("Duration");
    w.open("InternalReply", &[]);
    w.leaf("Message", text);
    w.close("InternalReply");
    w.open("ExternalReply", &[]);
    w.leaf("Message", text);
    w.close("ExternalReply");
    w.close("OofSettings");
    w.leaf("AllowExternalOof", "All");
    w.close("GetUserOofSettingsResponse");
    Reply::ok(soap_out::envelope(&w.finish()))
}

/// `SetUserOofSettings`.
pub fn set(sim: &Arc<Sim>, ctx: &CallContext, req: &Request<'_, '_>) -> Reply {
    let mailbox = match owned_mailbox(sim, ctx, req) {
        Ok(m) => m,
        Err(reply) => return reply,
    };
    let zone = context_zone(req);
    let result = (|| {
        let settings = req
            .operation
            .ews_child("UserOofSettings")
            .ok_or_else(|| Failure::new("ErrorInvalidRequest", "UserOofSettings is missing."))?;
        let state = settings
            .ews_child("OofState")
            .map(|e| e.text())
            .unwrap_or_default();
        let oof = match state {
            "Disabled" => Oof::Disabled,
            "Enabled" => Oof::Enabled,
            "Scheduled" => {
                let duration = settings.ews_child("Duration").ok_or_else(|| {
                    Failure::new("ErrorInvalidRequest", "Scheduled needs a Duration.")
                })?;
                let time = |name: &str| {
                    duration
                        .ews_child(name)
                        .and_then(|e| parse_time(e.text(), &zone))
                        .and_then(|s| Timestamp::from_second(s).ok())
                        .ok_or_else(|| {
                            Failure::new(
                                "ErrorInvalidRequest",
                                format!("Duration {name} is not an xs:dateTime."),
                            )
                        })
                };
                let (start, end) = (time("StartTime")?, time("EndTime")?);
                if end <= start {
                    return Err(Failure::new(
                        "ErrorInvalidScheduledOofDuration",
                        "The Duration ends before it starts.",
                    ));
                }
                Oof::Scheduled { start, end }
            }
            other => {
                return Err(Failure::new(
                    "ErrorInvalidRequest",
                    format!("Unknown OofState {other}"),
                ));
            }
        };
        let message = settings
            .ews_child("InternalReply")
            .and_then(|r| r.ews_child("Message"))
            .is_some_and(|m| !m.text().trim().is_empty());
        sim.set_oof_with_message(mailbox, oof, message);
        Ok(())
    })();
    Reply::ok(single("SetUserOofSettings", result))
}

//! GetServiceConfiguration (MailTips) and GetMailTips, answering the automatic-reply
//! tip as Microsoft documents it: `ReplyBody/Message` holds the reply a sender would
//! get now (empty when automatic replies are off, outside their Scheduled window, or
//! on with an empty message) and `Duration` is written whenever the reply is
//! Scheduled. With MailTips off (`mail_tips_max_recipients = None`) the configuration
//! says so, as gromox does, and GetMailTips answers `ErrorMailTipsDisabled`; more
//! recipients than the limit get `ErrorExceededMaxRecipientLimit` for the request.

use std::sync::Arc;

use jiff::Timestamp;

use super::Sim;
use super::endpoint::Reply;
use super::model::Oof;
use super::request::Request;
use super::soap_out;
use ews::ns;
use ews::xml_write::XmlWriter;

/// The text of every non-empty internal reply.
pub const REPLY_MESSAGE: &str = "I am out of the office.";

/// `GetServiceConfiguration`.
pub fn get_service_configuration(sim: &Arc<Sim>) -> Reply {
    let (enabled, max) = match sim.config.mail_tips_max_recipients {
        Some(max) => ("true", max.to_string()),
        None => ("false", i32::MAX.to_string()),
    };
    let mut w = XmlWriter::new();
    soap_out::open_answered_response(&mut w, "GetServiceConfiguration");
    w.open(
        "m:ServiceConfigurationResponseMessageType",
        &[("ResponseClass", "Success")],
    );
    soap_out::status(&mut w, "NoError", None);
    w.open("m:MailTipsConfiguration", &[]);
    w.leaf("t:MailTipsEnabled", enabled);
    w.leaf("t:MaxRecipientsPerGetMailTipsRequest", &max);
    w.leaf("t:MaxMessageSize", "10485760");
    w.leaf("t:LargeAudienceThreshold", "25");
    w.leaf("t:ShowExternalRecipientCount", "false");
    w.empty("t:InternalDomains", &[]);
    w.leaf("t:PolicyTipsEnabled", "false");
    w.leaf("t:LargeAudienceCap", "0");
    w.close("m:MailTipsConfiguration");
    w.close("m:ServiceConfigurationResponseMessageType");
    soap_out::close_response(&mut w, "GetServiceConfiguration");
    Reply::ok(soap_out::envelope(&w.finish()))
}

fn refused(code: &str, text: &str) -> Reply {
    let mut w = XmlWriter::new();
    w.open(
        "m:GetMailTipsResponse",
        &[("ResponseClass", "Error"), ("xmlns:m", ns::MESSAGES)],
    );
    soap_out::status(&mut w, code, Some(text));
    w.close("m:GetMailTipsResponse");
    Reply::ok(soap_out::envelope(&w.finish()))
}

/// `GetMailTips`.
pub fn get_mail_tips(sim: &Arc<Sim>, req: &Request<'_, '_>) -> Reply {
    let Some(max) = sim.config.mail_tips_max_recipients else {
        return refused("ErrorMailTipsDisabled", "MailTips are disabled.");
    };
    let addresses: Vec<String> = req
        .operation
        .ews_child("Recipients")
        .into_iter()
        .flat_map(|r| r.ews_children("Mailbox"))
        .map(|m| {
            m.ews_child("EmailAddress")
                .map(|e| e.text().trim().to_ascii_lowercase())
                .unwrap_or_default()
        })
        .collect();
    if addresses.is_empty() {
        return refused("ErrorMissingRecipients", "No recipients were given.");
    }
    if addresses.len() > max as usize {
        return refused(
            "ErrorExceededMaxRecipientLimit",
            &format!("At most {max} recipients may be given."),
        );
    }
    let now = Timestamp::now();
    let mut w = XmlWriter::new();
    soap_out::open_answered_response(&mut w, "GetMailTips");
    for address in &addresses {
        let Some(mailbox) = sim.directory.lookup(address) else {
            w.open(
                "m:MailTipsResponseMessageType",
                &[("ResponseClass", "Error")],
            );
            soap_out::status(
                &mut w,
                "ErrorMailRecipientNotFound",
                Some(&format!("No recipient {address}.")),
            );
            w.close("m:MailTipsResponseMessageType");
            continue;
        };
        let (oof, message) = sim
            .directory
            .with(mailbox, |c| (c.oof.clone(), c.oof_message));
        w.open(
            "m:MailTipsResponseMessageType",
            &[("ResponseClass", "Success")],
        );
        soap_out::status(&mut w, "NoError", None);
        w.open("m:MailTips", &[]);
        w.open("t:RecipientAddress", &[]);
        w.empty("t:Name", &[]);
        w.leaf("t:EmailAddress", address);
        w.leaf("t:RoutingType", "SMTP");
        w.close("t:RecipientAddress");
        w.empty("t:PendingMailTips", &[]);
        w.open("t:OutOfOffice", &[]);
        w.open("t:ReplyBody", &[]);
        if message && oof.active_at(now) {
            w.leaf("t:Message", REPLY_MESSAGE);
        } else {
            w.empty("t:Message", &[]);
        }
        w.close("t:ReplyBody");
        if let Oof::Scheduled { start, end } = oof {
            w.open("t:Duration", &[]);
            w.leaf("t:StartTime", &soap_out::utc_time(start));
            w.leaf("t:EndTime", &soap_out::utc_time(end));
            w.close("t:Duration");
        }
        w.close("t:OutOfOffice");
        w.close("m:MailTips");
        w.close("m:MailTipsResponseMessageType");
    }
    soap_out::close_response(&mut w, "GetMailTips");
    Reply::ok(soap_out::envelope(&w.finish()))
}

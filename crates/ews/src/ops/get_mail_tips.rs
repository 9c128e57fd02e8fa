//! GetMailTips (Exchange 2010 and later): the automatic-reply mail tip of many
//! recipients in one request, as Outlook asks before sending. Any user may ask, so
//! it needs no rights on the recipients' mailboxes.
//!
//! What a tip says, per Microsoft's reference (`OutOfOffice`, `ReplyBody`, `Duration`
//! under MailTips): `ReplyBody/Message` holds the reply a sender would get now, empty
//! when none would go out; `Duration` is present when the reply is Scheduled. An
//! empty message without `Duration` is therefore either "automatic replies off" or
//! "on with an empty message": the reader reports it as [`OofTip::Silent`] and leaves
//! the decision to the caller. Tips the server did not finish are listed in
//! `PendingMailTips` and read as [`OofTip::Unknown`], as is a tip in a shape the
//! schema does not allow (gromox, for one, writes `OofState`/`OofReply` stubs).

use crate::decode_error::{FrameError, Problem};
use crate::response::Status;
use crate::soap::MESSAGES_AND_TYPES;
use crate::types::EwsDateTime;
use crate::xml_tree::Element;
use crate::xml_write::XmlWriter;
use common::mailbox::Mailbox;

use super::RequestError;

/// Most recipients we put in one request, whatever the server allows: keeps a
/// request near 10 KB and its answer near 60 KB.
pub const MAX_RECIPIENTS: usize = 100;

/// The `m:GetMailTips` body element asking for the automatic-reply tip of
/// `recipients`, as if `sending_as` were writing to them (an address of the same
/// organisation, so the internal reply is what comes back).
pub fn body(sending_as: &Mailbox, recipients: &[Mailbox]) -> Result<String, RequestError> {
    if recipients.is_empty() || recipients.len() > MAX_RECIPIENTS {
        return Err(RequestError::RecipientCount {
            got: recipients.len(),
        });
    }
    let mut w = XmlWriter::new();
    w.open("m:GetMailTips", &MESSAGES_AND_TYPES);
    w.open("m:SendingAs", &[]);
    w.leaf("t:EmailAddress", sending_as.as_str());
    w.leaf("t:RoutingType", "SMTP");
    w.close("m:SendingAs");
    w.open("m:Recipients", &[]);
    for r in recipients {
        w.open("t:Mailbox", &[]);
        w.leaf("t:EmailAddress", r.as_str());
        w.leaf("t:RoutingType", "SMTP");
        w.close("t:Mailbox");
    }
    w.close("m:Recipients");
    w.leaf("m:MailTipsRequested", "OutOfOfficeMessage");
    w.close("m:GetMailTips");
    Ok(w.finish())
}

/// What one recipient's automatic-reply tip says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OofTip {
    /// A reply with a message would go out now; `window` when it is Scheduled.
    Replying {
        /// `Duration` (start, end).
        window: Option<(EwsDateTime, EwsDateTime)>,
    },
    /// The reply message is empty: off, or on with an empty message (`window`
    /// present: Scheduled, with an empty message or outside its window).
    Silent {
        /// `Duration` (start, end).
        window: Option<(EwsDateTime, EwsDateTime)>,
    },
    /// Not computed (`PendingMailTips`), left out, or in a shape we cannot trust.
    Unknown,
}

/// One recipient's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecipientTip {
    /// Class and code of its `MailTipsResponseMessageType`.
    pub status: Status,
    /// `MailTips/RecipientAddress/EmailAddress`, when given.
    pub address: Option<String>,
    /// The automatic-reply tip.
    pub oof: OofTip,
}

/// A decoded `GetMailTipsResponse`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailTipsResponse {
    /// The response's own class and code (an error here means no recipient was read).
    pub status: Status,
    /// One per recipient, in request order.
    pub recipients: Vec<RecipientTip>,
}

fn read_window(
    duration: Option<Element<'_, '_>>,
) -> Result<Option<(EwsDateTime, EwsDateTime)>, FrameError> {
    let Some(duration) = duration else {
        return Ok(None);
    };
    let time = |local: &'static str| {
        let e = duration.require_ews(local)?;
        EwsDateTime::parse(e.text())
            .ok_or_else(|| e.error(Problem::invalid(local, e.text(), "an xs:dateTime")))
    };
    Ok(Some((time("StartTime")?, time("EndTime")?)))
}

fn read_tip(tips: Element<'_, '_>) -> Result<OofTip, FrameError> {
    let pending = tips.ews_child("PendingMailTips").is_some_and(|p| {
        p.text()
            .split_ascii_whitespace()
            .any(|t| t == "OutOfOfficeMessage" || t == "All")
    });
    if pending {
        return Ok(OofTip::Unknown);
    }
    let Some(oof) = tips.ews_child("OutOfOffice") else {
        return Ok(OofTip::Unknown);
    };
    let Some(reply) = oof.ews_child("ReplyBody") else {
        return Ok(OofTip::Unknown);
    };
    let window = read_window(oof.ews_child("Duration"))?;
    let message = reply.ews_child("Message").map(|m| m.text()).unwrap_or("");
    Ok(if message.trim().is_empty() {
        OofTip::Silent { window }
    } else {
        OofTip::Replying { window }
    })
}

impl MailTipsResponse {
    /// Reads an `m:GetMailTipsResponse` element.
    pub fn read(response: Element<'_, '_>) -> Result<MailTipsResponse, FrameError> {
        let status = Status::read(response)?;
        let mut recipients = Vec::new();
        if let Some(messages) = response.ews_child("ResponseMessages") {
            for message in messages.ews_children("MailTipsResponseMessageType") {
                let status = Status::read(message)?;
                let tips = message.ews_child("MailTips");
                let address = tips
                    .and_then(|t| t.ews_child("RecipientAddress"))
                    .and_then(|a| a.ews_child("EmailAddress"))
                    .map(|e| e.text().trim().to_owned());
                let oof = match tips {
                    Some(tips) if status.code.is_success() => read_tip(tips)?,
                    _ => OofTip::Unknown,
                };
                recipients.push(RecipientTip {
                    status,
                    address,
                    oof,
                });
            }
        }
        Ok(MailTipsResponse { status, recipients })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::{Response, decode_envelope};

    fn mailbox(s: &str) -> Mailbox {
        Mailbox::parse(s).unwrap()
    }

    #[test]
    fn the_request_names_every_recipient_and_only_the_automatic_reply_tip() {
        let xml = body(
            &mailbox("a@example.test"),
            &[mailbox("b@example.test"), mailbox("c@example.test")],
        )
        .unwrap();
        assert!(xml.contains("<m:MailTipsRequested>OutOfOfficeMessage</m:MailTipsRequested>"));
        assert_eq!(xml.matches("<t:Mailbox>").count(), 2);
        assert!(body(&mailbox("a@example.test"), &[]).is_err());
        let many: Vec<Mailbox> = (0..=MAX_RECIPIENTS)
            .map(|n| mailbox(&format!("u{n}@example.test")))
            .collect();
        assert_eq!(
            body(&mailbox("a@example.test"), &many),
            Err(RequestError::RecipientCount { got: 101 })
        );
    }

    fn envelope(messages: &str) -> String {
        format!(
            r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>
            <GetMailTipsResponse ResponseClass="Success" xmlns="http://schemas.microsoft.com/exchange/services/2006/messages">
            <ResponseCode>NoError</ResponseCode><ResponseMessages>{messages}</ResponseMessages>
            </GetMailTipsResponse></s:Body></s:Envelope>"#
        )
    }

    fn tip(address: &str, inner: &str) -> String {
        tip_pending(address, "", inner)
    }

    fn tip_pending(address: &str, pending: &str, inner: &str) -> String {
        format!(
            r#"<MailTipsResponseMessageType ResponseClass="Success"><ResponseCode>NoError</ResponseCode>
            <m:MailTips xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages">
            <t:RecipientAddress xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types"><t:Name/><t:EmailAddress>{address}</t:EmailAddress><t:RoutingType>SMTP</t:RoutingType></t:RecipientAddress>
            <t:PendingMailTips xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types">{pending}</t:PendingMailTips>
            {inner}</m:MailTips></MailTipsResponseMessageType>"#
        )
    }

    const T: &str = r#"xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types""#;

    fn decode(xml: &str) -> MailTipsResponse {
        match decode_envelope(xml.as_bytes()).unwrap().response {
            Response::GetMailTips(r) => r,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn each_shape_of_the_tip_is_read_for_what_it_can_say() {
        let xml = envelope(&[
            // Off (Microsoft's own example): an empty message, no Duration.
            tip("off@example.test", &format!("<t:OutOfOffice {T}><t:ReplyBody><t:Message/></t:ReplyBody></t:OutOfOffice>")),
            tip("on@example.test", &format!("<t:OutOfOffice {T}><t:ReplyBody xml:lang=\"en-US\"><t:Message>Away until Monday</t:Message></t:ReplyBody></t:OutOfOffice>")),
            tip("sched@example.test", &format!("<t:OutOfOffice {T}><t:ReplyBody><t:Message>Away</t:Message></t:ReplyBody><t:Duration><t:StartTime>2026-12-01T08:00:00Z</t:StartTime><t:EndTime>2026-12-05T17:00:00Z</t:EndTime></t:Duration></t:OutOfOffice>")),
            // gromox's stub: not the schema's shape, so not trusted.
            tip("stub@example.test", &format!("<t:OutOfOffice {T}><t:OofState>Disabled</t:OofState><t:OofReply/></t:OutOfOffice>")),
            r#"<MailTipsResponseMessageType ResponseClass="Error"><MessageText>not found</MessageText><ResponseCode>ErrorMailRecipientNotFound</ResponseCode></MailTipsResponseMessageType>"#.to_owned(),
        ].concat());
        let r = decode(&xml);
        assert!(r.status.code.is_success());
        let tips: Vec<&OofTip> = r.recipients.iter().map(|t| &t.oof).collect();
        assert_eq!(tips[0], &OofTip::Silent { window: None });
        assert_eq!(tips[1], &OofTip::Replying { window: None });
        assert!(matches!(tips[2], OofTip::Replying { window: Some(_) }));
        assert_eq!(tips[3], &OofTip::Unknown);
        assert_eq!(tips[4], &OofTip::Unknown);
        assert!(!r.recipients[4].status.code.is_success());
        assert_eq!(r.recipients[0].address.as_deref(), Some("off@example.test"));
    }

    #[test]
    fn a_pending_tip_is_unknown_and_a_bad_time_is_an_error() {
        let pending = envelope(&tip_pending(
            "p@example.test",
            "OutOfOfficeMessage",
            &format!("<t:OutOfOffice {T}><t:ReplyBody><t:Message/></t:ReplyBody></t:OutOfOffice>"),
        ));
        assert_eq!(decode(&pending).recipients[0].oof, OofTip::Unknown);
        let bad = envelope(&tip(
            "b@example.test",
            &format!(
                "<t:OutOfOffice {T}><t:ReplyBody><t:Message>x</t:Message></t:ReplyBody><t:Duration><t:StartTime>soon</t:StartTime><t:EndTime>2026-12-05T17:00:00Z</t:EndTime></t:Duration></t:OutOfOffice>"
            ),
        ));
        let error = decode_envelope(bad.as_bytes()).unwrap_err();
        assert!(error.to_string().contains("StartTime"), "{error}");
    }
}

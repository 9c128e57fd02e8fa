//! Decodes one complete SOAP envelope into a typed [`Response`]: checks the envelope,
//! reads `ServerVersionInfo` from the header, and hands the body's element to the
//! reader of its operation (or reads the SOAP fault).

use crate::decode_error::{FrameError, Problem};
use crate::ns::Ns;
use crate::ops::get_mail_tips::MailTipsResponse;
use crate::ops::get_service_configuration::ServiceConfigurationResponse;
use crate::ops::get_streaming_events::StreamingResponse;
use crate::ops::get_user_availability::AvailabilityResponse;
use crate::ops::get_user_oof_settings::OofResponse;
use crate::ops::subscribe::SubscribeResponse;
use crate::ops::unsubscribe::UnsubscribeResponse;
use crate::response::Status;
use crate::soap::{Fault, ServerVersionInfo};
use crate::xml_tree::Tree;

/// The answer held in one envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    /// `GetStreamingEventsResponse`.
    GetStreamingEvents(StreamingResponse),
    /// `SubscribeResponse`.
    Subscribe(SubscribeResponse),
    /// `UnsubscribeResponse`.
    Unsubscribe(UnsubscribeResponse),
    /// `GetUserAvailabilityResponse`.
    GetUserAvailability(AvailabilityResponse),
    /// `GetUserOofSettingsResponse`.
    GetUserOofSettings(OofResponse),
    /// `GetMailTipsResponse`.
    GetMailTips(MailTipsResponse),
    /// `GetServiceConfigurationResponse`.
    GetServiceConfiguration(ServiceConfigurationResponse),
    /// `soap:Fault`.
    Fault(Fault),
}

impl Response {
    /// The operation's name (`"Fault"` for a SOAP fault).
    pub fn operation(&self) -> &'static str {
        match self {
            Response::GetStreamingEvents(_) => "GetStreamingEvents",
            Response::Subscribe(_) => "Subscribe",
            Response::Unsubscribe(_) => "Unsubscribe",
            Response::GetUserAvailability(_) => "GetUserAvailability",
            Response::GetUserOofSettings(_) => "GetUserOofSettings",
            Response::GetMailTips(_) => "GetMailTips",
            Response::GetServiceConfiguration(_) => "GetServiceConfiguration",
            Response::Fault(_) => "Fault",
        }
    }

    /// The response's overall status. GetUserAvailability has only per-mailbox
    /// statuses: its overall status is the first mailbox's that is not a success, or
    /// success.
    pub fn status(&self) -> Status {
        match self {
            Response::GetStreamingEvents(r) => r.status.clone(),
            Response::Subscribe(r) => r.status.clone(),
            Response::Unsubscribe(r) => r.status.clone(),
            Response::GetUserOofSettings(r) => r.status.clone(),
            Response::GetMailTips(r) => r.status.clone(),
            Response::GetServiceConfiguration(r) => r.status.clone(),
            Response::Fault(f) => f.status.clone(),
            Response::GetUserAvailability(r) => r
                .mailboxes
                .iter()
                .find(|m| !m.status.code.is_success())
                .map(|m| m.status.clone())
                .unwrap_or_else(Status::success),
        }
    }
}

/// A decoded envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// The `ServerVersionInfo` header, when sent.
    pub server_version: Option<ServerVersionInfo>,
    /// What the body held.
    pub response: Response,
}

/// Decodes one complete envelope; offsets in errors are relative to `bytes`.
pub fn decode_envelope(bytes: &[u8]) -> Result<Envelope, FrameError> {
    let text = std::str::from_utf8(bytes)
        .map_err(|e| FrameError::at(e.valid_up_to(), Problem::InvalidUtf8))?;
    decode_tree(&Tree::parse(text)?)
}

/// Decodes the envelope `text` starts with, reading no further than its end tag, and
/// returns it with its length. `None` when that envelope is incomplete, does not
/// decode, or holds markup only the boundary scanner reads
/// ([`Tree::parse_leading_element`]): the caller then scans it, and
/// [`decode_envelope`] gives the same envelope or the error to report.
pub(super) fn decode_leading_envelope(text: &str) -> Option<(Envelope, usize)> {
    let (tree, len) = Tree::parse_leading_element(text)?;
    decode_tree(&tree).ok().map(|envelope| (envelope, len))
}

/// Reads the envelope a parsed tree holds.
fn decode_tree(tree: &Tree<'_>) -> Result<Envelope, FrameError> {
    let root = tree.root();
    if root.ns() != Ns::Soap || root.local() != "Envelope" {
        return Err(root.error(Problem::UnknownRoot {
            name: root.local().to_owned(),
        }));
    }
    let server_version = root
        .child_in(Ns::Soap, "Header")
        .and_then(|h| h.ews_child("ServerVersionInfo"))
        .map(ServerVersionInfo::read);
    let body = root.child_in(Ns::Soap, "Body").ok_or_else(|| {
        root.error(Problem::MissingElement {
            element: "Body",
            parent: root.local().to_owned(),
        })
    })?;
    let element = body.children().next().ok_or_else(|| {
        body.error(Problem::MissingElement {
            element: "a response element",
            parent: body.local().to_owned(),
        })
    })?;
    let response = match (element.ns(), element.local()) {
        (Ns::Soap, "Fault") => Response::Fault(Fault::read(element)?),
        (Ns::Messages, "GetStreamingEventsResponse") => {
            Response::GetStreamingEvents(StreamingResponse::read(element)?)
        }
        (Ns::Messages, "SubscribeResponse") => {
            Response::Subscribe(SubscribeResponse::read(element)?)
        }
        (Ns::Messages, "UnsubscribeResponse") => {
            Response::Unsubscribe(UnsubscribeResponse::read(element)?)
        }
        (Ns::Messages, "GetUserAvailabilityResponse") => {
            Response::GetUserAvailability(AvailabilityResponse::read(element)?)
        }
        (Ns::Messages, "GetUserOofSettingsResponse") => {
            Response::GetUserOofSettings(OofResponse::read(element)?)
        }
        (Ns::Messages, "GetMailTipsResponse") => {
            Response::GetMailTips(MailTipsResponse::read(element)?)
        }
        (Ns::Messages, "GetServiceConfigurationResponse") => {
            Response::GetServiceConfiguration(ServiceConfigurationResponse::read(element)?)
        }
        (_, local) => {
            return Err(element.error(Problem::UnknownOperation {
                name: local.to_owned(),
            }));
        }
    };
    Ok(Envelope {
        server_version,
        response,
    })
}

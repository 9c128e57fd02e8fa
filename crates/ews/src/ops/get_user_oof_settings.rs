//! GetUserOofSettings: a mailbox's automatic-reply state. Needs owner rights, so send it
//! impersonating the mailbox.

use crate::decode_error::{FrameError, Problem};
use crate::response::Status;
use crate::soap::MESSAGES_AND_TYPES;
use crate::types::EwsDateTime;
use crate::xml_tree::Element;
use crate::xml_write::XmlWriter;
use common::mailbox::Mailbox;

/// The `m:GetUserOofSettingsRequest` body element.
pub fn body(mailbox: &Mailbox) -> String {
    let mut w = XmlWriter::new();
    w.open("m:GetUserOofSettingsRequest", &MESSAGES_AND_TYPES);
    w.open("t:Mailbox", &[]);
    w.leaf("t:Address", mailbox.as_str());
    w.close("t:Mailbox");
    w.close("m:GetUserOofSettingsRequest");
    w.finish()
}

/// `OofState`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OofState {
    /// Automatic replies off.
    Disabled,
    /// Automatic replies on.
    Enabled,
    /// On only inside the `Duration`.
    Scheduled,
}

impl OofState {
    /// The value as written on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            OofState::Disabled => "Disabled",
            OofState::Enabled => "Enabled",
            OofState::Scheduled => "Scheduled",
        }
    }
}

/// The parts of `OofSettings` that matter for presence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OofSettings {
    /// `OofState`.
    pub state: OofState,
    /// `Duration/StartTime`.
    pub start: Option<EwsDateTime>,
    /// `Duration/EndTime`.
    pub end: Option<EwsDateTime>,
}

/// A decoded `GetUserOofSettingsResponse`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OofResponse {
    /// Class and code of the `ResponseMessage`.
    pub status: Status,
    /// Present whenever the code is `NoError`.
    pub settings: Option<OofSettings>,
}

fn read_time(
    parent: Element<'_, '_>,
    local: &'static str,
) -> Result<Option<EwsDateTime>, FrameError> {
    match parent.ews_child(local) {
        None => Ok(None),
        Some(e) => EwsDateTime::parse(e.text())
            .map(Some)
            .ok_or_else(|| e.error(Problem::invalid(local, e.text(), "an xs:dateTime"))),
    }
}

impl OofResponse {
    /// Reads an `m:GetUserOofSettingsResponse` element.
    pub fn read(response: Element<'_, '_>) -> Result<OofResponse, FrameError> {
        let status = Status::read(response.require_ews("ResponseMessage")?)?;
        let settings = match response.ews_child("OofSettings") {
            Some(settings) => {
                let state_element = settings.require_ews("OofState")?;
                let state = match state_element.text() {
                    "Disabled" => OofState::Disabled,
                    "Enabled" => OofState::Enabled,
                    "Scheduled" => OofState::Scheduled,
                    other => {
                        return Err(state_element.error(Problem::invalid(
                            "OofState",
                            other,
                            "Disabled, Enabled or Scheduled",
                        )));
                    }
                };
                let (start, end) = match settings.ews_child("Duration") {
                    Some(duration) => (
                        read_time(duration, "StartTime")?,
                        read_time(duration, "EndTime")?,
                    ),
                    None => (None, None),
                };
                Some(OofSettings { state, start, end })
            }
            None if status.code.is_success() => {
                return Err(response.error(Problem::MissingElement {
                    element: "OofSettings",
                    parent: response.local().to_owned(),
                }));
            }
            None => None,
        };
        Ok(OofResponse { status, settings })
    }
}

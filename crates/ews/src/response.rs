//! The parts every EWS response shares: `ResponseClass` and the ResponseMessage
//! (`MessageText`, `ResponseCode`, `MessageXml` hints such as `BackOffMilliseconds`).

use std::fmt;
use std::time::Duration;

use super::decode_error::{FrameError, Problem};
use super::error::EwsError;
use super::response_code::ResponseCode;
use super::xml_tree::Element;

/// The `ResponseClass` attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseClass {
    /// `Success`
    Success,
    /// `Warning`
    Warning,
    /// `Error`
    Error,
}

impl ResponseClass {
    /// Parses the attribute value.
    pub fn parse(text: &str) -> Option<ResponseClass> {
        match text {
            "Success" => Some(ResponseClass::Success),
            "Warning" => Some(ResponseClass::Warning),
            "Error" => Some(ResponseClass::Error),
            _ => None,
        }
    }

    /// The value as written on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ResponseClass::Success => "Success",
            ResponseClass::Warning => "Warning",
            ResponseClass::Error => "Error",
        }
    }
}

impl fmt::Display for ResponseClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Status shared by every response message and by SOAP faults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// `ResponseClass`.
    pub class: ResponseClass,
    /// `ResponseCode`.
    pub code: ResponseCode,
    /// `MessageText`, for people only: it may be localised, never branch on it.
    pub message_text: Option<String>,
    /// `MessageXml/Value[@Name="BackOffMilliseconds"]`.
    pub back_off_ms: Option<u64>,
    /// `MessageXml/Value[@Name="InnerErrorResponseCode"]` of an internal server error.
    pub inner_code: Option<ResponseCode>,
}

impl Status {
    /// A plain success.
    pub fn success() -> Status {
        Status {
            class: ResponseClass::Success,
            code: ResponseCode::NoError,
            message_text: None,
            back_off_ms: None,
            inner_code: None,
        }
    }

    /// Reads a `*ResponseMessage` element (children in any order, either EWS namespace).
    pub fn read(message: Element<'_, '_>) -> Result<Status, FrameError> {
        let class_text = message.attr("ResponseClass").ok_or_else(|| {
            message.error(Problem::MissingElement {
                element: "ResponseClass",
                parent: message.local().to_owned(),
            })
        })?;
        let class = ResponseClass::parse(class_text).ok_or_else(|| {
            message.error(Problem::invalid(
                "ResponseClass",
                class_text,
                "Success, Warning or Error",
            ))
        })?;
        let code = ResponseCode::parse(message.require_ews("ResponseCode")?.text());
        let message_text = message
            .ews_child("MessageText")
            .map(|e| e.text().to_owned())
            .filter(|t| !t.is_empty());
        let (back_off_ms, inner_code) = match message.ews_child("MessageXml") {
            Some(xml) => read_message_xml(xml)?,
            None => (None, None),
        };
        Ok(Status {
            class,
            code,
            message_text,
            back_off_ms,
            inner_code,
        })
    }

    /// The server's back-off hint as a duration.
    pub fn back_off(&self) -> Option<Duration> {
        self.back_off_ms.map(Duration::from_millis)
    }

    /// `Ok` for `NoError`, otherwise the typed error.
    pub fn into_result(self) -> Result<(), EwsError> {
        if self.code.is_success() {
            Ok(())
        } else {
            Err(EwsError::Response(Box::new(self)))
        }
    }
}

/// Reads `BackOffMilliseconds` and `InnerErrorResponseCode` from a `MessageXml`.
pub fn read_message_xml(
    xml: Element<'_, '_>,
) -> Result<(Option<u64>, Option<ResponseCode>), FrameError> {
    let mut back_off = None;
    let mut inner = None;
    for value in xml.ews_children("Value") {
        match value.attr("Name") {
            Some("BackOffMilliseconds") => {
                let text = value.text();
                let ms = text.parse::<u64>().map_err(|_| {
                    value.error(Problem::invalid(
                        "BackOffMilliseconds",
                        text,
                        "a whole number of milliseconds",
                    ))
                })?;
                back_off = Some(ms);
            }
            Some("InnerErrorResponseCode") => inner = Some(ResponseCode::parse(value.text())),
            _ => {}
        }
    }
    Ok((back_off, inner))
}

/// Reads the first `*ResponseMessage` under `ResponseMessages`, the shape of Subscribe,
/// Unsubscribe and GetStreamingEvents responses.
pub fn first_response_message<'t, 'a>(
    response: Element<'t, 'a>,
) -> Result<Element<'t, 'a>, FrameError> {
    let messages = response.require_ews("ResponseMessages")?;
    messages
        .children()
        .find(|c| c.ns().is_ews() && c.local().ends_with("ResponseMessage"))
        .ok_or_else(|| {
            messages.error(Problem::MissingElement {
                element: "ResponseMessage",
                parent: messages.local().to_owned(),
            })
        })
}

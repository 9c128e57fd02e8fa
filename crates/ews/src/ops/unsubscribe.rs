//! Unsubscribe: ends one subscription. Send it as the account that subscribed.

use crate::decode_error::FrameError;
use crate::response::{Status, first_response_message};
use crate::soap::MESSAGES_AND_TYPES;
use crate::types::SubscriptionId;
use crate::xml_tree::Element;
use crate::xml_write::XmlWriter;

/// The `m:Unsubscribe` body element.
pub fn body(id: &SubscriptionId) -> String {
    let mut w = XmlWriter::new();
    w.open("m:Unsubscribe", &MESSAGES_AND_TYPES);
    w.leaf("m:SubscriptionId", id.as_str());
    w.close("m:Unsubscribe");
    w.finish()
}

/// A decoded `UnsubscribeResponse`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsubscribeResponse {
    /// Class and code; `ErrorSubscriptionNotFound` means it was already gone.
    pub status: Status,
}

impl UnsubscribeResponse {
    /// Reads an `m:UnsubscribeResponse` element.
    pub fn read(response: Element<'_, '_>) -> Result<UnsubscribeResponse, FrameError> {
        Ok(UnsubscribeResponse {
            status: Status::read(first_response_message(response)?)?,
        })
    }
}

//! XML namespaces of EWS. Responses are matched on the namespace URI, never on the
//! prefix a server happened to choose.

/// SOAP 1.1 envelope namespace, the one EWS speaks.
pub const SOAP: &str = "http://schemas.xmlsoap.org/soap/envelope/";
/// SOAP 1.2 envelope namespace; accepted on input only, never sent.
pub const SOAP12: &str = "http://www.w3.org/2003/05/soap-envelope";
/// EWS messages namespace (`m:`).
pub const MESSAGES: &str = "http://schemas.microsoft.com/exchange/services/2006/messages";
/// EWS types namespace (`t:`).
pub const TYPES: &str = "http://schemas.microsoft.com/exchange/services/2006/types";
/// EWS SOAP-fault detail namespace (`e:`).
pub const ERRORS: &str = "http://schemas.microsoft.com/exchange/services/2006/errors";

/// SOAP Autodiscover (GetUserSettings).
pub const AUTODISCOVER: &str = "http://schemas.microsoft.com/exchange/2010/Autodiscover";
/// POX Autodiscover: the outer response element.
pub const POX_RESPONSE: &str =
    "http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006";
/// POX Autodiscover: the Outlook response schema (`Response` and below).
pub const POX_OUTLOOK: &str =
    "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a";
/// POX Autodiscover: the Outlook request schema.
pub const POX_REQUEST: &str =
    "http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006";

/// The namespace an element was resolved to, reduced to the ones EWS and
/// Autodiscover use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ns {
    /// The SOAP envelope namespace (1.1, or 1.2 on input).
    Soap,
    /// EWS messages.
    Messages,
    /// EWS types.
    Types,
    /// EWS fault detail.
    Errors,
    /// SOAP Autodiscover.
    Autodiscover,
    /// POX Autodiscover's outer response element.
    PoxResponse,
    /// POX Autodiscover's Outlook response schema.
    PoxOutlook,
    /// POX Autodiscover's Outlook request schema.
    PoxRequest,
    /// No namespace (unqualified, as SOAP 1.1 fault children are).
    None,
    /// Any other namespace.
    Other,
}

impl Ns {
    /// Classifies a namespace URI.
    pub fn from_uri(uri: &str) -> Ns {
        match uri {
            SOAP | SOAP12 => Ns::Soap,
            MESSAGES => Ns::Messages,
            TYPES => Ns::Types,
            ERRORS => Ns::Errors,
            AUTODISCOVER => Ns::Autodiscover,
            POX_RESPONSE => Ns::PoxResponse,
            POX_OUTLOOK => Ns::PoxOutlook,
            POX_REQUEST => Ns::PoxRequest,
            "" => Ns::None,
            _ => Ns::Other,
        }
    }

    /// True for the two EWS data namespaces. Real servers put some elements in the
    /// messages namespace that the schema declares in types (`m:Notification`,
    /// `m:SubscriptionId` under `ErrorSubscriptionIds`), so readers accept either.
    pub fn is_ews(self) -> bool {
        matches!(self, Ns::Messages | Ns::Types)
    }
}

//! The SOAP envelope around every request (with the `RequestServerVersion` and
//! `ExchangeImpersonation` headers), SOAP faults, and the `ServerVersionInfo` header of
//! responses.
//!
//! Every element we write carries its own namespace declarations, so a header or body
//! element validates on its own against Microsoft's schema.

use super::decode_error::FrameError;
use super::ns::{self, Ns};
use super::response::{ResponseClass, Status, read_message_xml};
use super::response_code::ResponseCode;
use super::types::RequestServerVersion;
use super::xml_tree::Element;
use super::xml_write::XmlWriter;
use common::mailbox::Mailbox;

/// Namespace declarations for a body element written with `m:` and `t:` prefixes.
pub const MESSAGES_AND_TYPES: [(&str, &str); 2] =
    [("xmlns:m", ns::MESSAGES), ("xmlns:t", ns::TYPES)];

/// The SOAP headers of one request.
#[derive(Debug, Clone, Copy)]
pub struct RequestHeader<'a> {
    /// The schema version we speak (`RequestServerVersion/@Version`).
    pub server_version: RequestServerVersion,
    /// Act as this mailbox (`ExchangeImpersonation/ConnectingSID/SmtpAddress`).
    pub impersonate: Option<&'a Mailbox>,
}

/// `<t:RequestServerVersion Version="…"/>`.
pub fn request_server_version_element(version: RequestServerVersion) -> String {
    let mut w = XmlWriter::new();
    w.empty(
        "t:RequestServerVersion",
        &[("xmlns:t", ns::TYPES), ("Version", version.as_str())],
    );
    w.finish()
}

/// `<t:ExchangeImpersonation>` naming `mailbox` by SMTP address.
pub fn impersonation_element(mailbox: &Mailbox) -> String {
    let mut w = XmlWriter::new();
    w.open("t:ExchangeImpersonation", &[("xmlns:t", ns::TYPES)]);
    w.open("t:ConnectingSID", &[]);
    w.leaf("t:SmtpAddress", mailbox.as_str());
    w.close("t:ConnectingSID");
    w.close("t:ExchangeImpersonation");
    w.finish()
}

/// Wraps a body element in a SOAP 1.1 envelope with the request headers.
pub fn envelope(header: &RequestHeader<'_>, body: &str) -> String {
    let mut w = XmlWriter::new();
    w.raw(r#"<?xml version="1.0" encoding="utf-8"?>"#);
    w.open(
        "soap:Envelope",
        &[
            ("xmlns:soap", ns::SOAP),
            ("xmlns:m", ns::MESSAGES),
            ("xmlns:t", ns::TYPES),
        ],
    );
    w.open("soap:Header", &[]);
    w.raw(&request_server_version_element(header.server_version));
    if let Some(mailbox) = header.impersonate {
        w.raw(&impersonation_element(mailbox));
    }
    w.close("soap:Header");
    w.open("soap:Body", &[]);
    w.raw(body);
    w.close("soap:Body");
    w.close("soap:Envelope");
    w.finish()
}

/// A SOAP fault, as Exchange sends for throttling (HTTP 500) and for requests it
/// refuses outright.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    /// `faultcode` as written, e.g. `a:ErrorServerBusy` or `soap:Client`.
    pub fault_code: String,
    /// `faultstring`.
    pub fault_string: String,
    /// Class is always Error; the code comes from `detail/ResponseCode`, else from an
    /// EWS-style `faultcode`; back-off from `detail/MessageXml`.
    pub status: Status,
}

impl Fault {
    /// Reads a `soap:Fault` element.
    pub fn read(fault: Element<'_, '_>) -> Result<Fault, FrameError> {
        let text_of = |local: &str| {
            fault
                .children()
                .find(|c| c.local() == local && matches!(c.ns(), Ns::None | Ns::Soap))
                .map(|c| c.text().to_owned())
        };
        let fault_code = text_of("faultcode").unwrap_or_default();
        let fault_string = text_of("faultstring").unwrap_or_default();
        let detail = fault
            .children()
            .find(|c| c.local() == "detail" && matches!(c.ns(), Ns::None | Ns::Soap));
        let detail_code = detail.and_then(|d| {
            d.children()
                .find(|c| c.local() == "ResponseCode" && (c.ns() == Ns::Errors || c.ns().is_ews()))
                .map(|c| ResponseCode::parse(c.text()))
        });
        let code = detail_code.unwrap_or_else(|| {
            let local = fault_code.rsplit(':').next().unwrap_or_default();
            if local.starts_with("Error") {
                ResponseCode::parse(local)
            } else {
                ResponseCode::Other(fault_code.clone())
            }
        });
        let (back_off_ms, inner_code) = match detail.and_then(|d| d.ews_child("MessageXml")) {
            Some(xml) => read_message_xml(xml)?,
            None => (None, None),
        };
        Ok(Fault {
            status: Status {
                class: ResponseClass::Error,
                code,
                message_text: Some(fault_string.clone()).filter(|s| !s.is_empty()),
                back_off_ms,
                inner_code,
            },
            fault_code,
            fault_string,
        })
    }
}

/// The `ServerVersionInfo` response header. `Version` may hold values that are not
/// valid in requests (`V2017_07_11`), so it is kept as text.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ServerVersionInfo {
    /// `MajorVersion` (15 for Exchange 2013 to Subscription Edition).
    pub major: Option<u32>,
    /// `MinorVersion` (0 = 2013, 1 = 2016, 2 = 2019 and SE).
    pub minor: Option<u32>,
    /// `MajorBuildNumber`.
    pub major_build: Option<u32>,
    /// `MinorBuildNumber`.
    pub minor_build: Option<u32>,
    /// `Version`.
    pub version: Option<String>,
}

impl ServerVersionInfo {
    /// Reads the header element's attributes; unreadable numbers are left out.
    pub fn read(info: Element<'_, '_>) -> ServerVersionInfo {
        let number = |name: &str| info.attr(name).and_then(|v| v.trim().parse().ok());
        ServerVersionInfo {
            major: number("MajorVersion"),
            minor: number("MinorVersion"),
            major_build: number("MajorBuildNumber"),
            minor_build: number("MinorBuildNumber"),
            version: info.attr("Version").map(str::to_owned),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml_tree::Tree;

    #[test]
    fn envelope_carries_headers_and_body() {
        let mailbox = Mailbox::parse("a&b@example.test").unwrap();
        let header = RequestHeader {
            server_version: RequestServerVersion::Exchange2016,
            impersonate: Some(&mailbox),
        };
        let xml = envelope(&header, "<m:X xmlns:m=\"urn:x\"/>");
        let tree = Tree::parse(xml.trim_start_matches(r#"<?xml version="1.0" encoding="utf-8"?>"#))
            .unwrap();
        let root = tree.root();
        assert_eq!((root.ns(), root.local()), (Ns::Soap, "Envelope"));
        let head = root.child_in(Ns::Soap, "Header").unwrap();
        assert_eq!(
            head.ews_child("RequestServerVersion")
                .unwrap()
                .attr("Version"),
            Some("Exchange2016")
        );
        let smtp = head
            .ews_child("ExchangeImpersonation")
            .and_then(|e| e.ews_child("ConnectingSID"))
            .and_then(|e| e.ews_child("SmtpAddress"))
            .unwrap();
        assert_eq!(smtp.text(), "a&b@example.test");
        assert!(xml.contains("<soap:Body><m:X xmlns:m=\"urn:x\"/></soap:Body>"));
    }

    #[test]
    fn fault_code_falls_back_to_faultcode() {
        let doc = r#"<s:Fault xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><faultcode xmlns:a="urn:a">a:ErrorServerBusy</faultcode><faultstring>busy</faultstring></s:Fault>"#;
        let tree = Tree::parse(doc).unwrap();
        let fault = Fault::read(tree.root()).unwrap();
        assert_eq!(fault.status.code, ResponseCode::ErrorServerBusy);
        assert_eq!(fault.fault_code, "a:ErrorServerBusy");
        let doc = r#"<s:Fault xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><faultcode>s:Client</faultcode><faultstring>no</faultstring></s:Fault>"#;
        let tree = Tree::parse(doc).unwrap();
        let fault = Fault::read(tree.root()).unwrap();
        assert_eq!(fault.status.code, ResponseCode::Other("s:Client".into()));
    }
}

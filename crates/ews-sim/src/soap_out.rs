//! Writes the simulator's responses the way Exchange 2019 does: `s:Envelope` with an
//! `h:ServerVersionInfo` header for ordinary operations, the unprefixed Exchange
//! 2013/2016 style for streaming frames, and SOAP faults for throttling and refused
//! requests.

use ews::ns;
use ews::xml_write::XmlWriter;

/// Exchange 2019 CU-level version numbers reported in `ServerVersionInfo`.
const VERSION_ATTRS: [(&str, &str); 5] = [
    ("MajorVersion", "15"),
    ("MinorVersion", "2"),
    ("MajorBuildNumber", "1544"),
    ("MinorBuildNumber", "4"),
    ("Version", "V2017_07_11"),
];

/// `2026-11-25T10:00:00Z`: how Exchange writes UTC times in responses.
pub fn utc_time(ts: jiff::Timestamp) -> String {
    ts.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// A complete response envelope around the body element `body`.
pub fn envelope(body: &str) -> String {
    let mut w = XmlWriter::new();
    w.raw(r#"<?xml version="1.0" encoding="utf-8"?>"#);
    w.open("s:Envelope", &[("xmlns:s", ns::SOAP)]);
    w.open("s:Header", &[]);
    let mut attrs = vec![("xmlns:h", ns::TYPES), ("xmlns", ns::TYPES)];
    attrs.extend_from_slice(&VERSION_ATTRS);
    w.empty("h:ServerVersionInfo", &attrs);
    w.close("s:Header");
    w.open("s:Body", &[]);
    w.raw(body);
    w.close("s:Body");
    w.close("s:Envelope");
    w.finish()
}

/// One streaming frame: Exchange 2016's unprefixed envelope around a
/// `GetStreamingEventsResponseMessage` whose children `inner` writes.
pub fn streaming_frame(class: &str, inner: impl FnOnce(&mut XmlWriter)) -> String {
    let mut w = XmlWriter::new();
    w.open("Envelope", &[("xmlns", ns::SOAP)]);
    w.open("soap11:Header", &[("xmlns:soap11", ns::SOAP)]);
    let mut attrs = vec![("xmlns", ns::TYPES)];
    attrs.extend_from_slice(&VERSION_ATTRS);
    w.empty("ServerVersionInfo", &attrs);
    w.close("soap11:Header");
    w.open("soap11:Body", &[("xmlns:soap11", ns::SOAP)]);
    w.open(
        "m:GetStreamingEventsResponse",
        &[("xmlns:m", ns::MESSAGES), ("xmlns:t", ns::TYPES)],
    );
    w.open("m:ResponseMessages", &[]);
    w.open(
        "m:GetStreamingEventsResponseMessage",
        &[("ResponseClass", class)],
    );
    inner(&mut w);
    w.close("m:GetStreamingEventsResponseMessage");
    w.close("m:ResponseMessages");
    w.close("m:GetStreamingEventsResponse");
    w.close("soap11:Body");
    w.close("Envelope");
    w.finish()
}

/// A SOAP fault envelope as Exchange sends it with HTTP 500.
pub fn fault(code: &str, message: &str, back_off_ms: Option<u64>) -> String {
    let mut w = XmlWriter::new();
    w.raw(r#"<?xml version="1.0" encoding="utf-8"?>"#);
    w.open("s:Envelope", &[("xmlns:s", ns::SOAP)]);
    w.open("s:Body", &[]);
    w.open("s:Fault", &[]);
    w.leaf_with("faultcode", &[("xmlns:a", ns::TYPES)], &format!("a:{code}"));
    w.leaf_with("faultstring", &[("xml:lang", "en-US")], message);
    w.open("detail", &[]);
    w.leaf_with("e:ResponseCode", &[("xmlns:e", ns::ERRORS)], code);
    w.leaf_with("e:Message", &[("xmlns:e", ns::ERRORS)], message);
    if let Some(ms) = back_off_ms {
        w.open("t:MessageXml", &[("xmlns:t", ns::TYPES)]);
        w.leaf_with(
            "t:Value",
            &[("Name", "BackOffMilliseconds")],
            &ms.to_string(),
        );
        w.close("t:MessageXml");
    }
    w.close("detail");
    w.close("s:Fault");
    w.close("s:Body");
    w.close("s:Envelope");
    w.finish()
}

/// The SOAP fault Exchange sends when a request is refused at the SOAP level (for
/// example reading another user's OOF settings): `soap:Client`, no EWS code.
pub fn client_fault(message: &str) -> String {
    let mut w = XmlWriter::new();
    w.raw(r#"<?xml version="1.0" encoding="utf-8"?>"#);
    w.open("soap:Envelope", &[("xmlns:soap", ns::SOAP)]);
    w.open("soap:Body", &[]);
    w.open("soap:Fault", &[]);
    w.leaf("faultcode", "soap:Client");
    w.leaf("faultstring", message);
    w.open("detail", &[]);
    w.leaf_with("ErrorCode", &[("xmlns", ns::MESSAGES)], "-2146233088");
    w.close("detail");
    w.close("soap:Fault");
    w.close("soap:Body");
    w.close("soap:Envelope");
    w.finish()
}

/// Writes the status children of a response message: `MessageText` and
/// `DescriptiveLinkKey` only for errors, as Exchange does.
pub fn status(w: &mut XmlWriter, code: &str, text: Option<&str>) {
    if let Some(text) = text {
        w.leaf("m:MessageText", text);
    }
    w.leaf("m:ResponseCode", code);
    if code != "NoError" {
        w.leaf("m:DescriptiveLinkKey", "0");
    }
}

/// Opens `<m:{op}Response xmlns…><m:ResponseMessages>`.
pub fn open_response(w: &mut XmlWriter, op: &str) {
    w.open(
        &format!("m:{op}Response"),
        &[("xmlns:m", ns::MESSAGES), ("xmlns:t", ns::TYPES)],
    );
    w.open("m:ResponseMessages", &[]);
}

/// Opens a response that is itself a response message, with its own success status
/// before `<m:ResponseMessages>` (GetMailTips, GetServiceConfiguration):
/// `<m:{op}Response ResponseClass="Success" xmlns…><m:ResponseCode>NoError…`.
pub fn open_answered_response(w: &mut XmlWriter, op: &str) {
    w.open(
        &format!("m:{op}Response"),
        &[
            ("ResponseClass", "Success"),
            ("xmlns:m", ns::MESSAGES),
            ("xmlns:t", ns::TYPES),
        ],
    );
    status(w, "NoError", None);
    w.open("m:ResponseMessages", &[]);
}

/// Closes what [`open_response`] or [`open_answered_response`] opened.
pub fn close_response(w: &mut XmlWriter, op: &str) {
    w.close("m:ResponseMessages");
    w.close(&format!("m:{op}Response"));
}

/// An EWS error for one response message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The response code.
    pub code: &'static str,
    /// The message text.
    pub text: String,
}

impl Failure {
    /// A failure with this code and text.
    pub fn new(code: &'static str, text: impl Into<String>) -> Failure {
        Failure {
            code,
            text: text.into(),
        }
    }
}

/// A whole response with one message per entry: `Ok` is written by `success`, `Err`
/// as an error message.
pub fn messages<T>(
    op: &str,
    entries: impl IntoIterator<Item = Result<T, Failure>>,
    mut success: impl FnMut(&mut XmlWriter, T),
) -> String {
    let mut w = XmlWriter::new();
    open_response(&mut w, op);
    let message = format!("m:{op}ResponseMessage");
    for entry in entries {
        match entry {
            Ok(value) => {
                w.open(&message, &[("ResponseClass", "Success")]);
                status(&mut w, "NoError", None);
                success(&mut w, value);
            }
            Err(failure) => {
                w.open(&message, &[("ResponseClass", "Error")]);
                status(&mut w, failure.code, Some(&failure.text));
            }
        }
        w.close(&message);
    }
    close_response(&mut w, op);
    envelope(&w.finish())
}

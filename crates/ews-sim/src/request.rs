//! Reads an incoming EWS request the way Exchange accepts it: the SOAP headers real
//! clients send (RequestServerVersion, ExchangeImpersonation by SmtpAddress,
//! PrimarySmtpAddress or PrincipalName, TimeZoneContext, MailboxCulture) and the
//! operation element in the body.

use ews::ns::Ns;
use ews::xml_tree::{Element, Tree};

/// A request that is not a SOAP envelope with an operation in its body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadRequest(pub String);

/// The parts of a request every operation needs.
#[derive(Debug)]
pub struct Request<'t, 'a> {
    /// The operation element (first child of the body).
    pub operation: Element<'t, 'a>,
    /// The impersonated user's address, if the request impersonates.
    pub impersonate: Option<String>,
    /// `TimeZoneContext/TimeZoneDefinition/@Id`.
    pub time_zone_id: Option<String>,
}

impl<'t, 'a> Request<'t, 'a> {
    /// Reads headers and finds the operation.
    pub fn read(tree: &'t Tree<'a>) -> Result<Request<'t, 'a>, BadRequest> {
        let root = tree.root();
        if root.ns() != Ns::Soap || root.local() != "Envelope" {
            return Err(BadRequest(format!(
                "root element <{}> is not a SOAP Envelope",
                root.local()
            )));
        }
        let mut impersonate = None;
        let mut time_zone_id = None;
        if let Some(header) = root.child_in(Ns::Soap, "Header") {
            if let Some(sid) = header
                .ews_child("ExchangeImpersonation")
                .and_then(|e| e.ews_child("ConnectingSID"))
            {
                let address = ["SmtpAddress", "PrimarySmtpAddress", "PrincipalName"]
                    .iter()
                    .find_map(|name| sid.ews_child(name))
                    .map(|e| e.text().to_ascii_lowercase());
                match address {
                    Some(a) if !a.is_empty() => impersonate = Some(a),
                    _ => {
                        return Err(BadRequest(
                            "ExchangeImpersonation needs SmtpAddress, PrimarySmtpAddress or PrincipalName".into(),
                        ));
                    }
                }
            }
            time_zone_id = header
                .ews_child("TimeZoneContext")
                .and_then(|e| e.ews_child("TimeZoneDefinition"))
                .and_then(|e| e.attr("Id"))
                .map(str::to_owned);
        }
        let body = root
            .child_in(Ns::Soap, "Body")
            .ok_or_else(|| BadRequest("the envelope has no Body".into()))?;
        let operation = body
            .children()
            .next()
            .ok_or_else(|| BadRequest("the Body is empty".into()))?;
        if operation.ns() != Ns::Messages {
            return Err(BadRequest(format!(
                "<{}> is not in the EWS messages namespace",
                operation.local()
            )));
        }
        Ok(Request {
            operation,
            impersonate,
            time_zone_id,
        })
    }

    /// The operation's name: the element's local name without a `Request` suffix.
    pub fn name(&self) -> &'t str {
        let local = self.operation.local();
        local.strip_suffix("Request").unwrap_or(local)
    }
}

/// Parses an EWS boolean (`true`/`false`/`1`/`0`).
pub fn boolean(text: &str) -> Option<bool> {
    match text.trim() {
        "true" | "1" => Some(true),
        "false" | "0" => Some(false),
        _ => None,
    }
}

//! POX Autodiscover (`autodiscover.xml`), the fallback for servers that answer only
//! that: one mailbox per request. The answer's `Account` either redirects
//! (`redirectAddr`, `redirectUrl`) or lists `Protocol`s: `EXPR` carries the external
//! `EwsUrl` and the `GroupingInformation`, `EXCH` the internal `EwsUrl`.

use super::soap::{AnswerError, UserAnswer, UserSettings};
use crate::ns::{self, Ns};
use crate::xml_tree::{Element, Tree};
use crate::xml_write::XmlWriter;
use common::mailbox::Mailbox;

/// The request for `mailbox`.
pub fn request(mailbox: &Mailbox) -> String {
    let mut w = XmlWriter::new();
    w.raw("<?xml version=\"1.0\" encoding=\"utf-8\"?>");
    w.open("Autodiscover", &[("xmlns", ns::POX_REQUEST)]);
    w.open("Request", &[]);
    w.leaf("EMailAddress", mailbox.as_str());
    w.leaf("AcceptableResponseSchema", ns::POX_OUTLOOK);
    w.close("Request");
    w.close("Autodiscover");
    w.finish()
}

fn child<'t, 'a>(e: &Element<'t, 'a>, local: &str) -> Option<Element<'t, 'a>> {
    e.child_in(Ns::PoxOutlook, local)
}

fn text_of(e: &Element<'_, '_>, local: &str) -> Option<String> {
    child(e, local)
        .map(|c| c.text().trim().to_owned())
        .filter(|t| !t.is_empty())
}

/// Reads the answer for one mailbox.
pub fn answer(body: &str) -> Result<UserAnswer, AnswerError> {
    let tree = Tree::parse(body)?;
    let root = tree.root();
    if root.ns() != Ns::PoxResponse || root.local() != "Autodiscover" {
        return Err(AnswerError::Malformed(format!(
            "expected a POX Autodiscover answer, found <{}>",
            root.local()
        )));
    }
    // An error for the request as a whole sits in the outer namespace.
    let response = root
        .child_in(Ns::PoxOutlook, "Response")
        .or_else(|| root.child_in(Ns::PoxResponse, "Response"))
        .ok_or_else(|| AnswerError::Malformed("no Response".into()))?;
    if let Some(error) = response.children().find(|c| c.local() == "Error") {
        let field = |name| {
            error
                .children()
                .find(|c| c.local() == name)
                .map(|c| c.text().trim().to_owned())
                .unwrap_or_default()
        };
        return Ok(UserAnswer::Error {
            code: field("ErrorCode"),
            message: field("Message"),
        });
    }
    let account =
        child(&response, "Account").ok_or_else(|| AnswerError::Malformed("no Account".into()))?;
    match text_of(&account, "Action").as_deref() {
        Some("redirectAddr") => text_of(&account, "RedirectAddr")
            .map(UserAnswer::RedirectAddress)
            .ok_or_else(|| AnswerError::Malformed("redirectAddr without RedirectAddr".into())),
        Some("redirectUrl") => text_of(&account, "RedirectUrl")
            .map(UserAnswer::RedirectUrl)
            .ok_or_else(|| AnswerError::Malformed("redirectUrl without RedirectUrl".into())),
        Some("settings") => {
            let mut settings = UserSettings::default();
            for protocol in account
                .children()
                .filter(|c| c.ns() == Ns::PoxOutlook && c.local() == "Protocol")
            {
                match text_of(&protocol, "Type").as_deref() {
                    Some("EXPR") => {
                        settings.external_ews_url = text_of(&protocol, "EwsUrl");
                        settings.grouping_information = text_of(&protocol, "GroupingInformation");
                    }
                    Some("EXCH") => settings.internal_ews_url = text_of(&protocol, "EwsUrl"),
                    _ => {}
                }
            }
            Ok(UserAnswer::Settings(settings))
        }
        other => Err(AnswerError::Malformed(format!(
            "unknown Action {:?}",
            other.unwrap_or("(none)")
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wrap(account: &str) -> String {
        format!(
            "<Autodiscover xmlns=\"{}\"><Response xmlns=\"{}\">{account}</Response></Autodiscover>",
            ns::POX_RESPONSE,
            ns::POX_OUTLOOK
        )
    }

    #[test]
    fn reads_protocols_redirects_and_errors() {
        let settings = wrap(
            "<Account><AccountType>email</AccountType><Action>settings</Action>\
             <Protocol><Type>EXCH</Type><EwsUrl>https://internal.example.test/EWS/Exchange.asmx</EwsUrl></Protocol>\
             <Protocol><Type>EXPR</Type><EwsUrl>https://mail.example.test/EWS/Exchange.asmx</EwsUrl><GroupingInformation>SITE-2</GroupingInformation></Protocol>\
             </Account>",
        );
        assert_eq!(
            answer(&settings).unwrap(),
            UserAnswer::Settings(UserSettings {
                external_ews_url: Some("https://mail.example.test/EWS/Exchange.asmx".into()),
                internal_ews_url: Some("https://internal.example.test/EWS/Exchange.asmx".into()),
                grouping_information: Some("SITE-2".into()),
                ews_supported_schemas: None,
            })
        );
        let redirect = wrap(
            "<Account><Action>redirectAddr</Action><RedirectAddr>x@other.test</RedirectAddr></Account>",
        );
        assert_eq!(
            answer(&redirect).unwrap(),
            UserAnswer::RedirectAddress("x@other.test".into())
        );
        let error = wrap(
            "<Error Time=\"1\" Id=\"2\"><ErrorCode>500</ErrorCode><Message>The e-mail address cannot be found.</Message></Error>",
        );
        assert!(matches!(answer(&error).unwrap(), UserAnswer::Error { code, .. } if code == "500"));
        assert!(matches!(
            answer("<Autodiscover/>"),
            Err(AnswerError::Malformed(_))
        ));
        assert!(
            request(&Mailbox::parse("a@b.test").unwrap())
                .contains("<EMailAddress>a@b.test</EMailAddress>")
        );
    }
}

//! SOAP Autodiscover `GetUserSettings`: the request for a batch of mailboxes (at most
//! [`MAX_USERS`]) and the answer, one [`UserAnswer`] per mailbox in request order:
//! the settings we ask for, a redirect (to another address or another Autodiscover
//! URL), or the per-user error. The schema is Microsoft's
//! `http://schemas.microsoft.com/exchange/2010/Autodiscover`.

use std::collections::HashMap;

use crate::decode_error::FrameError;
use crate::ns::Ns;
use crate::xml_tree::{Element, Tree};
use crate::xml_write::XmlWriter;
use common::mailbox::Mailbox;

/// Mailboxes per GetUserSettings request (Microsoft's documented limit).
pub const MAX_USERS: usize = 100;

/// The settings we ask for.
pub const SETTINGS: [&str; 4] = [
    "ExternalEwsUrl",
    "InternalEwsUrl",
    "GroupingInformation",
    "EwsSupportedSchemas",
];

/// What Autodiscover says of one mailbox's EWS.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserSettings {
    /// `ExternalEwsUrl` (the EXPR protocol's `EwsUrl` in POX).
    pub external_ews_url: Option<String>,
    /// `InternalEwsUrl` (the EXCH protocol's `EwsUrl` in POX).
    pub internal_ews_url: Option<String>,
    /// `GroupingInformation`: mailboxes sharing it (and the EWS URL) share a backend.
    pub grouping_information: Option<String>,
    /// `EwsSupportedSchemas`, as sent.
    pub ews_supported_schemas: Option<String>,
}

/// One mailbox's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserAnswer {
    /// Its settings.
    Settings(UserSettings),
    /// Ask again for this address.
    RedirectAddress(String),
    /// Ask again at this Autodiscover URL.
    RedirectUrl(String),
    /// An error for this mailbox (`InvalidUser`, …).
    Error {
        /// The error code.
        code: String,
        /// Its message.
        message: String,
    },
}

/// Why a whole answer could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnswerError {
    /// Not XML, or not the expected shape.
    #[error("malformed Autodiscover answer: {0}")]
    Malformed(String),
    /// The request as a whole was refused (`Response/ErrorCode`), or a SOAP fault.
    #[error("Autodiscover refused the request: {code}: {message}")]
    Refused {
        /// The error code.
        code: String,
        /// Its message.
        message: String,
    },
    /// Fewer or more answers than mailboxes asked for.
    #[error("Autodiscover answered {got} users for {asked}")]
    Count {
        /// Mailboxes asked for.
        asked: usize,
        /// Answers received.
        got: usize,
    },
}

impl From<FrameError> for AnswerError {
    fn from(e: FrameError) -> Self {
        AnswerError::Malformed(e.to_string())
    }
}

/// The request for `mailboxes` (1 to [`MAX_USERS`]) sent to `url`.
pub fn request(url: &str, mailboxes: &[Mailbox]) -> String {
    let mut w = XmlWriter::new();
    w.raw("<?xml version=\"1.0\" encoding=\"utf-8\"?>");
    w.open(
        "soap:Envelope",
        &[
            ("xmlns:soap", crate::ns::SOAP),
            ("xmlns:a", crate::ns::AUTODISCOVER),
            ("xmlns:wsa", "http://www.w3.org/2005/08/addressing"),
        ],
    );
    w.open("soap:Header", &[]);
    w.leaf("a:RequestedServerVersion", "Exchange2013");
    w.leaf(
        "wsa:Action",
        "http://schemas.microsoft.com/exchange/2010/Autodiscover/Autodiscover/GetUserSettings",
    );
    w.leaf("wsa:To", url);
    w.close("soap:Header");
    w.open("soap:Body", &[]);
    w.open("a:GetUserSettingsRequestMessage", &[]);
    w.open("a:Request", &[]);
    w.open("a:Users", &[]);
    for mailbox in mailboxes {
        w.open("a:User", &[]);
        w.leaf("a:Mailbox", mailbox.as_str());
        w.close("a:User");
    }
    w.close("a:Users");
    w.open("a:RequestedSettings", &[]);
    for setting in SETTINGS {
        w.leaf("a:Setting", setting);
    }
    w.close("a:RequestedSettings");
    w.close("a:Request");
    w.close("a:GetUserSettingsRequestMessage");
    w.close("soap:Body");
    w.close("soap:Envelope");
    w.finish()
}

fn child<'t, 'a>(e: &Element<'t, 'a>, local: &str) -> Option<Element<'t, 'a>> {
    e.child_in(Ns::Autodiscover, local)
}

fn text_of(e: &Element<'_, '_>, local: &str) -> Option<String> {
    child(e, local)
        .map(|c| c.text().trim().to_owned())
        .filter(|t| !t.is_empty())
}

/// Reads the answer to a request for `asked` mailboxes.
pub fn answer(body: &str, asked: usize) -> Result<Vec<UserAnswer>, AnswerError> {
    let tree = Tree::parse(body)?;
    let envelope = tree.root();
    if envelope.ns() != Ns::Soap || envelope.local() != "Envelope" {
        return Err(AnswerError::Malformed(format!(
            "expected a SOAP Envelope, found <{}>",
            envelope.local()
        )));
    }
    let body = envelope
        .child_in(Ns::Soap, "Body")
        .ok_or_else(|| AnswerError::Malformed("no SOAP Body".into()))?;
    if let Some(fault) = body.child_in(Ns::Soap, "Fault") {
        let text = |name| {
            fault
                .children()
                .find(|c| c.local() == name)
                .map(|c| c.text().trim().to_owned())
                .unwrap_or_default()
        };
        return Err(AnswerError::Refused {
            code: text("faultcode"),
            message: text("faultstring"),
        });
    }
    let message = child(&body, "GetUserSettingsResponseMessage")
        .ok_or_else(|| AnswerError::Malformed("no GetUserSettingsResponseMessage".into()))?;
    let response =
        child(&message, "Response").ok_or_else(|| AnswerError::Malformed("no Response".into()))?;
    let code = text_of(&response, "ErrorCode").unwrap_or_else(|| "NoError".into());
    if code != "NoError" {
        return Err(AnswerError::Refused {
            code,
            message: text_of(&response, "ErrorMessage").unwrap_or_default(),
        });
    }
    let users: Vec<UserAnswer> = child(&response, "UserResponses")
        .map(|list| {
            list.children()
                .filter(|c| c.ns() == Ns::Autodiscover && c.local() == "UserResponse")
                .map(|u| user(&u))
                .collect()
        })
        .unwrap_or_default();
    if users.len() != asked {
        return Err(AnswerError::Count {
            asked,
            got: users.len(),
        });
    }
    Ok(users)
}

fn user(u: &Element<'_, '_>) -> UserAnswer {
    let code = text_of(u, "ErrorCode").unwrap_or_else(|| "NoError".into());
    let message = text_of(u, "ErrorMessage").unwrap_or_default();
    let target = text_of(u, "RedirectTarget");
    match (code.as_str(), target) {
        ("NoError", _) => {
            let mut values: HashMap<&str, String> = HashMap::new();
            if let Some(settings) = child(u, "UserSettings") {
                for setting in settings
                    .children()
                    .filter(|c| c.ns() == Ns::Autodiscover && c.local() == "UserSetting")
                {
                    if let (Some(name), Some(value)) =
                        (child(&setting, "Name"), text_of(&setting, "Value"))
                    {
                        let name = name.text().trim();
                        if let Some(known) = SETTINGS.iter().find(|s| **s == name) {
                            values.insert(known, value);
                        }
                    }
                }
            }
            UserAnswer::Settings(UserSettings {
                external_ews_url: values.remove("ExternalEwsUrl"),
                internal_ews_url: values.remove("InternalEwsUrl"),
                grouping_information: values.remove("GroupingInformation"),
                ews_supported_schemas: values.remove("EwsSupportedSchemas"),
            })
        }
        ("RedirectAddress", Some(address)) => UserAnswer::RedirectAddress(address),
        ("RedirectUrl", Some(url)) => UserAnswer::RedirectUrl(url),
        _ => UserAnswer::Error { code, message },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_carry_every_mailbox_and_setting() {
        let boxes = [
            Mailbox::parse("a@example.test").unwrap(),
            Mailbox::parse("b@example.test").unwrap(),
        ];
        let xml = request("https://example.test/autodiscover/autodiscover.svc", &boxes);
        for needle in [
            "<a:Mailbox>a@example.test</a:Mailbox>",
            "<a:Mailbox>b@example.test</a:Mailbox>",
            "<a:Setting>GroupingInformation</a:Setting>",
            "Autodiscover/Autodiscover/GetUserSettings</wsa:Action>",
        ] {
            assert!(xml.contains(needle), "{needle} in {xml}");
        }
    }

    const ANSWER: &str = r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>
<GetUserSettingsResponseMessage xmlns="http://schemas.microsoft.com/exchange/2010/Autodiscover">
<Response xmlns:i="http://www.w3.org/2001/XMLSchema-instance"><ErrorCode>NoError</ErrorCode><ErrorMessage/>
<UserResponses>
<UserResponse><ErrorCode>NoError</ErrorCode><ErrorMessage>No error.</ErrorMessage><RedirectTarget i:nil="true"/><UserSettingErrors/>
<UserSettings><UserSetting i:type="StringSetting"><Name>ExternalEwsUrl</Name><Value>https://mail.example.test/EWS/Exchange.asmx</Value></UserSetting>
<UserSetting i:type="StringSetting"><Name>GroupingInformation</Name><Value>SITE-1</Value></UserSetting>
<UserSetting i:type="StringSetting"><Name>UserDisplayName</Name><Value>A</Value></UserSetting></UserSettings></UserResponse>
<UserResponse><ErrorCode>RedirectAddress</ErrorCode><ErrorMessage>Redirection address.</ErrorMessage><RedirectTarget>b@other.test</RedirectTarget><UserSettingErrors/><UserSettings/></UserResponse>
<UserResponse><ErrorCode>InvalidUser</ErrorCode><ErrorMessage>Invalid user: 'c@example.test'</ErrorMessage><RedirectTarget i:nil="true"/><UserSettingErrors/><UserSettings/></UserResponse>
</UserResponses></Response></GetUserSettingsResponseMessage></s:Body></s:Envelope>"#;

    #[test]
    fn reads_settings_redirects_and_errors_in_order() {
        let users = answer(ANSWER, 3).unwrap();
        assert_eq!(
            users[0],
            UserAnswer::Settings(UserSettings {
                external_ews_url: Some("https://mail.example.test/EWS/Exchange.asmx".into()),
                grouping_information: Some("SITE-1".into()),
                ..UserSettings::default()
            })
        );
        assert_eq!(users[1], UserAnswer::RedirectAddress("b@other.test".into()));
        assert!(matches!(&users[2], UserAnswer::Error { code, .. } if code == "InvalidUser"));
        assert_eq!(
            answer(ANSWER, 2),
            Err(AnswerError::Count { asked: 2, got: 3 })
        );
    }

    #[test]
    fn bad_answers_are_typed_errors() {
        assert!(matches!(
            answer("<html>", 1),
            Err(AnswerError::Malformed(_))
        ));
        assert!(matches!(answer("<a/>", 1), Err(AnswerError::Malformed(_))));
        let refused = ANSWER.replacen(
            "<ErrorCode>NoError</ErrorCode><ErrorMessage/>",
            "<ErrorCode>InvalidRequest</ErrorCode><ErrorMessage>Too many users</ErrorMessage>",
            1,
        );
        assert!(
            matches!(answer(&refused, 3), Err(AnswerError::Refused { code, .. }) if code == "InvalidRequest")
        );
    }
}

//! GetServiceConfiguration for `MailTips` (Exchange 2010 and later): whether the
//! server answers mail tips and how many recipients one GetMailTips may name
//! (`MaxRecipientsPerGetMailTipsRequest`). A server that does not know the operation
//! or says MailTips are off is read one mailbox at a time instead.

use crate::decode_error::{FrameError, Problem};
use crate::response::Status;
use crate::soap::MESSAGES_AND_TYPES;
use crate::xml_tree::Element;
use crate::xml_write::XmlWriter;

/// The `m:GetServiceConfiguration` body element asking for the MailTips settings.
pub fn body() -> String {
    let mut w = XmlWriter::new();
    w.open("m:GetServiceConfiguration", &MESSAGES_AND_TYPES);
    w.open("m:RequestedConfiguration", &[]);
    w.leaf("m:ConfigurationName", "MailTips");
    w.close("m:RequestedConfiguration");
    w.close("m:GetServiceConfiguration");
    w.finish()
}

/// `MailTipsConfiguration`, the parts we use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MailTipsConfiguration {
    /// `MailTipsEnabled`.
    pub enabled: bool,
    /// `MaxRecipientsPerGetMailTipsRequest`.
    pub max_recipients: u32,
}

/// A decoded `GetServiceConfigurationResponse`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceConfigurationResponse {
    /// Class and code of the first `ServiceConfigurationResponseMessageType`, else of
    /// the response itself.
    pub status: Status,
    /// Present when the server sent it.
    pub mail_tips: Option<MailTipsConfiguration>,
}

fn read_bool(parent: Element<'_, '_>, local: &'static str) -> Result<bool, FrameError> {
    let e = parent.require_ews(local)?;
    match e.text().trim() {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        other => Err(e.error(Problem::invalid(local, other, "true or false"))),
    }
}

impl ServiceConfigurationResponse {
    /// Reads an `m:GetServiceConfigurationResponse` element.
    pub fn read(response: Element<'_, '_>) -> Result<ServiceConfigurationResponse, FrameError> {
        // `ServiceConfigurationResponseMessageType`: the element is named after its type.
        let message = response
            .ews_child("ResponseMessages")
            .and_then(|m| m.children().find(|c| c.ns().is_ews()))
            .unwrap_or(response);
        let status = Status::read(message)?;
        let mail_tips = match message.ews_child("MailTipsConfiguration") {
            Some(c) => {
                let max = c.require_ews("MaxRecipientsPerGetMailTipsRequest")?;
                let max_recipients = max.text().trim().parse::<u32>().map_err(|_| {
                    max.error(Problem::invalid(
                        "MaxRecipientsPerGetMailTipsRequest",
                        max.text(),
                        "a whole number",
                    ))
                })?;
                Some(MailTipsConfiguration {
                    enabled: read_bool(c, "MailTipsEnabled")?,
                    max_recipients,
                })
            }
            None => None,
        };
        Ok(ServiceConfigurationResponse { status, mail_tips })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::{Response, decode_envelope};

    fn decode(inner: &str) -> Result<ServiceConfigurationResponse, FrameError> {
        let xml = format!(
            r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>
            <m:GetServiceConfigurationResponse ResponseClass="Success" xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages" xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types">
            <m:ResponseCode>NoError</m:ResponseCode><m:ResponseMessages>
            <m:ServiceConfigurationResponseMessageType ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode>
            {inner}</m:ServiceConfigurationResponseMessageType></m:ResponseMessages>
            </m:GetServiceConfigurationResponse></s:Body></s:Envelope>"#
        );
        match decode_envelope(xml.as_bytes())?.response {
            Response::GetServiceConfiguration(r) => Ok(r),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_limit_and_the_switch_are_read_and_nonsense_is_an_error() {
        let r = decode("<m:MailTipsConfiguration><t:MailTipsEnabled>true</t:MailTipsEnabled><t:MaxRecipientsPerGetMailTipsRequest>50</t:MaxRecipientsPerGetMailTipsRequest><t:MaxMessageSize>10485760</t:MaxMessageSize><t:LargeAudienceThreshold>25</t:LargeAudienceThreshold><t:ShowExternalRecipientCount>false</t:ShowExternalRecipientCount><t:InternalDomains/></m:MailTipsConfiguration>").unwrap();
        assert_eq!(
            r.mail_tips,
            Some(MailTipsConfiguration {
                enabled: true,
                max_recipients: 50
            })
        );
        // gromox: off, with the largest int as the limit.
        let r = decode("<m:MailTipsConfiguration><t:MailTipsEnabled>false</t:MailTipsEnabled><t:MaxRecipientsPerGetMailTipsRequest>2147483647</t:MaxRecipientsPerGetMailTipsRequest></m:MailTipsConfiguration>").unwrap();
        assert!(!r.mail_tips.unwrap().enabled);
        let e = decode("<m:MailTipsConfiguration><t:MailTipsEnabled>yes</t:MailTipsEnabled><t:MaxRecipientsPerGetMailTipsRequest>5</t:MaxRecipientsPerGetMailTipsRequest></m:MailTipsConfiguration>").unwrap_err();
        assert!(e.to_string().contains("MailTipsEnabled"), "{e}");
        assert!(body().contains("<m:ConfigurationName>MailTips</m:ConfigurationName>"));
    }
}

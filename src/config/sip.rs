//! `[[sip]]`: the SIP presence servers calendar presence is published to (none by
//! default), each validated here: its URI, the presentity template, the publication
//! lifetime, digest credentials (the password from a file) and TLS trust.

use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};

use common::mailbox::Mailbox;
use serde::Deserialize;
use sip::uri::{SipUri, Transport};

use super::values::{existing_file, ranged, read_secret, resolve};
use super::{ConfigError, error};

/// `sip[].expires_secs`: ten minutes by default, a minute to a day.
const EXPIRES_SECS: (u64, RangeInclusive<u64>) = (600, 60..=86_400);
/// `sip[].max_in_flight`: PUBLISH transactions open at once.
const MAX_IN_FLIGHT: (u64, RangeInclusive<u64>) = (64, 1..=1024);
/// The default presentity: the mailbox's own address as a SIP URI.
pub const DEFAULT_PRESENTITY: &str = "sip:{local}@{domain}";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSip {
    name: Option<String>,
    server: Option<String>,
    presentity: Option<String>,
    expires_secs: Option<u64>,
    publish_available: Option<bool>,
    username: Option<String>,
    password_file: Option<PathBuf>,
    ca_file: Option<PathBuf>,
    max_in_flight: Option<u64>,
}

/// One SIP presence server.
#[derive(Debug, Clone)]
pub struct SipConfig {
    /// Its name in logs, metrics and the API.
    pub name: String,
    /// Where it listens, with the transport.
    pub server: SipUri,
    /// How a mailbox becomes a presentity.
    pub presentity: PresentityTemplate,
    /// The lifetime asked for each publication.
    pub expires_secs: u32,
    /// Publish "available" too (else a free calendar removes our publication).
    pub publish_available: bool,
    /// Digest credentials, when the server challenges.
    pub credentials: Option<sip::client::Credentials>,
    /// CA certificates to trust for TLS (else the system's plus `certs/*.pem`).
    pub ca_file: Option<PathBuf>,
    /// Transactions open at once: the pace of start-up and of storms.
    pub max_in_flight: usize,
}

impl SipConfig {
    /// Whether requests travel over TLS.
    pub fn uses_tls(&self) -> bool {
        self.server.effective_transport() == Transport::Tls
    }
}

/// `presentity = "sip:{local}@{domain}"`: placeholders `{address}`, `{local}`,
/// `{domain}` over the mailbox address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresentityTemplate(String);

impl PresentityTemplate {
    /// Checks the template: known placeholders only, and a SIP URI with a user part
    /// for a sample mailbox.
    pub fn parse(text: &str) -> Result<PresentityTemplate, String> {
        let mut rest = text;
        while let Some(open) = rest.find('{') {
            let close = rest[open..]
                .find('}')
                .ok_or_else(|| format!("{text:?} opens a placeholder it does not close"))?;
            let name = &rest[open + 1..open + close];
            if !matches!(name, "address" | "local" | "domain") {
                return Err(format!(
                    "{{{name}}} is not a placeholder: use {{address}}, {{local}} or {{domain}}"
                ));
            }
            rest = &rest[open + close + 1..];
        }
        let template = PresentityTemplate(text.to_owned());
        let sample = Mailbox::parse("user@example.com").map_err(|e| e.to_string())?;
        let uri = SipUri::parse(&template.apply(&sample))
            .map_err(|e| format!("{text:?} does not make a SIP URI: {e}"))?;
        if uri.user.is_none() {
            return Err(format!("{text:?} makes a SIP URI without a user part"));
        }
        Ok(template)
    }

    /// The presentity of `mailbox`.
    pub fn apply(&self, mailbox: &Mailbox) -> String {
        let address = mailbox.as_str();
        let local = address.split('@').next().unwrap_or(address);
        self.0
            .replace("{address}", address)
            .replace("{local}", local)
            .replace("{domain}", mailbox.domain())
    }
}

pub(super) fn sips(raw: Vec<RawSip>, base: &Path) -> Result<Vec<SipConfig>, ConfigError> {
    let mut out: Vec<SipConfig> = Vec::with_capacity(raw.len());
    for (i, s) in raw.into_iter().enumerate() {
        let key = |field: &str| format!("sip[{i}].{field}");
        let name = s
            .name
            .filter(|n| !n.trim().is_empty())
            .ok_or_else(|| error(key("name"), "every [[sip]] server needs a name"))?;
        if out.iter().any(|o| o.name == name) {
            return Err(error(
                key("name"),
                format!("{name:?} names two [[sip]] servers"),
            ));
        }
        let text = s.server.ok_or_else(|| {
            error(
                key("server"),
                "missing: the server's SIP URI, e.g. \"sip:127.0.0.1:5060;transport=udp\"",
            )
        })?;
        let server =
            SipUri::parse(&text).map_err(|e| error(key("server"), format!("{text:?}: {e}")))?;
        if server.user.is_some() {
            return Err(error(
                key("server"),
                format!("{text:?} names a user: the server's URI is sip:host[:port][;transport=…]"),
            ));
        }
        let presentity =
            PresentityTemplate::parse(s.presentity.as_deref().unwrap_or(DEFAULT_PRESENTITY))
                .map_err(|e| error(key("presentity"), e))?;
        let expires = ranged(
            &key("expires_secs"),
            s.expires_secs,
            EXPIRES_SECS.0,
            EXPIRES_SECS.1,
            "seconds",
        )?;
        let max_in_flight = ranged(
            &key("max_in_flight"),
            s.max_in_flight,
            MAX_IN_FLIGHT.0,
            MAX_IN_FLIGHT.1,
            "requests",
        )?;
        let credentials = match (s.username, s.password_file) {
            (None, None) => None,
            (Some(username), Some(file)) => Some(sip::client::Credentials {
                username,
                password: read_secret(&key("password_file"), &resolve(base, &file))?,
            }),
            (Some(_), None) => {
                return Err(error(
                    key("password_file"),
                    "username is set: the password comes from password_file",
                ));
            }
            (None, Some(_)) => {
                return Err(error(
                    key("username"),
                    "password_file is set: digest needs a username too",
                ));
            }
        };
        let ca_file = s
            .ca_file
            .map(|p| existing_file(&key("ca_file"), base, &p))
            .transpose()?;
        out.push(SipConfig {
            name,
            server,
            presentity,
            expires_secs: expires as u32,
            publish_available: s.publish_available.unwrap_or(false),
            credentials,
            ca_file,
            max_in_flight: max_in_flight as usize,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_fill_in_the_mailbox() {
        let m = Mailbox::parse("Alice.Smith@Contoso.com").unwrap();
        let t = PresentityTemplate::parse(DEFAULT_PRESENTITY).unwrap();
        assert_eq!(t.apply(&m), format!("sip:{}", m.as_str()));
        let t = PresentityTemplate::parse("sip:{local}@presence.test").unwrap();
        assert!(t.apply(&m).ends_with("@presence.test"));
        assert!(
            PresentityTemplate::parse("sip:{user}@x")
                .unwrap_err()
                .contains("{user}")
        );
        assert!(PresentityTemplate::parse("sip:{local@x").is_err());
        assert!(
            PresentityTemplate::parse("sip:example.com")
                .unwrap_err()
                .contains("user part")
        );
        assert!(PresentityTemplate::parse("mailto:{address}").is_err());
    }
}

//! Reading `WWW-Authenticate`: which schemes a server offers, and the token a
//! connection-based scheme (NTLM, Negotiate) carries in its challenge.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use hyper::header::{HeaderMap, WWW_AUTHENTICATE};

/// An authentication scheme as a server names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scheme {
    /// SPNEGO; from non-domain clients Exchange accepts raw NTLM inside it.
    Negotiate,
    /// Raw NTLM.
    Ntlm,
    /// HTTP Basic.
    Basic,
    /// OAuth bearer tokens.
    Bearer,
    /// Anything else, by name.
    Other(String),
}

impl Scheme {
    fn parse(name: &str) -> Scheme {
        match name.to_ascii_lowercase().as_str() {
            "negotiate" => Scheme::Negotiate,
            "ntlm" => Scheme::Ntlm,
            "basic" => Scheme::Basic,
            "bearer" => Scheme::Bearer,
            _ => Scheme::Other(name.to_owned()),
        }
    }

    /// The name as sent on the wire.
    pub fn name(&self) -> &str {
        match self {
            Scheme::Negotiate => "Negotiate",
            Scheme::Ntlm => "NTLM",
            Scheme::Basic => "Basic",
            Scheme::Bearer => "Bearer",
            Scheme::Other(name) => name,
        }
    }
}

/// One challenge: a scheme and, for NTLM and Negotiate, the decoded token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offer {
    pub scheme: Scheme,
    /// The token68 after the scheme, base64-decoded (None when absent or not base64).
    pub token: Option<Vec<u8>>,
}

/// Every challenge in the `WWW-Authenticate` headers, in order. A value may hold
/// several challenges separated by commas; parts that are parameters of the previous
/// challenge (`realm="…"`) are skipped.
pub fn offers(headers: &HeaderMap) -> Vec<Offer> {
    let mut found = Vec::new();
    for value in headers.get_all(WWW_AUTHENTICATE) {
        let Ok(text) = value.to_str() else { continue };
        for part in text.split(',') {
            let part = part.trim();
            let (name, rest) = part.split_once(' ').unwrap_or((part, ""));
            if name.is_empty() || name.contains('=') {
                continue;
            }
            let rest = rest.trim();
            let token = (!rest.is_empty() && !rest.contains(' ') && !rest.contains('"'))
                .then(|| B64.decode(rest).ok())
                .flatten();
            found.push(Offer {
                scheme: Scheme::parse(name),
                token,
            });
        }
    }
    found
}

/// The offered schemes' names, for messages ("Negotiate, NTLM").
pub fn describe(offers: &[Offer]) -> String {
    if offers.is_empty() {
        return "no scheme".into();
    }
    offers
        .iter()
        .map(|o| o.scheme.name())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Which scheme carries NTLM to this server: Negotiate when offered (what Exchange
/// expects), else NTLM.
pub fn ntlm_carrier(offers: &[Offer]) -> Option<Scheme> {
    [Scheme::Negotiate, Scheme::Ntlm]
        .into_iter()
        .find(|wanted| offers.iter().any(|o| &o.scheme == wanted))
}

/// The token of the `scheme` challenge, when one came.
pub fn token_for(offers: &[Offer], scheme: &Scheme) -> Option<Vec<u8>> {
    offers
        .iter()
        .find(|o| &o.scheme == scheme)
        .and_then(|o| o.token.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    fn headers(values: &[&'static str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for v in values {
            map.append(WWW_AUTHENTICATE, HeaderValue::from_static(v));
        }
        map
    }

    #[test]
    fn reads_iis_style_separate_headers_and_comma_lists() {
        let iis = offers(&headers(&[
            "Negotiate",
            "NTLM",
            "Basic realm=\"mail.contoso.com\"",
        ]));
        assert_eq!(describe(&iis), "Negotiate, NTLM, Basic");
        assert_eq!(ntlm_carrier(&iis), Some(Scheme::Negotiate));
        let listed = offers(&headers(&["Basic realm=\"x\", charset=\"UTF-8\", ntlm"]));
        assert_eq!(describe(&listed), "Basic, NTLM");
        assert_eq!(ntlm_carrier(&listed), Some(Scheme::Ntlm));
        assert_eq!(
            ntlm_carrier(&offers(&headers(&["Basic realm=\"x\""]))),
            None
        );
        assert_eq!(describe(&offers(&HeaderMap::new())), "no scheme");
    }

    #[test]
    fn decodes_the_challenge_token() {
        let h = headers(&["NTLM TlRMTVNTUAACAAAA"]);
        let o = offers(&h);
        assert_eq!(
            token_for(&o, &Scheme::Ntlm).as_deref(),
            Some(&b"NTLMSSP\0\x02\0\0\0"[..])
        );
        let junk = offers(&headers(&["Negotiate !!!notbase64"]));
        assert_eq!(junk[0].token, None);
        assert_eq!(token_for(&junk, &Scheme::Negotiate), None);
    }
}

//! Digest authentication for SIP (RFC 3261 §22.4, RFC 8760): reading a server's
//! challenge (`WWW-Authenticate` on 401, `Proxy-Authenticate` on 407) and answering it
//! with MD5 or SHA-256, `qop=auth` when offered. A challenge is kept and reused with a
//! counting `nc` so that only the first request (and one after a stale nonce) takes
//! an extra round trip. Pure: the client-nonce comes from the caller.

use md5::Digest as _;

/// The hash a challenge asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// MD5 (RFC 2617; what most SIP servers still default to).
    Md5,
    /// SHA-256 (RFC 7616, for SIP RFC 8760).
    Sha256,
}

impl Algorithm {
    fn name(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Sha256 => "SHA-256",
        }
    }

    fn hash(self, input: &str) -> String {
        match self {
            Algorithm::Md5 => hex(&md5::Md5::digest(input.as_bytes())),
            Algorithm::Sha256 => {
                hex(ring::digest::digest(&ring::digest::SHA256, input.as_bytes()).as_ref())
            }
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A server's challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// `Proxy-Authenticate` (answer with `Proxy-Authorization`), else `WWW-Authenticate`.
    pub proxy: bool,
    /// The realm.
    pub realm: String,
    /// The nonce.
    pub nonce: String,
    /// The opaque value to echo.
    pub opaque: Option<String>,
    /// The hash.
    pub algorithm: Algorithm,
    /// `qop=auth` offered (else the RFC 2069 form without qop).
    pub qop_auth: bool,
    /// `stale=true`: the credentials were right, the nonce was old.
    pub stale: bool,
}

/// Why a challenge cannot be answered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChallengeError {
    /// Not `Digest …`.
    #[error("the server asks for {0:?} authentication; only Digest is supported")]
    Scheme(String),
    /// No realm or no nonce.
    #[error("the Digest challenge has no {0}")]
    Missing(&'static str),
    /// An algorithm we do not speak (`-sess` variants, SHA-512-256).
    #[error("the Digest challenge asks for algorithm {0}; MD5 and SHA-256 are supported")]
    Algorithm(String),
    /// Only `qop=auth-int` offered.
    #[error("the Digest challenge offers only qop={0}; qop=auth is supported")]
    Qop(String),
}

impl Challenge {
    /// Reads one challenge header value.
    pub fn parse(value: &str, proxy: bool) -> Result<Challenge, ChallengeError> {
        let value = value.trim();
        let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
        if !scheme.eq_ignore_ascii_case("Digest") {
            return Err(ChallengeError::Scheme(scheme.to_owned()));
        }
        let params = parameters(rest);
        let get = |name: &str| {
            params
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone())
        };
        let algorithm = match get("algorithm") {
            None => Algorithm::Md5,
            Some(a) if a.eq_ignore_ascii_case("MD5") => Algorithm::Md5,
            Some(a) if a.eq_ignore_ascii_case("SHA-256") => Algorithm::Sha256,
            Some(a) => return Err(ChallengeError::Algorithm(a)),
        };
        let qop_auth = match get("qop") {
            None => false,
            Some(q) if q.split(',').any(|o| o.trim().eq_ignore_ascii_case("auth")) => true,
            Some(q) => return Err(ChallengeError::Qop(q)),
        };
        Ok(Challenge {
            proxy,
            realm: get("realm").ok_or(ChallengeError::Missing("realm"))?,
            nonce: get("nonce").ok_or(ChallengeError::Missing("nonce"))?,
            opaque: get("opaque"),
            algorithm,
            qop_auth,
            stale: get("stale").is_some_and(|s| s.eq_ignore_ascii_case("true")),
        })
    }

    /// The best of several offered challenges (SHA-256 before MD5), or the first
    /// error when none can be answered.
    pub fn choose<'a>(
        values: impl IntoIterator<Item = &'a str>,
        proxy: bool,
    ) -> Result<Challenge, ChallengeError> {
        let mut first_error = None;
        let mut best: Option<Challenge> = None;
        for value in values {
            match Challenge::parse(value, proxy) {
                Ok(c) => {
                    if best.as_ref().is_none_or(|b| {
                        b.algorithm == Algorithm::Md5 && c.algorithm == Algorithm::Sha256
                    }) {
                        best = Some(c);
                    }
                }
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        best.ok_or_else(|| first_error.unwrap_or(ChallengeError::Missing("challenge")))
    }

    /// The header to send (`Authorization` or `Proxy-Authorization`).
    pub fn header_name(&self) -> &'static str {
        if self.proxy {
            "Proxy-Authorization"
        } else {
            "Authorization"
        }
    }

    /// The header value answering this challenge for `method` on `uri`, as the `nc`-th
    /// use of the nonce, with the client nonce `cnonce`.
    pub fn answer(
        &self,
        username: &str,
        password: &str,
        method: &str,
        uri: &str,
        nc: u32,
        cnonce: &str,
    ) -> String {
        let h = |s: &str| self.algorithm.hash(s);
        let ha1 = h(&format!("{username}:{}:{password}", self.realm));
        let ha2 = h(&format!("{method}:{uri}"));
        let nc = format!("{nc:08x}");
        let response = if self.qop_auth {
            h(&format!("{ha1}:{}:{nc}:{cnonce}:auth:{ha2}", self.nonce))
        } else {
            h(&format!("{ha1}:{}:{ha2}", self.nonce))
        };
        let mut out = format!(
            "Digest username=\"{}\", realm=\"{}\", nonce=\"{}\", uri=\"{uri}\", response=\"{response}\", algorithm={}",
            quote(username),
            quote(&self.realm),
            quote(&self.nonce),
            self.algorithm.name()
        );
        if self.qop_auth {
            out.push_str(&format!(", qop=auth, nc={nc}, cnonce=\"{cnonce}\""));
        }
        if let Some(opaque) = &self.opaque {
            out.push_str(&format!(", opaque=\"{}\"", quote(opaque)));
        }
        out
    }
}

fn quote(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// `name=value, name="quoted, value"` into pairs.
fn parameters(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let name: String = chars
            .by_ref()
            .take_while(|c| *c != '=')
            .collect::<String>()
            .trim()
            .to_owned();
        if name.is_empty() {
            return out;
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            while let Some(c) = chars.peek().copied() {
                if c == ',' {
                    break;
                }
                value.push(c);
                chars.next();
            }
            value = value.trim().to_owned();
        }
        out.push((name, value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_2617_example_response() {
        // RFC 2617 §3.5: the HTTP example, same arithmetic for SIP.
        let c = Challenge::parse(
            r#"Digest realm="testrealm@host.com", qop="auth,auth-int", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41""#,
            false,
        )
        .unwrap();
        let answer = c.answer(
            "Mufasa",
            "Circle Of Life",
            "GET",
            "/dir/index.html",
            1,
            "0a4f113b",
        );
        assert!(
            answer.contains(r#"response="6629fae49393a05397450978507c4ef1""#),
            "{answer}"
        );
        assert!(answer.contains("nc=00000001"));
        assert!(answer.contains(r#"opaque="5ccc069c403ebaf9f0171e9517f40e41""#));
        assert_eq!(c.header_name(), "Authorization");
    }

    #[test]
    fn rfc_7616_sha_256_example_response() {
        // RFC 7616 §3.9.1.
        let c = Challenge::parse(
            r#"Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm=SHA-256, nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS""#,
            false,
        )
        .unwrap();
        let answer = c.answer(
            "Mufasa",
            "Circle of Life",
            "GET",
            "/dir/index.html",
            1,
            "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
        );
        assert!(
            answer.contains(
                r#"response="753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1""#
            ),
            "{answer}"
        );
        assert!(answer.contains("algorithm=SHA-256"));
    }

    #[test]
    fn sha_256_is_chosen_over_md5_and_the_unknown_is_refused() {
        let c = Challenge::choose(
            [
                r#"Digest realm="r", nonce="n1", algorithm=MD5"#,
                r#"Digest realm="r", nonce="n2", algorithm=SHA-256, stale=TRUE"#,
            ],
            true,
        )
        .unwrap();
        assert_eq!(
            (c.algorithm, c.nonce.as_str(), c.stale),
            (Algorithm::Sha256, "n2", true)
        );
        assert_eq!(c.header_name(), "Proxy-Authorization");
        assert_eq!(
            Challenge::parse(r#"Basic realm="r""#, false),
            Err(ChallengeError::Scheme("Basic".into()))
        );
        assert_eq!(
            Challenge::parse(r#"Digest realm="r", nonce="n", algorithm=MD5-sess"#, false),
            Err(ChallengeError::Algorithm("MD5-sess".into()))
        );
        assert_eq!(
            Challenge::parse(r#"Digest nonce="n""#, false),
            Err(ChallengeError::Missing("realm"))
        );
        let plain = Challenge::parse(r#"Digest realm="r", nonce="n""#, false).unwrap();
        assert!(
            !plain
                .answer("u", "p", "PUBLISH", "sip:a@b", 1, "c")
                .contains("qop")
        );
    }
}

//! The simulator's side of authentication, as IIS does it for Exchange's EWS virtual
//! directory: Basic and Bearer checked on every request; NTLMv2 (raw or inside
//! Negotiate) verified once per connection by the acceptor side of `sspi`, after which
//! the connection is authenticated; and Extended Protection (`none`, `allow`,
//! `require`) checking the channel binding of our own certificate.
//!
//! `sspi` rejects a wrong binding but accepts a missing one (IIS's `Allow`); for
//! `Require` this module also reads the AUTHENTICATE message's `MsvAvChannelBindings`
//! pair to refuse a message that carries none. That reading (MS-NLMP §2.2.1.3 and
//! §2.2.2.7) is the only NTLM parsing written here, and only in the test double.

use std::path::PathBuf;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use hyper::header::{AUTHORIZATION, HeaderMap};
use sspi::{
    AuthIdentity, AuthIdentityBuffers, BufferType, CredentialUse, DataRepresentation, Ntlm,
    SecurityBuffer, SecurityStatus, ServerRequestFlags, Sspi, SspiImpl,
};

use ews::auth::ntlm::parse_username;

/// Extended Protection on the simulator's own certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ExtendedProtection {
    /// Channel bindings are not looked at.
    #[default]
    None,
    /// A wrong binding is refused; a missing one is accepted.
    Allow,
    /// A missing or wrong binding is refused.
    Require,
}

impl std::str::FromStr for ExtendedProtection {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "none" => Ok(ExtendedProtection::None),
            "allow" => Ok(ExtendedProtection::Allow),
            "require" => Ok(ExtendedProtection::Require),
            other => Err(format!("{other:?}: use none, allow or require")),
        }
    }
}

/// What the simulator asks of clients.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum SimAuth {
    /// Everyone is the service account.
    #[default]
    None,
    /// Basic with the account's password.
    Basic { password: String },
    /// NTLMv2 per connection with the account's password.
    Ntlm { password: String },
    /// Bearer: the valid tokens are the lines this file holds now.
    Bearer { token_file: PathBuf },
}

/// One connection's authentication state.
#[derive(Default)]
pub struct ConnectionAuth {
    /// Authenticated by an NTLM handshake on this connection.
    authenticated: bool,
    /// A handshake waiting for its AUTHENTICATE message.
    pending: Option<(Ntlm, Option<AuthIdentityBuffers>)>,
}

impl std::fmt::Debug for ConnectionAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionAuth")
            .field("authenticated", &self.authenticated)
            .field("pending", &self.pending.is_some())
            .finish()
    }
}

/// The outcome for one request.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Serve it.
    Pass,
    /// Answer 401 with this `WWW-Authenticate` (an NTLM CHALLENGE), keeping the
    /// connection for the next leg.
    Challenge(String),
    /// Answer 401 with the scheme offers; `why` is counted (never the credentials).
    Refuse {
        /// `anonymous` (no credentials sent), `unauthorized`, `bad_binding`,
        /// `missing_binding`.
        why: &'static str,
    },
}

/// The `WWW-Authenticate` values a refusal carries for `auth`.
pub fn offers(auth: &SimAuth) -> &'static [&'static str] {
    match auth {
        SimAuth::None => &[],
        SimAuth::Basic { .. } => &["Basic realm=\"ews-presence simulate\""],
        SimAuth::Ntlm { .. } => &["Negotiate", "NTLM"],
        SimAuth::Bearer { .. } => &["Bearer"],
    }
}

/// Decides on one request of `connection`. `binding` is the `tls-server-end-point`
/// token of our certificate when the connection is TLS.
pub fn check(
    auth: &SimAuth,
    account: &str,
    protection: ExtendedProtection,
    binding: Option<&[u8]>,
    connection: &mut ConnectionAuth,
    headers: &HeaderMap,
) -> Verdict {
    // A request without credentials is how clients learn the schemes: not a failed
    // login (IIS logs it as 401.2, lockout policies do not count it).
    let refuse = if headers.contains_key(AUTHORIZATION) {
        Verdict::Refuse {
            why: "unauthorized",
        }
    } else {
        Verdict::Refuse { why: "anonymous" }
    };
    let presented = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .map(|(scheme, rest)| (scheme.to_ascii_lowercase(), rest.trim().to_owned()));
    match auth {
        SimAuth::None => Verdict::Pass,
        SimAuth::Basic { password } => {
            let ok = presented
                .filter(|(scheme, _)| scheme == "basic")
                .and_then(|(_, encoded)| B64.decode(encoded).ok())
                .and_then(|bytes| String::from_utf8(bytes).ok())
                .and_then(|text| {
                    text.split_once(':')
                        .map(|(u, p)| u.eq_ignore_ascii_case(account) && p == password)
                });
            if ok == Some(true) {
                Verdict::Pass
            } else {
                refuse
            }
        }
        SimAuth::Bearer { token_file } => {
            // Every non-empty line is a valid token (old and new overlap while an
            // issuer rotates them).
            let valid = std::fs::read_to_string(token_file).unwrap_or_default();
            let ok = presented.is_some_and(|(scheme, token)| {
                scheme == "bearer"
                    && valid
                        .lines()
                        .map(str::trim)
                        .any(|t| !t.is_empty() && t == token)
            });
            if ok { Verdict::Pass } else { refuse }
        }
        SimAuth::Ntlm { password } => {
            let Some((scheme, encoded)) = presented else {
                // IIS: an authenticated connection needs no header on later requests.
                return if connection.authenticated {
                    Verdict::Pass
                } else {
                    refuse
                };
            };
            if scheme != "ntlm" && scheme != "negotiate" {
                return refuse;
            }
            let Ok(message) = B64.decode(&encoded) else {
                return refuse;
            };
            // A new handshake replaces whatever the connection had.
            connection.authenticated = false;
            match message.get(8..12) {
                Some([1, 0, 0, 0]) => match challenge(account, password, &message) {
                    Ok((ntlm, credentials, challenge)) => {
                        connection.pending = Some((ntlm, credentials));
                        Verdict::Challenge(format!(
                            "{} {}",
                            if scheme == "ntlm" {
                                "NTLM"
                            } else {
                                "Negotiate"
                            },
                            B64.encode(challenge)
                        ))
                    }
                    Err(()) => refuse,
                },
                Some([3, 0, 0, 0]) => {
                    let Some((ntlm, credentials)) = connection.pending.take() else {
                        return refuse;
                    };
                    let checked = match protection {
                        ExtendedProtection::None => None,
                        ExtendedProtection::Allow | ExtendedProtection::Require => binding,
                    };
                    if protection == ExtendedProtection::Require
                        && binding.is_some()
                        && !carries_channel_binding(&message)
                    {
                        return Verdict::Refuse {
                            why: "missing_binding",
                        };
                    }
                    match authenticate(ntlm, credentials, &message, checked) {
                        Ok(()) => {
                            connection.authenticated = true;
                            Verdict::Pass
                        }
                        Err(why) => Verdict::Refuse { why },
                    }
                }
                _ => refuse,
            }
        }
    }
}

type Pending = (Ntlm, Option<AuthIdentityBuffers>, Vec<u8>);

/// Reads a NEGOTIATE message and writes the CHALLENGE.
fn challenge(account: &str, password: &str, negotiate: &[u8]) -> Result<Pending, ()> {
    let identity = AuthIdentity {
        username: parse_username(account).map_err(|_| ())?,
        password: password.to_owned().into(),
    };
    let mut ntlm = Ntlm::new();
    let mut credentials = ntlm
        .acquire_credentials_handle()
        .with_credential_use(CredentialUse::Inbound)
        .with_auth_data(&identity)
        .execute(&mut ntlm)
        .map_err(|_| ())?
        .credentials_handle;
    let output = accept(&mut ntlm, &mut credentials, negotiate).map_err(|_| ())?;
    Ok((ntlm, credentials, output.0))
}

/// Verifies an AUTHENTICATE message, and the channel binding when `binding` is given.
fn authenticate(
    mut ntlm: Ntlm,
    mut credentials: Option<AuthIdentityBuffers>,
    message: &[u8],
    binding: Option<&[u8]>,
) -> Result<(), &'static str> {
    if let Some(token) = binding {
        ntlm.set_channel_bindings(token);
    }
    match accept(&mut ntlm, &mut credentials, message) {
        Ok((_, status)) => {
            if matches!(
                status,
                SecurityStatus::CompleteNeeded | SecurityStatus::CompleteAndContinue
            ) {
                let mut done = vec![SecurityBuffer::new(Vec::new(), BufferType::Token)];
                ntlm.complete_auth_token(&mut done)
                    .map_err(|_| "unauthorized")?;
            }
            Ok(())
        }
        Err(sspi::ErrorKind::BadBindings) => Err("bad_binding"),
        Err(_) => Err("unauthorized"),
    }
}

fn accept(
    ntlm: &mut Ntlm,
    credentials: &mut Option<AuthIdentityBuffers>,
    input: &[u8],
) -> Result<(Vec<u8>, SecurityStatus), sspi::ErrorKind> {
    let mut input = vec![SecurityBuffer::new(input.to_vec(), BufferType::Token)];
    let mut output = vec![SecurityBuffer::new(Vec::new(), BufferType::Token)];
    let builder = ntlm
        .accept_security_context()
        .with_credentials_handle(credentials)
        .with_context_requirements(ServerRequestFlags::ALLOCATE_MEMORY)
        .with_target_data_representation(DataRepresentation::Native)
        .with_input(&mut input)
        .with_output(&mut output);
    let result = ntlm
        .accept_security_context_impl(builder)
        .map_err(|e| e.error_type)?
        .resolve_to_result()
        .map_err(|e| e.error_type)?;
    Ok((
        output.pop().map(|b| b.buffer).unwrap_or_default(),
        result.status,
    ))
}

/// Whether an AUTHENTICATE message's NTLMv2 response carries a non-zero
/// `MsvAvChannelBindings` pair.
pub fn carries_channel_binding(message: &[u8]) -> bool {
    const CHANNEL_BINDINGS: u16 = 0x000a;
    const END: u16 = 0x0000;
    let u16_at = |b: &[u8], at: usize| b.get(at..at + 2).map(|s| u16::from_le_bytes([s[0], s[1]]));
    let u32_at = |b: &[u8], at: usize| {
        b.get(at..at + 4)
            .map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]) as usize)
    };
    // NtChallengeResponseFields: length at 20, offset at 24.
    let (Some(len), Some(offset)) = (u16_at(message, 20), u32_at(message, 24)) else {
        return false;
    };
    let Some(response) = message.get(offset..offset + usize::from(len)) else {
        return false;
    };
    // NTProofStr (16) then the client challenge header (28) before the AV pairs.
    let mut at = 16 + 28;
    while let (Some(id), Some(n)) = (u16_at(response, at), u16_at(response, at + 2)) {
        let value = response.get(at + 4..at + 4 + usize::from(n));
        match (id, value) {
            (END, _) | (_, None) => return false,
            (CHANNEL_BINDINGS, Some(v)) => return v.iter().any(|&b| b != 0),
            _ => at += 4 + usize::from(n),
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use ews::auth::Secret;
    use ews::auth::ntlm::NtlmHandshake;
    use hyper::header::HeaderValue;

    const ACCOUNT: &str = "CONTOSO\\svc";
    const BINDING: &[u8] = b"tls-server-end-point:0123456789abcdef0123456789abcdef";
    const OTHER: &[u8] = b"tls-server-end-point:fedcba9876543210fedcba9876543210";

    fn authorization(scheme: &str, message: &[u8]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        let value = format!("{scheme} {}", B64.encode(message));
        headers.insert(AUTHORIZATION, HeaderValue::from_str(&value).unwrap());
        headers
    }

    /// Runs a whole client handshake against the acceptor; the verdict on the
    /// AUTHENTICATE leg.
    fn login(
        password: &str,
        client_binding: Option<&[u8]>,
        protection: ExtendedProtection,
        connection: &mut ConnectionAuth,
    ) -> Verdict {
        let auth = SimAuth::Ntlm {
            password: "right".into(),
        };
        let (handshake, negotiate) =
            NtlmHandshake::start(ACCOUNT, &Secret::new(password), "localhost", client_binding)
                .unwrap();
        let challenge = match check(
            &auth,
            ACCOUNT,
            protection,
            Some(BINDING),
            connection,
            &authorization("Negotiate", &negotiate),
        ) {
            Verdict::Challenge(header) => {
                let token = header.strip_prefix("Negotiate ").expect("same scheme back");
                B64.decode(token).unwrap()
            }
            other => panic!("expected a challenge, got {other:?}"),
        };
        let authenticate = handshake.answer(&challenge).unwrap();
        assert_eq!(
            carries_channel_binding(&authenticate),
            client_binding.is_some()
        );
        check(
            &auth,
            ACCOUNT,
            protection,
            Some(BINDING),
            connection,
            &authorization("Negotiate", &authenticate),
        )
    }

    #[test]
    fn extended_protection_modes_behave_as_iis() {
        use ExtendedProtection::{Allow, Require};
        let off = ExtendedProtection::None;
        let refused = |why| Verdict::Refuse { why };
        for (protection, binding, expected) in [
            (Require, Some(BINDING), Verdict::Pass),
            (Require, None, refused("missing_binding")),
            (Require, Some(OTHER), refused("bad_binding")),
            (Allow, Some(BINDING), Verdict::Pass),
            (Allow, None, Verdict::Pass),
            (Allow, Some(OTHER), refused("bad_binding")),
            (off, Some(OTHER), Verdict::Pass),
            (off, None, Verdict::Pass),
        ] {
            let mut connection = ConnectionAuth::default();
            let verdict = login("right", binding, protection, &mut connection);
            assert_eq!(verdict, expected, "{protection:?} with {binding:?}");
        }
    }

    #[test]
    fn a_login_holds_for_its_connection_only() {
        let auth = SimAuth::Ntlm {
            password: "right".into(),
        };
        let mut connection = ConnectionAuth::default();
        let check_plain = |connection: &mut ConnectionAuth| {
            check(
                &auth,
                ACCOUNT,
                ExtendedProtection::Require,
                Some(BINDING),
                connection,
                &HeaderMap::new(),
            )
        };
        assert_eq!(
            check_plain(&mut connection),
            Verdict::Refuse { why: "anonymous" }
        );
        assert_eq!(
            login(
                "right",
                Some(BINDING),
                ExtendedProtection::Require,
                &mut connection
            ),
            Verdict::Pass
        );
        assert_eq!(
            check_plain(&mut connection),
            Verdict::Pass,
            "same connection"
        );
        assert_eq!(
            check_plain(&mut ConnectionAuth::default()),
            Verdict::Refuse { why: "anonymous" },
            "another connection"
        );
        let mut wrong = ConnectionAuth::default();
        assert_eq!(
            login(
                "wrong",
                Some(BINDING),
                ExtendedProtection::Require,
                &mut wrong
            ),
            Verdict::Refuse {
                why: "unauthorized"
            }
        );
        assert_eq!(
            check_plain(&mut wrong),
            Verdict::Refuse { why: "anonymous" }
        );
    }

    #[test]
    fn basic_and_bearer_are_checked_per_request() {
        let basic = SimAuth::Basic {
            password: "pw".into(),
        };
        let mut connection = ConnectionAuth::default();
        let mut headers = HeaderMap::new();
        headers.insert(
            AUTHORIZATION,
            HeaderValue::from_str(&format!("Basic {}", B64.encode("SVC@example.test:pw"))).unwrap(),
        );
        let pass = check(
            &basic,
            "svc@example.test",
            ExtendedProtection::None,
            None,
            &mut connection,
            &headers,
        );
        assert_eq!(pass, Verdict::Pass);
        let none = check(
            &basic,
            "svc@example.test",
            ExtendedProtection::None,
            None,
            &mut connection,
            &HeaderMap::new(),
        );
        assert_ne!(
            none,
            Verdict::Pass,
            "Basic does not stick to the connection"
        );
        let dir = std::env::temp_dir().join(format!("ews-sim-bearer-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("token");
        std::fs::write(&file, "abc\n").unwrap();
        let bearer = SimAuth::Bearer {
            token_file: file.clone(),
        };
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, HeaderValue::from_static("Bearer abc"));
        let mut verdict = || {
            check(
                &bearer,
                "svc",
                ExtendedProtection::None,
                None,
                &mut connection,
                &headers,
            )
        };
        assert_eq!(verdict(), Verdict::Pass);
        std::fs::write(&file, "rotated\n").unwrap();
        assert_ne!(
            verdict(),
            Verdict::Pass,
            "the old token is no longer listed"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

//! How the client proves who it is to an EWS server: the configured [`Auth`] scheme,
//! secrets that never print ([`Secret`]), the server's `WWW-Authenticate` offer
//! ([`challenge`]), NTLMv2 through the `sspi` crate ([`ntlm`]), the Extended Protection
//! channel binding of a TLS connection ([`channel_binding`]) and bearer tokens read from
//! a file an external agent renews ([`bearer`]).
//!
//! Nothing here does I/O on the network: [`super::transport`] runs the exchanges on
//! its own connections, because NTLM authenticates a connection, not a request.

pub mod bearer;
pub mod challenge;
pub mod channel_binding;
pub mod ntlm;

use std::fmt;
use std::sync::Arc;

/// A secret (password or token): compared and used, never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Arc<str>);

impl Secret {
    /// Wraps `value`.
    pub fn new(value: impl Into<Arc<str>>) -> Secret {
        Secret(value.into())
    }

    /// The secret itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// How to authenticate to an EWS server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    /// No Authorization header (test rigs, or a server that does not ask).
    None,
    /// HTTP Basic on every request.
    Basic { username: String, password: Secret },
    /// NTLMv2 (raw, or inside Negotiate: whichever the server offers), once per
    /// connection, with the Extended Protection channel binding over HTTPS.
    Ntlm {
        /// `DOMAIN\user` or a UPN.
        username: String,
        password: Secret,
    },
    /// `Authorization: Bearer` with the token in this file, re-read when it changes.
    Bearer { token_file: std::path::PathBuf },
}

impl Auth {
    /// The account named in logs and errors (never a secret).
    pub fn account(&self) -> String {
        match self {
            Auth::None => "(no credentials)".into(),
            Auth::Basic { username, .. } | Auth::Ntlm { username, .. } => username.clone(),
            Auth::Bearer { token_file } => format!("the token in {}", token_file.display()),
        }
    }

    /// The scheme's name as configured (`none`, `basic`, `ntlm`, `bearer`).
    pub fn scheme(&self) -> &'static str {
        match self {
            Auth::None => "none",
            Auth::Basic { .. } => "basic",
            Auth::Ntlm { .. } => "ntlm",
            Auth::Bearer { .. } => "bearer",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let auth = Auth::Ntlm {
            username: "CONTOSO\\svc".into(),
            password: Secret::new("hunter2"),
        };
        let printed = format!("{auth:?} {}", auth.account());
        assert!(!printed.contains("hunter2"), "{printed}");
        assert!(printed.contains("CONTOSO\\\\svc"), "{printed}");
    }
}

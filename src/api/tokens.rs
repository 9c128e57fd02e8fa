//! The API's bearer tokens: read from `[api] token_file`, one a line, each with an
//! optional scope (`TOKEN read` or `TOKEN admin`; no scope is `read`). Only a SHA-256
//! digest of each token is kept, and a presented token is compared with every digest
//! in constant time (`subtle`), so neither the time an answer takes nor the process's
//! memory gives a token away.
//!
//! `read` is enough for presence, batch queries, the change feed, the summary and the
//! gateways; `admin` is also needed for `POST /v1/checks` (which logs in to Exchange)
//! and for every write (a user's calendar-presence setting).

use std::path::Path;

use subtle::ConstantTimeEq;

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scope {
    /// Read presence and status.
    Read,
    /// Also run the checks and change settings.
    Admin,
}

impl Scope {
    /// The word in the token file and in metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Admin => "admin",
        }
    }
}

/// A token file that cannot be used; says which line and why (never the token).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{}: {message}", path, line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct TokenFileError {
    /// The file.
    pub path: String,
    /// The line, when one is at fault.
    pub line: Option<usize>,
    /// What is wrong.
    pub message: String,
}

type Digest = [u8; 32];

fn digest(token: &str) -> Digest {
    let mut out = [0u8; 32];
    out.copy_from_slice(ring::digest::digest(&ring::digest::SHA256, token.as_bytes()).as_ref());
    out
}

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No `Authorization: Bearer` header: 401.
    Missing,
    /// A token that is not one of ours: 401.
    Invalid,
    /// A valid token without the scope the route needs: 403.
    Scope,
}

impl Refusal {
    /// The `reason` label of `api_auth_failures_total`.
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::Missing => "missing",
            Refusal::Invalid => "invalid",
            Refusal::Scope => "scope",
        }
    }
}

/// The accepted tokens, as digests with their scopes.
#[derive(Clone, PartialEq, Eq)]
pub struct Tokens {
    entries: Vec<(Digest, Scope)>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tokens({} configured)", self.entries.len())
    }
}

impl Tokens {
    /// Parses a token file's text: one token a line with an optional scope; blank
    /// lines and lines starting with `#` are skipped. At least one token.
    pub fn parse(text: &str, path: &Path) -> Result<Tokens, TokenFileError> {
        let error = |line: Option<usize>, message: String| TokenFileError {
            path: path.display().to_string(),
            line,
            message,
        };
        let mut entries = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut words = line.split_whitespace();
            let token = words.next().unwrap_or_default();
            let scope = match words.next() {
                None | Some("read") => Scope::Read,
                Some("admin") => Scope::Admin,
                Some(other) => {
                    return Err(error(
                        Some(n + 1),
                        format!(
                            "unknown scope {other:?}: lines are \"TOKEN\", \"TOKEN read\" or \"TOKEN admin\""
                        ),
                    ));
                }
            };
            if words.next().is_some() {
                return Err(error(
                    Some(n + 1),
                    "more than a token and a scope: lines are \"TOKEN [read|admin]\"".into(),
                ));
            }
            entries.push((digest(token), scope));
        }
        if entries.is_empty() {
            return Err(error(None, "holds no token".into()));
        }
        Ok(Tokens { entries })
    }

    /// Reads and parses the file at `path`.
    pub fn load(path: &Path) -> Result<Tokens, TokenFileError> {
        let text = std::fs::read_to_string(path).map_err(|e| TokenFileError {
            path: path.display().to_string(),
            line: None,
            message: format!("cannot read: {e}"),
        })?;
        Tokens::parse(&text, path)
    }

    /// How many tokens there are.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are none (never, once parsed).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether the `Authorization` header value `header` lets a request that needs
    /// `needed` through. Every digest is compared, in constant time, whatever matches.
    pub fn admit(&self, header: Option<&str>, needed: Scope) -> Result<Scope, Refusal> {
        let Some(given) = header.and_then(|v| v.strip_prefix("Bearer ")) else {
            return Err(Refusal::Missing);
        };
        let presented = digest(given.trim());
        let mut found: Option<Scope> = None;
        for (known, scope) in &self.entries {
            if bool::from(known.ct_eq(&presented)) {
                found = found.max(Some(*scope));
            }
        }
        match found {
            None => Err(Refusal::Invalid),
            Some(scope) if scope < needed => Err(Refusal::Scope),
            Some(scope) => Ok(scope),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const READER: &str = "r3ader-token-0123456789";
    const ADMIN: &str = "adm1n-token-0123456789abc";

    fn tokens() -> Tokens {
        Tokens::parse(
            &format!("# presence servers\n{READER}\n\n{ADMIN} admin\n"),
            Path::new("tokens"),
        )
        .unwrap()
    }

    #[test]
    fn scopes_are_checked_and_refusals_told_apart() {
        let t = tokens();
        let bearer = |token: &str| format!("Bearer {token}");
        assert_eq!(t.admit(Some(&bearer(READER)), Scope::Read), Ok(Scope::Read));
        assert_eq!(
            t.admit(Some(&bearer(READER)), Scope::Admin),
            Err(Refusal::Scope)
        );
        assert_eq!(
            t.admit(Some(&bearer(ADMIN)), Scope::Admin),
            Ok(Scope::Admin)
        );
        assert_eq!(t.admit(Some(&bearer(ADMIN)), Scope::Read), Ok(Scope::Admin));
        assert_eq!(t.admit(None, Scope::Read), Err(Refusal::Missing));
        assert_eq!(
            t.admit(Some("Basic abc"), Scope::Read),
            Err(Refusal::Missing)
        );
        assert_eq!(
            t.admit(Some(&bearer("r3ader-token-0123456788")), Scope::Read),
            Err(Refusal::Invalid),
            "one byte off"
        );
        assert_eq!(
            t.admit(Some(&bearer(&READER[..10])), Scope::Read),
            Err(Refusal::Invalid)
        );
    }

    #[test]
    fn only_digests_are_kept() {
        let t = tokens();
        let shown = format!("{t:?}");
        assert!(!shown.contains(READER) && !shown.contains(ADMIN), "{shown}");
        assert_eq!(t.len(), 2);
        // The digest is SHA-256 of the token (a published test vector).
        assert_eq!(
            digest("abc")
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn bad_files_name_the_line_and_never_the_token() {
        let e = Tokens::parse(&format!("{READER} owner\n"), Path::new("t")).unwrap_err();
        assert_eq!(e.line, Some(1));
        assert!(
            e.message.contains("unknown scope") && !e.to_string().contains(READER),
            "{e}"
        );
        let e = Tokens::parse(&format!("{READER} read admin\n"), Path::new("t")).unwrap_err();
        assert!(e.message.contains("more than a token"), "{e}");
        let e = Tokens::parse("# nothing\n\n", Path::new("t")).unwrap_err();
        assert!(e.message.contains("no token"), "{e}");
    }
}

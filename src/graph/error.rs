//! What can go wrong talking to Microsoft Graph and its identity platform, each in
//! words an operator can act on, with what it means for retrying: the server's
//! `Retry-After` when it throttled, the credential gate when the application itself
//! is refused.

use std::time::Duration;

/// A failed Graph or token request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GraphError {
    /// The server could not be reached.
    #[error("cannot reach {0}")]
    Transport(String),
    /// Its certificate did not verify.
    #[error("TLS: {0}")]
    Tls(String),
    /// No answer in time.
    #[error("no answer within {} s", .0.as_secs())]
    Timeout(Duration),
    /// The identity platform refused the application (its id, credential or consent).
    #[error("the identity platform refused the application: {error}: {description}; fix: {fix}")]
    AppRefused {
        /// OAuth error (`invalid_client`).
        error: String,
        /// Microsoft's description (`AADSTS7000215: …`).
        description: String,
        /// What to do.
        fix: &'static str,
    },
    /// Graph refused a token it should take (401 twice, with a fresh token).
    #[error("Graph refused our token: {0}")]
    TokenRefused(String),
    /// The credential gate holds requests back.
    #[error("{message}")]
    CredentialBackoff {
        /// The refusal and the next attempt.
        message: String,
        /// Until the next attempt.
        retry_in: Duration,
    },
    /// Throttled (429, or 503 with or without `Retry-After`).
    #[error("throttled by Graph (HTTP {status}); asked to wait {} s", .wait.as_secs())]
    Throttled {
        /// 429 or 503.
        status: u16,
        /// What it asked (or our default).
        wait: Duration,
    },
    /// Any other error answer.
    #[error("HTTP {status} {code}: {message}")]
    Http {
        /// Status.
        status: u16,
        /// Graph's code.
        code: String,
        /// Graph's message.
        message: String,
    },
    /// An answer we could not read.
    #[error("{0}")]
    Decode(String),
}

impl GraphError {
    /// What the server asked us to wait, when it throttled.
    pub fn server_wait(&self) -> Option<Duration> {
        match self {
            GraphError::Throttled { wait, .. } => Some(*wait),
            _ => None,
        }
    }

    /// Held back by the credential gate: nothing was sent.
    pub fn was_not_sent(&self) -> bool {
        matches!(self, GraphError::CredentialBackoff { .. })
    }

    /// The application's credentials are refused (one probe per back-off step).
    pub fn is_refused_credentials(&self) -> bool {
        matches!(
            self,
            GraphError::AppRefused { .. }
                | GraphError::TokenRefused(_)
                | GraphError::CredentialBackoff { .. }
        )
    }

    /// Not found (a subscription Graph no longer has, a user it does not know).
    pub fn is_not_found(&self) -> bool {
        matches!(self, GraphError::Http { status: 404, .. })
    }

    /// The `outcome` label of a failed request.
    pub fn outcome(&self) -> &'static str {
        match self {
            GraphError::CredentialBackoff { .. } => "not_sent",
            GraphError::Throttled { .. } => "throttled",
            _ => "error",
        }
    }

    /// From a failure of the shared HTTP connection code.
    pub fn from_ews(error: ews::error::EwsError) -> GraphError {
        match error {
            ews::error::EwsError::Tls(why) => GraphError::Tls(why),
            ews::error::EwsError::Timeout(t) => GraphError::Timeout(t),
            other => GraphError::Transport(other.to_string()),
        }
    }
}

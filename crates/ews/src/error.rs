//! [`EwsError`], everything that can go wrong talking EWS, and its one
//! [`EwsError::disposition`] that supervisors match on.

use std::time::Duration;

use thiserror::Error;

use super::decode_error::DecodeError;
use super::response::Status;
use super::soap::Fault;

/// What a caller should do about a failed EWS call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// Configuration or permission problem: report it and retry only slowly.
    Fatal,
    /// Transient: retry with backoff and jitter.
    Retry,
    /// The subscription is lost: subscribe again and fully refresh the mailbox.
    Resubscribe,
    /// The server is throttling us: wait this long before the next request.
    Throttled(Duration),
}

/// A failed EWS exchange.
#[derive(Debug, Error)]
pub enum EwsError {
    /// A response message with `ResponseClass` Error (or Warning with an error code).
    #[error("{} ({}){}", .0.code, .0.class, .0.message_text.as_ref().map(|t| format!(": {t}")).unwrap_or_default())]
    Response(Box<Status>),
    /// A SOAP fault.
    #[error("SOAP fault {}: {}", .0.fault_code, .0.fault_string)]
    Fault(Box<Fault>),
    /// The server's answer could not be decoded.
    #[error("undecodable response: {0}")]
    Decode(#[from] DecodeError),
    /// An HTTP status that carried no SOAP answer.
    #[error("HTTP {status}")]
    Http {
        /// The status code.
        status: u16,
    },
    /// HTTP 503 without a SOAP answer: the server (or IIS in front of it) is queuing or
    /// down for a while.
    #[error("HTTP 503 Service Unavailable{}", .retry_after.map(|d| format!(" (Retry-After {} s)", d.as_secs())).unwrap_or_default())]
    Unavailable {
        /// `Retry-After`, when sent.
        retry_after: Option<Duration>,
    },
    /// The server refused our credentials (HTTP 401/403 after our best attempt), or
    /// they cannot be used: says which account and, where known, why.
    #[error("authentication: {0}")]
    Unauthorized(String),
    /// Not sent: the server refused our credentials earlier and the caller holds every
    /// request back until the next login is due. Says why and when that is.
    #[error("authentication: {message}")]
    CredentialBackoff {
        /// The refusal and when the next login may go out, in words.
        message: String,
        /// How long until then.
        retry_in: Duration,
    },
    /// The server's certificate could not be verified (or TLS failed otherwise).
    #[error("TLS: {0}")]
    Tls(String),
    /// The server answered, but not as the protocol says (an unexpected answer, a
    /// missing element): it is reachable, and something on it is wrong.
    #[error("protocol: {0}")]
    Protocol(String),
    /// Connecting, sending or receiving failed.
    #[error("transport: {0}")]
    Transport(String),
    /// No answer within the timeout.
    #[error("no answer within {0:?}")]
    Timeout(std::time::Duration),
}

impl EwsError {
    /// What went wrong in the words shown to an operator beside a mailbox or a
    /// gateway: like the `Display` text, without a category prefix where the message
    /// already says what failed ("cannot connect to …", "credentials for … refused").
    pub fn cause(&self) -> String {
        match self {
            EwsError::Transport(message) if message.starts_with("cannot connect") => {
                message.clone()
            }
            EwsError::Unauthorized(message) | EwsError::CredentialBackoff { message, .. }
                if message.starts_with("credentials for") =>
            {
                message.clone()
            }
            EwsError::Unauthorized(message) | EwsError::CredentialBackoff { message, .. } => {
                format!("credentials refused: {message}")
            }
            EwsError::Tls(message) => {
                format!("TLS failed (is the server's CA in certs/?): {message}")
            }
            other => other.to_string(),
        }
    }

    /// Whether the server refused our credentials (or they could not be used, or a
    /// request was held back because of an earlier refusal). The one place that says
    /// which errors mean "credentials refused".
    pub fn is_refused_credentials(&self) -> bool {
        matches!(
            self,
            EwsError::Unauthorized(_)
                | EwsError::CredentialBackoff { .. }
                | EwsError::Http { status: 401 | 403 }
        )
    }

    /// Whether the request never left this process (so it says nothing new about the
    /// server).
    pub fn was_not_sent(&self) -> bool {
        matches!(self, EwsError::CredentialBackoff { .. })
    }

    /// What to do about this error.
    pub fn disposition(&self) -> Disposition {
        match self {
            EwsError::Response(status) => status
                .code
                .disposition(status.back_off(), status.inner_code.as_ref())
                .unwrap_or(Disposition::Retry),
            // A SOAP-level Client fault without an EWS code ("User is not mailbox
            // owner"): the request itself is refused; retrying will not help.
            EwsError::Fault(fault)
                if matches!(
                    fault.status.code,
                    super::response_code::ResponseCode::Other(_)
                ) && fault.fault_code.rsplit(':').next() == Some("Client") =>
            {
                Disposition::Fatal
            }
            EwsError::Fault(fault) => fault
                .status
                .code
                .disposition(fault.status.back_off(), fault.status.inner_code.as_ref())
                .unwrap_or(Disposition::Retry),
            // A frame we cannot read leaves the subscription state unknown.
            EwsError::Decode(_) => Disposition::Resubscribe,
            EwsError::Unauthorized(_)
            | EwsError::CredentialBackoff { .. }
            | EwsError::Http { status: 401 | 403 } => Disposition::Fatal,
            // Wait what the server asked; without a hint, back off from a short wait.
            EwsError::Unavailable {
                retry_after: Some(wait),
            } => Disposition::Throttled((*wait).min(super::response_code::MAX_SERVER_BACKOFF)),
            EwsError::Unavailable { retry_after: None } => Disposition::Retry,
            EwsError::Http { .. } => Disposition::Retry,
            // A certificate that does not verify will not start verifying by itself.
            EwsError::Tls(_) => Disposition::Fatal,
            EwsError::Protocol(_) | EwsError::Transport(_) | EwsError::Timeout(_) => {
                Disposition::Retry
            }
        }
    }
}

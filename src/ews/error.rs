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
}

impl EwsError {
    /// What to do about this error.
    pub fn disposition(&self) -> Disposition {
        match self {
            EwsError::Response(status) => status
                .code
                .disposition(status.back_off(), status.inner_code.as_ref())
                .unwrap_or(Disposition::Retry),
            EwsError::Fault(fault) => fault
                .status
                .code
                .disposition(fault.status.back_off(), fault.status.inner_code.as_ref())
                .unwrap_or(Disposition::Retry),
            // A frame we cannot read leaves the subscription state unknown.
            EwsError::Decode(_) => Disposition::Resubscribe,
            EwsError::Http { status: 401 | 403 } => Disposition::Fatal,
            EwsError::Http { status: 503 } => {
                Disposition::Throttled(super::response_code::DEFAULT_SERVER_BUSY_BACKOFF)
            }
            EwsError::Http { .. } => Disposition::Retry,
        }
    }
}

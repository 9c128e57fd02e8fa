//! Graph's error body, `{"error": {"code": …, "message": …}}`, and the codes that say
//! what to do (Graph's "Microsoft Graph error responses and resource types").

use serde::{Deserialize, Serialize};

/// An error answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// What went wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    /// A code such as `ErrorAccessDenied`, `Authorization_RequestDenied`.
    pub code: String,
    /// In words.
    #[serde(default)]
    pub message: String,
}

impl ErrorBody {
    /// An error with `code` and `message`.
    pub fn new(code: &str, message: &str) -> ErrorBody {
        ErrorBody {
            error: ErrorDetail {
                code: code.to_owned(),
                message: message.to_owned(),
            },
        }
    }

    /// `body` read as an error, if it is one.
    pub fn parse(body: &[u8]) -> Option<ErrorBody> {
        serde_json::from_slice(body).ok()
    }
}

impl ErrorBody {
    /// Whether it refuses a subscription because the mailbox holds the most Graph
    /// allows (1,000 per mailbox across every app; documented among the change
    /// notification limits). Graph answers 403; the message names the limit.
    pub fn is_subscription_limit(&self, status: u16) -> bool {
        let message = self.error.message.to_ascii_lowercase();
        status == 403
            && message.contains("subscription")
            && (message.contains("maximum")
                || message.contains("limit")
                || message.contains("too many"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_subscription_limit_is_told_from_other_refusals() {
        let limit = ErrorBody::new(
            "ExtensionError",
            "Operation: Create; Exception: [Status Code: Forbidden; Reason: The maximum number of subscriptions for this mailbox has been reached.]",
        );
        assert!(limit.is_subscription_limit(403));
        assert!(!limit.is_subscription_limit(400));
        let denied = ErrorBody::new(
            "ErrorAccessDenied",
            "Access is denied. Check credentials and try again.",
        );
        assert!(!denied.is_subscription_limit(403));
        assert_eq!(ErrorBody::parse(b"<html>"), None);
    }
}

//! EWS response codes, parsed once at the edge, and what a client should do about each
//! (`../shared/docs/ews-protocol.md` §4). Codes we have no specific rule for are kept
//! as [`ResponseCode::Other`] and retried with backoff.

use std::fmt;
use std::time::Duration;

use super::error::Disposition;

/// Wait used for `ErrorServerBusy` when the server gave no `BackOffMilliseconds`.
pub const DEFAULT_SERVER_BUSY_BACKOFF: Duration = Duration::from_secs(30);
/// Wait used when the account's streaming-connection or subscription budget is spent.
pub const DEFAULT_BUDGET_BACKOFF: Duration = Duration::from_secs(60);
/// Upper bound on any server-suggested wait, so a bogus hint cannot park a gateway.
pub const MAX_SERVER_BACKOFF: Duration = Duration::from_secs(15 * 60);

macro_rules! response_codes {
    ($($name:ident),* $(,)?) => {
        /// A `ResponseCode` value. Unknown codes are kept verbatim in `Other`.
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum ResponseCode {
            $(
                #[doc = concat!("`", stringify!($name), "`")]
                $name,
            )*
            /// A code this program has no rule for, as the server wrote it.
            Other(String),
        }

        impl ResponseCode {
            /// Parses a code; surrounding white space is ignored (servers indent it
            /// inside SOAP fault details).
            pub fn parse(text: &str) -> ResponseCode {
                match text.trim_matches(crate::xml_tree::is_xml_space) {
                    $(stringify!($name) => ResponseCode::$name,)*
                    other => ResponseCode::Other(other.to_owned()),
                }
            }

            /// The code as written on the wire.
            pub fn as_str(&self) -> &str {
                match self {
                    $(ResponseCode::$name => stringify!($name),)*
                    ResponseCode::Other(code) => code,
                }
            }
        }
    };
}

response_codes!(
    NoError,
    ErrorAccessDenied,
    ErrorAccountDisabled,
    ErrorConnectionFailed,
    ErrorExceededConnectionCount,
    ErrorExceededSubscriptionCount,
    ErrorExpiredSubscription,
    ErrorFolderNotFound,
    ErrorFreeBusyGenerationFailed,
    ErrorImpersonateUserDenied,
    ErrorImpersonationDenied,
    ErrorImpersonationFailed,
    ErrorInternalServerError,
    ErrorInternalServerTransientError,
    ErrorInvalidRequest,
    ErrorInvalidServerVersion,
    ErrorInvalidSid,
    ErrorInvalidSmtpAddress,
    ErrorInvalidSubscription,
    ErrorInvalidSubscriptionRequest,
    ErrorInvalidWatermark,
    ErrorItemNotFound,
    ErrorMailboxConfiguration,
    ErrorMailboxMoveInProgress,
    ErrorMailboxStoreUnavailable,
    ErrorMailRecipientNotFound,
    ErrorMissedNotificationEvents,
    ErrorNoFreeBusyAccess,
    ErrorNonExistentMailbox,
    ErrorNoRespondingCASInDestinationSite,
    ErrorNotEnoughMemory,
    ErrorProxiedSubscriptionCallFailure,
    ErrorProxyRequestNotAllowed,
    ErrorReadEventsFailed,
    ErrorSchemaValidation,
    ErrorServerBusy,
    ErrorSubscriptionAccessDenied,
    ErrorSubscriptionDelegateAccessNotSupported,
    ErrorSubscriptionNotFound,
    ErrorSubscriptionUnsubscribed,
    ErrorTimeoutExpired,
    ErrorTooManyObjectsOpened,
    ErrorWrongServerVersion,
);

impl ResponseCode {
    /// True for `NoError`.
    pub fn is_success(&self) -> bool {
        *self == ResponseCode::NoError
    }

    /// What to do when a request failed with this code; `None` for `NoError`.
    ///
    /// `back_off` is the server's `BackOffMilliseconds` hint, `inner` the
    /// `InnerErrorResponseCode` of an `ErrorInternalServerError`.
    pub fn disposition(
        &self,
        back_off: Option<Duration>,
        inner: Option<&ResponseCode>,
    ) -> Option<Disposition> {
        use ResponseCode::*;
        let hinted = |default: Duration| back_off.unwrap_or(default).min(MAX_SERVER_BACKOFF);
        Some(match self {
            NoError => return None,
            // The subscription is gone: a new Subscribe and a full refresh of the mailbox.
            ErrorSubscriptionNotFound
            | ErrorInvalidSubscription
            | ErrorExpiredSubscription
            | ErrorSubscriptionUnsubscribed
            | ErrorReadEventsFailed
            | ErrorMissedNotificationEvents
            | ErrorInvalidWatermark => Disposition::Resubscribe,
            // Throttling: wait what the server asks (bounded), else a default.
            ErrorServerBusy => Disposition::Throttled(hinted(DEFAULT_SERVER_BUSY_BACKOFF)),
            ErrorExceededConnectionCount
            | ErrorExceededSubscriptionCount
            | ErrorTooManyObjectsOpened => Disposition::Throttled(hinted(DEFAULT_BUDGET_BACKOFF)),
            ErrorInternalServerError if inner == Some(&ErrorServerBusy) => {
                Disposition::Throttled(hinted(DEFAULT_SERVER_BUSY_BACKOFF))
            }
            // Configuration or permission problems: retrying soon will not help.
            ErrorAccessDenied
            | ErrorAccountDisabled
            | ErrorImpersonateUserDenied
            | ErrorImpersonationDenied
            | ErrorImpersonationFailed
            | ErrorInvalidRequest
            | ErrorInvalidServerVersion
            | ErrorWrongServerVersion
            | ErrorInvalidSid
            | ErrorInvalidSmtpAddress
            | ErrorInvalidSubscriptionRequest
            | ErrorMailboxConfiguration
            | ErrorMailRecipientNotFound
            | ErrorNoFreeBusyAccess
            | ErrorNonExistentMailbox
            | ErrorSchemaValidation
            | ErrorSubscriptionAccessDenied
            | ErrorSubscriptionDelegateAccessNotSupported => Disposition::Fatal,
            // Transient server-side trouble, and anything unknown: back off and retry.
            ErrorInternalServerError
            | ErrorInternalServerTransientError
            | ErrorConnectionFailed
            | ErrorFolderNotFound
            | ErrorFreeBusyGenerationFailed
            | ErrorItemNotFound
            | ErrorMailboxMoveInProgress
            | ErrorMailboxStoreUnavailable
            | ErrorNoRespondingCASInDestinationSite
            | ErrorNotEnoughMemory
            | ErrorProxiedSubscriptionCallFailure
            | ErrorProxyRequestNotAllowed
            | ErrorTimeoutExpired
            | Other(_) => Disposition::Retry,
        })
    }
}

impl ResponseCode {
    /// Whether, on a request routed to the mailbox's server, the code suggests the
    /// mailbox lives elsewhere now (moved, or its database failed over): ask
    /// Autodiscover again.
    pub fn suggests_move(&self) -> bool {
        matches!(
            self,
            ResponseCode::ErrorProxyRequestNotAllowed
                | ResponseCode::ErrorMailboxMoveInProgress
                | ResponseCode::ErrorMailboxStoreUnavailable
                | ResponseCode::ErrorSubscriptionNotFound
        )
    }
}

impl fmt::Display for ResponseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_known_and_unknown_codes() {
        assert_eq!(
            ResponseCode::parse("\n  ErrorServerBusy\n "),
            ResponseCode::ErrorServerBusy
        );
        assert_eq!(
            ResponseCode::parse("ErrorSomethingNew"),
            ResponseCode::Other("ErrorSomethingNew".into())
        );
        assert_eq!(
            ResponseCode::ErrorSubscriptionNotFound.as_str(),
            "ErrorSubscriptionNotFound"
        );
    }

    #[test]
    fn dispositions_follow_the_protocol_notes() {
        let d = |c: ResponseCode| c.disposition(None, None);
        assert_eq!(d(ResponseCode::NoError), None);
        assert_eq!(
            d(ResponseCode::ErrorSubscriptionNotFound),
            Some(Disposition::Resubscribe)
        );
        assert_eq!(
            d(ResponseCode::ErrorInvalidSubscription),
            Some(Disposition::Resubscribe)
        );
        assert_eq!(
            d(ResponseCode::ErrorImpersonateUserDenied),
            Some(Disposition::Fatal)
        );
        assert_eq!(
            d(ResponseCode::Other("ErrorX".into())),
            Some(Disposition::Retry)
        );
        assert_eq!(
            d(ResponseCode::ErrorServerBusy),
            Some(Disposition::Throttled(DEFAULT_SERVER_BUSY_BACKOFF))
        );
        assert_eq!(
            ResponseCode::ErrorServerBusy.disposition(Some(Duration::from_millis(5000)), None),
            Some(Disposition::Throttled(Duration::from_millis(5000)))
        );
        assert_eq!(
            ResponseCode::ErrorServerBusy.disposition(Some(Duration::from_secs(86_400)), None),
            Some(Disposition::Throttled(MAX_SERVER_BACKOFF))
        );
        assert_eq!(
            ResponseCode::ErrorInternalServerError
                .disposition(None, Some(&ResponseCode::ErrorServerBusy)),
            Some(Disposition::Throttled(DEFAULT_SERVER_BUSY_BACKOFF))
        );
        assert_eq!(
            d(ResponseCode::ErrorInternalServerError),
            Some(Disposition::Retry)
        );
    }
}

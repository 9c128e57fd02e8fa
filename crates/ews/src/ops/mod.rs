//! One module per EWS operation: the body element we send and the reader for what the
//! server answers. Wrap a body with [`crate::soap::envelope`] to send it.

use thiserror::Error;

pub mod get_mail_tips;
pub mod get_service_configuration;
pub mod get_streaming_events;
pub mod get_user_availability;
pub mod get_user_oof_settings;
pub mod subscribe;
pub mod unsubscribe;

/// A request that would violate a protocol limit; refused rather than clamped.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RequestError {
    /// GetStreamingEvents carries 1 to 200 subscription ids.
    #[error("GetStreamingEvents takes 1 to {max} subscription ids, got {got}", max = get_streaming_events::MAX_SUBSCRIPTIONS)]
    SubscriptionCount {
        /// How many were given.
        got: usize,
    },
    /// ConnectionTimeout is 1 to 30 minutes.
    #[error("ConnectionTimeout must be 1 to {max} minutes, got {got}", max = get_streaming_events::MAX_CONNECTION_TIMEOUT_MINUTES)]
    ConnectionTimeout {
        /// The value given.
        got: u32,
    },
    /// GetUserAvailability asks for 1 to 100 mailboxes.
    #[error("GetUserAvailability takes 1 to {max} mailboxes, got {got}", max = get_user_availability::MAX_MAILBOXES)]
    MailboxCount {
        /// How many were given.
        got: usize,
    },
    /// GetMailTips names 1 to 100 recipients (fewer when the server says so).
    #[error("GetMailTips takes 1 to {max} recipients, got {got}", max = get_mail_tips::MAX_RECIPIENTS)]
    RecipientCount {
        /// How many were given.
        got: usize,
    },
    /// A time window must end after it starts.
    #[error("time window ends ({end}) before or when it starts ({start})")]
    EmptyWindow {
        /// Window start.
        start: jiff::Timestamp,
        /// Window end.
        end: jiff::Timestamp,
    },
}

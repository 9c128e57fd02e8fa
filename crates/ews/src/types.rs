//! Values shared by several operations: mailbox addresses, subscription ids, item and
//! folder ids, EWS date-times and the request server version.

use std::fmt;
use std::sync::Arc;

use jiff::Timestamp;
use jiff::civil::DateTime;
use thiserror::Error;

pub use common::mailbox::{InvalidMailbox, Mailbox};

/// An invalid value given to a request writer or a constructor.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum InvalidValue {
    /// Not a usable SMTP address.
    #[error(transparent)]
    Mailbox(#[from] InvalidMailbox),
    /// An empty subscription id.
    #[error("subscription id is empty")]
    EmptySubscriptionId,
    /// Not a RequestServerVersion value of the EWS schema.
    #[error("unknown server version {0:?}: expected one of {list}", list = RequestServerVersion::NAMES.join(", "))]
    ServerVersion(String),
}

/// An opaque subscription id as the server issued it (shared when cloned).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SubscriptionId(Arc<str>);

impl SubscriptionId {
    /// Wraps a server-issued id; it must not be empty.
    pub fn new(id: impl Into<String>) -> Result<SubscriptionId, InvalidValue> {
        let id: String = id.into();
        if id.is_empty() {
            return Err(InvalidValue::EmptySubscriptionId);
        }
        Ok(SubscriptionId(id.into()))
    }

    /// The id as sent on the wire.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SubscriptionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An item or folder id (`Id` plus optional `ChangeKey`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ObjectId {
    /// The `Id` attribute.
    pub id: String,
    /// The `ChangeKey` attribute, absent on some servers.
    pub change_key: Option<String>,
}

/// An `xs:dateTime` from a server: an instant when it carried `Z` or an offset, a
/// civil time (to be read in the request's time zone) when it carried neither.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EwsDateTime {
    /// A point in time.
    Instant(Timestamp),
    /// A date and time without offset, kept with its text as written.
    Civil {
        /// The parsed civil date-time.
        value: DateTime,
        /// The text as the server wrote it.
        text: String,
    },
}

impl EwsDateTime {
    /// Parses `2019-06-27T11:37:36Z`, `2006-10-16T06:00:00-07:00`,
    /// `2014-02-13T08:00:00` and the same with 1 to 9 fractional digits.
    pub fn parse(text: &str) -> Option<EwsDateTime> {
        let has_zone = text.ends_with('Z')
            || text.ends_with('z')
            || text
                .rsplit_once('T')
                .is_some_and(|(_, time)| time.contains('+') || time.contains('-'));
        if has_zone {
            text.parse::<Timestamp>().ok().map(EwsDateTime::Instant)
        } else {
            text.parse::<DateTime>()
                .ok()
                .map(|value| EwsDateTime::Civil {
                    value,
                    text: text.to_owned(),
                })
        }
    }

    /// The instant, reading a civil time as UTC (the zone our requests ask for).
    pub fn to_timestamp_assuming_utc(&self) -> Option<Timestamp> {
        match self {
            EwsDateTime::Instant(ts) => Some(*ts),
            EwsDateTime::Civil { value, .. } => value
                .to_zoned_datetime(jiff::tz::TimeZone::UTC)
                .ok()
                .map(|z| z.timestamp()),
        }
    }
}

impl fmt::Display for EwsDateTime {
    /// RFC 3339 in UTC for instants; civil times exactly as the server wrote them.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EwsDateTime::Instant(ts) => write!(f, "{ts}"),
            EwsDateTime::Civil { text, .. } => f.write_str(text),
        }
    }
}

macro_rules! server_versions {
    ($($name:ident),* $(,)?) => {
        /// A `RequestServerVersion` value of the EWS schema (`ExchangeVersionType`).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
        #[allow(non_camel_case_types)]
        pub enum RequestServerVersion {
            $(
                #[doc = concat!("`", stringify!($name), "`")]
                $name,
            )*
        }

        impl RequestServerVersion {
            /// Every value the schema allows, as written on the wire.
            pub const NAMES: &'static [&'static str] = &[$(stringify!($name)),*];

            /// The value as written on the wire.
            pub fn as_str(self) -> &'static str {
                match self { $(RequestServerVersion::$name => stringify!($name)),* }
            }

            /// Parses a wire value.
            pub fn parse(name: &str) -> Result<RequestServerVersion, InvalidValue> {
                match name {
                    $(stringify!($name) => Ok(RequestServerVersion::$name),)*
                    other => Err(InvalidValue::ServerVersion(crate::decode_error::shorten(other))),
                }
            }
        }
    };
}

impl Default for RequestServerVersion {
    /// `Exchange2016`: what Exchange 2016, 2019 and Subscription Edition expect.
    fn default() -> Self {
        RequestServerVersion::Exchange2016
    }
}

server_versions!(
    Exchange2007,
    Exchange2007_SP1,
    Exchange2009,
    Exchange2010,
    Exchange2010_SP1,
    Exchange2010_SP2,
    Exchange2012,
    Exchange2013,
    Exchange2013_SP1,
    Exchange2015,
    Exchange2016,
    V2015_10_05,
    V2016_01_06,
    V2016_04_13,
    V2016_07_13,
    V2016_10_10,
    V2017_01_07,
    V2017_04_14,
    V2017_07_11,
    V2017_10_09,
    V2018_01_08,
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mailbox_is_checked_and_lowercased() {
        assert_eq!(
            Mailbox::parse("User1@Example.TEST").unwrap().as_str(),
            "user1@example.test"
        );
        for bad in ["", "user", "@x", "x@", "a b@x", "a@b@c", "a\n@x"] {
            assert!(Mailbox::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn date_times_with_and_without_offsets() {
        let cases = [
            ("2019-06-27T11:37:36Z", "2019-06-27T11:37:36Z"),
            (
                "2019-06-27T11:37:36.1234567Z",
                "2019-06-27T11:37:36.1234567Z",
            ),
            (
                "2019-06-27T11:37:36.123456789Z",
                "2019-06-27T11:37:36.123456789Z",
            ),
            ("2006-10-16T06:00:00-07:00", "2006-10-16T13:00:00Z"),
            ("2006-10-16T06:00:00.5+01:00", "2006-10-16T05:00:00.5Z"),
            ("2014-02-13T08:00:00", "2014-02-13T08:00:00"),
            ("2014-02-13T08:00:00.25", "2014-02-13T08:00:00.25"),
        ];
        for (input, shown) in cases {
            let parsed = EwsDateTime::parse(input).unwrap_or_else(|| panic!("{input}"));
            assert_eq!(parsed.to_string(), shown);
        }
        for bad in [
            "",
            "yesterday",
            "2019-13-01T00:00:00Z",
            "2019-06-27T25:00:00",
        ] {
            assert!(EwsDateTime::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn civil_times_read_as_utc() {
        let t = EwsDateTime::parse("2014-02-13T08:00:00").unwrap();
        assert_eq!(
            t.to_timestamp_assuming_utc().unwrap().to_string(),
            "2014-02-13T08:00:00Z"
        );
    }

    #[test]
    fn server_version_round_trips() {
        for name in RequestServerVersion::NAMES {
            assert_eq!(RequestServerVersion::parse(name).unwrap().as_str(), *name);
        }
        assert!(RequestServerVersion::parse("Exchange2019").is_err());
    }
}

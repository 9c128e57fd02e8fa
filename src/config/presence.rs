//! `[presence]`: policy and timing, each default a named constant beside its range.

use std::ops::RangeInclusive;
use std::time::Duration;

use serde::Deserialize;

use super::ConfigError;
use super::values::{availability, ranged};
use crate::presence::timeline::{Availability, Mapping};

/// `presence.horizon_hours`: a day ahead by default, at most 30 days.
const HORIZON_HOURS: (u64, RangeInclusive<u64>) = (24, 1..=720);
/// `presence.debounce_ms`: a second by default, at most a minute.
const DEBOUNCE_MS: (u64, RangeInclusive<u64>) = (1000, 0..=60_000);
/// `presence.oof_refresh_secs`: five minutes by default, at most a day.
const OOF_REFRESH_SECS: (u64, RangeInclusive<u64>) = (300, 1..=86_400);
/// `presence.oof_verify_secs`: four hours by default, at most a week.
const OOF_VERIFY_SECS: (u64, RangeInclusive<u64>) = (14_400, 1..=604_800);
/// `presence.heartbeat_secs`: Exchange's 45 s by default, at most ten minutes.
const HEARTBEAT_SECS: (u64, RangeInclusive<u64>) = (45, 1..=600);
/// `presence.max_stale_secs`: 15 minutes by default, a minute to a day.
const MAX_STALE_SECS: (u64, RangeInclusive<u64>) = (900, 60..=86_400);

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPresence {
    pub(super) horizon_hours: Option<u64>,
    pub(super) debounce_ms: Option<u64>,
    pub(super) oof_refresh_secs: Option<u64>,
    pub(super) oof_verify_secs: Option<u64>,
    pub(super) heartbeat_secs: Option<u64>,
    pub(super) max_stale_secs: Option<u64>,
    pub(super) tentative: Option<String>,
    pub(super) working_elsewhere: Option<String>,
}

/// Presence policy and timing.
#[derive(Debug, Clone)]
pub struct PresenceConfig {
    /// How far ahead timelines are fetched.
    pub horizon: Duration,
    /// After a read, how long further events wait for one trailing read (a quiet
    /// mailbox is read at once).
    pub debounce: Duration,
    /// How often automatic replies are re-read (a batched MailTips sweep where the
    /// server offers it).
    pub oof_refresh: Duration,
    /// How often each mailbox's automatic replies are also read with
    /// GetUserOofSettings, which sees what a mail tip cannot (on with an empty
    /// message). Only with MailTips.
    pub oof_verify: Duration,
    /// Expected heartbeat interval; silence for twice this drops a stream.
    pub heartbeat: Duration,
    /// Longest a mailbox's data is served without a working subscription and a
    /// successful refresh; after that it reads unknown.
    pub max_stale: Duration,
    /// Calendar state to availability overrides.
    pub mapping: Mapping,
}

impl PresenceConfig {
    /// Validates `[presence]`.
    pub(super) fn from_raw(p: RawPresence) -> Result<PresenceConfig, ConfigError> {
        let setting =
            |key: &str,
             value: Option<u64>,
             (default, range): (u64, RangeInclusive<u64>),
             unit: &str| { ranged(key, value, default, range, unit) };
        Ok(PresenceConfig {
            horizon: Duration::from_secs(
                setting(
                    "presence.horizon_hours",
                    p.horizon_hours,
                    HORIZON_HOURS,
                    "hours",
                )? * 3600,
            ),
            debounce: Duration::from_millis(setting(
                "presence.debounce_ms",
                p.debounce_ms,
                DEBOUNCE_MS,
                "milliseconds",
            )?),
            oof_refresh: Duration::from_secs(setting(
                "presence.oof_refresh_secs",
                p.oof_refresh_secs,
                OOF_REFRESH_SECS,
                "seconds",
            )?),
            oof_verify: Duration::from_secs(setting(
                "presence.oof_verify_secs",
                p.oof_verify_secs,
                OOF_VERIFY_SECS,
                "seconds",
            )?),
            heartbeat: Duration::from_secs(setting(
                "presence.heartbeat_secs",
                p.heartbeat_secs,
                HEARTBEAT_SECS,
                "seconds",
            )?),
            max_stale: Duration::from_secs(setting(
                "presence.max_stale_secs",
                p.max_stale_secs,
                MAX_STALE_SECS,
                "seconds",
            )?),
            mapping: Mapping {
                tentative: availability(
                    "presence.tentative",
                    p.tentative,
                    Availability::Available,
                )?,
                working_elsewhere: availability(
                    "presence.working_elsewhere",
                    p.working_elsewhere,
                    Availability::Available,
                )?,
            },
        })
    }
}

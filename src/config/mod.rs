//! Typed configuration from a TOML file plus `EWS_PRESENCE_<SECTION>_<KEY>`
//! environment overrides ([`environment`]). Secrets come only from files. Every error
//! names the key (or the file and line) that is wrong, with what to write instead
//! where we can tell ([`hints`]); the command line turns them into exit code 2.
//!
//! One file per section, each validating itself: [`api`], [`presence`], [`gateway`],
//! [`mailboxes`], [`state`], [`sip`]; [`values`] reads what they share (ranges, paths, URLs,
//! secrets).

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use common::mailbox::Mailbox;
use serde::Deserialize;

mod api;
mod environment;
mod gateway;
mod graph;
mod hints;
mod mailboxes;
mod presence;
mod sip;
mod state;
#[cfg(test)]
pub(crate) mod tests;
mod values;

pub use self::graph::{GraphConfig, GraphCredential};
pub use self::sip::{PresentityTemplate, SipConfig};
pub use api::{ApiConfig, ApiTlsFiles};
pub use gateway::{AutodiscoverConfig, GatewayConfig};
pub use mailboxes::{MailboxList, MailboxSource, OPT_OUT_FLAG};
pub use presence::PresenceConfig;

use environment::{apply_env, blame_environment};
use hints::{one_line, with_hint};

/// A configuration problem, naming where it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {message}")]
pub struct ConfigError {
    /// The key (`gateway[0].url`), environment variable, or `file:line`.
    pub key: String,
    /// What is wrong.
    pub message: String,
}

/// A [`ConfigError`] at `key`.
fn error(key: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError {
        key: key.into(),
        message: message.into(),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    api: api::RawApi,
    #[serde(default)]
    presence: presence::RawPresence,
    #[serde(default)]
    gateway: Vec<gateway::RawGateway>,
    mailboxes: mailboxes::RawMailboxes,
    #[serde(default)]
    state: state::RawState,
    #[serde(default)]
    sip: Vec<sip::RawSip>,
}

/// The whole configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// HTTP API.
    pub api: ApiConfig,
    /// Presence policy.
    pub presence: PresenceConfig,
    /// EWS servers.
    pub gateways: Vec<GatewayConfig>,
    /// SIP presence servers calendar presence is published to (`[[sip]]`).
    pub sips: Vec<SipConfig>,
    /// Mailbox list source.
    pub mailbox_source: MailboxSource,
    /// Mailboxes with the index of their gateway.
    pub mailboxes: Vec<(Mailbox, usize)>,
    /// Mailboxes the administrators opted out of calendar presence (`opt-out` in the
    /// mailbox list).
    pub opted_out: BTreeSet<Mailbox>,
    /// Directory holding the default CA bundle (`certs/`).
    pub certs_dir: PathBuf,
    /// Where what the daemon keeps across restarts lives (`[state] dir`, default
    /// `state` beside the configuration file): the users' opt-out choices.
    pub state_dir: PathBuf,
}

impl Config {
    /// Loads `path` with overrides from `env` (pass `std::env::vars()` in production).
    pub fn load(path: &Path, env: &HashMap<String, String>) -> Result<Config, ConfigError> {
        let file = path.display().to_string();
        let text =
            std::fs::read_to_string(path).map_err(|e| error(&file, format!("cannot read: {e}")))?;
        let mut table: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| error(&file, with_hint(one_line(&e))))?;
        let origins = apply_env(&mut table, env)?;
        let raw: RawConfig =
            toml::Value::Table(table)
                .try_into()
                .map_err(|e: toml::de::Error| {
                    blame_environment(error(&file, with_hint(one_line(&e))), &origins)
                })?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        // Under systemd, StateDirectory= names the state directory unless the file does.
        let systemd_state = env.get("STATE_DIRECTORY").map(PathBuf::from);
        Config::from_raw(raw, &base, systemd_state).map_err(|e| blame_environment(e, &origins))
    }

    fn from_raw(
        raw: RawConfig,
        base: &Path,
        systemd_state: Option<PathBuf>,
    ) -> Result<Config, ConfigError> {
        let api = ApiConfig::from_raw(raw.api, base)?;
        let presence = PresenceConfig::from_raw(raw.presence)?;
        let gateways = gateway::gateways(raw.gateway, base)?;
        let sips = sip::sips(raw.sip, base)?;
        let mailbox_source = MailboxSource::from_raw(raw.mailboxes, base)?;
        let mut config = Config {
            api,
            presence,
            gateways,
            sips,
            mailbox_source,
            mailboxes: Vec::new(),
            opted_out: BTreeSet::new(),
            certs_dir: base.join("certs"),
            state_dir: state::state_dir(raw.state, base, systemd_state),
        };
        let list = config.load_mailboxes()?;
        config.mailboxes = list.entries;
        config.opted_out = list.opted_out;
        Ok(config)
    }

    /// Reads the mailbox list (again, on SIGHUP).
    pub fn load_mailboxes(&self) -> Result<MailboxList, ConfigError> {
        self.mailbox_source.read(&self.gateways)
    }
}

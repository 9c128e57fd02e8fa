//! Typed configuration from a TOML file plus `EWS_PRESENCE_<SECTION>_<KEY>`
//! environment overrides. Secrets come only from files. Every error names the key (or
//! the file and line) that is wrong; `main` turns them into exit code 2.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use hyper::Uri;
use serde::Deserialize;

use crate::api::tokens::Tokens;
use crate::presence::timeline::{Availability, Mapping};
use common::mailbox::Mailbox;
use ews::transport::{Auth, Secret, TransportConfig};
use ews::types::RequestServerVersion;

/// A configuration problem, naming where it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {message}")]
pub struct ConfigError {
    /// The key (`gateway[0].url`), environment variable, or `file:line`.
    pub key: String,
    /// What is wrong.
    pub message: String,
}

/// A TOML error on one line: location and message, without the source snippet.
fn one_line(e: &toml::de::Error) -> String {
    let snippet = |l: &str| {
        l.starts_with('|')
            || l.split_once(" |")
                .is_some_and(|(n, _)| n.trim().parse::<u32>().is_ok())
    };
    e.to_string()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !snippet(l))
        .collect::<Vec<_>>()
        .join(": ")
}

/// Keys that hold a secret in other programs' configurations, and where ours reads it.
const SECRET_KEYS: &[(&str, &str)] = &[
    ("password", "password_file"),
    ("token", "token_file"),
    ("tokens", "token_file"),
];

/// Adds what to do to a TOML error: the known key closest to an unknown one (or the
/// file a secret is read from), single quotes for a Windows `DOMAIN\user`.
fn with_hint(message: String) -> String {
    let lower = message.to_ascii_lowercase();
    if lower.contains("escape") {
        return format!(
            "{message}; a backslash in \"double quotes\" starts an escape: write a Windows account in single quotes, username = 'CONTOSO\\svc-presence'"
        );
    }
    let Some(rest) = message.split("unknown field `").nth(1) else {
        return message;
    };
    let unknown = rest.split('`').next().unwrap_or_default();
    if let Some((_, file_key)) = SECRET_KEYS.iter().find(|(k, _)| *k == unknown) {
        return format!(
            "{message}; secrets are never written in the configuration: put it alone in a file readable only by the service and name that file with {file_key} = \"path\""
        );
    }
    let known: Vec<&str> = rest
        .split("expected one of ")
        .nth(1)
        .or_else(|| rest.split("expected ").nth(1))
        .unwrap_or_default()
        .split('`')
        .skip(1)
        .step_by(2)
        .collect();
    let closest = known
        .iter()
        .map(|k| (edit_distance(unknown, k), *k))
        .min()
        .filter(|(d, k)| *d <= (k.len() / 3).max(2));
    match closest {
        Some((_, key)) => format!("{message}; did you mean `{key}`?"),
        None => message,
    }
}

/// Levenshtein distance of two short keys.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(ca != *cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

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
    api: RawApi,
    #[serde(default)]
    presence: RawPresence,
    #[serde(default)]
    gateway: Vec<RawGateway>,
    mailboxes: RawMailboxes,
    #[serde(default)]
    state: RawState,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawState {
    dir: Option<PathBuf>,
}

/// Streams an account may hold without impersonation: Exchange 2016/2019/SE's
/// default HangingConnectionLimit.
const DEFAULT_ACCOUNT_CONNECTIONS: u64 = 10;

/// Default of `presence.max_stale_secs`: 15 minutes.
const DEFAULT_MAX_STALE_SECS: u64 = 900;
/// Accepted `presence.max_stale_secs`: a minute to a day.
const MAX_STALE_RANGE: std::ops::RangeInclusive<u64> = 60..=86_400;

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawApi {
    listen: Option<String>,
    token_file: Option<PathBuf>,
    max_connections: Option<u64>,
    tls_cert_file: Option<PathBuf>,
    tls_key_file: Option<PathBuf>,
    client_ca_file: Option<PathBuf>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawPresence {
    horizon_hours: Option<u64>,
    debounce_ms: Option<u64>,
    oof_refresh_secs: Option<u64>,
    oof_verify_secs: Option<u64>,
    heartbeat_secs: Option<u64>,
    max_stale_secs: Option<u64>,
    tentative: Option<String>,
    working_elsewhere: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGateway {
    name: String,
    url: Option<String>,
    autodiscover: Option<bool>,
    autodiscover_url: Option<String>,
    autodiscover_prefer: Option<String>,
    autodiscover_ttl_secs: Option<u64>,
    auth: Option<String>,
    username: Option<String>,
    password_file: Option<PathBuf>,
    token_file: Option<PathBuf>,
    ca_file: Option<PathBuf>,
    server_version: Option<String>,
    impersonation: Option<bool>,
    max_subscriptions_per_connection: Option<u64>,
    max_connections: Option<u64>,
    request_timeout_secs: Option<u64>,
    allow_plain_http: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMailboxes {
    file: Option<PathBuf>,
    list: Option<Vec<String>>,
}

/// The HTTP API.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Listen address.
    pub listen: SocketAddr,
    /// The bearer tokens' file (re-read on SIGHUP).
    pub token_file: Option<PathBuf>,
    /// Accepted bearer tokens, as digests with scopes; `/v1/*` needs one when set.
    pub tokens: Option<Tokens>,
    /// Client connections held at once; None: derived from the descriptor limit.
    pub max_connections: Option<usize>,
    /// Serve HTTPS with these files (None: plain HTTP).
    pub tls: Option<ApiTlsFiles>,
}

/// The API's TLS material: PEM files, re-read on SIGHUP and when they change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiTlsFiles {
    /// The certificate chain, leaf first.
    pub cert_file: PathBuf,
    /// The private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
    /// With it, every client must present a certificate this CA signed.
    pub client_ca_file: Option<PathBuf>,
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

/// One EWS server.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// Name used in logs, metrics and the mailbox file.
    pub name: String,
    /// EWS endpoint (optional with Autodiscover: then the fallback for mailboxes it
    /// cannot place).
    pub url: Option<Uri>,
    /// Find each mailbox's EWS URL and group with Autodiscover.
    pub autodiscover: Option<AutodiscoverConfig>,
    /// Authentication.
    pub auth: Auth,
    /// Extra CA certificates to trust (else system roots plus `certs/*.pem`).
    pub ca_file: Option<PathBuf>,
    /// `RequestServerVersion`.
    pub server_version: RequestServerVersion,
    /// Act for mailboxes with ExchangeImpersonation.
    pub impersonation: bool,
    /// Subscriptions per GetStreamingEvents connection (1 to 200).
    pub max_subscriptions_per_connection: usize,
    /// At most this many streams (groups). With impersonation each stream is charged
    /// to its anchor mailbox's budget, so there is no cap unless one is set; without,
    /// every stream counts against the account's HangingConnectionLimit (Exchange's
    /// default, 10).
    pub max_connections: Option<usize>,
    /// Timeout of ordinary (non-streaming) requests.
    pub request_timeout: Duration,
    /// Credentials may go over plain `http://` to other hosts than this one (a lab).
    pub allow_plain_http: bool,
}

/// A gateway's Autodiscover settings.
#[derive(Debug, Clone)]
pub struct AutodiscoverConfig {
    /// Ask here (else the candidates from each mailbox's domain).
    pub url: Option<Uri>,
    /// Use `InternalEwsUrl` before `ExternalEwsUrl`.
    pub prefer_internal: bool,
    /// How long an answer is trusted before it is asked again.
    pub ttl: Duration,
}

impl GatewayConfig {
    /// Said at every start and on `/v1/gateways` while credentials cross the network
    /// in clear because `allow_plain_http = true` lets them.
    pub fn plain_http_warning(&self) -> Option<String> {
        if self.auth == Auth::None || !self.allow_plain_http {
            return None;
        }
        let urls = [
            self.url.as_ref(),
            self.autodiscover.as_ref().and_then(|a| a.url.as_ref()),
        ];
        urls.into_iter()
            .flatten()
            .find(|url| ews::transport::credentials_may_go_to(url, false).is_err())
            .map(|url| {
                format!(
                    "allow_plain_http = true: the {} credentials of {} cross the network in clear to {url}",
                    self.auth.scheme(),
                    self.auth.account()
                )
            })
    }

    /// What a client for the EWS URL `url` needs.
    pub fn transport_to(&self, url: &Uri) -> TransportConfig {
        TransportConfig {
            url: url.clone(),
            auth: self.auth.clone(),
            request_timeout: self.request_timeout,
        }
    }

    /// Whether requests go over TLS (Autodiscover sends credentials over HTTPS only).
    pub fn uses_tls(&self) -> bool {
        match &self.url {
            Some(url) => url.scheme_str() == Some("https"),
            None => self.autodiscover.is_some(),
        }
    }

    /// The configured EWS URL, or how it is found, for status pages.
    pub fn describe_url(&self) -> String {
        match (&self.url, &self.autodiscover) {
            (Some(url), None) => url.to_string(),
            (Some(url), Some(_)) => format!("autodiscover (fallback {url})"),
            (None, _) => "autodiscover".into(),
        }
    }

    /// What the Autodiscover client needs, when it is on.
    pub fn discovery(&self) -> Option<ews::autodiscover::client::DiscoveryConfig> {
        self.autodiscover
            .as_ref()
            .map(|a| ews::autodiscover::client::DiscoveryConfig {
                autodiscover_url: a.url.clone(),
                prefer_internal: a.prefer_internal,
                auth: self.auth.clone(),
                request_timeout: self.request_timeout,
                allow_plain_http: self.allow_plain_http,
            })
    }
}

/// Where the mailbox list comes from.
#[derive(Debug, Clone)]
pub enum MailboxSource {
    /// `address [gateway]` lines in a file (re-read on SIGHUP).
    File(PathBuf),
    /// Inline list (all on the first gateway).
    List(Vec<String>),
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

/// The mailbox list as read: each mailbox with its gateway's index, and those the
/// administrators opted out of calendar presence.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MailboxList {
    /// Every listed mailbox, in list order.
    pub entries: Vec<(Mailbox, usize)>,
    /// Those flagged `opt-out`.
    pub opted_out: BTreeSet<Mailbox>,
}

/// The word that opts a mailbox out in the mailbox list (`address [gateway] opt-out`).
pub const OPT_OUT_FLAG: &str = "opt-out";

/// An http(s) URL with a host and no credentials in it (the error never quotes a
/// URL that may carry a password).
fn web_url(key: &str, text: &str) -> Result<Uri, ConfigError> {
    let url: Uri = text.parse().map_err(|_| error(key, "is not a URL"))?;
    if url.authority().is_some_and(|a| a.as_str().contains('@')) {
        return Err(error(
            key,
            "must not carry credentials (user:password@): use username and password_file",
        ));
    }
    match (url.scheme_str(), url.host()) {
        (Some("https" | "http"), Some(_)) => Ok(url),
        _ => Err(error(
            key,
            format!("{text:?} must be an http:// or https:// URL with a host"),
        )),
    }
}

/// A gateway's `auth` with what it needs: `basic` and `ntlm` a `username` and a
/// `password_file`, `bearer` a `token_file` (read now, to fail early; re-read while
/// running), `none` nothing.
fn gateway_auth(
    g: &RawGateway,
    base: &Path,
    key: &dyn Fn(&str) -> String,
) -> Result<Auth, ConfigError> {
    let scheme = g.auth.as_deref().unwrap_or("basic");
    let login = |scheme: &str| -> Result<(String, Secret), ConfigError> {
        let username = g
            .username
            .clone()
            .ok_or_else(|| error(key("username"), format!("{scheme} auth needs a username")))?;
        let file = g.password_file.clone().ok_or_else(|| {
            error(
                key("password_file"),
                format!("{scheme} auth needs a password_file"),
            )
        })?;
        let password = read_secret(&key("password_file"), &resolve(base, &file))?;
        Ok((username, Secret::new(password)))
    };
    match scheme {
        "none" => Ok(Auth::None),
        "basic" => {
            let (username, password) = login(scheme)?;
            Ok(Auth::Basic { username, password })
        }
        "ntlm" => {
            let (username, password) = login(scheme)?;
            ews::auth::ntlm::parse_username(&username)
                .map_err(|e| error(key("username"), e.to_string()))?;
            Ok(Auth::Ntlm { username, password })
        }
        "bearer" => {
            let file = g
                .token_file
                .clone()
                .ok_or_else(|| error(key("token_file"), "bearer auth needs a token_file"))?;
            let path = resolve(base, &file);
            read_secret(&key("token_file"), &path)?;
            Ok(Auth::Bearer { token_file: path })
        }
        other => Err(error(
            key("auth"),
            format!("{other:?} is not supported: use ntlm, basic, bearer or none"),
        )),
    }
}

/// Parses an override value the way TOML would.
fn override_value(text: &str) -> toml::Value {
    if let Ok(b) = text.parse::<bool>() {
        return toml::Value::Boolean(b);
    }
    if let Ok(i) = text.parse::<i64>() {
        return toml::Value::Integer(i);
    }
    toml::Value::String(text.to_owned())
}

/// Applies `EWS_PRESENCE_<SECTION>_<KEY>` variables to the parsed table. Gateway keys
/// apply to every gateway.
fn apply_env(
    table: &mut toml::Table,
    env: &HashMap<String, String>,
) -> Result<Vec<EnvOrigin>, ConfigError> {
    let mut origins = Vec::new();
    let mut names: Vec<&String> = env
        .keys()
        .filter(|k| k.starts_with("EWS_PRESENCE_"))
        .collect();
    names.sort();
    for name in names {
        let rest = &name["EWS_PRESENCE_".len()..];
        let (section, key) = ["API", "PRESENCE", "GATEWAY", "MAILBOXES", "STATE"]
            .iter()
            .find_map(|s| {
                rest.strip_prefix(s)
                    .and_then(|k| k.strip_prefix('_'))
                    .map(|k| (s.to_ascii_lowercase(), k.to_ascii_lowercase()))
            })
            .ok_or_else(|| {
                error(
                    name.as_str(),
                    "unknown section; expected API, PRESENCE, GATEWAY, MAILBOXES or STATE",
                )
            })?;
        if key.is_empty() {
            return Err(error(name.as_str(), "no key after the section"));
        }
        let value = override_value(&env[name]);
        origins.push(EnvOrigin {
            section: section.clone(),
            key: key.clone(),
            variable: name.clone(),
        });
        match table.get_mut(&section) {
            Some(toml::Value::Array(gateways)) if section == "gateway" => {
                for g in gateways.iter_mut() {
                    if let toml::Value::Table(t) = g {
                        t.insert(key.clone(), value.clone());
                    }
                }
            }
            Some(toml::Value::Table(t)) => {
                t.insert(key, value);
            }
            None if section != "gateway" => {
                let mut t = toml::Table::new();
                t.insert(key, value);
                table.insert(section, toml::Value::Table(t));
            }
            _ => {
                return Err(error(
                    name.as_str(),
                    format!("there is no [{section}] to override"),
                ));
            }
        }
    }
    Ok(origins)
}

/// A key set by an environment variable, so that an error in it names the variable.
#[derive(Debug)]
struct EnvOrigin {
    section: String,
    key: String,
    variable: String,
}

impl EnvOrigin {
    /// Whether the configuration key `path` (`presence.debounce_ms`,
    /// `gateway[0].max_connections`) is this one.
    fn sets(&self, path: &str) -> bool {
        let Some((section, key)) = path.split_once('.') else {
            return false;
        };
        let section = section.split('[').next().unwrap_or(section);
        section == self.section && key == self.key
    }
}

/// Names the variable an error came from, when a key it set is at fault.
fn blame_environment(mut e: ConfigError, origins: &[EnvOrigin]) -> ConfigError {
    let by_key = origins.iter().find(|o| o.sets(&e.key));
    let in_message = origins.iter().find(|o| {
        e.message.contains(&format!("{}.{}", o.section, o.key))
            || e.message.contains(&format!("`{}`", o.key))
    });
    if let Some(origin) = by_key.or(in_message) {
        e.message = format!(
            "{} (set by the environment for {}.{})",
            e.message, origin.section, origin.key
        );
        e.key = origin.variable.clone();
    }
    e
}

/// A numeric setting within its documented range.
fn ranged(
    key: &str,
    value: Option<u64>,
    default: u64,
    range: std::ops::RangeInclusive<u64>,
    unit: &str,
) -> Result<u64, ConfigError> {
    match value {
        None => Ok(default),
        Some(v) if range.contains(&v) => Ok(v),
        Some(v) => Err(error(
            key,
            format!(
                "{v} is out of range: from {} to {} {unit}",
                range.start(),
                range.end()
            ),
        )),
    }
}

fn resolve(base: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_owned()
    } else {
        base.join(path)
    }
}

/// `[api] tls_cert_file`, `tls_key_file` and `client_ca_file`: both of the first two
/// or neither; a client CA only with them.
fn api_tls(
    base: &Path,
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    client_ca: Option<PathBuf>,
) -> Result<Option<ApiTlsFiles>, ConfigError> {
    match (cert, key) {
        (Some(cert), Some(key)) => Ok(Some(ApiTlsFiles {
            cert_file: resolve(base, &cert),
            key_file: resolve(base, &key),
            client_ca_file: client_ca.map(|p| resolve(base, &p)),
        })),
        (None, None) if client_ca.is_some() => Err(error(
            "api.client_ca_file",
            "needs tls_cert_file and tls_key_file: client certificates are asked for over TLS",
        )),
        (None, None) => Ok(None),
        (Some(_), None) => Err(error(
            "api.tls_key_file",
            "tls_cert_file is set: set tls_key_file to the certificate's private key (PEM)",
        )),
        (None, Some(_)) => Err(error(
            "api.tls_cert_file",
            "tls_key_file is set: set tls_cert_file to the certificate chain (PEM)",
        )),
    }
}

fn read_secret(key: &str, path: &Path) -> Result<String, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| error(key, format!("cannot read {}: {e}", path.display())))?;
    let secret = text
        .lines()
        .next()
        .unwrap_or_default()
        .trim_end()
        .to_owned();
    if secret.is_empty() {
        return Err(error(key, format!("{} is empty", path.display())));
    }
    Ok(secret)
}

fn availability(
    key: &str,
    value: Option<String>,
    default: Availability,
) -> Result<Availability, ConfigError> {
    match value {
        None => Ok(default),
        Some(v) => Availability::parse(&v).ok_or_else(|| {
            error(
                key,
                format!("{v:?} is not available, in-a-meeting, away or unknown"),
            )
        }),
    }
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
        let listen = raw.api.listen.unwrap_or_else(|| "127.0.0.1:8080".into());
        let listen: SocketAddr = listen
            .parse()
            .map_err(|_| error("api.listen", format!("{listen:?} is not an address:port")))?;
        let token_file = raw.api.token_file.map(|p| resolve(base, &p));
        let tokens = token_file
            .as_deref()
            .map(Tokens::load)
            .transpose()
            .map_err(|e| error("api.token_file", e.to_string()))?;
        let p = raw.presence;
        let presence = PresenceConfig {
            horizon: Duration::from_secs(
                ranged(
                    "presence.horizon_hours",
                    p.horizon_hours,
                    24,
                    1..=720,
                    "hours",
                )? * 3600,
            ),
            debounce: Duration::from_millis(ranged(
                "presence.debounce_ms",
                p.debounce_ms,
                1000,
                0..=60_000,
                "milliseconds",
            )?),
            oof_refresh: Duration::from_secs(ranged(
                "presence.oof_refresh_secs",
                p.oof_refresh_secs,
                300,
                1..=86_400,
                "seconds",
            )?),
            oof_verify: Duration::from_secs(ranged(
                "presence.oof_verify_secs",
                p.oof_verify_secs,
                14_400,
                1..=604_800,
                "seconds",
            )?),
            heartbeat: Duration::from_secs(ranged(
                "presence.heartbeat_secs",
                p.heartbeat_secs,
                45,
                1..=600,
                "seconds",
            )?),
            max_stale: Duration::from_secs(ranged(
                "presence.max_stale_secs",
                p.max_stale_secs,
                DEFAULT_MAX_STALE_SECS,
                MAX_STALE_RANGE,
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
        };
        if raw.gateway.is_empty() {
            return Err(error("gateway", "at least one [[gateway]] is needed"));
        }
        let mut gateways = Vec::new();
        let mut names = HashSet::new();
        for (i, g) in raw.gateway.into_iter().enumerate() {
            let key = |k: &str| format!("gateway[{i}].{k}");
            if g.name.is_empty() || !names.insert(g.name.clone()) {
                return Err(error(
                    key("name"),
                    format!("{:?} is empty or used twice", g.name),
                ));
            }
            if g.name == OPT_OUT_FLAG || g.name.contains(char::is_whitespace) {
                return Err(error(
                    key("name"),
                    format!(
                        "{:?} cannot name a gateway in the mailbox list: pick a word without spaces other than {OPT_OUT_FLAG:?}",
                        g.name
                    ),
                ));
            }
            let url = match &g.url {
                Some(text) => Some(web_url(&key("url"), text)?),
                None => None,
            };
            let autodiscover = if g.autodiscover.unwrap_or(false) {
                let url = match &g.autodiscover_url {
                    Some(text) => Some(web_url(&key("autodiscover_url"), text)?),
                    None => None,
                };
                let prefer_internal = match g.autodiscover_prefer.as_deref() {
                    None | Some("external") => false,
                    Some("internal") => true,
                    Some(other) => {
                        return Err(error(
                            key("autodiscover_prefer"),
                            format!("{other:?}: use external or internal"),
                        ));
                    }
                };
                let ttl = ranged(
                    &key("autodiscover_ttl_secs"),
                    g.autodiscover_ttl_secs,
                    86_400,
                    60..=604_800,
                    "seconds",
                )?;
                Some(AutodiscoverConfig {
                    url,
                    prefer_internal,
                    ttl: Duration::from_secs(ttl),
                })
            } else {
                for (present, name) in [
                    (g.autodiscover_url.is_some(), "autodiscover_url"),
                    (g.autodiscover_prefer.is_some(), "autodiscover_prefer"),
                    (g.autodiscover_ttl_secs.is_some(), "autodiscover_ttl_secs"),
                ] {
                    if present {
                        return Err(error(key(name), "needs autodiscover = true"));
                    }
                }
                None
            };
            if url.is_none() && autodiscover.is_none() {
                return Err(error(key("url"), "is required unless autodiscover = true"));
            }
            let auth = gateway_auth(&g, base, &key)?;
            let allow_plain_http = g.allow_plain_http.unwrap_or(false);
            if auth != Auth::None {
                let urls = [
                    (url.as_ref(), "url"),
                    (
                        autodiscover.as_ref().and_then(|a| a.url.as_ref()),
                        "autodiscover_url",
                    ),
                ];
                for (target, name) in urls {
                    if let Some(target) = target {
                        ews::transport::credentials_may_go_to(target, allow_plain_http).map_err(
                            |e| error(key(name), format!("auth = \"{}\": {e}", auth.scheme())),
                        )?;
                    }
                }
            }
            let ca_file = match g.ca_file {
                Some(p) => {
                    let path = resolve(base, &p);
                    if !path.is_file() {
                        return Err(error(
                            key("ca_file"),
                            format!("{} does not exist", path.display()),
                        ));
                    }
                    Some(path)
                }
                None => None,
            };
            let server_version = match g.server_version {
                Some(v) => RequestServerVersion::parse(&v).map_err(|e| {
                    error(
                        key("server_version"),
                        format!(
                            "{e}: it is a schema name, not a product; Exchange 2016, 2019 and Subscription Edition all take \"Exchange2016\" (the default), older servers their own (\"Exchange2013_SP1\", \"Exchange2010_SP2\")"
                        ),
                    )
                })?,
                None => RequestServerVersion::default(),
            };
            let per_connection = ranged(
                &key("max_subscriptions_per_connection"),
                g.max_subscriptions_per_connection,
                200,
                1..=200,
                "subscriptions",
            )? as usize;
            let impersonation = g.impersonation.unwrap_or(true);
            let max_connections = match g.max_connections {
                Some(_) => Some(ranged(
                    &key("max_connections"),
                    g.max_connections,
                    DEFAULT_ACCOUNT_CONNECTIONS,
                    1..=100_000,
                    "connections",
                )? as usize),
                None if impersonation => None,
                None => Some(DEFAULT_ACCOUNT_CONNECTIONS as usize),
            };
            gateways.push(GatewayConfig {
                name: g.name,
                url,
                autodiscover,
                auth,
                ca_file,
                server_version,
                impersonation,
                max_subscriptions_per_connection: per_connection,
                max_connections,
                request_timeout: Duration::from_secs(ranged(
                    &key("request_timeout_secs"),
                    g.request_timeout_secs,
                    60,
                    1..=600,
                    "seconds",
                )?),
                allow_plain_http,
            });
        }
        let mailbox_source = match (raw.mailboxes.file, raw.mailboxes.list) {
            (Some(f), None) => MailboxSource::File(resolve(base, &f)),
            (None, Some(l)) => MailboxSource::List(l),
            _ => return Err(error("mailboxes", "set exactly one of file or list")),
        };
        let mut config = Config {
            api: ApiConfig {
                listen,
                token_file,
                tokens,
                // No default: unset, the limit follows the descriptor limit.
                max_connections: raw
                    .api
                    .max_connections
                    .map(|v| {
                        ranged(
                            "api.max_connections",
                            Some(v),
                            v,
                            16..=65_536,
                            "connections",
                        )
                    })
                    .transpose()?
                    .map(|v| v as usize),
                tls: api_tls(
                    base,
                    raw.api.tls_cert_file,
                    raw.api.tls_key_file,
                    raw.api.client_ca_file,
                )?,
            },
            presence,
            gateways,
            mailbox_source,
            mailboxes: Vec::new(),
            opted_out: BTreeSet::new(),
            certs_dir: base.join("certs"),
            state_dir: match (raw.state.dir, systemd_state) {
                (Some(dir), _) => resolve(base, &dir),
                // systemd may list several, separated by colons: ours is the first.
                (None, Some(dirs)) => dirs
                    .to_str()
                    .and_then(|d| d.split(':').next())
                    .map_or(dirs.clone(), PathBuf::from),
                (None, None) => base.join("state"),
            },
        };
        let list = config.load_mailboxes()?;
        config.mailboxes = list.entries;
        config.opted_out = list.opted_out;
        Ok(config)
    }

    /// Reads the mailbox list (again, on SIGHUP).
    pub fn load_mailboxes(&self) -> Result<MailboxList, ConfigError> {
        let gateway_index = |name: &str| self.gateways.iter().position(|g| g.name == name);
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        let mut opted_out = BTreeSet::new();
        match &self.mailbox_source {
            MailboxSource::List(list) => {
                for (i, address) in list.iter().enumerate() {
                    let key = format!("mailboxes.list[{i}]");
                    let mailbox =
                        Mailbox::parse(address).map_err(|e| error(&key, e.to_string()))?;
                    if !seen.insert(mailbox.clone()) {
                        return Err(error(key, format!("duplicate mailbox {mailbox}")));
                    }
                    out.push((mailbox, 0));
                }
            }
            MailboxSource::File(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    error(
                        "mailboxes.file",
                        format!("cannot read {}: {e}", path.display()),
                    )
                })?;
                for (n, line) in text.lines().enumerate() {
                    let key = format!("{}:{}", path.display(), n + 1);
                    let line = line.split('#').next().unwrap_or_default().trim();
                    if line.is_empty() {
                        continue;
                    }
                    let mut parts = line.split_whitespace();
                    let address = parts.next().unwrap_or_default();
                    let mailbox =
                        Mailbox::parse(address).map_err(|e| error(&key, e.to_string()))?;
                    let (mut gateway, mut opt_out) = (None, false);
                    for word in parts {
                        if word == OPT_OUT_FLAG && !opt_out {
                            opt_out = true;
                        } else if gateway.is_none() && !opt_out {
                            gateway =
                                Some(gateway_index(word).ok_or_else(|| {
                                    error(&key, format!("unknown gateway {word:?}"))
                                })?);
                        } else {
                            return Err(error(
                                &key,
                                format!(
                                    "unexpected {word:?}: lines are \"address [gateway] [{OPT_OUT_FLAG}]\""
                                ),
                            ));
                        }
                    }
                    if !seen.insert(mailbox.clone()) {
                        return Err(error(&key, format!("duplicate mailbox {mailbox}")));
                    }
                    if opt_out {
                        opted_out.insert(mailbox.clone());
                    }
                    out.push((mailbox, gateway.unwrap_or(0)));
                }
            }
        }
        Ok(MailboxList {
            entries: out,
            opted_out,
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A gateway configuration for unit tests elsewhere in the crate.
    pub(crate) fn gateway_config(name: &str, url: &str) -> GatewayConfig {
        GatewayConfig {
            name: name.into(),
            url: Some(url.parse().expect("test URL")),
            autodiscover: None,
            auth: Auth::None,
            ca_file: None,
            server_version: RequestServerVersion::Exchange2016,
            impersonation: true,
            max_subscriptions_per_connection: 200,
            max_connections: None,
            request_timeout: Duration::from_secs(10),
            allow_plain_http: false,
        }
    }

    struct Dir(PathBuf);
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn dir(name: &str) -> Dir {
        let d =
            std::env::temp_dir().join(format!("ews-presence-config-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        Dir(d)
    }

    const GOOD: &str = r#"
[api]
listen = "127.0.0.1:9000"
[presence]
debounce_ms = 0
working_elsewhere = "in-a-meeting"
[[gateway]]
name = "exch1"
url = "https://exch1.example.test/EWS/Exchange.asmx"
username = "svc@example.test"
password_file = "pw"
[[gateway]]
name = "lab"
url = "http://127.0.0.1:8443/EWS/Exchange.asmx"
auth = "none"
[mailboxes]
file = "mailboxes.txt"
"#;

    fn load(
        d: &Dir,
        toml: &str,
        mailboxes: &str,
        env: &[(&str, &str)],
    ) -> Result<Config, ConfigError> {
        std::fs::write(d.0.join("c.toml"), toml).unwrap();
        std::fs::write(d.0.join("pw"), "hunter2\n").unwrap();
        std::fs::write(d.0.join("mailboxes.txt"), mailboxes).unwrap();
        let env = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::load(&d.0.join("c.toml"), &env)
    }

    #[test]
    fn loads_a_good_config_with_overrides() {
        let d = dir("good");
        let c = load(
            &d,
            GOOD,
            "# people\nA@example.test\nb@example.test lab\n\n",
            &[
                ("EWS_PRESENCE_API_LISTEN", "127.0.0.1:9100"),
                ("EWS_PRESENCE_GATEWAY_MAX_CONNECTIONS", "3"),
            ],
        )
        .unwrap();
        assert_eq!(c.api.listen.port(), 9100);
        assert_eq!(c.presence.debounce, Duration::ZERO);
        assert_eq!(
            c.presence.mapping.working_elsewhere,
            Availability::InAMeeting
        );
        assert_eq!(
            c.gateways[0].auth,
            Auth::Basic {
                username: "svc@example.test".into(),
                password: Secret::new("hunter2")
            }
        );
        assert!(c.gateways.iter().all(|g| g.max_connections == Some(3)));
        assert_eq!(
            c.mailboxes
                .iter()
                .map(|(m, g)| (m.as_str(), *g))
                .collect::<Vec<_>>(),
            [("a@example.test", 0), ("b@example.test", 1)]
        );
    }

    #[test]
    fn credentials_over_plain_http_are_refused_but_on_loopback_or_when_allowed() {
        let d = dir("plain-http");
        let with = |url: &str, extra: &str| {
            GOOD.replace(
                "url = \"https://exch1.example.test/EWS/Exchange.asmx\"",
                &format!("url = \"{url}\"\n{extra}"),
            )
        };
        let refused = load(
            &d,
            &with("http://exch1.example.test/EWS/Exchange.asmx", ""),
            "a@example.test",
            &[],
        )
        .unwrap_err();
        assert_eq!(refused.key, "gateway[0].url");
        assert!(
            refused.message.contains("auth = \"basic\"")
                && refused.message.contains("in clear")
                && refused.message.contains("allow_plain_http"),
            "{refused}"
        );
        for loopback in [
            "http://127.0.0.1:8080/EWS/Exchange.asmx",
            "http://localhost/EWS",
            "http://[::1]:80/EWS",
        ] {
            let c = load(&d, &with(loopback, ""), "a@example.test", &[]).unwrap();
            assert_eq!(c.gateways[0].plain_http_warning(), None, "{loopback}");
        }
        let allowed = load(
            &d,
            &with(
                "http://exch1.example.test/EWS/Exchange.asmx",
                "allow_plain_http = true",
            ),
            "a@example.test",
            &[],
        )
        .unwrap();
        let warning = allowed.gateways[0].plain_http_warning().expect("a warning");
        assert!(
            warning.contains("svc@example.test") && warning.contains("in clear"),
            "{warning}"
        );
        // Without credentials there is nothing to protect (the lab gateway).
        assert!(
            load(&d, GOOD, "a@example.test", &[]).unwrap().gateways[1]
                .plain_http_warning()
                .is_none()
        );
        // Autodiscover follows the same rule.
        let discovered = GOOD.replace(
            "url = \"https://exch1.example.test/EWS/Exchange.asmx\"",
            "autodiscover = true\nautodiscover_url = \"http://ad.example.test/autodiscover/autodiscover.svc\"",
        );
        let refused = load(&d, &discovered, "a@example.test", &[]).unwrap_err();
        assert_eq!(refused.key, "gateway[0].autodiscover_url", "{refused}");
    }

    #[test]
    fn errors_say_what_to_write_instead() {
        let d = dir("hints");
        let typo = load(
            &d,
            &GOOD.replace("debounce_ms = 0", "debounse_ms = 0"),
            "a@example.test",
            &[],
        )
        .unwrap_err();
        assert!(
            typo.message.contains("did you mean `debounce_ms`?"),
            "{typo}"
        );
        let password = load(
            &d,
            &GOOD.replace("password_file = \"pw\"", "password = \"hunter2\""),
            "a@example.test",
            &[],
        )
        .unwrap_err();
        assert!(
            password.message.contains("password_file = \"path\""),
            "{password}"
        );
        assert!(
            !password.to_string().contains("hunter2"),
            "the secret is not repeated"
        );
        let escape = load(
            &d,
            &GOOD.replace(
                "username = \"svc@example.test\"",
                "username = \"CONTOSO\\svc\"",
            ),
            "a@example.test",
            &[],
        )
        .unwrap_err();
        assert!(escape.message.contains("single quotes"), "{escape}");
        let version = load(
            &d,
            &GOOD.replace(
                "password_file = \"pw\"",
                "password_file = \"pw\"\nserver_version = \"Exchange2019\"",
            ),
            "a@example.test",
            &[],
        )
        .unwrap_err();
        assert_eq!(version.key, "gateway[0].server_version");
        assert!(version.message.contains("\"Exchange2016\""), "{version}");
        assert!(
            version.message.contains("Subscription Edition"),
            "{version}"
        );
        assert_eq!(edit_distance("debounse_ms", "debounce_ms"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
    }

    #[test]
    fn the_state_directory_defaults_beside_the_file_or_to_systemds() {
        let d = dir("state");
        let beside = load(&d, GOOD, "a@example.test", &[]).unwrap();
        assert_eq!(beside.state_dir, d.0.join("state"));
        let systemd = load(
            &d,
            GOOD,
            "a@example.test",
            &[("STATE_DIRECTORY", "/var/lib/ews-presence")],
        )
        .unwrap();
        assert_eq!(systemd.state_dir, PathBuf::from("/var/lib/ews-presence"));
        let set = load(
            &d,
            GOOD,
            "a@example.test",
            &[
                ("STATE_DIRECTORY", "/var/lib/x"),
                ("EWS_PRESENCE_STATE_DIR", "kept"),
            ],
        )
        .unwrap();
        assert_eq!(set.state_dir, d.0.join("kept"), "the configuration wins");
    }

    #[test]
    fn the_mailbox_list_takes_an_opt_out_flag() {
        let d = dir("opt-out-flag");
        let c = load(
            &d,
            GOOD,
            "a@example.test opt-out\nb@example.test lab opt-out\nc@example.test lab\n",
            &[],
        )
        .unwrap();
        assert_eq!(c.mailboxes.len(), 3);
        assert_eq!(
            c.opted_out.iter().map(Mailbox::as_str).collect::<Vec<_>>(),
            ["a@example.test", "b@example.test"]
        );
        for bad in [
            "a@example.test opt-out lab",
            "a@example.test lab lab",
            "a@example.test opt-out opt-out",
        ] {
            let e = load(&d, GOOD, bad, &[]).unwrap_err();
            assert!(e.message.contains("[opt-out]"), "{bad}: {e}");
        }
    }

    #[test]
    fn api_tls_needs_a_certificate_and_its_key_and_a_client_ca_needs_both() {
        let d = dir("api-tls");
        let with = |lines: &str| {
            GOOD.replace(
                "listen = \"127.0.0.1:9000\"",
                &format!("listen = \"127.0.0.1:9000\"\n{lines}"),
            )
        };
        let c = load(
            &d,
            &with("tls_cert_file = \"api.pem\"\ntls_key_file = \"api.key\"\nclient_ca_file = \"clients.pem\""),
            "a@example.test",
            &[],
        )
        .unwrap();
        let tls = c.api.tls.expect("TLS configured");
        assert_eq!(tls.cert_file, d.0.join("api.pem"), "relative to the file");
        assert_eq!(tls.client_ca_file, Some(d.0.join("clients.pem")));
        for (lines, key) in [
            ("tls_cert_file = \"api.pem\"", "api.tls_key_file"),
            ("tls_key_file = \"api.key\"", "api.tls_cert_file"),
            ("client_ca_file = \"clients.pem\"", "api.client_ca_file"),
        ] {
            let e = load(&d, &with(lines), "a@example.test", &[]).unwrap_err();
            assert_eq!(e.key, key, "{e}");
        }
        assert!(
            load(&d, GOOD, "a@example.test", &[])
                .unwrap()
                .api
                .tls
                .is_none()
        );
    }

    #[test]
    fn autodiscover_makes_url_optional_and_its_keys_need_it() {
        let d = dir("autodiscover");
        let lab = |lines: &str| {
            GOOD.replace(
                "url = \"http://127.0.0.1:8443/EWS/Exchange.asmx\"\nauth = \"none\"",
                &format!("auth = \"none\"\n{lines}"),
            )
        };
        let c = load(
            &d,
            &lab("autodiscover = true\nautodiscover_url = \"https://ad.example.test/autodiscover/autodiscover.svc\"\nautodiscover_prefer = \"internal\"\nautodiscover_ttl_secs = 3600"),
            "a@example.test",
            &[],
        )
        .unwrap();
        let lab_gw = &c.gateways[1];
        assert_eq!(lab_gw.url, None);
        let a = lab_gw.autodiscover.as_ref().unwrap();
        assert!(a.prefer_internal);
        assert_eq!(a.ttl, Duration::from_secs(3600));
        assert_eq!(lab_gw.describe_url(), "autodiscover");
        let default_ttl = load(&d, &lab("autodiscover = true"), "a@example.test", &[]).unwrap();
        assert_eq!(
            default_ttl.gateways[1].autodiscover.as_ref().unwrap().ttl,
            Duration::from_secs(86_400)
        );
        for (lines, key) in [
            ("", "gateway[1].url"),
            ("autodiscover = false", "gateway[1].url"),
            (
                "autodiscover_url = \"https://x.test/a.svc\"",
                "gateway[1].autodiscover_url",
            ),
            (
                "autodiscover = true\nautodiscover_prefer = \"both\"",
                "gateway[1].autodiscover_prefer",
            ),
            (
                "autodiscover = true\nautodiscover_ttl_secs = 5",
                "gateway[1].autodiscover_ttl_secs",
            ),
            (
                "autodiscover = true\nautodiscover_url = \"ftp://x.test/\"",
                "gateway[1].autodiscover_url",
            ),
        ] {
            let e = load(&d, &lab(lines), "a@example.test", &[]).unwrap_err();
            assert_eq!(e.key, key, "{lines}: {e}");
        }
    }

    #[test]
    fn numbers_out_of_range_urls_with_passwords_and_long_addresses_are_refused() {
        let d = dir("refused");
        let presence = |line: &str| GOOD.replace("debounce_ms = 0", line);
        let cases = [
            (
                presence("debounce_ms = 9223372036854775807"),
                "presence.debounce_ms",
            ),
            (
                presence("horizon_hours = 100000000"),
                "presence.horizon_hours",
            ),
            (
                presence("horizon_hours = 5124095576030432"),
                "presence.horizon_hours",
            ),
            (presence("heartbeat_secs = 0"), "presence.heartbeat_secs"),
            (
                presence("oof_refresh_secs = 0"),
                "presence.oof_refresh_secs",
            ),
            (
                GOOD.replace("127.0.0.1:9000", "127.0.0.1:99999"),
                "api.listen",
            ),
            (
                GOOD.replace("auth = \"none\"", "auth = \"none\"\nmax_connections = 0"),
                "gateway[1].max_connections",
            ),
            (
                GOOD.replace(
                    "auth = \"none\"",
                    "auth = \"none\"\nrequest_timeout_secs = 86400",
                ),
                "gateway[1].request_timeout_secs",
            ),
            (
                GOOD.replace(
                    "http://127.0.0.1:8443",
                    "http://admin:hunter2@127.0.0.1:8443",
                ),
                "gateway[1].url",
            ),
        ];
        for (text, key) in cases {
            let e = load(&d, &text, "a@example.test", &[]).unwrap_err();
            assert_eq!(e.key, key, "{e}");
            assert!(
                !e.to_string().contains("hunter2"),
                "a password is never echoed: {e}"
            );
        }
        let long = format!("{}@example.test", "x".repeat(300));
        let e = load(&d, GOOD, &long, &[]).unwrap_err();
        assert!(e.to_string().contains("local part"), "{e}");
    }

    #[test]
    fn an_error_from_the_environment_names_the_variable() {
        let d = dir("env-blame");
        for value in ["99999999", "soon"] {
            let e = load(
                &d,
                GOOD,
                "a@example.test",
                &[("EWS_PRESENCE_PRESENCE_DEBOUNCE_MS", value)],
            )
            .unwrap_err();
            assert_eq!(e.key, "EWS_PRESENCE_PRESENCE_DEBOUNCE_MS", "{value}: {e}");
        }
        let e = load(
            &d,
            GOOD,
            "a@example.test",
            &[("EWS_PRESENCE_GATEWAY_MAX_CONNECTIONS", "0")],
        )
        .unwrap_err();
        assert_eq!(e.key, "EWS_PRESENCE_GATEWAY_MAX_CONNECTIONS", "{e}");
    }

    #[test]
    fn max_stale_has_a_default_and_a_range() {
        let d = dir("stale");
        let c = load(&d, GOOD, "a@example.test", &[]).unwrap();
        assert_eq!(c.presence.max_stale, Duration::from_secs(900));
        let set = |v: &str| {
            GOOD.replace(
                "debounce_ms = 0",
                &format!("debounce_ms = 0\nmax_stale_secs = {v}"),
            )
        };
        let c = load(&d, &set("3600"), "a@example.test", &[]).unwrap();
        assert_eq!(c.presence.max_stale, Duration::from_secs(3600));
        for bad in ["0", "59", "86401"] {
            let e = load(&d, &set(bad), "a@example.test", &[]).unwrap_err();
            assert_eq!(e.key, "presence.max_stale_secs", "{bad}: {e}");
        }
    }

    #[test]
    fn errors_name_the_key_or_line() {
        let d = dir("bad");
        /// (config text, mailbox file, environment, key the error must name)
        type Case<'a> = (String, &'a str, &'a [(&'a str, &'a str)], &'a str);
        let cases: [Case<'_>; 8] = [
            (
                GOOD.replace("debounce_ms", "debounce_msec"),
                "x@example.test",
                &[],
                "debounce_msec",
            ),
            (
                GOOD.replace("password_file = \"pw\"", "password_file = \"missing\""),
                "x@example.test",
                &[],
                "gateway[0].password_file",
            ),
            (
                GOOD.replace("https://exch1", "ftp://exch1"),
                "x@example.test",
                &[],
                "gateway[0].url",
            ),
            (
                GOOD.to_owned(),
                "x@example.test\nX@example.test",
                &[],
                "mailboxes.txt:2",
            ),
            (
                GOOD.to_owned(),
                "x@example.test nowhere",
                &[],
                "mailboxes.txt:1",
            ),
            (GOOD.to_owned(), "not-an-address", &[], "mailboxes.txt:1"),
            (
                GOOD.to_owned(),
                "x@example.test",
                &[("EWS_PRESENCE_NOPE_X", "1")],
                "EWS_PRESENCE_NOPE_X",
            ),
            (
                GOOD.replace("\"127.0.0.1:9000\"", "\"nine thousand\""),
                "x@example.test",
                &[],
                "api.listen",
            ),
        ];
        for (toml, mailboxes, env, key) in cases {
            let e = load(&d, &toml, mailboxes, env).unwrap_err();
            assert!(e.to_string().contains(key), "expected {key} in: {e}");
        }
    }
}

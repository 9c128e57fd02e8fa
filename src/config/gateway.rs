//! `[[gateway]]`: one EWS server each: its URL or Autodiscover, authentication, TLS
//! trust, version, impersonation and limits; or, with `kind = "graph"`, Exchange
//! Online through Microsoft Graph ([`super::graph`]). A gateway validates itself; every error
//! names `gateway[i].key`.

use std::collections::HashSet;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ews::transport::{Auth, Secret, TransportConfig};
use ews::types::RequestServerVersion;
use hyper::Uri;
use serde::Deserialize;

use super::graph::GraphConfig;
use super::mailboxes::OPT_OUT_FLAG;
use super::values::{existing_file, ranged, read_secret, resolve, web_url};
use super::{ConfigError, error};

/// Streams an account may hold without impersonation: Exchange 2016/2019/SE's
/// default HangingConnectionLimit.
const DEFAULT_ACCOUNT_CONNECTIONS: u64 = 10;
/// Accepted `max_connections`.
const MAX_CONNECTIONS_RANGE: RangeInclusive<u64> = 1..=100_000;
/// `autodiscover_ttl_secs`: a day by default, a minute to a week.
const AUTODISCOVER_TTL_SECS: (u64, RangeInclusive<u64>) = (86_400, 60..=604_800);
/// `max_subscriptions_per_connection`: Exchange's 200 by default and at most.
const SUBSCRIPTIONS_PER_CONNECTION: (u64, RangeInclusive<u64>) = (200, 1..=200);
/// `request_timeout_secs`: a minute by default, at most ten.
const REQUEST_TIMEOUT_SECS: (u64, RangeInclusive<u64>) = (60, 1..=600);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawGateway {
    pub(super) name: String,
    pub(super) url: Option<String>,
    pub(super) autodiscover: Option<bool>,
    pub(super) autodiscover_url: Option<String>,
    pub(super) autodiscover_prefer: Option<String>,
    pub(super) autodiscover_ttl_secs: Option<u64>,
    pub(super) auth: Option<String>,
    pub(super) username: Option<String>,
    pub(super) password_file: Option<PathBuf>,
    pub(super) token_file: Option<PathBuf>,
    pub(super) ca_file: Option<PathBuf>,
    pub(super) server_version: Option<String>,
    pub(super) impersonation: Option<bool>,
    pub(super) max_subscriptions_per_connection: Option<u64>,
    pub(super) max_connections: Option<u64>,
    pub(super) request_timeout_secs: Option<u64>,
    pub(super) allow_plain_http: Option<bool>,
    pub(super) kind: Option<String>,
    pub(super) tenant: Option<String>,
    pub(super) client_id: Option<String>,
    pub(super) client_certificate_file: Option<PathBuf>,
    pub(super) client_secret_file: Option<PathBuf>,
    pub(super) notification_url: Option<String>,
    pub(super) authority: Option<String>,
    pub(super) graph_url: Option<String>,
}

impl RawGateway {
    /// Whether key `name` was given.
    pub(super) fn has(&self, name: &str) -> bool {
        match name {
            "url" => self.url.is_some(),
            "autodiscover" => self.autodiscover.is_some(),
            "autodiscover_url" => self.autodiscover_url.is_some(),
            "autodiscover_prefer" => self.autodiscover_prefer.is_some(),
            "autodiscover_ttl_secs" => self.autodiscover_ttl_secs.is_some(),
            "auth" => self.auth.is_some(),
            "username" => self.username.is_some(),
            "password_file" => self.password_file.is_some(),
            "token_file" => self.token_file.is_some(),
            "server_version" => self.server_version.is_some(),
            "impersonation" => self.impersonation.is_some(),
            "max_subscriptions_per_connection" => self.max_subscriptions_per_connection.is_some(),
            "max_connections" => self.max_connections.is_some(),
            "tenant" => self.tenant.is_some(),
            "client_id" => self.client_id.is_some(),
            "client_certificate_file" => self.client_certificate_file.is_some(),
            "client_secret_file" => self.client_secret_file.is_some(),
            "notification_url" => self.notification_url.is_some(),
            "authority" => self.authority.is_some(),
            "graph_url" => self.graph_url.is_some(),
            _ => false,
        }
    }
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
    /// `kind = "graph"`: Exchange Online through Microsoft Graph (the EWS keys above
    /// then hold their defaults and `url` is the Graph URL).
    pub graph: Option<Arc<GraphConfig>>,
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

    /// `ews` or `graph`.
    pub fn kind(&self) -> &'static str {
        if self.graph.is_some() { "graph" } else { "ews" }
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

/// Validates every `[[gateway]]` (at least one, names unique).
pub(super) fn gateways(
    raw: Vec<RawGateway>,
    base: &Path,
) -> Result<Vec<GatewayConfig>, ConfigError> {
    if raw.is_empty() {
        return Err(error("gateway", "at least one [[gateway]] is needed"));
    }
    let mut names = HashSet::new();
    raw.into_iter()
        .enumerate()
        .map(|(i, g)| GatewayConfig::from_raw(i, g, base, &mut names))
        .collect()
}

impl GatewayConfig {
    /// Validates `gateway[i]`, whose name must not be in `names` already.
    fn from_raw(
        i: usize,
        g: RawGateway,
        base: &Path,
        names: &mut HashSet<String>,
    ) -> Result<GatewayConfig, ConfigError> {
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
        match g.kind.as_deref() {
            None | Some("ews") => {}
            Some("graph") => return Self::graph_from_raw(g, base, &key),
            Some(other) => {
                return Err(error(
                    key("kind"),
                    format!("{other:?}: use \"ews\" (the default) or \"graph\" (Exchange Online)"),
                ));
            }
        }
        for name in super::graph::GRAPH_ONLY {
            if g.has(name) {
                return Err(error(key(name), "is a key of kind = \"graph\" gateways"));
            }
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
                AUTODISCOVER_TTL_SECS.0,
                AUTODISCOVER_TTL_SECS.1,
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
        let request_timeout = request_timeout(&g, &key)?;
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
        let ca_file = g
            .ca_file
            .as_ref()
            .map(|p| existing_file(&key("ca_file"), base, p))
            .transpose()?;
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
            SUBSCRIPTIONS_PER_CONNECTION.0,
            SUBSCRIPTIONS_PER_CONNECTION.1,
            "subscriptions",
        )? as usize;
        let impersonation = g.impersonation.unwrap_or(true);
        let max_connections = match g.max_connections {
            Some(_) => Some(ranged(
                &key("max_connections"),
                g.max_connections,
                DEFAULT_ACCOUNT_CONNECTIONS,
                MAX_CONNECTIONS_RANGE,
                "connections",
            )? as usize),
            None if impersonation => None,
            None => Some(DEFAULT_ACCOUNT_CONNECTIONS as usize),
        };
        Ok(GatewayConfig {
            name: g.name,
            url,
            autodiscover,
            auth,
            ca_file,
            server_version,
            impersonation,
            max_subscriptions_per_connection: per_connection,
            max_connections,
            request_timeout,
            allow_plain_http,
            graph: None,
        })
    }

    /// Validates a `kind = "graph"` gateway.
    fn graph_from_raw(
        g: RawGateway,
        base: &Path,
        key: &dyn Fn(&str) -> String,
    ) -> Result<GatewayConfig, ConfigError> {
        let graph = super::graph::graph_config(&g, base, key)?;
        let ca_file = g
            .ca_file
            .as_ref()
            .map(|p| existing_file(&key("ca_file"), base, p))
            .transpose()?;
        let request_timeout = request_timeout(&g, key)?;
        Ok(GatewayConfig {
            name: g.name,
            url: Some(graph.graph_url.clone()),
            autodiscover: None,
            auth: Auth::None,
            ca_file,
            server_version: RequestServerVersion::default(),
            impersonation: false,
            max_subscriptions_per_connection: 1,
            max_connections: None,
            request_timeout,
            allow_plain_http: g.allow_plain_http.unwrap_or(false),
            graph: Some(Arc::new(graph)),
        })
    }
}

/// `request_timeout_secs` of `g`, any kind.
fn request_timeout(g: &RawGateway, key: &dyn Fn(&str) -> String) -> Result<Duration, ConfigError> {
    Ok(Duration::from_secs(ranged(
        &key("request_timeout_secs"),
        g.request_timeout_secs,
        REQUEST_TIMEOUT_SECS.0,
        REQUEST_TIMEOUT_SECS.1,
        "seconds",
    )?))
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

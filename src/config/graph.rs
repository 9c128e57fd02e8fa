//! A `[[gateway]]` with `kind = "graph"`: Exchange Online through Microsoft Graph. Its
//! keys (`tenant`, `client_id`, `client_certificate_file` or `client_secret_file`,
//! `notification_url`, `authority`, `graph_url`) are validated here; the credential is
//! read now, so that a bad file fails at start and names its key.

use std::path::Path;
use std::sync::Arc;

use hyper::Uri;
use rustls_pki_types::PrivateKeyDer;

use super::gateway::RawGateway;
use super::values::{read_secret, resolve, web_url};
use super::{ConfigError, error};
use ews::transport::Secret;
use graph::assertion::{KeyForm, Signer};

/// Microsoft's identity platform.
pub const DEFAULT_AUTHORITY: &str = "https://login.microsoftonline.com";
/// Microsoft Graph.
pub const DEFAULT_GRAPH_URL: &str = "https://graph.microsoft.com";

/// How the application proves itself.
#[derive(Debug, Clone)]
pub enum GraphCredential {
    /// A certificate and its key: signed client assertions (preferred).
    Certificate {
        /// Signs assertions.
        signer: Arc<Signer>,
    },
    /// A client secret.
    Secret(Secret),
}

impl GraphCredential {
    /// In words, for `/v1/gateways`.
    pub fn scheme(&self) -> &'static str {
        match self {
            GraphCredential::Certificate { .. } => "client-certificate",
            GraphCredential::Secret(_) => "client-secret",
        }
    }
}

/// One Graph gateway.
#[derive(Debug, Clone)]
pub struct GraphConfig {
    /// The tenant (a verified domain or its id).
    pub tenant: String,
    /// The application (client) id.
    pub client_id: String,
    /// Its credential.
    pub credential: GraphCredential,
    /// Where Graph posts notifications (and lifecycle events): a public URL that
    /// reaches our API's `/graph/notifications`.
    pub notification_url: Uri,
    /// The identity platform.
    pub authority: Uri,
    /// Graph.
    pub graph_url: Uri,
}

impl GraphConfig {
    /// `{authority}/{tenant}/oauth2/v2.0/token`.
    pub fn token_url(&self) -> String {
        format!(
            "{}/{}/oauth2/v2.0/token",
            self.authority.to_string().trim_end_matches('/'),
            self.tenant
        )
    }

    /// `{graph_url}/.default`, the scope of a client-credentials token.
    pub fn scope(&self) -> String {
        format!(
            "{}/.default",
            self.graph_url.to_string().trim_end_matches('/')
        )
    }

    /// Said on `/v1/gateways` while the notification URL is plain `http://`: Graph
    /// delivers only to `https://`.
    pub fn plain_http_warning(&self) -> Option<String> {
        (self.notification_url.scheme_str() == Some("http")).then(|| {
            format!(
                "notification_url {} is plain http://: Microsoft Graph delivers only to https:// URLs (a simulator accepts it)",
                self.notification_url
            )
        })
    }
}

/// Keys of an EWS gateway that a Graph gateway does not take.
const EWS_ONLY: &[&str] = &[
    "url",
    "autodiscover",
    "autodiscover_url",
    "autodiscover_prefer",
    "autodiscover_ttl_secs",
    "auth",
    "username",
    "password_file",
    "token_file",
    "server_version",
    "impersonation",
    "max_subscriptions_per_connection",
    "max_connections",
];

/// Keys only a Graph gateway takes.
pub(super) const GRAPH_ONLY: &[&str] = &[
    "tenant",
    "client_id",
    "client_certificate_file",
    "client_secret_file",
    "notification_url",
    "authority",
    "graph_url",
];

/// Whether an environment override of `key` applies to the gateway `table` (a key of
/// one kind only goes to the gateways of that kind).
pub(super) fn key_fits(table: &toml::Table, key: &str) -> bool {
    let graph = table.get("kind").and_then(toml::Value::as_str) == Some("graph");
    if graph {
        !EWS_ONLY.contains(&key)
    } else {
        !GRAPH_ONLY.contains(&key)
    }
}

/// Validates the Graph keys of `gateway[i]`.
pub(super) fn graph_config(
    g: &RawGateway,
    base: &Path,
    key: &dyn Fn(&str) -> String,
) -> Result<GraphConfig, ConfigError> {
    for name in EWS_ONLY {
        if g.has(name) {
            return Err(error(
                key(name),
                "is not used by kind = \"graph\" (an EWS key)",
            ));
        }
    }
    let required = |value: &Option<String>, name: &str, what: &str| {
        value
            .clone()
            .filter(|v| !v.trim().is_empty())
            .ok_or_else(|| error(key(name), format!("kind = \"graph\" needs {what}")))
    };
    let tenant = required(
        &g.tenant,
        "tenant",
        "the tenant (its id or a verified domain such as contoso.onmicrosoft.com)",
    )?;
    if tenant.contains(['/', '?', '#', ' ']) {
        return Err(error(
            key("tenant"),
            format!("{tenant:?} is not a tenant id or domain"),
        ));
    }
    let client_id = required(
        &g.client_id,
        "client_id",
        "the application (client) id of the app registration",
    )?;
    let credential = match (&g.client_certificate_file, &g.client_secret_file) {
        (Some(_), Some(_)) => {
            return Err(error(
                key("client_secret_file"),
                "give client_certificate_file or client_secret_file, not both",
            ));
        }
        (None, None) => {
            return Err(error(
                key("client_certificate_file"),
                "kind = \"graph\" needs client_certificate_file (certificate and key, preferred) or client_secret_file",
            ));
        }
        (Some(file), None) => certificate(&key("client_certificate_file"), &resolve(base, file))?,
        (None, Some(file)) => GraphCredential::Secret(Secret::new(read_secret(
            &key("client_secret_file"),
            &resolve(base, file),
        )?)),
    };
    let notification_url_text = required(
        &g.notification_url,
        "notification_url",
        "the public HTTPS URL that reaches this daemon's /graph/notifications",
    )?;
    let notification_url = web_url(&key("notification_url"), &notification_url_text)?;
    let url = |name: &str, value: &Option<String>, default: &str| {
        web_url(&key(name), value.as_deref().unwrap_or(default))
    };
    let authority = url("authority", &g.authority, DEFAULT_AUTHORITY)?;
    let graph_url = url("graph_url", &g.graph_url, DEFAULT_GRAPH_URL)?;
    let allow_plain_http = g.allow_plain_http.unwrap_or(false);
    for (target, name) in [(&authority, "authority"), (&graph_url, "graph_url")] {
        ews::transport::credentials_may_go_to(target, allow_plain_http)
            .map_err(|e| error(key(name), e.to_string()))?;
    }
    Ok(GraphConfig {
        tenant,
        client_id,
        credential,
        notification_url,
        authority,
        graph_url,
    })
}

/// The signer of a PEM file holding the certificate and its RSA key.
fn certificate(key: &str, path: &Path) -> Result<GraphCredential, ConfigError> {
    let certs = common::pem::certificates(path).map_err(|e| error(key, e.to_string()))?;
    let private = common::pem::private_key(path).map_err(|e| {
        error(
            key,
            format!("{e}: the file must hold the certificate and its private key (PEM)"),
        )
    })?;
    let (der, form) = match &private {
        PrivateKeyDer::Pkcs8(k) => (k.secret_pkcs8_der(), KeyForm::Pkcs8),
        PrivateKeyDer::Pkcs1(k) => (k.secret_pkcs1_der(), KeyForm::Pkcs1),
        _ => {
            return Err(error(
                key,
                "the key is not RSA: Entra ID client assertions are signed RS256",
            ));
        }
    };
    let signer =
        Signer::new(certs[0].as_ref(), der, form).map_err(|e| error(key, e.to_string()))?;
    Ok(GraphCredential::Certificate {
        signer: Arc::new(signer),
    })
}

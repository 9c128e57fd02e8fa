//! `[api]`: where the HTTP API listens, its bearer tokens, its connection limit and its
//! TLS files.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::values::{ranged, resolve};
use super::{ConfigError, error};
use crate::api::tokens::Tokens;

/// Default of `api.listen`: this machine only.
const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// Accepted `api.max_connections` (no default: unset, the limit follows the
/// descriptor limit).
const MAX_CONNECTIONS_RANGE: std::ops::RangeInclusive<u64> = 16..=65_536;

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawApi {
    pub(super) listen: Option<String>,
    pub(super) token_file: Option<PathBuf>,
    pub(super) max_connections: Option<u64>,
    pub(super) tls_cert_file: Option<PathBuf>,
    pub(super) tls_key_file: Option<PathBuf>,
    pub(super) client_ca_file: Option<PathBuf>,
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

impl ApiConfig {
    /// Validates `[api]`; relative paths are resolved against `base`.
    pub(super) fn from_raw(raw: RawApi, base: &Path) -> Result<ApiConfig, ConfigError> {
        let listen = raw.listen.unwrap_or_else(|| DEFAULT_LISTEN.into());
        let listen: SocketAddr = listen
            .parse()
            .map_err(|_| error("api.listen", format!("{listen:?} is not an address:port")))?;
        let token_file = raw.token_file.map(|p| resolve(base, &p));
        let tokens = token_file
            .as_deref()
            .map(Tokens::load)
            .transpose()
            .map_err(|e| error("api.token_file", e.to_string()))?;
        let max_connections = raw
            .max_connections
            .map(|v| {
                ranged(
                    "api.max_connections",
                    Some(v),
                    v,
                    MAX_CONNECTIONS_RANGE,
                    "connections",
                )
            })
            .transpose()?
            .map(|v| v as usize);
        Ok(ApiConfig {
            listen,
            token_file,
            tokens,
            max_connections,
            tls: api_tls(
                base,
                raw.tls_cert_file,
                raw.tls_key_file,
                raw.client_ca_file,
            )?,
        })
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

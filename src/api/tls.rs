//! The API's HTTPS: a rustls server configuration built from `[api] tls_cert_file`,
//! `tls_key_file` and `client_ca_file` (then every client must present a certificate
//! that CA signed), kept current without a restart. The files are re-read on SIGHUP
//! and when they change on disk ([`ApiTls::watch`]); each new connection takes the
//! configuration current when it arrives, so connections already open carry on
//! undisturbed. A change that does not load (a key that does not fit its certificate,
//! a half-written file) keeps the configuration in use and says why at `warn`.
//!
//! A client that speaks plain HTTP to the TLS port gets a plain-HTTP 400 saying to use
//! `https://`, instead of a handshake that never completes.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_util::sync::CancellationToken;

use crate::config::ApiTlsFiles;

/// How often the files are looked at for a change.
pub const WATCH_INTERVAL: Duration = Duration::from_secs(2);
/// Time a client has to begin and finish its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// The first byte of a TLS record carrying a handshake (the ClientHello).
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

/// Builds the server configuration from `files`; every error names the file.
pub fn server_config(files: &ApiTlsFiles) -> Result<Arc<rustls::ServerConfig>, ApiTlsError> {
    let chain = common::pem::certificates(&files.cert_file)?;
    let key = common::pem::private_key(&files.key_file)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    let builder = match &files.client_ca_file {
        None => builder.with_no_client_auth(),
        Some(ca_file) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in common::pem::certificates(ca_file)? {
                roots.add(cert).map_err(|source| ApiTlsError::UnusableCa {
                    path: ca_file.clone(),
                    source,
                })?;
            }
            let verifier =
                rustls::server::WebPkiClientVerifier::builder_with_provider(roots.into(), provider)
                    .build()
                    .map_err(|source| ApiTlsError::ClientCa {
                        path: ca_file.clone(),
                        source,
                    })?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config =
        builder
            .with_single_cert(chain, key)
            .map_err(|source| ApiTlsError::Mismatch {
                cert: files.cert_file.clone(),
                key: files.key_file.clone(),
                source,
            })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The API's certificate, key or client CA cannot be used; says which file.
#[derive(Debug, thiserror::Error)]
pub enum ApiTlsError {
    /// A PEM file.
    #[error(transparent)]
    Pem(#[from] common::pem::PemError),
    /// A client CA certificate that is not a usable CA.
    #[error("unusable CA in {}: {source}", .path.display())]
    UnusableCa {
        /// The file.
        path: PathBuf,
        /// Why.
        source: rustls::Error,
    },
    /// The client CAs cannot verify clients.
    #[error("client CA {}: {source}", .path.display())]
    ClientCa {
        /// The file.
        path: PathBuf,
        /// Why.
        source: rustls::server::VerifierBuilderError,
    },
    /// The certificate does not match the key.
    #[error("{} and {} do not fit together: {source}", .cert.display(), .key.display())]
    Mismatch {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// Why.
        source: rustls::Error,
    },
    /// rustls refused the configuration.
    #[error("{0}")]
    Rustls(#[from] rustls::Error),
}

/// What the files looked like when last read: a change of any of them reloads.
type Stamp = Vec<Option<(SystemTime, u64)>>;

fn stamp(files: &ApiTlsFiles) -> Stamp {
    let look = |path: &Path| {
        std::fs::metadata(path)
            .ok()
            .map(|m| (m.modified().unwrap_or(SystemTime::UNIX_EPOCH), m.len()))
    };
    let mut stamp = vec![look(&files.cert_file), look(&files.key_file)];
    if let Some(ca) = &files.client_ca_file {
        stamp.push(look(ca));
    }
    stamp
}

/// The API's TLS, reloadable.
#[derive(Debug)]
pub struct ApiTls {
    files: ApiTlsFiles,
    current: RwLock<(Arc<rustls::ServerConfig>, Stamp)>,
}

impl ApiTls {
    /// Loads `files`; an error names the file at fault.
    pub fn load(files: ApiTlsFiles) -> Result<ApiTls, ApiTlsError> {
        let stamp = stamp(&files);
        let config = server_config(&files)?;
        Ok(ApiTls {
            files,
            current: RwLock::new((config, stamp)),
        })
    }

    /// The configuration new connections use.
    fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(common::sync::read(&self.current).0.clone())
    }

    /// Reads the files again; on failure keeps what is in use.
    pub fn reload(&self) -> Result<(), ApiTlsError> {
        let stamp = stamp(&self.files);
        let config = server_config(&self.files)?;
        *common::sync::write(&self.current) = (config, stamp);
        crate::api::metrics::tls_reloaded("ok");
        tracing::info!(
            cert_file = %self.files.cert_file.display(),
            "API certificate reloaded; new connections use it"
        );
        Ok(())
    }

    /// Reloads (logging a failure at warn) when a file differs from when it was last
    /// read.
    fn reload_if_changed(&self) {
        let now = stamp(&self.files);
        if common::sync::read(&self.current).1 == now {
            return;
        }
        if let Err(e) = self.reload() {
            // Look again only after the next change: remember this state as seen.
            common::sync::write(&self.current).1 = now;
            crate::api::metrics::tls_reloaded("failed");
            tracing::warn!(error = %e, "API certificate files changed but do not load; keeping the ones in use");
        }
    }

    /// Looks at the files every [`WATCH_INTERVAL`] until `stop`, reloading on change.
    pub async fn watch(self: Arc<Self>, stop: CancellationToken) {
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(WATCH_INTERVAL) => {}
            }
            let tls = self.clone();
            // File system calls off the runtime's workers.
            if tokio::task::spawn_blocking(move || tls.reload_if_changed())
                .await
                .is_err()
            {
                return;
            }
        }
    }

    /// Completes the TLS handshake on `stream`; a client speaking plain HTTP is told
    /// to use `https://` and dropped. `None`: no usable connection (said at debug).
    pub async fn accept(&self, mut stream: TcpStream) -> Option<TlsStream<TcpStream>> {
        let mut first = [0u8; 1];
        match tokio::time::timeout(HANDSHAKE_TIMEOUT, stream.peek(&mut first)).await {
            Ok(Ok(1)) => {}
            _ => return None,
        }
        if first[0] != TLS_HANDSHAKE_RECORD {
            let body = "{\"error\":\"this port serves HTTPS: use https://\"}\n";
            let answer = format!(
                "HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = tokio::time::timeout(HANDSHAKE_TIMEOUT, async {
                let _ = stream.write_all(answer.as_bytes()).await;
                let _ = stream.shutdown().await;
            })
            .await;
            crate::api::metrics::tls_handshake_failed("plain_http");
            return None;
        }
        match tokio::time::timeout(HANDSHAKE_TIMEOUT, self.acceptor().accept(stream)).await {
            Ok(Ok(tls)) => Some(tls),
            Ok(Err(e)) => {
                crate::api::metrics::tls_handshake_failed("handshake");
                tracing::debug!(error = %e, "API TLS handshake failed");
                None
            }
            Err(_) => {
                crate::api::metrics::tls_handshake_failed("timeout");
                None
            }
        }
    }
}

//! The simulator's HTTPS: a rustls server configuration (ring provider) from PEM files,
//! and the channel binding of its certificate.

use std::path::Path;
use std::sync::Arc;

use tokio_rustls::TlsAcceptor;

/// A TLS acceptor for the certificate chain in `cert` and the private key in `key`,
/// with the `tls-server-end-point` channel binding of the leaf certificate.
pub fn acceptor(cert: &Path, key: &Path) -> Result<(TlsAcceptor, Vec<u8>), String> {
    let chain = common::pem::certificates(cert).map_err(|e| e.to_string())?;
    let binding = ews::auth::channel_binding::tls_server_end_point(chain[0].as_ref())
        .map_err(|e| format!("{}: {e}", cert.display()))?;
    let key = common::pem::private_key(key).map_err(|e| e.to_string())?;
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .map_err(|e| format!("certificate and key do not fit: {e}"))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok((TlsAcceptor::from(Arc::new(config)), binding))
}

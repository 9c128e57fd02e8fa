//! Reading PEM files: certificate chains and private keys, each failure naming the
//! file and what was wrong with it. Used by the EWS client's trust store, the API's
//! HTTPS and the simulator's.

use std::path::{Path, PathBuf};

use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use thiserror::Error;

/// A PEM file that could not be used.
#[derive(Debug, Error)]
pub enum PemError {
    /// The file could not be read.
    #[error("cannot read {}: {source}", .path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: pem::Error,
    },
    /// A certificate in it does not parse.
    #[error("bad certificate in {}: {source}", .path.display())]
    BadCertificate {
        /// The file.
        path: PathBuf,
        /// Why.
        source: pem::Error,
    },
    /// It holds no certificate.
    #[error("no certificate in {}", .path.display())]
    NoCertificate {
        /// The file.
        path: PathBuf,
    },
    /// It holds no usable private key.
    #[error("cannot read a private key from {}: {source}", .path.display())]
    Key {
        /// The file.
        path: PathBuf,
        /// Why.
        source: pem::Error,
    },
}

/// Every certificate in `path` (at least one).
pub fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, PemError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .map_err(|source| PemError::Read {
            path: path.to_owned(),
            source,
        })?
        .collect::<Result<_, _>>()
        .map_err(|source| PemError::BadCertificate {
            path: path.to_owned(),
            source,
        })?;
    if certs.is_empty() {
        return Err(PemError::NoCertificate {
            path: path.to_owned(),
        });
    }
    Ok(certs)
}

/// The private key in `path` (PKCS#8, PKCS#1 or SEC1).
pub fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, PemError> {
    PrivateKeyDer::from_pem_file(path).map_err(|source| PemError::Key {
        path: path.to_owned(),
        source,
    })
}

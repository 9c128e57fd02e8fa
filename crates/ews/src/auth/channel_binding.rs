//! The `tls-server-end-point` channel binding (RFC 5929 §4) that Extended Protection
//! checks inside an NTLM AUTHENTICATE message: `"tls-server-end-point:"` followed by the
//! hash of the server's DER certificate, with the hash function of the certificate's
//! signature algorithm, except that MD5 and SHA-1 are replaced by SHA-256 (§4.1).
//!
//! Only the signature algorithm is read from the certificate: a bounded walk over the
//! outer DER `SEQUENCE { tbsCertificate, signatureAlgorithm, signature }`.

use ring::digest;

/// The prefix RFC 5929 puts before the hash.
const PREFIX: &[u8] = b"tls-server-end-point:";

/// Signature algorithm OIDs (DER content bytes) and the hash each binds with.
const RSA_PKCS1: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01];
const ECDSA_SHA2: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03];
const RSA_PSS: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0a];
const SHA2_FAMILY: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02];

/// Why a certificate could not be bound.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot read the server certificate for its channel binding: {0}")]
pub struct BindingError(&'static str);

/// The channel binding token for a server certificate (DER).
pub fn tls_server_end_point(certificate: &[u8]) -> Result<Vec<u8>, BindingError> {
    let algorithm = hash_for(certificate)?;
    let hash = digest::digest(algorithm, certificate);
    let mut token = Vec::with_capacity(PREFIX.len() + hash.as_ref().len());
    token.extend_from_slice(PREFIX);
    token.extend_from_slice(hash.as_ref());
    Ok(token)
}

/// The hash RFC 5929 picks for this certificate.
fn hash_for(certificate: &[u8]) -> Result<&'static digest::Algorithm, BindingError> {
    let (outer, _) = element(certificate, 0x30).ok_or(BindingError("not a DER certificate"))?;
    let (_tbs, rest) = element(outer, 0x30).ok_or(BindingError("no tbsCertificate"))?;
    let (algorithm, _) = element(rest, 0x30).ok_or(BindingError("no signatureAlgorithm"))?;
    let (oid, params) = element(algorithm, 0x06).ok_or(BindingError("no algorithm OID"))?;
    Ok(if oid == RSA_PSS {
        pss_hash(params)
    } else if let Some(last) = oid.strip_prefix(RSA_PKCS1) {
        // …1.1.12 sha384WithRSA, …1.1.13 sha512WithRSA; MD5/SHA-1/SHA-256 bind with SHA-256.
        match last {
            [12] => &digest::SHA384,
            [13] => &digest::SHA512,
            _ => &digest::SHA256,
        }
    } else if let Some(last) = oid.strip_prefix(ECDSA_SHA2) {
        match last {
            [3] => &digest::SHA384,
            [4] => &digest::SHA512,
            _ => &digest::SHA256,
        }
    } else {
        // ecdsa-with-SHA1, Ed25519 and the rest: SHA-256, as other clients do.
        &digest::SHA256
    })
}

/// RSASSA-PSS names its hash in its parameters: `SEQUENCE { [0] AlgorithmIdentifier }`.
fn pss_hash(params: &[u8]) -> &'static digest::Algorithm {
    let hash_oid = element(params, 0x30)
        .and_then(|(seq, _)| element(seq, 0xa0))
        .and_then(|(tagged, _)| element(tagged, 0x30))
        .and_then(|(id, _)| element(id, 0x06))
        .map(|(oid, _)| oid);
    match hash_oid.and_then(|oid| oid.strip_prefix(SHA2_FAMILY)) {
        Some([2]) => &digest::SHA384,
        Some([3]) => &digest::SHA512,
        _ => &digest::SHA256,
    }
}

/// The content of the DER element with `tag` at the start of `input`, and what follows
/// it; None when the tag differs or the lengths do not fit.
fn element(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (&first, rest) = input.split_first()?;
    if first != tag {
        return None;
    }
    let (&len0, rest) = rest.split_first()?;
    let (len, rest) = if len0 < 0x80 {
        (usize::from(len0), rest)
    } else {
        let n = usize::from(len0 & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        (len, &rest[n..])
    };
    (rest.len() >= len).then(|| rest.split_at(len))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn certificate(alg: &'static rcgen::SignatureAlgorithm) -> Vec<u8> {
        let key = rcgen::KeyPair::generate_for(alg).expect("key");
        let params =
            rcgen::CertificateParams::new(vec!["mail.example.test".into()]).expect("params");
        params.self_signed(&key).expect("cert").der().to_vec()
    }

    #[test]
    fn hashes_follow_the_signature_algorithm() {
        for (alg, hash, len) in [
            (&rcgen::PKCS_ECDSA_P256_SHA256, &digest::SHA256, 32),
            (&rcgen::PKCS_ECDSA_P384_SHA384, &digest::SHA384, 48),
            (&rcgen::PKCS_ED25519, &digest::SHA256, 32),
        ] {
            let der = certificate(alg);
            let token = tls_server_end_point(&der).expect("binds");
            assert_eq!(&token[..PREFIX.len()], PREFIX);
            assert_eq!(token.len(), PREFIX.len() + len);
            assert_eq!(&token[PREFIX.len()..], digest::digest(hash, &der).as_ref());
        }
    }

    #[test]
    fn sha1_and_md5_signatures_bind_with_sha256() {
        // A minimal certificate shape: SEQUENCE { SEQUENCE {}, SEQUENCE { OID }, BIT STRING }.
        for last in [4u8, 5, 11] {
            let der = [
                0x30, 0x11, 0x30, 0x00, 0x30, 0x0b, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d,
                0x01, 0x01, last, 0x03, 0x00,
            ];
            assert!(std::ptr::eq(hash_for(&der).unwrap(), &digest::SHA256));
        }
        let sha512 = [
            0x30, 0x11, 0x30, 0x00, 0x30, 0x0b, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d,
            0x01, 0x01, 13, 0x03, 0x00,
        ];
        assert!(std::ptr::eq(hash_for(&sha512).unwrap(), &digest::SHA512));
    }

    #[test]
    fn garbage_is_a_typed_error() {
        for bad in [
            &[][..],
            &[0x30, 0x85, 1, 2][..],
            &[0x04, 0x00][..],
            &[0x30, 0x05, 0x30][..],
        ] {
            assert!(tls_server_end_point(bad).is_err(), "{bad:?}");
        }
    }
}

//! The signed client assertion of OAuth 2.0 client credentials with a certificate
//! (Microsoft identity platform, "certificate credentials"): a JWT signed RS256 with
//! the application's private key, its header naming the certificate by `x5t#S256`
//! (the base64url SHA-256 of its DER), its claims `aud` (the token endpoint), `iss`
//! and `sub` (the client id), `jti` (unique), `nbf`, `iat` and `exp`.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use serde::{Deserialize, Serialize};

/// How long an assertion is valid: Microsoft accepts up to ten minutes.
pub const LIFETIME_SECS: i64 = 600;

/// The private key could not be used to sign.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignerError {
    /// Not an RSA key in PKCS#8 or PKCS#1 form (Entra signs assertions RS256).
    #[error(
        "the key is not an RSA private key in PKCS#8 or PKCS#1 form ({0}); Entra ID client assertions are signed RS256"
    )]
    NotRsa(String),
    /// Signing failed.
    #[error("signing failed")]
    Sign,
}

/// The form a private key's DER is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyForm {
    /// PKCS#8 (`BEGIN PRIVATE KEY`).
    Pkcs8,
    /// PKCS#1 (`BEGIN RSA PRIVATE KEY`).
    Pkcs1,
}

/// The JWT header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    /// `RS256`.
    pub alg: String,
    /// `JWT`.
    pub typ: String,
    /// The certificate's SHA-256 thumbprint, base64url.
    #[serde(rename = "x5t#S256")]
    pub x5t_s256: String,
}

/// The JWT claims.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The token endpoint.
    pub aud: String,
    /// The client id.
    pub iss: String,
    /// The client id.
    pub sub: String,
    /// Unique per assertion.
    pub jti: String,
    /// Not before (seconds since the epoch).
    pub nbf: i64,
    /// Issued at.
    pub iat: i64,
    /// Expires.
    pub exp: i64,
}

/// Signs assertions for one application certificate.
#[derive(Debug)]
pub struct Signer {
    key: RsaKeyPair,
    thumbprint: String,
    random: SystemRandom,
}

/// The `x5t#S256` of a certificate: base64url of the SHA-256 of its DER.
pub fn thumbprint_s256(certificate_der: &[u8]) -> String {
    B64URL.encode(ring::digest::digest(&ring::digest::SHA256, certificate_der))
}

impl Signer {
    /// A signer with the certificate's DER and its private key.
    pub fn new(
        certificate_der: &[u8],
        key_der: &[u8],
        form: KeyForm,
    ) -> Result<Signer, SignerError> {
        let key = match form {
            KeyForm::Pkcs8 => RsaKeyPair::from_pkcs8(key_der),
            KeyForm::Pkcs1 => RsaKeyPair::from_der(key_der),
        }
        .map_err(|e| SignerError::NotRsa(e.to_string()))?;
        Ok(Signer {
            key,
            thumbprint: thumbprint_s256(certificate_der),
            random: SystemRandom::new(),
        })
    }

    /// The certificate's `x5t#S256`.
    pub fn thumbprint(&self) -> &str {
        &self.thumbprint
    }

    /// An assertion for `client_id` at the token endpoint `audience`, issued at `now`
    /// (seconds since the epoch).
    pub fn assertion(
        &self,
        client_id: &str,
        audience: &str,
        now: i64,
    ) -> Result<String, SignerError> {
        let mut nonce = [0u8; 16];
        self.random
            .fill(&mut nonce)
            .map_err(|_| SignerError::Sign)?;
        let header = Header {
            alg: "RS256".to_owned(),
            typ: "JWT".to_owned(),
            x5t_s256: self.thumbprint.clone(),
        };
        let claims = Claims {
            aud: audience.to_owned(),
            iss: client_id.to_owned(),
            sub: client_id.to_owned(),
            jti: nonce.iter().map(|b| format!("{b:02x}")).collect(),
            nbf: now,
            iat: now,
            exp: now + LIFETIME_SECS,
        };
        let signing_input = format!(
            "{}.{}",
            B64URL.encode(crate::encode(&header)),
            B64URL.encode(crate::encode(&claims))
        );
        let mut signature = vec![0u8; self.key.public().modulus_len()];
        self.key
            .sign(
                &RSA_PKCS1_SHA256,
                &self.random,
                signing_input.as_bytes(),
                &mut signature,
            )
            .map_err(|_| SignerError::Sign)?;
        Ok(format!("{signing_input}.{}", B64URL.encode(signature)))
    }

    /// The public key's DER (`RSAPublicKey`), to verify with.
    pub fn public_key_der(&self) -> Vec<u8> {
        self.key.public().as_ref().to_vec()
    }
}

/// An assertion taken apart (not verified).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    /// Its header.
    pub header: Header,
    /// Its claims.
    pub claims: Claims,
    /// What was signed.
    pub signing_input: String,
    /// The signature.
    pub signature: Vec<u8>,
}

/// Takes an assertion apart; what is malformed, in words.
pub fn parse(jwt: &str) -> Result<Parsed, String> {
    let mut parts = jwt.split('.');
    let (Some(h), Some(c), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("a JWT has three dot-separated parts".to_owned());
    };
    let part = |name: &str, text: &str| B64URL.decode(text).map_err(|e| format!("{name}: {e}"));
    let header: Header =
        serde_json::from_slice(&part("header", h)?).map_err(|e| format!("header: {e}"))?;
    let claims: Claims =
        serde_json::from_slice(&part("claims", c)?).map_err(|e| format!("claims: {e}"))?;
    Ok(Parsed {
        header,
        claims,
        signing_input: format!("{h}.{c}"),
        signature: part("signature", s)?,
    })
}

/// Whether `parsed` was signed RS256 by the key whose `RSAPublicKey` DER is given.
pub fn verify(parsed: &Parsed, public_key_der: &[u8]) -> bool {
    ring::signature::UnparsedPublicKey::new(
        &ring::signature::RSA_PKCS1_2048_8192_SHA256,
        public_key_der,
    )
    .verify(parsed.signing_input.as_bytes(), &parsed.signature)
    .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls_pki_types::PrivateKeyDer;

    fn signer() -> Signer {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/graph/app.pem");
        let cert = common::pem::certificates(&path).expect("certificate")[0].clone();
        let PrivateKeyDer::Pkcs8(key) = common::pem::private_key(&path).expect("key") else {
            panic!("the fixture's key is PKCS#8");
        };
        Signer::new(cert.as_ref(), key.secret_pkcs8_der(), KeyForm::Pkcs8).expect("RSA key")
    }

    #[test]
    fn an_assertion_verifies_with_the_certificate_and_names_it() {
        let signer = signer();
        let aud = "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token";
        let jwt = signer
            .assertion("app-id", aud, 1_780_000_000)
            .expect("signs");
        let parsed = parse(&jwt).expect("parses");
        assert_eq!(parsed.header.alg, "RS256");
        assert_eq!(parsed.header.x5t_s256, signer.thumbprint());
        assert_eq!(signer.thumbprint().len(), 43, "base64url of 32 bytes");
        assert_eq!(
            (parsed.claims.iss.as_str(), parsed.claims.sub.as_str()),
            ("app-id", "app-id")
        );
        assert_eq!(parsed.claims.aud, aud);
        assert_eq!(parsed.claims.exp - parsed.claims.nbf, LIFETIME_SECS);
        assert!(verify(&parsed, &signer.public_key_der()));
        let mut forged = parsed.clone();
        forged.signing_input.push('x');
        assert!(!verify(&forged, &signer.public_key_der()));
        let again = parse(
            &signer
                .assertion("app-id", aud, 1_780_000_000)
                .expect("signs"),
        )
        .expect("parses");
        assert_ne!(again.claims.jti, parsed.claims.jti, "jti is unique");
    }

    #[test]
    fn an_ec_key_is_refused_with_why() {
        let e = Signer::new(b"cert", &[0x30, 0x03, 0x02, 0x01, 0x00], KeyForm::Pkcs8)
            .expect_err("not RSA");
        assert!(e.to_string().contains("RS256"));
    }
}

//! OAuth 2.0 client credentials against the Microsoft identity platform
//! (`{authority}/{tenant}/oauth2/v2.0/token`, scope `{graph}/.default`): the form we
//! post, with a client secret or a signed client assertion, and what comes back: a
//! token with its lifetime, or an error whose code says whether the application itself
//! is refused (wrong secret, unknown app, consent missing) or the request failed.

use serde::{Deserialize, Serialize};

use common::percent::encode;

/// `client_assertion_type` of a JWT assertion.
pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// How the application proves itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Proof<'a> {
    /// A client secret.
    Secret(&'a str),
    /// A signed client assertion (a JWT).
    Assertion(&'a str),
}

/// The token request's form body.
pub fn request_body(client_id: &str, scope: &str, proof: &Proof<'_>) -> String {
    let mut body = format!(
        "grant_type=client_credentials&client_id={}&scope={}",
        encode(client_id),
        encode(scope)
    );
    match proof {
        Proof::Secret(secret) => {
            body.push_str("&client_secret=");
            body.push_str(&encode(secret));
        }
        Proof::Assertion(jwt) => {
            body.push_str("&client_assertion_type=");
            body.push_str(&encode(ASSERTION_TYPE));
            body.push_str("&client_assertion=");
            body.push_str(&encode(jwt));
        }
    }
    body
}

/// A token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenAnswer {
    /// `Bearer`.
    pub token_type: String,
    /// Seconds it is valid for.
    pub expires_in: u64,
    /// The token.
    pub access_token: String,
}

/// A refusal (RFC 6749 §5.2, with Microsoft's `error_codes`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenError {
    /// `invalid_client`, `unauthorized_client`, `invalid_request`, …
    pub error: String,
    /// In words (Microsoft's start with an `AADSTS` number).
    #[serde(default)]
    pub error_description: String,
    /// Microsoft's numeric codes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub error_codes: Vec<u64>,
}

impl TokenError {
    /// Whether the application itself is refused (its id, secret, certificate, or the
    /// tenant's consent): retrying soon cannot help, an operator must act.
    pub fn refuses_the_application(&self) -> bool {
        matches!(
            self.error.as_str(),
            "invalid_client" | "unauthorized_client" | "invalid_grant" | "invalid_scope"
        ) || self.error_codes.iter().any(|c| CONSENT_CODES.contains(c))
    }

    /// What the operator should do about it, by Microsoft's `AADSTS` code.
    pub fn fix(&self) -> &'static str {
        let has = |code: u64| {
            self.error_codes.contains(&code)
                || self.error_description.contains(&format!("AADSTS{code}"))
        };
        if has(7000215) || has(7000222) {
            "the client secret is wrong or expired: put a current secret of the app registration in client_secret_file"
        } else if has(700027) || has(700024) || has(1000502) {
            "the client assertion was refused: upload this certificate (its public part) to the app registration's Certificates & secrets, and check the clock"
        } else if has(700016) {
            "no application with this client_id in the tenant: check client_id and tenant"
        } else if has(65001) || has(500011) {
            "the application lacks admin consent in this tenant: grant admin consent to Calendars.Read and MailboxSettings.Read (application permissions)"
        } else if has(90002) || has(900023) {
            "the tenant is unknown: check tenant (its id or a verified domain)"
        } else {
            "check tenant, client_id and the credential in the app registration (docs/graph.md)"
        }
    }
}

/// `AADSTS` codes that say consent is missing.
const CONSENT_CODES: &[u64] = &[65001, 500011, 7000112];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_form_carries_the_proof() {
        let secret = request_body(
            "app",
            "https://graph.microsoft.com/.default",
            &Proof::Secret("s&t"),
        );
        assert_eq!(
            secret,
            "grant_type=client_credentials&client_id=app&scope=https%3A%2F%2Fgraph.microsoft.com%2F.default&client_secret=s%26t"
        );
        let fields =
            common::percent::form_fields(&request_body("app", "x", &Proof::Assertion("a.b.c")));
        assert!(fields.contains(&(
            "client_assertion_type".to_owned(),
            ASSERTION_TYPE.to_owned()
        )));
        assert!(fields.contains(&("client_assertion".to_owned(), "a.b.c".to_owned())));
    }

    #[test]
    fn refusals_of_the_application_are_told_from_failures() {
        let wrong_secret: TokenError = serde_json::from_str(
            r#"{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided.","error_codes":[7000215]}"#,
        )
        .expect("token error");
        assert!(wrong_secret.refuses_the_application());
        assert!(wrong_secret.fix().contains("client_secret_file"));
        let busy = TokenError {
            error: "temporarily_unavailable".into(),
            error_description: String::new(),
            error_codes: Vec::new(),
        };
        assert!(!busy.refuses_the_application());
    }
}

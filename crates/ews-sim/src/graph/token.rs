//! The identity platform's token endpoint, `POST /{tenant}/oauth2/v2.0/token`:
//! client credentials with the configured secret, or a client assertion (RS256 JWT)
//! whose `x5t#S256` names the configured certificate, signed by its key, for this
//! endpoint (`aud`), issued by the client (`iss` = `sub` = client id), not expired. A
//! refusal is answered as Microsoft does: 400/401 with `error`, an `AADSTS`
//! description and `error_codes`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use ring::rand::{SecureRandom, SystemRandom};
use tokio::time::Instant;

use super::{GraphConfig, GraphSide};
use crate::Sim;
use crate::http::{Body, respond};
use graph::token::{ASSERTION_TYPE, TokenAnswer, TokenError};

/// Most tokens remembered at once (expired ones are forgotten first).
const MAX_TOKENS: usize = 100_000;

/// Tokens issued and what proves the application.
#[derive(Debug)]
pub struct Tokens {
    issued: Mutex<HashMap<String, Instant>>,
    /// The certificate's DER, when assertions are accepted.
    certificate: Option<Vec<u8>>,
    random: SystemRandom,
}

impl Tokens {
    /// For `config`; fails when its certificate cannot be read.
    pub fn new(config: &GraphConfig) -> Result<Tokens, String> {
        let certificate = match &config.certificate {
            Some(path) => Some(
                common::pem::certificates(path)
                    .map_err(|e| e.to_string())?
                    .remove(0)
                    .as_ref()
                    .to_vec(),
            ),
            None => None,
        };
        Ok(Tokens {
            issued: Mutex::new(HashMap::new()),
            certificate,
            random: SystemRandom::new(),
        })
    }

    /// Whether `token` was issued here and has not expired.
    pub fn valid(&self, token: &str) -> bool {
        common::sync::lock(&self.issued)
            .get(token)
            .is_some_and(|until| Instant::now() < *until)
    }

    fn issue(&self, lifetime: std::time::Duration) -> String {
        let mut raw = [0u8; 24];
        let _ = self.random.fill(&mut raw);
        let token: String = raw.iter().map(|b| format!("{b:02x}")).collect();
        let mut issued = common::sync::lock(&self.issued);
        let now = Instant::now();
        issued.retain(|_, until| *until > now);
        if issued.len() < MAX_TOKENS {
            issued.insert(token.clone(), now + lifetime);
        }
        token
    }

    /// Whether `jwt` is a valid assertion for `client_id` at `audience`; why not.
    fn check_assertion(
        &self,
        jwt: &str,
        client_id: &str,
        audience: &str,
    ) -> Result<(), (u64, String)> {
        let Some(certificate) = &self.certificate else {
            return Err((700027, "Client assertion contains an invalid signature: no certificate is registered for the application.".into()));
        };
        let parsed =
            graph::assertion::parse(jwt).map_err(|e| (50027, format!("Invalid JWT token: {e}")))?;
        if parsed.header.alg != "RS256" {
            return Err((
                700027,
                format!("Client assertion alg {} is not RS256.", parsed.header.alg),
            ));
        }
        if parsed.header.x5t_s256 != graph::assertion::thumbprint_s256(certificate) {
            return Err((700027, "Client assertion contains an invalid signature: the key was not found (x5t#S256 names no registered certificate).".into()));
        }
        let der = rustls_pki_types::CertificateDer::from(certificate.as_slice());
        let cert = webpki::EndEntityCert::try_from(&der).map_err(|e| {
            (
                700027,
                format!("the registered certificate does not parse: {e}"),
            )
        })?;
        cert.verify_signature(
            webpki::ring::RSA_PKCS1_2048_8192_SHA256,
            parsed.signing_input.as_bytes(),
            &parsed.signature,
        )
        .map_err(|_| {
            (
                700027,
                "Client assertion contains an invalid signature.".to_owned(),
            )
        })?;
        let c = &parsed.claims;
        if c.iss != client_id || c.sub != client_id {
            return Err((
                700021,
                "Client assertion application identifier doesn't match 'client_id' parameter."
                    .into(),
            ));
        }
        if c.aud != audience {
            return Err((
                700212,
                format!(
                    "No matching federated identity record found for presented assertion audience '{}'.",
                    c.aud
                ),
            ));
        }
        let now = jiff::Timestamp::now().as_second();
        if c.exp <= now || c.nbf > now + 300 {
            return Err((
                700024,
                "Client assertion is not within its valid time range.".into(),
            ));
        }
        Ok(())
    }
}

fn refusal(status: StatusCode, error: &str, code: u64, description: &str) -> Response<Body> {
    let body = TokenError {
        error: error.to_owned(),
        error_description: format!("AADSTS{code}: {description}"),
        error_codes: vec![code],
    };
    respond(
        status,
        "application/json; charset=utf-8",
        graph::encode(&body),
    )
}

/// Whether `path` is the token endpoint of the configured tenant.
pub fn is_token_path(path: &str) -> bool {
    path.strip_suffix("/oauth2/v2.0/token")
        .and_then(|rest| rest.strip_prefix('/'))
        .is_some_and(|tenant| !tenant.contains('/'))
}

/// Whether `path` is the tenant's OpenID configuration
/// (`/{tenant}/v2.0/.well-known/openid-configuration`), which MSAL-based clients read
/// to find the token endpoint.
pub fn is_discovery_path(path: &str) -> bool {
    path.strip_suffix("/v2.0/.well-known/openid-configuration")
        .and_then(|rest| rest.strip_prefix('/'))
        .is_some_and(|tenant| !tenant.is_empty() && !tenant.contains('/'))
}

/// The tenant a request's path names, and the base URL it reached us at.
fn tenant_base(sim: &Sim, req: &Request<Incoming>) -> (String, String) {
    let tenant = req
        .uri()
        .path()
        .trim_start_matches('/')
        .split('/')
        .next()
        .unwrap_or_default()
        .to_owned();
    let scheme = if sim.config.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let host = req
        .headers()
        .get(hyper::header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("localhost");
    (tenant, format!("{scheme}://{host}"))
}

/// The tenant's OpenID configuration: where its endpoints are.
pub fn discovery(sim: &Sim, req: &Request<Incoming>) -> Response<Body> {
    let (tenant, base) = tenant_base(sim, req);
    let base = format!("{base}/{tenant}");
    let body = serde_json::json!({
        "token_endpoint": format!("{base}/oauth2/v2.0/token"),
        "authorization_endpoint": format!("{base}/oauth2/v2.0/authorize"),
        "issuer": format!("{base}/v2.0"),
        "jwks_uri": format!("{base}/discovery/v2.0/keys"),
        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "tenant_region_scope": "EU",
    });
    sim.stats.request("graph openid-configuration");
    respond(
        StatusCode::OK,
        "application/json; charset=utf-8",
        body.to_string(),
    )
}

/// Serves one token request.
pub async fn handle(sim: &Arc<Sim>, graph: &GraphSide, req: Request<Incoming>) -> Response<Body> {
    let (tenant, base) = tenant_base(sim, &req);
    let audience = format!("{base}/{tenant}/oauth2/v2.0/token");
    let body = match Limited::new(req.into_body(), 64 * 1024).collect().await {
        Ok(c) => String::from_utf8_lossy(&c.to_bytes()).into_owned(),
        Err(_) => {
            return refusal(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                90014,
                "The request body is too large.",
            );
        }
    };
    sim.stats.request("graph token");
    if !tenant.eq_ignore_ascii_case(&graph.config.tenant) {
        return refusal(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            90002,
            &format!("Tenant '{tenant}' not found."),
        );
    }
    let fields = common::percent::form_fields(&body);
    let field = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    if field("grant_type") != Some("client_credentials") {
        return refusal(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            70003,
            "The app requested an unsupported grant type.",
        );
    }
    let client_id = field("client_id").unwrap_or_default();
    if client_id != graph.config.client_id {
        return refusal(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            700016,
            &format!("Application with identifier '{client_id}' was not found in the directory."),
        );
    }
    if !field("scope").is_some_and(|s| s.ends_with("/.default")) {
        return refusal(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            1002012,
            "The provided value for scope is not valid: client credentials need {resource}/.default.",
        );
    }
    if graph.faults.take_token_refusal() {
        sim.stats.rejected("graph_token_refused");
        return refusal(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7000215,
            "Invalid client secret provided (a fault the simulator was asked for).",
        );
    }
    let proven = match (field("client_secret"), field("client_assertion_type"), field("client_assertion")) {
        (Some(secret), _, _) => match &graph.config.client_secret {
            Some(expected) if expected == secret => Ok(()),
            _ => Err((7000215, "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID.".to_owned())),
        },
        (None, Some(ASSERTION_TYPE), Some(jwt)) => graph.tokens.check_assertion(jwt, client_id, &audience),
        _ => Err((7000218, "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.".to_owned())),
    };
    if let Err((code, why)) = proven {
        sim.stats.rejected("graph_token_refused");
        return refusal(StatusCode::UNAUTHORIZED, "invalid_client", code, &why);
    }
    let lifetime = graph.config.token_lifetime;
    let answer = TokenAnswer {
        token_type: "Bearer".to_owned(),
        expires_in: lifetime.as_secs(),
        access_token: graph.tokens.issue(lifetime),
    };
    respond(
        StatusCode::OK,
        "application/json; charset=utf-8",
        graph::encode(&answer),
    )
}

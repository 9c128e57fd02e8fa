//! JSON batching (`POST /$batch`): up to [`MAX_REQUESTS`] requests in one body, each
//! answered with its own status, headers and body, in any order (Graph's "Combine
//! multiple requests in one HTTP call using JSON batching").

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Requests one batch may hold (Graph's limit).
pub const MAX_REQUESTS: usize = 20;

/// A batch.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchRequest {
    /// Its requests.
    pub requests: Vec<BatchItem>,
}

/// One request of a batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchItem {
    /// Unique in the batch.
    pub id: String,
    /// `GET`, `POST`, …
    pub method: String,
    /// Relative to the version (`/users/x/mailboxSettings/automaticRepliesSetting`).
    pub url: String,
    /// Headers (required with a body).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers: Option<BTreeMap<String, String>>,
    /// A JSON body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<serde_json::Value>,
}

/// A batch's answer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchAnswer {
    /// One per request, in any order.
    pub responses: Vec<BatchResponse>,
}

/// One answer of a batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchResponse {
    /// The request's id.
    pub id: String,
    /// Its HTTP status.
    pub status: u16,
    /// Its headers (`Retry-After` on a 429).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers: Option<BTreeMap<String, String>>,
    /// Its body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<serde_json::Value>,
}

impl BatchResponse {
    /// A header, by name in any case.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .as_ref()?
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A GET batch item.
pub fn get(id: usize, url: String) -> BatchItem {
    BatchItem {
        id: id.to_string(),
        method: "GET".to_owned(),
        url,
        headers: None,
        body: None,
    }
}

//! JSON `$batch`: each request answered by the same code as a request of its own
//! (throttling and per-mailbox limits included), in order, at most
//! [`MAX_REQUESTS`] per batch.

use std::collections::BTreeMap;
use std::sync::Arc;

use hyper::Method;

use super::{Call, GraphSide, Reply, body_of, segments};
use crate::Sim;
use graph::batch::{BatchAnswer, BatchRequest, BatchResponse, MAX_REQUESTS};

/// Answers one `$batch`.
pub async fn answer(sim: &Arc<Sim>, graph: &GraphSide, body: &[u8]) -> Reply {
    let batch: BatchRequest = match body_of(body) {
        Ok(b) => b,
        Err(reply) => return reply,
    };
    if batch.requests.is_empty() || batch.requests.len() > MAX_REQUESTS {
        return Reply::error(
            400,
            "BadRequest",
            &format!("A batch holds 1 to {MAX_REQUESTS} requests."),
        );
    }
    let mut responses = Vec::with_capacity(batch.requests.len());
    for item in batch.requests {
        let (path, query) = match item.url.split_once('?') {
            Some((p, q)) => (p.to_owned(), Some(q.to_owned())),
            None => (item.url.clone(), None),
        };
        let path = if path.starts_with('/') {
            path
        } else {
            format!("/{path}")
        };
        let refused = |why: &str| BatchResponse {
            id: item.id.clone(),
            status: 400,
            headers: None,
            body: serde_json::to_value(graph::error::ErrorBody::new("BadRequest", why)).ok(),
        };
        let Ok(method) = Method::from_bytes(item.method.to_ascii_uppercase().as_bytes()) else {
            responses.push(refused("unknown method"));
            continue;
        };
        if path.trim_start_matches('/').starts_with("$batch") {
            responses.push(refused("a batch cannot hold a batch"));
            continue;
        }
        let call = Call {
            method,
            segments: segments(&path),
            query,
            body: item
                .body
                .map(|b| bytes::Bytes::from(b.to_string()))
                .unwrap_or_default(),
            batched: true,
        };
        let reply = super::answer(sim, graph, call).await;
        let mut headers = BTreeMap::new();
        if reply.body.is_some() {
            headers.insert("Content-Type".to_owned(), "application/json".to_owned());
        }
        if let Some(secs) = reply.retry_after {
            headers.insert("Retry-After".to_owned(), secs.to_string());
        }
        responses.push(BatchResponse {
            id: item.id,
            status: reply.status,
            headers: (!headers.is_empty()).then_some(headers),
            body: reply.body,
        });
    }
    Reply::of(200, &BatchAnswer { responses })
}

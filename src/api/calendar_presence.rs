//! `GET` and `PUT /v1/mailboxes/{address}/calendar-presence`: whether a user lets
//! their calendar be shown. `PUT {"enabled": false}` opts the mailbox out (it is
//! unsubscribed, its timeline dropped, and it reads `unknown` with
//! `calendar_presence: false`); `{"enabled": true}` undoes it. The choice is saved
//! in the state directory before it is applied, and survives restarts and reloads.

use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use serde_json::{Value, json};

use super::http::{ApiState, Body, body_of, error, json_response};
use crate::roster::{SetError, Setting};
use common::mailbox::Mailbox;
use common::percent::decode as percent_decode;

/// The end of the route's path.
pub const CALENDAR_PRESENCE_SUFFIX: &str = "/calendar-presence";

fn answer(mailbox: &Mailbox, setting: Setting) -> Response<Body> {
    json_response(
        StatusCode::OK,
        &json!({
            "mailbox": mailbox.as_str(),
            "enabled": setting.enabled,
            "set_by": setting.set_by.as_str(),
        }),
    )
}

fn mailbox(raw: &str) -> Result<Mailbox, Box<Response<Body>>> {
    Mailbox::parse(&percent_decode(raw)).map_err(|e| {
        Box::new(error(
            StatusCode::BAD_REQUEST,
            &format!("not an address: {e}"),
        ))
    })
}

fn not_configured(mailbox: &Mailbox) -> Response<Body> {
    error(
        StatusCode::NOT_FOUND,
        &format!("{mailbox} is not a configured mailbox"),
    )
}

/// The setting of the mailbox at `raw` (percent-encoded).
pub fn get(state: &ApiState, raw: &str) -> Response<Body> {
    let mailbox = match mailbox(raw) {
        Ok(m) => m,
        Err(answer) => return *answer,
    };
    match state.roster.setting(&mailbox) {
        Some(setting) => answer(&mailbox, setting),
        None => not_configured(&mailbox),
    }
}

/// Sets it from `{"enabled": bool}`.
pub async fn put(state: &ApiState, raw: &str, req: Request<Incoming>) -> Response<Body> {
    let mailbox = match mailbox(raw) {
        Ok(m) => m,
        Err(answer) => return *answer,
    };
    let body = match body_of(req).await {
        Ok(body) => body,
        Err(answer) => return *answer,
    };
    let enabled = match serde_json::from_slice::<Value>(&body) {
        Ok(value) => match value.get("enabled").and_then(Value::as_bool) {
            Some(enabled) => enabled,
            None => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "expected {\"enabled\": true} or {\"enabled\": false}",
                );
            }
        },
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                &format!("the body is not JSON: {e}"),
            );
        }
    };
    let (roster, source, cache) = (
        state.roster.clone(),
        state.source.clone(),
        state.cache.clone(),
    );
    let target = mailbox.clone();
    // The store's commit waits for the disk: off the runtime's workers.
    let result =
        tokio::task::spawn_blocking(move || roster.set(&target, enabled, source.as_ref(), &cache))
            .await;
    match result {
        Ok(Ok(setting)) => answer(&mailbox, setting),
        Ok(Err(e @ SetError::NotConfigured(_))) => error(StatusCode::NOT_FOUND, &e.to_string()),
        Ok(Err(e @ SetError::Administrator(_))) => error(StatusCode::CONFLICT, &e.to_string()),
        Ok(Err(e @ SetError::Store(_))) => {
            tracing::error!(mailbox = %mailbox, error = %e, "calendar presence not changed");
            error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string())
        }
        Err(_) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the change was interrupted; read the setting again",
        ),
    }
}

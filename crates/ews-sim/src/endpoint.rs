//! The EWS endpoint: decodes a request, identifies who acts for which mailbox and
//! where the request is routed, and dispatches to the operation.

use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::mpsc;

use super::Sim;
use super::request::Request;
use super::soap_out::{self, Failure};
use super::{ops_availability, ops_calendar, ops_mail_tips, ops_oof, ops_subscription, streaming};
use ews::xml_tree::{Element, Tree};

/// Operations the simulator serves; anything else gets a fault like Exchange's.
pub const OPERATIONS: [&str; 13] = [
    "Subscribe",
    "Unsubscribe",
    "GetStreamingEvents",
    "GetUserAvailability",
    "GetServerTimeZones",
    "GetUserOofSettings",
    "SetUserOofSettings",
    "GetMailTips",
    "GetServiceConfiguration",
    "CreateItem",
    "UpdateItem",
    "DeleteItem",
    "GetFolder",
];

/// Who is calling and how the request is routed.
#[derive(Debug, Clone)]
pub struct CallContext {
    /// The authenticated account (lower case).
    pub account: String,
    /// `X-AnchorMailbox`.
    pub anchor: Option<String>,
    /// `X-PreferServerAffinity: true`.
    pub prefer_affinity: bool,
    /// The backend named by an `X-BackEndOverrideCookie`.
    pub cookie_backend: Option<usize>,
    /// The backend whose own EWS URL path the request used.
    pub path_backend: Option<usize>,
}

/// What the endpoint answers.
#[derive(Debug)]
pub enum Reply {
    /// A complete XML body.
    Xml {
        /// HTTP status (200, or 500 for faults).
        status: u16,
        /// The envelope.
        body: String,
        /// A `Set-Cookie` value to send.
        set_cookie: Option<String>,
    },
    /// A streaming body: frames as they are produced.
    Stream(mpsc::Receiver<Bytes>),
}

impl Reply {
    /// HTTP 200 with `body`.
    pub fn ok(body: String) -> Reply {
        Reply::Xml {
            status: 200,
            body,
            set_cookie: None,
        }
    }

    /// A SOAP fault with HTTP 500.
    pub fn fault(code: &str, text: &str, back_off_ms: Option<u64>) -> Reply {
        Reply::Xml {
            status: 500,
            body: soap_out::fault(code, text, back_off_ms),
            set_cookie: None,
        }
    }
}

impl Sim {
    /// The mailbox acting: the impersonated one, else the account's own.
    pub fn acting_mailbox(
        &self,
        ctx: &CallContext,
        req: &Request<'_, '_>,
    ) -> Result<usize, Failure> {
        match &req.impersonate {
            Some(address) => self.directory.lookup(address).ok_or_else(|| {
                Failure::new(
                    "ErrorNonExistentMailbox",
                    format!("The SMTP address has no mailbox associated with it: {address}"),
                )
            }),
            None => self.directory.lookup(&ctx.account).ok_or_else(|| {
                Failure::new(
                    "ErrorNonExistentMailbox",
                    format!(
                        "The account {} has no mailbox; use ExchangeImpersonation",
                        ctx.account
                    ),
                )
            }),
        }
    }

    /// The backend a request is routed to: by affinity cookie when affinity is
    /// preferred, else by `X-AnchorMailbox`, else by the backend's own URL path, else
    /// `default`.
    pub fn route(&self, ctx: &CallContext, default: usize) -> usize {
        if ctx.prefer_affinity
            && let Some(backend) = ctx.cookie_backend
        {
            return backend;
        }
        ctx.anchor
            .as_deref()
            .and_then(|a| self.directory.lookup(a))
            .map(|m| self.backend_of(m))
            .or(ctx.path_backend)
            .unwrap_or(default)
    }

    /// The `X-BackEndOverrideCookie` value for backend `n`.
    pub fn affinity_cookie(&self, n: usize) -> String {
        format!(
            "X-BackEndOverrideCookie={}~{}; path=/; secure; HttpOnly",
            self.registry.backend_host(n),
            1_942_062_000 + n
        )
    }

    /// Reads the backend out of an `X-BackEndOverrideCookie` value.
    pub fn backend_from_cookie(&self, value: &str) -> Option<usize> {
        let host = value.split('~').next()?.trim();
        let n: usize = host.strip_prefix("mbx")?.split('.').next()?.parse().ok()?;
        (1..=self.config.backends).contains(&n).then(|| n - 1)
    }
}

/// The mailbox named in a `DistinguishedFolderId/Mailbox/EmailAddress`, if any.
pub fn folder_mailbox(folder: Element<'_, '_>) -> Option<String> {
    folder
        .ews_child("Mailbox")
        .and_then(|m| m.ews_child("EmailAddress"))
        .map(|e| e.text().to_ascii_lowercase())
}

/// Serves one EWS request body.
pub async fn handle(sim: &Arc<Sim>, ctx: CallContext, body: &[u8]) -> Reply {
    let Ok(text) = std::str::from_utf8(body) else {
        return Reply::fault(
            "ErrorSchemaValidation",
            "The request is not valid UTF-8.",
            None,
        );
    };
    let tree = match Tree::parse(text) {
        Ok(tree) => tree,
        Err(e) => {
            return Reply::fault(
                "ErrorSchemaValidation",
                &format!("The request failed schema validation: {e}"),
                None,
            );
        }
    };
    let req = match Request::read(&tree) {
        Ok(req) => req,
        Err(e) => return Reply::fault("ErrorSchemaValidation", &e.0, None),
    };
    let name = req.name();
    let Some(operation) = OPERATIONS.iter().find(|op| **op == name) else {
        sim.stats.request("unsupported");
        return Reply::fault(
            "ErrorInvalidRequest",
            &format!("The request is invalid: the simulator does not serve {name}."),
            None,
        );
    };
    sim.stats.request(operation);
    if let Some(back_off_ms) = sim.faults.take_server_busy(operation) {
        sim.stats.rejected("server_busy");
        return Reply::fault(
            "ErrorServerBusy",
            "The server cannot service this request right now. Try again later.",
            Some(back_off_ms),
        );
    }
    if let Some(hostile) = sim.faults.take_hostile(operation) {
        sim.stats.rejected("hostile");
        return Reply::ok(hostile.body());
    }
    match *operation {
        "Subscribe" => ops_subscription::subscribe(sim, &ctx, &req),
        "Unsubscribe" => ops_subscription::unsubscribe(sim, &ctx, &req),
        "GetStreamingEvents" => streaming::get_streaming_events(sim, &ctx, &req),
        "GetUserAvailability" => ops_availability::get_user_availability(sim, &req),
        "GetServerTimeZones" => ops_availability::get_server_time_zones(&req),
        "GetUserOofSettings" => ops_oof::get(sim, &ctx, &req),
        "SetUserOofSettings" => ops_oof::set(sim, &ctx, &req),
        "GetMailTips" => ops_mail_tips::get_mail_tips(sim, &req),
        "GetServiceConfiguration" => ops_mail_tips::get_service_configuration(sim),
        "CreateItem" => ops_calendar::create_item(sim, &ctx, &req),
        "UpdateItem" => ops_calendar::update_item(sim, &ctx, &req),
        "DeleteItem" => ops_calendar::delete_item(sim, &ctx, &req),
        _ => ops_calendar::get_folder(sim, &ctx, &req),
    }
}

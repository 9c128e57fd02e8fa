//! What `/v1/gateways`, readiness and the status page show of a Graph gateway: the
//! same report as an EWS gateway's, its fields meaning the Graph things (subscriptions
//! held and failing, notifications received, how automatic replies are read).

use super::GraphRuntime;
use crate::engine::status::{GatewayReport, GatewayStatus};
use common::sync::lock;

impl GatewayStatus for GraphRuntime {
    fn report(&self) -> GatewayReport {
        let g = &self.gateway;
        let (mailboxes, live) = {
            let table = lock(&self.subscriptions.table);
            (table.mailboxes().len(), table.live())
        };
        GatewayReport {
            name: g.config.name.clone(),
            kind: "graph",
            url: g.graph.graph_url.to_string(),
            tls: g.graph.graph_url.scheme_str() == Some("https"),
            auth: g.graph.credential.scheme(),
            health: g.health(),
            groups: 0,
            groups_waiting: 0,
            connections_open: 0,
            max_connections: None,
            subscriptions_live: live,
            subscriptions_failed: mailboxes - live,
            mailboxes,
            mailboxes_over_capacity: 0,
            events_received: g.notifications(),
            one_mailbox_per_stream: false,
            auto_replies: g.refresh.auto_reply_source().describe(),
            undiscovered: Vec::new(),
            plain_http: g.graph.plain_http_warning(),
        }
    }
}

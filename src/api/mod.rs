//! The HTTP API: presence reads, batch queries, the SSE change feed, gateway status,
//! health and metrics ([`http`]), and the metric names and helpers ([`metrics`]).

pub mod http;
pub mod metrics;

//! The HTTP API: presence reads, batch queries, the SSE change feed, gateway status,
//! health and metrics ([`http`]), JSON rendering ([`json`]), the bounded client
//! connections ([`connections`]), the metrics exporter ([`metrics`]), the status page
//! ([`status_page`]), HTTPS with reloadable certificates ([`tls`]) and the users'
//! calendar-presence setting ([`calendar_presence`]), the bearer tokens and their scopes
//! ([`tokens`]) and the refused requests ([`auth_failures`]). It reads the engine only through its status handle.

pub mod auth_failures;
pub mod calendar_presence;
pub mod connections;
pub mod http;
pub mod json;
pub mod metrics;
pub mod status_page;
pub mod tls;
pub mod tokens;

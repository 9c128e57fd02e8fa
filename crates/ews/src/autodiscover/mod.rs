//! Autodiscover: finding each mailbox's EWS URL and affinity group
//! (`GroupingInformation`) by asking Exchange, instead of configuring them.
//!
//! - [`soap`]: SOAP `GetUserSettings` requests (batches of up to 100) and answers.
//! - [`pox`]: POX `autodiscover.xml`, the fallback for servers that answer only that.
//! - [`client`]: where to ask and how safely: candidates, batches, redirects, loops,
//!   HTTPS-only credentials.
//!
//! Uses the rest of this crate's wire pieces (SOAP, transport) and `common` only.

pub mod client;
pub mod pox;
pub mod soap;

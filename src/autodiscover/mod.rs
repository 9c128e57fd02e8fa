//! Autodiscover: finding each mailbox's EWS URL and affinity group
//! (`GroupingInformation`) by asking Exchange, instead of configuring them.
//!
//! - [`soap`]: SOAP `GetUserSettings` requests (batches of up to 100) and answers.
//! - [`pox`]: POX `autodiscover.xml`, the fallback for servers that answer only that.
//!
//! Depends on the `ews` wire layer and [`crate::mailbox`] only.

pub mod pox;
pub mod soap;

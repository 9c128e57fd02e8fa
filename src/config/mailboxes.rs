//! `[mailboxes]`: where the list of mailboxes comes from, and reading it: one
//! `address [gateway] [opt-out]` a line, or an inline list on the first gateway.

use std::collections::{BTreeSet, HashSet};
use std::path::{Path, PathBuf};

use common::mailbox::Mailbox;
use serde::Deserialize;

use super::gateway::GatewayConfig;
use super::values::resolve;
use super::{ConfigError, error};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMailboxes {
    pub(super) file: Option<PathBuf>,
    pub(super) list: Option<Vec<String>>,
}

/// Where the mailbox list comes from.
#[derive(Debug, Clone)]
pub enum MailboxSource {
    /// `address [gateway]` lines in a file (re-read on SIGHUP).
    File(PathBuf),
    /// Inline list (all on the first gateway).
    List(Vec<String>),
}

/// The mailbox list as read: each mailbox with its gateway's index, and those the
/// administrators opted out of calendar presence.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MailboxList {
    /// Every listed mailbox, in list order.
    pub entries: Vec<(Mailbox, usize)>,
    /// Those flagged `opt-out`.
    pub opted_out: BTreeSet<Mailbox>,
}

/// The word that opts a mailbox out in the mailbox list (`address [gateway] opt-out`).
pub const OPT_OUT_FLAG: &str = "opt-out";

impl MailboxSource {
    /// Validates `[mailboxes]`: exactly one of `file` or `list`.
    pub(super) fn from_raw(raw: RawMailboxes, base: &Path) -> Result<MailboxSource, ConfigError> {
        match (raw.file, raw.list) {
            (Some(f), None) => Ok(MailboxSource::File(resolve(base, &f))),
            (None, Some(l)) => Ok(MailboxSource::List(l)),
            _ => Err(error("mailboxes", "set exactly one of file or list")),
        }
    }

    /// Reads the list, each mailbox placed on one of `gateways`.
    pub(super) fn read(&self, gateways: &[GatewayConfig]) -> Result<MailboxList, ConfigError> {
        let gateway_index = |name: &str| gateways.iter().position(|g| g.name == name);
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        let mut opted_out = BTreeSet::new();
        match self {
            MailboxSource::List(list) => {
                for (i, address) in list.iter().enumerate() {
                    let key = format!("mailboxes.list[{i}]");
                    let mailbox =
                        Mailbox::parse(address).map_err(|e| error(&key, e.to_string()))?;
                    if !seen.insert(mailbox.clone()) {
                        return Err(error(key, format!("duplicate mailbox {mailbox}")));
                    }
                    out.push((mailbox, 0));
                }
            }
            MailboxSource::File(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    error(
                        "mailboxes.file",
                        format!("cannot read {}: {e}", path.display()),
                    )
                })?;
                for (n, line) in text.lines().enumerate() {
                    let key = format!("{}:{}", path.display(), n + 1);
                    let line = line.split('#').next().unwrap_or_default().trim();
                    if line.is_empty() {
                        continue;
                    }
                    let mut parts = line.split_whitespace();
                    let address = parts.next().unwrap_or_default();
                    let mailbox =
                        Mailbox::parse(address).map_err(|e| error(&key, e.to_string()))?;
                    let (mut gateway, mut opt_out) = (None, false);
                    for word in parts {
                        if word == OPT_OUT_FLAG && !opt_out {
                            opt_out = true;
                        } else if gateway.is_none() && !opt_out {
                            gateway =
                                Some(gateway_index(word).ok_or_else(|| {
                                    error(&key, format!("unknown gateway {word:?}"))
                                })?);
                        } else {
                            return Err(error(
                                &key,
                                format!(
                                    "unexpected {word:?}: lines are \"address [gateway] [{OPT_OUT_FLAG}]\""
                                ),
                            ));
                        }
                    }
                    if !seen.insert(mailbox.clone()) {
                        return Err(error(&key, format!("duplicate mailbox {mailbox}")));
                    }
                    if opt_out {
                        opted_out.insert(mailbox.clone());
                    }
                    out.push((mailbox, gateway.unwrap_or(0)));
                }
            }
        }
        Ok(MailboxList {
            entries: out,
            opted_out,
        })
    }
}

//! Which configured mailboxes are served: the mailbox list, less those opted out of
//! calendar presence, by the administrators (`opt-out` in the list) or by the users
//! themselves through the API (kept in the [`OptOutStore`]). An opted-out mailbox is
//! unsubscribed, its timeline dropped and never read while it stays out; it reads
//! `unknown` with `calendar_presence: false`, so that the presence server falls back
//! to the user's own state. Every change is applied to the source and the cache here,
//! and nowhere else.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use crate::config::{Config, MailboxList};
use crate::opt_out_store::{OptOutStore, StoreError};
use crate::presence::cache::Cache;
use crate::source::{ReloadSummary, Source};
use common::mailbox::Mailbox;

/// Who decided a mailbox's calendar presence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetBy {
    /// Nobody: shown, as by default.
    Default,
    /// The user, through the API.
    User,
    /// The administrators, in the mailbox list.
    Administrator,
}

impl SetBy {
    /// The name in the API's answers.
    pub fn as_str(self) -> &'static str {
        match self {
            SetBy::Default => "default",
            SetBy::User => "user",
            SetBy::Administrator => "administrator",
        }
    }
}

/// One mailbox's calendar-presence setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Setting {
    /// The calendar is shown.
    pub enabled: bool,
    /// Who decided.
    pub set_by: SetBy,
}

/// Why a setting could not be changed.
#[derive(Debug, thiserror::Error)]
pub enum SetError {
    /// The mailbox is not in the mailbox list.
    #[error("{0} is not a configured mailbox")]
    NotConfigured(Mailbox),
    /// The administrators opted it out in the mailbox list: only they can undo it.
    #[error(
        "{0} is opted out in the mailbox list by the administrators; only they can turn its calendar presence back on"
    )]
    Administrator(Mailbox),
    /// The choice could not be saved; nothing changed.
    #[error("the choice could not be saved, nothing changed: {0}")]
    Store(#[from] StoreError),
}

#[derive(Debug)]
struct Lists {
    /// Every configured mailbox and its gateway's index.
    configured: BTreeMap<Mailbox, usize>,
    /// Opted out in the mailbox list.
    administrator: BTreeSet<Mailbox>,
    /// Opted out by their users.
    users: BTreeSet<Mailbox>,
}

impl Lists {
    fn opted_out(&self, mailbox: &Mailbox) -> bool {
        self.administrator.contains(mailbox) || self.users.contains(mailbox)
    }

    fn served(&self) -> Vec<(Mailbox, usize)> {
        self.configured
            .iter()
            .filter(|(m, _)| !self.opted_out(m))
            .map(|(m, g)| (m.clone(), *g))
            .collect()
    }

    fn setting(&self, mailbox: &Mailbox) -> Setting {
        let set_by = if self.administrator.contains(mailbox) {
            SetBy::Administrator
        } else if self.users.contains(mailbox) {
            SetBy::User
        } else {
            SetBy::Default
        };
        Setting {
            enabled: set_by == SetBy::Default,
            set_by,
        }
    }
}

/// The served mailboxes.
#[derive(Debug)]
pub struct Roster {
    store: OptOutStore,
    lists: Mutex<Lists>,
    gateway_names: Vec<Arc<str>>,
}

impl Roster {
    /// The roster of `config`'s mailbox list with the users' choices in `store`.
    pub fn new(config: &Config, store: OptOutStore) -> Result<Roster, StoreError> {
        let users = store.load()?;
        Ok(Roster {
            store,
            lists: Mutex::new(Lists {
                configured: config.mailboxes.iter().cloned().collect(),
                administrator: config.opted_out.clone(),
                users,
            }),
            gateway_names: config
                .gateways
                .iter()
                .map(|g| g.name.as_str().into())
                .collect(),
        })
    }

    /// The mailboxes to serve now, each with its gateway's index.
    pub fn served(&self) -> Vec<(Mailbox, usize)> {
        common::sync::lock(&self.lists).served()
    }

    fn gateway_name(&self, g: usize) -> Arc<str> {
        self.gateway_names
            .get(g)
            .cloned()
            .unwrap_or_else(|| "".into())
    }

    /// Puts every configured, opted-out mailbox in the cache as opted out (at start,
    /// after the source took the served ones).
    pub fn mark_opted_out(&self, cache: &Cache) {
        let lists = common::sync::lock(&self.lists);
        for (mailbox, g) in &lists.configured {
            if lists.opted_out(mailbox) {
                cache.insert(mailbox.clone(), self.gateway_name(*g));
                cache.set_calendar_presence(mailbox, false);
            }
        }
    }

    /// A mailbox's setting, if configured.
    pub fn setting(&self, mailbox: &Mailbox) -> Option<Setting> {
        let lists = common::sync::lock(&self.lists);
        lists
            .configured
            .contains_key(mailbox)
            .then(|| lists.setting(mailbox))
    }

    /// The user turns `mailbox`'s calendar presence on or off: saved durably first,
    /// then applied (unsubscribed and dropped, or subscribed and synced again). Blocks
    /// on the store's write: call it off the runtime's workers.
    pub fn set(
        &self,
        mailbox: &Mailbox,
        enabled: bool,
        source: &dyn Source,
        cache: &Cache,
    ) -> Result<Setting, SetError> {
        let mut lists = common::sync::lock(&self.lists);
        let Some(&g) = lists.configured.get(mailbox) else {
            return Err(SetError::NotConfigured(mailbox.clone()));
        };
        if lists.administrator.contains(mailbox) {
            return if enabled {
                Err(SetError::Administrator(mailbox.clone()))
            } else {
                Ok(lists.setting(mailbox))
            };
        }
        if lists.users.contains(mailbox) != enabled {
            return Ok(lists.setting(mailbox));
        }
        self.store
            .set(mailbox, !enabled, jiff::Timestamp::now().as_second())?;
        if enabled {
            lists.users.remove(mailbox);
            cache.set_calendar_presence(mailbox, true);
            source.serve(mailbox, g);
        } else {
            lists.users.insert(mailbox.clone());
            source.stop_serving(mailbox, g);
            cache.set_calendar_presence(mailbox, false);
        }
        tracing::info!(mailbox = %mailbox, enabled, "calendar presence set by the user");
        Ok(lists.setting(mailbox))
    }

    /// Applies a re-read mailbox list: the source serves what is listed and not opted
    /// out; opted-out mailboxes stay in the cache as such.
    pub fn apply(&self, list: MailboxList, source: &dyn Source, cache: &Cache) -> ReloadSummary {
        let mut lists = common::sync::lock(&self.lists);
        let configured: BTreeMap<Mailbox, usize> = list.entries.into_iter().collect();
        let next = Lists {
            configured,
            administrator: list.opted_out,
            users: std::mem::take(&mut lists.users),
        };
        // Opted out before and not now: back in (or gone from the list).
        for (mailbox, g) in &lists.configured {
            if !lists.opted_out(mailbox) || next.opted_out(mailbox) {
                continue;
            }
            match next.configured.get(mailbox) {
                Some(new_g) if new_g == g => {
                    cache.set_calendar_presence(mailbox, true);
                }
                _ => cache.remove(mailbox),
            }
        }
        let mut summary = source.apply_mailboxes(&next.served());
        for (mailbox, g) in &next.configured {
            if !next.opted_out(mailbox) {
                continue;
            }
            let was = lists.configured.get(mailbox);
            if lists.opted_out(mailbox) && was == Some(g) {
                continue;
            }
            if was.is_some_and(|old| old != g) {
                cache.remove(mailbox);
            }
            cache.insert(mailbox.clone(), self.gateway_name(*g));
            cache.set_calendar_presence(mailbox, false);
        }
        summary.total = next.configured.len();
        *lists = next;
        summary
    }
}

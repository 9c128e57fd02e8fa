//! The [`Mailbox`] newtype, the key every part of the daemon uses for a user, and its
//! parse error. A leaf: it depends on nothing else in the crate.

use std::borrow::{Borrow, Cow};
use std::fmt;
use std::sync::Arc;

use thiserror::Error;

/// Longest local part (RFC 5321 §4.5.3.1.1).
const MAX_LOCAL_LEN: usize = 64;
/// Longest domain (RFC 5321 §4.5.3.1.2).
const MAX_DOMAIN_LEN: usize = 255;
/// Characters of a refused address quoted back in the error.
const MAX_QUOTED: usize = 64;

/// An address that is not a usable SMTP address.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error(
    "invalid mailbox address {quoted:?}: expected local@domain without spaces, a local part of at most 64 bytes and a domain of at most 255"
)]
pub struct InvalidMailbox {
    /// The address as given, shortened for quoting.
    pub quoted: String,
}

/// A mailbox's primary SMTP address, lower-cased so that it can serve as a key. Cheap
/// to clone (shared): the daemon keeps one per mailbox in several indexes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Mailbox(Arc<str>);

impl Mailbox {
    /// Checks and normalises an address: one `@`, a local part of 1 to 64 bytes and a
    /// domain of 1 to 255, no white space, control characters, `<`, `>` or `"`.
    pub fn parse(address: &str) -> Result<Mailbox, InvalidMailbox> {
        if address.chars().any(forbidden) || !well_formed(address) {
            return Err(InvalidMailbox {
                quoted: match address.char_indices().nth(MAX_QUOTED) {
                    Some((cut, _)) => format!("{}…", &address[..cut]),
                    None => address.to_owned(),
                },
            });
        }
        Ok(Mailbox(address.to_lowercase().into()))
    }

    /// The key `address` has as a mailbox, for lookups that should not allocate:
    /// borrowed when the address is already normalised (plain lower-case ASCII, as
    /// clients nearly always send it); None when it is not a valid address.
    pub fn key(address: &str) -> Option<Cow<'_, str>> {
        let plain = address
            .bytes()
            .all(|b| b.is_ascii_graphic() && !b.is_ascii_uppercase() && !forbidden(b as char));
        if plain {
            return well_formed(address).then_some(Cow::Borrowed(address));
        }
        Mailbox::parse(address)
            .ok()
            .map(|m| Cow::Owned(m.as_str().to_owned()))
    }

    /// The normalised address.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The domain part (after the `@`).
    pub fn domain(&self) -> &str {
        self.0.split_once('@').map_or("", |(_, domain)| domain)
    }
}

/// Lookups by a normalised address (see [`Mailbox::key`]): a mailbox hashes and
/// compares as its address.
impl Borrow<str> for Mailbox {
    fn borrow(&self) -> &str {
        &self.0
    }
}

/// Characters no address may hold.
fn forbidden(c: char) -> bool {
    c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | '"')
}

/// One `@`, a local part of 1 to 64 bytes, a domain of 1 to 255.
fn well_formed(address: &str) -> bool {
    address.split_once('@').is_some_and(|(local, domain)| {
        (1..=MAX_LOCAL_LEN).contains(&local.len())
            && (1..=MAX_DOMAIN_LEN).contains(&domain.len())
            && !domain.contains('@')
    })
}

impl fmt::Display for Mailbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// `user{n}@example.test`: the mailbox tests call number `n` (feature `test-util`).
#[cfg(any(test, feature = "test-util"))]
pub fn numbered(n: usize) -> Mailbox {
    Mailbox::parse(&format!("user{n}@example.test")).expect("a valid address")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_addresses_and_refuses_the_rest() {
        assert_eq!(
            Mailbox::parse("User1@Example.Test").unwrap().as_str(),
            "user1@example.test"
        );
        for bad in [
            "",
            "no-at",
            "@example.test",
            "user@",
            "a@b@c",
            "a b@example.test",
            "<a>@example.test",
        ] {
            assert!(Mailbox::parse(bad).is_err(), "{bad:?} accepted");
        }
        let long_local = format!("{}@example.test", "a".repeat(65));
        let error = Mailbox::parse(&long_local).unwrap_err();
        assert!(error.quoted.ends_with('…'), "{error}");
        assert!(Mailbox::parse(&format!("{}@example.test", "a".repeat(64))).is_ok());
        assert!(Mailbox::parse(&format!("a@{}", "d".repeat(256))).is_err());
    }

    #[test]
    fn a_key_is_what_parsing_gives_borrowed_when_already_normal() {
        for address in [
            "user1@example.test",
            "User1@Example.Test",
            "ünïcode@example.test",
            "",
            "no-at",
            "a@b@c",
            "a b@example.test",
            "a\u{a0}b@example.test",
            "<a>@example.test",
        ] {
            let parsed = Mailbox::parse(address).ok();
            let key = Mailbox::key(address);
            assert_eq!(
                key.as_deref(),
                parsed.as_ref().map(Mailbox::as_str),
                "{address:?}"
            );
        }
        assert!(matches!(
            Mailbox::key("user1@example.test"),
            Some(Cow::Borrowed(_))
        ));
        // A mailbox is found by its key in a map keyed by mailboxes.
        let mut map = std::collections::HashMap::new();
        map.insert(Mailbox::parse("User1@Example.Test").unwrap(), 1);
        assert_eq!(map.get("user1@example.test"), Some(&1));
    }
}

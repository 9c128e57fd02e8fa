//! The simulated organisation's ground truth: every mailbox's calendar items and
//! automatic-reply settings, the changes made to them, and what a presence server
//! should show for a mailbox at any instant.
//!
//! The truth is computed here with its own code, independently of the daemon's
//! presence logic, so that tests can check one against the other. Subscriptions live
//! in [`super::subscriptions`]; this module only owns calendars.

use std::sync::Mutex;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use jiff::Timestamp;

use ews::ops::get_user_availability::BusyType;

/// Calendar state at an instant, highest precedence first when items overlap:
/// OOF > Busy > Tentative > WorkingElsewhere > Free.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum CalendarState {
    /// No item, or only Free items.
    Free,
    /// A WorkingElsewhere item.
    WorkingElsewhere,
    /// A Tentative item.
    Tentative,
    /// A Busy item.
    Busy,
    /// An item shown as Out of Office.
    Oof,
}

impl CalendarState {
    /// The state an item of this busy type puts the calendar in.
    pub fn of(busy: BusyType) -> CalendarState {
        match busy {
            BusyType::Free | BusyType::NoData => CalendarState::Free,
            BusyType::WorkingElsewhere => CalendarState::WorkingElsewhere,
            BusyType::Tentative => CalendarState::Tentative,
            BusyType::Busy => CalendarState::Busy,
            BusyType::Oof => CalendarState::Oof,
        }
    }

    /// The control API's name for it.
    pub fn as_str(self) -> &'static str {
        match self {
            CalendarState::Free => "free",
            CalendarState::WorkingElsewhere => "working-elsewhere",
            CalendarState::Tentative => "tentative",
            CalendarState::Busy => "busy",
            CalendarState::Oof => "oof",
        }
    }
}

/// Automatic-reply settings.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Oof {
    /// Off.
    #[default]
    Disabled,
    /// On.
    Enabled,
    /// On inside `[start, end)`.
    Scheduled {
        /// When replies start.
        start: Timestamp,
        /// When they stop.
        end: Timestamp,
    },
}

impl Oof {
    /// Whether automatic replies are on at `at`.
    pub fn active_at(&self, at: Timestamp) -> bool {
        match self {
            Oof::Disabled => false,
            Oof::Enabled => true,
            Oof::Scheduled { start, end } => *start <= at && at < *end,
        }
    }
}

/// What a presence server should show, by the default mapping of the architecture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Truth {
    /// The calendar's state.
    pub calendar: CalendarState,
    /// Automatic replies are on.
    pub out_of_office: bool,
}

impl Truth {
    /// `away` for OOF items or automatic replies, `in-a-meeting` for Busy, else
    /// `available` (Free, Tentative and WorkingElsewhere).
    pub fn availability(&self) -> &'static str {
        if self.out_of_office || self.calendar == CalendarState::Oof {
            "away"
        } else if self.calendar == CalendarState::Busy {
            "in-a-meeting"
        } else {
            "available"
        }
    }
}

/// One calendar item (a single occurrence; the simulator has no recurrences).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// Number within its mailbox; with the mailbox it forms the item id.
    pub number: u32,
    /// Start, seconds since the Unix epoch.
    pub start: i64,
    /// End, seconds since the Unix epoch.
    pub end: i64,
    /// Free/busy status.
    pub busy: BusyType,
    /// Subject, when one was set (generated items have none).
    pub subject: Option<Box<str>>,
    /// Bumped on every change; the ChangeKey.
    pub version: u32,
}

impl Item {
    /// Whether the item covers the instant `at` (start inclusive, end exclusive).
    pub fn covers(&self, at: i64) -> bool {
        self.start <= at && at < self.end
    }

    /// Whether the item overlaps `[start, end)`.
    pub fn overlaps(&self, start: i64, end: i64) -> bool {
        self.start < end && start < self.end
    }
}

/// What to create.
#[derive(Debug, Clone)]
pub struct NewItem {
    /// Start (seconds since the epoch).
    pub start: i64,
    /// End (seconds since the epoch); must be after start.
    pub end: i64,
    /// Free/busy status.
    pub busy: BusyType,
    /// Optional subject.
    pub subject: Option<String>,
}

/// What to change; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct ItemPatch {
    /// New start.
    pub start: Option<i64>,
    /// New end.
    pub end: Option<i64>,
    /// New free/busy status.
    pub busy: Option<BusyType>,
    /// New subject.
    pub subject: Option<String>,
}

/// A model operation that cannot be done.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelError {
    /// No such item in that mailbox.
    #[error("item not found")]
    ItemNotFound,
    /// The item would end before it starts.
    #[error("end must be after start")]
    EndBeforeStart,
    /// A mailbox holds at most this many items.
    #[error("calendar is full ({0} items)")]
    CalendarFull(usize),
}

/// Most items one simulated calendar holds.
pub const MAX_ITEMS_PER_MAILBOX: usize = 10_000;

/// One mailbox's calendar and settings.
#[derive(Debug, Default)]
pub struct Calendar {
    /// Items, unordered.
    pub items: Vec<Item>,
    next_number: u32,
    /// Automatic replies.
    pub oof: Oof,
    /// Whether the internal automatic reply has a message (an empty one is allowed,
    /// and then MailTips cannot tell "on" from "off").
    pub oof_message: bool,
}

impl Calendar {
    /// A calendar holding `items` (numbered in order) and `oof`.
    pub fn new(items: Vec<(i64, i64, BusyType)>, oof: Oof) -> Calendar {
        let items: Vec<Item> = items
            .into_iter()
            .enumerate()
            .map(|(n, (start, end, busy))| Item {
                number: n as u32,
                start,
                end,
                busy,
                subject: None,
                version: 1,
            })
            .collect();
        Calendar {
            next_number: items.len() as u32,
            items,
            oof,
            oof_message: true,
        }
    }

    /// The state of this calendar at `at`.
    pub fn truth(&self, at: Timestamp) -> Truth {
        let secs = at.as_second();
        let calendar = self
            .items
            .iter()
            .filter(|i| i.covers(secs))
            .map(|i| CalendarState::of(i.busy))
            .max()
            .unwrap_or(CalendarState::Free);
        Truth {
            calendar,
            out_of_office: self.oof.active_at(at),
        }
    }

    /// Adds an item; returns a copy of it.
    pub fn create(&mut self, new: NewItem) -> Result<Item, ModelError> {
        if new.end <= new.start {
            return Err(ModelError::EndBeforeStart);
        }
        if self.items.len() >= MAX_ITEMS_PER_MAILBOX {
            return Err(ModelError::CalendarFull(MAX_ITEMS_PER_MAILBOX));
        }
        let item = Item {
            number: self.next_number,
            start: new.start,
            end: new.end,
            busy: new.busy,
            subject: new.subject.map(String::into_boxed_str),
            version: 1,
        };
        self.next_number += 1;
        self.items.push(item.clone());
        Ok(item)
    }

    /// Changes an item; returns a copy of it as changed.
    pub fn update(&mut self, number: u32, patch: ItemPatch) -> Result<Item, ModelError> {
        let item = self
            .items
            .iter_mut()
            .find(|i| i.number == number)
            .ok_or(ModelError::ItemNotFound)?;
        let start = patch.start.unwrap_or(item.start);
        let end = patch.end.unwrap_or(item.end);
        if end <= start {
            return Err(ModelError::EndBeforeStart);
        }
        item.start = start;
        item.end = end;
        if let Some(busy) = patch.busy {
            item.busy = busy;
        }
        if let Some(subject) = patch.subject {
            item.subject = Some(subject.into_boxed_str());
        }
        item.version += 1;
        Ok(item.clone())
    }

    /// Removes an item.
    pub fn delete(&mut self, number: u32) -> Result<(), ModelError> {
        let at = self
            .items
            .iter()
            .position(|i| i.number == number)
            .ok_or(ModelError::ItemNotFound)?;
        self.items.swap_remove(at);
        Ok(())
    }

    /// Copies of the items overlapping `[start, end)`, by start time.
    pub fn items_between(&self, start: i64, end: i64) -> Vec<Item> {
        let mut items: Vec<Item> = self
            .items
            .iter()
            .filter(|i| i.overlaps(start, end))
            .cloned()
            .collect();
        items.sort_by_key(|i| (i.start, i.number));
        items
    }

    /// The item with this number.
    pub fn item(&self, number: u32) -> Option<&Item> {
        self.items.iter().find(|i| i.number == number)
    }
}

/// Encodes item `(mailbox, number)` as an EWS item id.
pub fn item_id(mailbox: usize, number: u32) -> String {
    let mut raw = Vec::with_capacity(48);
    raw.extend_from_slice(b"AAMkSIM-item\0");
    raw.extend_from_slice(&(mailbox as u32).to_be_bytes());
    raw.extend_from_slice(&number.to_be_bytes());
    raw.extend_from_slice(b"\0calendar-item-of-the-simulator");
    B64.encode(raw)
}

/// Decodes an id written by [`item_id`].
pub fn parse_item_id(id: &str) -> Option<(usize, u32)> {
    let raw = B64.decode(id.trim()).ok()?;
    let rest = raw.strip_prefix(b"AAMkSIM-item\0")?;
    let mailbox = u32::from_be_bytes(rest.get(0..4)?.try_into().ok()?);
    let number = u32::from_be_bytes(rest.get(4..8)?.try_into().ok()?);
    Some((mailbox as usize, number))
}

/// The ChangeKey for an item version.
pub fn change_key(version: u32) -> String {
    let mut raw = *b"DwAAABYAAAAAAA";
    raw[10..14].copy_from_slice(&version.to_be_bytes());
    B64.encode(raw)
}

/// The calendar folder id of a mailbox (`kind` "calendar") or its parent ("root").
pub fn folder_id(mailbox: usize, kind: &str) -> String {
    B64.encode(format!("AAMkSIM-folder\0{mailbox:08x}\0{kind}"))
}

/// Decodes an id written by [`folder_id`] into (mailbox, kind).
pub fn parse_folder_id(id: &str) -> Option<(usize, String)> {
    let raw = B64.decode(id.trim()).ok()?;
    let text = std::str::from_utf8(&raw).ok()?;
    let rest = text.strip_prefix("AAMkSIM-folder\0")?;
    let (mailbox, kind) = rest.split_once('\0')?;
    Some((usize::from_str_radix(mailbox, 16).ok()?, kind.to_owned()))
}

/// All mailboxes' calendars, each behind its own lock.
#[derive(Debug)]
pub struct Directory {
    domain: String,
    calendars: Vec<Mutex<Calendar>>,
}

impl Directory {
    /// `user1@domain` … `userN@domain` with the given calendars (index 0 = user1).
    pub fn new(domain: &str, calendars: Vec<Calendar>) -> Directory {
        Directory {
            domain: domain.to_ascii_lowercase(),
            calendars: calendars.into_iter().map(Mutex::new).collect(),
        }
    }

    /// How many mailboxes exist.
    pub fn len(&self) -> usize {
        self.calendars.len()
    }

    /// True when there are no mailboxes.
    pub fn is_empty(&self) -> bool {
        self.calendars.is_empty()
    }

    /// The domain part of every address.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The address of mailbox `index`.
    pub fn address(&self, index: usize) -> String {
        format!("user{}@{}", index + 1, self.domain)
    }

    /// The index of `address` (case-insensitive), if it is one of ours.
    pub fn lookup(&self, address: &str) -> Option<usize> {
        let address = address.trim().to_ascii_lowercase();
        let (local, domain) = address.split_once('@')?;
        if domain != self.domain {
            return None;
        }
        let digits = local.strip_prefix("user")?;
        if digits.is_empty()
            || digits.starts_with('0')
            || !digits.bytes().all(|b| b.is_ascii_digit())
        {
            return None;
        }
        let n: usize = digits.parse().ok()?;
        (1..=self.calendars.len()).contains(&n).then(|| n - 1)
    }

    /// Runs `f` with mailbox `index`'s calendar locked.
    pub fn with<R>(&self, index: usize, f: impl FnOnce(&mut Calendar) -> R) -> R {
        let mut calendar = common::sync::lock(&self.calendars[index]);
        f(&mut calendar)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn precedence_and_mapping() {
        let t0 = ts("2026-11-23T09:00:00Z").as_second();
        let cal = Calendar::new(
            vec![
                (t0, t0 + 3600, BusyType::Tentative),
                (t0 + 1800, t0 + 2700, BusyType::Busy),
                (t0 + 2400, t0 + 7200, BusyType::WorkingElsewhere),
                (t0 + 7200, t0 + 9000, BusyType::Oof),
            ],
            Oof::Disabled,
        );
        let at = |secs: i64| cal.truth(Timestamp::from_second(secs).unwrap());
        assert_eq!(at(t0 - 1).calendar, CalendarState::Free);
        assert_eq!(at(t0).calendar, CalendarState::Tentative);
        assert_eq!(at(t0).availability(), "available");
        assert_eq!(at(t0 + 1800).calendar, CalendarState::Busy);
        assert_eq!(at(t0 + 1800).availability(), "in-a-meeting");
        assert_eq!(at(t0 + 2700).calendar, CalendarState::Tentative);
        assert_eq!(at(t0 + 3600).calendar, CalendarState::WorkingElsewhere);
        assert_eq!(at(t0 + 7200).calendar, CalendarState::Oof);
        assert_eq!(at(t0 + 7200).availability(), "away");
        assert_eq!(at(t0 + 9000).calendar, CalendarState::Free);
    }

    #[test]
    fn automatic_replies_mean_away() {
        let start = ts("2026-11-23T17:00:00Z");
        let end = ts("2026-11-24T08:00:00Z");
        let cal = Calendar::new(vec![], Oof::Scheduled { start, end });
        assert_eq!(
            cal.truth(ts("2026-11-23T16:59:59Z")).availability(),
            "available"
        );
        let inside = cal.truth(start);
        assert!(inside.out_of_office);
        assert_eq!(inside.availability(), "away");
        assert!(!cal.truth(end).out_of_office);
    }

    #[test]
    fn ids_round_trip_and_lookup() {
        assert_eq!(parse_item_id(&item_id(99_999, 7)), Some((99_999, 7)));
        assert_eq!(parse_item_id("AAMkADg4"), None);
        assert_eq!(
            parse_folder_id(&folder_id(12, "calendar")),
            Some((12, "calendar".into()))
        );
        let dir = Directory::new(
            "Example.TEST",
            vec![Calendar::default(), Calendar::default()],
        );
        assert_eq!(dir.lookup("User2@example.test"), Some(1));
        assert_eq!(dir.address(0), "user1@example.test");
        for bad in [
            "user3@example.test",
            "user0@example.test",
            "user01@example.test",
            "user1@other.test",
            "x",
        ] {
            assert_eq!(dir.lookup(bad), None, "{bad}");
        }
    }

    #[test]
    fn edits_validate_and_bump_versions() {
        let mut cal = Calendar::default();
        let item = cal
            .create(NewItem {
                start: 10,
                end: 20,
                busy: BusyType::Busy,
                subject: None,
            })
            .unwrap();
        assert_eq!(
            cal.update(
                item.number,
                ItemPatch {
                    end: Some(5),
                    ..ItemPatch::default()
                }
            ),
            Err(ModelError::EndBeforeStart)
        );
        let changed = cal
            .update(
                item.number,
                ItemPatch {
                    busy: Some(BusyType::Free),
                    ..ItemPatch::default()
                },
            )
            .unwrap();
        assert_eq!((changed.version, changed.busy), (2, BusyType::Free));
        cal.delete(item.number).unwrap();
        assert_eq!(cal.delete(item.number), Err(ModelError::ItemNotFound));
    }
}

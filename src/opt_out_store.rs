//! The users' calendar-presence choices, kept across restarts and reloads: one small
//! embedded database (redb) in the state directory, `opt-out.redb`, holding the
//! mailboxes whose users chose not to have their calendar shown, with when they chose.
//!
//! Why redb: it is pure Rust (no C library to build or patch), every write transaction
//! commits atomically and durably (copy-on-write pages, checksummed, fsync on commit),
//! and an interrupted commit leaves the previous state. A store that cannot be opened
//! or read (corrupt, unreadable, an entry that is not an address) is a start-up error
//! that names the file: it is never emptied or replaced silently, since that would
//! show the calendars of users who opted out.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

use common::mailbox::Mailbox;

/// Mailbox address → when the user opted out (Unix seconds).
const OPTED_OUT: TableDefinition<'_, &str, i64> = TableDefinition::new("calendar_presence_opt_out");

/// The file in the state directory.
pub const FILE_NAME: &str = "opt-out.redb";

/// The store cannot be used; says which file and why.
#[derive(Debug, thiserror::Error)]
#[error("state store {}: {message}", path.display())]
pub struct StoreError {
    /// The database file.
    pub path: PathBuf,
    /// What went wrong.
    pub message: String,
}

/// The users' calendar-presence choices, kept on disk (a redb database in the state
/// directory) so that they survive restarts.
#[derive(Debug)]
pub struct OptOutStore {
    db: Database,
    path: PathBuf,
}

impl OptOutStore {
    /// Opens (creating when missing) the store in `dir`, creating the directory too.
    pub fn open(dir: &Path) -> Result<OptOutStore, StoreError> {
        let path = dir.join(FILE_NAME);
        let fail = |message: String| StoreError {
            path: path.clone(),
            message,
        };
        std::fs::create_dir_all(dir)
            .map_err(|e| fail(format!("cannot create {}: {e}", dir.display())))?;
        let db = Database::create(&path).map_err(|e| {
            fail(format!(
                "cannot open ({e}); it is left as it is: restore it from a backup, or move it away to start with no user opted out"
            ))
        })?;
        let store = OptOutStore { db, path };
        // The table exists from the first start on, so that reading never has to
        // tell a missing table from a missing file.
        store.write(|_| Ok(()))?;
        Ok(store)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn error(&self, message: impl std::fmt::Display) -> StoreError {
        StoreError {
            path: self.path.clone(),
            message: message.to_string(),
        }
    }

    /// Runs `f` on the table in one write transaction and commits it.
    fn write(
        &self,
        f: impl FnOnce(&mut redb::Table<'_, &str, i64>) -> Result<(), redb::StorageError>,
    ) -> Result<(), StoreError> {
        let txn = self.db.begin_write().map_err(|e| self.error(e))?;
        {
            let mut table = txn.open_table(OPTED_OUT).map_err(|e| self.error(e))?;
            f(&mut table).map_err(|e| self.error(e))?;
        }
        txn.commit()
            .map_err(|e| self.error(format!("cannot commit: {e}")))
    }

    /// Every mailbox opted out.
    pub fn load(&self) -> Result<BTreeSet<Mailbox>, StoreError> {
        let txn = self.db.begin_read().map_err(|e| self.error(e))?;
        let table = txn.open_table(OPTED_OUT).map_err(|e| self.error(e))?;
        let mut out = BTreeSet::new();
        for row in table.iter().map_err(|e| self.error(e))? {
            let (key, _) = row.map_err(|e| self.error(e))?;
            let address = key.value();
            let mailbox = Mailbox::parse(address)
                .map_err(|e| self.error(format!("holds {address:?}, not an address: {e}")))?;
            out.insert(mailbox);
        }
        Ok(out)
    }

    /// Records that `mailbox`'s user opted out (at `at`, Unix seconds) or back in;
    /// durable when it returns.
    pub fn set(&self, mailbox: &Mailbox, opted_out: bool, at: i64) -> Result<(), StoreError> {
        self.write(|table| {
            if opted_out {
                table.insert(mailbox.as_str(), at)?;
            } else {
                table.remove(mailbox.as_str())?;
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("ews-presence-store-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn choices_survive_reopening() {
        let dir = dir("reopen");
        let a = common::mailbox::numbered(1);
        let b = common::mailbox::numbered(2);
        {
            let store = OptOutStore::open(&dir).unwrap();
            assert!(store.load().unwrap().is_empty());
            store.set(&a, true, 100).unwrap();
            store.set(&b, true, 101).unwrap();
            store.set(&b, false, 102).unwrap();
        }
        let store = OptOutStore::open(&dir).unwrap();
        assert_eq!(store.load().unwrap(), BTreeSet::from([a]));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_corrupt_store_is_an_error_naming_the_file_and_is_left_alone() {
        let dir = dir("corrupt");
        std::fs::create_dir_all(&dir).unwrap();
        let garbage = vec![0x5a_u8; 8192];
        std::fs::write(dir.join(FILE_NAME), &garbage).unwrap();
        let error = OptOutStore::open(&dir).expect_err("garbage does not open");
        let text = error.to_string();
        assert!(
            text.contains(FILE_NAME) && text.contains("left as it is"),
            "{text}"
        );
        assert_eq!(
            std::fs::read(dir.join(FILE_NAME)).unwrap(),
            garbage,
            "untouched"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}

//! Changes set aside: entries of the relay's log that this device cannot
//! read or apply, so that one bad entry cannot stop sync.
//!
//! An entry that does not decrypt with the workspace key, is malformed or
//! of a newer format, names a record other than its tag's, or holds bytes
//! the app refuses is *quarantined*: the engine records it
//! ([`Output::Quarantine`](crate::Output::Quarantine)), the driver saves it
//! here (meta [`META_QUARANTINE`]) before the cursor moves past it, and
//! sync goes on. The entry itself stays on the relay, so the list names
//! it by its position in the log ([`QuarantinedChange::seq`]) with the
//! reason in plain words, for Settings → Sync and sharing.
//!
//! The list keeps the newest [`MAX_KEPT`] entries and counts the older ones
//! (a member pushing garbage cannot fill the device's storage).

use rapport_core::ids::RecordId;
use rapport_core::storage::{Storage, StorageError};
use rapport_protocol::Seq;
use serde::{Deserialize, Serialize};

use crate::config::{corrupt, LoadError};

/// Meta key of the saved list.
pub const META_QUARANTINE: &str = "sync/quarantine";
/// Most entries kept in the list; older ones are only counted.
pub const MAX_KEPT: usize = 1_000;

/// One entry of the relay's log that was set aside.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuarantinedChange {
    /// Its position in the workspace's log on the relay.
    pub seq: Seq,
    /// The record it names, when it could be read that far.
    #[serde(default)]
    pub record: Option<RecordId>,
    /// What is wrong with it, in plain words.
    pub reason: String,
    /// The technical cause, for a support request.
    #[serde(default)]
    pub detail: String,
}

impl QuarantinedChange {
    /// One sentence for the settings list.
    pub fn message(&self) -> String {
        let reason = self.reason.trim_end_matches('.');
        format!("Change number {} from your team was set aside: {reason}.", self.seq)
    }
}

/// The changes set aside so far (what meta [`META_QUARANTINE`] holds).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuarantineList {
    /// Entries set aside before the newest [`MAX_KEPT`], no longer listed.
    #[serde(default)]
    pub older: u64,
    /// The newest entries, in log order.
    pub entries: Vec<QuarantinedChange>,
}

impl QuarantineList {
    /// Adds entries (one already listed, by position, is not added twice:
    /// a crash before the cursor passed it sets it aside again) and keeps
    /// the newest [`MAX_KEPT`].
    pub fn add(&mut self, new: impl IntoIterator<Item = QuarantinedChange>) {
        for change in new {
            if !self.entries.iter().any(|e| e.seq == change.seq) {
                self.entries.push(change);
            }
        }
        self.entries.sort_by_key(|e| e.seq);
        let excess = self.entries.len().saturating_sub(MAX_KEPT);
        if excess > 0 {
            self.entries.drain(..excess);
            self.older = self.older.saturating_add(excess as u64);
        }
    }

    /// How many entries were set aside in all.
    pub fn total(&self) -> u64 {
        self.older.saturating_add(self.entries.len() as u64)
    }

    /// Whether nothing was set aside.
    pub fn is_empty(&self) -> bool {
        self.total() == 0
    }
}

/// The saved list (empty when none is saved).
///
/// # Errors
/// [`LoadError`] when storage fails or the value is not a saved list.
pub async fn load_quarantine<S: Storage>(storage: &S) -> Result<QuarantineList, LoadError> {
    let Some(bytes) = storage.get_meta(META_QUARANTINE).await? else { return Ok(QuarantineList::default()) };
    serde_json::from_slice(&bytes)
        .map_err(|e| corrupt(META_QUARANTINE, format!("expected the list of changes set aside: {e}")))
}

/// Saves the list (replaces the saved one).
///
/// # Errors
/// [`StorageError`].
pub async fn save_quarantine<S: Storage>(storage: &S, list: &QuarantineList) -> Result<(), StorageError> {
    let json = serde_json::to_vec(list).map_err(|e| StorageError::WriteFailed(e.to_string()))?;
    storage.put_meta(META_QUARANTINE, &json).await
}

#[cfg(test)]
mod tests {
    use futures::executor::block_on;
    use rapport_core::storage::memory::MemoryStorage;

    use super::*;

    fn change(seq: u64) -> QuarantinedChange {
        QuarantinedChange {
            seq: Seq(seq),
            record: None,
            reason: "it could not be decrypted".into(),
            detail: "aead::Error".into(),
        }
    }

    #[test]
    fn the_list_keeps_each_entry_once_in_log_order_and_only_the_newest() {
        let mut list = QuarantineList::default();
        list.add([change(5), change(2), change(5)]);
        assert_eq!(list.entries.iter().map(|e| e.seq.0).collect::<Vec<_>>(), [2, 5]);
        list.add((10..10 + MAX_KEPT as u64).map(change));
        assert_eq!(list.entries.len(), MAX_KEPT);
        assert_eq!((list.older, list.total()), (2, MAX_KEPT as u64 + 2));
        assert_eq!(list.entries[0].seq, Seq(10));
    }

    #[test]
    fn the_list_round_trips_through_meta_and_a_damaged_one_is_reported() {
        block_on(async {
            let storage = MemoryStorage::new();
            assert!(load_quarantine(&storage).await.unwrap().is_empty());
            let mut list = QuarantineList::default();
            list.add([QuarantinedChange { record: Some(RecordId::from_bytes([1; 16])), ..change(3) }]);
            save_quarantine(&storage, &list).await.unwrap();
            assert_eq!(load_quarantine(&storage).await.unwrap(), list);
            storage.put_meta(META_QUARANTINE, b"[oops").await.unwrap();
            assert!(matches!(load_quarantine(&storage).await, Err(LoadError::Corrupt { key: META_QUARANTINE, .. })));
        });
    }

    #[test]
    fn the_message_says_which_change_and_why_in_words() {
        assert_eq!(change(7).message(), "Change number 7 from your team was set aside: it could not be decrypted.");
    }
}

//! The erasure protocol as a replica applies it: which local documents and
//! outbox entries a replica drops when it learns of tombstones, which remote
//! changes it may apply, which local changes it may push, and when it asks
//! the relay to drop a document.
//!
//! Pure functions over ids, outbox entries and [`Tombstones`]; the app and
//! the sync engine call them at four points:
//!
//! | when | call | then |
//! |---|---|---|
//! | app start (after reading the workspace), and after every merge into the workspace document (local erasure or received changes) | [`apply_tombstones`]`(held, outbox, tombstones)` | `Storage::remove(id)` for each [`Purge::remove`] (bytes, row, outbox entries, quarantine), `Storage::ack_outbox(&purge.drop_outbox)`, drop hydrated handles and index rows, tell other tabs |
//! | before merging a received change of record `id` | [`accept_remote`]`(id, tombstones)` | `false`: do not apply or store it, count it as handled for the cursor, and send the relay `DeleteDocument` for `id` again (an offline replica pushed it before it learned of the erasure) |
//! | before pushing an outbox entry | [`accept_outbox`]`(id, tombstones)` | `false`: do not push it; acknowledge it locally so it leaves the outbox |
//! | while connected | [`relay_deletions`]`(tombstones, confirmed)` | send `DeleteDocument` for each; when the relay answers `DocumentDeleted`, add the id to `confirmed` (kept in meta) |
//! | before saving a local edit of record `id` | [`accept_local`]`(id, tombstones)` | `false`: do not save; close the form and say the record was erased (another tab or member erased it while it was open) |
//!
//! The workspace document itself is never erased, so its changes always
//! flow; they are what carries tombstones to every replica.
//!
//! # Guarantees
//!
//! With these four calls in place, for any number of replicas and any order
//! in which they sync (checked by the property test below, on Automerge
//! documents with a model relay):
//!
//! - once every replica has synced the workspace, none holds an erased
//!   document, an outbox entry for one, or any byte of its data;
//! - a replica that was offline during the erasure and edited the contact
//!   meanwhile does not resurrect it: its edits are dropped from its outbox
//!   when it learns of the tombstone, and if it pushed them first, every
//!   replica that already knows refuses them and asks the relay to delete
//!   them again;
//! - the relay ends with no envelope of an erased document, because every
//!   replica asks it to delete each tombstoned document until it confirms,
//!   and again whenever it sees one come back;
//! - other records are untouched and still converge.
//!
//! # Limits
//!
//! A replica that never syncs again keeps its copy (nothing can reach it).
//! Between the moment a replica pushes an edit of an erased record and the
//! moment another replica refuses it, the relay holds that edit (encrypted;
//! the relay cannot read it). Data of the subject that was typed into other
//! records' free text is not found by the tombstone (see
//! [`super::references`]).

use std::collections::BTreeSet;

use crate::ids::RecordId;
use crate::storage::OutboxEntry;

use super::Tombstones;

/// What a replica must drop after learning of tombstones.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Purge {
    /// Erased records this replica still holds: remove every byte of each.
    pub remove: Vec<RecordId>,
    /// Outbox entries (by `seq`) of erased records: never push them.
    pub drop_outbox: Vec<u64>,
}

impl Purge {
    pub fn is_empty(&self) -> bool {
        self.remove.is_empty() && self.drop_outbox.is_empty()
    }
}

/// What to drop, given the records this replica holds (every id it has a
/// row or stored bytes for), its outbox and the workspace's tombstones.
/// Idempotent: calling it again after the purge was carried out returns an
/// empty [`Purge`], so it is safe at every start (which also finishes a
/// purge interrupted by a crash).
pub fn apply_tombstones(
    held: impl IntoIterator<Item = RecordId>,
    outbox: &[OutboxEntry],
    tombstones: &Tombstones,
) -> Purge {
    let remove: BTreeSet<RecordId> = held.into_iter().filter(|id| tombstones.is_erased(*id)).collect();
    let drop_outbox = outbox.iter().filter(|e| tombstones.is_erased(e.id)).map(|e| e.seq).collect();
    Purge { remove: remove.into_iter().collect(), drop_outbox }
}

/// Whether a change received for `record` may be merged and stored.
pub fn accept_remote(record: RecordId, tombstones: &Tombstones) -> bool {
    !tombstones.is_erased(record)
}

/// Whether a local edit of `record` may be saved: a form left open in
/// another tab would otherwise write an erased record back into storage.
pub fn accept_local(record: RecordId, tombstones: &Tombstones) -> bool {
    !tombstones.is_erased(record)
}

/// Whether a local change of `record` may be pushed.
pub fn accept_outbox(record: RecordId, tombstones: &Tombstones) -> bool {
    !tombstones.is_erased(record)
}

/// Tombstoned records the relay has not yet confirmed deleting for this
/// replica: send `DeleteDocument` for each (idempotent on the relay).
pub fn relay_deletions(tombstones: &Tombstones, confirmed: &BTreeSet<RecordId>) -> Vec<RecordId> {
    tombstones.ids().filter(|id| !confirmed.contains(id)).collect()
}

#[cfg(test)]
mod tests;

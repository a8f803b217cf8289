//! The engine's side of the workspace-wide privacy pages: anonymising a
//! contact in a new epoch (retention review) and reading any record's change
//! history (audit log) without keeping its document in memory.

use std::collections::hash_map::Entry;

use rapport_core::audit::{self, AuditEntry};
use rapport_core::ids::RecordId;
use rapport_core::privacy::retention::anonymise_document;
use rapport_core::record::{Record, Row};
use rapport_core::repo::{session_actor, OpenError};
use rapport_core::workspace::Workspace;

use super::Engine;
use crate::browser;

impl Engine {
    /// Anonymises a contact: its document is replaced by a fresh one of the
    /// next epoch holding only the anonymised contact, so the dropped values
    /// leave this device's storage together with their history
    /// ([`rapport_core::repo::Repo::replace_epoch`]). Returns the new row.
    ///
    /// In a shared workspace the same write queues the new document as a
    /// snapshot outbox entry: sync sends it as `ReplaceWithSnapshot`, the
    /// relay drops the old envelopes, and every other device adopts the new
    /// epoch when it next syncs (dropping its own unsent edits of the old
    /// one). The caller tells the sync driver (`SyncService::local_changes`).
    ///
    /// # Errors
    /// A plain-language reason; the contact is then unchanged.
    pub async fn anonymise(&self, id: RecordId, ws: &Workspace) -> Result<Row, String> {
        let now = browser::now();
        let mut handles = self.handles.lock().await;
        let handle = match handles.entry(id) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(slot) => slot.insert(self.repo.open_doc(id, now).await.map_err(|e| match e {
                OpenError::NotFound(_) => "it is no longer on this device.".to_owned(),
                other => format!("it could not be opened: {other}."),
            })?),
        };
        // A new actor for the new epoch (see `privacy::epoch`).
        let actor = session_actor(self.member, browser::random());
        let (fresh, contact) = anonymise_document(handle.doc_mut(), ws, now, self.member, actor)
            .map_err(|e| format!("it could not be anonymised: {e}."))?;
        let row = contact.row();
        self.repo.replace_epoch(handle, fresh, &row).await.map_err(|e| format!("{e}."))?;
        self.unsaved.borrow_mut().remove(&id);
        Ok(row)
    }

    /// Who changed what and when in any record, newest first: from memory
    /// when the record is hydrated, else read from storage and dropped again
    /// (the audit log reads every record; keeping them all would fill memory).
    ///
    /// # Errors
    /// Why the record could not be read.
    pub async fn history_of(&self, id: RecordId) -> Result<Vec<AuditEntry>, String> {
        {
            let mut handles = self.handles.lock().await;
            if let Some(handle) = handles.get_mut(&id) {
                return Ok(audit::history(handle.doc_mut()));
            }
        }
        let mut handle = self.repo.open_doc(id, browser::now()).await.map_err(|e| e.to_string())?;
        Ok(audit::history(handle.doc_mut()))
    }
}

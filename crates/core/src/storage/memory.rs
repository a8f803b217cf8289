//! An in-memory [`Storage`] for native tests. It keeps rows in their encoded
//! form, like the browser store, so tests can corrupt bytes and check that
//! corruption is reported rather than repaired.

use std::cell::RefCell;
use std::collections::BTreeMap;

use super::{
    decode_row, encode_row, Append, OutboxEntry, OutboxKind, Quarantined, RowsLoad, Storage, StorageError, StoredDoc,
};
use crate::ids::RecordId;
use crate::record::Row;

#[derive(Debug, Default)]
struct Inner {
    snapshots: BTreeMap<RecordId, Vec<u8>>,
    chunks: BTreeMap<(RecordId, u64), Vec<u8>>,
    next_seq: u64,
    rows: BTreeMap<String, String>,
    quarantine: BTreeMap<String, Quarantined>,
    outbox: BTreeMap<u64, (RecordId, Vec<u8>, OutboxKind)>,
    meta: BTreeMap<String, Vec<u8>>,
    /// When set, every write fails with this error (simulates a full disk).
    fail_writes: Option<StorageError>,
}

impl Inner {
    fn remove_chunks(&mut self, id: RecordId) {
        self.chunks.retain(|(doc, _), _| *doc != id);
    }
}

#[derive(Debug, Default)]
pub struct MemoryStorage {
    inner: RefCell<Inner>,
}

impl MemoryStorage {
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes every following write fail with `error` (or succeed again with `None`).
    pub fn fail_writes(&self, error: Option<StorageError>) {
        self.inner.borrow_mut().fail_writes = error;
    }

    /// Overwrites the bytes of the document's most recent chunk (tests).
    pub fn corrupt_last_chunk(&self, id: RecordId, bytes: Vec<u8>) -> bool {
        let mut inner = self.inner.borrow_mut();
        let key = inner.chunks.range((id, 0)..=(id, u64::MAX)).next_back().map(|(k, _)| *k);
        match key {
            Some(k) => {
                inner.chunks.insert(k, bytes);
                true
            }
            None => false,
        }
    }

    /// Overwrites a stored row with arbitrary text (tests).
    pub fn corrupt_row(&self, id: RecordId, text: &str) {
        self.inner.borrow_mut().rows.insert(id.to_string(), text.to_owned());
    }

    /// Number of chunks stored for a document.
    pub fn chunk_count(&self, id: RecordId) -> usize {
        self.inner.borrow().chunks.range((id, 0)..=(id, u64::MAX)).count()
    }

    /// Every stored byte, concatenated: for tests that search raw storage.
    pub fn raw_bytes(&self) -> Vec<u8> {
        let inner = self.inner.borrow();
        let mut out = Vec::new();
        inner.snapshots.values().for_each(|v| out.extend_from_slice(v));
        inner.chunks.values().for_each(|v| out.extend_from_slice(v));
        inner.rows.values().for_each(|v| out.extend_from_slice(v.as_bytes()));
        inner.outbox.values().for_each(|(_, v, _)| out.extend_from_slice(v));
        out
    }

    fn check_writable(&self) -> Result<(), StorageError> {
        match &self.inner.borrow().fail_writes {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        }
    }
}

impl Storage for MemoryStorage {
    async fn rows(&self) -> Result<RowsLoad, StorageError> {
        let inner = self.inner.borrow();
        let mut load = RowsLoad::default();
        for (key, text) in &inner.rows {
            match decode_row(text) {
                Ok(row) => load.rows.push(row),
                Err(reason) => load.unreadable.push((key.clone(), reason)),
            }
        }
        Ok(load)
    }

    async fn load(&self, id: RecordId) -> Result<Option<StoredDoc>, StorageError> {
        let inner = self.inner.borrow();
        let doc = StoredDoc {
            snapshot: inner.snapshots.get(&id).cloned(),
            chunks: inner.chunks.range((id, 0)..=(id, u64::MAX)).map(|(_, v)| v.clone()).collect(),
        };
        Ok((!doc.is_empty()).then_some(doc))
    }

    async fn append(&self, appends: &[Append]) -> Result<(), StorageError> {
        self.check_writable()?;
        let mut inner = self.inner.borrow_mut();
        for a in appends {
            let seq = inner.next_seq;
            inner.next_seq += 1;
            let kind = if a.replace {
                inner.remove_chunks(a.id);
                inner.outbox.retain(|_, (doc, _, _)| *doc != a.id);
                inner.snapshots.insert(a.id, a.chunk.clone());
                if a.row.is_none() {
                    inner.rows.remove(&a.id.to_string());
                }
                OutboxKind::Snapshot
            } else {
                inner.chunks.insert((a.id, seq), a.chunk.clone());
                OutboxKind::Changes
            };
            if let Some(row) = &a.row {
                inner.rows.insert(a.id.to_string(), encode_row(row));
            }
            if a.outbox {
                inner.outbox.insert(seq, (a.id, a.chunk.clone(), kind));
            }
        }
        Ok(())
    }

    async fn compact(
        &self,
        id: RecordId,
        snapshot: &[u8],
        row: &Row,
        outbox: Option<&[u8]>,
    ) -> Result<(), StorageError> {
        self.check_writable()?;
        let mut inner = self.inner.borrow_mut();
        if let Some(bytes) = outbox {
            let seq = inner.next_seq;
            inner.next_seq += 1;
            inner.outbox.insert(seq, (id, bytes.to_vec(), OutboxKind::Changes));
        }
        inner.remove_chunks(id);
        inner.snapshots.insert(id, snapshot.to_vec());
        inner.rows.insert(id.to_string(), encode_row(row));
        Ok(())
    }

    async fn remove(&self, id: RecordId) -> Result<(), StorageError> {
        self.check_writable()?;
        let mut inner = self.inner.borrow_mut();
        inner.remove_chunks(id);
        inner.snapshots.remove(&id);
        inner.outbox.retain(|_, (doc, _, _)| *doc != id);
        inner.rows.remove(&id.to_string());
        inner.quarantine.remove(&id.to_string());
        Ok(())
    }

    async fn enqueue(&self, entries: &[(RecordId, Vec<u8>)]) -> Result<(), StorageError> {
        self.check_writable()?;
        let mut inner = self.inner.borrow_mut();
        for (id, bytes) in entries {
            let seq = inner.next_seq;
            inner.next_seq += 1;
            inner.outbox.insert(seq, (*id, bytes.clone(), OutboxKind::Changes));
        }
        Ok(())
    }

    async fn outbox(&self, limit: usize) -> Result<Vec<OutboxEntry>, StorageError> {
        let inner = self.inner.borrow();
        Ok(inner
            .outbox
            .iter()
            .take(limit)
            .map(|(seq, (id, bytes, kind))| OutboxEntry { seq: *seq, id: *id, bytes: bytes.clone(), kind: *kind })
            .collect())
    }

    async fn ack_outbox(&self, seqs: &[u64]) -> Result<(), StorageError> {
        self.check_writable()?;
        let mut inner = self.inner.borrow_mut();
        for seq in seqs {
            inner.outbox.remove(seq);
        }
        Ok(())
    }

    async fn quarantine(&self, entry: &Quarantined) -> Result<(), StorageError> {
        self.check_writable()?;
        self.inner.borrow_mut().quarantine.insert(entry.key.clone(), entry.clone());
        Ok(())
    }

    async fn quarantined(&self) -> Result<Vec<Quarantined>, StorageError> {
        Ok(self.inner.borrow().quarantine.values().cloned().collect())
    }

    async fn get_meta(&self, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self.inner.borrow().meta.get(key).cloned())
    }

    async fn put_meta(&self, key: &str, value: &[u8]) -> Result<(), StorageError> {
        self.check_writable()?;
        self.inner.borrow_mut().meta.insert(key.to_owned(), value.to_vec());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::executor::block_on;

    #[test]
    fn the_memory_store_passes_the_storage_conformance_suite() {
        block_on(crate::storage::conformance::run_all(|| async { MemoryStorage::new() }));
    }
}

//! The storage contract: what Rapport keeps per document and how it is
//! written. Browser IndexedDB (in the app) and [`memory::MemoryStorage`]
//! (here, for native tests) both implement [`Storage`] and both must pass
//! [`conformance`].
//!
//! Per document: an optional compacted snapshot plus incremental change
//! chunks; appending a chunk and replacing the materialised row happen in
//! one atomic write, so a row never describes changes that are not stored.
//! Compaction replaces snapshot and chunks with one new snapshot, also
//! atomically.
//!
//! The outbox holds local changes that the sync engine has not yet seen
//! acknowledged by the relay. An outbox entry is written in the same
//! transaction as the edit it carries, so an edit is never durable locally
//! yet forgotten by sync; it is deleted only when the relay acknowledged it.
//!
//! A record rewritten without history (a new epoch,
//! [`crate::privacy::epoch`]) is written with [`Append::replace`]: its whole
//! new document replaces the snapshot, every chunk and every outbox entry of
//! the record in the same transaction, and is queued, when sync is on, as
//! one [`OutboxKind::Snapshot`] entry (sent as the relay's
//! `ReplaceWithSnapshot`, so the relay drops the old envelopes too).

pub mod conformance;
pub mod memory;

use crate::ids::RecordId;
use crate::record::Row;
use crate::Timestamp;

/// Bytes stored for one document, in the order they were written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoredDoc {
    pub snapshot: Option<Vec<u8>>,
    pub chunks: Vec<Vec<u8>>,
}

impl StoredDoc {
    pub fn is_empty(&self) -> bool {
        self.snapshot.is_none() && self.chunks.is_empty()
    }
}

/// One atomic unit of an edit: a new change chunk and the row it produces.
#[derive(Debug, Clone)]
pub struct Append {
    pub id: RecordId,
    pub chunk: Vec<u8>,
    /// The record's new row; `None` leaves the row as it is (changes
    /// received before the record is readable), except with
    /// [`Append::replace`], where it removes the row (it describes the
    /// history being replaced).
    pub row: Option<Row>,
    /// Also queue the chunk in the outbox for sync (local edits while sync
    /// is on; never for changes received from sync). With
    /// [`Append::replace`] it is queued as an [`OutboxKind::Snapshot`].
    pub outbox: bool,
    /// `chunk` is the record's whole document in a new history (an epoch,
    /// [`crate::privacy::epoch`]): it becomes the record's snapshot, and
    /// every chunk and every outbox entry of the record is deleted, in the
    /// same transaction, so no byte of the old history stays.
    pub replace: bool,
}

impl Append {
    /// A change chunk of `id` with its row (not replacing, not queued).
    pub fn chunk(id: RecordId, chunk: Vec<u8>, row: Option<Row>) -> Self {
        Self { id, chunk, row, outbox: false, replace: false }
    }
}

/// What an outbox entry carries, which decides how it is sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum OutboxKind {
    /// Change chunks (or a whole document) to add to the record's history:
    /// pushed as envelopes.
    #[default]
    Changes,
    /// The record's whole document in a new epoch, replacing its history:
    /// sent as `ReplaceWithSnapshot`, so the relay deletes the envelopes it
    /// covers.
    Snapshot,
}

/// A local change waiting to be acknowledged by the relay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxEntry {
    /// Position in the outbox; entries come back in this order.
    pub seq: u64,
    pub id: RecordId,
    pub bytes: Vec<u8>,
    pub kind: OutboxKind,
}

impl OutboxEntry {
    /// An entry of change chunks.
    pub fn changes(seq: u64, id: RecordId, bytes: Vec<u8>) -> Self {
        Self { seq, id, bytes, kind: OutboxKind::Changes }
    }
}

/// A record set aside because its stored bytes could not be read.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Quarantined {
    /// The record id, or the raw storage key when even that was unreadable.
    pub key: String,
    pub reason: String,
    pub at: Timestamp,
}

/// All materialised rows, plus the keys of rows that could not be decoded
/// (reported, never silently dropped).
#[derive(Debug, Clone, Default)]
pub struct RowsLoad {
    pub rows: Vec<Row>,
    pub unreadable: Vec<(String, String)>,
}

/// What can go wrong talking to storage, in words a user can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StorageError {
    #[error(
        "the browser's storage is full: free some space or allow this site more storage; the change was not saved"
    )]
    QuotaExceeded,
    #[error("the local database could not be opened: {0}")]
    Unavailable(String),
    #[error("saving to the local database failed: {0}")]
    WriteFailed(String),
    #[error("reading from the local database failed: {0}")]
    ReadFailed(String),
}

/// Durable storage for documents, rows and a little metadata.
///
/// Futures are not `Send`: the browser implementation lives on the main
/// thread.
#[allow(async_fn_in_trait)]
pub trait Storage {
    /// Every materialised row.
    ///
    /// # Errors
    /// [`StorageError::ReadFailed`] or [`StorageError::Unavailable`].
    async fn rows(&self) -> Result<RowsLoad, StorageError>;

    /// Snapshot and chunks of one document; `None` if nothing is stored.
    ///
    /// # Errors
    /// [`StorageError::ReadFailed`].
    async fn load(&self, id: RecordId) -> Result<Option<StoredDoc>, StorageError>;

    /// [`Storage::load`] of several documents, in the order of `ids`. A
    /// store that can should read them together (IndexedDB: one
    /// transaction); the default loads them one at a time.
    ///
    /// # Errors
    /// [`StorageError::ReadFailed`].
    async fn load_many(&self, ids: &[RecordId]) -> Result<Vec<Option<StoredDoc>>, StorageError> {
        let mut docs = Vec::with_capacity(ids.len());
        for id in ids {
            docs.push(self.load(*id).await?);
        }
        Ok(docs)
    }

    /// Appends each chunk and replaces each row, all in one transaction:
    /// either every append is durable when this returns `Ok`, or none is.
    /// An append with [`Append::replace`] instead replaces the record's
    /// snapshot, chunks and outbox entries (see there); later appends of
    /// the same record in the batch follow it.
    ///
    /// # Errors
    /// [`StorageError::QuotaExceeded`] or [`StorageError::WriteFailed`];
    /// nothing was written.
    async fn append(&self, appends: &[Append]) -> Result<(), StorageError>;

    /// Replaces the document's snapshot and all its chunks with `snapshot`
    /// and its row with `row`, atomically; `outbox`, when given, is queued
    /// in the same transaction (the local change the compaction includes).
    ///
    /// # Errors
    /// As [`Storage::append`]; the previous bytes stay intact on error.
    async fn compact(
        &self,
        id: RecordId,
        snapshot: &[u8],
        row: &Row,
        outbox: Option<&[u8]>,
    ) -> Result<(), StorageError>;

    /// Queues bytes for sync without storing them as chunks (the first
    /// upload of records that existed before sync was turned on).
    ///
    /// # Errors
    /// [`StorageError::WriteFailed`] or [`StorageError::QuotaExceeded`].
    async fn enqueue(&self, entries: &[(RecordId, Vec<u8>)]) -> Result<(), StorageError>;

    /// Up to `limit` outbox entries, oldest first.
    ///
    /// # Errors
    /// [`StorageError::ReadFailed`].
    async fn outbox(&self, limit: usize) -> Result<Vec<OutboxEntry>, StorageError>;

    /// Deletes acknowledged outbox entries (unknown seqs are ignored).
    ///
    /// # Errors
    /// [`StorageError::WriteFailed`].
    async fn ack_outbox(&self, seqs: &[u64]) -> Result<(), StorageError>;

    /// Removes every byte stored for the document: snapshot, chunks, row,
    /// outbox entries and any quarantine entry.
    ///
    /// # Errors
    /// [`StorageError::WriteFailed`].
    async fn remove(&self, id: RecordId) -> Result<(), StorageError>;

    /// Sets a record aside. Its bytes are kept for a later repair or export.
    ///
    /// # Errors
    /// [`StorageError::WriteFailed`].
    async fn quarantine(&self, entry: &Quarantined) -> Result<(), StorageError>;

    /// Every quarantined record.
    ///
    /// # Errors
    /// [`StorageError::ReadFailed`].
    async fn quarantined(&self) -> Result<Vec<Quarantined>, StorageError>;

    /// A small metadata value (workspace id, device actor…).
    ///
    /// # Errors
    /// [`StorageError::ReadFailed`].
    async fn get_meta(&self, key: &str) -> Result<Option<Vec<u8>>, StorageError>;

    /// Writes a metadata value.
    ///
    /// # Errors
    /// [`StorageError::WriteFailed`] or [`StorageError::QuotaExceeded`].
    async fn put_meta(&self, key: &str, value: &[u8]) -> Result<(), StorageError>;
}

/// Rows are stored as JSON text: readable in devtools, cheap to parse, and
/// independent of the storage engine.
pub fn encode_row(row: &Row) -> String {
    // Serialising a plain struct of strings and numbers cannot fail.
    serde_json::to_string(row).unwrap_or_default()
}

/// # Errors
/// A message saying why the stored row is unreadable.
pub fn decode_row(text: &str) -> Result<Row, String> {
    serde_json::from_str(text).map_err(|e| format!("stored row is not valid: {e}"))
}

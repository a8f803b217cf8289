//! The document repository: hydrates records from [`Storage`] on demand and
//! persists every edit as an incremental change chunk together with its
//! materialised row, compacting a document once its chunks pile up.
//!
//! Nothing here knows about a particular record type: it works through the
//! [`Record`] trait, so every kind in the workspace shares one storage path.

use std::cell::Cell;

use automerge::{ActorId, AutoCommit, ChangeHash};

use crate::doc::{DecodeError, EncodeError};
use crate::ids::{MemberId, RecordId};
use crate::record::{Record, Row};
use crate::storage::{Append, Quarantined, Storage, StorageError};
use crate::Timestamp;

/// A document compacts into one snapshot once it has this many chunks.
pub const COMPACT_AFTER_CHUNKS: usize = 32;

/// A hydrated document and what of it is already durable.
#[derive(Debug)]
pub struct DocHandle {
    pub id: RecordId,
    doc: AutoCommit,
    /// Heads already in storage; changes after them are not yet durable.
    persisted: Vec<ChangeHash>,
    chunks: usize,
}

impl DocHandle {
    pub fn doc(&self) -> &AutoCommit {
        &self.doc
    }

    pub fn doc_mut(&mut self) -> &mut AutoCommit {
        &mut self.doc
    }

    /// True when the document holds changes that storage does not have yet
    /// (a write failed and is waiting for a retry).
    pub fn has_unsaved_changes(&mut self) -> bool {
        self.doc.get_heads() != self.persisted
    }

    /// Chunks stored since the last snapshot.
    pub fn chunk_count(&self) -> usize {
        self.chunks
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    #[error("record {0} does not exist on this device")]
    NotFound(RecordId),
    #[error("record {id} could not be read and was set aside: {reason}")]
    Corrupt { id: RecordId, reason: String },
    #[error(transparent)]
    Storage(#[from] StorageError),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SaveError {
    /// The edit is kept in memory and written by the next save or retry.
    #[error("{0}")]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Encode(#[from] EncodeError),
}

/// The Automerge actor of this device session: the member id followed by a
/// per-session suffix. Two tabs of one member never share an actor (which
/// would corrupt documents), and every change names its author.
pub fn session_actor(member: MemberId, session: [u8; 8]) -> ActorId {
    let mut bytes = member.as_uuid().as_bytes().to_vec();
    bytes.extend_from_slice(&session);
    ActorId::from(bytes)
}

/// The member who made changes under `actor`, if it follows [`session_actor`].
pub fn actor_member(actor: &ActorId) -> Option<MemberId> {
    let bytes: [u8; 16] = actor.to_bytes().get(..16)?.try_into().ok()?;
    Some(MemberId::from_bytes(bytes))
}

pub struct Repo<S> {
    storage: S,
    actor: ActorId,
    /// Queue local changes in the outbox (sync is configured).
    outbox: Cell<bool>,
}

impl<S: Storage> Repo<S> {
    pub fn new(storage: S, actor: impl Into<ActorId>) -> Self {
        Self { storage, actor: actor.into(), outbox: Cell::new(false) }
    }

    /// Turns queueing of local changes for sync on or off.
    pub fn set_outbox(&self, on: bool) {
        self.outbox.set(on);
    }

    pub fn storage(&self) -> &S {
        &self.storage
    }

    pub fn actor(&self) -> &ActorId {
        &self.actor
    }

    /// Creates the document for a new record and stores it with its row.
    ///
    /// # Errors
    /// [`SaveError`]; nothing is stored on error.
    pub async fn create<R: Record>(&self, record: &R) -> Result<DocHandle, SaveError> {
        let mut doc = AutoCommit::new().with_actor(self.actor.clone());
        crate::doc::init_root(&mut doc, R::KIND.as_str(), R::SCHEMA)?;
        record.write_doc(&mut doc)?;
        let mut handle = DocHandle { id: record.id(), doc, persisted: Vec::new(), chunks: 0 };
        self.persist(&mut handle, record.row()).await?;
        Ok(handle)
    }

    /// Loads a document and reads it as `R`.
    ///
    /// # Errors
    /// [`OpenError::Corrupt`] when the stored bytes or the record in them
    /// cannot be read; the record is then quarantined.
    pub async fn open<R: Record>(&self, id: RecordId, now: Timestamp) -> Result<(DocHandle, R), OpenError> {
        let handle = self.open_doc(id, now).await?;
        match R::from_doc(&handle.doc) {
            Ok(record) => Ok((handle, record)),
            Err(e) => Err(self.set_aside(id, &e.to_string(), now).await),
        }
    }

    /// Loads a document without interpreting it.
    ///
    /// # Errors
    /// As [`Repo::open`].
    pub async fn open_doc(&self, id: RecordId, now: Timestamp) -> Result<DocHandle, OpenError> {
        let stored = self.storage.load(id).await?.ok_or(OpenError::NotFound(id))?;
        let chunks = stored.chunks.len();
        match hydrate(stored.snapshot.as_deref(), &stored.chunks) {
            Ok(mut doc) => {
                doc.set_actor(self.actor.clone());
                let persisted = doc.get_heads();
                Ok(DocHandle { id, doc, persisted, chunks })
            }
            Err(e) => Err(self.set_aside(id, &e.to_string(), now).await),
        }
    }

    /// Writes `record` into its document and makes the change durable.
    ///
    /// # Errors
    /// [`SaveError::Storage`] when storage refused the write: the change
    /// stays in the handle and the next [`Repo::save`] or [`Repo::retry`]
    /// writes it.
    pub async fn save<R: Record>(&self, handle: &mut DocHandle, record: &R) -> Result<(), SaveError> {
        record.write_doc(&mut handle.doc)?;
        self.persist(handle, record.row()).await
    }

    /// Writes whatever the handle holds that storage does not.
    ///
    /// # Errors
    /// As [`Repo::save`].
    pub async fn retry(&self, handle: &mut DocHandle, row: Row) -> Result<(), SaveError> {
        self.persist(handle, row).await
    }

    async fn persist(&self, handle: &mut DocHandle, row: Row) -> Result<(), SaveError> {
        let heads = handle.doc.get_heads();
        if heads == handle.persisted {
            return Ok(());
        }
        let outbox = self.outbox.get();
        if handle.chunks + 1 >= COMPACT_AFTER_CHUNKS {
            let snapshot = handle.doc.save();
            let queued = outbox.then(|| handle.doc.save_after(&handle.persisted));
            self.storage.compact(handle.id, &snapshot, &row, queued.as_deref()).await?;
            handle.chunks = 0;
        } else {
            let chunk = handle.doc.save_after(&handle.persisted);
            self.storage.append(&[Append { id: handle.id, chunk, row: Some(row), outbox }]).await?;
            handle.chunks += 1;
        }
        handle.persisted = heads;
        Ok(())
    }

    /// Stores many new records in one write (imports, generated workspaces).
    ///
    /// # Errors
    /// [`SaveError`]; nothing is stored on error.
    pub async fn create_many<R: Record>(&self, records: &[R]) -> Result<(), SaveError> {
        let mut appends = Vec::with_capacity(records.len());
        for record in records {
            let mut doc = AutoCommit::new().with_actor(self.actor.clone());
            crate::doc::init_root(&mut doc, R::KIND.as_str(), R::SCHEMA)?;
            record.write_doc(&mut doc)?;
            appends.push(Append {
                id: record.id(),
                chunk: doc.save(),
                row: Some(record.row()),
                outbox: self.outbox.get(),
            });
        }
        self.storage.append(&appends).await?;
        Ok(())
    }

    /// Merges changes received from another replica into the record's
    /// document and stores them with the record's new row. Applying the same
    /// changes twice is harmless (Automerge ignores changes it has).
    /// `handle` is the hydrated document when the caller holds one.
    ///
    /// # Errors
    /// [`ApplyError::Undecodable`] when the bytes are not Automerge changes
    /// (nothing is stored); storage errors otherwise.
    pub async fn apply_remote(
        &self,
        id: RecordId,
        handle: Option<&mut DocHandle>,
        bytes: &[u8],
        now: Timestamp,
    ) -> Result<Option<Row>, ApplyError> {
        // Check first: the incremental load would skip bad bytes.
        crate::chunks::check(bytes).map_err(|e| ApplyError::Undecodable(e.to_string()))?;
        let mut loaded;
        let handle = match handle {
            Some(h) => h,
            None => {
                loaded = match self.open_doc(id, now).await {
                    Ok(h) => h,
                    Err(OpenError::NotFound(_)) => DocHandle {
                        id,
                        doc: AutoCommit::new().with_actor(self.actor.clone()),
                        persisted: Vec::new(),
                        chunks: 0,
                    },
                    Err(OpenError::Storage(e)) => return Err(ApplyError::Storage(e)),
                    Err(e @ OpenError::Corrupt { .. }) => return Err(ApplyError::Corrupt(e.to_string())),
                };
                &mut loaded
            }
        };
        let before = handle.doc.get_heads();
        handle.doc.load_incremental(bytes).map_err(|e| ApplyError::Undecodable(e.to_string()))?;
        let after = handle.doc.get_heads();
        if before == after {
            return Ok(None);
        }
        // Changes whose dependencies have not arrived yet leave the document
        // unreadable as a record for now; the bytes are stored all the same.
        let row = materialise(&handle.doc).ok();
        let chunk = handle.doc.save_after(&handle.persisted);
        self.storage.append(&[Append { id, chunk, row: row.clone(), outbox: false }]).await?;
        handle.persisted = after;
        handle.chunks += 1;
        Ok(row)
    }

    async fn set_aside(&self, id: RecordId, reason: &str, now: Timestamp) -> OpenError {
        let entry = Quarantined { key: id.to_string(), reason: reason.to_owned(), at: now };
        match self.storage.quarantine(&entry).await {
            Ok(()) => OpenError::Corrupt { id, reason: reason.to_owned() },
            Err(e) => OpenError::Storage(e),
        }
    }
}

/// Rebuilds a document from its snapshot and chunks.
///
/// Every byte is checked first ([`crate::chunks::check`]): Automerge's
/// incremental load skips a chunk it cannot parse, which would hide
/// corruption and lose edits silently.
///
/// # Errors
/// [`DecodeError::Automerge`] when any of the bytes are not Automerge data.
pub fn hydrate(snapshot: Option<&[u8]>, chunks: &[Vec<u8>]) -> Result<AutoCommit, DecodeError> {
    let mut doc = match snapshot {
        Some(bytes) => {
            crate::chunks::check(bytes)?;
            AutoCommit::load(bytes)?
        }
        None => AutoCommit::new(),
    };
    for chunk in chunks {
        crate::chunks::check(chunk)?;
        doc.load_incremental(chunk)?;
    }
    Ok(doc)
}

/// The row of any record document, whatever its kind.
///
/// # Errors
/// [`DecodeError`] when the document is not a readable record.
pub fn materialise(doc: &AutoCommit) -> Result<Row, DecodeError> {
    let kind = crate::doc::req_str(doc, &automerge::ROOT, "kind")?;
    match kind.parse::<crate::record::RecordKind>() {
        Ok(crate::record::RecordKind::Contact) => Ok(crate::contact::Contact::from_doc(doc)?.row()),
        Ok(crate::record::RecordKind::Workspace) => Ok(crate::workspace::Workspace::from_doc(doc)?.row()),
        _ => Err(DecodeError::Invalid {
            field: "kind".into(),
            reason: format!("this app cannot read {kind:?} records yet"),
        }),
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    #[error("received changes are not valid Automerge data: {0}")]
    Undecodable(String),
    #[error("{0}")]
    Corrupt(String),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

#[cfg(test)]
mod tests {
    use futures::executor::block_on;

    use super::*;
    use crate::contact::Contact;
    use crate::storage::memory::MemoryStorage;

    fn me() -> MemberId {
        MemberId::from_bytes([1; 16])
    }

    fn repo() -> Repo<MemoryStorage> {
        Repo::new(MemoryStorage::new(), session_actor(me(), [7; 8]))
    }

    fn contact(n: u8, name: &str) -> Contact {
        let mut c = Contact::new(RecordId::from_bytes([n; 16]), Timestamp::from_millis(1), me());
        c.given_name = name.into();
        c
    }

    const NOW: Timestamp = Timestamp::from_millis(5);

    #[test]
    fn an_edit_is_stored_as_one_small_chunk_with_its_row() {
        block_on(async {
            let repo = repo();
            let mut c = contact(1, "Ada");
            let mut h = repo.create(&c).await.unwrap();
            c.title = "Countess".into();
            repo.save(&mut h, &c).await.unwrap();
            assert_eq!(repo.storage().chunk_count(c.id), 2);
            let (_, loaded) = repo.open::<Contact>(c.id, NOW).await.unwrap();
            assert_eq!(loaded, c);
            let rows = repo.storage().rows().await.unwrap().rows;
            assert_eq!(rows[0].subtitle, "Countess");
        });
    }

    #[test]
    fn saving_an_unchanged_record_writes_nothing() {
        block_on(async {
            let repo = repo();
            let c = contact(1, "Ada");
            let mut h = repo.create(&c).await.unwrap();
            repo.save(&mut h, &c).await.unwrap();
            assert_eq!(repo.storage().chunk_count(c.id), 1);
        });
    }

    #[test]
    fn many_edits_compact_into_one_snapshot_that_loads_the_same() {
        block_on(async {
            let repo = repo();
            let mut c = contact(1, "Ada");
            let mut h = repo.create(&c).await.unwrap();
            for i in 0..(COMPACT_AFTER_CHUNKS * 2 + 3) {
                c.title = format!("title {i}");
                repo.save(&mut h, &c).await.unwrap();
            }
            assert!(repo.storage().chunk_count(c.id) < COMPACT_AFTER_CHUNKS);
            let stored = repo.storage().load(c.id).await.unwrap().unwrap();
            assert!(stored.snapshot.is_some());
            let (_, loaded) = repo.open::<Contact>(c.id, NOW).await.unwrap();
            assert_eq!(loaded, c);
        });
    }

    #[test]
    fn a_corrupted_chunk_quarantines_that_record_and_the_others_still_open() {
        block_on(async {
            let repo = repo();
            let mut ada = contact(1, "Ada");
            let grace = contact(2, "Grace");
            let mut h = repo.create(&ada).await.unwrap();
            repo.create(&grace).await.unwrap();
            ada.title = "Countess".into();
            repo.save(&mut h, &ada).await.unwrap();
            assert!(repo.storage().corrupt_last_chunk(ada.id, b"\x85\x6f\x4a\x83garbage".to_vec()));

            let err = repo.open::<Contact>(ada.id, NOW).await.unwrap_err();
            assert!(matches!(err, OpenError::Corrupt { id, .. } if id == ada.id), "{err:?}");
            let q = repo.storage().quarantined().await.unwrap();
            assert_eq!(q.len(), 1);
            assert_eq!(q[0].key, ada.id.to_string());
            let (_, g) = repo.open::<Contact>(grace.id, NOW).await.unwrap();
            assert_eq!(g.given_name, "Grace");
        });
    }

    #[test]
    fn an_unreadable_row_is_reported_not_dropped() {
        block_on(async {
            let repo = repo();
            repo.create(&contact(1, "Ada")).await.unwrap();
            repo.create(&contact(2, "Grace")).await.unwrap();
            repo.storage().corrupt_row(RecordId::from_bytes([2; 16]), "{not json");
            let load = repo.storage().rows().await.unwrap();
            assert_eq!(load.rows.len(), 1);
            assert_eq!(load.unreadable.len(), 1);
        });
    }

    #[test]
    fn a_failed_write_keeps_the_edit_and_a_retry_stores_it() {
        block_on(async {
            let repo = repo();
            let mut c = contact(1, "Ada");
            let mut h = repo.create(&c).await.unwrap();
            repo.storage().fail_writes(Some(StorageError::QuotaExceeded));
            c.title = "Countess".into();
            let err = repo.save(&mut h, &c).await.unwrap_err();
            assert_eq!(err, SaveError::Storage(StorageError::QuotaExceeded));
            assert!(h.has_unsaved_changes());

            repo.storage().fail_writes(None);
            repo.retry(&mut h, c.row()).await.unwrap();
            assert!(!h.has_unsaved_changes());
            let (_, loaded) = repo.open::<Contact>(c.id, NOW).await.unwrap();
            assert_eq!(loaded.title, "Countess");
        });
    }

    #[test]
    fn changes_name_the_member_who_made_them() {
        block_on(async {
            let repo = repo();
            let c = contact(1, "Ada");
            let mut h = repo.create(&c).await.unwrap();
            let actor = h.doc_mut().get_changes(&[]).first().map(|ch| ch.actor_id().clone()).unwrap();
            assert_eq!(actor_member(&actor), Some(me()));
        });
    }

    #[test]
    fn local_edits_are_queued_only_while_sync_is_on() {
        block_on(async {
            let repo = repo();
            let mut c = contact(1, "Ada");
            let mut h = repo.create(&c).await.unwrap();
            assert!(repo.storage().outbox(10).await.unwrap().is_empty());
            repo.set_outbox(true);
            c.title = "Countess".into();
            repo.save(&mut h, &c).await.unwrap();
            let queued = repo.storage().outbox(10).await.unwrap();
            assert_eq!(queued.len(), 1);
            assert_eq!(queued[0].id, c.id);
        });
    }

    #[test]
    fn edits_compacted_while_queued_still_reach_the_outbox() {
        block_on(async {
            let repo = repo();
            repo.set_outbox(true);
            let mut c = contact(1, "Ada");
            let mut h = repo.create(&c).await.unwrap();
            for i in 0..COMPACT_AFTER_CHUNKS + 2 {
                c.title = format!("t{i}");
                repo.save(&mut h, &c).await.unwrap();
            }
            let other = Repo::new(MemoryStorage::new(), session_actor(MemberId::from_bytes([2; 16]), [1; 8]));
            for e in repo.storage().outbox(1000).await.unwrap() {
                other.apply_remote(e.id, None, &e.bytes, NOW).await.unwrap();
            }
            let (_, copy) = other.open::<Contact>(c.id, NOW).await.unwrap();
            assert_eq!(copy, c, "the outbox alone rebuilds the record elsewhere");
        });
    }

    #[test]
    fn remote_changes_merge_into_the_local_copy_and_applying_twice_is_harmless() {
        block_on(async {
            let a = repo();
            a.set_outbox(true);
            let b = Repo::new(MemoryStorage::new(), session_actor(MemberId::from_bytes([2; 16]), [1; 8]));
            b.set_outbox(true);
            let mut c = contact(1, "Ada");
            a.create(&c).await.unwrap();
            let from_a = a.storage().outbox(10).await.unwrap();
            for e in &from_a {
                let row = b.apply_remote(e.id, None, &e.bytes, NOW).await.unwrap();
                assert_eq!(row.unwrap().title, "Ada");
            }
            assert!(b.storage().outbox(10).await.unwrap().is_empty(), "received changes are not sent back");
            assert_eq!(
                b.apply_remote(c.id, None, &from_a[0].bytes, NOW).await.unwrap(),
                None,
                "a duplicate changes nothing"
            );

            // B edits another field; A receives it and both fields survive.
            let (mut hb, mut cb) = b.open::<Contact>(c.id, NOW).await.unwrap();
            cb.company_name = "Engines".into();
            b.save(&mut hb, &cb).await.unwrap();
            let (mut ha, _) = a.open::<Contact>(c.id, NOW).await.unwrap();
            c.title = "Countess".into();
            a.save(&mut ha, &c).await.unwrap();
            for e in b.storage().outbox(10).await.unwrap() {
                a.apply_remote(e.id, Some(&mut ha), &e.bytes, NOW).await.unwrap();
            }
            let (_, merged) = a.open::<Contact>(c.id, NOW).await.unwrap();
            assert_eq!((merged.title.as_str(), merged.company_name.as_str()), ("Countess", "Engines"));
            let rows = a.storage().rows().await.unwrap().rows;
            assert_eq!(rows[0].subtitle, "Countess at Engines", "the row reflects the merge");
        });
    }

    #[test]
    fn bytes_that_are_not_changes_are_refused_and_nothing_is_stored() {
        block_on(async {
            let repo = repo();
            let id = RecordId::from_bytes([4; 16]);
            let err = repo.apply_remote(id, None, b"\x85\x6f\x4a\x83 not automerge", NOW).await.unwrap_err();
            assert!(matches!(err, ApplyError::Undecodable(_)));
            assert_eq!(repo.storage().load(id).await.unwrap(), None);
        });
    }

    #[test]
    fn a_record_stored_in_a_batch_opens_like_any_other() {
        block_on(async {
            let repo = repo();
            let batch: Vec<_> = (1..=20).map(|n| contact(n, &format!("c{n}"))).collect();
            repo.create_many(&batch).await.unwrap();
            assert_eq!(repo.storage().rows().await.unwrap().rows.len(), 20);
            let (_, c) = repo.open::<Contact>(RecordId::from_bytes([7; 16]), NOW).await.unwrap();
            assert_eq!(c.given_name, "c7");
        });
    }
}

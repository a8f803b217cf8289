//! The document repository: hydrates records from [`Storage`] on demand and
//! persists every edit as an incremental change chunk together with its
//! materialised row, compacting a document once its chunks pile up.
//!
//! Nothing here knows about a particular record type: it works through the
//! [`Record`] trait, so every kind in the workspace shares one storage path.

use automerge::{ActorId, AutoCommit, ChangeHash};

use crate::doc::{DecodeError, EncodeError};
use crate::ids::{MemberId, RecordId};
use crate::privacy::epoch::receive::{receive, Receive};
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

    /// The document's epoch ([`crate::privacy::epoch`]); 0 when never
    /// rewritten or when the field is unreadable.
    pub fn epoch(&self) -> u64 {
        crate::privacy::epoch::epoch(&self.doc).unwrap_or(0)
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
    /// The edit was made on the record as it was before a rewrite without
    /// history (an anonymisation, here or synced from elsewhere): writing it
    /// would bring back the values the rewrite removed. Nothing was written.
    #[error("it was anonymised after it was opened, so this edit of its old details was not written")]
    Rewritten,
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

/// Where the repo reads the time it stamps on local changes.
pub type Clock = Box<dyn Fn() -> Timestamp>;

pub struct Repo<S> {
    storage: S,
    actor: ActorId,
    /// Stamps every local change with its time (see [`Repo::with_clock`]).
    clock: Option<Clock>,
}

impl<S: Storage> Repo<S> {
    pub fn new(storage: S, actor: impl Into<ActorId>) -> Self {
        Self { storage, actor: actor.into(), clock: None }
    }

    /// Stamps every local change (create, save, retry, batch create) with
    /// the time `clock` gives when the change is committed, so the audit
    /// trail ([`crate::audit::history`]) shows when it happened. Without a
    /// clock changes carry Automerge's default time 0 and the audit trail
    /// falls back to the `updated_at` the change wrote. The clock is the
    /// caller's (the browser's in the app, a fixed one in tests): core still
    /// never reads one itself.
    #[must_use]
    pub fn with_clock(mut self, clock: impl Fn() -> Timestamp + 'static) -> Self {
        self.clock = Some(Box::new(clock));
        self
    }

    /// Commits the document's pending operations as one change stamped with
    /// the clock's time (nothing when there is no clock or nothing pending).
    fn stamp(&self, doc: &mut AutoCommit) {
        if let Some(clock) = &self.clock {
            crate::audit::commit(doc, clock());
        }
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

    /// Saves an edit made in a form opened on the record at `base` (its
    /// epoch and heads then, [`crate::form::Base`]): only what the form
    /// changed since is written, so edits made elsewhere meanwhile stay.
    ///
    /// The record is written into the document as it was at `base`
    /// (Automerge's isolation: the writers compare with the old values, so
    /// a field the form left alone produces no operation), and the change
    /// is then merged with everything that happened since. A field changed
    /// both in the form and elsewhere ends with both values, a conflict the
    /// record's page shows with a pick ([`crate::conflict`]); notes
    /// interleave; sets merge by union. Nothing is reverted silently.
    ///
    /// # Errors
    /// [`SaveError::Rewritten`] (nothing written) when the record was
    /// rewritten into another epoch since `base`, or `base` is not in its
    /// history; otherwise as [`Repo::save`].
    pub async fn save_since<R: Record>(
        &self,
        handle: &mut DocHandle,
        record: &R,
        base: &crate::form::Base,
    ) -> Result<(), SaveError> {
        if handle.epoch() != base.epoch || base.heads.iter().any(|h| handle.doc.get_change_by_hash(h).is_none()) {
            return Err(SaveError::Rewritten);
        }
        handle.doc.isolate(&base.heads);
        let written = record.write_doc(&mut handle.doc);
        // Committed inside the isolation, so the change depends on `base`
        // only; then the document returns to its latest state with it.
        self.stamp(&mut handle.doc);
        handle.doc.integrate();
        written?;
        let row = materialise(&handle.doc).map_err(|e| EncodeError(e.to_string()))?;
        self.persist(handle, row).await
    }

    /// Writes an edit made directly on the handle's document (a conflict
    /// pick) and the record's new row, read from the document.
    ///
    /// # Errors
    /// As [`Repo::save`].
    pub async fn save_doc(&self, handle: &mut DocHandle) -> Result<Row, SaveError> {
        let row = materialise(&handle.doc).map_err(|e| EncodeError(e.to_string()))?;
        self.persist(handle, row.clone()).await?;
        Ok(row)
    }

    /// Writes whatever the handle holds that storage does not.
    ///
    /// # Errors
    /// As [`Repo::save`].
    pub async fn retry(&self, handle: &mut DocHandle, row: Row) -> Result<(), SaveError> {
        self.persist(handle, row).await
    }

    /// Replaces the record's document with `fresh`, a rewrite without
    /// history of the next epoch ([`crate::privacy::epoch`], e.g. from
    /// [`crate::privacy::retention::anonymise_document`]), and its row with
    /// `row`. In one storage write ([`Append::replace`]): the new document
    /// replaces the old snapshot and every chunk, the record's unsent
    /// changes leave the outbox, and, while sync is on, the new document is
    /// queued whole as an [`OutboxKind::Snapshot`](crate::storage::OutboxKind)
    /// entry, which sync sends as `ReplaceWithSnapshot` so the relay drops
    /// the old envelopes and every replica adopts the new epoch. No byte of
    /// the old history stays in this device's storage.
    ///
    /// # Errors
    /// [`SaveError::Storage`]: the old document stays stored and the handle
    /// unchanged when the replacement could not be written.
    pub async fn replace_epoch(
        &self,
        handle: &mut DocHandle,
        mut fresh: AutoCommit,
        row: &Row,
    ) -> Result<(), SaveError> {
        self.stamp(&mut fresh);
        let snapshot = fresh.save();
        let append = Append { id: handle.id, chunk: snapshot, row: Some(row.clone()), outbox: true, replace: true };
        self.storage.append(&[append]).await?;
        handle.persisted = fresh.get_heads();
        handle.doc = fresh;
        handle.chunks = 0;
        Ok(())
    }

    async fn persist(&self, handle: &mut DocHandle, row: Row) -> Result<(), SaveError> {
        // Before anything reads the heads, which would commit the pending
        // operations without a time.
        self.stamp(&mut handle.doc);
        let heads = handle.doc.get_heads();
        if heads == handle.persisted {
            return Ok(());
        }
        // Every local change is queued, shared workspace or not: whether it
        // reaches the relay must not depend on whether this tab knew the
        // workspace was shared (another tab may have shared it since this
        // one opened). Sharing replaces what a local workspace queued with
        // its whole documents (`rapport_sync::turn_on`).
        let outbox = true;
        if handle.chunks + 1 >= COMPACT_AFTER_CHUNKS {
            let snapshot = handle.doc.save();
            let queued = outbox.then(|| handle.doc.save_after(&handle.persisted));
            self.storage.compact(handle.id, &snapshot, &row, queued.as_deref()).await?;
            handle.chunks = 0;
        } else {
            let chunk = handle.doc.save_after(&handle.persisted);
            self.storage.append(&[Append { outbox, ..Append::chunk(handle.id, chunk, Some(row)) }]).await?;
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
            self.stamp(&mut doc);
            appends.push(Append { outbox: true, ..Append::chunk(record.id(), doc.save(), Some(record.row())) });
        }
        self.storage.append(&appends).await?;
        Ok(())
    }

    /// Merges changes received from another replica into the record's
    /// document and stores them with the record's new row: a page of one,
    /// see [`Repo::apply_remote_many`] (which also decides what to do with
    /// a new epoch). Applying the same changes twice is harmless (Automerge
    /// ignores changes it has). `handle` is the hydrated document when the
    /// caller holds one.
    ///
    /// # Errors
    /// [`ApplyError::Undecodable`] when the bytes are not Automerge changes
    /// (nothing is stored); [`ApplyError::Corrupt`] when the stored copy is
    /// unreadable; storage errors otherwise.
    pub async fn apply_remote(
        &self,
        id: RecordId,
        handle: Option<&mut DocHandle>,
        bytes: &[u8],
        now: Timestamp,
    ) -> Result<Option<Row>, ApplyError> {
        let mut hydrated = std::collections::HashMap::new();
        let placeholder = || DocHandle { id, doc: AutoCommit::new(), persisted: Vec::new(), chunks: 0 };
        let mut handle = handle;
        if let Some(h) = handle.as_deref_mut() {
            hydrated.insert(id, std::mem::replace(h, placeholder()));
        }
        let applied = self.apply_remote_many(&[(id, bytes)], &mut hydrated, now).await;
        if let (Some(h), Some(held)) = (handle, hydrated.remove(&id)) {
            *h = held;
        }
        let mut applied = applied?;
        match applied.refused {
            Some((_, error)) => Err(error),
            None => Ok(applied.rows.pop()),
        }
    }

    /// Merges a page of changes received from other replicas, in one
    /// storage write: every changed record's new chunk and row go into a
    /// single [`Storage::append`] (one IndexedDB transaction), instead of one
    /// transaction per change. Documents the caller keeps hydrated are taken
    /// from `hydrated` and merged in place (an open page sees the changes);
    /// the others are read from storage together ([`Storage::load_many`]),
    /// merged, and dropped again once their bytes are computed.
    ///
    /// - Several changes of one record in the batch make one chunk and one
    ///   row; changes already held (duplicates, a page pulled again after a
    ///   crash) change nothing and store nothing.
    /// - **A change that cannot be applied is refused without losing the
    ///   others**: bytes that are not Automerge changes, or a record whose
    ///   stored copy is unreadable (it is quarantined, as by
    ///   [`Repo::open_doc`]). Every other change of the batch, before and
    ///   after it, is merged and stored; [`AppliedMany::refused`] names the
    ///   first refused one (its index in `changes`), so the sync cursor can
    ///   stop just before it. The changes after it are then received again
    ///   later, which is harmless.
    /// - The rows of the records that changed come back, one per record.
    /// - A hydrated document holding a local edit whose write failed: the
    ///   stored chunk carries that edit too, so it is also queued in the
    ///   outbox (while sync is on) instead of being stored unsent.
    /// - **Epochs** ([`crate::privacy::epoch::receive`]): each change is
    ///   first classified against the document. A rewrite of a newer epoch
    ///   (or the winner of two rewrites of the same epoch) is *adopted*: it
    ///   replaces the document, and in the same write its stored snapshot,
    ///   chunks and unsent outbox entries ([`Append::replace`]), and the row
    ///   is materialised from it. Before, the replica's consent events and
    ///   restriction the rewrite had not seen are replayed onto it
    ///   ([`crate::privacy::epoch::replay`]) as one change of this replica,
    ///   queued in the outbox in the same write while sync is on; when the
    ///   local copy's privacy actions cannot be read, the change is refused
    ///   ([`ApplyError::Replay`]) and the local copy kept. Changes of an
    ///   older epoch, and a losing
    ///   rewrite, are dropped: they count as applied and nothing of them is
    ///   stored, so an offline replica's edits cannot bring back values a
    ///   rewrite removed.
    ///
    /// Nothing is durable before this returns `Ok`.
    ///
    /// # Errors
    /// [`ApplyError::Storage`] when reading or writing failed: nothing of the
    /// batch was stored. Hydrated documents keep what was merged into them
    /// (like an edit whose write failed, the next save writes it), except
    /// that a document a new epoch replaced gets its old history back.
    pub async fn apply_remote_many(
        &self,
        changes: &[(RecordId, &[u8])],
        hydrated: &mut std::collections::HashMap<RecordId, DocHandle>,
        now: Timestamp,
    ) -> Result<AppliedMany, ApplyError> {
        // Each record's changes, in batch order, records in order of first
        // appearance: one document in memory at a time for those loaded here.
        let mut order: Vec<RecordId> = Vec::new();
        let mut by_record: std::collections::HashMap<RecordId, Vec<usize>> = std::collections::HashMap::new();
        for (index, (id, _)) in changes.iter().enumerate() {
            by_record
                .entry(*id)
                .or_insert_with(|| {
                    order.push(*id);
                    Vec::new()
                })
                .push(index);
        }
        let to_load: Vec<RecordId> = order.iter().copied().filter(|id| !hydrated.contains_key(id)).collect();
        let mut stored: std::collections::HashMap<RecordId, Option<crate::storage::StoredDoc>> =
            to_load.iter().copied().zip(self.storage.load_many(&to_load).await?).collect();

        let mut refused: Option<(usize, ApplyError)> = None;
        let mut refuse = |index: usize, error: ApplyError| {
            if refused.as_ref().is_none_or(|(first, _)| index < *first) {
                refused = Some((index, error));
            }
        };
        let mut appends = Vec::new();
        let mut rows = Vec::new();
        // New heads of the hydrated documents, recorded once the write is
        // durable, and whether their history was replaced.
        let mut written: Vec<(RecordId, Vec<ChangeHash>, bool)> = Vec::new();
        // Hydrated documents replaced by a new epoch, as they were before:
        // put back if the write fails, so memory never holds a history that
        // storage does not.
        let mut replaced_hydrated: Vec<(RecordId, AutoCommit)> = Vec::new();
        for id in &order {
            let indexes = &by_record[id];
            let mut loaded;
            let handle = match hydrated.get_mut(id) {
                Some(handle) => handle,
                None => {
                    loaded = match stored.remove(id).flatten() {
                        None => DocHandle {
                            id: *id,
                            doc: AutoCommit::new().with_actor(self.actor.clone()),
                            persisted: Vec::new(),
                            chunks: 0,
                        },
                        Some(doc) => match hydrate(doc.snapshot.as_deref(), &doc.chunks) {
                            Ok(mut am) => {
                                am.set_actor(self.actor.clone());
                                let persisted = am.get_heads();
                                DocHandle { id: *id, doc: am, persisted, chunks: doc.chunks.len() }
                            }
                            Err(e) => {
                                let error = match self.set_aside(*id, &e.to_string(), now).await {
                                    OpenError::Storage(s) => return Err(ApplyError::Storage(s)),
                                    corrupt => ApplyError::Corrupt(corrupt.to_string()),
                                };
                                refuse(indexes[0], error);
                                continue;
                            }
                        },
                    };
                    &mut loaded
                }
            };
            let untouched = handle.persisted.is_empty() && handle.doc.get_heads().is_empty();
            if let ([index], true) = (indexes.as_slice(), untouched) {
                // The common case of a first pull: one whole record new to
                // this device. One strict load checks every byte (as
                // `chunks::check` does) and builds the document at once; the
                // received bytes are then stored as they are. Bytes it
                // refuses (a change whose dependencies are not here yet, or
                // damage) take the careful path below, which decides.
                if let Some(mut doc) = strict_load(changes[*index].1, &self.actor) {
                    let row = materialise(&doc).ok();
                    appends.push(Append::chunk(*id, changes[*index].1.to_vec(), row.clone()));
                    rows.extend(row);
                    if let Some(held) = hydrated.get_mut(id) {
                        written.push((*id, doc.get_heads(), false));
                        held.doc = doc;
                    }
                    continue;
                }
            }
            let before = handle.doc.get_heads();
            // A local edit whose write failed is still only in memory: the
            // chunk below carries it too, so it must also reach the outbox.
            let unsaved_local = before != handle.persisted;
            let mut replaced = None;
            // The change replaying this replica's privacy actions onto an
            // adopted epoch (`privacy::epoch::replay`), to push.
            let mut replayed: Option<Vec<u8>> = None;
            for &index in indexes {
                let bytes = changes[index].1;
                // The epoch rule first (`privacy::epoch::receive`), which also
                // checks the bytes: the incremental load would skip bad ones.
                let undecodable = |e: &dyn std::fmt::Display| ApplyError::Undecodable(e.to_string());
                let merged = match receive(&mut handle.doc, bytes) {
                    Err(e) => Err(undecodable(&e)),
                    Ok(Receive::Merge) => handle.doc.load_incremental(bytes).map(|_| ()).map_err(|e| undecodable(&e)),
                    Ok(Receive::Adopt(doc)) => {
                        let mut doc = *doc;
                        doc.set_actor(self.actor.clone());
                        let adopted = doc.get_heads();
                        let mut old = std::mem::replace(&mut handle.doc, doc);
                        match crate::privacy::epoch::replay::replay(&mut old, &mut handle.doc) {
                            Ok(done) => {
                                // A replay made on an epoch adopted earlier in
                                // this batch went with it (this one covers it).
                                replayed = None;
                                if !done.is_empty() {
                                    self.stamp(&mut handle.doc);
                                    replayed = Some(handle.doc.save_after(&adopted));
                                }
                                replaced.get_or_insert(old);
                                Ok(())
                            }
                            // The local copy's privacy actions cannot be read:
                            // keep it rather than risk losing a withdrawal.
                            Err(e) => {
                                handle.doc = old;
                                Err(ApplyError::Replay(e))
                            }
                        }
                    }
                    // Old-epoch or losing bytes: applied as far as the cursor
                    // goes, and nothing of them is kept.
                    Ok(Receive::Drop(_)) => Ok(()),
                };
                if let Err(error) = merged {
                    refuse(index, error);
                }
            }
            let after = handle.doc.get_heads();
            if replaced.is_none() && before == after {
                continue;
            }
            // Changes whose dependencies have not arrived yet leave the
            // document unreadable as a record for now; stored all the same.
            let row = materialise(&handle.doc).ok();
            if let Some(old) = replaced {
                // A new epoch replaces the stored history, and drops this
                // replica's unsent changes of the old one (see
                // `privacy::epoch`): `save()` holds only the new history.
                appends.push(Append { replace: true, ..Append::chunk(*id, handle.doc.save(), row.clone()) });
                // The replayed privacy actions are in the snapshot; they are
                // also queued, like every local change (and so stored a
                // second time as a chunk, which loading ignores), for the
                // other replicas.
                if let Some(bytes) = replayed {
                    appends.push(Append { outbox: true, ..Append::chunk(*id, bytes, None) });
                }
                if hydrated.contains_key(id) {
                    written.push((*id, after, true));
                    replaced_hydrated.push((*id, old));
                }
            } else {
                let chunk = handle.doc.save_after(&handle.persisted);
                let outbox = unsaved_local;
                appends.push(Append { outbox, ..Append::chunk(*id, chunk, row.clone()) });
                if hydrated.contains_key(id) {
                    written.push((*id, after, false));
                }
            }
            rows.extend(row);
        }
        if let Err(e) = self.storage.append(&appends).await {
            for (id, old) in replaced_hydrated {
                if let Some(handle) = hydrated.get_mut(&id) {
                    handle.doc = old;
                }
            }
            return Err(e.into());
        }
        for (id, heads, replaced) in written {
            if let Some(handle) = hydrated.get_mut(&id) {
                handle.persisted = heads;
                handle.chunks = if replaced { 0 } else { handle.chunks + 1 };
            }
        }
        Ok(AppliedMany { rows, refused })
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
    use crate::record::RecordKind;
    use crate::sales::{activity::Activity, company::Company, deal::Deal, task::Task};
    match kind.parse::<RecordKind>() {
        Ok(RecordKind::Contact) => Ok(crate::contact::Contact::from_doc(doc)?.row()),
        Ok(RecordKind::Workspace) => Ok(crate::workspace::Workspace::from_doc(doc)?.row()),
        Ok(RecordKind::Company) => Ok(Company::from_doc(doc)?.row()),
        Ok(RecordKind::Deal) => Ok(Deal::from_doc(doc)?.row()),
        Ok(RecordKind::Activity) => Ok(Activity::from_doc(doc)?.row()),
        Ok(RecordKind::Task) => Ok(Task::from_doc(doc)?.row()),
        _ => Err(DecodeError::Invalid {
            field: "kind".into(),
            reason: format!("this app cannot read {kind:?} records yet"),
        }),
    }
}

/// `bytes` as a whole document when a strict load takes them: every chunk
/// parsed and its checksum verified, no change missing a dependency.
fn strict_load(bytes: &[u8], actor: &ActorId) -> Option<AutoCommit> {
    let options = automerge::LoadOptions::new()
        .on_partial_load(automerge::OnPartialLoad::Error)
        .verification_mode(automerge::VerificationMode::Check);
    let mut doc = AutoCommit::load_with_options(bytes, options).ok()?;
    doc.set_actor(actor.clone());
    (!doc.get_heads().is_empty()).then_some(doc)
}

/// What [`Repo::apply_remote_many`] did with a batch.
#[derive(Debug, Clone, PartialEq)]
pub struct AppliedMany {
    /// The new row of every record the batch changed, one per record (none
    /// for a record not readable as a record yet).
    pub rows: Vec<Row>,
    /// The first change that was refused: its index in the batch and why.
    /// Every other change was applied.
    pub refused: Option<(usize, ApplyError)>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    #[error("received changes are not valid Automerge data: {0}")]
    Undecodable(String),
    #[error("{0}")]
    Corrupt(String),
    /// A newer version (epoch) of the record arrived, and the consent or
    /// restriction of the local copy it would replace could not be carried
    /// over: the local copy is kept.
    #[error("a rewritten version of the record was not taken: {0}")]
    Replay(#[from] crate::privacy::epoch::replay::ReplayError),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

#[cfg(test)]
mod epoch_tests;

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

    fn base_of(handle: &mut DocHandle) -> crate::form::Base {
        crate::form::Base { epoch: handle.epoch(), heads: handle.doc_mut().get_heads() }
    }

    #[test]
    fn a_form_left_open_writes_only_what_it_changed() {
        block_on(async {
            let a = repo();
            let mut c = contact(1, "Ada");
            c.address.city = "London".into();
            let mut h = a.create(&c).await.unwrap();
            // Tab 1 opens the form; meanwhile tab 2 saves the city.
            let base = base_of(&mut h);
            let opened = c.clone();
            // (Another tab: the same storage, its own session actor.)
            let (mut hb, mut elsewhere) = a.open::<Contact>(c.id, NOW).await.unwrap();
            hb.doc_mut().set_actor(session_actor(me(), [8; 8]));
            elsewhere.address.city = "Bergen".into();
            a.save(&mut hb, &elsewhere).await.unwrap();
            let mut fresh = a.open_doc(c.id, NOW).await.unwrap();
            // Tab 1's form, still showing London, changes the tags only.
            let mut edited = opened;
            edited.tags.insert("vip".into());
            a.save_since(&mut fresh, &edited, &base).await.unwrap();
            let (_, now) = a.open::<Contact>(c.id, NOW).await.unwrap();
            assert_eq!(now.address.city, "Bergen", "the other tab's city is kept");
            assert!(now.tags.contains("vip"));
            let ws = crate::workspace::Workspace::new(RecordId::from_bytes([9; 16]), "W", me(), "Me", NOW);
            assert!(crate::conflict::conflicts(fresh.doc(), &ws).is_empty());
        });
    }

    #[test]
    fn a_field_changed_in_the_form_and_elsewhere_becomes_a_visible_conflict() {
        block_on(async {
            let a = repo();
            let c = contact(1, "Ada");
            let mut h = a.create(&c).await.unwrap();
            let base = base_of(&mut h);
            let mut elsewhere = c.clone();
            elsewhere.title = "Countess".into();
            a.save(&mut h, &elsewhere).await.unwrap();
            let mut edited = c.clone();
            edited.title = "Mathematician".into();
            a.save_since(&mut h, &edited, &base).await.unwrap();
            let ws = crate::workspace::Workspace::new(RecordId::from_bytes([9; 16]), "W", me(), "Me", NOW);
            let found = crate::conflict::conflicts(h.doc(), &ws);
            assert_eq!(found.len(), 1);
            assert_eq!(found[0].label, "Job title");
            let mut values: Vec<&str> = found[0].values.iter().map(|v| v.shown.as_str()).collect();
            values.sort_unstable();
            assert_eq!(values, ["Countess", "Mathematician"]);
            // The same tab saving the same form twice (a retry) stays valid.
            a.save_since(&mut h, &edited, &base).await.unwrap();
            let mut reloaded = a.open_doc(c.id, NOW).await.unwrap();
            assert_eq!(reloaded.doc_mut().get_heads(), h.doc_mut().get_heads(), "stored whole");
        });
    }

    #[test]
    fn a_form_opened_on_an_unknown_version_is_refused() {
        block_on(async {
            let a = repo();
            let c = contact(1, "Ada");
            let mut h = a.create(&c).await.unwrap();
            let unknown = crate::form::Base { epoch: 0, heads: vec![automerge::ChangeHash([3; 32])] };
            assert_eq!(a.save_since(&mut h, &c, &unknown).await, Err(SaveError::Rewritten));
            let later_epoch = crate::form::Base { epoch: 1, heads: h.doc_mut().get_heads() };
            assert_eq!(a.save_since(&mut h, &c, &later_epoch).await, Err(SaveError::Rewritten));
        });
    }

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
    fn every_local_edit_is_queued_whether_or_not_this_repo_knows_of_sync() {
        block_on(async {
            // Nothing tells this repo (a tab opened before the workspace
            // was shared) that sync is on: its edits are queued all the same.
            let repo = repo();
            let mut c = contact(1, "Ada");
            let mut h = repo.create(&c).await.unwrap();
            c.title = "Countess".into();
            repo.save(&mut h, &c).await.unwrap();
            let queued = repo.storage().outbox(10).await.unwrap();
            assert_eq!(queued.len(), 2, "the creation and the edit");
            assert!(queued.iter().all(|e| e.id == c.id));
        });
    }

    #[test]
    fn edits_compacted_while_queued_still_reach_the_outbox() {
        block_on(async {
            let repo = repo();
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
            let b = Repo::new(MemoryStorage::new(), session_actor(MemberId::from_bytes([2; 16]), [1; 8]));
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

    /// A repo whose clock reads (and can move) `time`.
    fn clocked(time: &std::rc::Rc<std::cell::Cell<i64>>) -> Repo<MemoryStorage> {
        let time = time.clone();
        repo().with_clock(move || Timestamp::from_millis(time.get()))
    }

    #[test]
    fn local_changes_carry_the_clock_time_and_the_audit_trail_shows_it() {
        block_on(async {
            // Whole seconds: Automerge keeps a change's time in seconds.
            let created = 1_781_481_600_000;
            let edited = created + 90_000;
            let time = std::rc::Rc::new(std::cell::Cell::new(created));
            let repo = clocked(&time);
            let mut c = contact(1, "Ada");
            let mut h = repo.create(&c).await.unwrap();
            time.set(edited);
            c.title = "Countess".into();
            // `updated_at` is deliberately left at the creation value: the
            // time must come from the change itself.
            repo.save(&mut h, &c).await.unwrap();

            let changes = h.doc_mut().get_changes(&[]);
            let times: Vec<i64> = changes.iter().map(|ch| ch.timestamp()).collect();
            assert_eq!(times, [created / 1000, edited / 1000], "each change carries the clock's time");

            let mut reopened = repo.open_doc(c.id, NOW).await.unwrap();
            let log = crate::audit::history(reopened.doc_mut());
            assert_eq!(log.len(), 2);
            assert_eq!((log[0].at, log[0].action), (Timestamp::from_millis(edited), crate::audit::AuditAction::Edited));
            assert_eq!(log[0].fields, ["title"]);
            assert_eq!(log[0].member, Some(me()));
            assert_eq!(log[1].at, Timestamp::from_millis(created));

            time.set(edited + 60_000);
            repo.create_many(&[contact(2, "Grace")]).await.unwrap();
            let mut grace = repo.open_doc(RecordId::from_bytes([2; 16]), NOW).await.unwrap();
            assert_eq!(crate::audit::history(grace.doc_mut())[0].at, Timestamp::from_millis(edited + 60_000));
        });
    }

    #[test]
    fn a_failed_write_keeps_the_time_of_the_edit_when_retried_later() {
        block_on(async {
            let time = std::rc::Rc::new(std::cell::Cell::new(1_781_481_600_000));
            let repo = clocked(&time);
            let mut c = contact(1, "Ada");
            let mut h = repo.create(&c).await.unwrap();
            repo.storage().fail_writes(Some(StorageError::QuotaExceeded));
            time.set(1_781_481_700_000);
            c.title = "Countess".into();
            assert!(repo.save(&mut h, &c).await.is_err());
            repo.storage().fail_writes(None);
            time.set(1_781_481_900_000);
            repo.retry(&mut h, c.row()).await.unwrap();
            let mut reopened = repo.open_doc(c.id, NOW).await.unwrap();
            assert_eq!(crate::audit::history(reopened.doc_mut())[0].at, Timestamp::from_millis(1_781_481_700_000));
        });
    }

    #[test]
    fn a_new_epoch_replaces_every_stored_byte_of_the_old_history() {
        block_on(async {
            let time = std::rc::Rc::new(std::cell::Cell::new(1_781_481_600_000));
            let repo = clocked(&time);
            let ws = crate::workspace::Workspace::new(RecordId::from_bytes([9; 16]), "Acme", me(), "Sam", NOW);
            let mut c = contact(1, "Ada");
            c.family_name = "Lovelace".into();
            c.notes = "Prefers letters".into();
            let mut h = repo.create(&c).await.unwrap();
            c.title = "Countess".into();
            repo.save(&mut h, &c).await.unwrap();
            repo.create(&contact(2, "Grace")).await.unwrap();

            time.set(1_781_481_700_000);
            let at = Timestamp::from_millis(time.get());
            let (fresh, anonymised) =
                crate::privacy::retention::anonymise_document(h.doc_mut(), &ws, at, me(), session_actor(me(), [8; 8]))
                    .unwrap();
            repo.replace_epoch(&mut h, fresh, &anonymised.row()).await.unwrap();

            let stored = repo.storage().load(c.id).await.unwrap().unwrap();
            assert!(stored.chunks.is_empty(), "the old chunks are gone");
            let bytes = stored.snapshot.clone().unwrap();
            let text = String::from_utf8_lossy(&crate::repo::hydrate(Some(&bytes), &[]).unwrap().save_nocompress())
                .into_owned();
            for gone in ["Ada", "Lovelace", "Countess", "Prefers"] {
                assert!(!text.contains(gone), "{gone} is still stored");
            }
            let (_, loaded) = repo.open::<Contact>(c.id, NOW).await.unwrap();
            assert_eq!(loaded, anonymised);
            let rows = repo.storage().rows().await.unwrap().rows;
            let row = rows.iter().find(|r| r.id == c.id).unwrap();
            assert_eq!(row.title, crate::privacy::retention::ANONYMISED_NAME);
            assert!(rows.iter().any(|r| r.title == "Grace"), "other records are untouched");
            let log = crate::audit::history(h.doc_mut());
            assert_eq!((log.len(), log[0].action, log[0].at), (1, crate::audit::AuditAction::NewEpoch(1), at));

            // Later edits continue the new epoch.
            let mut later = anonymised.clone();
            later.tags.insert("archived".into());
            repo.save(&mut h, &later).await.unwrap();
            let (_, loaded) = repo.open::<Contact>(c.id, NOW).await.unwrap();
            assert_eq!(loaded, later);
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

    /// Replica A's outbox after creating `names` (one contact each) and
    /// editing the first one twice: several changes per record.
    async fn changes_from_a(names: &[&str]) -> (Vec<Contact>, Vec<(RecordId, Vec<u8>)>) {
        changes_from(2, names).await
    }

    /// As [`changes_from_a`], made by member `member`.
    async fn changes_from(member: u8, names: &[&str]) -> (Vec<Contact>, Vec<(RecordId, Vec<u8>)>) {
        {
            let a = Repo::new(MemoryStorage::new(), session_actor(MemberId::from_bytes([member; 16]), [1; 8]));
            let mut contacts = Vec::new();
            let mut first = None;
            for (n, name) in (1u8..).zip(names) {
                let c = contact(n, name);
                let h = a.create(&c).await.unwrap();
                first.get_or_insert(h);
                contacts.push(c);
            }
            let h = first.as_mut().unwrap();
            for title in ["Countess", "Mathematician"] {
                contacts[0].title = title.into();
                a.save(h, &contacts[0]).await.unwrap();
            }
            let outbox = a.storage().outbox(usize::MAX).await.unwrap();
            (contacts, outbox.into_iter().map(|e| (e.id, e.bytes)).collect())
        }
    }

    fn batch(changes: &[(RecordId, Vec<u8>)]) -> Vec<(RecordId, &[u8])> {
        changes.iter().map(|(id, bytes)| (*id, bytes.as_slice())).collect()
    }

    #[test]
    fn a_page_of_remote_changes_is_stored_in_one_write_with_one_chunk_and_row_per_record() {
        block_on(async {
            let (contacts, changes) = changes_from_a(&["Ada", "Grace", "Linus"]).await;
            assert_eq!(changes.len(), 5, "three creations and two edits of Ada");
            let b = repo();
            let mut hydrated = std::collections::HashMap::new();
            let applied = b.apply_remote_many(&batch(&changes), &mut hydrated, NOW).await.unwrap();
            assert_eq!(applied.refused, None);
            let mut titles: Vec<_> = applied.rows.iter().map(|r| (r.title.clone(), r.subtitle.clone())).collect();
            titles.sort();
            assert_eq!(titles[0], ("Ada".to_owned(), "Mathematician".to_owned()), "one row per record, the latest");
            assert_eq!(titles.len(), 3);
            for c in &contacts {
                assert_eq!(b.storage().chunk_count(c.id), 1, "Ada's three changes are one chunk");
                let (_, copy) = b.open::<Contact>(c.id, NOW).await.unwrap();
                assert_eq!(&copy, c);
            }
            assert_eq!(b.storage().rows().await.unwrap().rows.len(), 3);
            assert!(b.storage().outbox(10).await.unwrap().is_empty(), "received changes are not sent back");

            // The same page again (a crash before the cursor was saved): nothing changes.
            let again = b.apply_remote_many(&batch(&changes), &mut hydrated, NOW).await.unwrap();
            assert_eq!(again, AppliedMany { rows: Vec::new(), refused: None });
            assert!(contacts.iter().all(|c| b.storage().chunk_count(c.id) == 1), "duplicates store nothing");
        });
    }

    #[test]
    fn whole_documents_new_to_this_device_are_stored_as_received_and_duplicates_change_nothing() {
        block_on(async {
            let (contacts, changes) = changes_from_a(&["Ada", "Grace"]).await;
            // What a first upload sends: each document whole.
            let a = repo();
            a.apply_remote_many(&batch(&changes), &mut Default::default(), NOW).await.unwrap();
            let mut saved = Vec::new();
            for c in &contacts {
                let (mut h, _) = a.open::<Contact>(c.id, NOW).await.unwrap();
                saved.push((c.id, h.doc_mut().save()));
            }
            let b = repo();
            let applied = b.apply_remote_many(&batch(&saved), &mut Default::default(), NOW).await.unwrap();
            assert_eq!((applied.rows.len(), applied.refused), (2, None));
            for ((id, bytes), c) in saved.iter().zip(&contacts) {
                let stored = b.storage().load(*id).await.unwrap().unwrap();
                assert_eq!(stored.chunks, vec![bytes.clone()], "stored as received");
                assert_eq!(&b.open::<Contact>(*id, NOW).await.unwrap().1, c);
            }
            let again = b.apply_remote_many(&batch(&saved), &mut Default::default(), NOW).await.unwrap();
            assert_eq!(again, AppliedMany { rows: Vec::new(), refused: None });
            assert!(contacts.iter().all(|c| b.storage().chunk_count(c.id) == 1));
            // A change whose dependencies are missing merges nothing yet.
            let c = repo();
            let later = c.apply_remote_many(&batch(&changes[3..4]), &mut Default::default(), NOW).await.unwrap();
            assert_eq!((later.rows.len(), later.refused), (0, None));
            assert_eq!(c.storage().load(changes[3].0).await.unwrap(), None);
            // A damaged document is refused, not stored.
            let mut damaged = saved[0].1.clone();
            let last = damaged.len() - 1;
            damaged[last] ^= 0x40;
            let refused = c.apply_remote_many(&[(saved[0].0, &damaged)], &mut Default::default(), NOW).await.unwrap();
            assert!(matches!(refused.refused, Some((0, ApplyError::Undecodable(_)))), "{refused:?}");
            assert_eq!(c.storage().load(saved[0].0).await.unwrap(), None);
        });
    }

    #[test]
    fn an_undecodable_change_is_refused_and_the_others_of_the_page_are_stored() {
        block_on(async {
            let (contacts, mut changes) = changes_from_a(&["Ada", "Grace", "Linus"]).await;
            let bad = RecordId::from_bytes([9; 16]);
            changes.insert(2, (bad, b"\x85\x6f\x4a\x83 not automerge".to_vec()));
            changes.push((contacts[1].id, b"garbage".to_vec()));
            let b = repo();
            let applied = b.apply_remote_many(&batch(&changes), &mut Default::default(), NOW).await.unwrap();
            let (index, error) = applied.refused.expect("refused");
            assert_eq!(index, 2, "the first refused change is named");
            assert!(matches!(error, ApplyError::Undecodable(_)), "{error:?}");
            assert_eq!(applied.rows.len(), 3, "changes before and after it were applied");
            for c in &contacts {
                let (_, copy) = b.open::<Contact>(c.id, NOW).await.unwrap();
                assert_eq!(&copy, c);
            }
            assert_eq!(b.storage().load(bad).await.unwrap(), None, "nothing of the refused bytes is stored");
        });
    }

    #[test]
    fn a_hydrated_document_takes_the_page_in_place_and_knows_it_is_stored() {
        block_on(async {
            let (contacts, changes) = changes_from_a(&["Ada"]).await;
            let b = repo();
            // B has Ada's creation and keeps her open.
            b.apply_remote_many(&batch(&changes[..1]), &mut Default::default(), NOW).await.unwrap();
            let (handle, _) = b.open::<Contact>(contacts[0].id, NOW).await.unwrap();
            let mut hydrated = std::collections::HashMap::from([(contacts[0].id, handle)]);
            let applied = b.apply_remote_many(&batch(&changes), &mut hydrated, NOW).await.unwrap();
            assert_eq!(applied.rows.iter().map(|r| r.subtitle.as_str()).collect::<Vec<_>>(), ["Mathematician"]);
            let handle = hydrated.get_mut(&contacts[0].id).unwrap();
            assert_eq!(Contact::from_doc(handle.doc()).unwrap(), contacts[0], "the open document sees the edits");
            assert!(!handle.has_unsaved_changes(), "what was merged is durable");
            assert_eq!(handle.chunk_count(), 2);
            let (_, stored) = b.open::<Contact>(contacts[0].id, NOW).await.unwrap();
            assert_eq!(stored, contacts[0]);
        });
    }

    #[test]
    fn a_local_edit_not_yet_written_still_reaches_the_outbox_when_a_page_is_stored_with_it() {
        block_on(async {
            let (contacts, changes) = changes_from_a(&["Ada", "Grace"]).await;
            let b = repo();
            b.apply_remote_many(&batch(&changes[..1]), &mut Default::default(), NOW).await.unwrap();
            let (mut handle, mut ada) = b.open::<Contact>(contacts[0].id, NOW).await.unwrap();
            b.storage().fail_writes(Some(StorageError::QuotaExceeded));
            ada.company_name = "Engines".into();
            b.save(&mut handle, &ada).await.unwrap_err();
            b.storage().fail_writes(None);
            let mut hydrated = std::collections::HashMap::from([(ada.id, handle)]);
            b.apply_remote_many(&batch(&changes), &mut hydrated, NOW).await.unwrap();
            let queued = b.storage().outbox(10).await.unwrap();
            assert_eq!(queued.iter().map(|e| e.id).collect::<Vec<_>>(), [ada.id], "only the chunk with the local edit");
            let other = repo();
            other.apply_remote_many(&batch(&changes), &mut Default::default(), NOW).await.unwrap();
            let sent: Vec<_> = queued.iter().map(|e| (e.id, e.bytes.as_slice())).collect();
            other.apply_remote_many(&sent, &mut Default::default(), NOW).await.unwrap();
            let (_, copy) = other.open::<Contact>(ada.id, NOW).await.unwrap();
            assert_eq!(copy.company_name, "Engines", "the local edit travels");
            assert_eq!(copy.title, "Mathematician");
        });
    }

    #[test]
    fn a_failed_write_stores_nothing_of_the_page_and_it_applies_later() {
        block_on(async {
            let (contacts, changes) = changes_from_a(&["Ada", "Grace"]).await;
            let b = repo();
            b.storage().fail_writes(Some(StorageError::QuotaExceeded));
            let err = b.apply_remote_many(&batch(&changes), &mut Default::default(), NOW).await.unwrap_err();
            assert_eq!(err, ApplyError::Storage(StorageError::QuotaExceeded));
            assert!(b.storage().rows().await.unwrap().rows.is_empty(), "all or nothing");
            assert!(contacts.iter().all(|c| b.storage().chunk_count(c.id) == 0));
            b.storage().fail_writes(None);
            let applied = b.apply_remote_many(&batch(&changes), &mut Default::default(), NOW).await.unwrap();
            assert_eq!((applied.rows.len(), applied.refused), (2, None));
        });
    }

    #[test]
    fn a_change_for_an_unreadable_local_record_is_refused_and_the_record_quarantined() {
        block_on(async {
            let (contacts, changes) = changes_from_a(&["Ada", "Grace"]).await;
            let b = repo();
            b.apply_remote_many(&batch(&changes), &mut Default::default(), NOW).await.unwrap();
            assert!(b.storage().corrupt_last_chunk(contacts[0].id, b"\x85\x6f\x4a\x83garbage".to_vec()));
            let (more, later) = changes_from(3, &["Adah", "Gracie"]).await;
            let later: Vec<_> = later.into_iter().rev().collect(); // Grace first, then Ada's
            let applied = b.apply_remote_many(&batch(&later), &mut Default::default(), NOW).await.unwrap();
            let (index, error) = applied.refused.expect("Ada's changes are refused");
            assert_eq!(later[index].0, contacts[0].id);
            assert!(matches!(error, ApplyError::Corrupt(_)), "{error:?}");
            let quarantined = b.storage().quarantined().await.unwrap();
            assert_eq!(quarantined.iter().map(|q| q.key.clone()).collect::<Vec<_>>(), [contacts[0].id.to_string()]);
            let (_, grace) = b.open::<Contact>(more[1].id, NOW).await.unwrap();
            assert_eq!(grace.given_name, "Gracie", "Grace's record still took the page");
            assert_eq!(applied.rows.len(), 1);
        });
    }
}

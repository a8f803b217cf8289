//! Rapport's browser storage: [`IdbStorage`] implements rapport-core's
//! [`Storage`] contract on IndexedDB, one database per workspace.
//!
//! It keeps, per record, an optional compacted Automerge snapshot, the
//! incremental change chunks written since, and the materialised row the
//! lists and search read; and, for sync, an outbox of local changes the
//! relay has not acknowledged yet. An edit's chunk, its row and its outbox
//! entry land in one readwrite transaction, and [`Storage::append`] returns
//! only once that transaction has committed, so whatever the UI shows as
//! saved survives a closed tab or a crash, and is never saved yet forgotten
//! by sync. The object stores and keys are described in [`schema`].
//!
//! A typical flow (in the browser):
//! ```no_run
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! use rapport_core::{contact::Contact, ids::{MemberId, RecordId}, repo::Repo, Timestamp};
//! use rapport_core::storage::Storage;
//! use rapport_idb::IdbStorage;
//!
//! let storage = IdbStorage::open("rapport-workspace-0190f1c2").await?;
//! let repo = Repo::new(storage, [1; 16]);
//! let now = Timestamp::from_millis(1_700_000_000_000);
//! let mut ada = Contact::new(RecordId::from_bytes([2; 16]), now, MemberId::from_bytes([9; 16]));
//! ada.given_name = "Ada".into();
//! repo.create(&ada).await?; // durable when this returns
//! let rows = repo.storage().rows().await?.rows; // fast: no document is loaded
//! let (_handle, loaded) = repo.open::<Contact>(ada.id, now).await?;
//! # let _ = (rows, loaded);
//! # Ok(())
//! # }
//! ```
//!
//! Errors: a full disk is [`StorageError::QuotaExceeded`] (whether the
//! browser reports it on a request or when the transaction aborts), a
//! database that cannot be opened (IndexedDB switched off, a newer schema,
//! another tab blocking an upgrade) is [`StorageError::Unavailable`], and
//! anything else is `ReadFailed`/`WriteFailed` with the browser's message.
//! Nothing here panics on what the browser returns.
//!
//! With the `test-helpers` feature, [`IdbStorage`] also offers methods that
//! corrupt and dump stored bytes, for browser tests.
//!
//! Durability: writes use `durability: "strict"` transactions, so "committed"
//! means flushed to disk, not only handed to the operating system. Removal
//! deletes every value of a record through IndexedDB, its outbox entries
//! included; like any database,
//! the browser's engine may keep the old bytes in its files until it next
//! compacts them.

mod blocked;
mod error;
mod quota;
pub mod schema;
#[cfg(feature = "test-helpers")]
mod test_helpers;

use std::cell::Cell;
use std::fmt;
use std::rc::Rc;

use indexed_db_futures::database::Database;
use indexed_db_futures::error::Error as IdbError;
use indexed_db_futures::factory::DBFactory;
use indexed_db_futures::internals::SystemRepr;
use indexed_db_futures::object_store::ObjectStore;
use indexed_db_futures::prelude::*;
use indexed_db_futures::primitive::TryFromJs;
use indexed_db_futures::transaction::{Transaction, TransactionDurability, TransactionMode, TransactionOptions};
use indexed_db_futures::typed_array::{Uint8Array, Uint8ArraySlice};
use rapport_core::ids::RecordId;
use rapport_core::record::Row;
use rapport_core::storage::{
    decode_row, encode_row, Append, OutboxEntry, Quarantined, RowsLoad, Storage, StorageError, StoredDoc,
};
use rapport_core::Timestamp;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::spawn_local;

use crate::blocked::{unless_blocked, BlockedSignal};
use crate::error::{map_err, map_open, Op};
use crate::schema::{
    chunk_key, chunk_range, outbox_key, CHUNKS, META, NEXT_CHUNK_SEQ, OUTBOX, OUTBOX_BY_RECORD, OUTBOX_RECORD_FIELD,
    QUARANTINE, ROWS, SNAPSHOTS, STORES,
};

/// A workspace's IndexedDB database, open. Dropping it closes the
/// connection.
///
/// The connection also closes itself when another tab upgrades or deletes
/// the database (`versionchange`), so it never blocks them; operations after
/// that fail with a message asking to reload.
pub struct IdbStorage {
    db: Database,
    name: String,
    /// Set when another tab's upgrade or deletion made this connection close.
    closed: Rc<Cell<bool>>,
    _on_version_change: Closure<dyn FnMut(web_sys::Event)>,
}

impl fmt::Debug for IdbStorage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdbStorage").field("name", &self.name).finish_non_exhaustive()
    }
}

impl Drop for IdbStorage {
    fn drop(&mut self) {
        let db = self.db.as_sys();
        db.set_onversionchange(None);
        db.close();
    }
}

/// A transaction's raw handle and what a failure in it counts as.
struct Ctx {
    tx: web_sys::IdbTransaction,
    op: Op,
}

impl Ctx {
    fn new(tx: &Transaction<'_>, op: Op) -> Self {
        Self { tx: tx.as_sys().clone().into(), op }
    }

    fn check<T>(&self, result: Result<T, IdbError>) -> Result<T, StorageError> {
        result.map_err(|e| map_err(&e, Some(&self.tx), self.op))
    }

    /// Commits and waits for the `complete` event: the writes are durable
    /// when this returns `Ok`, and none of them happened when it returns
    /// `Err`.
    async fn commit(&self, tx: Transaction<'_>) -> Result<(), StorageError> {
        tx.commit().await.map_err(|e| map_err(&e, Some(&self.tx), Op::Write))
    }
}

/// Bytes out of a value that must be a `Uint8Array`.
fn bytes_of(value: Result<Uint8Array, IdbError>, what: &str) -> Result<Vec<u8>, StorageError> {
    value.map(Vec::from).map_err(|e| StorageError::ReadFailed(format!("a stored {what} is not binary data: {e}")))
}

/// Bytes out of a stored value that must be a `Uint8Array`.
fn binary(value: JsValue, what: &str) -> Result<Vec<u8>, StorageError> {
    bytes_of(Uint8Array::from_js(value).map_err(IdbError::from), what)
}

/// A key for messages: keys in this schema are strings.
fn key_text(key: &JsValue) -> String {
    key.as_string().unwrap_or_else(|| format!("{key:?}"))
}

/// The database-wide sequence counter ([`NEXT_CHUNK_SEQ`]), read inside a
/// write transaction that also holds [`META`].
async fn read_counter(ctx: &Ctx, meta: &ObjectStore<'_>) -> Result<u64, StorageError> {
    let counter = ctx.check(meta.get::<Uint8Array, _, _>(NEXT_CHUNK_SEQ).primitive())?;
    let counter = ctx.check(counter.await)?;
    schema::decode_seq(counter.as_ref().map(AsRef::as_ref)).map_err(StorageError::WriteFailed)
}

/// Stores the next free sequence number.
fn write_counter(ctx: &Ctx, meta: &ObjectStore<'_>, next: u64) -> Result<(), StorageError> {
    let next = next.to_be_bytes();
    ctx.check(meta.put(Uint8ArraySlice::new(&next)).with_key(NEXT_CHUNK_SEQ).without_key_type().primitive())?;
    Ok(())
}

/// The sequence number after `seq`.
fn following(seq: u64) -> Result<u64, StorageError> {
    seq.checked_add(1).ok_or_else(|| StorageError::WriteFailed("the chunk counter ran out of numbers".into()))
}

/// Queues `bytes` of record `id` as outbox entry `seq` (with `add`: an
/// existing entry is never overwritten).
fn queue(ctx: &Ctx, outbox: &ObjectStore<'_>, seq: u64, id: RecordId, bytes: &[u8]) -> Result<(), StorageError> {
    let value = schema::encode_outbox(id, bytes).map_err(StorageError::WriteFailed)?;
    ctx.check(outbox.add(value).with_key(outbox_key(seq)).without_key_type().primitive())?;
    Ok(())
}

impl IdbStorage {
    /// Opens (creating or upgrading as needed) the database `db_name`.
    ///
    /// # Errors
    /// [`StorageError::Unavailable`] when IndexedDB is missing or switched
    /// off, the database was upgraded by a newer app version, another tab
    /// blocks the upgrade, or the database exists without Rapport's object
    /// stores and indexes. Opening a version-1 database upgrades it in
    /// place (it gains the outbox; stored data is kept).
    pub async fn open(db_name: &str) -> Result<Self, StorageError> {
        let blocked = BlockedSignal::new();
        let signal = Rc::clone(&blocked);
        let request = Database::open(db_name)
            .with_version(schema::SCHEMA_VERSION)
            .with_on_blocked(move |_event| {
                signal.fire();
                Ok(())
            })
            .with_on_upgrade_needed(|_event, db| create_missing_stores(&db))
            .build()
            .map_err(|e| map_open(&e))?;
        let mut request = Box::pin(request);
        let db = match unless_blocked(&mut request, &blocked).await {
            Some(opened) => opened.map_err(|e| map_open(&e))?,
            None => {
                // The browser keeps the request queued; let it finish (and
                // create the stores) once the other tab lets go, then close.
                spawn_local(async move {
                    if let Ok(db) = request.await {
                        db.close();
                    }
                });
                return Err(StorageError::Unavailable(
                    "another tab keeps an older version of this workspace open; close Rapport's other tabs and reload"
                        .into(),
                ));
            }
        };
        Self::from_db(db, db_name)
    }

    fn from_db(db: Database, name: &str) -> Result<Self, StorageError> {
        if let Err(missing) = check_schema(&db) {
            db.close();
            return Err(StorageError::Unavailable(format!(
                "the database {name:?} was not created by Rapport (it has no {missing})"
            )));
        }
        let handle: web_sys::IdbDatabase = db.as_sys().clone().into();
        let closed = Rc::new(Cell::new(false));
        let flag = Rc::clone(&closed);
        let on_version_change = Closure::<dyn FnMut(web_sys::Event)>::new(move |_event: web_sys::Event| {
            flag.set(true);
            handle.close();
        });
        db.as_sys().set_onversionchange(Some(on_version_change.as_ref().unchecked_ref()));
        Ok(Self { db, name: name.to_owned(), closed, _on_version_change: on_version_change })
    }

    /// The database name this storage was opened with.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Deletes the database `name` and everything in it ("remove this
    /// workspace from this device"; tests). Deleting a database that does
    /// not exist succeeds. Open [`IdbStorage`]s of it in this or other tabs
    /// close themselves and stop working.
    ///
    /// # Errors
    /// [`StorageError::Unavailable`] when IndexedDB is missing, or when a
    /// connection that does not close itself (an older app version in
    /// another tab) blocks the deletion: it then happens once that tab
    /// closes. [`StorageError::WriteFailed`] when the browser refuses.
    pub async fn delete_database(name: &str) -> Result<(), StorageError> {
        let factory = DBFactory::new().map_err(|e| map_open(&e))?;
        let request = factory.delete_db(name).map_err(|e| map_err(&e, None, Op::Write))?;
        let raw: web_sys::IdbOpenDbRequest = request.as_sys().clone().unchecked_into();
        let blocked = BlockedSignal::new();
        let signal = Rc::clone(&blocked);
        let on_blocked = Closure::<dyn FnMut(web_sys::Event)>::new(move |_event: web_sys::Event| signal.fire());
        raw.set_onblocked(Some(on_blocked.as_ref().unchecked_ref()));
        let mut request = Box::pin(request);
        let outcome = unless_blocked(&mut request, &blocked).await;
        raw.set_onblocked(None);
        drop(on_blocked);
        match outcome {
            Some(result) => result.map_err(|e| map_err(&e, None, Op::Write)),
            None => {
                // Still queued in the browser: it completes when the other
                // connections close, with nobody left to tell.
                spawn_local(async move {
                    let _completed_later = request.await;
                });
                Err(StorageError::Unavailable(
                    "another tab still has this workspace open; it will be removed once that tab is closed".into(),
                ))
            }
        }
    }

    /// How many bytes this origin uses and may use, from
    /// `navigator.storage.estimate()`: `Ok(None)` where the Storage API is
    /// not offered (insecure contexts, old browsers).
    ///
    /// # Errors
    /// [`StorageError::ReadFailed`] when the browser rejects the request.
    pub async fn estimate() -> Result<Option<(u64, u64)>, StorageError> {
        quota::estimate().await
    }

    /// Asks the browser not to evict this origin's storage under pressure
    /// (`navigator.storage.persist()`). `Ok(true)` when granted; `Ok(false)`
    /// when refused or when the Storage API is not offered.
    ///
    /// # Errors
    /// [`StorageError::ReadFailed`] when the browser rejects the request.
    pub async fn request_persistence() -> Result<bool, StorageError> {
        quota::request_persistence().await
    }

    /// Starting a transaction failed: say so plainly when the cause is that
    /// another tab closed this connection.
    fn tx_failed(&self, e: &IdbError, op: Op) -> StorageError {
        match map_err(e, None, op) {
            StorageError::ReadFailed(m) | StorageError::WriteFailed(m) if self.closed.get() => {
                op.fail(format!("another tab upgraded or deleted this workspace's database; reload the page ({m})"))
            }
            other => other,
        }
    }

    fn read_tx(&self, stores: &[&str]) -> Result<(Transaction<'_>, Ctx), StorageError> {
        let tx = self
            .db
            .transaction(stores)
            .with_mode(TransactionMode::Readonly)
            .build()
            .map_err(|e| self.tx_failed(&e, Op::Read))?;
        let ctx = Ctx::new(&tx, Op::Read);
        Ok((tx, ctx))
    }

    fn write_tx(&self, stores: &[&str]) -> Result<(Transaction<'_>, Ctx), StorageError> {
        let tx = self
            .db
            .transaction(stores)
            .with_mode(TransactionMode::Readwrite)
            .with_options(TransactionOptions::new().with_durability(TransactionDurability::Strict))
            .build()
            .map_err(|e| self.tx_failed(&e, Op::Write))?;
        let ctx = Ctx::new(&tx, Op::Write);
        Ok((tx, ctx))
    }
}

/// The `upgradeneeded` handler: creates whatever store of the current
/// schema the database lacks, with its indexes. Stores that exist keep
/// their data (from version 1, this adds [`OUTBOX`]).
fn create_missing_stores(db: &Database) -> indexed_db_futures::Result<()> {
    let present: Vec<String> = db.object_store_names().collect();
    for store in STORES {
        if present.iter().any(|p| p == store) {
            continue;
        }
        let created = db.create_object_store(store).build()?;
        if store == OUTBOX {
            created.create_index(OUTBOX_BY_RECORD, OUTBOX_RECORD_FIELD.into()).build()?;
        }
    }
    Ok(())
}

/// Whether an opened database has every store and index of the schema;
/// `Err` names the first one missing.
fn check_schema(db: &Database) -> Result<(), String> {
    let present: Vec<String> = db.object_store_names().collect();
    if let Some(missing) = STORES.iter().find(|s| !present.iter().any(|p| p == *s)) {
        return Err(format!("{missing:?} object store"));
    }
    let tx = db.transaction(OUTBOX).build().map_err(|e| e.to_string())?;
    let store = tx.object_store(OUTBOX).map_err(|e| e.to_string())?;
    let has_index = store.index_names().any(|n| n == OUTBOX_BY_RECORD);
    // Nothing was requested: dropping the transaction just ends it.
    drop(store);
    drop(tx);
    if has_index {
        Ok(())
    } else {
        Err(format!("{OUTBOX_BY_RECORD:?} index on its {OUTBOX:?} store"))
    }
}

/// Awaits a request made through `web_sys` directly: its result, or the
/// browser's message.
async fn request_result(request: &web_sys::IdbRequest) -> Result<JsValue, String> {
    let promise = js_sys::Promise::new(&mut |resolve, reject| {
        request.set_onsuccess(Some(&resolve));
        request.set_onerror(Some(&reject));
    });
    let outcome = wasm_bindgen_futures::JsFuture::from(promise).await;
    request.set_onsuccess(None);
    request.set_onerror(None);
    match outcome {
        Ok(_) => request.result().map_err(|e| crate::error::js_message(&e)),
        Err(_) => Err(request
            .error()
            .ok()
            .flatten()
            .map_or_else(|| "the request failed".to_owned(), |e| format!("{}: {}", e.name(), e.message()))),
    }
}

/// Rows travel from JavaScript to wasm in slices of this many, joined into
/// one string each: one crossing per slice instead of two per row.
const ROW_SLICE: u32 = 4096;

impl IdbStorage {
    /// The fast path of [`Storage::rows`]: one `getAll` (no keys), then the
    /// rows cross into wasm joined by newlines, a slice at a time. `Ok(None)`
    /// when anything is off (a row that is not text or not a row): the
    /// careful path then reads keys and values and names each unreadable row.
    async fn rows_joined(&self) -> Result<Option<Vec<Row>>, StorageError> {
        let (tx, ctx) = self.read_tx(&[ROWS])?;
        let store = ctx.check(tx.object_store(ROWS))?;
        let request = store.as_sys().get_all().map_err(|e| {
            StorageError::ReadFailed(format!("reading the rows failed: {}", crate::error::js_message(&e)))
        })?;
        let values = request_result(&request)
            .await
            .map_err(|m| StorageError::ReadFailed(format!("reading the rows failed: {m}")))?;
        let Ok(values) = values.dyn_into::<js_sys::Array>() else { return Ok(None) };
        let total = values.length();
        let mut rows = Vec::with_capacity(total as usize);
        let mut start = 0;
        while start < total {
            let end = total.min(start + ROW_SLICE);
            let text: String = values.slice(start, end).join("\n").into();
            let before = rows.len();
            // Compact JSON has no raw newline: each line is one stored value,
            // decoded exactly as the careful path decodes it.
            for line in text.split('\n') {
                match decode_row(line) {
                    Ok(row) => rows.push(row),
                    Err(_) => return Ok(None),
                }
            }
            // A value holding a raw newline splits into more lines than values.
            if rows.len() - before != (end - start) as usize {
                return Ok(None);
            }
            start = end;
        }
        Ok(Some(rows))
    }
}

impl Storage for IdbStorage {
    async fn rows(&self) -> Result<RowsLoad, StorageError> {
        if let Some(rows) = self.rows_joined().await? {
            return Ok(RowsLoad { rows, unreadable: Vec::new() });
        }
        let (tx, ctx) = self.read_tx(&[ROWS])?;
        let store = ctx.check(tx.object_store(ROWS))?;
        let keys = ctx.check(store.get_all_keys::<JsValue>().primitive())?;
        let values = ctx.check(store.get_all::<JsValue>().primitive())?;
        let keys = ctx.check(keys.await)?;
        let values = ctx.check(values.await)?;
        let mut load = RowsLoad { rows: Vec::with_capacity(values.len()), unreadable: Vec::new() };
        for (key, value) in keys.zip(values) {
            let key = ctx.check(key)?;
            let value = ctx.check(value)?;
            match value.as_string() {
                Some(text) => match decode_row(&text) {
                    Ok(row) => load.rows.push(row),
                    Err(reason) => load.unreadable.push((key_text(&key), reason)),
                },
                None => load.unreadable.push((key_text(&key), "stored row is not text".into())),
            }
        }
        Ok(load)
    }

    async fn load(&self, id: RecordId) -> Result<Option<StoredDoc>, StorageError> {
        let (tx, ctx) = self.read_tx(&[SNAPSHOTS, CHUNKS])?;
        let snapshots = ctx.check(tx.object_store(SNAPSHOTS))?;
        let chunks = ctx.check(tx.object_store(CHUNKS))?;
        let key = id.to_string();
        let snapshot = ctx.check(snapshots.get::<JsValue, _, _>(key.as_str()).primitive())?;
        let stored_chunks =
            ctx.check(chunks.get_all::<Uint8Array>().with_query::<String, _>(chunk_range(id)).primitive())?;
        let snapshot = ctx.check(snapshot.await)?;
        let stored_chunks = ctx.check(stored_chunks.await)?;
        let doc = StoredDoc {
            snapshot: snapshot.map(|s| binary(s, "snapshot")).transpose()?,
            chunks: stored_chunks.map(|c| bytes_of(c, "change chunk")).collect::<Result<_, _>>()?,
        };
        Ok((!doc.is_empty()).then_some(doc))
    }

    async fn append(&self, appends: &[Append]) -> Result<(), StorageError> {
        if appends.is_empty() {
            return Ok(());
        }
        // The outbox joins the transaction only when something is queued, so
        // applying received changes does not wait for the sync engine's reads.
        let queues = appends.iter().any(|a| a.outbox);
        let stores: &[&str] = if queues { &[CHUNKS, ROWS, META, OUTBOX] } else { &[CHUNKS, ROWS, META] };
        let (tx, ctx) = self.write_tx(stores)?;
        let chunks = ctx.check(tx.object_store(CHUNKS))?;
        let rows = ctx.check(tx.object_store(ROWS))?;
        let meta = ctx.check(tx.object_store(META))?;
        let outbox = if queues { Some(ctx.check(tx.object_store(OUTBOX))?) } else { None };
        let mut seq = read_counter(&ctx, &meta).await?;
        // Requests go out when built; the commit below waits for all of them.
        for append in appends {
            let chunk = chunks.add(Uint8ArraySlice::new(&append.chunk)).with_key(chunk_key(append.id, seq));
            ctx.check(chunk.without_key_type().primitive())?;
            if let Some(row) = &append.row {
                let row = rows.put(encode_row(row)).with_key(append.id.to_string());
                ctx.check(row.without_key_type().primitive())?;
            }
            if let (true, Some(outbox)) = (append.outbox, &outbox) {
                queue(&ctx, outbox, seq, append.id, &append.chunk)?;
            }
            seq = following(seq)?;
        }
        write_counter(&ctx, &meta, seq)?;
        ctx.commit(tx).await
    }

    async fn compact(
        &self,
        id: RecordId,
        snapshot: &[u8],
        row: &Row,
        outbox: Option<&[u8]>,
    ) -> Result<(), StorageError> {
        let stores: &[&str] =
            if outbox.is_some() { &[SNAPSHOTS, CHUNKS, ROWS, META, OUTBOX] } else { &[SNAPSHOTS, CHUNKS, ROWS] };
        let (tx, ctx) = self.write_tx(stores)?;
        if let Some(bytes) = outbox {
            let meta = ctx.check(tx.object_store(META))?;
            let queue_store = ctx.check(tx.object_store(OUTBOX))?;
            let seq = read_counter(&ctx, &meta).await?;
            queue(&ctx, &queue_store, seq, id, bytes)?;
            write_counter(&ctx, &meta, following(seq)?)?;
        }
        let snapshots = ctx.check(tx.object_store(SNAPSHOTS))?;
        let chunks = ctx.check(tx.object_store(CHUNKS))?;
        let rows = ctx.check(tx.object_store(ROWS))?;
        let key = id.to_string();
        ctx.check(chunks.delete::<String, _>(chunk_range(id)).primitive())?;
        let put_snapshot = snapshots.put(Uint8ArraySlice::new(snapshot)).with_key(key.as_str());
        ctx.check(put_snapshot.without_key_type().primitive())?;
        ctx.check(rows.put(encode_row(row)).with_key(key.as_str()).without_key_type().primitive())?;
        ctx.commit(tx).await
    }

    async fn enqueue(&self, entries: &[(RecordId, Vec<u8>)]) -> Result<(), StorageError> {
        if entries.is_empty() {
            return Ok(());
        }
        let (tx, ctx) = self.write_tx(&[META, OUTBOX])?;
        let meta = ctx.check(tx.object_store(META))?;
        let outbox = ctx.check(tx.object_store(OUTBOX))?;
        let mut seq = read_counter(&ctx, &meta).await?;
        for (id, bytes) in entries {
            queue(&ctx, &outbox, seq, *id, bytes)?;
            seq = following(seq)?;
        }
        write_counter(&ctx, &meta, seq)?;
        ctx.commit(tx).await
    }

    async fn outbox(&self, limit: usize) -> Result<Vec<OutboxEntry>, StorageError> {
        // `getAll` reads a count of 0 as "no limit".
        if limit == 0 {
            return Ok(Vec::new());
        }
        let limit = u32::try_from(limit).unwrap_or(u32::MAX);
        let (tx, ctx) = self.read_tx(&[OUTBOX])?;
        let store = ctx.check(tx.object_store(OUTBOX))?;
        // Both requests see the same state: they run in one transaction.
        let keys = ctx.check(store.get_all_keys::<JsValue>().with_limit(limit).primitive())?;
        let values = ctx.check(store.get_all::<JsValue>().with_limit(limit).primitive())?;
        let keys = ctx.check(keys.await)?;
        let values = ctx.check(values.await)?;
        let mut entries = Vec::with_capacity(values.len());
        for (key, value) in keys.zip(values) {
            let (key, value) = (ctx.check(key)?, ctx.check(value)?);
            // A damaged entry is reported, never skipped: sync must not
            // silently lose a change.
            entries.push(schema::decode_outbox(&key, &value).map_err(StorageError::ReadFailed)?);
        }
        Ok(entries)
    }

    async fn ack_outbox(&self, seqs: &[u64]) -> Result<(), StorageError> {
        if seqs.is_empty() {
            return Ok(());
        }
        let (tx, ctx) = self.write_tx(&[OUTBOX])?;
        let store = ctx.check(tx.object_store(OUTBOX))?;
        for seq in seqs {
            // Deleting a key that is not stored succeeds: unknown seqs are ignored.
            ctx.check(store.delete(outbox_key(*seq)).primitive())?;
        }
        ctx.commit(tx).await
    }

    async fn remove(&self, id: RecordId) -> Result<(), StorageError> {
        let (tx, ctx) = self.write_tx(&[SNAPSHOTS, CHUNKS, ROWS, QUARANTINE, OUTBOX])?;
        let key = id.to_string();
        for store in [SNAPSHOTS, ROWS, QUARANTINE] {
            let store = ctx.check(tx.object_store(store))?;
            ctx.check(store.delete(key.as_str()).primitive())?;
        }
        let chunks = ctx.check(tx.object_store(CHUNKS))?;
        ctx.check(chunks.delete::<String, _>(chunk_range(id)).primitive())?;
        let outbox = ctx.check(tx.object_store(OUTBOX))?;
        let by_record = ctx.check(outbox.index(OUTBOX_BY_RECORD))?;
        let queued = ctx.check(by_record.get_all_keys::<JsValue>().with_query(key).primitive())?;
        for seq_key in ctx.check(queued.await)? {
            ctx.check(outbox.delete(ctx.check(seq_key)?).primitive())?;
        }
        ctx.commit(tx).await
    }

    async fn quarantine(&self, entry: &Quarantined) -> Result<(), StorageError> {
        let json = serde_json::to_string(entry)
            .map_err(|e| StorageError::WriteFailed(format!("the quarantine entry could not be encoded: {e}")))?;
        let (tx, ctx) = self.write_tx(&[QUARANTINE])?;
        let store = ctx.check(tx.object_store(QUARANTINE))?;
        ctx.check(store.put(json).with_key(entry.key.as_str()).without_key_type().primitive())?;
        ctx.commit(tx).await
    }

    async fn quarantined(&self) -> Result<Vec<Quarantined>, StorageError> {
        let (tx, ctx) = self.read_tx(&[QUARANTINE])?;
        let store = ctx.check(tx.object_store(QUARANTINE))?;
        let keys = ctx.check(store.get_all_keys::<JsValue>().primitive())?;
        let values = ctx.check(store.get_all::<JsValue>().primitive())?;
        let keys = ctx.check(keys.await)?;
        let values = ctx.check(values.await)?;
        let mut entries = Vec::with_capacity(values.len());
        for (key, value) in keys.zip(values) {
            let key = key_text(&ctx.check(key)?);
            let value = ctx.check(value)?;
            let parsed = value
                .as_string()
                .ok_or_else(|| "it is not text".to_owned())
                .and_then(|text| serde_json::from_str::<Quarantined>(&text).map_err(|e| e.to_string()));
            // An unreadable entry is still a quarantined record: list it.
            entries.push(parsed.unwrap_or_else(|reason| Quarantined {
                key,
                reason: format!("the quarantine entry itself is unreadable: {reason}"),
                at: Timestamp::default(),
            }));
        }
        Ok(entries)
    }

    async fn get_meta(&self, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
        let (tx, ctx) = self.read_tx(&[META])?;
        let store = ctx.check(tx.object_store(META))?;
        let value = ctx.check(store.get::<JsValue, _, _>(key).primitive())?;
        ctx.check(value.await)?.map(|v| binary(v, "metadata value")).transpose()
    }

    async fn put_meta(&self, key: &str, value: &[u8]) -> Result<(), StorageError> {
        let (tx, ctx) = self.write_tx(&[META])?;
        let store = ctx.check(tx.object_store(META))?;
        ctx.check(store.put(Uint8ArraySlice::new(value)).with_key(key).without_key_type().primitive())?;
        ctx.commit(tx).await
    }
}

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
//! by sync. That transaction reads nothing (keys come from IndexedDB's key
//! generator): it is one round of puts and a commit. The object stores and
//! keys are described in [`schema`].
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
mod upgrade;

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
    decode_row, encode_row, Append, OutboxEntry, OutboxKind, Quarantined, RowsLoad, Storage, StorageError, StoredDoc,
};
use rapport_core::Timestamp;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::spawn_local;

use crate::blocked::{unless_blocked, BlockedSignal};
use crate::error::{map_err, map_open, Op};
use crate::schema::{
    encode_entry, encode_outbox, entry_bytes, BY_RECORD, CHUNKS, META, OUTBOX, QUARANTINE, ROWS, SNAPSHOTS,
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

/// Adds `bytes` of record `id` to `store` ([`CHUNKS`] or [`OUTBOX`]) under
/// the next generated key. Nothing is read: the request just goes out.
fn add_entry(ctx: &Ctx, store: &ObjectStore<'_>, id: RecordId, bytes: &[u8]) -> Result<(), StorageError> {
    let value = encode_entry(id, bytes).map_err(StorageError::WriteFailed)?;
    ctx.check(store.add(value).primitive())?;
    Ok(())
}

/// Deletes every value of record `id` from `store` ([`CHUNKS`] or
/// [`OUTBOX`]), found through its [`BY_RECORD`] index. This reads (the
/// keys), so only compaction and removal do it, never an edit.
async fn delete_entries(ctx: &Ctx, store: &ObjectStore<'_>, id: RecordId) -> Result<(), StorageError> {
    let by_record = ctx.check(store.index(BY_RECORD))?;
    let keys = ctx.check(by_record.get_all_keys::<JsValue>().with_query(id.to_string()).primitive())?;
    for key in ctx.check(keys.await)? {
        ctx.check(store.delete(ctx.check(key)?).primitive())?;
    }
    Ok(())
}

impl IdbStorage {
    /// Opens (creating or upgrading as needed) the database `db_name`.
    ///
    /// # Errors
    /// [`StorageError::Unavailable`] when IndexedDB is missing or switched
    /// off, the database was upgraded by a newer app version, another tab
    /// blocks the upgrade, the upgrade fails, or the database exists without
    /// Rapport's object stores and indexes. Opening a database of an older
    /// schema upgrades it in place, keeping its data ([`schema`]).
    pub async fn open(db_name: &str) -> Result<Self, StorageError> {
        let blocked = BlockedSignal::new();
        let signal = Rc::clone(&blocked);
        let request = Database::open(db_name)
            .with_version(schema::SCHEMA_VERSION)
            .with_on_blocked(move |_event| {
                signal.fire();
                Ok(())
            })
            .build()
            .map_err(|e| map_open(&e))?;
        let on_upgrade = upgrade::on_upgrade_needed(request.as_sys());
        let mut request = Box::pin(request);
        let db = match unless_blocked(&mut request, &blocked).await {
            Some(opened) => opened.map_err(|e| map_open(&e))?,
            None => {
                // The browser keeps the request queued; let it finish (and
                // upgrade) once the other tab lets go, then close.
                spawn_local(async move {
                    if let Ok(db) = request.await {
                        db.close();
                    }
                    drop(on_upgrade);
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
        if let Err(missing) = upgrade::check_schema(&db) {
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

/// Rows travel from JavaScript to wasm in slices of this many, joined into
/// one string each: one crossing per slice instead of two per row.
const ROW_SLICE: u32 = 4096;

/// Rows are read this many per `getAll`, the next request already on its
/// way while wasm decodes the last one.
const READ_CHUNK: u32 = 16_384;

/// Listens to a request made through `web_sys` directly, at once (before
/// any of its events can fire): the future of its result or message.
fn listen(request: web_sys::IdbRequest) -> impl std::future::Future<Output = Result<JsValue, String>> {
    let promise = js_sys::Promise::new(&mut |resolve, reject| {
        request.set_onsuccess(Some(&resolve));
        request.set_onerror(Some(&reject));
    });
    let outcome = wasm_bindgen_futures::JsFuture::from(promise);
    async move {
        let outcome = outcome.await;
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
}

/// Decodes rows read with `getAll` (no keys), joined by newlines a slice at
/// a time; `None` when anything is off.
fn decode_joined(values: &js_sys::Array, rows: &mut Vec<Row>) -> Option<()> {
    let total = values.length();
    let mut start = 0;
    while start < total {
        let end = total.min(start + ROW_SLICE);
        let text: String = values.slice(start, end).join("\n").into();
        let before = rows.len();
        // Compact JSON has no raw newline: each line is one stored value,
        // decoded exactly as the careful path decodes it.
        for line in text.split('\n') {
            rows.push(decode_row(line).ok()?);
        }
        // A value holding a raw newline splits into more lines than values.
        if rows.len() - before != (end - start) as usize {
            return None;
        }
        start = end;
    }
    Some(())
}

impl IdbStorage {
    /// The fast path of [`Storage::rows`]: `getAll` of values only (no
    /// keys), [`READ_CHUNK`] rows per request; each request after the
    /// first starts after the key of the previous chunk's last row (its
    /// record id, read from that row alone) before that chunk is decoded,
    /// so IndexedDB reads while wasm decodes. `Ok(None)` when anything is
    /// off (a row that is not text or not a row, or fewer or more rows
    /// than the store counts): the careful path then reads keys and values
    /// and names each unreadable row.
    async fn rows_joined(&self) -> Result<Option<Vec<Row>>, StorageError> {
        let (tx, ctx) = self.read_tx(&[ROWS])?;
        let store = ctx.check(tx.object_store(ROWS))?;
        let store = store.as_sys();
        let failed = |m: String| StorageError::ReadFailed(format!("reading the rows failed: {m}"));
        let ask = |after: Option<&str>| -> Result<_, StorageError> {
            let range = match after {
                Some(key) => web_sys::IdbKeyRange::lower_bound_with_open(&JsValue::from_str(key), true)
                    .map_err(|e| failed(crate::error::js_message(&e)))?
                    .into(),
                None => JsValue::UNDEFINED,
            };
            let request = store
                .get_all_with_key_and_limit(&range, READ_CHUNK)
                .map_err(|e| failed(crate::error::js_message(&e)))?;
            Ok(listen(request))
        };
        let count = listen(store.count().map_err(|e| failed(crate::error::js_message(&e)))?);
        let mut next = Some(ask(None)?);
        let mut rows = Vec::new();
        while let Some(request) = next.take() {
            let Ok(values) = request.await.map_err(failed)?.dyn_into::<js_sys::Array>() else { return Ok(None) };
            let n = values.length();
            if n == READ_CHUNK {
                let Some(last) = values.get(n - 1).as_string().and_then(|json| decode_row(&json).ok()) else {
                    return Ok(None);
                };
                next = Some(ask(Some(&last.id.to_string()))?);
            }
            if decode_joined(&values, &mut rows).is_none() {
                return Ok(None);
            }
        }
        let count = count.await.map_err(failed)?.as_f64().unwrap_or(-1.0);
        #[allow(clippy::cast_precision_loss)]
        let complete = count == rows.len() as f64;
        Ok(complete.then_some(rows))
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
        Ok(self.load_many(&[id]).await?.pop().flatten())
    }

    async fn load_many(&self, ids: &[RecordId]) -> Result<Vec<Option<StoredDoc>>, StorageError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let (tx, ctx) = self.read_tx(&[SNAPSHOTS, CHUNKS])?;
        let snapshots = ctx.check(tx.object_store(SNAPSHOTS))?;
        let chunks = ctx.check(tx.object_store(CHUNKS))?;
        let by_record = ctx.check(chunks.index(BY_RECORD))?;
        // Every request goes out before the first is awaited: one round trip
        // for the whole set.
        let mut requests = Vec::with_capacity(ids.len());
        for id in ids {
            let key = id.to_string();
            let snapshot = ctx.check(snapshots.get::<JsValue, _, _>(key.as_str()).primitive())?;
            // The index lists one record's values in key order: write order.
            let stored_chunks = ctx.check(by_record.get_all::<JsValue>().with_query(key.as_str()).primitive())?;
            requests.push((snapshot, stored_chunks));
        }
        let mut docs = Vec::with_capacity(ids.len());
        for (snapshot, stored_chunks) in requests {
            let snapshot = ctx.check(snapshot.await)?;
            let stored_chunks = ctx.check(stored_chunks.await)?;
            let mut chunks = Vec::new();
            for chunk in stored_chunks {
                let bytes = entry_bytes(&ctx.check(chunk)?)
                    .map_err(|e| StorageError::ReadFailed(format!("a stored change chunk is damaged: {e}")))?;
                chunks.push(bytes);
            }
            let doc = StoredDoc { snapshot: snapshot.map(|s| binary(s, "snapshot")).transpose()?, chunks };
            docs.push((!doc.is_empty()).then_some(doc));
        }
        Ok(docs)
    }

    async fn append(&self, appends: &[Append]) -> Result<(), StorageError> {
        if appends.is_empty() {
            return Ok(());
        }
        // The outbox joins the transaction only when something is queued or
        // a history replaced, so applying received changes does not wait for
        // the sync engine's reads.
        let replaces = appends.iter().any(|a| a.replace);
        let queues = replaces || appends.iter().any(|a| a.outbox);
        let stores: &[&str] = match (replaces, queues) {
            (true, _) => &[SNAPSHOTS, CHUNKS, ROWS, OUTBOX],
            (false, true) => &[CHUNKS, ROWS, OUTBOX],
            (false, false) => &[CHUNKS, ROWS],
        };
        let (tx, ctx) = self.write_tx(stores)?;
        let chunks = ctx.check(tx.object_store(CHUNKS))?;
        let rows = ctx.check(tx.object_store(ROWS))?;
        let outbox = if queues { Some(ctx.check(tx.object_store(OUTBOX))?) } else { None };
        let snapshots = if replaces { Some(ctx.check(tx.object_store(SNAPSHOTS))?) } else { None };
        // Write-only: every request goes out at once (keys come from the key
        // generator), and the commit waits for all of them. Only replacing a
        // history reads (the keys of the chunks and outbox entries it
        // deletes); requests run in the order they are made, so appends after
        // it in the batch follow it.
        for append in appends {
            let key = append.id.to_string();
            let kind = match (&snapshots, &outbox, append.replace) {
                (Some(snapshots), Some(outbox), true) => {
                    let put = snapshots.put(Uint8ArraySlice::new(&append.chunk)).with_key(key.as_str());
                    ctx.check(put.without_key_type().primitive())?;
                    delete_entries(&ctx, &chunks, append.id).await?;
                    delete_entries(&ctx, outbox, append.id).await?;
                    if append.row.is_none() {
                        ctx.check(rows.delete(key.as_str()).primitive())?;
                    }
                    OutboxKind::Snapshot
                }
                _ => {
                    add_entry(&ctx, &chunks, append.id, &append.chunk)?;
                    OutboxKind::Changes
                }
            };
            if let Some(row) = &append.row {
                let row = rows.put(encode_row(row)).with_key(key.as_str());
                ctx.check(row.without_key_type().primitive())?;
            }
            if let (true, Some(outbox)) = (append.outbox, &outbox) {
                let value = encode_outbox(append.id, &append.chunk, kind).map_err(StorageError::WriteFailed)?;
                ctx.check(outbox.add(value).primitive())?;
            }
        }
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
            if outbox.is_some() { &[SNAPSHOTS, CHUNKS, ROWS, OUTBOX] } else { &[SNAPSHOTS, CHUNKS, ROWS] };
        let (tx, ctx) = self.write_tx(stores)?;
        let snapshots = ctx.check(tx.object_store(SNAPSHOTS))?;
        let chunks = ctx.check(tx.object_store(CHUNKS))?;
        let rows = ctx.check(tx.object_store(ROWS))?;
        let key = id.to_string();
        // The writes go out first; finding the chunks to delete is the one read.
        let put_snapshot = snapshots.put(Uint8ArraySlice::new(snapshot)).with_key(key.as_str());
        ctx.check(put_snapshot.without_key_type().primitive())?;
        ctx.check(rows.put(encode_row(row)).with_key(key.as_str()).without_key_type().primitive())?;
        if let Some(bytes) = outbox {
            add_entry(&ctx, &ctx.check(tx.object_store(OUTBOX))?, id, bytes)?;
        }
        delete_entries(&ctx, &chunks, id).await?;
        ctx.commit(tx).await
    }

    async fn enqueue(&self, entries: &[(RecordId, Vec<u8>)]) -> Result<(), StorageError> {
        if entries.is_empty() {
            return Ok(());
        }
        let (tx, ctx) = self.write_tx(&[OUTBOX])?;
        let outbox = ctx.check(tx.object_store(OUTBOX))?;
        for (id, bytes) in entries {
            add_entry(&ctx, &outbox, *id, bytes)?;
        }
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
            #[allow(clippy::cast_precision_loss)] // seqs come from the key generator: below 2^53
            ctx.check(store.delete(JsValue::from_f64(*seq as f64)).primitive())?;
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
        for store in [CHUNKS, OUTBOX] {
            delete_entries(&ctx, &ctx.check(tx.object_store(store))?, id).await?;
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

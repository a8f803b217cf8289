//! The `upgradeneeded` handler and the schema check after opening: see
//! [`crate::schema`] for what each version holds and what an upgrade does.
//!
//! Everything here runs inside the version-change transaction. Copying the
//! values of a version-2 store takes several requests; each batch is asked
//! for from the success callback of the one before, while the transaction
//! is still active, and the open request succeeds only once the transaction
//! (and so every copy) has committed. Any failure aborts the transaction:
//! the database stays at its old version with its data as it was, and
//! opening fails.

use std::rc::Rc;

use indexed_db_futures::database::Database;
use indexed_db_futures::internals::SystemRepr;
use js_sys::Array;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{
    IdbDatabase, IdbKeyRange, IdbObjectStore, IdbObjectStoreParameters, IdbOpenDbRequest, IdbRequest, IdbTransaction,
    IdbVersionChangeEvent,
};

use crate::schema::{
    record_value, v2_chunk_record, BY_RECORD, CHUNKS, GENERATED, META, OUTBOX, RECORD_FIELD, STORES, V2_NEXT_CHUNK_SEQ,
};

/// Values copied per request when a version-2 store is moved.
const COPY_BATCH: u32 = 500;

/// The `upgradeneeded` handler for an open request. Keep it alive until the
/// request has finished.
pub(crate) type UpgradeHandler = Closure<dyn FnMut(IdbVersionChangeEvent)>;

/// Installs the upgrade handler on `request` (`indexedDB.open`).
pub(crate) fn on_upgrade_needed(request: &IdbOpenDbRequest) -> UpgradeHandler {
    let handler = Closure::<dyn FnMut(IdbVersionChangeEvent)>::new(move |event: IdbVersionChangeEvent| {
        let Some(request) = event.target().and_then(|t| t.dyn_into::<IdbOpenDbRequest>().ok()) else { return };
        let Some(tx) = request.transaction() else { return };
        let outcome = request
            .result()
            .and_then(JsCast::dyn_into::<IdbDatabase>)
            .and_then(|db| upgrade(event.old_version(), &db, &tx));
        if outcome.is_err() {
            // The open request then fails; the database keeps its old version and data.
            let _ = tx.abort();
        }
    });
    request.set_onupgradeneeded(Some(handler.as_ref().unchecked_ref()));
    handler
}

/// Brings a database from `old_version` to the current schema, inside the
/// version-change transaction `tx`.
fn upgrade(old_version: f64, db: &IdbDatabase, tx: &IdbTransaction) -> Result<(), JsValue> {
    let names = db.object_store_names();
    let present: Vec<String> = (0..names.length()).filter_map(|i| names.item(i)).collect();
    let has = |name: &str| present.iter().any(|p| p == name);
    if old_version < 3.0 && has(CHUNKS) {
        move_to_generated_keys(db, tx, CHUNKS, chunk_from_v2)?;
    }
    if old_version < 3.0 && has(OUTBOX) {
        move_to_generated_keys(db, tx, OUTBOX, outbox_from_v2)?;
    }
    for store in STORES {
        if !has(store) {
            create(db, store)?;
        }
    }
    if old_version < 3.0 && has(META) {
        tx.object_store(META)?.delete(&JsValue::from_str(V2_NEXT_CHUNK_SEQ))?;
    }
    Ok(())
}

/// Creates `name` as the current schema has it.
fn create(db: &IdbDatabase, name: &str) -> Result<IdbObjectStore, JsValue> {
    if GENERATED.contains(&name) {
        create_generated(db, name)
    } else {
        db.create_object_store(name)
    }
}

/// Creates a store with the key generator and the [`BY_RECORD`] index.
fn create_generated(db: &IdbDatabase, name: &str) -> Result<IdbObjectStore, JsValue> {
    let params = IdbObjectStoreParameters::new();
    params.set_auto_increment(true);
    let store = db.create_object_store_with_optional_parameters(name, &params)?;
    store.create_index_with_str(BY_RECORD, RECORD_FIELD)?;
    Ok(store)
}

/// Renames the version-2 store `name`, creates it anew with the key
/// generator and its index, copies every value across in key order, then
/// deletes the old one.
fn move_to_generated_keys(db: &IdbDatabase, tx: &IdbTransaction, name: &str, convert: Convert) -> Result<(), JsValue> {
    let old = tx.object_store(name)?;
    let new = create_generated(db, &format!("{name}-v3"))?;
    let old_name = format!("{name}-v2");
    old.set_name(&old_name);
    new.set_name(name);
    let copy = Rc::new(Copy { tx: tx.clone(), db: db.clone(), from: old, from_name: old_name, to: new, convert });
    request_batch(&copy, None)
}

/// What a version-2 value becomes: its key and value in, the new value out.
type Convert = fn(&JsValue, &JsValue) -> Result<JsValue, JsValue>;

/// A chunk keyed `"{record id}/{seq}"` becomes `{ id, bytes }`.
fn chunk_from_v2(key: &JsValue, value: &JsValue) -> Result<JsValue, JsValue> {
    let key = key.as_string().unwrap_or_default();
    record_value(&JsValue::from_str(v2_chunk_record(&key)), value).map_err(|e| JsValue::from_str(&e))
}

/// Outbox values are already `{ id, bytes }`; only their key changes.
fn outbox_from_v2(_key: &JsValue, value: &JsValue) -> Result<JsValue, JsValue> {
    Ok(value.clone())
}

struct Copy {
    tx: IdbTransaction,
    db: IdbDatabase,
    from: IdbObjectStore,
    from_name: String,
    to: IdbObjectStore,
    convert: Convert,
}

/// Asks for the next batch of keys and values after `after`.
fn request_batch(copy: &Rc<Copy>, after: Option<JsValue>) -> Result<(), JsValue> {
    let range: JsValue = match after {
        Some(key) => IdbKeyRange::lower_bound_with_open(&key, true)?.into(),
        None => JsValue::UNDEFINED,
    };
    let keys = copy.from.get_all_keys_with_key_and_limit(&range, COPY_BATCH)?;
    let values = copy.from.get_all_with_key_and_limit(&range, COPY_BATCH)?;
    // Requests of one transaction complete in order: when the values are
    // there, so are the keys.
    let next = Rc::clone(copy);
    let request = values.clone();
    let on_values = Closure::once_into_js(move |_event: web_sys::Event| {
        if copy_batch(&next, &keys, &request).is_err() {
            // The open request fails with the abort; nothing was changed.
            let _ = next.tx.abort();
        }
    });
    values.set_onsuccess(Some(on_values.unchecked_ref()));
    Ok(())
}

fn copy_batch(copy: &Rc<Copy>, keys: &IdbRequest, values: &IdbRequest) -> Result<(), JsValue> {
    let keys: Array = keys.result()?.dyn_into()?;
    let values: Array = values.result()?.dyn_into()?;
    for (key, value) in keys.iter().zip(values.iter()) {
        copy.to.add(&(copy.convert)(&key, &value)?)?;
    }
    if keys.length() < COPY_BATCH {
        copy.db.delete_object_store(&copy.from_name)
    } else {
        request_batch(copy, Some(keys.get(keys.length() - 1)))
    }
}

/// Whether an opened database has every store and index of the schema;
/// `Err` names the first one missing.
pub(crate) fn check_schema(db: &Database) -> Result<(), String> {
    let present: Vec<String> = db.object_store_names().collect();
    if let Some(missing) = STORES.iter().find(|s| !present.iter().any(|p| p == *s)) {
        return Err(format!("{missing:?} object store"));
    }
    let db: IdbDatabase = db.as_sys().clone().into();
    let stores = Array::of2(&CHUNKS.into(), &OUTBOX.into());
    let tx = db.transaction_with_str_sequence(&stores).map_err(|e| crate::error::js_message(&e))?;
    let outcome = GENERATED.iter().try_for_each(|name| {
        let store = tx.object_store(name).map_err(|e| crate::error::js_message(&e))?;
        let indexes = store.index_names();
        if !(0..indexes.length()).any(|i| indexes.item(i).as_deref() == Some(BY_RECORD)) {
            return Err(format!("{BY_RECORD:?} index on its {name:?} store"));
        }
        if !store.auto_increment() {
            return Err(format!("key generator on its {name:?} store"));
        }
        Ok(())
    });
    // Nothing was requested: end the transaction now, so that it does not
    // hold the connection open until the end of the task.
    let _ = tx.abort();
    outcome
}

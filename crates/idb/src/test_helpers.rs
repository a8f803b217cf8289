//! Test-only access to the raw stored values (feature `test-helpers`):
//! corrupt bytes to check that corruption is reported rather than repaired,
//! and dump everything to check that erased data is really gone.

use indexed_db_futures::prelude::*;
use rapport_core::ids::RecordId;
use rapport_core::storage::StorageError;
use wasm_bindgen::{JsCast, JsValue};

use crate::schema::{encode_entry, BY_RECORD, CHUNKS, ROWS, STORES};
use crate::IdbStorage;

impl IdbStorage {
    /// Overwrites the bytes of the document's most recent chunk; `false`
    /// when it has none.
    ///
    /// # Errors
    /// As [`Storage::append`](rapport_core::storage::Storage::append).
    pub async fn corrupt_last_chunk(&self, id: RecordId, bytes: &[u8]) -> Result<bool, StorageError> {
        let (tx, ctx) = self.write_tx(&[CHUNKS])?;
        let store = ctx.check(tx.object_store(CHUNKS))?;
        let by_record = ctx.check(store.index(BY_RECORD))?;
        let keys = ctx.check(by_record.get_all_keys::<JsValue>().with_query(id.to_string()).primitive())?;
        let Some(last) = ctx.check(keys.await)?.next_back() else {
            return Ok(false);
        };
        let last = ctx.check(last)?;
        let value = encode_entry(id, bytes).map_err(StorageError::WriteFailed)?;
        ctx.check(store.put(value).with_key(last).without_key_type().primitive())?;
        ctx.commit(tx).await?;
        Ok(true)
    }

    /// Overwrites a stored row with arbitrary text.
    ///
    /// # Errors
    /// As [`Storage::append`](rapport_core::storage::Storage::append).
    pub async fn corrupt_row(&self, id: RecordId, text: &str) -> Result<(), StorageError> {
        let (tx, ctx) = self.write_tx(&[ROWS])?;
        let store = ctx.check(tx.object_store(ROWS))?;
        ctx.check(store.put(text).with_key(id.to_string()).without_key_type().primitive())?;
        ctx.commit(tx).await
    }

    /// Number of chunks stored for a document.
    ///
    /// # Errors
    /// [`StorageError::ReadFailed`].
    pub async fn chunk_count(&self, id: RecordId) -> Result<usize, StorageError> {
        let (tx, ctx) = self.read_tx(&[CHUNKS])?;
        let store = ctx.check(tx.object_store(CHUNKS))?;
        let by_record = ctx.check(store.index(BY_RECORD))?;
        let keys = ctx.check(by_record.get_all_keys::<JsValue>().with_query(id.to_string()).primitive())?;
        Ok(ctx.check(keys.await)?.len())
    }

    /// Every key and value of every object store, concatenated: binary
    /// values as they are, strings as UTF-8.
    ///
    /// # Errors
    /// [`StorageError::ReadFailed`].
    pub async fn raw_dump(&self) -> Result<Vec<u8>, StorageError> {
        let (tx, ctx) = self.read_tx(&STORES)?;
        let mut out = Vec::new();
        for name in STORES {
            let store = ctx.check(tx.object_store(name))?;
            let keys = ctx.check(store.get_all_keys::<JsValue>().primitive())?;
            let values = ctx.check(store.get_all::<JsValue>().primitive())?;
            for item in ctx.check(keys.await)?.chain(ctx.check(values.await)?) {
                dump_value(&ctx.check(item)?, name, &mut out)?;
            }
        }
        Ok(out)
    }
}

/// Appends a stored value: text as UTF-8, numbers (generated keys) in
/// decimal, bytes as they are, and each field of a plain object (chunks and
/// outbox entries) the same way.
fn dump_value(item: &JsValue, store: &str, out: &mut Vec<u8>) -> Result<(), StorageError> {
    if let Some(text) = item.as_string() {
        out.extend_from_slice(text.as_bytes());
    } else if let Some(number) = item.as_f64() {
        // A generated key.
        out.extend_from_slice(number.to_string().as_bytes());
    } else if let Some(bytes) = item.dyn_ref::<js_sys::Uint8Array>() {
        out.extend_from_slice(&bytes.to_vec());
    } else if item.is_object() && !js_sys::Array::is_array(item) {
        for field in js_sys::Object::values(item.unchecked_ref::<js_sys::Object>()).iter() {
            if field.is_object() && field.dyn_ref::<js_sys::Uint8Array>().is_none() {
                return Err(StorageError::ReadFailed(format!("{store} holds a nested object")));
            }
            dump_value(&field, store, out)?;
        }
    } else {
        return Err(StorageError::ReadFailed(format!(
            "{store} holds a value that is neither text, bytes nor an object"
        )));
    }
    Ok(())
}

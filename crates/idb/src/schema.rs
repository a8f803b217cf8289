//! The IndexedDB schema, version [`SCHEMA_VERSION`]: one database per
//! workspace, six object stores, all with out-of-line string keys.
//!
//! | store | key | value |
//! |---|---|---|
//! | [`SNAPSHOTS`] | record id (hyphenated UUID) | `Uint8Array`: a compacted Automerge document (`save()`) |
//! | [`CHUNKS`] | [`chunk_key`]: `"{record_id}/{seq:016x}"` | `Uint8Array`: one incremental change chunk |
//! | [`ROWS`] | record id | string: the materialised row as JSON ([`encode_row`](rapport_core::storage::encode_row)) |
//! | [`QUARANTINE`] | record id, or the raw key when even that was unreadable | string: JSON of [`Quarantined`](rapport_core::storage::Quarantined) |
//! | [`META`] | any string | `Uint8Array` |
//! | [`OUTBOX`] (since version 2) | [`outbox_key`]: `"{seq:016x}"` | object `{ id: string, bytes: Uint8Array }`: the record id (hyphenated UUID) and one local change waiting for the relay's acknowledgement |
//!
//! [`OUTBOX`] has one index, [`OUTBOX_BY_RECORD`] (key path
//! [`OUTBOX_RECORD_FIELD`], not unique), so removing a record finds its
//! outbox entries without scanning the others.
//!
//! `seq` is one counter for the whole database, kept in [`META`] under
//! [`NEXT_CHUNK_SEQ`] (8 bytes, big-endian) and read and advanced inside
//! every transaction that writes a chunk or an outbox entry, so two tabs
//! writing at once are serialised by IndexedDB and never reuse a sequence
//! number. A chunk queued for sync takes the same `seq` in both stores.
//! Written as 16 hex digits, it makes key order equal write order, so
//! [`chunk_range`] reads one document's chunks in the order they were
//! written and a plain `getAll` on [`OUTBOX`] returns the oldest entries
//! first, across all records. Chunks and outbox entries are written with
//! `add`, not `put`: should the counter ever go wrong, the write fails with
//! a `ConstraintError` instead of overwriting a stored change.
//!
//! Upgrades run in the `upgradeneeded` handler, which creates whatever
//! store (with its indexes) the database lacks: version 1 had the first
//! five stores; opening a version-1 database adds [`OUTBOX`] and its index
//! and keeps every stored value as it is (no other store changed, and the
//! counter simply goes on). A database opened by a newer app version fails
//! to open with a `VersionError`, reported as
//! [`StorageError::Unavailable`](rapport_core::storage::StorageError::Unavailable).

use indexed_db_futures::KeyRange;
use js_sys::{Object, Reflect, Uint8Array};
use rapport_core::ids::RecordId;
use rapport_core::storage::OutboxEntry;
use wasm_bindgen::{JsCast, JsValue};

use crate::error::js_message;

/// The `version` passed to `indexedDB.open`.
pub const SCHEMA_VERSION: u32 = 2;

pub const SNAPSHOTS: &str = "snapshots";
pub const CHUNKS: &str = "chunks";
pub const ROWS: &str = "rows";
pub const QUARANTINE: &str = "quarantine";
pub const META: &str = "meta";
pub const OUTBOX: &str = "outbox";

/// The [`OUTBOX`] index on the record id of each entry.
pub const OUTBOX_BY_RECORD: &str = "by_record";
/// The field of an [`OUTBOX`] value holding the record id (a string).
pub const OUTBOX_RECORD_FIELD: &str = "id";
/// The field of an [`OUTBOX`] value holding the queued bytes (a `Uint8Array`).
pub const OUTBOX_BYTES_FIELD: &str = "bytes";

/// Every object store of [`SCHEMA_VERSION`].
pub const STORES: [&str; 6] = [SNAPSHOTS, CHUNKS, ROWS, QUARANTINE, META, OUTBOX];

/// The [`META`] key of the next chunk sequence number. Reserved: callers of
/// `put_meta` must not use it.
pub const NEXT_CHUNK_SEQ: &str = "rapport-idb/next-chunk-seq";

/// The key of a document's chunk number `seq`.
pub fn chunk_key(id: RecordId, seq: u64) -> String {
    format!("{id}/{seq:016x}")
}

/// Every chunk key of one document, `"{id}/"..="{id}/\u{ffff}"`.
pub fn chunk_range(id: RecordId) -> KeyRange<String> {
    KeyRange::Bound(format!("{id}/"), false, format!("{id}/\u{ffff}"), false)
}

/// The key of outbox entry number `seq`.
pub fn outbox_key(seq: u64) -> String {
    format!("{seq:016x}")
}

/// The `seq` of an outbox key.
///
/// # Errors
/// A message when the key is not 16 hex digits.
pub fn outbox_seq(key: &str) -> Result<u64, String> {
    let valid = key.len() == 16 && key.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    let parsed = if valid { u64::from_str_radix(key, 16).ok() } else { None };
    parsed.ok_or_else(|| format!("the outbox key {key:?} is not 16 hex digits"))
}

/// The stored value of an outbox entry: `{ id, bytes }`.
///
/// # Errors
/// The browser's message should setting a field of a fresh object fail.
pub(crate) fn encode_outbox(id: RecordId, bytes: &[u8]) -> Result<JsValue, String> {
    let value = Object::new();
    let id = JsValue::from_str(&id.to_string());
    let bytes: JsValue = Uint8Array::from(bytes).into();
    for (field, content) in [(OUTBOX_RECORD_FIELD, &id), (OUTBOX_BYTES_FIELD, &bytes)] {
        Reflect::set(&value, &JsValue::from_str(field), content)
            .map_err(|e| format!("the outbox entry could not be built: {}", js_message(&e)))?;
    }
    Ok(value.into())
}

/// An outbox entry from its stored key and value.
///
/// # Errors
/// A message naming the key when either is not what [`encode_outbox`] and
/// [`outbox_key`] write.
pub(crate) fn decode_outbox(key: &JsValue, value: &JsValue) -> Result<OutboxEntry, String> {
    let key = key.as_string().ok_or_else(|| format!("an outbox key is not text: {key:?}"))?;
    let seq = outbox_seq(&key)?;
    let field = |name: &str| Reflect::get(value, &JsValue::from_str(name)).unwrap_or(JsValue::UNDEFINED);
    let id = field(OUTBOX_RECORD_FIELD)
        .as_string()
        .ok_or_else(|| format!("the outbox entry {key} has no record id"))?
        .parse::<RecordId>()
        .map_err(|e| format!("the outbox entry {key} has a bad record id: {e}"))?;
    let bytes = field(OUTBOX_BYTES_FIELD)
        .dyn_into::<Uint8Array>()
        .map_err(|_| format!("the outbox entry {key} holds no binary data"))?
        .to_vec();
    Ok(OutboxEntry { seq, id, bytes })
}

/// Reads the stored counter; a missing counter means no chunk was ever
/// written.
///
/// # Errors
/// A message when the stored value is not 8 bytes.
pub(crate) fn decode_seq(stored: Option<&[u8]>) -> Result<u64, String> {
    match stored {
        None => Ok(0),
        Some(bytes) => bytes
            .try_into()
            .map(u64::from_be_bytes)
            .map_err(|_| format!("the chunk counter ({NEXT_CHUNK_SEQ}) holds {} bytes instead of 8", bytes.len())),
    }
}

#[cfg(test)]
mod tests {
    use wasm_bindgen_test::{wasm_bindgen_test as test, wasm_bindgen_test_configure};

    use super::*;

    wasm_bindgen_test_configure!(run_in_browser);

    #[test]
    fn chunk_keys_sort_in_write_order_within_one_document() {
        let id = RecordId::from_bytes([7; 16]);
        let keys: Vec<_> = [0, 9, 10, 255, 256, u64::MAX].map(|s| chunk_key(id, s)).to_vec();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted);
        assert!(keys
            .iter()
            .all(|k| k.starts_with(&format!("{id}/")) && k.as_str() < format!("{id}/\u{ffff}").as_str()));
    }

    #[test]
    fn outbox_keys_sort_in_seq_order_and_read_back() {
        let seqs = [0, 9, 10, 255, 256, 1 << 53, u64::MAX];
        let keys: Vec<_> = seqs.map(outbox_key).to_vec();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted);
        assert_eq!(keys.iter().map(|k| outbox_seq(k)).collect::<Result<Vec<_>, _>>(), Ok(seqs.to_vec()));
        for bad in ["", "12", "000000000000000G", "+00000000000000f", "0000000000000000f"] {
            assert!(outbox_seq(bad).is_err(), "{bad:?} is not an outbox key");
        }
    }

    #[test]
    fn outbox_values_round_trip_and_damage_is_reported() {
        let id = RecordId::from_bytes([7; 16]);
        let value = encode_outbox(id, b"change").expect("encode");
        let entry = decode_outbox(&JsValue::from_str(&outbox_key(42)), &value).expect("decode");
        assert_eq!(entry, OutboxEntry { seq: 42, id, bytes: b"change".to_vec() });
        assert!(decode_outbox(&JsValue::from_f64(42.0), &value).is_err(), "a numeric key");
        assert!(decode_outbox(&JsValue::from_str(&outbox_key(1)), &JsValue::from_str("text")).is_err());
        let no_bytes = encode_outbox(id, b"").expect("encode");
        Reflect::set(&no_bytes, &JsValue::from_str(OUTBOX_BYTES_FIELD), &JsValue::from_str("x")).expect("set");
        assert!(decode_outbox(&JsValue::from_str(&outbox_key(1)), &no_bytes).is_err());
    }

    #[test]
    fn a_damaged_counter_is_reported_not_reset() {
        assert_eq!(decode_seq(None), Ok(0));
        assert_eq!(decode_seq(Some(&42u64.to_be_bytes())), Ok(42));
        assert!(decode_seq(Some(b"abc")).is_err());
    }
}

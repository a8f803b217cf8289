//! The IndexedDB schema, version [`SCHEMA_VERSION`]: one database per
//! workspace, six object stores.
//!
//! | store | key | value |
//! |---|---|---|
//! | [`SNAPSHOTS`] | record id (hyphenated UUID) | `Uint8Array`: a compacted Automerge document (`save()`) |
//! | [`CHUNKS`] | generated (`autoIncrement`: 1, 2, 3…) | object `{ id: string, bytes: Uint8Array }`: the record id and one incremental change chunk |
//! | [`ROWS`] | record id | string: the materialised row as JSON ([`encode_row`](rapport_core::storage::encode_row)) |
//! | [`QUARANTINE`] | record id, or the raw key when even that was unreadable | string: JSON of [`Quarantined`](rapport_core::storage::Quarantined) |
//! | [`META`] | any string | `Uint8Array` |
//! | [`OUTBOX`] | generated (`autoIncrement`) | object `{ id: string, bytes: Uint8Array, kind?: "snapshot" }`: the record id and one local change waiting for the relay's acknowledgement; with `kind: "snapshot"` ([`KIND_FIELD`], [`SNAPSHOT_KIND`]) the bytes are the record's whole document in a new epoch, sent as a snapshot that replaces its history on the relay |
//!
//! [`CHUNKS`] and [`OUTBOX`] each have one index, [`BY_RECORD`] (key path
//! [`RECORD_FIELD`], not unique): a document's chunks are read, and a
//! record's chunks and outbox entries deleted, through it.
//!
//! **Keys come from IndexedDB's key generator**, so writing a chunk or an
//! outbox entry reads nothing: an edit's transaction is one round of puts
//! (chunk, row, outbox entry) and a commit. The generator only grows, per
//! store and across tabs (IndexedDB serialises the writers), so key order
//! is write order: the index returns one document's chunks in the order
//! they were written, and a plain `getAll` on [`OUTBOX`] returns the oldest
//! entries first. An outbox entry's key is its
//! [`OutboxEntry::seq`](rapport_core::storage::OutboxEntry::seq) (a whole
//! number below 2^53, which the generator never passes).
//!
//! Upgrades run in the `upgradeneeded` handler, inside its version-change
//! transaction, so an upgrade either completes or leaves the old database
//! as it was:
//! - from 0 (a new database): every store is created;
//! - from 1 (no outbox): as from 2, and the outbox is created empty;
//! - from 2: chunks were keyed `"{record id}/{seq:016x}"` with raw bytes as
//!   values, outbox entries `"{seq:016x}"`, both numbered by a counter in
//!   [`META`] ([`V2_NEXT_CHUNK_SEQ`]) that every write read and advanced.
//!   Both stores are renamed, recreated with the key generator, and their
//!   values copied in key order (so each document's chunks and the outbox
//!   keep their order), a few hundred per request; the old stores and the
//!   counter are then deleted. A chunk that was not binary data is copied
//!   as it is (loading that record then reports it, as before the upgrade).
//! - from 3: nothing is rewritten. Version 4 adds snapshot entries to the
//!   outbox (`kind: "snapshot"`); a value without `kind`, as every
//!   version-3 value is, holds changes. The version moves only so that a tab
//!   still running an older app closes its connection (`versionchange`)
//!   instead of reading a snapshot entry as changes and pushing it so (the
//!   relay would then keep the old history's envelopes).
//!
//! A database opened by a newer app version fails to open with a
//! `VersionError`, reported as
//! [`StorageError::Unavailable`](rapport_core::storage::StorageError::Unavailable).

use js_sys::{Object, Reflect, Uint8Array};
use rapport_core::ids::RecordId;
use rapport_core::storage::{OutboxEntry, OutboxKind};
use wasm_bindgen::{JsCast, JsValue};

use crate::error::js_message;

/// The `version` passed to `indexedDB.open`.
pub const SCHEMA_VERSION: u32 = 4;

pub const SNAPSHOTS: &str = "snapshots";
pub const CHUNKS: &str = "chunks";
pub const ROWS: &str = "rows";
pub const QUARANTINE: &str = "quarantine";
pub const META: &str = "meta";
pub const OUTBOX: &str = "outbox";

/// The index of [`CHUNKS`] and of [`OUTBOX`] on the record id of each value.
pub const BY_RECORD: &str = "by_record";
/// The field of a [`CHUNKS`] or [`OUTBOX`] value holding the record id (a string).
pub const RECORD_FIELD: &str = "id";
/// The field of a [`CHUNKS`] or [`OUTBOX`] value holding the bytes (a `Uint8Array`).
pub const BYTES_FIELD: &str = "bytes";
/// The field of an [`OUTBOX`] value saying what it holds; absent for changes.
pub const KIND_FIELD: &str = "kind";
/// [`KIND_FIELD`] of a snapshot entry
/// ([`OutboxKind::Snapshot`](rapport_core::storage::OutboxKind::Snapshot)).
pub const SNAPSHOT_KIND: &str = "snapshot";

/// Every object store of [`SCHEMA_VERSION`].
pub const STORES: [&str; 6] = [SNAPSHOTS, CHUNKS, ROWS, QUARANTINE, META, OUTBOX];
/// The stores whose keys come from the key generator, each with a [`BY_RECORD`] index.
pub const GENERATED: [&str; 2] = [CHUNKS, OUTBOX];

/// The [`META`] key of the chunk counter of versions 1 and 2, deleted by the
/// upgrade to 3.
pub const V2_NEXT_CHUNK_SEQ: &str = "rapport-idb/next-chunk-seq";

/// The record id a version-2 chunk key (`"{record id}/{seq:016x}"`) names:
/// the text before its last `/` (the whole key when there is none).
pub(crate) fn v2_chunk_record(key: &str) -> &str {
    key.rsplit_once('/').map_or(key, |(id, _)| id)
}

/// A stored [`CHUNKS`] or [`OUTBOX`] value: `{ id, bytes }`. `bytes` is
/// usually a `Uint8Array`; the upgrade copies whatever a version-2 chunk held.
///
/// # Errors
/// The browser's message should setting a field of a fresh object fail.
pub(crate) fn record_value(id: &JsValue, bytes: &JsValue) -> Result<JsValue, String> {
    let value = Object::new();
    for (field, content) in [(RECORD_FIELD, id), (BYTES_FIELD, bytes)] {
        Reflect::set(&value, &JsValue::from_str(field), content)
            .map_err(|e| format!("a stored value could not be built: {}", js_message(&e)))?;
    }
    Ok(value.into())
}

/// The stored value of a chunk or an outbox entry of record `id`.
///
/// # Errors
/// As [`record_value`].
pub(crate) fn encode_entry(id: RecordId, bytes: &[u8]) -> Result<JsValue, String> {
    record_value(&JsValue::from_str(&id.to_string()), &Uint8Array::from(bytes).into())
}

/// The stored value of an outbox entry: [`encode_entry`], plus
/// [`KIND_FIELD`] for a snapshot (changes stay as version 3 wrote them).
///
/// # Errors
/// As [`record_value`].
pub(crate) fn encode_outbox(id: RecordId, bytes: &[u8], kind: OutboxKind) -> Result<JsValue, String> {
    let value = encode_entry(id, bytes)?;
    if kind == OutboxKind::Snapshot {
        Reflect::set(&value, &JsValue::from_str(KIND_FIELD), &JsValue::from_str(SNAPSHOT_KIND))
            .map_err(|e| format!("a stored value could not be built: {}", js_message(&e)))?;
    }
    Ok(value)
}

/// The bytes of a stored chunk or outbox entry.
///
/// # Errors
/// A message when the value holds no binary data.
pub(crate) fn entry_bytes(value: &JsValue) -> Result<Vec<u8>, String> {
    Reflect::get(value, &JsValue::from_str(BYTES_FIELD))
        .ok()
        .and_then(|b| b.dyn_into::<Uint8Array>().ok())
        .map(|b| b.to_vec())
        .ok_or_else(|| "it holds no binary data".to_owned())
}

/// The sequence number of a generated key.
///
/// # Errors
/// A message when the key is not a whole number from 0 to 2^53.
pub fn generated_seq(key: &JsValue) -> Result<u64, String> {
    match key.as_f64() {
        // The generator stops at 2^53: such a number is an exact integer.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        Some(n) if n >= 0.0 && n.fract() == 0.0 && n <= 9_007_199_254_740_992.0 => Ok(n as u64),
        _ => Err(format!("the key {key:?} is not a generated key")),
    }
}

/// An outbox entry from its stored key and value.
///
/// # Errors
/// A message naming the key when either is not what [`encode_entry`] and
/// the key generator write.
pub(crate) fn decode_outbox(key: &JsValue, value: &JsValue) -> Result<OutboxEntry, String> {
    let seq = generated_seq(key).map_err(|e| format!("an outbox entry is damaged: {e}"))?;
    let id = Reflect::get(value, &JsValue::from_str(RECORD_FIELD))
        .ok()
        .and_then(|id| id.as_string())
        .ok_or_else(|| format!("the outbox entry {seq} has no record id"))?
        .parse::<RecordId>()
        .map_err(|e| format!("the outbox entry {seq} has a bad record id: {e}"))?;
    let bytes = entry_bytes(value).map_err(|e| format!("the outbox entry {seq} is damaged: {e}"))?;
    let kind = match Reflect::get(value, &JsValue::from_str(KIND_FIELD)).ok().filter(|k| !k.is_undefined()) {
        None => OutboxKind::Changes,
        Some(k) if k.as_string().as_deref() == Some(SNAPSHOT_KIND) => OutboxKind::Snapshot,
        // Never guessed: pushing a snapshot as changes would leave the old
        // history on the relay.
        Some(k) => return Err(format!("the outbox entry {seq} is of an unknown kind {k:?}")),
    };
    Ok(OutboxEntry { seq, id, bytes, kind })
}

#[cfg(test)]
mod tests {
    use wasm_bindgen_test::{wasm_bindgen_test as test, wasm_bindgen_test_configure};

    use super::*;

    wasm_bindgen_test_configure!(run_in_browser);

    #[test]
    fn version_2_chunk_keys_name_their_record() {
        let id = RecordId::from_bytes([7; 16]).to_string();
        assert_eq!(v2_chunk_record(&format!("{id}/00000000000000ff")), id);
        assert_eq!(v2_chunk_record("no-slash"), "no-slash");
    }

    #[test]
    fn generated_keys_read_back_as_seqs_and_anything_else_is_refused() {
        for n in [0u64, 1, 42, 1 << 40, 1 << 53] {
            #[allow(clippy::cast_precision_loss)]
            let key = JsValue::from_f64(n as f64);
            assert_eq!(generated_seq(&key), Ok(n));
        }
        for bad in [JsValue::from_f64(-1.0), JsValue::from_f64(1.5), JsValue::from_f64(1e300), JsValue::from_str("1")] {
            assert!(generated_seq(&bad).is_err(), "{bad:?} is not a generated key");
        }
    }

    #[test]
    fn outbox_values_round_trip_and_damage_is_reported() {
        let id = RecordId::from_bytes([7; 16]);
        let value = encode_entry(id, b"change").expect("encode");
        let entry = decode_outbox(&JsValue::from_f64(42.0), &value).expect("decode");
        assert_eq!(entry, OutboxEntry::changes(42, id, b"change".to_vec()));
        let snapshot = encode_outbox(id, b"doc", OutboxKind::Snapshot).expect("encode");
        let entry = decode_outbox(&JsValue::from_f64(43.0), &snapshot).expect("decode");
        assert_eq!(entry, OutboxEntry { seq: 43, id, bytes: b"doc".to_vec(), kind: OutboxKind::Snapshot });
        let changes = encode_outbox(id, b"c", OutboxKind::Changes).expect("encode");
        assert_eq!(Reflect::get(&changes, &JsValue::from_str(KIND_FIELD)).expect("get"), JsValue::UNDEFINED);
        Reflect::set(&snapshot, &JsValue::from_str(KIND_FIELD), &JsValue::from_str("future")).expect("set");
        assert!(decode_outbox(&JsValue::from_f64(43.0), &snapshot).is_err(), "an unknown kind is reported");
        assert!(decode_outbox(&JsValue::from_str("42"), &value).is_err(), "a text key");
        assert!(decode_outbox(&JsValue::from_f64(1.0), &JsValue::from_str("text")).is_err());
        let no_bytes = encode_entry(id, b"").expect("encode");
        Reflect::set(&no_bytes, &JsValue::from_str(BYTES_FIELD), &JsValue::from_str("x")).expect("set");
        assert!(decode_outbox(&JsValue::from_f64(1.0), &no_bytes).is_err());
        assert_eq!(entry_bytes(&value), Ok(b"change".to_vec()));
    }
}

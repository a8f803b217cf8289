//! The IndexedDB schema, version [`SCHEMA_VERSION`]: one database per
//! workspace, five object stores, all with out-of-line string keys.
//!
//! | store | key | value |
//! |---|---|---|
//! | [`SNAPSHOTS`] | record id (hyphenated UUID) | `Uint8Array`: a compacted Automerge document (`save()`) |
//! | [`CHUNKS`] | [`chunk_key`]: `"{record_id}/{seq:016x}"` | `Uint8Array`: one incremental change chunk |
//! | [`ROWS`] | record id | string: the materialised row as JSON ([`encode_row`](rapport_core::storage::encode_row)) |
//! | [`QUARANTINE`] | record id, or the raw key when even that was unreadable | string: JSON of [`Quarantined`](rapport_core::storage::Quarantined) |
//! | [`META`] | any string | `Uint8Array` |
//!
//! `seq` is one counter for the whole database, kept in [`META`] under
//! [`NEXT_CHUNK_SEQ`] (8 bytes, big-endian) and read and advanced inside
//! every append transaction, so two tabs appending at once are serialised
//! by IndexedDB and never reuse a sequence number. Written as 16 hex digits,
//! it makes key order equal write order, so [`chunk_range`] reads one
//! document's chunks in the order they were written. Chunks are written
//! with `add`, not `put`: should the counter ever go wrong, the append fails
//! with a `ConstraintError` instead of overwriting a stored change.
//!
//! Upgrades: version 1 creates every store. A later version adds its
//! changes to the `upgradeneeded` handler (`create_missing_stores` plus
//! migrations keyed on the old version); a database opened by a newer app
//! version fails to open with a `VersionError`, reported as
//! [`StorageError::Unavailable`](rapport_core::storage::StorageError::Unavailable).

use indexed_db_futures::KeyRange;
use rapport_core::ids::RecordId;

/// The `version` passed to `indexedDB.open`.
pub const SCHEMA_VERSION: u32 = 1;

pub const SNAPSHOTS: &str = "snapshots";
pub const CHUNKS: &str = "chunks";
pub const ROWS: &str = "rows";
pub const QUARANTINE: &str = "quarantine";
pub const META: &str = "meta";

/// Every object store of [`SCHEMA_VERSION`].
pub const STORES: [&str; 5] = [SNAPSHOTS, CHUNKS, ROWS, QUARANTINE, META];

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
    fn a_damaged_counter_is_reported_not_reset() {
        assert_eq!(decode_seq(None), Ok(0));
        assert_eq!(decode_seq(Some(&42u64.to_be_bytes())), Ok(42));
        assert!(decode_seq(Some(b"abc")).is_err());
    }
}

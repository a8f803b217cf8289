//! The data file the browser loader reads (`tests/bench/loader.mjs`):
//!
//! ```text
//! file   = magic "RAPBENCH" · version u32 · meta_len u32 · meta (JSON) · record*
//! record = kind u8 · id (36 ASCII bytes, hyphenated UUID)
//!          · row_len u32 · row (JSON, as rapport_core::storage::encode_row)
//!          · doc_len u32 · doc (Automerge `save()` bytes)
//! ```
//!
//! Integers are little-endian. `meta` holds what the loader writes besides
//! records (the `member_id` and `workspace_id` keys of the app's `meta`
//! store) and the number of records. Each record becomes, in the app's
//! IndexedDB schema, `snapshots[id] = doc` and `rows[id] = row`.

use rapport_core::record::RecordKind;
use rapport_core::storage::encode_row;

use crate::generate::Generated;

pub const MAGIC: &[u8; 8] = b"RAPBENCH";
pub const VERSION: u32 = 1;

pub fn kind_code(kind: RecordKind) -> u8 {
    match kind {
        RecordKind::Workspace => 0,
        RecordKind::Contact => 1,
        RecordKind::Company => 2,
        RecordKind::Deal => 3,
        RecordKind::Activity => 4,
        _ => 9,
    }
}

pub fn header(meta: &serde_json::Value) -> Vec<u8> {
    let meta = serde_json::to_vec(meta).expect("meta serialises");
    let mut out = Vec::with_capacity(16 + meta.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&(meta.len() as u32).to_le_bytes());
    out.extend_from_slice(&meta);
    out
}

/// Appends one record; returns the row's JSON length.
pub fn write_record(out: &mut Vec<u8>, g: &Generated) -> usize {
    let row = encode_row(&g.row);
    let id = g.id.to_string();
    debug_assert_eq!(id.len(), 36);
    out.push(kind_code(g.kind));
    out.extend_from_slice(id.as_bytes());
    out.extend_from_slice(&(row.len() as u32).to_le_bytes());
    out.extend_from_slice(row.as_bytes());
    out.extend_from_slice(&(g.doc.len() as u32).to_le_bytes());
    out.extend_from_slice(&g.doc);
    row.len()
}

//! Tombstones: the workspace's record of which records were erased, when and
//! by whom, with no personal data (record id, kind, instant, member id).
//!
//! # Guarantees
//!
//! - **Grow-only, set union.** Tombstones live in the workspace document as a
//!   map `tombstones{record id → JSON {kind, erased_at, erased_by}}`.
//!   Writers only add entries and never delete one, so replicas that erased
//!   different records concurrently end with both tombstones, and a replica
//!   that writes the workspace from a struct read before a tombstone arrived
//!   does not remove it.
//! - **Robust to a concurrently created map.** An old workspace document has
//!   no `tombstones` map; two replicas creating it concurrently make two map
//!   objects under one key, and Automerge shows only one. Reading unions the
//!   entries of every such map, and the next write copies them into the
//!   visible one, so no tombstone is hidden.
//! - **The same on every replica.** Two tombstones for one record (two
//!   members erased it concurrently) resolve to the earlier `erased_at`, then
//!   the smaller member id, whatever the order in which they met.
//! - **Absent = empty**: documents written before tombstones existed read as
//!   having none, and saving a workspace without tombstones adds no map.
//!
//! A tombstone is not a lock: it says the record's data must be dropped
//! everywhere. It cannot be undone (an erased contact created again is a
//! new record with a new id).

use std::collections::BTreeMap;

use automerge::{AutoCommit, ObjType, ReadDoc, ScalarValue, Value, ROOT};
use serde::{Deserialize, Serialize};

use crate::doc::{self, DecodeError, EncodeError};
use crate::ids::{MemberId, RecordId};
use crate::record::RecordKind;
use crate::Timestamp;

/// Root key of the tombstone map in the workspace document.
pub const KEY: &str = "tombstones";

/// One erased record. Holds no personal data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Tombstone {
    pub record: RecordId,
    pub kind: RecordKind,
    pub erased_at: Timestamp,
    pub erased_by: MemberId,
}

impl Tombstone {
    /// The order that decides between two tombstones of one record: the
    /// smaller is kept.
    fn rank(&self) -> (Timestamp, MemberId, RecordKind) {
        (self.erased_at, self.erased_by, self.kind)
    }
}

/// The set of tombstones of a workspace, keyed by record id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tombstones(BTreeMap<RecordId, Tombstone>);

impl Tombstones {
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether `id` was erased: nothing of it may be stored, applied or
    /// pushed any more.
    pub fn is_erased(&self, id: RecordId) -> bool {
        self.0.contains_key(&id)
    }

    pub fn get(&self, id: RecordId) -> Option<&Tombstone> {
        self.0.get(&id)
    }

    /// Adds a tombstone; returns `true` when the record was not erased yet.
    /// For a record already erased the earlier tombstone is kept (see the
    /// module doc), so insertion order never matters.
    pub fn insert(&mut self, t: Tombstone) -> bool {
        match self.0.get_mut(&t.record) {
            None => {
                self.0.insert(t.record, t);
                true
            }
            Some(existing) => {
                if t.rank() < existing.rank() {
                    *existing = t;
                }
                false
            }
        }
    }

    /// Set union with another replica's tombstones.
    pub fn merge(&mut self, other: &Tombstones) {
        for t in other.iter() {
            self.insert(*t);
        }
    }

    /// Every tombstone, in record id order.
    pub fn iter(&self) -> impl Iterator<Item = &Tombstone> {
        self.0.values()
    }

    /// Every erased record id, in order.
    pub fn ids(&self) -> impl Iterator<Item = RecordId> + '_ {
        self.0.keys().copied()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl FromIterator<Tombstone> for Tombstones {
    fn from_iter<I: IntoIterator<Item = Tombstone>>(iter: I) -> Self {
        let mut out = Tombstones::new();
        for t in iter {
            out.insert(t);
        }
        out
    }
}

/// The stored form: the record id is the map key.
#[derive(Serialize, Deserialize)]
struct Stored {
    kind: RecordKind,
    erased_at: Timestamp,
    erased_by: MemberId,
}

/// Reads the tombstones of a workspace document (absent = none), from every
/// concurrently created map and every concurrent value of an entry.
///
/// # Errors
/// [`DecodeError`] naming `tombstones.<key>` when a key is not a record id or
/// an entry is not the JSON of a tombstone. Corrupt data is reported, never
/// skipped: a skipped tombstone would let erased data come back.
pub fn read(doc: &AutoCommit) -> Result<Tombstones, DecodeError> {
    let mut out = Tombstones::new();
    for (value, map) in doc.get_all(&ROOT, KEY)? {
        if !matches!(value, Value::Object(ObjType::Map)) {
            return Err(DecodeError::WrongType { field: KEY.into(), expected: "map" });
        }
        for key in doc.keys(&map) {
            let field = format!("{KEY}.{key}");
            let record: RecordId = key.parse().map_err(|_| DecodeError::Invalid {
                field: field.clone(),
                reason: "the key is not a record id (a UUID)".into(),
            })?;
            for (value, _) in doc.get_all(&map, key.as_str())? {
                let text = match value {
                    Value::Scalar(s) => match s.as_ref() {
                        ScalarValue::Str(s) => s.to_string(),
                        _ => return Err(DecodeError::WrongType { field, expected: "text" }),
                    },
                    Value::Object(_) => return Err(DecodeError::WrongType { field, expected: "text" }),
                };
                let stored: Stored = serde_json::from_str(&text)
                    .map_err(|e| DecodeError::Invalid { field: field.clone(), reason: e.to_string() })?;
                out.insert(Tombstone {
                    record,
                    kind: stored.kind,
                    erased_at: stored.erased_at,
                    erased_by: stored.erased_by,
                });
            }
        }
    }
    Ok(out)
}

/// Adds the tombstones missing from the document's visible map (creating it
/// only when there is something to write). Never deletes an entry.
///
/// # Errors
/// [`EncodeError`] on an internal Automerge failure.
pub fn write(doc: &mut AutoCommit, tombstones: &Tombstones) -> Result<(), EncodeError> {
    if tombstones.is_empty() {
        return Ok(());
    }
    let map = doc::ensure_map(doc, &ROOT, KEY)?;
    for t in tombstones.iter() {
        let key = t.record.to_string();
        let text = serde_json::to_string(&Stored { kind: t.kind, erased_at: t.erased_at, erased_by: t.erased_by })
            .map_err(|e| EncodeError(e.to_string()))?;
        // A present entry is left alone, even when it is a different copy
        // of the same erasure: reading resolves copies the same way
        // everywhere, and rewriting would only add churn.
        if doc.get(&map, key.as_str())?.is_none() {
            doc::put_str(doc, &map, &key, Some(&text))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use automerge::transaction::Transactable;

    fn t(n: u8, at: i64, by: u8) -> Tombstone {
        Tombstone {
            record: RecordId::from_bytes([n; 16]),
            kind: RecordKind::Contact,
            erased_at: Timestamp::from_millis(at),
            erased_by: MemberId::from_bytes([by; 16]),
        }
    }

    fn ws_doc() -> AutoCommit {
        let mut doc = AutoCommit::new();
        doc::init_root(&mut doc, "workspace", 1).unwrap();
        doc
    }

    #[test]
    fn tombstones_round_trip_through_the_workspace_document() {
        let set: Tombstones = [t(1, 10, 7), t(2, 20, 8)].into_iter().collect();
        let mut doc = ws_doc();
        write(&mut doc, &set).unwrap();
        assert_eq!(read(&doc).unwrap(), set);
    }

    #[test]
    fn a_document_without_tombstones_reads_as_none_and_writing_none_adds_nothing() {
        let mut doc = ws_doc();
        assert!(read(&doc).unwrap().is_empty());
        let heads = doc.get_heads();
        write(&mut doc, &Tombstones::new()).unwrap();
        assert_eq!(doc.get_heads(), heads);
        assert!(doc.get(&ROOT, KEY).unwrap().is_none());
    }

    #[test]
    fn writing_never_removes_a_tombstone_added_concurrently() {
        let mut a = ws_doc();
        write(&mut a, &[t(1, 10, 7)].into_iter().collect()).unwrap();
        let mut b = a.fork();
        // B's struct was read before A's second erasure arrived.
        let stale = read(&b).unwrap();
        write(&mut a, &[t(1, 10, 7), t(2, 20, 7)].into_iter().collect()).unwrap();
        b.merge(&mut a).unwrap();
        write(&mut b, &stale).unwrap();
        assert!(read(&b).unwrap().is_erased(RecordId::from_bytes([2; 16])));
    }

    #[test]
    fn maps_created_concurrently_by_two_replicas_both_count() {
        let mut a = ws_doc();
        let mut b = a.fork();
        write(&mut a, &[t(1, 10, 7)].into_iter().collect()).unwrap();
        write(&mut b, &[t(2, 20, 8)].into_iter().collect()).unwrap();
        a.merge(&mut b).unwrap();
        assert_eq!(a.get_all(&ROOT, KEY).unwrap().len(), 2, "two map objects under one key");
        let both = read(&a).unwrap();
        assert_eq!(both.len(), 2);
        // The next write copies the hidden entries into the visible map.
        write(&mut a, &both).unwrap();
        let visible = doc::get_map(&a, &ROOT, KEY).unwrap().unwrap();
        assert_eq!(doc::map_keys(&a, &visible).len(), 2);
    }

    #[test]
    fn two_erasures_of_one_record_resolve_to_the_earlier_whatever_the_order() {
        let early = t(1, 10, 9);
        let late = t(1, 20, 1);
        let one: Tombstones = [early, late].into_iter().collect();
        let other: Tombstones = [late, early].into_iter().collect();
        assert_eq!(one, other);
        assert_eq!(one.get(early.record), Some(&early));

        let mut a = ws_doc();
        let mut b = a.fork();
        write(&mut a, &[early].into_iter().collect()).unwrap();
        write(&mut b, &[late].into_iter().collect()).unwrap();
        a.merge(&mut b).unwrap();
        b.merge(&mut a).unwrap();
        assert_eq!(read(&a).unwrap().get(early.record), Some(&early));
        assert_eq!(read(&b).unwrap(), read(&a).unwrap());
    }

    #[test]
    fn a_corrupt_tombstone_is_reported_naming_its_field() {
        let mut doc = ws_doc();
        let map = doc.put_object(&ROOT, KEY, ObjType::Map).unwrap();
        doc.put(&map, RecordId::from_bytes([1; 16]).to_string(), "{not json").unwrap();
        let err = read(&doc).unwrap_err();
        assert!(matches!(&err, DecodeError::Invalid { field, .. } if field.starts_with("tombstones.")), "{err:?}");

        let mut doc = ws_doc();
        let map = doc.put_object(&ROOT, KEY, ObjType::Map).unwrap();
        doc.put(&map, "not-an-id", "{}").unwrap();
        assert!(matches!(read(&doc).unwrap_err(), DecodeError::Invalid { .. }));
    }

    #[test]
    fn a_tombstone_holds_no_personal_data() {
        let mut doc = ws_doc();
        write(&mut doc, &[t(1, 10, 7)].into_iter().collect()).unwrap();
        let map = doc::get_map(&doc, &ROOT, KEY).unwrap().unwrap();
        let text = doc::req_str(&doc, &map, &RecordId::from_bytes([1; 16]).to_string()).unwrap();
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        let keys: Vec<&str> = json.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys, ["erased_at", "erased_by", "kind"]);
    }
}

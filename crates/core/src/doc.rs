//! Reading and writing record fields in Automerge documents.
//!
//! Conventions (written down in docs/ARCHITECTURE.md):
//! - short fields are scalar strings (last writer wins per field, conflicts
//!   visible through [`crate::conflict`]); long free text (notes) is a Text object so
//!   concurrent edits interleave instead of overwriting;
//! - collections that replicas grow concurrently (emails, phones, tags,
//!   consent events, custom values) are maps keyed by a stable id, so
//!   concurrent additions are a set union;
//! - every document has a `kind` and a `schema` at its root.
//!
//! Writers only touch a field when its value changed, so an edit produces a
//! small change and leaves untouched fields free to merge.

use std::collections::{BTreeMap, BTreeSet};

use crate::ids::MemberId;
use crate::Timestamp;
use automerge::transaction::Transactable;
use automerge::{AutoCommit, ObjId, ObjType, ReadDoc, ScalarValue, Value, ROOT};

/// Why a stored or received document could not be read as a record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("the bytes are not a valid Automerge document: {0}")]
    Automerge(String),
    #[error("field {field:?} is missing")]
    Missing { field: String },
    #[error("field {field:?} has the wrong type: expected {expected}")]
    WrongType { field: String, expected: &'static str },
    #[error("field {field:?} holds an invalid value: {reason}")]
    Invalid { field: String, reason: String },
    #[error("expected a {expected} document, found {found:?}")]
    WrongKind { expected: &'static str, found: String },
    #[error("document schema {found} is newer than this app understands ({supported}); update the app")]
    NewerSchema { found: u64, supported: u64 },
}

impl From<automerge::AutomergeError> for DecodeError {
    fn from(e: automerge::AutomergeError) -> Self {
        DecodeError::Automerge(e.to_string())
    }
}

/// A failure while writing a record into its document. Writing into a
/// well-formed document only fails on an internal inconsistency, so this is
/// a thin wrapper that keeps Automerge's message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("could not write the record into its document: {0}")]
pub struct EncodeError(pub String);

impl From<automerge::AutomergeError> for EncodeError {
    fn from(e: automerge::AutomergeError) -> Self {
        EncodeError(e.to_string())
    }
}

/// Reads a scalar string; `None` when absent.
pub fn get_str<D: ReadDoc>(doc: &D, obj: &ObjId, key: &str) -> Result<Option<String>, DecodeError> {
    match doc.get(obj, key)? {
        None => Ok(None),
        Some((Value::Scalar(s), _)) => match s.as_ref() {
            ScalarValue::Str(s) => Ok(Some(s.to_string())),
            ScalarValue::Null => Ok(None),
            _ => Err(DecodeError::WrongType { field: key.into(), expected: "text" }),
        },
        Some((Value::Object(ObjType::Text), id)) => Ok(Some(doc.text(&id)?)),
        Some(_) => Err(DecodeError::WrongType { field: key.into(), expected: "text" }),
    }
}

/// Reads a scalar string that must be present.
pub fn req_str<D: ReadDoc>(doc: &D, obj: &ObjId, key: &str) -> Result<String, DecodeError> {
    get_str(doc, obj, key)?.ok_or_else(|| DecodeError::Missing { field: key.into() })
}

/// Reads an integer (signed, unsigned or a timestamp scalar).
pub fn get_i64<D: ReadDoc>(doc: &D, obj: &ObjId, key: &str) -> Result<Option<i64>, DecodeError> {
    match doc.get(obj, key)? {
        None => Ok(None),
        Some((Value::Scalar(s), _)) => match s.as_ref() {
            ScalarValue::Int(i) | ScalarValue::Timestamp(i) => Ok(Some(*i)),
            ScalarValue::Uint(u) => Ok(i64::try_from(*u).ok()),
            ScalarValue::F64(f) if f.fract() == 0.0 => Ok(Some(*f as i64)),
            ScalarValue::Null => Ok(None),
            _ => Err(DecodeError::WrongType { field: key.into(), expected: "integer" }),
        },
        Some(_) => Err(DecodeError::WrongType { field: key.into(), expected: "integer" }),
    }
}

/// Reads a float (integers are widened).
pub fn get_f64<D: ReadDoc>(doc: &D, obj: &ObjId, key: &str) -> Result<Option<f64>, DecodeError> {
    match doc.get(obj, key)? {
        None => Ok(None),
        Some((Value::Scalar(s), _)) => match s.as_ref() {
            ScalarValue::F64(f) => Ok(Some(*f)),
            ScalarValue::Int(i) => Ok(Some(*i as f64)),
            ScalarValue::Uint(u) => Ok(Some(*u as f64)),
            ScalarValue::Null => Ok(None),
            _ => Err(DecodeError::WrongType { field: key.into(), expected: "number" }),
        },
        Some(_) => Err(DecodeError::WrongType { field: key.into(), expected: "number" }),
    }
}

/// Reads a boolean; absent reads as `false`.
pub fn get_bool<D: ReadDoc>(doc: &D, obj: &ObjId, key: &str) -> Result<bool, DecodeError> {
    match doc.get(obj, key)? {
        None => Ok(false),
        Some((Value::Scalar(s), _)) => match s.as_ref() {
            ScalarValue::Boolean(b) => Ok(*b),
            ScalarValue::Null => Ok(false),
            _ => Err(DecodeError::WrongType { field: key.into(), expected: "boolean" }),
        },
        Some(_) => Err(DecodeError::WrongType { field: key.into(), expected: "boolean" }),
    }
}

/// Returns the id of a nested map, if present.
pub fn get_map<D: ReadDoc>(doc: &D, obj: &ObjId, key: &str) -> Result<Option<ObjId>, DecodeError> {
    match doc.get(obj, key)? {
        None => Ok(None),
        Some((Value::Object(ObjType::Map), id)) => Ok(Some(id)),
        Some(_) => Err(DecodeError::WrongType { field: key.into(), expected: "map" }),
    }
}

/// Reads a list of scalar strings (absent reads as empty).
pub fn get_str_list<D: ReadDoc>(doc: &D, obj: &ObjId, key: &str) -> Result<Vec<String>, DecodeError> {
    let list = match doc.get(obj, key)? {
        None => return Ok(Vec::new()),
        Some((Value::Object(ObjType::List), id)) => id,
        Some(_) => return Err(DecodeError::WrongType { field: key.into(), expected: "list" }),
    };
    let mut out = Vec::new();
    for item in doc.list_range(&list, ..) {
        match item.value.into_value() {
            Value::Scalar(s) => match s.as_ref() {
                ScalarValue::Str(s) => out.push(s.to_string()),
                _ => return Err(DecodeError::WrongType { field: key.into(), expected: "list of text" }),
            },
            _ => return Err(DecodeError::WrongType { field: key.into(), expected: "list of text" }),
        }
    }
    Ok(out)
}

/// Writes a scalar string only if it differs from what is there. `None` or an
/// empty string deletes the field.
pub fn put_str(doc: &mut AutoCommit, obj: &ObjId, key: &str, value: Option<&str>) -> Result<(), EncodeError> {
    let value = value.filter(|v| !v.is_empty());
    let current = get_str(doc, obj, key).ok().flatten();
    // A field with concurrent values is rewritten even when the winner already
    // matches: writing resolves the conflict in favour of the chosen value.
    let conflicted = doc.get_all(obj, key)?.len() > 1;
    if current.as_deref() == value && !conflicted {
        return Ok(());
    }
    match value {
        Some(v) => doc.put(obj, key, v)?,
        None => doc.delete(obj, key)?,
    }
    Ok(())
}

/// Writes an integer only if it differs.
pub fn put_i64(doc: &mut AutoCommit, obj: &ObjId, key: &str, value: Option<i64>) -> Result<(), EncodeError> {
    if get_i64(doc, obj, key).ok().flatten() == value && doc.get_all(obj, key)?.len() <= 1 {
        return Ok(());
    }
    match value {
        Some(v) => doc.put(obj, key, v)?,
        None => doc.delete(obj, key)?,
    }
    Ok(())
}

/// Writes a float only if it differs.
pub fn put_f64(doc: &mut AutoCommit, obj: &ObjId, key: &str, value: Option<f64>) -> Result<(), EncodeError> {
    if get_f64(doc, obj, key).ok().flatten() == value && doc.get_all(obj, key)?.len() <= 1 {
        return Ok(());
    }
    match value {
        Some(v) => doc.put(obj, key, v)?,
        None => doc.delete(obj, key)?,
    }
    Ok(())
}

/// Writes a boolean only if it differs; `false` is stored explicitly once set.
pub fn put_bool(doc: &mut AutoCommit, obj: &ObjId, key: &str, value: bool) -> Result<(), EncodeError> {
    if get_bool(doc, obj, key).ok() == Some(value) && doc.get_all(obj, key)?.len() <= 1 {
        return Ok(());
    }
    doc.put(obj, key, value)?;
    Ok(())
}

/// Returns the nested map at `key`, creating it when absent.
pub fn ensure_map(doc: &mut AutoCommit, obj: &ObjId, key: &str) -> Result<ObjId, EncodeError> {
    match doc.get(obj, key)? {
        Some((Value::Object(ObjType::Map), id)) => Ok(id),
        _ => Ok(doc.put_object(obj, key, ObjType::Map)?),
    }
}

/// Updates a Text object to `value` with a minimal diff, creating it if needed.
/// Concurrent edits to different parts of the text both survive.
pub fn put_text(doc: &mut AutoCommit, obj: &ObjId, key: &str, value: &str) -> Result<(), EncodeError> {
    let text = match doc.get(obj, key)? {
        Some((Value::Object(ObjType::Text), id)) => id,
        _ => {
            if value.is_empty() {
                return Ok(());
            }
            doc.put_object(obj, key, ObjType::Text)?
        }
    };
    if doc.text(&text)? != value {
        doc.update_text(&text, value)?;
    }
    Ok(())
}

/// Replaces a list of strings when it differs.
pub fn put_str_list(doc: &mut AutoCommit, obj: &ObjId, key: &str, values: &[String]) -> Result<(), EncodeError> {
    if get_str_list(doc, obj, key).ok().as_deref() == Some(values) {
        return Ok(());
    }
    let list = doc.put_object(obj, key, ObjType::List)?;
    for (i, v) in values.iter().enumerate() {
        doc.insert(&list, i, v.as_str())?;
    }
    Ok(())
}

/// Parses an id stored as text, naming the field when it is not one.
pub fn parse_id<T: std::str::FromStr>(text: &str, field: &str) -> Result<T, DecodeError> {
    text.parse().map_err(|_| DecodeError::Invalid { field: field.into(), reason: format!("{text:?} is not an id") })
}

/// Reads an optional id (record, member, entry…) stored as text.
pub fn get_id<T: std::str::FromStr, D: ReadDoc>(doc: &D, obj: &ObjId, key: &str) -> Result<Option<T>, DecodeError> {
    get_str(doc, obj, key)?.map(|s| parse_id(&s, key)).transpose()
}

/// Writes an optional id as text (absent deletes the field).
pub fn put_id<T: ToString>(doc: &mut AutoCommit, obj: &ObjId, key: &str, value: Option<&T>) -> Result<(), EncodeError> {
    put_str(doc, obj, key, value.map(ToString::to_string).as_deref())
}

/// Writes who created a record and who last changed it, and its deleted
/// flag: the root fields every sales record keeps under the same keys.
///
/// # Errors
/// [`EncodeError`] from Automerge.
pub fn put_authorship(
    doc: &mut AutoCommit,
    created: (Timestamp, MemberId),
    updated: (Timestamp, MemberId),
    deleted: bool,
) -> Result<(), EncodeError> {
    put_i64(doc, &ROOT, "created_at", Some(created.0.as_millis()))?;
    put_id(doc, &ROOT, "created_by", Some(&created.1))?;
    put_i64(doc, &ROOT, "updated_at", Some(updated.0.as_millis()))?;
    put_id(doc, &ROOT, "updated_by", Some(&updated.1))?;
    put_bool(doc, &ROOT, "deleted", deleted)
}

/// Reads a set stored as a map of `key → true` (absent reads as empty).
pub fn read_key_set<T: std::str::FromStr + Ord, D: ReadDoc>(
    doc: &D,
    obj: &ObjId,
    key: &str,
) -> Result<BTreeSet<T>, DecodeError> {
    let Some(map) = get_map(doc, obj, key)? else { return Ok(BTreeSet::new()) };
    map_keys(doc, &map).iter().map(|k| parse_id(k, key)).collect()
}

/// Writes a set as a map of `key → true`, so that concurrent additions are a
/// union and a removal only removes what its replica saw.
pub fn write_key_set<T: ToString>(
    doc: &mut AutoCommit,
    obj: &ObjId,
    key: &str,
    values: &BTreeSet<T>,
) -> Result<(), EncodeError> {
    let map = ensure_map(doc, obj, key)?;
    let wanted: BTreeSet<String> = values.iter().map(ToString::to_string).collect();
    for existing in map_keys(doc, &map) {
        if !wanted.contains(&existing) {
            doc.delete(&map, existing.as_str())?;
        }
    }
    for v in &wanted {
        if doc.get(&map, v.as_str())?.is_none() {
            doc.put(&map, v.as_str(), true)?;
        }
    }
    Ok(())
}

/// Reads a map of strings (custom field values); absent reads as empty.
pub fn read_str_map<D: ReadDoc>(doc: &D, obj: &ObjId, key: &str) -> Result<BTreeMap<String, String>, DecodeError> {
    let mut out = BTreeMap::new();
    if let Some(m) = get_map(doc, obj, key)? {
        for k in map_keys(doc, &m) {
            if let Some(v) = get_str(doc, &m, &k)? {
                out.insert(k, v);
            }
        }
    }
    Ok(out)
}

/// Writes a map of strings entry by entry, so different entries merge.
pub fn write_str_map(
    doc: &mut AutoCommit,
    obj: &ObjId,
    key: &str,
    values: &BTreeMap<String, String>,
) -> Result<(), EncodeError> {
    let map = ensure_map(doc, obj, key)?;
    for existing in map_keys(doc, &map) {
        if !values.contains_key(&existing) {
            doc.delete(&map, existing.as_str())?;
        }
    }
    for (k, v) in values {
        put_str(doc, &map, k, Some(v))?;
    }
    Ok(())
}

/// Keys of a map, in Automerge's (sorted) order.
pub fn map_keys<D: ReadDoc>(doc: &D, obj: &ObjId) -> Vec<String> {
    doc.keys(obj).collect()
}

/// Writes `kind` and `schema` at the root of a new document.
pub fn init_root(doc: &mut AutoCommit, kind: &str, schema: u64) -> Result<(), EncodeError> {
    put_str(doc, &ROOT, "kind", Some(kind))?;
    if get_i64(doc, &ROOT, "schema").ok().flatten() != Some(schema as i64) {
        doc.put(&ROOT, "schema", schema)?;
    }
    Ok(())
}

/// Checks a document's `kind` and `schema` before it is read as a record.
pub fn check_root<D: ReadDoc>(doc: &D, kind: &'static str, supported: u64) -> Result<(), DecodeError> {
    let found = req_str(doc, &ROOT, "kind")?;
    if found != kind {
        return Err(DecodeError::WrongKind { expected: kind, found });
    }
    let schema = get_i64(doc, &ROOT, "schema")?.unwrap_or(1) as u64;
    if schema > supported {
        return Err(DecodeError::NewerSchema { found: schema, supported });
    }
    Ok(())
}

//! The fields a user sees on each kind of record, by name, read straight
//! from the record's document: which of them hold values set concurrently
//! on two replicas (a conflict, shown with a one-click pick), how a pick
//! is written, and which of them changed between two versions of a
//! document (what an open form says was changed elsewhere).
//!
//! One catalogue per record kind ([`catalogue`]) lists its fields and
//! their shapes: a scalar, an address (five scalars), email or phone
//! entries (a value and a label each), custom values (a map of scalars), a
//! tag-like set, or free text. Scalars are last-writer-wins registers, so
//! concurrent values are conflicts; sets merge by union and free text
//! (notes) interleaves by design, so neither ever conflicts, but both show
//! as changed.
//!
//! ```
//! use automerge::AutoCommit;
//! use rapport_core::conflict::conflicts;
//! use rapport_core::contact::Contact;
//! use rapport_core::ids::{MemberId, RecordId};
//! use rapport_core::record::Record;
//! use rapport_core::workspace::Workspace;
//! use rapport_core::Timestamp;
//!
//! let (me, now) = (MemberId::from_bytes([1; 16]), Timestamp::from_millis(1));
//! let ws = Workspace::new(RecordId::from_bytes([9; 16]), "Acme", me, "Sam", now);
//! let mut ada = Contact::new(RecordId::from_bytes([2; 16]), now, me);
//! ada.given_name = "Ada".into();
//! let mut a = AutoCommit::new().with_actor(vec![1u8; 16].into());
//! rapport_core::doc::init_root(&mut a, "contact", 1).unwrap();
//! ada.write_doc(&mut a).unwrap();
//! let mut b = a.fork().with_actor(vec![2u8; 16].into());
//! ada.address.city = "Bergen".into();
//! ada.write_doc(&mut a).unwrap();
//! ada.address.city = "Oslo".into();
//! ada.write_doc(&mut b).unwrap();
//! a.merge(&mut b).unwrap();
//! let found = conflicts(&a, &ws);
//! assert_eq!(found[0].label, "City");
//! assert_eq!(found[0].values.len(), 2);
//! ```

use std::collections::BTreeMap;

use automerge::transaction::Transactable;
use automerge::{AutoCommit, ChangeHash, ObjId, ObjType, ReadDoc, ScalarValue, Value, ROOT};

use crate::doc::{self, EncodeError};
use crate::ids::MemberId;
use crate::record::RecordKind;
use crate::workspace::Workspace;
use crate::Timestamp;

/// How a scalar field's value reads to a person.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueKind {
    /// Shown as stored.
    Text,
    /// A member id: shown as the member's name.
    Member,
    /// A record id: the app shows the record's current name.
    Record,
    /// A deal's value in minor units of the deal's currency.
    Money,
    /// A deal's standing (pipeline, stage, status): shown as the stage.
    Stage,
    /// A whole percentage.
    Percent,
    /// Minutes.
    Minutes,
    /// An instant (UTC milliseconds): the app shows it in local time.
    Instant,
}

/// The shape of one catalogued field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// One scalar under the key.
    Scalar(ValueKind),
    /// A map of street, city, region, postal code and country.
    Address,
    /// Email addresses or phone numbers: a map of entry id → {value, label};
    /// the name is the singular shown in the form ("Email", "Phone").
    Entries(&'static str),
    /// Custom field values: a map of field id → value, named by the
    /// workspace's field definitions.
    Custom,
    /// A set stored as a map of key → true: concurrent additions are a
    /// union, so it never conflicts.
    Set,
    /// Free text (Automerge Text): concurrent edits interleave, so it
    /// never conflicts.
    Text,
}

/// One field of a record kind: its root key, its name and its shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spec {
    pub key: &'static str,
    pub label: &'static str,
    pub shape: Shape,
}

const fn spec(key: &'static str, label: &'static str, shape: Shape) -> Spec {
    Spec { key, label, shape }
}

const TEXT: Shape = Shape::Scalar(ValueKind::Text);
const MEMBER: Shape = Shape::Scalar(ValueKind::Member);
const RECORD: Shape = Shape::Scalar(ValueKind::Record);

const CONTACT: &[Spec] = &[
    spec("given_name", "Given name", TEXT),
    spec("family_name", "Family name", TEXT),
    spec("company_name", "Company", TEXT),
    spec("title", "Job title", TEXT),
    spec("emails", "Email", Shape::Entries("Email")),
    spec("phones", "Phone", Shape::Entries("Phone")),
    spec("address", "Address", Shape::Address),
    spec("owner", "Owner", MEMBER),
    spec("tags", "Tags", Shape::Set),
    spec("custom", "More fields", Shape::Custom),
    spec("notes", "Notes", Shape::Text),
];

const COMPANY: &[Spec] = &[
    spec("name", "Company name", TEXT),
    spec("domain", "Web domain", TEXT),
    spec("industry", "Industry", TEXT),
    spec("size", "Size (people)", TEXT),
    spec("address", "Address", Shape::Address),
    spec("owner", "Owner", MEMBER),
    spec("tags", "Tags", Shape::Set),
    spec("custom", "More fields", Shape::Custom),
    spec("notes", "Notes", Shape::Text),
];

const DEAL: &[Spec] = &[
    spec("title", "Title", TEXT),
    spec("value", "Value", Shape::Scalar(ValueKind::Money)),
    spec("currency", "Currency", TEXT),
    spec("standing", "Stage", Shape::Scalar(ValueKind::Stage)),
    spec("probability", "Probability", Shape::Scalar(ValueKind::Percent)),
    spec("expected_close", "Expected close date", TEXT),
    spec("owner", "Owner", MEMBER),
    spec("company", "Company", RECORD),
    spec("contacts", "Contacts", Shape::Set),
    spec("tags", "Tags", Shape::Set),
    spec("custom", "More fields", Shape::Custom),
    spec("notes", "Notes", Shape::Text),
];

const TASK: &[Spec] = &[
    spec("title", "Title", TEXT),
    spec("due_date", "Due date", TEXT),
    spec("due_time", "Time", TEXT),
    spec("assignee", "Assigned to", MEMBER),
    spec("priority", "Priority", TEXT),
    spec("link", "Linked record", RECORD),
    spec("done_at", "Done", Shape::Scalar(ValueKind::Instant)),
    spec("notes", "Notes", Shape::Text),
];

const ACTIVITY: &[Spec] = &[
    spec("type", "Type", TEXT),
    spec("subject", "Subject", TEXT),
    spec("at", "When", Shape::Scalar(ValueKind::Instant)),
    spec("duration_minutes", "Duration", Shape::Scalar(ValueKind::Minutes)),
    spec("outcome", "Outcome", TEXT),
    spec("company", "Company", RECORD),
    spec("deal", "Deal", RECORD),
    spec("contacts", "Contacts", Shape::Set),
    spec("participants", "Team members", Shape::Set),
    spec("body", "Notes", Shape::Text),
];

const ADDRESS: [(&str, &str); 5] = [
    ("street", "Street"),
    ("city", "City"),
    ("region", "Region"),
    ("postal_code", "Postal code"),
    ("country", "Country"),
];

/// The fields a person sees on a record of `kind` (empty for kinds without
/// record pages).
pub fn catalogue(kind: RecordKind) -> &'static [Spec] {
    match kind {
        RecordKind::Contact => CONTACT,
        RecordKind::Company => COMPANY,
        RecordKind::Deal => DEAL,
        RecordKind::Task => TASK,
        RecordKind::Activity => ACTIVITY,
        _ => &[],
    }
}

/// The kind of a record document, from its root `kind` field.
fn kind_of<D: ReadDoc>(doc: &D) -> Option<RecordKind> {
    doc::get_str(doc, &ROOT, "kind").ok().flatten()?.parse().ok()
}

/// One of the values a conflicted field holds.
#[derive(Debug, Clone, PartialEq)]
pub struct Choice {
    /// The value as stored (written back as is when picked).
    pub value: ScalarValue,
    /// The value as a person reads it (for [`ValueKind::Record`] and
    /// [`ValueKind::Instant`], the id or milliseconds: the app names them).
    pub shown: String,
}

/// A field whose value replicas set concurrently.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldConflict {
    /// Keys from the document's root to the field
    /// (`["address", "city"]`, `["phones", <entry id>, "value"]`).
    pub path: Vec<String>,
    /// The field's name as the form shows it ("City", "Phone 1 label").
    pub label: String,
    pub kind: ValueKind,
    /// The value in use first, then the values it beat; never two equal.
    pub values: Vec<Choice>,
}

/// A visible field and the text of its current value, for comparing two
/// versions of a document.
struct Seen {
    path: Vec<String>,
    label: String,
    text: String,
}

fn scalar_text(value: &ScalarValue) -> String {
    match value {
        ScalarValue::Str(s) => s.to_string(),
        ScalarValue::Null => String::new(),
        other => other.to_string(),
    }
}

fn as_i64(value: &ScalarValue) -> Option<i64> {
    match value {
        ScalarValue::Int(i) | ScalarValue::Timestamp(i) => Some(*i),
        ScalarValue::Uint(u) => i64::try_from(*u).ok(),
        ScalarValue::F64(f) => Some(*f as i64),
        ScalarValue::Str(s) => s.parse().ok(),
        _ => None,
    }
}

/// How a value of `kind` reads, as far as the document and workspace tell.
fn shown<D: ReadDoc>(doc: &D, ws: &Workspace, kind: ValueKind, value: &ScalarValue) -> String {
    let text = scalar_text(value);
    if text.is_empty() {
        return "(empty)".into();
    }
    match kind {
        ValueKind::Member => text.parse::<MemberId>().map(|m| ws.member_name(m)).unwrap_or(text),
        ValueKind::Money => {
            let currency = doc::get_str(doc, &ROOT, "currency").ok().flatten().unwrap_or_else(|| ws.currency.clone());
            as_i64(value).map(|v| crate::sales::money::format(v, &currency)).unwrap_or(text)
        }
        ValueKind::Stage => serde_json::from_str::<crate::sales::deal::Standing>(&text)
            .ok()
            .and_then(|s| ws.stage(&s.pipeline, &s.stage).map(|st| st.name.clone()))
            .unwrap_or_else(|| "Other stage".into()),
        ValueKind::Percent => format!("{text} %"),
        ValueKind::Minutes => format!("{text} min"),
        ValueKind::Text | ValueKind::Record | ValueKind::Instant => text,
    }
}

/// Every scalar at `key` of `obj`, the winner first, duplicates dropped.
fn values_at<D: ReadDoc>(doc: &D, obj: &ObjId, key: &str) -> Vec<ScalarValue> {
    let Ok(all) = doc.get_all(obj, key) else { return Vec::new() };
    let mut out: Vec<ScalarValue> = Vec::new();
    // get_all lists the winner last.
    for (v, _) in all.into_iter().rev() {
        if let Value::Scalar(s) = v {
            let s = s.into_owned();
            if !out.iter().any(|o| scalar_text(o) == scalar_text(&s)) {
                out.push(s);
            }
        }
    }
    out
}

fn map_at<D: ReadDoc>(doc: &D, obj: &ObjId, key: &str) -> Option<ObjId> {
    doc::get_map(doc, obj, key).ok().flatten()
}

/// Walks every visible field of the document, calling `visit` with its
/// path, name, value kind (`None` for sets and text, which never conflict),
/// the object holding it and its key.
fn walk<D: ReadDoc>(
    doc: &D,
    ws: &Workspace,
    mut visit: impl FnMut(Vec<String>, String, Option<ValueKind>, &ObjId, &str),
) {
    let Some(kind) = kind_of(doc) else { return };
    for spec in catalogue(kind) {
        match spec.shape {
            Shape::Scalar(k) => visit(vec![spec.key.into()], spec.label.into(), Some(k), &ROOT, spec.key),
            Shape::Address => {
                if let Some(addr) = map_at(doc, &ROOT, spec.key) {
                    for (f, label) in ADDRESS {
                        visit(vec![spec.key.into(), f.into()], label.into(), Some(ValueKind::Text), &addr, f);
                    }
                }
            }
            Shape::Entries(name) => {
                let Some(map) = map_at(doc, &ROOT, spec.key) else { continue };
                // Numbered as the form numbers them: in entry id order.
                for (i, id) in doc::map_keys(doc, &map).into_iter().enumerate() {
                    let Some(entry) = map_at(doc, &map, &id) else { continue };
                    let n = i + 1;
                    let path = |part: &str| vec![spec.key.to_owned(), id.clone(), part.to_owned()];
                    visit(path("value"), format!("{name} {n}"), Some(ValueKind::Text), &entry, "value");
                    visit(path("label"), format!("{name} {n} label"), Some(ValueKind::Text), &entry, "label");
                }
            }
            Shape::Custom => {
                let Some(map) = map_at(doc, &ROOT, spec.key) else { continue };
                for field in doc::map_keys(doc, &map) {
                    let label = ws.custom_fields.get(&field).map(|d| d.label.clone()).unwrap_or_else(|| field.clone());
                    visit(vec![spec.key.into(), field.clone()], label, Some(ValueKind::Text), &map, &field);
                }
            }
            Shape::Set | Shape::Text => visit(vec![spec.key.into()], spec.label.into(), None, &ROOT, spec.key),
        }
    }
}

/// Every visible field of a record document that holds concurrent values,
/// in the order the record's page lists its fields. Sets and notes never
/// conflict (see the module doc).
pub fn conflicts<D: ReadDoc>(doc: &D, ws: &Workspace) -> Vec<FieldConflict> {
    let mut out = Vec::new();
    walk(doc, ws, |path, label, kind, obj, key| {
        let Some(kind) = kind else { return };
        let values = values_at(doc, obj, key);
        if values.len() > 1 {
            let values =
                values.into_iter().map(|value| Choice { shown: shown(doc, ws, kind, &value), value }).collect();
            out.push(FieldConflict { path, label, kind, values });
        }
    });
    out
}

fn seen<D: ReadDoc>(doc: &D, ws: &Workspace) -> Vec<Seen> {
    let mut out = Vec::new();
    walk(doc, ws, |path, label, kind, obj, key| {
        let text = match kind {
            Some(k) => values_at(doc, obj, key).first().map(|v| shown(doc, ws, k, v)).unwrap_or_default(),
            None => match doc.get(obj, key) {
                Ok(Some((Value::Object(ObjType::Text), id))) => doc.text(&id).unwrap_or_default(),
                Ok(Some((Value::Object(ObjType::Map), id))) => doc::map_keys(doc, &id).join("\u{1f}"),
                _ => String::new(),
            },
        };
        out.push(Seen { path, label, text });
    });
    out
}

/// The names of the visible fields whose value differs between the
/// document at `base` (the heads a form was opened at) and now, in the
/// order the form lists them; each name once. Empty when `base` is not in
/// the document's history (nothing can be said) or nothing visible changed.
pub fn changed_since(doc: &mut AutoCommit, base: &[ChangeHash], ws: &Workspace) -> Vec<String> {
    if base.iter().any(|h| doc.get_change_by_hash(h).is_none()) {
        return Vec::new();
    }
    let Ok(then) = doc.fork_at(base) else { return Vec::new() };
    let before = seen(&then, ws);
    let now = seen(doc, ws);
    let old: BTreeMap<&Vec<String>, &str> = before.iter().map(|s| (&s.path, s.text.as_str())).collect();
    let mut labels: Vec<String> = Vec::new();
    let mut add = |label: &str| {
        if !labels.iter().any(|l| l == label) {
            labels.push(label.to_owned());
        }
    };
    for s in &now {
        if old.get(&s.path).copied().unwrap_or("") != s.text {
            add(&s.label);
        }
    }
    // A removed email or phone line, or custom value, counts as changed.
    for s in &before {
        if !s.text.is_empty() && !now.iter().any(|n| n.path == s.path) {
            add(&s.label);
        }
    }
    labels
}

/// Why a pick could not be written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PickError {
    #[error("that field is no longer in the record")]
    Gone,
    #[error(transparent)]
    Encode(#[from] EncodeError),
}

/// Writes `choice` into the conflicted field at `path` (one of
/// [`FieldConflict::values`]), which resolves the conflict on every
/// replica once synced, and marks the record as changed by `by` at `now`.
///
/// # Errors
/// [`PickError::Gone`] when the path no longer leads to a field (its
/// email line was removed meanwhile); [`PickError::Encode`] from Automerge.
pub fn pick(
    doc: &mut AutoCommit,
    path: &[String],
    choice: &Choice,
    now: Timestamp,
    by: MemberId,
) -> Result<(), PickError> {
    let (key, parents) = path.split_last().ok_or(PickError::Gone)?;
    let mut obj = ROOT;
    for p in parents {
        obj = doc::get_map(doc, &obj, p).ok().flatten().ok_or(PickError::Gone)?;
    }
    match &choice.value {
        ScalarValue::Null => doc.delete(&obj, key.as_str()).map_err(EncodeError::from)?,
        ScalarValue::Str(s) if s.is_empty() => doc.delete(&obj, key.as_str()).map_err(EncodeError::from)?,
        value => doc.put(&obj, key.as_str(), value.clone()).map_err(EncodeError::from)?,
    }
    doc::put_i64(doc, &ROOT, "updated_at", Some(now.as_millis()))?;
    doc::put_id(doc, &ROOT, "updated_by", Some(&by))?;
    Ok(())
}

#[cfg(test)]
mod tests;

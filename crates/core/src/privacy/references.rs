//! How records point at people, so that erasure, access export and
//! retention find every record about a data subject without loading every
//! document.
//!
//! A record that points at another (an activity about a contact, a deal that
//! names one) lists its [`Reference`]s in its materialised row, in the
//! [`REFS_COLUMN`] column (JSON written by [`refs_column`]). Rows are all in
//! memory, so finding everything that references a person is one pass over
//! them ([`referencing`]).
//!
//! Adding a record type that points at people means:
//! 1. implement [`Referencing`] for it (which fields point where, and how to
//!    remove a reference);
//! 2. in its `Record::row`, put `refs_column(&self.references())` under
//!    [`REFS_COLUMN`] (leave the column out when there are none).
//!
//! # Guarantees and limits
//!
//! Only references that a record declares are found. A person named in free
//! text (a deal titled "Ada's order", a note mentioning her) is not a
//! reference; the erasure preview lists what will be scrubbed, and what was
//! typed by hand elsewhere has to be found by the user (the access export's
//! search over rows can help). A row whose references cannot be read is
//! reported ([`RowReferences::Unreadable`]), never treated as having none.

use serde::{Deserialize, Serialize};

use crate::ids::RecordId;
use crate::record::Row;

/// The row column that lists a record's references.
pub const REFS_COLUMN: &str = "refs";

/// What a reference says about the record that holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// The record is about the target (a call with them, a note on them): it
    /// is erased with the target, unless it is also about someone else.
    About,
    /// The record names the target among other content (a deal's contact, a
    /// ticket's requester): erasing the target removes the reference.
    Mentions,
}

/// One pointer from a record to another record.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Reference {
    pub target: RecordId,
    pub role: Role,
    /// The field that holds the pointer (`contact`, `participants`…).
    pub field: String,
}

/// Implemented by every record type that points at other records.
pub trait Referencing {
    /// Every reference this record holds.
    fn references(&self) -> Vec<Reference>;

    /// Removes every reference to `subject` (and any copy of the subject's
    /// personal data the record holds next to it), returning the fields it
    /// changed. Scrubbing is an edit: the old value stays in the document's
    /// history, so the scrubbed document must then be rewritten with
    /// [`crate::privacy::epoch::rewrite_without_history`].
    fn scrub(&mut self, subject: RecordId) -> Vec<String>;
}

/// The column value listing `refs` (empty when there are none, so the
/// column can be left out).
pub fn refs_column(refs: &[Reference]) -> String {
    if refs.is_empty() {
        return String::new();
    }
    serde_json::to_string(refs).unwrap_or_default()
}

/// A row's references as read from its [`REFS_COLUMN`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RowReferences {
    Read(Vec<Reference>),
    /// The column is not the JSON [`refs_column`] writes: the document has to
    /// be loaded to know what the record points at.
    Unreadable(String),
}

/// Reads a row's references.
pub fn row_references(row: &Row) -> RowReferences {
    match row.columns.get(REFS_COLUMN).map(String::as_str) {
        None | Some("") => RowReferences::Read(Vec::new()),
        Some(text) => match serde_json::from_str(text) {
            Ok(refs) => RowReferences::Read(refs),
            Err(e) => RowReferences::Unreadable(e.to_string()),
        },
    }
}

/// Every row that references `subject`, with the references to it, and the
/// rows whose references could not be read (with the reason).
pub fn referencing<'a>(subject: RecordId, rows: impl IntoIterator<Item = &'a Row>) -> ReferencesTo<'a> {
    let mut out = ReferencesTo::default();
    for row in rows {
        if row.id == subject {
            continue;
        }
        match row_references(row) {
            RowReferences::Read(refs) => {
                if refs.iter().any(|r| r.target == subject) {
                    out.found.push((row, refs));
                }
            }
            RowReferences::Unreadable(reason) => out.unreadable.push((row, reason)),
        }
    }
    out
}

/// What [`referencing`] found.
#[derive(Debug, Default)]
pub struct ReferencesTo<'a> {
    /// Rows that reference the subject, with all their references.
    pub found: Vec<(&'a Row, Vec<Reference>)>,
    /// Rows whose references could not be read.
    pub unreadable: Vec<(&'a Row, String)>,
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::record::RecordKind;
    use crate::Timestamp;

    /// A row of a future record type that points at contacts.
    pub(crate) fn row_with(n: u8, kind: RecordKind, title: &str, refs: &[Reference]) -> Row {
        let mut row = Row {
            id: RecordId::from_bytes([n; 16]),
            kind,
            title: title.into(),
            subtitle: String::new(),
            columns: Default::default(),
            tags: Vec::new(),
            updated_at: Timestamp::from_millis(1),
            deleted: false,
        };
        let column = refs_column(refs);
        if !column.is_empty() {
            row.columns.insert(REFS_COLUMN.into(), column);
        }
        row
    }

    pub(crate) fn about(n: u8) -> Reference {
        Reference { target: RecordId::from_bytes([n; 16]), role: Role::About, field: "contact".into() }
    }

    pub(crate) fn mentions(n: u8) -> Reference {
        Reference { target: RecordId::from_bytes([n; 16]), role: Role::Mentions, field: "contacts".into() }
    }

    #[test]
    fn references_round_trip_through_the_row_column() {
        let refs = vec![about(1), mentions(2)];
        let row = row_with(5, RecordKind::Activity, "Call", &refs);
        assert_eq!(row_references(&row), RowReferences::Read(refs));
        assert_eq!(row_references(&row_with(6, RecordKind::Deal, "Deal", &[])), RowReferences::Read(vec![]));
    }

    #[test]
    fn rows_referencing_a_subject_are_found_and_unreadable_ones_reported() {
        let subject = RecordId::from_bytes([1; 16]);
        let mut broken = row_with(7, RecordKind::Deal, "Broken", &[]);
        broken.columns.insert(REFS_COLUMN.into(), "[not json".into());
        let rows = [
            row_with(5, RecordKind::Activity, "Call with Ada", &[about(1)]),
            row_with(6, RecordKind::Deal, "Other", &[mentions(2)]),
            broken,
        ];
        let found = referencing(subject, &rows);
        assert_eq!(found.found.len(), 1);
        assert_eq!(found.found[0].0.title, "Call with Ada");
        assert_eq!(found.unreadable.len(), 1);
        assert_eq!(found.unreadable[0].0.title, "Broken");
    }
}

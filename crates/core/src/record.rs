//! What every record type shares: its kind, its mapping to and from an
//! Automerge document, and the compact materialised [`Row`] that lists and
//! search use without loading the document (lazy hydration).
//!
//! Adding a record type (deal, ticket…) means implementing [`Record`] for a
//! plain struct; storage, compaction, quarantine and (later) sync work on
//! documents and rows and need no change.

use std::fmt;
use std::str::FromStr;

use automerge::AutoCommit;
use serde::{Deserialize, Serialize};

use crate::doc::{DecodeError, EncodeError};
use crate::ids::RecordId;
use crate::Timestamp;

/// Every kind of document in a workspace (the scope of the design brief).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordKind {
    Workspace,
    Contact,
    Company,
    Deal,
    Activity,
    Task,
    Ticket,
    Segment,
    Campaign,
}

impl RecordKind {
    pub const ALL: [RecordKind; 9] = [
        RecordKind::Workspace,
        RecordKind::Contact,
        RecordKind::Company,
        RecordKind::Deal,
        RecordKind::Activity,
        RecordKind::Task,
        RecordKind::Ticket,
        RecordKind::Segment,
        RecordKind::Campaign,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            RecordKind::Workspace => "workspace",
            RecordKind::Contact => "contact",
            RecordKind::Company => "company",
            RecordKind::Deal => "deal",
            RecordKind::Activity => "activity",
            RecordKind::Task => "task",
            RecordKind::Ticket => "ticket",
            RecordKind::Segment => "segment",
            RecordKind::Campaign => "campaign",
        }
    }
}

impl fmt::Display for RecordKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown record kind {0:?}")]
pub struct UnknownKind(pub String);

impl FromStr for RecordKind {
    type Err = UnknownKind;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        RecordKind::ALL.into_iter().find(|k| k.as_str() == s).ok_or_else(|| UnknownKind(s.to_owned()))
    }
}

/// A row's columns, built field by field: empty values are left out, so a
/// row carries no column that says nothing (and search and sort skip it).
#[derive(Debug, Default)]
pub struct Columns(std::collections::BTreeMap<String, String>);

impl Columns {
    pub fn put(&mut self, key: &str, value: impl Into<String>) {
        let value = value.into();
        if !value.is_empty() {
            self.0.insert(key.to_owned(), value);
        }
    }

    pub fn into_map(self) -> std::collections::BTreeMap<String, String> {
        self.0
    }
}

/// The materialised view of one record: what the list, search and sort need,
/// kept next to the document in storage and rewritten with every edit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Row {
    pub id: RecordId,
    pub kind: RecordKind,
    /// Display name (a contact's full name, a deal's title).
    pub title: String,
    /// Secondary line (a contact's title and company).
    #[serde(default)]
    pub subtitle: String,
    /// Kind-specific list columns, e.g. `email`, `phone`, `company`, `owner`.
    #[serde(default)]
    pub columns: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    pub tags: Vec<String>,
    pub updated_at: Timestamp,
    /// Soft-deleted (undo-able). Erasure is different: it removes the row.
    #[serde(default)]
    pub deleted: bool,
}

impl Row {
    pub fn column(&self, name: &str) -> &str {
        self.columns.get(name).map(String::as_str).unwrap_or("")
    }
}

/// A plain domain struct stored as one Automerge document.
pub trait Record: Sized {
    const KIND: RecordKind;
    /// Highest document schema this code reads and writes.
    const SCHEMA: u64 = 1;

    fn id(&self) -> RecordId;

    /// Reads the record from its document.
    ///
    /// # Errors
    /// [`DecodeError`] when the document is not of this kind or a field is
    /// malformed.
    fn from_doc(doc: &AutoCommit) -> Result<Self, DecodeError>;

    /// Writes the record into `doc`, touching only fields that changed so
    /// that concurrent edits of other fields merge.
    ///
    /// # Errors
    /// [`EncodeError`] on an internal Automerge failure.
    fn write_doc(&self, doc: &mut AutoCommit) -> Result<(), EncodeError>;

    /// The materialised row for lists and search.
    fn row(&self) -> Row;
}

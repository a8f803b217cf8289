//! Deals: an opportunity with a value, moving through the stages of a
//! pipeline until it is won or lost.
//!
//! Where a deal stands (pipeline, stage, open/won/lost, when it closed and
//! why) is one scalar in the document, written whole by every move. Two
//! members moving the same deal at once therefore converge on one of their
//! moves, never on a mix (a "Won" status with an open stage). Every move
//! also adds an entry to the stage history, a map keyed by a fresh id, so
//! concurrent moves are all kept in the history.

use std::collections::{BTreeMap, BTreeSet};

use automerge::{AutoCommit, ROOT};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::doc::{self, DecodeError, EncodeError};
use crate::form::{self, Checker, FormErrors};
use crate::ids::{EntryId, MemberId, RecordId};
use crate::privacy::references::{refs_column, Reference, Referencing, Role, REFS_COLUMN};
use crate::record::{Columns, Record, RecordKind, Row};
use crate::validate::FieldError;
use crate::workspace::Workspace;
use crate::Timestamp;

use super::money;
use super::pipeline::{Outcome, PipelineId, StageId};

/// Where a deal stands: written whole, so concurrent moves never mix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Standing {
    pub pipeline: PipelineId,
    pub stage: StageId,
    pub status: Outcome,
    /// When it was won or lost.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed_at: Option<Timestamp>,
    /// Why it was won or lost.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
}

/// One move in a deal's stage history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageChange {
    /// `None` for the stage a deal was created in.
    pub from: Option<(PipelineId, StageId)>,
    pub to: (PipelineId, StageId),
    pub at: Timestamp,
    pub by: MemberId,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Deal {
    pub id: RecordId,
    pub title: String,
    /// In minor units of `currency`.
    pub value: i64,
    pub currency: String,
    pub standing: Standing,
    /// Overrides the stage's default probability (percent).
    pub probability: Option<u8>,
    pub expected_close: Option<NaiveDate>,
    pub owner: Option<MemberId>,
    pub contacts: BTreeSet<RecordId>,
    pub company: Option<RecordId>,
    pub history: BTreeMap<EntryId, StageChange>,
    pub tags: BTreeSet<String>,
    pub notes: String,
    pub custom: BTreeMap<String, String>,
    pub created_at: Timestamp,
    pub created_by: MemberId,
    pub updated_at: Timestamp,
    pub updated_by: MemberId,
    pub deleted: bool,
}

/// Why a stage move was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoveError {
    #[error("That stage does not exist in this workspace's pipelines")]
    UnknownStage,
    #[error("That stage is archived; choose another")]
    ArchivedStage,
    #[error("Say why the deal was lost")]
    LostNeedsReason,
}

impl Deal {
    /// A new deal in `pipeline`'s `stage`, with the creation as the first
    /// history entry.
    pub fn new(
        id: RecordId,
        pipeline: PipelineId,
        stage: StageId,
        entry: EntryId,
        now: Timestamp,
        by: MemberId,
    ) -> Self {
        let mut history = BTreeMap::new();
        history.insert(entry, StageChange { from: None, to: (pipeline.clone(), stage.clone()), at: now, by });
        Self {
            id,
            title: String::new(),
            value: 0,
            currency: "EUR".into(),
            standing: Standing { pipeline, stage, status: Outcome::Open, closed_at: None, reason: String::new() },
            probability: None,
            expected_close: None,
            owner: Some(by),
            contacts: BTreeSet::new(),
            company: None,
            history,
            tags: BTreeSet::new(),
            notes: String::new(),
            custom: BTreeMap::new(),
            created_at: now,
            created_by: by,
            updated_at: now,
            updated_by: by,
            deleted: false,
        }
    }

    pub fn touch(&mut self, now: Timestamp, by: MemberId) {
        self.updated_at = now.max(self.updated_at);
        self.updated_by = by;
    }

    /// Moves the deal to `stage` of `pipeline`: its status follows the
    /// stage's outcome, a won or lost deal records when and why (a lost one
    /// must say why), a won deal without an expected close date closes
    /// `today`, and the move is added to the history. Moving to the stage it
    /// is in changes nothing, unless its status does not match the stage's
    /// outcome (a new deal created straight into Won or Lost): then it closes
    /// as that stage says, without a second history entry.
    ///
    /// # Errors
    /// [`MoveError`]; the deal is unchanged.
    #[allow(clippy::too_many_arguments)]
    pub fn move_to(
        &mut self,
        ws: &Workspace,
        pipeline: &str,
        stage: &str,
        reason: &str,
        entry: EntryId,
        now: Timestamp,
        today: NaiveDate,
        by: MemberId,
    ) -> Result<(), MoveError> {
        let same = self.standing.pipeline == pipeline && self.standing.stage == stage;
        if same && ws.stage(pipeline, stage).is_none_or(|s| s.outcome == self.standing.status) {
            return Ok(());
        }
        let target = ws.stage(pipeline, stage).ok_or(MoveError::UnknownStage)?;
        if target.archived {
            return Err(MoveError::ArchivedStage);
        }
        let reason = reason.trim();
        if target.outcome == Outcome::Lost && reason.is_empty() {
            return Err(MoveError::LostNeedsReason);
        }
        let from = (self.standing.pipeline.clone(), self.standing.stage.clone());
        self.standing = Standing {
            pipeline: pipeline.to_owned(),
            stage: stage.to_owned(),
            status: target.outcome,
            closed_at: (target.outcome != Outcome::Open).then_some(now),
            reason: if target.outcome == Outcome::Open { String::new() } else { reason.to_owned() },
        };
        if target.outcome == Outcome::Won && self.expected_close.is_none() {
            self.expected_close = Some(today);
        }
        if !same {
            self.history.insert(
                entry,
                StageChange { from: Some(from), to: (pipeline.to_owned(), stage.to_owned()), at: now, by },
            );
        }
        self.touch(now, by);
        Ok(())
    }

    /// The history, oldest first.
    pub fn history_in_order(&self) -> Vec<&StageChange> {
        let mut out: Vec<_> = self.history.iter().collect();
        out.sort_by_key(|(id, c)| (c.at, **id));
        out.into_iter().map(|(_, c)| c).collect()
    }
}

/// The probability used for a deal: its override, else its stage's default;
/// won deals count fully and lost ones not at all.
pub fn effective_probability(ws: &Workspace, standing: &Standing, probability: Option<u8>) -> u8 {
    match standing.status {
        Outcome::Won => 100,
        Outcome::Lost => 0,
        Outcome::Open => probability
            .or_else(|| ws.stage(&standing.pipeline, &standing.stage).map(|s| s.probability))
            .unwrap_or(0)
            .min(100),
    }
}

/// `value × probability`, rounded half up to a minor unit.
pub fn weighted(value: i64, probability: u8) -> i64 {
    let p = i128::from(probability.min(100));
    ((i128::from(value) * p + 50) / 100) as i64
}

impl Referencing for Deal {
    fn references(&self) -> Vec<Reference> {
        let mut refs: Vec<Reference> = self
            .contacts
            .iter()
            .map(|c| Reference { target: *c, role: Role::Mentions, field: "contacts".into() })
            .collect();
        if let Some(company) = self.company {
            refs.push(Reference { target: company, role: Role::Mentions, field: "company".into() });
        }
        refs
    }

    fn scrub(&mut self, subject: RecordId) -> Vec<String> {
        let mut fields = Vec::new();
        if self.contacts.remove(&subject) {
            fields.push("contacts".into());
        }
        if self.company == Some(subject) {
            self.company = None;
            fields.push("company".into());
        }
        fields
    }
}

fn to_json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

fn json<T: for<'de> Deserialize<'de>>(text: &str, field: &str) -> Result<T, DecodeError> {
    serde_json::from_str(text).map_err(|e| DecodeError::Invalid { field: field.into(), reason: e.to_string() })
}

impl Record for Deal {
    const KIND: RecordKind = RecordKind::Deal;

    fn id(&self) -> RecordId {
        self.id
    }

    fn from_doc(doc: &AutoCommit) -> Result<Self, DecodeError> {
        doc::check_root(doc, Self::KIND.as_str(), Self::SCHEMA)?;
        let created_by: MemberId =
            doc::get_id(doc, &ROOT, "created_by")?.ok_or(DecodeError::Missing { field: "created_by".into() })?;
        let mut history = BTreeMap::new();
        if let Some(m) = doc::get_map(doc, &ROOT, "history")? {
            for k in doc::map_keys(doc, &m) {
                let field = format!("history.{k}");
                let change = json(&doc::req_str(doc, &m, &k)?, &field)?;
                history.insert(doc::parse_id(&k, &field)?, change);
            }
        }
        let expected_close = match doc::get_str(doc, &ROOT, "expected_close")? {
            Some(s) => Some(
                NaiveDate::parse_from_str(&s, "%Y-%m-%d")
                    .map_err(|e| DecodeError::Invalid { field: "expected_close".into(), reason: e.to_string() })?,
            ),
            None => None,
        };
        Ok(Self {
            id: doc::parse_id(&doc::req_str(doc, &ROOT, "id")?, "id")?,
            title: doc::get_str(doc, &ROOT, "title")?.unwrap_or_default(),
            value: doc::get_i64(doc, &ROOT, "value")?.unwrap_or(0),
            currency: doc::get_str(doc, &ROOT, "currency")?.unwrap_or_else(|| "EUR".into()),
            standing: json(&doc::req_str(doc, &ROOT, "standing")?, "standing")?,
            probability: doc::get_i64(doc, &ROOT, "probability")?.map(|p| p.clamp(0, 100) as u8),
            expected_close,
            owner: doc::get_id(doc, &ROOT, "owner")?,
            contacts: doc::read_key_set(doc, &ROOT, "contacts")?,
            company: doc::get_id(doc, &ROOT, "company")?,
            history,
            tags: doc::read_key_set(doc, &ROOT, "tags")?,
            notes: doc::get_str(doc, &ROOT, "notes")?.unwrap_or_default(),
            custom: doc::read_str_map(doc, &ROOT, "custom")?,
            created_at: Timestamp::from_millis(doc::get_i64(doc, &ROOT, "created_at")?.unwrap_or(0)),
            created_by,
            updated_at: Timestamp::from_millis(doc::get_i64(doc, &ROOT, "updated_at")?.unwrap_or(0)),
            updated_by: doc::get_id(doc, &ROOT, "updated_by")?.unwrap_or(created_by),
            deleted: doc::get_bool(doc, &ROOT, "deleted")?,
        })
    }

    fn write_doc(&self, doc: &mut AutoCommit) -> Result<(), EncodeError> {
        doc::put_str(doc, &ROOT, "id", Some(&self.id.to_string()))?;
        doc::put_str(doc, &ROOT, "title", Some(&self.title))?;
        doc::put_i64(doc, &ROOT, "value", Some(self.value))?;
        doc::put_str(doc, &ROOT, "currency", Some(&self.currency))?;
        doc::put_str(doc, &ROOT, "standing", Some(&to_json(&self.standing)))?;
        doc::put_i64(doc, &ROOT, "probability", self.probability.map(i64::from))?;
        let close = self.expected_close.map(|d| d.format("%Y-%m-%d").to_string());
        doc::put_str(doc, &ROOT, "expected_close", close.as_deref())?;
        doc::put_id(doc, &ROOT, "owner", self.owner.as_ref())?;
        doc::write_key_set(doc, &ROOT, "contacts", &self.contacts)?;
        doc::put_id(doc, &ROOT, "company", self.company.as_ref())?;
        let history = doc::ensure_map(doc, &ROOT, "history")?;
        // History entries are only ever added.
        for (id, change) in &self.history {
            let key = id.to_string();
            if doc::get_str(doc, &history, &key).ok().flatten().is_none() {
                doc::put_str(doc, &history, &key, Some(&to_json(change)))?;
            }
        }
        doc::write_key_set(doc, &ROOT, "tags", &self.tags)?;
        doc::put_text(doc, &ROOT, "notes", &self.notes)?;
        doc::write_str_map(doc, &ROOT, "custom", &self.custom)?;
        doc::put_authorship(doc, (self.created_at, self.created_by), (self.updated_at, self.updated_by), self.deleted)
    }

    fn row(&self) -> Row {
        let mut columns = Columns::default();
        columns.put(columns::PIPELINE, self.standing.pipeline.clone());
        columns.put(columns::STAGE, self.standing.stage.clone());
        columns.put(columns::STATUS, self.standing.status.as_str().to_owned());
        columns.put(columns::VALUE, self.value.to_string());
        columns.put(columns::CURRENCY, self.currency.clone());
        columns.put(columns::PROBABILITY, self.probability.map(|p| p.to_string()).unwrap_or_default());
        columns.put(columns::CLOSE, self.expected_close.map(|d| d.format("%Y-%m-%d").to_string()).unwrap_or_default());
        columns.put(columns::CLOSED_AT, self.standing.closed_at.map(|t| t.as_millis().to_string()).unwrap_or_default());
        columns.put("owner", self.owner.map(|o| o.to_string()).unwrap_or_default());
        columns.put(columns::COMPANY, self.company.map(|c| c.to_string()).unwrap_or_default());
        columns.put(REFS_COLUMN, refs_column(&self.references()));
        Row {
            id: self.id,
            kind: Self::KIND,
            title: if self.title.is_empty() { "Untitled deal".into() } else { self.title.clone() },
            subtitle: money::format(self.value, &self.currency),
            columns: columns.into_map(),
            tags: self.tags.iter().cloned().collect(),
            updated_at: self.updated_at,
            deleted: self.deleted,
        }
    }
}

/// The row columns of a deal, read by the board and the forecast without
/// loading documents.
pub mod columns {
    pub const PIPELINE: &str = "pipeline";
    pub const STAGE: &str = "stage";
    /// `open`, `won` or `lost`.
    pub const STATUS: &str = "status";
    /// Minor units, decimal.
    pub const VALUE: &str = "value";
    pub const CURRENCY: &str = "currency";
    /// The override only; the stage default comes from the workspace.
    pub const PROBABILITY: &str = "probability";
    /// Expected close date, `YYYY-MM-DD`.
    pub const CLOSE: &str = "close";
    /// Epoch ms when won or lost.
    pub const CLOSED_AT: &str = "closed_at";
    pub const COMPANY: &str = "company";
}

/// The deal form as typed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DealForm {
    pub title: String,
    pub value: String,
    pub currency: String,
    pub pipeline: String,
    pub stage: String,
    /// Why it was won or lost (required for lost).
    pub reason: String,
    /// Percent, or empty for the stage's default.
    pub probability: String,
    pub expected_close: String,
    pub owner: String,
    pub company: String,
    pub contacts: Vec<String>,
    pub tags: String,
    pub notes: String,
    pub custom: BTreeMap<String, String>,
}

impl DealForm {
    pub fn from_deal(d: &Deal) -> Self {
        Self {
            title: d.title.clone(),
            value: if d.value == 0 { String::new() } else { money::format_plain(d.value, &d.currency) },
            currency: d.currency.clone(),
            pipeline: d.standing.pipeline.clone(),
            stage: d.standing.stage.clone(),
            reason: d.standing.reason.clone(),
            probability: d.probability.map(|p| p.to_string()).unwrap_or_default(),
            expected_close: d.expected_close.map(|d| d.format("%Y-%m-%d").to_string()).unwrap_or_default(),
            owner: d.owner.map(|o| o.to_string()).unwrap_or_default(),
            company: d.company.map(|c| c.to_string()).unwrap_or_default(),
            contacts: d.contacts.iter().map(ToString::to_string).collect(),
            tags: form::tags_text(&d.tags),
            notes: d.notes.clone(),
            custom: d.custom.clone(),
        }
    }

    /// Validates every field and writes them into `deal` only when all are
    /// valid; a changed stage is a [`Deal::move_to`] (recorded in the history).
    ///
    /// # Errors
    /// Every invalid field with its message; `deal` is left unchanged.
    #[allow(clippy::too_many_arguments)]
    pub fn apply(
        &self,
        deal: &mut Deal,
        ws: &Workspace,
        entry: EntryId,
        now: Timestamp,
        today: NaiveDate,
        by: MemberId,
    ) -> Result<(), FormErrors> {
        let mut c = Checker::default();
        let title = c.required("title", &self.title);
        let currency =
            c.check("currency", money::currency(&self.currency).map_err(|e| FieldError::Invalid(e.to_string())));
        let value = if currency.is_empty() {
            0
        } else {
            c.check(
                "value",
                money::parse_amount(&self.value, &currency).map_err(|e| FieldError::Invalid(e.to_string())),
            )
        };
        let probability = c.check("probability", form::whole_number(&self.probability, 0, 100)).map(|p| p as u8);
        let expected_close = c.check("expected_close", form::date(&self.expected_close));
        let owner = c.check("owner", form::member(&self.owner));
        let company = c.check("company", form::record(&self.company));
        let mut contacts = BTreeSet::new();
        for (i, id) in self.contacts.iter().enumerate() {
            if let Some(id) = c.check(&format!("contacts.{i}"), form::record(id)) {
                contacts.insert(id);
            }
        }
        let tags = c.check("tags", form::tags(&self.tags));
        let notes = c.notes("notes", &self.notes);
        let reason = c.short("reason", &self.reason);
        let custom = form::custom_values(&mut c, ws, RecordKind::Deal, &self.custom, &deal.custom);
        let mut moved = deal.clone();
        if let Err(e) = moved.move_to(ws, &self.pipeline, &self.stage, &reason, entry, now, today, by) {
            let key = if e == MoveError::LostNeedsReason { "reason" } else { "stage" };
            c.errors.insert(key.into(), FieldError::Invalid(e.to_string()));
        }
        c.finish()?;
        *deal = moved;
        if deal.standing.status != Outcome::Open {
            deal.standing.reason = reason;
        }
        deal.title = title;
        deal.currency = currency;
        deal.value = value;
        deal.probability = probability;
        if expected_close.is_some() || deal.standing.status != Outcome::Won {
            deal.expected_close = expected_close;
        }
        deal.owner = owner;
        deal.company = company;
        deal.contacts = contacts;
        deal.tags = tags;
        deal.notes = notes;
        deal.custom = custom;
        Ok(())
    }
}

#[cfg(test)]
mod tests;

//! Activities: a call, email, meeting or note logged against contacts, a
//! company or a deal. They make up the timeline on each record's page.
//!
//! An activity is *about* the contacts it was logged against: erasing a
//! contact erases the activities about only them (see
//! [`crate::privacy::erasure`]); it only *mentions* its company and deal.

use std::collections::BTreeSet;

use automerge::{AutoCommit, ROOT};

use crate::doc::{self, DecodeError, EncodeError};
use crate::form::{self, Checker, FormErrors};
use crate::ids::{MemberId, RecordId};
use crate::privacy::references::{refs_column, Reference, Referencing, Role, REFS_COLUMN};
use crate::record::{Columns, Record, RecordKind, Row};
use crate::validate::FieldError;
use crate::Timestamp;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum ActivityKind {
    #[default]
    Call,
    Email,
    Meeting,
    Note,
}

impl ActivityKind {
    pub const ALL: [ActivityKind; 4] =
        [ActivityKind::Call, ActivityKind::Email, ActivityKind::Meeting, ActivityKind::Note];

    pub const fn as_str(self) -> &'static str {
        match self {
            ActivityKind::Call => "call",
            ActivityKind::Email => "email",
            ActivityKind::Meeting => "meeting",
            ActivityKind::Note => "note",
        }
    }

    pub const fn label(self) -> &'static str {
        match self {
            ActivityKind::Call => "Call",
            ActivityKind::Email => "Email",
            ActivityKind::Meeting => "Meeting",
            ActivityKind::Note => "Note",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// Outcomes offered for this kind (free text is allowed too).
    pub const fn outcomes(self) -> &'static [&'static str] {
        match self {
            ActivityKind::Call => &["Connected", "Left voicemail", "No answer", "Wrong number"],
            ActivityKind::Email => &["Sent", "Replied", "Bounced"],
            ActivityKind::Meeting => &["Held", "Rescheduled", "No-show", "Cancelled"],
            ActivityKind::Note => &[],
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Activity {
    pub id: RecordId,
    pub kind: ActivityKind,
    pub subject: String,
    pub body: String,
    /// When it happened (or, for a meeting, is planned).
    pub at: Timestamp,
    pub duration_minutes: Option<u32>,
    pub outcome: String,
    /// Contacts it was with or about.
    pub contacts: BTreeSet<RecordId>,
    pub company: Option<RecordId>,
    pub deal: Option<RecordId>,
    /// Team members who took part.
    pub participants: BTreeSet<MemberId>,
    pub created_at: Timestamp,
    pub created_by: MemberId,
    pub updated_at: Timestamp,
    pub updated_by: MemberId,
    pub deleted: bool,
}

impl Activity {
    pub fn new(id: RecordId, kind: ActivityKind, at: Timestamp, now: Timestamp, by: MemberId) -> Self {
        Self {
            id,
            kind,
            subject: String::new(),
            body: String::new(),
            at,
            duration_minutes: None,
            outcome: String::new(),
            contacts: BTreeSet::new(),
            company: None,
            deal: None,
            participants: BTreeSet::from([by]),
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

    /// The subject, or the kind when there is none ("Call").
    pub fn title(&self) -> String {
        if self.subject.trim().is_empty() {
            self.kind.label().to_owned()
        } else {
            self.subject.clone()
        }
    }
}

impl Referencing for Activity {
    fn references(&self) -> Vec<Reference> {
        let mut refs: Vec<Reference> = self
            .contacts
            .iter()
            .map(|c| Reference { target: *c, role: Role::About, field: "contacts".into() })
            .collect();
        if let Some(company) = self.company {
            refs.push(Reference { target: company, role: Role::Mentions, field: "company".into() });
        }
        if let Some(deal) = self.deal {
            refs.push(Reference { target: deal, role: Role::Mentions, field: "deal".into() });
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
        if self.deal == Some(subject) {
            self.deal = None;
            fields.push("deal".into());
        }
        fields
    }
}

impl Record for Activity {
    const KIND: RecordKind = RecordKind::Activity;

    fn id(&self) -> RecordId {
        self.id
    }

    fn from_doc(doc: &AutoCommit) -> Result<Self, DecodeError> {
        doc::check_root(doc, Self::KIND.as_str(), Self::SCHEMA)?;
        let created_by: MemberId =
            doc::get_id(doc, &ROOT, "created_by")?.ok_or(DecodeError::Missing { field: "created_by".into() })?;
        let kind = doc::req_str(doc, &ROOT, "type")?;
        Ok(Self {
            id: doc::parse_id(&doc::req_str(doc, &ROOT, "id")?, "id")?,
            kind: ActivityKind::parse(&kind).ok_or_else(|| DecodeError::Invalid {
                field: "type".into(),
                reason: format!("unknown type {kind:?}"),
            })?,
            subject: doc::get_str(doc, &ROOT, "subject")?.unwrap_or_default(),
            body: doc::get_str(doc, &ROOT, "body")?.unwrap_or_default(),
            at: Timestamp::from_millis(doc::get_i64(doc, &ROOT, "at")?.unwrap_or(0)),
            duration_minutes: doc::get_i64(doc, &ROOT, "duration_minutes")?.and_then(|m| u32::try_from(m).ok()),
            outcome: doc::get_str(doc, &ROOT, "outcome")?.unwrap_or_default(),
            contacts: doc::read_key_set(doc, &ROOT, "contacts")?,
            company: doc::get_id(doc, &ROOT, "company")?,
            deal: doc::get_id(doc, &ROOT, "deal")?,
            participants: doc::read_key_set(doc, &ROOT, "participants")?,
            created_at: Timestamp::from_millis(doc::get_i64(doc, &ROOT, "created_at")?.unwrap_or(0)),
            created_by,
            updated_at: Timestamp::from_millis(doc::get_i64(doc, &ROOT, "updated_at")?.unwrap_or(0)),
            updated_by: doc::get_id(doc, &ROOT, "updated_by")?.unwrap_or(created_by),
            deleted: doc::get_bool(doc, &ROOT, "deleted")?,
        })
    }

    fn write_doc(&self, doc: &mut AutoCommit) -> Result<(), EncodeError> {
        doc::put_str(doc, &ROOT, "id", Some(&self.id.to_string()))?;
        doc::put_str(doc, &ROOT, "type", Some(self.kind.as_str()))?;
        doc::put_str(doc, &ROOT, "subject", Some(&self.subject))?;
        doc::put_text(doc, &ROOT, "body", &self.body)?;
        doc::put_i64(doc, &ROOT, "at", Some(self.at.as_millis()))?;
        doc::put_i64(doc, &ROOT, "duration_minutes", self.duration_minutes.map(i64::from))?;
        doc::put_str(doc, &ROOT, "outcome", Some(&self.outcome))?;
        doc::write_key_set(doc, &ROOT, "contacts", &self.contacts)?;
        doc::put_id(doc, &ROOT, "company", self.company.as_ref())?;
        doc::put_id(doc, &ROOT, "deal", self.deal.as_ref())?;
        doc::write_key_set(doc, &ROOT, "participants", &self.participants)?;
        doc::put_authorship(doc, (self.created_at, self.created_by), (self.updated_at, self.updated_by), self.deleted)
    }

    fn row(&self) -> Row {
        let mut columns = Columns::default();
        columns.put(columns::TYPE, self.kind.as_str().to_owned());
        columns.put(columns::AT, self.at.as_millis().to_string());
        columns.put(columns::DURATION, self.duration_minutes.map(|m| m.to_string()).unwrap_or_default());
        columns.put(columns::OUTCOME, self.outcome.clone());
        columns.put(
            columns::PARTICIPANTS,
            self.participants.iter().map(ToString::to_string).collect::<Vec<_>>().join(" "),
        );
        columns.put("owner", self.created_by.to_string());
        columns.put(REFS_COLUMN, refs_column(&self.references()));
        let mut excerpt: String = self.body.split_whitespace().collect::<Vec<_>>().join(" ");
        if excerpt.chars().count() > 140 {
            excerpt = excerpt.chars().take(139).collect::<String>() + "…";
        }
        Row {
            id: self.id,
            kind: Self::KIND,
            title: self.title(),
            subtitle: excerpt,
            columns: columns.into_map(),
            tags: Vec::new(),
            updated_at: self.updated_at,
            deleted: self.deleted,
        }
    }
}

/// The row columns of an activity.
pub mod columns {
    /// `call`, `email`, `meeting` or `note`.
    pub const TYPE: &str = "type";
    /// Epoch ms, decimal.
    pub const AT: &str = "at";
    pub const DURATION: &str = "duration";
    pub const OUTCOME: &str = "outcome";
    /// Member ids, space-separated.
    pub const PARTICIPANTS: &str = "participants";
}

/// The "log an activity" form as typed. The date and time come from the
/// browser's local clock and are turned into a [`Timestamp`] by the app.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ActivityForm {
    pub kind: String,
    pub subject: String,
    pub body: String,
    pub duration_minutes: String,
    pub outcome: String,
    pub contacts: Vec<String>,
    pub company: String,
    pub deal: String,
    pub participants: Vec<String>,
}

impl ActivityForm {
    pub fn from_activity(a: &Activity) -> Self {
        Self {
            kind: a.kind.as_str().into(),
            subject: a.subject.clone(),
            body: a.body.clone(),
            duration_minutes: a.duration_minutes.map(|m| m.to_string()).unwrap_or_default(),
            outcome: a.outcome.clone(),
            contacts: a.contacts.iter().map(ToString::to_string).collect(),
            company: a.company.map(|c| c.to_string()).unwrap_or_default(),
            deal: a.deal.map(|d| d.to_string()).unwrap_or_default(),
            participants: a.participants.iter().map(ToString::to_string).collect(),
        }
    }

    /// Validates every field and writes them into `activity` (whose `at`
    /// the caller sets) only when all are valid. An activity must be linked
    /// to at least one contact, company or deal.
    ///
    /// # Errors
    /// Every invalid field with its message; `activity` is left unchanged.
    pub fn apply(&self, activity: &mut Activity) -> Result<(), FormErrors> {
        let mut c = Checker::default();
        let kind = ActivityKind::parse(self.kind.trim()).unwrap_or_else(|| {
            c.errors.insert(
                "kind".into(),
                FieldError::NotAChoice { choices: ActivityKind::ALL.iter().map(|k| k.label().to_owned()).collect() },
            );
            ActivityKind::Call
        });
        let subject = c.short("subject", &self.subject);
        let body = c.notes("body", &self.body);
        let duration =
            c.check("duration_minutes", form::whole_number(&self.duration_minutes, 0, 24 * 60)).map(|m| m as u32);
        let outcome = c.short("outcome", &self.outcome);
        let mut contacts = BTreeSet::new();
        for (i, id) in self.contacts.iter().enumerate() {
            if let Some(id) = c.check(&format!("contacts.{i}"), form::record(id)) {
                contacts.insert(id);
            }
        }
        let company = c.check("company", form::record(&self.company));
        let deal = c.check("deal", form::record(&self.deal));
        let mut participants = BTreeSet::new();
        for (i, id) in self.participants.iter().enumerate() {
            if let Some(id) = c.check(&format!("participants.{i}"), form::member(id)) {
                participants.insert(id);
            }
        }
        if contacts.is_empty() && company.is_none() && deal.is_none() && c.errors.is_empty() {
            c.errors.insert("contacts".into(), FieldError::Invalid("Link it to a contact, a company or a deal".into()));
        }
        c.finish()?;
        activity.kind = kind;
        activity.subject = subject;
        activity.body = body;
        activity.duration_minutes = duration;
        activity.outcome = outcome;
        activity.contacts = contacts;
        activity.company = company;
        activity.deal = deal;
        activity.participants = participants;
        Ok(())
    }
}

/// The timeline of a record: live activities referencing it, newest first.
pub fn timeline<'a>(target: RecordId, rows: impl IntoIterator<Item = &'a Row>) -> Vec<&'a Row> {
    // Runs over every row whenever any record changes while a page shows a
    // timeline: only live activities whose references column holds the
    // target's id as text (as `refs_column` writes it) are parsed.
    let needle = target.to_string();
    let candidates = rows
        .into_iter()
        .filter(|r| r.kind == RecordKind::Activity && !r.deleted && r.column(REFS_COLUMN).contains(needle.as_str()));
    let mut out: Vec<&Row> =
        crate::privacy::references::referencing(target, candidates).found.into_iter().map(|(row, _)| row).collect();
    out.sort_by(|a, b| at(b).cmp(&at(a)).then_with(|| b.id.cmp(&a.id)));
    out
}

/// When an activity row happened.
pub fn at(row: &Row) -> Timestamp {
    Timestamp::from_millis(row.column(columns::AT).parse().unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn me() -> MemberId {
        MemberId::from_bytes([1; 16])
    }

    fn id(n: u8) -> RecordId {
        RecordId::from_bytes([n; 16])
    }

    fn call(n: u8, at: i64, contacts: &[u8]) -> Activity {
        let mut a =
            Activity::new(id(n), ActivityKind::Call, Timestamp::from_millis(at), Timestamp::from_millis(at), me());
        a.contacts = contacts.iter().map(|c| id(*c)).collect();
        a
    }

    #[test]
    fn an_activity_round_trips_through_its_document() {
        let mut a = call(10, 1_000, &[1, 2]);
        a.subject = "Intro call".into();
        a.body = "Talked about renewal".into();
        a.duration_minutes = Some(15);
        a.outcome = "Connected".into();
        a.company = Some(id(3));
        a.deal = Some(id(4));
        let mut doc = AutoCommit::new();
        doc::init_root(&mut doc, "activity", 1).unwrap();
        a.write_doc(&mut doc).unwrap();
        assert_eq!(Activity::from_doc(&doc).unwrap(), a);
    }

    #[test]
    fn the_timeline_lists_live_activities_about_a_record_newest_first() {
        let old = call(10, 1_000, &[1]).row();
        let new = call(11, 5_000, &[1, 2]).row();
        let mut deleted = call(12, 9_000, &[1]);
        deleted.deleted = true;
        let other = call(13, 7_000, &[2]).row();
        let mut on_company = call(14, 3_000, &[]);
        on_company.company = Some(id(1));
        let rows = [old, new, deleted.row(), other, on_company.row()];
        let titles: Vec<_> = timeline(id(1), &rows).iter().map(|r| r.id).collect();
        assert_eq!(titles, [id(11), id(14), id(10)]);
    }

    #[test]
    fn the_form_needs_a_link_and_valid_numbers() {
        let mut a = call(10, 1_000, &[]);
        let before = a.clone();
        let form = ActivityForm { kind: "call".into(), duration_minutes: "-3".into(), ..ActivityForm::default() };
        assert!(form.apply(&mut a).unwrap_err().contains_key("duration_minutes"));
        let form = ActivityForm { kind: "call".into(), ..ActivityForm::default() };
        assert!(form.apply(&mut a).unwrap_err().contains_key("contacts"));
        assert_eq!(a, before);
        let form = ActivityForm {
            kind: "meeting".into(),
            subject: "Demo".into(),
            contacts: vec![id(1).to_string()],
            duration_minutes: "45".into(),
            ..ActivityForm::default()
        };
        form.apply(&mut a).unwrap();
        assert_eq!((a.kind, a.duration_minutes, a.title()), (ActivityKind::Meeting, Some(45), "Demo".to_owned()));
    }

    #[test]
    fn erasing_a_contact_scrubs_it_from_a_shared_activity() {
        let mut a = call(10, 1_000, &[1, 2]);
        assert_eq!(a.scrub(id(1)), ["contacts"]);
        assert_eq!(a.contacts, BTreeSet::from([id(2)]));
        assert!(a.scrub(id(9)).is_empty());
    }
}

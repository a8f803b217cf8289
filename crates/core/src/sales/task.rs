//! Tasks and follow-ups: something a member has to do by a date (and
//! optionally a time), usually about a contact, company or deal.
//!
//! Due dates and times are wall-clock values in the member's own time zone
//! (`YYYY-MM-DD` and `HH:MM`), as people mean them ("call back Tuesday at
//! 10"), not instants. Grouping into overdue / today / upcoming and the
//! reminders compare them with the local time the app passes in.

use std::collections::BTreeMap;

use automerge::{AutoCommit, ROOT};
use chrono::{NaiveDate, NaiveDateTime, NaiveTime};

use crate::doc::{self, DecodeError, EncodeError};
use crate::form::{self, Checker, FormErrors};
use crate::ids::{MemberId, RecordId};
use crate::privacy::references::{refs_column, Reference, Referencing, Role, REFS_COLUMN};
use crate::record::{Columns, Record, RecordKind, Row};
use crate::validate::FieldError;
use crate::Timestamp;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum Priority {
    Low,
    #[default]
    Normal,
    High,
}

impl Priority {
    pub const ALL: [Priority; 3] = [Priority::High, Priority::Normal, Priority::Low];

    pub const fn as_str(self) -> &'static str {
        match self {
            Priority::Low => "low",
            Priority::Normal => "normal",
            Priority::High => "high",
        }
    }

    pub const fn label(self) -> &'static str {
        match self {
            Priority::Low => "Low",
            Priority::Normal => "Normal",
            Priority::High => "High",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == s)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Task {
    pub id: RecordId,
    pub title: String,
    pub due_date: Option<NaiveDate>,
    /// Only with a date.
    pub due_time: Option<NaiveTime>,
    pub assignee: Option<MemberId>,
    /// The contact, company or deal it is about.
    pub link: Option<RecordId>,
    pub link_kind: Option<RecordKind>,
    pub priority: Priority,
    pub done_at: Option<Timestamp>,
    pub done_by: Option<MemberId>,
    pub notes: String,
    pub created_at: Timestamp,
    pub created_by: MemberId,
    pub updated_at: Timestamp,
    pub updated_by: MemberId,
    pub deleted: bool,
}

impl Task {
    pub fn new(id: RecordId, now: Timestamp, by: MemberId) -> Self {
        Self {
            id,
            title: String::new(),
            due_date: None,
            due_time: None,
            assignee: Some(by),
            link: None,
            link_kind: None,
            priority: Priority::Normal,
            done_at: None,
            done_by: None,
            notes: String::new(),
            created_at: now,
            created_by: by,
            updated_at: now,
            updated_by: by,
            deleted: false,
        }
    }

    pub fn is_done(&self) -> bool {
        self.done_at.is_some()
    }

    /// Marks the task done (or not done again).
    pub fn set_done(&mut self, done: bool, now: Timestamp, by: MemberId) {
        if done == self.is_done() {
            return;
        }
        self.done_at = done.then_some(now);
        self.done_by = done.then_some(by);
        self.touch(now, by);
    }

    pub fn touch(&mut self, now: Timestamp, by: MemberId) {
        self.updated_at = now.max(self.updated_at);
        self.updated_by = by;
    }
}

/// Where a task shows in "My tasks".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Bucket {
    /// Due on a day before today.
    Overdue,
    /// Due today (at any time; one whose time has passed is shown as late).
    Today,
    Upcoming,
    NoDate,
    Done,
}

impl Bucket {
    pub const fn label(self) -> &'static str {
        match self {
            Bucket::Overdue => "Overdue",
            Bucket::Today => "Today",
            Bucket::Upcoming => "Upcoming",
            Bucket::NoDate => "No due date",
            Bucket::Done => "Done",
        }
    }
}

/// The bucket of a task due on `due` (if any), given today's local date.
pub fn bucket(due: Option<NaiveDate>, done: bool, today: NaiveDate) -> Bucket {
    match (done, due) {
        (true, _) => Bucket::Done,
        (false, None) => Bucket::NoDate,
        (false, Some(d)) if d < today => Bucket::Overdue,
        (false, Some(d)) if d == today => Bucket::Today,
        (false, Some(_)) => Bucket::Upcoming,
    }
}

/// Time a task without a time of day reminds at.
pub const ALL_DAY_REMINDER: NaiveTime = match NaiveTime::from_hms_opt(9, 0, 0) {
    Some(t) => t,
    None => NaiveTime::MIN,
};

/// The local moment a task falls due: its date and time, or its date at
/// [`ALL_DAY_REMINDER`].
pub fn due_at(date: NaiveDate, time: Option<NaiveTime>) -> NaiveDateTime {
    date.and_time(time.unwrap_or(ALL_DAY_REMINDER))
}

/// How a due date (and time) reads next to a task, relative to `today`:
/// "Today", "Tomorrow, 10:30", "Yesterday", "Mon 30 Nov" within the year,
/// "2 Jan 2027" beyond it.
pub fn due_label(date: NaiveDate, time: Option<NaiveTime>, today: NaiveDate) -> String {
    use chrono::Datelike;
    let day = match (date - today).num_days() {
        0 => "Today".to_owned(),
        1 => "Tomorrow".to_owned(),
        -1 => "Yesterday".to_owned(),
        _ if date.year() == today.year() => date.format("%a %-d %b").to_string(),
        _ => date.format("%-d %b %Y").to_string(),
    };
    match time {
        Some(t) => format!("{day}, {}", t.format("%H:%M")),
        None => day,
    }
}

/// What the task list and reminders need of a task, read from its row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskFacts {
    pub id: RecordId,
    pub title: String,
    pub due_date: Option<NaiveDate>,
    pub due_time: Option<NaiveTime>,
    pub assignee: Option<MemberId>,
    pub priority: Priority,
    pub done: bool,
    pub link: Option<RecordId>,
}

impl TaskFacts {
    /// `None` for a row that is not a live task.
    pub fn from_row(row: &Row) -> Option<Self> {
        if row.kind != RecordKind::Task || row.deleted {
            return None;
        }
        Some(Self {
            id: row.id,
            title: row.title.clone(),
            due_date: NaiveDate::parse_from_str(row.column(columns::DUE), "%Y-%m-%d").ok(),
            due_time: NaiveTime::parse_from_str(row.column(columns::TIME), "%H:%M").ok(),
            assignee: row.column(columns::ASSIGNEE).parse().ok(),
            priority: Priority::parse(row.column(columns::PRIORITY)).unwrap_or_default(),
            done: !row.column(columns::DONE).is_empty(),
            link: row.column(columns::LINK).parse().ok(),
        })
    }

    pub fn bucket(&self, today: NaiveDate) -> Bucket {
        bucket(self.due_date, self.done, today)
    }

    /// Not done and past its due time (or, without a time, its due day).
    pub fn is_late(&self, now: NaiveDateTime) -> bool {
        !self.done
            && match (self.due_date, self.due_time) {
                (Some(d), Some(t)) => d.and_time(t) < now,
                (Some(d), None) => d < now.date(),
                (None, _) => false,
            }
    }
}

/// Tasks grouped for "My tasks" (or a teammate's, or everyone's): each
/// bucket sorted by due date, time, priority (high first) and title.
pub fn group(
    tasks: impl IntoIterator<Item = TaskFacts>,
    assignee: Option<MemberId>,
    today: NaiveDate,
) -> BTreeMap<Bucket, Vec<TaskFacts>> {
    let mut out: BTreeMap<Bucket, Vec<TaskFacts>> = BTreeMap::new();
    for t in tasks.into_iter().filter(|t| assignee.is_none() || t.assignee == assignee) {
        out.entry(t.bucket(today)).or_default().push(t);
    }
    for list in out.values_mut() {
        list.sort_by(|a, b| {
            (a.due_date, a.due_time, std::cmp::Reverse(a.priority), &a.title, a.id).cmp(&(
                b.due_date,
                b.due_time,
                std::cmp::Reverse(b.priority),
                &b.title,
                b.id,
            ))
        });
    }
    out
}

/// Tasks of `assignee` that fell due after `since` and by `now` (local
/// times), not done: what a reminder announces once while the app is open.
pub fn newly_due<'a>(
    tasks: impl IntoIterator<Item = &'a TaskFacts>,
    assignee: Option<MemberId>,
    since: NaiveDateTime,
    now: NaiveDateTime,
) -> Vec<&'a TaskFacts> {
    tasks
        .into_iter()
        .filter(|t| !t.done && (assignee.is_none() || t.assignee == assignee))
        .filter(|t| t.due_date.is_some_and(|d| (since < due_at(d, t.due_time)) && due_at(d, t.due_time) <= now))
        .collect()
}

impl Referencing for Task {
    fn references(&self) -> Vec<Reference> {
        match (self.link, self.link_kind) {
            (Some(target), Some(RecordKind::Contact)) => {
                vec![Reference { target, role: Role::About, field: "link".into() }]
            }
            (Some(target), _) => vec![Reference { target, role: Role::Mentions, field: "link".into() }],
            (None, _) => Vec::new(),
        }
    }

    fn scrub(&mut self, subject: RecordId) -> Vec<String> {
        if self.link == Some(subject) {
            self.link = None;
            self.link_kind = None;
            vec!["link".into()]
        } else {
            Vec::new()
        }
    }
}

impl Record for Task {
    const KIND: RecordKind = RecordKind::Task;

    fn id(&self) -> RecordId {
        self.id
    }

    fn from_doc(doc: &AutoCommit) -> Result<Self, DecodeError> {
        doc::check_root(doc, Self::KIND.as_str(), Self::SCHEMA)?;
        let created_by: MemberId =
            doc::get_id(doc, &ROOT, "created_by")?.ok_or(DecodeError::Missing { field: "created_by".into() })?;
        let invalid =
            |field: &str, e: chrono::ParseError| DecodeError::Invalid { field: field.into(), reason: e.to_string() };
        Ok(Self {
            id: doc::parse_id(&doc::req_str(doc, &ROOT, "id")?, "id")?,
            title: doc::get_str(doc, &ROOT, "title")?.unwrap_or_default(),
            due_date: doc::get_str(doc, &ROOT, "due_date")?
                .map(|s| NaiveDate::parse_from_str(&s, "%Y-%m-%d").map_err(|e| invalid("due_date", e)))
                .transpose()?,
            due_time: doc::get_str(doc, &ROOT, "due_time")?
                .map(|s| NaiveTime::parse_from_str(&s, "%H:%M").map_err(|e| invalid("due_time", e)))
                .transpose()?,
            assignee: doc::get_id(doc, &ROOT, "assignee")?,
            link: doc::get_id(doc, &ROOT, "link")?,
            link_kind: doc::get_str(doc, &ROOT, "link_kind")?.and_then(|k| k.parse().ok()),
            priority: doc::get_str(doc, &ROOT, "priority")?.and_then(|p| Priority::parse(&p)).unwrap_or_default(),
            done_at: doc::get_i64(doc, &ROOT, "done_at")?.map(Timestamp::from_millis),
            done_by: doc::get_id(doc, &ROOT, "done_by")?,
            notes: doc::get_str(doc, &ROOT, "notes")?.unwrap_or_default(),
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
        let date = self.due_date.map(|d| d.format("%Y-%m-%d").to_string());
        doc::put_str(doc, &ROOT, "due_date", date.as_deref())?;
        let time = self.due_time.map(|t| t.format("%H:%M").to_string());
        doc::put_str(doc, &ROOT, "due_time", time.as_deref())?;
        doc::put_id(doc, &ROOT, "assignee", self.assignee.as_ref())?;
        doc::put_id(doc, &ROOT, "link", self.link.as_ref())?;
        doc::put_str(doc, &ROOT, "link_kind", self.link_kind.map(|k| k.as_str()))?;
        doc::put_str(doc, &ROOT, "priority", Some(self.priority.as_str()))?;
        doc::put_i64(doc, &ROOT, "done_at", self.done_at.map(Timestamp::as_millis))?;
        doc::put_id(doc, &ROOT, "done_by", self.done_by.as_ref())?;
        doc::put_text(doc, &ROOT, "notes", &self.notes)?;
        doc::put_authorship(doc, (self.created_at, self.created_by), (self.updated_at, self.updated_by), self.deleted)
    }

    fn row(&self) -> Row {
        let mut columns = Columns::default();
        columns.put(columns::DUE, self.due_date.map(|d| d.format("%Y-%m-%d").to_string()).unwrap_or_default());
        columns.put(columns::TIME, self.due_time.map(|t| t.format("%H:%M").to_string()).unwrap_or_default());
        columns.put(columns::ASSIGNEE, self.assignee.map(|m| m.to_string()).unwrap_or_default());
        columns.put(columns::PRIORITY, self.priority.as_str().to_owned());
        columns.put(columns::DONE, self.done_at.map(|t| t.as_millis().to_string()).unwrap_or_default());
        columns.put(columns::LINK, self.link.map(|l| l.to_string()).unwrap_or_default());
        columns.put("owner", self.assignee.map(|m| m.to_string()).unwrap_or_default());
        columns.put(REFS_COLUMN, refs_column(&self.references()));
        Row {
            id: self.id,
            kind: Self::KIND,
            title: if self.title.is_empty() { "Untitled task".into() } else { self.title.clone() },
            subtitle: String::new(),
            columns: columns.into_map(),
            tags: Vec::new(),
            updated_at: self.updated_at,
            deleted: self.deleted,
        }
    }
}

/// The row columns of a task.
pub mod columns {
    /// `YYYY-MM-DD`.
    pub const DUE: &str = "due";
    /// `HH:MM`.
    pub const TIME: &str = "time";
    pub const ASSIGNEE: &str = "assignee";
    pub const PRIORITY: &str = "priority";
    /// Epoch ms when done; absent while open.
    pub const DONE: &str = "done";
    pub const LINK: &str = "link";
}

/// The task form as typed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskForm {
    pub title: String,
    pub due_date: String,
    pub due_time: String,
    pub assignee: String,
    pub link: String,
    /// The kind of the linked record (the app knows it from the row).
    pub link_kind: String,
    pub priority: String,
    pub notes: String,
}

impl TaskForm {
    pub fn from_task(t: &Task) -> Self {
        Self {
            title: t.title.clone(),
            due_date: t.due_date.map(|d| d.format("%Y-%m-%d").to_string()).unwrap_or_default(),
            due_time: t.due_time.map(|d| d.format("%H:%M").to_string()).unwrap_or_default(),
            assignee: t.assignee.map(|m| m.to_string()).unwrap_or_default(),
            link: t.link.map(|l| l.to_string()).unwrap_or_default(),
            link_kind: t.link_kind.map(|k| k.as_str().to_owned()).unwrap_or_default(),
            priority: t.priority.as_str().into(),
            notes: t.notes.clone(),
        }
    }

    /// Validates every field and writes them into `task` only when all are
    /// valid.
    ///
    /// # Errors
    /// Every invalid field with its message; `task` is left unchanged.
    pub fn apply(&self, task: &mut Task) -> Result<(), FormErrors> {
        let mut c = Checker::default();
        let title = c.required("title", &self.title);
        let due_date = c.check("due_date", form::date(&self.due_date));
        let due_time = c.check("due_time", form::time(&self.due_time));
        if due_time.is_some() && due_date.is_none() && !c.errors.contains_key("due_date") {
            c.errors.insert("due_date".into(), FieldError::Invalid("Choose a date for the time".into()));
        }
        let assignee = c.check("assignee", form::member(&self.assignee));
        let link = c.check("link", form::record(&self.link));
        let link_kind = link.and_then(|_| self.link_kind.parse::<RecordKind>().ok());
        let priority = match self.priority.trim() {
            "" => Priority::Normal,
            p => Priority::parse(p).unwrap_or_else(|| {
                c.errors.insert(
                    "priority".into(),
                    FieldError::NotAChoice { choices: Priority::ALL.iter().map(|p| p.label().to_owned()).collect() },
                );
                Priority::Normal
            }),
        };
        let notes = c.notes("notes", &self.notes);
        c.finish()?;
        task.title = title;
        task.due_date = due_date;
        task.due_time = due_time;
        task.assignee = assignee;
        task.link = link;
        task.link_kind = link_kind;
        task.priority = priority;
        task.notes = notes;
        Ok(())
    }
}

#[cfg(test)]
mod tests;

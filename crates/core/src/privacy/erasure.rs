//! Planning an erasure: exactly what goes, what is scrubbed, and the words
//! the confirmation dialog shows before anything happens.
//!
//! [`plan_erasure`] looks at the subject (a loaded [`Contact`]) and the
//! materialised rows of the workspace (all in memory), and decides per row
//! through its declared [`Reference`]s ([`super::references`]):
//!
//! - the subject itself is erased, with everything in its document (fields,
//!   consent ledger, history);
//! - a record that is **about** the subject and about nobody else (a note, a
//!   call with them) is erased too;
//! - a record that is about several people, or only **mentions** the subject
//!   (a deal that named them), keeps existing and has its references to the
//!   subject scrubbed ([`Referencing::scrub`], then an epoch rewrite so the
//!   old value leaves its history); another contact is never erased as a
//!   side effect;
//! - a row whose references cannot be read is listed as unchecked, so the
//!   dialog can say so instead of quietly missing it.
//!
//! The plan only decides; carrying it out is the app's job (see the crate's
//! privacy module doc and [`super::replica`]): write
//! [`ErasurePlan::tombstones`] into the workspace, scrub and rewrite each
//! [`ErasurePlan::scrub`] record, then remove the erased records with
//! [`super::apply_tombstones`].
//!
//! [`Referencing::scrub`]: super::Referencing::scrub

use crate::contact::Contact;
use crate::ids::{MemberId, RecordId};
use crate::record::{RecordKind, Row};
use crate::Timestamp;

use super::references::{self, Reference, Role};
use super::Tombstone;

/// A record the plan names, with what the dialog shows for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub id: RecordId,
    pub kind: RecordKind,
    pub title: String,
}

impl Target {
    fn of(row: &Row) -> Self {
        Self { id: row.id, kind: row.kind, title: row.title.clone() }
    }
}

/// A record that keeps existing but loses its references to the subject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scrub {
    pub record: Target,
    /// The fields that point at the subject.
    pub fields: Vec<String>,
}

/// What the subject's own document holds, counted for the dialog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubjectSummary {
    pub name: String,
    pub emails: usize,
    pub phones: usize,
    pub consent_events: usize,
    pub address: bool,
    pub notes: bool,
    pub custom_values: usize,
    pub tags: usize,
    pub restricted: bool,
}

/// Everything one erasure will do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErasurePlan {
    pub subject: Target,
    pub summary: SubjectSummary,
    /// Every record to erase, the subject first.
    pub erase: Vec<Target>,
    /// Records that stay, with their references to the subject removed.
    pub scrub: Vec<Scrub>,
    /// Rows whose references could not be read, with the reason: open their
    /// documents to check them before confirming.
    pub unchecked: Vec<(Target, String)>,
}

/// Plans the erasure of `subject` against every row of the workspace.
pub fn plan_erasure<'a>(subject: &Contact, rows: impl IntoIterator<Item = &'a Row>) -> ErasurePlan {
    let found = references::referencing(subject.id, rows);
    let mut erase = vec![Target { id: subject.id, kind: RecordKind::Contact, title: subject.display_name() }];
    let mut scrub = Vec::new();
    for (row, refs) in found.found {
        if row.kind == RecordKind::Workspace {
            continue;
        }
        let only_about_subject = row.kind != RecordKind::Contact
            && refs.iter().any(|r| r.role == Role::About && r.target == subject.id)
            && refs.iter().all(|r| r.role != Role::About || r.target == subject.id);
        if only_about_subject {
            erase.push(Target::of(row));
        } else {
            let mut fields: Vec<String> =
                refs.iter().filter(|r| r.target == subject.id).map(|r: &Reference| r.field.clone()).collect();
            fields.sort();
            fields.dedup();
            scrub.push(Scrub { record: Target::of(row), fields });
        }
    }
    let unchecked = found.unreadable.into_iter().map(|(row, reason)| (Target::of(row), reason)).collect();
    ErasurePlan {
        subject: erase[0].clone(),
        summary: SubjectSummary {
            name: subject.display_name(),
            emails: subject.emails.len(),
            phones: subject.phones.len(),
            consent_events: subject.consent.len(),
            address: !subject.address.one_line().is_empty(),
            notes: !subject.notes.trim().is_empty(),
            custom_values: subject.custom.len(),
            tags: subject.tags.len(),
            restricted: subject.restriction.is_some(),
        },
        erase,
        scrub,
        unchecked,
    }
}

/// "1 email address", "3 activities".
pub(crate) fn count(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

/// The noun for `n` records of `kind`.
pub(crate) fn records(n: usize, kind: RecordKind) -> String {
    let (one, many) = match kind {
        RecordKind::Workspace => ("workspace", "workspaces"),
        RecordKind::Contact => ("contact", "contacts"),
        RecordKind::Company => ("company", "companies"),
        RecordKind::Deal => ("deal", "deals"),
        RecordKind::Activity => ("activity", "activities"),
        RecordKind::Task => ("task", "tasks"),
        RecordKind::Ticket => ("ticket", "tickets"),
        RecordKind::Segment => ("segment", "segments"),
        RecordKind::Campaign => ("campaign", "campaigns"),
    };
    count(n, one, many)
}

/// "a, b and c".
pub(crate) fn join_words(parts: &[String]) -> String {
    match parts {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// `"2 activities (“Call”, “Lunch”)"` for a group of targets of one kind.
fn grouped(targets: &[&Target]) -> Vec<String> {
    let mut kinds: Vec<RecordKind> = targets.iter().map(|t| t.kind).collect();
    kinds.sort();
    kinds.dedup();
    kinds
        .into_iter()
        .map(|kind| {
            let titles: Vec<String> =
                targets.iter().filter(|t| t.kind == kind).map(|t| format!("“{}”", t.title)).collect();
            format!("{} ({})", records(titles.len(), kind), titles.join(", "))
        })
        .collect()
}

impl ErasurePlan {
    /// The ids of every record to erase, the subject first.
    pub fn erase_ids(&self) -> Vec<RecordId> {
        self.erase.iter().map(|t| t.id).collect()
    }

    /// The tombstones to add to the workspace, one per erased record.
    pub fn tombstones(&self, now: Timestamp, by: MemberId) -> Vec<Tombstone> {
        self.erase.iter().map(|t| Tombstone { record: t.id, kind: t.kind, erased_at: now, erased_by: by }).collect()
    }

    /// Whether every row could be checked for references to the subject.
    pub fn is_complete(&self) -> bool {
        self.unchecked.is_empty()
    }

    /// The confirmation dialog's text, one paragraph per line: what goes,
    /// what is scrubbed, what could not be checked, what stays.
    pub fn preview_lines(&self) -> Vec<String> {
        let s = &self.summary;
        let mut parts = vec!["the contact".to_owned()];
        if s.emails > 0 {
            parts.push(count(s.emails, "email address", "email addresses"));
        }
        if s.phones > 0 {
            parts.push(count(s.phones, "phone number", "phone numbers"));
        }
        if s.address {
            parts.push("the postal address".into());
        }
        if s.notes {
            parts.push("the notes".into());
        }
        if s.custom_values > 0 {
            parts.push(count(s.custom_values, "custom field value", "custom field values"));
        }
        if s.tags > 0 {
            parts.push(count(s.tags, "tag", "tags"));
        }
        if s.consent_events > 0 {
            parts.push(format!("its {}", count(s.consent_events, "consent event", "consent events")));
        }
        parts.push("its change history".into());
        let mut lines = vec![format!("{}: {}.", s.name, join_words(&parts))];
        if s.restricted {
            lines.push(format!("{} is restricted (kept but not processed); erasure removes the contact.", s.name));
        }
        let related: Vec<&Target> = self.erase.iter().skip(1).collect();
        if !related.is_empty() {
            lines.push(format!(
                "Also erased, because they are only about {}: {}.",
                s.name,
                join_words(&grouped(&related))
            ));
        }
        if !self.scrub.is_empty() {
            let kept: Vec<&Target> = self.scrub.iter().map(|x| &x.record).collect();
            lines.push(format!("Kept, with every reference to {} removed: {}.", s.name, join_words(&grouped(&kept))));
        }
        if !self.unchecked.is_empty() {
            let unchecked: Vec<&Target> = self.unchecked.iter().map(|(t, _)| t).collect();
            lines.push(format!(
                "Could not be checked for references to {}: {}. Open them to check before erasing.",
                s.name,
                join_words(&grouped(&unchecked))
            ));
        }
        lines.push(
            "This browser removes them now, and every other browser when it next syncs. What stays is a \
             tombstone: the record ids, when and by whom; no personal data. This cannot be undone."
                .into(),
        );
        lines
    }

    /// [`Self::preview_lines`] as one text.
    pub fn preview(&self) -> String {
        self.preview_lines().join("\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consent::{ConsentAction, ConsentSource, LawfulBasis, NewConsentEvent, PurposeId};
    use crate::contact::Labeled;
    use crate::ids::{EntryId, EventId};
    use crate::privacy::references::tests::{about, mentions, row_with};
    use crate::privacy::references::REFS_COLUMN;
    use crate::record::Record;

    fn me() -> MemberId {
        MemberId::from_bytes([9; 16])
    }

    pub(crate) fn ada() -> Contact {
        let mut c = Contact::new(RecordId::from_bytes([1; 16]), Timestamp::from_millis(1), me());
        c.given_name = "Ada".into();
        c.family_name = "Lovelace".into();
        c.emails.push(Labeled {
            id: EntryId::from_bytes([1; 16]),
            label: "work".into(),
            value: "ada@example.org".into(),
        });
        c.emails.push(Labeled { id: EntryId::from_bytes([2; 16]), label: "home".into(), value: "ada@home.org".into() });
        c.phones.push(Labeled {
            id: EntryId::from_bytes([3; 16]),
            label: "mobile".into(),
            value: "+442079460958".into(),
        });
        for n in 0..3u8 {
            c.consent.record(NewConsentEvent {
                id: EventId::from_bytes([n + 1; 16]),
                purpose: PurposeId::MARKETING_EMAIL.parse().unwrap(),
                action: if n % 2 == 0 { ConsentAction::Granted } else { ConsentAction::Withdrawn },
                recorded_at: Timestamp::from_millis(i64::from(n)),
                lawful_basis: LawfulBasis::Consent,
                source: ConsentSource::Form,
                recorded_by: me(),
                note: String::new(),
            });
        }
        c
    }

    #[test]
    fn a_contact_alone_is_erased_with_a_preview_that_counts_its_data() {
        let plan = plan_erasure(&ada(), &[ada().row()]);
        assert_eq!(plan.erase_ids(), [ada().id]);
        assert!(plan.scrub.is_empty() && plan.is_complete());
        let preview = plan.preview();
        assert!(
            preview.starts_with(
                "Ada Lovelace: the contact, 2 email addresses, 1 phone number, its 3 consent events and its \
                 change history."
            ),
            "{preview}"
        );
        assert!(preview.contains("no personal data"));
    }

    #[test]
    fn records_only_about_the_subject_are_erased_and_records_that_mention_them_are_scrubbed() {
        let grace = 2;
        let rows = [
            row_with(10, RecordKind::Activity, "Call with Ada", &[about(1)]),
            row_with(11, RecordKind::Activity, "Lunch with Ada and Grace", &[about(1), about(grace)]),
            row_with(12, RecordKind::Deal, "Engines order", &[mentions(1), mentions(grace)]),
            row_with(13, RecordKind::Deal, "Grace only", &[mentions(grace)]),
            row_with(14, RecordKind::Contact, "Referred by Ada", &[about(1)]),
        ];
        let plan = plan_erasure(&ada(), &rows);
        let erased: Vec<&str> = plan.erase.iter().map(|t| t.title.as_str()).collect();
        assert_eq!(erased, ["Ada Lovelace", "Call with Ada"]);
        let scrubbed: Vec<&str> = plan.scrub.iter().map(|s| s.record.title.as_str()).collect();
        assert_eq!(scrubbed, ["Lunch with Ada and Grace", "Engines order", "Referred by Ada"]);
        assert_eq!(plan.scrub[1].fields, ["contacts"]);
        let preview = plan.preview();
        assert!(
            preview.contains("Also erased, because they are only about Ada Lovelace: 1 activity (“Call with Ada”).")
        );
        assert!(
            preview.contains("1 contact (“Referred by Ada”), 1 deal (“Engines order”) and 1 activity"),
            "{preview}"
        );
    }

    #[test]
    fn tombstones_name_every_erased_record_and_nothing_personal() {
        let rows = [row_with(10, RecordKind::Activity, "Call with Ada", &[about(1)])];
        let plan = plan_erasure(&ada(), &rows);
        let at = Timestamp::from_millis(99);
        let ts = plan.tombstones(at, me());
        assert_eq!(ts.len(), 2);
        assert_eq!((ts[1].record, ts[1].kind), (RecordId::from_bytes([10; 16]), RecordKind::Activity));
        assert!(ts.iter().all(|t| t.erased_at == at && t.erased_by == me()));
    }

    #[test]
    fn rows_whose_references_cannot_be_read_are_listed_as_unchecked() {
        let mut broken = row_with(10, RecordKind::Deal, "Mystery", &[]);
        broken.columns.insert(REFS_COLUMN.into(), "{".into());
        let plan = plan_erasure(&ada(), &[broken]);
        assert!(!plan.is_complete());
        assert!(plan.preview().contains("Could not be checked for references to Ada Lovelace: 1 deal (“Mystery”)"));
    }

    #[test]
    fn erasing_a_contact_erases_its_own_activities_and_tasks_and_scrubs_shared_sales_records() {
        use crate::privacy::Referencing;
        use crate::sales::activity::{Activity, ActivityKind};
        use crate::sales::deal::Deal;
        use crate::sales::task::Task;
        let ada = ada();
        let grace = RecordId::from_bytes([2; 16]);
        let t = Timestamp::from_millis(5);
        let id = |n: u8| RecordId::from_bytes([n; 16]);
        let mut call = Activity::new(id(10), ActivityKind::Call, t, t, me());
        call.contacts.insert(ada.id);
        call.deal = Some(id(20));
        let mut meeting = Activity::new(id(11), ActivityKind::Meeting, t, t, me());
        meeting.contacts.extend([ada.id, grace]);
        let mut deal = Deal::new(id(20), "sales".into(), "lead".into(), EntryId::from_bytes([7; 16]), t, me());
        deal.contacts.extend([ada.id, grace]);
        let mut follow_up = Task::new(id(30), t, me());
        follow_up.link = Some(ada.id);
        follow_up.link_kind = Some(RecordKind::Contact);
        let mut deal_task = Task::new(id(31), t, me());
        deal_task.link = Some(id(20));
        deal_task.link_kind = Some(RecordKind::Deal);
        let rows = [call.row(), meeting.row(), deal.row(), follow_up.row(), deal_task.row()];

        let plan = plan_erasure(&ada, &rows);
        assert_eq!(plan.erase_ids(), [ada.id, id(10), id(30)], "the call and the follow-up were only about Ada");
        let scrubbed: Vec<_> = plan.scrub.iter().map(|s| (s.record.id, s.fields.clone())).collect();
        assert_eq!(scrubbed, [(id(11), vec!["contacts".to_owned()]), (id(20), vec!["contacts".to_owned()])]);

        // Carrying out the scrub leaves no reference to Ada, and Grace stays.
        assert_eq!(meeting.scrub(ada.id), ["contacts"]);
        assert_eq!(deal.scrub(ada.id), ["contacts"]);
        let after = [meeting.row(), deal.row(), deal_task.row()];
        assert!(plan_erasure(&ada, &after).scrub.is_empty());
        assert!(after.iter().all(|r| !r.column(REFS_COLUMN).contains(&ada.id.to_string())));
        assert!(after[0].column(REFS_COLUMN).contains(&grace.to_string()));
    }
}

//! Retention: a workspace policy that lists contacts nobody has worked with
//! for a while, so a person can anonymise or erase them in bulk.
//!
//! - [`RetentionPolicy`] lives in the workspace document as one JSON string
//!   at the root key `retention` (absent = no policy; last writer wins).
//! - [`review`] is a pure function of the policy, the rows, what the app
//!   knows about each contact's activity and open work ([`ActivityFacts`]),
//!   and `now`. It only proposes; nothing is changed until the user picks.
//! - [`activity_facts`] derives those facts from the rows of activities
//!   (column `at`), deals and tickets (column `status`) that reference
//!   contacts through their `refs` column ([`super::references`]).
//! - [`anonymise`] keeps what aggregates need (tags, owner, creation, the
//!   current consent status per purpose) and drops what identifies the person.
//!
//! # Anonymising must rewrite the document
//!
//! Writing an anonymised [`Contact`] into its existing document is an edit:
//! every old value (names, emails, notes, consent notes) stays in the
//! document's history, in its saved bytes and on the relay, and the consent
//! ledger is append-only so its events would not even leave the current
//! state. Use [`anonymise_document`], which builds a fresh document of the
//! next epoch ([`super::epoch`]) from the anonymised contact; store it in
//! place of the old one (snapshot replaces all chunks) and push it as the
//! document's new snapshot, so the relay drops the old envelopes.
//!
//! # Limits
//!
//! Anonymisation is only as good as what it drops: the free text of other
//! records (a deal titled with the person's name) is not touched, and a
//! small team can sometimes tell who an "anonymised contact" with a rare tag
//! was. Erasure is the stronger tool; the review list offers both.

use std::collections::{BTreeMap, BTreeSet};

use automerge::{ActorId, AutoCommit, ReadDoc, ROOT};
use serde::{Deserialize, Serialize};

use crate::consent::{ConsentAction, ConsentEvent, ConsentLedger};
use crate::contact::{Address, Contact};
use crate::doc::{self, DecodeError, EncodeError};
use crate::ids::{MemberId, RecordId};
use crate::record::{Record, RecordKind, Row};
use crate::validate::CustomFieldKind;
use crate::workspace::Workspace;
use crate::Timestamp;

use super::erasure::count;
use super::restriction;

/// Root key of the policy in the workspace document.
pub const KEY: &str = "retention";
/// The row column that marks an anonymised contact (value `"anonymised"`).
pub const ROW_COLUMN: &str = "anonymised";
/// The name an anonymised contact shows.
pub const ANONYMISED_NAME: &str = "Anonymised contact";

/// What the review list proposes for its candidates.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RetentionAction {
    /// Drop identifying fields, keep the aggregates.
    #[default]
    Anonymise,
    /// Erase the contact everywhere.
    Erase,
}

impl RetentionAction {
    pub const fn label(self) -> &'static str {
        match self {
            RetentionAction::Anonymise => "Anonymise",
            RetentionAction::Erase => "Erase",
        }
    }

    /// The bulk confirmation text for `n` contacts.
    pub fn preview(self, n: usize) -> String {
        let who = count(n, "contact", "contacts");
        match self {
            RetentionAction::Anonymise => format!(
                "Anonymise {who}: names, email addresses, phone numbers, postal address, company, job title, \
                 notes, free-text and date custom fields and consent notes are removed, here and on every \
                 browser when it syncs, with their history. Tags, owner, creation date, choice and number \
                 fields and the current consent status per purpose are kept for reports."
            ),
            RetentionAction::Erase => format!(
                "Erase {who} and the records only about them, here and on every browser when it syncs. \
                 Only tombstones (record ids, when and by whom) stay. This cannot be undone."
            ),
        }
    }
}

/// A workspace's retention policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetentionPolicy {
    /// A contact with no activity for this many calendar months (and no open
    /// deal or ticket) comes up for review. 0 lists every contact without
    /// open work.
    pub inactive_months: u32,
    /// Contacts with any of these tags never come up (e.g. `keep`).
    #[serde(default)]
    pub exempt_tags: BTreeSet<String>,
    /// What the review proposes.
    #[serde(default)]
    pub action: RetentionAction,
}

impl RetentionPolicy {
    pub fn new(inactive_months: u32) -> Self {
        Self { inactive_months, exempt_tags: BTreeSet::new(), action: RetentionAction::default() }
    }

    /// The instant before which a contact's last activity makes it a
    /// candidate: `now` minus the policy's months, in calendar months (UTC).
    pub fn cutoff(&self, now: Timestamp) -> Timestamp {
        let cut = chrono::DateTime::from_timestamp_millis(now.as_millis())
            .and_then(|d| d.checked_sub_months(chrono::Months::new(self.inactive_months)))
            .map(|d| d.timestamp_millis())
            .unwrap_or(i64::MIN);
        Timestamp::from_millis(cut)
    }
}

/// What the app knows about a contact beyond its row: the latest activity
/// about them (call, email, meeting, note…) and how many deals or tickets of
/// theirs are open.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ActivityFacts {
    pub last_activity: Option<Timestamp>,
    pub open_items: u32,
}

/// The row column of an activity holding when it happened (epoch
/// milliseconds as a decimal string).
pub const ACTIVITY_AT_COLUMN: &str = "at";
/// The row column of a deal (`open`, `won`, `lost`) or ticket (`closed` and
/// `solved` are done, anything else is open) holding its status.
pub const STATUS_COLUMN: &str = "status";

/// What [`activity_facts`] derived from the rows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ActivityIndex {
    /// Per referenced record (contacts, in practice).
    pub facts: BTreeMap<RecordId, ActivityFacts>,
    /// Activity, deal and ticket rows whose references could not be read,
    /// with the reason: the contacts they point at are unknown, so the
    /// review can say that its list may include people with recent work.
    pub unreadable: Vec<(RecordId, String)>,
}

/// Whether a deal or ticket row counts as open work.
///
/// Deals are done when `won` or `lost`, tickets when `closed` or `solved`.
/// Anything else, including a missing or unknown status, counts as open:
/// the review must rather miss a candidate than propose someone with work
/// in progress.
fn is_open(row: &Row) -> bool {
    let status = row.column(STATUS_COLUMN).trim().to_ascii_lowercase();
    match row.kind {
        RecordKind::Deal => !matches!(status.as_str(), "won" | "lost"),
        RecordKind::Ticket => !matches!(status.as_str(), "closed" | "solved"),
        _ => false,
    }
}

/// Derives each contact's [`ActivityFacts`] from the materialised rows, for
/// [`review`]. Pure: one pass over rows already in memory.
///
/// - An **activity** row (kind `Activity`) counts for every record its
///   [`references`](super::references) point at (whatever the role): its
///   time is the `at` column (epoch milliseconds), or the row's `updated_at`
///   when `at` is missing or unreadable. A future `at` (a meeting planned)
///   counts too, so a contact with something planned never comes up.
/// - A **deal** or **ticket** row that is open (see [`STATUS_COLUMN`])
///   adds one open item to every record it references.
/// - Soft-deleted rows count for nothing: they are no longer work.
/// - Rows whose references cannot be read are listed in
///   [`ActivityIndex::unreadable`], never treated as pointing at nobody
///   silently.
pub fn activity_facts<'a>(rows: impl IntoIterator<Item = &'a Row>) -> ActivityIndex {
    let mut out = ActivityIndex::default();
    for row in rows {
        if row.deleted || !matches!(row.kind, RecordKind::Activity | RecordKind::Deal | RecordKind::Ticket) {
            continue;
        }
        let refs = match super::references::row_references(row) {
            super::references::RowReferences::Read(refs) => refs,
            super::references::RowReferences::Unreadable(reason) => {
                out.unreadable.push((row.id, reason));
                continue;
            }
        };
        let targets: BTreeSet<RecordId> = refs.iter().map(|r| r.target).filter(|t| *t != row.id).collect();
        for target in targets {
            let f = out.facts.entry(target).or_default();
            if row.kind == RecordKind::Activity {
                let at = row
                    .column(ACTIVITY_AT_COLUMN)
                    .trim()
                    .parse::<i64>()
                    .map(Timestamp::from_millis)
                    .unwrap_or(row.updated_at);
                f.last_activity = Some(f.last_activity.map_or(at, |l| l.max(at)));
            } else if is_open(row) {
                f.open_items = f.open_items.saturating_add(1);
            }
        }
    }
    out
}

/// A contact the policy puts up for review.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionCandidate {
    pub id: RecordId,
    pub title: String,
    /// The later of the last edit and the last activity.
    pub last_activity: Timestamp,
    /// Whole calendar months since then.
    pub inactive_months: u32,
    /// Restricted contacts are listed (retention still applies) but flagged:
    /// a restriction often means a dispute or a legal claim, so the user
    /// should look before anonymising or erasing; leave them unselected by
    /// default.
    pub restricted: bool,
    pub suggested: RetentionAction,
}

/// Whole calendar months from `from` to `to` (0 when `to` is not later).
pub fn months_between(from: Timestamp, to: Timestamp) -> u32 {
    use chrono::Datelike;
    let (Some(a), Some(b)) = (
        chrono::DateTime::from_timestamp_millis(from.as_millis()),
        chrono::DateTime::from_timestamp_millis(to.as_millis()),
    ) else {
        return 0;
    };
    if b <= a {
        return 0;
    }
    let mut months = (b.year() - a.year()) * 12 + (b.month() as i32 - a.month() as i32);
    if a.checked_add_months(chrono::Months::new(months.max(0) as u32)).is_some_and(|d| d > b) {
        months -= 1;
    }
    months.max(0) as u32
}

/// The contacts the policy puts up for review, longest inactive first.
///
/// A contact row is a candidate when it is not anonymised already, carries
/// none of the exempt tags, has no open items in `facts`, and its last
/// activity (the later of its row's `updated_at` and `facts.last_activity`)
/// is before [`RetentionPolicy::cutoff`]. Soft-deleted contacts are
/// candidates too: they still hold personal data.
pub fn review<'a>(
    policy: &RetentionPolicy,
    rows: impl IntoIterator<Item = &'a Row>,
    facts: &BTreeMap<RecordId, ActivityFacts>,
    now: Timestamp,
) -> Vec<RetentionCandidate> {
    let cutoff = policy.cutoff(now);
    let mut out: Vec<RetentionCandidate> = rows
        .into_iter()
        .filter(|r| r.kind == RecordKind::Contact && r.column(ROW_COLUMN).is_empty())
        .filter(|r| !r.tags.iter().any(|t| policy.exempt_tags.contains(t)))
        .filter_map(|r| {
            let f = facts.get(&r.id).copied().unwrap_or_default();
            if f.open_items > 0 {
                return None;
            }
            let last = f.last_activity.map_or(r.updated_at, |a| a.max(r.updated_at));
            (last < cutoff).then(|| RetentionCandidate {
                id: r.id,
                title: r.title.clone(),
                last_activity: last,
                inactive_months: months_between(last, now),
                restricted: restriction::is_restricted_row(r),
                suggested: policy.action,
            })
        })
        .collect();
    out.sort_by_key(|c| (c.last_activity, c.id));
    out
}

/// The contact with its identifying fields dropped (see the module doc for
/// why the result must be stored through [`anonymise_document`]).
///
/// Dropped: names (the contact shows [`ANONYMISED_NAME`]), emails, phones,
/// postal address, company and job title (together they often identify
/// someone), notes, custom values that are free text or dates or no longer
/// defined, and the consent ledger's notes and history. Kept: id, tags,
/// owner, creation and deletion state, restriction, custom values of choice
/// and number fields, and per purpose the events that decide the current
/// status (its heads, usually one, without their notes, each listing the ids
/// of the earlier events it supersedes), so consent coverage reports still
/// count the contact and a withdrawal recorded elsewhere meanwhile still
/// wins when it is replayed ([`super::epoch::replay`]).
pub fn anonymise(contact: &Contact, ws: &Workspace, now: Timestamp, by: MemberId) -> Contact {
    let mut c = contact.clone();
    c.given_name = ANONYMISED_NAME.into();
    c.family_name = String::new();
    c.emails.clear();
    c.primary_email = None;
    c.phones.clear();
    c.primary_phone = None;
    c.company_name = String::new();
    c.title = String::new();
    c.address = Address::default();
    c.notes = String::new();
    c.custom.retain(|field, _| {
        ws.custom_fields.get(field).is_some_and(|def| {
            def.applies_to == RecordKind::Contact
                && matches!(def.kind, CustomFieldKind::Choice(_) | CustomFieldKind::Number)
        })
    });
    c.consent = aggregate_ledger(&contact.consent);
    c.anonymised_at = Some(now);
    c.touch(now, by);
    c
}

/// Per purpose, the heads of `ledger` (usually one event), without their
/// notes, each naming in `seen` every event it dominates: the same status
/// as `ledger`, and the same causal standing for events recorded elsewhere
/// and replayed onto the anonymised document later
/// ([`super::epoch::replay`]): an event the anonymising device had seen is
/// dominated, one it had not is concurrent.
fn aggregate_ledger(ledger: &ConsentLedger) -> ConsentLedger {
    let mut out = ConsentLedger::new();
    for purpose in ledger.purposes() {
        let mut kept: Vec<ConsentEvent> =
            ledger.heads(&purpose).into_iter().filter_map(|id| ledger.get(id)).cloned().collect();
        if kept.is_empty() {
            // A ledger caught in a cycle (no heads, reads as withdrawn): its
            // newest withdrawal.
            kept.extend(
                ledger
                    .events()
                    .filter(|e| e.purpose == purpose && e.action == ConsentAction::Withdrawn)
                    .max_by_key(|e| (e.recorded_at, e.id))
                    .cloned(),
            );
        }
        for mut event in kept {
            event.note = String::new();
            event.seen = ledger.dominated_by(event.id).into_iter().collect();
            out.insert(event);
        }
    }
    out
}

/// Why a contact document could not be anonymised.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnonymiseError {
    #[error("the contact could not be read: {0}")]
    Decode(#[from] DecodeError),
    #[error(transparent)]
    Encode(#[from] EncodeError),
}

/// Anonymises the contact in `doc` and returns a fresh document of the next
/// epoch holding only the anonymised contact (no history, so none of the
/// dropped values are in its bytes), with the anonymised contact for its
/// row. `actor` should be a new session actor of the member (see
/// [`super::epoch`]).
///
/// # Errors
/// [`AnonymiseError::Decode`] when `doc` is not a readable contact.
pub fn anonymise_document(
    doc: &mut AutoCommit,
    ws: &Workspace,
    now: Timestamp,
    by: MemberId,
    actor: ActorId,
) -> Result<(AutoCommit, Contact), AnonymiseError> {
    let contact = Contact::from_doc(doc)?;
    let anonymised = anonymise(&contact, ws, now, by);
    let fresh = super::epoch::next_epoch_of(&anonymised, doc, actor, now)?;
    Ok((fresh, anonymised))
}

/// Reads the policy from a workspace document (absent = none).
///
/// # Errors
/// [`DecodeError::Invalid`] when the stored text is not a policy.
pub(crate) fn read_policy(doc: &AutoCommit) -> Result<Option<RetentionPolicy>, DecodeError> {
    doc::get_str(doc, &ROOT, KEY)?
        .map(|text| {
            serde_json::from_str(&text).map_err(|e| DecodeError::Invalid { field: KEY.into(), reason: e.to_string() })
        })
        .transpose()
}

/// Writes the policy (`None` removes it), only when it changed.
pub(crate) fn write_policy(doc: &mut AutoCommit, policy: Option<&RetentionPolicy>) -> Result<(), EncodeError> {
    let wanted = policy.map(serde_json::to_string).transpose().map_err(|e| EncodeError(e.to_string()))?;
    let current = read_policy(doc).ok().flatten();
    if current.as_ref() == policy && doc.get_all(&ROOT, KEY)?.len() <= 1 {
        return Ok(());
    }
    doc::put_str(doc, &ROOT, KEY, wanted.as_deref())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consent::{LawfulBasis, NewConsentEvent, PurposeId};
    use crate::contact::Labeled;
    use crate::ids::{EntryId, EventId};
    use crate::privacy::epoch;
    use crate::workspace::CustomFieldDef;

    const DAY: i64 = 86_400_000;

    fn me() -> MemberId {
        MemberId::from_bytes([1; 16])
    }

    /// 2026-06-15T00:00:00Z
    fn now() -> Timestamp {
        Timestamp::from_millis(1_781_481_600_000)
    }

    fn row(n: u8, updated_days_ago: i64) -> Row {
        let mut c = Contact::new(RecordId::from_bytes([n; 16]), Timestamp::from_millis(0), me());
        c.given_name = format!("c{n}");
        c.updated_at = Timestamp::from_millis(now().as_millis() - updated_days_ago * DAY);
        c.row()
    }

    #[test]
    fn the_cutoff_counts_calendar_months() {
        let policy = RetentionPolicy::new(3);
        assert_eq!(policy.cutoff(now()).to_rfc3339(), "2026-03-15T00:00:00Z");
        assert_eq!(months_between(policy.cutoff(now()), now()), 3);
        assert_eq!(months_between(Timestamp::from_millis(policy.cutoff(now()).as_millis() + 1), now()), 2);
        assert_eq!(months_between(now(), policy.cutoff(now())), 0);
    }

    #[test]
    fn only_inactive_contacts_without_open_work_or_exempt_tags_come_up_oldest_first() {
        let mut policy = RetentionPolicy::new(12);
        policy.exempt_tags.insert("keep".into());
        let mut kept = row(4, 900);
        kept.tags.push("keep".into());
        let mut anonymised = row(6, 900);
        anonymised.columns.insert(ROW_COLUMN.into(), "anonymised".into());
        let rows = [row(1, 400), row(2, 30), row(3, 800), kept, row(5, 500), anonymised, row(7, 700)];
        let mut facts = BTreeMap::new();
        facts.insert(RecordId::from_bytes([5; 16]), ActivityFacts { last_activity: None, open_items: 1 });
        facts.insert(
            RecordId::from_bytes([7; 16]),
            ActivityFacts { last_activity: Some(Timestamp::from_millis(now().as_millis() - 10 * DAY)), open_items: 0 },
        );
        let ids: Vec<u8> = review(&policy, &rows, &facts, now()).iter().map(|c| c.id.as_uuid().as_bytes()[0]).collect();
        assert_eq!(ids, [3, 1], "oldest first; recent, exempt, open, anonymised and recently active left out");
        let first = &review(&policy, &rows, &facts, now())[0];
        assert_eq!(first.inactive_months, 26);
        assert_eq!(first.suggested, RetentionAction::Anonymise);
    }

    #[test]
    fn restricted_contacts_are_listed_but_flagged() {
        let mut c = Contact::new(RecordId::from_bytes([1; 16]), Timestamp::from_millis(0), me());
        c.restrict(Timestamp::from_millis(0), me());
        let candidates = review(&RetentionPolicy::new(1), &[c.row()], &BTreeMap::new(), now());
        assert!(candidates[0].restricted);
    }

    fn ws() -> Workspace {
        let mut ws = Workspace::new(RecordId::from_bytes([9; 16]), "Acme", me(), "Sam", Timestamp::from_millis(0));
        for (id, kind) in [
            ("tier", CustomFieldKind::Choice(vec!["Gold".into()])),
            ("score", CustomFieldKind::Number),
            ("nickname", CustomFieldKind::Text),
            ("birthday", CustomFieldKind::Date),
        ] {
            ws.custom_fields
                .insert(id.into(), CustomFieldDef { label: id.into(), kind, applies_to: RecordKind::Contact });
        }
        ws
    }

    fn ada() -> Contact {
        let mut c = Contact::new(RecordId::from_bytes([2; 16]), Timestamp::from_millis(3), me());
        c.given_name = "Ada".into();
        c.family_name = "Lovelace".into();
        c.emails.push(Labeled {
            id: EntryId::from_bytes([1; 16]),
            label: "work".into(),
            value: "ada@example.org".into(),
        });
        c.phones.push(Labeled {
            id: EntryId::from_bytes([2; 16]),
            label: "mobile".into(),
            value: "+442079460958".into(),
        });
        c.company_name = "Analytical Engines".into();
        c.title = "Countess".into();
        c.address.street = "12 St James's Square".into();
        c.notes = "Prefers letters.".into();
        c.tags.insert("vip".into());
        for (k, v) in
            [("tier", "Gold"), ("score", "42"), ("nickname", "Enchantress"), ("birthday", "1815-12-10"), ("gone", "x")]
        {
            c.custom.insert(k.into(), v.into());
        }
        let email: PurposeId = PurposeId::MARKETING_EMAIL.parse().unwrap();
        let sms: PurposeId = PurposeId::PHONE_SMS.parse().unwrap();
        for (n, purpose, action) in [
            (1, &email, ConsentAction::Granted),
            (2, &email, ConsentAction::Withdrawn),
            (3, &email, ConsentAction::Granted),
            (4, &sms, ConsentAction::Withdrawn),
        ] {
            c.consent.record(NewConsentEvent {
                id: EventId::from_bytes([n; 16]),
                purpose: purpose.clone(),
                action,
                recorded_at: Timestamp::from_millis(i64::from(n)),
                lawful_basis: LawfulBasis::Consent,
                source: crate::consent::ConsentSource::Call,
                recorded_by: me(),
                note: "Ada said so on the phone".into(),
            });
        }
        c
    }

    #[test]
    fn anonymising_drops_identifying_fields_and_keeps_the_aggregates() {
        let before = ada();
        let after = anonymise(&before, &ws(), now(), me());
        assert_eq!(after.display_name(), ANONYMISED_NAME);
        assert!(after.emails.is_empty() && after.phones.is_empty());
        assert_eq!((after.company_name.as_str(), after.title.as_str(), after.notes.as_str()), ("", "", ""));
        assert_eq!(after.address, Address::default());
        assert_eq!(after.custom.keys().map(String::as_str).collect::<Vec<_>>(), ["score", "tier"]);
        assert_eq!(after.tags, before.tags);
        assert_eq!(
            (after.owner, after.created_at, after.created_by),
            (before.owner, before.created_at, before.created_by)
        );
        assert_eq!(after.consent.statuses(), before.consent.statuses(), "consent status per purpose is kept");
        assert_eq!(after.consent.len(), 2, "the head of each purpose");
        assert!(after.consent.events().all(|e| e.note.is_empty()));
        let email: PurposeId = PurposeId::MARKETING_EMAIL.parse().unwrap();
        let head = after.consent.events().find(|e| e.purpose == email).unwrap();
        assert_eq!(head.id, EventId::from_bytes([3; 16]));
        assert_eq!(
            head.seen,
            [1, 2].map(|n| EventId::from_bytes([n; 16])),
            "the head names every event it supersedes, so a replayed event it had seen stays beneath it"
        );
        assert_eq!(after.anonymised_at, Some(now()));
        assert_eq!(after.row().column(ROW_COLUMN), "anonymised");
    }

    fn saved_text(doc: &mut AutoCommit) -> String {
        String::from_utf8_lossy(&doc.save_nocompress()).into_owned()
    }

    #[test]
    fn an_anonymised_document_holds_none_of_the_dropped_values_in_its_bytes() {
        let mut doc = AutoCommit::new();
        doc::init_root(&mut doc, "contact", 1).unwrap();
        ada().write_doc(&mut doc).unwrap();
        let actor = crate::repo::session_actor(me(), [5; 8]);
        let (mut fresh, anonymised) = anonymise_document(&mut doc, &ws(), now(), me(), actor).unwrap();
        assert_eq!(Contact::from_doc(&fresh).unwrap(), anonymised);
        assert_eq!(epoch::epoch(&fresh).unwrap(), 1);
        let text = saved_text(&mut fresh);
        for gone in [
            "Ada",
            "Lovelace",
            "ada@example.org",
            "+442079460958",
            "Countess",
            "James",
            "Prefers",
            "Enchantress",
            "1815",
            "on the phone",
        ] {
            assert!(!text.contains(gone), "{gone:?} is still in the saved bytes");
        }
        assert!(text.contains("vip") && text.contains("Gold"));
    }

    #[test]
    fn anonymising_keeps_every_head_of_a_purpose_with_concurrent_events() {
        let mut c = ada();
        let email: PurposeId = PurposeId::MARKETING_EMAIL.parse().unwrap();
        // A grant concurrent with the last grant (it saw only the first event).
        c.consent.insert(ConsentEvent {
            id: EventId::from_bytes([7; 16]),
            purpose: email.clone(),
            action: ConsentAction::Granted,
            recorded_at: Timestamp::from_millis(7),
            lawful_basis: LawfulBasis::Consent,
            source: crate::consent::ConsentSource::Call,
            recorded_by: me(),
            note: "concurrent".into(),
            seen: vec![EventId::from_bytes([1; 16])],
        });
        let after = anonymise(&c, &ws(), now(), me());
        assert_eq!(after.consent.heads(&email), c.consent.heads(&email));
        assert_eq!(after.consent.statuses(), c.consent.statuses());
    }

    #[test]
    fn the_policy_round_trips_through_the_workspace_and_is_absent_by_default() {
        let mut w = ws();
        let mut doc = AutoCommit::new();
        doc::init_root(&mut doc, "workspace", 1).unwrap();
        w.write_doc(&mut doc).unwrap();
        assert_eq!(Workspace::from_doc(&doc).unwrap().retention, None);
        let mut policy = RetentionPolicy::new(24);
        policy.exempt_tags.insert("keep".into());
        policy.action = RetentionAction::Erase;
        w.retention = Some(policy);
        w.write_doc(&mut doc).unwrap();
        assert_eq!(Workspace::from_doc(&doc).unwrap(), w);
        let heads = doc.get_heads();
        w.write_doc(&mut doc).unwrap();
        assert_eq!(doc.get_heads(), heads, "an unchanged policy writes nothing");
        w.retention = None;
        w.write_doc(&mut doc).unwrap();
        assert_eq!(Workspace::from_doc(&doc).unwrap().retention, None);
    }

    fn linked(n: u8, kind: RecordKind, columns: &[(&str, &str)], refs: &[crate::privacy::Reference]) -> Row {
        let mut row = crate::privacy::references::tests::row_with(n, kind, &format!("{kind} {n}"), refs);
        row.updated_at = Timestamp::from_millis(now().as_millis() - 2000 * DAY);
        for (k, v) in columns {
            row.columns.insert((*k).into(), (*v).into());
        }
        row
    }

    fn days_ago(days: i64) -> String {
        (now().as_millis() - days * DAY).to_string()
    }

    #[test]
    fn activity_facts_come_from_activity_deal_and_ticket_rows() {
        use crate::privacy::references::tests::{about, mentions};
        let ada = RecordId::from_bytes([1; 16]);
        let bob = RecordId::from_bytes([2; 16]);
        let cy = RecordId::from_bytes([3; 16]);
        let mut deleted_call = linked(15, RecordKind::Activity, &[("at", &days_ago(1))], &[about(3)]);
        deleted_call.deleted = true;
        let rows = [
            // Ada: two calls (the later one counts), a won deal, a closed ticket.
            linked(10, RecordKind::Activity, &[("at", &days_ago(400))], &[about(1)]),
            linked(11, RecordKind::Activity, &[("at", &days_ago(90))], &[about(1), mentions(2)]),
            linked(12, RecordKind::Deal, &[("status", "won")], &[mentions(1)]),
            linked(13, RecordKind::Ticket, &[("status", "closed")], &[mentions(1)]),
            linked(14, RecordKind::Ticket, &[("status", "Solved")], &[mentions(1)]),
            // Bob: mentioned in the later call, one open deal, one open ticket.
            linked(20, RecordKind::Deal, &[("status", "open")], &[mentions(2)]),
            linked(21, RecordKind::Ticket, &[("status", "waiting on customer")], &[mentions(2)]),
            linked(22, RecordKind::Deal, &[("status", "lost")], &[mentions(2)]),
            // Cy: only a deleted call, and a call whose time cannot be read.
            deleted_call,
            linked(16, RecordKind::Activity, &[("at", "yesterday")], &[about(3)]),
            // Not activity: a contact row that references someone.
            linked(30, RecordKind::Contact, &[("at", &days_ago(0))], &[mentions(1)]),
        ];
        let index = activity_facts(&rows);
        assert!(index.unreadable.is_empty());
        let at = |days: i64| Some(Timestamp::from_millis(now().as_millis() - days * DAY));
        assert_eq!(index.facts[&ada], ActivityFacts { last_activity: at(90), open_items: 0 });
        assert_eq!(index.facts[&bob], ActivityFacts { last_activity: at(90), open_items: 2 });
        assert_eq!(
            index.facts[&cy],
            ActivityFacts { last_activity: at(2000), open_items: 0 },
            "an unreadable time falls back to the row's update; deleted rows count for nothing"
        );
        assert_eq!(index.facts.len(), 3);
    }

    #[test]
    fn open_work_without_a_known_status_counts_as_open_and_unreadable_links_are_reported() {
        use crate::privacy::references::tests::mentions;
        let mut broken = linked(12, RecordKind::Deal, &[("status", "open")], &[]);
        broken.columns.insert(crate::privacy::references::REFS_COLUMN.into(), "[oops".into());
        let rows = [
            linked(10, RecordKind::Deal, &[], &[mentions(1)]),
            linked(11, RecordKind::Ticket, &[("status", "")], &[mentions(1)]),
            broken,
        ];
        let index = activity_facts(&rows);
        assert_eq!(index.facts[&RecordId::from_bytes([1; 16])].open_items, 2);
        assert_eq!(index.unreadable.len(), 1);
        assert_eq!(index.unreadable[0].0, RecordId::from_bytes([12; 16]));
    }

    #[test]
    fn the_columns_read_are_the_ones_the_sales_records_write() {
        assert_eq!(ACTIVITY_AT_COLUMN, crate::sales::activity::columns::AT);
        assert_eq!(STATUS_COLUMN, crate::sales::deal::columns::STATUS);
    }

    #[test]
    fn the_review_leaves_out_contacts_with_recent_activity_or_open_work_from_the_rows() {
        use crate::privacy::references::tests::{about, mentions};
        let mut rows = vec![row(1, 900), row(2, 900), row(3, 900), row(4, 900)];
        rows.push(linked(10, RecordKind::Activity, &[("at", &days_ago(20))], &[about(1)]));
        rows.push(linked(11, RecordKind::Deal, &[("status", "open")], &[mentions(2)]));
        rows.push(linked(12, RecordKind::Ticket, &[("status", "solved")], &[mentions(3)]));
        rows.push(linked(13, RecordKind::Activity, &[("at", &days_ago(800))], &[about(3)]));
        let index = activity_facts(&rows);
        let candidates = review(&RetentionPolicy::new(12), &rows, &index.facts, now());
        let ids: Vec<u8> = candidates.iter().map(|c| c.id.as_uuid().as_bytes()[0]).collect();
        assert_eq!(ids, [4, 3], "oldest first; recent activity and open work left out, done work does not count");
        assert_eq!(candidates[1].last_activity, Timestamp::from_millis(now().as_millis() - 800 * DAY));
    }

    #[test]
    fn the_bulk_preview_says_what_goes_and_what_stays() {
        let text = RetentionAction::Anonymise.preview(3);
        assert!(text.starts_with("Anonymise 3 contacts: names"));
        assert!(text.contains("current consent status per purpose are kept"));
        assert!(RetentionAction::Erase.preview(1).starts_with("Erase 1 contact and"));
    }
}

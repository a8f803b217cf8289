//! The audit trail: who changed what and when, per record and workspace-wide,
//! read from the documents' own Automerge history and the workspace's
//! members. Nothing extra is stored: every change already names its author
//! (the actor is the member id plus a session suffix,
//! [`crate::repo::session_actor`]).
//!
//! [`history`] turns one document's changes into [`AuditEntry`]s, newest
//! first: when, which member, and which top-level fields the change touched
//! (edits inside `emails`, `consent`, `address`… count as that field).
//! [`workspace_log`] merges the entries of many records and the erasures
//! (from tombstones) into one log; [`to_csv`] exports it.
//!
//! # When a change happened
//!
//! Wall clocks are for display only. A change's time is, in order: the time
//! stored in the change (Automerge keeps seconds; set it by committing with
//! [`commit`] before saving), else the `updated_at` the change wrote (records
//! stamp every edit with it), else the time of the latest change it depends
//! on. Entries made on devices with a wrong clock show that clock's time.
//!
//! # Limits
//!
//! - The trail says which fields changed, never their values, so exporting it
//!   discloses no personal data beyond record titles.
//! - A document rewritten into a new epoch ([`crate::privacy::epoch`]) has no
//!   history before the rewrite: its log starts with a "new epoch" entry. An
//!   erased record's history is gone with it; the log keeps its tombstone
//!   (who erased it, when).
//! - Attribution is as honest as the actors: a change written with an actor
//!   that does not follow `session_actor` names no member, or an unknown one.

use std::cmp::Reverse;
use std::collections::{BTreeSet, HashMap};

use automerge::legacy::{Key, ObjectId, OpId, OpType};
use automerge::transaction::CommitOptions;
use automerge::{AutoCommit, ChangeHash, ScalarValue};

use crate::ids::{MemberId, RecordId};
use crate::privacy::Tombstones;
use crate::record::RecordKind;
use crate::repo::actor_member;
use crate::workspace::Workspace;
use crate::Timestamp;

/// Root fields every edit touches: left out of [`AuditEntry::fields`].
pub const BOOKKEEPING: [&str; 9] =
    ["kind", "schema", "id", "created_at", "created_by", "updated_at", "updated_by", "epoch", "epoch_base"];

/// What a change did to its record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditAction {
    Created,
    Edited,
    /// The document was rewritten without history (scrub, anonymisation).
    NewEpoch(u64),
    /// The record was erased (from its tombstone).
    Erased,
}

impl AuditAction {
    /// The stored form in JSON exports.
    pub const fn as_str(self) -> &'static str {
        match self {
            AuditAction::Created => "created",
            AuditAction::Edited => "edited",
            AuditAction::NewEpoch(_) => "new_epoch",
            AuditAction::Erased => "erased",
        }
    }

    /// Words for the UI and CSV.
    pub fn label(self) -> String {
        match self {
            AuditAction::Created => "Created".into(),
            AuditAction::Edited => "Edited".into(),
            AuditAction::NewEpoch(n) => format!("Rewritten without history (epoch {n})"),
            AuditAction::Erased => "Erased".into(),
        }
    }
}

/// One change to one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    pub at: Timestamp,
    /// The member whose session made the change.
    pub member: Option<MemberId>,
    pub action: AuditAction,
    /// Top-level fields touched, sorted, without [`BOOKKEEPING`].
    pub fields: Vec<String>,
    /// The change's hash (hex); empty for erasures.
    pub change: String,
}

/// Commits pending operations stamped with `now`, so the change carries its
/// own time (Automerge keeps whole seconds). Returns the change's hash, or
/// `None` when nothing was pending.
pub fn commit(doc: &mut AutoCommit, now: Timestamp) -> Option<ChangeHash> {
    doc.commit_with(CommitOptions::default().with_time(now.as_millis().div_euclid(1000)))
}

/// Follows created objects up to the root field they hang from.
struct Parents(HashMap<OpId, (ObjectId, Key)>);

impl Parents {
    fn top_field(&self, obj: &ObjectId, key: &Key) -> Option<String> {
        let (mut obj, mut key) = (obj, key);
        // Documents are shallow; the bound only guards against cycles in
        // hostile data.
        for _ in 0..256 {
            match obj {
                ObjectId::Root => {
                    return match key {
                        Key::Map(k) => Some(k.to_string()),
                        Key::Seq(_) => None,
                    }
                }
                ObjectId::Id(id) => {
                    let (parent, parent_key) = self.0.get(id)?;
                    obj = parent;
                    key = parent_key;
                }
            }
        }
        None
    }
}

/// The audit entries of one document, newest first (ties: later in causal
/// order first).
pub fn history(doc: &mut AutoCommit) -> Vec<AuditEntry> {
    let changes = doc.get_changes(&[]);
    let decoded: Vec<_> = changes.iter().map(|c| c.decode()).collect();
    let mut parents = Parents(HashMap::new());
    for ch in &decoded {
        for (i, op) in ch.operations.iter().enumerate() {
            if let OpType::Make(_) = op.action {
                let id = OpId(ch.start_op.get() + i as u64, ch.actor_id.clone());
                parents.0.insert(id, (op.obj.clone(), op.key.clone()));
            }
        }
    }
    let mut times: HashMap<ChangeHash, Timestamp> = HashMap::new();
    let mut entries = Vec::with_capacity(changes.len());
    for (order, (change, ch)) in changes.iter().zip(&decoded).enumerate() {
        let mut fields = BTreeSet::new();
        let mut wrote_updated_at = None;
        let mut created = false;
        let mut new_epoch = None;
        for op in &ch.operations {
            let Some(field) = parents.top_field(&op.obj, &op.key) else { continue };
            if op.obj == ObjectId::Root {
                if let OpType::Put(value) = &op.action {
                    let number = match value {
                        ScalarValue::Int(i) | ScalarValue::Timestamp(i) => Some(*i),
                        ScalarValue::Uint(u) => i64::try_from(*u).ok(),
                        _ => None,
                    };
                    match field.as_str() {
                        "updated_at" => wrote_updated_at = number.map(Timestamp::from_millis),
                        "kind" => created = true,
                        "epoch" => new_epoch = number.and_then(|n| u64::try_from(n).ok()),
                        _ => {}
                    }
                }
            }
            if !BOOKKEEPING.contains(&field.as_str()) {
                fields.insert(field);
            }
        }
        let inherited = change.deps().iter().filter_map(|d| times.get(d)).max().copied();
        let at = match change.timestamp() {
            t if t > 0 => Timestamp::from_millis(t.saturating_mul(1000)),
            _ => wrote_updated_at.or(inherited).unwrap_or_default(),
        };
        times.insert(change.hash(), at);
        let action = match new_epoch {
            Some(n) if n > 0 => AuditAction::NewEpoch(n),
            _ if created || change.deps().is_empty() => AuditAction::Created,
            _ => AuditAction::Edited,
        };
        entries.push((
            order,
            AuditEntry {
                at,
                member: actor_member(change.actor_id()),
                action,
                fields: fields.into_iter().collect(),
                change: change.hash().to_string(),
            },
        ));
    }
    entries.sort_by_key(|(order, e)| (Reverse(e.at), Reverse(*order)));
    entries.into_iter().map(|(_, e)| e).collect()
}

/// An audit entry with the record it is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordAuditEntry {
    pub record: RecordId,
    pub kind: RecordKind,
    /// The record's title now; empty for erased records.
    pub title: String,
    pub entry: AuditEntry,
}

/// One record's history, as the workspace log holds it.
#[derive(Debug, Clone)]
pub struct RecordHistory {
    pub record: RecordId,
    pub kind: RecordKind,
    pub title: String,
    pub entries: Vec<AuditEntry>,
}

/// The workspace-wide log: every record's entries and every erasure, newest
/// first. The app passes the histories it has loaded (all documents for a
/// full export, or a page of recently updated rows for the view).
pub fn workspace_log(
    records: impl IntoIterator<Item = RecordHistory>,
    tombstones: &Tombstones,
) -> Vec<RecordAuditEntry> {
    let mut out: Vec<RecordAuditEntry> = records
        .into_iter()
        .flat_map(|r| {
            let (record, kind, title) = (r.record, r.kind, r.title);
            r.entries.into_iter().map(move |entry| RecordAuditEntry { record, kind, title: title.clone(), entry })
        })
        .collect();
    out.extend(tombstones.iter().map(|t| RecordAuditEntry {
        record: t.record,
        kind: t.kind,
        title: String::new(),
        entry: AuditEntry {
            at: t.erased_at,
            member: Some(t.erased_by),
            action: AuditAction::Erased,
            fields: Vec::new(),
            change: String::new(),
        },
    }));
    // Stable: entries of one record keep their causal tie order.
    out.sort_by_key(|e| Reverse(e.entry.at));
    out
}

/// Entries of one member.
pub fn by_member(entries: &[RecordAuditEntry], member: MemberId) -> Vec<RecordAuditEntry> {
    entries.iter().filter(|e| e.entry.member == Some(member)).cloned().collect()
}

/// One entry as JSON, with the member's name from the workspace.
pub fn entry_json(entry: &AuditEntry, ws: &Workspace) -> serde_json::Value {
    let mut v = serde_json::json!({
        "at": entry.at.to_rfc3339(),
        "member": entry.member.map(|m| serde_json::json!({ "id": m.to_string(), "name": ws.member_name(m) })),
        "action": entry.action.as_str(),
        "action_label": entry.action.label(),
        "fields": entry.fields,
        "field_labels": entry.fields.iter().map(|f| field_label(f)).collect::<Vec<_>>(),
    });
    if let AuditAction::NewEpoch(n) = entry.action {
        v["epoch"] = n.into();
    }
    if !entry.change.is_empty() {
        v["change"] = entry.change.clone().into();
    }
    v
}

/// The log as JSON (an array, newest first), for the JSON export.
pub fn to_json(entries: &[RecordAuditEntry], ws: &Workspace) -> serde_json::Value {
    entries
        .iter()
        .map(|e| {
            let mut v = entry_json(&e.entry, ws);
            v["record"] = serde_json::json!({ "id": e.record.to_string(), "kind": e.kind.as_str(), "title": e.title });
            v
        })
        .collect()
}

/// Words for a field key in the audit view and exports.
pub fn field_label(key: &str) -> String {
    let label = match key {
        "given_name" => "Given name",
        "family_name" => "Family name",
        "emails" => "Email addresses",
        "primary_email" => "Primary email",
        "phones" => "Phone numbers",
        "primary_phone" => "Primary phone",
        "company_name" => "Company",
        "title" => "Job title",
        "address" => "Address",
        "tags" => "Tags",
        "owner" => "Owner",
        "notes" => "Notes",
        "custom" => "Custom fields",
        "consent" => "Consent",
        "deleted" => "Deleted",
        "restricted" | "restricted_at" | "restricted_by" => "Restriction",
        "anonymised_at" => "Anonymised",
        "name" => "Name",
        "default_calling_code" => "Default calling code",
        "purposes" => "Purposes",
        "custom_fields" => "Custom field definitions",
        "members" => "Members",
        "tombstones" => "Erasures",
        "retention" => "Retention policy",
        other => return other.replace('_', " "),
    };
    label.to_owned()
}

/// The readable field labels of an entry, without duplicates, joined.
fn fields_text(fields: &[String]) -> String {
    let mut labels: Vec<String> = Vec::new();
    for f in fields {
        let l = field_label(f);
        if !labels.contains(&l) {
            labels.push(l);
        }
    }
    labels.join("; ")
}

/// A CSV cell: quoted when needed, and text that a spreadsheet would run as
/// a formula (`=`, `+`, `-`, `@`, tab, carriage return first) prefixed with
/// an apostrophe.
fn cell(text: &str) -> String {
    let guarded = if text.starts_with(['=', '+', '-', '@', '\t', '\r']) { format!("'{text}") } else { text.to_owned() };
    if guarded.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", guarded.replace('"', "\"\""))
    } else {
        guarded
    }
}

/// The log as CSV (header row first, `\r\n` line ends), with member names
/// from the workspace.
pub fn to_csv(entries: &[RecordAuditEntry], ws: &Workspace) -> String {
    let mut out = String::from("when,member,member_id,action,record_kind,record_id,record,fields,change\r\n");
    for e in entries {
        let member_name = e.entry.member.map(|m| ws.member_name(m)).unwrap_or_else(|| "unknown".into());
        let row = [
            e.entry.at.to_rfc3339(),
            member_name,
            e.entry.member.map(|m| m.to_string()).unwrap_or_default(),
            e.entry.action.label(),
            e.kind.to_string(),
            e.record.to_string(),
            e.title.clone(),
            fields_text(&e.entry.fields),
            e.entry.change.clone(),
        ];
        out.push_str(&row.iter().map(|c| cell(c)).collect::<Vec<_>>().join(","));
        out.push_str("\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consent::{ConsentAction, ConsentSource, LawfulBasis, NewConsentEvent, PurposeId};
    use crate::contact::Contact;
    use crate::doc;
    use crate::ids::EventId;
    use crate::privacy::{epoch, Tombstone};
    use crate::record::Record;
    use crate::repo::session_actor;

    fn sam() -> MemberId {
        MemberId::from_bytes([1; 16])
    }

    fn kim() -> MemberId {
        MemberId::from_bytes([2; 16])
    }

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_millis(1_700_000_000_000 + secs * 1000)
    }

    fn created() -> (AutoCommit, Contact) {
        let mut c = Contact::new(RecordId::from_bytes([5; 16]), at(0), sam());
        c.given_name = "Ada".into();
        let mut doc = AutoCommit::new().with_actor(session_actor(sam(), [1; 8]));
        doc::init_root(&mut doc, "contact", 1).unwrap();
        c.write_doc(&mut doc).unwrap();
        commit(&mut doc, at(0));
        (doc, c)
    }

    #[test]
    fn history_names_who_changed_which_fields_when_newest_first() {
        let (doc, mut c) = created();
        let mut doc = doc.with_actor(session_actor(kim(), [2; 8]));
        c.title = "Countess".into();
        c.address.city = "London".into();
        c.touch(at(60), kim());
        c.write_doc(&mut doc).unwrap();
        commit(&mut doc, at(60));
        c.consent.record(NewConsentEvent {
            id: EventId::from_bytes([1; 16]),
            purpose: PurposeId::MARKETING_EMAIL.parse().unwrap(),
            action: ConsentAction::Granted,
            recorded_at: at(120),
            lawful_basis: LawfulBasis::Consent,
            source: ConsentSource::Form,
            recorded_by: kim(),
            note: String::new(),
        });
        c.notes = "Likes engines".into();
        c.write_doc(&mut doc).unwrap();
        commit(&mut doc, at(120));

        let log = history(&mut doc);
        assert_eq!(log.len(), 3);
        assert_eq!((log[0].at, log[0].member, log[0].action), (at(120), Some(kim()), AuditAction::Edited));
        assert_eq!(log[0].fields, ["consent", "notes"], "nested edits count as their top-level field");
        assert_eq!(log[1].fields, ["address", "title"]);
        assert_eq!((log[2].at, log[2].member, log[2].action), (at(0), Some(sam()), AuditAction::Created));
        assert!(log[2].fields.contains(&"given_name".to_owned()));
        assert!(!log[2].fields.contains(&"updated_at".to_owned()), "bookkeeping is left out");
    }

    #[test]
    fn a_change_without_its_own_time_takes_the_updated_at_it_wrote() {
        let (mut doc, mut c) = created();
        c.title = "Countess".into();
        c.touch(at(30), sam());
        c.write_doc(&mut doc).unwrap();
        // Saved without commit(): Automerge's default time is 0.
        doc.commit();
        let log = history(&mut doc);
        assert_eq!(log[0].at, Timestamp::from_millis(at(30).as_millis()));
        assert_eq!(log[0].fields, ["title"]);
    }

    #[test]
    fn a_change_with_no_time_at_all_takes_the_time_of_what_it_depends_on() {
        let (mut doc, mut c) = created();
        c.title = "Countess".into();
        c.write_doc(&mut doc).unwrap();
        doc.commit();
        assert_eq!(history(&mut doc)[0].at, at(0));
    }

    #[test]
    fn a_rewritten_document_starts_its_history_at_the_new_epoch() {
        let (mut doc, _) = created();
        let mut fresh = epoch::rewrite_without_history(&mut doc, session_actor(kim(), [3; 8]), at(90)).unwrap();
        let log = history(&mut fresh);
        assert_eq!(log.len(), 1);
        assert_eq!((log[0].action, log[0].member, log[0].at), (AuditAction::NewEpoch(1), Some(kim()), at(90)));
    }

    #[test]
    fn the_workspace_log_merges_records_and_erasures_newest_first_and_filters_by_member() {
        let (mut doc, c) = created();
        let tombstones: Tombstones = [Tombstone {
            record: RecordId::from_bytes([7; 16]),
            kind: RecordKind::Contact,
            erased_at: at(500),
            erased_by: kim(),
        }]
        .into_iter()
        .collect();
        let log = workspace_log(
            [RecordHistory {
                record: c.id,
                kind: RecordKind::Contact,
                title: c.display_name(),
                entries: history(&mut doc),
            }],
            &tombstones,
        );
        assert_eq!(log.len(), 2);
        assert_eq!((log[0].entry.action, log[0].title.as_str()), (AuditAction::Erased, ""));
        assert_eq!(log[1].title, "Ada");
        assert_eq!(by_member(&log, sam()).len(), 1);
    }

    #[test]
    fn the_csv_export_has_member_names_readable_fields_and_defused_formulas() {
        let ws = Workspace::new(RecordId::from_bytes([9; 16]), "Acme", sam(), "Sam, \"the admin\"", at(0));
        let entry = RecordAuditEntry {
            record: RecordId::from_bytes([5; 16]),
            kind: RecordKind::Contact,
            title: "=HYPERLINK(\"x\")".into(),
            entry: AuditEntry {
                at: at(0),
                member: Some(sam()),
                action: AuditAction::Edited,
                fields: vec!["given_name".into(), "restricted".into(), "restricted_at".into()],
                change: "ab".into(),
            },
        };
        let csv = to_csv(&[entry], &ws);
        let lines: Vec<&str> = csv.split("\r\n").collect();
        assert_eq!(lines[0], "when,member,member_id,action,record_kind,record_id,record,fields,change");
        assert!(lines[1].starts_with("2023-11-14T22:13:20Z,\"Sam, \"\"the admin\"\"\","), "{}", lines[1]);
        assert!(lines[1].contains(",\"'=HYPERLINK(\"\"x\"\")\","), "{}", lines[1]);
        assert!(lines[1].contains(",Given name; Restriction,"), "{}", lines[1]);
    }
}

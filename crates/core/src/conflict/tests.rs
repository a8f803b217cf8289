use proptest::prelude::*;

use super::*;
use crate::contact::{Contact, Labeled};
use crate::ids::{EntryId, RecordId};
use crate::record::Record;
use crate::sales::activity::{Activity, ActivityKind};
use crate::sales::company::Company;
use crate::sales::deal::Deal;
use crate::sales::task::{Priority, Task};
use crate::validate::CustomFieldKind;
use crate::workspace::{CustomFieldDef, Member};

fn me() -> MemberId {
    MemberId::from_bytes([1; 16])
}

fn kim() -> MemberId {
    MemberId::from_bytes([3; 16])
}

fn ws() -> Workspace {
    let mut ws = Workspace::new(RecordId::from_bytes([9; 16]), "Acme", me(), "Sam", Timestamp::from_millis(0));
    ws.members.insert(kim(), Member { name: "Kim".into() });
    ws.custom_fields.insert(
        "tier".into(),
        CustomFieldDef { label: "Tier".into(), kind: CustomFieldKind::Text, applies_to: RecordKind::Contact },
    );
    ws
}

fn ada() -> Contact {
    let mut c = Contact::new(RecordId::from_bytes([2; 16]), Timestamp::from_millis(10), me());
    c.given_name = "Ada".into();
    c.phones.push(Labeled { id: EntryId::from_bytes([4; 16]), label: "mobile".into(), value: "+442079460958".into() });
    c.address.city = "London".into();
    c.custom.insert("tier".into(), "Gold".into());
    c.notes = "Met at the exhibition.".into();
    c
}

fn actor(n: u8) -> automerge::ActorId {
    automerge::ActorId::from(vec![n; 16])
}

fn doc_of<R: Record>(r: &R) -> AutoCommit {
    let mut doc = AutoCommit::new().with_actor(actor(1));
    doc::init_root(&mut doc, R::KIND.as_str(), R::SCHEMA).unwrap();
    r.write_doc(&mut doc).unwrap();
    doc.commit();
    doc
}

/// Two replicas edit `record` concurrently, then merge.
fn concurrently<R: Record + Clone>(record: &R, here: impl FnOnce(&mut R), there: impl FnOnce(&mut R)) -> AutoCommit {
    let mut a = doc_of(record);
    let mut b = a.fork().with_actor(actor(2));
    let (mut ra, mut rb) = (record.clone(), record.clone());
    here(&mut ra);
    there(&mut rb);
    ra.write_doc(&mut a).unwrap();
    rb.write_doc(&mut b).unwrap();
    a.merge(&mut b).unwrap();
    a
}

fn labels(found: &[FieldConflict]) -> Vec<&str> {
    found.iter().map(|c| c.label.as_str()).collect()
}

#[test]
fn concurrent_phone_address_owner_and_custom_edits_are_conflicts_by_their_names() {
    let doc = concurrently(
        &ada(),
        |c| {
            c.phones[0].value = "+442079460000".into();
            c.phones[0].label = "work".into();
            c.address.city = "Bergen".into();
            c.owner = Some(kim());
            c.custom.insert("tier".into(), "Silver".into());
            c.tags.insert("vip".into());
            c.notes = "Met at the exhibition. Called back.".into();
        },
        |c| {
            c.phones[0].value = "+442079461111".into();
            c.phones[0].label = "home".into();
            c.address.city = "Oslo".into();
            c.owner = None;
            c.custom.insert("tier".into(), "Bronze".into());
            c.tags.insert("math".into());
            c.notes = "Met at the exhibition, with Babbage.".into();
        },
    );
    let found = conflicts(&doc, &ws());
    assert_eq!(labels(&found), ["Phone 1", "Phone 1 label", "City", "Tier"]);
    assert_eq!(found[2].path, ["address", "city"]);
    let mut cities: Vec<&str> = found[2].values.iter().map(|v| v.shown.as_str()).collect();
    cities.sort_unstable();
    assert_eq!(cities, ["Bergen", "Oslo"]);
    // Tags merged, notes interleaved: neither is a conflict.
    let merged = Contact::from_doc(&doc).unwrap();
    assert_eq!(merged.tags.len(), 2);
    assert!(merged.notes.contains("Called back") && merged.notes.contains("Babbage"), "{}", merged.notes);
}

#[test]
fn an_owner_set_on_both_sides_is_shown_by_member_name() {
    let doc = concurrently(&ada(), |c| c.owner = Some(kim()), |c| c.owner = Some(MemberId::from_bytes([7; 16])));
    let found = conflicts(&doc, &ws());
    assert_eq!(labels(&found), ["Owner"]);
    assert!(found[0].values.iter().any(|v| v.shown == "Kim"));
}

#[test]
fn the_same_value_set_on_both_sides_is_not_a_conflict() {
    let doc = concurrently(&ada(), |c| c.title = "Countess".into(), |c| c.title = "Countess".into());
    assert!(conflicts(&doc, &ws()).is_empty());
}

#[test]
fn companies_deals_tasks_and_activities_report_their_conflicts() {
    let now = Timestamp::from_millis(10);
    let mut company = Company::new(RecordId::from_bytes([5; 16]), now, me());
    company.name = "Northwind".into();
    let doc = concurrently(&company, |c| c.industry = "Retail".into(), |c| c.industry = "Logistics".into());
    assert_eq!(labels(&conflicts(&doc, &ws())), ["Industry"]);

    let deal = Deal::new(
        RecordId::from_bytes([6; 16]),
        "sales".into(),
        "lead".into(),
        EntryId::from_bytes([6; 16]),
        now,
        me(),
    );
    let doc = concurrently(&deal, |d| d.value = 100_000, |d| d.value = 200_000);
    let found = conflicts(&doc, &ws());
    assert_eq!(labels(&found), ["Value"]);
    let mut shown: Vec<&str> = found[0].values.iter().map(|v| v.shown.as_str()).collect();
    shown.sort_unstable();
    assert!(shown.iter().all(|s| s.contains("1,000") || s.contains("2,000")), "money is shown as money: {shown:?}");

    let mut task = Task::new(RecordId::from_bytes([7; 16]), now, me());
    task.title = "Call back".into();
    let doc = concurrently(&task, |t| t.assignee = Some(kim()), |t| t.title = "Call Ada back".into());
    assert!(conflicts(&doc, &ws()).is_empty(), "different fields merge");
    let doc = concurrently(&task, |t| t.priority = Priority::High, |t| t.priority = Priority::Low);
    assert_eq!(labels(&conflicts(&doc, &ws())), ["Priority"]);

    let activity = Activity::new(RecordId::from_bytes([8; 16]), ActivityKind::Call, now, now, me());
    let doc = concurrently(&activity, |a| a.subject = "Intro".into(), |a| a.subject = "Pricing".into());
    assert_eq!(labels(&conflicts(&doc, &ws())), ["Subject"]);
}

#[test]
fn picking_a_value_resolves_the_conflict_with_that_value() {
    let mut doc = concurrently(&ada(), |c| c.phones[0].label = "work".into(), |c| c.phones[0].label = "home".into());
    let found = conflicts(&doc, &ws());
    let loser = found[0].values[1].clone();
    pick(&mut doc, &found[0].path, &loser, Timestamp::from_millis(99), kim()).unwrap();
    assert!(conflicts(&doc, &ws()).is_empty());
    let c = Contact::from_doc(&doc).unwrap();
    assert_eq!(c.phones[0].label, loser.shown);
    assert_eq!((c.updated_by, c.updated_at), (kim(), Timestamp::from_millis(99)));
    assert_eq!(
        pick(&mut doc, &["phones".into(), "gone".into(), "label".into()], &loser, Timestamp::from_millis(1), kim()),
        Err(PickError::Gone)
    );
}

#[test]
fn changed_since_names_the_fields_changed_after_a_version() {
    let mut doc = doc_of(&ada());
    let base = doc.get_heads();
    let mut c = Contact::from_doc(&doc).unwrap();
    c.address.city = "Bergen".into();
    c.tags.insert("vip".into());
    c.phones.push(Labeled { id: EntryId::from_bytes([5; 16]), label: "work".into(), value: "+4712345678".into() });
    c.updated_at = Timestamp::from_millis(50);
    c.write_doc(&mut doc).unwrap();
    assert_eq!(changed_since(&mut doc, &base, &ws()), ["Phone 2", "Phone 2 label", "City", "Tags"]);
    let now = doc.get_heads();
    assert!(changed_since(&mut doc, &now, &ws()).is_empty(), "nothing since now");
}

/// The scalar fields a property test edits, each with how to set it.
type Setter = fn(&mut Contact, &str);

const SETTERS: [(&str, Setter); 8] = [
    ("Given name", |c, v| c.given_name = v.into()),
    ("Job title", |c, v| c.title = v.into()),
    ("Phone 1", |c, v| c.phones[0].value = v.into()),
    ("Phone 1 label", |c, v| c.phones[0].label = v.into()),
    ("Street", |c, v| c.address.street = v.into()),
    ("City", |c, v| c.address.city = v.into()),
    ("Country", |c, v| c.address.country = v.into()),
    ("Tier", |c, v| {
        c.custom.insert("tier".into(), v.into());
    }),
];

proptest! {
    /// Whatever scalar fields two replicas set concurrently, each to a
    /// value of its own, exactly those fields are reported, once each.
    #[test]
    fn exactly_the_fields_set_on_both_sides_are_reported(
        here in proptest::collection::btree_set(0..SETTERS.len(), 0..SETTERS.len()),
        there in proptest::collection::btree_set(0..SETTERS.len(), 0..SETTERS.len()),
    ) {
        let doc = concurrently(
            &ada(),
            |c| here.iter().for_each(|&i| (SETTERS[i].1)(c, "here")),
            |c| there.iter().for_each(|&i| (SETTERS[i].1)(c, "there")),
        );
        let found = conflicts(&doc, &ws());
        let mut expected: Vec<&str> = here.intersection(&there).map(|&i| SETTERS[i].0).collect();
        expected.sort_unstable();
        let mut got = labels(&found);
        got.sort_unstable();
        prop_assert_eq!(got, expected);
        for c in &found {
            prop_assert_eq!(c.values.len(), 2);
        }
    }
}

use super::*;
use crate::consent::{ConsentAction, ConsentSource, ConsentStatus, LawfulBasis, NewConsentEvent, PurposeId};
use crate::ids::EventId;
use crate::validate::CustomFieldKind;
use crate::workspace::CustomFieldDef;

fn me() -> MemberId {
    MemberId::from_bytes([1; 16])
}

fn ws() -> Workspace {
    Workspace::new(RecordId::from_bytes([9; 16]), "Acme", me(), "Sam", Timestamp::from_millis(0))
}

fn entry_ids() -> impl FnMut() -> EntryId {
    let mut n = 0u8;
    move || {
        n += 1;
        EntryId::from_bytes([n; 16])
    }
}

fn ada() -> Contact {
    let mut c = Contact::new(RecordId::from_bytes([2; 16]), Timestamp::from_millis(10), me());
    let form = ContactForm {
        given_name: "Ada".into(),
        family_name: "Lovelace".into(),
        emails: vec![EntryForm { value: "ada@example.org".into(), label: "work".into(), primary: true, id: None }],
        phones: vec![EntryForm { value: "020 7946 0958".into(), label: "mobile".into(), primary: true, id: None }],
        company_name: "Analytical Engines".into(),
        tags: "vip, math".into(),
        notes: "Met at the exhibition.".into(),
        ..Default::default()
    };
    form.apply(&mut c, &ws(), &mut entry_ids()).unwrap();
    c
}

fn doc_of(c: &Contact) -> AutoCommit {
    let mut doc = AutoCommit::new();
    doc::init_root(&mut doc, "contact", 1).unwrap();
    c.write_doc(&mut doc).unwrap();
    doc
}

#[test]
fn a_contact_round_trips_through_its_document() {
    let mut c = ada();
    c.consent.record(NewConsentEvent {
        id: EventId::from_bytes([5; 16]),
        purpose: PurposeId::MARKETING_EMAIL.parse().unwrap(),
        action: ConsentAction::Granted,
        recorded_at: Timestamp::from_millis(11),
        lawful_basis: LawfulBasis::Consent,
        source: ConsentSource::Form,
        recorded_by: me(),
        note: String::new(),
    });
    c.custom.insert("tier".into(), "Gold".into());
    c.address.city = "London".into();
    let doc = doc_of(&c);
    assert_eq!(Contact::from_doc(&doc).unwrap(), c);
}

#[test]
fn the_form_normalises_phone_and_email_and_splits_tags() {
    let c = ada();
    assert_eq!(c.phone(), Some("+442079460958"));
    assert_eq!(c.email(), Some("ada@example.org"));
    assert_eq!(c.tags.iter().cloned().collect::<Vec<_>>(), ["math", "vip"]);
    assert_eq!(c.row().title, "Ada Lovelace");
    assert_eq!(c.row().column("company"), "Analytical Engines");
}

#[test]
fn invalid_fields_are_all_reported_and_the_contact_is_left_unchanged() {
    let mut c = ada();
    let before = c.clone();
    let mut form = ContactForm::from_contact(&c);
    form.given_name = " ".into();
    form.family_name = String::new();
    form.emails[0].value = "not an email".into();
    form.phones.push(EntryForm { value: "call me".into(), ..Default::default() });
    let errors = form.apply(&mut c, &ws(), &mut entry_ids()).unwrap_err();
    assert_eq!(errors.get("given_name"), Some(&FieldError::Required));
    assert_eq!(errors.get("emails.0"), Some(&FieldError::InvalidEmail));
    assert!(matches!(errors.get("phones.1"), Some(FieldError::InvalidPhone(_))));
    assert_eq!(c, before);
}

#[test]
fn custom_fields_are_validated_by_their_kind() {
    let mut w = ws();
    w.custom_fields.insert(
        "renewal".into(),
        CustomFieldDef { label: "Renewal".into(), kind: CustomFieldKind::Date, applies_to: RecordKind::Contact },
    );
    let mut c = ada();
    let mut form = ContactForm::from_contact(&c);
    form.custom.insert("renewal".into(), "next tuesday".into());
    let errors = form.apply(&mut c, &w, &mut entry_ids()).unwrap_err();
    assert_eq!(errors.get("custom.renewal"), Some(&FieldError::InvalidDate));
    form.custom.insert("renewal".into(), "2027-01-31".into());
    form.apply(&mut c, &w, &mut entry_ids()).unwrap();
    assert_eq!(c.custom.get("renewal").map(String::as_str), Some("2027-01-31"));
}

#[test]
fn concurrent_edits_of_different_fields_both_survive() {
    let c = ada();
    let mut a = doc_of(&c);
    let mut b = a.fork();
    let mut ca = c.clone();
    ca.title = "Countess".into();
    ca.write_doc(&mut a).unwrap();
    let mut cb = c.clone();
    cb.company_name = "Babbage & Co".into();
    cb.tags.insert("engines".into());
    cb.write_doc(&mut b).unwrap();
    a.merge(&mut b).unwrap();
    let merged = Contact::from_doc(&a).unwrap();
    assert_eq!(merged.title, "Countess");
    assert_eq!(merged.company_name, "Babbage & Co");
    assert!(merged.tags.contains("engines") && merged.tags.contains("vip"));
    assert!(crate::conflict::conflicts(&a, &ws()).is_empty());
}

#[test]
fn concurrent_edits_of_one_field_converge_and_show_the_beaten_value() {
    let c = ada();
    let mut a = doc_of(&c);
    let mut b = a.fork();
    let mut ca = c.clone();
    ca.title = "Countess".into();
    ca.write_doc(&mut a).unwrap();
    let mut cb = c.clone();
    cb.title = "Mathematician".into();
    cb.write_doc(&mut b).unwrap();
    let mut a2 = a.fork();
    a.merge(&mut b).unwrap();
    b.merge(&mut a2).unwrap();
    let (ma, mb) = (Contact::from_doc(&a).unwrap(), Contact::from_doc(&b).unwrap());
    assert_eq!(ma.title, mb.title, "replicas converge whatever the merge order");
    let conflict = crate::conflict::conflicts(&a, &ws());
    assert_eq!(conflict.len(), 1);
    assert_eq!(conflict[0].path, ["title"]);
    assert_eq!(conflict[0].values[0].shown, ma.title, "the winner is listed first");
    assert_eq!(conflict[0].values.len(), 2);

    // Picking a value resolves the conflict on the next write.
    let mut picked = ma.clone();
    picked.title = conflict[0].values[1].shown.clone();
    picked.write_doc(&mut a).unwrap();
    assert!(crate::conflict::conflicts(&a, &ws()).is_empty());
    assert_eq!(Contact::from_doc(&a).unwrap().title, conflict[0].values[1].shown);
}

#[test]
fn concurrent_note_edits_interleave_instead_of_overwriting() {
    let c = ada();
    let mut a = doc_of(&c);
    let mut b = a.fork();
    let mut ca = c.clone();
    ca.notes = "Intro: Met at the exhibition.".into();
    ca.write_doc(&mut a).unwrap();
    let mut cb = c.clone();
    cb.notes = "Met at the exhibition. Follow up in May.".into();
    cb.write_doc(&mut b).unwrap();
    a.merge(&mut b).unwrap();
    assert_eq!(Contact::from_doc(&a).unwrap().notes, "Intro: Met at the exhibition. Follow up in May.");
}

#[test]
fn consent_recorded_on_two_replicas_merges_with_withdrawal_winning() {
    let c = ada();
    let mut a = doc_of(&c);
    let mut b = a.fork();
    let purpose: PurposeId = PurposeId::MARKETING_EMAIL.parse().unwrap();
    let event = |n: u8, action, at| NewConsentEvent {
        id: EventId::from_bytes([n; 16]),
        purpose: purpose.clone(),
        action,
        recorded_at: Timestamp::from_millis(at),
        lawful_basis: LawfulBasis::Consent,
        source: ConsentSource::Call,
        recorded_by: me(),
        note: String::new(),
    };
    let mut ca = c.clone();
    ca.consent.record(event(1, ConsentAction::Withdrawn, 100));
    ca.write_doc(&mut a).unwrap();
    let mut cb = c.clone();
    // Recorded later by a device whose clock runs ahead: clocks do not decide.
    cb.consent.record(event(2, ConsentAction::Granted, 999_999));
    cb.write_doc(&mut b).unwrap();
    a.merge(&mut b).unwrap();
    let merged = Contact::from_doc(&a).unwrap();
    assert_eq!(merged.consent.status(&purpose), ConsentStatus::Withdrawn);
    assert_eq!(merged.consent.len(), 2);
}

#[test]
fn reading_a_document_of_another_kind_is_an_error_not_a_panic() {
    let mut doc = AutoCommit::new();
    doc::init_root(&mut doc, "deal", 1).unwrap();
    assert!(matches!(Contact::from_doc(&doc), Err(DecodeError::WrongKind { .. })));
    let mut doc = doc_of(&ada());
    doc.put(&ROOT, "emails", "oops").unwrap();
    assert!(matches!(Contact::from_doc(&doc), Err(DecodeError::WrongType { .. })));
}

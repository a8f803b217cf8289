//! Restriction of processing (GDPR article 18): a restricted contact is kept
//! but not processed. It is left out of campaign audiences, exports for a
//! purpose and bulk actions, and carries a visible badge.
//!
//! # Rules
//!
//! - [`Contact::may_process`] is the one check every feature that uses a
//!   contact's personal data for a purpose goes through. Processing needs all
//!   of: the contact is not restricted, not deleted, the purpose is defined in
//!   the workspace, and the purpose's lawful basis holds: for
//!   [`LawfulBasis::Consent`] the ledger status is granted; for legitimate
//!   interests or a public task the status is not withdrawn (a withdrawal
//!   recorded against such a purpose is the person's objection, article 21,
//!   and objection to direct marketing is absolute); contract, legal
//!   obligation and vital interests do not depend on the ledger.
//! - **Restriction wins between concurrent edits.** It is stored as the root
//!   fields `restricted` (boolean), `restricted_at` and `restricted_by`. When
//!   one replica restricts a contact while another lifts the restriction,
//!   the contact reads as restricted until someone lifts it again having seen
//!   both (the same "least permissive wins" as the consent ledger).
//! - Rows carry the flag in the [`ROW_COLUMN`] column, so lists show the
//!   badge and bulk actions skip the contact without loading documents
//!   ([`is_restricted_row`], [`bulk_selectable`]).
//!
//! Restriction does not remove data and does not stop sync: every replica
//! keeps the contact. It only constrains what the app does with it; an
//! export made before the restriction, or a copy outside Rapport, is not
//! affected.

use automerge::{AutoCommit, ReadDoc, ScalarValue, Value, ROOT};

use crate::consent::{ConsentStatus, LawfulBasis, PurposeId};
use crate::contact::Contact;
use crate::doc::{self, DecodeError, EncodeError};
use crate::ids::MemberId;
use crate::record::Row;
use crate::workspace::Workspace;
use crate::Timestamp;

/// The row column that marks a restricted contact (value `"restricted"`).
pub const ROW_COLUMN: &str = "restricted";

/// Since when, and by whom, a contact is restricted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Restriction {
    pub since: Timestamp,
    pub by: MemberId,
}

/// Why a contact may not be processed for a purpose.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the contact is restricted: it is kept but not processed")]
    Restricted,
    #[error("the contact is deleted")]
    Deleted,
    #[error("the purpose {0:?} is not defined in this workspace")]
    UnknownPurpose(PurposeId),
    #[error("consent for this purpose is not granted ({})", .0.label())]
    ConsentNotGranted(ConsentStatus),
    #[error("the contact objected to this purpose (consent withdrawn)")]
    Objected,
}

impl Contact {
    /// Whether processing is restricted.
    pub fn is_restricted(&self) -> bool {
        self.restriction.is_some()
    }

    /// Marks the contact restricted (keeps the first `since` when it already
    /// is).
    pub fn restrict(&mut self, now: Timestamp, by: MemberId) {
        if self.restriction.is_none() {
            self.restriction = Some(Restriction { since: now, by });
        }
        self.touch(now, by);
    }

    /// Lifts the restriction.
    pub fn lift_restriction(&mut self, now: Timestamp, by: MemberId) {
        self.restriction = None;
        self.touch(now, by);
    }

    /// Whether the contact's data may be used for `purpose`, and on which
    /// lawful basis (see the module doc).
    ///
    /// # Errors
    /// The [`Refusal`], in words for the UI.
    pub fn may_process(&self, purpose: &PurposeId, ws: &Workspace) -> Result<LawfulBasis, Refusal> {
        if self.is_restricted() {
            return Err(Refusal::Restricted);
        }
        if self.deleted {
            return Err(Refusal::Deleted);
        }
        let defined = ws.purposes.get(purpose).ok_or_else(|| Refusal::UnknownPurpose(purpose.clone()))?;
        let status = self.consent.status(purpose);
        match defined.lawful_basis {
            LawfulBasis::Consent if status.is_granted() => Ok(LawfulBasis::Consent),
            LawfulBasis::Consent => Err(Refusal::ConsentNotGranted(status)),
            LawfulBasis::LegitimateInterests | LawfulBasis::PublicTask if status == ConsentStatus::Withdrawn => {
                Err(Refusal::Objected)
            }
            basis => Ok(basis),
        }
    }
}

/// Whether a row is of a restricted contact (for the badge and filters).
pub fn is_restricted_row(row: &Row) -> bool {
    !row.column(ROW_COLUMN).is_empty()
}

/// The rows a bulk action may touch: restricted contacts are left out.
pub fn bulk_selectable<'a>(rows: impl IntoIterator<Item = &'a Row>) -> impl Iterator<Item = &'a Row> {
    rows.into_iter().filter(|r| !is_restricted_row(r))
}

/// Reads the restriction of a contact document; `created_by` stands in for
/// a missing `restricted_by` (written concurrently with a lift).
pub(crate) fn read(doc: &AutoCommit, created_by: MemberId) -> Result<Option<Restriction>, DecodeError> {
    let mut restricted = false;
    for (value, _) in doc.get_all(&ROOT, "restricted")? {
        match value {
            Value::Scalar(s) => match s.as_ref() {
                ScalarValue::Boolean(b) => restricted |= *b,
                ScalarValue::Null => {}
                _ => return Err(DecodeError::WrongType { field: "restricted".into(), expected: "boolean" }),
            },
            Value::Object(_) => return Err(DecodeError::WrongType { field: "restricted".into(), expected: "boolean" }),
        }
    }
    if !restricted {
        return Ok(None);
    }
    let since = Timestamp::from_millis(doc::get_i64(doc, &ROOT, "restricted_at")?.unwrap_or(0));
    let by = match doc::get_str(doc, &ROOT, "restricted_by")? {
        Some(s) => s.parse().map_err(|_| DecodeError::Invalid {
            field: "restricted_by".into(),
            reason: format!("{s:?} is not a member id"),
        })?,
        None => created_by,
    };
    Ok(Some(Restriction { since, by }))
}

/// Whether any of the concurrent values of `restricted` is `true`.
fn any_true(doc: &AutoCommit) -> Result<bool, EncodeError> {
    Ok(doc
        .get_all(&ROOT, "restricted")?
        .iter()
        .any(|(value, _)| matches!(value, Value::Scalar(s) if matches!(s.as_ref(), ScalarValue::Boolean(true)))))
}

/// Writes the restriction fields, touching only what changed (an old
/// document that never had a restriction gets no new keys).
pub(crate) fn write(doc: &mut AutoCommit, restriction: Option<&Restriction>) -> Result<(), EncodeError> {
    match restriction {
        Some(r) => {
            // Already restricted (by one or several concurrent restrictions):
            // leave the flag alone. Writing it again would collapse the
            // concurrent values into one of them (Automerge keeps an equal
            // value instead of adding an operation), and a lift made
            // elsewhere that saw only that one would then remove this
            // replica's restriction too.
            if !any_true(doc)? {
                doc::put_bool(doc, &ROOT, "restricted", true)?;
            }
            doc::put_i64(doc, &ROOT, "restricted_at", Some(r.since.as_millis()))?;
            doc::put_str(doc, &ROOT, "restricted_by", Some(&r.by.to_string()))?;
        }
        None => {
            if doc.get(&ROOT, "restricted")?.is_some() {
                doc::put_bool(doc, &ROOT, "restricted", false)?;
            }
            doc::put_i64(doc, &ROOT, "restricted_at", None)?;
            doc::put_str(doc, &ROOT, "restricted_by", None)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consent::{ConsentAction, ConsentSource, NewConsentEvent};
    use crate::ids::{EventId, RecordId};
    use crate::record::Record;
    use crate::workspace::Purpose;

    fn me() -> MemberId {
        MemberId::from_bytes([1; 16])
    }

    fn ws() -> Workspace {
        let mut ws = Workspace::new(RecordId::from_bytes([9; 16]), "Acme", me(), "Sam", Timestamp::from_millis(0));
        ws.purposes.insert(
            "support".parse().unwrap(),
            Purpose {
                name: "Support".into(),
                description: String::new(),
                lawful_basis: LawfulBasis::LegitimateInterests,
            },
        );
        ws
    }

    fn email() -> PurposeId {
        PurposeId::MARKETING_EMAIL.parse().unwrap()
    }

    fn support() -> PurposeId {
        "support".parse().unwrap()
    }

    fn consent(c: &mut Contact, n: u8, purpose: PurposeId, action: ConsentAction) {
        c.consent.record(NewConsentEvent {
            id: EventId::from_bytes([n; 16]),
            purpose,
            action,
            recorded_at: Timestamp::from_millis(i64::from(n)),
            lawful_basis: LawfulBasis::Consent,
            source: ConsentSource::Form,
            recorded_by: me(),
            note: String::new(),
        });
    }

    fn contact() -> Contact {
        let mut c = Contact::new(RecordId::from_bytes([2; 16]), Timestamp::from_millis(1), me());
        c.given_name = "Ada".into();
        c
    }

    fn doc_of(c: &Contact) -> AutoCommit {
        let mut doc = AutoCommit::new();
        doc::init_root(&mut doc, "contact", 1).unwrap();
        c.write_doc(&mut doc).unwrap();
        doc
    }

    #[test]
    fn consent_purposes_need_a_grant_and_legitimate_interests_need_no_objection() {
        let mut c = contact();
        assert_eq!(c.may_process(&email(), &ws()), Err(Refusal::ConsentNotGranted(ConsentStatus::NeverAsked)));
        consent(&mut c, 1, email(), ConsentAction::Granted);
        assert_eq!(c.may_process(&email(), &ws()), Ok(LawfulBasis::Consent));
        assert_eq!(c.may_process(&support(), &ws()), Ok(LawfulBasis::LegitimateInterests));
        consent(&mut c, 2, support(), ConsentAction::Withdrawn);
        assert_eq!(c.may_process(&support(), &ws()), Err(Refusal::Objected));
        let mut contract = ws();
        contract.purposes.get_mut(&support()).unwrap().lawful_basis = LawfulBasis::Contract;
        assert_eq!(
            c.may_process(&support(), &contract),
            Ok(LawfulBasis::Contract),
            "a contract does not hinge on consent"
        );
        let unknown: PurposeId = "surveys".parse().unwrap();
        assert_eq!(c.may_process(&unknown, &ws()), Err(Refusal::UnknownPurpose(unknown.clone())));
    }

    #[test]
    fn a_restricted_contact_is_not_processed_even_with_consent() {
        let mut c = contact();
        consent(&mut c, 1, email(), ConsentAction::Granted);
        c.restrict(Timestamp::from_millis(5), me());
        assert_eq!(c.may_process(&email(), &ws()), Err(Refusal::Restricted));
        assert!(Refusal::Restricted.to_string().contains("kept but not processed"));
        c.lift_restriction(Timestamp::from_millis(6), me());
        assert_eq!(c.may_process(&email(), &ws()), Ok(LawfulBasis::Consent));
    }

    #[test]
    fn a_deleted_contact_is_not_processed() {
        let mut c = contact();
        consent(&mut c, 1, email(), ConsentAction::Granted);
        c.deleted = true;
        assert_eq!(c.may_process(&email(), &ws()), Err(Refusal::Deleted));
    }

    #[test]
    fn a_restriction_round_trips_and_marks_the_row() {
        let mut c = contact();
        c.restrict(Timestamp::from_millis(5), MemberId::from_bytes([3; 16]));
        let doc = doc_of(&c);
        let back = Contact::from_doc(&doc).unwrap();
        assert_eq!(
            back.restriction,
            Some(Restriction { since: Timestamp::from_millis(5), by: MemberId::from_bytes([3; 16]) })
        );
        assert_eq!(back, c);
        assert!(is_restricted_row(&c.row()));
        assert!(!is_restricted_row(&contact().row()));
    }

    #[test]
    fn an_old_document_reads_as_unrestricted_and_saving_it_adds_no_restriction_keys() {
        let c = contact();
        let mut doc = doc_of(&c);
        assert_eq!(Contact::from_doc(&doc).unwrap().restriction, None);
        let heads = doc.get_heads();
        c.write_doc(&mut doc).unwrap();
        assert_eq!(doc.get_heads(), heads);
        assert!(doc.get(&ROOT, "restricted").unwrap().is_none());
    }

    #[test]
    fn lifting_a_restriction_round_trips_as_unrestricted() {
        let mut c = contact();
        c.restrict(Timestamp::from_millis(5), me());
        let mut doc = doc_of(&c);
        c.lift_restriction(Timestamp::from_millis(6), me());
        c.write_doc(&mut doc).unwrap();
        assert_eq!(Contact::from_doc(&doc).unwrap(), c);
        assert!(doc.get(&ROOT, "restricted_at").unwrap().is_none());
    }

    #[test]
    fn a_restriction_concurrent_with_lifting_it_keeps_the_contact_restricted() {
        let mut c = contact();
        c.restrict(Timestamp::from_millis(5), me());
        let mut a = doc_of(&c);
        let mut b = a.fork();
        // A lifts; B restricts again (a second member, concurrently).
        let mut ca = Contact::from_doc(&a).unwrap();
        ca.lift_restriction(Timestamp::from_millis(6), me());
        ca.write_doc(&mut a).unwrap();
        let mut cb = Contact::from_doc(&b).unwrap();
        cb.restriction = None;
        cb.write_doc(&mut b).unwrap();
        cb.restrict(Timestamp::from_millis(7), MemberId::from_bytes([4; 16]));
        cb.write_doc(&mut b).unwrap();
        a.merge(&mut b).unwrap();
        b.merge(&mut a).unwrap();
        assert!(Contact::from_doc(&a).unwrap().is_restricted());
        assert!(Contact::from_doc(&b).unwrap().is_restricted());
    }

    #[test]
    fn an_edit_where_two_restrictions_met_keeps_both_against_a_lift_that_saw_one() {
        // A and B restrict concurrently; B sees both and saves an edit; A,
        // having seen only its own, lifts it. B's restriction must hold.
        let base = doc_of(&contact());
        let mut a = base.clone().with_actor(automerge::ActorId::from([1u8; 16].as_slice()));
        let mut b = base.clone().with_actor(automerge::ActorId::from([2u8; 16].as_slice()));
        // A edited more before restricting, so its restriction is the one
        // Automerge shows first when both meet (the higher counter).
        for title in ["One", "Two", "Three"] {
            let mut c = Contact::from_doc(&a).unwrap();
            c.title = title.into();
            c.write_doc(&mut a).unwrap();
        }
        for (doc, n) in [(&mut a, 5), (&mut b, 6)] {
            let mut c = Contact::from_doc(doc).unwrap();
            c.restrict(Timestamp::from_millis(n), me());
            c.write_doc(doc).unwrap();
        }
        let mut a_only = a.fork();
        b.merge(&mut a).unwrap();
        let mut cb = Contact::from_doc(&b).unwrap();
        cb.title = "Buyer".into();
        cb.write_doc(&mut b).unwrap();
        let mut ca = Contact::from_doc(&a_only).unwrap();
        ca.lift_restriction(Timestamp::from_millis(7), me());
        ca.write_doc(&mut a_only).unwrap();
        b.merge(&mut a_only).unwrap();
        assert!(Contact::from_doc(&b).unwrap().is_restricted());
    }

    #[test]
    fn bulk_actions_skip_restricted_rows() {
        let mut restricted = contact();
        restricted.restrict(Timestamp::from_millis(5), me());
        let mut free = contact();
        free.id = RecordId::from_bytes([3; 16]);
        let rows = [restricted.row(), free.row()];
        let ids: Vec<RecordId> = bulk_selectable(&rows).map(|r| r.id).collect();
        assert_eq!(ids, [free.id]);
    }
}

//! Replaying privacy actions onto a newer epoch, so that no consent
//! withdrawal and no restriction is lost to a rewrite.
//!
//! When a replica adopts a newer epoch of a contact (another device
//! anonymised it), its own document of the old epoch is replaced: every
//! change the rewriting device had not seen goes with it. [`replay`] first
//! finds, in the document being replaced, the privacy actions the rewriting
//! device had not seen, and writes them onto the new epoch as a change of
//! this replica, which sync then pushes like any edit:
//!
//! - **Consent events** the rewrite had not seen are written as they were
//!   recorded (their `seen` lists keep their causal place; the note goes
//!   when the new document is an anonymised contact). The anonymised ledger
//!   keeps each head naming everything it dominates
//!   ([`crate::privacy::retention::anonymise`]), so the consent rule holds
//!   across the rewrite: the latest event in causal order wins, and between
//!   concurrent events the least permissive wins. An event already in the
//!   new ledger is written again only to add `seen` names it lacks (two
//!   rewrites of the same epoch kept the same head, having seen different
//!   events); one the new ledger names as dominated is left out.
//! - **A restriction** set on the old epoch by a change the rewrite had not
//!   seen is written again on the new epoch (even when it reads as
//!   restricted: a lift made there without seeing it is concurrent with it,
//!   and restriction wins between concurrent edits). A lift the rewrite had not seen is
//!   replayed only when this replica had seen everything the rewrite had
//!   and the new epoch's restriction comes from the rewrite alone;
//!   otherwise the contact stays restricted until lifted again (least
//!   permissive wins).
//!
//! Which changes the rewrite had seen: those listed under
//! [`SEEN_KEY`](super::SEEN_KEY); for a rewrite made before that key
//! existed, the ancestors of its base heads ([`BASE_KEY`](super::BASE_KEY))
//! this replica holds (a replica missing some of them replays more, never
//! less). Two rewrites of the same epoch: the losing one's own values count
//! as seen when it had seen nothing the winner had not.
//!
//! Only contacts carry consent and restriction; other records replay
//! nothing.

use std::collections::{BTreeMap, BTreeSet};

use automerge::transaction::Transactable;
use automerge::{AutoCommit, ChangeHash, ObjId, ReadDoc, ScalarValue, Value, ROOT};

use super::{seen_by_rewrite, seen_prefix, BASE_KEY, SEEN_PREFIX};
use crate::consent::{self, ConsentEvent};
use crate::doc::{self, DecodeError, EncodeError};
use crate::ids::EventId;

/// What [`replay`] wrote onto the new epoch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Replayed {
    /// Consent events written (new to the ledger, or a copy naming more
    /// dominated events).
    pub consent_events: Vec<EventId>,
    /// The restriction set (`Some(true)`) or lifted (`Some(false)`).
    pub restriction: Option<bool>,
}

impl Replayed {
    /// Whether nothing was written.
    pub fn is_empty(&self) -> bool {
        self.consent_events.is_empty() && self.restriction.is_none()
    }
}

/// Why the privacy actions of a replaced document could not be replayed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplayError {
    #[error("the consent or restriction of the local copy could not be read: {0}")]
    Decode(#[from] DecodeError),
    #[error("the consent or restriction could not be written onto the new version: {0}")]
    Encode(#[from] EncodeError),
}

/// One change of a document: who wrote it, which operations, its hash.
struct ChangeSpan {
    actor: automerge::ActorId,
    ops: std::ops::Range<u64>,
    hash: ChangeHash,
    root: bool,
}

fn spans(doc: &mut AutoCommit) -> Vec<ChangeSpan> {
    doc.get_changes(&[])
        .iter()
        .map(|c| {
            let start = c.start_op().get();
            ChangeSpan {
                actor: c.actor_id().clone(),
                ops: start..start + c.len() as u64,
                hash: c.hash(),
                root: c.deps().is_empty(),
            }
        })
        .collect()
}

/// The change that holds operation `op` (an object or value id).
fn change_of<'a>(spans: &'a [ChangeSpan], op: &ObjId) -> Option<&'a ChangeSpan> {
    match op {
        ObjId::Root => None,
        ObjId::Id(counter, actor, _) => spans.iter().find(|s| &s.actor == actor && s.ops.contains(counter)),
    }
}

/// Which changes of the replaced document the rewrite had seen.
struct Knowledge {
    /// Hash prefixes of what the rewrite had seen ([`SEEN_KEY`](super::SEEN_KEY)),
    /// or for an older rewrite the hashes of its base's ancestors held here.
    seen: BTreeSet<[u8; SEEN_PREFIX]>,
    /// Whether this replica holds everything the rewrite had seen.
    holds_all: bool,
}

impl Knowledge {
    fn of(new: &AutoCommit, old: &mut AutoCommit, old_spans: &[ChangeSpan]) -> Result<Self, ReplayError> {
        let held: BTreeSet<[u8; SEEN_PREFIX]> = old_spans.iter().map(|s| seen_prefix(&s.hash)).collect();
        if let Some(mut seen) = seen_by_rewrite(new)? {
            let old_seen = seen_by_rewrite(old)?.unwrap_or_default();
            let holds_all = seen.iter().all(|p| held.contains(p) || old_seen.contains(p));
            // A competing rewrite (same epoch) that had seen nothing more
            // than this one: its own values add nothing.
            if !old_seen.is_empty() && old_seen.is_subset(&seen) {
                seen.extend(old_spans.iter().filter(|s| s.root).map(|s| seen_prefix(&s.hash)));
            }
            return Ok(Self { seen, holds_all });
        }
        let base: Vec<ChangeHash> =
            doc::get_str_list(new, &ROOT, BASE_KEY)?.iter().filter_map(|h| h.parse::<ChangeHash>().ok()).collect();
        let known: Vec<ChangeHash> = base.iter().copied().filter(|h| old.get_change_by_hash(h).is_some()).collect();
        let after: BTreeSet<ChangeHash> = old.get_changes(&known).iter().map(|c| c.hash()).collect();
        let seen = old_spans.iter().filter(|s| !after.contains(&s.hash)).map(|s| seen_prefix(&s.hash)).collect();
        Ok(Self { seen, holds_all: known.len() == base.len() && !base.is_empty() })
    }

    /// Whether the rewrite had seen the operation `op` of the replaced
    /// document (an operation not found counts as unseen: replay it).
    fn saw(&self, spans: &[ChangeSpan], op: &ObjId) -> bool {
        change_of(spans, op).is_some_and(|s| self.seen.contains(&seen_prefix(&s.hash)))
    }
}

fn is_contact(doc: &AutoCommit) -> bool {
    doc::get_str(doc, &ROOT, "kind").ok().flatten().as_deref() == Some("contact")
}

/// The `restricted` values of a document with the operations that wrote
/// them (several after concurrent edits).
fn restricted_ops(doc: &AutoCommit) -> Result<Vec<(bool, ObjId)>, DecodeError> {
    let mut out = Vec::new();
    for (value, op) in doc.get_all(&ROOT, "restricted")? {
        match value {
            Value::Scalar(s) => match s.as_ref() {
                ScalarValue::Boolean(b) => out.push((*b, op)),
                ScalarValue::Null => out.push((false, op)),
                _ => return Err(DecodeError::WrongType { field: "restricted".into(), expected: "boolean" }),
            },
            Value::Object(_) => return Err(DecodeError::WrongType { field: "restricted".into(), expected: "boolean" }),
        }
    }
    Ok(out)
}

/// Puts `value` at the root `key` as a new operation even when the value
/// is already there (Automerge skips such a put): deleting first leaves an
/// operation that meets a concurrent write as a conflict.
fn force_put(doc: &mut AutoCommit, key: &str, value: ScalarValue) -> Result<(), EncodeError> {
    if doc.get(&ROOT, key)?.is_some() {
        doc.delete(&ROOT, key)?;
    }
    doc.put(&ROOT, key, value)?;
    Ok(())
}

/// Writes onto `new`, the adopted document of a newer epoch, the privacy
/// actions of `old`, the local document it replaces, that the rewrite had
/// not seen (see the module doc). The writes are left uncommitted: the
/// caller commits them as one change of this replica and stores and pushes
/// it.
///
/// # Errors
/// [`ReplayError::Decode`] when the consent ledger or restriction of either
/// document cannot be read (nothing is written then);
/// [`ReplayError::Encode`] when writing fails (`new` may hold part of the
/// writes: discard it).
pub fn replay(old: &mut AutoCommit, new: &mut AutoCommit) -> Result<Replayed, ReplayError> {
    let mut out = Replayed::default();
    if !is_contact(old) || !is_contact(new) {
        return Ok(out);
    }
    let old_spans = spans(old);
    let knowledge = Knowledge::of(new, old, &old_spans)?;

    // Consent: every event with a copy written by a change the rewrite had
    // not seen.
    let mut events: Vec<ConsentEvent> = Vec::new();
    if let Some(old_map) = doc::get_map(old, &ROOT, "consent")? {
        let ledger = consent::read_ledger(old, &old_map)?;
        let mut unseen: BTreeSet<EventId> = BTreeSet::new();
        for key in old.keys(&old_map) {
            let copies = old.get_all(&old_map, key.as_str()).map_err(DecodeError::from)?;
            if copies.iter().any(|(_, op)| !knowledge.saw(&old_spans, op)) {
                unseen.extend(key.parse::<EventId>().ok());
            }
        }
        events = unseen.into_iter().filter_map(|id| ledger.get(id).cloned()).collect();
    }
    let restriction = {
        let old_ops = restricted_ops(old)?;
        let new_ops = restricted_ops(new)?;
        let new_restricted = new_ops.iter().any(|(b, _)| *b);
        let unseen_restriction = old_ops.iter().any(|(b, op)| *b && !knowledge.saw(&old_spans, op));
        let old_restricted = old_ops.iter().any(|(b, _)| *b);
        if unseen_restriction {
            // Written even when the new epoch reads as restricted: a lift
            // made on it without seeing this restriction must meet it as a
            // concurrent value, and restriction wins those.
            Some(true)
        } else if !old_restricted && new_restricted && knowledge.holds_all {
            // Lift only what the rewrite itself carried: a restriction
            // replayed by another replica since may be one this one never saw.
            let new_spans = spans(new);
            let from_rewrite =
                new_ops.iter().filter(|(b, _)| *b).all(|(_, op)| change_of(&new_spans, op).is_some_and(|s| s.root));
            // ...and only a lift this replica made or received unseen by the rewrite.
            let lifted_unseen = old_ops.iter().any(|(_, op)| !knowledge.saw(&old_spans, op));
            (from_rewrite && lifted_unseen).then_some(false)
        } else {
            None
        }
    };

    let mut written: BTreeMap<EventId, ConsentEvent> = BTreeMap::new();
    if !events.is_empty() {
        let new_ledger = match doc::get_map(new, &ROOT, "consent")? {
            Some(map) => consent::read_ledger(new, &map)?,
            None => consent::ConsentLedger::new(),
        };
        let named = new_ledger.named();
        let anonymised = doc::get_i64(new, &ROOT, "anonymised_at")?.is_some();
        for mut event in events {
            if anonymised {
                event.note = String::new();
            }
            match new_ledger.get(event.id) {
                Some(held) => {
                    let mut merged = consent::ConsentLedger::new();
                    merged.insert(held.clone());
                    merged.insert(event.clone());
                    if let Some(union) = merged.get(event.id).filter(|u| *u != held) {
                        written.insert(event.id, union.clone());
                    }
                }
                None if named.contains(&event.id) => {}
                None => {
                    written.insert(event.id, event);
                }
            }
        }
    }
    if !written.is_empty() {
        let map = doc::ensure_map(new, &ROOT, "consent")?;
        for event in written.values() {
            consent::put_event(new, &map, event)?;
        }
        out.consent_events = written.into_keys().collect();
    }
    match restriction {
        Some(true) => {
            force_put(new, "restricted", ScalarValue::Boolean(true))?;
            if let Some(at) = doc::get_i64(old, &ROOT, "restricted_at")? {
                force_put(new, "restricted_at", ScalarValue::Int(at))?;
            }
            if let Some(by) = doc::get_str(old, &ROOT, "restricted_by")? {
                force_put(new, "restricted_by", ScalarValue::Str(by.into()))?;
            }
        }
        Some(false) => {
            new.put(&ROOT, "restricted", false).map_err(EncodeError::from)?;
            doc::put_i64(new, &ROOT, "restricted_at", None)?;
            doc::put_str(new, &ROOT, "restricted_by", None)?;
        }
        None => {}
    }
    out.restriction = restriction;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use automerge::ActorId;

    use super::*;
    use crate::consent::{ConsentAction, ConsentSource, ConsentStatus, LawfulBasis, NewConsentEvent, PurposeId};
    use crate::contact::Contact;
    use crate::ids::{MemberId, RecordId};
    use crate::privacy::epoch::{rewrite_without_history, SEEN_KEY};
    use crate::record::Record;
    use crate::Timestamp;

    const NOW: Timestamp = Timestamp::from_millis(1_700_000_000_000);

    fn actor(n: u8) -> ActorId {
        crate::repo::session_actor(MemberId::from_bytes([1; 16]), [n; 8])
    }

    fn email() -> PurposeId {
        PurposeId::MARKETING_EMAIL.parse().unwrap()
    }

    fn record(doc: &mut AutoCommit, n: u8, action: ConsentAction) {
        let mut c = Contact::from_doc(doc).unwrap();
        c.consent.record(NewConsentEvent {
            id: EventId::from_bytes([n; 16]),
            purpose: email(),
            action,
            recorded_at: NOW,
            lawful_basis: LawfulBasis::Consent,
            source: ConsentSource::Call,
            recorded_by: MemberId::from_bytes([1; 16]),
            note: "said so".into(),
        });
        c.write_doc(doc).unwrap();
        doc.commit();
    }

    fn contact() -> AutoCommit {
        let c = Contact::new(RecordId::from_bytes([2; 16]), NOW, MemberId::from_bytes([1; 16]));
        let mut d = AutoCommit::new().with_actor(actor(1));
        doc::init_root(&mut d, "contact", 1).unwrap();
        c.write_doc(&mut d).unwrap();
        d.commit();
        d
    }

    #[test]
    fn a_rewrite_from_before_the_seen_list_falls_back_to_its_base() {
        let mut a = contact();
        record(&mut a, 1, ConsentAction::Withdrawn);
        record(&mut a, 2, ConsentAction::Granted);
        let mut b = a.fork().with_actor(actor(2));
        record(&mut b, 3, ConsentAction::Withdrawn);
        let mut fresh = rewrite_without_history(&mut a, actor(3), NOW).unwrap();
        fresh.delete(&ROOT, SEEN_KEY).unwrap();
        fresh.commit();
        let done = replay(&mut b, &mut fresh).unwrap();
        assert_eq!(done.consent_events, vec![EventId::from_bytes([3; 16])], "only what the rewrite had not seen");
        let c = Contact::from_doc(&fresh).unwrap();
        assert_eq!(c.consent.status(&email()), ConsentStatus::Withdrawn);
        assert_eq!(c.consent.get(EventId::from_bytes([3; 16])).unwrap().note, "said so", "not anonymised: kept");
    }

    #[test]
    fn nothing_is_replayed_when_the_rewrite_had_seen_everything_or_the_record_is_no_contact() {
        let mut a = contact();
        record(&mut a, 1, ConsentAction::Withdrawn);
        let mut b = a.fork().with_actor(actor(2));
        let mut fresh = rewrite_without_history(&mut a, actor(3), NOW).unwrap();
        assert!(replay(&mut b, &mut fresh).unwrap().is_empty());

        let mut other = AutoCommit::new();
        doc::init_root(&mut other, "deal", 1).unwrap();
        let mut rewritten = rewrite_without_history(&mut other, actor(4), NOW).unwrap();
        assert!(replay(&mut other, &mut rewritten).unwrap().is_empty());
    }
}

//! Epochs: rewriting a document from its current state without history, so
//! that a value removed by an edit (a scrubbed reference, an anonymised
//! name) is no longer in the document's bytes.
//!
//! An Automerge edit never forgets: after `put(name, "x")` the old name is
//! still in the change history, in `save()`'s bytes, in every replica's
//! copy and on the relay. [`rewrite_without_history`] builds a fresh
//! document holding the same current state (winning values only, so values
//! that lost a conflict go too) and nothing else, with the root field
//! [`KEY`] raised by one and [`BASE_KEY`] listing the heads it was built
//! from. It is the same record (same id), in a new *epoch*.
//! [`next_epoch_of`] does the same from a record struct (used by
//! anonymisation, whose append-only consent ledger could not shrink by an
//! edit).
//!
//! # Using a new epoch
//!
//! - Write it with a **new actor** (a fresh session suffix of the member,
//!   [`crate::repo::session_actor`]): the old epoch may hold changes of the
//!   current actor with the same sequence numbers.
//! - Store it with [`crate::repo::Repo::replace_epoch`]: one storage write
//!   ([`crate::storage::Append::replace`]) replaces the snapshot and every
//!   chunk, drops the record's outbox entries and, while sync is on, queues
//!   the new document as one [`crate::storage::OutboxKind::Snapshot`] entry.
//!   Sync sends it as `ReplaceWithSnapshot` covering everything pulled so
//!   far (its cursor), so the relay deletes the old envelopes; the bytes
//!   sent are the record's document as stored at that moment.
//! - Before merging received bytes into a local document, ask [`classify`]
//!   (through [`receive::receive`], which `Repo::apply_remote_many` does for
//!   every received change): merging a document of another epoch would bring
//!   the old history back (two unrelated histories merge as concurrent
//!   edits, old values and all). A newer epoch is adopted (the local
//!   document, its stored bytes and its unsent outbox entries replaced in
//!   one write), changes of an older epoch are dropped, and of two rewrites
//!   with the same number the one with the smaller genesis hash wins on
//!   every replica.
//!
//! # Privacy actions are replayed
//!
//! A consent event or a restriction recorded on the old epoch that the
//! rewriting device had not seen (recorded offline, or concurrently on
//! another device) is written again onto the new epoch by the replica that
//! holds it, when it adopts the new epoch ([`replay`]): a withdrawal is
//! never lost to a rewrite. The rewrite records which changes it had seen
//! ([`SEEN_KEY`]) so that replicas can tell.
//!
//! # Limits
//!
//! - Other edits a replica made offline on the old epoch are not replayed
//!   onto the new one: a replica that adopts a newer epoch drops its
//!   unpushed changes to that record (the user's last offline edits to it
//!   are lost, never the rewrite), except privacy actions (above).
//! - Old-epoch changes that reach a replica already on the new epoch are
//!   dropped whole (they cannot be read without the old history). Their
//!   privacy actions reach the new epoch through the replica that recorded
//!   them, which replays them when it adopts the new epoch; if that
//!   replica never syncs again, only replicas that merged them before
//!   adopting replay them.
//! - A change of the old epoch that a replica pushed *while online*, after
//!   the rewriting replica's cursor but before the snapshot was stored, is
//!   kept by the relay (`ReplaceWithSnapshot` keeps entries after
//!   `covers_through`). Every replica drops it on receipt, so it never comes
//!   back into a document, but its ciphertext stays on the relay until the
//!   record's next snapshot or erasure.
//! - A form left open on the old epoch would write its values into the new
//!   one: edit forms save with [`crate::repo::Repo::save_since`], which
//!   refuses an edit read in another epoch.
//! - A copy on a replica that never syncs again keeps its old epoch.

pub mod receive;
pub mod replay;

use automerge::transaction::{CommitOptions, Transactable};
use automerge::{ActorId, AutoCommit, AutomergeError, ChangeHash, ObjId, ObjType, ReadDoc, ScalarValue, Value, ROOT};

use crate::doc::{self, DecodeError, EncodeError};
use crate::record::Record;
use crate::Timestamp;

/// Root key holding the epoch number (absent = 0).
pub const KEY: &str = "epoch";
/// Root key listing the heads (hex change hashes) of the previous epoch the
/// rewrite was built from: no personal data, and what a later replay of
/// offline edits needs.
pub const BASE_KEY: &str = "epoch_base";
/// Root key holding the changes the rewrite had seen: the first
/// [`SEEN_PREFIX`] bytes of the hash of every change of the previous epoch,
/// and those the previous epoch had listed (so across several rewrites),
/// sorted, as one byte string. No personal data; it tells a replica which
/// of its privacy actions the rewriting device knew of
/// ([`replay`]).
pub const SEEN_KEY: &str = "epoch_seen";
/// How many bytes of a change hash [`SEEN_KEY`] keeps.
pub const SEEN_PREFIX: usize = 16;

/// A document's epoch: 0 for documents never rewritten.
///
/// # Errors
/// [`DecodeError::WrongType`] when the field is not an integer.
pub fn epoch<D: ReadDoc>(doc: &D) -> Result<u64, DecodeError> {
    Ok(doc::get_i64(doc, &ROOT, KEY)?.map_or(0, |n| u64::try_from(n).unwrap_or(0)))
}

fn copy_scalar(s: &ScalarValue) -> ScalarValue {
    match s {
        ScalarValue::Counter(c) => ScalarValue::counter(i64::from(c)),
        other => other.clone(),
    }
}

/// Copies the current value of every field of `from` (in `src`) into `to`
/// (in `dst`), recursively; only winning values of conflicts.
fn copy_object(src: &AutoCommit, from: &ObjId, dst: &mut AutoCommit, to: &ObjId) -> Result<(), AutomergeError> {
    match src.object_type(from)? {
        ObjType::Map | ObjType::Table => {
            for key in src.keys(from).collect::<Vec<_>>() {
                if *from == ROOT && (key == KEY || key == BASE_KEY || key == SEEN_KEY) {
                    continue;
                }
                match src.get(from, key.as_str())? {
                    Some((Value::Object(kind), child)) => {
                        let new = dst.put_object(to, key.as_str(), kind)?;
                        copy_object(src, &child, dst, &new)?;
                    }
                    Some((Value::Scalar(s), _)) => dst.put(to, key.as_str(), copy_scalar(&s))?,
                    None => {}
                }
            }
        }
        ObjType::List => {
            for i in 0..src.length(from) {
                match src.get(from, i)? {
                    Some((Value::Object(kind), child)) => {
                        let new = dst.insert_object(to, i, kind)?;
                        copy_object(src, &child, dst, &new)?;
                    }
                    Some((Value::Scalar(s), _)) => dst.insert(to, i, copy_scalar(&s))?,
                    None => {}
                }
            }
        }
        ObjType::Text => {
            let text = src.text(from)?;
            dst.splice_text(to, 0, 0, &text)?;
        }
    }
    Ok(())
}

/// The change-hash prefixes a rewrite stored under [`SEEN_KEY`] (`None`
/// for a rewrite made before the key existed).
///
/// # Errors
/// [`DecodeError::WrongType`] when the field is not a byte string of whole
/// prefixes.
pub fn seen_by_rewrite<D: ReadDoc>(
    doc: &D,
) -> Result<Option<std::collections::BTreeSet<[u8; SEEN_PREFIX]>>, DecodeError> {
    let wrong = || DecodeError::WrongType { field: SEEN_KEY.into(), expected: "bytes of change hash prefixes" };
    match doc.get(&ROOT, SEEN_KEY)? {
        None => Ok(None),
        Some((Value::Scalar(s), _)) => match s.as_ref() {
            ScalarValue::Bytes(bytes) if bytes.len() % SEEN_PREFIX == 0 => Ok(Some(
                bytes.chunks_exact(SEEN_PREFIX).filter_map(|c| <[u8; SEEN_PREFIX]>::try_from(c).ok()).collect(),
            )),
            _ => Err(wrong()),
        },
        Some(_) => Err(wrong()),
    }
}

/// The [`SEEN_KEY`] prefix of a change hash.
pub fn seen_prefix(hash: &ChangeHash) -> [u8; SEEN_PREFIX] {
    let mut out = [0; SEEN_PREFIX];
    out.copy_from_slice(&hash.0[..SEEN_PREFIX]);
    out
}

/// What a rewrite of `previous` has seen: every change of it and what its
/// own rewrite had seen.
fn seen_of(previous: &mut AutoCommit) -> Result<Vec<u8>, EncodeError> {
    let mut seen = seen_by_rewrite(previous).map_err(|e| EncodeError(e.to_string()))?.unwrap_or_default();
    seen.extend(previous.get_changes(&[]).iter().map(|c| seen_prefix(&c.hash())));
    Ok(seen.into_iter().flatten().collect())
}

fn stamp_epoch(
    doc: &mut AutoCommit,
    number: u64,
    base: &[ChangeHash],
    seen: Vec<u8>,
    now: Timestamp,
) -> Result<(), EncodeError> {
    doc.put(&ROOT, KEY, number)?;
    let list = doc.put_object(&ROOT, BASE_KEY, ObjType::List)?;
    for (i, h) in base.iter().enumerate() {
        doc.insert(&list, i, h.to_string())?;
    }
    doc.put(&ROOT, SEEN_KEY, ScalarValue::Bytes(seen))?;
    doc.commit_with(CommitOptions::default().with_time(now.as_millis().div_euclid(1000)));
    Ok(())
}

/// A fresh document, written by `actor` at `now`, with the current state of
/// `doc`, no history, and the next epoch number (see the module doc).
///
/// # Errors
/// [`EncodeError`] when `doc`'s epoch field is malformed or on an internal
/// Automerge failure.
pub fn rewrite_without_history(
    doc: &mut AutoCommit,
    actor: ActorId,
    now: Timestamp,
) -> Result<AutoCommit, EncodeError> {
    let number = epoch(doc).map_err(|e| EncodeError(e.to_string()))? + 1;
    let base = doc.get_heads();
    let seen = seen_of(doc)?;
    let mut fresh = AutoCommit::new().with_actor(actor);
    copy_object(doc, &ROOT, &mut fresh, &ROOT)?;
    stamp_epoch(&mut fresh, number, &base, seen, now)?;
    Ok(fresh)
}

/// A fresh document of the epoch after `previous`'s, holding `record` only.
///
/// # Errors
/// As [`rewrite_without_history`].
pub fn next_epoch_of<R: Record>(
    record: &R,
    previous: &mut AutoCommit,
    actor: ActorId,
    now: Timestamp,
) -> Result<AutoCommit, EncodeError> {
    let number = epoch(previous).map_err(|e| EncodeError(e.to_string()))? + 1;
    let base = previous.get_heads();
    let seen = seen_of(previous)?;
    let mut fresh = AutoCommit::new().with_actor(actor);
    doc::init_root(&mut fresh, R::KIND.as_str(), R::SCHEMA)?;
    record.write_doc(&mut fresh)?;
    stamp_epoch(&mut fresh, number, &base, seen, now)?;
    Ok(fresh)
}

/// How received bytes relate to the local document of the same record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Incoming {
    /// They extend the local history (or the local document is empty):
    /// merge them.
    Continues,
    /// They hold a different history, starting an epoch numbered `epoch`.
    /// Newer than the local epoch: replace the local document with them.
    /// Not newer: drop them (a stale or competing epoch).
    NewHistory { epoch: u64 },
    /// They depend on changes the local document does not have: from an
    /// older epoch (drop them when the local epoch is above 0) or sent ahead
    /// of their dependencies (Automerge keeps them until those arrive).
    Detached,
}

/// Classifies received Automerge bytes (changes or a whole document) against
/// the local document, before merging (see the module doc).
///
/// # Errors
/// [`DecodeError::Automerge`] when the bytes are not Automerge data.
pub fn classify(local: &AutoCommit, bytes: &[u8]) -> Result<Incoming, DecodeError> {
    crate::chunks::check(bytes)?;
    let mut probe = AutoCommit::new();
    probe.load_incremental(bytes)?;
    if local.is_empty() {
        return Ok(Incoming::Continues);
    }
    let known = |h: &ChangeHash| local.get_change_by_hash(h).is_some();
    let roots: Vec<ChangeHash> =
        probe.get_changes(&[]).iter().filter(|c| c.deps().is_empty()).map(|c| c.hash()).collect();
    if let Some(root) = roots.first() {
        if !known(root) {
            return Ok(Incoming::NewHistory { epoch: epoch(&probe)? });
        }
    }
    if probe.get_missing_deps(&[]).iter().all(known) {
        Ok(Incoming::Continues)
    } else {
        Ok(Incoming::Detached)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contact::Contact;
    use crate::ids::{MemberId, RecordId};

    fn me() -> MemberId {
        MemberId::from_bytes([1; 16])
    }

    fn actor(n: u8) -> ActorId {
        crate::repo::session_actor(me(), [n; 8])
    }

    const NOW: Timestamp = Timestamp::from_millis(1_700_000_000_000);

    fn contact_doc() -> (AutoCommit, Contact) {
        let mut c = Contact::new(RecordId::from_bytes([2; 16]), Timestamp::from_millis(1), me());
        c.given_name = "Ada".into();
        c.family_name = "Byron".into();
        c.notes = "Met at the exhibition.".into();
        c.tags.insert("vip".into());
        let mut doc = AutoCommit::new().with_actor(actor(1));
        doc::init_root(&mut doc, "contact", 1).unwrap();
        c.write_doc(&mut doc).unwrap();
        (doc, c)
    }

    fn contains(bytes: &[u8], needle: &str) -> bool {
        bytes.windows(needle.len()).any(|w| w == needle.as_bytes())
    }

    #[test]
    fn an_ordinary_edit_leaves_the_old_value_in_the_saved_bytes() {
        let (mut doc, mut c) = contact_doc();
        c.family_name = "Lovelace".into();
        c.write_doc(&mut doc).unwrap();
        assert_eq!(Contact::from_doc(&doc).unwrap().family_name, "Lovelace");
        assert!(contains(&doc.save_nocompress(), "Byron"), "the scrubbed value is still in history");
    }

    #[test]
    fn a_rewritten_document_keeps_the_current_state_and_drops_the_old_value_from_its_bytes() {
        let (mut doc, mut c) = contact_doc();
        c.family_name = "Lovelace".into();
        c.write_doc(&mut doc).unwrap();
        let mut fresh = rewrite_without_history(&mut doc, actor(2), NOW).unwrap();
        assert_eq!(Contact::from_doc(&fresh).unwrap(), c);
        assert!(!contains(&fresh.save(), "Byron"));
        assert!(!contains(&fresh.save_nocompress(), "Byron"));
        assert!(contains(&fresh.save_nocompress(), "Lovelace"));
        assert_eq!(fresh.get_changes(&[]).len(), 1, "one change, no history");
    }

    #[test]
    fn each_rewrite_raises_the_epoch_and_records_its_base() {
        let (mut doc, _) = contact_doc();
        assert_eq!(epoch(&doc).unwrap(), 0);
        let base = doc.get_heads();
        let mut one = rewrite_without_history(&mut doc, actor(2), NOW).unwrap();
        assert_eq!(epoch(&one).unwrap(), 1);
        assert_eq!(
            doc::get_str_list(&one, &ROOT, BASE_KEY).unwrap(),
            base.iter().map(|h| h.to_string()).collect::<Vec<_>>()
        );
        let two = rewrite_without_history(&mut one, actor(3), NOW).unwrap();
        assert_eq!(epoch(&two).unwrap(), 2);
    }

    #[test]
    fn a_rewrite_keeps_only_the_winning_value_of_a_conflict() {
        let (mut a, c) = contact_doc();
        let mut b = a.fork().with_actor(actor(9));
        let mut ca = c.clone();
        ca.title = "Countess".into();
        ca.write_doc(&mut a).unwrap();
        let mut cb = c;
        cb.title = "Secret title".into();
        cb.write_doc(&mut b).unwrap();
        a.merge(&mut b).unwrap();
        let winner = Contact::from_doc(&a).unwrap().title;
        let loser = if winner == "Countess" { "Secret title" } else { "Countess" };
        let mut fresh = rewrite_without_history(&mut a, actor(2), NOW).unwrap();
        assert_eq!(Contact::from_doc(&fresh).unwrap().title, winner);
        assert!(!contains(&fresh.save_nocompress(), loser));
    }

    #[test]
    fn lists_counters_and_nested_maps_are_copied() {
        let mut doc = AutoCommit::new();
        let list = doc.put_object(&ROOT, "list", ObjType::List).unwrap();
        doc.insert(&list, 0, "a").unwrap();
        let inner = doc.insert_object(&list, 1, ObjType::Map).unwrap();
        doc.put(&inner, "k", 3_i64).unwrap();
        doc.put(&ROOT, "count", ScalarValue::counter(5)).unwrap();
        doc.increment(&ROOT, "count", 2).unwrap();
        let fresh = rewrite_without_history(&mut doc, actor(2), NOW).unwrap();
        let list = fresh.get(&ROOT, "list").unwrap().unwrap().1;
        assert_eq!(fresh.length(&list), 2);
        let inner = fresh.get(&list, 1).unwrap().unwrap().1;
        assert_eq!(doc::get_i64(&fresh, &inner, "k").unwrap(), Some(3));
        match fresh.get(&ROOT, "count").unwrap().unwrap().0 {
            Value::Scalar(s) => assert_eq!(s.as_ref(), &ScalarValue::counter(7)),
            other => panic!("expected a counter, got {other:?}"),
        }
    }

    #[test]
    fn received_bytes_are_classified_against_the_local_epoch() {
        let (mut old, mut c) = contact_doc();
        let heads = old.get_heads();
        let behind = old.fork();
        // The same epoch continues.
        c.title = "Countess".into();
        c.write_doc(&mut old).unwrap();
        let next = old.save_after(&heads);
        assert_eq!(classify(&behind, &next).unwrap(), Incoming::Continues);
        // A rewrite is a new history with its epoch number.
        let mut fresh = rewrite_without_history(&mut old, actor(2), NOW).unwrap();
        assert_eq!(classify(&old, &fresh.save()).unwrap(), Incoming::NewHistory { epoch: 1 });
        // Old-epoch changes do not continue the new epoch.
        let old_heads = old.get_heads();
        c.title = "Offline edit".into();
        c.write_doc(&mut old).unwrap();
        let offline = old.save_after(&old_heads);
        assert_eq!(classify(&fresh, &offline).unwrap(), Incoming::Detached);
        // The new epoch's own snapshot and later changes continue it.
        let fresh_heads = fresh.get_heads();
        let snapshot = fresh.save();
        assert_eq!(classify(&fresh, &snapshot).unwrap(), Incoming::Continues);
        let mut ahead = fresh.fork().with_actor(actor(3));
        let mut fc = Contact::from_doc(&ahead).unwrap();
        fc.title = "New epoch edit".into();
        fc.write_doc(&mut ahead).unwrap();
        let later = ahead.save_after(&fresh_heads);
        assert_eq!(classify(&fresh, &later).unwrap(), Incoming::Continues);
        // Anything goes into an empty document.
        assert_eq!(classify(&AutoCommit::new(), &offline).unwrap(), Incoming::Continues);
        assert!(classify(&fresh, b"junk").is_err());
    }
}

//! What a replica does with received bytes of a record, given its local
//! document: [`receive`] turns [`classify`](super::classify) into a
//! decision, so every replica decides the same way and they converge.
//!
//! | received | local epoch | decision |
//! |---|---|---|
//! | continues the local history | any | [`Receive::Merge`] |
//! | a new history of a higher epoch | any | [`Receive::Adopt`]: replace the local document |
//! | a new history of the same epoch above 0 | | the one with the smaller genesis hash wins: adopt it or drop it |
//! | a new history of the same epoch 0 | 0 | merge (unrelated histories of records never rewritten merge as before epochs existed) |
//! | a new history of a lower epoch | | [`Receive::Drop`] |
//! | changes missing their dependencies | above 0 | drop: they belong to an older epoch, and would bring old values back |
//! | changes missing their dependencies | 0 | merge (Automerge keeps them until their dependencies arrive) |
//!
//! Adopting drops whatever the replica had of the old epoch that the new
//! one does not hold: its offline edits to that record are lost, never the
//! rewrite (which exists to remove values), except privacy actions, which
//! the caller replays onto the adopted document ([`super::replay`]).

use automerge::{AutoCommit, ChangeHash};

use super::{classify, epoch, Incoming};
use crate::doc::DecodeError;

/// Why received bytes were dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dropped {
    /// Changes of an epoch older than the local one.
    OlderEpoch,
    /// A competing rewrite of the same epoch that lost the tie-break.
    LostTieBreak,
}

/// The decision of [`receive`].
#[derive(Debug)]
pub enum Receive {
    /// Merge the bytes into the local document (`load_incremental`).
    Merge,
    /// Replace the local document with this one (loaded from the bytes).
    Adopt(Box<AutoCommit>),
    /// Ignore the bytes.
    Drop(Dropped),
}

/// The smallest hash among the document's root changes (those without
/// dependencies): what tells two rewrites of the same epoch apart.
pub fn genesis(doc: &mut AutoCommit) -> Option<ChangeHash> {
    doc.get_changes(&[]).iter().filter(|c| c.deps().is_empty()).map(|c| c.hash()).min()
}

/// Decides what to do with received `bytes` of the record whose local
/// document is `local` (see the module doc).
///
/// # Errors
/// [`DecodeError`] when the bytes are not Automerge data, or an epoch field
/// (local or received) is not a number.
pub fn receive(local: &mut AutoCommit, bytes: &[u8]) -> Result<Receive, DecodeError> {
    match classify(local, bytes)? {
        Incoming::Continues => Ok(Receive::Merge),
        Incoming::Detached if epoch(local)? > 0 => Ok(Receive::Drop(Dropped::OlderEpoch)),
        Incoming::Detached => Ok(Receive::Merge),
        Incoming::NewHistory { epoch: theirs } => {
            let ours = epoch(local)?;
            if theirs == 0 && ours == 0 {
                return Ok(Receive::Merge);
            }
            if theirs < ours {
                return Ok(Receive::Drop(Dropped::OlderEpoch));
            }
            // `classify` checked the bytes; the load keeps changes whose
            // dependencies are missing pending, as a merge would.
            let mut incoming = AutoCommit::new();
            incoming.load_incremental(bytes)?;
            if theirs > ours || genesis(&mut incoming) < genesis(local) {
                Ok(Receive::Adopt(Box::new(incoming)))
            } else {
                Ok(Receive::Drop(Dropped::LostTieBreak))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use automerge::ActorId;

    use super::*;
    use crate::contact::Contact;
    use crate::doc;
    use crate::ids::{MemberId, RecordId};
    use crate::privacy::epoch::rewrite_without_history;
    use crate::record::Record;
    use crate::Timestamp;

    const NOW: Timestamp = Timestamp::from_millis(1_700_000_000_000);

    fn actor(n: u8) -> ActorId {
        crate::repo::session_actor(MemberId::from_bytes([1; 16]), [n; 8])
    }

    fn ada() -> (AutoCommit, Contact) {
        let mut c =
            Contact::new(RecordId::from_bytes([2; 16]), Timestamp::from_millis(1), MemberId::from_bytes([1; 16]));
        c.given_name = "Ada".into();
        let mut d = AutoCommit::new().with_actor(actor(1));
        doc::init_root(&mut d, "contact", 1).unwrap();
        c.write_doc(&mut d).unwrap();
        (d, c)
    }

    fn edit(d: &mut AutoCommit, title: &str) -> Vec<u8> {
        let heads = d.get_heads();
        let mut c = Contact::from_doc(d).unwrap();
        c.title = title.into();
        c.write_doc(d).unwrap();
        d.save_after(&heads)
    }

    fn name(d: &AutoCommit) -> String {
        Contact::from_doc(d).unwrap().title
    }

    #[test]
    fn a_newer_epoch_is_adopted_and_old_epoch_changes_are_dropped_after() {
        let (mut old, _) = ada();
        let mut offline = old.fork().with_actor(actor(5));
        let offline_edit = edit(&mut offline, "Offline");
        let mut fresh = rewrite_without_history(&mut old, actor(2), NOW).unwrap();
        let snapshot = fresh.save();

        let Receive::Adopt(mut adopted) = receive(&mut offline, &snapshot).unwrap() else { panic!("not adopted") };
        assert_eq!(epoch(adopted.as_ref()).unwrap(), 1);
        assert!(matches!(receive(&mut adopted, &offline_edit).unwrap(), Receive::Drop(Dropped::OlderEpoch)));
        assert!(matches!(receive(&mut adopted, &offline.save()).unwrap(), Receive::Drop(Dropped::OlderEpoch)));
        assert!(matches!(receive(&mut adopted, &snapshot).unwrap(), Receive::Merge), "its own snapshot again");
        let later = edit(&mut fresh, "New epoch");
        assert!(matches!(receive(&mut adopted, &later).unwrap(), Receive::Merge));
    }

    #[test]
    fn two_rewrites_of_the_same_epoch_settle_on_the_smaller_genesis_whichever_arrives_first() {
        let (mut old, _) = ada();
        let mut other = old.fork();
        let a = rewrite_without_history(&mut old, actor(2), NOW).unwrap();
        let b = rewrite_without_history(&mut other, actor(3), NOW).unwrap();
        let (mut a, mut b) = (a, b);
        let (mut winner, mut loser) = if genesis(&mut a) < genesis(&mut b) { (a, b) } else { (b, a) };
        assert!(matches!(receive(&mut winner, &loser.save()).unwrap(), Receive::Drop(Dropped::LostTieBreak)));
        let Receive::Adopt(mut adopted) = receive(&mut loser, &winner.save()).unwrap() else { panic!("not adopted") };
        assert_eq!(adopted.get_heads(), winner.get_heads());
    }

    #[test]
    fn records_never_rewritten_merge_as_before() {
        let (mut a, _) = ada();
        let (mut b, _) = ada(); // an unrelated history of the same record id
        assert!(matches!(receive(&mut b, &a.save()).unwrap(), Receive::Merge));
        let mut ahead = a.fork().with_actor(actor(4));
        let first = edit(&mut ahead, "one");
        let second = edit(&mut ahead, "two");
        // Sent ahead of its dependency: Automerge keeps it for later.
        assert!(matches!(receive(&mut a, &second).unwrap(), Receive::Merge));
        a.load_incremental(&second).unwrap();
        a.load_incremental(&first).unwrap();
        assert_eq!(name(&a), "two");
        assert!(receive(&mut a, b"junk").is_err());
    }
}

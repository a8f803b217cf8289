//! The erasure protocol on a model of the real system: replicas holding
//! Automerge documents (a workspace, Ada the subject, Grace another contact)
//! with an outbox of local changes, and a relay holding a log of entries
//! that replicas push to and pull from, and that deletes a document's
//! entries on request. Contact changes flow only through the guards.

use std::collections::{BTreeMap, BTreeSet};

use automerge::{AutoCommit, ChangeHash};
use proptest::prelude::*;

use super::*;
use crate::contact::{Contact, Labeled};
use crate::ids::{EntryId, MemberId};
use crate::privacy::{plan_erasure, tombstone};
use crate::record::Record;
use crate::repo::session_actor;
use crate::workspace::Workspace;
use crate::{doc, Timestamp};

const WS: RecordId = RecordId::from_bytes([0xAA; 16]);
const ADA: RecordId = RecordId::from_bytes([1; 16]);
const GRACE: RecordId = RecordId::from_bytes([2; 16]);

/// Substrings of every value the subject ever holds: none may remain.
const ADA_MARKERS: [&str; 4] = ["Augusta", "Lovelace", "lovelace@", "+44207946"];

fn member(r: usize) -> MemberId {
    MemberId::from_bytes([r as u8 + 100; 16])
}

fn now() -> Timestamp {
    Timestamp::from_millis(1_700_000_000_000)
}

#[derive(Default)]
struct Relay {
    log: Vec<(u64, RecordId, Vec<u8>)>,
    head: u64,
}

impl Relay {
    fn push(&mut self, id: RecordId, bytes: Vec<u8>) {
        self.head += 1;
        self.log.push((self.head, id, bytes));
    }

    fn pull(&self, since: u64) -> Vec<(u64, RecordId, Vec<u8>)> {
        self.log.iter().filter(|e| e.0 > since).cloned().collect()
    }

    /// `DeleteDocument`: every entry of the record goes.
    fn delete(&mut self, id: RecordId) {
        self.log.retain(|e| e.1 != id);
    }
}

struct Held {
    doc: AutoCommit,
    /// Heads already queued or received: what the next outbox entry follows.
    persisted: Vec<ChangeHash>,
}

impl Held {
    fn new(doc: AutoCommit) -> Self {
        let mut doc = doc;
        let persisted = doc.get_heads();
        Self { doc, persisted }
    }
}

struct Replica {
    index: usize,
    workspace: Held,
    docs: BTreeMap<RecordId, Held>,
    outbox: Vec<OutboxEntry>,
    next_seq: u64,
    cursor: u64,
    /// Tombstoned records the relay confirmed deleting for this replica.
    confirmed: BTreeSet<RecordId>,
    /// Records whose entries this replica refused: delete them again.
    refused: BTreeSet<RecordId>,
    next_entry: u32,
    /// Off: apply_tombstones still runs, but remote changes and outbox
    /// entries are not checked (the negative control).
    guards: bool,
}

impl Replica {
    fn tombstones(&self) -> Tombstones {
        tombstone::read(&self.workspace.doc).unwrap()
    }

    fn queue(&mut self, id: RecordId, bytes: Vec<u8>) {
        if !bytes.is_empty() {
            self.next_seq += 1;
            self.outbox.push(OutboxEntry::changes(self.next_seq, id, bytes));
        }
    }

    /// A local edit: write the record, queue the new change.
    fn save_local(&mut self, id: RecordId) {
        let held = if id == WS { &mut self.workspace } else { self.docs.get_mut(&id).unwrap() };
        let bytes = held.doc.save_after(&held.persisted);
        held.persisted = held.doc.get_heads();
        self.queue(id, bytes);
    }

    fn entry_id(&mut self) -> EntryId {
        self.next_entry += 1;
        let mut bytes = [0; 16];
        bytes[0] = self.index as u8;
        bytes[1..5].copy_from_slice(&self.next_entry.to_be_bytes());
        EntryId::from_bytes(bytes)
    }

    fn edit(&mut self, ada: bool, field: u8, n: u8) {
        let id = if ada { ADA } else { GRACE };
        let Some(held) = self.docs.get(&id) else { return };
        let Ok(mut c) = Contact::from_doc(&held.doc) else { return };
        let entry = self.entry_id();
        match (ada, field % 5) {
            (true, 0) => c.given_name = format!("Augusta{n}"),
            (true, 1) => c.family_name = format!("Lovelace{n}"),
            (true, 2) => c.emails.push(Labeled {
                id: entry,
                label: "work".into(),
                value: format!("augusta{n}.lovelace@example.org"),
            }),
            (true, 3) => {
                c.phones.push(Labeled { id: entry, label: "mobile".into(), value: format!("+44207946{n:04}") })
            }
            (true, _) => c.notes = format!("Lovelace notes {n}"),
            (false, 0) => c.given_name = format!("Grace{n}"),
            (false, 1) => c.title = format!("Rear Admiral {n}"),
            (false, 2) => {
                c.emails.push(Labeled { id: entry, label: "work".into(), value: format!("grace{n}@navy.mil") })
            }
            (false, 3) => {
                c.tags.insert(format!("tag{n}"));
            }
            (false, _) => c.notes = format!("Hopper notes {n}"),
        }
        c.touch(now(), member(self.index));
        let held = self.docs.get_mut(&id).unwrap();
        c.write_doc(&mut held.doc).unwrap();
        self.save_local(id);
    }

    /// Carries out [`apply_tombstones`].
    fn purge(&mut self) {
        let purge = apply_tombstones(self.docs.keys().copied(), &self.outbox, &self.tombstones());
        for id in &purge.remove {
            self.docs.remove(id);
        }
        self.outbox.retain(|e| !purge.drop_outbox.contains(&e.seq));
    }

    /// The erasure dialog confirmed on this replica.
    fn erase_ada(&mut self) {
        let Some(held) = self.docs.get(&ADA) else { return };
        let ada = Contact::from_doc(&held.doc).unwrap();
        let rows: Vec<_> = self.docs.values().filter_map(|h| Contact::from_doc(&h.doc).ok()).map(|c| c.row()).collect();
        let plan = plan_erasure(&ada, &rows);
        let mut ws = Workspace::from_doc(&self.workspace.doc).unwrap();
        for t in plan.tombstones(now(), member(self.index)) {
            ws.tombstones.insert(t);
        }
        ws.write_doc(&mut self.workspace.doc).unwrap();
        self.save_local(WS);
        self.purge();
    }

    /// Queues every document whole (the sync engine's `Reupload` after
    /// `CursorAhead`, or turning sync on for existing data).
    fn reupload(&mut self) {
        let whole: Vec<(RecordId, Vec<u8>)> = std::iter::once((WS, self.workspace.doc.save()))
            .chain(self.docs.iter_mut().map(|(id, h)| (*id, h.doc.save())))
            .collect();
        for (id, bytes) in whole {
            self.queue(id, bytes);
        }
    }

    /// Online: push the outbox through the guard, then ask the relay to
    /// delete what it must.
    fn push(&mut self, relay: &mut Relay) {
        let tombstones = self.tombstones();
        for e in std::mem::take(&mut self.outbox) {
            if !self.guards || accept_outbox(e.id, &tombstones) {
                relay.push(e.id, e.bytes);
            }
        }
        let mut delete: BTreeSet<RecordId> = relay_deletions(&tombstones, &self.confirmed).into_iter().collect();
        delete.append(&mut self.refused);
        for id in delete {
            relay.delete(id);
            self.confirmed.insert(id);
        }
    }

    /// Online: pull and merge everything since the cursor.
    fn pull(&mut self, relay: &Relay) {
        for (seq, id, bytes) in relay.pull(self.cursor) {
            if id == WS {
                let before = self.workspace.doc.get_heads();
                self.workspace.doc.load_incremental(&bytes).unwrap();
                self.workspace.persisted = self.workspace.doc.get_heads();
                if self.workspace.persisted != before {
                    self.purge();
                }
            } else if !self.guards || accept_remote(id, &self.tombstones()) {
                let actor = session_actor(member(self.index), [self.index as u8; 8]);
                let held = self.docs.entry(id).or_insert_with(|| Held::new(AutoCommit::new().with_actor(actor)));
                held.doc.load_incremental(&bytes).unwrap();
                held.persisted = held.doc.get_heads();
            } else {
                self.refused.insert(id);
            }
            self.cursor = seq;
        }
    }

    /// Every byte this replica stores: documents, outbox.
    fn stored_bytes(&mut self) -> Vec<Vec<u8>> {
        let mut out = vec![self.workspace.doc.save_nocompress()];
        out.extend(self.docs.values_mut().map(|h| h.doc.save_nocompress()));
        out.extend(self.outbox.iter().map(|e| e.bytes.clone()));
        out
    }
}

fn contains(bytes: &[u8], needle: &str) -> bool {
    bytes.windows(needle.len()).any(|w| w == needle.as_bytes())
}

fn contact_doc(c: &Contact) -> AutoCommit {
    let mut doc = AutoCommit::new().with_actor(session_actor(member(0), [0; 8]));
    doc::init_root(&mut doc, "contact", 1).unwrap();
    c.write_doc(&mut doc).unwrap();
    doc
}

/// `n` replicas holding the same workspace, Ada and Grace, all synced.
fn world(n: usize, guards: bool) -> (Vec<Replica>, Relay) {
    let ws = Workspace::new(WS, "Acme", member(0), "Sam", now());
    let mut ws_doc = AutoCommit::new().with_actor(session_actor(member(0), [0; 8]));
    doc::init_root(&mut ws_doc, "workspace", 1).unwrap();
    ws.write_doc(&mut ws_doc).unwrap();

    let mut ada = Contact::new(ADA, now(), member(0));
    ada.given_name = "Augusta".into();
    ada.family_name = "Lovelace".into();
    ada.emails.push(Labeled {
        id: EntryId::from_bytes([0xE0; 16]),
        label: "home".into(),
        value: "augusta.lovelace@example.org".into(),
    });
    ada.phones.push(Labeled {
        id: EntryId::from_bytes([0xE1; 16]),
        label: "mobile".into(),
        value: "+442079460958".into(),
    });
    ada.notes = "Lovelace's notes".into();
    let mut grace = Contact::new(GRACE, now(), member(0));
    grace.given_name = "Grace".into();
    grace.family_name = "Hopper".into();

    let mut relay = Relay::default();
    let bytes = [(WS, ws_doc.save()), (ADA, contact_doc(&ada).save()), (GRACE, contact_doc(&grace).save())];
    for (id, b) in &bytes {
        relay.push(*id, b.clone());
    }
    let replicas = (0..n)
        .map(|index| {
            let actor = session_actor(member(index), [index as u8; 8]);
            let load = |b: &[u8]| Held::new(AutoCommit::load(b).unwrap().with_actor(actor.clone()));
            Replica {
                index,
                workspace: load(&bytes[0].1),
                docs: [(ADA, load(&bytes[1].1)), (GRACE, load(&bytes[2].1))].into_iter().collect(),
                outbox: Vec::new(),
                next_seq: 0,
                cursor: relay.head,
                confirmed: BTreeSet::new(),
                refused: BTreeSet::new(),
                next_entry: 0,
                guards,
            }
        })
        .collect();
    (replicas, relay)
}

/// Everyone comes online and syncs until nothing moves.
fn settle(replicas: &mut [Replica], relay: &mut Relay) {
    for _ in 0..4 {
        for r in replicas.iter_mut() {
            r.push(relay);
            r.pull(relay);
        }
    }
}

/// Whether any replica or the relay still has anything of Ada.
fn ada_survives(replicas: &mut [Replica], relay: &Relay) -> Vec<String> {
    let mut found = Vec::new();
    for r in replicas.iter_mut() {
        if r.docs.contains_key(&ADA) {
            found.push(format!("replica {} holds Ada's document", r.index));
        }
        if r.outbox.iter().any(|e| e.id == ADA) {
            found.push(format!("replica {} has Ada in its outbox", r.index));
        }
        for bytes in r.stored_bytes() {
            for m in ADA_MARKERS {
                if contains(&bytes, m) {
                    found.push(format!("replica {} stores {m:?}", r.index));
                }
            }
        }
    }
    if relay.log.iter().any(|e| e.1 == ADA) {
        found.push("the relay has entries of Ada".into());
    }
    for (_, _, bytes) in &relay.log {
        for m in ADA_MARKERS {
            if contains(bytes, m) {
                found.push(format!("the relay stores {m:?}"));
            }
        }
    }
    found
}

fn assert_grace_intact_and_converged(replicas: &mut [Replica]) {
    let mut seen = None;
    for r in replicas.iter_mut() {
        let held = r.docs.get_mut(&GRACE).unwrap_or_else(|| panic!("replica {} lost Grace", r.index));
        let grace = Contact::from_doc(&held.doc).unwrap();
        assert!(grace.family_name == "Hopper");
        let heads = held.doc.get_heads();
        match &seen {
            None => seen = Some((heads, grace)),
            Some((h, g)) => {
                assert_eq!(h, &heads, "replica {} did not converge on Grace", r.index);
                assert_eq!(g, &grace);
            }
        }
    }
}

#[test]
fn apply_tombstones_lists_held_records_and_outbox_entries_of_erased_records_only() {
    let tombstones: Tombstones = [crate::privacy::Tombstone {
        record: ADA,
        kind: crate::record::RecordKind::Contact,
        erased_at: now(),
        erased_by: member(0),
    }]
    .into_iter()
    .collect();
    let outbox = [
        OutboxEntry::changes(1, ADA, vec![1]),
        OutboxEntry::changes(2, GRACE, vec![2]),
        OutboxEntry::changes(3, ADA, vec![3]),
    ];
    let purge = apply_tombstones([GRACE, ADA, WS], &outbox, &tombstones);
    assert_eq!(purge, Purge { remove: vec![ADA], drop_outbox: vec![1, 3] });
    assert!(apply_tombstones([GRACE, WS], &outbox[1..2], &tombstones).is_empty(), "a finished purge is empty");
    assert!(!accept_remote(ADA, &tombstones) && !accept_outbox(ADA, &tombstones));
    assert!(!accept_local(ADA, &tombstones));
    assert!(accept_remote(GRACE, &tombstones) && accept_outbox(WS, &tombstones) && accept_local(GRACE, &tombstones));
}

#[test]
fn relay_deletions_repeat_until_the_relay_confirms() {
    let tombstones: Tombstones = [ADA, GRACE]
        .into_iter()
        .map(|record| crate::privacy::Tombstone {
            record,
            kind: crate::record::RecordKind::Contact,
            erased_at: now(),
            erased_by: member(0),
        })
        .collect();
    assert_eq!(relay_deletions(&tombstones, &BTreeSet::new()), [ADA, GRACE]);
    assert_eq!(relay_deletions(&tombstones, &[ADA].into_iter().collect()), [GRACE]);
}

#[test]
fn an_erasure_reaches_every_replica_and_the_relay() {
    let (mut replicas, mut relay) = world(3, true);
    let before = ada_survives(&mut replicas, &relay);
    assert!(before.contains(&"replica 2 stores \"+44207946\"".to_owned()), "the search finds her: {before:?}");
    assert!(before.contains(&"the relay has entries of Ada".to_owned()));
    replicas[0].erase_ada();
    assert!(!replicas[0].docs.contains_key(&ADA), "the eraser drops its copy at once");
    settle(&mut replicas, &mut relay);
    assert_eq!(ada_survives(&mut replicas, &relay), Vec::<String>::new());
    assert_grace_intact_and_converged(&mut replicas);
}

#[test]
fn an_offline_replica_that_edits_an_erased_contact_does_not_resurrect_it() {
    let (mut replicas, mut relay) = world(2, true);
    let (a, b) = replicas.split_at_mut(1);
    let (a, b) = (&mut a[0], &mut b[0]);
    a.erase_ada();
    a.push(&mut relay);
    // B was offline: it edits Ada, and even queues her whole document
    // (turning sync on, or a re-upload), then pushes before it pulls.
    b.edit(true, 0, 7);
    b.edit(true, 2, 7);
    b.reupload();
    b.push(&mut relay);
    assert!(relay.log.iter().any(|e| e.1 == ADA), "B's push reached the relay");
    a.pull(&relay);
    assert!(!a.docs.contains_key(&ADA), "A refuses changes to an erased record");
    b.pull(&relay);
    assert!(!b.docs.contains_key(&ADA), "B drops its copy when it learns of the tombstone");
    settle(&mut replicas, &mut relay);
    assert_eq!(ada_survives(&mut replicas, &relay), Vec::<String>::new());
    assert_grace_intact_and_converged(&mut replicas);
}

#[test]
fn without_the_guards_the_same_offline_edit_would_resurrect_the_contact() {
    let (mut replicas, mut relay) = world(2, false);
    replicas[0].erase_ada();
    replicas[0].push(&mut relay);
    replicas[1].edit(true, 0, 7);
    replicas[1].reupload();
    replicas[1].push(&mut relay);
    settle(&mut replicas, &mut relay);
    let survives = ada_survives(&mut replicas, &relay);
    assert!(survives.contains(&"replica 0 holds Ada's document".to_owned()), "{survives:?}");
}

#[derive(Debug, Clone)]
enum Step {
    Edit { r: usize, ada: bool, field: u8, n: u8 },
    Erase { r: usize },
    Reupload { r: usize },
    Push { r: usize },
    Pull { r: usize },
}

fn step(n: usize) -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => (0..n, any::<bool>(), any::<u8>(), any::<u8>()).prop_map(|(r, ada, field, n)| Step::Edit { r, ada, field, n }),
        1 => (0..n).prop_map(|r| Step::Erase { r }),
        1 => (0..n).prop_map(|r| Step::Reupload { r }),
        3 => (0..n).prop_map(|r| Step::Push { r }),
        3 => (0..n).prop_map(|r| Step::Pull { r }),
    ]
}

/// 2 to 4 replicas, random steps, and one erasure at a random point by a
/// random replica (more may happen concurrently).
fn scenario() -> impl Strategy<Value = (usize, Vec<Step>)> {
    (2..=4usize).prop_flat_map(|n| {
        (Just(n), prop::collection::vec(step(n), 0..40), any::<prop::sample::Index>(), 0..n).prop_map(
            |(n, mut steps, at, r)| {
                let at = at.index(steps.len() + 1);
                steps.insert(at, Step::Erase { r });
                (n, steps)
            },
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(crate::test_support::cases(256)))]

    #[test]
    fn erasure_with_concurrent_edits_on_any_number_of_replicas_leaves_no_copy_of_the_subject(
        (n, steps) in scenario()
    ) {
        let (mut replicas, mut relay) = world(n, true);
        for s in &steps {
            match *s {
                Step::Edit { r, ada, field, n } => replicas[r].edit(ada, field, n),
                Step::Erase { r } => replicas[r].erase_ada(),
                Step::Reupload { r } => replicas[r].reupload(),
                Step::Push { r } => replicas[r].push(&mut relay),
                Step::Pull { r } => replicas[r].pull(&relay),
            }
        }
        settle(&mut replicas, &mut relay);
        for r in replicas.iter() {
            prop_assert!(r.tombstones().is_erased(ADA), "replica {} never learned of the erasure", r.index);
        }
        prop_assert_eq!(ada_survives(&mut replicas, &relay), Vec::<String>::new());
        assert_grace_intact_and_converged(&mut replicas);
    }
}

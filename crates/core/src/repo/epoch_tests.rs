//! A new epoch on one replica reaching another through the repo: queued as
//! one snapshot, adopted on receipt, old-epoch changes dropped.

use std::collections::HashMap;

use futures::executor::block_on;

use super::*;
use crate::contact::Contact;
use crate::privacy::retention::{anonymise_document, ANONYMISED_NAME};
use crate::storage::memory::MemoryStorage;
use crate::storage::{OutboxEntry, OutboxKind};
use crate::workspace::Workspace;

const NOW: Timestamp = Timestamp::from_millis(1_781_481_600_000);

fn member(n: u8) -> MemberId {
    MemberId::from_bytes([n; 16])
}

fn replica(n: u8) -> Repo<MemoryStorage> {
    Repo::new(MemoryStorage::new(), session_actor(member(n), [n; 8]))
}

fn workspace() -> Workspace {
    Workspace::new(RecordId::from_bytes([9; 16]), "Acme", member(1), "Sam", NOW)
}

fn ada() -> Contact {
    let mut c = Contact::new(RecordId::from_bytes([2; 16]), NOW, member(1));
    c.given_name = "Ada".into();
    c.family_name = "Lovelace".into();
    c.notes = "Prefers letters".into();
    c
}

async fn drain(repo: &Repo<MemoryStorage>) -> Vec<OutboxEntry> {
    let entries = repo.storage().outbox(usize::MAX).await.unwrap();
    repo.storage().ack_outbox(&entries.iter().map(|e| e.seq).collect::<Vec<_>>()).await.unwrap();
    entries
}

async fn deliver(to: &Repo<MemoryStorage>, entries: &[OutboxEntry], hydrated: &mut HashMap<RecordId, DocHandle>) {
    let page: Vec<(RecordId, &[u8])> = entries.iter().map(|e| (e.id, e.bytes.as_slice())).collect();
    let applied = to.apply_remote_many(&page, hydrated, NOW).await.unwrap();
    assert_eq!(applied.refused, None);
}

fn holds(storage: &MemoryStorage, needle: &str) -> bool {
    storage.raw_bytes().windows(needle.len()).any(|w| w == needle.as_bytes())
}

/// Every stored byte, the documents inflated (Automerge compresses columns).
async fn stored_text(storage: &MemoryStorage, id: RecordId) -> String {
    let stored = storage.load(id).await.unwrap().unwrap_or_default();
    let mut doc = hydrate(stored.snapshot.as_deref(), &stored.chunks).unwrap();
    String::from_utf8_lossy(&doc.save_nocompress()).into_owned()
}

/// A anonymises Ada (shared with B) and returns A's outbox after it.
async fn anonymised_on_a(a: &Repo<MemoryStorage>) -> Vec<OutboxEntry> {
    let mut h = a.open_doc(ada().id, NOW).await.unwrap();
    let actor = session_actor(member(1), [0xee; 8]);
    let (fresh, anonymised) = anonymise_document(h.doc_mut(), &workspace(), NOW, member(1), actor).unwrap();
    a.replace_epoch(&mut h, fresh, &anonymised.row()).await.unwrap();
    drain(a).await
}

#[test]
fn a_new_epoch_is_queued_as_one_snapshot_in_place_of_the_records_unsent_changes() {
    block_on(async {
        let a = replica(1);
        let mut c = ada();
        let mut h = a.create(&c).await.unwrap();
        c.title = "Countess".into();
        a.save(&mut h, &c).await.unwrap();
        a.create(&Contact {
            given_name: "Grace".into(),
            ..Contact::new(RecordId::from_bytes([3; 16]), NOW, member(1))
        })
        .await
        .unwrap();
        // A full disk: nothing changes, the old history and its outbox stay.
        a.storage().fail_writes(Some(StorageError::QuotaExceeded));
        let (fresh, anon) =
            anonymise_document(h.doc_mut(), &workspace(), NOW, member(1), session_actor(member(1), [8; 8])).unwrap();
        a.replace_epoch(&mut h, fresh, &anon.row()).await.unwrap_err();
        assert_eq!(a.storage().outbox(10).await.unwrap().len(), 3);
        assert_eq!(a.open::<Contact>(c.id, NOW).await.unwrap().1, c);
        a.storage().fail_writes(None);

        let (fresh, anon) =
            anonymise_document(h.doc_mut(), &workspace(), NOW, member(1), session_actor(member(1), [8; 8])).unwrap();
        a.replace_epoch(&mut h, fresh, &anon.row()).await.unwrap();
        let queued = a.storage().outbox(10).await.unwrap();
        let kinds: Vec<_> = queued.iter().map(|e| (e.id, e.kind)).collect();
        assert_eq!(
            kinds,
            [(RecordId::from_bytes([3; 16]), OutboxKind::Changes), (c.id, OutboxKind::Snapshot)],
            "Ada's changes are replaced by one snapshot; Grace's stay"
        );
        assert_eq!(queued[1].bytes, h.doc_mut().save(), "the snapshot is the new document");
        assert!(!holds(a.storage(), "Lovelace") && !holds(a.storage(), "Countess"));
    });
}

#[test]
fn a_replica_adopts_a_newer_epoch_and_its_offline_edit_of_the_old_one_is_dropped() {
    block_on(async {
        let (a, b) = (replica(1), replica(2));
        a.create(&ada()).await.unwrap();
        deliver(&b, &drain(&a).await, &mut HashMap::new()).await;

        // B edits Ada offline: queued, not yet pushed.
        let (mut hb, mut offline) = b.open::<Contact>(ada().id, NOW).await.unwrap();
        offline.title = "Offline title".into();
        b.save(&mut hb, &offline).await.unwrap();
        let b_offline = b.storage().outbox(10).await.unwrap();
        assert_eq!(b_offline.len(), 1);

        let from_a = anonymised_on_a(&a).await;
        assert_eq!(from_a.iter().map(|e| e.kind).collect::<Vec<_>>(), [OutboxKind::Snapshot]);

        // B keeps Ada open while the snapshot arrives.
        let mut hydrated = HashMap::from([(ada().id, hb)]);
        deliver(&b, &from_a, &mut hydrated).await;
        let held = hydrated.get_mut(&ada().id).unwrap();
        let on_b = Contact::from_doc(held.doc()).unwrap();
        assert_eq!(on_b.given_name, ANONYMISED_NAME);
        assert_eq!(on_b.title, "", "the offline edit of the old epoch is gone");
        assert!(!held.has_unsaved_changes(), "the adopted document is what storage holds");
        assert!(b.storage().outbox(10).await.unwrap().is_empty(), "B's unsent old-epoch change is dropped");
        let stored = b.storage().load(ada().id).await.unwrap().unwrap();
        assert_eq!((stored.chunks.len(), stored.snapshot.is_some()), (0, true));
        for gone in ["Lovelace", "Prefers", "Offline title"] {
            assert!(!stored_text(b.storage(), ada().id).await.contains(gone), "{gone} is still stored on B");
        }
        let row = b.storage().rows().await.unwrap().rows.into_iter().find(|r| r.id == ada().id).unwrap();
        assert_eq!(row.title, ANONYMISED_NAME);

        // B's change, had it been pushed before, reaches A (and B again) late:
        // dropped, nothing stored.
        let before_a = a.storage().load(ada().id).await.unwrap();
        deliver(&a, &b_offline, &mut HashMap::new()).await;
        deliver(&b, &b_offline, &mut hydrated).await;
        assert_eq!(a.storage().load(ada().id).await.unwrap(), before_a);
        assert_eq!(a.open::<Contact>(ada().id, NOW).await.unwrap().1.title, "");
        assert!(!stored_text(b.storage(), ada().id).await.contains("Offline title"));

        // Edits of the new epoch flow both ways.
        let (mut hb, mut later) = b.open::<Contact>(ada().id, NOW).await.unwrap();
        later.tags.insert("archived".into());
        b.save(&mut hb, &later).await.unwrap();
        deliver(&a, &drain(&b).await, &mut HashMap::new()).await;
        assert_eq!(a.open::<Contact>(ada().id, NOW).await.unwrap().1, later);
    });
}

#[test]
fn a_replica_that_never_had_the_record_takes_the_old_history_then_the_new_epoch() {
    block_on(async {
        let a = replica(1);
        a.create(&ada()).await.unwrap();
        let old = drain(&a).await;
        let new = anonymised_on_a(&a).await;
        // One page: the relay kept an old-epoch change after the snapshot's
        // cover (pushed concurrently), so both arrive.
        let c = replica(3);
        let page: Vec<OutboxEntry> = old.iter().chain(&new).chain(&old).cloned().collect();
        deliver(&c, &page, &mut HashMap::new()).await;
        let (_, on_c) = c.open::<Contact>(ada().id, NOW).await.unwrap();
        assert_eq!(on_c.given_name, ANONYMISED_NAME);
        assert!(!stored_text(c.storage(), ada().id).await.contains("Lovelace"));
    });
}

#[test]
fn replicas_that_anonymise_concurrently_converge_on_one_epoch() {
    block_on(async {
        let (a, b) = (replica(1), replica(2));
        a.create(&ada()).await.unwrap();
        deliver(&b, &drain(&a).await, &mut HashMap::new()).await;
        let from_a = anonymised_on_a(&a).await;
        let from_b = {
            let mut h = b.open_doc(ada().id, NOW).await.unwrap();
            let actor = session_actor(member(2), [0xdd; 8]);
            let (fresh, anon) = anonymise_document(h.doc_mut(), &workspace(), NOW, member(2), actor).unwrap();
            b.replace_epoch(&mut h, fresh, &anon.row()).await.unwrap();
            drain(&b).await
        };
        deliver(&a, &from_b, &mut HashMap::new()).await;
        deliver(&b, &from_a, &mut HashMap::new()).await;
        let mut ha = a.open_doc(ada().id, NOW).await.unwrap();
        let mut hb = b.open_doc(ada().id, NOW).await.unwrap();
        assert_eq!(ha.doc_mut().get_heads(), hb.doc_mut().get_heads(), "one epoch wins everywhere");
        assert_eq!(ha.doc_mut().get_changes(&[]).len(), 1, "and the other is not merged in");
    });
}

#[test]
fn a_failed_write_of_an_adoption_leaves_the_open_document_on_its_old_history() {
    block_on(async {
        let (a, b) = (replica(1), replica(2));
        a.create(&ada()).await.unwrap();
        deliver(&b, &drain(&a).await, &mut HashMap::new()).await;
        let from_a = anonymised_on_a(&a).await;
        let hb = b.open_doc(ada().id, NOW).await.unwrap();
        let mut hydrated = HashMap::from([(ada().id, hb)]);
        b.storage().fail_writes(Some(StorageError::QuotaExceeded));
        let page: Vec<(RecordId, &[u8])> = from_a.iter().map(|e| (e.id, e.bytes.as_slice())).collect();
        let err = b.apply_remote_many(&page, &mut hydrated, NOW).await.unwrap_err();
        assert_eq!(err, ApplyError::Storage(StorageError::QuotaExceeded));
        let held = hydrated.get_mut(&ada().id).unwrap();
        assert!(!held.has_unsaved_changes(), "memory matches storage: the old history");
        assert_eq!(Contact::from_doc(held.doc()).unwrap().family_name, "Lovelace");
        b.storage().fail_writes(None);
        deliver(&b, &from_a, &mut hydrated).await;
        assert_eq!(Contact::from_doc(hydrated[&ada().id].doc()).unwrap().given_name, ANONYMISED_NAME);
    });
}

#[test]
fn an_edit_of_the_old_epoch_is_refused_after_an_anonymisation() {
    block_on(async {
        let a = replica(1);
        let mut c = ada();
        a.create(&c).await.unwrap();
        // A form opens Ada (epoch 0), then she is anonymised.
        let (mut h, opened) = a.open::<Contact>(c.id, NOW).await.unwrap();
        let base = crate::form::Base { epoch: h.epoch(), heads: h.doc_mut().get_heads() };
        assert_eq!(base.epoch, 0);
        let (fresh, anon) =
            anonymise_document(h.doc_mut(), &workspace(), NOW, member(1), session_actor(member(1), [7; 8])).unwrap();
        a.replace_epoch(&mut h, fresh, &anon.row()).await.unwrap();
        assert_eq!(h.epoch(), 1);

        c = Contact { title: "Countess".into(), ..opened };
        assert_eq!(a.save_since(&mut h, &c, &base).await, Err(SaveError::Rewritten));
        let (_, now) = a.open::<Contact>(c.id, NOW).await.unwrap();
        assert_eq!(now.given_name, ANONYMISED_NAME);
        assert!(!holds(a.storage(), "Lovelace") && !holds(a.storage(), "Countess"));

        // An edit of the new epoch is written.
        let edited = Contact { title: "Reviewed".into(), ..now };
        let reopened = crate::form::Base { epoch: h.epoch(), heads: h.doc_mut().get_heads() };
        assert_eq!(reopened.epoch, 1);
        a.save_since(&mut h, &edited, &reopened).await.unwrap();
        assert_eq!(a.open::<Contact>(c.id, NOW).await.unwrap().1.title, "Reviewed");
    });
}

// --- privacy actions across an epoch ---------------------------------------

mod replay {
    //! No consent withdrawal and no restriction is lost to an anonymisation
    //! made concurrently elsewhere (`privacy::epoch::replay`).

    use std::collections::{BTreeMap, BTreeSet};

    use proptest::prelude::*;

    use super::*;
    use crate::consent::{
        ConsentAction, ConsentEvent, ConsentLedger, ConsentSource, LawfulBasis, NewConsentEvent, PurposeId,
    };
    use crate::ids::EventId;

    fn purposes() -> [PurposeId; 2] {
        [PurposeId::MARKETING_EMAIL.parse().unwrap(), PurposeId::PHONE_SMS.parse().unwrap()]
    }

    /// The restriction operations every replica wrote, as a causal model:
    /// each op and the ops it overwrote (those winning where it was written).
    #[derive(Debug, Clone, Default)]
    struct Ops(BTreeMap<u32, (bool, BTreeSet<u32>)>);

    impl Ops {
        fn winning(&self) -> BTreeSet<u32> {
            let overwritten: BTreeSet<u32> = self.0.values().flat_map(|(_, over)| over.iter().copied()).collect();
            self.0.keys().copied().filter(|k| !overwritten.contains(k)).collect()
        }
        fn restricted(&self) -> bool {
            self.winning().iter().any(|k| self.0[k].0)
        }
        fn merge(&mut self, other: &Ops) {
            self.0.extend(other.0.iter().map(|(k, v)| (*k, v.clone())));
        }
    }

    struct Node {
        repo: Repo<MemoryStorage>,
        member: MemberId,
        cursor: usize,
        /// What this replica knows of the restriction operations.
        ops: Ops,
    }

    /// The relay: an append-only log (entries a snapshot covers are kept:
    /// replicas see more old-epoch history, never less). Each entry carries
    /// the model of what its pusher knew.
    #[derive(Default)]
    struct Log(Vec<(OutboxEntry, Ops)>);

    struct World {
        nodes: Vec<Node>,
        log: Log,
        /// Every consent event ever recorded, as recorded.
        events: ConsentLedger,
        next: u32,
    }

    fn restricted_ops(h: &DocHandle) -> BTreeSet<String> {
        automerge::ReadDoc::get_all(h.doc(), &automerge::ROOT, "restricted")
            .unwrap()
            .into_iter()
            .map(|(_, id)| id.to_string())
            .collect()
    }

    impl World {
        async fn new(n: usize) -> Self {
            let nodes: Vec<Node> = (0..n)
                .map(|i| Node {
                    repo: replica(i as u8 + 1),
                    member: member(i as u8 + 1),
                    cursor: 0,
                    ops: Ops::default(),
                })
                .collect();
            let mut w = World { nodes, log: Log::default(), events: ConsentLedger::new(), next: 0 };
            w.nodes[0].repo.create(&ada()).await.unwrap();
            w.push(0).await;
            for r in 0..n {
                w.pull(r).await;
            }
            w
        }

        fn next(&mut self) -> u32 {
            self.next += 1;
            self.next
        }

        async fn consent(&mut self, r: usize, purpose: usize, withdraw: bool) {
            let n = self.next();
            let node = &self.nodes[r];
            let (mut h, mut c) = node.repo.open::<Contact>(ada().id, NOW).await.unwrap();
            let id = EventId::from_bytes(u128::from(n).to_be_bytes());
            let recorded = c
                .consent
                .record(NewConsentEvent {
                    id,
                    purpose: purposes()[purpose].clone(),
                    action: if withdraw { ConsentAction::Withdrawn } else { ConsentAction::Granted },
                    recorded_at: NOW,
                    lawful_basis: LawfulBasis::Consent,
                    source: ConsentSource::Call,
                    recorded_by: node.member,
                    note: format!("note {n}"),
                })
                .clone();
            node.repo.save(&mut h, &c).await.unwrap();
            self.events.insert(recorded);
        }

        async fn restrict(&mut self, r: usize, on: bool) {
            let k = self.next();
            let node = &mut self.nodes[r];
            let (mut h, mut c) = node.repo.open::<Contact>(ada().id, NOW).await.unwrap();
            let before = restricted_ops(&h);
            if on {
                c.restrict(NOW, node.member);
            } else {
                c.lift_restriction(NOW, node.member);
            }
            node.repo.save(&mut h, &c).await.unwrap();
            if restricted_ops(&h) != before {
                let over = node.ops.winning();
                node.ops.0.insert(k, (on, over));
            }
        }

        async fn anonymise(&mut self, r: usize) {
            let n = self.next();
            let node = &self.nodes[r];
            let mut h = node.repo.open_doc(ada().id, NOW).await.unwrap();
            let actor = session_actor(node.member, (u64::from(n) | 1 << 60).to_be_bytes());
            let (fresh, anon) = anonymise_document(h.doc_mut(), &workspace(), NOW, node.member, actor).unwrap();
            node.repo.replace_epoch(&mut h, fresh, &anon.row()).await.unwrap();
        }

        async fn push(&mut self, r: usize) {
            let node = &self.nodes[r];
            let entries = drain(&node.repo).await;
            self.log.0.extend(entries.into_iter().map(|e| (e, node.ops.clone())));
        }

        async fn pull(&mut self, r: usize) {
            let node = &mut self.nodes[r];
            let page: Vec<(RecordId, &[u8])> =
                self.log.0[node.cursor..].iter().map(|(e, _)| (e.id, e.bytes.as_slice())).collect();
            let applied = node.repo.apply_remote_many(&page, &mut HashMap::new(), NOW).await.unwrap();
            assert_eq!(applied.refused, None);
            for (_, ops) in &self.log.0[node.cursor..] {
                node.ops.merge(ops);
            }
            node.cursor = self.log.0.len();
        }

        /// Everyone pushes and pulls until nothing is left to push (bounded).
        async fn settle(&mut self) {
            for _ in 0..10 {
                for r in 0..self.nodes.len() {
                    self.push(r).await;
                }
                for r in 0..self.nodes.len() {
                    self.pull(r).await;
                }
                let mut queued = 0;
                for node in &self.nodes {
                    queued += node.repo.storage().outbox(usize::MAX).await.unwrap().len();
                }
                if queued == 0 {
                    return;
                }
            }
            panic!("replicas still pushing after 10 rounds");
        }

        async fn contact(&self, r: usize) -> (Contact, Vec<ChangeHash>) {
            let (mut h, c) = self.nodes[r].repo.open::<Contact>(ada().id, NOW).await.unwrap();
            (c, h.doc_mut().get_heads())
        }
    }

    #[derive(Debug, Clone)]
    enum Step {
        Consent { r: usize, purpose: usize, withdraw: bool },
        Restrict { r: usize, on: bool },
        Anonymise { r: usize },
        Push { r: usize },
        Pull { r: usize },
    }

    fn step(n: usize) -> impl Strategy<Value = Step> {
        prop_oneof![
            4 => (0..n, 0..2usize, any::<bool>()).prop_map(|(r, purpose, withdraw)| Step::Consent { r, purpose, withdraw }),
            2 => (0..n, any::<bool>()).prop_map(|(r, on)| Step::Restrict { r, on }),
            2 => (0..n).prop_map(|r| Step::Anonymise { r }),
            3 => (0..n).prop_map(|r| Step::Push { r }),
            3 => (0..n).prop_map(|r| Step::Pull { r }),
        ]
    }

    fn scenario() -> impl Strategy<Value = (usize, Vec<Step>)> {
        (2..=3usize).prop_flat_map(|n| (Just(n), prop::collection::vec(step(n), 1..30)))
    }

    async fn run(n: usize, steps: &[Step]) -> World {
        let mut w = World::new(n).await;
        for s in steps {
            match *s {
                Step::Consent { r, purpose, withdraw } => w.consent(r, purpose, withdraw).await,
                Step::Restrict { r, on } => w.restrict(r, on).await,
                Step::Anonymise { r } => w.anonymise(r).await,
                Step::Push { r } => w.push(r).await,
                Step::Pull { r } => w.pull(r).await,
            }
        }
        w.settle().await;
        w
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(crate::test_support::cases(64)))]

        /// Whatever anonymisations happen where and when, once every
        /// replica has synced: they hold the same contact; each purpose's
        /// consent status is the one the consent rule gives over every
        /// event ever recorded (latest in causal order wins, between
        /// concurrent events the least permissive); and a restriction no
        /// later lift overwrote holds.
        #[test]
        fn no_withdrawal_or_restriction_is_lost_to_concurrent_anonymisations((n, steps) in scenario()) {
            let w = block_on(run(n, &steps));
            let (first, heads) = block_on(w.contact(0));
            for r in 1..n {
                let (other, other_heads) = block_on(w.contact(r));
                prop_assert_eq!(&other, &first, "replica {} differs", r);
                prop_assert_eq!(&other_heads, &heads);
            }
            for purpose in purposes() {
                prop_assert_eq!(
                    first.consent.status(&purpose),
                    w.events.status(&purpose),
                    "consent for {} after {:?}", purpose, steps
                );
            }
            let mut all = Ops::default();
            for node in &w.nodes {
                all.merge(&node.ops);
            }
            if all.restricted() {
                prop_assert!(first.is_restricted(), "a restriction was lost after {:?}", steps);
            }
            if all.0.is_empty() {
                prop_assert!(!first.is_restricted());
            }
        }
    }

    fn event_of(c: &Contact, purpose: &PurposeId) -> Vec<ConsentEvent> {
        c.consent.events().filter(|e| &e.purpose == purpose).cloned().collect()
    }

    #[test]
    fn a_withdrawal_recorded_offline_while_another_device_anonymises_survives_on_every_replica() {
        block_on(async {
            let mut w = World::new(2).await;
            w.consent(0, 0, false).await;
            w.push(0).await;
            w.pull(1).await;
            // B withdraws offline; A anonymises having seen only the grant.
            w.consent(1, 0, true).await;
            w.anonymise(0).await;
            w.push(0).await;
            w.pull(1).await; // B adopts the new epoch and replays its withdrawal
            let (on_b, _) = w.contact(1).await;
            assert_eq!(on_b.given_name, ANONYMISED_NAME);
            assert_eq!(on_b.consent.status(&purposes()[0]), crate::consent::ConsentStatus::Withdrawn);
            assert!(event_of(&on_b, &purposes()[0]).iter().all(|e| e.note.is_empty()), "no note comes back");
            w.settle().await;
            let (on_a, _) = w.contact(0).await;
            assert_eq!(on_a.consent.status(&purpose_email()), crate::consent::ConsentStatus::Withdrawn);
            assert!(!stored_text(w.nodes[0].repo.storage(), ada().id).await.contains("note 2"));
        });
    }

    fn purpose_email() -> PurposeId {
        purposes()[0].clone()
    }

    #[test]
    fn a_withdrawal_pushed_while_another_device_anonymises_survives_though_the_anonymiser_drops_it() {
        block_on(async {
            let mut w = World::new(3).await;
            w.consent(0, 0, false).await;
            w.push(0).await;
            w.pull(1).await;
            w.pull(2).await;
            w.anonymise(0).await;
            // B's withdrawal reaches the relay before A's snapshot.
            w.consent(1, 0, true).await;
            w.push(1).await;
            w.push(0).await;
            w.pull(0).await; // A drops B's old-epoch change
            assert_eq!(w.contact(0).await.0.consent.status(&purpose_email()), crate::consent::ConsentStatus::Granted);
            w.settle().await;
            for r in 0..3 {
                assert_eq!(
                    w.contact(r).await.0.consent.status(&purpose_email()),
                    crate::consent::ConsentStatus::Withdrawn
                );
            }
        });
    }

    #[test]
    fn a_restriction_recorded_offline_survives_an_anonymisation_and_a_lift_the_anonymiser_had_not_seen_too() {
        block_on(async {
            let mut w = World::new(2).await;
            w.restrict(1, true).await;
            w.anonymise(0).await;
            w.settle().await;
            assert!(w.contact(0).await.0.is_restricted() && w.contact(1).await.0.is_restricted());

            // Now restricted everywhere: B lifts offline; A, having seen only
            // the restriction, anonymises again. B had seen all A had: its
            // lift is the latest and is replayed.
            w.restrict(1, false).await;
            w.anonymise(0).await;
            w.settle().await;
            let (on_a, _) = w.contact(0).await;
            assert!(on_a.anonymised_at.is_some());
            assert!(!on_a.is_restricted(), "B's lift came after everything A had seen");
            assert!(!w.contact(1).await.0.is_restricted());
        });
    }

    #[test]
    fn concurrent_anonymisations_keep_a_grant_made_after_a_withdrawal_both_had_seen() {
        // Either device's rewrite may win the tie-break: try both roles.
        for granter in 0..2 {
            block_on(async {
                let other = 1 - granter;
                let mut w = World::new(2).await;
                w.consent(other, 0, true).await;
                w.settle().await;
                // One grants after seeing the withdrawal, then grants again;
                // both anonymise concurrently.
                w.consent(granter, 0, false).await;
                w.consent(granter, 0, false).await;
                w.anonymise(granter).await;
                w.anonymise(other).await;
                w.settle().await;
                assert_eq!(w.events.status(&purpose_email()), crate::consent::ConsentStatus::Granted);
                for r in 0..2 {
                    assert_eq!(
                        w.contact(r).await.0.consent.status(&purpose_email()),
                        crate::consent::ConsentStatus::Granted,
                        "replica {r}, granter {granter}"
                    );
                }
            });
        }
    }
}

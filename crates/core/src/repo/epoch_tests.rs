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

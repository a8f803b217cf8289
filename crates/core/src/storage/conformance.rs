//! The storage conformance suite: the contract every [`Storage`] must keep.
//! It runs natively on [`super::memory::MemoryStorage`] and in headless
//! Chromium on the IndexedDB store, so both are held to the same rules.
//!
//! Each check takes a fresh, empty store from the caller's factory and
//! panics with a message naming the broken rule.

use std::future::Future;

use super::{Append, OutboxEntry, OutboxKind, Quarantined, Storage};
use crate::ids::RecordId;
use crate::record::{RecordKind, Row};
use crate::Timestamp;

fn id(n: u8) -> RecordId {
    RecordId::from_bytes([n; 16])
}

fn row(n: u8, title: &str) -> Row {
    Row {
        id: id(n),
        kind: RecordKind::Contact,
        title: title.to_owned(),
        subtitle: String::new(),
        columns: Default::default(),
        tags: vec!["t".into()],
        updated_at: Timestamp::from_millis(i64::from(n)),
        deleted: false,
    }
}

fn append(n: u8, chunk: &[u8], title: &str) -> Append {
    Append::chunk(id(n), chunk.to_vec(), Some(row(n, title)))
}

/// Runs every check, each on a fresh store.
pub async fn run_all<S, F, Fut>(mut fresh: F)
where
    S: Storage,
    F: FnMut() -> Fut,
    Fut: Future<Output = S>,
{
    a_new_store_is_empty(fresh().await).await;
    appended_chunks_load_in_order_with_their_row(fresh().await).await;
    a_batch_of_appends_lands_together(fresh().await).await;
    loading_many_documents_gives_each_as_loading_it_alone(fresh().await).await;
    compaction_replaces_chunks_with_one_snapshot(fresh().await).await;
    removal_deletes_every_byte_of_one_document_only(fresh().await).await;
    quarantine_entries_are_kept(fresh().await).await;
    metadata_round_trips_and_overwrites(fresh().await).await;
    outbox_entries_are_written_with_their_edit_and_kept_until_acknowledged(fresh().await).await;
    a_new_history_replaces_every_byte_of_the_old_one_and_queues_one_snapshot(fresh().await).await;
}

pub async fn a_new_store_is_empty<S: Storage>(s: S) {
    let rows = s.rows().await.expect("rows of an empty store");
    assert!(rows.rows.is_empty() && rows.unreadable.is_empty(), "a new store has no rows");
    assert_eq!(s.load(id(1)).await.expect("load"), None, "a new store has no documents");
    assert!(s.quarantined().await.expect("quarantined").is_empty());
    assert_eq!(s.get_meta("k").await.expect("meta"), None);
}

pub async fn appended_chunks_load_in_order_with_their_row<S: Storage>(s: S) {
    s.append(&[append(1, b"one", "Ada")]).await.expect("first append");
    s.append(&[append(1, b"two", "Ada L")]).await.expect("second append");
    s.append(&[append(1, b"three", "Ada Lovelace")]).await.expect("third append");
    let doc = s.load(id(1)).await.expect("load").expect("document stored");
    assert_eq!(doc.snapshot, None);
    assert_eq!(doc.chunks, vec![b"one".to_vec(), b"two".to_vec(), b"three".to_vec()], "chunks load in write order");
    let rows = s.rows().await.expect("rows").rows;
    assert_eq!(rows.len(), 1, "appending replaces the row instead of adding one");
    assert_eq!(rows[0].title, "Ada Lovelace", "the row is the latest one written");
    s.append(&[Append { row: None, ..append(1, b"four", "ignored") }]).await.expect("append without a row");
    let rows = s.rows().await.expect("rows").rows;
    assert_eq!(rows[0].title, "Ada Lovelace", "an append without a row keeps the row");
    assert_eq!(s.load(id(1)).await.expect("load").expect("stored").chunks.len(), 4);
}

pub async fn a_batch_of_appends_lands_together<S: Storage>(s: S) {
    s.append(&[append(1, b"a", "A"), append(2, b"b", "B"), append(3, b"c", "C")]).await.expect("batch");
    let mut titles: Vec<_> = s.rows().await.expect("rows").rows.into_iter().map(|r| r.title).collect();
    titles.sort();
    assert_eq!(titles, ["A", "B", "C"]);
    for n in 1..=3 {
        assert!(s.load(id(n)).await.expect("load").is_some(), "document {n} of the batch is stored");
    }
}

pub async fn loading_many_documents_gives_each_as_loading_it_alone<S: Storage>(s: S) {
    s.append(&[append(1, b"a1", "A"), append(2, b"b1", "B")]).await.expect("append");
    s.append(&[append(1, b"a2", "A")]).await.expect("append");
    s.compact(id(2), b"snap-b", &row(2, "B"), None).await.expect("compact");
    s.append(&[append(2, b"b2", "B")]).await.expect("append");
    let ids = [id(2), id(9), id(1), id(2)];
    let many = s.load_many(&ids).await.expect("load many");
    let mut alone = Vec::new();
    for one in ids {
        alone.push(s.load(one).await.expect("load"));
    }
    assert_eq!(many, alone, "load_many gives, in order, what load gives for each id");
    assert_eq!(many[1], None, "a document with nothing stored is None");
    assert_eq!(many[2].as_ref().map(|d| d.chunks.clone()), Some(vec![b"a1".to_vec(), b"a2".to_vec()]));
    assert!(s.load_many(&[]).await.expect("nothing").is_empty());
}

pub async fn compaction_replaces_chunks_with_one_snapshot<S: Storage>(s: S) {
    s.append(&[append(1, b"c1", "A")]).await.expect("append");
    s.append(&[append(1, b"c2", "A")]).await.expect("append");
    s.append(&[append(2, b"other", "B")]).await.expect("append");
    s.compact(id(1), b"snap", &row(1, "A compacted"), None).await.expect("compact");
    let doc = s.load(id(1)).await.expect("load").expect("stored");
    assert_eq!(doc.snapshot.as_deref(), Some(&b"snap"[..]), "the snapshot is stored");
    assert!(doc.chunks.is_empty(), "compaction removes the chunks it covers");
    s.append(&[append(1, b"c3", "A again")]).await.expect("append after compaction");
    let doc = s.load(id(1)).await.expect("load").expect("stored");
    assert_eq!(doc.chunks, vec![b"c3".to_vec()], "chunks after a compaction follow the snapshot");
    let other = s.load(id(2)).await.expect("load").expect("other doc");
    assert_eq!(other.chunks, vec![b"other".to_vec()], "compaction leaves other documents alone");
}

pub async fn removal_deletes_every_byte_of_one_document_only<S: Storage>(s: S) {
    s.append(&[append(1, b"c1", "A"), append(2, b"c2", "B")]).await.expect("append");
    s.compact(id(1), b"snap", &row(1, "A"), None).await.expect("compact");
    s.append(&[append(1, b"c3", "A")]).await.expect("append");
    s.quarantine(&Quarantined { key: id(1).to_string(), reason: "r".into(), at: Timestamp::default() })
        .await
        .expect("quarantine");
    s.remove(id(1)).await.expect("remove");
    assert_eq!(s.load(id(1)).await.expect("load"), None, "no snapshot or chunk survives removal");
    let rows = s.rows().await.expect("rows").rows;
    assert_eq!(rows.iter().map(|r| r.id).collect::<Vec<_>>(), vec![id(2)], "only the removed row goes");
    assert!(s.quarantined().await.expect("q").is_empty(), "removal clears the quarantine entry");
}

pub async fn quarantine_entries_are_kept<S: Storage>(s: S) {
    let q = Quarantined { key: "abc".into(), reason: "bad bytes".into(), at: Timestamp::from_millis(5) };
    s.quarantine(&q).await.expect("quarantine");
    assert_eq!(s.quarantined().await.expect("list"), vec![q]);
}

pub async fn metadata_round_trips_and_overwrites<S: Storage>(s: S) {
    s.put_meta("actor", b"one").await.expect("put");
    s.put_meta("actor", b"two").await.expect("overwrite");
    assert_eq!(s.get_meta("actor").await.expect("get").as_deref(), Some(&b"two"[..]));
}

pub async fn outbox_entries_are_written_with_their_edit_and_kept_until_acknowledged<S: Storage>(s: S) {
    let queued = |n: u8, chunk: &[u8]| Append { outbox: true, ..append(n, chunk, "x") };
    s.append(&[queued(1, b"a1"), append(2, b"remote", "y")]).await.expect("append");
    s.append(&[queued(2, b"b1")]).await.expect("append");
    s.compact(id(1), b"snap", &row(1, "x"), Some(b"a2")).await.expect("compact with outbox");
    let entries = s.outbox(10).await.expect("outbox");
    let got: Vec<(RecordId, Vec<u8>)> = entries.iter().map(|e| (e.id, e.bytes.clone())).collect();
    assert_eq!(
        got,
        vec![(id(1), b"a1".to_vec()), (id(2), b"b1".to_vec()), (id(1), b"a2".to_vec())],
        "only local edits are queued, oldest first, and compaction keeps them"
    );
    assert!(entries.windows(2).all(|w| w[0].seq < w[1].seq), "seqs increase");
    assert_eq!(s.outbox(1).await.expect("limit").len(), 1, "the limit is respected");

    s.ack_outbox(&[entries[0].seq, 999_999]).await.expect("ack");
    let left: Vec<OutboxEntry> = s.outbox(10).await.expect("outbox");
    assert_eq!(left, entries[1..].to_vec(), "acknowledged entries go, unknown seqs are ignored");

    s.enqueue(&[(id(3), b"c-full".to_vec())]).await.expect("enqueue");
    let left = s.outbox(10).await.expect("outbox");
    assert_eq!(
        left.last().map(|e| (e.id, e.bytes.clone())),
        Some((id(3), b"c-full".to_vec())),
        "enqueued bytes come last"
    );
    assert_eq!(s.load(id(3)).await.expect("load"), None, "enqueued bytes are not stored as chunks");

    s.remove(id(2)).await.expect("remove");
    s.remove(id(3)).await.expect("remove");
    let left = s.outbox(10).await.expect("outbox");
    assert_eq!(
        left.iter().map(|e| e.id).collect::<Vec<_>>(),
        vec![id(1)],
        "removal clears the record's outbox entries"
    );
}

pub async fn a_new_history_replaces_every_byte_of_the_old_one_and_queues_one_snapshot<S: Storage>(s: S) {
    let queued = |n: u8, chunk: &[u8]| Append { outbox: true, ..append(n, chunk, "Ada") };
    s.append(&[queued(1, b"old-1"), queued(2, b"other")]).await.expect("append");
    s.compact(id(1), b"old-snap", &row(1, "Ada"), Some(b"old-2")).await.expect("compact");
    s.append(&[queued(1, b"old-3")]).await.expect("append");
    let epoch = Append { replace: true, ..queued(1, b"epoch-1") };
    let epoch = Append { row: Some(row(1, "Anonymised")), ..epoch };
    s.append(&[epoch, Append { row: None, ..queued(1, b"after") }]).await.expect("replace");
    let doc = s.load(id(1)).await.expect("load").expect("stored");
    assert_eq!(doc.snapshot.as_deref(), Some(&b"epoch-1"[..]), "the new history is the snapshot");
    assert_eq!(doc.chunks, vec![b"after".to_vec()], "no old chunk survives; a later append of the batch follows");
    let mut titles: Vec<_> = s.rows().await.expect("rows").rows.into_iter().map(|r| r.title).collect();
    titles.sort();
    assert_eq!(titles, ["Ada", "Anonymised"], "the row is replaced, other records keep theirs");
    let entries = s.outbox(10).await.expect("outbox");
    let got: Vec<_> = entries.iter().map(|e| (e.id, e.bytes.clone(), e.kind)).collect();
    assert_eq!(
        got,
        vec![
            (id(2), b"other".to_vec(), OutboxKind::Changes),
            (id(1), b"epoch-1".to_vec(), OutboxKind::Snapshot),
            (id(1), b"after".to_vec(), OutboxKind::Changes),
        ],
        "the old history's entries leave the outbox, the new one is queued as a snapshot"
    );

    // Received from another replica: not queued, and a `None` row removes
    // the row of the history it replaces.
    let adopted = Append { replace: true, ..Append::chunk(id(2), b"theirs".to_vec(), None) };
    s.append(&[adopted]).await.expect("adopt");
    let doc = s.load(id(2)).await.expect("load").expect("stored");
    assert_eq!((doc.snapshot.as_deref(), doc.chunks.len()), (Some(&b"theirs"[..]), 0));
    assert!(s.rows().await.expect("rows").rows.iter().all(|r| r.id != id(2)), "the old row is gone");
    let left: Vec<_> = s.outbox(10).await.expect("outbox").into_iter().map(|e| e.id).collect();
    assert_eq!(left, vec![id(1), id(1)], "its unsent changes are dropped, nothing is queued");
}

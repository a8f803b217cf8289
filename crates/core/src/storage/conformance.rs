//! The storage conformance suite: the contract every [`Storage`] must keep.
//! It runs natively on [`super::memory::MemoryStorage`] and in headless
//! Chromium on the IndexedDB store, so both are held to the same rules.
//!
//! Each check takes a fresh, empty store from the caller's factory and
//! panics with a message naming the broken rule.

use std::future::Future;

use super::{Append, Quarantined, Storage};
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
    Append { id: id(n), chunk: chunk.to_vec(), row: row(n, title) }
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
    compaction_replaces_chunks_with_one_snapshot(fresh().await).await;
    removal_deletes_every_byte_of_one_document_only(fresh().await).await;
    quarantine_entries_are_kept(fresh().await).await;
    metadata_round_trips_and_overwrites(fresh().await).await;
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

pub async fn compaction_replaces_chunks_with_one_snapshot<S: Storage>(s: S) {
    s.append(&[append(1, b"c1", "A")]).await.expect("append");
    s.append(&[append(1, b"c2", "A")]).await.expect("append");
    s.append(&[append(2, b"other", "B")]).await.expect("append");
    s.compact(id(1), b"snap", &row(1, "A compacted")).await.expect("compact");
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
    s.compact(id(1), b"snap", &row(1, "A")).await.expect("compact");
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

//! Browser tests of the IndexedDB store, in headless Chromium:
//! `cargo test -p rapport-idb --target wasm32-unknown-unknown`.
//!
//! Every test opens its own randomly named database (tests of one binary
//! share an origin) and deletes it at the end.

use indexed_db_futures::database::Database;
use indexed_db_futures::prelude::*;
use indexed_db_futures::transaction::TransactionMode;
use indexed_db_futures::typed_array::Uint8ArraySlice;
use rapport_core::contact::{Contact, Labeled};
use rapport_core::ids::{EntryId, MemberId, RecordId};
use rapport_core::record::{Record, RecordKind, Row};
use rapport_core::repo::{session_actor, OpenError, Repo, COMPACT_AFTER_CHUNKS};
use rapport_core::storage::{encode_row, Append, OutboxKind, Quarantined, Storage, StorageError};
use rapport_core::Timestamp;
use rapport_idb::schema::{BY_RECORD, CHUNKS, OUTBOX, SCHEMA_VERSION, V2_NEXT_CHUNK_SEQ};
use rapport_idb::IdbStorage;
use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};

wasm_bindgen_test_configure!(run_in_browser);

const NOW: Timestamp = Timestamp::from_millis(1_700_000_000_000);

fn fresh_name() -> String {
    let random = (js_sys::Math::random() * 1e15) as u64;
    format!("rapport-test-{}-{random:x}", js_sys::Date::now() as u64)
}

async fn open(name: &str) -> IdbStorage {
    IdbStorage::open(name).await.expect("a fresh database opens")
}

fn me() -> MemberId {
    MemberId::from_bytes([0xaa; 16])
}

fn repo(storage: IdbStorage) -> Repo<IdbStorage> {
    Repo::new(storage, session_actor(me(), [7; 8]))
}

fn contact(n: u8, given: &str, family: &str, email: &str) -> Contact {
    let mut c = Contact::new(RecordId::from_bytes([n; 16]), NOW, me());
    c.given_name = given.into();
    c.family_name = family.into();
    let entry = EntryId::from_bytes([n.wrapping_add(100); 16]);
    c.emails = vec![Labeled { id: entry, label: "work".into(), value: email.into() }];
    c.primary_email = Some(entry);
    c
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    contains_bytes(haystack, needle.as_bytes())
}

fn contains_bytes(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn row(id: RecordId, title: String) -> Row {
    Row {
        id,
        kind: RecordKind::Contact,
        title,
        subtitle: String::new(),
        columns: Default::default(),
        tags: Vec::new(),
        updated_at: NOW,
        deleted: false,
    }
}

fn batch_id(n: u32, batch: u8) -> RecordId {
    let mut bytes = [batch; 16];
    bytes[12..].copy_from_slice(&n.to_be_bytes());
    RecordId::from_bytes(bytes)
}

#[wasm_bindgen_test]
async fn the_indexeddb_store_passes_the_core_storage_conformance_suite() {
    rapport_core::storage::conformance::run_all(|| async { open(&fresh_name()).await }).await;
}

#[wasm_bindgen_test]
async fn written_data_survives_closing_and_reopening_the_database() {
    let name = fresh_name();
    let mut ada = contact(1, "Ada", "Lovelace", "ada@example.org");
    let grace = contact(2, "Grace", "Hopper", "grace@example.org");
    {
        let repo = repo(open(&name).await);
        let mut handle = repo.create(&ada).await.expect("create Ada");
        ada.title = "Countess".into();
        repo.save(&mut handle, &ada).await.expect("edit Ada");
        repo.create(&grace).await.expect("create Grace");
        repo.storage().put_meta("workspace", b"w-1").await.expect("put meta");
    } // the connection closes here, as when the tab is reloaded

    let repo = repo(open(&name).await);
    let mut rows = repo.storage().rows().await.expect("rows").rows;
    rows.sort_by(|a, b| a.title.cmp(&b.title));
    assert_eq!(rows.iter().map(|r| r.title.as_str()).collect::<Vec<_>>(), ["Ada Lovelace", "Grace Hopper"]);
    assert_eq!(rows[0].subtitle, "Countess", "the row written with the last edit is the one stored");
    let stored = repo.storage().load(ada.id).await.expect("load").expect("Ada is stored");
    assert_eq!((stored.snapshot, stored.chunks.len()), (None, 2), "creation and edit are two chunks");
    let (_, loaded) = repo.open::<Contact>(ada.id, NOW).await.expect("Ada opens");
    assert_eq!(loaded, ada);
    let (_, loaded) = repo.open::<Contact>(grace.id, NOW).await.expect("Grace opens");
    assert_eq!(loaded, grace);
    assert_eq!(repo.storage().get_meta("workspace").await.expect("meta").as_deref(), Some(&b"w-1"[..]));
    drop(repo);
    IdbStorage::delete_database(&name).await.expect("delete");
}

#[wasm_bindgen_test]
async fn compaction_through_the_repo_leaves_a_snapshot_that_reopens_equal() {
    let name = fresh_name();
    let mut ada = contact(1, "Ada", "Lovelace", "ada@example.org");
    {
        let repo = repo(open(&name).await);
        let mut handle = repo.create(&ada).await.expect("create");
        for i in 0..(COMPACT_AFTER_CHUNKS * 2 + 3) {
            ada.title = format!("title {i}");
            repo.save(&mut handle, &ada).await.expect("edit");
        }
        let chunks = repo.storage().chunk_count(ada.id).await.expect("count");
        assert!(chunks < COMPACT_AFTER_CHUNKS, "compaction keeps chunks few, found {chunks}");
    }

    let repo = repo(open(&name).await);
    let stored = repo.storage().load(ada.id).await.expect("load").expect("stored");
    assert!(stored.snapshot.is_some(), "a snapshot is stored");
    assert!(stored.chunks.len() < COMPACT_AFTER_CHUNKS);
    let (_, loaded) = repo.open::<Contact>(ada.id, NOW).await.expect("opens after reopening");
    assert_eq!(loaded, ada);
    drop(repo);
    IdbStorage::delete_database(&name).await.expect("delete");
}

#[wasm_bindgen_test]
async fn a_corrupted_chunk_in_indexeddb_quarantines_only_that_record() {
    let name = fresh_name();
    let repo = repo(open(&name).await);
    let mut ada = contact(1, "Ada", "Lovelace", "ada@example.org");
    let grace = contact(2, "Grace", "Hopper", "grace@example.org");
    let mut handle = repo.create(&ada).await.expect("create Ada");
    repo.create(&grace).await.expect("create Grace");
    ada.title = "Countess".into();
    repo.save(&mut handle, &ada).await.expect("edit Ada");
    let corrupted = repo.storage().corrupt_last_chunk(ada.id, b"\x85\x6f\x4a\x83garbage").await.expect("corrupt");
    assert!(corrupted, "Ada has a chunk to corrupt");

    let err = repo.open::<Contact>(ada.id, NOW).await.expect_err("a corrupted record does not open");
    assert!(matches!(&err, OpenError::Corrupt { id, .. } if *id == ada.id), "{err:?}");
    let quarantined = repo.storage().quarantined().await.expect("quarantined");
    assert_eq!(quarantined.iter().map(|q| q.key.clone()).collect::<Vec<_>>(), [ada.id.to_string()]);
    assert_eq!(quarantined[0].at, NOW);
    let (_, loaded) = repo.open::<Contact>(grace.id, NOW).await.expect("another record still opens");
    assert_eq!(loaded, grace);
    assert_eq!(repo.storage().rows().await.expect("rows").rows.len(), 2, "the quarantined record keeps its row");
    drop(repo);
    IdbStorage::delete_database(&name).await.expect("delete");
}

#[wasm_bindgen_test]
async fn remove_leaves_no_byte_of_the_removed_record_in_any_object_store() {
    let name = fresh_name();
    let repo = repo(open(&name).await);
    let mut ada = contact(1, "Adalinda", "Quarrington", "adalinda.q@example.org");
    let grace = contact(2, "Grace", "Hopper", "grace@example.org");
    let mut handle = repo.create(&ada).await.expect("create Ada");
    repo.create(&grace).await.expect("create Grace");
    for i in 0..(COMPACT_AFTER_CHUNKS + 2) {
        ada.title = format!("Countess {i}");
        repo.save(&mut handle, &ada).await.expect("edit Ada");
    }
    let storage = repo.storage();
    let stored = storage.load(ada.id).await.expect("load").expect("stored");
    assert!(stored.snapshot.is_some() && !stored.chunks.is_empty(), "Ada has a snapshot and chunks");
    let entry = Quarantined { key: ada.id.to_string(), reason: "checked by hand".into(), at: NOW };
    storage.quarantine(&entry).await.expect("quarantine");
    let queued = storage.outbox(usize::MAX).await.expect("outbox");
    let ada_queued: Vec<Vec<u8>> = queued.iter().filter(|e| e.id == ada.id).map(|e| e.bytes.clone()).collect();
    assert!(ada_queued.len() > COMPACT_AFTER_CHUNKS, "every edit of Ada is queued, compacted ones included");
    let grace_queued: Vec<_> = queued.into_iter().filter(|e| e.id == grace.id).collect();
    assert_eq!(grace_queued.len(), 1, "Grace's creation is queued");
    let before = storage.raw_dump().await.expect("dump");
    for needle in ["Adalinda", "adalinda.q@example.org", &ada.id.to_string()] {
        assert!(contains(&before, needle), "the dump finds {needle:?} before removal");
    }
    assert!(ada_queued.iter().all(|bytes| contains_bytes(&before, bytes)), "the dump holds the outbox bytes");

    storage.remove(ada.id).await.expect("remove");

    let after = storage.raw_dump().await.expect("dump");
    for needle in ["Adalinda", "Quarrington", "adalinda.q@example.org", &ada.id.to_string()] {
        assert!(!contains(&after, needle), "{needle:?} is still stored after removal");
    }
    for (i, bytes) in ada_queued.iter().enumerate() {
        assert!(!contains_bytes(&after, bytes), "outbox entry {i} of Ada is still stored after removal");
    }
    assert_eq!(storage.outbox(usize::MAX).await.expect("outbox"), grace_queued, "Grace's outbox entry remains");
    assert_eq!(storage.load(ada.id).await.expect("load"), None);
    assert!(storage.quarantined().await.expect("quarantined").is_empty());
    assert!(contains(&after, "grace@example.org"), "other records remain");
    let rows = storage.rows().await.expect("rows").rows;
    assert_eq!(rows.iter().map(|r| r.id).collect::<Vec<_>>(), [grace.id]);
    let (_, loaded) = repo.open::<Contact>(grace.id, NOW).await.expect("Grace still opens");
    assert_eq!(loaded, grace);
    drop(repo);
    IdbStorage::delete_database(&name).await.expect("delete");
}

#[wasm_bindgen_test]
async fn a_thousand_row_batch_lands_in_one_transaction_and_rows_returns_them_all() {
    let name = fresh_name();
    let storage = open(&name).await;
    // Every other chunk is also queued for sync.
    let first: Vec<Append> = (0..1000)
        .map(|n| Append {
            id: batch_id(n, 1),
            chunk: n.to_be_bytes().to_vec(),
            row: Some(row(batch_id(n, 1), format!("A{n}"))),
            outbox: n % 2 == 0,
            replace: false,
        })
        .collect();
    storage.append(&first).await.expect("first batch");
    let load = storage.rows().await.expect("rows");
    assert_eq!((load.rows.len(), load.unreadable.len()), (1000, 0));
    let stored = storage.load(batch_id(999, 1)).await.expect("load").expect("the last record is stored");
    assert_eq!(stored.chunks, vec![999u32.to_be_bytes().to_vec()]);
    let queued = storage.outbox(usize::MAX).await.expect("outbox");
    assert_eq!(queued.len(), 500);
    assert!(
        queued.iter().zip((0..1000u32).step_by(2)).all(|(e, n)| e.id == batch_id(n, 1) && e.bytes == n.to_be_bytes()),
        "queued in write order"
    );
    assert!(queued.windows(2).all(|w| w[0].seq < w[1].seq), "seqs increase with write order");
    assert!(storage.outbox(0).await.expect("outbox").is_empty(), "a limit of 0 returns nothing");
    assert_eq!(storage.outbox(3).await.expect("outbox"), queued[..3].to_vec());

    // Exhaust the chunk store's key generator (a key of 2^53 leaves it no
    // number to give): the next batch fails at its first chunk, and none of
    // it lands, rows and outbox entries included.
    {
        let raw = Database::open(name.as_str()).await.expect("a second connection");
        let tx = raw.transaction(CHUNKS).with_mode(TransactionMode::Readwrite).build().expect("tx");
        let chunks = tx.object_store(CHUNKS).expect("chunks");
        let value = js_sys::Object::new();
        js_sys::Reflect::set(&value, &"id".into(), &"not-a-record".into()).expect("id");
        let put = chunks.put(value).with_key(9_007_199_254_740_992f64);
        drop(put.without_key_type().primitive().expect("put at the largest key"));
        tx.commit().await.expect("commit");
        raw.close();
    }
    let mut second: Vec<Append> = (0..999)
        .map(|n| Append {
            id: batch_id(n, 2),
            chunk: vec![2],
            row: Some(row(batch_id(n, 2), format!("B{n}"))),
            outbox: true,
            replace: false,
        })
        .collect();
    second.push(Append {
        id: batch_id(0, 1),
        chunk: vec![3],
        row: Some(row(batch_id(0, 1), "A0 again".into())),
        outbox: true,
        replace: false,
    });
    let err = storage.append(&second).await.expect_err("a batch whose chunks get no key fails");
    assert!(matches!(&err, StorageError::WriteFailed(m) if m.contains("ConstraintError")), "{err:?}");
    let titles: Vec<String> = storage.rows().await.expect("rows").rows.into_iter().map(|r| r.title).collect();
    assert_eq!(titles.len(), 1000, "no row of the failed batch was written");
    assert!(titles.iter().all(|t| t.starts_with('A') && t != "A0 again"));
    assert_eq!(storage.load(batch_id(0, 2)).await.expect("load"), None, "no chunk of the failed batch was written");
    assert_eq!(storage.outbox(usize::MAX).await.expect("outbox"), queued, "nothing of the failed batch was queued");
    drop(storage);
    IdbStorage::delete_database(&name).await.expect("delete");
}

#[wasm_bindgen_test]
async fn an_unreadable_row_is_reported_with_its_key_not_dropped() {
    let name = fresh_name();
    let repo = repo(open(&name).await);
    repo.create(&contact(1, "Ada", "Lovelace", "ada@example.org")).await.expect("create");
    repo.create(&contact(2, "Grace", "Hopper", "grace@example.org")).await.expect("create");
    let grace = RecordId::from_bytes([2; 16]);
    repo.storage().corrupt_row(grace, "{not json").await.expect("corrupt");
    let load = repo.storage().rows().await.expect("rows");
    assert_eq!(load.rows.len(), 1);
    assert_eq!(load.unreadable.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>(), [grace.to_string()]);
    drop(repo);
    IdbStorage::delete_database(&name).await.expect("delete");
}

#[wasm_bindgen_test]
async fn deleting_the_database_closes_open_connections_and_erases_everything() {
    let name = fresh_name();
    let storage = open(&name).await;
    storage.put_meta("k", b"v").await.expect("put");
    // `storage` stays open: its versionchange handler must let the delete through.
    IdbStorage::delete_database(&name).await.expect("delete while a connection is open");
    let err = storage.get_meta("k").await.expect_err("a closed connection reports an error");
    assert!(matches!(&err, StorageError::ReadFailed(m) if m.contains("reload")), "{err:?}");
    let reopened = open(&name).await;
    assert_eq!(reopened.get_meta("k").await.expect("get"), None, "a deleted database comes back empty");
    drop((storage, reopened));
    IdbStorage::delete_database(&name).await.expect("delete");
}

#[wasm_bindgen_test]
async fn the_storage_estimate_reports_usage_and_a_quota() {
    let (usage, quota) = IdbStorage::estimate().await.expect("estimate").expect("Chromium offers navigator.storage");
    assert!(quota > 0 && usage <= quota, "usage {usage}, quota {quota}");
}

#[wasm_bindgen_test]
async fn a_database_upgraded_by_a_newer_app_version_is_reported_unavailable() {
    let name = fresh_name();
    let newer = Database::open(name.as_str()).with_version(SCHEMA_VERSION + 1).await.expect("open at a newer version");
    newer.close();
    let err = IdbStorage::open(&name).await.expect_err("an older schema cannot open a newer one");
    assert!(matches!(&err, StorageError::Unavailable(m) if m.contains("newer version")), "{err:?}");
    IdbStorage::delete_database(&name).await.expect("delete");
}

#[wasm_bindgen_test]
async fn deleting_a_database_another_connection_holds_open_is_reported_and_finishes_later() {
    let name = fresh_name();
    let storage = open(&name).await;
    storage.put_meta("k", b"v").await.expect("put");
    drop(storage);
    // Like an older app version in another tab: it ignores `versionchange`.
    let holder = Database::open(name.as_str()).await.expect("a second connection");
    let err = IdbStorage::delete_database(&name).await.expect_err("the deletion is blocked");
    assert!(matches!(&err, StorageError::Unavailable(m) if m.contains("another tab")), "{err:?}");
    holder.close();
    // Requests on one database run in order: this open waits for the deletion.
    let reopened = open(&name).await;
    assert_eq!(reopened.get_meta("k").await.expect("get"), None, "the deletion went through");
    drop(reopened);
    IdbStorage::delete_database(&name).await.expect("delete");
}

/// Version 1's object stores: the schema before the outbox.
const VERSION_1_STORES: [&str; 5] = ["snapshots", "chunks", "rows", "quarantine", "meta"];

/// A chunk's key in versions 1 and 2: `"{record id}/{seq:016x}"`, `seq` from
/// the database-wide counter in meta.
fn v2_chunk_key(id: RecordId, seq: u64) -> String {
    format!("{id}/{seq:016x}")
}

/// An outbox entry's key in version 2: `"{seq:016x}"`.
fn v2_outbox_key(seq: u64) -> String {
    format!("{seq:016x}")
}

/// Puts `value` under a text key into `store` of a raw transaction.
fn raw_put<V: indexed_db_futures::primitive::TryToJs>(
    tx: &indexed_db_futures::transaction::Transaction<'_>,
    store: &str,
    key: &str,
    value: V,
) {
    let store = tx.object_store(store).expect("store");
    drop(store.put(value).with_key(key).without_key_type().primitive().expect("put"));
}

/// A real contact's chunks (created, then edited) and its row, written
/// through a scratch database.
async fn stored_bytes_of(mut c: Contact, edit: &str) -> (Contact, Vec<Vec<u8>>, String) {
    let scratch = fresh_name();
    let (chunks, row_json) = {
        let repo = repo(open(&scratch).await);
        let mut handle = repo.create(&c).await.expect("create");
        c.title = edit.into();
        repo.save(&mut handle, &c).await.expect("edit");
        let stored = repo.storage().load(c.id).await.expect("load").expect("stored");
        let rows = repo.storage().rows().await.expect("rows").rows;
        (stored.chunks, encode_row(&rows[0]))
    };
    IdbStorage::delete_database(&scratch).await.expect("delete scratch");
    (c, chunks, row_json)
}

#[wasm_bindgen_test]
async fn a_version_1_database_keeps_its_data_and_gains_the_outbox_on_upgrade() {
    // A real record's bytes, written through the store and then copied, as
    // version 1 laid them out, into a database created with version 1's stores.
    let (mut ada, chunks, row_json) =
        stored_bytes_of(contact(1, "Ada", "Lovelace", "ada@example.org"), "Countess").await;
    assert_eq!(chunks.len(), 2);

    let name = fresh_name();
    let v1 = Database::open(name.as_str())
        .with_version(1u32)
        .with_on_upgrade_needed(|_event, db| {
            for store in VERSION_1_STORES {
                db.create_object_store(store).build()?;
            }
            Ok(())
        })
        .await
        .expect("create a version-1 database");
    {
        let tx = v1.transaction(VERSION_1_STORES).with_mode(TransactionMode::Readwrite).build().expect("tx");
        let chunk_store = tx.object_store("chunks").expect("chunks");
        for (seq, chunk) in (0u64..).zip(&chunks) {
            let put = chunk_store.add(Uint8ArraySlice::new(chunk)).with_key(v2_chunk_key(ada.id, seq));
            drop(put.without_key_type().primitive().expect("add chunk"));
        }
        let rows = tx.object_store("rows").expect("rows");
        drop(rows.put(row_json.as_str()).with_key(ada.id.to_string()).without_key_type().primitive().expect("row"));
        let meta = tx.object_store("meta").expect("meta");
        let next = (chunks.len() as u64).to_be_bytes();
        let counter = meta.put(Uint8ArraySlice::new(&next)).with_key(V2_NEXT_CHUNK_SEQ);
        drop(counter.without_key_type().primitive().expect("counter"));
        drop(meta.put(Uint8ArraySlice::new(b"w-1")).with_key("workspace").without_key_type().primitive().expect("m"));
        let entry = Quarantined { key: "not-a-record".into(), reason: "kept".into(), at: NOW };
        let json = serde_json::to_string(&entry).expect("json");
        let quarantine = tx.object_store("quarantine").expect("quarantine");
        drop(quarantine.put(json).with_key("not-a-record").without_key_type().primitive().expect("quarantine"));
        tx.commit().await.expect("write version-1 data");
    }
    v1.close();

    let repo = repo(open(&name).await);
    let storage = repo.storage();
    let (mut handle, loaded) = repo.open::<Contact>(ada.id, NOW).await.expect("Ada opens after the upgrade");
    assert_eq!(loaded, ada, "the record's chunks were kept");
    let rows = storage.rows().await.expect("rows").rows;
    assert_eq!((rows.len(), rows[0].subtitle.as_str()), (1, "Countess"), "the row was kept");
    assert_eq!(storage.get_meta("workspace").await.expect("meta").as_deref(), Some(&b"w-1"[..]));
    let quarantined = storage.quarantined().await.expect("quarantined");
    assert_eq!(quarantined.iter().map(|q| q.key.as_str()).collect::<Vec<_>>(), ["not-a-record"]);
    assert!(storage.outbox(10).await.expect("outbox").is_empty(), "the new outbox starts empty");

    assert_eq!(storage.get_meta(V2_NEXT_CHUNK_SEQ).await.expect("meta"), None, "the old counter is gone");

    // The outbox works, and new chunks follow the old ones.
    ada.title = "Mathematician".into();
    repo.save(&mut handle, &ada).await.expect("edit after the upgrade");
    let queued = storage.outbox(10).await.expect("outbox");
    assert_eq!(queued.iter().map(|e| e.id).collect::<Vec<_>>(), [ada.id]);
    assert_eq!(storage.load(ada.id).await.expect("load").expect("stored").chunks.len(), 3);
    storage.remove(ada.id).await.expect("remove uses the new index");
    assert!(storage.outbox(10).await.expect("outbox").is_empty());
    drop(repo);

    let raw = Database::open(name.as_str()).await.expect("open at the current version");
    assert_eq!(raw.version(), f64::from(SCHEMA_VERSION));
    assert!(raw.object_store_names().any(|s| s == OUTBOX), "the outbox store exists on disk");
    raw.close();
    IdbStorage::delete_database(&name).await.expect("delete");
}

#[wasm_bindgen_test]
async fn a_version_2_database_keeps_every_chunk_outbox_entry_row_and_setting_on_upgrade() {
    let (mut ada, ada_chunks, ada_row) =
        stored_bytes_of(contact(1, "Ada", "Lovelace", "ada@example.org"), "Countess").await;
    let (grace, grace_chunks, grace_row) =
        stored_bytes_of(contact(2, "Grace", "Hopper", "grace@example.org"), "Rear admiral").await;
    // Grace was compacted: a snapshot and no chunk.
    let grace_snapshot = rapport_core::repo::hydrate(None, &grace_chunks).expect("hydrate").save();
    // Many more chunks than one copy request moves, three per record, their
    // seqs interleaved across records as the shared counter gave them out.
    let bulk: Vec<RecordId> = (0..450).map(|n| batch_id(n, 9)).collect();

    let name = fresh_name();
    let v2 = Database::open(name.as_str())
        .with_version(2u32)
        .with_on_upgrade_needed(|_event, db| {
            for store in VERSION_1_STORES {
                db.create_object_store(store).build()?;
            }
            db.create_object_store(OUTBOX).build()?.create_index(BY_RECORD, "id".into()).build()?;
            Ok(())
        })
        .await
        .expect("create a version-2 database");
    {
        let tx = v2
            .transaction(VERSION_1_STORES.into_iter().chain([OUTBOX]).collect::<Vec<_>>())
            .with_mode(TransactionMode::Readwrite)
            .build()
            .expect("tx");
        let mut seq = 0u64;
        for chunk in &ada_chunks {
            raw_put(&tx, CHUNKS, &v2_chunk_key(ada.id, seq), Uint8ArraySlice::new(chunk));
            seq += 1;
        }
        for k in 0..3u8 {
            for (n, id) in bulk.iter().enumerate() {
                raw_put(&tx, CHUNKS, &v2_chunk_key(*id, seq), Uint8ArraySlice::new(&[(n % 256) as u8, k]));
                seq += 1;
            }
        }
        raw_put(&tx, "snapshots", &grace.id.to_string(), Uint8ArraySlice::new(&grace_snapshot));
        raw_put(&tx, "rows", &ada.id.to_string(), ada_row.as_str());
        raw_put(&tx, "rows", &grace.id.to_string(), grace_row.as_str());
        // Three local changes waiting for the relay, oldest first.
        let queued = [(ada.id, b"a-1".to_vec()), (grace.id, b"g-1".to_vec()), (ada.id, b"a-2".to_vec())];
        for (id, bytes) in &queued {
            let value = js_sys::Object::new();
            js_sys::Reflect::set(&value, &"id".into(), &id.to_string().into()).expect("id");
            js_sys::Reflect::set(&value, &"bytes".into(), &js_sys::Uint8Array::from(bytes.as_slice())).expect("b");
            raw_put(&tx, OUTBOX, &v2_outbox_key(seq), wasm_bindgen::JsValue::from(value));
            seq += 1;
        }
        raw_put(&tx, "meta", V2_NEXT_CHUNK_SEQ, Uint8ArraySlice::new(&seq.to_be_bytes()));
        raw_put(&tx, "meta", "workspace_id", Uint8ArraySlice::new(b"w-1"));
        let entry = Quarantined { key: "not-a-record".into(), reason: "kept".into(), at: NOW };
        raw_put(&tx, "quarantine", "not-a-record", serde_json::to_string(&entry).expect("json").as_str());
        tx.commit().await.expect("write version-2 data");
    }
    v2.close();

    let repo = repo(open(&name).await);
    let storage = repo.storage();
    let (mut handle, loaded) = repo.open::<Contact>(ada.id, NOW).await.expect("Ada opens after the upgrade");
    assert_eq!(loaded, ada, "Ada's chunks were kept, in order");
    let (_, loaded) = repo.open::<Contact>(grace.id, NOW).await.expect("Grace opens after the upgrade");
    assert_eq!(loaded, grace, "Grace's snapshot was kept");
    for (n, id) in bulk.iter().enumerate() {
        let stored = storage.load(*id).await.expect("load").expect("a bulk record is stored");
        let want: Vec<Vec<u8>> = (0..3u8).map(|k| vec![(n % 256) as u8, k]).collect();
        assert_eq!((stored.snapshot, stored.chunks), (None, want), "record {n}: every chunk, in write order");
    }
    let mut rows = storage.rows().await.expect("rows").rows;
    rows.sort_by(|a, b| a.title.cmp(&b.title));
    assert_eq!(rows.iter().map(|r| r.subtitle.as_str()).collect::<Vec<_>>(), ["Countess", "Rear admiral"]);
    assert_eq!(storage.get_meta("workspace_id").await.expect("meta").as_deref(), Some(&b"w-1"[..]));
    assert_eq!(storage.get_meta(V2_NEXT_CHUNK_SEQ).await.expect("meta"), None, "the old counter is gone");
    let quarantined = storage.quarantined().await.expect("quarantined");
    assert_eq!(quarantined.iter().map(|q| q.key.as_str()).collect::<Vec<_>>(), ["not-a-record"]);
    let queued = storage.outbox(10).await.expect("outbox");
    let got: Vec<(RecordId, &[u8])> = queued.iter().map(|e| (e.id, e.bytes.as_slice())).collect();
    assert_eq!(got, [(ada.id, &b"a-1"[..]), (grace.id, b"g-1"), (ada.id, b"a-2")], "the outbox kept its order");
    assert!(queued.windows(2).all(|w| w[0].seq < w[1].seq));

    // After the upgrade: a new edit is queued after the old entries, its
    // chunk follows Ada's, acknowledgements and removal work on the new keys.
    ada.title = "Mathematician".into();
    repo.save(&mut handle, &ada).await.expect("edit after the upgrade");
    let after = storage.outbox(10).await.expect("outbox");
    assert_eq!((after.len(), after[..3].to_vec()), (4, queued.clone()));
    assert_eq!(after[3].id, ada.id);
    assert_eq!(storage.load(ada.id).await.expect("load").expect("stored").chunks.len(), 3);
    let (_, reopened) = repo.open::<Contact>(ada.id, NOW).await.expect("Ada reopens");
    assert_eq!(reopened, ada);
    storage.ack_outbox(&[queued[1].seq]).await.expect("ack");
    storage.remove(ada.id).await.expect("remove");
    assert_eq!(storage.load(ada.id).await.expect("load"), None);
    assert!(
        storage.outbox(10).await.expect("outbox").is_empty(),
        "Ada's entries went with her, Grace's was acknowledged"
    );
    drop(repo);

    let raw = Database::open(name.as_str()).await.expect("open at the current version");
    assert_eq!(raw.version(), f64::from(SCHEMA_VERSION));
    let mut stores: Vec<String> = raw.object_store_names().collect();
    stores.sort();
    assert_eq!(stores, ["chunks", "meta", "outbox", "quarantine", "rows", "snapshots"], "no store of the copy is left");
    raw.close();
    IdbStorage::delete_database(&name).await.expect("delete");
}

/// Version 3 to 4 rewrites nothing: outbox values written by version 3
/// (`{ id, bytes }`, no `kind`) come back as changes, in order, and a new
/// epoch queued afterwards is a snapshot entry that replaces them.
#[wasm_bindgen_test]
async fn a_version_3_database_keeps_its_outbox_as_changes_and_takes_snapshot_entries_on_upgrade() {
    let (ada, ada_chunks, ada_row) =
        stored_bytes_of(contact(1, "Ada", "Lovelace", "ada@example.org"), "Countess").await;
    let grace = RecordId::from_bytes([2; 16]);
    let name = fresh_name();
    let v3 = Database::open(name.as_str())
        .with_version(3u32)
        .with_on_upgrade_needed(|_event, db| {
            for store in ["snapshots", "rows", "quarantine", "meta"] {
                db.create_object_store(store).build()?;
            }
            for store in [CHUNKS, OUTBOX] {
                db.create_object_store(store)
                    .with_auto_increment(true)
                    .build()?
                    .create_index(BY_RECORD, "id".into())
                    .build()?;
            }
            Ok(())
        })
        .await
        .expect("create a version-3 database");
    {
        let tx =
            v3.transaction(["chunks", "rows", "outbox"]).with_mode(TransactionMode::Readwrite).build().expect("tx");
        let value = |id: RecordId, bytes: &[u8]| {
            let value = js_sys::Object::new();
            js_sys::Reflect::set(&value, &"id".into(), &id.to_string().into()).expect("id");
            js_sys::Reflect::set(&value, &"bytes".into(), &js_sys::Uint8Array::from(bytes)).expect("bytes");
            wasm_bindgen::JsValue::from(value)
        };
        let chunks = tx.object_store(CHUNKS).expect("chunks");
        for chunk in &ada_chunks {
            drop(chunks.add(value(ada.id, chunk)).primitive().expect("chunk"));
        }
        raw_put(&tx, "rows", &ada.id.to_string(), ada_row.as_str());
        let outbox = tx.object_store(OUTBOX).expect("outbox");
        for (id, bytes) in [(ada.id, &b"a-1"[..]), (grace, b"g-1"), (ada.id, b"a-2")] {
            drop(outbox.add(value(id, bytes)).primitive().expect("outbox entry"));
        }
        tx.commit().await.expect("write version-3 data");
    }
    v3.close();

    let repo = repo(open(&name).await);
    let storage = repo.storage();
    let (mut handle, loaded) = repo.open::<Contact>(ada.id, NOW).await.expect("Ada opens after the upgrade");
    assert_eq!(loaded, ada);
    let queued = storage.outbox(10).await.expect("outbox");
    let got: Vec<(RecordId, &[u8], OutboxKind)> = queued.iter().map(|e| (e.id, e.bytes.as_slice(), e.kind)).collect();
    assert_eq!(
        got,
        [
            (ada.id, &b"a-1"[..], OutboxKind::Changes),
            (grace, b"g-1", OutboxKind::Changes),
            (ada.id, b"a-2", OutboxKind::Changes)
        ],
        "version-3 entries are changes, in order"
    );
    let ws = rapport_core::workspace::Workspace::new(RecordId::from_bytes([9; 16]), "Acme", me(), "Sam", NOW);
    let actor = session_actor(me(), [0xee; 8]);
    let (fresh, anonymised) =
        rapport_core::privacy::retention::anonymise_document(handle.doc_mut(), &ws, NOW, me(), actor)
            .expect("anonymise");
    repo.replace_epoch(&mut handle, fresh, &anonymised.row()).await.expect("a new epoch");
    let queued = storage.outbox(10).await.expect("outbox");
    let got: Vec<(RecordId, OutboxKind)> = queued.iter().map(|e| (e.id, e.kind)).collect();
    assert_eq!(
        got,
        [(grace, OutboxKind::Changes), (ada.id, OutboxKind::Snapshot)],
        "Ada's changes gave way to one snapshot"
    );
    let stored = storage.load(ada.id).await.expect("load").expect("stored");
    assert!(stored.chunks.is_empty() && stored.snapshot.is_some());
    let dump = storage.raw_dump().await.expect("dump");
    for gone in ["Lovelace", "ada@example.org", "Countess"] {
        assert!(!contains(&dump, gone), "{gone:?} is still stored after the new epoch");
    }
    drop(repo);

    let raw = Database::open(name.as_str()).await.expect("open at the current version");
    assert_eq!(raw.version(), f64::from(SCHEMA_VERSION));
    raw.close();
    IdbStorage::delete_database(&name).await.expect("delete");
}

#[wasm_bindgen_test]
async fn an_outbox_store_without_its_index_is_reported_unavailable() {
    let name = fresh_name();
    let foreign = Database::open(name.as_str())
        .with_version(SCHEMA_VERSION)
        .with_on_upgrade_needed(|_event, db| {
            for store in VERSION_1_STORES.into_iter().chain([OUTBOX]) {
                db.create_object_store(store).build()?;
            }
            Ok(())
        })
        .await
        .expect("create a database with a bare outbox store");
    foreign.close();
    let err = IdbStorage::open(&name).await.expect_err("the index is missing");
    assert!(matches!(&err, StorageError::Unavailable(m) if m.contains(BY_RECORD)), "{err:?}");
    IdbStorage::delete_database(&name).await.expect("delete");
}

/// `rows()` reads many rows joined into a few strings (one crossing into wasm
/// per slice of rows): every kind of text comes back unchanged, across slice
/// boundaries, and a value that is not a row still sends the read down the
/// careful path that names it.
#[wasm_bindgen_test]
async fn thousands_of_rows_with_any_text_come_back_unchanged() {
    let name = fresh_name();
    let storage = open(&name).await;
    let titles = ["José Núñez", "line\nbreak", "tab\tand \"quotes\"", "emoji 🦀", "back\\slash", "", "{\"json\":1}"];
    let rows: Vec<Row> = (0..9000u32)
        .map(|n| {
            let mut r = row(batch_id(n, 3), format!("{} {n}", titles[n as usize % titles.len()]));
            r.tags = vec![format!("t{}", n % 5)];
            r.columns.insert("email".into(), format!("p{n}@example.org"));
            r
        })
        .collect();
    let appends: Vec<Append> = rows.iter().map(|r| Append::chunk(r.id, vec![1], Some(r.clone()))).collect();
    storage.append(&appends).await.expect("append");
    let mut loaded = storage.rows().await.expect("rows");
    assert!(loaded.unreadable.is_empty());
    loaded.rows.sort_by_key(|r| r.id);
    assert_eq!(loaded.rows, rows);

    // A stored value that is text but not one row.
    storage.corrupt_row(batch_id(4500, 3), "{\"not\":\"a row\"}\n{}").await.expect("corrupt");
    let load = storage.rows().await.expect("rows");
    assert_eq!(load.rows.len(), 8999);
    assert_eq!(load.unreadable.len(), 1);
    assert_eq!(load.unreadable[0].0, batch_id(4500, 3).to_string());
    drop(storage);
    IdbStorage::delete_database(&name).await.expect("delete");
}

/// More rows than one read request takes: the chunks follow each other by
/// key with nothing skipped or repeated, and a bad row in a later chunk
/// still sends the read down the careful path.
#[wasm_bindgen_test]
async fn rows_read_in_several_chunks_come_back_complete() {
    let name = fresh_name();
    let storage = open(&name).await;
    let rows: Vec<Row> = (0..35_000u32).map(|n| row(batch_id(n, 4), format!("r{n}"))).collect();
    for chunk in rows.chunks(5000) {
        let appends: Vec<Append> = chunk.iter().map(|r| Append::chunk(r.id, vec![1], Some(r.clone()))).collect();
        storage.append(&appends).await.expect("append");
    }
    let mut loaded = storage.rows().await.expect("rows");
    assert!(loaded.unreadable.is_empty());
    loaded.rows.sort_by_key(|r| r.id);
    assert_eq!(loaded.rows, rows);

    storage.corrupt_row(batch_id(30_000, 4), "not a row").await.expect("corrupt");
    let load = storage.rows().await.expect("rows");
    assert_eq!((load.rows.len(), load.unreadable.len()), (34_999, 1));
    assert_eq!(load.unreadable[0].0, batch_id(30_000, 4).to_string());
    drop(storage);
    IdbStorage::delete_database(&name).await.expect("delete");
}

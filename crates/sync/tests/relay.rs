//! Clients with their own repositories syncing through the real relay,
//! in-process on port 0 over a temporary directory, over real WebSockets.

mod support;

use std::future::Future;
use std::time::Duration;

use rapport_core::consent::{ConsentAction, ConsentStatus};
use rapport_core::contact::Contact;
use rapport_core::ids::RecordId;
use rapport_protocol::{ClientMessage, Seq, WorkspaceSecret};
use rapport_sync::{SyncConfig, SyncProblem, SyncStatus};
use support::ws::{converge, Client, TestRelay};
use support::{
    anonymise_contact, consent, create_contact, create_workspace, edit_contact, labeled, marketing, new_repo,
    outbox_len, read_contact, row_count, T0,
};

const ADA: RecordId = RecordId::from_bytes([0xad; 16]);
const GRACE: RecordId = RecordId::from_bytes([0x67; 16]);
const WORKSPACE: RecordId = RecordId::from_bytes([0x05; 16]);

/// Runs a test on one thread, as in the browser.
fn run(test: impl Future<Output = ()>) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    tokio::task::LocalSet::new().block_on(&runtime, test);
}

fn relay_dir() -> tempfile::TempDir {
    tempfile::tempdir().expect("temporary data dir")
}

fn ada(c: &mut Contact) {
    c.given_name = "Zebulon".into();
    c.family_name = "Quartermaine".into();
    c.emails.push(labeled(1, 1, "work", "zebulon.quartermaine@example.test"));
    c.phones.push(labeled(1, 2, "mobile", "+44 20 7946 0958"));
}

fn grace(c: &mut Contact) {
    c.given_name = "Grace".into();
    c.family_name = "Hopper".into();
    c.emails.push(labeled(1, 3, "work", "grace.hopper@example.test"));
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    contains_bytes(haystack, needle.as_bytes())
}

fn contains_bytes(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Ada's name, email and phone as `ada` writes them, and B's notes on her.
const ADA_SECRETS: [&str; 5] =
    ["Zebulon", "Quartermaine", "zebulon.quartermaine@example.test", "+44 20 7946 0958", "Met Zebulon offline"];

/// Two devices sharing a workspace with Ada and Grace, both up to date.
async fn two_devices_with_ada_and_grace(relay: &TestRelay, seed: u8) -> (Client, Client) {
    let config = SyncConfig::create(relay.url.clone(), [seed; 48]).expect("config");
    let mut a = Client::new("A", 1, config.clone()).await;
    let mut b = Client::new("B", 2, SyncConfig { created_here: false, ..config }).await;
    create_workspace(&a.repo, WORKSPACE, 1).await;
    create_contact(&a.repo, ADA, 1, ada).await;
    create_contact(&a.repo, GRACE, 1, grace).await;
    a.edited().await;
    a.sync().await;
    b.sync().await;
    assert_eq!(read_contact(&b.repo, ADA).await.family_name, "Quartermaine");
    (a, b)
}

/// Nothing of Ada anywhere: not in either device's storage, not in the
/// relay's files (neither her data nor her document's tag), and a device
/// that joins afterwards receives nothing of her. Grace is intact.
async fn assert_ada_is_gone_and_grace_intact(relay: TestRelay, dir: &std::path::Path, a: &Client, b: &Client) {
    for client in [a, b] {
        assert!(!client.has(ADA), "{} holds Ada's document", client.name);
        assert!(client.tombstones.borrow().is_erased(ADA), "{} knows of the erasure", client.name);
        assert_eq!(outbox_len(&client.repo).await, 0);
        let stored = client.repo.storage().raw_bytes();
        for secret in ADA_SECRETS {
            assert!(!contains(&stored, secret), "{} still stores {secret:?}", client.name);
        }
        assert!(contains(&stored, "grace.hopper@example.test"), "{} keeps Grace", client.name);
        assert_eq!(read_contact(&client.repo, GRACE).await.family_name, "Hopper");
        assert!(client.driver.relay_erased().contains(&ADA), "{} had the relay confirm it", client.name);
    }
    assert_eq!(read_contact(&a.repo, GRACE).await, read_contact(&b.repo, GRACE).await);

    let mut c = Client::new("C", 3, SyncConfig { created_here: false, ..a.config.clone() }).await;
    c.sync().await;
    assert!(!c.applied().contains(&ADA), "the relay still serves Ada's changes: {:?}", c.applied());
    assert_eq!(read_contact(&c.repo, GRACE).await.family_name, "Hopper");
    assert!(c.tombstones.borrow().is_erased(ADA));

    let tag = a.config.keys().doc_tag(&ADA.to_string());
    relay.shutdown().await;
    let stored = relay_bytes(dir);
    assert!(contains_bytes(&stored, a.config.keys().doc_tag(&GRACE.to_string()).as_bytes()), "the control");
    assert!(!contains_bytes(&stored, tag.as_bytes()), "the relay's files keep a trace of Ada's document");
    for secret in ADA_SECRETS {
        assert!(!contains(&stored, secret), "the relay's files hold {secret:?}");
    }
}

#[test]
fn an_erased_contact_leaves_both_devices_and_the_relay_and_offline_edits_of_it_are_never_pushed() {
    run(async {
        let dir = relay_dir();
        let relay = TestRelay::start(dir.path().to_path_buf()).await;
        let (mut a, mut b) = two_devices_with_ada_and_grace(&relay, 21).await;

        // B works offline on Ada.
        b.go_offline().await;
        edit_contact(&b.repo, ADA, |x| {
            x.title = "Countess".into();
            x.notes = "Met Zebulon offline".into();
        })
        .await;
        b.edited().await;
        assert_eq!(outbox_len(&b.repo).await, 1);

        // A erases Ada, online.
        a.erase(WORKSPACE, ADA).await;
        assert!(!a.has(ADA));
        a.run_until("the relay confirmed", |c| c.driver.relay_erased().contains(&ADA)).await;
        a.run_until("A is up to date", |c| c.status() == SyncStatus::UpToDate).await;

        // B reconnects: it pulls (and learns of the tombstone) before it
        // pushes, so its edits of Ada never leave.
        b.sync().await;
        converge(&mut [&mut a, &mut b]).await;
        assert!(!b.pushed_records().contains(&ADA), "B pushed Ada: {:?}", b.pushed_records());
        assert!(b.applied().contains(&WORKSPACE));
        assert_ada_is_gone_and_grace_intact(relay, dir.path(), &a, &b).await;
    });
}

#[test]
fn edits_pushed_before_their_author_learned_of_the_erasure_are_refused_and_deleted_again() {
    run(async {
        let dir = relay_dir();
        let relay = TestRelay::start(dir.path().to_path_buf()).await;
        let (mut a, mut b) = two_devices_with_ada_and_grace(&relay, 22).await;

        // A erases Ada while offline; B, online, edits her and pushes.
        a.go_offline().await;
        a.erase(WORKSPACE, ADA).await;
        assert_eq!(a.driver.erasing(), std::collections::BTreeSet::from([ADA]), "owed until connected");
        edit_contact(&b.repo, ADA, |x| x.notes = "Met Zebulon offline".into()).await;
        b.edited().await;
        b.run_until("pushed", |c| c.status() == SyncStatus::UpToDate).await;
        assert!(b.pushed_records().contains(&ADA));

        // A comes back: it refuses B's edit (never stores it) and has the
        // relay delete Ada again; B learns of the tombstone and purges.
        let before = a.applied().len();
        a.sync().await;
        converge(&mut [&mut a, &mut b]).await;
        assert!(!a.applied()[before..].contains(&ADA), "A's applier was handed Ada's change");
        assert!(!a.has(ADA));
        let deletes = a
            .driver
            .transport()
            .sent
            .borrow()
            .iter()
            .filter(|m| matches!(m, ClientMessage::DeleteDocument { .. }))
            .count();
        assert_eq!(deletes, 2, "the erasure's delete, and one for the edit that came back");
        assert_ada_is_gone_and_grace_intact(relay, dir.path(), &a, &b).await;
    });
}

/// Every entry the relay holds for the workspace, decrypted with its key:
/// the record and its Automerge bytes inflated (`save_nocompress`), so a
/// search sees every value they hold.
async fn relay_plaintexts(dir: &std::path::Path, config: &SyncConfig) -> Vec<(RecordId, Vec<u8>)> {
    use rapport_relay::store::Store;
    let store = rapport_relay::store::sqlite::SqliteStore::open(dir).expect("open the relay's store");
    let keys = config.keys();
    let page = store.pull(keys.workspace(), Seq::ZERO, 100_000, usize::MAX).await.expect("pull everything");
    assert!(!page.more);
    page.entries
        .iter()
        .map(|entry| {
            let (record, bytes) = rapport_sync::plaintext::open_envelope(&keys, &entry.envelope).expect("decrypt");
            let mut doc = rapport_core::repo::hydrate(None, &[bytes]).expect("automerge bytes");
            (record, doc.save_nocompress())
        })
        .collect()
}

#[test]
fn an_anonymised_contact_replaces_its_history_on_every_device_and_the_relay_and_an_offline_edit_of_it_is_dropped() {
    run(async {
        let dir = relay_dir();
        let relay = TestRelay::start(dir.path().to_path_buf()).await;
        let (mut a, mut b) = two_devices_with_ada_and_grace(&relay, 23).await;
        // The ciphertext of Ada's old envelopes, as the relay stored them.
        let ada_tag = a.config.keys().doc_tag(&ADA.to_string());
        let old_ciphertexts: Vec<Vec<u8>> = a
            .driver
            .transport()
            .sent
            .borrow()
            .iter()
            .flat_map(|m| match m {
                ClientMessage::Push { envelopes, .. } => envelopes.clone(),
                _ => Vec::new(),
            })
            .filter(|e| e.doc_tag == ada_tag)
            .map(|e| e.ciphertext)
            .collect();
        assert!(!old_ciphertexts.is_empty());

        // B works offline on Ada.
        b.go_offline().await;
        edit_contact(&b.repo, ADA, |x| {
            x.title = "Countess".into();
            x.notes = "Met Zebulon offline".into();
        })
        .await;
        b.edited().await;
        assert_eq!(outbox_len(&b.repo).await, 1);

        // A anonymises Ada and syncs: one snapshot replaces her envelopes.
        let anonymised = anonymise_contact(&a.repo, WORKSPACE, ADA, 1).await;
        a.edited().await;
        a.run_until("the snapshot is sent", |c| {
            c.driver.transport().sent.borrow().iter().any(|m| matches!(m, ClientMessage::ReplaceWithSnapshot { .. }))
        })
        .await;
        a.run_until("A is up to date", |c| c.status() == SyncStatus::UpToDate).await;
        assert_eq!(outbox_len(&a.repo).await, 0, "acknowledged once stored");

        // B comes back: it pulls the new epoch first, adopts it and drops
        // its offline edit of the old one, which never leaves.
        b.sync().await;
        converge(&mut [&mut a, &mut b]).await;
        assert!(!b.pushed_records().contains(&ADA), "B pushed its old-epoch edit: {:?}", b.pushed_records());
        let mut c = Client::new("C", 3, SyncConfig { created_here: false, ..a.config.clone() }).await;
        c.sync().await;
        for client in [&a, &b, &c] {
            let ada = read_contact(&client.repo, ADA).await;
            assert_eq!(ada, anonymised, "{} holds the anonymised contact", client.name);
            assert_ne!(ada.title, "Countess", "{} got B's offline edit back", client.name);
            let mut handle = client.repo.open_doc(ADA, T0).await.expect("open");
            let text = handle.doc_mut().save_nocompress();
            let stored = client.repo.storage().raw_bytes();
            for secret in ADA_SECRETS.iter().chain(&["Countess"]) {
                assert!(!contains(&text, secret), "{}'s document holds {secret:?}", client.name);
                assert!(!contains(&stored, secret), "{}'s storage holds {secret:?}", client.name);
            }
            assert_eq!(read_contact(&client.repo, GRACE).await.family_name, "Hopper", "{} keeps Grace", client.name);
            assert_eq!(outbox_len(&client.repo).await, 0);
        }

        relay.shutdown().await;
        let held = relay_plaintexts(dir.path(), &a.config).await;
        assert!(
            held.iter().any(|(r, bytes)| *r == GRACE && contains(bytes, "grace.hopper@example.test")),
            "the control"
        );
        let of_ada: Vec<&Vec<u8>> = held.iter().filter(|(r, _)| *r == ADA).map(|(_, b)| b).collect();
        assert_eq!(of_ada.len(), 1, "one snapshot is all the relay keeps of Ada");
        for secret in ADA_SECRETS.iter().chain(&["Countess"]) {
            assert!(!contains(of_ada[0], secret), "the relay's copy of Ada holds {secret:?}");
        }
        let files = relay_bytes(dir.path());
        for old in &old_ciphertexts {
            assert!(!contains_bytes(&files, old), "an old envelope of Ada is still in the relay's files");
        }
    });
}

#[test]
fn a_contact_created_before_sync_reaches_a_device_that_joins_with_the_invite() {
    run(async {
        let dir = relay_dir();
        let relay = TestRelay::start(dir.path().to_path_buf()).await;
        let config = SyncConfig::create(relay.url.clone(), [11; 48]).expect("config");
        let repo = new_repo(1, 0);
        let created = create_contact(&repo, ADA, 1, ada).await;
        let mut a = Client::with_repo("A", 1, config.clone(), repo, 0).await;
        a.sync().await;

        let invite = config.invite_url("https://app.example/crm/").expect("invite");
        let mut b = Client::new("B", 2, SyncConfig::join(&invite).expect("join")).await;
        b.sync().await;
        assert_eq!(read_contact(&b.repo, ADA).await, created);
        assert_eq!(row_count(&b.repo).await, 1);
        assert!(b.driver.host().seen.rows.borrow().iter().any(|r| r.id == ADA), "the UI hears of the new row");
        assert!(b.driver.cursor() > Seq::ZERO);
        assert_eq!(b.saved_cursor().await, b.driver.cursor(), "the cursor is persisted");
        relay.shutdown().await;
    });
}

#[test]
fn offline_edits_on_three_devices_converge_with_a_concurrent_withdrawal_winning() {
    run(async {
        let dir = relay_dir();
        let relay = TestRelay::start(dir.path().to_path_buf()).await;
        let config = SyncConfig::create(relay.url.clone(), [12; 48]).expect("config");
        let join = || SyncConfig::join(&config.invite().expect("invite").to_fragment()).expect("join");
        let mut a = Client::new("A", 1, config.clone()).await;
        let mut b = Client::new("B", 2, join()).await;
        let mut c = Client::new("C", 3, join()).await;
        create_contact(&a.repo, ADA, 1, ada).await;
        a.edited().await;
        a.sync().await;
        b.sync().await;
        c.sync().await;
        for client in [&mut a, &mut b, &mut c] {
            client.go_offline().await;
        }

        // Offline: different fields, the same field, concurrent consent.
        edit_contact(&a.repo, ADA, |x| {
            x.title = "Countess".into();
            x.given_name = "Augusta".into();
            x.consent.record(consent(1, 1, ConsentAction::Granted));
        })
        .await;
        edit_contact(&b.repo, ADA, |x| {
            x.company_name = "Analytical Engines".into();
            x.given_name = "Ada".into();
            x.consent.record(consent(2, 1, ConsentAction::Withdrawn));
        })
        .await;
        edit_contact(&c.repo, ADA, |x| x.emails.push(labeled(3, 1, "home", "ada@home.example"))).await;
        for client in [&mut a, &mut b, &mut c] {
            client.edited().await;
            assert_eq!(client.status(), SyncStatus::Offline);
        }

        a.sync().await;
        b.sync().await;
        c.sync().await;
        converge(&mut [&mut a, &mut b, &mut c]).await;

        let merged = read_contact(&a.repo, ADA).await;
        for client in [&b, &c] {
            assert_eq!(read_contact(&client.repo, ADA).await, merged, "{} matches A", client.name);
        }
        assert_eq!(merged.title, "Countess");
        assert_eq!(merged.company_name, "Analytical Engines");
        assert_eq!(merged.emails.len(), 2);
        assert!(["Augusta", "Ada"].contains(&merged.given_name.as_str()), "{}", merged.given_name);
        assert_eq!(merged.consent.status(&marketing()), ConsentStatus::Withdrawn, "the withdrawal wins");
        for client in [&a, &b, &c] {
            let doc = client.repo.open_doc(ADA, T0).await.expect("doc");
            let ws = rapport_core::workspace::Workspace::new(ADA, "W", merged.created_by, "A", T0);
            let conflicts = rapport_core::conflict::conflicts(doc.doc(), &ws);
            let names = conflicts.iter().find(|f| f.path == ["given_name"]).expect("the field conflict is kept");
            assert_eq!(names.values.len(), 2);
            assert_eq!(names.values[0].shown, merged.given_name, "the same value wins everywhere");
            assert_eq!(outbox_len(&client.repo).await, 0);
        }
        relay.shutdown().await;
    });
}

#[test]
fn a_connected_device_receives_live_changes_without_reconnecting() {
    run(async {
        let dir = relay_dir();
        let relay = TestRelay::start(dir.path().to_path_buf()).await;
        let config = SyncConfig::create(relay.url.clone(), [13; 48]).expect("config");
        let mut a = Client::new("A", 1, config.clone()).await;
        let mut b = Client::new("B", 2, SyncConfig { created_here: false, ..config }).await;
        a.sync().await;
        b.sync().await;
        create_contact(&b.repo, ADA, 2, ada).await;
        b.edited().await;
        b.run_until("pushed", |c| c.status() == SyncStatus::UpToDate).await;
        a.run_until("A has the contact", |c| c.has(ADA)).await;
        a.run_until("A is up to date", |c| c.status() == SyncStatus::UpToDate).await;
        assert_eq!(a.driver.transport().connects.get(), 1, "one connection");
        assert_eq!(
            a.driver.transport().sent.borrow().iter().filter(|m| matches!(m, ClientMessage::Pull { .. })).count(),
            0
        );
        assert_eq!(a.driver.cursor(), b.driver.cursor());
        assert_eq!(read_contact(&a.repo, ADA).await.family_name, "Quartermaine");
        relay.shutdown().await;
    });
}

#[test]
fn a_device_that_restarts_before_its_push_is_acknowledged_loses_nothing_and_applies_nothing_twice() {
    run(async {
        let dir = relay_dir();
        let relay = TestRelay::start(dir.path().to_path_buf()).await;
        let config = SyncConfig::create(relay.url.clone(), [14; 48]).expect("config");
        let mut a = Client::new("A", 1, config.clone()).await;
        let mut b = Client::new("B", 2, SyncConfig { created_here: false, ..config.clone() }).await;
        create_contact(&a.repo, ADA, 1, ada).await;
        a.edited().await;
        a.sync().await;
        b.sync().await;

        edit_contact(&a.repo, ADA, |x| x.title = "Countess".into()).await;
        edit_contact(&a.repo, ADA, |x| {
            x.tags.insert("vip".into());
        })
        .await;
        let pushes = a.driver.transport().pushes_sent();
        a.edited().await;
        assert_eq!(a.driver.transport().pushes_sent(), pushes + 1, "the push is on the wire");
        let repo = a.crash();
        assert_eq!(outbox_len(&repo).await, 2, "not acknowledged, so still queued");

        let mut a = Client::with_repo("A again", 1, config, repo, 1).await;
        a.sync().await;
        converge(&mut [&mut a, &mut b]).await;
        assert_eq!(b.driver.cursor(), Seq(5), "the relay holds the two changes twice");
        assert_eq!(read_contact(&b.repo, ADA).await, read_contact(&a.repo, ADA).await);
        assert_eq!(read_contact(&b.repo, ADA).await.title, "Countess");
        assert_eq!(row_count(&b.repo).await, 1);
        // The creation, then one chunk for the page that brought both edits
        // (a page is stored in one write); the page of duplicates stored nothing.
        assert_eq!(b.repo.storage().chunk_count(ADA), 2, "the duplicates stored nothing");
        assert_eq!(outbox_len(&a.repo).await, 0);
        assert_eq!(outbox_len(&b.repo).await, 0);
        relay.shutdown().await;
    });
}

#[test]
fn the_relay_restarting_between_pushes_loses_nothing() {
    run(async {
        let dir = relay_dir();
        let relay = TestRelay::start(dir.path().to_path_buf()).await;
        let (addr, url) = (relay.addr, relay.url.clone());
        let config = SyncConfig::create(url, [15; 48]).expect("config");
        let mut a = Client::new("A", 1, config.clone()).await;
        create_contact(&a.repo, ADA, 1, ada).await;
        a.edited().await;
        a.sync().await;

        let stopping = relay.shutdown();
        let draining = a.drain(Duration::from_millis(100));
        let ((), ()) = tokio::join!(stopping, draining);
        assert_eq!(a.status(), SyncStatus::Error(SyncProblem::RelayUnreachable));
        edit_contact(&a.repo, ADA, |x| x.title = "Countess".into()).await;
        a.edited().await;
        a.drain(Duration::from_millis(100)).await;
        assert_eq!(outbox_len(&a.repo).await, 1, "kept while the relay is down");

        let relay = TestRelay::start_at(addr, dir.path().to_path_buf()).await;
        a.run_until("reconnected and pushed", |c| c.status() == SyncStatus::UpToDate).await;
        assert_eq!(outbox_len(&a.repo).await, 0);
        assert_eq!(a.saved_cursor().await, a.driver.cursor());

        let mut b = Client::new("B", 2, SyncConfig { created_here: false, ..config }).await;
        b.sync().await;
        assert_eq!(read_contact(&b.repo, ADA).await, read_contact(&a.repo, ADA).await);
        assert_eq!(read_contact(&b.repo, ADA).await.title, "Countess");
        relay.shutdown().await;
    });
}

#[test]
fn the_relays_database_never_holds_a_contacts_name_email_or_phone_in_plaintext() {
    run(async {
        let dir = relay_dir();
        let relay = TestRelay::start(dir.path().to_path_buf()).await;
        let config = SyncConfig::create(relay.url.clone(), [16; 48]).expect("config");
        let mut a = Client::new("A", 1, config.clone()).await;
        let mut b = Client::new("B", 2, SyncConfig { created_here: false, ..config }).await;
        create_contact(&a.repo, ADA, 1, ada).await;
        a.edited().await;
        a.sync().await;
        b.sync().await;
        edit_contact(&b.repo, ADA, |x| x.notes = "Prefers Zebulon Quartermaine in full".into()).await;
        b.edited().await;
        b.run_until("pushed", |c| c.status() == SyncStatus::UpToDate).await;

        let secrets = ["Zebulon", "Quartermaine", "zebulon.quartermaine@example.test", "+44 20 7946 0958"];
        // The control: the bytes sent are the Automerge bytes that hold them.
        let local = a.repo.storage().raw_bytes();
        for secret in secrets {
            assert!(contains(&local, secret), "the local store holds {secret:?} (the control)");
        }
        relay.shutdown().await;
        let stored = relay_bytes(dir.path());
        assert!(stored.len() > 4096, "the relay stored something");
        for secret in secrets {
            assert!(!contains(&stored, secret), "the relay's files hold {secret:?} in plaintext");
        }
        let key = a.config.secret.to_base64url();
        assert!(!contains(&stored, &key), "the workspace secret never reaches the relay");
        assert!(!contains(&stored, &ADA.to_string()), "nor the record id");
    });
}

fn relay_bytes(dir: &std::path::Path) -> Vec<u8> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("data dir") {
        let path = entry.expect("entry").path();
        if path.is_file() {
            out.extend(std::fs::read(&path).expect("read"));
        }
    }
    out
}

#[test]
fn a_device_with_the_wrong_key_is_refused_and_does_not_retry() {
    run(async {
        let dir = relay_dir();
        let relay = TestRelay::start(dir.path().to_path_buf()).await;
        let config = SyncConfig::create(relay.url.clone(), [17; 48]).expect("config");
        let mut a = Client::new("A", 1, config.clone()).await;
        a.sync().await;
        let wrong = SyncConfig { secret: WorkspaceSecret::from_random_bytes([99; 32]), created_here: true, ..config };
        let mut m = Client::new("M", 9, wrong).await;
        m.driver.start().await;
        m.run_until("refused", |c| c.status() == SyncStatus::Error(SyncProblem::AccessRefused)).await;
        m.drain(Duration::from_millis(400)).await;
        assert_eq!(m.driver.transport().connects.get(), 1, "no retry after a refusal");
        assert_eq!(m.status(), SyncStatus::Error(SyncProblem::AccessRefused));
        relay.shutdown().await;
    });
}

#[test]
fn joining_a_workspace_the_relay_does_not_know_says_so() {
    run(async {
        let dir = relay_dir();
        let relay = TestRelay::start(dir.path().to_path_buf()).await;
        let config = SyncConfig::create(relay.url.clone(), [18; 48]).expect("config");
        let mut b = Client::new("B", 2, SyncConfig { created_here: false, ..config }).await;
        b.driver.start().await;
        b.run_until("told", |c| c.status() == SyncStatus::Error(SyncProblem::UnknownWorkspace)).await;
        relay.shutdown().await;
    });
}

/// Waits (bounded) until the stopped relay has closed its database: the
/// last connection to close removes the WAL file.
async fn closed(dir: &std::path::Path) {
    let wal = dir.join(format!("{}-wal", rapport_relay::store::sqlite::DB_FILE));
    for _ in 0..250 {
        if !wal.exists() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the relay did not close its database within 5 s");
}

/// Copies the relay's database file from `from` to `to`, replacing what
/// is there: an operator's backup of a stopped relay, or a restore of it.
fn copy_database(from: &std::path::Path, to: &std::path::Path) {
    let db = rapport_relay::store::sqlite::DB_FILE;
    for suffix in ["", "-wal", "-shm"] {
        let name = format!("{db}{suffix}");
        let _ = std::fs::remove_file(to.join(&name));
        if suffix != "-shm" && from.join(&name).exists() {
            std::fs::copy(from.join(&name), to.join(&name)).expect("copy the database");
        }
    }
}

#[test]
fn a_relay_restored_from_a_backup_gets_back_the_acknowledged_edits_it_lost_and_every_device_converges() {
    run(async {
        let dir = relay_dir();
        let backup = relay_dir();
        let relay = TestRelay::start(dir.path().to_path_buf()).await;
        let (addr, url) = (relay.addr, relay.url.clone());
        let config = SyncConfig::create(url, [16; 48]).expect("config");
        let mut a = Client::new("A", 1, config.clone()).await;
        let mut b = Client::new("B", 2, SyncConfig { created_here: false, ..config }).await;
        create_contact(&a.repo, ADA, 1, ada).await;
        a.edited().await;
        a.sync().await;
        b.sync().await;
        a.go_offline().await;
        b.go_offline().await;

        // The operator backs the database up.
        relay.shutdown().await;
        closed(dir.path()).await;
        copy_database(dir.path(), backup.path());
        let relay = TestRelay::start_at(addr, dir.path().to_path_buf()).await;

        // A's edits are acknowledged (they leave its outbox), then lost
        // when the backup is restored.
        edit_contact(&a.repo, ADA, |x| x.title = "Countess".into()).await;
        create_contact(&a.repo, GRACE, 1, grace).await;
        a.edited().await;
        a.sync().await;
        assert_eq!(outbox_len(&a.repo).await, 0, "acknowledged");
        let cursor_before = a.driver.cursor();
        a.go_offline().await;
        relay.shutdown().await;
        closed(dir.path()).await;
        copy_database(backup.path(), dir.path());
        let relay = TestRelay::start_at(addr, dir.path().to_path_buf()).await;

        // B, which never saw A's edits, adds three contacts: the restored
        // log grows back past A's cursor with entries A never read.
        let linus = RecordId::from_bytes([0x71; 16]);
        let mary = RecordId::from_bytes([0x72; 16]);
        let alan = RecordId::from_bytes([0x73; 16]);
        for (id, name) in [(linus, "Linus"), (mary, "Mary"), (alan, "Alan")] {
            create_contact(&b.repo, id, 2, |c| c.given_name = name.into()).await;
        }
        b.edited().await;
        b.sync().await;
        assert!(b.driver.head() > cursor_before, "the restored log reuses the positions A had read");

        // A notices the new incarnation: it pulls everything again and
        // uploads what the relay lost; then B receives it.
        a.sync().await;
        assert!(a.driver.host().seen.problems.borrow().contains(&SyncProblem::RelayReset), "A reports the restore");
        for id in [linus, mary, alan] {
            assert!(a.has(id), "A skipped nothing of the restored log");
        }
        b.sync().await;
        assert_eq!(read_contact(&b.repo, ADA).await.title, "Countess", "A's lost edit reached B");
        assert_eq!(read_contact(&b.repo, GRACE).await.given_name, "Grace", "A's lost contact reached B");
        converge(&mut [&mut a, &mut b]).await;
        for id in [ADA, GRACE, linus, mary, alan] {
            assert_eq!(read_contact(&a.repo, id).await, read_contact(&b.repo, id).await);
        }
        relay.shutdown().await;
    });
}

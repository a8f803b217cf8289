//! The driver against a scripted relay: outputs reach storage, the
//! transport and the host; events that arrive mid-await are queued.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::executor::block_on;
use rapport_core::contact::Contact;
use rapport_core::ids::{MemberId, RecordId};
use rapport_core::privacy::{Tombstone, Tombstones};
use rapport_core::record::RecordKind;
use rapport_core::repo::session_actor;
use rapport_core::storage::memory::MemoryStorage;
use rapport_core::storage::StorageError;
use rapport_protocol::{
    ChallengeNonce, ClientMessage, EntryKind, ErrorCode, LogEntry, ServerLimits, ServerMessage, WireError,
};

use super::*;
use crate::config::{load_relay_erased, save_relay_erased};

/// The incarnation of the scripted relay's log.
const INCARNATION: Incarnation = Incarnation::from_bytes([0x1c; 16]);
use crate::plaintext::{doc_tag, seal_change};

#[derive(Default)]
struct Wire {
    sent: RefCell<Vec<ClientMessage>>,
    connects: Cell<u32>,
    closes: Cell<u32>,
}

#[derive(Clone, Default)]
struct FakeWire(Rc<Wire>);

impl Transport for FakeWire {
    fn connect(&self, _url: &str) {
        self.0.connects.set(self.0.connects.get() + 1);
    }

    fn send(&self, frame: Vec<u8>) -> Result<(), TransportError> {
        let msg = ClientMessage::decode(&frame).map_err(|e| TransportError(e.to_string()))?;
        self.0.sent.borrow_mut().push(msg);
        Ok(())
    }

    fn close(&self) {
        self.0.closes.set(self.0.closes.get() + 1);
    }
}

#[derive(Default)]
struct FakeHost {
    counter: Cell<u8>,
    status: RefCell<Option<SyncStatus>>,
    rows: RefCell<Vec<Row>>,
    wakes: RefCell<Vec<u64>>,
    /// What the app's tombstones say.
    erased: RefCell<BTreeSet<RecordId>>,
    /// The last list of entries set aside it was told of.
    quarantine: RefCell<Option<QuarantineList>>,
}

impl Host for FakeHost {
    fn now_ms(&self) -> u64 {
        5_000
    }

    fn fill_random(&self, dest: &mut [u8]) {
        for b in dest {
            self.counter.set(self.counter.get().wrapping_add(1));
            *b = self.counter.get();
        }
    }

    fn wake_after(&self, ms: u64) {
        self.wakes.borrow_mut().push(ms);
    }

    fn status_changed(&self, status: &SyncStatus) {
        *self.status.borrow_mut() = Some(status.clone());
    }

    fn rows_changed(&self, rows: &[Row]) {
        self.rows.borrow_mut().extend_from_slice(rows);
    }

    fn is_erased(&self, record: RecordId) -> bool {
        self.erased.borrow().contains(&record)
    }

    fn quarantine_changed(&self, list: &QuarantineList) {
        *self.quarantine.borrow_mut() = Some(list.clone());
    }
}

/// Returns `Pending` once, like an IndexedDB request.
struct YieldOnce(bool);

impl Future for YieldOnce {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            Poll::Ready(())
        } else {
            self.0 = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }
}

/// A [`RepoApplier`] that awaits storage for real, and logs what it applied.
struct SlowApplier {
    inner: RepoApplier<MemoryStorage>,
    log: RefCell<Vec<Seq>>,
}

impl Applier for SlowApplier {
    async fn apply(&self, entries: &[Received], now_ms: u64) -> Result<Vec<Row>, Interrupted> {
        YieldOnce(false).await;
        self.log.borrow_mut().extend(entries.iter().map(|e| e.seq));
        self.inner.apply(entries, now_ms).await
    }
}

const ADA: RecordId = RecordId::from_bytes([0xad; 16]);

fn config() -> SyncConfig {
    SyncConfig::create("wss://relay.example/sync", [5; 48]).expect("config")
}

fn repo(n: u8) -> Rc<Repo<MemoryStorage>> {
    Rc::new(Repo::new(MemoryStorage::new(), session_actor(MemberId::from_bytes([n; 16]), [n; 8])))
}

type TestDriver = SyncDriver<Rc<Repo<MemoryStorage>>, SlowApplier, FakeWire, FakeHost>;

fn driver(repo: &Rc<Repo<MemoryStorage>>) -> (TestDriver, FakeWire) {
    let wire = FakeWire::default();
    let applier = SlowApplier { inner: RepoApplier::new(repo.clone()), log: RefCell::new(Vec::new()) };
    let driver =
        block_on(SyncDriver::open(&config(), repo.clone(), applier, wire.clone(), FakeHost::default())).expect("opens");
    (driver, wire)
}

fn frame(msg: &ServerMessage) -> Event {
    Event::Frame(msg.encode().expect("encode"))
}

const LIMITS: ServerLimits =
    ServerLimits { max_frame_bytes: 1 << 20, max_envelopes_per_push: 50, max_pull_entries: 50 };

fn handshake(driver: &TestDriver, head: u64) {
    block_on(async {
        driver.start().await;
        driver.handle(Event::Connected).await;
        driver.handle(frame(&ServerMessage::Challenge { nonce: ChallengeNonce::from_bytes([1; 32]) })).await;
        driver
            .handle(frame(&ServerMessage::Welcome { head: Seq(head), limits: LIMITS, incarnation: INCARNATION }))
            .await;
    });
}

const GRACE: RecordId = RecordId::from_bytes([0x67; 16]);

/// Automerge bytes of a new contact made on another device.
fn remote_contact(name: &str) -> Vec<u8> {
    remote_record(ADA, name)
}

fn remote_record(id: RecordId, name: &str) -> Vec<u8> {
    let other = repo(9);
    let mut c = Contact::new(id, Timestamp::from_millis(1), MemberId::from_bytes([9; 16]));
    c.given_name = name.into();
    block_on(other.create(&c)).expect("create");
    block_on(other.storage().outbox(10)).expect("outbox").remove(0).bytes
}

fn entry(seq: u64, bytes: &[u8]) -> LogEntry {
    entry_of(seq, ADA, bytes)
}

fn entry_of(seq: u64, record: RecordId, bytes: &[u8]) -> LogEntry {
    let envelope = seal_change(&config().keys(), record, bytes, [seq as u8; 24]).expect("seal");
    LogEntry { seq: Seq(seq), kind: EntryKind::Change, envelope }
}

fn last_pull(wire: &FakeWire) -> (u32, Seq) {
    wire.0
        .sent
        .borrow()
        .iter()
        .rev()
        .find_map(|m| if let ClientMessage::Pull { request, since, .. } = m { Some((*request, *since)) } else { None })
        .expect("a pull was sent")
}

fn pull_request(wire: &FakeWire) -> u32 {
    last_pull(wire).0
}

#[test]
fn a_page_is_applied_to_the_repo_and_the_cursor_saved_in_meta() {
    let repo = repo(1);
    let (driver, wire) = driver(&repo);
    handshake(&driver, 1);
    let request = pull_request(&wire);
    let bytes = remote_contact("Ada");
    block_on(driver.handle(frame(&ServerMessage::Batch {
        request,
        entries: vec![entry(1, &bytes)],
        cursor: Seq(1),
        more: false,
    })));
    let (_, ada) = block_on(repo.open::<Contact>(ADA, Timestamp::from_millis(1))).expect("applied");
    assert_eq!(ada.given_name, "Ada");
    assert_eq!(block_on(crate::config::load_cursor(repo.storage())), Ok(Seq(1)));
    assert!(driver.host().rows.borrow().iter().any(|r| r.id == ADA));
    assert_eq!(*driver.host().status.borrow(), Some(SyncStatus::UpToDate));
}

#[test]
fn a_page_with_an_unreadable_change_stores_the_others_sets_it_aside_durably_and_syncs_on_past_it() {
    let repo = repo(1);
    let (driver, wire) = driver(&repo);
    handshake(&driver, 3);
    let request = pull_request(&wire);
    let (ada, grace) = (remote_contact("Ada"), remote_record(GRACE, "Grace"));
    let bad = b"\x85\x6f\x4a\x83 not automerge".to_vec();
    let entries = vec![entry(1, &ada), entry_of(2, GRACE, &bad), entry_of(3, GRACE, &grace)];
    block_on(driver.handle(frame(&ServerMessage::Batch { request, entries, cursor: Seq(3), more: false })));
    let now = Timestamp::from_millis(1);
    assert_eq!(block_on(repo.open::<Contact>(ADA, now)).expect("before it: stored").1.given_name, "Ada");
    assert_eq!(block_on(repo.open::<Contact>(GRACE, now)).expect("after it: stored too").1.given_name, "Grace");
    // Set aside, durably, and the cursor moved past it; the rest comes again.
    let saved = block_on(crate::quarantine::load_quarantine(repo.storage())).expect("saved list");
    assert_eq!(saved.entries.len(), 1);
    assert_eq!((saved.entries[0].seq, saved.entries[0].record), (Seq(2), Some(GRACE)));
    assert_eq!(driver.quarantined(), saved);
    assert_eq!(driver.host().quarantine.borrow().as_ref(), Some(&saved), "the host is told");
    assert_eq!(block_on(crate::config::load_cursor(repo.storage())), Ok(Seq(2)));
    let (request, since) = last_pull(&wire);
    assert_eq!(since, Seq(2));
    assert_ne!(driver.status(), SyncStatus::UpToDate, "not up to date before the log is past it");
    let entries = vec![entry_of(3, GRACE, &grace)];
    block_on(driver.handle(frame(&ServerMessage::Batch { request, entries, cursor: Seq(3), more: false })));
    assert_eq!(block_on(crate::config::load_cursor(repo.storage())), Ok(Seq(3)));
    assert_eq!(driver.status(), SyncStatus::UpToDate);
    let rows = driver.host().rows.borrow();
    assert!(rows.iter().any(|r| r.id == ADA) && rows.iter().any(|r| r.id == GRACE), "both rows are shown");
    drop(rows);
    // A restart still lists it.
    drop(driver);
    let (again, _) = self::driver(&repo);
    assert_eq!(again.quarantined(), saved);
}

#[test]
fn a_poisoned_envelope_stalls_no_replica_and_a_new_device_pulls_past_it() {
    let repo = repo(1);
    let (driver, wire) = driver(&repo);
    handshake(&driver, 3);
    let request = pull_request(&wire);
    let ada = remote_contact("Ada");
    // Sealed with another workspace's key: it cannot be decrypted.
    let foreign = rapport_protocol::Keys::derive(
        &rapport_protocol::WorkspaceSecret::from_random_bytes([9; 32]),
        config().keys().workspace(),
    );
    let poisoned = LogEntry {
        seq: Seq(2),
        kind: EntryKind::Change,
        envelope: seal_change(&foreign, GRACE, b"x", [2; 24]).expect("seal"),
    };
    let entries = vec![entry(1, &ada), poisoned, entry(3, &ada)];
    block_on(driver.handle(frame(&ServerMessage::Batch { request, entries, cursor: Seq(3), more: false })));
    assert_eq!(driver.cursor(), Seq(3));
    assert_eq!(block_on(crate::config::load_cursor(repo.storage())), Ok(Seq(3)));
    assert_eq!(driver.status(), SyncStatus::UpToDate);
    let listed = driver.quarantined();
    assert_eq!(listed.entries.iter().map(|e| e.seq).collect::<Vec<_>>(), [Seq(2)]);
    assert!(listed.entries[0].message().contains("could not be decrypted"), "{}", listed.entries[0].message());
}

#[test]
fn events_arriving_while_a_page_is_applied_are_handled_after_it_in_order() {
    let repo = repo(1);
    let (driver, wire) = driver(&repo);
    handshake(&driver, 1);
    let request = pull_request(&wire);
    let bytes = remote_contact("Ada");
    let batch = frame(&ServerMessage::Batch { request, entries: vec![entry(1, &bytes)], cursor: Seq(1), more: false });
    let live = frame(&ServerMessage::Live { entries: vec![entry(2, &bytes)] });
    block_on(futures::future::join(driver.handle(batch), driver.handle(live)));
    assert_eq!(*driver.applier().log.borrow(), [Seq(1), Seq(2)]);
    assert_eq!(driver.cursor(), Seq(2));
    assert_eq!(block_on(crate::config::load_cursor(repo.storage())), Ok(Seq(2)));
}

#[test]
fn pushed_changes_leave_the_outbox_only_when_acknowledged() {
    let repo = repo(1);
    let mut c = Contact::new(ADA, Timestamp::from_millis(1), MemberId::from_bytes([1; 16]));
    c.given_name = "Ada".into();
    block_on(repo.create(&c)).expect("create");
    let (driver, wire) = driver(&repo);
    handshake(&driver, 0);
    let request = wire
        .0
        .sent
        .borrow()
        .iter()
        .find_map(|m| if let ClientMessage::Push { request, .. } = m { Some(*request) } else { None })
        .expect("pushed");
    assert_eq!(block_on(repo.storage().outbox(10)).expect("outbox").len(), 1, "kept until acknowledged");
    block_on(driver.handle(frame(&ServerMessage::Pushed { request, seqs: vec![Seq(1)] })));
    assert!(block_on(repo.storage().outbox(10)).expect("outbox").is_empty());
    assert_eq!(block_on(crate::config::load_cursor(repo.storage())), Ok(Seq(1)));
}

#[test]
fn a_full_disk_when_saving_is_shown_and_the_connection_retried_later() {
    let repo = repo(1);
    let (driver, wire) = driver(&repo);
    handshake(&driver, 1);
    let request = pull_request(&wire);
    let wakes = driver.host().wakes.borrow().len();
    repo.storage().fail_writes(Some(StorageError::QuotaExceeded));
    let bytes = remote_contact("Ada");
    block_on(driver.handle(frame(&ServerMessage::Batch {
        request,
        entries: vec![entry(1, &bytes)],
        cursor: Seq(1),
        more: false,
    })));
    assert_eq!(*driver.host().status.borrow(), Some(SyncStatus::Error(SyncProblem::StorageFull)));
    assert_eq!(wire.0.closes.get(), 1);
    assert_eq!(driver.cursor(), Seq::ZERO);
    assert!(driver.host().wakes.borrow().len() > wakes, "a reconnect is scheduled");
}

#[test]
fn a_relay_that_lost_data_gets_every_local_document_again() {
    let repo = repo(1);
    let mut c = Contact::new(ADA, Timestamp::from_millis(1), MemberId::from_bytes([1; 16]));
    c.given_name = "Ada".into();
    block_on(repo.create(&c)).expect("create");
    // Pushed and acknowledged long ago; then the relay lost its data.
    let sent: Vec<u64> = block_on(repo.storage().outbox(10)).expect("outbox").iter().map(|e| e.seq).collect();
    block_on(repo.storage().ack_outbox(&sent)).expect("acknowledged");
    block_on(crate::config::save_cursor(repo.storage(), Seq(40))).expect("cursor");
    block_on(crate::config::save_incarnation(repo.storage(), Some(INCARNATION))).expect("incarnation");
    let (driver, wire) = driver(&repo);
    handshake(&driver, 2);
    let request = pull_request(&wire);
    block_on(driver.handle(frame(&ServerMessage::Error(WireError {
        request: Some(request),
        code: ErrorCode::CursorAhead,
        message: "cursor ahead".into(),
        fatal: false,
        retry_after_ms: None,
    }))));
    let (again, since) = last_pull(&wire);
    assert!(again != request && since == Seq::ZERO, "everything is pulled from the start");
    assert_eq!(wire.0.sent.borrow().iter().filter(|m| matches!(m, ClientMessage::Push { .. })).count(), 0);
    block_on(driver.handle(frame(&ServerMessage::Batch {
        request: again,
        entries: vec![],
        cursor: Seq(2),
        more: false,
    })));
    let pushed: Vec<_> = wire
        .0
        .sent
        .borrow()
        .iter()
        .filter_map(|m| if let ClientMessage::Push { envelopes, .. } = m { Some(envelopes.len()) } else { None })
        .collect();
    assert_eq!(pushed, [1], "then the document is uploaded again");
    assert_eq!(block_on(crate::config::load_cursor(repo.storage())), Ok(Seq(2)));
}

// --- Erasure ------------------------------------------------------------------

fn deletes_sent(wire: &FakeWire) -> Vec<(u32, rapport_protocol::DocTag)> {
    wire.0
        .sent
        .borrow()
        .iter()
        .filter_map(|m| match m {
            ClientMessage::DeleteDocument { request, doc_tag } => Some((*request, *doc_tag)),
            _ => None,
        })
        .collect()
}

fn tag(record: RecordId) -> rapport_protocol::DocTag {
    doc_tag(&config().keys(), record)
}

fn pushed_records(wire: &FakeWire) -> Vec<RecordId> {
    let keys = config().keys();
    wire.0
        .sent
        .borrow()
        .iter()
        .filter_map(|m| if let ClientMessage::Push { envelopes, .. } = m { Some(envelopes.clone()) } else { None })
        .flatten()
        .map(|e| crate::plaintext::open_envelope(&keys, &e).expect("opens").0)
        .collect()
}

fn tombstone(record: RecordId) -> Tombstone {
    Tombstone {
        record,
        kind: RecordKind::Contact,
        erased_at: Timestamp::from_millis(10),
        erased_by: MemberId::from_bytes([1; 16]),
    }
}

#[test]
fn a_change_of_an_erased_record_is_never_stored_counts_for_the_cursor_and_is_deleted_on_the_relay_again() {
    let repo = repo(1);
    // Deleted on the relay earlier, so confirmed.
    block_on(save_relay_erased(repo.storage(), &BTreeSet::from([ADA]))).expect("meta");
    let (driver, wire) = driver(&repo);
    driver.host().erased.borrow_mut().insert(ADA);
    handshake(&driver, 2);
    let request = pull_request(&wire);
    block_on(driver.handle(frame(&ServerMessage::Batch {
        request,
        entries: vec![entry_of(1, ADA, &remote_record(ADA, "Ada")), entry_of(2, GRACE, &remote_record(GRACE, "Grace"))],
        cursor: Seq(2),
        more: false,
    })));
    assert_eq!(*driver.applier().log.borrow(), [Seq(2)], "only Grace's change reaches the applier");
    assert_eq!(block_on(repo.storage().load(ADA)), Ok(None), "nothing of Ada is stored");
    assert!(block_on(repo.storage().load(GRACE)).expect("load").is_some());
    assert_eq!(block_on(crate::config::load_cursor(repo.storage())), Ok(Seq(2)), "the cursor passes it");

    // Someone pushed it again: it is owed again, also after a restart.
    assert_eq!(block_on(load_relay_erased(repo.storage())), Ok(BTreeSet::new()));
    let deletes = deletes_sent(&wire);
    assert_eq!(deletes.iter().map(|(_, t)| *t).collect::<Vec<_>>(), [tag(ADA)]);
    block_on(driver.handle(frame(&ServerMessage::DocumentDeleted { request: deletes[0].0, removed: 1 })));
    assert_eq!(block_on(load_relay_erased(repo.storage())), Ok(BTreeSet::from([ADA])), "confirmed in meta");
    assert_eq!(driver.relay_erased(), BTreeSet::from([ADA]));
    assert_eq!(*driver.host().status.borrow(), Some(SyncStatus::UpToDate));
}

#[test]
fn outbox_entries_of_an_erased_record_are_acknowledged_locally_and_never_pushed() {
    let repo = repo(1);
    for (id, name) in [(ADA, "Ada"), (GRACE, "Grace")] {
        let mut c = Contact::new(id, Timestamp::from_millis(1), MemberId::from_bytes([1; 16]));
        c.given_name = name.into();
        block_on(repo.create(&c)).expect("create");
    }
    let (driver, wire) = driver(&repo);
    driver.host().erased.borrow_mut().insert(ADA);
    handshake(&driver, 0);
    assert_eq!(pushed_records(&wire), [GRACE]);
    let outbox = block_on(repo.storage().outbox(10)).expect("outbox");
    assert_eq!(outbox.iter().map(|e| e.id).collect::<Vec<_>>(), [GRACE], "Ada's entry left without a push");
    assert_eq!(deletes_sent(&wire).iter().map(|(_, t)| *t).collect::<Vec<_>>(), [tag(ADA)]);
}

#[test]
fn a_full_read_of_erased_outbox_entries_reads_on_to_the_others() {
    let repo = repo(1);
    let ada: Vec<(RecordId, Vec<u8>)> = (0..LIMITS.max_envelopes_per_push + 5).map(|_| (ADA, vec![1, 2, 3])).collect();
    block_on(repo.storage().enqueue(&ada)).expect("queue");
    block_on(repo.storage().enqueue(&[(GRACE, vec![4, 5, 6])])).expect("queue");
    let (driver, wire) = driver(&repo);
    driver.host().erased.borrow_mut().insert(ADA);
    handshake(&driver, 0);
    assert_eq!(pushed_records(&wire), [GRACE]);
    assert_eq!(block_on(repo.storage().outbox(100)).expect("outbox").len(), 1, "only Grace's, until acknowledged");
}

#[test]
fn erase_tombstoned_asks_only_for_deletions_not_confirmed_or_under_way_and_confirmations_survive_a_restart() {
    let repo = repo(1);
    block_on(save_relay_erased(repo.storage(), &BTreeSet::from([ADA]))).expect("meta");
    let (driver, wire) = driver(&repo);
    let tombstones: Tombstones = [tombstone(ADA), tombstone(GRACE)].into_iter().collect();
    block_on(driver.erase_tombstoned(&tombstones));
    assert!(deletes_sent(&wire).is_empty(), "offline");
    assert_eq!(driver.erasing(), BTreeSet::from([GRACE]));
    handshake(&driver, 0);
    block_on(driver.erase_tombstoned(&tombstones));
    let deletes = deletes_sent(&wire);
    assert_eq!(deletes.iter().map(|(_, t)| *t).collect::<Vec<_>>(), [tag(GRACE)], "once, and not Ada");
    block_on(driver.handle(frame(&ServerMessage::DocumentDeleted { request: deletes[0].0, removed: 2 })));
    drop(driver);

    let (driver, wire) = self::driver(&repo);
    assert_eq!(driver.relay_erased(), BTreeSet::from([ADA, GRACE]));
    handshake(&driver, 0);
    block_on(driver.erase_tombstoned(&tombstones));
    assert!(deletes_sent(&wire).is_empty(), "nothing owed after the restart");
}

#[test]
fn live_frames_arriving_while_busy_are_queued_within_the_bound_and_pulled_later() {
    let repo = repo(1);
    let wire = FakeWire::default();
    let applier = SlowApplier { inner: RepoApplier::new(repo.clone()), log: RefCell::new(Vec::new()) };
    let timing = Timing { max_queued_bytes: 4_000, ..Timing::default() };
    let driver = block_on(SyncDriver::open_with_timing(
        &config(),
        timing,
        repo.clone(),
        applier,
        wire.clone(),
        FakeHost::default(),
    ))
    .expect("opens");
    handshake(&driver, 0);
    let bytes = remote_contact("Ada");
    // The driver is busy (awaiting storage): frames queue up.
    driver.busy.set(true);
    for seq in 1..=40 {
        block_on(driver.handle(frame(&ServerMessage::Live { entries: vec![entry(seq, &bytes)] })));
        let queued: usize =
            driver.inbox.borrow().iter().map(|e| if let Event::Frame(b) = e { b.len() } else { 0 }).sum();
        assert!(queued <= 4_000 + 16, "{queued} bytes queued after live entry {seq}");
    }
    assert!(driver.inbox.borrow().len() < 20, "the reduced frames take one slot");
    driver.busy.set(false);
    block_on(driver.handle(Event::Tick));
    // The engine learned the head from what was reduced to it, and pulls.
    assert_eq!(driver.head(), Seq(40));
    let (_, since) = last_pull(&wire);
    assert!(since < Seq(40), "the entries not kept are pulled: since {since:?}");
}

#[test]
fn a_relay_restored_from_a_backup_resets_the_log_durably_and_gets_every_document_again() {
    let restored = Incarnation::from_bytes([0x2d; 16]);
    let repo = repo(1);
    let mut c = Contact::new(ADA, Timestamp::from_millis(1), MemberId::from_bytes([1; 16]));
    c.given_name = "Ada".into();
    block_on(repo.create(&c)).expect("create before sync");
    let storage = repo.storage();
    block_on(crate::config::save_cursor(storage, Seq(40))).expect("cursor");
    block_on(crate::config::save_incarnation(storage, Some(INCARNATION))).expect("incarnation");
    block_on(save_relay_erased(storage, &BTreeSet::from([GRACE]))).expect("confirmed erasure");
    let (first, wire) = driver(&repo);
    block_on(async {
        first.start().await;
        first.handle(Event::Connected).await;
        first.handle(frame(&ServerMessage::Challenge { nonce: ChallengeNonce::from_bytes([1; 32]) })).await;
        first.handle(frame(&ServerMessage::Welcome { head: Seq(2), limits: LIMITS, incarnation: restored })).await;
    });
    // Durable before anything is pulled: cursor 0, the new incarnation,
    // no confirmed erasure (Grace is deleted on the relay again), and Ada
    // queued whole for upload.
    assert_eq!(block_on(crate::config::load_cursor(storage)), Ok(Seq::ZERO));
    assert_eq!(block_on(crate::config::load_incarnation(storage)), Ok(Some(restored)));
    assert_eq!(block_on(load_relay_erased(storage)), Ok(BTreeSet::new()));
    assert_eq!(first.relay_erased(), BTreeSet::new());
    let grace_tag = doc_tag(&config().keys(), GRACE);
    assert!(
        wire.0
            .sent
            .borrow()
            .iter()
            .any(|m| matches!(m, ClientMessage::DeleteDocument { doc_tag, .. } if *doc_tag == grace_tag)),
        "a confirmed erasure is asked for again: the restored log may hold the record"
    );
    assert!(block_on(storage.outbox(10)).expect("outbox").iter().any(|e| e.id == ADA));
    let (request, since) = last_pull(&wire);
    assert_eq!(since, Seq::ZERO);
    assert_eq!(wire.0.sent.borrow().iter().filter(|m| matches!(m, ClientMessage::Push { .. })).count(), 0);
    block_on(first.handle(frame(&ServerMessage::Batch { request, entries: vec![], cursor: Seq(2), more: false })));
    // Every local edit is queued, so Ada's creation may go beside her whole
    // document: redundant for Automerge, and only Ada goes.
    let ada_tag = doc_tag(&config().keys(), ADA);
    let pushed: Vec<_> = wire
        .0
        .sent
        .borrow()
        .iter()
        .filter_map(|m| if let ClientMessage::Push { envelopes, .. } = m { Some(envelopes.clone()) } else { None })
        .flatten()
        .map(|e| e.doc_tag)
        .collect();
    assert!(!pushed.is_empty(), "then what the relay lost is uploaded again");
    assert!(pushed.iter().all(|t| *t == ada_tag), "only what this device holds: {pushed:?}");

    // A device that crashed before saving the new incarnation (it still
    // has the old one) resets again at its next start: harmless.
    block_on(crate::config::save_incarnation(storage, Some(INCARNATION))).expect("as before the last write");
    let (again, wire) = driver(&repo);
    block_on(async {
        again.start().await;
        again.handle(Event::Connected).await;
        again.handle(frame(&ServerMessage::Challenge { nonce: ChallengeNonce::from_bytes([1; 32]) })).await;
        again.handle(frame(&ServerMessage::Welcome { head: Seq(3), limits: LIMITS, incarnation: restored })).await;
    });
    assert_eq!(last_pull(&wire).1, Seq::ZERO);
    assert_eq!(block_on(crate::config::load_incarnation(storage)), Ok(Some(restored)));
}

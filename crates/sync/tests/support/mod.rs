//! Test support shared by the integration tests: a deterministic host
//! (clock, randomness, timers through an event channel), contact helpers,
//! a WebSocket transport over tokio-tungstenite against the real relay
//! ([`ws`]), and an in-memory simulated relay ([`sim`]).

#![allow(dead_code)]

pub mod sim;
pub mod ws;

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use rapport_core::consent::{ConsentAction, ConsentSource, LawfulBasis, NewConsentEvent, PurposeId};
use rapport_core::contact::{Contact, Labeled};
use rapport_core::ids::{EntryId, EventId, MemberId, RecordId};
use rapport_core::privacy::retention::anonymise_document;
use rapport_core::privacy::{apply_tombstones, relay_deletions, Tombstone, Tombstones};
use rapport_core::record::{Record, RecordKind, Row};
use rapport_core::repo::{session_actor, Repo};
use rapport_core::storage::memory::MemoryStorage;
use rapport_core::storage::Storage;
use rapport_core::workspace::Workspace;
use rapport_core::Timestamp;
use rapport_sync::config::load_relay_erased;
use rapport_sync::{SyncProblem, SyncStatus, Timing};

pub type TestRepo = Rc<Repo<MemoryStorage>>;

/// How many cases a property test runs: `PROPTEST_CASES` when it is set to
/// a number (the bench command runs each with 10,000), else `default`, the
/// quick count of the test command. (`ProptestConfig::with_cases` alone
/// would ignore the variable.)
pub fn proptest_cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|v| v.trim().parse().ok()).unwrap_or(default)
}

/// Timeouts and back-off short enough for tests.
pub fn fast_timing() -> Timing {
    Timing {
        handshake_timeout_ms: 5_000,
        request_timeout_ms: 5_000,
        backoff_base_ms: 20,
        backoff_max_ms: 200,
        ..Timing::default()
    }
}

/// splitmix64: a small deterministic generator, seeded per client so that
/// no two clients draw the same nonces.
#[derive(Debug)]
pub struct SeededRandom(Cell<u64>);

impl SeededRandom {
    pub fn new(seed: u64) -> Self {
        Self(Cell::new(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0x5555))
    }

    pub fn next_u64(&self) -> u64 {
        let mut z = self.0.get().wrapping_add(0x9e37_79b9_7f4a_7c15);
        self.0.set(z);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub fn fill(&self, dest: &mut [u8]) {
        for chunk in dest.chunks_mut(8) {
            let bytes = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
    }
}

/// What a host saw: statuses, problems, changed rows.
#[derive(Debug, Default)]
pub struct Seen {
    pub status: RefCell<Option<SyncStatus>>,
    pub problems: RefCell<Vec<SyncProblem>>,
    pub rows: RefCell<Vec<Row>>,
}

impl Seen {
    pub fn status(&self) -> Option<SyncStatus> {
        self.status.borrow().clone()
    }
}

pub fn member(n: u8) -> MemberId {
    MemberId::from_bytes([n; 16])
}

pub fn new_repo(n: u8, generation: u8) -> TestRepo {
    Rc::new(Repo::new(MemoryStorage::new(), session_actor(member(n), [n, generation, 0, 0, 0, 0, 0, 0])))
}

pub const T0: Timestamp = Timestamp::from_millis(1_700_000_000_000);

pub fn marketing() -> PurposeId {
    PurposeId::MARKETING_EMAIL.parse().expect("a standard purpose")
}

/// A consent event with an id unique to (`who`, `n`).
pub fn consent(who: u8, n: u8, action: ConsentAction) -> NewConsentEvent {
    NewConsentEvent {
        id: EventId::from_bytes([who, n, 0xce, 0, 0, 0, 0x70, 0, 0x80, 0, 0, 0, 0, 0, 0, 1]),
        purpose: marketing(),
        action,
        recorded_at: Timestamp::from_millis(T0.as_millis() + i64::from(n)),
        lawful_basis: LawfulBasis::Consent,
        source: ConsentSource::Call,
        recorded_by: member(who),
        note: String::new(),
    }
}

pub fn labeled(who: u8, n: u8, label: &str, value: &str) -> Labeled {
    Labeled {
        id: EntryId::from_bytes([who, n, 0xe0, 0, 0, 0, 0x70, 0, 0x80, 0, 0, 0, 0, 0, 0, 2]),
        label: label.into(),
        value: value.into(),
    }
}

/// Creates a contact in `repo`.
pub async fn create_contact(repo: &TestRepo, id: RecordId, who: u8, edit: impl FnOnce(&mut Contact)) -> Contact {
    let mut contact = Contact::new(id, T0, member(who));
    edit(&mut contact);
    repo.create(&contact).await.expect("create");
    contact
}

/// Opens, edits and saves a contact.
pub async fn edit_contact(repo: &TestRepo, id: RecordId, edit: impl FnOnce(&mut Contact)) {
    let (mut handle, mut contact) = repo.open::<Contact>(id, T0).await.expect("open to edit");
    edit(&mut contact);
    repo.save(&mut handle, &contact).await.expect("save");
}

pub async fn read_contact(repo: &TestRepo, id: RecordId) -> Contact {
    repo.open::<Contact>(id, T0).await.expect("open").1
}

pub async fn outbox_len(repo: &TestRepo) -> usize {
    repo.storage().outbox(10_000).await.expect("outbox").len()
}

pub async fn row_count(repo: &TestRepo) -> usize {
    repo.storage().rows().await.expect("rows").rows.len()
}

/// Anonymises a contact as the app does (`src/engine/privacy.rs`): a new
/// epoch written by a new session actor of member `who`, stored with
/// `Repo::replace_epoch` (which queues it as a snapshot while sync is on).
pub async fn anonymise_contact(repo: &TestRepo, workspace: RecordId, id: RecordId, who: u8) -> Contact {
    let (_, ws) = repo.open::<Workspace>(workspace, T0).await.expect("open the workspace");
    let mut handle = repo.open_doc(id, T0).await.expect("open to anonymise");
    let actor = session_actor(member(who), [who, 0xe0, 0, 0, 0, 0, 0, 1]);
    let (fresh, anonymised) =
        anonymise_document(handle.doc_mut(), &ws, T0, member(who), actor).expect("anonymise the document");
    repo.replace_epoch(&mut handle, fresh, &anonymised.row()).await.expect("store the new epoch");
    anonymised
}

/// Creates the workspace document in `repo`.
pub async fn create_workspace(repo: &TestRepo, id: RecordId, who: u8) -> Workspace {
    let ws = Workspace::new(id, "Acme", member(who), "Sam", T0);
    repo.create(&ws).await.expect("create the workspace");
    ws
}

// --- The app's side of erasure (what the browser app does around the driver)

/// The tombstones of every workspace document held in `repo`.
pub async fn read_tombstones(repo: &TestRepo) -> Tombstones {
    let mut all = Tombstones::new();
    let rows = repo.storage().rows().await.expect("rows").rows;
    for row in rows.iter().filter(|r| r.kind == RecordKind::Workspace) {
        let (_, ws) = repo.open::<Workspace>(row.id, T0).await.expect("open the workspace");
        all.merge(&ws.tombstones);
    }
    all
}

/// Removes every byte of tombstoned records and their outbox entries
/// (`privacy::apply_tombstones`, then `Storage::remove` and `ack_outbox`).
pub async fn purge(repo: &TestRepo, tombstones: &Tombstones) {
    let storage = repo.storage();
    let held: Vec<RecordId> = storage.rows().await.expect("rows").rows.iter().map(|r| r.id).collect();
    let outbox = storage.outbox(usize::MAX).await.expect("outbox");
    let purge = apply_tombstones(held, &outbox, tombstones);
    for id in &purge.remove {
        storage.remove(*id).await.expect("remove");
    }
    storage.ack_outbox(&purge.drop_outbox).await.expect("drop queued changes");
}

/// After a merge into the workspace document: remembers its tombstones (for
/// the driver's guards), purges, and returns the deletions still owed on
/// the relay (`privacy::relay_deletions` over meta `privacy/relay-erased`).
pub async fn learn_tombstones(repo: &TestRepo, known: &RefCell<Tombstones>) -> Vec<RecordId> {
    let tombstones = read_tombstones(repo).await;
    *known.borrow_mut() = tombstones.clone();
    purge(repo, &tombstones).await;
    let confirmed = load_relay_erased(repo.storage()).await.expect("confirmed erasures");
    relay_deletions(&tombstones, &confirmed)
}

/// Erases `record` as the app does: the tombstone goes into the workspace
/// document first (durable and queued for sync), then the bytes go.
pub async fn erase_locally(
    repo: &TestRepo,
    workspace: RecordId,
    record: RecordId,
    who: u8,
    known: &RefCell<Tombstones>,
) {
    let (mut handle, mut ws) = repo.open::<Workspace>(workspace, T0).await.expect("open the workspace");
    ws.tombstones.insert(Tombstone { record, kind: RecordKind::Contact, erased_at: T0, erased_by: member(who) });
    repo.save(&mut handle, &ws).await.expect("save the tombstone");
    learn_tombstones(repo, known).await;
}

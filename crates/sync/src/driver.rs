//! Runs a [`SyncEngine`] against the app's world: [`SyncDriver`] carries out
//! each [`Output`] through small traits, so the browser (WebSocket,
//! IndexedDB, hydrated documents) and native tests (tokio-tungstenite or a
//! simulated relay, [`MemoryStorage`](rapport_core::storage::memory::MemoryStorage))
//! share all the logic.
//!
//! | output | carried out by |
//! |---|---|
//! | `Connect`, `Send`, `Close` | [`Transport`] |
//! | `Apply` | [`Applier`] (then `Applied`/`ApplyFailed` is fed back) |
//! | `Quarantine` | `Storage::put_meta("sync/quarantine")` ([`save_quarantine`]), then [`Host::quarantine_changed`] (then `Applied`/`ApplyFailed` is fed back) |
//! | `SaveCursor` | `Storage::put_meta("sync/cursor")` |
//! | `ReadOutbox`, `AckOutbox` | `Storage::outbox` (a snapshot entry's bytes replaced by the record's document as stored now), `Storage::ack_outbox` |
//! | `Reupload` | [`enqueue_existing`] |
//! | `ResetLog` | cursor 0, confirmed relay erasures asked for again, entries set aside forgotten, [`enqueue_existing`], then `Storage::put_meta("sync/incarnation")` last (then `LogReset` is fed back) |
//! | `SaveIncarnation` | `Storage::put_meta("sync/incarnation")` |
//! | `RelayErased` | `Storage::put_meta("privacy/relay-erased")` ([`save_relay_erased`]) |
//! | `Status`, `Problem`, `WakeAfter`, `ReconnectAfter` | [`Host`] |
//!
//! Storage failures are fed back as `Input::StorageFailed`.
//!
//! # Erasure
//!
//! The driver keeps the replica guards of `rapport_core::privacy::replica`
//! with the app's current tombstones, asked through [`Host::is_erased`]:
//!
//! - a received change of an erased record is never handed to the
//!   [`Applier`]: it counts as applied for the cursor, nothing is stored,
//!   and the record is deleted on the relay again (someone pushed it after
//!   the erasure, or before learning of it);
//! - an outbox entry of an erased record is never pushed: it is
//!   acknowledged locally (and the record deleted on the relay again, in
//!   case an earlier push of it reached the relay unacknowledged).
//!
//! [`SyncDriver::erase_tombstoned`] (or [`SyncDriver::erase_on_relay`])
//! asks the relay to delete erased records; confirmations are persisted in
//! meta (`privacy/relay-erased`), so a restart asks only for what is still
//! owed.
//!
//! Everything runs on one thread (the browser's main thread): futures are
//! not `Send`, and the traits use `async fn` directly. Events may arrive
//! while the driver is awaiting storage (a frame while a page is being
//! applied): [`SyncDriver::handle`] queues them, and the call that is
//! already running handles them in order, so the engine sees one event at a
//! time and no `RefCell` borrow is held across an `await`.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeSet, VecDeque};
use std::rc::Rc;

use rapport_core::ids::RecordId;
use rapport_core::privacy::{relay_deletions, Tombstones};
use rapport_core::record::Row;
use rapport_core::repo::{hydrate, AppliedMany, ApplyError, DocHandle, Repo};
use rapport_core::storage::{OutboxEntry, OutboxKind, Storage, StorageError};
use rapport_core::Timestamp;
use rapport_protocol::{Incarnation, Seq, ServerMessage};

use crate::config::{
    enqueue_existing, load_cursor, load_incarnation, load_relay_erased, save_cursor, save_incarnation,
    save_relay_erased, LoadError, SyncConfig,
};
use crate::engine::{ApplyFailure, ApplyFailureKind, Input, Output, Received, SyncEngine, Timing};
use crate::quarantine::{load_quarantine, save_quarantine, QuarantineList, QuarantinedChange};
use crate::status::{SyncProblem, SyncStatus};

#[cfg(test)]
mod tests;

/// The WebSocket, as the driver uses it. Receiving is not here: the owner
/// of the socket feeds [`Event::Connected`], [`Event::Frame`] and
/// [`Event::Disconnected`] to [`SyncDriver::handle`].
pub trait Transport {
    /// Starts opening a connection to `url` (one at a time). Report the
    /// outcome later with `Event::Connected` or `Event::Disconnected`.
    fn connect(&self, url: &str);

    /// Sends one binary message on the open connection.
    ///
    /// # Errors
    /// [`TransportError`] when the connection is not open; the driver then
    /// treats it as closed.
    fn send(&self, frame: Vec<u8>) -> Result<(), TransportError>;

    /// Closes the connection. Events of that connection must not be
    /// reported afterwards (the engine already considers it closed).
    fn close(&self);
}

/// A frame could not be sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the connection to the sync server is not open: {0}")]
pub struct TransportError(pub String);

/// Merges received changes into the app's documents.
#[allow(async_fn_in_trait)]
pub trait Applier {
    /// Applies a page of `entries` durably (merged and stored; best in one
    /// storage transaction, see [`apply_page`]) and returns the rows that
    /// changed. The driver saves the cursor past the page only after this
    /// returns.
    ///
    /// # Errors
    /// [`Interrupted`] naming the first entry that was not applied; every
    /// entry before it must be durable. Entries after it may be applied
    /// too (they are received again, which is harmless).
    async fn apply(&self, entries: &[Received], now_ms: u64) -> Result<Vec<Row>, Interrupted>;
}

/// Applies a page of received entries through [`Repo::apply_remote_many`]:
/// every record's changes merged (into `hydrated` where the caller holds
/// the document) and all of them stored in one [`Storage::append`]. The
/// [`Applier`] answer: the changed rows, or [`Interrupted`] at the first
/// refused entry (every other entry is stored) or at the first entry when
/// storage failed (nothing is stored).
///
/// # Errors
/// As above.
pub async fn apply_page<S: Storage>(
    repo: &Repo<S>,
    entries: &[Received],
    hydrated: &mut std::collections::HashMap<RecordId, DocHandle>,
    now_ms: u64,
) -> Result<Vec<Row>, Interrupted> {
    let now = Timestamp::from_millis(i64::try_from(now_ms).unwrap_or(i64::MAX));
    let changes: Vec<(RecordId, &[u8])> = entries.iter().map(|e| (e.record, e.bytes.as_slice())).collect();
    match repo.apply_remote_many(&changes, hydrated, now).await {
        Ok(AppliedMany { rows, refused: None }) => Ok(rows),
        Ok(AppliedMany { rows, refused: Some((index, error)) }) => {
            let failure = ApplyFailure { at: entries[index].seq, kind: apply_failure_kind(error) };
            Err(Interrupted { failure, rows })
        }
        Err(error) => {
            let at = entries.first().map_or(Seq::ZERO, |e| e.seq);
            Err(Interrupted { failure: ApplyFailure { at, kind: apply_failure_kind(error) }, rows: Vec::new() })
        }
    }
}

/// An apply that stopped part-way.
#[derive(Debug, Clone, PartialEq)]
pub struct Interrupted {
    /// Which entry failed and why.
    pub failure: ApplyFailure,
    /// Rows changed by the entries applied before it.
    pub rows: Vec<Row>,
}

/// Lends the driver the app's [`Storage`] (for the cursor and the outbox).
pub trait StorageAccess {
    /// The storage type.
    type Storage: Storage;
    /// The storage.
    fn storage(&self) -> &Self::Storage;
}

impl<S: Storage> StorageAccess for Rc<Repo<S>> {
    type Storage = S;
    fn storage(&self) -> &S {
        Repo::storage(self)
    }
}

impl<S: Storage> StorageAccess for &S {
    type Storage = S;
    fn storage(&self) -> &S {
        self
    }
}

/// The rest of the driver's surroundings: clock, randomness, timers and the
/// UI.
pub trait Host {
    /// Milliseconds since any fixed origin (`Date.now()` in the browser).
    fn now_ms(&self) -> u64;

    /// Cryptographically secure random bytes (`crypto.getRandomValues`):
    /// envelope nonces are drawn from them.
    fn fill_random(&self, dest: &mut [u8]);

    /// Calls [`SyncDriver::tick`] in about `ms` milliseconds. A later call
    /// may come before this one fires; firing both is harmless.
    fn wake_after(&self, ms: u64);

    /// The status to show changed.
    fn status_changed(&self, _status: &SyncStatus) {}

    /// Rows changed by received changes: refresh lists.
    fn rows_changed(&self, _rows: &[Row]) {}

    /// A problem worth logging or a notification.
    fn problem(&self, _problem: &SyncProblem) {}

    /// Entries of the relay's log were set aside (they cannot be read or
    /// applied; sync went on past them): `list` is every one so far, to
    /// show in the sync settings with [`QuarantinedChange::message`].
    fn quarantine_changed(&self, _list: &QuarantineList) {}

    /// Whether `record` was erased: its tombstone is in the workspace
    /// document as this replica knows it now
    /// (`workspace.tombstones.is_erased(record)`). The driver asks just
    /// before handing received changes to the [`Applier`] and just before
    /// pushing outbox entries, so keep the answer current: update it when
    /// the app erases a record and when [`Applier::apply`] merges a change
    /// into the workspace document. The default (no record is erased) suits
    /// apps and tools without erasure.
    fn is_erased(&self, _record: RecordId) -> bool {
        false
    }
}

/// Something that happened, fed to [`SyncDriver::handle`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Begin syncing, or retry now.
    Start,
    /// Stop syncing and close the connection.
    Stop,
    /// The WebSocket opened (`open` event).
    Connected,
    /// A binary message arrived (`message` event).
    Frame(Vec<u8>),
    /// The WebSocket closed or failed (`close` or `error` event).
    Disconnected,
    /// A local edit queued outbox entries.
    LocalChanges,
    /// A timer asked for by [`Host::wake_after`] fired.
    Tick,
    /// Delete these records' envelopes on the relay (see
    /// [`SyncDriver::erase_on_relay`]).
    EraseOnRelay(Vec<RecordId>),
}

impl Event {
    fn as_input(&self) -> Input<'_> {
        match self {
            Event::Start => Input::Start,
            Event::Stop => Input::Stop,
            Event::Connected => Input::Connected,
            Event::Frame(bytes) => Input::Frame(bytes),
            Event::Disconnected => Input::Disconnected,
            Event::LocalChanges => Input::LocalChanges,
            Event::Tick => Input::Tick,
            Event::EraseOnRelay(records) => Input::EraseOnRelay(records.clone()),
        }
    }
}

/// Clears the busy flag even if the running `handle` future is dropped.
struct Busy<'a>(&'a Cell<bool>);

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.0.set(false);
    }
}

/// Drives one workspace's sync. See the module doc.
pub struct SyncDriver<St, A, T, H> {
    engine: RefCell<SyncEngine>,
    relay_url: String,
    storage: St,
    applier: A,
    transport: T,
    host: H,
    inbox: RefCell<VecDeque<Event>>,
    busy: Cell<bool>,
    /// Records the relay confirmed erasing (as persisted in meta).
    relay_erased: RefCell<BTreeSet<RecordId>>,
    /// Entries set aside (as persisted in meta).
    quarantine: RefCell<QuarantineList>,
}

impl<St, A, T, H> SyncDriver<St, A, T, H>
where
    St: StorageAccess,
    A: Applier,
    T: Transport,
    H: Host,
{
    /// A driver for `config`, starting from the cursor and the confirmed
    /// relay erasures saved in storage. It stays offline until
    /// [`Event::Start`].
    ///
    /// # Errors
    /// [`LoadError`] when the saved cursor, the saved list of confirmed
    /// relay erasures or the saved list of entries set aside cannot be
    /// read.
    pub async fn open(config: &SyncConfig, storage: St, applier: A, transport: T, host: H) -> Result<Self, LoadError> {
        Self::open_with_timing(config, Timing::default(), storage, applier, transport, host).await
    }

    /// As [`SyncDriver::open`] with explicit timeouts and sizes.
    ///
    /// # Errors
    /// As [`SyncDriver::open`].
    pub async fn open_with_timing(
        config: &SyncConfig,
        timing: Timing,
        storage: St,
        applier: A,
        transport: T,
        host: H,
    ) -> Result<Self, LoadError> {
        let cursor = load_cursor(storage.storage()).await?;
        let incarnation = load_incarnation(storage.storage()).await?;
        let relay_erased = load_relay_erased(storage.storage()).await?;
        let quarantine = load_quarantine(storage.storage()).await?;
        let engine =
            SyncEngine::with_timing(config.keys(), config.created_here, cursor, timing).with_incarnation(incarnation);
        Ok(Self {
            engine: RefCell::new(engine),
            relay_url: config.relay_url.clone(),
            storage,
            applier,
            transport,
            host,
            inbox: RefCell::new(VecDeque::new()),
            busy: Cell::new(false),
            relay_erased: RefCell::new(relay_erased),
            quarantine: RefCell::new(quarantine),
        })
    }

    /// Handles one event and everything it leads to (sending, applying,
    /// saving), in order. If another call is already running, the event is
    /// queued for it and this returns at once. Queued frames hold at most
    /// `Timing::max_queued_bytes`: a live frame beyond that is queued as
    /// the head it announces (a `Behind`), so the engine pulls its entries
    /// later instead of the queue growing while a slow apply runs.
    pub async fn handle(&self, event: Event) {
        self.enqueue(event);
        if self.busy.replace(true) {
            return;
        }
        let _busy = Busy(&self.busy);
        loop {
            let next = self.inbox.borrow_mut().pop_front();
            let Some(event) = next else { break };
            let outputs = self.step(event.as_input());
            self.execute(outputs).await;
        }
    }

    /// Queues `event`; a live frame that would take the queued frames past
    /// the bound goes in as a `Behind` naming its last entry, merged with
    /// one queued just before it (so a stream of them takes one slot).
    /// Replies are kept: they are bounded by the requests in flight.
    fn enqueue(&self, event: Event) {
        let behind_head = |bytes: &[u8]| match ServerMessage::decode(bytes) {
            Ok(ServerMessage::Behind { head }) => Some(head),
            _ => None,
        };
        let mut inbox = self.inbox.borrow_mut();
        let Event::Frame(bytes) = &event else { return inbox.push_back(event) };
        let queued: usize = inbox.iter().map(|e| if let Event::Frame(b) = e { b.len() } else { 0 }).sum();
        if queued.saturating_add(bytes.len()) <= self.engine.borrow().timing().max_queued_bytes {
            return inbox.push_back(event);
        }
        let Ok(ServerMessage::Live { entries }) = ServerMessage::decode(bytes) else { return inbox.push_back(event) };
        let Some(mut head) = entries.last().map(|e| e.seq) else { return };
        if let Some(Event::Frame(last)) = inbox.back() {
            if let Some(earlier) = behind_head(last) {
                head = head.max(earlier);
                inbox.pop_back();
            }
        }
        match (ServerMessage::Behind { head }).encode() {
            Ok(behind) => inbox.push_back(Event::Frame(behind)),
            Err(_) => inbox.push_back(event),
        }
    }

    /// `handle(Event::Start)`.
    pub async fn start(&self) {
        self.handle(Event::Start).await
    }

    /// `handle(Event::Stop)`.
    pub async fn stop(&self) {
        self.handle(Event::Stop).await
    }

    /// `handle(Event::LocalChanges)`: call after a local edit.
    pub async fn local_changes(&self) {
        self.handle(Event::LocalChanges).await
    }

    /// `handle(Event::Tick)`: call when a [`Host::wake_after`] timer fires.
    pub async fn tick(&self) {
        self.handle(Event::Tick).await
    }

    /// `handle(Event::EraseOnRelay(records))`: asks the relay to delete
    /// every envelope and snapshot of these records (erased records). Sent
    /// at once when connected, else after the next `Welcome`, and again
    /// after every reconnect until the relay confirms; confirmations are
    /// persisted in meta `privacy/relay-erased`. Call it after the
    /// tombstones are durable in the workspace document.
    pub async fn erase_on_relay(&self, records: Vec<RecordId>) {
        if !records.is_empty() {
            self.handle(Event::EraseOnRelay(records)).await
        }
    }

    /// Asks the relay to delete every tombstoned record it has not yet
    /// confirmed deleting for this device and that is not already being
    /// deleted: [`relay_deletions`]`(tombstones, confirmed)`. Call it at
    /// every start (after reading the workspace), after a local erasure,
    /// and after every merge into the workspace document that may have
    /// brought tombstones. Calling it again is cheap.
    pub async fn erase_tombstoned(&self, tombstones: &Tombstones) {
        let owed: Vec<RecordId> = {
            let erasing = self.engine.borrow().erasing();
            relay_deletions(tombstones, &self.relay_erased.borrow())
                .into_iter()
                .filter(|id| !erasing.contains(id))
                .collect()
        };
        self.erase_on_relay(owed).await
    }

    /// The records the relay confirmed erasing (what meta
    /// `privacy/relay-erased` holds, or will once saved).
    pub fn relay_erased(&self) -> BTreeSet<RecordId> {
        self.relay_erased.borrow().clone()
    }

    /// Records whose deletion on the relay is asked for and not confirmed.
    pub fn erasing(&self) -> BTreeSet<RecordId> {
        self.engine.borrow().erasing()
    }

    /// The entries of the relay's log set aside so far (what meta
    /// `sync/quarantine` holds), to show with the status.
    pub fn quarantined(&self) -> QuarantineList {
        self.quarantine.borrow().clone()
    }

    /// The status to show.
    pub fn status(&self) -> SyncStatus {
        self.engine.borrow().status()
    }

    /// The log position applied so far.
    pub fn cursor(&self) -> Seq {
        self.engine.borrow().cursor()
    }

    /// The newest log position known on the relay.
    pub fn head(&self) -> Seq {
        self.engine.borrow().head()
    }

    /// The storage the driver uses.
    pub fn storage(&self) -> &St::Storage {
        self.storage.storage()
    }

    /// The applier.
    pub fn applier(&self) -> &A {
        &self.applier
    }

    /// The transport.
    pub fn transport(&self) -> &T {
        &self.transport
    }

    /// The host.
    pub fn host(&self) -> &H {
        &self.host
    }

    fn step(&self, input: Input<'_>) -> Vec<Output> {
        let now = self.host.now_ms();
        let mut rng = |dest: &mut [u8]| self.host.fill_random(dest);
        self.engine.borrow_mut().handle(now, &mut rng, input)
    }

    async fn execute(&self, outputs: Vec<Output>) {
        let mut work: VecDeque<Output> = outputs.into();
        while let Some(output) = work.pop_front() {
            let follow = self.carry_out(output).await;
            work.extend(follow);
        }
    }

    /// Carries out one output; returns the engine's answer to its outcome.
    async fn carry_out(&self, output: Output) -> Vec<Output> {
        let storage = self.storage.storage();
        match output {
            Output::Connect => self.transport.connect(&self.relay_url),
            Output::Send(frame) => {
                if self.transport.send(frame).is_err() {
                    return self.step(Input::Disconnected);
                }
            }
            Output::Close => self.transport.close(),
            Output::Apply { entries, through } => return self.apply(entries, through).await,
            Output::Quarantine { entries, through } => return self.set_aside(entries, through).await,
            Output::SaveCursor(cursor) => {
                if let Err(e) = save_cursor(storage, cursor).await {
                    return self.step(Input::StorageFailed(e));
                }
            }
            Output::ReadOutbox { limit } => return self.read_outbox(limit).await,
            Output::AckOutbox(seqs) => {
                if let Err(e) = storage.ack_outbox(&seqs).await {
                    return self.step(Input::StorageFailed(e));
                }
            }
            Output::Reupload => {
                if let Err(e) = self.reupload().await {
                    return self.step(Input::StorageFailed(e));
                }
            }
            Output::ResetLog { incarnation } => return self.reset_log(incarnation).await,
            Output::SaveIncarnation(incarnation) => {
                if let Err(e) = save_incarnation(storage, Some(incarnation)).await {
                    return self.step(Input::StorageFailed(e));
                }
            }
            Output::RelayErased(records) => {
                let confirmed = {
                    let mut confirmed = self.relay_erased.borrow_mut();
                    confirmed.extend(records);
                    confirmed.clone()
                };
                // On failure the deletion is asked for again after the
                // next start: harmless, the relay deletes nothing twice.
                if let Err(e) = save_relay_erased(storage, &confirmed).await {
                    return self.step(Input::StorageFailed(e));
                }
            }
            Output::Status(status) => self.host.status_changed(&status),
            Output::Problem(problem) => self.host.problem(&problem),
            Output::ReconnectAfter { ms } | Output::WakeAfter { ms } => self.host.wake_after(ms),
        }
        Vec::new()
    }

    /// Queues every local document for upload again (`enqueue_existing`),
    /// reporting the ones that cannot be read.
    async fn reupload(&self) -> Result<(), StorageError> {
        let report = enqueue_existing(self.storage.storage()).await?;
        for (key, reason) in report.unreadable {
            self.host.problem(&SyncProblem::LocalStorage(format!(
                "record {key} could not be read, so it was not uploaded again: {reason}"
            )));
        }
        Ok(())
    }

    /// `ResetLog`: the relay's log is another incarnation. Everything this
    /// device knew about the old one is forgotten, durably and in an order
    /// that survives a crash at any point (the new incarnation is saved
    /// last, so a crash part-way resets again at the next start):
    ///
    /// 1. cursor 0, so the whole log is pulled again;
    /// 2. the confirmed relay erasures: a restored log may hold those
    ///    records again, so each is deleted on the relay again (and
    ///    `erase_tombstoned` after a crash asks for them too);
    /// 3. the entries set aside (their positions name the old log);
    /// 4. every local document queued whole: what the relay lost,
    ///    acknowledged edits included, goes up again after the pull;
    /// 5. the new incarnation.
    async fn reset_log(&self, incarnation: Incarnation) -> Vec<Output> {
        let storage = self.storage.storage();
        let owed: Vec<RecordId> = self.relay_erased.borrow().iter().copied().collect();
        let steps = async {
            save_cursor(storage, Seq::ZERO).await?;
            save_relay_erased(storage, &BTreeSet::new()).await?;
            self.relay_erased.borrow_mut().clear();
            let empty = QuarantineList::default();
            save_quarantine(storage, &empty).await?;
            if !self.quarantine.borrow().entries.is_empty() {
                self.host.quarantine_changed(&empty);
            }
            *self.quarantine.borrow_mut() = empty;
            self.reupload().await?;
            save_incarnation(storage, Some(incarnation)).await
        };
        if let Err(e) = steps.await {
            return self.step(Input::StorageFailed(e));
        }
        let mut follow = self.step(Input::LogReset { incarnation });
        if !owed.is_empty() {
            follow.extend(self.step(Input::EraseOnRelay(owed)));
        }
        follow
    }

    /// Hands received changes to the applier, except those of erased
    /// records: they count as applied, nothing of them is stored, and the
    /// relay is asked to delete their records again.
    async fn apply(&self, entries: Vec<Received>, through: Seq) -> Vec<Output> {
        let (erased, accepted): (Vec<Received>, Vec<Received>) =
            entries.into_iter().partition(|e| self.host.is_erased(e.record));
        let mut follow = Vec::new();
        if !erased.is_empty() {
            let records: BTreeSet<RecordId> = erased.iter().map(|e| e.record).collect();
            // A record confirmed erased came back: it is owed again, also
            // after a restart, before the cursor passes the evidence.
            let was_confirmed = {
                let mut confirmed = self.relay_erased.borrow_mut();
                let before = confirmed.len();
                confirmed.retain(|id| !records.contains(id));
                (before != confirmed.len()).then(|| confirmed.clone())
            };
            if let Some(confirmed) = was_confirmed {
                if let Err(e) = save_relay_erased(self.storage.storage(), &confirmed).await {
                    let first = accepted.iter().chain(&erased).map(|e| e.seq).min().unwrap_or(through);
                    let failure = ApplyFailure { at: first, kind: ApplyFailureKind::from_storage(&e) };
                    return self.step(Input::ApplyFailed { through, failure });
                }
            }
            follow.extend(self.step(Input::EraseOnRelay(records.into_iter().collect())));
        }
        let result =
            if accepted.is_empty() { Ok(Vec::new()) } else { self.applier.apply(&accepted, self.host.now_ms()).await };
        let (rows, answer) = match result {
            Ok(rows) => (rows, Input::Applied { through }),
            Err(Interrupted { failure, rows }) => (rows, Input::ApplyFailed { through, failure }),
        };
        if !rows.is_empty() {
            self.host.rows_changed(&rows);
        }
        follow.extend(self.step(answer));
        follow
    }

    /// Records entries as set aside, durably, before the engine moves the
    /// cursor past them.
    async fn set_aside(&self, entries: Vec<QuarantinedChange>, through: Seq) -> Vec<Output> {
        let first = entries.first().map_or(through, |e| e.seq);
        let mut list = self.quarantine.borrow().clone();
        list.add(entries);
        if let Err(e) = save_quarantine(self.storage.storage(), &list).await {
            let failure = ApplyFailure { at: first, kind: ApplyFailureKind::from_storage(&e) };
            return self.step(Input::ApplyFailed { through, failure });
        }
        self.host.quarantine_changed(&list);
        *self.quarantine.borrow_mut() = list;
        self.step(Input::Applied { through })
    }

    /// Reads the outbox for the engine, acknowledging entries of erased
    /// records locally instead of pushing them.
    async fn read_outbox(&self, limit: usize) -> Vec<Output> {
        let storage = self.storage.storage();
        let mut follow = Vec::new();
        loop {
            let entries = match storage.outbox(limit).await {
                Ok(entries) => entries,
                Err(e) => {
                    follow.extend(self.step(Input::StorageFailed(e)));
                    return follow;
                }
            };
            let full = entries.len() >= limit;
            let (erased, mut keep): (Vec<OutboxEntry>, Vec<OutboxEntry>) =
                entries.into_iter().partition(|e| self.host.is_erased(e.id));
            if let Err(e) = current_snapshots(storage, &mut keep).await {
                follow.extend(self.step(Input::StorageFailed(e)));
                return follow;
            }
            if erased.is_empty() {
                follow.extend(self.step(Input::Outbox(keep)));
                return follow;
            }
            let seqs: Vec<u64> = erased.iter().map(|e| e.seq).collect();
            if let Err(e) = storage.ack_outbox(&seqs).await {
                follow.extend(self.step(Input::StorageFailed(e)));
                return follow;
            }
            // An earlier push of them may have reached the relay without
            // its acknowledgement reaching this device.
            let records: BTreeSet<RecordId> = erased.iter().map(|e| e.id).collect();
            follow.extend(self.step(Input::EraseOnRelay(records.into_iter().collect())));
            if !(keep.is_empty() && full) {
                follow.extend(self.step(Input::Outbox(keep)));
                return follow;
            }
            // Everything read was dropped: read on, or the rest would wait
            // for the next edit.
        }
    }
}

/// Replaces the bytes of each snapshot entry with the record's document as
/// stored now. The engine sends a snapshot as covering everything applied
/// when it goes out (`covers_through` = the cursor), and the relay deletes
/// the record's envelopes up to there: changes of the new epoch applied
/// since the entry was queued (from replicas that adopted it, after an
/// unacknowledged send) must be in it. The stored document holds all of
/// them, since a page is stored before the cursor passes it. A record with
/// nothing stored, or unreadable, keeps the bytes it was queued with.
///
/// # Errors
/// [`StorageError`] when reading failed.
async fn current_snapshots<S: Storage>(storage: &S, entries: &mut [OutboxEntry]) -> Result<(), StorageError> {
    for entry in entries.iter_mut().filter(|e| e.kind == OutboxKind::Snapshot) {
        if let Some(stored) = storage.load(entry.id).await? {
            if let Ok(mut doc) = hydrate(stored.snapshot.as_deref(), &stored.chunks) {
                entry.bytes = doc.save();
            }
        }
    }
    Ok(())
}

/// An [`Applier`] over a [`Repo`]: each page goes through [`apply_page`]
/// (documents loaded from storage, one write per page). For tests, tools
/// and apps that do not keep documents hydrated.
pub struct RepoApplier<S> {
    repo: Rc<Repo<S>>,
}

impl<S> RepoApplier<S> {
    /// Applies into `repo`.
    pub fn new(repo: Rc<Repo<S>>) -> Self {
        Self { repo }
    }

    /// The repository.
    pub fn repo(&self) -> &Rc<Repo<S>> {
        &self.repo
    }
}

/// How a failed [`Repo::apply_remote`] stops an apply.
pub fn apply_failure_kind(error: ApplyError) -> ApplyFailureKind {
    match error {
        ApplyError::Undecodable(reason) => ApplyFailureKind::Rejected(reason),
        // The local copy of the record is unreadable (quarantined): the
        // change cannot be merged, and skipping it would lose it.
        ApplyError::Corrupt(reason) => ApplyFailureKind::Rejected(reason),
        // Taking the new epoch would lose a privacy action of the local copy.
        ApplyError::Replay(e) => ApplyFailureKind::Rejected(e.to_string()),
        ApplyError::Storage(e) => ApplyFailureKind::from_storage(&e),
    }
}

impl<S: Storage> Applier for RepoApplier<S> {
    async fn apply(&self, entries: &[Received], now_ms: u64) -> Result<Vec<Row>, Interrupted> {
        apply_page(&self.repo, entries, &mut std::collections::HashMap::new(), now_ms).await
    }
}

//! The sync protocol as a sans-IO state machine: [`SyncEngine`].
//!
//! The engine does no IO, reads no clock and draws no randomness. Every call
//! to [`SyncEngine::handle`] passes the current time (`now_ms`), a source of
//! random bytes ([`Random`]) and one [`Input`]; it returns the [`Output`]s
//! the caller must carry out, in order. The same inputs always give the same
//! outputs, so every protocol path is tested natively and deterministically
//! (see `engine/tests.rs`), and the browser and native tests share one
//! implementation. [`crate::driver`] carries the outputs out against real
//! storage, documents and a WebSocket.
//!
//! # A session
//!
//! ```text
//! Start           -> Connect                                  (open a WebSocket to the relay)
//! Connected       -> (wait for the relay's challenge)
//! Frame(Challenge)-> Send(Hello{workspace, signature, register?})
//! Frame(Welcome)  -> Send(Pull{since: cursor}) if cursor != head, else ReadOutbox{limit}
//!                    (another incarnation of the log: ResetLog{incarnation}, then LogReset -> Pull{since: 0})
//! Frame(Batch)    -> Apply{entries, through}                  (the app merges them durably...)
//! Applied{through}-> SaveCursor(through), Send(Pull) while `more`
//! Outbox(entries) -> Send(Push{envelopes})                    (sealed with fresh random nonces)
//! Frame(Pushed)   -> AckOutbox(outbox seqs), ReadOutbox{limit}
//! Outbox([Snapshot entry, ..])
//!                 -> Send(ReplaceWithSnapshot{snapshot, covers_through: cursor})  (a new epoch, alone)
//! Frame(SnapshotStored) -> AckOutbox([its seq]), ReadOutbox{limit}
//! Frame(Live)     -> Apply{...}                               (in order: advances; a gap: pull)
//! (an unreadable entry)
//!                 -> Quarantine{entries, through}             (the app records it; Applied{through} moves past it)
//! EraseOnRelay(ids)-> Send(DeleteDocument{doc_tag}) per record  (now if ready, else after the next Welcome)
//! Frame(DocumentDeleted) -> RelayErased(ids)                  (the app records them as confirmed)
//! Disconnected    -> ReconnectAfter{ms}                        (exponential back-off with jitter)
//! Tick            -> Connect / Send(Ping) / Close on timeouts
//! ```
//!
//! # The rules it keeps
//!
//! - **The cursor never passes a change that is not durably applied.** A
//!   received page becomes `Output::Apply { entries, through }`; the cursor
//!   moves to `through` (and `Output::SaveCursor` is emitted) only when the
//!   app answers `Input::Applied { through }`. One apply is outstanding at a
//!   time, and applies complete in log order.
//! - **An outbox entry is acknowledged only after the relay committed it**:
//!   `Output::AckOutbox` follows `Pushed` (or `SnapshotStored`), never a
//!   send. A push lost to a disconnect is simply pushed again (Automerge
//!   ignores duplicates).
//! - **A new epoch goes as a snapshot, in outbox order.** An
//!   [`OutboxKind::Snapshot`] entry (a record rewritten without history,
//!   `rapport_core::privacy::epoch`) is sent alone as `ReplaceWithSnapshot`
//!   with `covers_through` = the cursor: the relay deletes the record's
//!   envelopes up to there, which this replica has applied (so the snapshot,
//!   read from storage just before, holds or supersedes them). Changes
//!   queued before it are pushed first, changes after it wait for
//!   `SnapshotStored`; it shares the one push slot, so timeouts, rate limits
//!   and resending after a reconnect work as for pushes.
//! - **Pull before push after a reconnect.** After `Welcome`, the outbox is
//!   read only once the log up to the announced head is applied (or set
//!   aside). A replica that was offline thus
//!   merges the workspace document, and learns of tombstones in it, before
//!   it pushes edits of records erased meanwhile.
//! - **Erasure on the relay** (design promise 4): `Input::EraseOnRelay`
//!   queues records whose envelopes the relay must delete. Each is sent as
//!   `DeleteDocument` while connected, sent again after every reconnect
//!   until the relay confirms it, and sent once more when it is asked for
//!   again while its delete is in flight (someone re-uploaded the record).
//!   Confirmations come out as `Output::RelayErased`.
//! - **`Live` is a hint** (docs/RELAY.md): its entries are applied, but the
//!   cursor advances over them only when they directly follow it and no pull
//!   is in flight; otherwise the engine pulls. `Behind` pulls. Live entries
//!   are queued only up to `Timing::max_queued_entries` and
//!   `max_queued_bytes`: beyond, they are dropped and pulled later, so a
//!   slow app under a stream of live frames holds bounded memory.
//! - **An unreadable entry is set aside, never applied, and cannot stall
//!   sync**: an envelope that does not decrypt, does not decode, names a
//!   record other than its tag's, or that the app rejects is *quarantined*
//!   (`Output::Quarantine`, [`crate::quarantine`]): the app records it
//!   durably, and only then does the cursor move past it. Pulling goes on,
//!   and "up to date" means the whole log was applied or set aside.
//! - **One incarnation of the log** (docs/SYNC.md, "Relay incarnations"):
//!   the cursor, the confirmed relay erasures and the entries set aside
//!   are positions in one incarnation of the relay's log, which `Welcome`
//!   names. When it names another one than the engine was given (the
//!   relay was restored from a backup and hands out sequence numbers
//!   again), the engine emits `Output::ResetLog` and waits for
//!   `Input::LogReset`: the app resets the cursor and those lists and
//!   queues every document for upload again; then the whole log is pulled
//!   (applying twice is harmless) before the upload goes. A snapshot names
//!   the incarnation its `covers_through` was read from, so the relay
//!   refuses it (`IncarnationChanged`) rather than delete entries of a log
//!   its author never read; the engine then reconnects and resets.
//! - **Errors**: `Unauthorized` is final (no reconnect until the app says
//!   `Start` again); `RateLimited` pauses requests for `retry_after_ms`;
//!   `CursorAhead` restarts from zero and asks the app to upload every
//!   document again; fatal errors and timeouts close and reconnect with
//!   back-off.
//!
//! # Plaintext
//!
//! Each envelope holds `version:u8 (= 1) || postcard({ record: [u8; 16],
//! bytes })`, see [`crate::plaintext`].

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use rapport_core::ids::RecordId;
use rapport_core::storage::{OutboxEntry, OutboxKind, StorageError};
use rapport_protocol::{
    ClientMessage, DecodeError, ErrorCode, Incarnation, Keys, LogEntry, RequestId, Seq, ServerLimits, ServerMessage,
    WireError, ENVELOPE_NONCE_LEN,
};

use rapport_protocol::sizes::{envelope_len, fits_alone, varint_len};

use crate::backoff::Backoff;
use crate::plaintext::{doc_tag, open_envelope, seal_change_within, EnvelopeError};
use crate::quarantine::QuarantinedChange;
use crate::status::{SyncProblem, SyncStatus};

#[cfg(test)]
mod tests;

/// A source of random bytes, supplied by the caller (a CSPRNG in the app:
/// nonces are drawn from it). Closures `FnMut(&mut [u8])` implement it.
pub trait Random {
    /// Fills `dest` with random bytes.
    fn fill(&mut self, dest: &mut [u8]);
}

impl<F: FnMut(&mut [u8])> Random for F {
    fn fill(&mut self, dest: &mut [u8]) {
        self(dest)
    }
}

/// Timeouts, back-off and batch sizes. The defaults suit the browser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timing {
    /// From `Connect` to `Welcome`.
    pub handshake_timeout_ms: u64,
    /// A request with no frame received for this long means a dead
    /// connection: close and reconnect.
    pub request_timeout_ms: u64,
    /// With nothing in flight and nothing received for this long, send a
    /// `Ping` (browsers cannot see WebSocket pings, so a silent connection
    /// may be dead).
    pub keepalive_ms: u64,
    /// First reconnect delay.
    pub backoff_base_ms: u64,
    /// Longest reconnect delay.
    pub backoff_max_ms: u64,
    /// Entries asked for per pull (the relay may cap it lower).
    pub pull_limit: u32,
    /// Most envelopes per push (the relay may cap it lower).
    pub push_max_envelopes: u32,
    /// Most `DeleteDocument` requests in flight at once (the rest wait for
    /// confirmations, so a large erasure does not hit the rate limit).
    pub erase_max_in_flight: u32,
    /// Most received entries waiting for the app at once, and most bytes
    /// of them. Live entries beyond either are not kept: they are a hint,
    /// and the pull that follows brings them again, in order.
    pub max_queued_entries: usize,
    /// See `max_queued_entries`.
    pub max_queued_bytes: usize,
}

impl Default for Timing {
    fn default() -> Self {
        Self {
            handshake_timeout_ms: 15_000,
            request_timeout_ms: 30_000,
            keepalive_ms: 60_000,
            backoff_base_ms: 500,
            backoff_max_ms: 60_000,
            pull_limit: 1_000,
            push_max_envelopes: 500,
            erase_max_in_flight: 16,
            max_queued_entries: 2_000,
            max_queued_bytes: 16 << 20,
        }
    }
}

/// One received change, decrypted and ready to merge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// Its position in the workspace log.
    pub seq: Seq,
    /// The record (Automerge document) it belongs to.
    pub record: RecordId,
    /// Automerge change chunks or a saved document.
    pub bytes: Vec<u8>,
}

/// Why the app could not apply an `Output::Apply`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplyFailure {
    /// The entry that failed; every entry of the apply before it is durably
    /// applied. The cursor stops just before it, so the entries after it
    /// count as not applied and are received again later (an applier may
    /// have applied some of them already: applying twice is harmless).
    pub at: Seq,
    /// What went wrong.
    pub kind: ApplyFailureKind,
}

/// The kinds of [`ApplyFailure`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApplyFailureKind {
    /// The entry's bytes are not a change the app can merge (not Automerge,
    /// or the local record is unreadable). Sync stops before it.
    Rejected(String),
    /// Local storage is full. Retried after a reconnect.
    StorageFull,
    /// Local storage failed otherwise. Retried after a reconnect.
    Storage(String),
}

impl ApplyFailureKind {
    /// Classifies a storage error.
    pub fn from_storage(error: &StorageError) -> Self {
        match error {
            StorageError::QuotaExceeded => ApplyFailureKind::StorageFull,
            other => ApplyFailureKind::Storage(other.to_string()),
        }
    }
}

/// What happened: one call of [`SyncEngine::handle`] per event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input<'a> {
    /// Begin syncing, or retry now ("Sync now", the browser came online).
    /// Also lifts the stop after `AccessRefused`.
    Start,
    /// Stop syncing (sync turned off, the browser went offline). Closes the
    /// connection; no reconnect until `Start`.
    Stop,
    /// The WebSocket opened.
    Connected,
    /// One binary WebSocket message from the relay.
    Frame(&'a [u8]),
    /// The WebSocket closed or failed to open.
    Disconnected,
    /// New entries may be in the outbox (after a local edit).
    LocalChanges,
    /// The answer to `Output::ReadOutbox`: the oldest outbox entries.
    Outbox(Vec<OutboxEntry>),
    /// The entries of the `Output::Apply` with this `through` are durably
    /// stored.
    Applied {
        /// Echoes `Output::Apply::through`.
        through: Seq,
    },
    /// The `Output::Apply` with this `through` failed part-way.
    ApplyFailed {
        /// Echoes `Output::Apply::through`.
        through: Seq,
        /// Where and why.
        failure: ApplyFailure,
    },
    /// Carrying out `SaveCursor`, `AckOutbox`, `ReadOutbox` or `Reupload`
    /// failed. The engine reconnects later; nothing is lost (the cursor and
    /// the outbox only lag behind).
    StorageFailed(StorageError),
    /// Time passed (as asked by `Output::WakeAfter`/`ReconnectAfter`; extra
    /// ticks are harmless).
    Tick,
    /// `Output::ResetLog` with this incarnation is carried out durably
    /// (the new incarnation saved last).
    LogReset {
        /// Echoes `Output::ResetLog::incarnation`.
        incarnation: Incarnation,
    },
    /// Delete every envelope and snapshot of these records on the relay
    /// (erased records: `privacy::replica::relay_deletions`, or a received
    /// change of an erased record). Sent when connected, again after each
    /// reconnect until confirmed by `Output::RelayErased`; a record asked
    /// for while its delete is in flight is deleted once more afterwards.
    EraseOnRelay(Vec<RecordId>),
}

/// What the caller must do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Open a WebSocket to the relay; report `Connected` or `Disconnected`.
    Connect,
    /// Send one binary WebSocket message.
    Send(Vec<u8>),
    /// Close the WebSocket. Report nothing more from it (the engine already
    /// considers it closed).
    Close,
    /// Merge these changes into their documents durably, in order, then
    /// answer `Input::Applied { through }` (or `Input::ApplyFailed`).
    Apply {
        /// Decrypted changes, in log order.
        entries: Vec<Received>,
        /// Echo this in the answer.
        through: Seq,
    },
    /// Record these entries as set aside (meta `sync/quarantine`,
    /// [`crate::quarantine`]), durably, then answer `Input::Applied {
    /// through }` (or `Input::ApplyFailed` when storage failed): only then
    /// does the cursor move past them.
    Quarantine {
        /// The entries that cannot be read or applied, in log order.
        entries: Vec<QuarantinedChange>,
        /// Echo this in the answer.
        through: Seq,
    },
    /// Persist the cursor (meta `sync/cursor`).
    SaveCursor(Seq),
    /// Read up to `limit` outbox entries (oldest first) and answer
    /// `Input::Outbox`.
    ReadOutbox {
        /// How many to read.
        limit: usize,
    },
    /// Delete these outbox entries: the relay committed them.
    AckOutbox(Vec<u64>),
    /// The relay lost data (`CursorAhead`): queue every local document for
    /// upload again (`Storage::enqueue` of each saved document). The engine
    /// reads the outbox afterwards.
    Reupload,
    /// The relay's log is another incarnation than the one this device
    /// read (restored from a backup, or reset). Durably, in this order:
    /// save cursor 0; forget the confirmed relay erasures (ask the relay
    /// to delete those records again: the restored log may hold them) and
    /// the entries set aside; queue every local document for upload again
    /// (as for `Reupload`); save `incarnation` last. Then answer
    /// `Input::LogReset` (or `Input::StorageFailed`). A crash part-way
    /// leaves the old incarnation saved, so the next start resets again.
    ResetLog {
        /// The log's incarnation now.
        incarnation: Incarnation,
    },
    /// Persist the log's incarnation (meta `sync/incarnation`): the first
    /// one this device learns, with nothing read from an earlier one.
    SaveIncarnation(Incarnation),
    /// The status changed: show it.
    Status(SyncStatus),
    /// Something went wrong that a log or a notification should mention
    /// (the status shows the lasting ones).
    Problem(SyncProblem),
    /// The connection is closed; reconnecting is due in `ms` (feed `Tick`
    /// then, and the engine answers `Connect`).
    ReconnectAfter {
        /// Delay in milliseconds.
        ms: u64,
    },
    /// Feed `Input::Tick` in `ms` (a timeout or a pause is due).
    WakeAfter {
        /// Delay in milliseconds.
        ms: u64,
    },
    /// The relay confirmed deleting every envelope of these records (asked
    /// for by `Input::EraseOnRelay`). Persist them (meta
    /// `privacy/relay-erased`), so they are not asked for again after a
    /// restart.
    RelayErased(Vec<RecordId>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Conn {
    Disconnected,
    /// `Connect` emitted, waiting for `Connected`.
    Opening {
        since: u64,
    },
    /// Transport open, waiting for the relay's challenge.
    AwaitingChallenge {
        since: u64,
    },
    /// Hello sent, waiting for `Welcome`.
    AwaitingWelcome {
        since: u64,
    },
    Ready,
}

#[derive(Debug, Clone, Copy)]
struct PullInFlight {
    id: RequestId,
    sent_at: u64,
    since: Seq,
}

#[derive(Debug, Clone)]
struct PushInFlight {
    id: RequestId,
    sent_at: u64,
    outbox: Vec<u64>,
    /// A `ReplaceWithSnapshot` (answered by `SnapshotStored`), not a `Push`.
    snapshot: bool,
}

#[derive(Debug, Clone, Copy)]
struct EraseInFlight {
    record: RecordId,
    sent_at: u64,
}

#[derive(Debug, Clone, Copy)]
struct PingInFlight {
    id: RequestId,
    sent_at: u64,
}

/// Received entries waiting for the app, in log order: changes to apply,
/// or entries to set aside.
#[derive(Debug)]
struct Pending {
    entries: Vec<Received>,
    /// Entries to record as set aside (then `entries` is empty).
    quarantine: Vec<QuarantinedChange>,
    /// Echoed by the app.
    through: Seq,
    /// The cursor once these are applied, when they directly follow it.
    advance: Option<Seq>,
}

impl Pending {
    fn changes(entries: Vec<Received>, through: Seq, advance: Option<Seq>) -> Self {
        Self { entries, quarantine: Vec::new(), through, advance }
    }

    fn set_aside(quarantine: Vec<QuarantinedChange>, through: Seq) -> Self {
        Self { entries: Vec::new(), quarantine, through, advance: Some(through) }
    }
}

/// The outstanding apply (or quarantine).
#[derive(Debug, Clone)]
struct Applying {
    through: Seq,
    advance: Option<Seq>,
    /// The position and record of each entry handed to the app.
    records: Vec<(Seq, RecordId)>,
}

enum Retry {
    /// Exponential back-off.
    Backoff,
    /// The longest back-off: retrying soon cannot help.
    Slowly,
    /// Never on its own: only a new `Start`.
    Never,
}

/// The client side of the relay protocol for one workspace. See the module
/// doc.
pub struct SyncEngine {
    keys: Keys,
    register: bool,
    timing: Timing,
    conn: Conn,
    stopped: bool,
    refused: bool,
    problem: Option<SyncProblem>,
    backoff: Backoff,
    reconnect_at: Option<u64>,

    /// Everything up to here is durably applied.
    cursor: Seq,
    /// Everything up to here is received in order (applied or queued).
    expected: Seq,
    /// The newest sequence number known to exist on the relay.
    head: Seq,
    /// The cursor when this catch-up began (progress).
    base: Seq,
    queue: VecDeque<Pending>,
    applying: Option<Applying>,

    limits: Option<ServerLimits>,
    next_request: RequestId,
    pull: Option<PullInFlight>,
    more: bool,
    push: Option<PushInFlight>,
    ping: Option<PingInFlight>,
    outbox_wanted: bool,
    outbox_reading: bool,
    too_large: BTreeMap<u64, SyncProblem>,
    hold_until: Option<u64>,
    last_heard: u64,
    /// After `Welcome`: the outbox is read only once the log up to here is
    /// applied (pull before push).
    push_after: Option<Seq>,
    /// The incarnation of the log the cursor is a position in (as saved).
    incarnation: Option<Incarnation>,
    /// The incarnation `Welcome` announced on this connection.
    relay_incarnation: Option<Incarnation>,
    /// `ResetLog` emitted, `LogReset` not yet received: nothing is pulled
    /// or pushed meanwhile.
    resetting: Option<Incarnation>,
    /// The relay refused a snapshot as computed against another
    /// incarnation: reset at the next `Welcome` whatever it announces.
    force_reset: bool,

    /// Records to delete on the relay: not sent yet, or to be sent again.
    erase_owed: BTreeSet<RecordId>,
    /// `DeleteDocument` requests awaiting `DocumentDeleted`.
    erase_sent: BTreeMap<RequestId, EraseInFlight>,

    last_status: Option<SyncStatus>,
    last_wake: Option<u64>,
}

impl std::fmt::Debug for SyncEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyncEngine")
            .field("workspace", &self.keys.workspace())
            .field("conn", &self.conn)
            .field("cursor", &self.cursor)
            .field("expected", &self.expected)
            .field("head", &self.head)
            .field("status", &self.status())
            .finish_non_exhaustive()
    }
}

fn random4(rng: &mut dyn Random) -> [u8; 4] {
    let mut bytes = [0; 4];
    rng.fill(&mut bytes);
    bytes
}

fn strictly_increasing(entries: &[LogEntry]) -> bool {
    entries.windows(2).all(|w| w[0].seq < w[1].seq)
}

fn consecutive(seqs: impl Iterator<Item = Seq>) -> bool {
    let mut prev: Option<Seq> = None;
    for s in seqs {
        if let Some(p) = prev {
            if p.0.checked_add(1) != Some(s.0) {
                return false;
            }
        }
        prev = Some(s);
    }
    true
}

/// Why an entry cannot be read, in plain words, and the record it names
/// when it could be read that far.
fn unreadable(error: EnvelopeError) -> (Option<RecordId>, String) {
    use crate::plaintext::PlaintextError;
    match error {
        EnvelopeError::Crypto(_) => (
            None,
            "it could not be decrypted with this workspace's key: it was damaged, or written with another key".into(),
        ),
        EnvelopeError::Plaintext(PlaintextError::UnsupportedVersion { found, .. }) => (
            None,
            format!(
                "it was written by a newer version of Rapport (format {found}); update the app to read such changes"
            ),
        ),
        EnvelopeError::Plaintext(_) => (None, "its content is damaged".into()),
        EnvelopeError::WrongDocument { record } => {
            (Some(record), "it names another record than the one it was filed under".into())
        }
    }
}

fn next_seq(seq: Seq) -> Seq {
    Seq(seq.0.saturating_add(1))
}

impl SyncEngine {
    /// An engine for the workspace of `keys`, starting from the persisted
    /// `cursor` (`Seq::ZERO` on first use). `register` sends the workspace's
    /// verifier in `Hello` (set it on the device that created the workspace).
    /// It stays offline until `Input::Start`.
    pub fn new(keys: Keys, register: bool, cursor: Seq) -> Self {
        Self::with_timing(keys, register, cursor, Timing::default())
    }

    /// As [`SyncEngine::new`] with explicit timeouts and sizes.
    pub fn with_timing(keys: Keys, register: bool, cursor: Seq, timing: Timing) -> Self {
        let backoff = Backoff::new(timing.backoff_base_ms, timing.backoff_max_ms);
        Self {
            keys,
            register,
            timing,
            conn: Conn::Disconnected,
            stopped: true,
            refused: false,
            problem: None,
            backoff,
            reconnect_at: None,
            cursor,
            expected: cursor,
            head: cursor,
            base: cursor,
            queue: VecDeque::new(),
            applying: None,
            limits: None,
            next_request: 0,
            pull: None,
            more: false,
            push: None,
            ping: None,
            outbox_wanted: false,
            outbox_reading: false,
            too_large: BTreeMap::new(),
            hold_until: None,
            last_heard: 0,
            push_after: None,
            incarnation: None,
            relay_incarnation: None,
            resetting: None,
            force_reset: false,
            erase_owed: BTreeSet::new(),
            erase_sent: BTreeMap::new(),
            last_status: None,
            last_wake: None,
        }
    }

    /// The incarnation of the relay's log that the cursor belongs to, as
    /// saved in meta `sync/incarnation` (`None` before the first
    /// `Welcome`). Without it, a cursor above 0 is not trusted: the first
    /// `Welcome` resets the log once.
    pub fn with_incarnation(mut self, incarnation: Option<Incarnation>) -> Self {
        self.incarnation = incarnation;
        self
    }

    /// The incarnation of the relay's log the cursor is a position in.
    pub fn incarnation(&self) -> Option<Incarnation> {
        self.incarnation
    }

    /// The durably applied position in the workspace log.
    pub fn cursor(&self) -> Seq {
        self.cursor
    }

    /// The newest log position known to exist on the relay.
    pub fn head(&self) -> Seq {
        self.head
    }

    /// Whether the connection is authenticated.
    pub fn is_ready(&self) -> bool {
        self.conn == Conn::Ready
    }

    /// Records whose deletion on the relay is asked for and not yet
    /// confirmed (waiting, or in flight).
    pub fn erasing(&self) -> BTreeSet<RecordId> {
        let mut all = self.erase_owed.clone();
        all.extend(self.erase_sent.values().map(|e| e.record));
        all
    }

    /// The timeouts and sizes in use.
    pub fn timing(&self) -> &Timing {
        &self.timing
    }

    /// The back-off state (how many attempts failed in a row).
    pub fn backoff(&self) -> &Backoff {
        &self.backoff
    }

    /// What the UI should show now.
    pub fn status(&self) -> SyncStatus {
        if self.stopped {
            return SyncStatus::Offline;
        }
        if self.refused {
            return SyncStatus::Error(self.problem.clone().unwrap_or(SyncProblem::AccessRefused));
        }
        match self.conn {
            Conn::Disconnected => self.problem.clone().map_or(SyncStatus::Offline, SyncStatus::Error),
            Conn::Opening { .. } | Conn::AwaitingChallenge { .. } | Conn::AwaitingWelcome { .. } => {
                self.problem.clone().map_or(SyncStatus::Connecting, SyncStatus::Error)
            }
            Conn::Ready => {
                let busy = self.pull.is_some()
                    || self.more
                    || self.expected != self.head
                    || self.applying.is_some()
                    || !self.queue.is_empty()
                    || self.push.is_some()
                    || self.outbox_reading
                    || self.outbox_wanted
                    || self.hold_until.is_some()
                    || self.resetting.is_some()
                    || !self.erase_owed.is_empty()
                    || !self.erase_sent.is_empty();
                if busy {
                    let total = self.head.0.saturating_sub(self.base.0);
                    let done = self.cursor.0.saturating_sub(self.base.0).min(total);
                    SyncStatus::Syncing { done, total }
                } else if let Some(problem) = self.too_large.values().next() {
                    SyncStatus::Error(problem.clone())
                } else {
                    SyncStatus::UpToDate
                }
            }
        }
    }

    /// Handles one event at time `now_ms` (milliseconds, any fixed origin)
    /// and returns what to do, in order.
    pub fn handle(&mut self, now_ms: u64, rng: &mut dyn Random, input: Input<'_>) -> Vec<Output> {
        let mut out = Vec::new();
        let now = now_ms;
        match input {
            Input::Start => self.start(now, &mut out),
            Input::Stop => self.stop(&mut out),
            Input::Connected => self.connected(now, &mut out),
            Input::Frame(frame) => self.frame(now, rng, frame, &mut out),
            Input::Disconnected => {
                if self.conn != Conn::Disconnected {
                    self.lost(now, rng, SyncProblem::RelayUnreachable, Retry::Backoff, &mut out);
                }
            }
            Input::LocalChanges => self.outbox_wanted = true,
            Input::Outbox(entries) => self.outbox(now, rng, entries, &mut out),
            Input::Applied { through } => self.applied(through, None, now, rng, &mut out),
            Input::ApplyFailed { through, failure } => self.applied(through, Some(failure), now, rng, &mut out),
            Input::StorageFailed(error) => {
                self.outbox_reading = false;
                let problem = match error {
                    StorageError::QuotaExceeded => SyncProblem::StorageFull,
                    other => SyncProblem::LocalStorage(other.to_string()),
                };
                out.push(Output::Problem(problem.clone()));
                if self.conn == Conn::Disconnected {
                    self.problem = Some(problem);
                } else {
                    self.fail(now, rng, problem, Retry::Backoff, &mut out);
                }
            }
            Input::Tick => {
                self.last_wake = None;
                self.tick(now, rng, &mut out);
            }
            Input::EraseOnRelay(records) => self.erase_owed.extend(records),
            Input::LogReset { incarnation } => {
                if self.resetting == Some(incarnation) {
                    self.resetting = None;
                    self.incarnation = Some(incarnation);
                }
            }
        }
        self.drive_apply(&mut out);
        self.pump(now, &mut out);
        self.announce(now, &mut out);
        out
    }

    fn start(&mut self, now: u64, out: &mut Vec<Output>) {
        self.stopped = false;
        self.refused = false;
        match self.conn {
            Conn::Disconnected => self.connect_now(now, out),
            Conn::Ready => {
                self.outbox_wanted = true;
                self.more = true;
            }
            _ => {}
        }
    }

    fn stop(&mut self, out: &mut Vec<Output>) {
        self.stopped = true;
        self.reconnect_at = None;
        if self.conn != Conn::Disconnected {
            out.push(Output::Close);
            self.drop_session();
            self.conn = Conn::Disconnected;
        }
    }

    fn connect_now(&mut self, now: u64, out: &mut Vec<Output>) {
        self.conn = Conn::Opening { since: now };
        self.reconnect_at = None;
        self.last_wake = None;
        out.push(Output::Connect);
    }

    fn connected(&mut self, now: u64, out: &mut Vec<Output>) {
        match self.conn {
            _ if self.stopped || self.refused => out.push(Output::Close),
            Conn::Disconnected | Conn::Opening { .. } => {
                self.conn = Conn::AwaitingChallenge { since: now };
                self.reconnect_at = None;
                self.last_heard = now;
            }
            // A duplicate report: the connection is already open.
            _ => {}
        }
    }

    /// Forgets everything tied to the connection. Received entries stay
    /// queued: they are valid whatever happens to the connection.
    fn drop_session(&mut self) {
        self.limits = None;
        self.pull = None;
        self.more = false;
        self.push = None;
        self.ping = None;
        self.outbox_wanted = false;
        self.outbox_reading = false;
        self.hold_until = None;
        self.push_after = None;
        self.relay_incarnation = None;
        // A reset not confirmed is done again after the next `Welcome`
        // (the saved incarnation is still the old one).
        self.resetting = None;
        // Unconfirmed deletes are sent again on the next connection.
        let unconfirmed = std::mem::take(&mut self.erase_sent);
        self.erase_owed.extend(unconfirmed.into_values().map(|e| e.record));
    }

    /// The connection is gone: schedule the next attempt.
    fn lost(&mut self, now: u64, rng: &mut dyn Random, problem: SyncProblem, retry: Retry, out: &mut Vec<Output>) {
        self.drop_session();
        self.conn = Conn::Disconnected;
        self.problem = Some(problem);
        if self.stopped {
            return;
        }
        let delay = match retry {
            Retry::Backoff => self.backoff.next_delay(random4(rng)),
            Retry::Slowly => self.backoff.max_delay(random4(rng)),
            Retry::Never => {
                self.refused = true;
                self.reconnect_at = None;
                return;
            }
        };
        let at = now.saturating_add(delay);
        self.reconnect_at = Some(at);
        self.last_wake = Some(at);
        out.push(Output::ReconnectAfter { ms: delay });
    }

    /// Closes the connection because of `problem`.
    fn fail(&mut self, now: u64, rng: &mut dyn Random, problem: SyncProblem, retry: Retry, out: &mut Vec<Output>) {
        if self.conn != Conn::Disconnected {
            out.push(Output::Close);
        }
        self.lost(now, rng, problem, retry, out);
    }

    fn protocol_error(&mut self, now: u64, rng: &mut dyn Random, detail: String, out: &mut Vec<Output>) {
        let problem = SyncProblem::Protocol(detail);
        out.push(Output::Problem(problem.clone()));
        self.fail(now, rng, problem, Retry::Backoff, out);
    }

    fn request_id(&mut self) -> RequestId {
        self.next_request = self.next_request.wrapping_add(1);
        self.next_request
    }

    fn send(&mut self, msg: &ClientMessage, out: &mut Vec<Output>) {
        match msg.encode() {
            Ok(frame) => out.push(Output::Send(frame)),
            // Not expected; the request then times out and the connection
            // is replaced.
            Err(e) => out.push(Output::Problem(SyncProblem::Protocol(e.to_string()))),
        }
    }

    fn frame(&mut self, now: u64, rng: &mut dyn Random, frame: &[u8], out: &mut Vec<Output>) {
        if matches!(self.conn, Conn::Disconnected | Conn::Opening { .. }) {
            return;
        }
        self.last_heard = now;
        let msg = match ServerMessage::decode(frame) {
            Ok(msg) => msg,
            Err(DecodeError::UnsupportedVersion { found, supported }) => {
                let problem = SyncProblem::VersionMismatch { relay: found, app: supported };
                out.push(Output::Problem(problem.clone()));
                return self.fail(now, rng, problem, Retry::Slowly, out);
            }
            Err(e) => return self.protocol_error(now, rng, format!("an unreadable message: {e}"), out),
        };
        match (self.conn, msg) {
            (_, ServerMessage::Error(error)) => self.wire_error(now, rng, error, out),
            (Conn::AwaitingChallenge { .. }, ServerMessage::Challenge { nonce }) => {
                let hello = ClientMessage::Hello {
                    workspace: self.keys.workspace(),
                    signature: self.keys.sign_challenge(&nonce),
                    register: self.register.then(|| self.keys.verifier()),
                };
                self.send(&hello, out);
                self.conn = Conn::AwaitingWelcome { since: now };
            }
            (Conn::AwaitingWelcome { .. }, ServerMessage::Welcome { head, limits, incarnation }) => {
                self.conn = Conn::Ready;
                self.problem = None;
                self.limits = Some(limits);
                self.relay_incarnation = Some(incarnation);
                let reset = self.force_reset
                    || match self.incarnation {
                        Some(known) => known != incarnation,
                        // Nothing read from any incarnation yet: adopt it.
                        // A cursor without one (an app from before
                        // incarnations) cannot be trusted: reset once.
                        None => self.cursor != Seq::ZERO || self.expected != Seq::ZERO,
                    };
                if reset {
                    self.reset_log(incarnation, out);
                } else if self.incarnation.is_none() {
                    self.incarnation = Some(incarnation);
                    out.push(Output::SaveIncarnation(incarnation));
                }
                self.head = head;
                self.base = self.cursor;
                // A cursor past the head: the relay lost data; the pull
                // gets `CursorAhead`.
                self.more = self.expected > head;
                self.outbox_wanted = true;
                // Pull before pushing: a tombstone that arrived meanwhile
                // is merged before local edits of its record could leave.
                self.push_after = (self.expected != head).then_some(head);
                // The limits may have changed: judge every change again.
                self.too_large.clear();
            }
            (Conn::Ready, ServerMessage::Batch { request, entries, cursor, more }) => {
                self.batch(now, rng, request, entries, cursor, more, out)
            }
            (Conn::Ready, ServerMessage::Pushed { request, seqs }) => self.pushed(now, rng, request, seqs, out),
            (Conn::Ready, ServerMessage::SnapshotStored { request, seq, .. }) => {
                self.snapshot_stored(now, rng, request, seq, out)
            }
            (Conn::Ready, ServerMessage::Live { entries }) => self.live(now, rng, entries, out),
            (Conn::Ready, ServerMessage::Behind { head }) => {
                self.head = self.head.max(head);
                self.more = true;
            }
            (Conn::Ready, ServerMessage::Pong { request }) if self.ping.is_some_and(|p| p.id == request) => {
                self.ping = None;
            }
            (Conn::Ready, ServerMessage::DocumentDeleted { request, .. }) if self.erase_sent.contains_key(&request) => {
                self.document_deleted(request, out)
            }
            (_, other) => {
                let name = match other {
                    ServerMessage::Challenge { .. } => "Challenge",
                    ServerMessage::Welcome { .. } => "Welcome",
                    ServerMessage::Pushed { .. } => "Pushed",
                    ServerMessage::Batch { .. } => "Batch",
                    ServerMessage::SnapshotStored { .. } => "SnapshotStored",
                    ServerMessage::DocumentDeleted { .. } => "DocumentDeleted",
                    ServerMessage::Live { .. } => "Live",
                    ServerMessage::Behind { .. } => "Behind",
                    ServerMessage::Pong { .. } => "Pong",
                    ServerMessage::Error(_) => "Error",
                };
                self.protocol_error(now, rng, format!("an unexpected {name} message"), out)
            }
        }
    }

    fn wire_error(&mut self, now: u64, rng: &mut dyn Random, error: WireError, out: &mut Vec<Output>) {
        let detail = format!("{:?}: {}", error.code, error.message);
        match error.code {
            ErrorCode::Unauthorized => {
                out.push(Output::Problem(SyncProblem::AccessRefused));
                self.fail(now, rng, SyncProblem::AccessRefused, Retry::Never, out);
            }
            ErrorCode::UnknownWorkspace => {
                out.push(Output::Problem(SyncProblem::UnknownWorkspace));
                self.fail(now, rng, SyncProblem::UnknownWorkspace, Retry::Slowly, out);
            }
            ErrorCode::RateLimited if !error.fatal && self.conn == Conn::Ready => {
                let wait = u64::from(error.retry_after_ms.unwrap_or(1_000)).clamp(1, self.timing.backoff_max_ms);
                self.hold_until = Some(now.saturating_add(wait));
                if let Some(request) = error.request {
                    if self.pull.is_some_and(|p| p.id == request) {
                        self.pull = None;
                        self.more = true;
                    }
                    if self.push.as_ref().is_some_and(|p| p.id == request) {
                        self.push = None;
                        self.outbox_wanted = true;
                    }
                    if self.ping.is_some_and(|p| p.id == request) {
                        self.ping = None;
                    }
                    if let Some(erase) = self.erase_sent.remove(&request) {
                        self.erase_owed.insert(erase.record);
                    }
                }
            }
            ErrorCode::CursorAhead
                if !error.fatal && error.request.is_some_and(|r| self.pull.is_some_and(|p| p.id == r)) =>
            {
                self.restart_log(out)
            }
            // The relay's log is not the one our snapshot's cursor came
            // from: nothing was deleted. Reconnect and reset; the snapshot
            // stays queued and goes again over the new log.
            ErrorCode::IncarnationChanged
                if !error.fatal && error.request.is_some_and(|r| self.push.as_ref().is_some_and(|p| p.id == r)) =>
            {
                self.force_reset = true;
                out.push(Output::Problem(SyncProblem::RelayReset));
                self.fail(now, rng, SyncProblem::RelayReset, Retry::Backoff, out);
            }
            ErrorCode::Unavailable | ErrorCode::HandshakeTimeout | ErrorCode::IdleTimeout => {
                self.fail(now, rng, SyncProblem::RelayUnreachable, Retry::Backoff, out)
            }
            ErrorCode::Internal => {
                let problem = SyncProblem::RelayFailed(error.message);
                out.push(Output::Problem(problem.clone()));
                self.fail(now, rng, problem, Retry::Backoff, out);
            }
            ErrorCode::UnsupportedVersion => {
                let problem = SyncProblem::Protocol(detail);
                out.push(Output::Problem(problem.clone()));
                self.fail(now, rng, problem, Retry::Slowly, out);
            }
            _ => self.protocol_error(now, rng, detail, out),
        }
    }

    /// `CursorAhead`: the relay's log is shorter than this device's cursor
    /// (restored from a backup, or another relay). Pull everything again and
    /// upload every local document, so the relay gets back what it lost.
    fn restart_log(&mut self, out: &mut Vec<Output>) {
        self.pull = None;
        self.cursor = Seq::ZERO;
        self.expected = Seq::ZERO;
        self.base = Seq::ZERO;
        self.more = true;
        for pending in &mut self.queue {
            pending.advance = None;
        }
        if let Some(applying) = &mut self.applying {
            applying.advance = None;
        }
        out.push(Output::SaveCursor(Seq::ZERO));
        out.push(Output::Reupload);
        self.outbox_wanted = true;
        // The relay's log comes first (it may hold tombstones), then the
        // upload.
        self.push_after = Some(self.head);
    }

    /// `Welcome` named another incarnation of the log: forget every
    /// position in the old one and have the app reset (`ResetLog`); pull
    /// from zero once it answers `LogReset`, then upload.
    fn reset_log(&mut self, incarnation: Incarnation, out: &mut Vec<Output>) {
        self.force_reset = false;
        self.cursor = Seq::ZERO;
        self.expected = Seq::ZERO;
        self.base = Seq::ZERO;
        for pending in &mut self.queue {
            pending.advance = None;
        }
        if let Some(applying) = &mut self.applying {
            applying.advance = None;
        }
        // Entries set aside are positions in the old log: judged again.
        self.too_large.clear();
        self.resetting = Some(incarnation);
        out.push(Output::Problem(SyncProblem::RelayReset));
        out.push(Output::ResetLog { incarnation });
    }

    /// The relay deleted a record's envelopes. It is confirmed unless it was
    /// asked for again meanwhile (then it is deleted once more first).
    fn document_deleted(&mut self, request: RequestId, out: &mut Vec<Output>) {
        let Some(erase) = self.erase_sent.remove(&request) else { return };
        if !self.erase_owed.contains(&erase.record) {
            out.push(Output::RelayErased(vec![erase.record]));
        }
    }

    /// Queues entries that directly follow `expected`, advancing to
    /// `through`: runs of readable changes to apply, and each entry that
    /// cannot be read set aside in between (reported too).
    fn accept_in_order(&mut self, entries: &[LogEntry], through: Seq, out: &mut Vec<Output>) {
        let mut good: Vec<Received> = Vec::new();
        let mut bad: Vec<QuarantinedChange> = Vec::new();
        for entry in entries {
            match open_envelope(&self.keys, &entry.envelope) {
                Ok((record, bytes)) => {
                    if let Some(last) = bad.last().map(|b| b.seq) {
                        self.queue.push_back(Pending::set_aside(std::mem::take(&mut bad), last));
                    }
                    good.push(Received { seq: entry.seq, record, bytes });
                }
                Err(e) => {
                    if !good.is_empty() {
                        let before = Seq(entry.seq.0.saturating_sub(1));
                        self.queue.push_back(Pending::changes(std::mem::take(&mut good), before, Some(before)));
                    }
                    let detail = e.to_string();
                    out.push(Output::Problem(SyncProblem::UnreadableChange { seq: entry.seq, reason: detail.clone() }));
                    let (record, reason) = unreadable(e);
                    bad.push(QuarantinedChange { seq: entry.seq, record, reason, detail });
                }
            }
        }
        if let Some(last) = bad.last().map(|b| b.seq) {
            self.queue.push_back(Pending::set_aside(bad, last));
        }
        let through = through.max(self.expected);
        self.expected = through;
        self.queue.push_back(Pending::changes(good, through, Some(through)));
    }

    #[allow(clippy::too_many_arguments)]
    fn batch(
        &mut self,
        now: u64,
        rng: &mut dyn Random,
        request: RequestId,
        entries: Vec<LogEntry>,
        cursor: Seq,
        more: bool,
        out: &mut Vec<Output>,
    ) {
        let Some(pull) = self.pull.filter(|p| p.id == request) else {
            return self.protocol_error(now, rng, format!("a page answering request {request}, never sent"), out);
        };
        let well_formed = strictly_increasing(&entries)
            && cursor >= pull.since
            && entries.first().is_none_or(|e| e.seq > pull.since)
            && entries.last().is_none_or(|e| e.seq <= cursor)
            && !(more && entries.is_empty());
        if !well_formed {
            return self.protocol_error(now, rng, "a page of changes out of order".into(), out);
        }
        self.pull = None;
        self.head = self.head.max(cursor);
        self.more = more;
        let fresh: Vec<LogEntry> = entries.into_iter().filter(|e| e.seq > self.expected).collect();
        self.accept_in_order(&fresh, cursor, out);
    }

    /// Whether `entries` more received entries fit in the queue
    /// (`Timing::max_queued_entries`, `max_queued_bytes`).
    fn room_for(&self, entries: &[LogEntry]) -> bool {
        let (mut count, mut bytes) =
            (entries.len(), entries.iter().map(|e| e.envelope.ciphertext.len()).sum::<usize>());
        for pending in &self.queue {
            count += pending.entries.len();
            bytes += pending.entries.iter().map(|e| e.bytes.len()).sum::<usize>();
        }
        count <= self.timing.max_queued_entries && bytes <= self.timing.max_queued_bytes
    }

    fn live(&mut self, now: u64, rng: &mut dyn Random, entries: Vec<LogEntry>, out: &mut Vec<Output>) {
        if !strictly_increasing(&entries) {
            return self.protocol_error(now, rng, "live changes out of order".into(), out);
        }
        let Some(last) = entries.last().map(|e| e.seq) else { return };
        self.head = self.head.max(last);
        let fresh: Vec<LogEntry> = entries.into_iter().filter(|e| e.seq > self.expected).collect();
        let Some(first) = fresh.first().map(|e| e.seq) else { return };
        if !self.room_for(&fresh) {
            // The app is behind: keep only the raised head. The pull that a
            // head past `expected` starts once the queue drains brings
            // these entries again, in order, one page at a time.
            return;
        }
        let in_order =
            self.pull.is_none() && first == next_seq(self.expected) && consecutive(fresh.iter().map(|e| e.seq));
        if in_order {
            self.accept_in_order(&fresh, last, out);
            return;
        }
        // A hint: apply what opens without moving the cursor; the pull that
        // the gap triggers brings these again, in order (and reports any
        // that do not open).
        let received: Vec<Received> = fresh
            .iter()
            .filter_map(|e| {
                open_envelope(&self.keys, &e.envelope).ok().map(|(record, bytes)| Received {
                    seq: e.seq,
                    record,
                    bytes,
                })
            })
            .collect();
        if !received.is_empty() {
            self.queue.push_back(Pending::changes(received, self.expected, None));
        }
    }

    fn pushed(&mut self, now: u64, rng: &mut dyn Random, request: RequestId, seqs: Vec<Seq>, out: &mut Vec<Output>) {
        let Some(push) = self.push.take_if(|p| p.id == request && !p.snapshot) else {
            return self.protocol_error(now, rng, format!("an acknowledgement of push {request}, never sent"), out);
        };
        if seqs.len() != push.outbox.len() || !consecutive(seqs.iter().copied()) {
            // Do not acknowledge what may not be stored: push again later.
            return self.protocol_error(
                now,
                rng,
                format!("{} positions for a push of {} changes", seqs.len(), push.outbox.len()),
                out,
            );
        }
        out.push(Output::AckOutbox(push.outbox));
        self.outbox_wanted = true;
        let (Some(&first), Some(&last)) = (seqs.first(), seqs.last()) else { return };
        self.head = self.head.max(last);
        // Our own changes directly after the cursor: they are already in
        // local storage (the outbox is written with the edit), so the
        // cursor can pass them without downloading them back.
        if first == next_seq(self.expected) {
            self.expected = last;
            self.queue.push_back(Pending::changes(Vec::new(), last, Some(last)));
        }
    }

    /// The relay replaced the record's envelopes up to `covers_through`
    /// with our snapshot, stored at `seq`.
    fn snapshot_stored(&mut self, now: u64, rng: &mut dyn Random, request: RequestId, seq: Seq, out: &mut Vec<Output>) {
        let Some(push) = self.push.take_if(|p| p.id == request && p.snapshot) else {
            return self.protocol_error(now, rng, format!("a stored snapshot for request {request}, never sent"), out);
        };
        out.push(Output::AckOutbox(push.outbox));
        self.outbox_wanted = true;
        self.head = self.head.max(seq);
        // As for our own pushes: the snapshot is our stored document, so the
        // cursor may pass it when it directly follows.
        if seq == next_seq(self.expected) {
            self.expected = seq;
            self.queue.push_back(Pending::changes(Vec::new(), seq, Some(seq)));
        }
    }

    /// Sends a snapshot entry alone as `ReplaceWithSnapshot`, covering what
    /// is applied. `false` when it is too large for a frame (reported and
    /// left queued, as a change would be).
    fn send_snapshot(&mut self, now: u64, rng: &mut dyn Random, entry: &OutboxEntry, out: &mut Vec<Output>) -> bool {
        let Some(limits) = self.limits else { return false };
        let mut nonce = [0u8; ENVELOPE_NONCE_LEN];
        rng.fill(&mut nonce);
        let request = self.next_request.wrapping_add(1);
        // `covers_through` is a position in the log this connection's
        // `Welcome` named; the relay refuses it under any other.
        let Some(incarnation) = self.relay_incarnation else { return false };
        let message = seal_change_within(&self.keys, entry.id, &entry.bytes, nonce, limits.max_frame_bytes as usize)
            .ok()
            .map(|snapshot| ClientMessage::ReplaceWithSnapshot {
                request,
                snapshot,
                covers_through: self.cursor,
                incarnation,
            });
        let frame = message.as_ref().and_then(|m| m.encode().ok());
        let size = frame.as_ref().map_or(entry.bytes.len(), Vec::len);
        let max_frame = limits.max_frame_bytes as usize;
        let storable = matches!(&message, Some(ClientMessage::ReplaceWithSnapshot { snapshot, .. }) if fits_alone(snapshot, max_frame));
        let Some(frame) = frame.filter(|f| storable && f.len() <= max_frame) else {
            let problem = SyncProblem::ChangeTooLarge { record: entry.id, bytes: size, limit: limits.max_frame_bytes };
            out.push(Output::Problem(problem.clone()));
            self.too_large.insert(entry.seq, problem);
            return false;
        };
        let request = self.request_id();
        out.push(Output::Send(frame));
        self.push = Some(PushInFlight { id: request, sent_at: now, outbox: vec![entry.seq], snapshot: true });
        true
    }

    fn outbox(&mut self, now: u64, rng: &mut dyn Random, entries: Vec<OutboxEntry>, out: &mut Vec<Output>) {
        self.outbox_reading = false;
        let Some(limits) = self.limits.filter(|_| self.conn == Conn::Ready) else { return };
        if self.push.is_some() {
            self.outbox_wanted = true;
            return;
        }
        let max_count = limits.max_envelopes_per_push.min(self.timing.push_max_envelopes).max(1) as usize;
        let max_frame = limits.max_frame_bytes as usize;
        // The id is taken only if something is pushed.
        let request = self.next_request.wrapping_add(1);
        // version byte, variant index, request id; the count is added below.
        let fixed = 1 + 1 + varint_len(u64::from(request));
        let mut size = fixed;
        let mut envelopes = Vec::new();
        let mut seqs = Vec::new();
        for entry in entries {
            if envelopes.len() == max_count {
                break;
            }
            if self.too_large.contains_key(&entry.seq) {
                continue;
            }
            if entry.kind == OutboxKind::Snapshot {
                // In outbox order: the changes before it go first, and it
                // goes alone.
                if !envelopes.is_empty() {
                    break;
                }
                if self.send_snapshot(now, rng, &entry, out) {
                    return;
                }
                continue;
            }
            let mut nonce = [0u8; ENVELOPE_NONCE_LEN];
            rng.fill(&mut nonce);
            let (envelope, env_size) = match seal_change_within(&self.keys, entry.id, &entry.bytes, nonce, max_frame) {
                Ok(env) => {
                    let env_size = envelope_len(&env);
                    (Some(env), env_size)
                }
                Err(_) => (None, usize::MAX),
            };
            // The relay's rule (`fits_alone`): it stores only envelopes that a
            // batch can carry alone under the widest numbers.
            let Some(envelope) = envelope.filter(|e| fits_alone(e, max_frame)) else {
                let problem = SyncProblem::ChangeTooLarge {
                    record: entry.id,
                    bytes: if env_size == usize::MAX { entry.bytes.len() } else { env_size },
                    limit: limits.max_frame_bytes,
                };
                out.push(Output::Problem(problem.clone()));
                self.too_large.insert(entry.seq, problem);
                continue;
            };
            let count_len = varint_len(envelopes.len() as u64 + 1);
            if size + env_size + count_len > max_frame {
                break;
            }
            size += env_size;
            envelopes.push(envelope);
            seqs.push(entry.seq);
        }
        if envelopes.is_empty() {
            // The outbox is drained (or holds only changes too large).
            return;
        }
        let request = self.request_id();
        self.send(&ClientMessage::Push { request, envelopes }, out);
        self.push = Some(PushInFlight { id: request, sent_at: now, outbox: seqs, snapshot: false });
    }

    fn applied(
        &mut self,
        through: Seq,
        failure: Option<ApplyFailure>,
        now: u64,
        rng: &mut dyn Random,
        out: &mut Vec<Output>,
    ) {
        let Some(applying) = self.applying.take_if(|a| a.through == through) else {
            // Not the outstanding apply: a stale or duplicate answer.
            return;
        };
        let Some(failure) = failure else {
            if let Some(advance) = applying.advance {
                self.advance_cursor(advance, out);
            }
            return;
        };
        let Some(advance) = applying.advance else {
            // Live entries applied as a hint: the pull brings them again in
            // order, and stops before a rejected one then.
            if let ApplyFailureKind::Rejected(reason) = failure.kind {
                out.push(Output::Problem(SyncProblem::UnreadableChange { seq: failure.at, reason }));
                return;
            }
            return self.apply_storage_failed(now, rng, failure.kind, out);
        };
        self.advance_cursor(Seq(failure.at.0.saturating_sub(1)).min(advance), out);
        // Whatever was queued after the failure is received again later.
        self.queue.clear();
        self.expected = self.cursor;
        let rejected = applying.records.iter().find(|(seq, _)| *seq == failure.at && *seq > self.cursor);
        match (failure.kind, rejected) {
            // The app refused one entry of the apply: set it aside, then
            // pull on from just after it.
            (ApplyFailureKind::Rejected(detail), Some(&(seq, record))) => {
                out.push(Output::Problem(SyncProblem::UnreadableChange { seq, reason: detail.clone() }));
                let reason = "its content could not be merged into this device's copy of the record".to_owned();
                let change = QuarantinedChange { seq, record: Some(record), reason, detail };
                self.queue.push_back(Pending::set_aside(vec![change], seq));
                self.expected = seq;
                self.more = true;
            }
            // A refusal naming no entry of the apply: the app is confused;
            // start over from the saved cursor.
            (kind, _) => self.apply_storage_failed(now, rng, kind, out),
        }
    }

    fn apply_storage_failed(&mut self, now: u64, rng: &mut dyn Random, kind: ApplyFailureKind, out: &mut Vec<Output>) {
        let problem = match kind {
            ApplyFailureKind::StorageFull => SyncProblem::StorageFull,
            ApplyFailureKind::Storage(detail) | ApplyFailureKind::Rejected(detail) => SyncProblem::LocalStorage(detail),
        };
        out.push(Output::Problem(problem.clone()));
        if self.conn == Conn::Disconnected {
            self.problem = Some(problem);
        } else {
            self.fail(now, rng, problem, Retry::Backoff, out);
        }
    }
    fn advance_cursor(&mut self, to: Seq, out: &mut Vec<Output>) {
        if to > self.cursor {
            self.cursor = to;
            out.push(Output::SaveCursor(to));
        }
    }

    /// Hands the next queued entries to the app, one apply (or quarantine)
    /// at a time.
    fn drive_apply(&mut self, out: &mut Vec<Output>) {
        while self.applying.is_none() {
            let Some(next) = self.queue.pop_front() else { return };
            if !next.quarantine.is_empty() {
                self.applying = Some(Applying { through: next.through, advance: next.advance, records: Vec::new() });
                out.push(Output::Quarantine { entries: next.quarantine, through: next.through });
                continue;
            }
            if next.entries.is_empty() {
                if let Some(advance) = next.advance {
                    self.advance_cursor(advance, out);
                }
                continue;
            }
            let records = next.entries.iter().map(|e| (e.seq, e.record)).collect();
            self.applying = Some(Applying { through: next.through, advance: next.advance, records });
            out.push(Output::Apply { entries: next.entries, through: next.through });
        }
    }

    fn tick(&mut self, now: u64, rng: &mut dyn Random, out: &mut Vec<Output>) {
        match self.conn {
            Conn::Disconnected => {
                if !self.stopped && !self.refused && self.reconnect_at.is_some_and(|at| at <= now) {
                    self.connect_now(now, out);
                }
            }
            Conn::Opening { since } | Conn::AwaitingChallenge { since } | Conn::AwaitingWelcome { since } => {
                if now >= since.saturating_add(self.timing.handshake_timeout_ms) {
                    self.fail(now, rng, SyncProblem::RelayUnreachable, Retry::Backoff, out);
                }
            }
            Conn::Ready => {
                if let Some(deadline) = self.request_deadline() {
                    if now >= deadline {
                        return self.fail(now, rng, SyncProblem::RelayUnreachable, Retry::Backoff, out);
                    }
                } else if self.hold_until.is_none() && now >= self.last_heard.saturating_add(self.timing.keepalive_ms) {
                    let id = self.request_id();
                    self.send(&ClientMessage::Ping { request: id }, out);
                    self.ping = Some(PingInFlight { id, sent_at: now });
                }
                if self.hold_until.is_some_and(|until| until <= now) {
                    self.hold_until = None;
                }
            }
        }
    }

    fn request_deadline(&self) -> Option<u64> {
        let oldest = [
            self.pull.map(|p| p.sent_at),
            self.push.as_ref().map(|p| p.sent_at),
            self.ping.map(|p| p.sent_at),
            self.erase_sent.values().map(|e| e.sent_at).min(),
        ]
        .into_iter()
        .flatten()
        .min()?;
        Some(oldest.max(self.last_heard).saturating_add(self.timing.request_timeout_ms))
    }

    /// Sends the requests that are due.
    fn pump(&mut self, now: u64, out: &mut Vec<Output>) {
        if self.conn != Conn::Ready || self.hold_until.is_some() || self.resetting.is_some() {
            return;
        }
        let Some(limits) = self.limits else { return };
        let want_pull = self.more || self.expected < self.head;
        if want_pull && self.pull.is_none() && self.applying.is_none() && self.queue.is_empty() {
            let id = self.request_id();
            let limit = self.timing.pull_limit.min(limits.max_pull_entries).max(1);
            self.send(&ClientMessage::Pull { request: id, since: self.expected, limit }, out);
            self.pull = Some(PullInFlight { id, sent_at: now, since: self.expected });
            self.more = false;
        }
        self.send_deletes(now, out);
        // A cursor past the head is the relay's loss (`CursorAhead` is on
        // its way), not a catch-up.
        let caught_up = |target: Seq| target <= self.cursor && self.cursor <= self.head;
        if self.push_after.is_some_and(caught_up) {
            self.push_after = None;
        }
        if self.outbox_wanted && self.push_after.is_none() && self.push.is_none() && !self.outbox_reading {
            self.outbox_wanted = false;
            self.outbox_reading = true;
            let count = limits.max_envelopes_per_push.min(self.timing.push_max_envelopes).max(1) as usize;
            out.push(Output::ReadOutbox { limit: count + self.too_large.len() });
        }
    }

    /// Sends `DeleteDocument` for owed records, at most
    /// `Timing::erase_max_in_flight` at a time and one per record.
    fn send_deletes(&mut self, now: u64, out: &mut Vec<Output>) {
        let room = (self.timing.erase_max_in_flight.max(1) as usize).saturating_sub(self.erase_sent.len());
        if room == 0 || self.erase_owed.is_empty() {
            return;
        }
        let in_flight: BTreeSet<RecordId> = self.erase_sent.values().map(|e| e.record).collect();
        let due: Vec<RecordId> =
            self.erase_owed.iter().filter(|r| !in_flight.contains(r)).take(room).copied().collect();
        for record in due {
            self.erase_owed.remove(&record);
            let request = self.request_id();
            self.send(&ClientMessage::DeleteDocument { request, doc_tag: doc_tag(&self.keys, record) }, out);
            self.erase_sent.insert(request, EraseInFlight { record, sent_at: now });
        }
    }

    fn next_deadline(&self) -> Option<u64> {
        match self.conn {
            Conn::Disconnected if self.stopped || self.refused => None,
            Conn::Disconnected => self.reconnect_at,
            Conn::Opening { since } | Conn::AwaitingChallenge { since } | Conn::AwaitingWelcome { since } => {
                Some(since.saturating_add(self.timing.handshake_timeout_ms))
            }
            // No keep-alive while paused by the rate limit: the pause ends
            // first, and a ping then would only be refused.
            Conn::Ready => match (self.request_deadline(), self.hold_until) {
                (Some(request), Some(hold)) => Some(request.min(hold)),
                (Some(request), None) => Some(request),
                (None, Some(hold)) => Some(hold),
                (None, None) => Some(self.last_heard.saturating_add(self.timing.keepalive_ms)),
            },
        }
    }

    fn announce(&mut self, now: u64, out: &mut Vec<Output>) {
        let status = self.status();
        if self.last_status.as_ref() != Some(&status) {
            if status == SyncStatus::UpToDate {
                self.backoff.reset();
            }
            out.push(Output::Status(status.clone()));
            self.last_status = Some(status);
        }
        // A timer that fires early is harmless (a tick re-announces), so
        // only a deadline earlier than the pending wake-up needs a new one.
        if let Some(at) = self.next_deadline() {
            if self.last_wake.is_none_or(|pending| at < pending) {
                out.push(Output::WakeAfter { ms: at.saturating_sub(now) });
                self.last_wake = Some(at);
            }
        }
    }
}

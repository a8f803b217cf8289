//! The storage contract of the relay: per workspace, an auth verifier, an
//! append-only log of encrypted change envelopes and compacted snapshots,
//! all sharing one sequence of server sequence numbers, and the log's
//! [`Incarnation`]: drawn when the log is created and drawn again when the
//! log may have lost committed entries (restored from a backup), so that
//! clients never take a reused sequence number for one they already read.
//!
//! [`Store`] is small on purpose so a PostgreSQL backend can sit beside the
//! embedded [`sqlite::SqliteStore`]. Every write future resolves only after
//! the write is durable (committed); the relay acknowledges nothing earlier.

pub mod sqlite;

use std::future::Future;
use std::pin::Pin;

use rapport_protocol::{AuthVerifier, DocTag, Envelope, Incarnation, LogEntry, Seq, WorkspaceId};

/// A boxed future returned by [`Store`] methods.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The client's cursor is past the workspace's head: the relay lost data
    /// (restored from an old backup) or the cursor is from another relay.
    #[error("cursor {since} is ahead of the workspace head {head}")]
    CursorAhead {
        /// The cursor sent.
        since: Seq,
        /// The workspace's newest sequence number.
        head: Seq,
    },
    /// A snapshot claims to cover entries that do not exist yet.
    #[error("the snapshot covers through {covers_through}, past the workspace head {head}")]
    SnapshotAhead {
        /// What the snapshot claimed.
        covers_through: Seq,
        /// The workspace's newest sequence number.
        head: Seq,
    },
    /// A snapshot replacement was computed against another incarnation of
    /// the log than the current one; nothing was changed.
    #[error("the snapshot names log incarnation {sent}, but the log is now incarnation {current}")]
    IncarnationChanged {
        /// What the client named.
        sent: Incarnation,
        /// The log's incarnation.
        current: Incarnation,
    },
    /// The workspace does not exist.
    #[error("workspace {0} does not exist on this relay")]
    UnknownWorkspace(WorkspaceId),
    /// A stored value does not have the expected shape; reported, never
    /// repaired silently.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// The writer has stopped (the relay is shutting down or crashed).
    #[error("the store's writer has stopped")]
    WriterStopped,
    /// The backend reported an error.
    #[error("storage backend error: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// A page of a workspace's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// Entries with `seq > since`, increasing.
    pub entries: Vec<LogEntry>,
    /// Where the next pull starts.
    pub cursor: Seq,
    /// Whether entries remain past `cursor`.
    pub more: bool,
}

/// Where a workspace's log stands, read at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogState {
    /// The newest sequence number handed out (`Seq::ZERO` when none).
    pub head: Seq,
    /// The log's current incarnation.
    pub incarnation: Incarnation,
}

/// What replacing a document's entries with a snapshot did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotOutcome {
    /// The stored snapshot with its new sequence number.
    pub entry: LogEntry,
    /// How many earlier entries of the document it replaced.
    pub removed: u64,
}

/// The relay's persistent state. Implementations must keep workspaces
/// strictly apart and never reuse a sequence number.
pub trait Store: Send + Sync + 'static {
    /// The verifier a workspace was created with, if it exists.
    fn verifier(&self, workspace: WorkspaceId) -> StoreFuture<'_, Option<AuthVerifier>>;

    /// Creates the workspace with `verifier` unless it exists; returns the
    /// verifier in force (the existing one wins) and whether this call
    /// created it.
    fn create_workspace(&self, workspace: WorkspaceId, verifier: AuthVerifier)
        -> StoreFuture<'_, (AuthVerifier, bool)>;

    /// The newest sequence number handed out (`Seq::ZERO` when none).
    fn head(&self, workspace: WorkspaceId) -> StoreFuture<'_, Seq>;

    /// The head and the incarnation of the log, from one read (for
    /// `Welcome`).
    fn log_state(&self, workspace: WorkspaceId) -> StoreFuture<'_, LogState>;

    /// Appends change envelopes; resolves once committed, with their entries.
    fn append(&self, workspace: WorkspaceId, envelopes: Vec<Envelope>) -> StoreFuture<'_, Vec<LogEntry>>;

    /// Reads at most `limit` entries after `since`, stopping early once
    /// about `max_bytes` of envelopes are gathered (always at least one).
    fn pull(&self, workspace: WorkspaceId, since: Seq, limit: u32, max_bytes: usize) -> StoreFuture<'_, Page>;

    /// Removes every entry of `snapshot.doc_tag` with `seq <= covers_through`
    /// and appends the snapshot, in one transaction, if `incarnation` is
    /// the log's current one (checked in the same transaction); otherwise
    /// [`StoreError::IncarnationChanged`] and nothing changes.
    fn replace_with_snapshot(
        &self,
        workspace: WorkspaceId,
        snapshot: Envelope,
        covers_through: Seq,
        incarnation: Incarnation,
    ) -> StoreFuture<'_, SnapshotOutcome>;

    /// Erases every envelope and snapshot of a document; returns how many
    /// entries were removed.
    fn delete_document(&self, workspace: WorkspaceId, doc_tag: DocTag) -> StoreFuture<'_, u64>;

    /// A cheap liveness probe for `/healthz`.
    fn check(&self) -> StoreFuture<'_, ()>;
}

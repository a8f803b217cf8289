//! The embedded store: one SQLite file (`relay.sqlite3` in the data
//! directory) in WAL mode with `synchronous=FULL` and `secure_delete=ON`.
//!
//! All writes go through one dedicated writer thread that group-commits
//! whatever is queued (one savepoint per request, one fsync per batch) and
//! answers each request only after its transaction committed, so an
//! acknowledged write survives a crash or `kill -9`. Reads run on tokio's
//! blocking pool over a small pool of read-only connections, each pull in
//! its own read transaction (a consistent snapshot of the log).
//!
//! Erasure leaves no ciphertext behind: deleted rows are zeroed
//! (`secure_delete`), and once a delete or a snapshot replacement removed
//! something, the writer truncates the WAL file (`wal_checkpoint(TRUNCATE)`)
//! within [`ERASURE_CHECKPOINT_DELAY`], coalescing the erasures of that
//! window into one checkpoint and retrying while readers hold it back.
//! Deletes that removed nothing cost no checkpoint. The data directory is
//! created `0700` and the database files `0600`.
//!
//! Schema (version 2, in `PRAGMA user_version`):
//!
//! ```sql
//! workspaces(id BLOB PK, verifier BLOB, head INTEGER, created_at_ms INTEGER, incarnation BLOB)
//! envelopes(workspace, seq, doc_tag, nonce, ciphertext)      -- change log
//! snapshots(workspace, seq, doc_tag, covers_through, nonce, ciphertext)
//! relay_meta(id = 1, commits INTEGER)                        -- write transactions committed
//! ```
//!
//! `head` is the last sequence number handed out; entries of both tables
//! draw from it, so sequence numbers are unique per workspace and never
//! reused after deletions, within one `incarnation` of the log.
//!
//! **Restores are detected.** Every write transaction adds one to
//! `relay_meta.commits`; after it commits, the writer records that count
//! in the *high-water file* `relay.high-water` beside the database (not
//! inside it, so a database copied back from a backup does not bring it
//! along). At open, a database whose count is below the file's lost
//! committed transactions: every workspace gets a new incarnation
//! ([`Renewal::Restored`]), as it does when the file is missing or
//! unreadable beside a database that has committed something, and when the
//! operator asks for it ([`OpenOptions::new_incarnation`]).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rapport_protocol::{
    AuthVerifier, DocTag, EntryKind, Envelope, Incarnation, LogEntry, Seq, WorkspaceId, ENVELOPE_NONCE_LEN,
};
use rusqlite::{params, Connection, OpenFlags, OptionalExtension, TransactionBehavior};
use tokio::sync::oneshot;

use super::{LogState, Page, SnapshotOutcome, Store, StoreError, StoreFuture};

/// The database file name inside the data directory.
pub const DB_FILE: &str = "relay.sqlite3";
/// The high-water file beside it: the count of write transactions the
/// database had committed, as decimal text.
pub const HIGH_WATER_FILE: &str = "relay.high-water";
const SCHEMA_VERSION: i64 = 2;
/// Most requests committed together in one transaction.
const MAX_GROUP_COMMIT: usize = 128;
/// Read connections kept open between reads.
const MAX_IDLE_READERS: usize = 8;
/// Reads running at once (each on a blocking thread with its own
/// connection, so this also bounds the descriptors reads take).
pub const MAX_CONCURRENT_READS: usize = 32;
/// Bytes counted per entry on top of its ciphertext: at least its encoded
/// sequence number, kind, tag, nonce and length (72 bytes at most), so a page
/// never exceeds the byte budget it is given.
const ENTRY_OVERHEAD: usize = 80;
/// Erasures are checkpointed out of the WAL file at most this long after
/// the first one not yet checkpointed (and again every this long while
/// readers hold the checkpoint back).
pub const ERASURE_CHECKPOINT_DELAY: Duration = Duration::from_millis(500);

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS workspaces (
    id            BLOB PRIMARY KEY CHECK (length(id) = 16),
    verifier      BLOB NOT NULL CHECK (length(verifier) = 32),
    head          INTEGER NOT NULL DEFAULT 0,
    created_at_ms INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS envelopes (
    workspace  BLOB NOT NULL REFERENCES workspaces(id),
    seq        INTEGER NOT NULL,
    doc_tag    BLOB NOT NULL CHECK (length(doc_tag) = 32),
    nonce      BLOB NOT NULL CHECK (length(nonce) = 24),
    ciphertext BLOB NOT NULL,
    UNIQUE (workspace, seq)
);
CREATE INDEX IF NOT EXISTS envelopes_by_doc ON envelopes (workspace, doc_tag, seq);
CREATE TABLE IF NOT EXISTS snapshots (
    workspace      BLOB NOT NULL REFERENCES workspaces(id),
    seq            INTEGER NOT NULL,
    doc_tag        BLOB NOT NULL CHECK (length(doc_tag) = 32),
    covers_through INTEGER NOT NULL,
    nonce          BLOB NOT NULL CHECK (length(nonce) = 24),
    ciphertext     BLOB NOT NULL,
    UNIQUE (workspace, seq)
);
CREATE INDEX IF NOT EXISTS snapshots_by_doc ON snapshots (workspace, doc_tag, seq);
";

/// Version 1 to 2: incarnations (a fresh one for every existing log) and
/// the commit count.
const SCHEMA_2: &str = "
ALTER TABLE workspaces ADD COLUMN incarnation BLOB CHECK (incarnation IS NULL OR length(incarnation) = 16);
UPDATE workspaces SET incarnation = randomblob(16);
CREATE TABLE relay_meta (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    commits INTEGER NOT NULL
);
INSERT INTO relay_meta (id, commits) VALUES (1, 0);
";

/// How to open the store.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OpenOptions {
    /// Give every workspace a new incarnation at open (the operator's
    /// `--new-incarnation`, after restoring a backup the high-water file
    /// cannot reveal, such as a whole data directory).
    pub new_incarnation: bool,
}

/// Why the store gave every workspace a new incarnation when it opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Renewal {
    /// The database has committed fewer write transactions than the
    /// high-water file records: it was restored from an older copy.
    Restored {
        /// Transactions the database holds.
        database: u64,
        /// Transactions the high-water file records.
        high_water: u64,
    },
    /// The high-water file is missing or unreadable beside a database that
    /// has committed writes: whether it lost some cannot be told.
    Unknown(String),
    /// [`OpenOptions::new_incarnation`] asked for it.
    Requested,
}

impl std::fmt::Display for Renewal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Renewal::Restored { database, high_water } => write!(
                f,
                "the database holds {database} committed writes but {HIGH_WATER_FILE} records {high_water}: \
                 it was restored from an older copy"
            ),
            Renewal::Unknown(why) => write!(f, "{why}; whether the database lost writes cannot be told"),
            Renewal::Requested => f.write_str("--new-incarnation was given"),
        }
    }
}

fn backend(e: rusqlite::Error) -> StoreError {
    StoreError::Backend(Box::new(e))
}

fn seq_to_sql(seq: Seq) -> Result<i64, StoreError> {
    i64::try_from(seq.get()).map_err(|_| StoreError::CursorAhead { since: seq, head: Seq(i64::MAX as u64) })
}

fn seq_from_sql(v: i64) -> Result<Seq, StoreError> {
    u64::try_from(v).map(Seq).map_err(|_| StoreError::Corrupt(format!("negative sequence number {v}")))
}

enum Op {
    CreateWorkspace { workspace: WorkspaceId, verifier: AuthVerifier, incarnation: Incarnation },
    Append { workspace: WorkspaceId, envelopes: Vec<Envelope> },
    Snapshot { workspace: WorkspaceId, snapshot: Envelope, covers_through: Seq, incarnation: Incarnation },
    Delete { workspace: WorkspaceId, doc_tag: DocTag },
}

#[derive(Debug)]
enum Done {
    Verifier(AuthVerifier, bool),
    Entries(Vec<LogEntry>),
    Snapshot(SnapshotOutcome),
    Deleted(u64),
}

struct Job {
    op: Op,
    reply: oneshot::Sender<Result<Done, StoreError>>,
}

/// The SQLite implementation of [`Store`].
pub struct SqliteStore {
    path: PathBuf,
    writer: mpsc::Sender<Job>,
    writer_thread: Option<JoinHandle<()>>,
    readers: Arc<Mutex<Vec<Connection>>>,
    reads: Arc<tokio::sync::Semaphore>,
    checkpoints: Arc<AtomicU64>,
    renewal: Option<Renewal>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").field("path", &self.path).finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the database in `data_dir` and starts the
    /// writer thread.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the directory or database cannot be
    /// created or opened; [`StoreError::Corrupt`] for a database written by
    /// a newer relay.
    pub fn open(data_dir: &Path) -> Result<Self, StoreError> {
        Self::open_with(data_dir, OpenOptions::default())
    }

    /// As [`SqliteStore::open`], with options. Gives every workspace a new
    /// incarnation when the database is behind the high-water file (see
    /// the module doc) or when `options` ask for it; [`SqliteStore::renewal`]
    /// says why.
    ///
    /// # Errors
    /// As [`SqliteStore::open`].
    pub fn open_with(data_dir: &Path, options: OpenOptions) -> Result<Self, StoreError> {
        create_private_dir(data_dir).map_err(|e| StoreError::Backend(Box::new(e)))?;
        let path = data_dir.join(DB_FILE);
        make_private_files(&path).map_err(|e| StoreError::Backend(Box::new(e)))?;
        let conn = Connection::open(&path).map_err(backend)?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = FULL;
             PRAGMA secure_delete = ON;
             PRAGMA foreign_keys = ON;
             PRAGMA busy_timeout = 5000;",
        )
        .map_err(backend)?;
        let mut conn = conn;
        let migrated = migrate(&conn)?;
        let mark = HighWater::new(data_dir);
        let renewal = check_high_water(&conn, &mark, migrated, options)?;
        if renewal.is_some() {
            renew_incarnations(&mut conn)?;
        }
        mark.record(commits(&conn)?).map_err(|e| StoreError::Backend(Box::new(e)))?;
        let (tx, rx) = mpsc::channel();
        let checkpoints = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&checkpoints);
        let writer_thread = std::thread::Builder::new()
            .name("rapport-store-writer".into())
            .spawn(move || writer_loop(conn, rx, &counter, &mark))
            .map_err(|e| StoreError::Backend(Box::new(e)))?;
        // SQLite creates the WAL and shared-memory files with the database
        // file's mode; tighten any left by an older relay.
        make_private_files(&path).map_err(|e| StoreError::Backend(Box::new(e)))?;
        Ok(SqliteStore {
            path,
            writer: tx,
            writer_thread: Some(writer_thread),
            readers: Arc::new(Mutex::new(Vec::new())),
            reads: Arc::new(tokio::sync::Semaphore::new(MAX_CONCURRENT_READS)),
            checkpoints,
            renewal,
        })
    }

    /// Why every workspace got a new incarnation at open, if it did.
    pub fn renewal(&self) -> Option<&Renewal> {
        self.renewal.as_ref()
    }

    /// Checkpoints run to move erased ciphertext out of the WAL file.
    pub fn erasure_checkpoints(&self) -> u64 {
        self.checkpoints.load(Ordering::SeqCst)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn write(&self, op: Op) -> StoreFuture<'_, Done> {
        let (reply, rx) = oneshot::channel();
        let sent = self.writer.send(Job { op, reply });
        Box::pin(async move {
            sent.map_err(|_| StoreError::WriterStopped)?;
            rx.await.map_err(|_| StoreError::WriterStopped)?
        })
    }

    fn read<T, F>(&self, f: F) -> StoreFuture<'static, T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let readers = Arc::clone(&self.readers);
        let path = self.path.clone();
        let reads = Arc::clone(&self.reads);
        Box::pin(async move {
            let permit = reads.acquire_owned().await.map_err(|_| StoreError::WriterStopped)?;
            tokio::task::spawn_blocking(move || {
                let _permit = permit;
                let pooled = readers.lock().unwrap_or_else(PoisonError::into_inner).pop();
                let mut conn = match pooled {
                    Some(conn) => conn,
                    None => open_reader(&path)?,
                };
                let result = f(&mut conn);
                let mut pool = readers.lock().unwrap_or_else(PoisonError::into_inner);
                if pool.len() < MAX_IDLE_READERS {
                    pool.push(conn);
                }
                result
            })
            .await
            .map_err(|e| StoreError::Backend(Box::new(e)))?
        })
    }
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        // Closing the channel lets the writer finish what is queued and exit.
        let (dummy, _) = mpsc::channel();
        drop(std::mem::replace(&mut self.writer, dummy));
        if let Some(handle) = self.writer_thread.take() {
            if handle.join().is_err() {
                tracing::error!("the store writer thread panicked");
            }
        }
    }
}

fn open_reader(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX)
        .map_err(backend)?;
    conn.execute_batch("PRAGMA query_only = ON; PRAGMA busy_timeout = 5000;").map_err(backend)?;
    Ok(conn)
}

/// Brings the schema to [`SCHEMA_VERSION`]; returns whether it added the
/// commit count (a new or version-1 database).
fn migrate(conn: &Connection) -> Result<bool, StoreError> {
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(backend)?;
    if version > SCHEMA_VERSION {
        return Err(StoreError::Corrupt(format!(
            "database schema version {version} is newer than this relay's {SCHEMA_VERSION}"
        )));
    }
    conn.execute_batch(SCHEMA).map_err(backend)?;
    let added = version < 2;
    if added {
        conn.execute_batch(&format!("BEGIN IMMEDIATE; {SCHEMA_2} PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;"))
            .map_err(backend)?;
    }
    Ok(added)
}

/// The write transactions the database has committed.
fn commits(conn: &Connection) -> Result<u64, StoreError> {
    let n: i64 = conn.query_row("SELECT commits FROM relay_meta WHERE id = 1", [], |r| r.get(0)).map_err(backend)?;
    u64::try_from(n).map_err(|_| StoreError::Corrupt(format!("negative commit count {n}")))
}

/// The high-water file: the commit count, kept outside the database.
struct HighWater {
    path: PathBuf,
    /// The last write failed (logged once until one succeeds).
    failing: std::cell::Cell<bool>,
}

/// What the high-water file says.
enum Mark {
    Missing,
    Unreadable(String),
    At(u64),
}

impl HighWater {
    fn new(data_dir: &Path) -> Self {
        Self { path: data_dir.join(HIGH_WATER_FILE), failing: std::cell::Cell::new(false) }
    }

    fn read(&self) -> Mark {
        match std::fs::read_to_string(&self.path) {
            Ok(text) => match text.trim().parse::<u64>() {
                Ok(n) => Mark::At(n),
                Err(e) => Mark::Unreadable(format!("{HIGH_WATER_FILE} holds {:?}, not a count: {e}", text.trim())),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Mark::Missing,
            Err(e) => Mark::Unreadable(format!("{HIGH_WATER_FILE} cannot be read: {e}")),
        }
    }

    /// Replaces the file (a new file renamed over the old one, so a crash
    /// leaves the old count or the new one, never a torn file). Not
    /// synced: after a power loss the count can only be lower, which
    /// detects less, never a restore that did not happen.
    fn record(&self, commits: u64) -> std::io::Result<()> {
        let mut tmp = self.path.as_os_str().to_owned();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        std::fs::write(&tmp, format!("{commits}\n"))?;
        std::fs::rename(&tmp, &self.path)
    }

    /// As `record`, from the writer: a failure is logged (once until the
    /// next success) and otherwise ignored, since a lagging count only
    /// detects less.
    fn record_or_log(&self, commits: u64) {
        match self.record(commits) {
            Ok(()) => self.failing.set(false),
            Err(e) => {
                if !self.failing.replace(true) {
                    tracing::warn!(error = %e, file = %self.path.display(), "cannot record the commit high-water mark");
                }
            }
        }
    }
}

/// Whether every workspace needs a new incarnation, and why.
fn check_high_water(
    conn: &Connection,
    mark: &HighWater,
    migrated: bool,
    options: OpenOptions,
) -> Result<Option<Renewal>, StoreError> {
    if options.new_incarnation {
        return Ok(Some(Renewal::Requested));
    }
    let database = commits(conn)?;
    Ok(match mark.read() {
        Mark::At(high_water) if high_water > database => Some(Renewal::Restored { database, high_water }),
        Mark::At(_) => None,
        // A new database, or one of a relay without incarnations (which
        // just got fresh ones).
        Mark::Missing if database == 0 || migrated => None,
        Mark::Missing => Some(Renewal::Unknown(format!("{HIGH_WATER_FILE} is missing"))),
        Mark::Unreadable(why) => Some(Renewal::Unknown(why)),
    })
}

/// A fresh incarnation from the operating system's CSPRNG.
fn fresh_incarnation() -> Result<Incarnation, StoreError> {
    let mut bytes = [0u8; Incarnation::LEN];
    getrandom::fill(&mut bytes)
        .map_err(|e| StoreError::Backend(format!("no randomness for an incarnation: {e}").into()))?;
    Ok(Incarnation::from_bytes(bytes))
}

/// Gives every workspace a new incarnation, in one counted transaction.
fn renew_incarnations(conn: &mut Connection) -> Result<(), StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(backend)?;
    let ids: Vec<Vec<u8>> = {
        let mut stmt = tx.prepare("SELECT id FROM workspaces").map_err(backend)?;
        let rows = stmt.query_map([], |r| r.get(0)).map_err(backend)?;
        rows.collect::<Result<_, _>>().map_err(backend)?
    };
    for id in &ids {
        let incarnation = fresh_incarnation()?;
        tx.execute("UPDATE workspaces SET incarnation = ?2 WHERE id = ?1", params![id, &incarnation.as_bytes()[..]])
            .map_err(backend)?;
    }
    count_commit(&tx)?;
    tx.commit().map_err(backend)?;
    tracing::warn!(
        workspaces = ids.len(),
        "every workspace log has a new incarnation: clients will pull everything again"
    );
    Ok(())
}

/// Adds this transaction to the commit count; returns the new count.
fn count_commit(conn: &Connection) -> Result<u64, StoreError> {
    let n: i64 = conn
        .query_row("UPDATE relay_meta SET commits = commits + 1 WHERE id = 1 RETURNING commits", [], |r| r.get(0))
        .map_err(backend)?;
    u64::try_from(n).map_err(|_| StoreError::Corrupt(format!("negative commit count {n}")))
}

/// The data directory, created `0700` when missing.
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// Creates the database file `0600` when missing, and narrows it, its WAL
/// and its shared-memory file to `0600` when they exist.
fn make_private_files(db: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        if !db.exists() {
            std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(db)?;
        }
        for suffix in ["", "-wal", "-shm"] {
            let mut name = db.as_os_str().to_owned();
            name.push(suffix);
            let path = PathBuf::from(name);
            match std::fs::metadata(&path) {
                Ok(meta) if meta.permissions().mode() & 0o077 != 0 => {
                    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
                }
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
    }
    #[cfg(not(unix))]
    let _ = db;
    Ok(())
}

/// Whether a write removed stored ciphertext.
fn erased(result: &Result<Done, StoreError>) -> bool {
    match result {
        Ok(Done::Deleted(n)) => *n > 0,
        Ok(Done::Snapshot(outcome)) => outcome.removed > 0,
        _ => false,
    }
}

/// Moves every committed page into the database and empties the WAL file.
/// Returns whether it completed (readers can hold it back).
fn checkpoint(conn: &Connection) -> bool {
    match conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get::<_, i64>(0)) {
        Ok(0) => true,
        Ok(_) => {
            tracing::debug!("checkpoint after erasure held back by readers; retrying");
            false
        }
        Err(e) => {
            tracing::warn!(error = %e, "checkpoint after erasure deferred");
            false
        }
    }
}

fn writer_loop(mut conn: Connection, rx: mpsc::Receiver<Job>, checkpoints: &AtomicU64, mark: &HighWater) {
    // When the oldest erasure not yet out of the WAL file was committed.
    let mut erased_since: Option<Instant> = None;
    loop {
        let first = match erased_since {
            None => match rx.recv() {
                Ok(job) => job,
                Err(_) => return,
            },
            Some(since) => {
                let due = since + ERASURE_CHECKPOINT_DELAY;
                match rx.recv_timeout(due.saturating_duration_since(Instant::now())) {
                    Ok(job) => job,
                    Err(timeout_or_closed) => {
                        checkpoints.fetch_add(1, Ordering::SeqCst);
                        // Retry a held-back checkpoint one delay later.
                        erased_since = (!checkpoint(&conn)).then(Instant::now);
                        if matches!(timeout_or_closed, mpsc::RecvTimeoutError::Disconnected) {
                            return;
                        }
                        continue;
                    }
                }
            }
        };
        let mut batch = vec![first];
        while batch.len() < MAX_GROUP_COMMIT {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let (results, committed) = run_batch(&mut conn, &batch);
        if let Some(commits) = committed {
            mark.record_or_log(commits);
        }
        if erased_since.is_none() && results.iter().any(erased) {
            erased_since = Some(Instant::now());
        }
        for (job, result) in batch.into_iter().zip(results) {
            // A dropped receiver means the client left; the write stands.
            let _ = job.reply.send(result);
        }
        if erased_since.is_some_and(|since| since.elapsed() >= ERASURE_CHECKPOINT_DELAY) {
            checkpoints.fetch_add(1, Ordering::SeqCst);
            erased_since = (!checkpoint(&conn)).then(Instant::now);
        }
    }
}

/// Runs a group of writes in one transaction, each in its own savepoint so a
/// failing request does not undo the others. Results are only `Ok` if the
/// whole transaction committed; then the new commit count comes with them.
fn run_batch(conn: &mut Connection, batch: &[Job]) -> (Vec<Result<Done, StoreError>>, Option<u64>) {
    let fail_all = |e: &dyn std::fmt::Display| -> (Vec<Result<Done, StoreError>>, Option<u64>) {
        let msg = e.to_string();
        (batch.iter().map(|_| Err(StoreError::Backend(msg.clone().into()))).collect(), None)
    };
    let mut tx = match conn.transaction_with_behavior(TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        Err(e) => return fail_all(&e),
    };
    let mut results = Vec::with_capacity(batch.len());
    for job in batch {
        let result = match tx.savepoint() {
            Ok(sp) => {
                let r = apply(&sp, &job.op);
                match (&r, sp.commit()) {
                    (Ok(_), Err(e)) => Err(backend(e)),
                    _ => r,
                }
            }
            Err(e) => Err(backend(e)),
        };
        results.push(result);
    }
    let commits = match count_commit(&tx) {
        Ok(n) => n,
        Err(e) => return fail_all(&e),
    };
    match tx.commit() {
        Ok(()) => (results, Some(commits)),
        Err(e) => fail_all(&e),
    }
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX)).unwrap_or(0)
}

fn head_of(conn: &Connection, workspace: &WorkspaceId) -> Result<Seq, StoreError> {
    let head: Option<i64> = conn
        .query_row("SELECT head FROM workspaces WHERE id = ?1", [&workspace.as_bytes()[..]], |r| r.get(0))
        .optional()
        .map_err(backend)?;
    seq_from_sql(head.ok_or(StoreError::UnknownWorkspace(*workspace))?)
}

fn log_state_of(conn: &Connection, workspace: &WorkspaceId) -> Result<LogState, StoreError> {
    let row: Option<(i64, Option<Vec<u8>>)> = conn
        .query_row("SELECT head, incarnation FROM workspaces WHERE id = ?1", [&workspace.as_bytes()[..]], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()
        .map_err(backend)?;
    let (head, incarnation) = row.ok_or(StoreError::UnknownWorkspace(*workspace))?;
    let incarnation = incarnation
        .and_then(|b| <[u8; Incarnation::LEN]>::try_from(b.as_slice()).ok())
        .map(Incarnation::from_bytes)
        .ok_or_else(|| StoreError::Corrupt(format!("workspace {workspace} has no valid incarnation")))?;
    Ok(LogState { head: seq_from_sql(head)?, incarnation })
}

fn set_head(conn: &Connection, workspace: &WorkspaceId, head: i64) -> Result<(), StoreError> {
    conn.execute("UPDATE workspaces SET head = ?2 WHERE id = ?1", params![&workspace.as_bytes()[..], head])
        .map_err(backend)?;
    Ok(())
}

fn apply(conn: &Connection, op: &Op) -> Result<Done, StoreError> {
    match op {
        Op::CreateWorkspace { workspace, verifier, incarnation } => {
            let created = conn
                .execute(
                    "INSERT OR IGNORE INTO workspaces (id, verifier, head, created_at_ms, incarnation)
                 VALUES (?1, ?2, 0, ?3, ?4)",
                    params![&workspace.as_bytes()[..], &verifier.as_bytes()[..], now_ms(), &incarnation.as_bytes()[..]],
                )
                .map_err(backend)?;
            let stored = read_verifier(conn, workspace)?.ok_or(StoreError::UnknownWorkspace(*workspace))?;
            Ok(Done::Verifier(stored, created == 1))
        }
        Op::Append { workspace, envelopes } => {
            let mut head = seq_to_sql(head_of(conn, workspace)?)?;
            let mut entries = Vec::with_capacity(envelopes.len());
            {
                let mut insert = conn
                    .prepare_cached(
                        "INSERT INTO envelopes (workspace, seq, doc_tag, nonce, ciphertext)
                         VALUES (?1, ?2, ?3, ?4, ?5)",
                    )
                    .map_err(backend)?;
                for env in envelopes {
                    head += 1;
                    insert
                        .execute(params![
                            &workspace.as_bytes()[..],
                            head,
                            &env.doc_tag.as_bytes()[..],
                            &env.nonce[..],
                            &env.ciphertext
                        ])
                        .map_err(backend)?;
                    entries.push(LogEntry { seq: seq_from_sql(head)?, kind: EntryKind::Change, envelope: env.clone() });
                }
            }
            set_head(conn, workspace, head)?;
            Ok(Done::Entries(entries))
        }
        Op::Snapshot { workspace, snapshot, covers_through, incarnation } => {
            let LogState { head, incarnation: current } = log_state_of(conn, workspace)?;
            if *incarnation != current {
                return Err(StoreError::IncarnationChanged { sent: *incarnation, current });
            }
            if *covers_through > head {
                return Err(StoreError::SnapshotAhead { covers_through: *covers_through, head });
            }
            let ws = &workspace.as_bytes()[..];
            let tag = &snapshot.doc_tag.as_bytes()[..];
            let through = seq_to_sql(*covers_through)?;
            let mut removed = conn
                .execute(
                    "DELETE FROM envelopes WHERE workspace = ?1 AND doc_tag = ?2 AND seq <= ?3",
                    params![ws, tag, through],
                )
                .map_err(backend)?;
            removed += conn
                .execute(
                    "DELETE FROM snapshots WHERE workspace = ?1 AND doc_tag = ?2 AND seq <= ?3",
                    params![ws, tag, through],
                )
                .map_err(backend)?;
            let seq = seq_to_sql(head)? + 1;
            conn.execute(
                "INSERT INTO snapshots (workspace, seq, doc_tag, covers_through, nonce, ciphertext)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![ws, seq, tag, through, &snapshot.nonce[..], &snapshot.ciphertext],
            )
            .map_err(backend)?;
            set_head(conn, workspace, seq)?;
            Ok(Done::Snapshot(SnapshotOutcome {
                entry: LogEntry { seq: seq_from_sql(seq)?, kind: EntryKind::Snapshot, envelope: snapshot.clone() },
                removed: removed as u64,
            }))
        }
        Op::Delete { workspace, doc_tag } => {
            let ws = &workspace.as_bytes()[..];
            let tag = &doc_tag.as_bytes()[..];
            let mut removed = conn
                .execute("DELETE FROM envelopes WHERE workspace = ?1 AND doc_tag = ?2", params![ws, tag])
                .map_err(backend)?;
            removed += conn
                .execute("DELETE FROM snapshots WHERE workspace = ?1 AND doc_tag = ?2", params![ws, tag])
                .map_err(backend)?;
            Ok(Done::Deleted(removed as u64))
        }
    }
}

fn read_verifier(conn: &Connection, workspace: &WorkspaceId) -> Result<Option<AuthVerifier>, StoreError> {
    let bytes: Option<Vec<u8>> = conn
        .query_row("SELECT verifier FROM workspaces WHERE id = ?1", [&workspace.as_bytes()[..]], |r| r.get(0))
        .optional()
        .map_err(backend)?;
    bytes
        .map(|b| {
            <[u8; 32]>::try_from(b.as_slice())
                .map(AuthVerifier::from_bytes)
                .map_err(|_| StoreError::Corrupt(format!("verifier of {workspace} is {} bytes", b.len())))
        })
        .transpose()
}

fn pull_page(
    conn: &mut Connection,
    workspace: WorkspaceId,
    since: Seq,
    limit: u32,
    max_bytes: usize,
) -> Result<Page, StoreError> {
    // One read transaction: the head and the entries come from one snapshot.
    let tx = conn.transaction().map_err(backend)?;
    let head = head_of(&tx, &workspace)?;
    if since > head {
        return Err(StoreError::CursorAhead { since, head });
    }
    let limit = limit.max(1);
    let mut stmt = tx
        .prepare_cached(
            "SELECT seq, 0, doc_tag, nonce, ciphertext FROM envelopes
               WHERE workspace = ?1 AND seq > ?2
             UNION ALL
             SELECT seq, 1, doc_tag, nonce, ciphertext FROM snapshots
               WHERE workspace = ?1 AND seq > ?2
             ORDER BY 1
             LIMIT ?3",
        )
        .map_err(backend)?;
    let mut rows =
        stmt.query(params![&workspace.as_bytes()[..], seq_to_sql(since)?, i64::from(limit) + 1]).map_err(backend)?;
    let mut entries = Vec::new();
    let mut bytes = 0usize;
    let mut more = false;
    while let Some(row) = rows.next().map_err(backend)? {
        let ciphertext: Vec<u8> = row.get(4).map_err(backend)?;
        let size = ciphertext.len() + ENTRY_OVERHEAD;
        if entries.len() == limit as usize || (!entries.is_empty() && bytes + size > max_bytes) {
            more = true;
            break;
        }
        bytes += size;
        let seq = seq_from_sql(row.get(0).map_err(backend)?)?;
        let kind = match row.get::<_, i64>(1).map_err(backend)? {
            0 => EntryKind::Change,
            _ => EntryKind::Snapshot,
        };
        let tag: Vec<u8> = row.get(2).map_err(backend)?;
        let nonce: Vec<u8> = row.get(3).map_err(backend)?;
        let doc_tag = <[u8; 32]>::try_from(tag.as_slice())
            .map_err(|_| StoreError::Corrupt(format!("entry {seq} has a {}-byte doc tag", tag.len())))?;
        let nonce = <[u8; ENVELOPE_NONCE_LEN]>::try_from(nonce.as_slice())
            .map_err(|_| StoreError::Corrupt(format!("entry {seq} has a {}-byte nonce", nonce.len())))?;
        entries.push(LogEntry {
            seq,
            kind,
            envelope: Envelope { doc_tag: DocTag::from_bytes(doc_tag), nonce, ciphertext },
        });
    }
    let cursor = match (more, entries.last()) {
        (true, Some(last)) => last.seq,
        _ => head,
    };
    Ok(Page { entries, cursor, more })
}

fn unexpected(done: Done) -> StoreError {
    StoreError::Corrupt(format!("the writer answered with {done:?}"))
}

impl Store for SqliteStore {
    fn verifier(&self, workspace: WorkspaceId) -> StoreFuture<'_, Option<AuthVerifier>> {
        self.read(move |conn| read_verifier(conn, &workspace))
    }

    fn create_workspace(
        &self,
        workspace: WorkspaceId,
        verifier: AuthVerifier,
    ) -> StoreFuture<'_, (AuthVerifier, bool)> {
        let done =
            fresh_incarnation().map(|incarnation| self.write(Op::CreateWorkspace { workspace, verifier, incarnation }));
        Box::pin(async move {
            let done = done?;
            match done.await? {
                Done::Verifier(v, created) => Ok((v, created)),
                other => Err(unexpected(other)),
            }
        })
    }

    fn head(&self, workspace: WorkspaceId) -> StoreFuture<'_, Seq> {
        self.read(move |conn| head_of(conn, &workspace))
    }

    fn log_state(&self, workspace: WorkspaceId) -> StoreFuture<'_, LogState> {
        self.read(move |conn| log_state_of(conn, &workspace))
    }

    fn append(&self, workspace: WorkspaceId, envelopes: Vec<Envelope>) -> StoreFuture<'_, Vec<LogEntry>> {
        let done = self.write(Op::Append { workspace, envelopes });
        Box::pin(async move {
            match done.await? {
                Done::Entries(e) => Ok(e),
                other => Err(unexpected(other)),
            }
        })
    }

    fn pull(&self, workspace: WorkspaceId, since: Seq, limit: u32, max_bytes: usize) -> StoreFuture<'_, Page> {
        self.read(move |conn| pull_page(conn, workspace, since, limit, max_bytes))
    }

    fn replace_with_snapshot(
        &self,
        workspace: WorkspaceId,
        snapshot: Envelope,
        covers_through: Seq,
        incarnation: Incarnation,
    ) -> StoreFuture<'_, SnapshotOutcome> {
        let done = self.write(Op::Snapshot { workspace, snapshot, covers_through, incarnation });
        Box::pin(async move {
            match done.await? {
                Done::Snapshot(s) => Ok(s),
                other => Err(unexpected(other)),
            }
        })
    }

    fn delete_document(&self, workspace: WorkspaceId, doc_tag: DocTag) -> StoreFuture<'_, u64> {
        let done = self.write(Op::Delete { workspace, doc_tag });
        Box::pin(async move {
            match done.await? {
                Done::Deleted(n) => Ok(n),
                other => Err(unexpected(other)),
            }
        })
    }

    fn check(&self) -> StoreFuture<'_, ()> {
        // O(1): at most one row, whatever the number of workspaces.
        self.read(|conn| {
            conn.query_row("SELECT EXISTS (SELECT 1 FROM workspaces LIMIT 1)", [], |r| r.get::<_, i64>(0))
                .map_err(backend)?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(tag: u8, body: &[u8]) -> Envelope {
        Envelope { doc_tag: DocTag::from_bytes([tag; 32]), nonce: [tag; 24], ciphertext: body.to_vec() }
    }

    const WS_A: WorkspaceId = WorkspaceId::from_bytes([0xa; 16]);
    const WS_B: WorkspaceId = WorkspaceId::from_bytes([0xb; 16]);

    async fn store_with(dir: &Path, workspaces: &[WorkspaceId]) -> SqliteStore {
        let store = SqliteStore::open(dir).expect("open");
        for ws in workspaces {
            store.create_workspace(*ws, AuthVerifier::from_bytes([1; 32])).await.expect("create");
        }
        store
    }

    async fn inc(store: &SqliteStore) -> Incarnation {
        store.log_state(WS_A).await.expect("state").incarnation
    }

    fn seqs(page: &Page) -> Vec<u64> {
        page.entries.iter().map(|e| e.seq.get()).collect()
    }

    #[tokio::test]
    async fn the_first_verifier_of_a_workspace_wins() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = store_with(dir.path(), &[WS_A]).await;
        let again = store.create_workspace(WS_A, AuthVerifier::from_bytes([2; 32])).await.expect("create");
        assert_eq!(again, (AuthVerifier::from_bytes([1; 32]), false));
        assert_eq!(store.verifier(WS_B).await.expect("read"), None);
        let new = store.create_workspace(WS_B, AuthVerifier::from_bytes([3; 32])).await.expect("create");
        assert_eq!(new, (AuthVerifier::from_bytes([3; 32]), true));
    }

    #[tokio::test]
    async fn appends_get_increasing_sequence_numbers_per_workspace() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = store_with(dir.path(), &[WS_A, WS_B]).await;
        let a = store.append(WS_A, vec![env(1, b"x"), env(2, b"y")]).await.expect("append");
        let b = store.append(WS_B, vec![env(1, b"z")]).await.expect("append");
        assert_eq!(a.iter().map(|e| e.seq.get()).collect::<Vec<_>>(), [1, 2]);
        assert_eq!(b[0].seq, Seq(1));
        assert_eq!(store.head(WS_A).await.expect("head"), Seq(2));
        let page = store.pull(WS_B, Seq::ZERO, 100, 1 << 20).await.expect("pull");
        assert_eq!(page.entries.len(), 1);
        assert_eq!(page.entries[0].envelope.ciphertext, b"z");
    }

    #[tokio::test]
    async fn appending_to_an_unknown_workspace_fails_cleanly() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = store_with(dir.path(), &[]).await;
        assert!(matches!(store.append(WS_A, vec![env(1, b"x")]).await, Err(StoreError::UnknownWorkspace(_))));
    }

    #[tokio::test]
    async fn pulls_page_by_count_and_by_bytes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = store_with(dir.path(), &[WS_A]).await;
        let many: Vec<_> = (0..10).map(|i| env(i, &[i; 100])).collect();
        store.append(WS_A, many).await.expect("append");
        let p = store.pull(WS_A, Seq::ZERO, 4, 1 << 20).await.expect("pull");
        assert_eq!((seqs(&p), p.cursor, p.more), (vec![1, 2, 3, 4], Seq(4), true));
        let p = store.pull(WS_A, Seq(8), 4, 1 << 20).await.expect("pull");
        assert_eq!((seqs(&p), p.cursor, p.more), (vec![9, 10], Seq(10), false));
        // Byte budget: each entry counts 100 + 80 bytes.
        let p = store.pull(WS_A, Seq::ZERO, 100, 400).await.expect("pull");
        assert_eq!((seqs(&p), p.more), (vec![1, 2], true));
        // At least one entry even when it alone exceeds the budget.
        let p = store.pull(WS_A, Seq::ZERO, 100, 1).await.expect("pull");
        assert_eq!(seqs(&p), vec![1]);
        assert!(matches!(store.pull(WS_A, Seq(11), 10, 1 << 20).await, Err(StoreError::CursorAhead { .. })));
    }

    #[tokio::test]
    async fn a_snapshot_replaces_only_what_it_covers() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = store_with(dir.path(), &[WS_A]).await;
        store.append(WS_A, vec![env(1, b"a1"), env(2, b"b1"), env(1, b"a2"), env(1, b"a3")]).await.expect("append");
        // The snapshot saw entries up to 3; entry 4 (a3) arrived concurrently.
        let out =
            store.replace_with_snapshot(WS_A, env(1, b"snap"), Seq(3), inc(&store).await).await.expect("snapshot");
        assert_eq!((out.entry.seq, out.removed), (Seq(5), 2));
        let p = store.pull(WS_A, Seq::ZERO, 100, 1 << 20).await.expect("pull");
        let bodies: Vec<_> = p.entries.iter().map(|e| e.envelope.ciphertext.clone()).collect();
        assert_eq!(bodies, [b"b1".to_vec(), b"a3".to_vec(), b"snap".to_vec()]);
        assert_eq!(p.entries[2].kind, EntryKind::Snapshot);
        assert!(matches!(
            store.replace_with_snapshot(WS_A, env(1, b"x"), Seq(99), inc(&store).await).await,
            Err(StoreError::SnapshotAhead { .. })
        ));
        // A later snapshot replaces the older one too.
        let out =
            store.replace_with_snapshot(WS_A, env(1, b"snap2"), Seq(5), inc(&store).await).await.expect("snapshot");
        assert_eq!(out.removed, 2);
    }

    #[tokio::test]
    async fn deleting_a_document_removes_all_its_entries_and_nothing_else() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = store_with(dir.path(), &[WS_A, WS_B]).await;
        store.append(WS_A, vec![env(1, b"a1"), env(2, b"b1"), env(1, b"a2")]).await.expect("append");
        store.append(WS_B, vec![env(1, b"other")]).await.expect("append");
        store.replace_with_snapshot(WS_A, env(1, b"snap"), Seq(1), inc(&store).await).await.expect("snapshot");
        let removed = store.delete_document(WS_A, DocTag::from_bytes([1; 32])).await.expect("delete");
        assert_eq!(removed, 2);
        let p = store.pull(WS_A, Seq::ZERO, 100, 1 << 20).await.expect("pull");
        assert_eq!(seqs(&p), vec![2]);
        assert_eq!(p.cursor, Seq(4), "the head survives deletions");
        let p = store.pull(WS_B, Seq::ZERO, 100, 1 << 20).await.expect("pull");
        assert_eq!(p.entries.len(), 1);
    }

    #[tokio::test]
    async fn data_survives_reopening() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let store = store_with(dir.path(), &[WS_A]).await;
            store.append(WS_A, vec![env(1, b"kept")]).await.expect("append");
        }
        let store = SqliteStore::open(dir.path()).expect("reopen");
        let p = store.pull(WS_A, Seq::ZERO, 10, 1 << 20).await.expect("pull");
        assert_eq!(p.entries[0].envelope.ciphertext, b"kept");
        let next = store.append(WS_A, vec![env(1, b"next")]).await.expect("append");
        assert_eq!(next[0].seq, Seq(2));
    }

    /// Whether `needle` occurs in the file (missing counts as absent).
    fn file_contains(path: &Path, needle: &[u8]) -> bool {
        std::fs::read(path).is_ok_and(|bytes| bytes.windows(needle.len()).any(|w| w == needle))
    }

    fn wal(dir: &Path) -> PathBuf {
        dir.join(format!("{DB_FILE}-wal"))
    }

    /// Waits (bounded) until `needle` is in neither the database nor its WAL.
    async fn gone_from_files(dir: &Path, needle: &[u8]) -> bool {
        let deadline = Instant::now() + ERASURE_CHECKPOINT_DELAY * 2 + Duration::from_secs(2);
        while Instant::now() < deadline {
            if !file_contains(&wal(dir), needle) && !file_contains(&dir.join(DB_FILE), needle) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        false
    }

    #[tokio::test]
    async fn deleting_unknown_documents_costs_no_checkpoint() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = store_with(dir.path(), &[WS_A]).await;
        store.append(WS_A, vec![env(1, b"kept")]).await.expect("append");
        for tag in 100..150u8 {
            assert_eq!(store.delete_document(WS_A, DocTag::from_bytes([tag; 32])).await.expect("delete"), 0);
        }
        tokio::time::sleep(ERASURE_CHECKPOINT_DELAY * 2).await;
        assert_eq!(store.erasure_checkpoints(), 0);
    }

    #[tokio::test]
    async fn erasures_are_checkpointed_together_and_leave_the_wal_within_the_bound() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = store_with(dir.path(), &[WS_A]).await;
        let marker = |i: u8| format!("ERASE-ME-{i:03}-{}", "x".repeat(40)).into_bytes();
        for i in 0..20u8 {
            store.append(WS_A, vec![env(i, &marker(i))]).await.expect("append");
        }
        assert!(file_contains(&wal(dir.path()), &marker(0)), "the test looks in the right file");
        let started = Instant::now();
        for i in 0..20u8 {
            assert_eq!(store.delete_document(WS_A, DocTag::from_bytes([i; 32])).await.expect("delete"), 1);
        }
        let deleting = started.elapsed();
        for i in 0..20u8 {
            assert!(gone_from_files(dir.path(), &marker(i)).await, "erased ciphertext {i} is still on disk");
        }
        // Coalesced: one checkpoint per window, not one per delete.
        let windows = 2 + (deleting.as_millis() / ERASURE_CHECKPOINT_DELAY.as_millis()) as u64;
        let checkpoints = store.erasure_checkpoints();
        assert!((1..=windows).contains(&checkpoints), "{checkpoints} checkpoints for 20 deletes in {deleting:?}");
    }

    #[tokio::test]
    async fn ciphertext_replaced_by_a_snapshot_leaves_the_wal_within_the_bound() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = store_with(dir.path(), &[WS_A]).await;
        let old = b"BEFORE-ANONYMISATION-Ada-Lovelace-0123456789".to_vec();
        store.append(WS_A, vec![env(1, &old)]).await.expect("append");
        assert!(file_contains(&wal(dir.path()), &old));
        let out = store
            .replace_with_snapshot(WS_A, env(1, b"anonymised snapshot"), Seq(1), inc(&store).await)
            .await
            .expect("snapshot");
        assert_eq!(out.removed, 1);
        assert!(gone_from_files(dir.path(), &old).await, "replaced ciphertext is still on disk");
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn the_data_dir_and_database_files_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let parent = tempfile::tempdir().expect("tempdir");
        let dir = parent.path().join("relay-data");
        let store = store_with(&dir, &[WS_A]).await;
        store.append(WS_A, vec![env(1, b"x")]).await.expect("append");
        let mode = |p: &Path| std::fs::metadata(p).expect("metadata").permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        for name in [DB_FILE.to_owned(), format!("{DB_FILE}-wal"), format!("{DB_FILE}-shm")] {
            assert_eq!(mode(&dir.join(&name)), 0o600, "{name}");
        }
        drop(store);
        // A file left readable by an older relay is narrowed on open.
        std::fs::set_permissions(dir.join(DB_FILE), std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let _store = SqliteStore::open(&dir).expect("reopen");
        assert_eq!(mode(&dir.join(DB_FILE)), 0o600);
    }

    fn incarnation_of(dir: &Path) -> Incarnation {
        let conn = Connection::open(dir.join(DB_FILE)).expect("open");
        log_state_of(&conn, &WS_A).expect("state").incarnation
    }

    /// Copies the database (and its WAL, when one is left) to `to`.
    fn copy_db(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).expect("mkdir");
        for suffix in ["", "-wal"] {
            let name = format!("{DB_FILE}{suffix}");
            let _ = std::fs::remove_file(to.join(&name));
            if from.join(&name).exists() {
                std::fs::copy(from.join(&name), to.join(&name)).expect("copy");
            }
        }
        let _ = std::fs::remove_file(to.join(format!("{DB_FILE}-shm")));
    }

    #[tokio::test]
    async fn a_workspace_keeps_its_incarnation_across_restarts() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = {
            let store = store_with(dir.path(), &[WS_A]).await;
            store.append(WS_A, vec![env(1, b"x")]).await.expect("append");
            let state = store.log_state(WS_A).await.expect("state");
            assert_eq!(state.head, Seq(1));
            assert_eq!(store.renewal(), None);
            state.incarnation
        };
        let store = SqliteStore::open(dir.path()).expect("reopen");
        assert_eq!(store.renewal(), None, "a clean restart is not a restore");
        assert_eq!(store.log_state(WS_A).await.expect("state").incarnation, first);
        // Another workspace gets its own.
        store.create_workspace(WS_B, AuthVerifier::from_bytes([1; 32])).await.expect("create");
        assert_ne!(store.log_state(WS_B).await.expect("state").incarnation, first);
    }

    #[tokio::test]
    async fn a_database_copied_back_from_an_older_copy_gets_new_incarnations() {
        let dir = tempfile::tempdir().expect("tempdir");
        let backup = tempfile::tempdir().expect("tempdir");
        let before = {
            let store = store_with(dir.path(), &[WS_A]).await;
            store.append(WS_A, vec![env(1, b"kept"), env(1, b"kept too")]).await.expect("append");
            store.log_state(WS_A).await.expect("state").incarnation
        };
        copy_db(dir.path(), backup.path());
        {
            let store = SqliteStore::open(dir.path()).expect("reopen");
            store.append(WS_A, vec![env(2, b"lost in the restore")]).await.expect("append");
        }
        copy_db(backup.path(), dir.path());
        let store = SqliteStore::open(dir.path()).expect("open the restored copy");
        assert!(
            matches!(store.renewal(), Some(Renewal::Restored { database, high_water }) if database < high_water),
            "{:?}",
            store.renewal()
        );
        let after = store.log_state(WS_A).await.expect("state");
        assert_eq!(after.head, Seq(2), "the restored log");
        assert_ne!(after.incarnation, before, "sequence numbers after 2 will be handed out again");
        // The next sequence number is reused, under the new incarnation.
        assert_eq!(store.append(WS_A, vec![env(3, b"new")]).await.expect("append")[0].seq, Seq(3));
        drop(store);
        // Detected once: the high-water mark now follows the restored copy.
        let store = SqliteStore::open(dir.path()).expect("reopen");
        assert_eq!(store.renewal(), None);
        assert_eq!(incarnation_of(dir.path()), after.incarnation);
    }

    #[tokio::test]
    async fn new_incarnation_is_given_on_request_and_when_the_high_water_file_is_missing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = {
            let store = store_with(dir.path(), &[WS_A]).await;
            store.log_state(WS_A).await.expect("state").incarnation
        };
        let second = {
            let store = SqliteStore::open_with(dir.path(), OpenOptions { new_incarnation: true }).expect("open");
            assert_eq!(store.renewal(), Some(&Renewal::Requested));
            store.log_state(WS_A).await.expect("state").incarnation
        };
        assert_ne!(first, second);
        std::fs::remove_file(dir.path().join(HIGH_WATER_FILE)).expect("remove the mark");
        let store = SqliteStore::open(dir.path()).expect("open");
        assert!(matches!(store.renewal(), Some(Renewal::Unknown(_))), "{:?}", store.renewal());
        assert_ne!(store.log_state(WS_A).await.expect("state").incarnation, second);
        drop(store);
        std::fs::write(dir.path().join(HIGH_WATER_FILE), "garbage").expect("write");
        let store = SqliteStore::open(dir.path()).expect("open");
        assert!(matches!(store.renewal(), Some(Renewal::Unknown(_))), "{:?}", store.renewal());
    }

    #[tokio::test]
    async fn a_new_database_needs_no_renewal_and_records_its_high_water_mark() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = store_with(dir.path(), &[WS_A]).await;
        assert_eq!(store.renewal(), None);
        store.append(WS_A, vec![env(1, b"x")]).await.expect("append");
        let mark: u64 = std::fs::read_to_string(dir.path().join(HIGH_WATER_FILE))
            .expect("the mark is written")
            .trim()
            .parse()
            .expect("a count");
        assert_eq!(mark, 2, "one count per committed write transaction");
    }

    #[tokio::test]
    async fn a_snapshot_computed_against_another_incarnation_changes_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = store_with(dir.path(), &[WS_A]).await;
        store.append(WS_A, vec![env(1, b"a1"), env(1, b"a2")]).await.expect("append");
        let current = store.log_state(WS_A).await.expect("state").incarnation;
        let stale = Incarnation::from_bytes([0x57; 16]);
        assert_ne!(stale, current);
        let refused = store.replace_with_snapshot(WS_A, env(1, b"snap"), Seq(2), stale).await;
        assert!(
            matches!(refused, Err(StoreError::IncarnationChanged { sent, current: c }) if sent == stale && c == current),
            "{refused:?}"
        );
        let p = store.pull(WS_A, Seq::ZERO, 100, 1 << 20).await.expect("pull");
        assert_eq!(seqs(&p), vec![1, 2], "nothing deleted, nothing appended");
        let out = store.replace_with_snapshot(WS_A, env(1, b"snap"), Seq(2), current).await.expect("snapshot");
        assert_eq!(out.removed, 2);
    }

    #[test]
    fn a_version_1_database_gets_incarnations_without_a_renewal() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let conn = Connection::open(dir.path().join(DB_FILE)).expect("open");
            conn.execute_batch(SCHEMA).expect("v1 schema");
            conn.execute_batch("PRAGMA user_version = 1").expect("version");
            conn.execute(
                "INSERT INTO workspaces (id, verifier, head, created_at_ms) VALUES (?1, ?2, 7, 0)",
                params![&WS_A.as_bytes()[..], &[1u8; 32][..]],
            )
            .expect("a v1 workspace");
        }
        let store = SqliteStore::open(dir.path()).expect("migrates");
        assert_eq!(store.renewal(), None);
        drop(store);
        let conn = Connection::open(dir.path().join(DB_FILE)).expect("open");
        let state = log_state_of(&conn, &WS_A).expect("an incarnation");
        assert_eq!(state.head, Seq(7));
    }

    #[tokio::test]
    async fn concurrent_appends_are_group_committed_without_gaps_or_duplicates() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Arc::new(store_with(dir.path(), &[WS_A]).await);
        let tasks: Vec<_> = (0..40u8)
            .map(|i| {
                let store = Arc::clone(&store);
                tokio::spawn(async move { store.append(WS_A, vec![env(i, &[i])]).await })
            })
            .collect();
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.expect("join").expect("append").into_iter().map(|e| e.seq.get()));
        }
        all.sort_unstable();
        assert_eq!(all, (1..=40).collect::<Vec<_>>());
    }
}

//! The app's data layer: one [`Engine`] per open workspace. It owns the
//! document repository on IndexedDB, the hydrated documents being edited,
//! and the identity of this device. Views call it through [`crate::state`];
//! it never touches signals.

use std::cell::{Cell, RefCell};
use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::rc::Rc;

use futures_util::lock::Mutex;
use rapport_core::audit::AuditEntry;
use rapport_core::conflict::{self, Choice, FieldConflict, PickError};
use rapport_core::form::Base;
use rapport_core::ids::{MemberId, RecordId};
use rapport_core::privacy::erasure::ErasurePlan;
use rapport_core::privacy::replica::apply_tombstones;
use rapport_core::privacy::Tombstones;
use rapport_core::record::{Record, RecordKind, Row};
use rapport_core::repo::{session_actor, DocHandle, OpenError, Repo, SaveError};
use rapport_core::storage::{Quarantined, Storage, StorageError};
use rapport_core::workspace::Workspace;
use rapport_idb::IdbStorage;
use rapport_sync::{Interrupted, Received, SyncConfig};

use crate::browser;

mod privacy;
mod scrub;

/// The database of the workspace a first visit creates.
pub const DEFAULT_DB: &str = "rapport";
const META_MEMBER: &str = "member_id";
const META_WORKSPACE: &str = "workspace_id";
/// The name the person gave when agreeing to join, until the shared
/// workspace arrives and they are added to its members under it.
const META_JOIN_NAME: &str = "join_member_name";
/// Members added before they gave a name (joined from an older version).
const UNNAMED_MEMBER: &str = "New member";
/// localStorage key naming the database of the workspace this browser opens.
/// Only the name is kept there; all data is in IndexedDB.
const ACTIVE_DB_KEY: &str = "rapport.active-db";

pub type IdbRepo = Repo<IdbStorage>;

/// What the app needs to start: the engine and the state read at boot.
pub struct Booted {
    pub engine: Engine,
    /// `None` while joining: the shared workspace's settings have not
    /// arrived from the relay yet.
    pub workspace: Option<Workspace>,
    pub rows: Vec<Row>,
    pub quarantined: Vec<Quarantined>,
    pub sync: Option<SyncConfig>,
    /// The invite link in the address could not be used (shown to the user).
    pub join_error: Option<String>,
}

/// Why a conflict pick was not saved.
#[derive(Debug, thiserror::Error)]
pub enum PickFailed {
    #[error("the record is not open any more; open it again and pick once more")]
    NotOpen,
    #[error("the value could not be written: {0}")]
    Pick(#[from] PickError),
    #[error("not saved: {0}")]
    Save(#[from] SaveError),
}

/// Why the app could not open its local data.
#[derive(Debug, thiserror::Error)]
pub enum BootError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("this workspace's settings could not be read: {0}")]
    Workspace(#[from] OpenError),
    #[error("this workspace's settings could not be created: {0}")]
    CreateWorkspace(#[from] SaveError),
    #[error("this workspace's sync settings could not be read: {0}")]
    SyncSettings(#[from] rapport_sync::LoadError),
}

pub struct Engine {
    repo: Rc<IdbRepo>,
    /// Documents hydrated for editing, by record id. The lock serialises
    /// edits so two quick saves of one record never race.
    handles: Mutex<HashMap<RecordId, DocHandle>>,
    pub member: MemberId,
    pub db_name: String,
    /// The workspace document's id; unknown while joining.
    workspace_id: Cell<Option<RecordId>>,
    /// Records whose last edit is not in storage yet (a write failed).
    unsaved: RefCell<HashMap<RecordId, Row>>,
}

async fn meta_id<T: std::str::FromStr + ToString>(
    storage: &IdbStorage,
    key: &str,
    make: Option<impl FnOnce() -> T>,
) -> Result<Option<(T, bool)>, StorageError> {
    if let Some(bytes) = storage.get_meta(key).await? {
        if let Some(id) = std::str::from_utf8(&bytes).ok().and_then(|s| s.parse().ok()) {
            return Ok(Some((id, false)));
        }
    }
    let Some(make) = make else { return Ok(None) };
    let id = make();
    storage.put_meta(key, id.to_string().as_bytes()).await?;
    Ok(Some((id, true)))
}

fn local_storage() -> Option<web_sys::Storage> {
    web_sys::window().and_then(|w| w.local_storage().ok().flatten())
}

/// The database this browser opens (the last workspace used).
pub fn active_db() -> String {
    local_storage().and_then(|s| s.get_item(ACTIVE_DB_KEY).ok().flatten()).unwrap_or_else(|| DEFAULT_DB.to_owned())
}

/// Makes `name` the database opened at the next start.
pub fn set_active_db(name: &str) {
    if let Some(s) = local_storage() {
        let _ = s.set_item(ACTIVE_DB_KEY, name);
    }
}

/// localStorage key listing the workspaces on this device: database name →
/// workspace name, so the user can switch between them.
const KNOWN_DBS_KEY: &str = "rapport.workspaces";

/// Workspaces opened on this device (database name, workspace name).
pub fn known_workspaces() -> Vec<(String, String)> {
    local_storage()
        .and_then(|s| s.get_item(KNOWN_DBS_KEY).ok().flatten())
        .and_then(|json| serde_json::from_str::<std::collections::BTreeMap<String, String>>(&json).ok())
        .map(|m| m.into_iter().collect())
        .unwrap_or_default()
}

/// Records the name of the workspace in database `db` for the switcher.
pub fn remember_workspace(db: &str, name: &str) {
    let mut known: std::collections::BTreeMap<String, String> = known_workspaces().into_iter().collect();
    if known.get(db).map(String::as_str) == Some(name) {
        return;
    }
    known.insert(db.to_owned(), name.to_owned());
    if let (Some(s), Ok(json)) = (local_storage(), serde_json::to_string(&known)) {
        let _ = s.set_item(KNOWN_DBS_KEY, &json);
    }
}

/// The invite in the address (`#join=…`), removed from the address bar so
/// the secret does not linger in history.
pub fn take_invite_from_address() -> Option<String> {
    let window = web_sys::window()?;
    let hash = window.location().hash().ok()?;
    if !hash.contains("join=") {
        return None;
    }
    if let Ok(history) = window.history() {
        let path = window.location().pathname().unwrap_or_default();
        let _ = history.replace_state_with_url(&wasm_bindgen::JsValue::NULL, "", Some(&path));
    }
    Some(hash)
}

/// What an invite link asks to join, shown before anything is joined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvitePreview {
    /// The workspace's name as the link labels it, if it does.
    pub workspace_name: Option<String>,
    /// The sync server the workspace uses.
    pub relay_url: String,
}

/// Reads what an invite link would join, without joining.
///
/// # Errors
/// [`rapport_sync::JoinError`] naming what is wrong with the link.
pub fn preview_invite(invite: &str) -> Result<InvitePreview, rapport_sync::JoinError> {
    let config = SyncConfig::join(invite)?;
    let workspace_name = rapport_protocol::InviteLink::parse(invite)?.name().map(str::to_owned);
    Ok(InvitePreview { workspace_name, relay_url: config.relay_url })
}

/// An invite the person agreed to join, and the name they gave.
#[derive(Debug, Clone)]
pub struct Joining {
    pub invite: String,
    pub member_name: String,
}

impl Engine {
    /// Opens the workspace this browser uses: the one of an invite the
    /// person agreed to join, else the last one used, else a new local
    /// workspace.
    ///
    /// # Errors
    /// [`BootError`] when IndexedDB cannot be opened or the workspace
    /// document cannot be read.
    pub async fn boot(joining: Option<Joining>) -> Result<Booted, BootError> {
        let mut join_error = None;
        let mut joined = None;
        if let Some(Joining { invite, .. }) = &joining {
            match SyncConfig::join(invite) {
                Ok(config) => {
                    let db = format!("rapport-{}", config.workspace);
                    set_active_db(&db);
                    joined = Some(config);
                }
                Err(e) => join_error = Some(format!("This invite link cannot be used: {e}")),
            }
        }
        let db_name = active_db();
        let storage = IdbStorage::open(&db_name).await?;
        let mut sync = SyncConfig::load(&storage).await?;
        if let (Some(config), None) = (&joined, &sync) {
            config.save(&storage).await?;
            sync = joined.clone();
        }
        if let (Some(_), Some(Joining { member_name, .. })) = (&joined, &joining) {
            storage.put_meta(META_JOIN_NAME, member_name.trim().as_bytes()).await?;
        }
        let make_member = || MemberId::new(browser::now(), browser::random());
        let (member, _) =
            meta_id(&storage, META_MEMBER, Some(make_member)).await?.unwrap_or_else(|| (make_member(), true));
        // A joined workspace takes its settings from the relay; only a new
        // local workspace creates them here.
        let creates_workspace = sync.as_ref().is_none_or(|c| c.created_here);
        let workspace_meta =
            meta_id(&storage, META_WORKSPACE, creates_workspace.then_some(browser::new_record_id)).await?;
        // Local changes carry their time, for the audit trail.
        let repo = Rc::new(Repo::new(storage, session_actor(member, browser::random())).with_clock(browser::now));
        let engine = Engine {
            repo,
            handles: Mutex::new(HashMap::new()),
            member,
            db_name,
            workspace_id: Cell::new(workspace_meta.as_ref().map(|(id, _)| *id)),
            unsaved: RefCell::new(HashMap::new()),
        };
        if let Some(config) = &sync {
            rapport_sync::turn_on(&engine.repo, config).await?;
        }
        let workspace = match workspace_meta {
            Some((id, true)) => Some(engine.create_workspace(id).await?),
            Some((id, false)) => match engine.open::<Workspace>(id).await {
                Ok(ws) => Some(ws),
                // A first start stopped (tab closed, page reloaded) between
                // remembering the id and storing the document: finish it.
                Err(OpenError::NotFound(_)) if creates_workspace => Some(engine.create_workspace(id).await?),
                Err(e) => return Err(e.into()),
            },
            None => None,
        };
        let load = engine.repo.storage().rows().await?;
        let mut quarantined = engine.repo.storage().quarantined().await?;
        for (key, reason) in load.unreadable {
            quarantined.push(Quarantined { key, reason, at: browser::now() });
        }
        let rows = load.rows.into_iter().filter(|r| r.kind != RecordKind::Workspace).collect();
        Ok(Booted { engine, workspace, rows, quarantined, sync, join_error })
    }

    async fn create_workspace(&self, id: RecordId) -> Result<Workspace, SaveError> {
        let ws = Workspace::new(id, "My workspace", self.member, "Me", browser::now());
        let handle = self.repo.create(&ws).await?;
        self.handles.lock().await.insert(id, handle);
        Ok(ws)
    }

    pub fn repo(&self) -> Rc<IdbRepo> {
        self.repo.clone()
    }

    pub fn workspace_id(&self) -> Option<RecordId> {
        self.workspace_id.get()
    }

    /// Adopts a workspace document that arrived from the relay (joining):
    /// remembers it and adds this member to it.
    ///
    /// # Errors
    /// [`OpenError`] when the document cannot be read, or storage fails.
    pub async fn adopt_workspace(&self, id: RecordId) -> Result<Workspace, OpenError> {
        self.repo.storage().put_meta(META_WORKSPACE, id.to_string().as_bytes()).await?;
        self.workspace_id.set(Some(id));
        let mut ws = self.open::<Workspace>(id).await?;
        if let std::collections::btree_map::Entry::Vacant(slot) = ws.members.entry(self.member) {
            let given = self.repo.storage().get_meta(META_JOIN_NAME).await?;
            let name = given
                .and_then(|bytes| String::from_utf8(bytes).ok())
                .filter(|n| !n.trim().is_empty())
                .unwrap_or_else(|| UNNAMED_MEMBER.to_owned());
            slot.insert(rapport_core::workspace::Member { name });
            ws.updated_at = browser::now();
            // Storage errors surface through the save indicator on the next edit.
            let _ = self.save(&ws).await;
        }
        Ok(ws)
    }

    /// Turns sync on for this workspace as its creator (queues every record
    /// for the first upload) and remembers the settings.
    ///
    /// # Errors
    /// [`StorageError`].
    pub async fn share(&self, config: &SyncConfig) -> Result<(), StorageError> {
        rapport_sync::turn_on(&self.repo, config).await.map(|_| ())
    }

    /// The sync settings stored for this workspace, if it is shared (read
    /// when another tab shared it after this one opened).
    ///
    /// # Errors
    /// [`rapport_sync::LoadError`].
    pub async fn sync_config(&self) -> Result<Option<SyncConfig>, rapport_sync::LoadError> {
        SyncConfig::load(self.repo.storage()).await
    }

    /// Merges a page of changes received from the relay into the documents,
    /// hydrated (merged in place, so an open page sees them) or not, and
    /// stores the whole page in one IndexedDB transaction
    /// (`rapport_sync::apply_page`). The driver saves the cursor only after
    /// this returns, so the cursor never passes a change that is not durable.
    ///
    /// # Errors
    /// [`Interrupted`] at the first change that cannot be applied (the others
    /// are stored), or at the first of the page when storage failed (nothing
    /// is stored).
    pub async fn apply_remote(&self, entries: &[Received], now_ms: u64) -> Result<Vec<Row>, Interrupted> {
        let mut handles = self.handles.lock().await;
        rapport_sync::apply_page(&self.repo, entries, &mut handles, now_ms).await
    }

    /// Loads a record for viewing or editing (from memory when hydrated).
    ///
    /// # Errors
    /// [`OpenError`]; a corrupt record is quarantined.
    pub async fn open<R: Record>(&self, id: RecordId) -> Result<R, OpenError> {
        let mut handles = self.handles.lock().await;
        if let Some(handle) = handles.get(&id) {
            return R::from_doc(handle.doc()).map_err(|e| OpenError::Corrupt { id, reason: e.to_string() });
        }
        let (handle, record) = self.repo.open::<R>(id, browser::now()).await?;
        handles.insert(id, handle);
        Ok(record)
    }

    /// The record's fields that hold values set concurrently elsewhere,
    /// named as `ws` names them; empty when the record is not hydrated.
    pub async fn conflicts(&self, id: RecordId, ws: &Workspace) -> Vec<FieldConflict> {
        let handles = self.handles.lock().await;
        handles.get(&id).map(|h| conflict::conflicts(h.doc(), ws)).unwrap_or_default()
    }

    /// Writes one of a conflicted field's values (see
    /// [`conflict::pick`]), which resolves the conflict, and returns the
    /// record's new row once durable.
    ///
    /// # Errors
    /// [`PickFailed`] in words.
    pub async fn pick(&self, id: RecordId, path: &[String], choice: &Choice) -> Result<Row, PickFailed> {
        let mut handles = self.handles.lock().await;
        let handle = handles.get_mut(&id).ok_or(PickFailed::NotOpen)?;
        conflict::pick(handle.doc_mut(), path, choice, browser::now(), self.member)?;
        match self.repo.save_doc(handle).await {
            Ok(row) => {
                self.unsaved.borrow_mut().remove(&id);
                Ok(row)
            }
            Err(e) => {
                if let Ok(row) = rapport_core::repo::materialise(handle.doc()) {
                    self.unsaved.borrow_mut().insert(id, row);
                }
                Err(e.into())
            }
        }
    }

    /// The names of the fields of record `id` changed since `base` (by
    /// another tab or device while a form is open).
    pub async fn changed_since(&self, id: RecordId, base: &Base, ws: &Workspace) -> Vec<String> {
        let mut handles = self.handles.lock().await;
        match handles.get_mut(&id) {
            Some(handle) if handle.epoch() == base.epoch => conflict::changed_since(handle.doc_mut(), &base.heads, ws),
            _ => Vec::new(),
        }
    }

    /// Stores a new record.
    ///
    /// # Errors
    /// [`SaveError`]; nothing was stored.
    pub async fn create<R: Record>(&self, record: &R) -> Result<Row, SaveError> {
        let handle = self.repo.create(record).await?;
        self.handles.lock().await.insert(record.id(), handle);
        Ok(record.row())
    }

    /// Saves an edited record. Returns its new row once durable.
    ///
    /// # Errors
    /// [`SaveError::Storage`]: the edit is kept in memory and listed by
    /// [`Engine::unsaved`] until [`Engine::retry_unsaved`] succeeds.
    pub async fn save<R: Record>(&self, record: &R) -> Result<Row, SaveError> {
        self.save_based_on(record, None).await
    }

    /// Loads a record for an edit form, with the version it was read at
    /// (epoch and heads, read together under one lock):
    /// [`Engine::save_edit`] takes it back when the form is saved.
    ///
    /// # Errors
    /// As [`Engine::open`].
    pub async fn open_for_edit<R: Record>(&self, id: RecordId) -> Result<(R, Base), OpenError> {
        let mut handles = self.handles.lock().await;
        let handle = match handles.entry(id) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(slot) => slot.insert(self.repo.open_doc(id, browser::now()).await?),
        };
        let record = R::from_doc(handle.doc()).map_err(|e| OpenError::Corrupt { id, reason: e.to_string() })?;
        let base = Base { epoch: handle.epoch(), heads: handle.doc_mut().get_heads() };
        Ok((record, base))
    }

    /// [`Engine::save`] for an edit form opened at `base`: writes only what
    /// the form changed since (`Repo::save_since`), so edits made elsewhere
    /// meanwhile stay; [`SaveError::Rewritten`] (nothing written, nothing
    /// kept) when the record was anonymised since.
    ///
    /// # Errors
    /// As [`Engine::save`], plus [`SaveError::Rewritten`].
    pub async fn save_edit<R: Record>(&self, record: &R, base: &Base) -> Result<Row, SaveError> {
        self.save_based_on(record, Some(base)).await
    }

    async fn save_based_on<R: Record>(&self, record: &R, base: Option<&Base>) -> Result<Row, SaveError> {
        let id = record.id();
        let mut handles = self.handles.lock().await;
        let handle = match handles.entry(id) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(slot) => slot.insert(self.repo.open_doc(id, browser::now()).await.map_err(|e| match e {
                OpenError::Storage(s) => SaveError::Storage(s),
                other => SaveError::Storage(StorageError::ReadFailed(other.to_string())),
            })?),
        };
        let saved = match base {
            Some(base) => self.repo.save_since(handle, record, base).await,
            None => self.repo.save(handle, record).await,
        };
        // The row of the document as saved: after a merge with edits made
        // elsewhere it is not the form's record.
        let row = rapport_core::repo::materialise(handle.doc()).unwrap_or_else(|_| record.row());
        match saved {
            Ok(()) => {
                self.unsaved.borrow_mut().remove(&id);
                Ok(row)
            }
            Err(e @ SaveError::Rewritten) => Err(e),
            Err(e) => {
                self.unsaved.borrow_mut().insert(id, row);
                Err(e)
            }
        }
    }

    /// Drops the hydrated copy of records changed elsewhere (another tab,
    /// sync) and returns their fresh rows from storage. A record with
    /// unsaved local edits keeps its hydrated copy: dropping it would lose them.
    pub async fn refresh(&self, ids: &[RecordId]) -> Vec<Row> {
        let mut handles = self.handles.lock().await;
        let mut rows = Vec::new();
        for id in ids {
            if self.unsaved.borrow().contains_key(id) {
                continue;
            }
            handles.remove(id);
            if let Ok(handle) = self.repo.open_doc(*id, browser::now()).await {
                if let Ok(row) = rapport_core::repo::materialise(handle.doc()) {
                    rows.push(row);
                }
                handles.insert(*id, handle);
            }
        }
        rows
    }

    /// Erases the records of `plan` everywhere this device can reach: the
    /// tombstones go into the workspace document first (durable, and queued
    /// for sync so every other replica erases its copies), then every byte
    /// of the records is removed from this device.
    ///
    /// # Errors
    /// [`SaveError`] when the tombstones could not be stored: then nothing
    /// was erased.
    pub async fn erase(&self, ws: &mut Workspace, plan: &ErasurePlan) -> Result<Vec<RecordId>, SaveError> {
        let now = browser::now();
        for tombstone in plan.tombstones(now, self.member) {
            ws.tombstones.insert(tombstone);
        }
        ws.updated_at = now;
        self.save(ws).await?;
        Ok(self.purge(plan.erase_ids(), &ws.tombstones).await?)
    }

    /// Removes every byte of erased records among `held` and drops their
    /// unsent changes. Idempotent: run at start-up and whenever the
    /// workspace's tombstones change (an erasure from another replica).
    ///
    /// # Errors
    /// [`StorageError`]; records not yet removed are removed on the next run.
    pub async fn purge(&self, held: Vec<RecordId>, tombstones: &Tombstones) -> Result<Vec<RecordId>, StorageError> {
        if tombstones.is_empty() {
            return Ok(Vec::new());
        }
        // Nothing held is erased (every start once an erasure is done):
        // nothing to read. `Storage::remove` deletes a record's outbox
        // entries with its bytes, and every local edit is queued, so a
        // workspace's outbox can be large; it is read only when a removal
        // is due, to drop any entry of an erased record left behind.
        let erased: Vec<RecordId> = held.into_iter().filter(|id| tombstones.is_erased(*id)).collect();
        if erased.is_empty() {
            return Ok(Vec::new());
        }
        let storage = self.repo.storage();
        let outbox = storage.outbox(usize::MAX).await?;
        let purge = apply_tombstones(erased, &outbox, tombstones);
        let mut handles = self.handles.lock().await;
        for id in &purge.remove {
            storage.remove(*id).await?;
            handles.remove(id);
            self.unsaved.borrow_mut().remove(id);
        }
        if !purge.drop_outbox.is_empty() {
            storage.ack_outbox(&purge.drop_outbox).await?;
        }
        Ok(purge.remove)
    }

    /// Who changed what and when in one record, newest first.
    pub async fn history(&self, id: RecordId) -> Vec<AuditEntry> {
        let mut handles = self.handles.lock().await;
        match handles.get_mut(&id) {
            Some(handle) => rapport_core::audit::history(handle.doc_mut()),
            None => Vec::new(),
        }
    }

    /// Records with edits not yet in storage.
    pub fn unsaved(&self) -> usize {
        self.unsaved.borrow().len()
    }

    /// Writes every edit that failed to save before.
    ///
    /// # Errors
    /// The first [`SaveError`]; edits not written stay pending.
    pub async fn retry_unsaved(&self) -> Result<(), SaveError> {
        let pending: Vec<(RecordId, Row)> = self.unsaved.borrow().iter().map(|(k, v)| (*k, v.clone())).collect();
        let mut handles = self.handles.lock().await;
        for (id, row) in pending {
            if let Some(handle) = handles.get_mut(&id) {
                self.repo.retry(handle, row).await?;
            }
            self.unsaved.borrow_mut().remove(&id);
        }
        Ok(())
    }

    /// Storage used and available, in bytes, when the browser tells.
    pub async fn estimate(&self) -> Option<(f64, f64)> {
        IdbStorage::estimate().await.ok().flatten().map(|(used, quota)| (used as f64, quota as f64))
    }

    /// Asks the browser not to evict this site's data under pressure.
    pub async fn request_persistence(&self) -> bool {
        IdbStorage::request_persistence().await.unwrap_or(false)
    }

    pub async fn quarantined(&self) -> Result<Vec<Quarantined>, StorageError> {
        self.repo.storage().quarantined().await
    }
}

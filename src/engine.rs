//! The app's data layer: one [`Engine`] per open workspace. It owns the
//! document repository on IndexedDB, the hydrated documents being edited,
//! and the identity of this device. Views call it through [`crate::state`];
//! it never touches signals.

use std::cell::RefCell;
use std::collections::hash_map::Entry;
use std::collections::HashMap;

use futures_util::lock::Mutex;
use rapport_core::contact::{self, FieldConflict};
use rapport_core::ids::{MemberId, RecordId};
use rapport_core::record::{Record, Row};
use rapport_core::repo::{session_actor, DocHandle, OpenError, Repo, SaveError};
use rapport_core::storage::{Quarantined, Storage, StorageError};
use rapport_core::workspace::Workspace;
use rapport_idb::IdbStorage;

use crate::browser;

pub const DB_NAME: &str = "rapport";
const META_MEMBER: &str = "member_id";
const META_WORKSPACE: &str = "workspace_id";

/// What the app needs to start: the engine and the state read at boot.
pub struct Booted {
    pub engine: Engine,
    pub workspace: Workspace,
    pub rows: Vec<Row>,
    pub quarantined: Vec<Quarantined>,
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
}

pub struct Engine {
    repo: Repo<IdbStorage>,
    /// Documents hydrated for editing, by record id. The lock serialises
    /// edits so two quick saves of one record never race.
    handles: Mutex<HashMap<RecordId, DocHandle>>,
    pub member: MemberId,
    /// Records whose last edit is not in storage yet (a write failed).
    unsaved: RefCell<HashMap<RecordId, Row>>,
}

async fn meta_id<T: std::str::FromStr + ToString>(
    storage: &IdbStorage,
    key: &str,
    make: impl FnOnce() -> T,
) -> Result<(T, bool), StorageError> {
    if let Some(bytes) = storage.get_meta(key).await? {
        if let Some(id) = std::str::from_utf8(&bytes).ok().and_then(|s| s.parse().ok()) {
            return Ok((id, false));
        }
    }
    let id = make();
    storage.put_meta(key, id.to_string().as_bytes()).await?;
    Ok((id, true))
}

impl Engine {
    /// Opens (or on first run creates) the local workspace.
    ///
    /// # Errors
    /// [`BootError`] when IndexedDB cannot be opened or the workspace
    /// document cannot be read.
    pub async fn boot() -> Result<Booted, BootError> {
        let storage = IdbStorage::open(DB_NAME).await?;
        let (member, _) = meta_id(&storage, META_MEMBER, || MemberId::new(browser::now(), browser::random())).await?;
        let (workspace_id, created) = meta_id(&storage, META_WORKSPACE, browser::new_record_id).await?;
        let repo = Repo::new(storage, session_actor(member, browser::random()));
        let engine =
            Engine { repo, handles: Mutex::new(HashMap::new()), member, unsaved: RefCell::new(HashMap::new()) };
        let workspace = if created {
            let ws = Workspace::new(workspace_id, "My workspace", member, "Me", browser::now());
            let handle = engine.repo.create(&ws).await?;
            engine.handles.lock().await.insert(workspace_id, handle);
            ws
        } else {
            engine.open::<Workspace>(workspace_id).await?.0
        };
        let load = engine.repo.storage().rows().await?;
        let mut quarantined = engine.repo.storage().quarantined().await?;
        for (key, reason) in load.unreadable {
            quarantined.push(Quarantined { key, reason, at: browser::now() });
        }
        let rows = load.rows.into_iter().filter(|r| r.kind != rapport_core::record::RecordKind::Workspace).collect();
        Ok(Booted { engine, workspace, rows, quarantined })
    }

    /// Loads a record for viewing or editing (from memory when hydrated).
    ///
    /// # Errors
    /// [`OpenError`]; a corrupt record is quarantined.
    pub async fn open<R: Record>(&self, id: RecordId) -> Result<(R, Vec<FieldConflict>), OpenError> {
        let mut handles = self.handles.lock().await;
        if let Some(handle) = handles.get(&id) {
            let record = R::from_doc(handle.doc()).map_err(|e| OpenError::Corrupt { id, reason: e.to_string() })?;
            return Ok((record, contact::conflicts(handle.doc())));
        }
        let (handle, record) = self.repo.open::<R>(id, browser::now()).await?;
        let conflicts = contact::conflicts(handle.doc());
        handles.insert(id, handle);
        Ok((record, conflicts))
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
        let id = record.id();
        let mut handles = self.handles.lock().await;
        let handle = match handles.entry(id) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(slot) => slot.insert(self.repo.open_doc(id, browser::now()).await.map_err(|e| match e {
                OpenError::Storage(s) => SaveError::Storage(s),
                other => SaveError::Storage(StorageError::ReadFailed(other.to_string())),
            })?),
        };
        let row = record.row();
        match self.repo.save(handle, record).await {
            Ok(()) => {
                self.unsaved.borrow_mut().remove(&id);
                Ok(row)
            }
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

//! Reactive app state shared through context: the row index behind lists
//! and search, the workspace settings, the save status and notifications.
//! Signals live here; the data itself comes from [`crate::engine::Engine`].

use std::rc::Rc;

use leptos::prelude::*;
use leptos::task::spawn_local;
use rapport_core::conflict::Choice;
use rapport_core::form::Base;
use rapport_core::ids::RecordId;
use rapport_core::privacy::ErasurePlan;
use rapport_core::record::{Record, Row};
use rapport_core::repo::SaveError;
use rapport_core::search::RowIndex;
use rapport_core::storage::Quarantined;
use rapport_core::workspace::Workspace;

use rapport_sync::{QuarantineList, SyncConfig, SyncStatus};

use crate::engine::{Booted, Engine};

#[wasm_bindgen::prelude::wasm_bindgen]
extern "C" {
    /// `performance.mark(name)`: timestamps that the benchmarks
    /// (`tests/bench/`) read; they cost nothing measurable.
    #[wasm_bindgen(js_namespace = performance, js_name = mark)]
    fn performance_mark(name: &str);
}

/// Marks a moment for the benchmarks (`tests/bench/`): `rapport:index-start`
/// and `rapport:index-built` around building the row index at start-up,
/// `rapport:list-rendered` when the contact list first shows rows,
/// `rapport:save-durable` when a save has committed to IndexedDB.
pub fn mark(name: &str) {
    performance_mark(name);
}

/// Whether the user's last edits are durable.
#[derive(Debug, Clone, PartialEq)]
pub enum SaveState {
    Idle,
    Saving,
    Saved,
    /// Plain-language reason; the edit is kept in memory for a retry.
    Failed(String),
}

/// A short message at the bottom of the screen, optionally with an action.
#[derive(Clone)]
pub struct Toast {
    pub id: u64,
    pub message: String,
    pub action: Option<(String, Rc<dyn Fn()>)>,
}

#[derive(Clone, Copy)]
pub struct AppState {
    pub engine: StoredValue<Rc<Engine>, LocalStorage>,
    pub index: RwSignal<RowIndex, LocalStorage>,
    pub workspace: RwSignal<Workspace>,
    pub save: RwSignal<SaveState>,
    pub quarantined: RwSignal<Vec<Quarantined>>,
    pub toast: RwSignal<Option<Toast>, LocalStorage>,
    /// Records changed outside this tab's own edits (another tab, sync),
    /// with a counter so that views showing one of them reload it.
    pub external: RwSignal<(u64, Vec<RecordId>)>,
    pub tabs: StoredValue<Option<Rc<crate::tabs::TabChannel>>, LocalStorage>,
    /// Relay sync, when this tab holds the workspace's connection.
    pub sync: StoredValue<Option<Rc<crate::sync::SyncService>>, LocalStorage>,
    /// What the sync indicator shows (from this tab's sync or the one
    /// that holds the connection); `None` for a workspace that is not shared.
    pub sync_badge: RwSignal<Option<SyncBadge>>,
    /// The relay and invite link of a shared workspace.
    pub sharing: RwSignal<Option<Sharing>>,
    /// Joined from an invite; the workspace's settings have not arrived yet.
    pub joining: RwSignal<bool>,
}

/// How a shared workspace syncs, for the settings page.
#[derive(Debug, Clone, PartialEq)]
pub struct Sharing {
    pub relay_url: String,
    config: SyncConfig,
    app_url: String,
}

impl Sharing {
    pub fn of(config: &SyncConfig) -> Self {
        let app_url = web_sys::window()
            .and_then(|w| w.location().origin().ok())
            .map(|origin| format!("{origin}{}/", crate::browser::base_path()))
            .unwrap_or_default();
        Self { relay_url: config.relay_url.clone(), config: config.clone(), app_url }
    }

    /// The invite link, labelled with the workspace's current name.
    pub fn invite_url(&self, workspace_name: &str) -> String {
        self.config.named_invite_url(&self.app_url, workspace_name).unwrap_or_default()
    }
}

/// What the sync indicator says while sync is stopped (the browser is
/// offline, or the tab has not connected yet).
pub const OFFLINE_LABEL: &str = "Offline: changes are saved on this device";

/// The sync indicator's content, shared between tabs.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SyncBadge {
    /// `ok`, `busy`, `offline` or `error`: the dot's colour.
    pub tone: String,
    pub label: String,
    /// Plain-language explanation of an error.
    pub detail: Option<String>,
    /// Entries of the relay's log set aside because this device cannot
    /// read them (sync goes on past them), one sentence each.
    #[serde(default)]
    pub set_aside: Vec<String>,
}

impl SyncBadge {
    pub fn of(status: &SyncStatus) -> Self {
        let tone = match status {
            SyncStatus::UpToDate => "ok",
            SyncStatus::Connecting | SyncStatus::Syncing { .. } => "busy",
            SyncStatus::Offline => "offline",
            SyncStatus::Error(_) => "error",
        };
        let detail = match status {
            SyncStatus::Error(problem) => Some(problem.message()),
            _ => None,
        };
        let label = match status {
            // Said in full: work goes on, nothing is lost.
            SyncStatus::Offline => OFFLINE_LABEL.to_owned(),
            other => other.label(),
        };
        Self { tone: tone.into(), label, detail, set_aside: Vec::new() }
    }
}

impl AppState {
    pub fn new(booted: Booted) -> Self {
        let Booted { engine, workspace, rows, quarantined, sync, .. } = booted;
        mark("rapport:index-start");
        let index = RowIndex::from_rows(rows);
        mark("rapport:index-built");
        let joining = workspace.is_none();
        // Until a joined workspace's settings arrive, the app shows an
        // empty placeholder that is never stored.
        let workspace = workspace.unwrap_or_else(|| {
            let mut ws = Workspace::new(
                RecordId::from_bytes([0; 16]),
                "Shared workspace",
                engine.member,
                "Me",
                crate::browser::now(),
            );
            ws.purposes = rapport_core::workspace::default_purposes();
            ws
        });
        Self {
            engine: StoredValue::new_local(Rc::new(engine)),
            index: RwSignal::new_local(index),
            workspace: RwSignal::new(workspace),
            save: RwSignal::new(SaveState::Idle),
            quarantined: RwSignal::new(quarantined),
            toast: RwSignal::new_local(None),
            external: RwSignal::new((0, Vec::new())),
            tabs: StoredValue::new_local(None),
            sync: StoredValue::new_local(None),
            sync_badge: RwSignal::new(sync.as_ref().map(|_| SyncBadge::of(&SyncStatus::Offline))),
            sharing: RwSignal::new(sync.as_ref().map(Sharing::of)),
            joining: RwSignal::new(joining),
        }
    }

    /// Sync status changed in the tab that holds the connection.
    pub fn sync_status_changed(self, status: &SyncStatus) {
        let set_aside = self.sync_badge.with_untracked(|b| b.as_ref().map(|b| b.set_aside.clone()).unwrap_or_default());
        self.show_sync_badge(SyncBadge { set_aside, ..SyncBadge::of(status) });
    }

    /// The entries sync set aside changed (in the tab that holds the
    /// connection).
    pub fn sync_set_aside_changed(self, list: &QuarantineList) {
        let mut set_aside: Vec<String> = list.entries.iter().map(|e| e.message()).collect();
        if list.older > 0 {
            set_aside.insert(0, format!("{} earlier changes were set aside too.", list.older));
        }
        let badge =
            self.sync_badge.with_untracked(|b| b.clone()).unwrap_or_else(|| SyncBadge::of(&SyncStatus::Offline));
        self.show_sync_badge(SyncBadge { set_aside, ..badge });
    }

    fn show_sync_badge(self, badge: SyncBadge) {
        if let Some(tabs) = self.tabs.get_value() {
            tabs.announce_status(&badge);
        }
        self.sync_badge.set(Some(badge));
    }

    /// Another tab says this workspace syncs (its sync status arrived): a
    /// tab opened before the workspace was shared learns the settings from
    /// storage, so it shows them and can take over the relay connection
    /// when the tab holding it closes.
    pub fn learn_sharing(self) {
        if self.sharing.with_untracked(Option::is_some) {
            return;
        }
        spawn_local(async move {
            let engine = self.engine();
            // Checked again: the status may have arrived twice meanwhile.
            if let (Ok(Some(config)), true) = (engine.sync_config().await, self.sharing.with_untracked(Option::is_none))
            {
                self.sharing.set(Some(Sharing::of(&config)));
                crate::sync::start(self, config, &engine.db_name);
            }
        });
    }

    /// Rows changed by sync: adopt a joined workspace's settings when they
    /// arrive, and bring the changes into every tab.
    pub fn synced_rows(self, rows: &[Row]) {
        let ids: Vec<RecordId> = rows.iter().map(|r| r.id).collect();
        if let Some(tabs) = self.tabs.get_value() {
            tabs.announce(&ids);
        }
        let arrived = rows.iter().find(|r| r.kind == rapport_core::record::RecordKind::Workspace).map(|r| r.id);
        if let (Some(id), None) = (arrived, self.engine().workspace_id()) {
            spawn_local(async move {
                if let Ok(ws) = self.engine().adopt_workspace(id).await {
                    self.workspace.set(ws);
                    self.joining.set(false);
                }
            });
        }
        self.take_external(ids);
    }

    pub fn engine(&self) -> Rc<Engine> {
        self.engine.get_value()
    }

    /// Saves a record (creating it when `is_new`), updates the list row and
    /// the save indicator. Returns the error in words for the caller to show.
    pub async fn persist<R: Record>(self, record: R, is_new: bool) -> Result<Row, String> {
        self.persist_as(record, is_new, None).await
    }

    /// [`AppState::persist`] for an edit form opened at `base`
    /// ([`Engine::open_for_edit`]): writes only what the form changed since,
    /// and is refused if the record was anonymised since.
    pub async fn persist_edit<R: Record>(self, record: R, base: Base) -> Result<Row, String> {
        self.persist_as(record, false, Some(base)).await
    }

    /// Saves what a record form holds: a new record when the form was not
    /// opened on one (`base` is `None`), else an edit of the version it
    /// was opened at ([`AppState::persist_edit`]).
    pub async fn persist_form<R: Record>(self, record: R, base: Option<Base>) -> Result<Row, String> {
        match base {
            Some(base) => self.persist_edit(record, base).await,
            None => self.persist(record, true).await,
        }
    }

    /// Picks one value of a conflicted field of record `id` (see
    /// [`Engine::pick`]) and brings the result to the list, other tabs and
    /// sync.
    pub async fn pick(self, id: RecordId, path: Vec<String>, choice: Choice) -> Result<(), String> {
        self.save.set(SaveState::Saving);
        match self.engine().pick(id, &path, &choice).await {
            Ok(row) => {
                self.stored(row);
                Ok(())
            }
            Err(e) => {
                let message = format!("Not saved: {e}");
                self.save.set(SaveState::Failed(message.clone()));
                Err(message)
            }
        }
    }

    /// A record's new row is durable: tell sync, the other tabs and the list.
    fn stored(self, row: Row) {
        let engine = self.engine();
        // Sync first: its task is queued ahead of the list's re-render that
        // the index update sets off, so the push does not wait for a frame
        // of UI work (edit propagation).
        if let Some(sync) = self.sync.get_value() {
            sync.local_changes();
        }
        if let Some(tabs) = self.tabs.get_value() {
            tabs.announce(&[row.id]);
        }
        self.index.update(|i| i.upsert(row));
        self.save.set(if engine.unsaved() == 0 { SaveState::Saved } else { self.save.get_untracked() });
    }

    async fn persist_as<R: Record>(self, record: R, is_new: bool, base: Option<Base>) -> Result<Row, String> {
        let engine = self.engine();
        // A form left open while the record was erased (here, in another
        // tab or on another device) must not write it back.
        if !rapport_core::privacy::accept_local(record.id(), &self.workspace.with_untracked(|w| w.tombstones.clone())) {
            return Err("Not saved: this record was erased from the workspace.".into());
        }
        self.save.set(SaveState::Saving);
        let result = match (is_new, base) {
            (true, _) => engine.create(&record).await,
            (false, Some(base)) => engine.save_edit(&record, &base).await,
            (false, None) => engine.save(&record).await,
        };
        match result {
            Ok(row) => {
                mark("rapport:save-durable");
                self.stored(row.clone());
                Ok(row)
            }
            Err(e @ SaveError::Rewritten) => {
                // Nothing was written or kept: the list keeps the record as stored.
                self.save.set(if engine.unsaved() == 0 { SaveState::Saved } else { self.save.get_untracked() });
                Err(format!("Not saved: {e}. Open it again to see what it holds now."))
            }
            Err(e) => {
                let message = save_error_message(&e, is_new);
                if !is_new {
                    // The edit is kept in memory: show it in the list too.
                    self.index.update(|i| i.upsert(record.row()));
                }
                self.save.set(SaveState::Failed(message.clone()));
                Err(message)
            }
        }
    }

    /// Brings records changed elsewhere into this tab: fresh rows for the
    /// list, and a signal for views showing one of them.
    pub fn take_external(self, ids: Vec<RecordId>) {
        spawn_local(async move {
            let rows = self.engine().refresh(&ids).await;
            let workspace_id = self.workspace.with_untracked(|w| w.id);
            if ids.contains(&workspace_id) {
                if let Ok(ws) = self.engine().open::<Workspace>(workspace_id).await {
                    self.workspace.set(ws);
                    self.purge_erased().await;
                }
            }
            self.index.update(|i| {
                for row in rows.into_iter().filter(|r| r.kind != rapport_core::record::RecordKind::Workspace) {
                    i.upsert(row);
                }
            });
            self.external.update(|(n, changed)| {
                *n += 1;
                *changed = ids;
            });
        });
    }

    /// Erases the records of `plan` (see [`Engine::erase`]) and takes them
    /// out of every view.
    pub async fn erase(self, plan: ErasurePlan) -> Result<(), String> {
        let mut ws = self.workspace.get_untracked();
        match self.engine().erase(&mut ws, &plan).await {
            Ok(removed) => {
                let ws_id = ws.id;
                self.workspace.set(ws);
                self.forget_rows(&removed);
                // Records that stay lose their references to the person.
                let (scrubbed, failed) = self.engine().scrub(&plan).await;
                let changed: Vec<RecordId> = scrubbed.iter().map(|r| r.id).collect();
                self.index.update(|i| scrubbed.into_iter().for_each(|row| i.upsert(row)));
                if let Some(tabs) = self.tabs.get_value() {
                    tabs.announce(&changed);
                }
                if !failed.is_empty() {
                    self.notify(
                        format!(
                            "The person was erased, but {} linked record(s) still point at them: {}",
                            failed.len(),
                            failed.iter().map(|(_, e)| e.as_str()).collect::<Vec<_>>().join("; ")
                        ),
                        None,
                    );
                }
                if let Some(tabs) = self.tabs.get_value() {
                    tabs.announce(&[ws_id]);
                }
                if let Some(sync) = self.sync.get_value() {
                    sync.local_changes();
                    sync.erase_on_relay(plan.erase_ids());
                }
                Ok(())
            }
            Err(e) => Err(format!("Nothing was erased: {e}")),
        }
    }

    /// Applies the workspace's tombstones to what this device holds.
    pub async fn purge_erased(self) {
        let tombstones = self.workspace.with_untracked(|w| w.tombstones.clone());
        if tombstones.is_empty() {
            return;
        }
        let held: Vec<RecordId> = self.index.with_untracked(|i| i.rows().iter().map(|r| r.id).collect());
        match self.engine().purge(held, &tombstones).await {
            Ok(removed) => {
                self.forget_rows(&removed);
                if let Some(sync) = self.sync.get_value() {
                    sync.erase_tombstoned(tombstones);
                }
            }
            Err(e) => self.notify(
                format!("Erasing records removed elsewhere did not finish: {e}. It is retried at the next start."),
                None,
            ),
        }
    }

    fn forget_rows(self, ids: &[RecordId]) {
        if ids.is_empty() {
            return;
        }
        self.index.update(|i| {
            for id in ids {
                i.remove(*id);
            }
        });
        self.external.update(|(n, changed)| {
            *n += 1;
            *changed = ids.to_vec();
        });
    }

    /// Retries every edit that failed to save.
    pub fn retry(self) {
        spawn_local(async move {
            self.save.set(SaveState::Saving);
            match self.engine().retry_unsaved().await {
                Ok(()) => self.save.set(SaveState::Saved),
                Err(e) => self.save.set(SaveState::Failed(save_error_message(&e, false))),
            }
        });
    }

    pub fn workspace_saved(self, ws: Workspace) {
        self.workspace.set(ws.clone());
        spawn_local(async move {
            let _ = self.persist(ws, false).await;
        });
    }

    /// Re-reads the list of records set aside (after one failed to open).
    pub fn refresh_quarantine(self) {
        spawn_local(async move {
            if let Ok(list) = self.engine().quarantined().await {
                self.quarantined.set(list);
            }
        });
    }

    pub fn notify(&self, message: impl Into<String>, action: Option<(String, Rc<dyn Fn()>)>) {
        let id = js_sys::Date::now() as u64;
        self.toast.set(Some(Toast { id, message: message.into(), action }));
        let toast = self.toast;
        spawn_local(async move {
            gloo_timers::future::TimeoutFuture::new(8_000).await;
            if toast.with_untracked(|t| t.as_ref().map(|t| t.id)) == Some(id) {
                toast.set(None);
            }
        });
    }
}

fn save_error_message(e: &SaveError, is_new: bool) -> String {
    let tail = if is_new {
        "The contact was not created; your input is still in the form."
    } else {
        "Your change is kept on this page; use Retry once there is space."
    };
    format!("Not saved: {e} {tail}")
}

pub fn use_app() -> AppState {
    expect_context::<AppState>()
}

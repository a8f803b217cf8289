//! Sync settings and what is persisted for sync in the local store's meta
//! table:
//!
//! | key | value |
//! |---|---|
//! | `sync/config` | JSON [`SyncConfig`]: relay URL, workspace id, workspace secret, `created_here` |
//! | `sync/cursor` | the log position applied so far, as decimal text |
//! | `sync/incarnation` | the incarnation of the relay's log that cursor is a position in, 22 base64url characters (empty or absent: none yet) |
//! | `privacy/relay-erased` | JSON list of the record ids (hyphenated UUIDs) whose envelopes the relay confirmed deleting, e.g. `["0190f1c2-7a3b-7c00-8000-000000000000"]` |
//!
//! The secret is stored on this device only (like the documents it
//! protects); it leaves the device only inside an invite link's fragment.
//!
//! Creating a workspace draws its id and secret from the caller's random
//! bytes; joining reads them from an invite link. [`turn_on`] makes a
//! [`Repo`] queue its edits for sync and queues the documents that existed
//! before.

use std::collections::BTreeSet;

use rapport_core::ids::RecordId;
use rapport_core::repo::{hydrate, Repo};
use rapport_core::storage::{Storage, StorageError};
use rapport_protocol::{Incarnation, InviteError, InviteLink, Keys, Seq, WorkspaceId, WorkspaceSecret};
use serde::{Deserialize, Serialize};

/// Meta key of the sync settings.
pub const META_CONFIG: &str = "sync/config";
/// Meta key of the persisted cursor.
pub const META_CURSOR: &str = "sync/cursor";
/// Meta key of the incarnation of the relay's log the cursor belongs to.
pub const META_INCARNATION: &str = "sync/incarnation";
/// Meta key of the records the relay confirmed erasing (the `confirmed`
/// set of `rapport_core::privacy::relay_deletions`).
pub const META_RELAY_ERASED: &str = "privacy/relay-erased";

const CONFIG_VERSION: u32 = 1;
/// Documents loaded and queued per storage write by [`enqueue_existing`].
const ENQUEUE_BATCH: usize = 64;

/// How this device syncs one workspace through a relay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncConfig {
    /// The relay's WebSocket URL (`ws://` or `wss://`).
    pub relay_url: String,
    /// The workspace's id on the relay.
    pub workspace: WorkspaceId,
    /// The workspace secret (never sent to the relay; `Debug` hides it).
    pub secret: WorkspaceSecret,
    /// This device created the workspace: it registers it on the relay.
    pub created_here: bool,
}

/// An invite link could not be used to join.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JoinError {
    /// The link is malformed.
    #[error(transparent)]
    Invite(#[from] InviteError),
    /// The link names no relay.
    #[error("this invite link names no sync server (it is for syncing directly between devices); ask for a link that starts with #join=")]
    NoRelay,
}

/// Something persisted for sync could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoadError {
    /// Storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The stored value is unreadable (reported, never guessed at).
    #[error("the saved sync data `{key}` could not be read: {reason}; turn sync off and join again to reset it")]
    Corrupt {
        /// The meta key.
        key: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

#[derive(Serialize, Deserialize)]
struct StoredConfig {
    version: u32,
    relay_url: String,
    workspace: String,
    secret: String,
    created_here: bool,
}

pub(crate) fn corrupt(key: &'static str, reason: impl ToString) -> LoadError {
    LoadError::Corrupt { key, reason: reason.to_string() }
}

impl SyncConfig {
    /// A new workspace on `relay_url`: 16 bytes of `random` become its id,
    /// the other 32 its secret. `random` must come from a CSPRNG.
    ///
    /// # Errors
    /// [`InviteError::BadRelayUrl`] when `relay_url` is not `ws://`/`wss://`.
    pub fn create(relay_url: impl Into<String>, random: [u8; 48]) -> Result<Self, InviteError> {
        let mut id = [0u8; 16];
        id.copy_from_slice(&random[..16]);
        let mut secret = [0u8; 32];
        secret.copy_from_slice(&random[16..]);
        let config = Self {
            relay_url: relay_url.into(),
            workspace: WorkspaceId::from_bytes(id),
            secret: WorkspaceSecret::from_random_bytes(secret),
            created_here: true,
        };
        config.invite()?;
        Ok(config)
    }

    /// Joins the workspace of an invite link (a whole URL or its fragment).
    ///
    /// # Errors
    /// [`JoinError::Invite`] naming what is wrong with the link;
    /// [`JoinError::NoRelay`] for a link without a relay.
    pub fn join(invite: &str) -> Result<Self, JoinError> {
        let link = InviteLink::parse(invite)?;
        Self::from_link(&link, false).ok_or(JoinError::NoRelay)
    }

    fn from_link(link: &InviteLink, created_here: bool) -> Option<Self> {
        Some(Self {
            relay_url: link.relay_url()?.to_owned(),
            workspace: link.workspace(),
            secret: link.secret().clone(),
            created_here,
        })
    }

    /// The invite link for this workspace.
    ///
    /// # Errors
    /// [`InviteError::BadRelayUrl`] if `relay_url` was changed to something
    /// that is not a `ws://`/`wss://` URL.
    pub fn invite(&self) -> Result<InviteLink, InviteError> {
        InviteLink::new(Some(self.relay_url.clone()), self.workspace, self.secret.clone())
    }

    /// `app_url` (any fragment dropped) followed by the invite fragment.
    ///
    /// # Errors
    /// As [`SyncConfig::invite`].
    pub fn invite_url(&self, app_url: &str) -> Result<String, InviteError> {
        let base = app_url.split('#').next().unwrap_or(app_url);
        Ok(format!("{base}{}", self.invite()?.to_fragment()))
    }

    /// As [`SyncConfig::invite_url`], with the workspace's name in the link
    /// so the person opening it sees what they are asked to join.
    ///
    /// # Errors
    /// As [`SyncConfig::invite`].
    pub fn named_invite_url(&self, app_url: &str, workspace_name: &str) -> Result<String, InviteError> {
        let base = app_url.split('#').next().unwrap_or(app_url);
        Ok(format!("{base}{}", self.invite()?.with_name(workspace_name).to_fragment()))
    }

    /// The workspace's keys.
    pub fn keys(&self) -> Keys {
        Keys::derive(&self.secret, self.workspace)
    }

    /// Reads the settings saved on this device.
    ///
    /// # Errors
    /// [`LoadError`] when storage fails or the saved value is unreadable.
    pub async fn load<S: Storage>(storage: &S) -> Result<Option<Self>, LoadError> {
        let Some(bytes) = storage.get_meta(META_CONFIG).await? else { return Ok(None) };
        let stored: StoredConfig = serde_json::from_slice(&bytes).map_err(|e| corrupt(META_CONFIG, e))?;
        if stored.version != CONFIG_VERSION {
            return Err(corrupt(META_CONFIG, format!("format {} is not known to this version", stored.version)));
        }
        let workspace = stored.workspace.parse().map_err(|e| corrupt(META_CONFIG, e))?;
        let secret = WorkspaceSecret::from_base64url(&stored.secret).map_err(|e| corrupt(META_CONFIG, e))?;
        let config = Self { relay_url: stored.relay_url, workspace, secret, created_here: stored.created_here };
        config.invite().map_err(|e| corrupt(META_CONFIG, e))?;
        Ok(Some(config))
    }

    /// Saves the settings. When they name another workspace or relay than
    /// the saved ones, the cursor is reset first (a cursor is a position in
    /// one relay's log of one workspace).
    ///
    /// # Errors
    /// [`StorageError`]; the previous settings stay in place on error.
    pub async fn save<S: Storage>(&self, storage: &S) -> Result<(), StorageError> {
        let same_log = match Self::load(storage).await {
            Ok(Some(previous)) => previous.workspace == self.workspace && previous.relay_url == self.relay_url,
            Ok(None) | Err(LoadError::Corrupt { .. }) => false,
            Err(LoadError::Storage(e)) => return Err(e),
        };
        if !same_log {
            // All three are facts about one relay's log of one workspace.
            save_cursor(storage, Seq::ZERO).await?;
            save_incarnation(storage, None).await?;
            save_relay_erased(storage, &BTreeSet::new()).await?;
            crate::quarantine::save_quarantine(storage, &crate::quarantine::QuarantineList::default()).await?;
        }
        let stored = StoredConfig {
            version: CONFIG_VERSION,
            relay_url: self.relay_url.clone(),
            workspace: self.workspace.to_string(),
            secret: self.secret.to_base64url(),
            created_here: self.created_here,
        };
        let json = serde_json::to_vec(&stored).map_err(|e| StorageError::WriteFailed(e.to_string()))?;
        storage.put_meta(META_CONFIG, &json).await
    }
}

/// The persisted cursor (`Seq::ZERO` when none is saved).
///
/// # Errors
/// [`LoadError`] when storage fails or the value is not a number.
pub async fn load_cursor<S: Storage>(storage: &S) -> Result<Seq, LoadError> {
    let Some(bytes) = storage.get_meta(META_CURSOR).await? else { return Ok(Seq::ZERO) };
    let text = std::str::from_utf8(&bytes).map_err(|e| corrupt(META_CURSOR, e))?;
    text.trim().parse::<u64>().map(Seq).map_err(|e| corrupt(META_CURSOR, format!("{text:?} is not a position: {e}")))
}

/// Persists the cursor.
///
/// # Errors
/// [`StorageError`].
pub async fn save_cursor<S: Storage>(storage: &S, cursor: Seq) -> Result<(), StorageError> {
    storage.put_meta(META_CURSOR, cursor.0.to_string().as_bytes()).await
}

/// The incarnation of the relay's log that the saved cursor belongs to
/// (`None` when none is saved).
///
/// # Errors
/// [`LoadError`] when storage fails or the value is not an incarnation.
pub async fn load_incarnation<S: Storage>(storage: &S) -> Result<Option<Incarnation>, LoadError> {
    let Some(bytes) = storage.get_meta(META_INCARNATION).await? else { return Ok(None) };
    let text = std::str::from_utf8(&bytes).map_err(|e| corrupt(META_INCARNATION, e))?;
    if text.trim().is_empty() {
        return Ok(None);
    }
    text.parse().map(Some).map_err(|e| corrupt(META_INCARNATION, e))
}

/// Persists the incarnation the cursor belongs to (`None`: forget it).
///
/// # Errors
/// [`StorageError`].
pub async fn save_incarnation<S: Storage>(storage: &S, incarnation: Option<Incarnation>) -> Result<(), StorageError> {
    let text = incarnation.map(|i| i.to_string()).unwrap_or_default();
    storage.put_meta(META_INCARNATION, text.as_bytes()).await
}

/// The records whose envelopes the relay confirmed deleting (empty when
/// none is saved). With the workspace's tombstones,
/// `rapport_core::privacy::relay_deletions(tombstones, &confirmed)` gives
/// the deletions still owed after a restart.
///
/// # Errors
/// [`LoadError`] when storage fails or the value is not a JSON list of
/// record ids.
pub async fn load_relay_erased<S: Storage>(storage: &S) -> Result<BTreeSet<RecordId>, LoadError> {
    let Some(bytes) = storage.get_meta(META_RELAY_ERASED).await? else { return Ok(BTreeSet::new()) };
    let texts: Vec<String> = serde_json::from_slice(&bytes)
        .map_err(|e| corrupt(META_RELAY_ERASED, format!("expected a JSON list of record ids: {e}")))?;
    texts.iter().map(|text| text.parse::<RecordId>().map_err(|e| corrupt(META_RELAY_ERASED, e))).collect()
}

/// Persists the records the relay confirmed erasing (replaces the saved
/// list).
///
/// # Errors
/// [`StorageError`].
pub async fn save_relay_erased<S: Storage>(storage: &S, confirmed: &BTreeSet<RecordId>) -> Result<(), StorageError> {
    let texts: Vec<String> = confirmed.iter().map(RecordId::to_string).collect();
    let json = serde_json::to_vec(&texts).map_err(|e| StorageError::WriteFailed(e.to_string()))?;
    storage.put_meta(META_RELAY_ERASED, &json).await
}

/// What [`enqueue_existing`] queued.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnqueueReport {
    /// Documents queued for upload.
    pub queued: usize,
    /// Documents that could not be read (storage key, reason); not queued.
    pub unreadable: Vec<(String, String)>,
}

/// Queues every stored document, whole, in the outbox: the first upload
/// when sync is turned on, and the repair after a relay lost data.
///
/// Only records with a row are found (a document received without its
/// dependencies has none yet; it came from the relay anyway).
///
/// # Errors
/// [`StorageError`] when listing, loading or queueing fails; documents
/// already queued stay queued (queueing twice is harmless).
pub async fn enqueue_existing<S: Storage>(storage: &S) -> Result<EnqueueReport, StorageError> {
    let load = storage.rows().await?;
    let mut report = EnqueueReport::default();
    let mut ids: Vec<RecordId> = load.rows.iter().map(|row| row.id).collect();
    for (key, _) in load.unreadable {
        // The row is unreadable, the document may not be.
        match key.parse() {
            Ok(id) => ids.push(id),
            Err(e) => report.unreadable.push((key, e.to_string())),
        }
    }
    for chunk in ids.chunks(ENQUEUE_BATCH) {
        let mut batch = Vec::with_capacity(chunk.len());
        for &id in chunk {
            let Some(stored) = storage.load(id).await? else { continue };
            match hydrate(stored.snapshot.as_deref(), &stored.chunks) {
                Ok(mut doc) => batch.push((id, doc.save())),
                Err(e) => report.unreadable.push((id.to_string(), e.to_string())),
            }
        }
        if !batch.is_empty() {
            storage.enqueue(&batch).await?;
            report.queued += batch.len();
        }
    }
    Ok(report)
}

/// Turns sync on for a repository. Local edits are always queued (see
/// `Repo`); when the workspace is new to sync on this device, what a local
/// workspace queued before is replaced by every document it holds, whole
/// (the first upload), and the settings are saved last, so a crash
/// part-way queues again rather than forgets. Call it again at every start
/// of the app (it queues nothing twice).
///
/// The outbox is emptied *before* the documents are read: an edit another
/// tab stores meanwhile is either in a document read afterwards or queued
/// after the emptying, never in neither.
///
/// # Errors
/// [`StorageError`].
pub async fn turn_on<S: Storage>(repo: &Repo<S>, config: &SyncConfig) -> Result<EnqueueReport, StorageError> {
    let storage = repo.storage();
    let known = match SyncConfig::load(storage).await {
        Ok(Some(previous)) => previous.workspace == config.workspace,
        Ok(None) | Err(LoadError::Corrupt { .. }) => false,
        Err(LoadError::Storage(e)) => return Err(e),
    };
    let report = if known {
        EnqueueReport::default()
    } else {
        empty_outbox(storage).await?;
        enqueue_existing(storage).await?
    };
    config.save(storage).await?;
    Ok(report)
}

/// Drops every outbox entry (what a workspace queued before it was shared:
/// its documents are queued whole instead), a page at a time.
async fn empty_outbox<S: Storage>(storage: &S) -> Result<(), StorageError> {
    loop {
        let page = storage.outbox(1000).await?;
        if page.is_empty() {
            return Ok(());
        }
        let seqs: Vec<u64> = page.iter().map(|e| e.seq).collect();
        storage.ack_outbox(&seqs).await?;
    }
}

#[cfg(test)]
mod tests {
    use futures::executor::block_on;
    use rapport_core::storage::memory::MemoryStorage;

    use super::*;

    fn random() -> [u8; 48] {
        core::array::from_fn(|i| i as u8)
    }

    #[test]
    fn a_created_workspace_takes_its_id_and_secret_from_the_random_bytes() {
        let config = SyncConfig::create("wss://relay.example/sync", random()).expect("valid url");
        assert_eq!(config.workspace.as_bytes()[..], random()[..16]);
        assert_eq!(config.secret.as_bytes()[..], random()[16..]);
        assert!(config.created_here);
    }

    #[test]
    fn an_invite_link_joins_the_same_workspace_without_registering() {
        let config = SyncConfig::create("wss://relay.example/sync", random()).expect("valid url");
        let url = config.invite_url("https://app.example/crm/#/contacts").expect("invite");
        assert!(url.starts_with("https://app.example/crm/#join="), "{url}");
        let joined = SyncConfig::join(&url).expect("joins");
        assert_eq!(joined, SyncConfig { created_here: false, ..config });
    }

    #[test]
    fn a_named_invite_link_carries_the_workspace_name_and_joins_the_same_workspace() {
        let config = SyncConfig::create("wss://relay.example/sync", random()).expect("valid url");
        let url = config.named_invite_url("https://app.example/crm/", "Sales team").expect("invite");
        assert!(url.ends_with("&name=Sales%20team"), "{url}");
        assert_eq!(rapport_protocol::InviteLink::parse(&url).expect("parses").name(), Some("Sales team"));
        assert_eq!(SyncConfig::join(&url).expect("joins"), SyncConfig { created_here: false, ..config });
    }

    #[test]
    fn a_relay_url_that_is_not_a_websocket_is_refused() {
        assert!(matches!(SyncConfig::create("https://relay.example", random()), Err(InviteError::BadRelayUrl(_))));
        let no_relay =
            InviteLink::new(None, WorkspaceId::from_bytes([1; 16]), WorkspaceSecret::from_random_bytes([2; 32]))
                .expect("link")
                .to_fragment();
        assert_eq!(SyncConfig::join(&no_relay), Err(JoinError::NoRelay));
        assert!(matches!(SyncConfig::join("#ws=abc"), Err(JoinError::Invite(_))));
    }

    #[test]
    fn settings_round_trip_through_meta_and_the_secret_is_not_in_debug_output() {
        block_on(async {
            let storage = MemoryStorage::new();
            assert_eq!(SyncConfig::load(&storage).await, Ok(None));
            let config = SyncConfig::create("ws://127.0.0.1:1/sync", random()).expect("valid url");
            config.save(&storage).await.expect("save");
            assert_eq!(SyncConfig::load(&storage).await, Ok(Some(config.clone())));
            assert!(!format!("{config:?}").contains(&config.secret.to_base64url()));
        });
    }

    #[test]
    fn switching_workspace_resets_the_cursor_and_keeping_it_does_not() {
        block_on(async {
            let storage = MemoryStorage::new();
            let config = SyncConfig::create("ws://127.0.0.1:1/sync", random()).expect("valid url");
            config.save(&storage).await.expect("save");
            save_cursor(&storage, Seq(42)).await.expect("cursor");
            config.save(&storage).await.expect("save again");
            assert_eq!(load_cursor(&storage).await, Ok(Seq(42)));
            let other = SyncConfig::create("ws://127.0.0.1:1/sync", [9; 48]).expect("valid url");
            save_incarnation(&storage, Some(Incarnation::from_bytes([5; 16]))).await.expect("incarnation");
            other.save(&storage).await.expect("save other");
            assert_eq!(load_cursor(&storage).await, Ok(Seq::ZERO));
            assert_eq!(load_incarnation(&storage).await, Ok(None), "another log");
        });
    }

    #[test]
    fn confirmed_relay_erasures_round_trip_as_a_json_list_and_a_new_log_forgets_them() {
        block_on(async {
            let storage = MemoryStorage::new();
            assert_eq!(load_relay_erased(&storage).await, Ok(BTreeSet::new()));
            let config = SyncConfig::create("ws://127.0.0.1:1/sync", random()).expect("valid url");
            config.save(&storage).await.expect("save");
            let ada = RecordId::from_bytes([0xad; 16]);
            let grace = RecordId::from_bytes([0x67; 16]);
            save_relay_erased(&storage, &BTreeSet::from([ada, grace])).await.expect("save");
            let raw = storage.get_meta(META_RELAY_ERASED).await.expect("meta").expect("saved");
            let texts: Vec<String> = serde_json::from_slice(&raw).expect("a JSON list");
            assert_eq!(texts, [grace.to_string(), ada.to_string()]);
            assert_eq!(load_relay_erased(&storage).await, Ok(BTreeSet::from([ada, grace])));

            config.save(&storage).await.expect("same relay and workspace");
            assert_eq!(load_relay_erased(&storage).await, Ok(BTreeSet::from([ada, grace])));
            let other = SyncConfig::create("ws://127.0.0.1:2/sync", random()).expect("valid url");
            other.save(&storage).await.expect("another relay");
            assert_eq!(load_relay_erased(&storage).await, Ok(BTreeSet::new()), "another relay owes every deletion");
        });
    }

    #[test]
    fn unreadable_saved_values_are_reported_not_guessed() {
        block_on(async {
            let storage = MemoryStorage::new();
            storage.put_meta(META_CURSOR, b"forty-two").await.expect("put");
            assert!(matches!(load_cursor(&storage).await, Err(LoadError::Corrupt { key: META_CURSOR, .. })));
            storage.put_meta(META_CONFIG, b"{not json").await.expect("put");
            assert!(matches!(SyncConfig::load(&storage).await, Err(LoadError::Corrupt { key: META_CONFIG, .. })));
            storage.put_meta(META_INCARNATION, b"not an incarnation").await.expect("put");
            assert!(matches!(load_incarnation(&storage).await, Err(LoadError::Corrupt { key: META_INCARNATION, .. })));
            storage.put_meta(META_RELAY_ERASED, br#"["not-an-id"]"#).await.expect("put");
            assert!(matches!(
                load_relay_erased(&storage).await,
                Err(LoadError::Corrupt { key: META_RELAY_ERASED, .. })
            ));
        });
    }
}

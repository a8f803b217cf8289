//! What the UI shows about sync: a [`SyncStatus`] that is always one of
//! offline, connecting, syncing (with progress), up to date, or an error
//! ([`SyncProblem`]) with a sentence a user understands.

use core::fmt;

use rapport_core::ids::RecordId;
use rapport_protocol::Seq;

/// The sync state, as the status indicator shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncStatus {
    /// Sync is not running (not started, stopped, or the browser is
    /// offline). Everything still works locally.
    Offline,
    /// Opening a connection to the relay and authenticating.
    Connecting,
    /// Connected and exchanging changes. `done` of `total` log entries of
    /// this catch-up are received and saved; `total` is 0 when only local
    /// changes are being sent.
    Syncing {
        /// Entries received and saved since this catch-up began.
        done: u64,
        /// Entries this catch-up has to receive.
        total: u64,
    },
    /// Connected; every local change is on the relay and every change on
    /// the relay is here.
    UpToDate,
    /// Something needs attention; see [`SyncProblem::message`].
    Error(SyncProblem),
}

impl SyncStatus {
    /// A short label for the indicator ("Synced", "Syncing 12 of 340"...).
    pub fn label(&self) -> String {
        match self {
            SyncStatus::Offline => "Offline".into(),
            SyncStatus::Connecting => "Connecting…".into(),
            SyncStatus::Syncing { done, total } if *total > 0 => format!("Syncing {done} of {total}"),
            SyncStatus::Syncing { .. } => "Syncing…".into(),
            SyncStatus::UpToDate => "Synced".into(),
            SyncStatus::Error(problem) => problem.title().into(),
        }
    }
}

impl fmt::Display for SyncStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.label())
    }
}

/// Why sync is not working, in terms a user can act on. Local work is never
/// affected: every problem here leaves the app fully usable offline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncProblem {
    /// The relay cannot be reached, or the connection broke. Retrying with
    /// back-off.
    RelayUnreachable,
    /// The relay refused this device's key for the workspace. Not retried.
    AccessRefused,
    /// The relay does not know this workspace (yet). Retried slowly.
    UnknownWorkspace,
    /// Local storage is full: received changes cannot be saved.
    StorageFull,
    /// Local storage failed otherwise.
    LocalStorage(String),
    /// A change on the relay could not be read (not decryptable, malformed,
    /// from a newer app, misfiled) or applied. It is set aside
    /// ([`crate::quarantine`]) and sync goes on past it; reported as a
    /// problem (for the log), never as the lasting status.
    UnreadableChange {
        /// Its position in the workspace log.
        seq: Seq,
        /// What was wrong with it.
        reason: String,
    },
    /// A local change is larger than the relay accepts; it stays queued.
    ChangeTooLarge {
        /// The record it belongs to.
        record: RecordId,
        /// Its encrypted size in bytes.
        bytes: usize,
        /// The relay's limit for one message.
        limit: u32,
    },
    /// The relay reported a failure of its own (its storage). Retrying with
    /// back-off.
    RelayFailed(String),
    /// The relay sent something this app does not understand, or refused a
    /// request as invalid. Retrying with back-off.
    Protocol(String),
    /// The relay speaks another version of the sync protocol. Retried
    /// slowly (an update on either side fixes it).
    VersionMismatch {
        /// The relay's protocol version.
        relay: u8,
        /// This app's.
        app: u8,
    },
    /// The relay's log was restored from a backup or reset: this device
    /// receives everything again and sends again what the relay lacks.
    /// Reported for the log; nothing is lost.
    RelayReset,
}

impl SyncProblem {
    /// A few words for the status indicator.
    pub fn title(&self) -> &'static str {
        match self {
            SyncProblem::RelayUnreachable => "Can't reach the sync server",
            SyncProblem::AccessRefused => "Access refused",
            SyncProblem::UnknownWorkspace => "Workspace not on the sync server",
            SyncProblem::StorageFull => "Storage full",
            SyncProblem::LocalStorage(_) => "Can't save synced changes",
            SyncProblem::UnreadableChange { .. } => "A change couldn't be read",
            SyncProblem::ChangeTooLarge { .. } => "A change is too large to sync",
            SyncProblem::RelayFailed(_) => "Sync server problem",
            SyncProblem::Protocol(_) => "Sync problem",
            SyncProblem::VersionMismatch { relay, app } if relay > app => "Update needed",
            SyncProblem::VersionMismatch { .. } => "Sync server out of date",
            SyncProblem::RelayReset => "Sync server restored",
        }
    }

    /// What happened and what to do, in plain language.
    pub fn message(&self) -> String {
        match self {
            SyncProblem::RelayUnreachable => "Can't reach the sync server right now. Your changes are saved on this \
                 device and will be sent when the connection is back; Rapport keeps trying."
                .into(),
            SyncProblem::AccessRefused => "The sync server refused this device's key for the workspace. Ask a \
                 teammate for a new invite link and join again. Your changes stay on this device."
                .into(),
            SyncProblem::UnknownWorkspace => "The sync server doesn't know this workspace yet. If it was just \
                 created, the device that created it must go online once. Otherwise check that the invite link \
                 names the right server."
                .into(),
            SyncProblem::StorageFull => "This browser's storage is full, so changes from your team can't be saved. \
                 Free some space or allow this site more storage; sync resumes by itself."
                .into(),
            SyncProblem::LocalStorage(detail) => format!(
                "Changes from your team couldn't be saved on this device ({detail}). Sync will try again; \
                 reloading the page can help."
            ),
            SyncProblem::UnreadableChange { seq, reason } => format!(
                "A change from your team (number {seq}) couldn't be read: {reason}. It was set aside (Settings, \
                 Sync and sharing lists it) and sync goes on with everything else."
            ),
            SyncProblem::ChangeTooLarge { record, bytes, limit } => format!(
                "A change to record {record} is {bytes} bytes, more than the sync server accepts ({limit} bytes). \
                 It stays saved on this device but can't be shared until the server allows larger messages."
            ),
            SyncProblem::RelayFailed(detail) => format!(
                "The sync server reported a problem on its side ({detail}). Your changes are safe on this device; \
                 Rapport will try again in a moment."
            ),
            SyncProblem::Protocol(detail) => format!(
                "The sync server answered something this version of Rapport doesn't understand ({detail}). \
                 Rapport will try again; updating the app may help."
            ),
            SyncProblem::VersionMismatch { relay, app } if relay > app => "The sync server has been updated and \
                 this version of Rapport can no longer sync with it. Reload the page to update the app; your \
                 changes are saved on this device and will be sent afterwards."
                .into(),
            SyncProblem::VersionMismatch { .. } => "The sync server runs an older version than this app and \
                 can't sync with it. Ask whoever runs the server to update it; your changes stay saved on this \
                 device until then."
                .into(),
            SyncProblem::RelayReset => "The sync server was restored from a backup. This device is receiving \
                 everything again and sending what the server lost; nothing on this device is lost."
                .into(),
        }
    }
}

impl fmt::Display for SyncProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_problem_has_a_title_and_a_message_without_jargon() {
        let problems = [
            SyncProblem::RelayUnreachable,
            SyncProblem::AccessRefused,
            SyncProblem::UnknownWorkspace,
            SyncProblem::StorageFull,
            SyncProblem::LocalStorage("quota".into()),
            SyncProblem::UnreadableChange { seq: Seq(4), reason: "bad".into() },
            SyncProblem::ChangeTooLarge { record: RecordId::from_bytes([1; 16]), bytes: 10, limit: 5 },
            SyncProblem::RelayFailed("disk".into()),
            SyncProblem::Protocol("x".into()),
            SyncProblem::VersionMismatch { relay: 2, app: 1 },
            SyncProblem::VersionMismatch { relay: 1, app: 2 },
            SyncProblem::RelayReset,
        ];
        for p in problems {
            assert!(!p.title().is_empty());
            let text = p.message();
            assert!(text.ends_with('.'), "{text}");
            for jargon in ["envelope", "cursor", "Automerge", "WebSocket", "postcard"] {
                assert!(!text.contains(jargon), "{text} says {jargon}");
            }
        }
    }

    #[test]
    fn the_syncing_label_shows_progress_when_there_is_some() {
        assert_eq!(SyncStatus::Syncing { done: 12, total: 340 }.label(), "Syncing 12 of 340");
        assert_eq!(SyncStatus::Syncing { done: 0, total: 0 }.label(), "Syncing…");
        assert_eq!(SyncStatus::Error(SyncProblem::AccessRefused).to_string(), "Access refused");
    }
}
